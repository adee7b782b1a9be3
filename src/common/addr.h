/*
 * addr.c: an address the daemon listens on (listen, metrics-listen),
 * parsed once when the configuration is read; whoever binds, probes or
 * names it takes the parsed form and never reads the text again.
 */
#ifndef RTPPROXYD_ADDR_H
#define RTPPROXYD_ADDR_H

#include <sys/socket.h>

#include "common.h"

#define ADDR_TEXT_MAX	1024	/* what a configuration line can hold */

enum addr_kind {
	ADDR_NONE = 0,		/* not set (metrics-listen none) */
	ADDR_INET,		/* a TCP port on one or two addresses */
	ADDR_UNIX,		/* a Unix-domain socket */
};

/* addr_parse's flags */
#define ADDR_UNIX_OK	0x01	/* unix:/PATH is allowed (the API) */
#define ADDR_LO_V4	0x02	/* localhost is 127.0.0.1 alone (metrics) */

/*
 * HOST:PORT (IPv4), [IPv6]:PORT, localhost:PORT, *:PORT or unix:/PATH.
 * localhost is 127.0.0.1 and ::1 (two sockets, either will do) unless
 * ADDR_LO_V4.  "*" is [::] with IPV6_V6ONLY off, so one socket takes both
 * families; addr_bind falls back to 0.0.0.0 on a host without IPv6.  A
 * Unix path is in sa[0] as a struct sockaddr_un.
 */
struct listen_addr {
	enum addr_kind		 kind;
	int			 any;		/* "*" */
	int			 localhost;	/* "localhost" */
	uint16_t		 port;		/* ADDR_INET */
	int			 nsa;		/* 1, or 2 for localhost */
	struct sockaddr_storage	 sa[2];
	socklen_t		 salen[2];
	char			 text[ADDR_TEXT_MAX];	/* as configured */
};

int	 addr_parse(struct listen_addr *, const char *, const char *, int,
	    char *, size_t);
const char *addr_fmt(const struct listen_addr *, char *, size_t);
int	 addr_equal(const struct listen_addr *, const struct listen_addr *);
int	 addr_loopback(const struct listen_addr *);
const char *addr_path(const struct listen_addr *);
int	 addr_bind(const struct listen_addr *, int);

#endif
