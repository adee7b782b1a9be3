/* Shared by tests/bench/xgen.c and xgen.bpf.c. */
#ifndef XGEN_H
#define XGEN_H

#define XGEN_MAXSESS	8192
#define XGEN_MAXCPU	64
/* Ethernet, IPv4 without options, UDP, the RTP header */
#define XGEN_FRAME_HDRS	(14 + 20 + 8 + 12)

struct xgen_sess {
	__u16	sport, dport;	/* network order */
	__u16	seq;		/* host order: the next packet's */
	__u16	pad;
	__u32	ts;		/* host order */
	__u32	ssrc;		/* network order */
};

struct xgen_rtp {
	__u8	vpxcc, mpt;
	__u16	seq;
	__u32	ts;
	__u32	ssrc;
};

#endif
