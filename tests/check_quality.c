/*
 * Call quality from RTCP and DTMF, through the real daemon: a caller and
 * a destination on loopback exchange RTP and RTCP through a session as
 * real endpoints do, with the delay and the loss the test injects, and
 * the figures come back by GetSessionStatus.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <check.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "rtpproxy.pb-c.h"

#define ST_ACTIVE	RTPPROXY__SESSION_STATE__SESSION_STATE_ACTIVE

#define M_EVENTS	"/rtpproxy.RtpProxy/StreamSessionEvents"

static struct daemon	dmn;
static uint16_t		mport;		/* metrics */

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
sleep_until_ns(int64_t when)
{
	struct timespec	ts;
	int64_t		left;

	while ((left = when - real_ns()) > 0) {
		ts.tv_sec = left / 1000000000LL;
		ts.tv_nsec = left % 1000000000LL;
		nanosleep(&ts, NULL);
	}
}

/* Two sockets on an even port of the peer range and the one above. */
static uint16_t
udp_pair(int fd[2])
{
	static unsigned	next;
	unsigned	i, p, span = (HARNESS_PEER_MAX - HARNESS_PEER_MIN) / 2;
	int		on = 1;

	if (next == 0)
		next = (unsigned)getpid() * 7;
	for (i = 0; i < 2000; i++) {
		p = HARNESS_PEER_MIN + (next++ % span) * 2;
		if ((fd[0] = harness_udp_bind(0, (uint16_t)p)) == -1)
			continue;
		if ((fd[1] = harness_udp_bind(0, (uint16_t)(p + 1))) == -1) {
			close(fd[0]);
			continue;
		}
		/* The kernel's receive time, for the DLSR the test reports. */
		ck_assert_int_eq(setsockopt(fd[1], SOL_SOCKET, SO_TIMESTAMPNS,
		    &on, sizeof(on)), 0);
		return (uint16_t)p;
	}
	ck_abort_msg("no free port pair");
	return 0;
}

static void
tx(int fd, uint16_t port, const void *buf, size_t len)
{
	struct sockaddr_storage	ss;
	socklen_t		slen;

	harness_sa_loopback(&ss, &slen, 0, port);
	ck_assert_int_eq(sendto(fd, buf, len, 0, (struct sockaddr *)&ss, slen),
	    (ssize_t)len);
}

/* A datagram within ms, and the kernel's time of its arrival (ns). */
static ssize_t
rx_ts(int fd, void *buf, size_t len, int ms, int64_t *ns)
{
	struct pollfd	 pfd = { fd, POLLIN, 0 };
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(struct timespec))];
	} cm;
	struct msghdr	 msg;
	struct iovec	 iov = { buf, len };
	struct cmsghdr	*c;
	struct timespec	 ts;
	ssize_t		 n;

	*ns = 0;
	if (poll(&pfd, 1, harness_ms(ms)) != 1)
		return -1;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = &cm;
	msg.msg_controllen = sizeof(cm);
	if ((n = recvmsg(fd, &msg, 0)) == -1)
		return -1;
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_TIMESTAMPNS) {
			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			*ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
		}
	if (*ns == 0)
		*ns = real_ns();
	return n;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v & 0xff;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

struct rblock {
	uint32_t	ssrc;
	uint8_t		fraction;
	int32_t		cum;
	uint32_t	jitter;		/* timestamp units */
	uint32_t	lsr, dlsr;
};

static size_t
put_block(uint8_t *b, const struct rblock *r)
{
	put32(b, r->ssrc);
	put32(b + 4, (uint32_t)r->cum & 0xffffff);
	b[4] = r->fraction;
	put32(b + 8, 0x10000);		/* extended highest sequence */
	put32(b + 12, r->jitter);
	put32(b + 16, r->lsr);
	put32(b + 20, r->dlsr);
	return 24;
}

/* An SR (no blocks) from ssrc with this NTP time; its length. */
static size_t
mksr(uint8_t *b, uint32_t ssrc, uint64_t ntp)
{
	b[0] = 0x80;
	b[1] = 200;
	b[2] = 0;
	b[3] = 6;
	put32(b + 4, ssrc);
	put32(b + 8, (uint32_t)(ntp >> 32));
	put32(b + 12, (uint32_t)ntp);
	put32(b + 16, 1234);
	put32(b + 20, 10);
	put32(b + 24, 1600);
	return 28;
}

/*
 * An RR with the block r (nblocks claimed in its count, 1 present), and
 * an SDES after it as RFC 3550 compounds have.
 */
static size_t
mkrr(uint8_t *b, uint32_t ssrc, const struct rblock *r, int nblocks)
{
	size_t n;

	b[0] = (uint8_t)(0x80 | nblocks);
	b[1] = 201;
	b[2] = 0;
	b[3] = 7;
	put32(b + 4, ssrc);
	n = 8 + put_block(b + 8, r);
	/* SDES: one chunk, CNAME "q", end, padded to a word */
	b[n] = 0x81;
	b[n + 1] = 202;
	b[n + 2] = 0;
	b[n + 3] = 2;
	put32(b + n + 4, ssrc);
	b[n + 8] = 1;
	b[n + 9] = 1;
	b[n + 10] = 'q';
	b[n + 11] = 0;
	return n + 12;
}

static uint64_t
ntp_now(void)
{
	int64_t ns = real_ns();

	return (uint64_t)(ns / 1000000000LL + 2208988800LL) << 32 |
	    (uint64_t)((ns % 1000000000LL) * 4294967296.0 / 1e9);
}

/* The E-model of G.107 as rtpproxyd(8) describes it, for G.711. */
static double
mos_g711(double loss, double delay_ms)
{
	double ppl = loss * 100.0, r, id;

	id = 0.024 * delay_ms + (delay_ms > 177.3 ?
	    0.11 * (delay_ms - 177.3) : 0.0);
	r = 93.2 - id - 95.0 * ppl / (ppl + 25.1);
	if (r <= 0)
		return 1.0;
	return 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6;
}

/* ------------------------------------------------------------------------ */

static void
up(void)
{
	char extra[64];

	signal(SIGPIPE, SIG_IGN);
	mport = harness_tcp_port();
	snprintf(extra, sizeof(extra), "metrics-listen 127.0.0.1:%u", mport);
	if (harness_start(&dmn, 1, extra) == -1) {
		fprintf(stderr, "check_quality: the daemon did not start; log "
		    "in %s\n", dmn.log);
		setenv("RTPPROXYD_KEEP", "1", 1);
	}
}

static void
down(void)
{
	harness_stop(&dmn, 5000);
	harness_cleanup(&dmn);
}

static struct rpc_client *
client(void)
{
	struct rpc_client *c;

	ck_assert_msg(dmn.pid > 0, "daemon not running; see %s", dmn.log);
	ck_assert_ptr_nonnull(c = rpc_client_new(dmn.grpc));
	return c;
}

struct call {
	int		cal[2], dst[2];
	uint16_t	cport, dport, lp, fp;
};

/* A session from a caller to a destination, media latched both ways. */
static void
call_up(struct rpc_client *c, const char *id, struct call *k,
    const struct harness_session *opt)
{
	struct harness_session		 a;
	Rtpproxy__CreateSessionResponse	*resp = NULL;
	uint8_t				 b[256];
	size_t				 n;
	char				 det[256];

	k->cport = udp_pair(k->cal);
	k->dport = udp_pair(k->dst);
	if (opt != NULL)
		a = *opt;
	else
		memset(&a, 0, sizeof(a));
	a.id = id;
	a.laddr = a.faddr = a.daddr = "127.0.0.1";
	a.dport = k->dport;
	ck_assert_int_eq(harness_create(c, &a, &resp, det, sizeof(det)), 0);
	k->lp = (uint16_t)resp->session->listen->port;
	k->fp = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	/* RTP both ways: the caller's latch, and each side's SSRC known */
	n = harness_rtp(b, 1, 160, 0xca11e7, 160);
	tx(k->cal[0], k->lp, b, n);
	ck_assert_int_eq(harness_recv(k->dst[0], b, sizeof(b), 3000,
	    NULL), (ssize_t)n);
	n = harness_rtp(b, 1, 160, 0xde57, 160);
	tx(k->dst[0], k->fp, b, n);
	ck_assert_int_eq(harness_recv(k->cal[0], b, sizeof(b), 3000,
	    NULL), (ssize_t)n);
}

static void
call_down(struct rpc_client *c, const char *id, struct call *k)
{
	int i;

	ck_assert_int_eq(harness_destroy(c, id), 0);
	for (i = 0; i < 2; i++) {
		close(k->cal[i]);
		close(k->dst[i]);
	}
}

/*
 * One round trip as an RFC 3550 receiver makes it, with delay_ms of it
 * injected: the SR from `from` goes through the relay to `to`, which
 * answers after delay_ms plus some work of its own, with a DLSR that
 * covers only its own work: to the relay, delay_ms of network.
 */
static void
round_trip(int from, uint16_t from_port, uint32_t from_ssrc, int to,
    uint16_t to_port, uint32_t to_ssrc, int delay_ms, const struct rblock *r)
{
	struct rblock	blk = *r;
	uint8_t		b[256];
	uint64_t	ntp = ntp_now();
	int64_t		got_ns, send_ns;
	size_t		n;

	n = mksr(b, from_ssrc, ntp);
	tx(from, from_port, b, n);
	ck_assert_int_eq(rx_ts(to, b, sizeof(b), 3000, &got_ns), (ssize_t)n);
	ck_assert_uint_eq(get32(b + 8), (uint32_t)(ntp >> 32));
	sleep_until_ns(got_ns + (int64_t)(delay_ms + 20) * 1000000LL);
	blk.ssrc = from_ssrc;
	blk.lsr = (uint32_t)(ntp >> 16);
	send_ns = real_ns();
	blk.dlsr = (uint32_t)((send_ns - got_ns - delay_ms * 1000000LL) *
	    65536 / 1000000000LL);
	n = mkrr(b, to_ssrc, &blk, 1);
	tx(to, to_port, b, n);
}

/* Status until pred holds for it, or the last one after 5 s. */
static Rtpproxy__SessionInfo *
status_until(struct rpc_client *c, const char *id,
    int (*pred)(const Rtpproxy__SessionInfo *))
{
	Rtpproxy__SessionInfo	*si = NULL;
	int64_t			 end = mono_us() + harness_ms(5000) * 1000LL;

	for (;;) {
		if (si != NULL)
			harness_info_free(si);
		ck_assert_int_eq(harness_status(c, id, &si), 0);
		if (pred(si) || mono_us() > end)
			return si;
		usleep(10000);
	}
}

static int
two_rtt_each(const Rtpproxy__SessionInfo *si)
{
	return si->forward_stats->rtt_samples >= 2 &&
	    si->reverse_stats->rtt_samples >= 2;
}

START_TEST(quality_rtt)
{
	struct rpc_client	*c = client();
	Rtpproxy__SessionInfo	*si;
	struct call		 k;
	struct rblock		 fwd = { .fraction = 26, .cum = 42,
	    .jitter = 80 };		/* 10 ms at 8000 Hz */
	struct rblock		 rev = { .fraction = 0, .cum = -3,
	    .jitter = 16 };
	double			 rtt;
	int			 i;

	call_up(c, "q-rtt", &k, NULL);
	/*
	 * Forward media's receiver (the destination) 300 ms away, reverse
	 * media's (the caller) 150 ms: twice each.
	 */
	for (i = 0; i < 2; i++) {
		round_trip(k.cal[1], k.lp + 1, 0xca11e7, k.dst[1], k.fp + 1,
		    0xde57, 300, &fwd);
		ck_assert_int_ge(harness_recv(k.cal[1], (uint8_t[256]){ 0 },
		    256, 3000, NULL), 8);
		round_trip(k.dst[1], k.fp + 1, 0xde57, k.cal[1], k.lp + 1,
		    0xca11e7, 150, &rev);
		ck_assert_int_ge(harness_recv(k.dst[1], (uint8_t[256]){ 0 },
		    256, 3000, NULL), 8);
	}
	si = status_until(c, "q-rtt", two_rtt_each);
	rtt = si->forward_stats->rtt_ms;
	ck_assert_msg(fabs(rtt - 300.0) <= 30.0, "forward rtt %.3f ms, not "
	    "300 +- 10%%", rtt);
	rtt = si->reverse_stats->rtt_ms;
	ck_assert_msg(fabs(rtt - 150.0) <= 15.0, "reverse rtt %.3f ms, not "
	    "150 +- 10%%", rtt);
	ck_assert_uint_eq(si->forward_stats->rtt_samples, 2);
	ck_assert_uint_eq(si->reverse_stats->rtt_samples, 2);
	ck_assert(fabs(si->forward_stats->rtt_avg_ms - 300.0) <= 30.0);
	ck_assert(si->forward_stats->rtt_max_ms >= si->forward_stats->rtt_ms);
	/* what the receivers reported, each about the media it receives */
	ck_assert(fabs(si->forward_stats->reported_loss_rate - 26 / 256.0) <
	    1e-9);
	ck_assert_int_eq(si->forward_stats->reported_packets_lost, 42);
	ck_assert(fabs(si->forward_stats->reported_jitter_ms - 10.0) < 1e-6);
	ck_assert_int_eq(si->reverse_stats->reported_packets_lost, -3);
	ck_assert(fabs(si->reverse_stats->reported_jitter_ms - 2.0) < 1e-6);
	ck_assert_uint_eq(si->forward_stats->rtcp_reports, 2);
	ck_assert_uint_eq(si->reverse_stats->rtcp_reports, 2);
	ck_assert_uint_eq(si->forward_stats->rtcp_sender_reports, 2);
	ck_assert_uint_eq(si->reverse_stats->rtcp_sender_reports, 2);
	ck_assert_uint_eq(si->forward_stats->rtcp_malformed, 0);
	ck_assert_int_gt(si->forward_stats->last_report_ms, 0);
	ck_assert_uint_eq(si->forward_stats->payload_type, 0);
	/*
	 * MOS: 10.2 % loss, one-way delay (300 + 150) / 2 plus a jitter
	 * buffer of 20 ms.
	 */
	ck_assert_msg(fabs(si->forward_stats->mos - mos_g711(26 / 256.0,
	    245.0)) < 0.15, "forward MOS %.3f", si->forward_stats->mos);
	harness_info_free(si);
	call_down(c, "q-rtt", &k);
	rpc_client_free(c);
}
END_TEST

static int
is_active(const Rtpproxy__SessionInfo *si)
{
	return si->state == ST_ACTIVE;
}

static int
one_rtt_fwd(const Rtpproxy__SessionInfo *si)
{
	return si->forward_stats->rtt_samples >= 1;
}

static int
have_reports(const Rtpproxy__SessionInfo *si)
{
	return si->forward_stats->rtcp_reports >= 1 &&
	    si->reverse_stats->packets_expected >= 199;
}

/*
 * Loss injected on both legs: forward media lost past the relay (only
 * the destination's report can tell), reverse media lost before it (the
 * relay sees the gaps; the caller sends no RTCP).
 */
START_TEST(quality_mos)
{
	struct rpc_client	*c = client();
	Rtpproxy__SessionInfo	*si;
	struct call		 k;
	struct rblock		 blk;
	uint8_t			 b[256];
	uint32_t		 got = 0, expected, lost;
	double			 loss, lo, hi;
	size_t			 n;
	int			 i;

	call_up(c, "q-mos", &k, NULL);
	/* forward: 200 packets, the destination loses every 10th */
	for (i = 2; i < 202; i++) {
		n = harness_rtp(b, (uint16_t)i, (uint32_t)i * 160, 0xca11e7,
		    160);
		tx(k.cal[0], k.lp, b, n);
		if (harness_recv(k.dst[0], b, sizeof(b), 3000, NULL) ==
		    (ssize_t)n && i % 10 != 0)
			got++;
	}
	expected = 201;		/* sequence 1 .. 201 */
	lost = expected - got - 1;	/* the first came in call_up */
	memset(&blk, 0, sizeof(blk));
	blk.ssrc = 0xca11e7;
	blk.fraction = (uint8_t)(lost * 256 / expected);
	blk.cum = (int32_t)lost;
	n = mkrr(b, 0xde57, &blk, 1);
	tx(k.dst[1], k.fp + 1, b, n);
	/* reverse: 200 sequence numbers, 10 of them never sent (5 %) */
	for (i = 2; i < 202; i++) {
		if (i % 20 == 0)
			continue;
		n = harness_rtp(b, (uint16_t)i, (uint32_t)i * 160, 0xde57,
		    160);
		tx(k.dst[0], k.fp, b, n);
		ck_assert_int_eq(harness_recv(k.cal[0], b, sizeof(b),
		    3000, NULL), (ssize_t)n);
	}
	si = status_until(c, "q-mos", have_reports);
	ck_assert_uint_eq(si->forward_stats->rtcp_reports, 1);
	/* the relay itself saw no forward loss: the MOS is the report's */
	ck_assert_int_eq(si->forward_stats->packets_lost, 0);
	loss = (double)blk.fraction / 256.0;
	ck_assert(loss > 0.09 && loss < 0.11);
	/*
	 * The E-model's range for that loss: no round trip known, so the
	 * delay is the jitter buffer alone, 0 .. 20 ms.
	 */
	lo = mos_g711(0.11, 20.0);
	hi = mos_g711(0.09, 0.0);
	ck_assert_msg(si->forward_stats->mos >= lo &&
	    si->forward_stats->mos <= hi, "forward MOS %.3f not in "
	    "[%.3f, %.3f]", si->forward_stats->mos, lo, hi);
	ck_assert(si->forward_stats->r_factor > 0 &&
	    si->forward_stats->r_factor < 93.2);
	/* reverse: the relay's own loss figure, 10 of 201 */
	ck_assert_uint_eq(si->reverse_stats->rtcp_reports, 0);
	ck_assert_int_eq(si->reverse_stats->packets_lost, 10);
	/* its jitter is the test's sending pace: up to a few hundred ms */
	lo = mos_g711(0.06, 2.0 * si->reverse_stats->jitter_ms + 1.0);
	hi = mos_g711(0.04, 0.0);
	ck_assert_msg(si->reverse_stats->mos >= lo &&
	    si->reverse_stats->mos <= hi, "reverse MOS %.3f not in "
	    "[%.3f, %.3f]", si->reverse_stats->mos, lo, hi);
	harness_info_free(si);
	call_down(c, "q-mos", &k);
	rpc_client_free(c);
}
END_TEST

static int
one_sent(const Rtpproxy__SessionInfo *si)
{
	return si->forward_stats->rtcp_packets_sent >= 2;
}

/* Reports that claim more than their length: relayed, used no further. */
START_TEST(quality_malformed)
{
	struct rpc_client	*c = client();
	Rtpproxy__SessionInfo	*si;
	struct call		 k;
	struct rblock		 blk = { .ssrc = 0xde57, .fraction = 128,
	    .cum = 7 };
	uint8_t			 b[256];
	size_t			 n;

	call_up(c, "q-bad", &k, NULL);
	/* an RR from the caller about reverse media: 5 blocks, 1 there */
	n = mkrr(b, 0xca11e7, &blk, 5);
	tx(k.cal[1], k.lp + 1, b, n);
	ck_assert_int_eq(harness_recv(k.dst[1], b, sizeof(b), 3000,
	    NULL), (ssize_t)n);
	/* an SR too short for its sender info */
	n = mksr(b, 0xca11e7, ntp_now());
	b[3] = 1;
	n = 8;
	tx(k.cal[1], k.lp + 1, b, n);
	ck_assert_int_eq(harness_recv(k.dst[1], b, sizeof(b), 3000,
	    NULL), (ssize_t)n);
	si = status_until(c, "q-bad", one_sent);
	ck_assert_uint_eq(si->forward_stats->rtcp_packets_sent, 2);
	ck_assert_uint_eq(si->forward_stats->rtcp_malformed, 2);
	/* the block that fitted counts */
	ck_assert_uint_eq(si->reverse_stats->rtcp_reports, 1);
	ck_assert_int_eq(si->reverse_stats->reported_packets_lost, 7);
	ck_assert_uint_eq(si->forward_stats->rtcp_sender_reports, 0);
	harness_info_free(si);
	call_down(c, "q-bad", &k);
	rpc_client_free(c);
}
END_TEST

/* GET /metrics: the body, NUL-terminated, in buf. */
static void
scrape(char *buf, size_t len)
{
	static const char	 req[] = "GET /metrics HTTP/1.1\r\n"
	    "Host: x\r\nConnection: close\r\n\r\n";
	struct sockaddr_in	 sin;
	struct pollfd		 pfd;
	size_t			 have = 0;
	ssize_t			 n;
	char			*body;
	int			 fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(mport);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	ck_assert_int_eq(write(fd, req, sizeof(req) - 1),
	    (ssize_t)sizeof(req) - 1);
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (have < len - 1 && poll(&pfd, 1, harness_ms(5000)) == 1 &&
	    (n = read(fd, buf + have, len - 1 - have)) > 0)
		have += (size_t)n;
	buf[have] = '\0';
	close(fd);
	ck_assert_ptr_nonnull(body = strstr(buf, "\r\n\r\n"));
	memmove(buf, body + 4, strlen(body + 4) + 1);
}

/* The value of the sample that starts with this name and labels. */
static double
sample(const char *text, const char *series)
{
	const char	*p = text;
	size_t		 n = strlen(series);

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	ck_abort_msg("no sample %s", series);
	return 0;
}

static int
one_rtt_each(const Rtpproxy__SessionInfo *si)
{
	return si->forward_stats->rtt_samples >= 1 &&
	    si->reverse_stats->rtt_samples >= 1;
}

/* The quality in STATS_UPDATE events, and in the metrics' histograms. */
START_TEST(quality_events_metrics)
{
	struct rpc_client			*c = client();
	Rtpproxy__StreamSessionEventsRequest	 req =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	struct harness_session			 opt;
	struct rpc_stream			*st;
	Rtpproxy__SessionEvent			*ev = NULL;
	Rtpproxy__SessionInfo			*si;
	struct rblock				 blk = { .fraction = 13 };
	static char				 text[1 << 20];
	struct call				 k;
	int64_t					 end;
	int					 seen = 0;

	req.session_id = (char *)"q-ev";
	ck_assert_ptr_nonnull(st = rpc_stream_open(c, M_EVENTS, &req.base,
	    0));
	memset(&opt, 0, sizeof(opt));
	opt.stats_ms = 100;
	call_up(c, "q-ev", &k, &opt);
	round_trip(k.cal[1], k.lp + 1, 0xca11e7, k.dst[1], k.fp + 1, 0xde57,
	    120, &blk);
	ck_assert_int_ge(harness_recv(k.cal[1], (uint8_t[256]){ 0 }, 256,
	    3000, NULL), 8);
	round_trip(k.dst[1], k.fp + 1, 0xde57, k.cal[1], k.lp + 1, 0xca11e7,
	    40, &blk);
	si = status_until(c, "q-ev", one_rtt_each);
	ck_assert_uint_eq(si->forward_stats->rtt_samples, 1);
	harness_info_free(si);
	/* a STATS_UPDATE that carries them */
	end = mono_us() + harness_ms(5000) * 1000LL;
	while (!seen && mono_us() < end && rpc_stream_next(st,
	    &rtpproxy__session_event__descriptor, (ProtobufCMessage **)&ev,
	    harness_ms(1000)) == 0) {
		if (ev->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_STATS_UPDATE &&
		    ev->session != NULL &&
		    ev->session->forward_stats->rtt_samples == 1 &&
		    ev->session->reverse_stats->rtt_samples == 1) {
			ck_assert(fabs(ev->session->forward_stats->rtt_ms -
			    120.0) <= 12.0);
			ck_assert(ev->session->forward_stats->mos > 1.0);
			seen = 1;
		}
		protobuf_c_message_free_unpacked(&ev->base, NULL);
	}
	ck_assert_msg(seen, "no STATS_UPDATE with the round trips");
	rpc_stream_free(st);
	/* forward 0.12 s, reverse 0.04 s: each in its bucket */
	scrape(text, sizeof(text));
	ck_assert(sample(text, "rtpproxyd_rtcp_rtt_seconds_count"
	    "{direction=\"forward\"}") == 1.0);
	ck_assert(sample(text, "rtpproxyd_rtcp_rtt_seconds_bucket"
	    "{direction=\"forward\",le=\"0.1\"}") == 0.0);
	ck_assert(sample(text, "rtpproxyd_rtcp_rtt_seconds_bucket"
	    "{direction=\"forward\",le=\"0.15\"}") == 1.0);
	ck_assert(sample(text, "rtpproxyd_rtcp_rtt_seconds_bucket"
	    "{direction=\"reverse\",le=\"0.02\"}") == 0.0);
	ck_assert(sample(text, "rtpproxyd_rtcp_rtt_seconds_bucket"
	    "{direction=\"reverse\",le=\"0.05\"}") == 1.0);
	ck_assert(fabs(sample(text, "rtpproxyd_rtcp_rtt_seconds_sum"
	    "{direction=\"forward\"}") - 0.12) < 0.012);
	/* MOS: 5 % reported loss forward, G.711: about 3.9 */
	ck_assert(sample(text, "rtpproxyd_mos_count{direction=\"forward\"}") ==
	    1.0);
	ck_assert(sample(text, "rtpproxyd_mos_bucket{direction=\"forward\","
	    "le=\"3.8\"}") == 0.0);
	ck_assert(sample(text, "rtpproxyd_mos_bucket{direction=\"forward\","
	    "le=\"4\"}") == 1.0);
	call_down(c, "q-ev", &k);
	rpc_client_free(c);
}
END_TEST

/* --- DTMF --------------------------------------------------------------- */

/* An RTP packet of payload type pt with a telephone-event payload. */
static size_t
mkevent(uint8_t *b, uint8_t pt, int marker, uint16_t seq, uint32_t ts,
    uint32_t ssrc, uint8_t event, int end, uint8_t volume, uint16_t dur)
{
	b[0] = 0x80;
	b[1] = (uint8_t)((marker ? 0x80 : 0) | pt);
	b[2] = seq >> 8;
	b[3] = seq & 0xff;
	put32(b + 4, ts);
	put32(b + 8, ssrc);
	b[12] = event;
	b[13] = (uint8_t)((end ? 0x80 : 0) | (volume & 0x3f));
	b[14] = dur >> 8;
	b[15] = dur & 0xff;
	return 16;
}

struct sender {
	int		fd;
	uint16_t	port;
	uint32_t	ssrc;
	uint8_t		pt;		/* telephone-event */
	uint16_t	seq;
	uint32_t	ts;
	int		sent_events;	/* telephone-event packets */
	int		sent_voice;
};

static void
send_pkt(struct sender *x, const uint8_t *b, size_t n)
{
	tx(x->fd, x->port, b, n);
	usleep(1000);		/* a pace, so no receive buffer fills */
}

static void
voice(struct sender *x, int n)
{
	uint8_t	b[256];
	size_t	len;

	while (n-- > 0) {
		len = harness_rtp(b, x->seq++, x->ts, x->ssrc, 160);
		send_pkt(x, b, len);
		x->ts += 160;
		x->sent_voice++;
	}
}

/*
 * A digit as RFC 4733 senders send it: a start packet with the marker,
 * updates every 50 ms of growing duration, three end packets; lose_start
 * and nends (0: every end lost) vary it.  Its timestamp is the start's;
 * the voice after it takes up the time it took.
 */
static void
digit(struct sender *x, uint8_t ev, uint16_t dur, int lose_start, int nends)
{
	uint8_t		b[64];
	uint16_t	d;
	size_t		n;
	int		i, first = 1;

	for (d = 400; d < dur; d += 400, first = 0) {
		n = mkevent(b, x->pt, first, x->seq++, x->ts, x->ssrc, ev, 0,
		    10, d);
		if (!(first && lose_start)) {
			send_pkt(x, b, n);
			x->sent_events++;
		}
	}
	for (i = 0; i < 3; i++) {
		n = mkevent(b, x->pt, 0, x->seq++, x->ts, x->ssrc, ev, 1, 10,
		    dur);
		if (i < nends) {
			send_pkt(x, b, n);
			x->sent_events++;
		}
	}
	x->ts += dur;
}

/* The next DTMF event of the stream within ms, or NULL. */
static Rtpproxy__SessionEvent *
next_dtmf(struct rpc_stream *st, int ms)
{
	Rtpproxy__SessionEvent	*ev = NULL;
	int64_t			 end = mono_us() + (int64_t)ms * 1000, left;

	while ((left = (end - mono_us()) / 1000) > 0 && rpc_stream_next(st,
	    &rtpproxy__session_event__descriptor, (ProtobufCMessage **)&ev,
	    (int)left) == 0) {
		if (ev->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_DTMF)
			return ev;
		protobuf_c_message_free_unpacked(&ev->base, NULL);
	}
	return NULL;
}

static void
expect_dtmf(struct rpc_stream *st, const char *digit, uint32_t ms,
    const char *dir, int end_seen, int64_t since_ms)
{
	Rtpproxy__SessionEvent *ev = next_dtmf(st, harness_ms(5000));

	ck_assert_msg(ev != NULL, "no DTMF event for digit %s", digit);
	ck_assert_ptr_nonnull(ev->dtmf);
	ck_assert_str_eq(ev->dtmf->digit, digit);
	ck_assert_uint_eq(ev->dtmf->duration_ms, ms);
	ck_assert_uint_eq(ev->dtmf->volume, 10);
	ck_assert_str_eq(ev->dtmf->direction, dir);
	ck_assert_int_eq(ev->dtmf->end_seen, end_seen);
	ck_assert_int_ge(ev->dtmf->start_ms, since_ms - 1000);
	ck_assert_int_le(ev->dtmf->start_ms, ev->timestamp_ms);
	protobuf_c_message_free_unpacked(&ev->base, NULL);
}

static int
dtmf_counted(const Rtpproxy__SessionInfo *si)
{
	return si->forward_stats->dtmf_events >= 4 &&
	    si->reverse_stats->dtmf_events >= 1;
}

START_TEST(dtmf_events)
{
	struct rpc_client			*c = client();
	Rtpproxy__StreamSessionEventsRequest	 req =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	struct rpc_stream			*st;
	Rtpproxy__SessionInfo			*si;
	Rtpproxy__SessionEvent			*ev;
	struct call				 k;
	struct sender				 fw, rv;
	uint8_t					 b[64];
	size_t					 n;
	int64_t					 t0 = real_ns() / 1000000;

	req.session_id = (char *)"q-dtmf";
	ck_assert_ptr_nonnull(st = rpc_stream_open(c, M_EVENTS, &req.base,
	    0));
	call_up(c, "q-dtmf", &k, NULL);
	memset(&fw, 0, sizeof(fw));
	fw.fd = k.cal[0];
	fw.port = k.lp;
	fw.ssrc = 0xca11e7;
	fw.pt = 101;
	fw.seq = 2;
	fw.ts = 320;
	rv = fw;
	rv.fd = k.dst[0];
	rv.port = k.fp;
	rv.ssrc = 0xde57;

	voice(&fw, 5);
	digit(&fw, 1, 1600, 0, 3);		/* "1", 200 ms */
	voice(&fw, 3);
	digit(&fw, 11, 2400, 1, 3);		/* "#", start lost */
	/* the end again, and a late update, after voice went on */
	voice(&fw, 2);
	n = mkevent(b, 101, 0, fw.seq++, fw.ts - 2400 - 320, fw.ssrc, 11, 1,
	    10, 2400);
	send_pkt(&fw, b, n);
	n = mkevent(b, 101, 0, fw.seq++, fw.ts - 2400 - 320, fw.ssrc, 11, 0,
	    10, 800);
	send_pkt(&fw, b, n);
	fw.sent_events += 2;
	/* "9", every end lost: 100 ms as far as its updates went */
	digit(&fw, 9, 1200, 0, 0);
	digit(&fw, 12, 960, 0, 3);		/* "A" at once after it */
	voice(&fw, 3);
	digit(&rv, 5, 1280, 0, 3);		/* reverse "5", 160 ms */
	voice(&rv, 2);

	expect_dtmf(st, "1", 200, "forward", 1, t0);
	expect_dtmf(st, "#", 300, "forward", 1, t0);
	expect_dtmf(st, "9", 100, "forward", 0, t0);
	expect_dtmf(st, "A", 120, "forward", 1, t0);
	expect_dtmf(st, "5", 160, "reverse", 1, t0);
	/* and nothing more: each digit once */
	ev = next_dtmf(st, harness_ms(1000));
	ck_assert_msg(ev == NULL, "a DTMF event too many: %s",
	    ev != NULL && ev->dtmf != NULL ? ev->dtmf->digit : "?");
	si = status_until(c, "q-dtmf", dtmf_counted);
	ck_assert_uint_eq(si->forward_stats->dtmf_events, 4);
	ck_assert_uint_eq(si->reverse_stats->dtmf_events, 1);
	ck_assert_uint_eq(si->forward_stats->dtmf_packets_dropped, 0);
	ck_assert_uint_eq(si->dtmf_payload_type, 101);
	/* every packet relayed */
	ck_assert_uint_eq(si->forward_stats->packets_sent,
	    (uint64_t)(1 + fw.sent_voice + fw.sent_events));
	harness_info_free(si);
	rpc_stream_free(st);
	call_down(c, "q-dtmf", &k);
	rpc_client_free(c);
}
END_TEST

static int
dropped_counted(const Rtpproxy__SessionInfo *si)
{
	return si->forward_stats->dtmf_events >= 1 &&
	    si->forward_stats->packets_received >= 12;
}

/* drop_dtmf on payload type 96: detected, counted, not relayed. */
START_TEST(dtmf_drop)
{
	struct rpc_client			*c = client();
	Rtpproxy__StreamSessionEventsRequest	 req =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	struct harness_session			 opt;
	struct rpc_stream			*st;
	Rtpproxy__SessionInfo			*si;
	struct call				 k;
	struct sender				 fw;
	uint8_t					 b[256];
	int					 pt96 = 0, other = 0;
	int64_t					 t0 = real_ns() / 1000000;

	req.session_id = (char *)"q-drop";
	ck_assert_ptr_nonnull(st = rpc_stream_open(c, M_EVENTS, &req.base,
	    0));
	memset(&opt, 0, sizeof(opt));
	opt.dtmf_pt = 96;
	opt.drop_dtmf = 1;
	call_up(c, "q-drop", &k, &opt);
	memset(&fw, 0, sizeof(fw));
	fw.fd = k.cal[0];
	fw.port = k.lp;
	fw.ssrc = 0xca11e7;
	fw.pt = 96;
	fw.seq = 2;
	fw.ts = 320;
	voice(&fw, 3);
	digit(&fw, 7, 1600, 0, 3);
	voice(&fw, 3);
	expect_dtmf(st, "7", 200, "forward", 1, t0);
	/* the destination got the voice, not the digit */
	while (harness_recv(k.dst[0], b, sizeof(b), 500, NULL) > 0) {
		if ((b[1] & 0x7f) == 96)
			pt96++;
		else
			other++;
	}
	ck_assert_int_eq(pt96, 0);
	ck_assert_int_eq(other, 6);
	si = status_until(c, "q-drop", dropped_counted);
	ck_assert_uint_eq(si->forward_stats->dtmf_events, 1);
	ck_assert_uint_eq(si->forward_stats->dtmf_packets_dropped,
	    (uint64_t)fw.sent_events);
	ck_assert_uint_eq(si->forward_stats->packets_dropped, 0);
	ck_assert_uint_eq(si->dtmf_payload_type, 96);
	ck_assert(si->drop_dtmf);
	harness_info_free(si);
	rpc_stream_free(st);
	call_down(c, "q-drop", &k);
	rpc_client_free(c);
}
END_TEST

/* Options out of range are refused, and say why. */
START_TEST(dtmf_options)
{
	struct rpc_client	*c = client();
	struct harness_session	 a;
	char			 det[256];
	int			 fd[2];
	uint16_t		 port = udp_pair(fd);

	memset(&a, 0, sizeof(a));
	a.id = "q-opt";
	a.laddr = a.faddr = a.daddr = "127.0.0.1";
	a.dport = port;
	a.dtmf_pt = 13;
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    3);	/* INVALID_ARGUMENT */
	ck_assert_ptr_nonnull(strstr(det, "dtmf_payload_type 13"));
	a.dtmf_pt = 0;
	a.drop_dtmf = 1;
	a.transport = RTPPROXY__TRANSPORT__TRANSPORT_TCP;
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    3);	/* INVALID_ARGUMENT */
	ck_assert_ptr_nonnull(strstr(det, "drop_dtmf"));
	close(fd[0]);
	close(fd[1]);
	rpc_client_free(c);
}
END_TEST

/* rtpproxyctl: status shows the quality, watch the digits. */
START_TEST(ctl_status_watch)
{
	struct rpc_client	*c = client();
	const char		*bin = getenv("RTPPROXYCTL");
	struct rblock		 blk = { .fraction = 13 };
	struct sender		 fw;
	struct call		 k;
	static char		 out[65536];
	char			 cmd[512], path[256];
	FILE			*fp;
	pid_t			 pid;
	int			 st, i;
	size_t			 n;

	if (bin == NULL)
		bin = "../src/rtpproxyctl";
	call_up(c, "q-ctl", &k, NULL);
	/* ACTIVE, so that the one event watch prints next is the digit */
	harness_info_free(status_until(c, "q-ctl", is_active));
	snprintf(path, sizeof(path), "%s/watch.out", dmn.dir);
	if ((pid = fork()) == 0) {
		if (freopen(path, "w", stdout) == NULL)
			_exit(127);
		execl(bin, bin, "-s", dmn.grpc, "watch", "q-ctl", "-c", "1",
		    (char *)NULL);
		_exit(127);
	}
	ck_assert_int_gt(pid, 0);
	usleep(300000);		/* its stream open (events are not replayed) */
	memset(&fw, 0, sizeof(fw));
	fw.fd = k.cal[0];
	fw.port = k.lp;
	fw.ssrc = 0xca11e7;
	fw.pt = 101;
	fw.seq = 2;
	fw.ts = 320;
	digit(&fw, 11, 1600, 0, 3);
	for (i = 0; i < 100 * harness_slow() && waitpid(pid, &st, WNOHANG) == 0;
	    i++)
		usleep(50000);
	if (i == 100 * harness_slow()) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		ck_abort_msg("rtpproxyctl watch printed no event");
	}
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_ptr_nonnull(fp = fopen(path, "r"));
	n = fread(out, 1, sizeof(out) - 1, fp);
	out[n] = '\0';
	fclose(fp);
	ck_assert_msg(strstr(out, "DTMF") != NULL &&
	    strstr(out, "forward digit #, 200 ms, -10 dBm0") != NULL,
	    "watch printed: %s", out);

	round_trip(k.cal[1], k.lp + 1, 0xca11e7, k.dst[1], k.fp + 1, 0xde57,
	    100, &blk);
	harness_info_free(status_until(c, "q-ctl", one_rtt_fwd));
	snprintf(cmd, sizeof(cmd), "%s -s %s status q-ctl 2>&1", bin,
	    dmn.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "MOS (E-model)") != NULL &&
	    strstr(out, "RTT ms") != NULL && strstr(out, "DTMF events") !=
	    NULL && strstr(out, "reported loss") != NULL, "status: %s", out);
	snprintf(cmd, sizeof(cmd), "%s -s %s -j status q-ctl 2>&1", bin,
	    dmn.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "\"rtt_ms\":"));
	ck_assert_ptr_nonnull(strstr(out, "\"mos\":"));
	ck_assert_ptr_nonnull(strstr(out, "\"dtmf_payload_type\":101"));
	call_down(c, "q-ctl", &k);
	rpc_client_free(c);
}
END_TEST

static int
got_10(const Rtpproxy__SessionInfo *si)
{
	return si->forward_stats->packets_received >= 10;
}

/*
 * A worker killed in the middle of a digit: the one that replaces it
 * tells the digit once when its end comes, and not the one before again.
 */
START_TEST(dtmf_worker_restart)
{
	struct rpc_client			*c = client();
	Rtpproxy__StreamSessionEventsRequest	 req =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	struct rpc_stream			*st;
	Rtpproxy__SessionEvent			*ev;
	struct sender				 fw;
	struct call				 k;
	uint8_t					 b[64];
	size_t					 n;
	pid_t					 wpid;
	int					 nready, i;
	uint32_t				 ts3;
	int64_t					 t0 = real_ns() / 1000000;

	req.session_id = (char *)"q-restart";
	ck_assert_ptr_nonnull(st = rpc_stream_open(c, M_EVENTS, &req.base,
	    0));
	call_up(c, "q-restart", &k, NULL);
	memset(&fw, 0, sizeof(fw));
	fw.fd = k.cal[0];
	fw.port = k.lp;
	fw.ssrc = 0xca11e7;
	fw.pt = 101;
	fw.seq = 2;
	fw.ts = 320;
	ts3 = fw.ts;
	digit(&fw, 3, 1600, 0, 3);		/* 6 packets */
	expect_dtmf(st, "3", 200, "forward", 1, t0);
	/* "4" begins: its start and two updates, 10 packets in all */
	for (i = 0; i < 3; i++) {
		n = mkevent(b, 101, i == 0, fw.seq++, fw.ts, fw.ssrc, 4, 0,
		    10, (uint16_t)(400 * (i + 1)));
		send_pkt(&fw, b, n);
	}
	harness_info_free(status_until(c, "q-restart", got_10));
	nready = harness_log_count(&dmn, "worker 0 ready");
	wpid = harness_worker_pid(&dmn, 0);
	ck_assert_int_gt(wpid, 0);
	ck_assert_int_eq(kill(wpid, SIGKILL), 0);
	ck_assert_int_eq(harness_wait_log(&dmn, "worker 0 ready", nready + 1,
	    harness_ms(10000)), 0);
	/*
	 * A late repeat of the end of "3" (a worker that forgot would tell
	 * "3" again), then the three ends of "4".
	 */
	n = mkevent(b, 101, 0, fw.seq++, ts3, fw.ssrc, 3, 1, 10, 1600);
	send_pkt(&fw, b, n);
	for (i = 0; i < 3; i++) {
		n = mkevent(b, 101, 0, fw.seq++, fw.ts, fw.ssrc, 4, 1, 10,
		    1600);
		send_pkt(&fw, b, n);
	}
	expect_dtmf(st, "4", 200, "forward", 1, t0);
	ev = next_dtmf(st, harness_ms(1000));
	ck_assert_msg(ev == NULL, "a DTMF event too many: %s",
	    ev != NULL && ev->dtmf != NULL ? ev->dtmf->digit : "?");
	rpc_stream_free(st);
	call_down(c, "q-restart", &k);
	rpc_client_free(c);
}
END_TEST

int
main(void)
{
	Suite			*s = suite_create("quality");
	const TTest		*const t_rtcp[] = { quality_rtt, quality_mos,
	    quality_malformed, quality_events_metrics, dtmf_events, dtmf_drop,
	    dtmf_options, ctl_status_watch, dtmf_worker_restart, NULL };

	harness_tcase(s, "rtcp", up, down, 60, t_rtcp);
	return harness_run_suite(s);
}
