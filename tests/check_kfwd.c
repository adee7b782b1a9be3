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
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/capability.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
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
exchange_at(int fd, const char *addr, uint16_t port, int rfd,
    uint16_t from_port, uint16_t seq0, uint32_t ssrc, int n)
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
		ck_assert_int_eq(harness_send(fd, addr, port, b, len), 0);
		r = harness_recv(rfd, got, sizeof(got), 3000, &from);
		ck_assert_msg(r == (ssize_t)len, "packet %d: got %zd of %zu",
		    i, r, len);
		ck_assert_msg(memcmp(b, got, len) == 0, "packet %d differs", i);
		ck_assert_uint_eq(harness_sa_port(&from), from_port);
	}
}

static void
exchange(int fd, uint16_t port, int rfd, uint16_t from_port, uint16_t seq0,
    uint32_t ssrc, int n)
{
	exchange_at(fd, "127.0.0.1", port, rfd, from_port, seq0, ssrc, n);
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


/* The RTP figures of a direction: kernel_packets, expected, lost, jitter. */
struct figs {
	uint64_t	kernel, expected, sent;
	int64_t		lost;
	double		jitter;
	int		in_kernel;
};

static void
figs(struct rpc_client *c, const char *id, struct figs *f)
{
	Rtpproxy__SessionInfo *i;

	ck_assert_int_eq(harness_status(c, id, &i), 0);
	f->kernel = i->forward_stats->kernel_packets;
	f->expected = i->forward_stats->packets_expected;
	f->sent = i->forward_stats->packets_sent;
	f->lost = i->forward_stats->packets_lost;
	f->jitter = i->forward_stats->jitter_ms;
	f->in_kernel = i->forward_stats->rtp_in_kernel;
	harness_info_free(i);
}

/* Drain what waits at fd: how many. */
static int
drain(int fd, int ms)
{
	uint8_t	b[512];
	int	n = 0;

	while (harness_recv(fd, b, sizeof(b), ms, NULL) > 0)
		n++;
	return n;
}

/*
 * One stream, with gaps and timestamps that wander, to two sessions: one
 * the kernel relays, one with drop_dtmf (which keeps it in the worker; the
 * stream has no DTMF to drop).
 * The same counts and loss, and jitter within 1 %, whichever path.
 */
START_TEST(test_same_figures)
{
	struct harness_session	 a = { .laddr = "127.0.0.1",
	    .faddr = "127.0.0.1", .daddr = "127.0.0.1", .nortcp = 1 };
	Rtpproxy__CreateSessionResponse *resp = NULL;
	struct rpc_client	*c;
	struct figs		 k, u;
	char			 det[256];
	uint8_t			 b[256];
	uint16_t		 dk, du, lk, lu, fk, seq;
	int			 ck, cu, dsk, dsu, got = 0;
	size_t			 len;

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	ck_assert_int_ne(ck = harness_udp(0, NULL), -1);
	ck_assert_int_ne(cu = harness_udp(0, NULL), -1);
	ck_assert_int_ne(dsk = harness_udp(0, &dk), -1);
	ck_assert_int_ne(dsu = harness_udp(0, &du), -1);
	mksess(c, "kf", dk, &lk, &fk);
	a.id = "us";
	a.dport = du;
	a.drop_dtmf = 1;
	ck_assert_msg(harness_create(c, &a, &resp, det, sizeof(det)) == 0,
	    "%s", det);
	lu = (uint16_t)resp->session->listen->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);

	for (seq = 1; seq <= 600; seq++) {
		if (seq % 37 == 0 || seq % 101 == 0)
			continue;	/* lost on the way */
		len = harness_rtp(b, seq, 160u * seq + (seq % 5) * 400u,
		    0xabcd, 80);
		ck_assert_int_eq(harness_send(ck, "127.0.0.1", lk, b, len), 0);
		ck_assert_int_eq(harness_send(cu, "127.0.0.1", lu, b, len), 0);
		if (seq % 4 == 0)
			sleep_ms(1);
		got += drain(dsk, 0);
		drain(dsu, 0);
	}
	got += drain(dsk, 500);
	drain(dsu, 100);
	sleep_ms(1500 * harness_slow());
	figs(c, "kf", &k);
	figs(c, "us", &u);
	ck_assert_msg(k.kernel > 400, "kernel path: %llu packets",
	    (unsigned long long)k.kernel);
	ck_assert_int_eq(k.in_kernel, 1);
	/* the drop_dtmf session stays in the worker */
	ck_assert_uint_eq(u.kernel, 0);
	ck_assert_int_eq(u.in_kernel, 0);
	ck_assert_uint_eq(k.sent, u.sent);
	ck_assert_uint_eq(k.sent, (uint64_t)got);
	ck_assert_uint_eq(k.expected, u.expected);
	ck_assert_int_eq(k.lost, u.lost);
	ck_assert_int_gt(k.lost, 0);
	ck_assert_msg(k.jitter > 0 && fabs(k.jitter - u.jitter) <=
	    0.01 * u.jitter, "jitter: kernel %.4f ms, worker %.4f ms",
	    k.jitter, u.jitter);
	rpc_client_free(c);
	close(ck);
	close(cu);
	close(dsk);
	close(dsu);
}
END_TEST

/*
 * A rate-limited session goes to the kernel with its limit: a burst with
 * the worker stopped is cut where the worker's token bucket would cut it
 * (GCRA, 50 pkt/s, 1 s of burst: at most 1 + (elapsed + 1 s) / 20 ms
 * packets relayed since the first), the rest dropped and counted in
 * dropped_rate_limited; every packet is either relayed or counted.
 */
START_TEST(test_rate_limit)
{
	struct harness_session	 a = { .laddr = "127.0.0.1",
	    .faddr = "127.0.0.1", .daddr = "127.0.0.1", .nortcp = 1,
	    .id = "kr", .rate_pps = 50 };
	Rtpproxy__CreateSessionResponse *resp = NULL;
	Rtpproxy__SessionInfo	*i;
	struct rpc_client	*c;
	char			 det[256];
	uint8_t			 b[256];
	uint16_t		 dport, lp, fp, seq;
	int64_t			 t0, t1;
	uint64_t		 relayed, most;
	size_t			 len;
	int			 cal, dst, got, n = 300;
	pid_t			 w;

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	ck_assert_int_ne(cal = harness_udp(0, NULL), -1);
	ck_assert_int_ne(dst = harness_udp(0, &dport), -1);
	a.dport = dport;
	ck_assert_msg(harness_create(c, &a, &resp, det, sizeof(det)) == 0,
	    "%s", det);
	lp = (uint16_t)resp->session->listen->port;
	fp = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);

	t0 = harness_now_ms();
	exchange(cal, lp, dst, fp, 1, 0x3131, 12);
	ck_assert_int_eq(wait_in_kernel(c, "kr", 0), 0);
	ck_assert_int_gt(w = harness_worker_pid(&d, 0), 0);
	ck_assert_int_eq(kill(w, SIGSTOP), 0);
	for (seq = 13; seq < 13 + n; seq++) {
		len = harness_rtp(b, seq, 160u * seq, 0x3131, 40);
		ck_assert_int_eq(harness_send(cal, "127.0.0.1", lp, b, len),
		    0);
	}
	t1 = harness_now_ms();
	got = drain(dst, 500);
	ck_assert_int_eq(kill(w, SIGCONT), 0);
	harness_sleep_ms(1500 * harness_slow());
	ck_assert_int_eq(harness_status(c, "kr", &i), 0);
	ck_assert_int_eq(i->forward_stats->rtp_in_kernel, 1);
	ck_assert_uint_ge(i->forward_stats->kernel_packets, (uint64_t)n);
	ck_assert_uint_eq(i->forward_stats->packets_received, 12 + n);
	ck_assert_uint_eq(i->forward_stats->packets_sent, 12 + (uint64_t)got);
	ck_assert_uint_eq(i->forward_stats->dropped_rate_limited,
	    (uint64_t)(n - got));
	relayed = 12 + (uint64_t)got;
	most = 1 + (uint64_t)(t1 - t0 + 1000) / 20;
	ck_assert_msg(relayed <= most, "%llu relayed in %lld ms, at most "
	    "%llu", (unsigned long long)relayed, (long long)(t1 - t0),
	    (unsigned long long)most);
	/* a burst well under the 6 s that 300 packets take at 50 pkt/s */
	if (t1 - t0 < 3000)
		ck_assert_int_lt(got, n);
	harness_info_free(i);
	rpc_client_free(c);
	close(cal);
	close(dst);
}
END_TEST

/*
 * What the kernel does not take goes to the worker: a datagram that is
 * not RTP (relayed as it is), a sender that is not the latched one
 * (refused under latch-policy never); RTP from the caller then goes on
 * in the kernel.
 */
START_TEST(test_fallbacks)
{
	struct harness_session	 a = { .id = "fb", .laddr = "127.0.0.1",
	    .faddr = "127.0.0.1", .daddr = "127.0.0.1", .nortcp = 1,
	    .latch_policy = RTPPROXY__LATCH_POLICY__LATCH_POLICY_NEVER };
	Rtpproxy__CreateSessionResponse *resp = NULL;
	Rtpproxy__SessionInfo	*i;
	struct rpc_client	*c;
	struct sockaddr_storage	 from;
	char			 det[256];
	uint8_t			 b[256], got[256];
	uint16_t		 dport, lp, fp;
	int			 cal, dst, other;
	ssize_t			 r;
	pid_t			 w;

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	ck_assert_int_ne(cal = harness_udp(0, NULL), -1);
	ck_assert_int_ne(dst = harness_udp(0, &dport), -1);
	ck_assert_int_ne(other = harness_udp(0, NULL), -1);
	a.dport = dport;
	ck_assert_msg(harness_create(c, &a, &resp, det, sizeof(det)) == 0,
	    "%s", det);
	lp = (uint16_t)resp->session->listen->port;
	fp = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	exchange(cal, lp, dst, fp, 1, 0x77, 12);
	ck_assert_int_eq(wait_in_kernel(c, "fb", 0), 0);

	/* not RTP: the worker relays it, byte for byte */
	memset(b, 0x5a, 60);
	b[0] = 0x00;
	b[1] = 0x01;
	ck_assert_int_eq(harness_send(cal, "127.0.0.1", lp, b, 60), 0);
	r = harness_recv(dst, got, sizeof(got), 3000, &from);
	ck_assert_int_eq(r, 60);
	ck_assert_int_eq(memcmp(b, got, 60), 0);
	ck_assert_uint_eq(harness_sa_port(&from), fp);

	/* another sender: refused by the worker, not relayed by the kernel */
	r = (ssize_t)harness_rtp(b, 500, 80000, 0x99, 40);
	ck_assert_int_eq(harness_send(other, "127.0.0.1", lp, b, (size_t)r),
	    0);
	ck_assert_int_eq(harness_recv(dst, got, sizeof(got), 500, NULL), -1);

	/*
	 * The worker took the direction back for those; the caller's next
	 * RTP it relays hands it to the kernel again, which then relays with
	 * the worker stopped.
	 */
	exchange(cal, lp, dst, fp, 13, 0x77, 8);
	ck_assert_int_eq(wait_in_kernel(c, "fb", 0), 0);
	ck_assert_int_gt(w = harness_worker_pid(&d, 0), 0);
	ck_assert_int_eq(kill(w, SIGSTOP), 0);
	exchange(cal, lp, dst, fp, 21, 0x77, 20);
	ck_assert_int_eq(kill(w, SIGCONT), 0);
	sleep_ms(1500 * harness_slow());
	ck_assert_int_eq(harness_status(c, "fb", &i), 0);
	ck_assert_uint_eq(i->forward_stats->non_rtp_packets, 1);
	ck_assert_uint_eq(i->forward_stats->dropped_source, 1);
	ck_assert_uint_eq(i->forward_stats->packets_sent, 12 + 1 + 8 + 20);
	ck_assert_uint_eq(i->forward_stats->packets_received,
	    12 + 1 + 1 + 8 + 20);
	ck_assert_uint_ge(i->forward_stats->kernel_packets, 20);
	/* taken back for the worker's packets, not handed over anew */
	ck_assert_uint_eq(i->forward_stats->kernel_offloads, 1);
	harness_info_free(i);
	rpc_client_free(c);
	close(cal);
	close(dst);
	close(other);
}
END_TEST

/* auto without the privilege: one line that says why, and userspace. */
START_TEST(test_auto_no_privilege)
{
	struct rpc_client	*c;
	char			 wrap[256];
	uint16_t		 dport, lp, fp;
	int			 cal, dst;
	FILE			*fp_;

	snprintf(wrap, sizeof(wrap), "/tmp/kfwd-wrap-%ld.sh", (long)getpid());
	ck_assert_ptr_nonnull(fp_ = fopen(wrap, "w"));
	fprintf(fp_, "#!/bin/sh\nexec setpriv --bounding-set "
	    "-bpf,-net_admin,-sys_admin,-perfmon -- \"$@\"\n");
	fclose(fp_);
	ck_assert_int_eq(chmod(wrap, 0700), 0);
	setenv("RTPPROXYD_WRAPPER", wrap, 1);
	c = up("kernel-forwarding auto\nkernel-interfaces lo\n");
	unsetenv("RTPPROXYD_WRAPPER");
	unlink(wrap);
	ck_assert_int_eq(harness_log_count(&d, "kernel-forwarding auto: not "
	    "used:"), 1);
	ck_assert_int_ge(harness_log_count(&d, "CAP_"), 1);
	ck_assert_int_ne(cal = harness_udp(0, NULL), -1);
	ck_assert_int_ne(dst = harness_udp(0, &dport), -1);
	mksess(c, "np", dport, &lp, &fp);
	exchange(cal, lp, dst, fp, 1, 0x42, 20);
	ck_assert_int_eq(wait_in_kernel(c, "np", 0) == 0 ? 1 : 0, 0);
	rpc_client_free(c);
	close(cal);
	close(dst);
}
END_TEST


/* A loopback session in the kernel both ways: its sockets and ports. */
struct lsess {
	int		cal, dst;
	uint16_t	lp, fp;
	uint16_t	seq;
};

static void
lsess_up(struct rpc_client *c, const char *id, struct lsess *l)
{
	uint16_t dport;

	ck_assert_int_ne(l->cal = harness_udp(0, NULL), -1);
	ck_assert_int_ne(l->dst = harness_udp(0, &dport), -1);
	mksess(c, id, dport, &l->lp, &l->fp);
	exchange(l->cal, l->lp, l->dst, l->fp, 1, 0x1010, 12);
	exchange(l->dst, l->fp, l->cal, l->lp, 1, 0x2020, 12);
	l->seq = 13;
	ck_assert_int_eq(wait_in_kernel(c, id, 1), 0);
}

static void
lsess_both(struct lsess *l, int n)
{
	exchange(l->cal, l->lp, l->dst, l->fp, l->seq, 0x1010, n);
	exchange(l->dst, l->fp, l->cal, l->lp, l->seq, 0x2020, n);
	l->seq = (uint16_t)(l->seq + n);
}

static int
pinned(void)
{
	char		dir[256];
	struct stat	st;

	ck_assert_int_eq(kfwd_pindir(d.shm, dir, sizeof(dir)), 0);
	return stat(dir, &st) == 0;
}

/*
 * A worker killed with SIGKILL: the kernel relays on while there is no
 * worker, the new one adopts the entries and their figures; nothing
 * lost, nothing counted twice, no new hand-over.
 */
START_TEST(test_worker_killed)
{
	struct rpc_client	*c;
	Rtpproxy__SessionInfo	*i;
	struct lsess		 l;
	pid_t			 w;

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	lsess_up(c, "kw", &l);
	ck_assert_int_gt(w = harness_worker_pid(&d, 0), 0);
	ck_assert_int_eq(kill(w, SIGKILL), 0);
	lsess_both(&l, 100);
	ck_assert_int_eq(harness_wait_log(&d, "worker 0 ready", 2, 10000), 0);
	lsess_both(&l, 20);
	sleep_ms(1500 * harness_slow());
	ck_assert_int_eq(harness_status(c, "kw", &i), 0);
	ck_assert_int_eq(i->forward_stats->rtp_in_kernel, 1);
	ck_assert_int_eq(i->reverse_stats->rtp_in_kernel, 1);
	ck_assert_uint_eq(i->forward_stats->packets_sent, 132);
	ck_assert_uint_eq(i->reverse_stats->packets_sent, 132);
	ck_assert_uint_eq(i->forward_stats->packets_received, 132);
	ck_assert_uint_eq(i->forward_stats->kernel_offloads, 1);
	ck_assert_int_eq(i->forward_stats->packets_lost, 0);
	harness_info_free(i);
	rpc_client_free(c);
	close(l.cal);
	close(l.dst);
}
END_TEST

/*
 * The master replaced with SIGUSR2 mid-stream: the new one adopts the
 * pinned program, the session stays in the kernel, every packet
 * arrives; a clean stop of the new master unpins it all.
 */
START_TEST(test_master_usr2)
{
	struct rpc_client	*c;
	Rtpproxy__SessionInfo	*i;
	struct lsess		 l;
	pid_t			 old = 0, now = -1;
	int			 n;

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	lsess_up(c, "ku", &l);
	old = d.pid;
	ck_assert_int_eq(kill(old, SIGUSR2), 0);
	for (n = 0; n < 20; n++)
		lsess_both(&l, 5);
	for (n = 0; n < 500; n++) {
		now = harness_pidfile_pid(&d);
		if (now > 0 && now != old && harness_log_count(&d,
		    "all 1 workers ready") >= 2)
			break;
		sleep_ms(20);
	}
	ck_assert_int_ne(now, old);
	ck_assert_int_eq(harness_log_count(&d, "kernel forwarding on 1 "
	    "interface"), 2);
	lsess_both(&l, 20);
	rpc_client_free(c);
	sleep_ms(1500 * harness_slow());
	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	ck_assert_int_eq(harness_status(c, "ku", &i), 0);
	ck_assert_int_eq(i->forward_stats->rtp_in_kernel, 1);
	ck_assert_uint_eq(i->forward_stats->packets_sent, 132);
	ck_assert_uint_eq(i->reverse_stats->packets_sent, 132);
	ck_assert_uint_eq(i->forward_stats->kernel_offloads, 1);
	harness_info_free(i);
	rpc_client_free(c);
	/* a clean stop of the new master: nothing left pinned */
	ck_assert(pinned());
	ck_assert_int_eq(kill(now, SIGTERM), 0);
	for (n = 0; n < 500 && harness_alive(now); n++)
		sleep_ms(20);
	ck_assert(!harness_alive(now));
	ck_assert(!pinned());
	(void)waitpid(old, NULL, 0);
	d.pid = -1;
	close(l.cal);
	close(l.dst);
}
END_TEST

/* A capability set of pid from /proc/PID/status ("CapEff" ...), or ~0. */
static uint64_t
caps_of(pid_t pid, const char *set)
{
	char			 path[64], line[256];
	unsigned long long	 v = ~0ULL;
	size_t			 n = strlen(set);
	FILE			*fp;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return ~0ULL;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, set, n) == 0 && line[n] == ':')
			v = strtoull(line + n + 1, NULL, 16);
	fclose(fp);
	return v;
}

/*
 * Dropped to user nobody, the daemon still relays in the kernel: the
 * master loads and pins as root, keeps CAP_NET_ADMIN alone (its filters
 * to take off at the stop), the workers get the map's descriptor at exec
 * and no capability at all.  SIGSTOP of the worker: the kernel alone
 * relays.  A SIGUSR2 master is handed the descriptors and the capability
 * and relays on; its clean stop takes the filter off and unpins.
 */
START_TEST(test_user_nobody)
{
	struct rpc_client	*c;
	struct lsess		 l;
	char			 out[4096], dir[256], path[300];
	pid_t			 w, old, now = -1;
	int			 n;

	if (getpwnam("nobody") == NULL)
		return;		/* no such user here: nothing to test */
	c = up("user nobody\nkernel-forwarding on\nkernel-interfaces lo\n");
	lsess_up(c, "kn", &l);
	ck_assert_int_gt(w = harness_worker_pid(&d, 0), 0);
	ck_assert_uint_eq(caps_of(w, "CapEff"), 0);
	ck_assert_uint_eq(caps_of(w, "CapPrm"), 0);
	ck_assert_uint_eq(caps_of(w, "CapAmb"), 0);
	ck_assert_uint_eq(caps_of(d.pid, "CapEff"), 1ULL << CAP_NET_ADMIN);
	ck_assert_uint_eq(caps_of(d.pid, "CapPrm"), 1ULL << CAP_NET_ADMIN);
	ck_assert_int_eq(kill(w, SIGSTOP), 0);
	lsess_both(&l, 30);
	ck_assert_int_eq(kill(w, SIGCONT), 0);

	/* a new master: the same, as nobody from the start (it reads the
	 * configuration again) */
	ck_assert_int_eq(chmod(d.dir, 0711), 0);
	ck_assert_int_eq(chmod(d.conf, 0644), 0);
	old = d.pid;
	ck_assert_int_eq(kill(old, SIGUSR2), 0);
	for (n = 0; n < 500; n++) {
		now = harness_pidfile_pid(&d);
		if (now > 0 && now != old && harness_log_count(&d,
		    "all 1 workers ready") >= 2)
			break;
		sleep_ms(20);
	}
	ck_assert_int_ne(now, old);
	ck_assert_int_eq(harness_log_count(&d, "kernel forwarding on 1 "
	    "interface"), 2);
	ck_assert_uint_eq(caps_of(now, "CapEff"), 1ULL << CAP_NET_ADMIN);
	lsess_both(&l, 10);
	/* its workers, respawned, get the map too */
	n = harness_log_count(&d, "worker 0 ready");
	ck_assert_int_eq(kill(w, SIGKILL), 0);
	ck_assert_int_eq(harness_wait_log(&d, "worker 0 ready", n + 1,
	    10000 * harness_slow()), 0);
	ck_assert_int_gt(w = harness_worker_pid(&d, 0), 0);
	ck_assert_uint_eq(caps_of(w, "CapEff"), 0);
	lsess_both(&l, 10);
	rpc_client_free(c);

	/* a clean stop: no filter, no pin (the empty directory may stay) */
	ck_assert_int_eq(kill(now, SIGTERM), 0);
	for (n = 0; n < 500 && harness_alive(now); n++)
		sleep_ms(20);
	ck_assert(!harness_alive(now));
	(void)waitpid(old, NULL, 0);
	d.pid = -1;
	ck_assert_int_eq(harness_run("tc filter show dev lo ingress", out,
	    sizeof(out)), 0);
	ck_assert_ptr_null(strstr(out, "kfwd_ingress"));
	ck_assert_int_eq(kfwd_pindir(d.shm, dir, sizeof(dir)), 0);
	snprintf(path, sizeof(path), "%s/sessions", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/prog", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
	close(l.cal);
	close(l.dst);
}
END_TEST

/*
 * The whole daemon killed (SIGKILL, master and workers): its pins and
 * filter stay; the next start, with kernel-forwarding off, removes them.
 */
START_TEST(test_leftovers_removed)
{
	struct rpc_client	*c;
	struct lsess		 l;
	char			 out[4096];

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	lsess_up(c, "kl", &l);
	rpc_client_free(c);
	harness_kill_workers(&d, SIGKILL);
	ck_assert_int_eq(kill(d.pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(d.pid, NULL, 0), d.pid);
	d.pid = -1;
	ck_assert(pinned());
	ck_assert_int_eq(harness_run("tc filter show dev lo ingress", out,
	    sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "kfwd_ingress"));
	ck_assert_int_eq(harness_conf_set(&d, "kernel-forwarding off"), 0);
	ck_assert_int_eq(truncate(d.log, 0), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert(!pinned());
	ck_assert_int_eq(harness_run("tc filter show dev lo ingress", out,
	    sizeof(out)), 0);
	ck_assert_ptr_null(strstr(out, "kfwd_ingress"));
	close(l.cal);
	close(l.dst);
}
END_TEST

/* Until the forward RTP is out of the kernel (or 10 s): 0 or -1. */
static int
wait_out_of_kernel(struct rpc_client *c, const char *id)
{
	Rtpproxy__SessionInfo	*i;
	int			 n, out = 0;

	for (n = 0; n < 100 * harness_slow() && !out; n++) {
		if (harness_status(c, id, &i) != 0)
			return -1;
		out = !i->forward_stats->rtp_in_kernel &&
		    !i->reverse_stats->rtp_in_kernel;
		harness_info_free(i);
		if (!out)
			sleep_ms(100);
	}
	return out ? 0 : -1;
}

/* An RTCP receiver report of ssrc, 32 octets: its length. */
static size_t
mkrr(uint8_t *b, uint32_t ssrc, uint8_t tag)
{
	memset(b, 0, 32);
	b[0] = 0x81;
	b[1] = 201;
	b[3] = 7;
	b[4] = (uint8_t)(ssrc >> 24);
	b[5] = (uint8_t)(ssrc >> 16);
	b[6] = (uint8_t)(ssrc >> 8);
	b[7] = (uint8_t)ssrc;
	b[31] = tag;
	return 32;
}

/*
 * RTCP both ways in the kernel too, byte for byte, on port + 1; _i == 1:
 * with a rate limit (generous: nothing is over it), whose bucket the RTCP
 * entry takes from the RTP one.
 */
START_TEST(test_rtcp)
{
	struct harness_session		 a = { .id = "kr", .laddr = "127.0.0.1",
	    .faddr = "127.0.0.1", .daddr = "127.0.0.1" };
	Rtpproxy__CreateSessionResponse	*resp = NULL;
	Rtpproxy__SessionInfo		*i;
	struct rpc_client		*c;
	struct sockaddr_storage		 from;
	uint8_t				 b[64], got[64];
	char				 det[256];
	uint16_t			 dport, lp, fp;
	int				 cal, cal1, dst, dst1, n, ok = 0;
	size_t				 len;
	pid_t				 w;

	a.rate_pps = _i ? 1000 : 0;
	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	/* even ports with RTCP on the next: bound by the harness's peers */
	for (n = 0; n < 50 && !ok; n++) {
		ck_assert_int_ne(dst = harness_udp(0, &dport), -1);
		if ((dport & 1) == 0 &&
		    (dst1 = harness_udp_bind(0, (uint16_t)(dport + 1))) != -1)
			ok = 1;
		else
			close(dst);
	}
	ck_assert(ok);
	ok = 0;
	for (n = 0; n < 50 && !ok; n++) {
		uint16_t cp;

		ck_assert_int_ne(cal = harness_udp(0, &cp), -1);
		if ((cp & 1) == 0 &&
		    (cal1 = harness_udp_bind(0, (uint16_t)(cp + 1))) != -1)
			ok = 1;
		else
			close(cal);
	}
	ck_assert(ok);
	a.dport = dport;
	ck_assert_msg(harness_create(c, &a, &resp, det, sizeof(det)) == 0,
	    "%s", det);
	lp = (uint16_t)resp->session->listen->port;
	fp = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	exchange(cal, lp, dst, fp, 1, 0x31, 12);
	exchange(dst, fp, cal, lp, 1, 0x32, 12);
	for (n = 0; n < 4; n++) {
		len = mkrr(b, 0x31, (uint8_t)n);
		ck_assert_int_eq(harness_send(cal1, "127.0.0.1", lp + 1, b,
		    len), 0);
		ck_assert_int_eq(harness_recv(dst1, got, sizeof(got), 3000,
		    NULL), (ssize_t)len);
		len = mkrr(b, 0x32, (uint8_t)n);
		ck_assert_int_eq(harness_send(dst1, "127.0.0.1", fp + 1, b,
		    len), 0);
		ck_assert_int_eq(harness_recv(cal1, got, sizeof(got), 3000,
		    NULL), (ssize_t)len);
		/*
		 * RTP goes on as RTCP latches (which takes the entries out):
		 * with a rate limit RTCP goes in only after RTP, whose entry
		 * holds the bucket.
		 */
		exchange(cal, lp, dst, fp, (uint16_t)(13 + n), 0x31, 1);
		exchange(dst, fp, cal, lp, (uint16_t)(13 + n), 0x32, 1);
	}
	for (n = 0, ok = 0; n < 100 && !ok; n++) {
		ck_assert_int_eq(harness_status(c, "kr", &i), 0);
		ok = i->forward_stats->rtcp_in_kernel &&
		    i->reverse_stats->rtcp_in_kernel;
		harness_info_free(i);
		if (!ok)
			sleep_ms(100);
	}
	ck_assert_msg(ok, "RTCP not in the kernel");
	ck_assert_int_gt(w = harness_worker_pid(&d, 0), 0);
	ck_assert_int_eq(kill(w, SIGSTOP), 0);
	for (n = 10; n < 30; n++) {
		len = mkrr(b, 0x31, (uint8_t)n);
		ck_assert_int_eq(harness_send(cal1, "127.0.0.1", lp + 1, b,
		    len), 0);
		ck_assert_int_eq(harness_recv(dst1, got, sizeof(got), 3000,
		    &from), (ssize_t)len);
		ck_assert_int_eq(memcmp(b, got, len), 0);
		ck_assert_uint_eq(harness_sa_port(&from), fp + 1);
		len = mkrr(b, 0x32, (uint8_t)n);
		ck_assert_int_eq(harness_send(dst1, "127.0.0.1", fp + 1, b,
		    len), 0);
		ck_assert_int_eq(harness_recv(cal1, got, sizeof(got), 3000,
		    &from), (ssize_t)len);
		ck_assert_int_eq(memcmp(b, got, len), 0);
		ck_assert_uint_eq(harness_sa_port(&from), lp + 1);
	}
	ck_assert_int_eq(kill(w, SIGCONT), 0);
	sleep_ms(1500 * harness_slow());
	ck_assert_int_eq(harness_status(c, "kr", &i), 0);
	ck_assert_uint_eq(i->forward_stats->rtcp_packets_sent, 24);
	ck_assert_uint_eq(i->reverse_stats->rtcp_packets_sent, 24);
	harness_info_free(i);
	rpc_client_free(c);
	close(cal);
	close(cal1);
	close(dst);
	close(dst1);
}
END_TEST

/*
 * A reload whose rules deny the destination takes the entries out of
 * the kernel, and they are not handed over again.
 */
START_TEST(test_rule_change)
{
	struct rpc_client	*c;
	struct lsess		 l;
	uint8_t			 b[256];
	size_t			 len;

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	lsess_up(c, "kc", &l);
	ck_assert_int_eq(harness_conf_add(&d, "deny-destination "
	    "127.0.0.1/32"), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_eq(wait_out_of_kernel(c, "kc"), 0);
	/* RTP goes on to the worker, which does not hand it over again */
	len = harness_rtp(b, l.seq, 160u * l.seq, 0x1010, 40);
	ck_assert_int_eq(harness_send(l.cal, "127.0.0.1", l.lp, b, len), 0);
	sleep_ms(1200 * harness_slow());
	ck_assert_int_eq(wait_out_of_kernel(c, "kc"), 0);
	rpc_client_free(c);
	close(l.cal);
	close(l.dst);
}
END_TEST

/*
 * UpdateSession moves a session the kernel relays to another destination:
 * its entries come out (they hold the old one), and every packet after the
 * answer's first reaches the new destination, none the old.
 */
START_TEST(test_update_destination)
{
	struct rpc_client		*c;
	struct lsess			 l;
	Rtpproxy__UpdateSessionRequest	 req =
	    RTPPROXY__UPDATE_SESSION_REQUEST__INIT;
	Rtpproxy__UpdateSessionResponse	*resp = NULL;
	Rtpproxy__Endpoint		 ep = RTPPROXY__ENDPOINT__INIT;
	uint8_t				 b[256];
	char				 det[256];
	uint16_t			 np;
	size_t				 len;
	int				 nd, i, got = 0, old = 0;

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	lsess_up(c, "ku", &l);
	ck_assert_int_ne(nd = harness_udp(0, &np), -1);
	req.session_id = (char *)"ku";
	ep.address = (char *)"127.0.0.1";
	ep.port = np;
	req.destination = &ep;
	ck_assert_int_eq(rpc_unary(c, "/rtpproxy.RtpProxy/UpdateSession",
	    &req.base, &rtpproxy__update_session_response__descriptor,
	    (ProtobufCMessage **)&resp, det, sizeof(det), 10000), 0);
	rtpproxy__update_session_response__free_unpacked(resp, NULL);
	/* the first one that reaches the new destination, then 40 more */
	for (i = 0; i < 100 && got == 0; i++) {
		len = harness_rtp(b, l.seq, 160u * l.seq, 0x1010, 40);
		l.seq++;
		ck_assert_int_eq(harness_send(l.cal, "127.0.0.1", l.lp, b,
		    len), 0);
		if (harness_recv(nd, b, sizeof(b), 50, NULL) > 0)
			got = 1;
	}
	ck_assert_int_eq(got, 1);
	while (harness_recv(l.dst, b, sizeof(b), 100, NULL) > 0)
		;
	for (i = 0; i < 40; i++) {
		len = harness_rtp(b, l.seq, 160u * l.seq, 0x1010, 40);
		l.seq++;
		ck_assert_int_eq(harness_send(l.cal, "127.0.0.1", l.lp, b,
		    len), 0);
		sleep_ms(5);
	}
	for (i = 0; i < 40; i++)
		if (harness_recv(nd, b, sizeof(b), 2000, NULL) > 0)
			got++;
	while (harness_recv(l.dst, b, sizeof(b), 200, NULL) > 0)
		old++;
	ck_assert_int_eq(got, 41);
	ck_assert_int_eq(old, 0);
	rpc_client_free(c);
	close(l.cal);
	close(l.dst);
	close(nd);
}
END_TEST

/*
 * The idle timeout sees the kernel's packets: a session whose media the
 * kernel relays for longer than its idle timeout stays; silent, it goes.
 */
START_TEST(test_idle_timeout)
{
	struct harness_session	 a = { .id = "ki", .laddr = "127.0.0.1",
	    .faddr = "127.0.0.1", .daddr = "127.0.0.1", .nortcp = 1,
	    .idle = 2 };
	Rtpproxy__CreateSessionResponse *resp = NULL;
	Rtpproxy__SessionInfo	*i;
	struct rpc_client	*c;
	char			 det[256];
	uint16_t		 dport, lp, fp, seq = 1;
	int			 cal, dst, n;

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	ck_assert_int_ne(cal = harness_udp(0, NULL), -1);
	ck_assert_int_ne(dst = harness_udp(0, &dport), -1);
	a.dport = dport;
	ck_assert_msg(harness_create(c, &a, &resp, det, sizeof(det)) == 0,
	    "%s", det);
	lp = (uint16_t)resp->session->listen->port;
	fp = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	exchange(cal, lp, dst, fp, seq, 0x41, 12);
	seq = 13;
	ck_assert_int_eq(wait_in_kernel(c, "ki", 0), 0);
	/* 4 s of media, all through the kernel: twice the idle timeout */
	for (n = 0; n < 20; n++) {
		exchange(cal, lp, dst, fp, seq, 0x41, 1);
		seq++;
		sleep_ms(200);
	}
	ck_assert_int_eq(harness_status(c, "ki", &i), 0);
	ck_assert_uint_ge(i->forward_stats->kernel_packets, 10);
	harness_info_free(i);
	/* silent now: closed by the idle timeout */
	for (n = 0; n < 100 * harness_slow(); n++) {
		if (harness_status(c, "ki", &i) != 0)
			break;
		harness_info_free(i);
		sleep_ms(100);
	}
	ck_assert_int_ge(harness_log_count(&d, "session ki closed: idle"), 1);
	rpc_client_free(c);
	close(cal);
	close(dst);
}
END_TEST

/*
 * The caller moves (latch-policy latest): the entries made for the old
 * address come out first, and the new one is handed over in its turn.
 */
START_TEST(test_relatch)
{
	struct harness_session	 a = { .id = "km", .laddr = "127.0.0.1",
	    .faddr = "127.0.0.1", .daddr = "127.0.0.1", .nortcp = 1,
	    .latch_policy = RTPPROXY__LATCH_POLICY__LATCH_POLICY_LATEST };
	Rtpproxy__CreateSessionResponse *resp = NULL;
	Rtpproxy__SessionInfo	*i;
	struct rpc_client	*c;
	char			 det[256];
	uint16_t		 dport, lp, fp;
	int			 cal, cal2, dst;
	pid_t			 w;

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	ck_assert_int_ne(cal = harness_udp(0, NULL), -1);
	ck_assert_int_ne(cal2 = harness_udp(0, NULL), -1);
	ck_assert_int_ne(dst = harness_udp(0, &dport), -1);
	a.dport = dport;
	ck_assert_msg(harness_create(c, &a, &resp, det, sizeof(det)) == 0,
	    "%s", det);
	lp = (uint16_t)resp->session->listen->port;
	fp = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	exchange(cal, lp, dst, fp, 1, 0x51, 12);
	exchange(dst, fp, cal, lp, 1, 0x52, 12);
	ck_assert_int_eq(wait_in_kernel(c, "km", 1), 0);
	/* the caller's new address: RTP in sequence moves the latch */
	exchange(cal2, lp, dst, fp, 13, 0x51, 12);
	/* the reverse media follows it, first through the worker */
	exchange(dst, fp, cal2, lp, 13, 0x52, 12);
	ck_assert_int_eq(wait_in_kernel(c, "km", 1), 0);
	ck_assert_int_gt(w = harness_worker_pid(&d, 0), 0);
	ck_assert_int_eq(kill(w, SIGSTOP), 0);
	exchange(cal2, lp, dst, fp, 25, 0x51, 10);
	exchange(dst, fp, cal2, lp, 25, 0x52, 10);
	ck_assert_int_eq(kill(w, SIGCONT), 0);
	sleep_ms(1500 * harness_slow());
	ck_assert_int_eq(harness_status(c, "km", &i), 0);
	ck_assert_uint_eq(i->forward_stats->kernel_offloads, 2);
	ck_assert_uint_eq(i->forward_stats->packets_sent, 34);
	ck_assert_uint_eq(i->reverse_stats->packets_sent, 34);
	harness_info_free(i);
	rpc_client_free(c);
	close(cal);
	close(cal2);
	close(dst);
}
END_TEST

/*
 * A TCP session with kernel-forwarding on: relayed by the worker as
 * before (RFC 4571 frames of RTP), nothing of it in the kernel.
 */
START_TEST(test_tcp_stays)
{
	struct harness_session		 a = { .id = "kt", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .transport = 1 };
	Rtpproxy__CreateSessionResponse	*resp = NULL;
	Rtpproxy__SessionInfo		*i;
	struct rpc_client		*c;
	struct sockaddr_in		 sin;
	uint16_t			 dport;
	uint8_t				 b[256], got[4096];
	char				 det[256];
	size_t				 len, want = 0, have = 0;
	ssize_t				 r;
	int				 l, cal, peer, n;

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	/* not the kernel's choice: that may be in the daemon's range */
	ck_assert_int_ge(l = harness_tcp_listen("127.0.0.1", &dport), 0);
	a.dport = dport;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(harness_create(c, &a, &resp, det, sizeof(det)) == 0,
	    "%s", det);
	sin.sin_port = htons((uint16_t)resp->session->listen->port);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	ck_assert_int_ge(cal = socket(AF_INET, SOCK_STREAM, 0), 0);
	ck_assert_int_eq(connect(cal, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	ck_assert_int_ge(peer = accept(l, NULL, NULL), 0);
	for (n = 0; n < 30; n++) {
		len = harness_rtp(b + 2, (uint16_t)(n + 1), 160u * (n + 1),
		    0x61, 40);
		b[0] = (uint8_t)(len >> 8);
		b[1] = (uint8_t)len;
		ck_assert_int_eq(send(cal, b, len + 2, 0), (ssize_t)(len + 2));
		want += len + 2;
	}
	while (have < want) {
		r = harness_recv(peer, got, sizeof(got), 3000, NULL);
		ck_assert_int_gt(r, 0);
		have += (size_t)r;
	}
	ck_assert_uint_eq(have, want);
	sleep_ms(800 * harness_slow());
	ck_assert_int_eq(harness_status(c, "kt", &i), 0);
	ck_assert_int_eq(i->forward_stats->rtp_in_kernel, 0);
	ck_assert_uint_eq(i->forward_stats->kernel_packets, 0);
	ck_assert_uint_eq(i->forward_stats->kernel_offloads, 0);
	harness_info_free(i);
	rpc_client_free(c);
	close(cal);
	close(peer);
	close(l);
}
END_TEST

/* IPv6 on ::1, both ways, in the kernel with the worker stopped. */
START_TEST(test_ipv6)
{
	struct harness_session		 a = { .id = "k6", .laddr = "::1",
	    .faddr = "::1", .daddr = "::1", .nortcp = 1 };
	Rtpproxy__CreateSessionResponse	*resp = NULL;
	Rtpproxy__SessionInfo		*i;
	struct rpc_client		*c;
	char				 det[256];
	uint16_t			 dport, lp, fp;
	int				 cal, dst;
	pid_t				 w;

	c = up("kernel-forwarding on\nkernel-interfaces lo\n");
	ck_assert_msg((cal = harness_udp(1, NULL)) != -1, "no ::1 on lo");
	ck_assert_int_ne(dst = harness_udp(1, &dport), -1);
	a.dport = dport;
	ck_assert_msg(harness_create(c, &a, &resp, det, sizeof(det)) == 0,
	    "%s", det);
	lp = (uint16_t)resp->session->listen->port;
	fp = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	exchange_at(cal, "::1", lp, dst, fp, 1, 0x61, 12);
	exchange_at(dst, "::1", fp, cal, lp, 1, 0x62, 12);
	ck_assert_int_eq(wait_in_kernel(c, "k6", 1), 0);
	ck_assert_int_gt(w = harness_worker_pid(&d, 0), 0);
	ck_assert_int_eq(kill(w, SIGSTOP), 0);
	exchange_at(cal, "::1", lp, dst, fp, 13, 0x61, 50);
	exchange_at(dst, "::1", fp, cal, lp, 13, 0x62, 50);
	ck_assert_int_eq(kill(w, SIGCONT), 0);
	sleep_ms(1500 * harness_slow());
	ck_assert_int_eq(harness_status(c, "k6", &i), 0);
	ck_assert_uint_eq(i->forward_stats->packets_sent, 62);
	ck_assert_uint_eq(i->reverse_stats->packets_sent, 62);
	ck_assert_uint_ge(i->forward_stats->kernel_packets, 50);
	ck_assert_int_eq(i->forward_stats->packets_lost, 0);
	harness_info_free(i);
	rpc_client_free(c);
	close(cal);
	close(dst);
}
END_TEST

/*
 * Three hosts: the caller's and the callee's network namespaces, each
 * over a veth pair to ours, where the daemon runs.  Names carry our pid.
 */
#define NS_CALLER	"10.200.1.2"
#define NS_RELAY_C	"10.200.1.1"
#define NS_CALLEE	"10.200.2.2"
#define NS_RELAY_D	"10.200.2.1"
#define NS6_CALLER	"fd01:1::2"
#define NS6_RELAY_C	"fd01:1::1"
#define NS6_CALLEE	"fd01:2::2"
#define NS6_RELAY_D	"fd01:2::1"

static char	ns_c[32], ns_d[32], if_c[16], if_d[16];

static void
sh(const char *fmt, ...)
{
	char	cmd[512];
	va_list	ap;
	int	r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	ck_assert_msg(r == 0, "%s: %d", cmd, r);
}

/* Unchecked: in the runner, even when the test failed. */
static void
ns_down(void)
{
	char cmd[128];

	if (ns_c[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null; "
		    "ip netns del %s 2>/dev/null", ns_c, ns_d);
		if (system(cmd) != 0)
			fprintf(stderr, "check_kfwd: %s failed\n", cmd);
	}
}

static void
ns_names(void)
{
	long pid = (long)getpid();

	snprintf(ns_c, sizeof(ns_c), "kfwd-c-%ld", pid);
	snprintf(ns_d, sizeof(ns_d), "kfwd-d-%ld", pid);
	snprintf(if_c, sizeof(if_c), "kc%ld", pid);
	snprintf(if_d, sizeof(if_d), "kd%ld", pid);
}

static void
ns_up(void)
{
	sh("ip netns add %s && ip netns add %s", ns_c, ns_d);
	sh("sysctl -qw net.ipv4.conf.all.forwarding=1");
	sh("ip link add %s type veth peer name p netns %s", if_c, ns_c);
	sh("ip link add %s type veth peer name p netns %s", if_d, ns_d);
	sh("ip addr add %s/24 dev %s && ip link set %s up", NS_RELAY_C, if_c,
	    if_c);
	sh("ip addr add %s/24 dev %s && ip link set %s up", NS_RELAY_D, if_d,
	    if_d);
	sh("ip -n %s addr add %s/24 dev p && ip -n %s link set p up && "
	    "ip -n %s link set lo up", ns_c, NS_CALLER, ns_c, ns_c);
	sh("ip -n %s addr add %s/24 dev p && ip -n %s link set p up && "
	    "ip -n %s link set lo up", ns_d, NS_CALLEE, ns_d, ns_d);
	/* IPv6 too, without duplicate address detection's wait */
	sh("sysctl -qw net.ipv6.conf.all.forwarding=1");
	sh("ip addr add %s/64 dev %s nodad", NS6_RELAY_C, if_c);
	sh("ip addr add %s/64 dev %s nodad", NS6_RELAY_D, if_d);
	sh("ip -n %s addr add %s/64 dev p nodad", ns_c, NS6_CALLER);
	sh("ip -n %s addr add %s/64 dev p nodad", ns_d, NS6_CALLEE);
}

/* A UDP socket in namespace ns, bound to addr: it stays there. */
static int
ns_udp(const char *ns, const char *addr, uint16_t *port)
{
	struct sockaddr_storage	ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		len;
	char			path[64];
	int			self, other, fd, v6 = strchr(addr, ':') != NULL;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	ck_assert_int_ne(self = open("/proc/self/ns/net", O_RDONLY), -1);
	ck_assert_int_ne(other = open(path, O_RDONLY), -1);
	ck_assert_int_eq(setns(other, CLONE_NEWNET), 0);
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_eq(setns(self, CLONE_NEWNET), 0);
	close(self);
	close(other);
	ck_assert_int_ne(fd, -1);
	memset(&ss, 0, sizeof(ss));
	if (v6) {
		sin6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &sin6->sin6_addr);
		len = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &sin->sin_addr);
		len = sizeof(*sin);
	}
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&ss, len), 0);
	len = sizeof(ss);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	*port = ntohs(v6 ? sin6->sin6_port : sin->sin_port);
	return fd;
}

/*
 * fd sends its packets with TTL (hop limit) ttl, and tells what the ones
 * it receives came with.
 */
static void
ttl_set(int fd, int v6, int ttl)
{
	int on = 1;

	if (v6) {
		ck_assert_int_eq(setsockopt(fd, IPPROTO_IPV6,
		    IPV6_UNICAST_HOPS, &ttl, sizeof(ttl)), 0);
		ck_assert_int_eq(setsockopt(fd, IPPROTO_IPV6,
		    IPV6_RECVHOPLIMIT, &on, sizeof(on)), 0);
	} else {
		ck_assert_int_eq(setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl,
		    sizeof(ttl)), 0);
		ck_assert_int_eq(setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &on,
		    sizeof(on)), 0);
	}
}

/* One RTP packet from fd to addr:port, taken at rfd: the TTL it had. */
static int
ttl_one(int fd, const char *addr, uint16_t port, int rfd, uint16_t seq,
    uint32_t ssrc)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int)) * 2];
	}			 cb;
	struct msghdr		 mh;
	struct iovec		 iov;
	struct cmsghdr		*cm;
	struct pollfd		 pfd = { .fd = rfd, .events = POLLIN };
	uint8_t			 b[256], got[256];
	size_t			 len;
	int			 ttl = -1;

	len = harness_rtp(b, seq, 160u * seq, ssrc, 40);
	ck_assert_int_eq(harness_send(fd, addr, port, b, len), 0);
	ck_assert_int_eq(poll(&pfd, 1, 3000 * harness_slow()), 1);
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = got;
	iov.iov_len = sizeof(got);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cb.buf;
	mh.msg_controllen = sizeof(cb.buf);
	ck_assert_int_eq(recvmsg(rfd, &mh, 0), (ssize_t)len);
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
		if ((cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_TTL) ||
		    (cm->cmsg_level == IPPROTO_IPV6 &&
		    cm->cmsg_type == IPV6_HOPLIMIT))
			memcpy(&ttl, CMSG_DATA(cm), sizeof(ttl));
	ck_assert_int_ne(ttl, -1);
	return ttl;
}

/*
 * One session from caller to callee through the relay's two sides.  The
 * caller and the callee send with TTL 17: the worker sends new packets
 * with the relay's default TTL (hop limit), and so does the kernel.
 */
static void
netns_session(struct rpc_client *c, const char *id, const char *caller,
    const char *relay_c, const char *relay_d, const char *callee)
{
	struct harness_session		 a = { .laddr = relay_c,
	    .faddr = relay_d, .daddr = callee, .nortcp = 1, .id = id };
	Rtpproxy__CreateSessionResponse	*resp = NULL;
	Rtpproxy__SessionInfo		*i;
	char				 det[256];
	uint16_t			 cport, dport, lp, fp;
	int				 cal, dst;
	pid_t				 w;

	int			 v6 = strchr(caller, ':') != NULL;
	int			 tu[2], tk[2];

	cal = ns_udp(ns_c, caller, &cport);
	dst = ns_udp(ns_d, callee, &dport);
	ttl_set(cal, v6, 17);
	ttl_set(dst, v6, 17);
	a.dport = dport;
	ck_assert_msg(harness_create(c, &a, &resp, det, sizeof(det)) == 0,
	    "%s: %s", id, det);
	lp = (uint16_t)resp->session->listen->port;
	fp = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);

	tu[0] = ttl_one(cal, relay_c, lp, dst, 0, 0x1111);
	tu[1] = ttl_one(dst, relay_d, fp, cal, 0, 0x2222);
	exchange_at(cal, relay_c, lp, dst, fp, 1, 0x1111, 12);
	exchange_at(dst, relay_d, fp, cal, lp, 1, 0x2222, 12);
	ck_assert_msg(wait_in_kernel(c, id, 1) == 0, "%s not in the kernel",
	    id);
	ck_assert_int_gt(w = harness_worker_pid(&d, 0), 0);
	ck_assert_int_eq(kill(w, SIGSTOP), 0);
	tk[0] = ttl_one(cal, relay_c, lp, dst, 13, 0x1111);
	tk[1] = ttl_one(dst, relay_d, fp, cal, 13, 0x2222);
	exchange_at(cal, relay_c, lp, dst, fp, 14, 0x1111, 199);
	exchange_at(dst, relay_d, fp, cal, lp, 14, 0x2222, 199);
	ck_assert_int_eq(kill(w, SIGCONT), 0);
	/* what the relay originates, not what the caller sent */
	ck_assert_int_ne(tu[0], 17);
	ck_assert_int_ne(tu[1], 17);
	ck_assert_int_eq(tk[0], tu[0]);
	ck_assert_int_eq(tk[1], tu[1]);
	sleep_ms(1500 * harness_slow());
	ck_assert_int_eq(harness_status(c, id, &i), 0);
	ck_assert_uint_eq(i->forward_stats->packets_sent, 213);
	ck_assert_uint_eq(i->reverse_stats->packets_sent, 213);
	ck_assert_uint_ge(i->forward_stats->kernel_packets, 200);
	ck_assert_uint_ge(i->reverse_stats->kernel_packets, 200);
	harness_info_free(i);
	close(cal);
	close(dst);
}

/*
 * Caller and callee in namespaces of their own, over veth: the kernel
 * relays between the two interfaces (bpf_redirect_neigh) both ways, byte
 * for byte, with the worker stopped; IPv4, then IPv6.
 */
START_TEST(test_netns_both_ways)
{
	struct rpc_client	*c;
	char			 extra[256];

	ns_up();
	snprintf(extra, sizeof(extra), "kernel-forwarding on\n"
	    "kernel-interfaces lo %s %s\n", if_c, if_d);
	c = up(extra);
	netns_session(c, "kn4", NS_CALLER, NS_RELAY_C, NS_RELAY_D, NS_CALLEE);
	netns_session(c, "kn6", NS6_CALLER, NS6_RELAY_C, NS6_RELAY_D,
	    NS6_CALLEE);
	rpc_client_free(c);
}
END_TEST

/*
 * Pins and filters of our daemons that a failed test's end killed (check
 * kills its process group with SIGKILL, before the teardown): test
 * tables only, before each test (the next would find the filter on lo)
 * and at the end.
 */
static void
pins_left(void)
{
	struct dirent	*e;
	DIR		*dp;
	char		 dir[300], shm[300];
	long		 pid;

	if ((dp = opendir(KFWD_PIN_ROOT)) == NULL)
		return;
	while ((e = readdir(dp)) != NULL) {
		if (sscanf(e->d_name, "rtpproxyd-test-%ld-", &pid) != 1 ||
		    kill((pid_t)pid, 0) == 0)
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", KFWD_PIN_ROOT, e->d_name);
		snprintf(shm, sizeof(shm), "/%s", e->d_name);
		kfwd_cleanup(dir, shm);
	}
	closedir(dp);
	harness_sweep_tables();
}

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
	tcase_add_checked_fixture(tc, pins_left, down);
	tcase_add_test(tc, test_loopback_both_ways);
	tcase_add_test(tc, test_same_figures);
	tcase_add_test(tc, test_fallbacks);
	tcase_add_test(tc, test_rate_limit);
	tcase_add_test(tc, test_auto_no_privilege);
	tcase_add_loop_test(tc, test_rtcp, 0, 2);
	tcase_add_test(tc, test_rule_change);
	tcase_add_test(tc, test_update_destination);
	tcase_add_test(tc, test_idle_timeout);
	tcase_add_test(tc, test_relatch);
	tcase_add_test(tc, test_tcp_stays);
	tcase_add_test(tc, test_ipv6);
	suite_add_tcase(s, tc);

	tc = tcase_create("restart");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, pins_left, down);
	tcase_add_test(tc, test_worker_killed);
	tcase_add_test(tc, test_master_usr2);
	tcase_add_test(tc, test_leftovers_removed);
	tcase_add_test(tc, test_user_nobody);
	suite_add_tcase(s, tc);

	tc = tcase_create("netns");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, pins_left, down);
	tcase_add_unchecked_fixture(tc, NULL, ns_down);
	tcase_add_test(tc, test_netns_both_ways);
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
	ns_names();
	sr = srunner_create(kfwd_suite());

	srunner_run_all(sr, CK_NORMAL);
	pins_left();
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
