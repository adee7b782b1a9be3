/*
 * The API's and the relay's defences, from outside, through the real
 * daemon: TLS and client certificates (made here with openssl), bearer
 * tokens, the destination rules and the refusals they give, senders the
 * relay refuses to latch on to, strict reverse sources and rate limits.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "acl.h"
#include "conf.h"
#include "sessions.h"
#include "worker.h"
#include "grpc/health/v1/health.pb-c.h"

#define M_HEALTH	"/grpc.health.v1.Health/Check"
#define M_LIST		"/rtpproxy.RtpProxy/ListSessions"

#define TOKEN_A		"token-a-0123456789abcdef"
#define TOKEN_B		"token-b-fedcba9876543210"
#define TOKEN_C		"token-c-00000000000000000"

static struct daemon	d;

/* --- helpers ------------------------------------------------------------ */

static char *
slurp(const char *path)
{
	static char	 buf[4][16384];
	static int	 n;
	FILE		*f;
	size_t		 len;

	n = (n + 1) % 4;
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	len = fread(buf[n], 1, sizeof(buf[n]) - 1, f);
	fclose(f);
	buf[n][len] = '\0';
	return buf[n];
}

static const char *
dpath(const char *name)
{
	static char	buf[8][256];
	static int	n;

	n = (n + 1) % 8;
	snprintf(buf[n], sizeof(buf[n]), "%s/%s", d.dir, name);
	return buf[n];
}

static void
put(const char *name, const char *text)
{
	FILE *f;

	ck_assert_ptr_nonnull(f = fopen(dpath(name), "w"));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	chmod(dpath(name), 0600);
}

static int
sh(const char *fmt, ...) __printflike(1, 2);

static int
sh(const char *fmt, ...)
{
	char	cmd[2048], out[4096];
	va_list	ap;
	int	rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = harness_run(cmd, out, sizeof(out));
	if (rc != 0)
		fprintf(stderr, "check_security: %s: exit %d\n%s\n", cmd, rc,
		    out);
	return rc;
}

/*
 * Two CAs, ca and ca2; a server certificate for 127.0.0.1 from each
 * (srv, srv2), and a client certificate from each (cli: CN controller-1,
 * cli2: CN stranger).  openssl comes from Debian's openssl package.
 */
static int
make_certs(const char *dir)
{
	static const char *const ca[] = { "ca", "ca2" };
	int i;

	for (i = 0; i < 2; i++)
		if (sh("cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes "
		    "-keyout %s.key -out %s.crt -days 2 -subj /CN=test-%s "
		    "2>&1", dir, ca[i], ca[i], ca[i]) != 0)
			return -1;
	if (sh("cd '%s' && printf 'subjectAltName=IP:127.0.0.1,"
	    "DNS:localhost\\n' > san.ext", dir) != 0)
		return -1;
	for (i = 0; i < 2; i++) {
		if (sh("cd '%s' && openssl req -newkey rsa:2048 -nodes "
		    "-keyout srv%s.key -out srv%s.csr -subj /CN=rtpproxyd "
		    "2>&1 && openssl x509 -req -in srv%s.csr -CA %s.crt "
		    "-CAkey %s.key -CAcreateserial -out srv%s.crt -days 2 "
		    "-extfile san.ext 2>&1", dir, i ? "2" : "", i ? "2" : "",
		    i ? "2" : "", ca[i], ca[i], i ? "2" : "") != 0)
			return -1;
		if (sh("cd '%s' && openssl req -newkey rsa:2048 -nodes "
		    "-keyout cli%s.key -out cli%s.csr -subj /CN=%s 2>&1 && "
		    "openssl x509 -req -in cli%s.csr -CA %s.crt -CAkey %s.key "
		    "-CAcreateserial -out cli%s.crt -days 2 2>&1", dir,
		    i ? "2" : "", i ? "2" : "", i ? "stranger" :
		    "controller-1", i ? "2" : "", ca[i], ca[i],
		    i ? "2" : "") != 0)
			return -1;
	}
	return 0;
}

static struct rpc_client *
client_sec(const char *ca, const char *cert, const char *token)
{
	struct rpc_security	 sec;
	struct rpc_client	*c;

	memset(&sec, 0, sizeof(sec));
	if (ca != NULL) {
		sec.tls = 1;
		sec.ca = slurp(dpath(ca));
		if (cert != NULL) {
			char name[64];

			snprintf(name, sizeof(name), "%s.crt", cert);
			sec.cert = slurp(dpath(name));
			snprintf(name, sizeof(name), "%s.key", cert);
			sec.key = slurp(dpath(name));
		}
	}
	sec.token = token;
	ck_assert_ptr_nonnull(c = rpc_client_new_secure(d.grpc, &sec));
	return c;
}

/* The status of one Health/Check over c. */
static int
health(struct rpc_client *c)
{
	Grpc__Health__V1__HealthCheckRequest	 req =
	    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	ProtobufCMessage			*resp = NULL;
	int					 rc;

	rc = rpc_unary(c, M_HEALTH, &req.base,
	    &grpc__health__v1__health_check_response__descriptor, &resp, NULL,
	    0, 3000 * harness_slow());
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

static int
list(struct rpc_client *c, char *det, size_t len)
{
	Rtpproxy__ListSessionsRequest	 req =
	    RTPPROXY__LIST_SESSIONS_REQUEST__INIT;
	ProtobufCMessage		*resp = NULL;
	int				 rc;

	rc = rpc_unary(c, M_LIST, &req.base,
	    &rtpproxy__list_sessions_response__descriptor, &resp, det, len,
	    3000 * harness_slow());
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

/* One-shot: a fresh client with these credentials, one call. */
static int
health_with(const char *ca, const char *cert, const char *token)
{
	struct rpc_client	*c = client_sec(ca, cert, token);
	int			 rc = health(c);

	rpc_client_free(c);
	return rc;
}

static int
list_with(const char *ca, const char *cert, const char *token)
{
	struct rpc_client	*c = client_sec(ca, cert, token);
	int			 rc = list(c, NULL, 0);

	rpc_client_free(c);
	return rc;
}

/* rtpproxyctl with args; its exit code. */
static int
ctl(const char *args)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' -s %s %s 2>&1", d.dir,
	    getenv("RTPPROXYCTL"), d.grpc, args);
	return harness_run(cmd, NULL, 0);
}

static void
up(const char *extra)
{
	signal(SIGPIPE, SIG_IGN);
	if (harness_prepare(&d, 1, extra) == -1 ||
	    harness_launch(&d, 1) == -1) {
		fprintf(stderr, "check_security: the daemon did not start; "
		    "log in %s\n", d.log);
		setenv("RTPPROXYD_KEEP", "1", 1);
	}
}

static void
down(void)
{
	harness_stop(&d, 5000);
	harness_cleanup(&d);
}

static void
need_daemon(void)
{
	ck_assert_msg(d.pid > 0, "daemon not running; see %s", d.log);
}

/* CreateSession with the given destination; the status. */
static int
create_to(struct rpc_client *c, const char *id, const char *laddr,
    const char *daddr, uint16_t dport, char *det, size_t len)
{
	struct harness_session a = { .id = id, .laddr = laddr,
	    .daddr = daddr, .dport = dport, .nortcp = 1 };

	return harness_create(c, &a, NULL, det, len);
}

/* The line of the configuration file that holds s. */
static int
conf_line_of(const char *s)
{
	char	 line[512];
	FILE	*f;
	int	 n = 0;

	ck_assert_ptr_nonnull(f = fopen(d.conf, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		n++;
		if (strstr(line, s) != NULL)
			break;
	}
	fclose(f);
	return n;
}

static int
create_tcp_to(struct rpc_client *c, const char *id, uint16_t dport,
    char *det, size_t len)
{
	struct harness_session a = { .id = id, .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = dport, .transport = 1 };

	return harness_create(c, &a, NULL, det, len);
}

/* --- TLS -------------------------------------------------------------- */

/* A daemon with TLS; with mutual, client certificates required. */
static void
tls_up(int mutual)
{
	char line[512];

	signal(SIGPIPE, SIG_IGN);
	if (harness_prepare(&d, 1, NULL) == -1 || make_certs(d.dir) == -1) {
		fprintf(stderr, "check_security: cannot prepare TLS\n");
		return;
	}
	snprintf(line, sizeof(line), "tls-cert %s", dpath("srv.crt"));
	harness_conf_set(&d, line);
	snprintf(line, sizeof(line), "tls-key %s", dpath("srv.key"));
	harness_conf_set(&d, line);
	if (mutual) {
		snprintf(line, sizeof(line), "tls-client-ca %s",
		    dpath("ca.crt"));
		harness_conf_set(&d, line);
	}
	if (harness_launch(&d, 1) == -1)
		fprintf(stderr, "check_security: TLS daemon did not start; "
		    "log in %s\n", d.log);
}

static void up_tls(void) { tls_up(0); }
static void up_mtls(void) { tls_up(1); }

START_TEST(tls_server)
{
	struct rpc_client	*c;
	char			 det[256];

	need_daemon();
	/* Plain text to a TLS port gets nowhere. */
	ck_assert_int_eq(health_with(NULL, NULL, NULL), RP_UNAVAILABLE);
	/* A client that trusts another CA does not trust the server. */
	ck_assert_int_eq(health_with("ca2.crt", NULL, NULL), RP_UNAVAILABLE);
	ck_assert_int_eq(health_with("ca.crt", NULL, NULL), RP_OK);

	c = client_sec("ca.crt", NULL, NULL);
	ck_assert_int_eq(create_to(c, "tls-1", "127.0.0.1", "127.0.0.1",
	    40000, det, sizeof(det)), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "tls-1"), RP_OK);
	rpc_client_free(c);

	/* The same with rtpproxyctl. */
	ck_assert_int_eq(ctl("--ca ca.crt health"), 0);
	ck_assert_int_eq(ctl("health"), RP_UNAVAILABLE);
	ck_assert_int_eq(ctl("--tls --ca ca2.crt health"), RP_UNAVAILABLE);
	ck_assert_int_eq(harness_log_count(&d, "(TLS)"), 1);
}
END_TEST

/* A new certificate on SIGHUP, for new connections, without a restart. */
START_TEST(tls_rotate)
{
	char line[512];

	need_daemon();
	ck_assert_int_eq(health_with("ca.crt", NULL, NULL), RP_OK);
	snprintf(line, sizeof(line), "tls-cert %s", dpath("srv2.crt"));
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	snprintf(line, sizeof(line), "tls-key %s", dpath("srv2.key"));
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_eq(harness_log_count(&d, "TLS certificate, key or "
	    "client CA changed"), 1);
	ck_assert_int_eq(health_with("ca2.crt", NULL, NULL), RP_OK);
	ck_assert_int_eq(health_with("ca.crt", NULL, NULL), RP_UNAVAILABLE);

	/* A key that is not there: the reload is refused, TLS goes on. */
	snprintf(line, sizeof(line), "tls-key %s", dpath("nonesuch.key"));
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_ge(harness_log_count(&d, "nonesuch.key: No such file"),
	    1);
	ck_assert_int_eq(health_with("ca2.crt", NULL, NULL), RP_OK);
}
END_TEST

START_TEST(tls_mutual)
{
	need_daemon();
	ck_assert_int_eq(harness_log_count(&d, "client certificates "
	    "required"), 1);
	/* No client certificate, or one from a CA the server does not know. */
	ck_assert_int_eq(health_with("ca.crt", NULL, NULL), RP_UNAVAILABLE);
	ck_assert_int_eq(health_with("ca.crt", "cli2", NULL), RP_UNAVAILABLE);
	ck_assert_int_eq(health_with(NULL, NULL, NULL), RP_UNAVAILABLE);
	ck_assert_int_eq(health_with("ca.crt", "cli", NULL), RP_OK);
	ck_assert_int_eq(list_with("ca.crt", "cli", NULL), RP_OK);
	/* The peer's certificate name is in the log of the calls. */
	ck_assert_int_ge(harness_log_count(&d, "(CN=controller-1)"), 1);
	ck_assert_int_eq(ctl("--ca ca.crt --cert cli.crt --key cli.key "
	    "health"), 0);
	ck_assert_int_eq(ctl("--ca ca.crt health"), RP_UNAVAILABLE);
	ck_assert_int_eq(ctl("--ca ca.crt --cert cli.crt health"), 64);
}
END_TEST

/* --- bearer tokens ------------------------------------------------------ */

static void
up_token(void)
{
	char line[512];

	signal(SIGPIPE, SIG_IGN);
	if (harness_prepare(&d, 1, NULL) == -1)
		return;
	put("tokens", "# two tokens: the new one and the one it replaces\n"
	    TOKEN_A "\n\n  " TOKEN_B "  \n");
	put("ctl-token", TOKEN_A "\n");
	snprintf(line, sizeof(line), "auth-token-file %s", dpath("tokens"));
	harness_conf_set(&d, line);
	if (harness_launch(&d, 1) == -1)
		fprintf(stderr, "check_security: token daemon did not start; "
		    "log in %s\n", d.log);
}

START_TEST(token_required)
{
	struct rpc_client	*c;
	char			 det[256];
	void			*resp = NULL;
	size_t			 rlen;

	need_daemon();
	c = client_sec(NULL, NULL, NULL);
	ck_assert_int_eq(list(c, det, sizeof(det)), RP_UNAUTHENTICATED);
	ck_assert_str_eq(det, "no bearer token");
	ck_assert_int_eq(create_to(c, "tok-1", "127.0.0.1", "127.0.0.1",
	    40000, det, sizeof(det)), RP_UNAUTHENTICATED);
	/* Health stays open by default, for load balancers and probes. */
	ck_assert_int_eq(health(c), RP_OK);
	/* Whether a method exists is not told to strangers. */
	ck_assert_int_eq(rpc_unary_raw(c, "/no.Such/Method", "", 0, &resp,
	    &rlen, det, sizeof(det), 3000), RP_UNAUTHENTICATED);
	free(resp);
	rpc_client_free(c);

	ck_assert_int_eq(list_with(NULL, NULL, "token-x-0123456789abcdef"),
	    RP_UNAUTHENTICATED);
	ck_assert_int_eq(list_with(NULL, NULL, TOKEN_A "x"),
	    RP_UNAUTHENTICATED);
	ck_assert_int_eq(list_with(NULL, NULL, TOKEN_A), RP_OK);
	ck_assert_int_eq(list_with(NULL, NULL, TOKEN_B), RP_OK);

	c = client_sec(NULL, NULL, TOKEN_A);
	ck_assert_int_eq(rpc_unary_raw(c, "/no.Such/Method", "", 0, &resp,
	    &rlen, det, sizeof(det), 3000), RP_UNIMPLEMENTED);
	free(resp);
	ck_assert_int_eq(create_to(c, "tok-1", "127.0.0.1", "127.0.0.1",
	    40000, det, sizeof(det)), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "tok-1"), RP_OK);
	rpc_client_free(c);

	/* Refusals are logged with the peer and the reason. */
	ck_assert_int_ge(harness_log_count(&d, "ListSessions refused: no "
	    "bearer token"), 1);
	ck_assert_int_ge(harness_log_count(&d, "ListSessions refused: wrong "
	    "bearer token"), 2);
	ck_assert_int_ge(harness_log_count(&d, "ipv4:127.0.0.1:"), 1);

	ck_assert_int_eq(ctl("--token-file ctl-token list"), 0);
	ck_assert_int_eq(ctl("list"), RP_UNAUTHENTICATED);
}
END_TEST

static int
have_loopback6(void)
{
	struct sockaddr_in6	sin6;
	int			fd, ok;

	if ((fd = socket(AF_INET6, SOCK_STREAM, 0)) == -1)
		return 0;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	close(fd);
	return ok;
}

/*
 * Tokens without TLS are worth a warning where the network sees them:
 * not on a loopback address, however it is written.
 */
START_TEST(token_clear_text)
{
	struct daemon	two;
	char		line[256];
	int		v6 = have_loopback6(), up, on_v6, on_any;

	need_daemon();
	ck_assert_int_eq(harness_log_count(&d, "clear text"), 0);

	ck_assert_int_eq(harness_prepare(&two, 1, NULL), 0);
	snprintf(line, sizeof(line), "auth-token-file %s", dpath("tokens"));
	ck_assert_int_eq(harness_conf_add(&two, line), 0);
	if (v6) {
		snprintf(line, sizeof(line), "listen [0:0::1]:%u",
		    two.grpc_port);
		ck_assert_int_eq(harness_conf_set(&two, line), 0);
	}
	snprintf(line, sizeof(line), "listen *:%u", harness_tcp_port());
	ck_assert_int_eq(harness_conf_add(&two, line), 0);
	up = harness_launch(&two, 1) == 0;
	on_v6 = harness_log_count(&two, "clear text on [0:0::1]");
	on_any = harness_log_count(&two, "clear text on *:");
	if (two.pid > 0)
		harness_stop(&two, 10000);
	ck_assert_msg(up, "did not start; log in %s", two.log);
	ck_assert_int_eq(on_v6, 0);
	ck_assert_int_eq(on_any, 1);
	harness_cleanup(&two);
}
END_TEST

/* A flood of bad tokens is refused and summarised, not logged per call. */
START_TEST(token_flood)
{
	struct rpc_client	*c;
	int			 i, before;

	need_daemon();
	before = harness_log_count(&d, "refused: wrong bearer token");
	c = client_sec(NULL, NULL, "token-x-0123456789abcdef");
	for (i = 0; i < 200; i++)
		ck_assert_int_eq(list(c, NULL, 0), RP_UNAUTHENTICATED);
	rpc_client_free(c);
	ck_assert_int_eq(list_with(NULL, NULL, TOKEN_B), RP_OK);
	ck_assert_int_lt(harness_log_count(&d, "refused: wrong bearer token")
	    - before, 100);
	/* The next refusal, a second later, says how many were not logged. */
	usleep(1100 * 1000);
	ck_assert_int_eq(list_with(NULL, NULL, "token-y-0123456789abcdef"),
	    RP_UNAUTHENTICATED);
	ck_assert_int_ge(harness_log_count(&d, "unauthenticated calls not "
	    "logged"), 1);
}
END_TEST

START_TEST(token_reload)
{
	char line[512];

	need_daemon();
	put("tokens", TOKEN_C "\n");
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_eq(list_with(NULL, NULL, TOKEN_A), RP_UNAUTHENTICATED);
	ck_assert_int_eq(list_with(NULL, NULL, TOKEN_C), RP_OK);

	/* A broken token file is refused; the tokens in force stay. */
	put("tokens", "short\n");
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_ge(harness_log_count(&d, "line 1: token shorter than "
	    "16 characters"), 1);
	ck_assert_int_eq(list_with(NULL, NULL, TOKEN_C), RP_OK);
	put("tokens", TOKEN_C "\n");

	/* The health check can be closed too. */
	ck_assert_int_eq(harness_conf_set(&d, "auth-health token"), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_eq(health_with(NULL, NULL, NULL), RP_UNAUTHENTICATED);
	ck_assert_int_eq(health_with(NULL, NULL, TOKEN_C), RP_OK);

	/* No token file: no authentication. */
	snprintf(line, sizeof(line), "auth-health open");
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_eq(health_with(NULL, NULL, NULL), RP_OK);
}
END_TEST

/* --- destination rules -------------------------------------------------- */

static void up_defaults(void) { up(HARNESS_NOALLOW); }
static void up_loopback(void) { up(NULL); }

static void
up_rules(void)
{
	up("deny-destination 192.0.2.0/24\n"
	    "allow-destination 192.0.2.7\n"
	    "deny-destination 127.0.0.2/32 fd00::/8\n"
	    "allow-destination 0.0.0.0/8");
}

START_TEST(acl_defaults)
{
	static const struct {
		const char *listen, *dest, *what;
	} refused[] = {
		{ "127.0.0.1", "127.0.0.1", "a loopback address" },
		{ "127.0.0.1", "127.254.3.4", "a loopback address" },
		{ "127.0.0.1", "0.1.2.3", "unspecified" },
		{ "127.0.0.1", "224.0.0.5", "a multicast address" },
		{ "127.0.0.1", "239.255.255.250", "a multicast address" },
		{ "127.0.0.1", "255.255.255.255", "the broadcast address" },
		{ "127.0.0.1", "169.254.169.254", "a link-local address" },
		{ "127.0.0.1", "240.0.0.1", "a reserved address" },
		{ "::1", "::1", "the loopback address" },
		{ "::1", "::ffff:127.0.0.1", "a loopback address" },
		{ "::1", "ff02::1", "a multicast address" },
		{ "::1", "fe80::1", "a link-local address" },
		/* judged by the IPv4 address they embed */
		{ "::1", "::127.0.0.1", "embeds 127.0.0.1 (IPv4-compatible" },
		{ "::1", "64:ff9b::7f00:1", "embeds 127.0.0.1 (NAT64" },
		{ "::1", "64:ff9b:1::a9fe:a9fe", "embeds 169.254.169.254" },
		{ "::1", "2002:7f00:1::", "embeds 127.0.0.1 (6to4" },
		{ "::1", "2001:0:4136:e378:8000:63bf:80ff:fffe",
		    "embeds 127.0.0.1 (Teredo" },
	};
	struct rpc_client	*c;
	char			 det[512];
	size_t			 i;

	need_daemon();
	c = client_sec(NULL, NULL, NULL);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		det[0] = '\0';
		ck_assert_int_eq(create_to(c, "acl-def", refused[i].listen,
		    refused[i].dest, 40000, det, sizeof(det)),
		    RP_PERMISSION_DENIED);
		ck_assert_msg(strstr(det, refused[i].what) != NULL &&
		    strstr(det, "allow-destination") != NULL &&
		    strstr(det, "built-in rule") != NULL, "%s: %s",
		    refused[i].dest, det);
		ck_assert_int_eq(harness_status(c, "acl-def", NULL),
		    RP_NOT_FOUND);
	}
	/*
	 * A wildcard is not a place to send media (to the kernel it means
	 * this host): refused before any rule, which cannot open it.
	 */
	ck_assert_int_eq(create_to(c, "acl-def", "127.0.0.1", "0.0.0.0",
	    40000, det, sizeof(det)), RP_INVALID_ARGUMENT);
	ck_assert_msg(strstr(det, "wildcard") != NULL, "%s", det);
	ck_assert_int_eq(create_to(c, "acl-def", "::1", "::", 40000, det,
	    sizeof(det)), RP_INVALID_ARGUMENT);
	ck_assert_int_eq(create_to(c, "acl-def", "::1", "::ffff:0.0.0.0",
	    40000, det, sizeof(det)), RP_INVALID_ARGUMENT);
	ck_assert_msg(strstr(det, "wildcard") != NULL, "%s", det);
	/* Anything else is relayed to: TEST-NET-1 here. */
	ck_assert_int_eq(create_to(c, "acl-def", "127.0.0.1", "192.0.2.1",
	    40000, det, sizeof(det)), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "acl-def"), RP_OK);
	ck_assert_int_ge(harness_log_count(&d, "session acl-def refused: "
	    "destination 127.0.0.1:40000"), 1);
	rpc_client_free(c);
}
END_TEST

START_TEST(acl_rules)
{
	struct rpc_client	*c;
	Rtpproxy__SessionInfo	*si;
	char			 det[512], want[512];
	uint16_t		 lport;

	need_daemon();
	c = client_sec(NULL, NULL, NULL);
	/* The longest prefix decides. */
	ck_assert_int_eq(create_to(c, "acl-1", "127.0.0.1", "192.0.2.7",
	    40000, det, sizeof(det)), RP_OK);
	ck_assert_int_eq(create_to(c, "acl-2", "127.0.0.1", "192.0.2.8",
	    40000, det, sizeof(det)), RP_PERMISSION_DENIED);
	snprintf(want, sizeof(want), "destination 192.0.2.8:40000 is refused "
	    "by deny-destination 192.0.2.0/24 (%s:%d)", d.conf,
	    conf_line_of("192.0.2.0/24"));
	ck_assert_msg(strstr(det, want) != NULL, "%s", det);
	ck_assert_int_eq(create_to(c, "acl-3", "127.0.0.1", "198.51.100.1",
	    40000, det, sizeof(det)), RP_OK);
	/* The loopback allow of the harness is there, one host is not. */
	ck_assert_int_eq(create_to(c, "acl-4", "127.0.0.1", "127.0.0.1",
	    40000, det, sizeof(det)), RP_OK);
	ck_assert_int_eq(create_to(c, "acl-5", "127.0.0.1", "127.0.0.2",
	    40000, det, sizeof(det)), RP_PERMISSION_DENIED);

	/* This daemon's own sockets on this host, whatever the rules. */
	ck_assert_int_eq(harness_status(c, "acl-4", &si), RP_OK);
	lport = (uint16_t)si->listen->port;
	harness_info_free(si);
	ck_assert_int_eq(create_to(c, "acl-6", "127.0.0.1", "127.0.0.1",
	    lport, det, sizeof(det)), RP_PERMISSION_DENIED);
	ck_assert_msg(strstr(det, "own sockets") != NULL, "%s", det);
	/* The API's port: ours for TCP, somebody else's for UDP. */
	ck_assert_int_eq(create_tcp_to(c, "acl-7", d.grpc_port, det,
	    sizeof(det)), RP_PERMISSION_DENIED);
	ck_assert_msg(strstr(det, "own ports") != NULL, "%s", det);
	ck_assert_int_eq(create_to(c, "acl-7", "127.0.0.1", "127.0.0.1",
	    d.grpc_port, det, sizeof(det)), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "acl-7"), RP_OK);
	/* A media port number on another host is not ours. */
	ck_assert_int_eq(create_to(c, "acl-8", "127.0.0.1", "198.51.100.1",
	    d.port_min + 10, det, sizeof(det)), RP_OK);

	/* Rules change on SIGHUP; sessions that exist stay. */
	ck_assert_int_eq(harness_conf_add(&d,
	    "deny-destination 198.51.100.0/24"), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_eq(create_to(c, "acl-9", "127.0.0.1", "198.51.100.1",
	    40000, det, sizeof(det)), RP_PERMISSION_DENIED);
	ck_assert_int_eq(harness_status(c, "acl-3", NULL), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "acl-1"), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "acl-3"), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "acl-4"), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "acl-8"), RP_OK);
	rpc_client_free(c);
}
END_TEST

/* A caller the rules refuse as a reverse target is not latched on to. */
/*
 * The IPv4 rules decide for the IPv6 spellings too: an allow of
 * 0.0.0.0/8 opens 0.1.2.3 but never the wildcard; the harness's
 * allow-destination 127.0.0.0/8 opens the NAT64 spelling of loopback.
 */
START_TEST(acl_opened)
{
	struct rpc_client	*c;
	Rtpproxy__SessionInfo	*si;
	char			 det[512];
	uint16_t		 lport;

	need_daemon();
	c = client_sec(NULL, NULL, NULL);
	ck_assert_int_eq(create_to(c, "open-1", "127.0.0.1", "0.1.2.3",
	    40000, det, sizeof(det)), RP_OK);
	ck_assert_int_eq(create_to(c, "open-2", "127.0.0.1", "0.0.0.0",
	    40000, det, sizeof(det)), RP_INVALID_ARGUMENT);
	ck_assert_int_eq(create_to(c, "open-3", "::1", "64:ff9b::7f00:1",
	    40000, det, sizeof(det)), RP_OK);
	/* An IPv4 deny refuses it in each spelling, naming the rule. */
	ck_assert_int_eq(create_to(c, "open-4", "::1", "64:ff9b::7f00:2",
	    40000, det, sizeof(det)), RP_PERMISSION_DENIED);
	ck_assert_msg(strstr(det, "deny-destination 127.0.0.2/32") != NULL &&
	    strstr(det, "embeds 127.0.0.2 (NAT64") != NULL, "%s", det);
	ck_assert_int_eq(create_to(c, "open-4", "::1", "2002:7f00:2::",
	    40000, det, sizeof(det)), RP_PERMISSION_DENIED);
	ck_assert_int_eq(create_to(c, "open-4", "::1", "::ffff:0:127.0.0.2",
	    40000, det, sizeof(det)), RP_PERMISSION_DENIED);
	/* ... and the daemon's own sockets on the host, embedded or not. */
	ck_assert_int_eq(harness_status(c, "open-1", &si), RP_OK);
	lport = (uint16_t)si->listen->port;
	harness_info_free(si);
	ck_assert_int_eq(create_to(c, "open-5", "::1", "64:ff9b::7f00:1",
	    lport, det, sizeof(det)), RP_PERMISSION_DENIED);
	ck_assert_msg(strstr(det, "own sockets") != NULL &&
	    strstr(det, "embeds 127.0.0.1") != NULL, "%s", det);
	ck_assert_int_eq(harness_destroy(c, "open-1"), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "open-3"), RP_OK);
	rpc_client_free(c);
}
END_TEST

START_TEST(acl_latch)
{
	struct rpc_client		*c;
	struct harness_session		 a = { .id = "latch", .laddr =
	    "127.0.0.1", .daddr = "127.0.0.1", .nortcp = 1 };
	Rtpproxy__CreateSessionResponse	*resp;
	Rtpproxy__SessionInfo		*si;
	uint8_t				 b[200], got[200];
	int				 bad, good, dst, i;
	uint16_t			 lport, dport;
	size_t				 n;

	need_daemon();
	c = client_sec(NULL, NULL, NULL);
	ck_assert_int_ge(dst = harness_udp(0, &dport), 0);
	a.dport = dport;
	ck_assert_int_eq(harness_create(c, &a, &resp, NULL, 0), RP_OK);
	lport = (uint16_t)resp->session->listen->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);

	ck_assert_int_ge(bad = harness_udp_addr("127.0.0.2", 0, NULL), 0);
	for (i = 0; i < 3; i++) {
		n = harness_rtp(b, (uint16_t)i, (uint32_t)i * 160, 0x1234, 100);
		ck_assert_int_eq(harness_send(bad, "127.0.0.1", lport, b, n),
		    0);
	}
	ck_assert_int_eq(harness_recv(dst, got, sizeof(got), 300, NULL), -1);
	ck_assert_int_eq(harness_status(c, "latch", &si), RP_OK);
	ck_assert_uint_eq(si->forward_stats->dropped_source, 3);
	ck_assert_uint_eq(si->forward_stats->packets_sent, 0);
	ck_assert_ptr_null(si->latched);
	harness_info_free(si);

	ck_assert_int_ge(good = harness_udp(0, NULL), 0);
	n = harness_rtp(b, 7, 7 * 160, 0x1234, 100);
	ck_assert_int_eq(harness_send(good, "127.0.0.1", lport, b, n), 0);
	ck_assert_int_eq(harness_recv(dst, got, sizeof(got), 3000, NULL),
	    (ssize_t)n);
	/* Nor does the refused one take the latch over later. */
	n = harness_rtp(b, 8, 8 * 160, 0x1234, 100);
	ck_assert_int_eq(harness_send(bad, "127.0.0.1", lport, b, n), 0);
	ck_assert_int_eq(harness_recv(dst, got, sizeof(got), 300, NULL), -1);
	ck_assert_int_eq(harness_status(c, "latch", &si), RP_OK);
	ck_assert_ptr_nonnull(si->latched);
	ck_assert_str_eq(si->latched->address, "127.0.0.1");
	ck_assert_uint_eq(si->forward_stats->dropped_source, 4);
	ck_assert_uint_eq(si->forward_stats->packets_dropped, 4);
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "latch"), RP_OK);
	close(bad);
	close(good);
	close(dst);
	rpc_client_free(c);
}
END_TEST

/* --- reverse sources ------------------------------------------------------ */

struct path {
	int		 caller, dest;
	uint16_t	 lport, fport, dport;
};

/* A session caller -> dest with the first packet through (latched). */
static void
path_open(struct rpc_client *c, struct path *p, const char *id, int rs,
    uint32_t pps, uint64_t bps)
{
	struct harness_session		 a = { .id = id, .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .nortcp = 1, .reverse_source = rs,
	    .rate_pps = pps, .rate_bps = bps };
	Rtpproxy__CreateSessionResponse	*resp;
	uint8_t				 b[64], got[64];
	size_t				 n;

	ck_assert_int_ge(p->caller = harness_udp(0, NULL), 0);
	ck_assert_int_ge(p->dest = harness_udp(0, &p->dport), 0);
	a.dport = p->dport;
	ck_assert_int_eq(harness_create(c, &a, &resp, NULL, 0), RP_OK);
	p->lport = (uint16_t)resp->session->listen->port;
	p->fport = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (pps != 0 || bps != 0)
		return;
	n = harness_rtp(b, 1, 160, 0x5151, 20);
	ck_assert_int_eq(harness_send(p->caller, "127.0.0.1", p->lport, b, n),
	    0);
	ck_assert_int_eq(harness_recv(p->dest, got, sizeof(got), 3000, NULL),
	    (ssize_t)n);
}

static void
path_close(struct rpc_client *c, struct path *p, const char *id)
{
	ck_assert_int_eq(harness_destroy(c, id), RP_OK);
	close(p->caller);
	close(p->dest);
}

/* Does a reverse packet sent from fd reach the caller? */
static int
reverse_from(struct path *p, int fd)
{
	uint8_t	b[64], got[64];
	size_t	n = harness_rtp(b, 9, 900, 0x7777, 20);

	ck_assert_int_eq(harness_send(fd, "127.0.0.1", p->fport, b, n), 0);
	return harness_recv(p->caller, got, sizeof(got), 300, NULL) ==
	    (ssize_t)n;
}

START_TEST(rsource_modes)
{
	struct rpc_client	*c;
	struct path		 p;
	Rtpproxy__SessionInfo	*si;
	int			 other, far;

	need_daemon();
	c = client_sec(NULL, NULL, NULL);
	ck_assert_int_ge(other = harness_udp(0, NULL), 0);
	ck_assert_int_ge(far = harness_udp_addr("127.0.0.3", 0, NULL), 0);

	/* The default (reverse-source address): the destination's host. */
	path_open(c, &p, "rs-default", 0, 0, 0);
	ck_assert_int_eq(reverse_from(&p, p.dest), 1);
	ck_assert_int_eq(reverse_from(&p, other), 1);
	ck_assert_int_eq(reverse_from(&p, far), 0);
	ck_assert_int_eq(harness_status(c, "rs-default", &si), RP_OK);
	ck_assert_int_eq(si->reverse_source,
	    RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ADDRESS);
	ck_assert_uint_eq(si->reverse_stats->dropped_source, 1);
	ck_assert_uint_eq(si->reverse_stats->packets_received, 3);
	ck_assert_uint_eq(si->reverse_stats->packets_sent, 2);
	harness_info_free(si);
	path_close(c, &p, "rs-default");

	path_open(c, &p, "rs-port", 3, 0, 0);
	ck_assert_int_eq(reverse_from(&p, p.dest), 1);
	ck_assert_int_eq(reverse_from(&p, other), 0);
	ck_assert_int_eq(reverse_from(&p, far), 0);
	ck_assert_int_eq(harness_status(c, "rs-port", &si), RP_OK);
	ck_assert_int_eq(si->reverse_source,
	    RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ADDRESS_PORT);
	ck_assert_uint_eq(si->reverse_stats->dropped_source, 2);
	harness_info_free(si);
	path_close(c, &p, "rs-port");

	path_open(c, &p, "rs-any", 1, 0, 0);
	ck_assert_int_eq(reverse_from(&p, far), 1);
	ck_assert_int_eq(harness_status(c, "rs-any", &si), RP_OK);
	ck_assert_int_eq(si->reverse_source,
	    RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ANY);
	ck_assert_uint_eq(si->reverse_stats->dropped_source, 0);
	harness_info_free(si);
	path_close(c, &p, "rs-any");

	/* The configured default changes on SIGHUP, for new sessions. */
	ck_assert_int_eq(harness_conf_set(&d, "reverse-source address-port"),
	    0);
	ck_assert_int_eq(harness_reload(&d), 0);
	path_open(c, &p, "rs-conf", 0, 0, 0);
	ck_assert_int_eq(reverse_from(&p, other), 0);
	ck_assert_int_eq(reverse_from(&p, p.dest), 1);
	path_close(c, &p, "rs-conf");
	ck_assert_int_eq(harness_conf_set(&d, "reverse-source address"), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	close(other);
	close(far);
	rpc_client_free(c);
}
END_TEST

/* --- rate limits -------------------------------------------------------- */

static void
up_rate(void)
{
	up("rate-limit-burst 100\nrate-limit-pps 5000");
}

/* Send count packets of payload bytes from fd to port at once. */
static void
burst(int fd, uint16_t port, int count, size_t payload)
{
	uint8_t	b[1500];
	size_t	n;
	int	i;

	for (i = 0; i < count; i++) {
		n = harness_rtp(b, (uint16_t)(100 + i), (uint32_t)i * 160,
		    0x4242, payload);
		ck_assert_int_eq(harness_send(fd, "127.0.0.1", port, b, n), 0);
		/* Not faster than the socket's buffer drains. */
		if (i % 50 == 49)
			usleep(1000);
	}
}

/* Status once packets_received reached n in dir (0 fwd, 1 rev), or 3 s. */
static Rtpproxy__SessionInfo *
status_after(struct rpc_client *c, const char *id, int rev, uint64_t n)
{
	Rtpproxy__SessionInfo	*si = NULL;
	int			 i;

	for (i = 0; i < 300; i++) {
		harness_info_free(si);
		ck_assert_int_eq(harness_status(c, id, &si), RP_OK);
		if ((rev ? si->reverse_stats : si->forward_stats)->
		    packets_received >= n)
			break;
		usleep(10000);
	}
	return si;
}

START_TEST(rate_pps)
{
	struct rpc_client	*c;
	struct path		 p;
	Rtpproxy__SessionInfo	*si;
	uint64_t		 sent;
	int			 i;

	need_daemon();
	c = client_sec(NULL, NULL, NULL);
	path_open(c, &p, "rate-pps", 0, 100, 0);
	/* 100 packets/s with 100 ms of burst: about 11 of a burst pass. */
	burst(p.caller, p.lport, 200, 100);
	si = status_after(c, "rate-pps", 0, 200);
	ck_assert_int_eq(si->rate_limit_pps, 100);
	ck_assert_uint_eq(si->forward_stats->packets_received, 200);
	sent = si->forward_stats->packets_sent;
	ck_assert_msg(sent >= 5 && sent <= 40, "%llu passed",
	    (unsigned long long)sent);
	ck_assert_uint_eq(si->forward_stats->dropped_rate_limited,
	    200 - sent);
	harness_info_free(si);

	/* The same on the way back, from the destination. */
	burst(p.dest, p.fport, 200, 100);
	si = status_after(c, "rate-pps", 1, 200);
	ck_assert_uint_ge(si->reverse_stats->dropped_rate_limited, 160);
	ck_assert_uint_eq(si->reverse_stats->dropped_rate_limited +
	    si->reverse_stats->packets_sent, 200);
	harness_info_free(si);

	/* Under the rate, everything passes. */
	usleep(300 * 1000);
	for (i = 0; i < 10; i++) {
		burst(p.caller, p.lport, 1, 100);
		usleep(20 * 1000);
	}
	si = status_after(c, "rate-pps", 0, 210);
	ck_assert_uint_eq(si->forward_stats->packets_sent, sent + 10);
	harness_info_free(si);
	path_close(c, &p, "rate-pps");
	rpc_client_free(c);
}
END_TEST

START_TEST(rate_bps)
{
	struct rpc_client	*c;
	struct path		 p;
	Rtpproxy__SessionInfo	*si;

	need_daemon();
	c = client_sec(NULL, NULL, NULL);
	/* 80 kbit/s: a 1012-octet packet costs 101 ms, the burst is 100 ms. */
	path_open(c, &p, "rate-bps", 0, 0, 80000);
	burst(p.caller, p.lport, 50, 1000);
	si = status_after(c, "rate-bps", 0, 50);
	ck_assert_uint_eq(si->rate_limit_bps, 80000);
	/* The configured packet rate applies too. */
	ck_assert_uint_eq(si->rate_limit_pps, 5000);
	ck_assert_uint_ge(si->forward_stats->packets_sent, 1);
	ck_assert_uint_le(si->forward_stats->packets_sent, 3);
	ck_assert_uint_eq(si->forward_stats->dropped_rate_limited +
	    si->forward_stats->packets_sent, 50);
	harness_info_free(si);
	path_close(c, &p, "rate-bps");
	rpc_client_free(c);
}
END_TEST

START_TEST(rate_invalid)
{
	struct rpc_client	*c;
	struct harness_session	 a = { .id = "bad", .laddr = "127.0.0.1",
	    .daddr = "198.51.100.1", .dport = 4000, .nortcp = 1 };
	char			 det[256];

	need_daemon();
	c = client_sec(NULL, NULL, NULL);
	a.rate_pps = 20000000;
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    RP_INVALID_ARGUMENT);
	ck_assert_msg(strstr(det, "rate_limit_pps") != NULL, "%s", det);
	a.rate_pps = 0;
	a.rate_bps = 200000000000ULL;
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    RP_INVALID_ARGUMENT);
	ck_assert_msg(strstr(det, "rate_limit_bps") != NULL, "%s", det);
	a.rate_bps = 0;
	a.reverse_source = 9;
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    RP_INVALID_ARGUMENT);
	ck_assert_msg(strstr(det, "reverse_source 9") != NULL, "%s", det);
	ck_assert_int_eq(harness_status(c, "bad", NULL), RP_NOT_FOUND);
	rpc_client_free(c);
}
END_TEST

int
main(void)
{
	const TTest *const t_tls[] = { tls_server, tls_rotate, NULL };
	const TTest *const t_mtls[] = { tls_mutual, NULL };
	const TTest *const t_token[] = { token_required, token_clear_text,
	    token_flood, token_reload, NULL };
	const TTest *const t_defaults[] = { acl_defaults, NULL };
	const TTest *const t_rules[] = { acl_rules, acl_opened, acl_latch,
	    NULL };
	const TTest *const t_rsource[] = { rsource_modes, NULL };
	const TTest *const t_rate[] = { rate_pps, rate_bps, rate_invalid,
	    NULL };
	Suite	*s = suite_create("security");

	harness_tcase(s, "tls", up_tls, down, 60, t_tls);
	harness_tcase(s, "mtls", up_mtls, down, 60, t_mtls);
	harness_tcase(s, "token", up_token, down, 60, t_token);
	harness_tcase(s, "acl-defaults", up_defaults, down, 60, t_defaults);
	harness_tcase(s, "acl-rules", up_rules, down, 60, t_rules);
	harness_tcase(s, "reverse-source", up_loopback, down, 60,
	    t_rsource);
	harness_tcase(s, "rate-limit", up_rate, down, 60, t_rate);
	return harness_run_suite(s);
}
