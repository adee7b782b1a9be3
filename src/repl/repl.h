/*
 * The sessions' state outside the machine: redis.c writes it through to
 * Redis from the registry's events; redis_rec.c is a session's record
 * as Redis holds it.  In the master only: nothing on the packet path
 * waits for it.
 */
#ifndef RTPPROXYD_REPL_H
#define RTPPROXYD_REPL_H

#include "common.h"
#include "conf.h"
#include "sessions.h"
#include "shm.h"

struct event_base;

/* redis_rec.c: a session's record, the fields of its Redis hash */
#define REDIS_REC_VERSION	1
#define REDIS_REC_FIELDS	26	/* at most, in a record */
#define REDIS_REC_TEXT		512	/* bytes of one field's value */
#define REDIS_REC_PARTS_MAX	1000000	/* recording parts a record may say */
#define REDIS_REC_ALL		0	/* redis_rec_argv: every field */
#define REDIS_REC_COUNTERS	1	/* ... the counters and the time */
#define REDIS_REC_NCOUNT	(sizeof(struct shm_totals) / sizeof(uint64_t))

struct redis_rec {
	char		 id[SHM_ID_MAX];
	char		 node[CONF_NODE_MAX];
	uint64_t	 inc;		/* this session, not another of its id */
	uint32_t	 epoch;
	uint32_t	 state;
	uint32_t	 flags;		/* SHM_F_* */
	struct shm_addr	 listen, forward, dest, latched, latched_rtcp;
	uint32_t	 idle_timeout_s;
	uint32_t	 stats_interval_ms;
	uint32_t	 clock_rate;
	uint32_t	 dtmf_pt;	/* 0: none kept (101) */
	uint32_t	 rate_pps;
	uint64_t	 rate_bps;
	uint32_t	 latch_policy;
	uint32_t	 relatches;
	uint32_t	 rec_parts;	/* recording files begun; 0 in old ones */
	int64_t		 created_ms;
	int64_t		 written_ms;
	struct shm_totals c[2];
	/* redis_rec_argv's text */
	char		 text[REDIS_REC_FIELDS][REDIS_REC_TEXT];
};

void	redis_rec_from_snap(struct redis_rec *,
	    const struct session_snapshot *, const char *, uint64_t, uint32_t,
	    int64_t);
int	redis_rec_argv(struct redis_rec *, const char **, int);
int	redis_rec_parse(struct redis_rec *, size_t, const char *const *,
	    const size_t *, char *, size_t);
void	redis_rec_to_snap(const struct redis_rec *,
	    struct session_snapshot *);

/* redis.c: the write-through */
#define REDIS_SNAP_MS	1000	/* counters' snapshot without stats-interval */

struct redis_stats {
	int		configured;
	int		up;
	uint64_t	writes;		/* session records (HSET) sent */
	uint64_t	deletes;	/* deletes Redis confirmed */
	uint64_t	errors;		/* error replies */
	uint64_t	connects;
	uint64_t	connect_failures;
	uint64_t	timeouts;	/* no answer in time: reconnected */
	uint64_t	dropped;	/* deletes given up (too many waiting) */
	uint64_t	restored;	/* sessions restored on start */
	uint64_t	takeovers;	/* of other nodes, asked for */
	uint64_t	resumed;	/* their sessions made here */
	uint64_t	fenced;		/* closed here: another node owns them */
	uint64_t	skipped;	/* records not restored: why logged */
	uint64_t	mirror_resyncs;	/* backed nodes' sets read again */
	uint64_t	prebind_failures; /* ports not bound in advance */
	uint32_t	inflight;	/* commands not answered yet */
	uint32_t	pending;	/* sessions and deletes to write */
};

int	redis_start(struct event_base *, const struct config *, uint32_t,
	    int);
void	redis_stop(void);
void	redis_drain(void (*)(void), int);
void	redis_event(const struct session_event *);
void	redis_get_stats(struct redis_stats *);

/* redis_resume.c: sessions of another node, taken over */
struct api_ha_take;
#define REDIS_TAKE_MS	30000	/* a takeover's answer waits at most */
int	redis_takeover(const char *,
	    void (*)(void *, const struct api_ha_take *), void *,
	    struct rp_error *);

/* redis_float.c: the nodes this one backs (standby-for) */
int	redis_standby(int, const char **, int64_t *);

/* redis_mirror.c: the sessions mirrored of the k-th backed node */
int	redis_mirrored(int, int64_t *, int64_t *);

/* redis_list.c: ListSessions of another node, or "*" */
struct api_ha_list;
int	redis_list(const char *, uint32_t, uint32_t, const char *,
	    void (*)(void *, const struct api_ha_list *), void *,
	    struct rp_error *);
const char *redis_node(void);

#endif
