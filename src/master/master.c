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

#include <linux/capability.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
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
#include "kfwd.h"
#include "repl.h"
#include "sessions.h"

#define MASTER_STOP_WAIT_S	5	/* then SIGKILL the workers */
#define MASTER_REDIS_WAIT_MS	1000	/* for Redis's last answers */

static struct master *master_self;

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
master_loopbreak(void)
{
	event_base_loopbreak(master_self->base);
}

/*
 * Stopping, and the last worker is gone: once Redis has the deletes of
 * the sessions just closed (a second at most), or the restart of this
 * node would bring them back.
 */
static void
master_all_stopped(void)
{
	if (master_self->stopping == 2)
		master_loopbreak();
	else
		redis_drain(master_loopbreak, MASTER_REDIS_WAIT_MS);
}

static void
master_reap(evutil_socket_t sig, short ev, void *arg)
{
	struct master	*m = master_self;
	char		 how[64];
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (workers_reaped(pid, status) || pid != m->up_pid)
			continue;
		if (WIFSIGNALED(status))
			snprintf(how, sizeof(how), "killed by signal %d",
			    WTERMSIG(status));
		else
			snprintf(how, sizeof(how), "exited with status %d",
			    WEXITSTATUS(status));
		log_warnx("the new master (pid %ld) %s%s", (long)pid, how,
		    m->handed_off ? "" : " before it took over; carrying on");
		m->up_pid = -1;
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
	workers_signal_all(SIGKILL);
}

/* Sessions and gRPC are wound down: stop the workers. */
static void
master_grpc_drained(void)
{
	struct timeval tv = { MASTER_STOP_WAIT_S, 0 };

	workers_shutdown();
	event_base_once(master_self->base, -1, EV_TIMEOUT,
	    master_stop_timeout, NULL, &tv);
	workers_check_stopped();
}

static void
master_stop(evutil_socket_t sig, short ev, void *arg)
{
	struct master	*m = master_self;

	if (m->stopping) {
		log_notice("received signal %d again: stopping now",
		    (int)sig);
		m->stopping = 2;
		workers_signal_all(SIGKILL);
		event_base_loopbreak(m->base);
		return;
	}
	log_notice("received signal %d: stopping (again to stop at once)",
	    (int)sig);
	daemon_notify("STOPPING=1");
	m->stopping = 1;
	workers_stopping();
	session_stopping();
	session_close_all(SHM_CLOSE_SHUTDOWN);
	grpcsvc_drain(master_grpc_drained);
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
	workers_cleanup();
	/* Set up before the table, which then failed: nothing relays yet. */
	if (m->kfwd && !m->handed_off && !m->adopting)
		kfwd_stop(m->kfwd_dir, m->conf->shm_name, m->kf.dir);
	m->kfwd = 0;
	kfwd_release(&m->kf);
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
	peer_close(&m->up);
	if (m->up_timer != NULL)
		event_free(m->up_timer);
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

/*
 * Everything that does not depend on how this master starts: its binary,
 * its workers' number, its descriptors, the pid file; and what the table
 * of its name says about how it starts (TABLE_*).
 */
static int
master_prepare(struct master *m)
{
	struct config	*conf = m->conf;
	char		 err[512];
	ssize_t		 n;
	long		 ncpu;
	uint32_t	 pairs;
	pid_t		 other;
	int		 table;

	if ((n = readlink("/proc/self/exe", m->self, sizeof(m->self) - 1)) <= 0)
		fatal("readlink /proc/self/exe");
	m->self[n] = '\0';
	/* A binary replaced on disk is "... (deleted)": exec the path. */
	if (n > 10 && strcmp(m->self + n - 10, " (deleted)") == 0)
		m->self[n - 10] = '\0';

	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	m->nworkers = conf->workers > 0 ? conf->workers :
	    (ncpu > 0 ? (int)ncpu : 1);
	pairs = ((uint32_t)conf->port_max - conf->port_min + 1) / 2;
	if (pairs < (uint32_t)m->nworkers * 2)
		fatalx("port-range %u-%u is too small for %d workers "
		    "(each needs at least 2 port pairs)", conf->port_min,
		    conf->port_max, m->nworkers);
	if (daemon_raise_nofile(reload_nofile(conf, m->nworkers), err,
	    sizeof(err)) == -1)
		fatalx("%s", err);

	/* The master we take over from holds the pid file: it hands it over. */
	if (m->takeover_fd == -1 && conf->pidfile != NULL &&
	    (m->pidfd = daemon_pidfile_open(conf->pidfile, &other, err,
	    sizeof(err))) == -1)
		fatalx("%s", err);
	table = master_table_state(conf->shm_name, &other);
	if (table == TABLE_LIVE && m->takeover_fd == -1)
		fatalx("shared memory %s belongs to a running rtpproxyd "
		    "(pid %ld): is another instance running? (set shm-name)",
		    conf->shm_name, (long)other);
	if (m->takeover_fd != -1 && (table == TABLE_NONE ||
	    table == TABLE_FOREIGN))
		fatalx("cannot take over: shared memory %s %s",
		    conf->shm_name, table == TABLE_NONE ? "does not exist" :
		    "has another layout version: stop and start the daemon "
		    "instead");
	if (table == TABLE_FOREIGN)
		log_warnx("shared memory %s has another layout version and its "
		    "master (pid %ld) is gone: starting afresh, its sessions "
		    "are lost", conf->shm_name, (long)other);
	if (table == TABLE_ORPHANED)
		log_notice("shared memory %s was left by a master that is gone "
		    "(pid %ld): taking over its sessions and workers",
		    conf->shm_name, (long)other);
	return table;
}

/*
 * The API and metrics listeners, bound before privileges go (a port may
 * be low).  A new master binds beside the one it takes over from
 * (SO_REUSEPORT), so that the API never stops listening, and then has the
 * old one let go; otherwise a port in use is refused first, so that two
 * daemons never share one.  0, or -1 (logged).
 */
static int	master_kfwd(struct master *);

static int
master_listen(struct master *m)
{
	struct config	*conf = m->conf;
	char		 err[512];
	const char	*low = NULL;
	int		 api_up, metrics_up, keep_bind;
	uint32_t	 keep;

	if (m->takeover_fd == -1 &&
	    takeover_probe_listen(conf, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return -1;
	}
	api_up = grpcsvc_start(m->base, conf) == 0;
	metrics_up = api_up && metrics_bind(conf) == 0;
	if (!metrics_up && m->takeover_fd == -1)
		return -1;
	keep_bind = conf->user != NULL && takeover_privileged(conf, &low);
	keep = keep_bind ? CAP_TO_MASK(CAP_NET_BIND_SERVICE) : 0;
	/*
	 * The kernel fast path as `user`: loaded, attached and pinned while
	 * root, what the workers need held (they get the map at exec and
	 * need no privilege); the master keeps CAP_NET_ADMIN alone, for its
	 * filters (a new master's check, the stop).  A new master started
	 * as user has what the one before it held.
	 */
	if (conf->user != NULL && conf->kernel_fwd != CONF_KFWD_OFF) {
		if (geteuid() == 0 && m->takeover_fd == -1 &&
		    master_kfwd(m) == -1)
			return -1;
		if (m->kfwd || m->kf.prog != -1)
			keep |= CAP_TO_MASK(CAP_NET_ADMIN);
	}
	if (daemon_drop_privileges(conf->user, conf->group, keep, err,
	    sizeof(err)) == -1) {
		log_warnx("%s", err);
		return -1;
	}
	if (keep_bind)
		log_info("running as user %s with CAP_NET_BIND_SERVICE, so that "
		    "a new master can bind %s again", conf->user, low);
	if (keep & CAP_TO_MASK(CAP_NET_ADMIN))
		log_info("running as user %s with CAP_NET_ADMIN, for the kernel "
		    "fast path's filters; the workers with no capability",
		    conf->user);
	if (m->takeover_fd == -1)
		return 0;

	/* Taking over: have the old master let go, then listen. */
	if (!api_up)
		/*
		 * SO_REUSEPORT needs the same user on both sockets: an old
		 * master that bound as root before it switched to `user`
		 * has to let go of the API first, and this one binds then.
		 */
		log_notice("taking over: cannot listen beside the old master "
		    "(it bound as another user): listening once it lets go");
	if (!metrics_up && takeover_may_listen(conf, err, sizeof(err)) == -1) {
		log_warnx("cannot take over: %s; the old master carries on",
		    err);
		return -1;
	}
	if (takeover_handshake(m, &api_up, err, sizeof(err)) == -1) {
		log_warnx("cannot take over: %s", err);
		return -1;
	}
	if (!metrics_up && takeover_listen(m, api_up) == -1) {
		log_warnx("cannot listen on the API: stopping; start "
		    "rtpproxyd again to take over the sessions, which the "
		    "workers relay on meanwhile");
		return -1;
	}
	return 0;
}

/* The session table: made afresh, or the one a master before us left. */
static int
master_table(struct master *m)
{
	struct config *conf = m->conf;

	if (m->adopting) {
		if (master_attach(m) == -1)
			return -1;
	} else if (shm_create(&m->shm, conf->shm_name, conf->max_sessions +
	    conf->max_sessions / 8 + 16) == -1) {
		/*
		 * Spare slots: a destroyed session's slot is reused only
		 * once its worker has let go, and a reload may raise
		 * max-sessions a little.
		 */
		log_warn("shared memory %s (%u slots)", conf->shm_name,
		    conf->max_sessions);
		return -1;
	}
	log_debug("session table %s: %u slots of %zu bytes, %zu bytes",
	    m->shm.name, m->shm.nslots, sizeof(struct shm_slot), m->shm.size);
	m->shm.hdr->nworkers = (uint32_t)m->nworkers;
	m->shm.hdr->port_min = conf->port_min;
	m->shm.hdr->port_max = conf->port_max;
	reload_check_ephemeral(conf->port_min, conf->port_max, "");
	atomic_store(&m->shm.hdr->orphan_timeout, conf->orphan_timeout);
	atomic_fetch_add(&m->shm.hdr->master_starts, 1);
	return 0;
}

/*
 * What the master holds of the pinned program (kfwd_hold), the pin
 * directory made over to `user` when it runs as that: 0, or -1 and why.
 */
static int
master_kfwd_hold(struct master *m, char *why, size_t len)
{
	struct config	*conf = m->conf;
	struct passwd	*pw;
	struct group	*gr;
	uid_t		 uid = (uid_t)-1;
	gid_t		 gid = (gid_t)-1;

	if (conf->user != NULL && geteuid() == 0) {
		if ((pw = getpwnam(conf->user)) == NULL) {
			snprintf(why, len, "user %s: no such user", conf->user);
			return -1;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		if (conf->group != NULL && (gr = getgrnam(conf->group)) != NULL)
			gid = gr->gr_gid;
	}
	if (kfwd_hold(m->kfwd_dir, uid, gid, &m->kf) == -1) {
		snprintf(why, len, "cannot hold the pinned map and program: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The kernel fast path (kernel-forwarding): the program attached and
 * pinned before any worker starts, the workers get its map.  A master
 * that adopts the table keeps what its predecessor pinned; one that
 * starts afresh removes what a daemon of this table left first.  auto
 * falls back to userspace with one line that says why; on refuses to
 * start.  With `user`, master_listen calls it before the privileges go.
 */
static int
master_kfwd(struct master *m)
{
	struct config	*conf = m->conf;
	char		 why[256];

	if (m->kfwd)
		return 0;	/* set up before the privileges went */
	if (kfwd_pindir(conf->shm_name, m->kfwd_dir, sizeof(m->kfwd_dir)) ==
	    -1)
		return -1;
	if (conf->kernel_fwd == CONF_KFWD_OFF) {
		/*
		 * Nothing of ours left in the kernel, whoever put it there.
		 * A daemon that attached filters pinned them first, so no pin
		 * directory means nothing to remove: no netlink request to
		 * every interface at each start.
		 */
		if (access(m->kfwd_dir, F_OK) == 0)
			kfwd_cleanup(m->kfwd_dir, conf->shm_name);
		return 0;
	}
	if (conf->nkernel_ifs == 0)
		snprintf(why, sizeof(why), "no kernel-interfaces given");
	else if (conf->user != NULL && geteuid() != 0 && m->kf.prog == -1)
		snprintf(why, sizeof(why), "started as user %s, with nothing "
		    "of the kernel fast path from a master before (start "
		    "rtpproxyd as root: it sets it up, then runs as %s)",
		    conf->user, conf->user);
	else if (kfwd_start(m->kfwd_dir, conf->shm_name, conf->kernel_ifs,
	    conf->nkernel_ifs, m->adopting, m->kf.prog, why, sizeof(why)) ==
	    0 && (m->kf.map != -1 || master_kfwd_hold(m, why,
	    sizeof(why)) == 0)) {
		m->kfwd = 1;
		log_info("kernel forwarding on %d interface%s (pinned at %s)",
		    conf->nkernel_ifs, conf->nkernel_ifs == 1 ? "" : "s",
		    m->kfwd_dir);
		return 0;
	}
	kfwd_release(&m->kf);
	kfwd_cleanup(m->kfwd_dir, conf->shm_name);
	if (conf->kernel_fwd == CONF_KFWD_ON) {
		log_warnx("kernel-forwarding on: %s", why);
		return -1;
	}
	log_warnx("kernel-forwarding auto: not used: %s", why);
	return 0;
}

/* A session's event: to the API's subscribers, and to Redis. */
static void
master_publish(const struct session_event *ev)
{
	grpcsvc_publish(ev);
	redis_event(ev);
}

/* The layers below, wired to each other and to us. */
static int
master_layers(struct master *m, int foreground)
{
	struct workers_env	wenv;
	struct sessions_env	senv;

	memset(&wenv, 0, sizeof(wenv));
	wenv.base = m->base;
	wenv.conf = m->conf;
	wenv.shm = &m->shm;
	wenv.self = m->self;
	wenv.foreground = foreground;
	wenv.nworkers = m->nworkers;
	wenv.kfwd_map = m->kfwd ? m->kf.map : -1;
	wenv.ops.all_ready = master_all_ready;
	wenv.ops.all_stopped = master_all_stopped;
	wenv.ops.ready = session_worker_ready;
	wenv.ops.lost = session_worker_lost;
	wenv.ops.message = session_ipc;
	wenv.ops.have = session_have;
	wenv.ops.crashed = session_worker_crashed;
	workers_init(&wenv);
	memset(&senv, 0, sizeof(senv));
	senv.base = m->base;
	senv.conf = m->conf;
	senv.shm = &m->shm;
	senv.nworkers = m->nworkers;
	senv.publish = master_publish;
	grpcsvc_set_table(&m->shm);
	if (m->conf->redis != NULL) {
		const struct api_ha ha = { redis_takeover, redis_node,
		    redis_list };

		grpcsvc_set_ha(&ha);
	}
	if (session_init(&senv) == -1 || metrics_start(m->base, m) == -1 ||
	    redis_start(m->base, m->conf, m->shm.nslots, !m->adopting) == -1)
		return -1;
	if (m->adopting)
		session_adopt_table();
	return 0;
}

/* The loop, until the daemon stops or hands over. */
static void
master_run(struct master *m)
{
	struct config	*conf = m->conf;
	struct event	*ev[5];
	const int	 sigs[5] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD,
			    SIGUSR2 };
	void		(*const fns[5])(evutil_socket_t, short, void *) = {
			    master_stop, master_stop, reload_config,
			    master_reap, master_restart };
	int		 i;

	for (i = 0; i < 5; i++) {
		if ((ev[i] = evsignal_new(m->base, sigs[i], fns[i], m)) ==
		    NULL)
			fatalx("evsignal_new");
		event_add(ev[i], NULL);
	}
	workers_start(m->adopting);
	log_info("rtpproxyd %s %s: %d workers, ports %u-%u, "
	    "max-sessions %u, API on %s%s", PACKAGE_VERSION, m->adopting ?
	    "taking over" : "starting", m->nworkers, conf->port_min,
	    conf->port_max, conf->max_sessions, conf->listen[0].text,
	    conf->nlisten > 1 ? " (and more)" : "");

	event_base_dispatch(m->base);
	/*
	 * Stopping already: a signal from now on (a second ^C that came
	 * late) must not kill us halfway through the clean-up.
	 */
	for (i = 0; i < 5; i++)
		if (sigs[i] != SIGCHLD)
			signal(sigs[i], SIG_IGN);

	if (m->handed_off) {
		/* The new master has it all: leave workers and table be. */
		log_notice("handed over to the new master (pid %ld)",
		    (long)m->up_pid);
	} else {
		if (m->stopping == 2)
			workers_signal_all(SIGKILL);
		/* Reap what is left: a worker must not outlive us. */
		workers_wait_all();
		if (m->kfwd)
			kfwd_stop(m->kfwd_dir, conf->shm_name, m->kf.dir);
		m->kfwd = 0;
	}
	/*
	 * Freeing a signal event puts back the handler from before it was
	 * added, the default one, which a late signal would die of.
	 */
	for (i = 0; i < 5; i++) {
		event_free(ev[i]);
		if (sigs[i] != SIGCHLD)
			signal(sigs[i], SIG_IGN);
	}
	redis_stop();
	session_shutdown();
	log_notice("stopped");
}

/*
 * The master: start fresh (no table of this name), adopt the sessions and
 * workers of a master that went (its table left behind), or take over
 * from one that runs (SIGUSR2 or rtpproxyd -r started us, and it hands
 * over its listeners' place, its pid file and its workers).
 */
int
master_main(struct config *conf, int foreground,
    void (*overrides)(struct config *), char **argv)
{
	static struct master	m;
	int			rc = 1, table, keep[4], kfwd_env;

	memset(&m, 0, sizeof(m));
	master_self = &m;
	m.conf = conf;
	m.argv = argv;
	m.notify_fd = -1;
	m.pidfd = -1;
	m.up_pid = -1;
	peer_init(&m.up);
	m.overrides = overrides;
	m.takeover_fd = takeover_from_env();
	kfwd_env = takeover_kfwd_from_env(&m.kf);
	keep[0] = m.takeover_fd;
	keep[1] = m.kf.map;
	keep[2] = m.kf.prog;
	keep[3] = m.kf.dir;
	daemon_close_inherited(keep, 4);
	log_init(1, conf->log_level, conf->log_facility, "rtpproxyd");
	if (kfwd_env == -1)
		log_warnx("RTPPROXYD_KFWD_FDS: not the kernel fast path's "
		    "descriptors: ignored");

	table = master_prepare(&m);
	m.adopting = table == TABLE_LIVE || table == TABLE_ORPHANED;
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

	if (master_listen(&m) == 0 && master_table(&m) == 0 &&
	    master_kfwd(&m) == 0 && master_layers(&m, foreground) == 0) {
		master_run(&m);
		rc = 0;
	}
	metrics_stop();
	grpcsvc_stop();
	master_cleanup(&m);
	if (m.base != NULL)
		event_base_free(m.base);
	daemon_detach_done(m.notify_fd, rc == 0);
	return rc;
}
