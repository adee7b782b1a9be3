/*
 * RTP and RTCP parsing and the RFC 3550 receiver statistics.
 *
 * Input: a 4-octet clock rate for dynamic payload types (the session's
 * clock_rate; 0 means 8000), then records of
 *	length (2 octets) | arrival step (2 octets) | packet (length octets)
 * A step of 0xffff sets the clock back by a second (an NTP step); any
 * other value advances it by that many 125 us.  Every packet goes through
 * rtcp_check, srtcp_check and rtp_parse, in its own exactly sized buffer
 * so that a read past its end is caught; the RTP ones then go into
 * rtpstat_update of one direction, whose published counters are checked
 * after every packet.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"
#include "fuzz.h"

#define STEP_NS		125000
#define MAX_DROPOUT	3000		/* as rtpstat.c: the largest jump */
#define JITTER_MAX_TS	2147483648.0	/* |D| of A.8 fits in 32 bits */

static void
check_rtcp(const uint8_t *p, size_t len, int rtcp, int srtcp, int rtp)
{
	/* Where RTP and RTCP share a port, one packet is never both. */
	FUZZ_CHECK(!(rtp && (rtcp || srtcp)));
	if (rtcp)
		FUZZ_CHECK(len >= 4 && len % 4 == 0 && p[1] >= 200 &&
		    p[1] <= 206);
	if (srtcp)
		FUZZ_CHECK(len >= 12 && (p[0] >> 6) == 2);
}

static void
check_rtp(const uint8_t *p, size_t len, const struct rtp_info *ri)
{
	size_t min = RTP_HDR_MIN + 4 * (size_t)(p[0] & 0x0f);

	FUZZ_CHECK((p[0] >> 6) == 2);
	FUZZ_CHECK(ri->hdrlen >= min && ri->hdrlen % 4 == 0);
	FUZZ_CHECK(ri->hdrlen <= len && ri->padlen <= len - ri->hdrlen);
	FUZZ_CHECK((ri->padlen != 0) == ((p[0] & 0x20) != 0));
	FUZZ_CHECK((ri->hdrlen > min) == ((p[0] & 0x10) != 0));
	FUZZ_CHECK(ri->pt == (p[1] & 0x7f) && ri->marker == p[1] >> 7);
	FUZZ_CHECK(ri->seq == fuzz_be16(p + 2));
	FUZZ_CHECK(ri->ts == fuzz_be32(p + 4) && ri->ssrc == fuzz_be32(p + 8));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shm_dir	*dir;
	struct rtp_info	 ri;
	uint64_t	 expected, prev_expected = 0, nrtp = 0, jitter;
	int64_t		 lost, t = 1700000000LL * 1000000000LL;
	uint32_t	 dyn_rate, min_rate;
	uint8_t		*pkt;
	size_t		 off = 4, len;
	double		 loss;
	int		 rtp, rtcp, srtcp;

	if (size < 4)
		return 0;
	dyn_rate = fuzz_be32(data);
	/* The slowest clock a jitter estimate can be in. */
	min_rate = dyn_rate != 0 && dyn_rate < 8000 ? dyn_rate : 8000;
	if ((dir = aligned_alloc(64, sizeof(*dir))) == NULL)
		abort();
	memset(dir, 0, sizeof(*dir));

	while (size - off >= 4) {
		len = fuzz_be16(data + off);
		if (fuzz_be16(data + off + 2) == 0xffff)
			t -= 1000000000;
		else
			t += (int64_t)fuzz_be16(data + off + 2) * STEP_NS;
		off += 4;
		if (len > size - off)
			len = size - off;
		if ((pkt = malloc(len != 0 ? len : 1)) == NULL)
			abort();
		memcpy(pkt, data + off, len);
		off += len;

		rtcp = rtcp_check(pkt, len) == 0;
		srtcp = srtcp_check(pkt, len) == 0;
		rtp = rtp_parse(pkt, len, &ri) == 0;
		FUZZ_CHECK(rtp == (rtp_parse(pkt, len, NULL) == 0));
		check_rtcp(pkt, len, rtcp, srtcp, rtp);
		if (!rtp) {
			free(pkt);
			continue;
		}
		check_rtp(pkt, len, &ri);
		free(pkt);

		ri.dyn_rate = dyn_rate;
		rtpstat_update(dir, &ri, t);
		nrtp++;

		expected = atomic_load(&dir->packets_expected);
		lost = atomic_load(&dir->packets_lost);
		jitter = atomic_load(&dir->jitter_ns);
		loss = shm_loss_rate(dir);
		/* RFC 3550 A.3: the extended highest sequence never goes back. */
		FUZZ_CHECKF(expected >= prev_expected, "expected %llu after %llu",
		    (unsigned long long)expected,
		    (unsigned long long)prev_expected);
		/* Each packet moves it by less than MAX_DROPOUT. */
		FUZZ_CHECKF(expected <= nrtp * MAX_DROPOUT,
		    "expected %llu after %llu packets",
		    (unsigned long long)expected, (unsigned long long)nrtp);
		/* Lost is expected minus received; received <= packets seen. */
		FUZZ_CHECKF(lost <= (int64_t)expected &&
		    lost >= (int64_t)expected - (int64_t)nrtp,
		    "lost %lld, expected %llu, %llu packets", (long long)lost,
		    (unsigned long long)expected, (unsigned long long)nrtp);
		FUZZ_CHECK(loss >= 0.0 && loss <= 1.0);
		FUZZ_CHECKF((double)jitter <= JITTER_MAX_TS * 1e9 / min_rate,
		    "jitter %llu ns", (unsigned long long)jitter);
		FUZZ_CHECK(atomic_load(&dir->ssrc) == ri.ssrc);
		/* Statistics touch no counter of the relay's. */
		FUZZ_CHECK(atomic_load(&dir->packets_received) == 0 &&
		    atomic_load(&dir->dropped_invalid) == 0 &&
		    atomic_load(&dir->last_packet_ms) == 0);
		prev_expected = expected;
	}
	free(dir);
	return 0;
}
