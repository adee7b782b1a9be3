/*
 * Server reflection: reflection_answer on the bytes of a
 * ServerReflectionRequest, after request_check_strings as the service
 * does it (and also without, since the answer must not depend on the
 * check for its memory safety).
 *
 * Input: the request's wire bytes.  The answer must decode as a
 * ServerReflectionResponse that echoes the request, of the kind the
 * request asks for: files that are whole descriptors, an error with
 * NOT_FOUND and a valid UTF-8 message, or the list of services.  Asked
 * twice on one stream, a file comes back alone the second time: its
 * imports were sent already.
 */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "sessions.h"
#include "grpcsvc.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "fuzz.h"

#define RESP(x) \
	GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x
#define REQ(x) \
	GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##x

static const char *const services[] = {
	"rtpproxy.RtpProxy",
	"grpc.health.v1.Health",
	"grpc.reflection.v1.ServerReflection",
	"grpc.reflection.v1alpha.ServerReflection",
};
#define NSERVICES	(sizeof(services) / sizeof(services[0]))

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (reflection_init(services, NSERVICES) == -1 ||
	    reflection_nfiles() == 0)
		abort();
	return 0;
}

/* A FileDescriptorProto walks to its end and has a name (field 1). */
static void
check_file(const ProtobufCBinaryData *b)
{
	struct refl_wire	 r = { b->data, b->data + b->len };
	const uint8_t		*val;
	size_t			 vlen;
	uint32_t		 num;
	int			 rc, named = 0;

	while ((rc = reflection_wire_next(&r, &num, NULL, &val, &vlen)) == 1)
		if (num == 1 && val != NULL)
			named = 1;
	FUZZ_CHECK(rc == 0 && named);
}

/*
 * Returns how many files the answer holds (-1 for another kind, -2 for
 * an answer to an unchecked request that does not decode).
 */
static int
check_answer(const uint8_t *out, size_t outlen, int checked,
    const Grpc__Reflection__V1__ServerReflectionRequest *req)
{
	Grpc__Reflection__V1__ServerReflectionResponse	*resp;
	size_t						 i;
	int						 files = -1;

	resp = grpc__reflection__v1__server_reflection_response__unpack(NULL,
	    outlen, out);
	/*
	 * protobuf-c takes some requests it cannot pack back decodably
	 * (a field number 0 in a non-minimal varint), and the answer echoes
	 * the request; the service refuses those with request_check_strings
	 * before it asks for an answer.
	 */
	if (resp == NULL && !checked)
		return -2;
	FUZZ_CHECK(resp != NULL);
	FUZZ_CHECK(resp->original_request != NULL);
	FUZZ_CHECK(resp->original_request->message_request_case ==
	    req->message_request_case);
	FUZZ_CHECK(strcmp(resp->valid_host, req->host) == 0);
	switch (resp->message_response_case) {
	case RESP(FILE_DESCRIPTOR_RESPONSE):
		FUZZ_CHECK(req->message_request_case ==
		    REQ(FILE_BY_FILENAME) || req->message_request_case ==
		    REQ(FILE_CONTAINING_SYMBOL));
		FUZZ_CHECK(resp->file_descriptor_response->
		    n_file_descriptor_proto >= 1);
		FUZZ_CHECK(resp->file_descriptor_response->
		    n_file_descriptor_proto <= reflection_nfiles());
		for (i = 0; i < resp->file_descriptor_response->
		    n_file_descriptor_proto; i++)
			check_file(&resp->file_descriptor_response->
			    file_descriptor_proto[i]);
		files = (int)resp->file_descriptor_response->
		    n_file_descriptor_proto;
		break;
	case RESP(ERROR_RESPONSE):
		FUZZ_CHECK(resp->error_response->error_code == RP_NOT_FOUND);
		if (checked)
			FUZZ_CHECKF(utf8_valid(resp->error_response->
			    error_message, strlen(resp->error_response->
			    error_message)), "%s",
			    resp->error_response->error_message);
		break;
	case RESP(LIST_SERVICES_RESPONSE):
		FUZZ_CHECK(req->message_request_case == REQ(LIST_SERVICES));
		FUZZ_CHECK(resp->list_services_response->n_service ==
		    NSERVICES);
		break;
	case RESP(ALL_EXTENSION_NUMBERS_RESPONSE):
		FUZZ_CHECK(req->message_request_case ==
		    REQ(ALL_EXTENSION_NUMBERS_OF_TYPE));
		FUZZ_CHECK(resp->all_extension_numbers_response->
		    n_extension_number == 0);
		break;
	default:
		/* Even a request of no known kind gets an error. */
		FUZZ_CHECK(!"an answer with nothing in it");
	}
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp,
	    NULL);
	return files;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Grpc__Reflection__V1__ServerReflectionRequest	*req;
	struct refl_stream				*st;
	struct rp_error					 err;
	uint8_t						*in, *out;
	size_t						 outlen;
	int						 checked, first, again;

	if ((in = malloc(size != 0 ? size : 1)) == NULL)
		abort();
	memcpy(in, data, size);
	memset(&err, 0, sizeof(err));
	checked = request_check_strings(
	    &grpc__reflection__v1__server_reflection_request__descriptor,
	    in, size, "", 0, &err) == 0;
	req = grpc__reflection__v1__server_reflection_request__unpack(NULL,
	    size, in);

	st = reflection_stream_new();
	if (reflection_answer(st, in, size, &out, &outlen) == -1) {
		FUZZ_CHECK(req == NULL);
		goto done;
	}
	FUZZ_CHECK(req != NULL);
	if (checked)
		(void)fuzz_pb_strings(&req->base, 0);
	first = check_answer(out, outlen, checked, req);
	free(out);

	FUZZ_CHECK(reflection_answer(st, in, size, &out, &outlen) == 0);
	again = check_answer(out, outlen, checked, req);
	free(out);
	FUZZ_CHECKF(first < 0 ? again == first : again == 1,
	    "first %d files, then %d", first, again);
done:
	if (req != NULL)
		grpc__reflection__v1__server_reflection_request__free_unpacked(
		    req, NULL);
	reflection_stream_free(st);
	free(in);
	return 0;
}
