/*
 * The Prometheus endpoint, from outside: the real daemon with
 * metrics-listen on a loopback port, scraped by a small blocking HTTP/1.1
 * client of our own.  Each scrape is parsed line by line (comments, HELP
 * and TYPE, names, labels, values; histograms cumulative and in order;
 * counters not negative), given to promtool (Debian's prometheus
 * package), and checked against what the test did: media relayed both
 * ways, sessions created and destroyed, gRPC calls that fail, a worker
 * killed.  Then the hostile clients: other methods and paths, huge
 * headers, junk, clients that say nothing or dribble, too many at once.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "harness.h"
#include "acl.h"
#include "conf.h"
#include "sessions.h"
#include "worker.h"

#define M_EVENTS	"/rtpproxy.RtpProxy/StreamSessionEvents"
#define CTYPE		"text/plain; version=0.0.4; charset=utf-8"
#define MAX_CONNS	16	/* METRICS_MAX_CONNS */
#define TIMEOUT_S	5	/* METRICS_TIMEOUT_S */

static struct daemon	d;
static uint16_t		mport;

/* --- helpers ------------------------------------------------------------ */

static uint16_t
free_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd;
	uint16_t		port = 0;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* --- a small blocking HTTP/1.1 client ------------------------------------ */

struct http_resp {
	int	 status;	/* 0: no response (closed, or timed out) */
	char	 head[4096];	/* status line and headers */
	char	*body;
	size_t	 blen;
};

static char	resp_buf[512 * 1024];

static int
tcp_connect(int v6, uint16_t port)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	int			fd;

	harness_sa_loopback(&ss, &len, v6, port);
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read what comes until EOF or ms pass; the length, -1 on timeout. */
static ssize_t
read_all(int fd, char *buf, size_t len, int ms)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };
	int64_t		until = harness_now_ms() + ms;
	size_t		n = 0;
	ssize_t		r;

	for (;;) {
		int left = (int)(until - harness_now_ms());

		if (left <= 0 || poll(&pfd, 1, left) != 1)
			return -1;
		r = read(fd, buf + n, len - 1 - n);
		if (r == 0 || (r == -1 && errno == ECONNRESET))
			break;
		if (r == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		n += (size_t)r;
		if (n == len - 1)
			break;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

static void
parse_resp(char *buf, size_t n, struct http_resp *r)
{
	char	*end;
	size_t	 hl;

	memset(r, 0, sizeof(*r));
	if (n < 12 || strncmp(buf, "HTTP/1.", 7) != 0)
		return;
	r->status = atoi(buf + 9);
	if ((end = strstr(buf, "\r\n\r\n")) == NULL)
		return;
	hl = (size_t)(end - buf);
	if (hl >= sizeof(r->head))
		hl = sizeof(r->head) - 1;
	memcpy(r->head, buf, hl);
	r->head[hl] = '\0';
	r->body = end + 4;
	r->blen = n - (size_t)(r->body - buf);
}

/* Send req as is on a new connection; the response, read until EOF. */
static int
http_raw(int v6, uint16_t port, const char *req, size_t reqlen,
    struct http_resp *r, int ms)
{
	ssize_t	n;
	int	fd;

	memset(r, 0, sizeof(*r));
	if ((fd = tcp_connect(v6, port)) == -1)
		return -1;
	/* Part may be refused when the server gives up early: fine. */
	(void)send(fd, req, reqlen, MSG_NOSIGNAL);
	n = read_all(fd, resp_buf, sizeof(resp_buf), ms * harness_slow());
	close(fd);
	if (n < 0)
		return -1;
	parse_resp(resp_buf, (size_t)n, r);
	return 0;
}

static int
http_req(const char *method, const char *path, struct http_resp *r)
{
	char req[512];

	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
	    "User-Agent: check_metrics\r\nAccept: text/plain\r\n"
	    "Connection: close\r\n\r\n", method, path, mport);
	return http_raw(0, mport, req, strlen(req), r, 10000);
}

/* The value of a header (the first of its name), or NULL. */
static const char *
http_header(const struct http_resp *r, const char *name)
{
	static char	 val[512];
	const char	*p = r->head;
	size_t		 nl = strlen(name), k;

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			p += nl + 1;
			while (*p == ' ')
				p++;
			k = strcspn(p, "\r\n");
			if (k >= sizeof(val))
				k = sizeof(val) - 1;
			memcpy(val, p, k);
			val[k] = '\0';
			return val;
		}
	}
	return NULL;
}

/* --- the exposition format ----------------------------------------------- */

#define MAX_FAMILIES	128
#define MAX_SAMPLES	2048

struct family {
	char	name[128];
	char	type[16];
	int	help;
	int	samples;
};

struct sample {
	char	name[128];
	char	labels[256];	/* as written, without the braces */
	double	v;
	int	fam;
};

struct expo {
	struct family	f[MAX_FAMILIES];
	int		nf;
	struct sample	s[MAX_SAMPLES];
	int		ns;
};

static int
name_ok(const char *s, size_t n, int colon)
{
	size_t i;

	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' ||
	    (colon && s[0] == ':')))
		return 0;
	for (i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' ||
		    (colon && s[i] == ':')))
			return 0;
	return 1;
}

static struct family *
fam_get(struct expo *e, const char *name, size_t n, int create)
{
	int i;

	for (i = 0; i < e->nf; i++)
		if (strlen(e->f[i].name) == n &&
		    strncmp(e->f[i].name, name, n) == 0)
			return &e->f[i];
	if (!create || e->nf == MAX_FAMILIES || n >= sizeof(e->f[0].name))
		return NULL;
	memset(&e->f[e->nf], 0, sizeof(e->f[0]));
	memcpy(e->f[e->nf].name, name, n);
	return &e->f[e->nf++];
}

/* The family a sample belongs to: its name, or less a reserved suffix. */
static struct family *
fam_of(struct expo *e, const char *name)
{
	static const char *const sfx[] = { "_bucket", "_sum", "_count" };
	struct family	*f;
	size_t		 n = strlen(name), k, i;

	if ((f = fam_get(e, name, n, 0)) != NULL && f->type[0] != '\0')
		return f;
	for (i = 0; i < 3; i++) {
		k = strlen(sfx[i]);
		if (n > k && strcmp(name + n - k, sfx[i]) == 0 &&
		    (f = fam_get(e, name, n - k, 0)) != NULL &&
		    (strcmp(f->type, "histogram") == 0 ||
		    (i > 0 && strcmp(f->type, "summary") == 0)))
			return f;
	}
	return NULL;
}

/* Label pairs name="value", escapes \\ \" \n; *p after the '}'. */
static int
parse_labels(const char **pp, char *out, size_t outlen, char *err,
    size_t elen)
{
	const char	*p = *pp + 1, *start = p, *n;
	char		 seen[16][64];
	int		 nseen = 0, i;

	for (;;) {
		if (*p == '}')
			break;
		n = p;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		if (!name_ok(n, (size_t)(p - n), 0) || (p - n) >= 64) {
			snprintf(err, elen, "bad label name");
			return -1;
		}
		for (i = 0; i < nseen; i++)
			if (strlen(seen[i]) == (size_t)(p - n) &&
			    strncmp(seen[i], n, (size_t)(p - n)) == 0) {
				snprintf(err, elen, "label %.*s twice",
				    (int)(p - n), n);
				return -1;
			}
		if (nseen < 16) {
			memcpy(seen[nseen], n, (size_t)(p - n));
			seen[nseen++][p - n] = '\0';
		}
		if (strncmp(p, "=\"", 2) != 0) {
			snprintf(err, elen, "expected =\" after a label name");
			return -1;
		}
		for (p += 2; *p != '"'; p++) {
			if (*p == '\0' || *p == '\n') {
				snprintf(err, elen, "unterminated label value");
				return -1;
			}
			if (*p == '\\') {
				p++;
				if (*p != '\\' && *p != '"' && *p != 'n') {
					snprintf(err, elen, "bad escape in a "
					    "label value");
					return -1;
				}
			}
		}
		p++;
		if (*p == ',')
			p++;
		else if (*p != '}') {
			snprintf(err, elen, "expected , or } after a label");
			return -1;
		}
	}
	if ((size_t)(p - start) >= outlen) {
		snprintf(err, elen, "labels too long for the test");
		return -1;
	}
	memcpy(out, start, (size_t)(p - start));
	out[p - start] = '\0';
	*pp = p + 1;
	return 0;
}

static int
parse_value(const char *s, double *v)
{
	char *end;

	if (strcmp(s, "+Inf") == 0) {
		*v = INFINITY;
		return 0;
	}
	if (strcmp(s, "-Inf") == 0) {
		*v = -INFINITY;
		return 0;
	}
	if (strcmp(s, "NaN") == 0) {
		*v = NAN;
		return 0;
	}
	if (*s == '\0' || isalpha((unsigned char)*s))
		return -1;
	*v = strtod(s, &end);
	return *end == '\0' ? 0 : -1;
}

static int
parse_line(struct expo *e, char *line, char *err, size_t elen)
{
	struct sample	*s;
	struct family	*f;
	const char	*p = line, *n;
	char		 val[64], *sp;
	int		 i;

	if (*line == '\0')
		return 0;
	if (*line == '#') {
		int help = strncmp(line, "# HELP ", 7) == 0;
		int type = strncmp(line, "# TYPE ", 7) == 0;

		if (!help && !type)
			return 0;	/* a plain comment */
		p = line + 7;
		n = p;
		while (*p != '\0' && *p != ' ')
			p++;
		if (!name_ok(n, (size_t)(p - n), 1) || *p != ' ') {
			snprintf(err, elen, "bad metric name in HELP/TYPE");
			return -1;
		}
		f = fam_get(e, n, (size_t)(p - n), 1);
		if (f == NULL) {
			snprintf(err, elen, "too many families for the test");
			return -1;
		}
		p++;
		if (help) {
			if (f->help++) {
				snprintf(err, elen, "HELP twice");
				return -1;
			}
			for (; *p != '\0'; p++)
				if (*p == '\\' && p[1] != '\\' && p[1] != 'n') {
					snprintf(err, elen, "bad escape in HELP");
					return -1;
				}
			return 0;
		}
		if (f->type[0] != '\0' || f->samples) {
			snprintf(err, elen, "TYPE twice or after samples");
			return -1;
		}
		if (strcmp(p, "counter") != 0 && strcmp(p, "gauge") != 0 &&
		    strcmp(p, "histogram") != 0 && strcmp(p, "summary") != 0 &&
		    strcmp(p, "untyped") != 0) {
			snprintf(err, elen, "unknown type %s", p);
			return -1;
		}
		snprintf(f->type, sizeof(f->type), "%s", p);
		return 0;
	}
	if (e->ns == MAX_SAMPLES) {
		snprintf(err, elen, "too many samples for the test");
		return -1;
	}
	s = &e->s[e->ns];
	memset(s, 0, sizeof(*s));
	n = p;
	while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
		p++;
	if (!name_ok(n, (size_t)(p - n), 1) ||
	    (size_t)(p - n) >= sizeof(s->name)) {
		snprintf(err, elen, "bad metric name");
		return -1;
	}
	memcpy(s->name, n, (size_t)(p - n));
	if (*p == '{' && parse_labels(&p, s->labels, sizeof(s->labels), err,
	    elen) == -1)
		return -1;
	if (*p != ' ') {
		snprintf(err, elen, "expected a blank before the value");
		return -1;
	}
	while (*p == ' ')
		p++;
	snprintf(val, sizeof(val), "%s", p);
	if ((sp = strchr(val, ' ')) != NULL) {
		char *end;

		*sp++ = '\0';
		(void)strtoll(sp, &end, 10);	/* a timestamp */
		if (*sp == '\0' || *end != '\0') {
			snprintf(err, elen, "junk after the value");
			return -1;
		}
	}
	if (parse_value(val, &s->v) == -1) {
		snprintf(err, elen, "bad value \"%s\"", val);
		return -1;
	}
	if ((f = fam_of(e, s->name)) == NULL) {
		snprintf(err, elen, "%s has no TYPE before it", s->name);
		return -1;
	}
	s->fam = (int)(f - e->f);
	f->samples++;
	if (strcmp(f->type, "counter") == 0) {
		if (!isfinite(s->v) || s->v < 0) {
			snprintf(err, elen, "counter %s is %g", s->name, s->v);
			return -1;
		}
		if (strlen(s->name) < 6 ||
		    strcmp(s->name + strlen(s->name) - 6, "_total") != 0) {
			snprintf(err, elen, "counter %s without _total",
			    s->name);
			return -1;
		}
	}
	for (i = 0; i < e->ns; i++)
		if (strcmp(e->s[i].name, s->name) == 0 &&
		    strcmp(e->s[i].labels, s->labels) == 0) {
			snprintf(err, elen, "%s{%s} twice", s->name, s->labels);
			return -1;
		}
	e->ns++;
	return 0;
}

/* labels without its le="..." pair, for grouping buckets. */
static void
strip_le(const char *labels, char *out, size_t len, double *le)
{
	const char	*p = strstr(labels, "le=\"");
	char		 v[64];
	size_t		 k;

	*le = NAN;
	if (p == NULL || (p != labels && p[-1] != ',')) {
		snprintf(out, len, "%s", labels);
		return;
	}
	k = strcspn(p + 4, "\"");
	snprintf(v, sizeof(v), "%.*s", (int)k, p + 4);
	if (parse_value(v, le) == -1)
		*le = NAN;
	snprintf(out, len, "%.*s%s", (int)(p - labels), labels,
	    p[4 + k + 1] == ',' ? p + 4 + k + 2 : p + 4 + k + 1);
	k = strlen(out);
	if (k > 0 && out[k - 1] == ',')
		out[k - 1] = '\0';
}

static const struct sample *
find(const struct expo *e, const char *name, const char *labels)
{
	int i;

	for (i = 0; i < e->ns; i++)
		if (strcmp(e->s[i].name, name) == 0 &&
		    strcmp(e->s[i].labels, labels != NULL ? labels : "") == 0)
			return &e->s[i];
	return NULL;
}

/* Histograms: per label set, le increasing, counts not decreasing. */
static int
check_histograms(const struct expo *e, char *err, size_t elen)
{
	char		 grp[256], g2[256], name[160];
	const struct sample *cnt;
	double		 le, le2, last_le, last_v;
	int		 f, i, j, inf;

	for (f = 0; f < e->nf; f++) {
		if (strcmp(e->f[f].type, "histogram") != 0)
			continue;
		snprintf(name, sizeof(name), "%s_bucket", e->f[f].name);
		for (i = 0; i < e->ns; i++) {
			if (strcmp(e->s[i].name, name) != 0)
				continue;
			strip_le(e->s[i].labels, grp, sizeof(grp), &le);
			if (isnan(le)) {
				snprintf(err, elen, "%s without le", name);
				return -1;
			}
			/* Only from the first bucket of each group. */
			for (j = 0; j < i; j++) {
				if (strcmp(e->s[j].name, name) != 0)
					continue;
				strip_le(e->s[j].labels, g2, sizeof(g2), &le2);
				if (strcmp(g2, grp) == 0)
					break;
			}
			if (j < i)
				continue;
			last_le = -INFINITY;
			last_v = 0;
			inf = 0;
			for (j = i; j < e->ns; j++) {
				if (strcmp(e->s[j].name, name) != 0)
					continue;
				strip_le(e->s[j].labels, g2, sizeof(g2), &le2);
				if (strcmp(g2, grp) != 0)
					continue;
				if (!(le2 > last_le) || e->s[j].v < last_v) {
					snprintf(err, elen, "%s{%s}: le not "
					    "increasing or counts going down",
					    name, e->s[j].labels);
					return -1;
				}
				last_le = le2;
				last_v = e->s[j].v;
				inf = isinf(le2);
			}
			if (!inf) {
				snprintf(err, elen, "%s{%s}: no +Inf bucket",
				    name, grp);
				return -1;
			}
			snprintf(name, sizeof(name), "%s_count", e->f[f].name);
			cnt = find(e, name, grp);
			snprintf(name, sizeof(name), "%s_sum", e->f[f].name);
			if (cnt == NULL || cnt->v != last_v ||
			    find(e, name, grp) == NULL) {
				snprintf(err, elen, "%s{%s}: _count is not the "
				    "+Inf bucket, or no _sum", e->f[f].name,
				    grp);
				return -1;
			}
			snprintf(name, sizeof(name), "%s_bucket", e->f[f].name);
		}
	}
	return 0;
}

static int
parse_expo(struct expo *e, char *text, char *err, size_t elen)
{
	char	*line, *next;
	char	 why[256];
	int	 lineno = 0, f;

	memset(e, 0, sizeof(*e));
	for (line = text; line != NULL && *line != '\0'; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) == NULL) {
			snprintf(err, elen, "line %d: no newline at the end",
			    lineno);
			return -1;
		}
		*next++ = '\0';
		if (parse_line(e, line, why, sizeof(why)) == -1) {
			snprintf(err, elen, "line %d: %s: %.200s", lineno,
			    why, line);
			return -1;
		}
	}
	for (f = 0; f < e->nf; f++)
		if (!e->f[f].help || e->f[f].type[0] == '\0' ||
		    !e->f[f].samples) {
			snprintf(err, elen, "%s: HELP, TYPE or samples missing",
			    e->f[f].name);
			return -1;
		}
	return check_histograms(e, err, elen);
}

/* --- scraping -------------------------------------------------------------- */

static char	scrape_text[512 * 1024];

/* GET /metrics, checked and parsed into e. */
static void
scrape(struct expo *e)
{
	struct http_resp	 r;
	char			 err[512];
	const char		*h;

	ck_assert_int_eq(http_req("GET", "/metrics", &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(h = http_header(&r, "Content-Type"));
	ck_assert_str_eq(h, CTYPE);
	ck_assert_ptr_nonnull(h = http_header(&r, "Content-Length"));
	ck_assert_uint_eq(strtoul(h, NULL, 10), r.blen);
	ck_assert_uint_lt(r.blen, sizeof(scrape_text));
	memcpy(scrape_text, r.body, r.blen);
	scrape_text[r.blen] = '\0';
	ck_assert_msg(parse_expo(e, scrape_text, err, sizeof(err)) == 0,
	    "exposition: %s", err);
}

static double
val(const struct expo *e, const char *name, const char *labels)
{
	const struct sample *s = find(e, name, labels);

	ck_assert_msg(s != NULL, "no %s{%s}", name, labels ? labels : "");
	return s->v;
}

static uint64_t
ival(const struct expo *e, const char *name, const char *labels)
{
	return (uint64_t)val(e, name, labels);
}

#define FWD	"direction=\"forward\""
#define REV	"direction=\"reverse\""

#define RP	"rtpproxy.RtpProxy"

static const char *
grpc_labels(const char *service, const char *method, const char *code)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "grpc_service=\"%s\",grpc_method=\"%s\","
	    "grpc_code=\"%s\"", service, method, code);
	return buf;
}

/* Scrape until name{labels} reaches want, or 5 s; the last scrape. */
static void
scrape_until(struct expo *e, const char *name, const char *labels,
    double want)
{
	int64_t until = harness_now_ms() + 5000 * harness_slow();

	for (;;) {
		scrape(e);
		if (find(e, name, labels) != NULL &&
		    val(e, name, labels) >= want)
			return;
		if (harness_now_ms() > until)
			break;
		harness_sleep_ms(50);
	}
	ck_abort_msg("%s{%s} is %g, not %g", name, labels, val(e, name,
	    labels), want);
}

/* Every counter of before is in after, and not smaller. */
static void
no_counter_back(const struct expo *before, const struct expo *after)
{
	const struct sample	*s, *t;
	int			 i;

	for (i = 0; i < before->ns; i++) {
		s = &before->s[i];
		if (strcmp(before->f[s->fam].type, "counter") != 0)
			continue;
		t = find(after, s->name, s->labels);
		ck_assert_msg(t != NULL, "%s{%s} went away", s->name,
		    s->labels);
		ck_assert_msg(t->v >= s->v, "%s{%s} went back from %g to %g",
		    s->name, s->labels, s->v, t->v);
	}
}

/* --- the daemon ------------------------------------------------------------ */

static void
up_with(int workers, const char *listen)
{
	char extra[256];

	signal(SIGPIPE, SIG_IGN);
	mport = free_port();
	snprintf(extra, sizeof(extra), "metrics-listen %s:%u", listen, mport);
	if (harness_start(&d, workers, extra) == -1) {
		fprintf(stderr, "check_metrics: the daemon did not start; "
		    "log in %s\n", d.log);
		setenv("RTPPROXYD_KEEP", "1", 1);
	}
}

static void up(void) { up_with(2, "127.0.0.1"); }
static void up_v6(void) { up_with(1, "[::1]"); }

static int	stop_failed;

/*
 * A graceful stop exits 0, closes the listener, and under valgrind (make
 * check-valgrind) no process of the daemon complained.  The fixture runs
 * in the runner, the daemon's parent: a failure fails the suite.
 */
static void
down(void)
{
	char	cmd[512];
	int	status;

	if (d.pid > 0) {
		status = harness_stop(&d, 10000);
		snprintf(cmd, sizeof(cmd), "grep -Eq '^==[0-9]+== ' '%s'",
		    d.log);
		if (status == -1 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0 || harness_run(cmd, NULL, 0) != 1 ||
		    tcp_connect(0, mport) != -1) {
			fprintf(stderr, "check_metrics: the daemon did not stop "
			    "cleanly (wait status %#x); log in %s\n", status,
			    d.log);
			setenv("RTPPROXYD_KEEP", "1", 1);
			stop_failed = 1;
		}
	}
	harness_cleanup(&d);
}

static void
need_daemon(void)
{
	ck_assert_msg(d.pid > 0, "daemon not running; see %s", d.log);
}

static struct rpc_client *
client(void)
{
	struct rpc_client *c;

	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	return c;
}

/* --- the format ------------------------------------------------------------ */

START_TEST(format)
{
	static struct expo	e;
	struct http_resp	r;
	char			cmd[512], out[8192], path[256];
	double			t;
	FILE			*f;

	need_daemon();
	scrape(&e);
	ck_assert_int_ge(e.nf, 20);

	/* promtool is a build dependency: missing, the test fails. */
	ck_assert_msg(harness_run("command -v promtool", NULL, 0) == 0,
	    "promtool not found: install Debian's prometheus package "
	    "(contrib/install-deps.sh)");
	snprintf(path, sizeof(path), "%s/scrape.txt", d.dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	ck_assert_int_eq(http_req("GET", "/metrics", &r), 0);
	fwrite(r.body, 1, r.blen, f);
	ck_assert_int_eq(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' 2>&1", path);
	ck_assert_msg(harness_run(cmd, out, sizeof(out)) == 0,
	    "promtool check metrics: %s", out);

	ck_assert_uint_eq(ival(&e, "rtpproxyd_workers", NULL), 2);
	ck_assert_uint_eq(ival(&e, "rtpproxyd_worker_up", "worker=\"0\""), 1);
	ck_assert_uint_eq(ival(&e, "rtpproxyd_worker_up", "worker=\"1\""), 1);
	ck_assert_uint_eq(ival(&e, "rtpproxyd_master_starts_total", NULL), 1);
	ck_assert_uint_eq(ival(&e, "rtpproxyd_sessions_max", NULL), 2000);
	ck_assert_uint_eq(ival(&e, "rtpproxyd_build_info",
	    "version=\"" PACKAGE_VERSION "\""), 1);
	t = val(&e, "process_start_time_seconds", NULL);
	ck_assert_msg(t > (double)time(NULL) - 600 && t <= (double)time(NULL)
	    + 1, "start time %f", t);
	ck_assert(find(&e, "rtpproxyd_sessions", "state=\"closing\"") != NULL);
	ck_assert(find(&e, "rtpproxyd_sessions_closed_total",
	    "reason=\"idle_timeout\"") != NULL);
	ck_assert(find(&e, "rtpproxyd_dropped_packets_total",
	    REV ",reason=\"rate_limited\"") != NULL);
	ck_assert(find(&e, "rtpproxyd_relay_latency_seconds_bucket",
	    "le=\"0.065536\"") != NULL);
	ck_assert(find(&e, "rtpproxyd_rtp_jitter_seconds",
	    FWD ",quantile=\"0.99\"") != NULL);
	ck_assert(find(&e, "rtpproxyd_grpc_calls_total",
	    grpc_labels("unknown", "unknown", "DATA_LOSS")) != NULL);

	/* HEAD: the headers of GET, no body. */
	ck_assert_int_eq(http_req("HEAD", "/metrics", &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(http_header(&r, "Content-Type"), CTYPE);
	ck_assert_uint_gt(strtoul(http_header(&r, "Content-Length"), NULL,
	    10), 1000);
	ck_assert_uint_eq(r.blen, 0);
	/* A query string is no other resource. */
	ck_assert_int_eq(http_req("GET", "/metrics?debug=1", &r), 0);
	ck_assert_int_eq(r.status, 200);
}
END_TEST

/* Every counter of shm.h's list has its series, both ways. */
START_TEST(every_counter)
{
	static struct expo	 e;
	const struct shm_counter *c;
	char			 labels[128];
	int			 k, i;

	need_daemon();
	scrape(&e);
	for (i = 0; i < SHM_C_N; i++) {
		c = &shm_counters[i];
		for (k = 0; k < 2; k++) {
			if (c->kind == SHM_CK_DROP) {
				snprintf(labels, sizeof(labels),
				    "%s,reason=\"%s\"", k ? REV : FWD,
				    c->metric);
				ck_assert_msg(find(&e,
				    "rtpproxyd_dropped_packets_total",
				    labels) != NULL, "no drop reason %s",
				    c->metric);
			} else
				ck_assert_msg(find(&e, c->metric,
				    k ? REV : FWD) != NULL, "no %s",
				    c->metric);
		}
	}
}
END_TEST

/* --- traffic and sessions -------------------------------------------------- */

START_TEST(relay)
{
	static struct expo		 a, b, c;
	struct harness_session		 hs = { .id = "m-relay", .laddr =
	    "127.0.0.1", .daddr = "127.0.0.1", .nortcp = 1 };
	Rtpproxy__CreateSessionResponse	*resp;
	Rtpproxy__SessionInfo		*si;
	struct rpc_client		*rc;
	uint8_t				 pkt[256], got[256];
	uint16_t			 lport, fport, dport;
	size_t				 n = 0;
	int				 caller, dest, i;

	need_daemon();
	rc = client();
	scrape(&a);
	ck_assert_int_ge(caller = harness_udp(0, NULL), 0);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	hs.dport = dport;
	ck_assert_int_eq(harness_create(rc, &hs, &resp, NULL, 0), RP_OK);
	lport = (uint16_t)resp->session->listen->port;
	fport = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);

	for (i = 0; i < 20; i++) {
		n = harness_rtp(pkt, (uint16_t)(100 + i), (uint32_t)i * 160,
		    0xabc, 100);
		ck_assert_int_eq(harness_send(caller, "127.0.0.1", lport, pkt,
		    n), 0);
		ck_assert_int_eq(harness_recv(dest, got, sizeof(got), 3000,
		    NULL), (ssize_t)n);
	}
	for (i = 0; i < 7; i++) {
		n = harness_rtp(pkt, (uint16_t)(900 + i), (uint32_t)i * 160,
		    0xdef, 100);
		ck_assert_int_eq(harness_send(dest, "127.0.0.1", fport, pkt,
		    n), 0);
		ck_assert_int_eq(harness_recv(caller, got, sizeof(got), 3000,
		    NULL), (ssize_t)n);
	}
	/* Counters are published right after the send: wait for them. */
	scrape_until(&b, "rtpproxyd_sent_packets_total", REV,
	    val(&a, "rtpproxyd_sent_packets_total", REV) + 7);
	scrape_until(&b, "rtpproxyd_sessions", "state=\"active\"", 1);

#define D(e, name, l)	(ival(&(e), name, l) - ival(&a, name, l))
	ck_assert_uint_eq(D(b, "rtpproxyd_received_packets_total", FWD), 20);
	ck_assert_uint_eq(D(b, "rtpproxyd_sent_packets_total", FWD), 20);
	ck_assert_uint_eq(D(b, "rtpproxyd_received_bytes_total", FWD),
	    20 * n);
	ck_assert_uint_eq(D(b, "rtpproxyd_sent_bytes_total", FWD), 20 * n);
	ck_assert_uint_eq(D(b, "rtpproxyd_received_packets_total", REV), 7);
	ck_assert_uint_eq(D(b, "rtpproxyd_sent_packets_total", REV), 7);
	ck_assert_uint_eq(D(b, "rtpproxyd_received_bytes_total", REV), 7 * n);
	ck_assert_uint_eq(D(b, "rtpproxyd_non_rtp_packets_total", FWD), 0);
	ck_assert_uint_eq(D(b, "rtpproxyd_dropped_packets_total",
	    FWD ",reason=\"invalid\""), 0);
	/* Every packet relayed is in the latency histogram, once. */
	ck_assert_uint_eq(D(b, "rtpproxyd_relay_latency_seconds_count", NULL),
	    27);
	ck_assert_uint_eq(D(b, "rtpproxyd_relay_latency_seconds_bucket",
	    "le=\"+Inf\""), 27);
	ck_assert(val(&b, "rtpproxyd_relay_latency_seconds_sum", NULL) >
	    val(&a, "rtpproxyd_relay_latency_seconds_sum", NULL));
	ck_assert_uint_eq(D(b, "rtpproxyd_sessions_created_total", NULL), 1);
	ck_assert_uint_eq(ival(&b, "rtpproxyd_sessions", "state=\"active\""),
	    1);
	ck_assert_uint_eq(ival(&b, "rtpproxyd_sessions", "state=\"created\"") +
	    ival(&b, "rtpproxyd_sessions", "state=\"connecting\"") +
	    ival(&b, "rtpproxyd_sessions", "state=\"error\""), 0);

	/* RTP figures agree with the session's own. */
	ck_assert_int_eq(harness_status(rc, "m-relay", &si), RP_OK);
	ck_assert_uint_eq(D(b, "rtpproxyd_rtp_expected_packets_total", FWD),
	    si->forward_stats->packets_expected);
	ck_assert_uint_eq(D(b, "rtpproxyd_rtp_expected_packets_total", REV),
	    si->reverse_stats->packets_expected);
	ck_assert_uint_gt(si->forward_stats->packets_expected, 10);
	harness_info_free(si);
	ck_assert_uint_eq(D(b, "rtpproxyd_rtp_lost_packets_total", FWD), 0);
	ck_assert_uint_eq(ival(&b, "rtpproxyd_rtp_loss_ratio_count", FWD), 1);
	ck_assert_uint_eq(ival(&b, "rtpproxyd_rtp_loss_ratio_count", REV), 1);
	ck_assert(val(&b, "rtpproxyd_rtp_loss_ratio", FWD ",quantile=\"0.5\"")
	    == 0.0);
	ck_assert_uint_eq(ival(&b, "rtpproxyd_rtp_jitter_seconds_count", FWD),
	    1);
	ck_assert(val(&b, "rtpproxyd_rtp_jitter_seconds",
	    FWD ",quantile=\"0.99\"") >= 0.0);

	/* Gone, it stays in the totals. */
	ck_assert_int_eq(harness_destroy(rc, "m-relay"), RP_OK);
	scrape_until(&c, "rtpproxyd_sessions_closed_total",
	    "reason=\"destroyed\"", val(&b, "rtpproxyd_sessions_closed_total",
	    "reason=\"destroyed\"") + 1);
	for (i = 0; i < 100 && ival(&c, "rtpproxyd_sessions",
	    "state=\"closing\"") > 0; i++) {
		harness_sleep_ms(20);
		scrape(&c);
	}
	ck_assert_uint_eq(ival(&c, "rtpproxyd_sessions", "state=\"active\""),
	    0);
	ck_assert_uint_eq(ival(&c, "rtpproxyd_sessions", "state=\"closing\""),
	    0);
	ck_assert_uint_eq(ival(&c, "rtpproxyd_rtp_loss_ratio_count", FWD), 0);
	no_counter_back(&b, &c);
	ck_assert_uint_eq(D(c, "rtpproxyd_received_packets_total", FWD), 20);
	ck_assert_uint_eq(D(c, "rtpproxyd_sent_bytes_total", REV), 7 * n);
	ck_assert_uint_eq(D(c, "rtpproxyd_rtp_expected_packets_total", FWD),
	    D(b, "rtpproxyd_rtp_expected_packets_total", FWD));
	ck_assert_uint_eq(D(c, "rtpproxyd_relay_latency_seconds_count", NULL),
	    27);
#undef D
	close(caller);
	close(dest);
	rpc_client_free(rc);
}
END_TEST

/*
 * The loss summary over several sessions, created in an order that is not
 * their losses' order: its quantiles are nearest-rank over the sessions'
 * own loss ratios, its sum and count theirs.
 */
START_TEST(loss_quantiles)
{
	enum { NS = 10 };
	static const int	 gaps[NS] = { 7, 2, 9, 0, 5, 1, 8, 3, 6, 4 };
	static const double	 qv[] = { 0.5, 0.9, 0.99 };
	static const char *const qs[] = { "0.5", "0.9", "0.99" };
	static struct expo	 e;
	struct harness_session	 hs = { .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .nortcp = 1 };
	Rtpproxy__CreateSessionResponse	*resp;
	Rtpproxy__SessionInfo	*si;
	struct rpc_client	*rc;
	uint8_t			 pkt[256], got[256];
	char			 id[NS][32], lbl[64];
	double			 ratio[NS], t, sum = 0.0;
	uint16_t		 lport, dport, seq;
	size_t			 n, k;
	int			 caller, dest[NS], i, j, m;

	need_daemon();
	rc = client();
	ck_assert_int_ge(caller = harness_udp(0, NULL), 0);
	for (i = 0; i < NS; i++) {
		snprintf(id[i], sizeof(id[i]), "m-loss-%d", i);
		ck_assert_int_ge(dest[i] = harness_udp(0, &dport), 0);
		hs.id = id[i];
		hs.dport = dport;
		ck_assert_int_eq(harness_create(rc, &hs, &resp, NULL, 0),
		    RP_OK);
		lport = (uint16_t)resp->session->listen->port;
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		/* 20 packets, and gaps[i] sequence numbers missing. */
		for (j = 0, seq = 1000; j < 20; j++, seq++) {
			if (j == 10)
				seq = (uint16_t)(seq + gaps[i]);
			n = harness_rtp(pkt, seq, (uint32_t)j * 160,
			    0x100 + (uint32_t)i, 100);
			ck_assert_int_eq(harness_send(caller, "127.0.0.1",
			    lport, pkt, n), 0);
			ck_assert_int_eq(harness_recv(dest[i], got,
			    sizeof(got), 3000, NULL), (ssize_t)n);
		}
	}
	/* Each session's own figures, once its worker has published them. */
	for (i = 0; i < NS; i++) {
		for (m = 0; m < 100; m++) {
			ck_assert_int_eq(harness_status(rc, id[i], &si), RP_OK);
			if (si->forward_stats->packets_received == 20)
				break;
			harness_info_free(si);
			si = NULL;
			harness_sleep_ms(20);
		}
		ck_assert_ptr_nonnull(si);
		ck_assert_int_eq(si->forward_stats->packets_lost, gaps[i]);
		ratio[i] = (double)si->forward_stats->packets_lost /
		    (double)si->forward_stats->packets_expected;
		harness_info_free(si);
		sum += ratio[i];
	}
	/* Sorted here by insertion, to be independent of the daemon's. */
	for (i = 1; i < NS; i++)
		for (j = i; j > 0 && ratio[j - 1] > ratio[j]; j--) {
			t = ratio[j];
			ratio[j] = ratio[j - 1];
			ratio[j - 1] = t;
		}
	ck_assert(ratio[0] == 0.0 && ratio[NS - 1] > ratio[NS - 2]);

	scrape_until(&e, "rtpproxyd_rtp_loss_ratio_count", FWD, NS);
	for (i = 0; i < 3; i++) {
		k = (size_t)ceil(qv[i] * NS);
		snprintf(lbl, sizeof(lbl), FWD ",quantile=\"%s\"", qs[i]);
		t = val(&e, "rtpproxyd_rtp_loss_ratio", lbl);
		ck_assert_msg(fabs(t - ratio[k - 1]) < 1e-9,
		    "quantile %s: %.12g, want %.12g", qs[i], t, ratio[k - 1]);
	}
	t = val(&e, "rtpproxyd_rtp_loss_ratio_sum", FWD);
	ck_assert_msg(fabs(t - sum) < 1e-9, "sum %.12g, want %.12g", t, sum);
	/* Nothing came back: no reverse summary. */
	ck_assert_uint_eq(ival(&e, "rtpproxyd_rtp_loss_ratio_count", REV), 0);
	ck_assert(isnan(val(&e, "rtpproxyd_rtp_loss_ratio",
	    REV ",quantile=\"0.5\"")));

	for (i = 0; i < NS; i++) {
		ck_assert_int_eq(harness_destroy(rc, id[i]), RP_OK);
		close(dest[i]);
	}
	for (m = 0; m < 100; m++) {
		scrape(&e);
		if (ival(&e, "rtpproxyd_sessions", "state=\"active\"") +
		    ival(&e, "rtpproxyd_sessions", "state=\"closing\"") == 0)
			break;
		harness_sleep_ms(20);
	}
	ck_assert_uint_eq(ival(&e, "rtpproxyd_rtp_loss_ratio_count", FWD), 0);
	close(caller);
	rpc_client_free(rc);
}
END_TEST

/* --- gRPC calls and events ------------------------------------------------- */

START_TEST(grpc_calls)
{
	static struct expo		 a, b;
	struct harness_session		 hs = { .id = "m-grpc", .laddr =
	    "127.0.0.1", .daddr = "198.51.100.1", .dport = 4000, .nortcp = 1 };
	Rtpproxy__StreamSessionEventsRequest ereq =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	struct rpc_client		*rc;
	struct rpc_stream		*st;
	char				 det[256];
	void				*raw = NULL;
	size_t				 rawlen;
	int				 i;

	need_daemon();
	rc = client();
	scrape(&a);
	ck_assert_uint_eq(ival(&a, "rtpproxyd_event_subscribers", NULL), 0);
	ereq.session_id = (char *)"";
	ck_assert_ptr_nonnull(st = rpc_stream_open(rc, M_EVENTS, &ereq.base,
	    0));
	scrape_until(&b, "rtpproxyd_event_subscribers", NULL, 1);

	ck_assert_int_eq(harness_status(rc, "no-such-session", NULL),
	    RP_NOT_FOUND);
	hs.rate_pps = 20000000;
	ck_assert_int_eq(harness_create(rc, &hs, NULL, det, sizeof(det)),
	    RP_INVALID_ARGUMENT);
	hs.rate_pps = 0;
	ck_assert_int_eq(harness_create(rc, &hs, NULL, NULL, 0), RP_OK);
	ck_assert_int_eq(harness_destroy(rc, "m-grpc"), RP_OK);
	ck_assert_int_eq(harness_destroy(rc, "m-grpc"), RP_NOT_FOUND);
	ck_assert_int_eq(rpc_unary_raw(rc, "/no.Such/Method", "", 0, &raw,
	    &rawlen, det, sizeof(det), 3000), RP_UNIMPLEMENTED);
	free(raw);

	/* A call is counted when it is over: a moment after its reply. */
#define G(e, m, code)	ival(&(e), "rtpproxyd_grpc_calls_total",	\
			    grpc_labels(strcmp(m, "unknown") == 0 ? "unknown" : \
			    RP, m, code))
	scrape_until(&b, "rtpproxyd_grpc_calls_total",
	    grpc_labels("unknown", "unknown", "UNIMPLEMENTED"),
	    (double)G(a, "unknown", "UNIMPLEMENTED") + 1);
	scrape_until(&b, "rtpproxyd_grpc_calls_total",
	    grpc_labels(RP, "DestroySession", "NOT_FOUND"),
	    (double)G(a, "DestroySession", "NOT_FOUND") + 1);
	ck_assert_uint_eq(G(b, "GetSessionStatus", "NOT_FOUND") -
	    G(a, "GetSessionStatus", "NOT_FOUND"), 1);
	ck_assert_uint_eq(G(b, "CreateSession", "INVALID_ARGUMENT") -
	    G(a, "CreateSession", "INVALID_ARGUMENT"), 1);
	ck_assert_uint_eq(G(b, "CreateSession", "OK") -
	    G(a, "CreateSession", "OK"), 1);
	ck_assert_uint_eq(G(b, "DestroySession", "OK") -
	    G(a, "DestroySession", "OK"), 1);
	ck_assert_uint_eq(G(b, "DestroySession", "NOT_FOUND") -
	    G(a, "DestroySession", "NOT_FOUND"), 1);
	ck_assert_uint_eq(G(b, "unknown", "UNIMPLEMENTED") -
	    G(a, "unknown", "UNIMPLEMENTED"), 1);
	ck_assert_uint_eq(G(b, "CreateSession", "NOT_FOUND"), 0);
	ck_assert(find(&b, "rtpproxyd_grpc_calls_total", "grpc_service="
	    "\"grpc.health.v1.Health\",grpc_method=\"Check\",grpc_code=\"OK\"")
	    != NULL);
	ck_assert(find(&b, "rtpproxyd_grpc_calls_total", "grpc_service="
	    "\"grpc.reflection.v1alpha.ServerReflection\",grpc_method="
	    "\"ServerReflectionInfo\",grpc_code=\"OK\"") != NULL);
#undef G
	/* The subscriber saw CREATED, CLOSED (and state changes). */
	ck_assert_uint_ge(ival(&b, "rtpproxyd_events_sent_total", NULL) -
	    ival(&a, "rtpproxyd_events_sent_total", NULL), 2);
	ck_assert_uint_eq(ival(&b, "rtpproxyd_events_dropped_total", NULL), 0);
	rpc_stream_cancel(st);
	rpc_stream_free(st);
	rpc_client_free(rc);
	for (i = 0; i < 100 * harness_slow(); i++) {
		scrape(&b);
		if (ival(&b, "rtpproxyd_event_subscribers", NULL) == 0)
			break;
		harness_sleep_ms(20);
	}
	ck_assert_uint_eq(ival(&b, "rtpproxyd_event_subscribers", NULL), 0);
}
END_TEST

/* --- workers ----------------------------------------------------------------- */

START_TEST(worker_restart)
{
	static struct expo	e;
	uint64_t		before;
	pid_t			pid;
	int			ready;

	need_daemon();
	scrape(&e);
	before = ival(&e, "rtpproxyd_worker_restarts_total", "worker=\"1\"");
	ready = harness_log_count(&d, "worker 1 ready");
	ck_assert_int_gt(pid = harness_worker_pid(&d, 1), 0);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(harness_wait_log(&d, "worker 1 ready", ready + 1,
	    10000 * harness_slow()), 0);
	scrape(&e);
	ck_assert_uint_ge(ival(&e, "rtpproxyd_worker_restarts_total",
	    "worker=\"1\""), before + 1);
	/* What the master logged; a stray kill from elsewhere counts too. */
	ck_assert_uint_eq(ival(&e, "rtpproxyd_worker_restarts_total",
	    "worker=\"1\""), harness_log_count(&d, "worker 1 started") - 1);
	ck_assert_uint_eq(ival(&e, "rtpproxyd_worker_restarts_total",
	    "worker=\"0\""), harness_log_count(&d, "worker 0 started") - 1);
	ck_assert_uint_eq(ival(&e, "rtpproxyd_worker_up", "worker=\"1\""), 1);
	/* The master did not restart. */
	ck_assert_uint_eq(ival(&e, "rtpproxyd_master_starts_total", NULL), 1);
}
END_TEST

/*
 * One connection, requests pipelined: HEAD's reply has a length and no
 * body, so the next reply starts right after its headers; a request
 * later on the same connection is served too.
 */
START_TEST(keepalive)
{
	char		 req[256], *p, *h2;
	const char	*cl;
	size_t		 n = 0, want = 0;
	ssize_t		 r;
	int		 fd, i;
	struct pollfd	 pfd;

	need_daemon();
	ck_assert_int_ge(fd = tcp_connect(0, mport), 0);
	snprintf(req, sizeof(req), "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL),
	    (ssize_t)strlen(req));
	for (i = 0; i < 2; i++) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		for (;;) {
			resp_buf[n] = '\0';
			if ((p = strstr(resp_buf, "\r\n\r\n")) != NULL &&
			    (h2 = strstr(p + 4, "\r\n\r\n")) != NULL &&
			    (cl = strcasestr(p + 4, "Content-Length: ")) != NULL) {
				want = (size_t)(h2 + 4 - resp_buf) +
				    strtoul(cl + 16, NULL, 10);
				if (n >= want)
					break;
			}
			ck_assert_int_eq(poll(&pfd, 1, 5000 * harness_slow()), 1);
			r = read(fd, resp_buf + n, sizeof(resp_buf) - 1 - n);
			ck_assert_int_gt(r, 0);
			n += (size_t)r;
		}
		ck_assert_int_eq(strncmp(resp_buf, "HTTP/1.1 200 ", 13), 0);
		p = strstr(resp_buf, "\r\n\r\n") + 4;
		ck_assert_int_eq(strncmp(p, "HTTP/1.1 200 ", 13), 0);
		ck_assert_uint_eq(n, want);
		ck_assert_int_eq(strncmp(strstr(p, "\r\n\r\n") + 4,
		    "# HELP ", 7), 0);
		if (i == 1)
			break;
		/* Again, a second later, on the same connection. */
		harness_sleep_ms(1000);
		n = 0;
		ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL),
		    (ssize_t)strlen(req));
	}
	close(fd);
}
END_TEST

/* --- hostile clients --------------------------------------------------------- */

START_TEST(methods_paths)
{
	static const char *const no[] = { "POST", "PUT", "DELETE", "OPTIONS",
	    "PATCH" };
	static const char *const other[] = { "/", "/other", "/metrics/",
	    "/metricsx", "/../metrics" };
	struct http_resp	r;
	size_t			i;

	need_daemon();
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		ck_assert_int_eq(http_req(no[i], "/metrics", &r), 0);
		ck_assert_msg(r.status == 405, "%s: %d", no[i], r.status);
		ck_assert_str_eq(http_header(&r, "Allow"), "GET, HEAD");
	}
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		ck_assert_int_eq(http_req("GET", other[i], &r), 0);
		ck_assert_msg(r.status == 404, "%s: %d", other[i], r.status);
	}
	ck_assert_int_eq(http_req("POST", "/other", &r), 0);
	ck_assert_int_eq(r.status, 404);
}
END_TEST

/*
 * Sent on a connection of its own: with strict, refused (4xx) or cut off;
 * either way the daemon serves the next scrape.
 */
static void
hostile(const char *what, const char *req, size_t len, int strict)
{
	static struct expo	e;
	struct http_resp	r;

	ck_assert_msg(http_raw(0, mport, req, len, &r, 10000) == 0,
	    "%s: no answer and no close", what);
	if (strict)
		ck_assert_msg(r.status == 0 || (r.status >= 400 &&
		    r.status < 500), "%s: status %d", what, r.status);
	scrape(&e);
}

#define REFUSED(what, lit)	hostile(what, lit, sizeof(lit) - 1, 1)
#define SURVIVED(what, lit)	hostile(what, lit, sizeof(lit) - 1, 0)

START_TEST(junk)
{
	static char	big[64 * 1024];
	size_t		n;

	need_daemon();
	n = (size_t)snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\n"
	    "Host: x\r\nX-Big: ");
	memset(big + n, 'a', 20000);
	n += 20000;
	n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n\r\n");
	hostile("a huge header", big, n, 1);

	n = (size_t)snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\n");
	while (n < 40000)
		n += (size_t)snprintf(big + n, sizeof(big) - n,
		    "X-H%zu: 1\r\n", n);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
	hostile("many headers", big, n, 1);

	n = (size_t)snprintf(big, sizeof(big), "POST /metrics HTTP/1.1\r\n"
	    "Host: x\r\nContent-Length: 50000\r\n\r\n");
	memset(big + n, 'b', 50000);
	n += 50000;
	hostile("a huge body", big, n, 1);

	REFUSED("binary junk", "\x00\x01\x02\xff garbage\r\n\r\n");
	REFUSED("no version", "GET\r\n\r\n");
	REFUSED("no path", "GET  HTTP/1.1\r\n\r\n");
	REFUSED("a header without a colon", "GET /metrics HTTP/1.1\r\n"
	    "Host x\r\n\r\n");
	REFUSED("CONNECT", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n"
	    "\r\n");
	REFUSED("an absolute URI elsewhere", "GET http://example.com/x "
	    "HTTP/1.1\r\nHost: example.com\r\n\r\n");
	REFUSED("a bad chunk", "POST /metrics HTTP/1.1\r\nHost: x\r\n"
	    "Transfer-Encoding: chunked\r\n\r\nzz\r\n");
	SURVIVED("another version", "GET /metrics HTTP/9.9\r\n\r\n");
	SURVIVED("a bad length", "GET /metrics HTTP/1.1\r\nContent-Length: "
	    "-5\r\n\r\n");
	SURVIVED("half a request", "GET /metr");
	ck_assert_int_eq(kill(d.pid, 0), 0);
}
END_TEST

/* Seconds until the server closes fd (reading and dropping), or -1. */
static double
until_closed(int fd, int ms)
{
	char	buf[4096];
	int64_t	t0 = harness_now_ms();

	return read_all(fd, buf, sizeof(buf), ms) < 0 ? -1.0 :
	    (double)(harness_now_ms() - t0) / 1000.0;
}

START_TEST(silent)
{
	static struct expo	e;
	double			t;
	int64_t			t0;
	int			fd;

	need_daemon();
	ck_assert_int_ge(fd = tcp_connect(0, mport), 0);
	/* Others are served meanwhile. */
	t0 = harness_now_ms();
	scrape(&e);
	scrape(&e);
	ck_assert_int_lt(harness_now_ms() - t0, 2000 * harness_slow());
	t = until_closed(fd, (TIMEOUT_S + 5) * 1000 * harness_slow());
	close(fd);
	ck_assert_msg(t >= 0, "a silent client was not dropped");
	ck_assert_msg(t >= TIMEOUT_S - 2, "dropped after %.1f s", t);
}
END_TEST

/* One byte every 300 ms keeps a connection busy, not for ever. */
START_TEST(dribble)
{
	int64_t	t0, until;
	char	c = 'G';
	int	fd, closed = 0;

	need_daemon();
	ck_assert_int_ge(fd = tcp_connect(0, mport), 0);
	t0 = harness_now_ms();
	until = t0 + (TIMEOUT_S + 5) * 1000 * harness_slow();
	while (harness_now_ms() < until) {
		if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
			closed = 1;
			break;
		}
		c = c == 'G' ? 'E' : 'G';
		if (until_closed(fd, 300) >= 0) {
			closed = 1;
			break;
		}
	}
	close(fd);
	ck_assert_msg(closed, "a dribbling client kept its connection");
	ck_assert_int_ge(harness_now_ms() - t0, (TIMEOUT_S - 2) * 1000);
}
END_TEST

/* At the cap, a scrape waits until a connection goes, then is served. */
START_TEST(cap)
{
	static struct expo	e;
	int			fds[MAX_CONNS], i;
	int64_t			t0;

	need_daemon();
	for (i = 0; i < MAX_CONNS; i++)
		ck_assert_int_ge(fds[i] = tcp_connect(0, mport), 0);
	harness_sleep_ms(300 * harness_slow());
	t0 = harness_now_ms();
	scrape(&e);
	ck_assert_msg(harness_now_ms() - t0 >= 1500, "served at once with %d "
	    "connections open (%lld ms)", MAX_CONNS,
	    (long long)(harness_now_ms() - t0));
	ck_assert_int_ge(harness_log_count(&d, "connections open: no more "
	    "are accepted"), 1);
	for (i = 0; i < MAX_CONNS; i++) {
		ck_assert_msg(until_closed(fds[i], 5000 * harness_slow()) >= 0,
		    "connection %d still open", i);
		close(fds[i]);
	}
	/* Accepting again, at once. */
	t0 = harness_now_ms();
	scrape(&e);
	ck_assert_int_lt(harness_now_ms() - t0, 1000 * harness_slow());
	ck_assert_int_eq(kill(d.pid, 0), 0);
}
END_TEST

/* --- configuration ------------------------------------------------------------- */

START_TEST(ipv6)
{
	struct http_resp	r;
	char			req[256];

	need_daemon();
	snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nHost: [::1]:%u\r\n"
	    "Connection: close\r\n\r\n", mport);
	ck_assert_int_eq(http_raw(1, mport, req, strlen(req), &r, 10000), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "\nrtpproxyd_workers 1\n"));
	/* Only there. */
	ck_assert_int_eq(tcp_connect(0, mport), -1);
}
END_TEST

/* metrics-listen changes need a restart; the old address keeps serving. */
START_TEST(reload)
{
	static struct expo	e;
	char			line[128];

	need_daemon();
	snprintf(line, sizeof(line), "metrics-listen 127.0.0.1:%u",
	    free_port());
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_eq(harness_log_count(&d, "metrics-listen changed: "
	    "needs a restart"), 1);
	scrape(&e);
}
END_TEST

/* A daemon that cannot listen where it is told exits, naming the place. */
static void
refuse_start(const char *metrics, const char *want)
{
	struct daemon	two;
	char		line[256];
	int		status = 0, i;

	ck_assert_int_eq(harness_prepare(&two, 1, NULL), 0);
	snprintf(line, sizeof(line), "metrics-listen %s", metrics);
	ck_assert_int_eq(harness_conf_set(&two, line), 0);
	ck_assert_int_eq(harness_launch(&two, 0), 0);
	for (i = 0; i < 100 * harness_slow(); i++) {
		if (waitpid(two.pid, &status, WNOHANG) == two.pid) {
			two.pid = -1;
			break;
		}
		harness_sleep_ms(100);
	}
	ck_assert_msg(two.pid == -1, "a daemon runs with metrics-listen %s",
	    metrics);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
	    "wait status %#x", status);
	ck_assert_msg(harness_log_count(&two, want) == 1, "no \"%s\" in %s",
	    want, two.log);
	harness_cleanup(&two);
}

START_TEST(bind_fails)
{
	struct sockaddr_in	sin;
	char			addr[64], want[160];
	int			fd, on = 1;
	uint16_t		port;

	signal(SIGPIPE, SIG_IGN);
	/*
	 * Someone listens, with SO_REUSEPORT as a running rtpproxyd does:
	 * a second daemon must not share the port.
	 */
	ck_assert_int_ge(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on,
	    sizeof(on)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	port = harness_fd_port(fd);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	snprintf(want, sizeof(want), "metrics-listen %s: address in use",
	    addr);
	refuse_start(addr, want);
	close(fd);

	/* Not an address of this host. */
	snprintf(addr, sizeof(addr), "192.0.2.1:%u", port);
	snprintf(want, sizeof(want), "metrics: cannot listen on %s: not an "
	    "address of this host", addr);
	refuse_start(addr, want);
}
END_TEST

/*
 * metrics-listen localhost is 127.0.0.1 alone: a program that listens on
 * [::1] at that port is no reason to refuse to start.
 */
START_TEST(localhost_v4)
{
	struct daemon		two;
	struct sockaddr_storage	ss;
	struct http_resp	r;
	socklen_t		len;
	char			line[64];
	int			fd, on = 1, up, status = 0, stopped;

	signal(SIGPIPE, SIG_IGN);
	ck_assert_uint_ne(mport = free_port(), 0);
	if ((fd = socket(AF_INET6, SOCK_STREAM, 0)) == -1)
		return;		/* no IPv6 here */
	harness_sa_loopback(&ss, &len, 1, mport);
	ck_assert_int_eq(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
	    sizeof(on)), 0);
	if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
		close(fd);
		return;		/* no ::1 here, or the port went */
	}
	ck_assert_int_eq(listen(fd, 4), 0);
	snprintf(line, sizeof(line), "metrics-listen localhost:%u", mport);
	up = harness_start(&two, 1, line) == 0;
	if (up && http_req("GET", "/metrics", &r) == 0)
		status = r.status;
	stopped = up && harness_stop(&two, 10000) == 0;
	close(fd);
	ck_assert_msg(up, "refused to start; log in %s", two.log);
	ck_assert_int_eq(status, 200);
	ck_assert(stopped);
	harness_cleanup(&two);
}
END_TEST

int
main(void)
{
	const TTest *const t_main[] = { format, every_counter, relay,
	    loss_quantiles,
	    grpc_calls,
	    keepalive, methods_paths, junk, silent, dribble, cap, reload,
	    worker_restart, NULL };
	const TTest *const t_v6[] = { ipv6, NULL };
	const TTest *const t_bind[] = { bind_fails, localhost_v4, NULL };
	Suite	*s = suite_create("metrics");

	harness_tcase(s, "metrics", up, down, 120, t_main);
	harness_tcase(s, "ipv6", up_v6, down, 60, t_v6);
	harness_tcase(s, "bind", NULL, NULL, 60, t_bind);
	return harness_run_suite(s) != 0 || stop_failed;
}
