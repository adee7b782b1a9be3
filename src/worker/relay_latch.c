/*
 * Whom reverse media goes to: the caller's address as the session's latch
 * (symmetric RTP), under its latch policy (learn, never, latest), and the
 * senders refused on the way, told to the master spaced out.  The packet
 * path (relay.c) checks a packet against the latch itself and comes here
 * only when the sender is not the latched one.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/udp.h>
#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <linux/sock_diag.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "relay_int.h"

/* Refresh the session's copies of the slot's latched addresses. */
void
relay_latch_load(struct relay_sess *rs)
{
	struct shm_slot	*s = rs->slot;
	uint32_t	 bits;

	/* The kernel's entries were made for the old latch: out first. */
	if (rs->kf != 0)
		relay_kfwd_drop_all(rs);
	bits = atomic_load_explicit(&s->latched, memory_order_acquire);
	rs->latched = bits;
	if (bits & LATCH_RTP) {
		rs->latchlen[0] = relay_sa_set(&rs->latch[0], &s->latch_rtp, 0);
		rs->latchlen[2] = relay_sa_set(&rs->latch[2], &s->latch_rtp, 1);
	}
	if (bits & LATCH_RTCP)
		rs->latchlen[1] = relay_sa_set(&rs->latch[1], &s->latch_rtcp,
		    0);
}
/* The latch of RTP (0) or RTCP (1) as a string with its port. */
static const char *
relay_latch_str(const struct relay_sess *rs, int rtcp, char *buf,
    size_t len)
{
	return sa_ntop(&rs->latch[rtcp].sa, buf, len);
}
/*
 * A packet from sa was refused (and is dropped): tell the master, which
 * logs it and makes an event of it; at once the first time, then at most
 * once every RELAY_REFUSED_NS a session, with how many packets were
 * refused since.  The reason is formatted only when it is told.  ns: the
 * packet's receive time.
 */
void
relay_refused(struct relay_sess *rs, int rtcp, const struct sockaddr *sa,
    int64_t ns, int why, int verdict, int rule)
{
	struct ipc_latch	m;
	char			r[296], a[INET6_ADDRSTRLEN + 8];
	char			l[INET6_ADDRSTRLEN + 8];

	rs->refused++;
	/* A clock stepped back is no reason to stay quiet. */
	if (ns < rs->refused_next && ns > rs->refused_next - 2 *
	    RELAY_REFUSED_NS)
		return;
	rs->refused_next = ns + RELAY_REFUSED_NS;
	sa_ntop(sa, a, sizeof(a));
	relay_latch_str(rs, 0, l, sizeof(l));
	switch (why) {
	case REFUSE_RULES:
		acl_explain(wctx_acl(&rs->relay->ctx), NULL, sa, verdict, rule,
		    "sender", r, sizeof(r));
		break;
	case REFUSE_SELF:
		acl_explain(wctx_acl(&rs->relay->ctx), NULL, sa, ACL_OWN, -1,
		    "sender", r, sizeof(r));
		break;
	case REFUSE_NEVER:
		snprintf(r, sizeof(r), "sender %s refused: the latch is %s "
		    "(latch-policy never)", a, l);
		break;
	case REFUSE_LEARN:
		snprintf(r, sizeof(r), "sender %s refused: the latch is %s, "
		    "which last sent %lld ms earlier (latch-policy learn: a "
		    "new source needs it quiet for %lld ms, then %u RTP "
		    "packets in sequence)", a, l,
		    (long long)((ns - rs->seen_ns) / NS_PER_MS),
		    (long long)(rs->quiet_ns / NS_PER_MS), rs->run);
		break;
	case REFUSE_NOT_RTP:
		snprintf(r, sizeof(r), "sender %s refused: not RTP, and the "
		    "latch is %s (latch-policy %s)", a, l,
		    shm_latch_name(rs->policy));
		break;
	default:
		snprintf(r, sizeof(r), "sender %s refused: RTCP follows RTP, "
		    "which is latched to %s (latch-policy %s)", a, l,
		    shm_latch_name(rs->policy));
		break;
	}
	ipc_init(&m.hdr, IPC_REFUSED, 0, rs->idx, rs->gen);
	m.hdr.arg = rtcp ? IPC_LATCH_RTCP : 0;
	(void)shm_addr_from_sa(&m.to, sa);
	if (rs->refused > 1)
		snprintf(m.reason, sizeof(m.reason), "%s (%u packets refused "
		    "since the last report)", r, rs->refused);
	else
		snprintf(m.reason, sizeof(m.reason), "%s", r);
	rs->refused = 0;
	wctx_tell(&rs->relay->ctx, &m.hdr, NULL, 0);
}
/* The RTP latch's candidate is gone: the latched source spoke. */
void
relay_cand_clear(struct relay_sess *rs)
{
	rs->slot->latch.cand_count = 0;
	rs->cand_live = 0;
}
/*
 * Latch RTP (0) or RTCP (1) to sa.  A move of a latch (not the first
 * latch) is counted and told to the master, which logs it and makes an
 * event of it: every move, but no more than RELAY_MOVES_BURST at once and
 * one a second after that, the rest counted in the next.  why: what the
 * policy says, for a person.
 */
static void
relay_latch_set(struct relay_sess *rs, int rtcp, const struct sockaddr *sa,
    int64_t ns, const char *why)
{
	struct shm_slot		*s = rs->slot;
	struct shm_addr		*a = rtcp ? &s->latch_rtcp : &s->latch_rtp;
	struct ipc_latch	 m;
	uint32_t		 bit = rtcp ? LATCH_RTCP : LATCH_RTP;
	int			 moved = (rs->latched & bit) != 0;

	ipc_init(&m.hdr, IPC_LATCHED, 0, rs->idx, rs->gen);
	m.from = *a;
	if (shm_addr_from_sa(a, sa) == -1)
		return;
	atomic_fetch_or_explicit(&s->latched, bit, memory_order_release);
	relay_latch_load(rs);
	if (!rtcp) {
		rs->seen_ns = ns;
		rs->seen_dirty = 1;
		relay_cand_clear(rs);
		s->latch.rtcp_follow = moved;
	} else
		s->latch.rtcp_follow = 0;
	if (log_getlevel() >= LOG_DEBUG) {
		char buf[INET6_ADDRSTRLEN + 8];

		log_debug("slot %u: %s latched to %s", rs->idx,
		    rtcp ? "RTCP" : "RTP", sa_ntop(sa, buf, sizeof(buf)));
	}
	if (!moved)
		return;
	SHM_ADD(&s->latch.moves, 1);
	if (ns < rs->moves_tat - (RELAY_MOVES_BURST - 1) * RELAY_MOVES_NS &&
	    ns > rs->moves_tat - 2 * RELAY_MOVES_BURST * RELAY_MOVES_NS) {
		rs->moves_untold++;
		return;
	}
	rs->moves_tat = (rs->moves_tat > ns ? rs->moves_tat : ns) +
	    RELAY_MOVES_NS;
	m.hdr.arg = rtcp ? IPC_LATCH_RTCP : 0;
	m.to = *a;
	if (rs->moves_untold > 0)
		snprintf(m.reason, sizeof(m.reason), "%s; %u moves before "
		    "this one not reported", why, rs->moves_untold);
	else
		snprintf(m.reason, sizeof(m.reason), "%s", why);
	rs->moves_untold = 0;
	wctx_tell(&rs->relay->ctx, &m.hdr, NULL, 0);
}
/* The same host (address, whatever the port)? */
static int
relay_sa_host_eq(const union relay_sa *u, const struct sockaddr *sa)
{
	if (sa->sa_family != u->sa.sa_family)
		return 0;
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
		    u->sin.sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr,
	    &u->sin6.sin6_addr, sizeof(u->sin6.sin6_addr)) == 0;
}
/*
 * RTP from sa, a source that is not the latched one and that the rules
 * allow: may it latch, or move the latch?  ri: the packet's RTP header,
 * NULL if it is not valid RTP.  0: yes, and it did; -1: refuse the packet.
 *
 * The first packet latches, whatever it is (DTLS or STUN may come before
 * RTP); only valid RTP moves a latch.  With latch-policy learn, the
 * latest source wins until the learning period after the first latch
 * ends (NATs settle, early media comes from elsewhere); after that the
 * latch moves only once the latched source has been quiet for quiet_ns
 * and the new one sent a run of packets in sequence (one SSRC, seq + 1
 * each), as a NAT that rebinds does, and as one packet from a stranger
 * (RTP bleed) does not.
 */
int
relay_latch_rtp(struct relay_sess *rs, const struct sockaddr *sa,
    const struct rtp_info *ri, int64_t ns)
{
	struct shm_latch	*l = &rs->slot->latch;
	char			 why[160], a[INET6_ADDRSTRLEN + 8];

	if (!(rs->latched & LATCH_RTP)) {
		rs->learn_end_ns = ns + (int64_t)l->learn_ms * NS_PER_MS;
		l->learn_end_ms = rs->learn_end_ns / NS_PER_MS;
		relay_latch_set(rs, 0, sa, ns, "");
		return 0;
	}
	switch (rs->policy) {
	case SHM_LATCH_LATEST:
		if (ri != NULL)
			relay_latch_set(rs, 0, sa, ns, "latch-policy latest");
		return 0;
	case SHM_LATCH_NEVER:
		relay_refused(rs, 0, sa, ns, REFUSE_NEVER, 0, -1);
		return -1;
	}
	if (ns < rs->learn_end_ns) {
		if (ri != NULL)
			relay_latch_set(rs, 0, sa, ns, "latch-policy learn, "
			    "in the learning period");
		return 0;
	}
	if (ri == NULL) {
		relay_refused(rs, 0, sa, ns, REFUSE_NOT_RTP, 0, -1);
		return -1;
	}
	/* The clock went back: quiet from now on. */
	if (ns < rs->seen_ns)
		rs->seen_ns = ns;
	if (rs->cand_live && l->cand_ssrc == ri->ssrc &&
	    (uint16_t)(l->cand_seq + 1) == ri->seq &&
	    shm_addr_eq_sa(&l->cand, sa)) {
		if (l->cand_count < UINT8_MAX)
			l->cand_count++;
	} else {
		(void)shm_addr_from_sa(&l->cand, sa);
		l->cand_ssrc = ri->ssrc;
		l->cand_count = 1;
		rs->cand_live = 1;
	}
	l->cand_seq = ri->seq;
	if (l->cand_count >= rs->run && ns - rs->seen_ns >= rs->quiet_ns) {
		snprintf(why, sizeof(why), "latch-policy learn: %s quiet for "
		    "%lld ms, then %u RTP packets in sequence from the new "
		    "address", relay_latch_str(rs, 0, a, sizeof(a)),
		    (long long)((ns - rs->seen_ns) / NS_PER_MS), l->cand_count);
		relay_latch_set(rs, 0, sa, ns, why);
		return 0;
	}
	relay_refused(rs, 0, sa, ns, REFUSE_LEARN, 0, -1);
	return -1;
}
/*
 * RTCP from sa, not the latched RTCP source, allowed by the rules.  RTCP
 * follows RTP: with latch-policy latest, and while RTP is not latched or
 * still learning, the latest RTCP source wins, as for RTP; once RTP is
 * settled, RTCP latches only to a source on RTP's latched address, and
 * moves only when RTP has moved since (or RTCP is on another address):
 * a stranger's RTCP never takes the caller's reports.
 */
int
relay_latch_rtcp(struct relay_sess *rs, const struct sockaddr *sa,
    int64_t ns)
{
	struct shm_latch	*l = &rs->slot->latch;
	uint32_t		 bits = rs->latched;

	if (rs->policy == SHM_LATCH_LATEST || !(bits & LATCH_RTP) ||
	    (rs->policy != SHM_LATCH_NEVER && ns < rs->learn_end_ns)) {
		relay_latch_set(rs, 1, sa, ns, rs->policy ==
		    SHM_LATCH_LATEST ? "latch-policy latest" :
		    "RTCP, before RTP settled");
		return 0;
	}
	if (!relay_sa_host_eq(&rs->latch[0], sa) || ((bits & LATCH_RTCP) &&
	    !l->rtcp_follow && relay_sa_host_eq(&rs->latch[0],
	    &rs->latch[1].sa))) {
		relay_refused(rs, 1, sa, ns, REFUSE_RTCP, 0, -1);
		return -1;
	}
	relay_latch_set(rs, 1, sa, ns, "RTCP follows RTP to its address");
	return 0;
}
