/*
 * The gate's HTTP/2 scanner (h2scan_feed) and its follower of a server's
 * frames (h2frames_follow), on any bytes cut into any chunks, as TCP may
 * deliver them.  The first octet of the input says how to cut the rest.
 * Checks: the same verdict and the same counts whatever the cuts (the
 * state kept between chunks is complete); the follower, stopped at each
 * frame's end, always moves on and ends where it does uncut.
 */
#include <stdint.h>
#include <string.h>

#include "h2scan.h"
#include "fuzz.h"

struct result {
	enum h2verdict	v;
	size_t		at;		/* octets fed before the verdict */
	uint64_t	frames, streams, resets;
	uint32_t	max_sid;
};

static size_t
piece(size_t off, size_t n, unsigned i, uint8_t cut)
{
	size_t k = cut == 0 ? n - off : 1 + (i * 7 + cut) % ((size_t)cut * 3);

	return k > n - off ? n - off : k;
}

static void
scan(const uint8_t *p, size_t n, uint8_t cut, struct result *r)
{
	struct h2limits	lim = { 256, 4, 10, 20, 10, 20 };
	struct h2scan	s;
	struct h2rates	one, all;
	size_t		off = 0, k;
	unsigned	i = 0;

	memset(&one, 0, sizeof(one));
	memset(&all, 0, sizeof(all));
	h2scan_init(&s, &lim);
	r->v = H2_OK;
	while (off < n && r->v == H2_OK) {
		k = piece(off, n, i++, cut);
		/* The clock moves with the input, not with the cuts. */
		r->v = h2scan_feed(&s, &one, &all, p + off, k, 1000);
		off += k;
	}
	r->at = off;
	r->frames = s.frames;
	r->streams = s.streams;
	r->resets = s.resets;
	r->max_sid = s.max_sid;
	FUZZ_CHECK(s.hlen < sizeof(s.hdr));
	FUZZ_CHECK(s.preface <= H2_PREFACE_LEN);
}

static void
follow(const uint8_t *p, size_t n, uint8_t cut, struct h2frames *f)
{
	size_t		off = 0, k, done;
	unsigned	i = 0;

	memset(f, 0, sizeof(*f));
	while (off < n) {
		k = piece(off, n, i++, cut);
		while (k > 0) {
			/* Stopped at each frame's end, as the gate is. */
			done = h2frames_follow(f, p + off, k, 1);
			FUZZ_CHECK(done > 0 && done <= k);
			off += done;
			k -= done;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result	whole, cut;
	struct h2frames	fw, fc;
	uint8_t		goaway[H2_GOAWAY_LEN];

	if (size < 1)
		return 0;
	scan(data + 1, size - 1, 0, &whole);
	scan(data + 1, size - 1, data[0], &cut);
	/* A verdict falls on a frame header, wherever the cuts are. */
	FUZZ_CHECK(whole.v == cut.v);
	FUZZ_CHECK(whole.frames == cut.frames);
	FUZZ_CHECK(whole.streams == cut.streams);
	FUZZ_CHECK(whole.resets == cut.resets);
	FUZZ_CHECK(whole.max_sid == cut.max_sid);
	FUZZ_CHECK(whole.max_sid <= 0x7fffffffu);
	FUZZ_CHECK(h2scan_verdict_name(whole.v) != NULL);

	follow(data + 1, size - 1, 0, &fw);
	follow(data + 1, size - 1, data[0], &fc);
	FUZZ_CHECK(fw.frames == fc.frames && fw.left == fc.left &&
	    fw.hlen == fc.hlen);
	h2_goaway(goaway, whole.max_sid);
	FUZZ_CHECK(goaway[3] == 0x7 && goaway[2] == 8);
	return 0;
}
