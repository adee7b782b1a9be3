/*
 * The master process: its loop and signals, the workers it supervises,
 * taking over from another master, and the metrics endpoint.
 */
#ifndef RTPPROXYD_MASTER_H
#define RTPPROXYD_MASTER_H

#include <event2/util.h>

#include "common.h"
#include "conf.h"
#include "ipc.h"
#include "kfwd.h"
#include "peer.h"
#include "shm.h"

struct event_base;

/* metrics.c: the Prometheus endpoint, on the master's loop */
struct evbuffer;
struct master;

/* What a scrape reads besides the table, and keeps between scrapes. */
struct metrics_view {
	const struct master	*m;
	int64_t			 start_ms;	/* of the listener */
	uint32_t		 nslots;
	double			*vals;		/* 4 x nslots, for quantiles */
	uint64_t		 lost_seen[2];	/* loss never goes back */
};

void	metrics_render(struct evbuffer *, struct metrics_view *);
int	metrics_bind(const struct config *);
struct master;
int	metrics_start(struct event_base *, const struct master *);
void	metrics_stop(void);
int	metrics_fd(void);

/* master.c */
struct event;

struct master {
	struct event_base	*base;
	struct config		*conf;
	struct shm_table	 shm;
	int			 nworkers;
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
	struct peer		 up;		/* to it */
	struct event		*up_timer;
	int			 handed_off;
	int			 kfwd;		/* the kernel fast path runs */
	char			 kfwd_dir[256];	/* where it is pinned */
	struct kfwd_fds		 kf;		/* its map, program, pin dir */
};

int	master_main(struct config *, int, void (*)(struct config *), char **);

/* reload.c: SIGHUP, and the checks start and reload share */
void	reload_config(evutil_socket_t, short, void *);
uint64_t reload_nofile(const struct config *, int);
void	reload_check_ephemeral(uint16_t, uint16_t, const char *);

/* takeover.c: a master that takes over from another, without loss */
int	takeover_from_env(void);
int	takeover_kfwd_from_env(struct kfwd_fds *);
int	takeover_may_listen(const struct config *, char *, size_t);
int	takeover_privileged(const struct config *, const char **);
int	takeover_handshake(struct master *, int *, char *, size_t);
int	takeover_listen(struct master *, int);
void	takeover_begin(struct master *);
int	takeover_probe_listen(const struct config *, char *, size_t);
int	master_restart_cmd(const char *);

#endif
