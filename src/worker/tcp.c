/*
 * TCP sessions inside a worker.  The master binds a listening socket on
 * the listen endpoint and a socket on the forward endpoint; the worker
 * accepts the caller's connection, connects the forward socket to the
 * destination, and moves the bytes both ways.
 *
 * No octet is held in this process: each chunk is peeked from one socket,
 * sent to the other, and only what the other took is consumed.  The
 * socket buffers are the session's bounded buffers, and a side that does
 * not read stops the other side being read (its receive window closes).
 * A worker killed in the middle therefore loses nothing: what it had sent
 * but not yet consumed is found again from the kernel's counters of the
 * two connections (tcp_pending) and consumed by the worker that takes
 * over, which the master hands the same sockets (it keeps a copy of the
 * accepted connection too).
 *
 * End of stream on one side is passed on as a half-close (shutdown of the
 * other side's sending); when both directions have ended, the master
 * closes the session.  A reset or a refused connection puts the session
 * in ERROR and resets the other connection.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "acl.h"
#include "worker.h"

#define TCP_CHUNK	(64 * 1024)
#define TCP_BUDGET	8	/* chunks per direction and wakeup */

/* Connection states (include/net/tcp_states.h; glibc's clash with TCP_INFO). */
enum {
	ST_FIN_WAIT1 = 4,
	ST_FIN_WAIT2 = 5,
	ST_TIME_WAIT = 6,
	ST_CLOSE = 7,
	ST_CLOSE_WAIT = 8,
	ST_LAST_ACK = 9,
	ST_CLOSING = 11,
};

#define UP_CALLER	0x01u
#define UP_DEST		0x02u

struct tcp_sess;

/* One direction: read src, write dst. */
struct tcp_dir {
	struct tcp_sess	*ts;
	int		 d;		/* SHM_DIR_FWD: caller -> destination */
	struct event	*rev;		/* src readable */
	struct event	*wev;		/* dst writable, while dst is full */
	int		 done;		/* end of stream passed on */
};

struct tcp_sess {
	struct tcp_relay	*tr;
	struct shm_slot		*slot;
	uint32_t		 idx, gen;
	int			 lfd, ffd, afd;	/* listen, forward, accepted */
	struct event		*lev;		/* lfd readable */
	struct event		*cev;		/* ffd writable: connected */
	struct tcp_dir		 dir[2];
	int			 failed;
	int			 active;
	char			 error[120];
	uint32_t		 clock_rate;
	struct sockaddr_storage	 dest;
	socklen_t		 destlen;
};

struct tcp_relay {
	struct wctx		*ctx;		/* the relay's: reports, rules */
	struct event_base	*base;
	struct shm_table	*shm;
	struct tcp_sess		**sess;		/* by slot */
	int			 count;
	uint8_t			 buf[TCP_CHUNK];
};

/*
 * For the tests only: with RTPPROXYD_FAILPOINT=tcp-send:N in its
 * environment, a worker dies after its Nth send, before it consumes what
 * it sent: the worst moment, which tcp_pending must recover from.
 */
static long	tcp_failpoint = -1;

static void	tcp_fail(struct tcp_sess *, int, int, const char *);
static void	tcp_start(struct tcp_sess *);

static int64_t
tcp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The fd a direction reads from, and the one it writes to. */
static int
tcp_src(const struct tcp_dir *td)
{
	return td->d == SHM_DIR_FWD ? td->ts->afd : td->ts->ffd;
}

static int
tcp_dst(const struct tcp_dir *td)
{
	return td->d == SHM_DIR_FWD ? td->ts->ffd : td->ts->afd;
}

static int
tcp_state(int fd, struct tcp_info *ti)
{
	socklen_t len = sizeof(*ti);

	memset(ti, 0, sizeof(*ti));
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len);
}

/*
 * A counter and a queue length of fd that go together: what arrives (or
 * is acknowledged) between reading the two moves one and not the other,
 * and a caller's first octets arriving just then would be taken for
 * octets sent before, and dropped.  Read the counter on both sides of the
 * queue length until it has not moved; nothing else reads from or writes
 * to the socket meanwhile.
 */
static int
tcp_counted(int fd, unsigned long req, struct tcp_info *ti, int *q)
{
	struct tcp_info	again;
	int		tries;

	for (tries = 0; tries < 100; tries++) {
		if (tcp_state(fd, ti) == -1 || ioctl(fd, req, q) == -1 ||
		    tcp_state(fd, &again) == -1)
			return -1;
		if (again.tcpi_bytes_received == ti->tcpi_bytes_received &&
		    again.tcpi_bytes_acked == ti->tcpi_bytes_acked &&
		    again.tcpi_state == ti->tcpi_state)
			return 0;
	}
	errno = EAGAIN;
	return -1;
}

/*
 * Octets sent to dst but not consumed from src: what a worker that died
 * between the two had in hand.  From the kernel's counters: the octets
 * written to dst are those acknowledged plus those still queued, less
 * its SYN if dst connected out and its FIN if it sent one; the octets
 * consumed from src are those received less those still queued, less
 * its FIN if one came.  -1 if the kernel does not say.
 */
int64_t
tcp_pending(int src, int dst, int dst_connected_out)
{
	struct tcp_info	si, di;
	int		inq = 0, outq = 0;
	int64_t		written, consumed;

	if (tcp_counted(src, SIOCINQ, &si, &inq) == -1 ||
	    tcp_counted(dst, SIOCOUTQ, &di, &outq) == -1)
		return -1;
	written = (int64_t)di.tcpi_bytes_acked + outq;
	if (dst_connected_out && written > 0)
		written--;
	switch (di.tcpi_state) {
	case ST_FIN_WAIT1:
	case ST_FIN_WAIT2:
	case ST_CLOSING:
	case ST_TIME_WAIT:
	case ST_LAST_ACK:
	case ST_CLOSE:		/* both ends closed in order */
		written--;
		break;
	}
	consumed = (int64_t)si.tcpi_bytes_received - inq;
	switch (si.tcpi_state) {
	case ST_CLOSE_WAIT:
	case ST_LAST_ACK:
	case ST_CLOSING:
	case ST_TIME_WAIT:
	case ST_CLOSE:
		consumed--;
		break;
	}
	return written > consumed ? written - consumed : 0;
}

static void
tcp_seen(struct tcp_sess *ts, int d, int64_t ns)
{
	atomic_store_explicit(&ts->slot->dir[d].last_packet_ms, ns / 1000000,
	    memory_order_relaxed);
}

static const char *
tcp_side(int caller)
{
	return caller ? "the caller" : "the destination";
}

/* Move what src has to dst, as far as dst takes it. */
static void
tcp_pump(struct tcp_dir *td)
{
	struct tcp_sess		*ts = td->ts;
	struct tcp_relay	*tr = ts->tr;
	struct shm_dir		*d = &ts->slot->dir[td->d];
	int			 src = tcp_src(td), dst = tcp_dst(td);
	int			 b, caller_src = td->d == SHM_DIR_FWD;
	ssize_t			 n, k;
	int64_t			 ns;

	for (b = 0; b < TCP_BUDGET && !ts->failed; b++) {
		n = recv(src, tr->buf, sizeof(tr->buf), MSG_PEEK |
		    MSG_DONTWAIT);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				return;
			tcp_fail(ts, caller_src, errno, NULL);
			return;
		}
		if (n == 0) {
			/* End of stream: pass the half-close on. */
			event_del(td->rev);
			if (shutdown(dst, SHUT_WR) == -1 && errno != ENOTCONN)
				log_warn("slot %u: shutdown", ts->idx);
			td->done = 1;
			ts->slot->tcp[td->d].eof = 1;
			log_debug("slot %u: %s ended its stream", ts->idx,
			    tcp_side(caller_src));
			if (ts->dir[td->d ^ 1].done)
				wctx_report(ts->tr->ctx, IPC_CLOSED, ts->idx,
				    ts->gen, 0, NULL);
			return;
		}
		k = send(dst, tr->buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				k = 0;
			else if (errno == EINTR)
				continue;
			else {
				tcp_fail(ts, !caller_src, errno, NULL);
				return;
			}
		}
		/* A death at the worst moment, not one this session caused. */
		if (k > 0 && tcp_failpoint > 0 && --tcp_failpoint == 0) {
			wctx_idle(tr->ctx);
			_exit(99);
		}
		if (k > 0) {
			ns = tcp_now_ns();
			tcp_frames(&ts->slot->tcp[td->d], d, ts->clock_rate,
			    tr->buf, (size_t)k, ns);
			SHM_ADD(&d->bytes_received, (uint64_t)k);
			SHM_ADD(&d->bytes_sent, (uint64_t)k);
			tcp_seen(ts, td->d, ns);
			/* What was sent may go from src now, and no more. */
			if (recv(src, tr->buf, (size_t)k, MSG_TRUNC |
			    MSG_DONTWAIT) != k)
				log_warn("slot %u: consuming %zd octets",
				    ts->idx, k);
		}
		if (k < n) {
			/* dst is full: stop reading until it drains. */
			event_del(td->rev);
			event_add(td->wev, NULL);
			return;
		}
		if (n < (ssize_t)sizeof(tr->buf))
			return;
	}
}

static void
tcp_readable(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_dir	*td = arg;
	struct wctx	*x = td->ts->tr->ctx;

	wctx_busy(x, td->ts->idx, td->ts->gen);
	tcp_pump(td);
	wctx_idle(x);
}

static void
tcp_writable(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_dir	*td = arg;
	struct wctx	*x = td->ts->tr->ctx;

	if (td->done || td->ts->failed)
		return;
	event_add(td->rev, NULL);
	wctx_busy(x, td->ts->idx, td->ts->gen);
	tcp_pump(td);
	wctx_idle(x);
}

/* Close fd so that the peer sees a reset, not an orderly end. */
static void
tcp_reset(int fd)
{
	struct linger l = { 1, 0 };

	if (fd == -1)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	/*
	 * The master holds a copy: shutdown reaches the connection itself,
	 * and the master closes its copy on IPC_ERROR, which sends the RST.
	 */
	(void)shutdown(fd, SHUT_RDWR);
	close(fd);
}

static void
tcp_events_del(struct tcp_sess *ts)
{
	int d;

	for (d = 0; d < 2; d++) {
		if (ts->dir[d].rev != NULL) {
			event_free(ts->dir[d].rev);
			ts->dir[d].rev = NULL;
		}
		if (ts->dir[d].wev != NULL) {
			event_free(ts->dir[d].wev);
			ts->dir[d].wev = NULL;
		}
	}
	if (ts->cev != NULL) {
		event_free(ts->cev);
		ts->cev = NULL;
	}
}

/*
 * A connection failed: report it (the session goes to ERROR), reset both
 * connections, keep listening only to turn callers away.
 */
static void
tcp_fail(struct tcp_sess *ts, int caller, int err, const char *what)
{
	char	reason[120], a[INET6_ADDRSTRLEN + 8];

	if (ts->failed)
		return;
	ts->failed = 1;
	if (what != NULL)
		snprintf(reason, sizeof(reason), "%s", what);
	else if (err == ECONNRESET || err == EPIPE)
		/*
		 * A send after the peer's RST fails with EPIPE.  A reset that
		 * comes before the worker saw its connect complete is the
		 * same: the destination had accepted, then reset.
		 */
		snprintf(reason, sizeof(reason), "connection reset by %s",
		    tcp_side(caller));
	else if (!caller && !(atomic_load(&ts->slot->tcp_up) & UP_DEST))
		snprintf(reason, sizeof(reason), "connection to %s: %s",
		    sa_ntop((struct sockaddr *)&ts->dest, a, sizeof(a)),
		    err == ECONNREFUSED ? "refused" : strerror(err));
	else
		snprintf(reason, sizeof(reason), "connection with %s failed: "
		    "%s", tcp_side(caller), strerror(err));
	log_info("slot %u: %s", ts->idx, reason);
	snprintf(ts->error, sizeof(ts->error), "%s", reason);
	tcp_events_del(ts);
	tcp_reset(ts->afd);
	tcp_reset(ts->ffd);
	ts->afd = ts->ffd = -1;
	wctx_report(ts->tr->ctx, IPC_ERROR, ts->idx, ts->gen, err, reason);
}

static void
tcp_connected(struct tcp_sess *ts)
{
	atomic_fetch_or(&ts->slot->tcp_up, UP_DEST);
	tcp_seen(ts, SHM_DIR_REV, tcp_now_ns());
	log_debug("slot %u: connected to the destination", ts->idx);
	ts->active = 1;
	wctx_report(ts->tr->ctx, IPC_ACTIVE, ts->idx, ts->gen, 0, NULL);
	tcp_start(ts);
}

static void
tcp_connect_done(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_sess	*ts = arg;
	socklen_t	 len = sizeof(int);
	int		 err = 0;

	if (getsockopt(ts->ffd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	wctx_busy(ts->tr->ctx, ts->idx, ts->gen);
	if (err != 0)
		tcp_fail(ts, 0, err, NULL);
	else
		tcp_connected(ts);
	wctx_idle(ts->tr->ctx);
}

/* Connect the forward socket to the destination (again, after a restart). */
static void
tcp_connect(struct tcp_sess *ts)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);

	if (getpeername(ts->ffd, (struct sockaddr *)&ss, &len) == 0) {
		tcp_connected(ts);
		return;
	}
	if (connect(ts->ffd, (struct sockaddr *)&ts->dest, ts->destlen) == 0 ||
	    errno == EISCONN) {
		tcp_connected(ts);
		return;
	}
	if (errno != EINPROGRESS && errno != EALREADY && errno != EINTR) {
		tcp_fail(ts, 0, errno, NULL);
		return;
	}
	ts->cev = event_new(ts->tr->base, ts->ffd, EV_WRITE, tcp_connect_done,
	    ts);
	if (ts->cev == NULL || event_add(ts->cev, NULL) == -1)
		tcp_fail(ts, 0, ENOMEM, NULL);
}

/*
 * Both legs are up: after a restart, first consume what the dead worker
 * had sent, then relay both ways.
 */
static void
tcp_start(struct tcp_sess *ts)
{
	struct tcp_dir	*td;
	int64_t		 pending;
	ssize_t		 k;
	int		 d;

	for (d = 0; d < 2; d++) {
		td = &ts->dir[d];
		td->ts = ts;
		td->d = d;
		td->done = ts->slot->tcp[d].eof;
		if (!td->done && (pending = tcp_pending(tcp_src(td),
		    tcp_dst(td), d == SHM_DIR_FWD)) > 0) {
			log_info("slot %u: %lld octets %s were sent on by "
			    "the worker before; not again", ts->idx,
			    (long long)pending, d == SHM_DIR_FWD ?
			    "from the caller" : "from the destination");
			while (pending > 0) {
				k = recv(tcp_src(td), ts->tr->buf, (size_t)
				    (pending < TCP_CHUNK ? pending : TCP_CHUNK),
				    MSG_TRUNC | MSG_DONTWAIT);
				if (k <= 0)
					break;
				pending -= k;
			}
		}
		td->rev = event_new(ts->tr->base, tcp_src(td),
		    EV_READ | EV_PERSIST, tcp_readable, td);
		td->wev = event_new(ts->tr->base, tcp_dst(td), EV_WRITE,
		    tcp_writable, td);
		if (td->rev == NULL || td->wev == NULL) {
			tcp_fail(ts, 0, ENOMEM, "worker out of memory");
			return;
		}
		if (!td->done)
			event_add(td->rev, NULL);
	}
	if (ts->dir[0].done && ts->dir[1].done)
		wctx_report(ts->tr->ctx, IPC_CLOSED, ts->idx, ts->gen, 0,
		    NULL);
}

/* The caller connects: the first one is the session's, others are reset. */
static void
tcp_accept_all(struct tcp_sess *ts)
{
	struct sockaddr_storage	 ss;
	struct ipc_hdr		 h;
	socklen_t		 len;
	char			 a[INET6_ADDRSTRLEN + 8];
	int			 c, i, rule;

	for (i = 0; i < 16; i++) {
		len = sizeof(ss);
		c = accept4(ts->lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("slot %u: accept", ts->idx);
			return;
		}
		if (ts->afd != -1 || ts->failed) {
			log_debug("slot %u: another connection from %s "
			    "turned away", ts->idx, sa_ntop((struct sockaddr *)
			    &ss, a, sizeof(a)));
			tcp_reset(c);
			continue;
		}
		/* Reverse media goes to whoever connected: the same rules. */
		if (acl_check(wctx_acl(ts->tr->ctx), (struct sockaddr *)&ss,
		    ACL_TCP_PEER, &rule) != ACL_ALLOW) {
			log_info("slot %u: connection from %s refused by the "
			    "destination rules", ts->idx,
			    sa_ntop((struct sockaddr *)&ss, a, sizeof(a)));
			SHM_ADD(&ts->slot->dir[SHM_DIR_FWD].dropped_source, 1);
			tcp_reset(c);
			continue;
		}
		ts->afd = c;
		shm_addr_from_sa(&ts->slot->latch_rtp, (struct sockaddr *)&ss);
		atomic_fetch_or_explicit(&ts->slot->latched, 1,
		    memory_order_release);
		atomic_fetch_or(&ts->slot->tcp_up, UP_CALLER);
		tcp_seen(ts, SHM_DIR_FWD, tcp_now_ns());
		log_debug("slot %u: caller %s connected", ts->idx,
		    sa_ntop((struct sockaddr *)&ss, a, sizeof(a)));
		/* The master keeps a copy, for the worker after this one. */
		ipc_init(&h, IPC_TCP_ACCEPTED, 0, ts->idx, ts->gen);
		wctx_tell(ts->tr->ctx, &h, &c, 1);
		tcp_connect(ts);
	}
}

static void
tcp_accept(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_sess	*ts = arg;

	wctx_busy(ts->tr->ctx, ts->idx, ts->gen);
	tcp_accept_all(ts);
	wctx_idle(ts->tr->ctx);
}

struct tcp_relay *
tcp_new(struct wctx *x, struct event_base *base)
{
	struct shm_table	*shm = x->shm;
	struct tcp_relay	*tr;
	const char		*fp;

	tr = xcalloc(1, sizeof(*tr));
	if ((fp = getenv("RTPPROXYD_FAILPOINT")) != NULL &&
	    strncmp(fp, "tcp-send:", 9) == 0)
		tcp_failpoint = strtol(fp + 9, NULL, 10);
	tr->ctx = x;
	tr->base = base;
	tr->shm = shm;
	tr->sess = xcalloc(shm->nslots, sizeof(*tr->sess));
	return tr;
}

void
tcp_free(struct tcp_relay *tr)
{
	uint32_t i;

	if (tr == NULL)
		return;
	for (i = 0; i < tr->shm->nslots && tr->count > 0; i++)
		tcp_remove(tr, i);
	free(tr->sess);
	free(tr);
}

int
tcp_count(const struct tcp_relay *tr)
{
	return tr != NULL ? tr->count : 0;
}

/*
 * Relay slot over TCP with the master's sockets: [listen], [listen,
 * forward] or, once a caller was accepted, [listen, forward, accepted].
 * On success the relay owns them; on -1 the caller still does.
 */
int
tcp_add(struct tcp_relay *tr, uint32_t slot, uint32_t gen, int *fds,
    int nfds)
{
	struct tcp_sess	*ts;
	struct shm_slot	*s;
	int		 i;

	if ((s = shm_slot(tr->shm, slot)) == NULL || nfds < 1 || nfds > 3) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < nfds; i++)
		if (set_nonblock(fds[i]) == -1)
			return -1;
	tcp_remove(tr, slot);
	ts = xcalloc(1, sizeof(*ts));
	ts->tr = tr;
	ts->slot = s;
	ts->idx = slot;
	ts->gen = gen;
	ts->lfd = fds[0];
	ts->ffd = nfds > 1 ? fds[1] : -1;
	ts->afd = nfds > 2 ? fds[2] : -1;
	ts->clock_rate = s->clock_rate;
	ts->destlen = shm_addr_to_sa(&s->dest, &ts->dest);
	/* Without its forward socket a session has failed for good. */
	ts->failed = ts->ffd == -1 ||
	    atomic_load(&s->state) == SHM_ERROR;
	ts->lev = event_new(tr->base, ts->lfd, EV_READ | EV_PERSIST,
	    tcp_accept, ts);
	if (ts->lev == NULL || event_add(ts->lev, NULL) == -1) {
		if (ts->lev != NULL)
			event_free(ts->lev);
		free(ts);
		errno = ENOMEM;
		return -1;
	}
	tr->sess[slot] = ts;
	tr->count++;
	if (ts->afd != -1 && !ts->failed)
		tcp_connect(ts);
	return 0;
}

void
tcp_each(struct tcp_relay *tr, relay_each_fn *fn, void *arg)
{
	struct tcp_sess	*ts;
	uint32_t	 slot, st;
	int		 fds[3], n;

	for (slot = 0; tr != NULL && slot < tr->shm->nslots; slot++) {
		if ((ts = tr->sess[slot]) == NULL)
			continue;
		n = 0;
		fds[n++] = ts->lfd;
		if (ts->ffd != -1) {
			fds[n++] = ts->ffd;
			if (ts->afd != -1)
				fds[n++] = ts->afd;
		}
		st = (ts->active ? IPC_HAVE_ACTIVE : 0) |
		    (ts->failed && ts->error[0] != '\0' ? IPC_HAVE_ERROR : 0) |
		    (ts->dir[0].done && ts->dir[1].done ? IPC_HAVE_CLOSED : 0);
		fn(arg, slot, ts->gen, fds, n, st, ts->error);
	}
}

/* Stop relaying slot and close its sockets; 0 if it is not TCP here. */
int
tcp_remove(struct tcp_relay *tr, uint32_t slot)
{
	struct tcp_sess *ts;

	if (tr == NULL || slot >= tr->shm->nslots ||
	    (ts = tr->sess[slot]) == NULL)
		return 0;
	tcp_events_del(ts);
	event_free(ts->lev);
	close(ts->lfd);
	if (ts->ffd != -1)
		close(ts->ffd);
	if (ts->afd != -1)
		close(ts->afd);
	free(ts);
	tr->sess[slot] = NULL;
	tr->count--;
	return 1;
}
