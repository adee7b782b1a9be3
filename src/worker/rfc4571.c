/*
 * RFC 4571 framing of RTP and RTCP on a TCP stream, for the statistics of
 * TCP sessions: a pure function of the octets and the state kept in the
 * slot, so that the fuzzers and the tests can call it without sockets.
 */
#include <stdint.h>
#include <string.h>

#include "worker.h"

/*
 * Account the octets p[0 .. n) that went through one direction: RFC 4571
 * frames (a 16-bit length, then the packet) when the stream starts like
 * framed RTP or RTCP, counted as packets, with RTP statistics from each
 * frame's header; otherwise octets only.  A frame whose first octet is
 * not version 2 loses the framing for the rest of the stream.  The state
 * lives in the slot, so a new worker parses on where the old one stopped.
 */
void
tcp_frames(struct shm_tcpdir *st, struct shm_dir *d, uint32_t clock_rate,
    const uint8_t *p, size_t n, int64_t ns)
{
	struct rtp_info	 ri;
	const uint8_t	*head;
	size_t		 take, hl;
	uint64_t	 frames = 0, rtcp = 0, other = 0;
	uint32_t	 flen;

	while (n > 0 && st->framing != SHM_TCP_FRAMING_NONE) {
		if (st->have < 2) {
			st->hdr[st->have++] = *p++;
			n--;
			if (st->have == 2) {
				st->frame_left = (uint32_t)st->hdr[0] << 8 |
				    st->hdr[1];
				if (st->frame_left == 0)
					st->have = 0;	/* nothing in it */
			}
			continue;
		}
		if (st->have < sizeof(st->hdr)) {
			take = sizeof(st->hdr) - st->have;
			if (take > n)
				take = n;
			if (take > st->frame_left)
				take = st->frame_left;
			memcpy(st->hdr + st->have, p, take);
			st->have = (uint8_t)(st->have + take);
			if (st->framing == SHM_TCP_FRAMING_UNKNOWN)
				st->framing = (st->hdr[2] >> 6) == 2 ?
				    SHM_TCP_FRAMING_RFC4571 :
				    SHM_TCP_FRAMING_NONE;
		} else {
			take = n < st->frame_left ? n : st->frame_left;
		}
		p += take;
		n -= take;
		st->frame_left -= (uint32_t)take;
		if (st->frame_left > 0)
			continue;
		/* A whole frame: what its head says it is. */
		flen = (uint32_t)st->hdr[0] << 8 | st->hdr[1];
		head = st->hdr + 2;
		hl = st->have - 2u;
		st->have = 0;
		if ((head[0] >> 6) != 2) {
			st->framing = SHM_TCP_FRAMING_NONE;
			break;
		}
		if (hl >= 2 && rtcp_pt(head[1]))
			rtcp++;
		else if (hl >= RTP_HDR_MIN &&
		    rtp_parse_head(head, flen, &ri) == 0) {
			ri.dyn_rate = clock_rate;
			rtpstat_update(d, &ri, ns);
			frames++;
		} else
			other++;
	}
	if (frames + other > 0) {
		SHM_ADD(&d->packets_received, frames + other);
		SHM_ADD(&d->packets_sent, frames + other);
	}
	if (other > 0)
		SHM_ADD(&d->non_rtp, other);
	if (rtcp > 0) {
		SHM_ADD(&d->rtcp_received, rtcp);
		SHM_ADD(&d->rtcp_sent, rtcp);
	}
}

