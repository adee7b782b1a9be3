/*
 * The session registry's own structures, shared by its files: session.c
 * (ids, slots, the state machine, timeouts and events), session_ports.c
 * (ports and sockets: binding, allocation, the port map, destinations kept
 * from our own sockets) and session_restore.c (what workers report, and
 * sessions handed to a new worker or taken over from a master that went).
 */
#ifndef RTPPROXYD_SESSION_INT_H
#define RTPPROXYD_SESSION_INT_H

#include "acl.h"
#include "conf.h"
#include "sessions.h"

struct event;

#define SESSION_SWEEP_MS	250
#define SESSION_TCP_CONNECT	1	/* session_bind: for connect() */
#define SESSION_TCP_LISTEN	2	/* session_bind: listening */
#define SESSION_ACL_SWEEPS	40	/* host addresses every 10 s */
#define SESSION_STRIKES		2	/* crashes that quarantine it */

struct session {
	int		 in_use;	/* slot taken (maybe still removing) */
	int		 removing;	/* REMOVE sent, waiting for REMOVED */
	int		 handed;	/* the current worker relays it */
	int		 strikes;	/* workers that crashed on it */
	int		 worker;
	int		 fds[IPC_MAXFDS];
	int		 nfds;
	uint16_t	 pair[2];	/* port pairs held, as indexes + 1 */
	int		 nkept;		/* its destination's ports kept, */
	uint32_t	 kept_at[2];	/* ... at these indexes of sr.kept */
	uint32_t	 hnext;		/* id hash chain, or UINT32_MAX */
	struct event	*stats_ev;
};

struct session_reg {
	struct event_base *base;
	struct config	*conf;
	struct shm_table *shm;
	void		(*publish)(const struct session_event *);
	int		 nworkers;
	uint32_t	*nsessions;	/* per worker */
	int		 stopping;	/* no new sessions */
	struct session	*s;		/* one per slot */
	uint32_t	 nslots;
	uint32_t	 count;		/* in use and not removing */
	uint32_t	*hash;		/* bucket -> first slot */
	uint32_t	 hmask;
	uint32_t	*freelist;
	uint32_t	 nfree;
	uint16_t	*pair_ref;	/* sessions on each port pair */
	uint32_t	 npairs;
	uint32_t	*cursor;	/* per worker: next pair to try */
	struct event	*sweep_ev;
	unsigned int	 sweeps;
	struct shm_acl	 acl;		/* what is published, for checks */
	uint16_t	*port_ref;	/* [family][port]: UDP sessions on it */
	/*
	 * [family][port]: sessions whose destination is that port on this
	 * host; kept from the sessions' own sockets, which would loop.
	 */
	uint32_t	*kept;
	/* latch and refusal lines, at most SESSION_LATCH_LOGS a second */
	int64_t		 latchlog_sec;
	unsigned int	 latchlog_n;
	uint64_t	 latchlog_quiet;
};

extern struct session_reg sr;

#define SESSION_LATCH_LOGS	10

#define NIL	UINT32_MAX

static inline struct shm_slot *
session_slot(uint32_t i)
{
	return &sr.shm->slots[i];
}

static inline uint32_t
session_state(uint32_t i)
{
	return atomic_load_explicit(&session_slot(i)->state,
	    memory_order_acquire);
}

/* session.c */
void	session_hash_insert(uint32_t);
void	session_emit(uint32_t, enum session_event_type, uint32_t,
	    const char *);
void	session_change(uint32_t, uint32_t, enum session_event_type,
	    const char *);
void	session_handover(uint32_t);
void	session_stats_timer(uint32_t);
void	session_close(uint32_t, enum shm_close, struct session_snapshot *);
void	session_free_slot(uint32_t);
void	session_acl_refresh(const struct config *);

/* session_ports.c */
uint16_t session_getport(const struct sockaddr_storage *);
int	session_is_multicast(const struct sockaddr_storage *);
int	session_bind_pair(struct sockaddr_storage *, int, int, int[2]);
const char *session_bind_reason(int);
int	session_bind_endpoint(const char *, struct sockaddr_storage *,
	    const int *, int,
	    int, int, int[2], uint16_t *, struct rp_error *);
uint32_t session_pair_of(uint16_t);
int	session_pick_worker(void);
void	session_port_set(int, uint16_t, uint32_t);
void	session_ports(uint32_t, int);
int	session_dest_check(const struct session_params *, int, uint32_t[2],
	    int *, struct rp_error *);
void	session_keep(const uint32_t *, int, int);
void	session_keep_dest(uint32_t);

/* session_restore.c */
void	session_restore(uint32_t);

#endif
