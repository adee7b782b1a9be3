/*
 * Automatic takeover: for each standby-for NODE ADDRESS, when ADDRESS
 * (the floating address keepalived, or another VRRP daemon, moves to the
 * host that should serve) appears on one of this host's interfaces, take
 * over NODE's sessions.  Looked for every FL_POLL_MS with getifaddrs(3)
 * on the master's loop: a few system calls, and well within the second
 * that media may stop for.  Once more when the address has gone and come
 * back.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "repl_int.h"

#define FL_POLL_MS	100
#define FL_COUNT_EVERY	10	/* polls: the backed nodes' sessions */

static struct {
	struct event	*ev;
	int		 present[CONF_MAX_STANDBY];
	int		 done[CONF_MAX_STANDBY];
	char		 last[CONF_MAX_STANDBY][256];	/* the last refusal */
	unsigned int	 polls;
	int64_t		 count[CONF_MAX_STANDBY];	/* -1: not known */
} fl;

/* SCARD of a backed node's set: what a takeover would resume. */
static void
fl_counted(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply	*reply = r;
	int		 k = (int)(intptr_t)arg;

	rc_reply(reply);
	if (k >= 0 && k < CONF_MAX_STANDBY)
		fl.count[k] = reply != NULL &&
		    reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
}

static void
fl_count(void)
{
	const struct config	*c = rc.conf;
	char			 key[RC_KEY_MAX];
	const char		*argv[2];
	int			 k;

	for (k = 0; k < c->nstandby; k++) {
		rc_key(key, sizeof(key), "node", c->standby[k].node);
		argv[0] = "SCARD";
		argv[1] = key;
		if (!rc.up || rc_send(fl_counted, (void *)(intptr_t)k, 2,
		    argv) == -1)
			fl.count[k] = -1;
	}
}

/* The sessions in Redis of the k-th node this one backs; -1. */
int
redis_standby(int k, const char **node, int64_t *n)
{
	if (rc.conf == NULL || k < 0 || k >= rc.conf->nstandby)
		return -1;
	*node = rc.conf->standby[k].node;
	*n = fl.count[k];
	return 0;
}

static int
fl_match(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a == NULL || a->sa_family != b->ss_family)
		return 0;
	if (a->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)(const void *)a)->
		    sin_addr, &((const struct sockaddr_in *)(const void *)b)->
		    sin_addr, sizeof(struct in_addr)) == 0;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->
		    sin6_addr, &((const struct sockaddr_in6 *)(const void *)b)->
		    sin6_addr, sizeof(struct in6_addr)) == 0;
	return 0;
}

static void
fl_poll(evutil_socket_t fd, short ev, void *arg)
{
	const struct config	*c = rc.conf;
	struct ifaddrs		*ifa, *i;
	struct rp_error		 err;
	int			 k, here;

	if (++fl.polls % FL_COUNT_EVERY == 0)
		fl_count();
	if (getifaddrs(&ifa) == -1)
		return;
	for (k = 0; k < c->nstandby; k++) {
		for (here = 0, i = ifa; i != NULL && !here; i = i->ifa_next)
			here = fl_match(i->ifa_addr, &c->standby[k].addr);
		if (here && !fl.present[k])
			log_notice("redis: floating address %s is on this host "
			    "now: taking over node %s", c->standby[k].text,
			    c->standby[k].node);
		else if (!here && fl.present[k]) {
			log_notice("redis: floating address %s has left this "
			    "host", c->standby[k].text);
			fl.done[k] = 0;
		}
		fl.present[k] = here;
		if (!here || fl.done[k])
			continue;
		/* Not connected yet, or a takeover running: again soon. */
		if (redis_takeover(c->standby[k].node, NULL, NULL, &err) == 0) {
			fl.done[k] = 1;
			fl.last[k][0] = '\0';
		} else if (strcmp(fl.last[k], err.msg) != 0) {
			log_warnx("redis: taking over node %s: %s; trying "
			    "again", c->standby[k].node, err.msg);
			memcpy(fl.last[k], err.msg, sizeof(fl.last[k]));
		}
	}
	freeifaddrs(ifa);
}

void
float_start(void)
{
	struct timeval tv = { 0, FL_POLL_MS * 1000 };

	memset(&fl, 0, sizeof(fl));
	memset(fl.count, 0xff, sizeof(fl.count));
	if (rc.conf->nstandby == 0)
		return;
	fl.ev = event_new(rc.base, -1, EV_PERSIST, fl_poll, NULL);
	if (fl.ev == NULL)
		fatalx("redis: event_new");
	event_add(fl.ev, &tv);
}

void
float_stop(void)
{
	if (fl.ev != NULL)
		event_free(fl.ev);
	memset(&fl, 0, sizeof(fl));
}
