/*
 * The RFC 4571 framing of TCP sessions (tcp_frames): any stream, cut into
 * any chunks, as TCP may deliver it.  The first octet of the input says
 * how to cut the rest.  Checks: the same counts whatever the cuts (the
 * state between chunks is complete), packets sent equal packets received,
 * and the RFC 3550 figures stay consistent.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "worker.h"
#include "fuzz.h"

struct result {
	uint64_t	pr, ps, rr, rs, nonrtp, expected;
	int64_t		lost;
	uint8_t		framing;
};

static void
run(const uint8_t *p, size_t n, uint8_t cut, struct result *r)
{
	static struct shm_slot	s;
	size_t			off = 0, k;
	unsigned		i = 0;

	memset(&s, 0, sizeof(s));
	while (off < n) {
		/* cut 0: the whole stream at once; else pieces of 1..cut*3 */
		k = cut == 0 ? n - off : 1 + (i * 7 + cut) % ((size_t)cut * 3);
		if (k > n - off)
			k = n - off;
		tcp_frames(&s.tcp[0], &s.dir[0], 0, p + off, k,
		    (int64_t)i * 20000000);
		off += k;
		i++;
	}
	r->pr = atomic_load(&s.dir[0].packets_received);
	r->ps = atomic_load(&s.dir[0].packets_sent);
	r->rr = atomic_load(&s.dir[0].rtcp_received);
	r->rs = atomic_load(&s.dir[0].rtcp_sent);
	r->nonrtp = atomic_load(&s.dir[0].non_rtp);
	r->expected = atomic_load(&s.dir[0].packets_expected);
	r->lost = atomic_load(&s.dir[0].packets_lost);
	r->framing = s.tcp[0].framing;
	FUZZ_CHECK(s.tcp[0].have <= sizeof(s.tcp[0].hdr));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result	whole, cut;

	if (size < 1)
		return 0;
	run(data + 1, size - 1, 0, &whole);
	run(data + 1, size - 1, data[0], &cut);
	FUZZ_CHECK(whole.pr == whole.ps && whole.rr == whole.rs);
	FUZZ_CHECK(whole.nonrtp <= whole.pr);
	/* A frame is at least its two length octets. */
	FUZZ_CHECK((whole.pr + whole.rr) * 2 <= size);
	FUZZ_CHECK(whole.lost <= (int64_t)whole.expected);
	/*
	 * Counts depend on the octets only, not on how they were cut (the
	 * arrival times differ, so jitter is not compared).
	 */
	FUZZ_CHECKF(whole.pr == cut.pr && whole.rr == cut.rr &&
	    whole.nonrtp == cut.nonrtp && whole.framing == cut.framing &&
	    whole.expected == cut.expected && whole.lost == cut.lost,
	    "cut %u: packets %llu/%llu rtcp %llu/%llu", data[0],
	    (unsigned long long)whole.pr, (unsigned long long)cut.pr,
	    (unsigned long long)whole.rr, (unsigned long long)cut.rr);
	return 0;
}
