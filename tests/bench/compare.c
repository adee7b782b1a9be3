/*
 * rtpbench -C: rtpproxyd against the reference relay, one after the
 * other on the same core, with the same generator on another core.  For
 * each session count: the highest rate each sustains with under 0.1 %
 * loss (a ramp, then bisection), then both at one fixed rate for CPU per
 * packet, latency and memory.  rtpbench -F: a flood through each.
 */
#include <sys/types.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker.h"
#include "bench.h"

#define START_RATE	25000.0
#define MIN_RATE	1000.0
#define PRECISION	0.03	/* bisect until hi - lo is this much of lo */
#define MAX_STEPS	16
#define SEARCH_MAX_S	240	/* seconds, per search */
#define LOSS_MAX	0.001
#define OFFER_MIN	0.98	/* of the rate asked, or the bench fell short */
#define WAIT_MAX	0.03	/* run-queue wait, of the step: disturbed */
#define STEAL_MAX	0.20	/* stolen by the hypervisor: disturbed */
#define FOREIGN_MAX	0.05	/* busy while we are idle: not quiet */
#define QUIET_WAIT_S	120

/* What one step showed, kept. */
struct ssum {
	int		disturbed;
	double		rate, offered, loss, late;
	double		relay_busy, bench_load, steal;
	double		cpu_pkt, main_pkt, bench_pkt;
	uint64_t	bench_drops, sent, received;
};

/* One relay at one session count. */
struct sres {
	const char	*name;
	double		 max;
	int		 have_max, relay_failed;
	double		 ceiling;	/* the most the bench offered, short */
	struct ssum	 at_max, at_fail;
	int		 have_fail;
	int		 have_fixed, fixed_slices, fixed_tries;
	struct ssum	 fixed;
	double		 p50, p90, p99, p999;
	uint64_t	 rss_kb, rss_workers_kb;
	int		 nworkers;
	double		*pair;		/* rtpproxyd's: each pair's CPU ratio */
	int		 npairs;
};

/* Rates are kept to round hundreds. */
static double
round100(double x)
{
	return x < 100 ? 0 : (double)((uint64_t)(x / 100) * 100);
}

static void
sum_step(const struct step *s, struct ssum *m)
{
	memset(m, 0, sizeof(*m));
	m->rate = s->rate;
	m->offered = s->secs > 0 ? (double)s->sent / s->secs : 0;
	m->loss = step_loss(s);
	m->late = s->sent > 0 ? (double)s->late / (double)s->sent : 0;
	m->relay_busy = s->relay_busy;
	m->bench_load = s->bench_load;
	m->steal = s->relay_steal > s->bench_steal ? s->relay_steal :
	    s->bench_steal;
	m->cpu_pkt = s->received > 0 ? s->relay_cpu * 1e6 /
	    (double)s->received : 0;
	m->main_pkt = s->received > 0 ? s->relay_cpu_main * 1e6 /
	    (double)s->received : 0;
	m->bench_pkt = s->sent > 0 ? s->bench_cpu * 1e6 / (double)s->sent : 0;
	m->bench_drops = s->bench_drops;
	m->disturbed = s->disturbed;
	m->sent = s->sent;
	m->received = s->received;
}

/* The median of rtpproxyd's pair ratios, sorted; 0 without any. */
static double
pair_median(const struct sres *rp)
{
	int n = rp->npairs;

	if (n == 0)
		return 0;
	return n % 2 ? rp->pair[n / 2] :
	    (rp->pair[n / 2 - 1] + rp->pair[n / 2]) / 2;
}

/* The bench could not offer what was asked, or lost some itself. */
static int
bench_short(const struct step *s)
{
	return s->unsent > 0 || s->bench_drops > 0 ||
	    (s->rate > 0 && (double)s->sent < OFFER_MIN * s->rate * s->secs);
}

static void
progress(const char *name, int n, int k, const struct step *s, int pass)
{
	fprintf(stderr, "rtpbench: %-9s %5d sessions  %s %2d  %8.0f pkt/s "
	    "(burst %d): offered %8.0f, loss %.4f %% (late %.4f %%), relay core %3.0f %% "
	    "(its own %3.0f %%, waited %.1f %%), bench load %3.0f %% "
	    "(waited %.1f %%), steal %.0f/%.0f %%%s: %s%s\n", name, n,
	    k < 0 ? "fixed" : "step ", k < 0 ? -k : k, s->rate, s->burst, s->secs > 0 ? (double)s->sent / s->secs : 0,
	    100 * step_loss(s),
	    s->sent ? 100.0 * (double)s->late / (double)s->sent : 0,
	    100 * s->relay_busy, 100 * s->relay_cpu / s->secs,
	    100 * s->relay_wait / s->secs, 100 * s->bench_load,
	    100 * s->bench_wait / s->secs,
	    100 * s->relay_steal, 100 * s->bench_steal,
	    s->bench_drops ? ", bench dropped" : "",
	    pass ? "pass" : (bench_short(s) ? "bench short" : "fail"),
	    s->disturbed ? " (disturbed: other load)" : "");
}

static int
disturbed(const struct step *s)
{
	return s->relay_wait > WAIT_MAX * s->secs ||
	    s->bench_wait > WAIT_MAX * s->secs ||
	    s->relay_steal > STEAL_MAX || s->bench_steal > STEAL_MAX;
}

/*
 * Until neither core is busy while rtpbench and the relay idle: another
 * job on the machine would be measured with the relay.
 */
static void
wait_quiet(const struct bopts *o)
{
	struct corestat		 a[2], b[2];
	struct timespec		 ts = { 0, 300000000 };
	double			 busy[2], steal;
	int64_t			 until = mono_ns() + (int64_t)QUIET_WAIT_S *
				    1000000000;
	int			 told = 0;

	while (!bench_stop && mono_ns() < until) {
		core_sample(o->relay_cpu, &a[0]);
		core_sample(o->bench_cpu, &a[1]);
		nanosleep(&ts, NULL);
		core_sample(o->relay_cpu, &b[0]);
		core_sample(o->bench_cpu, &b[1]);
		core_delta(&a[0], &b[0], &busy[0], &steal);
		core_delta(&a[1], &b[1], &busy[1], &steal);
		if (busy[0] < FOREIGN_MAX && busy[1] < FOREIGN_MAX)
			return;
		if (!told++)
			fprintf(stderr, "rtpbench: other load on the CPUs "
			    "(%.0f %%, %.0f %%): waiting for it to end\n",
			    100 * busy[0], 100 * busy[1]);
	}
}

/*
 * A step of the search, measured again (after waiting for quiet) when it
 * failed while another job had the cores, judged by the run-queue wait of
 * the relay and of rtpbench and by steal.  A pass is a pass however
 * disturbed; a failure counts when it happens twice undisturbed, a short
 * bench once.  At most -T tries; the last one counts, marked disturbed if
 * it was.  -T 1: once, without waiting.
 */
static int
measure(struct gen *g, double rate, double secs, int burst,
    const struct target *t, const struct bopts *o, int n, int k,
    struct step *s)
{
	int try, fails = 0, pass;

	for (try = 0; try < o->tries; try++) {
		if (try > 0)
			wait_quiet(o);
		if (gen_step(g, rate, secs, burst, t, o, s) == -1)
			return -1;
		s->disturbed = disturbed(s);
		pass = step_loss(s) < LOSS_MAX && !bench_short(s);
		progress(t->name, n, k, s, pass);
		if (pass || (!s->disturbed && (bench_short(s) ||
		    ++fails == 2)))
			break;
	}
	return 0;
}

/*
 * Packets a stream sends at once in the search: what it sends in a
 * millisecond at this rate, 1 to -G.  A relay that keeps up with such a
 * stream finds that many on its socket at each wakeup anyway.
 */
static int
search_burst(const struct bopts *o, double rate, int nstreams)
{
	int b = (int)(rate / nstreams / 1000);

	return b < 1 ? 1 : b > o->burst ? o->burst : b;
}

/*
 * The highest rate with loss (lost or later than 50 ms) under 0.1 %:
 * from START_RATE doubling until a step fails, then bisection.  A step
 * the bench could not offer in full says nothing about the relay: it
 * caps the search instead.
 */
static int
search_max(struct gen *g, const struct target *t, const struct bopts *o,
    int n, struct sres *r)
{
	struct step	 s;
	double		 lo = 0, hi = 0, rate = START_RATE;
	int64_t		 until = mono_ns() + (int64_t)SEARCH_MAX_S * 1000000000;
	int		 k, pass;

	for (k = 1; k <= MAX_STEPS && mono_ns() < until; k++) {
		if (measure(g, rate, o->step_s, search_burst(o, rate,
		    gen_nstreams(g)), t, o, n, k, &s) == -1)
			return -1;
		pass = step_loss(&s) < LOSS_MAX && !bench_short(&s);
		if (pass) {
			lo = rate;
			r->max = rate;
			r->have_max = 1;
			sum_step(&s, &r->at_max);
		} else if (bench_short(&s)) {
			/* the bench's own limit: search below it */
			r->ceiling = (double)s.sent / s.secs;
			if (hi == 0 || r->ceiling * OFFER_MIN < hi)
				hi = r->ceiling * OFFER_MIN;
			if (hi <= lo)
				break;
		} else {
			hi = rate;
			r->relay_failed = 1;
			r->have_fail = 1;
			sum_step(&s, &r->at_fail);
		}
		if (hi == 0)
			rate = lo * 2;
		else if (lo == 0)
			rate = hi / 2;
		else if (hi - lo <= PRECISION * lo)
			break;
		else
			rate = (lo + hi) / 2;
		if (rate < MIN_RATE)
			break;
		rate = round100(rate);
	}
	return 0;
}

/* Add slice s to the sum a: counts and times add, shares weigh by time. */
static void
step_add(struct step *a, const struct step *s, struct hist *h)
{
	int i;

	a->rate = s->rate;
	a->burst = s->burst;
	a->disturbed |= s->disturbed;
	a->sent += s->sent;
	a->unsent += s->unsent;
	a->received += s->received;
	a->received_window += s->received_window;
	a->late += s->late;
	a->stale += s->stale;
	a->bench_drops += s->bench_drops;
	a->relay_cpu += s->relay_cpu;
	a->relay_cpu_main += s->relay_cpu_main;
	a->bench_cpu += s->bench_cpu;
	a->relay_wait += s->relay_wait;
	a->bench_wait += s->bench_wait;
	a->relay_busy = (a->relay_busy * a->secs + s->relay_busy * s->secs) /
	    (a->secs + s->secs);
	a->bench_load = (a->bench_load * a->secs + s->bench_load * s->secs) /
	    (a->secs + s->secs);
	if (s->relay_steal > a->relay_steal)
		a->relay_steal = s->relay_steal;
	if (s->bench_steal > a->bench_steal)
		a->bench_steal = s->bench_steal;
	a->secs += s->secs;
	a->after = s->after;
	for (i = 0; i < HIST_US; i++)
		h->b[i] += s->lat->b[i];
	for (i = 0; i <= HIST_MS; i++)
		h->ms[i] += s->lat->ms[i];
	h->n += s->lat->n;
	if (s->lat->max_ns > h->max_ns)
		h->max_ns = s->lat->max_ns;
	a->lat = h;
}

/* One relay's slices at the fixed rate, summed. */
struct fixed {
	struct sres	*r;
	struct step	 sum;
	struct hist	*h;
	int		 kept;
};

/* One slice of about a second at the fixed rate, packets one by one. */
static int
fixed_slice(struct gen *g, const struct target *t, const struct bopts *o,
    double rate, double slice, struct fixed *f, struct step *s)
{
	int n = gen_nstreams(g) / (o->bidir ? 2 : 1);

	if (gen_step(g, rate, slice, 1, t, o, s) == -1)
		return -1;
	s->disturbed = disturbed(s);
	progress(t->name, n, -f->kept - 1, s, step_loss(s) < LOSS_MAX &&
	    !bench_short(s));
	return 0;
}

static void
fixed_end(struct fixed *f, int tries)
{
	struct sres	*r = f->r;
	int		 i;

	r->fixed_slices = f->kept;
	r->fixed_tries = tries;
	sum_step(&f->sum, &r->fixed);
	r->have_fixed = 1;
	r->p50 = hist_pct(f->h, 50);
	r->p90 = hist_pct(f->h, 90);
	r->p99 = hist_pct(f->h, 99);
	r->p999 = hist_pct(f->h, 99.9);
	r->rss_kb = f->sum.after.n > 0 ? f->sum.after.rss_kb[0] : 0;
	r->rss_workers_kb = 0;
	for (i = 1; i < f->sum.after.n; i++)
		r->rss_workers_kb += f->sum.after.rss_kb[i];
	r->nworkers = f->sum.after.n > 0 ? f->sum.after.n - 1 : 0;
	free(f->h);
	f->h = NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * The fixed rate on both relays, both up at once, in pairs of slices of
 * about a second: one to each relay, the order alternating from pair to
 * pair.  Whatever drifts on the machine (a neighbour on the host, the
 * frequency) then weighs on both alike, where one run after the other
 * would put it into the ratio.  A pair in which another job had the cores
 * is measured again after waiting for quiet (up to -T tries for each pair
 * of -d), so that a compile that comes and goes costs a pair, not the
 * measurement.  Each pair's ratio of CPU per packet goes to rp->pair[].
 */
static int
fixed_pairs(struct gen *gref, const struct target *tref, struct gen *grp,
    const struct target *trp, const struct bopts *o, double rate,
    struct sres *ref, struct sres *rp)
{
	struct fixed	 f[2];
	struct step	 s[2];
	double		 slice, a, b;
	int		 want, tries = 0, i, j, rc = -1, dist = 0;

	want = (int)(o->secs + 0.5);
	if (want < 1)
		want = 1;
	slice = o->secs / want;
	memset(f, 0, sizeof(f));
	f[0].r = ref;
	f[1].r = rp;
	f[0].h = xcalloc(1, sizeof(*f[0].h));
	f[1].h = xcalloc(1, sizeof(*f[1].h));
	rp->pair = xcalloc((size_t)want, sizeof(*rp->pair));
	while (f[0].kept < want && tries < want * o->tries) {
		if (o->tries > 1 && (tries == 0 || dist))
			wait_quiet(o);
		tries++;
		for (i = 0; i < 2; i++) {
			/* rtpproxyd first in even pairs, the reference in odd */
			j = (f[0].kept + i + 1) % 2;
			if (fixed_slice(j ? grp : gref, j ? trp : tref, o,
			    rate, slice, &f[j], &s[j]) == -1)
				goto out;
		}
		dist = s[0].disturbed || s[1].disturbed;
		/* the last chances are kept, disturbed or not */
		if (dist && o->tries > 1 &&
		    want * o->tries - tries >= want - f[0].kept)
			continue;
		a = s[0].received > 0 ? s[0].relay_cpu /
		    (double)s[0].received : 0;
		b = s[1].received > 0 ? s[1].relay_cpu /
		    (double)s[1].received : 0;
		rp->pair[rp->npairs++] = a > 0 ? b / a : 0;
		for (i = 0; i < 2; i++) {
			step_add(&f[i].sum, &s[i], f[i].h);
			f[i].kept++;
		}
	}
	qsort(rp->pair, (size_t)rp->npairs, sizeof(*rp->pair), cmp_double);
	rc = 0;
out:
	for (i = 0; i < 2; i++) {
		if (rc == 0)
			fixed_end(&f[i], tries);
		free(f[i].h);
	}
	return rc;
}

/* A relay up with n sessions that all relay. */
static int
bring_up(struct target *t, int kind, const struct bopts *o, struct gen *g,
    struct bsession *bs, int n)
{
	struct sockaddr_storage	dest;
	socklen_t		destlen;

	if (target_start(t, kind, kind == T_REF ? o->refrelay : o->rtpproxyd,
	    o, n) == -1)
		return -1;
	gen_addr(g, 1, &dest, &destlen);
	if (target_sessions(t, o->addr, &dest, destlen, bs, n) == -1)
		return -1;
	gen_set_sessions(g, bs, n, o->bidir);
	return gen_warmup(g);
}

static const char *
limit_of(const struct sres *r, char *buf, size_t len)
{
	if (!r->have_max)
		snprintf(buf, len, "nothing passed");
	else if (!r->relay_failed)
		snprintf(buf, len, "BENCH");
	else
		snprintf(buf, len, "relay");
	return buf;
}

/* "0.73x", "<= 0.73x" when the reference's figure is only a floor... */
static const char *
max_ratio(const struct sres *ref, const struct sres *rp, char *buf,
    size_t len)
{
	int	 rb = !ref->relay_failed, pb = !rp->relay_failed;
	double	 x;

	if (!ref->have_max || !rp->have_max || (rb && pb)) {
		snprintf(buf, len, "n/a");
		return buf;
	}
	x = rp->max / ref->max;
	snprintf(buf, len, "%s%.2fx", rb ? "<= " : pb ? ">= " : "", x);
	return buf;
}

static void
fail_cell(const struct sres *r, char *buf, size_t len)
{
	if (r->have_fail)
		snprintf(buf, len, "%.0f (%.0f %%)", r->at_fail.rate,
		    100 * r->at_fail.relay_busy);
	else
		snprintf(buf, len, "-");
}

static void
print_mib(const struct sres *r, char *buf, size_t len)
{
	if (r->nworkers > 0)
		snprintf(buf, len, "%.1f + %.1f MiB", (double)r->rss_kb / 1024,
		    (double)r->rss_workers_kb / 1024);
	else
		snprintf(buf, len, "%.1f MiB", (double)r->rss_kb / 1024);
}

static void
print_count(const struct bopts *o, int n, const struct sres *ref,
    const struct sres *rp, double fixed)
{
	char	a[64], b[64];

	printf("\n== %d sessions, %s, %d-byte payload; relays on CPU %d, "
	    "rtpbench on CPU %d\n", n, o->bidir ? "both ways" : "one way",
	    o->payload, o->relay_cpu, o->bench_cpu);
	printf("%-26s %16s %16s   %s\n", "", "reference", "rtpproxyd",
	    "rtpproxyd/reference");
	if (o->rate == 0) {
		printf("%-26s %16.0f %16.0f   %s\n", "max pkt/s, loss < 0.1 %",
		    ref->max, rp->max, max_ratio(ref, rp, a, sizeof(a)));
		printf("%-26s %16s", "  limited by", limit_of(ref, a,
		    sizeof(a)));
		printf(" %16s\n", limit_of(rp, b, sizeof(b)));
		if (ref->ceiling > 0 || rp->ceiling > 0)
			printf("%-26s %16.0f %16.0f   (0: it never fell "
			    "short)\n", "  most the bench offered",
			    ref->ceiling, rp->ceiling);
		printf("%-26s %14.0f %% %14.0f %%\n", "  relay core at max",
		    100 * ref->at_max.relay_busy, 100 * rp->at_max.relay_busy);
		printf("%-26s %14.0f %% %14.0f %%\n", "  bench load at max",
		    100 * ref->at_max.bench_load, 100 * rp->at_max.bench_load);
		if (ref->have_fail || rp->have_fail) {
			fail_cell(ref, a, sizeof(a));
			fail_cell(rp, b, sizeof(b));
			printf("%-26s %16s %16s   (relay core busy)\n",
			    "  lowest failed rate", a, b);
		}
	}
	printf("%-26s %16.0f %16.0f   %s\n", "fixed rate, pkt/s", fixed, fixed,
	    o->rate > 0 ? "(-R)" : "(half the lower max)");
	printf("%-26s %9d of %-4d %9d of %-4d  (1 s slices kept of measured)\n",
	    "  slices", ref->fixed_slices, ref->fixed_tries, rp->fixed_slices,
	    rp->fixed_tries);
	printf("%-26s %13.2f us %13.2f us   %.2fx\n", "  CPU per packet",
	    ref->fixed.cpu_pkt, rp->fixed.cpu_pkt, ref->fixed.cpu_pkt > 0 ?
	    rp->fixed.cpu_pkt / ref->fixed.cpu_pkt : 0);
	if (rp->npairs > 0)
		printf("%-26s %16s %16s   %.2fx / %.2fx / %.2fx (%d pairs)\n",
		    "    each pair of slices", "", "min / median / max",
		    rp->pair[0], pair_median(rp), rp->pair[rp->npairs - 1],
		    rp->npairs);
	printf("%-26s %16s %13.2f us   (the rest: the worker)\n",
	    "    of which the master", "", rp->fixed.main_pkt);
	printf("%-26s %14.0f %% %14.0f %%\n", "  relay core busy",
	    100 * ref->fixed.relay_busy, 100 * rp->fixed.relay_busy);
	printf("%-26s %13.0f us %13.0f us   %+.0f us\n", "  latency p50",
	    ref->p50, rp->p50, rp->p50 - ref->p50);
	printf("%-26s %13.0f us %13.0f us   %+.0f us\n", "  latency p90",
	    ref->p90, rp->p90, rp->p90 - ref->p90);
	printf("%-26s %13.0f us %13.0f us   %+.0f us\n", "  latency p99",
	    ref->p99, rp->p99, rp->p99 - ref->p99);
	printf("%-26s %13.0f us %13.0f us   %+.0f us\n", "  latency p99.9",
	    ref->p999, rp->p999, rp->p999 - ref->p999);
	printf("%-26s %14.4f %% %14.4f %%\n", "  loss", 100 * ref->fixed.loss,
	    100 * rp->fixed.loss);
	print_mib(ref, a, sizeof(a));
	print_mib(rp, b, sizeof(b));
	printf("%-26s %16s %16s   %s\n", "  RSS", a, b,
	    "(rtpproxyd: master + worker)");
	printf("%-26s %14.0f %% %14.0f %%\n", "  bench load",
	    100 * ref->fixed.bench_load, 100 * rp->fixed.bench_load);
	printf("%-26s %13.2f us %13.2f us\n", "  bench CPU per packet",
	    ref->fixed.bench_pkt, rp->fixed.bench_pkt);
	if (ref->fixed.steal > 0.02 || rp->fixed.steal > 0.02)
		printf("%-26s %14.0f %% %14.0f %%   (the hypervisor took "
		    "CPU time)\n", "  steal", 100 * ref->fixed.steal,
		    100 * rp->fixed.steal);
	if (ref->fixed.disturbed || rp->fixed.disturbed ||
	    ref->at_max.disturbed || rp->at_max.disturbed)
		printf("NOTE: other load shared the CPUs during some of these "
		    "measurements, even after %d tries: see the steps\n",
		    o->tries);
	printf("ratios (rtpproxyd/reference) at %d sessions: max pkt/s %s, "
	    "CPU per packet %.2fx, p50 %+.0f us, p99 %+.0f us\n", n,
	    o->rate > 0 ? "n/a" : max_ratio(ref, rp, a, sizeof(a)),
	    ref->fixed.cpu_pkt > 0 ? rp->fixed.cpu_pkt / ref->fixed.cpu_pkt :
	    0, rp->p50 - ref->p50, rp->p99 - ref->p99);
	if (o->rate == 0 && (!ref->relay_failed || !rp->relay_failed))
		printf("NOTE: the bench was the bottleneck for %s: it could "
		    "not offer more than %.0f pkt/s while that relay kept up;"
		    " its max is a floor and the max ratio is bounded, not "
		    "measured\n", !ref->relay_failed && !rp->relay_failed ?
		    "both relays" : !ref->relay_failed ? "the reference" :
		    "rtpproxyd", !ref->relay_failed ? ref->ceiling :
		    rp->ceiling);
	if (ref->fixed.bench_load > 0.95 || rp->fixed.bench_load > 0.95)
		printf("NOTE: the bench core was saturated at the fixed "
		    "rate: latency and CPU figures are suspect\n");
	fflush(stdout);
}

static void
print_summary(const struct bopts *o, const struct sres *ref,
    const struct sres *rp)
{
	char		 a[64];
	double		 x, worst_max = 1e9, worst_cpu = 0, worst_p50 = -1e9;
	double		 fr = 0, fp = 0, lo_r = 1e9, hi_r = 0, lo_p = 1e9;
	double		 hi_p = 0;
	int		 i, bounded = 0;

	printf("\n== summary, rtpproxyd / reference\n");
	printf("%8s %16s %14s %10s %14s %14s %14s\n", "sessions", "max pkt/s",
	    "CPU/packet", "p50", "ref CPU/pkt", "rtpp CPU/pkt",
	    "pair median");
	for (i = 0; i < o->ncounts; i++) {
		x = ref[i].fixed.cpu_pkt > 0 ? rp[i].fixed.cpu_pkt /
		    ref[i].fixed.cpu_pkt : 0;
		printf("%8d %16s %13.2fx %+7.0f us %11.2f us %11.2f us "
		    "%13.2fx\n", o->counts[i], o->rate > 0 ? "n/a" :
		    max_ratio(&ref[i], &rp[i], a, sizeof(a)), x,
		    rp[i].p50 - ref[i].p50, ref[i].fixed.cpu_pkt,
		    rp[i].fixed.cpu_pkt, pair_median(&rp[i]));
		if (o->rate == 0 && ref[i].have_max && rp[i].have_max) {
			if (!ref[i].relay_failed || !rp[i].relay_failed)
				bounded++;
			if (rp[i].max / ref[i].max < worst_max)
				worst_max = rp[i].max / ref[i].max;
		}
		if (x > worst_cpu)
			worst_cpu = x;
		if (rp[i].p50 - ref[i].p50 > worst_p50)
			worst_p50 = rp[i].p50 - ref[i].p50;
		if (ref[i].fixed.cpu_pkt < lo_r)
			lo_r = ref[i].fixed.cpu_pkt;
		if (ref[i].fixed.cpu_pkt > hi_r)
			hi_r = ref[i].fixed.cpu_pkt;
		if (rp[i].fixed.cpu_pkt < lo_p)
			lo_p = rp[i].fixed.cpu_pkt;
		if (rp[i].fixed.cpu_pkt > hi_p)
			hi_p = rp[i].fixed.cpu_pkt;
	}
	if (lo_r > 0)
		fr = hi_r / lo_r;
	if (lo_p > 0)
		fp = hi_p / lo_p;
	printf("CPU per packet, highest / lowest over the session counts: "
	    "reference %.2fx, rtpproxyd %.2fx\n", fr, fp);
	/* What rtpproxyd adds: the part that is its own, not the kernel's. */
	printf("rtpproxyd's CPU per packet over the reference's:");
	for (i = 0; i < o->ncounts; i++)
		printf(" %+.2f us at %d%s", rp[i].fixed.cpu_pkt -
		    ref[i].fixed.cpu_pkt, o->counts[i],
		    i + 1 < o->ncounts ? "," : " sessions\n");
	printf("targets: max pkt/s >= 0.90x: %s (worst %.3fx%s); "
	    "CPU/packet <= 1.15x: %s (worst %.3fx); p50 <= +20 us: %s "
	    "(worst %+.0f us); flat CPU/packet (here: within 15 %%): %s "
	    "(%.3fx)\n",
	    o->rate > 0 ? "not measured" : worst_max >= 0.9 ? "met" : "MISSED",
	    o->rate > 0 ? 0 : worst_max, bounded ? ", some bounded by the "
	    "bench" : "", worst_cpu <= 1.15 ? "met" : "MISSED", worst_cpu,
	    worst_p50 <= 20 ? "met" : "MISSED", worst_p50,
	    fp <= 1.15 ? "met" : "MISSED", fp);
}

int
compare_run(const struct bopts *o)
{
	struct target	 tr, tp;
	struct gen	*gr, *gp;
	struct bsession	*br = NULL, *bp = NULL;
	struct sres	 ref[16], rp[16];
	double		 fixed;
	int		 i, n, rc = 1;

	memset(ref, 0, sizeof(ref));
	memset(rp, 0, sizeof(rp));
	memset(&tr, 0, sizeof(tr));
	memset(&tp, 0, sizeof(tp));
	/* one generator each, so that both relays can be up at once */
	gr = gen_new(o->addr, o->payload, o->bidir);
	gp = gen_new(o->addr, o->payload, o->bidir);
	if (gr == NULL || gp == NULL)
		goto out;
	for (i = 0; i < o->ncounts && !bench_stop; i++) {
		n = o->counts[i];
		br = xcalloc((size_t)n, sizeof(*br));
		bp = xcalloc((size_t)n, sizeof(*bp));
		ref[i].name = "reference";
		rp[i].name = "rtpproxyd";
		if (o->rate == 0) {
			if (bring_up(&tr, T_REF, o, gr, br, n) == -1 ||
			    search_max(gr, &tr, o, n, &ref[i]) == -1)
				goto fail;
			target_stop(&tr);
		}
		if (bring_up(&tp, T_RTPP, o, gp, bp, n) == -1)
			goto fail;
		if (o->rate == 0) {
			if (search_max(gp, &tp, o, n, &rp[i]) == -1)
				goto fail;
			fixed = ref[i].max < rp[i].max ? ref[i].max : rp[i].max;
			fixed = round100(fixed / 2);
			if (fixed < MIN_RATE)
				fixed = MIN_RATE;
		} else
			fixed = o->rate;
		if (bring_up(&tr, T_REF, o, gr, br, n) == -1 ||
		    fixed_pairs(gr, &tr, gp, &tp, o, fixed, &ref[i],
		    &rp[i]) == -1)
			goto fail;
		target_stop(&tr);
		target_stop(&tp);
		free(br);
		free(bp);
		br = bp = NULL;
		print_count(o, n, &ref[i], &rp[i], fixed);
		continue;
fail:
		target_stop(&tr);
		target_stop(&tp);
		goto out;
	}
	if (!bench_stop) {
		print_summary(o, ref, rp);
		rc = 0;
	}
out:
	free(br);
	free(bp);
	for (i = 0; i < o->ncounts; i++)
		free(rp[i].pair);
	if (gr != NULL)
		gen_free(gr);
	if (gp != NULL)
		gen_free(gp);
	return rc;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* As fast as rtpbench can send, n streams through one relay. */
static int
flood_one(int kind, const struct bopts *o, struct gen *g, double *pps)
{
	struct target	 t;
	struct bsession	*bs;
	struct step	 s;
	uint64_t	*got;
	int		 i, ns, none = 0, n = o->sessions, rc = -1;

	memset(&t, 0, sizeof(t));
	if ((bs = calloc((size_t)n, sizeof(*bs))) == NULL)
		return -1;
	if (bring_up(&t, kind, o, g, bs, n) == -1 ||
	    gen_step(g, 0, o->secs, o->burst, &t, o, &s) == -1)
		goto out;
	ns = gen_nstreams(g);
	if ((got = calloc((size_t)ns, sizeof(*got))) == NULL)
		goto out;
	for (i = 0; i < ns; i++)
		if ((got[i] = gen_stream_got(g, i)) == 0)
			none++;
	qsort(got, (size_t)ns, sizeof(*got), cmp_u64);
	*pps = (double)s.received_window / s.secs;
	printf("\n== flood: %d streams as fast as possible (bursts of %d) for "
	    "%.1f s through %s (CPU %d), rtpbench on CPU %d\n", ns, s.burst,
	    s.secs, t.name, o->relay_cpu, o->bench_cpu);
	printf("offered     %10.0f pkt/s (rtpbench's load %.0f %%)\n",
	    (double)s.sent / s.secs, 100 * s.bench_load);
	printf("delivered   %10.0f pkt/s while sending (%.1f %% of offered), "
	    "relay core %.0f %% busy, %.0f %% stolen\n", *pps, s.sent ?
	    100.0 * (double)s.received_window / (double)s.sent : 0,
	    100 * s.relay_busy, 100 * s.relay_steal);
	printf("per stream  min %" PRIu64 "  p10 %" PRIu64 "  median %"
	    PRIu64 "  max %" PRIu64 " packets delivered; %d of %d got "
	    "nothing\n", got[0], got[ns / 10], got[ns / 2], got[ns - 1],
	    none, ns);
	printf("latency     p50 %.0f us  p99 %.0f us  max %.0f us "
	    "(of what arrived)\n", hist_pct(s.lat, 50), hist_pct(s.lat, 99),
	    (double)s.lat->max_ns / 1000);
	if (s.bench_drops > 0)
		printf("NOTE: rtpbench's own sockets dropped %" PRIu64
		    " packets: delivered is a floor\n", s.bench_drops);
	fflush(stdout);
	free(got);
	rc = 0;
out:
	target_stop(&t);
	free(bs);
	return rc;
}

int
flood_run(const struct bopts *o)
{
	struct gen	*g;
	double		 ref = 0, rp = 0;
	int		 rc = 0;

	if ((g = gen_new(o->addr, o->payload, o->bidir)) == NULL)
		return 1;
	if (o->refrelay != NULL && flood_one(T_REF, o, g, &ref) == -1)
		rc = 1;
	if (rc == 0 && !bench_stop && o->rtpproxyd != NULL &&
	    flood_one(T_RTPP, o, g, &rp) == -1)
		rc = 1;
	if (rc == 0 && ref > 0 && rp > 0)
		printf("flood ratio (rtpproxyd/reference): delivered %.2fx\n",
		    rp / ref);
	gen_free(g);
	return rc || bench_stop;
}
