/*
 * The master process: its loop and signals, the workers it supervises,
 * taking over from another master, and the metrics endpoint.
 */
#ifndef RTPPROXYD_MASTER_H
#define RTPPROXYD_MASTER_H

#include "common.h"
#include "conf.h"
#include "ipc.h"
#include "shm.h"

struct event_base;

/* metrics.c: the Prometheus endpoint, on the master's loop */
int	metrics_bind(const struct config *);
int	metrics_start(struct event_base *);
void	metrics_stop(void);
int	metrics_fd(void);

/* master.c */
struct event;

struct master_worker {
	int		 id;
	pid_t		 pid;
	uint32_t	 gen;
	int		 sock;			/* -1: not running */
	int		 ready;
	uint16_t	 port_lo, port_hi;	/* even .. odd, inclusive */
	int64_t		 started_ms;
	int64_t		 ready_ms;	/* 0: not ready since started */
	int		 fast_deaths;
	int		 killed;	/* by us (master_kill) */
	int		 crash_run;	/* crashes blamed on sessions, in a row */
	uint32_t	 spawns;
	struct event	*ev;		/* readable event socket */
	struct event	*wev;		/* writable, while outq is not empty */
	struct event	*respawn_ev;
	struct ipc_queue outq;		/* waiting for room in the socket */
	uint32_t	 nsessions;
	/* a worker of a previous master, taken over (not our child) */
	int		 adopted;
	int		 pidfd;		/* tells when it is gone; or -1 */
	struct event	*pid_ev;
	struct event	*adopt_ev;	/* it has this long to say READY */
};

struct master {
	struct event_base	*base;
	struct config		*conf;
	struct shm_table	 shm;
	struct master_worker	*workers;
	int			 nworkers;
	int			 nready;
	int			 stopping;	/* 1 graceful, 2 now */
	int			 started;	/* every worker was ready once */
	int			 notify_fd;	/* daemon_detach's pipe */
	int			 pidfd;
	char			 self[4096];	/* path to re-exec */
	char			**argv;		/* ours, for a new master */
	void			(*overrides)(struct config *);
	/* taking over from a running master (SIGUSR2 of that one) */
	int			 takeover_fd;	/* -1: no */
	int			 adopting;	/* the table existed */
	/* handing over to a new master (SIGUSR2 of this one) */
	pid_t			 up_pid;
	int			 up_sock;
	struct event		*up_ev;
	struct event		*up_timer;
	int			 handed_off;
};

extern struct master *master_self;

int	master_main(struct config *, int, void (*)(struct config *), char **);
uint64_t master_nofile(const struct config *, int);
int	master_send(int, struct ipc_hdr *, const int *, int);
int	master_send_now(int, struct ipc_hdr *);
/* What ended a worker, as master_worker_gone is told */
#define MASTER_GONE_UNKNOWN	0	/* no status (adopted), or we killed it */
#define MASTER_GONE_KILLED	1	/* SIGKILL from outside */
#define MASTER_GONE_CRASHED	2	/* a fault signal, or a failure exit */
void	master_worker_gone(struct master_worker *, const char *, int);
void	master_kill(struct master_worker *);
void	master_spawn(struct master_worker *);
void	master_worker_attach(struct master_worker *, int);
void	master_flush_all(int);

/* takeover.c: a master that takes over from another, without loss */
int	takeover_from_env(void);
int	takeover_may_listen(const struct config *, char *, size_t);
int	takeover_privileged(const struct config *, const char **);
int	takeover_handshake(struct master *, int *, char *, size_t);
int	takeover_adopt(struct master *, struct master_worker *);
int	takeover_listen(struct master *, int);
void	takeover_begin(struct master *);
int	takeover_probe_listen(const struct config *, char *, size_t);
int	master_restart_cmd(const char *);
int	master_worker_ready(int);
int	master_worker_of_port(uint16_t);
void	master_worker_range(int, uint16_t *, uint16_t *);

#endif
