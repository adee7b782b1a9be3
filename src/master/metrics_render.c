/*
 * The text of a scrape, in the Prometheus exposition format 0.0.4, from
 * one pass over the session table and the table-wide counters; metrics.c
 * serves it.  The families and what they mean are in rtpproxyd(8).
 */
#include <sys/queue.h>

#include <event2/buffer.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "api.h"
#include "apigate.h"
#include "master.h"
#include "repl.h"
#include "sessions.h"

static const char *const metrics_dirname[2] = { "forward", "reverse" };

/* The buckets of the call quality histograms, over sessions. */
static const double metrics_rtt_le[] = { 0.005, 0.01, 0.02, 0.05, 0.1,
    0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0 };
static const double metrics_mos_le[] = { 1.5, 2.0, 2.5, 3.0, 3.5, 3.8,
    4.0, 4.2, 4.4, 4.5 };
#define METRICS_RTT_N	(sizeof(metrics_rtt_le) / sizeof(double))
#define METRICS_MOS_N	(sizeof(metrics_mos_le) / sizeof(double))

static void	metrics_double(struct evbuffer *, double);

/* One direction's histogram over sessions: counts per bucket, sum. */
struct metrics_hist {
	uint64_t	n[16];		/* the last: above every bound */
	double		sum;
};

static void
metrics_hist_add(struct metrics_hist *h, const double *le, size_t nle,
    double v)
{
	size_t k;

	for (k = 0; k < nle && v > le[k]; k++)
		;
	h->n[k]++;
	h->sum += v;
}

static void
metrics_hist(struct evbuffer *b, const char *name, const char *help,
    const struct metrics_hist *h, const double *le, size_t nle)
{
	uint64_t	cum;
	size_t		k;
	int		d;

	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name,
	    help, name);
	for (d = 0; d < 2; d++) {
		cum = 0;
		for (k = 0; k < nle; k++) {
			cum += h[d].n[k];
			evbuffer_add_printf(b, "%s_bucket{direction=\"%s\","
			    "le=\"%g\"} %llu\n", name, metrics_dirname[d],
			    le[k], (unsigned long long)cum);
		}
		cum += h[d].n[nle];
		evbuffer_add_printf(b, "%s_bucket{direction=\"%s\",le=\"+Inf\"} "
		    "%llu\n", name, metrics_dirname[d],
		    (unsigned long long)cum);
		evbuffer_add_printf(b, "%s_sum{direction=\"%s\"} ", name,
		    metrics_dirname[d]);
		metrics_double(b, h[d].sum);
		evbuffer_add_printf(b, "%s_count{direction=\"%s\"} %llu\n",
		    name, metrics_dirname[d], (unsigned long long)cum);
	}
}

static void
metrics_family(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

static void
metrics_double(struct evbuffer *b, double v)
{
	if (isnan(v))
		evbuffer_add_printf(b, "NaN\n");
	else if (isinf(v))
		evbuffer_add_printf(b, "%sInf\n", v < 0 ? "-" : "+");
	else
		evbuffer_add_printf(b, "%.15g\n", v);
}

/* Heapsort's sift-down of v[root] within v[0 .. n - 1]. */
static void
metrics_sift(double *v, size_t root, size_t n)
{
	size_t	child;
	double	t;

	for (; (child = 2 * root + 1) < n; root = child) {
		if (child + 1 < n && v[child + 1] > v[child])
			child++;
		if (v[root] >= v[child])
			break;
		t = v[root];
		v[root] = v[child];
		v[child] = t;
	}
}

/* In place, no allocation: a scrape allocates only its reply. */
static void
metrics_sort(double *v, size_t n)
{
	size_t	i, end;
	double	t;

	if (n < 2)
		return;
	for (i = n / 2; i-- > 0; )
		metrics_sift(v, i, n);
	for (end = n - 1; end > 0; end--) {
		t = v[0];
		v[0] = v[end];
		v[end] = t;
		metrics_sift(v, 0, end);
	}
}

/* A summary over sorted values: nearest-rank quantiles, sum, count. */
static void
metrics_summary(struct evbuffer *b, const char *name, int d, double *v,
    size_t n)
{
	static const char *const qs[] = { "0.5", "0.9", "0.99" };
	static const double qv[] = { 0.5, 0.9, 0.99 };
	double	sum = 0.0;
	size_t	i, k;

	metrics_sort(v, n);
	for (i = 0; i < n; i++)
		sum += v[i];
	for (i = 0; i < 3; i++) {
		evbuffer_add_printf(b, "%s{direction=\"%s\",quantile=\"%s\"} ",
		    name, metrics_dirname[d], qs[i]);
		if (n == 0) {
			metrics_double(b, NAN);
			continue;
		}
		k = (size_t)ceil(qv[i] * (double)n);
		metrics_double(b, v[k > 0 ? k - 1 : 0]);
	}
	evbuffer_add_printf(b, "%s_sum{direction=\"%s\"} ", name,
	    metrics_dirname[d]);
	metrics_double(b, sum);
	evbuffer_add_printf(b, "%s_count{direction=\"%s\"} %zu\n", name,
	    metrics_dirname[d], n);
}

static void
metrics_sessions(struct evbuffer *b, const struct master *m,
    const uint64_t *nstate)
{
	struct shm_header	*h = m->shm.hdr;
	char			 reason[32], *p;
	uint32_t		 st;
	size_t			 i;

	metrics_family(b, "rtpproxyd_sessions", "gauge", "Sessions by state; "
	    "closing: closed, its worker still letting go of it.");
	for (st = SHM_CREATED; st <= SHM_CLOSED; st++)
		evbuffer_add_printf(b, "rtpproxyd_sessions{state=\"%s\"} %llu\n",
		    st == SHM_CLOSED ? "closing" : shm_state_name(st),
		    (unsigned long long)nstate[st]);
	metrics_family(b, "rtpproxyd_sessions_max", "gauge",
	    "The configured max-sessions.");
	evbuffer_add_printf(b, "rtpproxyd_sessions_max %u\n",
	    m->conf->max_sessions);
	metrics_family(b, "rtpproxyd_sessions_created_total", "counter",
	    "Sessions created.");
	evbuffer_add_printf(b, "rtpproxyd_sessions_created_total %llu\n",
	    (unsigned long long)SHM_LOAD(&h->sessions_created));
	metrics_family(b, "rtpproxyd_sessions_closed_total", "counter",
	    "Sessions closed, by reason.");
	for (i = 0; i < SHM_CLOSE_N; i++) {
		snprintf(reason, sizeof(reason), "%s",
		    shm_close_name((enum shm_close)i));
		for (p = reason; *p != '\0'; p++)
			if (*p == ' ')
				*p = '_';
		evbuffer_add_printf(b,
		    "rtpproxyd_sessions_closed_total{reason=\"%s\"} %llu\n",
		    reason, (unsigned long long)SHM_LOAD(&h->closed_by[i]));
	}
}

/* Recording: the live slots' figures on top of the freed ones'. */
struct metrics_rec {
	uint64_t	active, failed, packets, dropped;
};

static void
metrics_rec_add(struct metrics_rec *r, const struct shm_slot *s)
{
	uint32_t st = SHM_LOAD(&s->rec.state);

	r->active += st == SHM_REC_ACTIVE;
	r->failed += st == SHM_REC_FAILED;
	r->packets += SHM_LOAD(&s->rec.packets);
	r->dropped += SHM_LOAD(&s->rec.dropped);
}

static void
metrics_recording(struct evbuffer *b, const struct metrics_rec *r)
{
	metrics_family(b, "rtpproxyd_recordings", "gauge", "Sessions "
	    "recording now (active), and whose recording failed (failed: "
	    "their media flows on unrecorded).");
	evbuffer_add_printf(b, "rtpproxyd_recordings{state=\"active\"} "
	    "%llu\n", (unsigned long long)r->active);
	evbuffer_add_printf(b, "rtpproxyd_recordings{state=\"failed\"} "
	    "%llu\n", (unsigned long long)r->failed);
	metrics_family(b, "rtpproxyd_recorded_packets_total", "counter",
	    "Packets written to recordings.");
	evbuffer_add_printf(b, "rtpproxyd_recorded_packets_total %llu\n",
	    (unsigned long long)r->packets);
	metrics_family(b, "rtpproxyd_recording_dropped_packets_total",
	    "counter", "Packets relayed but not recorded: the writer was "
	    "behind (a slow disk) and its queue full.");
	evbuffer_add_printf(b, "rtpproxyd_recording_dropped_packets_total "
	    "%llu\n", (unsigned long long)r->dropped);
}

/* The counters' families, by kind; then one of every reason to drop. */
static void
metrics_traffic(struct evbuffer *b, const struct shm_totals *t,
    struct metrics_view *v)
{
	const struct shm_counter	*c;
	enum shm_counter_kind		 k;
	uint64_t			 lost;
	int				 i, d;

	for (k = SHM_CK_TRAFFIC; k < SHM_CK_DROP; k++)
		for (i = 0; i < SHM_C_N; i++) {
			if ((c = &shm_counters[i])->kind != k)
				continue;
			metrics_family(b, c->metric, "counter", c->help);
			for (d = 0; d < 2; d++)
				evbuffer_add_printf(b, "%s{direction=\"%s\"} "
				    "%llu\n", c->metric, metrics_dirname[d],
				    (unsigned long long)shm_totals_get(&t[d],
				    i));
		}
	metrics_family(b, "rtpproxyd_dropped_packets_total", "counter",
	    "Datagrams dropped on the sessions' RTP and RTCP sockets, by "
	    "reason.");
	for (d = 0; d < 2; d++)
		for (i = 0; i < SHM_C_N; i++) {
			if ((c = &shm_counters[i])->kind != SHM_CK_DROP)
				continue;
			evbuffer_add_printf(b, "rtpproxyd_dropped_packets_total"
			    "{direction=\"%s\",reason=\"%s\"} %llu\n",
			    metrics_dirname[d], c->metric,
			    (unsigned long long)shm_totals_get(&t[d], i));
		}
	/*
	 * RFC 3550's cumulative loss goes back when duplicates or late
	 * packets arrive; a counter must not, so it holds its highest.
	 */
	metrics_family(b, "rtpproxyd_rtp_lost_packets_total", "counter",
	    "RTP packets lost (RFC 3550 A.3); where duplicates or late "
	    "packets lower the figure, this holds its highest value.");
	for (d = 0; d < 2; d++) {
		lost = t[d].packets_lost > 0 ? (uint64_t)t[d].packets_lost : 0;
		if (lost < v->lost_seen[d])
			lost = v->lost_seen[d];
		v->lost_seen[d] = lost;
		evbuffer_add_printf(b, "rtpproxyd_rtp_lost_packets_total"
		    "{direction=\"%s\"} %llu\n", metrics_dirname[d],
		    (unsigned long long)lost);
	}
}

/* The per-worker histograms, summed; cumulative "le" buckets. */
static void
metrics_latency(struct evbuffer *b, const struct master *m)
{
	const char	*name = "rtpproxyd_relay_latency_seconds";
	uint64_t	 hist[SHM_LAT_BUCKETS], sum_ns = 0, cum = 0;
	int		 i, k;

	memset(hist, 0, sizeof(hist));
	for (i = 0; i < m->nworkers && i < SHM_MAX_WORKERS; i++) {
		const struct shm_worker *w = &m->shm.hdr->workers[i];

		for (k = 0; k < SHM_LAT_BUCKETS; k++)
			hist[k] += SHM_LOAD(&w->lat_hist[k]);
		sum_ns += SHM_LOAD(&w->lat_sum_ns);
	}
	metrics_family(b, name, "histogram", "In-proxy latency of relayed "
	    "RTP and RTCP packets, from the kernel's receive timestamp to "
	    "after the send.");
	for (k = 0; k < SHM_LAT_BUCKETS - 1; k++) {
		cum += hist[k];
		evbuffer_add_printf(b, "%s_bucket{le=\"%.6f\"} %llu\n", name,
		    (double)(1u << k) / 1e6, (unsigned long long)cum);
	}
	cum += hist[SHM_LAT_BUCKETS - 1];
	evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long)cum);
	evbuffer_add_printf(b, "%s_sum %llu.%09llu\n", name,
	    (unsigned long long)(sum_ns / 1000000000u),
	    (unsigned long long)(sum_ns % 1000000000u));
	/* From the buckets, so that it is the +Inf bucket exactly. */
	evbuffer_add_printf(b, "%s_count %llu\n", name,
	    (unsigned long long)cum);
}

static void
metrics_grpc(struct evbuffer *b, const struct shm_header *h)
{
	const char	*path, *slash;
	int		 i, k, slen;

	/* Every series, zeros too: rate() sees the first error. */
	metrics_family(b, "rtpproxyd_grpc_calls_total", "counter",
	    "gRPC calls finished, by service, method and status code.");
	for (i = 0; i < SHM_GRPC_METHODS; i++) {
		path = grpcsvc_method_path(i);
		if (path == NULL || *path != '/' ||
		    (slash = strchr(path + 1, '/')) == NULL) {
			path = "/unknown/unknown";
			slash = path + 8;
		}
		slen = (int)(slash - path - 1);
		for (k = 0; k < SHM_GRPC_CODES; k++)
			evbuffer_add_printf(b, "rtpproxyd_grpc_calls_total"
			    "{grpc_service=\"%.*s\",grpc_method=\"%s\","
			    "grpc_code=\"%s\"} %llu\n", slen, path + 1,
			    slash + 1, rp_code_name(k), (unsigned long long)
			    SHM_LOAD(&h->grpc_calls[i][k]));
	}
}

static void
metrics_processes(struct evbuffer *b, const struct master *m,
    const struct metrics_view *v)
{
	const struct shm_header	*h = m->shm.hdr;
	int			 i;

	metrics_family(b, "rtpproxyd_build_info", "gauge",
	    "The version of rtpproxyd; always 1.");
	evbuffer_add_printf(b, "rtpproxyd_build_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);
	metrics_family(b, "process_start_time_seconds", "gauge",
	    "When the master started, in seconds since the Epoch.");
	evbuffer_add_printf(b, "process_start_time_seconds %lld.%03lld\n",
	    (long long)(v->start_ms / 1000), (long long)(v->start_ms % 1000));
	metrics_family(b, "rtpproxyd_master_starts_total", "counter",
	    "Masters that ran this session table, takeovers included.");
	evbuffer_add_printf(b, "rtpproxyd_master_starts_total %llu\n",
	    (unsigned long long)SHM_LOAD(&h->master_starts));
	metrics_family(b, "rtpproxyd_workers", "gauge",
	    "Worker processes configured.");
	evbuffer_add_printf(b, "rtpproxyd_workers %d\n", m->nworkers);
	metrics_family(b, "rtpproxyd_worker_up", "gauge",
	    "1 while the worker process exists, 0 while it is replaced.");
	for (i = 0; i < m->nworkers && i < SHM_MAX_WORKERS; i++)
		evbuffer_add_printf(b, "rtpproxyd_worker_up{worker=\"%d\"} %d\n",
		    i, SHM_LOAD(&h->workers[i].pid) != 0);
	metrics_family(b, "rtpproxyd_worker_restarts_total", "counter",
	    "Times the worker was started again after it died.");
	for (i = 0; i < m->nworkers && i < SHM_MAX_WORKERS; i++)
		evbuffer_add_printf(b, "rtpproxyd_worker_restarts_total"
		    "{worker=\"%d\"} %llu\n", i,
		    (unsigned long long)SHM_LOAD(&h->workers[i].restarts));
	metrics_family(b, "rtpproxyd_worker_quarantined_sessions_total",
	    "counter", "Sessions quarantined: the worker crashed twice while "
	    "relaying each.");
	for (i = 0; i < m->nworkers && i < SHM_MAX_WORKERS; i++)
		evbuffer_add_printf(b,
		    "rtpproxyd_worker_quarantined_sessions_total{worker=\"%d\"} "
		    "%u\n", i, (unsigned)SHM_LOAD(&h->workers[i].quarantined));
}

static void
metrics_events(struct evbuffer *b, const struct shm_header *h)
{
	metrics_family(b, "rtpproxyd_event_subscribers", "gauge",
	    "StreamSessionEvents streams open.");
	evbuffer_add_printf(b, "rtpproxyd_event_subscribers %d\n",
	    grpcsvc_subscribers());
	metrics_family(b, "rtpproxyd_events_sent_total", "counter",
	    "Events queued to subscribers.");
	evbuffer_add_printf(b, "rtpproxyd_events_sent_total %llu\n",
	    (unsigned long long)SHM_LOAD(&h->events_sent));
	metrics_family(b, "rtpproxyd_events_dropped_total", "counter",
	    "Events a subscriber missed: its queue was full.");
	evbuffer_add_printf(b, "rtpproxyd_events_dropped_total %llu\n",
	    (unsigned long long)SHM_LOAD(&h->events_dropped));
}

/* The write-through to Redis (src/repl/redis.c), when configured. */
static void
metrics_redis(struct evbuffer *b)
{
	static const char *const names[][2] = {
		{ "rtpproxyd_redis_writes_total", "Session records written "
		    "to Redis (created, changed, counters' snapshots)." },
		{ "rtpproxyd_redis_deletes_total", "Session records Redis "
		    "confirmed deleted." },
		{ "rtpproxyd_redis_errors_total", "Error replies from Redis." },
		{ "rtpproxyd_redis_connects_total", "Connections to Redis "
		    "made." },
		{ "rtpproxyd_redis_connect_failures_total", "Connections to "
		    "Redis that failed; retried with backoff." },
		{ "rtpproxyd_redis_timeouts_total", "Times Redis did not "
		    "answer in 5 s and was connected to again." },
		{ "rtpproxyd_redis_dropped_total", "Deletes given up because "
		    "too many waited for Redis (the records stay)." },
		{ "rtpproxyd_redis_restored_total", "Sessions this master "
		    "restored from Redis when it started." },
		{ "rtpproxyd_redis_skipped_total", "Records in Redis this "
		    "master did not restore or resume: unreadable, of another "
		    "version or owner, or a port it could not bind (each "
		    "logged)." },
		{ "rtpproxyd_redis_takeovers_total", "Takeovers of other "
		    "nodes asked of this master." },
		{ "rtpproxyd_redis_resumed_total", "Sessions of other nodes "
		    "this master resumed." },
		{ "rtpproxyd_redis_fenced_total", "Sessions this master "
		    "closed because another node owns them with a higher "
		    "epoch." },
		{ "rtpproxyd_redis_mirror_resyncs_total", "Sets of nodes "
		    "this one backs (standby-for) read again into its mirror: "
		    "at every subscription to their channels." },
		{ "rtpproxyd_redis_prebind_failures_total", "Sessions of "
		    "nodes this one backs whose ports on the floating address "
		    "it could not bind in advance (each logged)." },
	};
	struct redis_stats	st;
	uint64_t		v[14];
	const char		*node;
	int64_t			n, pre;
	size_t			i;
	int			k;

	redis_get_stats(&st);
	if (!st.configured)
		return;
	v[0] = st.writes;
	v[1] = st.deletes;
	v[2] = st.errors;
	v[3] = st.connects;
	v[4] = st.connect_failures;
	v[5] = st.timeouts;
	v[6] = st.dropped;
	v[7] = st.restored;
	v[8] = st.skipped;
	v[9] = st.takeovers;
	v[10] = st.resumed;
	v[11] = st.fenced;
	v[12] = st.mirror_resyncs;
	v[13] = st.prebind_failures;
	for (i = 0; i < 14; i++) {
		metrics_family(b, names[i][0], "counter", names[i][1]);
		evbuffer_add_printf(b, "%s %llu\n", names[i][0],
		    (unsigned long long)v[i]);
	}
	metrics_family(b, "rtpproxyd_redis_up", "gauge", "1 when connected "
	    "to Redis.");
	evbuffer_add_printf(b, "rtpproxyd_redis_up %d\n", st.up);
	metrics_family(b, "rtpproxyd_redis_pending", "gauge", "Sessions and "
	    "deletes waiting to be written to Redis.");
	evbuffer_add_printf(b, "rtpproxyd_redis_pending %u\n", st.pending);
	if (redis_standby(0, &node, &n) == -1)
		return;
	metrics_family(b, "rtpproxyd_redis_standby_sessions", "gauge",
	    "Sessions in Redis of each node this one backs (standby-for): "
	    "what a takeover would resume; -1 while not known.");
	for (k = 0; redis_standby(k, &node, &n) == 0; k++)
		evbuffer_add_printf(b, "rtpproxyd_redis_standby_sessions"
		    "{node=\"%s\"} %lld\n", node, (long long)n);
	metrics_family(b, "rtpproxyd_redis_mirrored_sessions", "gauge",
	    "Sessions of each node this one backs in its mirror, followed as "
	    "they change; -1 while the mirror is not in step (not "
	    "subscribed, or its set not read yet).");
	for (k = 0; redis_standby(k, &node, &n) == 0 &&
	    redis_mirrored(k, &n, &pre) == 0; k++)
		evbuffer_add_printf(b, "rtpproxyd_redis_mirrored_sessions"
		    "{node=\"%s\"} %lld\n", node, (long long)n);
	metrics_family(b, "rtpproxyd_redis_prebound_sessions", "gauge",
	    "Sessions of each node this one backs whose sockets it has bound "
	    "in advance on the node's floating address (IP_FREEBIND).");
	for (k = 0; redis_standby(k, &node, &n) == 0 &&
	    redis_mirrored(k, &n, &pre) == 0; k++)
		evbuffer_add_printf(b, "rtpproxyd_redis_prebound_sessions"
		    "{node=\"%s\"} %lld\n", node, (long long)pre);
}

static void
metrics_api(struct evbuffer *b)
{
	static const char *const closed[GATE_CLOSED_N] = { NULL,
	    "not_http2", "header_flood", "rapid_reset", "control_flood",
	    "handshake_timeout" };
	struct gate_stats	st;
	int			i;

	gate_get_stats(&st);
	metrics_family(b, "rtpproxyd_api_connections", "gauge",
	    "API connections open.");
	evbuffer_add_printf(b, "rtpproxyd_api_connections %d\n", st.open);
	metrics_family(b, "rtpproxyd_api_connections_accepted_total",
	    "counter", "API connections accepted by this master.");
	evbuffer_add_printf(b, "rtpproxyd_api_connections_accepted_total "
	    "%llu\n", (unsigned long long)st.accepted);
	metrics_family(b, "rtpproxyd_api_connections_refused_total",
	    "counter", "API connections refused by this master: at "
	    "api-max-connections, at api-max-connections-per-client, out of "
	    "descriptors.");
	evbuffer_add_printf(b, "rtpproxyd_api_connections_refused_total"
	    "{reason=\"max_connections\"} %llu\n",
	    (unsigned long long)st.refused_total);
	evbuffer_add_printf(b, "rtpproxyd_api_connections_refused_total"
	    "{reason=\"max_per_client\"} %llu\n",
	    (unsigned long long)st.refused_client);
	evbuffer_add_printf(b, "rtpproxyd_api_connections_refused_total"
	    "{reason=\"descriptors\"} %llu\n",
	    (unsigned long long)st.refused_fd);
	metrics_family(b, "rtpproxyd_api_connections_closed_total",
	    "counter", "API connections this master closed for what the "
	    "client did: an HTTP/2 attack, no preface in time, TLS that "
	    "failed.");
	for (i = 1; i < GATE_CLOSED_N; i++)
		evbuffer_add_printf(b, "rtpproxyd_api_connections_closed_total"
		    "{reason=\"%s\"} %llu\n", closed[i],
		    (unsigned long long)st.closed[i]);
	evbuffer_add_printf(b, "rtpproxyd_api_connections_closed_total"
	    "{reason=\"tls\"} %llu\n", (unsigned long long)st.tls_failed);
}

/*
 * Everything, from one pass over the table.  Totals never go back: a
 * slot counts while it is not free (closing ones too), and the master
 * folds a slot's counters into hdr->closed on this same loop as it frees
 * it (session_free_slot), so no scrape sees a session twice or not at all.
 */
void
metrics_render(struct evbuffer *b, struct metrics_view *v)
{
	const struct master	*m = v->m;
	struct shm_header	*h = m->shm.hdr;
	struct shm_totals	 t[2];
	uint64_t		 nstate[SHM_CLOSED + 1];
	struct metrics_rec	 rec;
	double			*loss[2], *jit[2];
	struct metrics_hist	 rtt[2], mos[2];
	struct quality		 q;
	size_t			 n[2] = { 0, 0 };
	uint32_t		 i, st;
	int			 d;

	memset(nstate, 0, sizeof(nstate));
	memset(rtt, 0, sizeof(rtt));
	memset(mos, 0, sizeof(mos));
	memcpy(t, h->closed, sizeof(t));
	memset(&rec, 0, sizeof(rec));
	rec.packets = SHM_LOAD(&h->rec_closed_packets);
	rec.dropped = SHM_LOAD(&h->rec_closed_dropped);
	for (d = 0; d < 2; d++) {
		loss[d] = v->vals + (size_t)(2 * d) * v->nslots;
		jit[d] = v->vals + (size_t)(2 * d + 1) * v->nslots;
	}
	for (i = 0; i < m->shm.nslots && i < v->nslots; i++) {
		const struct shm_slot *s = &m->shm.slots[i];

		st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (st == SHM_FREE || st > SHM_CLOSED)
			continue;
		nstate[st]++;
		metrics_rec_add(&rec, s);
		for (d = 0; d < 2; d++) {
			shm_totals_add(&t[d], &s->dir[d]);
			if (st == SHM_ACTIVE) {
				quality_dir(s, d, &q);
				if (q.rtt_samples > 0)
					metrics_hist_add(&rtt[d],
					    metrics_rtt_le, METRICS_RTT_N,
					    q.rtt_ms / 1e3);
				if (q.mos > 0.0)
					metrics_hist_add(&mos[d],
					    metrics_mos_le, METRICS_MOS_N,
					    q.mos);
			}
			if (st != SHM_ACTIVE ||
			    SHM_LOAD(&s->dir[d].packets_expected) == 0)
				continue;
			loss[d][n[d]] = shm_loss_rate(&s->dir[d]);
			jit[d][n[d]] = (double)SHM_LOAD(&s->dir[d].jitter_ns) /
			    1e9;
			n[d]++;
		}
	}

	metrics_processes(b, m, v);
	metrics_sessions(b, m, nstate);
	metrics_traffic(b, t, v);
	metrics_family(b, "rtpproxyd_rtp_loss_ratio", "summary", "Loss "
	    "ratio (RFC 3550) of the active sessions that receive RTP; "
	    "_count is how many.");
	for (d = 0; d < 2; d++)
		metrics_summary(b, "rtpproxyd_rtp_loss_ratio", d, loss[d],
		    n[d]);
	metrics_family(b, "rtpproxyd_rtp_jitter_seconds", "summary",
	    "Interarrival jitter (RFC 3550 A.8) of the active sessions that "
	    "receive RTP; _count is how many.");
	for (d = 0; d < 2; d++)
		metrics_summary(b, "rtpproxyd_rtp_jitter_seconds", d, jit[d],
		    n[d]);
	metrics_hist(b, "rtpproxyd_rtcp_rtt_seconds", "Round-trip time "
	    "between the relay and each direction's receiver (RTCP LSR/DLSR, "
	    "RFC 3550 6.4.1), the last of each active session that has one; "
	    "_count is how many.", rtt, metrics_rtt_le, METRICS_RTT_N);
	metrics_hist(b, "rtpproxyd_mos", "MOS estimate (simplified ITU-T "
	    "G.107 E-model) of each direction of the active sessions that "
	    "have one; _count is how many.", mos, metrics_mos_le,
	    METRICS_MOS_N);
	metrics_recording(b, &rec);
	metrics_latency(b, m);
	metrics_grpc(b, h);
	metrics_events(b, h);
	metrics_api(b);
	metrics_redis(b);
}
