/*
 * TLS to Redis (redis-tls): a real redis-server that listens with TLS
 * only (--port 0 --tls-port P), certificates the test makes with the
 * openssl command in the daemon's directory, and the records read back
 * with redis-cli --tls.  The daemon writes through TLS; with the wrong
 * CA, or no client certificate where Redis wants one, it keeps serving
 * and relaying, says why in its log, counts the failures and writes
 * nothing; a Redis that is gone (refused), that never finishes the
 * handshake (timed out) or that is restarted is connected to again.
 */
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "harness.h"
#include "conf.h"

static struct daemon	d, d2;		/* d2: a standby */
static uint16_t		rport;		/* redis-server's TLS port */
static uint16_t		mport;		/* the daemon's metrics */
static uint16_t		mport2;		/* the standby's */
static char		rpidfile[256];

/* A shell command in d.dir; its exit code. */
static int
sh(const char *body)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "cd '%s' && (%s) >/dev/null 2>&1", d.dir,
	    body);
	return harness_run(cmd, NULL, 0);
}

/*
 * A CA, Redis's certificate for 127.0.0.1 and redis.test, a client
 * certificate, and another CA that signed neither.
 */
static int
certs(void)
{
	const char	*cas[2] = { "ca", "other-ca" };
	char		 cmd[512];
	int		 i;

	for (i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec "
		    "-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key "
		    "-out %s.pem -days 2 -subj /CN=%s", cas[i], cas[i], cas[i]);
		if (sh(cmd) != 0)
			return -1;
	}
	if (sh("printf 'subjectAltName=IP:127.0.0.1,DNS:redis.test\\n' "
	    "> san.ext && printf 'extendedKeyUsage=clientAuth\\n' > cli.ext")
	    != 0)
		return -1;
	for (i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "openssl req -newkey ec -pkeyopt "
		    "ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.csr "
		    "-subj /CN=%s && openssl x509 -req -in %s.csr -CA ca.pem "
		    "-CAkey ca.key -CAcreateserial -out %s.pem -days 2 "
		    "-extfile %s", i ? "client" : "server",
		    i ? "client" : "server", i ? "client" : "redis.test",
		    i ? "client" : "server", i ? "client" : "server",
		    i ? "cli.ext" : "san.ext");
		if (sh(cmd) != 0)
			return -1;
	}
	return sh("chmod 600 *.key");
}

/* redis-cli over TLS: its output's first line in out; its exit code. */
static int
rcli(const char *args, char *out, size_t len)
{
	char	cmd[1024];
	int	rc;

	snprintf(cmd, sizeof(cmd), "timeout 10 redis-cli --tls --cacert "
	    "'%s/ca.pem' --cert '%s/client.pem' --key '%s/client.key' "
	    "-h 127.0.0.1 -p %u %s 2>&1", d.dir, d.dir, d.dir, rport, args);
	out[0] = '\0';
	rc = harness_run(cmd, out, len);
	out[strcspn(out, "\r\n")] = '\0';
	return rc;
}

static pid_t
redis_pid(void)
{
	FILE	*f;
	long	 pid = -1;

	if ((f = fopen(rpidfile, "r")) == NULL)
		return -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return pid > 1 ? (pid_t)pid : -1;
}

/* redis-server with TLS only; it answers PING when this returns. */
static int
redis_up(int auth_clients)
{
	char	 port[16], ca[256], cert[256], key[256], out[256];
	pid_t	 pid;
	int	 i, devnull;

	snprintf(port, sizeof(port), "%u", rport);
	snprintf(ca, sizeof(ca), "%s/ca.pem", d.dir);
	snprintf(cert, sizeof(cert), "%s/server.pem", d.dir);
	snprintf(key, sizeof(key), "%s/server.key", d.dir);
	(void)unlink(rpidfile);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if ((devnull = open("/dev/null", O_RDWR)) != -1) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		setsid();
		execlp("redis-server", "redis-server", "--port", "0",
		    "--tls-port", port, "--bind", "127.0.0.1",
		    "--tls-cert-file", cert, "--tls-key-file", key,
		    "--tls-ca-cert-file", ca, "--tls-auth-clients",
		    auth_clients ? "yes" : "no", "--save", "", "--appendonly",
		    "no", "--dir", d.dir, "--pidfile", rpidfile, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100; i++) {
		if (rcli("PING", out, sizeof(out)) == 0 &&
		    strcmp(out, "PONG") == 0) {
			for (; i < 200 && redis_pid() == -1; i++)
				harness_sleep_ms(20);
			return 0;
		}
		harness_sleep_ms(100);
	}
	return -1;
}

static void
redis_down(void)
{
	pid_t	pid = redis_pid();
	int	i;

	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	for (i = 0; i < 300 && harness_alive(pid); i++) {
		(void)waitpid(pid, NULL, WNOHANG);
		harness_sleep_ms(10);
	}
	(void)waitpid(pid, NULL, WNOHANG);
	(void)unlink(rpidfile);
}

static int
rexists(const char *id)
{
	char args[128], out[256];

	snprintf(args, sizeof(args), "EXISTS t:session:%s", id);
	if (rcli(args, out, sizeof(out)) != 0)
		return -1;
	return atoi(out);
}

static int
rkeys(void)
{
	char out[256];

	if (rcli("DBSIZE", out, sizeof(out)) != 0)
		return -1;
	return atoi(out);
}

/* Wait until id's record is there (want 1) or not (0). */
static int
rwait(const char *id, int want, int ms)
{
	int64_t until = harness_now_ms() + harness_ms(ms);

	do {
		if (rexists(id) == want)
			return 0;
		harness_sleep_ms(100);
	} while (harness_now_ms() < until);
	return -1;
}

static long long
metric(const char *name)
{
	return harness_metric(mport, name);
}

static struct rpc_client *
client(void)
{
	struct rpc_client *c;

	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	return c;
}

static uint16_t
create(struct rpc_client *rc, const char *id, uint16_t dport)
{
	struct harness_session		 hs = { .id = id, .laddr =
	    "127.0.0.1", .daddr = "127.0.0.1", .dport = dport,
	    .nortcp = 1 };
	Rtpproxy__CreateSessionResponse	*resp;
	uint16_t			 port;

	ck_assert_int_eq(harness_create(rc, &hs, &resp, NULL, 0), RP_OK);
	port = (uint16_t)resp->session->listen->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return port;
}

/* A few packets from caller through lport arrive at dest. */
static void
relay(uint16_t lport, int caller, int dest)
{
	uint8_t	pkt[256], got[256];
	size_t	n;
	int	i;

	for (i = 0; i < 5; i++) {
		n = harness_rtp(pkt, (uint16_t)(10 + i), (uint32_t)i * 160,
		    0x1234, 100);
		ck_assert_int_eq(harness_send(caller, "127.0.0.1", lport, pkt,
		    n), 0);
		ck_assert_int_eq(harness_recv(dest, got, sizeof(got), 3000,
		    NULL), (ssize_t)n);
	}
}

/* The configuration of d: TLS with ca (a file of d.dir), and more. */
static void
conf_tls(const char *ca, const char *more)
{
	char line[512];

	snprintf(line, sizeof(line), "redis-tls-ca %s/%s", d.dir, ca);
	ck_assert_int_eq(harness_conf_add(&d, "redis-tls yes"), 0);
	ck_assert_int_eq(harness_conf_add(&d, line), 0);
	if (more != NULL)
		ck_assert_int_eq(harness_conf_add(&d, more), 0);
}

static void
conf_client_cert(void)
{
	char line[512];

	snprintf(line, sizeof(line), "redis-tls-cert %s/client.pem", d.dir);
	ck_assert_int_eq(harness_conf_add(&d, line), 0);
	snprintf(line, sizeof(line), "redis-tls-key %s/client.key", d.dir);
	ck_assert_int_eq(harness_conf_add(&d, line), 0);
}

/* The bridge's private directories in d.dir (its TMPDIR): how many. */
static int
bridge_dirs(mode_t *mode)
{
	struct stat	st;
	glob_t		g;
	char		pat[256];
	int		n;

	snprintf(pat, sizeof(pat), "%s/rtpproxyd-redis.*", d.dir);
	if (glob(pat, 0, NULL, &g) != 0)
		return 0;
	n = (int)g.gl_pathc;
	if (n > 0 && mode != NULL && stat(g.gl_pathv[0], &st) == 0)
		*mode = st.st_mode & 07777;
	globfree(&g);
	return n;
}

/* Stopped: the bridge's directory went with it. */
static void
stop_clean(void)
{
	ck_assert_int_eq(bridge_dirs(NULL), 1);
	ck_assert_int_ge(harness_stop(&d, harness_ms(10000)), 0);
	d.pid = -1;
	ck_assert_int_eq(bridge_dirs(NULL), 0);
}

/* --- fixtures ------------------------------------------------------------ */

static void
up(void)
{
	char extra[512];

	signal(SIGPIPE, SIG_IGN);
	rport = harness_tcp_port();
	mport = harness_tcp_port();
	snprintf(extra, sizeof(extra), "redis 127.0.0.1:%u\nredis-prefix t:\n"
	    "node-id node-a\nmetrics-listen 127.0.0.1:%u\n"
	    "stats-interval 200\n", rport, mport);
	if (harness_prepare(&d, 1, extra) == -1)
		fprintf(stderr, "check_redis_tls: cannot prepare the daemon\n");
	snprintf(rpidfile, sizeof(rpidfile), "%s/redis.pid", d.dir);
	/* The bridge's directory where the test sees it (and removes it). */
	setenv("TMPDIR", d.dir, 1);
	if (certs() == -1)
		fprintf(stderr, "check_redis_tls: openssl failed\n");
}

static void
down(void)
{
	unsetenv("TMPDIR");
	redis_down();
	if (d2.dir[0] != '\0')
		harness_cleanup(&d2);
	memset(&d2, 0, sizeof(d2));
	harness_cleanup(&d);
}

/* --- the configuration ---------------------------------------------------- */

static int
parse(const char *text, char *err, size_t len)
{
	struct config	c;
	int		rc;

	err[0] = '\0';
	rc = config_parse_buf(&c, "t.conf", text, err, len);
	if (rc == 0)
		config_free(&c);
	return rc;
}

START_TEST(config_keywords)
{
	struct config	c;
	char		err[512], text[512], path[128];
	int		fd;

	ck_assert_msg(parse("redis 127.0.0.1:6380\nredis-tls yes\n"
	    "redis-tls-ca /x/ca.pem\nredis-tls-cert /x/c.pem\n"
	    "redis-tls-key /x/c.key\nredis-tls-server-name redis.example\n",
	    err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(parse("redis-tls no\n", err, sizeof(err)), 0);

	ck_assert_int_eq(parse("redis-tls maybe\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:1: redis-tls: expected yes "
	    "or no"));
	ck_assert_int_eq(parse("redis 127.0.0.1:6380\n\nredis-tls yes\n", err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:3: redis-tls yes given "
	    "without redis-tls-ca"));
	ck_assert_int_eq(parse("redis-tls yes\nredis-tls-ca /x\n", err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:1: redis-tls yes given "
	    "without redis"));
	ck_assert_int_eq(parse("redis /run/redis.sock\nredis-tls yes\n"
	    "redis-tls-ca /x\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:2: redis-tls yes: redis is "
	    "a unix socket"));
	ck_assert_int_eq(parse("redis 127.0.0.1:1\n#\nredis-tls-ca /x\n", err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:3: redis-tls-ca given "
	    "without redis-tls yes"));
	ck_assert_int_eq(parse("redis 127.0.0.1:1\nredis-tls yes\n"
	    "redis-tls-ca /x\nredis-tls-cert /c\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:4: redis-tls-cert given "
	    "without redis-tls-key"));
	ck_assert_int_eq(parse("redis-tls-ca ca.pem\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "must be an absolute path"));
	ck_assert_int_eq(parse("redis-tls-server-name \"a b\"\n", err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:1: redis-tls-server-name: "
	    "must be"));

	/* The files are read with the configuration, line and all. */
	snprintf(path, sizeof(path), "/tmp/check_redis_tls.%ld.pem",
	    (long)getpid());
	(void)unlink(path);
	snprintf(text, sizeof(text), "redis 127.0.0.1:1\nredis-tls yes\n\n"
	    "redis-tls-ca %s\n", path);
	ck_assert_int_eq(config_parse_buf(&c, "t.conf", text, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(config_load_files(&c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, ":4: redis-tls-ca") != NULL, "%s",
	    err);
	ck_assert_int_ge(fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600),
	    0);
	ck_assert_int_eq(write(fd, "hello\n", 6), 6);
	close(fd);
	ck_assert_int_eq(config_load_files(&c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "no PEM CERTIFICATE"));
	config_free(&c);
	(void)unlink(path);
}
END_TEST

/* --- TLS ----------------------------------------------------------------- */

START_TEST(tls_writes)
{
	struct rpc_client	*rc;
	uint16_t		 lport, cport, dport;
	char			 out[256], args[128];
	int			 caller, dest;

	mode_t			 mode = 0;
	char			 line[512];

	ck_assert_int_eq(redis_up(0), 0);
	conf_tls("ca.pem", NULL);
	/* The bridge's directory where the test sees it. */
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_wait_log(&d, "TLS, server name 127.0.0.1",
	    1, 5000), 0);
	ck_assert_int_eq(bridge_dirs(&mode), 1);
	ck_assert_int_eq(mode, 0700);
	rc = client();
	ck_assert_int_ge(caller = harness_udp(0, &cport), 0);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	lport = create(rc, "tls-1", dport);
	ck_assert_int_eq(rwait("tls-1", 1, 10000), 0);
	ck_assert_int_eq(rcli("HGET t:session:tls-1 node", out, sizeof(out)),
	    0);
	ck_assert_str_eq(out, "node-a");
	relay(lport, caller, dest);
	/* The latch goes through the bridge too. */
	snprintf(args, sizeof(args), "HGET t:session:tls-1 latched");
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(rcli(args, out, sizeof(out)), 0);
		if (out[0] != '\0')
			break;
		harness_sleep_ms(100);
	}
	ck_assert_str_ne(out, "");
	ck_assert_int_eq(metric("rtpproxyd_redis_up"), 1);
	ck_assert_int_eq(bridge_dirs(NULL), 1);
	ck_assert_int_eq(metric("rtpproxyd_redis_connect_failures_total"), 0);
	ck_assert_int_eq(harness_destroy(rc, "tls-1"), RP_OK);
	ck_assert_int_eq(rwait("tls-1", 0, 10000), 0);

	/* Another CA on reload: a restart's business, said so. */
	snprintf(line, sizeof(line), "redis-tls-ca %s/other-ca.pem", d.dir);
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_eq(harness_wait_log(&d, "redis-tls*, node-id or "
	    "standby-for changed: needs a restart", 1, 5000), 0);
	create(rc, "tls-2", dport);
	ck_assert_int_eq(rwait("tls-2", 1, 10000), 0);
	close(caller);
	close(dest);
	rpc_client_free(rc);
	stop_clean();
}
END_TEST

START_TEST(tls_wrong_ca)
{
	struct rpc_client	*rc;
	uint16_t		 lport, cport, dport;
	char			 line[512];
	int			 caller, dest, i;

	ck_assert_int_eq(redis_up(0), 0);
	conf_tls("other-ca.pem", NULL);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	rc = client();
	ck_assert_int_ge(caller = harness_udp(0, &cport), 0);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	lport = create(rc, "bad-1", dport);
	relay(lport, caller, dest);
	ck_assert_int_eq(harness_wait_log(&d, "certificate verify failed",
	    1, harness_ms(10000)), 0);
	for (i = 0; i < 100 &&
	    metric("rtpproxyd_redis_connect_failures_total") < 2; i++)
		harness_sleep_ms(100);
	ck_assert_int_ge(metric("rtpproxyd_redis_connect_failures_total"), 2);
	ck_assert_int_eq(metric("rtpproxyd_redis_up"), 0);
	ck_assert_int_eq(metric("rtpproxyd_redis_writes_total"), 0);
	create(rc, "bad-2", dport);
	ck_assert_int_eq(rkeys(), 0);
	ck_assert(harness_alive(d.pid));
	rpc_client_free(rc);
	stop_clean();

	/* The right CA, but not the name the certificate carries. */
	snprintf(line, sizeof(line), "redis-tls-ca %s/ca.pem", d.dir);
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	ck_assert_int_eq(harness_conf_add(&d, "redis-tls-server-name "
	    "other.test"), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_wait_log(&d, "certificate verify failed: "
	    "hostname mismatch", 1, harness_ms(10000)), 0);
	rc = client();
	lport = create(rc, "bad-3", dport);
	relay(lport, caller, dest);
	ck_assert_int_eq(rkeys(), 0);
	close(caller);
	close(dest);
	rpc_client_free(rc);
	stop_clean();
}
END_TEST

/* Redis wants a client certificate: none fails, ours works. */
START_TEST(tls_mutual)
{
	struct rpc_client	*rc;
	uint16_t		 dport;
	int			 dest, i;

	ck_assert_int_eq(redis_up(1), 0);
	conf_tls("ca.pem", "redis-tls-server-name redis.test");
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	rc = client();
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	create(rc, "mt-1", dport);
	for (i = 0; i < 100 &&
	    metric("rtpproxyd_redis_connect_failures_total") < 1; i++)
		harness_sleep_ms(100);
	ck_assert_int_ge(metric("rtpproxyd_redis_connect_failures_total"), 1);
	ck_assert_int_ge(harness_log_count(&d, "redis 127.0.0.1") , 1);
	ck_assert_int_eq(harness_log_count(&d, "certificate verify failed"),
	    0);
	/* TLS 1.3: Redis says so after the handshake, to the first read. */
	ck_assert_int_ge(harness_log_count(&d, ": TLS read: ") +
	    harness_log_count(&d, ": TLS write: ") +
	    harness_log_count(&d, ": TLS handshake: "), 1);
	ck_assert_int_eq(rkeys(), 0);
	rpc_client_free(rc);
	stop_clean();

	conf_client_cert();
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_wait_log(&d, "with a client certificate, "
	    "server name redis.test", 1, 5000), 0);
	rc = client();
	create(rc, "mt-2", dport);
	ck_assert_int_eq(rwait("mt-2", 1, 10000), 0);
	ck_assert_int_eq(metric("rtpproxyd_redis_up"), 1);
	close(dest);
	rpc_client_free(rc);
	stop_clean();
}
END_TEST

/*
 * Redis gone (refused), a port that takes the connection and never
 * speaks (the handshake times out), then Redis killed and restarted
 * under TLS while sessions come: the daemon catches up.
 */
START_TEST(tls_restart)
{
	struct sockaddr_in	 sin;
	struct rpc_client	*rc;
	uint16_t		 dport;
	char			 id[32];
	int			 dest, lfd, one = 1, i;

	conf_tls("ca.pem", NULL);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_wait_log(&d, "Connection refused", 1,
	    10000), 0);
	rc = client();
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	create(rc, "rs-0", dport);

	/* A listener that never accepts: the kernel finishes TCP alone. */
	ck_assert_int_ge(lfd = socket(AF_INET, SOCK_STREAM, 0), 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(rport);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(lfd, 16), 0);
	ck_assert_int_eq(harness_wait_log(&d, "TLS handshake timed out", 1,
	    20000), 0);
	close(lfd);

	ck_assert_int_eq(redis_up(0), 0);
	ck_assert_int_eq(rwait("rs-0", 1, 20000), 0);
	for (i = 1; i < 6; i++) {
		if (i == 3)
			redis_down();
		snprintf(id, sizeof(id), "rs-%d", i);
		create(rc, id, dport);
	}
	ck_assert_int_eq(harness_destroy(rc, "rs-1"), RP_OK);
	for (i = 0; i < 100 && metric("rtpproxyd_redis_up") != 0; i++)
		harness_sleep_ms(100);
	ck_assert_int_eq(redis_up(0), 0);
	for (i = 0; i < 6; i++) {
		snprintf(id, sizeof(id), "rs-%d", i);
		ck_assert_msg(rwait(id, i == 1 ? 0 : 1, 20000) == 0,
		    "%s not caught up", id);
	}
	ck_assert_int_eq(metric("rtpproxyd_redis_up"), 1);
	close(dest);
	rpc_client_free(rc);
	stop_clean();
}
END_TEST

/*
 * The bridge's socket takes this master's connection only: another
 * process's is closed unanswered and the bridge in use goes on.  A
 * master replaced with SIGUSR2 makes a bridge of its own, the old one's
 * directory goes with it, and the new one writes over TLS.
 */
START_TEST(tls_handover)
{
	struct sockaddr_un	 sun;
	struct rpc_client	*rc;
	glob_t			 g;
	uint16_t		 dport;
	char			 pat[256], buf[64];
	struct timeval		 tv = { 10, 0 };
	pid_t			 old, now = -1;
	int			 dest, fd, i;

	ck_assert_int_eq(redis_up(0), 0);
	conf_tls("ca.pem", NULL);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	rc = client();
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	create(rc, "ho-1", dport);
	ck_assert_int_eq(rwait("ho-1", 1, 10000), 0);

	snprintf(pat, sizeof(pat), "%s/rtpproxyd-redis.*/redis.sock", d.dir);
	ck_assert_int_eq(glob(pat, 0, NULL, &g), 0);
	ck_assert_int_eq(g.gl_pathc, 1);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", g.gl_pathv[0]);
	globfree(&g);
	ck_assert_int_ge(fd = socket(AF_UNIX, SOCK_STREAM, 0), 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)),
	    0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	/*
	 * Closed unanswered: no +PONG from Redis through the bridge (the
	 * write may find it closed already).
	 */
	if (write(fd, "PING\r\n", 6) == 6)
		ck_assert_int_le(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	ck_assert_int_eq(harness_wait_log(&d, "not this master, refused", 1,
	    harness_ms(5000)), 0);
	create(rc, "ho-2", dport);
	ck_assert_int_eq(rwait("ho-2", 1, 10000), 0);
	ck_assert_int_eq(metric("rtpproxyd_redis_connects_total"), 1);
	rpc_client_free(rc);

	old = harness_pidfile_pid(&d);
	ck_assert_int_gt(old, 0);
	ck_assert_int_eq(kill(old, SIGUSR2), 0);
	for (i = 0; i < 500; i++) {
		now = harness_pidfile_pid(&d);
		if (now > 0 && now != old && !harness_alive(old) &&
		    harness_log_count(&d, "all 1 workers ready") >= 2)
			break;
		harness_sleep_ms(harness_ms(20));
	}
	ck_assert_int_ne(now, old);
	ck_assert_int_eq(bridge_dirs(NULL), 1);
	rc = client();
	create(rc, "ho-3", dport);
	ck_assert_int_eq(rwait("ho-3", 1, 10000), 0);
	rpc_client_free(rc);
	close(dest);
	ck_assert_int_eq(kill(now, SIGTERM), 0);
	for (i = 0; i < 500 && harness_alive(now); i++)
		harness_sleep_ms(20);
	ck_assert(!harness_alive(now));
	ck_assert_int_eq(bridge_dirs(NULL), 0);
}
END_TEST

#define MIRRORED	"rtpproxyd_redis_mirrored_sessions{node=\"node-a\"}"

/* A metric of the standby, waited for until at least want; its value. */
static long long
metric2_wait(const char *name, long long want)
{
	long long	v = -1;
	int		i;

	for (i = 0; i < 150; i++) {
		if ((v = harness_metric(mport2, name)) >= want)
			break;
		harness_sleep_ms(harness_ms(100));
	}
	return v;
}

/*
 * A standby's second connection (its subscription to the backed node's
 * changes) goes through a bridge of its own, beside the first.
 */
START_TEST(tls_standby)
{
	struct rpc_client	*rc;
	uint16_t		 dport;
	char			 extra[1024], line[64];
	int			 dest, i;

	mport2 = harness_tcp_port();
	snprintf(extra, sizeof(extra), "redis 127.0.0.1:%u\nredis-prefix t:\n"
	    "node-id node-b\nstats-interval 200\nmetrics-listen "
	    "127.0.0.1:%u\nstandby-for node-a 192.0.2.123\nredis-tls yes\n"
	    "redis-tls-ca %s/ca.pem\n", rport, mport2, d.dir);
	ck_assert_int_eq(harness_prepare(&d2, 1, extra), 0);
	snprintf(line, sizeof(line), "port-range %u %u", d.port_min,
	    d.port_max);
	ck_assert_int_eq(harness_conf_set(&d2, line), 0);
	ck_assert_int_eq(redis_up(0), 0);
	ck_assert_int_eq(harness_launch(&d2, 1), 0);
	ck_assert_int_ge(metric2_wait("rtpproxyd_redis_mirror_resyncs_total",
	    1), 1);
	conf_tls("ca.pem", NULL);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	rc = client();
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	create(rc, "sb-1", dport);
	create(rc, "sb-2", dport);
	create(rc, "sb-3", dport);
	ck_assert_int_eq(metric2_wait(MIRRORED, 3),
	    3);
	ck_assert_int_eq(harness_destroy(rc, "sb-3"), RP_OK);
	for (i = 0; i < 150 && harness_metric(mport2,
	    MIRRORED) != 2; i++)
		harness_sleep_ms(harness_ms(100));
	ck_assert_int_eq(harness_metric(mport2,
	    MIRRORED), 2);
	/* The two bridges of node-b did not disturb each other. */
	ck_assert_int_eq(harness_metric(mport2,
	    "rtpproxyd_redis_connects_total"), 1);
	ck_assert_int_eq(harness_metric(mport2,
	    "rtpproxyd_redis_mirror_resyncs_total"), 1);
	close(dest);
	rpc_client_free(rc);
	ck_assert_int_ge(harness_stop(&d2, harness_ms(10000)), 0);
	d2.pid = -1;
	stop_clean();
}
END_TEST

/*
 * Megabytes through the bridge: 2,000 records of this node, each with
 * 2 KB of junk and a version nobody writes, pipelined at start (2,000
 * HGETALLs one way, 4 MB of answers the other); each is skipped, and
 * the connection carries on.
 */
START_TEST(tls_bulk)
{
	struct rpc_client	*rc;
	uint16_t		 dport;
	char			 out[256];
	int			 dest, i;

	ck_assert_int_eq(redis_up(0), 0);
	ck_assert_int_eq(rcli("EVAL \"for i = 1, 2000 do "
	    "redis.call('HSET', 't:session:g' .. i, 'v', '99', 'junk', "
	    "string.rep('x', 2000)); redis.call('SADD', 't:node:node-a', "
	    "'g' .. i) end return 1\" 0", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "1");
	conf_tls("ca.pem", NULL);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	for (i = 0; i < 300 && metric("rtpproxyd_redis_skipped_total") <
	    2000; i++)
		harness_sleep_ms(harness_ms(100));
	ck_assert_int_eq(metric("rtpproxyd_redis_skipped_total"), 2000);
	rc = client();
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	create(rc, "bulk-1", dport);
	ck_assert_int_eq(rwait("bulk-1", 1, 10000), 0);
	ck_assert_int_eq(metric("rtpproxyd_redis_up"), 1);
	ck_assert_int_eq(metric("rtpproxyd_redis_connects_total"), 1);
	close(dest);
	rpc_client_free(rc);
	stop_clean();
}
END_TEST

int
main(void)
{
	const TTest *const t_conf[] = { config_keywords, NULL };
	const TTest *const t_writes[] = { tls_writes, NULL };
	const TTest *const t_ca[] = { tls_wrong_ca, NULL };
	const TTest *const t_mutual[] = { tls_mutual, NULL };
	const TTest *const t_restart[] = { tls_restart, NULL };
	const TTest *const t_bulk[] = { tls_bulk, NULL };
	const TTest *const t_ho[] = { tls_handover, NULL };
	const TTest *const t_sb[] = { tls_standby, NULL };
	Suite	*s = suite_create("redis_tls");

	signal(SIGPIPE, SIG_IGN);
	harness_tcase(s, "config", NULL, NULL, 30, t_conf);
	harness_tcase(s, "writes", up, down, 60, t_writes);
	harness_tcase(s, "wrong-ca", up, down, 60, t_ca);
	harness_tcase(s, "mutual", up, down, 60, t_mutual);
	harness_tcase(s, "restart", up, down, 90, t_restart);
	harness_tcase(s, "bulk", up, down, 90, t_bulk);
	harness_tcase(s, "handover", up, down, 90, t_ho);
	harness_tcase(s, "standby", up, down, 90, t_sb);
	return harness_run_suite(s);
}
