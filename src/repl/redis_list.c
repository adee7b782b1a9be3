/*
 * ListSessions of another node, or of all: ids from Redis (SSCAN of the
 * node's set, or SCAN of the records for "*"), then each record, parsed
 * as a restore would, filtered by owner and state and made into a
 * snapshot for the API.  A batch of the scan may hold none that pass
 * the filter, or more than the page has room for: the scan goes on
 * (asynchronously, LS_ROUNDS batches at most) until the page is full or
 * the scan ends, and a batch is taken in the order of its ids, so that
 * the page token can say where in it the page stopped: "r" CURSOR (the
 * batch that begins there) and ":" LAST (the last id given from it).
 * The API holds the call until done is called, which it always is
 * (Redis gone: an error).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "api.h"
#include "repl_int.h"

#define LS_COUNT	64	/* SCAN's COUNT: the same for every page */
#define LS_ROUNDS	256	/* batches in one call, at most */
#define LS_CURSOR	24	/* a cursor's digits, and more */

struct ls_req;

/* One id of a batch, and its record when it is one to list. */
struct ls_item {
	struct ls_req		*q;
	char			 id[SHM_ID_MAX];
	int			 ok;	/* read, and passes the filter */
	struct session_snapshot	 snap;
	char			 owner[CONF_NODE_MAX];
};

struct ls_req {
	void			(*done)(void *, const struct api_ha_list *);
	void			*arg;
	char			 node[CONF_NODE_MAX];	/* "*": all */
	uint32_t		 state;			/* 0: any */
	size_t			 page;
	char			 cur[LS_CURSOR];	/* this batch's */
	char			 nextcur[LS_CURSOR];	/* the one after */
	char			 after[SHM_ID_MAX];	/* "": none skipped */
	char			 next[LS_CURSOR + SHM_ID_MAX + 2];
	int			 rounds, failed;
	/* the batch being read */
	struct ls_item		*it;
	size_t			 nit, want, got;
	/* the page */
	size_t			 n;
	struct session_snapshot	*snap;
	char			(*owner)[CONF_NODE_MAX];
};

static int	ls_scan(struct ls_req *);

static int
ls_id_ok(const char *s, size_t len)
{
	return len > 0 && len < SHM_ID_MAX && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._:@+-") == len;
}

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
	free(q->it);
	free(q->snap);
	free(q->owner);
	free(q);
}

/* Every record of the batch is in: onto the page, in the ids' order. */
static void
ls_batch_done(struct ls_req *q)
{
	size_t	i;
	char	last[SHM_ID_MAX] = "";

	if (q->failed) {
		ls_finish(q);
		return;
	}
	for (i = 0; i < q->nit; i++) {
		if (!q->it[i].ok)
			continue;
		if (q->n == q->page) {
			/* More in this batch: the next page begins here. */
			snprintf(q->next, sizeof(q->next), "r%s:%s", q->cur,
			    last);
			ls_finish(q);
			return;
		}
		q->snap[q->n] = q->it[i].snap;
		memcpy(q->owner[q->n], q->it[i].owner, CONF_NODE_MAX);
		memcpy(last, q->it[i].id, sizeof(last));
		q->n++;
	}
	free(q->it);
	q->it = NULL;
	q->nit = 0;
	if (strcmp(q->nextcur, "0") == 0) {
		q->next[0] = '\0';		/* the scan is over */
		ls_finish(q);
		return;
	}
	if (q->n == q->page || ++q->rounds >= LS_ROUNDS) {
		snprintf(q->next, sizeof(q->next), "r%s", q->nextcur);
		ls_finish(q);
		return;
	}
	memcpy(q->cur, q->nextcur, sizeof(q->cur));
	q->after[0] = '\0';
	if (ls_scan(q) == -1) {
		q->failed = 1;
		ls_finish(q);
	}
}

static void
ls_record(redisAsyncContext *ac, void *arg, void *priv)
{
	redisReply		*reply = arg;
	struct ls_item		*it = priv;
	struct ls_req		*q = it->q;
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
		/* Unreadable, not that node's now, another state: not listed. */
		if (i == reply->elements && redis_rec_parse(rec,
		    reply->elements, kv, kvlen, why, sizeof(why)) == 0 &&
		    strcmp(rec->id, it->id) == 0 &&
		    (strcmp(q->node, "*") == 0 ||
		    strcmp(rec->node, q->node) == 0) &&
		    (q->state == 0 || rec->state == q->state)) {
			redis_rec_to_snap(rec, &it->snap);
			memcpy(it->owner, rec->node, CONF_NODE_MAX);
			it->ok = 1;
		}
		free(rec);
	}
	if (q->got == q->want)
		ls_batch_done(q);
}

static int
ls_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ls_item *)a)->id,
	    ((const struct ls_item *)b)->id);
}

/* SCAN or SSCAN's answer: the cursor, and the ids or keys. */
static void
ls_ids(redisAsyncContext *ac, void *arg, void *priv)
{
	redisReply	*reply = arg, *ids, *e;
	struct ls_req	*q = priv;
	char		 key[RC_KEY_MAX];
	const char	*argv[2], *s;
	size_t		 i, len, plen = strlen(rc.conf->redis_prefix);
	int		 all = strcmp(q->node, "*") == 0;

	rc_reply(reply);
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[0]->len == 0 ||
	    reply->element[0]->len >= sizeof(q->nextcur) ||
	    strspn(reply->element[0]->str, "0123456789") !=
	    reply->element[0]->len ||
	    reply->element[1]->type != REDIS_REPLY_ARRAY) {
		q->failed = 1;
		ls_finish(q);
		return;
	}
	memcpy(q->nextcur, reply->element[0]->str, reply->element[0]->len +
	    1);
	ids = reply->element[1];
	q->it = xcalloc(ids->elements + 1, sizeof(*q->it));
	q->nit = 0;
	for (i = 0; i < ids->elements; i++) {
		e = ids->element[i];
		if (e->type != REDIS_REPLY_STRING)
			continue;
		s = e->str;
		len = e->len;
		if (all) {
			if (len < plen + 8 || strncmp(s,
			    rc.conf->redis_prefix, plen) != 0 ||
			    strncmp(s + plen, "session:", 8) != 0)
				continue;
			s += plen + 8;
			len -= plen + 8;
		}
		/* Not one we could have written: not listed. */
		if (!ls_id_ok(s, len) || memchr(s, '\0', len) != NULL)
			continue;
		memcpy(q->it[q->nit].id, s, len);
		q->it[q->nit].q = q;
		q->nit++;
	}
	qsort(q->it, q->nit, sizeof(*q->it), ls_cmp);
	q->want = 1;		/* ours, until every HGETALL is sent */
	q->got = 0;
	for (i = 0; i < q->nit; i++) {
		/* The earlier page had these of the batch. */
		if (q->after[0] != '\0' && strcmp(q->it[i].id, q->after) <= 0)
			continue;
		rc_key(key, sizeof(key), "session", q->it[i].id);
		argv[0] = "HGETALL";
		argv[1] = key;
		if (rc_send(ls_record, &q->it[i], 2, argv) == 0)
			q->want++;
		else
			q->failed = 1;
	}
	if (++q->got == q->want)
		ls_batch_done(q);
}

/* The batch at q->cur; 0, or -1: not sent. */
static int
ls_scan(struct ls_req *q)
{
	char		 key[RC_KEY_MAX], count[12];
	const char	*argv[6];
	int		 all = strcmp(q->node, "*") == 0;

	snprintf(count, sizeof(count), "%u", LS_COUNT);
	if (all) {
		rc_key(key, sizeof(key), "session", "*");
		argv[0] = "SCAN";
		argv[1] = q->cur;
		argv[2] = "MATCH";
		argv[3] = key;
	} else {
		rc_key(key, sizeof(key), "node", q->node);
		argv[0] = "SSCAN";
		argv[1] = key;
		argv[2] = q->cur;
		argv[3] = "COUNT";
	}
	argv[4] = all ? "COUNT" : count;
	argv[5] = count;
	return rc_send(ls_ids, q, all ? 6 : 5, argv);
}

/*
 * A page token: "" (the first page), "r" CURSOR, or "r" CURSOR ":" ID.
 * 0, or -1: not one of ours.
 */
static int
ls_token(struct ls_req *q, const char *tok)
{
	const char		*colon;
	size_t			 clen;
	unsigned long long	 v;
	char			*end;

	if (tok[0] == '\0') {
		memcpy(q->cur, "0", 2);
		return 0;
	}
	if (tok[0] != 'r')
		return -1;
	tok++;
	colon = strchr(tok, ':');
	clen = colon != NULL ? (size_t)(colon - tok) : strlen(tok);
	if (clen == 0 || clen > 20 || strspn(tok, "0123456789") != clen)
		return -1;
	/* Redis refuses a cursor past 64 bits. */
	errno = 0;
	v = strtoull(tok, &end, 10);
	if (errno != 0 || end != tok + clen)
		return -1;
	snprintf(q->cur, sizeof(q->cur), "%llu", v);
	if (colon != NULL) {
		if (!ls_id_ok(colon + 1, strlen(colon + 1)))
			return -1;
		memcpy(q->after, colon + 1, strlen(colon + 1) + 1);
	}
	return 0;
}

int
redis_list(const char *node, uint32_t state, uint32_t page,
    const char *token, void (*done)(void *, const struct api_ha_list *),
    void *arg, struct rp_error *err)
{
	struct ls_req	*q;
	size_t		 len = strlen(node);
	int		 all = strcmp(node, "*") == 0;

	if (!all && (len == 0 || len >= CONF_NODE_MAX || strspn(node,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") != len))
		return rp_err(err, RP_INVALID_ARGUMENT, "node must be \"*\" or "
		    "1-%d of A-Z a-z 0-9 . _ -", CONF_NODE_MAX - 1);
	q = xcalloc(1, sizeof(*q));
	if (strlen(token) > sizeof(q->next) - 1 || ls_token(q, token) == -1) {
		free(q);
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "page_token is not valid");
	}
	if (!rc.up) {
		free(q);
		return rp_err(err, RP_UNAVAILABLE, "not connected to Redis");
	}
	q->done = done;
	q->arg = arg;
	q->state = state;
	q->page = page == 0 ? 1 : page;
	memcpy(q->node, node, len + 1);
	q->snap = xcalloc(q->page, sizeof(*q->snap));
	q->owner = xcalloc(q->page, sizeof(*q->owner));
	if (ls_scan(q) == -1) {
		free(q->snap);
		free(q->owner);
		free(q);
		return rp_err(err, RP_UNAVAILABLE, "not connected to Redis");
	}
	return 0;
}
