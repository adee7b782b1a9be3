/*
 * Shared by the libFuzzer targets.  An invariant that fails aborts, which
 * libFuzzer reports as a crash and keeps the input.
 */
#ifndef RTPPROXYD_FUZZ_H
#define RTPPROXYD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The page token key of fuzz_request, and of the seeds mkseeds makes. */
#define FUZZ_TOKEN_KEY	((const uint8_t *)"fuzz-page-token")	/* 16 */
int	LLVMFuzzerInitialize(int *, char ***);

#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

#define FUZZ_CHECKF(cond, ...) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s: ",	\
		    __FILE__, __LINE__, #cond);				\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

static inline uint16_t
fuzz_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
fuzz_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

#ifdef PROTOBUF_C_H
#include <string.h>

int	utf8_valid(const char *, size_t);

/*
 * Every string of a decoded message, however deeply nested, is valid
 * UTF-8 (request_decode promises it).  Returns how many strings it saw.
 */
static inline size_t fuzz_pb_strings(const ProtobufCMessage *, int);

static inline size_t
fuzz_pb_value(const ProtobufCFieldDescriptor *f, const void *v, int depth)
{
	if (v == NULL)
		return 0;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		return fuzz_pb_strings(v, depth + 1);
	FUZZ_CHECKF(utf8_valid(v, strlen(v)), "%s", f->name);
	return 1;
}

static inline size_t
fuzz_pb_strings(const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor	*d = m->descriptor;
	const ProtobufCFieldDescriptor		*f;
	const char				*base = (const char *)m;
	void *const				*arr;
	size_t					 i, k, n, count = 0;

	FUZZ_CHECK(depth < 64);
	for (i = 0; i < d->n_fields; i++) {
		f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_STRING &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			count += fuzz_pb_value(f, *(void *const *)(base +
			    f->offset), depth);
			continue;
		}
		n = *(const size_t *)(base + f->quantifier_offset);
		arr = *(void *const *const *)(base + f->offset);
		FUZZ_CHECK(n == 0 || arr != NULL);
		for (k = 0; k < n; k++) {
			FUZZ_CHECK(arr[k] != NULL);
			count += fuzz_pb_value(f, arr[k], depth);
		}
	}
	return count;
}
#endif

#endif
