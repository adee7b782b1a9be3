/*
 * RTP/RTCP validation and RFC 3550 statistics, without sockets.
 */
#include <check.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

#define T0_NS	(1700000000LL * 1000000000LL)	/* a whole second */
#define MS	1000000LL
/* The estimate in timestamp units (it is fixed point: rfc3550.h). */
#define JIT()	((double)dir.src.jitter / (1 << RFC3550_JITTER_SHIFT))

static struct shm_dir	dir;

static void
setup(void)
{
	memset(&dir, 0, sizeof(dir));
}

static size_t
mkrtp(uint8_t *b, uint16_t seq, uint32_t ts, uint32_t ssrc, uint8_t pt)
{
	memset(b, 0, 64);
	b[0] = 0x80;
	b[1] = pt;
	b[2] = seq >> 8;
	b[3] = seq & 0xff;
	b[4] = ts >> 24;
	b[5] = ts >> 16;
	b[6] = ts >> 8;
	b[7] = ts & 0xff;
	b[8] = ssrc >> 24;
	b[9] = ssrc >> 16;
	b[10] = ssrc >> 8;
	b[11] = ssrc & 0xff;
	return 32;
}

/* One packet through the parser and the statistics. */
static void
feed(uint16_t seq, uint32_t ts, uint32_t ssrc, uint8_t pt, int64_t ns)
{
	uint8_t		b[64];
	struct rtp_info	ri;
	size_t		n = mkrtp(b, seq, ts, ssrc, pt);

	ck_assert_int_eq(rtp_parse(b, n, &ri), 0);
	rtpstat_update(&dir, &ri, ns);
}

/* Opus-like: PT 111, 20 ms = 960 ticks of a 48 kHz clock. */
static void
feed_dyn(uint16_t seq, uint32_t rate, int64_t skew_ns)
{
	uint8_t		b[64];
	struct rtp_info	ri;
	size_t		n = mkrtp(b, seq, (uint32_t)seq * 960, 0x4d, 111);

	ck_assert_int_eq(rtp_parse(b, n, &ri), 0);
	ri.dyn_rate = rate;
	rtpstat_update(&dir, &ri, T0_NS + seq * 20 * MS + skew_ns);
}

static void
feed_seq(uint16_t seq)
{
	feed(seq, (uint32_t)seq * 160, 0x1234, 0, T0_NS + seq * 20 * MS);
}

static uint64_t
expected(void)
{
	return atomic_load(&dir.packets_expected);
}

static int64_t
lost(void)
{
	return atomic_load(&dir.packets_lost);
}

/* A buffer of exactly len bytes, so valgrind/ASan see any over-read. */
static int
parse_exact(const uint8_t *src, size_t len, struct rtp_info *ri)
{
	uint8_t	*b = malloc(len ? len : 1);
	int	 r;

	memcpy(b, src, len);
	r = rtp_parse(b, len, ri);
	free(b);
	return r;
}

START_TEST(parse_valid)
{
	uint8_t		b[64];
	struct rtp_info	ri;

	mkrtp(b, 0xabcd, 0x01020304, 0xdeadbeef, 8);
	b[1] |= 0x80;
	ck_assert_int_eq(parse_exact(b, 12, &ri), 0);
	ck_assert_uint_eq(ri.pt, 8);
	ck_assert_uint_eq(ri.marker, 1);
	ck_assert_uint_eq(ri.seq, 0xabcd);
	ck_assert_uint_eq(ri.ts, 0x01020304);
	ck_assert_uint_eq(ri.ssrc, 0xdeadbeef);
	ck_assert_uint_eq(ri.hdrlen, 12);
	ck_assert_uint_eq(ri.padlen, 0);
	ck_assert_int_eq(rtp_parse(b, 12, NULL), 0);

	/* two CSRCs and an extension of one word: 12 + 8 + 4 + 4 */
	mkrtp(b, 1, 2, 3, 0);
	memset(b + 12, 0, 40);
	b[0] = 0x80 | 0x10 | 2;
	b[20] = 0xbe;
	b[21] = 0xde;
	b[23] = 1;
	ck_assert_int_eq(parse_exact(b, 28, &ri), 0);
	ck_assert_uint_eq(ri.hdrlen, 28);
	ck_assert_int_eq(parse_exact(b, 40, &ri), 0);

	/* padding: 4 octets, count in the last */
	mkrtp(b, 1, 2, 3, 0);
	b[0] |= 0x20;
	b[19] = 4;
	ck_assert_int_eq(parse_exact(b, 20, &ri), 0);
	ck_assert_uint_eq(ri.padlen, 4);
	/* all of the payload is padding */
	b[19] = 8;
	ck_assert_int_eq(parse_exact(b, 20, &ri), 0);

	/* second octets next to the RTCP range are RTP */
	mkrtp(b, 1, 2, 3, 0);
	b[1] = 199;
	ck_assert_int_eq(parse_exact(b, 12, &ri), 0);
	b[1] = 207;
	ck_assert_int_eq(parse_exact(b, 12, &ri), 0);
}
END_TEST

START_TEST(parse_reject)
{
	uint8_t		b[64];
	struct rtp_info	ri;
	int		v, t;

	mkrtp(b, 1, 2, 3, 0);
	ck_assert_int_eq(parse_exact(b, 11, &ri), -1);
	ck_assert_int_eq(parse_exact(b, 0, &ri), -1);
	for (v = 0; v < 4; v++) {
		b[0] = (uint8_t)(v << 6);
		ck_assert_int_eq(parse_exact(b, 12, &ri), v == 2 ? 0 : -1);
	}

	/* 15 CSRCs need 72 octets */
	mkrtp(b, 1, 2, 3, 0);
	b[0] = 0x80 | 15;
	ck_assert_int_eq(parse_exact(b, 64, &ri), -1);
	b[0] = 0x80 | 13;		/* 12 + 52 = 64 fits exactly */
	ck_assert_int_eq(parse_exact(b, 64, &ri), 0);

	/* extension header does not fit */
	mkrtp(b, 1, 2, 3, 0);
	b[0] = 0x80 | 0x10;
	ck_assert_int_eq(parse_exact(b, 15, &ri), -1);
	/* extension body longer than the packet */
	b[14] = 0;
	b[15] = 5;			/* 20 octets */
	ck_assert_int_eq(parse_exact(b, 35, &ri), -1);
	ck_assert_int_eq(parse_exact(b, 36, &ri), 0);
	b[14] = 0xff;
	b[15] = 0xff;
	ck_assert_int_eq(parse_exact(b, 64, &ri), -1);

	/* padding count 0, and larger than the payload */
	mkrtp(b, 1, 2, 3, 0);
	b[0] |= 0x20;
	b[19] = 0;
	ck_assert_int_eq(parse_exact(b, 20, &ri), -1);
	b[19] = 9;
	ck_assert_int_eq(parse_exact(b, 20, &ri), -1);
	/* padding bit on a bare header: the count would be in the header */
	b[11] = 1;
	ck_assert_int_eq(parse_exact(b, 12, &ri), -1);

	/* RTCP on the RTP port (SR .. PSFB) is not RTP */
	for (t = 200; t <= 206; t++) {
		mkrtp(b, 1, 2, 3, 0);
		b[1] = (uint8_t)t;
		ck_assert_int_eq(parse_exact(b, 28, &ri), -1);
	}
}
END_TEST

START_TEST(parse_hostile)
{
	uint8_t	b[256];
	size_t	len;
	int	i, k;

	/* Random junk with a valid version: none may read out of bounds. */
	srandom(42);
	for (i = 0; i < 200000; i++) {
		len = (size_t)(random() % (int)sizeof(b));
		for (k = 0; k < (int)len; k++)
			b[k] = (uint8_t)random();
		if (len > 0 && (i & 1))
			b[0] = (b[0] & 0x3f) | 0x80;
		(void)parse_exact(b, len, NULL);
		if (len > 1 && (i & 2))
			b[1] = (uint8_t)(200 + i % 7);
		{
			uint8_t *c = malloc(len ? len : 1);

			memcpy(c, b, len);
			(void)rtcp_check(c, len);
			(void)srtcp_check(c, len);
			free(c);
		}
	}
}
END_TEST

static size_t
mkrtcp(uint8_t *b, uint8_t pt, uint16_t words)
{
	size_t n = 4 * ((size_t)words + 1);

	memset(b, 0, n);
	b[0] = 0x80;
	b[1] = pt;
	b[2] = words >> 8;
	b[3] = words & 0xff;
	return n;
}

START_TEST(rtcp)
{
	uint8_t	b[128];
	size_t	n;

	memset(b, 0, sizeof(b));

	n = mkrtcp(b, 200, 6);			/* SR, no report blocks */
	ck_assert_uint_eq(n, 28);
	ck_assert_int_eq(rtcp_check(b, n), 0);
	n += mkrtcp(b + n, 202, 2);		/* + SDES */
	ck_assert_int_eq(rtcp_check(b, n), 0);
	ck_assert_int_eq(rtcp_check(b, n - 1), -1);	/* short */
	ck_assert_int_eq(rtcp_check(b, n + 4), -1);	/* trailing junk */
	b[28] = 0x40;					/* 2nd version 1 */
	ck_assert_int_eq(rtcp_check(b, n), -1);

	n = mkrtcp(b, 201, 1);			/* RR, no blocks */
	ck_assert_int_eq(rtcp_check(b, n), 0);
	b[0] = 0x40;
	ck_assert_int_eq(rtcp_check(b, n), -1);

	n = mkrtcp(b, 205, 2);			/* RTPFB alone (RFC 5506) */
	ck_assert_int_eq(rtcp_check(b, n), 0);
	n = mkrtcp(b, 199, 1);
	ck_assert_int_eq(rtcp_check(b, n), -1);
	n = mkrtcp(b, 207, 1);			/* XR cannot come first */
	ck_assert_int_eq(rtcp_check(b, n), -1);
	ck_assert_int_eq(rtcp_check(b, 0), -1);
	ck_assert_int_eq(rtcp_check(b, 3), -1);

	/* length field past the end */
	n = mkrtcp(b, 200, 6);
	b[3] = 7;
	ck_assert_int_eq(rtcp_check(b, n), -1);

	/* RTP is not RTCP */
	mkrtp(b, 1, 2, 3, 0);
	ck_assert_int_eq(rtcp_check(b, 12), -1);
}
END_TEST

START_TEST(srtcp)
{
	uint8_t	b[128];
	size_t	n;

	/* SR, then encrypted bytes, E|index and a 10 octet tag */
	n = mkrtcp(b, 200, 6);
	memset(b + 8, 0xa5, 20);
	b[28] = 0x80;
	memset(b + 29, 0x5a, 13);
	n += 4 + 10;
	ck_assert_int_eq(rtcp_check(b, n), -1);
	ck_assert_int_eq(srtcp_check(b, n), 0);
	/* no room for the index */
	ck_assert_int_eq(srtcp_check(b, 28), -1);
	ck_assert_int_eq(srtcp_check(b, 31), -1);
	ck_assert_int_eq(srtcp_check(b, 32), 0);
	b[0] = 0x00;
	ck_assert_int_eq(srtcp_check(b, n), -1);
	b[0] = 0x80;
	b[1] = 96;
	ck_assert_int_eq(srtcp_check(b, n), -1);
}
END_TEST

START_TEST(clock_rates)
{
	static const struct {
		uint8_t		pt;
		uint32_t	rate;
	} t[] = {
		{ 0, 8000 }, { 3, 8000 }, { 4, 8000 }, { 5, 8000 },
		{ 6, 16000 }, { 7, 8000 }, { 8, 8000 }, { 9, 8000 },
		{ 10, 44100 }, { 11, 44100 }, { 12, 8000 }, { 13, 8000 },
		{ 14, 90000 }, { 15, 8000 }, { 16, 11025 }, { 17, 22050 },
		{ 18, 8000 }, { 25, 90000 }, { 26, 90000 }, { 28, 90000 },
		{ 31, 90000 }, { 32, 90000 }, { 33, 90000 }, { 34, 90000 },
		{ 96, 8000 }, { 101, 8000 }, { 127, 8000 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_uint_eq(rtp_clock_rate(t[i].pt), t[i].rate);
}
END_TEST

START_TEST(probation)
{
	/* One packet: on probation, nothing expected yet. */
	feed_seq(100);
	ck_assert_uint_eq(dir.src.valid, 0);
	ck_assert_uint_eq(expected(), 0);
	ck_assert_int_eq(lost(), 0);
	ck_assert_uint_eq(atomic_load(&dir.ssrc), 0x1234);

	/* Out of order while on probation: probation starts over. */
	feed_seq(200);
	ck_assert_uint_eq(dir.src.valid, 0);
	ck_assert_uint_eq(dir.src.probation, 1);
	/* In sequence: valid, counted from this packet. */
	feed_seq(201);
	ck_assert_uint_eq(dir.src.valid, 1);
	ck_assert_uint_eq(dir.src.base_seq, 201);
	ck_assert_uint_eq(expected(), 1);
	ck_assert_int_eq(lost(), 0);
	feed_seq(202);
	ck_assert_uint_eq(expected(), 2);
	ck_assert_int_eq(lost(), 0);
}
END_TEST

START_TEST(seq_wrap)
{
	uint32_t	i;
	uint16_t	seq;

	/* 65530 is on probation; the sequence starts at 65531. */
	for (seq = 65530; seq != 10; seq++)
		feed_seq(seq);
	ck_assert_uint_eq(dir.src.base_seq, 65531);
	ck_assert_uint_eq(dir.src.cycles, 65536);
	ck_assert_uint_eq(dir.src.max_seq, 9);
	/* 65531..65535 (5) and 0..9 (10) */
	ck_assert_uint_eq(expected(), 15);
	ck_assert_int_eq(lost(), 0);

	/* Three more wraps. */
	for (i = 0; i < 3 * 65536; i++)
		feed_seq(seq++);
	ck_assert_uint_eq(dir.src.cycles, 4 * 65536);
	ck_assert_uint_eq(expected(), 15 + 3 * 65536);
	ck_assert_int_eq(lost(), 0);
	ck_assert(shm_loss_rate(&dir) == 0.0);
}
END_TEST

START_TEST(loss_gaps)
{
	uint16_t	seq;

	/* 1 is on probation; 2..100 expected; 10, 20, 21, 22 missing */
	for (seq = 1; seq <= 100; seq++)
		if (seq != 10 && (seq < 20 || seq > 22))
			feed_seq(seq);
	ck_assert_uint_eq(expected(), 99);
	ck_assert_int_eq(lost(), 4);
	ck_assert(shm_loss_rate(&dir) > 4.0 / 99 - 1e-12);
	ck_assert(shm_loss_rate(&dir) < 4.0 / 99 + 1e-12);

	/* A gap across a wrap: 65534 .. 1 without 65535 and 0. */
	setup();
	feed_seq(65532);
	feed_seq(65533);
	feed_seq(65534);
	feed_seq(1);
	ck_assert_uint_eq(expected(), 5);	/* 65533 .. 1 */
	ck_assert_int_eq(lost(), 2);
}
END_TEST

START_TEST(reorder)
{
	feed_seq(1);
	feed_seq(2);
	feed_seq(3);
	feed_seq(5);
	ck_assert_uint_eq(expected(), 4);	/* 2..5 */
	ck_assert_int_eq(lost(), 1);
	feed_seq(4);				/* late: fills the gap */
	ck_assert_uint_eq(expected(), 4);
	ck_assert_int_eq(lost(), 0);
	feed_seq(6);
	ck_assert_uint_eq(expected(), 5);
	ck_assert_int_eq(lost(), 0);
	ck_assert_uint_eq(dir.src.max_seq, 6);

	/* Reordered across the wrap: no false cycle. */
	setup();
	feed_seq(65533);
	feed_seq(65534);
	feed_seq(0);
	feed_seq(65535);
	feed_seq(1);
	ck_assert_uint_eq(dir.src.cycles, 65536);
	ck_assert_uint_eq(expected(), 4);
	ck_assert_int_eq(lost(), 0);
}
END_TEST

START_TEST(duplicates)
{
	feed_seq(1);
	feed_seq(2);
	feed_seq(3);
	feed_seq(3);
	feed_seq(4);
	/* A.3: duplicates count as received, so loss goes negative. */
	ck_assert_uint_eq(expected(), 3);
	ck_assert_int_eq(lost(), -1);
	ck_assert(shm_loss_rate(&dir) == 0.0);
	feed_seq(4);
	feed_seq(4);
	ck_assert_int_eq(lost(), -3);
}
END_TEST

START_TEST(restart)
{
	uint16_t seq;

	/* 2..10 expected, 5 lost */
	for (seq = 1; seq <= 10; seq++)
		if (seq != 5)
			feed_seq(seq);
	ck_assert_uint_eq(expected(), 9);
	ck_assert_int_eq(lost(), 1);

	/* One stray packet far away: ignored, no restart. */
	feed_seq(40000);
	ck_assert_uint_eq(dir.src.bad_seq, 40001);
	feed_seq(11);
	ck_assert_uint_eq(expected(), 10);
	ck_assert_int_eq(lost(), 1);

	/* A jump beyond MAX_DROPOUT then in sequence: the sender restarted. */
	feed_seq(20000);
	ck_assert_uint_eq(expected(), 10);	/* not counted yet */
	feed_seq(20001);
	ck_assert_uint_eq(dir.src.base_seq, 20001);
	ck_assert_uint_eq(expected(), 11);	/* carried + 1 */
	ck_assert_int_eq(lost(), 1);
	feed_seq(20002);
	feed_seq(20004);
	ck_assert_uint_eq(expected(), 14);
	ck_assert_int_eq(lost(), 2);

	/* Within MAX_DROPOUT: a gap, not a restart. */
	feed_seq(20004 + 2999);
	ck_assert_uint_eq(dir.src.max_seq, 23003);
	ck_assert_uint_eq(expected(), 14 + 2999);
}
END_TEST

START_TEST(ssrc_change)
{
	uint16_t	seq;
	uint64_t	e, prev_e = 0;
	int64_t		l, prev_l = 0;

	for (seq = 1; seq <= 10; seq++)
		if (seq != 5)
			feed(seq, seq * 160u, 0xaaaa, 0,
			    T0_NS + seq * 20 * MS + (seq & 1) * MS);
	ck_assert_uint_eq(expected(), 9);
	ck_assert_int_eq(lost(), 1);
	ck_assert(JIT() > 0.0);
	ck_assert_uint_eq(atomic_load(&dir.ssrc), 0xaaaa);

	/* A new source with unrelated sequence and timestamps. */
	for (seq = 5000; seq < 5010; seq++) {
		feed(seq, 777777u + seq * 160u, 0xbbbb, 0,
		    T0_NS + seq * 20 * MS);
		e = expected();
		l = lost();
		ck_assert_uint_ge(e, prev_e);
		ck_assert_int_ge(l, prev_l);
		prev_e = e;
		prev_l = l;
		if (seq == 5000) {
			ck_assert_uint_eq(dir.src.ssrc, 0xbbbb);
			ck_assert(JIT() == 0.0);
			ck_assert_uint_eq(dir.src.valid, 0);
			ck_assert_uint_eq(e, 9);
			ck_assert_int_eq(l, 1);
		}
	}
	ck_assert_uint_eq(atomic_load(&dir.ssrc), 0xbbbb);
	/* 9 from the first source, 5001..5009 from the second */
	ck_assert_uint_eq(expected(), 9 + 9);
	ck_assert_int_eq(lost(), 1);
	/* Perfectly paced: the new source has no jitter. */
	ck_assert(JIT() == 0.0);
	ck_assert_uint_eq(atomic_load(&dir.jitter_ns), 0);

	/* And back to the first SSRC: a new source again, totals kept. */
	feed(11, 11 * 160u, 0xaaaa, 0, T0_NS);
	ck_assert_uint_eq(expected(), 18);
	ck_assert_int_eq(lost(), 1);
}
END_TEST

/*
 * A.8 by hand.  PT 0: 8000 Hz, 20 ms packets, so the RTP timestamp steps by
 * 160 and one timestamp unit is 125 us.  Packet i arrives at
 * T0 + 20 ms * i + dev[i], so its transit is a constant plus dev[i] in
 * timestamp units (dev / 125 us), and D(i-1, i) = dev[i] - dev[i-1].
 *
 *   i  dev (ms)  dev (units)
 *   0   0         0     on probation: not counted, no jitter
 *   1   0         0     sequence valid: first transit, J = 0
 *   2  +1.0       8     D =  8   J = 0       + ( 8 - 0      )/16 = 0.5
 *   3  -0.5      -4     D = 12   J = 0.5     + (12 - 0.5    )/16 = 1.21875
 *   4  +2.0      16     D = 20   J = 1.21875 + (20 - 1.21875)/16
 *                                  = 2.392578125
 *   5   0         0     D = 16   J = 2.392578125 + (16 - 2.392578125)/16
 *                                  = 3.2430419921875
 *   6  +0.25      2     D =  2   J = 3.2430419921875
 *                                  + (2 - 3.2430419921875)/16
 *                                  = 3.16535186767578125
 *
 * In time: J / 8000 s = 3.16535186767578125 * 125000 ns = 395668.98 ns.
 * The RTP timestamps start just below 2^32 so that they wrap on the way.
 */
START_TEST(jitter_by_hand)
{
	static const int64_t	dev_us[] = { 0, 0, 1000, -500, 2000, 0, 250 };
	static const double	want[] = { 0, 0, 0.5, 1.21875, 2.392578125,
				    3.2430419921875, 3.16535186767578125 };
	uint32_t		ts0 = 0xffffff00u;
	int			i;

	for (i = 0; i < 7; i++) {
		feed((uint16_t)(1000 + i), ts0 + 160u * (uint32_t)i, 0x5555, 0,
		    T0_NS + i * 20 * MS + dev_us[i] * 1000);
		ck_assert_msg(JIT() > want[i] - 1e-6 &&
		    JIT() < want[i] + 1e-6,
		    "packet %d: jitter %.9f, want %.9f", i, JIT(),
		    want[i]);
	}
	ck_assert_uint_eq(dir.src.clock_rate, 8000);
	ck_assert_uint_eq(atomic_load(&dir.jitter_ns), 395668);
	ck_assert_uint_eq(expected(), 6);
	ck_assert_int_eq(lost(), 0);
}
END_TEST

/* A codec change to another clock rate is not a jitter spike. */
START_TEST(jitter_rate_change)
{
	int	i;
	double	j;

	for (i = 0; i < 5; i++)
		feed((uint16_t)i, 160u * (uint32_t)i, 1, 0,
		    T0_NS + i * 20 * MS + (i & 1) * MS);
	j = JIT();
	ck_assert(j > 0.0);
	/* PT 10, 44100 Hz, from an unrelated timestamp base */
	feed(5, 123456789u, 1, 10, T0_NS + 5 * 20 * MS);
	ck_assert_uint_eq(dir.src.clock_rate, 44100);
	/* to the estimate's resolution, 2^-24 units */
	ck_assert(JIT() > j * 44100 / 8000 - 1e-7);
	ck_assert(JIT() < j * 44100 / 8000 + 1e-7);
	/* same duration in ns as before */
	ck_assert_uint_eq(atomic_load(&dir.jitter_ns) / 1000,
	    (uint64_t)(j * 1e9 / 8000) / 1000);
	/* next packet perfectly paced: decays, no spike */
	feed(6, 123456789u + 882u, 1, 10, T0_NS + 6 * 20 * MS);
	ck_assert(JIT() < j * 44100 / 8000);
}
END_TEST

/*
 * The sender restarts its sequence with a codec of another clock: the
 * estimate stays the same duration, in the new units (found by
 * tests/fuzz/fuzz_rtp, seed corpus/rtp/crash-jitter-units-on-restart:
 * the restart forgot the estimate's units, and read 90 kHz ticks as
 * 8 kHz ones).
 */
START_TEST(jitter_restart_rate_change)
{
	uint64_t	before, j;
	int		i;

	for (i = 0; i < 8; i++)
		feed((uint16_t)(100 + i), 3600u * (uint32_t)i, 7, 26,
		    T0_NS + i * 40 * MS + (i & 1) * 3 * MS);
	before = atomic_load(&dir.jitter_ns);
	ck_assert_uint_gt(before, 500000);
	ck_assert_uint_eq(dir.src.clock_rate, 90000);
	/* a jump, then in sequence: a restart, now PT 0 at 8000 Hz */
	feed(30000, 555, 7, 0, T0_NS + 8 * 40 * MS);
	feed(30001, 715, 7, 0, T0_NS + 8 * 40 * MS + 20 * MS);
	ck_assert_uint_eq(dir.src.base_seq, 30001);
	ck_assert_uint_eq(dir.src.clock_rate, 8000);
	j = atomic_load(&dir.jitter_ns);
	ck_assert_uint_eq(j / 1000, before / 1000);
	/* and a perfectly paced packet only lets it decay */
	feed(30002, 875, 7, 0, T0_NS + 8 * 40 * MS + 40 * MS);
	j = atomic_load(&dir.jitter_ns);
	ck_assert_uint_lt(j, before);
	ck_assert_uint_gt(j, before / 2);
}
END_TEST

/*
 * src/common/rfc3550.h on its own, at its edges (the kernel fast path runs
 * the same code, so these hold there too): what each packet was, a
 * sequence wrap, a jump believed on the second packet, a late packet, a
 * timestamp wrap, and the fixed-point estimate at its extremes: the
 * largest transit difference (|INT32_MIN|: the kernel's copy negated it
 * in 32 bits), a rescale to a huge clock, and the ns of the largest
 * estimate, none of which may wrap.
 */
START_TEST(header_edges)
{
	struct rfc3550_src	s;
	uint32_t		ts = 0xffffff00u;
	int64_t			ns = T0_NS;
	uint16_t		seq = 65533;
	int			i, r;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(rfc3550_packet(&s, 9, seq, ts, ns, 8000),
	    RFC3550_NEW);
	/* in sequence across 65535 -> 0, RTP timestamps across 2^32 */
	for (i = 1; i <= 6; i++) {
		r = rfc3550_packet(&s, 9, (uint16_t)(seq + i),
		    ts + 160u * (uint32_t)i, ns + i * 20 * MS, 8000);
		ck_assert_int_eq(r, RFC3550_COUNTED);
	}
	ck_assert_uint_eq(s.cycles, RFC3550_SEQ_MOD);
	ck_assert_uint_eq(s.max_seq, 3);
	ck_assert_int_eq(rfc3550_expected(&s), 6);
	ck_assert_uint_eq(s.received, 6);
	ck_assert_uint_eq(s.jitter, 0);		/* perfectly paced */
	/* 50 late: counted (A.1), max_seq stays */
	ck_assert_int_eq(rfc3550_packet(&s, 9, (uint16_t)(3 - 50), ts, ns,
	    8000), RFC3550_COUNTED);
	ck_assert_uint_eq(s.max_seq, 3);
	/* a jump of 20000: not counted until the next one follows it */
	ck_assert_int_eq(rfc3550_packet(&s, 9, 20003, ts, ns, 8000), 0);
	ck_assert_int_eq(rfc3550_packet(&s, 9, 20004, ts + 160,
	    ns + 20 * MS, 8000), RFC3550_COUNTED);
	ck_assert_uint_eq(s.base_seq, 20004);
	ck_assert_uint_eq(s.expected_base, 6);
	ck_assert_int_eq(s.lost_base, 6 - 7);	/* the late one: a duplicate */
	/* another SSRC */
	ck_assert_int_eq(rfc3550_packet(&s, 10, 1, 0, ns, 8000),
	    RFC3550_NEW | RFC3550_CHANGE);
	ck_assert_uint_eq(s.expected_base, 7);

	/* the largest transit difference: 2^31 units */
	memset(&s, 0, sizeof(s));
	s.valid = 1;
	s.received = 2;
	s.clock_rate = 8000;
	rfc3550_jitter(&s, 0x80000000u, 0, 8000);
	ck_assert_int_eq(s.transit, INT32_MIN);
	ck_assert_uint_eq(s.jitter, (uint64_t)1 << (31 + RFC3550_JITTER_SHIFT -
	    4));
	for (i = 0; i < 2000; i++) {
		rfc3550_jitter(&s, (i & 1) ? 0x80000000u : 0, 0, 8000);
		ck_assert_uint_le(s.jitter, RFC3550_JITTER_MAX);
	}
	ck_assert_uint_gt(s.jitter, RFC3550_JITTER_MAX / 2);
	/* to a clock 2^19 times faster: saturates, does not wrap */
	s.received = 3;
	rfc3550_jitter(&s, 0, 0, 0xffffffffu);
	ck_assert_uint_le(s.jitter, RFC3550_JITTER_MAX);
	ck_assert_uint_gt(s.jitter, RFC3550_JITTER_MAX / 2);
	/* the largest estimate of the slowest clock in ns: 2^31 s */
	s.jitter = RFC3550_JITTER_MAX;
	s.clock_rate = 1;
	ck_assert_uint_eq(rfc3550_jitter_ns(&s), ((uint64_t)1 << 31) *
	    1000000000u);
	s.clock_rate = 0;
	ck_assert_uint_eq(rfc3550_jitter_ns(&s), 0);
}
END_TEST

START_TEST(loss_rate_clamp)
{
	ck_assert(shm_loss_rate(&dir) == 0.0);
	atomic_store(&dir.packets_expected, 10);
	atomic_store(&dir.packets_lost, -5);
	ck_assert(shm_loss_rate(&dir) == 0.0);
	atomic_store(&dir.packets_lost, 25);
	ck_assert(shm_loss_rate(&dir) == 1.0);
	atomic_store(&dir.packets_lost, 5);
	ck_assert(shm_loss_rate(&dir) == 0.5);
	atomic_store(&dir.packets_expected, 0);
	ck_assert(shm_loss_rate(&dir) == 0.0);
}
END_TEST

/* Half of the packets lost at random, with reordering: counts stay exact. */
START_TEST(random_loss)
{
	uint32_t	i, sent = 0;
	uint16_t	seq = 60000, first;
	int		skip;

	srandom(7);
	feed_seq(seq++);			/* probation */
	first = seq;
	feed_seq(seq++);
	sent = 1;
	for (i = 0; i < 20000; i++, seq++) {
		skip = random() % 2;
		if (!skip) {
			feed_seq(seq);
			sent++;
		}
	}
	/* the last one always arrives, so max_seq is known */
	feed_seq(seq);
	sent++;
	ck_assert_uint_eq(expected(), (uint16_t)(seq - first) + 1u);
	ck_assert_int_eq(lost(), (int64_t)expected() - sent);
}
END_TEST

/*
 * A dynamic payload type at the session's clock rate: perfectly paced
 * 48 kHz media has no jitter.  Read at the 8000 Hz default the same
 * stream looks like 100 ms of jitter per packet (960 ticks = 120 ms at
 * 8 kHz against 20 ms of arrival), converging towards 100 ms.
 */
START_TEST(jitter_dynamic_clock_rate)
{
	uint16_t i;

	for (i = 0; i < 50; i++)
		feed_dyn(i, 48000, 0);
	ck_assert_uint_eq(atomic_load(&dir.jitter_ns), 0);

	memset(&dir, 0, sizeof(dir));
	for (i = 0; i < 50; i++)
		feed_dyn(i, 0, 0);
	ck_assert_uint_gt(atomic_load(&dir.jitter_ns), 90 * MS);

	/*
	 * Every other packet 1 ms late at 48 kHz: each |D| is 48 ticks, so
	 * J converges to 48 ticks = 1 ms.
	 */
	memset(&dir, 0, sizeof(dir));
	for (i = 0; i < 400; i++)
		feed_dyn(i, 48000, (i & 1) ? MS : 0);
	ck_assert_uint_gt(atomic_load(&dir.jitter_ns), 950 * 1000);
	ck_assert_uint_lt(atomic_load(&dir.jitter_ns), 1050 * 1000);
}
END_TEST

static Suite *
rtpstat_suite(void)
{
	Suite	*s = suite_create("rtpstat");
	TCase	*tc;

	tc = tcase_create("parse");
	tcase_add_test(tc, parse_valid);
	tcase_add_test(tc, parse_reject);
	tcase_add_test(tc, parse_hostile);
	tcase_add_test(tc, rtcp);
	tcase_add_test(tc, srtcp);
	tcase_add_test(tc, clock_rates);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("stats");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, probation);
	tcase_add_test(tc, seq_wrap);
	tcase_add_test(tc, loss_gaps);
	tcase_add_test(tc, reorder);
	tcase_add_test(tc, duplicates);
	tcase_add_test(tc, restart);
	tcase_add_test(tc, ssrc_change);
	tcase_add_test(tc, jitter_by_hand);
	tcase_add_test(tc, jitter_rate_change);
	tcase_add_test(tc, jitter_restart_rate_change);
	tcase_add_test(tc, header_edges);
	tcase_add_test(tc, loss_rate_clamp);
	tcase_add_test(tc, random_loss);
	tcase_add_test(tc, jitter_dynamic_clock_rate);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(rtpstat_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
