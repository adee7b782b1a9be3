/*
 * refrelay: the yardstick for rtpproxyd's packet path, a UDP forwarder
 * with nothing else in it: no statistics, no timestamps, no libevent, no
 * gRPC.  Per session a listen socket (the caller sends to it) and a
 * forward socket (media leaves from it); listen -> destination, and
 * forward -> the latched caller, the source of the latest packet on the
 * listen socket.  epoll (level-triggered), recvmmsg/sendmmsg in batches of
 * 32 and at most 4 batches per socket per wakeup, then the other ready
 * sockets get their turn: the same batching and fairness as src/worker/relay.c.
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
 *
 * With REFRELAY_BLACKHOLE=N in the environment each socket relays its
 * first N datagrams (0 or empty: none) and then reads and drops every
 * one: a broken relay, for tests/bench-smoke.sh to be sure that it
 * catches one.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refsess.h"

#define BATCH		32	/* datagrams per recvmmsg / sendmmsg */
#define BUDGET		4	/* batches per wakeup, then let others run */
#define PKTMAX		2048
#define MAXEVENTS	256

static volatile sig_atomic_t	 stop;
static long			 blackhole = -1;	/* -1: relay all */
static struct mmsghdr		 rx[BATCH], tx[BATCH];
static struct iovec		 rxiov[BATCH], txiov[BATCH];
static struct sockaddr_storage	 from[BATCH];
static uint8_t			 buf[BATCH][PKTMAX];

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
	int		 b, i, k, n;

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
		k = n;
		if (sk->left >= 0) {
			/* What is left of the datagrams it may relay. */
			k = n < sk->left ? n : (int)sk->left;
			sk->left -= k;
		}
		if (tolen > 0 && k > 0) {
			for (i = 0; i < k; i++) {
				txiov[i].iov_len = rx[i].msg_len;
				tx[i].msg_hdr.msg_name = to;
				tx[i].msg_hdr.msg_namelen = tolen;
			}
			send_batch(s->sk[!sk->fwd].fd, k);
		}
		if (n < BATCH)
			return;
	}
}

static int
add_socket(struct rsock *sk, void *arg)
{
	struct epoll_event	ev;
	int			ep = *(int *)arg;

	sk->left = blackhole;
	ev.events = EPOLLIN;
	ev.data.ptr = sk;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sk->fd, &ev) == -1) {
		printf("error: epoll_ctl: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct epoll_event	ev[MAXEVENTS];
	const char		*bh;
	int			ep, i, n;

	if (argc != 1) {
		fprintf(stderr, "usage: refrelay < sessions\n");
		return 2;
	}
	if ((bh = getenv("REFRELAY_BLACKHOLE")) != NULL &&
	    (blackhole = strtol(bh, NULL, 10)) < 0)
		blackhole = 0;
	ref_setup(&stop);
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
	if (ref_read_sessions(add_socket, &ep) == -1)
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
