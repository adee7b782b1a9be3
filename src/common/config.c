#include <sys/types.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"
#include "conf.h"
#include "config_int.h"

#define CONF_LINE_MAX	1024
#define CONF_MAX_ARGS	8
#define CONF_DEF_LISTEN	"127.0.0.1:50051"
#define CONF_DEF_PID	RUNSTATEDIR "/rtpproxyd.pid"

struct conf_keyword;

struct conf_state {
	struct config	*conf;
	const char	*name;
	unsigned int	 line;
	char		*err;
	size_t		 errlen;
	unsigned int	*seen;			/* line of each keyword */
	unsigned int	 listen_line[CONF_MAX_LISTEN];
	int		 listen_given;
};

typedef int (*conf_fn)(struct conf_state *, const struct conf_keyword *,
    char **);

struct conf_keyword {
	const char	*name;
	int		 nargs;
	int		 repeat;
	conf_fn		 fn;
	size_t		 off;		/* uint32_t field, for conf_u32 */
	uint32_t	 min, max;
	const char	*unit;
};

static int	conf_err(struct conf_state *, const char *, ...)
		    __printflike(2, 3);
static int	conf_listen(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_workers(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_ports(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_u32(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_stats(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_level(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_facility(struct conf_state *,
		    const struct conf_keyword *, char **);
static int	conf_name(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_pidfile(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_shm(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_rule(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_rsource(struct conf_state *,
		    const struct conf_keyword *, char **);
static int	conf_bps(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_latch(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_file(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_health(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_metrics(struct conf_state *,
		    const struct conf_keyword *, char **);
static int	conf_kfwd(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_kifs(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_redis(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_word(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_rtls(struct conf_state *, const struct conf_keyword *,
		    char **);
static int	conf_standby(struct conf_state *,
		    const struct conf_keyword *, char **);
static int	conf_recdir(struct conf_state *, const struct conf_keyword *,
		    char **);

#define OFF(f)	offsetof(struct config, f)

static const struct conf_keyword conf_keywords[] = {
	{ "listen",		1, 1, conf_listen,	0, 0, 0, NULL },
	{ "workers",		1, 0, conf_workers,	0, 0, 64, NULL },
	{ "port-range",		2, 0, conf_ports,	0, 0, 0, NULL },
	{ "max-sessions",	1, 0, conf_u32,
	    OFF(max_sessions), 1, 1000000, NULL },
	{ "idle-timeout",	1, 0, conf_u32,
	    OFF(idle_timeout), 1, 86400, "seconds" },
	{ "setup-timeout",	1, 0, conf_u32,
	    OFF(setup_timeout), 1, 86400, "seconds" },
	{ "stats-interval",	1, 0, conf_stats,	0, 100, 3600000, "ms" },
	{ "event-queue",	1, 0, conf_u32,
	    OFF(event_queue), 16, 1000000, "events" },
	{ "shutdown-grace",	1, 0, conf_u32,
	    OFF(shutdown_grace), 0, 3600, "seconds" },
	{ "log-level",		1, 0, conf_level,	0, 0, 0, NULL },
	{ "syslog-facility",	1, 0, conf_facility,	0, 0, 0, NULL },
	{ "user",		1, 0, conf_name,
	    OFF(user), 0, 0, NULL },
	{ "group",		1, 0, conf_name,
	    OFF(group), 0, 0, NULL },
	{ "pidfile",		1, 0, conf_pidfile,	0, 0, 0, NULL },
	{ "shm-name",		1, 0, conf_shm,		0, 0, 0, NULL },
	{ "allow-destination",	-1, 1, conf_rule,	SHM_ACL_ALLOW, 0, 0,
	    NULL },
	{ "deny-destination",	-1, 1, conf_rule,	SHM_ACL_DENY, 0, 0,
	    NULL },
	{ "reverse-source",	1, 0, conf_rsource,	0, 0, 0, NULL },
	{ "rate-limit-pps",	1, 0, conf_u32,
	    OFF(rate_pps), 0, 10000000, "packets per second" },
	{ "rate-limit-bps",	1, 0, conf_bps,		0, 0, 0, NULL },
	{ "rate-limit-burst",	1, 0, conf_u32,
	    OFF(rate_burst_ms), 10, 60000, "ms" },
	{ "latch-policy",	1, 0, conf_latch,	0, 0, 0, NULL },
	{ "latch-learn-time",	1, 0, conf_u32,
	    OFF(latch_learn_ms), 0, 60000, "ms" },
	{ "latch-quiet-time",	1, 0, conf_u32,
	    OFF(latch_quiet_ms), 100, 600000, "ms" },
	{ "latch-run",		1, 0, conf_u32,
	    OFF(latch_run), 2, 64, "packets" },
	{ "auth-token-file",	1, 0, conf_file,
	    OFF(auth_token_file), 0, 0, NULL },
	{ "auth-health",	1, 0, conf_health,	0, 0, 0, NULL },
	{ "tls-cert",		1, 0, conf_file,	OFF(tls_cert), 0, 0,
	    NULL },
	{ "tls-key",		1, 0, conf_file,	OFF(tls_key), 1, 0,
	    NULL },
	{ "tls-client-ca",	1, 0, conf_file,
	    OFF(tls_client_ca), 2, 0, NULL },
	{ "metrics-listen",	1, 0, conf_metrics,	0, 0, 0, NULL },
	{ "kernel-forwarding",	1, 0, conf_kfwd,	0, 0, 0, NULL },
	{ "kernel-interfaces",	-1, 1, conf_kifs,	0, 0, 0, NULL },
	{ "orphan-timeout",	1, 0, conf_u32,
	    OFF(orphan_timeout), 0, 86400, "seconds" },
	{ "api-max-connections", 1, 0, conf_u32,
	    OFF(api_max_conns), 1, 100000, "connections" },
	{ "api-max-connections-per-client", 1, 0, conf_u32,
	    OFF(api_max_per_client), 0, 100000, "connections" },
	{ "api-handshake-timeout", 1, 0, conf_u32,
	    OFF(api_handshake_timeout), 1, 300, "seconds" },
	{ "api-idle-timeout",	1, 0, conf_u32,
	    OFF(api_idle_timeout), 0, 86400, "seconds" },
	{ "api-max-streams",	1, 0, conf_u32,
	    OFF(api_max_streams), 1, 100000, "streams" },
	{ "redis",		1, 0, conf_redis,	0, 0, 0, NULL },
	{ "redis-db",		1, 0, conf_u32,
	    OFF(redis_db), 0, 65535, "(a database number)" },
	{ "redis-prefix",	1, 0, conf_word,	OFF(redis_prefix), 0, 0,
	    NULL },
	{ "redis-password-file", 1, 0, conf_file,
	    OFF(redis_password_file), 0, 0, NULL },
	{ "redis-tls",		1, 0, conf_rtls,	0, 0, 0, NULL },
	{ "redis-tls-ca",	1, 0, conf_file,
	    OFF(redis_tls_ca), 3, 0, NULL },
	{ "redis-tls-cert",	1, 0, conf_file,
	    OFF(redis_tls_cert), 4, 0, NULL },
	{ "redis-tls-key",	1, 0, conf_file,
	    OFF(redis_tls_key), 5, 0, NULL },
	{ "redis-tls-server-name", 1, 0, conf_rtls, 0, 1, 0, NULL },
	{ "node-id",		1, 0, conf_word,	OFF(node_id), 1, 0, NULL },
	{ "standby-for",	2, 1, conf_standby,	0, 0, 0, NULL },
	{ "recording-dir",	1, 0, conf_recdir,	0, 0, 0, NULL },
};
#define NKEYWORDS	(sizeof(conf_keywords) / sizeof(conf_keywords[0]))

static int
conf_err(struct conf_state *st, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (st->err == NULL || st->errlen == 0)
		return -1;
	n = snprintf(st->err, st->errlen, "%s:%u: ", st->name, st->line);
	if (n >= 0 && (size_t)n < st->errlen) {
		va_start(ap, fmt);
		vsnprintf(st->err + n, st->errlen - n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

void
conf_seterr(char *err, size_t errlen, const char *what, const char *why)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %s", what, why);
}

static int
conf_listen(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	struct config		*c = st->conf;
	struct listen_addr	 la;
	char			 why[2 * ADDR_TEXT_MAX + 128];
	int			 i;

	/* The first listen line replaces the default address. */
	if (!st->listen_given) {
		memset(c->listen, 0, sizeof(c->listen));
		c->nlisten = 0;
		st->listen_given = 1;
	}
	if (addr_parse(&la, "listen", argv[0], ADDR_UNIX_OK, why,
	    sizeof(why)) == -1)
		return conf_err(st, "%s", why);
	for (i = 0; i < c->nlisten; i++)
		if (strcmp(c->listen[i].text, argv[0]) == 0)
			return conf_err(st, "listen: \"%s\" given twice "
			    "(first on line %u)", argv[0], st->listen_line[i]);
	if (c->nlisten == CONF_MAX_LISTEN)
		return conf_err(st, "listen: at most %d addresses",
		    CONF_MAX_LISTEN);
	st->listen_line[c->nlisten] = st->line;
	c->listen[c->nlisten++] = la;
	return 0;
}

static int
conf_workers(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	uint32_t v;

	if (parse_u32(argv[0], kw->min, kw->max, &v) == -1)
		return conf_err(st, "workers: must be 0 (one per CPU) or "
		    "1..%u (got \"%s\")", kw->max, argv[0]);
	st->conf->workers = (int)v;
	return 0;
}

static int
conf_ports(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	uint32_t lo, hi;

	if (parse_u32(argv[0], 1024, 65535, &lo) == -1)
		return conf_err(st, "port-range: MIN must be 1024..65535 "
		    "(got \"%s\")", argv[0]);
	if (parse_u32(argv[1], 1024, 65535, &hi) == -1)
		return conf_err(st, "port-range: MAX must be 1024..65535 "
		    "(got \"%s\")", argv[1]);
	if (lo >= hi)
		return conf_err(st, "port-range: MIN must be less than MAX "
		    "(got %u %u)", lo, hi);
	/* RTP takes the even port of a pair, RTCP the odd one above. */
	if (lo % 2 != 0)
		return conf_err(st, "port-range: MIN must be even (got %u)",
		    lo);
	if (hi % 2 != 1)
		return conf_err(st, "port-range: MAX must be odd (got %u)",
		    hi);
	if (hi - lo + 1 < 4)
		return conf_err(st, "port-range: at least 4 ports needed "
		    "(got %u)", hi - lo + 1);
	st->conf->port_min = (uint16_t)lo;
	st->conf->port_max = (uint16_t)hi;
	return 0;
}

static int
conf_u32(struct conf_state *st, const struct conf_keyword *kw, char **argv)
{
	uint32_t v;

	if (parse_u32(argv[0], kw->min, kw->max, &v) == -1)
		return conf_err(st, "%s: must be %u..%u%s%s (got \"%s\")",
		    kw->name, kw->min, kw->max, kw->unit ? " " : "",
		    kw->unit ? kw->unit : "", argv[0]);
	*(uint32_t *)((char *)st->conf + kw->off) = v;
	return 0;
}

static int
conf_stats(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	uint32_t v = 0;

	if (strcmp(argv[0], "0") != 0 &&
	    parse_u32(argv[0], kw->min, kw->max, &v) == -1)
		return conf_err(st, "stats-interval: must be 0 (off) or "
		    "%u..%u ms (got \"%s\")", kw->min, kw->max, argv[0]);
	st->conf->stats_interval = v;
	return 0;
}

static int
conf_level(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	int level;

	if ((level = log_level_from_name(argv[0])) == -1)
		return conf_err(st, "log-level: unknown level \"%s\" (expected "
		    "error, warning, notice, info or debug)", argv[0]);
	st->conf->log_level = level;
	return 0;
}

static int
conf_facility(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	int fac;

	if ((fac = log_facility_from_name(argv[0])) == -1)
		return conf_err(st, "syslog-facility: unknown facility \"%s\" "
		    "(expected daemon, user or local0..local7)", argv[0]);
	st->conf->log_facility = fac;
	return 0;
}

/* user, group: looked up when privileges are dropped, not here. */
static int
conf_name(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	char **p = (char **)((char *)st->conf + kw->off);

	if (*argv[0] == '\0')
		return conf_err(st, "%s: empty name", kw->name);
	free(*p);
	*p = xstrdup(argv[0]);
	return 0;
}

/*
 * Where sessions' pcap files go, or none.  The workers read it from the
 * session table, which has room for 199 octets of it.
 */
static int
conf_recdir(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	struct config	*c = st->conf;
	size_t		 n = strlen(argv[0]);

	if (strcmp(argv[0], "none") == 0) {
		free(c->recording_dir);
		c->recording_dir = NULL;
		return 0;
	}
	if (argv[0][0] != '/')
		return conf_err(st, "recording-dir: must be an absolute path "
		    "or \"none\" (got \"%s\")", argv[0]);
	while (n > 1 && argv[0][n - 1] == '/')
		argv[0][--n] = '\0';
	if (n >= sizeof(((struct shm_header *)0)->rec_dir) - 1)
		return conf_err(st, "recording-dir: longer than %zu octets",
		    sizeof(((struct shm_header *)0)->rec_dir) - 2);
	free(c->recording_dir);
	c->recording_dir = xstrdup(argv[0]);
	return 0;
}

static int
conf_pidfile(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	struct config *c = st->conf;

	if (strcmp(argv[0], "none") != 0 && argv[0][0] != '/')
		return conf_err(st, "pidfile: must be an absolute path or "
		    "\"none\" (got \"%s\")", argv[0]);
	free(c->pidfile);
	c->pidfile = strcmp(argv[0], "none") == 0 ? NULL : xstrdup(argv[0]);
	return 0;
}

/* What shm_open(3) accepts everywhere: one leading slash, no other. */
static int
conf_shm(struct conf_state *st, const struct conf_keyword *kw, char **argv)
{
	const char	*s = argv[0];
	size_t		 len = strlen(s), i;
	int		 ok = s[0] == '/' && len >= 2 && len <= 63;

	for (i = 1; ok && i < len; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '.' || s[i] == '_' || s[i] == '-';
	if (!ok)
		return conf_err(st, "shm-name: must be \"/\" followed by 1..62 "
		    "of A-Z a-z 0-9 . _ - (got \"%s\")", s);
	free(st->conf->shm_name);
	st->conf->shm_name = xstrdup(s);
	return 0;
}

static int
conf_rule(struct conf_state *st, const struct conf_keyword *kw, char **argv)
{
	struct config		*c = st->conf;
	struct shm_acl_rule	 r;
	char			 why[160];

	for (; *argv != NULL; argv++) {
		if (acl_parse(*argv, &r, why, sizeof(why)) == -1)
			return conf_err(st, "%s: %s", kw->name, why);
		if (c->nrules >= CONF_MAX_RULES)
			return conf_err(st, "%s: more than %d rules in all",
			    kw->name, CONF_MAX_RULES);
		r.action = (uint8_t)kw->off;
		r.line = st->line;
		c->rules = xreallocarray(c->rules, c->nrules + 1,
		    sizeof(*c->rules));
		c->rules[c->nrules++] = r;
	}
	return 0;
}

static const char *conf_rs_names[] = { "any", "address", "address-port" };

const char *
config_rs_name(int rs)
{
	return rs >= 0 && rs <= CONF_RS_ADDRESS_PORT ? conf_rs_names[rs] : "?";
}

static int
conf_rsource(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	int i;

	for (i = 0; i <= CONF_RS_ADDRESS_PORT; i++)
		if (strcmp(argv[0], conf_rs_names[i]) == 0) {
			st->conf->reverse_source = i;
			return 0;
		}
	return conf_err(st, "reverse-source: expected any, address or "
	    "address-port (got \"%s\")", argv[0]);
}

/* Indexed by SHM_LATCH_*. */

static int
conf_latch(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	int p;

	if ((p = shm_latch_from_name(argv[0])) != -1) {
		st->conf->latch_policy = p;
		return 0;
	}
	return conf_err(st, "latch-policy: expected learn, never or latest "
	    "(got \"%s\")", argv[0]);
}

static const char *conf_kfwd_names[] = { "off", "auto", "on" };

const char *
config_kfwd_name(int m)
{
	return m >= CONF_KFWD_OFF && m <= CONF_KFWD_ON ? conf_kfwd_names[m] :
	    "?";
}

static int
conf_kfwd(struct conf_state *st, const struct conf_keyword *kw, char **argv)
{
	int m;

	for (m = CONF_KFWD_OFF; m <= CONF_KFWD_ON; m++)
		if (strcmp(argv[0], config_kfwd_name(m)) == 0) {
			st->conf->kernel_fwd = m;
			return 0;
		}
	return conf_err(st, "kernel-forwarding: expected off, auto or on "
	    "(got \"%s\")", argv[0]);
}

/*
 * Interface names as the kernel takes them: 1..15 octets, no / or space.
 * Lines add up, as allow-destination's do.
 */
static int
conf_kifs(struct conf_state *st, const struct conf_keyword *kw, char **argv)
{
	struct config	*c = st->conf;
	size_t		 len;

	for (; *argv != NULL; argv++) {
		len = strlen(*argv);
		if (len == 0 || len > 15 || strpbrk(*argv, "/ \t:") != NULL ||
		    strcmp(*argv, ".") == 0 || strcmp(*argv, "..") == 0)
			return conf_err(st, "kernel-interfaces: not an "
			    "interface name: \"%s\"", *argv);
		if (c->nkernel_ifs >= CONF_MAX_KERNEL_IFS)
			return conf_err(st, "kernel-interfaces: more than %d",
			    CONF_MAX_KERNEL_IFS);
		c->kernel_ifs = xreallocarray(c->kernel_ifs,
		    (size_t)c->nkernel_ifs + 1, sizeof(*c->kernel_ifs));
		c->kernel_ifs[c->nkernel_ifs++] = xstrdup(*argv);
	}
	return 0;
}

/* Bits per second, with an optional k, M or G (powers of 1000). */
int
config_parse_bps(const char *s, uint64_t *out)
{
	unsigned long long	 v;
	uint64_t		 mul = 1;
	char			*end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'k' || *end == 'K')
		mul = 1000;
	else if (*end == 'M')
		mul = 1000000;
	else if (*end == 'G')
		mul = 1000000000;
	if (mul != 1)
		end++;
	if (*end != '\0' || v > 100000000000ULL / mul)
		return -1;
	*out = v * mul;
	return 0;
}

static int
conf_bps(struct conf_state *st, const struct conf_keyword *kw, char **argv)
{
	if (config_parse_bps(argv[0], &st->conf->rate_bps) == -1)
		return conf_err(st, "rate-limit-bps: must be 0 (none) or bits "
		    "per second up to 100G, with an optional k, M or G (got "
		    "\"%s\")", argv[0]);
	return 0;
}

/* auth-token-file, tls-*: absolute paths, read by config_load_files. */
static int
conf_file(struct conf_state *st, const struct conf_keyword *kw, char **argv)
{
	struct config	*c = st->conf;
	char		**p = (char **)((char *)c + kw->off);

	if (argv[0][0] != '/')
		return conf_err(st, "%s: must be an absolute path (got \"%s\")",
		    kw->name, argv[0]);
	free(*p);
	*p = xstrdup(argv[0]);
	if (kw->off == OFF(auth_token_file))
		c->auth_token_line = st->line;
	else if (kw->off == OFF(redis_password_file))
		c->redis_password_line = st->line;
	else if (kw->min >= 3)
		c->redis_tls_line[kw->min - 3] = st->line;
	else
		c->tls_line[kw->min] = st->line;
	return 0;
}

static int
conf_health(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	if (strcmp(argv[0], "open") == 0)
		st->conf->auth_health_open = 1;
	else if (strcmp(argv[0], "token") == 0)
		st->conf->auth_health_open = 0;
	else
		return conf_err(st, "auth-health: expected open or token (got "
		    "\"%s\")", argv[0]);
	return 0;
}

static int
conf_metrics(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	struct listen_addr	la;
	char			why[2 * ADDR_TEXT_MAX + 128];

	if (strcmp(argv[0], "none") == 0) {
		memset(&st->conf->metrics_listen, 0,
		    sizeof(st->conf->metrics_listen));
		return 0;
	}
	/* localhost: 127.0.0.1 alone, as it always was for metrics. */
	if (addr_parse(&la, "metrics-listen", argv[0], ADDR_LO_V4, why,
	    sizeof(why)) == -1)
		return conf_err(st, "%s", why);
	st->conf->metrics_listen = la;
	return 0;
}

/*
 * redis ADDRESS:PORT, [IPV6]:PORT or /unix/path.  Numeric addresses only:
 * a name would be looked up by hiredis with a blocking getaddrinfo on
 * the master's loop, which nothing may wait on.
 */
static int
conf_redis(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	struct config		*c = st->conf;
	struct in6_addr		 a6;
	char			 host[ADDR_TEXT_MAX], *p;
	const char		*s = argv[0];
	uint32_t		 port;
	size_t			 len;

	free(c->redis);
	free(c->redis_host);
	free(c->redis_unix);
	c->redis = c->redis_host = c->redis_unix = NULL;
	if (strcmp(s, "none") == 0)
		return 0;
	if (s[0] == '/') {
		if (strlen(s) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return conf_err(st, "redis: unix path too long "
			    "(got \"%s\")", s);
		c->redis = xstrdup(s);
		c->redis_unix = xstrdup(s);
		return 0;
	}
	if ((p = strrchr(s, ':')) == NULL || p == s ||
	    parse_u32(p + 1, 1, 65535, &port) == -1)
		goto bad;
	len = (size_t)(p - s);
	if (s[0] == '[') {
		if (len < 3 || s[len - 1] != ']')
			goto bad;
		s++;
		len -= 2;
	}
	if (len >= sizeof(host))
		goto bad;
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, &a6) != 1 &&
	    inet_pton(AF_INET6, host, &a6) != 1)
		goto bad;
	c->redis = xstrdup(argv[0]);
	c->redis_host = xstrdup(host);
	c->redis_port = (uint16_t)port;
	return 0;
bad:
	return conf_err(st, "redis: expected none, ADDRESS:PORT, "
	    "[IPV6-ADDRESS]:PORT (numeric) or an absolute unix socket path "
	    "(got \"%s\")", argv[0]);
}

/*
 * redis-tls yes|no (min 0); redis-tls-server-name NAME (min 1): the
 * name the server's certificate must carry, a DNS name of 1..253 of
 * A-Z a-z 0-9 . - (and * for none of it: it is never a pattern here).
 */
static int
conf_rtls(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	struct config	*c = st->conf;
	const char	*s = argv[0];
	size_t		 i, len = strlen(s);

	if (kw->min == 0) {
		if (strcmp(s, "yes") == 0)
			c->redis_tls = 1;
		else if (strcmp(s, "no") == 0)
			c->redis_tls = 0;
		else
			return conf_err(st, "redis-tls: expected yes or no "
			    "(got \"%s\")", s);
		c->redis_tls_kwline = st->line;
		return 0;
	}
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		    s[i] == '-'))
			break;
	if (len == 0 || len > 253 || i < len || s[0] == '.' || s[0] == '-')
		return conf_err(st, "redis-tls-server-name: must be a host "
		    "name of 1..253 of A-Z a-z 0-9 . - (got \"%s\")", s);
	free(c->redis_tls_name);
	c->redis_tls_name = xstrdup(s);
	return 0;
}

/* 1..63 of A-Z a-z 0-9 . _ -, and : if colon */
static int
conf_word_ok(const char *s, int colon)
{
	size_t	i, len = strlen(s);
	int	ok = len >= 1 && len < CONF_NODE_MAX;

	for (i = 0; ok && i < len; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '.' || s[i] == '_' || s[i] == '-' ||
		    (s[i] == ':' && colon);
	return ok;
}

/* node-id (min 1), redis-prefix (min 0: with ':') */
static int
conf_word(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	char		**p = (char **)((char *)st->conf + kw->off);
	const char	*s = argv[0];

	if (!conf_word_ok(s, kw->min == 0))
		return conf_err(st, "%s: must be 1..%d of A-Z a-z 0-9 . _ -%s "
		    "(got \"%s\")", kw->name, CONF_NODE_MAX - 1,
		    kw->min == 0 ? " :" : "", s);
	free(*p);
	*p = xstrdup(s);
	return 0;
}

/*
 * standby-for NODE ADDRESS: take over NODE's sessions when ADDRESS (the
 * floating address keepalived moves) appears on this host.
 */
static int
conf_standby(struct conf_state *st, const struct conf_keyword *kw,
    char **argv)
{
	struct config		*c = st->conf;
	struct conf_standby	*sb;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	int			 i;

	if (c->nstandby == CONF_MAX_STANDBY)
		return conf_err(st, "standby-for: at most %d nodes",
		    CONF_MAX_STANDBY);
	if (!conf_word_ok(argv[0], 0))
		return conf_err(st, "standby-for: the node must be 1..%d of "
		    "A-Z a-z 0-9 . _ - (got \"%s\")", CONF_NODE_MAX - 1,
		    argv[0]);
	sb = &c->standby[c->nstandby];
	memset(sb, 0, sizeof(*sb));
	sin = (struct sockaddr_in *)&sb->addr;
	sin6 = (struct sockaddr_in6 *)&sb->addr;
	if (inet_pton(AF_INET, argv[1], &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, argv[1], &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		return conf_err(st, "standby-for: the floating address must be "
		    "a numeric IPv4 or IPv6 address, no port (got \"%s\")",
		    argv[1]);
	for (i = 0; i < c->nstandby; i++)
		if (strcmp(c->standby[i].node, argv[0]) == 0)
			return conf_err(st, "standby-for: node %s given twice "
			    "(first on line %u)", argv[0], c->standby[i].line);
	snprintf(sb->node, sizeof(sb->node), "%s", argv[0]);
	snprintf(sb->text, sizeof(sb->text), "%s", argv[1]);
	sb->line = st->line;
	c->nstandby++;
	return 0;
}

/*
 * Split one line into words in buf (at least len + 1 bytes).  Blanks
 * separate words, '#' outside quotes ends the line, and inside "..."
 * a backslash escapes only '"' and '\'.  Returns the word count, which
 * may exceed CONF_MAX_ARGS (the extra words are not stored), or -1.
 */
static int
conf_split(struct conf_state *st, const char *s, size_t len, char *buf,
    char **argv)
{
	size_t	 i = 0;
	char	*o = buf, *start;
	int	 argc = 0;

	for (;;) {
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i == len || s[i] == '#')
			break;
		start = o;
		if (s[i] == '"') {
			for (i++;; i++) {
				if (i == len)
					return conf_err(st,
					    "unterminated quoted string");
				if (s[i] == '"')
					break;
				if (s[i] == '\\' && i + 1 < len &&
				    (s[i + 1] == '"' || s[i + 1] == '\\'))
					i++;
				*o++ = s[i];
			}
			i++;
			if (i < len && s[i] != ' ' && s[i] != '\t' &&
			    s[i] != '#')
				return conf_err(st, "text after closing quote");
		} else {
			for (; i < len && s[i] != ' ' && s[i] != '\t' &&
			    s[i] != '#'; i++) {
				if (s[i] == '"')
					return conf_err(st, "quote inside a "
					    "word (quote the whole argument)");
				*o++ = s[i];
			}
		}
		*o++ = '\0';
		if (argc < CONF_MAX_ARGS)
			argv[argc] = start;
		argc++;
	}
	return argc;
}

static int
conf_line(struct conf_state *st, const char *s, size_t len)
{
	const struct conf_keyword	*kw = NULL;
	char				 buf[CONF_LINE_MAX + 1];
	char				*argv[CONF_MAX_ARGS + 1];
	size_t				 i;
	int				 argc;

	if (len > CONF_LINE_MAX)
		return conf_err(st, "line too long (more than %d bytes)",
		    CONF_LINE_MAX);
	for (i = 0; i < len; i++) {
		if (s[i] == '\0')
			return conf_err(st, "NUL byte");
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') ||
		    s[i] == 0x7f)
			return conf_err(st, "control character 0x%02x",
			    (unsigned char)s[i]);
	}
	if (!utf8_valid(s, len))
		return conf_err(st, "invalid UTF-8");
	if ((argc = conf_split(st, s, len, buf, argv)) <= 0)
		return argc;

	for (i = 0; i < NKEYWORDS; i++)
		if (strcmp(argv[0], conf_keywords[i].name) == 0) {
			kw = &conf_keywords[i];
			break;
		}
	if (kw == NULL)
		return conf_err(st, "unknown keyword \"%s\"", argv[0]);
	if (st->seen[i] != 0 && !kw->repeat)
		return conf_err(st, "%s given twice (first on line %u)",
		    kw->name, st->seen[i]);
	if (st->seen[i] == 0)
		st->seen[i] = st->line;
	if (kw->nargs < 0 && (argc < 2 || argc > CONF_MAX_ARGS))
		return conf_err(st, "%s: expects 1 to %d arguments", kw->name,
		    CONF_MAX_ARGS - 1);
	if (kw->nargs >= 0 && argc - 1 != kw->nargs)
		return conf_err(st, "%s: expects %d argument%s", kw->name,
		    kw->nargs, kw->nargs == 1 ? "" : "s");
	argv[argc] = NULL;
	return kw->fn(st, kw, argv + 1);
}

/*
 * TLS to Redis: a CA to check the server with, a certificate with its
 * key or neither, a Redis over TCP, and no redis-tls-* without it.
 */
static int
conf_rtls_check(struct conf_state *st)
{
	static const char *const kw[3] = { "redis-tls-ca", "redis-tls-cert",
	    "redis-tls-key" };
	struct config	*c = st->conf;
	const char	*path[3] = { c->redis_tls_ca, c->redis_tls_cert,
	    c->redis_tls_key };
	int		 i;

	if (!c->redis_tls) {
		for (i = 0; i < 3; i++)
			if (path[i] != NULL) {
				st->line = c->redis_tls_line[i];
				return conf_err(st, "%s given without "
				    "redis-tls yes", kw[i]);
			}
		if (c->redis_tls_name != NULL)
			return conf_err(st, "redis-tls-server-name given "
			    "without redis-tls yes");
		return 0;
	}
	st->line = c->redis_tls_kwline;
	if (c->redis == NULL)
		return conf_err(st, "redis-tls yes given without redis");
	if (c->redis_unix != NULL)
		return conf_err(st, "redis-tls yes: redis is a unix socket "
		    "(TLS needs ADDRESS:PORT)");
	if (c->redis_tls_ca == NULL)
		return conf_err(st, "redis-tls yes given without redis-tls-ca "
		    "(the CA that signed Redis's certificate)");
	if ((c->redis_tls_cert == NULL) != (c->redis_tls_key == NULL)) {
		i = c->redis_tls_cert != NULL ? 1 : 2;
		st->line = c->redis_tls_line[i];
		return conf_err(st, "%s given without %s", kw[i], kw[3 - i]);
	}
	return 0;
}

int
conf_parse(struct config *c, const char *name, const char *text,
    size_t len, char *err, size_t errlen)
{
	struct conf_state	 st;
	unsigned int		 seen[NKEYWORDS];
	const char		*p = text, *end = text + len, *nl;
	size_t			 n;
	size_t			 i;

	memset(&st, 0, sizeof(st));
	memset(seen, 0, sizeof(seen));
	st.conf = c;
	st.name = name;
	st.err = err;
	st.errlen = errlen;
	st.seen = seen;

	/* Some editors start a UTF-8 file with a byte order mark. */
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (p < end) {
		st.line++;
		nl = memchr(p, '\n', end - p);
		n = (nl != NULL ? nl : end) - p;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (conf_line(&st, p, n) == -1)
			return -1;
		p = nl != NULL ? nl + 1 : end;
	}

	/* TLS needs both halves; a client CA only makes sense with them. */
	if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
		st.line = c->tls_cert != NULL ? c->tls_line[0] : c->tls_line[1];
		return conf_err(&st, "%s given without %s", c->tls_cert != NULL ?
		    "tls-cert" : "tls-key", c->tls_cert != NULL ? "tls-key" :
		    "tls-cert");
	}
	if (c->tls_client_ca != NULL && c->tls_cert == NULL) {
		st.line = c->tls_line[2];
		return conf_err(&st, "tls-client-ca given without tls-cert and "
		    "tls-key");
	}

	if (conf_rtls_check(&st) == -1)
		return -1;

	if (c->nstandby > 0 && c->redis == NULL) {
		st.line = c->standby[0].line;
		return conf_err(&st, "standby-for given without redis");
	}

	/* A group alone would be silently ignored by the privilege drop. */
	for (i = 0; i < NKEYWORDS; i++)
		if (strcmp(conf_keywords[i].name, "group") == 0 &&
		    seen[i] != 0 && c->user == NULL) {
			st.line = seen[i];
			return conf_err(&st, "group: given without user");
		}
	return 0;
}

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	if (addr_parse(&c->listen[0], "listen", CONF_DEF_LISTEN, 0, NULL,
	    0) == -1)
		fatalx("config: the default listen address does not parse");
	c->nlisten = 1;
	c->workers = 0;
	c->port_min = 16384;
	c->port_max = 32767;
	c->max_sessions = 4096;
	c->idle_timeout = 60;
	c->setup_timeout = 60;
	c->stats_interval = 0;
	c->event_queue = 1024;
	c->shutdown_grace = 5;
	c->log_level = LOG_INFO;
	c->log_facility = LOG_DAEMON;
	c->pidfile = xstrdup(CONF_DEF_PID);
	c->shm_name = xstrdup(CONF_DEF_SHM);
	c->reverse_source = CONF_RS_ADDRESS;
	c->rate_burst_ms = 1000;
	c->latch_policy = SHM_LATCH_LEARN;
	c->latch_learn_ms = 2000;
	c->latch_quiet_ms = 1000;
	c->latch_run = 4;
	c->auth_health_open = 1;
	c->orphan_timeout = 600;
	c->api_max_conns = 256;
	c->api_max_per_client = 32;
	c->api_handshake_timeout = 10;
	c->api_idle_timeout = 120;
	c->api_max_streams = 128;
	c->redis_prefix = xstrdup("rtpproxyd:");
}

/*
 * *c is output only: its old contents are neither read nor freed.  On
 * error it is left zeroed, so the caller can keep its running config.
 */
int
config_parse_buf(struct config *c, const char *name, const char *text,
    char *err, size_t errlen)
{
	struct config n;

	config_defaults(&n);
	if (conf_parse(&n, name, text, strlen(text), err, errlen) == -1) {
		config_free(&n);
		memset(c, 0, sizeof(*c));
		return -1;
	}
	*c = n;
	return 0;
}

/* Forget the tokens and PEM texts, wiping them first. */
void
config_free_secrets(struct config *c)
{
	size_t	i;

	for (i = 0; i < c->ntokens; i++) {
		explicit_bzero(c->tokens[i], strlen(c->tokens[i]));
		free(c->tokens[i]);
	}
	free(c->tokens);
	c->tokens = NULL;
	c->ntokens = 0;
	if (c->redis_password != NULL) {
		explicit_bzero(c->redis_password, strlen(c->redis_password));
		free(c->redis_password);
		c->redis_password = NULL;
	}
	for (i = 0; i < 3; i++) {
		if (c->tls_pem[i] != NULL) {
			explicit_bzero(c->tls_pem[i], strlen(c->tls_pem[i]));
			free(c->tls_pem[i]);
		}
		c->tls_pem[i] = NULL;
		if (c->redis_tls_pem[i] != NULL) {
			explicit_bzero(c->redis_tls_pem[i],
			    strlen(c->redis_tls_pem[i]));
			free(c->redis_tls_pem[i]);
		}
		c->redis_tls_pem[i] = NULL;
	}
}

void
config_free(struct config *c)
{
	free(c->user);
	free(c->group);
	free(c->pidfile);
	free(c->shm_name);
	free(c->path);
	free(c->rules);
	free(c->auth_token_file);
	free(c->recording_dir);
	config_free_secrets(c);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_client_ca);
	while (c->nkernel_ifs > 0)
		free(c->kernel_ifs[--c->nkernel_ifs]);
	free(c->kernel_ifs);
	free(c->redis);
	free(c->redis_host);
	free(c->redis_unix);
	free(c->redis_prefix);
	free(c->redis_password_file);
	free(c->redis_tls_ca);
	free(c->redis_tls_cert);
	free(c->redis_tls_key);
	free(c->redis_tls_name);
	free(c->node_id);
	memset(c, 0, sizeof(*c));
}

