/*
 * The sessions' state in Redis, with a real redis-server that the test
 * starts on a free loopback port (never a mock) and reads back with
 * hiredis: the configuration's keywords, the write-through of a session
 * (its record, its latch, its counters, its delete), a Redis that is
 * absent, killed, restarted and stopped (SIGSTOP) while sessions are
 * created, and a daemon killed with SIGKILL that restores its sessions
 * from Redis when it starts again, skipping records it cannot use;
 * a recording session that records on after a restart and a takeover
 * (tshark reads the files), or resumes unrecorded without recording-dir.
 */
#include <sys/mman.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "harness.h"
#include "conf.h"

static struct daemon	d, d2;		/* d2: a standby */
static uint16_t		rport;		/* redis-server's */
static uint16_t		mport;		/* the daemon's metrics */
static uint16_t		mport2;		/* the standby's */
static char		rpidfile[256];
/* the two-namespace test: its namespaces, and the test's own */
static char		ns[3][32];	/* node-a, node-b, the clients */
static int		ns_self = -1, ns_client = -1;
static char		rhost[32] = "127.0.0.1";

/* --- helpers ------------------------------------------------------------ */

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

/* Sockets made between these two are in the clients' namespace. */
static void
ns_enter(void)
{
	if (ns_client != -1)
		ck_assert_int_eq(setns(ns_client, CLONE_NEWNET), 0);
}

static void
ns_leave(void)
{
	if (ns_client != -1)
		ck_assert_int_eq(setns(ns_self, CLONE_NEWNET), 0);
}

static redisContext *
redis_conn(int ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };
	redisContext	*c;

	ns_enter();
	c = redisConnectWithTimeout(rhost, rport, tv);
	ns_leave();

	if (c != NULL && c->err) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* redis-server on rport, in d.dir; it answers PING when this returns. */
static int
redis_up(void)
{
	char		 port[16], dir[160];
	redisContext	*c;
	redisReply	*r;
	pid_t		 pid;
	int		 i, devnull;

	snprintf(port, sizeof(port), "%u", rport);
	snprintf(dir, sizeof(dir), "%s", d.dir);
	(void)unlink(rpidfile);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if ((devnull = open("/dev/null", O_RDWR)) != -1) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		/* Its own process, so that the test's kill does not reach us. */
		setsid();
		if (ns[2][0] != '\0')
			execlp("ip", "ip", "netns", "exec", ns[2],
			    "redis-server", "--port", port, "--bind", rhost,
			    "--protected-mode", "no",
			    "--save", "", "--appendonly", "no", "--dir", dir,
			    "--pidfile", rpidfile, (char *)NULL);
		else
			execlp("redis-server", "redis-server", "--port", port,
			    "--bind", rhost, "--save", "", "--appendonly",
			    "no", "--dir", dir, "--pidfile", rpidfile,
			    (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200; i++) {
		if ((c = redis_conn(500)) != NULL) {
			r = redisCommand(c, "PING");
			redisFree(c);
			if (r != NULL) {
				freeReplyObject(r);
				for (; i < 200 && redis_pid() == -1; i++)
					harness_sleep_ms(20);
				return 0;
			}
		}
		harness_sleep_ms(50);
	}
	return -1;
}

/* SIGKILL redis-server and wait until it is gone. */
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

static redisReply *
rcmd(const char *fmt, const char *arg)
{
	redisContext	*c;
	redisReply	*r;

	ck_assert_ptr_nonnull(c = redis_conn(5000));
	r = redisCommand(c, fmt, arg);
	redisFree(c);
	ck_assert_ptr_nonnull(r);
	return r;
}

/* A field of the session's record; "" if none (or no record). */
static const char *
rfield(const char *id, const char *field)
{
	static char	 val[512];
	char		 key[4096 + 32];
	redisContext	*c;
	redisReply	*r;

	val[0] = '\0';
	snprintf(key, sizeof(key), "t:session:%s", id);
	if ((c = redis_conn(5000)) == NULL)
		return val;
	r = redisCommand(c, "HGET %s %s", key, field);
	redisFree(c);
	if (r != NULL && r->type == REDIS_REPLY_STRING)
		snprintf(val, sizeof(val), "%s", r->str);
	if (r != NULL)
		freeReplyObject(r);
	return val;
}

static int
rexists(const char *id)
{
	char		 key[4096 + 32];
	redisReply	*r;
	int		 n;

	snprintf(key, sizeof(key), "t:session:%s", id);
	r = rcmd("EXISTS %s", key);
	n = (int)r->integer;
	freeReplyObject(r);
	return n;
}

/* Wait until field of id's record is want ("" waits for no record). */
static int
rwait(const char *id, const char *field, const char *want, int ms)
{
	int64_t until = harness_now_ms() + ms * harness_slow();

	do {
		if (want[0] == '\0' ? rexists(id) == 0 :
		    strcmp(rfield(id, field), want) == 0)
			return 0;
		harness_sleep_ms(50);
	} while (harness_now_ms() < until);
	return -1;
}


static long long
metric(const char *name)
{
	return harness_metric(mport, name);
}

/* The value of a metric line starting with name (and a space); -1. */
static struct rpc_client *
client(void)
{
	struct rpc_client *c;

	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	return c;
}

/* A session from caller (any port) to dest; its listen port. */
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

/* The same with DTMF options other than the defaults. */
static void
create_dtmf(struct rpc_client *rc, const char *id, uint16_t dport)
{
	struct harness_session		 hs = { .id = id, .laddr =
	    "127.0.0.1", .daddr = "127.0.0.1", .dport = dport,
	    .nortcp = 1, .dtmf_pt = 110, .drop_dtmf = 1 };
	Rtpproxy__CreateSessionResponse	*resp;

	ck_assert_int_eq(harness_create(rc, &hs, &resp, NULL, 0), RP_OK);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
}

/* --- fixtures ------------------------------------------------------------ */

static void
up_redis(const char *more)
{
	char extra[512];

	signal(SIGPIPE, SIG_IGN);
	rport = harness_tcp_port();
	mport = harness_tcp_port();
	snprintf(extra, sizeof(extra), "redis 127.0.0.1:%u\nredis-prefix t:\n"
	    "node-id node-a\nmetrics-listen 127.0.0.1:%u\n"
	    "stats-interval 200\n%s", rport, mport, more ? more : "");
	if (harness_prepare(&d, 2, extra) == -1)
		fprintf(stderr, "check_redis: cannot prepare the daemon\n");
	snprintf(rpidfile, sizeof(rpidfile), "%s/redis.pid", d.dir);
}

static void
up(void)
{
	up_redis(NULL);
}

static void
down(void)
{
	redis_down();
	harness_cleanup(&d);
	if (d2.dir[0] != '\0')
		harness_cleanup(&d2);
	memset(&d2, 0, sizeof(d2));
}

/* node-a, and node-b on the same port range to take over from it. */
static void up_pair_b(void);

static void
up_pair(void)
{
	up_redis(NULL);
	up_pair_b();
}

/* node-b, the standby of node-a (prepared already). */
static void
up_pair_b(void)
{
	char line[64], extra[256];

	mport2 = harness_tcp_port();
	/* TEST-NET-1: an address never on this host. */
	snprintf(extra, sizeof(extra), "redis 127.0.0.1:%u\nredis-prefix t:\n"
	    "node-id node-b\nstats-interval 200\nmetrics-listen "
	    "127.0.0.1:%u\nstandby-for node-a 192.0.2.123\n", rport, mport2);
	if (harness_prepare(&d2, 2, extra) == -1)
		fprintf(stderr, "check_redis: cannot prepare the standby\n");
	snprintf(line, sizeof(line), "port-range %u %u", d.port_min,
	    d.port_max);
	if (harness_conf_set(&d2, line) == -1)
		fprintf(stderr, "check_redis: cannot set its port range\n");
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
	struct config	 c;
	char		 err[512], path[256], text[512];
	FILE		*f;
	int		 fd;

	ck_assert_int_eq(parse("redis 127.0.0.1:6379\nredis-db 3\n"
	    "redis-prefix rp:x.\nnode-id a-1.b_2\n", err, sizeof(err)), 0);
	ck_assert_int_eq(parse("redis [::1]:6380\n", err, sizeof(err)), 0);
	ck_assert_int_eq(parse("redis /run/redis/redis.sock\n", err,
	    sizeof(err)), 0);
	ck_assert_int_eq(parse("redis none\n", err, sizeof(err)), 0);

	/* Names would block the loop in getaddrinfo: numeric only. */
	ck_assert_int_eq(parse("\nredis localhost:6379\n", err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:2: redis: expected"));
	ck_assert_int_eq(parse("redis 127.0.0.1\n", err, sizeof(err)), -1);
	ck_assert_int_eq(parse("redis 127.0.0.1:0\n", err, sizeof(err)), -1);
	ck_assert_int_eq(parse("redis 127.0.0.1:65536\n", err, sizeof(err)),
	    -1);
	ck_assert_int_eq(parse("redis [::1:6379\n", err, sizeof(err)), -1);
	ck_assert_int_eq(parse("redis relative/path\n", err, sizeof(err)), -1);
	ck_assert_int_eq(parse("redis-db 65536\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:1: redis-db: must be"));
	ck_assert_int_eq(parse("#\n#\nnode-id a/b\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:3: node-id: must be"));
	ck_assert_int_eq(parse("node-id a:b\n", err, sizeof(err)), -1);
	ck_assert_int_eq(parse("redis-prefix \"a b\"\n", err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "redis-prefix: must be"));
	ck_assert_int_eq(parse("redis-password-file pw\n", err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:1: redis-password-file: "
	    "must be an absolute path"));
	ck_assert_int_eq(parse("node-id a\nnode-id b\n", err, sizeof(err)),
	    -1);
	ck_assert_int_eq(parse("redis 127.0.0.1:1\nstandby-for a 10.0.0.1\n"
	    "standby-for b ::1\n", err, sizeof(err)), 0);
	ck_assert_int_eq(parse("\nstandby-for a 10.0.0.1\n", err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:2: standby-for given "
	    "without redis"));
	ck_assert_int_eq(parse("redis 127.0.0.1:1\nstandby-for a "
	    "10.0.0.1:5\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:2: standby-for: the "
	    "floating address"));
	ck_assert_int_eq(parse("redis 127.0.0.1:1\nstandby-for a/b "
	    "10.0.0.1\n", err, sizeof(err)), -1);
	ck_assert_int_eq(parse("redis 127.0.0.1:1\nstandby-for a 10.0.0.1\n"
	    "standby-for a 10.0.0.2\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "given twice (first on line 2)"));

	/* The password file is read with the configuration, line and all. */
	snprintf(path, sizeof(path), "/tmp/check_redis.%ld.pw", (long)getpid());
	snprintf(text, sizeof(text), "\nredis-password-file %s\n", path);
	(void)unlink(path);
	ck_assert_int_eq(config_parse_buf(&c, "t.conf", text, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(config_load_files(&c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":2: redis-password-file"));
	ck_assert_int_ge(fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600),
	    0);
	ck_assert_int_eq(write(fd, "s3cret\n", 7), 7);
	close(fd);
	ck_assert_msg(config_load_files(&c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(c.redis_password, "s3cret");
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fclose(f);
	ck_assert_int_eq(config_load_files(&c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	config_free(&c);
	(void)unlink(path);
}
END_TEST

/* --- write-through ------------------------------------------------------- */

START_TEST(write_through)
{
	struct rpc_client	*rc;
	uint8_t			 pkt[256], got[256];
	uint16_t		 lport, cport, dport;
	char			 want[64];
	const char		*c0;
	redisReply		*r;
	size_t			 n;
	int			 caller, dest, i;

	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_wait_log(&d, "redis 127.0.0.1", 1, 5000), 0);
	rc = client();
	ck_assert_int_ge(caller = harness_udp(0, &cport), 0);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	lport = create(rc, "wt-1", dport);

	/* The record: everything a restart needs, owner and epoch. */
	ck_assert_int_eq(rwait("wt-1", "v", "1", 5000), 0);
	ck_assert_str_eq(rfield("wt-1", "id"), "wt-1");
	ck_assert_str_eq(rfield("wt-1", "node"), "node-a");
	ck_assert_str_eq(rfield("wt-1", "epoch"), "1");
	snprintf(want, sizeof(want), "127.0.0.1:%u", lport);
	ck_assert_str_eq(rfield("wt-1", "listen"), want);
	snprintf(want, sizeof(want), "127.0.0.1:%u", dport);
	ck_assert_str_eq(rfield("wt-1", "dest"), want);
	ck_assert_str_ne(rfield("wt-1", "forward"), "");
	ck_assert_str_eq(rfield("wt-1", "latched"), "");
	/* no RTCP, the idle timeout configured, reverse from dest only */
	ck_assert_str_eq(rfield("wt-1", "flags"), "26");
	r = rcmd("SISMEMBER t:node:%s wt-1", "node-a");
	ck_assert_int_eq(r->integer, 1);
	freeReplyObject(r);

	/* Media: the latch and the state follow, the counters snapshot. */
	for (i = 0; i < 10; i++) {
		n = harness_rtp(pkt, (uint16_t)(10 + i), (uint32_t)i * 160,
		    0x1234, 100);
		ck_assert_int_eq(harness_send(caller, "127.0.0.1", lport, pkt,
		    n), 0);
		ck_assert_int_eq(harness_recv(dest, got, sizeof(got), 3000,
		    NULL), (ssize_t)n);
	}
	snprintf(want, sizeof(want), "127.0.0.1:%u", cport);
	ck_assert_int_eq(rwait("wt-1", "latched", want, 5000), 0);
	ck_assert_int_eq(rwait("wt-1", "state", "3", 5000), 0);	/* ACTIVE */
	for (i = 0; i < 100; i++) {
		c0 = rfield("wt-1", "c0");
		if (strncmp(c0, "10 ", 3) == 0)
			break;
		harness_sleep_ms(50);
	}
	/* packets received, bytes received, packets sent, bytes sent */
	snprintf(want, sizeof(want), "10 %zu 10 %zu ", 10 * n, 10 * n);
	ck_assert_int_eq(strncmp(rfield("wt-1", "c0"), want, strlen(want)),
	    0);
	ck_assert_int_ge(metric("rtpproxyd_redis_writes_total"), 2);
	ck_assert_int_eq(metric("rtpproxyd_redis_up"), 1);

	/* UpdateSession: the record follows the new destination. */
	{
		Rtpproxy__UpdateSessionRequest	 u =
		    RTPPROXY__UPDATE_SESSION_REQUEST__INIT;
		Rtpproxy__UpdateSessionResponse	*ur = NULL;
		Rtpproxy__Endpoint		 ep = RTPPROXY__ENDPOINT__INIT;
		uint16_t			 nport;
		int				 nd;

		ck_assert_int_ge(nd = harness_udp(0, &nport), 0);
		u.session_id = (char *)"wt-1";
		ep.address = (char *)"127.0.0.1";
		ep.port = nport;
		u.destination = &ep;
		ck_assert_int_eq(rpc_unary(rc,
		    "/rtpproxy.RtpProxy/UpdateSession", &u.base,
		    &rtpproxy__update_session_response__descriptor,
		    (ProtobufCMessage **)&ur, NULL, 0, 10000), 0);
		rtpproxy__update_session_response__free_unpacked(ur, NULL);
		snprintf(want, sizeof(want), "127.0.0.1:%u", nport);
		ck_assert_int_eq(rwait("wt-1", "dest", want, 5000), 0);
		close(nd);
	}

	/* Destroyed: gone from Redis, and from the node's set. */
	ck_assert_int_eq(harness_destroy(rc, "wt-1"), RP_OK);
	ck_assert_int_eq(rwait("wt-1", "v", "", 5000), 0);
	r = rcmd("SISMEMBER t:node:%s wt-1", "node-a");
	ck_assert_int_eq(r->integer, 0);
	freeReplyObject(r);
	for (i = 0; i < 100 && metric("rtpproxyd_redis_deletes_total") < 1;
	    i++)
		harness_sleep_ms(50);
	ck_assert_int_eq(metric("rtpproxyd_redis_deletes_total"), 1);
	close(caller);
	close(dest);
	rpc_client_free(rc);
}
END_TEST

/* --- Redis absent, killed, restarted, stopped ---------------------------- */

/* Every session in ids[0..n) alive is in Redis, every other one not. */
static int
consistent(char ids[][32], const int *alive, int n, int ms)
{
	int64_t	until = harness_now_ms() + ms * harness_slow();
	int	i, ok;

	do {
		for (ok = 1, i = 0; i < n && ok; i++)
			ok = rexists(ids[i]) == alive[i];
		if (ok)
			return 0;
		harness_sleep_ms(100);
	} while (harness_now_ms() < until);
	for (i = 0; i < n; i++)
		if (rexists(ids[i]) != alive[i])
			fprintf(stderr, "check_redis: %s: %s in Redis\n",
			    ids[i], alive[i] ? "not" : "still");
	return -1;
}

START_TEST(outage)
{
	static char		 ids[120][32];
	static int		 alive[120];
	struct rpc_client	*rc;
	uint16_t		 dport;
	int			 dest, n = 0, i;
	pid_t			 rp;

	/* Started with no Redis: the API works, Redis is tried again. */
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	rc = client();
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	/* Each session takes two port pairs of the harness's 100. */
	for (; n < 12; n++) {
		snprintf(ids[n], sizeof(ids[n]), "out-%d", n);
		create(rc, ids[n], dport);
		alive[n] = 1;
	}
	ck_assert_int_eq(harness_destroy(rc, ids[3]), RP_OK);
	alive[3] = 0;
	ck_assert_int_eq(metric("rtpproxyd_redis_up"), 0);
	ck_assert_int_gt(metric("rtpproxyd_redis_connect_failures_total"), 0);
	ck_assert_int_gt(metric("rtpproxyd_redis_pending"), 0);
	/* One warning for the outage, not one per attempt. */
	ck_assert_int_eq(harness_log_count(&d, "written again when it is "
	    "back"), 1);

	/* Redis comes: caught up, and nothing of what was destroyed. */
	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(consistent(ids, alive, n, 15000), 0);

	/* Killed and started again while sessions come and go. */
	for (; n < 26; n++) {
		if (n == 16)
			redis_down();
		snprintf(ids[n], sizeof(ids[n]), "out-%d", n);
		create(rc, ids[n], dport);
		alive[n] = 1;
		if (n % 2 == 0) {
			ck_assert_int_eq(harness_destroy(rc, ids[n - 1]),
			    RP_OK);
			alive[n - 1] = 0;
		}
	}
	for (i = 0; i < 200 && metric("rtpproxyd_redis_up") != 0; i++)
		harness_sleep_ms(50);
	ck_assert_int_eq(metric("rtpproxyd_redis_up"), 0);
	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(consistent(ids, alive, n, 15000), 0);

	/* Stopped (no answers at all): calls are answered all the same. */
	ck_assert_int_gt(rp = redis_pid(), 0);
	kill(rp, SIGSTOP);
	for (; n < 40; n++) {
		snprintf(ids[n], sizeof(ids[n]), "out-%d", n);
		create(rc, ids[n], dport);
		alive[n] = 1;
		if (n % 2 == 0) {
			ck_assert_int_eq(harness_destroy(rc, ids[n - 1]),
			    RP_OK);
			alive[n - 1] = 0;
		}
	}
	/* Long enough for the daemon to give up on it and try again. */
	for (i = 0; i < 200 && metric("rtpproxyd_redis_timeouts_total") < 1;
	    i++)
		harness_sleep_ms(50);
	ck_assert_int_ge(metric("rtpproxyd_redis_timeouts_total"), 1);
	kill(rp, SIGCONT);
	ck_assert_int_eq(consistent(ids, alive, n, 20000), 0);
	for (i = 0; i < 200 && metric("rtpproxyd_redis_up") != 1; i++)
		harness_sleep_ms(50);
	ck_assert_int_eq(metric("rtpproxyd_redis_up"), 1);
	ck_assert_int_eq(consistent(ids, alive, n, 20000), 0);
	close(dest);
	rpc_client_free(rc);
}
END_TEST

/* --- a lone node killed and started again -------------------------------- */

/* The whole daemon gone at once, and its table with it (a reboot). */
static void
kill_daemon(struct daemon *x)
{
	ck_assert_int_eq(kill(x->pid, SIGKILL), 0);
	(void)waitpid(x->pid, NULL, 0);
	x->pid = -1;
	harness_kill_workers(x, SIGKILL);
	harness_sleep_ms(200);
	(void)shm_unlink(x->shm);
}

static void
kill_all(void)
{
	kill_daemon(&d);
}

static void
rset(const char *cmd)
{
	redisContext	*c;
	redisReply	*r;

	ck_assert_ptr_nonnull(c = redis_conn(5000));
	ck_assert_ptr_nonnull(r = redisCommand(c, cmd));
	ck_assert_int_ne(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
	redisFree(c);
}

START_TEST(restart)
{
	struct rpc_client	*rc;
	Rtpproxy__SessionInfo	*si;
	uint8_t			 pkt[256], got[256];
	uint16_t		 lport, fport, cport, dport, busy;
	char			 cmd[1024], want[64], c0[512];
	unsigned long long	 before;
	size_t			 n = 0;
	int			 caller, dest, hold, i;

	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	rc = client();
	ck_assert_int_ge(caller = harness_udp(0, &cport), 0);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	lport = create(rc, "rs-1", dport);
	create_dtmf(rc, "rs-2", dport);
	create(rc, "rs-3", dport);
	ck_assert_int_eq(harness_destroy(rc, "rs-3"), RP_OK);
	ck_assert_int_eq(harness_status(rc, "rs-1", &si), RP_OK);
	fport = (uint16_t)si->forward->port;
	harness_info_free(si);
	for (i = 0; i < 10; i++) {
		n = harness_rtp(pkt, (uint16_t)(10 + i), (uint32_t)i * 160,
		    0x77, 100);
		ck_assert_int_eq(harness_send(caller, "127.0.0.1", lport, pkt,
		    n), 0);
		ck_assert_int_eq(harness_recv(dest, got, sizeof(got), 3000,
		    NULL), (ssize_t)n);
	}
	snprintf(want, sizeof(want), "127.0.0.1:%u", cport);
	ck_assert_int_eq(rwait("rs-1", "latched", want, 5000), 0);
	for (i = 0; i < 100 && strncmp(rfield("rs-1", "c0"), "10 ", 3) != 0;
	    i++)
		harness_sleep_ms(50);
	snprintf(c0, sizeof(c0), "%s", rfield("rs-1", "c0"));
	ck_assert_int_eq(strncmp(c0, "10 ", 3), 0);
	ck_assert_int_eq(rwait("rs-3", "v", "", 5000), 0);
	rpc_client_free(rc);

	kill_all();

	/* What a node must not trip over. */
	rset("SADD t:node:node-a junk-1 junk-2 junk-3 junk-4 junk-5 "
	    "busy-1 junk-6");
	rset("HSET t:session:junk-1 v 99 id junk-1");
	rset("HSET t:session:junk-2 v 1 id junk-2 node node-a");
	rset("SET t:session:junk-3 garbage");
	rset("HSET t:session:junk-5 v 1 id junk-5 node node-a inc "
	    "0000000000000001 epoch 1 listen 127.0.0.1:99999 forward "
	    "127.0.0.1:1 dest 127.0.0.1:2");
	rset("HSET t:session:junk-6 v 1 id junk-6 node node-a inc "
	    "0000000000000001 epoch 1 listen 127.0.0.1:2 forward "
	    "127.0.0.1:1 dest 127.0.0.1:2 c0 \"1 2 x\"");
	/* A record fine but for a port someone else holds: left alone. */
	/* (an ephemeral port of someone's may be there already: another) */
	for (hold = -1, busy = (uint16_t)(d.port_max - 1);
	    hold == -1 && busy > d.port_min + 20; busy -= 2)
		hold = harness_udp_bind(0, busy);
	ck_assert_int_ge(hold, 0);
	busy += 2;
	snprintf(cmd, sizeof(cmd), "HSET t:session:busy-1 v 1 id busy-1 node "
	    "node-a inc 0000000000000002 epoch 1 listen 127.0.0.1:%u forward "
	    "127.0.0.1:%u dest 127.0.0.1:%u flags 26", busy, busy, dport);
	rset(cmd);

	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_wait_log(&d, "sessions restored", 2, 10000),
	    0);
	ck_assert_int_eq(harness_log_count(&d, "2 sessions restored, 7 "
	    "skipped"), 1);
	ck_assert_int_eq(harness_log_count(&d, "session junk-1 not restored: "
	    "version \"99\""), 1);
	ck_assert_int_eq(harness_log_count(&d, "session junk-3 not restored: "
	    "not a hash"), 1);
	ck_assert_int_eq(harness_log_count(&d, "session junk-4 not restored: "
	    "no record"), 1);
	ck_assert_int_eq(harness_log_count(&d, "session busy-1 not restored: "
	    "listen"), 1);
	ck_assert_int_eq(harness_log_count(&d, "(left in Redis)"), 1);
	ck_assert_int_eq(metric("rtpproxyd_redis_restored_total"), 2);
	ck_assert_int_eq(metric("rtpproxyd_redis_skipped_total"), 7);
	ck_assert_str_eq(rfield("busy-1", "id"), "busy-1");
	close(hold);

	/* Same id, same ports, the latch and the counters go on. */
	rc = client();
	ck_assert_int_eq(harness_status(rc, "rs-1", &si), RP_OK);
	ck_assert_uint_eq(si->listen->port, lport);
	ck_assert_uint_eq(si->forward->port, fport);
	ck_assert_ptr_nonnull(si->latched);
	ck_assert_uint_eq(si->latched->port, cport);
	before = si->forward_stats->packets_received;
	ck_assert_uint_eq(before, 10);
	harness_info_free(si);
	/* The DTMF options came back too. */
	ck_assert_int_eq(harness_status(rc, "rs-2", &si), RP_OK);
	ck_assert_uint_eq(si->dtmf_payload_type, 110);
	ck_assert(si->drop_dtmf);
	harness_info_free(si);
	ck_assert_int_ne(harness_status(rc, "rs-3", &si), RP_OK);

	/* Reverse media reaches the caller before the caller says a word. */
	n = harness_rtp(pkt, 500, 0, 0x99, 100);
	ck_assert_int_eq(harness_send(dest, "127.0.0.1", fport, pkt, n), 0);
	ck_assert_int_eq(harness_recv(caller, got, sizeof(got), 3000, NULL),
	    (ssize_t)n);
	n = harness_rtp(pkt, 20, 1600, 0x77, 100);
	ck_assert_int_eq(harness_send(caller, "127.0.0.1", lport, pkt, n), 0);
	ck_assert_int_eq(harness_recv(dest, got, sizeof(got), 3000, NULL),
	    (ssize_t)n);
	for (i = 0; i < 100 && strncmp(rfield("rs-1", "c0"), "11 ", 3) != 0;
	    i++)
		harness_sleep_ms(50);
	ck_assert_int_eq(strncmp(rfield("rs-1", "c0"), "11 ", 3), 0);
	ck_assert_int_eq(harness_destroy(rc, "rs-1"), RP_OK);
	ck_assert_int_eq(rwait("rs-1", "v", "", 5000), 0);

	/* Killed again: what was destroyed stays gone. */
	rpc_client_free(rc);
	kill_all();
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_wait_log(&d, "sessions restored", 3, 10000),
	    0);
	rc = client();
	ck_assert_int_ne(harness_status(rc, "rs-1", &si), RP_OK);
	ck_assert_int_eq(harness_status(rc, "rs-2", &si), RP_OK);
	harness_info_free(si);
	rpc_client_free(rc);

	/*
	 * Stopped (SIGTERM): its sessions are closed, and gone from Redis
	 * before the daemon exits, however soon after they were made.
	 */
	rc = client();
	create(rc, "rs-5", dport);
	rpc_client_free(rc);
	ck_assert_int_ge(harness_stop(&d, 10000), 0);
	ck_assert_int_eq(rexists("rs-2"), 0);
	ck_assert_int_eq(rexists("rs-5"), 0);
	close(caller);
	close(dest);
}
END_TEST

/* --- a recording session restored --------------------------------------- */

static char	recdir[192], recdir2[192];	/* node-a's, node-b's */

/* A node that records into its test directory's rec/. */
static void
up_rec(void)
{
	char line[256];

	up_redis(NULL);
	snprintf(recdir, sizeof(recdir), "%s/rec", d.dir);
	if (mkdir(recdir, 0755) == -1)
		fprintf(stderr, "check_redis: mkdir %s failed\n", recdir);
	snprintf(line, sizeof(line), "recording-dir %s", recdir);
	if (harness_conf_add(&d, line) == -1)
		fprintf(stderr, "check_redis: cannot set recording-dir\n");
}

/* The pair, each node with a recording-dir of its own. */
static void
up_rec_pair(void)
{
	char line[256];

	up_rec();
	up_pair_b();
	snprintf(recdir2, sizeof(recdir2), "%s/rec", d2.dir);
	if (mkdir(recdir2, 0755) == -1)
		fprintf(stderr, "check_redis: mkdir %s failed\n", recdir2);
	snprintf(line, sizeof(line), "recording-dir %s", recdir2);
	if (harness_conf_add(&d2, line) == -1)
		fprintf(stderr, "check_redis: cannot set recording-dir\n");
}

/* CreateSession with record, from any port to dest; its listen port. */
static uint16_t
create_rec(struct rpc_client *rc, const char *id, uint16_t dport)
{
	Rtpproxy__CreateSessionRequest	 req =
	    RTPPROXY__CREATE_SESSION_REQUEST__INIT;
	Rtpproxy__CreateSessionResponse	*resp = NULL;
	Rtpproxy__Endpoint		 l = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 ds = RTPPROXY__ENDPOINT__INIT;
	char				 det[512];
	uint16_t			 port;

	req.session_id = (char *)id;
	l.address = (char *)"127.0.0.1";
	ds.address = (char *)"127.0.0.1";
	ds.port = dport;
	req.listen = &l;
	req.destination = &ds;
	req.disable_rtcp = 1;
	req.record = 1;
	ck_assert_int_eq(rpc_unary(rc, M_CREATE, &req.base,
	    &rtpproxy__create_session_response__descriptor,
	    (ProtobufCMessage **)&resp, det, sizeof(det), harness_ms(10000)),
	    RP_OK);
	port = (uint16_t)resp->session->listen->port;
	rtpproxy__create_session_response__free_unpacked(resp, NULL);
	return port;
}

/*
 * Wait until id's recording is active with at least packets written in
 * part parts; its file name into file.  0 or -1 (the last seen in file).
 */
static int
rec_wait(struct rpc_client *rc, const char *id, uint32_t parts,
    uint64_t packets, char *file, size_t len)
{
	Rtpproxy__SessionInfo	*si;
	int			 i, ok = 0;

	snprintf(file, len, "(no recording)");
	for (i = 0; i < 200 && !ok; i++) {
		if (harness_status(rc, id, &si) != RP_OK)
			return -1;
		if (si->recording != NULL) {
			snprintf(file, len, "%s active %d parts %u packets "
			    "%llu", si->recording->file,
			    si->recording->active, si->recording->parts,
			    (unsigned long long)si->recording->packets);
			if (si->recording->active &&
			    si->recording->parts == parts &&
			    si->recording->packets >= packets) {
				snprintf(file, len, "%s", si->recording->file);
				ok = 1;
			}
		}
		harness_info_free(si);
		if (!ok)
			harness_sleep_ms(50 * harness_slow());
	}
	return ok ? 0 : -1;
}

/* tshark: RTP packets of ssrc in dir/file, -1 when tshark failed. */
static int
rec_count_in(const char *dir, const char *file, uint32_t ssrc)
{
	char	 cmd[768], line[64];
	FILE	*p;
	int	 k = 0;

	snprintf(cmd, sizeof(cmd), "tshark -n -r '%s/%s' -o "
	    "rtp.heuristic_rtp:TRUE -Y 'rtp.ssrc == 0x%08x' -T fields -e "
	    "rtp.seq 2>/dev/null", dir, file, ssrc);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), p) != NULL)
		k++;
	return pclose(p) == 0 ? k : -1;
}

static int
rec_count(const char *file, uint32_t ssrc)
{
	return rec_count_in(recdir, file, ssrc);
}

static off_t
rec_size(const char *file)
{
	char		path[512];
	struct stat	st;

	snprintf(path, sizeof(path), "%s/%s", recdir, file);
	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* count packets of ssrc through the session, each one received. */
static void
rec_media(int caller, int dest, uint16_t lport, uint16_t seq0, int count,
    uint32_t ssrc)
{
	uint8_t	pkt[256], got[256];
	size_t	n;
	int	i;

	for (i = 0; i < count; i++) {
		n = harness_rtp(pkt, (uint16_t)(seq0 + i), 160u * (uint32_t)i,
		    ssrc, 100);
		ck_assert_int_eq(harness_send(caller, "127.0.0.1", lport, pkt,
		    n), 0);
		ck_assert_int_eq(harness_recv(dest, got, sizeof(got), 3000,
		    NULL), (ssize_t)n);
	}
}

/*
 * A recording session, the whole daemon killed and started again: it
 * records again, in the part after the last, and the old file stays as
 * it was.  A part's name taken already is skipped, never overwritten.
 */
START_TEST(rec_restart)
{
	struct rpc_client	*rc;
	uint16_t		 lport, cport, dport;
	char			 f1[256], f2[256], f3[256], f4[256], want[64];
	char			 path[512], *dash;
	off_t			 size1, size3;
	int			 caller, dest, fd, ready, i;

	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	rc = client();
	ck_assert_int_ge(caller = harness_udp(0, &cport), 0);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	lport = create_rec(rc, "rr-1", dport);
	rec_media(caller, dest, lport, 100, 10, 0x1111);
	ck_assert_msg(rec_wait(rc, "rr-1", 1, 10, f1, sizeof(f1)) == 0, "%s",
	    f1);
	/* The record says it records, and its part, with the counters. */
	ck_assert_int_eq(rwait("rr-1", "parts", "1", 5000), 0);
	ck_assert(atoi(rfield("rr-1", "flags")) & 0x400);
	snprintf(want, sizeof(want), "127.0.0.1:%u", cport);
	ck_assert_int_eq(rwait("rr-1", "latched", want, 5000), 0);
	rpc_client_free(rc);

	/* On disk within half a second of the last packet: all of it. */
	for (i = 0; i < 100 && rec_count(f1, 0x1111) != 10; i++)
		harness_sleep_ms(100);
	ck_assert_int_eq(rec_count(f1, 0x1111), 10);
	kill_all();
	size1 = rec_size(f1);

	ck_assert_int_eq(harness_launch(&d, 1), 0);
	/* (the first start restored none) */
	ck_assert_int_eq(harness_wait_log(&d, "sessions restored", 2, 10000),
	    0);
	ck_assert_int_eq(harness_log_count(&d, "1 sessions restored, 0 "
	    "skipped"), 1);
	rc = client();
	/* Recording again, part 2, and the media after the restart in it. */
	rec_media(caller, dest, lport, 200, 5, 0x2222);
	ck_assert_msg(rec_wait(rc, "rr-1", 2, 5, f2, sizeof(f2)) == 0, "%s",
	    f2);
	ck_assert_msg(strncmp(f2, "rr-1-", 5) == 0 && strstr(f2, "-2.pcap") !=
	    NULL, "%s", f2);
	ck_assert_int_eq(rwait("rr-1", "parts", "2", 5000), 0);
	/* The old file is as it was; the new one has what came since. */
	ck_assert_str_ne(f1, f2);
	ck_assert_int_eq(rec_size(f1), size1);
	ck_assert_int_eq(rec_count(f1, 0x1111), 10);
	ck_assert_int_eq(rec_count(f1, 0x2222), 0);

	/*
	 * The next part's name taken (as by a part begun before a crash
	 * and never written to Redis): a worker killed begins a new part,
	 * which skips it.
	 */
	snprintf(f3, sizeof(f3), "%s", f2);
	ck_assert_ptr_nonnull(dash = strrchr(f3, '-'));
	snprintf(dash, sizeof(f3) - (size_t)(dash - f3), "-3.pcap");
	snprintf(path, sizeof(path), "%s/%s", recdir, f3);
	ck_assert_int_ge(fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640),
	    0);
	ck_assert_int_eq(write(fd, "not ours", 8), 8);
	close(fd);
	size3 = rec_size(f3);
	ready = harness_log_count(&d, "worker 0 ready");
	harness_kill_workers(&d, SIGKILL);
	ck_assert_int_eq(harness_wait_log(&d, "worker 0 ready", ready + 1,
	    10000), 0);
	rec_media(caller, dest, lport, 300, 5, 0x3333);
	ck_assert_msg(rec_wait(rc, "rr-1", 4, 5, f4, sizeof(f4)) == 0, "%s",
	    f4);
	ck_assert_msg(strstr(f4, "-4.pcap") != NULL, "%s", f4);
	ck_assert_int_eq(harness_log_count(&d, "-3.pcap exists, the next "
	    "part instead"), 1);
	ck_assert_int_eq(rec_size(f3), size3);
	ck_assert_int_eq(rwait("rr-1", "parts", "4", 5000), 0);

	/* Everything written: each file has its own packets. */
	ck_assert_int_eq(harness_destroy(rc, "rr-1"), RP_OK);
	ck_assert_int_eq(harness_wait_log(&d, "-4.pcap closed", 1, 10000), 0);
	ck_assert_int_eq(rec_count(f2, 0x2222), 5);
	ck_assert_int_eq(rec_count(f2, 0x1111), 0);
	ck_assert_int_eq(rec_count(f4, 0x3333), 5);
	rpc_client_free(rc);
	close(caller);
	close(dest);
}
END_TEST

/*
 * The same on a node without recording-dir: the session comes back, its
 * media flows, it does not record, and the log says why.
 */
START_TEST(rec_norecdir)
{
	struct rpc_client	*rc;
	Rtpproxy__SessionInfo	*si;
	uint16_t		 lport, cport, dport;
	char			 f1[256];
	int			 caller, dest, i;

	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	rc = client();
	ck_assert_int_ge(caller = harness_udp(0, &cport), 0);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	lport = create_rec(rc, "rn-1", dport);
	rec_media(caller, dest, lport, 100, 10, 0x1111);
	ck_assert_msg(rec_wait(rc, "rn-1", 1, 10, f1, sizeof(f1)) == 0, "%s",
	    f1);
	ck_assert_int_eq(rwait("rn-1", "parts", "1", 5000), 0);
	/* The counters' snapshot has all 10 before the kill. */
	for (i = 0; i < 100 && strncmp(rfield("rn-1", "c0"), "10 ", 3) != 0;
	    i++)
		harness_sleep_ms(50);
	ck_assert_int_eq(strncmp(rfield("rn-1", "c0"), "10 ", 3), 0);
	for (i = 0; i < 100 && rec_count(f1, 0x1111) != 10; i++)
		harness_sleep_ms(100);
	rpc_client_free(rc);

	kill_all();
	ck_assert_int_eq(harness_conf_set(&d, "recording-dir none"), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	/* (the first start restored none) */
	ck_assert_int_eq(harness_wait_log(&d, "sessions restored", 2, 10000),
	    0);
	ck_assert_int_eq(harness_log_count(&d, "1 sessions restored, 0 "
	    "skipped"), 1);
	ck_assert_int_eq(harness_log_count(&d, "session rn-1 restored without "
	    "its recording: no recording-dir is configured on this node"), 1);
	rc = client();
	rec_media(caller, dest, lport, 200, 5, 0x2222);
	ck_assert_int_eq(harness_status_counted(rc, "rn-1", 15, &si), RP_OK);
	/* The parts it had are known; none is active. */
	ck_assert_ptr_nonnull(si->recording);
	ck_assert(!si->recording->active);
	ck_assert_uint_eq(si->recording->parts, 1);
	ck_assert_uint_eq(si->forward_stats->packets_received, 15);
	harness_info_free(si);
	ck_assert_int_eq(rec_count(f1, 0x1111), 10);
	ck_assert_int_eq(rec_count(f1, 0x2222), 0);
	rpc_client_free(rc);
	close(caller);
	close(dest);
}
END_TEST

/*
 * A recording session taken over: the standby records on, in the next
 * part, into its own recording-dir; the old node's file stays.
 */
START_TEST(rec_takeover)
{
	struct rpc_client	*ra, *rb;
	uint16_t		 lport, cport, dport;
	char			 f1[256], f2[256], cmd[512], out[512];
	char			 path[512];
	struct stat		 st;
	off_t			 size1;
	int			 caller, dest, i;

	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_launch(&d2, 1), 0);
	ck_assert_ptr_nonnull(ra = rpc_client_new(d.grpc));
	ck_assert_int_ge(caller = harness_udp(0, &cport), 0);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	lport = create_rec(ra, "rt-1", dport);
	rec_media(caller, dest, lport, 100, 10, 0x1111);
	ck_assert_msg(rec_wait(ra, "rt-1", 1, 10, f1, sizeof(f1)) == 0, "%s",
	    f1);
	ck_assert_int_eq(rwait("rt-1", "parts", "1", 5000), 0);
	for (i = 0; i < 100 && strncmp(rfield("rt-1", "c0"), "10 ", 3) != 0;
	    i++)
		harness_sleep_ms(50);
	for (i = 0; i < 100 && rec_count(f1, 0x1111) != 10; i++)
		harness_sleep_ms(100);
	ck_assert_int_eq(rec_count(f1, 0x1111), 10);
	rpc_client_free(ra);

	kill_daemon(&d);
	size1 = rec_size(f1);
	snprintf(cmd, sizeof(cmd), "%s -s %s takeover node-a 2>&1",
	    getenv("RTPPROXYCTL"), d2.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "1 sessions resumed, 0 skipped, 0 failed") !=
	    NULL, "%s", out);
	ck_assert_ptr_nonnull(rb = rpc_client_new(d2.grpc));
	rec_media(caller, dest, lport, 200, 5, 0x2222);
	ck_assert_msg(rec_wait(rb, "rt-1", 2, 5, f2, sizeof(f2)) == 0, "%s",
	    f2);
	ck_assert_msg(strncmp(f2, "rt-1-", 5) == 0 && strstr(f2, "-2.pcap") !=
	    NULL, "%s", f2);
	ck_assert_int_eq(rwait("rt-1", "parts", "2", 5000), 0);
	ck_assert_int_eq(harness_destroy(rb, "rt-1"), RP_OK);
	ck_assert_int_eq(harness_wait_log(&d2, "-2.pcap closed", 1, 10000), 0);
	/* node-b's file is in its own directory, none in node-a's. */
	ck_assert_int_eq(rec_count_in(recdir2, f2, 0x2222), 5);
	snprintf(path, sizeof(path), "%s/%s", recdir, f2);
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(rec_size(f1), size1);
	ck_assert_int_eq(rec_count(f1, 0x1111), 10);
	rpc_client_free(rb);
	close(caller);
	close(dest);
}
END_TEST

/* --- a standby takes over ------------------------------------------------ */

static struct rpc_client *
client_of(struct daemon *x)
{
	struct rpc_client *c;

	ck_assert_ptr_nonnull(c = rpc_client_new(x->grpc));
	return c;
}

START_TEST(takeover)
{
	struct rpc_client	*ra, *rb;
	Rtpproxy__SessionInfo	*si;
	redisReply		*r;
	uint8_t			 pkt[256], got[256];
	uint16_t		 lport, fport, cport, dport;
	char			 cmd[512], out[512];
	size_t			 n = 0;
	int			 caller, dest, i;

	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_launch(&d2, 1), 0);
	ra = client_of(&d);
	ck_assert_int_ge(caller = harness_udp(0, &cport), 0);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	lport = create(ra, "tk-1", dport);
	create(ra, "tk-2", dport);
	create(ra, "tk-3", dport);
	ck_assert_int_eq(harness_destroy(ra, "tk-3"), RP_OK);
	ck_assert_int_eq(harness_status(ra, "tk-1", &si), RP_OK);
	fport = (uint16_t)si->forward->port;
	harness_info_free(si);
	for (i = 0; i < 10; i++) {
		n = harness_rtp(pkt, (uint16_t)(10 + i), (uint32_t)i * 160,
		    0x77, 100);
		ck_assert_int_eq(harness_send(caller, "127.0.0.1", lport, pkt,
		    n), 0);
		ck_assert_int_eq(harness_recv(dest, got, sizeof(got), 3000,
		    NULL), (ssize_t)n);
	}
	for (i = 0; i < 100 && strncmp(rfield("tk-1", "c0"), "10 ", 3) != 0;
	    i++)
		harness_sleep_ms(50);
	ck_assert_int_eq(strncmp(rfield("tk-1", "c0"), "10 ", 3), 0);
	ck_assert_int_eq(rwait("tk-3", "v", "", 5000), 0);
	rpc_client_free(ra);
	/* What the standby would take over, as it follows Redis. */
	for (i = 0; i < 100 && harness_metric(mport2, "rtpproxyd_redis_standby_"
	    "sessions{node=\"node-a\"}") != 2; i++)
		harness_sleep_ms(50);
	ck_assert_int_eq(harness_metric(mport2, "rtpproxyd_redis_standby_sessions"
	    "{node=\"node-a\"}"), 2);

	/* node-a is gone; node-b is told to take over (rtpproxyctl). */
	kill_daemon(&d);
	snprintf(cmd, sizeof(cmd), "%s -s %s takeover node-a 2>&1",
	    getenv("RTPPROXYCTL"), d2.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	/* Answered when it is over, with what it did. */
	ck_assert_ptr_nonnull(strstr(out, "node-b: took over node node-a: 2 "
	    "sessions resumed, 0 skipped, 0 failed (of 2)"));
	ck_assert_int_eq(harness_wait_log(&d2, "takeover of node node-a done: "
	    "2 sessions resumed, 0 skipped", 1, 10000), 0);

	/* Same id, ports, latch; counters go on; node-b owns it, epoch 2. */
	rb = client_of(&d2);
	ck_assert_int_eq(harness_status(rb, "tk-1", &si), RP_OK);
	ck_assert_uint_eq(si->listen->port, lport);
	ck_assert_uint_eq(si->forward->port, fport);
	ck_assert_ptr_nonnull(si->latched);
	ck_assert_uint_eq(si->latched->port, cport);
	ck_assert_uint_eq(si->forward_stats->packets_received, 10);
	harness_info_free(si);
	ck_assert_int_ne(harness_status(rb, "tk-3", &si), RP_OK);
	ck_assert_int_eq(rwait("tk-1", "node", "node-b", 5000), 0);
	ck_assert_str_eq(rfield("tk-1", "epoch"), "2");
	r = rcmd("SISMEMBER t:node:%s tk-1", "node-a");
	ck_assert_int_eq(r->integer, 0);
	freeReplyObject(r);
	r = rcmd("SISMEMBER t:node:%s tk-1", "node-b");
	ck_assert_int_eq(r->integer, 1);
	freeReplyObject(r);
	n = harness_rtp(pkt, 500, 0, 0x99, 100);
	ck_assert_int_eq(harness_send(dest, "127.0.0.1", fport, pkt, n), 0);
	ck_assert_int_eq(harness_recv(caller, got, sizeof(got), 3000, NULL),
	    (ssize_t)n);
	n = harness_rtp(pkt, 20, 1600, 0x77, 100);
	ck_assert_int_eq(harness_send(caller, "127.0.0.1", lport, pkt, n), 0);
	ck_assert_int_eq(harness_recv(dest, got, sizeof(got), 3000, NULL),
	    (ssize_t)n);
	for (i = 0; i < 100 && strncmp(rfield("tk-1", "c0"), "11 ", 3) != 0;
	    i++)
		harness_sleep_ms(50);
	ck_assert_int_eq(strncmp(rfield("tk-1", "c0"), "11 ", 3), 0);

	/* Asked again, or for itself: refused. */
	snprintf(cmd, sizeof(cmd), "%s -s %s takeover node-b 2>&1",
	    getenv("RTPPROXYCTL"), d2.grpc);
	ck_assert_int_ne(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "is this node"));

	/*
	 * Fencing: node-a comes back, even with the id still in its set
	 * (as if the claim's SREM were lost): it resumes nothing.
	 */
	rset("SADD t:node:node-a tk-1");
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_wait_log(&d, "sessions restored", 2, 10000),
	    0);
	ck_assert_int_eq(harness_log_count(&d, "session tk-1 not restored: "
	    "node node-b owns it now (epoch 2)"), 1);
	ra = client_of(&d);
	ck_assert_int_ne(harness_status(ra, "tk-1", &si), RP_OK);
	ck_assert_int_ne(harness_status(ra, "tk-2", &si), RP_OK);
	rpc_client_free(ra);
	kill_daemon(&d);

	/* Destroyed on the new owner: gone, and stays gone. */
	ck_assert_int_eq(harness_destroy(rb, "tk-1"), RP_OK);
	ck_assert_int_eq(rwait("tk-1", "v", "", 5000), 0);
	rpc_client_free(rb);
	kill_daemon(&d2);
	ck_assert_int_eq(harness_launch(&d2, 1), 0);
	ck_assert_int_eq(harness_wait_log(&d2, "sessions restored", 2, 10000),
	    0);
	rb = client_of(&d2);
	ck_assert_int_ne(harness_status(rb, "tk-1", &si), RP_OK);
	ck_assert_int_eq(harness_status(rb, "tk-2", &si), RP_OK);
	harness_info_free(si);
	ck_assert_int_eq(rexists("tk-1"), 0);
	rpc_client_free(rb);
	close(caller);
	close(dest);
}
END_TEST

/* A JSON number field of rtpproxyctl -j's output; -1: none. */
static long long
jnum(const char *out, const char *key)
{
	char		 pat[64];
	const char	*p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if ((p = strstr(out, pat)) == NULL)
		return -1;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	return atoll(p);
}

/* A metric of a daemon until it is want; its last value. */
static long long
metric_wait(uint16_t port, const char *name, long long want, int ms)
{
	long long	v = -1;
	int		i;

	for (i = 0; i < ms / 50; i++) {
		if ((v = harness_metric(port, name)) == want)
			break;
		harness_sleep_ms(50);
	}
	return v;
}

#define MIRRORED	"rtpproxyd_redis_mirrored_sessions{node=\"node-a\"}"
#define RESYNCS		"rtpproxyd_redis_mirror_resyncs_total"

/*
 * HaTakeover answers when the takeover is over, with its outcome; an
 * unknown node is nothing to take; Redis stopped (SIGSTOP) or gone is
 * UNAVAILABLE; a client that gave up waiting leaves nothing behind.
 */
START_TEST(takeover_answer)
{
	struct rpc_client	*ra;
	Rtpproxy__SessionInfo	*si;
	char			 cmd[512], out[2048], id[32];
	uint16_t		 dport;
	pid_t			 rp;
	int			 dest, i, st;

	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_launch(&d2, 1), 0);
	ra = client_of(&d);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "ta-%d", i);
		create(ra, id, dport);
	}
	rpc_client_free(ra);
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "ta-%d", i);
		ck_assert_int_eq(rwait(id, "v", "1", 5000), 0);
	}
	/*
	 * An id without a record, announced as a write would: skipped as
	 * unusable, not a failure.
	 */
	rset("SADD t:node:node-a ta-ghost");
	rset("PUBLISH t:chan:node-a +ta-ghost");
	ck_assert_int_eq(metric_wait(mport2, MIRRORED, 6, 10000), 6);
	kill_daemon(&d);

	snprintf(cmd, sizeof(cmd), "%s -j -s %s takeover node-a 2>&1",
	    getenv("RTPPROXYCTL"), d2.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_int_eq(jnum(out, "sessions"), 6);
	ck_assert_int_eq(jnum(out, "resumed"), 5);
	ck_assert_int_eq(jnum(out, "skipped"), 1);
	ck_assert_int_eq(jnum(out, "skipped_invalid"), 1);
	ck_assert_int_eq(jnum(out, "failed"), 0);
	/* Already resumed when the answer came. */
	ra = client_of(&d2);
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "ta-%d", i);
		ck_assert_int_eq(harness_status(ra, id, &si), RP_OK);
		harness_info_free(si);
	}
	rpc_client_free(ra);

	/* A node with nothing in Redis: OK, and said so. */
	snprintf(cmd, sizeof(cmd), "%s -s %s takeover node-z 2>&1",
	    getenv("RTPPROXYCTL"), d2.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "node node-z has no sessions in "
	    "Redis"));

	/*
	 * Redis stopped: no answer from it, and the takeover's answer is
	 * UNAVAILABLE once the connection gives up (5 s), not a hang.
	 */
	ck_assert_int_gt(rp = redis_pid(), 0);
	kill(rp, SIGSTOP);
	snprintf(cmd, sizeof(cmd), "%s -s %s takeover node-x 2>&1",
	    getenv("RTPPROXYCTL"), d2.grpc);
	st = harness_run(cmd, out, sizeof(out));
	kill(rp, SIGCONT);
	ck_assert_msg(st == 14, "exit %d: %s", st, out);
	ck_assert_msg(strstr(out, "Redis went away before the sessions of "
	    "node node-x were read") != NULL ||
	    strstr(out, "not connected to Redis") != NULL, "%s", out);

	/* A client that gives up: the daemon answers into nothing. */
	for (i = 0; i < 200 && harness_metric(mport2, "rtpproxyd_redis_up") != 1;
	    i++)
		harness_sleep_ms(50);
	ck_assert_int_eq(harness_metric(mport2, "rtpproxyd_redis_up"), 1);
	kill(rp, SIGSTOP);
	snprintf(cmd, sizeof(cmd), "%s -t 1 -s %s takeover node-y 2>&1",
	    getenv("RTPPROXYCTL"), d2.grpc);
	st = harness_run(cmd, out, sizeof(out));
	kill(rp, SIGCONT);
	ck_assert_msg(st == 4, "exit %d: %s", st, out);
	for (i = 0; i < 200 && harness_log_count(&d2, "takeover of node "
	    "node-y") < 1; i++)
		harness_sleep_ms(50);
	snprintf(cmd, sizeof(cmd), "%s -s %s takeover node-y 2>&1",
	    getenv("RTPPROXYCTL"), d2.grpc);
	for (i = 0; i < 100; i++) {
		st = harness_run(cmd, out, sizeof(out));
		if (st == 0 || strstr(out, "is running") == NULL)
			break;
		harness_sleep_ms(100);
	}
	ck_assert_msg(st == 0, "exit %d: %s", st, out);
	ck_assert(harness_alive(d2.pid));

	/* Redis gone: refused at once. */
	redis_down();
	for (i = 0; i < 200 && harness_metric(mport2, "rtpproxyd_redis_up") != 0;
	    i++)
		harness_sleep_ms(50);
	snprintf(cmd, sizeof(cmd), "%s -s %s takeover node-a 2>&1",
	    getenv("RTPPROXYCTL"), d2.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 14);
	ck_assert_ptr_nonnull(strstr(out, "not connected to Redis"));
	close(dest);
}
END_TEST

/*
 * The standby mirrors the node it backs as it changes, not only when it
 * takes over: sessions made after it started are in its mirror, a
 * destroyed one leaves it, a Redis restarted is read again, and the
 * takeover resumes the mirror's sessions.
 */
START_TEST(mirror)
{
	struct rpc_client	*ra;
	Rtpproxy__SessionInfo	*si;
	char			 cmd[512], out[2048], id[32];
	uint16_t		 dport;
	int			 dest, i;

	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(harness_launch(&d2, 1), 0);
	ck_assert_int_eq(metric_wait(mport2, RESYNCS, 1, 10000), 1);
	ck_assert_int_eq(harness_metric(mport2, MIRRORED), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ra = client_of(&d);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	for (i = 0; i < 6; i++) {
		snprintf(id, sizeof(id), "mi-%d", i);
		create(ra, id, dport);
	}
	ck_assert_int_eq(metric_wait(mport2, MIRRORED, 6, 10000), 6);
	ck_assert_int_eq(harness_destroy(ra, "mi-5"), RP_OK);
	ck_assert_int_eq(metric_wait(mport2, MIRRORED, 5, 10000), 5);
	/* Nothing was read of node-a's set but at the start. */
	ck_assert_int_eq(harness_metric(mport2, RESYNCS), 1);

	/* Redis restarted (empty): node-a writes again, the mirror too. */
	redis_down();
	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(rwait("mi-4", "v", "1", 15000), 0);
	ck_assert_int_ge(metric_wait(mport2, RESYNCS, 2, 15000), 2);
	ck_assert_int_eq(metric_wait(mport2, MIRRORED, 5, 15000), 5);
	create(ra, "mi-6", dport);
	ck_assert_int_eq(metric_wait(mport2, MIRRORED, 6, 10000), 6);
	rpc_client_free(ra);

	/* node-a gone: the takeover resumes what the mirror has. */
	kill_daemon(&d);
	snprintf(cmd, sizeof(cmd), "%s -j -s %s takeover node-a 2>&1",
	    getenv("RTPPROXYCTL"), d2.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_int_eq(jnum(out, "sessions"), 6);
	ck_assert_int_eq(jnum(out, "resumed"), 6);
	ck_assert_int_eq(harness_log_count(&d2, "from its mirror"), 1);
	ra = client_of(&d2);
	ck_assert_int_eq(harness_status(ra, "mi-6", &si), RP_OK);
	harness_info_free(si);
	ck_assert_int_ne(harness_status(ra, "mi-5", &si), RP_OK);
	rpc_client_free(ra);
	/* Taken: they are node-b's now, not node-a's. */
	ck_assert_int_eq(metric_wait(mport2, MIRRORED, 0, 10000), 0);
	close(dest);
}
END_TEST

/* --- several nodes: ListSessions of one or all --------------------------- */

static int
count(const char *s, const char *what)
{
	int n = 0;

	for (; (s = strstr(s, what)) != NULL; s++)
		n++;
	return n;
}

START_TEST(list_nodes)
{
	static char		 out[64 * 1024];
	struct rpc_client	*ra, *rb;
	char			 cmd[512], id[32];
	uint16_t		 dport;
	int			 dest, i;

	ck_assert_int_eq(redis_up(), 0);
	/* Two active nodes on one Redis, each with ports of its own. */
	ck_assert_int_eq(harness_conf_set(&d2, "port-range 30000 30199"), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_launch(&d2, 1), 0);
	ra = client_of(&d);
	rb = client_of(&d2);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "ln-a%d", i);
		create(ra, id, dport);
	}
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "ln-b%d", i);
		create(rb, id, dport);
	}
	ck_assert_int_eq(rwait("ln-a2", "v", "1", 5000), 0);
	ck_assert_int_eq(rwait("ln-b4", "v", "1", 5000), 0);

	/* node-a's own, its neighbour's, everyone's; pages of 2. */
	snprintf(cmd, sizeof(cmd), "%s -j -s %s list -a 2>&1",
	    getenv("RTPPROXYCTL"), d.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_int_eq(count(out, "\"session_id\""), 3);
	ck_assert_int_eq(count(out, "\"node-a\""), 3);
	snprintf(cmd, sizeof(cmd), "%s -j -s %s list -a -n 2 --node node-b "
	    "2>&1", getenv("RTPPROXYCTL"), d.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_int_eq(count(out, "\"ln-b"), 5);
	ck_assert_int_eq(count(out, "\"node-b\""), 5);
	snprintf(cmd, sizeof(cmd), "%s -s %s list -a -n 3 --node '*' 2>&1",
	    getenv("RTPPROXYCTL"), d.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "NODE"));
	ck_assert_int_eq(count(out, "ln-a"), 3);
	ck_assert_int_eq(count(out, "ln-b"), 5);
	ck_assert_int_eq(count(out, "node-b"), 5);

	/* Hostile: a name that is none, a token that is not one. */
	snprintf(cmd, sizeof(cmd), "%s -s %s list --node 'a b' 2>&1",
	    getenv("RTPPROXYCTL"), d.grpc);
	ck_assert_int_ne(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "node must be"));
	snprintf(cmd, sizeof(cmd), "%s -s %s list --node node-b -p rx 2>&1",
	    getenv("RTPPROXYCTL"), d.grpc);
	ck_assert_int_ne(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "page_token is not valid"));

	/* Redis gone: refused at once, not waited for. */
	redis_down();
	for (i = 0; i < 200 && harness_log_count(&d, "sessions are written "
	    "again") < 1; i++)
		harness_sleep_ms(50);
	snprintf(cmd, sizeof(cmd), "%s -s %s list --node node-b 2>&1",
	    getenv("RTPPROXYCTL"), d.grpc);
	ck_assert_int_ne(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "not connected to Redis"));
	rpc_client_free(ra);
	rpc_client_free(rb);
	close(dest);
}
END_TEST

/*
 * Pages of another node's (or every node's) sessions with a state
 * filter: all of them once, and every page full but the last.  Returns
 * the number of pages; seen[] counts each id of ids[].
 */
static int
pages(struct rpc_client *c, const char *node, int state, uint32_t size,
    char ids[][32], int *seen, int nids, int *total)
{
	Rtpproxy__ListSessionsRequest	 req =
	    RTPPROXY__LIST_SESSIONS_REQUEST__INIT;
	Rtpproxy__ListSessionsResponse	*resp;
	char				 token[256] = "", det[256];
	size_t				 k;
	int				 np, i, last = 0;

	*total = 0;
	for (np = 0; np < 100 && !last; np++) {
		req.node = (char *)node;
		req.state = (Rtpproxy__SessionState)state;
		req.page_size = size;
		req.page_token = token;
		ck_assert_int_eq(rpc_unary(c, "/rtpproxy.RtpProxy/ListSessions",
		    &req.base, &rtpproxy__list_sessions_response__descriptor,
		    (ProtobufCMessage **)&resp, det, sizeof(det), 20000), 0);
		last = resp->next_page_token[0] == '\0';
		ck_assert_msg(last || resp->n_sessions == size, "page %d of "
		    "%s: %zu sessions, not %u, and more to come", np, node,
		    resp->n_sessions, size);
		ck_assert_uint_le(resp->n_sessions, size);
		for (k = 0; k < resp->n_sessions; k++) {
			ck_assert_int_eq(resp->sessions[k]->state, state);
			for (i = 0; i < nids; i++)
				if (strcmp(ids[i],
				    resp->sessions[k]->session_id) == 0)
					break;
			ck_assert_msg(i < nids, "%s listed",
			    resp->sessions[k]->session_id);
			seen[i]++;
			(*total)++;
		}
		ck_assert_uint_lt(strlen(resp->next_page_token),
		    sizeof(token));
		snprintf(token, sizeof(token), "%s", resp->next_page_token);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	ck_assert(last);
	return np;
}

/* A page_token the daemon must refuse; its status. */
static int
bad_token(struct rpc_client *c, const char *tok, char *det, size_t len)
{
	Rtpproxy__ListSessionsRequest	 req =
	    RTPPROXY__LIST_SESSIONS_REQUEST__INIT;
	Rtpproxy__ListSessionsResponse	*resp = NULL;
	int				 st;

	req.node = (char *)"*";
	req.page_size = 7;
	req.page_token = (char *)tok;
	st = rpc_unary(c, "/rtpproxy.RtpProxy/ListSessions", &req.base,
	    &rtpproxy__list_sessions_response__descriptor,
	    (ProtobufCMessage **)&resp, det, len, 20000);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return st;
}

START_TEST(list_pages)
{
	static char		 ids[30][32], big[400];
	struct rpc_client	*ra, *rb, *c;
	uint8_t			 pkt[64];
	uint16_t		 dport, lport;
	char			 det[256];
	int			 seen[30], dest, caller, i, np, total, want;
	size_t			 n;

	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(harness_conf_set(&d2, "port-range 30000 30199"), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(harness_launch(&d2, 1), 0);
	ra = client_of(&d);
	rb = client_of(&d2);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	ck_assert_int_ge(caller = harness_udp(0, NULL), 0);
	/* 15 on each node; every third one ACTIVE, the others CONNECTING. */
	for (i = 0; i < 30; i++) {
		snprintf(ids[i], sizeof(ids[i]), "pg-%c%02d", i < 15 ? 'a' : 'b',
		    i % 15);
		lport = create(i < 15 ? ra : rb, ids[i], dport);
		if (i % 3 == 0) {
			n = harness_rtp(pkt, 1, 0, 0x55, 20);
			ck_assert_int_eq(harness_send(caller, "127.0.0.1",
			    lport, pkt, n), 0);
		}
	}
	for (i = 0; i < 30; i++)
		ck_assert_int_eq(rwait(ids[i], "state", i % 3 == 0 ? "3" : "2",
		    10000), 0);
	c = ra;

	/* Every node's CONNECTING ones: 20, in pages of 7, 7 and 6. */
	memset(seen, 0, sizeof(seen));
	np = pages(c, "*", 2, 7, ids, seen, 30, &total);
	ck_assert_int_eq(total, 20);
	ck_assert_int_eq(np, 3);
	for (i = 0; i < 30; i++)
		ck_assert_int_eq(seen[i], i % 3 == 0 ? 0 : 1);
	/* node-b's, asked of node-a: 10 in 7 and 3; its ACTIVE ones. */
	memset(seen, 0, sizeof(seen));
	np = pages(c, "node-b", 2, 7, ids, seen, 30, &total);
	ck_assert_int_eq(total, 10);
	ck_assert_int_eq(np, 2);
	for (i = 0; i < 30; i++)
		ck_assert_int_eq(seen[i], i >= 15 && i % 3 != 0);
	memset(seen, 0, sizeof(seen));
	pages(c, "node-b", 3, 2, ids, seen, 30, &total);
	ck_assert_int_eq(total, 5);
	/* Every state, pages of 1: each once. */
	memset(seen, 0, sizeof(seen));
	for (want = 0, i = 0; i < 30; i++)
		want += i % 3 == 0;
	np = pages(c, "*", 3, 1, ids, seen, 30, &total);
	ck_assert_int_eq(total, want);
	ck_assert_int_eq(np, want);

	/* Hostile tokens: refused, and the daemon goes on. */
	memset(big, 'r', sizeof(big) - 1);
	ck_assert_int_eq(bad_token(c, "r", det, sizeof(det)), 3);
	ck_assert_ptr_nonnull(strstr(det, "page_token is not valid"));
	ck_assert_int_eq(bad_token(c, "x12", det, sizeof(det)), 3);
	ck_assert_int_eq(bad_token(c, "r12:bad id", det, sizeof(det)), 3);
	ck_assert_int_eq(bad_token(c, "r99999999999999999999999", det,
	    sizeof(det)), 3);
	ck_assert_int_eq(bad_token(c, "r-1", det, sizeof(det)), 3);
	ck_assert_int_eq(bad_token(c, big, det, sizeof(det)), 3);
	ck_assert_int_eq(bad_token(c, "r12:", det, sizeof(det)), 3);
	/* A cursor Redis never gave: an answer, whatever it is. */
	ck_assert_int_eq(bad_token(c, "r123456", det, sizeof(det)), 0);
	ck_assert(harness_alive(d.pid));
	rpc_client_free(ra);
	rpc_client_free(rb);
	close(dest);
	close(caller);
}
END_TEST

/* --- two hosts, a floating address, keepalived's move --------------------- */

#define NS_NET		"10.77.0"
#define NS_FLOAT	NS_NET ".100"

static int
sh(const char *fmt, ...)
{
	char	cmd[1024];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) == 0 ? 0 : -1;
}

static void
ns_down(void)
{
	int i;

	if (ns_client != -1)
		close(ns_client);
	if (ns_self != -1)
		close(ns_self);
	ns_client = ns_self = -1;
	for (i = 0; i < 3; i++)
		if (ns[i][0] != '\0')
			(void)sh("ip netns del %s 2>/dev/null", ns[i]);
	memset(ns, 0, sizeof(ns));
}

/*
 * node-a (NS_NET.1) and node-b (.2) on a bridge in the clients'
 * namespace (.3, where redis-server, the caller and the destination
 * are); the floating address on node-a.  Each daemon in its namespace
 * through a wrapper, its API on a unix socket.
 */
static void
up_ns(void)
{
	const char	*who[2] = { "a", "b" };
	char		 path[256], line[512], extra[512];
	FILE		*f;
	int		 i, ok = 1;

	signal(SIGPIPE, SIG_IGN);
	if (geteuid() != 0)
		return;
	for (i = 0; i < 3; i++)
		snprintf(ns[i], sizeof(ns[i]), "rpredis-%c-%ld", "abc"[i],
		    (long)getpid());
	for (i = 0; i < 3 && ok; i++)
		ok = sh("ip netns add %s", ns[i]) == 0 &&
		    sh("ip -n %s link set lo up", ns[i]) == 0;
	ok = ok && sh("ip -n %s link add br0 type bridge", ns[2]) == 0 &&
	    sh("ip -n %s link set br0 up", ns[2]) == 0 &&
	    sh("ip -n %s addr add " NS_NET ".3/24 dev br0", ns[2]) == 0;
	for (i = 0; i < 2 && ok; i++)
		ok = sh("ip link add v%s netns %s type veth peer name c%s "
		    "netns %s", who[i], ns[i], who[i], ns[2]) == 0 &&
		    sh("ip -n %s link set c%s master br0 up", ns[2],
		    who[i]) == 0 &&
		    sh("ip -n %s link set v%s up", ns[i], who[i]) == 0 &&
		    sh("ip -n %s addr add " NS_NET ".%d/24 dev v%s", ns[i],
		    i + 1, who[i]) == 0;
	ok = ok && sh("ip -n %s addr add " NS_FLOAT "/24 dev va", ns[0]) == 0;
	if (!ok) {
		fprintf(stderr, "check_redis: cannot build the namespaces\n");
		return;
	}
	snprintf(rhost, sizeof(rhost), NS_NET ".3");
	up_redis(NULL);
	snprintf(extra, sizeof(extra), "redis " NS_NET ".3:%u\n"
	    "redis-prefix t:\nnode-id node-b\nstats-interval 200\n"
	    "standby-for node-a " NS_FLOAT "\n", rport);
	(void)harness_prepare(&d2, 2, extra);
	snprintf(line, sizeof(line), "port-range %u %u", d.port_min,
	    d.port_max);
	(void)harness_conf_set(&d2, line);
	snprintf(line, sizeof(line), "redis " NS_NET ".3:%u", rport);
	(void)harness_conf_set(&d, line);
	(void)harness_conf_set(&d, "metrics-listen none");
	for (i = 0; i < 2; i++) {
		struct daemon *x = i == 0 ? &d : &d2;

		snprintf(line, sizeof(line), "listen unix:%s/api.sock", x->dir);
		(void)harness_conf_set(x, line);
	}
	/* The daemons run in their namespaces through this. */
	snprintf(path, sizeof(path), "%s/netns-wrap", d.dir);
	if ((f = fopen(path, "w")) != NULL) {
		fprintf(f, "#!/bin/sh\nexec ip netns exec \"$RTP_NETNS\" "
		    "\"$@\"\n");
		fclose(f);
		chmod(path, 0755);
	}
	setenv("RTPPROXYD_WRAPPER", path, 1);
}

static void
down_ns(void)
{
	down();
	unsetenv("RTPPROXYD_WRAPPER");
	ns_down();
	snprintf(rhost, sizeof(rhost), "127.0.0.1");
}

static int
launch_in(struct daemon *x, int which)
{
	setenv("RTP_NETNS", ns[which], 1);
	return harness_launch(x, 1);
}

/* A UDP socket of the clients' namespace on addr, any port. */
static int
ns_udp(const char *addr, uint16_t *port)
{
	int fd;

	ns_enter();
	fd = harness_udp_addr(addr, 0, port);
	ns_leave();
	return fd;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(floating)
{
	struct harness_session		 hs = { .id = "fl-1", .laddr = NS_FLOAT,
	    .faddr = NS_FLOAT, .daddr = NS_NET ".3", .nortcp = 1 };
	Rtpproxy__CreateSessionResponse	*resp;
	Rtpproxy__SessionInfo		*si;
	struct rpc_client		*ra, *rb;
	uint8_t				 pkt[256], got[256];
	uint16_t			 lport, fport, cport, dport;
	int64_t				 last = 0, first = 0, moved = 0, t0;
	uint64_t			 before;
	size_t				 n;
	int				 caller, dest, seq = 0, i;
	char				 path[128];

	/* A test that did not run did not pass: the suite runs as root. */
	ck_assert_msg(geteuid() == 0, "floating: needs root for network "
	    "namespaces (README: the tests run as root)");
	ck_assert_str_ne(ns[2], "");
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns[2]);
	ck_assert_int_ge(ns_self = open("/proc/self/ns/net", O_RDONLY), 0);
	ck_assert_int_ge(ns_client = open(path, O_RDONLY), 0);
	ck_assert_int_eq(redis_up(), 0);
	ck_assert_int_eq(launch_in(&d, 0), 0);
	ck_assert_int_eq(launch_in(&d2, 1), 0);
	ck_assert_int_ge(caller = ns_udp(NS_NET ".3", &cport), 0);
	ck_assert_int_ge(dest = ns_udp(NS_NET ".3", &dport), 0);
	ra = client_of(&d);
	hs.dport = dport;
	ck_assert_int_eq(harness_create(ra, &hs, &resp, NULL, 0), RP_OK);
	lport = (uint16_t)resp->session->listen->port;
	fport = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	rpc_client_free(ra);
	/*
	 * node-b mirrors it and binds its ports on the floating address in
	 * advance (IP_FREEBIND: the address is not on node-b yet).
	 */
	for (i = 0; i < 200 && sh("ip netns exec %s ss -Hunl | grep -q "
	    "'" NS_FLOAT ":%u '", ns[1], lport) != 0; i++)
		harness_sleep_ms(50);
	ck_assert_msg(sh("ip netns exec %s ss -Hunl | grep -q '" NS_FLOAT
	    ":%u '", ns[1], lport) == 0, "node-b has not bound %s:%u in "
	    "advance", NS_FLOAT, lport);
	ck_assert_int_eq(sh("ip netns exec %s ss -Hunl | grep -q '" NS_FLOAT
	    ":%u '", ns[1], fport), 0);

	/*
	 * Media every 20 ms; after 50 packets node-a's whole daemon is
	 * killed, and the address moved to node-b as keepalived does (and
	 * its gratuitous ARP: the clients forget node-a's MAC).
	 */
	t0 = harness_now_ms();
	while (harness_now_ms() - t0 < 30000 * harness_slow()) {
		n = harness_rtp(pkt, (uint16_t)seq, (uint32_t)seq * 160,
		    0x55, 100);
		seq++;
		ck_assert_int_eq(harness_send(caller, NS_FLOAT, lport, pkt, n),
		    0);
		/* By sequence: one relayed before the kill may come late. */
		while (harness_recv(dest, got, sizeof(got), 20, NULL) >= 4) {
			if (((got[2] << 8) | got[3]) < 50)
				last = wall_ms();
			else if (first == 0)
				first = wall_ms();
		}
		if (first != 0 && seq > 60)
			break;
		if (seq == 50) {
			kill_daemon(&d);
			ck_assert_int_eq(sh("ip -n %s addr del " NS_FLOAT
			    "/24 dev va", ns[0]), 0);
			ck_assert_int_eq(sh("ip -n %s addr add " NS_FLOAT
			    "/24 dev vb", ns[1]), 0);
			ck_assert_int_eq(sh("ip -n %s neigh flush all",
			    ns[2]), 0);
			moved = wall_ms();
		}
	}
	ck_assert_int_ne(last, 0);
	ck_assert_int_ne(first, 0);
	fprintf(stderr, "check_redis: floating: media gap %lld ms (the "
	    "address moved %lld ms after the last packet before the kill, "
	    "media back %lld ms after the move)\n", (long long)(first - last),
	    (long long)(moved - last), (long long)(first - moved));
	ck_assert_int_eq(harness_log_count(&d2, "floating address " NS_FLOAT
	    " is on this host now: taking over node node-a"), 1);
	ck_assert_int_eq(harness_wait_log(&d2, "session fl-1 resumed (epoch "
	    "2) on its sockets bound in advance", 1, 10000), 0);

	/* The same session on node-b, its latch, its counters going on. */
	rb = client_of(&d2);
	ck_assert_int_eq(harness_status(rb, "fl-1", &si), RP_OK);
	ck_assert_uint_eq(si->listen->port, lport);
	ck_assert_ptr_nonnull(si->latched);
	ck_assert_uint_eq(si->latched->port, cport);
	before = si->forward_stats->packets_received;
	ck_assert_uint_gt(before, 45);
	harness_info_free(si);
	n = harness_rtp(pkt, 900, 0, 0x66, 100);
	ck_assert_int_eq(harness_send(dest, NS_FLOAT, fport, pkt, n), 0);
	ck_assert_int_eq(harness_recv(caller, got, sizeof(got), 3000, NULL),
	    (ssize_t)n);
	ck_assert_int_eq(rwait("fl-1", "node", "node-b", 5000), 0);

	/* Destroyed on node-b: gone; node-a back: nothing comes back. */
	ck_assert_int_eq(harness_destroy(rb, "fl-1"), RP_OK);
	ck_assert_int_eq(rwait("fl-1", "v", "", 5000), 0);
	rpc_client_free(rb);
	ck_assert_int_eq(launch_in(&d, 0), 0);
	ck_assert_int_eq(harness_wait_log(&d, "sessions restored", 2, 10000),
	    0);
	ra = client_of(&d);
	ck_assert_int_ne(harness_status(ra, "fl-1", &si), RP_OK);
	rpc_client_free(ra);
	ck_assert_int_eq(rexists("fl-1"), 0);
	close(caller);
	close(dest);
}
END_TEST

int
main(void)
{
	const TTest *const t_conf[] = { config_keywords, NULL };
	const TTest *const t_wt[] = { write_through, NULL };
	const TTest *const t_out[] = { outage, NULL };
	const TTest *const t_restart[] = { restart, NULL };
	const TTest *const t_rec[] = { rec_restart, NULL };
	const TTest *const t_norec[] = { rec_norecdir, NULL };
	const TTest *const t_rectake[] = { rec_takeover, NULL };
	const TTest *const t_take[] = { takeover, NULL };
	const TTest *const t_tans[] = { takeover_answer, NULL };
	const TTest *const t_mirror[] = { mirror, NULL };
	const TTest *const t_float[] = { floating, NULL };
	const TTest *const t_list[] = { list_nodes, NULL };
	const TTest *const t_pages[] = { list_pages, NULL };
	Suite	*s = suite_create("redis");

	signal(SIGPIPE, SIG_IGN);
	harness_tcase(s, "config", NULL, NULL, 30, t_conf);
	harness_tcase(s, "write-through", up, down, 60, t_wt);
	harness_tcase(s, "outage", up, down, 120, t_out);
	harness_tcase(s, "restart", up, down, 90, t_restart);
	harness_tcase(s, "recording", up_rec, down, 120, t_rec);
	harness_tcase(s, "recording-off", up_rec, down, 90, t_norec);
	harness_tcase(s, "recording-takeover", up_rec_pair, down, 90,
	    t_rectake);
	harness_tcase(s, "takeover", up_pair, down, 90, t_take);
	harness_tcase(s, "takeover-answer", up_pair, down, 120, t_tans);
	harness_tcase(s, "mirror", up_pair, down, 120, t_mirror);
	harness_tcase(s, "list", up_pair, down, 60, t_list);
	harness_tcase(s, "list-pages", up_pair, down, 90, t_pages);
	harness_tcase(s, "floating", up_ns, down_ns, 120, t_float);
	return harness_run_suite(s);
}
