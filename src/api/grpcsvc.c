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
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/random.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "api.h"
#include "conf.h"
#include "sessions.h"
#include "apigate.h"
#include "grpcsvc.h"
#include "rtpproxy.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#define GS_MAX_MESSAGE		(64 * 1024)	/* requests are small */
#define GS_PAGE_DEFAULT		100
#define GS_PAGE_MAX		1000
#define GS_MAX_SUBSCRIBERS	1024
#define GS_STOP_WAIT_MS		5000
#define GS_KEEPALIVE_MS		(60 * 1000)
#define GS_KEEPALIVE_TIMEOUT_MS	(20 * 1000)

#define GS_MSG_SHUTDOWN		"server is shutting down"

struct gs_tag {
	void		(*fn)(void *, int);
	void		 *arg;
};

struct gs_done {
	struct gs_tag	*tag;
	int		 ok;
};

enum gs_kind {
	GS_UNARY,
	GS_EVENTS,
	GS_REFLECT,
	GS_UNKNOWN,
};

struct gs_call;
typedef void gs_handler(struct gs_call *, grpc_byte_buffer *);

struct gs_method {
	const char		*path;
	enum gs_kind		 kind;
	gs_handler		*fn;
	void			*handle;
	struct gs_tag		 tag;
	int			 posted;
	grpc_call		*call;
	gpr_timespec		 deadline;
	grpc_metadata_array	 md;
	grpc_byte_buffer	*payload;
};

struct gs_call {
	LIST_ENTRY(gs_call)	 entry;		/* every live call */
	LIST_ENTRY(gs_call)	 sub;		/* event subscribers */
	grpc_call		*call;
	const char		*method;
	enum gs_kind		 kind;
	int			 midx;		/* for the call counters */
	int			 code;		/* the status sent; -1: none */
	int			 refs;
	int			 cancelled;	/* RECV_CLOSE_ON_SERVER says so */
	int			 closed;	/* RECV_CLOSE_ON_SERVER is back */
	int			 sending;	/* one send batch at a time */
	int			 recving;
	int			 status_sent;
	int			 subscribed;
	int			 real;		/* not a refusal while draining */
	int			 want_status;	/* send status once idle */
	grpc_status_code	 want_code;
	const char		*want_msg;
	struct gs_tag		 close_tag, send_tag, recv_tag;
	grpc_byte_buffer	*out;		/* the message being sent */
	grpc_byte_buffer	*in;
	grpc_byte_buffer	*pending;	/* an answer waiting to go */
	grpc_slice		 details;
	int			 has_details;
	char			 peer[160];

	/* StreamSessionEvents */
	char			 filter[SHM_ID_MAX];
	grpc_slice		*ring;
	uint32_t		 ring_cap, ring_head, ring_len;
	uint64_t		 missed;	/* since the last delivered */
	uint64_t		 dropped, delivered;
	int			 warned;

	/* ServerReflectionInfo */
	struct refl_stream	*refl;
};

LIST_HEAD(gs_calls, gs_call);

static gs_handler gs_rpc_create, gs_rpc_destroy, gs_rpc_status,
    gs_rpc_list, gs_rpc_events, gs_rpc_health, gs_rpc_reflect;

#define GS_NMETHODS	8
#define GS_DEPTH	16	/* requests posted per method */
#define GS_NSLOTS	(GS_NMETHODS * GS_DEPTH)

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
	{ "/grpc.health.v1.Health/Check", GS_UNARY, gs_rpc_health },
	{ "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	    GS_REFLECT, gs_rpc_reflect },
	{ "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
	    GS_REFLECT, gs_rpc_reflect },
};

/* What reflection lists, when the embedded descriptors describe it. */
static const char *const gs_services[] = {
	"rtpproxy.RtpProxy",
	"grpc.health.v1.Health",
	"grpc.reflection.v1.ServerReflection",
	"grpc.reflection.v1alpha.ServerReflection",
};

struct grpcsvc {
	struct event_base	*base;
	grpc_server		*server;
	grpc_completion_queue	*cq;
	pthread_t		 thread;
	int			 thread_started;
	int			 efd;
	struct event		*ev;
	struct event		*grace_ev;
	struct event		*done_ev;

	pthread_mutex_t		 lock;		/* q, qlen, qcap */
	struct gs_done		*q, *work;
	size_t			 qlen, qcap, workcap;

	struct gs_method	 methods[GS_NSLOTS];	/* request slots */
	struct gs_tag		 gen_tag;
	int			 gen_posted;
	grpc_call		*gen_call;
	grpc_call_details	 gen_details;
	grpc_metadata_array	 gen_md;

	struct gs_tag		 shutdown_tag;
	int			 shutdown_called;
	int			 shutdown_seen;
	int			 draining;
	int			 conns_closed;	/* the gate let go of them */
	int			 nreal;		/* calls with a real answer */
	struct event		*drain_ev;
	void			(*done)(void);
	int			 done_called;

	struct gs_calls		 calls;
	struct gs_calls		 subs;
	int			 ncalls, nsubs;
	uint32_t		 event_queue;
	uint32_t		 grace;
	uint8_t			 token_key[REQUEST_TOKEN_KEYLEN];

	/* bearer tokens; none: no authentication */
	char			**tokens;
	size_t			 ntokens;
	int			 health_open;
	int64_t			 authlog_sec;	/* rate of refusal logs */
	int			 authlog_n;
	uint64_t		 authlog_quiet;

	int			 tls;		/* 0 none, 1 TLS, 2 mTLS */
	int			 gate_up;	/* apigate listens */
};

static struct grpcsvc *svc;

/* The session table, for its counters and size, once the master has it. */
static struct shm_table *gs_table;

void
grpcsvc_set_table(struct shm_table *t)
{
	gs_table = t;
}

static void	gs_call_release(struct gs_call *);
static void	gs_events_pump(struct gs_call *);
static void	gs_reflect_next(struct gs_call *);
static void	gs_check_done(void);
static void	gs_check_drain(void);
static void	gs_shutdown_server(void);
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

/* --- helpers ------------------------------------------------------------ */

/* Text from the session table for a reply: NUL-terminated, valid UTF-8. */
static void
gs_text(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t n = strnlen(src, srclen), i;

	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	if (!utf8_valid(dst, n))
		for (i = 0; i < n; i++)
			if ((unsigned char)dst[i] >= 0x80)
				dst[i] = '?';
}

static grpc_byte_buffer *
gs_pack(const ProtobufCMessage *m)
{
	grpc_byte_buffer	*bb;
	grpc_slice		 s;
	size_t			 len;

	len = protobuf_c_message_get_packed_size(m);
	s = grpc_slice_malloc(len);
	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
	bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

static grpc_slice
gs_bytes(grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader	rd;
	grpc_slice		s;

	if (!grpc_byte_buffer_reader_init(&rd, bb))
		return grpc_empty_slice();
	s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	return s;
}

static ProtobufCMessage *
gs_decode(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d,
    struct rp_error *err)
{
	ProtobufCMessage	*m;
	grpc_slice		 s;

	if (bb == NULL) {
		rp_err(err, RP_INVALID_ARGUMENT, REQUEST_MALFORMED);
		return NULL;
	}
	s = gs_bytes(bb);
	m = request_decode(d, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s),
	    err);
	grpc_slice_unref(s);
	return m;
}

/* --- call contexts ------------------------------------------------------ */

static void	gs_on_close(void *, int);
static void	gs_on_send(void *, int);
static void	gs_on_recv(void *, int);

/*
 * The client's own address (gRPC knows only the gate's socketpair), and
 * with client certificates its name too.
 */
static void
gs_peer_name(struct gs_call *c, const char *grpc_peer)
{
	char	cn[64];
	size_t	len;

	if (gate_peer(grpc_peer, c->peer, sizeof(c->peer), cn,
	    sizeof(cn)) == -1) {
		snprintf(c->peer, sizeof(c->peer), "%s", grpc_peer);
		return;
	}
	if (cn[0] == '\0')
		return;
	for (len = 0; cn[len] != '\0'; len++)
		if ((unsigned char)cn[len] < 0x20 || cn[len] == 0x7f ||
		    (unsigned char)cn[len] >= 0x80)
			cn[len] = '?';
	len = strlen(c->peer);
	snprintf(c->peer + len, sizeof(c->peer) - len, " (CN=%s)", cn);
}

static struct gs_call *
gs_call_new(grpc_call *call, const char *method, enum gs_kind kind)
{
	struct gs_call	*c;
	char		*peer;

	c = xcalloc(1, sizeof(*c));
	c->call = call;
	c->method = method;
	c->kind = kind;
	c->midx = SHM_GRPC_METHODS - 1;
	c->code = -1;
	c->refs = 1;			/* the handler's */
	c->close_tag.fn = gs_on_close;
	c->close_tag.arg = c;
	c->send_tag.fn = gs_on_send;
	c->send_tag.arg = c;
	c->recv_tag.fn = gs_on_recv;
	c->recv_tag.arg = c;
	if ((peer = grpc_call_get_peer(call)) != NULL) {
		gs_peer_name(c, peer);
		gpr_free(peer);
	}
	LIST_INSERT_HEAD(&svc->calls, c, entry);
	svc->ncalls++;
	c->real = 1;
	svc->nreal++;
	return c;
}

static void
gs_ring_clear(struct gs_call *c)
{
	while (c->ring_len > 0) {
		grpc_slice_unref(c->ring[c->ring_head]);
		c->ring_head = (c->ring_head + 1) % c->ring_cap;
		c->ring_len--;
	}
	free(c->ring);
	c->ring = NULL;
	c->ring_cap = c->ring_head = 0;
}

static void
gs_unsubscribe(struct gs_call *c)
{
	if (!c->subscribed)
		return;
	LIST_REMOVE(c, sub);
	c->subscribed = 0;
	svc->nsubs--;
	gs_ring_clear(c);
	log_info("grpc: event subscriber %s gone (%s; %llu delivered, "
	    "%llu dropped)", c->peer, c->cancelled ? "cancelled" : "finished",
	    (unsigned long long)c->delivered, (unsigned long long)c->dropped);
}

static void
gs_call_release(struct gs_call *c)
{
	if (--c->refs > 0)
		return;
	gs_unsubscribe(c);
	LIST_REMOVE(c, entry);
	svc->ncalls--;
	if (c->real)
		svc->nreal--;
	/* Every call is counted once, when it is over. */
	if (gs_table != NULL && gs_table->hdr != NULL)
		atomic_fetch_add_explicit(&gs_table->hdr->grpc_calls
		    [c->midx][c->code >= 0 && c->code < SHM_GRPC_CODES ?
		    c->code : GRPC_STATUS_CANCELLED], 1, memory_order_relaxed);
	if (c->out != NULL)
		grpc_byte_buffer_destroy(c->out);
	if (c->in != NULL)
		grpc_byte_buffer_destroy(c->in);
	if (c->pending != NULL)
		grpc_byte_buffer_destroy(c->pending);
	if (c->has_details)
		grpc_slice_unref(c->details);
	reflection_stream_free(c->refl);
	grpc_call_unref(c->call);
	free(c);
	gs_check_drain();
	gs_check_done();
}

static int
gs_batch(struct gs_call *c, const grpc_op *ops, size_t n, struct gs_tag *tag)
{
	grpc_call_error e;

	if ((e = grpc_call_start_batch(c->call, ops, n, tag, NULL)) !=
	    GRPC_CALL_OK) {
		log_warnx("grpc: %s from %s: cannot start a batch: %s",
		    c->method, c->peer, grpc_call_error_to_string(e));
		return -1;
	}
	c->refs++;
	return 0;
}

static void
gs_set_details(struct gs_call *c, const char *msg)
{
	if (c->has_details)
		grpc_slice_unref(c->details);
	c->details = grpc_slice_from_copied_string(msg != NULL ? msg : "");
	c->has_details = 1;
}

/* The whole answer to a call that has started nothing yet. */
static void
gs_reply(struct gs_call *c, grpc_status_code code, const char *msg,
    const ProtobufCMessage *resp)
{
	grpc_op	ops[4];
	size_t	n = 0;

	memset(ops, 0, sizeof(ops));
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (code == GRPC_STATUS_OK && resp != NULL) {
		c->out = gs_pack(resp);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->out;
	}
	gs_set_details(c, msg);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n++].data.send_status_from_server.status_details = &c->details;
	c->code = (int)code;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
	c->status_sent = 1;
	c->closed = 1;
	if (gs_batch(c, ops, n, &c->send_tag) == 0)
		c->sending = 1;
	if (code == GRPC_STATUS_OK)
		log_debug("grpc: %s %s: OK", c->peer, c->method);
	else
		log_debug("grpc: %s %s: status %d: %s", c->peer, c->method,
		    (int)code, msg != NULL ? msg : "");
}

static void
gs_reply_err(struct gs_call *c, const struct rp_error *err)
{
	grpc_status_code code = (grpc_status_code)err->code;

	/* A failure without a code is a bug in the layer below. */
	if (code == GRPC_STATUS_OK)
		code = GRPC_STATUS_INTERNAL;
	gs_reply(c, code, err->msg[0] != '\0' ? err->msg : "internal error",
	    NULL);
}

/* The final status of a stream whose RECV_CLOSE_ON_SERVER is posted. */
static void
gs_finish(struct gs_call *c, grpc_status_code code, const char *msg)
{
	grpc_op op;

	if (c->status_sent)
		return;
	if (c->sending) {
		c->want_status = 1;
		c->want_code = code;
		c->want_msg = msg;
		return;
	}
	c->status_sent = 1;
	c->want_status = 0;
	gs_set_details(c, msg);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op.data.send_status_from_server.status = code;
	op.data.send_status_from_server.status_details = &c->details;
	/* A stream the client cancelled ends CANCELLED, whatever we say. */
	c->code = c->cancelled ? GRPC_STATUS_CANCELLED : (int)code;
	if (gs_batch(c, &op, 1, &c->send_tag) == 0)
		c->sending = 1;
	else
		grpc_call_cancel(c->call, NULL);
	gs_unsubscribe(c);
}

/* Start a stream: its RECV_CLOSE_ON_SERVER, then the initial metadata. */
static int
gs_stream_begin(struct gs_call *c)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	if (gs_batch(c, &op, 1, &c->close_tag) == -1)
		return -1;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	if (gs_batch(c, &op, 1, &c->send_tag) == -1) {
		grpc_call_cancel(c->call, NULL);
		c->status_sent = 1;
		return -1;
	}
	c->sending = 1;
	return 0;
}

static void
gs_on_close(void *arg, int ok)
{
	struct gs_call *c = arg;

	c->closed = 1;
	if (c->cancelled && c->kind != GS_UNARY && c->kind != GS_UNKNOWN)
		log_info("grpc: %s %s: cancelled by the client or the "
		    "transport", c->peer, c->method);
	gs_unsubscribe(c);
	/* Nothing more can be sent on a finished call. */
	if (c->pending != NULL) {
		grpc_byte_buffer_destroy(c->pending);
		c->pending = NULL;
	}
	c->status_sent = 1;
	gs_call_release(c);
}

static void
gs_on_send(void *arg, int ok)
{
	struct gs_call *c = arg;

	c->sending = 0;
	if (c->out != NULL) {
		grpc_byte_buffer_destroy(c->out);
		c->out = NULL;
	}
	/* The peer is gone; RECV_CLOSE_ON_SERVER follows and cleans up. */
	if (!ok)
		c->status_sent = 1;
	if (c->kind == GS_EVENTS)
		gs_events_pump(c);
	else if (c->kind == GS_REFLECT)
		gs_reflect_next(c);
	gs_call_release(c);
}

/* --- authentication ----------------------------------------------------- */

/* Equal strings, in a time that depends on the lengths only. */
static int
gs_ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char	d = alen != blen;
	size_t		i;

	for (i = 0; i < alen && i < blen; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/*
 * 0 when the call carries "authorization: Bearer TOKEN" with a token of
 * ours, or none is needed; -1 with why otherwise.
 */
static int
gs_auth(const grpc_metadata_array *md, const char **why)
{
	const grpc_metadata	*e;
	const char		*v;
	size_t			 i, k, len;
	int			 ok = 0, seen = 0;

	if (svc->ntokens == 0)
		return 0;
	for (i = 0; i < md->count; i++) {
		e = &md->metadata[i];
		if (grpc_slice_str_cmp(e->key, "authorization") != 0)
			continue;
		seen = 1;
		v = (const char *)GRPC_SLICE_START_PTR(e->value);
		len = GRPC_SLICE_LENGTH(e->value);
		if (len < 7 || strncasecmp(v, "Bearer ", 7) != 0)
			continue;
		v += 7;
		len -= 7;
		for (k = 0; k < svc->ntokens; k++)
			ok |= gs_ct_equal(v, len, svc->tokens[k],
			    strlen(svc->tokens[k]));
	}
	if (ok)
		return 0;
	*why = seen ? "wrong bearer token" : "no bearer token";
	return -1;
}

/* Refusals are logged, but a flood of them is summarised. */
static void
gs_auth_log(const struct gs_call *c, const char *why)
{
	int64_t sec = mono_ms() / 1000;

	if (sec != svc->authlog_sec) {
		if (svc->authlog_quiet > 0)
			log_notice("grpc: %llu more unauthenticated calls not "
			    "logged", (unsigned long long)svc->authlog_quiet);
		svc->authlog_sec = sec;
		svc->authlog_n = 0;
		svc->authlog_quiet = 0;
	}
	if (svc->authlog_n++ < 10)
		log_notice("grpc: %s %s refused: %s", c->peer, c->method, why);
	else
		svc->authlog_quiet++;
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

/* --- SessionInfo from a snapshot ---------------------------------------- */

#define GS_ADDRLEN	(INET6_ADDRSTRLEN + IF_NAMESIZE + 2)

struct gs_info {
	Rtpproxy__SessionInfo		info;
	Rtpproxy__Endpoint		ep[5];
	Rtpproxy__DirectionStats	dir[2];
	char				addr[5][GS_ADDRLEN];
	char				id[SHM_ID_MAX];
	char				error[SHM_REASON_MAX];
};

static Rtpproxy__Endpoint *
gs_info_ep(Rtpproxy__Endpoint *ep, char *buf, const struct shm_addr *a)
{
	char ifname[IF_NAMESIZE];
	size_t len;

	rtpproxy__endpoint__init(ep);
	shm_addr_ntop(a, buf, GS_ADDRLEN);
	/* Keep the scope, so the address can be given back as it is. */
	if (a->family == AF_INET6 && a->scope_id != 0 &&
	    if_indextoname(a->scope_id, ifname) != NULL) {
		len = strlen(buf);
		snprintf(buf + len, GS_ADDRLEN - len, "%%%s", ifname);
	}
	ep->address = buf;
	ep->port = a->port;
	return ep;
}

/* The replies pass states, policies and event types on by number. */
#define GS_API_(e, api)	_Static_assert((int)(e) == (int)(api), #e);
#define GS_STATE_(name)							\
	GS_API_(SHM_##name, RTPPROXY__SESSION_STATE__SESSION_STATE_##name)
#define GS_EVENT_(name)							\
	GS_API_(SEV_##name, RTPPROXY__EVENT_TYPE__EVENT_TYPE_##name)
#define GS_LATCH_(name, num, word)					\
	GS_API_(SHM_LATCH_##name, RTPPROXY__LATCH_POLICY__LATCH_POLICY_##name)
GS_API_(SHM_FREE, RTPPROXY__SESSION_STATE__SESSION_STATE_UNSPECIFIED)
GS_STATE_(CREATED) GS_STATE_(CONNECTING) GS_STATE_(ACTIVE) GS_STATE_(ERROR)
GS_STATE_(CLOSED)
GS_EVENT_(CREATED) GS_EVENT_(STATE_CHANGED) GS_EVENT_(STATS_UPDATE)
GS_EVENT_(ERROR) GS_EVENT_(CLOSED) GS_EVENT_(RELATCHED)
GS_EVENT_(SOURCE_REFUSED)
SHM_LATCH_POLICIES(GS_LATCH_)

/* Each counter of the list is a uint64 of DirectionStats. */
#define GS_DIR_IS_U64_(f, kind, proto, metric, label, help)		\
	_Static_assert(_Generic(((Rtpproxy__DirectionStats *)0)->proto,	\
	    uint64_t: 1, default: 0), #proto ": not a uint64");
SHM_DIR_COUNTERS(GS_DIR_IS_U64_)

static void
gs_info_dir(Rtpproxy__DirectionStats *d, const struct session_dirsnap *s)
{
	rtpproxy__direction_stats__init(d);
#define GS_DIR_(f, kind, proto, metric, label, help)	d->proto = s->c.f;
	SHM_DIR_COUNTERS(GS_DIR_)
#undef GS_DIR_
	d->packets_dropped = shm_totals_dropped(&s->c);
	d->packets_lost = s->c.packets_lost;
	d->loss_rate = s->loss_rate;
	d->jitter_ms = s->jitter_ms;
	d->avg_latency_ms = s->avg_latency_ms;
	d->max_latency_ms = s->max_latency_ms;
	d->last_packet_ms = s->last_packet_ms;
	d->ssrc = s->ssrc;
}

static Rtpproxy__SessionInfo *
gs_info_fill(struct gs_info *gi, const struct session_snapshot *s)
{
	Rtpproxy__SessionInfo *i = &gi->info;

	rtpproxy__session_info__init(i);
	gs_text(gi->id, sizeof(gi->id), s->id, sizeof(s->id));
	gs_text(gi->error, sizeof(gi->error), s->error, sizeof(s->error));
	i->session_id = gi->id;
	i->state = (Rtpproxy__SessionState)s->state;
	i->listen = gs_info_ep(&gi->ep[0], gi->addr[0], &s->listen);
	i->forward = gs_info_ep(&gi->ep[1], gi->addr[1], &s->forward);
	i->destination = gs_info_ep(&gi->ep[2], gi->addr[2], &s->dest);
	if (s->latched.family != 0)
		i->latched = gs_info_ep(&gi->ep[3], gi->addr[3], &s->latched);
	if (s->latched_rtcp.family != 0)
		i->latched_rtcp = gs_info_ep(&gi->ep[4], gi->addr[4],
		    &s->latched_rtcp);
	i->transport = (s->flags & SHM_F_TCP) ?
	    RTPPROXY__TRANSPORT__TRANSPORT_TCP :
	    RTPPROXY__TRANSPORT__TRANSPORT_UDP;
	i->unidirectional = (s->flags & SHM_F_UNIDIR) != 0;
	i->disable_rtcp = (s->flags & SHM_F_NORTCP) != 0;
	i->created_at_ms = s->created_ms;
	i->last_activity_ms = s->last_activity_ms;
	i->error_message = gi->error;
	gs_info_dir(&gi->dir[0], &s->dir[SHM_DIR_FWD]);
	gs_info_dir(&gi->dir[1], &s->dir[SHM_DIR_REV]);
	i->forward_stats = &gi->dir[0];
	i->reverse_stats = &gi->dir[1];
	i->idle_timeout_s = s->idle_timeout_s;
	i->worker = s->worker;
	i->stats_interval_ms = s->stats_interval_ms;
	i->clock_rate = s->clock_rate;
	i->reverse_source = !(s->flags & SHM_F_SRC_ADDR) ?
	    RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ANY :
	    (s->flags & SHM_F_SRC_PORT) ?
	    RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ADDRESS_PORT :
	    RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ADDRESS;
	i->rate_limit_pps = s->rate_pps;
	i->rate_limit_bps = s->rate_bps;
	i->latch_policy = (Rtpproxy__LatchPolicy)s->latch_policy;
	i->relatches = s->relatches;
	return i;
}

/* --- the unary methods -------------------------------------------------- */

static void
gs_rpc_create(struct gs_call *c, grpc_byte_buffer *bb)
{
	Rtpproxy__CreateSessionRequest	*req;
	Rtpproxy__CreateSessionResponse	 resp =
	    RTPPROXY__CREATE_SESSION_RESPONSE__INIT;
	struct session_params		 p;
	struct session_snapshot		 snap;
	struct rp_error			 err;
	struct gs_info			 gi;

	memset(&err, 0, sizeof(err));
	req = (Rtpproxy__CreateSessionRequest *)gs_decode(bb,
	    &rtpproxy__create_session_request__descriptor, &err);
	if (req == NULL) {
		gs_reply_err(c, &err);
		return;
	}
	if (request_create_params(req, &p, &err) == -1 ||
	    session_create(&p, &snap, &err) == -1)
		gs_reply_err(c, &err);
	else {
		resp.session = gs_info_fill(&gi, &snap);
		gs_reply(c, GRPC_STATUS_OK, NULL, &resp.base);
	}
	rtpproxy__create_session_request__free_unpacked(req, NULL);
}

static void
gs_rpc_destroy(struct gs_call *c, grpc_byte_buffer *bb)
{
	Rtpproxy__DestroySessionRequest		*req;
	Rtpproxy__DestroySessionResponse	 resp =
	    RTPPROXY__DESTROY_SESSION_RESPONSE__INIT;
	struct session_snapshot			 snap;
	struct rp_error				 err;
	struct gs_info				 gi;

	memset(&err, 0, sizeof(err));
	req = (Rtpproxy__DestroySessionRequest *)gs_decode(bb,
	    &rtpproxy__destroy_session_request__descriptor, &err);
	if (req == NULL) {
		gs_reply_err(c, &err);
		return;
	}
	if (request_check_id(req->session_id, 0, &err) == -1 ||
	    session_destroy(req->session_id, &snap, &err) == -1)
		gs_reply_err(c, &err);
	else {
		resp.session = gs_info_fill(&gi, &snap);
		gs_reply(c, GRPC_STATUS_OK, NULL, &resp.base);
	}
	rtpproxy__destroy_session_request__free_unpacked(req, NULL);
}

static void
gs_rpc_status(struct gs_call *c, grpc_byte_buffer *bb)
{
	Rtpproxy__GetSessionStatusRequest	*req;
	Rtpproxy__GetSessionStatusResponse	 resp =
	    RTPPROXY__GET_SESSION_STATUS_RESPONSE__INIT;
	struct session_snapshot			 snap;
	struct rp_error				 err;
	struct gs_info				 gi;

	memset(&err, 0, sizeof(err));
	req = (Rtpproxy__GetSessionStatusRequest *)gs_decode(bb,
	    &rtpproxy__get_session_status_request__descriptor, &err);
	if (req == NULL) {
		gs_reply_err(c, &err);
		return;
	}
	if (request_check_id(req->session_id, 0, &err) == -1 ||
	    session_get(req->session_id, &snap, &err) == -1)
		gs_reply_err(c, &err);
	else {
		resp.session = gs_info_fill(&gi, &snap);
		gs_reply(c, GRPC_STATUS_OK, NULL, &resp.base);
	}
	rtpproxy__get_session_status_request__free_unpacked(req, NULL);
}

static void
gs_rpc_list(struct gs_call *c, grpc_byte_buffer *bb)
{
	Rtpproxy__ListSessionsRequest	*req;
	Rtpproxy__ListSessionsResponse	 resp =
	    RTPPROXY__LIST_SESSIONS_RESPONSE__INIT;
	Rtpproxy__SessionInfo		**ptrs = NULL;
	struct gs_info			*gis = NULL;
	struct session_snapshot		 snap;
	struct rp_error			 err;
	uint32_t			 page, start = 0, tstate, nslots, i;
	size_t				 n = 0;
	char				 token[REQUEST_TOKEN_MAX] = "";

	memset(&err, 0, sizeof(err));
	req = (Rtpproxy__ListSessionsRequest *)gs_decode(bb,
	    &rtpproxy__list_sessions_request__descriptor, &err);
	if (req == NULL) {
		gs_reply_err(c, &err);
		return;
	}
	if (req->state < RTPPROXY__SESSION_STATE__SESSION_STATE_UNSPECIFIED ||
	    req->state > RTPPROXY__SESSION_STATE__SESSION_STATE_CLOSED) {
		rp_err(&err, RP_INVALID_ARGUMENT, "state %d is not a known "
		    "SessionState (0-5)", (int)req->state);
		goto fail;
	}
	nslots = gs_table != NULL ? gs_table->nslots : 0;
	if (req->page_token[0] != '\0' &&
	    (request_token_parse(svc->token_key, req->page_token, &start,
	    &tstate) == -1 ||
	    start > nslots)) {
		rp_err(&err, RP_INVALID_ARGUMENT, "page_token is not valid");
		goto fail;
	}
	if (req->page_token[0] != '\0' && tstate != (uint32_t)req->state) {
		rp_err(&err, RP_INVALID_ARGUMENT,
		    "page_token was made for another state filter");
		goto fail;
	}
	page = req->page_size == 0 ? GS_PAGE_DEFAULT : req->page_size;
	if (page > GS_PAGE_MAX)
		page = GS_PAGE_MAX;
	gis = xcalloc(page, sizeof(*gis));
	ptrs = xcalloc(page, sizeof(*ptrs));
	for (i = session_next(start); i < nslots; i = session_next(i + 1)) {
		session_snapshot(i, &snap);
		if (snap.state == SHM_FREE || (req->state != 0 &&
		    snap.state != (uint32_t)req->state))
			continue;
		if (n == page) {
			request_token_make(svc->token_key, i,
			    (uint32_t)req->state, token, sizeof(token));
			break;
		}
		ptrs[n] = gs_info_fill(&gis[n], &snap);
		n++;
	}
	resp.n_sessions = n;
	resp.sessions = ptrs;
	resp.next_page_token = token;
	gs_reply(c, GRPC_STATUS_OK, NULL, &resp.base);
	free(gis);
	free(ptrs);
	rtpproxy__list_sessions_request__free_unpacked(req, NULL);
	return;
fail:
	gs_reply_err(c, &err);
	rtpproxy__list_sessions_request__free_unpacked(req, NULL);
}

static void
gs_rpc_health(struct gs_call *c, grpc_byte_buffer *bb)
{
	Grpc__Health__V1__HealthCheckRequest	*req;
	Grpc__Health__V1__HealthCheckResponse	 resp =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	struct rp_error				 err;
	size_t					 i;

	memset(&err, 0, sizeof(err));
	req = (Grpc__Health__V1__HealthCheckRequest *)gs_decode(bb,
	    &grpc__health__v1__health_check_request__descriptor, &err);
	if (req == NULL) {
		gs_reply_err(c, &err);
		return;
	}
	for (i = 0; i < sizeof(gs_services) / sizeof(gs_services[0]); i++)
		if (strcmp(req->service, gs_services[i]) == 0)
			break;
	if (req->service[0] != '\0' &&
	    i == sizeof(gs_services) / sizeof(gs_services[0]))
		gs_reply(c, GRPC_STATUS_NOT_FOUND, "unknown service", NULL);
	else {
		resp.status =
		    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
		gs_reply(c, GRPC_STATUS_OK, NULL, &resp.base);
	}
	grpc__health__v1__health_check_request__free_unpacked(req, NULL);
}

/* --- StreamSessionEvents ------------------------------------------------ */

static void
gs_rpc_events(struct gs_call *c, grpc_byte_buffer *bb)
{
	Rtpproxy__StreamSessionEventsRequest	*req;
	struct rp_error				 err;

	memset(&err, 0, sizeof(err));
	req = (Rtpproxy__StreamSessionEventsRequest *)gs_decode(bb,
	    &rtpproxy__stream_session_events_request__descriptor, &err);
	if (req == NULL) {
		gs_reply_err(c, &err);
		return;
	}
	if (request_check_id(req->session_id, 1, &err) == -1) {
		gs_reply_err(c, &err);
		goto out;
	}
	if (svc->nsubs >= GS_MAX_SUBSCRIBERS) {
		gs_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "too many event subscribers", NULL);
		goto out;
	}
	snprintf(c->filter, sizeof(c->filter), "%s", req->session_id);
	if (gs_stream_begin(c) == -1)
		goto out;
	LIST_INSERT_HEAD(&svc->subs, c, sub);
	c->subscribed = 1;
	svc->nsubs++;
	log_info("grpc: %s subscribed to the events of %s", c->peer,
	    c->filter[0] != '\0' ? c->filter : "every session");
out:
	rtpproxy__stream_session_events_request__free_unpacked(req, NULL);
}

/* The table-wide event counters: one sent, or one dropped. */
static void
gs_count_event(int dropped)
{
	struct shm_header *h;

	if (gs_table == NULL || (h = gs_table->hdr) == NULL)
		return;
	atomic_fetch_add_explicit(dropped ? &h->events_dropped :
	    &h->events_sent, 1, memory_order_relaxed);
}

static void
gs_ring_push(struct gs_call *c, grpc_slice s)
{
	uint32_t	bound = svc->event_queue, cap, i;
	grpc_slice	*ring;

	while (c->ring_len >= bound) {
		grpc_slice_unref(c->ring[c->ring_head]);
		c->ring_head = (c->ring_head + 1) % c->ring_cap;
		c->ring_len--;
		c->missed++;
		c->dropped++;
		gs_count_event(1);
		if (!c->warned) {
			c->warned = 1;
			log_notice("grpc: event subscriber %s is not keeping "
			    "up; dropping its oldest events", c->peer);
		}
	}
	if (c->ring_len == c->ring_cap) {
		cap = c->ring_cap ? c->ring_cap * 2 : 16;
		if (cap > bound)
			cap = bound;
		ring = xreallocarray(NULL, cap, sizeof(*ring));
		for (i = 0; i < c->ring_len; i++)
			ring[i] = c->ring[(c->ring_head + i) % c->ring_cap];
		free(c->ring);
		c->ring = ring;
		c->ring_cap = cap;
		c->ring_head = 0;
	}
	c->ring[(c->ring_head + c->ring_len) % c->ring_cap] = s;
	c->ring_len++;
}

/*
 * Send the oldest queued event.  The encoded event is shared by every
 * subscriber; a subscriber that missed events gets field 8
 * (events_missed) appended as a second slice, which protobuf allows.
 */
static void
gs_events_pump(struct gs_call *c)
{
	grpc_slice	s[2];
	grpc_op		op;
	uint8_t		b[12];
	uint64_t	v;
	size_t		n = 1, len = 0;

	if (c->sending || c->status_sent)
		return;
	if (c->ring_len == 0) {
		if (c->want_status || svc->draining)
			gs_finish(c, c->want_status ? c->want_code :
			    GRPC_STATUS_OK, c->want_status ? c->want_msg :
			    NULL);
		return;
	}
	s[0] = c->ring[c->ring_head];
	c->ring_head = (c->ring_head + 1) % c->ring_cap;
	c->ring_len--;
	if (c->missed > 0) {
		b[len++] = (8 << 3) | 0;
		for (v = c->missed; v >= 0x80; v >>= 7)
			b[len++] = (uint8_t)(v | 0x80);
		b[len++] = (uint8_t)v;
		s[n++] = grpc_slice_from_copied_buffer((const char *)b, len);
		c->missed = 0;
	}
	c->out = grpc_raw_byte_buffer_create(s, n);
	while (n > 0)
		grpc_slice_unref(s[--n]);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = c->out;
	if (gs_batch(c, &op, 1, &c->send_tag) == -1) {
		grpc_byte_buffer_destroy(c->out);
		c->out = NULL;
		c->status_sent = 1;
		gs_unsubscribe(c);
		grpc_call_cancel(c->call, NULL);
		return;
	}
	c->sending = 1;
	c->delivered++;
	gs_count_event(0);
}

static int
gs_sub_wants(const struct gs_call *c, const char *id)
{
	return !c->status_sent && (c->filter[0] == '\0' ||
	    strcmp(c->filter, id) == 0);
}

/* Streams of events being served now, for monitoring. */
int
grpcsvc_subscribers(void)
{
	return svc != NULL ? svc->nsubs : 0;
}

_Static_assert(GS_NMETHODS == SHM_GRPC_METHODS - 1,
    "the call counters have one row per method and one for unknown ones");

/* The path of row i of the call counters; NULL for unknown methods. */
const char *
grpcsvc_method_path(int i)
{
	return i >= 0 && i < GS_NMETHODS ? gs_methods[i].path : NULL;
}

void
grpcsvc_publish(const struct session_event *ev)
{
	Rtpproxy__SessionEvent	 m = RTPPROXY__SESSION_EVENT__INIT;
	Rtpproxy__Endpoint	 ep[2];
	struct gs_call		*c, *next;
	struct gs_info		 gi;
	grpc_slice		 s;
	char			 id[SHM_ID_MAX], reason[512];
	char			 addr[2][GS_ADDRLEN];
	size_t			 len;

	if (svc == NULL || LIST_EMPTY(&svc->subs))
		return;
	gs_text(id, sizeof(id), ev->snap.id, sizeof(ev->snap.id));
	LIST_FOREACH(c, &svc->subs, sub)
		if (gs_sub_wants(c, id))
			break;
	if (c == NULL)
		return;

	m.type = (Rtpproxy__EventType)ev->type;
	m.session_id = id;
	m.timestamp_ms = ev->timestamp_ms;
	m.state = (Rtpproxy__SessionState)ev->state;
	m.previous_state = (Rtpproxy__SessionState)ev->previous_state;
	m.session = gs_info_fill(&gi, &ev->snap);
	if (ev->reason != NULL) {
		gs_text(reason, sizeof(reason), ev->reason, strlen(ev->reason));
		m.reason = reason;
	}
	if (ev->addr != NULL)
		m.address = gs_info_ep(&ep[0], addr[0], ev->addr);
	if (ev->prev_addr != NULL)
		m.previous_address = gs_info_ep(&ep[1], addr[1],
		    ev->prev_addr);
	m.rtcp = ev->rtcp != 0;
	len = rtpproxy__session_event__get_packed_size(&m);
	s = grpc_slice_malloc(len);
	rtpproxy__session_event__pack(&m, GRPC_SLICE_START_PTR(s));

	for (c = LIST_FIRST(&svc->subs); c != NULL; c = next) {
		next = LIST_NEXT(c, sub);
		if (!gs_sub_wants(c, id))
			continue;
		gs_ring_push(c, grpc_slice_ref(s));
		gs_events_pump(c);
	}
	grpc_slice_unref(s);
}

/* --- ServerReflectionInfo (bidi: one request answered at a time) -------- */

static void
gs_recv(struct gs_call *c)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->in;
	if (gs_batch(c, &op, 1, &c->recv_tag) == 0)
		c->recving = 1;
	else
		grpc_call_cancel(c->call, NULL);
}

static void
gs_rpc_reflect(struct gs_call *c, grpc_byte_buffer *unused)
{
	c->refl = reflection_stream_new();
	if (gs_stream_begin(c) == -1)
		return;
	gs_recv(c);
}

static void
gs_send_msg(struct gs_call *c, grpc_byte_buffer *bb)
{
	grpc_op op;

	c->out = bb;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = c->out;
	if (gs_batch(c, &op, 1, &c->send_tag) == 0)
		c->sending = 1;
	else {
		grpc_byte_buffer_destroy(c->out);
		c->out = NULL;
		c->status_sent = 1;
		grpc_call_cancel(c->call, NULL);
	}
}

/* After a send: the waiting answer, the final status, or the next read. */
static void
gs_reflect_next(struct gs_call *c)
{
	grpc_byte_buffer *bb;

	if (c->sending || c->status_sent)
		return;
	if (c->pending != NULL) {
		bb = c->pending;
		c->pending = NULL;
		gs_send_msg(c, bb);
	} else if (c->want_status)
		gs_finish(c, c->want_code, c->want_msg);
	else if (svc->draining)
		gs_finish(c, GRPC_STATUS_UNAVAILABLE, GS_MSG_SHUTDOWN);
	else if (!c->recving)
		gs_recv(c);
}

static void
gs_on_recv(void *arg, int ok)
{
	struct gs_call	*c = arg;
	grpc_byte_buffer *bb = c->in;
	struct rp_error	 err;
	grpc_slice	 s;
	uint8_t		*out;
	size_t		 outlen;
	int		 rc;

	c->recving = 0;
	c->in = NULL;
	if (!ok || bb == NULL || c->status_sent) {
		/* The client is done sending (or gone). */
		if (bb != NULL)
			grpc_byte_buffer_destroy(bb);
		if (!c->status_sent)
			gs_finish(c, GRPC_STATUS_OK, NULL);
		gs_call_release(c);
		return;
	}
	s = gs_bytes(bb);
	grpc_byte_buffer_destroy(bb);
	memset(&err, 0, sizeof(err));
	rc = request_check_strings(
	    &grpc__reflection__v1__server_reflection_request__descriptor,
	    GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), "", 0, &err);
	if (rc == 0 && reflection_answer(c->refl, GRPC_SLICE_START_PTR(s),
	    GRPC_SLICE_LENGTH(s), &out, &outlen) == -1) {
		rp_err(&err, RP_INVALID_ARGUMENT, REQUEST_MALFORMED);
		rc = -1;
	}
	grpc_slice_unref(s);
	if (rc == -1) {
		log_debug("grpc: %s %s: %s", c->peer, c->method, err.msg);
		gs_finish(c, GRPC_STATUS_INVALID_ARGUMENT, err.msg[0] == 'm' ?
		    REQUEST_MALFORMED : "request is not valid UTF-8");
		gs_call_release(c);
		return;
	}
	s = grpc_slice_from_copied_buffer((const char *)out, outlen);
	free(out);
	bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	if (c->sending)
		c->pending = bb;
	else
		gs_send_msg(c, bb);
	gs_call_release(c);
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
		if (c->kind == GS_EVENTS)
			gs_events_pump(c);
		else if (c->kind == GS_REFLECT)
			gs_reflect_next(c);
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

int
grpcsvc_start(struct event_base *base, const struct config *conf)
{
	grpc_arg		 args[6];
	grpc_channel_args	 chargs;
	sigset_t		 all, old;
	int			 i, rc;

	if (svc != NULL) {
		log_warnx("grpc: the service is already running");
		return -1;
	}
	if (conf->nlisten == 0) {
		log_warnx("grpc: no listen address is configured");
		return -1;
	}
	svc = xcalloc(1, sizeof(*svc));
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

	/*
	 * gRPC listens on nothing: apigate.c accepts the connections and
	 * hands them over.  What gRPC still bounds itself is set here.
	 */
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
			goto fail_server;
		}
	}
	svc->gen_tag.fn = gs_on_generic;
	grpc_server_start(svc->server);
	if (gate_start(base, svc->server, conf) == -1)
		goto fail_server;
	svc->gate_up = 1;
	for (i = 0; svc->ntokens > 0 && svc->tls == 0 && i < conf->nlisten;
	    i++) {
		if (!addr_loopback(&conf->listen[i]))
			log_warnx("grpc: bearer tokens without TLS cross the "
			    "network in clear text on %s: set tls-cert and "
			    "tls-key", conf->listen[i].text);
	}

	/* Signals are the loop's business, never the queue thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&svc->thread, NULL, gs_cq_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_warnx("grpc: pthread_create: %s", strerror(rc));
		goto fail_server;
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
		goto fail_server;
	}
	for (i = 0; i < GS_NSLOTS; i++)
		gs_arm(&svc->methods[i]);
	gs_arm_generic();
	return 0;

fail_server:
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
	} else {
		grpc_event ev;

		do {
			ev = grpc_completion_queue_next(svc->cq,
			    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_millis(1000, GPR_TIMESPAN)), NULL);
		} while (ev.type == GRPC_OP_COMPLETE &&
		    ev.tag != &svc->shutdown_tag);
	}
fail:
	gs_destroy();
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
