/*
 * The blocking gRPC client.  Each client has its own completion queue;
 * waiting for one operation may complete others (a stream's status, say),
 * so every operation has a small tag that records its completion and any
 * wait simply drains the queue until its own tag is done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "client.h"

#define RPC_SLACK_MS	5000	/* past a deadline, before giving up */

struct rpc_tag {
	int	done;
	int	ok;
};

struct rpc_client {
	grpc_channel		*ch;
	grpc_completion_queue	*cq;
	grpc_metadata		 auth;		/* "authorization" */
	size_t			 nmd;		/* 0 or 1 */
};

struct rpc_stream {
	struct rpc_client	*c;
	grpc_call		*call;
	gpr_timespec		 deadline;
	int			 has_deadline;
	struct rpc_tag		 t_send, t_md, t_recv, t_status;
	int			 send_posted, md_posted, recv_posted;
	int			 status_posted;
	grpc_byte_buffer	*req;
	grpc_byte_buffer	*in;
	grpc_metadata_array	 md, trailing;
	grpc_status_code	 status;
	grpc_slice		 details;
	int			 eof;
};

static gpr_timespec
rpc_after(int ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	    gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* Drain the queue until t is done.  0, or -1 at the deadline. */
static int
rpc_wait(struct rpc_client *c, struct rpc_tag *t, gpr_timespec deadline)
{
	grpc_event	ev;
	struct rpc_tag	*o;

	while (!t->done) {
		ev = grpc_completion_queue_next(c->cq, deadline, NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			return -1;
		o = ev.tag;
		o->done = 1;
		o->ok = ev.success;
	}
	return 0;
}

static void
rpc_tag_reset(struct rpc_tag *t)
{
	t->done = 0;
	t->ok = 0;
}

static void
rpc_details(grpc_slice s, char *buf, size_t len)
{
	size_t n;

	if (buf == NULL || len == 0)
		return;
	n = GRPC_SLICE_LENGTH(s);
	if (n >= len)
		n = len - 1;
	memcpy(buf, GRPC_SLICE_START_PTR(s), n);
	buf[n] = '\0';
}

static void
rpc_set_details(char *buf, size_t len, const char *msg)
{
	if (buf != NULL && len > 0)
		snprintf(buf, len, "%s", msg);
}

static grpc_byte_buffer *
rpc_buffer(const void *data, size_t len)
{
	grpc_byte_buffer	*bb;
	grpc_slice		 s;

	s = grpc_slice_from_copied_buffer(data, len);
	bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

/* The bytes of a received message, from malloc (never NULL). */
static void *
rpc_bytes(grpc_byte_buffer *bb, size_t *len)
{
	grpc_byte_buffer_reader	 rd;
	grpc_slice		 s;
	void			*p;

	if (!grpc_byte_buffer_reader_init(&rd, bb)) {
		*len = 0;
		return calloc(1, 1);
	}
	s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	*len = GRPC_SLICE_LENGTH(s);
	if ((p = malloc(*len + 1)) != NULL)
		memcpy(p, GRPC_SLICE_START_PTR(s), *len);
	grpc_slice_unref(s);
	return p;
}

static grpc_call *
rpc_call(struct rpc_client *c, const char *method, gpr_timespec deadline)
{
	grpc_call	*call;
	grpc_slice	 m;

	m = grpc_slice_from_copied_string(method);
	call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS,
	    c->cq, m, NULL, deadline, NULL);
	grpc_slice_unref(m);
	return call;
}

struct rpc_client *
rpc_client_new_secure(const char *target, const struct rpc_security *sec)
{
	struct rpc_client		*c;
	grpc_channel_credentials	*creds;
	grpc_ssl_pem_key_cert_pair	 pair;
	grpc_arg			 args[7];
	grpc_channel_args		 chargs;
	char				*bearer;
	size_t				 n = 0;

	if (target == NULL || *target == '\0')
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	grpc_init();
	memset(args, 0, sizeof(args));
	/* A daemon that is just starting: try again soon, not in a second. */
	args[n].type = GRPC_ARG_INTEGER;
	args[n].key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
	args[n++].value.integer = 100;
	args[n].type = GRPC_ARG_INTEGER;
	args[n].key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
	args[n++].value.integer = 1000;
	args[n].type = GRPC_ARG_STRING;
	args[n].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
	args[n++].value.string = (char *)"rtpproxyctl";
	/* A connection of its own, not one shared with other clients. */
	args[n].type = GRPC_ARG_INTEGER;
	args[n].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
	args[n++].value.integer = 1;
	if (sec != NULL && sec->window > 0) {
		args[n].type = GRPC_ARG_INTEGER;
		args[n].key = (char *)GRPC_ARG_HTTP2_BDP_PROBE;
		args[n++].value.integer = 0;
		args[n].type = GRPC_ARG_INTEGER;
		args[n].key = (char *)GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES;
		args[n++].value.integer = sec->window;
	}
	if (sec != NULL && sec->tls && sec->name != NULL) {
		args[n].type = GRPC_ARG_STRING;
		args[n].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
		args[n++].value.string = (char *)sec->name;
	}
	chargs.num_args = n;
	chargs.args = args;
	if (sec != NULL && sec->tls) {
		pair.private_key = sec->key;
		pair.cert_chain = sec->cert;
		creds = grpc_ssl_credentials_create_ex(sec->ca,
		    sec->cert != NULL && sec->key != NULL ? &pair : NULL, NULL,
		    NULL);
	} else
		creds = grpc_insecure_credentials_create();
	if (creds != NULL) {
		c->ch = grpc_channel_create(target, creds, &chargs);
		grpc_channel_credentials_release(creds);
	}
	c->cq = grpc_completion_queue_create_for_next(NULL);
	if (sec != NULL && sec->token != NULL &&
	    asprintf(&bearer, "Bearer %s", sec->token) != -1) {
		c->auth.key = grpc_slice_from_static_string("authorization");
		c->auth.value = grpc_slice_from_copied_string(bearer);
		explicit_bzero(bearer, strlen(bearer));
		free(bearer);
		c->nmd = 1;
	}
	if (c->ch == NULL || c->cq == NULL) {
		rpc_client_free(c);
		return NULL;
	}
	return c;
}

struct rpc_client *
rpc_client_new_window(const char *target, int window)
{
	struct rpc_security sec;

	memset(&sec, 0, sizeof(sec));
	sec.window = window;
	return rpc_client_new_secure(target, &sec);
}

struct rpc_client *
rpc_client_new(const char *target)
{
	return rpc_client_new_secure(target, NULL);
}

void
rpc_client_free(struct rpc_client *c)
{
	grpc_event ev;

	if (c == NULL)
		return;
	if (c->nmd > 0)
		grpc_slice_unref(c->auth.value);
	if (c->ch != NULL)
		grpc_channel_destroy(c->ch);
	if (c->cq != NULL) {
		grpc_completion_queue_shutdown(c->cq);
		do {
			ev = grpc_completion_queue_next(c->cq,
			    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		} while (ev.type != GRPC_QUEUE_SHUTDOWN);
		grpc_completion_queue_destroy(c->cq);
	}
	free(c);
	grpc_shutdown();
}

int
rpc_unary_raw(struct rpc_client *c, const char *method, const void *req,
    size_t reqlen, void **resp, size_t *resplen, char *details, size_t dlen,
    int timeout_ms)
{
	grpc_call		*call;
	grpc_op			 ops[6];
	grpc_byte_buffer	*out = NULL, *in = NULL;
	grpc_metadata_array	 md, trailing;
	grpc_status_code	 status = GRPC_STATUS_UNKNOWN;
	grpc_slice		 sdetails = grpc_empty_slice();
	struct rpc_tag		 t = { 0, 0 };
	gpr_timespec		 deadline;
	size_t			 n = 0;

	if (resp != NULL)
		*resp = NULL;
	if (resplen != NULL)
		*resplen = 0;
	rpc_set_details(details, dlen, "");
	if (timeout_ms <= 0)
		timeout_ms = RPC_DEFAULT_TIMEOUT_MS;
	deadline = rpc_after(timeout_ms);
	if ((call = rpc_call(c, method, deadline)) == NULL) {
		rpc_set_details(details, dlen, "cannot create a call");
		return GRPC_STATUS_INTERNAL;
	}
	grpc_metadata_array_init(&md);
	grpc_metadata_array_init(&trailing);
	memset(ops, 0, sizeof(ops));
	ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[n].data.send_initial_metadata.count = c->nmd;
	ops[n++].data.send_initial_metadata.metadata = &c->auth;
	if (req != NULL) {
		out = rpc_buffer(req, reqlen);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = out;
	}
	ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[n++].data.recv_initial_metadata.recv_initial_metadata = &md;
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &in;
	ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[n].data.recv_status_on_client.trailing_metadata = &trailing;
	ops[n].data.recv_status_on_client.status = &status;
	ops[n++].data.recv_status_on_client.status_details = &sdetails;
	if (grpc_call_start_batch(call, ops, n, &t, NULL) != GRPC_CALL_OK) {
		status = GRPC_STATUS_INTERNAL;
		rpc_set_details(details, dlen, "cannot start the call");
		goto out;
	}
	/* The call's deadline ends it; the slack only guards against a hang. */
	if (rpc_wait(c, &t, gpr_time_add(deadline,
	    gpr_time_from_millis(RPC_SLACK_MS, GPR_TIMESPAN))) == -1) {
		grpc_call_cancel(call, NULL);
		rpc_wait(c, &t, gpr_inf_future(GPR_CLOCK_MONOTONIC));
	}
	rpc_details(sdetails, details, dlen);
	if (status == GRPC_STATUS_OK && in != NULL && resp != NULL) {
		*resp = rpc_bytes(in, resplen != NULL ? resplen : &n);
		if (*resp == NULL) {
			status = GRPC_STATUS_RESOURCE_EXHAUSTED;
			rpc_set_details(details, dlen, "out of memory");
		}
	}
out:
	if (out != NULL)
		grpc_byte_buffer_destroy(out);
	if (in != NULL)
		grpc_byte_buffer_destroy(in);
	grpc_slice_unref(sdetails);
	grpc_metadata_array_destroy(&md);
	grpc_metadata_array_destroy(&trailing);
	grpc_call_unref(call);
	return (int)status;
}

int
rpc_unary(struct rpc_client *c, const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
    ProtobufCMessage **resp, char *details, size_t dlen, int timeout_ms)
{
	uint8_t	*buf, *in = NULL;
	size_t	 len, inlen = 0;
	int	 rc;

	if (resp != NULL)
		*resp = NULL;
	len = protobuf_c_message_get_packed_size(req);
	if ((buf = malloc(len + 1)) == NULL) {
		rpc_set_details(details, dlen, "out of memory");
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	protobuf_c_message_pack(req, buf);
	rc = rpc_unary_raw(c, method, buf, len, (void **)&in, &inlen, details,
	    dlen, timeout_ms);
	free(buf);
	if (rc == GRPC_STATUS_OK) {
		if (in == NULL) {
			rc = GRPC_STATUS_INTERNAL;
			rpc_set_details(details, dlen, "no response message");
		} else if (resp != NULL && (*resp =
		    protobuf_c_message_unpack(desc, NULL, inlen, in)) == NULL) {
			rc = GRPC_STATUS_INTERNAL;
			rpc_set_details(details, dlen, "malformed response");
		}
	}
	free(in);
	return rc;
}

struct rpc_stream *
rpc_stream_open_raw(struct rpc_client *c, const char *method,
    const void *req, size_t reqlen, int timeout_ms)
{
	struct rpc_stream	*s;
	grpc_op			 ops[3];
	size_t			 n = 0;
	int			 bound;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->c = c;
	s->has_deadline = timeout_ms > 0;
	s->deadline = s->has_deadline ? rpc_after(timeout_ms) :
	    gpr_inf_future(GPR_CLOCK_MONOTONIC);
	s->details = grpc_empty_slice();
	s->status = GRPC_STATUS_UNKNOWN;
	grpc_metadata_array_init(&s->md);
	grpc_metadata_array_init(&s->trailing);
	if ((s->call = rpc_call(c, method, s->deadline)) == NULL) {
		grpc_metadata_array_destroy(&s->md);
		grpc_metadata_array_destroy(&s->trailing);
		free(s);
		return NULL;
	}

	/* The status first: it tells when the stream is over, whatever. */
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &s->trailing;
	ops[0].data.recv_status_on_client.status = &s->status;
	ops[0].data.recv_status_on_client.status_details = &s->details;
	if (grpc_call_start_batch(s->call, ops, 1, &s->t_status, NULL) ==
	    GRPC_CALL_OK)
		s->status_posted = 1;

	memset(ops, 0, sizeof(ops));
	ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[n].data.send_initial_metadata.count = c->nmd;
	ops[n++].data.send_initial_metadata.metadata = &c->auth;
	if (req != NULL) {
		s->req = rpc_buffer(req, reqlen);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = s->req;
	}
	ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	if (grpc_call_start_batch(s->call, ops, n, &s->t_send, NULL) ==
	    GRPC_CALL_OK)
		s->send_posted = 1;

	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[0].data.recv_initial_metadata.recv_initial_metadata = &s->md;
	if (grpc_call_start_batch(s->call, ops, 1, &s->t_md, NULL) ==
	    GRPC_CALL_OK)
		s->md_posted = 1;

	if (!s->status_posted || !s->send_posted || !s->md_posted) {
		grpc_call_cancel(s->call, NULL);
		return s;
	}
	bound = timeout_ms > 0 && timeout_ms < RPC_DEFAULT_TIMEOUT_MS ?
	    timeout_ms : RPC_DEFAULT_TIMEOUT_MS;
	rpc_wait(c, &s->t_md, rpc_after(bound));
	return s;
}

struct rpc_stream *
rpc_stream_open(struct rpc_client *c, const char *method,
    const ProtobufCMessage *req, int timeout_ms)
{
	struct rpc_stream	*s;
	uint8_t			*buf;
	size_t			 len;

	len = protobuf_c_message_get_packed_size(req);
	if ((buf = malloc(len + 1)) == NULL)
		return NULL;
	protobuf_c_message_pack(req, buf);
	s = rpc_stream_open_raw(c, method, buf, len, timeout_ms);
	free(buf);
	return s;
}

/* The end of the stream: its status must come soon. */
static void
rpc_stream_end(struct rpc_stream *s)
{
	s->eof = 1;
	if (!s->status_posted || s->t_status.done)
		return;
	if (rpc_wait(s->c, &s->t_status, rpc_after(RPC_SLACK_MS)) == -1) {
		grpc_call_cancel(s->call, NULL);
		rpc_wait(s->c, &s->t_status,
		    gpr_inf_future(GPR_CLOCK_MONOTONIC));
	}
}

/* The next message as a buffer: 0, RPC_TIMEOUT or RPC_EOF. */
static int
rpc_stream_recv(struct rpc_stream *s, grpc_byte_buffer **bb, int timeout_ms)
{
	grpc_op op;

	*bb = NULL;
	if (s->eof)
		return RPC_EOF;
	if (!s->recv_posted) {
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_RECV_MESSAGE;
		op.data.recv_message.recv_message = &s->in;
		rpc_tag_reset(&s->t_recv);
		if (grpc_call_start_batch(s->call, &op, 1, &s->t_recv, NULL) !=
		    GRPC_CALL_OK) {
			rpc_stream_end(s);
			return RPC_EOF;
		}
		s->recv_posted = 1;
	}
	if (rpc_wait(s->c, &s->t_recv, timeout_ms < 0 ?
	    gpr_inf_future(GPR_CLOCK_MONOTONIC) : rpc_after(timeout_ms)) == -1)
		return RPC_TIMEOUT;
	s->recv_posted = 0;
	*bb = s->in;
	s->in = NULL;
	if (*bb == NULL) {
		rpc_stream_end(s);
		return RPC_EOF;
	}
	return 0;
}

int
rpc_stream_next(struct rpc_stream *s, const ProtobufCMessageDescriptor *desc,
    ProtobufCMessage **msg, int timeout_ms)
{
	grpc_byte_buffer	*bb;
	uint8_t			*buf;
	size_t			 len;
	int			 rc;

	*msg = NULL;
	if ((rc = rpc_stream_recv(s, &bb, timeout_ms)) != 0)
		return rc;
	buf = rpc_bytes(bb, &len);
	grpc_byte_buffer_destroy(bb);
	if (buf == NULL)
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	*msg = protobuf_c_message_unpack(desc, NULL, len, buf);
	free(buf);
	return *msg != NULL ? 0 : GRPC_STATUS_INTERNAL;
}

int
rpc_stream_status(struct rpc_stream *s, char *details, size_t dlen)
{
	grpc_byte_buffer	*bb;
	gpr_timespec		 until = rpc_after(RPC_SLACK_MS);

	rpc_set_details(details, dlen, "");
	if (!s->status_posted) {
		rpc_set_details(details, dlen, "the call could not start");
		return GRPC_STATUS_INTERNAL;
	}
	/* Read what is left, so that the status can arrive. */
	while (!s->t_status.done && !s->eof &&
	    gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), until) < 0) {
		if (rpc_stream_recv(s, &bb, 100) == 0)
			grpc_byte_buffer_destroy(bb);
	}
	if (!s->t_status.done &&
	    rpc_wait(s->c, &s->t_status, rpc_after(100)) == -1)
		return RPC_TIMEOUT;
	rpc_details(s->details, details, dlen);
	return (int)s->status;
}

void
rpc_stream_cancel(struct rpc_stream *s)
{
	if (s != NULL && s->call != NULL)
		grpc_call_cancel(s->call, NULL);
}

void
rpc_stream_free(struct rpc_stream *s)
{
	gpr_timespec forever = gpr_inf_future(GPR_CLOCK_MONOTONIC);

	if (s == NULL)
		return;
	if (!s->status_posted || !s->t_status.done)
		grpc_call_cancel(s->call, NULL);
	/* Nothing may complete into freed memory. */
	if (s->status_posted)
		rpc_wait(s->c, &s->t_status, forever);
	if (s->send_posted)
		rpc_wait(s->c, &s->t_send, forever);
	if (s->md_posted)
		rpc_wait(s->c, &s->t_md, forever);
	if (s->recv_posted)
		rpc_wait(s->c, &s->t_recv, forever);
	if (s->in != NULL)
		grpc_byte_buffer_destroy(s->in);
	if (s->req != NULL)
		grpc_byte_buffer_destroy(s->req);
	grpc_slice_unref(s->details);
	grpc_metadata_array_destroy(&s->md);
	grpc_metadata_array_destroy(&s->trailing);
	grpc_call_unref(s->call);
	free(s);
}
