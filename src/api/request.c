/*
 * The API's requests, decoded and checked, with no gRPC in it: the
 * service hands the bytes of a message here and gets a message whose
 * strings are valid UTF-8 without NULs, or an error to send back.  Kept
 * apart so that the fuzzers can feed it without a server.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "sessions.h"
#include "grpcsvc.h"
#include "rtpproxy.pb-c.h"

/* Copy at most max bytes of UTF-8 without cutting a character in two. */
static void
req_quote(char *dst, size_t dstlen, const char *src, size_t max)
{
	size_t len = strlen(src), n = len;

	if (n > max)
		n = max;
	if (n >= dstlen)
		n = dstlen - 1;
	if (n < len)
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * protobuf-c does not look inside strings: walk the wire bytes with the
 * descriptor and check every string field, however deeply nested, for
 * valid UTF-8 and for a NUL (which would silently cut the C string short).
 * 0, or -1 with the field's path in err.
 */
int
request_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *data,
    size_t len, const char *prefix, int depth, struct rp_error *err)
{
	const ProtobufCFieldDescriptor	*f;
	struct refl_wire		 r = { data, data + len };
	const uint8_t			*val;
	size_t				 vlen;
	uint32_t			 num;
	char				 path[128];
	int				 rc, wt;

	if (depth > 16) {
		rp_err(err, RP_INVALID_ARGUMENT, REQUEST_MALFORMED);
		return -1;
	}
	while ((rc = reflection_wire_next(&r, &num, &wt, &val, &vlen)) == 1) {
		if (wt != 2 ||
		    (f = protobuf_c_message_descriptor_get_field(d, num)) ==
		    NULL)
			continue;
		snprintf(path, sizeof(path), "%s%s%s", prefix,
		    *prefix ? "." : "", f->name);
		if (f->type == PROTOBUF_C_TYPE_STRING) {
			if (!utf8_valid((const char *)val, vlen)) {
				rp_err(err, RP_INVALID_ARGUMENT,
				    "%s is not valid UTF-8", path);
				return -1;
			}
			if (memchr(val, '\0', vlen) != NULL) {
				rp_err(err, RP_INVALID_ARGUMENT,
				    "%s contains a NUL character", path);
				return -1;
			}
		} else if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
		    request_check_strings(f->descriptor, val, vlen, path,
		    depth + 1, err) == -1)
			return -1;
	}
	if (rc == -1) {
		rp_err(err, RP_INVALID_ARGUMENT, REQUEST_MALFORMED);
		return -1;
	}
	return 0;
}

static int
req_id_char(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' ||
	    ch == '@' || ch == '+' || ch == '-';
}

int
request_check_id(const char *id, int empty_ok, struct rp_error *err)
{
	size_t len = strlen(id), i;

	if (!utf8_valid(id, len)) {
		rp_err(err, RP_INVALID_ARGUMENT,
		    "session_id is not valid UTF-8");
		return -1;
	}
	if (len == 0 && empty_ok)
		return 0;
	if (len == 0) {
		rp_err(err, RP_INVALID_ARGUMENT, "session_id is required");
		return -1;
	}
	for (i = 0; i < len; i++)
		if (!req_id_char((unsigned char)id[i]))
			break;
	if (len >= SHM_ID_MAX || i < len) {
		rp_err(err, RP_INVALID_ARGUMENT, "session_id must be 1 to %d "
		    "characters of A-Z a-z 0-9 . _ : @ + -", SHM_ID_MAX - 1);
		return -1;
	}
	return 0;
}

/*
 * An Endpoint into a sockaddr.  An absent or empty address leaves family 0
 * (and is an error if required).  0 or -1.
 */
static int
req_endpoint(const Rtpproxy__Endpoint *e, const char *name, int need_addr,
    int need_port, struct sockaddr_storage *ss, struct rp_error *err)
{
	const char	*addr = e != NULL ? e->address : "";
	uint32_t	 port = e != NULL ? e->port : 0;
	char		 q[80];

	memset(ss, 0, sizeof(*ss));
	if (!utf8_valid(addr, strlen(addr))) {
		rp_err(err, RP_INVALID_ARGUMENT, "%s.address is not valid "
		    "UTF-8", name);
		return -1;
	}
	if (port > 65535) {
		rp_err(err, RP_INVALID_ARGUMENT,
		    "%s.port %u is out of range (0-65535)", name, port);
		return -1;
	}
	if (*addr == '\0') {
		if (need_addr) {
			rp_err(err, RP_INVALID_ARGUMENT,
			    "%s.address is required", name);
			return -1;
		}
	} else if (parse_ip(addr, (uint16_t)port, ss, NULL) == -1) {
		req_quote(q, sizeof(q), addr, 64);
		rp_err(err, RP_INVALID_ARGUMENT,
		    "%s.address \"%s\" is not an IPv4 or IPv6 address",
		    name, q);
		return -1;
	}
	if (need_port && port == 0) {
		rp_err(err, RP_INVALID_ARGUMENT,
		    "%s.port is required (1-65535)", name);
		return -1;
	}
	return 0;
}

/*
 * A wildcard address (0.0.0.0, ::, ::ffff:0.0.0.0) is not a place to
 * send media: as a destination the kernel takes it for this host.  No
 * rule opens it.
 */
static int
req_is_wildcard(const struct sockaddr_storage *ss)
{
	const struct in6_addr *a6;

	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6) {
		a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		return IN6_IS_ADDR_UNSPECIFIED(a6) ||
		    (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 0 &&
		    a6->s6_addr[13] == 0 && a6->s6_addr[14] == 0 &&
		    a6->s6_addr[15] == 0);
	}
	return 0;
}

int
request_create_params(const Rtpproxy__CreateSessionRequest *req,
    struct session_params *p, struct rp_error *err)
{
	memset(p, 0, sizeof(*p));
	if (request_check_id(req->session_id, 1, err) == -1)
		return -1;
	snprintf(p->id, sizeof(p->id), "%s", req->session_id);
	if (req_endpoint(req->listen, "listen", 1, 0, &p->listen, err) == -1 ||
	    req_endpoint(req->destination, "destination", 1, 1, &p->dest,
	    err) == -1 ||
	    req_endpoint(req->forward, "forward", 0, 0, &p->forward, err) == -1)
		return -1;
	if (req_is_wildcard(&p->dest)) {
		rp_err(err, RP_INVALID_ARGUMENT,
		    "destination.address must not be a wildcard address: it "
		    "means this host, not a place to send media to");
		return -1;
	}
	/* A port without an address: the wildcard of the destination's. */
	if (p->forward.ss_family == 0 && req->forward != NULL &&
	    req->forward->port != 0) {
		p->forward.ss_family = p->dest.ss_family;
		if (p->dest.ss_family == AF_INET)
			((struct sockaddr_in *)&p->forward)->sin_port =
			    htons((uint16_t)req->forward->port);
		else
			((struct sockaddr_in6 *)&p->forward)->sin6_port =
			    htons((uint16_t)req->forward->port);
	}
	if (p->listen.ss_family != p->dest.ss_family ||
	    (p->forward.ss_family != 0 &&
	    p->forward.ss_family != p->dest.ss_family)) {
		rp_err(err, RP_INVALID_ARGUMENT,
		    "listen, forward and destination mix IPv4 and IPv6");
		return -1;
	}
	switch (req->transport) {
	case RTPPROXY__TRANSPORT__TRANSPORT_UDP:
		break;
	case RTPPROXY__TRANSPORT__TRANSPORT_TCP:
		p->tcp = 1;
		break;
	default:
		rp_err(err, RP_INVALID_ARGUMENT, "transport %d is not a known "
		    "Transport (0 UDP, 1 TCP)", (int)req->transport);
		return -1;
	}
	p->unidirectional = req->unidirectional ? 1 : 0;
	p->record = req->record ? 1 : 0;
	p->disable_rtcp = req->disable_rtcp ? 1 : 0;
	p->idle_timeout_s = req->idle_timeout_s;
	p->stats_interval_ms = req->stats_interval_ms;
	p->clock_rate = req->clock_rate;
	p->dtmf_pt = req->dtmf_payload_type;
	p->drop_dtmf = req->drop_dtmf ? 1 : 0;
	switch (req->reverse_source) {
	case RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_DEFAULT:
		p->reverse_source = -1;
		break;
	case RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ANY:
		p->reverse_source = CONF_RS_ANY;
		break;
	case RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ADDRESS:
		p->reverse_source = CONF_RS_ADDRESS;
		break;
	case RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ADDRESS_PORT:
		p->reverse_source = CONF_RS_ADDRESS_PORT;
		break;
	default:
		rp_err(err, RP_INVALID_ARGUMENT, "reverse_source %d is not a "
		    "known ReverseSource (0 DEFAULT, 1 ANY, 2 ADDRESS, "
		    "3 ADDRESS_PORT)", (int)req->reverse_source);
		return -1;
	}
	p->rate_pps = req->rate_limit_pps;
	p->rate_bps = req->rate_limit_bps;
	switch (req->latch_policy) {
	case RTPPROXY__LATCH_POLICY__LATCH_POLICY_DEFAULT:
		p->latch_policy = 0;
		break;
	case RTPPROXY__LATCH_POLICY__LATCH_POLICY_LEARN:
		p->latch_policy = SHM_LATCH_LEARN;
		break;
	case RTPPROXY__LATCH_POLICY__LATCH_POLICY_NEVER:
		p->latch_policy = SHM_LATCH_NEVER;
		break;
	case RTPPROXY__LATCH_POLICY__LATCH_POLICY_LATEST:
		p->latch_policy = SHM_LATCH_LATEST;
		break;
	default:
		rp_err(err, RP_INVALID_ARGUMENT, "latch_policy %d is not a "
		    "known LatchPolicy (0 DEFAULT, 1 LEARN, 2 NEVER, 3 LATEST)",
		    (int)req->latch_policy);
		return -1;
	}
	return 0;
}


/* UpdateSession's request: only what it sets is to change. */
int
request_update_params(const Rtpproxy__UpdateSessionRequest *req,
    struct session_update *u, struct rp_error *err)
{
	memset(u, 0, sizeof(*u));
	if (request_check_id(req->session_id, 0, err) == -1)
		return -1;
	snprintf(u->id, sizeof(u->id), "%s", req->session_id);
	if (req->destination != NULL) {
		if (req_endpoint(req->destination, "destination", 1, 1,
		    &u->dest, err) == -1)
			return -1;
		if (req_is_wildcard(&u->dest))
			return rp_err(err, RP_INVALID_ARGUMENT,
			    "destination.address must not be a wildcard "
			    "address: it means this host, not a place to send "
			    "media to");
		u->has_dest = 1;
	}
	switch (req->direction) {
	case RTPPROXY__UPDATE_DIRECTION__UPDATE_DIRECTION_UNCHANGED:
		u->unidirectional = -1;
		break;
	case RTPPROXY__UPDATE_DIRECTION__UPDATE_DIRECTION_BOTH:
		u->unidirectional = 0;
		break;
	case RTPPROXY__UPDATE_DIRECTION__UPDATE_DIRECTION_FORWARD_ONLY:
		u->unidirectional = 1;
		break;
	default:
		return rp_err(err, RP_INVALID_ARGUMENT, "direction %d is not a "
		    "known UpdateDirection (0 UNCHANGED, 1 BOTH, "
		    "2 FORWARD_ONLY)", (int)req->direction);
	}
	if (req->rate_limit != NULL) {
		u->has_rate = 1;
		u->rate_pps = req->rate_limit->pps;
		u->rate_bps = req->rate_limit->bps;
	}
	u->idle_timeout_s = req->idle_timeout_s;
	u->stats_interval_ms = req->stats_interval_ms;
	switch (req->reverse_source) {
	case RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_DEFAULT:
		u->reverse_source = -1;
		break;
	case RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ANY:
		u->reverse_source = CONF_RS_ANY;
		break;
	case RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ADDRESS:
		u->reverse_source = CONF_RS_ADDRESS;
		break;
	case RTPPROXY__REVERSE_SOURCE__REVERSE_SOURCE_ADDRESS_PORT:
		u->reverse_source = CONF_RS_ADDRESS_PORT;
		break;
	default:
		return rp_err(err, RP_INVALID_ARGUMENT, "reverse_source %d is "
		    "not a known ReverseSource (0 UNCHANGED, 1 ANY, 2 ADDRESS, "
		    "3 ADDRESS_PORT)", (int)req->reverse_source);
	}
	if ((int)req->latch_policy < 0 ||
	    (int)req->latch_policy > SHM_LATCH_LATEST)
		return rp_err(err, RP_INVALID_ARGUMENT, "latch_policy %d is not "
		    "a known LatchPolicy (0 UNCHANGED, 1 LEARN, 2 NEVER, "
		    "3 LATEST)", (int)req->latch_policy);
	u->latch_policy = (int)req->latch_policy;
	switch (req->recording) {
	case RTPPROXY__UPDATE_RECORDING__UPDATE_RECORDING_UNCHANGED:
		u->record = -1;
		break;
	case RTPPROXY__UPDATE_RECORDING__UPDATE_RECORDING_START:
		u->record = 1;
		break;
	case RTPPROXY__UPDATE_RECORDING__UPDATE_RECORDING_STOP:
		u->record = 0;
		break;
	default:
		return rp_err(err, RP_INVALID_ARGUMENT, "recording %d is not a "
		    "known UpdateRecording (0 UNCHANGED, 1 START, 2 STOP)",
		    (int)req->recording);
	}
	return 0;
}


/*
 * A message of type d from its wire bytes, its strings checked: NULL
 * with err set when it does not decode or a string is not valid UTF-8
 * (free the result with protobuf_c_message_free_unpacked).
 */
ProtobufCMessage *
request_decode(const ProtobufCMessageDescriptor *d, const uint8_t *p,
    size_t len, struct rp_error *err)
{
	ProtobufCMessage *m;

	if ((m = protobuf_c_message_unpack(d, NULL, len, p)) == NULL)
		rp_err(err, RP_INVALID_ARGUMENT, REQUEST_MALFORMED);
	else if (request_check_strings(d, p, len, "", 0, err) == -1) {
		protobuf_c_message_free_unpacked(m, NULL);
		m = NULL;
	}
	return m;
}

/*
 * Page tokens: the slot where the next page starts and the state filter,
 * with a MAC keyed per process, in base64url.  Slots are stable, so a
 * session that exists for the whole listing is seen exactly once however
 * others come and go.  They come back from the client: anything but a
 * token this process made is refused.
 */
#define REQ_TOKEN_VERSION	1
#define REQ_TOKEN_LEN		10	/* version, slot, state, mac */

static const char req_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static uint32_t
req_token_mac(const uint8_t *key, const uint8_t *p, size_t n)
{
	uint64_t	h = 0xcbf29ce484222325ULL;
	size_t		i;

	for (i = 0; i < REQUEST_TOKEN_KEYLEN; i++) {
		h ^= key[i];
		h *= 0x100000001b3ULL;
	}
	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return (uint32_t)h;
}

void
request_token_make(const uint8_t *key, uint32_t slot, uint32_t state,
    char *out, size_t outlen)
{
	uint8_t		b[REQ_TOKEN_LEN];
	uint32_t	mac, acc = 0;
	size_t		i, o = 0;
	int		bits = 0;

	b[0] = REQ_TOKEN_VERSION;
	b[1] = slot & 0xff;
	b[2] = (slot >> 8) & 0xff;
	b[3] = (slot >> 16) & 0xff;
	b[4] = (slot >> 24) & 0xff;
	b[5] = (uint8_t)state;
	mac = req_token_mac(key, b, 6);
	b[6] = mac & 0xff;
	b[7] = (mac >> 8) & 0xff;
	b[8] = (mac >> 16) & 0xff;
	b[9] = (mac >> 24) & 0xff;
	for (i = 0; i < sizeof(b); i++) {
		acc = (acc << 8) | b[i];
		bits += 8;
		while (bits >= 6 && o + 1 < outlen) {
			bits -= 6;
			out[o++] = req_b64[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0 && o + 1 < outlen)
		out[o++] = req_b64[(acc << (6 - bits)) & 0x3f];
	out[o] = '\0';
}

int
request_token_parse(const uint8_t *key, const char *tok, uint32_t *slot,
    uint32_t *state)
{
	uint8_t		 b[REQ_TOKEN_LEN];
	uint32_t	 acc = 0, mac;
	size_t		 n = 0;
	int		 bits = 0;
	const char	*p, *q;

	if (strlen(tok) != (REQ_TOKEN_LEN * 8 + 5) / 6)
		return -1;
	for (p = tok; *p != '\0'; p++) {
		if ((q = strchr(req_b64, *p)) == NULL)
			return -1;
		acc = (acc << 6) | (uint32_t)(q - req_b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == sizeof(b))
				return -1;
			b[n++] = (acc >> bits) & 0xff;
		}
	}
	if (n != sizeof(b) || (acc & ((1u << bits) - 1)) != 0 ||
	    b[0] != REQ_TOKEN_VERSION)
		return -1;
	mac = (uint32_t)b[6] | (uint32_t)b[7] << 8 | (uint32_t)b[8] << 16 |
	    (uint32_t)b[9] << 24;
	if (mac != req_token_mac(key, b, 6))
		return -1;
	*slot = (uint32_t)b[1] | (uint32_t)b[2] << 8 | (uint32_t)b[3] << 16 |
	    (uint32_t)b[4] << 24;
	*state = b[5];
	return 0;
}
