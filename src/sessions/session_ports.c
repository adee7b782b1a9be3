/*
 * A session's ports and sockets: binding them (an explicit port, or the
 * next free pair of the worker's range), the port map the workers read to
 * tell our own sockets from a caller's, and the destination ports on this
 * host kept from our own sockets (which would make a loop).
 */
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session_int.h"


static void
session_setport(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}
uint16_t
session_getport(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}
int
session_is_multicast(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)ss)->
		    sin_addr.s_addr);

		return IN_MULTICAST(a) || a == INADDR_BROADCAST;
	}
	return IN6_IS_ADDR_MULTICAST(
	    &((const struct sockaddr_in6 *)ss)->sin6_addr);
}
/*
 * A bound UDP socket, or for TCP a bound stream socket (listening, with
 * tcp_listen; otherwise to connect from), or -1 with errno.
 */
static int
session_bind(const struct sockaddr_storage *ss, int tcp)
{
	socklen_t	len = ss->ss_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int		fd, on = 1, saved;

	fd = socket(ss->ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) |
	    SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1)
		goto fail;
	/* A port a finished session left in TIME_WAIT is free again. */
	if (tcp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)) == -1)
		goto fail;
	if (bind(fd, (const struct sockaddr *)ss, len) == -1)
		goto fail;
	if (tcp == SESSION_TCP_LISTEN && listen(fd, 8) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}
/*
 * Bind RTP on ss's port and, with rtcp, RTCP on port + 1.  fds[0] RTP,
 * fds[1] RTCP.  -1 with errno of the failing bind.
 */
int
session_bind_pair(struct sockaddr_storage *ss, int rtcp, int tcp,
    int fds[2])
{
	struct sockaddr_storage	r = *ss;
	int			saved;

	fds[0] = fds[1] = -1;
	if ((fds[0] = session_bind(ss, tcp)) == -1)
		return -1;
	if (!rtcp)
		return 0;
	session_setport(&r, (uint16_t)(session_getport(ss) + 1));
	if ((fds[1] = session_bind(&r, tcp)) == -1) {
		saved = errno;
		close(fds[0]);
		fds[0] = -1;
		errno = saved;
		return -1;
	}
	return 0;
}
uint32_t
session_pair_of(uint16_t port)
{
	return ((uint32_t)port - sr.conf->port_min) / 2;
}
/*
 * The UDP ports a session's sockets are bound to, each (family, port)
 * once: listen and forward, and RTCP on the port above.  How many.
 */
static int
session_udp_ports(uint32_t i, int fam[4], uint16_t port[4])
{
	const struct shm_slot	*s = session_slot(i);
	const struct shm_addr	*a;
	int			 k, j, f, n = 0, plus, rtcp;
	uint16_t		 p;

	if (s->flags & SHM_F_TCP)
		return 0;
	rtcp = !(s->flags & SHM_F_NORTCP);
	for (k = 0; k < 2; k++) {
		a = k == 0 ? &s->listen : &s->forward;
		if ((f = a->family == AF_INET ? 0 : a->family == AF_INET6 ?
		    1 : -1) == -1 || a->port == 0)
			continue;
		for (plus = 0; plus <= rtcp; plus++) {
			p = (uint16_t)(a->port + plus);
			for (j = 0; j < n; j++)
				if (fam[j] == f && port[j] == p)
					break;
			if (j == n) {
				fam[n] = f;
				port[n++] = p;
			}
		}
	}
	return n;
}
void
session_port_set(int f, uint16_t p, uint32_t owner)
{
	atomic_store_explicit(&sr.shm->ports->owner[f][p], owner,
	    memory_order_release);
}
/* The one session other than i that holds port p of family f (slot + 1). */
static uint32_t
session_port_holder(int f, uint16_t p, uint32_t i)
{
	int		fam[4], n, j;
	uint16_t	port[4];
	uint32_t	k;

	for (k = 0; k < sr.nslots; k++) {
		if (k == i || !sr.s[k].in_use)
			continue;
		n = session_udp_ports(k, fam, port);
		for (j = 0; j < n; j++)
			if (fam[j] == f && port[j] == p)
				return k + 1;
	}
	return SHM_PORT_SHARED;		/* the count is off: stay safe */
}
/*
 * Slot i's sockets are bound (hold) or closed for good (!hold): the
 * table's port map says so, for the workers' check of their senders.
 */
void
session_ports(uint32_t i, int hold)
{
	int		fam[4], n, j;
	uint16_t	port[4], *ref;

	n = session_udp_ports(i, fam, port);
	for (j = 0; j < n; j++) {
		ref = &sr.port_ref[fam[j] * 65536 + port[j]];
		if (hold) {
			++*ref;
			session_port_set(fam[j], port[j], *ref == 1 ? i + 1 :
			    SHM_PORT_SHARED);
		} else if (*ref > 0) {
			--*ref;
			session_port_set(fam[j], port[j], *ref == 0 ? 0 :
			    *ref == 1 ? session_port_holder(fam[j], port[j],
			    i) : SHM_PORT_SHARED);
		}
	}
}
/* Index into port_ref and kept of ss's family and port. */
static uint32_t
session_port_key(const struct sockaddr_storage *ss)
{
	return (ss->ss_family == AF_INET6 ? 65536u : 0u) +
	    session_getport(ss);
}
/* Is port (of ss's family) the destination of a session on this host? */
static int
session_port_kept(const struct sockaddr_storage *ss, uint16_t port)
{
	return sr.kept[(ss->ss_family == AF_INET6 ? 65536u : 0u) + port] != 0;
}
/*
 * The ports of the range that a UDP destination on this host reaches
 * (RTP, and with rtcp RTCP on the port above), as indexes of sr.kept
 * into keys; how many.  *own: 1 if the RTP port is one of our own
 * sockets, 2 if the RTCP port is, else 0.
 */
static int
session_dest_ports(const struct sockaddr_storage *dest, int rtcp,
    uint32_t keys[2], int *own)
{
	struct sockaddr_storage	here;
	uint16_t		port;
	int			k, n = 0;

	*own = 0;
	if (!acl_local(&sr.acl, (const struct sockaddr *)dest, &here))
		return 0;
	port = session_getport(&here);
	for (k = 0; k <= rtcp; k++) {
		session_setport(&here, (uint16_t)(port + k));
		if (*own == 0 && acl_own_socket(&sr.acl, sr.shm,
		    (struct sockaddr *)&here))
			*own = k + 1;
		/* Only a port of the range could become one of ours. */
		if (port + k >= sr.conf->port_min &&
		    port + k <= sr.conf->port_max)
			keys[n++] = session_port_key(&here);
	}
	return n;
}
/*
 * A UDP destination on this host: one of our own sockets is a loop; any
 * other port of the range is kept from our sessions for as long as this
 * one lives, so that none of them binds it and loops media back.  0 with
 * the ports to keep in keys (*n of them), or -1 with err set.
 */
int
session_dest_check(const struct session_params *p, int rtcp,
    uint32_t keys[2], int *n, struct rp_error *err)
{
	struct sockaddr_storage	d = p->dest;
	char			why[256];
	int			own;

	*n = 0;
	if (p->tcp)
		return 0;
	*n = session_dest_ports(&d, rtcp, keys, &own);
	if (!own)
		return 0;
	*n = 0;
	if (own == 2)
		session_setport(&d, (uint16_t)(session_getport(&d) + 1));
	acl_explain(&sr.acl, sr.conf, (const struct sockaddr *)&d,
	    ACL_OWN, -1, own == 2 ? "RTCP destination" : "destination", why,
	    sizeof(why));
	log_notice("session %s refused: %s", p->id[0] != '\0' ? p->id :
	    "(unnamed)", why);
	return rp_err(err, RP_PERMISSION_DENIED, "%s", why);
}
/* Keep the ports (add 1) or let go of them (add -1). */
void
session_keep(const uint32_t *keys, int n, int add)
{
	int k;

	for (k = 0; k < n; k++)
		if (add > 0)
			sr.kept[keys[k]]++;
		else if (sr.kept[keys[k]] > 0)
			sr.kept[keys[k]]--;
}
const char *
session_bind_reason(int err)
{
	static char	buf[128];
	struct rlimit	rl;

	switch (err) {
	case EADDRNOTAVAIL:
		return "is not an address of this host";
	case EADDRINUSE:
		return "is in use";
	case EACCES:
		return "is not permitted";
	case EMFILE:
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur != RLIM_INFINITY) {
			snprintf(buf, sizeof(buf), "cannot be bound: out of "
			    "file descriptors (the limit is %llu)",
			    (unsigned long long)rl.rlim_cur);
			return buf;
		}
		return "cannot be bound: out of file descriptors";
	case ENFILE:
		return "cannot be bound: the system is out of file "
		    "descriptors";
	case ENOBUFS:
	case ENOMEM:
		return "cannot be bound: out of memory";
	default:
		return strerror(err);
	}
}
/* What a failed bind is to the caller: a full host is not a bug. */
static enum rp_code
session_bind_code(int err)
{
	switch (err) {
	case EADDRINUSE:
		return RP_ALREADY_EXISTS;
	case EADDRNOTAVAIL:
		return RP_INVALID_ARGUMENT;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		return RP_RESOURCE_EXHAUSTED;
	default:
		return RP_INTERNAL;
	}
}
/*
 * Copies of the sockets pre (RTP, RTCP) bound in advance on ss's port,
 * when there are as many as needed; 0, or -1: bind as usual.
 */
static int
session_take_prebound(const int pre[2], int rtcp, int fds[2])
{
	if (pre == NULL || pre[0] == -1 || (rtcp && pre[1] == -1))
		return -1;
	if ((fds[0] = fcntl(pre[0], F_DUPFD_CLOEXEC, 0)) == -1)
		return -1;
	if (rtcp && (fds[1] = fcntl(pre[1], F_DUPFD_CLOEXEC, 0)) == -1) {
		close(fds[0]);
		fds[0] = -1;
		return -1;
	}
	return 0;
}

/*
 * Bind an endpoint: an explicit port is checked against the range and
 * bound as asked (or its sockets bound in advance, pre, are taken);
 * port 0 takes the next free pair of the worker's range.
 */
int
session_bind_endpoint(const char *what, struct sockaddr_storage *ss,
    const int *pre, int worker, int rtcp, int tcp, int fds[2],
    uint16_t *pairref, struct rp_error *err)
{
	struct config	*c = sr.conf;
	uint16_t	 port = session_getport(ss), lo, hi;
	uint32_t	 first, last, n, p, tries;
	char		 a[INET6_ADDRSTRLEN];
	int		 e;

	inet_ntop(ss->ss_family, ss->ss_family == AF_INET ?
	    (void *)&((struct sockaddr_in *)ss)->sin_addr :
	    (void *)&((struct sockaddr_in6 *)ss)->sin6_addr, a, sizeof(a));
	if (port != 0) {
		if (port < c->port_min || port > c->port_max ||
		    (rtcp && port == c->port_max))
			return rp_err(err, RP_INVALID_ARGUMENT,
			    "%s.port %u is outside the media port range "
			    "%u-%u", what, port, c->port_min,
			    rtcp ? c->port_max - 1 : c->port_max);
		if (rtcp && (port & 1) != (c->port_min & 1))
			return rp_err(err, RP_INVALID_ARGUMENT,
			    "%s.port %u must be even: RTCP uses port + 1 "
			    "(or set disable_rtcp)", what, port);
		if (session_port_kept(ss, port) ||
		    (rtcp && session_port_kept(ss, (uint16_t)(port + 1))))
			return rp_err(err, RP_PERMISSION_DENIED,
			    "%s.port %u%s is the destination of a session on "
			    "this host: a socket of ours there would loop "
			    "media back into the daemon", what, port,
			    rtcp ? " (or RTCP on port + 1)" : "");
		fds[0] = fds[1] = -1;
		if ((tcp || session_take_prebound(pre, rtcp, fds) == -1) &&
		    session_bind_pair(ss, rtcp, tcp, fds) == -1) {
			e = errno;
			return rp_err(err, session_bind_code(e),
			    "%s %s port %u%s %s", what, a, port,
			    rtcp ? " (or RTCP on port + 1)" : "",
			    session_bind_reason(e));
		}
		p = session_pair_of(port);
		sr.pair_ref[p]++;
		*pairref = (uint16_t)(p + 1);
		return 0;
	}

	workers_range(worker, &lo, &hi);
	first = session_pair_of(lo);
	last = session_pair_of(hi);
	n = last - first + 1;
	p = sr.cursor[worker];
	if (p < first || p > last)
		p = first;
	for (tries = 0; tries < n; tries++, p = (p + 1 > last) ? first :
	    p + 1) {
		if (sr.pair_ref[p] != 0 ||
		    session_port_kept(ss, (uint16_t)(c->port_min + p * 2)) ||
		    session_port_kept(ss, (uint16_t)(c->port_min + p * 2 + 1)))
			continue;
		session_setport(ss, (uint16_t)(c->port_min + p * 2));
		if (session_bind_pair(ss, rtcp, tcp, fds) == 0) {
			sr.pair_ref[p]++;
			*pairref = (uint16_t)(p + 1);
			sr.cursor[worker] = p + 1 > last ? first : p + 1;
			return 0;
		}
		if (errno != EADDRINUSE) {
			e = errno;
			session_setport(ss, 0);
			return rp_err(err, session_bind_code(e),
			    "%s address %s %s", what, a,
			    session_bind_reason(e));
		}
	}
	session_setport(ss, 0);
	return rp_err(err, RP_RESOURCE_EXHAUSTED,
	    "no free port pair for %s in worker %d's range %u-%u "
	    "(%u sessions on it)", what, worker, lo, hi,
	    sr.nsessions[worker]);
}
int
session_pick_worker(void)
{
	uint32_t	best = UINT32_MAX;
	int		i, w = 0;

	for (i = 0; i < sr.nworkers; i++)
		if (sr.nsessions[i] < best) {
			best = sr.nsessions[i];
			w = i;
		}
	return w;
}
/* A session taken over: keep its destination's ports, as at its start. */
void
session_keep_dest(uint32_t i)
{
	struct shm_slot		*s = session_slot(i);
	struct session		*se = &sr.s[i];
	struct sockaddr_storage	 d;
	int			 own;

	if ((s->flags & SHM_F_TCP) || shm_addr_to_sa(&s->dest, &d) == 0)
		return;
	se->nkept = session_dest_ports(&d, !(s->flags & SHM_F_NORTCP),
	    se->kept_at, &own);
	session_keep(se->kept_at, se->nkept, 1);
}
