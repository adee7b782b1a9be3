/*
 * The kernel fast path: a TC (clsact) ingress program that relays the
 * UDP media of established session directions without waking a worker.
 * A packet whose local address and port are in the map, from the sender
 * the entry allows, that looks like what the entry carries (RTP, or
 * RTCP), has its addresses and ports rewritten to those the worker would
 * have sent it with, its TTL (hop limit) set to the one the worker's
 * socket would have sent it with (the entry's), its checksums fixed, and
 * goes on: delivered here
 * when the new destination is local, else out of the interface the
 * route names (bpf_redirect_neigh).  The entry's figures (packets,
 * bytes, RFC 3550 sequence, loss and jitter) are kept as the worker
 * keeps them, with the same code (src/common/rfc3550.h), for it to merge
 * into the session's slot.
 *
 * IPv4 and IPv6 alike.  Anything else (another sender, non-RTP, IPv4
 * options or fragments, IPv6 extension headers, a destination the
 * routing table cannot reach) goes on untouched, to the
 * socket and the worker, as if the program were not there.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "kfwd_map.h"

#define TC_ACT_UNSPEC	(-1)
#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT	7
#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86dd
#define AF_INET6	10
#define ETH_HLEN	14
#define IP_MF		0x2000
#define IP_OFFMASK	0x1fff
#define AF_INET		2

#define IP_CSUM_OFF	(ETH_HLEN + offsetof(struct iphdr, check))
#define IP_TTL_OFF	(ETH_HLEN + offsetof(struct iphdr, ttl))
#define IP6_HOPS_OFF	(ETH_HLEN + offsetof(struct ipv6hdr, hop_limit))
#define IP_SRC_OFF	(ETH_HLEN + offsetof(struct iphdr, saddr))
#define IP_DST_OFF	(ETH_HLEN + offsetof(struct iphdr, daddr))
#define UDP_OFF		(ETH_HLEN + sizeof(struct iphdr))
#define UDP_CSUM_OFF	(UDP_OFF + offsetof(struct udphdr, check))
#define UDP_SRC_OFF	(UDP_OFF + offsetof(struct udphdr, source))
#define UDP_DST_OFF	(UDP_OFF + offsetof(struct udphdr, dest))
#define PAY_OFF		(UDP_OFF + sizeof(struct udphdr))
#define IP6_SRC_OFF	(ETH_HLEN + offsetof(struct ipv6hdr, saddr))
#define IP6_DST_OFF	(ETH_HLEN + offsetof(struct ipv6hdr, daddr))
#define UDP6_OFF	(ETH_HLEN + sizeof(struct ipv6hdr))
#define UDP6_CSUM_OFF	(UDP6_OFF + offsetof(struct udphdr, check))
#define UDP6_SRC_OFF	(UDP6_OFF + offsetof(struct udphdr, source))
#define UDP6_DST_OFF	(UDP6_OFF + offsetof(struct udphdr, dest))
#define PAY6_OFF	(UDP6_OFF + sizeof(struct udphdr))

#define RTCP_MAX_HDRS	8

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KFWD_MAP_MAX);
	__type(key, struct kfwd_key);
	__type(value, struct kfwd_val);
} kfwd_sessions SEC(".maps");

/* What an RTP header says, for the statistics. */
struct kfwd_hdr {
	__u32	ts;
	__u32	ssrc;
	__u16	seq;
	__u8	pt;
};

/* As rtp_parse (src/worker/rtpstat.c): 0 and *h for RTP, else -1. */
static __always_inline int
kfwd_rtp_parse(struct __sk_buff *skb, __u32 pay, __u32 len,
    struct kfwd_hdr *h)
{
	__u8	b[12], x[4], pad;
	__u32	hlen;

	if (len < 12 || bpf_skb_load_bytes(skb, pay, b, 12) != 0)
		return -1;
	if ((b[0] >> 6) != 2 || (b[1] >= 200 && b[1] <= 206))
		return -1;
	hlen = 12 + 4 * (__u32)(b[0] & 0x0f);
	if (hlen > len)
		return -1;
	if (b[0] & 0x10) {
		if (len - hlen < 4 || hlen > 2048)
			return -1;
		if (bpf_skb_load_bytes(skb, pay + hlen, x, 4) != 0)
			return -1;
		hlen += 4 + 4 * (((__u32)x[2] << 8) | x[3]);
		if (hlen > len)
			return -1;
	}
	if (b[0] & 0x20) {
		if (len > 2048 || bpf_skb_load_bytes(skb, pay + len - 1,
		    &pad, 1) != 0)
			return -1;
		if (pad == 0 || pad > len - hlen)
			return -1;
	}
	h->pt = b[1] & 0x7f;
	h->seq = (__u16)(((__u16)b[2] << 8) | b[3]);
	h->ts = (__u32)b[4] << 24 | (__u32)b[5] << 16 | (__u32)b[6] << 8 |
	    b[7];
	h->ssrc = (__u32)b[8] << 24 | (__u32)b[9] << 16 |
	    (__u32)b[10] << 8 | b[11];
	return 0;
}

/* As rtcp_check and srtcp_check: a compound of version 2 headers. */
static __always_inline int
kfwd_rtcp_check(struct __sk_buff *skb, __u32 pay, __u32 len)
{
	__u8	b[4];
	__u32	off = 0, plen;
	int	i;

	if (len < 4 || len > 2048)
		return -1;
	for (i = 0; i < RTCP_MAX_HDRS; i++) {
		if (off >= len)
			return 0;
		if (len - off < 4 || bpf_skb_load_bytes(skb, pay + off,
		    b, 4) != 0)
			return -1;
		if ((b[0] >> 6) != 2 || (i == 0 && (b[1] < 200 || b[1] > 206)))
			return -1;
		plen = 4 * ((((__u32)b[2] << 8) | b[3]) + 1);
		if (plen > len - off) {
			/* SRTCP: the first header, then the index and tag */
			if (i == 0 && len >= 12 && plen >= 8 &&
			    plen <= len - 4)
				return 0;
			return -1;
		}
		off += plen & 0xffff;
	}
	/* More headers than we walk: the worker judges it. */
	return -1;
}

/*
 * What a packet that passed the checks is: its payload's offset and
 * length, whether it is checked as RTCP, its RTP header; then its
 * timing and the entry's figures, under the entry's lock.  act: what the
 * packet got (TC_ACT_OK, TC_ACT_REDIRECT, or another: not sent).
 */
static __always_inline int
kfwd_check(struct __sk_buff *skb, struct kfwd_val *v, __u32 pay, __u32 len,
    struct kfwd_hdr *h)
{
	if (v->flags & KFWD_F_RTCP)
		return kfwd_rtcp_check(skb, pay, len);
	return kfwd_rtp_parse(skb, pay, len, h);
}

/*
 * The rate limit, as the worker's relay_conform: 1 if a packet of len
 * octets at ns conforms (and is counted in the bucket), 0 if not, -1
 * when the RTP entry that holds the bucket is gone (up to the worker).
 */
static __always_inline int
kfwd_conform(struct kfwd_val *v, __u32 len, __s64 ns)
{
	struct kfwd_val	*b = v;
	__s64		 cost;
	int		 ok = 1;

	if (!(v->flags & KFWD_F_LIMIT))
		return 1;
	if ((v->flags & KFWD_F_RTCP) &&
	    (b = bpf_map_lookup_elem(&kfwd_sessions, &v->bucket)) == NULL)
		return -1;
	bpf_spin_lock(&b->lock);
	/* The clock was stepped back: start the bucket afresh. */
	if (ns < b->tat_last - 1000000000)
		b->tat_pkt = b->tat_bit = ns;
	b->tat_last = ns;
	if (b->pkt_ns != 0 && b->tat_pkt - ns > b->tau_ns)
		ok = 0;
	else if (b->byte_ns_q16 != 0 && b->tat_bit - ns > b->tau_ns)
		ok = 0;
	else {
		if (b->pkt_ns != 0)
			b->tat_pkt = (b->tat_pkt > ns ? b->tat_pkt : ns) +
			    b->pkt_ns;
		if (b->byte_ns_q16 != 0) {
			cost = (__s64)(((__u64)len * b->byte_ns_q16) >> 16);
			b->tat_bit = (b->tat_bit > ns ? b->tat_bit : ns) + cost;
		}
	}
	bpf_spin_unlock(&b->lock);
	return ok;
}

static __always_inline void
kfwd_account(struct kfwd_val *v, const struct kfwd_hdr *h, __u32 len,
    int act, __s64 ns, int limited)
{
	__u32	rate = 0;

	if (!(v->flags & KFWD_F_RTCP))
		rate = rfc3550_clock_rate(h->pt, v->dyn_rate);
	bpf_spin_lock(&v->lock);
	v->packets++;
	v->bytes += len;
	if (act == TC_ACT_OK || act == TC_ACT_REDIRECT) {
		v->sent++;
		v->bytes_sent += len;
	}
	if (ns > v->last_ns)
		v->last_ns = ns;
	if (limited)
		v->limited++;
	/* the worker's statistics, the same code (src/common/rfc3550.h) */
	if (!(v->flags & KFWD_F_RTCP) && act != TC_ACT_SHOT &&
	    (rfc3550_packet(&v->rtp, h->ssrc, h->seq, h->ts, ns, rate) &
	    RFC3550_CHANGE))
		v->ssrc_changes++;
	bpf_spin_unlock(&v->lock);
}

/*
 * Where the rewritten packet goes, before anything is changed (else up
 * it goes, untouched): a destination of this host (the worker says) is
 * delivered here; else the route names the interface (the kernel's FIB
 * lookup for BPF wants forwarding on the interface the packet came in
 * on).  TC_ACT_OK, -2 (redirect to *ifindex), or TC_ACT_UNSPEC.
 */
static __always_inline int
kfwd_where(struct __sk_buff *skb, struct kfwd_val *v, int v6, __u32 len,
    __u32 *ifindex)
{
	struct bpf_fib_lookup	fib = {};
	int			ret;

	if (v->flags & KFWD_F_LOCAL)
		return TC_ACT_OK;
	fib.l4_protocol = IPPROTO_UDP;
	fib.sport = v->new_sport;
	fib.dport = v->new_dport;
	fib.ifindex = skb->ingress_ifindex;
	if (v6) {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, v->new_saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, v->new_daddr, 16);
		fib.tot_len = (__u16)(len + sizeof(struct udphdr));
	} else {
		fib.family = AF_INET;
		fib.ipv4_src = v->new_saddr[0];
		fib.ipv4_dst = v->new_daddr[0];
		fib.tot_len = (__u16)(len + sizeof(struct udphdr) +
		    sizeof(struct iphdr));
	}
	ret = bpf_fib_lookup(skb, &fib, sizeof(fib),
	    BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (ret != BPF_FIB_LKUP_RET_SUCCESS && ret != BPF_FIB_LKUP_RET_NO_NEIGH)
		return TC_ACT_UNSPEC;
	*ifindex = fib.ifindex;
	return -2;
}

static __always_inline int
kfwd_ipv4(struct __sk_buff *skb)
{
	struct kfwd_key		 key = {};
	struct kfwd_val		*v;
	struct kfwd_hdr		 h = {};
	struct iphdr		*ip;
	struct udphdr		*udp;
	void			*data, *end;
	__u32			 len, old_saddr, old_daddr, ifindex = 0;
	__u16			 old_sport, old_dport, old_ttl, new_ttl;
	__s64			 ns;
	int			 act, ok;

	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if (data + PAY_OFF > end) {
		if (bpf_skb_pull_data(skb, PAY_OFF) != 0)
			return TC_ACT_UNSPEC;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		if (data + PAY_OFF > end)
			return TC_ACT_UNSPEC;
	}
	ip = data + ETH_HLEN;
	udp = data + UDP_OFF;
	if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_UDP ||
	    (ip->frag_off & bpf_htons(IP_MF | IP_OFFMASK)) != 0)
		return TC_ACT_UNSPEC;
	key.family = 4;
	key.addr[0] = ip->daddr;
	key.port = udp->dest;
	if ((v = bpf_map_lookup_elem(&kfwd_sessions, &key)) == NULL) {
		key.addr[0] = 0;
		if ((v = bpf_map_lookup_elem(&kfwd_sessions, &key)) == NULL)
			return TC_ACT_UNSPEC;
	}
	if ((v->flags & KFWD_F_SRC_ADDR) && ip->saddr != v->src_addr[0])
		return TC_ACT_UNSPEC;
	if ((v->flags & KFWD_F_SRC_PORT) && udp->source != v->src_port)
		return TC_ACT_UNSPEC;
	len = bpf_ntohs(udp->len);
	if (len < sizeof(struct udphdr) || len > skb->len - UDP_OFF ||
	    bpf_ntohs(ip->tot_len) != len + sizeof(struct iphdr))
		return TC_ACT_UNSPEC;
	len -= sizeof(struct udphdr);
	old_saddr = ip->saddr;
	old_daddr = ip->daddr;
	old_sport = udp->source;
	old_dport = udp->dest;
	/* the TTL's word of the header, with the protocol, for the sum */
	old_ttl = bpf_htons((__u16)((__u16)ip->ttl << 8 | IPPROTO_UDP));
	new_ttl = v->ttl != 0 ? bpf_htons((__u16)((__u16)v->ttl << 8 |
	    IPPROTO_UDP)) : old_ttl;
	if (kfwd_check(skb, v, PAY_OFF, len, &h) != 0)
		return TC_ACT_UNSPEC;
	if ((act = kfwd_where(skb, v, 0, len, &ifindex)) == TC_ACT_UNSPEC)
		return TC_ACT_UNSPEC;
	ns = (__s64)bpf_ktime_get_ns() + v->clock_off;
	if ((ok = kfwd_conform(v, len, ns)) < 0)
		return TC_ACT_UNSPEC;
	if (!ok) {
		kfwd_account(v, &h, len, TC_ACT_SHOT, ns, 1);
		return TC_ACT_SHOT;
	}

	/* The pseudo header, then the IP header, then the ports. */
	if (bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old_saddr, v->new_saddr[0],
	    BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4) != 0 ||
	    bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old_daddr, v->new_daddr[0],
	    BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4) != 0 ||
	    bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old_sport, v->new_sport,
	    BPF_F_MARK_MANGLED_0 | 2) != 0 ||
	    bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old_dport, v->new_dport,
	    BPF_F_MARK_MANGLED_0 | 2) != 0 ||
	    bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_saddr, v->new_saddr[0],
	    4) != 0 ||
	    bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_daddr, v->new_daddr[0],
	    4) != 0 ||
	    /* the TTL the worker's socket would send with, not the caller's */
	    (new_ttl != old_ttl && (bpf_l3_csum_replace(skb, IP_CSUM_OFF,
	    old_ttl, new_ttl, 2) != 0 || bpf_skb_store_bytes(skb, IP_TTL_OFF,
	    &v->ttl, 1, 0) != 0)) ||
	    bpf_skb_store_bytes(skb, IP_SRC_OFF, &v->new_saddr[0], 4, 0) != 0 ||
	    bpf_skb_store_bytes(skb, IP_DST_OFF, &v->new_daddr[0], 4, 0) != 0 ||
	    bpf_skb_store_bytes(skb, UDP_SRC_OFF, &v->new_sport, 2, 0) != 0 ||
	    bpf_skb_store_bytes(skb, UDP_DST_OFF, &v->new_dport, 2, 0) != 0)
		act = TC_ACT_SHOT;	/* half rewritten: it can go nowhere */
	else if (act != TC_ACT_OK)
		act = (int)bpf_redirect_neigh(ifindex, NULL, 0, 0);
	kfwd_account(v, &h, len, act, ns, 0);
	return act;
}

/*
 * IPv6: the UDP header right after the fixed header (no extension
 * headers); no IP checksum, the UDP one over the pseudo header word by
 * word.
 */
static __always_inline int
kfwd_ipv6(struct __sk_buff *skb)
{
	struct kfwd_key		 key = {};
	struct kfwd_val		*v;
	struct kfwd_hdr		 h = {};
	struct ipv6hdr		*ip6;
	struct udphdr		*udp;
	void			*data, *end;
	__u32			 len, old_s[4], old_d[4], ifindex = 0;
	__u16			 old_sport, old_dport;
	__s64			 ns;
	int			 act, i, ok, bad = 0;

	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if (data + PAY6_OFF > end) {
		if (bpf_skb_pull_data(skb, PAY6_OFF) != 0)
			return TC_ACT_UNSPEC;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		if (data + PAY6_OFF > end)
			return TC_ACT_UNSPEC;
	}
	ip6 = data + ETH_HLEN;
	udp = data + UDP6_OFF;
	if (ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
		return TC_ACT_UNSPEC;
	key.family = 6;
	__builtin_memcpy(key.addr, &ip6->daddr, 16);
	key.port = udp->dest;
	if ((v = bpf_map_lookup_elem(&kfwd_sessions, &key)) == NULL) {
		__builtin_memset(key.addr, 0, 16);
		if ((v = bpf_map_lookup_elem(&kfwd_sessions, &key)) == NULL)
			return TC_ACT_UNSPEC;
	}
	__builtin_memcpy(old_s, &ip6->saddr, 16);
	__builtin_memcpy(old_d, &ip6->daddr, 16);
	if ((v->flags & KFWD_F_SRC_ADDR) && (old_s[0] != v->src_addr[0] ||
	    old_s[1] != v->src_addr[1] || old_s[2] != v->src_addr[2] ||
	    old_s[3] != v->src_addr[3]))
		return TC_ACT_UNSPEC;
	if ((v->flags & KFWD_F_SRC_PORT) && udp->source != v->src_port)
		return TC_ACT_UNSPEC;
	len = bpf_ntohs(udp->len);
	if (len < sizeof(struct udphdr) || len > skb->len - UDP6_OFF ||
	    bpf_ntohs(ip6->payload_len) != len || udp->check == 0)
		return TC_ACT_UNSPEC;
	len -= sizeof(struct udphdr);
	old_sport = udp->source;
	old_dport = udp->dest;
	if (kfwd_check(skb, v, PAY6_OFF, len, &h) != 0)
		return TC_ACT_UNSPEC;
	if ((act = kfwd_where(skb, v, 1, len, &ifindex)) == TC_ACT_UNSPEC)
		return TC_ACT_UNSPEC;
	ns = (__s64)bpf_ktime_get_ns() + v->clock_off;
	if ((ok = kfwd_conform(v, len, ns)) < 0)
		return TC_ACT_UNSPEC;
	if (!ok) {
		kfwd_account(v, &h, len, TC_ACT_SHOT, ns, 1);
		return TC_ACT_SHOT;
	}

	for (i = 0; i < 4; i++) {
		if (bpf_l4_csum_replace(skb, UDP6_CSUM_OFF, old_s[i],
		    v->new_saddr[i], BPF_F_PSEUDO_HDR | 4) != 0 ||
		    bpf_l4_csum_replace(skb, UDP6_CSUM_OFF, old_d[i],
		    v->new_daddr[i], BPF_F_PSEUDO_HDR | 4) != 0)
			bad = 1;
	}
	if (bad ||
	    (v->ttl != 0 && bpf_skb_store_bytes(skb, IP6_HOPS_OFF, &v->ttl, 1,
	    0) != 0) ||
	    bpf_l4_csum_replace(skb, UDP6_CSUM_OFF, old_sport, v->new_sport,
	    2) != 0 ||
	    bpf_l4_csum_replace(skb, UDP6_CSUM_OFF, old_dport, v->new_dport,
	    2) != 0 ||
	    bpf_skb_store_bytes(skb, IP6_SRC_OFF, v->new_saddr, 16, 0) != 0 ||
	    bpf_skb_store_bytes(skb, IP6_DST_OFF, v->new_daddr, 16, 0) != 0 ||
	    bpf_skb_store_bytes(skb, UDP6_SRC_OFF, &v->new_sport, 2, 0) != 0 ||
	    bpf_skb_store_bytes(skb, UDP6_DST_OFF, &v->new_dport, 2, 0) != 0)
		act = TC_ACT_SHOT;
	else if (act != TC_ACT_OK)
		act = (int)bpf_redirect_neigh(ifindex, NULL, 0, 0);
	kfwd_account(v, &h, len, act, ns, 0);
	return act;
}

SEC("tc")
int
kfwd_ingress(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return kfwd_ipv4(skb);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return kfwd_ipv6(skb);
	return TC_ACT_UNSPEC;
}
