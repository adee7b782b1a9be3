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
	struct event		*ev_ipc;
	struct event		*ev_out;	/* writable, while outq waits */
	struct ipc_queue	 outq;		/* reports the socket had no room for */
	uint64_t		 told;		/* outq.waited, last said */
	int			 now;		/* SIGTERM: no waiting to flush */
	/* without a master: relay on, and wait to be adopted */
	int			 orphan;
	int			 adopt_fd;
	struct event		*ev_adopt;
	struct event		*ev_orphan;
} w;

static void	worker_ipc(evutil_socket_t, short, void *);

/*
 * Everything a worker tells its master goes through here, in order: what
 * the socket has no room for waits in outq until the loop finds it
 * writable, so a busy master loses nothing.
 */
static void
worker_tell(const struct ipc_hdr *h, const int *fds, int nfds)
{
	/* Without a master, what matters is re-told on adoption (IPC_HAVE). */
	if (w.orphan)
		return;
	switch (ipc_queue_send(&w.outq, IPC_FD, h, fds, nfds)) {
	case 0:
		return;
	case 1:
		event_add(w.ev_out, NULL);
		return;
	}
	/* The master is gone (its end of the socket says so too), or a bug. */
	log_warn("worker %d: report to master (type %u, slot %u; %zu "
	    "waiting)", w.id, h->type, h->slot, ipc_queue_waiting(&w.outq));
}

static void
worker_writable(evutil_socket_t fd, short ev, void *arg)
{
	switch (ipc_queue_flush(&w.outq, IPC_FD)) {
	case 0:
		log_debug("worker %d: the master was busy: %llu messages "
		    "waited for it, and are sent", w.id,
		    (unsigned long long)(w.outq.waited - w.told));
		w.told = w.outq.waited;
		break;
	case 1:
		event_add(w.ev_out, NULL);
		break;
	case -1:
		log_warn("worker %d: event socket: %zu messages to the master "
		    "dropped", w.id, ipc_queue_waiting(&w.outq));
		ipc_queue_clear(&w.outq);
		w.told = w.outq.waited;
		break;
	}
}

/* What waits for the old master is for nobody now: IPC_HAVE re-tells it. */
static void
worker_forget(void)
{
	event_del(w.ev_out);
	ipc_queue_clear(&w.outq);
	w.told = w.outq.waited;
}

/* The relay's reports, stamped with our generation, to the master. */
static void
worker_sink(void *arg, struct ipc_hdr *h, const int *fds, int nfds)
{
	h->wgen = w.gen;
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
	event_del(w.ev_ipc);
	worker_forget();
	if (dup2(c, IPC_FD) == -1) {
		log_warn("worker %d: dup2", w.id);
		close(c);
		event_add(w.ev_ipc, NULL);
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
	event_add(w.ev_ipc, NULL);
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
	event_del(w.ev_ipc);
	worker_forget();
	event_add(w.ev_adopt, NULL);
	tv.tv_sec = secs;
	tv.tv_usec = 0;
	evtimer_add(w.ev_orphan, &tv);
	log_warnx("worker %d: master went away; relaying on with %d "
	    "sessions, waiting up to %u s for a new master", w.id,
	    relay_count(w.relay), secs);
}

static void
worker_dispatch(const struct ipc_hdr *h, int *fds, int nfds)
{
	struct shm_slot	*s;

	switch (h->type) {
	case IPC_ADD:
		s = shm_slot(&w.shm, h->slot);
		if (s == NULL || atomic_load_explicit(&s->gen,
		    memory_order_acquire) != h->slot_gen) {
			log_warnx("worker %d: stale add for slot %u", w.id,
			    h->slot);
			break;
		}
		relay_busy(w.relay, h->slot, h->slot_gen);
		if (relay_add(w.relay, h->slot, h->slot_gen, fds, nfds) == 0) {
			relay_idle(w.relay);
			return;		/* the relay owns the descriptors */
		}
		relay_idle(w.relay);
		relay_report(w.relay, IPC_ERROR, h->slot, h->slot_gen, errno,
		    "worker could not relay the session");
		break;
	case IPC_REMOVE:
		relay_busy(w.relay, h->slot, h->slot_gen);
		relay_remove(w.relay, h->slot);
		relay_idle(w.relay);
		relay_report(w.relay, IPC_REMOVED, h->slot, h->slot_gen, 0,
		    NULL);
		break;
	case IPC_SHUTDOWN:
		event_base_loopbreak(w.base);
		break;
	case IPC_SETLOG:
		log_setlevel((int)h->arg);
		break;
	default:
		log_warnx("worker %d: unexpected message type %u", w.id,
		    h->type);
		break;
	}
	while (nfds > 0)
		close(fds[--nfds]);
}

static void
worker_ipc(evutil_socket_t fd, short ev, void *arg)
{
	union {
		struct ipc_hdr	h;
		char		buf[IPC_MAXMSG];
	} m;
	int	fds[IPC_MAXFDS], nfds, i;
	ssize_t	n;

	for (i = 0; i < 64; i++) {
		nfds = IPC_MAXFDS;
		n = ipc_recv(fd, m.buf, sizeof(m.buf), fds, &nfds);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		/* A master that went with our reports unread: then the end. */
		if (n == -1 && errno == ECONNRESET)
			continue;
		if (n == 0) {
			worker_orphaned();
			return;
		}
		if (n == -1 || ipc_check(m.buf, (size_t)n, nfds) == -1 ||
		    m.h.wgen != w.gen) {
			log_warnx("worker %d: malformed message from master",
			    w.id);
			while (nfds > 0)
				close(fds[--nfds]);
			event_base_loopbreak(w.base);
			return;
		}
		worker_dispatch(&m.h, fds, nfds);
	}
}

static void
worker_signal(evutil_socket_t sig, short ev, void *arg)
{
	/* The master stops us with IPC_SHUTDOWN; a signal means now. */
	w.now = 1;
	event_base_loopbreak(w.base);
}

int
worker_main(int argc, char **argv)
{
	struct event	*ev_term;
	struct ipc_hdr	 ready;
	struct relay_sink sink = { worker_sink, NULL };
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
	w.ev_ipc = event_new(w.base, IPC_FD, EV_READ | EV_PERSIST, worker_ipc,
	    NULL);
	w.ev_out = event_new(w.base, IPC_FD, EV_WRITE, worker_writable, NULL);
	/*
	 * A session gives rise to a few reports at most between the master's
	 * IPC_ADD and its IPC_REMOVE (ACTIVE, ERROR, TCP_ACCEPTED, CLOSED,
	 * REMOVED), and the master reuses a slot only once it has read the
	 * REMOVED that ends the slot's reports: what waits is bounded by
	 * the slots this worker relays.  The bound is there for a bug.
	 */
	ipc_queue_init(&w.outq, (size_t)w.shm.nslots * 8 + 64);
	{
		struct sockaddr_un	sun;
		socklen_t		len;

		ipc_adopt_name(&sun, &len, argv[4], getpid());
		if ((w.adopt_fd = socket(AF_UNIX, SOCK_SEQPACKET |
		    SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
		    bind(w.adopt_fd, (struct sockaddr *)&sun, len) == -1 ||
		    listen(w.adopt_fd, 2) == -1) {
			log_warn("worker %d: adoption socket; this worker "
			    "stops with its master", w.id);
			if (w.adopt_fd != -1)
				close(w.adopt_fd);
			w.adopt_fd = -1;
		}
	}
	w.ev_adopt = event_new(w.base, w.adopt_fd, EV_READ | EV_PERSIST,
	    worker_adopted, NULL);
	w.ev_orphan = evtimer_new(w.base, worker_orphan_timeout, NULL);
	ev_term = evsignal_new(w.base, SIGTERM, worker_signal, NULL);
	if (w.ev_ipc == NULL || w.ev_out == NULL || ev_term == NULL ||
	    w.ev_adopt == NULL || w.ev_orphan == NULL)
		fatalx("worker %d: event_new", w.id);
	event_add(w.ev_ipc, NULL);
	event_add(ev_term, NULL);
	/*
	 * A terminal sends INT (and HUP) to the whole process group; the
	 * master decides what they mean and tells us.
	 */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);

	ipc_init(&ready, IPC_READY, w.gen, 0, 0);
	if (ipc_send(IPC_FD, &ready, NULL, 0) == -1)
		fatal("worker %d: send ready", w.id);
	log_debug("worker %d (generation %u) running", w.id, w.gen);

	event_base_dispatch(w.base);

	/* What the master has not had yet (REMOVED, mostly) goes first. */
	if (ipc_queue_waiting(&w.outq) > 0 && ipc_queue_drain(&w.outq, IPC_FD,
	    w.now ? 0 : WORKER_FLUSH_MS) != 0)
		log_warnx("worker %d: stopping with %zu messages the master "
		    "did not take", w.id, ipc_queue_waiting(&w.outq));
	ipc_queue_clear(&w.outq);
	relay_free(w.relay);
	event_free(w.ev_out);
	event_free(w.ev_ipc);
	event_free(w.ev_adopt);
	event_free(w.ev_orphan);
	if (w.adopt_fd != -1)
		close(w.adopt_fd);
	event_free(ev_term);
	event_base_free(w.base);
	shm_detach(&w.shm);
	close(IPC_FD);
	log_debug("worker %d exiting", w.id);
	return 0;
}
