/*
 * A session's record in Redis: one hash, PREFIXsession:ID, of text
 * fields, with a version ("v") that a reader checks before anything
 * else.  What is read back comes from outside: every field is checked,
 * and a record that does not parse is refused with the reason.
 */
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"

#define RR_F_KNOWN	(SHM_F_UNIDIR | SHM_F_NORTCP | SHM_F_TCP | \
			    SHM_F_IDLE_DEF | SHM_F_SRC_ADDR | SHM_F_SRC_PORT | \
			    SHM_F_DROP_DTMF | SHM_F_RECORD)

void
redis_rec_from_snap(struct redis_rec *r, const struct session_snapshot *s,
    const char *node, uint64_t inc, uint32_t epoch, int64_t now)
{
	int d;

	memset(r, 0, offsetof(struct redis_rec, text));
	memcpy(r->id, s->id, sizeof(r->id));
	snprintf(r->node, sizeof(r->node), "%s", node);
	r->inc = inc;
	r->epoch = epoch;
	r->state = s->state;
	r->flags = s->flags & RR_F_KNOWN;
	r->listen = s->listen;
	r->forward = s->forward;
	r->dest = s->dest;
	r->latched = s->latched;
	r->latched_rtcp = s->latched_rtcp;
	r->idle_timeout_s = s->idle_timeout_s;
	r->stats_interval_ms = s->stats_interval_ms;
	r->clock_rate = s->clock_rate;
	r->dtmf_pt = s->dtmf_pt;
	r->rate_pps = s->rate_pps;
	r->rate_bps = s->rate_bps;
	r->latch_policy = s->latch_policy;
	r->relatches = s->relatches;
	r->rec_parts = s->rec_parts;
	r->created_ms = s->created_ms;
	r->written_ms = now;
	for (d = 0; d < 2; d++)
		r->c[d] = s->dir[d].c;
}

/* What the API shows of another node's session: its record. */
void
redis_rec_to_snap(const struct redis_rec *r, struct session_snapshot *s)
{
	int d;

	memset(s, 0, sizeof(*s));
	memcpy(s->id, r->id, sizeof(s->id));
	s->state = r->state;
	s->flags = r->flags;
	s->listen = r->listen;
	s->forward = r->forward;
	s->dest = r->dest;
	s->latched = r->latched;
	s->latched_rtcp = r->latched_rtcp;
	s->idle_timeout_s = r->idle_timeout_s;
	s->stats_interval_ms = r->stats_interval_ms;
	s->clock_rate = r->clock_rate;
	/* A record from before DTMF was kept has none: the default. */
	s->dtmf_pt = r->dtmf_pt != 0 ? r->dtmf_pt : 101;
	s->rate_pps = r->rate_pps;
	s->rate_bps = r->rate_bps;
	s->latch_policy = r->latch_policy != 0 ? r->latch_policy :
	    SHM_LATCH_LEARN;
	s->relatches = r->relatches;
	s->rec_parts = r->rec_parts;
	s->repl_inc = r->inc;
	s->repl_epoch = r->epoch;
	s->created_ms = r->created_ms;
	s->last_activity_ms = r->written_ms;
	for (d = 0; d < 2; d++)
		s->dir[d].c = r->c[d];
}

static void
rr_addr(char *buf, size_t len, const struct shm_addr *a)
{
	struct sockaddr_storage ss;

	if (a->family == 0) {
		buf[0] = '\0';
		return;
	}
	shm_addr_to_sa(a, &ss);
	sa_ntop((struct sockaddr *)&ss, buf, len);
}

static void
rr_counters(char *buf, size_t len, const struct shm_totals *t)
{
	uint64_t	v[REDIS_REC_NCOUNT];
	size_t		i, o = 0;
	int		n;

	memcpy(v, t, sizeof(v));
	buf[0] = '\0';
	for (i = 0; i < REDIS_REC_NCOUNT && o < len; i++) {
		n = snprintf(buf + o, len - o, "%s%llu", i ? " " : "",
		    (unsigned long long)v[i]);
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

/*
 * The fields and values of r for HSET, into argv (2 * REDIS_REC_FIELDS
 * at most), their text in r->text; the number of argv taken.
 */
int
redis_rec_argv(struct redis_rec *r, const char **argv, int what)
{
	int	n = 0, t = 0;

#define RR_PUT(name, ...) do {						\
	snprintf(r->text[t], REDIS_REC_TEXT, __VA_ARGS__);		\
	argv[n++] = (name);						\
	argv[n++] = r->text[t++];					\
} while (0)
#define RR_ADDR(name, a) do {						\
	rr_addr(r->text[t], REDIS_REC_TEXT, (a));			\
	argv[n++] = (name);						\
	argv[n++] = r->text[t++];					\
} while (0)
	if (what == REDIS_REC_ALL) {
		RR_PUT("v", "%d", REDIS_REC_VERSION);
		RR_PUT("id", "%s", r->id);
		RR_PUT("node", "%s", r->node);
		RR_PUT("inc", "%016llx", (unsigned long long)r->inc);
		RR_PUT("epoch", "%u", r->epoch);
		RR_PUT("state", "%u", r->state);
		RR_PUT("flags", "%u", r->flags);
		RR_ADDR("listen", &r->listen);
		RR_ADDR("forward", &r->forward);
		RR_ADDR("dest", &r->dest);
		RR_ADDR("latched", &r->latched);
		RR_ADDR("latched_rtcp", &r->latched_rtcp);
		RR_PUT("idle", "%u", r->idle_timeout_s);
		RR_PUT("stats", "%u", r->stats_interval_ms);
		RR_PUT("clock", "%u", r->clock_rate);
		RR_PUT("dtmf", "%u", r->dtmf_pt);
		RR_PUT("pps", "%u", r->rate_pps);
		RR_PUT("bps", "%llu", (unsigned long long)r->rate_bps);
		RR_PUT("latch", "%u", r->latch_policy);
		RR_PUT("created", "%lld", (long long)r->created_ms);
	}
	RR_PUT("relatches", "%u", r->relatches);
	/* A part begun is a counter too: a restore goes on after it. */
	RR_PUT("parts", "%u", r->rec_parts);
	RR_PUT("written", "%lld", (long long)r->written_ms);
	rr_counters(r->text[t], REDIS_REC_TEXT, &r->c[0]);
	argv[n++] = "c0";
	argv[n++] = r->text[t++];
	rr_counters(r->text[t], REDIS_REC_TEXT, &r->c[1]);
	argv[n++] = "c1";
	argv[n++] = r->text[t++];
#undef RR_PUT
#undef RR_ADDR
	return n;
}

static int
rr_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long	 v;
	char			*end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
rr_u32(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (rr_u64(s, max, &v) == -1)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "a.b.c.d:port", "[v6]:port", or "" for none when empty is allowed. */
static int
rr_parse_addr(const char *s, struct shm_addr *a, int empty_ok)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	char			 host[INET6_ADDRSTRLEN + 2];
	const char		*p;
	uint32_t		 port;
	size_t			 len;

	memset(a, 0, sizeof(*a));
	if (*s == '\0')
		return empty_ok ? 0 : -1;
	if ((p = strrchr(s, ':')) == NULL || rr_u32(p + 1, 65535, &port) == -1)
		return -1;
	len = (size_t)(p - s);
	if (s[0] == '[') {
		if (len < 3 || s[len - 1] != ']' || len - 2 >= sizeof(host))
			return -1;
		memcpy(host, s + 1, len - 2);
		host[len - 2] = '\0';
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1)
			return -1;
		return shm_addr_from_sa(a, (struct sockaddr *)&sin6);
	}
	if (len >= sizeof(host))
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -1;
	return shm_addr_from_sa(a, (struct sockaddr *)&sin);
}

static int
rr_parse_counters(const char *s, struct shm_totals *t)
{
	uint64_t	 v[REDIS_REC_NCOUNT];
	size_t		 i;
	char		*end;

	memset(v, 0, sizeof(v));
	/* A record from a build with fewer counters: the others are 0. */
	for (i = 0; i < REDIS_REC_NCOUNT && *s != '\0'; i++) {
		if (*s < '0' || *s > '9')
			return -1;
		errno = 0;
		v[i] = strtoull(s, &end, 10);
		if (errno != 0 || (*end != ' ' && *end != '\0'))
			return -1;
		s = *end == ' ' ? end + 1 : end;
	}
	if (*s != '\0')
		return -1;
	memcpy(t, v, sizeof(v));
	return 0;
}

static int
rr_id_ok(const char *s, size_t max)
{
	size_t len = strlen(s);

	return len > 0 && len < max && utf8_valid(s, len) &&
	    strpbrk(s, " \t\r\n") == NULL;
}

/*
 * A record from HGETALL's fields and values (not NUL-terminated in
 * Redis: lengths given; copied).  0, or -1 with why.
 */
int
redis_rec_parse(struct redis_rec *r, size_t n, const char *const *kv,
    const size_t *kvlen, char *why, size_t whylen)
{
	char		 f[32], v[REDIS_REC_TEXT];
	unsigned int	 seen = 0;
	uint64_t	 u;
	uint32_t	 ver;
	size_t		 i, k;
	int		 bad = 0;

	memset(r, 0, offsetof(struct redis_rec, text));
	for (i = 0; i + 1 < n && !bad; i += 2) {
		if (kvlen[i] >= sizeof(f) || kvlen[i + 1] >= sizeof(v) ||
		    memchr(kv[i], '\0', kvlen[i]) != NULL ||
		    memchr(kv[i + 1], '\0', kvlen[i + 1]) != NULL) {
			snprintf(why, whylen, "a field or value too long, or "
			    "with a NUL byte");
			return -1;
		}
		memcpy(f, kv[i], kvlen[i]);
		f[kvlen[i]] = '\0';
		/* Ours never has a field twice: which one would count? */
		for (k = 0; k < i; k += 2)
			if (kvlen[k] == kvlen[i] &&
			    memcmp(kv[k], kv[i], kvlen[i]) == 0) {
				snprintf(why, whylen, "field %s given twice",
				    f);
				return -1;
			}
		memcpy(v, kv[i + 1], kvlen[i + 1]);
		v[kvlen[i + 1]] = '\0';
		if (strcmp(f, "v") == 0) {
			if (rr_u32(v, UINT32_MAX, &ver) == -1 ||
			    ver != REDIS_REC_VERSION) {
				snprintf(why, whylen, "version \"%.32s\", this "
				    "build reads %d", v, REDIS_REC_VERSION);
				return -1;
			}
			seen |= 1;
		} else if (strcmp(f, "id") == 0) {
			if (!(bad = !rr_id_ok(v, sizeof(r->id))))
				memcpy(r->id, v, strlen(v) + 1);
			seen |= 2;
		} else if (strcmp(f, "node") == 0) {
			if (!(bad = !rr_id_ok(v, sizeof(r->node))))
				memcpy(r->node, v, strlen(v) + 1);
			seen |= 4;
		} else if (strcmp(f, "inc") == 0) {
			bad = strlen(v) != 16 || strspn(v,
			    "0123456789abcdef") != 16;
			r->inc = strtoull(v, NULL, 16);
			seen |= 128;
		} else if (strcmp(f, "epoch") == 0) {
			bad = rr_u32(v, UINT32_MAX, &r->epoch) == -1 ||
			    r->epoch == 0;
			seen |= 8;
		} else if (strcmp(f, "listen") == 0) {
			bad = rr_parse_addr(v, &r->listen, 0) == -1;
			seen |= 16;
		} else if (strcmp(f, "dest") == 0) {
			bad = rr_parse_addr(v, &r->dest, 0) == -1;
			seen |= 32;
		} else if (strcmp(f, "forward") == 0) {
			bad = rr_parse_addr(v, &r->forward, 0) == -1;
			seen |= 64;
		} else if (strcmp(f, "latched") == 0)
			bad = rr_parse_addr(v, &r->latched, 1) == -1;
		else if (strcmp(f, "latched_rtcp") == 0)
			bad = rr_parse_addr(v, &r->latched_rtcp, 1) == -1;
		else if (strcmp(f, "flags") == 0)
			bad = rr_u32(v, RR_F_KNOWN, &r->flags) == -1 ||
			    (r->flags & ~RR_F_KNOWN) != 0;
		else if (strcmp(f, "idle") == 0)
			bad = rr_u32(v, 86400 * 365, &r->idle_timeout_s) == -1;
		else if (strcmp(f, "stats") == 0)
			bad = rr_u32(v, 3600000, &r->stats_interval_ms) == -1;
		else if (strcmp(f, "clock") == 0)
			bad = rr_u32(v, 1000000, &r->clock_rate) == -1;
		else if (strcmp(f, "dtmf") == 0)
			bad = rr_u32(v, 127, &r->dtmf_pt) == -1 ||
			    (r->dtmf_pt != 0 && r->dtmf_pt < 96);
		else if (strcmp(f, "pps") == 0)
			bad = rr_u32(v, 10000000, &r->rate_pps) == -1;
		else if (strcmp(f, "bps") == 0)
			bad = rr_u64(v, 100000000000ULL, &r->rate_bps) == -1;
		else if (strcmp(f, "latch") == 0)
			bad = rr_u32(v, SHM_LATCH_LATEST, &r->latch_policy) ==
			    -1;
		else if (strcmp(f, "relatches") == 0)
			bad = rr_u32(v, UINT32_MAX, &r->relatches) == -1;
		else if (strcmp(f, "parts") == 0)
			/* Not in records of older builds: 0, none begun. */
			bad = rr_u32(v, REDIS_REC_PARTS_MAX, &r->rec_parts) ==
			    -1;
		else if (strcmp(f, "created") == 0) {
			bad = rr_u64(v, INT64_MAX, &u) == -1;
			r->created_ms = (int64_t)u;
		} else if (strcmp(f, "written") == 0) {
			bad = rr_u64(v, INT64_MAX, &u) == -1;
			r->written_ms = (int64_t)u;
		} else if (strcmp(f, "c0") == 0)
			bad = rr_parse_counters(v, &r->c[0]) == -1;
		else if (strcmp(f, "c1") == 0)
			bad = rr_parse_counters(v, &r->c[1]) == -1;
		else if (strcmp(f, "state") == 0)
			bad = rr_u32(v, SHM_CLOSED, &r->state) == -1;
		if (bad)
			snprintf(why, whylen, "field %s: bad value \"%.64s\"",
			    f, v);
	}
	if (bad)
		return -1;
	if (!(seen & 1)) {
		snprintf(why, whylen, "no version field");
		return -1;
	}
	if (seen != 255) {
		snprintf(why, whylen, "incomplete: id, node, inc, epoch, "
		    "listen, forward and dest are needed");
		return -1;
	}
	return 0;
}
