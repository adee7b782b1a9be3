/*
 * The receiver statistics of RFC 3550, written once for both places that
 * keep them: the worker's packet path (src/worker/rtpstat.c, gcc) and the
 * kernel fast path's program (src/kfwd/kfwd.bpf.c, clang -target bpf).
 * Sequence validation (A.1), expected and lost packets (A.3) and
 * interarrival jitter (A.8), on a struct rfc3550_src that lives in the
 * session table (struct shm_dir) and in the kernel's map value alike, so
 * that a direction moves between the two by copying it.
 *
 * Hence the constraints: static inline functions only, no libc (the BPF
 * side has none), the kernel's fixed-width __u types (the includer brings
 * them: <linux/types.h> in userspace, vmlinux.h in BPF), no floating
 * point and no signed division (BPF has neither): the jitter estimate is
 * fixed point, and the 1/16 of A.8 an arithmetic shift.
 */
#ifndef RTPPROXYD_RFC3550_H
#define RTPPROXYD_RFC3550_H

/*
 * Inlined everywhere: the BPF program calls them under its entry's spin
 * lock, where older kernels refuse calls to subprograms.
 */
#define RFC3550_FN	static inline __attribute__((always_inline))

#define RFC3550_SEQ_MOD		65536u
#define RFC3550_MAX_DROPOUT	3000
#define RFC3550_MAX_MISORDER	100
#define RFC3550_MIN_SEQUENTIAL	2

/*
 * The jitter estimate in timestamp units << RFC3550_JITTER_SHIFT: 2^-24
 * of a unit (7.5 ps at 8000 Hz) is finer than any clock it measures, and
 * 2^31 units, the largest transit difference, still fits (2^55).
 */
#define RFC3550_JITTER_SHIFT	24
#define RFC3550_JITTER_MAX	((__u64)1 << 55)

#define RFC3550_NS_PER_S	1000000000u

/* RFC 3550 A.1 source state.  Its layout is the session table's. */
struct rfc3550_src {
	__u32	ssrc;
	__u16	max_seq;
	__u16	pad0;
	__u32	cycles;		/* shifted count of wraps */
	__u32	base_seq;
	__u32	bad_seq;
	__u32	probation;
	__u32	received;
	__u32	clock_rate;	/* the jitter's unit; 0: none yet */
	__s32	transit;	/* last relative transit, ts units */
	__u32	valid;		/* 1 once a source is established */
	__u64	jitter;		/* A.8 estimate, ts units << JITTER_SHIFT */
	__s64	lost_base;	/* loss carried across SSRC changes */
	__u64	expected_base;
};

/*
 * RFC 3551 section 6, static payload types.  Dynamic types (96..127) have
 * their rate in the SDP, which a relay does not see unless told (dyn, 0:
 * not told): 8000 is a guess that is right for telephone-event and
 * narrowband codecs.
 */
RFC3550_FN __u32
rfc3550_clock_rate(__u8 pt, __u32 dyn)
{
	if (pt >= 96 && dyn != 0)
		return dyn;
	switch (pt) {
	case 6:
		return 16000;
	case 10:
	case 11:
		return 44100;
	case 16:
		return 11025;
	case 17:
		return 22050;
	case 14:
	case 25:
	case 26:
	case 28:
	case 31:
	case 32:
	case 33:
	case 34:
		return 90000;
	default:
		/* 0, 3, 4, 5, 7, 8, 9 (G.722 is 8000 on the wire), 12, 13,
		 * 15, 18, and dynamic types. */
		return 8000;
	}
}

/* Packets expected in the current sequence (A.3). */
RFC3550_FN __s64
rfc3550_expected(const struct rfc3550_src *s)
{
	return (__s64)s->cycles + s->max_seq - (__s64)s->base_seq + 1;
}

/*
 * Fold the totals of the current sequence into the bases before the
 * sequence starts again, so that the published counters never go back.
 */
RFC3550_FN void
rfc3550_carry(struct rfc3550_src *s)
{
	__s64 expected;

	if (!s->valid)
		return;
	expected = rfc3550_expected(s);
	s->expected_base += (__u64)expected;
	s->lost_base += expected - (__s64)s->received;
}

RFC3550_FN void
rfc3550_init_seq(struct rfc3550_src *s, __u16 seq)
{
	s->base_seq = seq;
	s->max_seq = seq;
	s->bad_seq = RFC3550_SEQ_MOD + 1;	/* matches no sequence number */
	s->cycles = 0;
	s->received = 0;
}

/* A new SSRC: start over on probation, keeping only the carried totals. */
RFC3550_FN void
rfc3550_new(struct rfc3550_src *s, __u32 ssrc, __u16 seq)
{
	__s64	lost_base;
	__u64	expected_base;

	rfc3550_carry(s);
	lost_base = s->lost_base;
	expected_base = s->expected_base;
	__builtin_memset(s, 0, sizeof(*s));
	s->lost_base = lost_base;
	s->expected_base = expected_base;
	s->ssrc = ssrc;
	rfc3550_init_seq(s, seq);
	s->max_seq = (__u16)(seq - 1);
	s->probation = RFC3550_MIN_SEQUENTIAL;
}

/*
 * A.1 update_seq: 1 if the packet counts as received for this source, 0
 * while it is on probation or after a jump not yet confirmed.
 */
RFC3550_FN int
rfc3550_update_seq(struct rfc3550_src *s, __u16 seq)
{
	__u16 udelta = (__u16)(seq - s->max_seq);

	if (s->probation > 0) {
		if (seq == (__u16)(s->max_seq + 1)) {
			s->max_seq = seq;
			if (--s->probation == 0) {
				rfc3550_init_seq(s, seq);
				s->valid = 1;
				s->received = 1;
				return 1;
			}
		} else {
			s->probation = RFC3550_MIN_SEQUENTIAL - 1;
			s->max_seq = seq;
		}
		return 0;
	}
	if (udelta < RFC3550_MAX_DROPOUT) {
		if (seq < s->max_seq)
			s->cycles += RFC3550_SEQ_MOD;
		s->max_seq = seq;
	} else if (udelta <= RFC3550_SEQ_MOD - RFC3550_MAX_MISORDER) {
		if (seq != s->bad_seq) {
			/* A big jump: believe it when the next one follows. */
			s->bad_seq = (seq + 1) & (RFC3550_SEQ_MOD - 1);
			return 0;
		}
		/* The sender restarted without telling us: resync. */
		rfc3550_carry(s);
		rfc3550_init_seq(s, seq);
	}
	/* else a duplicate or a late packet: counted, as A.1 does */
	s->received++;
	return 1;
}

/* Arrival time in timestamp units, modulo 2^32 as RTP timestamps are. */
RFC3550_FN __u32
rfc3550_arrival(__s64 ns, __u32 rate)
{
	__u64 u = (__u64)ns;

	return (__u32)((u / RFC3550_NS_PER_S) * rate +
	    (u % RFC3550_NS_PER_S) * rate / RFC3550_NS_PER_S);
}

/*
 * j (in units of 1/from) in units of 1/to, rounded down, without the
 * 64-bit product overflowing; at most RFC3550_JITTER_MAX.
 */
RFC3550_FN __u64
rfc3550_rescale(__u64 j, __u32 to, __u32 from)
{
	__u64 q = j / from, r;

	if (q > RFC3550_JITTER_MAX / to)
		return RFC3550_JITTER_MAX;
	r = q * to + (j % from) * to / from;
	return r > RFC3550_JITTER_MAX ? RFC3550_JITTER_MAX : r;
}

/*
 * A.8 for a packet that counts as received: RTP timestamp ts, arrival at
 * ns (CLOCK_REALTIME), rate the clock of its payload type.  J += (|D| -
 * J) / 16, the division an arithmetic shift of the signed difference.
 */
RFC3550_FN void
rfc3550_jitter(struct rfc3550_src *s, __u32 ts, __s64 ns, __u32 rate)
{
	__s32	transit, d;
	__s64	ad;

	transit = (__s32)(rfc3550_arrival(ns, rate) - ts);
	/* A codec of another clock: keep the estimate, in the new units. */
	if (s->clock_rate != 0 && s->clock_rate != rate)
		s->jitter = rfc3550_rescale(s->jitter, rate, s->clock_rate);
	if (s->received == 1 || s->clock_rate != rate) {
		/*
		 * The first packet of a sequence (a new timestamp base
		 * likely), or of a new clock: this transit is the reference.
		 */
		s->clock_rate = rate;
	} else {
		d = (__s32)((__u32)transit - (__u32)s->transit);
		ad = d < 0 ? -(__s64)d : (__s64)d;
		s->jitter = (__u64)((__s64)s->jitter +
		    (((ad << RFC3550_JITTER_SHIFT) - (__s64)s->jitter) >> 4));
	}
	s->transit = transit;
}

#define RFC3550_NEW	0x1	/* a new source started with this packet */
#define RFC3550_CHANGE	0x2	/* ... in place of another one */
#define RFC3550_COUNTED	0x4	/* the packet counts as received */

/*
 * One valid RTP packet (SSRC ssrc, sequence seq, timestamp ts) that
 * arrived at ns (CLOCK_REALTIME) with clock rate rate, in s: what it was,
 * RFC3550_* bits.
 */
RFC3550_FN int
rfc3550_packet(struct rfc3550_src *s, __u32 ssrc, __u16 seq, __u32 ts,
    __s64 ns, __u32 rate)
{
	int ret = 0;

	if ((!s->valid && s->probation == 0) || ssrc != s->ssrc) {
		if (s->valid || s->probation != 0)
			ret |= RFC3550_CHANGE;
		rfc3550_new(s, ssrc, seq);
		ret |= RFC3550_NEW;
	}
	if (rfc3550_update_seq(s, seq)) {
		rfc3550_jitter(s, ts, ns, rate);
		ret |= RFC3550_COUNTED;
	}
	return ret;
}

/*
 * The estimate in ns (0 without a clock yet): whole units and the
 * fraction apart, so that nothing overflows (2^31 units * 10^9 < 2^64).
 */
RFC3550_FN __u64
rfc3550_jitter_ns(const struct rfc3550_src *s)
{
	__u64 whole = s->jitter >> RFC3550_JITTER_SHIFT;
	__u64 frac = s->jitter & (((__u64)1 << RFC3550_JITTER_SHIFT) - 1);

	if (s->clock_rate == 0)
		return 0;
	if (whole > RFC3550_JITTER_MAX >> RFC3550_JITTER_SHIFT)
		whole = RFC3550_JITTER_MAX >> RFC3550_JITTER_SHIFT;
	return (whole * RFC3550_NS_PER_S + ((frac * RFC3550_NS_PER_S) >>
	    RFC3550_JITTER_SHIFT)) / s->clock_rate;
}

#endif
