/*
 * Prometheus metrics: GET /metrics on an HTTP listener of the master's
 * loop (libevent's evhttp), in the text exposition format 0.0.4.  A
 * scrape reads the session table and the table-wide counters in shared
 * memory and nothing else: the workers are not asked, the packet path
 * does not know, and the only allocation is the reply's buffer.
 *
 * The listener is hostile ground: only GET and HEAD of /metrics, bounded
 * headers and body, a deadline for each request (a client that says
 * nothing, or dribbles, is dropped), and a cap on connections (at the cap
 * the listening socket waits until one closes).
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "api.h"
#include "master.h"
#include "sessions.h"
#include "apigate.h"

#define METRICS_TIMEOUT_S	5	/* for a request, and for its reply */
#define METRICS_MAX_CONNS	16
#define METRICS_MAX_HEADERS	8192
#define METRICS_MAX_BODY	1024
#define METRICS_BACKLOG		16
#define METRICS_CTYPE		"text/plain; version=0.0.4; charset=utf-8"
#define METRICS_CAP_LOG_MS	60000	/* at most one "at the cap" a minute */

struct metrics_conn {
	LIST_ENTRY(metrics_conn)	 entry;
	struct bufferevent		*bev;
	struct evhttp_connection	*evcon;	/* NULL until adopted */
	struct event			*deadline;
};
LIST_HEAD(metrics_conns, metrics_conn);

static struct {
	int			 fd;		/* the listening socket, or -1 */
	int			 fd_given;	/* evhttp owns (and closes) it */
	char			 addr[ADDR_TEXT_MAX];	/* as configured */
	int64_t			 start_ms;
	struct event_base	*base;
	const struct master	*m;		/* what is scraped */
	struct evhttp		*http;
	struct evconnlistener	*listener;
	struct event		*adopt_ev;
	struct metrics_conns	 pending;	/* accepted, not yet adopted */
	struct metrics_conns	 conns;
	int			 nconns;
	int			 paused;	/* at the cap: not accepting */
	int			 stopping;
	int64_t			 cap_logged_ms;
	int			 untracked_logged;
	uint32_t		 nslots;
	double			*vals;		/* 4 x nslots, for quantiles */
	uint64_t		 lost_seen[2];
} mx = { .fd = -1 };

static const char *const metrics_dirname[2] = { "forward", "reverse" };

int
metrics_fd(void)
{
	return mx.fd;
}

/*
 * Bind and listen on metrics-listen, before privileges go (the port may be
 * low).  The socket has SO_REUSEPORT (addr_bind), so that a restarting master can bind
 * the same port while this one still listens; but a second daemon must
 * fail, as it does on the API address, not share the scrapes: a probe
 * without SO_REUSEPORT first finds any socket that listens there.
 */
int
metrics_bind(const struct config *c)
{
	const struct listen_addr	*la = &c->metrics_listen;
	int				 fd, e;

	if (la->kind == ADDR_NONE)
		return 0;
	snprintf(mx.addr, sizeof(mx.addr), "%s", la->text);
	if ((fd = addr_bind(la, 0)) == -1)
		goto fail;
	if (listen(fd, METRICS_BACKLOG) == -1) {
		e = errno;
		close(fd);
		errno = e;
		goto fail;
	}
	mx.fd = fd;
	mx.start_ms = now_ms();
	return 0;
fail:
	e = errno;
	log_warnx("metrics: cannot listen on %s: %s", la->text,
	    e == EADDRINUSE ? "address in use (another rtpproxyd? set "
	    "metrics-listen)" : e == EADDRNOTAVAIL ? "not an address of this "
	    "host" : strerror(e));
	return -1;
}

/* --- connections ---------------------------------------------------------- */

static void
metrics_released(void)
{
	mx.nconns--;
	if (mx.paused && !mx.stopping && mx.nconns < METRICS_MAX_CONNS) {
		mx.paused = 0;
		evconnlistener_enable(mx.listener);
	}
}

static void
metrics_closed(struct evhttp_connection *evcon, void *arg)
{
	struct metrics_conn *c = arg;

	evhttp_connection_set_closecb(evcon, NULL, NULL);
	LIST_REMOVE(c, entry);
	if (c->deadline != NULL)
		event_free(c->deadline);
	free(c);
	metrics_released();
}

/* A request (or its reply) took too long: drop the connection. */
static void
metrics_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct metrics_conn *c = arg;

	log_debug("metrics: dropping a connection: no request and reply "
	    "in %d s", METRICS_TIMEOUT_S);
	evhttp_connection_free(c->evcon);	/* metrics_closed frees c */
}

static void
metrics_arm(struct metrics_conn *c)
{
	struct timeval tv = { METRICS_TIMEOUT_S, 0 };

	evtimer_add(c->deadline, &tv);
}

/*
 * evhttp tells nobody that it accepted a connection, but it asks us for
 * the connection's bufferevent: count it here, and stop accepting at the
 * cap.
 */
static struct bufferevent *
metrics_newconn(struct event_base *base, void *arg)
{
	struct metrics_conn	*c;
	struct bufferevent	*bev;
	int64_t			 now;

	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) ==
	    NULL)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->bev = bev;
	LIST_INSERT_HEAD(&mx.pending, c, entry);
	event_active(mx.adopt_ev, EV_TIMEOUT, 0);
	if (++mx.nconns >= METRICS_MAX_CONNS && !mx.paused) {
		mx.paused = 1;
		evconnlistener_disable(mx.listener);
		now = mono_ms();
		if (mx.cap_logged_ms == 0 ||
		    now - mx.cap_logged_ms >= METRICS_CAP_LOG_MS) {
			mx.cap_logged_ms = now;
			log_notice("metrics: %d connections open: no more are "
			    "accepted until one closes", mx.nconns);
		}
	}
	return bev;
}

/*
 * Right after the accept, before any I/O on them: find each new
 * connection through its bufferevent (evhttp's callbacks get the
 * connection as their argument), to hear when it closes and to give it a
 * deadline.
 */
static void
metrics_adopt(evutil_socket_t fd, short ev, void *arg)
{
	struct metrics_conn		*c;
	struct evhttp_connection	*evcon;
	void				*cbarg = NULL;

	while ((c = LIST_FIRST(&mx.pending)) != NULL) {
		LIST_REMOVE(c, entry);
		bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
		evcon = cbarg;
		if (evcon == NULL ||
		    evhttp_connection_get_bufferevent(evcon) != c->bev) {
			/* Not the evhttp we know: do not count what we
			 * cannot see close. */
			if (!mx.untracked_logged++)
				log_warnx("metrics: cannot follow connections "
				    "with this libevent: no deadline, no cap");
			free(c);
			metrics_released();
			continue;
		}
		c->evcon = evcon;
		evhttp_connection_set_closecb(evcon, metrics_closed, c);
		if ((c->deadline = evtimer_new(mx.base, metrics_deadline, c)) ==
		    NULL)
			fatalx("metrics: evtimer_new");
		metrics_arm(c);
		LIST_INSERT_HEAD(&mx.conns, c, entry);
	}
}

/* --- the exposition ------------------------------------------------------- */

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

/* The counters' families, by kind; then one of every reason to drop. */
static void
metrics_traffic(struct evbuffer *b, const struct shm_totals *t)
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
		if (lost < mx.lost_seen[d])
			lost = mx.lost_seen[d];
		mx.lost_seen[d] = lost;
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

_Static_assert(RP_CODE_N == SHM_GRPC_CODES, "a name for every code");

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
metrics_processes(struct evbuffer *b, const struct master *m)
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
	    (long long)(mx.start_ms / 1000), (long long)(mx.start_ms % 1000));
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
static void
metrics_render(struct evbuffer *b)
{
	const struct master	*m = mx.m;
	struct shm_header	*h = m->shm.hdr;
	struct shm_totals	 t[2];
	uint64_t		 nstate[SHM_CLOSED + 1];
	double			*loss[2], *jit[2];
	size_t			 n[2] = { 0, 0 };
	uint32_t		 i, st;
	int			 d;

	memset(nstate, 0, sizeof(nstate));
	memcpy(t, h->closed, sizeof(t));
	for (d = 0; d < 2; d++) {
		loss[d] = mx.vals + (size_t)(2 * d) * mx.nslots;
		jit[d] = mx.vals + (size_t)(2 * d + 1) * mx.nslots;
	}
	for (i = 0; i < m->shm.nslots && i < mx.nslots; i++) {
		const struct shm_slot *s = &m->shm.slots[i];

		st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (st == SHM_FREE || st > SHM_CLOSED)
			continue;
		nstate[st]++;
		for (d = 0; d < 2; d++) {
			shm_totals_add(&t[d], &s->dir[d]);
			if (st != SHM_ACTIVE ||
			    SHM_LOAD(&s->dir[d].packets_expected) == 0)
				continue;
			loss[d][n[d]] = shm_loss_rate(&s->dir[d]);
			jit[d][n[d]] = (double)SHM_LOAD(&s->dir[d].jitter_ns) /
			    1e9;
			n[d]++;
		}
	}

	metrics_processes(b, m);
	metrics_sessions(b, m, nstate);
	metrics_traffic(b, t);
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
	metrics_latency(b, m);
	metrics_grpc(b, h);
	metrics_events(b, h);
	metrics_api(b);
}

static void
metrics_text(struct evhttp_request *req, int code, const char *reason,
    const char *text)
{
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; charset=utf-8");
	evbuffer_add(evhttp_request_get_output_buffer(req), text,
	    strlen(text));
	evhttp_send_reply(req, code, reason, NULL);
}

static void
metrics_request(struct evhttp_request *req, void *arg)
{
	struct evhttp_connection	*evcon;
	const struct evhttp_uri		*uri;
	struct evkeyvalq		*out;
	struct evbuffer			*body;
	struct metrics_conn		*c;
	enum evhttp_cmd_type		 cmd;
	const char			*path = NULL;
	char				 len[32];

	/* A new request: its connection has another full period. */
	evcon = evhttp_request_get_connection(req);
	LIST_FOREACH(c, &mx.conns, entry)
		if (c->evcon == evcon) {
			metrics_arm(c);
			break;
		}
	if ((uri = evhttp_request_get_evhttp_uri(req)) != NULL)
		path = evhttp_uri_get_path(uri);
	cmd = evhttp_request_get_command(req);
	out = evhttp_request_get_output_headers(req);
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		metrics_text(req, HTTP_NOTFOUND, "Not Found",
		    "Not found: the metrics are at /metrics\n");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(out, "Allow", "GET, HEAD");
		metrics_text(req, 405, "Method Not Allowed",
		    "Method not allowed: GET or HEAD\n");
		return;
	}
	body = evhttp_request_get_output_buffer(req);
	metrics_render(body);
	evhttp_add_header(out, "Content-Type", METRICS_CTYPE);
	/* HEAD: GET's headers, length included; evhttp would send the body. */
	snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
	evhttp_add_header(out, "Content-Length", len);
	if (cmd == EVHTTP_REQ_HEAD)
		evbuffer_drain(body, evbuffer_get_length(body));
	evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

/* Serve on the socket metrics_bind made, on the master's loop. */
int
metrics_start(struct event_base *base, const struct master *m)
{
	if (mx.fd == -1)
		return 0;
	mx.base = base;
	mx.m = m;
	LIST_INIT(&mx.pending);
	LIST_INIT(&mx.conns);
	if ((mx.http = evhttp_new(base)) == NULL ||
	    (mx.adopt_ev = event_new(base, -1, 0, metrics_adopt, NULL)) ==
	    NULL) {
		log_warnx("metrics: cannot set up the HTTP server");
		return -1;
	}
	evhttp_set_timeout(mx.http, METRICS_TIMEOUT_S);
	evhttp_set_max_headers_size(mx.http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(mx.http, METRICS_MAX_BODY);
	/* Every method reaches metrics_request, which answers 405. */
	evhttp_set_allowed_methods(mx.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(mx.http, metrics_request, NULL);
	evhttp_set_bevcb(mx.http, metrics_newconn, NULL);
	mx.nslots = mx.m->shm.nslots;
	mx.vals = xcalloc((size_t)mx.nslots * 4, sizeof(*mx.vals));
	{
		struct evhttp_bound_socket *bound;

		if ((bound = evhttp_accept_socket_with_handle(mx.http,
		    mx.fd)) == NULL) {
			log_warnx("metrics: cannot serve on %s", mx.addr);
			return -1;
		}
		mx.fd_given = 1;
		mx.listener = evhttp_bound_socket_get_listener(bound);
	}
	log_info("metrics: listening on %s (GET /metrics)", mx.addr);
	return 0;
}

void
metrics_stop(void)
{
	struct metrics_conn *c;

	mx.stopping = 1;
	/* Frees the connections (metrics_closed runs for each). */
	if (mx.http != NULL)
		evhttp_free(mx.http);
	if (mx.fd != -1 && !mx.fd_given)
		close(mx.fd);
	while ((c = LIST_FIRST(&mx.pending)) != NULL) {
		LIST_REMOVE(c, entry);
		free(c);
	}
	while ((c = LIST_FIRST(&mx.conns)) != NULL) {
		LIST_REMOVE(c, entry);
		if (c->deadline != NULL)
			event_free(c->deadline);
		free(c);
	}
	if (mx.adopt_ev != NULL)
		event_free(mx.adopt_ev);
	free(mx.vals);
	memset(&mx, 0, sizeof(mx));
	mx.fd = -1;
}
