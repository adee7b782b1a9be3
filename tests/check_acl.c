/*
 * The destination rules as pure functions: parsing, the longest prefix
 * that decides, configured over built-in, the self check, IPv4-mapped
 * addresses, and the sequence-locked copy a worker takes.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"
#include "conf.h"

static struct config	conf;
static struct shm_acl	acl;

static struct sockaddr_storage *
sa(const char *addr, uint16_t port)
{
	static struct sockaddr_storage ss;

	ck_assert_int_eq(parse_ip(addr, port, &ss, NULL), 0);
	return &ss;
}

/* The verdict on addr:port over TCP (the API ports count). */
static int
check(const char *addr, uint16_t port, int *rule)
{
	int r;

	return acl_check(&acl, (struct sockaddr *)sa(addr, port), ACL_TCP,
	    rule != NULL ? rule : &r);
}

static int
check_udp(const char *addr, uint16_t port)
{
	int r;

	return acl_check(&acl, (struct sockaddr *)sa(addr, port), ACL_UDP, &r);
}

/* The verdict on a UDP sender (a caller to latch on to). */
static int
check_src(const char *addr, uint16_t port)
{
	int r;

	return acl_check(&acl, (struct sockaddr *)sa(addr, port), ACL_UDP_SRC,
	    &r);
}

/* The deciding rule of a refusal, as "prefix". */
static const char *
rule_of(const char *addr)
{
	static char	buf[64];
	int		rule;

	ck_assert_int_eq(check(addr, 9, &rule), ACL_DENY);
	ck_assert_int_ge(rule, 0);
	return acl_rule_str(&acl.rules[rule], buf, sizeof(buf));
}

/* The verdict on a TCP caller that connected from addr:port. */
static int
check_peer(const char *addr, uint16_t port)
{
	int r;

	return acl_check(&acl, (struct sockaddr *)sa(addr, port),
	    ACL_TCP_PEER, &r);
}

/* The rules of a configuration text, built as the master builds them. */
static void
build(const char *text)
{
	char err[256];

	config_free(&conf);
	ck_assert_msg(config_parse_buf(&conf, "test.conf", text, err,
	    sizeof(err)) == 0, "%s", err);
	acl_build(&acl, &conf);
}

static void
teardown(void)
{
	config_free(&conf);
}

START_TEST(parse)
{
	struct shm_acl_rule	r;
	char			why[128], buf[64];

	ck_assert_int_eq(acl_parse("10.0.0.0/8", &r, why, sizeof(why)), 0);
	ck_assert_uint_eq(r.family, AF_INET);
	ck_assert_uint_eq(r.plen, 8);
	ck_assert_str_eq(acl_rule_str(&r, buf, sizeof(buf)), "10.0.0.0/8");
	ck_assert_int_eq(acl_parse("192.0.2.7", &r, why, sizeof(why)), 0);
	ck_assert_uint_eq(r.plen, 32);
	ck_assert_int_eq(acl_parse("2001:db8::/32", &r, why, sizeof(why)), 0);
	ck_assert_uint_eq(r.family, AF_INET6);
	ck_assert_uint_eq(r.plen, 32);
	ck_assert_int_eq(acl_parse("::/0", &r, why, sizeof(why)), 0);
	ck_assert_int_eq(acl_parse("0.0.0.0/0", &r, why, sizeof(why)), 0);
	ck_assert_int_eq(acl_parse("10.0.0.128/25", &r, why, sizeof(why)), 0);

	ck_assert_int_eq(acl_parse("10.1.2.3/8", &r, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "\"10.1.2.3/8\" has host bits set after /8");
	ck_assert_int_eq(acl_parse("10.0.0.0/33", &r, why, sizeof(why)), -1);
	ck_assert_msg(strstr(why, "0..32") != NULL, "%s", why);
	ck_assert_int_eq(acl_parse("::/129", &r, why, sizeof(why)), -1);
	ck_assert_int_eq(acl_parse("10.0.0.0/", &r, why, sizeof(why)), -1);
	ck_assert_int_eq(acl_parse("10.0.0.0/-1", &r, why, sizeof(why)), -1);
	ck_assert_int_eq(acl_parse("example.com/8", &r, why, sizeof(why)),
	    -1);
	ck_assert_msg(strstr(why, "not an IPv4 or IPv6") != NULL, "%s", why);
	ck_assert_int_eq(acl_parse("fe80::1%lo", &r, why, sizeof(why)), -1);
	ck_assert_int_eq(acl_parse("", &r, why, sizeof(why)), -1);
	ck_assert_int_eq(acl_parse("10.0.0.0/8/8", &r, why, sizeof(why)), -1);
}
END_TEST

START_TEST(builtin)
{
	int rule;

	build("");
	ck_assert_int_eq(check("127.0.0.1", 9, &rule), ACL_DENY);
	ck_assert_uint_ne(acl.rules[rule].origin, 0);
	ck_assert_int_eq(check("::1", 9, NULL), ACL_DENY);
	ck_assert_int_eq(check("::ffff:127.0.0.1", 9, NULL), ACL_DENY);
	ck_assert_int_eq(check("::ffff:192.0.2.1", 9, NULL), ACL_ALLOW);
	ck_assert_int_eq(check("224.0.0.1", 9, NULL), ACL_DENY);
	ck_assert_int_eq(check("255.255.255.255", 9, NULL), ACL_DENY);
	ck_assert_int_eq(check("169.254.169.254", 80, NULL), ACL_DENY);
	ck_assert_int_eq(check("ff05::2", 9, NULL), ACL_DENY);
	ck_assert_int_eq(check("fe80::1", 9, NULL), ACL_DENY);
	ck_assert_int_eq(check("0.0.0.0", 9, NULL), ACL_DENY);
	ck_assert_int_eq(check("::", 9, NULL), ACL_DENY);
	ck_assert_int_eq(check("10.1.2.3", 9, NULL), ACL_ALLOW);
	ck_assert_int_eq(check("8.8.8.8", 9, NULL), ACL_ALLOW);
	ck_assert_int_eq(check("2001:db8::1", 9, NULL), ACL_ALLOW);
}
END_TEST

START_TEST(longest_prefix)
{
	int	rule;
	char	why[256];

	build("deny-destination 10.0.0.0/8\n"
	    "allow-destination 10.1.0.0/16\n"
	    "deny-destination 10.1.2.0/24\n"
	    "allow-destination 127.0.0.1\n"
	    "allow-destination 0.0.0.0/0\n");
	ck_assert_int_eq(check("10.9.9.9", 9, NULL), ACL_DENY);
	ck_assert_int_eq(check("10.1.9.9", 9, NULL), ACL_ALLOW);
	ck_assert_int_eq(check("10.1.2.9", 9, &rule), ACL_DENY);
	ck_assert_uint_eq(acl.rules[rule].line, 3);
	acl_explain(&acl, &conf, (struct sockaddr *)sa("10.1.2.9", 5004),
	    ACL_DENY, rule, "destination", why, sizeof(why));
	ck_assert_str_eq(why, "destination 10.1.2.9:5004 is refused by "
	    "deny-destination 10.1.2.0/24 (configuration:3)");
	/* 0/0 does not open the longer built-in loopback rule ... */
	ck_assert_int_eq(check("127.0.0.2", 9, NULL), ACL_DENY);
	/* ... a host rule does. */
	ck_assert_int_eq(check("127.0.0.1", 9, NULL), ACL_ALLOW);
	ck_assert_int_eq(check("192.0.2.1", 9, NULL), ACL_ALLOW);

	/* Same length: configured beats built in, deny beats allow. */
	build("allow-destination 127.0.0.0/8\n");
	ck_assert_int_eq(check("127.3.3.3", 9, NULL), ACL_ALLOW);
	build("allow-destination 192.0.2.0/24\ndeny-destination 192.0.2.0/24\n");
	ck_assert_int_eq(check("192.0.2.1", 9, NULL), ACL_DENY);
	build("deny-destination 192.0.2.0/24\nallow-destination 192.0.2.0/24\n");
	ck_assert_int_eq(check("192.0.2.1", 9, NULL), ACL_DENY);

	/* A strict allow-list. */
	build("deny-destination 0.0.0.0/0 ::/0\n"
	    "allow-destination 198.51.100.0/24 2001:db8::/48\n");
	ck_assert_int_eq(check("198.51.100.20", 9, NULL), ACL_ALLOW);
	ck_assert_int_eq(check("2001:db8::5", 9, NULL), ACL_ALLOW);
	ck_assert_int_eq(check("203.0.113.1", 9, NULL), ACL_DENY);
	ck_assert_int_eq(check("2001:db9::5", 9, NULL), ACL_DENY);
}
END_TEST

START_TEST(self)
{
	char why[256];

	build("listen 127.0.0.1:50051\nlisten [::1]:50052\n"
	    "port-range 30000 30099\nallow-destination 127.0.0.0/8 ::1\n"
	    "metrics-listen 127.0.0.1:9100\n");
	ck_assert_int_eq(check("127.0.0.1", 30000, NULL), ACL_SELF);
	ck_assert_int_eq(check("127.0.0.9", 30099, NULL), ACL_SELF);
	ck_assert_int_eq(check("127.0.0.1", 30100, NULL), ACL_ALLOW);
	ck_assert_int_eq(check("127.0.0.1", 29999, NULL), ACL_ALLOW);
	ck_assert_int_eq(check("127.0.0.1", 50051, NULL), ACL_SELF);
	ck_assert_int_eq(check("127.0.0.1", 50052, NULL), ACL_SELF);
	ck_assert_int_eq(check("127.0.0.1", 9100, NULL), ACL_SELF);
	ck_assert_int_eq(check("::1", 30002, NULL), ACL_SELF);
	ck_assert_int_eq(check("::ffff:127.0.0.1", 30002, NULL), ACL_SELF);
	/*
	 * Over UDP the API's TCP port is somebody else's, and a port of the
	 * media range is ours only if a session holds it (acl_own_socket).
	 */
	ck_assert_int_eq(check_udp("127.0.0.1", 50051), ACL_ALLOW);
	ck_assert_int_eq(check_udp("127.0.0.1", 9100), ACL_ALLOW);
	ck_assert_int_eq(check_udp("127.0.0.1", 30010), ACL_ALLOW);
	/*
	 * A TCP caller's port is the kernel's choice, and may be in the media
	 * range: no loop (it connected), but the rules still apply.
	 */
	ck_assert_int_eq(check_peer("127.0.0.1", 30010), ACL_ALLOW);
	ck_assert_int_eq(check_peer("127.0.0.1", 50051), ACL_ALLOW);
	ck_assert_int_eq(check_peer("::1", 30002), ACL_ALLOW);
	ck_assert_int_eq(check_peer("224.0.0.1", 30010), ACL_DENY);
	/* Another host's port of the same number is not ours. */
	ck_assert_int_eq(check("192.0.2.1", 30000, NULL), ACL_ALLOW);
	acl_explain(&acl, &conf, (struct sockaddr *)sa("127.0.0.1", 30000),
	    ACL_SELF, -1, "destination", why, sizeof(why));
	ck_assert_msg(strstr(why, "own ports") != NULL, "%s", why);
	/* The host's own addresses are local too (at least one: lo). */
	ck_assert_uint_ge(acl.nlocal, 1);
}
END_TEST

/*
 * IPv6 addresses that embed an IPv4 address are judged by the address
 * they embed, with the IPv4 rules, and must pass the IPv6 rules too.
 */
START_TEST(embedded)
{
	static const struct {
		const char *addr, *rule;
	} refused[] = {
		{ "::127.0.0.1", "127.0.0.0/8" },		/* compatible */
		{ "::ffff:127.0.0.1", "127.0.0.0/8" },		/* mapped */
		{ "::ffff:0:127.0.0.1", "127.0.0.0/8" },	/* translated */
		{ "64:ff9b::7f00:1", "127.0.0.0/8" },		/* NAT64 */
		{ "64:ff9b::127.1.2.3", "127.0.0.0/8" },
		{ "64:ff9b:1::7f00:1", "127.0.0.0/8" },	/* local-use */
		{ "64:ff9b:1:ab:cd::7f00:1", "127.0.0.0/8" },
		{ "2002:7f00:1::", "127.0.0.0/8" },		/* 6to4 */
		{ "2002:7f00:1:5::1", "127.0.0.0/8" },
		/* Teredo: the client's address, inverted, the last 32 bits */
		{ "2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.0/8" },
		{ "64:ff9b::a9fe:a9fe", "169.254.0.0/16" },
		{ "2002:a9fe:a9fe::1", "169.254.0.0/16" },
		{ "2001::5601:5601", "169.254.0.0/16" },
		{ "64:ff9b::e000:1", "224.0.0.0/4" },
		{ "::0.1.2.3", "0.0.0.0/8" },
		{ "64:ff9b::ffff:ffff", "255.255.255.255/32" },
		{ "::", "::/128" },
		{ "::1", "::1/128" },
	};
	static const char *const allowed[] = {
		"::192.0.2.1", "64:ff9b::c000:201", "64:ff9b:1::c000:201",
		"2002:c000:201::1", "2001:0:4136:e378:8000:63bf:3fff:fdfe",
		"::ffff:0:192.0.2.1", "2001:db8::7f00:1", "2003:7f00:1::",
		"64:ff9a::7f00:1", "64:ff9b:2::7f00:1",
	};
	char	why[512];
	size_t	i;
	int	rule;

	build("");
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		ck_assert_msg(strcmp(rule_of(refused[i].addr), refused[i].rule)
		    == 0, "%s: decided by %s", refused[i].addr,
		    rule_of(refused[i].addr));
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		ck_assert_msg(check(allowed[i], 9, NULL) == ACL_ALLOW, "%s",
		    allowed[i]);
	/* Senders and TCP callers alike. */
	ck_assert_int_eq(check_src("64:ff9b::7f00:1", 9), ACL_DENY);
	ck_assert_int_eq(check_src("2002:7f00:1::", 9), ACL_DENY);
	ck_assert_int_eq(check_src("64:ff9b::c000:201", 9), ACL_ALLOW);
	ck_assert_int_eq(check_peer("::127.0.0.1", 9), ACL_DENY);

	/* The explanation says what it embeds and which rule opens it. */
	ck_assert_int_eq(check("64:ff9b::7f00:1", 5004, &rule), ACL_DENY);
	acl_explain(&acl, &conf, (struct sockaddr *)sa("64:ff9b::7f00:1",
	    5004), ACL_DENY, rule, "destination", why, sizeof(why));
	ck_assert_str_eq(why, "destination [64:ff9b::7f00:1]:5004 is refused: "
	    "it embeds 127.0.0.1 (NAT64, RFC 6052), a loopback address "
	    "(built-in rule deny 127.0.0.0/8; allow-destination 127.0.0.0/8 "
	    "opens it)");
	ck_assert_int_eq(check("2001:0:4136:e378:8000:63bf:80ff:fffe", 5004,
	    &rule), ACL_DENY);
	acl_explain(&acl, &conf, (struct sockaddr *)sa(
	    "2001:0:4136:e378:8000:63bf:80ff:fffe", 5004), ACL_DENY, rule,
	    "source", why, sizeof(why));
	ck_assert_msg(strstr(why, "embeds 127.0.0.1 (Teredo, RFC 4380)") !=
	    NULL, "%s", why);

	/* The configured IPv4 rules: they refuse and they open. */
	build("deny-destination 192.0.2.0/24\n"
	    "allow-destination 127.0.0.0/8\n");
	ck_assert_int_eq(check("64:ff9b::c000:201", 9, &rule), ACL_DENY);
	ck_assert_uint_eq(acl.rules[rule].line, 1);
	acl_explain(&acl, &conf, (struct sockaddr *)sa("2002:c000:201::",
	    5004), ACL_DENY, rule, "destination", why, sizeof(why));
	ck_assert_str_eq(why, "destination [2002:c000:201::]:5004 is refused "
	    "by deny-destination 192.0.2.0/24 (configuration:1): it embeds "
	    "192.0.2.1 (6to4, RFC 3056)");
	ck_assert_int_eq(check("64:ff9b::7f00:1", 9, NULL), ACL_ALLOW);
	ck_assert_int_eq(check("::127.0.0.1", 9, NULL), ACL_ALLOW);

	/* The IPv6 rules still apply to the IPv6 address. */
	build("deny-destination 2002::/16\n");
	ck_assert_int_eq(check("2002:c000:201::", 9, NULL), ACL_DENY);
	ck_assert_int_eq(check("64:ff9b::c000:201", 9, NULL), ACL_ALLOW);
	build("deny-destination 0.0.0.0/0 ::/0\n"
	    "allow-destination 192.0.2.0/24\n");
	ck_assert_int_eq(check("64:ff9b::c000:201", 9, NULL), ACL_DENY);
	ck_assert_int_eq(check("64:ff9b::c633:6401", 9, NULL), ACL_DENY);
	build("deny-destination 0.0.0.0/0 ::/0\n"
	    "allow-destination 192.0.2.0/24 64:ff9b::/96\n");
	ck_assert_int_eq(check("64:ff9b::c000:201", 9, NULL), ACL_ALLOW);
	ck_assert_int_eq(check("64:ff9b::c633:6401", 9, NULL), ACL_DENY);

	/* The own ports: judged on the embedded address too. */
	build("port-range 30000 30099\nallow-destination 127.0.0.0/8\n");
	ck_assert_int_eq(check("64:ff9b::7f00:1", 30010, NULL), ACL_SELF);
	ck_assert_int_eq(check("2002:7f00:1::", 30010, NULL), ACL_SELF);
	ck_assert_int_eq(check("64:ff9b::7f00:1", 30100, NULL), ACL_ALLOW);
}
END_TEST

/* Where media to an address ends up when that is this host. */
START_TEST(local)
{
	struct sockaddr_storage	here;
	char			buf[64];

	build("");
	ck_assert_int_eq(acl_local(&acl, (struct sockaddr *)sa("127.0.0.1",
	    30010), &here), 1);
	ck_assert_str_eq(sa_ntop((struct sockaddr *)&here, buf, sizeof(buf)),
	    "127.0.0.1:30010");
	ck_assert_int_eq(acl_local(&acl, (struct sockaddr *)sa("127.0.0.9",
	    5), &here), 1);
	ck_assert_int_eq(acl_local(&acl, (struct sockaddr *)sa(
	    "64:ff9b::7f00:1", 30010), &here), 1);
	ck_assert_str_eq(sa_ntop((struct sockaddr *)&here, buf, sizeof(buf)),
	    "127.0.0.1:30010");
	ck_assert_int_eq(acl_local(&acl, (struct sockaddr *)sa(
	    "::ffff:127.0.0.1", 7), &here), 1);
	ck_assert_str_eq(sa_ntop((struct sockaddr *)&here, buf, sizeof(buf)),
	    "127.0.0.1:7");
	ck_assert_int_eq(acl_local(&acl, (struct sockaddr *)sa("::1", 7),
	    &here), 1);
	ck_assert_str_eq(sa_ntop((struct sockaddr *)&here, buf, sizeof(buf)),
	    "[::1]:7");
	ck_assert_int_eq(acl_local(&acl, (struct sockaddr *)sa("192.0.2.1",
	    7), &here), 0);
	ck_assert_int_eq(acl_local(&acl, (struct sockaddr *)sa(
	    "64:ff9b::c000:201", 7), &here), 0);
}
END_TEST

/* How much of the media range the kernel may give other programs. */
START_TEST(ephemeral)
{
	uint16_t lo, hi;

	ck_assert_int_eq(ports_ephemeral(20000, 39999, "32768\t60999\n", "",
	    &lo, &hi), 7232);
	ck_assert_uint_eq(lo, 32768);
	ck_assert_uint_eq(hi, 39999);
	ck_assert_int_eq(ports_ephemeral(20000, 39999, "32768 60999",
	    "30000-35000,39000\n", &lo, &hi), 7232 - 2233 - 1);
	ck_assert_int_eq(ports_ephemeral(20000, 39999, "32768 60999",
	    "20000-39999\n", &lo, &hi), 0);
	ck_assert_uint_eq(lo, 32768);
	ck_assert_int_eq(ports_ephemeral(40000, 49999, "32768 60999", NULL,
	    &lo, &hi), 10000);
	ck_assert_int_eq(ports_ephemeral(10000, 19999, "32768 60999", "", &lo,
	    &hi), 0);
	ck_assert_uint_eq(lo, 0);
	ck_assert_uint_eq(hi, 0);
	ck_assert_int_eq(ports_ephemeral(60000, 65535, "32768 60999", "", &lo,
	    &hi), 1000);
	ck_assert_int_eq(ports_ephemeral(1, 65535, "1024 65535", "", &lo, &hi),
	    64512);
	ck_assert_int_eq(ports_ephemeral(20000, 39999, "", "", &lo, &hi), -1);
	ck_assert_int_eq(ports_ephemeral(20000, 39999, "60999 32768", "", &lo,
	    &hi), -1);
	ck_assert_int_eq(ports_ephemeral(20000, 39999, "32768", "", &lo, &hi),
	    -1);
}
END_TEST

START_TEST(published)
{
	static struct shm_acl	shared, copy;

	build("deny-destination 192.0.2.0/24\n");
	memset(&shared, 0, sizeof(shared));
	acl_publish(&shared, &acl);
	ck_assert_uint_eq(atomic_load(&shared.seq) % 2, 0);
	ck_assert_uint_eq(atomic_load(&shared.seq), 2);
	ck_assert_int_eq(acl_snapshot(&shared, &copy), 0);
	ck_assert_uint_eq(copy.nrules, acl.nrules);
	ck_assert_int_eq(memcmp(copy.rules, acl.rules, sizeof(acl.rules)), 0);
	ck_assert_uint_eq(atomic_load(&copy.seq), 2);
	/* A writer in the middle: the reader gives up rather than tear. */
	atomic_store(&shared.seq, 3);
	ck_assert_int_eq(acl_snapshot(&shared, &copy), -1);
	/* An empty table (never published) allows everything. */
	memset(&copy, 0, sizeof(copy));
	ck_assert_int_eq(acl_check(&copy, (struct sockaddr *)sa("127.0.0.1",
	    9), 0, &(int){ 0 }), ACL_ALLOW);
}
END_TEST

START_TEST(config_errors)
{
	static const struct {
		const char *text, *err;
	} bad[] = {
		{ "allow-destination\n", "test.conf:1: allow-destination: "
		    "expects 1 to 7 arguments" },
		{ "\ndeny-destination 10.0.0.1/8\n", "test.conf:2: "
		    "deny-destination: \"10.0.0.1/8\" has host bits set after "
		    "/8" },
		{ "allow-destination 10.0.0.0/8 nonsense\n", "test.conf:1: "
		    "allow-destination: \"nonsense\" is not an IPv4 or IPv6 "
		    "address" },
		{ "reverse-source strict\n", "test.conf:1: reverse-source: "
		    "expected any, address or address-port (got \"strict\")" },
		{ "rate-limit-pps -1\n", "test.conf:1: rate-limit-pps: must be "
		    "0..10000000 packets per second (got \"-1\")" },
		{ "rate-limit-bps 3X\n", "test.conf:1: rate-limit-bps: must be "
		    "0 (none) or bits per second up to 100G, with an optional "
		    "k, M or G (got \"3X\")" },
		{ "rate-limit-bps 101G\n", "test.conf:1: rate-limit-bps:" },
		{ "rate-limit-burst 5\n", "test.conf:1: rate-limit-burst: must "
		    "be 10..60000 ms (got \"5\")" },
		{ "auth-token-file tokens\n", "test.conf:1: auth-token-file: "
		    "must be an absolute path (got \"tokens\")" },
		{ "auth-health maybe\n", "test.conf:1: auth-health: expected "
		    "open or token (got \"maybe\")" },
		{ "tls-cert /a.crt\n", "test.conf:1: tls-cert given without "
		    "tls-key" },
		{ "tls-key /a.key\n\n", "test.conf:1: tls-key given without "
		    "tls-cert" },
		{ "\ntls-client-ca /ca.crt\n", "test.conf:2: tls-client-ca "
		    "given without tls-cert and tls-key" },
		{ "metrics-listen unix:/x\n", "test.conf:1: metrics-listen: "
		    "\"unix:/x\": must be HOST:PORT or [IPv6]:PORT" },
		{ "metrics-listen 127.0.0.1\n", "test.conf:1: metrics-listen: "
		    "\"127.0.0.1\": missing port" },
		{ "orphan-timeout 86401\n", "test.conf:1: orphan-timeout: must "
		    "be 0..86400 seconds" },
		{ "\n\nlatch-policy sometimes\n", "test.conf:3: latch-policy: "
		    "expected learn, never or latest (got \"sometimes\")" },
		{ "latch-run 1\n", "test.conf:1: latch-run: must be 2..64 "
		    "packets (got \"1\")" },
		{ "latch-run 65\n", "test.conf:1: latch-run: must be 2..64" },
		{ "latch-quiet-time 50\n", "test.conf:1: latch-quiet-time: "
		    "must be 100..600000 ms (got \"50\")" },
		{ "latch-learn-time 60001\n", "test.conf:1: latch-learn-time: "
		    "must be 0..60000 ms" },
		{ "latch-policy learn never\n", "test.conf:1: latch-policy:" },
	};
	struct config	c;
	char		err[512];
	size_t		i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(config_parse_buf(&c, "test.conf", bad[i].text,
		    err, sizeof(err)) == -1, "%s: accepted", bad[i].text);
		ck_assert_msg(strncmp(err, bad[i].err, strlen(bad[i].err)) ==
		    0, "%s: %s", bad[i].text, err);
	}
	ck_assert_int_eq(config_parse_buf(&c, "test.conf",
	    "rate-limit-bps 2M\nrate-limit-pps 0\nreverse-source any\n"
	    "auth-health token\n", err, sizeof(err)), 0);
	ck_assert_uint_eq(c.rate_bps, 2000000);
	ck_assert_int_eq(c.reverse_source, CONF_RS_ANY);
	ck_assert_int_eq(c.auth_health_open, 0);
	config_free(&c);
	/* The defaults: address, no limit, 1 s of burst, health open. */
	ck_assert_int_eq(config_parse_buf(&c, "test.conf", "", err,
	    sizeof(err)), 0);
	ck_assert_int_eq(c.reverse_source, CONF_RS_ADDRESS);
	ck_assert_uint_eq(c.rate_pps, 0);
	ck_assert_uint_eq(c.rate_bps, 0);
	ck_assert_uint_eq(c.rate_burst_ms, 1000);
	ck_assert_int_eq(c.auth_health_open, 1);
	/* The latch: learn for 2 s, then 1 s quiet and a run of 4. */
	ck_assert_int_eq(c.latch_policy, SHM_LATCH_LEARN);
	ck_assert_uint_eq(c.latch_learn_ms, 2000);
	ck_assert_uint_eq(c.latch_quiet_ms, 1000);
	ck_assert_uint_eq(c.latch_run, 4);
	config_free(&c);
	ck_assert_int_eq(config_parse_buf(&c, "test.conf",
	    "latch-policy never\nlatch-learn-time 0\nlatch-quiet-time 250\n"
	    "latch-run 64\n", err, sizeof(err)), 0);
	ck_assert_int_eq(c.latch_policy, SHM_LATCH_NEVER);
	ck_assert_uint_eq(c.latch_learn_ms, 0);
	ck_assert_uint_eq(c.latch_quiet_ms, 250);
	ck_assert_uint_eq(c.latch_run, 64);
	config_free(&c);
}
END_TEST

/* The files a configuration names are read with it: errors have lines. */
START_TEST(config_files)
{
	char	 dir[] = "/tmp/check_acl.XXXXXX", path[256], text[1024];
	char	 err[512], want[512];
	struct config c;
	FILE	*f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/tokens", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "# comment\n0123456789abcdef0123\n\nshort\n");
	fclose(f);
	snprintf(text, sizeof(text), "workers 1\nauth-token-file %s\n", path);
	ck_assert_int_eq(config_parse_buf(&c, "t.conf", text, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(config_load_files(&c, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "configuration:2: auth-token-file %s: "
	    "line 4: token shorter than 16 characters", path);
	ck_assert_str_eq(err, want);
	ck_assert_uint_eq(c.ntokens, 0);

	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "0123456789abcdef0123\n  fedcba9876543210fedc \r\n");
	fclose(f);
	ck_assert_int_eq(config_load_files(&c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.ntokens, 2);
	ck_assert_str_eq(c.tokens[1], "fedcba9876543210fedc");
	/* Loading again replaces, not adds. */
	ck_assert_int_eq(config_load_files(&c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.ntokens, 2);

	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "0123456789abcdef 0123\n");
	fclose(f);
	ck_assert_int_eq(config_load_files(&c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "line 1: a token is visible ASCII without "
	    "blanks") != NULL, "%s", err);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fclose(f);
	ck_assert_int_eq(config_load_files(&c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "no token in it") != NULL, "%s", err);
	config_free(&c);

	snprintf(text, sizeof(text), "tls-cert %s/none.crt\ntls-key %s\n",
	    dir, path);
	ck_assert_int_eq(config_parse_buf(&c, "t.conf", text, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(config_load_files(&c, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "configuration:1: tls-cert %s/none.crt: "
	    "No such file or directory", dir);
	ck_assert_str_eq(err, want);
	config_free(&c);
	snprintf(text, sizeof(text), "tls-cert %s\ntls-key %s\n", path, path);
	ck_assert_int_eq(config_parse_buf(&c, "t.conf", text, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(config_load_files(&c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "no PEM CERTIFICATE in it") != NULL, "%s",
	    err);
	config_free(&c);
	unlink(path);
	rmdir(dir);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("acl");
	TCase	*tc = tcase_create("acl");
	SRunner	*sr;
	int	 failed;

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, parse);
	tcase_add_test(tc, builtin);
	tcase_add_test(tc, longest_prefix);
	tcase_add_test(tc, self);
	tcase_add_test(tc, embedded);
	tcase_add_test(tc, local);
	tcase_add_test(tc, ephemeral);
	tcase_add_test(tc, published);
	tcase_add_test(tc, config_errors);
	tcase_add_test(tc, config_files);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
