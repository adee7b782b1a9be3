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

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "repl_int.h"
#include "sessions.h"

#define RD_FLUSH_MS	10	/* a batch goes at most this late */
#define RD_BATCH	512	/* sessions written per batch */
#define RD_INFLIGHT	4096	/* commands sent and not answered */
#define RD_MAX_DELS	(1U << 20)	/* deletes waiting for Redis */

/* A write's slot and generation, in its callback's pointer. */
#if UINTPTR_MAX > 0xffffffffu
#define RD_GEN_MASK	0xffffffffu
#define RD_ARG(s, g)	((void *)(((uintptr_t)(s) << 32) | (g)))
#define RD_ARG_SLOT(a)	((uint32_t)((uintptr_t)(a) >> 32))
#else
#define RD_GEN_MASK	0x3ffu		/* 22 bits of slot, 10 of gen */
#define RD_ARG(s, g)	((void *)(((uintptr_t)(s) << 10) | ((g) & 0x3ff)))
#define RD_ARG_SLOT(a)	((uint32_t)((uintptr_t)(a) >> 10))
#endif
#define RD_ARG_GEN(a)	((uint32_t)((uintptr_t)(a) & RD_GEN_MASK))

#define RD_FULL		0x01	/* everything: the record afresh */
#define RD_COUNTERS	0x02	/* the counters' snapshot */

struct rd_slot {
	uint32_t	gen;		/* the slot's generation marked */
	uint8_t		dirty;		/* RD_* */
	uint8_t		queued;		/* in rd.queue */
	uint8_t		sent;		/* a full record went for gen */
	uint8_t		fresh;		/* made here: no record before */
};

struct rd_del {
	TAILQ_ENTRY(rd_del)	 entry;
	char			 id[SHM_ID_MAX];
	uint32_t		 epoch;
};

/*
 * Writes and deletes are scripts, so that one is never undone by a late
 * other: a connection given up on (Redis stopped, not dead) may still
 * have commands in Redis's socket, which Redis runs when it wakes, maybe
 * after those of the next connection.  Each connection has a number
 * (rc.cgen, larger than the last one's), which its scripts leave in the
 * node's key PREFIXconn:NODE; a script of an older connection finds a
 * larger one there and does nothing.  Neither touches a record of a
 * higher epoch: another node owns the session now (fencing).  A
 * counters' write (ARGV[4] "0") does not make a record that is gone.
 * A full write and a delete say so on the node's channel (a write: "+ID
 * FLAGS LISTEN-ADDRESS PORT FORWARD-ADDRESS PORT", rd_announce's; a
 * delete: "-ID"), so that a standby's mirror follows them and can bind
 * their ports in advance (redis_mirror.c); a counters' write does not
 * (once a second for every session: the mirror has no use for it).
 *
 * KEYS: the record, the node's connection key, the node's set.
 * ARGV: connection number, epoch, id, full, the node's channel; then the
 * announce and the fields and values (a write).
 */
#define RD_LUA_CONN							\
    "local g = redis.call('get', KEYS[2])\n"				\
    "if g and tonumber(g) > tonumber(ARGV[1]) then return 0 end\n"	\
    "if g ~= ARGV[1] then redis.call('set', KEYS[2], ARGV[1]) end\n"	\
    "local e = redis.call('hget', KEYS[1], 'epoch')\n"		\
    "if e and tonumber(e) > tonumber(ARGV[2]) then return -1 end\n"
static const char rd_write_lua[] = RD_LUA_CONN
    "if ARGV[4] == '0' and not e then return 0 end\n"
    "redis.call('hset', KEYS[1], unpack(ARGV, 7))\n"
    "if ARGV[4] == '1' then\n"
    "	redis.call('sadd', KEYS[3], ARGV[3])\n"
    "	redis.call('publish', ARGV[5], ARGV[6])\n"
    "end\n"
    "return 1\n";
static const char rd_del_lua[] = RD_LUA_CONN
    "redis.call('del', KEYS[1])\n"
    "redis.call('srem', KEYS[3], ARGV[3])\n"
    "redis.call('publish', ARGV[5], '-' .. ARGV[3])\n"
    "return 1\n";
TAILQ_HEAD(rd_dels, rd_del);

static struct {
	int			 on;
	void			(*final)(void);	/* stopping: when all is said */
	struct event		*final_ev;
	struct rd_slot		*s;
	uint32_t		 nslots;
	uint32_t		*queue;		/* ring of slots to write */
	uint32_t		 qhead, qlen;
	struct rd_dels		 dels;
	uint32_t		 ndels;
	struct event		*flush_ev;
	int64_t			 snap_ms;	/* the last counters' pass */
} rd;

static void	rd_flush_soon(void);
static void	rd_flush(evutil_socket_t, short, void *);

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

/*
 * A write refused because another node owns the session with a higher
 * epoch (it took it over while we could not see Redis, or it): this
 * node stops relaying it, so that media never goes two ways.
 */
/* Stopping: the master goes on once Redis has answered all, or not. */
static void
rd_final_check(int force)
{
	void (*fn)(void) = rd.final;

	if (fn == NULL || (!force && rc.up && (rc.st.inflight > 0 ||
	    rd.qlen > 0 || !TAILQ_EMPTY(&rd.dels))))
		return;
	rd.final = NULL;
	evtimer_del(rd.final_ev);
	fn();
}

static void
rd_final_timeout(evutil_socket_t fd, short ev, void *arg)
{
	rd_final_check(1);
}

/*
 * A stopping master has closed its sessions: their deletes go at once,
 * and done is called when Redis has confirmed them (or at once, with no
 * Redis), at most ms later; else a restart would bring them back.
 */
void
redis_drain(void (*done)(void), int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (!rd.on) {
		done();
		return;
	}
	rd.final = done;
	if (evtimer_pending(rd.flush_ev, NULL)) {
		evtimer_del(rd.flush_ev);
		rd_flush(-1, 0, NULL);
	}
	evtimer_add(rd.final_ev, &tv);
	rd_final_check(0);
}

static void
rd_write_done(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply		*reply = r;
	uint32_t		 slot = RD_ARG_SLOT(arg);
	uint32_t		 gen = RD_ARG_GEN(arg);
	struct session_snapshot	 snap;
	struct rp_error		 err;

	rc_reply(reply);
	rd_final_check(0);
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER ||
	    reply->integer != -1 || slot >= rd.nslots || rd.final != NULL)
		return;
	session_snapshot(slot, &snap);
	if ((snap.slot_gen & RD_GEN_MASK) != gen || snap.state == SHM_FREE ||
	    snap.state == SHM_CLOSED)
		return;
	rc.st.fenced++;
	log_warnx("redis: session %s is owned by another node with a higher "
	    "epoch now: closing it here", snap.id);
	(void)session_destroy(snap.id, NULL, &err);
}

/* A delete is done when Redis says so; lost on the way, it goes again. */
static void
rd_del_done(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply	*reply = r;
	struct rd_del	*d = arg;

	rc_reply(reply);
	rd_final_check(0);
	if (reply != NULL && reply->type != REDIS_REPLY_ERROR) {
		free(d);
		rd.ndels--;
		rc.st.deletes++;
		return;
	}
	TAILQ_INSERT_HEAD(&rd.dels, d, entry);
	rd_flush_soon();
}

static void
rd_keys(char key[][RC_KEY_MAX], const char *id)
{
	rc_key(key[0], RC_KEY_MAX, "session", id);
	rc_key(key[1], RC_KEY_MAX, "conn", rc.node);
	rc_key(key[2], RC_KEY_MAX, "node", rc.node);
}

static int
rd_send_del(struct rd_del *d)
{
	char		 key[3][RC_KEY_MAX], inc[20], epoch[12];
	char		 chan[RC_KEY_MAX];
	const char	*argv[11];

	rd_keys(key, d->id);
	rc_key(chan, sizeof(chan), "chan", rc.node);
	snprintf(inc, sizeof(inc), "%llu", (unsigned long long)rc.cgen);
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
	argv[9] = "1";
	argv[10] = chan;
	return rc_send(rd_del_done, d, 11, argv);
}

static unsigned int
rd_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ?
	    ((const struct sockaddr_in *)ss)->sin_port :
	    ((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* A full write's message to the standbys: see rd_write_lua. */
static void
rd_announce(char *buf, size_t len, const struct session_snapshot *sn)
{
	struct sockaddr_storage	l, f;
	char			la[INET6_ADDRSTRLEN], fa[INET6_ADDRSTRLEN];

	shm_addr_to_sa(&sn->listen, &l);
	shm_addr_to_sa(&sn->forward, &f);
	if (l.ss_family != f.ss_family || (l.ss_family != AF_INET &&
	    l.ss_family != AF_INET6) ||
	    inet_ntop(l.ss_family, l.ss_family == AF_INET ?
	    (void *)&((struct sockaddr_in *)&l)->sin_addr :
	    (void *)&((struct sockaddr_in6 *)&l)->sin6_addr, la,
	    sizeof(la)) == NULL ||
	    inet_ntop(f.ss_family, f.ss_family == AF_INET ?
	    (void *)&((struct sockaddr_in *)&f)->sin_addr :
	    (void *)&((struct sockaddr_in6 *)&f)->sin6_addr, fa,
	    sizeof(fa)) == NULL) {
		snprintf(buf, len, "+%s", sn->id);
		return;
	}
	snprintf(buf, len, "+%s %c %s %u %s %u", sn->id,
	    (sn->flags & SHM_F_TCP) ? 't' : (sn->flags & SHM_F_NORTCP) ?
	    'u' : 'r', la, rd_port(&l), fa, rd_port(&f));
}

/* Slot i as marked; 0, or -1 when hiredis cannot take more. */
static int
rd_send_slot(uint32_t i)
{
	struct rd_slot		*r = &rd.s[i];
	struct session_snapshot	 snap;
	struct redis_rec	 rec;
	char			 key[3][RC_KEY_MAX], inc[20], epoch[12];
	char			 chan[RC_KEY_MAX];
	char			 ann[SHM_ID_MAX + 2 * INET6_ADDRSTRLEN + 24];
	const char		*argv[12 + 2 * REDIS_REC_FIELDS];
	int			 argc, full = (r->dirty & RD_FULL) != 0;

	session_snapshot(i, &snap);
	if (snap.slot_gen != r->gen || snap.state == SHM_FREE ||
	    snap.state == SHM_CLOSED || snap.id[0] == '\0') {
		r->dirty = 0;
		return 0;
	}
	redis_rec_from_snap(&rec, &snap, rc.node, snap.repl_inc,
	    snap.repl_epoch, now_ms());
	rd_keys(key, snap.id);
	snprintf(inc, sizeof(inc), "%llu", (unsigned long long)rc.cgen);
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
	rc_key(chan, sizeof(chan), "chan", rc.node);
	argv[10] = chan;
	rd_announce(ann, sizeof(ann), &snap);
	argv[11] = ann;
	argc = 12 + redis_rec_argv(&rec, argv + 12, full ? REDIS_REC_ALL :
	    REDIS_REC_COUNTERS);
	if (rc_send(rd_write_done, RD_ARG(i, r->gen), argc, argv) == -1)
		return -1;
	rc.st.writes++;
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

	if (!rc.up)
		return;
	/* Deletes first: an id used again is written after its delete. */
	while ((d = TAILQ_FIRST(&rd.dels)) != NULL &&
	    rc.st.inflight < RD_INFLIGHT) {
		TAILQ_REMOVE(&rd.dels, d, entry);
		if (rd_send_del(d) == -1) {
			TAILQ_INSERT_HEAD(&rd.dels, d, entry);
			return;
		}
	}
	while (rd.qlen > 0 && n < RD_BATCH && rc.st.inflight < RD_INFLIGHT) {
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

	if (rc.up && !evtimer_pending(rd.flush_ev, NULL))
		evtimer_add(rd.flush_ev, &tv);
}

/* Connected (again): every session, and the restore if one is due. */
static void
rd_up(void)
{
	rd_mark_all(RD_FULL);
	resume_up();
	rd_flush_soon();
}

/* The counters' snapshot, every stats-interval (or REDIS_SNAP_MS). */
static void
rd_tick(int64_t now)
{
	uint32_t every = rc.conf->stats_interval != 0 ?
	    rc.conf->stats_interval : REDIS_SNAP_MS;

	if (rc.up && now - rd.snap_ms >= every) {
		rd.snap_ms = now;
		rd_mark_all(RD_COUNTERS);
	}
	resume_tick(now);
	mirror_tick();
}

/* A session's event: what to write, or delete. */
void
redis_event(const struct session_event *ev)
{
	const struct session_snapshot	*sn = &ev->snap;
	struct rd_del			*d;
	struct rd_slot			*r;

	if (!rd.on || sn->slot >= rd.nslots)
		return;
	r = &rd.s[sn->slot];
	switch (ev->type) {
	case SEV_CREATED:
		r->gen = sn->slot_gen;
		r->sent = 0;
		r->dirty = 0;
		r->fresh = !(sn->flags & SHM_F_RESUMED);
		rd_mark(sn->slot, sn->slot_gen, RD_FULL);
		break;
	case SEV_STATE_CHANGED:
	case SEV_ERROR:
	case SEV_RELATCHED:
	case SEV_UPDATED:	/* UpdateSession: a new destination, flags */
		rd_mark(sn->slot, sn->slot_gen, RD_FULL);
		break;
	case SEV_STATS_UPDATE:
	case SEV_RECORDING:	/* a part begun: its count, without delay */
		rd_mark(sn->slot, sn->slot_gen, RD_COUNTERS);
		break;
	case SEV_CLOSED:
		/*
		 * Nothing to delete for a session made here and never
		 * written; but a resumed one, or one of an adopted table,
		 * has a record that others wrote.
		 */
		if (r->gen == sn->slot_gen) {
			r->dirty = 0;
			if (r->fresh && !r->sent)
				break;
			r->sent = 0;
		}
		if (rd.ndels >= RD_MAX_DELS) {
			rc.st.dropped++;
			log_warnx("redis: %u deletes wait already: session %s "
			    "stays in Redis", rd.ndels, sn->id);
			break;
		}
		d = xcalloc(1, sizeof(*d));
		memcpy(d->id, sn->id, sizeof(d->id));
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
	*st = rc.st;
	st->pending = rd.qlen + rd.ndels;
}

const char *
redis_node(void)
{
	return rc.node;
}

int
redis_start(struct event_base *base, const struct config *c,
    uint32_t nslots, int restore)
{
	static const struct rc_ops ops = { rd_up, rd_tick };

	if (c->redis == NULL)
		return 0;
	memset(&rd, 0, sizeof(rd));
	rd.nslots = nslots;
	rd.s = xcalloc(nslots, sizeof(*rd.s));
	rd.queue = xcalloc(nslots, sizeof(*rd.queue));
	TAILQ_INIT(&rd.dels);
	if ((rd.flush_ev = evtimer_new(base, rd_flush, NULL)) == NULL ||
	    (rd.final_ev = evtimer_new(base, rd_final_timeout, NULL)) == NULL)
		fatalx("redis: evtimer_new");
	rd.on = 1;
	/* An adopted table has the sessions already, and newer. */
	resume_init(restore);
	if (rc_start(base, c, &ops) == -1)
		return -1;
	float_start();
	mirror_start();
	return 0;
}

void
redis_stop(void)
{
	struct rd_del *d;

	if (!rd.on)
		return;
	if (rd.ndels > 0 || rd.qlen > 0)
		log_notice("redis: stopping with %u sessions and %u deletes "
		    "not written", rd.qlen, rd.ndels);
	float_stop();
	mirror_stop();
	rc_stop();
	resume_stop();
	while ((d = TAILQ_FIRST(&rd.dels)) != NULL) {
		TAILQ_REMOVE(&rd.dels, d, entry);
		free(d);
	}
	event_free(rd.flush_ev);
	event_free(rd.final_ev);
	free(rd.s);
	free(rd.queue);
	memset(&rd, 0, sizeof(rd));
}
