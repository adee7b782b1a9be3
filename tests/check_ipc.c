#include <sys/socket.h>
#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "ipc.h"
#include "peer.h"

static int sv[2];

static void
setup(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
}

static void
teardown(void)
{
	if (sv[0] != -1)
		close(sv[0]);
	if (sv[1] != -1)
		close(sv[1]);
}

START_TEST(test_roundtrip_with_fds)
{
	struct ipc_hdr	h, *r;
	char		buf[IPC_MAXMSG];
	int		fds[4], got[IPC_MAXFDS], n = IPC_MAXFDS, i;
	struct stat	a, b;

	for (i = 0; i < 4; i++)
		ck_assert_int_ne(fds[i] = open("/dev/null", O_RDONLY), -1);
	ipc_init(&h, IPC_ADD, 7, 42, 9);
	h.arg = 4;
	ck_assert_int_eq(ipc_send(sv[0], &h, fds, 4), 0);
	ck_assert_int_eq(ipc_recv(sv[1], buf, sizeof(buf), got, &n),
	    sizeof(h));
	ck_assert_int_eq(n, 4);
	ck_assert_int_eq(ipc_check(buf, sizeof(h), n), 0);
	r = (struct ipc_hdr *)buf;
	ck_assert_uint_eq(r->type, IPC_ADD);
	ck_assert_uint_eq(r->wgen, 7);
	ck_assert_uint_eq(r->slot, 42);
	ck_assert_uint_eq(r->slot_gen, 9);
	fstat(fds[0], &a);
	fstat(got[0], &b);
	ck_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	/* Received descriptors are close-on-exec. */
	ck_assert(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
	for (i = 0; i < 4; i++) {
		close(fds[i]);
		close(got[i]);
	}
}
END_TEST

START_TEST(test_error_message)
{
	struct ipc_error	e;
	char			buf[IPC_MAXMSG];
	int			n = 0;
	ssize_t			len;

	ipc_init(&e.hdr, IPC_ERROR, 1, 2, 3);
	e.err = ECONNREFUSED;
	snprintf(e.reason, sizeof(e.reason), "ICMP port unreachable");
	ck_assert_int_eq(ipc_send(sv[0], &e.hdr, NULL, 0), 0);
	n = IPC_MAXFDS;
	len = ipc_recv(sv[1], buf, sizeof(buf), NULL, &n);
	ck_assert_int_eq(len, sizeof(e));
	ck_assert_int_eq(ipc_check(buf, (size_t)len, n), 0);
	ck_assert_str_eq(((struct ipc_error *)buf)->reason,
	    "ICMP port unreachable");
}
END_TEST

static int
check_bytes(const void *msg, size_t len, int nfds)
{
	return ipc_check(msg, len, nfds);
}

START_TEST(test_reject_short)
{
	struct ipc_hdr h;

	ipc_init(&h, IPC_READY, 1, 0, 0);
	ck_assert_int_eq(check_bytes(&h, sizeof(h), 0), 0);
	ck_assert_int_eq(check_bytes(&h, 0, 0), -1);
	ck_assert_int_eq(check_bytes(&h, sizeof(h) - 1, 0), -1);
	ck_assert_int_eq(errno, EPROTO);
	/* A header that claims more than arrived. */
	h.len = sizeof(h) + 4;
	ck_assert_int_eq(check_bytes(&h, sizeof(h), 0), -1);
}
END_TEST

START_TEST(test_reject_oversized)
{
	char		big[IPC_MAXMSG];
	struct ipc_hdr	h;

	memset(big, 0, sizeof(big));
	ipc_init(&h, IPC_ACTIVE, 1, 0, 0);
	memcpy(big, &h, sizeof(h));
	/* Right type, but more bytes than the type has. */
	ck_assert_int_eq(check_bytes(big, sizeof(h) + 8, 0), -1);
	h.len = sizeof(big);
	memcpy(big, &h, sizeof(h));
	ck_assert_int_eq(check_bytes(big, sizeof(big), 0), -1);
}
END_TEST

START_TEST(test_reject_version_type_fds)
{
	struct ipc_hdr		h;
	struct ipc_error	e;

	ipc_init(&h, IPC_READY, 1, 0, 0);
	h.version = IPC_VERSION + 1;
	ck_assert_int_eq(check_bytes(&h, sizeof(h), 0), -1);
	ipc_init(&h, IPC_READY, 1, 0, 0);
	h.type = 999;
	ck_assert_int_eq(check_bytes(&h, sizeof(h), 0), -1);
	/* Descriptors where the type has none, or the wrong count. */
	ipc_init(&h, IPC_REMOVE, 1, 0, 0);
	ck_assert_int_eq(check_bytes(&h, sizeof(h), 1), -1);
	ipc_init(&h, IPC_ADD, 1, 0, 0);
	h.arg = 4;
	ck_assert_int_eq(check_bytes(&h, sizeof(h), 2), -1);
	h.arg = 0;
	ck_assert_int_eq(check_bytes(&h, sizeof(h), 0), -1);
	h.arg = 9;
	ck_assert_int_eq(check_bytes(&h, sizeof(h), 9), -1);
	/* An error reason without its terminating NUL. */
	ipc_init(&e.hdr, IPC_ERROR, 1, 0, 0);
	memset(e.reason, 'x', sizeof(e.reason));
	ck_assert_int_eq(check_bytes(&e, sizeof(e), 0), -1);
}
END_TEST

/* A datagram larger than the buffer is reported, not read past. */
START_TEST(test_recv_truncated)
{
	char	big[256], small[sizeof(struct ipc_hdr)];
	int	n = 0, fd;
	ssize_t	r;

	memset(big, 0x5a, sizeof(big));
	ck_assert_int_eq(send(sv[0], big, sizeof(big), 0), sizeof(big));
	n = IPC_MAXFDS;
	r = ipc_recv(sv[1], small, sizeof(small), &fd, &n);
	ck_assert_int_eq(r, -1);
	ck_assert_int_eq(errno, EMSGSIZE);
}
END_TEST

START_TEST(test_recv_eof_and_empty)
{
	char	buf[IPC_MAXMSG];
	int	n = IPC_MAXFDS, fds[IPC_MAXFDS];

	ck_assert_int_eq(ipc_recv(sv[1], buf, sizeof(buf), fds, &n), -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(sv[0]);
	sv[0] = -1;
	n = IPC_MAXFDS;
	ck_assert_int_eq(ipc_recv(sv[1], buf, sizeof(buf), fds, &n), 0);
}
END_TEST

/* The lowest free descriptor number: it moves when one leaks. */
static int
lowest_free(void)
{
	int fd = dup(0);

	ck_assert_int_ne(fd, -1);
	close(fd);
	return fd;
}

/*
 * A zero-length record reads as end of file, and callers then close
 * nothing: descriptors sent with it must not stay open (found by
 * tests/fuzz/fuzz_ipc, seed corpus/ipc/crash-empty-with-fds).
 */
START_TEST(test_recv_empty_with_fds)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 2)];
	} cm;
	struct msghdr	 msg;
	struct cmsghdr	*c;
	char		 buf[IPC_MAXMSG];
	int		 fds[IPC_MAXFDS], send_fds[2], n = IPC_MAXFDS, before;

	ck_assert_int_ne(send_fds[0] = open("/dev/null", O_RDONLY), -1);
	ck_assert_int_ne(send_fds[1] = dup(send_fds[0]), -1);
	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(send_fds));
	memcpy(CMSG_DATA(c), send_fds, sizeof(send_fds));
	ck_assert_int_eq(sendmsg(sv[0], &msg, 0), 0);
	close(send_fds[0]);
	close(send_fds[1]);

	before = lowest_free();
	ck_assert_int_eq(ipc_recv(sv[1], buf, sizeof(buf), fds, &n), 0);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(lowest_free(), before);
}
END_TEST

/*
 * A peer that closes with messages of ours unread: the next read says
 * ECONNRESET once, then what it sent before can still be read, then the
 * end (master_readable and worker_ipc rely on it).
 */
START_TEST(test_recv_reset_then_data)
{
	struct ipc_hdr	h;
	char		buf[IPC_MAXMSG];
	int		n, fds[IPC_MAXFDS];

	ipc_init(&h, IPC_ACTIVE, 1, 7, 0);
	ck_assert_int_eq(ipc_send(sv[1], &h, NULL, 0), 0);
	ipc_init(&h, IPC_REMOVE, 1, 8, 0);
	ck_assert_int_eq(ipc_send(sv[0], &h, NULL, 0), 0);
	close(sv[1]);
	sv[1] = -1;
	n = IPC_MAXFDS;
	ck_assert_int_eq(ipc_recv(sv[0], buf, sizeof(buf), fds, &n), -1);
	ck_assert_int_eq(errno, ECONNRESET);
	n = IPC_MAXFDS;
	ck_assert_int_eq(ipc_recv(sv[0], buf, sizeof(buf), fds, &n),
	    sizeof(h));
	ck_assert_uint_eq(((struct ipc_hdr *)buf)->slot, 7);
	n = IPC_MAXFDS;
	ck_assert_int_eq(ipc_recv(sv[0], buf, sizeof(buf), fds, &n), 0);
}
END_TEST

/* Count of open descriptors: lowest_free cannot see a leak above a hole. */
static int
open_fds(void)
{
	int fd, n = 0;

	for (fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/*
 * A full socket: messages wait in order, with copies of their
 * descriptors (the sender closes its own at once), and go when there is
 * room; nothing is lost, nothing leaks, the bound holds.
 */
START_TEST(test_queue_order_and_fds)
{
	struct ipc_queue q;
	struct ipc_hdr	 h, *r;
	struct stat	 a, b;
	char		 buf[IPC_MAXMSG];
	int		 fds[IPC_MAXFDS], n, i, rc, queued = 0, sent;
	int		 before, small = 4096, want = 0, withfd = -1;
	ssize_t		 len;
	ino_t		 ino;

	before = open_fds();
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small,
	    sizeof(small)), 0);
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	ipc_queue_init(&q, 50);
	/* Until the socket is full, and 40 more: the one with a descriptor. */
	for (i = 0; queued < 40; i++) {
		ck_assert_int_lt(i, 100000);
		ipc_init(&h, IPC_ACTIVE, 1, (uint32_t)i, 0);
		if (queued == 10) {
			int fd;

			ck_assert_int_ne(fd = open("/dev/null", O_RDONLY), -1);
			fstat(fd, &a);
			ino = a.st_ino;
			ipc_init(&h, IPC_TCP_ACCEPTED, 1, (uint32_t)i, 0);
			rc = ipc_queue_send(&q, sv[0], &h, &fd, 1);
			close(fd);
			withfd = i;
		} else
			rc = ipc_queue_send(&q, sv[0], &h, NULL, 0);
		ck_assert_int_ne(rc, -1);
		if (rc == 1)
			queued++;
	}
	sent = i;
	ck_assert_uint_eq(ipc_queue_waiting(&q), 40);
	ck_assert_int_eq(open_fds(), before + 1);
	/* The bound: 10 more fit, then ENOBUFS, and nothing is sent. */
	for (; i < sent + 10; i++) {
		ipc_init(&h, IPC_ACTIVE, 1, (uint32_t)i, 0);
		ck_assert_int_eq(ipc_queue_send(&q, sv[0], &h, NULL, 0), 1);
	}
	sent = i;
	ipc_init(&h, IPC_ACTIVE, 1, (uint32_t)i, 0);
	ck_assert_int_eq(ipc_queue_send(&q, sv[0], &h, NULL, 0), -1);
	ck_assert_int_eq(errno, ENOBUFS);
	ck_assert_uint_eq(q.peak, 50);

	/* The reader takes what there is, the writer flushes, in order. */
	while (want < sent) {
		n = IPC_MAXFDS;
		len = ipc_recv(sv[1], buf, sizeof(buf), fds, &n);
		if (len == -1) {
			ck_assert_int_eq(errno, EAGAIN);
			ck_assert_int_ne(ipc_queue_flush(&q, sv[0]), -1);
			continue;
		}
		ck_assert_int_eq(ipc_check(buf, (size_t)len, n), 0);
		r = (struct ipc_hdr *)buf;
		ck_assert_uint_eq(r->slot, (uint32_t)want);
		if (want == withfd) {
			ck_assert_uint_eq(r->type, IPC_TCP_ACCEPTED);
			ck_assert_int_eq(n, 1);
			fstat(fds[0], &b);
			ck_assert(b.st_ino == ino);
			close(fds[0]);
		} else
			ck_assert_int_eq(n, 0);
		want++;
	}
	ck_assert_uint_eq(ipc_queue_waiting(&q), 0);
	ck_assert_int_eq(ipc_queue_flush(&q, sv[0]), 0);
	ck_assert_int_eq(open_fds(), before);
	ipc_queue_clear(&q);
}
END_TEST

/* A peer that is gone: flush says so, clear closes the copies. */
START_TEST(test_queue_peer_gone)
{
	struct ipc_queue q;
	struct ipc_hdr	 h;
	int		 before, small = 4096, fd, i, rc;

	before = open_fds();
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small,
	    sizeof(small)), 0);
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	ipc_queue_init(&q, 0);
	ck_assert_int_ne(fd = open("/dev/null", O_RDONLY), -1);
	for (i = 0, rc = 0; rc != 1; i++) {
		ck_assert_int_lt(i, 100000);
		ipc_init(&h, IPC_TCP_ACCEPTED, 1, (uint32_t)i, 0);
		ck_assert_int_ne(rc = ipc_queue_send(&q, sv[0], &h, &fd, 1),
		    -1);
	}
	close(fd);
	close(sv[1]);
	sv[1] = -1;
	ck_assert_int_eq(ipc_queue_flush(&q, sv[0]), -1);
	ck_assert_int_eq(ipc_queue_drain(&q, sv[0], 100), -1);
	ck_assert_uint_eq(ipc_queue_waiting(&q), 1);
	ipc_queue_clear(&q);
	ck_assert_uint_eq(ipc_queue_waiting(&q), 0);
	ck_assert_int_eq(open_fds(), before - 1);
}
END_TEST


/* --- the peer layer ------------------------------------------------------ */

struct seen {
	int		n, adds, removes, unknown, gone, why;
	uint32_t	slots[4096];
};

static int
on_add(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds, void *a)
{
	struct seen *s = a;

	if (s->n < 4096)
		s->slots[s->n] = h->slot;
	s->n++;
	s->adds++;
	while (nfds > 0)
		close(fds[--nfds]);
	return 0;
}

static int
on_remove(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *a)
{
	struct seen *s = a;

	s->n++;
	s->removes++;
	/* Slot 13 is wrong for this peer: the handler says so. */
	return h->slot == 13 ? -1 : 0;
}

static int
on_other(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *a)
{
	((struct seen *)a)->unknown++;
	return 0;
}

static void
on_gone(struct peer *p, int why, void *a)
{
	struct seen *s = a;

	s->gone++;
	s->why = why;
}

static const struct peer_type t_strict[] = {
	{ IPC_ACTIVE, on_add }, { IPC_REMOVE, on_remove }, { 0, NULL } };
static const struct peer_type t_default[] = {
	{ IPC_ACTIVE, on_add }, { 0, on_other } };
static const struct peer_ops o_strict = { t_strict, on_gone,
    PEER_GEN_STRICT, 8 };
static const struct peer_ops o_drop = { t_strict, on_gone, PEER_GEN_DROP, 8 };
static const struct peer_ops o_default = { t_default, on_gone,
    PEER_GEN_ANY, 8 };

static void
raw(uint16_t type, uint32_t gen, uint32_t slot)
{
	struct ipc_hdr h;

	ipc_init(&h, type, gen, slot, 0);
	ck_assert_int_eq(ipc_send(sv[0], &h, NULL, 0), 0);
}

/* Each type to its handler; a type not in the table is malformed. */
START_TEST(test_peer_dispatch)
{
	struct event_base	*base = event_base_new();
	struct peer		 p;
	struct seen		 s;

	memset(&s, 0, sizeof(s));
	peer_init(&p);
	ck_assert_int_eq(peer_open(&p, base, sv[1], "test", "other", 7,
	    &o_strict, &s), 0);
	raw(IPC_ACTIVE, 7, 1);
	raw(IPC_REMOVE, 7, 1);
	ck_assert_int_eq(peer_wait(&p, 1000), 1);
	ck_assert_int_eq(s.adds, 1);
	ck_assert_int_eq(s.removes, 1);
	ck_assert_int_eq(s.gone, 0);
	raw(IPC_SETLOG, 7, 0);
	ck_assert_int_eq(peer_wait(&p, 1000), -1);
	ck_assert_int_eq(s.gone, 1);
	ck_assert_int_eq(s.why, PEER_MALFORMED);
	/* Gone: it reads no more. */
	raw(IPC_ACTIVE, 7, 2);
	ck_assert_int_eq(peer_wait(&p, 100), -1);
	ck_assert_int_eq(s.adds, 1);
	sv[1] = -1;		/* the peer's now */
	peer_close(&p);
	event_base_free(base);
}
END_TEST

/* A handler that refuses a message makes the peer gone, malformed. */
START_TEST(test_peer_handler_refuses)
{
	struct event_base	*base = event_base_new();
	struct peer		 p;
	struct seen		 s;

	memset(&s, 0, sizeof(s));
	peer_init(&p);
	ck_assert_int_eq(peer_open(&p, base, sv[1], "test", "other", 0,
	    &o_default, &s), 0);
	raw(IPC_SHUTDOWN, 0, 0);	/* the default handler's */
	ck_assert_int_eq(peer_wait(&p, 1000), 1);
	ck_assert_int_eq(s.unknown, 1);
	ck_assert_int_eq(s.gone, 0);
	sv[1] = -1;
	peer_close(&p);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	peer_init(&p);
	ck_assert_int_eq(peer_open(&p, base, sv[1], "test", "other", 0,
	    &o_strict, &s), 0);
	raw(IPC_REMOVE, 0, 13);
	ck_assert_int_eq(peer_wait(&p, 1000), -1);
	ck_assert_int_eq(s.why, PEER_MALFORMED);
	sv[1] = -1;
	peer_close(&p);
	event_base_free(base);
}
END_TEST

/* Another generation: dropped, or malformed, as the peer is told. */
START_TEST(test_peer_generations)
{
	struct event_base	*base = event_base_new();
	struct peer		 p;
	struct seen		 s;

	memset(&s, 0, sizeof(s));
	peer_init(&p);
	ck_assert_int_eq(peer_open(&p, base, sv[1], "test", "other", 5,
	    &o_drop, &s), 0);
	raw(IPC_ACTIVE, 4, 1);
	raw(IPC_ACTIVE, 5, 2);
	ck_assert_int_eq(peer_wait(&p, 1000), 1);
	ck_assert_int_eq(s.adds, 1);
	ck_assert_uint_eq(s.slots[0], 2);
	ck_assert_int_eq(s.gone, 0);
	sv[1] = -1;
	peer_close(&p);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	memset(&s, 0, sizeof(s));
	peer_init(&p);
	ck_assert_int_eq(peer_open(&p, base, sv[1], "test", "other", 5,
	    &o_strict, &s), 0);
	raw(IPC_ACTIVE, 4, 1);
	ck_assert_int_eq(peer_wait(&p, 1000), -1);
	ck_assert_int_eq(s.why, PEER_MALFORMED);
	ck_assert_int_eq(s.adds, 0);
	sv[1] = -1;
	peer_close(&p);
	event_base_free(base);
}
END_TEST

/*
 * Thousands of messages to a side that does not read: none is lost, none
 * out of order, each stamped with the sender's generation; the queue goes
 * out as the loop finds room.  Then the end of the socket is EOF.
 */
START_TEST(test_peer_queue_loses_nothing)
{
	struct event_base	*base = event_base_new();
	struct peer		 snd, rcv;
	struct seen		*s = calloc(1, sizeof(*s)), dummy;
	struct ipc_hdr		 h;
	int			 i, n = 3000, rounds;

	memset(&dummy, 0, sizeof(dummy));
	peer_init(&snd);
	peer_init(&rcv);
	ck_assert_int_eq(peer_open(&snd, base, sv[0], "sender", "receiver",
	    9, &o_strict, &dummy), 0);
	for (i = 0; i < n; i++) {
		ipc_init(&h, IPC_ACTIVE, 0, (uint32_t)i, 0);
		ck_assert_int_eq(peer_send(&snd, &h, NULL, 0), 0);
	}
	ck_assert_uint_gt(peer_waiting(&snd), 0);
	ck_assert_int_eq(peer_open(&rcv, base, sv[1], "receiver", "sender",
	    9, &o_strict, s), 0);
	for (rounds = 0; rounds < 10000 && s->adds < n; rounds++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	ck_assert_int_eq(s->adds, n);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(s->slots[i], (uint32_t)i);
	ck_assert_uint_eq(peer_waiting(&snd), 0);
	ck_assert_int_eq(s->gone, 0);
	peer_close(&snd);
	for (rounds = 0; rounds < 100 && s->gone == 0; rounds++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	ck_assert_int_eq(s->gone, 1);
	ck_assert_int_eq(s->why, PEER_EOF);
	peer_close(&rcv);
	sv[0] = sv[1] = -1;
	free(s);
	event_base_free(base);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("ipc");
	TCase	*tc = tcase_create("framing");
	SRunner	*sr;
	int	 failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_roundtrip_with_fds);
	tcase_add_test(tc, test_error_message);
	tcase_add_test(tc, test_reject_short);
	tcase_add_test(tc, test_reject_oversized);
	tcase_add_test(tc, test_reject_version_type_fds);
	tcase_add_test(tc, test_recv_truncated);
	tcase_add_test(tc, test_recv_eof_and_empty);
	tcase_add_test(tc, test_recv_empty_with_fds);
	tcase_add_test(tc, test_recv_reset_then_data);
	tcase_add_test(tc, test_queue_order_and_fds);
	tcase_add_test(tc, test_queue_peer_gone);
	tcase_add_test(tc, test_peer_dispatch);
	tcase_add_test(tc, test_peer_handler_refuses);
	tcase_add_test(tc, test_peer_generations);
	tcase_add_test(tc, test_peer_queue_loses_nothing);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
