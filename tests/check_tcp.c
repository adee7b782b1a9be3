/*
 * TCP sessions through the real daemon: real callers and destinations on
 * loopback, transfers checked octet for octet both ways, a slow reader,
 * resets, a refused connect, RFC 4571 framed RTP, the session states and
 * events, and workers killed in the middle of a transfer.  The kernel
 * counter arithmetic behind the last (tcp_pending) and the frame parser
 * (tcp_frames) are also tested on their own.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "acl.h"
#include "conf.h"
#include "sessions.h"
#include "worker.h"

#define M_EVENTS	"/rtpproxy.RtpProxy/StreamSessionEvents"
#define ST_CONNECTING_	RTPPROXY__SESSION_STATE__SESSION_STATE_CONNECTING
#define ST_ACTIVE_	RTPPROXY__SESSION_STATE__SESSION_STATE_ACTIVE
#define ST_ERROR_	RTPPROXY__SESSION_STATE__SESSION_STATE_ERROR

static struct daemon	d;

/* A listening TCP socket on 127.0.0.1 (or addr), away from media ports. */
static int
tcp_listen_on(const char *addr, uint16_t *port)
{
	int fd;

	ck_assert_int_ge(fd = harness_tcp_listen(addr, port), 0);
	return fd;
}

/* Connect fd (bound or not) to 127.0.0.1:port; fd. */
static int
tcp_connect_fd(int fd, uint16_t port)
{
	struct sockaddr_in	sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* A connection to 127.0.0.1:port from addr (NULL: any). */
static int
tcp_dial(const char *from, uint16_t port)
{
	struct sockaddr_in	sin;
	int			fd;

	ck_assert_int_ge(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	if (from != NULL) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		inet_pton(AF_INET, from, &sin.sin_addr);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin,
		    sizeof(sin)), 0);
	}
	return tcp_connect_fd(fd, port);
}

static int
accept_within(int lfd, int ms)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };

	if (poll(&pfd, 1, ms * harness_slow()) != 1)
		return -1;
	return accept(lfd, NULL, NULL);
}

static void
nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static uint8_t
pattern(uint64_t i, int salt)
{
	return (uint8_t)(i * 7 + i / 251 + (uint64_t)salt * 13);
}

/* One direction of a transfer: a is the writer, b the reader. */
struct flow {
	int		 w, r;
	uint64_t	 total, sent, got;
	int		 salt, bad, eof;
	int		 shut;
};

/*
 * Run both flows until everything has arrived (each writer half-closes
 * when done) or ms have passed; call tick(arg, progress) as it goes.
 */
static void
transfer(struct flow *f, int n, int ms, void (*tick)(void *, uint64_t),
    void *arg)
{
	static uint8_t	 buf[65536];
	struct pollfd	 pfd[4];
	int64_t		 end = mono_ms() + ms * harness_slow();
	uint64_t	 done;
	ssize_t		 k;
	size_t		 want, j;
	int		 i, np;

	for (i = 0; i < n; i++) {
		nonblock(f[i].w);
		nonblock(f[i].r);
	}
	for (;;) {
		done = 0;
		for (i = 0; i < n; i++)
			done += f[i].got;
		if (tick != NULL)
			tick(arg, done);
		for (i = 0; i < n && f[i].eof; i++)
			;
		if (i == n || mono_ms() > end)
			return;
		np = 0;
		for (i = 0; i < n; i++) {
			pfd[np].fd = f[i].sent < f[i].total ? f[i].w : -1;
			pfd[np++].events = POLLOUT;
			pfd[np].fd = f[i].eof ? -1 : f[i].r;
			pfd[np++].events = POLLIN;
		}
		poll(pfd, (nfds_t)np, 100);
		for (i = 0; i < n; i++) {
			struct flow *fl = &f[i];

			if (fl->sent < fl->total &&
			    (pfd[2 * i].revents & POLLOUT)) {
				want = sizeof(buf);
				if (want > fl->total - fl->sent)
					want = (size_t)(fl->total - fl->sent);
				for (j = 0; j < want; j++)
					buf[j] = pattern(fl->sent + j, fl->salt);
				k = send(fl->w, buf, want, MSG_NOSIGNAL);
				if (k > 0)
					fl->sent += (uint64_t)k;
			}
			if (fl->sent == fl->total && !fl->shut) {
				shutdown(fl->w, SHUT_WR);
				fl->shut = 1;
			}
			if (!fl->eof && (pfd[2 * i + 1].revents &
			    (POLLIN | POLLHUP | POLLERR))) {
				k = recv(fl->r, buf, sizeof(buf), 0);
				if (k == 0 || (k < 0 && errno != EAGAIN))
					fl->eof = 1;
				for (j = 0; k > 0 && j < (size_t)k; j++)
					if (buf[j] != pattern(fl->got + j,
					    fl->salt))
						fl->bad++;
				if (k > 0)
					fl->got += (uint64_t)k;
			}
		}
	}
}

static void
up(const char *extra)
{
	signal(SIGPIPE, SIG_IGN);
	if (harness_start(&d, 1, extra) == -1) {
		fprintf(stderr, "check_tcp: the daemon did not start; log in "
		    "%s\n", d.log);
		setenv("RTPPROXYD_KEEP", "1", 1);
	}
}

static void up_main(void) { up("deny-destination 127.0.0.2"); }
static void up_idle(void) { up("idle-timeout 1\nsetup-timeout 1"); }

static void
up_failpoint(void)
{
	/* Each worker dies after its 40th send. */
	setenv("RTPPROXYD_FAILPOINT", "tcp-send:40", 1);
	up(NULL);
	unsetenv("RTPPROXYD_FAILPOINT");
}

static void
down(void)
{
	harness_stop(&d, 5000);
	harness_cleanup(&d);
}

static struct rpc_client *
client(void)
{
	struct rpc_client *c;

	ck_assert_msg(d.pid > 0, "daemon not running; see %s", d.log);
	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	return c;
}

/* A TCP session to port on 127.0.0.1; its listen port. */
static uint16_t
create_tcp(struct rpc_client *c, const char *id, uint16_t dport)
{
	struct harness_session		 a = { .id = id, .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = dport, .transport = 1 };
	Rtpproxy__CreateSessionResponse	*resp;
	char				 det[256];
	uint16_t			 port;

	ck_assert_msg(harness_create(c, &a, &resp, det, sizeof(det)) == 0,
	    "%s", det);
	ck_assert_int_eq(resp->session->transport,
	    RTPPROXY__TRANSPORT__TRANSPORT_TCP);
	port = (uint16_t)resp->session->listen->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return port;
}

/* The session's state, once it is want (or what it is after 5 s). */
static int
state_becomes(struct rpc_client *c, const char *id, int want)
{
	Rtpproxy__SessionInfo	*si;
	int64_t			 end = mono_ms() + 5000 * harness_slow();
	int			 st;

	for (;;) {
		if (harness_status(c, id, &si) != 0)
			return -1;
		st = si->state;
		harness_info_free(si);
		if (st == want || mono_ms() > end)
			return st;
		usleep(10000);
	}
}

/* --- on their own --------------------------------------------------------- */

/* Two connected TCP sockets on loopback: *a connected out, *b accepted. */
static void
tcp_pair(int *a, int *b)
{
	uint16_t	port;
	int		l = tcp_listen_on("127.0.0.1", &port);

	*a = tcp_dial(NULL, port);
	ck_assert_int_ge(*b = accept(l, NULL, NULL), 0);
	close(l);
}

START_TEST(pending_counts)
{
	uint8_t	buf[4096];
	int	c1, a1, c2, f2;	/* caller -> [a1 | f2] -> dest c2 */

	/* a1: the accepted caller, f2: the forward socket, connected out. */
	tcp_pair(&c1, &a1);
	tcp_pair(&f2, &c2);
	usleep(20000);
	ck_assert_int_eq(tcp_pending(a1, f2, 1), 0);
	ck_assert_int_eq(tcp_pending(f2, a1, 0), 0);

	/* 1000 octets arrive; a worker sends 700 on and dies unconsumed. */
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(send(c1, buf, 1000, 0), 1000);
	usleep(20000);
	ck_assert_int_eq(recv(a1, buf, 300, MSG_PEEK), 300);
	ck_assert_int_eq(send(f2, buf, 700, 0), 700);
	usleep(20000);
	ck_assert_int_eq(tcp_pending(a1, f2, 1), 700);
	/* Consumed: nothing pending, whether the destination read or not. */
	ck_assert_int_eq(recv(a1, buf, 700, MSG_TRUNC), 700);
	ck_assert_int_eq(tcp_pending(a1, f2, 1), 0);
	ck_assert_int_eq(recv(c2, buf, sizeof(buf), 0), 700);
	ck_assert_int_eq(tcp_pending(a1, f2, 1), 0);

	/* The other way, then both ends close: the FINs do not count. */
	ck_assert_int_eq(send(c2, buf, 50, 0), 50);
	usleep(20000);
	ck_assert_int_eq(send(a1, buf, 20, 0), 20);
	usleep(20000);
	ck_assert_int_eq(tcp_pending(f2, a1, 0), 20);
	ck_assert_int_eq(recv(f2, buf, 20, MSG_TRUNC), 20);
	ck_assert_int_eq(tcp_pending(f2, a1, 0), 0);
	shutdown(c1, SHUT_WR);
	shutdown(c2, SHUT_WR);
	usleep(20000);
	ck_assert_int_eq(tcp_pending(a1, f2, 1), 0);
	shutdown(f2, SHUT_WR);
	usleep(20000);
	ck_assert_int_eq(tcp_pending(a1, f2, 1), 0);
	ck_assert_int_eq(recv(f2, buf, sizeof(buf), MSG_TRUNC), 30);
	shutdown(a1, SHUT_WR);
	usleep(20000);
	ck_assert_int_eq(tcp_pending(f2, a1, 0), 0);
	close(c1);
	close(a1);
	close(c2);
	close(f2);
}
END_TEST

/*
 * Octets that arrive while the counters are read are not octets a dead
 * worker sent on: whatever the moment, nothing is pending while nothing
 * was sent.  (Read apart, the received count and the queue length once
 * said otherwise, and a session's first octets were dropped.)
 */
START_TEST(pending_while_arriving)
{
	uint8_t	buf[8] = "arriving";
	int64_t	p;
	pid_t	pid;
	int	c1, a1, c2, f2, st, i, calls = 0;

	tcp_pair(&c1, &a1);
	tcp_pair(&f2, &c2);
	usleep(20000);
	if ((pid = fork()) == 0) {
		for (i = 0; i < 3000; i++) {
			(void)send(c1, buf, sizeof(buf), MSG_DONTWAIT);
			usleep(30);
		}
		_exit(0);
	}
	ck_assert_int_gt(pid, 0);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		p = tcp_pending(a1, f2, 1);
		ck_assert_msg(p == 0, "call %d: %lld octets pending, none sent",
		    calls, (long long)p);
		calls++;
	}
	ck_assert_int_gt(calls, 100);
	close(c1);
	close(a1);
	close(c2);
	close(f2);
}
END_TEST

/* RTP of PCMU: seq, ts, ssrc; payload octets of filler. */
static size_t
frame(uint8_t *b, uint16_t seq, uint32_t ssrc, size_t payload)
{
	size_t n = harness_rtp(b + 2, seq, seq * 160u, ssrc, payload);

	b[0] = (uint8_t)(n >> 8);
	b[1] = (uint8_t)n;
	return n + 2;
}

START_TEST(frames_parsed)
{
	static struct shm_slot	 s;
	static uint8_t		 stream[64 * 1024];
	size_t			 n = 0, off, chunk;
	uint16_t		 seq;
	int			 i;

	memset(&s, 0, sizeof(s));
	/* 100 frames, one lost, an RTCP RR frame and an empty frame. */
	for (seq = 1; seq <= 100; seq++) {
		if (seq == 50)
			continue;
		n += frame(stream + n, seq, 0xfeed, 100 + seq % 7);
	}
	stream[n++] = 0;
	stream[n++] = 8;
	stream[n++] = 0x80;
	stream[n++] = 201;
	stream[n++] = 0;
	stream[n++] = 1;
	n += 4;
	stream[n++] = 0;
	stream[n++] = 0;
	/* Fed in pieces of every size, as TCP may deliver them. */
	for (off = 0, i = 0; off < n; off += chunk, i++) {
		chunk = 1 + (size_t)(i * 37 % 300);
		if (chunk > n - off)
			chunk = n - off;
		tcp_frames(&s.tcp[0], &s.dir[0], 0, stream + off, chunk,
		    (int64_t)i * 20000000);
	}
	ck_assert_uint_eq(s.tcp[0].framing, SHM_TCP_FRAMING_RFC4571);
	ck_assert_uint_eq(atomic_load(&s.dir[0].packets_received), 99);
	ck_assert_uint_eq(atomic_load(&s.dir[0].packets_sent), 99);
	ck_assert_uint_eq(atomic_load(&s.dir[0].rtcp_received), 1);
	ck_assert_uint_eq(atomic_load(&s.dir[0].packets_lost), 1);
	ck_assert_uint_eq(atomic_load(&s.dir[0].packets_expected), 99);
	ck_assert_uint_eq(atomic_load(&s.dir[0].ssrc), 0xfeed);

	/* Not framed RTP: octets only, no packets counted. */
	memset(&s, 0, sizeof(s));
	tcp_frames(&s.tcp[1], &s.dir[1], 0, (const uint8_t *)
	    "GET / HTTP/1.1\r\n\r\n", 18, 0);
	ck_assert_uint_eq(s.tcp[1].framing, SHM_TCP_FRAMING_NONE);
	ck_assert_uint_eq(atomic_load(&s.dir[1].packets_received), 0);
}
END_TEST

/* --- through the daemon --------------------------------------------------- */

START_TEST(transfer_both_ways)
{
	struct rpc_client	*c = client();
	struct rpc_stream	*ev;
	Rtpproxy__StreamSessionEventsRequest req =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	Rtpproxy__SessionEvent	*e;
	Rtpproxy__SessionInfo	*si;
	struct flow		 f[2];
	uint16_t		 dport, lport;
	int			 l, caller, dest, closed = 0, i;

	req.session_id = (char *)"tcp-big";
	l = tcp_listen_on("127.0.0.1", &dport);
	lport = create_tcp(c, "tcp-big", dport);
	ck_assert_ptr_nonnull(ev = rpc_stream_open(c, M_EVENTS, &req.base,
	    30000));
	/* Nobody has connected: still connecting. */
	ck_assert_int_eq(state_becomes(c, "tcp-big", ST_CONNECTING_),
	    ST_CONNECTING_);
	caller = tcp_dial(NULL, lport);
	ck_assert_int_ge(dest = accept_within(l, 5000), 0);
	ck_assert_int_eq(state_becomes(c, "tcp-big", ST_ACTIVE_), ST_ACTIVE_);

	memset(f, 0, sizeof(f));
	f[0] = (struct flow){ .w = caller, .r = dest, .total = 24 << 20,
	    .salt = 1 };
	f[1] = (struct flow){ .w = dest, .r = caller, .total = 16 << 20,
	    .salt = 2 };
	transfer(f, 2, 30000, NULL, NULL);
	for (i = 0; i < 2; i++) {
		ck_assert_uint_eq(f[i].got, f[i].total);
		ck_assert_int_eq(f[i].bad, 0);
		ck_assert_int_eq(f[i].eof, 1);
	}
	/* Both ends done: the session closes by itself, with its totals. */
	for (i = 0; i < 20 && !closed; i++) {
		e = NULL;
		if (rpc_stream_next(ev, &rtpproxy__session_event__descriptor,
		    (ProtobufCMessage **)&e, 1000) != 0)
			continue;
		if (e->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_CLOSED) {
			closed = 1;
			ck_assert_str_eq(e->reason, "closed by peers");
			si = e->session;
			ck_assert_uint_eq(si->forward_stats->bytes_received,
			    24 << 20);
			ck_assert_uint_eq(si->forward_stats->bytes_sent,
			    24 << 20);
			ck_assert_uint_eq(si->reverse_stats->bytes_sent,
			    16 << 20);
			ck_assert_ptr_nonnull(si->latched);
		}
		protobuf_c_message_free_unpacked(&e->base, NULL);
	}
	ck_assert_int_eq(closed, 1);
	for (i = 0; i < 300 && harness_status(c, "tcp-big", NULL) == 0; i++)
		usleep(10000);
	ck_assert_int_eq(harness_status(c, "tcp-big", NULL), RP_NOT_FOUND);
	rpc_stream_free(ev);
	close(caller);
	close(dest);
	close(l);
	rpc_client_free(c);
}
END_TEST

static long
rss_kb(pid_t pid)
{
	char	 path[64], line[256];
	long	 kb = -1;
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* A destination that does not read holds the caller back, not memory. */
START_TEST(slow_reader)
{
	struct rpc_client	*c = client();
	static uint8_t		 buf[65536];
	struct flow		 f;
	uint16_t		 dport, lport;
	uint64_t		 pushed = 0;
	pid_t			 wpid = harness_worker_pid(&d, 0);
	long			 before, after;
	int64_t			 end;
	ssize_t			 k;
	int			 l, caller, dest;

	l = tcp_listen_on("127.0.0.1", &dport);
	lport = create_tcp(c, "tcp-slow", dport);
	caller = tcp_dial(NULL, lport);
	ck_assert_int_ge(dest = accept_within(l, 5000), 0);
	before = rss_kb(wpid);
	nonblock(caller);
	/* Push until the path is full: the socket buffers, nothing more. */
	for (end = mono_ms() + 3000; mono_ms() < end;) {
		memset(buf, 0, sizeof(buf));
		for (k = 0; k < (ssize_t)sizeof(buf); k++)
			buf[k] = pattern(pushed + (uint64_t)k, 5);
		k = send(caller, buf, sizeof(buf), MSG_NOSIGNAL);
		if (k > 0) {
			pushed += (uint64_t)k;
			continue;
		}
		usleep(20000);
	}
	ck_assert_uint_gt(pushed, 0);
	/* Loopback buffers are some MB at most; 64 MB would be no limit. */
	ck_assert_uint_lt(pushed, 64 << 20);
	after = rss_kb(wpid);
	ck_assert_int_lt(after - before, 4096);
	/* The reader wakes up: everything, in order. */
	memset(&f, 0, sizeof(f));
	f = (struct flow){ .w = caller, .r = dest, .total = pushed + (4 << 20),
	    .sent = pushed, .salt = 5 };
	transfer(&f, 1, 20000, NULL, NULL);
	ck_assert_uint_eq(f.got, f.total);
	ck_assert_int_eq(f.bad, 0);
	ck_assert_int_eq(harness_destroy(c, "tcp-slow"), 0);
	close(caller);
	close(dest);
	close(l);
	rpc_client_free(c);
}
END_TEST

/* The error of a session, once it is in ERROR. */
static void
expect_error(struct rpc_client *c, const char *id, const char *what)
{
	Rtpproxy__SessionInfo *si;

	ck_assert_int_eq(state_becomes(c, id, ST_ERROR_), ST_ERROR_);
	ck_assert_int_eq(harness_status(c, id, &si), 0);
	ck_assert_msg(strstr(si->error_message, what) != NULL, "%s",
	    si->error_message);
	harness_info_free(si);
}

/* The far end sees the connection end (reset or closed) within ms. */
static int
ends_within(int fd, int ms)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };
	uint8_t		b[4096];
	int64_t		end = mono_ms() + ms;
	ssize_t		k;

	while (mono_ms() < end) {
		if (poll(&pfd, 1, 100) != 1)
			continue;
		k = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (k == 0 || (k < 0 && errno != EAGAIN))
			return 1;
	}
	return 0;
}

static void
reset(int fd)
{
	struct linger lg = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

START_TEST(resets)
{
	struct rpc_client	*c = client();
	uint16_t		 dport, lport;
	int			 l, caller, dest;

	/* The destination resets. */
	l = tcp_listen_on("127.0.0.1", &dport);
	lport = create_tcp(c, "tcp-rst1", dport);
	caller = tcp_dial(NULL, lport);
	ck_assert_int_ge(dest = accept_within(l, 5000), 0);
	ck_assert_int_eq(send(caller, "hello", 5, 0), 5);
	reset(dest);
	expect_error(c, "tcp-rst1", "connection reset by the destination");
	ck_assert_int_eq(ends_within(caller, 3000), 1);
	close(caller);
	ck_assert_int_eq(harness_destroy(c, "tcp-rst1"), 0);

	/* The caller resets. */
	lport = create_tcp(c, "tcp-rst2", dport);
	caller = tcp_dial(NULL, lport);
	ck_assert_int_ge(dest = accept_within(l, 5000), 0);
	ck_assert_int_eq(state_becomes(c, "tcp-rst2", ST_ACTIVE_), ST_ACTIVE_);
	reset(caller);
	expect_error(c, "tcp-rst2", "connection reset by the caller");
	ck_assert_int_eq(ends_within(dest, 3000), 1);
	close(dest);
	ck_assert_int_eq(harness_destroy(c, "tcp-rst2"), 0);
	close(l);
	rpc_client_free(c);
}
END_TEST

START_TEST(refused)
{
	struct rpc_client	*c = client();
	char			 want[64];
	uint16_t		 dport, lport;
	int			 l, caller;

	/* A port nobody listens on. */
	l = tcp_listen_on("127.0.0.1", &dport);
	close(l);
	lport = create_tcp(c, "tcp-refused", dport);
	caller = tcp_dial(NULL, lport);
	snprintf(want, sizeof(want), "connection to 127.0.0.1:%u: refused",
	    dport);
	expect_error(c, "tcp-refused", want);
	ck_assert_int_eq(ends_within(caller, 3000), 1);
	close(caller);
	/* A session in ERROR turns new callers away. */
	caller = tcp_dial(NULL, lport);
	ck_assert_int_eq(ends_within(caller, 3000), 1);
	close(caller);
	ck_assert_int_eq(harness_destroy(c, "tcp-refused"), 0);
	rpc_client_free(c);
}
END_TEST

/* One caller per session; a refused address is not accepted at all. */
START_TEST(callers)
{
	struct rpc_client	*c = client();
	Rtpproxy__SessionInfo	*si;
	uint8_t			 b[16];
	uint16_t		 dport, lport;
	int			 l, caller, second, bad, dest;

	l = tcp_listen_on("127.0.0.1", &dport);
	lport = create_tcp(c, "tcp-two", dport);
	bad = tcp_dial("127.0.0.2", lport);
	ck_assert_int_eq(ends_within(bad, 3000), 1);
	close(bad);
	caller = tcp_dial(NULL, lport);
	ck_assert_int_ge(dest = accept_within(l, 5000), 0);
	second = tcp_dial(NULL, lport);
	ck_assert_int_eq(ends_within(second, 3000), 1);
	close(second);
	/* The first goes on. */
	ck_assert_int_eq(send(caller, "ping", 4, 0), 4);
	ck_assert_int_eq(harness_recv(dest, b, sizeof(b), 3000, NULL), 4);
	ck_assert_int_eq(memcmp(b, "ping", 4), 0);
	ck_assert_int_eq(accept_within(l, 200), -1);
	ck_assert_int_eq(harness_status(c, "tcp-two", &si), 0);
	ck_assert_uint_eq(si->forward_stats->dropped_source, 1);
	ck_assert_str_eq(si->latched->address, "127.0.0.1");
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "tcp-two"), 0);
	/* Destroyed: both connections end. */
	ck_assert_int_eq(ends_within(caller, 3000), 1);
	ck_assert_int_eq(ends_within(dest, 3000), 1);
	close(caller);
	close(dest);
	close(l);
	rpc_client_free(c);
}
END_TEST

/*
 * A local caller's port is the kernel's choice and may lie in the media
 * range: it is a caller like any other (not a relay loop).
 */
START_TEST(caller_from_media_port)
{
	struct rpc_client	*c = client();
	struct sockaddr_in	 sin;
	uint8_t			 b[16];
	uint16_t		 dport, lport, p;
	int			 l, caller, dest;

	l = tcp_listen_on("127.0.0.1", &dport);
	lport = create_tcp(c, "tcp-media-port", dport);
	ck_assert_int_ge(caller = socket(AF_INET, SOCK_STREAM, 0), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* From the top of the range down: the daemon takes ports from below. */
	for (p = d.port_max; p > d.port_min; p--) {
		sin.sin_port = htons(p);
		if (bind(caller, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			break;
	}
	ck_assert_uint_gt(p, d.port_min);
	tcp_connect_fd(caller, lport);
	ck_assert_int_ge(dest = accept_within(l, 5000), 0);
	ck_assert_int_eq(send(caller, "ping", 4, 0), 4);
	ck_assert_int_eq(harness_recv(dest, b, sizeof(b), 3000, NULL), 4);
	ck_assert_int_eq(memcmp(b, "ping", 4), 0);
	ck_assert_int_eq(harness_destroy(c, "tcp-media-port"), 0);
	close(caller);
	close(dest);
	close(l);
	rpc_client_free(c);
}
END_TEST

START_TEST(framed_rtp)
{
	struct rpc_client	*c = client();
	Rtpproxy__SessionInfo	*si;
	static uint8_t		 stream[64 * 1024], got[64 * 1024];
	uint16_t		 dport, lport, seq;
	size_t			 n = 0, off, chunk, have = 0;
	ssize_t			 k;
	int			 l, caller, dest, i;

	for (seq = 1000; seq < 1200; seq++)
		if (seq != 1100 && seq != 1101)
			n += frame(stream + n, seq, 0xabcdef, 160);
	l = tcp_listen_on("127.0.0.1", &dport);
	lport = create_tcp(c, "tcp-4571", dport);
	caller = tcp_dial(NULL, lport);
	ck_assert_int_ge(dest = accept_within(l, 5000), 0);
	for (off = 0, i = 0; off < n; off += chunk, i++) {
		chunk = 1 + (size_t)(i * 53 % 700);
		if (chunk > n - off)
			chunk = n - off;
		ck_assert_int_eq(send(caller, stream + off, chunk, 0),
		    (ssize_t)chunk);
		if (i % 10 == 0)
			usleep(2000);
	}
	while (have < n && (k = harness_recv(dest, got + have,
	    sizeof(got) - have, 3000, NULL)) > 0)
		have += (size_t)k;
	ck_assert_uint_eq(have, n);
	ck_assert_int_eq(memcmp(got, stream, n), 0);
	ck_assert_int_eq(harness_status_counted(c, "tcp-4571", 198, &si), 0);
	ck_assert_uint_eq(si->forward_stats->packets_received, 198);
	ck_assert_int_eq(si->forward_stats->packets_lost, 2);
	ck_assert_uint_eq(si->forward_stats->ssrc, 0xabcdef);
	ck_assert_uint_eq(si->forward_stats->bytes_received, n);
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "tcp-4571"), 0);
	close(caller);
	close(dest);
	close(l);
	rpc_client_free(c);
}
END_TEST

struct killer {
	uint64_t	 at[3];
	int		 n;
	pid_t		 last;
};

static void
kill_at(void *arg, uint64_t progress)
{
	struct killer	*k = arg;
	char		 want[64];
	pid_t		 pid;

	if (k->n >= 3 || progress < k->at[k->n])
		return;
	pid = harness_worker_pid(&d, 0);
	ck_assert_int_gt(pid, 0);
	kill(pid, SIGKILL);
	k->n++;
	snprintf(want, sizeof(want), "worker 0 ready");
	ck_assert_int_eq(harness_wait_log(&d, want, k->n + 1, 10000), 0);
}

/*
 * A worker killed with SIGKILL three times during a transfer both ways:
 * the connections stay up (the master holds them), the new worker takes
 * over where the dead one was, and not an octet is lost or doubled.
 */
START_TEST(worker_killed)
{
	struct rpc_client	*c = client();
	struct killer		 k = { { 4 << 20, 10 << 20, 16 << 20 }, 0, 0 };
	struct flow		 f[2];
	Rtpproxy__SessionInfo	*si;
	uint16_t		 dport, lport;
	int			 l, caller, dest, i;

	l = tcp_listen_on("127.0.0.1", &dport);
	lport = create_tcp(c, "tcp-kill", dport);
	caller = tcp_dial(NULL, lport);
	ck_assert_int_ge(dest = accept_within(l, 5000), 0);
	ck_assert_int_eq(state_becomes(c, "tcp-kill", ST_ACTIVE_), ST_ACTIVE_);
	memset(f, 0, sizeof(f));
	f[0] = (struct flow){ .w = caller, .r = dest, .total = 16 << 20,
	    .salt = 3 };
	f[1] = (struct flow){ .w = dest, .r = caller, .total = 8 << 20,
	    .salt = 4 };
	transfer(f, 2, 60000, kill_at, &k);
	ck_assert_int_eq(k.n, 3);
	for (i = 0; i < 2; i++) {
		ck_assert_msg(f[i].got == f[i].total, "flow %d: %llu of %llu",
		    i, (unsigned long long)f[i].got,
		    (unsigned long long)f[i].total);
		ck_assert_int_eq(f[i].bad, 0);
	}
	/* Both streams ended through the relay: it closes the session. */
	for (i = 0; i < 300 && harness_status(c, "tcp-kill", &si) == 0; i++) {
		harness_info_free(si);
		usleep(10000);
	}
	ck_assert_int_eq(harness_status(c, "tcp-kill", NULL), RP_NOT_FOUND);
	close(caller);
	close(dest);
	close(l);
	rpc_client_free(c);
}
END_TEST

/*
 * Workers that die right after a send, before they consume what they
 * sent (RTPPROXYD_FAILPOINT), again and again during a transfer: each new
 * worker finds what was sent from the kernel's counters and goes on.
 */
START_TEST(worker_dies_in_the_window)
{
	struct rpc_client	*c = client();
	struct flow		 f[2];
	uint16_t		 dport, lport;
	int			 l, caller, dest, i;

	l = tcp_listen_on("127.0.0.1", &dport);
	lport = create_tcp(c, "tcp-window", dport);
	caller = tcp_dial(NULL, lport);
	ck_assert_int_ge(dest = accept_within(l, 5000), 0);
	memset(f, 0, sizeof(f));
	f[0] = (struct flow){ .w = caller, .r = dest, .total = 8 << 20,
	    .salt = 6 };
	f[1] = (struct flow){ .w = dest, .r = caller, .total = 4 << 20,
	    .salt = 7 };
	transfer(f, 2, 90000, NULL, NULL);
	for (i = 0; i < 2; i++) {
		ck_assert_msg(f[i].got == f[i].total, "flow %d: %llu of %llu",
		    i, (unsigned long long)f[i].got,
		    (unsigned long long)f[i].total);
		ck_assert_int_eq(f[i].bad, 0);
	}
	ck_assert_int_ge(harness_log_count(&d, "exited with status 99"), 2);
	ck_assert_int_ge(harness_log_count(&d, "were sent on by the worker "
	    "before; not again"), 2);
	close(caller);
	close(dest);
	close(l);
	rpc_client_free(c);
}
END_TEST

START_TEST(udp_only_options)
{
	struct rpc_client	*c = client();
	struct harness_session	 a = { .id = "tcp-bad", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 4000, .transport = 1,
	    .unidirectional = 1 };
	char			 det[256];

	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    RP_INVALID_ARGUMENT);
	ck_assert_msg(strstr(det, "unidirectional is for UDP") != NULL, "%s",
	    det);
	a.unidirectional = 0;
	a.rate_pps = 100;
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    RP_INVALID_ARGUMENT);
	ck_assert_msg(strstr(det, "a rate limit is for UDP") != NULL, "%s",
	    det);
	ck_assert_int_eq(harness_status(c, "tcp-bad", NULL), RP_NOT_FOUND);
	rpc_client_free(c);
}
END_TEST

START_TEST(idle_timeout)
{
	struct rpc_client	*c = client();
	uint16_t		 dport, lport;
	int			 l, caller, dest;

	l = tcp_listen_on("127.0.0.1", &dport);
	lport = create_tcp(c, "tcp-idle", dport);
	caller = tcp_dial(NULL, lport);
	ck_assert_int_ge(dest = accept_within(l, 5000), 0);
	ck_assert_int_eq(send(caller, "x", 1, 0), 1);
	/* idle-timeout 1: closed, and the connections with it. */
	ck_assert_int_eq(ends_within(dest, 4000 * harness_slow()), 1);
	ck_assert_int_eq(ends_within(caller, 3000), 1);
	ck_assert_int_eq(harness_status(c, "tcp-idle", NULL), RP_NOT_FOUND);
	ck_assert_int_ge(harness_log_count(&d, "session tcp-idle closed: "
	    "idle timeout"), 1);
	close(caller);
	close(dest);
	close(l);
	rpc_client_free(c);
}
END_TEST

int
main(void)
{
	const TTest *const t_own[] = { pending_counts, pending_while_arriving,
	    frames_parsed, NULL };
	const TTest *const t_main[] = { transfer_both_ways, slow_reader,
	    resets, refused, callers, caller_from_media_port, framed_rtp,
	    worker_killed, udp_only_options, NULL };
	const TTest *const t_idle[] = { idle_timeout, NULL };
	const TTest *const t_fail[] = { worker_dies_in_the_window, NULL };
	Suite	*s = suite_create("tcp");

	signal(SIGPIPE, SIG_IGN);
	harness_tcase(s, "own", NULL, NULL, 30, t_own);
	harness_tcase(s, "daemon", up_main, down, 120, t_main);
	harness_tcase(s, "idle", up_idle, down, 30, t_idle);
	harness_tcase(s, "failpoint", up_failpoint, down, 120, t_fail);
	return harness_run_suite(s);
}
