/*
 * The master's sessions: the registry and its state machine, the sockets
 * it binds, the workers' share of them, and the events it emits.
 */
#ifndef RTPPROXYD_SESSIONS_H
#define RTPPROXYD_SESSIONS_H

#include "common.h"
#include "ipc.h"
#include "peer.h"
#include "shm.h"
#include "quality.h"

struct config;

/* session.c: the master's session registry */

/* What a session resumed from elsewhere (src/repl) carries on with. */
struct session_resume {
	struct shm_addr		latched, latched_rtcp;	/* family 0: none */
	uint32_t		relatches;
	struct shm_totals	c[2];
	uint32_t		rec_parts;	/* recording files begun */
};

struct session_params {
	char			id[SHM_ID_MAX];	/* "" = make one */
	struct sockaddr_storage	listen;		/* port 0 = allocate */
	struct sockaddr_storage	forward;	/* family 0 = as dest, any */
	struct sockaddr_storage	dest;
	int			tcp;
	int			unidirectional;
	int			disable_rtcp;
	uint32_t		idle_timeout_s;	/* 0: configured default */
	uint32_t		stats_interval_ms;
	uint32_t		clock_rate;	/* dynamic PTs; 0: 8000 */
	int			reverse_source;	/* CONF_RS_*; -1: default */
	uint32_t		rate_pps;	/* 0: the configured default */
	uint64_t		rate_bps;
	int			latch_policy;	/* SHM_LATCH_*; 0: default */
	/* a session resumed from Redis (src/repl); 0: a new one */
	uint64_t		repl_inc;
	uint32_t		repl_epoch;
	const struct session_resume *resume;	/* NULL: a new one */
	/*
	 * Sockets bound already on the listen and forward addresses and
	 * ports (RTP, RTCP of each; -1: none), which the session takes
	 * copies of (dup) instead of binding: a standby's, bound in advance
	 * (src/repl).  NULL: none.  The caller closes its own.
	 */
	const int		*prebound;
	uint32_t		dtmf_pt;	/* 0: 101 */
	int			drop_dtmf;
	int			record;		/* a pcap file (recording-dir) */
};

/*
 * UpdateSession: what to change in a live session.  Each part is left as
 * it is when unset (has_*, 0 or -1 as said).
 */
struct session_update {
	char			id[SHM_ID_MAX];
	int			has_dest;
	struct sockaddr_storage	dest;
	int			unidirectional;	/* -1: unchanged */
	int			has_rate;
	uint32_t		rate_pps;	/* 0: the configured default */
	uint64_t		rate_bps;
	uint32_t		idle_timeout_s;	/* 0: unchanged */
	uint32_t		stats_interval_ms; /* 0: unchanged */
	int			reverse_source;	/* CONF_RS_*; -1: unchanged */
	int			latch_policy;	/* SHM_LATCH_*; 0: unchanged */
	int			record;		/* 1 start, 0 stop, -1 as is */
};

/* A consistent copy of a slot, for replies and events. */
struct session_snapshot {
	uint32_t	slot;
	uint32_t	slot_gen;
	uint32_t	state;
	uint32_t	worker;
	uint32_t	flags;
	char		id[SHM_ID_MAX];
	struct shm_addr	listen, forward, dest, latched, latched_rtcp;
	uint32_t	idle_timeout_s;
	uint32_t	stats_interval_ms;
	uint32_t	clock_rate;
	uint32_t	dtmf_pt;
	uint32_t	rate_pps;
	uint64_t	rate_bps;
	uint32_t	latch_policy;	/* SHM_LATCH_* */
	uint32_t	relatches;
	uint64_t	repl_inc;
	uint32_t	repl_epoch;
	uint32_t	updates;
	uint32_t	rec_state;	/* SHM_REC_* */
	uint32_t	rec_parts;
	uint64_t	rec_packets, rec_dropped;
	char		rec_file[256];
	char		rec_error[128];
	int64_t		created_ms;
	int64_t		last_activity_ms;
	char		error[SHM_REASON_MAX];
	struct session_dirsnap {
		struct shm_totals c;	/* the counters, the loss */
		double	 loss_rate, jitter_ms, avg_latency_ms, max_latency_ms;
		int64_t  last_packet_ms;
		uint32_t ssrc;
		uint32_t in_kernel;	/* SHM_KERNEL_* */
		struct quality q;	/* RTCP's figures, the MOS */
	} dir[2];
};

/* Event types: numbers match rtpproxy.EventType. */
enum session_event_type {
	SEV_CREATED = 1,
	SEV_STATE_CHANGED = 2,
	SEV_STATS_UPDATE = 3,
	SEV_ERROR = 4,
	SEV_CLOSED = 5,
	SEV_RELATCHED = 6,
	SEV_SOURCE_REFUSED = 7,
	SEV_UPDATED = 8,
	SEV_RECORDING = 9,
	SEV_DTMF = 10,
};

/* A telephone-event, as DTMF events tell it. */
struct session_dtmf {
	uint32_t	event;
	uint32_t	volume;
	uint32_t	duration_ms;
	int		reverse;
	int64_t		start_ms;
	uint32_t	rtp_ts;
	uint32_t	ssrc;
	int		end_seen;
};

struct session_event {
	enum session_event_type	 type;
	int64_t			 timestamp_ms;
	uint32_t		 state;
	uint32_t		 previous_state;
	const char		*reason;	/* may be NULL */
	/* RELATCHED: the new and the old address; SOURCE_REFUSED: addr */
	const struct shm_addr	*addr, *prev_addr;
	int			 rtcp;
	const struct session_dtmf *dtmf;	/* DTMF */
	/* UPDATED: the names of the request's fields that changed */
	const char *const	*changed;
	size_t			 nchanged;
	struct session_snapshot	 snap;
};

struct event_base;

/* What the registry is given by the master that runs it. */
struct sessions_env {
	struct event_base	*base;
	struct config		*conf;
	struct shm_table	*shm;
	int			 nworkers;
	/* where events go (the API's subscribers) */
	void			(*publish)(const struct session_event *);
};

int	session_init(const struct sessions_env *);
void	session_stopping(void);
void	session_shutdown(void);
int	session_create(const struct session_params *,
	    struct session_snapshot *, struct rp_error *);
int	session_destroy(const char *, struct session_snapshot *,
	    struct rp_error *);
int	session_get(const char *, struct session_snapshot *,
	    struct rp_error *);
int	session_update(const struct session_update *,
	    struct session_snapshot *, struct rp_error *);
int	session_lookup(const char *);		/* slot or -1 */
void	session_snapshot(uint32_t, struct session_snapshot *);
uint32_t session_next(uint32_t);		/* in-use slot >= arg, or nslots */
void	session_close_all(enum shm_close);
void	session_worker_ready(int);
void	session_worker_lost(int);
int	session_worker_crashed(int, uint32_t, uint32_t, const char *);
void	session_ipc(int, const struct ipc_hdr *, int *, int);
void	session_have(int, const struct ipc_have *, int *, int);
void	session_adopt_table(void);
void	session_suspend(void);
void	session_reconfigure(const struct config *);

/* workers.c: the worker processes */
struct event;

struct worker_proc {
	int		 id;
	pid_t		 pid;
	uint32_t	 gen;
	int		 ready;
	uint16_t	 port_lo, port_hi;	/* even .. odd, inclusive */
	int64_t		 started_ms;
	int64_t		 ready_ms;	/* 0: not ready since started */
	int		 fast_deaths;
	int		 killed;	/* by us (workers_kill) */
	int		 crash_run;	/* crashes blamed on sessions, in a row */
	uint32_t	 spawns;
	struct peer	 peer;		/* its event socket; closed: none */
	struct event	*respawn_ev;
	/* a worker of a previous master, taken over (not our child) */
	int		 adopted;
	int		 pidfd;		/* tells when it is gone; or -1 */
	struct event	*pid_ev;
	struct event	*adopt_ev;	/* it has this long to say READY */
};

/*
 * Where workers.c takes what it learns: the master (every worker ready,
 * every worker gone while stopping) and the registry (a worker ready or
 * lost, its messages, a crash to blame on a session: 1 if it was).
 */
struct workers_ops {
	void	(*all_ready)(void);
	void	(*all_stopped)(void);
	void	(*ready)(int);
	void	(*lost)(int);
	void	(*message)(int, const struct ipc_hdr *, int *, int);
	void	(*have)(int, const struct ipc_have *, int *, int);
	int	(*crashed)(int, uint32_t, uint32_t, const char *);
};

struct workers_env {
	struct event_base	*base;
	const struct config	*conf;
	struct shm_table	*shm;
	const char		*self;		/* the binary to exec */
	int			 foreground;
	int			 nworkers;
	int			 kfwd_map;	/* -1, or for IPC_KFWD_FD */
	struct workers_ops	 ops;
};

/* What ended a worker, as workers_gone is told */
#define WORKER_GONE_UNKNOWN	0	/* no status (adopted), or we killed it */
#define WORKER_GONE_KILLED	1	/* SIGKILL from outside */
#define WORKER_GONE_CRASHED	2	/* a fault signal, or a failure exit */

void	workers_init(const struct workers_env *);
void	workers_start(int);
int	workers_count(void);
struct worker_proc *workers_get(int);
void	workers_range(int, uint16_t *, uint16_t *);
int	workers_of_port(uint16_t);
int	workers_ready(int);
int	workers_send(int, struct ipc_hdr *, const int *, int);
int	workers_send_now(int, struct ipc_hdr *);
void	workers_kill(struct worker_proc *);
void	workers_spawn(struct worker_proc *);
void	workers_attach(struct worker_proc *, int);
int	workers_adopt(struct worker_proc *);
void	workers_gone(struct worker_proc *, const char *, int);
int	workers_reaped(pid_t, int);
void	workers_flush_all(int);
void	workers_stopping(void);
void	workers_shutdown(void);
void	workers_check_stopped(void);
void	workers_signal_all(int);
void	workers_wait_all(void);
void	workers_setlog(int);
void	workers_hand_off(void);
void	workers_cleanup(void);

#endif
