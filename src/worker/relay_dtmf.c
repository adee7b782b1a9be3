/*
 * Telephone-events on the packet path: relay.c calls here for packets of
 * the session's DTMF payload type only (a compare for any other packet).
 * The events go to the master (IPC_DTMF), spaced out per direction so
 * that a sender of bogus events cannot flood the event socket: at most
 * RELAY_DTMF_BURST at once, then RELAY_DTMF_PER_S a second; the others
 * are counted in dtmf_events all the same.
 */
#include <stdint.h>
#include <string.h>

#include <event2/event.h>

#include "relay_int.h"

#define RELAY_DTMF_NS		(NS_PER_S / 20)	/* 20 a second */
#define RELAY_DTMF_BURST	20

/* A GCRA: may one more event be told at ns? */
static int
relay_dtmf_conform(struct shm_dtmf *st, int64_t ns)
{
	int64_t tat = st->tat_ns > ns ? st->tat_ns : ns;

	if (tat - ns > (RELAY_DTMF_BURST - 1) * RELAY_DTMF_NS) {
		st->untold++;
		return 0;
	}
	st->tat_ns = tat + RELAY_DTMF_NS;
	return 1;
}

/* The events this packet ended, told; how many. */
int
relay_dtmf(struct relay_sess *rs, int rev, const uint8_t *buf, size_t len,
    const struct rtp_info *ri, int64_t ns)
{
	struct shm_dtmf		*st = &rs->slot->dir[rev ? SHM_DIR_REV :
	    SHM_DIR_FWD].dtmf;
	struct dtmf_told	 told[2];
	struct ipc_dtmf		 m;
	uint32_t		 rate = rs->clock_rate ? rs->clock_rate : 8000;
	int			 i, n;

	if ((n = dtmf_update(st, buf, len, ri, rate, ns, told)) <= 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (!relay_dtmf_conform(st, ns))
			continue;
		ipc_init(&m.hdr, IPC_DTMF, 0, rs->idx, rs->gen);
		m.hdr.arg = rev ? SHM_DIR_REV : SHM_DIR_FWD;
		m.event = told[i].event;
		m.volume = told[i].volume;
		m.duration = told[i].duration;
		m.clock_rate = rate;
		m.rtp_ts = told[i].rtp_ts;
		m.ssrc = told[i].ssrc;
		m.end_seen = told[i].end_seen;
		m.start_ms = told[i].start_ns / NS_PER_MS;
		wctx_tell(&rs->relay->ctx, &m.hdr, NULL, 0);
	}
	return n;
}
