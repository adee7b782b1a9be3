/*
 * RFC 4733 telephone-events: one event per digit out of the packets a
 * sender makes of it -- a start packet (often with the marker bit), the
 * updates with a growing duration, and the end packet sent three times,
 * all with the event's RTP timestamp; any of them may be lost, repeated
 * or late.  An event is known by its SSRC and timestamp: told once, when
 * its first end packet comes, or, when every end packet was lost, when
 * the next event begins.  Pure functions on the direction's struct
 * shm_dtmf (in the slot, so a worker that replaces a dead one does not
 * tell an event twice): no I/O, no allocation.
 */
#include <stdint.h>
#include <string.h>

#include "worker.h"

static void
dtmf_tell(const struct shm_dtmf *st, int end_seen, struct dtmf_told *o)
{
	o->event = st->event;
	o->volume = st->volume;
	o->end_seen = (uint8_t)end_seen;
	o->duration = st->duration;
	o->rtp_ts = st->ts;
	o->ssrc = st->ssrc;
	o->start_ns = st->start_ns;
}

/*
 * One telephone-event packet (buf, len: the whole RTP packet, ri its
 * header) at ns, its timestamps at rate Hz.  Fills out[0 .. n - 1] with
 * the events to tell and returns n (0, 1 or 2), or -1 for a payload too
 * short to be one.
 */
int
dtmf_update(struct shm_dtmf *st, const uint8_t *buf, size_t len,
    const struct rtp_info *ri, uint32_t rate, int64_t ns,
    struct dtmf_told *out)
{
	const uint8_t	*p;
	uint32_t	 duration;
	int		 end, n = 0;

	if (ri->hdrlen + ri->padlen > len || len - ri->hdrlen - ri->padlen < 4)
		return -1;
	p = buf + ri->hdrlen;
	end = (p[1] & 0x80) != 0;
	duration = (uint32_t)(p[2] << 8 | p[3]);
	if (st->state != SHM_DTMF_NONE && st->ssrc == ri->ssrc) {
		if (st->ts == ri->ts) {
			/* The same event: a repeat of its end, or news. */
			if (st->state == SHM_DTMF_DONE)
				return 0;
			if (duration > st->duration)
				st->duration = duration;
			st->last_ns = ns;
			if (end) {
				st->state = SHM_DTMF_DONE;
				dtmf_tell(st, 1, &out[n++]);
			}
			return n;
		}
		/* A late packet of an earlier event. */
		if ((int32_t)(ri->ts - st->ts) < 0)
			return 0;
	}
	/* A new event; the one before it never ended as far as we saw. */
	if (st->state == SHM_DTMF_ON)
		dtmf_tell(st, 0, &out[n++]);
	if (rate == 0)
		rate = 8000;
	st->ssrc = ri->ssrc;
	st->ts = ri->ts;
	st->event = p[0];
	st->volume = p[1] & 0x3f;
	st->duration = duration;
	/* Its start, had the packets before this one been lost. */
	st->start_ns = ns - (int64_t)((uint64_t)duration * 1000000000u / rate);
	st->last_ns = ns;
	st->state = SHM_DTMF_ON;
	if (end) {
		st->state = SHM_DTMF_DONE;
		dtmf_tell(st, 1, &out[n++]);
	}
	return n;
}
