/*
 * The rtpproxy.RtpProxy gRPC service on gRPC C core.
 *
 * One completion queue; one thread that does nothing but block in
 * grpc_completion_queue_next and hand {tag, ok} to the master's libevent
 * loop through a locked queue and an eventfd.  Every handler runs on the
 * loop thread, so the session layer is never touched from another thread.
 *
 * A call context lives until every batch it started has come back: each
 * started batch holds a reference, and so does the handler while it runs.
 */
#include "gs_int.h"

static const struct {
	const char	*path;
	enum gs_kind	 kind;
	gs_handler	*fn;
} gs_methods[GS_NMETHODS] = {
	{ "/rtpproxy.RtpProxy/CreateSession", GS_UNARY, gs_rpc_create },
	{ "/rtpproxy.RtpProxy/DestroySession", GS_UNARY, gs_rpc_destroy },
	{ "/rtpproxy.RtpProxy/GetSessionStatus", GS_UNARY, gs_rpc_status },
	{ "/rtpproxy.RtpProxy/ListSessions", GS_UNARY, gs_rpc_list },
	{ "/rtpproxy.RtpProxy/StreamSessionEvents", GS_EVENTS,
	    gs_rpc_events },
	{ "/rtpproxy.RtpProxy/HaTakeover", GS_UNARY, gs_rpc_takeover },
	{ "/grpc.health.v1.Health/Check", GS_UNARY, gs_rpc_health },
	{ "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	    GS_REFLECT, gs_rpc_reflect },
	{ "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
	    GS_REFLECT, gs_rpc_reflect },
	{ "/rtpproxy.RtpProxy/UpdateSession", GS_UNARY, gs_rpc_update },
};

/* What reflection lists, when the embedded descriptors describe it. */
const char *const gs_services[GS_NSERVICES] = {
	"rtpproxy.RtpProxy",
	"grpc.health.v1.Health",
	"grpc.reflection.v1.ServerReflection",
	"grpc.reflection.v1alpha.ServerReflection",
};

struct grpcsvc *svc;

/* The session table, for its counters and size, once the master has it. */
struct shm_table *gs_table;

void
grpcsvc_set_table(struct shm_table *t)
{
	gs_table = t;
}

struct api_ha gs_ha;

void
grpcsvc_set_ha(const struct api_ha *ha)
{
	gs_ha = *ha;
}

static void	gs_shutdown_server(void);
static void	gs_check_done(void);
static void	gs_check_drain(void);
static void	gs_unavailable(struct gs_call *);

/* --- the completion-queue thread and the hand-over to the loop ---------- */

static void *
gs_cq_thread(void *arg)
{
	grpc_event	ev;
	uint64_t	one = 1;
	int		wake;

	for (;;) {
		ev = grpc_completion_queue_next(svc->cq,
		    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		pthread_mutex_lock(&svc->lock);
		if (svc->qlen == svc->qcap) {
			svc->qcap = svc->qcap ? svc->qcap * 2 : 64;
			svc->q = xreallocarray(svc->q, svc->qcap,
			    sizeof(*svc->q));
		}
		svc->q[svc->qlen].tag = ev.tag;
		svc->q[svc->qlen].ok = ev.success;
		wake = svc->qlen++ == 0;
		pthread_mutex_unlock(&svc->lock);
		/* The loop empties the queue after reading the eventfd. */
		if (wake && write(svc->efd, &one, sizeof(one)) == -1 &&
		    errno != EAGAIN)
			log_warn("grpc: eventfd write");
	}
	return NULL;
}

static void
gs_run_queue(void)
{
	struct gs_done	*w;
	size_t		 n, i, cap;

	pthread_mutex_lock(&svc->lock);
	w = svc->q;
	cap = svc->qcap;
	n = svc->qlen;
	svc->q = svc->work;
	svc->qcap = svc->workcap;
	svc->qlen = 0;
	svc->work = w;
	svc->workcap = cap;
	pthread_mutex_unlock(&svc->lock);
	for (i = 0; i < n; i++)
		w[i].tag->fn(w[i].tag->arg, w[i].ok);
}

static void
gs_on_wake(evutil_socket_t fd, short what, void *arg)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_warn("grpc: eventfd read");
	gs_run_queue();
}

/* --- requests ----------------------------------------------------------- */

static void
gs_arm(struct gs_method *m)
{
	grpc_call_error e;

	if (svc->shutdown_called || m->posted)
		return;
	m->call = NULL;
	m->payload = NULL;
	grpc_metadata_array_init(&m->md);
	e = grpc_server_request_registered_call(svc->server, m->handle,
	    &m->call, &m->deadline, &m->md,
	    m->kind == GS_REFLECT ? NULL : &m->payload, svc->cq, svc->cq,
	    &m->tag);
	if (e != GRPC_CALL_OK) {
		log_warnx("grpc: cannot wait for %s: %s", m->path,
		    grpc_call_error_to_string(e));
		grpc_metadata_array_destroy(&m->md);
		return;
	}
	m->posted = 1;
}

static void
gs_on_request(void *arg, int ok)
{
	struct gs_method	*m = arg;
	struct gs_call		*c;
	grpc_call		*call = m->call;
	grpc_byte_buffer	*payload = m->payload;
	const char		*why = NULL;
	int			 authed;

	authed = (svc->health_open && m->fn == gs_rpc_health) ||
	    gs_auth(&m->md, &why) == 0;
	m->posted = 0;
	m->call = NULL;
	m->payload = NULL;
	grpc_metadata_array_destroy(&m->md);
	if (!ok || call == NULL) {
		/* Only a server shutting down fails a requested call. */
		if (payload != NULL)
			grpc_byte_buffer_destroy(payload);
		if (call != NULL)
			grpc_call_unref(call);
		if (!svc->shutdown_called)
			log_warnx("grpc: waiting for %s failed", m->path);
		gs_check_done();
		return;
	}
	gs_arm(m);
	c = gs_call_new(call, m->path, m->kind);
	c->midx = (int)((m - svc->methods) / GS_DEPTH);
	if (svc->draining)
		gs_unavailable(c);
	else if (!authed) {
		gs_auth_log(c, why);
		gs_reply(c, GRPC_STATUS_UNAUTHENTICATED, why, NULL);
	} else
		m->fn(c, payload);
	if (payload != NULL)
		grpc_byte_buffer_destroy(payload);
	gs_call_release(c);
}

static void
gs_arm_generic(void)
{
	grpc_call_error e;

	if (svc->shutdown_called || svc->gen_posted)
		return;
	svc->gen_call = NULL;
	grpc_call_details_init(&svc->gen_details);
	grpc_metadata_array_init(&svc->gen_md);
	e = grpc_server_request_call(svc->server, &svc->gen_call,
	    &svc->gen_details, &svc->gen_md, svc->cq, svc->cq, &svc->gen_tag);
	if (e != GRPC_CALL_OK) {
		log_warnx("grpc: cannot wait for calls: %s",
		    grpc_call_error_to_string(e));
		grpc_call_details_destroy(&svc->gen_details);
		grpc_metadata_array_destroy(&svc->gen_md);
		return;
	}
	svc->gen_posted = 1;
}

/* Anything not registered: UNIMPLEMENTED at once, not at the deadline. */
static void
gs_on_generic(void *arg, int ok)
{
	struct gs_call	*c;
	grpc_call	*call = svc->gen_call;
	char		 method[128], msg[160];
	const char	*why = NULL;
	size_t		 len, i;
	int		 authed;

	svc->gen_posted = 0;
	svc->gen_call = NULL;
	len = GRPC_SLICE_LENGTH(svc->gen_details.method);
	if (len >= sizeof(method))
		len = sizeof(method) - 1;
	memcpy(method, GRPC_SLICE_START_PTR(svc->gen_details.method), len);
	method[len] = '\0';
	for (i = 0; i < len; i++)
		if (method[i] < 0x20 || method[i] > 0x7e)
			method[i] = '?';
	authed = gs_auth(&svc->gen_md, &why) == 0;
	grpc_call_details_destroy(&svc->gen_details);
	grpc_metadata_array_destroy(&svc->gen_md);
	if (!ok || call == NULL) {
		if (call != NULL)
			grpc_call_unref(call);
		gs_check_done();
		return;
	}
	gs_arm_generic();
	c = gs_call_new(call, "(unknown method)", GS_UNKNOWN);
	if (svc->draining)
		gs_unavailable(c);
	else if (!authed) {
		/* Whether a method exists is for the authenticated. */
		gs_auth_log(c, why);
		gs_reply(c, GRPC_STATUS_UNAUTHENTICATED, why, NULL);
	} else {
		snprintf(msg, sizeof(msg), "unknown method %s", method);
		gs_reply(c, GRPC_STATUS_UNIMPLEMENTED, msg, NULL);
	}
	gs_call_release(c);
}

_Static_assert(GS_NMETHODS == SHM_GRPC_METHODS - 1,
    "the call counters have one row per method and one for unknown ones");

/* The path of row i of the call counters; NULL for unknown methods. */
const char *
grpcsvc_method_path(int i)
{
	return i >= 0 && i < GS_NMETHODS ? gs_methods[i].path : NULL;
}

/* --- start, drain, stop ------------------------------------------------- */

/*
 * A call that arrives while draining is refused with UNAVAILABLE, and
 * draining does not wait for it: the clients of a connection that keeps
 * sending calls would otherwise hold the end back until the grace is
 * over, and their calls would then be cancelled.
 */
static void
gs_unavailable(struct gs_call *c)
{
	c->real = 0;
	svc->nreal--;
	gs_reply(c, GRPC_STATUS_UNAVAILABLE, GS_MSG_SHUTDOWN, NULL);
}

/*
 * Every call that started before the drain is answered: let go of the
 * connections (what gRPC has written still reaches each client), and
 * only then shut gRPC's server down, which then has no connection left
 * to wait for.  A call that came in meanwhile, cut off, is UNAVAILABLE
 * to its client, as a refused one is.
 */
static void
gs_on_drained(evutil_socket_t fd, short what, void *arg)
{
	if (svc->conns_closed)
		return;
	svc->conns_closed = 1;
	log_debug("grpc: every call is answered; closing %d connection(s)",
	    gate_connections());
	if (svc->gate_up)
		gate_close_all(1);
	gs_shutdown_server();
	gs_check_done();
}

/* A call context is freed: maybe the drain or the stop can go on. */
static void
gs_released(void)
{
	gs_check_drain();
	gs_check_done();
}

static void
gs_check_drain(void)
{
	if (svc->draining && !svc->conns_closed && svc->nreal == 0 &&
	    svc->drain_ev != NULL)
		event_active(svc->drain_ev, EV_TIMEOUT, 0);
}

static void
gs_on_shutdown(void *arg, int ok)
{
	svc->shutdown_seen = 1;
	gs_check_done();
}

static int
gs_nposted(void)
{
	int i, n = svc->gen_posted;

	for (i = 0; i < GS_NSLOTS; i++)
		n += svc->methods[i].posted;
	return n;
}

static int
gs_idle(void)
{
	return svc->shutdown_seen && LIST_EMPTY(&svc->calls) &&
	    gs_nposted() == 0;
}

static void
gs_check_done(void)
{
	if (!svc->draining || svc->done == NULL || svc->done_called ||
	    !gs_idle())
		return;
	svc->done_called = 1;
	if (svc->grace_ev != NULL)
		evtimer_del(svc->grace_ev);
	/* From the loop, not from inside a handler that is still running. */
	event_active(svc->done_ev, EV_TIMEOUT, 0);
}

static void
gs_on_done(evutil_socket_t fd, short what, void *arg)
{
	log_debug("grpc: every call is finished");
	if (svc != NULL && svc->done != NULL)
		svc->done();
}

static void
gs_on_grace(evutil_socket_t fd, short what, void *arg)
{
	if (svc->ncalls > 0)
		log_info("grpc: shutdown grace is over; cancelling %d "
		    "call(s)", svc->ncalls);
	if (!svc->conns_closed) {
		svc->conns_closed = 1;
		if (svc->gate_up)
			gate_close_all(0);
		gs_shutdown_server();
	}
	grpc_server_cancel_all_calls(svc->server);
}

static void
gs_shutdown_server(void)
{
	if (svc->shutdown_called)
		return;
	svc->shutdown_called = 1;
	svc->shutdown_tag.fn = gs_on_shutdown;
	svc->shutdown_tag.arg = NULL;
	grpc_server_shutdown_and_notify(svc->server, svc->cq,
	    &svc->shutdown_tag);
}

void
grpcsvc_drain(void (*done)(void))
{
	struct gs_call		*c, *next;
	struct timeval		 tv;

	if (svc == NULL) {
		if (done != NULL)
			done();
		return;
	}
	if (svc->draining)
		return;
	svc->draining = 1;
	svc->done = done;
	log_info("grpc: shutting down (%d call(s), %d subscriber(s); grace "
	    "%u s)", svc->ncalls, svc->nsubs, svc->grace);
	/* New connections are refused, new streams sent elsewhere. */
	if (svc->gate_up) {
		gate_stop_listening();
		gate_goaway_all();
	}
	for (c = LIST_FIRST(&svc->calls); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (c->next != NULL)
			c->next(c);
	}
	tv.tv_sec = svc->grace;
	tv.tv_usec = 0;
	evtimer_add(svc->grace_ev, &tv);
	gs_check_drain();
	gs_check_done();
}

static void
gs_free_tokens(void)
{
	size_t i;

	for (i = 0; i < svc->ntokens; i++) {
		explicit_bzero(svc->tokens[i], strlen(svc->tokens[i]));
		free(svc->tokens[i]);
	}
	free(svc->tokens);
	svc->tokens = NULL;
	svc->ntokens = 0;
}

void
grpcsvc_reconfigure(const struct config *conf)
{
	size_t	i;
	int	tls;

	if (svc == NULL)
		return;
	svc->event_queue = conf->event_queue > 0 ? conf->event_queue : 1;
	svc->grace = conf->shutdown_grace;
	gs_free_tokens();
	if (conf->ntokens > 0) {
		svc->tokens = xcalloc(conf->ntokens, sizeof(*svc->tokens));
		for (i = 0; i < conf->ntokens; i++)
			svc->tokens[i] = xstrdup(conf->tokens[i]);
		svc->ntokens = conf->ntokens;
	}
	svc->health_open = conf->auth_health_open;
	tls = conf->tls_pem[0] == NULL ? 0 : conf->tls_pem[2] == NULL ? 1 : 2;
	if (svc->server != NULL && tls != svc->tls) {
		log_warnx("reload: TLS %s: needs a restart", tls == 0 ?
		    "turned off" : svc->tls == 0 ? "turned on" :
		    "client certificates changed between required and not");
		return;
	}
	svc->tls = tls;
	if (svc->gate_up)
		gate_reconfigure(conf);
}

/* Take a server apart; the completion-queue thread must not be running. */
static void
gs_destroy(void)
{
	grpc_event	ev;

	if (svc->gate_up)
		gate_stop();
	svc->gate_up = 0;
	if (svc->cq != NULL) {
		grpc_completion_queue_shutdown(svc->cq);
		if (svc->thread_started)
			pthread_join(svc->thread, NULL);
		else
			do {
				ev = grpc_completion_queue_next(svc->cq,
				    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
			} while (ev.type != GRPC_QUEUE_SHUTDOWN);
	}
	if (svc->server != NULL)
		grpc_server_destroy(svc->server);
	if (svc->cq != NULL)
		grpc_completion_queue_destroy(svc->cq);
	if (svc->ev != NULL)
		event_free(svc->ev);
	if (svc->grace_ev != NULL)
		event_free(svc->grace_ev);
	if (svc->done_ev != NULL)
		event_free(svc->done_ev);
	if (svc->drain_ev != NULL)
		event_free(svc->drain_ev);
	if (svc->efd != -1)
		close(svc->efd);
	pthread_mutex_destroy(&svc->lock);
	svc->tls = 0;
	gs_free_tokens();
	free(svc->q);
	free(svc->work);
	reflection_free();
	free(svc);
	svc = NULL;
	grpc_shutdown_blocking();
}

/* gRPC's own messages, from any of its threads, into our log. */
static void
gs_core_log(gpr_log_func_args *a)
{
	if (a->severity == GPR_LOG_SEVERITY_ERROR)
		log_info("grpc core: %s", a->message);
	else
		log_debug("grpc core: %s", a->message);
}

/* An integer channel argument. */
static void
gs_arg(grpc_arg *a, const char *key, int v)
{
	a->type = GRPC_ARG_INTEGER;
	a->key = (char *)key;
	a->value.integer = v;
}

/*
 * gRPC's server, listening on nothing: apigate.c accepts the connections
 * and hands them over.  What gRPC still bounds itself is set here.
 */
static int
gs_server_new(const struct config *conf)
{
	grpc_arg		args[6];
	grpc_channel_args	chargs;
	int			i;

	gs_arg(&args[0], GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, GS_MAX_MESSAGE);
	gs_arg(&args[1], GRPC_ARG_MAX_CONCURRENT_STREAMS,
	    (int)conf->api_max_streams);
	/* A connection without calls gets GOAWAY, and then closes. */
	gs_arg(&args[2], GRPC_ARG_MAX_CONNECTION_IDLE_MS,
	    conf->api_idle_timeout > 0 ? (int)conf->api_idle_timeout * 1000 :
	    INT_MAX);
	/* Pings find the clients that are gone while a stream is open. */
	gs_arg(&args[3], GRPC_ARG_KEEPALIVE_TIME_MS, GS_KEEPALIVE_MS);
	gs_arg(&args[4], GRPC_ARG_KEEPALIVE_TIMEOUT_MS, GS_KEEPALIVE_TIMEOUT_MS);
	/* Windows that stay small: what a stream may buffer stays small. */
	gs_arg(&args[5], GRPC_ARG_HTTP2_BDP_PROBE, 0);
	chargs.num_args = 6;
	chargs.args = args;
	svc->server = grpc_server_create(&chargs, NULL);
	svc->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(svc->server, svc->cq, NULL);
	for (i = 0; i < GS_NSLOTS; i++) {
		struct gs_method *m = &svc->methods[i];
		int k = i / GS_DEPTH;

		m->path = gs_methods[k].path;
		m->kind = gs_methods[k].kind;
		m->fn = gs_methods[k].fn;
		m->tag.fn = gs_on_request;
		m->tag.arg = m;
		/* Several requests posted per method: a burst of calls is
		 * matched without a round trip through the loop each. */
		if (i % GS_DEPTH != 0) {
			m->handle = svc->methods[i - 1].handle;
			continue;
		}
		m->handle = grpc_server_register_method(svc->server, m->path,
		    NULL, m->kind == GS_REFLECT ? GRPC_SRM_PAYLOAD_NONE :
		    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
		if (m->handle == NULL) {
			log_warnx("grpc: cannot register %s", m->path);
			return -1;
		}
	}
	svc->gen_tag.fn = gs_on_generic;
	grpc_server_start(svc->server);
	return 0;
}

/* The queue thread, and the loop's events that take its completions. */
static int
gs_loop_start(struct event_base *base)
{
	sigset_t	all, old;
	int		i, rc;

	/* Signals are the loop's business, never the queue thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&svc->thread, NULL, gs_cq_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_warnx("grpc: pthread_create: %s", strerror(rc));
		return -1;
	}
	svc->thread_started = 1;
	svc->ev = event_new(base, svc->efd, EV_READ | EV_PERSIST, gs_on_wake,
	    NULL);
	svc->grace_ev = evtimer_new(base, gs_on_grace, NULL);
	svc->done_ev = event_new(base, -1, 0, gs_on_done, NULL);
	svc->drain_ev = event_new(base, -1, 0, gs_on_drained, NULL);
	if (svc->ev == NULL || svc->grace_ev == NULL || svc->done_ev == NULL ||
	    svc->drain_ev == NULL || event_add(svc->ev, NULL) == -1) {
		log_warnx("grpc: cannot set up loop events");
		return -1;
	}
	for (i = 0; i < GS_NSLOTS; i++)
		gs_arm(&svc->methods[i]);
	gs_arm_generic();
	return 0;
}

/* A start that failed half way: what was set up is taken apart. */
static void
gs_start_failed(void)
{
	grpc_event ev;

	if (svc->server == NULL) {
		gs_destroy();
		return;
	}
	if (svc->gate_up)
		gate_stop();
	svc->gate_up = 0;
	/* Even a server that never started wants a shutdown before destroy. */
	gs_shutdown_server();
	grpc_server_cancel_all_calls(svc->server);
	if (svc->thread_started) {
		svc->draining = 1;
		while (!gs_idle()) {
			struct pollfd pfd = { svc->efd, POLLIN, 0 };
			uint64_t v;

			if (poll(&pfd, 1, 100) == 1 &&
			    read(svc->efd, &v, sizeof(v)) == -1)
				break;
			gs_run_queue();
		}
	} else
		do {
			ev = grpc_completion_queue_next(svc->cq,
			    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_millis(1000, GPR_TIMESPAN)), NULL);
		} while (ev.type == GRPC_OP_COMPLETE &&
		    ev.tag != &svc->shutdown_tag);
	gs_destroy();
}

int
grpcsvc_start(struct event_base *base, const struct config *conf)
{
	int i;

	if (svc != NULL) {
		log_warnx("grpc: the service is already running");
		return -1;
	}
	if (conf->nlisten == 0) {
		log_warnx("grpc: no listen address is configured");
		return -1;
	}
	svc = xcalloc(1, sizeof(*svc));
	svc->released = gs_released;
	svc->base = base;
	svc->efd = -1;
	pthread_mutex_init(&svc->lock, NULL);
	LIST_INIT(&svc->calls);
	LIST_INIT(&svc->subs);
	grpcsvc_reconfigure(conf);
	if (getrandom(svc->token_key, sizeof(svc->token_key), 0) !=
	    (ssize_t)sizeof(svc->token_key)) {
		int64_t t = mono_ms() ^ ((int64_t)getpid() << 32);

		memcpy(svc->token_key, &t, sizeof(t));
	}
	gpr_set_log_function(gs_core_log);
	grpc_init();
	if (reflection_init(gs_services,
	    sizeof(gs_services) / sizeof(gs_services[0])) == -1)
		goto fail;
	if ((svc->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		log_warn("grpc: eventfd");
		goto fail;
	}
	if (gs_server_new(conf) == -1 ||
	    gate_start(base, svc->server, conf) == -1)
		goto fail;
	svc->gate_up = 1;
	for (i = 0; svc->ntokens > 0 && svc->tls == 0 && i < conf->nlisten;
	    i++)
		if (!addr_loopback(&conf->listen[i]))
			log_warnx("grpc: bearer tokens without TLS cross the "
			    "network in clear text on %s: set tls-cert and "
			    "tls-key", conf->listen[i].text);
	if (gs_loop_start(base) == -1)
		goto fail;
	return 0;
fail:
	gs_start_failed();
	return -1;
}

void
grpcsvc_stop(void)
{
	struct pollfd	pfd;
	int64_t		until;
	uint64_t	v;

	if (svc == NULL)
		return;
	svc->draining = 1;
	svc->done = NULL;
	gs_shutdown_server();
	grpc_server_cancel_all_calls(svc->server);
	until = mono_ms() + GS_STOP_WAIT_MS;
	while (!gs_idle() && mono_ms() < until) {
		pfd.fd = svc->efd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 100) == 1 &&
		    read(svc->efd, &v, sizeof(v)) == -1 && errno != EAGAIN)
			break;
		gs_run_queue();
	}
	if (!gs_idle())
		log_warnx("grpc: %d call(s) did not finish", svc->ncalls);
	gs_destroy();
	log_debug("grpc: stopped");
}
