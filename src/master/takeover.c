/*
 * A master that takes over from another, losing no session.
 *
 * The state that matters is not in the master: the sessions are in the
 * shared table, their sockets are held by the workers, and the workers
 * keep relaying when their master goes (they wait, orphan-timeout
 * seconds, to be adopted).  So a master that starts and finds a table
 * whose master is gone takes it over: it rebuilds its registry from the
 * slots, connects to each worker listed in the table on that worker's
 * adoption socket (ipc_adopt_name), and gets from it every session it
 * relays with copies of the sockets.  Sessions nobody relays any more
 * (their worker died too) get their sockets bound again from the slot.
 *
 * On SIGUSR2 the running master starts its successor itself (the binary
 * at the same path, perhaps a new one) with a socketpair: the new master
 * binds the API beside the old one (SO_REUSEPORT) and says IPC_TAKE; the
 * old one finishes its calls, hands over the pid file (IPC_GO), lets go
 * of its workers and exits; the new one then takes over as above.  If the
 * new master fails before IPC_TAKE, the old one carries on.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "master.h"
#include "peer.h"
#include "sessions.h"

#define TAKEOVER_ENV		"RTPPROXYD_TAKEOVER"
#define TAKEOVER_KFWD_ENV	"RTPPROXYD_KFWD_FDS"	/* map,prog,dir */
#define TAKEOVER_WAIT_MS	60000	/* for the old master to let go */
#define TAKEOVER_EXIT_MS	10000	/* for it to exit then */
#define TAKEOVER_NEW_S		120	/* the new master has this long */

extern char	**environ;

static pid_t	takeover_old;		/* the master we take over from */
static struct master *takeover_m;	/* handing over: this one */

/*
 * The descriptor of the channel to the master we take over from, when it
 * started us for that (SIGUSR2); -1 otherwise.  Not inherited further.
 */
int
takeover_from_env(void)
{
	const char	*v = getenv(TAKEOVER_ENV);
	uint32_t	 fd;

	if (v == NULL)
		return -1;
	if (parse_u32(v, 3, 65535, &fd) == -1 || fcntl((int)fd, F_GETFD) ==
	    -1) {
		unsetenv(TAKEOVER_ENV);
		return -1;
	}
	unsetenv(TAKEOVER_ENV);
	(void)set_cloexec((int)fd, 1);
	takeover_old = getppid();
	return (int)fd;
}

/*
 * What the master before us held of the kernel fast path (its map,
 * program and pin directory, across the exec): a master that runs as
 * `user` could not open them itself.  -1 each when none or not ours;
 * then -1 when there were some (before the log is up: the caller says).
 */
int
takeover_kfwd_from_env(struct kfwd_fds *f)
{
	const char	*v = getenv(TAKEOVER_KFWD_ENV);
	int		 rc = 0;

	f->map = f->prog = f->dir = -1;
	if (v != NULL && (sscanf(v, "%d,%d,%d", &f->map, &f->prog,
	    &f->dir) != 3 || kfwd_adopt_fds(f) == -1)) {
		f->map = f->prog = f->dir = -1;
		rc = -1;
	}
	unsetenv(TAKEOVER_KFWD_ENV);
	return rc;
}

/*
 * Refuse a listen address that something already has: the API binds
 * with SO_REUSEPORT (for a new master to bind beside the old), which on
 * its own would let a second daemon share the port without a word.
 * SO_REUSEADDR, as the listeners have: what is left of connections that
 * the last daemon closed (TIME_WAIT, FIN_WAIT2 while a client such as a
 * Prometheus scraper keeps its end open) must not count as in use, only
 * a socket that listens.
 *
 * strict (for a new master, before it takes over): in use is expected,
 * the old master has it; refuse an address that could not be bound even
 * once it is free (not local, a typo).
 */
static int
takeover_probe(const struct sockaddr_storage *ss, socklen_t len,
    const char *what, int strict, char *err, size_t errlen)
{
	int fd, off = 0, on = 1, saved = 0;

	if ((fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	if (ss->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off,
		    sizeof(off));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (const struct sockaddr *)ss, len) == -1)
		saved = errno;
	close(fd);
	if (!strict && saved == EADDRINUSE) {
		snprintf(err, errlen, "%s: address in use (another rtpproxyd, "
		    "or another program, listens there)", what);
		return -1;
	}
	if (strict && saved != 0 && saved != EADDRINUSE) {
		snprintf(err, errlen, "%s: cannot bind it: %s", what,
		    strerror(saved));
		return -1;
	}
	return 0;	/* else gRPC will say what is wrong */
}

/*
 * Probe every socket address of la.  Not strict: refuse when one of them
 * is in use.  Strict: refuse only when none could be bound, as for the
 * listeners, where localhost needs one of its two.
 */
static int
takeover_probe_addr(const char *kw, const struct listen_addr *la,
    int strict, char *err, size_t errlen)
{
	char	what[ADDR_TEXT_MAX + 32];
	int	i, bad = 0;

	if (la->kind != ADDR_INET)
		return 0;
	snprintf(what, sizeof(what), "%s %s", kw, la->text);
	for (i = 0; i < la->nsa; i++)
		if (takeover_probe(&la->sa[i], la->salen[i], what, strict, err,
		    errlen) == -1)
			bad++;
	return (strict ? bad == la->nsa : bad > 0) ? -1 : 0;
}

static int
takeover_probe_api(const struct config *c, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < c->nlisten; i++)
		if (takeover_probe_addr("listen", &c->listen[i], 0, err,
		    errlen) == -1)
			return -1;
	return 0;
}

static int
takeover_probe_metrics(const struct config *c, char *err, size_t errlen)
{
	return takeover_probe_addr("metrics-listen", &c->metrics_listen, 0,
	    err, errlen);
}

int
takeover_probe_listen(const struct config *c, char *err, size_t errlen)
{
	return takeover_probe_api(c, err, errlen) == -1 ||
	    takeover_probe_metrics(c, err, errlen) == -1 ? -1 : 0;
}

/* Whether this process has capability cap in effect (/proc/self/status). */
static int
takeover_has_cap(int cap)
{
	char		 line[256];
	unsigned long long eff = 0;
	FILE		*f;
	int		 found = 0;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = sscanf(line, "CapEff: %llx", &eff) == 1;
	fclose(f);
	return found && (eff >> cap & 1);
}

/* The lowest port anyone may bind (net.ipv4.ip_unprivileged_port_start). */
static uint32_t
takeover_unprivileged_port(void)
{
	unsigned long	 v;
	FILE		*f;

	if ((f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start",
	    "r")) == NULL)
		return 1024;
	if (fscanf(f, "%lu", &v) != 1 || v > 65536)
		v = 1024;
	fclose(f);
	return (uint32_t)v;
}

/*
 * May this process, running as user who, bind listen address la (keyword
 * kw)?  0, or -1 and why.
 */
static int
takeover_may_bind(const char *kw, const struct listen_addr *la,
    const char *who, char *err, size_t errlen)
{
	struct stat	 st, dst;
	const char	*dir;
	char		 path[256];

	if (la->kind == ADDR_UNIX) {
		/* Its file is made again here: unlinked, then bound. */
		snprintf(path, sizeof(path), "%s", addr_path(la));
		dir = dirname(path);
		if (access(dir, W_OK | X_OK) == -1 || (stat(dir, &dst) == 0 &&
		    (dst.st_mode & S_ISVTX) && dst.st_uid != geteuid() &&
		    stat(addr_path(la), &st) == 0 && st.st_uid != geteuid())) {
			snprintf(err, errlen, "%s %s: user %s may not make a "
			    "socket in %s", kw, la->text, who, dir);
			return -1;
		}
		return 0;
	}
	if (la->kind != ADDR_INET)
		return 0;
	if (la->port < takeover_unprivileged_port() &&
	    !takeover_has_cap(CAP_NET_BIND_SERVICE)) {
		snprintf(err, errlen, "%s %s: port %u is privileged and user "
		    "%s may not bind it", kw, la->text, la->port, who);
		return -1;
	}
	return takeover_probe_addr(kw, la, 1, err, errlen);
}

/*
 * Whether an API or metrics address is on a privileged port; *which: the
 * first such address.
 */
int
takeover_privileged(const struct config *c, const char **which)
{
	const struct listen_addr	*la;
	uint32_t			 lowest = takeover_unprivileged_port();
	int				 i;

	for (i = 0; i <= c->nlisten; i++) {
		la = i < c->nlisten ? &c->listen[i] : &c->metrics_listen;
		if (la->kind == ADDR_INET && la->port < lowest) {
			*which = la->text;
			return 1;
		}
	}
	*which = NULL;
	return 0;
}

/*
 * Whether this master, as the user it runs as now, can listen on every
 * address once the old master has let go of them.  Asked before the old
 * one is told to let go, so that it carries on rather than hand over to a
 * master that then cannot serve the API.
 */
int
takeover_may_listen(const struct config *c, char *err, size_t errlen)
{
	const char	*who = c->user != NULL ? c->user : "root";
	int		 i;

	for (i = 0; i < c->nlisten; i++)
		if (takeover_may_bind("listen", &c->listen[i], who, err,
		    errlen) == -1)
			return -1;
	return takeover_may_bind("metrics-listen", &c->metrics_listen, who,
	    err, errlen);
}

/*
 * Serve the API once the old master's gRPC listeners are gone: it closes
 * them when it starts to finish its calls, and its metrics listener only
 * when it has finished.  Once: a failure is for takeover_listen to tell.
 */
static void
takeover_listen_early(struct master *m, int *api_up, int *tried)
{
	char err[256];

	if (*api_up || *tried || takeover_probe_api(m->conf, err,
	    sizeof(err)) == -1)
		return;
	*tried = 1;
	if (grpcsvc_start(m->base, m->conf) == 0) {
		*api_up = 1;
		log_info("taking over: the API listens again; the calls wait "
		    "for the old master to hand over");
	}
}

/*
 * The new master's side: tell the old one to let go, take the pid file it
 * hands over, and wait for it to be gone.  *api_up: whether our gRPC
 * listeners are up (beside the old ones); if not, they are brought up as
 * soon as the old master's have closed, while it finishes its calls.
 */
/* What the handshake learns from the old master. */
struct takeover_wait {
	struct master	*m;
	int		 go;		/* it let go */
	int		 gone;		/* it went away without */
};

static int
takeover_go(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *arg)
{
	struct takeover_wait *tw = arg;

	if (nfds == 1) {
		tw->m->pidfd = fds[0];
		if (daemon_pidfile_write(tw->m->pidfd) == -1)
			log_warn("pidfile %s", tw->m->conf->pidfile);
	}
	tw->go = 1;
	peer_pause(p);
	return 0;
}

static void
takeover_old_gone(struct peer *p, int why, void *arg)
{
	struct takeover_wait *tw = arg;

	tw->gone = 1;
}

static const struct peer_type takeover_down_types[] = {
	{ IPC_GO, takeover_go },
	{ 0, NULL }
};

static const struct peer_ops takeover_down_ops = {
	takeover_down_types, takeover_old_gone, PEER_GEN_ANY, 1
};

int
takeover_handshake(struct master *m, int *api_up, char *err, size_t errlen)
{
	struct takeover_wait	 tw = { m, 0, 0 };
	struct peer		 old;
	struct ipc_hdr		 h;
	int64_t			 until = mono_ms() + TAKEOVER_WAIT_MS, left;
	int			 pidfd, rc, tried = 0;

	pidfd = proc_pidfd(takeover_old);
	peer_init(&old);
	if (peer_open(&old, m->base, m->takeover_fd, "taking over",
	    "the old master", 0, &takeover_down_ops, &tw) == -1) {
		snprintf(err, errlen, "the old master: cannot watch it");
		goto fail;
	}
	m->takeover_fd = -1;		/* the peer's now */
	ipc_init(&h, IPC_TAKE, 0, 0, 0);
	if (peer_send_now(&old, &h, NULL, 0) == -1) {
		snprintf(err, errlen, "the old master: %s", strerror(errno));
		goto fail;
	}
	log_info("taking over from the master with pid %ld",
	    (long)takeover_old);
	while (!tw.go) {
		left = until - mono_ms();
		if (left < 0)
			left = 0;
		/* Every millisecond while our API waits for the port. */
		rc = peer_wait(&old, *api_up || tried ? (int)left :
		    left < 1 ? (int)left : 1);
		if (tw.go)
			break;
		if (rc == -1 || tw.gone) {
			snprintf(err, errlen, "the old master went away "
			    "without letting go");
			goto fail;
		}
		if (rc == 0 && left > 0) {
			takeover_listen_early(m, api_up, &tried);
			continue;
		}
		if (rc == 0) {
			snprintf(err, errlen, "the old master did not let go "
			    "in %d s", TAKEOVER_WAIT_MS / 1000);
			goto fail;
		}
	}
	peer_close(&old);
	/* Its listeners closed when it began to let go; it may be exiting. */
	takeover_listen_early(m, api_up, &tried);
	/* Its copies of the sockets must be closed before we bind any. */
	proc_wait_gone(takeover_old, pidfd, TAKEOVER_EXIT_MS);
	if (proc_alive(takeover_old))
		log_warnx("the old master (pid %ld) is still there after %d s",
		    (long)takeover_old, TAKEOVER_EXIT_MS / 1000);
	if (pidfd != -1)
		close(pidfd);
	return 0;
fail:
	peer_close(&old);
	if (pidfd != -1)
		close(pidfd);
	return -1;
}

/*
 * Listen on what is not up yet once the old master has let go of its
 * addresses (they are free as soon as its server shut down, the metrics
 * listener as soon as it finished): up to 5 s.
 */
int
takeover_listen(struct master *m, int api_up)
{
	struct timespec	 ts = { 0, 2 * 1000 * 1000 };
	char		 err[256];
	int		 i;

	for (i = 0; i < 2500; i++) {
		if (!api_up && takeover_probe_api(m->conf, err,
		    sizeof(err)) == 0) {
			if (grpcsvc_start(m->base, m->conf) == -1)
				return -1;
			api_up = 1;
		}
		if (api_up && takeover_probe_metrics(m->conf, err,
		    sizeof(err)) == 0)
			return metrics_bind(m->conf) == 0 ? 0 : -1;
		nanosleep(&ts, NULL);
	}
	log_warnx("%s", err);
	return -1;
}

/* --- the old master's side ------------------------------------------- */

/* Everything is wound down: hand over, let go of the workers, exit. */
static void
takeover_drained(void)
{
	struct master	*m = takeover_m;
	struct ipc_hdr	 h;
	char		 buf[64];
	int		 n = m->pidfd != -1;

	session_suspend();
	metrics_stop();
	workers_flush_all(1000);
	/*
	 * The service manager must know the new main process before this
	 * one exits, or it takes the exit for the service's end.
	 */
	snprintf(buf, sizeof(buf), "MAINPID=%ld", (long)m->up_pid);
	daemon_notify(buf);
	daemon_notify_barrier(5000);
	ipc_init(&h, IPC_GO, 0, 0, 0);
	h.arg = (uint32_t)n;
	if (peer_send_now(&m->up, &h, n ? &m->pidfd : NULL, n) == -1) {
		/* It is gone: nothing handed over, carry on. */
		log_warn("restart: the new master");
		return;
	}
	m->handed_off = 1;
	/* The workers notice the end of their socket and wait for it. */
	workers_hand_off();
	event_base_loopbreak(m->base);
}

static int
takeover_take(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *arg)
{
	struct master *m = arg;

	/* One message, and that is all from it. */
	peer_pause(p);
	evtimer_del(m->up_timer);
	log_notice("restart: the new master (pid %ld) is ready: finishing "
	    "calls and handing over", (long)m->up_pid);
	grpcsvc_drain(takeover_drained);
	return 0;
}

/*
 * A restart that failed: write our pid into the pid file again.  rtpproxyd
 * -r watches the file, and a fresh write of the old pid tells it at once
 * that nobody will take over, rather than after the longest a takeover
 * may take (3 minutes).
 */
static void
takeover_carry_on(struct master *m)
{
	if (m->pidfd != -1 && daemon_pidfile_write(m->pidfd) == -1)
		log_warn("pidfile %s", m->conf->pidfile);
}

static void
takeover_new_gone(struct peer *p, int why, void *arg)
{
	struct master *m = arg;

	evtimer_del(m->up_timer);
	/* SIGCHLD says how it ended. */
	log_warnx("restart: the new master (pid %ld) gave up before taking "
	    "over; carrying on", (long)m->up_pid);
	peer_close(p);
	takeover_carry_on(m);
}

static const struct peer_type takeover_up_types[] = {
	{ IPC_TAKE, takeover_take },
	{ 0, NULL }
};

static const struct peer_ops takeover_up_ops = {
	takeover_up_types, takeover_new_gone, PEER_GEN_ANY, 1
};

static void
takeover_too_slow(evutil_socket_t fd, short ev, void *arg)
{
	struct master *m = takeover_m;

	log_warnx("restart: the new master (pid %ld) did not get ready in "
	    "%d s; stopping it and carrying on", (long)m->up_pid,
	    TAKEOVER_NEW_S);
	peer_close(&m->up);
	if (m->up_pid > 0)
		kill(m->up_pid, SIGKILL);
	takeover_carry_on(m);
}

/* SIGUSR2: start the master that takes over from this one. */
void
takeover_begin(struct master *m)
{
	struct timeval	 tv = { TAKEOVER_NEW_S, 0 };
	char		 var[64], kvar[96], **envp;
	sigset_t	 none;
	size_t		 n, i, k;
	int		 sv[2];
	pid_t		 pid;

	takeover_m = m;
	if (m->stopping || peer_is_open(&m->up) || m->handed_off) {
		log_notice("SIGUSR2: %s", m->stopping ? "stopping already" :
		    "a restart is already under way");
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("restart: socketpair");
		return;
	}
	/* Its environment is ours but for where the channel is. */
	snprintf(var, sizeof(var), TAKEOVER_ENV "=%d", sv[1]);
	/* and what it cannot open itself when it runs as `user` */
	snprintf(kvar, sizeof(kvar), TAKEOVER_KFWD_ENV "=%d,%d,%d",
	    m->kf.map, m->kf.prog, m->kf.dir);
	for (n = 0; environ[n] != NULL; n++)
		;
	envp = xcalloc(n + 3, sizeof(*envp));
	for (i = 0, k = 0; i < n; i++)
		if (strncmp(environ[i], TAKEOVER_ENV "=",
		    sizeof(TAKEOVER_ENV)) != 0 && strncmp(environ[i],
		    TAKEOVER_KFWD_ENV "=", sizeof(TAKEOVER_KFWD_ENV)) != 0)
			envp[k++] = environ[i];
	envp[k++] = var;
	if (m->kfwd && m->kf.map != -1)
		envp[k++] = kvar;
	envp[k] = NULL;
	sigemptyset(&none);
	if ((pid = fork()) == -1) {
		log_warn("restart: fork");
		free(envp);
		close(sv[0]);
		close(sv[1]);
		return;
	}
	if (pid == 0) {
		/* Only async-signal-safe calls until exec: gRPC has threads. */
		if (fcntl(sv[1], F_SETFD, 0) == -1)
			_exit(127);
		if (m->kfwd && m->kf.map != -1 && (fcntl(m->kf.map, F_SETFD,
		    0) == -1 || fcntl(m->kf.prog, F_SETFD, 0) == -1 ||
		    fcntl(m->kf.dir, F_SETFD, 0) == -1))
			_exit(127);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(m->self, m->argv, envp);
		_exit(127);
	}
	free(envp);
	close(sv[1]);
	m->up_pid = pid;
	if (peer_open(&m->up, m->base, sv[0], "restart", "the new master", 0,
	    &takeover_up_ops, m) == -1)
		fatalx("restart: event_new");
	if (m->up_timer == NULL)
		m->up_timer = evtimer_new(m->base, takeover_too_slow, NULL);
	evtimer_add(m->up_timer, &tv);
	log_notice("SIGUSR2: started a new master (pid %ld, %s) to take over "
	    "without losing a session", (long)pid, m->self);
}

/* --- rtpproxyd -r ------------------------------------------------------ */

/* The pid in the pid file, or 0; verbose: say why there is none. */
static pid_t
takeover_read_pid(const char *path, int verbose)
{
	char	*buf;
	size_t	 len;
	long	 pid;

	if (file_read(path, 64, &buf, &len) == -1) {
		if (verbose && errno != ENOENT)
			fprintf(stderr, "rtpproxyd: pidfile %s: %s\n", path,
			    file_strerror(64));
		return 0;
	}
	pid = strtol(buf, NULL, 10);
	free(buf);
	return pid > 0 ? (pid_t)pid : 0;
}

/*
 * rtpproxyd -r: ask the daemon of this pid file to restart its master
 * (SIGUSR2) and wait until a new master has taken over.  0 or 1.
 */
int
master_restart_cmd(const char *pidfile)
{
	struct stat	before, st;
	pid_t		old, now;
	int		i;

	if (pidfile == NULL) {
		fprintf(stderr, "rtpproxyd: -r needs a pid file (pidfile is "
		    "none)\n");
		return 1;
	}
	if ((old = takeover_read_pid(pidfile, 1)) == 0 || !proc_alive(old)) {
		fprintf(stderr, "rtpproxyd: %s: no running rtpproxyd\n",
		    pidfile);
		return 1;
	}
	if (stat(pidfile, &before) == -1)
		memset(&before, 0, sizeof(before));
	if (kill(old, SIGUSR2) == -1) {
		fprintf(stderr, "rtpproxyd: pid %ld: %s\n", (long)old,
		    strerror(errno));
		return 1;
	}
	for (i = 0; i < (TAKEOVER_WAIT_MS + TAKEOVER_NEW_S * 1000) / 100;
	    i++) {
		nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
		now = takeover_read_pid(pidfile, 0);
		/* The old master wrote its pid again: it carries on. */
		if (now == old && proc_alive(old) &&
		    stat(pidfile, &st) == 0 &&
		    (st.st_mtim.tv_sec != before.st_mtim.tv_sec ||
		    st.st_mtim.tv_nsec != before.st_mtim.tv_nsec)) {
			fprintf(stderr, "rtpproxyd: the new master gave up "
			    "before taking over; pid %ld carries on (see the "
			    "log)\n", (long)old);
			return 1;
		}
		if (now != 0 && now != old && proc_alive(now) &&
		    !proc_alive(old)) {
			printf("rtpproxyd: master %ld took over from %ld\n",
			    (long)now, (long)old);
			return 0;
		}
		if (now == old && !proc_alive(old)) {
			fprintf(stderr, "rtpproxyd: the master (pid %ld) is "
			    "gone and nobody took over\n", (long)old);
			return 1;
		}
	}
	fprintf(stderr, "rtpproxyd: no new master took over from pid %ld; "
	    "see the log\n", (long)old);
	return 1;
}
