/*
 * rtpproxyctl: the command-line client of rtpproxyd's gRPC API.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "sessions.h"
#include "client.h"
#include "ctl.h"
#include "rtpproxy.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#define EX_USAGE_	64
#define DEFAULT_SERVER	"127.0.0.1:50051"

#define M_CREATE	"/rtpproxy.RtpProxy/CreateSession"
#define M_DESTROY	"/rtpproxy.RtpProxy/DestroySession"
#define M_STATUS	"/rtpproxy.RtpProxy/GetSessionStatus"
#define M_LIST		"/rtpproxy.RtpProxy/ListSessions"
#define M_EVENTS	"/rtpproxy.RtpProxy/StreamSessionEvents"
#define M_HEALTH	"/grpc.health.v1.Health/Check"
#define M_TAKEOVER	"/rtpproxy.RtpProxy/HaTakeover"
#define M_UPDATE	"/rtpproxy.RtpProxy/UpdateSession"

#define TAKEOVER_TIMEOUT_MS	40000	/* the daemon answers in 30 s */

static int		 jflag;
static int		 timeout_ms = 5000;
static int		 timeout_set;	/* -t given */
static const char	*server;
static const char	*cmdname = "";
static volatile sig_atomic_t interrupted;

static __dead void
usage(int code)
{
	FILE *f = code == 0 ? stdout : stderr;

	fprintf(f,
"usage: rtpproxyctl [-j] [-s server] [-t seconds] [--tls] [--ca file]\n"
"                   [--cert file --key file] [--tls-name name]\n"
"                   [--token-file file] command [options]\n"
"       rtpproxyctl -h | -V\n"
"commands:\n"
"  create [-i id] -l addr[:port] -d addr:port [-f addr[:port]] [-u] [-R]\n"
"         [-I idle_s] [-S stats_ms] [-C clock_hz] [--tcp]\n"
"         [--reverse-source any|address|address-port] [--pps N] [--bps N]\n"
"         [--latch learn|never|latest] [--dtmf-pt type] [--drop-dtmf]\n"
"         [--record]\n"
"  update id [-d addr:port] [--both | -u] [--pps N] [--bps N]\n"
"         [-I idle_s] [-S stats_ms]\n"
"         [--reverse-source any|address|address-port]\n"
"         [--latch learn|never|latest] [--record start|stop]\n"
"  destroy id\n"
"  status id\n"
"  list [--state state] [-n page_size] [-p page_token] [-a]\n"
"       [--node node-id | --node '*']\n"
"  watch [id] [-c count]\n"
"  health\n"
"  takeover node\n"
"server: host:port, [v6addr]:port or unix:/path "
"[$RTPPROXYCTL_SERVER or " DEFAULT_SERVER "]\n"
"token file: [$RTPPROXYCTL_TOKEN_FILE]\n");
	exit(code);
}

static __dead void
usagex(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rtpproxyctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	usage(EX_USAGE_);
}

static int
failed(int code, const char *details)
{
	fprintf(stderr, "rtpproxyctl: %s: %s%s%s\n", cmdname,
	    show_name(rp_code_name(code), code),
	    details != NULL && *details != '\0' ? ": " : "",
	    details != NULL ? details : "");
	return code;
}

/* --- argument parsing --------------------------------------------------- */

/*
 * addr, addr:port, [v6], [v6]:port, or a bare IPv6 address.  The daemon
 * judges the address and the port's range; here only the form.
 */
static void
parse_hostport(const char *opt, const char *s, int need_port,
    Rtpproxy__Endpoint *e, char *buf, size_t len)
{
	const char	*port = NULL, *colon;
	size_t		 n;
	uint32_t	 p = 0;

	if (*s == '[') {
		if ((colon = strchr(s, ']')) == NULL)
			usagex("%s: missing ] in %s", opt, s);
		n = (size_t)(colon - s - 1);
		if (colon[1] == ':')
			port = colon + 2;
		else if (colon[1] != '\0')
			usagex("%s: junk after ] in %s", opt, s);
		s++;
	} else if ((colon = strchr(s, ':')) != NULL &&
	    strchr(colon + 1, ':') == NULL) {
		n = (size_t)(colon - s);
		port = colon + 1;
	} else
		n = strlen(s);
	if (n == 0 || n >= len)
		usagex("%s: bad address in %s", opt, s);
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (port != NULL && parse_u32(port, 0, UINT32_MAX, &p) == -1)
		usagex("%s: bad port in %s", opt, s);
	if (need_port && port == NULL)
		usagex("%s: %s needs a port (address:port)", opt, s);
	e->address = buf;
	e->port = p;
}

static uint32_t
parse_num(const char *opt, const char *s)
{
	uint32_t v;

	if (parse_u32(s, 0, UINT32_MAX, &v) == -1)
		usagex("%s: %s is not a number", opt, s);
	return v;
}

static int
parse_state(const char *s)
{
	const ProtobufCEnumDescriptor	*d;
	unsigned int			 i;

	d = &rtpproxy__session_state__descriptor;
	for (i = 0; i < d->n_values; i++)
		if (d->values[i].value != 0 &&
		    strcasecmp(s, show_state(d->values[i].value)) == 0)
			return d->values[i].value;
	usagex("--state: unknown state %s (created, connecting, active, "
	    "error, closed)", s);
}

/* The options create and update share. */
static Rtpproxy__ReverseSource
parse_reverse_source(const char *s)
{
	int	i;

	for (i = 0; i <= CONF_RS_ADDRESS_PORT; i++)
		if (strcmp(s, config_rs_name(i)) == 0)
			return (Rtpproxy__ReverseSource)(i + 1);
	usagex("--reverse-source: %s is not any, address or address-port",
	    s);
}

static Rtpproxy__LatchPolicy
parse_latch(const char *s)
{
	int	p;

	if ((p = shm_latch_from_name(s)) == -1)
		usagex("--latch: %s is not learn, never or latest", s);
	return (Rtpproxy__LatchPolicy)p;
}

static uint64_t
parse_bps(const char *s)
{
	uint64_t	v;

	if (config_parse_bps(s, &v) == -1)
		usagex("--bps: %s is not a number of bits per second (with "
		    "k, M or G)", s);
	return v;
}

/* --- commands ----------------------------------------------------------- */

static int
cmd_create(struct rpc_client *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "listen", required_argument, NULL, 'l' },
		{ "destination", required_argument, NULL, 'd' },
		{ "forward", required_argument, NULL, 'f' },
		{ "unidirectional", no_argument, NULL, 'u' },
		{ "no-rtcp", no_argument, NULL, 'R' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "stats-interval", required_argument, NULL, 'S' },
		{ "tcp", no_argument, NULL, 'T' },
		{ "clock-rate", required_argument, NULL, 'C' },
		{ "reverse-source", required_argument, NULL, 'r' },
		{ "pps", required_argument, NULL, 'P' },
		{ "bps", required_argument, NULL, 'B' },
		{ "latch", required_argument, NULL, 'L' },
		{ "dtmf-pt", required_argument, NULL, 'D' },
		{ "drop-dtmf", no_argument, NULL, 'X' },
		{ "record", no_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 }
	};
	Rtpproxy__CreateSessionRequest	 req =
	    RTPPROXY__CREATE_SESSION_REQUEST__INIT;
	Rtpproxy__Endpoint		 l = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 d = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 f = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__CreateSessionResponse	*resp;
	char				 lb[128], db[128], fb[128];
	char				 details[512];
	int				 ch, rc;

	while ((ch = getopt_long(argc, argv, "i:l:d:f:uRI:S:C:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'i':
			req.session_id = optarg;
			break;
		case 'l':
			parse_hostport("-l", optarg, 0, &l, lb, sizeof(lb));
			req.listen = &l;
			break;
		case 'd':
			parse_hostport("-d", optarg, 1, &d, db, sizeof(db));
			req.destination = &d;
			break;
		case 'f':
			parse_hostport("-f", optarg, 0, &f, fb, sizeof(fb));
			req.forward = &f;
			break;
		case 'u':
			req.unidirectional = 1;
			break;
		case 'R':
			req.disable_rtcp = 1;
			break;
		case 'I':
			req.idle_timeout_s = parse_num("-I", optarg);
			break;
		case 'S':
			req.stats_interval_ms = parse_num("-S", optarg);
			break;
		case 'C':
			req.clock_rate = parse_num("-C", optarg);
			break;
		case 'T':
			req.transport = RTPPROXY__TRANSPORT__TRANSPORT_TCP;
			break;
		case 'r':
			req.reverse_source = parse_reverse_source(optarg);
			break;
		case 'P':
			req.rate_limit_pps = parse_num("--pps", optarg);
			break;
		case 'B':
			req.rate_limit_bps = parse_bps(optarg);
			break;
		case 'L':
			req.latch_policy = parse_latch(optarg);
			break;
		case 'D':
			req.dtmf_payload_type = parse_num("--dtmf-pt", optarg);
			break;
		case 'X':
			req.drop_dtmf = 1;
			break;
		case 'W':
			req.record = 1;
			break;
		default:
			usage(EX_USAGE_);
		}
	}
	if (optind != argc)
		usagex("create: unexpected argument %s", argv[optind]);
	if (req.listen == NULL)
		usagex("create: -l address[:port] is required");
	if (req.destination == NULL)
		usagex("create: -d address:port is required");
	rc = rpc_unary(c, M_CREATE, &req.base,
	    &rtpproxy__create_session_response__descriptor,
	    (ProtobufCMessage **)&resp, details, sizeof(details), timeout_ms);
	if (rc != 0)
		return failed(rc, details);
	show_session(resp->session, 0, jflag);
	rtpproxy__create_session_response__free_unpacked(resp, NULL);
	return 0;
}

/* Only what is given changes; the rate limits go together. */
static int
cmd_update(struct rpc_client *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "destination", required_argument, NULL, 'd' },
		{ "unidirectional", no_argument, NULL, 'u' },
		{ "both", no_argument, NULL, 'b' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "stats-interval", required_argument, NULL, 'S' },
		{ "reverse-source", required_argument, NULL, 'r' },
		{ "pps", required_argument, NULL, 'P' },
		{ "bps", required_argument, NULL, 'B' },
		{ "latch", required_argument, NULL, 'L' },
		{ "record", required_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 }
	};
	Rtpproxy__UpdateSessionRequest	 req =
	    RTPPROXY__UPDATE_SESSION_REQUEST__INIT;
	Rtpproxy__Endpoint		 d = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__UpdateRateLimit	 rl = RTPPROXY__UPDATE_RATE_LIMIT__INIT;
	Rtpproxy__UpdateSessionResponse	*resp;
	char				 db[128], details[512];
	int				 ch, rc;

	while ((ch = getopt_long(argc, argv, "d:ubI:S:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'd':
			parse_hostport("-d", optarg, 1, &d, db, sizeof(db));
			req.destination = &d;
			break;
		case 'u':
			req.direction = RTPPROXY__UPDATE_DIRECTION__UPDATE_DIRECTION_FORWARD_ONLY;
			break;
		case 'b':
			req.direction = RTPPROXY__UPDATE_DIRECTION__UPDATE_DIRECTION_BOTH;
			break;
		case 'I':
			req.idle_timeout_s = parse_num("-I", optarg);
			break;
		case 'S':
			req.stats_interval_ms = parse_num("-S", optarg);
			break;
		case 'r':
			req.reverse_source = parse_reverse_source(optarg);
			break;
		case 'P':
			rl.pps = parse_num("--pps", optarg);
			req.rate_limit = &rl;
			break;
		case 'B':
			rl.bps = parse_bps(optarg);
			req.rate_limit = &rl;
			break;
		case 'L':
			req.latch_policy = parse_latch(optarg);
			break;
		case 'W':
			if (strcmp(optarg, "start") == 0)
				req.recording = RTPPROXY__UPDATE_RECORDING__UPDATE_RECORDING_START;
			else if (strcmp(optarg, "stop") == 0)
				req.recording = RTPPROXY__UPDATE_RECORDING__UPDATE_RECORDING_STOP;
			else
				usagex("--record: %s is not start or stop",
				    optarg);
			break;
		default:
			usage(EX_USAGE_);
		}
	}
	if (argc - optind != 1)
		usagex("update: one session id is needed");
	req.session_id = argv[optind];
	rc = rpc_unary(c, M_UPDATE, &req.base,
	    &rtpproxy__update_session_response__descriptor,
	    (ProtobufCMessage **)&resp, details, sizeof(details), timeout_ms);
	if (rc != 0)
		return failed(rc, details);
	show_session(resp->session, 1, jflag);
	rtpproxy__update_session_response__free_unpacked(resp, NULL);
	return 0;
}

static const char *
one_id(int argc, char **argv)
{
	int ch;

	while ((ch = getopt(argc, argv, "")) != -1)
		usage(EX_USAGE_);
	if (argc - optind != 1)
		usagex("%s: one session id is needed", cmdname);
	return argv[optind];
}

static int
cmd_destroy(struct rpc_client *c, int argc, char **argv)
{
	Rtpproxy__DestroySessionRequest	 req =
	    RTPPROXY__DESTROY_SESSION_REQUEST__INIT;
	Rtpproxy__DestroySessionResponse *resp;
	char				 details[512];
	int				 rc;

	req.session_id = (char *)one_id(argc, argv);
	rc = rpc_unary(c, M_DESTROY, &req.base,
	    &rtpproxy__destroy_session_response__descriptor,
	    (ProtobufCMessage **)&resp, details, sizeof(details), timeout_ms);
	if (rc != 0)
		return failed(rc, details);
	show_session(resp->session, 1, jflag);
	rtpproxy__destroy_session_response__free_unpacked(resp, NULL);
	return 0;
}

static int
cmd_status(struct rpc_client *c, int argc, char **argv)
{
	Rtpproxy__GetSessionStatusRequest	 req =
	    RTPPROXY__GET_SESSION_STATUS_REQUEST__INIT;
	Rtpproxy__GetSessionStatusResponse	*resp;
	char					 details[512];
	int					 rc;

	req.session_id = (char *)one_id(argc, argv);
	rc = rpc_unary(c, M_STATUS, &req.base,
	    &rtpproxy__get_session_status_response__descriptor,
	    (ProtobufCMessage **)&resp, details, sizeof(details), timeout_ms);
	if (rc != 0)
		return failed(rc, details);
	show_session(resp->session, 1, jflag);
	rtpproxy__get_session_status_response__free_unpacked(resp, NULL);
	return 0;
}

static int
cmd_list(struct rpc_client *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "page-size", required_argument, NULL, 'n' },
		{ "page-token", required_argument, NULL, 'p' },
		{ "all", no_argument, NULL, 'a' },
		{ "node", required_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 }
	};
	Rtpproxy__ListSessionsRequest	  req =
	    RTPPROXY__LIST_SESSIONS_REQUEST__INIT;
	Rtpproxy__ListSessionsResponse	**pages = NULL, *resp;
	char				  details[512];
	size_t				  npages = 0, p;
	int				  ch, rc = 0, all = 0;

	while ((ch = getopt_long(argc, argv, "s:n:p:aN:", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'N':
			req.node = optarg;
			break;
		case 's':
			req.state = (Rtpproxy__SessionState)parse_state(optarg);
			break;
		case 'n':
			req.page_size = parse_num("-n", optarg);
			break;
		case 'p':
			req.page_token = optarg;
			break;
		case 'a':
			all = 1;
			break;
		default:
			usage(EX_USAGE_);
		}
	}
	if (optind != argc)
		usagex("list: unexpected argument %s", argv[optind]);
	for (;;) {
		rc = rpc_unary(c, M_LIST, &req.base,
		    &rtpproxy__list_sessions_response__descriptor,
		    (ProtobufCMessage **)&resp, details, sizeof(details),
		    timeout_ms);
		if (rc != 0)
			break;
		if ((pages = reallocarray(pages, npages + 1,
		    sizeof(*pages))) == NULL) {
			perror("rtpproxyctl");
			exit(1);
		}
		pages[npages++] = resp;
		if (!all || resp->next_page_token[0] == '\0')
			break;
		req.page_token = resp->next_page_token;
	}
	if (rc != 0) {
		for (p = 0; p < npages; p++)
			rtpproxy__list_sessions_response__free_unpacked(
			    pages[p], NULL);
		free(pages);
		return failed(rc, details);
	}
	show_list(pages, npages, jflag);
	for (p = 0; p < npages; p++)
		rtpproxy__list_sessions_response__free_unpacked(pages[p],
		    NULL);
	free(pages);
	return 0;
}

static void
on_signal(int sig)
{
	interrupted = 1;
}

static int
cmd_watch(struct rpc_client *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	Rtpproxy__StreamSessionEventsRequest	 req =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	Rtpproxy__SessionEvent			*ev;
	struct rpc_stream			*s;
	struct sigaction			 sa;
	char					 details[512];
	uint32_t				 count = 0, seen = 0;
	int					 ch, rc;

	while ((ch = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			count = parse_num("-c", optarg);
			break;
		default:
			usage(EX_USAGE_);
		}
	}
	if (argc - optind > 1)
		usagex("watch: at most one session id");
	if (argc - optind == 1)
		req.session_id = argv[optind];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if ((s = rpc_stream_open(c, M_EVENTS, &req.base, 0)) == NULL)
		return failed(RP_INTERNAL, "cannot open the stream");
	for (;;) {
		if (interrupted) {
			rpc_stream_free(s);
			return 0;
		}
		rc = rpc_stream_next(s, &rtpproxy__session_event__descriptor,
		    (ProtobufCMessage **)&ev, 200);
		if (rc == RPC_TIMEOUT)
			continue;
		if (rc == RPC_EOF)
			break;
		if (rc != 0) {
			rpc_stream_free(s);
			return failed(rc, "malformed event");
		}
		show_event(ev, jflag);
		rtpproxy__session_event__free_unpacked(ev, NULL);
		if (count > 0 && ++seen >= count) {
			rpc_stream_free(s);
			return 0;
		}
	}
	rc = rpc_stream_status(s, details, sizeof(details));
	rpc_stream_free(s);
	if (rc == RPC_TIMEOUT)
		rc = 4;		/* DEADLINE_EXCEEDED */
	return rc != 0 ? failed(rc, details) : 0;
}

static int
cmd_health(struct rpc_client *c, int argc, char **argv)
{
	Grpc__Health__V1__HealthCheckRequest	 req =
	    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse	*resp;
	struct json				 j = { stdout, 0, { 0 } };
	const char				*st;
	char					 details[512];
	int					 rc, ch;

	while ((ch = getopt(argc, argv, "")) != -1)
		usage(EX_USAGE_);
	if (optind != argc)
		usagex("health: unexpected argument %s", argv[optind]);
	rc = rpc_unary(c, M_HEALTH, &req.base,
	    &grpc__health__v1__health_check_response__descriptor,
	    (ProtobufCMessage **)&resp, details, sizeof(details), timeout_ms);
	if (rc != 0)
		return failed(rc, details);
	switch (resp->status) {
	case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING:
		st = "SERVING";
		break;
	case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING:
		st = "NOT_SERVING";
		rc = RP_UNAVAILABLE;
		break;
	default:
		st = "UNKNOWN";
		rc = RP_UNKNOWN;
		break;
	}
	if (jflag) {
		json_open(&j, NULL, '{');
		json_str(&j, "status", st);
		json_close(&j, '}');
	} else
		printf("%s\n", st);
	grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
	return rc;
}

static int
cmd_takeover(struct rpc_client *c, int argc, char **argv)
{
	Rtpproxy__HaTakeoverRequest	 req = RTPPROXY__HA_TAKEOVER_REQUEST__INIT;
	Rtpproxy__HaTakeoverResponse	*resp;
	struct json			 j = { stdout, 0, { 0 } };
	char				 details[512];
	int				 rc, ch;

	while ((ch = getopt(argc, argv, "")) != -1)
		usage(EX_USAGE_);
	if (argc - optind != 1)
		usagex("takeover: one node-id is needed");
	req.node = argv[optind];
	/* The answer comes when the takeover is over: 30 s at most. */
	rc = rpc_unary(c, M_TAKEOVER, &req.base,
	    &rtpproxy__ha_takeover_response__descriptor,
	    (ProtobufCMessage **)&resp, details, sizeof(details),
	    timeout_set ? timeout_ms : TAKEOVER_TIMEOUT_MS);
	if (rc != 0)
		return failed(rc, details);
	if (jflag) {
		json_open(&j, NULL, '{');
		json_str(&j, "node", resp->node);
		json_str(&j, "standby", resp->standby);
		json_u64(&j, "sessions", resp->sessions);
		json_u64(&j, "resumed", resp->resumed);
		json_u64(&j, "skipped", resp->skipped);
		json_u64(&j, "failed", resp->failed);
		json_u64(&j, "skipped_owned", resp->skipped_owned);
		json_u64(&j, "skipped_running", resp->skipped_running);
		json_u64(&j, "skipped_invalid", resp->skipped_invalid);
		json_close(&j, '}');
	} else if (resp->sessions == 0)
		printf("%s: node %s has no sessions in Redis (an unknown "
		    "node, or one without calls): nothing taken over\n",
		    resp->standby, resp->node);
	else {
		printf("%s: took over node %s: %u sessions resumed, %u "
		    "skipped, %u failed (of %u)\n", resp->standby, resp->node,
		    resp->resumed, resp->skipped, resp->failed,
		    resp->sessions);
		if (resp->skipped > 0)
			printf("skipped: %u owned by another node, %u running "
			    "here already, %u without a usable record\n",
			    resp->skipped_owned, resp->skipped_running,
			    resp->skipped_invalid);
		if (resp->failed > 0)
			printf("failed: see the daemon's log\n");
	}
	rtpproxy__ha_takeover_response__free_unpacked(resp, NULL);
	return 0;
}

static const struct {
	const char	*name;
	int		(*fn)(struct rpc_client *, int, char **);
} commands[] = {
	{ "create", cmd_create },
	{ "update", cmd_update },
	{ "destroy", cmd_destroy },
	{ "status", cmd_status },
	{ "list", cmd_list },
	{ "watch", cmd_watch },
	{ "health", cmd_health },
	{ "takeover", cmd_takeover },
};

/* A whole regular file of at most 1 MiB, or exit with what went wrong. */
static char *
slurp(const char *opt, const char *path)
{
	char	*buf;
	size_t	 len;

	if (file_read(path, 1024 * 1024, &buf, &len) == -1) {
		fprintf(stderr, "rtpproxyctl: %s %s: %s\n", opt, path,
		    file_strerror(1024 * 1024));
		exit(EX_USAGE_);
	}
	return buf;
}

/* The first token of a token file (the daemon's format: one per line). */
static char *
read_token(const char *path)
{
	char	*buf = slurp("--token-file", path), *line, *next, *end;

	for (line = buf; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		line += strspn(line, " \t");
		end = line + strcspn(line, " \t\r");
		*end = '\0';
		if (*line != '\0' && *line != '#') {
			memmove(buf, line, strlen(line) + 1);
			return buf;
		}
	}
	fprintf(stderr, "rtpproxyctl: --token-file %s: no token in it\n",
	    path);
	exit(EX_USAGE_);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tls", no_argument, NULL, 'L' },
		{ "ca", required_argument, NULL, 'A' },
		{ "cert", required_argument, NULL, 'E' },
		{ "key", required_argument, NULL, 'K' },
		{ "tls-name", required_argument, NULL, 'N' },
		{ "token-file", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 }
	};
	struct rpc_security	 sec;
	struct rpc_client	*c;
	const char		*token_file;
	uint32_t		 secs;
	size_t			 i;
	int			 ch, rc;

	memset(&sec, 0, sizeof(sec));
	server = getenv("RTPPROXYCTL_SERVER");
	if (server == NULL || *server == '\0')
		server = DEFAULT_SERVER;
	token_file = getenv("RTPPROXYCTL_TOKEN_FILE");
	if (token_file != NULL && *token_file == '\0')
		token_file = NULL;
	/* "+": global options end at the command. */
	while ((ch = getopt_long(argc, argv, "+hjs:t:V", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'L':
			sec.tls = 1;
			break;
		case 'A':
			sec.ca = slurp("--ca", optarg);
			sec.tls = 1;
			break;
		case 'E':
			sec.cert = slurp("--cert", optarg);
			sec.tls = 1;
			break;
		case 'K':
			sec.key = slurp("--key", optarg);
			sec.tls = 1;
			break;
		case 'N':
			sec.name = optarg;
			sec.tls = 1;
			break;
		case 'k':
			token_file = optarg;
			break;
		case 'h':
			usage(0);
		case 'j':
			jflag = 1;
			break;
		case 's':
			server = optarg;
			break;
		case 't':
			if (parse_u32(optarg, 1, 86400, &secs) == -1)
				usagex("-t: %s is not a number of seconds "
				    "(1-86400)", optarg);
			timeout_ms = (int)secs * 1000;
			timeout_set = 1;
			break;
		case 'V':
			printf("rtpproxyctl %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(EX_USAGE_);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usagex("no command given");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0]))
		usagex("unknown command %s", argv[0]);
	cmdname = commands[i].name;
	if ((sec.cert == NULL) != (sec.key == NULL))
		usagex("--cert and --key go together");
	if (token_file != NULL)
		sec.token = read_token(token_file);
	if ((c = rpc_client_new_secure(server, &sec)) == NULL) {
		fprintf(stderr, "rtpproxyctl: cannot use server %s\n", server);
		rc = RP_UNAVAILABLE;
	} else {
		optind = 0;	/* glibc: start afresh, permuting again */
		rc = commands[i].fn(c, argc, argv);
		rpc_client_free(c);
	}
	free((char *)sec.ca);
	free((char *)sec.cert);
	free((char *)sec.key);
	if (sec.token != NULL) {
		explicit_bzero((char *)sec.token, strlen(sec.token));
		free((char *)sec.token);
	}
	return rc;
}
