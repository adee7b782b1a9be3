/*
 * The packet path's own structures, shared by its files: relay.c (a
 * packet from the socket to the next one, the hot path), relay_sess.c
 * (sessions set up and taken down), relay_latch.c (whom reverse media
 * goes to) and relay_err.c (what the kernel says went wrong: ICMP errors
 * and full socket buffers).  Nothing outside src/worker includes it.
 */
#ifndef RTPPROXYD_RELAY_INT_H
#define RTPPROXYD_RELAY_INT_H

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

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
	uint8_t			 dtmf_pt;	/* telephone-event; 0xff none */
	uint8_t			 drop_dtmf;
	uint8_t			 recording;	/* rec is set: on the hot line */
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
	uint8_t			 kf;		/* roles in the kernel, a bit each */
	uint8_t			 kf_failed;	/* roles the kernel refused */
	uint8_t			 kf_listed;	/* in relay's kf_list */
	uint8_t			 kf_again;	/* taken back for a batch */

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
	/* recording: the writer, or NULL; what the master was told of it */
	struct rec		*rec;
	uint32_t		 rec_serial;	/* the file's; 0: none */
	uint64_t		 rec_base;	/* packets of earlier parts */
	uint32_t		 rec_told_state, rec_told_parts;
	/* sockets whose drop count the timer reads, off the packet path */
	uint8_t			 ovfl_watch;	/* roles, a bit each */
	LIST_ENTRY(relay_sess)	 ovfl_entry;	/* in relay's ovfl_watch */
	/* the kernel fast path's keys, network order (relay_kfwd.c) */
	uint32_t		 kf_addr[SK_MAX][4];	/* as in the map */
	uint16_t		 kf_port[SK_MAX];
	uint8_t			 kf_v6;		/* the session's media is IPv6 */
	/* what the packets become, worked out once per latch */
	uint32_t		 kf_saddr[SK_MAX][4];
	uint16_t		 kf_sport[SK_MAX];
	uint8_t			 kf_known;	/* roles with the above, a bit each */
	uint8_t			 kf_local;	/* ... whose destination is here */
	LIST_ENTRY(relay_sess)	 kf_entry;	/* in relay's kf_list */
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
	struct rec		 *rec;		/* made at the first recording */
	struct event		 *ev_rec;	/* tells what the writer did */
	int			  meminfo;	/* the kernel has SO_MEMINFO */

	/* the kernel fast path (relay_kfwd.c): its map, -1 when not used */
	int			  kfd;
	uint8_t			  kf_ttl[2];	/* IPv4 TTL, IPv6 hop limit */
	uint32_t		  kf_acl_seq;	/* the rules the entries obey */
	struct event		 *ev_kfwd;
	LIST_HEAD(, relay_sess)	  kf_list;	/* sessions with entries */
};

/* What one batch did to one direction, written to the slot at the end. */
struct relay_tally {
	uint64_t	received, bytes, invalid, not_latched, non_rtp;
	uint64_t	sent, bytes_sent, send_error, overflow;
	uint64_t	source, rate_limited;
	uint64_t	rtcp_malformed, dtmf, dtmf_dropped;
	uint64_t	lat_sum, lat_count, lat_max;
	int64_t		last_ns;
};

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

#define RELAY_EVDATA(slot, role)	((uint64_t)(slot) << 2 | (uint64_t)(role))
#define RELAY_EVSLOT(data)		((data) >> 2)
#define RELAY_EVROLE(data)		((int)((data) & 3))

/* relay.c */
void	relay_poll(evutil_socket_t, short, void *);

/* relay_latch.c */
void	relay_latch_load(struct relay_sess *);
void	relay_refused(struct relay_sess *, int, const struct sockaddr *,
	    int64_t, int, int, int);
void	relay_cand_clear(struct relay_sess *);
int	relay_latch_rtp(struct relay_sess *, const struct sockaddr *,
	    const struct rtp_info *, int64_t);
int	relay_latch_rtcp(struct relay_sess *, const struct sockaddr *,
	    int64_t);

/* relay_dtmf.c */
int	relay_dtmf(struct relay_sess *, int, const uint8_t *, size_t,
	    const struct rtp_info *, int64_t);

/* relay_kfwd.c */
void	relay_kfwd_init(struct relay *);
void	relay_kfwd_free(struct relay *);
void	relay_kfwd_offer(struct relay_sess *, int);
void	relay_kfwd_adopt(struct relay_sess *);
void	relay_kfwd_drop(struct relay_sess *, int);
void	relay_kfwd_drop_all(struct relay_sess *);

/* relay_err.c */
void	relay_errqueue(struct relay_sess *, struct relay_sock *);
int	relay_soft_error(int);
void	relay_meminfo(struct relay_sess *, struct relay_sock *, int);
void	relay_ovfl_tick(evutil_socket_t, short, void *);

static inline int64_t
relay_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
/* a as a socket address, with its port moved by plus; its length. */
static inline socklen_t
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
static inline int
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
/*
 * The socket of role has dropped drops datagrams in all (the kernel's
 * count, cumulative, wrapping): how many of them are new.  A count older
 * than the one seen (a datagram queued before SO_MEMINFO was read) adds
 * nothing.  fresh: the socket may be a new one (bound again by a master
 * that took over), whose count starts again from 0; a lower count then
 * means all its drops are new.  The slot's copy is written first, so
 * that a worker that dies after it counts a drop once at most.
 */
static inline uint32_t
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

#endif
