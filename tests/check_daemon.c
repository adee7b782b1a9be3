/*
 * The real rtpproxyd binary as a process tree: workers start and report
 * ready, a killed worker is respawned, signals stop it cleanly and leave
 * nothing behind.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct daemon d;

static void
teardown(void)
{
	harness_cleanup(&d);
}

static int
shm_exists(const char *name)
{
	char		path[128];
	struct stat	st;

	snprintf(path, sizeof(path), "/dev/shm%s", name);
	return stat(path, &st) == 0;
}

static int
wait_dead(pid_t pid, int ms)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int		waited;

	for (waited = 0; waited < ms * harness_slow(); waited += 10) {
		if (!harness_alive(pid))
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}

START_TEST(test_workers_ready_kill_respawn_stop)
{
	pid_t	w0, w1, w1b, master;
	int	status;

	ck_assert_int_eq(harness_start(&d, 2, NULL), 0);
	master = d.pid;
	ck_assert(shm_exists(d.shm));
	w0 = harness_worker_pid(&d, 0);
	w1 = harness_worker_pid(&d, 1);
	ck_assert_int_gt(w0, 0);
	ck_assert_int_gt(w1, 0);
	ck_assert(harness_alive(w0) && harness_alive(w1));

	/* SIGKILL a worker: logged, respawned with a new generation. */
	ck_assert_int_eq(kill(w1, SIGKILL), 0);
	ck_assert_int_eq(harness_wait_log(&d, "worker 1 ready", 2, 5000), 0);
	ck_assert_int_eq(harness_log_count(&d, "killed by signal 9"), 1);
	w1b = harness_worker_pid(&d, 1);
	ck_assert_int_gt(w1b, 0);
	ck_assert_int_ne(w1b, w1);
	ck_assert(harness_alive(w1b));
	ck_assert(harness_alive(w0));	/* the other one untouched */
	ck_assert_int_eq(harness_worker_pid(&d, 0), w0);

	/* SIGTERM: workers first, shm unlinked, exit 0, nothing left. */
	status = harness_stop(&d, 10000);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(wait_dead(w0, 2000), 0);
	ck_assert_int_eq(wait_dead(w1b, 2000), 0);
	ck_assert(!harness_alive(master));
	ck_assert(!shm_exists(d.shm));
	ck_assert_int_eq(harness_log_count(&d, ") stopped"), 2);
	ck_assert_int_eq(harness_log_count(&d, "]: stopped"), 1);
	ck_assert_int_eq(access(d.pidfile, F_OK), -1);
}
END_TEST

/*
 * A worker that crashes soon after its start, and not on a session's
 * media (SIGABRT while it waits: a fault the master cannot pin on a
 * session), again and again, is started again only after a growing
 * delay.  (SIGKILL is not throttled: it comes from outside.)  SIGABRT,
 * not SIGSEGV: ASan takes a SIGSEGV sent with kill() for a memory error
 * of the daemon's and reports it; the master counts both as crashes.
 */
START_TEST(test_repeated_kills_are_throttled)
{
	struct rlimit	nocore = { 0, 0 };
	pid_t		w;
	int		i;

	ck_assert_int_eq(setrlimit(RLIMIT_CORE, &nocore), 0);
	ck_assert_int_eq(harness_start(&d, 1, NULL), 0);
	/* Kill it as soon as it is back, several times in a row. */
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(harness_wait_log(&d, "worker 0 ready",
		    i + 1, 10000 * harness_slow()), 0);
		w = harness_worker_pid(&d, 0);
		ck_assert_int_eq(kill(w, SIGABRT), 0);
		ck_assert_int_eq(wait_dead(w, 2000 * harness_slow()), 0);
	}
	ck_assert_int_eq(harness_wait_log(&d, "died 4 times in a row", 1,
	    2000 * harness_slow()), 0);
	/* It still comes back in the end. */
	ck_assert_int_eq(harness_wait_log(&d, "worker 0 ready", 5,
	    10000 * harness_slow()), 0);
	ck_assert_int_eq(WEXITSTATUS(harness_stop(&d, 10000)), 0);
}
END_TEST

START_TEST(test_sigint_twice_stops_at_once)
{
	pid_t	w;
	int	status;

	ck_assert_int_eq(harness_start(&d, 1, NULL), 0);
	w = harness_worker_pid(&d, 0);
	kill(d.pid, SIGINT);
	kill(d.pid, SIGINT);
	ck_assert_int_eq(waitpid(d.pid, &status, 0), d.pid);
	d.pid = -1;
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(wait_dead(w, 2000), 0);
	ck_assert(!shm_exists(d.shm));
}
END_TEST

START_TEST(test_second_instance_refused)
{
	struct daemon	 d2;
	char		 cmd[512], out[4096];
	const char	*bin = getenv("RTPPROXYD");

	ck_assert_int_eq(harness_start(&d, 1, NULL), 0);
	/* Same pidfile and shm name, its own API port. */
	ck_assert_int_eq(harness_prepare(&d2, 1, NULL), 0);
	snprintf(cmd, sizeof(cmd), "%s -f -c %s -p %s 2>&1", bin, d2.conf,
	    d.pidfile);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "is locked by pid") != NULL, "%s", out);
	/* Same shm name, no pidfile. */
	snprintf(cmd, sizeof(cmd), "sed -i 's|^shm-name.*|shm-name %s|' %s",
	    d.shm, d2.conf);
	ck_assert_int_eq(harness_run(cmd, NULL, 0), 0);
	snprintf(cmd, sizeof(cmd), "%s -f -c %s -p none 2>&1", bin, d2.conf);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "belongs to a running rtpproxyd") != NULL,
	    "%s", out);
	harness_cleanup(&d2);
	/* The first one is unharmed. */
	ck_assert(harness_alive(d.pid));
	ck_assert(shm_exists(d.shm));
	ck_assert_int_eq(WEXITSTATUS(harness_stop(&d, 10000)), 0);
}
END_TEST

START_TEST(test_check_config_flag)
{
	char		 cmd[512], out[4096];
	const char	*bin = getenv("RTPPROXYD");
	FILE		*f;

	ck_assert_int_eq(harness_prepare(&d, 1, NULL), 0);
	snprintf(cmd, sizeof(cmd), "%s -n -c %s 2>&1", bin, d.conf);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "configuration OK") != NULL, "%s", out);

	f = fopen(d.conf, "a");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "frobnicate yes\n");
	fclose(f);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, d.conf) != NULL && strstr(out, ":10:") !=
	    NULL && strstr(out, "frobnicate") != NULL, "%s", out);

	snprintf(cmd, sizeof(cmd), "%s -n -c %s/missing.conf 2>&1", bin,
	    d.dir);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 1);
	snprintf(cmd, sizeof(cmd), "%s -V", bin);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert(strncmp(out, "rtpproxyd ", 10) == 0);
	snprintf(cmd, sizeof(cmd), "%s -x 2>&1", bin);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 1);
	ck_assert(strstr(out, "usage:") != NULL);
	/* Worker mode is not for people. */
	snprintf(cmd, sizeof(cmd), "%s --worker 0 2>&1", bin);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 1);
}
END_TEST

/* -l replaces every listen line; it is checked as one. */
START_TEST(test_listen_flag)
{
	char		 cmd[512], out[8192];
	const char	*bin = getenv("RTPPROXYD");

	ck_assert_int_eq(harness_prepare(&d, 1, "listen [::1]:50099"), 0);
	snprintf(cmd, sizeof(cmd), "%s -n -v -l '[0:0::1]:0050098' -c %s 2>&1",
	    bin, d.conf);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "\nlisten [0:0::1]:0050098\n") != NULL,
	    "%s", out);
	ck_assert_msg(strstr(out, "\nlisten 127.0.0.1:") == NULL &&
	    strstr(out, "\nlisten [::1]") == NULL, "%s", out);

	snprintf(cmd, sizeof(cmd), "%s -n -l 127.0.0.1 -c %s 2>&1", bin,
	    d.conf);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "-l:1: listen: \"127.0.0.1\": missing "
	    "port") != NULL, "%s", out);
}
END_TEST

static void
put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/*
 * A FIFO where a file is expected is refused at once, with its name:
 * before, open(2) waited for a writer for ever.  timeout(1) turns a hang
 * into a failure.
 */
START_TEST(test_fifo_refused)
{
	char		 cmd[1024], out[4096], fifo[256], line[300];
	const char	*bin = getenv("RTPPROXYD");

	ck_assert_int_eq(harness_prepare(&d, 1, NULL), 0);
	snprintf(fifo, sizeof(fifo), "%s/fifo", d.dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);

	/* As the configuration file. */
	snprintf(cmd, sizeof(cmd), "timeout -s KILL 10 %s -n -c %s 2>&1",
	    bin, fifo);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 1);
	snprintf(line, sizeof(line), "%s: not a regular file", fifo);
	ck_assert_msg(strstr(out, line) != NULL, "%s", out);

	/* As the token file, at start: file:line: what. */
	snprintf(line, sizeof(line), "auth-token-file %s", fifo);
	ck_assert_int_eq(harness_conf_add(&d, line), 0);
	snprintf(cmd, sizeof(cmd), "timeout -s KILL 10 %s -f -c %s 2>&1",
	    bin, d.conf);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 1);
	snprintf(line, sizeof(line), "auth-token-file %s: not a regular file",
	    fifo);
	ck_assert_msg(strstr(out, line) != NULL, "%s", out);
	ck_assert_msg(strstr(out, d.conf) != NULL, "%s", out);

	/* As the pid file. */
	snprintf(line, sizeof(line), "%s/tokens", d.dir);
	put_file(line, "0123456789abcdef0123\n");
	ck_assert_int_eq(chmod(line, 0600), 0);
	snprintf(line, sizeof(line), "auth-token-file %s/tokens", d.dir);
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	snprintf(line, sizeof(line), "pidfile %s", fifo);
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 1);
	snprintf(line, sizeof(line), "pidfile %s: not a regular file", fifo);
	ck_assert_msg(strstr(out, line) != NULL, "%s", out);
	/* rtpproxyd -r reads it too. */
	snprintf(cmd, sizeof(cmd), "timeout -s KILL 10 %s -r -c %s 2>&1",
	    bin, d.conf);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, line) != NULL, "%s", out);
}
END_TEST

/* rtpproxyctl list with the token in the file tok; its exit code. */
static int
ctl_list_token(const char *tok)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "timeout -s KILL 10 %s -s %s "
	    "--token-file %s/%s list", getenv("RTPPROXYCTL"), d.grpc, d.dir,
	    tok);
	return harness_run(cmd, NULL, 0);
}

/*
 * A token file replaced by a FIFO: the reload is refused, the tokens in
 * force stay, the API answers and SIGTERM stops the daemon.  Before, the
 * master blocked in open(2) for good.
 */
START_TEST(test_sighup_fifo_token)
{
	char	tokens[256], line[300];
	int	st;

	ck_assert_int_eq(harness_prepare(&d, 1, NULL), 0);
	snprintf(tokens, sizeof(tokens), "%s/tokens", d.dir);
	put_file(tokens, "0123456789abcdef0123\n");
	ck_assert_int_eq(chmod(tokens, 0600), 0);
	snprintf(line, sizeof(line), "%s/good", d.dir);
	put_file(line, "0123456789abcdef0123\n");
	snprintf(line, sizeof(line), "%s/bad", d.dir);
	put_file(line, "0123456789abcdef0xxx\n");
	snprintf(line, sizeof(line), "auth-token-file %s", tokens);
	ck_assert_int_eq(harness_conf_add(&d, line), 0);
	ck_assert_int_eq(harness_launch(&d, 1), 0);
	ck_assert_int_eq(ctl_list_token("good"), 0);
	ck_assert_int_eq(ctl_list_token("bad"), 16);

	ck_assert_int_eq(unlink(tokens), 0);
	ck_assert_int_eq(mkfifo(tokens, 0600), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	snprintf(line, sizeof(line), "reload refused, running configuration "
	    "kept: %s:", d.conf);
	ck_assert_int_eq(harness_log_count(&d, line), 1);
	snprintf(line, sizeof(line), "auth-token-file %s: not a regular file",
	    tokens);
	ck_assert_int_eq(harness_log_count(&d, line), 1);
	ck_assert_int_eq(ctl_list_token("good"), 0);
	ck_assert_int_eq(ctl_list_token("bad"), 16);
	st = harness_stop(&d, 10000);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "SIGTERM did not stop it: status %#x", st);
}
END_TEST

static pid_t
read_pidfile(const char *path)
{
	FILE	*f;
	long	 pid = -1;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return (pid_t)pid;
}

/* Without -f: the command returns once the daemon serves; pidfile; TERM. */
START_TEST(test_daemonize_pidfile_term)
{
	char		 cmd[512];
	const char	*bin = getenv("RTPPROXYD");
	pid_t		 pid;

	ck_assert_int_eq(harness_prepare(&d, 1, NULL), 0);
	/* fd 9: what a careless parent (a script's lock) leaves open. */
	snprintf(cmd, sizeof(cmd), "%s -c %s 9>%s/inherited", bin, d.conf,
	    d.dir);
	ck_assert_int_eq(harness_run(cmd, NULL, 0), 0);
	/* Ready when the command returned: shm and pidfile are there. */
	pid = read_pidfile(d.pidfile);
	ck_assert_int_gt(pid, 1);
	ck_assert(harness_alive(pid));
	/* It closed what it inherited and did not know. */
	{
		char		 fdd[64], link[400], to[300], want[300];
		struct dirent	*de;
		DIR		*dir;
		ssize_t		 n;

		snprintf(want, sizeof(want), "%s/inherited", d.dir);
		snprintf(fdd, sizeof(fdd), "/proc/%ld/fd", (long)pid);
		ck_assert_ptr_nonnull(dir = opendir(fdd));
		while ((de = readdir(dir)) != NULL) {
			snprintf(link, sizeof(link), "%s/%s", fdd, de->d_name);
			if ((n = readlink(link, to, sizeof(to) - 1)) <= 0)
				continue;
			to[n] = '\0';
			ck_assert_msg(strcmp(to, want) != 0,
			    "the daemon kept inherited fd %s", de->d_name);
		}
		closedir(dir);
	}
	ck_assert(shm_exists(d.shm));
	/* Detached: a session leader of its own, cwd is /. */
	ck_assert_int_eq(getsid(pid), pid);
	{
		char link[64], cwd[64];
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/%ld/cwd", (long)pid);
		n = readlink(link, cwd, sizeof(cwd) - 1);
		ck_assert_int_gt(n, 0);
		cwd[n] = '\0';
		ck_assert_str_eq(cwd, "/");
	}
	/* A second start is refused and names the first. */
	snprintf(cmd, sizeof(cmd), "%s -c %s -l 127.0.0.1:1 2>&1 | "
	    "grep -q 'locked by pid %ld'", bin, d.conf, (long)pid);
	ck_assert_int_eq(harness_run(cmd, NULL, 0), 0);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(wait_dead(pid, 10000), 0);
	ck_assert_int_eq(access(d.pidfile, F_OK), -1);
	ck_assert(!shm_exists(d.shm));
}
END_TEST

/* A daemon that cannot start says so, and the command fails. */
START_TEST(test_daemonize_failure_exit_code)
{
	char		 cmd[512];
	const char	*bin = getenv("RTPPROXYD");
	int		 fd;

	ck_assert_int_eq(harness_prepare(&d, 1, NULL), 0);
	/* Take its API port first. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	{
		struct sockaddr_in sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(d.grpc_port);
		sin.sin_addr.s_addr = htonl(0x7f000001);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin,
		    sizeof(sin)), 0);
		ck_assert_int_eq(listen(fd, 1), 0);
	}
	snprintf(cmd, sizeof(cmd), "%s -c %s", bin, d.conf);
	ck_assert_int_eq(harness_run(cmd, NULL, 0), 1);
	close(fd);
	ck_assert(!shm_exists(d.shm));
}
END_TEST

/*
 * Leave port on 127.0.0.1 as a daemon that closed its connections leaves
 * it: a connection that the listening side closed first and whose client
 * still has its end open (FIN_WAIT2 here; a Prometheus scraper keeps its
 * connection so), and one closed on both sides (TIME_WAIT here).  The
 * listener is gone.  Returns the client's descriptor, to close later.
 */
static int
linger_port(uint16_t port)
{
	struct sockaddr_in	sin;
	int			l, c[2], a, i, on = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(0x7f000001);
	ck_assert_int_ge(l = socket(AF_INET, SOCK_STREAM, 0), 0);
	ck_assert_int_eq(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)), 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(l, 2), 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_ge(c[i] = socket(AF_INET, SOCK_STREAM, 0), 0);
		ck_assert_int_eq(connect(c[i], (struct sockaddr *)&sin,
		    sizeof(sin)), 0);
		ck_assert_int_ge(a = accept(l, NULL, NULL), 0);
		close(a);		/* the listening side first */
	}
	usleep(50000);
	close(c[1]);			/* -> TIME_WAIT on port */
	close(l);
	return c[0];			/* FIN_WAIT2 on port while open */
}

/* GET /metrics on 127.0.0.1:port answers 200. */
static int
metrics_ok(uint16_t port)
{
	static const char	 req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n";
	struct sockaddr_in	 sin;
	char			 buf[64];
	ssize_t			 n;
	int			 fd, ok = 0;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(0x7f000001);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 0;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1 &&
	    (n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		ok = strncmp(buf, "HTTP/1.1 200", 12) == 0;
	}
	close(fd);
	return ok;
}

/*
 * What the last daemon's connections left on the API and metrics ports
 * is no reason to refuse them: the listeners take SO_REUSEADDR, and so
 * must the check for another daemon there, or a restart fails for a
 * minute after a client (a scraper) was connected.
 */
START_TEST(test_ports_with_closed_connections)
{
	char		 cmd[512], line[64], out[4096];
	const char	*bin = getenv("RTPPROXYD");
	uint16_t	 mport;
	int		 c1, c2;
	pid_t		 pid;

	ck_assert_int_eq(harness_prepare(&d, 1, NULL), 0);
	ck_assert_uint_ne(mport = harness_tcp_port(), 0);
	snprintf(line, sizeof(line), "metrics-listen 127.0.0.1:%u", mport);
	ck_assert_int_eq(harness_conf_add(&d, line), 0);
	c1 = linger_port(d.grpc_port);
	c2 = linger_port(mport);
	snprintf(cmd, sizeof(cmd), "ss -Htan '( sport = :%u or sport = :%u )' "
	    "| awk '{ print $1 }' | sort | uniq -c", d.grpc_port, mport);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "FIN-WAIT-2") != NULL &&
	    strstr(out, "TIME-WAIT") != NULL, "not set up: %s", out);
	snprintf(cmd, sizeof(cmd), "%s -c %s 2>&1", bin, d.conf);
	ck_assert_msg(harness_run(cmd, out, sizeof(out)) == 0,
	    "refused: %s", out);
	pid = read_pidfile(d.pidfile);
	ck_assert_int_gt(pid, 1);
	snprintf(cmd, sizeof(cmd), "%s -s %s health 2>&1",
	    getenv("RTPPROXYCTL"), d.grpc);
	ck_assert_msg(harness_run(cmd, out, sizeof(out)) == 0, "%s", out);
	ck_assert_msg(metrics_ok(mport), "no metrics on port %u", mport);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(wait_dead(pid, 10000), 0);
	close(c1);
	close(c2);
}
END_TEST

/* rtpproxyctl -j create ...; returns the bound listen port or 0. */
static uint16_t
ctl_create(const char *id, uint16_t dport)
{
	char		 cmd[512], out[8192], *p;
	const char	*ctl = getenv("RTPPROXYCTL");
	const char	*key = "\"listen\":{\"address\":\"127.0.0.1\",\"port\":";

	snprintf(cmd, sizeof(cmd), "%s -j -s %s create -i %s -l 127.0.0.1:0 "
	    "-d 127.0.0.1:%u", ctl, d.grpc, id, dport);
	if (harness_run(cmd, out, sizeof(out)) != 0 ||
	    (p = strstr(out, key)) == NULL)
		return 0;
	return (uint16_t)strtoul(p + strlen(key), NULL, 10);
}

static int
ctl_status(const char *id)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "%s -s %s status %s",
	    getenv("RTPPROXYCTL"), d.grpc, id);
	return harness_run(cmd, NULL, 0);
}

/* Send n RTP packets caller -> listen port; count those that arrive. */
static int
relay_n(int caller, int dest, uint16_t lport, int n, uint16_t seq0)
{
	unsigned char	pkt[172];
	int		i, got = 0;

	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x80;
	for (i = 0; i < n; i++) {
		pkt[2] = (unsigned char)((seq0 + i) >> 8);
		pkt[3] = (unsigned char)(seq0 + i);
		if (harness_send(caller, "127.0.0.1", lport, pkt,
		    sizeof(pkt)) == -1)
			return -1;
	}
	for (i = 0; i < n; i++)
		if (harness_recv(dest, pkt, sizeof(pkt), 1000, NULL) > 0)
			got++;
	return got;
}

static void
append_conf(const char *line)
{
	FILE *f = fopen(d.conf, "a");

	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", line);
	fclose(f);
}

/*
 * SIGHUP changes a live setting while a session relays; a broken file is
 * refused and the daemon runs on with what it had.
 */
START_TEST(test_sighup_reload)
{
	uint16_t	lport, dport;
	int		caller, dest;

	ck_assert_int_eq(harness_start(&d, 1, NULL), 0);
	ck_assert_int_ge(caller = harness_udp(0, NULL), 0);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	ck_assert_uint_ne(lport = ctl_create("hup-1", dport), 0);
	ck_assert_int_eq(relay_n(caller, dest, lport, 20, 1), 20);

	append_conf("idle-timeout 2");
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	ck_assert_int_eq(harness_wait_log(&d, "configuration reloaded", 1,
	    5000), 0);
	ck_assert(harness_log_count(&d, "idle-timeout 2 s") >= 1);
	/* The session lived through it and still relays. */
	ck_assert_int_eq(ctl_status("hup-1"), 0);
	ck_assert_int_eq(relay_n(caller, dest, lport, 20, 21), 20);
	/* The new idle timeout applies to it: silence closes it. */
	ck_assert_int_eq(harness_wait_log(&d, "session hup-1 closed: idle "
	    "timeout", 1, 6000), 0);
	ck_assert_int_eq(ctl_status("hup-1"), 5);

	/* A broken file: refused, logged, the old configuration stays. */
	ck_assert_uint_ne(lport = ctl_create("hup-2", dport), 0);
	append_conf("setup-timeout 0");
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	ck_assert_int_eq(harness_wait_log(&d, "reload refused", 1, 5000), 0);
	ck_assert(harness_log_count(&d, "setup-timeout: must be 1..86400")
	    >= 1);
	ck_assert(harness_alive(d.pid));
	ck_assert_int_eq(ctl_status("hup-2"), 0);
	ck_assert_int_eq(relay_n(caller, dest, lport, 10, 1), 10);
	ck_assert_int_eq(harness_wait_log(&d, "session hup-2 closed: idle "
	    "timeout", 1, 6000), 0);
	close(caller);
	close(dest);
	ck_assert_int_eq(WEXITSTATUS(harness_stop(&d, 10000)), 0);
}
END_TEST

/* A restart-only setting is logged as such and not applied. */
START_TEST(test_sighup_restart_only)
{
	ck_assert_int_eq(harness_start(&d, 1, NULL), 0);
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "sed -i 's/^workers .*/workers 3/' "
		    "%s", d.conf);
		ck_assert_int_eq(harness_run(cmd, NULL, 0), 0);
	}
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	ck_assert_int_eq(harness_wait_log(&d, "workers changed: needs a "
	    "restart", 1, 5000), 0);
	ck_assert_int_eq(harness_log_count(&d, "worker 2 "), 0);
	ck_assert_int_eq(WEXITSTATUS(harness_stop(&d, 10000)), 0);
}
END_TEST

/*
 * A reload compares the addresses, not their spelling: a listen or
 * metrics-listen line written otherwise changes nothing and says nothing.
 */
START_TEST(test_sighup_listen_spelling)
{
	char		line[128];
	uint16_t	mport = harness_tcp_port();

	snprintf(line, sizeof(line), "metrics-listen 127.0.0.1:%u", mport);
	ck_assert_int_eq(harness_start(&d, 1, line), 0);
	snprintf(line, sizeof(line), "listen 127.0.0.1:0%u", d.grpc_port);
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	snprintf(line, sizeof(line), "metrics-listen 127.0.0.1:00%u", mport);
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_eq(harness_log_count(&d, "configuration reloaded"), 1);
	ck_assert_int_eq(harness_log_count(&d, "listen changed"), 0);

	/* Another port is another address. */
	snprintf(line, sizeof(line), "listen 127.0.0.1:%u",
	    d.grpc_port == 65535 ? 1024 : d.grpc_port + 1);
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_eq(harness_log_count(&d, "reload: listen changed: needs "
	    "a restart"), 1);
	ck_assert_int_eq(harness_log_count(&d, "metrics-listen changed"), 0);
	ck_assert_int_eq(WEXITSTATUS(harness_stop(&d, 10000)), 0);
}
END_TEST

static long
proc_uid(pid_t pid)
{
	char	 path[64], line[256];
	FILE	*f;
	long	 uid = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Uid: %ld", &uid) == 1)
			break;
	fclose(f);
	return uid;
}

/* Started as root with a user: master and workers run as that user. */
START_TEST(test_privilege_drop)
{
	uint16_t	lport, dport;
	int		caller, dest;

	if (geteuid() != 0) {
		/* Dropping privileges needs root; this must not pass. */
		ck_abort_msg("test_privilege_drop must run as root");
	}
	ck_assert_int_eq(harness_start(&d, 1, "user nobody"), 0);
	ck_assert_int_eq(proc_uid(d.pid), 65534);
	ck_assert_int_eq(proc_uid(harness_worker_pid(&d, 0)), 65534);
	/* No capability left: no privileged port to bind again. */
	ck_assert_uint_eq(harness_cap_eff(d.pid), 0);
	ck_assert_uint_eq(harness_cap_eff(harness_worker_pid(&d, 0)), 0);
	ck_assert_int_eq(harness_log_count(&d, "CAP_NET_BIND_SERVICE"), 0);
	/* It still does its job as nobody. */
	ck_assert_int_ge(caller = harness_udp(0, NULL), 0);
	ck_assert_int_ge(dest = harness_udp(0, &dport), 0);
	ck_assert_uint_ne(lport = ctl_create("priv-1", dport), 0);
	ck_assert_int_eq(relay_n(caller, dest, lport, 5, 1), 5);
	close(caller);
	close(dest);
	ck_assert_int_eq(WEXITSTATUS(harness_stop(&d, 10000)), 0);
	ck_assert(!shm_exists(d.shm));
}
END_TEST

/* Run in the foreground on a config with extra; the exit code, its output. */
static int
run_prepared(const char *extra, char *out, size_t len)
{
	char cmd[512];

	ck_assert_int_eq(harness_prepare(&d, 1, extra), 0);
	snprintf(cmd, sizeof(cmd), "%s -f -c %s 2>&1", getenv("RTPPROXYD"),
	    d.conf);
	return harness_run(cmd, out, len);
}

/* A user that cannot be switched to: refuse to run, say why. */
START_TEST(test_privilege_drop_refused)
{
	char out[4096];

	ck_assert_int_eq(run_prepared("user no-such-user-x", out, sizeof(out)),
	    1);
	ck_assert_msg(strstr(out, "user \"no-such-user-x\" does not exist")
	    != NULL, "%s", out);
	ck_assert(!shm_exists(d.shm));
}
END_TEST

/* More sessions than descriptors: refuse, with the numbers. */
START_TEST(test_nofile_refused)
{
	char out[4096];

	ck_assert_int_eq(run_prepared("max-sessions 1000000", out, sizeof(out)),
	    1);
	ck_assert_msg(strstr(out, "need 4001028 file descriptors but "
	    "RLIMIT_NOFILE is") != NULL && strstr(out, "max-sessions") !=
	    NULL, "%s", out);
}
END_TEST

int
main(void)
{
	const TTest *const t[] = { test_workers_ready_kill_respawn_stop,
	    test_repeated_kills_are_throttled, test_sigint_twice_stops_at_once,
	    test_second_instance_refused, test_check_config_flag,
	    test_listen_flag,
	    test_daemonize_pidfile_term, test_daemonize_failure_exit_code,
	    test_ports_with_closed_connections,
	    test_sighup_reload, test_sighup_restart_only,
	    test_sighup_listen_spelling, test_privilege_drop,
	    test_privilege_drop_refused, test_nofile_refused,
	    test_fifo_refused, test_sighup_fifo_token, NULL };
	Suite	*s = suite_create("daemon");

	if (getenv("RTPPROXYD") == NULL)
		setenv("RTPPROXYD", "../src/rtpproxyd", 1);
	tcase_add_checked_fixture(harness_tcase(s, "process", NULL, NULL, 60,
	    t), NULL, teardown);
	return harness_run_suite(s);
}
