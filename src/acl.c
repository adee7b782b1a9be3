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
 * Apart from the rules, the "self" check refuses this daemon's own media
 * ports, and for TCP its API and metrics ports, on any address of this
 * host, whatever the rules say: relaying to itself is a loop that
 * amplifies.
 *
 * The master publishes rules, the host's addresses and the own ports into
 * the shared table; the master checks destinations against them and the
 * workers check the senders they latch on to.  Everything here is a pure
 * function of its arguments but acl_publish, which asks the kernel for
 * the host's addresses.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "rtpproxyd.h"

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
 * May media go to (or, for a latch, come from) sa?  what: ACL_UDP,
 * ACL_TCP or ACL_TCP_PEER.  ACL_ALLOW, or ACL_DENY with *rule the deciding
 * rule's index, or ACL_SELF.  The API and metrics ports are ours for TCP
 * only.  A TCP caller gets the rules but not the loop check: its address
 * cannot be forged, its reverse media goes back on its own connection, and
 * a local client's ephemeral port may well lie in the media range (a
 * destination on our own ports is refused when the session is created).
 */
int
acl_check(const struct shm_acl *acl, const struct sockaddr *sa, int what,
    int *rule)
{
	const struct shm_acl_rule	*r, *best = NULL;
	uint8_t				 addr[16];
	uint16_t			 port, i;
	uint32_t			 k, n = acl->nrules;
	int				 family, own = 0;

	*rule = -1;
	if ((family = acl_key(sa, addr, &port)) == -1)
		return ACL_DENY;
	if (what != ACL_TCP_PEER) {
		own = acl->port_max != 0 && port >= acl->port_min &&
		    port <= acl->port_max;
		for (i = 0; what == ACL_TCP && !own && i < acl->nown &&
		    i < SHM_OWN_MAX; i++)
			own = acl->own[i] == port;
		if (own && acl_is_local(acl, family, addr))
			return ACL_SELF;
	}
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
 * Why sa was refused, for a person: which rule, and how to change it.
 * what is "destination" or "source".
 */
void
acl_explain(const struct shm_acl *acl, const struct config *conf,
    const struct sockaddr *sa, int verdict, int rule, const char *what,
    char *buf, size_t len)
{
	const struct shm_acl_rule	*r;
	char				 a[INET6_ADDRSTRLEN + 8], p[64];

	sa_ntop(sa, a, sizeof(a));
	if (verdict == ACL_SELF) {
		snprintf(buf, len, "%s %s is one of this daemon's own ports "
		    "on this host: refusing a relay loop", what, a);
		return;
	}
	if (rule < 0 || (uint32_t)rule >= acl->nrules) {
		snprintf(buf, len, "%s %s is refused", what, a);
		return;
	}
	r = &acl->rules[rule];
	acl_rule_str(r, p, sizeof(p));
	if (r->origin == 0)
		snprintf(buf, len, "%s %s is refused by deny-destination %s "
		    "(%s:%u)", what, a, p,
		    conf != NULL && conf->path != NULL ? conf->path :
		    "configuration", r->line);
	else if (r->origin == ACL_IFBCAST)
		snprintf(buf, len, "%s %s is refused: it is the broadcast "
		    "address of a network of this host", what, a);
	else
		snprintf(buf, len, "%s %s is refused: it is %s (built-in "
		    "rule deny %s; allow-destination %s opens it)", what, a,
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
	const char		*l, *colon;
	uint32_t		 port;
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
	for (k = 0; k < (size_t)c->nlisten && acl->nown < SHM_OWN_MAX; k++) {
		l = c->listen[k];
		if (strncmp(l, "unix:", 5) == 0 ||
		    (colon = strrchr(l, ':')) == NULL ||
		    parse_u32(colon + 1, 1, 65535, &port) == -1)
			continue;
		acl->own[acl->nown++] = (uint16_t)port;
	}
	if (c->metrics_listen != NULL && acl->nown < SHM_OWN_MAX &&
	    (colon = strrchr(c->metrics_listen, ':')) != NULL &&
	    parse_u32(colon + 1, 1, 65535, &port) == 0)
		acl->own[acl->nown++] = (uint16_t)port;
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
