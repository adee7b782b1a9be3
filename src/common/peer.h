/*
 * peer.c: one end of an event socket (ipc.h) on a libevent loop, the same
 * for the master's end of each worker's socket, a worker's end, and the
 * channel between a master and the one that takes over from it.  It reads
 * every message waiting (up to a batch a wakeup), checks its size and
 * version (ipc_check), its generation if asked to, and its type against
 * the peer's dispatch table; it sends in order through a queue that keeps
 * what the socket has no room for (and copies of its descriptors) until
 * the loop finds the socket writable, so that nothing is dropped because
 * the other side is busy.
 */
#ifndef RTPPROXYD_PEER_H
#define RTPPROXYD_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

struct event;
struct event_base;
struct peer;

/*
 * A message for the peer's owner: 0, or -1 when it is wrong coming from
 * this peer (the peer is then gone, PEER_MALFORMED).  The descriptors are
 * the handler's: it closes those it does not keep.  The owner logs what
 * goes wrong, in its own words: gone() is told why, and peer_send says
 * -1 with errno.
 */
typedef int peer_handler(struct peer *, const struct ipc_hdr *, int *, int,
    void *);

/*
 * A dispatch table ends with type 0; its handler (if not NULL) takes the
 * types not listed, else they are malformed.
 */
struct peer_type {
	uint16_t	 type;
	peer_handler	*fn;
};

/* Why a peer is gone (reading stops), or in trouble. */
#define PEER_EOF	0	/* the other end closed */
#define PEER_MALFORMED	1	/* a message that does not check out */
#define PEER_SEND_ERROR	2	/* what waited could not be sent; reading
				   goes on, what waited is dropped after */

/* What a peer does with a message of another generation than its own. */
#define PEER_GEN_ANY	0	/* nothing: no generations here */
#define PEER_GEN_DROP	1	/* drop it: it was meant for an earlier one */
#define PEER_GEN_STRICT	2	/* malformed */

struct peer_ops {
	const struct peer_type	*types;		/* up to one of type 0 */
	void			(*gone)(struct peer *, int, void *);
	int			 gen_policy;	/* PEER_GEN_* */
	int			 batch;		/* messages read a wakeup */
};

struct peer {
	int			 fd;		/* -1: closed */
	char			 self[32];	/* for logs: "worker 3", */
	char			 name[32];	/* ... and "master" */
	uint32_t		 gen;		/* stamped on what is sent */
	const struct peer_ops	*ops;
	void			*arg;
	struct event		*rev, *wev;
	struct ipc_queue	 outq;
	uint64_t		 told;		/* outq.waited, last logged */
	int			 closing;	/* gone() ran: read no more */
};

void	peer_init(struct peer *);
int	peer_open(struct peer *, struct event_base *, int, const char *,
	    const char *, uint32_t, const struct peer_ops *, void *);
void	peer_close(struct peer *);
int	peer_is_open(const struct peer *);
void	peer_pause(struct peer *);
void	peer_resume(struct peer *);
void	peer_bound(struct peer *, size_t);
int	peer_send(struct peer *, struct ipc_hdr *, const int *, int);
int	peer_send_now(struct peer *, struct ipc_hdr *, const int *, int);
void	peer_forget(struct peer *);
size_t	peer_waiting(const struct peer *);
int	peer_flush(struct peer *, int);
int	peer_wait(struct peer *, int);

#endif
