/*
 * The reference relays' common part: the sessions read from stdin, their
 * sockets bound, and the process set up.  See refrelay.c for the input.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "refsess.h"

static volatile sig_atomic_t	*stopp;

static void
on_signal(int sig)
{
	*stopp = 1;
}

void
ref_setup(volatile sig_atomic_t *stop)
{
	struct sigaction	sa;
	struct rlimit		rl;

	/* two descriptors per session */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	stopp = stop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: the wait returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int
addr_parse(const char *s, unsigned port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (port > 65535)
		return -1;
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* A nonblocking UDP socket bound to a, its port into *port; -1 on error. */
static int
udp_bind(const struct sockaddr_storage *a, socklen_t len, unsigned *port)
{
	struct sockaddr_storage	b;
	socklen_t		blen = sizeof(b);
	int			fd;

	if ((fd = socket(a->ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (bind(fd, (const struct sockaddr *)a, len) == -1 ||
	    getsockname(fd, (struct sockaddr *)&b, &blen) == -1) {
		close(fd);
		return -1;
	}
	*port = ntohs(b.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&b)->sin6_port :
	    ((struct sockaddr_in *)&b)->sin_port);
	return fd;
}

int
ref_read_sessions(int (*add)(struct rsock *, void *), void *arg)
{
	struct rsess		*s;
	struct sockaddr_storage	 la, fa;
	socklen_t		 lalen, falen;
	char			 line[512], laddr[64], daddr[64];
	unsigned		 lport, fport, dport;
	int			 lineno = 0, i;

	while (fgets(line, sizeof(line), stdin) != NULL) {
		lineno++;
		if (line[0] == '\n' || line[0] == '\0')
			break;
		if ((s = calloc(1, sizeof(*s))) == NULL) {
			printf("error: out of memory\n");
			return -1;
		}
		if (sscanf(line, "%63s %u %u %63s %u", laddr, &lport, &fport,
		    daddr, &dport) != 5 ||
		    addr_parse(laddr, lport, &la, &lalen) == -1 ||
		    addr_parse(laddr, fport, &fa, &falen) == -1 ||
		    addr_parse(daddr, dport, &s->dest, &s->destlen) == -1 ||
		    s->dest.ss_family != la.ss_family) {
			printf("error: line %d: want LISTEN_ADDR LISTEN_PORT "
			    "FORWARD_PORT DEST_ADDR DEST_PORT, one family\n",
			    lineno);
			return -1;
		}
		if ((s->sk[0].fd = udp_bind(&la, lalen, &lport)) == -1 ||
		    (s->sk[1].fd = udp_bind(&fa, falen, &fport)) == -1) {
			printf("error: line %d: bind: %s\n", lineno,
			    strerror(errno));
			return -1;
		}
		for (i = 0; i < 2; i++) {
			s->sk[i].sess = s;
			s->sk[i].fwd = i;
			if (add(&s->sk[i], arg) == -1)
				return -1;
		}
		printf("ports %u %u\n", lport, fport);
		fflush(stdout);
	}
	return 0;
}
