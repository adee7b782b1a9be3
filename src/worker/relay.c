/*
 * The packet path inside a worker: per session, a listen socket that the
 * caller sends to and a forward socket that media leaves from towards the
 * destination, for RTP and (on port + 1) RTCP.  The sockets are in an
 * epoll set of the relay's own, one descriptor in the worker's libevent
 * loop.  Each readable socket is drained with recvmmsg in batches; the
 * batch is checked, counted and latched, then sent on from the paired
 * socket with one sendmmsg, runs of one size as UDP GSO messages.
 *
 * The packet path allocates nothing, takes no lock and logs nothing in the
 * normal case: every buffer lives in struct relay, made by relay_new.
 * Counters are summed per batch and written to the slot with one relaxed
 * atomic add each; only this worker writes them.
 *
 * Datagrams the kernel drops on a full receive buffer are counted from
 * the socket's drop count (sk_drops), which comes from two places: with
 * each datagram (SO_RXQ_OVFL, the count when it was queued, so drops after
 * the last queued datagram stay unseen until another one is queued), and
 * from SO_MEMINFO (the count now).  The latter is read when a socket that
 * was busy has been drained, and on a slow timer for the sockets where
 * datagrams queued up; the packet path only sets a flag.  The count only
 * moves forward: a value older than the one seen adds nothing.
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
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "acl.h"
#include "worker.h"

#define RELAY_BATCH	32	/* datagrams per recvmmsg / sendmmsg */
#define RELAY_BUDGET	4	/* batches per wakeup, then let others run */
#define RELAY_EVENTS	256	/* ready sockets per epoll_wait */
#define RELAY_PKTMAX	2048	/* larger datagrams are truncated: invalid */
#define RELAY_ERRQ_MAX	64	/* error queue entries read per drain */
#define RELAY_CMSGLEN	128
#define RELAY_OVFL_MS	1000	/* SO_MEMINFO of sockets that queued */
/*
 * A run of datagrams to one address, all of one size but the last, goes
 * out as one message that the kernel splits (UDP GSO, UDP_SEGMENT): one
 * pass through the socket and routing code for the run.  The kernel takes
 * at most 64 segments and 64 KiB of payload in one.
 */
#define RELAY_GSO_BYTES	60000

/* Socket roles; role ^ 1 is the socket a packet leaves from. */
enum {
	SK_LISTEN_RTP,
	SK_FORWARD_RTP,
	SK_LISTEN_RTCP,
	SK_FORWARD_RTCP,
	SK_MAX
};

#define LATCH_RTP	0x01u
#define LATCH_RTCP	0x02u

struct relay_sock {
	struct relay_sess	*sess;
	int			 fd;
	uint8_t			 role;
	uint8_t			 nogso;		/* the kernel refused GSO here */
	uint8_t			 ovfl_check;	/* SO_MEMINFO once drained */
};

/*
 * A token bucket as GCRA: a packet at t conforms unless the theoretical
 * arrival time tat is more than tau ahead of t; one that conforms moves
 * tat on by its cost.  Integers only, and no clock read of its own: t is
 * the packet's receive time.
 */
struct relay_bucket {
	int64_t		 tat_pkt, tat_bit;	/* ns */
	int64_t		 last;
};

/* An IPv4 or IPv6 socket address, no bigger than it needs to be. */
union relay_sa {
	struct sockaddr		sa;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
};

/*
 * Laid out for the packet path: a packet touches the first line, the one
 * with all four sockets, and the two with its addresses (destinations,
 * latches); what only errors and rate limits need comes last.  With
 * thousands of sessions none of it is in the cache when a packet comes.
 */
struct relay_sess {
	struct relay		*relay;
	struct shm_slot		*slot;
	uint32_t		 idx;
	uint32_t		 gen;
	uint8_t			 unidir;
	uint8_t			 src_addr;	/* reverse only from dest addr */
	uint8_t			 src_port;	/* ... and port */
	uint8_t			 limited;
	uint8_t			 reported_active;
	uint8_t			 reported_error;
	uint8_t			 nsock;
	uint32_t		 clock_rate;
	uint32_t		 latched;	/* the slot's, as last loaded */
	/* the slot's ovfl_seen, kept here; written back when it changes */
	uint32_t		 ovfl[SK_MAX];
	/*
	 * The latch policy and what the packet path keeps of the slot's
	 * latch state (the slot has it too, for a worker that takes over).
	 */
	uint8_t			 policy;	/* SHM_LATCH_* */
	uint8_t			 run;
	uint8_t			 cand_live;	/* slot's cand_count != 0 */
	uint8_t			 seen_dirty;	/* seen_ns not in the slot */

	_Alignas(64) struct relay_sock sk[SK_MAX];
	/* where forward media goes: the destination, RTP and RTCP */
	union relay_sa		 dest[2];
	socklen_t		 destlen[2];
	/* the latched RTP source's last packet: beside its address */
	int64_t			 seen_ns;
	/*
	 * Where reverse media goes, copied from the slot's latch: RTP, RTCP,
	 * and the RTP address with port + 1 for RTCP until RTCP latches.
	 */
	union relay_sa		 latch[3];
	socklen_t		 latchlen[3];
	int64_t			 learn_end_ns;	/* 0: not latched yet */
	int64_t			 quiet_ns;

	int64_t			 pkt_ns;	/* 0: no packet rate limit */
	uint64_t		 byte_ns_q16;	/* 0: no bit rate limit */
	int64_t			 tau_ns;
	struct relay_bucket	 bucket[2];	/* per direction */
	/* refused senders: told to the master at most this often */
	int64_t			 refused_next;	/* ns; 0: at once */
	uint32_t		 refused;	/* packets since last told */
	/* moves of the latch told to the master: a token bucket (GCRA) */
	int64_t			 moves_tat;	/* ns */
	uint32_t		 moves_untold;
	char			 error[120];	/* what was reported */
	/* sockets whose drop count the timer reads, off the packet path */
	uint8_t			 ovfl_watch;	/* roles, a bit each */
	LIST_ENTRY(relay_sess)	 ovfl_entry;	/* in relay's ovfl_watch */
} __attribute__((aligned(64)));

union relay_cmsg {
	struct cmsghdr	hdr;
	char		buf[RELAY_CMSGLEN];
};

union relay_gso {
	struct cmsghdr	hdr;
	char		buf[CMSG_SPACE(sizeof(uint16_t))];
};

struct relay {
	struct event_base	 *base;
	struct shm_table	 *shm;
	struct relay_sess	**sess;		/* by slot */
	int			  count;

	/*
	 * The UDP sockets are in an epoll set of the relay's own, which the
	 * libevent loop watches as one descriptor: a ready socket costs one
	 * entry in r->evs, no libevent event, and the next one's state can
	 * be fetched while this one's system calls run.
	 */
	int			  epfd;
	struct event		 *ev_poll;
	struct epoll_event	  evs[RELAY_EVENTS];

	struct mmsghdr		  rx[RELAY_BATCH];
	int			  rx_dirty;	/* headers to reset */
	struct iovec		  rxiov[RELAY_BATCH];
	struct sockaddr_storage	  from[RELAY_BATCH];
	union relay_cmsg	  cmsg[RELAY_BATCH];
	/* packets to send, and the messages they go out in */
	struct iovec		  txiov[RELAY_BATCH];
	int64_t			  txns[RELAY_BATCH];	/* kernel rx time */
	uint8_t			  txok[RELAY_BATCH];
	struct mmsghdr		  tx[RELAY_BATCH];
	int			  txfirst[RELAY_BATCH + 1]; /* message's first */
	union relay_gso		  txgso[RELAY_BATCH];
	int			  gso;		/* the kernel has UDP GSO */
	uint64_t		  gso_msgs;	/* messages sent with it */
	uint8_t			  buf[RELAY_BATCH][RELAY_PKTMAX];

	uint8_t			  errbuf[256];
	union relay_cmsg	  errcmsg;

	uint16_t		  crash_lo;	/* RTPPROXYD_FAILPOINT */
	uint16_t		  crash_hi;
	struct tcp_relay	 *tcp;
	uint64_t		  hist[SHM_LAT_BUCKETS];
	uint32_t		  hist_used;	/* bit k: hist[k] != 0 */
	struct wctx		  ctx;		/* reports, counters, rules */

	/* sessions with sockets whose drop count the timer reads */
	LIST_HEAD(, relay_sess)	  ovfl_watch;
	struct event		 *ev_ovfl;
	int			  meminfo;	/* the kernel has SO_MEMINFO */
};

/* What one batch did to one direction, written to the slot at the end. */
struct relay_tally {
	uint64_t	received, bytes, invalid, not_latched, non_rtp;
	uint64_t	sent, bytes_sent, send_error, overflow;
	uint64_t	source, rate_limited;
	uint64_t	lat_sum, lat_count, lat_max;
	int64_t		last_ns;
};

static int64_t
relay_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Where the worker's latency histogram goes (id < 0: nowhere). */
void
relay_set_worker(struct relay *r, int id)
{
	wctx_set_worker(&r->ctx, id);
}

void
relay_busy(struct relay *r, uint32_t slot, uint32_t gen)
{
	wctx_busy(&r->ctx, slot, gen);
}

void
relay_idle(struct relay *r)
{
	wctx_idle(&r->ctx);
}

static void	relay_poll(evutil_socket_t, short, void *);
static void	relay_ovfl_tick(evutil_socket_t, short, void *);

/*
 * Does the kernel know UDP_SEGMENT (Linux 4.18)?  One that does not would
 * ignore the control message and send a run as one datagram, so ask
 * before using it.
 */
static int
relay_gso_probe(void)
{
	socklen_t	len = sizeof(int);
	int		fd, v, ok;

	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	ok = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
	close(fd);
	return ok;
}

/* A report about slot to whoever runs the relay (IPC_ERROR: and why). */
void
relay_report(struct relay *r, uint16_t type, uint32_t slot, uint32_t gen,
    int err, const char *reason)
{
	wctx_report(&r->ctx, type, slot, gen, err, reason);
}

struct relay *
relay_new(struct event_base *base, struct shm_table *shm,
    const struct relay_sink *sink)
{
	struct relay	*r;
	const char	*fp;
	char		*end;
	int		 i;

	r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->shm = shm;
	wctx_init(&r->ctx, shm, sink);
	r->sess = xcalloc(shm->nslots, sizeof(*r->sess));
	r->tcp = tcp_new(&r->ctx, base);
	for (i = 0; i < RELAY_BATCH; i++) {
		r->rxiov[i].iov_base = r->buf[i];
		r->rxiov[i].iov_len = RELAY_PKTMAX;
		r->rx[i].msg_hdr.msg_name = &r->from[i];
		r->rx[i].msg_hdr.msg_iov = &r->rxiov[i];
		r->rx[i].msg_hdr.msg_iovlen = 1;
		r->rx[i].msg_hdr.msg_control = &r->cmsg[i];
		r->rx[i].msg_hdr.msg_controllen = sizeof(r->cmsg[i]);
		r->rx[i].msg_hdr.msg_namelen = sizeof(r->from[i]);
		r->txgso[i].hdr.cmsg_level = SOL_UDP;
		r->txgso[i].hdr.cmsg_type = UDP_SEGMENT;
		r->txgso[i].hdr.cmsg_len = CMSG_LEN(sizeof(uint16_t));
	}
	r->gso = relay_gso_probe();
	/*
	 * For the tests only: with RTPPROXYD_FAILPOINT=relay-crash:LO[-HI],
	 * media on a listen port from LO to HI aborts the worker, as a packet
	 * that hit a bug would (what the master does about sessions that
	 * crash workers).
	 */
	if ((fp = getenv("RTPPROXYD_FAILPOINT")) != NULL &&
	    strncmp(fp, "relay-crash:", 12) == 0) {
		r->crash_lo = r->crash_hi = (uint16_t)strtol(fp + 12, &end,
		    10);
		if (*end == '-')
			r->crash_hi = (uint16_t)strtol(end + 1, NULL, 10);
	}
	r->meminfo = 1;
	LIST_INIT(&r->ovfl_watch);
	if ((r->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (r->ev_poll = event_new(base, r->epfd, EV_READ | EV_PERSIST,
	    relay_poll, r)) == NULL || event_add(r->ev_poll, NULL) == -1 ||
	    (r->ev_ovfl = event_new(base, -1, EV_PERSIST, relay_ovfl_tick,
	    r)) == NULL || event_add(r->ev_ovfl, &(struct timeval){
	    RELAY_OVFL_MS / 1000, RELAY_OVFL_MS % 1000 * 1000 }) == -1) {
		log_warn("relay: epoll");
		if (r->ev_ovfl != NULL)
			event_free(r->ev_ovfl);
		if (r->ev_poll != NULL)
			event_free(r->ev_poll);
		if (r->epfd != -1)
			close(r->epfd);
		tcp_free(r->tcp);
		free(r->sess);
		free(r);
		return NULL;
	}
	return r;
}

/* Test hooks: send without GSO (on = 0), and how often it was used. */
void
relay_set_gso(struct relay *r, int on)
{
	r->gso = on && relay_gso_probe();
}

uint64_t
relay_gso_count(const struct relay *r)
{
	return r->gso_msgs;
}

void
relay_free(struct relay *r)
{
	uint32_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->shm->nslots && r->count > 0; i++)
		relay_remove(r, i);
	tcp_free(r->tcp);
	event_free(r->ev_ovfl);
	event_free(r->ev_poll);
	close(r->epfd);
	free(r->sess);
	free(r);
}

int
relay_count(const struct relay *r)
{
	return r->count + tcp_count(r->tcp);
}

static int
relay_family(int fd)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	return ss.ss_family;
}

/*
 * Socket options for the relay.  Kernel receive timestamps for latency;
 * extended errors on the forward sockets so that an ICMP error from the
 * destination can be told apart and reported.  Buffer sizes stay at the
 * system default: a media relay would rather drop than queue.
 */
static int
relay_sockopts(int fd, int role)
{
	socklen_t	len = sizeof(int);
	int		on = 1, type, family;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		return -1;
	if (type != SOCK_DGRAM) {
		/* TCP media is not relayed here (yet). */
		errno = EPROTONOSUPPORT;
		return -1;
	}
	if ((family = relay_family(fd)) != AF_INET && family != AF_INET6) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	if (set_nonblock(fd) == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) == -1)
		log_warn("relay: SO_TIMESTAMPNS");	/* falls back to now */
	/* Datagrams the kernel drops on a full buffer are counted too. */
	if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof(on)) == -1)
		log_warn("relay: SO_RXQ_OVFL");
	if (role == SK_FORWARD_RTP || role == SK_FORWARD_RTCP) {
		if (family == AF_INET6) {
			if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on,
			    sizeof(on)) == -1)
				log_warn("relay: IPV6_RECVERR");
			/* for IPv4-mapped destinations; may fail if v6only */
			(void)setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on,
			    sizeof(on));
		} else if (setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on,
		    sizeof(on)) == -1)
			log_warn("relay: IP_RECVERR");
	}
	return 0;
}

/* a as a socket address, with its port moved by plus; its length. */
static socklen_t
relay_sa_set(union relay_sa *u, const struct shm_addr *a, int plus)
{
	struct sockaddr_storage	ss;
	socklen_t		len = shm_addr_to_sa(a, &ss);

	memset(u, 0, sizeof(*u));
	if (len > sizeof(*u))
		return 0;
	memcpy(u, &ss, len);
	if (u->sa.sa_family == AF_INET)
		u->sin.sin_port = htons((uint16_t)(a->port + plus));
	else if (u->sa.sa_family == AF_INET6)
		u->sin6.sin6_port = htons((uint16_t)(a->port + plus));
	return len;
}

/* The same address and port (a received source against a latch)? */
static int
relay_sa_eq(const union relay_sa *u, const struct sockaddr *sa)
{
	if (sa->sa_family != u->sa.sa_family)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *b = (const void *)sa;

		return b->sin_port == u->sin.sin_port &&
		    b->sin_addr.s_addr == u->sin.sin_addr.s_addr;
	}
	{
		const struct sockaddr_in6 *b = (const void *)sa;

		return b->sin6_port == u->sin6.sin6_port &&
		    memcmp(&b->sin6_addr, &u->sin6.sin6_addr,
		    sizeof(b->sin6_addr)) == 0;
	}
}

/* Refresh the session's copies of the slot's latched addresses. */
static void
relay_latch_load(struct relay_sess *rs)
{
	struct shm_slot	*s = rs->slot;
	uint32_t	 bits;

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


#define NS_PER_S		1000000000LL
#define NS_PER_MS		1000000LL
#define RELAY_REFUSED_NS	(5 * NS_PER_S)
#define RELAY_MOVES_NS		NS_PER_S	/* moves told: one a second, */
#define RELAY_MOVES_BURST	10		/* ... after a burst of 10 */

/* Why a sender was refused, for relay_refused. */
enum {
	REFUSE_RULES,		/* the destination rules */
	REFUSE_SELF,		/* one of the daemon's own sockets */
	REFUSE_NEVER,		/* latch-policy never */
	REFUSE_LEARN,		/* latch-policy learn: not (yet) */
	REFUSE_NOT_RTP,		/* only RTP moves a latch */
	REFUSE_RTCP,		/* RTCP follows RTP */
};

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
static void
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
static void
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
static int
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
static int
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

/*
 * The caller's address as the slot's latch (symmetric RTP), under the
 * session's latch policy.  A sender the destination rules refuse
 * (reverse media would go to it), and one of this daemon's own sockets
 * (a loop), is refused first.  ri: for RTP, the header if the packet is
 * valid RTP, else NULL.  0: relay the packet; -1: drop it (and count it).
 */
static int
relay_latch(struct relay_sess *rs, int rtcp, const struct sockaddr *sa,
    const struct rtp_info *ri, int64_t ns)
{
	const struct shm_acl	*acl;
	uint32_t		 bit = rtcp ? LATCH_RTCP : LATCH_RTP;
	int			 rule, verdict;

	/* Only this worker latches: its copy of the bits is the truth. */
	if ((rs->latched & bit) && relay_sa_eq(&rs->latch[rtcp], sa)) {
		if (!rtcp) {
			rs->seen_ns = ns;
			rs->seen_dirty = 1;
			if (rs->cand_live)
				relay_cand_clear(rs);
		}
		return 0;
	}
	acl = wctx_acl(&rs->relay->ctx);
	verdict = acl_check(acl, sa, ACL_UDP_SRC, &rule);
	if (verdict == ACL_ALLOW && acl_own_socket(acl, rs->relay->shm, sa))
		verdict = ACL_SELF;
	if (verdict != ACL_ALLOW) {
		relay_refused(rs, rtcp, sa, ns, verdict == ACL_SELF ?
		    REFUSE_SELF : REFUSE_RULES, verdict, rule);
		return -1;
	}
	return rtcp ? relay_latch_rtcp(rs, sa, ns) :
	    relay_latch_rtp(rs, sa, ri, ns);
}

/* Reverse media from the destination (and its port, when strict)? */
static int
relay_from_dest(const struct relay_sess *rs, int rtcp,
    const struct sockaddr *sa)
{
	const union relay_sa *d = &rs->dest[rtcp];

	if (sa->sa_family != d->sa.sa_family)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;

		return a->sin_addr.s_addr == d->sin.sin_addr.s_addr &&
		    (!rs->src_port || a->sin_port == d->sin.sin_port);
	} else {
		const struct sockaddr_in6 *a = (const void *)sa;

		return memcmp(&a->sin6_addr, &d->sin6.sin6_addr,
		    sizeof(a->sin6_addr)) == 0 &&
		    (!rs->src_port || a->sin6_port == d->sin6.sin6_port);
	}
}

/* Does a packet of len octets at ns fit dir's rate limits?  Then count it. */
static int
relay_conform(struct relay_sess *rs, int dir, int64_t ns, size_t len)
{
	struct relay_bucket	*b = &rs->bucket[dir];
	int64_t			 cost;

	/* The clock was stepped back: start the buckets afresh. */
	if (ns < b->last - NS_PER_S)
		b->tat_pkt = b->tat_bit = ns;
	b->last = ns;
	if (rs->pkt_ns != 0 && b->tat_pkt - ns > rs->tau_ns)
		return 0;
	if (rs->byte_ns_q16 != 0 && b->tat_bit - ns > rs->tau_ns)
		return 0;
	if (rs->pkt_ns != 0)
		b->tat_pkt = (b->tat_pkt > ns ? b->tat_pkt : ns) + rs->pkt_ns;
	if (rs->byte_ns_q16 != 0) {
		cost = (int64_t)(((uint64_t)len * rs->byte_ns_q16) >> 16);
		b->tat_bit = (b->tat_bit > ns ? b->tat_bit : ns) + cost;
	}
	return 1;
}

static const char *
relay_icmp_what(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return "port unreachable";
	case EHOSTUNREACH:
		return "host unreachable";
	case ENETUNREACH:
		return "network unreachable";
	case EACCES:
	case EPERM:
		return "administratively prohibited";
	case EPROTO:
		return "parameter problem";
	default:
		return strerror(err);
	}
}

/* The host part of an IPv4 or IPv6 address; "" for anything else. */
static const char *
relay_host(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		a = NULL;
	if (a == NULL || inet_ntop(sa->sa_family, a, buf, (socklen_t)len) ==
	    NULL)
		buf[0] = '\0';
	return buf;
}

/*
 * Tell the master about the first ICMP error of the session: "ICMP port
 * unreachable from 192.0.2.1:4000", naming the router too when it is not
 * the destination that complained.
 */
static void
relay_icmp_report(struct relay_sess *rs, const struct sock_extended_err *ee,
    size_t eelen, const struct sockaddr *to)
{
	const struct sockaddr	*off = SO_EE_OFFENDER(ee);
	char			 dst[INET6_ADDRSTRLEN + 8];
	char			 host[INET6_ADDRSTRLEN];
	char			 ohost[INET6_ADDRSTRLEN];
	char			 reason[120];
	int			 err = (int)ee->ee_errno;

	sa_ntop(to, dst, sizeof(dst));
	relay_host(to, host, sizeof(host));
	ohost[0] = '\0';
	if ((off->sa_family == AF_INET &&
	    eelen >= sizeof(*ee) + sizeof(struct sockaddr_in)) ||
	    (off->sa_family == AF_INET6 &&
	    eelen >= sizeof(*ee) + sizeof(struct sockaddr_in6)))
		relay_host(off, ohost, sizeof(ohost));
	if (ohost[0] != '\0' && strcmp(ohost, host) != 0)
		snprintf(reason, sizeof(reason), "ICMP %s from %s for %s",
		    relay_icmp_what(err), ohost, dst);
	else
		snprintf(reason, sizeof(reason), "ICMP %s from %s",
		    relay_icmp_what(err), dst);
	log_info("slot %u: %s", rs->idx, reason);
	snprintf(rs->error, sizeof(rs->error), "%s", reason);
	relay_report(rs->relay, IPC_ERROR, rs->idx, rs->gen, err, reason);
}

/*
 * Read the forward socket's error queue.  The first ICMP error of the
 * session goes to the master (which puts the session in ERROR and lets the
 * controller decide); relaying goes on regardless, since the far end may
 * just be starting up.  Path MTU messages are not errors.
 */
static void
relay_errqueue(struct relay_sess *rs, struct relay_sock *sk)
{
	struct relay			*r = rs->relay;
	const struct sock_extended_err	*ee;
	struct sockaddr_storage		 to;
	struct msghdr			 m;
	struct iovec			 iov;
	struct cmsghdr			*c;
	int				 i;

	for (i = 0; i < RELAY_ERRQ_MAX; i++) {
		memset(&m, 0, sizeof(m));
		memset(&to, 0, sizeof(to));
		iov.iov_base = r->errbuf;
		iov.iov_len = sizeof(r->errbuf);
		m.msg_name = &to;
		m.msg_namelen = sizeof(to);
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = &r->errcmsg;
		m.msg_controllen = sizeof(r->errcmsg);
		if (recvmsg(sk->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) == -1)
			return;
		for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
			if (!((c->cmsg_level == IPPROTO_IP &&
			    c->cmsg_type == IP_RECVERR) ||
			    (c->cmsg_level == IPPROTO_IPV6 &&
			    c->cmsg_type == IPV6_RECVERR)) ||
			    c->cmsg_len < CMSG_LEN(sizeof(*ee)))
				continue;
			ee = (const struct sock_extended_err *)CMSG_DATA(c);
			if ((ee->ee_origin != SO_EE_ORIGIN_ICMP &&
			    ee->ee_origin != SO_EE_ORIGIN_ICMP6) ||
			    ee->ee_errno == EMSGSIZE || rs->reported_error)
				continue;
			rs->reported_error = 1;
			relay_icmp_report(rs, ee, c->cmsg_len - CMSG_LEN(0),
			    (struct sockaddr *)&to);
		}
	}
}

static int
relay_soft_error(int err)
{
	switch (err) {
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
	case EACCES:
	case EPERM:
	case EPROTO:
	case EMSGSIZE:
		return 1;
	}
	return 0;
}

/*
 * The socket of role has dropped drops datagrams in all (the kernel's
 * count, cumulative, wrapping): how many of them are new.  A count older
 * than the one seen (a datagram queued before SO_MEMINFO was read) adds
 * nothing.  fresh: the socket may be a new one (bound again by a master
 * that took over), whose count starts again from 0; a lower count then
 * means all its drops are new.  The slot's copy is written first, so
 * that a worker that dies after it counts a drop once at most.
 */
static uint32_t
relay_drops(struct relay_sess *rs, int role, uint32_t drops, int fresh)
{
	int32_t		delta = (int32_t)(drops - rs->ovfl[role]);
	uint32_t	add;

	if (delta > 0)
		add = (uint32_t)delta;
	else if (delta < 0 && fresh)
		add = drops;
	else
		return 0;
	rs->ovfl[role] = rs->slot->ovfl_seen[role] = drops;
	return add;
}

/* The socket's drop count as it is now (SO_MEMINFO), into the slot. */
static void
relay_meminfo(struct relay_sess *rs, struct relay_sock *sk, int fresh)
{
	struct relay	*r = rs->relay;
	uint32_t	 mem[SK_MEMINFO_VARS], add;
	socklen_t	 len = sizeof(mem);

	if (!r->meminfo)
		return;
	if (getsockopt(sk->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) == -1) {
		if (errno != ENOPROTOOPT)
			return;
		len = 0;
	}
	if (len < (SK_MEMINFO_DROPS + 1) * sizeof(mem[0])) {
		/* Linux < 4.12: drops are seen with the next datagram only. */
		log_info("relay: no SO_MEMINFO: buffer drops are counted "
		    "when the next datagram comes");
		r->meminfo = 0;
		return;
	}
	if ((add = relay_drops(rs, sk->role, mem[SK_MEMINFO_DROPS],
	    fresh)) != 0)
		SHM_ADD(&rs->slot->dir[sk->role & 1].dropped_overflow, add);
}

/*
 * Every second, the drop counts of the sockets where datagrams queued up
 * since: a buffer that overflowed must have queued, and its drops after
 * the last datagram the worker read are seen now, not when the next
 * datagram comes (if one ever does).
 */
static void
relay_ovfl_tick(evutil_socket_t fd, short what, void *arg)
{
	struct relay		*r = arg;
	struct relay_sess	*rs;
	int			 i;

	while ((rs = LIST_FIRST(&r->ovfl_watch)) != NULL) {
		LIST_REMOVE(rs, ovfl_entry);
		for (i = 0; i < rs->nsock; i++)
			if (rs->ovfl_watch & (1u << i))
				relay_meminfo(rs, &rs->sk[i], 0);
		rs->ovfl_watch = 0;
	}
}

/*
 * The kernel's receive timestamp, or fallback if there is none; and the
 * socket's drop count when the kernel reports one (*drops untouched
 * otherwise).
 */
static int64_t
relay_rxtime(struct msghdr *m, int64_t *fallback, uint32_t *drops)
{
	struct cmsghdr	*c;
	struct timespec	 ts;
	int64_t		 ns = 0;

	if (!(m->msg_flags & MSG_CTRUNC))
		for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
			if (c->cmsg_level != SOL_SOCKET)
				continue;
			if (c->cmsg_type == SCM_TIMESTAMPNS &&
			    c->cmsg_len >= CMSG_LEN(sizeof(ts))) {
				memcpy(&ts, CMSG_DATA(c), sizeof(ts));
				ns = (int64_t)ts.tv_sec * 1000000000 +
				    ts.tv_nsec;
			} else if (c->cmsg_type == SO_RXQ_OVFL &&
			    c->cmsg_len >= CMSG_LEN(sizeof(*drops)))
				memcpy(drops, CMSG_DATA(c), sizeof(*drops));
		}
	if (ns != 0)
		return ns;
	if (*fallback == 0)
		*fallback = relay_now_ns();
	return *fallback;
}

/*
 * The messages that r->txiov[from .. ntx - 1] go out in, from r->tx[0] on:
 * with gso a run of datagrams of one size (the last of a run may be
 * shorter) is one message, else each datagram is one.  Message m holds
 * datagrams r->txfirst[m] .. r->txfirst[m + 1] - 1.  Returns how many.
 */
static int
relay_msgs(struct relay *r, int from, int ntx, struct sockaddr *dst,
    socklen_t dstlen, int gso)
{
	struct msghdr	*h;
	uint16_t	 seg;
	size_t		 len, total;
	int		 m = 0, i = from, j;

	while (i < ntx) {
		len = r->txiov[i].iov_len;
		total = len;
		j = i + 1;
		if (gso)
			while (j < ntx && r->txiov[j].iov_len <= len &&
			    total + r->txiov[j].iov_len <= RELAY_GSO_BYTES) {
				total += r->txiov[j].iov_len;
				if (r->txiov[j++].iov_len < len)
					break;	/* a shorter one ends it */
			}
		h = &r->tx[m].msg_hdr;
		h->msg_name = dst;
		h->msg_namelen = dstlen;
		h->msg_iov = &r->txiov[i];
		h->msg_iovlen = (size_t)(j - i);
		h->msg_flags = 0;
		if (j - i > 1) {
			seg = (uint16_t)len;
			memcpy(CMSG_DATA(&r->txgso[m].hdr), &seg, sizeof(seg));
			h->msg_control = &r->txgso[m];
			h->msg_controllen = sizeof(r->txgso[m]);
		} else {
			h->msg_control = NULL;
			h->msg_controllen = 0;
		}
		r->txfirst[m++] = i;
		i = j;
	}
	r->txfirst[m] = ntx;
	return m;
}

/*
 * Send the datagrams r->txiov[0 .. ntx - 1] from sk to dst.  An error left
 * on the socket by an earlier ICMP message fails one send without that
 * datagram being at fault: read the error queue and try it once more.  A
 * socket whose route cannot take GSO (no checksum offload, IPsec, a
 * datagram over the MTU) sends datagram by datagram from then on.
 */
static void
relay_send(struct relay_sess *rs, struct relay_sock *sk, int ntx,
    struct sockaddr *dst, socklen_t dstlen, struct relay_tally *t)
{
	struct relay	*r = rs->relay;
	int64_t		 now, lat;
	int		 j, k, m = 0, nmsg, retried = 0, err;

	memset(r->txok, 0, (size_t)ntx);
	nmsg = relay_msgs(r, 0, ntx, dst, dstlen, r->gso && !sk->nogso);
	while (m < nmsg) {
		k = sendmmsg(sk->fd, &r->tx[m], (unsigned int)(nmsg - m),
		    MSG_DONTWAIT);
		if (k > 0) {
			for (; k > 0; k--, m++) {
				for (j = r->txfirst[m]; j < r->txfirst[m + 1];
				    j++)
					r->txok[j] = 1;
				t->sent += (uint64_t)(r->txfirst[m + 1] -
				    r->txfirst[m]);
				t->bytes_sent += r->tx[m].msg_len;
				if (r->tx[m].msg_hdr.msg_iovlen > 1)
					r->gso_msgs++;
			}
			retried = 0;
			continue;
		}
		if (k == 0)
			break;
		err = errno;
		if (r->tx[m].msg_hdr.msg_iovlen > 1 && (err == EINVAL ||
		    err == EIO || err == EMSGSIZE || err == EOPNOTSUPP ||
		    err == ENOPROTOOPT)) {
			sk->nogso = 1;
			log_debug("slot %u: no UDP GSO on socket %d (%s)",
			    rs->idx, sk->role, strerror(err));
			nmsg = relay_msgs(r, r->txfirst[m], ntx, dst, dstlen,
			    0);
			m = 0;
			continue;
		}
		if ((err == EINTR || relay_soft_error(err)) && !retried) {
			if (err != EINTR)
				relay_errqueue(rs, sk);
			retried = 1;
			continue;
		}
		if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
			/* Full: the rest of this batch would fail alike. */
			t->send_error += (uint64_t)(ntx - r->txfirst[m]);
			break;
		}
		t->send_error += (uint64_t)(r->txfirst[m + 1] -
		    r->txfirst[m]);
		m++;
		retried = 0;
	}
	if (t->sent == 0)
		return;
	/* Latency of what was sent; a failed send has none. */
	now = relay_now_ns();
	for (j = 0; j < ntx; j++) {
		if (!r->txok[j])
			continue;
		lat = now - r->txns[j];
		if (lat < 0)
			lat = 0;	/* the clock was stepped */
		t->lat_sum += (uint64_t)lat;
		t->lat_count++;
		if ((uint64_t)lat > t->lat_max)
			t->lat_max = (uint64_t)lat;
		k = shm_lat_bucket((uint64_t)lat);
		r->hist[k]++;
		r->hist_used |= 1u << k;
	}
	/* Only the buckets this batch used. */
	while (r->hist_used != 0) {
		k = __builtin_ctz(r->hist_used);
		r->hist_used &= r->hist_used - 1;
		if (r->ctx.wstats != NULL)
			SHM_ADD(&r->ctx.wstats->lat_hist[k], r->hist[k]);
		r->hist[k] = 0;
	}
	if (r->ctx.wstats != NULL) {
		SHM_ADD(&r->ctx.wstats->lat_sum_ns, t->lat_sum);
		SHM_ADD(&r->ctx.wstats->lat_count, t->lat_count);
	}
}

static void
relay_publish(struct shm_dir *d, int rtcp, const struct relay_tally *t)
{
#define ADD(f, v) do {							\
	if ((v) != 0)							\
		SHM_ADD(&d->f, (v));					\
} while (0)
	if (rtcp) {
		ADD(rtcp_received, t->received);
		ADD(rtcp_sent, t->sent);
	} else {
		ADD(packets_received, t->received);
		ADD(bytes_received, t->bytes);
		ADD(packets_sent, t->sent);
		ADD(bytes_sent, t->bytes_sent);
		ADD(non_rtp, t->non_rtp);
	}
	ADD(dropped_invalid, t->invalid);
	ADD(dropped_not_latched, t->not_latched);
	ADD(dropped_send_error, t->send_error);
	ADD(dropped_overflow, t->overflow);
	ADD(dropped_source, t->source);
	ADD(dropped_rate_limited, t->rate_limited);
	ADD(latency_sum_ns, t->lat_sum);
	ADD(latency_count, t->lat_count);
#undef ADD
	if (t->lat_max > atomic_load_explicit(&d->latency_max_ns,
	    memory_order_relaxed))
		atomic_store_explicit(&d->latency_max_ns, t->lat_max,
		    memory_order_relaxed);
	if (t->last_ns != 0)
		atomic_store_explicit(&d->last_packet_ms,
		    t->last_ns / 1000000, memory_order_relaxed);
}

/*
 * One received batch r->rx[0 .. n - 1] from sk: check, count, latch, and
 * queue for sending from the paired socket.
 *
 * Reverse packets of a unidirectional session are counted as received
 * (with RTP statistics, so the operator sees what the destination sends)
 * and then discarded by policy.  That is the configuration working, not a
 * fault, so no dropped_* counter moves: on the reverse direction of such a
 * session packets_received - packets_sent is the discarded media.  RTCP is
 * discarded alike: a recorder's reports must not reach the caller.
 */
static void
relay_batch(struct relay_sess *rs, struct relay_sock *sk, int n)
{
	struct relay		*r = rs->relay;
	struct shm_slot		*s = rs->slot;
	struct relay_sock	*out = &rs->sk[sk->role ^ 1];
	int			 rtcp = sk->role >= SK_LISTEN_RTCP;
	int			 rev = sk->role & 1;
	struct shm_dir		*d = &s->dir[rev ? SHM_DIR_REV : SHM_DIR_FWD];
	struct relay_tally	 t;
	struct rtp_info		 ri;
	struct msghdr		*m;
	struct sockaddr		*dst = NULL;
	socklen_t		 dstlen = 0;
	uint32_t		 bits;
	int64_t			 ns, fallback = 0;
	size_t			 len;
	uint32_t		 drops = rs->ovfl[sk->role];
	int			 i, ntx = 0, ok;

	memset(&t, 0, sizeof(t));
	for (i = 0; i < n; i++) {
		m = &r->rx[i].msg_hdr;
		len = r->rx[i].msg_len;
		ns = relay_rxtime(m, &fallback, &drops);
		if (ns > t.last_ns)
			t.last_ns = ns;
		t.received++;
		t.bytes += len;
		if (len == 0 || (m->msg_flags & MSG_TRUNC) ||
		    m->msg_namelen == 0) {
			t.invalid++;
			continue;
		}
		/* Before the rate limit: strangers must not use its budget. */
		if (rev && rs->src_addr && !relay_from_dest(rs, rtcp,
		    m->msg_name)) {
			t.source++;
			continue;
		}
		if (rs->limited && !relay_conform(rs, rev, ns, len)) {
			t.rate_limited++;
			continue;
		}
		if (rtcp) {
			ok = rtcp_check(r->buf[i], len) == 0 ||
			    srtcp_check(r->buf[i], len) == 0;
			if (!ok) {
				t.invalid++;
				continue;
			}
			if (!rev && relay_latch(rs, 1, m->msg_name, NULL, ns) ==
			    -1) {
				t.source++;
				continue;
			}
		} else {
			ok = rtp_parse(r->buf[i], len, &ri) == 0;
			/*
			 * Anything may latch first (DTLS or STUN may precede
			 * RTP), only RTP moves an existing latch.
			 */
			if (!rev && relay_latch(rs, 0, m->msg_name,
			    ok ? &ri : NULL, ns) == -1) {
				t.source++;
				continue;
			}
			if (ok) {
				ri.dyn_rate = rs->clock_rate;
				rtpstat_update(d, &ri, ns);
			} else
				t.non_rtp++;
		}
		if (rev && rs->unidir)
			continue;
		if (dst == NULL) {
			if (!rev) {
				dst = &rs->dest[rtcp].sa;
				dstlen = rs->destlen[rtcp];
			} else {
				bits = rs->latched;
				if (rtcp && (bits & LATCH_RTCP)) {
					dst = (struct sockaddr *)&rs->latch[1];
					dstlen = rs->latchlen[1];
				} else if (bits & LATCH_RTP) {
					dst = (struct sockaddr *)
					    &rs->latch[rtcp ? 2 : 0];
					dstlen = rs->latchlen[rtcp ? 2 : 0];
				}
			}
			if (dst == NULL) {
				t.not_latched++;
				continue;
			}
		}
		r->txiov[ntx].iov_base = r->buf[i];
		r->txiov[ntx].iov_len = len;
		r->txns[ntx] = ns;
		ntx++;
	}
	/* Drops after the last datagram queued: ask once drained. */
	if ((t.overflow = relay_drops(rs, sk->role, drops, 0)) != 0)
		sk->ovfl_check = 1;
	if (ntx > 0)
		relay_send(rs, out, ntx, dst, dstlen, &t);
	relay_publish(d, rtcp, &t);
	if (rs->seen_dirty) {
		s->latch.seen_ms = rs->seen_ns / NS_PER_MS;
		rs->seen_dirty = 0;
	}
	if (t.sent > 0 && !rs->reported_active) {
		rs->reported_active = 1;
		relay_report(rs->relay, IPC_ACTIVE, rs->idx, rs->gen, 0,
		    NULL);
	}
}

static void
relay_readable(struct relay_sock *sk)
{
	struct relay_sess	*rs = sk->sess;
	struct relay		*r = rs->relay;
	const char		*d = (const char *)&rs->slot->dir[sk->role & 1];
	int			 b, i, n;

	/*
	 * What the batch will touch, fetched while the kernel copies it in:
	 * the direction's counters and RTP state, the addresses.
	 */
	__builtin_prefetch(d, 1);
	__builtin_prefetch(d + 64, 1);
	__builtin_prefetch(d + 128, 1);
	__builtin_prefetch(&rs->dest[0]);
	__builtin_prefetch(&rs->latch[0]);
	for (b = 0; b < RELAY_BUDGET; b++) {
		/* The kernel changed these in the headers it filled. */
		for (i = 0; i < r->rx_dirty; i++) {
			r->rx[i].msg_hdr.msg_namelen = sizeof(r->from[i]);
			r->rx[i].msg_hdr.msg_controllen = sizeof(r->cmsg[i]);
		}
		r->rx_dirty = 0;
		n = recvmmsg(sk->fd, r->rx, RELAY_BATCH, MSG_DONTWAIT, NULL);
		if (n > 0)
			r->rx_dirty = n;
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				/*
				 * Woken with nothing to read: an error queue
				 * entry without a pending error.  Drain it
				 * or the loop spins.
				 */
				if (b == 0)
					relay_errqueue(rs, sk);
				break;
			}
			/* A pending ICMP error, now cleared; or worse. */
			if (errno != EINTR)
				relay_errqueue(rs, sk);
			continue;
		}
		if (n > 0)
			relay_batch(rs, sk, n);
		if (n > 1 && !(rs->ovfl_watch & (1u << sk->role))) {
			/* It queued: the timer looks at its drops. */
			if (rs->ovfl_watch == 0)
				LIST_INSERT_HEAD(&r->ovfl_watch, rs,
				    ovfl_entry);
			rs->ovfl_watch |= (uint8_t)(1u << sk->role);
		}
		if (n < RELAY_BATCH)
			break;
		sk->ovfl_check = 1;
	}
	/* Drained after a full batch or a drop: any drops since are known. */
	if (sk->ovfl_check && b < RELAY_BUDGET) {
		sk->ovfl_check = 0;
		relay_meminfo(rs, sk, 0);
	}
}

/* A ready socket's epoll data: its slot and role. */
#define RELAY_EVDATA(slot, role)	((uint64_t)(slot) << 2 | (uint64_t)(role))
#define RELAY_EVSLOT(data)		((data) >> 2)
#define RELAY_EVROLE(data)		((int)((data) & 3))

static struct relay_sock *
relay_evsock(struct relay *r, uint64_t data)
{
	struct relay_sess	*rs;
	uint64_t		 slot = RELAY_EVSLOT(data);

	if (slot >= r->shm->nslots || (rs = r->sess[slot]) == NULL ||
	    RELAY_EVROLE(data) >= rs->nsock)
		return NULL;
	return &rs->sk[RELAY_EVROLE(data)];
}

/*
 * The relay's sockets that are ready, at most RELAY_EVENTS of them; the
 * rest wait for the next turn, after the loop's other events.
 */
static void
relay_poll(evutil_socket_t fd, short what, void *arg)
{
	struct relay		*r = arg;
	struct relay_sess	*nrs;
	struct relay_sock	*sk;
	uint64_t		 slot;
	int			 i, n;

	n = epoll_wait(r->epfd, r->evs, RELAY_EVENTS, 0);
	for (i = 0; i < n; i++) {
		/*
		 * The next one's session and sockets, on their way while this
		 * one's system calls run: addresses only, nothing read from
		 * them here, or the miss would be taken now.
		 */
		if (i + 1 < n && (slot = RELAY_EVSLOT(r->evs[i + 1].data.u64)) <
		    r->shm->nslots && (nrs = r->sess[slot]) != NULL) {
			__builtin_prefetch(nrs);
			__builtin_prefetch(&nrs->sk[0]);
		}
		if ((sk = relay_evsock(r, r->evs[i].data.u64)) == NULL)
			continue;
		relay_busy(r, sk->sess->idx, sk->sess->gen);
		if (__builtin_expect(r->crash_lo != 0, 0) &&
		    sk->sess->slot->listen.port >= r->crash_lo &&
		    sk->sess->slot->listen.port <= r->crash_hi)
			abort();
		relay_readable(sk);
		relay_idle(r);
	}
}

/*
 * Relay slot with the sockets the master bound: [listen RTP, forward RTP]
 * or [listen RTP, forward RTP, listen RTCP, forward RTCP].  On success the
 * relay owns the descriptors; on failure (-1, errno set) the caller still
 * does.  Adding a slot that is already relayed replaces it: the master
 * restores sessions that way.
 */
int
relay_add(struct relay *r, uint32_t slot, uint32_t gen, int *fds, int nfds)
{
	struct shm_slot		*s;
	struct relay_sess	*rs;
	struct epoll_event	 ev;
	socklen_t		 len = sizeof(int);
	int			 i, saved, type;

	/* TCP sessions have a relay of their own. */
	if (slot < r->shm->nslots && fds != NULL && nfds > 0 &&
	    getsockopt(fds[0], SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	    type == SOCK_STREAM) {
		if (r->sess[slot] != NULL)
			relay_remove(r, slot);
		return tcp_add(r->tcp, slot, gen, fds, nfds);
	}
	if ((s = shm_slot(r->shm, slot)) == NULL || fds == NULL ||
	    (nfds != 2 && nfds != 4)) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < nfds; i++)
		if (relay_sockopts(fds[i], i) == -1) {
			saved = errno;
			log_warn("slot %u: socket %d", slot, i);
			errno = saved;
			return -1;
		}
	if (r->sess[slot] != NULL)
		relay_remove(r, slot);

	if (posix_memalign((void **)&rs, _Alignof(struct relay_sess),
	    sizeof(*rs)) != 0) {
		errno = ENOMEM;
		return -1;
	}
	memset(rs, 0, sizeof(*rs));
	rs->relay = r;
	rs->slot = s;
	rs->idx = slot;
	rs->gen = gen;
	rs->unidir = (s->flags & SHM_F_UNIDIR) != 0;
	rs->src_addr = (s->flags & SHM_F_SRC_ADDR) != 0;
	rs->src_port = (s->flags & SHM_F_SRC_PORT) != 0;
	rs->clock_rate = s->clock_rate;
	rs->policy = s->latch.policy >= SHM_LATCH_LEARN &&
	    s->latch.policy <= SHM_LATCH_LATEST ? s->latch.policy :
	    SHM_LATCH_LEARN;
	rs->run = s->latch.run < 2 ? 2 : s->latch.run;
	rs->quiet_ns = (int64_t)s->latch.quiet_ms * NS_PER_MS;
	rs->learn_end_ns = s->latch.learn_end_ms * NS_PER_MS;
	rs->seen_ns = s->latch.seen_ms * NS_PER_MS;
	rs->cand_live = s->latch.cand_count != 0;
	rs->tau_ns = (int64_t)s->rate_burst_ms * 1000000;
	if (s->rate_pps != 0)
		rs->pkt_ns = NS_PER_S / s->rate_pps;
	if (s->rate_bps != 0)
		rs->byte_ns_q16 = ((uint64_t)8 * NS_PER_S << 16) / s->rate_bps;
	rs->limited = rs->pkt_ns != 0 || rs->byte_ns_q16 != 0;
	rs->nsock = (uint8_t)nfds;
	rs->destlen[0] = relay_sa_set(&rs->dest[0], &s->dest, 0);
	rs->destlen[1] = relay_sa_set(&rs->dest[1], &s->dest, 1);
	memcpy(rs->ovfl, s->ovfl_seen, sizeof(rs->ovfl));
	/* After a worker restart the slot still holds the latch. */
	relay_latch_load(rs);
	for (i = 0; i < nfds; i++) {
		rs->sk[i].sess = rs;
		rs->sk[i].fd = fds[i];
		rs->sk[i].role = (uint8_t)i;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.u64 = RELAY_EVDATA(slot, i);
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fds[i], &ev) == -1)
			goto fail;
	}
	/*
	 * Drops while no worker read the sockets (one being replaced), or
	 * since a new master bound them again.
	 */
	for (i = 0; i < nfds; i++)
		relay_meminfo(rs, &rs->sk[i], 1);
	r->sess[slot] = rs;
	r->count++;
	return 0;
fail:
	saved = errno;
	log_warn("slot %u: epoll_ctl", slot);
	while (--i >= 0)
		(void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, fds[i], NULL);
	free(rs);
	errno = saved;
	return -1;
}

/*
 * Every session relayed here, with its sockets and what was reported of
 * it, for a master that adopts this worker.
 */
void
relay_each(struct relay *r, relay_each_fn *fn, void *arg)
{
	struct relay_sess	*rs;
	int			 fds[SK_MAX], i;
	uint32_t		 slot, st;

	for (slot = 0; slot < r->shm->nslots; slot++) {
		if ((rs = r->sess[slot]) == NULL)
			continue;
		for (i = 0; i < rs->nsock; i++)
			fds[i] = rs->sk[i].fd;
		st = (rs->reported_active ? IPC_HAVE_ACTIVE : 0) |
		    (rs->reported_error ? IPC_HAVE_ERROR : 0);
		fn(arg, slot, rs->gen, fds, rs->nsock, st, rs->error);
	}
	tcp_each(r->tcp, fn, arg);
}

/* Stop relaying slot and close its sockets; nothing if it is not here. */
void
relay_remove(struct relay *r, uint32_t slot)
{
	struct relay_sess	*rs;
	int			 i;

	if (tcp_remove(r->tcp, slot))
		return;
	if (slot >= r->shm->nslots || (rs = r->sess[slot]) == NULL)
		return;
	if (rs->ovfl_watch != 0)
		LIST_REMOVE(rs, ovfl_entry);
	for (i = 0; i < rs->nsock; i++) {
		/*
		 * Not left to close: the master holds a copy of the socket,
		 * so it would stay in the set.
		 */
		(void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, rs->sk[i].fd, NULL);
		close(rs->sk[i].fd);
	}
	free(rs);
	r->sess[slot] = NULL;
	r->count--;
}
