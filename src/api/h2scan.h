/*
 * h2scan.c: the HTTP/2 frames a client sends, scanned before gRPC sees
 * them.  Pure code: no I/O, no allocation (the fuzz target links it alone).
 */
#ifndef RTPPROXYD_H2SCAN_H
#define RTPPROXYD_H2SCAN_H

#include <stddef.h>
#include <stdint.h>

#define H2_PREFACE_LEN	24

struct h2limits {
	uint32_t	header_block_max;	/* octets of one header block */
	uint32_t	header_frames_max;	/* HEADERS + CONTINUATIONs */
	uint32_t	reset_rate;		/* RST_STREAM a second; 0: any */
	uint32_t	reset_burst;
	uint32_t	control_rate;		/* SETTINGS, PING, PRIORITY */
	uint32_t	control_burst;
};

/* What the gate allows by default; apigate.c documents them. */
#define H2_HEADER_BLOCK_MAX	(64 * 1024)
#define H2_HEADER_FRAMES_MAX	32
#define H2_RESET_RATE		100	/* per client */
#define H2_RESET_BURST		200
#define H2_CONTROL_RATE		200
#define H2_CONTROL_BURST	1000
#define H2_ALL_FACTOR		10	/* every client: ten times one */

enum h2verdict {
	H2_OK = 0,
	H2_NOT_HTTP2,		/* the client preface is wrong */
	H2_HEADER_FLOOD,	/* a header block too long (CONTINUATION) */
	H2_RESET_FLOOD,		/* streams reset too fast (rapid reset) */
	H2_CONTROL_FLOOD,	/* SETTINGS, PING, PRIORITY too fast */
};

struct h2bucket {
	int64_t		at;		/* ms of the last refill; 0: new */
	int64_t		tokens;		/* thousandths */
};

/* What a client may spend, shared by its connections (and by all). */
struct h2rates {
	struct h2bucket	reset;
	struct h2bucket	control;
};

struct h2scan {
	struct h2limits	lim;
	uint32_t	preface;	/* octets of the preface seen */
	uint8_t		hdr[9];		/* a frame header being collected */
	uint32_t	hlen;
	uint32_t	left;		/* payload octets still to skip */
	int		in_block;	/* inside a header block */
	uint32_t	block_bytes, block_frames;
	uint32_t	max_sid;	/* highest stream the client opened */
	uint64_t	frames, streams, resets;
};

/* Where the frames a server sends begin: a frame header and what is left. */
struct h2frames {
	uint8_t		hdr[9];
	uint32_t	hlen;
	uint32_t	left;
	uint64_t	frames;		/* headers seen whole */
};

#define H2_GOAWAY_LEN	17	/* a GOAWAY frame without debug data */

void		 h2scan_init(struct h2scan *, const struct h2limits *);
/*
 * Scan what a client sent, spending from the client's rates and from
 * those of every client (either may be NULL); H2_OK, or why the
 * connection must go.
 */
enum h2verdict	 h2scan_feed(struct h2scan *, struct h2rates *,
		    struct h2rates *, const uint8_t *, size_t, int64_t);
/* Has the whole client preface arrived? */
int		 h2scan_started(const struct h2scan *);
const char	*h2scan_verdict_name(enum h2verdict);
/*
 * Follow n octets of a server's frames; with stop set, only up to the end
 * of the frame under way.  The octets followed.
 */
size_t		 h2frames_follow(struct h2frames *, const uint8_t *, size_t,
		    int);
/* Between two frames, after the first (a server's SETTINGS)? */
int		 h2frames_at_boundary(const struct h2frames *);
/* A GOAWAY frame (NO_ERROR) with this last stream id into buf. */
void		 h2_goaway(uint8_t [H2_GOAWAY_LEN], uint32_t);

#endif
