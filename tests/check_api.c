/*
 * The API under attack and at its limits, through the real daemon: the
 * HTTP/2 attacks gRPC 1.51 has no defence against (rapid reset, the
 * CONTINUATION flood, sent by tests/h2attack), connections that take the
 * descriptors sessions need, connections that say nothing, and a shutdown
 * with clients connected and calls in flight.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "h2scan.h"
#include "acl.h"
#include "conf.h"
#include "sessions.h"
#include "worker.h"
#include "grpc/health/v1/health.pb-c.h"

#define M_HEALTH	"/grpc.health.v1.Health/Check"
#define PREFACE		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#ifdef __SANITIZE_ADDRESS__
/*
 * ASan keeps up to 256 MB of freed memory in quarantine and adds its
 * shadow: the 200 MB holds for the real build; here the bound
 * only has to tell a bounded master from one that grows by gigabytes.
 */
#define RSS_LIMIT_KB	(640 * 1024)
#else
#define RSS_LIMIT_KB	(200 * 1024)
#endif

static struct daemon	d;

static void
setup(void)
{
	memset(&d, 0, sizeof(d));
	d.pid = -1;
}

static void
teardown(void)
{
	harness_cleanup(&d);
}

static int64_t
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* VmRSS of a process, kB; 0 if it cannot be read. */
static long
rss_kb(pid_t pid)
{
	char	path[64], line[256];
	FILE	*f;
	long	kb = 0;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int
open_fds(pid_t pid)
{
	char		 path[64];
	DIR		*dir;
	struct dirent	*e;
	int		 n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

/* A Health/Check; its gRPC status. */
static int
health(struct rpc_client *c, int ms)
{
	Grpc__Health__V1__HealthCheckRequest	 req =
	    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	ProtobufCMessage			*resp = NULL;
	int					 rc;

	rc = rpc_unary(c, M_HEALTH, &req.base,
	    &grpc__health__v1__health_check_response__descriptor, &resp, NULL,
	    0, ms);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

/* tests/h2attack, started in the background; its output in d.dir. */
static pid_t
attack(const char *out, const char *const *args)
{
	const char	*top = getenv("top_builddir");
	char		 bin[512];
	const char	*argv[16];
	pid_t		 pid;
	int		 i, fd;

	snprintf(bin, sizeof(bin), "%s/tests/h2attack", top != NULL ? top :
	    ".");
	argv[0] = bin;
	for (i = 0; args[i] != NULL && i < 14; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	if ((pid = fork()) == 0) {
		if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644)) != -1) {
			dup2(fd, 1);
			close(fd);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* A TCP connection to the API from a loopback address of its own. */
static int
raw_conn(const char *src, int preface)
{
	struct sockaddr_in	sin;
	static const uint8_t	settings[9] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };
	int			fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, src, &sin.sin_addr);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		goto fail;
	sin.sin_port = htons(d.grpc_port);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		goto fail;
	if (preface && (write(fd, PREFACE, sizeof(PREFACE) - 1) !=
	    (ssize_t)sizeof(PREFACE) - 1 ||
	    write(fd, settings, sizeof(settings)) != sizeof(settings)))
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

/* Has the server closed fd within ms (reading and dropping its frames)? */
static int
closed_within(int fd, int ms)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };
	char		buf[4096];
	int64_t		until = ms_now() + ms;
	ssize_t		n;

	do {
		if (poll(&pfd, 1, (int)(until > ms_now() ? until - ms_now() :
		    0)) < 1)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			return 1;
	} while (ms_now() < until);
	return 0;
}

/* The value of a sample in a scrape of metrics-listen, or -1. */
/* A session from 127.0.0.1 to a local socket: its listen port. */
static uint16_t
relay_session(struct rpc_client *c, const char *id, uint16_t dport)
{
	struct harness_session		 s = { .id = id, .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = dport };
	Rtpproxy__CreateSessionResponse	*r = NULL;
	char				 det[256];
	uint16_t			 port;

	ck_assert_msg(harness_create(c, &s, &r, det, sizeof(det)) == RP_OK,
	    "create: %s", det);
	port = (uint16_t)r->session->listen->port;
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return port;
}

/*
 * One attack from 127.0.0.2 for some seconds, while a session relays and
 * health is asked every 200 ms: the master stays small, health answers
 * within a second each time, no packet is lost, the attacker's
 * connections are closed and the log names it.
 */
static void
under_attack(const char *mode, const char *why, const char *reason)
{
	struct rpc_client	*c, *h;
	char			 out[256], secs[16], port[32], buf[2048];
	const char		*args[12];
	uint8_t			 pkt[200];
	uint16_t		 dport, lport;
	int			 caller, dst, status, rc, sent = 0, got = 0;
	long			 rss, max_rss = 0;
	pid_t			 a;
	int64_t			 t0, worst = 0, t;
	FILE			*f;
	int			 closed = 0;
	uint16_t		 mport;
	char			 conf[64], sample[128];

	ck_assert_int_ne(mport = harness_tcp_port(), 0);
	snprintf(conf, sizeof(conf), "metrics-listen 127.0.0.1:%u", mport);
	ck_assert_int_eq(harness_start(&d, 1, conf), 0);
	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	ck_assert_ptr_nonnull(h = rpc_client_new(d.grpc));
	ck_assert_int_ge(dst = harness_udp(0, &dport), 0);
	ck_assert_int_ge(caller = harness_udp(0, NULL), 0);
	lport = relay_session(c, "victim", dport);

	snprintf(out, sizeof(out), "%s/attack.out", d.dir);
	snprintf(secs, sizeof(secs), "%d", 6);
	snprintf(port, sizeof(port), "127.0.0.1:%u", d.grpc_port);
	args[0] = "-r";
	args[1] = "-b";
	args[2] = "127.0.0.2";
	args[3] = "-t";
	args[4] = secs;
	args[5] = mode;
	args[6] = port;
	args[7] = NULL;
	ck_assert_int_gt(a = attack(out, args), 0);
	t0 = ms_now();
	while (waitpid(a, &status, WNOHANG) == 0 && ms_now() - t0 < 20000) {
		int i;

		for (i = 0; i < 5; i++, sent++) {
			harness_rtp(pkt, (uint16_t)sent, (uint32_t)sent * 160,
			    0x1234, 160);
			harness_send(caller, "127.0.0.1", lport, pkt, 172);
		}
		if ((rss = rss_kb(d.pid)) > max_rss)
			max_rss = rss;
		t = ms_now();
		rc = health(h, 1000 * harness_slow());
		ck_assert_msg(rc == RP_OK, "health during the attack: %d after "
		    "%lld ms", rc, (long long)(ms_now() - t));
		if (ms_now() - t > worst)
			worst = ms_now() - t;
		harness_sleep_ms(200);
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "h2attack did not run");
	/* Every packet sent during the attack got through. */
	while (got < sent && harness_recv(dst, pkt, sizeof(pkt),
	    2000 * harness_slow(), NULL) > 0)
		got++;
	ck_assert_int_eq(got, sent);
	ck_assert_ptr_nonnull(f = fopen(out, "r"));
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	ck_assert_ptr_nonnull(strstr(buf, "closed "));
	closed = atoi(strstr(buf, "closed ") + 7);
	fprintf(stderr, "check_api %s: %s; master RSS at most %ld kB; health "
	    "at worst %lld ms; %d packets relayed\n", mode, buf, max_rss,
	    (long long)worst, got);
	ck_assert_int_ge(closed, 1);
	ck_assert_msg(max_rss < RSS_LIMIT_KB, "master RSS %ld kB", max_rss);
	snprintf(buf, sizeof(buf), "closing the connection from "
	    "ipv4:127.0.0.2:");
	ck_assert_int_ge(harness_log_count(&d, buf), 1);
	ck_assert_int_ge(harness_log_count(&d, why), 1);
	ck_assert_int_eq(health(h, 5000 * harness_slow()), RP_OK);
	snprintf(sample, sizeof(sample), "rtpproxyd_api_connections_closed_"
	    "total{reason=\"%s\"}", reason);
	ck_assert_int_ge(harness_metric(mport, sample), 1);
	rpc_client_free(c);
	rpc_client_free(h);
	close(caller);
	close(dst);
}

START_TEST(rapid_reset)
{
	under_attack("reset", "(rapid reset)", "rapid_reset");
}
END_TEST

START_TEST(continuation_flood)
{
	under_attack("cont", "(CONTINUATION flood)", "header_flood");
}
END_TEST

/* Connections per client and in all are capped; the log says why. */
START_TEST(connection_limits)
{
	struct rpc_client	*h;
	int			 fds[16], extra, i, n = 0;
	char			 src[32];

	ck_assert_int_eq(harness_start(&d, 1, "api-max-connections 12\n"
	    "api-max-connections-per-client 4"), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_ge(fds[n++] = raw_conn("127.0.0.2", 1), 0);
	/* The fifth from the same address is closed at once. */
	ck_assert_int_ge(extra = raw_conn("127.0.0.2", 0), 0);
	ck_assert(closed_within(extra, 3000 * harness_slow()));
	close(extra);
	ck_assert_int_eq(harness_wait_log(&d, "refusing a connection from "
	    "ipv4:127.0.0.2:", 1, 5000), 0);
	ck_assert_int_ge(harness_log_count(&d,
	    "(api-max-connections-per-client)"), 1);
	/* Two more clients fill the daemon up. */
	for (i = 0; i < 8; i++) {
		snprintf(src, sizeof(src), "127.0.0.%d", 3 + i / 4);
		ck_assert_int_ge(fds[n++] = raw_conn(src, 1), 0);
	}
	ck_assert(!closed_within(fds[0], 200));
	ck_assert_int_ge(extra = raw_conn("127.0.0.9", 0), 0);
	ck_assert(closed_within(extra, 3000 * harness_slow()));
	close(extra);
	ck_assert_int_eq(harness_wait_log(&d, "(api-max-connections)", 1,
	    5000), 0);
	/* As connections close, there is room again. */
	for (i = 0; i < n; i++)
		close(fds[i]);
	ck_assert_ptr_nonnull(h = rpc_client_new(d.grpc));
	for (i = 0; i < 50 && health(h, 1000) != RP_OK; i++)
		harness_sleep_ms(100);
	ck_assert_int_eq(health(h, 5000), RP_OK);
	rpc_client_free(h);
}
END_TEST

/*
 * A connection that never says it speaks HTTP/2 is closed after
 * api-handshake-timeout; one that says so and then makes no call, after
 * api-idle-timeout; one with a call open is not.
 */
START_TEST(idle_connections)
{
	struct rpc_client		*c;
	struct rpc_stream		*st;
	Rtpproxy__StreamSessionEventsRequest req =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	int				 silent, quiet, rc;

	ck_assert_int_eq(harness_start(&d, 1, "api-handshake-timeout 1\n"
	    "api-idle-timeout 2"), 0);
	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	ck_assert_ptr_nonnull(st = rpc_stream_open(c,
	    "/rtpproxy.RtpProxy/StreamSessionEvents", &req.base, 0));
	ck_assert_int_ge(silent = raw_conn("127.0.0.2", 0), 0);
	ck_assert_int_ge(quiet = raw_conn("127.0.0.2", 1), 0);
	ck_assert(closed_within(silent, 10000 * harness_slow()));
	ck_assert_int_eq(harness_wait_log(&d, "no HTTP/2 preface in time", 1,
	    5000), 0);
	ck_assert(closed_within(quiet, 15000 * harness_slow()));
	/* The stream is still there: it gets the next event. */
	harness_sleep_ms(1000);
	ck_assert_int_eq(relay_session(c, "after-idle", 5004) != 0, 1);
	{
		ProtobufCMessage *m = NULL;

		rc = rpc_stream_next(st, &rtpproxy__session_event__descriptor,
		    &m, 5000 * harness_slow());
		ck_assert_int_eq(rc, 0);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	rpc_stream_free(st);
	rpc_client_free(c);
	close(silent);
	close(quiet);
}
END_TEST

/*
 * Idle API connections cannot take what sessions need: with the descriptor
 * limit the daemon asks for itself, 400 connections from 16 addresses
 * leave room for every one of max-sessions sessions.
 */
START_TEST(descriptor_reserve)
{
	struct rpc_client	*c;
	struct rlimit		 rl, low;
	char			 src[32], id[32];
	int			 fds[400], n, i, kept = 0;
	uint16_t		 dport;
	int			 dst;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 1024)
		ck_abort_msg("this test needs a hard limit of 1024 "
		    "descriptors at least");
	/* The daemon starts with a small limit and raises it itself. */
	low = rl;
	low.rlim_cur = 64;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	n = harness_start(&d, 1, "max-sessions 40");
	low.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 4096 ?
	    4096 : rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	ck_assert_int_eq(n, 0);
	/* The controller's channel is up before the flood. */
	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	ck_assert_int_eq(health(c, 5000), RP_OK);
	for (n = 0; n < 400; n++) {
		snprintf(src, sizeof(src), "127.0.1.%d", 1 + n % 16);
		ck_assert_int_ge(fds[n] = raw_conn(src, 1), 0);
	}
	harness_sleep_ms(500);
	ck_assert_int_ge(dst = harness_udp(0, &dport), 0);
	for (i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "reserve-%d", i);
		relay_session(c, id, dport);
	}
	for (n = 0; n < 400; n++) {
		if (!closed_within(fds[n], 0))
			kept++;
		close(fds[n]);
	}
	fprintf(stderr, "check_api descriptor_reserve: 40 sessions with %d "
	    "of 400 connections kept open\n", kept);
	ck_assert_int_le(kept, 256);
	close(dst);
	rpc_client_free(c);
}
END_TEST

/* Out of descriptors is RESOURCE_EXHAUSTED with a message, not INTERNAL. */
START_TEST(out_of_descriptors)
{
	struct rpc_client	*c;
	struct harness_session	 s = { .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 5004 };
	struct rlimit		 rl;
	char			 det[256], id[32];
	int			 i, rc = RP_OK, n;

	ck_assert_int_eq(harness_start(&d, 1, NULL), 0);
	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	ck_assert_int_eq(health(c, 5000), RP_OK);
	ck_assert_int_gt(n = open_fds(d.pid), 0);
	rl.rlim_cur = rl.rlim_max = (rlim_t)n + 6;
	ck_assert_int_eq(prlimit(d.pid, RLIMIT_NOFILE, &rl, NULL), 0);
	for (i = 0; i < 10 && rc == RP_OK; i++) {
		snprintf(id, sizeof(id), "fd-%d", i);
		s.id = id;
		rc = harness_create(c, &s, NULL, det, sizeof(det));
	}
	ck_assert_int_eq(rc, RP_RESOURCE_EXHAUSTED);
	ck_assert_msg(strstr(det, "descriptors") != NULL, "details: %s", det);
	rpc_client_free(c);
}
END_TEST

/*
 * SIGTERM with clients connected but no call in flight, as controllers
 * keep their channels: the daemon is gone at once, not after the grace.
 */
START_TEST(stop_with_idle_clients)
{
	struct rpc_client	*c;
	int64_t			 t0;
	int			 raw, status, i;

	ck_assert_int_eq(harness_start(&d, 1, "shutdown-grace 30"), 0);
	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	ck_assert_int_eq(health(c, 5000), RP_OK);
	ck_assert_int_ge(raw = raw_conn("127.0.0.2", 1), 0);
	harness_sleep_ms(200);
	t0 = ms_now();
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	for (i = 0; i < 300; i++) {
		if (waitpid(d.pid, &status, WNOHANG) == d.pid)
			break;
		harness_sleep_ms(20);
	}
	ck_assert_int_lt(i, 300);
	d.pid = -1;
	fprintf(stderr, "check_api stop_with_idle_clients: stopped in %lld "
	    "ms\n", (long long)(ms_now() - t0));
	/* Far below the 30 s grace: nothing was waited for. */
	ck_assert_int_lt(ms_now() - t0, 3000 * harness_slow());
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert(closed_within(raw, 1000));
	close(raw);
	rpc_client_free(c);
}
END_TEST

#define NCALLERS	50

struct caller {
	pthread_t	 t;
	int		 code;		/* the first that is not NOT_FOUND */
	int		 calls;
};

static void *
caller_run(void *arg)
{
	struct caller	*k = arg;
	struct rpc_client *c;
	int64_t		 until = ms_now() + 20000;
	int		 rc;

	k->code = -1;
	if ((c = rpc_client_new(d.grpc)) == NULL)
		return NULL;
	while (ms_now() < until) {
		rc = harness_by_id(c, M_STATUS, "nonesuch", NULL, NULL, NULL,
		    0);
		k->calls++;
		if (rc != RP_NOT_FOUND) {
			k->code = rc;
			break;
		}
	}
	rpc_client_free(c);
	return NULL;
}

/* Calls in flight at SIGTERM end UNAVAILABLE, as documented, never CANCELLED. */
START_TEST(stop_with_calls_in_flight)
{
	struct caller	k[NCALLERS];
	int		i, status, unavailable = 0, calls = 0;

	memset(k, 0, sizeof(k));
	ck_assert_int_eq(harness_start(&d, 1,
	    "api-max-connections-per-client 64"), 0);
	for (i = 0; i < NCALLERS; i++)
		ck_assert_int_eq(pthread_create(&k[i].t, NULL, caller_run,
		    &k[i]), 0);
	harness_sleep_ms(500);
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	for (i = 0; i < NCALLERS; i++) {
		pthread_join(k[i].t, NULL);
		calls += k[i].calls;
		if (k[i].code == RP_UNAVAILABLE)
			unavailable++;
		else
			fprintf(stderr, "check_api: caller %d ended with %d\n",
			    i, k[i].code);
	}
	ck_assert_int_eq(waitpid(d.pid, &status, 0), d.pid);
	d.pid = -1;
	fprintf(stderr, "check_api stop_with_calls_in_flight: %d calls, %d of "
	    "%d callers ended UNAVAILABLE\n", calls, unavailable, NCALLERS);
	ck_assert_int_eq(unavailable, NCALLERS);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

/* --- the scanner alone ------------------------------------------------- */

static size_t
h2frame(uint8_t *p, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
	p[0] = (uint8_t)(len >> 16);
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	p[3] = type;
	p[4] = flags;
	p[5] = (uint8_t)(sid >> 24);
	p[6] = (uint8_t)(sid >> 16);
	p[7] = (uint8_t)(sid >> 8);
	p[8] = (uint8_t)sid;
	memset(p + 9, 0, len);
	return 9 + len;
}

/* Byte by byte or whole, the same; each limit where it is said to be. */
START_TEST(scanner_limits)
{
	struct h2limits	lim = { 1000, 4, 10, 20, 10, 30 };
	struct h2scan	s;
	struct h2rates	one, all;
	uint8_t		buf[65536];
	size_t		n = 0, i;
	enum h2verdict	v = H2_OK;
	uint32_t	sid;

	memcpy(buf, PREFACE, sizeof(PREFACE) - 1);
	n = sizeof(PREFACE) - 1;
	n += h2frame(buf + n, 0, 4, 0, 0);
	for (sid = 1; sid < 2 * 25; sid += 2) {
		n += h2frame(buf + n, 10, 1, 4, sid);
		n += h2frame(buf + n, 4, 3, 0, sid);
	}
	/* 25 resets at one instant: the burst of 20 holds, the 21st not. */
	memset(&one, 0, sizeof(one));
	memset(&all, 0, sizeof(all));
	h2scan_init(&s, &lim);
	for (i = 0; i < n && v == H2_OK; i++)
		v = h2scan_feed(&s, &one, &all, buf + i, 1, 1000);
	ck_assert_int_eq(v, H2_RESET_FLOOD);
	ck_assert_uint_eq(s.resets, 21);
	/* A second later, 10 more are allowed, whatever the connection. */
	h2scan_init(&s, &lim);
	v = h2scan_feed(&s, &one, &all, buf, sizeof(PREFACE) - 1 + 9, 2000);
	ck_assert_int_eq(v, H2_OK);
	for (i = 0; i < 10; i++) {
		n = h2frame(buf, 4, 3, 0, 1);
		ck_assert_int_eq(h2scan_feed(&s, &one, &all, buf, n, 2000),
		    H2_OK);
	}
	ck_assert_int_eq(h2scan_feed(&s, &one, &all, buf, n, 2000),
	    H2_RESET_FLOOD);

	/* A header block: HEADERS and CONTINUATIONs up to 1000 octets. */
	h2scan_init(&s, &lim);
	memcpy(buf, PREFACE, sizeof(PREFACE) - 1);
	n = sizeof(PREFACE) - 1;
	n += h2frame(buf + n, 400, 1, 0, 1);
	n += h2frame(buf + n, 400, 9, 0, 1);
	ck_assert_int_eq(h2scan_feed(&s, NULL, NULL, buf, n, 1000), H2_OK);
	n = h2frame(buf, 201, 9, 0, 1);
	ck_assert_int_eq(h2scan_feed(&s, NULL, NULL, buf, n, 1000),
	    H2_HEADER_FLOOD);
	/* Ended in time, it is fine; and so is the next block. */
	h2scan_init(&s, &lim);
	memcpy(buf, PREFACE, sizeof(PREFACE) - 1);
	n = sizeof(PREFACE) - 1;
	n += h2frame(buf + n, 400, 1, 0, 1);
	n += h2frame(buf + n, 400, 9, 4, 1);
	n += h2frame(buf + n, 400, 1, 0, 3);
	n += h2frame(buf + n, 400, 9, 4, 3);
	ck_assert_int_eq(h2scan_feed(&s, NULL, NULL, buf, n, 1000), H2_OK);
	ck_assert_uint_eq(s.streams, 2);
	ck_assert_uint_eq(s.max_sid, 3);
	/* Not HTTP/2 at all. */
	h2scan_init(&s, &lim);
	ck_assert_int_eq(h2scan_feed(&s, NULL, NULL,
	    (const uint8_t *)"GET / HTTP/1.1\r\n", 16, 1000), H2_NOT_HTTP2);
}
END_TEST

/* The follower stops at the end of each frame, so a GOAWAY fits between. */
START_TEST(scanner_follow)
{
	struct h2frames	f;
	uint8_t		buf[256], g[H2_GOAWAY_LEN];
	size_t		n = 0, k;

	n += h2frame(buf + n, 6, 4, 0, 0);
	n += h2frame(buf + n, 20, 0, 0, 1);
	n += h2frame(buf + n, 0, 4, 1, 0);
	memset(&f, 0, sizeof(f));
	ck_assert(!h2frames_at_boundary(&f));	/* nothing from gRPC yet */
	ck_assert_uint_eq(k = h2frames_follow(&f, buf, 20, 1), 15);
	ck_assert(h2frames_at_boundary(&f));
	ck_assert_uint_eq(h2frames_follow(&f, buf + k, 5, 1), 5);
	ck_assert(!h2frames_at_boundary(&f));
	ck_assert_uint_eq(h2frames_follow(&f, buf + k + 5, n - k - 5, 1), 24);
	ck_assert(h2frames_at_boundary(&f));
	h2_goaway(g, 7);
	ck_assert_uint_eq(g[2], 8);
	ck_assert_uint_eq(g[3], 7);
	ck_assert_uint_eq(g[12], 7);
}
END_TEST

int
main(void)
{
	const TTest *const t_attack[] = { rapid_reset,
	    continuation_flood, NULL };
	const TTest *const t_limits[] = { connection_limits,
	    idle_connections, descriptor_reserve, out_of_descriptors, NULL };
	const TTest *const t_stop[] = { stop_with_idle_clients,
	    stop_with_calls_in_flight, NULL };
	const TTest *const t_scan[] = { scanner_limits, scanner_follow, NULL };
	Suite *s = suite_create("api");

	/* A connection the daemon refuses may be closed before we write. */
	signal(SIGPIPE, SIG_IGN);
	harness_tcase(s, "scanner", NULL, NULL, 30, t_scan);
	harness_tcase(s, "attack", setup, teardown, 90, t_attack);
	harness_tcase(s, "limits", setup, teardown, 90, t_limits);
	harness_tcase(s, "stop", setup, teardown, 90, t_stop);
	return harness_run_suite(s);
}
