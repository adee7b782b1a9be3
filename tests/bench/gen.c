/*
 * The generator of the comparison and flood modes, made to cost as little
 * per packet as it can so that one core of it outruns a relay on another:
 * two sockets in all.  The callers' socket sends to every session's listen
 * port and receives the reverse media; the destinations' socket is every
 * session's destination and sends the reverse media to the forward ports.
 * sendmmsg batches of 32 per socket, recvmmsg batches of 64, nothing
 * allocated on the way.
 *
 * It never sleeps: one loop polls its two sockets and the clock.  Going to
 * sleep and being woken cost more here than a packet does (in a VM each
 * wakeup of an idle core is an IPI and an exit), and a relay that must wake
 * its receiver pays for it on every send, which a relay sending to other
 * hosts does not.  So its core is always busy; how busy rtpbench really is
 * is the share of the time its loop found something to do.
 *
 * A step may also send a session's packets in bursts of up to GSO_MAX
 * with UDP segmentation offload (one sendmmsg entry, one trip through
 * the stack as far as the relay's socket, where the kernel splits it):
 * several times cheaper per packet than one by one.  The relay receives
 * ordinary datagrams, but more of them at once on one socket, so compare.c
 * uses bursts only where a session sends that many within a millisecond
 * anyway, and never for the fixed-rate measurement.
 *
 * A packet carries its send time (CLOCK_REALTIME), its stream and the step
 * it belongs to; latency is the kernel's receive timestamp on our socket
 * minus the send time, so the time a packet waits for rtpbench to read it
 * is not counted.  Packets of an earlier step are ignored.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/udp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"
#include "bench.h"

#define TX_BATCH	32
#define RX_BATCH	64
#define PKT_MAX		1500
#define STAMP_LEN	16		/* send time 8, stream 4, step 4 */
#define BURST_MAX	256		/* packets sent between receives */
#define LATE_NS		(50 * 1000000LL)
#define QUIET_NS	(50 * 1000000LL)	/* the end of a drain */
#define DRAIN_MAX_NS	(10 * 1000000000LL)
#define GSO_MAX		8		/* packets in one burst */
#define RCVBUF		(64 << 20)
#define SNDBUF		(4 << 20)

struct gstream {
	struct sockaddr_storage	 to;
	socklen_t		 tolen;
	int			 side;	/* the socket it leaves from */
	uint16_t		 seq;
	uint64_t		 got;	/* this step */
};

#ifndef UDP_SEGMENT
#define UDP_SEGMENT	103
#endif

union gsocmsg {
	struct cmsghdr	h;
	char		b[CMSG_SPACE(sizeof(uint16_t))];
};

union gcmsg {
	struct cmsghdr	h;
	char		b[CMSG_SPACE(sizeof(struct timespec)) +
			    CMSG_SPACE(sizeof(uint32_t)) + 16];
};

struct gen {
	int			 fd[2];	/* 0: the callers, 1: destinations */
	struct sockaddr_storage	 addr[2];
	socklen_t		 addrlen[2];
	int			 payload;
	size_t			 pktlen;
	int			 bidir;
	int			 burst;		/* packets per send, this step */
	int			 gso_ok;
	struct gstream		*st;
	int			 nst;
	int			 next;		/* round robin */
	uint32_t		 step;
	uint32_t		 ovfl[2];	/* SO_RXQ_OVFL, last seen */
	uint32_t		 ovfl0[2];	/* at the start of the step */

	uint64_t		 sent, unsent, received, late, stale;
	struct hist		 lat;

	struct mmsghdr		 tx[2][TX_BATCH];
	struct iovec		 txiov[2][TX_BATCH];
	union gsocmsg		 txcm[2][TX_BATCH];
	int			 ntx[2];
	int			 txk[2][TX_BATCH];	/* packets in each */
	uint8_t			*txbuf[2][TX_BATCH];	/* GSO_MAX packets */

	struct mmsghdr		 rx[RX_BATCH];
	struct iovec		 rxiov[RX_BATCH];
	union gcmsg		 rxcm[RX_BATCH];
	uint8_t			 rxbuf[RX_BATCH][PKT_MAX];
};

int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

void
hist_add(struct hist *h, int64_t ns)
{
	uint64_t us;

	if (ns < 0)
		ns = 0;
	us = (uint64_t)ns / 1000;
	if (us < HIST_US)
		h->b[us]++;
	else
		h->ms[us / 1000 < HIST_MS ? us / 1000 : HIST_MS]++;
	h->n++;
	if ((uint64_t)ns > h->max_ns)
		h->max_ns = (uint64_t)ns;
}

/* The p-th percentile in microseconds; past 10 s, the maximum. */
double
hist_pct(const struct hist *h, double p)
{
	uint64_t	want, acc = 0;
	int		i;

	if (h->n == 0)
		return 0;
	want = (uint64_t)(p / 100.0 * (double)h->n);
	if (want >= h->n)
		want = h->n - 1;
	for (i = 0; i < HIST_US; i++) {
		acc += h->b[i];
		if (acc > want)
			return i;
	}
	for (i = HIST_US / 1000; i < HIST_MS; i++) {
		acc += h->ms[i];
		if (acc > want)
			return (double)i * 1000;
	}
	return (double)h->max_ns / 1000;
}

static int
gen_socket(struct gen *g, int side, const struct sockaddr_storage *a,
    socklen_t alen)
{
	int	fd, on = 1, rb = RCVBUF, sb = SNDBUF;

	if ((fd = socket(a->ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	/* The bench must not be where packets are lost: as root, force. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof(rb)) == -1)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof(sb)) == -1)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	(void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
	(void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof(on));
	g->addrlen[side] = alen;
	memcpy(&g->addr[side], a, sizeof(*a));
	if (bind(fd, (struct sockaddr *)&g->addr[side], alen) == -1 ||
	    getsockname(fd, (struct sockaddr *)&g->addr[side],
	    &g->addrlen[side]) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

struct gen *
gen_new(const char *addr, int payload, int bidir)
{
	struct sockaddr_storage	 a;
	struct cmsghdr		*c;
	struct gen		*g;
	socklen_t		 alen;
	uint16_t		 seg;
	int			 i, k, s;

	if (parse_ip(addr, 0, &a, &alen) == -1) {
		fprintf(stderr, "rtpbench: %s: not an IP address\n", addr);
		return NULL;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->payload = payload;
	g->pktlen = RTP_HDR_MIN + (size_t)payload;
	g->bidir = bidir;
	g->burst = 1;
	g->gso_ok = 1;
	g->fd[0] = g->fd[1] = -1;
	for (s = 0; s < 2; s++) {
		if ((g->fd[s] = gen_socket(g, s, &a, alen)) == -1)
			goto fail;
		for (i = 0; i < TX_BATCH; i++) {
			if ((g->txbuf[s][i] = calloc(GSO_MAX, g->pktlen)) ==
			    NULL)
				goto fail;
			g->txiov[s][i].iov_base = g->txbuf[s][i];
			g->tx[s][i].msg_hdr.msg_iov = &g->txiov[s][i];
			g->tx[s][i].msg_hdr.msg_iovlen = 1;
			for (k = 0; k < GSO_MAX; k++)	/* RTP v2, PT 0 */
				g->txbuf[s][i][k * g->pktlen] = 0x80;
			c = &g->txcm[s][i].h;
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			seg = (uint16_t)g->pktlen;
			memcpy(CMSG_DATA(c), &seg, sizeof(seg));
		}
	}
	for (i = 0; i < RX_BATCH; i++) {
		g->rxiov[i].iov_base = g->rxbuf[i];
		g->rxiov[i].iov_len = PKT_MAX;
		g->rx[i].msg_hdr.msg_iov = &g->rxiov[i];
		g->rx[i].msg_hdr.msg_iovlen = 1;
		g->rx[i].msg_hdr.msg_control = &g->rxcm[i];
	}
	return g;
fail:
	perror("rtpbench: generator sockets");
	gen_free(g);
	return NULL;
}

void
gen_free(struct gen *g)
{
	int i;

	if (g == NULL)
		return;
	for (i = 0; i < TX_BATCH; i++) {
		free(g->txbuf[0][i]);
		free(g->txbuf[1][i]);
	}
	if (g->fd[0] != -1)
		close(g->fd[0]);
	if (g->fd[1] != -1)
		close(g->fd[1]);
	free(g->st);
	free(g);
}

/* The address of side 0 (the callers) or 1 (the destinations). */
void
gen_addr(struct gen *g, int side, struct sockaddr_storage *a, socklen_t *len)
{
	memcpy(a, &g->addr[side], sizeof(*a));
	*len = g->addrlen[side];
}

/*
 * A stream per session and direction: stream 2i (or i one way) is session
 * i forward, from the callers to its listen port; 2i + 1 the reverse, from
 * the destinations to its forward port.
 */
void
gen_set_sessions(struct gen *g, const struct bsession *bs, int n, int bidir)
{
	int i, per = bidir ? 2 : 1;

	free(g->st);
	g->bidir = bidir;
	g->nst = n * per;
	g->next = 0;
	if ((g->st = calloc((size_t)g->nst, sizeof(*g->st))) == NULL) {
		perror("rtpbench");
		exit(1);
	}
	for (i = 0; i < n; i++) {
		memcpy(&g->st[i * per].to, &bs[i].listen, sizeof(bs[i].listen));
		g->st[i * per].tolen = bs[i].listenlen;
		g->st[i * per].side = 0;
		if (bidir) {
			memcpy(&g->st[i * 2 + 1].to, &bs[i].forward,
			    sizeof(bs[i].forward));
			g->st[i * 2 + 1].tolen = bs[i].forwardlen;
			g->st[i * 2 + 1].side = 1;
		}
	}
}

int
gen_nstreams(const struct gen *g)
{
	return g->nst;
}

uint64_t
gen_stream_got(const struct gen *g, int i)
{
	return g->st[i].got;
}

static void
gen_flush(struct gen *g, int side)
{
	int64_t	now = real_ns();
	int	i = 0, k, q, n = g->ntx[side];

	/* stamped now: the batch leaves now */
	for (k = 0; k < n; k++)
		for (q = 0; q < g->txk[side][k]; q++)
			memcpy(g->txbuf[side][k] + (size_t)q * g->pktlen +
			    RTP_HDR_MIN, &now, sizeof(now));
	while (i < n) {
		k = sendmmsg(g->fd[side], &g->tx[side][i],
		    (unsigned int)(n - i), 0);
		if (k > 0) {
			while (k-- > 0)
				g->sent += (uint64_t)g->txk[side][i++];
		} else if (k == -1 && errno == EINTR)
			continue;
		else if (k == 0 || errno == EAGAIN || errno == ENOBUFS) {
			while (i < n)
				g->unsent += (uint64_t)g->txk[side][i++];
			break;
		} else {
			if (g->txk[side][i] > 1 && g->gso_ok) {
				/* no UDP GSO here: one by one from now on */
				fprintf(stderr, "rtpbench: UDP_SEGMENT: %s: "
				    "no bursts\n", strerror(errno));
				g->gso_ok = 0;
			}
			g->unsent += (uint64_t)g->txk[side][i++];
		}
	}
	g->ntx[side] = 0;
}

/* A burst for stream j: g->burst packets, one datagram each. */
static void
gen_queue(struct gen *g, int j)
{
	struct gstream	*s = &g->st[j];
	int		 side = s->side, k = g->ntx[side], q;
	int		 nq = g->gso_ok ? g->burst : 1;
	uint8_t		*p;
	uint32_t	 ts, ssrc = 0x10000u + (uint32_t)j, idx = (uint32_t)j;
	struct msghdr	*m = &g->tx[side][k].msg_hdr;

	for (q = 0; q < nq; q++) {
		p = g->txbuf[side][k] + (size_t)q * g->pktlen;
		ts = (uint32_t)s->seq * 160;
		p[2] = s->seq >> 8;
		p[3] = s->seq & 0xff;
		p[4] = ts >> 24;
		p[5] = ts >> 16;
		p[6] = ts >> 8;
		p[7] = ts & 0xff;
		p[8] = ssrc >> 24;
		p[9] = ssrc >> 16;
		p[10] = ssrc >> 8;
		p[11] = ssrc & 0xff;
		memcpy(p + RTP_HDR_MIN + 8, &idx, sizeof(idx));
		memcpy(p + RTP_HDR_MIN + 12, &g->step, sizeof(g->step));
		s->seq++;
	}
	g->txiov[side][k].iov_len = (size_t)nq * g->pktlen;
	g->txk[side][k] = nq;
	m->msg_name = &s->to;
	m->msg_namelen = s->tolen;
	m->msg_control = nq > 1 ? &g->txcm[side][k] : NULL;
	m->msg_controllen = nq > 1 ? sizeof(g->txcm[side][k]) : 0;
	if (++g->ntx[side] == TX_BATCH)
		gen_flush(g, side);
}

/* At least n packets, round robin over the streams; how many. */
static int
gen_send(struct gen *g, int n)
{
	int done = 0, nq = g->gso_ok ? g->burst : 1;

	while (done < n) {
		gen_queue(g, g->next);
		if (++g->next == g->nst)
			g->next = 0;
		done += nq;
	}
	if (g->ntx[0] > 0)
		gen_flush(g, 0);
	if (g->ntx[1] > 0)
		gen_flush(g, 1);
	return done;
}

/* One recvmmsg on a side; the number of datagrams. */
static int
gen_recv(struct gen *g, int side)
{
	struct msghdr	*m;
	struct cmsghdr	*c;
	struct timespec	 ts;
	int64_t		 sent, rxns;
	uint32_t	 idx, step, ovfl = g->ovfl[side];
	int		 i, n;

	for (i = 0; i < RX_BATCH; i++)
		g->rx[i].msg_hdr.msg_controllen = sizeof(g->rxcm[i]);
	n = recvmmsg(g->fd[side], g->rx, RX_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return 0;
	for (i = 0; i < n; i++) {
		m = &g->rx[i].msg_hdr;
		rxns = 0;
		for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
			if (c->cmsg_level != SOL_SOCKET)
				continue;
			if (c->cmsg_type == SCM_TIMESTAMPNS) {
				memcpy(&ts, CMSG_DATA(c), sizeof(ts));
				rxns = (int64_t)ts.tv_sec * 1000000000 +
				    ts.tv_nsec;
			} else if (c->cmsg_type == SO_RXQ_OVFL)
				memcpy(&ovfl, CMSG_DATA(c), sizeof(ovfl));
		}
		if (g->rx[i].msg_len < RTP_HDR_MIN + STAMP_LEN)
			continue;
		memcpy(&sent, g->rxbuf[i] + RTP_HDR_MIN, sizeof(sent));
		memcpy(&idx, g->rxbuf[i] + RTP_HDR_MIN + 8, sizeof(idx));
		memcpy(&step, g->rxbuf[i] + RTP_HDR_MIN + 12, sizeof(step));
		if (step != g->step || idx >= (uint32_t)g->nst) {
			g->stale++;
			continue;
		}
		if (rxns == 0)
			rxns = real_ns();
		hist_add(&g->lat, rxns - sent);
		if (rxns - sent > LATE_NS)
			g->late++;
		g->received++;
		g->st[idx].got++;
	}
	g->ovfl[side] = ovfl;
	return n;
}

/* Everything there is on both sockets; the number of datagrams. */
static int
gen_recv_all(struct gen *g, int max_batches)
{
	int b, n, got = 0, side;

	for (side = g->bidir ? 0 : 1; side < 2; side++)
		for (b = 0; b < max_batches; b++) {
			got += (n = gen_recv(g, side));
			if (n < RX_BATCH)
				break;
		}
	return got;
}

static void
gen_begin(struct gen *g)
{
	int i;

	g->step++;
	g->ovfl0[0] = g->ovfl[0];
	g->ovfl0[1] = g->ovfl[1];
	g->sent = g->unsent = g->received = g->late = g->stale = 0;
	hist_reset(&g->lat);
	for (i = 0; i < g->nst; i++)
		g->st[i].got = 0;
}

/* Receive until nothing came for QUIET_NS, or DRAIN_MAX_NS. */
static void
gen_drain(struct gen *g)
{
	int64_t start = mono_ns(), last = start, now;

	while (!bench_stop) {
		now = mono_ns();
		if (gen_recv_all(g, 64) > 0)
			last = now;
		else if (now - last > QUIET_NS || now - start > DRAIN_MAX_NS)
			break;
	}
}

/*
 * A packet through every stream, forward ones first (they latch the
 * callers' address), again every 300 ms for those that have not arrived,
 * for up to 10 s.  0 when each has, -1 otherwise.
 */
int
gen_warmup(struct gen *g)
{
	int64_t	until = mono_ns() + 10000000000LL, next = 0, now;
	int	i, pass, per = g->bidir ? 2 : 1, missing = 1, first = -1;

	g->burst = 1;
	for (pass = 0; pass < per; pass++) {
		gen_begin(g);
		while (!bench_stop && (now = mono_ns()) < until) {
			for (i = pass, missing = 0; i < g->nst; i += per)
				if (g->st[i].got == 0)
					missing++;
			if (missing == 0)
				break;
			if (now >= next) {
				for (i = pass; i < g->nst; i += per)
					if (g->st[i].got == 0)
						gen_queue(g, i);
				if (g->ntx[0] > 0)
					gen_flush(g, 0);
				if (g->ntx[1] > 0)
					gen_flush(g, 1);
				next = now + 300000000;
			}
			gen_recv_all(g, 64);
		}
		if (missing > 0)
			break;
	}
	if (bench_stop)
		return -1;
	if (missing > 0) {
		for (i = 0; i < g->nst && first == -1; i++)
			if (g->st[i].got == 0 && i % per == pass)
				first = i;
		fprintf(stderr, "rtpbench: %d stream(s) relay nothing (the "
		    "first: session %d, %s)\n", missing, first / per,
		    pass == 1 ? "reverse" : "forward");
		return -1;
	}
	gen_drain(g);
	return 0;
}

double
step_loss(const struct step *s)
{
	uint64_t ok = s->received - s->late;

	if (s->sent == 0)
		return 1;
	return (double)(s->sent - (ok < s->sent ? ok : s->sent)) /
	    (double)s->sent;
}

/*
 * A step: rate packets per second in all (0: as fast as rtpbench can)
 * for secs, round robin over the streams, burst packets to a stream at a
 * time; then what is late arrives.
 * The relay's CPU time covers sending and the drain, the cores' the
 * sending.
 */
int
gen_step(struct gen *g, double rate, double secs, int burst,
    const struct target *t, const struct bopts *o, struct step *r)
{
	struct corestat	 rc0, rc1, bc0, bc1;
	struct cpu	 c0;
	double		 self0, self1;
	uint64_t	 w0, w1;
	int64_t		 t0, tend, now, idle = 0;
	uint64_t	 k = 0, due, n;
	int		 gone;

	gen_begin(g);
	memset(r, 0, sizeof(*r));
	r->rate = rate;
	g->burst = burst < 1 ? 1 : burst > GSO_MAX ? GSO_MAX : burst;
	r->burst = g->gso_ok ? g->burst : 1;
	cpu_sample(t->pid, &c0);
	core_sample(o->relay_cpu, &rc0);
	core_sample(o->bench_cpu, &bc0);
	self0 = self_cpu();
	w0 = sched_wait_ns(getpid());
	t0 = mono_ns();
	tend = t0 + (int64_t)(secs * 1e9);
	while (!bench_stop && (now = mono_ns()) < tend) {
		if (rate > 0) {
			due = (uint64_t)((double)(now - t0) * rate / 1e9) + 1;
			n = due > k ? due - k : 0;
		} else
			n = BURST_MAX;
		if (n > BURST_MAX)
			n = BURST_MAX;
		if (n > 0)
			k += (uint64_t)gen_send(g, (int)n);
		if (gen_recv_all(g, 8) == 0 && n == 0)
			idle += mono_ns() - now;	/* nothing to do */
	}
	now = mono_ns();
	r->secs = (double)(now - t0) / 1e9;
	r->bench_load = 1 - (double)idle / (double)(now - t0);
	core_sample(o->relay_cpu, &rc1);
	core_sample(o->bench_cpu, &bc1);
	self1 = self_cpu();
	w1 = sched_wait_ns(getpid());
	r->received_window = g->received;
	gen_drain(g);
	cpu_sample(t->pid, &r->after);

	r->sent = g->sent;
	r->unsent = g->unsent;
	r->received = g->received;
	r->late = g->late;
	r->stale = g->stale;
	r->bench_drops = (uint64_t)(g->ovfl[0] - g->ovfl0[0]) +
	    (uint64_t)(g->ovfl[1] - g->ovfl0[1]);
	r->lat = &g->lat;
	r->relay_cpu = cpu_delta(&c0, &r->after, &gone);
	if (c0.n > 0 && r->after.n > 0 && c0.pid[0] == r->after.pid[0])
		r->relay_cpu_main = (double)(r->after.ticks[0] - c0.ticks[0]) /
		    (double)sysconf(_SC_CLK_TCK);
	r->bench_cpu = self1 - self0;
	r->relay_wait = cpu_wait_delta(&c0, &r->after);
	r->bench_wait = (double)(w1 - w0) / 1e9;
	core_delta(&rc0, &rc1, &r->relay_busy, &r->relay_steal);
	core_delta(&bc0, &bc1, &r->bench_busy, &r->bench_steal);
	return bench_stop ? -1 : 0;
}
