/*
 * A session's record as Redis gives it back (redis_rec_parse): any
 * fields and values, which come from outside.  The input is the HGETALL
 * reply's strings, each ended by a newline.  Checks: a record that parses
 * is written again (redis_rec_argv) into fields that parse to the same
 * record, so that what one node writes another reads.
 */
#include <string.h>

#include "repl.h"
#include "fuzz.h"

#define MAXF	(2 * REDIS_REC_FIELDS + 16)

int
LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
	static struct redis_rec	 a, b;
	const char		*kv[MAXF], *out[2 * REDIS_REC_FIELDS];
	size_t			 kvlen[MAXF], outlen[2 * REDIS_REC_FIELDS];
	size_t			 nkv = 0, i;
	const uint8_t		*s = p, *e = p + n, *nl;
	char			 why[160];
	int			 m;

	while (s < e && nkv < MAXF) {
		nl = memchr(s, '\n', (size_t)(e - s));
		kv[nkv] = (const char *)s;
		kvlen[nkv++] = (size_t)((nl != NULL ? nl : e) - s);
		s = nl != NULL ? nl + 1 : e;
	}
	if (redis_rec_parse(&a, nkv, kv, kvlen, why, sizeof(why)) == -1) {
		FUZZ_CHECK(why[0] != '\0');
		return 0;
	}
	m = redis_rec_argv(&a, out, REDIS_REC_ALL);
	FUZZ_CHECK(m > 0 && m <= 2 * REDIS_REC_FIELDS);
	for (i = 0; i < (size_t)m; i++)
		outlen[i] = strlen(out[i]);
	FUZZ_CHECKF(redis_rec_parse(&b, (size_t)m, out, outlen, why,
	    sizeof(why)) == 0, "%s", why);
	FUZZ_CHECK(memcmp(&a, &b, offsetof(struct redis_rec, text)) == 0);
	return 0;
}
