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

#include "acl.h"
#include "conf.h"
#include "sessions.h"

#define SESSION_SWEEP_MS	250
#define SESSION_TCP_CONNECT	1	/* session_bind: for connect() */
#define SESSION_TCP_LISTEN	2	/* session_bind: listening */
#define SESSION_ACL_SWEEPS	40	/* host addresses every 10 s */
#define SESSION_STRIKES		2	/* crashes that quarantine it */

struct session {
	int		 in_use;	/* slot taken (maybe still removing) */
	int		 removing;	/* REMOVE sent, waiting for REMOVED */
	int		 handed;	/* the current worker relays it */
	int		 strikes;	/* workers that crashed on it */
	int		 worker;
	int		 fds[IPC_MAXFDS];
	int		 nfds;
	uint16_t	 pair[2];	/* port pairs held, as indexes + 1 */
	int		 nkept;		/* its destination's ports kept, */
	uint32_t	 kept_at[2];	/* ... at these indexes of sr.kept */
	uint32_t	 hnext;		/* id hash chain, or UINT32_MAX */
	struct event	*stats_ev;
};

static struct {
	struct event_base *base;
	struct config	*conf;
	struct shm_table *shm;
	void		(*publish)(const struct session_event *);
	int		 nworkers;
	uint32_t	*nsessions;	/* per worker */
	int		 stopping;	/* no new sessions */
	struct session	*s;		/* one per slot */
	uint32_t	 nslots;
	uint32_t	 count;		/* in use and not removing */
	uint32_t	*hash;		/* bucket -> first slot */
	uint32_t	 hmask;
	uint32_t	*freelist;
	uint32_t	 nfree;
	uint16_t	*pair_ref;	/* sessions on each port pair */
	uint32_t	 npairs;
	uint32_t	*cursor;	/* per worker: next pair to try */
	struct event	*sweep_ev;
	unsigned int	 sweeps;
	struct shm_acl	 acl;		/* what is published, for checks */
	uint16_t	*port_ref;	/* [family][port]: UDP sessions on it */
	/*
	 * [family][port]: sessions whose destination is that port on this
	 * host; kept from the sessions' own sockets, which would loop.
	 */
	uint32_t	*kept;
	/* latch and refusal lines, at most SESSION_LATCH_LOGS a second */
	int64_t		 latchlog_sec;
	unsigned int	 latchlog_n;
	uint64_t	 latchlog_quiet;
} sr;

#define SESSION_LATCH_LOGS	10

#define NIL	UINT32_MAX

static void	session_free_slot(uint32_t);
static void	session_restore(uint32_t);
static void	session_acl_refresh(const struct config *);

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

static void
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

static struct shm_slot *
session_slot(uint32_t i)
{
	return &sr.shm->slots[i];
}

static uint32_t
session_state(uint32_t i)
{
	return atomic_load_explicit(&session_slot(i)->state,
	    memory_order_acquire);
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
	uint64_t n;

#define LD(f) atomic_load_explicit(&d->f, memory_order_relaxed)
	o->packets_received = LD(packets_received);
	o->packets_sent = LD(packets_sent);
	o->bytes_received = LD(bytes_received);
	o->bytes_sent = LD(bytes_sent);
	o->dropped_invalid = LD(dropped_invalid);
	o->dropped_not_latched = LD(dropped_not_latched);
	o->dropped_send_error = LD(dropped_send_error);
	o->dropped_rate_limited = LD(dropped_rate_limited);
	o->dropped_overflow = LD(dropped_overflow);
	o->dropped_source = LD(dropped_source);
	o->non_rtp = LD(non_rtp);
	o->rtcp_received = LD(rtcp_received);
	o->rtcp_sent = LD(rtcp_sent);
	o->packets_expected = LD(packets_expected);
	o->packets_lost = LD(packets_lost);
	o->jitter_ms = (double)LD(jitter_ns) / 1e6;
	n = LD(latency_count);
	o->avg_latency_ms = n ? (double)LD(latency_sum_ns) / (double)n / 1e6 :
	    0.0;
	o->max_latency_ms = (double)LD(latency_max_ns) / 1e6;
	o->last_packet_ms = LD(last_packet_ms);
	o->ssrc = LD(ssrc);
#undef LD
	o->loss_rate = shm_loss_rate(d);
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
	o->rate_pps = s->rate_pps;
	o->rate_bps = s->rate_bps;
	o->latch_policy = s->latch.policy != 0 ? s->latch.policy :
	    SHM_LATCH_LEARN;
	o->relatches = atomic_load_explicit(&s->latch.moves,
	    memory_order_relaxed);
	o->created_ms = s->created_ms;
	memcpy(o->error, s->error, sizeof(o->error));
	o->error[sizeof(o->error) - 1] = '\0';
	o->last_activity_ms = o->created_ms;
	for (d = 0; d < 2; d++) {
		session_dirsnap(&s->dir[d], &o->dir[d]);
		if (o->dir[d].last_packet_ms > o->last_activity_ms)
			o->last_activity_ms = o->dir[d].last_packet_ms;
	}
}

static void
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

static void
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
static void
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
static void
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
session_setport(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static uint16_t
session_getport(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static int
session_is_multicast(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)ss)->
		    sin_addr.s_addr);

		return IN_MULTICAST(a) || a == INADDR_BROADCAST;
	}
	return IN6_IS_ADDR_MULTICAST(
	    &((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/*
 * A bound UDP socket, or for TCP a bound stream socket (listening, with
 * tcp_listen; otherwise to connect from), or -1 with errno.
 */
static int
session_bind(const struct sockaddr_storage *ss, int tcp)
{
	socklen_t	len = ss->ss_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int		fd, on = 1, saved;

	fd = socket(ss->ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) |
	    SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1)
		goto fail;
	/* A port a finished session left in TIME_WAIT is free again. */
	if (tcp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)) == -1)
		goto fail;
	if (bind(fd, (const struct sockaddr *)ss, len) == -1)
		goto fail;
	if (tcp == SESSION_TCP_LISTEN && listen(fd, 8) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/*
 * Bind RTP on ss's port and, with rtcp, RTCP on port + 1.  fds[0] RTP,
 * fds[1] RTCP.  -1 with errno of the failing bind.
 */
static int
session_bind_pair(struct sockaddr_storage *ss, int rtcp, int tcp,
    int fds[2])
{
	struct sockaddr_storage	r = *ss;
	int			saved;

	fds[0] = fds[1] = -1;
	if ((fds[0] = session_bind(ss, tcp)) == -1)
		return -1;
	if (!rtcp)
		return 0;
	session_setport(&r, (uint16_t)(session_getport(ss) + 1));
	if ((fds[1] = session_bind(&r, tcp)) == -1) {
		saved = errno;
		close(fds[0]);
		fds[0] = -1;
		errno = saved;
		return -1;
	}
	return 0;
}

static uint32_t
session_pair_of(uint16_t port)
{
	return ((uint32_t)port - sr.conf->port_min) / 2;
}

/*
 * The UDP ports a session's sockets are bound to, each (family, port)
 * once: listen and forward, and RTCP on the port above.  How many.
 */
static int
session_udp_ports(uint32_t i, int fam[4], uint16_t port[4])
{
	const struct shm_slot	*s = session_slot(i);
	const struct shm_addr	*a;
	int			 k, j, f, n = 0, plus, rtcp;
	uint16_t		 p;

	if (s->flags & SHM_F_TCP)
		return 0;
	rtcp = !(s->flags & SHM_F_NORTCP);
	for (k = 0; k < 2; k++) {
		a = k == 0 ? &s->listen : &s->forward;
		if ((f = a->family == AF_INET ? 0 : a->family == AF_INET6 ?
		    1 : -1) == -1 || a->port == 0)
			continue;
		for (plus = 0; plus <= rtcp; plus++) {
			p = (uint16_t)(a->port + plus);
			for (j = 0; j < n; j++)
				if (fam[j] == f && port[j] == p)
					break;
			if (j == n) {
				fam[n] = f;
				port[n++] = p;
			}
		}
	}
	return n;
}

static void
session_port_set(int f, uint16_t p, uint32_t owner)
{
	atomic_store_explicit(&sr.shm->ports->owner[f][p], owner,
	    memory_order_release);
}

/* The one session other than i that holds port p of family f (slot + 1). */
static uint32_t
session_port_holder(int f, uint16_t p, uint32_t i)
{
	int		fam[4], n, j;
	uint16_t	port[4];
	uint32_t	k;

	for (k = 0; k < sr.nslots; k++) {
		if (k == i || !sr.s[k].in_use)
			continue;
		n = session_udp_ports(k, fam, port);
		for (j = 0; j < n; j++)
			if (fam[j] == f && port[j] == p)
				return k + 1;
	}
	return SHM_PORT_SHARED;		/* the count is off: stay safe */
}

/*
 * Slot i's sockets are bound (hold) or closed for good (!hold): the
 * table's port map says so, for the workers' check of their senders.
 */
static void
session_ports(uint32_t i, int hold)
{
	int		fam[4], n, j;
	uint16_t	port[4], *ref;

	n = session_udp_ports(i, fam, port);
	for (j = 0; j < n; j++) {
		ref = &sr.port_ref[fam[j] * 65536 + port[j]];
		if (hold) {
			++*ref;
			session_port_set(fam[j], port[j], *ref == 1 ? i + 1 :
			    SHM_PORT_SHARED);
		} else if (*ref > 0) {
			--*ref;
			session_port_set(fam[j], port[j], *ref == 0 ? 0 :
			    *ref == 1 ? session_port_holder(fam[j], port[j],
			    i) : SHM_PORT_SHARED);
		}
	}
}

/* Index into port_ref and kept of ss's family and port. */
static uint32_t
session_port_key(const struct sockaddr_storage *ss)
{
	return (ss->ss_family == AF_INET6 ? 65536u : 0u) +
	    session_getport(ss);
}

/* Is port (of ss's family) the destination of a session on this host? */
static int
session_port_kept(const struct sockaddr_storage *ss, uint16_t port)
{
	return sr.kept[(ss->ss_family == AF_INET6 ? 65536u : 0u) + port] != 0;
}

/*
 * The ports of the range that a UDP destination on this host reaches
 * (RTP, and with rtcp RTCP on the port above), as indexes of sr.kept
 * into keys; how many.  *own: 1 if the RTP port is one of our own
 * sockets, 2 if the RTCP port is, else 0.
 */
static int
session_dest_ports(const struct sockaddr_storage *dest, int rtcp,
    uint32_t keys[2], int *own)
{
	struct sockaddr_storage	here;
	uint16_t		port;
	int			k, n = 0;

	*own = 0;
	if (!acl_local(&sr.acl, (const struct sockaddr *)dest, &here))
		return 0;
	port = session_getport(&here);
	for (k = 0; k <= rtcp; k++) {
		session_setport(&here, (uint16_t)(port + k));
		if (*own == 0 && acl_own_socket(&sr.acl, sr.shm,
		    (struct sockaddr *)&here))
			*own = k + 1;
		/* Only a port of the range could become one of ours. */
		if (port + k >= sr.conf->port_min &&
		    port + k <= sr.conf->port_max)
			keys[n++] = session_port_key(&here);
	}
	return n;
}

/*
 * A UDP destination on this host: one of our own sockets is a loop; any
 * other port of the range is kept from our sessions for as long as this
 * one lives, so that none of them binds it and loops media back.  0 with
 * the ports to keep in keys (*n of them), or -1 with err set.
 */
static int
session_dest_check(const struct session_params *p, int rtcp,
    uint32_t keys[2], int *n, struct rp_error *err)
{
	struct sockaddr_storage	d = p->dest;
	char			why[256];
	int			own;

	*n = 0;
	if (p->tcp)
		return 0;
	*n = session_dest_ports(&d, rtcp, keys, &own);
	if (!own)
		return 0;
	*n = 0;
	if (own == 2)
		session_setport(&d, (uint16_t)(session_getport(&d) + 1));
	acl_explain(&sr.acl, sr.conf, (const struct sockaddr *)&d,
	    ACL_OWN, -1, own == 2 ? "RTCP destination" : "destination", why,
	    sizeof(why));
	log_notice("session %s refused: %s", p->id[0] != '\0' ? p->id :
	    "(unnamed)", why);
	return rp_err(err, RP_PERMISSION_DENIED, "%s", why);
}

/* Keep the ports (add 1) or let go of them (add -1). */
static void
session_keep(const uint32_t *keys, int n, int add)
{
	int k;

	for (k = 0; k < n; k++)
		if (add > 0)
			sr.kept[keys[k]]++;
		else if (sr.kept[keys[k]] > 0)
			sr.kept[keys[k]]--;
}

static const char *
session_bind_reason(int err)
{
	static char	buf[128];
	struct rlimit	rl;

	switch (err) {
	case EADDRNOTAVAIL:
		return "is not an address of this host";
	case EADDRINUSE:
		return "is in use";
	case EACCES:
		return "is not permitted";
	case EMFILE:
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur != RLIM_INFINITY) {
			snprintf(buf, sizeof(buf), "cannot be bound: out of "
			    "file descriptors (the limit is %llu)",
			    (unsigned long long)rl.rlim_cur);
			return buf;
		}
		return "cannot be bound: out of file descriptors";
	case ENFILE:
		return "cannot be bound: the system is out of file "
		    "descriptors";
	case ENOBUFS:
	case ENOMEM:
		return "cannot be bound: out of memory";
	default:
		return strerror(err);
	}
}

/* What a failed bind is to the caller: a full host is not a bug. */
static enum rp_code
session_bind_code(int err)
{
	switch (err) {
	case EADDRINUSE:
		return RP_ALREADY_EXISTS;
	case EADDRNOTAVAIL:
		return RP_INVALID_ARGUMENT;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		return RP_RESOURCE_EXHAUSTED;
	default:
		return RP_INTERNAL;
	}
}

/*
 * Bind an endpoint: an explicit port is checked against the range and
 * bound as asked; port 0 takes the next free pair of the worker's range.
 */
static int
session_bind_endpoint(const char *what, struct sockaddr_storage *ss,
    int worker, int rtcp, int tcp, int fds[2], uint16_t *pairref,
    struct rp_error *err)
{
	struct config	*c = sr.conf;
	uint16_t	 port = session_getport(ss), lo, hi;
	uint32_t	 first, last, n, p, tries;
	char		 a[INET6_ADDRSTRLEN];
	int		 e;

	inet_ntop(ss->ss_family, ss->ss_family == AF_INET ?
	    (void *)&((struct sockaddr_in *)ss)->sin_addr :
	    (void *)&((struct sockaddr_in6 *)ss)->sin6_addr, a, sizeof(a));
	if (port != 0) {
		if (port < c->port_min || port > c->port_max ||
		    (rtcp && port == c->port_max))
			return rp_err(err, RP_INVALID_ARGUMENT,
			    "%s.port %u is outside the media port range "
			    "%u-%u", what, port, c->port_min,
			    rtcp ? c->port_max - 1 : c->port_max);
		if (rtcp && (port & 1) != (c->port_min & 1))
			return rp_err(err, RP_INVALID_ARGUMENT,
			    "%s.port %u must be even: RTCP uses port + 1 "
			    "(or set disable_rtcp)", what, port);
		if (session_port_kept(ss, port) ||
		    (rtcp && session_port_kept(ss, (uint16_t)(port + 1))))
			return rp_err(err, RP_PERMISSION_DENIED,
			    "%s.port %u%s is the destination of a session on "
			    "this host: a socket of ours there would loop "
			    "media back into the daemon", what, port,
			    rtcp ? " (or RTCP on port + 1)" : "");
		if (session_bind_pair(ss, rtcp, tcp, fds) == -1) {
			e = errno;
			return rp_err(err, session_bind_code(e),
			    "%s %s port %u%s %s", what, a, port,
			    rtcp ? " (or RTCP on port + 1)" : "",
			    session_bind_reason(e));
		}
		p = session_pair_of(port);
		sr.pair_ref[p]++;
		*pairref = (uint16_t)(p + 1);
		return 0;
	}

	workers_range(worker, &lo, &hi);
	first = session_pair_of(lo);
	last = session_pair_of(hi);
	n = last - first + 1;
	p = sr.cursor[worker];
	if (p < first || p > last)
		p = first;
	for (tries = 0; tries < n; tries++, p = (p + 1 > last) ? first :
	    p + 1) {
		if (sr.pair_ref[p] != 0 ||
		    session_port_kept(ss, (uint16_t)(c->port_min + p * 2)) ||
		    session_port_kept(ss, (uint16_t)(c->port_min + p * 2 + 1)))
			continue;
		session_setport(ss, (uint16_t)(c->port_min + p * 2));
		if (session_bind_pair(ss, rtcp, tcp, fds) == 0) {
			sr.pair_ref[p]++;
			*pairref = (uint16_t)(p + 1);
			sr.cursor[worker] = p + 1 > last ? first : p + 1;
			return 0;
		}
		if (errno != EADDRINUSE) {
			e = errno;
			session_setport(ss, 0);
			return rp_err(err, session_bind_code(e),
			    "%s address %s %s", what, a,
			    session_bind_reason(e));
		}
	}
	session_setport(ss, 0);
	return rp_err(err, RP_RESOURCE_EXHAUSTED,
	    "no free port pair for %s in worker %d's range %u-%u "
	    "(%u sessions on it)", what, worker, lo, hi,
	    sr.nsessions[worker]);
}

static int
session_pick_worker(void)
{
	uint32_t	best = UINT32_MAX;
	int		i, w = 0;

	for (i = 0; i < sr.nworkers; i++)
		if (sr.nsessions[i] < best) {
			best = sr.nsessions[i];
			w = i;
		}
	return w;
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

int
session_create(const struct session_params *p, struct session_snapshot *out,
    struct rp_error *err)
{
	struct config		*c = sr.conf;
	struct sockaddr_storage	 listen = p->listen, fwd = p->forward;
	struct shm_slot		*s;
	struct session		*se;
	char			 id[SHM_ID_MAX];
	/* RFC 4571: RTP and RTCP share the one connection. */
	int			 rtcp = !p->disable_rtcp && !p->tcp;
	int			 lfd[2], ffd[2];
	int			 w, verdict, rule, rs;
	uint16_t		 lpair = 0, fpair = 0, dport;
	uint32_t		 i, kept[2];
	int			 nkept;

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
	if (listen.ss_family != AF_INET && listen.ss_family != AF_INET6)
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
	if (fwd.ss_family == 0) {
		memset(&fwd, 0, sizeof(fwd));
		fwd.ss_family = p->dest.ss_family;
	}
	if (fwd.ss_family != p->dest.ss_family)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "forward and destination addresses mix IPv4 and IPv6");
	if (session_is_multicast(&listen) || session_is_multicast(&fwd))
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
	if (session_bind_endpoint("listen", &listen, w, rtcp, p->tcp ?
	    SESSION_TCP_LISTEN : 0, lfd, &lpair, err) == -1) {
		session_keep(kept, nkept, -1);
		return -1;
	}
	if (session_bind_endpoint("forward", &fwd, w, rtcp, p->tcp ?
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
	s = session_slot(i);
	/* A slot's previous tenant is fully gone: see session_free_slot. */
	s->worker = (uint32_t)w;
	rs = p->reverse_source >= 0 ? p->reverse_source : c->reverse_source;
	s->flags = (p->unidirectional ? SHM_F_UNIDIR : 0) |
	    (rtcp ? 0 : SHM_F_NORTCP) | (p->tcp ? SHM_F_TCP : 0) |
	    (p->idle_timeout_s == 0 ? SHM_F_IDLE_DEF : 0) |
	    (rs != CONF_RS_ANY ? SHM_F_SRC_ADDR : 0) |
	    (rs == CONF_RS_ADDRESS_PORT ? SHM_F_SRC_PORT : 0);
	s->rate_pps = p->tcp ? 0 : p->rate_pps ? p->rate_pps : c->rate_pps;
	s->rate_bps = p->tcp ? 0 : p->rate_bps ? p->rate_bps : c->rate_bps;
	s->rate_burst_ms = c->rate_burst_ms;
	s->latch.policy = (uint8_t)(p->latch_policy ? p->latch_policy :
	    c->latch_policy);
	s->latch.run = (uint8_t)c->latch_run;
	s->latch.learn_ms = c->latch_learn_ms;
	s->latch.quiet_ms = c->latch_quiet_ms;
	memcpy(s->id, id, sizeof(s->id));
	shm_addr_from_sa(&s->listen, (struct sockaddr *)&listen);
	shm_addr_from_sa(&s->forward, (struct sockaddr *)&fwd);
	shm_addr_from_sa(&s->dest, (const struct sockaddr *)&p->dest);
	session_ports(i, 1);
	s->idle_timeout_s = p->idle_timeout_s ? p->idle_timeout_s :
	    c->idle_timeout;
	s->setup_timeout_s = c->setup_timeout;
	s->stats_interval_ms = p->stats_interval_ms ? p->stats_interval_ms :
	    c->stats_interval;
	s->clock_rate = p->clock_rate;
	s->created_ms = now_ms();

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
static void
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

static void
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
static void
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

/* A session taken over: keep its destination's ports, as at its start. */
static void
session_keep_dest(uint32_t i)
{
	struct shm_slot		*s = session_slot(i);
	struct session		*se = &sr.s[i];
	struct sockaddr_storage	 d;
	int			 own;

	if ((s->flags & SHM_F_TCP) || shm_addr_to_sa(&s->dest, &d) == 0)
		return;
	se->nkept = session_dest_ports(&d, !(s->flags & SHM_F_NORTCP),
	    se->kept_at, &own);
	session_keep(se->kept_at, se->nkept, 1);
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
static void
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

void
session_reconfigure(const struct config *c)
{
	uint32_t i;

	session_acl_refresh(c);
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
