/*
 * The master's session registry: ids, slots, ports and sockets, the state
 * machine, timeouts and events.  The shared-memory slot is the record; this
 * file keeps only what must not be shared (descriptors, timers, hashing).
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


struct session_reg sr;

static uint32_t
session_hashfn(const char *id)
{
	uint32_t h = 2166136261u;

	while (*id != '\0') {
		h ^= (unsigned char)*id++;
		h *= 16777619u;
	}
	return h;
}

void
session_hash_insert(uint32_t slot)
{
	uint32_t b = session_hashfn(sr.shm->slots[slot].id) & sr.hmask;

	sr.s[slot].hnext = sr.hash[b];
	sr.hash[b] = slot;
}

static void
session_hash_remove(uint32_t slot)
{
	uint32_t *p = &sr.hash[session_hashfn(sr.shm->slots[slot].id) &
	    sr.hmask];

	while (*p != NIL) {
		if (*p == slot) {
			*p = sr.s[slot].hnext;
			sr.s[slot].hnext = NIL;
			return;
		}
		p = &sr.s[*p].hnext;
	}
}

int
session_lookup(const char *id)
{
	uint32_t i = sr.hash[session_hashfn(id) & sr.hmask];

	for (; i != NIL; i = sr.s[i].hnext)
		if (strcmp(sr.shm->slots[i].id, id) == 0)
			return (int)i;
	return -1;
}

static void
session_set_state(uint32_t i, uint32_t st)
{
	atomic_store_explicit(&session_slot(i)->state, st,
	    memory_order_release);
}

static void
session_dirsnap(const struct shm_dir *d, struct session_dirsnap *o)
{
	memset(&o->c, 0, sizeof(o->c));
	shm_totals_add(&o->c, d);
	o->loss_rate = shm_loss_rate(d);
	o->jitter_ms = (double)SHM_LOAD(&d->jitter_ns) / 1e6;
	o->avg_latency_ms = o->c.latency_count ? (double)o->c.latency_sum_ns /
	    (double)o->c.latency_count / 1e6 : 0.0;
	o->max_latency_ms = (double)SHM_LOAD(&d->latency_max_ns) / 1e6;
	o->last_packet_ms = SHM_LOAD(&d->last_packet_ms);
	o->ssrc = SHM_LOAD(&d->ssrc);
	o->in_kernel = SHM_LOAD(&d->in_kernel);
}

void
session_snapshot(uint32_t i, struct session_snapshot *o)
{
	struct shm_slot	*s = session_slot(i);
	int		 d;

	memset(o, 0, sizeof(*o));
	o->slot = i;
	o->state = atomic_load_explicit(&s->state, memory_order_acquire);
	o->slot_gen = atomic_load(&s->gen);
	o->worker = s->worker;
	o->flags = s->flags;
	memcpy(o->id, s->id, sizeof(o->id));
	o->listen = s->listen;
	o->forward = s->forward;
	o->dest = s->dest;
	if (atomic_load_explicit(&s->latched, memory_order_acquire) & 1)
		o->latched = s->latch_rtp;
	if (atomic_load_explicit(&s->latched, memory_order_acquire) & 2)
		o->latched_rtcp = s->latch_rtcp;
	o->idle_timeout_s = s->idle_timeout_s;
	o->stats_interval_ms = s->stats_interval_ms;
	o->clock_rate = s->clock_rate;
	o->dtmf_pt = s->dtmf_pt;
	o->rate_pps = s->rate_pps;
	o->rate_bps = s->rate_bps;
	o->latch_policy = s->latch.policy != 0 ? s->latch.policy :
	    SHM_LATCH_LEARN;
	o->relatches = atomic_load_explicit(&s->latch.moves,
	    memory_order_relaxed);
	o->updates = s->updates;
	o->rec_state = atomic_load_explicit(&s->rec.state,
	    memory_order_acquire);
	o->rec_parts = s->rec.parts;
	o->rec_packets = SHM_LOAD(&s->rec.packets);
	o->rec_dropped = SHM_LOAD(&s->rec.dropped);
	memcpy(o->rec_file, s->rec.file, sizeof(o->rec_file));
	o->rec_file[sizeof(o->rec_file) - 1] = '\0';
	memcpy(o->rec_error, s->rec.error, sizeof(o->rec_error));
	o->rec_error[sizeof(o->rec_error) - 1] = '\0';
	o->created_ms = s->created_ms;
	o->repl_inc = s->repl_inc;
	o->repl_epoch = s->repl_epoch;
	memcpy(o->error, s->error, sizeof(o->error));
	o->error[sizeof(o->error) - 1] = '\0';
	o->last_activity_ms = o->created_ms;
	for (d = 0; d < 2; d++) {
		session_dirsnap(&s->dir[d], &o->dir[d]);
		quality_dir(s, d, &o->dir[d].q);
		if (o->dir[d].last_packet_ms > o->last_activity_ms)
			o->last_activity_ms = o->dir[d].last_packet_ms;
	}
}

void
session_emit(uint32_t i, enum session_event_type type, uint32_t prev,
    const char *reason)
{
	struct session_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	ev.timestamp_ms = now_ms();
	session_snapshot(i, &ev.snap);
	ev.state = ev.snap.state;
	ev.previous_state = prev;
	ev.reason = reason;
	sr.publish(&ev);
}

void
session_change(uint32_t i, uint32_t st, enum session_event_type type,
    const char *reason)
{
	uint32_t prev = session_state(i);

	if (prev == st)
		return;
	session_set_state(i, st);
	log_info("session %s: %s -> %s%s%s", session_slot(i)->id,
	    shm_state_name(prev), shm_state_name(st),
	    reason ? ": " : "", reason ? reason : "");
	session_emit(i, type, prev, reason);
}

/* Hand the session to its worker, if that worker is ready. */
void
session_handover(uint32_t i)
{
	struct session	*se = &sr.s[i];
	struct ipc_hdr	 h;

	if (se->handed || se->removing || se->nfds == 0 ||
	    (session_slot(i)->flags & SHM_F_QUARANTINED) ||
	    !workers_ready(se->worker))
		return;
	ipc_init(&h, IPC_ADD, 0, i, atomic_load(&session_slot(i)->gen));
	h.arg = (uint32_t)se->nfds;
	if (workers_send(se->worker, &h, se->fds, se->nfds) == -1)
		return;
	se->handed = 1;
	if (session_state(i) == SHM_CREATED)
		session_change(i, SHM_CONNECTING, SEV_STATE_CHANGED, NULL);
}

static void
session_stats_cb(evutil_socket_t fd, short ev, void *arg)
{
	uint32_t i = (uint32_t)(uintptr_t)arg;

	if (sr.s[i].in_use && !sr.s[i].removing)
		session_emit(i, SEV_STATS_UPDATE, session_state(i), NULL);
}

/* The periodic STATS_UPDATE of slot i, if it asked for one. */
void
session_stats_timer(uint32_t i)
{
	struct shm_slot	*s = session_slot(i);
	struct session	*se = &sr.s[i];
	struct timeval	 tv;

	if (s->stats_interval_ms == 0 || se->stats_ev != NULL)
		return;
	tv.tv_sec = s->stats_interval_ms / 1000;
	tv.tv_usec = (s->stats_interval_ms % 1000) * 1000;
	se->stats_ev = event_new(sr.base, -1, EV_PERSIST, session_stats_cb,
	    (void *)(uintptr_t)i);
	if (se->stats_ev != NULL)
		event_add(se->stats_ev, &tv);
}

static int
session_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n >= SHM_ID_MAX)
		return 0;
	return strspn(id, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@+-") == n;
}

static void
session_make_id(char *buf, size_t len)
{
	static const char	hex[] = "0123456789abcdef";
	unsigned char		r[16];
	size_t			i;

	do {
		if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
			static uint64_t seq;

			memset(r, 0, sizeof(r));
			snprintf((char *)r, sizeof(r), "%llx",
			    (unsigned long long)(now_ms() ^ ++seq));
		}
		for (i = 0; i < sizeof(r) && 2 * i + 1 < len; i++) {
			buf[2 * i] = hex[r[i] >> 4];
			buf[2 * i + 1] = hex[r[i] & 15];
		}
		buf[2 * i] = '\0';
	} while (session_lookup(buf) != -1);
}




















static void
session_release(uint32_t i)
{
	struct session	*se = &sr.s[i];
	int		 k;

	for (k = 0; k < se->nfds; k++)
		if (se->fds[k] != -1)
			close(se->fds[k]);
	se->nfds = 0;
	for (k = 0; k < 2; k++)
		if (se->pair[k] != 0) {
			sr.pair_ref[se->pair[k] - 1]--;
			se->pair[k] = 0;
		}
	if (se->stats_ev != NULL) {
		event_free(se->stats_ev);
		se->stats_ev = NULL;
	}
}

/*
 * What CreateSession may not ask for, whatever the host: 0, or -1 with
 * the reason in err.  *fwd: the forward endpoint (family of the
 * destination when not given).
 */
static int
session_check(const struct session_params *p, int rtcp,
    struct sockaddr_storage *fwd, struct rp_error *err)
{
	struct config	*c = sr.conf;
	int		 verdict, rule;
	uint16_t	 dport;

	if (sr.stopping)
		return rp_err(err, RP_UNAVAILABLE,
		    "server is shutting down");
	if (p->id[0] != '\0' && !session_id_ok(p->id))
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "session_id must be 1-%d characters of A-Z a-z 0-9 "
		    "and ._:@+-", SHM_ID_MAX - 1);
	if (p->id[0] != '\0' && session_lookup(p->id) != -1)
		return rp_err(err, RP_ALREADY_EXISTS,
		    "session %s already exists", p->id);
	if (p->listen.ss_family != AF_INET && p->listen.ss_family != AF_INET6)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "listen.address is required");
	if (p->dest.ss_family != AF_INET && p->dest.ss_family != AF_INET6)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "destination.address is required");
	dport = session_getport(&p->dest);
	if (dport == 0 || (rtcp && dport == 65535))
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "destination.port %u is not usable%s", dport,
		    dport ? " with RTCP on port + 1" : "");
	if ((verdict = acl_check(&sr.acl, (const struct sockaddr *)&p->dest,
	    p->tcp ? ACL_TCP : ACL_UDP, &rule)) != ACL_ALLOW) {
		char why[256];

		acl_explain(&sr.acl, c, (const struct sockaddr *)&p->dest,
		    verdict, rule, "destination", why, sizeof(why));
		log_notice("session %s refused: %s", p->id[0] != '\0' ? p->id :
		    "(unnamed)", why);
		return rp_err(err, RP_PERMISSION_DENIED, "%s", why);
	}
	*fwd = p->forward;
	if (fwd->ss_family == 0) {
		memset(fwd, 0, sizeof(*fwd));
		fwd->ss_family = p->dest.ss_family;
	}
	if (fwd->ss_family != p->dest.ss_family)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "forward and destination addresses mix IPv4 and IPv6");
	if (session_is_multicast(&p->listen) || session_is_multicast(fwd))
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "listen and forward addresses must be unicast");
	if (p->stats_interval_ms != 0 && (p->stats_interval_ms < 100 ||
	    p->stats_interval_ms > 3600000))
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "stats_interval_ms %u is out of range: 0 (the default) "
		    "or 100..3600000", p->stats_interval_ms);
	if (p->clock_rate != 0 && (p->clock_rate < 1000 ||
	    p->clock_rate > 1000000))
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "clock_rate %u is out of range: 0 (8000 Hz) or "
		    "1000..1000000", p->clock_rate);
	if (p->dtmf_pt != 0 && (p->dtmf_pt < 96 || p->dtmf_pt > 127))
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "dtmf_payload_type %u is out of range: 0 (101) or a "
		    "dynamic payload type, 96..127", p->dtmf_pt);
	if (p->tcp && p->drop_dtmf)
		return rp_err(err, RP_INVALID_ARGUMENT, "drop_dtmf is for "
		    "UDP sessions: a TCP session's streams are relayed as "
		    "they are");
	if (p->reverse_source < -1 || p->reverse_source > CONF_RS_ADDRESS_PORT)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "reverse_source %d is not a known ReverseSource",
		    p->reverse_source);
	if (p->rate_pps > 10000000)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "rate_limit_pps %u is out of range: 0 (the default) or "
		    "1..10000000", p->rate_pps);
	if (p->rate_bps > 100000000000ULL)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "rate_limit_bps %llu is out of range: 0 (the default) or "
		    "up to 100000000000", (unsigned long long)p->rate_bps);
	if (p->latch_policy < 0 || p->latch_policy > SHM_LATCH_LATEST)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "latch_policy %d is not a known LatchPolicy",
		    p->latch_policy);
	if (p->tcp && (p->unidirectional || p->rate_pps || p->rate_bps))
		return rp_err(err, RP_INVALID_ARGUMENT, "%s is for UDP "
		    "sessions: a TCP session relays both streams, and TCP's "
		    "flow control paces them", p->unidirectional ?
		    "unidirectional" : "a rate limit");
	if (p->record && p->tcp)
		return rp_err(err, RP_INVALID_ARGUMENT, "record is for UDP "
		    "sessions");
	if (p->record && (c->recording_dir == NULL ||
	    c->recording_dir[0] == '\0'))
		return rp_err(err, RP_FAILED_PRECONDITION, "record: no "
		    "recording-dir is configured");
	if (p->tcp && p->latch_policy != 0)
		return rp_err(err, RP_INVALID_ARGUMENT, "latch_policy is for "
		    "UDP sessions: a TCP session's caller is the one that "
		    "connected");
	if (p->idle_timeout_s > 86400)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "idle_timeout_s %u is out of range: 0 (the default) "
		    "or 1..86400", p->idle_timeout_s);
	if (sr.count >= c->max_sessions || sr.nfree == 0)
		return rp_err(err, RP_RESOURCE_EXHAUSTED,
		    "session limit reached (max-sessions %u)",
		    c->max_sessions);
	return 0;
}

/*
 * A session resumed from another node or start: its latch and counters
 * carry on.  Written before any worker has the slot, which a worker
 * takes as it takes a slot after a worker restart.
 */
static void
session_fill_resume(struct shm_slot *s, const struct session_resume *r)
{
	uint32_t bits = 0;
	int64_t	 now = now_ms();

	if (r->latched.family != 0) {
		s->latch_rtp = r->latched;
		bits |= 1;
	}
	if (r->latched_rtcp.family != 0) {
		s->latch_rtcp = r->latched_rtcp;
		bits |= 2;
	}
	if (bits != 0) {
		/* Learnt already: the latch holds while its source sends. */
		s->latch.learn_end_ms = now;
		s->latch.seen_ms = now;
	}
	atomic_store(&s->latch.moves, r->relatches);
	/* Its next recording file is the part after those begun before. */
	s->rec.parts = r->rec_parts;
	shm_dir_load(&s->dir[0], &r->c[0]);
	shm_dir_load(&s->dir[1], &r->c[1]);
	atomic_store_explicit(&s->latched, bits, memory_order_release);
}

/* The new session's slot: what it was asked for, and the defaults. */
static void
session_fill(uint32_t i, const struct session_params *p, const char *id,
    int w, int rtcp, const struct sockaddr_storage *listen,
    const struct sockaddr_storage *fwd)
{
	struct config	*c = sr.conf;
	struct shm_slot	*s = session_slot(i);
	int		 rs;

	/* A slot's previous tenant is fully gone: see session_free_slot. */
	s->worker = (uint32_t)w;
	rs = p->reverse_source >= 0 ? p->reverse_source : c->reverse_source;
	s->flags = (p->unidirectional ? SHM_F_UNIDIR : 0) |
	    (rtcp ? 0 : SHM_F_NORTCP) | (p->tcp ? SHM_F_TCP : 0) |
	    (p->idle_timeout_s == 0 ? SHM_F_IDLE_DEF : 0) |
	    (rs != CONF_RS_ANY ? SHM_F_SRC_ADDR : 0) |
	    (rs == CONF_RS_ADDRESS_PORT ? SHM_F_SRC_PORT : 0) |
	    (p->drop_dtmf ? SHM_F_DROP_DTMF : 0) |
	    (p->record ? SHM_F_RECORD : 0);
	s->dtmf_pt = p->dtmf_pt ? p->dtmf_pt : 101;
	s->rec_gen = p->record ? 1 : 0;
	s->rate_pps = p->tcp ? 0 : p->rate_pps ? p->rate_pps : c->rate_pps;
	s->rate_bps = p->tcp ? 0 : p->rate_bps ? p->rate_bps : c->rate_bps;
	s->rate_burst_ms = c->rate_burst_ms;
	s->latch.policy = (uint8_t)(p->latch_policy ? p->latch_policy :
	    c->latch_policy);
	s->latch.run = (uint8_t)c->latch_run;
	s->latch.learn_ms = c->latch_learn_ms;
	s->latch.quiet_ms = c->latch_quiet_ms;
	memcpy(s->id, id, sizeof(s->id));
	shm_addr_from_sa(&s->listen, (const struct sockaddr *)listen);
	shm_addr_from_sa(&s->forward, (const struct sockaddr *)fwd);
	shm_addr_from_sa(&s->dest, (const struct sockaddr *)&p->dest);
	session_ports(i, 1);
	s->idle_timeout_s = p->idle_timeout_s ? p->idle_timeout_s :
	    c->idle_timeout;
	s->setup_timeout_s = c->setup_timeout;
	s->stats_interval_ms = p->stats_interval_ms ? p->stats_interval_ms :
	    c->stats_interval;
	s->clock_rate = p->clock_rate;
	s->created_ms = now_ms();
	/* Told apart from a later session of the same id (src/repl). */
	s->repl_epoch = p->repl_epoch != 0 ? p->repl_epoch : 1;
	s->repl_inc = p->repl_inc != 0 ? p->repl_inc :
	    ((uint64_t)s->created_ms << 16) | (atomic_load(&s->gen) & 0xffff);
	if (p->resume != NULL) {
		s->flags |= SHM_F_RESUMED;
		session_fill_resume(s, p->resume);
	}
}

int
session_create(const struct session_params *p, struct session_snapshot *out,
    struct rp_error *err)
{
	struct config		*c = sr.conf;
	struct sockaddr_storage	 listen = p->listen, fwd;
	struct session		*se;
	char			 id[SHM_ID_MAX];
	/* RFC 4571: RTP and RTCP share the one connection. */
	int			 rtcp = !p->disable_rtcp && !p->tcp;
	int			 lfd[2], ffd[2];
	int			 w;
	uint16_t		 lpair = 0, fpair = 0;
	uint32_t		 i, kept[2];
	int			 nkept;

	if (session_check(p, rtcp, &fwd, err) == -1)
		return -1;
	if (session_getport(&listen) != 0) {
		if ((w = workers_of_port(session_getport(&listen))) ==
		    -1)
			return rp_err(err, RP_INVALID_ARGUMENT,
			    "listen.port %u is outside the media port range "
			    "%u-%u", session_getport(&listen), c->port_min,
			    c->port_max);
	} else
		w = session_pick_worker();

	/* Kept before binding: this session's own sockets must not take it. */
	if (session_dest_check(p, rtcp, kept, &nkept, err) == -1)
		return -1;
	session_keep(kept, nkept, 1);
	if (session_bind_endpoint("listen", &listen, p->prebound, w, rtcp,
	    p->tcp ?
	    SESSION_TCP_LISTEN : 0, lfd, &lpair, err) == -1) {
		session_keep(kept, nkept, -1);
		return -1;
	}
	if (session_bind_endpoint("forward", &fwd, p->prebound != NULL ?
	    p->prebound + 2 : NULL, w, rtcp, p->tcp ?
	    SESSION_TCP_CONNECT : 0, ffd, &fpair, err) == -1) {
		close(lfd[0]);
		if (lfd[1] != -1)
			close(lfd[1]);
		sr.pair_ref[lpair - 1]--;
		session_keep(kept, nkept, -1);
		return -1;
	}

	if (p->id[0] != '\0')
		snprintf(id, sizeof(id), "%s", p->id);
	else
		session_make_id(id, sizeof(id));

	i = sr.freelist[--sr.nfree];
	se = &sr.s[i];
	session_fill(i, p, id, w, rtcp, &listen, &fwd);
	se->in_use = 1;
	se->removing = 0;
	se->handed = 0;
	se->worker = w;
	se->fds[0] = lfd[0];
	se->fds[1] = ffd[0];
	se->nfds = 2;
	if (rtcp) {
		se->fds[2] = lfd[1];
		se->fds[3] = ffd[1];
		se->nfds = 4;
	}
	se->pair[0] = lpair;
	se->pair[1] = fpair;
	se->nkept = nkept;
	memcpy(se->kept_at, kept, sizeof(se->kept_at));
	session_stats_timer(i);
	session_hash_insert(i);
	sr.count++;
	sr.nsessions[w]++;
	atomic_fetch_add(&sr.shm->hdr->sessions_created, 1);
	session_set_state(i, SHM_CREATED);
	/* Not formatted for nothing: thousands of sessions a second. */
	if (log_getlevel() >= LOG_INFO) {
		char l[64], f[64], d[64];

		log_info("session %s created on worker %d: listen %s, "
		    "forward %s, destination %s%s%s", id, w,
		    sa_ntop((struct sockaddr *)&listen, l, sizeof(l)),
		    sa_ntop((struct sockaddr *)&fwd, f, sizeof(f)),
		    sa_ntop((const struct sockaddr *)&p->dest, d, sizeof(d)),
		    p->unidirectional ? ", one-way" : "",
		    p->tcp ? ", TCP" : rtcp ? "" : ", no RTCP");
	}
	session_emit(i, SEV_CREATED, SHM_FREE, NULL);
	session_handover(i);
	if (out != NULL)
		session_snapshot(i, out);
	return 0;
}

/*
 * Close a session: CLOSED event with its final statistics, the id freed at
 * once, the slot and ports when its worker has let go of the sockets.
 */
void
session_close(uint32_t i, enum shm_close why, struct session_snapshot *out)
{
	struct session	*se = &sr.s[i];
	struct ipc_hdr	 h;
	uint32_t	 prev = session_state(i);
	const char	*reason = shm_close_name(why);

	if (!se->in_use || se->removing)
		return;
	session_set_state(i, SHM_CLOSED);
	log_info("session %s closed: %s", session_slot(i)->id, reason);
	session_emit(i, SEV_CLOSED, prev, reason);
	if (out != NULL)
		session_snapshot(i, out);
	session_hash_remove(i);
	se->removing = 1;
	sr.count--;
	atomic_fetch_add(&sr.shm->hdr->sessions_closed, 1);
	atomic_fetch_add(&sr.shm->hdr->closed_by[why < SHM_CLOSE_N ? why :
	    SHM_CLOSE_OTHER], 1);
	/* Our copies of the sockets go now; the worker's on REMOVE. */
	session_release(i);
	if (se->handed) {
		ipc_init(&h, IPC_REMOVE, 0, i,
		    atomic_load(&session_slot(i)->gen));
		if (workers_send(se->worker, &h, NULL, 0) == 0)
			return;
	}
	session_free_slot(i);
}

void
session_free_slot(uint32_t i)
{
	struct session *se = &sr.s[i];

	session_release(i);
	if (sr.nsessions[se->worker] > 0)
		sr.nsessions[se->worker]--;
	/* Its sockets are closed now, the worker's copies too. */
	session_ports(i, 0);
	session_keep(se->kept_at, se->nkept, -1);
	/* What it moved stays in the totals, which never go back. */
	shm_totals_add(&sr.shm->hdr->closed[0], &session_slot(i)->dir[0]);
	shm_totals_add(&sr.shm->hdr->closed[1], &session_slot(i)->dir[1]);
	atomic_fetch_add(&sr.shm->hdr->rec_closed_packets,
	    SHM_LOAD(&session_slot(i)->rec.packets));
	atomic_fetch_add(&sr.shm->hdr->rec_closed_dropped,
	    SHM_LOAD(&session_slot(i)->rec.dropped));
	memset(se, 0, sizeof(*se));
	se->hnext = NIL;
	shm_slot_reset(session_slot(i));
	sr.freelist[sr.nfree++] = i;
}

int
session_destroy(const char *id, struct session_snapshot *out,
    struct rp_error *err)
{
	int i;

	if ((i = session_lookup(id)) == -1)
		return rp_err(err, RP_NOT_FOUND, "no session %s", id);
	session_close((uint32_t)i, SHM_CLOSE_DESTROYED, out);
	return 0;
}

int
session_get(const char *id, struct session_snapshot *out,
    struct rp_error *err)
{
	int i;

	if ((i = session_lookup(id)) == -1)
		return rp_err(err, RP_NOT_FOUND, "no session %s", id);
	session_snapshot((uint32_t)i, out);
	return 0;
}

uint32_t
session_next(uint32_t i)
{
	for (; i < sr.nslots; i++)
		if (sr.s[i].in_use && !sr.s[i].removing)
			return i;
	return sr.nslots;
}

void
session_close_all(enum shm_close why)
{
	uint32_t i;

	for (i = session_next(0); i < sr.nslots; i = session_next(i + 1))
		session_close(i, why, NULL);
}













static void
session_sweep(evutil_socket_t fd, short ev, void *arg)
{
	struct shm_slot	*s;
	int64_t		 now = now_ms(), last, l;
	uint32_t	 i;
	int		 d;

	/* Addresses come and go (DHCP, VRRP): look again now and then. */
	if (++sr.sweeps % SESSION_ACL_SWEEPS == 0)
		session_acl_refresh(sr.conf);

	for (i = session_next(0); i < sr.nslots; i = session_next(i + 1)) {
		s = session_slot(i);
		last = 0;
		for (d = 0; d < 2; d++) {
			l = atomic_load_explicit(&s->dir[d].last_packet_ms,
			    memory_order_relaxed);
			if (l > last)
				last = l;
		}
		if (last == 0) {
			if (now - s->created_ms >=
			    (int64_t)s->setup_timeout_s * 1000)
				session_close(i, SHM_CLOSE_SETUP, NULL);
		} else if (now - last >= (int64_t)s->idle_timeout_s * 1000)
			session_close(i, SHM_CLOSE_IDLE, NULL);
	}
}

/*
 * Rebuild the destination rules from the configuration and the host's
 * addresses as they are now; publish them when they changed.
 */
void
session_acl_refresh(const struct config *c)
{
	static struct shm_acl	n;

	acl_build(&n, c);
	if (sr.acl.nrules == n.nrules && memcmp((char *)&sr.acl +
	    sizeof(sr.acl.seq), (char *)&n + sizeof(n.seq), sizeof(n) -
	    sizeof(n.seq)) == 0)
		return;
	memcpy(&sr.acl, &n, sizeof(n));
	acl_publish(&sr.shm->hdr->acl, &sr.acl);
	log_debug("destination rules: %u published, %u addresses of this "
	    "host", sr.acl.nrules, sr.acl.nlocal);
}

/* Where workers write recordings: in the table, for them to read. */
static void
session_rec_dir(const struct config *c)
{
	char *d = sr.shm->hdr->rec_dir;

	snprintf(d, sizeof(sr.shm->hdr->rec_dir), "%s",
	    c->recording_dir != NULL ? c->recording_dir : "");
}

void
session_reconfigure(const struct config *c)
{
	uint32_t i;

	session_acl_refresh(c);
	session_rec_dir(c);
	for (i = session_next(0); i < sr.nslots; i = session_next(i + 1)) {
		session_slot(i)->setup_timeout_s = c->setup_timeout;
		if (session_slot(i)->flags & SHM_F_IDLE_DEF)
			session_slot(i)->idle_timeout_s = c->idle_timeout;
	}
}

int
session_init(const struct sessions_env *env)
{
	struct timeval	tv = { 0, SESSION_SWEEP_MS * 1000 };
	uint32_t	i, hsize;

	memset(&sr, 0, sizeof(sr));
	sr.base = env->base;
	sr.conf = env->conf;
	sr.shm = env->shm;
	sr.publish = env->publish;
	sr.nworkers = env->nworkers;
	sr.nsessions = xcalloc((size_t)sr.nworkers, sizeof(*sr.nsessions));
	sr.nslots = sr.shm->nslots;
	sr.s = xcalloc(sr.nslots, sizeof(*sr.s));
	for (hsize = 16; hsize < sr.nslots * 2; hsize <<= 1)
		;
	sr.hash = xcalloc(hsize, sizeof(*sr.hash));
	sr.hmask = hsize - 1;
	for (i = 0; i < hsize; i++)
		sr.hash[i] = NIL;
	sr.freelist = xcalloc(sr.nslots, sizeof(*sr.freelist));
	/* Lowest slots first: listings stay dense. */
	for (i = 0; i < sr.nslots; i++) {
		sr.s[i].hnext = NIL;
		sr.freelist[i] = sr.nslots - 1 - i;
	}
	sr.nfree = sr.nslots;
	sr.npairs = ((uint32_t)sr.conf->port_max - sr.conf->port_min + 1) / 2;
	sr.pair_ref = xcalloc(sr.npairs, sizeof(*sr.pair_ref));
	sr.port_ref = xcalloc(2 * 65536, sizeof(*sr.port_ref));
	sr.kept = xcalloc(2 * 65536, sizeof(*sr.kept));
	sr.cursor = xcalloc((size_t)sr.nworkers, sizeof(*sr.cursor));
	/* Published before any worker exists; the seq starts even. */
	sr.acl.nrules = UINT32_MAX;
	session_acl_refresh(sr.conf);
	session_rec_dir(sr.conf);
	sr.sweep_ev = event_new(sr.base, -1, EV_PERSIST, session_sweep, NULL);
	if (sr.sweep_ev == NULL)
		fatalx("session_init: event_new");
	event_add(sr.sweep_ev, &tv);
	return 0;
}

/* The daemon is stopping: no new session from now on. */
void
session_stopping(void)
{
	sr.stopping = 1;
}

/* Handing over to a new master: no more timeouts or events from here. */
void
session_suspend(void)
{
	uint32_t i;

	if (sr.s == NULL)
		return;
	event_del(sr.sweep_ev);
	for (i = 0; i < sr.nslots; i++)
		if (sr.s[i].stats_ev != NULL)
			event_del(sr.s[i].stats_ev);
}

void
session_shutdown(void)
{
	uint32_t i;

	if (sr.s == NULL)
		return;
	for (i = 0; i < sr.nslots; i++)
		if (sr.s[i].in_use)
			session_release(i);
	event_free(sr.sweep_ev);
	free(sr.s);
	free(sr.hash);
	free(sr.freelist);
	free(sr.pair_ref);
	free(sr.port_ref);
	free(sr.kept);
	free(sr.cursor);
	free(sr.nsessions);
	memset(&sr, 0, sizeof(sr));
}
