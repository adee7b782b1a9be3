/*
 * The in-kernel packet generator of tests/bench/xgen (tests/bench/README,
 * "Kernel fast path").  Three programs:
 *
 * xgen_tx	run by BPF_PROG_RUN in live-frames mode on a template
 *		Ethernet/IPv4/UDP/RTP frame: writes session k's UDP ports
 *		and RTP sequence number, timestamp and SSRC (k = a counter
 *		modulo the number of sessions, so they go round robin) and
 *		sends the frame out of the interface it "arrived" on
 *		(XDP_TX), or redirects it (XDP_REDIRECT) when asked.
 * xgen_pass	XDP_PASS: attached to the receiving veth so that it takes
 *		XDP frames (a veth takes them only with NAPI on, which an
 *		XDP program, or GRO, turns on).
 * xgen_count	TC ingress at the destinations: counts UDP packets to
 *		their address, per CPU, and drops them (no socket, no
 *		ICMP: the cheapest receiver there is).
 *
 * BPF_PROG_RUN runs on one CPU at a time, so the counter and the
 * sessions' state need no atomics; the count is per CPU because TC
 * ingress runs on whichever CPU takes the packet.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xgen.h"

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define ETH_P_IP	0x0800

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before the load. */
const volatile __u32	xgen_daddr = 0;		/* destinations' address, net order */
const volatile __u32	xgen_redirect = 0;	/* ifindex: XDP_REDIRECT there */
const volatile __u32	xgen_out_ifindex = 0;	/* xgen_skb's: the callers' veth */

/* Shared with the loader through the mmap'ed .bss. */
__u32			xgen_nsess = 1;
__u32			xgen_next = 0;
__u64			xgen_sent = 0;
__u64			xgen_count[XGEN_MAXCPU];
struct xgen_sess	xgen_sess[XGEN_MAXSESS];

/* The next session's ports and RTP header into the frame at data. */
static __always_inline void
xgen_stamp(void *data)
{
	struct udphdr		*udp;
	struct xgen_rtp		*rtp;
	struct xgen_sess	*s;
	__u32			 k;

	k = xgen_next;
	if (k >= XGEN_MAXSESS)
		k = 0;
	xgen_next = k + 1 >= xgen_nsess ? 0 : k + 1;
	s = &xgen_sess[k];
	udp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	rtp = (void *)(udp + 1);
	udp->source = s->sport;
	udp->dest = s->dport;
	udp->check = 0;		/* none: legal in IPv4 */
	rtp->seq = bpf_htons(s->seq);
	rtp->ts = bpf_htonl(s->ts);
	rtp->ssrc = s->ssrc;
	s->seq++;
	s->ts += 160;
	xgen_sent++;
}

SEC("xdp")
int
xgen_tx(struct xdp_md *ctx)
{
	void	*data = (void *)(long)ctx->data;
	void	*end = (void *)(long)ctx->data_end;

	if (data + XGEN_FRAME_HDRS > end)
		return XDP_ABORTED;
	xgen_stamp(data);
	if (xgen_redirect != 0)
		return bpf_redirect(xgen_redirect, 0);
	return XDP_TX;
}

/*
 * The fall-back where live frames are refused: BPF_PROG_RUN of this TC
 * program on an skb of the frame; each run stamps it and sends a clone
 * out of the callers' veth.  The skb is made writable (uncloned: a
 * copy of its head) at every run, as the last clone may still be queued.
 */
SEC("tc")
int
xgen_skb(struct __sk_buff *skb)
{
	void	*data = (void *)(long)skb->data;
	void	*end = (void *)(long)skb->data_end;

	if (data + XGEN_FRAME_HDRS > end)
		return TC_ACT_SHOT;
	xgen_stamp(data);
	bpf_clone_redirect(skb, xgen_out_ifindex, 0);
	return TC_ACT_SHOT;
}

SEC("xdp")
int
xgen_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int
xgen_count_tc(struct __sk_buff *skb)
{
	void		*data = (void *)(long)skb->data;
	void		*end = (void *)(long)skb->data_end;
	struct ethhdr	*eth = data;
	struct iphdr	*ip = data + sizeof(*eth);
	__u32		 cpu;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->daddr != xgen_daddr)
		return TC_ACT_OK;
	cpu = bpf_get_smp_processor_id();
	if (cpu < XGEN_MAXCPU)
		xgen_count[cpu]++;
	return TC_ACT_SHOT;
}
