/*
 * Sessions made again from their records in Redis: a lone node's own
 * when it starts without a table (rs.restore), and another node's when
 * this one takes it over (redis_takeover).  What comes from Redis comes
 * from outside: a record is parsed field by field (redis_rec_parse), and
 * the session goes through the checks of an API call (session_create);
 * what cannot be used is logged, counted and left in Redis.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "api.h"
#include "repl_int.h"
#include "sessions.h"

/*
 * A takeover's claim: the record passes from the old owner to us with
 * the next epoch, only if the old owner still has it with the epoch we
 * read (another standby may be quicker), and its id from the old node's
 * set to ours.
 *
 * Both nodes' channels hear of it (a standby's mirror, redis_mirror.c).
 *
 * KEYS: the record, the old node's set, ours.
 * ARGV: old node, its epoch, our node, our epoch, id, the old node's
 * channel, ours.
 */
static const char rs_claim_lua[] =
    "if redis.call('hget', KEYS[1], 'node') ~= ARGV[1] or\n"
    "    redis.call('hget', KEYS[1], 'epoch') ~= ARGV[2] then\n"
    "	return 0\n"
    "end\n"
    "redis.call('hset', KEYS[1], 'node', ARGV[3], 'epoch', ARGV[4])\n"
    "redis.call('srem', KEYS[2], ARGV[5])\n"
    "redis.call('sadd', KEYS[3], ARGV[5])\n"
    "redis.call('publish', ARGV[6], '-' .. ARGV[5])\n"
    "redis.call('publish', ARGV[7], '+' .. ARGV[5])\n"
    "return 1\n";

/* One record on its way: a restore's or a takeover's. */
struct rs_req {
	int			 take;		/* 0: restore */
	char			 id[SHM_ID_MAX];
	struct redis_rec	 rec;
	/* the standby's sockets bound in advance (redis_mirror.c) */
	int			 has_pre;
	int			 pre[4];
	struct sockaddr_storage	 pl, pf;	/* where */
};

static void
rs_free(struct rs_req *q)
{
	int i;

	if (q->has_pre)
		for (i = 0; i < 4; i++)
			if (q->pre[i] != -1)
				close(q->pre[i]);
	free(q);
}

static int
rs_same(const struct shm_addr *a, const struct sockaddr_storage *b)
{
	struct sockaddr_storage	s;

	shm_addr_to_sa(a, &s);
	if (s.ss_family != b->ss_family)
		return 0;
	if (s.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)&s;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;

		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	return s.ss_family == AF_INET6 &&
	    ((const struct sockaddr_in6 *)&s)->sin6_port ==
	    ((const struct sockaddr_in6 *)b)->sin6_port &&
	    memcmp(&((const struct sockaddr_in6 *)&s)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr,
	    sizeof(struct in6_addr)) == 0;
}

static struct {
	int		restore;	/* to do, once connected */
	uint32_t	wait;		/* records asked for, restore */
	char		take[CONF_NODE_MAX];	/* "": no takeover running */
	uint32_t	take_wait;
	struct api_ha_take t;		/* its outcome so far */
	/* who waits for the answer: NULL, none (or no more) */
	void		(*take_done)(void *, const struct api_ha_take *);
	void		*take_arg;
	int64_t		take_until;	/* then answered, still running */
} rs;

/* Why a takeover did not resume a session. */
enum rs_why {
	RS_OWNED,	/* skipped: another node owns it */
	RS_RUNNING,	/* skipped: a session of that id runs here */
	RS_INVALID,	/* skipped: no record, or an unusable one */
	RS_FAILED	/* to take, but Redis or this node failed */
};

static void
rs_skip(const char *id, const char *what, const char *why)
{
	rc.st.skipped++;
	log_warnx("redis: session %.64s not %s: %s", id, what, why);
}

/* A takeover's session not resumed: counted by why, and logged. */
static void
rs_tskip(const char *id, enum rs_why w, const char *why)
{
	switch (w) {
	case RS_OWNED:
		rs.t.owned++;
		break;
	case RS_RUNNING:
		rs.t.running++;
		break;
	case RS_INVALID:
		rs.t.invalid++;
		break;
	case RS_FAILED:
		rs.t.failed++;
		break;
	}
	if (w != RS_FAILED)
		rs.t.skipped++;
	rs_skip(id, "resumed", why);
}

/* The takeover's answer to whom waits for it: once. */
static void
rs_answer(const struct rp_error *err)
{
	void	(*done)(void *, const struct api_ha_take *) = rs.take_done;

	if (done == NULL)
		return;
	rs.take_done = NULL;
	rs.t.err = err;
	rs.t.node = rs.take;
	done(rs.take_arg, &rs.t);
	rs.t.err = NULL;
}

static void
rs_params(struct session_params *p, struct session_resume *res,
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
	p->dtmf_pt = r->dtmf_pt;
	p->drop_dtmf = (r->flags & SHM_F_DROP_DTMF) != 0 && !p->tcp;
	/* Recording goes on in a new part: rs_create, recording-dir. */
	p->record = (r->flags & SHM_F_RECORD) != 0 && !p->tcp;
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
	res->rec_parts = r->rec_parts;
	res->c[0] = r->c[0];
	res->c[1] = r->c[1];
	p->resume = res;
}

static void
rs_done(int take)
{
	if (!take && rs.wait == 0 && !rs.restore)
		log_notice("redis: %llu sessions restored, %llu skipped",
		    (unsigned long long)rc.st.restored,
		    (unsigned long long)rc.st.skipped);
	if (take && rs.take_wait == 0 && rs.take[0] != '\0') {
		log_notice("redis: takeover of node %s done: %u sessions "
		    "resumed, %u skipped, %u failed", rs.take, rs.t.resumed,
		    rs.t.skipped, rs.t.failed);
		rs_answer(NULL);
		rs.take[0] = '\0';
	}
}

/* Make the session of rec here; 0, or -1 (logged). */
static int
rs_create(const struct redis_rec *rec, uint32_t epoch, const char *what,
    const int *pre)
{
	struct session_params	p;
	struct session_resume	res;
	struct rp_error		err;
	char			why[320];
	int			norec = 0;

	rs_params(&p, &res, rec);
	p.repl_epoch = epoch;
	p.prebound = pre;
	/*
	 * The media matters more than its recording: a node without a
	 * recording-dir resumes the session unrecorded, and says so.
	 */
	if (p.record && (rc.conf->recording_dir == NULL ||
	    rc.conf->recording_dir[0] == '\0')) {
		p.record = 0;
		norec = 1;
	}
	if (session_create(&p, NULL, &err) == -1) {
		snprintf(why, sizeof(why), "%s (left in Redis)", err.msg);
		rs_skip(rec->id, what, why);
		return -1;
	}
	log_info("redis: session %s %s (epoch %u)%s", rec->id, what, epoch,
	    pre != NULL ? " on its sockets bound in advance" : "");
	if (norec)
		log_warnx("redis: session %s %s without its recording: no "
		    "recording-dir is configured on this node", rec->id, what);
	return 0;
}

static void
rs_claimed(redisAsyncContext *ac, void *arg, void *priv)
{
	redisReply	*reply = arg;
	struct rs_req	*q = priv;

	rc_reply(reply);
	rs.take_wait--;
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER)
		rs_tskip(q->id, RS_FAILED, "the claim failed");
	else if (reply->integer != 1)
		rs_tskip(q->id, RS_OWNED, "taken or changed by another node "
		    "meanwhile");
	else if (rs_create(&q->rec, q->rec.epoch + 1, "resumed",
	    q->has_pre && !(q->rec.flags & SHM_F_TCP) &&
	    rs_same(&q->rec.listen, &q->pl) &&
	    rs_same(&q->rec.forward, &q->pf) ? q->pre : NULL) == -1)
		rs.t.failed++;
	else {
		rs.t.resumed++;
		rc.st.resumed++;
	}
	rs_free(q);
	rs_done(1);
}

static int
rs_claim(struct rs_req *q)
{
	char		 key[3][RC_KEY_MAX], old[12], new[12];
	char		 chan[2][RC_KEY_MAX];
	const char	*argv[13];

	rc_key(key[0], RC_KEY_MAX, "session", q->id);
	rc_key(key[1], RC_KEY_MAX, "node", q->rec.node);
	rc_key(key[2], RC_KEY_MAX, "node", rc.node);
	snprintf(old, sizeof(old), "%u", q->rec.epoch);
	snprintf(new, sizeof(new), "%u", q->rec.epoch + 1);
	argv[0] = "EVAL";
	argv[1] = rs_claim_lua;
	argv[2] = "3";
	argv[3] = key[0];
	argv[4] = key[1];
	argv[5] = key[2];
	argv[6] = q->rec.node;
	argv[7] = old;
	argv[8] = rc.node;
	argv[9] = new;
	argv[10] = q->id;
	rc_key(chan[0], RC_KEY_MAX, "chan", q->rec.node);
	rc_key(chan[1], RC_KEY_MAX, "chan", rc.node);
	argv[11] = chan[0];
	argv[12] = chan[1];
	if (rc_send(rs_claimed, q, 13, argv) == -1)
		return -1;
	rs.take_wait++;
	return 0;
}

/* A record not used: a takeover's counted by why. */
static void
rs_rskip(const struct rs_req *q, enum rs_why w, const char *why)
{
	if (q->take)
		rs_tskip(q->id, w, why);
	else
		rs_skip(q->id, "restored", why);
}

/* HGETALL of one id: parsed, then made again (restore) or claimed. */
static void
rs_record(redisAsyncContext *ac, void *arg, void *priv)
{
	redisReply	*reply = arg;
	struct rs_req	*q = priv;
	const char	*kv[2 * REDIS_REC_FIELDS + 16];
	const char	*owner = q->take ? rs.take : rc.node;
	size_t		 kvlen[2 * REDIS_REC_FIELDS + 16], i;
	char		 why[160];

	rc_reply(reply);
	if (q->take)
		rs.take_wait--;
	else
		rs.wait--;
	if (reply == NULL) {
		if (!q->take)
			rs.restore = 1;	/* again at the next connection */
		else
			rs_tskip(q->id, RS_FAILED, "Redis went away");
		goto done;
	}
	if (session_lookup(q->id) != -1) {
		if (q->take)
			rs_tskip(q->id, RS_RUNNING, "a session of that id "
			    "runs here");
		goto done;	/* a restore's earlier try made it */
	}
	if (reply->type != REDIS_REPLY_ARRAY) {
		snprintf(why, sizeof(why), "not a hash%s%.120s",
		    reply->type == REDIS_REPLY_ERROR ? ": " : "",
		    reply->type == REDIS_REPLY_ERROR ? reply->str : "");
		rs_rskip(q, RS_INVALID, why);
		goto done;
	}
	if (reply->elements == 0) {
		rs_rskip(q, RS_INVALID, "no record (stale in the node's set)");
		goto done;
	}
	if (reply->elements > sizeof(kv) / sizeof(kv[0])) {
		rs_rskip(q, RS_INVALID, "too many fields");
		goto done;
	}
	for (i = 0; i < reply->elements; i++) {
		if (reply->element[i]->type != REDIS_REPLY_STRING) {
			rs_rskip(q, RS_INVALID, "a field that is not a "
			    "string");
			goto done;
		}
		kv[i] = reply->element[i]->str;
		kvlen[i] = reply->element[i]->len;
	}
	if (redis_rec_parse(&q->rec, reply->elements, kv, kvlen, why,
	    sizeof(why)) == -1) {
		rs_rskip(q, RS_INVALID, why);
		goto done;
	}
	if (strcmp(q->rec.id, q->id) != 0) {
		rs_rskip(q, RS_INVALID, "the record is of another id");
		goto done;
	}
	if (strcmp(q->rec.node, owner) != 0) {
		/* Fencing: it has moved on, with a higher epoch. */
		snprintf(why, sizeof(why), "node %s owns it now (epoch %u)",
		    q->rec.node, q->rec.epoch);
		rs_rskip(q, RS_OWNED, why);
		goto done;
	}
	if (q->take) {
		if (q->rec.epoch == UINT32_MAX)
			rs_tskip(q->id, RS_FAILED, "epoch at its limit");
		else if (rs_claim(q) == 0)
			return;		/* q goes on */
		else
			rs_tskip(q->id, RS_FAILED, "Redis went away");
		goto done;
	}
	if (rs_create(&q->rec, q->rec.epoch, "restored", NULL) == 0)
		rc.st.restored++;
done:
	rs_done(q->take);
	rs_free(q);
}

/* An id of the node's set (or of the mirror): its record, asked for. */
static void
rs_want(int take, const char *s, size_t len)
{
	struct rs_req	*q;
	char		 key[RC_KEY_MAX];
	const char	*argv[2];

	if (len == 0 || len >= SHM_ID_MAX || memchr(s, '\0', len) != NULL) {
		if (take)
			rs_tskip("?", RS_INVALID, "an id in the node's set "
			    "that is not one");
		else
			rs_skip("?", "restored", "an id in the node's set "
			    "that is not one");
		return;
	}
	q = xcalloc(1, sizeof(*q));
	q->take = take;
	memcpy(q->id, s, len);
	/* Ours now: they are handed to the session, or closed with q. */
	if (take && mirror_take(rs.take, q->id, q->pre, &q->pl, &q->pf) == 0)
		q->has_pre = 1;
	rc_key(key, sizeof(key), "session", q->id);
	argv[0] = "HGETALL";
	argv[1] = key;
	if (rc_send(rs_record, q, 2, argv) == -1) {
		if (take)
			rs_tskip(q->id, RS_FAILED, "Redis went away");
		rs_free(q);
		return;
	}
	if (take)
		rs.take_wait++;
	else
		rs.wait++;
}

static void
rs_take_id(const char *id, void *arg)
{
	rs_want(1, id, strlen(id));
}

/* SMEMBERS of a node's set: each of its records. */
static void
rs_ids(redisAsyncContext *ac, void *arg, void *priv)
{
	redisReply	*reply = arg;
	struct rp_error	 err;
	const char	*node;
	int		 take = priv != NULL;
	size_t		 i;

	rc_reply(reply);
	node = take ? rs.take : rc.node;
	if (take)
		rs.take_wait--;
	if (reply == NULL) {
		if (take) {
			log_warnx("redis: takeover of node %s: Redis went "
			    "away; ask again", node);
			rp_err(&err, RP_UNAVAILABLE, "Redis went away before "
			    "the sessions of node %s were read: nothing taken "
			    "over; ask again", node);
			rs_answer(&err);
			rs.take[0] = '\0';
			return;
		}
		goto done;	/* a restore: again at the next connection */
	}
	if (!take)
		rs.restore = 0;
	if (reply->type != REDIS_REPLY_ARRAY) {
		log_warnx("redis: the set of node %s: %s; nothing %s", node,
		    reply->type == REDIS_REPLY_ERROR ? reply->str :
		    "not a set", take ? "taken over" : "restored");
		if (take) {
			rp_err(&err, RP_FAILED_PRECONDITION, "the set of node "
			    "%s in Redis: %.120s; nothing taken over", node,
			    reply->type == REDIS_REPLY_ERROR ? reply->str :
			    "not a set");
			rs_answer(&err);
		}
		goto done;
	}
	if (take)
		rs.t.found = reply->elements > UINT32_MAX ? UINT32_MAX :
		    (uint32_t)reply->elements;
	log_info("redis: %s %zu sessions of node %s", take ? "taking over" :
	    "restoring", reply->elements, node);
	for (i = 0; i < reply->elements; i++) {
		if (reply->element[i]->type != REDIS_REPLY_STRING)
			rs_want(take, "", 0);
		else
			rs_want(take, reply->element[i]->str,
			    reply->element[i]->len);
	}
done:
	rs_done(take);
}

static int
rs_members(const char *node, int take)
{
	char		 set[RC_KEY_MAX];
	const char	*argv[2];

	rc_key(set, sizeof(set), "node", node);
	argv[0] = "SMEMBERS";
	argv[1] = set;
	return rc_send(rs_ids, take ? (void *)1 : NULL, 2, argv);
}

/*
 * Take over the sessions of node: claimed one by one in Redis with the
 * next epoch, then made here.  The outcome is logged, counted, and
 * given to done(arg) when the takeover is over, or REDIS_TAKE_MS
 * later (DEADLINE_EXCEEDED; it goes on), or when the daemon stops; done
 * is always called once, unless this fails at once: -1 with err.
 */
int
redis_takeover(const char *node,
    void (*done)(void *, const struct api_ha_take *), void *arg,
    struct rp_error *err)
{
	size_t	i, len = strlen(node);
	int64_t	n;

	if (rc.conf == NULL)
		return rp_err(err, RP_FAILED_PRECONDITION, "redis is not "
		    "configured on this node");
	if (len == 0 || len >= CONF_NODE_MAX ||
	    strspn(node, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") != len)
		return rp_err(err, RP_INVALID_ARGUMENT, "node must be 1-%d of "
		    "A-Z a-z 0-9 . _ -", CONF_NODE_MAX - 1);
	if (strcmp(node, rc.node) == 0)
		return rp_err(err, RP_INVALID_ARGUMENT, "node %s is this node",
		    node);
	if (rs.take[0] != '\0')
		return rp_err(err, RP_FAILED_PRECONDITION, "a takeover of "
		    "node %s is running", rs.take);
	if (!rc.up)
		return rp_err(err, RP_UNAVAILABLE, "not connected to Redis");
	for (i = 0; i <= len; i++)
		rs.take[i] = node[i];
	memset(&rs.t, 0, sizeof(rs.t));
	rs.take_wait = 1;		/* ours, until all is asked */
	rs.take_done = done;
	rs.take_arg = arg;
	rs.take_until = now_ms() + REDIS_TAKE_MS;
	rc.st.takeovers++;
	/*
	 * A node this one mirrors: its ids are known, the records are read
	 * now (the mirror has no counters, and may be a moment behind).
	 */
	log_notice("redis: taking over the sessions of node %s", node);
	if ((n = mirror_ids(node, rs_take_id, NULL)) >= 0) {
		log_info("redis: taking over %lld sessions of node %s from "
		    "its mirror", (long long)n, node);
		rs.t.found = (uint32_t)n;
		rs.take_wait--;
		rs_done(1);
		return 0;
	}
	if (rs_members(node, 1) == -1) {
		rs.take[0] = '\0';
		rs.take_done = NULL;
		rs.take_wait = 0;
		rc.st.takeovers--;
		return rp_err(err, RP_UNAVAILABLE, "not connected to Redis");
	}
	return 0;
}

void
resume_init(int restore)
{
	memset(&rs, 0, sizeof(rs));
	rs.restore = restore;
}

/* Connected: the restore, if it is still due. */
void
resume_up(void)
{
	if (rs.restore && rs.wait == 0)
		(void)rs_members(rc.node, 0);
}

/* A takeover's answer that has waited long enough: it goes on. */
void
resume_tick(int64_t now)
{
	struct rp_error err;

	if (rs.take_done == NULL || now < rs.take_until)
		return;
	rp_err(&err, RP_DEADLINE_EXCEEDED, "the takeover of node %s still "
	    "runs after %d s (%u of %u sessions resumed so far); it goes on: "
	    "see the log", rs.take, REDIS_TAKE_MS / 1000, rs.t.resumed,
	    rs.t.found);
	rs_answer(&err);
}

void
resume_stop(void)
{
	struct rp_error err;

	rp_err(&err, RP_UNAVAILABLE, "the daemon stops: the takeover of node "
	    "%s is not finished (%u of %u sessions resumed)", rs.take,
	    rs.t.resumed, rs.t.found);
	rs_answer(&err);
	memset(&rs, 0, sizeof(rs));
}
