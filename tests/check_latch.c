/*
 * The caller's latch, through the real daemon: a caller on this host whose
 * port lies in the media port range (only the daemon's own sockets are
 * refused), refused senders made visible (an event, a log line, both
 * rate-limited), and the warning about the kernel's ephemeral ports.
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
#include "rtpproxyd.h"

#define M_EVENTS	"/rtpproxy.RtpProxy/StreamSessionEvents"

#define EV_REFUSED	RTPPROXY__EVENT_TYPE__EVENT_TYPE_SOURCE_REFUSED

static struct daemon	d;

static int64_t
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

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
	int64_t			 until = mono() + ms * harness_slow(), left;

	while ((left = until - mono()) > 0) {
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
	ck_assert_int_eq(si->state, RTPPROXY__SESSION_STATE__SESSION_STATE_ACTIVE);
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
		sleep_ms(10);
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
	    .daddr = "127.0.0.1", .dport = 40000, .nortcp = 1 };
	Rtpproxy__CreateSessionResponse *resp;
	uint16_t		 lport, fport;
	pid_t			 old = d.pid;
	int			 slot, i;

	need_daemon();
	c = client();
	ck_assert_int_eq(harness_create(c, &u, &resp, NULL, 0), RP_OK);
	lport = (uint16_t)resp->session->listen->port;
	fport = (uint16_t)resp->session->forward->port;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	rpc_client_free(c);
	ck_assert_int_eq(shm_attach(&t, d.shm), 0);
	ck_assert_int_ge(slot = slot_of(&t, "own-take"), 0);
	ck_assert_int_eq(kill(old, SIGKILL), 0);
	for (i = 0; i < 250 && harness_alive(old); i++)
		sleep_ms(20);
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
	ck_assert_int_eq(harness_destroy(c, "own-take"), RP_OK);
	for (i = 0; i < 300 && atomic_load(&t.ports->owner[0][lport]) != 0;
	    i++)
		sleep_ms(10);
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
	sleep_ms(5000);
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
	int			 bad, i, lines;
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
	lines = harness_log_count(&d, ": RTP sender 127.0.0.3");
	/* At most 10 a second: the 30 fell in one second or two. */
	ck_assert_msg(lines >= 1 && lines <= 20, "%d lines", lines);
	/* The next one a second later says how many were not logged. */
	sleep_ms(1100);
	n = harness_rtp(b, 2, 320, 0xbad, 100);
	a.id = "many-last";
	ck_assert_int_eq(harness_create(c, &a, &resp, NULL, 0), RP_OK);
	ck_assert_int_eq(harness_send(bad, "127.0.0.1",
	    (uint16_t)resp->session->listen->port, b, n), 0);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	ck_assert_int_eq(harness_wait_log(&d, "latch and refusal lines not "
	    "logged", 1, 3000), 0);
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

int
main(void)
{
	const TTest *const t_colocated[] = { caller_in_range, own_ports,
	    refused_visible, refused_bounded, ephemeral_warning, NULL };
	const TTest *const t_takeover[] = { own_ports_takeover, NULL };
	Suite	*s = suite_create("latch");

	harness_tcase(s, "colocated", up_colocated, down, 90, t_colocated);
	harness_tcase(s, "takeover", up_colocated, down, 60, t_takeover);
	return harness_run_suite(s);
}
