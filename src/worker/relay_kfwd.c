/*
 * Session directions handed to the kernel fast path (src/kfwd) and
 * taken back.  Once a direction is established (the caller latched, a
 * few valid RTP packets from the expected sender relayed here, the
 * destination allowed by the rules), relay.c offers it: the map gets an
 * entry keyed by the socket's local address and port, saying who may
 * send and what the packet becomes (the addresses and ports this worker
 * would send it with), with the RTP state to go on from.  From then on
 * the program relays those packets in the kernel; what it does not take
 * (another sender, non-RTP) still comes here.
 *
 * A timer merges the entries' figures into the slot (what is new since
 * the last merge, which the slot remembers for a worker that replaces
 * this one), so that the status, the metrics and the idle timeout see
 * one set of figures.  A latch that moves, a session removed and a rule
 * change take the entries out first (their last figures read as they
 * go); the session then goes on here and may be offered again.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/types.h>
#include <linux/bpf.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "relay_int.h"
#include "kfwd.h"
#include "kfwd_map.h"

#define KFWD_MIN_RTP	8	/* valid RTP packets relayed here first */
#define KFWD_MIN_RTCP	2
#define KFWD_TICK_MS	500	/* merge the kernel's figures this often */

static int64_t
kfwd_clock_off(void)
{
	struct timespec	rt, mono;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	return ((int64_t)rt.tv_sec - mono.tv_sec) * NS_PER_S +
	    (rt.tv_nsec - mono.tv_nsec);
}

/* An address as the map has it: IPv4 in addr[0], IPv6 all 16 octets. */
static void
kfwd_addr(const union relay_sa *u, uint32_t *addr)
{
	memset(addr, 0, 16);
	if (u->sa.sa_family == AF_INET)
		addr[0] = u->sin.sin_addr.s_addr;
	else
		memcpy(addr, &u->sin6.sin6_addr, 16);
}

/* IPv4 or IPv6 and not IPv4-mapped: what the program takes. */
static int
kfwd_family_ok(const union relay_sa *u, int family)
{
	if (u->sa.sa_family != family)
		return 0;
	return family == AF_INET || !IN6_IS_ADDR_V4MAPPED(&u->sin6.sin6_addr);
}

/*
 * The local address and port of fd (of family); with dst, a wildcard
 * address as the kernel would pick it towards dst, and *local: dst is
 * this host's (the kernel picks dst itself as the source).
 */
static int
kfwd_local(int fd, int family, const union relay_sa *dst, uint32_t *addr,
    uint16_t *port, int *local)
{
	union relay_sa	here, pick;
	socklen_t	len = sizeof(here);
	uint32_t	a[4], d[4];
	int		probe;

	if (getsockname(fd, &here.sa, &len) == -1 ||
	    !kfwd_family_ok(&here, family))
		return -1;
	*port = family == AF_INET ? here.sin.sin_port : here.sin6.sin6_port;
	kfwd_addr(&here, addr);
	if (dst == NULL)
		return 0;
	/* What the routing table says of dst: a connected probe. */
	if ((probe = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	len = sizeof(pick);
	if (connect(probe, &dst->sa, family == AF_INET ? sizeof(dst->sin) :
	    sizeof(dst->sin6)) == -1 ||
	    getsockname(probe, &pick.sa, &len) == -1) {
		close(probe);
		return -1;
	}
	close(probe);
	kfwd_addr(&pick, a);
	kfwd_addr(dst, d);
	if (addr[0] == 0 && addr[1] == 0 && addr[2] == 0 && addr[3] == 0)
		memcpy(addr, a, 16);
	*local = memcmp(a, d, sizeof(a)) == 0;
	return 0;
}

static void
kfwd_key_of(const struct relay_sess *rs, int role, struct kfwd_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, rs->kf_addr[role], sizeof(k->addr));
	k->port = rs->kf_port[role];
	k->family = rs->kf_v6 ? 6 : 4;
}

/* What is new in entry v since the last merge, into the slot. */
static void
kfwd_merge(struct relay_sess *rs, int role, const struct kfwd_val *v)
{
	struct shm_slot		*s = rs->slot;
	struct shm_dir		*d = &s->dir[role & 1];
	struct shm_kbase	*b = &s->kbase[role];
	uint64_t		 dp, db, ds, dbs, dl;

	if (v->packets < b->packets || v->sent < b->sent ||
	    v->limited < b->limited)
		memset(b, 0, sizeof(*b));	/* a new entry */
	dp = v->packets - b->packets;
	db = v->bytes - b->bytes;
	ds = v->sent - b->sent;
	dbs = v->bytes_sent - b->bytes_sent;
	dl = v->limited - b->limited;
	/* dropped over the rate limit: received, as the worker counts them */
	if (dl != 0)
		SHM_ADD(&d->dropped_rate_limited, dl);
	if (role >= SK_LISTEN_RTCP) {
		if (dp != 0)
			SHM_ADD(&d->rtcp_received, dp);
		if (ds != 0)
			SHM_ADD(&d->rtcp_sent, ds);
	} else {
		if (dp != 0) {
			SHM_ADD(&d->packets_received, dp);
			SHM_ADD(&d->bytes_received, db);
		}
		if (ds != 0) {
			SHM_ADD(&d->packets_sent, ds);
			SHM_ADD(&d->bytes_sent, dbs);
		}
		/* The kernel's RTP state is the truth while it has the entry. */
		d->src = v->rtp;
		rtpstat_sync(d);
	}
	if (dp != 0)
		SHM_ADD(&d->kernel_packets, dp);
	if (v->last_ns / NS_PER_MS > SHM_LOAD(&d->last_packet_ms))
		atomic_store_explicit(&d->last_packet_ms, v->last_ns /
		    NS_PER_MS, memory_order_relaxed);
	/* The latched caller spoke: what the latch policy's quiet reads. */
	if (role == SK_LISTEN_RTP && v->last_ns > rs->seen_ns) {
		rs->seen_ns = v->last_ns;
		s->latch.seen_ms = rs->seen_ns / NS_PER_MS;
	}
	b->packets = v->packets;
	b->bytes = v->bytes;
	b->sent = v->sent;
	b->bytes_sent = v->bytes_sent;
	b->limited = v->limited;
}

/* Per direction, what is in the kernel: for the status. */
static void
kfwd_flags(struct relay_sess *rs)
{
	atomic_store_explicit(&rs->slot->dir[0].in_kernel,
	    ((rs->kf & 0x1) ? SHM_KERNEL_RTP : 0) |
	    ((rs->kf & 0x4) ? SHM_KERNEL_RTCP : 0), memory_order_relaxed);
	atomic_store_explicit(&rs->slot->dir[1].in_kernel,
	    ((rs->kf & 0x2) ? SHM_KERNEL_RTP : 0) |
	    ((rs->kf & 0x8) ? SHM_KERNEL_RTCP : 0), memory_order_relaxed);
}

static void
kfwd_unlist(struct relay_sess *rs)
{
	if (rs->kf == 0 && rs->kf_listed) {
		LIST_REMOVE(rs, kf_entry);
		rs->kf_listed = 0;
	}
}

/* Take role's entry out of the kernel, with its last figures. */
void
relay_kfwd_drop(struct relay_sess *rs, int role)
{
	struct relay	*r = rs->relay;
	struct kfwd_key	 k;
	struct kfwd_val	 v;

	if (!(rs->kf & (1u << role)))
		return;
	/* RTCP uses the bucket of the RTP entry: out first */
	if (role < SK_LISTEN_RTCP && rs->limited)
		relay_kfwd_drop(rs, role + SK_LISTEN_RTCP);
	kfwd_key_of(rs, role, &k);
	if (kfwd_map_take(r->kfd, &k, &v) == 0) {
		kfwd_merge(rs, role, &v);
		/* the rate limit goes on here where the kernel left it */
		if ((v.flags & KFWD_F_LIMIT) && !(v.flags & KFWD_F_RTCP)) {
			rs->bucket[role & 1].tat_pkt = v.tat_pkt;
			rs->bucket[role & 1].tat_bit = v.tat_bit;
			rs->bucket[role & 1].last = v.tat_last;
		}
	} else if (errno != ENOENT)
		log_warn("slot %u: kernel forwarding: remove", rs->idx);
	memset(&rs->slot->kbase[role], 0, sizeof(rs->slot->kbase[role]));
	rs->kf &= (uint8_t)~(1u << role);
	rs->kf_again |= (uint8_t)(1u << role);
	kfwd_flags(rs);
	kfwd_unlist(rs);
}

/* Out for good (a latch moved, rules changed): a new offload after. */
void
relay_kfwd_drop_all(struct relay_sess *rs)
{
	int i;

	for (i = 0; i < SK_MAX; i++)
		relay_kfwd_drop(rs, i);
	rs->kf_again = 0;
	rs->kf_known = 0;
}

/*
 * Who may send to role's socket, and where its packets go, as the packet
 * path decides it now: 0, or -1 when the direction is not established.
 */
static int
kfwd_route(struct relay_sess *rs, int role, const union relay_sa **src,
    int *strict, const union relay_sa **dst)
{
	int rtcp = role >= SK_LISTEN_RTCP;

	if (!(rs->latched & LATCH_RTP))
		return -1;
	if (!(role & 1)) {
		/* caller -> destination: only from the latched caller */
		if (rtcp && !(rs->latched & LATCH_RTCP))
			return -1;
		*src = &rs->latch[rtcp];
		*strict = KFWD_F_SRC_ADDR | KFWD_F_SRC_PORT;
		*dst = &rs->dest[rtcp];
	} else {
		if (rs->unidir)
			return -1;
		*src = &rs->dest[rtcp];
		*strict = (rs->src_addr ? KFWD_F_SRC_ADDR : 0) |
		    (rs->src_port ? KFWD_F_SRC_PORT : 0);
		if (rtcp && (rs->latched & LATCH_RTCP))
			*dst = &rs->latch[1];
		else
			*dst = &rs->latch[rtcp ? 2 : 0];
	}
	/* IPv4 to IPv4 or IPv6 to IPv6, not IPv4-mapped */
	if (!kfwd_family_ok(*src, (*dst)->sa.sa_family) ||
	    !kfwd_family_ok(*dst, (*dst)->sa.sa_family))
		return -1;
	return 0;
}

/*
 * relay.c offers role's direction after a batch it relayed: into the
 * kernel if it is established and allowed; a rate limit goes with it.
 */
void
relay_kfwd_offer(struct relay_sess *rs, int role)
{
	struct relay		*r = rs->relay;
	struct shm_dir		*d = &rs->slot->dir[role & 1];
	const union relay_sa	*src, *dst;
	struct kfwd_key		 k;
	struct kfwd_val		 v;
	int			 strict, rule, local = 0;
	int			 rtcp = role >= SK_LISTEN_RTCP;

	/*
	 * drop_dtmf: the kernel would relay what the session must drop; a
	 * recorded session stays here, where the copies are made.
	 */
	if (rs->drop_dtmf || rs->recording ||
	    (rs->kf_failed & (1u << role)) ||
	    role >= rs->nsock)
		return;
	/* a rate limit's bucket is the RTP entry's: RTCP goes in after it */
	if (rtcp && rs->limited && !(rs->kf & (1u << (role - SK_LISTEN_RTCP))))
		return;
	if (rtcp ? SHM_LOAD(&d->rtcp_sent) < KFWD_MIN_RTCP :
	    !d->src.valid || d->src.received < KFWD_MIN_RTP)
		return;
	if (kfwd_route(rs, role, &src, &strict, &dst) == -1)
		return;
	if (acl_check(wctx_acl(&r->ctx), &dst->sa, ACL_UDP, &rule) !=
	    ACL_ALLOW)
		return;
	memset(&v, 0, sizeof(v));
	if (!(rs->kf_known & (1u << role))) {
		/* system calls: once until the latch or the rules change */
		if (kfwd_local(rs->sk[role].fd, dst->sa.sa_family, NULL,
		    rs->kf_addr[role], &rs->kf_port[role], NULL) == -1 ||
		    kfwd_local(rs->sk[role ^ 1].fd, dst->sa.sa_family, dst,
		    rs->kf_saddr[role], &rs->kf_sport[role], &local) == -1) {
			rs->kf_failed |= (uint8_t)(1u << role);
			return;
		}
		rs->kf_known |= (uint8_t)(1u << role);
		if (local)
			rs->kf_local |= (uint8_t)(1u << role);
		else
			rs->kf_local &= (uint8_t)~(1u << role);
	}
	local = (rs->kf_local & (1u << role)) != 0;
	rs->kf_v6 = dst->sa.sa_family == AF_INET6;
	memcpy(v.new_saddr, rs->kf_saddr[role], sizeof(v.new_saddr));
	v.new_sport = rs->kf_sport[role];
	kfwd_addr(src, v.src_addr);
	v.src_port = rs->kf_v6 ? src->sin6.sin6_port : src->sin.sin_port;
	v.flags = (uint16_t)(strict | (rtcp ? KFWD_F_RTCP : 0) |
	    (local ? KFWD_F_LOCAL : 0));
	kfwd_addr(dst, v.new_daddr);
	v.new_dport = rs->kf_v6 ? dst->sin6.sin6_port : dst->sin.sin_port;
	v.dyn_rate = rs->clock_rate;
	v.clock_off = kfwd_clock_off();
	v.ttl = r->kf_ttl[rs->kf_v6];
	if (rs->limited) {
		v.flags |= KFWD_F_LIMIT;
		v.pkt_ns = rs->pkt_ns;
		v.byte_ns_q16 = rs->byte_ns_q16;
		v.tau_ns = rs->tau_ns;
		if (rtcp)
			kfwd_key_of(rs, role - SK_LISTEN_RTCP, &v.bucket);
		else {
			v.tat_pkt = rs->bucket[role & 1].tat_pkt;
			v.tat_bit = rs->bucket[role & 1].tat_bit;
			v.tat_last = rs->bucket[role & 1].last;
		}
	}
	if (!rtcp)
		v.rtp = d->src;
	kfwd_key_of(rs, role, &k);
	memset(&rs->slot->kbase[role], 0, sizeof(rs->slot->kbase[role]));
	if (kfwd_map_put(r->kfd, &k, &v) == -1) {
		log_warn("slot %u: kernel forwarding: add", rs->idx);
		rs->kf_failed |= (uint8_t)(1u << role);
		return;
	}
	rs->kf |= (uint8_t)(1u << role);
	/* Back after the worker had a few of its packets: not a new one. */
	if (!(rs->kf_again & (1u << role)))
		SHM_ADD(&d->kernel_offloads, 1);
	rs->kf_again &= (uint8_t)~(1u << role);
	kfwd_flags(rs);
	if (!rs->kf_listed) {
		LIST_INSERT_HEAD(&r->kf_list, rs, kf_entry);
		rs->kf_listed = 1;
	}
	log_debug("slot %u: socket %d in the kernel", rs->idx, role);
}

/*
 * A session given to this worker (again): entries a worker before us
 * left in the kernel are ours now, merged from where it left them.
 */
void
relay_kfwd_adopt(struct relay_sess *rs)
{
	struct relay		*r = rs->relay;
	const union relay_sa	*src, *dst;
	struct kfwd_key		 k;
	struct kfwd_val		 v;
	uint32_t		 daddr[4];
	int			 role, strict;

	for (role = 0; role < rs->nsock; role++) {
		if (kfwd_route(rs, role, &src, &strict, &dst) == -1 ||
		    kfwd_local(rs->sk[role].fd, dst->sa.sa_family, NULL,
		    rs->kf_addr[role], &rs->kf_port[role], NULL) == -1)
			continue;
		rs->kf_v6 = dst->sa.sa_family == AF_INET6;
		kfwd_key_of(rs, role, &k);
		if (kfwd_map_get(r->kfd, &k, &v) == -1)
			continue;
		rs->kf |= (uint8_t)(1u << role);
		kfwd_merge(rs, role, &v);
		/*
		 * Changed while no worker had it (UpdateSession: another
		 * destination, recording): out, and offered again as it is.
		 */
		kfwd_addr(dst, daddr);
		if (rs->recording || memcmp(daddr, v.new_daddr,
		    sizeof(daddr)) != 0 || v.new_dport != (rs->kf_v6 ?
		    dst->sin6.sin6_port : dst->sin.sin_port) ||
		    rs->limited != ((v.flags & KFWD_F_LIMIT) != 0) ||
		    (rs->limited && (v.pkt_ns != rs->pkt_ns ||
		    v.byte_ns_q16 != rs->byte_ns_q16 ||
		    v.tau_ns != rs->tau_ns)))
			relay_kfwd_drop(rs, role);
	}
	if (rs->kf != 0) {
		kfwd_flags(rs);
		LIST_INSERT_HEAD(&r->kf_list, rs, kf_entry);
		rs->kf_listed = 1;
		log_debug("slot %u: adopted from the kernel", rs->idx);
	}
}

/*
 * The destination rules moved (a reload, a new master publishing them):
 * the entries whose destination they no longer allow come out.
 */
static void
kfwd_recheck(struct relay *r)
{
	struct relay_sess	*rs, *next;
	const union relay_sa	*src, *dst;
	const struct shm_acl	*acl = wctx_acl(&r->ctx);
	int			 role, strict, rule;

	for (rs = LIST_FIRST(&r->kf_list); rs != NULL; rs = next) {
		next = LIST_NEXT(rs, kf_entry);
		for (role = 0; role < rs->nsock; role++) {
			if (!(rs->kf & (1u << role)))
				continue;
			if (kfwd_route(rs, role, &src, &strict, &dst) == 0 &&
			    acl_check(acl, &dst->sa, ACL_UDP, &rule) ==
			    ACL_ALLOW)
				continue;
			relay_kfwd_drop(rs, role);
			rs->kf_again &= (uint8_t)~(1u << role);
			rs->kf_known &= (uint8_t)~(1u << role);
		}
	}
}

/* The timer: merge every entry's figures; rules that moved, checked. */
static void
kfwd_tick(evutil_socket_t fd, short what, void *arg)
{
	struct relay		*r = arg;
	struct relay_sess	*rs;
	struct kfwd_key		 k;
	struct kfwd_val		 v;
	uint32_t		 seq;
	int			 role;

	seq = wctx_acl(&r->ctx)->seq;
	if (seq != r->kf_acl_seq) {
		r->kf_acl_seq = seq;
		kfwd_recheck(r);
	}
	LIST_FOREACH(rs, &r->kf_list, kf_entry)
		for (role = 0; role < rs->nsock; role++) {
			if (!(rs->kf & (1u << role)))
				continue;
			kfwd_key_of(rs, role, &k);
			if (kfwd_map_get(r->kfd, &k, &v) == 0)
				kfwd_merge(rs, role, &v);
		}
}

/*
 * The map of the master's program, if it runs one: kfd >= 0.  The master
 * hands it over at exec (IPC_KFWD_FD), so that a worker that runs as
 * `user`, with no capability at all, writes it (a map's descriptor is all
 * that bpf() asks for); else, from a master that did not, by its pin.
 */
void
relay_kfwd_init(struct relay *r)
{
	char	dir[256];

	r->kfd = -1;
	LIST_INIT(&r->kf_list);
	if (kfwd_pindir(r->shm->name, dir, sizeof(dir)) == -1)
		return;
	if (kfwd_map_check(IPC_KFWD_FD) == 0) {
		r->kfd = IPC_KFWD_FD;
		(void)fcntl(r->kfd, F_SETFD, FD_CLOEXEC);
	} else if ((r->kfd = kfwd_map_open(dir)) == -1)
		return;
	r->kf_ttl[0] = (uint8_t)kfwd_default_ttl(0);
	r->kf_ttl[1] = (uint8_t)kfwd_default_ttl(1);
	r->kf_acl_seq = wctx_acl(&r->ctx)->seq;
	if ((r->ev_kfwd = event_new(r->base, -1, EV_PERSIST, kfwd_tick,
	    r)) == NULL || event_add(r->ev_kfwd, &(struct timeval){ 0,
	    KFWD_TICK_MS * 1000 }) == -1) {
		log_warnx("kernel forwarding: no timer: not used");
		if (r->ev_kfwd != NULL)
			event_free(r->ev_kfwd);
		r->ev_kfwd = NULL;
		close(r->kfd);
		r->kfd = -1;
		return;
	}
	log_debug("kernel forwarding: map %s/sessions%s", dir,
	    r->kfd == IPC_KFWD_FD ? " (from the master)" : "");
}

void
relay_kfwd_free(struct relay *r)
{
	if (r->ev_kfwd != NULL)
		event_free(r->ev_kfwd);
	if (r->kfd != -1)
		close(r->kfd);
}
