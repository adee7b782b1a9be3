/*
 * Destination rules: acl_parse, acl_rule_str, acl_check, acl_explain.
 *
 * Input: lines.  "allow PREFIX" and "deny PREFIX" add a rule to a copy
 * of the table acl_build makes from the defaults (the built-in denies and
 * this host's addresses); "check ADDRESS PORT" asks acl_check about an
 * address; any other line is given to acl_parse as it is.  Every prefix
 * acl_parse takes must come back the same through acl_rule_str, and
 * acl_check's verdict must name a rule that matches the address with no
 * longer matching rule.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "rtpproxyd.h"
#include "fuzz.h"

static struct shm_acl	base;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config c;

	config_defaults(&c);
	acl_build(&base, &c);
	config_free(&c);
	return 0;
}

/* Bit by bit, unlike acl.c, so that the two can disagree. */
static int
matches(const struct shm_acl_rule *r, int family, const uint8_t *addr)
{
	unsigned int i;

	if (r->family != family)
		return 0;
	for (i = 0; i < r->plen; i++)
		if (((addr[i / 8] >> (7 - i % 8)) & 1) !=
		    ((r->addr[i / 8] >> (7 - i % 8)) & 1))
			return 0;
	return 1;
}

static int
parse_roundtrip(const char *s, struct shm_acl_rule *r)
{
	struct shm_acl_rule	again;
	char			why[256], str[128];

	why[0] = '\0';
	if (acl_parse(s, r, why, sizeof(why)) == -1) {
		FUZZ_CHECK(why[0] != '\0');
		return -1;
	}
	FUZZ_CHECK((r->family == AF_INET && r->plen <= 32) ||
	    (r->family == AF_INET6 && r->plen <= 128));
	acl_rule_str(r, str, sizeof(str));
	FUZZ_CHECKF(acl_parse(str, &again, why, sizeof(why)) == 0,
	    "\"%s\" -> \"%s\": %s", s, str, why);
	FUZZ_CHECK(again.family == r->family && again.plen == r->plen &&
	    memcmp(again.addr, r->addr, sizeof(r->addr)) == 0);
	return 0;
}

static void
check(const struct shm_acl *acl, const char *addr, const char *port)
{
	struct sockaddr_storage	 ss;
	const struct sockaddr_in6 *sin6 = (const void *)&ss;
	const struct sockaddr_in *sin = (const void *)&ss;
	uint8_t			 key[16];
	uint32_t		 p = 0, k;
	char			 why[512];
	int			 verdict, rule, family, what;

	if (parse_ip(addr, 0, &ss, NULL) == -1)
		return;
	(void)parse_u32(port, 0, 65535, &p);
	if (ss.ss_family == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)p);
		memcpy(key, &sin->sin_addr, 4);
		family = AF_INET;
	} else {
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)p);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(key, &sin6->sin6_addr.s6_addr[12], 4);
			family = AF_INET;
		} else {
			memcpy(key, &sin6->sin6_addr, 16);
			family = AF_INET6;
		}
	}
	/* The port modulo 3 asks about UDP, TCP or a TCP caller: all fuzzed. */
	what = (int)(p % 3);
	verdict = acl_check(acl, (struct sockaddr *)&ss, what, &rule);
	FUZZ_CHECK(verdict == ACL_ALLOW || verdict == ACL_DENY ||
	    verdict == ACL_SELF);
	/* A caller that connected is never taken for a loop. */
	FUZZ_CHECK(what != ACL_TCP_PEER || verdict != ACL_SELF);
	if (verdict != ACL_SELF) {
		FUZZ_CHECK(rule >= -1 && rule < (int)acl->nrules);
		for (k = 0; k < acl->nrules; k++) {
			if (!matches(&acl->rules[k], family, key))
				continue;
			FUZZ_CHECKF(rule >= 0 && acl->rules[k].plen <=
			    acl->rules[rule].plen, "%s: rule %u is longer "
			    "than rule %d", addr, k, rule);
		}
		if (rule >= 0) {
			FUZZ_CHECK(matches(&acl->rules[rule], family, key));
			FUZZ_CHECK((verdict == ACL_DENY) ==
			    (acl->rules[rule].action == SHM_ACL_DENY));
		} else
			FUZZ_CHECK(verdict == ACL_ALLOW);
	}
	if (verdict != ACL_ALLOW) {
		why[0] = '\0';
		acl_explain(acl, NULL, (struct sockaddr *)&ss, verdict, rule,
		    "destination", why, sizeof(why));
		FUZZ_CHECK(strncmp(why, "destination ", 12) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shm_acl		*acl;
	struct shm_acl_rule	 r;
	char			*text, *line, *next, *arg, *arg2;

	if ((acl = malloc(sizeof(*acl))) == NULL ||
	    (text = malloc(size + 1)) == NULL)
		abort();
	memcpy(acl, &base, sizeof(*acl));
	memcpy(text, data, size);
	text[size] = '\0';

	for (line = text; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (strncmp(line, "allow ", 6) == 0 ||
		    strncmp(line, "deny ", 5) == 0) {
			arg = strchr(line, ' ') + 1;
			if (parse_roundtrip(arg, &r) == -1 ||
			    acl->nrules >= SHM_ACL_MAX)
				continue;
			r.action = line[0] == 'a' ? SHM_ACL_ALLOW :
			    SHM_ACL_DENY;
			acl->rules[acl->nrules++] = r;
		} else if (strncmp(line, "check ", 6) == 0) {
			arg = line + 6;
			if ((arg2 = strchr(arg, ' ')) != NULL)
				*arg2++ = '\0';
			check(acl, arg, arg2 != NULL ? arg2 : "0");
		} else
			(void)parse_roundtrip(line, &r);
	}
	free(text);
	free(acl);
	return 0;
}
