/*
 * The sessions' state in Redis, written through from the registry's
 * events on the master's loop (hiredis and its libevent adapter), so that
 * a daemon started again, or a standby, can rebuild them.  Nothing waits
 * for Redis: a session to write is a mark on its slot, not a queued
 * command, so a Redis that is slow or gone costs a few bytes per session
 * and is caught up on from the table when it is back.  Only a delete is
 * queued (the session's id is gone from the table), until Redis says it
 * is done.  The record's text is redis_rec.c's.
 */
#include <sys/queue.h>

#include <errno.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "repl.h"
#include "sessions.h"

#define RD_FLUSH_MS	10	/* a batch goes at most this late */
#define RD_BATCH	512	/* sessions written per batch */
#define RD_INFLIGHT	4096	/* commands sent and not answered */
#define RD_STUCK_MS	5000	/* no answer that long: connect again */
#define RD_TICK_MS	250
#define RD_BACKOFF_MIN	100	/* ms; doubled up to ... */
#define RD_BACKOFF_MAX	5000
#define RD_MAX_DELS	(1U << 20)	/* deletes waiting for Redis */
#define RD_KEY_MAX	(2 * CONF_NODE_MAX + SHM_ID_MAX)

#define RD_TOMB_S	"600"	/* a delete's tombstone lives this long */

#define RD_FULL		0x01	/* everything: the record afresh */
#define RD_COUNTERS	0x02	/* the counters' snapshot */

struct rd_slot {
	uint32_t	gen;		/* the slot's generation marked */
	uint8_t		dirty;		/* RD_* */
	uint8_t		queued;		/* in rd.queue */
	uint8_t		sent;		/* a full record went for gen */
	uint8_t		fresh;		/* made here: none in Redis before */
};

struct rd_del {
	TAILQ_ENTRY(rd_del)	 entry;
	char			 id[SHM_ID_MAX];
	uint64_t		 inc;
	uint32_t		 epoch;
};

/*
 * Writes and deletes are scripts, so that one is never undone by a late
 * other: a connection given up on (Redis stopped, not dead) may still
 * have commands in Redis's socket, which Redis runs when it wakes, maybe
 * after those of the next connection.  A delete leaves a tombstone with
 * the session's incarnation (not its id: a controller may use an id
 * again) for RD_TOMB_S; a write of that incarnation finds it and does
 * nothing.  Neither touches a record of a higher epoch: another node
 * owns the session now (fencing).  A counters' write (ARGV[4] "0") does
 * not make a record that is gone.
 *
 * KEYS: the record, the tombstone, the node's set.
 * ARGV: incarnation, epoch, id, full; then the fields and values.
 */
static const char rd_write_lua[] =
    "if redis.call('get', KEYS[2]) == ARGV[1] then return 0 end\n"
    "local e = redis.call('hget', KEYS[1], 'epoch')\n"
    "if e and tonumber(e) > tonumber(ARGV[2]) then return -1 end\n"
    "if ARGV[4] == '0' and not e then return 0 end\n"
    "redis.call('hset', KEYS[1], unpack(ARGV, 5))\n"
    "if ARGV[4] == '1' then redis.call('sadd', KEYS[3], ARGV[3]) end\n"
    "return 1\n";
static const char rd_del_lua[] =
    "redis.call('set', KEYS[2], ARGV[1], 'EX', " RD_TOMB_S ")\n"
    "redis.call('srem', KEYS[3], ARGV[3])\n"
    "local e = redis.call('hget', KEYS[1], 'epoch')\n"
    "if e and tonumber(e) > tonumber(ARGV[2]) then return -1 end\n"
    "redis.call('del', KEYS[1])\n"
    "return 1\n";
TAILQ_HEAD(rd_dels, rd_del);

static struct {
	struct event_base	*base;
	const struct config	*conf;
	char			 node[CONF_NODE_MAX];
	redisAsyncContext	*ac;
	int			 up;		/* connected */
	int			 was_up;	/* for the log: once per outage */
	int64_t			 connect_ms;	/* when this connect began */
	int64_t			 reply_ms;	/* the last answer */
	uint32_t		 backoff_ms;
	struct rd_slot		*s;
	uint32_t		 nslots;
	uint32_t		*queue;		/* ring of slots to write */
	uint32_t		 qhead, qlen;
	struct rd_dels		 dels;
	uint32_t		 ndels;
	struct event		*flush_ev, *retry_ev, *tick_ev;
	int64_t			 snap_ms;	/* the last counters' pass */
	int			 restoring;	/* sessions from Redis */
	int			 restore;	/* to do, once connected */
	uint32_t		 restore_wait;	/* records asked for */
	struct redis_stats	 st;
} rd;

static void	rd_connect(void);
static void	rd_flush_soon(void);
static void	rd_restore_begin(void);

static void
rd_key(char *buf, size_t len, const char *what, const char *name)
{
	snprintf(buf, len, "%s%s:%s", rd.conf->redis_prefix, what, name);
}

static void
rd_mark(uint32_t slot, uint32_t gen, uint8_t what)
{
	struct rd_slot *r = &rd.s[slot];

	if (r->gen != gen) {
		r->gen = gen;
		r->sent = 0;
		r->dirty = 0;
		r->fresh = 0;
	}
	if (!r->sent)
		what |= RD_FULL;
	r->dirty |= what;
	if (!r->queued) {
		r->queued = 1;
		rd.queue[(rd.qhead + rd.qlen++) % rd.nslots] = slot;
	}
	rd_flush_soon();
}

/* Every session again: Redis may have lost what was in flight. */
static void
rd_mark_all(uint8_t what)
{
	struct session_snapshot	snap;
	uint32_t		i;

	for (i = session_next(0); i < rd.nslots; i = session_next(i + 1)) {
		session_snapshot(i, &snap);
		rd_mark(i, snap.slot_gen, what);
	}
}

static void
rd_lost(const char *why)
{
	struct timeval tv;

	rd.ac = NULL;
	rd.up = 0;
	rd.st.up = 0;
	if (rd.was_up)
		log_warnx("redis %s: %s; sessions are written again when it "
		    "is back", rd.conf->redis, why);
	else
		log_debug("redis %s: %s", rd.conf->redis, why);
	rd.was_up = 0;
	if (evtimer_pending(rd.retry_ev, NULL))
		return;
	tv.tv_sec = rd.backoff_ms / 1000;
	tv.tv_usec = (rd.backoff_ms % 1000) * 1000;
	evtimer_add(rd.retry_ev, &tv);
	rd.backoff_ms = rd.backoff_ms * 2 > RD_BACKOFF_MAX ? RD_BACKOFF_MAX :
	    rd.backoff_ms * 2;
}

static void
rd_reply_common(redisAsyncContext *ac, redisReply *reply)
{
	if (rd.st.inflight > 0)
		rd.st.inflight--;
	if (reply == NULL)
		return;
	rd.reply_ms = now_ms();
	if (reply->type == REDIS_REPLY_ERROR) {
		rd.st.errors++;
		log_warnx("redis %s: %s", rd.conf->redis, reply->str);
	}
}

static void
rd_write_done(redisAsyncContext *ac, void *r, void *arg)
{
	rd_reply_common(ac, r);
}

/* A delete is done when Redis says so; lost on the way, it goes again. */
static void
rd_del_done(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply	*reply = r;
	struct rd_del	*d = arg;

	rd_reply_common(ac, reply);
	if (reply != NULL && reply->type != REDIS_REPLY_ERROR) {
		free(d);
		rd.ndels--;
		rd.st.deletes++;
		return;
	}
	TAILQ_INSERT_HEAD(&rd.dels, d, entry);
	rd_flush_soon();
}

static void
rd_setup_done(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply *reply = r;

	rd_reply_common(ac, reply);
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
		log_warnx("redis %s: %s refused: %s", rd.conf->redis,
		    (const char *)arg, reply->str);
		redisAsyncDisconnect(ac);
	}
}

static int
rd_send(redisCallbackFn *fn, void *arg, int argc, const char **argv,
    const size_t *argvlen)
{
	if (redisAsyncCommandArgv(rd.ac, fn, arg, argc, argv, argvlen) !=
	    REDIS_OK)
		return -1;
	rd.st.inflight++;
	return 0;
}

static void
rd_keys(char key[][RD_KEY_MAX], const char *id)
{
	rd_key(key[0], RD_KEY_MAX, "session", id);
	rd_key(key[1], RD_KEY_MAX, "deleted", id);
	rd_key(key[2], RD_KEY_MAX, "node", rd.node);
}

static int
rd_send_del(struct rd_del *d)
{
	char		 key[3][RD_KEY_MAX], inc[20], epoch[12];
	const char	*argv[9];

	rd_keys(key, d->id);
	snprintf(inc, sizeof(inc), "%016llx", (unsigned long long)d->inc);
	snprintf(epoch, sizeof(epoch), "%u", d->epoch);
	argv[0] = "EVAL";
	argv[1] = rd_del_lua;
	argv[2] = "3";
	argv[3] = key[0];
	argv[4] = key[1];
	argv[5] = key[2];
	argv[6] = inc;
	argv[7] = epoch;
	argv[8] = d->id;
	return rd_send(rd_del_done, d, 9, argv, NULL);
}

/* Slot i as marked; 0, or -1 when hiredis cannot take more. */
static int
rd_send_slot(uint32_t i)
{
	struct rd_slot		*r = &rd.s[i];
	struct session_snapshot	 snap;
	struct redis_rec	 rec;
	char			 key[3][RD_KEY_MAX], inc[20], epoch[12];
	const char		*argv[8 + 2 * REDIS_REC_FIELDS];
	int			 argc, full = (r->dirty & RD_FULL) != 0;

	session_snapshot(i, &snap);
	if (snap.slot_gen != r->gen || snap.state == SHM_FREE ||
	    snap.state == SHM_CLOSED || snap.id[0] == '\0') {
		r->dirty = 0;
		return 0;
	}
	redis_rec_from_snap(&rec, &snap, rd.node, snap.repl_inc,
	    snap.repl_epoch, now_ms());
	rd_keys(key, snap.id);
	snprintf(inc, sizeof(inc), "%016llx", (unsigned long long)snap.repl_inc);
	snprintf(epoch, sizeof(epoch), "%u", snap.repl_epoch);
	argv[0] = "EVAL";
	argv[1] = rd_write_lua;
	argv[2] = "3";
	argv[3] = key[0];
	argv[4] = key[1];
	argv[5] = key[2];
	argv[6] = inc;
	argv[7] = epoch;
	argv[8] = snap.id;
	argv[9] = full ? "1" : "0";
	argc = 10 + redis_rec_argv(&rec, argv + 10, full ? REDIS_REC_ALL :
	    REDIS_REC_COUNTERS);
	if (rd_send(rd_write_done, NULL, argc, argv, NULL) == -1)
		return -1;
	rd.st.writes++;
	if (full)
		r->sent = 1;
	r->dirty = 0;
	return 0;
}

static void
rd_flush(evutil_socket_t fd, short ev, void *arg)
{
	struct rd_del	*d;
	uint32_t	 n = 0, i;

	if (!rd.up)
		return;
	/* Deletes first: an id used again is written after its delete. */
	while ((d = TAILQ_FIRST(&rd.dels)) != NULL &&
	    rd.st.inflight < RD_INFLIGHT) {
		TAILQ_REMOVE(&rd.dels, d, entry);
		if (rd_send_del(d) == -1) {
			TAILQ_INSERT_HEAD(&rd.dels, d, entry);
			return;
		}
	}
	while (rd.qlen > 0 && n < RD_BATCH && rd.st.inflight < RD_INFLIGHT) {
		i = rd.queue[rd.qhead];
		rd.qhead = (rd.qhead + 1) % rd.nslots;
		rd.qlen--;
		rd.s[i].queued = 0;
		if (rd.s[i].dirty == 0)
			continue;
		if (rd_send_slot(i) == -1)
			return;
		n++;
	}
	if (rd.qlen > 0 || !TAILQ_EMPTY(&rd.dels))
		rd_flush_soon();
}

static void
rd_flush_soon(void)
{
	struct timeval tv = { 0, RD_FLUSH_MS * 1000 };

	if (rd.up && !evtimer_pending(rd.flush_ev, NULL))
		evtimer_add(rd.flush_ev, &tv);
}

static void
rd_on_connect(const redisAsyncContext *ac, int status)
{
	if (ac != rd.ac)
		return;
	if (status != REDIS_OK) {
		rd.st.connect_failures++;
		rd_lost(ac->errstr);
		return;
	}
	rd.up = 1;
	rd.st.up = 1;
	rd.st.connects++;
	rd.reply_ms = now_ms();
	rd.backoff_ms = RD_BACKOFF_MIN;
	log_info("redis %s: connected%s", rd.conf->redis, rd.was_up ? "" :
	    "; writing every session");
	rd.was_up = 1;
	rd_mark_all(RD_FULL);
	if (rd.restore)
		rd_restore_begin();
	rd_flush_soon();
}

static void
rd_on_disconnect(const redisAsyncContext *ac, int status)
{
	if (ac != rd.ac)
		return;
	rd_lost(status == REDIS_OK ? "disconnected" : ac->errstr);
}

static void
rd_connect(void)
{
	const struct config	*c = rd.conf;
	redisAsyncContext	*ac;
	const char		*argv[2];
	char			 db[16];

	if (c->redis_unix != NULL)
		ac = redisAsyncConnectUnix(c->redis_unix);
	else
		ac = redisAsyncConnect(c->redis_host, c->redis_port);
	rd.connect_ms = now_ms();
	if (ac == NULL || ac->err) {
		rd.st.connect_failures++;
		rd.ac = NULL;
		rd_lost(ac != NULL ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		return;
	}
	rd.ac = ac;
	if (redisLibeventAttach(ac, rd.base) != REDIS_OK) {
		redisAsyncFree(ac);
		rd.ac = NULL;
		rd_lost("cannot attach to the loop");
		return;
	}
	redisAsyncSetConnectCallback(ac, rd_on_connect);
	redisAsyncSetDisconnectCallback(ac, rd_on_disconnect);
	/* Queued before anything else, so they go first. */
	if (c->redis_password != NULL) {
		argv[0] = "AUTH";
		argv[1] = c->redis_password;
		rd_send(rd_setup_done, (void *)"AUTH", 2, argv, NULL);
	}
	if (c->redis_db != 0) {
		snprintf(db, sizeof(db), "%u", c->redis_db);
		argv[0] = "SELECT";
		argv[1] = db;
		rd_send(rd_setup_done, (void *)"SELECT", 2, argv, NULL);
	}
}

static void
rd_retry(evutil_socket_t fd, short ev, void *arg)
{
	if (rd.ac == NULL)
		rd_connect();
}

/* The counters' snapshot, and a Redis that stopped answering. */
static void
rd_tick(evutil_socket_t fd, short ev, void *arg)
{
	redisAsyncContext	*ac = rd.ac;
	int64_t			 now = now_ms();
	uint32_t		 every = rd.conf->stats_interval != 0 ?
				    rd.conf->stats_interval : REDIS_SNAP_MS;

	if (ac != NULL && ((rd.up && rd.st.inflight > 0 &&
	    now - rd.reply_ms > RD_STUCK_MS) ||
	    (!rd.up && now - rd.connect_ms > RD_STUCK_MS))) {
		rd.st.timeouts++;
		/* Ours now: its callbacks see rd.ac no more. */
		rd.ac = NULL;
		rd_lost(rd.up ? "no answer in 5 s" : "no connection in 5 s");
		redisAsyncFree(ac);
		rd.st.inflight = 0;
	}
	if (rd.up && now - rd.snap_ms >= every) {
		rd.snap_ms = now;
		rd_mark_all(RD_COUNTERS);
	}
}

/* A session's event: what to write, or delete. */
void
redis_event(const struct session_event *ev)
{
	const struct session_snapshot	*sn = &ev->snap;
	struct rd_del			*d;
	struct rd_slot			*r;

	if (rd.conf == NULL || sn->slot >= rd.nslots)
		return;
	r = &rd.s[sn->slot];
	switch (ev->type) {
	case SEV_CREATED:
		r->gen = sn->slot_gen;
		r->sent = 0;
		r->dirty = 0;
		r->fresh = !rd.restoring;
		rd_mark(sn->slot, sn->slot_gen, RD_FULL);
		break;
	case SEV_STATE_CHANGED:
	case SEV_ERROR:
	case SEV_RELATCHED:
		rd_mark(sn->slot, sn->slot_gen, RD_FULL);
		break;
	case SEV_STATS_UPDATE:
		rd_mark(sn->slot, sn->slot_gen, RD_COUNTERS);
		break;
	case SEV_CLOSED:
		if (r->gen == sn->slot_gen) {
			r->dirty = 0;
			if (r->fresh && !r->sent)
				break;	/* never written: nothing to delete */
			r->sent = 0;
		}
		if (rd.ndels >= RD_MAX_DELS) {
			rd.st.dropped++;
			log_warnx("redis: %u deletes wait already: session %s "
			    "stays in Redis", rd.ndels, sn->id);
			break;
		}
		d = xcalloc(1, sizeof(*d));
		memcpy(d->id, sn->id, sizeof(d->id));
		d->inc = sn->repl_inc;
		d->epoch = sn->repl_epoch;
		TAILQ_INSERT_TAIL(&rd.dels, d, entry);
		rd.ndels++;
		rd_flush_soon();
		break;
	default:
		break;
	}
}

void
redis_get_stats(struct redis_stats *st)
{
	*st = rd.st;
	st->pending = rd.qlen + rd.ndels;
}

const char *
redis_node(void)
{
	return rd.node;
}

/* --- restoring a lone node's sessions on start --------------------------- */

static void
rd_skip(const char *id, const char *fmt, const char *why)
{
	rd.st.skipped++;
	log_warnx("redis: session %.64s not restored: %s%s", id, fmt, why);
}

static void
rd_params(struct session_params *p, struct session_resume *res,
    const struct redis_rec *r)
{
	memset(p, 0, sizeof(*p));
	memset(res, 0, sizeof(*res));
	memcpy(p->id, r->id, sizeof(p->id));
	shm_addr_to_sa(&r->listen, &p->listen);
	shm_addr_to_sa(&r->forward, &p->forward);
	shm_addr_to_sa(&r->dest, &p->dest);
	p->tcp = (r->flags & SHM_F_TCP) != 0;
	p->unidirectional = (r->flags & SHM_F_UNIDIR) != 0;
	p->disable_rtcp = (r->flags & SHM_F_NORTCP) != 0 && !p->tcp;
	p->idle_timeout_s = (r->flags & SHM_F_IDLE_DEF) ? 0 :
	    r->idle_timeout_s;
	p->stats_interval_ms = r->stats_interval_ms;
	p->clock_rate = r->clock_rate;
	p->reverse_source = (r->flags & SHM_F_SRC_PORT) ?
	    CONF_RS_ADDRESS_PORT : (r->flags & SHM_F_SRC_ADDR) ?
	    CONF_RS_ADDRESS : CONF_RS_ANY;
	p->rate_pps = r->rate_pps;
	p->rate_bps = r->rate_bps;
	p->latch_policy = (int)r->latch_policy;
	p->repl_inc = r->inc;
	p->repl_epoch = r->epoch;
	res->latched = r->latched;
	res->latched_rtcp = r->latched_rtcp;
	res->relatches = r->relatches;
	res->c[0] = r->c[0];
	res->c[1] = r->c[1];
	p->resume = res;
}

/* HGETALL of one id of our set: the session again, or why not. */
static void
rd_restore_one(redisAsyncContext *ac, void *arg, void *priv)
{
	redisReply		*reply = arg;
	char			*id = priv;
	struct redis_rec	*rec;
	struct session_params	 p;
	struct session_resume	 res;
	struct rp_error		 err;
	const char		*kv[2 * REDIS_REC_FIELDS + 16];
	size_t			 kvlen[2 * REDIS_REC_FIELDS + 16], i;
	char			 why[160];

	rd_reply_common(ac, reply);
	rd.restore_wait--;
	if (reply == NULL)
		rd.restore = 1;		/* again at the next connection */
	else if (session_lookup(id) != -1)
		;			/* restored at an earlier try */
	else if (reply->type != REDIS_REPLY_ARRAY)
		rd_skip(id, "not a hash: ", reply->type == REDIS_REPLY_ERROR ?
		    reply->str : "another type");
	else if (reply->elements == 0)
		rd_skip(id, "", "no record (stale in the node's set)");
	else if (reply->elements > sizeof(kv) / sizeof(kv[0]))
		rd_skip(id, "", "too many fields");
	else {
		for (i = 0; i < reply->elements; i++) {
			if (reply->element[i]->type != REDIS_REPLY_STRING)
				break;
			kv[i] = reply->element[i]->str;
			kvlen[i] = reply->element[i]->len;
		}
		rec = xmalloc(sizeof(*rec));
		if (i < reply->elements)
			rd_skip(id, "", "a field that is not a string");
		else if (redis_rec_parse(rec, reply->elements, kv, kvlen, why,
		    sizeof(why)) == -1)
			rd_skip(id, "", why);
		else if (strcmp(rec->id, id) != 0)
			rd_skip(id, "", "the record is of another id");
		else if (strcmp(rec->node, rd.node) != 0) {
			snprintf(why, sizeof(why), "node %s owns it now "
			    "(epoch %u)", rec->node, rec->epoch);
			rd_skip(id, "", why);
		} else {
			rd_params(&p, &res, rec);
			rd.restoring = 1;
			if (session_create(&p, NULL, &err) == -1)
				rd_skip(id, "left in Redis: ", err.msg);
			else {
				rd.st.restored++;
				log_info("redis: session %s restored (epoch %u)",
				    id, rec->epoch);
			}
			rd.restoring = 0;
		}
		free(rec);
	}
	free(id);
	if (rd.restore_wait == 0 && !rd.restore)
		log_notice("redis: %llu sessions restored, %llu skipped",
		    (unsigned long long)rd.st.restored,
		    (unsigned long long)rd.st.skipped);
}

/* SMEMBERS of our node's set: each of its records. */
static void
rd_restore_ids(redisAsyncContext *ac, void *arg, void *priv)
{
	redisReply	*reply = arg;
	char		 key[RD_KEY_MAX], *id;
	const char	*argv[2];
	size_t		 i;

	rd_reply_common(ac, reply);
	if (reply == NULL)
		return;		/* again at the next connection */
	rd.restore = 0;
	if (reply->type != REDIS_REPLY_ARRAY) {
		log_warnx("redis: the set of node %s: %s; nothing restored",
		    rd.node, reply->type == REDIS_REPLY_ERROR ? reply->str :
		    "not a set");
		return;
	}
	log_info("redis: restoring %zu sessions of node %s",
	    reply->elements, rd.node);
	for (i = 0; i < reply->elements; i++) {
		if (reply->element[i]->type != REDIS_REPLY_STRING ||
		    reply->element[i]->len == 0 ||
		    reply->element[i]->len >= SHM_ID_MAX ||
		    memchr(reply->element[i]->str, '\0',
		    reply->element[i]->len) != NULL) {
			rd_skip("?", "", "an id in the node's set that is not "
			    "one");
			continue;
		}
		rd_key(key, sizeof(key), "session", reply->element[i]->str);
		argv[0] = "HGETALL";
		argv[1] = key;
		id = xstrdup(reply->element[i]->str);
		if (rd_send(rd_restore_one, id, 2, argv, NULL) == 0)
			rd.restore_wait++;
		else
			free(id);
	}
}

static void
rd_restore_begin(void)
{
	char		 set[RD_KEY_MAX];
	const char	*argv[2];

	rd_key(set, sizeof(set), "node", rd.node);
	argv[0] = "SMEMBERS";
	argv[1] = set;
	rd_send(rd_restore_ids, NULL, 2, argv, NULL);
}

int
redis_start(struct event_base *base, const struct config *c,
    uint32_t nslots, int restore)
{
	struct timeval tick = { 0, RD_TICK_MS * 1000 };

	if (c->redis == NULL)
		return 0;
	memset(&rd, 0, sizeof(rd));
	rd.base = base;
	rd.conf = c;
	rd.st.configured = 1;
	if (c->node_id != NULL)
		snprintf(rd.node, sizeof(rd.node), "%s", c->node_id);
	else if (gethostname(rd.node, sizeof(rd.node)) == -1 ||
	    rd.node[0] == '\0') {
		log_warnx("redis: no node-id and no host name");
		return -1;
	}
	rd.node[sizeof(rd.node) - 1] = '\0';
	rd.nslots = nslots;
	rd.s = xcalloc(nslots, sizeof(*rd.s));
	rd.queue = xcalloc(nslots, sizeof(*rd.queue));
	TAILQ_INIT(&rd.dels);
	rd.backoff_ms = RD_BACKOFF_MIN;
	/* An adopted table has the sessions already, and newer. */
	rd.restore = restore;
	rd.flush_ev = evtimer_new(base, rd_flush, NULL);
	rd.retry_ev = evtimer_new(base, rd_retry, NULL);
	rd.tick_ev = event_new(base, -1, EV_PERSIST, rd_tick, NULL);
	if (rd.flush_ev == NULL || rd.retry_ev == NULL || rd.tick_ev == NULL)
		fatalx("redis: event_new");
	event_add(rd.tick_ev, &tick);
	log_info("redis %s: node %s, key prefix %s, database %u",
	    c->redis, rd.node, c->redis_prefix, c->redis_db);
	rd.was_up = 1;		/* the first failure is worth a warning */
	rd_connect();
	return 0;
}

void
redis_stop(void)
{
	struct rd_del		*d;
	redisAsyncContext	*ac = rd.ac;

	if (rd.conf == NULL)
		return;
	if (rd.ndels > 0 || rd.qlen > 0)
		log_notice("redis: stopping with %u sessions and %u deletes "
		    "not written", rd.qlen, rd.ndels);
	rd.ac = NULL;
	if (ac != NULL)
		redisAsyncFree(ac);
	while ((d = TAILQ_FIRST(&rd.dels)) != NULL) {
		TAILQ_REMOVE(&rd.dels, d, entry);
		free(d);
	}
	event_free(rd.flush_ev);
	event_free(rd.retry_ev);
	event_free(rd.tick_ev);
	free(rd.s);
	free(rd.queue);
	memset(&rd, 0, sizeof(rd));
}
