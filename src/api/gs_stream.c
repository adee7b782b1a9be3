/*
 * The streaming calls: StreamSessionEvents (a ring of events per
 * subscriber; one that reads too slowly misses events and is told how
 * many) and ServerReflectionInfo (bidi, one request answered at a time,
 * by reflection.c).
 */
#include "gs_int.h"

static void	gs_events_pump(struct gs_call *);
static void	gs_reflect_next(struct gs_call *);
static void	gs_send_msg(struct gs_call *, grpc_byte_buffer *);
static void	gs_on_recv(void *, int);

void
gs_rpc_events(struct gs_call *c, grpc_byte_buffer *bb)
{
	Rtpproxy__StreamSessionEventsRequest	*req;
	struct rp_error				 err;

	c->next = gs_events_pump;
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
/* RFC 4733 section 3.2: events 0-15 are the DTMF digits. */
static Rtpproxy__DtmfEvent *
gs_dtmf(Rtpproxy__DtmfEvent *d, char *digit, size_t len,
    const struct session_dtmf *t)
{
	static const char digits[] = "0123456789*#ABCD";

	rtpproxy__dtmf_event__init(d);
	if (t->event < 16)
		snprintf(digit, len, "%c", digits[t->event]);
	else
		snprintf(digit, len, "%u", t->event);
	d->digit = digit;
	d->event = t->event;
	d->duration_ms = t->duration_ms;
	d->volume = t->volume;
	d->direction = (char *)(t->reverse ? "reverse" : "forward");
	d->start_ms = t->start_ms;
	d->rtp_timestamp = t->rtp_ts;
	d->ssrc = t->ssrc;
	d->end_seen = t->end_seen != 0;
	return d;
}

void
grpcsvc_publish(const struct session_event *ev)
{
	Rtpproxy__SessionEvent	 m = RTPPROXY__SESSION_EVENT__INIT;
	Rtpproxy__Endpoint	 ep[2];
	Rtpproxy__DtmfEvent	 dt;
	char			 digit[12];
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
	if (ev->dtmf != NULL)
		m.dtmf = gs_dtmf(&dt, digit, sizeof(digit), ev->dtmf);
	/* Names of our own, ASCII: no copy needed. */
	m.n_changed = ev->nchanged;
	m.changed = (char **)(uintptr_t)ev->changed;
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
void
gs_rpc_reflect(struct gs_call *c, grpc_byte_buffer *unused)
{
	c->refl = reflection_stream_new();
	c->next = gs_reflect_next;
	c->recv_tag.fn = gs_on_recv;
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
