/*
 * A worker process: its loop and event socket (worker.c), the packet path
 * (relay.c), TCP sessions (tcp.c, rfc4571.c) and the RFC 3550 statistics
 * (rtpstat.c).  It knows the session table and its event socket, never the
 * master's structures.
 */
#ifndef RTPPROXYD_WORKER_H
#define RTPPROXYD_WORKER_H

#include "common.h"
#include "ipc.h"
#include "shm.h"

struct event_base;

/* worker.c */
int	worker_main(int, char **);

/* relay.c: the packet path, inside a worker */
struct relay;
struct relay_sess;

/*
 * Where the relay's reports go (worker.c's event socket, or a test): a
 * message, and the descriptors it carries, which the caller keeps.
 */
struct relay_sink {
	void	(*tell)(void *, struct ipc_hdr *, const int *, int);
	void	*arg;
};

/* wctx.c: what relay.c and tcp.c share about their worker */
struct wctx {
	struct shm_table	*shm;
	struct relay_sink	 sink;
	struct shm_worker	*wstats;	/* NULL: none */
	struct shm_acl		 acl;		/* copy of the published */
};

void		 wctx_init(struct wctx *, struct shm_table *,
		    const struct relay_sink *);
void		 wctx_set_worker(struct wctx *, int);
void		 wctx_report(struct wctx *, uint16_t, uint32_t, uint32_t, int,
		    const char *);
void		 wctx_tell(struct wctx *, struct ipc_hdr *, const int *, int);
const struct shm_acl *wctx_acl(struct wctx *);
void		 wctx_busy(struct wctx *, uint32_t, uint32_t);
void		 wctx_idle(struct wctx *);

struct relay	*relay_new(struct event_base *, struct shm_table *,
		    const struct relay_sink *);
void		 relay_report(struct relay *, uint16_t, uint32_t, uint32_t,
		    int, const char *);
void		 relay_free(struct relay *);
void		 relay_set_worker(struct relay *, int);
void		 relay_set_gso(struct relay *, int);
uint64_t	 relay_gso_count(const struct relay *);
/* owns the descriptors on success; on -1 the caller still does */
int		 relay_add(struct relay *, uint32_t, uint32_t, int *, int);
void		 relay_remove(struct relay *, uint32_t);
int		 relay_update(struct relay *, uint32_t, uint32_t);

/* record.c: pcap files written off the packet path */
struct rec;
#define REC_F_REV	0x01	/* destination -> caller */
#define REC_F_RTCP	0x02
struct rec	*rec_new(struct shm_table *);
void		 rec_free(struct rec *);
uint32_t	 rec_start(struct rec *, uint32_t, uint32_t);
void		 rec_name(char *, size_t, const char *,
		    const struct shm_slot *, uint32_t);
void		 rec_stop(struct rec *, uint32_t, int, uint64_t);
int		 rec_status(struct rec *, uint32_t, uint32_t, uint32_t *,
		    uint32_t *, uint64_t *, char *, size_t);
struct iovec;
void		 rec_put_batch(struct rec *, struct shm_slot *, uint32_t, int,
		    const struct iovec *, const uint8_t *, const int64_t *, int,
		    const struct sockaddr *);
int		 relay_count(const struct relay *);
void		 relay_busy(struct relay *, uint32_t, uint32_t);
void		 relay_idle(struct relay *);
typedef void	 relay_each_fn(void *, uint32_t, uint32_t, const int *, int,
		    uint32_t, const char *);
void		 relay_each(struct relay *, relay_each_fn *, void *);

/* tcp.c: TCP sessions, inside a worker */
struct tcp_relay;

struct tcp_relay *tcp_new(struct wctx *, struct event_base *);
void		 tcp_free(struct tcp_relay *);
int		 tcp_add(struct tcp_relay *, uint32_t, uint32_t, int *, int);
int		 tcp_remove(struct tcp_relay *, uint32_t);
int		 tcp_count(const struct tcp_relay *);
void		 tcp_each(struct tcp_relay *, relay_each_fn *, void *);
void		 tcp_frames(struct shm_tcpdir *, struct shm_dir *, uint32_t,
		    const uint8_t *, size_t, int64_t);
int64_t		 tcp_pending(int, int, int);

/* rtpstat.c: RFC 3550 statistics (pure functions on shm state) */
#define RTP_HDR_MIN	12
struct rtp_info {
	uint8_t		 pt;
	uint8_t		 marker;
	uint16_t	 seq;
	uint32_t	 ts;
	uint32_t	 ssrc;
	size_t		 hdrlen;	/* header incl. CSRCs and extension */
	size_t		 padlen;
	uint32_t	 dyn_rate;	/* caller's clock for PT 96-127; 0: 8000 */
};

int	rtp_parse(const uint8_t *, size_t, struct rtp_info *);
int	rtp_parse_head(const uint8_t *, size_t, struct rtp_info *);
int	rtcp_pt(uint8_t);
int	rtcp_check(const uint8_t *, size_t);
int	srtcp_check(const uint8_t *, size_t);
uint32_t rtp_clock_rate(uint8_t);
void	rtpstat_update(struct shm_dir *, const struct rtp_info *, int64_t);
void	rtpstat_sync(struct shm_dir *);

/* dtmf.c: RFC 4733 telephone-events (pure functions on shm state) */
struct dtmf_told {
	uint8_t		event, volume, end_seen;
	uint32_t	duration, rtp_ts, ssrc;
	int64_t		start_ns;
};
int	dtmf_update(struct shm_dtmf *, const uint8_t *, size_t,
	    const struct rtp_info *, uint32_t, int64_t, struct dtmf_told *);

/* rtcpq.c: call quality from RTCP reports (pure functions on shm state) */
int	rtcpq_parse(struct shm_dir *, struct shm_dir *, const uint8_t *,
	    size_t, int64_t);

#endif
