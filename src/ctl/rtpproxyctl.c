/*
 * rtpproxyctl: the command-line client of rtpproxyd's gRPC API.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf.h"
#include "sessions.h"
#include "client.h"
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

static int		 jflag;
static int		 timeout_ms = 5000;
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
"         [--latch learn|never|latest]\n"
"  destroy id\n"
"  status id\n"
"  list [--state state] [-n page_size] [-p page_token] [-a]\n"
"  watch [id] [-c count]\n"
"  health\n"
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

/* A value's name, or the value as a number when it has none. */
static const char *
name_or_num(const char *name, int v)
{
	static char buf[16];

	if (name != NULL)
		return name;
	snprintf(buf, sizeof(buf), "%d", v);
	return buf;
}

/*
 * The name of value v of an enumeration of the API, as the proto names it
 * but without the enumeration's prefix: ACTIVE for SESSION_STATE_ACTIVE.
 */
static const char *
api_name(const ProtobufCEnumDescriptor *d, const char *prefix, int v)
{
	const ProtobufCEnumValue	*ev;
	size_t				 n = strlen(prefix);

	if ((ev = protobuf_c_enum_descriptor_get_value(d, v)) == NULL)
		return name_or_num(NULL, v);
	return strncmp(ev->name, prefix, n) == 0 ? ev->name + n : ev->name;
}

#define STATE_NAME(v)	api_name(&rtpproxy__session_state__descriptor, \
			    "SESSION_STATE_", (int)(v))
#define EVENT_NAME(v)	api_name(&rtpproxy__event_type__descriptor, \
			    "EVENT_TYPE_", (int)(v))

/* The policies' words are the configuration's; 0 is the API's default. */
static const char *
rs_name(int v)
{
	if (v == RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_DEFAULT)
		return "default";
	return name_or_num(v > 0 && v - 1 <= CONF_RS_ADDRESS_PORT ?
	    config_rs_name(v - 1) : NULL, v);
}

static const char *
latch_name(int v)
{
	if (v == RTPPROXY__LATCH_POLICY__LATCH_POLICY_DEFAULT)
		return "default";
	return name_or_num(v > 0 && v < SHM_LATCH_N ? shm_latch_name(v) : NULL,
	    v);
}

static int
failed(int code, const char *details)
{
	fprintf(stderr, "rtpproxyctl: %s: %s%s%s\n", cmdname,
	    name_or_num(rp_code_name(code), code),
	    details != NULL && *details != '\0' ? ": " : "",
	    details != NULL ? details : "");
	return code;
}

/* --- a small JSON emitter ----------------------------------------------- */

struct json {
	FILE	*f;
	int	 depth;
	int	 first[32];
};

static void
json_raw_string(FILE *f, const char *s)
{
	const unsigned char	*p;
	int			 valid = utf8_valid(s, strlen(s));

	fputc('"', f);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else if (*p >= 0x80 && !valid)
				fputs("\\ufffd", f);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void
json_key(struct json *j, const char *key)
{
	if (j->depth > 0) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		j->first[j->depth] = 0;
	}
	if (key != NULL) {
		json_raw_string(j->f, key);
		fputc(':', j->f);
	}
}

static void
json_open(struct json *j, const char *key, int ch)
{
	json_key(j, key);
	fputc(ch, j->f);
	if (j->depth < 31)
		j->depth++;
	j->first[j->depth] = 1;
}

static void
json_close(struct json *j, int ch)
{
	fputc(ch, j->f);
	if (j->depth > 0)
		j->depth--;
	if (j->depth == 0)
		fputc('\n', j->f);
}

static void
json_str(struct json *j, const char *key, const char *v)
{
	json_key(j, key);
	json_raw_string(j->f, v != NULL ? v : "");
}

static void
json_u64(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

static void
json_i64(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	fprintf(j->f, "%" PRId64, v);
}

static void
json_dbl(struct json *j, const char *key, double v)
{
	json_key(j, key);
	if (isfinite(v))
		fprintf(j->f, "%.6g", v);
	else
		fputs("null", j->f);
}

static void
json_bool(struct json *j, const char *key, int v)
{
	json_key(j, key);
	fputs(v ? "true" : "false", j->f);
}

static void
json_endpoint(struct json *j, const char *key, const Rtpproxy__Endpoint *e)
{
	if (e == NULL)
		return;
	json_open(j, key, '{');
	json_str(j, "address", e->address);
	json_u64(j, "port", e->port);
	json_close(j, '}');
}

/*
 * The counters of shm.h's list, as rtpproxy.DirectionStats holds them.  The
 * output keeps the order users know; the reasons to drop come in the
 * list's order, and a counter added to the list later comes out after
 * the others.
 */
#define CTR_OFF_(f, kind, proto, metric, label, help)			\
	[SHM_C_##f] = offsetof(Rtpproxy__DirectionStats, proto),
static const size_t ctr_off[SHM_C_N] = { SHM_DIR_COUNTERS(CTR_OFF_) };
#define CTR_KEY_(f, kind, proto, metric, label, help)			\
	[SHM_C_##f] = #proto,
static const char *const ctr_key[SHM_C_N] = { SHM_DIR_COUNTERS(CTR_KEY_) };

#define CTR_ALL		(-1)	/* a kind: every counter not yet shown */

static uint64_t
ctr(const Rtpproxy__DirectionStats *d, int c)
{
	uint64_t v;

	memcpy(&v, (const char *)d + ctr_off[c], sizeof(v));
	return v;
}

/* Is counter c one of kind, and not shown yet?  Then it is now. */
static int
ctr_next(unsigned char *shown, int c, int kind)
{
	if (shown[c] || (kind != CTR_ALL &&
	    shm_counters[c].kind != (enum shm_counter_kind)kind))
		return 0;
	shown[c] = 1;
	return 1;
}

static void
json_ctrs(struct json *j, const Rtpproxy__DirectionStats *d,
    unsigned char *shown, int kind)
{
	int c;

	for (c = 0; c < SHM_C_N; c++)
		if (ctr_next(shown, c, kind))
			json_u64(j, ctr_key[c], ctr(d, c));
}

static void
json_ctr(struct json *j, const Rtpproxy__DirectionStats *d,
    unsigned char *shown, int c)
{
	shown[c] = 1;
	json_u64(j, ctr_key[c], ctr(d, c));
}

static void
json_dir(struct json *j, const char *key, const Rtpproxy__DirectionStats *d)
{
	unsigned char shown[SHM_C_N] = { 0 };

	if (d == NULL)
		return;
	json_open(j, key, '{');
	json_ctr(j, d, shown, SHM_C_packets_received);
	json_ctr(j, d, shown, SHM_C_packets_sent);
	json_ctr(j, d, shown, SHM_C_bytes_received);
	json_ctr(j, d, shown, SHM_C_bytes_sent);
	json_u64(j, "packets_dropped", d->packets_dropped);
	json_i64(j, "packets_lost", d->packets_lost);
	json_dbl(j, "loss_rate", d->loss_rate);
	json_dbl(j, "jitter_ms", d->jitter_ms);
	json_dbl(j, "avg_latency_ms", d->avg_latency_ms);
	json_dbl(j, "max_latency_ms", d->max_latency_ms);
	json_ctrs(j, d, shown, SHM_CK_DROP);
	json_ctr(j, d, shown, SHM_C_non_rtp);
	json_ctr(j, d, shown, SHM_C_rtcp_received);
	json_ctr(j, d, shown, SHM_C_rtcp_sent);
	json_ctr(j, d, shown, SHM_C_packets_expected);
	json_ctrs(j, d, shown, CTR_ALL);
	json_i64(j, "last_packet_ms", d->last_packet_ms);
	json_u64(j, "ssrc", d->ssrc);
	json_close(j, '}');
}

static void
json_session(struct json *j, const char *key, const Rtpproxy__SessionInfo *s)
{
	if (s == NULL)
		return;
	json_open(j, key, '{');
	json_str(j, "session_id", s->session_id);
	json_str(j, "state", STATE_NAME(s->state));
	json_endpoint(j, "listen", s->listen);
	json_endpoint(j, "forward", s->forward);
	json_endpoint(j, "destination", s->destination);
	json_endpoint(j, "latched", s->latched);
	json_endpoint(j, "latched_rtcp", s->latched_rtcp);
	json_str(j, "transport", s->transport ==
	    RTPPROXY__TRANSPORT__TRANSPORT_TCP ? "TCP" : "UDP");
	json_bool(j, "unidirectional", s->unidirectional);
	json_bool(j, "disable_rtcp", s->disable_rtcp);
	json_i64(j, "created_at_ms", s->created_at_ms);
	json_i64(j, "last_activity_ms", s->last_activity_ms);
	json_u64(j, "idle_timeout_s", s->idle_timeout_s);
	json_u64(j, "stats_interval_ms", s->stats_interval_ms);
	json_u64(j, "clock_rate", s->clock_rate);
	json_str(j, "reverse_source", rs_name((int)s->reverse_source));
	json_u64(j, "rate_limit_pps", s->rate_limit_pps);
	json_u64(j, "rate_limit_bps", s->rate_limit_bps);
	json_str(j, "latch_policy", latch_name((int)s->latch_policy));
	json_u64(j, "relatches", s->relatches);
	json_u64(j, "worker", s->worker);
	json_str(j, "error_message", s->error_message);
	json_dir(j, "forward_stats", s->forward_stats);
	json_dir(j, "reverse_stats", s->reverse_stats);
	json_close(j, '}');
}

/* --- text output -------------------------------------------------------- */

static const char *
ep_str(const Rtpproxy__Endpoint *e, char *buf, size_t len)
{
	if (e == NULL || e->address == NULL || *e->address == '\0')
		snprintf(buf, len, "-");
	else if (strchr(e->address, ':') != NULL)
		snprintf(buf, len, "[%s]:%u", e->address, e->port);
	else
		snprintf(buf, len, "%s:%u", e->address, e->port);
	return buf;
}

static const char *
time_str(int64_t ms, char *buf, size_t len)
{
	struct tm	tm;
	time_t		t;
	char		tmp[32];

	if (ms <= 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	t = (time_t)(ms / 1000);
	localtime_r(&t, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03d", tmp, (int)(ms % 1000));
	return buf;
}

static const char *
age_str(int64_t ms, char *buf, size_t len)
{
	int64_t s;

	if (ms <= 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	s = (now_ms() - ms) / 1000;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%" PRId64 "s", s);
	else if (s < 7200)
		snprintf(buf, len, "%" PRId64 "m", s / 60);
	else
		snprintf(buf, len, "%" PRId64 "h", s / 3600);
	return buf;
}

static const Rtpproxy__DirectionStats zero_dir =
    RTPPROXY__DIRECTION_STATS__INIT;

/* A counter's row, both ways; a reason to drop under "packets dropped". */
static void
row_ctr(const Rtpproxy__DirectionStats *f, const Rtpproxy__DirectionStats *r,
    unsigned char *shown, int c)
{
	shown[c] = 1;
	printf("%s%-*s %16" PRIu64 " %16" PRIu64 "\n",
	    shm_counters[c].kind == SHM_CK_DROP ? "  " : "",
	    shm_counters[c].kind == SHM_CK_DROP ? 20 : 22,
	    shm_counters[c].label, ctr(f, c), ctr(r, c));
}

static void
row_ctrs(const Rtpproxy__DirectionStats *f,
    const Rtpproxy__DirectionStats *r, unsigned char *shown, int kind)
{
	int c;

	for (c = 0; c < SHM_C_N; c++)
		if (ctr_next(shown, c, kind))
			row_ctr(f, r, shown, c);
}

static void
print_session(const Rtpproxy__SessionInfo *s, int stats)
{
	const Rtpproxy__DirectionStats	*f, *r;
	unsigned char			 shown[SHM_C_N] = { 0 };
	char				 a[96], t[48];

	f = s->forward_stats != NULL ? s->forward_stats : &zero_dir;
	r = s->reverse_stats != NULL ? s->reverse_stats : &zero_dir;
	printf("%-14s %s\n", "session", s->session_id);
	printf("%-14s %s\n", "state", STATE_NAME(s->state));
	if (s->error_message != NULL && *s->error_message != '\0')
		printf("%-14s %s\n", "error", s->error_message);
	printf("%-14s %s%s%s\n", "transport", s->transport ==
	    RTPPROXY__TRANSPORT__TRANSPORT_TCP ? "TCP" : "UDP",
	    s->unidirectional ? ", unidirectional" : "",
	    s->disable_rtcp ? ", no RTCP" : "");
	printf("%-14s %s\n", "listen", ep_str(s->listen, a, sizeof(a)));
	printf("%-14s %s\n", "forward", ep_str(s->forward, a, sizeof(a)));
	printf("%-14s %s\n", "destination", ep_str(s->destination, a,
	    sizeof(a)));
	printf("%-14s %s\n", "latched", ep_str(s->latched, a, sizeof(a)));
	if (s->latched_rtcp != NULL)
		printf("%-14s %s\n", "latched RTCP", ep_str(s->latched_rtcp,
		    a, sizeof(a)));
	printf("%-14s %u\n", "worker", s->worker);
	printf("%-14s %s\n", "created", time_str(s->created_at_ms, t,
	    sizeof(t)));
	printf("%-14s %s\n", "last activity", time_str(s->last_activity_ms,
	    t, sizeof(t)));
	printf("%-14s %u s\n", "idle timeout", s->idle_timeout_s);
	if (s->stats_interval_ms > 0)
		printf("%-14s %u ms\n", "stats every", s->stats_interval_ms);
	if (s->clock_rate > 0)
		printf("%-14s %u Hz\n", "clock rate", s->clock_rate);
	printf("%-14s %s\n", "reverse from",
	    rs_name((int)s->reverse_source));
	if (s->transport != RTPPROXY__TRANSPORT__TRANSPORT_TCP)
		printf("%-14s %s, %u moves\n", "latch policy",
		    latch_name((int)s->latch_policy),
		    s->relatches);
	if (s->rate_limit_pps > 0 || s->rate_limit_bps > 0) {
		printf("%-14s", "rate limit");
		if (s->rate_limit_pps > 0)
			printf(" %u packets/s", s->rate_limit_pps);
		if (s->rate_limit_bps > 0)
			printf(" %" PRIu64 " bits/s", s->rate_limit_bps);
		printf(" per direction\n");
	}
	if (!stats)
		return;
	printf("\n%-22s %16s %16s\n", "", "forward", "reverse");
#define ROW_D(label, field) \
	printf("%-22s %16.3f %16.3f\n", label, f->field, r->field)
	row_ctr(f, r, shown, SHM_C_packets_received);
	row_ctr(f, r, shown, SHM_C_packets_sent);
	row_ctr(f, r, shown, SHM_C_bytes_received);
	row_ctr(f, r, shown, SHM_C_bytes_sent);
	printf("%-22s %16" PRIu64 " %16" PRIu64 "\n", "packets dropped",
	    f->packets_dropped, r->packets_dropped);
	row_ctrs(f, r, shown, SHM_CK_DROP);
	printf("%-22s %16" PRId64 " %16" PRId64 "\n", "packets lost",
	    f->packets_lost, r->packets_lost);
	row_ctr(f, r, shown, SHM_C_packets_expected);
	printf("%-22s %15.2f%% %15.2f%%\n", "loss rate",
	    f->loss_rate * 100.0, r->loss_rate * 100.0);
	ROW_D("jitter ms", jitter_ms);
	ROW_D("latency avg ms", avg_latency_ms);
	ROW_D("latency max ms", max_latency_ms);
	row_ctr(f, r, shown, SHM_C_rtcp_received);
	row_ctr(f, r, shown, SHM_C_rtcp_sent);
	row_ctr(f, r, shown, SHM_C_non_rtp);
	row_ctrs(f, r, shown, CTR_ALL);
	printf("%-22s %16s", "last packet", time_str(f->last_packet_ms, t,
	    sizeof(t)));
	printf(" %16s\n", time_str(r->last_packet_ms, t, sizeof(t)));
	printf("%-22s       0x%08x       0x%08x\n", "SSRC", f->ssrc, r->ssrc);
#undef ROW_D
}

static void
emit_session(const Rtpproxy__SessionInfo *s, int stats)
{
	struct json j = { stdout, 0, { 0 } };

	if (s == NULL)
		return;
	if (jflag)
		json_session(&j, NULL, s);
	else
		print_session(s, stats);
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
		    strcasecmp(s, STATE_NAME(d->values[i].value)) == 0)
			return d->values[i].value;
	usagex("--state: unknown state %s (created, connecting, active, "
	    "error, closed)", s);
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
	int				 ch, rc, i, p;

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
			for (i = 0; i <= CONF_RS_ADDRESS_PORT; i++)
				if (strcmp(optarg, config_rs_name(i)) == 0)
					break;
			if (i > CONF_RS_ADDRESS_PORT)
				usagex("--reverse-source: %s is not any, "
				    "address or address-port", optarg);
			req.reverse_source = (Rtpproxy__ReverseSource)(i + 1);
			break;
		case 'P':
			req.rate_limit_pps = parse_num("--pps", optarg);
			break;
		case 'B':
			if (config_parse_bps(optarg, &req.rate_limit_bps) == -1)
				usagex("--bps: %s is not a number of bits per "
				    "second (with k, M or G)", optarg);
			break;
		case 'L':
			if ((p = shm_latch_from_name(optarg)) == -1)
				usagex("--latch: %s is not learn, never or "
				    "latest", optarg);
			req.latch_policy = (Rtpproxy__LatchPolicy)p;
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
	emit_session(resp->session, 0);
	rtpproxy__create_session_response__free_unpacked(resp, NULL);
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
	emit_session(resp->session, 1);
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
	emit_session(resp->session, 1);
	rtpproxy__get_session_status_response__free_unpacked(resp, NULL);
	return 0;
}

static void
print_list(Rtpproxy__ListSessionsResponse **pages, size_t npages)
{
	const Rtpproxy__SessionInfo	*s;
	const Rtpproxy__DirectionStats	*f, *r;
	char				 l[96], fw[96], d[96], age[16];
	size_t				 p, i;
	int				 wid = 2, wl = 6, wf = 7, wd = 11, n;

	for (p = 0; p < npages; p++)
		for (i = 0; i < pages[p]->n_sessions; i++) {
			s = pages[p]->sessions[i];
			if ((n = (int)strlen(s->session_id)) > wid)
				wid = n;
			if ((n = (int)strlen(ep_str(s->listen, l,
			    sizeof(l)))) > wl)
				wl = n;
			if ((n = (int)strlen(ep_str(s->forward, l,
			    sizeof(l)))) > wf)
				wf = n;
			if ((n = (int)strlen(ep_str(s->destination, l,
			    sizeof(l)))) > wd)
				wd = n;
		}
	printf("%-*s  %-10s  %-*s  %-*s  %-*s  %10s  %10s  %5s\n", wid, "ID",
	    "STATE", wl, "LISTEN", wf, "FORWARD", wd, "DESTINATION",
	    "PKTS-FWD", "PKTS-REV", "AGE");
	for (p = 0; p < npages; p++)
		for (i = 0; i < pages[p]->n_sessions; i++) {
			s = pages[p]->sessions[i];
			f = s->forward_stats ? s->forward_stats : &zero_dir;
			r = s->reverse_stats ? s->reverse_stats : &zero_dir;
			printf("%-*s  %-10s  %-*s  %-*s  %-*s  %10" PRIu64
			    "  %10" PRIu64 "  %5s\n", wid, s->session_id,
			    STATE_NAME(s->state),
			    wl, ep_str(s->listen, l, sizeof(l)),
			    wf, ep_str(s->forward, fw, sizeof(fw)),
			    wd, ep_str(s->destination, d, sizeof(d)),
			    f->packets_received, r->packets_received,
			    age_str(s->created_at_ms, age, sizeof(age)));
		}
}

static int
cmd_list(struct rpc_client *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "page-size", required_argument, NULL, 'n' },
		{ "page-token", required_argument, NULL, 'p' },
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 }
	};
	Rtpproxy__ListSessionsRequest	  req =
	    RTPPROXY__LIST_SESSIONS_REQUEST__INIT;
	Rtpproxy__ListSessionsResponse	**pages = NULL, *resp;
	struct json			  j = { stdout, 0, { 0 } };
	char				  details[512], *token = NULL;
	size_t				  npages = 0, p, i;
	int				  ch, rc = 0, all = 0;

	while ((ch = getopt_long(argc, argv, "s:n:p:a", longopts, NULL)) !=
	    -1) {
		switch (ch) {
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
	token = pages[npages - 1]->next_page_token;
	if (jflag) {
		json_open(&j, NULL, '{');
		json_open(&j, "sessions", '[');
		for (p = 0; p < npages; p++)
			for (i = 0; i < pages[p]->n_sessions; i++)
				json_session(&j, NULL, pages[p]->sessions[i]);
		json_close(&j, ']');
		json_str(&j, "next_page_token", token);
		json_close(&j, '}');
	} else {
		print_list(pages, npages);
		if (*token != '\0')
			printf("next page: -p %s\n", token);
	}
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

static void
print_event(const Rtpproxy__SessionEvent *e)
{
	struct json		 j = { stdout, 0, { 0 } };
	const Rtpproxy__DirectionStats *f, *r;
	char			 t[48], a[96];

	if (jflag) {
		json_open(&j, NULL, '{');
		json_str(&j, "type", EVENT_NAME(e->type));
		json_str(&j, "session_id", e->session_id);
		json_i64(&j, "timestamp_ms", e->timestamp_ms);
		json_str(&j, "state", STATE_NAME(e->state));
		json_str(&j, "previous_state", STATE_NAME(e->previous_state));
		json_str(&j, "reason", e->reason);
		json_u64(&j, "events_missed", e->events_missed);
		json_endpoint(&j, "address", e->address);
		json_endpoint(&j, "previous_address", e->previous_address);
		json_bool(&j, "rtcp", e->rtcp);
		json_session(&j, "session", e->session);
		json_close(&j, '}');
		fflush(stdout);
		return;
	}
	printf("%s %-13s %s %s", time_str(e->timestamp_ms, t, sizeof(t)),
	    EVENT_NAME(e->type), e->session_id, STATE_NAME(e->state));
	if (e->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_STATE_CHANGED)
		printf(" (was %s)", STATE_NAME(e->previous_state));
	if (e->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_STATS_UPDATE &&
	    e->session != NULL) {
		f = e->session->forward_stats ? e->session->forward_stats :
		    &zero_dir;
		r = e->session->reverse_stats ? e->session->reverse_stats :
		    &zero_dir;
		printf(" fwd %" PRIu64 " pkts %" PRId64 " lost %.2f ms jitter;"
		    " rev %" PRIu64 " pkts %" PRId64 " lost %.2f ms jitter",
		    f->packets_received, f->packets_lost, f->jitter_ms,
		    r->packets_received, r->packets_lost, r->jitter_ms);
	}
	if (e->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_RELATCHED) {
		printf(" %s from %s", e->rtcp ? "RTCP" : "RTP",
		    ep_str(e->previous_address, a, sizeof(a)));
		printf(" to %s", ep_str(e->address, a, sizeof(a)));
	}
	if (e->reason != NULL && *e->reason != '\0')
		printf(": %s", e->reason);
	if (e->events_missed > 0)
		printf(" [%" PRIu64 " events missed]", e->events_missed);
	printf("\n");
	fflush(stdout);
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
		print_event(ev);
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

static const struct {
	const char	*name;
	int		(*fn)(struct rpc_client *, int, char **);
} commands[] = {
	{ "create", cmd_create },
	{ "destroy", cmd_destroy },
	{ "status", cmd_status },
	{ "list", cmd_list },
	{ "watch", cmd_watch },
	{ "health", cmd_health },
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
