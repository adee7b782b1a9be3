/*
 * ListSessions of another node, or of all: a page of ids from Redis
 * (SSCAN of the node's set, or SCAN of the records for "*"), then each
 * record, parsed as a restore would and made into a snapshot for the
 * API.  Asynchronous: the API holds the call until done is called,
 * which it always is (Redis gone: an error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "api.h"
#include "repl_int.h"

struct ls_req {
	void			(*done)(void *, const struct api_ha_list *);
	void			*arg;
	char			 node[CONF_NODE_MAX];	/* "*": all */
	char			 next[24];
	size_t			 want, got, n;
	int			 failed;
	struct session_snapshot	*snap;
	char			(*owner)[CONF_NODE_MAX];
};

static void
ls_finish(struct ls_req *q)
{
	struct api_ha_list	 l;
	struct rp_error		 err;
	const char		**owners;
	size_t			 i;

	memset(&l, 0, sizeof(l));
	owners = xcalloc(q->n + 1, sizeof(*owners));
	if (q->failed) {
		rp_err(&err, RP_UNAVAILABLE, "Redis went away");
		l.err = &err;
	} else {
		for (i = 0; i < q->n; i++)
			owners[i] = q->owner[i];
		l.n = q->n;
		l.snap = q->snap;
		l.node = owners;
		l.next = q->next;
	}
	q->done(q->arg, &l);
	free(owners);
	free(q->snap);
	free(q->owner);
	free(q);
}

static void
ls_record(redisAsyncContext *ac, void *arg, void *priv)
{
	redisReply		*reply = arg;
	struct ls_req		*q = priv;
	struct redis_rec	*rec;
	const char		*kv[2 * REDIS_REC_FIELDS + 16];
	size_t			 kvlen[2 * REDIS_REC_FIELDS + 16], i;
	char			 why[160];

	rc_reply(reply);
	q->got++;
	if (reply == NULL)
		q->failed = 1;
	else if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
	    reply->elements <= sizeof(kv) / sizeof(kv[0])) {
		for (i = 0; i < reply->elements; i++) {
			if (reply->element[i]->type != REDIS_REPLY_STRING)
				break;
			kv[i] = reply->element[i]->str;
			kvlen[i] = reply->element[i]->len;
		}
		rec = xmalloc(sizeof(*rec));
		/* Unreadable, or not that node's now: not listed. */
		if (i == reply->elements && redis_rec_parse(rec,
		    reply->elements, kv, kvlen, why, sizeof(why)) == 0 &&
		    (strcmp(q->node, "*") == 0 ||
		    strcmp(rec->node, q->node) == 0)) {
			redis_rec_to_snap(rec, &q->snap[q->n]);
			memcpy(q->owner[q->n], rec->node, CONF_NODE_MAX);
			q->n++;
		}
		free(rec);
	}
	if (q->got == q->want)
		ls_finish(q);
}

/* SCAN or SSCAN's answer: the cursor, and the ids or keys. */
static void
ls_ids(redisAsyncContext *ac, void *arg, void *priv)
{
	redisReply	*reply = arg, *ids;
	struct ls_req	*q = priv;
	char		 key[RC_KEY_MAX];
	const char	*argv[2], *s;
	size_t		 i, plen = strlen(rc.conf->redis_prefix);
	int		 all = strcmp(q->node, "*") == 0;

	rc_reply(reply);
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_ARRAY) {
		q->failed = 1;
		ls_finish(q);
		return;
	}
	if (strcmp(reply->element[0]->str, "0") != 0)
		snprintf(q->next, sizeof(q->next), "r%.20s",
		    reply->element[0]->str);
	ids = reply->element[1];
	q->snap = xcalloc(ids->elements + 1, sizeof(*q->snap));
	q->owner = xcalloc(ids->elements + 1, sizeof(*q->owner));
	q->want = 1;		/* ours, until every HGETALL is sent */
	for (i = 0; i < ids->elements; i++) {
		if (ids->element[i]->type != REDIS_REPLY_STRING)
			continue;
		s = ids->element[i]->str;
		if (all)
			snprintf(key, sizeof(key), "%s", s);
		else
			rc_key(key, sizeof(key), "session", s);
		if (all && (strncmp(s, rc.conf->redis_prefix, plen) != 0 ||
		    strncmp(s + plen, "session:", 8) != 0))
			continue;
		argv[0] = "HGETALL";
		argv[1] = key;
		if (rc_send(ls_record, q, 2, argv) == 0)
			q->want++;
	}
	if (++q->got == q->want)
		ls_finish(q);
}

int
redis_list(const char *node, uint32_t page, const char *cursor,
    void (*done)(void *, const struct api_ha_list *), void *arg,
    struct rp_error *err)
{
	struct ls_req	*q;
	char		 key[RC_KEY_MAX], count[12];
	const char	*argv[6];
	size_t		 len = strlen(node);
	int		 all = strcmp(node, "*") == 0;

	if (!all && (len == 0 || len >= CONF_NODE_MAX || strspn(node,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") != len))
		return rp_err(err, RP_INVALID_ARGUMENT, "node must be \"*\" or "
		    "1-%d of A-Z a-z 0-9 . _ -", CONF_NODE_MAX - 1);
	if (!rc.up)
		return rp_err(err, RP_UNAVAILABLE, "not connected to Redis");
	q = xcalloc(1, sizeof(*q));
	q->done = done;
	q->arg = arg;
	memcpy(q->node, node, len + 1);
	snprintf(count, sizeof(count), "%u", page);
	if (all) {
		rc_key(key, sizeof(key), "session", "*");
		argv[0] = "SCAN";
		argv[1] = cursor;
		argv[2] = "MATCH";
		argv[3] = key;
	} else {
		rc_key(key, sizeof(key), "node", node);
		argv[0] = "SSCAN";
		argv[1] = key;
		argv[2] = cursor;
		argv[3] = "COUNT";
	}
	argv[4] = all ? "COUNT" : count;
	argv[5] = count;
	if (rc_send(ls_ids, q, all ? 6 : 5, argv) == -1) {
		free(q);
		return rp_err(err, RP_UNAVAILABLE, "not connected to Redis");
	}
	return 0;
}
