/*
 * The worker processes, as the master keeps them: a table of them with
 * their event sockets and send queues, started by fork+exec of our own
 * binary in worker mode, reaped, started again (at once, or throttled when
 * they keep dying young, or the session that crashes them quarantined),
 * adopted from a master that went away, and stopped.  What they report
 * goes to the session registry (session.c) next to this; what the master
 * above must know (every worker ready, every worker gone while stopping)
 * goes through the callbacks it gives workers_init.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "peer.h"
#include "sessions.h"

#define WK_FAST_DEATH_MS	2000	/* died this soon: throttle */
#define WK_RESPAWN_MAX_MS	30000
#define WK_RESPAWN_MIN_MS	100	/* between two starts of a worker */
#define WK_CRASH_RUN		8	/* crashes blamed on sessions in a row */
#define WK_STOP_WAIT_S		5	/* an adopted one, to be gone */
#define WK_ADOPT_READY_S	10	/* an adopted worker, to tell all */

static struct {
	struct event_base	*base;
	const struct config	*conf;
	struct shm_table	*shm;
	const char		*self;		/* the binary to exec */
	int			 foreground;
	int			 kfwd_map;	/* -1, or for IPC_KFWD_FD */
	struct workers_ops	 ops;
	struct worker_proc	*w;
	int			 n;
	int			 nready;
	int			 stopping;
	int			 handed_off;	/* another master has them */
} W;

static void	wk_closed(struct worker_proc *);
static void	wk_respawn_cb(evutil_socket_t, short, void *);

void
workers_init(const struct workers_env *env)
{
	int i;

	W.base = env->base;
	W.conf = env->conf;
	W.shm = env->shm;
	W.self = env->self;
	W.foreground = env->foreground;
	W.kfwd_map = env->kfwd_map;
	W.ops = env->ops;
	W.n = env->nworkers;
	W.w = xcalloc((size_t)W.n, sizeof(*W.w));
	for (i = 0; i < W.n; i++) {
		struct worker_proc *mw = &W.w[i];

		mw->id = i;
		peer_init(&mw->peer);
		mw->pid = -1;
		mw->pidfd = -1;
		workers_range(i, &mw->port_lo, &mw->port_hi);
		if ((mw->respawn_ev = evtimer_new(W.base, wk_respawn_cb,
		    mw)) == NULL)
			fatalx("worker %d: evtimer_new", i);
	}
}

/* Each worker adopted from the table (taking over), or a new one. */
void
workers_start(int adopting)
{
	int i;

	for (i = 0; i < W.n; i++)
		if (!adopting || workers_adopt(&W.w[i]) == -1)
			workers_spawn(&W.w[i]);
}

int
workers_count(void)
{
	return W.n;
}

struct worker_proc *
workers_get(int id)
{
	return id >= 0 && id < W.n ? &W.w[id] : NULL;
}

void
workers_range(int id, uint16_t *lo, uint16_t *hi)
{
	uint32_t	 pairs, first, last;

	pairs = ((uint32_t)W.conf->port_max - W.conf->port_min + 1) / 2;
	first = pairs * (uint32_t)id / (uint32_t)W.n;
	last = pairs * (uint32_t)(id + 1) / (uint32_t)W.n;
	*lo = (uint16_t)(W.conf->port_min + first * 2);
	*hi = (uint16_t)(W.conf->port_min + last * 2 - 1);
}

/* The worker whose range holds port, or -1 outside the range. */
int
workers_of_port(uint16_t port)
{
	int		 i;

	if (port < W.conf->port_min || port > W.conf->port_max)
		return -1;
	for (i = 0; i < W.n; i++)
		if (port >= W.w[i].port_lo &&
		    port <= W.w[i].port_hi)
			return i;
	return -1;
}

int
workers_ready(int id)
{
	return W.w[id].ready;
}

/* Our own SIGKILL: its death is no news of what killed it. */
void
workers_kill(struct worker_proc *mw)
{
	if (mw->pid <= 0)
		return;
	mw->killed = 1;
	kill(mw->pid, SIGKILL);
}

/*
 * Send a message to worker id, stamped with its generation.  When the
 * socket is full the message waits in order, with copies of its
 * descriptors, so the caller may close its own at once.  -1 if the worker
 * is not running or not ready.
 */
int
workers_send(int id, struct ipc_hdr *h, const int *fds, int nfds)
{
	struct worker_proc *mw = &W.w[id];

	if (!peer_is_open(&mw->peer) || !mw->ready)
		return -1;
	if (peer_send(&mw->peer, h, fds, nfds) == -1) {
		log_warn("worker %d: send", id);
		return -1;
	}
	return 0;
}

/* Send now, ready or not (a worker being adopted); 0 or -1. */
int
workers_send_now(int id, struct ipc_hdr *h)
{
	return peer_send_now(&W.w[id].peer, h, NULL, 0);
}

/* What a worker says, by type (workers_attach's dispatch table). */
static int
wk_forward(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *arg)
{
	struct worker_proc *mw = arg;

	W.ops.message(mw->id, h, fds, nfds);
	return 0;
}

static int
wk_hello(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *arg)
{
	struct worker_proc *mw = arg;

	if (!mw->adopted || mw->ready || h->slot != (uint32_t)mw->id ||
	    h->arg != (uint32_t)mw->pid)
		return -1;
	log_info("worker %d (pid %ld, generation %u) adopted", mw->id,
	    (long)mw->pid, mw->gen);
	return 0;
}

static int
wk_have(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *arg)
{
	struct worker_proc *mw = arg;

	if (!mw->adopted || mw->ready) {
		while (nfds > 0)
			close(fds[--nfds]);
		return -1;
	}
	W.ops.have(mw->id, (const struct ipc_have *)h, fds, nfds);
	return 0;
}

static int
wk_ready(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *arg)
{
	struct worker_proc *mw = arg;

	if (mw->ready)
		return 0;
	mw->ready = 1;
	mw->ready_ms = mono_ms();
	if (mw->adopt_ev != NULL)
		evtimer_del(mw->adopt_ev);
	W.nready++;
	log_info("worker %d ready (pid %ld, generation %u, ports %u-%u%s)",
	    mw->id, (long)mw->pid, mw->gen, mw->port_lo, mw->port_hi,
	    mw->adopted ? ", adopted" : "");
	W.ops.ready(mw->id);
	if (W.nready == W.n)
		W.ops.all_ready();
	return 0;
}

static void
wk_peer_gone(struct peer *p, int why, void *arg)
{
	struct worker_proc *mw = arg;

	switch (why) {
	case PEER_EOF:
		/* SIGCHLD (or its pidfd, if adopted) does the rest. */
		if (mw->adopted && mw->pidfd == -1) {
			/* No pidfd to tell: its socket's end does. */
			workers_kill(mw);
			workers_gone(mw, "is gone (adopted: its exit status is "
			    "not ours to know)", WORKER_GONE_UNKNOWN);
		}
		break;
	case PEER_MALFORMED:
		/* Our own peer talks nonsense: a bug; replace it. */
		log_warnx("worker %d (pid %ld): malformed message, restarting "
		    "it", mw->id, (long)mw->pid);
		workers_kill(mw);
		break;
	default:
		log_warn("worker %d: event socket (%zu messages not sent)",
		    mw->id, peer_waiting(p));
		workers_kill(mw);
		break;
	}
}

static const struct peer_type wk_types[] = {
	{ IPC_READY, wk_ready },
	{ IPC_ACTIVE, wk_forward },
	{ IPC_ERROR, wk_forward },
	{ IPC_REMOVED, wk_forward },
	{ IPC_TCP_ACCEPTED, wk_forward },
	{ IPC_CLOSED, wk_forward },
	{ IPC_HELLO, wk_hello },
	{ IPC_HAVE, wk_have },
	{ IPC_LATCHED, wk_forward },
	{ IPC_REFUSED, wk_forward },
	{ IPC_DTMF, wk_forward },
	{ IPC_RECORDING, wk_forward },
	{ 0, NULL }
};

/* A stale message (an earlier generation's) is dropped, not malformed. */
static const struct peer_ops wk_peer_ops = {
	wk_types, wk_peer_gone, PEER_GEN_DROP, 256
};

/* Talk to worker mw over sock from now on (spawned, or adopted). */
void
workers_attach(struct worker_proc *mw, int sock)
{
	char name[32];

	mw->ready = 0;
	mw->killed = 0;
	mw->started_ms = mono_ms();
	mw->ready_ms = 0;
	snprintf(name, sizeof(name), "worker %d", mw->id);
	if (peer_open(&mw->peer, W.base, sock, "master", name, mw->gen,
	    &wk_peer_ops, mw) == -1)
		fatalx("worker %d: event_new", mw->id);
}

/*
 * Before handing over: what waits for room in the workers' sockets goes
 * now (up to ms), so that the new master finds the workers up to date.
 */
void
workers_flush_all(int ms)
{
	struct worker_proc	*mw;
	int64_t			 end = mono_ms() + ms;
	int			 i;

	for (i = 0; i < W.n; i++) {
		mw = &W.w[i];
		(void)peer_flush(&mw->peer,
		    (int)(end > mono_ms() ? end - mono_ms() : 0));
	}
}

static void
wk_respawn_cb(evutil_socket_t fd, short ev, void *arg)
{
	workers_spawn(arg);
}

void
workers_spawn(struct worker_proc *mw)
{
	char		 a_id[16], a_gen[16], a_lvl[16], a_fac[16];
	char		*argv[9];
	struct shm_worker *sw;
	sigset_t	 all;
	int		 sv[2], bufsz = 4 * 1024 * 1024, kfd;
	pid_t		 pid;

	if (W.stopping)
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("worker %d: socketpair", mw->id);
		goto retry;
	}
	/* Session hand-over bursts (a restore) must not block either side. */
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &bufsz,
	    sizeof(bufsz)) == -1)
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsz,
		    sizeof(bufsz));
	mw->gen = atomic_fetch_add(&W.shm->hdr->worker_gen, 1) + 1;
	snprintf(a_id, sizeof(a_id), "%d", mw->id);
	snprintf(a_gen, sizeof(a_gen), "%u", mw->gen);
	snprintf(a_lvl, sizeof(a_lvl), "%d", log_getlevel());
	snprintf(a_fac, sizeof(a_fac), "%d", W.conf->log_facility);
	argv[0] = (char *)W.self;
	argv[1] = (char *)"--worker";
	argv[2] = a_id;
	argv[3] = a_gen;
	argv[4] = W.shm->name;
	argv[5] = a_lvl;
	argv[6] = a_fac;
	argv[7] = (char *)(W.foreground ? "1" : "0");
	argv[8] = NULL;

	pid = fork();
	if (pid == -1) {
		log_warn("worker %d: fork", mw->id);
		close(sv[0]);
		close(sv[1]);
		goto retry;
	}
	if (pid == 0) {
		/* Only async-signal-safe calls until exec: gRPC has threads. */
		kfd = W.kfwd_map;
		if (kfd == IPC_FD && (kfd = fcntl(kfd, F_DUPFD, IPC_KFWD_FD +
		    1)) == -1)
			_exit(127);
		if (sv[1] == IPC_FD) {
			if (fcntl(IPC_FD, F_SETFD, 0) == -1)
				_exit(127);
		} else if (dup2(sv[1], IPC_FD) == -1)
			_exit(127);
		/*
		 * The kernel fast path's map, opened by the master while it
		 * could: the worker writes it without any privilege.
		 */
		if (kfd == IPC_KFWD_FD) {
			if (fcntl(kfd, F_SETFD, 0) == -1)
				_exit(127);
		} else if (kfd != -1 && dup2(kfd, IPC_KFWD_FD) == -1)
			_exit(127);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		daemon_clear_ambient();	/* a worker binds nothing low */
		execv(W.self, argv);
		_exit(127);
	}
	close(sv[1]);
	/* The table says who the workers are, for a master that takes over. */
	sw = &W.shm->hdr->workers[mw->id];
	sw->port_lo = mw->port_lo;
	sw->port_hi = mw->port_hi;
	atomic_store(&sw->gen, mw->gen);
	atomic_store(&sw->pid, (int32_t)pid);
	if (mw->spawns++ > 0)
		atomic_fetch_add(&sw->restarts, 1);
	mw->pid = pid;
	workers_attach(mw, sv[0]);
	log_debug("worker %d started (pid %ld, generation %u)", mw->id,
	    (long)pid, mw->gen);
	return;
retry:
	{
		struct timeval tv = { 1, 0 };

		evtimer_add(mw->respawn_ev, &tv);
	}
}

static void
wk_closed(struct worker_proc *mw)
{
	if (mw->ready)
		W.nready--;
	mw->ready = 0;
	peer_close(&mw->peer);
	mw->pid = -1;
	if (mw->pid_ev != NULL) {
		event_free(mw->pid_ev);
		mw->pid_ev = NULL;
	}
	if (mw->pidfd != -1)
		close(mw->pidfd);
	mw->pidfd = -1;
	if (mw->adopt_ev != NULL)
		evtimer_del(mw->adopt_ev);
	mw->adopted = 0;
	if (W.shm->hdr != NULL && !W.handed_off)
		atomic_store(&W.shm->hdr->workers[mw->id].pid, 0);
}

/* Start mw again, but not sooner than WK_RESPAWN_MIN_MS after the last. */
static void
wk_respawn_soon(struct worker_proc *mw)
{
	struct timeval	tv;
	int64_t		wait;

	wait = mw->started_ms + WK_RESPAWN_MIN_MS - mono_ms();
	if (wait <= 0) {
		workers_spawn(mw);
		return;
	}
	tv.tv_sec = wait / 1000;
	tv.tv_usec = (wait % 1000) * 1000;
	evtimer_add(mw->respawn_ev, &tv);
}

/*
 * What ended a worker of ours, from its wait status: SIGKILL comes from
 * outside (an operator, the OOM killer) unless we sent it; a fault
 * signal or a failure exit is its own doing; anything else is unknown.
 */
static int
wk_death_cause(const struct worker_proc *mw, int status)
{
	if (mw->killed)
		return WORKER_GONE_UNKNOWN;
	if (WIFEXITED(status))
		return WEXITSTATUS(status) != 0 ? WORKER_GONE_CRASHED :
		    WORKER_GONE_UNKNOWN;
	switch (WTERMSIG(status)) {
	case SIGKILL:
		return WORKER_GONE_KILLED;
	case SIGSEGV:
	case SIGBUS:
	case SIGILL:
	case SIGFPE:
	case SIGABRT:
	case SIGSYS:
	case SIGTRAP:
		return WORKER_GONE_CRASHED;
	}
	return WORKER_GONE_UNKNOWN;
}

/*
 * A worker is gone (how: "killed by signal 9" and the like; cause: one of
 * WORKER_GONE_*): its copies of the sockets went with it.  A new worker
 * takes its sessions at once when what ended it will not come back by
 * itself: a kill from outside, or a crash in the middle of one session's
 * media, which counts against that session (session_worker_crashed; the
 * second time it is quarantined, so that one session cannot crash
 * workers for ever).  Any other death soon after the start is throttled:
 * respawning at once would likely repeat it.
 */
void
workers_gone(struct worker_proc *mw, const char *how, int cause)
{
	struct timeval	 tv;
	uint64_t	 busy = 0;
	int64_t		 lived, delay;
	int		 was_ready, explained;

	/*
	 * Young is soon after it was ready (or before it ever was): the
	 * start itself may take long (a loaded host, valgrind).
	 */
	lived = mono_ms() - (mw->ready_ms != 0 ? mw->ready_ms :
	    mw->started_ms);
	was_ready = mw->ready;
	if (W.stopping)
		log_debug("worker %d (pid %ld) stopped", mw->id,
		    (long)mw->pid);
	else
		log_warnx("worker %d (pid %ld) %s", mw->id, (long)mw->pid,
		    how);
	/* It is dead: what it wrote last is all it will write. */
	if (cause == WORKER_GONE_CRASHED && W.shm->hdr != NULL)
		busy = atomic_load_explicit(&W.shm->hdr->workers[mw->id].busy,
		    memory_order_relaxed);
	wk_closed(mw);
	if (lived >= WK_FAST_DEATH_MS && was_ready)
		mw->fast_deaths = mw->crash_run = 0;
	explained = cause == WORKER_GONE_KILLED;
	/*
	 * Crash after crash blamed on sessions, the worker never living
	 * long in between, looks more like a bug that every session hits:
	 * past WK_CRASH_RUN no more sessions are blamed (quarantined);
	 * the worker is throttled instead.
	 */
	if (busy != 0 && !W.stopping && mw->crash_run < WK_CRASH_RUN &&
	    W.ops.crashed(mw->id, SHM_BUSY_SLOT(busy),
	    SHM_BUSY_GEN(busy), how)) {
		explained = 1;
		mw->crash_run++;
	} else if (busy != 0 && mw->crash_run >= WK_CRASH_RUN)
		log_warnx("worker %d crashed on a session's media again, after "
		    "%d such crashes in a row: more like a bug any session "
		    "may hit; quarantining no more sessions, throttling the "
		    "worker", mw->id, mw->crash_run);
	W.ops.lost(mw->id);
	if (W.stopping) {
		workers_check_stopped();
		return;
	}
	/*
	 * A worker that dies young (or before it was ready) more than once
	 * in a row, for no reason we know of, waits longer each time.
	 */
	if (!explained && (lived < WK_FAST_DEATH_MS || !was_ready))
		mw->fast_deaths++;
	if (explained || mw->fast_deaths <= 1) {
		wk_respawn_soon(mw);
		return;
	}
	delay = 100LL << (mw->fast_deaths < 10 ? mw->fast_deaths : 10);
	if (delay > WK_RESPAWN_MAX_MS)
		delay = WK_RESPAWN_MAX_MS;
	log_warnx("worker %d died %d times in a row soon after start; "
	    "respawning in %lld ms", mw->id, mw->fast_deaths,
	    (long long)delay);
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(mw->respawn_ev, &tv);
}

/* While stopping: when the last worker is gone, the master is told. */
void
workers_check_stopped(void)
{
	int i;

	for (i = 0; i < W.n; i++)
		if (W.w[i].pid > 0)
			return;
	W.ops.all_stopped();
}

void
workers_signal_all(int sig)
{
	int		 i;

	for (i = 0; i < W.n; i++)
		if (W.w[i].pid > 0)
			kill(W.w[i].pid, sig);
}

/* Wait for every worker to be gone: ours by waitpid, adopted otherwise. */
void
workers_wait_all(void)
{
	struct worker_proc	*mw;
	int			 i;

	for (i = 0; i < W.n; i++) {
		mw = &W.w[i];
		if (mw->pid <= 0)
			continue;
		if (!mw->adopted) {
			waitpid(mw->pid, NULL, 0);
			continue;
		}
		proc_wait_gone(mw->pid, mw->pidfd, WK_STOP_WAIT_S * 1000);
		if (proc_alive(mw->pid)) {
			kill(mw->pid, SIGKILL);
			proc_wait_gone(mw->pid, mw->pidfd, 1000);
		}
	}
}

/*
 * Is pid a worker of this table ("rtpproxyd --worker ID GEN SHM ...")?
 * A pid in the table may have been reused by anything by now.
 */
static int
wk_is_worker(pid_t pid, const char *shm)
{
	char	 path[64], buf[4096];
	size_t	 n, i, arg = 0, at = 0;
	FILE	*f;
	int	 ok = 0;

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After a wrapper's own arguments (valgrind), if any. */
	for (i = 0; i < n; i += strlen(buf + i) + 1, arg++) {
		if (at == 0 && strcmp(buf + i, "--worker") == 0)
			at = arg;
		else if (at != 0 && arg == at + 3) {
			ok = strcmp(buf + i, shm) == 0;
			break;
		}
	}
	return ok;
}

static void
wk_adopted_gone(evutil_socket_t fd, short ev, void *arg)
{
	workers_gone(arg, "is gone (adopted: its exit status is not "
	    "ours to know)", WORKER_GONE_UNKNOWN);
}

static void
wk_adopt_late(evutil_socket_t fd, short ev, void *arg)
{
	struct worker_proc *mw = arg;

	if (mw->ready || mw->pid <= 0)
		return;
	log_warnx("worker %d (pid %ld) did not tell its sessions in %d s: "
	    "replacing it", mw->id, (long)mw->pid, WK_ADOPT_READY_S);
	workers_kill(mw);
}

/*
 * Adopt the worker the table lists for mw's id, if it is alive and
 * answers: 0; -1 and the caller spawns a new one (the old one, if it was
 * there at all, is killed first: its sockets hold the ports).
 */
int
workers_adopt(struct worker_proc *mw)
{
	struct shm_worker	*sw = &W.shm->hdr->workers[mw->id];
	struct sockaddr_un	 sun;
	struct ucred		 cred;
	struct timeval		 tv = { WK_ADOPT_READY_S, 0 };
	socklen_t		 len;
	pid_t			 pid = (pid_t)atomic_load(&sw->pid);
	int			 fd = -1, pidfd, tries;

	if (pid <= 0 || !proc_alive(pid))
		return -1;
	/* Without pidfds (an old kernel, valgrind), its socket's end tells. */
	pidfd = proc_pidfd(pid);
	ipc_adopt_name(&sun, &len, W.shm->name, pid);
	for (tries = 0; tries < 20; tries++) {
		if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) ==
		    -1)
			break;
		if (connect(fd, (struct sockaddr *)&sun, len) == 0)
			break;
		close(fd);
		fd = -1;
		if (errno != ECONNREFUSED && errno != EAGAIN)
			break;
		nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
	}
	len = sizeof(cred);
	if (fd == -1 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ==
	    -1 || cred.pid != pid) {
		if (fd != -1)
			close(fd);
		if (wk_is_worker(pid, W.shm->name)) {
			log_warnx("worker %d (pid %ld) cannot be adopted: "
			    "replacing it", mw->id, (long)pid);
			kill(pid, SIGKILL);
			proc_wait_gone(pid, pidfd, 2000);
		}
		if (pidfd != -1)
			close(pidfd);
		return -1;
	}
	mw->pid = pid;
	mw->gen = atomic_load(&sw->gen);
	mw->adopted = 1;
	mw->spawns = 1;
	mw->pidfd = pidfd;
	workers_attach(mw, fd);
	if (pidfd != -1) {
		mw->pid_ev = event_new(W.base, pidfd, EV_READ,
		    wk_adopted_gone, mw);
		if (mw->pid_ev == NULL)
			fatalx("worker %d: event_new", mw->id);
		event_add(mw->pid_ev, NULL);
	}
	if (mw->adopt_ev == NULL)
		mw->adopt_ev = evtimer_new(W.base, wk_adopt_late, mw);
	if (mw->adopt_ev == NULL)
		fatalx("worker %d: event_new", mw->id);
	evtimer_add(mw->adopt_ev, &tv);
	log_info("worker %d (pid %ld, generation %u): adopting it", mw->id,
	    (long)pid, mw->gen);
	return 0;
}


/*
 * What ended a child that waitpid reaped: if it was a worker, what is to
 * be done about it is done here; 0 if it was not one.
 */
int
workers_reaped(pid_t pid, int status)
{
	char	how[64];
	int	i;

	for (i = 0; i < W.n; i++) {
		if (W.w[i].pid != pid)
			continue;
		if (WIFSIGNALED(status))
			snprintf(how, sizeof(how), "killed by signal %d",
			    WTERMSIG(status));
		else
			snprintf(how, sizeof(how), "exited with status %d",
			    WEXITSTATUS(status));
		workers_gone(&W.w[i], how, wk_death_cause(&W.w[i], status));
		return 1;
	}
	return 0;
}

/* No more starts: the daemon is stopping. */
void
workers_stopping(void)
{
	int i;

	W.stopping = 1;
	for (i = 0; i < W.n; i++)
		evtimer_del(W.w[i].respawn_ev);
}

/* Ask each worker to stop, after what waits in its queue. */
void
workers_shutdown(void)
{
	struct ipc_hdr	h;
	int		i;

	for (i = 0; i < W.n; i++) {
		struct worker_proc *mw = &W.w[i];

		if (mw->pid <= 0)
			continue;
		/* After the REMOVEs that may wait: it answers those first. */
		ipc_init(&h, IPC_SHUTDOWN, mw->gen, 0, 0);
		if (workers_send(i, &h, NULL, 0) == -1)
			kill(mw->pid, SIGTERM);
	}
}

void
workers_setlog(int level)
{
	struct ipc_hdr	h;
	int		i;

	for (i = 0; i < W.n; i++) {
		ipc_init(&h, IPC_SETLOG, 0, 0, 0);
		h.arg = (uint32_t)level;
		(void)workers_send(i, &h, NULL, 0);
	}
}

/*
 * A new master has taken over: let go of the workers, which notice the
 * end of their sockets and wait for it; the table's list of them stays.
 */
void
workers_hand_off(void)
{
	int i;

	W.handed_off = 1;
	for (i = 0; i < W.n; i++) {
		peer_close(&W.w[i].peer);
	}
}

void
workers_cleanup(void)
{
	int i;

	for (i = 0; W.w != NULL && i < W.n; i++) {
		wk_closed(&W.w[i]);
		if (W.w[i].respawn_ev != NULL)
			event_free(W.w[i].respawn_ev);
		if (W.w[i].adopt_ev != NULL)
			event_free(W.w[i].adopt_ev);
	}
	free(W.w);
	W.w = NULL;
	W.n = 0;
}
