/*
 * The shared-memory session table.  The master creates it before any
 * worker exists; workers attach by name.  It holds plain values only (no
 * pointers) and every field has one writer: identity and state are written
 * by the master, statistics and the latch by the worker that owns the slot.
 */
#ifndef RTPPROXYD_SHM_H
#define RTPPROXYD_SHM_H

#include <sys/types.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHM_MAGIC	0x52545058u	/* "RTPX" */
#define SHM_VERSION	1u
#define SHM_ID_MAX	64		/* session id, NUL included */
#define SHM_REASON_MAX	128

/* Numbers match rtpproxy.SessionState. */
enum shm_state {
	SHM_FREE = 0,
	SHM_CREATED = 1,
	SHM_CONNECTING = 2,
	SHM_ACTIVE = 3,
	SHM_ERROR = 4,
	SHM_CLOSED = 5,
};

#define SHM_F_UNIDIR	0x01	/* do not relay destination -> caller */
#define SHM_F_NORTCP	0x02	/* no RTCP sockets */
#define SHM_F_TCP	0x04

/* An address as plain bytes: family AF_INET or AF_INET6, port host order. */
struct shm_addr {
	uint16_t	family;
	uint16_t	port;
	uint32_t	scope_id;
	uint8_t		addr[16];
};

/*
 * RFC 3550 A.1 source state.  Only the owning worker reads or writes it; it
 * lives here so that a respawned worker continues where the dead one was.
 */
struct shm_rtpsrc {
	uint32_t	ssrc;
	uint16_t	max_seq;
	uint16_t	pad0;
	uint32_t	cycles;		/* shifted count of wraps */
	uint32_t	base_seq;
	uint32_t	bad_seq;
	uint32_t	probation;
	uint32_t	received;
	uint32_t	clock_rate;
	int32_t		transit;	/* last relative transit, ts units */
	uint32_t	valid;		/* 1 once a source is established */
	double		jitter;		/* A.8 estimate, ts units */
	int64_t		lost_base;	/* loss carried across SSRC changes */
	uint64_t	expected_base;
};

/* Statistics for one direction; written by the owning worker. */
struct shm_dir {
	_Atomic uint64_t	packets_received;
	_Atomic uint64_t	bytes_received;
	_Atomic uint64_t	packets_sent;
	_Atomic uint64_t	bytes_sent;
	_Atomic uint64_t	dropped_invalid;
	_Atomic uint64_t	dropped_not_latched;
	_Atomic uint64_t	dropped_send_error;
	_Atomic uint64_t	dropped_rate_limited;
	_Atomic uint64_t	dropped_overflow;	/* socket buffer full */
	_Atomic uint64_t	non_rtp;
	_Atomic uint64_t	rtcp_received;
	_Atomic uint64_t	rtcp_sent;
	_Atomic uint64_t	packets_expected;
	_Atomic int64_t		packets_lost;
	_Atomic uint64_t	jitter_ns;
	_Atomic uint64_t	latency_sum_ns;
	_Atomic uint64_t	latency_count;
	_Atomic uint64_t	latency_max_ns;
	_Atomic int64_t		last_packet_ms;	/* wall clock; 0 = never */
	_Atomic uint32_t	ssrc;
	uint32_t		pad0;
	struct shm_rtpsrc	src;
};

#define SHM_DIR_FWD	0	/* caller -> destination */
#define SHM_DIR_REV	1	/* destination -> caller */

struct shm_slot {
	/* master writes; release on publish, acquire on read */
	_Atomic uint32_t	state;		/* enum shm_state */
	_Atomic uint32_t	gen;		/* bumped on every reuse */
	uint32_t		worker;
	uint32_t		flags;		/* SHM_F_* */
	char			id[SHM_ID_MAX];
	struct shm_addr		listen;		/* bound; RTCP on port + 1 */
	struct shm_addr		forward;
	struct shm_addr		dest;
	uint32_t		idle_timeout_s;
	uint32_t		setup_timeout_s;
	uint32_t		stats_interval_ms;
	uint32_t		clock_rate;	/* dynamic PTs; 0: 8000 */
	int64_t			created_ms;
	char			error[SHM_REASON_MAX];

	/* the owning worker writes */
	_Atomic uint32_t	latched;	/* bit 0: RTP, bit 1: RTCP */
	uint32_t		pad1;
	/* the kernel's drop count per socket, as last seen (SO_RXQ_OVFL) */
	uint32_t		ovfl_seen[4];
	struct shm_addr		latch_rtp;
	struct shm_addr		latch_rtcp;
	struct shm_dir		dir[2];		/* SHM_DIR_FWD, SHM_DIR_REV */
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
	/* table-wide counters, for monitoring */
	_Atomic uint64_t sessions_created;
	_Atomic uint64_t sessions_closed;
};

struct shm_table {
	struct shm_header	*hdr;
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

int	 shm_addr_from_sa(struct shm_addr *, const struct sockaddr *);
socklen_t shm_addr_to_sa(const struct shm_addr *, struct sockaddr_storage *);
int	 shm_addr_eq_sa(const struct shm_addr *, const struct sockaddr *);
const char *shm_addr_ntop(const struct shm_addr *, char *, size_t);

#endif
