/*
 * What the kernel says went wrong on a session's sockets: ICMP errors from
 * the error queue (the destination is unreachable: the session's ERROR),
 * and datagrams dropped on a full receive buffer (SO_RXQ_OVFL with each
 * datagram, SO_MEMINFO when asked), counted as dropped_overflow.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/udp.h>
#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <linux/sock_diag.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "relay_int.h"

static const char *
relay_icmp_what(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return "port unreachable";
	case EHOSTUNREACH:
		return "host unreachable";
	case ENETUNREACH:
		return "network unreachable";
	case EACCES:
	case EPERM:
		return "administratively prohibited";
	case EPROTO:
		return "parameter problem";
	default:
		return strerror(err);
	}
}
/* The host part of an IPv4 or IPv6 address; "" for anything else. */
static const char *
relay_host(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		a = NULL;
	if (a == NULL || inet_ntop(sa->sa_family, a, buf, (socklen_t)len) ==
	    NULL)
		buf[0] = '\0';
	return buf;
}
/*
 * Tell the master about the first ICMP error of the session: "ICMP port
 * unreachable from 192.0.2.1:4000", naming the router too when it is not
 * the destination that complained.
 */
static void
relay_icmp_report(struct relay_sess *rs, const struct sock_extended_err *ee,
    size_t eelen, const struct sockaddr *to)
{
	const struct sockaddr	*off = SO_EE_OFFENDER(ee);
	char			 dst[INET6_ADDRSTRLEN + 8];
	char			 host[INET6_ADDRSTRLEN];
	char			 ohost[INET6_ADDRSTRLEN];
	char			 reason[120];
	int			 err = (int)ee->ee_errno;

	sa_ntop(to, dst, sizeof(dst));
	relay_host(to, host, sizeof(host));
	ohost[0] = '\0';
	if ((off->sa_family == AF_INET &&
	    eelen >= sizeof(*ee) + sizeof(struct sockaddr_in)) ||
	    (off->sa_family == AF_INET6 &&
	    eelen >= sizeof(*ee) + sizeof(struct sockaddr_in6)))
		relay_host(off, ohost, sizeof(ohost));
	if (ohost[0] != '\0' && strcmp(ohost, host) != 0)
		snprintf(reason, sizeof(reason), "ICMP %s from %s for %s",
		    relay_icmp_what(err), ohost, dst);
	else
		snprintf(reason, sizeof(reason), "ICMP %s from %s",
		    relay_icmp_what(err), dst);
	log_info("slot %u: %s", rs->idx, reason);
	snprintf(rs->error, sizeof(rs->error), "%s", reason);
	wctx_report(&rs->relay->ctx, IPC_ERROR, rs->idx, rs->gen, err,
	    reason);
}
/*
 * Read the forward socket's error queue.  The first ICMP error of the
 * session goes to the master (which puts the session in ERROR and lets the
 * controller decide); relaying goes on regardless, since the far end may
 * just be starting up.  Path MTU messages are not errors.
 */
void
relay_errqueue(struct relay_sess *rs, struct relay_sock *sk)
{
	struct relay			*r = rs->relay;
	const struct sock_extended_err	*ee;
	struct sockaddr_storage		 to;
	struct msghdr			 m;
	struct iovec			 iov;
	struct cmsghdr			*c;
	int				 i;

	for (i = 0; i < RELAY_ERRQ_MAX; i++) {
		memset(&m, 0, sizeof(m));
		memset(&to, 0, sizeof(to));
		iov.iov_base = r->errbuf;
		iov.iov_len = sizeof(r->errbuf);
		m.msg_name = &to;
		m.msg_namelen = sizeof(to);
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = &r->errcmsg;
		m.msg_controllen = sizeof(r->errcmsg);
		if (recvmsg(sk->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) == -1)
			return;
		for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
			if (!((c->cmsg_level == IPPROTO_IP &&
			    c->cmsg_type == IP_RECVERR) ||
			    (c->cmsg_level == IPPROTO_IPV6 &&
			    c->cmsg_type == IPV6_RECVERR)) ||
			    c->cmsg_len < CMSG_LEN(sizeof(*ee)))
				continue;
			ee = (const struct sock_extended_err *)CMSG_DATA(c);
			if ((ee->ee_origin != SO_EE_ORIGIN_ICMP &&
			    ee->ee_origin != SO_EE_ORIGIN_ICMP6) ||
			    ee->ee_errno == EMSGSIZE || rs->reported_error)
				continue;
			rs->reported_error = 1;
			relay_icmp_report(rs, ee, c->cmsg_len - CMSG_LEN(0),
			    (struct sockaddr *)&to);
		}
	}
}
int
relay_soft_error(int err)
{
	switch (err) {
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
	case EACCES:
	case EPERM:
	case EPROTO:
	case EMSGSIZE:
		return 1;
	}
	return 0;
}
/* The socket's drop count as it is now (SO_MEMINFO), into the slot. */
void
relay_meminfo(struct relay_sess *rs, struct relay_sock *sk, int fresh)
{
	struct relay	*r = rs->relay;
	uint32_t	 mem[SK_MEMINFO_VARS], add;
	socklen_t	 len = sizeof(mem);

	if (!r->meminfo)
		return;
	if (getsockopt(sk->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) == -1) {
		if (errno != ENOPROTOOPT)
			return;
		len = 0;
	}
	if (len < (SK_MEMINFO_DROPS + 1) * sizeof(mem[0])) {
		/* Linux < 4.12: drops are seen with the next datagram only. */
		log_info("relay: no SO_MEMINFO: buffer drops are counted "
		    "when the next datagram comes");
		r->meminfo = 0;
		return;
	}
	if ((add = relay_drops(rs, sk->role, mem[SK_MEMINFO_DROPS],
	    fresh)) != 0)
		SHM_ADD(&rs->slot->dir[sk->role & 1].dropped_overflow, add);
}
/*
 * Every second, the drop counts of the sockets where datagrams queued up
 * since: a buffer that overflowed must have queued, and its drops after
 * the last datagram the worker read are seen now, not when the next
 * datagram comes (if one ever does).
 */
void
relay_ovfl_tick(evutil_socket_t fd, short what, void *arg)
{
	struct relay		*r = arg;
	struct relay_sess	*rs;
	int			 i;

	while ((rs = LIST_FIRST(&r->ovfl_watch)) != NULL) {
		LIST_REMOVE(rs, ovfl_entry);
		for (i = 0; i < rs->nsock; i++)
			if (rs->ovfl_watch & (1u << i))
				relay_meminfo(rs, &rs->sk[i], 0);
		rs->ovfl_watch = 0;
	}
}
