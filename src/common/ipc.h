/*
 * The event socket between the master and a worker: an AF_UNIX
 * SOCK_SEQPACKET socketpair, at descriptor IPC_FD in the worker.  Every
 * message starts with struct ipc_hdr; the receiver checks the version and
 * the exact size for the type before it looks at anything else.
 */
#ifndef RTPPROXYD_IPC_H
#define RTPPROXYD_IPC_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "shm.h"

#define IPC_VERSION	1
#define IPC_FD		3	/* the worker's end, after exec */
#define IPC_KFWD_FD	4	/* the kernel fast path's map, when there is one */
#define IPC_MAXFDS	4
#define IPC_MAXMSG	512

enum ipc_type {
	/* worker -> master */
	IPC_READY = 1,		/* attached, loop running */
	IPC_ACTIVE,		/* slot relayed its first packet */
	IPC_ERROR,		/* slot failed; reason */
	IPC_REMOVED,		/* slot's sockets closed; slot may be reused */
	IPC_TCP_ACCEPTED,	/* slot accepted its caller; the socket */
	IPC_CLOSED,		/* slot's TCP streams both ended */
	IPC_HELLO,		/* adopted: slot = id, arg = pid */
	IPC_HAVE,		/* adopted: relays slot with these sockets */
	IPC_LATCHED,		/* slot's latch moved; from, to, reason */
	IPC_REFUSED,		/* slot refused a sender; to, reason */
	IPC_RECORDING,		/* slot's recording: err = SHM_REC_*, reason */
	IPC_DTMF = 14,		/* slot saw a telephone-event; arg: direction */
	/* master -> worker */
	IPC_ADD = 16,		/* relay slot; its sockets attached */
	IPC_REMOVE,		/* stop relaying slot */
	IPC_SHUTDOWN,		/* exit */
	IPC_SETLOG,		/* new log level */
	IPC_UPDATE,		/* slot changed (UpdateSession): read it again */
	/* a new master <-> the master it takes over from */
	IPC_TAKE = 32,		/* new: ready, let go */
	IPC_GO,			/* old: let go; the pid file, if any */
};

struct ipc_hdr {
	uint16_t	version;
	uint16_t	type;
	uint32_t	len;		/* whole message */
	uint32_t	wgen;		/* worker generation */
	uint32_t	slot;
	uint32_t	slot_gen;	/* shm_slot.gen when the message was made */
	uint32_t	arg;		/* ADD: descriptor count; SETLOG: level */
};

struct ipc_error {
	struct ipc_hdr	hdr;
	int32_t		err;		/* errno, or 0 */
	char		reason[120];	/* NUL-terminated */
};

/* IPC_HAVE status bits */
#define IPC_HAVE_ACTIVE	0x01	/* relayed (UDP) or both legs up (TCP) */
#define IPC_HAVE_ERROR	0x02	/* failed; reason */
#define IPC_HAVE_CLOSED	0x04	/* TCP: both streams ended */

struct ipc_have {
	struct ipc_hdr	hdr;		/* arg: descriptor count */
	uint32_t	status;		/* IPC_HAVE_* */
	char		reason[120];	/* NUL-terminated */
};

/*
 * IPC_LATCHED: the caller's latch moved from one address to another;
 * IPC_REFUSED: packets from a sender (to) were refused and dropped.  The
 * worker sends them spaced out per session; reason is for a person.
 */
#define IPC_LATCH_RTCP	0x01	/* hdr.arg: of RTCP, not RTP */

struct ipc_latch {
	struct ipc_hdr	hdr;
	struct shm_addr	from;
	struct shm_addr	to;
	char		reason[368];	/* NUL-terminated */
};
_Static_assert(sizeof(struct ipc_latch) <= IPC_MAXMSG, "fits a message");

/*
 * IPC_DTMF: an RFC 4733 event (a digit) one direction carried, told once
 * when its end packet is first seen (or, when every end was lost, as the
 * next event begins).  hdr.arg: SHM_DIR_FWD or SHM_DIR_REV.
 */
struct ipc_dtmf {
	struct ipc_hdr	hdr;
	uint32_t	event;
	uint32_t	volume;
	uint32_t	duration;	/* timestamp units */
	uint32_t	clock_rate;	/* of the timestamps */
	uint32_t	rtp_ts;
	uint32_t	ssrc;
	uint32_t	end_seen;
	uint32_t	pad0;
	int64_t		start_ms;	/* wall clock */
};

/*
 * What one side sends the other, in order: a message goes at once when
 * nothing waits and the socket has room, otherwise it waits here with
 * copies of its descriptors (the sender may close its own) until the
 * socket is writable again.  Both the master (one queue per worker) and a
 * worker (one to its master) use it; the caller watches for writability
 * while ipc_queue_waiting says so.
 */
struct ipc_qmsg;
struct ipc_queue {
	TAILQ_HEAD(, ipc_qmsg)	 msgs;
	size_t			 n;		/* messages waiting */
	size_t			 max;		/* no more than; 0: no bound */
	size_t			 peak;		/* most ever waiting */
	uint64_t		 waited;	/* messages that ever waited */
};

size_t	ipc_size(uint16_t);
void	ipc_init(struct ipc_hdr *, uint16_t, uint32_t, uint32_t, uint32_t);
int	ipc_send(int, const struct ipc_hdr *, const int *, int);
ssize_t	ipc_recv(int, void *, size_t, int *, int *);
int	ipc_check(const void *, size_t, int);

void	ipc_queue_init(struct ipc_queue *, size_t);
int	ipc_queue_send(struct ipc_queue *, int, const struct ipc_hdr *,
	    const int *, int);
int	ipc_queue_flush(struct ipc_queue *, int);
int	ipc_queue_drain(struct ipc_queue *, int, int);
size_t	ipc_queue_waiting(const struct ipc_queue *);
/* Where a worker of that table and pid waits to be adopted by a master. */
struct sockaddr_un;
void	ipc_adopt_name(struct sockaddr_un *, socklen_t *, const char *, pid_t);
void	ipc_queue_clear(struct ipc_queue *);

#endif
