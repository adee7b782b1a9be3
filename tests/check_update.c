/*
 * UpdateSession from outside, on the real daemon: a destination changed
 * mid-stream (the new one receives, the old one no more, nothing lost,
 * the same ports and counters), the destination rules applied to the new
 * destination, the direction and rate limits changed, an event saying
 * what changed, and the change kept across a worker killed with SIGKILL
 * and a master replaced by SIGUSR2.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "common.h"

#define M_UPDATE	"/rtpproxy.RtpProxy/UpdateSession"
#define M_EVENTS	"/rtpproxy.RtpProxy/StreamSessionEvents"

static struct daemon	d;

static void
up(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (harness_start(&d, 1, "deny-destination 127.0.0.99/32") == -1) {
		fprintf(stderr, "check_update: the daemon did not start; log "
		    "in %s\n", d.log);
		setenv("RTPPROXYD_KEEP", "1", 1);
	}
}

static void
down(void)
{
	harness_cleanup(&d);
}

static struct rpc_client *
client(void)
{
	struct rpc_client *c;

	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	return c;
}

/* UpdateSession; the gRPC status, the reply's session in *si if asked. */
static int
update(struct rpc_client *c, const Rtpproxy__UpdateSessionRequest *req,
    Rtpproxy__SessionInfo **si, char *det, size_t detlen)
{
	Rtpproxy__UpdateSessionResponse	*resp = NULL;
	char				 buf[512];
	int				 rc;

	rc = rpc_unary(c, M_UPDATE, &req->base,
	    &rtpproxy__update_session_response__descriptor,
	    (ProtobufCMessage **)&resp, det != NULL ? det : buf,
	    det != NULL ? detlen : sizeof(buf), harness_ms(10000));
	if (si != NULL)
		*si = NULL;
	if (resp != NULL) {
		if (si != NULL) {
			*si = resp->session;
			resp->session = NULL;
		}
		rtpproxy__update_session_response__free_unpacked(resp, NULL);
	}
	return rc;
}

/* A new destination for id: the gRPC status. */
static int
update_dest(struct rpc_client *c, const char *id, const char *addr,
    uint16_t port, char *det, size_t detlen)
{
	Rtpproxy__UpdateSessionRequest	req =
	    RTPPROXY__UPDATE_SESSION_REQUEST__INIT;
	Rtpproxy__Endpoint		ep = RTPPROXY__ENDPOINT__INIT;

	req.session_id = (char *)id;
	ep.address = (char *)addr;
	ep.port = port;
	req.destination = &ep;
	return update(c, &req, NULL, det, detlen);
}

static int
create(struct rpc_client *c, const char *id, uint16_t dport,
    Rtpproxy__SessionInfo **si)
{
	struct harness_session		 a = { .id = id, .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = dport };
	Rtpproxy__CreateSessionResponse	*resp = NULL;
	int				 rc;

	/* The default's 60 s, but valgrind's pace must not idle it out. */
	a.idle = (uint32_t)harness_ms(60);
	rc = harness_create(c, &a, &resp, NULL, 0);
	if (rc == 0 && si != NULL) {
		*si = resp->session;
		resp->session = NULL;
	}
	if (resp != NULL)
		rtpproxy__create_session_response__free_unpacked(resp, NULL);
	return rc;
}

static uint16_t
rtp_seq(const uint8_t *b)
{
	return (uint16_t)(b[2] << 8 | b[3]);
}

/* Everything that waits on fd: how many, and the highest sequence. */
static int
drain(int fd, int ms, int *maxseq, int *minseq)
{
	uint8_t	b[512];
	ssize_t	n;
	int	k = 0;

	while ((n = harness_recv(fd, b, sizeof(b), ms, NULL)) > 0) {
		if (n >= 12) {
			if (maxseq != NULL && rtp_seq(b) > *maxseq)
				*maxseq = rtp_seq(b);
			if (minseq != NULL && (*minseq < 0 ||
			    rtp_seq(b) < *minseq))
				*minseq = rtp_seq(b);
		}
		k++;
		ms = 50;
	}
	return k;
}

/*
 * Media flows to A; the destination moves to B mid-stream.  Every packet
 * arrives at one of them, every packet at B comes after every packet at
 * A, A gets none once B has its first, and the session keeps its ports,
 * its counters and says what changed in an UPDATED event.
 */
START_TEST(destination_midstream)
{
	struct rpc_client		*c = client();
	Rtpproxy__SessionInfo		*si;
	Rtpproxy__StreamSessionEventsRequest ereq =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	Rtpproxy__SessionEvent		*ev = NULL;
	struct rpc_stream		*st;
	uint8_t				 b[256];
	uint16_t			 pa, pb, pc, lport, fport;
	int				 fa, fb, fc, i, ka = 0, kb = 0;
	int				 maxa = -1, minb = -1, maxb = -1, mina = -1;
	int				 found = 0, k;
	size_t				 n;

	fa = harness_udp(0, &pa);
	fb = harness_udp(0, &pb);
	fc = harness_udp(0, &pc);
	ck_assert_int_eq(create(c, "mid", pa, &si), 0);
	lport = (uint16_t)si->listen->port;
	fport = (uint16_t)si->forward->port;
	harness_info_free(si);
	ereq.session_id = (char *)"mid";
	ck_assert_ptr_nonnull(st = rpc_stream_open(c, M_EVENTS, &ereq.base,
	    0));

	for (i = 0; i < 300; i++) {
		n = harness_rtp(b, (uint16_t)i, 160u * (uint32_t)i, 0x1234,
		    160);
		ck_assert_int_eq(harness_send(fc, "127.0.0.1", lport, b, n),
		    0);
		if (i == 100)
			ck_assert_int_eq(update_dest(c, "mid", "127.0.0.1", pb,
			    NULL, 0), 0);
		/* Read as it comes: the order across A and B matters. */
		while ((k = drain(fa, 0, &maxa, &mina)) > 0)
			ka += k;
		while ((k = drain(fb, 0, &maxb, &minb)) > 0)
			kb += k;
		ck_assert_msg(kb == 0 || maxa < minb, "A got %d after B got %d",
		    maxa, minb);
		usleep(2000);
	}
	ka += drain(fa, harness_ms(1000), &maxa, &mina);
	kb += drain(fb, harness_ms(1000), &maxb, &minb);
	ck_assert_int_eq(ka + kb, 300);
	ck_assert_int_ge(ka, 100);
	ck_assert_int_ge(kb, 150);
	ck_assert_int_eq(mina, 0);
	ck_assert_int_eq(maxa + 1, minb);
	ck_assert_int_eq(maxb, 299);

	ck_assert_int_eq(harness_status(c, "mid", &si), 0);
	ck_assert_uint_eq(si->listen->port, lport);
	ck_assert_uint_eq(si->forward->port, fport);
	ck_assert_uint_eq(si->destination->port, pb);
	ck_assert_uint_eq(si->forward_stats->packets_received, 300);
	ck_assert_uint_eq(si->forward_stats->packets_sent, 300);
	ck_assert_int_eq(si->forward_stats->packets_lost, 0);
	ck_assert_uint_eq(si->updates, 1);
	harness_info_free(si);

	/* The event: what changed, from what to what. */
	while (!found && rpc_stream_next(st, &rtpproxy__session_event__descriptor,
	    (ProtobufCMessage **)&ev, harness_ms(5000)) == 0) {
		if (ev->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_UPDATED) {
			found = 1;
			ck_assert_uint_eq(ev->n_changed, 1);
			ck_assert_str_eq(ev->changed[0], "destination");
			snprintf((char *)b, sizeof(b), "127.0.0.1:%u -> "
			    "127.0.0.1:%u", pa, pb);
			ck_assert_msg(strstr(ev->reason, (char *)b) != NULL,
			    "%s", ev->reason);
			ck_assert_uint_eq(ev->session->destination->port, pb);
		}
		rtpproxy__session_event__free_unpacked(ev, NULL);
	}
	ck_assert(found);
	rpc_stream_cancel(st);
	rpc_stream_free(st);

	/* Reverse media from the new destination reaches the caller. */
	n = harness_rtp(b, 7, 7, 0x4321, 20);
	ck_assert_int_eq(harness_send(fb, "127.0.0.1", fport, b, n), 0);
	ck_assert_int_eq(harness_recv(fc, b, sizeof(b), 3000, NULL),
	    (ssize_t)n);
	/* Nothing changed: nothing to say, no count. */
	ck_assert_int_eq(update_dest(c, "mid", "127.0.0.1", pb, NULL, 0), 0);
	ck_assert_int_eq(harness_status(c, "mid", &si), 0);
	ck_assert_uint_eq(si->updates, 1);
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "mid"), 0);
	close(fa);
	close(fb);
	close(fc);
	rpc_client_free(c);
}
END_TEST

/* What is refused changes nothing; the rule that refused is named. */
START_TEST(refusals)
{
	struct rpc_client		*c = client();
	Rtpproxy__SessionInfo		*si;
	Rtpproxy__UpdateSessionRequest	 req =
	    RTPPROXY__UPDATE_SESSION_REQUEST__INIT;
	Rtpproxy__UpdateRateLimit	 rl = RTPPROXY__UPDATE_RATE_LIMIT__INIT;
	struct harness_session		 t = { .id = "tcp", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 9,
	    .transport = RTPPROXY__TRANSPORT__TRANSPORT_TCP };
	char				 det[512], want[256];
	uint16_t			 pa;
	int				 fa;

	fa = harness_udp(0, &pa);
	ck_assert_int_eq(create(c, "ref", pa, NULL), 0);
	ck_assert_int_eq(update_dest(c, "ref", "127.0.0.99", 4000, det,
	    sizeof(det)), RP_PERMISSION_DENIED);
	snprintf(want, sizeof(want), "by deny-destination 127.0.0.99/32 "
	    "(%s:", d.conf);
	ck_assert_msg(strstr(det, want) != NULL, "%s", det);
	ck_assert_int_eq(update_dest(c, "ref", "224.0.0.1", 4000, det,
	    sizeof(det)), RP_PERMISSION_DENIED);
	ck_assert_msg(strstr(det, "built-in rule") != NULL, "%s", det);
	ck_assert_int_eq(update_dest(c, "ref", "::1", 4000, det,
	    sizeof(det)), RP_INVALID_ARGUMENT);
	ck_assert_int_eq(update_dest(c, "ref", "0.0.0.0", 4000, det,
	    sizeof(det)), RP_INVALID_ARGUMENT);
	ck_assert_int_eq(update_dest(c, "ref", "127.0.0.1", 65535, det,
	    sizeof(det)), RP_INVALID_ARGUMENT);
	ck_assert_int_eq(update_dest(c, "nosuch", "127.0.0.1", 4000, det,
	    sizeof(det)), RP_NOT_FOUND);
	/* Our own sockets would loop. */
	ck_assert_int_eq(harness_status(c, "ref", &si), 0);
	ck_assert_int_eq(update_dest(c, "ref", "127.0.0.1",
	    (uint16_t)si->listen->port, det, sizeof(det)),
	    RP_PERMISSION_DENIED);
	ck_assert_msg(strstr(det, "own sockets") != NULL, "%s", det);
	harness_info_free(si);

	/* One bad part refuses the whole request. */
	req.session_id = (char *)"ref";
	req.rate_limit = &rl;
	rl.pps = 50;
	req.stats_interval_ms = 5;
	ck_assert_int_eq(update(c, &req, NULL, det, sizeof(det)),
	    RP_INVALID_ARGUMENT);
	ck_assert_msg(strstr(det, "stats_interval_ms") != NULL, "%s", det);
	req.stats_interval_ms = 0;
	req.direction = 7;
	ck_assert_int_eq(update(c, &req, NULL, det, sizeof(det)),
	    RP_INVALID_ARGUMENT);
	ck_assert_int_eq(harness_status(c, "ref", &si), 0);
	ck_assert_uint_eq(si->destination->port, pa);
	ck_assert_uint_eq(si->rate_limit_pps, 0);
	ck_assert_uint_eq(si->updates, 0);
	harness_info_free(si);

	/* A TCP session's connection is made: only timers may change. */
	ck_assert_int_eq(harness_create(c, &t, NULL, NULL, 0), 0);
	ck_assert_int_eq(update_dest(c, "tcp", "127.0.0.1", 4000, det,
	    sizeof(det)), RP_FAILED_PRECONDITION);
	memset(&req, 0, sizeof(req));
	rtpproxy__update_session_request__init(&req);
	req.session_id = (char *)"tcp";
	req.idle_timeout_s = 77;
	ck_assert_int_eq(update(c, &req, &si, det, sizeof(det)), 0);
	ck_assert_uint_eq(si->idle_timeout_s, 77);
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "tcp"), 0);
	ck_assert_int_eq(harness_destroy(c, "ref"), 0);
	close(fa);
	rpc_client_free(c);
}
END_TEST

/* Direction and rate limits, in effect at once. */
START_TEST(direction_and_rate)
{
	struct rpc_client		*c = client();
	Rtpproxy__SessionInfo		*si;
	Rtpproxy__UpdateSessionRequest	 req =
	    RTPPROXY__UPDATE_SESSION_REQUEST__INIT;
	Rtpproxy__UpdateRateLimit	 rl = RTPPROXY__UPDATE_RATE_LIMIT__INIT;
	uint8_t				 b[256];
	uint16_t			 pa, pc, lport, fport;
	int				 fa, fc, i, got;
	size_t				 n;

	fa = harness_udp(0, &pa);
	fc = harness_udp(0, &pc);
	ck_assert_int_eq(create(c, "dir", pa, &si), 0);
	lport = (uint16_t)si->listen->port;
	fport = (uint16_t)si->forward->port;
	harness_info_free(si);
	/* latch the caller */
	n = harness_rtp(b, 1, 1, 0x11, 20);
	harness_send(fc, "127.0.0.1", lport, b, n);
	ck_assert_int_eq(harness_recv(fa, b, sizeof(b), 3000, NULL),
	    (ssize_t)n);

	req.session_id = (char *)"dir";
	req.direction = RTPPROXY__UPDATE_DIRECTION__UPDATE_DIRECTION_FORWARD_ONLY;
	ck_assert_int_eq(update(c, &req, &si, NULL, 0), 0);
	ck_assert(si->unidirectional);
	harness_info_free(si);
	/*
	 * The worker takes it when it reads the master's message: soon, and
	 * for good.
	 */
	for (i = 0; i < 100; i++) {
		n = harness_rtp(b, (uint16_t)(1 + i), 1, 0x22, 20);
		harness_send(fa, "127.0.0.1", fport, b, n);
		if (harness_recv(fc, b, sizeof(b), 50, NULL) == -1)
			break;
	}
	ck_assert_int_lt(i, 100);
	for (i = 0; i < 5; i++) {
		n = harness_rtp(b, (uint16_t)(200 + i), 1, 0x22, 20);
		harness_send(fa, "127.0.0.1", fport, b, n);
	}
	ck_assert_int_eq(drain(fc, 300, NULL, NULL), 0);
	n = harness_rtp(b, 2, 2, 0x11, 20);
	harness_send(fc, "127.0.0.1", lport, b, n);
	ck_assert_int_eq(harness_recv(fa, b, sizeof(b), 3000, NULL),
	    (ssize_t)n);

	req.direction = RTPPROXY__UPDATE_DIRECTION__UPDATE_DIRECTION_BOTH;
	ck_assert_int_eq(update(c, &req, NULL, NULL, 0), 0);
	for (i = 0; i < 100; i++) {
		n = harness_rtp(b, (uint16_t)(300 + i), 1, 0x22, 20);
		harness_send(fa, "127.0.0.1", fport, b, n);
		if (harness_recv(fc, b, sizeof(b), 50, NULL) > 0)
			break;
	}
	ck_assert_int_lt(i, 100);

	/* 10 packets a second with 200 sent at once: most are dropped. */
	req.direction = 0;
	req.rate_limit = &rl;
	rl.pps = 10;
	ck_assert_int_eq(update(c, &req, &si, NULL, 0), 0);
	ck_assert_uint_eq(si->rate_limit_pps, 10);
	harness_info_free(si);
	n = harness_rtp(b, 4, 4, 0x11, 20);
	harness_send(fc, "127.0.0.1", lport, b, n);
	(void)drain(fa, harness_ms(1000), NULL, NULL);
	for (i = 0; i < 200; i++) {
		n = harness_rtp(b, (uint16_t)(5 + i), 5, 0x11, 20);
		harness_send(fc, "127.0.0.1", lport, b, n);
	}
	got = drain(fa, harness_ms(1000), NULL, NULL);
	ck_assert_int_lt(got, 150);
	ck_assert_int_eq(harness_status(c, "dir", &si), 0);
	ck_assert_uint_gt(si->forward_stats->dropped_rate_limited, 50);
	ck_assert_uint_eq(si->updates, 3);
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "dir"), 0);
	close(fa);
	close(fc);
	rpc_client_free(c);
}
END_TEST

/* Media to A or B: how many of count packets reached each. */
static void
burst(int fc, uint16_t lport, uint16_t seq0, int count, int fa, int fb,
    int *ka, int *kb)
{
	uint8_t	b[256];
	size_t	n;
	int	i;

	for (i = 0; i < count; i++) {
		n = harness_rtp(b, (uint16_t)(seq0 + i), 0, 0x55, 20);
		harness_send(fc, "127.0.0.1", lport, b, n);
		usleep(2000);
	}
	*ka = drain(fa, 300, NULL, NULL);
	*kb = drain(fb, harness_ms(2000), NULL, NULL);
}

/*
 * The worker takes a change when it reads the master's message, which
 * may come after media sent once UpdateSession answered: send until the
 * new destination to has one, then drain both.  How many were sent.
 */
static int
settle(int fc, uint16_t lport, uint16_t seq0, int to, int other)
{
	uint8_t	b[256];
	size_t	n;
	int	i;

	for (i = 0; i < 100; i++) {
		n = harness_rtp(b, (uint16_t)(seq0 + i), 0, 0x55, 20);
		harness_send(fc, "127.0.0.1", lport, b, n);
		if (harness_recv(to, b, sizeof(b), 50, NULL) > 0)
			break;
	}
	ck_assert_int_lt(i, 100);
	(void)drain(to, 50, NULL, NULL);
	(void)drain(other, 50, NULL, NULL);
	return i + 1;
}

/*
 * The change lives in the table: a worker killed with SIGKILL, and then
 * the master replaced by SIGUSR2, find the session as it was changed.
 */
START_TEST(kept_across_restarts)
{
	struct rpc_client		*c = client();
	Rtpproxy__SessionInfo		*si;
	Rtpproxy__UpdateSessionRequest	 req =
	    RTPPROXY__UPDATE_SESSION_REQUEST__INIT;
	Rtpproxy__UpdateRateLimit	 rl = RTPPROXY__UPDATE_RATE_LIMIT__INIT;
	Rtpproxy__Endpoint		 ep = RTPPROXY__ENDPOINT__INIT;
	uint16_t			 pa, pb, pc, lport, seq = 0;
	int				 fa, fb, fc, ka, kb, i;
	pid_t				 wpid, old, now = -1;

	fa = harness_udp(0, &pa);
	fb = harness_udp(0, &pb);
	fc = harness_udp(0, &pc);
	ck_assert_int_eq(create(c, "keep", pa, &si), 0);
	lport = (uint16_t)si->listen->port;
	harness_info_free(si);
	burst(fc, lport, seq, 20, fa, fb, &ka, &kb);
	seq += 20;
	ck_assert_int_eq(ka, 20);

	req.session_id = (char *)"keep";
	ep.address = (char *)"127.0.0.1";
	ep.port = pb;
	req.destination = &ep;
	req.rate_limit = &rl;
	rl.pps = 5000;
	req.idle_timeout_s = 600;
	ck_assert_int_eq(update(c, &req, NULL, NULL, 0), 0);
	seq += (uint16_t)settle(fc, lport, seq, fb, fa);
	burst(fc, lport, seq, 20, fa, fb, &ka, &kb);
	seq += 20;
	ck_assert_int_eq(ka, 0);
	ck_assert_int_eq(kb, 20);

	/* A new worker reads the slot as the master changed it. */
	wpid = harness_worker_pid(&d, 0);
	ck_assert_int_gt(wpid, 0);
	ck_assert_int_eq(kill(wpid, SIGKILL), 0);
	ck_assert_int_eq(harness_wait_log(&d, "worker 0 ready", 2,
	    harness_ms(10000)), 0);
	burst(fc, lport, seq, 20, fa, fb, &ka, &kb);
	seq += 20;
	ck_assert_int_eq(ka, 0);
	ck_assert_int_eq(kb, 20);

	/* A new master adopts the table: the session as it was changed. */
	old = harness_pidfile_pid(&d);
	ck_assert_int_gt(old, 0);
	ck_assert_int_eq(kill(old, SIGUSR2), 0);
	for (i = 0; i < 500; i++) {
		now = harness_pidfile_pid(&d);
		if (now > 0 && now != old && harness_log_count(&d,
		    "all 1 workers ready") >= 2)
			break;
		usleep(20000);
	}
	ck_assert_int_ne(now, old);
	rpc_client_free(c);
	c = client();
	burst(fc, lport, seq, 20, fa, fb, &ka, &kb);
	seq += 20;
	ck_assert_int_eq(ka, 0);
	ck_assert_int_eq(kb, 20);
	ck_assert_int_eq(harness_status(c, "keep", &si), 0);
	ck_assert_uint_eq(si->destination->port, pb);
	ck_assert_uint_eq(si->rate_limit_pps, 5000);
	ck_assert_uint_eq(si->idle_timeout_s, 600);
	ck_assert_uint_eq(si->updates, 1);
	/* the counters went on: every packet sent was relayed once */
	ck_assert_uint_eq(si->forward_stats->packets_sent, seq);
	ck_assert_uint_eq(si->forward_stats->packets_received, seq);
	harness_info_free(si);
	/* And it can be changed again, back to A. */
	ck_assert_int_eq(update_dest(c, "keep", "127.0.0.1", pa, NULL, 0), 0);
	seq += (uint16_t)settle(fc, lport, seq, fa, fb);
	burst(fc, lport, seq, 20, fb, fa, &kb, &ka);
	ck_assert_int_eq(ka, 20);
	ck_assert_int_eq(kb, 0);
	ck_assert_int_eq(harness_destroy(c, "keep"), 0);
	close(fa);
	close(fb);
	close(fc);
	rpc_client_free(c);
}
END_TEST

int
main(void)
{
	const TTest *const t_mid[] = { destination_midstream, NULL };
	const TTest *const t_ref[] = { refusals, NULL };
	const TTest *const t_dir[] = { direction_and_rate, NULL };
	const TTest *const t_keep[] = { kept_across_restarts, NULL };
	Suite	*s = suite_create("update");

	harness_tcase(s, "midstream", up, down, 60, t_mid);
	harness_tcase(s, "refusals", up, down, 60, t_ref);
	harness_tcase(s, "direction", up, down, 60, t_dir);
	harness_tcase(s, "restarts", up, down, 90, t_keep);
	return harness_run_suite(s);
}
