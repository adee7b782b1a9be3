/*
 * refrelay: the yardstick for rtpproxyd's packet path, a UDP forwarder
 * with nothing else in it: no statistics, no timestamps, no libevent, no
 * gRPC.  Per session a listen socket (the caller sends to it) and a
 * forward socket (media leaves from it); listen -> destination, and
 * forward -> the latched caller, the source of the latest packet on the
 * listen socket.  epoll (level-triggered), recvmmsg/sendmmsg in batches of
 * 32 and at most 4 batches per socket per wakeup, then the other ready
 * sockets get their turn: the same batching and fairness as src/relay.c.
 *
 * Sessions are read from stdin, one a line, up to an empty line or the
 * end of the input:
 *
 *	LISTEN_ADDR LISTEN_PORT FORWARD_PORT DEST_ADDR DEST_PORT
 *
 * The forward socket is bound to LISTEN_ADDR as well; port 0: any.  For
 * each line it prints "ports LISTEN_PORT FORWARD_PORT" as bound, then
 * "ready" once all are, and relays until SIGTERM or SIGINT.  On a bad line
 * it prints "error: ..." and exits 1.
 */
#include <sys/epoll.h>
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

#define BATCH		32	/* datagrams per recvmmsg / sendmmsg */
#define BUDGET		4	/* batches per wakeup, then let others run */
#define PKTMAX		2048
#define MAXEVENTS	256

struct rsess;

struct rsock {
	struct rsess	*sess;
	int		 fd;
	int		 fwd;		/* 0: listen socket, 1: forward */
};

struct rsess {
	struct rsock		 sk[2];
	struct sockaddr_storage	 dest;
	struct sockaddr_storage	 latch;
	socklen_t		 destlen;
	socklen_t		 latchlen;	/* 0: nothing latched yet */
};

static volatile sig_atomic_t	 stop;
static struct mmsghdr		 rx[BATCH], tx[BATCH];
static struct iovec		 rxiov[BATCH], txiov[BATCH];
static struct sockaddr_storage	 from[BATCH];
static uint8_t			 buf[BATCH][PKTMAX];

static void
on_signal(int sig)
{
	stop = 1;
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

/*
 * Send tx[0 .. n - 1] from fd.  A full socket drops the rest of the batch;
 * any other error drops the one datagram it is about.
 */
static void
send_batch(int fd, int n)
{
	int i = 0, k;

	while (i < n) {
		k = sendmmsg(fd, &tx[i], (unsigned int)(n - i), MSG_DONTWAIT);
		if (k > 0)
			i += k;
		else if (k == 0 || errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == ENOBUFS)
			return;
		else if (errno != EINTR)
			i++;
	}
}

/* Up to BUDGET batches from a readable socket, sent on from its pair. */
static void
relay(struct rsock *sk)
{
	struct rsess	*s = sk->sess;
	struct sockaddr	*to;
	socklen_t	 tolen;
	int		 b, i, n;

	for (b = 0; b < BUDGET; b++) {
		for (i = 0; i < BATCH; i++)
			rx[i].msg_hdr.msg_namelen = sizeof(from[i]);
		n = recvmmsg(sk->fd, rx, BATCH, MSG_DONTWAIT, NULL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		if (!sk->fwd) {
			memcpy(&s->latch, &from[n - 1], sizeof(s->latch));
			s->latchlen = rx[n - 1].msg_hdr.msg_namelen;
			to = (struct sockaddr *)&s->dest;
			tolen = s->destlen;
		} else {
			to = (struct sockaddr *)&s->latch;
			tolen = s->latchlen;
		}
		if (tolen > 0) {
			for (i = 0; i < n; i++) {
				txiov[i].iov_len = rx[i].msg_len;
				tx[i].msg_hdr.msg_name = to;
				tx[i].msg_hdr.msg_namelen = tolen;
			}
			send_batch(s->sk[!sk->fwd].fd, n);
		}
		if (n < BATCH)
			return;
	}
}

/* Read the sessions, bind them, add them to ep.  0, or -1 with a message. */
static int
read_sessions(int ep)
{
	struct epoll_event	 ev;
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
			ev.events = EPOLLIN;
			ev.data.ptr = &s->sk[i];
			if (epoll_ctl(ep, EPOLL_CTL_ADD, s->sk[i].fd, &ev) ==
			    -1) {
				printf("error: epoll_ctl: %s\n",
				    strerror(errno));
				return -1;
			}
		}
		printf("ports %u %u\n", lport, fport);
		fflush(stdout);
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct epoll_event	ev[MAXEVENTS];
	struct sigaction	sa;
	struct rlimit		rl;
	int			ep, i, n;

	if (argc != 1) {
		fprintf(stderr, "usage: refrelay < sessions\n");
		return 2;
	}
	/* two descriptors per session */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: epoll_wait returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < BATCH; i++) {
		rxiov[i].iov_base = buf[i];
		rxiov[i].iov_len = PKTMAX;
		rx[i].msg_hdr.msg_name = &from[i];
		rx[i].msg_hdr.msg_iov = &rxiov[i];
		rx[i].msg_hdr.msg_iovlen = 1;
		txiov[i].iov_base = buf[i];
		tx[i].msg_hdr.msg_iov = &txiov[i];
		tx[i].msg_hdr.msg_iovlen = 1;
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		printf("error: epoll_create1: %s\n", strerror(errno));
		return 1;
	}
	if (read_sessions(ep) == -1)
		return 1;
	printf("ready\n");
	fflush(stdout);

	while (!stop) {
		n = epoll_wait(ep, ev, MAXEVENTS, -1);
		if (n == -1 && errno != EINTR) {
			fprintf(stderr, "refrelay: epoll_wait: %s\n",
			    strerror(errno));
			return 1;
		}
		for (i = 0; i < n; i++)
			relay(ev[i].data.ptr);
	}
	return 0;
}
