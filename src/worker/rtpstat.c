/*
 * RTP and RTCP header checks and the receiver statistics of RFC 3550:
 * sequence validation (A.1), expected and lost packets (A.3) and
 * interarrival jitter (A.8).  Pure functions on a struct shm_dir: no I/O,
 * no allocation, so the relay can call them for every packet and the tests
 * can call them without sockets.  The statistics themselves are in
 * src/common/rfc3550.h, which the kernel fast path's program uses too.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "worker.h"

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

/* RFC 3551 section 6: the clock of a static payload type. */
uint32_t
rtp_clock_rate(uint8_t pt)
{
	return rfc3550_clock_rate(pt, 0);
}

static void
rtpstat_publish(struct shm_dir *dir)
{
	const struct rfc3550_src	*s = &dir->src;
	uint64_t			 expected = s->expected_base;
	int64_t				 lost = s->lost_base;

	if (s->valid) {
		expected += (uint64_t)rfc3550_expected(s);
		lost += rfc3550_expected(s) - (int64_t)s->received;
	}
	atomic_store_explicit(&dir->packets_expected, expected,
	    memory_order_relaxed);
	atomic_store_explicit(&dir->packets_lost, lost, memory_order_relaxed);
	if (s->clock_rate != 0)
		atomic_store_explicit(&dir->jitter_ns, rfc3550_jitter_ns(s),
		    memory_order_relaxed);
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
	if (rfc3550_packet(&dir->src, ri->ssrc, ri->seq, ri->ts, arrival_ns,
	    rfc3550_clock_rate(ri->pt, ri->dyn_rate)) & RFC3550_NEW) {
		atomic_store_explicit(&dir->ssrc, ri->ssrc,
		    memory_order_relaxed);
		atomic_store_explicit(&dir->pt, ri->pt, memory_order_relaxed);
		atomic_store_explicit(&dir->jitter_ns, 0,
		    memory_order_relaxed);
	}
	rtpstat_publish(dir);
}
