/*
 * What rtpproxyctl shows of sessions, lists of them and events: as text
 * for people, or as JSON.  The names of the API's values come from the
 * proto's descriptors and the daemon's tables, the counters from shm.h's
 * list.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "conf.h"
#include "shm.h"
#include "ctl.h"

/* A value's name, or the value as a number when it has none. */
const char *
show_name(const char *name, int v)
{
	static char buf[16];

	if (name != NULL)
		return name;
	snprintf(buf, sizeof(buf), "%d", v);
	return buf;
}

/*
 * The name of value v of an enumeration of the API, as the proto names it
 * but without the enumeration's prefix: ACTIVE for SESSION_STATE_ACTIVE.
 */
static const char *
api_name(const ProtobufCEnumDescriptor *d, const char *prefix, int v)
{
	const ProtobufCEnumValue	*ev;
	size_t				 n = strlen(prefix);

	if ((ev = protobuf_c_enum_descriptor_get_value(d, v)) == NULL)
		return show_name(NULL, v);
	return strncmp(ev->name, prefix, n) == 0 ? ev->name + n : ev->name;
}

#define STATE_NAME(v)	api_name(&rtpproxy__session_state__descriptor, \
			    "SESSION_STATE_", (int)(v))
#define EVENT_NAME(v)	api_name(&rtpproxy__event_type__descriptor, \
			    "EVENT_TYPE_", (int)(v))

/* The policies' words are the configuration's; 0 is the API's default. */
static const char *
rs_name(int v)
{
	if (v == RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_DEFAULT)
		return "default";
	return show_name(v > 0 && v - 1 <= CONF_RS_ADDRESS_PORT ?
	    config_rs_name(v - 1) : NULL, v);
}

static const char *
latch_name(int v)
{
	if (v == RTPPROXY__LATCH_POLICY__LATCH_POLICY_DEFAULT)
		return "default";
	return show_name(v > 0 && v < SHM_LATCH_N ? shm_latch_name(v) : NULL,
	    v);
}

const char *
show_state(int v)
{
	return STATE_NAME(v);
}

static void
json_endpoint(struct json *j, const char *key, const Rtpproxy__Endpoint *e)
{
	if (e == NULL)
		return;
	json_open(j, key, '{');
	json_str(j, "address", e->address);
	json_u64(j, "port", e->port);
	json_close(j, '}');
}

/*
 * The counters of shm.h's list, as rtpproxy.DirectionStats holds them.  The
 * output keeps the order users know; the reasons to drop come in the
 * list's order, and a counter added to the list later comes out after
 * the others.
 */
#define CTR_OFF_(f, kind, proto, metric, label, help)			\
	[SHM_C_##f] = offsetof(Rtpproxy__DirectionStats, proto),
static const size_t ctr_off[SHM_C_N] = { SHM_DIR_COUNTERS(CTR_OFF_) };
#define CTR_KEY_(f, kind, proto, metric, label, help)			\
	[SHM_C_##f] = #proto,
static const char *const ctr_key[SHM_C_N] = { SHM_DIR_COUNTERS(CTR_KEY_) };

#define CTR_ALL		(-1)	/* a kind: every counter not yet shown */

static uint64_t
ctr(const Rtpproxy__DirectionStats *d, int c)
{
	uint64_t v;

	memcpy(&v, (const char *)d + ctr_off[c], sizeof(v));
	return v;
}

/* Is counter c one of kind, and not shown yet?  Then it is now. */
static int
ctr_next(unsigned char *shown, int c, int kind)
{
	if (shown[c] || (kind != CTR_ALL &&
	    shm_counters[c].kind != (enum shm_counter_kind)kind))
		return 0;
	shown[c] = 1;
	return 1;
}

static void
json_ctrs(struct json *j, const Rtpproxy__DirectionStats *d,
    unsigned char *shown, int kind)
{
	int c;

	for (c = 0; c < SHM_C_N; c++)
		if (ctr_next(shown, c, kind))
			json_u64(j, ctr_key[c], ctr(d, c));
}

static void
json_ctr(struct json *j, const Rtpproxy__DirectionStats *d,
    unsigned char *shown, int c)
{
	shown[c] = 1;
	json_u64(j, ctr_key[c], ctr(d, c));
}

static void
json_dir(struct json *j, const char *key, const Rtpproxy__DirectionStats *d)
{
	unsigned char shown[SHM_C_N] = { 0 };

	if (d == NULL)
		return;
	json_open(j, key, '{');
	json_ctr(j, d, shown, SHM_C_packets_received);
	json_ctr(j, d, shown, SHM_C_packets_sent);
	json_ctr(j, d, shown, SHM_C_bytes_received);
	json_ctr(j, d, shown, SHM_C_bytes_sent);
	json_u64(j, "packets_dropped", d->packets_dropped);
	json_i64(j, "packets_lost", d->packets_lost);
	json_dbl(j, "loss_rate", d->loss_rate);
	json_dbl(j, "jitter_ms", d->jitter_ms);
	json_dbl(j, "avg_latency_ms", d->avg_latency_ms);
	json_dbl(j, "max_latency_ms", d->max_latency_ms);
	json_ctrs(j, d, shown, SHM_CK_DROP);
	json_ctr(j, d, shown, SHM_C_non_rtp);
	json_ctr(j, d, shown, SHM_C_rtcp_received);
	json_ctr(j, d, shown, SHM_C_rtcp_sent);
	json_ctr(j, d, shown, SHM_C_packets_expected);
	json_dbl(j, "rtt_ms", d->rtt_ms);
	json_dbl(j, "rtt_avg_ms", d->rtt_avg_ms);
	json_dbl(j, "rtt_max_ms", d->rtt_max_ms);
	json_u64(j, "rtt_samples", d->rtt_samples);
	json_dbl(j, "reported_loss_rate", d->reported_loss_rate);
	json_i64(j, "reported_packets_lost", d->reported_packets_lost);
	json_dbl(j, "reported_jitter_ms", d->reported_jitter_ms);
	json_u64(j, "rtcp_reports", d->rtcp_reports);
	json_u64(j, "rtcp_sender_reports", d->rtcp_sender_reports);
	json_i64(j, "last_report_ms", d->last_report_ms);
	json_dbl(j, "mos", d->mos);
	json_dbl(j, "r_factor", d->r_factor);
	json_u64(j, "payload_type", d->payload_type);
	json_ctrs(j, d, shown, CTR_ALL);
	json_i64(j, "last_packet_ms", d->last_packet_ms);
	json_u64(j, "ssrc", d->ssrc);
	json_bool(j, "rtp_in_kernel", d->rtp_in_kernel);
	json_bool(j, "rtcp_in_kernel", d->rtcp_in_kernel);
	json_close(j, '}');
}

static void
json_session(struct json *j, const char *key, const Rtpproxy__SessionInfo *s)
{
	if (s == NULL)
		return;
	json_open(j, key, '{');
	json_str(j, "session_id", s->session_id);
	json_str(j, "state", STATE_NAME(s->state));
	json_endpoint(j, "listen", s->listen);
	json_endpoint(j, "forward", s->forward);
	json_endpoint(j, "destination", s->destination);
	json_endpoint(j, "latched", s->latched);
	json_endpoint(j, "latched_rtcp", s->latched_rtcp);
	json_str(j, "transport", s->transport ==
	    RTPPROXY__TRANSPORT__TRANSPORT_TCP ? "TCP" : "UDP");
	json_bool(j, "unidirectional", s->unidirectional);
	json_bool(j, "disable_rtcp", s->disable_rtcp);
	json_i64(j, "created_at_ms", s->created_at_ms);
	json_i64(j, "last_activity_ms", s->last_activity_ms);
	json_u64(j, "idle_timeout_s", s->idle_timeout_s);
	json_u64(j, "stats_interval_ms", s->stats_interval_ms);
	json_u64(j, "clock_rate", s->clock_rate);
	json_str(j, "reverse_source", rs_name((int)s->reverse_source));
	json_u64(j, "rate_limit_pps", s->rate_limit_pps);
	json_u64(j, "rate_limit_bps", s->rate_limit_bps);
	json_str(j, "latch_policy", latch_name((int)s->latch_policy));
	json_u64(j, "relatches", s->relatches);
	json_u64(j, "dtmf_payload_type", s->dtmf_payload_type);
	json_bool(j, "drop_dtmf", s->drop_dtmf);
	json_u64(j, "updates", s->updates);
	if (s->recording != NULL) {
		json_open(j, "recording", '{');
		json_bool(j, "active", s->recording->active);
		json_str(j, "file", s->recording->file);
		json_u64(j, "packets", s->recording->packets);
		json_u64(j, "dropped", s->recording->dropped);
		json_str(j, "error", s->recording->error);
		json_u64(j, "parts", s->recording->parts);
		json_close(j, '}');
	}
	json_u64(j, "worker", s->worker);
	if (s->node != NULL && s->node[0] != '\0')
		json_str(j, "node", s->node);
	json_str(j, "error_message", s->error_message);
	json_dir(j, "forward_stats", s->forward_stats);
	json_dir(j, "reverse_stats", s->reverse_stats);
	json_close(j, '}');
}

/* --- text output -------------------------------------------------------- */

static const char *
ep_str(const Rtpproxy__Endpoint *e, char *buf, size_t len)
{
	if (e == NULL || e->address == NULL || *e->address == '\0')
		snprintf(buf, len, "-");
	else if (strchr(e->address, ':') != NULL)
		snprintf(buf, len, "[%s]:%u", e->address, e->port);
	else
		snprintf(buf, len, "%s:%u", e->address, e->port);
	return buf;
}

static const char *
time_str(int64_t ms, char *buf, size_t len)
{
	struct tm	tm;
	time_t		t;
	char		tmp[32];

	if (ms <= 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	t = (time_t)(ms / 1000);
	localtime_r(&t, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03d", tmp, (int)(ms % 1000));
	return buf;
}

static const char *
age_str(int64_t ms, char *buf, size_t len)
{
	int64_t s;

	if (ms <= 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	s = (now_ms() - ms) / 1000;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%" PRId64 "s", s);
	else if (s < 7200)
		snprintf(buf, len, "%" PRId64 "m", s / 60);
	else
		snprintf(buf, len, "%" PRId64 "h", s / 3600);
	return buf;
}

static const Rtpproxy__DirectionStats zero_dir =
    RTPPROXY__DIRECTION_STATS__INIT;

/* A counter's row, both ways; a reason to drop under "packets dropped". */
static void
row_ctr(const Rtpproxy__DirectionStats *f, const Rtpproxy__DirectionStats *r,
    unsigned char *shown, int c)
{
	shown[c] = 1;
	printf("%s%-*s %16" PRIu64 " %16" PRIu64 "\n",
	    shm_counters[c].kind == SHM_CK_DROP ? "  " : "",
	    shm_counters[c].kind == SHM_CK_DROP ? 20 : 22,
	    shm_counters[c].label, ctr(f, c), ctr(r, c));
}

static void
row_ctrs(const Rtpproxy__DirectionStats *f,
    const Rtpproxy__DirectionStats *r, unsigned char *shown, int kind)
{
	int c;

	for (c = 0; c < SHM_C_N; c++)
		if (ctr_next(shown, c, kind))
			row_ctr(f, r, shown, c);
}


/* Which of a direction's media the kernel fast path relays. */
static const char *
show_kernel(const Rtpproxy__DirectionStats *d)
{
	if (d->rtp_in_kernel && d->rtcp_in_kernel)
		return "RTP, RTCP";
	if (d->rtp_in_kernel)
		return "RTP";
	if (d->rtcp_in_kernel)
		return "RTCP";
	return "no";
}

static void
print_session(const Rtpproxy__SessionInfo *s, int stats)
{
	const Rtpproxy__DirectionStats	*f, *r;
	unsigned char			 shown[SHM_C_N] = { 0 };
	char				 a[96], t[48];

	f = s->forward_stats != NULL ? s->forward_stats : &zero_dir;
	r = s->reverse_stats != NULL ? s->reverse_stats : &zero_dir;
	printf("%-14s %s\n", "session", s->session_id);
	printf("%-14s %s\n", "state", STATE_NAME(s->state));
	if (s->error_message != NULL && *s->error_message != '\0')
		printf("%-14s %s\n", "error", s->error_message);
	printf("%-14s %s%s%s\n", "transport", s->transport ==
	    RTPPROXY__TRANSPORT__TRANSPORT_TCP ? "TCP" : "UDP",
	    s->unidirectional ? ", unidirectional" : "",
	    s->disable_rtcp ? ", no RTCP" : "");
	printf("%-14s %s\n", "listen", ep_str(s->listen, a, sizeof(a)));
	printf("%-14s %s\n", "forward", ep_str(s->forward, a, sizeof(a)));
	printf("%-14s %s\n", "destination", ep_str(s->destination, a,
	    sizeof(a)));
	printf("%-14s %s\n", "latched", ep_str(s->latched, a, sizeof(a)));
	if (s->latched_rtcp != NULL)
		printf("%-14s %s\n", "latched RTCP", ep_str(s->latched_rtcp,
		    a, sizeof(a)));
	printf("%-14s %u\n", "worker", s->worker);
	if (s->node != NULL && s->node[0] != '\0')
		printf("%-14s %s\n", "node", s->node);
	printf("%-14s %s\n", "created", time_str(s->created_at_ms, t,
	    sizeof(t)));
	printf("%-14s %s\n", "last activity", time_str(s->last_activity_ms,
	    t, sizeof(t)));
	printf("%-14s %u s\n", "idle timeout", s->idle_timeout_s);
	if (s->stats_interval_ms > 0)
		printf("%-14s %u ms\n", "stats every", s->stats_interval_ms);
	if (s->clock_rate > 0)
		printf("%-14s %u Hz\n", "clock rate", s->clock_rate);
	if (s->dtmf_payload_type > 0)
		printf("%-14s payload type %u%s\n", "DTMF",
		    s->dtmf_payload_type, s->drop_dtmf ? ", dropped" : "");
	printf("%-14s %s\n", "reverse from",
	    rs_name((int)s->reverse_source));
	if (s->transport != RTPPROXY__TRANSPORT__TRANSPORT_TCP)
		printf("%-14s %s, %u moves\n", "latch policy",
		    latch_name((int)s->latch_policy),
		    s->relatches);
	if (s->rate_limit_pps > 0 || s->rate_limit_bps > 0) {
		printf("%-14s", "rate limit");
		if (s->rate_limit_pps > 0)
			printf(" %u packets/s", s->rate_limit_pps);
		if (s->rate_limit_bps > 0)
			printf(" %" PRIu64 " bits/s", s->rate_limit_bps);
		printf(" per direction\n");
	}
	if (s->updates > 0)
		printf("%-14s %u\n", "updates", s->updates);
	if (s->recording != NULL) {
		printf("%-14s %s %s, %" PRIu64 " packets, %" PRIu64
		    " dropped, %u part%s", "recording", s->recording->active ?
		    "to" : "was", s->recording->file, s->recording->packets,
		    s->recording->dropped, s->recording->parts,
		    s->recording->parts == 1 ? "" : "s");
		if (s->recording->error != NULL && *s->recording->error != '\0')
			printf(" (%s)", s->recording->error);
		printf("\n");
	}
	if (!stats)
		return;
	printf("\n%-22s %16s %16s\n", "", "forward", "reverse");
#define ROW_D(label, field) \
	printf("%-22s %16.3f %16.3f\n", label, f->field, r->field)
	row_ctr(f, r, shown, SHM_C_packets_received);
	row_ctr(f, r, shown, SHM_C_packets_sent);
	row_ctr(f, r, shown, SHM_C_bytes_received);
	row_ctr(f, r, shown, SHM_C_bytes_sent);
	printf("%-22s %16" PRIu64 " %16" PRIu64 "\n", "packets dropped",
	    f->packets_dropped, r->packets_dropped);
	row_ctrs(f, r, shown, SHM_CK_DROP);
	printf("%-22s %16" PRId64 " %16" PRId64 "\n", "packets lost",
	    f->packets_lost, r->packets_lost);
	row_ctr(f, r, shown, SHM_C_packets_expected);
	printf("%-22s %15.2f%% %15.2f%%\n", "loss rate",
	    f->loss_rate * 100.0, r->loss_rate * 100.0);
	ROW_D("jitter ms", jitter_ms);
	ROW_D("latency avg ms", avg_latency_ms);
	ROW_D("latency max ms", max_latency_ms);
	row_ctr(f, r, shown, SHM_C_rtcp_received);
	row_ctr(f, r, shown, SHM_C_rtcp_sent);
	row_ctr(f, r, shown, SHM_C_rtcp_malformed);
	/* What RTCP's receiver reports say of each direction's media. */
	printf("%-22s %16" PRIu64 " %16" PRIu64 "\n", "RTCP reports",
	    f->rtcp_reports, r->rtcp_reports);
	ROW_D("RTT ms", rtt_ms);
	ROW_D("RTT avg ms", rtt_avg_ms);
	ROW_D("RTT max ms", rtt_max_ms);
	printf("%-22s %15.2f%% %15.2f%%\n", "reported loss",
	    f->reported_loss_rate * 100.0, r->reported_loss_rate * 100.0);
	printf("%-22s %16" PRId64 " %16" PRId64 "\n", "reported lost",
	    f->reported_packets_lost, r->reported_packets_lost);
	ROW_D("reported jitter ms", reported_jitter_ms);
	printf("%-22s %16.2f %16.2f\n", "MOS (E-model)", f->mos, r->mos);
	printf("%-22s %16.1f %16.1f\n", "R factor", f->r_factor,
	    r->r_factor);
	row_ctr(f, r, shown, SHM_C_non_rtp);
	row_ctrs(f, r, shown, CTR_ALL);
	printf("%-22s %16s", "last packet", time_str(f->last_packet_ms, t,
	    sizeof(t)));
	printf(" %16s\n", time_str(r->last_packet_ms, t, sizeof(t)));
	printf("%-22s       0x%08x       0x%08x\n", "SSRC", f->ssrc, r->ssrc);
	printf("%-22s %16s %16s\n", "in the kernel", show_kernel(f),
	    show_kernel(r));
#undef ROW_D
}

/* A session as text (with its statistics when stats) or as JSON. */
void
show_session(const Rtpproxy__SessionInfo *s, int stats, int json)
{
	struct json j = { stdout, 0, { 0 } };

	if (s == NULL)
		return;
	if (json)
		json_session(&j, NULL, s);
	else
		print_session(s, stats);
}

static void
print_list(Rtpproxy__ListSessionsResponse **pages, size_t npages)
{
	const Rtpproxy__SessionInfo	*s;
	const Rtpproxy__DirectionStats	*f, *r;
	char				 l[96], fw[96], d[96], age[16];
	size_t				 p, i;
	int				 wid = 2, wl = 6, wf = 7, wd = 11, n;
	int				 wn = 0;	/* NODE, with redis */

	for (p = 0; p < npages; p++)
		for (i = 0; i < pages[p]->n_sessions; i++) {
			s = pages[p]->sessions[i];
			if ((n = (int)strlen(s->session_id)) > wid)
				wid = n;
			if (s->node != NULL && (n = (int)strlen(s->node)) > wn)
				wn = n < 4 ? 4 : n;
			if ((n = (int)strlen(ep_str(s->listen, l,
			    sizeof(l)))) > wl)
				wl = n;
			if ((n = (int)strlen(ep_str(s->forward, l,
			    sizeof(l)))) > wf)
				wf = n;
			if ((n = (int)strlen(ep_str(s->destination, l,
			    sizeof(l)))) > wd)
				wd = n;
		}
	printf("%-*s  %-10s  %-*s  %-*s  %-*s  %10s  %10s  %5s", wid, "ID",
	    "STATE", wl, "LISTEN", wf, "FORWARD", wd, "DESTINATION",
	    "PKTS-FWD", "PKTS-REV", "AGE");
	if (wn > 0)
		printf("  %s", "NODE");
	printf("\n");
	for (p = 0; p < npages; p++)
		for (i = 0; i < pages[p]->n_sessions; i++) {
			s = pages[p]->sessions[i];
			f = s->forward_stats ? s->forward_stats : &zero_dir;
			r = s->reverse_stats ? s->reverse_stats : &zero_dir;
			printf("%-*s  %-10s  %-*s  %-*s  %-*s  %10" PRIu64
			    "  %10" PRIu64 "  %5s", wid, s->session_id,
			    STATE_NAME(s->state),
			    wl, ep_str(s->listen, l, sizeof(l)),
			    wf, ep_str(s->forward, fw, sizeof(fw)),
			    wd, ep_str(s->destination, d, sizeof(d)),
			    f->packets_received, r->packets_received,
			    age_str(s->created_at_ms, age, sizeof(age)));
			if (wn > 0)
				printf("  %s", s->node != NULL ? s->node : "");
			printf("\n");
		}
}

/* The sessions of the pages, and the token of the next page, if any. */
void
show_list(Rtpproxy__ListSessionsResponse **pages, size_t npages, int json)
{
	struct json	 j = { stdout, 0, { 0 } };
	const char	*token = pages[npages - 1]->next_page_token;
	size_t		 p, i;

	if (json) {
		json_open(&j, NULL, '{');
		json_open(&j, "sessions", '[');
		for (p = 0; p < npages; p++)
			for (i = 0; i < pages[p]->n_sessions; i++)
				json_session(&j, NULL, pages[p]->sessions[i]);
		json_close(&j, ']');
		json_str(&j, "next_page_token", token);
		json_close(&j, '}');
	} else {
		print_list(pages, npages);
		if (*token != '\0')
			printf("next page: -p %s\n", token);
	}
}

void
show_event(const Rtpproxy__SessionEvent *e, int json)
{
	struct json		 j = { stdout, 0, { 0 } };
	const Rtpproxy__DirectionStats *f, *r;
	char			 t[48], a[96];

	if (json) {
		json_open(&j, NULL, '{');
		json_str(&j, "type", EVENT_NAME(e->type));
		json_str(&j, "session_id", e->session_id);
		json_i64(&j, "timestamp_ms", e->timestamp_ms);
		json_str(&j, "state", STATE_NAME(e->state));
		json_str(&j, "previous_state", STATE_NAME(e->previous_state));
		json_str(&j, "reason", e->reason);
		json_u64(&j, "events_missed", e->events_missed);
		json_endpoint(&j, "address", e->address);
		json_endpoint(&j, "previous_address", e->previous_address);
		json_bool(&j, "rtcp", e->rtcp);
		if (e->dtmf != NULL) {
			json_open(&j, "dtmf", '{');
			json_str(&j, "digit", e->dtmf->digit);
			json_u64(&j, "event", e->dtmf->event);
			json_u64(&j, "duration_ms", e->dtmf->duration_ms);
			json_u64(&j, "volume", e->dtmf->volume);
			json_str(&j, "direction", e->dtmf->direction);
			json_i64(&j, "start_ms", e->dtmf->start_ms);
			json_u64(&j, "rtp_timestamp", e->dtmf->rtp_timestamp);
			json_u64(&j, "ssrc", e->dtmf->ssrc);
			json_bool(&j, "end_seen", e->dtmf->end_seen);
			json_close(&j, '}');
		}
		if (e->n_changed > 0) {
			size_t k;

			json_open(&j, "changed", '[');
			for (k = 0; k < e->n_changed; k++)
				json_str(&j, NULL, e->changed[k]);
			json_close(&j, ']');
		}
		json_session(&j, "session", e->session);
		json_close(&j, '}');
		fflush(stdout);
		return;
	}
	printf("%s %-13s %s %s", time_str(e->timestamp_ms, t, sizeof(t)),
	    EVENT_NAME(e->type), e->session_id, STATE_NAME(e->state));
	if (e->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_STATE_CHANGED)
		printf(" (was %s)", STATE_NAME(e->previous_state));
	if (e->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_STATS_UPDATE &&
	    e->session != NULL) {
		f = e->session->forward_stats ? e->session->forward_stats :
		    &zero_dir;
		r = e->session->reverse_stats ? e->session->reverse_stats :
		    &zero_dir;
		printf(" fwd %" PRIu64 " pkts %" PRId64 " lost %.2f ms jitter;"
		    " rev %" PRIu64 " pkts %" PRId64 " lost %.2f ms jitter",
		    f->packets_received, f->packets_lost, f->jitter_ms,
		    r->packets_received, r->packets_lost, r->jitter_ms);
	}
	if (e->dtmf != NULL)
		printf(" %s digit %s, %u ms, -%u dBm0, started %s%s",
		    e->dtmf->direction, e->dtmf->digit,
		    e->dtmf->duration_ms, e->dtmf->volume,
		    time_str(e->dtmf->start_ms, t, sizeof(t)),
		    e->dtmf->end_seen ? "" : " (its end was lost)");
	if (e->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_STATS_UPDATE &&
	    e->session != NULL) {
		f = e->session->forward_stats ? e->session->forward_stats :
		    &zero_dir;
		r = e->session->reverse_stats ? e->session->reverse_stats :
		    &zero_dir;
		if (f->mos > 0.0 || r->mos > 0.0)
			printf("; MOS %.2f/%.2f RTT %.1f/%.1f ms", f->mos,
			    r->mos, f->rtt_ms, r->rtt_ms);
	}
	if (e->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_RELATCHED) {
		printf(" %s from %s", e->rtcp ? "RTCP" : "RTP",
		    ep_str(e->previous_address, a, sizeof(a)));
		printf(" to %s", ep_str(e->address, a, sizeof(a)));
	}
	if (e->reason != NULL && *e->reason != '\0')
		printf(": %s", e->reason);
	if (e->events_missed > 0)
		printf(" [%" PRIu64 " events missed]", e->events_missed);
	printf("\n");
	fflush(stdout);
}
