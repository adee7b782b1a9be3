/*
 * UpdateSession: a live session changed in place.  Same id, slot, ports
 * and counters; the master writes the new values into the slot and tells
 * the worker to read them again (IPC_UPDATE).  Because the slot is the
 * record, a worker started again and a master that takes over find the
 * session as it was last changed.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session_int.h"

#define UPD_MAX		9	/* parts a request may change */

/* What one request changes, as names and as a sentence. */
struct upd_log {
	const char	*names[UPD_MAX];
	size_t		 n;
	char		 text[512];
};

static void
upd_note(struct upd_log *u, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
upd_note(struct upd_log *u, const char *name, const char *fmt, ...)
{
	va_list	ap;
	size_t	len = strlen(u->text);

	if (u->n < UPD_MAX)
		u->names[u->n++] = name;
	if (len > 0 && len + 2 < sizeof(u->text)) {
		memcpy(u->text + len, ", ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(u->text + len, sizeof(u->text) - len, fmt, ap);
	va_end(ap);
}

static const char *
upd_rs_word(uint32_t flags)
{
	if (!(flags & SHM_F_SRC_ADDR))
		return "any";
	return (flags & SHM_F_SRC_PORT) ? "address-port" : "address";
}

/*
 * What no session may be changed to, and what a TCP session cannot
 * change; the new destination judged as CreateSession judges one.  0, or
 * -1 with err set.  keys, *nkeys: the new destination's ports to keep.
 */
static int
upd_check(uint32_t i, const struct session_update *u, uint32_t keys[2],
    int *nkeys, struct rp_error *err)
{
	struct shm_slot		*s = session_slot(i);
	struct session_params	 p;
	struct sockaddr_storage	 cur;
	int			 tcp = (s->flags & SHM_F_TCP) != 0;
	int			 rtcp = !(s->flags & (SHM_F_NORTCP | SHM_F_TCP));
	int			 verdict, rule;
	uint16_t		 dport;

	*nkeys = 0;
	if (sr.stopping)
		return rp_err(err, RP_UNAVAILABLE, "server is shutting down");
	if (tcp && (u->has_dest || u->unidirectional != -1 || u->has_rate ||
	    u->reverse_source != -1 || u->latch_policy != 0 ||
	    u->record != -1))
		return rp_err(err, RP_FAILED_PRECONDITION, "session %s is a "
		    "TCP session: only idle_timeout_s and stats_interval_ms "
		    "can change (its connection to the destination is made)",
		    s->id);
	if (u->record == 1 && (sr.conf->recording_dir == NULL ||
	    sr.conf->recording_dir[0] == '\0'))
		return rp_err(err, RP_FAILED_PRECONDITION, "recording: no "
		    "recording-dir is configured");
	if (u->stats_interval_ms != 0 && (u->stats_interval_ms < 100 ||
	    u->stats_interval_ms > 3600000))
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "stats_interval_ms %u is out of range: 0 (unchanged) or "
		    "100..3600000", u->stats_interval_ms);
	if (u->idle_timeout_s > 86400)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "idle_timeout_s %u is out of range: 0 (unchanged) or "
		    "1..86400", u->idle_timeout_s);
	if (u->has_rate && u->rate_pps > 10000000)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "rate_limit.pps %u is out of range: 0 (the default) or "
		    "1..10000000", u->rate_pps);
	if (u->has_rate && u->rate_bps > 100000000000ULL)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "rate_limit.bps %llu is out of range: 0 (the default) or "
		    "up to 100000000000", (unsigned long long)u->rate_bps);
	if (u->reverse_source < -1 || u->reverse_source > CONF_RS_ADDRESS_PORT)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "reverse_source %d is not a known ReverseSource",
		    u->reverse_source);
	if (u->latch_policy < 0 || u->latch_policy > SHM_LATCH_LATEST)
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "latch_policy %d is not a known LatchPolicy",
		    u->latch_policy);
	if (!u->has_dest)
		return 0;

	if (shm_addr_to_sa(&s->dest, &cur) == 0 ||
	    cur.ss_family != u->dest.ss_family)
		return rp_err(err, RP_INVALID_ARGUMENT, "destination.address "
		    "must be of the session's family (%s): its forward "
		    "socket is bound to it", s->dest.family == AF_INET6 ?
		    "IPv6" : "IPv4");
	dport = session_getport(&u->dest);
	if (dport == 0 || (rtcp && dport == 65535))
		return rp_err(err, RP_INVALID_ARGUMENT,
		    "destination.port %u is not usable%s", dport,
		    dport ? " with RTCP on port + 1" : "");
	if ((verdict = acl_check(&sr.acl, (const struct sockaddr *)&u->dest,
	    ACL_UDP, &rule)) != ACL_ALLOW) {
		char why[256];

		acl_explain(&sr.acl, sr.conf, (const struct sockaddr *)&u->dest,
		    verdict, rule, "destination", why, sizeof(why));
		log_notice("session %s: update refused: %s", s->id, why);
		return rp_err(err, RP_PERMISSION_DENIED, "%s", why);
	}
	memset(&p, 0, sizeof(p));
	memcpy(p.id, s->id, sizeof(p.id));
	p.dest = u->dest;
	return session_dest_check(&p, rtcp, keys, nkeys, err);
}

/* Write what changes into slot i; note it in l. */
static void
upd_apply(uint32_t i, const struct session_update *u, struct upd_log *l)
{
	struct config	*c = sr.conf;
	struct shm_slot	*s = session_slot(i);
	struct shm_addr	 na;
	uint32_t	 flags = s->flags, pps;
	uint64_t	 bps;
	char		 a[64], b[64];
	int		 unidir;

	if (u->has_dest) {
		shm_addr_from_sa(&na, (const struct sockaddr *)&u->dest);
		if (memcmp(&na, &s->dest, sizeof(na)) != 0) {
			upd_note(l, "destination", "destination %s:%u -> %s:%u",
			    shm_addr_ntop(&s->dest, a, sizeof(a)),
			    s->dest.port, shm_addr_ntop(&na, b, sizeof(b)),
			    na.port);
			s->dest = na;
		}
	}
	if (u->unidirectional != -1) {
		unidir = (flags & SHM_F_UNIDIR) != 0;
		if (unidir != u->unidirectional) {
			upd_note(l, "direction", "direction %s -> %s",
			    unidir ? "forward-only" : "both",
			    u->unidirectional ? "forward-only" : "both");
			flags ^= SHM_F_UNIDIR;
		}
	}
	if (u->has_rate) {
		pps = u->rate_pps ? u->rate_pps : c->rate_pps;
		bps = u->rate_bps ? u->rate_bps : c->rate_bps;
		if (pps != s->rate_pps || bps != s->rate_bps) {
			upd_note(l, "rate_limit", "rate limit %u pps %llu bps "
			    "-> %u pps %llu bps", s->rate_pps,
			    (unsigned long long)s->rate_bps, pps,
			    (unsigned long long)bps);
			s->rate_pps = pps;
			s->rate_bps = bps;
		}
	}
	if (u->idle_timeout_s != 0 && (u->idle_timeout_s !=
	    s->idle_timeout_s || (flags & SHM_F_IDLE_DEF))) {
		upd_note(l, "idle_timeout_s", "idle timeout %u s -> %u s",
		    s->idle_timeout_s, u->idle_timeout_s);
		s->idle_timeout_s = u->idle_timeout_s;
		flags &= ~SHM_F_IDLE_DEF;
	}
	if (u->stats_interval_ms != 0 &&
	    u->stats_interval_ms != s->stats_interval_ms) {
		upd_note(l, "stats_interval_ms", "stats interval %u ms -> "
		    "%u ms", s->stats_interval_ms, u->stats_interval_ms);
		s->stats_interval_ms = u->stats_interval_ms;
		if (sr.s[i].stats_ev != NULL) {
			event_free(sr.s[i].stats_ev);
			sr.s[i].stats_ev = NULL;
		}
		session_stats_timer(i);
	}
	if (u->reverse_source != -1) {
		uint32_t nf = flags & ~(SHM_F_SRC_ADDR | SHM_F_SRC_PORT);

		nf |= (u->reverse_source != CONF_RS_ANY ? SHM_F_SRC_ADDR : 0) |
		    (u->reverse_source == CONF_RS_ADDRESS_PORT ?
		    SHM_F_SRC_PORT : 0);
		if (nf != flags) {
			upd_note(l, "reverse_source", "reverse source %s -> %s",
			    upd_rs_word(flags), upd_rs_word(nf));
			flags = nf;
		}
	}
	if (u->latch_policy != 0 && u->latch_policy != (s->latch.policy ?
	    s->latch.policy : SHM_LATCH_LEARN)) {
		upd_note(l, "latch_policy", "latch policy %s -> %s",
		    shm_latch_name(s->latch.policy ? s->latch.policy :
		    SHM_LATCH_LEARN), shm_latch_name(u->latch_policy));
		s->latch.policy = (uint8_t)u->latch_policy;
	}
	/* Started again after a failure or a stop: a new part. */
	if (u->record == 1 && (!(flags & SHM_F_RECORD) ||
	    atomic_load(&s->rec.state) != SHM_REC_ACTIVE)) {
		upd_note(l, "recording", "recording started");
		flags |= SHM_F_RECORD;
		s->rec_gen++;
	} else if (u->record == 0 && (flags & SHM_F_RECORD)) {
		upd_note(l, "recording", "recording stopped");
		flags &= ~SHM_F_RECORD;
	}
	s->flags = flags;
}

int
session_update(const struct session_update *u, struct session_snapshot *out,
    struct rp_error *err)
{
	struct session		*se;
	struct session_event	 ev;
	struct ipc_hdr		 h;
	struct upd_log		 l;
	uint32_t		 keys[2], i;
	int			 n, nkeys;

	if ((n = session_lookup(u->id)) == -1)
		return rp_err(err, RP_NOT_FOUND, "no session %s", u->id);
	i = (uint32_t)n;
	se = &sr.s[i];
	if (upd_check(i, u, keys, &nkeys, err) == -1)
		return -1;
	memset(&l, 0, sizeof(l));
	upd_apply(i, u, &l);
	if (l.n > 0 && u->has_dest && strcmp(l.names[0], "destination") == 0) {
		/* The new destination's ports kept, the old one's let go. */
		session_keep(se->kept_at, se->nkept, -1);
		se->nkept = nkeys;
		memcpy(se->kept_at, keys, sizeof(se->kept_at));
		session_keep(se->kept_at, se->nkept, 1);
	}
	if (l.n > 0) {
		session_slot(i)->updates++;
		/* The worker reads the slot again; a new one reads it anyway. */
		if (se->handed) {
			ipc_init(&h, IPC_UPDATE, 0, i,
			    atomic_load(&session_slot(i)->gen));
			(void)workers_send(se->worker, &h, NULL, 0);
		}
		log_info("session %s updated: %s", u->id, l.text);
		memset(&ev, 0, sizeof(ev));
		ev.type = SEV_UPDATED;
		ev.timestamp_ms = now_ms();
		session_snapshot(i, &ev.snap);
		ev.state = ev.previous_state = ev.snap.state;
		ev.reason = l.text;
		ev.changed = l.names;
		ev.nchanged = l.n;
		sr.publish(&ev);
	}
	if (out != NULL)
		session_snapshot(i, out);
	return 0;
}
