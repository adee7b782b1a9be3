#include <sys/socket.h>
#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"

static int sv[2];

static void
setup(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
}

static void
teardown(void)
{
	close(sv[0]);
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
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
