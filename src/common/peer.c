/*
 * One end of an event socket on a libevent loop; see peer.h.  Modelled on
 * the peer layer of tmux's proc.c and the imsg dispatch tables of the
 * OpenBSD daemons, on this project's own message format (ipc.h).
 */
#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "peer.h"

#define PEER_BATCH	64

static void	peer_readable(evutil_socket_t, short, void *);
static void	peer_writable(evutil_socket_t, short, void *);

void
peer_init(struct peer *p)
{
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	ipc_queue_init(&p->outq, 0);
}

/*
 * Talk over fd (non-blocking from now on) as self to name, stamping gen on
 * what is sent.  0, or -1 when the loop's events cannot be made.
 */
int
peer_open(struct peer *p, struct event_base *base, int fd, const char *self,
    const char *name, uint32_t gen, const struct peer_ops *ops, void *arg)
{
	peer_close(p);
	p->fd = fd;
	p->gen = gen;
	p->ops = ops;
	p->arg = arg;
	p->closing = 0;
	snprintf(p->self, sizeof(p->self), "%s", self);
	snprintf(p->name, sizeof(p->name), "%s", name);
	if (set_nonblock(fd) == -1)
		log_warn("%s: event socket", p->self);
	p->rev = event_new(base, fd, EV_READ | EV_PERSIST, peer_readable, p);
	p->wev = event_new(base, fd, EV_WRITE, peer_writable, p);
	if (p->rev == NULL || p->wev == NULL) {
		peer_close(p);
		return -1;
	}
	event_add(p->rev, NULL);
	return 0;
}

/* Close the socket and forget what waits for it (the copies included). */
void
peer_close(struct peer *p)
{
	if (p->rev != NULL)
		event_free(p->rev);
	if (p->wev != NULL)
		event_free(p->wev);
	p->rev = p->wev = NULL;
	ipc_queue_clear(&p->outq);
	p->told = p->outq.waited;
	if (p->fd != -1)
		close(p->fd);
	p->fd = -1;
}

int
peer_is_open(const struct peer *p)
{
	return p->fd != -1;
}

/* Read nothing for now (what comes waits in the socket). */
void
peer_pause(struct peer *p)
{
	if (p->rev != NULL)
		event_del(p->rev);
}

/* Read again (the same descriptor, maybe another socket dup2'd onto it). */
void
peer_resume(struct peer *p)
{
	p->closing = 0;
	if (p->rev != NULL)
		event_add(p->rev, NULL);
}

/* No more than max messages wait (a bug's bound); 0: no bound. */
void
peer_bound(struct peer *p, size_t max)
{
	p->outq.max = max;
}

static void
peer_gone(struct peer *p, int why)
{
	p->closing = 1;
	peer_pause(p);
	p->ops->gone(p, why, p->arg);
}

/* The table's handler of type, or its default (type 0), or none. */
static peer_handler *
peer_handler_of(const struct peer *p, uint16_t type)
{
	const struct peer_type *t;

	for (t = p->ops->types; t->type != 0; t++)
		if (t->type == type)
			return t->fn;
	return t->fn;
}

/*
 * One message in buf (n octets, nfds descriptors), to its handler.  0 on,
 * 1 stale and dropped, -1 when the peer is gone (its gone() has run).
 */
static int
peer_dispatch(struct peer *p, const void *buf, ssize_t n, int *fds, int nfds)
{
	const struct ipc_hdr	*h = buf;
	peer_handler		*fn = NULL;

	if (ipc_check(buf, (size_t)n, nfds) == -1 ||
	    (fn = peer_handler_of(p, h->type)) == NULL ||
	    (p->ops->gen_policy == PEER_GEN_STRICT && h->wgen != p->gen)) {
		while (nfds > 0)
			close(fds[--nfds]);
		log_debug("%s: from %s: %s", p->self, p->name, fn == NULL &&
		    n >= (ssize_t)sizeof(*h) ? "a type it does not send" :
		    "a message that does not check out");
		peer_gone(p, PEER_MALFORMED);
		return -1;
	}
	if (p->ops->gen_policy == PEER_GEN_DROP && h->wgen != p->gen) {
		log_debug("%s: stale message from %s (generation %u, now %u)",
		    p->self, p->name, h->wgen, p->gen);
		while (nfds > 0)
			close(fds[--nfds]);
		return 1;
	}
	if (fn(p, h, fds, nfds, p->arg) == -1) {
		log_debug("%s: from %s: type %u out of place", p->self,
		    p->name, h->type);
		peer_gone(p, PEER_MALFORMED);
		return -1;
	}
	return p->fd == -1 || p->closing ? -1 : 0;
}

/*
 * Read what waits, up to the batch: the rest on the next turn of the loop
 * (the event is level-triggered), so that one busy peer cannot starve the
 * others.  0 when the socket is empty or the batch is done, -1 gone.
 */
static int
peer_read(struct peer *p)
{
	union {
		struct ipc_hdr	h;
		char		buf[IPC_MAXMSG];
	} m;
	int	fds[IPC_MAXFDS], nfds, i, batch;
	ssize_t	n;

	batch = p->ops->batch > 0 ? p->ops->batch : PEER_BATCH;
	for (i = 0; i < batch && p->fd != -1 && !p->closing; i++) {
		nfds = IPC_MAXFDS;
		n = ipc_recv(p->fd, m.buf, sizeof(m.buf), fds, &nfds);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return 0;
		/*
		 * The other end went with our messages unread: said once,
		 * then what it sent before can still be read, then the end.
		 */
		if (n == -1 && errno == ECONNRESET)
			continue;
		if (n == 0) {
			peer_gone(p, PEER_EOF);
			return -1;
		}
		if (peer_dispatch(p, m.buf, n, fds, nfds) == -1)
			return -1;
	}
	return 0;
}

static void
peer_readable(evutil_socket_t fd, short ev, void *arg)
{
	(void)peer_read(arg);
}

static void
peer_writable(evutil_socket_t fd, short ev, void *arg)
{
	struct peer *p = arg;

	switch (ipc_queue_flush(&p->outq, p->fd)) {
	case 0:
		log_debug("%s: %s was busy: %llu messages waited for it, and "
		    "are sent", p->self, p->name,
		    (unsigned long long)(p->outq.waited - p->told));
		p->told = p->outq.waited;
		break;
	case 1:
		event_add(p->wev, NULL);
		break;
	default:
		/*
		 * What waits is still there for gone() to count; reading
		 * goes on (the end of the socket may come next), unless the
		 * owner closes.
		 */
		p->ops->gone(p, PEER_SEND_ERROR, p->arg);
		if (p->fd != -1)
			peer_forget(p);
		break;
	}
}

/*
 * Send h (stamped with the peer's generation) and its descriptors, after
 * what waits; the caller keeps its descriptors.  0: sent or queued; -1
 * with errno: the other end is gone, or no copy could be made.
 */
int
peer_send(struct peer *p, struct ipc_hdr *h, const int *fds, int nfds)
{
	if (p->fd == -1) {
		errno = EPIPE;
		return -1;
	}
	h->wgen = p->gen;
	switch (ipc_queue_send(&p->outq, p->fd, h, fds, nfds)) {
	case 0:
		return 0;
	case 1:
		event_add(p->wev, NULL);
		return 0;
	}
	return -1;
}

/* Send now, ahead of anything that waits (before the loop runs); 0, -1. */
int
peer_send_now(struct peer *p, struct ipc_hdr *h, const int *fds, int nfds)
{
	if (p->fd == -1) {
		errno = EPIPE;
		return -1;
	}
	h->wgen = p->gen;
	return ipc_send(p->fd, h, fds, nfds);
}

/* What waits is for nobody now. */
void
peer_forget(struct peer *p)
{
	if (p->wev != NULL)
		event_del(p->wev);
	ipc_queue_clear(&p->outq);
	p->told = p->outq.waited;
}

size_t
peer_waiting(const struct peer *p)
{
	return ipc_queue_waiting(&p->outq);
}

/*
 * What waits goes now, waiting for room up to ms (a side about to stop or
 * hand over, with no loop to wait in): as ipc_queue_drain.
 */
int
peer_flush(struct peer *p, int ms)
{
	int rc;

	if (p->fd == -1 || ipc_queue_waiting(&p->outq) == 0)
		return 0;
	rc = ipc_queue_drain(&p->outq, p->fd, ms);
	if (rc == 0 && p->wev != NULL)
		event_del(p->wev);
	return rc;
}

/*
 * Without the loop: wait up to ms for messages and hand them to their
 * handlers.  1 when something came, 0 when nothing did, -1 when the peer
 * is gone.
 */
int
peer_wait(struct peer *p, int ms)
{
	struct pollfd	pfd;
	int		rc;

	if (p->fd == -1 || p->closing)
		return -1;
	pfd.fd = p->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	rc = poll(&pfd, 1, ms);
	if (rc == -1)
		return errno == EINTR ? 0 : -1;
	if (rc == 0)
		return 0;
	return peer_read(p) == -1 ? -1 : 1;
}
