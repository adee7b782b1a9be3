/*
 * The master's one connection to Redis: hiredis and its libevent
 * adapter on the master's loop, so nothing blocks.  It connects again
 * with a backoff (RC_BACKOFF_MIN to RC_BACKOFF_MAX) when Redis goes,
 * gives a connection up when Redis has not answered for RC_STUCK_MS (a
 * stopped Redis still accepts connections), sends AUTH and SELECT first
 * on each, and counts what happens for the metrics.  With redis-tls,
 * hiredis connects to redis_tls.c's bridge instead, which says why a
 * connection went (a certificate, a handshake) for the log line.
 */
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "repl_int.h"

#define RC_STUCK_MS	5000	/* no answer that long: connect again */
#define RC_BACKOFF_MIN	100	/* ms; doubled up to ... */
#define RC_BACKOFF_MAX	5000

struct repl_conn rc;

static struct {
	struct rc_ops		 ops;
	redisAsyncContext	*ac;
	int			 was_up;	/* for the log: once per outage */
	int			 good;		/* this connection answered */
	int64_t			 connect_ms;	/* when this connect began */
	int64_t			 reply_ms;	/* the last answer */
	uint32_t		 backoff_ms;
	struct event		*retry_ev, *tick_ev;
} cn;

void
rc_key(char *buf, size_t len, const char *what, const char *name)
{
	snprintf(buf, len, "%s%s:%s", rc.conf->redis_prefix, what, name);
}

static void
rc_lost(const char *why)
{
	struct timeval tv;

	cn.ac = NULL;
	rc.up = 0;
	rc.st.up = 0;
	if (cn.was_up)
		log_warnx("redis %s: %s; sessions are written again when it "
		    "is back", rc.conf->redis, why);
	else
		log_debug("redis %s: %s", rc.conf->redis, why);
	cn.was_up = 0;
	if (evtimer_pending(cn.retry_ev, NULL))
		return;
	tv.tv_sec = cn.backoff_ms / 1000;
	tv.tv_usec = (cn.backoff_ms % 1000) * 1000;
	evtimer_add(cn.retry_ev, &tv);
	cn.backoff_ms = cn.backoff_ms * 2 > RC_BACKOFF_MAX ? RC_BACKOFF_MAX :
	    cn.backoff_ms * 2;
}

/* Every reply's accounting: NULL when the connection went. */
void
rc_reply(redisReply *reply)
{
	if (rc.st.inflight > 0)
		rc.st.inflight--;
	if (reply == NULL)
		return;
	cn.reply_ms = now_ms();
	if (reply->type == REDIS_REPLY_ERROR) {
		rc.st.errors++;
		log_warnx("redis %s: %s", rc.conf->redis, reply->str);
		return;
	}
	/*
	 * Only a connection that answers resets the backoff: one that a
	 * Redis closes at once (protected mode, maxclients) must not be
	 * made again ten times a second.
	 */
	if (!cn.good) {
		cn.good = 1;
		cn.backoff_ms = RC_BACKOFF_MIN;
		if (!cn.was_up)
			log_info("redis %s: connected again; writing every "
			    "session", rc.conf->redis);
		cn.was_up = 1;
	}
}

static void
rc_setup_done(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply *reply = r;

	rc_reply(reply);
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
		log_warnx("redis %s: %s refused: %s", rc.conf->redis,
		    (const char *)arg, reply->str);
		redisAsyncDisconnect(ac);
	}
}

/* 0, or -1 when there is no connection or hiredis cannot take it. */
int
rc_send(redisCallbackFn *fn, void *arg, int argc, const char **argv)
{
	if (cn.ac == NULL || redisAsyncCommandArgv(cn.ac, fn, arg, argc, argv,
	    NULL) != REDIS_OK)
		return -1;
	rc.st.inflight++;
	return 0;
}

/*
 * The connection's number: larger than any this node used before (the
 * one in PREFIXconn:NODE), even if the clock stepped back.  Only then
 * is the connection up and written to.
 */
static void
rc_cgen_done(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply		*reply = r;
	unsigned long long	 last = 0;
	uint64_t		 now = (uint64_t)now_ms();

	rc_reply(reply);
	if (reply == NULL || ac != cn.ac)
		return;
	if (reply->type == REDIS_REPLY_STRING)
		last = strtoull(reply->str, NULL, 10);
	else if (reply->type != REDIS_REPLY_NIL) {
		redisAsyncDisconnect(ac);
		return;
	}
	rc.cgen = now > last ? now : last + 1;
	if (rc.cgen <= last) {
		redisAsyncDisconnect(ac);	/* a number of garbage */
		return;
	}
	rc.up = 1;
	rc.st.up = 1;
	rc.st.connects++;
	log_debug("redis %s: connected (number %llu)", rc.conf->redis,
	    (unsigned long long)rc.cgen);
	cn.ops.up();
}

static void
rc_on_connect(const redisAsyncContext *ac, int status)
{
	char		 key[RC_KEY_MAX];
	const char	*argv[2];

	if (ac != cn.ac)
		return;
	if (status != REDIS_OK) {
		rc.st.connect_failures++;
		rc_lost(ac->errstr);
		return;
	}
	cn.reply_ms = now_ms();
	rc_key(key, sizeof(key), "conn", rc.node);
	argv[0] = "GET";
	argv[1] = key;
	if (rc_send(rc_cgen_done, NULL, 2, argv) == -1)
		redisAsyncDisconnect(cn.ac);
}

static void
rc_on_disconnect(const redisAsyncContext *ac, int status)
{
	char why[300];

	if (ac != cn.ac)
		return;
	/* TLS's failures are the bridge's: hiredis saw an EOF only. */
	if (rc.conf->redis_tls)
		switch (rtls_why(RTLS_MAIN, why, sizeof(why))) {
		case 1:
			rc.st.connect_failures++;
			/* FALLTHROUGH */
		case 0:
			rc_lost(why);
			return;
		}
	rc_lost(status == REDIS_OK ? "disconnected" : ac->errstr);
}

static void
rc_connect(void)
{
	const struct config	*c = rc.conf;
	redisAsyncContext	*ac;
	const char		*argv[2];
	char			 db[16];

	if (c->redis_tls)
		ac = redisAsyncConnectUnix(rtls_path(RTLS_MAIN));
	else if (c->redis_unix != NULL)
		ac = redisAsyncConnectUnix(c->redis_unix);
	else
		ac = redisAsyncConnect(c->redis_host, c->redis_port);
	cn.connect_ms = now_ms();
	if (ac == NULL || ac->err) {
		rc.st.connect_failures++;
		cn.ac = NULL;
		rc_lost(ac != NULL ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		return;
	}
	cn.ac = ac;
	cn.good = 0;
	if (redisLibeventAttach(ac, rc.base) != REDIS_OK) {
		redisAsyncFree(ac);
		cn.ac = NULL;
		rc_lost("cannot attach to the loop");
		return;
	}
	redisAsyncSetConnectCallback(ac, rc_on_connect);
	redisAsyncSetDisconnectCallback(ac, rc_on_disconnect);
	/* Queued before anything else, so they go first. */
	if (c->redis_password != NULL) {
		argv[0] = "AUTH";
		argv[1] = c->redis_password;
		rc_send(rc_setup_done, (void *)"AUTH", 2, argv);
	}
	if (c->redis_db != 0) {
		snprintf(db, sizeof(db), "%u", c->redis_db);
		argv[0] = "SELECT";
		argv[1] = db;
		rc_send(rc_setup_done, (void *)"SELECT", 2, argv);
	}
}

static void
rc_retry(evutil_socket_t fd, short ev, void *arg)
{
	if (cn.ac == NULL)
		rc_connect();
}

/* A Redis that stopped answering, or never did; then the layer above. */
static void
rc_tick(evutil_socket_t fd, short ev, void *arg)
{
	redisAsyncContext	*ac = cn.ac;
	int64_t			 now = now_ms();

	if (ac != NULL && ((rc.up && rc.st.inflight > 0 &&
	    now - cn.reply_ms > RC_STUCK_MS) ||
	    (!rc.up && now - cn.connect_ms > RC_STUCK_MS))) {
		rc.st.timeouts++;
		/* Ours now: its callbacks see cn.ac no more. */
		cn.ac = NULL;
		rc_lost(rc.up ? "no answer in 5 s" : "no connection in 5 s");
		redisAsyncFree(ac);
		rc.st.inflight = 0;
	}
	cn.ops.tick(now);
}

int
rc_start(struct event_base *base, const struct config *c,
    const struct rc_ops *ops)
{
	struct timeval tick = { 0, RC_TICK_MS * 1000 };

	memset(&rc, 0, sizeof(rc));
	memset(&cn, 0, sizeof(cn));
	rc.base = base;
	rc.conf = c;
	rc.st.configured = 1;
	cn.ops = *ops;
	if (c->node_id != NULL)
		snprintf(rc.node, sizeof(rc.node), "%s", c->node_id);
	else if (gethostname(rc.node, sizeof(rc.node)) == -1 ||
	    rc.node[0] == '\0') {
		log_warnx("redis: no node-id and no host name");
		return -1;
	}
	rc.node[sizeof(rc.node) - 1] = '\0';
	if (c->redis_tls && rtls_start(base, c) == -1)
		return -1;
	cn.backoff_ms = RC_BACKOFF_MIN;
	cn.retry_ev = evtimer_new(base, rc_retry, NULL);
	cn.tick_ev = event_new(base, -1, EV_PERSIST, rc_tick, NULL);
	if (cn.retry_ev == NULL || cn.tick_ev == NULL)
		fatalx("redis: event_new");
	event_add(cn.tick_ev, &tick);
	log_info("redis %s: node %s, key prefix %s, database %u",
	    c->redis, rc.node, c->redis_prefix, c->redis_db);
	cn.was_up = 1;		/* the first failure is worth a warning */
	rc_connect();
	return 0;
}

void
rc_stop(void)
{
	redisAsyncContext *ac = cn.ac;

	cn.ac = NULL;
	if (ac != NULL)
		redisAsyncFree(ac);
	if (cn.retry_ev != NULL)
		event_free(cn.retry_ev);
	if (cn.tick_ev != NULL)
		event_free(cn.tick_ev);
	if (rc.conf != NULL && rc.conf->redis_tls)
		rtls_stop();
	memset(&cn, 0, sizeof(cn));
}
