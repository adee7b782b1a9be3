/*
 * config.c: the configuration file, parsed once into struct config, which
 * the master and the layers it runs (sessions, the API) read.  A worker
 * never sees it.
 */
#ifndef RTPPROXYD_CONF_H
#define RTPPROXYD_CONF_H

#include "addr.h"
#include "common.h"
#include "shm.h"

/* config.c */
#define CONF_MAX_LISTEN	8
#define CONF_NODE_MAX	64	/* node-id, redis-prefix: bytes */
#define CONF_MAX_STANDBY 8

struct config {
	struct listen_addr listen[CONF_MAX_LISTEN];	/* the API's */
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
	char		*recording_dir;		/* NULL: none */
	unsigned int	 auth_token_line;
	char		**tokens;		/* from auth-token-file */
	size_t		 ntokens;
	int		 auth_health_open;	/* Health/Check without token */
	char		*tls_cert, *tls_key, *tls_client_ca;
	unsigned int	 tls_line[3];
	char		*tls_pem[3];		/* their contents */

	struct listen_addr metrics_listen;	/* ADDR_NONE: none */
	uint32_t	 orphan_timeout;	/* s a worker waits for a master */

	/* the API's connections (apigate.c) */
	uint32_t	 api_max_conns;		/* in all */
	uint32_t	 api_max_per_client;	/* per address; 0: no limit */
	uint32_t	 api_handshake_timeout;	/* s for TLS and the preface */
	uint32_t	 api_idle_timeout;	/* s without a call; 0: never */
	uint32_t	 api_max_streams;	/* calls at once per connection */

	/* the kernel fast path (src/kfwd) */
	int		 kernel_fwd;		/* CONF_KFWD_* */
	char		**kernel_ifs;		/* interfaces it is attached to */
	int		 nkernel_ifs;

	/* the sessions' state in Redis (src/master/redis.c) */
	char		*redis;			/* as written; NULL: none */
	char		*redis_host;		/* numeric; NULL: unix path */
	uint16_t	 redis_port;
	char		*redis_unix;
	uint32_t	 redis_db;
	char		*redis_prefix;
	char		*redis_password_file;
	unsigned int	 redis_password_line;
	char		*redis_password;	/* its contents */
	/* TLS to Redis through the master's bridge (src/repl/redis_tls.c) */
	int		 redis_tls;
	unsigned int	 redis_tls_kwline;	/* of redis-tls */
	char		*redis_tls_ca, *redis_tls_cert, *redis_tls_key;
	unsigned int	 redis_tls_line[3];
	char		*redis_tls_pem[3];	/* their contents */
	char		*redis_tls_name;	/* NULL: the address */
	char		*node_id;		/* NULL: the host's name */
	/* standby-for NODE ADDRESS: take NODE over when ADDRESS is here */
	struct conf_standby {
		char			node[CONF_NODE_MAX];
		struct sockaddr_storage	addr;	/* port 0 */
		char			text[ADDR_TEXT_MAX];
		unsigned int		line;
	}		 standby[CONF_MAX_STANDBY];
	int		 nstandby;
};

#define CONF_MAX_KERNEL_IFS	16

/* kernel-forwarding off | auto | on */
#define CONF_KFWD_OFF		0
#define CONF_KFWD_AUTO		1
#define CONF_KFWD_ON		2

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
const char *config_kfwd_name(int);
void	config_dump(const struct config *, FILE *);

#endif
