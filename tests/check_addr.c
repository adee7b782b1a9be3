/*
 * src/common/addr.c: listen addresses parsed once.  The error messages are
 * the configuration's (check_config test_errors goes through the parser);
 * here, what a parsed address holds, how it is written back, compared
 * and bound.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"

static void
parse(struct listen_addr *la, const char *s, int flags)
{
	char err[2 * ADDR_TEXT_MAX + 128] = "";

	ck_assert_msg(addr_parse(la, "listen", s, flags, err, sizeof(err)) ==
	    0, "%s: %s", s, err);
	ck_assert_str_eq(la->text, s);
}

static const char *
ntop(const struct sockaddr_storage *ss)
{
	static char	buf[INET6_ADDRSTRLEN + 16];
	const void	*a;

	if (ss->ss_family == AF_INET)
		a = &((const struct sockaddr_in *)ss)->sin_addr;
	else
		a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	inet_ntop(ss->ss_family, a, buf, sizeof(buf));
	return buf;
}

static uint16_t
port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ?
	    ((const struct sockaddr_in *)ss)->sin_port :
	    ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static const struct {
	const char	*text;
	int		 flags;
	int		 kind, any, localhost, nsa;
	uint16_t	 port;
	const char	*sa0, *sa1;	/* the addresses, as inet_ntop */
	const char	*fmt;		/* as addr_fmt writes it */
} good[] = {
	{ "192.0.2.1:5000", 0, ADDR_INET, 0, 0, 1, 5000, "192.0.2.1", NULL,
	    "192.0.2.1:5000" },
	{ "0.0.0.0:65535", 0, ADDR_INET, 0, 0, 1, 65535, "0.0.0.0", NULL,
	    "0.0.0.0:65535" },
	{ "[::1]:5001", 0, ADDR_INET, 0, 0, 1, 5001, "::1", NULL,
	    "[::1]:5001" },
	{ "[2001:DB8:0::1]:050052", 0, ADDR_INET, 0, 0, 1, 50052,
	    "2001:db8::1", NULL, "[2001:db8::1]:50052" },
	{ "[::]:9100", 0, ADDR_INET, 0, 0, 1, 9100, "::", NULL,
	    "[::]:9100" },
	/* The API: both loopback addresses. */
	{ "localhost:5002", ADDR_UNIX_OK, ADDR_INET, 0, 1, 2, 5002,
	    "127.0.0.1", "::1", "localhost:5002" },
	/* metrics-listen: 127.0.0.1 alone. */
	{ "localhost:9100", ADDR_LO_V4, ADDR_INET, 0, 1, 1, 9100,
	    "127.0.0.1", NULL, "localhost:9100" },
	/* Every address: [::], IPV6_V6ONLY off. */
	{ "*:5003", 0, ADDR_INET, 1, 0, 1, 5003, "::", NULL, "*:5003" },
	{ "unix:/run/rtpproxyd/grpc.sock", ADDR_UNIX_OK, ADDR_UNIX, 0, 0, 1,
	    0, NULL, NULL, "unix:/run/rtpproxyd/grpc.sock" },
	{ "unix:/tmp/a b # \"c\\", ADDR_UNIX_OK, ADDR_UNIX, 0, 0, 1, 0, NULL,
	    NULL, "unix:/tmp/a b # \"c\\" },
};

START_TEST(test_parse)
{
	struct listen_addr	 la, again;
	char			 buf[ADDR_TEXT_MAX];

	parse(&la, good[_i].text, good[_i].flags);
	ck_assert_int_eq(la.kind, good[_i].kind);
	ck_assert_int_eq(la.any, good[_i].any);
	ck_assert_int_eq(la.localhost, good[_i].localhost);
	ck_assert_int_eq(la.nsa, good[_i].nsa);
	ck_assert_uint_eq(la.port, good[_i].port);
	if (la.kind == ADDR_UNIX) {
		ck_assert_str_eq(addr_path(&la), good[_i].text + 5);
		ck_assert_int_eq(la.sa[0].ss_family, AF_UNIX);
	} else {
		ck_assert_str_eq(addr_path(&la), "");
		ck_assert_str_eq(ntop(&la.sa[0]), good[_i].sa0);
		ck_assert_uint_eq(port_of(&la.sa[0]), la.port);
		ck_assert_uint_eq(la.salen[0], la.sa[0].ss_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
		if (la.nsa == 2) {
			ck_assert_str_eq(ntop(&la.sa[1]), good[_i].sa1);
			ck_assert_uint_eq(port_of(&la.sa[1]), la.port);
		}
	}
	/* Written back, it parses to the same. */
	ck_assert_str_eq(addr_fmt(&la, buf, sizeof(buf)), good[_i].fmt);
	parse(&again, buf, good[_i].flags);
	ck_assert(addr_equal(&la, &again));
}
END_TEST

/* Only the text tells these apart. */
START_TEST(test_equal)
{
	struct listen_addr a, b;

	parse(&a, "[::1]:50051", 0);
	parse(&b, "[0:0::0:1]:0050051", 0);
	ck_assert(addr_equal(&a, &b));
	ck_assert(addr_equal(&b, &a));

	parse(&b, "[::1]:50052", 0);
	ck_assert(!addr_equal(&a, &b));
	parse(&b, "127.0.0.1:50051", 0);
	ck_assert(!addr_equal(&a, &b));

	/* localhost is not 127.0.0.1 for the API: it is ::1 too. */
	parse(&a, "localhost:50051", ADDR_UNIX_OK);
	ck_assert(!addr_equal(&a, &b));
	parse(&b, "localhost:50051", ADDR_LO_V4);
	ck_assert(!addr_equal(&a, &b));
	parse(&b, "localhost:50051", 0);
	ck_assert(addr_equal(&a, &b));

	/* "*" is [::] with both families, unlike [::] itself. */
	parse(&a, "*:9100", 0);
	parse(&b, "[::]:9100", 0);
	ck_assert(!addr_equal(&a, &b));

	parse(&a, "unix:/run/a.sock", ADDR_UNIX_OK);
	parse(&b, "unix:/run/a.sock", ADDR_UNIX_OK);
	ck_assert(addr_equal(&a, &b));
	parse(&b, "unix:/run/b.sock", ADDR_UNIX_OK);
	ck_assert(!addr_equal(&a, &b));

	/* Not set (metrics-listen none) equals not set. */
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	ck_assert(addr_equal(&a, &b));
	parse(&b, "127.0.0.1:9100", 0);
	ck_assert(!addr_equal(&a, &b));
}
END_TEST

/*
 * Where bearer tokens may go in clear text: a Unix socket, or addresses
 * only this host reaches.
 */
START_TEST(test_loopback)
{
	static const struct {
		const char	*text;
		int		 loopback;
	} t[] = {
		{ "unix:/run/a.sock", 1 },
		{ "127.0.0.1:1", 1 },
		{ "127.255.3.4:1", 1 },
		{ "localhost:1", 1 },
		{ "[::1]:1", 1 },
		{ "[0:0:0:0:0:0:0:1]:1", 1 },
		{ "*:1", 0 },
		{ "0.0.0.0:1", 0 },
		{ "[::]:1", 0 },
		{ "192.0.2.1:1", 0 },
		{ "128.0.0.1:1", 0 },
		{ "[2001:db8::1]:1", 0 },
		{ "[::ffff:127.0.0.1]:1", 0 },
	};
	struct listen_addr	la;
	size_t			i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		parse(&la, t[i].text, ADDR_UNIX_OK);
		ck_assert_msg(addr_loopback(&la) == t[i].loopback, "%s",
		    t[i].text);
	}
	memset(&la, 0, sizeof(la));
	ck_assert(!addr_loopback(&la));
}
END_TEST

START_TEST(test_errors)
{
	struct listen_addr	la;
	char			err[256], big[ADDR_TEXT_MAX + 8];

	/* A refusal leaves nothing behind, and err may be NULL. */
	memset(&la, 0xa5, sizeof(la));
	ck_assert_int_eq(addr_parse(&la, "listen", "[::1]:0", 0, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "listen: \"[::1]:0\": port must be 1..65535 "
	    "(got \"0\")");
	ck_assert_int_eq(la.kind, ADDR_NONE);
	ck_assert_int_eq(la.nsa, 0);
	ck_assert_str_eq(la.text, "");
	ck_assert_int_eq(addr_parse(&la, "listen", "x", 0, NULL, 0), -1);

	/* unix: only where it is allowed. */
	ck_assert_int_eq(addr_parse(&la, "metrics-listen", "unix:/run/m",
	    ADDR_LO_V4, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "metrics-listen: \"unix:/run/m\": must be "
	    "HOST:PORT or [IPv6]:PORT");
	ck_assert_int_eq(addr_parse(&la, "listen", "unix:/run/m",
	    ADDR_UNIX_OK, err, sizeof(err)), 0);

	ck_assert_int_eq(addr_parse(&la, "listen", "[127.0.0.1]:80", 0, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "listen: \"[127.0.0.1]:80\": \"127.0.0.1\" is "
	    "not an IPv6 address");
	ck_assert_int_eq(addr_parse(&la, "listen", "*:65536", 0, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "listen: \"*:65536\": port must be 1..65535 "
	    "(got \"65536\")");
	ck_assert_int_eq(addr_parse(&la, "listen", "localhost", 0, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "listen: \"localhost\": missing port (expected "
	    "HOST:PORT, [IPv6]:PORT or unix:/PATH)");
	ck_assert_int_eq(addr_parse(&la, "listen", "[fe80::1%no-such-if9]:1",
	    0, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "is not an IPv6 address"));

	/* More than a configuration line holds. */
	memset(big, '0', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "1.2.3.4:", 8);
	ck_assert_int_eq(addr_parse(&la, "listen", big, 0, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "longer than"));
	big[ADDR_TEXT_MAX - 2] = '1';
	big[ADDR_TEXT_MAX - 1] = '\0';
	ck_assert_int_eq(addr_parse(&la, "listen", big, 0, err, sizeof(err)),
	    0);
	ck_assert_uint_eq(la.port, 1);
}
END_TEST

/* A link-local address keeps its interface, by name. */
START_TEST(test_scope)
{
	struct listen_addr	la, again;
	char			want[64], buf[ADDR_TEXT_MAX], lo[IF_NAMESIZE];

	if (if_indextoname(1, lo) == NULL)
		return;
	snprintf(want, sizeof(want), "[fe80::1%%%s]:5060", lo);
	parse(&la, want, 0);
	ck_assert_uint_eq(((struct sockaddr_in6 *)&la.sa[0])->sin6_scope_id,
	    1);
	ck_assert_str_eq(addr_fmt(&la, buf, sizeof(buf)), want);
	parse(&again, buf, 0);
	ck_assert(addr_equal(&la, &again));
}
END_TEST

static int
sockopt(int fd, int level, int name)
{
	int		v = -1;
	socklen_t	len = sizeof(v);

	ck_assert_int_eq(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

/* A TCP port no one has on 127.0.0.1 or ::1 just now. */
static uint16_t
free_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd;

	ck_assert_int_ge(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static int
have_v6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);

	if (fd == -1)
		return 0;
	close(fd);
	return 1;
}

/*
 * The options every listener of the daemon has: SO_REUSEADDR and
 * SO_REUSEPORT (a new master binds beside the old one), IPV6_V6ONLY but
 * for "*", non-blocking, close-on-exec.
 */
START_TEST(test_bind)
{
	struct sockaddr_storage	 ss;
	struct listen_addr	 la;
	socklen_t		 len;
	char			 text[64];
	int			 fd, fd2, i;
	uint16_t		 port = free_port();

	snprintf(text, sizeof(text), "127.0.0.1:%u", port);
	parse(&la, text, 0);
	ck_assert_int_ge(fd = addr_bind(&la, 0), 0);
	ck_assert_int_eq(sockopt(fd, SOL_SOCKET, SO_REUSEADDR), 1);
	ck_assert_int_eq(sockopt(fd, SOL_SOCKET, SO_REUSEPORT), 1);
	ck_assert_int_eq(sockopt(fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	len = sizeof(ss);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	ck_assert_str_eq(ntop(&ss), "127.0.0.1");
	ck_assert_uint_eq(port_of(&ss), port);
	/* Beside it, as a new master does. */
	ck_assert_int_ge(fd2 = addr_bind(&la, 0), 0);
	close(fd2);
	close(fd);
	/* No such socket address. */
	ck_assert_int_eq(addr_bind(&la, 1), -1);
	ck_assert_int_eq(errno, EINVAL);

	if (!have_v6())
		return;
	snprintf(text, sizeof(text), "*:%u", port);
	parse(&la, text, 0);
	ck_assert_int_ge(fd = addr_bind(&la, 0), 0);
	ck_assert_int_eq(sockopt(fd, SOL_SOCKET, SO_DOMAIN), AF_INET6);
	ck_assert_int_eq(sockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 0);
	ck_assert_int_eq(sockopt(fd, SOL_SOCKET, SO_REUSEPORT), 1);
	close(fd);

	snprintf(text, sizeof(text), "localhost:%u", port);
	parse(&la, text, 0);
	for (i = 0; i < 2; i++) {
		fd = addr_bind(&la, i);
		if (fd == -1 && i == 1 && errno == EADDRNOTAVAIL)
			break;		/* no ::1 here */
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(sockopt(fd, SOL_SOCKET, SO_DOMAIN),
		    i == 0 ? AF_INET : AF_INET6);
		if (i == 1)
			ck_assert_int_eq(sockopt(fd, IPPROTO_IPV6,
			    IPV6_V6ONLY), 1);
		close(fd);
	}
}
END_TEST

START_TEST(test_bind_unix)
{
	struct sockaddr_un	 sun;
	struct listen_addr	 la;
	socklen_t		 len = sizeof(sun);
	char			 dir[] = "/tmp/check_addr.XXXXXX", text[128];
	int			 fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(text, sizeof(text), "unix:%s/api.sock", dir);
	parse(&la, text, ADDR_UNIX_OK);
	ck_assert_int_ge(fd = addr_bind(&la, 0), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sun, &len), 0);
	ck_assert_str_eq(sun.sun_path, addr_path(&la));
	ck_assert_int_eq(sockopt(fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
	close(fd);
	ck_assert_int_eq(unlink(addr_path(&la)), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("addr");
	TCase	*tc = tcase_create("addr");
	SRunner	*sr;
	int	 failed;

	tcase_add_loop_test(tc, test_parse, 0, sizeof(good) / sizeof(good[0]));
	tcase_add_test(tc, test_equal);
	tcase_add_test(tc, test_loopback);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_scope);
	tcase_add_test(tc, test_bind);
	tcase_add_test(tc, test_bind_unix);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0;
}
