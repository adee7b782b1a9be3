/*
 * The unary methods of rtpproxy.RtpProxy and grpc.health.v1: decoded and
 * checked (request.c), done by the session registry, and a session's
 * snapshot made into the API's SessionInfo.
 */
#include "gs_int.h"

void
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
void
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
void
gs_rpc_update(struct gs_call *c, grpc_byte_buffer *bb)
{
	Rtpproxy__UpdateSessionRequest	*req;
	Rtpproxy__UpdateSessionResponse	 resp =
	    RTPPROXY__UPDATE_SESSION_RESPONSE__INIT;
	struct session_update		 u;
	struct session_snapshot		 snap;
	struct rp_error			 err;
	struct gs_info			 gi;

	memset(&err, 0, sizeof(err));
	req = (Rtpproxy__UpdateSessionRequest *)gs_decode(bb,
	    &rtpproxy__update_session_request__descriptor, &err);
	if (req == NULL) {
		gs_reply_err(c, &err);
		return;
	}
	if (request_update_params(req, &u, &err) == -1 ||
	    session_update(&u, &snap, &err) == -1)
		gs_reply_err(c, &err);
	else {
		resp.session = gs_info_fill(&gi, &snap);
		gs_reply(c, GRPC_STATUS_OK, NULL, &resp.base);
	}
	rtpproxy__update_session_request__free_unpacked(req, NULL);
}
void
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
/* Another node's page, from Redis: the call held until now. */
static void
gs_list_done(void *arg, const struct api_ha_list *l)
{
	struct gs_call			*c = arg;
	Rtpproxy__ListSessionsResponse	 resp =
	    RTPPROXY__LIST_SESSIONS_RESPONSE__INIT;
	Rtpproxy__SessionInfo		**ptrs;
	struct gs_info			*gis;
	size_t				 i, n = 0;

	if (l->err != NULL) {
		gs_reply_err(c, l->err);
		gs_call_release(c);
		return;
	}
	gis = xcalloc(l->n + 1, sizeof(*gis));
	ptrs = xcalloc(l->n + 1, sizeof(*ptrs));
	for (i = 0; i < l->n; i++) {
		if (c->list_state != 0 && l->snap[i].state != c->list_state)
			continue;
		ptrs[n] = gs_info_fill(&gis[n], &l->snap[i]);
		ptrs[n]->node = (char *)l->node[i];
		n++;
	}
	resp.n_sessions = n;
	resp.sessions = ptrs;
	resp.next_page_token = (char *)l->next;
	gs_reply(c, GRPC_STATUS_OK, NULL, &resp.base);
	free(gis);
	free(ptrs);
	gs_call_release(c);
}

/*
 * ListSessions of another node (or "*"), from Redis: answered when
 * Redis has; the call is held meanwhile (a drain waits for it).
 */
static void
gs_list_remote(struct gs_call *c, Rtpproxy__ListSessionsRequest *req)
{
	struct rp_error	 err;
	const char	*tok = req->page_token;
	uint32_t	 page;

	memset(&err, 0, sizeof(err));
	page = req->page_size == 0 ? GS_PAGE_DEFAULT : req->page_size;
	if (page > GS_PAGE_MAX)
		page = GS_PAGE_MAX;
	if (gs_ha.list == NULL) {
		rp_err(&err, RP_FAILED_PRECONDITION, "node: redis is not "
		    "configured on this node");
		gs_reply_err(c, &err);
		return;
	}
	/* The token is src/repl's: it checks it. */
	c->list_state = (uint32_t)req->state;
	c->refs++;
	if (gs_ha.list(req->node, (uint32_t)req->state, page, tok,
	    gs_list_done, c, &err) == -1) {
		gs_reply_err(c, &err);
		gs_call_release(c);
	}
}

void
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
	if (req->node[0] != '\0' && (gs_ha.node == NULL ||
	    strcmp(req->node, gs_ha.node()) != 0)) {
		gs_list_remote(c, req);
		rtpproxy__list_sessions_request__free_unpacked(req, NULL);
		return;
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
/* The takeover is over (or has run long enough): the held call's answer. */
static void
gs_take_done(void *arg, const struct api_ha_take *t)
{
	struct gs_call			*c = arg;
	Rtpproxy__HaTakeoverResponse	 resp =
	    RTPPROXY__HA_TAKEOVER_RESPONSE__INIT;

	if (t->err != NULL)
		gs_reply_err(c, t->err);
	else {
		resp.node = (char *)t->node;
		resp.standby = (char *)gs_ha.node();
		resp.sessions = t->found;
		resp.resumed = t->resumed;
		resp.skipped = t->skipped;
		resp.failed = t->failed;
		resp.skipped_owned = t->owned;
		resp.skipped_running = t->running;
		resp.skipped_invalid = t->invalid;
		gs_reply(c, GRPC_STATUS_OK, NULL, &resp.base);
	}
	gs_call_release(c);
}

/*
 * HaTakeover: held until the takeover is over, with its outcome (a drain
 * waits for it; src/repl answers within REDIS_TAKE_MS in any case).
 */
void
gs_rpc_takeover(struct gs_call *c, grpc_byte_buffer *bb)
{
	Rtpproxy__HaTakeoverRequest	*req;
	struct rp_error			 err;

	memset(&err, 0, sizeof(err));
	req = (Rtpproxy__HaTakeoverRequest *)gs_decode(bb,
	    &rtpproxy__ha_takeover_request__descriptor, &err);
	if (req == NULL) {
		gs_reply_err(c, &err);
		return;
	}
	if (gs_ha.takeover == NULL) {
		rp_err(&err, RP_FAILED_PRECONDITION, "redis is not "
		    "configured on this node");
		gs_reply_err(c, &err);
	} else {
		c->refs++;
		if (gs_ha.takeover(req->node, gs_take_done, c, &err) == -1) {
			gs_reply_err(c, &err);
			gs_call_release(c);
		}
	}
	rtpproxy__ha_takeover_request__free_unpacked(req, NULL);
}

void
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
