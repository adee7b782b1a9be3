/*
 * The shared-memory session table.  The master creates it before any
 * worker exists; workers attach by name.  It holds plain values only (no
 * pointers) and every field has one writer: identity and state are written
 * by the master, statistics and the latch by the worker that owns the slot.
 *
 * Because each counter has a single writer, the writer adds with a relaxed
 * load and store (SHM_ADD), not a locked read-modify-write: readers see
 * whole 64-bit values either way, and the packet path stays cheap.
 *
 * The table outlives a master that dies: a new master attaches it, adopts
 * the workers listed in the header and carries on (master.c, adopt.c).
 *
 * Layout: the header, the UDP ports the sessions hold (struct
 * shm_ports), then the slots; each part starts on a cache line.
 */
#ifndef RTPPROXYD_SHM_H
#define RTPPROXYD_SHM_H

#include <sys/types.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "rfc3550.h"

#define SHM_MAGIC	0x52545058u	/* "RTPX" */
#define SHM_VERSION	9u
#define SHM_ID_MAX	64		/* session id, NUL included */
#define SHM_REASON_MAX	128
#define SHM_MAX_WORKERS	64
#define SHM_ACL_MAX	512		/* destination rules */
#define SHM_LOCAL_MAX	128		/* addresses of this host */
#define SHM_OWN_MAX	16		/* API and metrics ports */
#define SHM_LAT_BUCKETS	18		/* <= 2^k us, k = 0..16, and more */
#define SHM_GRPC_METHODS 11		/* the last: unknown methods */
#define SHM_GRPC_CODES	17

/* A single writer's counter update: no lock prefix on the packet path. */
#define SHM_ADD(p, v)	atomic_store_explicit((p),			\
	atomic_load_explicit((p), memory_order_relaxed) + (v),		\
	memory_order_relaxed)
#define SHM_LOAD(p)	atomic_load_explicit((p), memory_order_relaxed)

/*
 * Session states, X(NAME, number, word): the numbers match
 * rtpproxy.SessionState, the words are those of logs and metrics.
 */
#define SHM_STATES(X)							\
	X(FREE,		0, "free")					\
	X(CREATED,	1, "created")					\
	X(CONNECTING,	2, "connecting")				\
	X(ACTIVE,	3, "active")					\
	X(ERROR,	4, "error")					\
	X(CLOSED,	5, "closed")

#define SHM_STATE_ENUM_(name, num, word)	SHM_##name = num,
enum shm_state {
	SHM_STATES(SHM_STATE_ENUM_)
};

#define SHM_F_UNIDIR	0x01	/* do not relay destination -> caller */
#define SHM_F_NORTCP	0x02	/* no RTCP sockets */
#define SHM_F_TCP	0x04
#define SHM_F_IDLE_DEF	0x08	/* idle timeout follows the configuration */
#define SHM_F_SRC_ADDR	0x10	/* reverse media only from the destination */
#define SHM_F_SRC_PORT	0x20	/* ... and only from its port */
#define SHM_F_QUARANTINED 0x100	/* crashed workers: relayed no more */
#define SHM_F_RESUMED	0x200	/* made again from Redis (src/repl) */
#define SHM_F_DROP_DTMF	0x1000	/* telephone-events are not relayed */
#define SHM_F_RECORD	0x400	/* write a pcap file (rec_gen: which start) */

/*
 * Why sessions closed, X(NAME, word), for logs, events and metrics (which
 * write the word with _ for its spaces); closed_by in the header counts
 * them by number.
 */
#define SHM_CLOSE_REASONS(X)						\
	X(DESTROYED,	"destroyed")					\
	X(IDLE,		"idle timeout")					\
	X(SETUP,	"setup timeout")				\
	X(SHUTDOWN,	"shutdown")					\
	X(PEER,		"closed by peers")	/* TCP: both sides */	\
	X(OTHER,	"other")

#define SHM_CLOSE_ENUM_(name, word)	SHM_CLOSE_##name,
enum shm_close {
	SHM_CLOSE_REASONS(SHM_CLOSE_ENUM_)
	SHM_CLOSE_N
};

/* An address as plain bytes: family AF_INET or AF_INET6, port host order. */
struct shm_addr {
	uint16_t	family;
	uint16_t	port;
	uint32_t	scope_id;
	uint8_t		addr[16];
};

/*
 * What RTCP says about one direction's media (RFC 3550 6.4), written by
 * the owning worker as RTCP passes, never on an RTP packet; the master
 * reads it for replies and metrics.  The sender reports of this
 * direction's sender (their NTP time's middle 32 bits and when they went
 * by), so that the receiver's answer, coming back the other way with
 * LSR and DLSR, gives the round trip between the relay and that
 * receiver; and the receiver's last report block about this direction.
 * Two cache lines.
 */
#define SHM_SR_KEEP	4

struct shm_rtcpq {
	uint32_t	sr_lsr[SHM_SR_KEEP];	/* 0: none */
	int64_t		sr_ns[SHM_SR_KEEP];	/* CLOCK_REALTIME */
	uint32_t	sr_next;
	_Atomic uint32_t fraction_lost;		/* of 256, last report */
	_Atomic int32_t	cum_lost;		/* 24-bit signed, reported */
	_Atomic uint32_t rep_ssrc;		/* the reporter */
	/* second line */
	_Atomic uint64_t jitter_ns;		/* reported jitter */
	_Atomic uint64_t rtt_ns;		/* last round trip */
	_Atomic uint64_t rtt_sum_ns;
	_Atomic uint64_t rtt_count;
	_Atomic uint64_t rtt_max_ns;
	_Atomic uint64_t reports;		/* blocks about this direction */
	_Atomic int64_t	report_ms;		/* the last one's; 0: none */
	_Atomic uint64_t srs;			/* sender reports seen */
};

/*
 * RFC 4733 telephone-event state of one direction, written by the owning
 * worker on packets of the session's DTMF payload type only: the event
 * (by its RTP timestamp) in progress or last reported, so that redundant
 * end packets and retransmissions make no second event, also across a
 * worker restart.  One cache line.
 */
#define SHM_DTMF_NONE	0
#define SHM_DTMF_ON	1	/* in progress, its end not seen */
#define SHM_DTMF_DONE	2	/* reported */

struct shm_dtmf {
	uint32_t	ts;		/* the event's RTP timestamp */
	uint32_t	ssrc;
	uint8_t		state;		/* SHM_DTMF_* */
	uint8_t		event;
	uint8_t		volume;
	uint8_t		pad0;
	uint32_t	duration;	/* timestamp units, longest seen */
	int64_t		start_ns;	/* first packet, less its duration */
	int64_t		last_ns;
	int64_t		tat_ns;		/* events told: a GCRA */
	uint32_t	untold;		/* over the rate, not told */
	uint32_t	pad1[5];
};

/*
 * The counters of one direction, declared once: from this list come their
 * fields in struct shm_totals and in the master's snapshot, the sum of
 * the gone, the fields of rtpproxy.DirectionStats they fill, the metrics
 * and rtpproxyctl's rows.  struct shm_dir, which the packet path writes,
 * is laid out by hand below (shm.c checks that it holds each of them).
 * Adding one: a line here, its field in struct shm_dir, the proto field,
 * the docs; and the code that counts it.
 *
 * X(field, kind, DirectionStats field, metric, rtpproxyctl label, help)
 * kind	TRAFFIC, RTCP, RTP: a metric family of its own, named metric,
 *	counted on the RTP sockets, on the RTCP sockets, or by the RTP
 *	statistics; the families come out in that order of kinds.
 *	DROP: a reason label of rtpproxyd_dropped_packets_total, and a part
 *	of DirectionStats.packets_dropped.
 * help	the metric family's HELP; for a drop, what the reason means.
 *
 * The order is that of struct shm_totals, which lives in the table that
 * a master taking over reads from its predecessor: add at the end.
 */
#define SHM_DIR_COUNTERS(X)						\
	X(packets_received, TRAFFIC, packets_received,			\
	    "rtpproxyd_received_packets_total", "packets received",	\
	    "Datagrams received on the sessions' RTP sockets, dropped "	\
	    "ones included (RTCP is counted apart).")			\
	X(bytes_received, TRAFFIC, bytes_received,			\
	    "rtpproxyd_received_bytes_total", "bytes received",		\
	    "Bytes of UDP payload received on the sessions' RTP "	\
	    "sockets.")							\
	X(packets_sent, TRAFFIC, packets_sent,				\
	    "rtpproxyd_sent_packets_total", "packets sent",		\
	    "Datagrams relayed from the sessions' RTP sockets.")	\
	X(bytes_sent, TRAFFIC, bytes_sent,				\
	    "rtpproxyd_sent_bytes_total", "bytes sent",			\
	    "Bytes of UDP payload relayed from the sessions' RTP "	\
	    "sockets.")							\
	X(dropped_invalid, DROP, dropped_invalid,			\
	    "invalid", "invalid", "Malformed.")				\
	X(dropped_not_latched, DROP, dropped_not_latched,		\
	    "not_latched", "not latched",				\
	    "Reverse media before the caller latched.")			\
	X(dropped_send_error, DROP, dropped_send_error,			\
	    "send_error", "send error", "The kernel refused to send.")	\
	X(dropped_rate_limited, DROP, dropped_rate_limited,		\
	    "rate_limited", "rate limited",				\
	    "Over the session's packet or bit rate limit.")		\
	X(dropped_overflow, DROP, dropped_overflow,			\
	    "overflow", "buffer full",					\
	    "The socket's receive buffer was full (a flood, or a "	\
	    "worker restarting).")					\
	X(dropped_source, DROP, dropped_source,				\
	    "source", "refused source",					\
	    "From a sender that is not allowed: reverse-source, or a "	\
	    "refused latch.")						\
	X(non_rtp, RTP, non_rtp_packets,				\
	    "rtpproxyd_non_rtp_packets_total", "non-RTP packets",	\
	    "Datagrams on the RTP sockets that are not RTP (STUN, "	\
	    "DTLS, ...): relayed, kept out of the RTP statistics.")	\
	X(rtcp_received, RTCP, rtcp_packets_received,			\
	    "rtpproxyd_rtcp_received_packets_total", "RTCP received",	\
	    "Datagrams received on the sessions' RTCP sockets.")	\
	X(rtcp_sent, RTCP, rtcp_packets_sent,				\
	    "rtpproxyd_rtcp_sent_packets_total", "RTCP sent",		\
	    "Datagrams relayed from the sessions' RTCP sockets.")	\
	X(packets_expected, RTP, packets_expected,			\
	    "rtpproxyd_rtp_expected_packets_total", "packets expected",	\
	    "RTP packets expected from the sequence numbers (RFC 3550 "	\
	    "A.3).")							\
	X(kernel_packets, TRAFFIC, kernel_packets,			\
	    "rtpproxyd_kernel_packets_total", "kernel packets",		\
	    "Datagrams (RTP and RTCP) relayed by the kernel fast path, "	\
	    "also counted in the received and sent totals.")		\
	X(kernel_offloads, TRAFFIC, kernel_offloads,			\
	    "rtpproxyd_kernel_offloads_total", "kernel offloads",	\
	    "Times a session direction (RTP or RTCP) was handed to the "	\
	    "kernel fast path.")					\
	X(rtcp_malformed, RTCP, rtcp_malformed,				\
	    "rtpproxyd_rtcp_malformed_packets_total", "RTCP malformed",	\
	    "RTCP compound packets relayed whose reports do not fit "	\
	    "their lengths: what does not fit is not used.")		\
	X(dtmf_events, RTP, dtmf_events,				\
	    "rtpproxyd_dtmf_events_total", "DTMF events",		\
	    "RFC 4733 telephone-events (digits) detected.")		\
	X(dtmf_dropped, RTP, dtmf_packets_dropped,			\
	    "rtpproxyd_dtmf_dropped_packets_total", "DTMF dropped",	\
	    "Telephone-event packets not relayed, as the session's "	\
	    "drop-dtmf option asks.")

/* The metrics show the kinds in this order, the drops last. */
enum shm_counter_kind {
	SHM_CK_TRAFFIC,
	SHM_CK_RTCP,
	SHM_CK_RTP,
	SHM_CK_DROP
};

/* SHM_C_packets_received, ...: a counter's place in the list. */
#define SHM_C_ENUM_(f, kind, proto, metric, label, help)	SHM_C_##f,
enum shm_counter_id {
	SHM_DIR_COUNTERS(SHM_C_ENUM_)
	SHM_C_N
};

struct shm_counter {
	const char		*field;
	enum shm_counter_kind	 kind;
	const char		*metric;
	const char		*label;
	const char		*help;
	size_t			 off;	/* in struct shm_totals */
};

extern const struct shm_counter shm_counters[SHM_C_N];

/*
 * Statistics for one direction; written by the owning worker.  Laid out by
 * how often they change: the first cache line with every batch, the second
 * (RTP source state) and third with every RTP packet, the rest rarely.
 * Besides the counters of SHM_DIR_COUNTERS: the latency figures, the last
 * packet's time, the loss, jitter and SSRC; then what RTCP said and the
 * telephone-event state (struct shm_rtcpq, shm_dtmf), which RTP packets
 * do not touch.  A new counter takes a word of pad3.
 */
struct shm_dir {
	_Atomic uint64_t	packets_received;
	_Atomic uint64_t	bytes_received;
	_Atomic uint64_t	packets_sent;
	_Atomic uint64_t	bytes_sent;
	_Atomic uint64_t	latency_sum_ns;
	_Atomic uint64_t	latency_count;
	_Atomic uint64_t	latency_max_ns;
	_Atomic int64_t		last_packet_ms;	/* wall clock; 0 = never */

	/*
	 * RFC 3550 A.1 source state (src/common/rfc3550.h; the kernel fast
	 * path's map keeps the same).  Only the owning worker reads or writes
	 * it; it lives here so that a respawned worker continues where the
	 * dead one was.  Exactly one cache line.
	 */
	struct rfc3550_src	src;

	_Atomic uint64_t	packets_expected;
	_Atomic int64_t		packets_lost;
	_Atomic uint64_t	jitter_ns;
	_Atomic uint32_t	ssrc;
	_Atomic uint32_t	in_kernel;	/* KFWD_DIR_*: offloaded */
	_Atomic uint64_t	dropped_invalid;
	_Atomic uint64_t	dropped_not_latched;
	_Atomic uint64_t	dropped_send_error;
	_Atomic uint64_t	dropped_rate_limited;

	_Atomic uint64_t	dropped_overflow;	/* socket buffer full */
	_Atomic uint64_t	dropped_source;		/* refused sender */
	_Atomic uint64_t	non_rtp;
	_Atomic uint64_t	rtcp_received;
	_Atomic uint64_t	rtcp_sent;
	_Atomic uint64_t	kernel_packets;		/* kernel fast path */
	_Atomic uint64_t	kernel_offloads;
	_Atomic uint64_t	rtcp_malformed;

	/* off the packet path: telephone-events, RTCP, a new source */
	_Atomic uint64_t	dtmf_events;
	_Atomic uint64_t	dtmf_dropped;
	_Atomic uint32_t	pt;		/* of the source's first packet */
	uint32_t		pad2;
	uint64_t		pad3[5];
	struct shm_rtcpq	q;
	struct shm_dtmf		dtmf;
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct shm_rtcpq) == 128, "two cache lines");
_Static_assert(sizeof(struct shm_dtmf) == 64, "a cache line");

#define SHM_KERNEL_RTP	0x01	/* in_kernel: RTP is in the kernel */
#define SHM_KERNEL_RTCP	0x02	/* ... and RTCP */

/*
 * What the owning worker has merged of a kernel fast path entry's
 * figures (src/kfwd), per socket role, so that a worker that replaces it
 * merges only what is new.
 */
struct shm_kbase {
	uint64_t	packets, bytes, sent, bytes_sent, limited;
};

#define SHM_DIR_FWD	0	/* caller -> destination */
#define SHM_DIR_REV	1	/* destination -> caller */

/*
 * A TCP session's stream state, per direction, written by the owning
 * worker so that a respawned worker goes on parsing where the dead one
 * stopped.  RFC 4571 frames: a two-octet length, then the packet.
 */
struct shm_tcpdir {
	uint32_t	frame_left;	/* octets left of the current frame */
	uint32_t	pending;	/* sent on, not yet consumed here */
	uint8_t		framing;	/* SHM_TCP_FRAMING_* */
	uint8_t		have;		/* octets of hdr collected */
	uint8_t		eof;		/* end of stream seen and passed on */
	uint8_t		pad0;
	uint8_t		hdr[2 + 12];	/* length and RTP fixed header */
	uint16_t	pad1;
};

#define SHM_TCP_FRAMING_UNKNOWN	0
#define SHM_TCP_FRAMING_RFC4571	1
#define SHM_TCP_FRAMING_NONE	2

/*
 * Latch policies, X(NAME, number, word): the numbers match
 * rtpproxy.LatchPolicy, the words are those of the configuration, the
 * logs and rtpproxyctl.
 */
#define SHM_LATCH_POLICIES(X)						\
	X(LEARN,	1, "learn")					\
	X(NEVER,	2, "never")					\
	X(LATEST,	3, "latest")

#define SHM_LATCH_ENUM_(name, num, word)	SHM_LATCH_##name = num,
enum shm_latch_policy {
	SHM_LATCH_POLICIES(SHM_LATCH_ENUM_)
	SHM_LATCH_N		/* one more than the last */
};

/*
 * How a session's caller latch may move (its policy, which the master
 * writes when it creates the session), and what the owning worker keeps
 * of it here so that a worker that replaces it carries on: when the
 * learning period ends, when the latched RTP source last sent, and the
 * new source that is sending its run of packets in sequence.  Only the
 * owning worker reads the worker's fields, but moves.  One cache line.
 */
struct shm_latch {
	/* the master writes */
	uint8_t		policy;		/* SHM_LATCH_*; 0 as LEARN */
	uint8_t		run;		/* RTP packets in sequence to move */
	/* the owning worker writes */
	uint8_t		cand_count;	/* of the candidate's run; 0: none */
	uint8_t		rtcp_follow;	/* RTP moved since RTCP latched */
	uint16_t	cand_seq;	/* the candidate's last sequence */
	uint16_t	pad0;
	/* the master writes */
	uint32_t	learn_ms;	/* after the first latch */
	uint32_t	quiet_ms;	/* the latched source this long quiet */
	/* the owning worker writes */
	int64_t		learn_end_ms;	/* wall clock; 0: not latched */
	int64_t		seen_ms;	/* the latched RTP source's last */
	_Atomic uint32_t moves;		/* re-latches, RTP and RTCP */
	uint32_t	cand_ssrc;
	struct shm_addr	cand;		/* a new source, on its way */
};

/*
 * A session's recording, written by its worker: the relay's thread
 * (parts, seen_gen, file, dropped: copies it had no room for) and its
 * writer thread (state, packets, error).  A new worker goes on from here.
 */
#define SHM_REC_NONE	0
#define SHM_REC_ACTIVE	1	/* a file is being written */
#define SHM_REC_FAILED	2	/* error says why; media flows on */
#define SHM_REC_STOPPED	3

struct shm_rec {
	_Atomic uint32_t	state;		/* SHM_REC_* */
	uint32_t		parts;		/* files begun */
	uint32_t		seen_gen;	/* the slot's rec_gen acted on */
	uint32_t		pad0;
	_Atomic uint64_t	packets;	/* written */
	_Atomic uint64_t	dropped;
	char			file[256];	/* the current or last file */
	char			error[128];
};

struct shm_slot {
	/* master writes; release on publish, acquire on read */
	_Atomic uint32_t	state;		/* enum shm_state */
	_Atomic uint32_t	gen;		/* bumped on every reuse */
	uint32_t		worker;
	uint32_t		flags;		/* SHM_F_* */
	uint32_t		idle_timeout_s;
	uint32_t		setup_timeout_s;
	uint32_t		stats_interval_ms;
	uint32_t		clock_rate;	/* dynamic PTs; 0: 8000 */
	uint32_t		dtmf_pt;	/* telephone-event; 0: none */
	uint32_t		rate_pps;	/* per direction; 0: none */
	uint32_t		rate_burst_ms;
	uint64_t		rate_bps;	/* per direction; 0: none */
	int64_t			created_ms;
	struct shm_addr		listen;		/* bound; RTCP on port + 1 */
	struct shm_addr		forward;
	struct shm_addr		dest;
	char			id[SHM_ID_MAX];
	char			error[SHM_REASON_MAX];
	/* src/repl: this session (not another of its id), its owner's epoch */
	uint64_t		repl_inc;
	uint32_t		repl_epoch;
	uint32_t		repl_pad;
	uint32_t		updates;	/* UpdateSession changes */
	uint32_t		rec_gen;	/* recording starts asked for */

	/* the owning worker writes */
	_Atomic uint32_t	latched;	/* bit 0: RTP, bit 1: RTCP */
	_Atomic uint32_t	tcp_up;		/* TCP: bit 0 caller, 1 dest */
	/* the kernel's drop count per socket, as last seen (SO_RXQ_OVFL) */
	uint32_t		ovfl_seen[4];
	struct shm_addr		latch_rtp;
	struct shm_addr		latch_rtcp;
	struct shm_latch	latch;		/* the policy: master */
	struct shm_tcpdir	tcp[2];
	struct shm_rec		rec;
	struct shm_dir		dir[2];		/* SHM_DIR_FWD, SHM_DIR_REV */
	struct shm_kbase	kbase[4];	/* by socket role */
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct shm_latch) == 64, "the latch is a cache line");
_Static_assert(offsetof(struct shm_slot, dir) % 64 == 0,
    "the statistics start on a cache line");

/*
 * Per-direction sums of the counters: of the sessions that are gone, in
 * the header (master writes), and of one slot, in a snapshot.  The loss
 * and the latency figures are summed too, and shown each in its own way.
 */
#define SHM_TOTALS_FIELD_(f, kind, proto, metric, label, help)	uint64_t f;
struct shm_totals {
	SHM_DIR_COUNTERS(SHM_TOTALS_FIELD_)
	int64_t		packets_lost;
	uint64_t	latency_sum_ns, latency_count;
};

/*
 * A worker as the master knows it, so that a master that takes over can
 * find and adopt it; and the worker's own counters.
 */
struct shm_worker {
	/* master writes */
	_Atomic int32_t		pid;		/* 0: none */
	_Atomic uint32_t	gen;
	uint16_t		port_lo, port_hi;
	_Atomic uint32_t	quarantined;	/* sessions, for its crashes */
	_Atomic uint64_t	restarts;
	/* the worker writes */
	_Atomic uint64_t	lat_hist[SHM_LAT_BUCKETS];
	_Atomic uint64_t	lat_sum_ns;
	_Atomic uint64_t	lat_count;
	/*
	 * The slot whose sockets it works on (SHM_BUSY), 0 when none: what
	 * a worker that crashed was doing, for the master to read.
	 */
	_Atomic uint64_t	busy;
} __attribute__((aligned(64)));

#define SHM_BUSY(slot, gen)	((uint64_t)(gen) << 32 | ((uint64_t)(slot) + 1))
#define SHM_BUSY_SLOT(b)	((uint32_t)((b) & 0xffffffffu) - 1)
#define SHM_BUSY_GEN(b)		((uint32_t)((b) >> 32))

/* Both fields came out of padding: the layout did not change. */
_Static_assert(sizeof(struct shm_worker) == 192, "shm_worker layout");

/*
 * Destination rules (acl.c), published by the master with a sequence
 * lock: seq is odd while it writes; a reader copies and checks that seq
 * did not move.
 */
#define SHM_ACL_ALLOW	1
#define SHM_ACL_DENY	2

struct shm_acl_rule {
	uint8_t		family;
	uint8_t		plen;		/* prefix length */
	uint8_t		action;		/* SHM_ACL_* */
	uint8_t		origin;		/* 0: configured, else built in */
	uint32_t	line;		/* of the configuration file */
	uint8_t		addr[16];
};

struct shm_acl {
	_Atomic uint32_t	seq;
	uint32_t		nrules;
	uint32_t		nlocal;
	uint16_t		port_min, port_max;	/* own media ports */
	uint16_t		nown;
	uint16_t		own[SHM_OWN_MAX];	/* own API ports */
	struct shm_acl_rule	rules[SHM_ACL_MAX];
	struct shm_addr		local[SHM_LOCAL_MAX];	/* port unused */
};

/*
 * The UDP ports this daemon's sessions hold, by family (0: IPv4, 1: IPv6)
 * and port: 0 when no session's socket is bound there, the slot + 1 of
 * the one session that holds it, or SHM_PORT_SHARED when more do.  The
 * master writes it as it binds and lets go of sockets; a worker reads it,
 * and then the slot's addresses, to tell a sender that is one of the
 * daemon's own sockets from a caller on this host (acl_own_socket): one
 * relaxed load, no lock.
 */
#define SHM_PORT_SHARED	UINT32_MAX

struct shm_ports {
	_Atomic uint32_t	owner[2][65536];
};

struct shm_header {
	uint32_t	magic;
	uint32_t	version;
	uint32_t	header_size;
	uint32_t	slot_size;
	uint32_t	nslots;
	uint32_t	pad0;
	uint64_t	total_size;
	_Atomic int64_t	master_pid;
	/* the running layout, which a master that takes over keeps */
	uint32_t	nworkers;
	uint16_t	port_min, port_max;
	_Atomic uint32_t worker_gen;		/* last generation given */
	_Atomic uint32_t orphan_timeout;	/* s a worker waits for a master */
	/* table-wide counters, for monitoring; they survive the master */
	_Atomic uint64_t sessions_created;
	_Atomic uint64_t sessions_closed;
	_Atomic uint64_t closed_by[SHM_CLOSE_N];
	_Atomic uint64_t master_starts;		/* takeovers included */
	_Atomic uint64_t grpc_calls[SHM_GRPC_METHODS][SHM_GRPC_CODES];
	_Atomic uint64_t events_sent;
	_Atomic uint64_t events_dropped;
	struct shm_totals closed[2];
	struct shm_acl	acl;
	struct shm_worker workers[SHM_MAX_WORKERS];
	/* recording-dir, for the workers ("": none); master writes */
	char		rec_dir[200];
	/* recorded packets written and dropped by the sessions freed */
	_Atomic uint64_t rec_closed_packets;
	_Atomic uint64_t rec_closed_dropped;
};

struct shm_table {
	struct shm_header	*hdr;
	struct shm_ports	*ports;
	struct shm_slot		*slots;
	uint32_t		 nslots;
	size_t			 size;
	char			 name[64];
	int			 owner;		/* created (and unlinks) it */
};

size_t	 shm_table_size(uint32_t);
int	 shm_create(struct shm_table *, const char *, uint32_t);
int	 shm_attach(struct shm_table *, const char *);
void	 shm_detach(struct shm_table *);
int	 shm_unlink_table(struct shm_table *);
int	 shm_validate(const struct shm_header *, size_t);
struct shm_slot	*shm_slot(struct shm_table *, uint32_t);
void	 shm_slot_reset(struct shm_slot *);
void	 shm_totals_add(struct shm_totals *, const struct shm_dir *);
void	 shm_dir_load(struct shm_dir *, const struct shm_totals *);
uint64_t shm_totals_get(const struct shm_totals *, int);
uint64_t shm_totals_dropped(const struct shm_totals *);
int	 shm_lat_bucket(uint64_t);
double	 shm_loss_rate(const struct shm_dir *);
const char *shm_state_name(uint32_t);
const char *shm_close_name(enum shm_close);
const char *shm_latch_name(int);
int	 shm_latch_from_name(const char *);

int	 shm_addr_from_sa(struct shm_addr *, const struct sockaddr *);
socklen_t shm_addr_to_sa(const struct shm_addr *, struct sockaddr_storage *);
int	 shm_addr_eq_sa(const struct shm_addr *, const struct sockaddr *);
const char *shm_addr_ntop(const struct shm_addr *, char *, size_t);

#endif
