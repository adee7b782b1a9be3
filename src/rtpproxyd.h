/*
 * rtpproxyd: prototypes grouped by the file that defines them.
 */
#ifndef RTPPROXYD_H
#define RTPPROXYD_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/queue.h>

#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <syslog.h>

#include "ipc.h"
#include "shm.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR	"/run"
#endif
#define RTPPROXYD_CONF	SYSCONFDIR "/rtpproxyd.conf"

#define __dead		__attribute__((__noreturn__))
#define __printflike(a, b) __attribute__((__format__(__printf__, a, b)))

/* gRPC status codes, used by the session layer to say what went wrong. */
enum rp_code {
	RP_OK = 0,
	RP_CANCELLED = 1,
	RP_UNKNOWN = 2,
	RP_INVALID_ARGUMENT = 3,
	RP_NOT_FOUND = 5,
	RP_ALREADY_EXISTS = 6,
	RP_PERMISSION_DENIED = 7,
	RP_RESOURCE_EXHAUSTED = 8,
	RP_FAILED_PRECONDITION = 9,
	RP_UNIMPLEMENTED = 12,
	RP_INTERNAL = 13,
	RP_UNAVAILABLE = 14,
	RP_UNAUTHENTICATED = 16,
};

struct rp_error {
	enum rp_code	code;
	char		msg[256];
};

/* log.c */
void	log_init(int, int, int, const char *);
void	log_setlevel(int);
int	log_getlevel(void);
void	log_warn(const char *, ...) __printflike(1, 2);
void	log_warnx(const char *, ...) __printflike(1, 2);
void	log_notice(const char *, ...) __printflike(1, 2);
void	log_info(const char *, ...) __printflike(1, 2);
void	log_debug(const char *, ...) __printflike(1, 2);
__dead void fatal(const char *, ...) __printflike(1, 2);
__dead void fatalx(const char *, ...) __printflike(1, 2);
int	log_level_from_name(const char *);
const char *log_level_name(int);
int	log_facility_from_name(const char *);

/* xmalloc.c: control paths only; never returns NULL */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
int	 xasprintf(char **, const char *, ...) __printflike(2, 3);

/* util.c */
int64_t	 now_ms(void);			/* CLOCK_REALTIME, ms */
int64_t	 mono_ms(void);			/* CLOCK_MONOTONIC, ms */
int	 set_nonblock(int);
int	 set_cloexec(int, int);
int	 parse_ip(const char *, uint16_t, struct sockaddr_storage *,
	    socklen_t *);
int	 parse_u32(const char *, uint32_t, uint32_t, uint32_t *);
int	 utf8_valid(const char *, size_t);
const char *sa_ntop(const struct sockaddr *, char *, size_t);
int	 proc_alive(pid_t);
int	 ports_ephemeral(uint16_t, uint16_t, const char *, const char *,
	    uint16_t *, uint16_t *);
void	 proc_wait_gone(pid_t, int, int);
int	 file_read(const char *, size_t, char **, size_t *);
const char *file_strerror(size_t);
int	 rp_err(struct rp_error *, enum rp_code, const char *, ...)
	    __printflike(3, 4);

/* config.c */
#define CONF_MAX_LISTEN	8

struct config {
	char		*listen[CONF_MAX_LISTEN];	/* host:port or unix:/path */
	int		 nlisten;
	int		 workers;		/* 0: one per CPU */
	uint16_t	 port_min;		/* even */
	uint16_t	 port_max;		/* odd; RTCP of the last pair */
	uint32_t	 max_sessions;
	uint32_t	 idle_timeout;		/* s */
	uint32_t	 setup_timeout;		/* s */
	uint32_t	 stats_interval;	/* ms; 0: none by default */
	uint32_t	 event_queue;		/* per subscriber */
	uint32_t	 shutdown_grace;	/* s */
	int		 log_level;		/* LOG_ERR .. LOG_DEBUG */
	int		 log_facility;		/* LOG_DAEMON ... */
	char		*user;
	char		*group;
	char		*pidfile;		/* NULL: none */
	char		*shm_name;		/* "/rtpproxyd" */
	char		*path;			/* the file it came from */

	/* where media may go: allow-/deny-destination, in file order */
	struct shm_acl_rule *rules;
	size_t		 nrules;
	int		 reverse_source;	/* CONF_RS_* */
	uint32_t	 rate_pps;		/* per direction; 0: none */
	uint64_t	 rate_bps;
	uint32_t	 rate_burst_ms;
	int		 latch_policy;		/* SHM_LATCH_* */
	uint32_t	 latch_learn_ms;
	uint32_t	 latch_quiet_ms;
	uint32_t	 latch_run;

	/* the API's security */
	char		*auth_token_file;
	unsigned int	 auth_token_line;
	char		**tokens;		/* from auth-token-file */
	size_t		 ntokens;
	int		 auth_health_open;	/* Health/Check without token */
	char		*tls_cert, *tls_key, *tls_client_ca;
	unsigned int	 tls_line[3];
	char		*tls_pem[3];		/* their contents */

	char		*metrics_listen;	/* host:port; NULL: none */
	uint32_t	 orphan_timeout;	/* s a worker waits for a master */

	/* the API's connections (apigate.c) */
	uint32_t	 api_max_conns;		/* in all */
	uint32_t	 api_max_per_client;	/* per address; 0: no limit */
	uint32_t	 api_handshake_timeout;	/* s for TLS and the preface */
	uint32_t	 api_idle_timeout;	/* s without a call; 0: never */
	uint32_t	 api_max_streams;	/* calls at once per connection */
};

#define CONF_RS_ANY		0	/* reverse media from anywhere */
#define CONF_RS_ADDRESS		1	/* only from the destination address */
#define CONF_RS_ADDRESS_PORT	2	/* ... and its port */

#define CONF_MAX_RULES	(SHM_ACL_MAX - 64)	/* room for built-in ones */
#define CONF_MAX_TOKENS	16

void	config_defaults(struct config *);
int	config_load(struct config *, const char *, int, char *, size_t);
int	config_parse_buf(struct config *, const char *, const char *,
	    char *, size_t);
void	config_free(struct config *);
int	config_load_files(struct config *, char *, size_t);
void	config_free_secrets(struct config *);
int	config_parse_bps(const char *, uint64_t *);
const char *config_rs_name(int);
const char *config_latch_name(int);
void	config_dump(const struct config *, FILE *);

/* daemon.c: the Unix daemon chores */
int	daemon_pidfile_open(const char *, pid_t *, char *, size_t);
int	daemon_pidfile_write(int);
void	daemon_pidfile_close(int, const char *);
int	daemon_detach(int *);
void	daemon_detach_done(int, int);
int	daemon_drop_privileges(const char *, const char *, int, char *,
	    size_t);
void	daemon_clear_ambient(void);
int	daemon_raise_nofile(uint64_t, char *, size_t);
void	daemon_notify(const char *);
void	daemon_notify_barrier(int);

/* acl.c: where media may go */
#define ACL_ALLOW	0
#define ACL_DENY	1
#define ACL_SELF	2
#define ACL_OWN		3	/* for acl_explain: one of our sockets */
/* What acl_check is asked about: */
#define ACL_UDP		0	/* a UDP destination or sender */
#define ACL_TCP		1	/* a TCP destination: the API ports too */
#define ACL_TCP_PEER	2	/* a TCP caller that connected to us */
#define ACL_UDP_SRC	3	/* a UDP sender, to latch on to */

int	acl_parse(const char *, struct shm_acl_rule *, char *, size_t);
const char *acl_rule_str(const struct shm_acl_rule *, char *, size_t);
int	acl_check(const struct shm_acl *, const struct sockaddr *, int, int *);
int	acl_own_socket(const struct shm_acl *, const struct shm_table *,
	    const struct sockaddr *);
int	acl_local(const struct shm_acl *, const struct sockaddr *,
	    struct sockaddr_storage *);
void	acl_explain(const struct shm_acl *, const struct config *,
	    const struct sockaddr *, int, int, const char *, char *, size_t);
int	acl_snapshot(const struct shm_acl *, struct shm_acl *);
void	acl_build(struct shm_acl *, const struct config *);
void	acl_publish(struct shm_acl *, const struct shm_acl *);

/* session.c: the master's session registry */
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
	uint32_t	rate_pps;
	uint64_t	rate_bps;
	uint32_t	latch_policy;	/* SHM_LATCH_* */
	uint32_t	relatches;
	int64_t		created_ms;
	int64_t		last_activity_ms;
	char		error[SHM_REASON_MAX];
	struct session_dirsnap {
		uint64_t packets_received, packets_sent;
		uint64_t bytes_received, bytes_sent;
		uint64_t dropped_invalid, dropped_not_latched;
		uint64_t dropped_send_error, dropped_rate_limited;
		uint64_t dropped_overflow, dropped_source;
		uint64_t non_rtp, rtcp_received, rtcp_sent;
		uint64_t packets_expected;
		int64_t  packets_lost;
		double	 loss_rate, jitter_ms, avg_latency_ms, max_latency_ms;
		int64_t  last_packet_ms;
		uint32_t ssrc;
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
	struct session_snapshot	 snap;
};

struct event_base;
struct master;

int	session_init(struct master *);
void	session_shutdown(void);
int	session_create(const struct session_params *,
	    struct session_snapshot *, struct rp_error *);
int	session_destroy(const char *, struct session_snapshot *,
	    struct rp_error *);
int	session_get(const char *, struct session_snapshot *,
	    struct rp_error *);
int	session_lookup(const char *);		/* slot or -1 */
void	session_snapshot(uint32_t, struct session_snapshot *);
uint32_t session_next(uint32_t);		/* in-use slot >= arg, or nslots */
void	session_close_all(enum shm_close);
const char *session_close_name(enum shm_close);
void	session_worker_ready(int);
void	session_worker_lost(int);
int	session_worker_crashed(int, uint32_t, uint32_t, const char *);
void	session_ipc(int, const struct ipc_hdr *, int *, int);
void	session_have(int, const struct ipc_have *, int *, int);
void	session_adopt_table(void);
void	session_suspend(void);
void	session_reconfigure(const struct config *);
const char *session_state_name(uint32_t);

/* grpcsvc.c: the gRPC service on the master's loop */
int	grpcsvc_start(struct event_base *, const struct config *);
void	grpcsvc_publish(const struct session_event *);
int	grpcsvc_subscribers(void);
const char *grpcsvc_method_path(int);
void	grpcsvc_drain(void (*)(void));
void	grpcsvc_stop(void);
void	grpcsvc_reconfigure(const struct config *);

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

/* worker.c */
int	worker_main(int, char **);
void	worker_report(uint16_t, uint32_t, uint32_t, int, const char *);
void	worker_send_fd(uint16_t, uint32_t, uint32_t, int);
void	worker_send_msg(struct ipc_hdr *);
struct sockaddr_un;
void	worker_adopt_name(struct sockaddr_un *, socklen_t *, const char *,
	    pid_t);
/* tests replace the event socket with this */
extern void (*worker_report_hook)(uint16_t, uint32_t, uint32_t, int,
	    const char *);
extern void (*worker_msg_hook)(const struct ipc_hdr *);

/* relay.c: the packet path, inside a worker */
struct relay;
struct relay_sess;

struct relay	*relay_new(struct event_base *, struct shm_table *);
void		 relay_free(struct relay *);
void		 relay_set_worker(struct relay *, int);
void		 relay_set_gso(struct relay *, int);
uint64_t	 relay_gso_count(const struct relay *);
/* owns the descriptors on success; on -1 the caller still does */
int		 relay_add(struct relay *, uint32_t, uint32_t, int *, int);
void		 relay_remove(struct relay *, uint32_t);
int		 relay_count(const struct relay *);
void		 relay_busy(struct relay *, uint32_t, uint32_t);
void		 relay_idle(struct relay *);
const struct shm_acl *relay_acl(struct relay *);
typedef void	 relay_each_fn(void *, uint32_t, uint32_t, const int *, int,
		    uint32_t, const char *);
void		 relay_each(struct relay *, relay_each_fn *, void *);

/* tcp.c: TCP sessions, inside a worker */
struct tcp_relay;

struct tcp_relay *tcp_new(struct relay *, struct event_base *,
		    struct shm_table *);
void		 tcp_free(struct tcp_relay *);
int		 tcp_add(struct tcp_relay *, uint32_t, uint32_t, int *, int);
int		 tcp_remove(struct tcp_relay *, uint32_t);
int		 tcp_count(const struct tcp_relay *);
void		 tcp_each(struct tcp_relay *, relay_each_fn *, void *);
void		 tcp_frames(struct shm_tcpdir *, struct shm_dir *, uint32_t,
		    const uint8_t *, size_t, int64_t);
int64_t		 tcp_pending(int, int, int);

/* rtpstat.c: RFC 3550 statistics (pure functions on shm state) */
#define RTP_HDR_MIN	12
struct rtp_info {
	uint8_t		 pt;
	uint8_t		 marker;
	uint16_t	 seq;
	uint32_t	 ts;
	uint32_t	 ssrc;
	size_t		 hdrlen;	/* header incl. CSRCs and extension */
	size_t		 padlen;
	uint32_t	 dyn_rate;	/* caller's clock for PT 96-127; 0: 8000 */
};

int	rtp_parse(const uint8_t *, size_t, struct rtp_info *);
int	rtp_parse_head(const uint8_t *, size_t, struct rtp_info *);
int	rtcp_pt(uint8_t);
int	rtcp_check(const uint8_t *, size_t);
int	srtcp_check(const uint8_t *, size_t);
uint32_t rtp_clock_rate(uint8_t);
void	rtpstat_update(struct shm_dir *, const struct rtp_info *, int64_t);
double	rtpstat_loss_rate(const struct shm_dir *);

#endif
