/* Internal to the gRPC service files (grpcsvc.c, reflection.c). */
#ifndef RTPPROXYD_GRPCSVC_H
#define RTPPROXYD_GRPCSVC_H

#include <stddef.h>
#include <stdint.h>

/* The embedded FileDescriptorSet (proto/descriptors.c, generated). */
extern const unsigned char rp_descriptors[];
extern const size_t rp_descriptors_len;

/* A bounds-checked reader of protobuf wire format. */
struct refl_wire {
	const uint8_t	*p;
	const uint8_t	*end;
};

int	reflection_wire_next(struct refl_wire *, uint32_t *, int *,
	    const uint8_t **, size_t *);

/*
 * Server reflection, without any gRPC in it: the service code runs the
 * stream and hands each request's bytes here.
 */
struct refl_stream;

/* Index the descriptor set; list only those of the services it describes. */
int	reflection_init(const char *const *, size_t);
void	reflection_free(void);
struct refl_stream *reflection_stream_new(void);
void	reflection_stream_free(struct refl_stream *);
/* The response to one ServerReflectionRequest: 0 (*out from malloc) or -1. */
int	reflection_answer(struct refl_stream *, const uint8_t *, size_t,
	    uint8_t **, size_t *);
/* For tests and logs: how many files and symbols were indexed. */
size_t	reflection_nfiles(void);
size_t	reflection_nsymbols(void);

/* request.c: decoding and checking requests */
#include <protobuf-c/protobuf-c.h>

struct rp_error;
struct session_params;
struct Rtpproxy__CreateSessionRequest;

#define REQUEST_MALFORMED	"malformed request"

int	request_check_strings(const ProtobufCMessageDescriptor *,
	    const uint8_t *, size_t, const char *, int, struct rp_error *);
ProtobufCMessage *request_decode(const ProtobufCMessageDescriptor *,
	    const uint8_t *, size_t, struct rp_error *);
int	request_check_id(const char *, int, struct rp_error *);
int	request_create_params(const struct Rtpproxy__CreateSessionRequest *,
	    struct session_params *, struct rp_error *);
struct Rtpproxy__UpdateSessionRequest;
struct session_update;
int	request_update_params(const struct Rtpproxy__UpdateSessionRequest *,
	    struct session_update *, struct rp_error *);

/* ListSessions page tokens, keyed per process. */
#define REQUEST_TOKEN_KEYLEN	16
#define REQUEST_TOKEN_MAX	32	/* a token's buffer, NUL included */
void	request_token_make(const uint8_t *, uint32_t, uint32_t, char *,
	    size_t);
int	request_token_parse(const uint8_t *, const char *, uint32_t *,
	    uint32_t *);

#endif
