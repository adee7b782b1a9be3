/*
 * The gate's parts (apigate.c): its table of clients (gate_clients.c)
 * and its TLS (gate_tls.c).
 */
#ifndef RTPPROXYD_GATE_INT_H
#define RTPPROXYD_GATE_INT_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "h2scan.h"

struct config;

/*
 * A client: an address (any port), or a local user on a unix socket.  It
 * is remembered for a while after its last connection closed, so that a
 * client that reconnects does not start afresh with its budgets.
 */
struct gate_client {
	LIST_ENTRY(gate_client)	 hash;
	TAILQ_ENTRY(gate_client) idle;		/* while nconns == 0 */
	uint8_t			 key[17];	/* family or 0 for uid; bytes */
	int			 nconns;
	int64_t			 idle_since;
	struct h2rates		 rates;
};
LIST_HEAD(gate_bucket, gate_client);
TAILQ_HEAD(gate_idle, gate_client);

#define GATE_HASH		1024	/* buckets of clients */
#define GATE_CLIENTS_IDLE	4096	/* clients remembered with no conns */
#define GATE_CLIENT_KEEP_MS	(60 * 1000)

struct gate_clients {
	struct gate_bucket	 hash[GATE_HASH];
	struct gate_idle	 idle;
	int			 nidle;
};

void	gate_clients_init(struct gate_clients *);
struct gate_client *gate_client_get(struct gate_clients *,
	    const struct sockaddr_storage *, int, uid_t);
void	gate_client_put(struct gate_clients *, struct gate_client *);
void	gate_clients_free(struct gate_clients *);

/* TLS as the last good configuration asked for it. */
struct gate_tls {
	SSL_CTX		*ctx;		/* NULL: plain text */
	int		 mtls;		/* client certificates required */
	char		*pem[3];	/* what ctx was made from */
};

int	gate_tls_load(struct gate_tls *, const struct config *, char *,
	    size_t);
void	gate_tls_reload(struct gate_tls *, const struct config *);
void	gate_tls_free(struct gate_tls *);

#endif
