/*
 * uringrelay: refrelay with io_uring in place of epoll and
 * recvmmsg/sendmmsg, to see what batching across sockets buys.  refrelay
 * (like rtpproxyd) makes two system calls per ready socket; this makes
 * about one per wakeup, whatever the number of sockets.  It takes the
 * same input and relays alike (see refrelay.c); nothing else in it.
 *
 * Every socket has a multishot recvmsg outstanding that takes its buffers
 * from one ring of NBUF provided buffers; each datagram received becomes
 * a sendmsg from the paired socket, straight from the buffer it arrived
 * in, and the buffer goes back to the ring when that send completes.  The
 * sends of a wakeup go to the kernel together with the wait for the next.
 * Sockets are registered files; the kernel runs the receives when the
 * relay waits (DEFER_TASKRUN), not when a packet arrives.
 *
 * Needs Linux 6.1 or later.  Where io_uring is not available (too old a
 * kernel, kernel.io_uring_disabled, a seccomp filter) it prints "error:
 * io_uring: ..." and exits 1.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <liburing.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refsess.h"

#define NBUF		8192	/* provided buffers: a power of 2 */
#define BUFSZ		2048	/* header, address and datagram */
#define BGID		0
#define SQ_ENTRIES	4096
#define CQ_ENTRIES	65536
#define SEND_BIT	(1ULL << 63)	/* user_data: a send of buffer N */

static volatile sig_atomic_t	 stop;
static struct io_uring		 ring;
static struct io_uring_buf_ring	*br;
static uint8_t			*bufs;
static struct msghdr		 rxhdr;	/* what the receives fill in */
static struct msghdr		 txhdr[NBUF];	/* one per buffer */
static struct iovec		 txiov[NBUF];
static struct rsock		**socks;	/* by registered index */
static int			 nsocks, maxsocks;
static unsigned			 nreturned;	/* buffers to give back */

static int
add_socket(struct rsock *sk, void *arg)
{
	struct rsock **n;

	if (nsocks == maxsocks) {
		maxsocks = maxsocks ? maxsocks * 2 : 1024;
		if ((n = realloc(socks, (size_t)maxsocks * sizeof(*n))) ==
		    NULL) {
			printf("error: out of memory\n");
			return -1;
		}
		socks = n;
	}
	socks[nsocks++] = sk;
	return 0;
}

/* An SQE; a full queue goes to the kernel first. */
static struct io_uring_sqe *
sqe_get(void)
{
	struct io_uring_sqe *sqe;

	while ((sqe = io_uring_get_sqe(&ring)) == NULL)
		io_uring_submit(&ring);
	return sqe;
}

/* The multishot receive of socket idx (a registered index). */
static void
arm(int idx)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_recvmsg_multishot(sqe, idx, &rxhdr, 0);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, (uint64_t)idx);
}

/* Buffer bid back to the ring, seen by the kernel at the next advance. */
static void
give_back(unsigned bid)
{
	io_uring_buf_ring_add(br, bufs + (size_t)bid * BUFSZ, BUFSZ, bid,
	    io_uring_buf_ring_mask(NBUF), (int)nreturned++);
}

/* A datagram (or the end of a receive) on socket idx. */
static void
received(const struct io_uring_cqe *cqe)
{
	int				 idx = (int)cqe->user_data;
	struct rsock			*sk = socks[idx];
	struct rsess			*s = sk->sess;
	struct io_uring_recvmsg_out	*o;
	struct io_uring_sqe		*sqe;
	struct msghdr			*h;
	unsigned			 bid;

	/* ended: no buffer was free (-ENOBUFS), or an error */
	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm(idx);
	if (cqe->res <= 0 || !(cqe->flags & IORING_CQE_F_BUFFER))
		return;
	bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	o = io_uring_recvmsg_validate(bufs + (size_t)bid * BUFSZ, cqe->res,
	    &rxhdr);
	if (o == NULL || (o->flags & MSG_TRUNC) ||
	    o->namelen > sizeof(s->latch)) {
		give_back(bid);
		return;
	}
	h = &txhdr[bid];
	if (!sk->fwd) {
		memcpy(&s->latch, io_uring_recvmsg_name(o), o->namelen);
		s->latchlen = o->namelen;
		h->msg_name = &s->dest;
		h->msg_namelen = s->destlen;
	} else if (s->latchlen > 0) {
		h->msg_name = &s->latch;
		h->msg_namelen = s->latchlen;
	} else {
		give_back(bid);
		return;
	}
	txiov[bid].iov_base = io_uring_recvmsg_payload(o, &rxhdr);
	txiov[bid].iov_len = io_uring_recvmsg_payload_length(o, cqe->res,
	    &rxhdr);
	sqe = sqe_get();
	io_uring_prep_sendmsg(sqe, idx ^ 1, h, MSG_DONTWAIT);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, SEND_BIT | bid);
}

/* The ring, its buffers and the sockets registered; -1 with a message. */
static int
setup(void)
{
	struct io_uring_params	 p;
	struct io_uring_buf_reg	 reg;
	int			*fds, i, r;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	p.cq_entries = CQ_ENTRIES;
	if ((r = io_uring_queue_init_params(SQ_ENTRIES, &ring, &p)) < 0) {
		printf("error: io_uring: %s\n", strerror(-r));
		return -1;
	}
	if ((fds = calloc((size_t)nsocks + 1, sizeof(*fds))) == NULL) {
		printf("error: out of memory\n");
		return -1;
	}
	for (i = 0; i < nsocks; i++)
		fds[i] = socks[i]->fd;
	r = nsocks > 0 ? io_uring_register_files(&ring, fds, (unsigned)nsocks) :
	    0;
	free(fds);
	if (r < 0) {
		printf("error: io_uring: registering sockets: %s\n",
		    strerror(-r));
		return -1;
	}
	br = mmap(NULL, NBUF * sizeof(struct io_uring_buf), PROT_READ |
	    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bufs = malloc((size_t)NBUF * BUFSZ);
	if (br == MAP_FAILED || bufs == NULL) {
		printf("error: out of memory\n");
		return -1;
	}
	io_uring_buf_ring_init(br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uintptr_t)br;
	reg.ring_entries = NBUF;
	reg.bgid = BGID;
	if ((r = io_uring_register_buf_ring(&ring, &reg, 0)) < 0) {
		printf("error: io_uring: provided buffers: %s\n", strerror(-r));
		return -1;
	}
	for (i = 0; i < NBUF; i++) {
		give_back((unsigned)i);
		txhdr[i].msg_iov = &txiov[i];
		txhdr[i].msg_iovlen = 1;
	}
	io_uring_buf_ring_advance(br, (int)nreturned);
	nreturned = 0;
	rxhdr.msg_namelen = sizeof(struct sockaddr_storage);
	for (i = 0; i < nsocks; i++)
		arm(i);
	if ((r = io_uring_submit(&ring)) < 0) {
		printf("error: io_uring: %s\n", strerror(-r));
		return -1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct io_uring_cqe	*cqe;
	unsigned		 head, n;
	int			 r;

	if (argc != 1) {
		fprintf(stderr, "usage: uringrelay < sessions\n");
		return 2;
	}
	ref_setup(&stop);
	if (ref_read_sessions(add_socket, NULL) == -1 || setup() == -1)
		return 1;
	printf("ready\n");
	fflush(stdout);

	while (!stop) {
		r = io_uring_submit_and_wait(&ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			fprintf(stderr, "uringrelay: io_uring_enter: %s\n",
			    strerror(-r));
			return 1;
		}
		n = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			if (cqe->user_data & SEND_BIT)
				give_back((unsigned)(cqe->user_data &
				    (NBUF - 1)));
			else
				received(cqe);
			n++;
		}
		io_uring_cq_advance(&ring, n);
		if (nreturned > 0) {
			io_uring_buf_ring_advance(br, (int)nreturned);
			nreturned = 0;
		}
	}
	return 0;
}
