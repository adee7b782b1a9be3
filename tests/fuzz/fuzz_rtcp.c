/*
 * Call quality from RTCP (rtcpq.c, quality.c) and RFC 4733 telephone-events
 * (dtmf.c), on the two directions of one slot.
 *
 * Input: records of
 *	length (2 octets) | arrival step (2) | direction (1) | packet
 * A step of 0xffff sets the clock back by a second (an NTP step); any
 * other value advances it by that many 125 us.  Every packet, in its own
 * exactly sized buffer so that a read past its end is caught, goes to
 * rtcpq_parse as RTCP of that direction and, when it is RTP, to
 * dtmf_update as a telephone-event.  Checked after each: a round trip is
 * never negative nor longer than the time since the SR it answers could
 * have passed, the maximum is the largest, the reported figures are in
 * their fields' ranges, the MOS and R are 0 (unknown) or in [1, 4.5] and
 * [0, 100], never NaN; an event is told at most once in a row (a repeated
 * end or a late packet never tells the same SSRC and timestamp again),
 * its volume fits 6 bits and it did not start after the latest clock.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"
#include "quality.h"
#include "fuzz.h"

#define STEP_NS		125000

static void
check_quality(const struct shm_slot *s, int64_t span_ns)
{
	struct quality	q;
	int		d;

	for (d = 0; d < 2; d++) {
		const struct shm_rtcpq *r = &s->dir[d].q;

		FUZZ_CHECK(r->sr_next < SHM_SR_KEEP);
		FUZZ_CHECK(SHM_LOAD(&r->rtt_ns) <= SHM_LOAD(&r->rtt_max_ns));
		FUZZ_CHECK(SHM_LOAD(&r->rtt_max_ns) <= (uint64_t)span_ns &&
		    SHM_LOAD(&r->rtt_max_ns) <= 60000000000ULL);
		FUZZ_CHECK(SHM_LOAD(&r->fraction_lost) <= 255);
		FUZZ_CHECK(SHM_LOAD(&r->cum_lost) >= -0x800000 &&
		    SHM_LOAD(&r->cum_lost) <= 0x7fffff);
		quality_dir(s, d, &q);
		FUZZ_CHECK(!isnan(q.mos) && !isnan(q.r));
		FUZZ_CHECK(q.mos == 0.0 || (q.mos >= 1.0 && q.mos <= 4.5));
		FUZZ_CHECK(q.r >= 0.0 && q.r <= 100.0);
		FUZZ_CHECK(q.rep_loss >= 0.0 && q.rep_loss < 1.0);
		FUZZ_CHECK(q.rtt_ms >= 0.0 && q.rtt_avg_ms <= q.rtt_max_ms +
		    1e-6);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shm_slot		*s;
	struct rtp_info		 ri;
	struct dtmf_told	 told[2];
	uint32_t		 last_ts[2] = { 0, 0 }, last_ssrc[2] = { 0, 0 };
	int			 have_last[2] = { 0, 0 };
	int64_t			 t0 = 1700000000LL * 1000000000LL, t = t0;
	int64_t			 tmax = t0, tmin = t0;
	uint8_t			*pkt;
	size_t			 off = 0, len;
	int			 d, i, n;

	if ((s = aligned_alloc(64, sizeof(*s))) == NULL)
		abort();
	memset(s, 0, sizeof(*s));
	while (size - off >= 5) {
		len = fuzz_be16(data + off);
		if (fuzz_be16(data + off + 2) == 0xffff)
			t -= 1000000000;
		else
			t += (int64_t)fuzz_be16(data + off + 2) * STEP_NS;
		if (t > tmax)
			tmax = t;
		if (t < tmin)
			tmin = t;
		d = data[off + 4] & 1;
		off += 5;
		if (len > size - off)
			len = size - off;
		if ((pkt = malloc(len ? len : 1)) == NULL)
			abort();
		memcpy(pkt, data + off, len);
		off += len;

		n = rtcpq_parse(&s->dir[d], &s->dir[d ^ 1], pkt, len, t);
		FUZZ_CHECK(n == 0 || n == -1);
		if (rtp_parse(pkt, len, &ri) == 0) {
			n = dtmf_update(&s->dir[d].dtmf, pkt, len, &ri, 8000,
			    t, told);
			FUZZ_CHECK(n >= -1 && n <= 2);
			for (i = 0; i < n; i++) {
				FUZZ_CHECKF(!have_last[d] ||
				    told[i].rtp_ts != last_ts[d] ||
				    told[i].ssrc != last_ssrc[d],
				    "ssrc %08x ts %u told twice in a row",
				    told[i].ssrc, told[i].rtp_ts);
				FUZZ_CHECK(told[i].volume <= 63);
				FUZZ_CHECK(told[i].start_ns <= tmax);
				have_last[d] = 1;
				last_ts[d] = told[i].rtp_ts;
				last_ssrc[d] = told[i].ssrc;
			}
		}
		free(pkt);
		/* no round trip is longer than the run's clock went */
		check_quality(s, tmax - tmin);
	}
	free(s);
	return 0;
}
