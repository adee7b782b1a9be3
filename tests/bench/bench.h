/*
 * rtpbench: what its files share.  rtpbench.c holds main and the original
 * mode (load for a running daemon); gen.c the packet generator of the new
 * modes; target.c starts and stops the relays under test and samples
 * /proc; compare.c the comparison with the reference relay and the flood;
 * ctlrate.c the control-plane rate.  See tests/bench/README.
 */
#ifndef RTPBENCH_H
#define RTPBENCH_H

#include <sys/types.h>
#include <sys/socket.h>

#include <signal.h>
#include <stdint.h>

struct rpc_client;

#define HIST_US		100000		/* 1 us buckets up to 100 ms */
#define HIST_MS		10000		/* then 1 ms buckets up to 10 s */
#define MAX_PIDS	256
#define MAX_CONF_LINES	32

extern volatile sig_atomic_t	 bench_stop;	/* ^C or SIGTERM */

/* Options of the new modes. */
struct bopts {
	const char	*rtpproxyd;	/* -X */
	const char	*refrelay;	/* -Y */
	const char	*server;	/* -s, for -P against a running daemon */
	const char	*addr;		/* -a */
	pid_t		 dpid;		/* -p */
	int		 counts[16];	/* -N */
	int		 ncounts;
	int		 sessions;	/* -n */
	int		 relay_cpu;	/* -c */
	int		 bench_cpu;	/* the other one */
	int		 payload;	/* -b */
	int		 bidir;		/* -B */
	double		 rate;		/* -r: fixed total rate, no search */
	double		 step_s;	/* -t */
	double		 secs;		/* -d */
	int		 inflight;	/* -i */
	int		 burst;		/* -G */
	int		 tries;		/* -T */
	const char	*conf[MAX_CONF_LINES];	/* -o */
	int		 nconf;
	int		 record;	/* -W: rtpproxyd records every session */
};

/* A latency histogram in microseconds. */
struct hist {
	uint64_t	 b[HIST_US];
	uint64_t	 ms[HIST_MS + 1];
	uint64_t	 n;
	uint64_t	 max_ns;
};

void	 hist_reset(struct hist *);
void	 hist_add(struct hist *, int64_t);
double	 hist_pct(const struct hist *, double);	/* us */

int64_t	 mono_ns(void);
int64_t	 real_ns(void);

/* target.c: processes and their CPU time, memory, and the cores' */
struct cpu {
	int	 n;
	pid_t	 pid[MAX_PIDS];
	uint64_t ticks[MAX_PIDS];	/* utime + stime */
	uint64_t rss_kb[MAX_PIDS];
	uint64_t wait_ns[MAX_PIDS];	/* runnable, not running */
};

struct corestat {
	uint64_t busy, idle, steal;	/* ticks */
};

void	 cpu_sample(pid_t, struct cpu *);
double	 cpu_delta(const struct cpu *, const struct cpu *, int *);
double	 cpu_wait_delta(const struct cpu *, const struct cpu *);
uint64_t sched_wait_ns(pid_t);
int	 core_sample(int, struct corestat *);
void	 core_delta(const struct corestat *, const struct corestat *,
	    double *, double *);
double	 self_cpu(void);

enum { T_REF, T_RTPP };

/* A relay under test: the reference, or rtpproxyd with one worker. */
struct target {
	int			 kind;
	const char		*path;
	const char		*name;
	int			 cpu;
	pid_t			 pid;
	char			 dir[64];	/* scratch: config, log, pid */
	char			 server[64];	/* rtpproxyd's gRPC address */
	char			 shm[64];
	int			 in, out;	/* refrelay's stdin, stdout */
	struct rpc_client	*rpc;
	int			 record;	/* sessions are recorded (-W) */
};

/* One session as the generator sees it. */
struct bsession {
	struct sockaddr_storage	 listen;	/* the caller sends here */
	struct sockaddr_storage	 forward;	/* the destination sends here */
	socklen_t		 listenlen, forwardlen;
};

int	 target_start(struct target *, int, const char *,
	    const struct bopts *, int);
int	 target_sessions(struct target *, const char *,
	    const struct sockaddr_storage *, socklen_t, struct bsession *, int);
int	 target_ref_add(struct target *, const char *, const char *,
	    unsigned, struct bsession *);
int	 target_ref_ready(struct target *);
void	 target_stop(struct target *);
void	 target_stop_all(void);
int	 bench_pin(int);

/* gen.c: the generator */
struct gen;

struct step {
	double		 rate;		/* asked; 0: as fast as possible */
	int		 disturbed;	/* other load had the cores */
	int		 burst;		/* packets sent to a stream at once */
	double		 secs;		/* sending */
	uint64_t	 sent;		/* accepted by the kernel */
	uint64_t	 unsent;	/* our own socket was full */
	uint64_t	 received;	/* of this step, however late */
	uint64_t	 received_window; /* of those, while sending */
	uint64_t	 stale;		/* of earlier steps */
	uint64_t	 late;		/* of those, later than LATE_MS */
	uint64_t	 bench_drops;	/* our receive buffers overflowed */
	double		 relay_cpu;	/* s, utime + stime */
	double		 relay_cpu_main;	/* of that, the master's */
	double		 bench_cpu;	/* s, ours */
	double		 relay_busy, relay_steal;	/* its core, 0..1 */
	double		 bench_busy, bench_steal;	/* ours */
	double		 bench_load;	/* share of the time it had work */
	double		 relay_wait, bench_wait;	/* s runnable, waiting */
	struct hist	*lat;
	struct cpu	 after;		/* the relay's processes, at the end */
};

struct gen *gen_new(const char *, int, int);
void	 gen_free(struct gen *);
void	 gen_addr(struct gen *, int, struct sockaddr_storage *, socklen_t *);
void	 gen_set_sessions(struct gen *, const struct bsession *, int, int);
int	 gen_warmup(struct gen *);
int	 gen_step(struct gen *, double, double, int, const struct target *,
	    const struct bopts *, struct step *);
double	 step_loss(const struct step *);
uint64_t gen_stream_got(const struct gen *, int);
int	 gen_nstreams(const struct gen *);

/* compare.c */
int	 compare_run(const struct bopts *);
int	 flood_run(const struct bopts *);

/* ctlrate.c */
int	 ctlrate_run(const struct bopts *);

#endif
