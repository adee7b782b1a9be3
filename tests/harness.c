#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
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

static uint16_t
free_tcp_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd;
	uint16_t		port = 0;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

int
harness_slow(void)
{
	const char *s = getenv("RTPPROXYD_SLOW");

	return (s != NULL && *s != '\0' && *s != '0') ? 10 : 1;
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
	if ((d->grpc_port = free_tcp_port()) == 0)
		return -1;
	snprintf(d->grpc, sizeof(d->grpc), "127.0.0.1:%u", d->grpc_port);
	/* A media range of its own per test process: 200 ports from 42000. */
	base = 42000 + (unsigned)(getpid() * 7 + seq * 211) % 90 * 200;
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
	if (extra != NULL)
		fprintf(f, "%s\n", extra);
	return fclose(f) == 0 ? 0 : -1;
}

int
harness_start(struct daemon *d, int workers, const char *extra)
{
	const char	*bin = getenv("RTPPROXYD");
	const char	*wrap = getenv("RTPPROXYD_WRAPPER");
	char		 want[64];
	int		 fd;

	if (bin == NULL)
		bin = "../src/rtpproxyd";
	if (harness_prepare(d, workers, extra) == -1)
		return -1;
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
	snprintf(want, sizeof(want), "all %d workers ready", workers);
	return harness_wait_log(d, want, 1, 15000 * harness_slow());
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

void
harness_cleanup(struct daemon *d)
{
	char cmd[256];

	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = -1;
	}
	if (getenv("RTPPROXYD_KEEP") == NULL && d->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "harness: could not remove %s\n", d->dir);
	}
}

int
harness_udp(int v6, uint16_t *port)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd;

	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *sin6 = (void *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (void *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	}
	if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		close(fd);
		return -1;
	}
	if (port != NULL)
		*port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port);
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
