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
	struct event_base	*base;
	struct metrics_view	 view;		/* what a scrape reads */
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
} mx = { .fd = -1 };

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
	mx.view.start_ms = now_ms();
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

_Static_assert(RP_CODE_N == SHM_GRPC_CODES, "a name for every code");

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
	metrics_render(body, &mx.view);
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
	mx.view.m = m;
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
	mx.view.nslots = m->shm.nslots;
	mx.view.vals = xcalloc((size_t)mx.view.nslots * 4,
	    sizeof(*mx.view.vals));
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
	free(mx.view.vals);
	memset(&mx, 0, sizeof(mx));
	mx.fd = -1;
}
