/*
 * The event socket between the master and a worker: an AF_UNIX
 * SOCK_SEQPACKET socketpair, at descriptor IPC_FD in the worker.  Every
 * message starts with struct ipc_hdr; the receiver checks the version and
 * the exact size for the type before it looks at anything else.
 */
#ifndef RTPPROXYD_IPC_H
#define RTPPROXYD_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPC_VERSION	1
#define IPC_FD		3	/* the worker's end, after exec */
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
	/* master -> worker */
	IPC_ADD = 16,		/* relay slot; its sockets attached */
	IPC_REMOVE,		/* stop relaying slot */
	IPC_SHUTDOWN,		/* exit */
	IPC_SETLOG,		/* new log level */
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

size_t	ipc_size(uint16_t);
void	ipc_init(struct ipc_hdr *, uint16_t, uint32_t, uint32_t, uint32_t);
int	ipc_send(int, const struct ipc_hdr *, const int *, int);
ssize_t	ipc_recv(int, void *, size_t, int *, int *);
int	ipc_check(const void *, size_t, int);

#endif
