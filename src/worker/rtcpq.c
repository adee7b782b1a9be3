/*
 * Call quality from RTCP (RFC 3550 6.4): sender and receiver reports, in
 * compound packets, read as they pass through the relay.  Pure functions
 * on the two directions' struct shm_dir, like rtpstat.c: no I/O, no
 * allocation.  RTCP is a few packets a second per session, so none of
 * this is on the RTP packet path.
 *
 * A packet from the sender of direction `in` carries its sender report
 * (kept in in->q with the time it went by) and its report blocks about
 * the media it receives, which is the other direction's.  A block's LSR
 * names a sender report of the other direction; the time between that
 * report going by and this block coming back, less the receiver's DLSR,
 * is the round trip between the relay and that receiver (6.4.1, with the
 * relay's clock for both ends, so no clocks need agree).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "worker.h"

#define RTCP_SR		200
#define RTCP_RR		201
#define RTCP_HDR	8	/* header and the sender's SSRC */
#define RTCP_SENDER	20	/* SR sender info */
#define RTCP_BLOCK	24	/* a report block */
#define RTCPQ_RTT_MAX	(60 * 1000000000LL)	/* older SRs: no match */

static uint32_t
rtcpq_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
rtcpq_sr(struct shm_dir *in, const uint8_t *p, int64_t ns)
{
	struct shm_rtcpq	*q = &in->q;
	uint32_t		 i = q->sr_next % SHM_SR_KEEP;

	/* The middle 32 bits of the NTP timestamp: what LSR echoes. */
	q->sr_lsr[i] = rtcpq_u32(p + RTCP_HDR + 2);
	q->sr_ns[i] = ns;
	q->sr_next = (i + 1) % SHM_SR_KEEP;
	SHM_ADD(&q->srs, 1);
}

/* The round trip from a block's LSR and DLSR, if it answers a kept SR. */
static void
rtcpq_rtt(struct shm_dir *other, uint32_t lsr, uint32_t dlsr, int64_t ns)
{
	struct shm_rtcpq	*q = &other->q;
	int64_t			 rtt;
	uint64_t		 u;
	int			 i;

	if (lsr == 0)
		return;
	for (i = 0; i < SHM_SR_KEEP; i++) {
		if (q->sr_lsr[i] != lsr || q->sr_ns[i] == 0)
			continue;
		/* DLSR is in 1/65536 s. */
		rtt = ns - q->sr_ns[i] -
		    (int64_t)((uint64_t)dlsr * 1000000000u >> 16);
		/* A DLSR longer than the wait is a lie or a clock step. */
		if (rtt < 0 || ns - q->sr_ns[i] > RTCPQ_RTT_MAX)
			return;
		u = (uint64_t)rtt;
		atomic_store_explicit(&q->rtt_ns, u, memory_order_relaxed);
		SHM_ADD(&q->rtt_sum_ns, u);
		SHM_ADD(&q->rtt_count, 1);
		if (u > SHM_LOAD(&q->rtt_max_ns))
			atomic_store_explicit(&q->rtt_max_ns, u,
			    memory_order_relaxed);
		return;
	}
}

static void
rtcpq_block(struct shm_dir *other, const uint8_t *b, uint32_t reporter,
    int64_t ns)
{
	struct shm_rtcpq	*q = &other->q;
	uint32_t		 rate = other->src.clock_rate;
	uint32_t		 cum;
	int32_t			 lost;

	cum = (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
	/* 24-bit two's complement */
	lost = (int32_t)(cum ^ 0x800000u) - 0x800000;
	atomic_store_explicit(&q->fraction_lost, b[4], memory_order_relaxed);
	atomic_store_explicit(&q->cum_lost, lost, memory_order_relaxed);
	atomic_store_explicit(&q->rep_ssrc, reporter, memory_order_relaxed);
	/* Jitter is in the media's timestamp units. */
	if (rate == 0)
		rate = 8000;
	atomic_store_explicit(&q->jitter_ns,
	    (uint64_t)rtcpq_u32(b + 12) * 1000000000u / rate,
	    memory_order_relaxed);
	SHM_ADD(&q->reports, 1);
	atomic_store_explicit(&q->report_ms, ns / 1000000,
	    memory_order_relaxed);
}

/*
 * The report blocks of one SR or RR: at most count, and only those that
 * fit the packet's blen octets from off.  -1 if count claimed more.
 */
static int
rtcpq_blocks(struct shm_dir *other, const uint8_t *p, size_t blen,
    size_t off, unsigned int count, int64_t ns)
{
	uint32_t	 ssrc = SHM_LOAD(&other->ssrc);
	uint32_t	 reporter = rtcpq_u32(p + 4);
	const uint8_t	*b;
	unsigned int	 k;
	int		 taken = 0;

	for (k = 0; k < count; k++, off += RTCP_BLOCK) {
		if (blen - off < RTCP_BLOCK)
			return -1;
		b = p + off;
		rtcpq_rtt(other, rtcpq_u32(b + 16), rtcpq_u32(b + 20), ns);
		/*
		 * The figures of the source this direction relays, or of
		 * the first block while the relay has seen none.
		 */
		if (!taken && (ssrc == 0 || rtcpq_u32(b) == ssrc)) {
			rtcpq_block(other, b, reporter, ns);
			taken = 1;
		}
	}
	return 0;
}

/*
 * One (compound) RTCP packet from the sender of direction in, which
 * arrived at ns (CLOCK_REALTIME); other is the opposite direction.
 * 0 if every part was whole, -1 if a length or count did not fit (what
 * fitted is used, nothing past it).
 */
int
rtcpq_parse(struct shm_dir *in, struct shm_dir *other, const uint8_t *buf,
    size_t len, int64_t ns)
{
	const uint8_t	*p;
	size_t		 off = 0, plen;
	unsigned int	 count;

	while (off < len) {
		if (len - off < 4 || (buf[off] >> 6) != 2)
			return -1;
		p = buf + off;
		plen = 4 * ((size_t)((p[2] << 8) | p[3]) + 1);
		if (plen > len - off)
			return -1;
		count = p[0] & 0x1f;
		switch (p[1]) {
		case RTCP_SR:
			if (plen < RTCP_HDR + RTCP_SENDER)
				return -1;
			rtcpq_sr(in, p, ns);
			if (rtcpq_blocks(other, p, plen, RTCP_HDR +
			    RTCP_SENDER, count, ns) == -1)
				return -1;
			break;
		case RTCP_RR:
			if (plen < RTCP_HDR)
				return -1;
			if (rtcpq_blocks(other, p, plen, RTCP_HDR, count,
			    ns) == -1)
				return -1;
			break;
		default:
			break;
		}
		off += plen;
	}
	return 0;
}
