/*
 * The standby's mirror of the nodes it backs (standby-for): the ids of
 * their sessions, in the master's memory, kept as they change.  The
 * scripts that write, delete and claim a record PUBLISH "+ID" or "-ID"
 * on PREFIXchan:NODE (the owner's) in the same step; this file
 * subscribes to each backed node's channel on a second connection (a
 * subscribed connection can send nothing else) and reads the node's set
 * (SMEMBERS, on the main connection) at every (re)subscription, since
 * what is published while nobody listens is lost.  Messages that come
 * during that read are applied again after it, in order, so that the
 * read cannot undo them.  At most max-sessions ids in all: past that a
 * node's mirror is not complete, and a takeover reads the set instead.
 *
 * A write's message has the session's addresses and ports: a UDP
 * session that listens and forwards on the node's floating address
 * (standby-for's) gets its sockets bound here in advance, with
 * IP_FREEBIND since the address is not here yet, and the takeover hands
 * them to the session (mirror_take), so that nothing is bound in the
 * hurry and packets that come as soon as the address does wait in them.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <hiredis/adapters/libevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "repl_int.h"

#define MI_BUCKETS	4096
#define MI_RETRY_MS	1000	/* the subscription, again after a loss */
#define MI_PEND_MAX	65536	/* messages kept during a read of the set */

/* Where a session of a backed node listens and forwards. */
struct mi_where {
	int			 known;
	int			 kind;		/* 'r' RTP+RTCP, 'u', 't' TCP */
	struct sockaddr_storage	 l, f;
};

struct mi_ent {
	struct mi_ent	*next;
	int		 k;		/* the backed node's index */
	uint32_t	 seen;		/* the last read of the set it was in */
	char		 id[SHM_ID_MAX];
	struct mi_where	 w;
	int		 fd[4];		/* bound in advance: l, l+1, f, f+1 */
};

struct mi_msg {
	struct mi_msg	*next;
	int		 k, add;
	char		 id[SHM_ID_MAX];
	struct mi_where	 w;
};

static struct {
	redisAsyncContext	*ac;
	struct event		*retry_ev;
	char			 chan[CONF_MAX_STANDBY][RC_KEY_MAX];
	struct mi_ent		*b[MI_BUCKETS];
	uint32_t		 total, max;
	int64_t			 n[CONF_MAX_STANDBY];
	int64_t			 pre[CONF_MAX_STANDBY];	/* bound ahead */
	uint32_t		 seen;
	int			 subscribed[CONF_MAX_STANDBY];
	int			 due[CONF_MAX_STANDBY];	/* a read to send */
	int			 reading[CONF_MAX_STANDBY];
	int			 ready[CONF_MAX_STANDBY];
	int			 full[CONF_MAX_STANDBY];	/* ids left out */
	uint64_t		 epoch;		/* of the subscription */
	struct mi_msg		*pend, **pend_tail;
	uint32_t		 npend;
	int			 warned;
} mi;

static uint32_t
mi_hash(const char *id)
{
	uint32_t h = 2166136261u;

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % MI_BUCKETS;
}

static struct mi_ent **
mi_find(int k, const char *id)
{
	struct mi_ent **e;

	for (e = &mi.b[mi_hash(id)]; *e != NULL; e = &(*e)->next)
		if ((*e)->k == k && strcmp((*e)->id, id) == 0)
			break;
	return e;
}

static void
mi_unbind(struct mi_ent *x)
{
	int i, had = x->fd[0] != -1;

	for (i = 0; i < 4; i++)
		if (x->fd[i] != -1) {
			close(x->fd[i]);
			x->fd[i] = -1;
		}
	if (had)
		mi.pre[x->k]--;
}

static int
mi_sock(const struct sockaddr_storage *ss, uint16_t port)
{
	struct sockaddr_storage	a = *ss;
	socklen_t		len;
	int			fd, on = 1, saved;

	if (a.ss_family == AF_INET) {
		((struct sockaddr_in *)&a)->sin_port = htons(port);
		len = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)&a)->sin6_port = htons(port);
		len = sizeof(struct sockaddr_in6);
	}
	fd = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	/* IP_FREEBIND: the address is the active node's, not here yet. */
	if ((a.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1) ||
	    setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &on, sizeof(on)) == -1 ||
	    bind(fd, (struct sockaddr *)&a, len) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static uint16_t
mi_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ?
	    ((const struct sockaddr_in *)ss)->sin_port :
	    ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static int
mi_same_addr(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return a->ss_family == AF_INET6 &&
	    memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr,
	    sizeof(struct in6_addr)) == 0;
}

static int
mi_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	return mi_same_addr(a, b) && mi_port(a) == mi_port(b);
}

/*
 * The sockets of x bound in advance, when it is a UDP session on the
 * floating address: all of them, or none (a port taken here, logged).
 */
static void
mi_bind(struct mi_ent *x)
{
	const struct sockaddr_storage	*fl = &rc.conf->standby[x->k].addr;
	uint16_t			 lp = mi_port(&x->w.l);
	uint16_t			 fp = mi_port(&x->w.f);
	int				 rtcp = x->w.kind == 'r', e;
	char				 a[INET6_ADDRSTRLEN + 8];

	if (!x->w.known || x->w.kind == 't' || !mi_same_addr(&x->w.l, fl) ||
	    !mi_same_addr(&x->w.f, fl) || lp == 0 || fp == 0 ||
	    (rtcp && (lp == 65535 || fp == 65535)))
		return;
	if ((x->fd[0] = mi_sock(&x->w.l, lp)) == -1 ||
	    (rtcp && (x->fd[1] = mi_sock(&x->w.l, lp + 1)) == -1) ||
	    (x->fd[2] = mi_sock(&x->w.f, fp)) == -1 ||
	    (rtcp && (x->fd[3] = mi_sock(&x->w.f, fp + 1)) == -1)) {
		e = errno;
		mi.pre[x->k]++;		/* mi_unbind counts it off */
		mi_unbind(x);
		rc.st.prebind_failures++;
		log_info("redis: session %s of node %s: its ports on %s not "
		    "bound in advance: %s; bound at the takeover", x->id,
		    rc.conf->standby[x->k].node, sa_ntop((const struct
		    sockaddr *)fl, a, sizeof(a)), strerror(e));
		return;
	}
	mi.pre[x->k]++;
}

static void
mi_apply(int k, int add, const char *id, const struct mi_where *w)
{
	struct mi_ent **e = mi_find(k, id), *x;

	if (add && *e == NULL) {
		if (mi.total >= mi.max) {
			mi.full[k] = 1;
			if (!mi.warned++)
				log_warnx("redis: the mirror of node %s holds "
				    "%u sessions (max-sessions): a takeover "
				    "reads the rest from Redis",
				    rc.conf->standby[k].node, mi.max);
			return;
		}
		x = xcalloc(1, sizeof(*x));
		x->k = k;
		x->fd[0] = x->fd[1] = x->fd[2] = x->fd[3] = -1;
		memcpy(x->id, id, strlen(id) + 1);
		*e = x;
		mi.total++;
		mi.n[k]++;
	} else if (add)
		x = *e;
	else {
		if ((x = *e) == NULL)
			return;
		*e = x->next;
		mi_unbind(x);
		free(x);
		mi.total--;
		mi.n[k]--;
		return;
	}
	x->seen = mi.seen;
	/* Moved (UpdateSession cannot, but a record may): bound again. */
	if (w != NULL && w->known && (!x->w.known || x->w.kind != w->kind ||
	    !mi_same(&x->w.l, &w->l) || !mi_same(&x->w.f, &w->f))) {
		mi_unbind(x);
		x->w = *w;
		mi_bind(x);
	}
}

/* Node k's entries (all: k -1), or those not seen in the last read. */
static void
mi_sweep(int k, int unseen)
{
	struct mi_ent	**e, *x;
	int		  i;

	for (i = 0; i < MI_BUCKETS; i++)
		for (e = &mi.b[i]; *e != NULL;) {
			if ((k >= 0 && (*e)->k != k) ||
			    (unseen && (*e)->seen == mi.seen)) {
				e = &(*e)->next;
				continue;
			}
			x = *e;
			*e = x->next;
			mi.n[x->k]--;
			mi_unbind(x);
			free(x);
			mi.total--;
		}
}

static void
mi_clear(int k)
{
	mi_sweep(k, 0);
	if (k >= 0)
		mi.full[k] = 0;
	else
		memset(mi.full, 0, sizeof(mi.full));
}

static void
mi_pend_clear(void)
{
	struct mi_msg *m;

	while ((m = mi.pend) != NULL) {
		mi.pend = m->next;
		free(m);
	}
	mi.pend_tail = &mi.pend;
	mi.npend = 0;
}

static int
mi_id_ok(const char *s, size_t len)
{
	return len > 0 && len < SHM_ID_MAX && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._:@+-") == len;
}

/* SMEMBERS of node k's set: the mirror afresh, then what came since. */
static void
mi_read_done(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply	*reply = r, *e;
	struct mi_msg	*m, **mp;
	int		 k = (int)(intptr_t)arg, others;
	size_t		 i;

	rc_reply(reply);
	if (k < 0 || k >= rc.conf->nstandby || !mi.reading[k])
		return;
	mi.reading[k] = 0;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		/* Redis went, or the set is not one: again. */
		if (reply != NULL)
			log_warnx("redis: the set of node %s: %s; not "
			    "mirrored", rc.conf->standby[k].node,
			    reply->type == REDIS_REPLY_ERROR ? reply->str :
			    "not a set");
		if (mi.subscribed[k])
			mi.due[k] = 1;
		goto pend;
	}
	/* Kept: what is still in the set (and its sockets); gone: the rest. */
	mi.seen++;
	mi.full[k] = 0;
	for (i = 0; i < reply->elements; i++) {
		e = reply->element[i];
		if (e->type == REDIS_REPLY_STRING && mi_id_ok(e->str, e->len))
			mi_apply(k, 1, e->str, NULL);
	}
	mi_sweep(k, 1);
	for (m = mi.pend; m != NULL; m = m->next)
		if (m->k == k)
			mi_apply(k, m->add, m->id, &m->w);
	rc.st.mirror_resyncs++;
	mi.ready[k] = mi.subscribed[k];
	log_info("redis: mirroring %lld sessions of node %s",
	    (long long)mi.n[k], rc.conf->standby[k].node);
pend:
	/* Kept only while another node's read is on its way. */
	for (others = 0, i = 0; i < (size_t)rc.conf->nstandby; i++)
		others |= mi.reading[i];
	if (!others)
		mi_pend_clear();
	else
		for (mp = &mi.pend; *mp != NULL;) {
			if ((*mp)->k != k) {
				mp = &(*mp)->next;
				continue;
			}
			m = *mp;
			*mp = m->next;
			free(m);
			mi.npend--;
		}
	if (mi.pend == NULL)
		mi.pend_tail = &mi.pend;
	else
		for (mi.pend_tail = &mi.pend; *mi.pend_tail != NULL;
		    mi.pend_tail = &(*mi.pend_tail)->next)
			;
}

/* The reads that are due, on the main connection once it is up. */
static void
mi_read_due(void)
{
	char		 key[RC_KEY_MAX];
	const char	*argv[2];
	int		 k;

	for (k = 0; k < rc.conf->nstandby; k++) {
		if (!mi.due[k] || mi.reading[k] || !rc.up)
			continue;
		rc_key(key, sizeof(key), "node", rc.conf->standby[k].node);
		argv[0] = "SMEMBERS";
		argv[1] = key;
		if (rc_send(mi_read_done, (void *)(intptr_t)k, 2, argv) == 0) {
			mi.due[k] = 0;
			mi.reading[k] = 1;
		}
	}
}

/* An address and a port of a message into ss; 0, or -1. */
static int
mi_addr(const char *a, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	unsigned long		 p;
	char			*end;

	memset(ss, 0, sizeof(*ss));
	if (port[0] < '0' || port[0] > '9')
		return -1;
	p = strtoul(port, &end, 10);
	if (*end != '\0' || p == 0 || p > 65535)
		return -1;
	if (inet_pton(AF_INET, a, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		return 0;
	}
	if (inet_pton(AF_INET6, a, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		return 0;
	}
	return -1;
}

/*
 * A message: "-ID", "+ID", or "+ID KIND LISTEN PORT FORWARD PORT"
 * (rd_announce's).  0, or -1: not one of ours.
 */
static int
mi_parse(const char *s, size_t len, int *add, char *id,
    struct mi_where *w)
{
	char	 buf[SHM_ID_MAX + 2 * INET6_ADDRSTRLEN + 32], *t[7], *p;
	int	 n = 0;

	memset(w, 0, sizeof(*w));
	if (len < 2 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL ||
	    (s[0] != '+' && s[0] != '-'))
		return -1;
	*add = s[0] == '+';
	memcpy(buf, s + 1, len - 1);
	buf[len - 1] = '\0';
	for (p = buf; n < 7 && (t[n] = strsep(&p, " ")) != NULL; n++)
		;
	if (p != NULL || (n != 1 && n != 6) ||
	    !mi_id_ok(t[0], strlen(t[0])) || (n == 6 && !*add))
		return -1;
	memcpy(id, t[0], strlen(t[0]) + 1);
	if (n == 1)
		return 0;
	if (strlen(t[1]) != 1 || strchr("rut", t[1][0]) == NULL ||
	    mi_addr(t[2], t[3], &w->l) == -1 ||
	    mi_addr(t[4], t[5], &w->f) == -1)
		return -1;
	w->kind = t[1][0];
	w->known = 1;
	return 0;
}

/* A message, or a subscription's confirmation, on the second connection. */
static void
mi_message(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply	*reply = r, **el;
	struct mi_msg	*m;
	struct mi_where	 w;
	char		 id[SHM_ID_MAX];
	int		 k, add;

	if (reply == NULL || ac != mi.ac || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 3)
		return;
	el = reply->element;
	if (el[0]->type != REDIS_REPLY_STRING ||
	    el[1]->type != REDIS_REPLY_STRING)
		return;
	for (k = 0; k < rc.conf->nstandby; k++)
		if (strcmp(el[1]->str, mi.chan[k]) == 0)
			break;
	if (k == rc.conf->nstandby)
		return;
	if (strcmp(el[0]->str, "subscribe") == 0) {
		mi.subscribed[k] = 1;
		mi.due[k] = 1;
		mi_read_due();
		return;
	}
	if (strcmp(el[0]->str, "message") != 0 ||
	    el[2]->type != REDIS_REPLY_STRING)
		return;
	if (mi_parse(el[2]->str, el[2]->len, &add, id, &w) == -1)
		return;		/* not one of ours: nothing to do */
	mi_apply(k, add, id, &w);
	if (!mi.reading[k] && !mi.due[k])
		return;
	/* A read of the set is on its way: this goes again after it. */
	if (mi.npend >= MI_PEND_MAX) {
		mi.due[k] = 1;	/* too much at once: read once more */
		return;
	}
	m = xcalloc(1, sizeof(*m));
	m->k = k;
	m->add = add;
	memcpy(m->id, id, sizeof(m->id));
	m->w = w;
	*mi.pend_tail = m;
	mi.pend_tail = &m->next;
	mi.npend++;
}

static void
mi_lost(void)
{
	struct timeval	tv = { MI_RETRY_MS / 1000, 0 };
	int		k;

	mi.ac = NULL;
	for (k = 0; k < rc.conf->nstandby; k++) {
		mi.subscribed[k] = 0;
		mi.ready[k] = 0;
		mi.due[k] = 0;
	}
	if (!evtimer_pending(mi.retry_ev, NULL))
		evtimer_add(mi.retry_ev, &tv);
}

static void
mi_on_connect(const redisAsyncContext *ac, int status)
{
	if (ac != mi.ac)
		return;
	if (status != REDIS_OK) {
		log_debug("redis %s: the standby's subscription: %s",
		    rc.conf->redis, ac->errstr);
		mi_lost();
	}
}

static void
mi_on_disconnect(const redisAsyncContext *ac, int status)
{
	if (ac != mi.ac)
		return;
	log_info("redis %s: the standby's subscription is lost; read again "
	    "once back", rc.conf->redis);
	mi_lost();
}

/*
 * The second connection, as the first one is made (redis_conn.c): the
 * same address, AUTH first; SELECT is not needed, channels are the
 * server's, not a database's.
 */
static void
mi_connect(evutil_socket_t fd, short ev, void *arg)
{
	const struct config	*c = rc.conf;
	redisAsyncContext	*ac;
	const char		*argv[1 + CONF_MAX_STANDBY];
	int			 k;

	if (mi.ac != NULL)
		return;
	if (c->redis_tls)	/* through redis_tls.c's second bridge */
		ac = redisAsyncConnectUnix(rtls_path(RTLS_MIRROR));
	else if (c->redis_unix != NULL)
		ac = redisAsyncConnectUnix(c->redis_unix);
	else
		ac = redisAsyncConnect(c->redis_host, c->redis_port);
	if (ac == NULL || ac->err || redisLibeventAttach(ac, rc.base) !=
	    REDIS_OK) {
		if (ac != NULL)
			redisAsyncFree(ac);
		mi_lost();
		return;
	}
	mi.ac = ac;
	redisAsyncSetConnectCallback(ac, mi_on_connect);
	redisAsyncSetDisconnectCallback(ac, mi_on_disconnect);
	if (c->redis_password != NULL) {
		argv[0] = "AUTH";
		argv[1] = c->redis_password;
		(void)redisAsyncCommandArgv(ac, NULL, NULL, 2, argv, NULL);
	}
	argv[0] = "SUBSCRIBE";
	for (k = 0; k < c->nstandby; k++)
		argv[1 + k] = mi.chan[k];
	if (redisAsyncCommandArgv(ac, mi_message, NULL, 1 + c->nstandby, argv,
	    NULL) != REDIS_OK) {
		mi.ac = NULL;
		redisAsyncFree(ac);
		mi_lost();
	}
}

void
mirror_start(void)
{
	int k;

	memset(&mi, 0, sizeof(mi));
	mi.pend_tail = &mi.pend;
	if (rc.conf->nstandby == 0)
		return;
	mi.max = rc.conf->max_sessions;
	for (k = 0; k < rc.conf->nstandby; k++)
		rc_key(mi.chan[k], sizeof(mi.chan[k]), "chan",
		    rc.conf->standby[k].node);
	if ((mi.retry_ev = evtimer_new(rc.base, mi_connect, NULL)) == NULL)
		fatalx("redis: evtimer_new");
	mi_connect(-1, 0, NULL);
}

/* Every tick: a read that waited for the main connection. */
void
mirror_tick(void)
{
	if (mi.retry_ev != NULL)
		mi_read_due();
}

void
mirror_stop(void)
{
	redisAsyncContext *ac = mi.ac;

	if (mi.retry_ev == NULL)
		return;
	mi.ac = NULL;
	if (ac != NULL)
		redisAsyncFree(ac);
	event_free(mi.retry_ev);
	mi_clear(-1);
	mi_pend_clear();
	memset(&mi, 0, sizeof(mi));
}

/*
 * The ids of node's sessions as mirrored, each given to fn; their
 * number, or -1 when the mirror of node is not complete (not a backed
 * node, not subscribed, its set not read since, or ids left out).
 */
int64_t
mirror_ids(const char *node, void (*fn)(const char *, void *), void *arg)
{
	struct mi_ent	*e, *next;
	int		 k, i;

	if (mi.retry_ev == NULL)
		return -1;
	for (k = 0; k < rc.conf->nstandby; k++)
		if (strcmp(rc.conf->standby[k].node, node) == 0)
			break;
	if (k == rc.conf->nstandby || !mi.ready[k] || mi.full[k] ||
	    mi.reading[k] || mi.due[k])
		return -1;
	for (i = 0; i < MI_BUCKETS; i++)
		for (e = mi.b[i]; e != NULL; e = next) {
			next = e->next;
			if (e->k == k)
				fn(e->id, arg);
		}
	return mi.n[k];
}

/*
 * The sockets bound in advance for node's session id (4: RTP and RTCP of
 * listen, then of forward; -1 where none), now the caller's to close,
 * and where they are bound; 0, or -1: none.
 */
int
mirror_take(const char *node, const char *id, int fd[4],
    struct sockaddr_storage *l, struct sockaddr_storage *f)
{
	struct mi_ent	*x;
	int		 k, i;

	if (mi.retry_ev == NULL)
		return -1;
	for (k = 0; k < rc.conf->nstandby; k++)
		if (strcmp(rc.conf->standby[k].node, node) == 0)
			break;
	if (k == rc.conf->nstandby || (x = *mi_find(k, id)) == NULL ||
	    x->fd[0] == -1)
		return -1;
	for (i = 0; i < 4; i++) {
		fd[i] = x->fd[i];
		x->fd[i] = -1;
	}
	mi.pre[k]--;
	*l = x->w.l;
	*f = x->w.f;
	return 0;
}

/*
 * The sessions mirrored of the k-th backed node (-1: not in step), and
 * those with their sockets bound in advance.
 */
int
redis_mirrored(int k, int64_t *n, int64_t *pre)
{
	if (mi.retry_ev == NULL || k < 0 || k >= rc.conf->nstandby)
		return -1;
	*n = mi.ready[k] ? mi.n[k] : -1;
	*pre = mi.pre[k];
	return 0;
}
