/*
 * The relay's sessions set up and taken down: a relay made for a worker,
 * a session's sockets added (options, epoll) and removed, and the worker's
 * counters and reports.  The packet path itself is in relay.c.
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
	relay_kfwd_init(r);
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
		relay_kfwd_free(r);
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
	relay_kfwd_free(r);
	if (r->ev_rec != NULL)
		event_free(r->ev_rec);
	rec_free(r->rec);
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
/*
 * What the master may change in a live session (UpdateSession), copied
 * from its slot: at the start, and again when the master says so.
 */
static void
relay_sess_load(struct relay_sess *rs)
{
	struct shm_slot *s = rs->slot;

	rs->unidir = (s->flags & SHM_F_UNIDIR) != 0;
	rs->src_addr = (s->flags & SHM_F_SRC_ADDR) != 0;
	rs->src_port = (s->flags & SHM_F_SRC_PORT) != 0;
	rs->clock_rate = s->clock_rate;
	/* 0xff matches no payload type: no detection (TCP) */
	rs->dtmf_pt = s->dtmf_pt >= 96 && s->dtmf_pt <= 127 ?
	    (uint8_t)s->dtmf_pt : 0xff;
	rs->drop_dtmf = (s->flags & SHM_F_DROP_DTMF) != 0;
	rs->policy = s->latch.policy >= SHM_LATCH_LEARN &&
	    s->latch.policy <= SHM_LATCH_LATEST ? s->latch.policy :
	    SHM_LATCH_LEARN;
	rs->run = s->latch.run < 2 ? 2 : s->latch.run;
	rs->quiet_ns = (int64_t)s->latch.quiet_ms * NS_PER_MS;
	rs->tau_ns = (int64_t)s->rate_burst_ms * 1000000;
	rs->pkt_ns = s->rate_pps != 0 ? NS_PER_S / s->rate_pps : 0;
	rs->byte_ns_q16 = s->rate_bps != 0 ?
	    ((uint64_t)8 * NS_PER_S << 16) / s->rate_bps : 0;
	rs->limited = rs->pkt_ns != 0 || rs->byte_ns_q16 != 0;
	rs->destlen[0] = relay_sa_set(&rs->dest[0], &s->dest, 0);
	rs->destlen[1] = relay_sa_set(&rs->dest[1], &s->dest, 1);
}
/* What the writer says of the session's file, into its slot. */
static void
relay_rec_pull(struct relay_sess *rs)
{
	struct relay	*r = rs->relay;
	struct shm_slot	*s = rs->slot;
	uint64_t	 packets;
	uint32_t	 st, part;
	char		 err[sizeof(s->rec.error)];

	if (rs->rec_serial == 0 || r->rec == NULL ||
	    rec_status(r->rec, rs->idx, rs->rec_serial, &st, &part, &packets,
	    err, sizeof(err)) == -1)
		return;
	/* The writer went past names taken (rec_do_open): the one it has. */
	if (part > s->rec.parts) {
		s->rec.parts = part;
		rec_name(s->rec.file, sizeof(s->rec.file), NULL, s, part);
	}
	atomic_store_explicit(&s->rec.packets, rs->rec_base + packets,
	    memory_order_relaxed);
	memcpy(s->rec.error, err, sizeof(err));
	atomic_store_explicit(&s->rec.state, st, memory_order_release);
}
/*
 * What the writer did (a file opened, failed, closed), told the master
 * once per change: from the slots, off the packet path.
 */
static void
relay_rec_tick(evutil_socket_t fd, short what, void *arg)
{
	struct relay		*r = arg;
	struct relay_sess	*rs;
	struct shm_slot		*s;
	char			 why[120];
	const char		*src;
	size_t			 n;
	uint32_t		 i, st;

	for (i = 0; i < r->shm->nslots; i++) {
		if ((rs = r->sess[i]) == NULL)
			continue;
		relay_rec_pull(rs);
		s = rs->slot;
		st = atomic_load_explicit(&s->rec.state, memory_order_acquire);
		if (st == rs->rec_told_state && s->rec.parts ==
		    rs->rec_told_parts)
			continue;
		rs->rec_told_state = st;
		rs->rec_told_parts = s->rec.parts;
		src = st == SHM_REC_FAILED ? s->rec.error : s->rec.file;
		n = strnlen(src, sizeof(why) - 1);
		memcpy(why, src, n);
		why[n] = '\0';
		wctx_report(&r->ctx, IPC_RECORDING, i, rs->gen, (int)st, why);
	}
}
/*
 * Recording as the slot asks: begin a file (a new part) when the master
 * started it again (rec_gen) or this worker is new to the session
 * (adding), close it when the master stopped it.
 */
static void
relay_rec_sync(struct relay_sess *rs, int adding)
{
	struct relay	*r = rs->relay;
	struct shm_slot	*s = rs->slot;
	int		 want = (s->flags & SHM_F_RECORD) != 0;

	if (want && (adding || rs->rec == NULL ||
	    s->rec.seen_gen != s->rec_gen)) {
		if (r->rec == NULL) {
			if ((r->rec = rec_new(r->shm)) == NULL)
				return;
			r->ev_rec = event_new(r->base, -1, EV_PERSIST,
			    relay_rec_tick, r);
			if (r->ev_rec != NULL)
				event_add(r->ev_rec, &(struct timeval){ 0,
				    200000 });
		}
		relay_rec_pull(rs);
		s->rec.seen_gen = s->rec_gen;
		rs->rec_base = SHM_LOAD(&s->rec.packets);
		rs->rec_serial = rec_start(r->rec, rs->idx, rs->gen);
		rs->rec = rs->rec_serial != 0 ? r->rec : NULL;
	} else if (!want && rs->rec != NULL) {
		rec_stop(rs->rec, rs->idx, 1, SHM_LOAD(&s->rec.dropped));
		rs->rec = NULL;
	}
	rs->recording = rs->rec != NULL;
}
/*
 * The master changed slot (IPC_UPDATE): take its new destination, modes
 * and limits.  The latch, the counters and the buckets' state stay.  0,
 * or -1 when slot is not relayed here (a TCP session: nothing to take).
 */
int
relay_update(struct relay *r, uint32_t slot, uint32_t gen)
{
	struct relay_sess *rs;

	if (slot >= r->shm->nslots || (rs = r->sess[slot]) == NULL ||
	    rs->gen != gen)
		return -1;
	/*
	 * What the kernel fast path holds was made from the old values (the
	 * destination, the direction, a limit, recording): out with it; the
	 * packet path offers it again as it is now.
	 */
	relay_kfwd_drop_all(rs);
	relay_sess_load(rs);
	relay_rec_sync(rs, 0);
	return 0;
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
	relay_sess_load(rs);
	rs->learn_end_ns = s->latch.learn_end_ms * NS_PER_MS;
	rs->seen_ns = s->latch.seen_ms * NS_PER_MS;
	rs->cand_live = s->latch.cand_count != 0;
	rs->nsock = (uint8_t)nfds;
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
	/* What the master was told stays told: only changes go. */
	rs->rec_told_state = atomic_load(&s->rec.state);
	rs->rec_told_parts = s->rec.parts;
	relay_rec_sync(rs, 1);
	/* After recording is known: a recorded session is not the kernel's. */
	if (r->kfd >= 0)
		relay_kfwd_adopt(rs);
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
	relay_kfwd_drop_all(rs);
	if (rs->rec != NULL) {
		relay_rec_pull(rs);
		rec_stop(rs->rec, slot, 0, SHM_LOAD(&rs->slot->rec.dropped));
	}
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
