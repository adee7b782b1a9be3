/*
 * A worker process: fork+exec'd by the master as
 *	rtpproxyd --worker ID GEN SHMNAME LOGLEVEL FACILITY FOREGROUND
 * with the event socket at IPC_FD.  It attaches to the session table,
 * says READY, and relays the sessions the master hands it.  It knows
 * nothing of gRPC.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"
#include "peer.h"
#include "worker.h"

/*
 * A worker queues reports for a master that is busy; on IPC_SHUTDOWN it
 * waits this long for the master to take what is left.
 */
#define WORKER_FLUSH_MS		2000

static struct {
	int			 id;
	uint32_t		 gen;
	struct event_base	*base;
	struct relay		*relay;
	struct shm_table	 shm;
	struct peer		 peer;		/* the master, at IPC_FD */
	int			 now;		/* SIGTERM: no waiting to flush */
	/* without a master: relay on, and wait to be adopted */
	int			 orphan;
	int			 adopt_fd;
	struct event		*ev_adopt;
	struct event		*ev_orphan;
} w;

/*
 * Everything a worker tells its master goes through here, in order: what
 * the socket has no room for waits until the loop finds it writable, so a
 * busy master loses nothing.
 */
static void
worker_tell(struct ipc_hdr *h, const int *fds, int nfds)
{
	/* Without a master, what matters is re-told on adoption (IPC_HAVE). */
	if (w.orphan)
		return;
	if (peer_send(&w.peer, h, fds, nfds) == -1)
		/* The master is gone (its end says so too), or a bug. */
		log_warn("worker %d: report to master (type %u, slot %u; %zu "
		    "waiting)", w.id, h->type, h->slot,
		    peer_waiting(&w.peer));
}

/* The relay's reports, stamped with our generation, to the master. */
static void
worker_sink(void *arg, struct ipc_hdr *h, const int *fds, int nfds)
{
	worker_tell(h, fds, nfds);
}

static void
worker_have(void *arg, uint32_t slot, uint32_t gen, const int *fds, int nfds,
    uint32_t status, const char *reason)
{
	struct ipc_have m;

	ipc_init(&m.hdr, IPC_HAVE, w.gen, slot, gen);
	m.hdr.arg = (uint32_t)nfds;
	m.status = status;
	snprintf(m.reason, sizeof(m.reason), "%s", reason != NULL ? reason :
	    "");
	worker_tell(&m.hdr, fds, nfds);
}

/* A master connects: if it is ours to trust, it is our master now. */
static void
worker_adopted(evutil_socket_t fd, short ev, void *arg)
{
	struct ucred	cred;
	struct ipc_hdr	h;
	socklen_t	len = sizeof(cred);
	int		c;

	if ((c = accept4(w.adopt_fd, NULL, NULL, SOCK_CLOEXEC)) == -1)
		return;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    (cred.uid != getuid() && cred.uid != 0)) {
		log_warnx("worker %d: refused to be adopted by pid %ld (uid "
		    "%ld)", w.id, (long)cred.pid, (long)cred.uid);
		close(c);
		return;
	}
	peer_pause(&w.peer);
	peer_forget(&w.peer);
	if (dup2(c, IPC_FD) == -1) {
		log_warn("worker %d: dup2", w.id);
		close(c);
		peer_resume(&w.peer);
		return;
	}
	close(c);
	if (set_nonblock(IPC_FD) == -1 || set_cloexec(IPC_FD, 1) == -1)
		log_warn("worker %d: event socket", w.id);
	event_del(w.ev_adopt);
	evtimer_del(w.ev_orphan);
	w.orphan = 0;
	log_notice("worker %d: adopted by the master with pid %ld, handing "
	    "over %d sessions", w.id, (long)cred.pid, relay_count(w.relay));
	ipc_init(&h, IPC_HELLO, w.gen, (uint32_t)w.id, 0);
	h.arg = (uint32_t)getpid();
	worker_tell(&h, NULL, 0);
	relay_each(w.relay, worker_have, NULL);
	ipc_init(&h, IPC_READY, w.gen, 0, 0);
	worker_tell(&h, NULL, 0);
	peer_resume(&w.peer);
}

static void
worker_orphan_timeout(evutil_socket_t fd, short ev, void *arg)
{
	log_warnx("worker %d: no master adopted us in time; stopping, "
	    "%d sessions go", w.id, relay_count(w.relay));
	event_base_loopbreak(w.base);
}

/*
 * The master is gone (killed, or handing over to a new one): keep
 * relaying, and wait to be adopted; stop after orphan-timeout seconds.
 */
static void
worker_orphaned(void)
{
	struct timeval	tv;
	uint32_t	secs;

	secs = atomic_load(&w.shm.hdr->orphan_timeout);
	if (w.adopt_fd == -1 || secs == 0) {
		log_warnx("worker %d: master went away", w.id);
		event_base_loopbreak(w.base);
		return;
	}
	w.orphan = 1;
	peer_pause(&w.peer);
	peer_forget(&w.peer);
	event_add(w.ev_adopt, NULL);
	tv.tv_sec = secs;
	tv.tv_usec = 0;
	evtimer_add(w.ev_orphan, &tv);
	log_warnx("worker %d: master went away; relaying on with %d "
	    "sessions, waiting up to %u s for a new master", w.id,
	    relay_count(w.relay), secs);
}

static int
worker_add(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *arg)
{
	struct shm_slot	*s = shm_slot(&w.shm, h->slot);

	if (s == NULL || atomic_load_explicit(&s->gen, memory_order_acquire) !=
	    h->slot_gen)
		log_warnx("worker %d: stale add for slot %u", w.id, h->slot);
	else {
		relay_busy(w.relay, h->slot, h->slot_gen);
		if (relay_add(w.relay, h->slot, h->slot_gen, fds, nfds) == 0) {
			relay_idle(w.relay);
			return 0;	/* the relay owns the descriptors */
		}
		relay_idle(w.relay);
		relay_report(w.relay, IPC_ERROR, h->slot, h->slot_gen, errno,
		    "worker could not relay the session");
	}
	while (nfds > 0)
		close(fds[--nfds]);
	return 0;
}

static int
worker_remove(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *arg)
{
	relay_busy(w.relay, h->slot, h->slot_gen);
	relay_remove(w.relay, h->slot);
	relay_idle(w.relay);
	relay_report(w.relay, IPC_REMOVED, h->slot, h->slot_gen, 0, NULL);
	return 0;
}

static int
worker_update(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *arg)
{
	relay_busy(w.relay, h->slot, h->slot_gen);
	(void)relay_update(w.relay, h->slot, h->slot_gen);
	relay_idle(w.relay);
	return 0;
}

static int
worker_shutdown(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *arg)
{
	event_base_loopbreak(w.base);
	return 0;
}

static int
worker_setlog(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *arg)
{
	log_setlevel((int)h->arg);
	return 0;
}

/* A type of a newer master (one that adopted us after an upgrade). */
static int
worker_unknown(struct peer *p, const struct ipc_hdr *h, int *fds, int nfds,
    void *arg)
{
	log_warnx("worker %d: unexpected message type %u", w.id, h->type);
	while (nfds > 0)
		close(fds[--nfds]);
	return 0;
}

static void
worker_master_gone(struct peer *p, int why, void *arg)
{
	switch (why) {
	case PEER_EOF:
		worker_orphaned();
		break;
	case PEER_MALFORMED:
		log_warnx("worker %d: malformed message from master", w.id);
		event_base_loopbreak(w.base);
		break;
	default:
		log_warn("worker %d: event socket: %zu messages to the master "
		    "dropped", w.id, peer_waiting(p));
		break;
	}
}

static const struct peer_type worker_types[] = {
	{ IPC_ADD, worker_add },
	{ IPC_REMOVE, worker_remove },
	{ IPC_SHUTDOWN, worker_shutdown },
	{ IPC_SETLOG, worker_setlog },
	{ IPC_UPDATE, worker_update },
	{ 0, worker_unknown }
};

/* A message of another generation than ours is not for us: malformed. */
static const struct peer_ops worker_peer_ops = {
	worker_types, worker_master_gone, PEER_GEN_STRICT, 64
};

static void
worker_signal(evutil_socket_t sig, short ev, void *arg)
{
	/* The master stops us with IPC_SHUTDOWN; a signal means now. */
	w.now = 1;
	event_base_loopbreak(w.base);
}

/*
 * Where a master that takes over finds us when ours is gone; -1 if it
 * cannot be made (then this worker stops with its master).
 */
static int
worker_adopt_socket(const char *shm_name)
{
	struct sockaddr_un	sun;
	socklen_t		len;
	int			fd;

	ipc_adopt_name(&sun, &len, shm_name, getpid());
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 || bind(fd, (struct sockaddr *)&sun,
	    len) == -1 || listen(fd, 2) == -1) {
		log_warn("worker %d: adoption socket; this worker stops with "
		    "its master", w.id);
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

int
worker_main(int argc, char **argv)
{
	struct event	*ev_term;
	struct ipc_hdr	 ready;
	struct relay_sink sink = { worker_sink, NULL };
	char		 name[32];
	uint32_t	 v, level, facility, fg;

	if (argc != 8 || parse_u32(argv[2], 0, 1024, &v) == -1 ||
	    parse_u32(argv[3], 0, UINT32_MAX, &w.gen) == -1 ||
	    parse_u32(argv[5], 0, LOG_DEBUG, &level) == -1 ||
	    parse_u32(argv[6], 0, INT32_MAX, &facility) == -1 ||
	    parse_u32(argv[7], 0, 1, &fg) == -1) {
		fprintf(stderr, "rtpproxyd: worker mode is started by the "
		    "master only\n");
		return 1;
	}
	w.id = (int)v;
	w.adopt_fd = -1;
	log_init((int)fg, (int)level, (int)facility, "rtpproxyd-worker");
	/*
	 * A worker outlives its master (it waits to be adopted), but one
	 * whose master died before it even started has nobody to wait for.
	 */
	if (getppid() == 1)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if (shm_attach(&w.shm, argv[4]) == -1)
		fatal("worker %d: attach session table %s", w.id, argv[4]);
	if (set_nonblock(IPC_FD) == -1 || set_cloexec(IPC_FD, 1) == -1)
		fatal("worker %d: event socket", w.id);
	if ((w.base = event_base_new()) == NULL)
		fatalx("worker %d: event_base_new", w.id);
	if ((w.relay = relay_new(w.base, &w.shm, &sink)) == NULL)
		fatalx("worker %d: relay_new", w.id);
	relay_set_worker(w.relay, w.id);
	/* What the worker before us was busy with is the master's to read. */
	relay_idle(w.relay);
	peer_init(&w.peer);
	snprintf(name, sizeof(name), "worker %d", w.id);
	if (peer_open(&w.peer, w.base, IPC_FD, name, "the master", w.gen,
	    &worker_peer_ops, NULL) == -1)
		fatalx("worker %d: event_new", w.id);
	/*
	 * A session gives rise to a few reports at most between the master's
	 * IPC_ADD and its IPC_REMOVE (ACTIVE, ERROR, TCP_ACCEPTED, CLOSED,
	 * REMOVED), and the master reuses a slot only once it has read the
	 * REMOVED that ends the slot's reports: what waits is bounded by
	 * the slots this worker relays.  The bound is there for a bug.
	 */
	peer_bound(&w.peer, (size_t)w.shm.nslots * 8 + 64);
	w.adopt_fd = worker_adopt_socket(argv[4]);
	w.ev_adopt = event_new(w.base, w.adopt_fd, EV_READ | EV_PERSIST,
	    worker_adopted, NULL);
	w.ev_orphan = evtimer_new(w.base, worker_orphan_timeout, NULL);
	ev_term = evsignal_new(w.base, SIGTERM, worker_signal, NULL);
	if (ev_term == NULL || w.ev_adopt == NULL || w.ev_orphan == NULL)
		fatalx("worker %d: event_new", w.id);
	event_add(ev_term, NULL);
	/*
	 * A terminal sends INT (and HUP) to the whole process group; the
	 * master decides what they mean and tells us.
	 */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);

	ipc_init(&ready, IPC_READY, w.gen, 0, 0);
	if (peer_send_now(&w.peer, &ready, NULL, 0) == -1)
		fatal("worker %d: send ready", w.id);
	log_debug("worker %d (generation %u) running", w.id, w.gen);

	event_base_dispatch(w.base);

	/* What the master has not had yet (REMOVED, mostly) goes first. */
	if (!w.orphan && peer_flush(&w.peer, w.now ? 0 : WORKER_FLUSH_MS) != 0)
		log_warnx("worker %d: stopping with %zu messages the master "
		    "did not take", w.id, peer_waiting(&w.peer));
	relay_free(w.relay);
	peer_close(&w.peer);
	event_free(w.ev_adopt);
	event_free(w.ev_orphan);
	if (w.adopt_fd != -1)
		close(w.adopt_fd);
	event_free(ev_term);
	event_base_free(w.base);
	shm_detach(&w.shm);
	log_debug("worker %d exiting", w.id);
	return 0;
}
