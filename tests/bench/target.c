/*
 * The relays under test, started by rtpbench one at a time and pinned to
 * a core of their own: the reference relay (sessions on its stdin) or
 * rtpproxyd with one worker and a configuration written here (sessions
 * over gRPC).  Also what /proc says about processes and cores.
 */
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"
#include "client.h"
#include "rtpproxy.pb-c.h"
#include "bench.h"

#define M_CREATE	"/rtpproxy.RtpProxy/CreateSession"
#define M_HEALTH	"/grpc.health.v1.Health/Check"
#define READY_MS	20000
#define STOP_MS		10000
#define PORT_BASE	10000	/* below the ephemeral ports */

/*
 * Lines added to every configuration rtpbench writes for rtpproxyd, after
 * its own and before those of -o (a line replaces the generated one with
 * the same keyword).  The bench's peers are on loopback, which the daemon
 * refuses as a destination unless told otherwise.
 */
static const char *extra_conf[] = {
	"allow-destination 127.0.0.0/8 ::1",
	NULL
};

static struct target	*live[4];

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ */
/* /proc */

static int
proc_stat(pid_t pid, uint64_t *ticks)
{
	char		 path[64], buf[1024], *p;
	unsigned long	 ut, st;
	FILE		*f;
	int		 ok = 0;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	/* after "pid (comm) ": state ppid pgrp session tty tpgid flags
	 * minflt cminflt majflt cmajflt utime stime */
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%lu %lu", &ut, &st) == 2) {
		*ticks = ut + st;
		ok = 1;
	}
	fclose(f);
	return ok ? 0 : -1;
}

static uint64_t
proc_rss_kb(pid_t pid)
{
	char		 path[64], line[256];
	unsigned long	 kb = 0;
	FILE		*f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static pid_t
proc_ppid(pid_t pid)
{
	char	 path[64], buf[1024], *p;
	long	 ppid = -1;
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL)
		sscanf(p + 2, "%*c %ld", &ppid);
	fclose(f);
	return (pid_t)ppid;
}

/*
 * Nanoseconds every thread of the process spent runnable but waiting for
 * a CPU (/proc/PID/task/TID/schedstat: run, wait, timeslices): another
 * task had the core.
 */
uint64_t
sched_wait_ns(pid_t pid)
{
	char			 path[64];
	unsigned long long	 run, wait;
	struct dirent		*de;
	uint64_t		 sum = 0;
	FILE			*f;
	DIR			*d;

	snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/task/%.16s/schedstat",
		    (long)pid, de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fscanf(f, "%llu %llu", &run, &wait) == 2)
			sum += wait;
		fclose(f);
	}
	closedir(d);
	return sum;
}

/* The process and its children (rtpproxyd's workers). */
void
cpu_sample(pid_t master, struct cpu *c)
{
	char		 path[64];
	FILE		*f;
	DIR		*d;
	struct dirent	*de;
	long		 pid;
	int		 i;

	c->n = 0;
	if (master <= 0)
		return;
	c->pid[c->n++] = master;
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children",
	    (long)master, (long)master);
	if ((f = fopen(path, "r")) != NULL) {
		while (c->n < MAX_PIDS && fscanf(f, "%ld", &pid) == 1)
			c->pid[c->n++] = (pid_t)pid;
		fclose(f);
	} else if ((d = opendir("/proc")) != NULL) {
		/* no CONFIG_PROC_CHILDREN: look at every process */
		while (c->n < MAX_PIDS && (de = readdir(d)) != NULL)
			if ((pid = strtol(de->d_name, NULL, 10)) > 0 &&
			    proc_ppid((pid_t)pid) == master)
				c->pid[c->n++] = (pid_t)pid;
		closedir(d);
	}
	for (i = 0; i < c->n; i++) {
		if (proc_stat(c->pid[i], &c->ticks[i]) == -1)
			c->ticks[i] = 0;
		c->rss_kb[i] = proc_rss_kb(c->pid[i]);
		c->wait_ns[i] = sched_wait_ns(c->pid[i]);
	}
}

/* CPU seconds used between two samples by processes present in both. */
double
cpu_delta(const struct cpu *a, const struct cpu *b, int *gone)
{
	uint64_t	t = 0;
	int		i, j, found;

	*gone = 0;
	for (i = 0; i < b->n; i++) {
		for (j = 0, found = 0; j < a->n; j++)
			if (a->pid[j] == b->pid[i]) {
				t += b->ticks[i] - a->ticks[j];
				found = 1;
			}
		if (!found)
			t += b->ticks[i];	/* a worker restarted */
	}
	for (j = 0; j < a->n; j++) {
		for (i = 0, found = 0; i < b->n; i++)
			if (a->pid[j] == b->pid[i])
				found = 1;
		if (!found)
			(*gone)++;
	}
	return (double)t / (double)sysconf(_SC_CLK_TCK);
}

/* Run-queue wait between two samples, s, of processes in both. */
double
cpu_wait_delta(const struct cpu *a, const struct cpu *b)
{
	uint64_t	t = 0;
	int		i, j;

	for (i = 0; i < b->n; i++)
		for (j = 0; j < a->n; j++)
			if (a->pid[j] == b->pid[i] &&
			    b->wait_ns[i] >= a->wait_ns[j])
				t += b->wait_ns[i] - a->wait_ns[j];
	return (double)t / 1e9;
}

/* One core's line of /proc/stat. */
int
core_sample(int cpu, struct corestat *cs)
{
	unsigned long long	 v[8];
	char			 line[512], want[16];
	FILE			*f;
	int			 ok = -1;

	memset(cs, 0, sizeof(*cs));
	if (cpu < 0 || (f = fopen("/proc/stat", "r")) == NULL)
		return -1;
	snprintf(want, sizeof(want), "cpu%d ", cpu);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, want, strlen(want)) != 0)
			continue;
		/* user nice system idle iowait irq softirq steal */
		if (sscanf(line + strlen(want), "%llu %llu %llu %llu %llu "
		    "%llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
		    &v[5], &v[6], &v[7]) == 8) {
			cs->busy = v[0] + v[1] + v[2] + v[5] + v[6];
			cs->idle = v[3] + v[4];
			cs->steal = v[7];
			ok = 0;
		}
		break;
	}
	fclose(f);
	return ok;
}

/* The busy and stolen share of a core between two samples, 0..1. */
void
core_delta(const struct corestat *a, const struct corestat *b, double *busy,
    double *steal)
{
	double tot = (double)(b->busy - a->busy) + (double)(b->idle -
	    a->idle) + (double)(b->steal - a->steal);

	*busy = tot > 0 ? (double)(b->busy - a->busy) / tot : 0;
	*steal = tot > 0 ? (double)(b->steal - a->steal) / tot : 0;
}

/* Our own CPU seconds, every thread. */
double
self_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int
bench_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* ------------------------------------------------------------------ */

static uint16_t
free_tcp_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd;
	uint16_t		port = 0;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
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

static void
path_in(const struct target *t, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", t->dir, name);
}

static void
log_tail(const struct target *t)
{
	char	 path[128], line[512];
	FILE	*f;
	long	 n = 0, skip;

	path_in(t, "log", path, sizeof(path));
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		n++;
	rewind(f);
	skip = n > 20 ? n - 20 : 0;
	fprintf(stderr, "rtpbench: the last lines of %s's log:\n", t->name);
	for (n = 0; fgets(line, sizeof(line), f) != NULL; n++)
		if (n >= skip)
			fprintf(stderr, "    %s", line);
	fclose(f);
}

static int
log_has(const struct target *t, const char *s)
{
	char	 path[128], line[1024];
	FILE	*f;
	int	 found = 0;

	path_in(t, "log", path, sizeof(path));
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, s) != NULL;
	fclose(f);
	return found;
}

/* "key ..." lines: a later line with the same key replaces the earlier. */
static int
conf_put(const char **lines, int n, const char *line)
{
	size_t	klen = strcspn(line, " \t");
	int	i;

	if (strncmp(line, "listen", klen) != 0 || klen != 6)
		for (i = 0; i < n; i++)
			if (strncmp(lines[i], line, klen) == 0 &&
			    (lines[i][klen] == ' ' || lines[i][klen] == '\t')) {
				lines[i] = line;
				return n;
			}
	if (n < MAX_CONF_LINES * 2)
		lines[n++] = line;
	return n;
}

static int
write_conf(struct target *t, const struct bopts *o, int sessions)
{
	const char	*lines[MAX_CONF_LINES * 2];
	char		 gen[10][160], path[128];
	unsigned	 hi;
	FILE		*f;
	int		 n = 0, i, g = 0, found = 0;
	uint16_t	 port;

	if ((port = free_tcp_port()) == 0)
		return -1;
	snprintf(t->server, sizeof(t->server), "127.0.0.1:%u", port);
	/* two port pairs a session (RTCP off), and some to spare */
	hi = PORT_BASE + 4 * (unsigned)sessions + 400 - 1;
	if (hi > 65535)
		hi = 65535;
	snprintf(gen[g++], sizeof(gen[0]), "listen %s", t->server);
	snprintf(gen[g++], sizeof(gen[0]), "workers 1");
	snprintf(gen[g++], sizeof(gen[0]), "port-range %u %u", PORT_BASE, hi);
	snprintf(gen[g++], sizeof(gen[0]), "max-sessions %d", sessions + 16);
	snprintf(gen[g++], sizeof(gen[0]), "idle-timeout 3600");
	snprintf(gen[g++], sizeof(gen[0]), "setup-timeout 3600");
	snprintf(gen[g++], sizeof(gen[0]), "log-level warning");
	snprintf(gen[g++], sizeof(gen[0]), "pidfile %s/rtpproxyd.pid",
	    t->dir);
	snprintf(gen[g++], sizeof(gen[0]), "shm-name %s", t->shm);
	/* -W: the recordings go to the scratch directory, and go with it */
	if (o->record) {
		snprintf(gen[g++], sizeof(gen[0]), "recording-dir %s/rec",
		    t->dir);
		path_in(t, "rec", path, sizeof(path));
		if (mkdir(path, 0700) == -1)
			return -1;
		t->record = 1;
	}
	for (i = 0; i < g; i++)
		n = conf_put(lines, n, gen[i]);
	for (i = 0; extra_conf[i] != NULL; i++)
		n = conf_put(lines, n, extra_conf[i]);
	for (i = 0; i < o->nconf; i++)
		n = conf_put(lines, n, o->conf[i]);

	path_in(t, "rtpproxyd.conf", path, sizeof(path));
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "# written by rtpbench\n");
	for (i = 0; i < n; i++) {
		fprintf(f, "%s\n", lines[i]);
		/* the API rtpbench talks to: the first listen */
		if (!found && strncmp(lines[i], "listen ", 7) == 0) {
			snprintf(t->server, sizeof(t->server), "%s",
			    lines[i] + 7);
			found = 1;
		}
	}
	return fclose(f) == 0 ? 0 : -1;
}

/* fork + exec, pinned to cpu, in its own process group. */
static pid_t
spawn(struct target *t, char *const argv[], int in, int out)
{
	char	path[128];
	pid_t	pid, parent = getpid();
	int	logfd;

	path_in(t, "log", path, sizeof(path));
	if ((logfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0644)) == -1)
		return -1;
	if ((pid = fork()) == -1) {
		close(logfd);
		return -1;
	}
	if (pid == 0) {
		/* if rtpbench dies, so does the relay */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		if (t->cpu >= 0 && bench_pin(t->cpu) == -1) {
			dprintf(logfd, "rtpbench: cannot pin to CPU %d: %s\n",
			    t->cpu, strerror(errno));
			_exit(126);
		}
		if (in == -1)
			in = open("/dev/null", O_RDONLY);
		if (out == -1)
			out = logfd;
		if (dup2(in, 0) == -1 || dup2(out, 1) == -1 ||
		    dup2(logfd, 2) == -1)
			_exit(127);
		execv(argv[0], argv);
		dprintf(2, "rtpbench: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(logfd);
	return pid;
}

/*
 * Does the API accept a connection yet?  Asked without gRPC: a channel
 * whose first connection was refused waits seconds before it tries again.
 */
static int
api_accepts(const char *server)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_un	 sun;
	socklen_t		 len;
	char			 host[128], *p;
	uint32_t		 port;
	int			 fd, rc;

	if (strncmp(server, "unix:", 5) == 0) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", server + 5);
		memcpy(&ss, &sun, sizeof(sun));
		len = sizeof(sun);
	} else {
		snprintf(host, sizeof(host), "%s", server);
		if ((p = strrchr(host, ':')) == NULL ||
		    parse_u32(p + 1, 1, 65535, &port) == -1)
			return 1;	/* let gRPC say what is wrong */
		*p = '\0';
		p = host;
		if (*p == '[' && p[strlen(p) - 1] == ']') {
			p[strlen(p) - 1] = '\0';
			p++;
		}
		if (strcmp(p, "localhost") == 0)
			p = (char *)"127.0.0.1";
		if (parse_ip(p, (uint16_t)port, &ss, &len) == -1)
			return 1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	rc = connect(fd, (struct sockaddr *)&ss, len) == 0;
	close(fd);
	return rc;
}

/* Wait for rtpproxyd to answer a health check. */
static int
rtpp_wait_ready(struct target *t)
{
	struct cpu	 c;
	char		 details[128];
	void		*resp = NULL;
	size_t		 len;
	int64_t		 until = mono_ns() + (int64_t)READY_MS * 1000000;
	int		 status, rc;

	while (mono_ns() < until && !bench_stop) {
		if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
			t->pid = -1;
			fprintf(stderr, "rtpbench: %s exited at start\n",
			    t->name);
			log_tail(t);
			return -1;
		}
		/* Its readiness line is at log level info; health is not. */
		if (log_has(t, "all 1 workers ready") && api_accepts(t->server))
			return 0;
		if (!api_accepts(t->server)) {
			sleep_ms(20);
			continue;
		}
		rc = rpc_unary_raw(t->rpc, M_HEALTH, "", 0, &resp, &len,
		    details, sizeof(details), 2000);
		free(resp);
		resp = NULL;
		if (rc == 0) {
			cpu_sample(t->pid, &c);
			if (c.n >= 2)	/* the worker is there */
				return 0;
		}
		sleep_ms(50);
	}
	fprintf(stderr, "rtpbench: %s did not become ready\n", t->name);
	log_tail(t);
	return -1;
}

static void
live_add(struct target *t)
{
	size_t i;

	for (i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == NULL) {
			live[i] = t;
			return;
		}
}

static void
live_del(struct target *t)
{
	size_t i;

	for (i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == t)
			live[i] = NULL;
}

int
target_start(struct target *t, int kind, const char *path,
    const struct bopts *o, int sessions)
{
	static unsigned	 seq;
	const char	*tmp = getenv("TMPDIR");
	char		 conf[128];
	char		*argv[5];
	int		 pin[2], pout[2];

	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->path = path;
	t->name = kind == T_REF ? "reference" : "rtpproxyd";
	t->cpu = o->relay_cpu;
	t->pid = -1;
	t->in = t->out = -1;
	snprintf(t->dir, sizeof(t->dir), "%s/rtpbench.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(t->dir) == NULL) {
		perror("rtpbench: mkdtemp");
		return -1;
	}
	live_add(t);
	if (kind == T_REF) {
		if (pipe2(pin, O_CLOEXEC) == -1 ||
		    pipe2(pout, O_CLOEXEC) == -1) {
			perror("rtpbench: pipe");
			return -1;
		}
		argv[0] = (char *)path;
		argv[1] = NULL;
		t->pid = spawn(t, argv, pin[0], pout[1]);
		close(pin[0]);
		close(pout[1]);
		t->in = pin[1];
		t->out = pout[0];
		if (t->pid == -1) {
			perror("rtpbench: fork");
			return -1;
		}
		return 0;
	}

	snprintf(t->shm, sizeof(t->shm), "/rtpbench-%ld-%u", (long)getpid(),
	    seq++);
	if (write_conf(t, o, sessions) == -1) {
		fprintf(stderr, "rtpbench: cannot write a configuration in "
		    "%s\n", t->dir);
		return -1;
	}
	path_in(t, "rtpproxyd.conf", conf, sizeof(conf));
	argv[0] = (char *)path;
	argv[1] = (char *)"-f";
	argv[2] = (char *)"-c";
	argv[3] = conf;
	argv[4] = NULL;
	if ((t->pid = spawn(t, argv, -1, -1)) == -1) {
		perror("rtpbench: fork");
		return -1;
	}
	if ((t->rpc = rpc_client_new(t->server)) == NULL) {
		fprintf(stderr, "rtpbench: no gRPC client for %s\n",
		    t->server);
		return -1;
	}
	return rtpp_wait_ready(t);
}

/* A line from the reference relay; -1 at its end. */
static int
ref_line(struct target *t, char *buf, size_t len)
{
	size_t	n = 0;
	ssize_t	r;
	char	c;

	while (n + 1 < len) {
		r = read(t->out, &c, 1);
		if (r == -1 && errno == EINTR && !bench_stop)
			continue;
		if (r <= 0)
			return -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return 0;
}

/* One session of the reference relay from addr to dhost:dport, into *b. */
int
target_ref_add(struct target *t, const char *addr, const char *dhost,
    unsigned dport, struct bsession *b)
{
	char		line[256];
	unsigned	lp, fp;
	int		len;

	len = snprintf(line, sizeof(line), "%s 0 0 %s %u\n", addr, dhost,
	    dport);
	if (write(t->in, line, (size_t)len) != len ||
	    ref_line(t, line, sizeof(line)) == -1)
		goto dead;
	if (sscanf(line, "ports %u %u", &lp, &fp) != 2) {
		fprintf(stderr, "rtpbench: reference relay: %s\n", line);
		return -1;
	}
	if (parse_ip(addr, (uint16_t)lp, &b->listen, &b->listenlen) == -1 ||
	    parse_ip(addr, (uint16_t)fp, &b->forward, &b->forwardlen) == -1)
		return -1;
	return 0;
dead:
	if (!bench_stop) {
		fprintf(stderr, "rtpbench: the reference relay went away\n");
		log_tail(t);
	}
	return -1;
}

/* No more sessions: 0 once the reference relay relays them. */
int
target_ref_ready(struct target *t)
{
	char line[256];

	if (bench_stop || write(t->in, "\n", 1) != 1 ||
	    ref_line(t, line, sizeof(line)) == -1) {
		if (!bench_stop) {
			fprintf(stderr, "rtpbench: the reference relay went "
			    "away\n");
			log_tail(t);
		}
		return -1;
	}
	if (strcmp(line, "ready") != 0) {
		fprintf(stderr, "rtpbench: reference relay: %s\n", line);
		return -1;
	}
	return 0;
}

static int
ref_sessions(struct target *t, const char *addr, const char *dhost,
    unsigned dport, struct bsession *bs, int n)
{
	int i;

	for (i = 0; i < n && !bench_stop; i++)
		if (target_ref_add(t, addr, dhost, dport, &bs[i]) == -1)
			return -1;
	return target_ref_ready(t);
}

static int
rtpp_sessions(struct target *t, const char *addr, const char *dhost,
    unsigned dport, struct bsession *bs, int n)
{
	Rtpproxy__CreateSessionRequest	 req =
	    RTPPROXY__CREATE_SESSION_REQUEST__INIT;
	Rtpproxy__Endpoint		 l = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 f = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 d = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__CreateSessionResponse	*resp;
	char				 details[256];
	int				 i, rc, bad;

	l.address = f.address = (char *)addr;
	d.address = (char *)dhost;
	d.port = dport;
	req.listen = &l;
	req.forward = &f;
	req.destination = &d;
	req.disable_rtcp = 1;
	req.record = t->record;
	for (i = 0; i < n && !bench_stop; i++) {
		resp = NULL;
		rc = rpc_unary(t->rpc, M_CREATE, &req.base,
		    &rtpproxy__create_session_response__descriptor,
		    (ProtobufCMessage **)&resp, details, sizeof(details),
		    10000);
		bad = rc != 0 || resp == NULL || resp->session == NULL ||
		    resp->session->listen == NULL ||
		    resp->session->forward == NULL ||
		    parse_ip(addr, (uint16_t)resp->session->listen->port,
		    &bs[i].listen, &bs[i].listenlen) == -1 ||
		    parse_ip(addr, (uint16_t)resp->session->forward->port,
		    &bs[i].forward, &bs[i].forwardlen) == -1;
		if (resp != NULL)
			protobuf_c_message_free_unpacked(&resp->base, NULL);
		if (bad) {
			fprintf(stderr, "rtpbench: CreateSession %d of %d: "
			    "status %d: %s\n", i + 1, n, rc, details);
			return -1;
		}
	}
	return bench_stop ? -1 : 0;
}

/*
 * n sessions from addr (port 0) to dest, into bs.  rtpproxyd's are closed
 * when it stops.
 */
int
target_sessions(struct target *t, const char *addr,
    const struct sockaddr_storage *dest, socklen_t destlen,
    struct bsession *bs, int n)
{
	char		 host[INET6_ADDRSTRLEN];
	const void	*a;
	unsigned	 port;

	if (dest->ss_family == AF_INET6) {
		a = &((const struct sockaddr_in6 *)dest)->sin6_addr;
		port = ntohs(((const struct sockaddr_in6 *)dest)->sin6_port);
	} else {
		a = &((const struct sockaddr_in *)dest)->sin_addr;
		port = ntohs(((const struct sockaddr_in *)dest)->sin_port);
	}
	if (inet_ntop(dest->ss_family, a, host, sizeof(host)) == NULL)
		return -1;
	if (t->kind == T_REF)
		return ref_sessions(t, addr, host, port, bs, n);
	return rtpp_sessions(t, addr, host, port, bs, n);
}

static void
unlink_in(const struct target *t, const char *name)
{
	char path[128];

	path_in(t, name, path, sizeof(path));
	(void)unlink(path);
}

/* SIGTERM and wait; SIGKILL, with rtpproxyd's workers, if that fails. */
void
target_stop(struct target *t)
{
	struct cpu	c;
	int64_t		until;
	int		status, i;
	pid_t		r;

	if (t->rpc != NULL) {
		rpc_client_free(t->rpc);
		t->rpc = NULL;
	}
	if (t->in != -1)
		close(t->in);
	if (t->out != -1)
		close(t->out);
	t->in = t->out = -1;
	if (t->pid > 0) {
		cpu_sample(t->pid, &c);
		kill(t->pid, SIGTERM);
		until = mono_ns() + (int64_t)STOP_MS * 1000000;
		while ((r = waitpid(t->pid, &status, WNOHANG)) == 0 &&
		    mono_ns() < until)
			sleep_ms(10);
		if (r == 0) {
			fprintf(stderr, "rtpbench: %s did not stop in %d s: "
			    "killed\n", t->name, STOP_MS / 1000);
			for (i = 0; i < c.n; i++)
				kill(c.pid[i], SIGKILL);
			waitpid(t->pid, &status, 0);
			if (t->shm[0] != '\0')
				(void)shm_unlink(t->shm);
		} else if (r == t->pid && t->kind == T_RTPP &&
		    !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
			fprintf(stderr, "rtpbench: %s stopped with status "
			    "%d\n", t->name, status);
			log_tail(t);
		}
		t->pid = -1;
	}
	if (t->dir[0] != '\0' && t->record) {
		char		 rec[128], f[512];
		struct dirent	*de;
		DIR		*d;

		path_in(t, "rec", rec, sizeof(rec));
		if ((d = opendir(rec)) != NULL) {
			while ((de = readdir(d)) != NULL) {
				if (de->d_name[0] == '.')
					continue;
				snprintf(f, sizeof(f), "%s/%s", rec,
				    de->d_name);
				(void)unlink(f);
			}
			closedir(d);
		}
		(void)rmdir(rec);
		t->record = 0;
	}
	if (t->dir[0] != '\0') {
		unlink_in(t, "rtpproxyd.conf");
		unlink_in(t, "rtpproxyd.pid");
		unlink_in(t, "log");
		(void)rmdir(t->dir);
		t->dir[0] = '\0';
	}
	live_del(t);
	t->name = NULL;
}

/* Everything still running, at exit. */
void
target_stop_all(void)
{
	size_t i;

	for (i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] != NULL)
			target_stop(live[i]);
}
