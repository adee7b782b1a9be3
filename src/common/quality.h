/*
 * A direction's call quality as replies and metrics show it: what RTCP
 * reported about it (RFC 3550 6.4, read by the worker into the slot) and
 * a MOS from a simplified ITU-T G.107 E-model.
 */
#ifndef RTPPROXYD_QUALITY_H
#define RTPPROXYD_QUALITY_H

#include <stdint.h>

#include "shm.h"

struct quality {
	double		rtt_ms, rtt_avg_ms, rtt_max_ms;	/* 0: none */
	uint64_t	rtt_samples;
	double		rep_loss;	/* fraction lost, 0..1 */
	int64_t		rep_lost;	/* cumulative */
	double		rep_jitter_ms;
	uint64_t	reports, srs;
	int64_t		report_ms;	/* 0: no report */
	uint32_t	pt;
	double		mos, r;		/* 0: unknown */
};

double	emodel_r(uint32_t, double, double);
double	emodel_mos(double);
void	quality_dir(const struct shm_slot *, int, struct quality *);

#endif
