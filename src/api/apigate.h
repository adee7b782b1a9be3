/*
 * apigate.c: the API's connections, accepted by the master and handed to
 * gRPC through a socketpair once they pass the gate's limits.
 */
#ifndef RTPPROXYD_APIGATE_H
#define RTPPROXYD_APIGATE_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "h2scan.h"

struct config;
struct event_base;

struct gate_limits {
	uint32_t	max_conns;	/* in all */
	uint32_t	max_per_client;	/* per address (unix: per user) */
	uint32_t	handshake_s;	/* TLS and the HTTP/2 preface */
	struct h2limits	h2;
};

enum gate_reason {
	GATE_CLOSED_NORMAL,
	GATE_CLOSED_NOT_HTTP2,
	GATE_CLOSED_HEADER_FLOOD,
	GATE_CLOSED_RESET_FLOOD,
	GATE_CLOSED_CONTROL_FLOOD,
	GATE_CLOSED_HANDSHAKE,
	GATE_CLOSED_N
};

struct gate_stats {
	uint64_t	accepted;
	uint64_t	refused_total;	/* api-max-connections */
	uint64_t	refused_client;	/* api-max-connections-per-client */
	uint64_t	refused_fd;	/* out of descriptors */
	uint64_t	tls_failed;
	uint64_t	closed[GATE_CLOSED_N];
	int		open;
};

void	gate_defaults(struct gate_limits *);
/* Listen on the configured addresses; gRPC's server must be started. */
int	gate_start(struct event_base *, grpc_server *, const struct config *);
void	gate_reconfigure(const struct config *);
/* No new connections (the listening sockets are closed). */
void	gate_stop_listening(void);
/* GOAWAY on every connection: no new stream on it. */
void	gate_goaway_all(void);
/* Every connection closed; graceful: once gRPC's last words are out. */
void	gate_close_all(int);
void	gate_stop(void);
int	gate_peer(const char *, char *, size_t, char *, size_t);
int	gate_connections(void);
void	gate_get_stats(struct gate_stats *);
const char *gate_reason_name(enum gate_reason);

#endif
