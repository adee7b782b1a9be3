/*
 * Running the real rtpproxyd for tests: a private directory with a config
 * file, a gRPC port and a shared-memory name of its own, stderr captured in
 * a log file, and clean-up of every process it started.
 */
#ifndef RTPPROXYD_HARNESS_H
#define RTPPROXYD_HARNESS_H

#include <sys/types.h>
#include <sys/socket.h>
#include <check.h>
#include <stdint.h>

#include "client.h"
#include "rtpproxy.pb-c.h"

#define M_CREATE	"/rtpproxy.RtpProxy/CreateSession"
#define M_DESTROY	"/rtpproxy.RtpProxy/DestroySession"
#define M_STATUS	"/rtpproxy.RtpProxy/GetSessionStatus"

struct daemon {
	pid_t		pid;
	char		dir[128];	/* private temporary directory */
	char		conf[192];
	char		log[192];
	char		pidfile[192];
	char		grpc[64];	/* "127.0.0.1:PORT" */
	char		shm[64];	/* shm object name, "/rtpproxyd-test-..." */
	uint16_t	grpc_port;
	uint16_t	port_min;	/* media port range */
	uint16_t	port_max;
	int		workers;
};

/*
 * Start `$RTPPROXYD -f -c conf` (prefixed by $RTPPROXYD_WRAPPER if set).
 * extra: further config lines (may be NULL).  Waits until the log says that
 * every worker is ready.  0 or -1.  harness_prepare, then harness_launch.
 */
int	harness_start(struct daemon *, int workers, const char *extra);
/* Only prepare dir/conf (for tests that start the binary themselves). */
int	harness_prepare(struct daemon *, int workers, const char *extra);
/*
 * A "key value" config line in place of the one for key, or added.  A
 * listen or port-range line updates grpc or port_min/port_max.  0 or -1.
 */
int	harness_conf_set(struct daemon *, const char *line);
/* Append a line to the configuration file.  0 or -1. */
int	harness_conf_add(struct daemon *, const char *line);
/* Start the binary on a prepared directory; wait_ready: as harness_start. */
int	harness_launch(struct daemon *, int wait_ready);
/* Count of lines in the log containing s; wait until >= n.  0 or -1. */
int	harness_wait_log(struct daemon *, const char *s, int n, int ms);
int	harness_log_count(struct daemon *, const char *s);
/* SIGTERM, wait; SIGKILL after ms.  Returns the wait status or -1. */
int	harness_stop(struct daemon *, int ms);
/* The pid of worker id from its latest "worker ID ready" log line. */
pid_t	harness_worker_pid(struct daemon *, int id);
/* Signal the workers of d's table, whoever their master is. */
void	harness_kill_workers(struct daemon *, int);
pid_t	harness_pidfile_pid(struct daemon *);
/* Remove the directory; kill anything still running. */
void	harness_cleanup(struct daemon *);
/* Scale for timeouts when running under valgrind (RTPPROXYD_SLOW). */
int	harness_slow(void);
/* ms scaled by harness_slow: every wait a test bounds. */
int	harness_ms(int ms);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t	harness_now_ms(void);
void	harness_sleep_ms(int ms);
/*
 * The value of the first line of GET /metrics from 127.0.0.1:port that is
 * exactly `sample VALUE` (sample: a name with its labels, if any); -1 if
 * there is none or the daemon does not answer within 5 s (scaled).
 */
long long harness_metric(uint16_t port, const char *sample);
/* Media ranges of harness daemons: 90 ranges of 200 ports. */
#define HARNESS_MEDIA_MIN	42000
#define HARNESS_MEDIA_MAX	59999
/* The tests' own peer sockets (harness_udp and friends). */
#define HARNESS_PEER_MIN	33000
#define HARNESS_PEER_MAX	41999
/* The daemons' API (and metrics) ports. */
#define HARNESS_API_MIN		60000
#define HARNESS_API_MAX		60999
uint16_t harness_next_port(void);
/*
 * A listening TCP socket on addr (IPv4) at a port of the peer range (a
 * session's TCP destination: never one of a daemon's media ports); its
 * port in *port.  The descriptor or -1.
 */
int	harness_tcp_listen(const char *addr, uint16_t *port);
/* A free TCP port of the API range, for a daemon's listen or metrics. */
uint16_t harness_tcp_port(void);
/* In extra: do not allow loopback destinations as harness_prepare does. */
#define HARNESS_NOALLOW		"# no default allow"
int	harness_media_port(uint16_t);
uint16_t harness_fd_port(int);

/* A UDP socket bound to 127.0.0.1 (or ::1 if v6) on an ephemeral port. */
int	harness_udp(int v6, uint16_t *port);
/* The same on the given port (0: any). */
int	harness_udp_bind(int v6, uint16_t port);
/* 127.0.0.1 or ::1, port; and the port of an address. */
void	harness_sa_loopback(struct sockaddr_storage *, socklen_t *, int v6,
	    uint16_t port);
uint16_t harness_sa_port(const struct sockaddr_storage *);
/*
 * Wait up to ms for a datagram (scaled by harness_slow() here: pass it
 * unscaled); returns its length or -1.
 */
ssize_t	harness_recv(int fd, void *buf, size_t len, int ms,
	    struct sockaddr_storage *from);
int	harness_send(int fd, const char *addr, uint16_t port, const void *,
	    size_t);
/* A UDP socket bound to addr (any loopback address), port 0: any. */
int	harness_udp_addr(const char *addr, uint16_t port, uint16_t *bound);
/* An RTP packet (PCMU) with payload bytes of 0xd5; its length. */
size_t	harness_rtp(uint8_t *, uint16_t seq, uint32_t ts, uint32_t ssrc,
	    size_t payload);
/* GetSessionStatus of id: its session (free with harness_info_free). */
int	harness_status(struct rpc_client *, const char *id,
	    Rtpproxy__SessionInfo **);
/*
 * The same once its forward direction has counted n packets received, or
 * after 5 s (scaled): a worker adds a batch's counts after it has sent
 * the batch, so the last packet may be at its destination a moment
 * before the status shows it.  The caller holds the figures to account.
 */
int	harness_status_counted(struct rpc_client *, const char *id,
	    uint64_t n, Rtpproxy__SessionInfo **);
void	harness_info_free(Rtpproxy__SessionInfo *);
/* SIGHUP, and wait for the log to say the reload is done (or refused). */
int	harness_reload(struct daemon *);

/* Does this pid still exist (and is not a zombie)? */
int	harness_alive(pid_t);
/* A process's effective capabilities (CapEff of /proc/PID/status). */
unsigned long long harness_cap_eff(pid_t);
#define HARNESS_CAP_BIND	(1ULL << 10)	/* CAP_NET_BIND_SERVICE */
/* popen(cmd): its output into out (may be NULL); its exit code or -1. */
int	harness_run(const char *cmd, char *out, size_t len);

/*
 * CreateSession over gRPC.  An endpoint is sent when its address is not
 * NULL; id NULL sends "" (the server makes one).
 */
struct harness_session {
	const char	*id;
	const char	*laddr;		/* listen */
	uint32_t	 lport;
	const char	*faddr;		/* forward */
	uint32_t	 fport;
	const char	*daddr;		/* destination */
	uint32_t	 dport;
	int		 transport;
	int		 nortcp;
	int		 unidirectional;
	uint32_t	 idle;		/* idle_timeout_s */
	uint32_t	 stats_ms;	/* stats_interval_ms */
	uint32_t	 clock_rate;
	int		 reverse_source;	/* Rtpproxy__ReverseSource */
	uint32_t	 rate_pps;
	uint64_t	 rate_bps;
	int		 latch_policy;	/* Rtpproxy__LatchPolicy */
	uint32_t	 dtmf_pt;	/* 0: 101 */
	int		 drop_dtmf;
};
/*
 * The gRPC status; *out is the reply, NULL unless OK (free it with
 * protobuf_c_message_free_unpacked; out NULL: freed here).  details may be
 * NULL.  10 s deadline (scaled by harness_slow).
 */
int	harness_create(struct rpc_client *, const struct harness_session *,
	    Rtpproxy__CreateSessionResponse **out, char *details, size_t);
/*
 * GetSessionStatus or DestroySession (method M_STATUS, M_DESTROY) of id.
 * *resp: the reply, as above; *info: its session, NULL unless OK.
 */
int	harness_by_id(struct rpc_client *, const char *method, const char *id,
	    Rtpproxy__SessionInfo **info, void **resp, char *details, size_t);
int	harness_destroy(struct rpc_client *, const char *id);

/*
 * A test case added to the suite: these tests (up to NULL), unchecked
 * fixtures (may be NULL), timeout_s scaled by harness_slow.
 */
TCase	*harness_tcase(Suite *, const char *name, void (*setup)(void),
	    void (*teardown)(void), int timeout_s, const TTest *const *tests);
/* Run every test (CK_NORMAL); 0 if all passed, otherwise 1. */
int	harness_run_suite(Suite *);
/*
 * Session tables that the daemons of failed tests left in /dev/shm: check
 * ends a failed test's process with _exit() and kills its process group
 * (its daemons with it, by SIGKILL) before any teardown runs.  A test
 * table is named for the test's process; once that is gone, so is the
 * table.  harness_run_suite sweeps before and after its tests.
 */
void	harness_sweep_tables(void);

#endif
