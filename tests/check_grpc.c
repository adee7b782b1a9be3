/*
 * The gRPC API of the real rtpproxyd, over real gRPC: every method, every
 * error code, the event stream, reflection, health, paging, relaying, and
 * rtpproxyctl as a subprocess.
 *
 * Daemons are started in unchecked fixtures, that is in the runner's own
 * process, so that one is always cleaned up even when a test (a forked
 * child) fails half-way.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "client.h"
#include "shm.h"
#include "rtpproxy.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#define M_LIST		"/rtpproxy.RtpProxy/ListSessions"
#define M_EVENTS	"/rtpproxy.RtpProxy/StreamSessionEvents"
#define M_HEALTH	"/grpc.health.v1.Health/Check"
#define M_REFL		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define M_REFL_A	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"

/* The generated names of the oneof cases are long. */
#define REFL_REQ(x) \
	GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##x
#define REFL_RESP(x) \
	GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x

#define ST_OK			0
#define ST_CANCELLED		1
#define ST_INVALID_ARGUMENT	3
#define ST_NOT_FOUND		5
#define ST_ALREADY_EXISTS	6
#define ST_RESOURCE_EXHAUSTED	8
#define ST_UNIMPLEMENTED	12
#define ST_UNAVAILABLE		14

/* For the 1,000-session daemon: above the kernel's ephemeral ports. */
#define BIG_RANGE_MIN	61000
#define BIG_RANGE_MAX	65499

static struct daemon	dmain, dlim, dports, didle, dbig, dstop, dsub;

/* --- daemons ------------------------------------------------------------ */

static void
launch_or_die(struct daemon *d)
{
	char cmd[300];

	if (harness_launch(d, 1) == 0)
		return;
	fprintf(stderr, "check_grpc: the daemon did not start; its log:\n");
	snprintf(cmd, sizeof(cmd), "cat '%s' >&2", d->log);
	if (system(cmd) != 0)
		fprintf(stderr, "check_grpc: no log\n");
	harness_cleanup(d);
	exit(1);
}

static void
start_or_die(struct daemon *d, int workers, const char *line1,
    const char *line2)
{
	if (harness_prepare(d, workers, NULL) == -1 ||
	    (line1 != NULL && harness_conf_set(d, line1) == -1) ||
	    (line2 != NULL && harness_conf_set(d, line2) == -1)) {
		fprintf(stderr, "check_grpc: cannot prepare a daemon\n");
		harness_cleanup(d);
		exit(1);
	}
	launch_or_die(d);
}

static void setup_main(void) {
	start_or_die(&dmain, 2, "event-queue 16", NULL);
}
static void teardown_main(void) { harness_cleanup(&dmain); }
static void setup_lim(void) {
	start_or_die(&dlim, 1, "max-sessions 3", NULL);
}
static void teardown_lim(void) { harness_cleanup(&dlim); }
static void setup_idle(void) {
	start_or_die(&didle, 1, "idle-timeout 1", NULL);
}
static void teardown_idle(void) { harness_cleanup(&didle); }
static void setup_sub(void) {
	start_or_die(&dsub, 1, "event-queue 16", NULL);
}
static void teardown_sub(void) { harness_cleanup(&dsub); }
static void setup_stop(void) {
	start_or_die(&dstop, 1, "shutdown-grace 3", NULL);
}
static void teardown_stop(void) { harness_cleanup(&dstop); }

/* One pair of ports for listen, one for forward: room for one session. */
static void
setup_port(void)
{
	char line[64];

	/* harness_prepare picks the range; keep its start. */
	if (harness_prepare(&dports, 1, NULL) == -1)
		exit(1);
	snprintf(line, sizeof(line), "port-range %u %u", dports.port_min,
	    dports.port_min + 3);
	if (harness_conf_set(&dports, line) == -1)
		exit(1);
	launch_or_die(&dports);
}
static void teardown_port(void) { harness_cleanup(&dports); }

/* 1,000 sessions want 4,000 ports; and a Unix-domain API for good measure. */
static void
setup_big(void)
{
	char line[128], sock[128];

	snprintf(line, sizeof(line), "port-range %u %u", BIG_RANGE_MIN,
	    BIG_RANGE_MAX);
	snprintf(sock, sizeof(sock), "listen unix:/tmp/rtpproxyd-grpc-%ld.sock",
	    (long)getpid());
	unlink(sock + strlen("listen unix:"));
	start_or_die(&dbig, 2, line, sock);
}
static void
teardown_big(void)
{
	if (strncmp(dbig.grpc, "unix:", 5) == 0)
		unlink(dbig.grpc + 5);
	harness_cleanup(&dbig);
}

/* --- client helpers ----------------------------------------------------- */

static struct rpc_client *
client(const struct daemon *d)
{
	struct rpc_client *c = rpc_client_new(d->grpc);

	ck_assert_ptr_nonnull(c);
	return c;
}

static int
health(struct rpc_client *c, const char *service, int *serving)
{
	Grpc__Health__V1__HealthCheckRequest	 req =
	    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse	*resp;
	char					 det[256];
	int					 rc;

	req.service = (char *)service;
	rc = rpc_unary(c, M_HEALTH, &req.base,
	    &grpc__health__v1__health_check_response__descriptor,
	    (ProtobufCMessage **)&resp, det, sizeof(det), harness_ms(5000));
	if (rc == ST_OK) {
		*serving = resp->status ==
		    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	return rc;
}

static int
create_simple(struct rpc_client *c, const char *id, uint32_t dp)
{
	struct harness_session a = { .id = id, .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = dp };

	return harness_create(c, &a, NULL, NULL, 0);
}

/*
 * Create, allowing a moment for the resources of a session just destroyed
 * to come back: its worker lets go of the slot and the sockets a little
 * after DestroySession has answered.
 */
static int
create_retry(struct rpc_client *c, const char *id, uint32_t dp)
{
	int rc, i;

	for (i = 0; i < 100 * harness_slow(); i++) {
		if ((rc = create_simple(c, id, dp)) != ST_RESOURCE_EXHAUSTED)
			return rc;
		harness_sleep_ms(20);
	}
	return rc;
}

static void
free_msg(void *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
}

/* Raw protobuf encoding, for requests no well-behaved client would send. */
struct wbuf {
	uint8_t	b[512];
	size_t	n;
};

static void
w_varint(struct wbuf *w, uint64_t v)
{
	while (v >= 0x80) {
		w->b[w->n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	w->b[w->n++] = (uint8_t)v;
}

static void
w_field_varint(struct wbuf *w, uint32_t field, uint64_t v)
{
	w_varint(w, (uint64_t)field << 3);
	w_varint(w, v);
}

static void
w_field_bytes(struct wbuf *w, uint32_t field, const void *p, size_t len)
{
	w_varint(w, (uint64_t)field << 3 | 2);
	w_varint(w, len);
	memcpy(w->b + w->n, p, len);
	w->n += len;
}

/* An Endpoint submessage. */
static void
w_endpoint(struct wbuf *w, uint32_t field, const char *addr, size_t alen,
    uint32_t port)
{
	struct wbuf e = { .n = 0 };

	w_field_bytes(&e, 1, addr, alen);
	if (port != 0)
		w_field_varint(&e, 2, port);
	w_field_bytes(w, field, e.b, e.n);
}

static int
raw(struct rpc_client *c, const char *method, const void *p, size_t len,
    char *det, size_t dlen)
{
	void	*resp = NULL;
	size_t	 rlen = 0;
	int	 rc;

	rc = rpc_unary_raw(c, method, p, len, &resp, &rlen, det, dlen,
	    harness_ms(5000));
	free(resp);
	return rc;
}

/* RTP with a 160-byte payload. */
static size_t
rtp(uint8_t *b, uint16_t seq, uint32_t ssrc)
{
	uint32_t ts = (uint32_t)seq * 160;

	memset(b, 0, 172);
	b[0] = 0x80;
	b[1] = 0;
	b[2] = seq >> 8;
	b[3] = seq & 0xff;
	b[4] = ts >> 24;
	b[5] = (ts >> 16) & 0xff;
	b[6] = (ts >> 8) & 0xff;
	b[7] = ts & 0xff;
	b[8] = ssrc >> 24;
	b[9] = (ssrc >> 16) & 0xff;
	b[10] = (ssrc >> 8) & 0xff;
	b[11] = ssrc & 0xff;
	return 172;
}

static struct rpc_stream *
subscribe(struct rpc_client *c, const char *id)
{
	Rtpproxy__StreamSessionEventsRequest	 req =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	struct rpc_stream			*s;

	req.session_id = (char *)(id != NULL ? id : "");
	s = rpc_stream_open(c, M_EVENTS, &req.base, 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* The next event of this type (and session, if given), within ms. */
static Rtpproxy__SessionEvent *
wait_event(struct rpc_stream *s, int type, const char *id, int ms)
{
	Rtpproxy__SessionEvent	*ev;
	int64_t			 until = harness_now_ms() + harness_ms(ms), left;
	int			 rc;

	while ((left = until - harness_now_ms()) > 0) {
		rc = rpc_stream_next(s, &rtpproxy__session_event__descriptor,
		    (ProtobufCMessage **)&ev, (int)left);
		if (rc != 0)
			return NULL;
		if ((int)ev->type == type && (id == NULL ||
		    strcmp(ev->session_id, id) == 0))
			return ev;
		free_msg(ev);
	}
	return NULL;
}

/* --- health, the unary methods, errors ---------------------------------- */

START_TEST(test_health)
{
	struct rpc_client	*c = client(&dmain);
	int			 serving = 0;

	ck_assert_int_eq(health(c, "", &serving), ST_OK);
	ck_assert(serving);
	ck_assert_int_eq(health(c, "rtpproxy.RtpProxy", &serving), ST_OK);
	ck_assert(serving);
	ck_assert_int_eq(health(c, "no.Such", &serving), ST_NOT_FOUND);
	rpc_client_free(c);
}
END_TEST

START_TEST(test_create_status_destroy)
{
	struct rpc_client		*c = client(&dmain);
	struct harness_session		 a = { .id = "csd-1", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 5004, .idle = 30,
	    .clock_rate = 48000 };
	Rtpproxy__CreateSessionResponse	*cr;
	Rtpproxy__SessionInfo		*si;
	void				*resp;
	char				 det[256];
	uint32_t			 lport;

	ck_assert_int_eq(harness_create(c, &a, &cr, det, sizeof(det)), ST_OK);
	si = cr->session;
	ck_assert_ptr_nonnull(si);
	ck_assert_str_eq(si->session_id, "csd-1");
	ck_assert_str_eq(si->listen->address, "127.0.0.1");
	lport = si->listen->port;
	ck_assert_uint_ge(lport, dmain.port_min);
	ck_assert_uint_le(lport, dmain.port_max);
	ck_assert_uint_eq(lport % 2, 0);
	ck_assert_uint_ne(si->forward->port, 0);
	ck_assert_str_eq(si->forward->address, "0.0.0.0");
	ck_assert_str_eq(si->destination->address, "127.0.0.1");
	ck_assert_uint_eq(si->destination->port, 5004);
	ck_assert_uint_eq(si->idle_timeout_s, 30);
	ck_assert_uint_eq(si->clock_rate, 48000);
	ck_assert(si->state == RTPPROXY__SESSION_STATE__SESSION_STATE_CREATED ||
	    si->state == RTPPROXY__SESSION_STATE__SESSION_STATE_CONNECTING);
	ck_assert_ptr_null(si->latched);
	ck_assert_ptr_nonnull(si->forward_stats);
	ck_assert_ptr_nonnull(si->reverse_stats);
	ck_assert_int_gt(si->created_at_ms, 0);
	free_msg(cr);

	ck_assert_int_eq(harness_by_id(c, M_STATUS, "csd-1", &si, &resp, det,
	    sizeof(det)), ST_OK);
	ck_assert_str_eq(si->session_id, "csd-1");
	ck_assert_uint_eq(si->listen->port, lport);
	free_msg(resp);

	ck_assert_int_eq(harness_by_id(c, M_DESTROY, "csd-1", &si, &resp, det,
	    sizeof(det)), ST_OK);
	ck_assert_str_eq(si->session_id, "csd-1");
	ck_assert_uint_eq(si->listen->port, lport);
	ck_assert_ptr_nonnull(si->forward_stats);
	free_msg(resp);

	ck_assert_int_eq(harness_by_id(c, M_STATUS, "csd-1", NULL, NULL, det,
	    sizeof(det)), ST_NOT_FOUND);
	ck_assert_int_eq(harness_by_id(c, M_DESTROY, "csd-1", NULL, NULL, det,
	    sizeof(det)), ST_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(det, "csd-1"));
	rpc_client_free(c);
}
END_TEST

START_TEST(test_create_server_makes_id)
{
	struct rpc_client		*c = client(&dmain);
	struct harness_session		 a = { .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 5004, .nortcp = 1 };
	Rtpproxy__CreateSessionResponse	*cr;
	char				 id[64];

	ck_assert_int_eq(harness_create(c, &a, &cr, NULL, 0), ST_OK);
	ck_assert_uint_gt(strlen(cr->session->session_id), 0);
	ck_assert_uint_lt(strlen(cr->session->session_id), 64);
	ck_assert(cr->session->disable_rtcp);
	snprintf(id, sizeof(id), "%s", cr->session->session_id);
	free_msg(cr);
	ck_assert_int_eq(harness_destroy(c, id), ST_OK);
	rpc_client_free(c);
}
END_TEST

START_TEST(test_create_ipv6)
{
	struct rpc_client		*c = client(&dmain);
	struct harness_session		 a = { .id = "v6-1", .laddr = "::1",
	    .daddr = "::1", .dport = 5004 };
	Rtpproxy__CreateSessionResponse	*cr;
	char				 det[256];

	ck_assert_int_eq(harness_create(c, &a, &cr, det, sizeof(det)), ST_OK);
	ck_assert_str_eq(cr->session->listen->address, "::1");
	ck_assert_str_eq(cr->session->forward->address, "::");
	free_msg(cr);
	ck_assert_int_eq(harness_destroy(c, "v6-1"), ST_OK);
	rpc_client_free(c);
}
END_TEST

static void
expect_create_error(struct rpc_client *c, const struct harness_session *a,
    int code, const char *msg)
{
	char det[256];

	ck_assert_int_eq(harness_create(c, a, NULL, det, sizeof(det)), code);
	if (msg != NULL)
		ck_assert_msg(strstr(det, msg) != NULL,
		    "details \"%s\" lack \"%s\"", det, msg);
}

START_TEST(test_create_invalid_arguments)
{
	struct rpc_client	*c = client(&dmain);
	struct harness_session	 a;
	char			 longid[80];

#define BASE	(struct harness_session){ .id = "bad-1", .laddr = "127.0.0.1", \
	    .daddr = "127.0.0.1", .dport = 5004 }
	a = BASE;
	a.laddr = "1.2.3";
	expect_create_error(c, &a, ST_INVALID_ARGUMENT,
	    "listen.address \"1.2.3\" is not an IPv4 or IPv6 address");
	a = BASE;
	a.dport = 70000;
	expect_create_error(c, &a, ST_INVALID_ARGUMENT,
	    "destination.port 70000 is out of range (0-65535)");
	a = BASE;
	a.lport = 65536;
	expect_create_error(c, &a, ST_INVALID_ARGUMENT,
	    "listen.port 65536 is out of range");
	a = BASE;
	a.daddr = NULL;
	a.dport = 0;
	expect_create_error(c, &a, ST_INVALID_ARGUMENT,
	    "destination.address is required");
	a = BASE;
	a.dport = 0;
	expect_create_error(c, &a, ST_INVALID_ARGUMENT, "destination.port");
	a = BASE;
	a.laddr = NULL;
	expect_create_error(c, &a, ST_INVALID_ARGUMENT,
	    "listen.address is required");
	a = BASE;
	a.daddr = "example.com";
	expect_create_error(c, &a, ST_INVALID_ARGUMENT,
	    "destination.address \"example.com\"");
	a = BASE;
	a.faddr = "300.1.1.1";
	expect_create_error(c, &a, ST_INVALID_ARGUMENT, "forward.address");
	a = BASE;
	a.daddr = "::1";
	expect_create_error(c, &a, ST_INVALID_ARGUMENT, "mix IPv4 and IPv6");
	a = BASE;
	a.faddr = "::";
	expect_create_error(c, &a, ST_INVALID_ARGUMENT, "mix IPv4 and IPv6");
	a = BASE;
	a.daddr = "0.0.0.0";
	expect_create_error(c, &a, ST_INVALID_ARGUMENT, "destination.address");
	a = BASE;
	a.stats_ms = 5;
	expect_create_error(c, &a, ST_INVALID_ARGUMENT,
	    "stats_interval_ms 5 is out of range");
	a = BASE;
	a.idle = 100000;
	expect_create_error(c, &a, ST_INVALID_ARGUMENT,
	    "idle_timeout_s 100000 is out of range");
	a = BASE;
	a.clock_rate = 12;
	expect_create_error(c, &a, ST_INVALID_ARGUMENT,
	    "clock_rate 12 is out of range");
	a = BASE;
	a.id = "has space";
	expect_create_error(c, &a, ST_INVALID_ARGUMENT, "session_id must be");
	memset(longid, 'x', 64);
	longid[64] = '\0';
	a = BASE;
	a.id = longid;
	expect_create_error(c, &a, ST_INVALID_ARGUMENT, "session_id must be");
	longid[63] = '\0';		/* 63 is the most that is allowed */
	a.id = longid;
	expect_create_error(c, &a, ST_OK, NULL);
	ck_assert_int_eq(harness_destroy(c, longid), ST_OK);
	/* Nothing was left behind by the failures. */
	ck_assert_int_eq(harness_by_id(c, M_STATUS, "bad-1", NULL, NULL, NULL,
	    0), ST_NOT_FOUND);
#undef BASE
	rpc_client_free(c);
}
END_TEST

START_TEST(test_bad_session_ids)
{
	struct rpc_client	*c = client(&dmain);
	char			 det[256];

	ck_assert_int_eq(harness_by_id(c, M_STATUS, "", NULL, NULL, det,
	    sizeof(det)), ST_INVALID_ARGUMENT);
	ck_assert_int_eq(harness_by_id(c, M_STATUS, "a/b", NULL, NULL, det,
	    sizeof(det)), ST_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(det, "session_id"));
	ck_assert_int_eq(harness_by_id(c, M_DESTROY, "x\"y", NULL, NULL, det,
	    sizeof(det)), ST_INVALID_ARGUMENT);
	ck_assert_int_eq(harness_by_id(c, M_STATUS, "no-such-session", NULL,
	    NULL, det, sizeof(det)), ST_NOT_FOUND);
	rpc_client_free(c);
}
END_TEST

START_TEST(test_unknown_enum_values)
{
	struct rpc_client	*c = client(&dmain);
	struct wbuf		 w = { .n = 0 };
	char			 det[256];

	/* CreateSession with transport = 7 */
	w_field_bytes(&w, 1, "enum-1", 6);
	w_endpoint(&w, 2, "127.0.0.1", 9, 0);
	w_endpoint(&w, 4, "127.0.0.1", 9, 5004);
	w_field_varint(&w, 5, 7);
	ck_assert_int_eq(raw(c, M_CREATE, w.b, w.n, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(det, "transport"));

	/* ListSessions with state = 9, and state = -1 (ten-byte varint) */
	w.n = 0;
	w_field_varint(&w, 1, 9);
	ck_assert_int_eq(raw(c, M_LIST, w.b, w.n, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(det, "state"));
	w.n = 0;
	w_field_varint(&w, 1, UINT64_MAX);
	ck_assert_int_eq(raw(c, M_LIST, w.b, w.n, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);

	/* Unknown fields are ignored, as protobuf wants. */
	w.n = 0;
	w_field_varint(&w, 99, 1);
	ck_assert_int_eq(raw(c, M_LIST, w.b, w.n, det, sizeof(det)), ST_OK);
	rpc_client_free(c);
}
END_TEST

START_TEST(test_malformed_requests)
{
	static const char *methods[] = { M_CREATE, M_DESTROY, M_STATUS,
	    M_LIST, M_HEALTH };
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff,
	    0x0f, 0x13, 0x37 };
	static const uint8_t truncated[] = { 0x0a, 0x20, 'a', 'b' };
	static const uint8_t group[] = { 0x0b, 0x0c };
	struct rpc_client	*c = client(&dmain);
	struct rpc_stream	*s;
	ProtobufCMessage	*m;
	char			 det[256];
	size_t			 i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		ck_assert_int_eq(raw(c, methods[i], garbage, sizeof(garbage),
		    det, sizeof(det)), ST_INVALID_ARGUMENT);
		ck_assert_str_eq(det, "malformed request");
		ck_assert_int_eq(raw(c, methods[i], truncated,
		    sizeof(truncated), det, sizeof(det)),
		    ST_INVALID_ARGUMENT);
		ck_assert_int_eq(raw(c, methods[i], group, sizeof(group),
		    det, sizeof(det)), ST_INVALID_ARGUMENT);
		/* No message at all. */
		ck_assert_int_eq(raw(c, methods[i], NULL, 0, det,
		    sizeof(det)), ST_INVALID_ARGUMENT);
		ck_assert_str_eq(det, "malformed request");
	}
	/* The same for the stream. */
	s = rpc_stream_open_raw(c, M_EVENTS, garbage, sizeof(garbage), 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(rpc_stream_next(s, &rtpproxy__session_event__descriptor,
	    &m, harness_ms(5000)), RPC_EOF);
	ck_assert_int_eq(rpc_stream_status(s, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);
	rpc_stream_free(s);
	s = rpc_stream_open_raw(c, M_EVENTS, NULL, 0, 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(rpc_stream_status(s, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);
	rpc_stream_free(s);
	/* An empty message is a valid one: every field at its default. */
	ck_assert_int_eq(raw(c, M_LIST, "", 0, det, sizeof(det)), ST_OK);
	rpc_client_free(c);
}
END_TEST

START_TEST(test_invalid_utf8)
{
	struct rpc_client	*c = client(&dmain);
	struct wbuf		 w = { .n = 0 };
	char			 det[256];

	w_field_bytes(&w, 1, "ab\xc3\x28", 4);
	ck_assert_int_eq(raw(c, M_STATUS, w.b, w.n, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);
	ck_assert_str_eq(det, "session_id is not valid UTF-8");
	ck_assert_int_eq(raw(c, M_DESTROY, w.b, w.n, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);
	ck_assert_str_eq(det, "session_id is not valid UTF-8");
	ck_assert_int_eq(raw(c, M_EVENTS, w.b, w.n, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);

	/* An overlong encoding of '/' and a surrogate. */
	w.n = 0;
	w_field_bytes(&w, 1, "\xc0\xaf", 2);
	ck_assert_int_eq(raw(c, M_CREATE, w.b, w.n, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);
	ck_assert_str_eq(det, "session_id is not valid UTF-8");
	w.n = 0;
	w_field_bytes(&w, 1, "ok", 2);
	w_endpoint(&w, 2, "127.0.0.\xed\xa0\x80", 11, 0);
	w_endpoint(&w, 4, "127.0.0.1", 9, 5004);
	ck_assert_int_eq(raw(c, M_CREATE, w.b, w.n, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);
	ck_assert_str_eq(det, "listen.address is not valid UTF-8");

	/* A NUL would cut the C string short: "ok\0junk" is not "ok". */
	w.n = 0;
	w_field_bytes(&w, 1, "ok\0junk", 7);
	ck_assert_int_eq(raw(c, M_STATUS, w.b, w.n, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(det, "session_id"));
	rpc_client_free(c);
}
END_TEST

START_TEST(test_already_exists)
{
	struct rpc_client		*c = client(&dmain);
	Rtpproxy__CreateSessionResponse	*cr;
	struct harness_session		 a = { .id = "dup-1", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 5004 };
	struct sockaddr_in		 sin;
	char				 det[256];
	uint32_t			 port, p;
	int				 fd;

	ck_assert_int_eq(harness_create(c, &a, &cr, det, sizeof(det)), ST_OK);
	port = cr->session->listen->port;
	free_msg(cr);
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    ST_ALREADY_EXISTS);
	ck_assert_ptr_nonnull(strstr(det, "dup-1"));

	/* The port of a live session, asked for explicitly. */
	a.id = "dup-2";
	a.lport = port;
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    ST_ALREADY_EXISTS);

	/* A port someone else holds, inside the media range. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (p = dmain.port_max - 1; p > dmain.port_min; p -= 2) {
		sin.sin_port = htons((uint16_t)p);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			break;
	}
	ck_assert_uint_gt(p, dmain.port_min);
	a.lport = p;
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    ST_ALREADY_EXISTS);
	close(fd);
	ck_assert_int_eq(harness_destroy(c, "dup-1"), ST_OK);
	rpc_client_free(c);
}
END_TEST

START_TEST(test_unimplemented_at_once)
{
	struct rpc_client	*c = client(&dmain);
	char			 det[256];
	int64_t			 t0;

	t0 = harness_now_ms();
	ck_assert_int_eq(raw(c, "/rtpproxy.RtpProxy/NoSuchMethod", "", 0,
	    det, sizeof(det)), ST_UNIMPLEMENTED);
	ck_assert_int_eq(raw(c, "/no.Such/Service", "\x08\x01", 2, det,
	    sizeof(det)), ST_UNIMPLEMENTED);
	/* Health/Watch is not offered either. */
	ck_assert_int_eq(raw(c, "/grpc.health.v1.Health/Watch", "", 0, det,
	    sizeof(det)), ST_UNIMPLEMENTED);
	ck_assert_int_lt(harness_now_ms() - t0, 1000 * harness_slow());
	rpc_client_free(c);
}
END_TEST

START_TEST(test_tcp_transport_relayed_error)
{
	struct rpc_client	*c = client(&dmain);
	struct harness_session	 a = { .id = "tcp-1", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 5004, .transport = 1 };
	char			 det[256];
	int			 rc;

	/* TCP is relayed (check_tcp tests how); here, only the API. */
	rc = harness_create(c, &a, NULL, det, sizeof(det));
	ck_assert_msg(rc == ST_OK, "TCP: status %d (%s)", rc, det);
	ck_assert_int_eq(harness_destroy(c, "tcp-1"), ST_OK);
	a.transport = 2;
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);
	rpc_client_free(c);
}
END_TEST

/* --- reflection --------------------------------------------------------- */

/* Field 1 (name) of a serialized FileDescriptorProto. */
static int
fdp_name(const uint8_t *p, size_t len, char *out, size_t olen)
{
	const uint8_t	*end = p + len;
	uint64_t	 key, v;
	int		 shift;

	while (p < end) {
		for (key = 0, shift = 0; p < end && shift < 64; shift += 7) {
			key |= (uint64_t)(*p & 0x7f) << shift;
			if ((*p++ & 0x80) == 0)
				break;
		}
		if ((key & 7) != 2) {
			if ((key & 7) == 0)
				while (p < end && (*p++ & 0x80))
					;
			else
				return -1;
			continue;
		}
		for (v = 0, shift = 0; p < end && shift < 64; shift += 7) {
			v |= (uint64_t)(*p & 0x7f) << shift;
			if ((*p++ & 0x80) == 0)
				break;
		}
		if (v > (uint64_t)(end - p))
			return -1;
		if ((key >> 3) == 1) {
			if (v >= olen)
				return -1;
			memcpy(out, p, v);
			out[v] = '\0';
			return 0;
		}
		p += v;
	}
	return -1;
}

static Grpc__Reflection__V1__ServerReflectionResponse *
reflect(struct rpc_client *c, const char *method,
    Grpc__Reflection__V1__ServerReflectionRequest *req)
{
	Grpc__Reflection__V1__ServerReflectionResponse	*resp = NULL;
	struct rpc_stream				*s;
	char						 det[256];

	s = rpc_stream_open(c, method, &req->base, harness_ms(5000));
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(rpc_stream_next(s,
	    &grpc__reflection__v1__server_reflection_response__descriptor,
	    (ProtobufCMessage **)&resp, harness_ms(5000)), 0);
	ck_assert_int_eq(rpc_stream_status(s, det, sizeof(det)), ST_OK);
	rpc_stream_free(s);
	return resp;
}

START_TEST(test_reflection)
{
	struct rpc_client				*c = client(&dmain);
	Grpc__Reflection__V1__ServerReflectionRequest	 req =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	Grpc__Reflection__V1__ServerReflectionResponse	*r;
	const char					*paths[] = { M_REFL,
	    M_REFL_A };
	char						 name[128];
	size_t						 i, k;
	int						 seen;

	for (k = 0; k < 2; k++) {
		req.host = (char *)"localhost";
		req.message_request_case = REFL_REQ(LIST_SERVICES);
		req.list_services = (char *)"";
		r = reflect(c, paths[k], &req);
		ck_assert_str_eq(r->valid_host, "localhost");
		ck_assert_ptr_nonnull(r->original_request);
		ck_assert_int_eq(r->message_response_case,
		    REFL_RESP(LIST_SERVICES_RESPONSE));
		for (seen = 0, i = 0; i < r->list_services_response->n_service;
		    i++) {
			const char *n = r->list_services_response->service[i]->name;

			if (strcmp(n, "rtpproxy.RtpProxy") == 0 ||
			    strcmp(n, "grpc.health.v1.Health") == 0 ||
			    strcmp(n, "grpc.reflection.v1.ServerReflection") ==
			    0)
				seen++;
		}
		ck_assert_int_eq(seen, 3);
		free_msg(r);

		req.message_request_case = REFL_REQ(FILE_CONTAINING_SYMBOL);
		req.file_containing_symbol = (char *)"rtpproxy.RtpProxy";
		r = reflect(c, paths[k], &req);
		ck_assert_int_eq(r->message_response_case,
		    REFL_RESP(FILE_DESCRIPTOR_RESPONSE));
		ck_assert_uint_ge(
		    r->file_descriptor_response->n_file_descriptor_proto, 1);
		ck_assert_int_eq(fdp_name(
		    r->file_descriptor_response->file_descriptor_proto[0].data,
		    r->file_descriptor_response->file_descriptor_proto[0].len,
		    name, sizeof(name)), 0);
		ck_assert_str_eq(name, "rtpproxy.proto");
		ck_assert_str_eq(r->original_request->file_containing_symbol,
		    "rtpproxy.RtpProxy");
		free_msg(r);

		/* A method and a nested type resolve to the same file. */
		req.file_containing_symbol =
		    (char *)"rtpproxy.RtpProxy.CreateSession";
		r = reflect(c, paths[k], &req);
		ck_assert_int_eq(r->message_response_case,
		    REFL_RESP(FILE_DESCRIPTOR_RESPONSE));
		free_msg(r);

		req.file_containing_symbol = (char *)"rtpproxy.NoSuchThing";
		r = reflect(c, paths[k], &req);
		ck_assert_int_eq(r->message_response_case,
		    REFL_RESP(ERROR_RESPONSE));
		ck_assert_int_eq(r->error_response->error_code, ST_NOT_FOUND);
		free_msg(r);

		req.message_request_case = REFL_REQ(FILE_BY_FILENAME);
		req.file_by_filename = (char *)"grpc/health/v1/health.proto";
		r = reflect(c, paths[k], &req);
		ck_assert_int_eq(r->message_response_case,
		    REFL_RESP(FILE_DESCRIPTOR_RESPONSE));
		ck_assert_int_eq(fdp_name(
		    r->file_descriptor_response->file_descriptor_proto[0].data,
		    r->file_descriptor_response->file_descriptor_proto[0].len,
		    name, sizeof(name)), 0);
		ck_assert_str_eq(name, "grpc/health/v1/health.proto");
		free_msg(r);

		req.message_request_case =
		    REFL_REQ(ALL_EXTENSION_NUMBERS_OF_TYPE);
		req.all_extension_numbers_of_type =
		    (char *)"rtpproxy.SessionInfo";
		r = reflect(c, paths[k], &req);
		ck_assert_int_eq(r->message_response_case,
		    REFL_RESP(ALL_EXTENSION_NUMBERS_RESPONSE));
		ck_assert_uint_eq(
		    r->all_extension_numbers_response->n_extension_number, 0);
		free_msg(r);
		req.file_by_filename = NULL;
	}
	rpc_client_free(c);
}
END_TEST

/* --- events ------------------------------------------------------------- */

START_TEST(test_event_lifecycle)
{
	struct rpc_client		*c = client(&dmain);
	struct rpc_stream		*s, *other;
	Rtpproxy__CreateSessionResponse	*cr;
	Rtpproxy__SessionEvent		*ev;
	struct harness_session		 a = { .id = "ev-1", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1" };
	uint8_t				 pkt[200];
	uint16_t			 dport;
	uint32_t			 lport;
	int				 dfd, cfd;

	dfd = harness_udp(0, &dport);
	cfd = harness_udp(0, NULL);
	ck_assert_int_ge(dfd, 0);
	ck_assert_int_ge(cfd, 0);
	a.dport = dport;
	s = subscribe(c, "ev-1");
	other = subscribe(c, "someone-else");
	ck_assert_int_eq(harness_create(c, &a, &cr, NULL, 0), ST_OK);
	lport = cr->session->listen->port;
	free_msg(cr);

	ev = wait_event(s, RTPPROXY__EVENT_TYPE__EVENT_TYPE_CREATED, "ev-1",
	    5000);
	ck_assert_ptr_nonnull(ev);
	ck_assert_ptr_nonnull(ev->session);
	ck_assert_uint_eq(ev->session->listen->port, lport);
	ck_assert_int_gt(ev->timestamp_ms, 0);
	ck_assert_uint_eq(ev->events_missed, 0);
	free_msg(ev);

	ck_assert_int_eq(harness_send(cfd, "127.0.0.1", (uint16_t)lport, pkt,
	    rtp(pkt, 1, 0x1234)), 0);
	ck_assert_int_gt(harness_recv(dfd, pkt, sizeof(pkt), 5000, NULL), 0);
	ev = wait_event(s, RTPPROXY__EVENT_TYPE__EVENT_TYPE_STATE_CHANGED,
	    "ev-1", 5000);
	while (ev != NULL &&
	    ev->state != RTPPROXY__SESSION_STATE__SESSION_STATE_ACTIVE) {
		free_msg(ev);
		ev = wait_event(s,
		    RTPPROXY__EVENT_TYPE__EVENT_TYPE_STATE_CHANGED, "ev-1",
		    5000);
	}
	ck_assert_ptr_nonnull(ev);
	ck_assert_ptr_nonnull(ev->session->latched);
	free_msg(ev);

	ck_assert_int_eq(harness_destroy(c, "ev-1"), ST_OK);
	ev = wait_event(s, RTPPROXY__EVENT_TYPE__EVENT_TYPE_CLOSED, "ev-1",
	    5000);
	ck_assert_ptr_nonnull(ev);
	ck_assert_str_eq(ev->reason, "destroyed");
	ck_assert_int_eq(ev->state,
	    RTPPROXY__SESSION_STATE__SESSION_STATE_CLOSED);
	ck_assert_uint_ge(ev->session->forward_stats->packets_received, 1);
	free_msg(ev);

	/* The filtered subscriber saw none of it. */
	ck_assert_int_eq(rpc_stream_next(other,
	    &rtpproxy__session_event__descriptor, (ProtobufCMessage **)&ev,
	    200), RPC_TIMEOUT);
	rpc_stream_free(other);
	rpc_stream_free(s);
	close(dfd);
	close(cfd);
	rpc_client_free(c);
}
END_TEST

START_TEST(test_stream_cancel)
{
	struct rpc_client	*c = client(&dmain);
	struct rpc_stream	*s;
	char			 det[256];
	int			 before, serving = 0;

	before = harness_log_count(&dmain, "gone (cancelled");
	s = subscribe(c, NULL);
	rpc_stream_cancel(s);
	ck_assert_int_eq(rpc_stream_status(s, det, sizeof(det)),
	    ST_CANCELLED);
	rpc_stream_free(s);
	ck_assert_int_eq(harness_wait_log(&dmain, "gone (cancelled",
	    before + 1, harness_ms(5000)), 0);

	/* And a client that just goes away, stream and all. */
	s = subscribe(c, NULL);
	rpc_stream_free(s);
	rpc_client_free(c);
	ck_assert_int_eq(harness_wait_log(&dmain, "gone (cancelled",
	    before + 2, harness_ms(5000)), 0);

	c = client(&dmain);
	ck_assert_int_eq(health(c, "", &serving), ST_OK);
	ck_assert(serving);
	rpc_client_free(c);
}
END_TEST

/*
 * One subscriber never reads; the other must get every event, in order,
 * with nothing missed, and the daemon must answer throughout.  The one
 * that never reads is another process, so it has its own connection.
 */
START_TEST(test_stuck_subscriber)
{
	struct rpc_client	*c;
	struct rpc_stream	*s;
	Rtpproxy__SessionEvent	*ev;
	struct harness_session	 a = { .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 5004, .stats_ms = 100,
	    .nortcp = 1 };
	char			 id[16];
	int			 p[2], i, closed = 0, total = 0, serving = 0;
	int			 rc, behind = 0;
	int64_t			 until;
	pid_t			 pid;

	ck_assert_int_eq(pipe(p), 0);
	if ((pid = fork()) == 0) {
		struct rpc_client *sc = rpc_client_new_window(dsub.grpc,
		    1024);
		struct rpc_stream *ss = subscribe(sc, NULL);

		if (write(p[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
		rpc_stream_free(ss);
	}
	ck_assert_int_gt(pid, 0);
	{
		char x;

		ck_assert_int_eq(read(p[0], &x, 1), 1);
	}
	c = client(&dsub);
	s = subscribe(c, NULL);
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "stuck-%d", i);
		a.id = id;
		ck_assert_int_eq(harness_create(c, &a, NULL, NULL, 0), ST_OK);
	}
	/* 100 events a second, read as they come, until the other one has
	 * fallen behind. */
	until = harness_now_ms() + harness_ms(20000);
	while (!behind && harness_now_ms() < until) {
		rc = rpc_stream_next(s, &rtpproxy__session_event__descriptor,
		    (ProtobufCMessage **)&ev, 50);
		if (rc == RPC_TIMEOUT)
			continue;
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_eq(ev->events_missed, 0);
		free_msg(ev);
		if (++total % 100 == 0) {
			ck_assert_int_eq(health(c, "", &serving), ST_OK);
			behind = harness_log_count(&dsub,
			    "is not keeping up") > 0;
		}
	}
	ck_assert_msg(behind, "the subscriber that never reads did not "
	    "fall behind (%d events)", total);
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "stuck-%d", i);
		ck_assert_int_eq(harness_destroy(c, id), ST_OK);
	}
	while (closed < 10 && rpc_stream_next(s,
	    &rtpproxy__session_event__descriptor, (ProtobufCMessage **)&ev,
	    harness_ms(10000)) == 0) {
		ck_assert_uint_eq(ev->events_missed, 0);
		if (ev->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_CLOSED)
			closed++;
		free_msg(ev);
	}
	ck_assert_int_eq(closed, 10);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ck_assert_int_eq(harness_wait_log(&dsub, "gone (cancelled", 1,
	    harness_ms(5000)), 0);
	ck_assert_int_eq(health(c, "", &serving), ST_OK);
	rpc_stream_free(s);
	rpc_client_free(c);
}
END_TEST

/* A subscriber that falls behind by more than the queue learns how much. */
START_TEST(test_events_missed_counted)
{
	struct rpc_client	*c = rpc_client_new_window(dsub.grpc, 1024);
	struct rpc_stream	*s;
	Rtpproxy__SessionEvent	*ev;
	struct harness_session	 a = { .id = "miss-1", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 5004, .stats_ms = 100,
	    .nortcp = 1 };
	uint64_t		 missed = 0;
	int			 n = 0, rc;

	s = subscribe(c, "miss-1");
	ck_assert_int_eq(harness_create(c, &a, NULL, NULL, 0), ST_OK);
	/* Read nothing for a while: the window and the queue fill up. */
	harness_sleep_ms(4000);
	ck_assert_int_eq(harness_destroy(c, "miss-1"), ST_OK);
	while ((rc = rpc_stream_next(s, &rtpproxy__session_event__descriptor,
	    (ProtobufCMessage **)&ev, harness_ms(5000))) == 0) {
		missed += ev->events_missed;
		n++;
		if (ev->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_CLOSED) {
			free_msg(ev);
			break;
		}
		free_msg(ev);
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_gt(missed, 0);
	ck_assert_int_gt(n, 0);
	rpc_stream_free(s);
	rpc_client_free(c);
}
END_TEST

START_TEST(test_idle_timeout)
{
	struct rpc_client		*c = client(&didle);
	struct rpc_stream		*s;
	Rtpproxy__CreateSessionResponse	*cr;
	Rtpproxy__SessionEvent		*ev;
	struct harness_session		 a = { .id = "idle-1",
	    .laddr = "127.0.0.1", .daddr = "127.0.0.1" };
	uint8_t				 pkt[200];
	uint16_t			 dport;
	int				 dfd, cfd;
	int64_t				 t0;

	dfd = harness_udp(0, &dport);
	cfd = harness_udp(0, NULL);
	a.dport = dport;
	s = subscribe(c, "idle-1");
	ck_assert_int_eq(harness_create(c, &a, &cr, NULL, 0), ST_OK);
	ck_assert_uint_eq(cr->session->idle_timeout_s, 1);
	ck_assert_int_eq(harness_send(cfd, "127.0.0.1",
	    (uint16_t)cr->session->listen->port, pkt, rtp(pkt, 7, 99)), 0);
	free_msg(cr);
	t0 = harness_now_ms();
	ev = wait_event(s, RTPPROXY__EVENT_TYPE__EVENT_TYPE_CLOSED, "idle-1",
	    8000);
	ck_assert_ptr_nonnull(ev);
	ck_assert_str_eq(ev->reason, "idle timeout");
	ck_assert_int_ge(harness_now_ms() - t0, 500);
	free_msg(ev);
	ck_assert_int_eq(harness_by_id(c, M_STATUS, "idle-1", NULL, NULL, NULL,
	    0), ST_NOT_FOUND);
	rpc_stream_free(s);
	close(dfd);
	close(cfd);
	rpc_client_free(c);
}
END_TEST

/* --- relaying ----------------------------------------------------------- */

START_TEST(test_relay_both_ways)
{
	struct rpc_client		*c = client(&dmain);
	Rtpproxy__CreateSessionResponse	*cr;
	Rtpproxy__SessionInfo		*si;
	struct sockaddr_storage		 from;
	struct harness_session		 a = { .id = "relay-1",
	    .laddr = "127.0.0.1", .daddr = "127.0.0.1" };
	uint8_t				 pkt[200], in[400];
	uint16_t			 dport, cport;
	uint32_t			 lport, fport;
	void				*resp;
	int				 dfd, cfd, i;

	dfd = harness_udp(0, &dport);
	cfd = harness_udp(0, &cport);
	a.dport = dport;
	ck_assert_int_eq(harness_create(c, &a, &cr, NULL, 0), ST_OK);
	lport = cr->session->listen->port;
	fport = cr->session->forward->port;
	free_msg(cr);

	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(harness_send(cfd, "127.0.0.1",
		    (uint16_t)lport, pkt, rtp(pkt, (uint16_t)(100 + i),
		    0xabcd)), 0);
		ck_assert_int_eq(harness_recv(dfd, in, sizeof(in), 5000,
		    &from), 172);
		ck_assert_int_eq(memcmp(in, pkt, 172), 0);
		ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&from)->sin_port),
		    fport);
	}
	/* Back from the destination to the forward port, to the caller. */
	ck_assert_int_eq(harness_send(dfd, "127.0.0.1", (uint16_t)fport, pkt,
	    rtp(pkt, 500, 0x5555)), 0);
	ck_assert_int_eq(harness_recv(cfd, in, sizeof(in), 5000, &from), 172);
	ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&from)->sin_port),
	    lport);

	/* The worker counts after it sends: give it a moment. */
	for (i = 0; i < 100; i++) {
		ck_assert_int_eq(harness_by_id(c, M_STATUS, "relay-1", &si,
		    &resp, NULL, 0), ST_OK);
		if (si->forward_stats->packets_sent == 5 &&
		    si->reverse_stats->packets_sent == 1)
			break;
		free_msg(resp);
		harness_sleep_ms(20);
	}
	ck_assert_uint_eq(si->forward_stats->packets_received, 5);
	ck_assert_uint_eq(si->forward_stats->packets_sent, 5);
	ck_assert_uint_eq(si->reverse_stats->packets_received, 1);
	ck_assert_uint_eq(si->forward_stats->ssrc, 0xabcd);
	ck_assert_ptr_nonnull(si->latched);
	ck_assert_uint_eq(si->latched->port, cport);
	ck_assert_int_eq(si->state,
	    RTPPROXY__SESSION_STATE__SESSION_STATE_ACTIVE);
	free_msg(resp);
	ck_assert_int_eq(harness_destroy(c, "relay-1"), ST_OK);
	close(dfd);
	close(cfd);
	rpc_client_free(c);
}
END_TEST

/* --- limits ------------------------------------------------------------- */

START_TEST(test_max_sessions)
{
	struct rpc_client	*c = client(&dlim);
	char			 det[256], id[16];
	struct harness_session	 a = { .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 5004 };
	int			 i;

	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "max-%d", i);
		ck_assert_int_eq(create_simple(c, id, 5004), ST_OK);
	}
	a.id = "max-3";
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    ST_RESOURCE_EXHAUSTED);
	/* A slot freed is a slot to use again. */
	ck_assert_int_eq(harness_destroy(c, "max-0"), ST_OK);
	ck_assert_int_eq(create_retry(c, "max-3", 5004), ST_OK);
	rpc_client_free(c);
}
END_TEST

START_TEST(test_port_range_exhausted)
{
	struct rpc_client	*c = client(&dports);

	ck_assert_int_eq(create_simple(c, "pr-1", 5004), ST_OK);
	ck_assert_int_eq(create_simple(c, "pr-2", 5004),
	    ST_RESOURCE_EXHAUSTED);
	ck_assert_int_eq(create_simple(c, "pr-3", 5004),
	    ST_RESOURCE_EXHAUSTED);
	ck_assert_int_eq(harness_destroy(c, "pr-1"), ST_OK);
	ck_assert_int_eq(create_retry(c, "pr-2", 5004), ST_OK);
	rpc_client_free(c);
}
END_TEST

/* A second daemon on the same API address must fail, not share it. */
START_TEST(test_second_daemon_same_port)
{
	struct daemon	two;
	char		line[128];
	int		status = 0, i;

	ck_assert_int_eq(harness_prepare(&two, 1, NULL), 0);
	snprintf(line, sizeof(line), "listen %s", dlim.grpc);
	ck_assert_int_eq(harness_conf_set(&two, line), 0);
	ck_assert_int_eq(harness_launch(&two, 0), 0);
	for (i = 0; i < 100 * harness_slow(); i++) {
		if (waitpid(two.pid, &status, WNOHANG) == two.pid) {
			two.pid = -1;
			break;
		}
		harness_sleep_ms(100);
	}
	ck_assert_msg(two.pid == -1, "a second daemon runs on %s", dlim.grpc);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0,
	    "a second daemon on %s: wait status %#x", dlim.grpc, status);
	ck_assert_int_ge(harness_log_count(&two, "address in use"), 1);
	harness_cleanup(&two);
}
END_TEST

/* --- paging over 1,000 sessions ----------------------------------------- */

static int
list_page(struct rpc_client *c, uint32_t page_size, const char *token,
    int state, Rtpproxy__ListSessionsResponse **out, char *det, size_t dlen)
{
	Rtpproxy__ListSessionsRequest req = RTPPROXY__LIST_SESSIONS_REQUEST__INIT;

	req.page_size = page_size;
	req.page_token = (char *)(token != NULL ? token : "");
	req.state = (Rtpproxy__SessionState)state;
	return rpc_unary(c, M_LIST, &req.base,
	    &rtpproxy__list_sessions_response__descriptor,
	    (ProtobufCMessage **)out, det, dlen, harness_ms(10000));
}

START_TEST(test_thousand_sessions_paged)
{
	struct rpc_client		*c = client(&dbig);
	Rtpproxy__ListSessionsResponse	*r;
	static unsigned char		 seen[1000];
	char				 id[32], token[128], bad[128], det[256];
	struct harness_session		 a = { .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 5004, .nortcp = 1 };
	unsigned			 n;
	size_t				 i;
	int				 pages = 0, total = 0, k, rc;
	int64_t				 t0, dt;

	for (k = 0; k < 1000; k++) {
		snprintf(id, sizeof(id), "bulk-%04d", k);
		a.id = id;
		rc = harness_create(c, &a, NULL, det, sizeof(det));
		ck_assert_msg(rc == ST_OK, "create %s: %d %s", id, rc, det);
	}
	token[0] = '\0';
	do {
		ck_assert_int_eq(list_page(c, 100, token, 0, &r, det,
		    sizeof(det)), ST_OK);
		ck_assert_uint_le(r->n_sessions, 100);
		for (i = 0; i < r->n_sessions; i++) {
			ck_assert_int_eq(sscanf(r->sessions[i]->session_id,
			    "bulk-%u", &n), 1);
			ck_assert_uint_lt(n, 1000);
			ck_assert_int_eq(seen[n], 0);
			seen[n] = 1;
			total++;
		}
		snprintf(token, sizeof(token), "%s", r->next_page_token);
		free_msg(r);
		pages++;
		/* Sessions coming and going do not upset the listing. */
		if (pages == 3) {
			ck_assert_int_eq(create_simple(c, "newcomer", 5004),
			    ST_OK);
			ck_assert_int_eq(harness_destroy(c, "newcomer"), ST_OK);
		}
		if (pages == 2)
			snprintf(bad, sizeof(bad), "%s", token);
	} while (token[0] != '\0' && pages < 20);
	ck_assert_int_eq(total, 1000);
	ck_assert_int_eq(pages, 10);

	/* Garbled, tampered with, or made for another filter: refused. */
	ck_assert_int_eq(list_page(c, 100, "garbage!", 0, &r, det,
	    sizeof(det)), ST_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(det, "page_token"));
	bad[3] = bad[3] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(list_page(c, 100, bad, 0, &r, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);
	bad[3] = bad[3] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(list_page(c, 100, bad, 0, &r, det, sizeof(det)),
	    ST_OK);
	free_msg(r);
	ck_assert_int_eq(list_page(c, 100, bad, 3, &r, det, sizeof(det)),
	    ST_INVALID_ARGUMENT);

	/* Page size: capped at 1,000, not refused. */
	ck_assert_int_eq(list_page(c, 5000, NULL, 0, &r, det, sizeof(det)),
	    ST_OK);
	ck_assert_uint_eq(r->n_sessions, 1000);
	ck_assert_str_eq(r->next_page_token, "");
	free_msg(r);
	/* Default: 100. */
	ck_assert_int_eq(list_page(c, 0, NULL, 0, &r, det, sizeof(det)),
	    ST_OK);
	ck_assert_uint_eq(r->n_sessions, 100);
	free_msg(r);
	/* No session is ACTIVE: no media came. */
	ck_assert_int_eq(list_page(c, 0, NULL,
	    RTPPROXY__SESSION_STATE__SESSION_STATE_ACTIVE, &r, det,
	    sizeof(det)), ST_OK);
	ck_assert_uint_eq(r->n_sessions, 0);
	ck_assert_str_eq(r->next_page_token, "");
	free_msg(r);

	/* Sequential unary latency, for the record. */
	t0 = harness_now_ms();
	for (k = 0; k < 1000; k++) {
		snprintf(id, sizeof(id), "bulk-%04d", k);
		ck_assert_int_eq(harness_by_id(c, M_STATUS, id, NULL, NULL,
		    NULL, 0), ST_OK);
	}
	dt = harness_now_ms() - t0;
	fprintf(stderr, "check_grpc: 1000 GetSessionStatus over %s in %lld ms "
	    "(%.0f calls/s)\n", dbig.grpc, (long long)dt,
	    dt > 0 ? 1000.0 * 1000.0 / (double)dt : 0.0);

	for (k = 0; k < 1000; k++) {
		snprintf(id, sizeof(id), "bulk-%04d", k);
		ck_assert_int_eq(harness_destroy(c, id), ST_OK);
	}
	rpc_client_free(c);
}
END_TEST

/* --- shutdown ----------------------------------------------------------- */

START_TEST(test_shutdown_ends_streams_then_unavailable)
{
	struct rpc_client	*c = client(&dstop);
	struct rpc_stream	*s;
	Rtpproxy__SessionEvent	*ev;
	char			 det[256];
	int			 rc, closed = 0, i;

	ck_assert_int_eq(create_simple(c, "stop-1", 5004), ST_OK);
	s = subscribe(c, NULL);
	ck_assert_int_eq(kill(dstop.pid, SIGTERM), 0);
	/* The session closes, its event arrives, then the stream ends. */
	while ((rc = rpc_stream_next(s, &rtpproxy__session_event__descriptor,
	    (ProtobufCMessage **)&ev, harness_ms(10000))) == 0) {
		if (ev->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_CLOSED &&
		    strcmp(ev->session_id, "stop-1") == 0)
			closed = 1;
		free_msg(ev);
	}
	ck_assert_int_eq(rc, RPC_EOF);
	ck_assert_int_eq(closed, 1);
	rc = rpc_stream_status(s, det, sizeof(det));
	ck_assert_msg(rc == ST_OK || rc == ST_UNAVAILABLE, "status %d", rc);
	rpc_stream_free(s);
	/* The drain has begun: no new call is served. */
	ck_assert_int_eq(harness_by_id(c, M_STATUS, "stop-1", NULL, NULL, det,
	    sizeof(det)), ST_UNAVAILABLE);
	rpc_client_free(c);
	/* It stops by itself (the runner, its parent, reaps it). */
	for (i = 0; i < 200 * harness_slow() && harness_alive(dstop.pid);
	    i++)
		harness_sleep_ms(50);
	ck_assert_msg(!harness_alive(dstop.pid), "the daemon did not stop");
	ck_assert_int_ge(harness_log_count(&dstop, "grpc: every call is "
	    "finished"), 1);
	ck_assert_int_ge(harness_log_count(&dstop, "grpc: stopped"), 1);
}
END_TEST

/* --- rtpproxyctl -------------------------------------------------------- */

static int
ctl(const char *args, char *out, size_t len)
{
	const char	*bin = getenv("RTPPROXYCTL");
	char		 cmd[1024];

	if (bin == NULL)
		bin = "../src/rtpproxyctl";
	snprintf(cmd, sizeof(cmd), "%s -s %s %s 2>&1", bin, dmain.grpc, args);
	return harness_run(cmd, out, len);
}

START_TEST(test_rtpproxyctl)
{
	static char	out[65536];
	char		args[256];

	ck_assert_int_eq(ctl("health", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "SERVING\n");
	ck_assert_int_eq(ctl("-j health", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "{\"status\":\"SERVING\"}\n");

	ck_assert_int_eq(ctl("create -i ctl-1 -l 127.0.0.1 -d 127.0.0.1:5004",
	    out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "ctl-1"));
	ck_assert_ptr_nonnull(strstr(out, "127.0.0.1:5004"));
	ck_assert_int_eq(ctl("-j create --id=ctl-2 --listen=[::1] "
	    "--destination=[::1]:5006 -u -R -I 30 -S 0", out, sizeof(out)),
	    0);
	ck_assert_ptr_nonnull(strstr(out, "\"session_id\":\"ctl-2\""));
	ck_assert_ptr_nonnull(strstr(out, "\"unidirectional\":true"));
	ck_assert_ptr_nonnull(strstr(out, "\"disable_rtcp\":true"));
	ck_assert_ptr_nonnull(strstr(out, "\"idle_timeout_s\":30"));

	ck_assert_int_eq(ctl("status ctl-1", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "forward"));
	ck_assert_ptr_nonnull(strstr(out, "reverse"));
	ck_assert_ptr_nonnull(strstr(out, "packets received"));
	ck_assert_int_eq(ctl("-j status ctl-1", out, sizeof(out)), 0);
	ck_assert_int_eq(out[0], '{');
	ck_assert_ptr_nonnull(strstr(out, "\"forward_stats\":{"));
	ck_assert_ptr_nonnull(strstr(out, "\"reverse_stats\":{"));

	ck_assert_int_eq(ctl("list", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "ID"));
	ck_assert_ptr_nonnull(strstr(out, "ctl-1"));
	ck_assert_ptr_nonnull(strstr(out, "ctl-2"));
	ck_assert_int_eq(ctl("-j list -n 1 -a", out, sizeof(out)), 0);
	ck_assert_ptr_eq(strstr(out, "{\"sessions\":["), out);
	ck_assert_ptr_nonnull(strstr(out, "\"ctl-1\""));
	ck_assert_ptr_nonnull(strstr(out, "\"ctl-2\""));
	ck_assert_ptr_nonnull(strstr(out, "\"next_page_token\":\"\""));
	ck_assert_int_eq(ctl("list --state active", out, sizeof(out)), 0);
	ck_assert_ptr_null(strstr(out, "ctl-1"));

	ck_assert_int_eq(ctl("destroy ctl-1", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "CLOSED"));
	ck_assert_int_eq(ctl("-j destroy ctl-2", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "\"session_id\":\"ctl-2\""));

	/* Exit codes: the gRPC status, 64 for usage. */
	ck_assert_int_eq(ctl("status ctl-1", out, sizeof(out)), ST_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(out, "NOT_FOUND"));
	ck_assert_int_eq(ctl("create -l 1.2.3 -d 127.0.0.1:5004", out,
	    sizeof(out)), ST_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(out, "listen.address"));
	ck_assert_int_eq(ctl("create -l 127.0.0.1 -d 127.0.0.1:70000", out,
	    sizeof(out)), ST_INVALID_ARGUMENT);
	ck_assert_int_eq(ctl("create -l 127.0.0.1", out, sizeof(out)), 64);
	ck_assert_ptr_nonnull(strstr(out, "usage"));
	ck_assert_int_eq(ctl("frobnicate", out, sizeof(out)), 64);
	ck_assert_int_eq(ctl("list --state sleepy", out, sizeof(out)), 64);
	ck_assert_int_eq(ctl("-V", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "rtpproxyctl"));
	ck_assert_int_eq(ctl("-h", out, sizeof(out)), 0);

	/* Nobody listening: UNAVAILABLE, quickly. */
	snprintf(args, sizeof(args), "-s unix:%s/nothing-here health",
	    dmain.dir);
	ck_assert_int_eq(ctl(args, out, sizeof(out)), ST_UNAVAILABLE);

	/* watch: -c ends it; -j prints one object per line. */
	ck_assert_int_eq(ctl("create -i ctl-3 -l 127.0.0.1 -d 127.0.0.1:5004",
	    NULL, 0), 0);
	{
		const char	*bin = getenv("RTPPROXYCTL");
		char		 cmd[512];
		FILE		*f;
		int		 st, lines = 0, n;

		if (bin == NULL)
			bin = "../src/rtpproxyctl";
		snprintf(cmd, sizeof(cmd), "%s -j -s %s watch ctl-3 -c 1",
		    bin, dmain.grpc);
		n = harness_log_count(&dmain, "subscribed to the events of ctl-3");
		f = popen(cmd, "r");
		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(harness_wait_log(&dmain,
		    "subscribed to the events of ctl-3", n + 1, harness_ms(5000)), 0);
		ck_assert_int_eq(ctl("destroy ctl-3", NULL, 0), 0);
		while (fgets(out, sizeof(out), f) != NULL) {
			ck_assert_ptr_nonnull(strstr(out,
			    "\"type\":\"CLOSED\""));
			ck_assert_ptr_nonnull(strstr(out,
			    "\"reason\":\"destroyed\""));
			lines++;
		}
		st = pclose(f);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		ck_assert_int_eq(lines, 1);
	}
}
END_TEST

/* The part of out between "key":{ and its }; the stats nest nothing. */
static const char *
json_object(const char *out, const char *key, char *buf, size_t len)
{
	char		 k[64];
	const char	*p;
	size_t		 n;

	snprintf(k, sizeof(k), "\"%s\":{", key);
	ck_assert_ptr_nonnull(p = strstr(out, k));
	p += strlen(k);
	n = strcspn(p, "}");
	ck_assert_uint_lt(n, len);
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

/*
 * Every field of DirectionStats comes out of rtpproxyctl -j, both ways,
 * and every counter of shm.h's list has its row in the text.
 */
START_TEST(test_rtpproxyctl_every_counter)
{
	static char			 out[65536], obj[8192];
	const ProtobufCMessageDescriptor *md =
	    &rtpproxy__direction_stats__descriptor;
	const char			*dirs[] = { "forward_stats",
	    "reverse_stats" };
	char				 key[128];
	unsigned int			 i, k;
	int				 c;

	ck_assert_int_eq(ctl("create -i ctl-ctr -l 127.0.0.1 "
	    "-d 127.0.0.1:5004", NULL, 0), 0);
	ck_assert_int_eq(ctl("-j status ctl-ctr", out, sizeof(out)), 0);
	for (k = 0; k < 2; k++) {
		json_object(out, dirs[k], obj, sizeof(obj));
		for (i = 0; i < md->n_fields; i++) {
			snprintf(key, sizeof(key), "\"%s\":",
			    md->fields[i].name);
			ck_assert_msg(strstr(obj, key) != NULL,
			    "%s: no %s in %s", dirs[k], key, obj);
		}
	}
	ck_assert_int_eq(ctl("status ctl-ctr", out, sizeof(out)), 0);
	for (c = 0; c < SHM_C_N; c++) {
		snprintf(key, sizeof(key), "\n%s%s ",
		    shm_counters[c].kind == SHM_CK_DROP ? "  " : "",
		    shm_counters[c].label);
		ck_assert_msg(strstr(out, key) != NULL, "no row \"%s\" in %s",
		    shm_counters[c].label, out);
	}
	ck_assert_int_eq(ctl("destroy ctl-ctr", NULL, 0), 0);
}
END_TEST

int
main(void)
{
	const TTest *const t_main[] = { test_health,
	    test_create_status_destroy, test_create_server_makes_id,
	    test_create_ipv6, test_create_invalid_arguments,
	    test_bad_session_ids, test_unknown_enum_values,
	    test_malformed_requests, test_invalid_utf8, test_already_exists,
	    test_unimplemented_at_once, test_tcp_transport_relayed_error,
	    test_reflection, test_event_lifecycle, test_stream_cancel,
	    test_relay_both_ways, test_rtpproxyctl,
	    test_rtpproxyctl_every_counter, NULL };
	const TTest *const t_lim[] = { test_max_sessions,
	    test_second_daemon_same_port, NULL };
	const TTest *const t_port[] = { test_port_range_exhausted,
	    NULL };
	const TTest *const t_idle[] = { test_idle_timeout, NULL };
	const TTest *const t_sub[] = { test_events_missed_counted,
	    test_stuck_subscriber, NULL };
	const TTest *const t_big[] = { test_thousand_sessions_paged,
	    NULL };
	const TTest *const t_stop[] = {
	    test_shutdown_ends_streams_then_unavailable, NULL };
	Suite	*s = suite_create("grpc");

	signal(SIGPIPE, SIG_IGN);
	harness_tcase(s, "api", setup_main, teardown_main, 120, t_main);
	harness_tcase(s, "limits", setup_lim, teardown_lim, 120, t_lim);
	harness_tcase(s, "ports", setup_port, teardown_port, 120, t_port);
	harness_tcase(s, "idle", setup_idle, teardown_idle, 120, t_idle);
	harness_tcase(s, "subscribers", setup_sub, teardown_sub, 120, t_sub);
	harness_tcase(s, "paging", setup_big, teardown_big, 120, t_big);
	harness_tcase(s, "shutdown", setup_stop, teardown_stop, 120, t_stop);
	return harness_run_suite(s);
}
