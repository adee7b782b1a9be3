/*
 * A master restart that loses no session, from outside, under load: RTP
 * flows both ways through many sessions and a TCP transfer runs while the
 * master is replaced by SIGUSR2 (rtpproxyd -r), or killed with SIGKILL and
 * started again as systemd's Restart= would.  Every packet must arrive,
 * the counters carry on, the latches hold, the workers are adopted, not
 * restarted; a worker that died with its master has its sessions bound
 * again; a restart that fails leaves the old master running.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
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

#define NSESS		24
#define PPS		100	/* per session and direction */

static struct daemon	d;

static void
up_extra(const char *extra)
{
	signal(SIGPIPE, SIG_IGN);
	if (harness_start(&d, 2, extra) == -1) {
		fprintf(stderr, "check_takeover: the daemon did not start; "
		    "log in %s\n", d.log);
		setenv("RTPPROXYD_KEEP", "1", 1);
	}
}

static uint16_t	mport;

/* With metrics, so that their listener is taken over too. */
static void
up(void)
{
	char extra[64];

	mport = harness_tcp_port();
	snprintf(extra, sizeof(extra), "metrics-listen 127.0.0.1:%u", mport);
	up_extra(extra);
}

/* The status code of GET /metrics, or -1. */
static int
scrape(void)
{
	struct sockaddr_in	sin;
	char			buf[512];
	ssize_t			n;
	int			fd, code = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(mport);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    write(fd, "GET /metrics HTTP/1.0\r\n\r\n", 26) == 26 &&
	    (n = read(fd, buf, sizeof(buf) - 1)) > 12) {
		buf[n] = '\0';
		if (strncmp(buf, "HTTP/1.", 7) == 0)
			code = atoi(buf + 9);
	}
	close(fd);
	return code;
}
static void up_orphan(void) { up_extra("orphan-timeout 1"); }

static void
down(void)
{
	harness_cleanup(&d);
}

static struct rpc_client *
client(void)
{
	struct rpc_client *c;

	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	return c;
}

/* One UDP session and its two peers. */
struct leg {
	char		 id[32];
	int		 caller, dest;
	uint16_t	 lport, fport;
	uint64_t	 sent[2], got[2];	/* 0: forward, 1: reverse */
	uint16_t	 seq[2];
	int		 latched;		/* send reverse media too */
};

static struct leg	legs[NSESS];

static void
legs_open(struct rpc_client *c, int n)
{
	struct harness_session		 a = { .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .nortcp = 1 };
	Rtpproxy__CreateSessionResponse	*resp;
	char				 det[256];
	uint16_t			 dport;
	int				 i;

	for (i = 0; i < n; i++) {
		struct leg *l = &legs[i];

		memset(l, 0, sizeof(*l));
		snprintf(l->id, sizeof(l->id), "leg-%d", i);
		ck_assert_int_ge(l->caller = harness_udp(0, NULL), 0);
		ck_assert_int_ge(l->dest = harness_udp(0, &dport), 0);
		a.id = l->id;
		a.dport = dport;
		ck_assert_msg(harness_create(c, &a, &resp, det, sizeof(det)) ==
		    0, "%s", det);
		l->lport = (uint16_t)resp->session->listen->port;
		l->fport = (uint16_t)resp->session->forward->port;
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		fcntl(l->caller, F_SETFL, O_NONBLOCK);
		fcntl(l->dest, F_SETFL, O_NONBLOCK);
	}
}

static void
legs_close(int n)
{
	int i;

	for (i = 0; i < n; i++) {
		close(legs[i].caller);
		close(legs[i].dest);
	}
}

static void
drain(int n)
{
	uint8_t	b[512];
	int	i;

	for (i = 0; i < n; i++) {
		while (recv(legs[i].dest, b, sizeof(b), 0) > 0) {
			legs[i].got[0]++;
			legs[i].latched = 1;
		}
		while (recv(legs[i].caller, b, sizeof(b), 0) > 0)
			legs[i].got[1]++;
	}
}

/*
 * Send RTP both ways through n sessions at PPS each for ms (reverse only
 * once the caller latched), calling event(arg) at half time.
 */
static void
load(int n, int ms, void (*event)(void *), void *arg)
{
	uint8_t		 b[200];
	int64_t		 start = mono_ms(), t, next = start;
	size_t		 len;
	int		 i, fired = 0;

	while ((t = mono_ms()) < start + ms) {
		if (!fired && t >= start + ms / 2 && event != NULL) {
			event(arg);
			fired = 1;
		}
		if (t >= next) {
			for (i = 0; i < n; i++) {
				struct leg *l = &legs[i];

				len = harness_rtp(b, l->seq[0],
				    l->seq[0] * 160u, 0x1000u + (uint32_t)i,
				    160);
				l->seq[0]++;
				if (harness_send(l->caller, "127.0.0.1",
				    l->lport, b, len) == 0)
					l->sent[0]++;
				if (!l->latched)
					continue;
				len = harness_rtp(b, l->seq[1],
				    l->seq[1] * 160u, 0x2000u + (uint32_t)i,
				    160);
				l->seq[1]++;
				if (harness_send(l->dest, "127.0.0.1",
				    l->fport, b, len) == 0)
					l->sent[1]++;
			}
			next += 1000 / PPS;
		}
		drain(n);
		usleep(1000);
	}
	/*
	 * Stragglers: until every packet sent is in, or 5 s (scaled) have
	 * gone by; a busy machine may hold the worker back for longer than
	 * a fixed wait, and a packet that never comes fails no_loss.
	 */
	for (t = mono_ms(); mono_ms() < t + harness_ms(5000); ) {
		usleep(10000);
		drain(n);
		for (i = 0; i < n; i++)
			if (legs[i].got[0] < legs[i].sent[0] ||
			    legs[i].got[1] < legs[i].sent[1])
				break;
		if (i == n)
			break;
	}
	/* and a moment more for what should not come (duplicates). */
	usleep(30000);
	drain(n);
}

/* Every packet sent arrived, both ways. */
static void
no_loss(int n)
{
	int i;

	for (i = 0; i < n; i++) {
		ck_assert_msg(legs[i].sent[0] > 0 && legs[i].got[0] ==
		    legs[i].sent[0], "%s forward: %llu of %llu", legs[i].id,
		    (unsigned long long)legs[i].got[0],
		    (unsigned long long)legs[i].sent[0]);
		ck_assert_msg(legs[i].sent[1] > 0 && legs[i].got[1] ==
		    legs[i].sent[1], "%s reverse: %llu of %llu", legs[i].id,
		    (unsigned long long)legs[i].got[1],
		    (unsigned long long)legs[i].sent[1]);
	}
}

/* The daemon's counters agree with what went through. */
static void
counters_agree(struct rpc_client *c, int n)
{
	Rtpproxy__SessionInfo	*si;
	int			 i;

	for (i = 0; i < n; i++) {
		ck_assert_int_eq(harness_status(c, legs[i].id, &si), 0);
		ck_assert_uint_eq(si->forward_stats->packets_received,
		    legs[i].sent[0]);
		ck_assert_uint_eq(si->forward_stats->packets_sent,
		    legs[i].got[0]);
		ck_assert_uint_eq(si->reverse_stats->packets_sent,
		    legs[i].got[1]);
		ck_assert_int_eq(si->forward_stats->packets_lost, 0);
		ck_assert_ptr_nonnull(si->latched);
		ck_assert_int_eq(si->state,
		    RTPPROXY__SESSION_STATE__SESSION_STATE_ACTIVE);
		harness_info_free(si);
	}
}

static void
send_usr2(void *arg)
{
	ck_assert_int_eq(kill(*(pid_t *)arg, SIGUSR2), 0);
}

/* A process that is not our child: gone within 5 s? */
static int
gone(pid_t pid)
{
	int i;

	for (i = 0; i < 250 && harness_alive(pid); i++)
		usleep(20000);
	return !harness_alive(pid);
}

/* The new master is up: its pid in the pid file, all workers ready. */
static pid_t
new_master(pid_t old, int ready_lines)
{
	pid_t	now = -1;
	int	i;

	for (i = 0; i < 500; i++) {
		now = harness_pidfile_pid(&d);
		if (now > 0 && now != old && harness_log_count(&d,
		    "all 2 workers ready") >= ready_lines)
			break;
		usleep(20000);
	}
	ck_assert_int_ne(now, old);
	return now;
}

START_TEST(usr2_under_load)
{
	struct rpc_client	*c = client();
	pid_t			 old = d.pid, w0, w1, now;

	legs_open(c, NSESS);
	ck_assert_int_eq(scrape(), 200);
	w0 = harness_worker_pid(&d, 0);
	w1 = harness_worker_pid(&d, 1);
	load(NSESS, 3000, send_usr2, &old);
	now = new_master(old, 2);
	/* The old master handed over and exited. */
	ck_assert(gone(old));
	ck_assert_int_eq(harness_log_count(&d, "handed over to the new "
	    "master"), 1);
	no_loss(NSESS);
	/* The same workers relay on: adopted, not replaced. */
	ck_assert_int_eq(harness_worker_pid(&d, 0), w0);
	ck_assert_int_eq(harness_worker_pid(&d, 1), w1);
	ck_assert_int_ge(harness_log_count(&d, "adopted by the master with "
	    "pid"), 2);
	rpc_client_free(c);
	/* The API and the metrics are the new master's. */
	ck_assert_int_eq(scrape(), 200);
	/* The counters and latches carry on. */
	c = client();
	counters_agree(c, NSESS);
	load(NSESS, 500, NULL, NULL);
	no_loss(NSESS);
	counters_agree(c, NSESS);
	ck_assert_int_eq(harness_destroy(c, legs[0].id), 0);
	ck_assert_int_eq(harness_status(c, legs[0].id, NULL), RP_NOT_FOUND);
	legs_close(NSESS);
	rpc_client_free(c);
	(void)now;
}
END_TEST

static void
kill_master(void *arg)
{
	struct daemon *dd = arg;

	ck_assert_int_eq(kill(dd->pid, SIGKILL), 0);
	ck_assert(gone(dd->pid));
	/* As systemd's Restart= would: the same command again. */
	ck_assert_int_eq(harness_launch(dd, 0), 0);
}

START_TEST(kill9_under_load)
{
	struct rpc_client	*c = client();
	pid_t			 w0 = harness_worker_pid(&d, 0), old = d.pid;

	legs_open(c, NSESS);
	rpc_client_free(c);
	load(NSESS, 3000, kill_master, &d);
	(void)new_master(old, 2);
	/* Relaying never stopped: the workers did not depend on the master. */
	no_loss(NSESS);
	ck_assert_int_eq(harness_worker_pid(&d, 0), w0);
	ck_assert_int_ge(harness_log_count(&d, "was left by a master that is "
	    "gone"), 1);
	c = client();
	counters_agree(c, NSESS);
	load(NSESS, 500, NULL, NULL);
	no_loss(NSESS);
	legs_close(NSESS);
	rpc_client_free(c);
}
END_TEST

/*
 * A master killed while its workers' reports wait unread in its socket
 * (it was stopped while media made the sessions ACTIVE): the workers see
 * ECONNRESET, not the end, on their event socket.  That is their master
 * gone too, not a malformed message: they relay on and are adopted.
 */
START_TEST(kill9_with_reports_unread)
{
	struct rpc_client	*c = client();
	pid_t			 w0 = harness_worker_pid(&d, 0), old = d.pid;
	pid_t			 w1 = harness_worker_pid(&d, 1);
	uint8_t			 b[64];
	size_t			 n;
	int			 i;

	legs_open(c, NSESS);
	rpc_client_free(c);
	ck_assert_int_eq(kill(old, SIGSTOP), 0);
	n = harness_rtp(b, 1, 160, 0x1234, 20);
	for (i = 0; i < NSESS; i++)
		ck_assert_int_eq(harness_send(legs[i].caller, "127.0.0.1",
		    legs[i].lport, b, n), 0);
	usleep(300000);
	/* Relayed while the master was stopped: not load()'s to count. */
	for (i = 0; i < NSESS; i++)
		while (recv(legs[i].dest, b, sizeof(b), 0) > 0)
			;
	ck_assert_int_eq(kill(old, SIGKILL), 0);
	ck_assert(gone(old));
	usleep(300000);
	ck_assert(harness_alive(w0) && harness_alive(w1));
	ck_assert_int_eq(harness_log_count(&d, "malformed message from "
	    "master"), 0);
	ck_assert_int_eq(harness_log_count(&d, "master went away; relaying "
	    "on"), 2);
	ck_assert_int_eq(harness_launch(&d, 0), 0);
	(void)new_master(old, 2);
	ck_assert_int_eq(harness_worker_pid(&d, 0), w0);
	ck_assert_int_eq(harness_worker_pid(&d, 1), w1);
	load(NSESS, 500, NULL, NULL);
	no_loss(NSESS);
	legs_close(NSESS);
}
END_TEST

/* A TCP transfer across a SIGUSR2 restart: not an octet lost. */
START_TEST(tcp_across_usr2)
{
	struct rpc_client	*c = client();
	struct harness_session	 a = { .id = "tcp-up", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .transport = 1 };
	Rtpproxy__CreateSessionResponse *resp;
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	static uint8_t		 buf[65536];
	uint64_t		 total = 32 << 20, sent = 0, got = 0, k;
	pid_t			 old = d.pid;
	int			 l, caller, dest, fired = 0, bad = 0;
	ssize_t			 n;

	ck_assert_int_ge(l = socket(AF_INET, SOCK_STREAM, 0), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(harness_next_port());
	while (bind(l, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		sin.sin_port = htons(harness_next_port());
	ck_assert_int_eq(listen(l, 1), 0);
	getsockname(l, (struct sockaddr *)&sin, &slen);
	a.dport = ntohs(sin.sin_port);
	ck_assert_int_eq(harness_create(c, &a, &resp, NULL, 0), 0);
	sin.sin_port = htons((uint16_t)resp->session->listen->port);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	ck_assert_int_ge(caller = socket(AF_INET, SOCK_STREAM, 0), 0);
	ck_assert_int_eq(connect(caller, (struct sockaddr *)&sin,
	    sizeof(sin)), 0);
	ck_assert_int_ge(dest = accept(l, NULL, NULL), 0);
	fcntl(caller, F_SETFL, O_NONBLOCK);
	fcntl(dest, F_SETFL, O_NONBLOCK);
	while (got < total) {
		struct pollfd pfd[2] = { { caller, POLLOUT, 0 },
		    { dest, POLLIN, 0 } };

		if (!fired && got > total / 3) {
			kill(old, SIGUSR2);
			fired = 1;
		}
		if (sent == total)
			pfd[0].fd = -1;
		ck_assert_int_ge(poll(pfd, 2, 10000), 1);
		if (sent < total && (pfd[0].revents & POLLOUT)) {
			n = (ssize_t)(total - sent < sizeof(buf) ?
			    total - sent : sizeof(buf));
			for (k = 0; k < (uint64_t)n; k++)
				buf[k] = (uint8_t)((sent + k) * 31 / 7);
			if ((n = send(caller, buf, (size_t)n, 0)) > 0)
				sent += (uint64_t)n;
		}
		if (pfd[1].revents & POLLIN) {
			ck_assert_int_gt(n = recv(dest, buf, sizeof(buf), 0),
			    0);
			for (k = 0; k < (uint64_t)n; k++)
				bad += buf[k] != (uint8_t)((got + k) * 31 / 7);
			got += (uint64_t)n;
		}
	}
	ck_assert_int_eq(bad, 0);
	ck_assert_int_eq(fired, 1);
	(void)new_master(old, 2);
	ck_assert(gone(old));
	rpc_client_free(c);
	c = client();
	ck_assert_int_eq(harness_status(c, "tcp-up", NULL), 0);
	ck_assert_int_eq(harness_destroy(c, "tcp-up"), 0);
	close(caller);
	close(dest);
	close(l);
	rpc_client_free(c);
}
END_TEST

/*
 * The master and a worker both die: the worker's sessions are bound
 * again and relay again (what was sent meanwhile is lost with it); the
 * other worker's lose nothing.
 */
START_TEST(master_and_worker_die)
{
	struct rpc_client	*c = client();
	Rtpproxy__SessionInfo	*si;
	pid_t			 old = d.pid;
	int			 i, w0 = 0;

	legs_open(c, 10);
	rpc_client_free(c);
	load(10, 400, NULL, NULL);
	no_loss(10);
	ck_assert_int_eq(kill(old, SIGKILL), 0);
	ck_assert(gone(old));
	ck_assert_int_eq(kill(harness_worker_pid(&d, 0), SIGKILL), 0);
	usleep(200000);
	ck_assert_int_eq(harness_launch(&d, 0), 0);
	(void)new_master(old, 2);
	ck_assert_int_ge(harness_log_count(&d, "sockets bound again"), 1);
	c = client();
	for (i = 0; i < 10; i++) {
		legs[i].sent[0] = legs[i].got[0] = 0;
		legs[i].sent[1] = legs[i].got[1] = 0;
		ck_assert_int_eq(harness_status(c, legs[i].id, &si), 0);
		w0 += si->worker == 0;
		/* The latch is in the table: reverse media flows at once. */
		ck_assert_ptr_nonnull(si->latched);
		harness_info_free(si);
	}
	ck_assert_int_gt(w0, 0);
	/* Every session relays again, both ways. */
	load(10, 600, NULL, NULL);
	no_loss(10);
	legs_close(10);
	rpc_client_free(c);
}
END_TEST

/* A new master that cannot start leaves the old one running. */
START_TEST(failed_restart)
{
	struct rpc_client	*c = client();
	FILE			*f;
	pid_t			 old = d.pid;
	int			 i;

	legs_open(c, 4);
	ck_assert_ptr_nonnull(f = fopen(d.conf, "a"));
	fprintf(f, "this-is-not-a-keyword 1\n");
	fclose(f);
	ck_assert_int_eq(kill(old, SIGUSR2), 0);
	for (i = 0; i < 300 && harness_log_count(&d, "carrying on") == 0;
	    i++)
		usleep(20000);
	ck_assert_int_ge(harness_log_count(&d, "carrying on"), 1);
	ck_assert_int_eq(harness_pidfile_pid(&d), old);
	ck_assert(harness_alive(old));
	load(4, 400, NULL, NULL);
	no_loss(4);
	counters_agree(c, 4);
	legs_close(4);
	rpc_client_free(c);
}
END_TEST

/* rtpproxyd -r: the operator's way to SIGUSR2, waiting for the result. */
START_TEST(restart_command)
{
	struct rpc_client	*c = client();
	char			 cmd[512], out[512];
	pid_t			 old = d.pid;

	legs_open(c, 2);
	rpc_client_free(c);
	snprintf(cmd, sizeof(cmd), "%s -r -c %s 2>&1", getenv("RTPPROXYD"),
	    d.conf);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "took over from") != NULL, "%s", out);
	ck_assert(gone(old));
	c = client();
	load(2, 300, NULL, NULL);
	no_loss(2);
	ck_assert_int_eq(harness_status(c, legs[1].id, NULL), 0);
	legs_close(2);
	rpc_client_free(c);
}
END_TEST

/*
 * rtpproxyd -r when the new master cannot start: it says so as soon as the
 * old master carries on, not after the 3 minutes a takeover may take.  -r
 * reads a copy of the configuration; the old master's own (which the new
 * master reads) has a line no master accepts.
 */
START_TEST(restart_command_fails)
{
	struct rpc_client	*c = client();
	char			 cmd[1024], out[1024], copy[300];
	pid_t			 old = d.pid;
	FILE			*f;

	legs_open(c, 2);
	snprintf(copy, sizeof(copy), "%s/copy.conf", d.dir);
	snprintf(cmd, sizeof(cmd), "cp %s %s", d.conf, copy);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_ptr_nonnull(f = fopen(d.conf, "a"));
	fprintf(f, "this-is-not-a-keyword 1\n");
	fclose(f);
	/* timeout(1): the old code waited 180 s and would end with 124. */
	snprintf(cmd, sizeof(cmd), "timeout %d %s -r -c %s 2>&1",
	    60 * harness_slow(), getenv("RTPPROXYD"), copy);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "gave up before taking over") != NULL,
	    "%s", out);
	ck_assert_int_eq(harness_pidfile_pid(&d), old);
	ck_assert(harness_alive(old));
	load(2, 300, NULL, NULL);
	no_loss(2);
	counters_agree(c, 2);
	legs_close(2);
	rpc_client_free(c);
}
END_TEST

/* Workers that no master adopts stop after orphan-timeout. */
START_TEST(orphans_stop)
{
	pid_t	w0 = harness_worker_pid(&d, 0);
	int	i;

	ck_assert_int_gt(w0, 0);
	ck_assert_int_eq(kill(d.pid, SIGKILL), 0);
	for (i = 0; i < 300 && harness_alive(w0); i++)
		usleep(20000);
	ck_assert(!harness_alive(w0));
	ck_assert_int_ge(harness_log_count(&d, "no master adopted us in "
	    "time"), 1);
}
END_TEST

/*
 * A daemon that switched to an unprivileged user: its successor starts as
 * that user, cannot bind beside a socket root bound, and binds as soon as
 * the old master has let go, before that one has exited (the API's gRPC
 * listeners are gone by then).  Nothing is lost on the media path.
 */
static void
up_user(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (harness_prepare(&d, 2, "user nobody") == -1)
		return;
	/* nobody reads the configuration when it takes over. */
	chmod(d.dir, 0755);
	chmod(d.conf, 0644);
	if (harness_launch(&d, 1) == -1)
		fprintf(stderr, "check_takeover: the daemon did not start; "
		    "log in %s\n", d.log);
}

START_TEST(usr2_as_user)
{
	struct rpc_client	*c = client();
	pid_t			 old = d.pid, w0 = harness_worker_pid(&d, 0);

	legs_open(c, 8);
	rpc_client_free(c);
	load(8, 2000, send_usr2, &old);
	(void)new_master(old, 2);
	no_loss(8);
	ck_assert(gone(old));
	ck_assert_int_ge(harness_log_count(&d, "listening once it lets go"),
	    1);
	ck_assert_int_ge(harness_log_count(&d, "the API listens again; the "
	    "calls wait for the old master"), 1);
	ck_assert_int_eq(harness_worker_pid(&d, 0), w0);
	c = client();
	counters_agree(c, 8);
	legs_close(8);
	rpc_client_free(c);
}
END_TEST

/*
 * Listening as an unprivileged user.  A successor that could not listen
 * where the old master does (a privileged port it has no capability for,
 * a Unix-domain socket in a directory only root may write) must not take
 * over: the old master, and its API, carry on.
 */
static void
up_user_listen(const char *listen)
{
	char line[256];

	signal(SIGPIPE, SIG_IGN);
	if (harness_prepare(&d, 2, "user nobody") == -1)
		return;
	chmod(d.dir, 0755);		/* root's, and nobody may read it */
	chmod(d.conf, 0644);
	snprintf(line, sizeof(line), "listen %s", listen);
	if (harness_conf_set(&d, line) == -1)
		return;
	snprintf(d.grpc, sizeof(d.grpc), "%s", listen);
	if (harness_launch(&d, 1) == -1)
		fprintf(stderr, "check_takeover: the daemon did not start; "
		    "log in %s\n", d.log);
}

/* A free TCP port on 127.0.0.1 below 1024, or 0. */
static uint16_t
low_port(void)
{
	struct sockaddr_in	sin;
	uint16_t		p;
	int			fd, ok;

	for (p = 1000; p > 900; p--) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(p);
		sin.sin_addr.s_addr = htonl(0x7f000001);
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
			return 0;
		ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(fd);
		if (ok)
			return p;
	}
	return 0;
}

static void
up_user_low(void)
{
	char		listen[64];
	uint16_t	p = low_port();

	snprintf(listen, sizeof(listen), "127.0.0.1:%u", p);
	if (p != 0)
		up_user_listen(listen);
}

static char	sock_dir[128];

static void
up_user_unix(void)
{
	char listen[192];

	/* A directory of root's that nobody may not write to. */
	snprintf(sock_dir, sizeof(sock_dir), "/tmp/rtpproxyd-test-run.%ld",
	    (long)getpid());
	mkdir(sock_dir, 0755);
	snprintf(listen, sizeof(listen), "unix:%s/api.sock", sock_dir);
	up_user_listen(listen);
}

static void
down_user_unix(void)
{
	char path[192];

	down();
	snprintf(path, sizeof(path), "%s/api.sock", sock_dir);
	unlink(path);
	rmdir(sock_dir);
}

/* SIGUSR2, the successor refuses for reason, and everything carries on. */
static void
usr2_refused(const char *reason)
{
	struct rpc_client	*c;
	pid_t			 old = d.pid;
	int			 i;

	ck_assert_msg(old > 0, "the daemon did not start; log in %s", d.log);
	c = client();
	legs_open(c, 4);
	ck_assert_int_eq(kill(old, SIGUSR2), 0);
	for (i = 0; i < 300 && harness_log_count(&d, "carrying on") == 0;
	    i++)
		usleep(20000);
	ck_assert_int_ge(harness_log_count(&d, "carrying on"), 1);
	ck_assert_int_ge(harness_log_count(&d, reason), 1);
	ck_assert_int_ge(harness_log_count(&d, "the old master carries on"),
	    1);
	ck_assert_int_eq(harness_pidfile_pid(&d), old);
	ck_assert(harness_alive(old));
	/* Its API still answers, on a new connection too. */
	rpc_client_free(c);
	c = client();
	load(4, 400, NULL, NULL);
	no_loss(4);
	counters_agree(c, 4);
	legs_close(4);
	rpc_client_free(c);
}


/*
 * An API port below 1024 and a user: the master keeps CAP_NET_BIND_SERVICE
 * and nothing else, its workers keep nothing, and a new master (which
 * starts as that user) binds the port again.
 */
START_TEST(usr2_low_port_as_user)
{
	struct rpc_client	*c;
	pid_t			 old = d.pid, now;

	ck_assert_msg(old > 0, "the daemon did not start; log in %s", d.log);
	ck_assert_uint_eq(harness_cap_eff(old), HARNESS_CAP_BIND);
	ck_assert_uint_eq(harness_cap_eff(harness_worker_pid(&d, 0)), 0);
	ck_assert_int_ge(harness_log_count(&d, "with CAP_NET_BIND_SERVICE"),
	    1);
	c = client();
	legs_open(c, 8);
	rpc_client_free(c);
	load(8, 2000, send_usr2, &old);
	now = new_master(old, 2);
	no_loss(8);
	ck_assert(gone(old));
	ck_assert_uint_eq(harness_cap_eff(now), HARNESS_CAP_BIND);
	ck_assert_uint_eq(harness_cap_eff(harness_worker_pid(&d, 0)), 0);
	c = client();
	counters_agree(c, 8);
	legs_close(8);
	rpc_client_free(c);
}
END_TEST

/*
 * A privileged port that the configuration gained since the start: the
 * master did not keep the capability, so its successor could not bind the
 * port and must not take over.
 */
START_TEST(usr2_low_port_added)
{
	char		line[64], api[sizeof(d.grpc)];
	uint16_t	p = low_port();

	ck_assert_uint_ne(p, 0);
	ck_assert_uint_eq(harness_cap_eff(d.pid), 0);
	snprintf(api, sizeof(api), "%s", d.grpc);
	snprintf(line, sizeof(line), "listen 127.0.0.1:%u", p);
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	/* The running master still serves where it started. */
	snprintf(d.grpc, sizeof(d.grpc), "%s", api);
	usr2_refused("is privileged and user nobody may not bind it");
}
END_TEST

/*
 * An API address the new master could never bind (not an address of this
 * host): it must not take over, or nobody would listen.
 */
START_TEST(usr2_unbindable_listen)
{
	char line[64], api[sizeof(d.grpc)];

	snprintf(api, sizeof(api), "%s", d.grpc);
	snprintf(line, sizeof(line), "listen 192.0.2.1:%u", d.grpc_port);
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	snprintf(d.grpc, sizeof(d.grpc), "%s", api);
	usr2_refused("listen 192.0.2.1:");
	ck_assert_int_ge(harness_log_count(&d, "cannot bind it"), 1);
}
END_TEST

START_TEST(usr2_unix_socket_as_user)
{
	usr2_refused("user nobody may not make a socket in");
}
END_TEST

/* --- under a service manager ------------------------------------------ */

static int	notify_fd = -1;

/* A notification socket as systemd's, for the daemons started here. */
static void
up_notify(void)
{
	struct sockaddr_un	sun;
	socklen_t		len;
	char			name[64];
	int			on = 1;

	snprintf(name, sizeof(name), "@rtpproxyd-test-notify-%ld",
	    (long)getpid());
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path + 1, name + 1, strlen(name) - 1);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(name));
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd == -1 || bind(notify_fd, (struct sockaddr *)&sun,
	    len) == -1 || setsockopt(notify_fd, SOL_SOCKET, SO_PASSCRED, &on,
	    sizeof(on)) == -1)
		return;
	setenv("NOTIFY_SOCKET", name, 1);
	up();
	unsetenv("NOTIFY_SOCKET");
}

static void
down_notify(void)
{
	down();
	if (notify_fd != -1)
		close(notify_fd);
}

/*
 * The next notification within ms: its text and sender; a barrier's
 * descriptor is closed, which is how the manager answers one.
 */
static int
notify_next(char *buf, size_t len, pid_t *from, int ms)
{
	union {
		struct cmsghdr	hdr;
		char		b[CMSG_SPACE(sizeof(struct ucred)) +
				    CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct pollfd	 pfd = { .fd = notify_fd, .events = POLLIN };
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*c;
	struct ucred	 cred;
	ssize_t		 n;
	int		 fd;
	size_t		 k;

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = len - 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.b;
	msg.msg_controllen = sizeof(cm.b);
	if ((n = recvmsg(notify_fd, &msg, 0)) < 0)
		return -1;
	buf[n] = '\0';
	*from = 0;
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_type == SCM_CREDENTIALS) {
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			*from = cred.pid;
		} else if (c->cmsg_type == SCM_RIGHTS)
			for (k = 0; k < (c->cmsg_len - CMSG_LEN(0)) /
			    sizeof(int); k++) {
				memcpy(&fd, CMSG_DATA(c) + k * sizeof(int),
				    sizeof(fd));
				close(fd);
			}
	}
	return 0;
}

/* Wait for a notification containing want; its sender. */
static pid_t
notify_wait(const char *want, int ms)
{
	char	buf[256];
	pid_t	from;
	int64_t	end = mono_ms() + ms;

	while (mono_ms() < end)
		if (notify_next(buf, sizeof(buf), &from,
		    (int)(end - mono_ms())) == 0 && strstr(buf, want) != NULL)
			return from;
	ck_abort_msg("no notification %s", want);
	return -1;
}

/*
 * What systemd (Type=notify, KillMode=process) sees: READY; on SIGUSR2
 * the main process names its successor (MAINPID) and waits for the
 * manager to have read it (BARRIER) before it exits; the new one says
 * READY.  After a SIGKILL and a restart, READY again, from the same
 * workers.
 */
START_TEST(service_manager)
{
	pid_t	old = d.pid, now, w0 = harness_worker_pid(&d, 0);

	ck_assert_int_ne(notify_fd, -1);
	ck_assert_int_eq(notify_wait("READY=1", 5000), old);
	ck_assert_int_eq(kill(old, SIGUSR2), 0);
	ck_assert_int_eq(notify_wait("MAINPID=", 10000), old);
	ck_assert_int_eq(notify_wait("BARRIER=1", 5000), old);
	now = notify_wait("READY=1", 10000);
	ck_assert_int_ne(now, old);
	ck_assert_int_ge(harness_log_count(&d, "handed over to the new "
	    "master"), 1);
	ck_assert(gone(old));
	ck_assert_int_eq(harness_pidfile_pid(&d), now);
	ck_assert_int_eq(harness_worker_pid(&d, 0), w0);
}
END_TEST

int
main(void)
{
	const TTest *const t_usr2[] = { usr2_under_load, NULL };
	const TTest *const t_kill[] = { kill9_under_load, NULL };
	const TTest *const t_unread[] = { kill9_with_reports_unread, NULL };
	const TTest *const t_tcp[] = { tcp_across_usr2, NULL };
	const TTest *const t_both[] = { master_and_worker_die, NULL };
	const TTest *const t_fail[] = { failed_restart, NULL };
	const TTest *const t_nobind[] = { usr2_unbindable_listen, NULL };
	const TTest *const t_cmd[] = { restart_command, NULL };
	const TTest *const t_cmdfail[] = { restart_command_fails, NULL };
	const TTest *const t_orphan[] = { orphans_stop, NULL };
	const TTest *const t_notify[] = { service_manager, NULL };
	const TTest *const t_user[] = { usr2_as_user, NULL };
	const TTest *const t_low[] = { usr2_low_port_as_user, NULL };
	const TTest *const t_added[] = { usr2_low_port_added, NULL };
	const TTest *const t_unix[] = { usr2_unix_socket_as_user, NULL };
	Suite	*s = suite_create("takeover");

	signal(SIGPIPE, SIG_IGN);
	harness_tcase(s, "usr2", up, down, 60, t_usr2);
	harness_tcase(s, "kill9", up, down, 60, t_kill);
	harness_tcase(s, "kill9-unread", up, down, 60, t_unread);
	harness_tcase(s, "tcp", up, down, 60, t_tcp);
	harness_tcase(s, "both", up, down, 60, t_both);
	harness_tcase(s, "failed", up, down, 60, t_fail);
	harness_tcase(s, "unbindable", up, down, 60, t_nobind);
	harness_tcase(s, "command", up, down, 60, t_cmd);
	harness_tcase(s, "command-fails", up, down, 90, t_cmdfail);
	harness_tcase(s, "orphans", up_orphan, down, 60, t_orphan);
	harness_tcase(s, "service-manager", up_notify, down_notify, 60,
	    t_notify);
	harness_tcase(s, "user", up_user, down, 60, t_user);
	harness_tcase(s, "user-low-port", up_user_low, down, 60, t_low);
	harness_tcase(s, "user-low-port-added", up_user, down, 60, t_added);
	harness_tcase(s, "user-unix", up_user_unix, down_user_unix, 60, t_unix);
	return harness_run_suite(s);
}
