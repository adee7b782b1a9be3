/*
 * Call quality per direction, from the slot: RTCP's figures and a MOS
 * estimate from the ITU-T G.107 E-model, simplified as the usual
 * monitoring tools do: no echo or noise terms (Ro - Is = 93.2), the codec
 * impairment Ie and packet-loss robustness Bpl by payload type (G.113
 * Appendix I), random loss (BurstR 1), and the delay impairment Id from
 * the one-way delay by the usual fit to G.107's formula.
 */
#include <stdatomic.h>
#include <string.h>

#include "quality.h"

/* Ie and Bpl by static payload type; others (dynamic) as G.711. */
static void
emodel_codec(uint32_t pt, double *ie, double *bpl)
{
	switch (pt) {
	case 3:		/* GSM 06.10 full rate */
		*ie = 20.0;
		*bpl = 10.0;
		break;
	case 4:		/* G.723.1 at 6.3 kbit/s */
		*ie = 15.0;
		*bpl = 16.1;
		break;
	case 15:	/* G.728 */
		*ie = 7.0;
		*bpl = 10.0;
		break;
	case 18:	/* G.729A */
		*ie = 11.0;
		*bpl = 19.0;
		break;
	default:	/* G.711 with packet loss concealment, G.722 */
		*ie = 0.0;
		*bpl = 25.1;
		break;
	}
}

/*
 * The transmission rating R for a payload type, a loss ratio (0..1) and
 * a one-way delay in ms.
 */
double
emodel_r(uint32_t pt, double loss, double delay_ms)
{
	double	ie, bpl, ppl, ie_eff, id, r;

	emodel_codec(pt, &ie, &bpl);
	if (loss < 0.0)
		loss = 0.0;
	if (loss > 1.0)
		loss = 1.0;
	ppl = loss * 100.0;
	ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl);
	if (delay_ms < 0.0)
		delay_ms = 0.0;
	id = 0.024 * delay_ms;
	if (delay_ms > 177.3)
		id += 0.11 * (delay_ms - 177.3);
	r = 93.2 - id - ie_eff;
	if (r < 0.0)
		r = 0.0;
	if (r > 100.0)
		r = 100.0;
	return r;
}

/*
 * G.107 Annex B: MOS from R.  The cubic dips under 1 for R below about
 * 6.5 (found by fuzz_rtcp): no MOS is under 1.
 */
double
emodel_mos(double r)
{
	double mos;

	if (r <= 0.0)
		return 1.0;
	if (r >= 100.0)
		return 4.5;
	mos = 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6;
	return mos < 1.0 ? 1.0 : mos;
}

static double
quality_ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/*
 * Direction d of slot s.  Loss and jitter: the receiver's last report if
 * any came, else what the relay sees of the same media.  Delay: half the
 * round trip end to end (both directions' legs; one when only one is
 * known) plus a jitter buffer of twice the jitter.
 */
void
quality_dir(const struct shm_slot *s, int d, struct quality *o)
{
	const struct shm_dir	*dir = &s->dir[d];
	const struct shm_rtcpq	*q = &dir->q;
	double			 loss, jitter, rtt = 0.0;
	int			 k;

	memset(o, 0, sizeof(*o));
	o->rtt_samples = SHM_LOAD(&q->rtt_count);
	if (o->rtt_samples > 0) {
		o->rtt_ms = quality_ms(SHM_LOAD(&q->rtt_ns));
		o->rtt_avg_ms = quality_ms(SHM_LOAD(&q->rtt_sum_ns)) /
		    (double)o->rtt_samples;
		o->rtt_max_ms = quality_ms(SHM_LOAD(&q->rtt_max_ns));
	}
	o->reports = SHM_LOAD(&q->reports);
	o->srs = SHM_LOAD(&q->srs);
	o->report_ms = SHM_LOAD(&q->report_ms);
	o->pt = SHM_LOAD(&dir->pt);
	if (o->reports > 0) {
		o->rep_loss = (double)SHM_LOAD(&q->fraction_lost) / 256.0;
		o->rep_lost = SHM_LOAD(&q->cum_lost);
		o->rep_jitter_ms = quality_ms(SHM_LOAD(&q->jitter_ns));
		loss = o->rep_loss;
		jitter = o->rep_jitter_ms;
	} else if (SHM_LOAD(&dir->packets_expected) > 0) {
		loss = shm_loss_rate(dir);
		jitter = quality_ms(SHM_LOAD(&dir->jitter_ns));
	} else
		return;		/* nothing known of this direction */
	for (k = 0; k < 2; k++)
		if (SHM_LOAD(&s->dir[k].q.rtt_count) > 0)
			rtt += quality_ms(SHM_LOAD(&s->dir[k].q.rtt_ns));
	o->r = emodel_r(o->pt, loss, rtt / 2.0 + 2.0 * jitter);
	o->mos = emodel_mos(o->r);
}
