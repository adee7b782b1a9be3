/*
 * A session as the API shows it: a snapshot of its slot made into a
 * SessionInfo (endpoints, figures per direction) with storage of its own,
 * for replies (gs_rpc.c) and events (gs_stream.c).
 */
#include "gs_int.h"

/* The replies pass states, policies and event types on by number. */
#define GS_API_(e, api)	_Static_assert((int)(e) == (int)(api), #e);
#define GS_STATE_(name)							\
	GS_API_(SHM_##name, RTPPROXY__SESSION_STATE__SESSION_STATE_##name)
#define GS_EVENT_(name)							\
	GS_API_(SEV_##name, RTPPROXY__EVENT_TYPE__EVENT_TYPE_##name)
#define GS_LATCH_(name, num, word)					\
	GS_API_(SHM_LATCH_##name, RTPPROXY__LATCH_POLICY__LATCH_POLICY_##name)
GS_API_(SHM_FREE, RTPPROXY__SESSION_STATE__SESSION_STATE_UNSPECIFIED)
GS_STATE_(CREATED) GS_STATE_(CONNECTING) GS_STATE_(ACTIVE) GS_STATE_(ERROR)
GS_STATE_(CLOSED)
GS_EVENT_(CREATED) GS_EVENT_(STATE_CHANGED) GS_EVENT_(STATS_UPDATE)
GS_EVENT_(ERROR) GS_EVENT_(CLOSED) GS_EVENT_(RELATCHED)
GS_EVENT_(SOURCE_REFUSED) GS_EVENT_(UPDATED) GS_EVENT_(RECORDING) GS_EVENT_(DTMF)
SHM_LATCH_POLICIES(GS_LATCH_)

/* Each counter of the list is a uint64 of DirectionStats. */
#define GS_DIR_IS_U64_(f, kind, proto, metric, label, help)		\
	_Static_assert(_Generic(((Rtpproxy__DirectionStats *)0)->proto,	\
	    uint64_t: 1, default: 0), #proto ": not a uint64");
SHM_DIR_COUNTERS(GS_DIR_IS_U64_)

Rtpproxy__Endpoint *
gs_info_ep(Rtpproxy__Endpoint *ep, char *buf, const struct shm_addr *a)
{
	char ifname[IF_NAMESIZE];
	size_t len;

	rtpproxy__endpoint__init(ep);
	shm_addr_ntop(a, buf, GS_ADDRLEN);
	/* Keep the scope, so the address can be given back as it is. */
	if (a->family == AF_INET6 && a->scope_id != 0 &&
	    if_indextoname(a->scope_id, ifname) != NULL) {
		len = strlen(buf);
		snprintf(buf + len, GS_ADDRLEN - len, "%%%s", ifname);
	}
	ep->address = buf;
	ep->port = a->port;
	return ep;
}

static void
gs_info_dir(Rtpproxy__DirectionStats *d, const struct session_dirsnap *s)
{
	rtpproxy__direction_stats__init(d);
#define GS_DIR_(f, kind, proto, metric, label, help)	d->proto = s->c.f;
	SHM_DIR_COUNTERS(GS_DIR_)
#undef GS_DIR_
	d->packets_dropped = shm_totals_dropped(&s->c);
	d->packets_lost = s->c.packets_lost;
	d->loss_rate = s->loss_rate;
	d->jitter_ms = s->jitter_ms;
	d->avg_latency_ms = s->avg_latency_ms;
	d->max_latency_ms = s->max_latency_ms;
	d->last_packet_ms = s->last_packet_ms;
	d->ssrc = s->ssrc;
	d->rtp_in_kernel = (s->in_kernel & SHM_KERNEL_RTP) != 0;
	d->rtcp_in_kernel = (s->in_kernel & SHM_KERNEL_RTCP) != 0;
	d->rtt_ms = s->q.rtt_ms;
	d->rtt_avg_ms = s->q.rtt_avg_ms;
	d->rtt_max_ms = s->q.rtt_max_ms;
	d->rtt_samples = s->q.rtt_samples;
	d->reported_loss_rate = s->q.rep_loss;
	d->reported_packets_lost = s->q.rep_lost;
	d->reported_jitter_ms = s->q.rep_jitter_ms;
	d->rtcp_reports = s->q.reports;
	d->rtcp_sender_reports = s->q.srs;
	d->last_report_ms = s->q.report_ms;
	d->mos = s->q.mos;
	d->r_factor = s->q.r;
	d->payload_type = s->q.pt;
}

Rtpproxy__SessionInfo *
gs_info_fill(struct gs_info *gi, const struct session_snapshot *s)
{
	Rtpproxy__SessionInfo *i = &gi->info;

	rtpproxy__session_info__init(i);
	gs_text(gi->id, sizeof(gi->id), s->id, sizeof(s->id));
	gs_text(gi->error, sizeof(gi->error), s->error, sizeof(s->error));
	i->session_id = gi->id;
	i->state = (Rtpproxy__SessionState)s->state;
	i->listen = gs_info_ep(&gi->ep[0], gi->addr[0], &s->listen);
	i->forward = gs_info_ep(&gi->ep[1], gi->addr[1], &s->forward);
	i->destination = gs_info_ep(&gi->ep[2], gi->addr[2], &s->dest);
	if (s->latched.family != 0)
		i->latched = gs_info_ep(&gi->ep[3], gi->addr[3], &s->latched);
	if (s->latched_rtcp.family != 0)
		i->latched_rtcp = gs_info_ep(&gi->ep[4], gi->addr[4],
		    &s->latched_rtcp);
	i->transport = (s->flags & SHM_F_TCP) ?
	    RTPPROXY__TRANSPORT__TRANSPORT_TCP :
	    RTPPROXY__TRANSPORT__TRANSPORT_UDP;
	i->unidirectional = (s->flags & SHM_F_UNIDIR) != 0;
	i->disable_rtcp = (s->flags & SHM_F_NORTCP) != 0;
	i->created_at_ms = s->created_ms;
	i->last_activity_ms = s->last_activity_ms;
	i->error_message = gi->error;
	gs_info_dir(&gi->dir[0], &s->dir[SHM_DIR_FWD]);
	gs_info_dir(&gi->dir[1], &s->dir[SHM_DIR_REV]);
	i->forward_stats = &gi->dir[0];
	i->reverse_stats = &gi->dir[1];
	i->idle_timeout_s = s->idle_timeout_s;
	i->worker = s->worker;
	i->stats_interval_ms = s->stats_interval_ms;
	i->clock_rate = s->clock_rate;
	i->reverse_source = !(s->flags & SHM_F_SRC_ADDR) ?
	    RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ANY :
	    (s->flags & SHM_F_SRC_PORT) ?
	    RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ADDRESS_PORT :
	    RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ADDRESS;
	i->rate_limit_pps = s->rate_pps;
	i->rate_limit_bps = s->rate_bps;
	i->latch_policy = (Rtpproxy__LatchPolicy)s->latch_policy;
	i->relatches = s->relatches;
	/* Another node's session (ListSessions) gets its own after. */
	if (gs_ha.node != NULL)
		i->node = (char *)gs_ha.node();
	i->dtmf_payload_type = s->dtmf_pt;
	i->drop_dtmf = (s->flags & SHM_F_DROP_DTMF) != 0;
	i->updates = s->updates;
	if (s->rec_parts > 0 || s->rec_state != SHM_REC_NONE) {
		rtpproxy__recording__init(&gi->rec);
		gs_text(gi->rec_file, sizeof(gi->rec_file), s->rec_file,
		    sizeof(s->rec_file));
		gs_text(gi->rec_error, sizeof(gi->rec_error), s->rec_error,
		    sizeof(s->rec_error));
		gi->rec.active = s->rec_state == SHM_REC_ACTIVE;
		gi->rec.file = gi->rec_file;
		gi->rec.packets = s->rec_packets;
		gi->rec.dropped = s->rec_dropped;
		gi->rec.error = gi->rec_error;
		gi->rec.parts = s->rec_parts;
		i->recording = &gi->rec;
	}
	return i;
}
