#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* An IPv4 or IPv6 literal and a port into ss.  0 or -1. */
static int
parse_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (void *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1 ? 0 :
		    -1;
	} else {
		struct sockaddr_in *sin = (void *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return inet_pton(AF_INET, addr, &sin->sin_addr) == 1 ? 0 : -1;
	}
}

/*
 * A TCP port for a daemon's API: from a range of the harness's own, so
 * that it is neither a test's peer port nor in a daemon's media range
 * (either would make a destination the daemon refuses as its own).
 */
uint16_t
harness_tcp_port(void)
{
	static unsigned		next;
	struct sockaddr_in	sin;
	unsigned		i;
	uint16_t		port = 0;
	int			fd, on = 1;

	if (next == 0)
		next = (unsigned)getpid() * 17;
	for (i = 0; i < 1000 && port == 0; i++) {
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
			return 0;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on));
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin.sin_port = htons((uint16_t)(HARNESS_API_MIN + next++ %
		    (HARNESS_API_MAX - HARNESS_API_MIN + 1)));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			port = ntohs(sin.sin_port);
		close(fd);
	}
	return port;
}

int
harness_slow(void)
{
	const char *s = getenv("RTPPROXYD_SLOW");

	return (s != NULL && *s != '\0' && *s != '0') ? 10 : 1;
}

int
harness_ms(int ms)
{
	return ms * harness_slow();
}

int64_t
harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
harness_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

long long
harness_metric(uint16_t port, const char *sample)
{
	static const char	 req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n";
	static char		 buf[1 << 18];
	struct sockaddr_in	 sin;
	struct pollfd		 pfd;
	const char		*p;
	size_t			 n = 0, slen = strlen(sample);
	ssize_t			 r;
	int64_t			 deadline;
	int			 fd, left;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
		close(fd);
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	deadline = harness_now_ms() + harness_ms(5000);
	while (n < sizeof(buf) - 1 &&
	    (left = (int)(deadline - harness_now_ms())) > 0 &&
	    poll(&pfd, 1, left) == 1 &&
	    (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = '\0';
	if ((p = strstr(buf, "\r\n\r\n")) == NULL)
		return -1;
	for (p += 3; (p = strstr(p, sample)) != NULL; p++)
		if (p[-1] == '\n' && p[slen] == ' ')
			return atoll(p + slen + 1);
	return -1;
}

int
harness_prepare(struct daemon *d, int workers, const char *extra)
{
	static unsigned	 seq;
	FILE		*f;
	unsigned	 base;

	memset(d, 0, sizeof(*d));
	d->pid = -1;
	d->workers = workers;
	snprintf(d->dir, sizeof(d->dir), "/tmp/rtpproxyd-test.XXXXXX");
	if (mkdtemp(d->dir) == NULL)
		return -1;
	snprintf(d->conf, sizeof(d->conf), "%s/rtpproxyd.conf", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/log", d->dir);
	snprintf(d->pidfile, sizeof(d->pidfile), "%s/rtpproxyd.pid", d->dir);
	snprintf(d->shm, sizeof(d->shm), "/rtpproxyd-test-%ld-%u",
	    (long)getpid(), seq++);
	if ((d->grpc_port = harness_tcp_port()) == 0)
		return -1;
	snprintf(d->grpc, sizeof(d->grpc), "127.0.0.1:%u", d->grpc_port);
	/* A media range of its own per test process: 200 ports from 42000. */
	base = HARNESS_MEDIA_MIN + (unsigned)(getpid() * 7 + seq * 211) % 90 *
	    200;
	d->port_min = (uint16_t)base;
	d->port_max = (uint16_t)(base + 199);

	if ((f = fopen(d->conf, "w")) == NULL)
		return -1;
	fprintf(f, "# written by the test harness\n"
	    "listen %s\nworkers %d\nport-range %u %u\nshm-name %s\n"
	    "pidfile %s\nlog-level debug\n",
	    d->grpc, workers, d->port_min, d->port_max, d->shm, d->pidfile);
	/* Fits the descriptor limit of a CI container; a test may set it. */
	if (extra == NULL || strstr(extra, "max-sessions") == NULL)
		fprintf(f, "max-sessions 2000\n");
	/* The tests' peers are on loopback, which is refused by default. */
	if (extra == NULL || strstr(extra, HARNESS_NOALLOW) == NULL)
		fprintf(f, "allow-destination 127.0.0.0/8 ::1\n");
	if (extra != NULL)
		fprintf(f, "%s\n", extra);
	return fclose(f) == 0 ? 0 : -1;
}

/* Replace the line for the key of line ("key value"), or add it. */
int
harness_conf_set(struct daemon *d, const char *line)
{
	char		 buf[8192], out[8192], *p, *nl;
	FILE		*f;
	size_t		 n, o = 0, klen = strcspn(line, " ");
	unsigned	 lo, hi;
	int		 found = 0;

	if ((f = fopen(d->conf, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (p = buf; *p != '\0'; p = nl) {
		if ((nl = strchr(p, '\n')) != NULL)
			nl++;
		else
			nl = p + strlen(p);
		if (strncmp(p, line, klen) == 0 && p[klen] == ' ') {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s\n",
			    line);
			found = 1;
		} else
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%.*s",
			    (int)(nl - p), p);
		if (o >= sizeof(out))
			return -1;
	}
	if (!found)
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s\n", line);
	if (o >= sizeof(out) || (f = fopen(d->conf, "w")) == NULL)
		return -1;
	fputs(out, f);
	if (fclose(f) != 0)
		return -1;
	if (strncmp(line, "listen ", 7) == 0)
		snprintf(d->grpc, sizeof(d->grpc), "%s", line + 7);
	else if (sscanf(line, "port-range %u %u", &lo, &hi) == 2) {
		d->port_min = (uint16_t)lo;
		d->port_max = (uint16_t)hi;
	}
	return 0;
}

int
harness_conf_add(struct daemon *d, const char *line)
{
	FILE *f;

	if ((f = fopen(d->conf, "a")) == NULL)
		return -1;
	fprintf(f, "%s\n", line);
	return fclose(f) == 0 ? 0 : -1;
}

static struct daemon	*harness_cur;	/* the daemon launched last */
static pid_t		 harness_parent; /* the suite's process */
static int		 harness_reports; /* sanitizer or valgrind reports */

static int
harness_launch1(struct daemon *d, int wait_ready)
{
	const char	*bin = getenv("RTPPROXYD");
	const char	*wrap = getenv("RTPPROXYD_WRAPPER");
	char		 want[64];
	int		 fd, waited, status;

	if (bin == NULL)
		bin = "../src/rtpproxyd";
	/* A fixture's daemon: a test's own may live on the test's stack. */
	if (getpid() == harness_parent)
		harness_cur = d;
	d->pid = fork();
	if (d->pid == -1)
		return -1;
	if (d->pid == 0) {
		if ((fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644))
		    == -1)
			_exit(127);
		dup2(fd, 2);
		dup2(fd, 1);
		if (fd > 2)
			close(fd);
		if (wrap != NULL && *wrap != '\0')
			execl(wrap, wrap, bin, "-f", "-c", d->conf,
			    (char *)NULL);
		else
			execl(bin, bin, "-f", "-c", d->conf, (char *)NULL);
		_exit(127);
	}
	if (!wait_ready)
		return 0;
	snprintf(want, sizeof(want), "all %d workers ready", d->workers);
	for (waited = 0; waited < 15000 * harness_slow(); waited += 20) {
		if (harness_log_count(d, want) >= 1)
			return 0;
		/* Dead already: no point in waiting. */
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = -1;
			return -1;
		}
		nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
	}
	return -1;
}

int
harness_start(struct daemon *d, int workers, const char *extra)
{
	if (harness_prepare(d, workers, extra) == -1)
		return -1;
	return harness_launch(d, 1);
}

int
harness_launch(struct daemon *d, int wait_ready)
{
	char	line[64];
	int	tries;

	if (!wait_ready)
		return harness_launch1(d, 0);
	/*
	 * Another test may take the API port between our look and the
	 * daemon's bind: then another port, and again.
	 */
	for (tries = 0; tries < 5; tries++) {
		if (harness_launch1(d, 1) == 0)
			return 0;
		if (d->pid > 0 || harness_log_count(d, "address in use") == 0)
			return -1;
		if ((d->grpc_port = harness_tcp_port()) == 0)
			return -1;
		snprintf(line, sizeof(line), "listen 127.0.0.1:%u",
		    d->grpc_port);
		if (harness_conf_set(d, line) == -1)
			return -1;
		truncate(d->log, 0);
	}
	return -1;
}

int
harness_log_count(struct daemon *d, const char *s)
{
	char	 line[2048];
	FILE	*f;
	int	 n = 0;

	if ((f = fopen(d->log, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, s) != NULL)
			n++;
	fclose(f);
	return n;
}

int
harness_wait_log(struct daemon *d, const char *s, int n, int ms)
{
	struct timespec	ts = { 0, 20 * 1000 * 1000 };
	int		waited = 0;

	for (;;) {
		if (harness_log_count(d, s) >= n)
			return 0;
		if (waited >= ms)
			return -1;
		nanosleep(&ts, NULL);
		waited += 20;
	}
}

int
harness_stop(struct daemon *d, int ms)
{
	struct timespec	ts = { 0, 10 * 1000 * 1000 };
	int		status, waited = 0;
	pid_t		r;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	for (;;) {
		r = waitpid(d->pid, &status, WNOHANG);
		if (r == d->pid) {
			d->pid = -1;
			return status;
		}
		if (r == -1) {
			d->pid = -1;
			return -1;
		}
		if (waited >= ms * harness_slow()) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &status, 0);
			d->pid = -1;
			return -1;
		}
		nanosleep(&ts, NULL);
		waited += 10;
	}
}

pid_t
harness_worker_pid(struct daemon *d, int id)
{
	char	 line[2048], want[64];
	FILE	*f;
	long	 pid = -1;
	char	*p;

	snprintf(want, sizeof(want), "worker %d ready (pid ", id);
	if ((f = fopen(d->log, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if ((p = strstr(line, want)) != NULL)
			pid = strtol(p + strlen(want), NULL, 10);
	fclose(f);
	return (pid_t)pid;
}

int
harness_alive(pid_t pid)
{
	char	 path[64], buf[512], *p;
	FILE	*f;
	int	 alive = 0;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL && p[1] == ' ')
		alive = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return alive;
}

/*
 * A daemon that detached is no child of ours: find it by its pidfile, in
 * the test's own directory, so a failed test leaves no process behind.
 */
static void
harness_kill_detached(struct daemon *d)
{
	struct timespec	 ts = { 0, 10 * 1000 * 1000 };
	FILE		*f;
	long		 pid = -1;
	int		 i;

	if (d->pidfile[0] == '\0' || (f = fopen(d->pidfile, "r")) == NULL)
		return;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	if (pid <= 1 || !harness_alive((pid_t)pid))
		return;
	kill((pid_t)pid, SIGTERM);
	for (i = 0; i < 300 && harness_alive((pid_t)pid); i++)
		nanosleep(&ts, NULL);
	if (harness_alive((pid_t)pid))
		kill((pid_t)pid, SIGKILL);
}

/*
 * Workers of d's table that outlived their master (they wait to be
 * adopted): found by their command line, "rtpproxyd --worker ID GEN SHM".
 */
void
harness_kill_workers(struct daemon *d, int sig)
{
	struct dirent	*de;
	char		 path[300], buf[4096];
	size_t		 n, i, arg, at;
	FILE		*f;
	DIR		*dir;
	long		 pid;

	if (d->shm[0] == '\0' || (dir = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(dir)) != NULL) {
		if ((pid = strtol(de->d_name, NULL, 10)) <= 1)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* "--worker ID GEN SHM", after valgrind's own if wrapped */
		for (i = 0, arg = 0, at = 0; i < n; i += strlen(buf + i) + 1,
		    arg++) {
			if (at == 0 && strcmp(buf + i, "--worker") == 0)
				at = arg;
			else if (at != 0 && arg == at + 3) {
				if (strcmp(buf + i, d->shm) == 0)
					kill((pid_t)pid, sig);
				break;
			}
		}
	}
	closedir(dir);
}

/* The pid in d's pidfile, or -1. */
pid_t
harness_pidfile_pid(struct daemon *d)
{
	FILE	*f;
	long	 pid = -1;

	if ((f = fopen(d->pidfile, "r")) == NULL)
		return -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return (pid_t)pid;
}

/*
 * Did the daemon, its workers or a master after it report memory errors
 * or leaks (ASan, LSan, UBSan, valgrind) in its log?  Such a run fails,
 * whatever its tests said.
 */
static void
harness_check_reports(struct daemon *d)
{
	static const char *const marks[] = { "ERROR: AddressSanitizer",
	    "ERROR: LeakSanitizer", "runtime error:", "== Invalid ",
	    "definitely lost", "indirectly lost", "== Conditional jump",
	    "== Syscall param", "== Use of uninitialised" };
	char	 line[2048];
	FILE	*f;
	size_t	 i;
	int	 found = 0;

	if ((f = fopen(d->log, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
			if (strstr(line, marks[i]) != NULL) {
				if (found++ < 20)
					fprintf(stderr, "harness: %s: %s",
					    d->log, line);
				break;
			}
	fclose(f);
	if (found == 0)
		return;
	setenv("RTPPROXYD_KEEP", "1", 1);
	if (harness_parent != 0 && getpid() != harness_parent)
		ck_abort_msg("the daemon reported memory errors or leaks; "
		    "see %s", d->log);
	harness_reports++;
}

/* The last lines of the daemon's log, on stderr. */
static void
harness_log_tail(const struct daemon *d, int lines)
{
	char	 tail[80][512];
	FILE	*f;
	int	 n = 0, i;

	if (lines > 80)
		lines = 80;
	if ((f = fopen(d->log, "r")) == NULL)
		return;
	while (fgets(tail[n % lines], sizeof(tail[0]), f) != NULL)
		n++;
	fclose(f);
	fprintf(stderr, "harness: the end of %s:\n", d->log);
	for (i = n > lines ? n - lines : 0; i < n; i++)
		fprintf(stderr, "  | %s", tail[i % lines]);
}

void
harness_cleanup(struct daemon *d)
{
	char cmd[256];

	if (d->pid > 0) {
		/* Gracefully if it will (it removes its table), else kill. */
		(void)harness_stop(d, 3000);
		d->pid = -1;
	}
	harness_kill_detached(d);
	/* Workers wait for a new master when theirs is killed: not here. */
	harness_kill_workers(d, SIGKILL);
	harness_check_reports(d);
	/* A killed daemon cannot remove its table: the name is ours. */
	if (d->shm[0] != '\0')
		(void)shm_unlink(d->shm);
	if (harness_cur == d)
		harness_cur = NULL;
	snprintf(cmd, sizeof(cmd), "%s/failed", d->dir);
	if (d->dir[0] != '\0' && access(cmd, F_OK) == 0) {
		harness_log_tail(d, 80);
		fprintf(stderr, "harness: a test failed: kept %s\n", d->dir);
		return;
	}
	if (getenv("RTPPROXYD_KEEP") == NULL && d->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "harness: could not remove %s\n", d->dir);
	}
}

void
harness_sa_loopback(struct sockaddr_storage *ss, socklen_t *len, int v6,
    uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *sin6 = (void *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (void *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
	}
}

uint16_t
harness_sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

int
harness_udp_bind(int v6, uint16_t port)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd;

	harness_sa_loopback(&ss, &len, v6, port != 0 ? port :
	    harness_next_port());
	for (;;) {
		if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0))
		    == -1)
			return -1;
		if (bind(fd, (struct sockaddr *)&ss, len) == 0)
			return fd;
		close(fd);
		/* Port 0 means "any of ours": try the next one. */
		if (port != 0 || errno != EADDRINUSE)
			return -1;
		harness_sa_loopback(&ss, &len, v6, harness_next_port());
	}
}

int
harness_tcp_listen(const char *addr, uint16_t *port)
{
	struct sockaddr_in	sin;
	int			fd, tries;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return -1;
	for (tries = 0; tries < 1000; tries++) {
		if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) ==
		    -1)
			return -1;
		sin.sin_port = htons(harness_next_port());
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		    listen(fd, 8) == 0) {
			*port = ntohs(sin.sin_port);
			return fd;
		}
		close(fd);
		if (errno != EADDRINUSE)
			return -1;
	}
	return -1;
}

/*
 * The ports the tests' own sockets use when any will do: below the media
 * ranges of harness daemons and the kernel's choice, so that a test's
 * peer is never one of a daemon's own ports (which the destination rules
 * refuse) and never takes a port a daemon is about to bind.
 */
uint16_t
harness_next_port(void)
{
	static unsigned next;

	if (next == 0)
		next = (unsigned)getpid() * 61;
	return (uint16_t)(HARNESS_PEER_MIN + next++ % (HARNESS_PEER_MAX -
	    HARNESS_PEER_MIN + 1));
}

/* Is port inside the media port ranges harness_prepare hands out? */
int
harness_media_port(uint16_t port)
{
	return port >= HARNESS_MEDIA_MIN && port <= HARNESS_MEDIA_MAX;
}

uint16_t
harness_fd_port(int fd)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	return harness_sa_port(&ss);
}

int
harness_udp(int v6, uint16_t *port)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	int			 fd;

	if ((fd = harness_udp_bind(v6, 0)) == -1)
		return -1;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		close(fd);
		return -1;
	}
	if (port != NULL)
		*port = harness_sa_port(&ss);
	return fd;
}

ssize_t
harness_recv(int fd, void *buf, size_t len, int ms,
    struct sockaddr_storage *from)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };
	socklen_t	slen = sizeof(*from);

	if (poll(&pfd, 1, ms * harness_slow()) != 1)
		return -1;
	return recvfrom(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)from,
	    from != NULL ? &slen : NULL);
}

int
harness_send(int fd, const char *addr, uint16_t port, const void *buf,
    size_t len)
{
	struct sockaddr_storage	ss;
	socklen_t		slen;

	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (void *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
			return -1;
		slen = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (void *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
			return -1;
		slen = sizeof(*sin);
	}
	return sendto(fd, buf, len, 0, (struct sockaddr *)&ss, slen) ==
	    (ssize_t)len ? 0 : -1;
}

unsigned long long
harness_cap_eff(pid_t pid)
{
	char			 path[64], line[256];
	unsigned long long	 v = ~0ULL;
	FILE			*f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return v;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "CapEff: %llx", &v) == 1)
			break;
	fclose(f);
	return v;
}

int
harness_run(const char *cmd, char *out, size_t len)
{
	FILE	*f;
	size_t	 n = 0, r;
	int	 st;

	if ((f = popen(cmd, "r")) == NULL)
		return -1;
	while (out != NULL && n + 1 < len &&
	    (r = fread(out + n, 1, len - 1 - n, f)) > 0)
		n += r;
	if (out != NULL)
		out[n] = '\0';
	else {
		char buf[512];

		while (fread(buf, 1, sizeof(buf), f) > 0)
			;
	}
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
harness_create(struct rpc_client *c, const struct harness_session *a,
    Rtpproxy__CreateSessionResponse **out, char *det, size_t dlen)
{
	Rtpproxy__CreateSessionRequest	 req =
	    RTPPROXY__CREATE_SESSION_REQUEST__INIT;
	Rtpproxy__Endpoint		 l = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 f = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 d = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__CreateSessionResponse	*resp = NULL;
	char				 dummy[256];
	int				 rc;

	if (det == NULL) {
		det = dummy;
		dlen = sizeof(dummy);
	}
	req.session_id = (char *)(a->id != NULL ? a->id : "");
	if (a->laddr != NULL) {
		l.address = (char *)a->laddr;
		l.port = a->lport;
		req.listen = &l;
	}
	if (a->faddr != NULL) {
		f.address = (char *)a->faddr;
		f.port = a->fport;
		req.forward = &f;
	}
	if (a->daddr != NULL) {
		d.address = (char *)a->daddr;
		d.port = a->dport;
		req.destination = &d;
	}
	req.transport = (Rtpproxy__Transport)a->transport;
	req.unidirectional = a->unidirectional;
	req.disable_rtcp = a->nortcp;
	req.idle_timeout_s = a->idle;
	req.stats_interval_ms = a->stats_ms;
	req.clock_rate = a->clock_rate;
	req.reverse_source = (Rtpproxy__ReverseSource)a->reverse_source;
	req.rate_limit_pps = a->rate_pps;
	req.rate_limit_bps = a->rate_bps;
	req.latch_policy = (Rtpproxy__LatchPolicy)a->latch_policy;
	req.dtmf_payload_type = a->dtmf_pt;
	req.drop_dtmf = a->drop_dtmf != 0;
	rc = rpc_unary(c, M_CREATE, &req.base,
	    &rtpproxy__create_session_response__descriptor,
	    (ProtobufCMessage **)&resp, det, dlen, 10000 * harness_slow());
	if (out != NULL)
		*out = resp;
	else if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

int
harness_by_id(struct rpc_client *c, const char *method, const char *id,
    Rtpproxy__SessionInfo **info, void **resp, char *det, size_t dlen)
{
	Rtpproxy__GetSessionStatusRequest	 req =
	    RTPPROXY__GET_SESSION_STATUS_REQUEST__INIT;
	const ProtobufCMessageDescriptor	*rd;
	ProtobufCMessage			*r = NULL;
	char					 dummy[256];
	int					 rc;

	if (det == NULL) {
		det = dummy;
		dlen = sizeof(dummy);
	}
	/* DestroySessionRequest has the same shape as this one. */
	req.session_id = (char *)id;
	rd = strcmp(method, M_DESTROY) == 0 ?
	    &rtpproxy__destroy_session_response__descriptor :
	    &rtpproxy__get_session_status_response__descriptor;
	rc = rpc_unary(c, method, &req.base, rd, &r, det, dlen,
	    5000 * harness_slow());
	if (info != NULL)
		*info = r != NULL ?
		    ((Rtpproxy__GetSessionStatusResponse *)r)->session : NULL;
	if (resp != NULL)
		*resp = r;
	else if (r != NULL)
		protobuf_c_message_free_unpacked(r, NULL);
	return rc;
}

int
harness_destroy(struct rpc_client *c, const char *id)
{
	return harness_by_id(c, M_DESTROY, id, NULL, NULL, NULL, 0);
}

/*
 * Around each test, in its process: the daemon's directory is marked
 * "failed" when the test starts and unmarked when it passed.  A failed
 * assertion, a crash or a timeout ends the process in between, and the
 * teardown then keeps the directory and shows the end of the log: a rare
 * failure can be told from the daemon's own account of it.
 */
static void
harness_mark(char *path, size_t len)
{
	path[0] = '\0';
	if (harness_cur != NULL && harness_cur->dir[0] != '\0' &&
	    getpid() != harness_parent)
		snprintf(path, len, "%s/failed", harness_cur->dir);
}

static int	harness_marked;		/* this test's process marked it */

static void
harness_test_start(void)
{
	char	 path[256];
	FILE	*f;

	/* Marked already: an earlier test of the case failed. */
	harness_mark(path, sizeof(path));
	if (path[0] == '\0' || access(path, F_OK) == 0)
		return;
	if ((f = fopen(path, "w")) != NULL) {
		fclose(f);
		harness_marked = 1;
	}
}

static void
harness_test_passed(void)
{
	char	path[256];

	harness_mark(path, sizeof(path));
	if (path[0] != '\0' && harness_marked)
		(void)unlink(path);
}

TCase *
harness_tcase(Suite *s, const char *name, void (*setup)(void),
    void (*teardown)(void), int timeout_s, const TTest *const *tests)
{
	TCase *tc = tcase_create(name);

	if (setup != NULL || teardown != NULL)
		tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_checked_fixture(tc, harness_test_start, harness_test_passed);
	tcase_set_timeout(tc, timeout_s * harness_slow());
	for (; *tests != NULL; tests++)
		tcase_add_test(tc, *tests);
	suite_add_tcase(s, tc);
	return tc;
}

void
harness_sweep_tables(void)
{
	struct dirent	*e;
	DIR		*dp;
	char		 name[300];
	long		 pid;

	if ((dp = opendir("/dev/shm")) == NULL)
		return;
	while ((e = readdir(dp)) != NULL) {
		if (sscanf(e->d_name, "rtpproxyd-test-%ld-", &pid) != 1 ||
		    pid <= 1 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(name, sizeof(name), "/%s", e->d_name);
		(void)shm_unlink(name);
	}
	closedir(dp);
}

int
harness_run_suite(Suite *s)
{
	SRunner	*sr = srunner_create(s);
	int	 failed;

	harness_parent = getpid();
	harness_sweep_tables();
	srunner_run_all(sr, CK_NORMAL);
	harness_sweep_tables();
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (harness_reports > 0)
		fprintf(stderr, "harness: %d daemon log(s) with memory errors "
		    "or leaks: failing\n", harness_reports);
	return failed == 0 && harness_reports == 0 ? 0 : 1;
}

int
harness_udp_addr(const char *addr, uint16_t port, uint16_t *bound)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd, tries;

	for (tries = 0; tries < 1000; tries++) {
		if (parse_addr(addr, port != 0 ? port : harness_next_port(),
		    &ss, &len) == -1)
			return -1;
		if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) ==
		    -1)
			return -1;
		if (bind(fd, (struct sockaddr *)&ss, len) == 0) {
			if (bound != NULL)
				*bound = harness_fd_port(fd);
			return fd;
		}
		close(fd);
		if (port != 0 || errno != EADDRINUSE)
			return -1;
	}
	return -1;
}

size_t
harness_rtp(uint8_t *b, uint16_t seq, uint32_t ts, uint32_t ssrc,
    size_t payload)
{
	memset(b, 0, 12 + payload);
	b[0] = 0x80;
	b[1] = 0;		/* PCMU */
	b[2] = seq >> 8;
	b[3] = seq & 0xff;
	b[4] = ts >> 24;
	b[5] = ts >> 16;
	b[6] = ts >> 8;
	b[7] = ts & 0xff;
	b[8] = ssrc >> 24;
	b[9] = ssrc >> 16;
	b[10] = ssrc >> 8;
	b[11] = ssrc & 0xff;
	memset(b + 12, 0xd5, payload);
	return 12 + payload;
}

int
harness_status(struct rpc_client *c, const char *id,
    Rtpproxy__SessionInfo **info)
{
	Rtpproxy__GetSessionStatusResponse	*resp = NULL;
	int					 rc;

	rc = harness_by_id(c, M_STATUS, id, NULL, (void **)&resp, NULL, 0);
	if (info != NULL) {
		*info = NULL;
		if (rc == 0 && resp != NULL) {
			*info = resp->session;
			resp->session = NULL;
		}
	}
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

int
harness_status_counted(struct rpc_client *c, const char *id, uint64_t n,
    Rtpproxy__SessionInfo **info)
{
	int64_t	end = harness_now_ms() + harness_ms(5000);
	int	rc;

	for (;;) {
		if ((rc = harness_status(c, id, info)) != 0)
			return rc;
		if ((*info)->forward_stats == NULL ||
		    (*info)->forward_stats->packets_received >= n ||
		    harness_now_ms() >= end)
			return 0;
		harness_info_free(*info);
		harness_sleep_ms(20);
	}
}

void
harness_info_free(Rtpproxy__SessionInfo *i)
{
	if (i != NULL)
		protobuf_c_message_free_unpacked(&i->base, NULL);
}

int
harness_reload(struct daemon *d)
{
	struct timespec	ts = { 0, 20 * 1000 * 1000 };
	int		before, waited;

	before = harness_log_count(d, "configuration reloaded") +
	    harness_log_count(d, "reload refused");
	if (d->pid <= 0 || kill(d->pid, SIGHUP) == -1)
		return -1;
	for (waited = 0; waited < 10000 * harness_slow(); waited += 20) {
		if (harness_log_count(d, "configuration reloaded") +
		    harness_log_count(d, "reload refused") > before)
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}
