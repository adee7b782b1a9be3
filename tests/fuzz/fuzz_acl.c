/*
 * Destination rules: acl_parse, acl_rule_str, acl_check, acl_explain.
 *
 * Input: lines.  "allow PREFIX" and "deny PREFIX" add a rule to a copy
 * of the table acl_build makes from the defaults (the built-in denies and
 * this host's addresses); "check ADDRESS PORT" asks acl_check about an
 * address; any other line is given to acl_parse as it is.  Every prefix
 * acl_parse takes must come back the same through acl_rule_str, and
 * acl_check's verdict must name a rule that matches the address with no
 * longer matching rule of its family.  An IPv6 address that embeds an
 * IPv4 address (NAT64, 6to4, Teredo, IPv4-compatible or -translated) is
 * refused when either the IPv4 rules refuse what it embeds or the IPv6
 * rules refuse it.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "conf.h"
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

/*
 * The IPv4 address an IPv6 address embeds, found another way than acl.c
 * does: by prefix bits.  1 if there is one.
 */
static int
embedded(const uint8_t *a, uint8_t *v4)
{
	static const struct {
		uint8_t	pfx[12];
		int	bits, at, invert;
	} kinds[] = {
		{ { 0 }, 96, 12, 0 },			/* ::/96 */
		{ { [8] = 0xff, [9] = 0xff }, 96, 12, 0 },	/* SIIT */
		{ { 0, 0x64, 0xff, 0x9b }, 96, 12, 0 },	/* NAT64 */
		{ { 0, 0x64, 0xff, 0x9b, 0, 1 }, 48, 12, 0 },	/* RFC 8215 */
		{ { 0x20, 0x02 }, 16, 2, 0 },		/* 6to4 */
		{ { 0x20, 0x01 }, 32, 12, 1 },		/* Teredo */
	};
	struct shm_acl_rule	r;
	size_t			k;
	int			i;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		memset(&r, 0, sizeof(r));
		r.family = AF_INET6;
		r.plen = (uint8_t)kinds[k].bits;
		memcpy(r.addr, kinds[k].pfx, sizeof(kinds[k].pfx));
		if (!matches(&r, AF_INET6, a))
			continue;
		/* :: and ::1 are IPv6's own. */
		if (k == 0 && a[12] == 0 && a[13] == 0 && a[14] == 0 &&
		    a[15] <= 1)
			return 0;
		for (i = 0; i < 4; i++)
			v4[i] = kinds[k].invert ? (uint8_t)~a[kinds[k].at + i] :
			    a[kinds[k].at + i];
		return 1;
	}
	return 0;
}

/*
 * The rules of family matching addr, as acl.c must weigh them: the
 * longest prefix, of those a configured rule over a built-in one, and
 * then deny over allow.  *plen the longest length (-1: none); 1 if the
 * verdict is deny.
 */
static int
family_denies(const struct shm_acl *acl, int family, const uint8_t *addr,
    int *plen)
{
	uint32_t	k;
	int		conf = 0, deny = 0;

	*plen = -1;
	for (k = 0; k < acl->nrules; k++)
		if (matches(&acl->rules[k], family, addr) &&
		    acl->rules[k].plen > *plen)
			*plen = acl->rules[k].plen;
	for (k = 0; k < acl->nrules; k++)
		if (matches(&acl->rules[k], family, addr) &&
		    acl->rules[k].plen == *plen && acl->rules[k].origin == 0)
			conf = 1;
	for (k = 0; k < acl->nrules; k++)
		if (matches(&acl->rules[k], family, addr) &&
		    acl->rules[k].plen == *plen &&
		    (acl->rules[k].origin == 0) == conf &&
		    acl->rules[k].action == SHM_ACL_DENY)
			deny = 1;
	return deny;
}

static void
check(const struct shm_acl *acl, const char *addr, const char *port)
{
	struct sockaddr_storage	 ss;
	const struct sockaddr_in6 *sin6 = (const void *)&ss;
	const struct sockaddr_in *sin = (const void *)&ss;
	uint8_t			 key[16], v4[4];
	uint32_t		 p = 0;
	char			 why[512];
	int			 verdict, rule, family, what, emb = 0;
	int			 deny4 = 0, deny6 = 0, len4 = -1, len6 = -1;

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
			emb = embedded(key, v4);
		}
	}
	/* The port modulo 4 asks about each kind of peer: all fuzzed. */
	what = (int)(p % 4);
	verdict = acl_check(acl, (struct sockaddr *)&ss, what, &rule);
	FUZZ_CHECK(verdict == ACL_ALLOW || verdict == ACL_DENY ||
	    verdict == ACL_SELF);
	/* Only a TCP destination is refused for being one of our ports. */
	FUZZ_CHECK(verdict != ACL_SELF || what == ACL_TCP);
	if (family == AF_INET)
		deny4 = family_denies(acl, AF_INET, key, &len4);
	else {
		deny6 = family_denies(acl, AF_INET6, key, &len6);
		if (emb)
			deny4 = family_denies(acl, AF_INET, v4, &len4);
	}
	if (verdict != ACL_SELF) {
		FUZZ_CHECK(rule >= -1 && rule < (int)acl->nrules);
		/* Deny when the rules of either family deny. */
		FUZZ_CHECKF((verdict == ACL_DENY) == (deny4 || deny6),
		    "%s: verdict %d", addr, verdict);
		if (rule >= 0) {
			const struct shm_acl_rule *r = &acl->rules[rule];

			/* The deciding rule is a longest one of its family. */
			FUZZ_CHECK(r->family == AF_INET ?
			    r->plen == len4 &&
			    matches(r, AF_INET, family == AF_INET ? key : v4) :
			    r->plen == len6 && matches(r, AF_INET6, key));
			FUZZ_CHECK((verdict == ACL_DENY) ==
			    (r->action == SHM_ACL_DENY));
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
