/*
 * Where media may go: the destination rules.  A rule is a prefix with an
 * action; the longest prefix that matches an address decides, a
 * configured rule wins over a built-in one of the same length, and deny
 * wins over allow.  An address no rule matches is allowed.  Built in are
 * denies for the addresses a public relay must never send to (loopback,
 * unspecified, multicast, broadcast, link-local, reserved); an operator
 * opens one with an allow of at least the same length, and builds a
 * strict allow-list with "deny-destination 0.0.0.0/0 ::/0" and allows.
 *
 * Apart from the rules, whatever they say, this daemon's own sockets on
 * this host are refused, as destinations and as senders (acl_own_socket,
 * from the table's map of the UDP ports that sessions hold), and for a
 * TCP destination its whole media range and its API and metrics ports:
 * relaying to itself is a loop that amplifies.  An IPv6 address that
 * embeds an IPv4 address is judged by the address it embeds.
 *
 * The master publishes rules, the host's addresses and the own ports into
 * the shared table; the master checks destinations against them and the
 * workers check the senders they latch on to.  Everything here is a pure
 * function of its arguments but acl_build, which asks the kernel for
 * the host's addresses.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "conf.h"

struct acl_builtin {
	const char	*prefix;
	const char	*what;
};

/* origin of a rule = its index here + 1 */
static const struct acl_builtin acl_builtins[] = {
	{ "0.0.0.0/8", "an unspecified (\"this network\") address" },
	{ "127.0.0.0/8", "a loopback address" },
	{ "169.254.0.0/16", "a link-local address" },
	{ "224.0.0.0/4", "a multicast address" },
	{ "240.0.0.0/4", "a reserved address" },
	{ "255.255.255.255/32", "the broadcast address" },
	{ "::/128", "the unspecified address" },
	{ "::1/128", "the loopback address" },
	{ "fe80::/10", "a link-local address" },
	{ "ff00::/8", "a multicast address" },
};
#define ACL_NBUILTIN	(sizeof(acl_builtins) / sizeof(acl_builtins[0]))
#define ACL_IFBCAST	(ACL_NBUILTIN + 1)	/* an interface's broadcast */

/*
 * "ADDR/LEN" or a bare address (a host rule).  Host bits must be clear:
 * 10.1.2.3/8 is more likely a typo than a wish.  0, or -1 with why.
 */
int
acl_parse(const char *s, struct shm_acl_rule *r, char *why, size_t len)
{
	struct sockaddr_storage	 ss;
	char			 buf[INET6_ADDRSTRLEN + 8];
	const uint8_t		*a;
	char			*slash;
	uint32_t		 plen, max;
	int			 i;

	memset(r, 0, sizeof(*r));
	if (strlen(s) >= sizeof(buf) || strchr(s, '%') != NULL) {
		snprintf(why, len, "\"%s\" is not an address or prefix", s);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (parse_ip(buf, 0, &ss, NULL) == -1) {
		snprintf(why, len, "\"%s\" is not an IPv4 or IPv6 address",
		    buf);
		return -1;
	}
	r->family = (uint8_t)ss.ss_family;
	if (ss.ss_family == AF_INET) {
		a = (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr;
		memcpy(r->addr, a, 4);
		max = 32;
	} else {
		a = (const uint8_t *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
		memcpy(r->addr, a, 16);
		max = 128;
	}
	plen = max;
	if (slash != NULL && parse_u32(slash, 0, max, &plen) == -1) {
		snprintf(why, len, "\"%s\": prefix length must be 0..%u", s,
		    max);
		return -1;
	}
	r->plen = (uint8_t)plen;
	for (i = 0; i < (int)max / 8; i++) {
		uint8_t keep = plen >= (uint32_t)(i + 1) * 8 ? 0xff :
		    plen <= (uint32_t)i * 8 ? 0 :
		    (uint8_t)(0xff << (8 - (plen - (uint32_t)i * 8)));

		if (r->addr[i] & ~keep) {
			snprintf(why, len, "\"%s\" has host bits set after "
			    "/%u", s, plen);
			return -1;
		}
	}
	return 0;
}

const char *
acl_rule_str(const struct shm_acl_rule *r, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(r->family, r->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, "%s/%u", a, r->plen);
	return buf;
}

static int
acl_prefix_match(const uint8_t *addr, const struct shm_acl_rule *r)
{
	int full = r->plen / 8, rest = r->plen % 8;

	if (memcmp(addr, r->addr, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((addr[full] ^ r->addr[full]) & (uint8_t)(0xff << (8 - rest)))
	    == 0;
}

/* The family and bytes to check: IPv4-mapped IPv6 counts as IPv4. */
static int
acl_key(const struct sockaddr *sa, uint8_t *addr, uint16_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		memcpy(addr, &sin->sin_addr, 4);
		*port = ntohs(sin->sin_port);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(addr, &sin6->sin6_addr.s6_addr[12], 4);
			return AF_INET;
		}
		memcpy(addr, &sin6->sin6_addr, 16);
		return AF_INET6;
	}
	return -1;
}

/*
 * The IPv4 address that an IPv6 address carries to an IPv4 host, for
 * the kinds of address that do: a translator or a tunnel relay sends the
 * packet on to that IPv4 address, so that is where media would go.  The
 * kind, for a person, or NULL.  A network-specific NAT64 prefix (other
 * than 64:ff9b:1::/48, taken as /96 like the well-known one) is not known
 * here: an operator denies it with a rule.
 */
static const char *
acl_embedded(const uint8_t *a, uint8_t *v4)
{
	static const uint8_t	zero[12];
	static const uint8_t	siit[12] = { [8] = 0xff, [9] = 0xff };
	static const uint8_t	nat64[12] = { 0x00, 0x64, 0xff, 0x9b };
	static const uint8_t	local64[6] = { 0x00, 0x64, 0xff, 0x9b, 0x00,
				    0x01 };
	int			i;

	if (memcmp(a, zero, 12) == 0) {
		/* :: and ::1 are IPv6's own unspecified and loopback. */
		if (a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] <= 1)
			return NULL;
		memcpy(v4, a + 12, 4);
		return "IPv4-compatible, RFC 4291";
	}
	if (memcmp(a, siit, 12) == 0) {
		memcpy(v4, a + 12, 4);
		return "IPv4-translated, RFC 2765";
	}
	if (memcmp(a, nat64, 12) == 0) {
		memcpy(v4, a + 12, 4);
		return "NAT64, RFC 6052";
	}
	if (memcmp(a, local64, 6) == 0) {
		memcpy(v4, a + 12, 4);
		return "NAT64 local-use prefix, RFC 8215";
	}
	if (a[0] == 0x20 && a[1] == 0x02) {
		memcpy(v4, a + 2, 4);
		return "6to4, RFC 3056";
	}
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) {
		/* The client's address, each bit inverted. */
		for (i = 0; i < 4; i++)
			v4[i] = (uint8_t)~a[12 + i];
		return "Teredo, RFC 4380";
	}
	return NULL;
}

/* What sa embeds (see acl_embedded), into buf; NULL if nothing. */
static const char *
acl_embedded_sa(const struct sockaddr *sa, char *buf, size_t len)
{
	const struct sockaddr_in6	*sin6 = (const void *)sa;
	const char			*kind;
	uint8_t				 v4[4];

	if (sa->sa_family != AF_INET6 ||
	    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) ||
	    (kind = acl_embedded(sin6->sin6_addr.s6_addr, v4)) == NULL ||
	    inet_ntop(AF_INET, v4, buf, (socklen_t)len) == NULL)
		return NULL;
	return kind;
}

static int
acl_is_local(const struct shm_acl *acl, int family, const uint8_t *addr)
{
	static const uint8_t	v6any[16], v6lo[16] = { [15] = 1 };
	uint32_t		i;

	if (family == AF_INET && (addr[0] == 127 || addr[0] == 0))
		return 1;
	if (family == AF_INET6 && (memcmp(addr, v6any, 16) == 0 ||
	    memcmp(addr, v6lo, 16) == 0))
		return 1;
	for (i = 0; i < acl->nlocal && i < SHM_LOCAL_MAX; i++)
		if (acl->local[i].family == family &&
		    memcmp(acl->local[i].addr, addr, family == AF_INET ? 4 :
		    16) == 0)
			return 1;
	return 0;
}

/*
 * Is port on addr one of ours, for a TCP destination: the media range
 * (where TCP sessions listen) or the API and metrics ports?  A UDP
 * destination is judged by the sockets the sessions hold (acl_local,
 * acl_own_socket), not by the range.
 */
static int
acl_self(const struct shm_acl *acl, int family, const uint8_t *addr,
    uint16_t port, int what)
{
	int	own;
	uint16_t i;

	if (what != ACL_TCP)
		return 0;
	own = acl->port_max != 0 && port >= acl->port_min &&
	    port <= acl->port_max;
	for (i = 0; !own && i < acl->nown && i < SHM_OWN_MAX; i++)
		own = acl->own[i] == port;
	return own && acl_is_local(acl, family, addr);
}

/* The rules' verdict on addr, with *rule the deciding one (or -1). */
static int
acl_rules(const struct shm_acl *acl, int family, const uint8_t *addr,
    int *rule)
{
	const struct shm_acl_rule	*r, *best = NULL;
	uint32_t			 k, n = acl->nrules;

	*rule = -1;
	if (n > SHM_ACL_MAX)
		n = SHM_ACL_MAX;
	for (k = 0; k < n; k++) {
		r = &acl->rules[k];
		if (r->family != family || !acl_prefix_match(addr, r))
			continue;
		if (best == NULL || r->plen > best->plen ||
		    (r->plen == best->plen &&
		    ((r->origin == 0 && best->origin != 0) ||
		    ((r->origin == 0) == (best->origin == 0) &&
		    r->action == SHM_ACL_DENY)))) {
			best = r;
			*rule = (int)k;
		}
	}
	return best == NULL || best->action == SHM_ACL_ALLOW ? ACL_ALLOW :
	    ACL_DENY;
}

/*
 * May media go to (or, for a latch, come from) sa?  what: ACL_UDP,
 * ACL_TCP, ACL_UDP_SRC or ACL_TCP_PEER.  ACL_ALLOW, or ACL_DENY with
 * *rule the deciding rule's index, or ACL_SELF.
 *
 * The own-ports check is for TCP destinations: the media port range and
 * the API and metrics ports.  A UDP destination, and a UDP sender, gets
 * the rules only here: whether it is one of this daemon's own sockets is
 * acl_own_socket's to say.  A TCP caller (its address cannot be forged,
 * its reverse media goes back on its own connection) may well have an
 * ephemeral port in the media range.
 *
 * An IPv6 address that embeds an IPv4 address (acl_embedded) is judged
 * by the IPv4 address, with the IPv4 rules and the own ports; and the
 * IPv6 rules must not refuse it either.
 */
int
acl_check(const struct shm_acl *acl, const struct sockaddr *sa, int what,
    int *rule)
{
	uint8_t		addr[16], v4[4];
	uint16_t	port;
	int		family, verdict;

	*rule = -1;
	if ((family = acl_key(sa, addr, &port)) == -1)
		return ACL_DENY;
	if (acl_self(acl, family, addr, port, what))
		return ACL_SELF;
	if (family == AF_INET6 && acl_embedded(addr, v4) != NULL) {
		if (acl_self(acl, AF_INET, v4, port, what))
			return ACL_SELF;
		if ((verdict = acl_rules(acl, AF_INET, v4, rule)) != ACL_ALLOW)
			return verdict;
	}
	return acl_rules(acl, family, addr, rule);
}

/*
 * Where media sent to sa ends up, when that is this host: sa itself, or
 * the IPv4 address it embeds (as acl_check judges it), with sa's port,
 * into *here.  1 if on this host, else 0.
 */
int
acl_local(const struct shm_acl *acl, const struct sockaddr *sa,
    struct sockaddr_storage *here)
{
	uint8_t		addr[16], v4[4];
	uint16_t	port;
	int		family;

	if ((family = acl_key(sa, addr, &port)) == -1)
		return 0;
	if (family == AF_INET6 && !acl_is_local(acl, family, addr) &&
	    acl_embedded(addr, v4) != NULL) {
		family = AF_INET;
		memcpy(addr, v4, 4);
	}
	if (!acl_is_local(acl, family, addr))
		return 0;
	memset(here, 0, sizeof(*here));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)here;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)here;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr, 16);
	}
	return 1;
}

/* Is a bound to the wildcard address of its family? */
static int
acl_addr_any(const struct shm_addr *a)
{
	static const uint8_t any[16];

	return memcmp(a->addr, any, a->family == AF_INET ? 4 : 16) == 0;
}

/*
 * Is sa one of this daemon's own UDP sockets: a session's listen or
 * forward socket (RTP, or RTCP on the port above), on this host?  Only
 * those are refused as senders, since relaying to one is a loop; a caller
 * on this host whose port lies in the media range is a caller like any
 * other.  The table's port map says which session holds the port, and
 * that session's slot on which address; a port that more than one holds
 * is taken for ours.  For the packet path: a load or two, no lock, no
 * allocation.  A slot being reused meanwhile can give one wrong answer.
 */
int
acl_own_socket(const struct shm_acl *acl, const struct shm_table *t,
    const struct sockaddr *sa)
{
	const struct shm_slot	*s;
	const struct shm_addr	*a;
	uint8_t			 addr[16];
	uint32_t		 o;
	uint16_t		 port;
	int			 family, k, rtcp;

	if (t == NULL || t->ports == NULL ||
	    (family = acl_key(sa, addr, &port)) == -1)
		return 0;
	o = atomic_load_explicit(&t->ports->owner[family == AF_INET6][port],
	    memory_order_relaxed);
	if (o == 0)
		return 0;
	if (o == SHM_PORT_SHARED || o - 1 >= t->nslots)
		return acl_is_local(acl, family, addr);
	s = &t->slots[o - 1];
	rtcp = !(s->flags & SHM_F_NORTCP);
	for (k = 0; k < 2; k++) {
		a = k == 0 ? &s->listen : &s->forward;
		if (a->family != family || (port != a->port &&
		    !(rtcp && port == a->port + 1)))
			continue;
		if (acl_addr_any(a) ? acl_is_local(acl, family, addr) :
		    memcmp(a->addr, addr, family == AF_INET ? 4 : 16) == 0)
			return 1;
	}
	return 0;
}

/*
 * Why sa was refused, for a person: which rule, and how to change it.
 * what is "destination" or "source".
 */
void
acl_explain(const struct shm_acl *acl, const struct config *conf,
    const struct sockaddr *sa, int verdict, int rule, const char *what,
    char *buf, size_t len)
{
	const struct shm_acl_rule	*r;
	const char			*kind;
	char				 a[INET6_ADDRSTRLEN + 8], p[64];
	char				 v4[INET_ADDRSTRLEN], emb[96];

	sa_ntop(sa, a, sizeof(a));
	emb[0] = '\0';
	if ((kind = acl_embedded_sa(sa, v4, sizeof(v4))) != NULL)
		snprintf(emb, sizeof(emb), "it embeds %s (%s)", v4, kind);
	if (verdict == ACL_SELF || verdict == ACL_OWN) {
		snprintf(buf, len, "%s %s is one of this daemon's own %s on "
		    "this host%s%s: refusing a relay loop", what, a,
		    verdict == ACL_OWN ? "sockets" : "ports", *emb ? ": " : "",
		    emb);
		return;
	}
	if (rule < 0 || (uint32_t)rule >= acl->nrules) {
		snprintf(buf, len, "%s %s is refused", what, a);
		return;
	}
	r = &acl->rules[rule];
	acl_rule_str(r, p, sizeof(p));
	/* Only an IPv4 rule decided by what the address embeds. */
	if (r->family != AF_INET)
		emb[0] = '\0';
	if (r->origin == 0)
		snprintf(buf, len, "%s %s is refused by deny-destination %s "
		    "(%s:%u)%s%s", what, a, p,
		    conf != NULL && conf->path != NULL ? conf->path :
		    "configuration", r->line, *emb ? ": " : "", emb);
	else if (r->origin == ACL_IFBCAST)
		snprintf(buf, len, "%s %s is refused: %s%sthe broadcast "
		    "address of a network of this host", what, a,
		    *emb ? emb : "it is", *emb ? ", " : " ");
	else
		snprintf(buf, len, "%s %s is refused: %s%s%s (built-in "
		    "rule deny %s; allow-destination %s opens it)", what, a,
		    *emb ? emb : "it is", *emb ? ", " : " ",
		    acl_builtins[r->origin - 1].what, p, p);
}

/* A reader's copy of the published rules; 0, or -1 if it kept moving. */
int
acl_snapshot(const struct shm_acl *shared, struct shm_acl *copy)
{
	uint32_t	s1, s2;
	int		tries;

	for (tries = 0; tries < 100; tries++) {
		s1 = atomic_load_explicit(&shared->seq, memory_order_acquire);
		if (s1 & 1)
			continue;
		memcpy((char *)copy + sizeof(copy->seq),
		    (const char *)shared + sizeof(shared->seq),
		    sizeof(*copy) - sizeof(copy->seq));
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&shared->seq, memory_order_relaxed);
		if (s1 == s2) {
			atomic_store_explicit(&copy->seq, s1,
			    memory_order_relaxed);
			return 0;
		}
	}
	return -1;
}

static void
acl_add(struct shm_acl *acl, const struct shm_acl_rule *r)
{
	if (acl->nrules < SHM_ACL_MAX)
		acl->rules[acl->nrules++] = *r;
}

/*
 * Build the rules (built-in, the broadcast address of each IPv4 network
 * of this host, then the configured ones), the host's addresses and the
 * own ports, into acl in private memory.  The configured rules are
 * bounded by the parser, so everything fits.
 */
void
acl_build(struct shm_acl *acl, const struct config *c)
{
	struct shm_acl_rule	 r;
	struct ifaddrs		*ifa, *i;
	char			 why[128];
	size_t			 k;

	memset(acl, 0, sizeof(*acl));
	for (k = 0; k < ACL_NBUILTIN; k++) {
		if (acl_parse(acl_builtins[k].prefix, &r, why, sizeof(why)) ==
		    -1)
			fatalx("acl: built-in rule %s: %s",
			    acl_builtins[k].prefix, why);
		r.action = SHM_ACL_DENY;
		r.origin = (uint8_t)(k + 1);
		acl_add(acl, &r);
	}
	if (getifaddrs(&ifa) == 0) {
		for (i = ifa; i != NULL; i = i->ifa_next) {
			if (i->ifa_addr == NULL ||
			    (i->ifa_addr->sa_family != AF_INET &&
			    i->ifa_addr->sa_family != AF_INET6))
				continue;
			if (acl->nlocal < SHM_LOCAL_MAX)
				shm_addr_from_sa(&acl->local[acl->nlocal++],
				    i->ifa_addr);
			if (i->ifa_addr->sa_family != AF_INET ||
			    !(i->ifa_flags & IFF_BROADCAST) ||
			    i->ifa_broadaddr == NULL ||
			    i->ifa_broadaddr->sa_family != AF_INET)
				continue;
			memset(&r, 0, sizeof(r));
			r.family = AF_INET;
			r.plen = 32;
			r.action = SHM_ACL_DENY;
			r.origin = ACL_IFBCAST;
			memcpy(r.addr, &((struct sockaddr_in *)
			    i->ifa_broadaddr)->sin_addr, 4);
			acl_add(acl, &r);
		}
		freeifaddrs(ifa);
	} else
		log_warn("acl: getifaddrs");
	for (k = 0; k < c->nrules; k++)
		acl_add(acl, &c->rules[k]);
	acl->port_min = c->port_min;
	acl->port_max = c->port_max;
	for (k = 0; k < (size_t)c->nlisten && acl->nown < SHM_OWN_MAX; k++)
		if (c->listen[k].kind == ADDR_INET)
			acl->own[acl->nown++] = c->listen[k].port;
	if (c->metrics_listen.kind == ADDR_INET && acl->nown < SHM_OWN_MAX)
		acl->own[acl->nown++] = c->metrics_listen.port;
}

/* Write acl into the shared table under its sequence lock. */
void
acl_publish(struct shm_acl *shared, const struct shm_acl *acl)
{
	uint32_t s = atomic_load_explicit(&shared->seq, memory_order_relaxed);

	atomic_store_explicit(&shared->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memcpy((char *)shared + sizeof(shared->seq),
	    (const char *)acl + sizeof(acl->seq),
	    sizeof(*acl) - sizeof(acl->seq));
	atomic_store_explicit(&shared->seq, s + 2, memory_order_release);
}
