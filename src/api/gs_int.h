/*
 * The gRPC service's own structures, shared by its files: grpcsvc.c (the
 * completion-queue thread, requests, start, drain and stop), gs_call.c
 * (call contexts, replies, authentication), gs_rpc.c (the unary methods)
 * and gs_stream.c (event streams and server reflection).
 */
#ifndef RTPPROXYD_GS_INT_H
#define RTPPROXYD_GS_INT_H

#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/random.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>


#include "api.h"
#include "apigate.h"
#include "conf.h"
#include "grpcsvc.h"
#include "sessions.h"
#include "rtpproxy.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#define GS_MAX_MESSAGE		(64 * 1024)	/* requests are small */
#define GS_PAGE_DEFAULT		100
#define GS_PAGE_MAX		1000
#define GS_MAX_SUBSCRIBERS	1024
#define GS_STOP_WAIT_MS		5000
#define GS_KEEPALIVE_MS		(60 * 1000)
#define GS_KEEPALIVE_TIMEOUT_MS	(20 * 1000)

#define GS_MSG_SHUTDOWN		"server is shutting down"

struct gs_tag {
	void		(*fn)(void *, int);
	void		 *arg;
};

struct gs_done {
	struct gs_tag	*tag;
	int		 ok;
};

enum gs_kind {
	GS_UNARY,
	GS_EVENTS,
	GS_REFLECT,
	GS_UNKNOWN,
};

struct gs_call;
typedef void gs_handler(struct gs_call *, grpc_byte_buffer *);

struct gs_method {
	const char		*path;
	enum gs_kind		 kind;
	gs_handler		*fn;
	void			*handle;
	struct gs_tag		 tag;
	int			 posted;
	grpc_call		*call;
	gpr_timespec		 deadline;
	grpc_metadata_array	 md;
	grpc_byte_buffer	*payload;
};

struct gs_call {
	LIST_ENTRY(gs_call)	 entry;		/* every live call */
	LIST_ENTRY(gs_call)	 sub;		/* event subscribers */
	grpc_call		*call;
	const char		*method;
	enum gs_kind		 kind;
	int			 midx;		/* for the call counters */
	int			 code;		/* the status sent; -1: none */
	int			 refs;
	int			 cancelled;	/* RECV_CLOSE_ON_SERVER says so */
	int			 closed;	/* RECV_CLOSE_ON_SERVER is back */
	int			 sending;	/* one send batch at a time */
	int			 recving;
	int			 status_sent;
	int			 subscribed;
	int			 real;		/* not a refusal while draining */
	int			 want_status;	/* send status once idle */
	grpc_status_code	 want_code;
	const char		*want_msg;
	struct gs_tag		 close_tag, send_tag, recv_tag;
	grpc_byte_buffer	*out;		/* the message being sent */
	grpc_byte_buffer	*in;
	grpc_byte_buffer	*pending;	/* an answer waiting to go */
	grpc_slice		 details;
	int			 has_details;
	char			 peer[160];

	/* StreamSessionEvents */
	char			 filter[SHM_ID_MAX];
	grpc_slice		*ring;
	uint32_t		 ring_cap, ring_head, ring_len;
	uint64_t		 missed;	/* since the last delivered */
	uint64_t		 dropped, delivered;
	int			 warned;

	/* ServerReflectionInfo */
	struct refl_stream	*refl;

	uint32_t		 list_state;	/* a held ListSessions' filter */

	/* a stream's next step when a send completes (or drain begins) */
	void			(*next)(struct gs_call *);
};

LIST_HEAD(gs_calls, gs_call);

gs_handler gs_rpc_create, gs_rpc_destroy, gs_rpc_status, gs_rpc_list,
    gs_rpc_events, gs_rpc_health, gs_rpc_reflect, gs_rpc_takeover,
    gs_rpc_update;

#define GS_NMETHODS	10
#define GS_DEPTH	16	/* requests posted per method */
#define GS_NSLOTS	(GS_NMETHODS * GS_DEPTH)

/* What the master gave for high availability (grpcsvc_set_ha). */
extern struct api_ha gs_ha;

struct grpcsvc {
	struct event_base	*base;
	grpc_server		*server;
	grpc_completion_queue	*cq;
	pthread_t		 thread;
	int			 thread_started;
	int			 efd;
	struct event		*ev;
	struct event		*grace_ev;
	struct event		*done_ev;

	pthread_mutex_t		 lock;		/* q, qlen, qcap */
	struct gs_done		*q, *work;
	size_t			 qlen, qcap, workcap;

	struct gs_method	 methods[GS_NSLOTS];	/* request slots */
	struct gs_tag		 gen_tag;
	int			 gen_posted;
	grpc_call		*gen_call;
	grpc_call_details	 gen_details;
	grpc_metadata_array	 gen_md;

	struct gs_tag		 shutdown_tag;
	int			 shutdown_called;
	int			 shutdown_seen;
	int			 draining;
	int			 conns_closed;	/* the gate let go of them */
	int			 nreal;		/* calls with a real answer */
	struct event		*drain_ev;
	void			(*done)(void);
	void			(*released)(void);	/* a call freed */
	int			 done_called;

	struct gs_calls		 calls;
	struct gs_calls		 subs;
	int			 ncalls, nsubs;
	uint32_t		 event_queue;
	uint32_t		 grace;
	uint8_t			 token_key[REQUEST_TOKEN_KEYLEN];

	/* bearer tokens; none: no authentication */
	char			**tokens;
	size_t			 ntokens;
	int			 health_open;
	int64_t			 authlog_sec;	/* rate of refusal logs */
	int			 authlog_n;
	uint64_t		 authlog_quiet;

	int			 tls;		/* 0 none, 1 TLS, 2 mTLS */
	int			 gate_up;	/* apigate listens */
};

/* SessionInfo from a snapshot, with its storage. */
#define GS_ADDRLEN	(INET6_ADDRSTRLEN + IF_NAMESIZE + 2)

struct gs_info {
	Rtpproxy__SessionInfo		info;
	Rtpproxy__Endpoint		ep[5];
	Rtpproxy__DirectionStats	dir[2];
	char				addr[5][GS_ADDRLEN];
	char				id[SHM_ID_MAX];
	char				error[SHM_REASON_MAX];
	Rtpproxy__Recording		rec;
	char				rec_file[256];
	char				rec_error[128];
};

/* What reflection lists and health knows, when the descriptors have it. */
#define GS_NSERVICES	4
extern const char *const gs_services[GS_NSERVICES];

extern struct grpcsvc	*svc;
extern struct shm_table	*gs_table;

/* gs_call.c */
void	gs_text(char *, size_t, const char *, size_t);
grpc_byte_buffer *gs_pack(const ProtobufCMessage *);
grpc_slice gs_bytes(grpc_byte_buffer *);
ProtobufCMessage *gs_decode(grpc_byte_buffer *,
	    const ProtobufCMessageDescriptor *, struct rp_error *);
struct gs_call *gs_call_new(grpc_call *, const char *, enum gs_kind);
void	gs_call_release(struct gs_call *);
void	gs_unsubscribe(struct gs_call *);
int	gs_batch(struct gs_call *, const grpc_op *, size_t, struct gs_tag *);
void	gs_reply(struct gs_call *, grpc_status_code, const char *,
	    const ProtobufCMessage *);
void	gs_reply_err(struct gs_call *, const struct rp_error *);
void	gs_finish(struct gs_call *, grpc_status_code, const char *);
int	gs_stream_begin(struct gs_call *);
void	gs_on_close(void *, int);
void	gs_on_send(void *, int);
int	gs_auth(const grpc_metadata_array *, const char **);
void	gs_auth_log(const struct gs_call *, const char *);

/* gs_info.c */
Rtpproxy__Endpoint *gs_info_ep(Rtpproxy__Endpoint *, char *,
	    const struct shm_addr *);
Rtpproxy__SessionInfo *gs_info_fill(struct gs_info *,
	    const struct session_snapshot *);

/* gs_stream.c: the handlers are gs_handler */

#endif
