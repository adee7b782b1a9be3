/*
 * Recording sessions to pcap files, off the packet path.
 *
 * The relay's thread copies what it forwarded into a ring of the worker's
 * own (one producer, one consumer, preallocated): one memcpy a packet, no
 * allocation, no system call, no lock.  When the ring is full the copy is
 * dropped and counted in the slot.  A writer thread drains the ring,
 * puts an IPv4 or IPv6 and a UDP header of the real addresses before
 * each packet, and writes whole pcap records with write(2), so that a
 * file cut short by a killed worker still ends on a record.  The relay's
 * thread also puts its commands (a file to open, one to close) in the
 * ring, so they keep their order with the packets.  The writer never
 * touches the session table (a slot may be reused before the writer is
 * done with it): it says how a file goes in its own rec_file, which the
 * relay's thread copies into the slot while the session is its own
 * (rec_status, relay_sess.c).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"

#define REC_RING	(4u << 20)	/* bytes, a power of two */
#define REC_RING_TEST	(64u << 10)	/* with the rec-stall failpoint */
#define REC_BUF		65536		/* a file's write buffer */
#define REC_IDLE_NS	5000000		/* the writer's nap when idle */
#define REC_FLUSH_NS	500000000LL	/* buffered at most this long */
#define REC_NAME_TRIES	100		/* parts skipped when names exist */

enum { REC_PKT = 1, REC_OPEN, REC_CLOSE, REC_PAD, REC_QUIT };

/* A record in the ring; 8-aligned, never split at the ring's end. */
struct rec_hdr {
	uint32_t	len;		/* all of it, aligned */
	uint16_t	type;
	uint8_t		flags;		/* REC_F_* */
	uint8_t		pad0;
	uint32_t	slot;
	uint32_t	caplen;
	int64_t		ns;
	struct shm_addr	dst;
};

struct rec_open {
	struct rec_hdr	h;
	uint32_t	gen;
	uint32_t	serial;
	uint32_t	part;		/* the number in path */
	uint32_t	stem;		/* path's length before it */
	struct shm_addr	listen, forward;
	char		path[512];
};

/*
 * A file as the writer keeps it.  serial, state, part, packets and error
 * are what the relay's thread reads: serial is stored last (release), so
 * a reader that sees the serial it started sees that file's figures.
 */
struct rec_file {
	_Atomic uint32_t serial;	/* of the OPEN done */
	_Atomic uint32_t state;		/* SHM_REC_* */
	_Atomic uint32_t part;		/* the part opened: a name was free */
	_Atomic uint64_t packets;	/* written to this file */
	char		 error[128];
	int		 fd;		/* -1: none */
	int		 failed;
	uint32_t	 gen;
	struct shm_addr	 src[4];	/* by REC_F_REV | REC_F_RTCP */
	struct shm_addr	 dst_seen[4];	/* the destination src was found for */
	uint8_t		*buf;
	size_t		 used;
	int64_t		 first_ns;	/* of what is buffered */
	char		 path[512];
};

struct rec {
	struct shm_table	*shm;
	uint8_t			*ring;
	size_t			 size;		/* of the ring */
	int			 stall;		/* a test's slow disk */
	_Atomic uint64_t	 head;		/* the relay's thread */
	_Atomic uint64_t	 tail;		/* the writer */
	uint64_t		 head_local;	/* written, not yet published */
	struct rec_file		*files;		/* by slot; the writer's */
	pthread_t		 thread;
	int			 running;
	uint32_t		 serial;	/* the last OPEN's */
};

/* A string into a smaller buffer, cut if it must be. */
static void
rec_copy(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static size_t
rec_align(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/*
 * Room for n bytes at the ring's head, or NULL.  A record that would cross
 * the end leaves a PAD record there and starts again at the beginning.
 */
static uint8_t *
rec_reserve(struct rec *r, size_t n)
{
	uint64_t	tail = atomic_load_explicit(&r->tail,
			    memory_order_acquire);
	uint64_t	head = r->head_local;
	size_t		at = (size_t)(head & (r->size - 1));
	size_t		to_end = r->size - at;
	struct rec_hdr	*pad;

	if (n > to_end) {
		if (r->size - (head - tail) < to_end + n)
			return NULL;
		pad = (struct rec_hdr *)(r->ring + at);
		pad->len = (uint32_t)to_end;
		pad->type = REC_PAD;
		r->head_local = head += to_end;
		at = 0;
	}
	if (r->size - (head - tail) < n)
		return NULL;
	return r->ring + at;
}

static void
rec_publish(struct rec *r)
{
	atomic_store_explicit(&r->head, r->head_local, memory_order_release);
}

/*
 * The packet path: copies of the datagrams of one batch that were sent
 * (ok[i]) to dst, of slot's direction flags.  What finds no room counts
 * in the slot's dropped.
 */
void
rec_put_batch(struct rec *r, struct shm_slot *s, uint32_t slot, int flags,
    const struct iovec *iov, const uint8_t *ok, const int64_t *ns, int n,
    const struct sockaddr *dst)
{
	struct rec_hdr	*h;
	struct shm_addr	 d;
	uint64_t	 dropped = 0;
	size_t		 len, need;
	int		 i;

	if (shm_addr_from_sa(&d, dst) == -1)
		return;
	for (i = 0; i < n; i++) {
		if (!ok[i])
			continue;
		len = iov[i].iov_len;
		need = rec_align(sizeof(*h) + len);
		if ((h = (struct rec_hdr *)rec_reserve(r, need)) == NULL) {
			dropped++;
			continue;
		}
		h->len = (uint32_t)need;
		h->type = REC_PKT;
		h->flags = (uint8_t)flags;
		h->slot = slot;
		h->caplen = (uint32_t)len;
		h->ns = ns[i];
		h->dst = d;
		memcpy(h + 1, iov[i].iov_base, len);
		r->head_local += need;
	}
	rec_publish(r);
	if (dropped > 0)
		SHM_ADD(&s->rec.dropped, dropped);
}

/* A command in the ring: the relay's thread waits for room, briefly. */
static int
rec_command(struct rec *r, const void *m, size_t len)
{
	struct timespec	 nap = { 0, 1000000 };
	uint8_t		*p;
	int		 i;

	for (i = 0; i < 2000; i++) {
		if ((p = rec_reserve(r, rec_align(len))) != NULL) {
			memcpy(p, m, len);
			((struct rec_hdr *)p)->len = (uint32_t)rec_align(len);
			r->head_local += rec_align(len);
			rec_publish(r);
			return 0;
		}
		nanosleep(&nap, NULL);
	}
	return -1;
}

static void
rec_fail(struct rec *r, uint32_t slot, struct rec_file *f, const char *what,
    int err)
{
	const char	*base = strrchr(f->path, '/');
	char		 why[sizeof(f->path) + 128];

	snprintf(why, sizeof(why), "%s %s: %s", what, base != NULL ?
	    base + 1 : f->path, strerror(err));
	rec_copy(f->error, sizeof(f->error), why);
	atomic_store_explicit(&f->state, SHM_REC_FAILED, memory_order_release);
	log_warnx("recording of slot %u failed: %s; media flows on", slot,
	    why);
	if (f->fd != -1)
		close(f->fd);
	f->fd = -1;
	f->failed = 1;
	f->used = 0;
}

/* Write what is buffered: whole records only, or fail the file. */
static void
rec_flush(struct rec *r, uint32_t slot, struct rec_file *f)
{
	size_t	off = 0;
	ssize_t	n;

	while (off < f->used) {
		n = write(f->fd, f->buf + off, f->used - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			rec_fail(r, slot, f, "writing", n == 0 ? ENOSPC :
			    errno);
			return;
		}
		off += (size_t)n;
	}
	f->used = 0;
}

/* pcap's file header: nanosecond stamps, raw IP. */
static void
rec_file_header(struct rec_file *f)
{
	struct {
		uint32_t	magic;
		uint16_t	major, minor;
		int32_t		zone;
		uint32_t	sigfigs, snaplen, linktype;
	} ph = { 0xa1b23c4d, 2, 4, 0, 0, 65535, 101 };

	memcpy(f->buf, &ph, sizeof(ph));
	f->used = sizeof(ph);
}

static void
rec_do_open(struct rec *r, const struct rec_open *o)
{
	struct rec_file	*f = &r->files[o->h.slot];
	int		 k;

	if (f->fd != -1) {
		rec_flush(r, o->h.slot, f);
		if (f->fd != -1)
			close(f->fd);
	}
	memset(f->src, 0, sizeof(f->src));
	memset(f->dst_seen, 0, sizeof(f->dst_seen));
	f->fd = -1;
	f->failed = 0;
	f->used = 0;
	f->gen = o->gen;
	f->error[0] = '\0';
	atomic_store_explicit(&f->packets, 0, memory_order_relaxed);
	atomic_store_explicit(&f->state, SHM_REC_ACTIVE, memory_order_relaxed);
	atomic_store_explicit(&f->part, o->part, memory_order_relaxed);
	atomic_store_explicit(&f->serial, o->serial, memory_order_release);
	snprintf(f->path, sizeof(f->path), "%s", o->path);
	for (k = 0; k < 4; k++) {
		f->src[k] = (k & REC_F_REV) ? o->listen : o->forward;
		f->src[k].port = (uint16_t)(f->src[k].port +
		    ((k & REC_F_RTCP) ? 1 : 0));
	}
	if (f->buf == NULL && (f->buf = malloc(REC_BUF)) == NULL) {
		rec_fail(r, o->h.slot, f, "no memory for", ENOMEM);
		return;
	}
	/*
	 * Not readable by others: media is personal data.  A name taken
	 * already is another's part (the session's own before a restart or
	 * a takeover, begun after its record was last written): never
	 * overwritten, the next part's name instead, as the slot learns
	 * (rec_status).
	 */
	for (k = 0;; k++) {
		f->fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0640);
		if (f->fd != -1 || errno != EEXIST || o->stem == 0 ||
		    k + 1 >= REC_NAME_TRIES || o->part + (uint32_t)k + 1 == 0)
			break;
		log_info("recording of slot %u: %s exists, the next part "
		    "instead", o->h.slot, f->path);
		snprintf(f->path + o->stem, sizeof(f->path) - o->stem,
		    "%u.pcap", o->part + (uint32_t)k + 1);
		atomic_store_explicit(&f->part, o->part + (uint32_t)k + 1,
		    memory_order_release);
	}
	if (f->fd == -1) {
		rec_fail(r, o->h.slot, f, "cannot create", errno);
		return;
	}
	if (fchmod(f->fd, 0640) == -1) {
		rec_fail(r, o->h.slot, f, "cannot set the mode of", errno);
		return;
	}
	rec_file_header(f);
	f->first_ns = 0;
	rec_flush(r, o->h.slot, f);
}

/* The final count in the log: this file's, and the session's drops. */
static void
rec_do_close(struct rec *r, const struct rec_hdr *h)
{
	struct rec_file	*f = &r->files[h->slot];

	if (f->fd != -1)
		rec_flush(r, h->slot, f);
	if (f->fd != -1) {
		close(f->fd);
		f->fd = -1;
		log_info("recording %s closed: %llu packets written, %lld "
		    "dropped", f->path, (unsigned long long)atomic_load(
		    &f->packets), (long long)h->ns);
	}
	/* A failed one keeps its error, and has ended too. */
	if (h->flags)
		atomic_store_explicit(&f->state, SHM_REC_STOPPED,
		    memory_order_release);
}

/*
 * The address a datagram to dst leaves from, when the socket is bound to
 * the wildcard: what the routing table picks (a connected UDP socket
 * says, no packet sent).
 */
static void
rec_route_src(struct shm_addr *src, const struct shm_addr *dst)
{
	struct sockaddr_storage	ss, me;
	socklen_t		len, mlen = sizeof(me);
	uint16_t		port = src->port;
	int			fd;

	if ((len = shm_addr_to_sa(dst, &ss)) == 0 ||
	    (fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (connect(fd, (struct sockaddr *)&ss, len) == 0 &&
	    getsockname(fd, (struct sockaddr *)&me, &mlen) == 0 &&
	    shm_addr_from_sa(src, (struct sockaddr *)&me) == 0)
		src->port = port;
	close(fd);
}

static int
rec_wildcard(const struct shm_addr *a)
{
	static const uint8_t zero[16];

	return memcmp(a->addr, zero, a->family == AF_INET6 ? 16 : 4) == 0;
}

static uint16_t
rec_csum_add(uint32_t sum, const void *p, size_t n)
{
	const uint8_t	*b = p;
	size_t		 i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		sum += (uint32_t)(b[n - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* One packet as a pcap record: IP and UDP headers of the real addresses. */
static void
rec_do_packet(struct rec *r, const struct rec_hdr *h)
{
	struct rec_file	*f = &r->files[h->slot];
	struct shm_addr	*src = &f->src[h->flags & 3];
	uint8_t		*p;
	size_t		 iplen, total;
	uint32_t	 rec4[4];
	uint16_t	 sum;
	int		 v6 = h->dst.family == AF_INET6;

	if (f->fd == -1)
		return;
	if (rec_wildcard(src) && memcmp(&f->dst_seen[h->flags & 3], &h->dst,
	    sizeof(h->dst)) != 0) {
		rec_route_src(src, &h->dst);
		f->dst_seen[h->flags & 3] = h->dst;
	}
	iplen = (v6 ? 40 : 20) + 8 + h->caplen;
	total = 16 + iplen;
	if (f->used + total > REC_BUF) {
		rec_flush(r, h->slot, f);
		if (f->fd == -1)
			return;
	}
	if (f->used == 0)
		f->first_ns = h->ns;
	p = f->buf + f->used;
	rec4[0] = (uint32_t)(h->ns / 1000000000);
	rec4[1] = (uint32_t)(h->ns % 1000000000);
	rec4[2] = rec4[3] = (uint32_t)iplen;
	memcpy(p, rec4, 16);
	p += 16;
	if (!v6) {
		memset(p, 0, 20);
		p[0] = 0x45;
		p[2] = (uint8_t)(iplen >> 8);
		p[3] = (uint8_t)iplen;
		p[6] = 0x40;		/* don't fragment */
		p[8] = 64;
		p[9] = IPPROTO_UDP;
		memcpy(p + 12, src->addr, 4);
		memcpy(p + 16, h->dst.addr, 4);
		sum = (uint16_t)~rec_csum_add(0, p, 20);
		p[10] = (uint8_t)(sum >> 8);
		p[11] = (uint8_t)sum;
		p += 20;
	} else {
		memset(p, 0, 40);
		p[0] = 0x60;
		p[4] = (uint8_t)((8 + h->caplen) >> 8);
		p[5] = (uint8_t)(8 + h->caplen);
		p[6] = IPPROTO_UDP;
		p[7] = 64;
		memcpy(p + 8, src->addr, 16);
		memcpy(p + 24, h->dst.addr, 16);
		p += 40;
	}
	p[0] = (uint8_t)(src->port >> 8);
	p[1] = (uint8_t)src->port;
	p[2] = (uint8_t)(h->dst.port >> 8);
	p[3] = (uint8_t)h->dst.port;
	p[4] = (uint8_t)((8 + h->caplen) >> 8);
	p[5] = (uint8_t)(8 + h->caplen);
	p[6] = p[7] = 0;
	memcpy(p + 8, h + 1, h->caplen);
	if (v6) {
		/* Mandatory over IPv6: the pseudo-header, then the datagram. */
		uint8_t ph[40];

		memcpy(ph, src->addr, 16);
		memcpy(ph + 16, h->dst.addr, 16);
		memset(ph + 32, 0, 8);
		ph[34] = (uint8_t)((8 + h->caplen) >> 8);
		ph[35] = (uint8_t)(8 + h->caplen);
		ph[39] = IPPROTO_UDP;
		sum = rec_csum_add(rec_csum_add(0, ph, 40), p, 8 + h->caplen);
		sum = (uint16_t)~sum;
		if (sum == 0)
			sum = 0xffff;
		p[6] = (uint8_t)(sum >> 8);
		p[7] = (uint8_t)sum;
	}
	f->used += total;
	SHM_ADD(&f->packets, 1);
}

static int64_t
rec_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Files whose buffer waited long enough, and files removed under us (a
 * directory that went away): the recording would be lost, so say so.
 */
static void
rec_tick(struct rec *r)
{
	struct stat	 st;
	struct rec_file	*f;
	uint32_t	 i;

	for (i = 0; i < r->shm->nslots; i++) {
		f = &r->files[i];
		if (f->fd == -1)
			continue;
		if (f->used > 0)
			rec_flush(r, i, f);
		if (f->fd != -1 && fstat(f->fd, &st) == 0 && st.st_nlink == 0)
			rec_fail(r, i, f, "removed while recording:", ENOENT);
	}
}

static void *
rec_thread(void *arg)
{
	struct rec		*r = arg;
	struct timespec		 nap = { 0, REC_IDLE_NS };
	const struct rec_hdr	*h;
	uint64_t		 head, tail;
	int64_t			 last_tick = rec_mono_ns(), now;
	int			 quit = 0;

	while (!quit) {
		head = atomic_load_explicit(&r->head, memory_order_acquire);
		tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
		if (head == tail || r->stall)
			nanosleep(&nap, NULL);
		if (r->stall && head != tail) {
			struct timespec slow = { r->stall, 0 };

			nanosleep(&slow, NULL);
		}
		while (tail != head) {
			h = (const struct rec_hdr *)(r->ring +
			    (tail & (r->size - 1)));
			/* A PAD may be 8 octets at the end: type first. */
			if (h->type == REC_QUIT)
				quit = 1;
			else if (h->type != REC_PAD &&
			    h->slot < r->shm->nslots) {
				switch (h->type) {
				case REC_PKT:
					rec_do_packet(r, h);
					break;
				case REC_OPEN:
					rec_do_open(r,
					    (const struct rec_open *)h);
					break;
				case REC_CLOSE:
					rec_do_close(r, h);
					break;
				}
			}
			tail += h->len;
			atomic_store_explicit(&r->tail, tail,
			    memory_order_release);
		}
		now = rec_mono_ns();
		if (now - last_tick >= REC_FLUSH_NS || quit) {
			rec_tick(r);
			last_tick = now;
		}
	}
	return NULL;
}

/* The recorder of a worker: its ring and writer thread.  NULL: failed. */
struct rec *
rec_new(struct shm_table *shm)
{
	struct rec	*r;
	sigset_t	 all, old;
	const char	*fp;
	uint32_t	 i;
	int		 e;

	r = xcalloc(1, sizeof(*r));
	r->shm = shm;
	r->size = REC_RING;
	/*
	 * For the tests only: RTPPROXYD_FAILPOINT=rec-stall[:SECONDS] gives
	 * a small ring and a writer that takes a second (or SECONDS, 1-60) a
	 * turn, as a slow disk would.
	 */
	if ((fp = getenv("RTPPROXYD_FAILPOINT")) != NULL &&
	    strncmp(fp, "rec-stall", 9) == 0 &&
	    (fp[9] == '\0' || fp[9] == ':')) {
		r->size = REC_RING_TEST;
		r->stall = fp[9] == ':' ? atoi(fp + 10) : 1;
		if (r->stall < 1 || r->stall > 60)
			r->stall = 1;
	}
	r->ring = xcalloc(1, r->size);
	r->files = xcalloc(shm->nslots, sizeof(*r->files));
	for (i = 0; i < shm->nslots; i++)
		r->files[i].fd = -1;
	/* The loop's signals stay with the loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e = pthread_create(&r->thread, NULL, rec_thread, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		errno = e;
		log_warn("recording: pthread_create");
		free(r->files);
		free(r->ring);
		free(r);
		return NULL;
	}
	r->running = 1;
	return r;
}

/* The writer finishes what is in the ring, closes every file and ends. */
void
rec_free(struct rec *r)
{
	struct rec_hdr	h;
	uint32_t	i;

	if (r == NULL)
		return;
	memset(&h, 0, sizeof(h));
	h.type = REC_QUIT;
	if (rec_command(r, &h, sizeof(h)) == 0)
		pthread_join(r->thread, NULL);
	else
		pthread_cancel(r->thread);
	for (i = 0; i < r->shm->nslots; i++) {
		if (r->files[i].fd != -1) {
			rec_flush(r, i, &r->files[i]);
			if (r->files[i].fd != -1)
				close(r->files[i].fd);
		}
		free(r->files[i].buf);
	}
	free(r->files);
	free(r->ring);
	free(r);
}

/*
 * A part's file name: dir/ID-CREATED-PART.pcap, or without the directory
 * when dir is NULL.
 */
void
rec_name(char *buf, size_t len, const char *dir, const struct shm_slot *s,
    uint32_t part)
{
	snprintf(buf, len, "%s%s%s-%lld-%u.pcap", dir != NULL ? dir : "",
	    dir != NULL ? "/" : "", s->id, (long long)s->created_ms, part);
}

/*
 * Begin a file (a new part) for slot: path in dir, named after the
 * session, its creation and the part.  The file's serial for rec_status,
 * or 0 when there is no directory or the ring stays full.
 */
uint32_t
rec_start(struct rec *r, uint32_t slot, uint32_t gen)
{
	struct shm_slot	*s = shm_slot(r->shm, slot);
	struct rec_open	 o;
	char		 dir[sizeof(r->shm->hdr->rec_dir)];
	const char	*base;
	int		 n;

	if (s == NULL)
		return 0;
	memcpy(dir, r->shm->hdr->rec_dir, sizeof(dir));
	dir[sizeof(dir) - 1] = '\0';
	memset(&o, 0, sizeof(o));
	o.h.type = REC_OPEN;
	o.h.slot = slot;
	o.gen = gen;
	o.listen = s->listen;
	o.forward = s->forward;
	if (++r->serial == 0)
		r->serial = 1;
	o.serial = r->serial;
	s->rec.parts++;
	o.part = s->rec.parts;
	n = snprintf(o.path, sizeof(o.path), "%s/%s-%lld-", dir, s->id,
	    (long long)s->created_ms);
	/* A path cut short has no part to change: it fails as it is. */
	o.stem = n > 0 && (size_t)n + 16 < sizeof(o.path) ? (uint32_t)n : 0;
	rec_name(o.path, sizeof(o.path), dir, s, o.part);
	base = strrchr(o.path, '/') != NULL ? strrchr(o.path, '/') + 1 :
	    o.path;
	rec_copy(s->rec.file, sizeof(s->rec.file), base);
	if (dir[0] == '\0') {
		snprintf(s->rec.error, sizeof(s->rec.error), "no "
		    "recording-dir is configured");
		atomic_store_explicit(&s->rec.state, SHM_REC_FAILED,
		    memory_order_release);
		return 0;
	}
	if (rec_command(r, &o, sizeof(o)) == -1)
		return 0;
	return o.serial;
}

/*
 * How the file of that serial goes: 0 with its state, part, packets
 * written and error (len octets), or -1 when the writer has not opened
 * it yet (or has gone on to another).
 */
int
rec_status(struct rec *r, uint32_t slot, uint32_t serial, uint32_t *state,
    uint32_t *part, uint64_t *packets, char *err, size_t len)
{
	struct rec_file *f;

	if (slot >= r->shm->nslots)
		return -1;
	f = &r->files[slot];
	if (atomic_load_explicit(&f->serial, memory_order_acquire) != serial)
		return -1;
	*state = atomic_load_explicit(&f->state, memory_order_acquire);
	*part = atomic_load_explicit(&f->part, memory_order_acquire);
	*packets = atomic_load_explicit(&f->packets, memory_order_relaxed);
	rec_copy(err, len, f->error);
	return atomic_load_explicit(&f->serial, memory_order_acquire) ==
	    serial ? 0 : -1;
}

/*
 * Close slot's file; stopped: asked to (else the session went); dropped:
 * the session's count, for the log.
 */
void
rec_stop(struct rec *r, uint32_t slot, int stopped, uint64_t dropped)
{
	struct rec_hdr h;

	memset(&h, 0, sizeof(h));
	h.type = REC_CLOSE;
	h.slot = slot;
	h.flags = (uint8_t)(stopped != 0);
	h.ns = (int64_t)dropped;
	if (rec_command(r, &h, sizeof(h)) == -1)
		log_warnx("recording of slot %u: the writer is stuck", slot);
}
