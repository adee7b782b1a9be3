/*
 * What the workers report of their sessions (active, error, closed, a
 * latch that moved, a sender refused), and sessions given to a worker
 * again: a new worker after one died, the workers a master adopts when it
 * takes over the table of one that went.
 */
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session_int.h"


/*
 * A worker is ready (new, or adopted and done telling what it relays):
 * give it every session of its range that it does not relay, with the
 * sockets kept here, or with sockets bound again when there are none (a
 * master that took over from one that died has only what the workers
 * give it).
 */
void
session_worker_ready(int w)
{
	struct session	*se;
	uint32_t	 i;

	for (i = 0; i < sr.nslots; i++) {
		se = &sr.s[i];
		if (!se->in_use || se->worker != w || se->handed ||
		    (session_slot(i)->flags & SHM_F_QUARANTINED))
			continue;
		if (se->removing) {
			/* Nobody relays it any more. */
			session_free_slot(i);
			continue;
		}
		if (se->nfds == 0)
			session_restore(i);
		session_handover(i);
	}
}
/*
 * Bind a session's sockets again from its record, for a worker that
 * does not have them.  A TCP session whose connections were lost with
 * its worker cannot be restored: it goes to ERROR.
 */
void
session_restore(uint32_t i)
{
	struct shm_slot		*s = session_slot(i);
	struct session		*se = &sr.s[i];
	struct sockaddr_storage	 l, f;
	char			 why[SHM_REASON_MAX];
	int			 rtcp = !(s->flags & SHM_F_NORTCP);
	int			 tcp = (s->flags & SHM_F_TCP) != 0;
	int			 lfd[2], ffd[2], e;

	if (session_state(i) == SHM_ERROR)
		return;
	if (tcp && atomic_load(&s->tcp_up) != 0) {
		snprintf(why, sizeof(why), "its TCP connections were lost "
		    "with worker %d while no master ran", se->worker);
		goto fail;
	}
	shm_addr_to_sa(&s->listen, &l);
	shm_addr_to_sa(&s->forward, &f);
	if (session_bind_pair(&l, rtcp, tcp ? SESSION_TCP_LISTEN : 0,
	    lfd) == -1) {
		e = errno;
		snprintf(why, sizeof(why), "cannot bind its listen port %u "
		    "again: %s", s->listen.port, session_bind_reason(e));
		goto fail;
	}
	if (session_bind_pair(&f, rtcp, tcp ? SESSION_TCP_CONNECT : 0,
	    ffd) == -1) {
		e = errno;
		close(lfd[0]);
		if (lfd[1] != -1)
			close(lfd[1]);
		snprintf(why, sizeof(why), "cannot bind its forward port %u "
		    "again: %s", s->forward.port, session_bind_reason(e));
		goto fail;
	}
	se->fds[0] = lfd[0];
	se->fds[1] = ffd[0];
	se->nfds = 2;
	if (rtcp) {
		se->fds[2] = lfd[1];
		se->fds[3] = ffd[1];
		se->nfds = 4;
	}
	log_info("session %s: sockets bound again (%s %u, forward %u)",
	    s->id, tcp ? "TCP" : "UDP", s->listen.port, s->forward.port);
	return;
fail:
	snprintf(s->error, sizeof(s->error), "%s", why);
	session_change(i, SHM_ERROR, SEV_ERROR, s->error);
}
/*
 * An adopted worker relays slot with these sockets: they are our copies
 * now, and what it reports of the session (while no master listened) is
 * applied.  A slot we do not know of is taken away from it.
 */
void
session_have(int w, const struct ipc_have *h, int *fds, int nfds)
{
	struct shm_slot	*s;
	struct session	*se;
	struct ipc_hdr	 rm;
	uint32_t	 st, i = h->hdr.slot;
	int		 k;

	if (i >= sr.nslots || !sr.s[i].in_use || sr.s[i].worker != w ||
	    sr.s[i].handed || atomic_load(&session_slot(i)->gen) !=
	    h->hdr.slot_gen) {
		log_warnx("worker %d relays slot %u, which is not its: "
		    "removing it", w, i);
		ipc_init(&rm, IPC_REMOVE, 0, i, h->hdr.slot_gen);
		(void)workers_send_now(w, &rm);
		goto out;
	}
	se = &sr.s[i];
	s = session_slot(i);
	for (k = 0; k < se->nfds; k++)
		close(se->fds[k]);
	for (k = 0; k < nfds; k++)
		se->fds[k] = fds[k];
	se->nfds = nfds;
	nfds = 0;
	se->handed = 1;
	if (se->removing) {
		/* Destroyed before the master went: finish it. */
		ipc_init(&rm, IPC_REMOVE, 0, i, h->hdr.slot_gen);
		(void)workers_send_now(w, &rm);
		return;
	}
	st = session_state(i);
	if ((h->status & IPC_HAVE_ACTIVE) &&
	    (st == SHM_CREATED || st == SHM_CONNECTING))
		session_change(i, SHM_ACTIVE, SEV_STATE_CHANGED, NULL);
	if ((h->status & IPC_HAVE_ERROR) && session_state(i) != SHM_ERROR) {
		snprintf(s->error, sizeof(s->error), "%s", h->reason);
		if (!utf8_valid(s->error, strlen(s->error)))
			snprintf(s->error, sizeof(s->error), "worker error");
		session_change(i, SHM_ERROR, SEV_ERROR, s->error);
	}
	if (h->status & IPC_HAVE_CLOSED)
		session_close(i, SHM_CLOSE_PEER, NULL);
out:
	while (nfds > 0)
		close(fds[--nfds]);
}
/*
 * Take over a table a previous master left: every slot in use becomes a
 * session again (its sockets come from the workers, or are bound again),
 * CLOSED ones are finished.  The slots' records are not changed.
 */
void
session_adopt_table(void)
{
	struct shm_slot	*s;
	struct session	*se;
	uint32_t	 i, st, n = 0, closing = 0, p;
	uint16_t	 port[2];
	int		 k;

	sr.nfree = 0;
	for (i = sr.nslots; i-- > 0;) {
		s = session_slot(i);
		st = atomic_load(&s->state);
		if (st == SHM_FREE || st > SHM_CLOSED ||
		    s->worker >= (uint32_t)sr.nworkers) {
			if (st != SHM_FREE) {
				log_warnx("slot %u: state %u, worker %u: not a "
				    "session; freed", i, st, s->worker);
				shm_slot_reset(s);
			}
			sr.freelist[sr.nfree++] = i;
			continue;
		}
		s->id[sizeof(s->id) - 1] = '\0';
		se = &sr.s[i];
		se->in_use = 1;
		se->worker = (int)s->worker;
		sr.nsessions[se->worker]++;
		port[0] = s->listen.port;
		port[1] = s->forward.port;
		for (k = 0; k < 2; k++)
			if (port[k] >= sr.conf->port_min &&
			    port[k] <= sr.conf->port_max) {
				p = session_pair_of(port[k]);
				sr.pair_ref[p]++;
				se->pair[k] = (uint16_t)(p + 1);
			}
		if (st == SHM_CLOSED) {
			se->removing = 1;
			closing++;
			continue;
		}
		session_hash_insert(i);
		session_stats_timer(i);
		sr.count++;
		n++;
	}
	/*
	 * The port map as the slots say, whatever the master before left in
	 * it: entries only ever go from the old value to the right one.
	 */
	for (i = 0; i < sr.nslots; i++)
		if (sr.s[i].in_use) {
			session_ports(i, 1);
			session_keep_dest(i);
		}
	for (k = 0; k < 2 * 65536; k++)
		if (sr.port_ref[k] == 0 && atomic_load_explicit(
		    &sr.shm->ports->owner[k / 65536][k % 65536],
		    memory_order_relaxed) != 0)
			session_port_set(k / 65536, (uint16_t)(k % 65536), 0);
	log_notice("took over %u sessions (%u closing) from the table", n,
	    closing);
}
/* Close our copies of a failed TCP session's connections; keep listening. */
static void
session_tcp_drop(uint32_t i)
{
	struct session *se = &sr.s[i];

	while (se->nfds > 1)
		close(se->fds[--se->nfds]);
}
/*
 * Worker w crashed (how) while it worked on slot i of generation gen: 1
 * if that is a session of its, which now has one crash more against it;
 * 0 if the slot says nothing (reused, another worker's).  A session that
 * crashes workers again and again would take down every worker it is
 * given to, so the second crash quarantines it: ERROR, and no worker
 * relays it again; the sockets stay bound until it is destroyed.
 */
int
session_worker_crashed(int w, uint32_t i, uint32_t gen, const char *how)
{
	struct shm_slot	*s;
	struct session	*se;

	if (i >= sr.nslots || !sr.s[i].in_use || sr.s[i].worker != w ||
	    atomic_load(&session_slot(i)->gen) != gen)
		return 0;
	se = &sr.s[i];
	s = session_slot(i);
	if (se->removing) {
		/* Gone anyway: nothing of it will crash the next worker. */
		log_warnx("worker %d crashed while letting go of session %s",
		    w, s->id);
		return 1;
	}
	if (++se->strikes < SESSION_STRIKES) {
		log_warnx("session %s: worker %d %s while relaying it; the "
		    "new worker relays it, and a second crash quarantines it",
		    s->id, w, how);
		return 1;
	}
	s->flags |= SHM_F_QUARANTINED;
	atomic_fetch_add(&sr.shm->hdr->workers[w].quarantined, 1);
	snprintf(s->error, sizeof(s->error), "quarantined: worker %d "
	    "crashed %d times while relaying it (last %s)", w, se->strikes,
	    how);
	log_warnx("session %s %s; no worker relays it again, destroy it",
	    s->id, s->error);
	if (s->flags & SHM_F_TCP)
		session_tcp_drop(i);
	if (session_state(i) == SHM_ERROR)
		session_emit(i, SEV_ERROR, SHM_ERROR, s->error);
	else
		session_change(i, SHM_ERROR, SEV_ERROR, s->error);
	return 1;
}
/* The worker died: its copies of the sockets are gone with it. */
void
session_worker_lost(int w)
{
	uint32_t i;

	for (i = 0; i < sr.nslots; i++) {
		if (!sr.s[i].in_use || sr.s[i].worker != w)
			continue;
		if (sr.s[i].removing)
			session_free_slot(i);
		else
			sr.s[i].handed = 0;
	}
}
/*
 * A line about a latch or a refused sender: each session's are spaced
 * out by its worker, and here at most SESSION_LATCH_LOGS a second in all,
 * the rest counted in a summary.
 */
static void __printflike(1, 2)
session_latch_log(const char *fmt, ...)
{
	va_list	ap;
	int64_t	sec = mono_ms() / 1000;
	char	line[768];

	if (sec != sr.latchlog_sec) {
		if (sr.latchlog_quiet > 0)
			log_notice("%llu latch and refusal lines not logged",
			    (unsigned long long)sr.latchlog_quiet);
		sr.latchlog_sec = sec;
		sr.latchlog_n = 0;
		sr.latchlog_quiet = 0;
	}
	if (sr.latchlog_n++ >= SESSION_LATCH_LOGS) {
		sr.latchlog_quiet++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_notice("%s", line);
}
/* A latch that moved, or a sender refused: a log line and an event. */
static void
session_latch_report(uint32_t i, const struct ipc_latch *m)
{
	struct session_event	 ev;
	struct sockaddr_storage	 ss;
	char			 reason[sizeof(m->reason)];
	char			 to[INET6_ADDRSTRLEN + 8];
	char			 from[INET6_ADDRSTRLEN + 8];
	int			 rtcp = (m->hdr.arg & IPC_LATCH_RTCP) != 0;
	int			 moved = m->hdr.type == IPC_LATCHED;

	if (shm_addr_to_sa(&m->to, &ss) == 0)
		return;
	sa_ntop((struct sockaddr *)&ss, to, sizeof(to));
	from[0] = '\0';
	if (moved) {
		if (shm_addr_to_sa(&m->from, &ss) == 0)
			return;
		sa_ntop((struct sockaddr *)&ss, from, sizeof(from));
	}
	snprintf(reason, sizeof(reason), "%s", m->reason);
	if (!utf8_valid(reason, strlen(reason)))
		snprintf(reason, sizeof(reason), "(not valid UTF-8)");
	if (moved)
		session_latch_log("session %s: %s re-latched from %s to %s "
		    "(%s)", session_slot(i)->id, rtcp ? "RTCP" : "RTP", from,
		    to, reason);
	else
		session_latch_log("session %s: %s %s", session_slot(i)->id,
		    rtcp ? "RTCP" : "RTP", reason);
	memset(&ev, 0, sizeof(ev));
	ev.type = moved ? SEV_RELATCHED : SEV_SOURCE_REFUSED;
	ev.timestamp_ms = now_ms();
	session_snapshot(i, &ev.snap);
	ev.state = ev.previous_state = ev.snap.state;
	ev.reason = reason;
	ev.addr = &m->to;
	ev.prev_addr = moved ? &m->from : NULL;
	ev.rtcp = rtcp;
	sr.publish(&ev);
}
/* A telephone-event a worker saw: an event (no log line: digits). */
static void
session_dtmf_report(uint32_t i, const struct ipc_dtmf *m)
{
	struct session_event	ev;
	struct session_dtmf	dt;
	uint32_t		rate = m->clock_rate != 0 ? m->clock_rate :
	    8000;

	if (m->hdr.arg > SHM_DIR_REV || m->event > 255 || m->volume > 63)
		return;
	memset(&dt, 0, sizeof(dt));
	dt.event = m->event;
	dt.volume = m->volume;
	dt.duration_ms = (uint32_t)((uint64_t)m->duration * 1000 / rate);
	dt.reverse = m->hdr.arg == SHM_DIR_REV;
	dt.start_ms = m->start_ms;
	dt.rtp_ts = m->rtp_ts;
	dt.ssrc = m->ssrc;
	dt.end_seen = m->end_seen != 0;
	memset(&ev, 0, sizeof(ev));
	ev.type = SEV_DTMF;
	ev.timestamp_ms = now_ms();
	session_snapshot(i, &ev.snap);
	ev.state = ev.previous_state = ev.snap.state;
	ev.dtmf = &dt;
	sr.publish(&ev);
}

/* What a session's recording did: a log line and a RECORDING event. */
static void
session_rec_report(uint32_t i, const struct ipc_error *e)
{
	struct shm_slot	*s = session_slot(i);
	char		 what[sizeof(e->reason)], reason[320];

	snprintf(what, sizeof(what), "%s", e->reason);
	if (!utf8_valid(what, strlen(what)))
		snprintf(what, sizeof(what), "(not valid UTF-8)");
	switch (e->err) {
	case SHM_REC_ACTIVE:
		snprintf(reason, sizeof(reason), "recording to %s", what);
		break;
	case SHM_REC_FAILED:
		snprintf(reason, sizeof(reason), "recording failed: %s", what);
		break;
	case SHM_REC_STOPPED:
		snprintf(reason, sizeof(reason), "recording stopped: %s, "
		    "%llu packets written, %llu dropped", what,
		    (unsigned long long)SHM_LOAD(&s->rec.packets),
		    (unsigned long long)SHM_LOAD(&s->rec.dropped));
		break;
	default:
		return;
	}
	if (e->err == SHM_REC_FAILED)
		log_warnx("session %s: %s", s->id, reason);
	else
		log_info("session %s: %s", s->id, reason);
	session_emit(i, SEV_RECORDING, session_state(i), reason);
}
/* A worker's message; fds (its descriptors) are ours to keep or close. */
void
session_ipc(int w, const struct ipc_hdr *h, int *fds, int nfds)
{
	const struct ipc_error	*e = (const struct ipc_error *)h;
	struct shm_slot		*s;
	struct session		*se;
	uint32_t		 st;

	if (h->slot >= sr.nslots || !sr.s[h->slot].in_use ||
	    sr.s[h->slot].worker != w ||
	    atomic_load(&session_slot(h->slot)->gen) != h->slot_gen) {
		log_debug("worker %d: message %u for stale slot %u", w,
		    h->type, h->slot);
		while (nfds > 0)
			close(fds[--nfds]);
		return;
	}
	s = session_slot(h->slot);
	se = &sr.s[h->slot];
	switch (h->type) {
	case IPC_TCP_ACCEPTED:
		/* Kept for the worker after this one, should it die. */
		if ((s->flags & SHM_F_TCP) && !se->removing && se->nfds == 2) {
			se->fds[se->nfds++] = fds[0];
			nfds = 0;
		}
		break;
	case IPC_CLOSED:
		if (!se->removing)
			session_close(h->slot, SHM_CLOSE_PEER, NULL);
		break;
	case IPC_REMOVED:
		if (sr.s[h->slot].removing)
			session_free_slot(h->slot);
		break;
	case IPC_DTMF:
		if (!se->removing)
			session_dtmf_report(h->slot,
			    (const struct ipc_dtmf *)h);
		break;
	case IPC_LATCHED:
	case IPC_REFUSED:
		if (!se->removing)
			session_latch_report(h->slot,
			    (const struct ipc_latch *)h);
		break;
	case IPC_ACTIVE:
		st = session_state(h->slot);
		if (!sr.s[h->slot].removing &&
		    (st == SHM_CREATED || st == SHM_CONNECTING))
			session_change(h->slot, SHM_ACTIVE, SEV_STATE_CHANGED,
			    NULL);
		break;
	case IPC_RECORDING:
		if (!se->removing)
			session_rec_report(h->slot, e);
		break;
	case IPC_ERROR:
		if (sr.s[h->slot].removing ||
		    session_state(h->slot) == SHM_ERROR)
			break;
		snprintf(s->error, sizeof(s->error), "%s", e->reason);
		if (!utf8_valid(s->error, strlen(s->error)))
			snprintf(s->error, sizeof(s->error), "worker error");
		if (s->flags & SHM_F_TCP)
			session_tcp_drop(h->slot);
		session_change(h->slot, SHM_ERROR, SEV_ERROR, s->error);
		break;
	}
	while (nfds > 0)
		close(fds[--nfds]);
}
