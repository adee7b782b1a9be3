/*
 * A small gRPC client on gRPC C core and protobuf-c, for rtpproxyctl and
 * the tests.  Calls block; each has a deadline.  Return values are gRPC
 * status codes (0 = OK); details, when given, receive the status message.
 */
#ifndef RTPPROXYD_CLIENT_H
#define RTPPROXYD_CLIENT_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

struct rpc_client;
struct rpc_stream;

#define RPC_TIMEOUT	(-1)	/* rpc_stream_next: nothing within the time */

struct rpc_client *rpc_client_new(const char *);	/* host:port, unix:/path */
void	 rpc_client_free(struct rpc_client *);

int	 rpc_unary(struct rpc_client *, const char *, const ProtobufCMessage *,
	    const ProtobufCMessageDescriptor *, ProtobufCMessage **,
	    char *, size_t, int);
int	 rpc_unary_raw(struct rpc_client *, const char *, const void *, size_t,
	    void **, size_t *, char *, size_t, int);

struct rpc_stream *rpc_stream_open(struct rpc_client *, const char *,
	    const ProtobufCMessage *, int);
int	 rpc_stream_next(struct rpc_stream *, const ProtobufCMessageDescriptor *,
	    ProtobufCMessage **, int);
int	 rpc_stream_status(struct rpc_stream *, char *, size_t);
void	 rpc_stream_cancel(struct rpc_stream *);
void	 rpc_stream_free(struct rpc_stream *);

#endif
