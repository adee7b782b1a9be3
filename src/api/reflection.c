/*
 * gRPC server reflection (v1 and v1alpha share the wire format) from the
 * FileDescriptorSet embedded at build time.  protobuf-c has no code for
 * descriptor.proto, so the set is walked in wire format; each file's bytes
 * are sent exactly as protoc wrote them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "grpcsvc.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

/* The generated names of the oneof cases are long. */
#define REFL_REQ(x) \
	GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##x
#define REFL_RESP(x) \
	GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x

#define REFL_DEPTH_MAX	32	/* nesting of message types */

struct refl_file {
	char		 *name;
	const uint8_t	 *data;
	size_t		  len;
	char		**depnames;
	size_t		  ndeps;
	size_t		 *deps;		/* resolved indexes */
	size_t		  nresolved;
};

struct refl_sym {
	char	*name;
	size_t	 file;
	int	 is_message;
};

struct refl_stream {
	uint8_t	*sent;			/* per file: already on this stream */
};

static struct {
	struct refl_file	*files;
	size_t			 nfiles;
	struct refl_sym		*syms;
	size_t			 nsyms;
	char			**services;
	size_t			 nservices;
} refl;

static int
wire_varint(struct refl_wire *r, uint64_t *v)
{
	uint64_t	x = 0;
	int		shift;

	for (shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return -1;
		x |= (uint64_t)(*r->p & 0x7f) << shift;
		if ((*r->p++ & 0x80) == 0) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/*
 * The next field of a message in wire format: its number, its wire type,
 * and for length-delimited ones the bytes.  1: a field, 0: end, -1: malformed.
 */
int
reflection_wire_next(struct refl_wire *r, uint32_t *num, int *wt,
    const uint8_t **val, size_t *len)
{
	uint64_t	key, v;

	if (r->p == r->end)
		return 0;
	if (wire_varint(r, &key) == -1 || (key >> 3) == 0 ||
	    (key >> 3) > 0x1fffffff)
		return -1;
	*num = (uint32_t)(key >> 3);
	if (wt != NULL)
		*wt = (int)(key & 7);
	*val = NULL;
	*len = 0;
	switch (key & 7) {
	case 0:
		return wire_varint(r, &v) == -1 ? -1 : 1;
	case 1:
		if (r->end - r->p < 8)
			return -1;
		r->p += 8;
		return 1;
	case 2:
		if (wire_varint(r, &v) == -1 || v > (uint64_t)(r->end - r->p))
			return -1;
		*val = r->p;
		*len = (size_t)v;
		r->p += v;
		return 1;
	case 5:
		if (r->end - r->p < 4)
			return -1;
		r->p += 4;
		return 1;
	default:
		return -1;		/* groups are not used by proto3 */
	}
}

/* The first occurrence of string field num in a message, or NULL. */
static char *
pb_string(const uint8_t *data, size_t len, uint32_t want)
{
	struct refl_wire	 r = { data, data + len };
	const uint8_t	*val;
	size_t		 vlen;
	uint32_t	 num;
	char		*s;

	while (reflection_wire_next(&r, &num, NULL, &val, &vlen) == 1) {
		if (num != want || val == NULL)
			continue;
		s = xmalloc(vlen + 1);
		memcpy(s, val, vlen);
		s[vlen] = '\0';
		return s;
	}
	return NULL;
}

static void
sym_add(const char *scope, const char *name, size_t file, int is_message)
{
	struct refl_sym	*s;

	if (name == NULL || *name == '\0')
		return;
	refl.syms = xreallocarray(refl.syms, refl.nsyms + 1,
	    sizeof(*refl.syms));
	s = &refl.syms[refl.nsyms++];
	if (scope != NULL && *scope != '\0')
		xasprintf(&s->name, "%s.%s", scope, name);
	else
		s->name = xstrdup(name);
	s->file = file;
	s->is_message = is_message;
}

/* An EnumDescriptorProto: its name in scope, its values beside it. */
static int
index_enum(const uint8_t *data, size_t len, const char *scope, size_t file)
{
	struct refl_wire	 r = { data, data + len };
	const uint8_t	*val;
	size_t		 vlen;
	uint32_t	 num;
	char		*name, *vname;
	int		 rc;

	name = pb_string(data, len, 1);
	sym_add(scope, name, file, 0);
	free(name);
	while ((rc = reflection_wire_next(&r, &num, NULL, &val, &vlen)) == 1) {
		if (num != 2 || val == NULL)
			continue;
		vname = pb_string(val, vlen, 1);
		sym_add(scope, vname, file, 0);
		free(vname);
	}
	return rc;
}

/* A DescriptorProto with its fields, nested messages and enums. */
static int
index_message(const uint8_t *data, size_t len, const char *scope,
    size_t file, int depth)
{
	struct refl_wire	 r = { data, data + len };
	const uint8_t	*val;
	size_t		 vlen;
	uint32_t	 num;
	char		*name, *full, *fname;
	int		 rc;

	if (depth > REFL_DEPTH_MAX)
		return -1;
	if ((name = pb_string(data, len, 1)) == NULL)
		return -1;
	sym_add(scope, name, file, 1);
	if (scope != NULL && *scope != '\0')
		xasprintf(&full, "%s.%s", scope, name);
	else
		full = xstrdup(name);
	free(name);
	while ((rc = reflection_wire_next(&r, &num, NULL, &val, &vlen)) == 1) {
		if (val == NULL)
			continue;
		if (num == 2) {
			fname = pb_string(val, vlen, 1);
			sym_add(full, fname, file, 0);
			free(fname);
		} else if (num == 3) {
			if (index_message(val, vlen, full, file,
			    depth + 1) == -1) {
				rc = -1;
				break;
			}
		} else if (num == 4) {
			if (index_enum(val, vlen, full, file) == -1) {
				rc = -1;
				break;
			}
		}
	}
	free(full);
	return rc;
}

static int
index_service(const uint8_t *data, size_t len, const char *pkg, size_t file)
{
	struct refl_wire	 r = { data, data + len };
	const uint8_t	*val;
	size_t		 vlen;
	uint32_t	 num;
	char		*name, *full, *mname;
	int		 rc;

	if ((name = pb_string(data, len, 1)) == NULL)
		return -1;
	sym_add(pkg, name, file, 0);
	if (pkg != NULL && *pkg != '\0')
		xasprintf(&full, "%s.%s", pkg, name);
	else
		full = xstrdup(name);
	free(name);
	while ((rc = reflection_wire_next(&r, &num, NULL, &val, &vlen)) == 1) {
		if (num != 2 || val == NULL)
			continue;
		mname = pb_string(val, vlen, 1);
		sym_add(full, mname, file, 0);
		free(mname);
	}
	free(full);
	return rc;
}

static int
index_file(const uint8_t *data, size_t len)
{
	struct refl_file	*f;
	struct refl_wire		 r = { data, data + len };
	const uint8_t		*val;
	size_t			 vlen, idx;
	uint32_t		 num;
	char			*pkg;
	int			 rc;

	refl.files = xreallocarray(refl.files, refl.nfiles + 1,
	    sizeof(*refl.files));
	idx = refl.nfiles++;
	f = &refl.files[idx];
	memset(f, 0, sizeof(*f));
	f->data = data;
	f->len = len;
	if ((f->name = pb_string(data, len, 1)) == NULL)
		return -1;
	pkg = pb_string(data, len, 2);
	while ((rc = reflection_wire_next(&r, &num, NULL, &val, &vlen)) == 1) {
		if (val == NULL)
			continue;
		switch (num) {
		case 3:
			f = &refl.files[idx];
			f->depnames = xreallocarray(f->depnames, f->ndeps + 1,
			    sizeof(*f->depnames));
			f->depnames[f->ndeps] = xmalloc(vlen + 1);
			memcpy(f->depnames[f->ndeps], val, vlen);
			f->depnames[f->ndeps++][vlen] = '\0';
			break;
		case 4:
			rc = index_message(val, vlen, pkg, idx, 0);
			break;
		case 5:
			rc = index_enum(val, vlen, pkg, idx);
			break;
		case 6:
			rc = index_service(val, vlen, pkg, idx);
			break;
		}
		if (rc == -1)
			break;
		rc = 1;
	}
	free(pkg);
	return rc;
}

static ssize_t
find_file(const char *name)
{
	size_t i;

	for (i = 0; i < refl.nfiles; i++)
		if (strcmp(refl.files[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

static const struct refl_sym *
find_symbol(const char *name)
{
	size_t i;

	/* A leading dot is how descriptors spell fully qualified names. */
	if (*name == '.')
		name++;
	for (i = 0; i < refl.nsyms; i++)
		if (strcmp(refl.syms[i].name, name) == 0)
			return &refl.syms[i];
	return NULL;
}

int
reflection_init(const char *const *services, size_t nservices)
{
	struct refl_wire	 r = { rp_descriptors,
	    rp_descriptors + rp_descriptors_len };
	const uint8_t	*val;
	size_t		 vlen, i, j;
	uint32_t	 num;
	ssize_t		 d;
	int		 rc;

	reflection_free();
	while ((rc = reflection_wire_next(&r, &num, NULL, &val, &vlen)) == 1) {
		if (num != 1 || val == NULL)
			continue;
		if (index_file(val, vlen) == -1) {
			rc = -1;
			break;
		}
	}
	if (rc == -1) {
		log_warnx("reflection: the embedded descriptor set is "
		    "malformed");
		reflection_free();
		return -1;
	}
	for (i = 0; i < refl.nfiles; i++) {
		struct refl_file *f = &refl.files[i];

		f->deps = xcalloc(f->ndeps + 1, sizeof(*f->deps));
		for (j = 0; j < f->ndeps; j++) {
			if ((d = find_file(f->depnames[j])) == -1)
				log_warnx("reflection: %s imports %s, which "
				    "is not embedded", f->name,
				    f->depnames[j]);
			else
				f->deps[f->nresolved++] = (size_t)d;
		}
	}
	for (i = 0; i < nservices; i++) {
		if (find_symbol(services[i]) == NULL) {
			log_debug("reflection: no descriptor for %s; not "
			    "listed", services[i]);
			continue;
		}
		refl.services = xreallocarray(refl.services,
		    refl.nservices + 1, sizeof(*refl.services));
		refl.services[refl.nservices++] = xstrdup(services[i]);
	}
	return 0;
}

void
reflection_free(void)
{
	size_t i, j;

	for (i = 0; i < refl.nfiles; i++) {
		free(refl.files[i].name);
		for (j = 0; j < refl.files[i].ndeps; j++)
			free(refl.files[i].depnames[j]);
		free(refl.files[i].depnames);
		free(refl.files[i].deps);
	}
	for (i = 0; i < refl.nsyms; i++)
		free(refl.syms[i].name);
	for (i = 0; i < refl.nservices; i++)
		free(refl.services[i]);
	free(refl.files);
	free(refl.syms);
	free(refl.services);
	memset(&refl, 0, sizeof(refl));
}

size_t
reflection_nfiles(void)
{
	return refl.nfiles;
}

size_t
reflection_nsymbols(void)
{
	return refl.nsyms;
}

struct refl_stream *
reflection_stream_new(void)
{
	struct refl_stream *st;

	st = xcalloc(1, sizeof(*st));
	st->sent = xcalloc(refl.nfiles + 1, 1);
	return st;
}

void
reflection_stream_free(struct refl_stream *st)
{
	if (st == NULL)
		return;
	free(st->sent);
	free(st);
}

/*
 * The file, then whatever it imports (transitively) that this stream has
 * not sent yet.  The file asked for is always sent.
 */
static size_t
collect_files(struct refl_stream *st, size_t file, size_t *out)
{
	size_t	n = 0, k, j, d;
	int	seen;

	out[n++] = file;
	st->sent[file] = 1;
	for (k = 0; k < n; k++) {
		const struct refl_file *f = &refl.files[out[k]];

		for (j = 0; j < f->nresolved; j++) {
			d = f->deps[j];
			seen = st->sent[d];
			if (!seen) {
				st->sent[d] = 1;
				out[n++] = d;
			}
		}
	}
	return n;
}

/* Copy at most max bytes of a UTF-8 string without cutting a character. */
static void
utf8_trunc(char *dst, size_t dstlen, const char *src, size_t max)
{
	size_t n = strlen(src);

	if (n > max)
		n = max;
	if (n >= dstlen)
		n = dstlen - 1;
	if (n < strlen(src))
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int
reflection_answer(struct refl_stream *st, const uint8_t *in, size_t inlen,
    uint8_t **out, size_t *outlen)
{
	Grpc__Reflection__V1__ServerReflectionRequest	*req;
	Grpc__Reflection__V1__ServerReflectionResponse	 resp =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
	Grpc__Reflection__V1__FileDescriptorResponse	 fdr =
	    GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
	Grpc__Reflection__V1__ExtensionNumberResponse	 enr =
	    GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
	Grpc__Reflection__V1__ListServiceResponse	 lsr =
	    GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
	Grpc__Reflection__V1__ErrorResponse		 er =
	    GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
	Grpc__Reflection__V1__ServiceResponse		*svcs = NULL, **svcp = NULL;
	ProtobufCBinaryData				*blobs = NULL;
	const struct refl_sym				*sym;
	size_t						*idx = NULL, n, i;
	ssize_t						 f = -1;
	char						 what[160], msg[256];

	req = grpc__reflection__v1__server_reflection_request__unpack(NULL,
	    inlen, in);
	if (req == NULL)
		return -1;
	resp.valid_host = req->host;
	resp.original_request = req;
	msg[0] = '\0';

	switch (req->message_request_case) {
	case REFL_REQ(FILE_BY_FILENAME):
		utf8_trunc(what, sizeof(what), req->file_by_filename, 128);
		if ((f = find_file(req->file_by_filename)) == -1)
			snprintf(msg, sizeof(msg), "file not found: %s", what);
		break;
	case REFL_REQ(FILE_CONTAINING_SYMBOL):
		utf8_trunc(what, sizeof(what), req->file_containing_symbol,
		    128);
		if ((sym = find_symbol(req->file_containing_symbol)) == NULL)
			snprintf(msg, sizeof(msg), "symbol not found: %s",
			    what);
		else
			f = (ssize_t)sym->file;
		break;
	case REFL_REQ(FILE_CONTAINING_EXTENSION):
		snprintf(msg, sizeof(msg), "extension not found");
		break;
	case REFL_REQ(ALL_EXTENSION_NUMBERS_OF_TYPE):
		utf8_trunc(what, sizeof(what),
		    req->all_extension_numbers_of_type, 128);
		sym = find_symbol(req->all_extension_numbers_of_type);
		if (sym == NULL || !sym->is_message) {
			snprintf(msg, sizeof(msg), "type not found: %s", what);
			break;
		}
		enr.base_type_name = sym->name;
		resp.message_response_case =
		    REFL_RESP(ALL_EXTENSION_NUMBERS_RESPONSE);
		resp.all_extension_numbers_response = &enr;
		break;
	case REFL_REQ(LIST_SERVICES):
		svcs = xcalloc(refl.nservices + 1, sizeof(*svcs));
		svcp = xcalloc(refl.nservices + 1, sizeof(*svcp));
		for (i = 0; i < refl.nservices; i++) {
			grpc__reflection__v1__service_response__init(&svcs[i]);
			svcs[i].name = refl.services[i];
			svcp[i] = &svcs[i];
		}
		lsr.n_service = refl.nservices;
		lsr.service = svcp;
		resp.message_response_case = REFL_RESP(LIST_SERVICES_RESPONSE);
		resp.list_services_response = &lsr;
		break;
	default:
		snprintf(msg, sizeof(msg), "unsupported request");
		break;
	}

	if (f >= 0) {
		idx = xcalloc(refl.nfiles + 1, sizeof(*idx));
		n = collect_files(st, (size_t)f, idx);
		blobs = xcalloc(n, sizeof(*blobs));
		for (i = 0; i < n; i++) {
			blobs[i].data = (uint8_t *)refl.files[idx[i]].data;
			blobs[i].len = refl.files[idx[i]].len;
		}
		fdr.n_file_descriptor_proto = n;
		fdr.file_descriptor_proto = blobs;
		resp.message_response_case =
		    REFL_RESP(FILE_DESCRIPTOR_RESPONSE);
		resp.file_descriptor_response = &fdr;
	} else if (msg[0] != '\0') {
		er.error_code = RP_NOT_FOUND;
		er.error_message = msg;
		resp.message_response_case = REFL_RESP(ERROR_RESPONSE);
		resp.error_response = &er;
	}

	*outlen = protobuf_c_message_get_packed_size(&resp.base);
	*out = xmalloc(*outlen + 1);
	protobuf_c_message_pack(&resp.base, *out);
	free(blobs);
	free(idx);
	free(svcs);
	free(svcp);
	grpc__reflection__v1__server_reflection_request__free_unpacked(req,
	    NULL);
	return 0;
}
