/*
 * A call's context on the gRPC service: made when a request comes, freed
 * when every batch it started has come back (a reference each); the one
 * batch that answers a call that started nothing; a stream's status; the
 * peer's name; and bearer tokens, checked in constant time.
 */
#include "gs_int.h"

/* Text from the session table for a reply: NUL-terminated, valid UTF-8. */
void
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
grpc_byte_buffer *
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
grpc_slice
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
ProtobufCMessage *
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
struct gs_call *
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
	c->recv_tag.arg = c;		/* a stream that reads says how */
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
void
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
void
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
	svc->released();
}
int
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
void
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
void
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
void
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
int
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
void
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
void
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
	if (c->next != NULL)
		c->next(c);
	gs_call_release(c);
}
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
int
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
void
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
