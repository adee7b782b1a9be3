/*
 * The kernel fast path (src/kfwd): the BPF program that the daemon
 * carries is accepted by this kernel's verifier; a real daemon with
 * kernel-forwarding on hands an established session to the kernel,
 * which relays it byte for byte both ways while the worker is stopped.
 *
 * The suite runs in a network namespace of its own (unshare at start:
 * its own lo, whose TC hook no one else shares), and so does every
 * daemon it starts.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "kfwd.h"

static char	vlog[1 << 16];
static struct daemon d;

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* A daemon killed by the test leaves its pins: they go too. */
static void
down(void)
{
	char dir[256];

	harness_cleanup(&d);
	if (d.shm[0] != '\0' && kfwd_pindir(d.shm, dir, sizeof(dir)) == 0)
		kfwd_cleanup(dir, d.shm);
}

static struct rpc_client *
up(const char *extra)
{
	struct rpc_client *c;

	ck_assert_msg(harness_start(&d, 1, extra) == 0, "daemon start");
	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	return c;
}

/* A session on loopback, RTCP off: its listen and forward ports. */
static void
mksess(struct rpc_client *c, const char *id, uint16_t dport, uint16_t *lp,
    uint16_t *fp)
{
	struct harness_session		 a = { .laddr = "127.0.0.1",
	    .faddr = "127.0.0.1", .daddr = "127.0.0.1", .nortcp = 1 };
	Rtpproxy__CreateSessionResponse	*resp = NULL;
	char				 det[256];

	a.id = id;
	a.dport = dport;
	ck_assert_msg(harness_create(c, &a, &resp, det, sizeof(det)) == 0,
	    "%s: %s", id, det);
	*lp = (uint16_t)resp->session->listen->port;
	*fp = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
}

/* Until both directions' RTP is in the kernel (or 10 s): 0 or -1. */
static int
wait_in_kernel(struct rpc_client *c, const char *id, int both)
{
	Rtpproxy__SessionInfo	*i;
	int			 n, ok = 0;

	for (n = 0; n < 100 * harness_slow() && !ok; n++) {
		if (harness_status(c, id, &i) != 0)
			return -1;
		ok = i->forward_stats->rtp_in_kernel &&
		    (!both || i->reverse_stats->rtp_in_kernel);
		harness_info_free(i);
		if (!ok)
			sleep_ms(100);
	}
	return ok ? 0 : -1;
}

/*
 * n RTP packets from fd to port, each taken at rfd byte for byte, from
 * the expected source port; seq from seq0.
 */
static void
exchange(int fd, uint16_t port, int rfd, uint16_t from_port, uint16_t seq0,
    uint32_t ssrc, int n)
{
	struct sockaddr_storage	from;
	uint8_t			b[256], got[256];
	size_t			len;
	ssize_t			r;
	int			i;

	for (i = 0; i < n; i++) {
		len = harness_rtp(b, (uint16_t)(seq0 + i),
		    160u * (uint32_t)(seq0 + i), ssrc, 40 + (size_t)(i % 7));
		b[len - 1] = (uint8_t)i;	/* each one its own */
		ck_assert_int_eq(harness_send(fd, "127.0.0.1", port, b, len),
		    0);
		r = harness_recv(rfd, got, sizeof(got), 3000, &from);
		ck_assert_msg(r == (ssize_t)len, "packet %d: got %zd of %zu",
		    i, r, len);
		ck_assert_msg(memcmp(b, got, len) == 0, "packet %d differs", i);
		ck_assert_uint_eq(harness_sa_port(&from), from_port);
	}
}

/*
 * Loopback, both ways: the first packets go through the worker, then
 * the session is in the kernel, and with the worker stopped (SIGSTOP)
 * the kernel alone relays it, byte for byte, with the relay's addresses.
 */
START_TEST(test_loopback_both_ways)
{
	struct rpc_client	*c;
	Rtpproxy__SessionInfo	*i;
	uint16_t		 cport, dport, lp, fp;
	int			 cal, dst;
	pid_t			 w;

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	ck_assert_int_ne(cal = harness_udp(0, &cport), -1);
	ck_assert_int_ne(dst = harness_udp(0, &dport), -1);
	mksess(c, "kb1", dport, &lp, &fp);
	/* through the worker: the caller latches, RTP is established */
	exchange(cal, lp, dst, fp, 1, 0x1234, 12);
	exchange(dst, fp, cal, lp, 1, 0x5678, 12);
	ck_assert_int_eq(wait_in_kernel(c, "kb1", 1), 0);

	ck_assert_int_gt(w = harness_worker_pid(&d, 0), 0);
	ck_assert_int_eq(kill(w, SIGSTOP), 0);
	exchange(cal, lp, dst, fp, 13, 0x1234, 50);
	exchange(dst, fp, cal, lp, 13, 0x5678, 50);
	ck_assert_int_eq(kill(w, SIGCONT), 0);

	/* the worker merges the kernel's figures: one set of them */
	sleep_ms(1500 * harness_slow());
	ck_assert_int_eq(harness_status(c, "kb1", &i), 0);
	ck_assert_uint_eq(i->forward_stats->packets_received, 62);
	ck_assert_uint_eq(i->forward_stats->packets_sent, 62);
	ck_assert_uint_eq(i->reverse_stats->packets_received, 62);
	ck_assert_uint_eq(i->reverse_stats->packets_sent, 62);
	ck_assert_uint_ge(i->forward_stats->kernel_packets, 50);
	ck_assert_uint_ge(i->reverse_stats->kernel_packets, 50);
	ck_assert_uint_eq(i->forward_stats->kernel_offloads, 1);
	ck_assert_int_eq(i->forward_stats->packets_lost, 0);
	ck_assert_uint_eq(i->forward_stats->packets_expected, 61);
	ck_assert_uint_eq(i->forward_stats->ssrc, 0x1234);
	harness_info_free(i);

	/* destroyed: the entries go, the ports are free of them */
	ck_assert_int_eq(harness_destroy(c, "kb1"), 0);
	rpc_client_free(c);
	close(cal);
	close(dst);
}
END_TEST

/* Loaded (the verifier walks every path) and unloaded again. */
START_TEST(test_verifier)
{
	int r = kfwd_verify(vlog, sizeof(vlog));

	if (r != 0)
		fprintf(stderr, "kfwd_verify: %s\n%s\n", strerror(errno), vlog);
	ck_assert_int_eq(r, 0);
}
END_TEST

static Suite *
kfwd_suite(void)
{
	Suite	*s = suite_create("kfwd");
	TCase	*tc = tcase_create("load");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_verifier);
	suite_add_tcase(s, tc);

	tc = tcase_create("relay");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, NULL, down);
	tcase_add_test(tc, test_loopback_both_ways);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	/* A network of our own: its lo, and TC hooks no one else uses. */
	if (unshare(CLONE_NEWNET) == -1) {
		perror("check_kfwd: unshare(CLONE_NEWNET) (run as root)");
		return EXIT_FAILURE;
	}
	if (system("ip link set lo up") != 0) {
		fprintf(stderr, "check_kfwd: ip link set lo up failed\n");
		return EXIT_FAILURE;
	}
	sr = srunner_create(kfwd_suite());

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
