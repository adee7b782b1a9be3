/*
 * The caller's latch, through the real daemon: a caller on this host whose
 * port lies in the media port range (only the daemon's own sockets are
 * refused), refused senders made visible (an event, a log line, both
 * rate-limited), the warning about the kernel's ephemeral ports, and the
 * latch policies that keep one stray packet from taking a call's media
 * (RTP bleed): learn, never, and the old latest as an opt-in.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
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

#define EV_RELATCHED	RTPPROXY__EVENT_TYPE__EVENT_TYPE_RELATCHED
#define EV_REFUSED	RTPPROXY__EVENT_TYPE__EVENT_TYPE_SOURCE_REFUSED
#define POL_LEARN	RTPPROXY__LATCH_POLICY__LATCH_POLICY_LEARN
#define POL_NEVER	RTPPROXY__LATCH_POLICY__LATCH_POLICY_NEVER
#define POL_LATEST	RTPPROXY__LATCH_POLICY__LATCH_POLICY_LATEST

/* The policy's times in the daemons here; slower under valgrind. */
#define LEARN_MS	(400 * harness_slow())
#define QUIET_MS	(1000 * harness_slow())
#define RUN		4

static struct daemon	d;

static void
up(const char *extra)
{
	signal(SIGPIPE, SIG_IGN);
	if (harness_prepare(&d, 1, extra) == -1 ||
	    harness_launch(&d, 1) == -1) {
		fprintf(stderr, "check_latch: the daemon did not start; log in "
		    "%s\n", d.log);
		setenv("RTPPROXYD_KEEP", "1", 1);
	}
}

static void
up_colocated(void)
{
	up("deny-destination 127.0.0.2/31");
}

static void
up_policy(void)
{
	char extra[256];

	snprintf(extra, sizeof(extra), "latch-learn-time %d\n"
	    "latch-quiet-time %d\nlatch-run %d", LEARN_MS, QUIET_MS, RUN);
	up(extra);
}

static void
down(void)
{
	harness_stop(&d, 5000);
	harness_cleanup(&d);
}

static void
need_daemon(void)
{
	ck_assert_msg(d.pid > 0, "daemon not running; see %s", d.log);
}

static struct rpc_client *
client(void)
{
	struct rpc_client *c;

	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	return c;
}

static struct rpc_stream *
subscribe(struct rpc_client *c, const char *id)
{
	Rtpproxy__StreamSessionEventsRequest	 req =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	struct rpc_stream			*s;

	req.session_id = (char *)(id != NULL ? id : "");
	ck_assert_ptr_nonnull(s = rpc_stream_open(c, M_EVENTS, &req.base, 0));
	return s;
}

/* The next event of this type for session id within ms, or NULL. */
static Rtpproxy__SessionEvent *
wait_event(struct rpc_stream *s, int type, const char *id, int ms)
{
	Rtpproxy__SessionEvent	*ev;
	int64_t			 until = harness_now_ms() + ms * harness_slow(), left;

	while ((left = until - harness_now_ms()) > 0) {
		if (rpc_stream_next(s, &rtpproxy__session_event__descriptor,
		    (ProtobufCMessage **)&ev, (int)left) != 0)
			return NULL;
		if ((int)ev->type == type && strcmp(ev->session_id, id) == 0)
			return ev;
		protobuf_c_message_free_unpacked(&ev->base, NULL);
	}
	return NULL;
}

static void
free_event(Rtpproxy__SessionEvent *ev)
{
	protobuf_c_message_free_unpacked(&ev->base, NULL);
}

/* A UDP socket on addr, port p, and one on p + 1; p, outside the ranges. */
static uint16_t
pair_on(const char *addr, int fd[2])
{
	uint16_t	p;
	int		i;

	for (i = 0; i < 2000; i++) {
		p = harness_next_port() & ~1u;
		if ((fd[0] = harness_udp_addr(addr, p, NULL)) == -1)
			continue;
		if ((fd[1] = harness_udp_addr(addr, (uint16_t)(p + 1), NULL)) ==
		    -1) {
			close(fd[0]);
			continue;
		}
		return p;
	}
	ck_abort_msg("no free port pair on %s", addr);
	return 0;
}

/* Datagrams waiting on fd, read within ms of the last. */
static int
drain(int fd, int ms)
{
	uint8_t	b[2048];
	int	n = 0;

	while (harness_recv(fd, b, sizeof(b), ms, NULL) >= 0)
		n++;
	return n;
}

/* An RTCP receiver report without report blocks. */
static size_t
mkrr(uint8_t *b, uint32_t ssrc)
{
	b[0] = 0x80;
	b[1] = 201;
	b[2] = 0;
	b[3] = 1;
	b[4] = ssrc >> 24;
	b[5] = ssrc >> 16;
	b[6] = ssrc >> 8;
	b[7] = ssrc & 0xff;
	return 8;
}

/* A session and its peers: the caller (RTP, RTCP), the destination. */
struct call {
	const char	*id;
	int		 caller[2], dst[2];
	uint16_t	 cport, dport, lport, fport;
	uint16_t	 seq;
	uint32_t	 ssrc;
};

/* One RTP packet from fd (ssrc, *seq, which moves on) to the listen port. */
static void
rtp_from(struct call *k, int fd, uint32_t ssrc, uint16_t *seq)
{
	uint8_t	b[256];
	size_t	n = harness_rtp(b, *seq, (uint32_t)*seq * 160, ssrc, 160);

	(*seq)++;
	ck_assert_int_eq(harness_send(fd, "127.0.0.1", k->lport, b, n), 0);
}

static void
rtcp_from(struct call *k, int fd, uint32_t ssrc)
{
	uint8_t	b[16];
	size_t	n = mkrr(b, ssrc);

	ck_assert_int_eq(harness_send(fd, "127.0.0.1", k->lport + 1, b, n),
	    0);
}

/* The caller talks: one packet. */
static void
talk(struct call *k)
{
	rtp_from(k, k->caller[0], k->ssrc, &k->seq);
}

/*
 * A session from a caller on 127.0.0.1 to a destination there, with
 * RTCP; the caller's first RTP and RTCP packets are through (latched).
 */
static void
call_open(struct rpc_client *c, struct call *k, const char *id, int policy)
{
	struct harness_session		 a = { .id = id, .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .latch_policy = policy };
	Rtpproxy__CreateSessionResponse	*resp;
	uint8_t				 got[512];

	memset(k, 0, sizeof(*k));
	k->id = id;
	k->cport = pair_on("127.0.0.1", k->caller);
	k->dport = pair_on("127.0.0.1", k->dst);
	k->ssrc = 0xca11e4;
	k->seq = 1000;
	a.dport = k->dport;
	ck_assert_int_eq(harness_create(c, &a, &resp, NULL, 0), RP_OK);
	k->lport = (uint16_t)resp->session->listen->port;
	k->fport = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	talk(k);
	ck_assert_int_ge(harness_recv(k->dst[0], got, sizeof(got), 3000,
	    NULL), 12);
	rtcp_from(k, k->caller[1], k->ssrc);
	ck_assert_int_eq(harness_recv(k->dst[1], got, sizeof(got), 3000,
	    NULL), 8);
}

static void
call_close(struct rpc_client *c, struct call *k)
{
	ck_assert_int_eq(harness_destroy(c, k->id), RP_OK);
	close(k->caller[0]);
	close(k->caller[1]);
	close(k->dst[0]);
	close(k->dst[1]);
}

/* The caller talks every 20 ms for ms: the call goes on. */
static void
talk_for(struct call *k, int ms)
{
	int64_t until = harness_now_ms() + ms;

	while (harness_now_ms() < until) {
		talk(k);
		harness_sleep_ms(20);
	}
	drain(k->dst[0], 10);
}

/*
 * n reverse packets from the destination, RTP (rtcp 0) or RTCP, 20 ms
 * apart; with talking, the caller talks before each.  How many reached
 * fd_a and fd_b.
 */
static void
reverse(struct call *k, int rtcp, int n, int talking, int fd_a, int *got_a,
    int fd_b, int *got_b)
{
	uint8_t	b[256];
	size_t	len;
	int	i;

	for (i = 0; i < n; i++) {
		if (talking)
			talk(k);
		len = rtcp ? mkrr(b, 0xde57) : harness_rtp(b, (uint16_t)i,
		    (uint32_t)i * 160, 0xde57, 100);
		ck_assert_int_eq(harness_send(k->dst[rtcp], "127.0.0.1",
		    k->fport + rtcp, b, len), 0);
		harness_sleep_ms(20);
	}
	*got_a = drain(fd_a, 300);
	*got_b = drain(fd_b, 50);
	drain(k->dst[0], 10);
}

static Rtpproxy__SessionInfo *
status(struct rpc_client *c, const char *id)
{
	Rtpproxy__SessionInfo *si;

	ck_assert_int_eq(harness_status(c, id, &si), RP_OK);
	return si;
}

/* --- item 3: colocated callers, own ports --------------------------------- */

/*
 * A caller on this host whose port lies in the media port range, which
 * no session of the daemon holds, is a caller like any other.
 */
START_TEST(caller_in_range)
{
	struct rpc_client	*c;
	struct harness_session	 a = { .id = "in-range", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .nortcp = 1 };
	Rtpproxy__CreateSessionResponse *resp;
	Rtpproxy__SessionInfo	*si;
	uint8_t			 b[256], got[256];
	uint16_t		 cport = 0, lport, fport, dport;
	int			 caller = -1, dst, i;
	size_t			 n;

	need_daemon();
	c = client();
	ck_assert_int_ge(dst = harness_udp(0, &dport), 0);
	a.dport = dport;
	ck_assert_int_eq(harness_create(c, &a, &resp, NULL, 0), RP_OK);
	lport = (uint16_t)resp->session->listen->port;
	fport = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	/* High in the range: the daemon allocates from the bottom. */
	for (i = 1; i < 100 && caller == -1; i++) {
		cport = (uint16_t)(d.port_max - i);
		caller = harness_udp_bind(0, cport);
	}
	ck_assert_int_ge(caller, 0);
	ck_assert(cport >= d.port_min && cport <= d.port_max);
	for (i = 0; i < 5; i++) {
		n = harness_rtp(b, (uint16_t)i, (uint32_t)i * 160, 0x5eed, 100);
		ck_assert_int_eq(harness_send(caller, "127.0.0.1", lport, b, n),
		    0);
		ck_assert_msg(harness_recv(dst, got, sizeof(got), 3000, NULL) ==
		    (ssize_t)n, "packet %d from 127.0.0.1:%u did not get "
		    "through", i, cport);
	}
	n = harness_rtp(b, 1, 160, 0xbac, 100);
	ck_assert_int_eq(harness_send(dst, "127.0.0.1", fport, b, n), 0);
	ck_assert_int_eq(harness_recv(caller, got, sizeof(got), 3000, NULL),
	    (ssize_t)n);
	si = status(c, "in-range");
	ck_assert_int_eq(si->state,
	    RTPPROXY__SESSION_STATE__SESSION_STATE_ACTIVE);
	ck_assert_uint_eq(si->forward_stats->dropped_source, 0);
	ck_assert_ptr_nonnull(si->latched);
	ck_assert_uint_eq(si->latched->port, cport);
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "in-range"), RP_OK);
	close(caller);
	close(dst);
	rpc_client_free(c);
}
END_TEST

/* CreateSession of a UDP session without RTCP; its listen and forward. */
static int
create_udp(struct rpc_client *c, const char *id, const char *laddr,
    uint32_t lport, const char *daddr, uint16_t dport, uint16_t *l,
    uint16_t *f, char *det, size_t len)
{
	struct harness_session	 a = { .id = id, .laddr = laddr,
	    .lport = lport, .daddr = daddr, .dport = dport, .nortcp = 1 };
	Rtpproxy__CreateSessionResponse *resp;
	int			 rc;

	if ((rc = harness_create(c, &a, &resp, det, len)) != RP_OK)
		return rc;
	if (l != NULL)
		*l = (uint16_t)resp->session->listen->port;
	if (f != NULL)
		*f = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

/*
 * A destination on this host whose port lies in the media range: refused
 * only when it is one of the daemon's own sockets; otherwise relayed to,
 * and the port is kept from the daemon's own sessions meanwhile, so that
 * it never becomes one of them (a loop).
 */
START_TEST(dest_in_range)
{
	struct rpc_client	*c;
	uint8_t			 b[256], got[256];
	uint16_t		 rport = 0, lport, fport, p, l2, f2, cport;
	char			 det[512];
	int			 recv = -1, caller, i, rc;
	size_t			 n;

	need_daemon();
	c = client();
	/* A receiver high in the range: the daemon allocates from below. */
	for (i = 30; i < 130 && recv == -1; i++) {
		rport = (uint16_t)(d.port_max - i);
		recv = harness_udp_bind(0, rport);
	}
	ck_assert_int_ge(recv, 0);
	ck_assert_int_eq(create_udp(c, "dest-in", "127.0.0.1", 0, "127.0.0.1",
	    rport, &lport, &fport, det, sizeof(det)), RP_OK);
	ck_assert_int_ge(caller = harness_udp(0, &cport), 0);
	n = harness_rtp(b, 1, 160, 0xd0, 100);
	ck_assert_int_eq(harness_send(caller, "127.0.0.1", lport, b, n), 0);
	ck_assert_int_eq(harness_recv(recv, got, sizeof(got), 3000, NULL),
	    (ssize_t)n);

	/* The daemon's own sockets are refused, however spelled. */
	ck_assert_int_eq(create_udp(c, "dest-own", "127.0.0.1", 0,
	    "127.0.0.1", lport, NULL, NULL, det, sizeof(det)),
	    RP_PERMISSION_DENIED);
	ck_assert_msg(strstr(det, "own sockets") != NULL, "%s", det);
	ck_assert_int_eq(create_udp(c, "dest-own", "127.0.0.1", 0,
	    "127.0.0.9", fport, NULL, NULL, det, sizeof(det)),
	    RP_PERMISSION_DENIED);
	ck_assert_int_eq(create_udp(c, "dest-own", "::1", 0,
	    "::ffff:127.0.0.1", lport, NULL, NULL, det, sizeof(det)),
	    RP_PERMISSION_DENIED);
	ck_assert_int_eq(create_udp(c, "dest-own", "::1", 0,
	    "64:ff9b::7f00:1", lport, NULL, NULL, det, sizeof(det)),
	    RP_PERMISSION_DENIED);
	ck_assert_msg(strstr(det, "embeds 127.0.0.1") != NULL, "%s", det);
	/* RTCP goes to the port above: that one must not be ours either. */
	{
		struct harness_session a = { .id = "dest-rtcp",
		    .laddr = "127.0.0.1", .daddr = "127.0.0.1",
		    .dport = (uint16_t)(fport - 1) };

		ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
		    RP_PERMISSION_DENIED);
		ck_assert_msg(strstr(det, "RTCP destination") != NULL &&
		    strstr(det, "own sockets") != NULL, "%s", det);
		a.nortcp = 1;
		ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
		    RP_OK);
		ck_assert_int_eq(harness_destroy(c, "dest-rtcp"), RP_OK);
	}
	/* The listen socket is bound to 127.0.0.1: 127.0.0.5 is not it. */
	ck_assert_int_eq(create_udp(c, "dest-other", "127.0.0.1", 0,
	    "127.0.0.5", lport, NULL, NULL, det, sizeof(det)), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "dest-other"), RP_OK);

	/*
	 * A free port of the range as a destination is kept from the
	 * daemon's sessions: the next pair the allocator would take is
	 * passed over, and asking for it is refused.
	 */
	ck_assert_int_eq(create_udp(c, "probe", "127.0.0.1", 0, "127.0.0.1",
	    40000, &p, NULL, det, sizeof(det)), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "probe"), RP_OK);
	p = (uint16_t)(p + 4);	/* the probe had p and p + 2 */
	ck_assert_int_eq(create_udp(c, "kept", "127.0.0.1", 0, "127.0.0.1", p,
	    &l2, &f2, det, sizeof(det)), RP_OK);
	ck_assert_msg(l2 != p && f2 != p, "the daemon bound %u, a session's "
	    "destination (listen %u, forward %u)", p, l2, f2);
	ck_assert_int_eq(create_udp(c, "want-p", "127.0.0.1", p, "127.0.0.1",
	    40000, NULL, NULL, det, sizeof(det)), RP_PERMISSION_DENIED);
	ck_assert_msg(strstr(det, "destination of a session") != NULL, "%s",
	    det);
	/*
	 * Once that session is gone (its worker let go of it, which the
	 * reply to DestroySession does not wait for), the port is free.
	 */
	ck_assert_int_eq(harness_destroy(c, "kept"), RP_OK);
	for (i = 0; i < 300; i++) {
		if ((rc = create_udp(c, "want-p", "127.0.0.1", p, "127.0.0.1",
		    40000, NULL, NULL, det, sizeof(det))) != RP_PERMISSION_DENIED)
			break;
		harness_sleep_ms(10);
	}
	ck_assert_msg(rc == RP_OK, "%d: %s", rc, det);
	ck_assert_int_eq(harness_destroy(c, "want-p"), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "dest-in"), RP_OK);
	close(recv);
	close(caller);
	rpc_client_free(c);
}
END_TEST

/* The slot of session id in the table t, or -1. */
static int
slot_of(struct shm_table *t, const char *id)
{
	uint32_t i;

	for (i = 0; i < t->nslots; i++)
		if (atomic_load(&t->slots[i].state) != SHM_FREE &&
		    strcmp(t->slots[i].id, id) == 0)
			return (int)i;
	return -1;
}

static int
own(struct shm_table *t, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;

	ck_assert_int_eq(parse_ip(addr, port, &ss, NULL), 0);
	return acl_own_socket(&t->hdr->acl, t, (struct sockaddr *)&ss);
}

/*
 * The table says which UDP ports the daemon holds, and on what address,
 * as sessions come and go: what a worker asks about a sender.
 */
START_TEST(own_ports)
{
	struct rpc_client	*c;
	struct shm_table	 t;
	struct harness_session	 u = { .id = "own-udp", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 40000 };
	struct harness_session	 p = { .id = "own-tcp", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 40000, .transport = 1 };
	Rtpproxy__CreateSessionResponse *resp;
	uint16_t		 lport, fport, tport;
	uint32_t		 o;
	int			 slot, i;

	need_daemon();
	c = client();
	ck_assert_msg(shm_attach(&t, d.shm) == 0, "attach %s: %s", d.shm,
	    strerror(errno));
	ck_assert_int_eq(harness_create(c, &u, &resp, NULL, 0), RP_OK);
	lport = (uint16_t)resp->session->listen->port;
	fport = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	ck_assert_int_eq(harness_create(c, &p, &resp, NULL, 0), RP_OK);
	tport = (uint16_t)resp->session->listen->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	ck_assert_int_ge(slot = slot_of(&t, "own-udp"), 0);

	/* RTP and RTCP, listen and forward, of IPv4. */
	ck_assert_uint_eq(atomic_load(&t.ports->owner[0][lport]), slot + 1);
	ck_assert_uint_eq(atomic_load(&t.ports->owner[0][lport + 1]),
	    slot + 1);
	ck_assert_uint_eq(atomic_load(&t.ports->owner[0][fport]), slot + 1);
	ck_assert_uint_eq(atomic_load(&t.ports->owner[0][fport + 1]),
	    slot + 1);
	ck_assert_uint_eq(atomic_load(&t.ports->owner[1][lport]), 0);
	/* TCP sockets send no UDP. */
	ck_assert_uint_eq(atomic_load(&t.ports->owner[0][tport]), 0);
	ck_assert_uint_eq(atomic_load(&t.ports->owner[0][d.port_max]), 0);

	/* The listen socket is bound to 127.0.0.1, forward to the wildcard. */
	ck_assert_int_eq(own(&t, "127.0.0.1", lport), 1);
	ck_assert_int_eq(own(&t, "127.0.0.1", lport + 1), 1);
	ck_assert_int_eq(own(&t, "::ffff:127.0.0.1", lport), 1);
	ck_assert_int_eq(own(&t, "127.0.0.2", lport), 0);
	ck_assert_int_eq(own(&t, "127.0.0.2", fport), 1);
	ck_assert_int_eq(own(&t, "127.0.0.1", d.port_max), 0);
	ck_assert_int_eq(own(&t, "127.0.0.1", tport), 0);
	/* Another host's port of that number is not ours. */
	ck_assert_int_eq(own(&t, "192.0.2.1", fport), 0);

	/* Gone with the session, once its worker let go of the sockets. */
	ck_assert_int_eq(harness_destroy(c, "own-udp"), RP_OK);
	for (i = 0; i < 300; i++) {
		o = atomic_load(&t.ports->owner[0][lport]) |
		    atomic_load(&t.ports->owner[0][fport + 1]);
		if (o == 0)
			break;
		harness_sleep_ms(10);
	}
	ck_assert_uint_eq(o, 0);
	ck_assert_int_eq(own(&t, "127.0.0.2", fport), 0);
	ck_assert_int_eq(harness_destroy(c, "own-tcp"), RP_OK);
	shm_detach(&t);
	rpc_client_free(c);
}
END_TEST

/*
 * A master killed and started again takes the port map over from the
 * slots: what the sessions hold stays, what a master that died halfway
 * left is cleared.
 */
START_TEST(own_ports_takeover)
{
	struct rpc_client	*c;
	struct shm_table	 t;
	struct harness_session	 u = { .id = "own-take", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .nortcp = 1 };
	Rtpproxy__CreateSessionResponse *resp;
	uint16_t		 lport, fport, kept;
	pid_t			 old = d.pid;
	int			 slot, i;
	char			 det[512];

	need_daemon();
	c = client();
	/* Its destination a free port of the range: kept from sessions. */
	kept = (uint16_t)((d.port_max - 51) & ~1u);
	u.dport = kept;
	ck_assert_int_eq(harness_create(c, &u, &resp, NULL, 0), RP_OK);
	lport = (uint16_t)resp->session->listen->port;
	fport = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	rpc_client_free(c);
	ck_assert_int_eq(shm_attach(&t, d.shm), 0);
	ck_assert_int_ge(slot = slot_of(&t, "own-take"), 0);
	ck_assert_int_eq(kill(old, SIGKILL), 0);
	for (i = 0; i < 250 && harness_alive(old); i++)
		harness_sleep_ms(20);
	ck_assert(!harness_alive(old));
	/* What a master that died between two stores could leave. */
	atomic_store(&t.ports->owner[0][d.port_max], (uint32_t)slot + 1);
	atomic_store(&t.ports->owner[1][lport], SHM_PORT_SHARED);
	ck_assert_int_eq(harness_launch(&d, 0), 0);
	ck_assert_int_eq(harness_wait_log(&d, "took over 1 sessions", 1,
	    10000), 0);
	ck_assert_uint_eq(atomic_load(&t.ports->owner[0][lport]), slot + 1);
	ck_assert_uint_eq(atomic_load(&t.ports->owner[0][fport]), slot + 1);
	ck_assert_uint_eq(atomic_load(&t.ports->owner[0][d.port_max]), 0);
	ck_assert_uint_eq(atomic_load(&t.ports->owner[1][lport]), 0);
	ck_assert_uint_eq(atomic_load(&t.ports->owner[0][lport + 1]), 0);
	c = client();
	/* The new master keeps the destination's port too. */
	ck_assert_int_eq(create_udp(c, "want-kept", "127.0.0.1", kept,
	    "127.0.0.1", 40000, NULL, NULL, det, sizeof(det)),
	    RP_PERMISSION_DENIED);
	ck_assert_msg(strstr(det, "destination of a session") != NULL, "%s",
	    det);
	ck_assert_int_eq(harness_destroy(c, "own-take"), RP_OK);
	for (i = 0; i < 300 && atomic_load(&t.ports->owner[0][lport]) != 0;
	    i++)
		harness_sleep_ms(10);
	ck_assert_uint_eq(atomic_load(&t.ports->owner[0][lport]), 0);
	shm_detach(&t);
	rpc_client_free(c);
}
END_TEST

/*
 * A sender the rules refuse: its packets are dropped and counted, and
 * the controller sees an event naming the reason, and the log a line;
 * both once, not once a packet.
 */
START_TEST(refused_visible)
{
	struct rpc_client	*c;
	struct rpc_stream	*s;
	struct harness_session	 a = { .id = "refused", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 40000, .nortcp = 1 };
	Rtpproxy__CreateSessionResponse *resp;
	Rtpproxy__SessionEvent	*ev;
	Rtpproxy__SessionInfo	*si;
	uint8_t			 b[256];
	uint16_t		 lport, bport, seq = 1;
	int			 bad, i;
	size_t			 n;

	need_daemon();
	c = client();
	s = subscribe(c, "refused");
	ck_assert_int_eq(harness_create(c, &a, &resp, NULL, 0), RP_OK);
	lport = (uint16_t)resp->session->listen->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	ck_assert_int_ge(bad = harness_udp_addr("127.0.0.2", 0, &bport), 0);

	n = harness_rtp(b, seq++, 160, 0xbad, 100);
	ck_assert_int_eq(harness_send(bad, "127.0.0.1", lport, b, n), 0);
	ck_assert_ptr_nonnull(ev = wait_event(s, EV_REFUSED, "refused", 3000));
	ck_assert_ptr_nonnull(ev->address);
	ck_assert_str_eq(ev->address->address, "127.0.0.2");
	ck_assert_uint_eq(ev->address->port, bport);
	ck_assert(!ev->rtcp);
	ck_assert_msg(strstr(ev->reason, "deny-destination 127.0.0.2/31") !=
	    NULL, "%s", ev->reason);
	ck_assert_int_eq(ev->state,
	    RTPPROXY__SESSION_STATE__SESSION_STATE_CONNECTING);
	free_event(ev);
	ck_assert_int_eq(harness_wait_log(&d, "session refused: RTP sender "
	    "127.0.0.2", 1, 3000), 0);

	/* More of them: counted, but no more events or lines for a while. */
	for (i = 0; i < 50; i++) {
		n = harness_rtp(b, seq++, 160, 0xbad, 100);
		ck_assert_int_eq(harness_send(bad, "127.0.0.1", lport, b, n),
		    0);
	}
	ck_assert_ptr_null(wait_event(s, EV_REFUSED, "refused", 1000));
	ck_assert_int_eq(harness_log_count(&d, "session refused: RTP sender "
	    "127.0.0.2"), 1);
	si = status(c, "refused");
	ck_assert_uint_eq(si->forward_stats->dropped_source, 51);
	ck_assert_uint_eq(si->forward_stats->packets_sent, 0);
	harness_info_free(si);

	/* Five seconds on, the next refusal is told, with the count. */
	harness_sleep_ms(5000);
	n = harness_rtp(b, seq++, 160, 0xbad, 100);
	ck_assert_int_eq(harness_send(bad, "127.0.0.1", lport, b, n), 0);
	ck_assert_ptr_nonnull(ev = wait_event(s, EV_REFUSED, "refused", 3000));
	ck_assert_msg(strstr(ev->reason, "51 packets refused") != NULL, "%s",
	    ev->reason);
	free_event(ev);
	rpc_stream_free(s);
	ck_assert_int_eq(harness_destroy(c, "refused"), RP_OK);
	close(bad);
	rpc_client_free(c);
}
END_TEST

/*
 * How many lines of the log hold s, and how many seconds (of the log's
 * time stamps, "YYYY-MM-DD HH:MM:SS.mmm") lie between the first and the
 * last of them.
 */
static int
log_lines(const char *s, int *span)
{
	char	 line[1024];
	FILE	*f;
	int	 n = 0, h, m, sec, first = -1, last = -1, t;

	*span = 0;
	ck_assert_ptr_nonnull(f = fopen(d.log, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, s) == NULL)
			continue;
		n++;
		if (sscanf(line, "%*d-%*d-%*d %d:%d:%d", &h, &m, &sec) != 3)
			continue;
		t = h * 3600 + m * 60 + sec;
		if (first == -1)
			first = t;
		last = t;
	}
	fclose(f);
	if (first != -1)
		*span = last >= first ? last - first : last + 86400 - first;
	return n;
}

/* Refusals in many sessions at once: an event each, few log lines. */
START_TEST(refused_bounded)
{
	struct rpc_client	*c;
	struct rpc_stream	*s;
	Rtpproxy__CreateSessionResponse *resp;
	Rtpproxy__SessionEvent	*ev;
	struct harness_session	 a = { .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 40000, .nortcp = 1 };
	uint8_t			 b[256];
	uint16_t		 lport[30];
	char			 id[30][16];
	int			 bad, i, lines, span;
	size_t			 n;

	need_daemon();
	c = client();
	s = subscribe(c, NULL);
	for (i = 0; i < 30; i++) {
		snprintf(id[i], sizeof(id[i]), "many-%d", i);
		a.id = id[i];
		ck_assert_int_eq(harness_create(c, &a, &resp, NULL, 0), RP_OK);
		lport[i] = (uint16_t)resp->session->listen->port;
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	ck_assert_int_ge(bad = harness_udp_addr("127.0.0.3", 0, NULL), 0);
	n = harness_rtp(b, 1, 160, 0xbad, 100);
	for (i = 0; i < 30; i++)
		ck_assert_int_eq(harness_send(bad, "127.0.0.1", lport[i], b,
		    n), 0);
	for (i = 0; i < 30; i++) {
		ck_assert_msg((ev = wait_event(s, EV_REFUSED, id[i], 5000)) !=
		    NULL, "no SOURCE_REFUSED for %s", id[i]);
		free_event(ev);
	}
	/* At most 10 lines a second, however long the 30 took. */
	lines = log_lines(": RTP sender 127.0.0.3", &span);
	ck_assert_msg(lines >= 1 && lines <= 10 * (span + 2), "%d lines in "
	    "%d s", lines, span);
	/* The next one a second later says how many were not logged. */
	harness_sleep_ms(1100);
	n = harness_rtp(b, 2, 320, 0xbad, 100);
	a.id = "many-last";
	ck_assert_int_eq(harness_create(c, &a, &resp, NULL, 0), RP_OK);
	ck_assert_int_eq(harness_send(bad, "127.0.0.1",
	    (uint16_t)resp->session->listen->port, b, n), 0);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (lines < 30)
		ck_assert_int_eq(harness_wait_log(&d, "latch and refusal lines "
		    "not logged", 1, 3000), 0);
	rpc_stream_free(s);
	for (i = 0; i < 30; i++)
		ck_assert_int_eq(harness_destroy(c, id[i]), RP_OK);
	ck_assert_int_eq(harness_destroy(c, "many-last"), RP_OK);
	close(bad);
	rpc_client_free(c);
}
END_TEST

/* Does port-range lo..hi overlap the kernel's unreserved ephemeral ports? */
static int
overlaps(uint16_t lo, uint16_t hi)
{
	char	range[64] = "", reserved[4096] = "";
	FILE	*f;
	uint16_t a, b;

	if ((f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) !=
	    NULL) {
		if (fgets(range, sizeof(range), f) == NULL)
			range[0] = '\0';
		fclose(f);
	}
	if ((f = fopen("/proc/sys/net/ipv4/ip_local_reserved_ports", "r")) !=
	    NULL) {
		if (fgets(reserved, sizeof(reserved), f) == NULL)
			reserved[0] = '\0';
		fclose(f);
	}
	return ports_ephemeral(lo, hi, range, reserved, &a, &b) > 0;
}

/* A warning when the media ports may be handed out to other programs. */
START_TEST(ephemeral_warning)
{
	const char	*w = "net.ipv4.ip_local_port_range";
	char		 line[64];
	uint16_t	 lo = (uint16_t)(d.port_max + 1 <= 59800 ?
			    d.port_max + 1 : 42000);

	need_daemon();
	ck_assert_int_eq(harness_log_count(&d, w),
	    overlaps(d.port_min, d.port_max));
	/* Unchanged on SIGHUP: not again. */
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_eq(harness_log_count(&d, w),
	    overlaps(d.port_min, d.port_max));
	/* A new range is checked too (it needs a restart). */
	snprintf(line, sizeof(line), "port-range %u %u", lo, lo + 199);
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	snprintf(line, sizeof(line), "port-range %u-%u", lo, lo + 199);
	ck_assert_int_eq(harness_log_count(&d, line) >= 1,
	    overlaps(lo, (uint16_t)(lo + 199)));
	ck_assert_int_eq(harness_log_count(&d, w),
	    overlaps(d.port_min, d.port_max) + overlaps(lo,
	    (uint16_t)(lo + 199)));
}
END_TEST

/* --- item 4: latch policies ----------------------------------------------- */

/*
 * During a call, one packet from elsewhere, then a run of them in
 * sequence, then RTCP: none of it moves the latch, and the reverse media
 * stays with the caller.
 */
START_TEST(bleed_refused)
{
	struct rpc_client	*c;
	struct rpc_stream	*s;
	struct call		 k;
	Rtpproxy__SessionInfo	*si;
	Rtpproxy__SessionEvent	*ev;
	uint16_t		 aseq = 7000, aport;
	int			 att[2], ga, gc, i;

	need_daemon();
	c = client();
	s = subscribe(c, "bleed");
	call_open(c, &k, "bleed", 0);
	aport = pair_on("127.0.0.3", att);
	talk_for(&k, LEARN_MS + 200);

	/*
	 * One packet, right after one of the caller's; then 20 reverse
	 * packets while the caller pauses (400 ms, less than the quiet time).
	 */
	talk(&k);
	rtp_from(&k, att[0], 0x6666, &aseq);
	reverse(&k, 0, 20, 0, att[0], &ga, k.caller[0], &gc);
	ck_assert_msg(ga == 0 && gc == 20, "attacker got %d, caller %d", ga,
	    gc);
	ck_assert_ptr_nonnull(ev = wait_event(s, EV_REFUSED, "bleed", 3000));
	ck_assert_str_eq(ev->address->address, "127.0.0.3");
	ck_assert_uint_eq(ev->address->port, aport);
	ck_assert_msg(strstr(ev->reason, "latch-policy learn") != NULL, "%s",
	    ev->reason);
	free_event(ev);

	/* A run in sequence, right after the caller's packet. */
	talk_for(&k, 100);
	talk(&k);
	for (i = 0; i < 3 * RUN; i++)
		rtp_from(&k, att[0], 0x6666, &aseq);
	reverse(&k, 0, 20, 0, att[0], &ga, k.caller[0], &gc);
	ck_assert_msg(ga == 0 && gc == 20, "attacker got %d, caller %d", ga,
	    gc);
	/* ... and while the caller talks. */
	for (i = 0; i < 3 * RUN; i++) {
		talk(&k);
		rtp_from(&k, att[0], 0x6666, &aseq);
	}
	reverse(&k, 0, 20, 1, att[0], &ga, k.caller[0], &gc);
	ck_assert_msg(ga == 0 && gc == 20, "attacker got %d, caller %d", ga,
	    gc);

	/* RTCP, from elsewhere than the caller's address. */
	rtcp_from(&k, att[1], 0x6666);
	reverse(&k, 1, 20, 1, att[1], &ga, k.caller[1], &gc);
	ck_assert_msg(ga == 0 && gc == 20, "RTCP: attacker got %d, caller %d",
	    ga, gc);

	si = status(c, "bleed");
	ck_assert_int_eq(si->latch_policy, POL_LEARN);
	ck_assert_uint_eq(si->latched->port, k.cport);
	ck_assert_ptr_nonnull(si->latched_rtcp);
	ck_assert_uint_eq(si->latched_rtcp->port, k.cport + 1);
	ck_assert_uint_eq(si->relatches, 0);
	ck_assert_uint_eq(si->forward_stats->dropped_source, 1 + 6 * RUN + 1);
	harness_info_free(si);
	ck_assert_ptr_null(wait_event(s, EV_RELATCHED, "bleed", 200));
	ck_assert_int_ge(harness_log_count(&d, "session bleed: RTP sender "
	    "127.0.0.3"), 1);
	rpc_stream_free(s);
	call_close(c, &k);
	close(att[0]);
	close(att[1]);
	rpc_client_free(c);
}
END_TEST

/*
 * The caller's NAT binding changes: the old address goes quiet, the new
 * one sends in sequence, and the latch moves, RTCP after it.
 */
START_TEST(nat_rebinding)
{
	struct rpc_client	*c;
	struct rpc_stream	*s;
	struct call		 k;
	Rtpproxy__SessionInfo	*si;
	Rtpproxy__SessionEvent	*ev;
	uint8_t			 b[256], got[256];
	uint16_t		 nport;
	int			 nat[2], moved = 0, ga, gc;
	int64_t			 quiet_from, waited = 0;
	size_t			 n;

	need_daemon();
	c = client();
	s = subscribe(c, "rebind");
	call_open(c, &k, "rebind", POL_LEARN);
	nport = pair_on("127.0.0.4", nat);
	talk_for(&k, LEARN_MS + 200);
	/* Before the caller's last packet: its receive time is later. */
	quiet_from = harness_now_ms();
	talk(&k);
	/* The new address sends on with the stream's SSRC and sequence. */
	while (!moved && harness_now_ms() - quiet_from < 10 * QUIET_MS) {
		rtp_from(&k, nat[0], k.ssrc, &k.seq);
		n = harness_rtp(b, 1, 160, 0xde57, 100);
		ck_assert_int_eq(harness_send(k.dst[0], "127.0.0.1", k.fport,
		    b, n), 0);
		if (harness_recv(nat[0], got, sizeof(got), 20, NULL) ==
		    (ssize_t)n) {
			moved = 1;
			waited = harness_now_ms() - quiet_from;
		}
	}
	ck_assert_msg(moved, "the latch did not move to the new address");
	/* Not before the old address was quiet long enough (give or take
	 * the millisecond each clock reading rounds off). */
	ck_assert_msg(waited >= QUIET_MS - 2, "moved after %lld ms",
	    (long long)waited);
	ck_assert_ptr_nonnull(ev = wait_event(s, EV_RELATCHED, "rebind",
	    3000));
	ck_assert_str_eq(ev->address->address, "127.0.0.4");
	ck_assert_uint_eq(ev->address->port, nport);
	ck_assert_ptr_nonnull(ev->previous_address);
	ck_assert_uint_eq(ev->previous_address->port, k.cport);
	ck_assert(!ev->rtcp);
	ck_assert_msg(strstr(ev->reason, "quiet") != NULL, "%s", ev->reason);
	free_event(ev);
	ck_assert_int_eq(harness_wait_log(&d, "session rebind: RTP "
	    "re-latched from 127.0.0.1", 1, 3000), 0);

	/* RTCP follows RTP to the new address. */
	rtcp_from(&k, nat[1], k.ssrc);
	ck_assert_ptr_nonnull(ev = wait_event(s, EV_RELATCHED, "rebind",
	    3000));
	ck_assert(ev->rtcp);
	ck_assert_uint_eq(ev->address->port, nport + 1);
	free_event(ev);
	drain(nat[0], 50);
	reverse(&k, 1, 5, 0, nat[1], &ga, k.caller[1], &gc);
	ck_assert_msg(ga == 5 && gc == 0, "RTCP: new %d, old %d", ga, gc);
	/* ... and the old address does not take it back. */
	rtcp_from(&k, k.caller[1], k.ssrc);
	reverse(&k, 1, 5, 0, nat[1], &ga, k.caller[1], &gc);
	ck_assert_msg(ga == 5 && gc == 0, "RTCP: new %d, old %d", ga, gc);

	si = status(c, "rebind");
	ck_assert_uint_eq(si->latched->port, nport);
	ck_assert_uint_eq(si->latched_rtcp->port, nport + 1);
	ck_assert_uint_eq(si->relatches, 2);
	harness_info_free(si);
	rpc_stream_free(s);
	call_close(c, &k);
	close(nat[0]);
	close(nat[1]);
	rpc_client_free(c);
}
END_TEST

/* latch-policy never: the first address, for good. */
START_TEST(never_moves)
{
	struct rpc_client	*c;
	struct call		 k;
	Rtpproxy__SessionInfo	*si;
	int			 nat[2], ga, gc;
	int64_t			 from;

	need_daemon();
	c = client();
	call_open(c, &k, "never", POL_NEVER);
	(void)pair_on("127.0.0.4", nat);
	/* The caller goes quiet; a new address sends in sequence. */
	from = harness_now_ms();
	while (harness_now_ms() - from < QUIET_MS + 1000 * harness_slow()) {
		rtp_from(&k, nat[0], k.ssrc, &k.seq);
		harness_sleep_ms(20);
	}
	rtcp_from(&k, nat[1], k.ssrc);
	reverse(&k, 0, 10, 0, nat[0], &ga, k.caller[0], &gc);
	ck_assert_msg(ga == 0 && gc == 10, "new got %d, caller %d", ga, gc);
	reverse(&k, 1, 5, 0, nat[1], &ga, k.caller[1], &gc);
	ck_assert_msg(ga == 0 && gc == 5, "RTCP: new got %d, caller %d", ga,
	    gc);
	si = status(c, "never");
	ck_assert_int_eq(si->latch_policy, POL_NEVER);
	ck_assert_uint_eq(si->latched->port, k.cport);
	ck_assert_uint_eq(si->relatches, 0);
	ck_assert_uint_eq(si->forward_stats->packets_sent, 1);
	harness_info_free(si);
	call_close(c, &k);
	close(nat[0]);
	close(nat[1]);
	rpc_client_free(c);
}
END_TEST

/* latch-policy latest, asked for: the old behaviour, now with events. */
START_TEST(latest_opt_in)
{
	struct rpc_client	*c;
	struct rpc_stream	*s;
	struct call		 k;
	Rtpproxy__SessionInfo	*si;
	Rtpproxy__SessionEvent	*ev;
	uint16_t		 aseq = 7000, aport;
	int			 att[2], ga, gc;

	need_daemon();
	c = client();
	s = subscribe(c, "latest");
	call_open(c, &k, "latest", POL_LATEST);
	aport = pair_on("127.0.0.3", att);
	talk_for(&k, LEARN_MS + 200);
	rtp_from(&k, att[0], 0x6666, &aseq);
	reverse(&k, 0, 10, 0, att[0], &ga, k.caller[0], &gc);
	ck_assert_msg(ga == 10 && gc == 0, "attacker got %d, caller %d", ga,
	    gc);
	ck_assert_ptr_nonnull(ev = wait_event(s, EV_RELATCHED, "latest",
	    3000));
	ck_assert_uint_eq(ev->address->port, aport);
	ck_assert_uint_eq(ev->previous_address->port, k.cport);
	ck_assert_msg(strstr(ev->reason, "latch-policy latest") != NULL, "%s",
	    ev->reason);
	free_event(ev);
	rtcp_from(&k, att[1], 0x6666);
	reverse(&k, 1, 5, 0, att[1], &ga, k.caller[1], &gc);
	ck_assert_msg(ga == 5 && gc == 0, "RTCP: attacker got %d, caller %d",
	    ga, gc);
	si = status(c, "latest");
	ck_assert_int_eq(si->latch_policy, POL_LATEST);
	ck_assert_uint_eq(si->relatches, 2);
	harness_info_free(si);
	rpc_stream_free(s);
	call_close(c, &k);

	/* The configured default changes on SIGHUP, for new sessions. */
	ck_assert_int_eq(harness_conf_add(&d, "latch-policy latest"), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	call_open(c, &k, "latest-2", 0);
	si = status(c, "latest-2");
	ck_assert_int_eq(si->latch_policy, POL_LATEST);
	harness_info_free(si);
	call_close(c, &k);
	ck_assert_int_eq(harness_conf_set(&d, "latch-policy learn"), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	close(att[0]);
	close(att[1]);
	rpc_client_free(c);
}
END_TEST

/* The policy in status and in rtpproxyctl; what is refused. */
START_TEST(policy_api)
{
	struct rpc_client	*c;
	struct harness_session	 a = { .id = "pol", .laddr = "127.0.0.1",
	    .daddr = "127.0.0.1", .dport = 40000 };
	Rtpproxy__SessionInfo	*si;
	char			 cmd[1024], out[8192], det[256];

	need_daemon();
	c = client();
	a.latch_policy = 9;
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    RP_INVALID_ARGUMENT);
	ck_assert_msg(strstr(det, "latch_policy 9") != NULL, "%s", det);
	a.latch_policy = POL_NEVER;
	a.transport = 1;
	ck_assert_int_eq(harness_create(c, &a, NULL, det, sizeof(det)),
	    RP_INVALID_ARGUMENT);
	ck_assert_msg(strstr(det, "latch_policy") != NULL, "%s", det);
	a.transport = 0;
	a.latch_policy = 0;
	ck_assert_int_eq(harness_create(c, &a, NULL, NULL, 0), RP_OK);
	si = status(c, "pol");
	ck_assert_int_eq(si->latch_policy, POL_LEARN);
	ck_assert_uint_eq(si->relatches, 0);
	ck_assert_ptr_null(si->latched_rtcp);
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "pol"), RP_OK);

	snprintf(cmd, sizeof(cmd), "'%s' -s %s create -i pol-ctl -l 127.0.0.1 "
	    "-d 127.0.0.1:40000 --latch never 2>&1 && '%s' -s %s status "
	    "pol-ctl && '%s' -s %s -j status pol-ctl", getenv("RTPPROXYCTL"),
	    d.grpc, getenv("RTPPROXYCTL"), d.grpc, getenv("RTPPROXYCTL"),
	    d.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "latch policy   never") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\"latch_policy\":\"never\"") != NULL, "%s",
	    out);
	snprintf(cmd, sizeof(cmd), "'%s' -s %s create -l 127.0.0.1 "
	    "-d 127.0.0.1:40000 --latch sometimes 2>&1", getenv("RTPPROXYCTL"),
	    d.grpc);
	ck_assert_int_eq(harness_run(cmd, out, sizeof(out)), 64);
	ck_assert_int_eq(harness_destroy(c, "pol-ctl"), RP_OK);
	rpc_client_free(c);
}
END_TEST

int
main(void)
{
	const TTest *const t_colocated[] = { caller_in_range, dest_in_range,
	    own_ports, refused_visible, refused_bounded, ephemeral_warning,
	    NULL };
	const TTest *const t_takeover[] = { own_ports_takeover, NULL };
	const TTest *const t_policy[] = { bleed_refused, nat_rebinding,
	    never_moves, latest_opt_in, policy_api, NULL };
	Suite	*s = suite_create("latch");

	harness_tcase(s, "colocated", up_colocated, down, 90, t_colocated);
	harness_tcase(s, "takeover", up_colocated, down, 60, t_takeover);
	harness_tcase(s, "policy", up_policy, down, 90, t_policy);
	return harness_run_suite(s);
}
