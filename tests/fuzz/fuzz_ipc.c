/*
 * The event socket's decoder.
 *
 * Input: one octet, then the message.  The octet's low three bits are how
 * many descriptors come with the message (0..7), the next bits how many
 * the receiver has room for (0..IPC_MAXFDS).
 *
 * 1. ipc_check on the bytes, in an exactly sized buffer, with that
 *    descriptor count; a message it passes is then read the way its
 *    receiver reads it (master_readable, session_ipc and session_have in
 *    the master, worker_dispatch in a worker, the takeover between two
 *    masters), so that anything they use that the check does not
 *    guarantee shows up as a read out of bounds or a failed invariant.
 * 2. The same bytes and descriptors through a real SOCK_SEQPACKET
 *    socketpair and ipc_recv: what comes out is what went in, the
 *    verdict of ipc_check does not change, and no descriptor is left
 *    open behind the caller's back.
 * 3. ipc_init of the message's type, with the descriptors the type
 *    carries, makes a message ipc_check passes.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "ipc.h"
#include "fuzz.h"

#define MAX_SEND_FDS	7

static int	sv[2] = { -1, -1 };
static int	devnull = -1;
static int	lowest_free = -1;

/* The lowest descriptor number not in use: it moves if one leaked. */
static int
fuzz_lowest_free(void)
{
	int fd = fcntl(0, F_DUPFD, 0);

	FUZZ_CHECK(fd != -1);
	close(fd);
	return fd;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int size = 64 * 1024;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == -1 ||
	    (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		abort();
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	lowest_free = fuzz_lowest_free();
	return 0;
}

/*
 * What the master reads of a worker's message (master_readable,
 * session_ipc, session_have).
 */
static void
read_as_master(const void *buf, size_t n, const int *fds, int nfds)
{
	const struct ipc_hdr	*h = buf;
	const struct ipc_error	*e = buf;
	const struct ipc_have	*hv = buf;
	const struct ipc_latch	*l = buf;
	const struct ipc_dtmf	*dt = buf;
	char			 error[SHM_REASON_MAX];
	char			 reason[sizeof(l->reason)];
	volatile uint32_t	 sink;
	int			 i;

	sink = h->wgen + h->slot + h->slot_gen;
	switch (h->type) {
	case IPC_READY:
	case IPC_ACTIVE:
	case IPC_REMOVED:
	case IPC_CLOSED:
		FUZZ_CHECK(nfds == 0);
		break;
	case IPC_HELLO:
		FUZZ_CHECK(nfds == 0);
		sink += h->arg;
		break;
	case IPC_ERROR:
		FUZZ_CHECK(n == sizeof(*e) && nfds == 0);
		/* session_ipc copies the reason with "%s". */
		snprintf(error, sizeof(error), "%s", e->reason);
		FUZZ_CHECK(strlen(error) < sizeof(e->reason));
		(void)utf8_valid(error, strlen(error));
		break;
	case IPC_TCP_ACCEPTED:
		/* session_ipc keeps fds[0]. */
		FUZZ_CHECK(nfds == 1);
		sink += (uint32_t)fds[0];
		break;
	case IPC_HAVE:
		/* session_have keeps fds[0 .. nfds - 1] as the session's. */
		FUZZ_CHECK(n == sizeof(*hv));
		FUZZ_CHECK(hv->hdr.arg >= 1 && hv->hdr.arg <= IPC_MAXFDS &&
		    (int)hv->hdr.arg == nfds);
		for (i = 0; i < nfds; i++)
			sink += (uint32_t)fds[i];
		sink += hv->status;
		snprintf(error, sizeof(error), "%s", hv->reason);
		FUZZ_CHECK(strlen(error) < sizeof(hv->reason));
		(void)utf8_valid(error, strlen(error));
		break;
	case IPC_LATCHED:
	case IPC_REFUSED:
		/* session_latch_report: addresses by family, reason "%s". */
		FUZZ_CHECK(n == sizeof(*l) && nfds == 0);
		sink += l->from.family + l->to.family + l->to.port;
		snprintf(reason, sizeof(reason), "%s", l->reason);
		FUZZ_CHECK(strlen(reason) < sizeof(l->reason));
		(void)utf8_valid(reason, strlen(reason));
		break;
	case IPC_DTMF:
		/* session_dtmf_report: plain numbers, range-checked. */
		FUZZ_CHECK(n == sizeof(*dt) && nfds == 0);
		sink += dt->hdr.arg + dt->event + dt->volume + dt->duration +
		    dt->clock_rate + dt->rtp_ts + dt->ssrc + dt->end_seen +
		    (uint32_t)dt->start_ms;
		break;
	default:
		FUZZ_CHECK(!"a worker's type ipc_check passes that the master "
		    "does not know");
	}
	(void)sink;
}

/* What a worker reads of the master's message (worker_dispatch). */
static void
read_as_worker(const struct ipc_hdr *h, const int *fds, int nfds)
{
	volatile int	sink = 0;
	uint32_t	i;

	switch (h->type) {
	case IPC_ADD:
		/* relay_add takes h->arg descriptors from fds[]. */
		FUZZ_CHECK(h->arg >= 1 && h->arg <= IPC_MAXFDS);
		FUZZ_CHECK((int)h->arg == nfds);
		for (i = 0; i < h->arg; i++)
			sink += fds[i];
		break;
	case IPC_REMOVE:
	case IPC_SHUTDOWN:
		FUZZ_CHECK(nfds == 0);
		sink += (int)h->slot;
		break;
	case IPC_SETLOG:
		FUZZ_CHECK(nfds == 0);
		sink += (int)h->arg;
		break;
	default:
		FUZZ_CHECK(!"a master's type ipc_check passes that no worker "
		    "knows");
	}
	(void)sink;
}

/* What one master reads of the other while it takes over (takeover.c). */
static void
read_as_peer(const struct ipc_hdr *h, const int *fds, int nfds)
{
	volatile int sink = 0;

	switch (h->type) {
	case IPC_TAKE:
		FUZZ_CHECK(nfds == 0);
		break;
	case IPC_GO:
		/* The new master takes fds[0] as the pid file, if any. */
		FUZZ_CHECK(nfds == (int)h->arg && nfds <= 1);
		if (nfds == 1)
			sink += fds[0];
		break;
	default:
		FUZZ_CHECK(!"a takeover type ipc_check passes that no master "
		    "knows");
	}
	(void)sink;
}

/* Through the socket and back; verdict is ipc_check's on the original. */
static void
via_socket(const uint8_t *msg, size_t n, int nsend, int room, int verdict)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * MAX_SEND_FDS)];
	} cm;
	union {
		struct ipc_hdr	h;
		char		buf[IPC_MAXMSG];
	} in;
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*c;
	int		 fds[IPC_MAXFDS], got, i;
	ssize_t		 r;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = (void *)msg;
	iov.iov_len = n;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nsend > 0) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nsend);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nsend);
		for (i = 0; i < nsend; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &devnull,
			    sizeof(int));
	}
	if (sendmsg(sv[0], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)n)
		return;		/* too big for the socket: nothing sent */

	for (i = 0; i < IPC_MAXFDS; i++)
		fds[i] = -1;
	got = room;
	r = ipc_recv(sv[1], in.buf, sizeof(in.buf), fds, &got);
	FUZZ_CHECK(got >= 0 && got <= room && got <= nsend);
	if (n > sizeof(in.buf)) {
		FUZZ_CHECK(r == -1 && errno == EMSGSIZE);
	} else if (r > 0) {
		FUZZ_CHECK((size_t)r == n && memcmp(in.buf, msg, n) == 0);
		FUZZ_CHECK(got == (nsend < room ? nsend : room));
		if (got == nsend)
			FUZZ_CHECK((ipc_check(in.buf, (size_t)r, got) == 0) ==
			    verdict);
	} else if (r == -1)
		FUZZ_CHECK(errno == EMSGSIZE && nsend > IPC_MAXFDS);
	for (i = 0; i < got; i++) {
		FUZZ_CHECK(fds[i] >= 0 && fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
		close(fds[i]);
	}
	/* Whatever the receiver did not get must not be left open. */
	FUZZ_CHECKF(fuzz_lowest_free() == lowest_free,
	    "a descriptor leaked (%zu octets, %d sent, room %d, got %d, "
	    "ipc_recv %zd)", n, nsend, room, got, r);
}

/* As the senders make them, with the descriptors their type carries. */
static void
init_roundtrip(uint16_t type, uint32_t arg)
{
	union {
		struct ipc_hdr		h;
		char			buf[IPC_MAXMSG];
	} m;
	size_t	want = ipc_size(type);
	int	nfds = 0;

	if (want == 0)
		return;
	FUZZ_CHECK(want <= sizeof(m));
	ipc_init(&m.h, type, 1, 2, 3);
	FUZZ_CHECK(m.h.len == want && m.h.version == IPC_VERSION);
	switch (type) {
	case IPC_ADD:
	case IPC_HAVE:
		/* relay_each, tcp_each: a session's 1 to 4 sockets */
		m.h.arg = 1 + arg % IPC_MAXFDS;
		nfds = (int)m.h.arg;
		break;
	case IPC_TCP_ACCEPTED:
		nfds = 1;
		break;
	case IPC_GO:
		/* the pid file, or none */
		m.h.arg = arg % 2;
		nfds = (int)m.h.arg;
		break;
	}
	FUZZ_CHECK(ipc_check(&m, want, nfds) == 0);
	/* Not with one descriptor more or less. */
	FUZZ_CHECK(ipc_check(&m, want, nfds + 1) == -1);
	if (nfds > 0)
		FUZZ_CHECK(ipc_check(&m, want, nfds - 1) == -1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_hdr	*h;
	void		*buf;
	int		*fds;
	size_t		 n;
	int		 nsend, room, ok;

	if (size < 1)
		return 0;
	nsend = data[0] & 7;
	room = (data[0] >> 3) % (IPC_MAXFDS + 1);
	n = size - 1;

	/* Exactly n octets, so that a read past the message is caught. */
	if ((buf = malloc(n != 0 ? n : 1)) == NULL)
		abort();
	memcpy(buf, data + 1, n);
	if ((fds = malloc(sizeof(int) * (nsend != 0 ? (size_t)nsend : 1))) ==
	    NULL)
		abort();
	memset(fds, 0, sizeof(int) * (nsend != 0 ? (size_t)nsend : 1));

	ok = ipc_check(buf, n, nsend) == 0;
	if (ok) {
		h = buf;
		FUZZ_CHECK(n >= sizeof(*h) && h->version == IPC_VERSION &&
		    h->len == n && ipc_size(h->type) == n);
		/* The master drops worker messages of the master's types. */
		if (h->type < IPC_ADD)
			read_as_master(buf, n, fds, nsend);
		else if (h->type < IPC_TAKE)
			read_as_worker(h, fds, nsend);
		else
			read_as_peer(h, fds, nsend);
	}
	via_socket(data + 1, n, nsend, room, ok);
	if (n >= sizeof(*h)) {
		struct ipc_hdr	hdr;

		memcpy(&hdr, data + 1, sizeof(hdr));
		init_roundtrip(hdr.type, hdr.arg);
	}
	free(fds);
	free(buf);
	return 0;
}
