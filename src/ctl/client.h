/*
 * A small gRPC client on gRPC C core and protobuf-c, for rtpproxyctl and
 * the tests.  Calls block; each has a deadline.  Return values are gRPC
 * status codes (0 = OK); details, when given, receive the status message.
 *
 * A client is not thread-safe: use one per thread.  Timeouts are in
 * milliseconds.
 */
#ifndef RTPPROXYD_CLIENT_H
#define RTPPROXYD_CLIENT_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

struct rpc_client;
struct rpc_stream;

#define RPC_TIMEOUT	(-1)	/* rpc_stream_next: nothing within the time */
#define RPC_EOF		(-2)	/* rpc_stream_next: the stream has ended */

#define RPC_DEFAULT_TIMEOUT_MS	5000

/* host:port, [v6]:port, unix:/path.  NULL only if the target is unusable. */
struct rpc_client *rpc_client_new(const char *);
/*
 * The same, advertising a fixed receive window of about this many bytes
 * per stream instead of one that grows: a slow reader, for tests.
 */
struct rpc_client *rpc_client_new_window(const char *, int);
/*
 * The same with security: TLS when tls is set (ca: PEM of the roots to
 * trust, NULL: the system's; cert and key: PEM of a client certificate
 * for servers that require one; name: the name to expect in the
 * server's certificate instead of the target's host), and a bearer token
 * sent as "authorization" metadata on every call (NULL: none).
 */
struct rpc_security {
	int		 tls;
	const char	*ca, *cert, *key, *name;
	const char	*token;
	int		 window;	/* as rpc_client_new_window; 0: normal */
};
struct rpc_client *rpc_client_new_secure(const char *,
	    const struct rpc_security *);
void	 rpc_client_free(struct rpc_client *);

/*
 * One call: method "/pkg.Service/Method", the request, the descriptor of
 * the response, *resp (free with protobuf_c_message_free_unpacked; NULL
 * unless OK), status details (may be NULL), timeout (<= 0: the default).
 */
int	 rpc_unary(struct rpc_client *, const char *, const ProtobufCMessage *,
	    const ProtobufCMessageDescriptor *, ProtobufCMessage **,
	    char *, size_t, int);
/* The same with bytes: *resp from malloc (may be NULL when OK and empty). */
int	 rpc_unary_raw(struct rpc_client *, const char *, const void *, size_t,
	    void **, size_t *, char *, size_t, int);

/*
 * A server-streaming call (one request, then half-close).  The timeout is
 * the deadline of the whole stream (<= 0: none).  Open waits until the
 * server has answered with its headers (or failed, which rpc_stream_next
 * then reports as RPC_EOF), so a subscription is in place on return.
 * NULL only on a local error.
 */
struct rpc_stream *rpc_stream_open(struct rpc_client *, const char *,
	    const ProtobufCMessage *, int);
/* The same, with the request as bytes (NULL, 0: send no message at all). */
struct rpc_stream *rpc_stream_open_raw(struct rpc_client *, const char *,
	    const void *, size_t, int);
/*
 * The next message: 0 with *msg set; RPC_TIMEOUT after timeout ms (< 0:
 * wait for ever); RPC_EOF when the stream has ended (see
 * rpc_stream_status); GRPC_STATUS_INTERNAL for a message that does not
 * decode (the stream goes on).
 */
int	 rpc_stream_next(struct rpc_stream *, const ProtobufCMessageDescriptor *,
	    ProtobufCMessage **, int);
/*
 * The final status code (details into the buffer).  If the stream has not
 * ended yet, waits for its end up to 5 s, reading and dropping messages;
 * RPC_TIMEOUT if it is still running then.
 */
int	 rpc_stream_status(struct rpc_stream *, char *, size_t);
void	 rpc_stream_cancel(struct rpc_stream *);
void	 rpc_stream_free(struct rpc_stream *);

#endif
