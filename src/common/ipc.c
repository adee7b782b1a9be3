#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <stddef.h>
#include <stdio.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"

/* The exact size of a message of this type, or 0 for an unknown type. */
size_t
ipc_size(uint16_t type)
{
	switch (type) {
	case IPC_READY:
	case IPC_ACTIVE:
	case IPC_REMOVED:
	case IPC_TCP_ACCEPTED:
	case IPC_CLOSED:
	case IPC_ADD:
	case IPC_REMOVE:
	case IPC_SHUTDOWN:
	case IPC_SETLOG:
	case IPC_UPDATE:
	case IPC_HELLO:
	case IPC_TAKE:
	case IPC_GO:
		return sizeof(struct ipc_hdr);
	case IPC_ERROR:
	case IPC_RECORDING:
		return sizeof(struct ipc_error);
	case IPC_HAVE:
		return sizeof(struct ipc_have);
	case IPC_LATCHED:
	case IPC_REFUSED:
		return sizeof(struct ipc_latch);
	case IPC_DTMF:
		return sizeof(struct ipc_dtmf);
	}
	return 0;
}

void
ipc_init(struct ipc_hdr *h, uint16_t type, uint32_t wgen, uint32_t slot,
    uint32_t slot_gen)
{
	memset(h, 0, ipc_size(type) ? ipc_size(type) : sizeof(*h));
	h->version = IPC_VERSION;
	h->type = type;
	h->len = (uint32_t)ipc_size(type);
	h->wgen = wgen;
	h->slot = slot;
	h->slot_gen = slot_gen;
}

/* Send one message with up to IPC_MAXFDS descriptors.  0 or -1. */
int
ipc_send(int sock, const struct ipc_hdr *h, const int *fds, int nfds)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * IPC_MAXFDS)];
	} cm;
	struct msghdr	 msg;
	struct iovec	 iov;
	ssize_t		 n;

	if (nfds < 0 || nfds > IPC_MAXFDS || h->len < sizeof(*h)) {
		errno = EINVAL;
		return -1;
	}
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)h;
	iov.iov_len = h->len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != h->len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

/*
 * Receive one message into buf and any descriptors into fds (*nfds in: room,
 * out: received).  Returns the message length, 0 at end of file, -1 on error
 * (EAGAIN when there is nothing to read).  Descriptors that do not fit are
 * closed, and so are those of a zero-length record, which reads as end of
 * file.  The message is not validated: call ipc_check.
 */
ssize_t
ipc_recv(int sock, void *buf, size_t len, int *fds, int *nfds)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * IPC_MAXFDS)];
	} cm;
	struct msghdr	 msg;
	struct cmsghdr	*c;
	struct iovec	 iov;
	ssize_t		 n;
	int		 room = *nfds, got = 0;

	*nfds = 0;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	/* Callers take 0 for end of file and keep no descriptors then. */
	if (n == 0)
		room = 0;
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		size_t	i, cnt;
		int	fd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < cnt; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (got < room)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	*nfds = got;
	if (n > 0 && (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		errno = EMSGSIZE;
		return -1;
	}
	return n;
}

/*
 * Validate a received message: known type, our version, exact size, and the
 * descriptor count the type calls for.  0 or -1 (errno EPROTO).
 */
int
ipc_check(const void *buf, size_t n, int nfds)
{
	struct ipc_hdr	h;
	size_t		want;

	if (n < sizeof(h))
		goto bad;
	memcpy(&h, buf, sizeof(h));
	if (h.version != IPC_VERSION)
		goto bad;
	if ((want = ipc_size(h.type)) == 0 || h.len != want || n != want)
		goto bad;
	if (h.type == IPC_ADD || h.type == IPC_HAVE) {
		if (h.arg == 0 || h.arg > IPC_MAXFDS || (int)h.arg != nfds)
			goto bad;
	} else if (h.type == IPC_GO) {
		if (h.arg > 1 || (int)h.arg != nfds)
			goto bad;
	} else if (h.type == IPC_TCP_ACCEPTED) {
		if (nfds != 1)
			goto bad;
	} else if (nfds != 0)
		goto bad;
	if (h.type == IPC_ERROR &&
	    memchr(((const struct ipc_error *)buf)->reason, '\0',
	    sizeof(((struct ipc_error *)0)->reason)) == NULL)
		goto bad;
	if (h.type == IPC_HAVE &&
	    memchr(((const struct ipc_have *)buf)->reason, '\0',
	    sizeof(((struct ipc_have *)0)->reason)) == NULL)
		goto bad;
	if ((h.type == IPC_LATCHED || h.type == IPC_REFUSED) &&
	    memchr(((const struct ipc_latch *)buf)->reason, '\0',
	    sizeof(((struct ipc_latch *)0)->reason)) == NULL)
		goto bad;
	return 0;
bad:
	errno = EPROTO;
	return -1;
}

struct ipc_qmsg {
	TAILQ_ENTRY(ipc_qmsg)	 entry;
	int			 fds[IPC_MAXFDS];	/* our copies */
	int			 nfds;
	uint64_t		 msg[];		/* hdr->len octets */
};

void
ipc_queue_init(struct ipc_queue *q, size_t max)
{
	memset(q, 0, sizeof(*q));
	TAILQ_INIT(&q->msgs);
	q->max = max;
}

static void
ipc_qmsg_free(struct ipc_qmsg *m)
{
	while (m->nfds > 0)
		close(m->fds[--m->nfds]);
	free(m);
}

/* A full socket, as a SOCK_SEQPACKET sender sees it. */
static int
ipc_full(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS;
}

/*
 * Send h (with nfds descriptors) on sock, after what waits before it.
 * 0: sent; 1: waits in the queue (watch sock for writability); -1: not
 * sent, with errno: the peer's error (EPIPE: it is gone), ENOBUFS when
 * the queue is at its bound, EMFILE or ENOMEM when no copy could be made.
 */
int
ipc_queue_send(struct ipc_queue *q, int sock, const struct ipc_hdr *h,
    const int *fds, int nfds)
{
	struct ipc_qmsg	*m;
	int		 i, saved;

	if (nfds < 0 || nfds > IPC_MAXFDS || h->len < sizeof(*h) ||
	    h->len > IPC_MAXMSG) {
		errno = EINVAL;
		return -1;
	}
	if (q->n == 0) {
		if (ipc_send(sock, h, fds, nfds) == 0)
			return 0;
		if (!ipc_full(errno))
			return -1;
	}
	if (q->max != 0 && q->n >= q->max) {
		errno = ENOBUFS;
		return -1;
	}
	if ((m = calloc(1, sizeof(*m) + h->len)) == NULL)
		return -1;
	memcpy(m->msg, h, h->len);
	for (i = 0; i < nfds; i++) {
		if ((m->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0)) == -1) {
			saved = errno;
			ipc_qmsg_free(m);
			errno = saved;
			return -1;
		}
		m->nfds++;
	}
	TAILQ_INSERT_TAIL(&q->msgs, m, entry);
	if (++q->n > q->peak)
		q->peak = q->n;
	q->waited++;
	return 1;
}

/*
 * Send what waits, in order, while the socket takes it.  0: all sent;
 * 1: more waits; -1: the peer's error (the queue is kept: clear it).
 */
int
ipc_queue_flush(struct ipc_queue *q, int sock)
{
	struct ipc_qmsg *m;

	while ((m = TAILQ_FIRST(&q->msgs)) != NULL) {
		if (ipc_send(sock, (const struct ipc_hdr *)m->msg, m->fds,
		    m->nfds) == -1)
			return ipc_full(errno) ? 1 : -1;
		TAILQ_REMOVE(&q->msgs, m, entry);
		q->n--;
		ipc_qmsg_free(m);
	}
	return 0;
}

static int64_t
ipc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Flush, waiting for room up to ms milliseconds in all: for a side that
 * is about to stop or hand over, and has no loop to wait in.  As
 * ipc_queue_flush; 1 when time ran out.
 */
int
ipc_queue_drain(struct ipc_queue *q, int sock, int ms)
{
	struct pollfd	pfd;
	int64_t		end = ipc_now_ms() + ms, left;
	int		rc;

	while ((rc = ipc_queue_flush(q, sock)) == 1 &&
	    (left = end - ipc_now_ms()) > 0) {
		pfd.fd = sock;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, left > 100 ? 100 : (int)left) == -1 &&
		    errno != EINTR)
			return -1;
	}
	return rc;
}

size_t
ipc_queue_waiting(const struct ipc_queue *q)
{
	return q->n;
}

/* Forget what waits (the peer is gone), closing the copies. */
void
ipc_queue_clear(struct ipc_queue *q)
{
	struct ipc_qmsg *m;

	while ((m = TAILQ_FIRST(&q->msgs)) != NULL) {
		TAILQ_REMOVE(&q->msgs, m, entry);
		ipc_qmsg_free(m);
	}
	q->n = 0;
}

/*
 * The name a worker waits under for a master to adopt it: in the
 * abstract namespace (nothing to clean up), with the table's name and the
 * pid, which the table's worker list gives a new master.
 */
void
ipc_adopt_name(struct sockaddr_un *sun, socklen_t *len,
    const char *shm_name, pid_t pid)
{
	int n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
	    "rtpproxyd%s.%ld", shm_name, (long)pid);
	if (n < 0 || (size_t)n >= sizeof(sun->sun_path) - 1)
		n = (int)sizeof(sun->sun_path) - 2;
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    (size_t)n);
}
