/*
 * The master process: configuration, the session table, the gRPC service,
 * and the supervision of the workers it fork+execs.  Everything runs on one
 * libevent loop; gRPC's own threads only hand completions to it.
 */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "acl.h"
#include "api.h"
#include "master.h"
#include "sessions.h"

#define MASTER_FAST_DEATH_MS	2000	/* died this soon: throttle */
#define MASTER_RESPAWN_MAX_MS	30000
#define MASTER_RESPAWN_MIN_MS	100	/* between two starts of a worker */
#define MASTER_CRASH_RUN	8	/* crashes blamed on sessions in a row */
#define MASTER_STOP_WAIT_S	5	/* then SIGKILL the workers */

struct master	*master_self;

static void	master_worker_closed(struct master_worker *);
static void	master_check_stopped(void);

static int	master_foreground;

void
master_worker_range(int id, uint16_t *lo, uint16_t *hi)
{
	struct master	*m = master_self;
	uint32_t	 pairs, first, last;

	pairs = ((uint32_t)m->conf->port_max - m->conf->port_min + 1) / 2;
	first = pairs * (uint32_t)id / (uint32_t)m->nworkers;
	last = pairs * (uint32_t)(id + 1) / (uint32_t)m->nworkers;
	*lo = (uint16_t)(m->conf->port_min + first * 2);
	*hi = (uint16_t)(m->conf->port_min + last * 2 - 1);
}

/* The worker whose range holds port, or -1 outside the range. */
int
master_worker_of_port(uint16_t port)
{
	struct master	*m = master_self;
	int		 i;

	if (port < m->conf->port_min || port > m->conf->port_max)
		return -1;
	for (i = 0; i < m->nworkers; i++)
		if (port >= m->workers[i].port_lo &&
		    port <= m->workers[i].port_hi)
			return i;
	return -1;
}

int
master_worker_ready(int id)
{
	return master_self->workers[id].ready;
}

/* Our own SIGKILL: its death is no news of what killed it. */
void
master_kill(struct master_worker *mw)
{
	if (mw->pid <= 0)
		return;
	mw->killed = 1;
	kill(mw->pid, SIGKILL);
}

static int
master_flush(struct master_worker *mw)
{
	int rc;

	rc = ipc_queue_flush(&mw->outq, mw->sock);
	if (rc == 1)
		event_add(mw->wev, NULL);
	else
		event_del(mw->wev);
	return rc == -1 ? -1 : 0;
}

static void
master_writable(evutil_socket_t fd, short ev, void *arg)
{
	struct master_worker *mw = arg;

	if (master_flush(mw) == -1) {
		log_warn("worker %d: event socket", mw->id);
		master_kill(mw);
	}
}

/*
 * Send a message to worker id, stamped with its generation.  When the
 * socket is full the message waits in order, with copies of its
 * descriptors, so the caller may close its own at once.  -1 if the worker
 * is not running or not ready.
 */
int
master_send(int id, struct ipc_hdr *h, const int *fds, int nfds)
{
	struct master_worker *mw = &master_self->workers[id];

	if (mw->sock == -1 || !mw->ready)
		return -1;
	h->wgen = mw->gen;
	switch (ipc_queue_send(&mw->outq, mw->sock, h, fds, nfds)) {
	case 0:
		return 0;
	case 1:
		event_add(mw->wev, NULL);
		return 0;
	}
	log_warn("worker %d: send", id);
	return -1;
}

/* Send now, ready or not (a worker being adopted); 0 or -1. */
int
master_send_now(int id, struct ipc_hdr *h)
{
	struct master_worker *mw = &master_self->workers[id];

	if (mw->sock == -1)
		return -1;
	h->wgen = mw->gen;
	return ipc_send(mw->sock, h, NULL, 0);
}

static void
master_all_ready(void)
{
	struct master *m = master_self;

	if (m->started)
		return;
	m->started = 1;
	log_info("all %d workers ready", m->nworkers);
	daemon_detach_done(m->notify_fd, 1);
	m->notify_fd = -1;
	if (m->adopting) {
		char buf[64];

		/* A new main process: NotifyAccess=all lets it say so. */
		snprintf(buf, sizeof(buf), "MAINPID=%ld\nREADY=1",
		    (long)getpid());
		daemon_notify(buf);
	} else
		daemon_notify("READY=1");
}

static void
master_readable(evutil_socket_t fd, short ev, void *arg)
{
	struct master_worker	*mw = arg;
	union {
		struct ipc_hdr	h;
		char		buf[IPC_MAXMSG];
	} msg;
	int			 fds[IPC_MAXFDS], nfds, i;
	ssize_t			 n;

	for (i = 0; i < 256; i++) {
		nfds = IPC_MAXFDS;
		n = ipc_recv(fd, msg.buf, sizeof(msg.buf), fds, &nfds);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		/*
		 * A worker that died with our messages unread: said once,
		 * then what it sent before can still be read, then the end.
		 */
		if (n == -1 && errno == ECONNRESET)
			continue;
		if (n == 0) {
			/* SIGCHLD (or its pidfd, if adopted) does the rest. */
			event_del(mw->ev);
			if (mw->adopted && mw->pidfd == -1) {
				/* No pidfd to tell: its socket's end does. */
				master_kill(mw);
				master_worker_gone(mw, "is gone (adopted: its "
				    "exit status is not ours to know)",
				    MASTER_GONE_UNKNOWN);
			}
			return;
		}
		if (n == -1 || ipc_check(msg.buf, (size_t)n, nfds) == -1 ||
		    msg.h.type >= IPC_ADD ||
		    ((msg.h.type == IPC_HELLO || msg.h.type == IPC_HAVE) &&
		    (!mw->adopted || mw->ready)) ||
		    (msg.h.type == IPC_HELLO && (msg.h.slot != (uint32_t)mw->id ||
		    msg.h.arg != (uint32_t)mw->pid))) {
			/* Our own peer talks nonsense: a bug; replace it. */
			log_warnx("worker %d (pid %ld): malformed message, "
			    "restarting it", mw->id, (long)mw->pid);
			while (nfds > 0)
				close(fds[--nfds]);
			event_del(mw->ev);
			master_kill(mw);
			return;
		}
		if (msg.h.wgen != mw->gen) {
			log_debug("worker %d: stale message (generation %u, "
			    "now %u)", mw->id, msg.h.wgen, mw->gen);
			continue;
		}
		if (msg.h.type == IPC_HELLO) {
			log_info("worker %d (pid %ld, generation %u) "
			    "adopted", mw->id, (long)mw->pid, mw->gen);
			continue;
		}
		if (msg.h.type == IPC_HAVE) {
			session_have(mw->id, (struct ipc_have *)&msg, fds,
			    nfds);
			continue;
		}
		if (msg.h.type == IPC_READY) {
			if (mw->ready)
				continue;
			mw->ready = 1;
			mw->ready_ms = mono_ms();
			if (mw->adopt_ev != NULL)
				evtimer_del(mw->adopt_ev);
			master_self->nready++;
			log_info("worker %d ready (pid %ld, generation %u, "
			    "ports %u-%u%s)", mw->id, (long)mw->pid, mw->gen,
			    mw->port_lo, mw->port_hi, mw->adopted ?
			    ", adopted" : "");
			session_worker_ready(mw->id);
			if (master_self->nready == master_self->nworkers)
				master_all_ready();
			continue;
		}
		session_ipc(mw->id, &msg.h, fds, nfds);
	}
}

/* Talk to worker mw over sock from now on (spawned, or adopted). */
void
master_worker_attach(struct master_worker *mw, int sock)
{
	struct master *m = master_self;

	mw->sock = sock;
	mw->ready = 0;
	mw->killed = 0;
	mw->started_ms = mono_ms();
	mw->ready_ms = 0;
	if (set_nonblock(mw->sock) == -1)
		fatal("worker %d: nonblock", mw->id);
	mw->ev = event_new(m->base, mw->sock, EV_READ | EV_PERSIST,
	    master_readable, mw);
	mw->wev = event_new(m->base, mw->sock, EV_WRITE, master_writable, mw);
	if (mw->ev == NULL || mw->wev == NULL)
		fatalx("worker %d: event_new", mw->id);
	event_add(mw->ev, NULL);
}

/*
 * Before handing over: what waits for room in the workers' sockets goes
 * now (up to ms), so that the new master finds the workers up to date.
 */
void
master_flush_all(int ms)
{
	struct master		*m = master_self;
	struct master_worker	*mw;
	int64_t			 end = mono_ms() + ms;
	int			 i;

	for (i = 0; i < m->nworkers; i++) {
		mw = &m->workers[i];
		if (mw->sock != -1 && ipc_queue_waiting(&mw->outq) > 0)
			(void)ipc_queue_drain(&mw->outq, mw->sock,
			    (int)(end > mono_ms() ? end - mono_ms() : 0));
	}
}

static void
master_respawn_cb(evutil_socket_t fd, short ev, void *arg)
{
	master_spawn(arg);
}

void
master_spawn(struct master_worker *mw)
{
	struct master	*m = master_self;
	char		 a_id[16], a_gen[16], a_lvl[16], a_fac[16];
	char		*argv[9];
	struct shm_worker *sw;
	sigset_t	 all;
	int		 sv[2], bufsz = 4 * 1024 * 1024;
	pid_t		 pid;

	if (m->stopping)
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
	mw->gen = atomic_fetch_add(&m->shm.hdr->worker_gen, 1) + 1;
	snprintf(a_id, sizeof(a_id), "%d", mw->id);
	snprintf(a_gen, sizeof(a_gen), "%u", mw->gen);
	snprintf(a_lvl, sizeof(a_lvl), "%d", log_getlevel());
	snprintf(a_fac, sizeof(a_fac), "%d", m->conf->log_facility);
	argv[0] = m->self;
	argv[1] = (char *)"--worker";
	argv[2] = a_id;
	argv[3] = a_gen;
	argv[4] = m->shm.name;
	argv[5] = a_lvl;
	argv[6] = a_fac;
	argv[7] = (char *)(master_foreground ? "1" : "0");
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
		if (sv[1] == IPC_FD) {
			if (fcntl(IPC_FD, F_SETFD, 0) == -1)
				_exit(127);
		} else if (dup2(sv[1], IPC_FD) == -1)
			_exit(127);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		daemon_clear_ambient();	/* a worker binds nothing low */
		execv(m->self, argv);
		_exit(127);
	}
	close(sv[1]);
	/* The table says who the workers are, for a master that takes over. */
	sw = &m->shm.hdr->workers[mw->id];
	sw->port_lo = mw->port_lo;
	sw->port_hi = mw->port_hi;
	atomic_store(&sw->gen, mw->gen);
	atomic_store(&sw->pid, (int32_t)pid);
	if (mw->spawns++ > 0)
		atomic_fetch_add(&sw->restarts, 1);
	mw->pid = pid;
	master_worker_attach(mw, sv[0]);
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
master_worker_closed(struct master_worker *mw)
{
	if (mw->ready)
		master_self->nready--;
	mw->ready = 0;
	if (mw->ev != NULL) {
		event_free(mw->ev);
		event_free(mw->wev);
		mw->ev = mw->wev = NULL;
	}
	ipc_queue_clear(&mw->outq);
	if (mw->sock != -1)
		close(mw->sock);
	mw->sock = -1;
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
	if (master_self->shm.hdr != NULL && !master_self->handed_off)
		atomic_store(&master_self->shm.hdr->workers[mw->id].pid, 0);
}

/* Start mw again, but not sooner than MASTER_RESPAWN_MIN_MS after the last. */
static void
master_respawn_soon(struct master_worker *mw)
{
	struct timeval	tv;
	int64_t		wait;

	wait = mw->started_ms + MASTER_RESPAWN_MIN_MS - mono_ms();
	if (wait <= 0) {
		master_spawn(mw);
		return;
	}
	tv.tv_sec = wait / 1000;
	tv.tv_usec = (wait % 1000) * 1000;
	evtimer_add(mw->respawn_ev, &tv);
}

/*
 * A worker is gone (how: "killed by signal 9" and the like; cause: one of
 * MASTER_GONE_*): its copies of the sockets went with it.  A new worker
 * takes its sessions at once when what ended it will not come back by
 * itself: a kill from outside, or a crash in the middle of one session's
 * media, which counts against that session (session_worker_crashed; the
 * second time it is quarantined, so that one session cannot crash
 * workers for ever).  Any other death soon after the start is throttled:
 * respawning at once would likely repeat it.
 */
void
master_worker_gone(struct master_worker *mw, const char *how, int cause)
{
	struct master	*m = master_self;
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
	if (m->stopping)
		log_debug("worker %d (pid %ld) stopped", mw->id,
		    (long)mw->pid);
	else
		log_warnx("worker %d (pid %ld) %s", mw->id, (long)mw->pid,
		    how);
	/* It is dead: what it wrote last is all it will write. */
	if (cause == MASTER_GONE_CRASHED && m->shm.hdr != NULL)
		busy = atomic_load_explicit(&m->shm.hdr->workers[mw->id].busy,
		    memory_order_relaxed);
	master_worker_closed(mw);
	if (lived >= MASTER_FAST_DEATH_MS && was_ready)
		mw->fast_deaths = mw->crash_run = 0;
	explained = cause == MASTER_GONE_KILLED;
	/*
	 * Crash after crash blamed on sessions, the worker never living
	 * long in between, looks more like a bug that every session hits:
	 * past MASTER_CRASH_RUN no more sessions are blamed (quarantined);
	 * the worker is throttled instead.
	 */
	if (busy != 0 && !m->stopping && mw->crash_run < MASTER_CRASH_RUN &&
	    session_worker_crashed(mw->id, SHM_BUSY_SLOT(busy),
	    SHM_BUSY_GEN(busy), how)) {
		explained = 1;
		mw->crash_run++;
	} else if (busy != 0 && mw->crash_run >= MASTER_CRASH_RUN)
		log_warnx("worker %d crashed on a session's media again, after "
		    "%d such crashes in a row: more like a bug any session "
		    "may hit; quarantining no more sessions, throttling the "
		    "worker", mw->id, mw->crash_run);
	session_worker_lost(mw->id);
	if (m->stopping) {
		master_check_stopped();
		return;
	}
	/*
	 * A worker that dies young (or before it was ready) more than once
	 * in a row, for no reason we know of, waits longer each time.
	 */
	if (!explained && (lived < MASTER_FAST_DEATH_MS || !was_ready))
		mw->fast_deaths++;
	if (explained || mw->fast_deaths <= 1) {
		master_respawn_soon(mw);
		return;
	}
	delay = 100LL << (mw->fast_deaths < 10 ? mw->fast_deaths : 10);
	if (delay > MASTER_RESPAWN_MAX_MS)
		delay = MASTER_RESPAWN_MAX_MS;
	log_warnx("worker %d died %d times in a row soon after start; "
	    "respawning in %lld ms", mw->id, mw->fast_deaths,
	    (long long)delay);
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(mw->respawn_ev, &tv);
}

/*
 * What ended a worker of ours, from its wait status: SIGKILL comes from
 * outside (an operator, the OOM killer) unless we sent it; a fault
 * signal or a failure exit is its own doing; anything else is unknown.
 */
static int
master_death_cause(const struct master_worker *mw, int status)
{
	if (mw->killed)
		return MASTER_GONE_UNKNOWN;
	if (WIFEXITED(status))
		return WEXITSTATUS(status) != 0 ? MASTER_GONE_CRASHED :
		    MASTER_GONE_UNKNOWN;
	switch (WTERMSIG(status)) {
	case SIGKILL:
		return MASTER_GONE_KILLED;
	case SIGSEGV:
	case SIGBUS:
	case SIGILL:
	case SIGFPE:
	case SIGABRT:
	case SIGSYS:
	case SIGTRAP:
		return MASTER_GONE_CRASHED;
	}
	return MASTER_GONE_UNKNOWN;
}

static void
master_reap(evutil_socket_t sig, short ev, void *arg)
{
	struct master		*m = master_self;
	struct master_worker	*mw;
	char			 how[64];
	pid_t			 pid;
	int			 status, i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (WIFSIGNALED(status))
			snprintf(how, sizeof(how), "killed by signal %d",
			    WTERMSIG(status));
		else
			snprintf(how, sizeof(how), "exited with status %d",
			    WEXITSTATUS(status));
		if (pid == m->up_pid) {
			log_warnx("the new master (pid %ld) %s%s", (long)pid,
			    how, m->handed_off ? "" :
			    " before it took over; carrying on");
			m->up_pid = -1;
			continue;
		}
		mw = NULL;
		for (i = 0; i < m->nworkers; i++)
			if (m->workers[i].pid == pid)
				mw = &m->workers[i];
		if (mw != NULL)
			master_worker_gone(mw, how,
			    master_death_cause(mw, status));
	}
}

static void
master_check_stopped(void)
{
	struct master	*m = master_self;
	int		 i;

	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].pid > 0)
			return;
	event_base_loopbreak(m->base);
}

static void
master_kill_workers(int sig)
{
	struct master	*m = master_self;
	int		 i;

	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].pid > 0)
			kill(m->workers[i].pid, sig);
}

/* Wait for every worker to be gone: ours by waitpid, adopted otherwise. */
static void
master_wait_workers(void)
{
	struct master		*m = master_self;
	struct master_worker	*mw;
	int			 i;

	for (i = 0; i < m->nworkers; i++) {
		mw = &m->workers[i];
		if (mw->pid <= 0)
			continue;
		if (!mw->adopted) {
			waitpid(mw->pid, NULL, 0);
			continue;
		}
		proc_wait_gone(mw->pid, mw->pidfd, MASTER_STOP_WAIT_S * 1000);
		if (proc_alive(mw->pid)) {
			kill(mw->pid, SIGKILL);
			proc_wait_gone(mw->pid, mw->pidfd, 1000);
		}
	}
}

/* SIGUSR2: a new master (maybe a new binary) takes over, losing nothing. */
static void
master_restart(evutil_socket_t sig, short ev, void *arg)
{
	takeover_begin(master_self);
}

static void
master_stop_timeout(evutil_socket_t fd, short ev, void *arg)
{
	log_warnx("workers did not stop in %d s; killing them",
	    MASTER_STOP_WAIT_S);
	master_kill_workers(SIGKILL);
}

/* Sessions and gRPC are wound down: stop the workers. */
static void
master_grpc_drained(void)
{
	struct master	*m = master_self;
	struct ipc_hdr	 h;
	struct timeval	 tv = { MASTER_STOP_WAIT_S, 0 };
	int		 i;

	for (i = 0; i < m->nworkers; i++) {
		struct master_worker *mw = &m->workers[i];

		if (mw->pid <= 0)
			continue;
		/* After the REMOVEs that may wait: it answers those first. */
		ipc_init(&h, IPC_SHUTDOWN, mw->gen, 0, 0);
		if (master_send(i, &h, NULL, 0) == -1)
			kill(mw->pid, SIGTERM);
	}
	event_base_once(m->base, -1, EV_TIMEOUT, master_stop_timeout, NULL,
	    &tv);
	master_check_stopped();
}

static void
master_stop(evutil_socket_t sig, short ev, void *arg)
{
	struct master	*m = master_self;
	int		 i;

	if (m->stopping) {
		log_notice("received signal %d again: stopping now",
		    (int)sig);
		m->stopping = 2;
		master_kill_workers(SIGKILL);
		event_base_loopbreak(m->base);
		return;
	}
	log_notice("received signal %d: stopping (again to stop at once)",
	    (int)sig);
	daemon_notify("STOPPING=1");
	m->stopping = 1;
	for (i = 0; i < m->nworkers; i++)
		evtimer_del(m->workers[i].respawn_ev);
	session_close_all(SHM_CLOSE_SHUTDOWN);
	grpcsvc_drain(master_grpc_drained);
}

static int
master_listen_equal(const struct config *a, const struct config *b)
{
	int i;

	if (a->nlisten != b->nlisten)
		return 0;
	for (i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i], b->listen[i]) != 0)
			return 0;
	return 1;
}

/*
 * The descriptors the master may need: four a session (RTP and RTCP, each
 * side), three an API connection (the client's and a socketpair to gRPC),
 * the metrics connections, the workers', and some for gRPC, logs and the
 * like.  API connections are capped, so the sessions' share is theirs.
 */
uint64_t
master_nofile(const struct config *conf, int nworkers)
{
	return (uint64_t)conf->max_sessions * 4 +
	    (uint64_t)conf->api_max_conns * 3 + (uint64_t)nworkers * 4 + 256;
}

static int
master_str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* The first line of a file under /proc into buf ("" if unreadable). */
static void
master_proc_line(const char *path, char *buf, size_t len)
{
	FILE *f;

	buf[0] = '\0';
	if ((f = fopen(path, "re")) == NULL)
		return;
	if (fgets(buf, (int)len, f) == NULL)
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

/*
 * Warn when the kernel may give ports of the media range to other
 * programs' sockets (the ephemeral ports, less the reserved ones): then
 * sessions find them taken now and then.  Said again only when the range
 * or the kernel's settings changed since.
 */
static void
master_check_ephemeral(uint16_t min, uint16_t max, const char *when)
{
	static char	last[4200];
	char		range[64], reserved[4096], now[4200];
	uint16_t	lo, hi;
	int		n;

	master_proc_line("/proc/sys/net/ipv4/ip_local_port_range", range,
	    sizeof(range));
	master_proc_line("/proc/sys/net/ipv4/ip_local_reserved_ports",
	    reserved, sizeof(reserved));
	snprintf(now, sizeof(now), "%u %u|%s|%s", min, max, range, reserved);
	if (strcmp(now, last) == 0)
		return;
	snprintf(last, sizeof(last), "%s", now);
	if ((n = ports_ephemeral(min, max, range, reserved, &lo, &hi)) <= 0)
		return;
	range[strcspn(range, " \t")] = '-';
	log_warnx("%sport-range %u-%u overlaps the kernel's ephemeral ports "
	    "%s (net.ipv4.ip_local_port_range) in %u-%u, %d of them not "
	    "reserved: the kernel gives those to other programs' sockets, and "
	    "sessions then find them taken; reserve them (sysctl "
	    "net.ipv4.ip_local_reserved_ports=%u-%u) or move one range away "
	    "from the other", when, min, max, range, lo, hi, n, lo, hi);
}

static void
master_reload(evutil_socket_t sig, short ev, void *arg)
{
	struct master	*m = master_self;
	struct config	 nc, *c = m->conf;
	struct ipc_hdr	 h;
	char		 err[512];
	int		 i;

	if (m->stopping)
		return;
	daemon_notify("RELOADING=1");
	if (c->path == NULL) {
		log_notice("SIGHUP: no configuration file to reload");
		daemon_notify("READY=1");
		return;
	}
	memset(&nc, 0, sizeof(nc));
	if (config_load(&nc, c->path, 1, err, sizeof(err)) == -1) {
		log_warnx("reload refused, running configuration kept: %s",
		    err);
		daemon_notify("READY=1");
		return;
	}
	if (m->overrides != NULL)
		m->overrides(&nc);

	if (!master_listen_equal(c, &nc))
		log_warnx("reload: listen changed: needs a restart");
	if (nc.workers != c->workers)
		log_warnx("reload: workers changed: needs a restart");
	if (nc.port_min != c->port_min || nc.port_max != c->port_max) {
		log_warnx("reload: port-range changed: needs a restart");
		master_check_ephemeral(nc.port_min, nc.port_max,
		    "reload: the new ");
	}
	if (!master_str_equal(nc.shm_name, c->shm_name))
		log_warnx("reload: shm-name changed: needs a restart");
	if (!master_str_equal(nc.user, c->user) ||
	    !master_str_equal(nc.group, c->group))
		log_warnx("reload: user/group changed: needs a restart");
	if (!master_str_equal(nc.pidfile, c->pidfile))
		log_warnx("reload: pidfile changed: needs a restart");
	if (nc.log_facility != c->log_facility)
		log_warnx("reload: syslog-facility changed: needs a restart");
	if (nc.max_sessions > m->shm.nslots) {
		log_warnx("reload: max-sessions %u exceeds the table sized "
		    "at start (%u): using %u; restart to grow it",
		    nc.max_sessions, m->shm.nslots, m->shm.nslots);
		nc.max_sessions = m->shm.nslots;
	}

	if (!master_str_equal(nc.metrics_listen, c->metrics_listen))
		log_warnx("reload: metrics-listen changed: needs a restart");
	if (nc.api_idle_timeout != c->api_idle_timeout)
		log_warnx("reload: api-idle-timeout changed: needs a restart");
	if (nc.api_max_streams != c->api_max_streams)
		log_warnx("reload: api-max-streams changed: needs a restart");
	if (nc.api_max_conns > c->api_max_conns &&
	    daemon_raise_nofile(master_nofile(&nc, m->nworkers), err,
	    sizeof(err)) == -1) {
		log_warnx("reload: api-max-connections %u: %s; keeping %u",
		    nc.api_max_conns, err, c->api_max_conns);
		nc.api_max_conns = c->api_max_conns;
	}

	/* Take over what changes live; nc's copies go with config_free. */
#define MOVE(f) do { typeof(c->f) t_ = c->f; c->f = nc.f; nc.f = t_; } while (0)
	MOVE(rules);
	MOVE(nrules);
	MOVE(auth_token_file);
	MOVE(auth_token_line);
	MOVE(tokens);
	MOVE(ntokens);
	MOVE(tls_cert);
	MOVE(tls_key);
	MOVE(tls_client_ca);
	for (i = 0; i < 3; i++) {
		MOVE(tls_pem[i]);
		MOVE(tls_line[i]);
	}
#undef MOVE
	c->reverse_source = nc.reverse_source;
	c->rate_pps = nc.rate_pps;
	c->rate_bps = nc.rate_bps;
	c->rate_burst_ms = nc.rate_burst_ms;
	c->latch_policy = nc.latch_policy;
	c->latch_learn_ms = nc.latch_learn_ms;
	c->latch_quiet_ms = nc.latch_quiet_ms;
	c->latch_run = nc.latch_run;
	c->auth_health_open = nc.auth_health_open;
	c->orphan_timeout = nc.orphan_timeout;
	atomic_store(&m->shm.hdr->orphan_timeout, c->orphan_timeout);
	c->max_sessions = nc.max_sessions;
	c->idle_timeout = nc.idle_timeout;
	c->setup_timeout = nc.setup_timeout;
	c->stats_interval = nc.stats_interval;
	c->event_queue = nc.event_queue;
	c->shutdown_grace = nc.shutdown_grace;
	c->api_max_conns = nc.api_max_conns;
	c->api_max_per_client = nc.api_max_per_client;
	c->api_handshake_timeout = nc.api_handshake_timeout;
	if (c->log_level != nc.log_level) {
		c->log_level = nc.log_level;
		log_setlevel(c->log_level);
		for (i = 0; i < m->nworkers; i++) {
			ipc_init(&h, IPC_SETLOG, 0, 0, 0);
			h.arg = (uint32_t)c->log_level;
			(void)master_send(i, &h, NULL, 0);
		}
	}
	config_free(&nc);
	session_reconfigure(c);
	grpcsvc_reconfigure(c);
	log_notice("configuration reloaded from %s: max-sessions %u, "
	    "idle-timeout %u s, setup-timeout %u s, log-level %s",
	    c->path, c->max_sessions, c->idle_timeout, c->setup_timeout,
	    log_level_name(c->log_level));
	daemon_notify("READY=1");
}

#define TABLE_NONE	0	/* no table of that name */
#define TABLE_LIVE	1	/* its master runs */
#define TABLE_ORPHANED	2	/* its master is gone: take it over */
#define TABLE_FOREIGN	3	/* a layout this build cannot read */

/*
 * What the table of that name is, and its master's pid.  A table of
 * another layout version is judged by the fields every version shares.
 */
static int
master_table_state(const char *name, pid_t *owner)
{
	struct shm_table	 t;
	struct shm_header	 h;
	int			 fd, st = TABLE_NONE;

	*owner = 0;
	if (shm_attach(&t, name) == 0) {
		*owner = (pid_t)atomic_load(&t.hdr->master_pid);
		shm_detach(&t);
		st = TABLE_ORPHANED;
	} else if (errno == EPROTO &&
	    (fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0)) != -1) {
		if (pread(fd, &h, sizeof(h), 0) >=
		    (ssize_t)offsetof(struct shm_header, nworkers) &&
		    h.magic == SHM_MAGIC)
			*owner = (pid_t)h.master_pid;
		close(fd);
		st = TABLE_FOREIGN;
	}
	if (st != TABLE_NONE && *owner > 0 && *owner != getpid() &&
	    proc_alive(*owner))
		st = TABLE_LIVE;
	return st;
}

static void
master_cleanup(struct master *m)
{
	int i;

	for (i = 0; m->workers != NULL && i < m->nworkers; i++) {
		master_worker_closed(&m->workers[i]);
		if (m->workers[i].respawn_ev != NULL)
			event_free(m->workers[i].respawn_ev);
		if (m->workers[i].adopt_ev != NULL)
			event_free(m->workers[i].adopt_ev);
	}
	free(m->workers);
	if (m->shm.hdr != NULL) {
		if (!m->handed_off && shm_unlink_table(&m->shm) == -1)
			log_warn("shm_unlink %s", m->shm.name);
		shm_detach(&m->shm);
	}
	/* Handed over, the pid file and its lock are the new master's. */
	if (m->pidfd != -1 && !m->handed_off)
		daemon_pidfile_close(m->pidfd, m->conf->pidfile);
	else if (m->pidfd != -1)
		close(m->pidfd);
	if (m->up_ev != NULL)
		event_free(m->up_ev);
	if (m->up_timer != NULL)
		event_free(m->up_timer);
	if (m->up_sock != -1)
		close(m->up_sock);
}

/*
 * Attach the table a previous master left, and keep its layout: its
 * workers relay their port ranges, and its slots are sized as they are.
 */
static int
master_attach(struct master *m)
{
	struct config		*c = m->conf;
	struct shm_header	*h;

	if (shm_attach(&m->shm, c->shm_name) == -1) {
		log_warn("shared memory %s", c->shm_name);
		return -1;
	}
	m->shm.owner = 1;
	h = m->shm.hdr;
	if (h->nworkers == 0 || h->nworkers > SHM_MAX_WORKERS ||
	    h->port_min >= h->port_max) {
		log_warnx("shared memory %s: no usable layout in it",
		    c->shm_name);
		return -1;
	}
	if ((int)h->nworkers != m->nworkers || h->port_min != c->port_min ||
	    h->port_max != c->port_max)
		log_warnx("taking over: keeping the running %u workers and "
		    "port-range %u-%u; a change of workers or port-range needs "
		    "a full restart", h->nworkers, h->port_min, h->port_max);
	m->nworkers = (int)h->nworkers;
	c->port_min = h->port_min;
	c->port_max = h->port_max;
	if (c->max_sessions > m->shm.nslots)
		c->max_sessions = m->shm.nslots;
	atomic_store(&h->master_pid, (int64_t)getpid());
	return 0;
}

int
master_main(struct config *conf, int foreground,
    void (*overrides)(struct config *), char **argv)
{
	static struct master	 m;
	struct event		*ev_term, *ev_int, *ev_hup, *ev_chld, *ev_usr2;
	char			 err[512];
	ssize_t			 n;
	long			 ncpu;
	uint64_t		 need;
	uint32_t		 pairs;
	pid_t			 other;
	const char		*low = NULL;
	int			 i, rc = 1, table, api_up, metrics_up;
	int			 keep_bind;

	memset(&m, 0, sizeof(m));
	master_self = &m;
	m.conf = conf;
	m.argv = argv;
	m.notify_fd = -1;
	m.pidfd = -1;
	m.up_pid = -1;
	m.up_sock = -1;
	m.overrides = overrides;
	m.takeover_fd = takeover_from_env();
	master_foreground = foreground;
	log_init(1, conf->log_level, conf->log_facility, "rtpproxyd");

	if ((n = readlink("/proc/self/exe", m.self, sizeof(m.self) - 1)) <= 0)
		fatal("readlink /proc/self/exe");
	m.self[n] = '\0';
	/* A binary replaced on disk is "... (deleted)": exec the path. */
	if (n > 10 && strcmp(m.self + n - 10, " (deleted)") == 0)
		m.self[n - 10] = '\0';

	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	m.nworkers = conf->workers > 0 ? conf->workers :
	    (ncpu > 0 ? (int)ncpu : 1);
	pairs = ((uint32_t)conf->port_max - conf->port_min + 1) / 2;
	if (pairs < (uint32_t)m.nworkers * 2)
		fatalx("port-range %u-%u is too small for %d workers "
		    "(each needs at least 2 port pairs)", conf->port_min,
		    conf->port_max, m.nworkers);

	need = master_nofile(conf, m.nworkers);
	if (daemon_raise_nofile(need, err, sizeof(err)) == -1)
		fatalx("%s", err);

	/* The master we take over from holds the pid file: it hands it over. */
	if (m.takeover_fd == -1 && conf->pidfile != NULL &&
	    (m.pidfd = daemon_pidfile_open(conf->pidfile, &other, err,
	    sizeof(err))) == -1)
		fatalx("%s", err);
	table = master_table_state(conf->shm_name, &other);
	if (table == TABLE_LIVE && m.takeover_fd == -1)
		fatalx("shared memory %s belongs to a running rtpproxyd "
		    "(pid %ld): is another instance running? (set shm-name)",
		    conf->shm_name, (long)other);
	if (m.takeover_fd != -1 && (table == TABLE_NONE ||
	    table == TABLE_FOREIGN))
		fatalx("cannot take over: shared memory %s %s",
		    conf->shm_name, table == TABLE_NONE ? "does not exist" :
		    "has another layout version: stop and start the daemon "
		    "instead");
	if (table == TABLE_FOREIGN)
		log_warnx("shared memory %s has another layout version and its "
		    "master (pid %ld) is gone: starting afresh, its sessions "
		    "are lost", conf->shm_name, (long)other);
	m.adopting = table == TABLE_LIVE || table == TABLE_ORPHANED;
	if (table == TABLE_ORPHANED)
		log_notice("shared memory %s was left by a master that is gone "
		    "(pid %ld): taking over its sessions and workers",
		    conf->shm_name, (long)other);

	if (!foreground && m.takeover_fd == -1) {
		if (daemon_detach(&m.notify_fd) == -1)
			fatal("daemon");
		log_init(0, conf->log_level, conf->log_facility, "rtpproxyd");
	} else if (!foreground)
		log_init(0, conf->log_level, conf->log_facility, "rtpproxyd");
	if (m.pidfd != -1 && daemon_pidfile_write(m.pidfd) == -1)
		log_warn("pidfile %s", conf->pidfile);

	signal(SIGPIPE, SIG_IGN);
	if ((m.base = event_base_new()) == NULL)
		fatalx("event_base_new");

	/*
	 * Bind the API before dropping privileges: its port may be low.  A
	 * new master binds beside the one it takes over from (SO_REUSEPORT),
	 * so that the API never stops listening; otherwise a port in use is
	 * refused first, so that two daemons never share one.
	 */
	if (m.takeover_fd == -1 &&
	    takeover_probe_listen(conf, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		goto out;
	}
	api_up = grpcsvc_start(m.base, conf) == 0;
	metrics_up = api_up && metrics_bind(conf) == 0;
	if (!metrics_up && m.takeover_fd == -1)
		goto out;
	keep_bind = conf->user != NULL && takeover_privileged(conf, &low);
	if (daemon_drop_privileges(conf->user, conf->group, keep_bind, err,
	    sizeof(err)) == -1) {
		log_warnx("%s", err);
		goto out;
	}
	if (keep_bind)
		log_info("running as user %s with CAP_NET_BIND_SERVICE, so that "
		    "a new master can bind %s again", conf->user, low);
	if (!api_up)
		/*
		 * SO_REUSEPORT needs the same user on both sockets: an old
		 * master that bound as root before it switched to `user`
		 * has to let go of the API first, and this one binds then.
		 */
		log_notice("taking over: cannot listen beside the old master "
		    "(it bound as another user): listening once it lets go");
	if (m.takeover_fd != -1 && !metrics_up &&
	    takeover_may_listen(conf, err, sizeof(err)) == -1) {
		log_warnx("cannot take over: %s; the old master carries on",
		    err);
		goto out;
	}
	if (m.takeover_fd != -1 &&
	    takeover_handshake(&m, &api_up, err, sizeof(err)) == -1) {
		log_warnx("cannot take over: %s", err);
		goto out;
	}
	if (!metrics_up && takeover_listen(&m, api_up) == -1) {
		log_warnx("cannot listen on the API: stopping; start "
		    "rtpproxyd again to take over the sessions, which the "
		    "workers relay on meanwhile");
		goto out;
	}

	if (m.adopting) {
		if (master_attach(&m) == -1)
			goto out;
	} else if (shm_create(&m.shm, conf->shm_name, conf->max_sessions +
	    conf->max_sessions / 8 + 16) == -1) {
		/*
		 * Spare slots: a destroyed session's slot is reused only
		 * once its worker has let go, and a reload may raise
		 * max-sessions a little.
		 */
		log_warn("shared memory %s (%u slots)", conf->shm_name,
		    conf->max_sessions);
		goto out;
	}
	log_debug("session table %s: %u slots of %zu bytes, %zu bytes",
	    m.shm.name, m.shm.nslots, sizeof(struct shm_slot), m.shm.size);
	m.shm.hdr->nworkers = (uint32_t)m.nworkers;
	m.shm.hdr->port_min = conf->port_min;
	m.shm.hdr->port_max = conf->port_max;
	master_check_ephemeral(conf->port_min, conf->port_max, "");
	atomic_store(&m.shm.hdr->orphan_timeout, conf->orphan_timeout);
	atomic_fetch_add(&m.shm.hdr->master_starts, 1);

	m.workers = xcalloc((size_t)m.nworkers, sizeof(*m.workers));
	for (i = 0; i < m.nworkers; i++) {
		struct master_worker *mw = &m.workers[i];

		mw->id = i;
		mw->sock = -1;
		mw->pid = -1;
		mw->pidfd = -1;
		ipc_queue_init(&mw->outq, 0);
		master_worker_range(i, &mw->port_lo, &mw->port_hi);
		mw->respawn_ev = evtimer_new(m.base, master_respawn_cb, mw);
	}
	if (session_init(&m) == -1 || metrics_start(m.base) == -1)
		goto out;
	if (m.adopting)
		session_adopt_table();

	ev_term = evsignal_new(m.base, SIGTERM, master_stop, NULL);
	ev_int = evsignal_new(m.base, SIGINT, master_stop, NULL);
	ev_hup = evsignal_new(m.base, SIGHUP, master_reload, NULL);
	ev_chld = evsignal_new(m.base, SIGCHLD, master_reap, NULL);
	ev_usr2 = evsignal_new(m.base, SIGUSR2, master_restart, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_hup, NULL);
	event_add(ev_chld, NULL);
	event_add(ev_usr2, NULL);

	for (i = 0; i < m.nworkers; i++)
		if (!m.adopting || takeover_adopt(&m, &m.workers[i]) == -1)
			master_spawn(&m.workers[i]);
	log_info("rtpproxyd %s %s: %d workers, ports %u-%u, "
	    "max-sessions %u, API on %s%s", PACKAGE_VERSION, m.adopting ?
	    "taking over" : "starting", m.nworkers, conf->port_min,
	    conf->port_max, conf->max_sessions, conf->listen[0],
	    conf->nlisten > 1 ? " (and more)" : "");

	event_base_dispatch(m.base);
	/*
	 * Stopping already: a signal from now on (a second ^C that came
	 * late) must not kill us halfway through the clean-up.
	 */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);

	if (m.handed_off) {
		/* The new master has it all: leave workers and table be. */
		log_notice("handed over to the new master (pid %ld)",
		    (long)m.up_pid);
	} else {
		if (m.stopping == 2)
			master_kill_workers(SIGKILL);
		/* Reap what is left: a worker must not outlive us. */
		master_wait_workers();
	}
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_free(ev_chld);
	event_free(ev_usr2);
	/*
	 * Freeing a signal event puts back the handler from before it was
	 * added, the default one, which a late signal would die of.
	 */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	session_shutdown();
	rc = 0;
	log_notice("stopped");
out:
	metrics_stop();
	grpcsvc_stop();
	master_cleanup(&m);
	if (m.base != NULL)
		event_base_free(m.base);
	daemon_detach_done(m.notify_fd, rc == 0);
	return rc;
}
