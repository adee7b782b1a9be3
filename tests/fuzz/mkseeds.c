/*
 * Writes the binary seeds of the fuzz targets (RTP, IPC, protobuf) into
 * DIR/<target>/, from the daemon's own structures and the generated
 * protobuf-c code, so that they stay right when those change:
 *
 *	make fuzz-seeds		(runs tests/fuzz/mkseeds $(srcdir)/tests/fuzz/corpus)
 *
 * The text seeds (config, acl) are written by hand.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "sessions.h"
#include "grpcsvc.h"
#include "fuzz.h"
#include "rtpproxy.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

/* protobuf-c's strings are not const; the seeds only read them. */
#define S(lit)	((char *)(lit))

struct seed {
	uint8_t	b[16384];
	size_t	n;
};

static const char	*top;

static void
seed_write(const char *target, const char *name, const struct seed *s)
{
	char	 path[4096];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/%s", top, target);
	if (mkdir(path, 0755) == -1 && errno != EEXIST)
		fatal("mkdir %s", path);
	snprintf(path, sizeof(path), "%s/%s/%s", top, target, name);
	if ((fp = fopen(path, "wb")) == NULL)
		fatal("%s", path);
	if (fwrite(s->b, 1, s->n, fp) != s->n || fclose(fp) != 0)
		fatal("%s", path);
}

static void
put(struct seed *s, const void *p, size_t n)
{
	if (s->n + n > sizeof(s->b))
		fatalx("seed too large");
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void
put8(struct seed *s, uint8_t v)
{
	put(s, &v, 1);
}

static void
put16(struct seed *s, uint16_t v)
{
	put8(s, (uint8_t)(v >> 8));
	put8(s, (uint8_t)v);
}

static void
put32(struct seed *s, uint32_t v)
{
	put16(s, (uint16_t)(v >> 16));
	put16(s, (uint16_t)v);
}

/* --- RTP: dyn_rate, then records of length | step | packet ------------- */

struct rtp {
	uint8_t		pt, marker, cc, ext_words, pad;
	uint16_t	seq;
	uint32_t	ts, ssrc;
	size_t		payload;
};

static void
rtp_packet(struct seed *p, const struct rtp *r)
{
	uint8_t	i;
	size_t	k;

	put8(p, (uint8_t)(0x80 | (r->pad ? 0x20 : 0) |
	    (r->ext_words ? 0x10 : 0) | r->cc));
	put8(p, (uint8_t)(r->marker << 7 | r->pt));
	put16(p, r->seq);
	put32(p, r->ts);
	put32(p, r->ssrc);
	for (i = 0; i < r->cc; i++)
		put32(p, 0x1000 + i);
	if (r->ext_words) {
		put16(p, 0xbede);		/* RFC 8285 one-byte headers */
		put16(p, r->ext_words);
		for (i = 0; i < r->ext_words; i++)
			put32(p, 0x10aa0000u | i);
	}
	for (k = 0; k < r->payload; k++)
		put8(p, (uint8_t)(0xd5 ^ k));
	for (i = 1; i <= r->pad; i++)
		put8(p, i == r->pad ? r->pad : 0);
}

static void
record(struct seed *s, const struct seed *pkt, uint16_t step)
{
	put16(s, (uint16_t)pkt->n);
	put16(s, step);
	put(s, pkt->b, pkt->n);
}

static void
rtp_record(struct seed *s, const struct rtp *r, uint16_t step)
{
	struct seed pkt = { .n = 0 };

	rtp_packet(&pkt, r);
	record(s, &pkt, step);
}

/* n packets of a stream from seq, ts advancing by tsstep, 20 ms apart */
static void
rtp_run(struct seed *s, struct rtp *r, int n, uint32_t tsstep)
{
	int i;

	for (i = 0; i < n; i++) {
		rtp_record(s, r, 160);
		r->seq++;
		r->ts += tsstep;
	}
}

static void
rtcp_sr(struct seed *p, int blocks)
{
	int i;

	put8(p, (uint8_t)(0x80 | blocks));
	put8(p, 200);
	put16(p, (uint16_t)((28 + 24 * blocks) / 4 - 1));
	put32(p, 0x11223344);			/* sender SSRC */
	put32(p, 0xe8a5b6c7);			/* NTP seconds */
	put32(p, 0x80000000);			/* NTP fraction */
	put32(p, 160000);			/* RTP timestamp */
	put32(p, 1000);				/* packets */
	put32(p, 160000);			/* octets */
	for (i = 0; i < blocks; i++) {
		put32(p, 0x55667788);		/* source */
		put32(p, 0x02000003);		/* fraction, cumulative lost */
		put32(p, 0x0001000a);		/* extended highest seq */
		put32(p, 17);			/* jitter */
		put32(p, 0xb6c78000);		/* LSR */
		put32(p, 0x00010000);		/* DLSR */
	}
}

static void
rtcp_rr(struct seed *p)
{
	put8(p, 0x81);
	put8(p, 201);
	put16(p, 7);
	put32(p, 0x55667788);
	put32(p, 0x11223344);
	put32(p, 0);
	put32(p, 0x00000410);
	put32(p, 3);
	put32(p, 0);
	put32(p, 0);
}

static void
rtcp_sdes(struct seed *p)
{
	static const char cname[] = "user@192.0.2.1";

	/* chunk: SSRC, CNAME item, end, padding to 32 bits */
	put8(p, 0x81);
	put8(p, 202);
	put16(p, (uint16_t)((4 + 4 + 2 + sizeof(cname) - 1 + 1 + 3) / 4 - 1));
	put32(p, 0x11223344);
	put8(p, 1);
	put8(p, sizeof(cname) - 1);
	put(p, cname, sizeof(cname) - 1);
	put8(p, 0);
	while (p->n % 4 != 0)
		put8(p, 0);
}

static void
seeds_rtp(void)
{
	struct seed	s, pkt;
	struct rtp	r;
	int		i;

	/* A G.711 call, 20 ms packets. */
	memset(&s, 0, sizeof(s));
	put32(&s, 0);
	r = (struct rtp){ .pt = 0, .seq = 1000, .ts = 8000, .ssrc = 0x11223344,
	    .payload = 8 };
	rtp_run(&s, &r, 50, 160);
	seed_write("rtp", "pcmu-call", &s);

	/* The sequence number wraps. */
	memset(&s, 0, sizeof(s));
	put32(&s, 0);
	r = (struct rtp){ .pt = 8, .seq = 65528, .ts = 0xfffff000u,
	    .ssrc = 0xcafe, .payload = 4 };
	rtp_run(&s, &r, 20, 160);
	seed_write("rtp", "seq-wrap", &s);

	/* Loss, reordering, a duplicate, a late packet; uneven arrival. */
	memset(&s, 0, sizeof(s));
	put32(&s, 0);
	r = (struct rtp){ .pt = 0, .seq = 1, .ts = 0, .ssrc = 0x5151,
	    .payload = 4 };
	for (i = 1; i <= 40; i++) {
		int seq = i;

		if (i == 5 || i == 6 || i == 17)
			continue;
		if (i == 20)
			seq = 21;
		else if (i == 21)
			seq = 20;
		r.seq = (uint16_t)seq;
		r.ts = (uint32_t)seq * 160;
		rtp_record(&s, &r, (uint16_t)(120 + (i * 37) % 90));
		if (i == 30)
			rtp_record(&s, &r, 0);
		if (i == 35) {
			r.seq = 10;
			r.ts = 1600;
			rtp_record(&s, &r, 3);
		}
	}
	seed_write("rtp", "loss-reorder-dup", &s);

	/* A new SSRC half way, then the first one again. */
	memset(&s, 0, sizeof(s));
	put32(&s, 0);
	r = (struct rtp){ .pt = 0, .seq = 200, .ts = 1, .ssrc = 0xaaaa,
	    .payload = 4 };
	rtp_run(&s, &r, 10, 160);
	r = (struct rtp){ .pt = 0, .seq = 9000, .ts = 777, .ssrc = 0xbbbb,
	    .payload = 4 };
	rtp_run(&s, &r, 10, 160);
	r = (struct rtp){ .pt = 0, .seq = 210, .ts = 1601, .ssrc = 0xaaaa,
	    .payload = 4 };
	rtp_run(&s, &r, 5, 160);
	seed_write("rtp", "ssrc-change", &s);

	/* The sender restarts its sequence without a new SSRC. */
	memset(&s, 0, sizeof(s));
	put32(&s, 0);
	r = (struct rtp){ .pt = 0, .seq = 100, .ts = 0, .ssrc = 0xdddd,
	    .payload = 4 };
	rtp_run(&s, &r, 10, 160);
	r.seq = 40000;
	rtp_run(&s, &r, 10, 160);
	seed_write("rtp", "restart", &s);

	/* CSRCs, a header extension and padding. */
	memset(&s, 0, sizeof(s));
	put32(&s, 0);
	r = (struct rtp){ .pt = 0, .seq = 7, .ts = 0, .ssrc = 0x1234,
	    .cc = 2, .ext_words = 1, .pad = 4, .payload = 8 };
	rtp_run(&s, &r, 4, 160);
	r.cc = 15;
	r.ext_words = 3;
	r.pad = 1;
	rtp_run(&s, &r, 2, 160);
	seed_write("rtp", "csrc-ext-pad", &s);

	/* Opus on a dynamic payload type with the session's clock_rate. */
	memset(&s, 0, sizeof(s));
	put32(&s, 48000);
	r = (struct rtp){ .pt = 111, .seq = 3000, .ts = 0, .ssrc = 0x0705,
	    .payload = 12 };
	rtp_run(&s, &r, 30, 960);
	seed_write("rtp", "opus-dynamic", &s);

	/* Video: several packets per frame, 90 kHz, the marker on the last. */
	memset(&s, 0, sizeof(s));
	put32(&s, 0);
	r = (struct rtp){ .pt = 26, .seq = 50, .ts = 90000, .ssrc = 0x9090,
	    .payload = 16 };
	for (i = 0; i < 30; i++) {
		r.marker = i % 3 == 2;
		rtp_record(&s, &r, i % 3 == 0 ? 267 : 2);
		r.seq++;
		if (r.marker)
			r.ts += 3000;
	}
	seed_write("rtp", "video-90k", &s);

	/* RTP and RTCP on one port (RFC 5761): SR + RR + SDES. */
	memset(&s, 0, sizeof(s));
	put32(&s, 0);
	r = (struct rtp){ .pt = 0, .seq = 1, .ts = 0, .ssrc = 0x11223344,
	    .payload = 4 };
	rtp_run(&s, &r, 5, 160);
	memset(&pkt, 0, sizeof(pkt));
	rtcp_sr(&pkt, 1);
	rtcp_rr(&pkt);
	rtcp_sdes(&pkt);
	record(&s, &pkt, 10);
	rtp_run(&s, &r, 5, 160);
	seed_write("rtp", "rtcp-compound", &s);

	/* BYE and APP. */
	memset(&s, 0, sizeof(s));
	put32(&s, 0);
	memset(&pkt, 0, sizeof(pkt));
	rtcp_rr(&pkt);
	put8(&pkt, 0x81);			/* BYE, one source */
	put8(&pkt, 203);
	put16(&pkt, 1);
	put32(&pkt, 0x55667788);
	put8(&pkt, 0x80);			/* APP */
	put8(&pkt, 204);
	put16(&pkt, 3);
	put32(&pkt, 0x55667788);
	put(&pkt, "TEST", 4);
	put32(&pkt, 42);
	record(&s, &pkt, 0);
	seed_write("rtp", "rtcp-bye-app", &s);

	/* SRTCP: a clear SR header, ciphertext, E flag and index, a tag. */
	memset(&s, 0, sizeof(s));
	put32(&s, 0);
	memset(&pkt, 0, sizeof(pkt));
	put8(&pkt, 0x80);
	put8(&pkt, 200);
	put16(&pkt, 6);
	put32(&pkt, 0x11223344);
	for (i = 0; i < 20; i++)
		put8(&pkt, (uint8_t)(i * 73 + 5));
	put32(&pkt, 0x80000001);
	for (i = 0; i < 10; i++)
		put8(&pkt, (uint8_t)(0xa0 + i));
	record(&s, &pkt, 0);
	seed_write("rtp", "srtcp", &s);

	/* STUN before media (ICE), then RTP; and a clock stepped back. */
	memset(&s, 0, sizeof(s));
	put32(&s, 0);
	memset(&pkt, 0, sizeof(pkt));
	put16(&pkt, 0x0001);
	put16(&pkt, 0);
	put32(&pkt, 0x2112a442);
	for (i = 0; i < 12; i++)
		put8(&pkt, (uint8_t)i);
	record(&s, &pkt, 0);
	r = (struct rtp){ .pt = 0, .seq = 60000, .ts = 0, .ssrc = 0x4242,
	    .payload = 4 };
	rtp_run(&s, &r, 6, 160);
	rtp_record(&s, &r, 0xffff);
	r.seq++;
	r.ts += 160;
	rtp_run(&s, &r, 6, 160);
	seed_write("rtp", "stun-clock-step", &s);
}

/* --- IPC: descriptors | room << 3, then the message ---------------------- */

static void
ipc_seed(const char *name, int nsend, int room, const void *msg, size_t n)
{
	struct seed s = { .n = 0 };

	put8(&s, (uint8_t)(nsend | room << 3));
	put(&s, msg, n);
	seed_write("ipc", name, &s);
}

static void
seeds_ipc(void)
{
	static const struct {
		const char	*name;
		uint16_t	 type;
		uint32_t	 arg;
		int		 nfds;
	} plain[] = {
		{ "ready", IPC_READY, 0, 0 },
		{ "active", IPC_ACTIVE, 0, 0 },
		{ "removed", IPC_REMOVED, 0, 0 },
		{ "add-2fds", IPC_ADD, 2, 2 },
		{ "add-4fds", IPC_ADD, 4, 4 },
		{ "remove", IPC_REMOVE, 0, 0 },
		{ "shutdown", IPC_SHUTDOWN, 0, 0 },
		{ "setlog-debug", IPC_SETLOG, LOG_DEBUG, 0 },
		{ "closed", IPC_CLOSED, 0, 0 },
		{ "hello", IPC_HELLO, 4242, 0 },
		{ "take", IPC_TAKE, 0, 0 },
		{ "go", IPC_GO, 0, 0 },
		{ "go-pidfile", IPC_GO, 1, 1 },
		/* init_roundtrip gave these no descriptors */
		{ "crash-init-tcp-accepted", IPC_TCP_ACCEPTED, 0, 1 },
	};
	struct ipc_error	e;
	struct ipc_latch	l;
	struct ipc_dtmf		dt;
	struct ipc_have		hv;
	struct ipc_hdr		h;
	uint8_t			big[IPC_MAXMSG + 64];
	size_t			i;

	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		ipc_init(&h, plain[i].type, 3, 17, 5);
		h.arg = plain[i].arg;
		ipc_seed(plain[i].name, plain[i].nfds, IPC_MAXFDS, &h,
		    sizeof(h));
	}
	ipc_init(&e.hdr, IPC_ERROR, 3, 17, 5);
	e.err = ECONNREFUSED;
	snprintf(e.reason, sizeof(e.reason), "ICMP port unreachable");
	ipc_seed("error", 0, IPC_MAXFDS, &e, sizeof(e));
	ipc_init(&l.hdr, IPC_LATCHED, 3, 17, 5);
	l.from.family = AF_INET;
	l.from.port = 40000;
	memcpy(l.from.addr, "\xc0\x00\x02\x01", 4);
	l.to = l.from;
	l.to.port = 40002;
	snprintf(l.reason, sizeof(l.reason), "latch-policy latest");
	ipc_seed("latched", 0, IPC_MAXFDS, &l, sizeof(l));
	ipc_init(&l.hdr, IPC_REFUSED, 3, 17, 5);
	l.hdr.arg = IPC_LATCH_RTCP;
	memset(&l.from, 0, sizeof(l.from));
	snprintf(l.reason, sizeof(l.reason), "sender 192.0.2.1:40002 is "
	    "refused");
	ipc_seed("refused", 0, IPC_MAXFDS, &l, sizeof(l));
	ipc_init(&dt.hdr, IPC_DTMF, 3, 17, 5);
	dt.hdr.arg = SHM_DIR_REV;
	dt.event = 11;
	dt.volume = 10;
	dt.duration = 1600;
	dt.clock_rate = 8000;
	dt.rtp_ts = 48000;
	dt.ssrc = 0x77;
	dt.end_seen = 1;
	dt.start_ms = 1700000000000LL;
	ipc_seed("dtmf", 0, IPC_MAXFDS, &dt, sizeof(dt));
	ipc_init(&hv.hdr, IPC_HAVE, 3, 17, 5);
	hv.hdr.arg = 2;
	hv.status = IPC_HAVE_ACTIVE | IPC_HAVE_ERROR;
	snprintf(hv.reason, sizeof(hv.reason), "ICMP port unreachable");
	ipc_seed("crash-init-have", 2, IPC_MAXFDS, &hv, sizeof(hv));

	/* Malformed: each must be refused. */
	memset(e.reason, 'x', sizeof(e.reason));
	ipc_seed("error-unterminated", 0, IPC_MAXFDS, &e, sizeof(e));
	memset(l.reason, 'x', sizeof(l.reason));
	ipc_seed("refused-unterminated", 0, IPC_MAXFDS, &l, sizeof(l));
	memset(hv.reason, 'x', sizeof(hv.reason));
	ipc_seed("have-unterminated", 2, IPC_MAXFDS, &hv, sizeof(hv));
	ipc_init(&h, IPC_TCP_ACCEPTED, 3, 17, 5);
	ipc_seed("tcp-accepted-no-fd", 0, IPC_MAXFDS, &h, sizeof(h));
	ipc_init(&h, IPC_GO, 0, 0, 0);
	h.arg = 2;
	ipc_seed("go-2fds", 2, IPC_MAXFDS, &h, sizeof(h));
	ipc_init(&h, IPC_ADD, 3, 17, 5);
	h.arg = 4;
	ipc_seed("add-fewer-fds", 2, IPC_MAXFDS, &h, sizeof(h));
	ipc_seed("add-more-fds-than-room", 6, IPC_MAXFDS, &h, sizeof(h));
	ipc_seed("add-no-room", 4, 1, &h, sizeof(h));
	ipc_init(&h, IPC_READY, 3, 0, 0);
	h.version = IPC_VERSION + 1;
	ipc_seed("bad-version", 0, IPC_MAXFDS, &h, sizeof(h));
	ipc_init(&h, IPC_READY, 3, 0, 0);
	h.len = sizeof(e);
	ipc_seed("bad-len", 0, IPC_MAXFDS, &h, sizeof(h));
	ipc_seed("short", 0, IPC_MAXFDS, &h, sizeof(h) - 4);
	ipc_init(&h, 99, 3, 0, 0);
	ipc_seed("unknown-type", 0, IPC_MAXFDS, &h, sizeof(h));
	ipc_init(&h, IPC_READY, 3, 0, 0);
	ipc_seed("ready-with-fd", 1, IPC_MAXFDS, &h, sizeof(h));
	memset(big, 0, sizeof(big));
	memcpy(big, &h, sizeof(h));
	ipc_seed("oversize", 0, IPC_MAXFDS, big, sizeof(big));
	/* ipc_recv left these open (it returned 0 before looking). */
	ipc_seed("crash-empty-with-fds", 2, IPC_MAXFDS, big, 0);
}

/* --- protobuf: a type octet, then the wire bytes ------------------------ */

static void
pb_seed(const char *target, const char *name, int type,
    const ProtobufCMessage *m, size_t cut)
{
	struct seed	s = { .n = 0 };
	size_t		n = protobuf_c_message_get_packed_size(m);

	if (type >= 0)
		put8(&s, (uint8_t)type);
	if (s.n + n > sizeof(s.b))
		fatalx("seed too large");
	protobuf_c_message_pack(m, s.b + s.n);
	s.n += n - cut;
	seed_write(target, name, &s);
}

static void
raw_seed(const char *target, const char *name, int type, const void *p,
    size_t n)
{
	struct seed s = { .n = 0 };

	if (type >= 0)
		put8(&s, (uint8_t)type);
	put(&s, p, n);
	seed_write(target, name, &s);
}

enum { T_CREATE, T_DESTROY, T_STATUS, T_LIST, T_EVENTS, T_HEALTH };

static void
seeds_request(void)
{
	Rtpproxy__CreateSessionRequest		c;
	Rtpproxy__Endpoint			l, f, d;
	Rtpproxy__DestroySessionRequest		ds =
	    RTPPROXY__DESTROY_SESSION_REQUEST__INIT;
	Rtpproxy__GetSessionStatusRequest	gs =
	    RTPPROXY__GET_SESSION_STATUS_REQUEST__INIT;
	Rtpproxy__ListSessionsRequest		ls =
	    RTPPROXY__LIST_SESSIONS_REQUEST__INIT;
	char					token[REQUEST_TOKEN_MAX];
	Rtpproxy__StreamSessionEventsRequest	ev =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckRequest	hc =
	    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	/* session_id "a<NUL>b": protobuf-c cannot pack it */
	static const uint8_t nul_id[] = { 0x0a, 0x03, 'a', 0x00, 'b' };
	/* listen { address "\xc3\x28" }: bad UTF-8, nested */
	static const uint8_t bad_nested[] = { 0x12, 0x04, 0x0a, 0x02, 0xc3,
	    0x28 };
	/* a length that runs past the end */
	static const uint8_t overrun[] = { 0x0a, 0x7f, 'x' };
	char long_id[80];

#define CREATE_INIT() do {						\
	rtpproxy__create_session_request__init(&c);			\
	rtpproxy__endpoint__init(&l);					\
	rtpproxy__endpoint__init(&f);					\
	rtpproxy__endpoint__init(&d);					\
	l.address = S("127.0.0.1");					\
	d.address = S("198.51.100.7");					\
	d.port = 40000;							\
	c.listen = &l;							\
	c.destination = &d;						\
} while (0)

	CREATE_INIT();
	pb_seed("request", "create-minimal", T_CREATE, &c.base, 0);
	c.session_id = S("call-1@example.com");
	l.port = 20000;
	f.address = S("0.0.0.0");
	c.forward = &f;
	c.transport = RTPPROXY__TRANSPORT__TRANSPORT_UDP;
	c.unidirectional = 1;
	c.disable_rtcp = 1;
	c.idle_timeout_s = 30;
	c.stats_interval_ms = 1000;
	c.clock_rate = 48000;
	c.reverse_source =
	    RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ADDRESS_PORT;
	c.rate_limit_pps = 100;
	c.rate_limit_bps = 64000;
	pb_seed("request", "create-every-field", T_CREATE, &c.base, 0);
	pb_seed("request", "create-truncated", T_CREATE, &c.base, 1);

	CREATE_INIT();
	l.address = S("::1");
	d.address = S("2001:db8::7");
	d.port = 5004;
	f.port = 30000;
	c.forward = &f;
	c.transport = RTPPROXY__TRANSPORT__TRANSPORT_TCP;
	pb_seed("request", "create-ipv6-tcp-forward-port", T_CREATE, &c.base,
	    0);
	l.address = S("fe80::1%lo");
	pb_seed("request", "create-scoped", T_CREATE, &c.base, 0);

	CREATE_INIT();
	c.session_id = S("\xff\xfe");
	pb_seed("request", "create-bad-utf8-id", T_CREATE, &c.base, 0);
	CREATE_INIT();
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	c.session_id = long_id;
	pb_seed("request", "create-long-id", T_CREATE, &c.base, 0);
	c.session_id = S("a/b");
	pb_seed("request", "create-bad-id-char", T_CREATE, &c.base, 0);
	CREATE_INIT();
	c.transport = 7;
	pb_seed("request", "create-unknown-transport", T_CREATE, &c.base, 0);
	CREATE_INIT();
	c.reverse_source = 9;
	pb_seed("request", "create-unknown-reverse-source", T_CREATE,
	    &c.base, 0);
	CREATE_INIT();
	d.port = 70000;
	pb_seed("request", "create-port-range", T_CREATE, &c.base, 0);
	CREATE_INIT();
	d.address = S("2001:db8::1");
	pb_seed("request", "create-mixed-families", T_CREATE, &c.base, 0);
	CREATE_INIT();
	d.address = S("0.0.0.0");
	pb_seed("request", "create-wildcard-destination", T_CREATE, &c.base,
	    0);
	CREATE_INIT();
	d.address = S("example.com");
	pb_seed("request", "create-hostname", T_CREATE, &c.base, 0);
	CREATE_INIT();
	c.destination = NULL;
	pb_seed("request", "create-no-destination", T_CREATE, &c.base, 0);
	raw_seed("request", "create-nul-in-id", T_CREATE, nul_id,
	    sizeof(nul_id));
	raw_seed("request", "create-bad-utf8-nested", T_CREATE, bad_nested,
	    sizeof(bad_nested));
	raw_seed("request", "create-overrun", T_CREATE, overrun,
	    sizeof(overrun));

	ds.session_id = S("call-1");
	pb_seed("request", "destroy", T_DESTROY, &ds.base, 0);
	ds.session_id = S("");
	pb_seed("request", "destroy-empty-id", T_DESTROY, &ds.base, 0);
	gs.session_id = S("call-1");
	pb_seed("request", "status", T_STATUS, &gs.base, 0);
	ls.state = RTPPROXY__SESSION_STATE__SESSION_STATE_ACTIVE;
	ls.page_size = 10;
	ls.page_token = S("12.3.abcdef");
	pb_seed("request", "list-page", T_LIST, &ls.base, 0);
	request_token_make(FUZZ_TOKEN_KEY, 4242, ls.state, token,
	    sizeof(token));
	ls.page_token = token;
	pb_seed("request", "list-valid-token", T_LIST, &ls.base, 0);
	token[3] ^= 1;
	pb_seed("request", "list-token-bad-mac", T_LIST, &ls.base, 0);
	ls.state = 42;
	ls.page_token = S("");
	pb_seed("request", "list-unknown-state", T_LIST, &ls.base, 0);
	ev.session_id = S("");
	pb_seed("request", "events-all", T_EVENTS, &ev.base, 0);
	ev.session_id = S("call-1");
	pb_seed("request", "events-one", T_EVENTS, &ev.base, 0);
	hc.service = S("rtpproxy.RtpProxy");
	pb_seed("request", "health", T_HEALTH, &hc.base, 0);
}

static void
seeds_reflection(void)
{
	Grpc__Reflection__V1__ServerReflectionRequest	r;
	Grpc__Reflection__V1__ExtensionRequest		x =
	    GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
	static const uint8_t bad_utf8[] = { 0x22, 0x03, 'r', 0xc0, 0xaf };

#define RINIT(kase) do {						\
	grpc__reflection__v1__server_reflection_request__init(&r);	\
	r.message_request_case =					\
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##kase; \
} while (0)

	RINIT(LIST_SERVICES);
	r.list_services = S("*");
	pb_seed("reflection", "list-services", -1, &r.base, 0);
	r.host = S("localhost:50051");
	pb_seed("reflection", "list-services-host", -1, &r.base, 0);
	RINIT(FILE_BY_FILENAME);
	r.file_by_filename = S("rtpproxy.proto");
	pb_seed("reflection", "file-rtpproxy", -1, &r.base, 0);
	r.file_by_filename = S("grpc/health/v1/health.proto");
	pb_seed("reflection", "file-health", -1, &r.base, 0);
	r.file_by_filename = S("no/such.proto");
	pb_seed("reflection", "file-missing", -1, &r.base, 0);
	RINIT(FILE_CONTAINING_SYMBOL);
	r.file_containing_symbol = S("rtpproxy.RtpProxy");
	pb_seed("reflection", "symbol-service", -1, &r.base, 0);
	r.file_containing_symbol = S(".rtpproxy.CreateSessionRequest");
	pb_seed("reflection", "symbol-message-dot", -1, &r.base, 0);
	r.file_containing_symbol = S("rtpproxy.RtpProxy.CreateSession");
	pb_seed("reflection", "symbol-method", -1, &r.base, 0);
	r.file_containing_symbol = S("rtpproxy.SessionInfo.forward_stats");
	pb_seed("reflection", "symbol-field", -1, &r.base, 0);
	r.file_containing_symbol = S("grpc.reflection.v1.ServerReflection");
	pb_seed("reflection", "symbol-reflection", -1, &r.base, 0);
	r.file_containing_symbol = S("no.Such");
	pb_seed("reflection", "symbol-missing", -1, &r.base, 0);
	RINIT(FILE_CONTAINING_EXTENSION);
	x.containing_type = S("rtpproxy.Endpoint");
	x.extension_number = 100;
	r.file_containing_extension = &x;
	pb_seed("reflection", "extension", -1, &r.base, 0);
	RINIT(ALL_EXTENSION_NUMBERS_OF_TYPE);
	r.all_extension_numbers_of_type = S("rtpproxy.Endpoint");
	pb_seed("reflection", "extension-numbers", -1, &r.base, 0);
	r.all_extension_numbers_of_type = S("rtpproxy.RtpProxy");
	pb_seed("reflection", "extension-numbers-not-message", -1, &r.base,
	    0);
	RINIT(_NOT_SET);
	pb_seed("reflection", "empty", -1, &r.base, 0);
	raw_seed("reflection", "symbol-bad-utf8", -1, bad_utf8,
	    sizeof(bad_utf8));
}

/* --- RTCP and DTMF: records of length | step | direction | packet ----- */

static void
rtcp_record(struct seed *s, const struct seed *pkt, uint16_t step, int dir)
{
	put16(s, (uint16_t)pkt->n);
	put16(s, step);
	put8(s, (uint8_t)dir);
	put(s, pkt->b, pkt->n);
}

/* An RR of ssrc about source, answering an SR whose NTP middle is lsr. */
static void
rtcp_rr_lsr(struct seed *p, uint32_t ssrc, uint32_t source, uint32_t lsr,
    uint32_t dlsr, int count)
{
	put8(p, (uint8_t)(0x80 | count));
	put8(p, 201);
	put16(p, 7);
	put32(p, ssrc);
	put32(p, source);
	put32(p, 0x1a00002a);		/* 26/256, 42 lost */
	put32(p, 0x00010000);
	put32(p, 80);			/* jitter */
	put32(p, lsr);
	put32(p, dlsr);
}

static void
dtmf_packet(struct seed *p, uint16_t seq, uint32_t ts, int marker,
    uint8_t event, int end, uint16_t dur)
{
	struct rtp r = { .pt = 101, .marker = (uint8_t)marker, .seq = seq,
	    .ts = ts, .ssrc = 0x77, .payload = 0 };

	rtp_packet(p, &r);
	put8(p, event);
	put8(p, (uint8_t)((end ? 0x80 : 0) | 10));
	put16(p, dur);
}

static void
seeds_rtcp(void)
{
	struct seed	s, pkt;
	uint16_t	seq = 1, d;
	int		i, k;

	/* SR one way, the RR answering it back 100 ms later; both ways. */
	memset(&s, 0, sizeof(s));
	for (k = 0; k < 2; k++) {
		memset(&pkt, 0, sizeof(pkt));
		rtcp_sr(&pkt, 0);
		rtcp_sdes(&pkt);
		rtcp_record(&s, &pkt, 8, k);
		memset(&pkt, 0, sizeof(pkt));
		rtcp_rr_lsr(&pkt, 0x55667788, 0x11223344, 0xa5b6c780,
		    0x00000ccd, 1);
		rtcp_sdes(&pkt);
		rtcp_record(&s, &pkt, 800, k ^ 1);
	}
	seed_write("rtcp", "sr-rr-both-ways", &s);

	/* An RR claiming 5 blocks with 1; an SR too short; a bad length. */
	memset(&s, 0, sizeof(s));
	memset(&pkt, 0, sizeof(pkt));
	rtcp_rr_lsr(&pkt, 0x55667788, 0x11223344, 0, 0, 5);
	rtcp_record(&s, &pkt, 8, 0);
	memset(&pkt, 0, sizeof(pkt));
	rtcp_sr(&pkt, 0);
	pkt.b[3] = 1;
	pkt.n = 8;
	rtcp_record(&s, &pkt, 8, 1);
	memset(&pkt, 0, sizeof(pkt));
	rtcp_sr(&pkt, 2);
	pkt.b[3] = 40;
	rtcp_record(&s, &pkt, 8, 0);
	seed_write("rtcp", "malformed", &s);

	/* A DLSR longer than the wait, and an SR with two blocks. */
	memset(&s, 0, sizeof(s));
	memset(&pkt, 0, sizeof(pkt));
	rtcp_sr(&pkt, 2);
	rtcp_record(&s, &pkt, 8, 1);
	memset(&pkt, 0, sizeof(pkt));
	rtcp_rr_lsr(&pkt, 0x55667788, 0x11223344, 0xa5b6c780, 0xffffffff, 1);
	rtcp_record(&s, &pkt, 8, 0);
	seed_write("rtcp", "dlsr-lie", &s);

	/*
	 * Digits as senders send them: start, updates, three ends; a lost
	 * start; every end lost; a late repeat of an end.
	 */
	memset(&s, 0, sizeof(s));
	for (k = 0; k < 3; k++) {
		for (d = 400, i = 0; d < 1600; d += 400, i++) {
			memset(&pkt, 0, sizeof(pkt));
			dtmf_packet(&pkt, seq++, 8000u * (uint32_t)(k + 1),
			    i == 0, (uint8_t)(k + 1), 0, d);
			if (!(k == 1 && i == 0))
				rtcp_record(&s, &pkt, 400, 0);
		}
		for (i = 0; i < 3 && k != 2; i++) {
			memset(&pkt, 0, sizeof(pkt));
			dtmf_packet(&pkt, seq++, 8000u * (uint32_t)(k + 1), 0,
			    (uint8_t)(k + 1), 1, 1600);
			rtcp_record(&s, &pkt, 8, 0);
		}
	}
	memset(&pkt, 0, sizeof(pkt));
	dtmf_packet(&pkt, seq++, 8000, 0, 1, 1, 1600);
	rtcp_record(&s, &pkt, 8, 0);
	seed_write("rtcp", "dtmf-digits", &s);
}

int
main(int argc, char *argv[])
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds DIR\n");
		return 64;
	}
	log_init(1, LOG_INFO, LOG_DAEMON, "mkseeds");
	top = argv[1];
	seeds_rtp();
	seeds_rtcp();
	seeds_ipc();
	seeds_request();
	seeds_reflection();
	return 0;
}
