/*
 * What src/repl's files share: the connection to Redis (redis_conn.c),
 * under the write-through (redis.c) and the sessions resumed from Redis
 * at start or on a takeover (redis_resume.c).
 */
#ifndef RTPPROXYD_REPL_INT_H
#define RTPPROXYD_REPL_INT_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "repl.h"

#define RC_KEY_MAX	(2 * CONF_NODE_MAX + SHM_ID_MAX)

/* What the connection tells the layer above. */
struct rc_ops {
	void	(*up)(void);		/* connected (again) */
	void	(*tick)(int64_t);	/* every RC_TICK_MS */
};

#define RC_TICK_MS	250

/* redis_conn.c: the one connection, its state and the counters */
struct repl_conn {
	struct event_base	*base;
	const struct config	*conf;
	char			 node[CONF_NODE_MAX];
	int			 up;
	uint64_t		 cgen;		/* this connection's number */
	struct redis_stats	 st;
};
extern struct repl_conn rc;

int	rc_start(struct event_base *, const struct config *,
	    const struct rc_ops *);
void	rc_stop(void);
int	rc_send(redisCallbackFn *, void *, int, const char **);
void	rc_reply(redisReply *);
void	rc_key(char *, size_t, const char *, const char *);

/* redis_tls.c: TLS to Redis, bridged from a private Unix socket */
#define RTLS_MAIN	0	/* redis_conn.c's connection */
#define RTLS_MIRROR	1	/* redis_mirror.c's, a standby's */
#define RTLS_NCONN	2
int	rtls_start(struct event_base *, const struct config *);
const char *rtls_path(int);
int	rtls_why(int, char *, size_t);
void	rtls_stop(void);

/* redis_float.c: standby-for's floating addresses, watched */
void	float_start(void);
void	float_stop(void);

/* redis_mirror.c: the ids of the backed nodes' sessions, followed */
void	mirror_start(void);
void	mirror_tick(void);
void	mirror_stop(void);
int64_t	mirror_ids(const char *, void (*)(const char *, void *), void *);
int	mirror_take(const char *, const char *, int[4],
	    struct sockaddr_storage *, struct sockaddr_storage *);

/* redis_resume.c: sessions made again from their records */
void	resume_init(int);
void	resume_up(void);
void	resume_tick(int64_t);
void	resume_stop(void);

#endif
