/*
 * RTP and RTCP header checks and the receiver statistics of RFC 3550:
 * sequence validation (A.1), expected and lost packets (A.3) and
 * interarrival jitter (A.8).  Pure functions on a struct shm_dir: no I/O,
 * no allocation, so the relay can call them for every packet and the tests
 * can call them without sockets.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "worker.h"

#define RTP_SEQ_MOD	65536u
#define MAX_DROPOUT	3000
#define MAX_MISORDER	100
#define MIN_SEQUENTIAL	2

/*
 * Second octet of the RTCP packet types SR .. PSFB.  On the RTP port these
 * are RTCP (RFC 5761 section 4; RFC 3551 reserves the payload types they
 * would alias), so they are not RTP.
 */
#define RTCP_PT_FIRST	200
#define RTCP_PT_LAST	206

static int
rtcp_type(uint8_t pt)
{
	return pt >= RTCP_PT_FIRST && pt <= RTCP_PT_LAST;
}

/*
 * 0 if buf holds a well-formed RTP packet, -1 otherwise.  ri, if not NULL,
 * receives the header fields.
 */
int
rtp_parse(const uint8_t *buf, size_t len, struct rtp_info *ri)
{
	size_t	hlen, padlen = 0;

	if (len < RTP_HDR_MIN || (buf[0] >> 6) != 2 || rtcp_type(buf[1]))
		return -1;
	hlen = RTP_HDR_MIN + 4 * (size_t)(buf[0] & 0x0f);
	if (hlen > len)
		return -1;
	if (buf[0] & 0x10) {
		if (len - hlen < 4)
			return -1;
		hlen += 4 + 4 * (size_t)((buf[hlen + 2] << 8) | buf[hlen + 3]);
		if (hlen > len)
			return -1;
	}
	if (buf[0] & 0x20) {
		/* The count includes itself, so it is at least 1. */
		padlen = buf[len - 1];
		if (padlen == 0 || padlen > len - hlen)
			return -1;
	}
	if (ri != NULL) {
		ri->marker = buf[1] >> 7;
		ri->pt = buf[1] & 0x7f;
		ri->seq = (uint16_t)((buf[2] << 8) | buf[3]);
		ri->ts = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
		    (uint32_t)buf[6] << 8 | buf[7];
		ri->ssrc = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 |
		    (uint32_t)buf[10] << 8 | buf[11];
		ri->hdrlen = hlen;
		ri->padlen = padlen;
		ri->dyn_rate = 0;
	}
	return 0;
}

/*
 * The fixed header of an RTP packet of len octets of which only the first
 * RTP_HDR_MIN are at hand (a frame of a TCP stream, RFC 4571): 0 and *ri
 * when they are RTP and the CSRC list fits, -1 otherwise.  The extension
 * and padding cannot be checked from here.
 */
int
rtp_parse_head(const uint8_t *buf, size_t len, struct rtp_info *ri)
{
	size_t hlen;

	if (len < RTP_HDR_MIN || (buf[0] >> 6) != 2 || rtcp_type(buf[1]))
		return -1;
	hlen = RTP_HDR_MIN + 4 * (size_t)(buf[0] & 0x0f);
	if (hlen > len)
		return -1;
	ri->marker = buf[1] >> 7;
	ri->pt = buf[1] & 0x7f;
	ri->seq = (uint16_t)((buf[2] << 8) | buf[3]);
	ri->ts = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
	    (uint32_t)buf[6] << 8 | buf[7];
	ri->ssrc = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 |
	    (uint32_t)buf[10] << 8 | buf[11];
	ri->hdrlen = hlen;
	ri->padlen = 0;
	ri->dyn_rate = 0;
	return 0;
}

/* Is this the second octet of an RTCP packet (SR .. PSFB)? */
int
rtcp_pt(uint8_t b)
{
	return rtcp_type(b);
}

/*
 * 0 for a plausible (compound) RTCP packet: every header is version 2, the
 * first is SR .. PSFB, and the length fields lead exactly to the end.
 */
int
rtcp_check(const uint8_t *buf, size_t len)
{
	size_t	off = 0, plen;

	if (len < 4 || !rtcp_type(buf[1]))
		return -1;
	while (off < len) {
		if (len - off < 4 || (buf[off] >> 6) != 2)
			return -1;
		plen = 4 * ((size_t)((buf[off + 2] << 8) | buf[off + 3]) + 1);
		if (plen > len - off)
			return -1;
		off += plen;
	}
	return 0;
}

/*
 * 0 if buf may be SRTCP (RFC 3711 3.4): only the first eight octets are
 * clear, so only the first header can be checked; after the first packet
 * at least the E flag and SRTCP index (4 octets) must follow.  A relay
 * cannot decrypt, so this is as far as validation goes for SRTCP.
 */
int
srtcp_check(const uint8_t *buf, size_t len)
{
	size_t	plen;

	if (len < 8 + 4 || (buf[0] >> 6) != 2 || !rtcp_type(buf[1]))
		return -1;
	plen = 4 * ((size_t)((buf[2] << 8) | buf[3]) + 1);
	if (plen < 8 || plen > len - 4)
		return -1;
	return 0;
}

/*
 * RFC 3551 section 6, static payload types.  Dynamic types (96..127) have
 * their rate in the SDP, which a relay does not see: 8000 is a guess that
 * is right for telephone-event and narrowband codecs.
 */
uint32_t
rtp_clock_rate(uint8_t pt)
{
	switch (pt) {
	case 6:
		return 16000;
	case 10:
	case 11:
		return 44100;
	case 16:
		return 11025;
	case 17:
		return 22050;
	case 14:
	case 25:
	case 26:
	case 28:
	case 31:
	case 32:
	case 33:
	case 34:
		return 90000;
	default:
		/* 0, 3, 4, 5, 7, 8, 9 (G.722 is 8000 on the wire), 12, 13,
		 * 15, 18, and dynamic types. */
		return 8000;
	}
}

static int64_t
src_expected(const struct shm_rtpsrc *s)
{
	return (int64_t)s->cycles + s->max_seq - (int64_t)s->base_seq + 1;
}

/*
 * Fold the totals of the current sequence into the bases before the
 * sequence starts again, so that the published counters never go back.
 */
static void
src_carry(struct shm_rtpsrc *s)
{
	int64_t expected;

	if (!s->valid)
		return;
	expected = src_expected(s);
	s->expected_base += (uint64_t)expected;
	s->lost_base = (uint64_t)((int64_t)s->lost_base +
	    (expected - (int64_t)s->received));
}

static void
src_init_seq(struct shm_rtpsrc *s, uint16_t seq)
{
	s->base_seq = seq;
	s->max_seq = seq;
	s->bad_seq = RTP_SEQ_MOD + 1;	/* matches no sequence number */
	s->cycles = 0;
	s->received = 0;
}

/* A new SSRC: start over, keeping only the carried totals. */
static void
src_new(struct shm_rtpsrc *s, const struct rtp_info *ri)
{
	uint64_t	lost_base, expected_base;

	src_carry(s);
	lost_base = s->lost_base;
	expected_base = s->expected_base;
	memset(s, 0, sizeof(*s));
	s->lost_base = lost_base;
	s->expected_base = expected_base;
	s->ssrc = ri->ssrc;
	src_init_seq(s, ri->seq);
	s->max_seq = (uint16_t)(ri->seq - 1);
	s->probation = MIN_SEQUENTIAL;
}

/*
 * RFC 3550 A.1 update_seq: 1 if the packet counts as received for this
 * source, 0 while it is on probation or after a jump not yet confirmed.
 */
static int
src_update_seq(struct shm_rtpsrc *s, uint16_t seq)
{
	uint16_t	udelta = (uint16_t)(seq - s->max_seq);

	if (s->probation > 0) {
		if (seq == (uint16_t)(s->max_seq + 1)) {
			s->max_seq = seq;
			if (--s->probation == 0) {
				src_init_seq(s, seq);
				s->valid = 1;
				s->received = 1;
				return 1;
			}
		} else {
			s->probation = MIN_SEQUENTIAL - 1;
			s->max_seq = seq;
		}
		return 0;
	}
	if (udelta < MAX_DROPOUT) {
		if (seq < s->max_seq)
			s->cycles += RTP_SEQ_MOD;
		s->max_seq = seq;
	} else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
		if (seq != s->bad_seq) {
			/* A big jump: believe it when the next one follows. */
			s->bad_seq = (seq + 1) & (RTP_SEQ_MOD - 1);
			return 0;
		}
		/* The sender restarted without telling us: resync. */
		src_carry(s);
		src_init_seq(s, seq);
	}
	/* else a duplicate or a late packet: counted, as A.1 does */
	s->received++;
	return 1;
}

/* Arrival time in timestamp units, modulo 2^32 as RTP timestamps are. */
static uint32_t
arrival_ts(int64_t ns, uint32_t rate)
{
	uint64_t	u = (uint64_t)ns;

	return (uint32_t)((u / 1000000000u) * rate +
	    (u % 1000000000u) * rate / 1000000000u);
}

/* RFC 3550 A.8, for a packet that counts as received. */
static void
src_jitter(struct shm_rtpsrc *s, const struct rtp_info *ri, int64_t ns)
{
	uint32_t	rate = ri->pt >= 96 && ri->dyn_rate != 0 ? ri->dyn_rate :
	    rtp_clock_rate(ri->pt);
	int32_t		transit, d;

	transit = (int32_t)(arrival_ts(ns, rate) - ri->ts);
	/*
	 * clock_rate is the unit of the estimate (0: none yet): when the
	 * codec changes clock rate, keep the estimate in the new units.
	 */
	if (s->clock_rate != 0 && s->clock_rate != rate)
		s->jitter = s->jitter * rate / s->clock_rate;
	if (s->received == 1 || s->clock_rate != rate) {
		/*
		 * The first packet of a sequence (a new timestamp base
		 * likely), or of a new clock: this transit is the reference.
		 */
		s->clock_rate = rate;
	} else {
		d = (int32_t)((uint32_t)transit - (uint32_t)s->transit);
		s->jitter += ((d < 0 ? -(double)d : (double)d) - s->jitter) /
		    16.0;
	}
	s->transit = transit;
}

static void
rtpstat_publish(struct shm_dir *dir)
{
	const struct shm_rtpsrc	*s = &dir->src;
	uint64_t		 expected = s->expected_base;
	int64_t			 lost = (int64_t)s->lost_base;
	uint32_t		 rate = s->clock_rate;

	if (s->valid) {
		expected += (uint64_t)src_expected(s);
		lost += src_expected(s) - (int64_t)s->received;
	}
	atomic_store_explicit(&dir->packets_expected, expected,
	    memory_order_relaxed);
	atomic_store_explicit(&dir->packets_lost, lost, memory_order_relaxed);
	if (rate != 0)
		atomic_store_explicit(&dir->jitter_ns,
		    (uint64_t)(s->jitter * 1e9 / rate), memory_order_relaxed);
}

/* dir's source state was written from elsewhere (the kernel fast path). */
void
rtpstat_sync(struct shm_dir *dir)
{
	atomic_store_explicit(&dir->ssrc, dir->src.ssrc, memory_order_relaxed);
	rtpstat_publish(dir);
}

/*
 * Account one valid RTP packet that arrived at arrival_ns (CLOCK_REALTIME,
 * ns) in dir's source state, and publish the derived counters.
 */
void
rtpstat_update(struct shm_dir *dir, const struct rtp_info *ri,
    int64_t arrival_ns)
{
	struct shm_rtpsrc	*s = &dir->src;

	if ((!s->valid && s->probation == 0) || ri->ssrc != s->ssrc) {
		src_new(s, ri);
		atomic_store_explicit(&dir->ssrc, ri->ssrc,
		    memory_order_relaxed);
		atomic_store_explicit(&dir->pt, ri->pt, memory_order_relaxed);
		atomic_store_explicit(&dir->jitter_ns, 0,
		    memory_order_relaxed);
	}
	if (src_update_seq(s, ri->seq))
		src_jitter(s, ri, arrival_ns);
	rtpstat_publish(dir);
}
