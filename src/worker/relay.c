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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "relay_int.h"

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
		ADD(rtcp_malformed, t->rtcp_malformed);
	} else {
		ADD(packets_received, t->received);
		ADD(bytes_received, t->bytes);
		ADD(packets_sent, t->sent);
		ADD(bytes_sent, t->bytes_sent);
		ADD(non_rtp, t->non_rtp);
		ADD(dtmf_events, t->dtmf);
		ADD(dtmf_dropped, t->dtmf_dropped);
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
 *
 * Longer than a function should be, and kept whole on purpose: it is the
 * loop every packet goes through, and split up it would read the packet's
 * state through more pointers and calls than it does.
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
	/*
	 * The RTP state has one writer at a time: packets that reached the
	 * socket while the kernel had the direction (queued before it went
	 * in, or refused by the program) take it back first.
	 */
	if (__builtin_expect(rs->kf & (1u << sk->role), 0))
		relay_kfwd_drop(rs, sk->role);
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
			/* ok: plain RTCP, whose reports can be read */
			ok = rtcp_check(r->buf[i], len) == 0;
			if (!ok && srtcp_check(r->buf[i], len) != 0) {
				t.invalid++;
				continue;
			}
			if (!rev && relay_latch(rs, 1, m->msg_name, NULL, ns) ==
			    -1) {
				t.source++;
				continue;
			}
			if (ok && rtcpq_parse(d, &s->dir[rev ? SHM_DIR_FWD :
			    SHM_DIR_REV], r->buf[i], len, ns) == -1)
				t.rtcp_malformed++;
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
				/* Its payload type is all DTMF costs others. */
				if (__builtin_expect(ri.pt == rs->dtmf_pt, 0)) {
					t.dtmf += (uint64_t)relay_dtmf(rs, rev,
					    r->buf[i], len, &ri, ns);
					if (rs->drop_dtmf) {
						t.dtmf_dropped++;
						continue;
					}
				}
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
	if (ntx > 0) {
		relay_send(rs, out, ntx, dst, dstlen, &t);
		/* A copy of what went, for the writer: no wait, no syscall. */
		if (__builtin_expect(rs->recording, 0) && t.sent > 0)
			rec_put_batch(rs->rec, s, rs->idx, (rev ? REC_F_REV :
			    0) | (rtcp ? REC_F_RTCP : 0), r->txiov, r->txok,
			    r->txns, ntx, dst);
	}
	relay_publish(d, rtcp, &t);
	if (rs->seen_dirty) {
		s->latch.seen_ms = rs->seen_ns / NS_PER_MS;
		rs->seen_dirty = 0;
	}
	if (t.sent > 0 && !rs->reported_active) {
		rs->reported_active = 1;
		wctx_report(&rs->relay->ctx, IPC_ACTIVE, rs->idx, rs->gen, 0,
		    NULL);
	}
	/* Only with kernel-forwarding: one test otherwise. */
	if (__builtin_expect(r->kfd >= 0, 0) && t.sent > 0 &&
	    !(rs->kf & (1u << sk->role)))
		relay_kfwd_offer(rs, sk->role);
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
void
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
		wctx_busy(&r->ctx, sk->sess->idx, sk->sess->gen);
		if (__builtin_expect(r->crash_lo != 0, 0) &&
		    sk->sess->slot->listen.port >= r->crash_lo &&
		    sk->sess->slot->listen.port <= r->crash_hi)
			abort();
		relay_readable(sk);
		wctx_idle(&r->ctx);
	}
}



