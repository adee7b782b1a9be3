/*
 * xgen: an in-kernel RTP generator for the kernel fast path's benchmark
 * (tests/bench/README, "Kernel fast path"; tests/bench/kfwd-max.sh runs
 * it).  One Ethernet/IPv4/UDP/RTP frame is built here; xgen.bpf.c's XDP
 * program, run by BPF_PROG_RUN in live-frames mode (Linux 5.18 or later)
 * from inside the callers' namespace, stamps each copy with a session's
 * ports, sequence number and timestamp and sends it out of the callers'
 * veth: no socket, no system call a packet, so what the relay passes is
 * the relay's limit rather than the generator's.  A TC program at the
 * destinations counts what arrives and drops it.
 *
 *   xgen -c CALLER_NS -e DEST_NS -M NEXTHOP_MAC -S CALLER_ADDR
 *        -D DEST_ADDR -n SESSIONS [-s API -L LISTEN -F FORWARD |
 *        -f PORTS_FILE -L LISTEN] [-P IFACE] [-x] [-C cpu] [-m]
 *        [-t step_s] [-R pps | -H] [-d secs] [-p pid,...] [-k] [-x]
 *
 * Run it in the relay's namespace (-s's gRPC address and -P's interface
 * are looked up there).  With -s it creates the sessions on rtpproxyd
 * (listen on -L, forward from -F, destination DEST_ADDR port 30000+k);
 * with -f it reads the sessions' listen ports (one a line: another
 * relay's); with neither the frames go straight to DEST_ADDR (the direct
 * path).  Relayed sessions first get 12 packets each, 100 ms apart, so
 * the relay latches and the kernel path takes them.  -m: the highest
 * paced rate with < 0.1 % loss (steps of -t seconds from 100,000 pkt/s,
 * doubling, then bisection to within 3 %; a step fails when it fails
 * twice in a row, so that one disturbed step does not decide); -R: a fixed rate for -d seconds with the
 * whole machine's CPU (/proc/stat) per packet delivered; -H: that rate
 * is half the highest -m found (rounded down to 1,000).
 */
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "client.h"
#include "rtpproxy.pb-c.h"
#include "xgen.h"
#include "xgen.skel.h"

#define M_CREATE	"/rtpproxy.RtpProxy/CreateSession"
#define PAYLOAD		160
#define FRAME_LEN	(XGEN_FRAME_HDRS + PAYLOAD)
#define DEST_PORT0	30000
#define SRC_PORT0	40000
#define MAX_STEPS	16

struct cpustat {
	unsigned long long	busy, all, sirq;
};

static struct xgen_bpf	*skel;
static int		 ns_self = -1, ns_caller = -1, ns_dest = -1;
static int		 pass_ifindex, dest_ifindex, tc_attached, tc_created;
static volatile sig_atomic_t stop;
static int		 skbmode;	/* live frames refused: xgen_skb */
static char		 pids[256];

static void
usage(void)
{
	fprintf(stderr, "usage: xgen -c caller_ns -e dest_ns -M mac "
	    "-S caller_addr -D dest_addr -n sessions\n"
	    "\t[-s api -L listen -F forward | -f ports_file -L listen] "
	    "[-P iface] [-x] [-k]\n\t[-i iface] [-j iface] [-C cpu] [-m] "
	    "[-t step_s] [-R pps | -H] [-d secs] [-p pid,...]\n");
	exit(2);
}

static void
onsig(int sig)
{
	(void)sig;
	stop = 1;
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
sleep_until(int64_t t)
{
	struct timespec ts;

	ts.tv_sec = t / 1000000000;
	ts.tv_nsec = t % 1000000000;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR && !stop)
		;
}

static int
ns_open(const char *name)
{
	char	path[256];
	int	fd;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "xgen: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

static void
ns_enter(int fd)
{
	if (setns(fd, CLONE_NEWNET) == -1) {
		fprintf(stderr, "xgen: setns: %s\n", strerror(errno));
		exit(1);
	}
}

static int
ifindex_of(const char *name)
{
	int i;

	if ((i = (int)if_nametoindex(name)) == 0) {
		fprintf(stderr, "xgen: interface %s: %s\n", name,
		    strerror(errno));
		exit(1);
	}
	return i;
}

static void
cpu_read(struct cpustat *c)
{
	unsigned long long	v[10];
	FILE			*f;
	int			 n;

	memset(v, 0, sizeof(v));
	c->busy = c->all = c->sirq = 0;
	if ((f = fopen("/proc/stat", "r")) == NULL)
		return;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
	    &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
	    &v[9]);
	fclose(f);
	if (n < 8)
		return;
	/* user nice system irq softirq; not idle, iowait, steal */
	c->busy = v[0] + v[1] + v[2] + v[5] + v[6];
	c->all = c->busy + v[3] + v[4] + v[7];
	c->sirq = v[5] + v[6];
}

/* utime + stime of a comma-separated list of pids, in clock ticks */
static unsigned long long
pids_cpu(const char *which)
{
	unsigned long long	 sum = 0, ut, st;
	char			 list[256], path[64], buf[1024], *p, *save, *q;
	FILE			*f;
	int			 i;

	snprintf(list, sizeof(list), "%s", which);
	for (p = strtok_r(list, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save)) {
		snprintf(path, sizeof(path), "/proc/%s/stat", p);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(buf, sizeof(buf), f) != NULL &&
		    (q = strrchr(buf, ')')) != NULL) {
			/* fields 14, 15 counted from pid: 11, 12 after ") " */
			for (i = 0, q++; i < 12 && q != NULL; i++)
				q = strchr(q + 1, ' ');
			if (q != NULL && sscanf(q, "%llu %llu", &ut, &st) == 2)
				sum += ut + st;
		}
		fclose(f);
	}
	return sum;
}

static uint64_t
delivered(void)
{
	uint64_t	s = 0;
	int		i;

	for (i = 0; i < XGEN_MAXCPU; i++)
		s += __atomic_load_n(&skel->bss->xgen_count[i], __ATOMIC_RELAXED);
	return s;
}

/* Until nothing has arrived for 50 ms (at most 2 s). */
static void
drain(void)
{
	uint64_t	last = delivered(), d;
	int64_t		until = now_ns() + 2000000000LL;
	int		quiet = 0;

	while (quiet < 5 && now_ns() < until) {
		usleep(10000);
		d = delivered();
		quiet = d == last ? quiet + 1 : 0;
		last = d;
	}
}

static uint16_t
ip_csum(const void *p, int len)
{
	const uint8_t	*b = p;
	uint32_t	 s = 0;
	int		 i;

	for (i = 0; i + 1 < len; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons((uint16_t)~s);
}

static int
parse_mac(const char *s, uint8_t *m)
{
	unsigned	v[6];
	int		i;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4],
	    &v[5]) != 6)
		return -1;
	for (i = 0; i < 6; i++)
		m[i] = (uint8_t)v[i];
	return 0;
}

static void
build_frame(uint8_t *f, const uint8_t *dmac, const uint8_t *smac,
    struct in_addr src, struct in_addr dst)
{
	uint8_t	*ip = f + 14, *udp = ip + 20, *rtp = udp + 8;

	memset(f, 0, FRAME_LEN);
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (FRAME_LEN - 14) >> 8;
	ip[3] = (FRAME_LEN - 14) & 0xff;
	ip[6] = 0x40;			/* DF */
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	memcpy(ip + 10, &(uint16_t){ ip_csum(ip, 20) }, 2);
	udp[4] = (FRAME_LEN - 34) >> 8;
	udp[5] = (FRAME_LEN - 34) & 0xff;
	rtp[0] = 0x80;			/* version 2 */
	rtp[1] = 0;			/* PCMU */
	memset(rtp + 12, 0xff, PAYLOAD);
}

static int
create_sessions(const char *api, const char *listen, const char *forward,
    const char *dest, int n, uint16_t *ports)
{
	Rtpproxy__CreateSessionRequest	 req =
	    RTPPROXY__CREATE_SESSION_REQUEST__INIT;
	Rtpproxy__Endpoint		 l = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 f = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 d = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__CreateSessionResponse	*resp;
	struct rpc_client		*c;
	char				 details[256];
	int				 i, rc, bad;

	if ((c = rpc_client_new(api)) == NULL)
		return -1;
	l.address = (char *)listen;
	f.address = (char *)forward;
	d.address = (char *)dest;
	req.listen = &l;
	req.forward = &f;
	req.destination = &d;
	req.disable_rtcp = 1;
	for (i = 0; i < n && !stop; i++) {
		resp = NULL;
		details[0] = '\0';
		d.port = DEST_PORT0 + i;
		rc = rpc_unary(c, M_CREATE, &req.base,
		    &rtpproxy__create_session_response__descriptor,
		    (ProtobufCMessage **)&resp, details, sizeof(details),
		    10000);
		bad = rc != 0 || resp == NULL || resp->session == NULL ||
		    resp->session->listen == NULL;
		if (!bad)
			ports[i] = (uint16_t)resp->session->listen->port;
		if (resp != NULL)
			protobuf_c_message_free_unpacked(&resp->base, NULL);
		if (bad) {
			fprintf(stderr, "xgen: CreateSession %d of %d: "
			    "status %d: %s\n", i + 1, n, rc, details);
			rpc_client_free(c);
			return -1;
		}
	}
	rpc_client_free(c);
	return stop ? -1 : 0;
}

static int
read_ports(const char *path, int n, uint16_t *ports)
{
	FILE	*f;
	int	 i, p;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "xgen: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n && fscanf(f, "%d", &p) == 1; i++)
		ports[i] = (uint16_t)p;
	fclose(f);
	if (i < n) {
		fprintf(stderr, "xgen: %s: %d ports of %d\n", path, i, n);
		return -1;
	}
	return 0;
}

/*
 * Offer rate pkt/s for secs seconds in BPF_PROG_RUN calls of a batch
 * each, paced by the clock; the frames actually sent into *sent, the
 * time it took into *took_ns.
 */
static int
offer(int prog, const uint8_t *frame, int ifindex, double rate, double secs,
    uint64_t *sent, int64_t *took_ns)
{
	struct xdp_md	 md;
	uint64_t	 total, done = 0, s0;
	int64_t		 t0, next, per;
	uint32_t	 batch;
	LIBBPF_OPTS(bpf_test_run_opts, o);

	memset(&md, 0, sizeof(md));
	md.data_end = FRAME_LEN;
	md.ingress_ifindex = (uint32_t)ifindex;
	/*
	 * A call each 0.5 ms: fewer calls cost the generator and the
	 * relay's CPU (a wakeup, an IPI) less a packet; larger bursts would
	 * fill a backlog (netdev_max_backlog 1000) at once.
	 */
	batch = (uint32_t)(rate / 2000);
	if (batch < 1)
		batch = 1;
	if (batch > 256)
		batch = 256;
	total = (uint64_t)(rate * secs);
	per = (int64_t)(1e9 * batch / rate);
	o.data_in = frame;
	o.data_size_in = FRAME_LEN;
	if (!skbmode) {
		o.ctx_in = &md;
		o.ctx_size_in = sizeof(md);
		o.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
	}
	s0 = skel->bss->xgen_sent;
	t0 = next = now_ns();
	while (done < total && !stop) {
		o.repeat = batch;
		if (total - done < batch)
			o.repeat = (uint32_t)(total - done);
		if (bpf_prog_test_run_opts(prog, &o) != 0) {
			fprintf(stderr, "xgen: BPF_PROG_RUN: %s\n",
			    strerror(errno));
			return -1;
		}
		done += o.repeat;
		next += per;
		if (next > now_ns())
			sleep_until(next);
	}
	*took_ns = now_ns() - t0;
	*sent = skel->bss->xgen_sent - s0;
	return 0;
}

struct result {
	double		 rate, offered, loss;
	uint64_t	 sent, got;
};

static int
step(int prog, const uint8_t *frame, int ifindex, double rate, double secs,
    struct result *r)
{
	uint64_t	d0;
	int64_t		took;

	drain();
	d0 = delivered();
	if (offer(prog, frame, ifindex, rate, secs, &r->sent, &took) == -1)
		return -1;
	drain();
	r->got = delivered() - d0;
	r->rate = rate;
	r->offered = took > 0 ? r->sent * 1e9 / took : 0;
	r->loss = r->sent > 0 ? 100.0 * ((double)r->sent - (double)r->got) /
	    r->sent : 100;
	if (r->loss < 0)
		r->loss = 0;
	return 0;
}

static int
passed(const struct result *r)
{
	return r->offered >= 0.98 * r->rate && r->loss < 0.1;
}

static void
cleanup(void)
{
	LIBBPF_OPTS(bpf_tc_hook, h);
	LIBBPF_OPTS(bpf_tc_opts, o);

	if (tc_attached && ns_dest != -1 && setns(ns_dest, CLONE_NEWNET) == 0) {
		h.ifindex = dest_ifindex;
		h.attach_point = BPF_TC_INGRESS;
		o.handle = 1;
		o.priority = 1;
		(void)bpf_tc_detach(&h, &o);
		if (tc_created) {
			/* both: the clsact qdisc itself */
			h.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			(void)bpf_tc_hook_destroy(&h);
		}
	}
	if (pass_ifindex != 0 && ns_self != -1 &&
	    setns(ns_self, CLONE_NEWNET) == 0)
		(void)bpf_xdp_detach(pass_ifindex, 0, NULL);
	if (skel != NULL)
		xgen_bpf__destroy(skel);
}

int
main(int argc, char *argv[])
{
	const char	*caller_ns = NULL, *dest_ns = NULL, *mac = NULL;
	const char	*caller = NULL, *dest = NULL, *api = NULL, *listen = NULL;
	const char	*forward = NULL, *portsfile = NULL, *pass_if = NULL;
	const char	*cif = "p", *dif = "p";
	static uint16_t	 ports[XGEN_MAXSESS];
	uint8_t		 frame[FRAME_LEN], dmac[6], smac[6];
	struct in_addr	 a_caller, a_to, a_dest;
	struct ifreq	 ifr;
	struct result	 r;
	struct cpustat	 c0, c1, b0, b1;
	double		 fixed = 0, dur = 5, tstep = 2, lo, hi, t, busy, base;
	double		 sbase, sirq, gen, rel, secs;
	unsigned long long p0, p1, g0, g1;
	char		 self[32];
	int		 n = 0, cpu = -1, search = 0, redirect = 0, ch, i, s;
	int		 half = 0;
	int		 caller_ifindex, prog, nstep;
	long		 hz = sysconf(_SC_CLK_TCK);
	LIBBPF_OPTS(bpf_tc_hook, hook);
	LIBBPF_OPTS(bpf_tc_opts, tco);

	while ((ch = getopt(argc, argv, "c:C:d:D:e:f:F:Hi:j:kL:mM:n:p:P:R:s:S:t:x"))
	    != -1) {
		switch (ch) {
		case 'c': caller_ns = optarg; break;
		case 'C': cpu = atoi(optarg); break;
		case 'd': dur = atof(optarg); break;
		case 'D': dest = optarg; break;
		case 'e': dest_ns = optarg; break;
		case 'f': portsfile = optarg; break;
		case 'F': forward = optarg; break;
		case 'i': cif = optarg; break;
		case 'j': dif = optarg; break;
		case 'H': half = 1; break;
		case 'k': skbmode = 1; break;
		case 'L': listen = optarg; break;
		case 'm': search = 1; break;
		case 'M': mac = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'p': snprintf(pids, sizeof(pids), "%s", optarg); break;
		case 'P': pass_if = optarg; break;
		case 'R': fixed = atof(optarg); break;
		case 's': api = optarg; break;
		case 'S': caller = optarg; break;
		case 't': tstep = atof(optarg); break;
		case 'x': redirect = 1; break;
		default: usage();
		}
	}
	if (caller_ns == NULL || dest_ns == NULL || mac == NULL ||
	    caller == NULL || dest == NULL || n < 1 || n > XGEN_MAXSESS ||
	    parse_mac(mac, dmac) == -1 ||
	    inet_pton(AF_INET, caller, &a_caller) != 1 ||
	    inet_pton(AF_INET, dest, &a_dest) != 1 ||
	    ((api != NULL || portsfile != NULL) && (listen == NULL ||
	    inet_pton(AF_INET, listen, &a_to) != 1)) ||
	    (api != NULL && forward == NULL))
		usage();
	if (api == NULL && portsfile == NULL)
		a_to = a_dest;
	signal(SIGINT, onsig);
	signal(SIGTERM, onsig);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) == -1)
			fprintf(stderr, "xgen: cpu %d: %s\n", cpu,
			    strerror(errno));
	}

	/* The sessions, from the relay's namespace (where we start). */
	if (api != NULL) {
		if (create_sessions(api, listen, forward, dest, n, ports) == -1)
			return 1;
	} else if (portsfile != NULL) {
		if (read_ports(portsfile, n, ports) == -1)
			return 1;
	} else {
		for (i = 0; i < n; i++)
			ports[i] = DEST_PORT0 + i;
	}

	ns_self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ns_caller = ns_open(caller_ns);
	ns_dest = ns_open(dest_ns);
	if ((skel = xgen_bpf__open()) == NULL) {
		fprintf(stderr, "xgen: open the BPF object: %s\n",
		    strerror(errno));
		return 1;
	}
	skel->rodata->xgen_daddr = a_dest.s_addr;
	atexit(cleanup);

	ns_enter(ns_caller);
	caller_ifindex = ifindex_of(cif);
	skel->rodata->xgen_out_ifindex = (uint32_t)caller_ifindex;
	if (redirect)
		skel->rodata->xgen_redirect = (uint32_t)caller_ifindex;
	if (xgen_bpf__load(skel) != 0) {
		fprintf(stderr, "xgen: load the BPF object: %s\n",
		    strerror(errno));
		return 1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", cif);
	if ((s = socket(AF_INET, SOCK_DGRAM, 0)) == -1 ||
	    ioctl(s, SIOCGIFHWADDR, &ifr) == -1) {
		fprintf(stderr, "xgen: %s: MAC: %s\n", cif, strerror(errno));
		return 1;
	}
	close(s);
	memcpy(smac, ifr.ifr_hwaddr.sa_data, 6);

	ns_enter(ns_dest);
	dest_ifindex = ifindex_of(dif);
	hook.ifindex = dest_ifindex;
	hook.attach_point = BPF_TC_INGRESS;
	if (bpf_tc_hook_create(&hook) == 0)
		tc_created = 1;
	else if (errno != EEXIST) {
		fprintf(stderr, "xgen: clsact on %s: %s\n", dif,
		    strerror(errno));
		return 1;
	}
	tco.handle = 1;
	tco.priority = 1;
	tco.flags = BPF_TC_F_REPLACE;
	tco.prog_fd = bpf_program__fd(skel->progs.xgen_count_tc);
	if (bpf_tc_attach(&hook, &tco) != 0) {
		fprintf(stderr, "xgen: TC on %s: %s\n", dif, strerror(errno));
		return 1;
	}
	tc_attached = 1;
	ns_enter(ns_caller);

	for (i = 0; i < n; i++) {
		skel->bss->xgen_sess[i].sport = htons(SRC_PORT0 + i);
		skel->bss->xgen_sess[i].dport = htons(ports[i]);
		skel->bss->xgen_sess[i].seq = (uint16_t)(i * 977);
		skel->bss->xgen_sess[i].ts = (uint32_t)i * 16000;
		skel->bss->xgen_sess[i].ssrc = htonl(0x58470000u + i);
	}
	skel->data->xgen_nsess = (uint32_t)n;
	skel->bss->xgen_next = 0;
	build_frame(frame, dmac, smac, a_caller, a_to);
	prog = bpf_program__fd(skel->progs.xgen_tx);
	if (!skbmode) {
		/* one frame (session 0's): are live frames allowed here? */
		LIBBPF_OPTS(bpf_test_run_opts, po);
		struct xdp_md	md;

		memset(&md, 0, sizeof(md));
		md.data_end = FRAME_LEN;
		md.ingress_ifindex = (uint32_t)caller_ifindex;
		po.data_in = frame;
		po.data_size_in = FRAME_LEN;
		po.ctx_in = &md;
		po.ctx_size_in = sizeof(md);
		po.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
		po.repeat = 1;
		if (bpf_prog_test_run_opts(prog, &po) != 0) {
			printf("mode\tXDP live frames refused (%s): TC "
			    "program, bpf_clone_redirect of an skb\n",
			    strerror(errno));
			skbmode = 1;
		} else
			printf("mode\tXDP live frames (%s)\n", redirect ?
			    "XDP_REDIRECT" : "XDP_TX");
	} else
		printf("mode\tTC program, bpf_clone_redirect of an skb (-k)\n");
	if (skbmode)
		prog = bpf_program__fd(skel->progs.xgen_skb);
	/*
	 * A veth takes XDP frames only with NAPI on: an XDP program on the
	 * peer.  Not in skb mode: it would make the peer copy every clone.
	 */
	if (!skbmode && pass_if != NULL) {
		ns_enter(ns_self);
		pass_ifindex = ifindex_of(pass_if);
		if (bpf_xdp_attach(pass_ifindex,
		    bpf_program__fd(skel->progs.xgen_pass), 0, NULL) != 0) {
			fprintf(stderr, "xgen: XDP on %s: %s\n", pass_if,
			    strerror(errno));
			pass_ifindex = 0;
			return 1;
		}
		ns_enter(ns_caller);
	}

	/* Latch, and 8 valid RTP packets a session for the kernel path. */
	if (api != NULL || portsfile != NULL) {
		if (step(prog, frame, caller_ifindex, n * 10.0, 1.2, &r) == -1)
			return 1;
		printf("warm-up\t%.0f pkt/s, %ju sent, %ju delivered\n",
		    r.offered, (uintmax_t)r.sent, (uintmax_t)r.got);
		sleep(1);
	}

	if (search) {
		lo = 0;
		hi = 0;
		t = 100000;
		nstep = 0;
		while (!stop && nstep < MAX_STEPS) {
			/* a failure counts when it happens twice in a row */
			for (i = 0; i < 2; i++) {
				if (step(prog, frame, caller_ifindex, t, tstep,
				    &r) == -1)
					return 1;
				printf("step\t%.0f pkt/s: offered %.0f, loss "
				    "%.4f %% (%ju of %ju) %s\n", t, r.offered,
				    r.loss, (uintmax_t)(r.sent - r.got),
				    (uintmax_t)r.sent, passed(&r) ? "pass" :
				    r.offered < 0.98 * t ?
				    "FAIL (generator short)" : "FAIL");
				if (passed(&r) || stop)
					break;
			}
			nstep++;
			if (passed(&r))
				lo = t;
			else
				hi = t;
			if (hi == 0)
				t *= 2;
			else if (hi - lo <= 0.03 * hi)
				break;
			else
				t = lo > 0 ? (lo + hi) / 2 : hi / 2;
			if (t < 1000)
				break;
		}
		printf("max\t%.0f pkt/s with < 0.1 %% loss (lowest failed: "
		    "%.0f)\n", lo, hi);
		if (half)
			fixed = lo > 2000 ? (double)((int)(lo / 2000) * 1000) :
			    1000;
	}

	if (fixed > 0 && !stop) {
		drain();
		cpu_read(&b0);
		usleep(1000000);
		cpu_read(&b1);
		base = b1.all > b0.all ? sysconf(_SC_NPROCESSORS_ONLN) *
		    (double)(b1.busy - b0.busy) /
		    (double)(b1.all - b0.all) : 0;
		sbase = b1.all > b0.all ? sysconf(_SC_NPROCESSORS_ONLN) *
		    (double)(b1.sirq - b0.sirq) /
		    (double)(b1.all - b0.all) : 0;
		snprintf(self, sizeof(self), "%d", (int)getpid());
		cpu_read(&c0);
		p0 = pids_cpu(pids);
		g0 = pids_cpu(self);
		if (step(prog, frame, caller_ifindex, fixed, dur, &r) == -1)
			return 1;
		cpu_read(&c1);
		p1 = pids_cpu(pids);
		g1 = pids_cpu(self);
		busy = (double)(c1.busy - c0.busy) / hz;
		secs = (double)(c1.all - c0.all) / hz /
		    sysconf(_SC_NPROCESSORS_ONLN);
		sirq = (double)(c1.sirq - c0.sirq) / hz;
		gen = (double)(g1 - g0) / hz;
		rel = (double)(p1 - p0) / hz;
		printf("fixed\t%.0f pkt/s: offered %.0f, delivered %ju of %ju "
		    "(loss %.4f %%)\n", fixed, r.offered, (uintmax_t)r.got,
		    (uintmax_t)r.sent, r.loss);
		printf("machine\t%.2f s busy over %.2f s of %ld CPUs: "
		    "%.3f us per packet delivered\n", busy,
		    (double)(c1.all - c0.all) / hz / sysconf(_SC_NPROCESSORS_ONLN),
		    sysconf(_SC_NPROCESSORS_ONLN),
		    r.got > 0 ? busy * 1e6 / r.got : 0);
		printf("before\tthe machine was %.1f %% busy (of one CPU), "
		    "%.1f %% in irq+softirq, in the second before\n",
		    100 * base, 100 * sbase);
		printf("softirq\t%.2f s irq+softirq (all CPUs): %.3f us per "
		    "packet; less the second before's rate: %.3f us\n", sirq,
		    r.got > 0 ? sirq * 1e6 / r.got : 0, r.got > 0 ?
		    (sirq - sbase * secs) * 1e6 / r.got : 0);
		printf("gen\t%.2f s CPU of xgen: %.3f us per packet\n", gen,
		    r.got > 0 ? gen * 1e6 / r.got : 0);
		printf("relay\t%.2f s CPU of the relay's processes: %.3f us "
		    "per packet\n", rel, r.got > 0 ? rel * 1e6 / r.got : 0);
		printf("ours\t%.3f us per packet (xgen + relay + irq+softirq "
		    "less the second before's)\n", r.got > 0 ?
		    (gen + rel + sirq - sbase * secs) * 1e6 / r.got : 0);
		printf("where\t");
		for (i = 0; i < XGEN_MAXCPU && i < sysconf(_SC_NPROCESSORS_ONLN);
		    i++)
			printf("cpu%d %ju ", i,
			    (uintmax_t)skel->bss->xgen_count[i]);
		printf("(counted at the destinations, whole run)\n");
	}
	return stop ? 1 : 0;
}
