/*
 * The API's request validation: request_decode, request_check_id and
 * request_create_params, as the gRPC service calls them; and the
 * ListSessions page tokens (request_token_parse, request_token_make).
 *
 * Input: one octet that picks the request type (its value modulo 6:
 * CreateSession, DestroySession, GetSessionStatus, ListSessions,
 * StreamSessionEvents, Health/Check), then the message's wire bytes.
 *
 * A message request_decode refuses has an INVALID_ARGUMENT with a
 * message; one it takes has only valid UTF-8 strings, packs again to
 * bytes that decode to the same packing; what request_create_params
 * accepts is a consistent set of session parameters; every error
 * message is valid UTF-8 (it goes out as a gRPC status message).
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "sessions.h"
#include "grpcsvc.h"
#include "rtpproxy.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "fuzz.h"

static const ProtobufCMessageDescriptor *const types[] = {
	&rtpproxy__create_session_request__descriptor,
	&rtpproxy__destroy_session_request__descriptor,
	&rtpproxy__get_session_status_request__descriptor,
	&rtpproxy__list_sessions_request__descriptor,
	&rtpproxy__stream_session_events_request__descriptor,
	&grpc__health__v1__health_check_request__descriptor,
};
#define NTYPES	(sizeof(types) / sizeof(types[0]))

static void
check_err(const struct rp_error *err)
{
	FUZZ_CHECK(err->code == RP_INVALID_ARGUMENT);
	FUZZ_CHECK(err->msg[0] != '\0' &&
	    memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
	FUZZ_CHECKF(utf8_valid(err->msg, strlen(err->msg)), "%s", err->msg);
}

static uint16_t
port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void
check_id(const char *id, int empty_ok)
{
	struct rp_error	err;
	size_t		len = strlen(id);

	memset(&err, 0, sizeof(err));
	if (request_check_id(id, empty_ok, &err) == -1) {
		check_err(&err);
		return;
	}
	FUZZ_CHECK(len < SHM_ID_MAX && (len > 0 || empty_ok));
	FUZZ_CHECK(strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
	    "vwxyz0123456789._:@+-") == len);
}

static void
check_create(const Rtpproxy__CreateSessionRequest *req)
{
	struct session_params	p;
	struct rp_error		err;
	int			fam;

	check_id(req->session_id, 1);
	memset(&err, 0, sizeof(err));
	if (request_create_params(req, &p, &err) == -1) {
		check_err(&err);
		return;
	}
	FUZZ_CHECK(strcmp(p.id, req->session_id) == 0);
	fam = p.dest.ss_family;
	FUZZ_CHECK(fam == AF_INET || fam == AF_INET6);
	FUZZ_CHECK(p.listen.ss_family == fam);
	FUZZ_CHECK(p.forward.ss_family == 0 || p.forward.ss_family == fam);
	FUZZ_CHECK(req->listen != NULL && req->destination != NULL);
	FUZZ_CHECK(port_of(&p.dest) != 0 &&
	    port_of(&p.dest) == req->destination->port);
	FUZZ_CHECK(port_of(&p.listen) == req->listen->port);
	if (p.forward.ss_family != 0)
		FUZZ_CHECK(req->forward != NULL &&
		    port_of(&p.forward) == req->forward->port);
	FUZZ_CHECK(p.tcp == (req->transport ==
	    RTPPROXY__TRANSPORT__TRANSPORT_TCP));
	FUZZ_CHECK(p.reverse_source >= -1 &&
	    p.reverse_source <= CONF_RS_ADDRESS_PORT);
	FUZZ_CHECK(p.latch_policy >= 0 && p.latch_policy <= SHM_LATCH_LATEST &&
	    p.latch_policy == (int)req->latch_policy);
	FUZZ_CHECK(p.unidirectional == !!req->unidirectional);
	FUZZ_CHECK(p.disable_rtcp == !!req->disable_rtcp);
	FUZZ_CHECK(p.clock_rate == req->clock_rate &&
	    p.rate_bps == req->rate_limit_bps);
}

/*
 * A page token comes back from the client: only one made with the key
 * parses, and it is the token made again from what it holds; what is made
 * parses back.
 */
static void
check_token(const Rtpproxy__ListSessionsRequest *req)
{
	char		again[REQUEST_TOKEN_MAX];
	uint32_t	slot, state, st = (uint32_t)req->state & 0xff;

	if (request_token_parse(FUZZ_TOKEN_KEY, req->page_token, &slot,
	    &state) == 0) {
		FUZZ_CHECK(state <= 0xff);
		request_token_make(FUZZ_TOKEN_KEY, slot, state, again,
		    sizeof(again));
		FUZZ_CHECKF(strcmp(again, req->page_token) == 0, "%s",
		    req->page_token);
	}
	request_token_make(FUZZ_TOKEN_KEY, req->page_size, st, again,
	    sizeof(again));
	FUZZ_CHECK(strlen(again) < sizeof(again) - 1);
	FUZZ_CHECK(request_token_parse(FUZZ_TOKEN_KEY, again, &slot,
	    &state) == 0 && slot == req->page_size && state == st);
}

static void
check_fields(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m)
{
	if (d == &rtpproxy__create_session_request__descriptor)
		check_create((const Rtpproxy__CreateSessionRequest *)m);
	else if (d == &rtpproxy__destroy_session_request__descriptor)
		check_id(((const Rtpproxy__DestroySessionRequest *)m)->session_id,
		    0);
	else if (d == &rtpproxy__get_session_status_request__descriptor)
		check_id(((const Rtpproxy__GetSessionStatusRequest *)m)->
		    session_id, 0);
	else if (d == &rtpproxy__list_sessions_request__descriptor)
		check_token((const Rtpproxy__ListSessionsRequest *)m);
	else if (d == &rtpproxy__stream_session_events_request__descriptor)
		check_id(((const Rtpproxy__StreamSessionEventsRequest *)m)->
		    session_id, 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor	*d;
	ProtobufCMessage			*m, *m2;
	struct rp_error				 err;
	uint8_t					*wire, *pb, *pb2;
	size_t					 len, n, n2;

	if (size < 1)
		return 0;
	d = types[data[0] % NTYPES];
	len = size - 1;
	/* Its own buffer: a read past the message is caught. */
	if ((wire = malloc(len != 0 ? len : 1)) == NULL)
		abort();
	memcpy(wire, data + 1, len);

	memset(&err, 0, sizeof(err));
	if ((m = request_decode(d, wire, len, &err)) == NULL) {
		check_err(&err);
		free(wire);
		return 0;
	}
	FUZZ_CHECK(m->descriptor == d && protobuf_c_message_check(m));
	(void)fuzz_pb_strings(m, 0);
	check_fields(d, m);

	/* What was taken packs to bytes that are taken the same way. */
	n = protobuf_c_message_get_packed_size(m);
	if ((pb = malloc(n != 0 ? n : 1)) == NULL)
		abort();
	FUZZ_CHECK(protobuf_c_message_pack(m, pb) == n);
	memset(&err, 0, sizeof(err));
	m2 = request_decode(d, pb, n, &err);
	FUZZ_CHECKF(m2 != NULL, "repacked message refused: %s", err.msg);
	n2 = protobuf_c_message_get_packed_size(m2);
	FUZZ_CHECK(n2 == n);
	if ((pb2 = malloc(n2 != 0 ? n2 : 1)) == NULL)
		abort();
	FUZZ_CHECK(protobuf_c_message_pack(m2, pb2) == n2);
	FUZZ_CHECK(memcmp(pb, pb2, n) == 0);

	free(pb2);
	free(pb);
	protobuf_c_message_free_unpacked(m2, NULL);
	protobuf_c_message_free_unpacked(m, NULL);
	free(wire);
	return 0;
}
