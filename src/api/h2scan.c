/*
 * What a client sends the API, frame by frame, before gRPC sees it.
 *
 * gRPC C core 1.51 has no defence of its own against the HTTP/2 attacks
 * that came after it: a client that opens streams and resets them at once
 * (CVE-2023-44487) fills the server's queue of calls faster than they are
 * answered, and a header block that never ends (HEADERS, then CONTINUATION
 * for ever) is buffered whole.  The gate (apigate.c) passes every byte a
 * client sends through this scanner first: it reads frame headers only,
 * never a payload, keeps a few counters, and says when a connection has
 * crossed a line no real client crosses.  No allocation, no system call.
 */
#include <stdint.h>
#include <string.h>

#include "h2scan.h"

static const char h2_preface[H2_PREFACE_LEN] =
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#define H2_HEADERS	0x1
#define H2_RST_STREAM	0x3
#define H2_SETTINGS	0x4
#define H2_PING		0x6
#define H2_CONTINUATION	0x9
#define H2_PRIORITY	0x2
#define H2_END_HEADERS	0x4

void
h2scan_init(struct h2scan *s, const struct h2limits *lim)
{
	memset(s, 0, sizeof(*s));
	s->lim = *lim;
}

/* A token bucket of per-second rate and burst; 0 when one is taken. */
static int
h2_take(struct h2bucket *b, uint32_t rate, uint32_t burst, int64_t now_ms)
{
	int64_t	 add;

	if (rate == 0)
		return 0;
	if (b->at == 0) {
		b->at = now_ms;
		b->tokens = (int64_t)burst * 1000;
	}
	/* Tokens in thousandths, so that a slow rate still refills. */
	add = (now_ms - b->at) * rate;
	if (add > 0) {
		b->tokens += add;
		if (b->tokens > (int64_t)burst * 1000)
			b->tokens = (int64_t)burst * 1000;
		b->at = now_ms;
	}
	if (b->tokens < 1000)
		return -1;
	b->tokens -= 1000;
	return 0;
}

/* A frame of a kind that is rate-limited: from both budgets. */
static int
h2_spend(const struct h2scan *s, struct h2rates *one, struct h2rates *all,
    int reset, int64_t now_ms)
{
	uint32_t rate = reset ? s->lim.reset_rate : s->lim.control_rate;
	uint32_t burst = reset ? s->lim.reset_burst : s->lim.control_burst;

	if (one != NULL && h2_take(reset ? &one->reset : &one->control, rate,
	    burst, now_ms) == -1)
		return -1;
	if (all != NULL && h2_take(reset ? &all->reset : &all->control,
	    rate * H2_ALL_FACTOR, burst * H2_ALL_FACTOR, now_ms) == -1)
		return -1;
	return 0;
}

/* A whole frame header is in s->hdr: account for it. */
static enum h2verdict
h2_frame(struct h2scan *s, struct h2rates *one, struct h2rates *all,
    int64_t now_ms)
{
	const uint8_t	*h = s->hdr;
	uint32_t	 len, sid;
	uint8_t		 type, flags;

	len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
	type = h[3];
	flags = h[4];
	sid = ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 |
	    (uint32_t)h[7] << 8 | h[8]) & 0x7fffffffu;
	s->left = len;
	s->frames++;

	/* A header block is one HEADERS and its CONTINUATIONs, nothing else. */
	if (s->in_block) {
		if (type != H2_CONTINUATION)
			return H2_OK;	/* gRPC closes it: a protocol error */
		s->block_bytes += len;
		s->block_frames++;
		if (s->block_bytes > s->lim.header_block_max ||
		    s->block_frames > s->lim.header_frames_max)
			return H2_HEADER_FLOOD;
		if (flags & H2_END_HEADERS)
			s->in_block = 0;
		return H2_OK;
	}

	switch (type) {
	case H2_HEADERS:
		/* A new stream, or trailers of one: odd ids from a client. */
		if (sid > s->max_sid) {
			s->max_sid = sid;
			s->streams++;
		}
		if (!(flags & H2_END_HEADERS)) {
			s->in_block = 1;
			s->block_bytes = len;
			s->block_frames = 1;
			if (len > s->lim.header_block_max)
				return H2_HEADER_FLOOD;
		}
		break;
	case H2_CONTINUATION:
		break;			/* out of place: gRPC says so */
	case H2_RST_STREAM:
		s->resets++;
		if (h2_spend(s, one, all, 1, now_ms) == -1)
			return H2_RESET_FLOOD;
		break;
	case H2_SETTINGS:
	case H2_PING:
	case H2_PRIORITY:
		/*
		 * Frames that cost the server work or an answer but carry
		 * no call; real clients send a handful a second.  (Not
		 * WINDOW_UPDATE: a client reading a busy stream sends many.)
		 */
		if (h2_spend(s, one, all, 0, now_ms) == -1)
			return H2_CONTROL_FLOOD;
		break;
	default:
		break;
	}
	return H2_OK;
}

enum h2verdict
h2scan_feed(struct h2scan *s, struct h2rates *one, struct h2rates *all,
    const uint8_t *p, size_t n, int64_t now_ms)
{
	enum h2verdict	v;
	size_t		k;

	while (n > 0) {
		if (s->preface < H2_PREFACE_LEN) {
			k = H2_PREFACE_LEN - s->preface;
			if (k > n)
				k = n;
			if (memcmp(p, h2_preface + s->preface, k) != 0)
				return H2_NOT_HTTP2;
			s->preface += (uint32_t)k;
			p += k;
			n -= k;
			continue;
		}
		if (s->left > 0) {
			k = s->left < n ? s->left : n;
			s->left -= (uint32_t)k;
			p += k;
			n -= k;
			continue;
		}
		k = sizeof(s->hdr) - s->hlen;
		if (k > n)
			k = n;
		memcpy(s->hdr + s->hlen, p, k);
		s->hlen += (uint32_t)k;
		p += k;
		n -= k;
		if (s->hlen < sizeof(s->hdr))
			break;
		s->hlen = 0;
		if ((v = h2_frame(s, one, all, now_ms)) != H2_OK)
			return v;
	}
	return H2_OK;
}

int
h2scan_started(const struct h2scan *s)
{
	return s->preface == H2_PREFACE_LEN;
}

const char *
h2scan_verdict_name(enum h2verdict v)
{
	switch (v) {
	case H2_OK:
		return "ok";
	case H2_NOT_HTTP2:
		return "not HTTP/2 (no client preface)";
	case H2_HEADER_FLOOD:
		return "header block too long (CONTINUATION flood)";
	case H2_RESET_FLOOD:
		return "streams reset too fast (rapid reset)";
	case H2_CONTROL_FLOOD:
		return "too many control frames (SETTINGS, PING, PRIORITY)";
	}
	return "?";
}

size_t
h2frames_follow(struct h2frames *f, const uint8_t *p, size_t n, int stop)
{
	size_t done = 0, k;

	while (done < n) {
		if (f->left > 0) {
			k = f->left < n - done ? f->left : n - done;
			f->left -= (uint32_t)k;
			done += k;
			if (stop && f->left == 0)
				break;
			continue;
		}
		k = sizeof(f->hdr) - f->hlen;
		if (k > n - done)
			k = n - done;
		memcpy(f->hdr + f->hlen, p + done, k);
		f->hlen += (uint32_t)k;
		done += k;
		if (f->hlen < sizeof(f->hdr))
			break;
		f->hlen = 0;
		f->frames++;
		f->left = (uint32_t)f->hdr[0] << 16 | (uint32_t)f->hdr[1] << 8 |
		    f->hdr[2];
		if (stop && f->left == 0)
			break;
	}
	return done;
}

int
h2frames_at_boundary(const struct h2frames *f)
{
	return f->frames > 0 && f->hlen == 0 && f->left == 0;
}

void
h2_goaway(uint8_t buf[H2_GOAWAY_LEN], uint32_t last)
{
	memset(buf, 0, H2_GOAWAY_LEN);
	buf[2] = 8;			/* length */
	buf[3] = 0x7;			/* GOAWAY, stream 0 */
	buf[9] = (uint8_t)(last >> 24) & 0x7f;
	buf[10] = (uint8_t)(last >> 16);
	buf[11] = (uint8_t)(last >> 8);
	buf[12] = (uint8_t)last;	/* then NO_ERROR: zeros */
}
