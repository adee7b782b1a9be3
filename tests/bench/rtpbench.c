/*
 * rtpbench: load for a running rtpproxyd.  It opens sessions over gRPC,
 * sends paced RTP from one caller socket per session, receives it at one
 * destination socket per session, and reports throughput, loss, the
 * end-to-end latency distribution, and the daemon's CPU time per packet
 * and memory.  One thread, one epoll loop.  See tests/bench/README.
 *
 * The other modes start the relays themselves: -C compares rtpproxyd with
 * the reference relay (compare.c), -F floods them, -P measures the
 * control-plane rate (ctlrate.c).
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"
#include "client.h"
#include "rtpproxy.pb-c.h"
#include "bench.h"

#define M_CREATE	"/rtpproxy.RtpProxy/CreateSession"
#define M_DESTROY	"/rtpproxy.RtpProxy/DestroySession"

#define RX_BATCH	32
#define PKT_MAX		1500
#define STAMP_LEN	12		/* send time (8) + session (4) */
#define GEN_STAMP_LEN	16		/* the other modes': gen.c */

struct bsess {
	int			 caller;	/* sends to the listen port */
	int			 dest;		/* the destination */
	struct sockaddr_storage	 listen;
	socklen_t		 listenlen;
	char			 id[SHM_ID_MAX];
	uint16_t		 seq;
	uint64_t		 sent, received;
};

volatile sig_atomic_t		 bench_stop;
static struct bsess		*ss;
static int			 nsess;
static uint64_t			 hist[HIST_US + 1];
static uint64_t			 lat_max_ns, lat_count, misrouted;
static int			 payload = 160;
static uint64_t			 px_sent, px_dropped;
static double			 px_lat_sum, px_lat_max;

/*
 * Hosts of their own (load mode): callers and destinations in network
 * namespaces (/run/netns/NAME), the sessions' listen and forward
 * addresses on the relay's side, the destinations' address; NULL: -a.
 * direct: no relay, the callers send to the destinations themselves
 * (through whatever routes between them), for the cost of the path alone.
 * o_ref (-Y): the reference relay, started here (in our namespace,
 * unpinned, as the daemon of this mode is), instead of a daemon's
 * sessions.
 */
static const char		*o_caller_ns, *o_dest_ns;
static const char		*o_listen, *o_forward, *o_dest;
static const char		*o_ref;
static int			 o_direct;

static __dead void
usage(void)
{
	fprintf(stderr, "usage: rtpbench [-s host:port] [-n sessions] "
	    "[-r pps_per_session | 0] [-d seconds]\n"
	    "                [-b payload_bytes] [-a media_address] "
	    "[-p daemon_pid]\n"
	    "                [-x caller_netns] [-y dest_netns] [-L listen_addr] "
	    "[-f forward_addr]\n"
	    "                [-A dest_addr] [-0 | -Y refrelay] [-W]\n"
	    "       rtpbench -C -X rtpproxyd -Y refrelay [-B] [-N n,n,...] "
	    "[-R pps] [-t step_s]\n"
	    "                [-d seconds] [-G burst] [-T tries] [-c cpu] "
	    "[-o 'key value']\n"
	    "                [-b bytes] [-a address] [-W]\n"
	    "       rtpbench -F [-X rtpproxyd] [-Y refrelay] [-B] "
	    "[-n streams] [-d seconds] [-G burst]\n"
	    "                [-c cpu] [-o 'key value'] [-b bytes] "
	    "[-a address]\n"
	    "       rtpbench -P [-X rtpproxyd | -s host:port [-p pid]] "
	    "[-i in_flight] [-d seconds]\n"
	    "                [-c cpu] [-o 'key value'] [-a address]\n");
	exit(2);
}

static void
on_signal(int sig)
{
	bench_stop = 1;
}

/* ------------------------------------------------------------------ */

static int
bind_udp(const struct sockaddr_storage *addr, socklen_t len, uint16_t *port)
{
	struct sockaddr_storage	a = *addr;
	socklen_t		alen = len;
	int			fd, sz = 1 << 20;

	if ((fd = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	/* the bench must not be where packets are lost */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (bind(fd, (struct sockaddr *)&a, alen) == -1 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) == -1) {
		close(fd);
		return -1;
	}
	if (port != NULL)
		*port = ntohs(a.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&a)->sin6_port :
		    ((struct sockaddr_in *)&a)->sin_port);
	return fd;
}

/* bind_udp in network namespace ns (NULL: ours); -1 on failure. */
static int
bind_udp_ns(const char *ns, const struct sockaddr_storage *addr,
    socklen_t len, uint16_t *port)
{
	char	path[300];
	int	self, other, fd, saved;

	if (ns == NULL)
		return bind_udp(addr, len, port);
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	if ((self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if ((other = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    setns(other, CLONE_NEWNET) == -1) {
		saved = errno;
		if (other != -1)
			close(other);
		close(self);
		errno = saved;
		return -1;
	}
	fd = bind_udp(addr, len, port);
	saved = errno;
	if (setns(self, CLONE_NEWNET) == -1) {
		perror("rtpbench: setns back");
		exit(1);
	}
	close(self);
	close(other);
	errno = saved;
	return fd;
}

/* All CPUs' busy and steal time (/proc/stat, ticks): softirq included. */
static int
machine_busy(uint64_t *busy, uint64_t *steal, uint64_t *total)
{
	unsigned long long	v[8] = { 0 };
	FILE			*f;
	int			 n;

	if ((f = fopen("/proc/stat", "r")) == NULL)
		return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
	    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return -1;
	/* user nice system idle iowait irq softirq steal */
	*busy = v[0] + v[1] + v[2] + v[5] + v[6];
	*steal = v[7];
	*total = *busy + v[3] + v[4] + v[7];
	return 0;
}

static int			 record_all;	/* -W */

static int
create_session(struct rpc_client *c, const char *addr, struct bsess *b,
    uint16_t dport)
{
	Rtpproxy__CreateSessionRequest	 req =
	    RTPPROXY__CREATE_SESSION_REQUEST__INIT;
	Rtpproxy__Endpoint		 l = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 f = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 d = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__CreateSessionResponse	*resp = NULL;
	char				 details[256];
	int				 rc;

	l.address = (char *)(o_listen != NULL ? o_listen : addr);
	f.address = (char *)(o_forward != NULL ? o_forward : addr);
	d.address = (char *)(o_dest != NULL ? o_dest : addr);
	d.port = dport;
	req.listen = &l;
	req.forward = &f;
	req.destination = &d;
	req.disable_rtcp = 1;
	req.record = record_all;
	rc = rpc_unary(c, M_CREATE, &req.base,
	    &rtpproxy__create_session_response__descriptor,
	    (ProtobufCMessage **)&resp, details, sizeof(details), 10000);
	if (rc != 0 || resp == NULL || resp->session == NULL ||
	    resp->session->listen == NULL) {
		fprintf(stderr, "rtpbench: CreateSession: status %d: %s\n", rc,
		    details);
		if (resp != NULL)
			protobuf_c_message_free_unpacked(&resp->base, NULL);
		return -1;
	}
	snprintf(b->id, sizeof(b->id), "%s", resp->session->session_id);
	if (parse_ip(l.address, (uint16_t)resp->session->listen->port,
	    &b->listen, &b->listenlen) == -1) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return -1;
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static void
destroy_session(struct rpc_client *c, struct bsess *b)
{
	Rtpproxy__DestroySessionRequest	 req =
	    RTPPROXY__DESTROY_SESSION_REQUEST__INIT;
	Rtpproxy__DestroySessionResponse *resp = NULL;
	Rtpproxy__DirectionStats	*st;
	char				 details[256];
	int				 rc;

	if (b->id[0] == '\0')
		return;
	req.session_id = b->id;
	rc = rpc_unary(c, M_DESTROY, &req.base,
	    &rtpproxy__destroy_session_response__descriptor,
	    (ProtobufCMessage **)&resp, details, sizeof(details), 5000);
	if (rc != 0)
		fprintf(stderr, "rtpbench: DestroySession %s: status %d: %s\n",
		    b->id, rc, details);
	else if (resp != NULL && resp->session != NULL &&
	    resp->session->forward_stats != NULL) {
		/* the daemon's own measure: kernel receive to sent */
		st = resp->session->forward_stats;
		px_sent += st->packets_sent;
		px_lat_sum += st->avg_latency_ms * (double)st->packets_sent;
		if (st->max_latency_ms > px_lat_max)
			px_lat_max = st->max_latency_ms;
		px_dropped += st->packets_dropped;
	}
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	b->id[0] = '\0';
}

static int
send_one(int i)
{
	struct bsess	*b = &ss[i];
	uint8_t		 pkt[PKT_MAX];
	int64_t		 now = mono_ns();
	uint32_t	 ts = (uint32_t)b->seq * 160;
	uint32_t	 ssrc = 0x10000u + (uint32_t)i, idx = (uint32_t)i;
	size_t		 len = RTP_HDR_MIN + (size_t)payload;

	memset(pkt, 0, len);
	pkt[0] = 0x80;
	pkt[1] = 0;
	pkt[2] = b->seq >> 8;
	pkt[3] = b->seq & 0xff;
	pkt[4] = ts >> 24;
	pkt[5] = ts >> 16;
	pkt[6] = ts >> 8;
	pkt[7] = ts & 0xff;
	pkt[8] = ssrc >> 24;
	pkt[9] = ssrc >> 16;
	pkt[10] = ssrc >> 8;
	pkt[11] = ssrc & 0xff;
	memcpy(pkt + RTP_HDR_MIN, &now, sizeof(now));
	memcpy(pkt + RTP_HDR_MIN + sizeof(now), &idx, sizeof(idx));
	if (sendto(b->caller, pkt, len, 0, (struct sockaddr *)&b->listen,
	    b->listenlen) != (ssize_t)len)
		return -1;	/* counted as offered and lost */
	b->seq++;
	b->sent++;
	return 0;
}

static uint64_t
drain(int i)
{
	static uint8_t		 bufs[RX_BATCH][PKT_MAX];
	static struct mmsghdr	 mm[RX_BATCH];
	static struct iovec	 iov[RX_BATCH];
	struct bsess		*b = &ss[i];
	uint64_t		 got = 0;
	int64_t			 now, sent, lat;
	uint32_t		 idx;
	int			 k, n;

	for (;;) {
		for (k = 0; k < RX_BATCH; k++) {
			iov[k].iov_base = bufs[k];
			iov[k].iov_len = PKT_MAX;
			memset(&mm[k].msg_hdr, 0, sizeof(mm[k].msg_hdr));
			mm[k].msg_hdr.msg_iov = &iov[k];
			mm[k].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(b->dest, mm, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return got;
		now = mono_ns();
		for (k = 0; k < n; k++) {
			if (mm[k].msg_len < RTP_HDR_MIN + STAMP_LEN)
				continue;
			memcpy(&sent, bufs[k] + RTP_HDR_MIN, sizeof(sent));
			memcpy(&idx, bufs[k] + RTP_HDR_MIN + sizeof(sent),
			    sizeof(idx));
			if (idx != (uint32_t)i)
				misrouted++;
			lat = now - sent;
			if (lat < 0)
				lat = 0;
			if ((uint64_t)lat > lat_max_ns)
				lat_max_ns = (uint64_t)lat;
			hist[lat / 1000 < HIST_US ? lat / 1000 : HIST_US]++;
			lat_count++;
			b->received++;
			got++;
		}
		if (n < RX_BATCH)
			return got;
	}
}

static double
percentile(double p)
{
	uint64_t	want, acc = 0;
	int		i;

	if (lat_count == 0)
		return 0;
	want = (uint64_t)(p / 100.0 * (double)lat_count);
	if (want >= lat_count)
		want = lat_count - 1;
	for (i = 0; i <= HIST_US; i++) {
		acc += hist[i];
		if (acc > want)
			return i < HIST_US ? i : (double)lat_max_ns / 1000;
	}
	return (double)lat_max_ns / 1000;
}

/* Wait for datagrams up to timeout_ns and account them. */
static uint64_t
poll_rx(int ep, int64_t timeout_ns)
{
	struct epoll_event	ev[256];
	struct timespec		ts;
	uint64_t		got = 0;
	int			n, k;

	if (timeout_ns < 0)
		timeout_ns = 0;
	ts.tv_sec = timeout_ns / 1000000000;
	ts.tv_nsec = timeout_ns % 1000000000;
	n = epoll_pwait2(ep, ev, 256, &ts, NULL);
	for (k = 0; k < n; k++)
		got += drain((int)ev[k].data.u32);
	return got;
}

/* The original mode: N sessions through a running daemon. */
static int
classic_run(const char *server, const char *addr, uint32_t pps,
    uint32_t secs, uint32_t n, pid_t dpid)
{
	struct rpc_client	*c;
	struct sockaddr_storage	 media;
	struct epoll_event	 ev;
	struct cpu		 c0, c1;
	struct sockaddr_storage	 dmedia;
	socklen_t		 medialen, dmedialen;
	uint64_t		 mb0 = 0, mb1 = 0, ms0 = 0, ms1 = 0, mt0 = 0;
	uint64_t		 mt1 = 0;
	long			 hz = sysconf(_SC_CLK_TCK);
	double			 base = 0, net, bcpu;
	struct rusage		 ru0, ru1;
	int64_t			 t0, t_end, now, next, interval = 0, elapsed;
	uint64_t		 k = 0, sent = 0, recvd = 0, got;
	uint64_t		 written_off = 0;
	uint64_t		 window, rss_master = 0, rss_workers = 0;
	double			 cpu, wall;
	int			 ep, i, gone, rc = 0;
	uint16_t		 dport;
	static struct target	 rt;
	struct bopts		 ro;
	struct bsession		 rb;

	rt.pid = -1;
	if (parse_ip(addr, 0, &media, &medialen) == -1 ||
	    parse_ip(o_dest != NULL ? o_dest : addr, 0, &dmedia,
	    &dmedialen) == -1) {
		fprintf(stderr, "rtpbench: %s: not an IP address\n", addr);
		return 2;
	}

	if ((c = rpc_client_new(server)) == NULL) {
		fprintf(stderr, "rtpbench: cannot make a client for %s\n",
		    server);
		return 1;
	}
	if ((ss = calloc(n, sizeof(*ss))) == NULL ||
	    (ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("rtpbench");
		return 1;
	}
	if (o_ref != NULL) {
		memset(&ro, 0, sizeof(ro));
		ro.relay_cpu = -1;
		if (target_start(&rt, T_REF, o_ref, &ro, (int)n) == -1)
			return 1;
		if (dpid <= 0)
			dpid = rt.pid;
	}
	for (i = 0; i < (int)n && !bench_stop; i++) {
		ss[i].caller = bind_udp_ns(o_caller_ns, &media, medialen, NULL);
		ss[i].dest = bind_udp_ns(o_dest_ns, &dmedia, dmedialen, &dport);
		if (ss[i].caller == -1 || ss[i].dest == -1) {
			perror("rtpbench: socket");
			rc = 1;
			break;
		}
		nsess = i + 1;
		if (o_direct) {
			/* no relay: straight to the destination */
			if (parse_ip(o_dest != NULL ? o_dest : addr, dport,
			    &ss[i].listen, &ss[i].listenlen) == -1) {
				rc = 1;
				break;
			}
		} else if (o_ref != NULL) {
			if (target_ref_add(&rt, o_listen != NULL ? o_listen :
			    addr, o_dest != NULL ? o_dest : addr, dport,
			    &rb) == -1) {
				rc = 1;
				break;
			}
			ss[i].listen = rb.listen;
			ss[i].listenlen = rb.listenlen;
		} else if (create_session(c, addr, &ss[i], dport) == -1) {
			rc = 1;
			break;
		}
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, ss[i].dest, &ev) == -1) {
			perror("rtpbench: epoll_ctl");
			rc = 1;
			break;
		}
	}
	if (rc == 0 && !bench_stop && o_ref != NULL &&
	    target_ref_ready(&rt) == -1)
		rc = 1;
	if (rc != 0 || bench_stop)
		goto out;

	/*
	 * The machine without our traffic, for a second: what the other
	 * jobs on it keep busy, taken off the figure below.
	 */
	(void)machine_busy(&mb0, &ms0, &mt0);
	now = mono_ns();
	while (mono_ns() < now + 1000000000 && !bench_stop)
		(void)poll_rx(ep, 100000000);
	(void)machine_busy(&mb1, &ms1, &mt1);
	base = (double)(mb1 - mb0) / ((double)(mono_ns() - now) / 1e9);
	/*
	 * Ten packets a session first, 100 ms apart, not measured: the
	 * latches and the caches warm, the directions a relay hands to the
	 * kernel handed over (it waits for 8 valid RTP packets).
	 */
	for (k = 0; k < 10 && !bench_stop; k++) {
		for (i = 0; i < nsess; i++)
			(void)send_one(i);
		now = mono_ns();
		while ((t0 = mono_ns()) < now + 100000000)
			(void)poll_rx(ep, now + 100000000 - t0);
	}
	k = 0;
	for (i = 0; i < nsess; i++)
		ss[i].sent = ss[i].received = 0;
	lat_count = lat_max_ns = 0;
	memset(hist, 0, sizeof(hist));
	cpu_sample(dpid, &c0);
	(void)machine_busy(&mb0, &ms0, &mt0);
	(void)getrusage(RUSAGE_SELF, &ru0);
	t0 = mono_ns();
	next = t0;
	t_end = t0 + (int64_t)secs * 1000000000;
	if (pps > 0)
		/* between two packets of all sessions together */
		interval = 1000000000 / ((int64_t)pps * n);
	/* as fast as possible: a window of packets in flight */
	window = n * 8 < 256 ? 256 : n * 8;
	if (window > 8192)
		window = 8192;
	next = t0;
	while (!bench_stop && (now = mono_ns()) < t_end) {
		if (pps > 0) {
			/*
			 * Packet k of all sessions is due at t0 + k * interval,
			 * round robin over sessions: each session sends every
			 * 1/pps s, the sessions evenly spread in between.
			 */
			for (i = 0; next <= now && i < 256; i++) {
				/* a failed send is offered and lost */
				(void)send_one((int)(k % n));
				sent++;
				k++;
				next = t0 + (int64_t)k * interval;
			}
			recvd += poll_rx(ep, next - mono_ns());
		} else {
			while ((int64_t)(sent - recvd) - (int64_t)written_off <
			    (int64_t)window) {
				(void)send_one((int)(k++ % n));
				sent++;
			}
			if ((got = poll_rx(ep, 5000000)) == 0)
				/* nothing for 5 ms: what is out is lost */
				written_off = sent - recvd;
			recvd += got;
		}
	}
	elapsed = mono_ns() - t0;
	/* late packets: wait for them a little */
	t_end = mono_ns() + 300000000;
	while (recvd < sent && (now = mono_ns()) < t_end)
		recvd += poll_rx(ep, t_end - now);
	cpu_sample(dpid, &c1);
	(void)machine_busy(&mb1, &ms1, &mt1);
	(void)getrusage(RUSAGE_SELF, &ru1);

	wall = (double)elapsed / 1e9;
	printf("sessions      %d\n", nsess);
	printf("duration      %.2f s, %d byte payload, %s\n", wall, payload,
	    pps > 0 ? "paced" : "as fast as possible");
	printf("offered       %.0f pkt/s (%" PRIu64 " packets%s)\n",
	    (double)sent / wall, sent, pps > 0 ? "" : ", windowed");
	printf("delivered     %.0f pkt/s (%" PRIu64 " packets)\n",
	    (double)recvd / wall, recvd);
	printf("loss          %.4f %%\n",
	    sent > 0 ? 100.0 * (double)(sent - (recvd < sent ? recvd : sent)) /
	    (double)sent : 0.0);
	if (misrouted > 0)
		printf("MISROUTED     %" PRIu64 " packets at the wrong "
		    "destination\n", misrouted);
	printf("latency (us)  p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  "
	    "max %.0f\n", percentile(50), percentile(90), percentile(99),
	    percentile(99.9), (double)lat_max_ns / 1000);
	if (mt1 > mt0 && hz > 0) {
		net = (double)(mb1 - mb0) - base * wall;
		if (net < 0)
			net = 0;
		printf("machine CPU   %.2f s busy, all CPUs, softirq included "
		    "(%.0f %% of the machine), %.2f us per packet delivered; "
		    "steal %.0f %%\n", (double)(mb1 - mb0) / (double)hz,
		    100.0 * (double)(mb1 - mb0) / (double)(mt1 - mt0),
		    recvd > 0 ? (double)(mb1 - mb0) / (double)hz * 1e6 /
		    (double)recvd : 0.0,
		    100.0 * (double)(ms1 - ms0) / (double)(mt1 - mt0));
		printf("machine net   %.2f s over the second before the run "
		    "(%.0f %% busy then), %.2f us per packet delivered\n",
		    net / (double)hz, 100.0 * base / (double)hz /
		    (double)sysconf(_SC_NPROCESSORS_ONLN), recvd > 0 ?
		    net / (double)hz * 1e6 / (double)recvd : 0.0);
	}
	/*
	 * Ours: the kernel work of a send (and of what a relay in the kernel
	 * does with it, in the softirq that runs as the send returns) and of
	 * a receive mostly lands here.
	 */
	bcpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
	    (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
	    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
	    (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
	printf("bench CPU     %.2f s, %.2f us per packet delivered\n", bcpu,
	    recvd > 0 ? bcpu * 1e6 / (double)recvd : 0.0);
	if (dpid > 0 && c0.n > 0) {
		cpu = cpu_delta(&c0, &c1, &gone);
		for (i = 0; i < c1.n; i++) {
			if (i == 0)
				rss_master = c1.rss_kb[i];
			else
				rss_workers += c1.rss_kb[i];
		}
		printf("daemon CPU    %.2f s over %.2f s (%.1f %% of one CPU), "
		    "%.2f us per packet relayed\n", cpu, wall,
		    100.0 * cpu / wall, recvd > 0 ? cpu * 1e6 /
		    (double)recvd : 0.0);
		printf("daemon RSS    master %.1f MiB, %d worker%s %.1f MiB "
		    "(shared table counted in each)\n",
		    (double)rss_master / 1024, c1.n - 1, c1.n == 2 ? "" : "s",
		    (double)rss_workers / 1024);
		if (gone > 0)
			printf("NOTE          %d daemon process(es) went away "
			    "during the run\n", gone);
	}
out:
	for (i = 0; i < nsess; i++) {
		destroy_session(c, &ss[i]);
		if (ss[i].caller != -1)
			close(ss[i].caller);
		if (ss[i].dest != -1)
			close(ss[i].dest);
	}
	if (rc == 0 && px_sent > 0)
		printf("in-proxy (us) avg %.1f  max %.0f, %" PRIu64 " sent, %"
		    PRIu64 " dropped (daemon's counters)\n",
		    px_lat_sum * 1000 / (double)px_sent, px_lat_max * 1000,
		    px_sent, px_dropped);
	free(ss);
	rpc_client_free(c);
	if (o_ref != NULL && rt.pid != -1)
		target_stop(&rt);
	return rc;
}

/* "20,1000,4000" */
static int
parse_counts(const char *s, struct bopts *o)
{
	char		 buf[256], *p, *q;
	uint32_t	 v;

	snprintf(buf, sizeof(buf), "%s", s);
	o->ncounts = 0;
	for (p = strtok_r(buf, ",", &q); p != NULL; p = strtok_r(NULL, ",",
	    &q)) {
		if (o->ncounts == (int)(sizeof(o->counts) /
		    sizeof(o->counts[0])) || parse_u32(p, 1, 11000, &v) == -1)
			return -1;
		o->counts[o->ncounts++] = (int)v;
	}
	return o->ncounts > 0 ? 0 : -1;
}

static int
parse_secs(const char *s, double lo, double hi, double *out)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

/* The relays' core (default 1), and ours: the first other one allowed. */
static void
pick_cpus(struct bopts *o, int relay_cpu)
{
	cpu_set_t	set;
	int		i, first = -1;

	if (sched_getaffinity(0, sizeof(set), &set) == -1) {
		CPU_ZERO(&set);
		CPU_SET(0, &set);
	}
	for (i = 0; i < CPU_SETSIZE && first == -1; i++)
		if (CPU_ISSET(i, &set))
			first = i;
	if (relay_cpu == -1)
		relay_cpu = CPU_ISSET(1, &set) ? 1 : first;
	o->relay_cpu = relay_cpu;
	o->bench_cpu = -1;
	for (i = 0; i < CPU_SETSIZE && o->bench_cpu == -1; i++)
		if (i != relay_cpu && CPU_ISSET(i, &set))
			o->bench_cpu = i;
	if (o->bench_cpu == -1) {
		o->bench_cpu = relay_cpu;
		fprintf(stderr, "rtpbench: one CPU only: the bench and the "
		    "relays share it, so the figures mean little\n");
	}
}

int
main(int argc, char *argv[])
{
	struct bopts		 o;
	struct sigaction	 sa;
	struct rlimit		 rl;
	const char		*dopt = NULL, *nopt = NULL, *ropt = NULL;
	uint32_t		 pps = 50, secs = 10, n = 10, v;
	int			 ch, mode = 0, relay_cpu = -1, rc;

	memset(&o, 0, sizeof(o));
	o.server = "127.0.0.1:50051";
	o.addr = "127.0.0.1";
	o.payload = 160;
	o.step_s = 2;
	o.inflight = 8;
	o.burst = 8;
	o.tries = 4;
	while ((ch = getopt(argc, argv,
	    "0A:a:Bb:Cc:d:f:FG:i:L:N:n:o:Pp:R:r:s:T:t:WX:x:Y:y:"))
	    != -1) {
		switch (ch) {
		case '0':
			o_direct = 1;
			break;
		case 'A':
			o_dest = optarg;
			break;
		case 'f':
			o_forward = optarg;
			break;
		case 'L':
			o_listen = optarg;
			break;
		case 'x':
			o_caller_ns = optarg;
			break;
		case 'y':
			o_dest_ns = optarg;
			break;
		case 'a':
			o.addr = optarg;
			break;
		case 'B':
			o.bidir = 1;
			break;
		case 'b':
			if (parse_u32(optarg, STAMP_LEN, PKT_MAX - RTP_HDR_MIN,
			    &v) == -1)
				usage();
			o.payload = payload = (int)v;
			break;
		case 'C':
		case 'F':
		case 'P':
			if (mode != 0 && mode != ch)
				usage();
			mode = ch;
			break;
		case 'c':
			if (parse_u32(optarg, 0, CPU_SETSIZE - 1, &v) == -1)
				usage();
			relay_cpu = (int)v;
			break;
		case 'd':
			dopt = optarg;
			break;
		case 'G':
			if (parse_u32(optarg, 1, 8, &v) == -1)
				usage();
			o.burst = (int)v;
			break;
		case 'i':
			if (parse_u32(optarg, 1, 1024, &v) == -1)
				usage();
			o.inflight = (int)v;
			break;
		case 'N':
			if (parse_counts(optarg, &o) == -1)
				usage();
			break;
		case 'n':
			nopt = optarg;
			if (parse_u32(optarg, 1, 100000, &n) == -1)
				usage();
			break;
		case 'o':
			if (o.nconf == MAX_CONF_LINES)
				usage();
			o.conf[o.nconf++] = optarg;
			break;
		case 'p':
			if (parse_u32(optarg, 1, INT32_MAX, &v) == -1)
				usage();
			o.dpid = (pid_t)v;
			break;
		case 'R':
			if (parse_secs(optarg, 100, 1e8, &o.rate) == -1)
				usage();
			break;
		case 'r':
			ropt = optarg;
			if (parse_u32(optarg, 0, 1000000, &pps) == -1)
				usage();
			break;
		case 's':
			o.server = optarg;
			break;
		case 'T':
			if (parse_u32(optarg, 1, 10, &v) == -1)
				usage();
			o.tries = (int)v;
			break;
		case 't':
			if (parse_secs(optarg, 0.05, 600, &o.step_s) == -1)
				usage();
			break;
		case 'W':
			o.record = record_all = 1;
			break;
		case 'X':
			o.rtpproxyd = optarg;
			break;
		case 'Y':
			o.refrelay = o_ref = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* thousands of sockets: as many descriptors as we may have */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}

	if (mode == 0) {
		if (dopt != NULL && parse_u32(dopt, 1, 3600, &secs) == -1)
			usage();
		return classic_run(o.server, o.addr, pps, secs, n, o.dpid);
	}

	/* the other modes */
	if (ropt != NULL || (mode != 'C' && o.rate > 0) ||
	    o.payload < GEN_STAMP_LEN ||
	    (mode == 'C' && (o.rtpproxyd == NULL || o.refrelay == NULL)) ||
	    (mode == 'F' && o.rtpproxyd == NULL && o.refrelay == NULL))
		usage();
	o.secs = mode == 'P' ? 10 : 5;
	if (dopt != NULL && parse_secs(dopt, 0.1, 3600, &o.secs) == -1)
		usage();
	o.sessions = nopt != NULL ? (int)n : 1000;
	if (mode == 'C' && o.ncounts == 0)
		parse_counts("20,1000,4000", &o);
	pick_cpus(&o, relay_cpu);
	if ((mode != 'P' || o.rtpproxyd != NULL) &&
	    bench_pin(o.bench_cpu) == -1) {
		fprintf(stderr, "rtpbench: cannot pin to CPU %d: %s\n",
		    o.bench_cpu, strerror(errno));
		return 1;
	}
	atexit(target_stop_all);
	if (mode == 'C')
		rc = compare_run(&o);
	else if (mode == 'F')
		rc = flood_run(&o);
	else
		rc = ctlrate_run(&o);
	target_stop_all();
	return rc;
}
