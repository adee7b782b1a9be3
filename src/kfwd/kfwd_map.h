/*
 * The kernel fast path's map, shared by the BPF program (kfwd.bpf.c,
 * built with clang -target bpf against vmlinux.h) and the daemon
 * (kfwd.c).  Only __u types here: each side has its own headers for
 * them, and the layout must be the same on both.
 *
 * One entry per offloaded session direction, keyed by the local address
 * and port the packets arrive at: the listen socket for caller ->
 * destination, the forward socket for the way back, RTCP on port + 1.
 * The worker that owns the session writes the entry whole (who may send,
 * what the packet becomes, the RTP state to go on from); the program
 * then only writes the figures, under the entry's lock, and the worker
 * reads them (BPF_F_LOCK) to merge them into the session's slot.
 */
#ifndef RTPPROXYD_KFWD_MAP_H
#define RTPPROXYD_KFWD_MAP_H

#include "rfc3550.h"

#define KFWD_MAP_MAX	65536	/* entries: 4 per session at most */

#define KFWD_F_RTCP	0x01	/* RTCP: first header checked, no RTP state */
#define KFWD_F_SRC_ADDR	0x02	/* only from src_addr */
#define KFWD_F_SRC_PORT	0x04	/* ... and src_port */
#define KFWD_F_LOCAL	0x08	/* new_daddr is this host's: deliver here */
#define KFWD_F_LIMIT	0x10	/* rate-limited: pkt_ns, byte_ns_q16, tau_ns */

/* IPv4: addr[0], the rest 0; IPv6: all 16 octets. */
struct kfwd_key {
	__u32	addr[4];	/* local address, network order; 0: any */
	__u16	port;		/* network order */
	__u16	family;		/* 4 or 6 */
};

struct kfwd_val {
	/* the worker writes, once; addresses as in struct kfwd_key */
	__u32	src_addr[4];	/* network order, with KFWD_F_SRC_ADDR */
	__u16	src_port;	/* network order, with KFWD_F_SRC_PORT */
	__u16	flags;		/* KFWD_F_* */
	__u32	new_saddr[4];	/* what the packet becomes: network order */
	__u32	new_daddr[4];
	__u16	new_sport;
	__u16	new_dport;
	__u32	dyn_rate;	/* clock rate of dynamic payload types */
	__s64	clock_off;	/* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
	/*
	 * The session's rate limit, with KFWD_F_LIMIT: a token bucket as the
	 * worker's (GCRA, struct relay_bucket), one per direction, in the
	 * RTP entry; the RTCP entry uses that one (bucket: its key).
	 */
	__s64	pkt_ns;		/* 0: no packet rate limit */
	__u64	byte_ns_q16;	/* 0: no bit rate limit */
	__s64	tau_ns;
	struct kfwd_key bucket;
	struct bpf_spin_lock lock;
	__u8	ttl;		/* TTL / hop limit to send with; 0: as it came */
	__u8	pad0[3];
	/* the program writes, under lock */
	__u64	packets;	/* taken, RTP or RTCP */
	__u64	bytes;		/* UDP payload */
	__u64	sent;		/* of them: forwarded */
	__u64	bytes_sent;
	__u64	ssrc_changes;
	__s64	last_ns;	/* CLOCK_REALTIME, 0: none yet */
	__u64	limited;	/* of packets: dropped over the rate limit */
	__s64	tat_pkt;	/* the bucket (RTP entries), ns */
	__s64	tat_bit;
	__s64	tat_last;
	struct rfc3550_src rtp; /* as the session table's struct shm_dir */
};

#endif
