#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shm.h"

static size_t
shm_round(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

/* Where the ports and the slots start. */
#define SHM_PORTS_AT	shm_round(sizeof(struct shm_header), 64)
#define SHM_SLOTS_AT	(SHM_PORTS_AT + shm_round(sizeof(struct shm_ports), 64))

size_t
shm_table_size(uint32_t nslots)
{
	return SHM_SLOTS_AT + (size_t)nslots * sizeof(struct shm_slot);
}

static void
shm_set(struct shm_table *t, void *base, size_t size, const char *name)
{
	t->hdr = base;
	t->ports = (struct shm_ports *)((char *)base + SHM_PORTS_AT);
	t->slots = (struct shm_slot *)((char *)base + SHM_SLOTS_AT);
	t->nslots = t->hdr->nslots;
	t->size = size;
	snprintf(t->name, sizeof(t->name), "%s", name);
}

/*
 * Create a new table; an object left by a crashed master with the same name
 * is replaced.  Returns 0, or -1 with errno set.
 */
int
shm_create(struct shm_table *t, const char *name, uint32_t nslots)
{
	struct shm_header	*h;
	size_t			 size;
	void			*base;
	int			 fd, saved;

	memset(t, 0, sizeof(*t));
	if (nslots == 0 || strlen(name) >= sizeof(t->name)) {
		errno = EINVAL;
		return -1;
	}
	size = shm_table_size(nslots);
	(void)shm_unlink(name);
	if ((fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1)
		return -1;
	if (ftruncate(fd, (off_t)size) == -1)
		goto fail;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		goto fail;
	close(fd);

	/* ftruncate zero-fills: every slot starts SHM_FREE. */
	h = base;
	h->version = SHM_VERSION;
	h->header_size = sizeof(struct shm_header);
	h->slot_size = sizeof(struct shm_slot);
	h->nslots = nslots;
	h->total_size = size;
	atomic_store(&h->master_pid, (int64_t)getpid());
	/* Magic last: a reader that sees it sees a complete header. */
	atomic_thread_fence(memory_order_release);
	h->magic = SHM_MAGIC;

	shm_set(t, base, size, name);
	t->owner = 1;
	return 0;
fail:
	saved = errno;
	close(fd);
	shm_unlink(name);
	errno = saved;
	return -1;
}

/* Returns 0 if the header describes a table this build understands. */
int
shm_validate(const struct shm_header *h, size_t mapped)
{
	if (mapped < sizeof(*h))
		return -1;
	if (h->magic != SHM_MAGIC || h->version != SHM_VERSION)
		return -1;
	if (h->header_size != sizeof(struct shm_header) ||
	    h->slot_size != sizeof(struct shm_slot) || h->nslots == 0)
		return -1;
	if (h->total_size != shm_table_size(h->nslots) ||
	    h->total_size > mapped)
		return -1;
	return 0;
}

int
shm_attach(struct shm_table *t, const char *name)
{
	struct stat	 st;
	void		*base;
	int		 fd, saved;

	memset(t, 0, sizeof(*t));
	if (strlen(name) >= sizeof(t->name)) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = shm_open(name, O_RDWR | O_CLOEXEC, 0)) == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		goto fail;
	if ((size_t)st.st_size < sizeof(struct shm_header)) {
		errno = EPROTO;
		goto fail;
	}
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		goto fail;
	close(fd);
	atomic_thread_fence(memory_order_acquire);
	if (shm_validate(base, (size_t)st.st_size) == -1) {
		munmap(base, (size_t)st.st_size);
		errno = EPROTO;
		return -1;
	}
	shm_set(t, base, (size_t)st.st_size, name);
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

void
shm_detach(struct shm_table *t)
{
	if (t->hdr != NULL)
		munmap(t->hdr, t->size);
	t->hdr = NULL;
	t->ports = NULL;
	t->slots = NULL;
	t->nslots = 0;
}

int
shm_unlink_table(struct shm_table *t)
{
	if (t->name[0] == '\0')
		return 0;
	return shm_unlink(t->name);
}

struct shm_slot *
shm_slot(struct shm_table *t, uint32_t i)
{
	if (i >= t->nslots)
		return NULL;
	return &t->slots[i];
}

/* Clear a slot for reuse, keeping its generation. */
void
shm_slot_reset(struct shm_slot *s)
{
	uint32_t gen = atomic_load(&s->gen);

	memset((char *)s + offsetof(struct shm_slot, worker), 0,
	    sizeof(*s) - offsetof(struct shm_slot, worker));
	atomic_store(&s->gen, gen + 1);
	atomic_store_explicit(&s->state, SHM_FREE, memory_order_release);
}

/*
 * struct shm_dir is laid out by hand for the packet path: each counter of
 * the list must be one of its fields, a 64-bit atomic, and every field
 * that is not must be named here, so that none is left out of the list.
 */
#define SHM_DIR_HAS_(f, kind, proto, metric, label, help)		\
	_Static_assert(_Generic(&((struct shm_dir *)0)->f,		\
	    _Atomic uint64_t *: 1, default: 0),				\
	    #f ": not an _Atomic uint64_t of struct shm_dir");
SHM_DIR_COUNTERS(SHM_DIR_HAS_)

#define SHM_DIR_SIZE_(f, kind, proto, metric, label, help)		\
	sizeof(((struct shm_dir *)0)->f) +
#define SHM_DIR_OTHER_(f)	sizeof(((struct shm_dir *)0)->f) +
_Static_assert(SHM_DIR_COUNTERS(SHM_DIR_SIZE_)
    SHM_DIR_OTHER_(latency_sum_ns) SHM_DIR_OTHER_(latency_count)
    SHM_DIR_OTHER_(latency_max_ns) SHM_DIR_OTHER_(last_packet_ms)
    SHM_DIR_OTHER_(src) SHM_DIR_OTHER_(packets_lost)
    SHM_DIR_OTHER_(jitter_ns) SHM_DIR_OTHER_(ssrc) SHM_DIR_OTHER_(in_kernel)
    SHM_DIR_OTHER_(pt) SHM_DIR_OTHER_(pad2) SHM_DIR_OTHER_(pad3)
    SHM_DIR_OTHER_(q) SHM_DIR_OTHER_(dtmf) 0 == sizeof(struct shm_dir),
    "a field of struct shm_dir is neither in SHM_DIR_COUNTERS nor named");

#define SHM_COUNTER_(f, k, proto, m, l, h)				\
	{ #f, SHM_CK_##k, m, l, h, offsetof(struct shm_totals, f) },
const struct shm_counter shm_counters[SHM_C_N] = {
	SHM_DIR_COUNTERS(SHM_COUNTER_)
};

/* Fold a finished session's counters into the totals of the gone. */
void
shm_totals_add(struct shm_totals *t, const struct shm_dir *d)
{
#define SHM_ADD_(f, kind, proto, metric, label, help)			\
	t->f += SHM_LOAD(&d->f);
	SHM_DIR_COUNTERS(SHM_ADD_)
#undef SHM_ADD_
	t->packets_lost += SHM_LOAD(&d->packets_lost);
	t->latency_sum_ns += SHM_LOAD(&d->latency_sum_ns);
	t->latency_count += SHM_LOAD(&d->latency_count);
}

/*
 * A resumed session's counters, before any worker has its slot (so
 * that they go on from where another node left them).
 */
void
shm_dir_load(struct shm_dir *d, const struct shm_totals *t)
{
#define SHM_SET_(f, kind, proto, metric, label, help)			\
	atomic_store_explicit(&d->f, t->f, memory_order_relaxed);
	SHM_DIR_COUNTERS(SHM_SET_)
#undef SHM_SET_
	atomic_store_explicit(&d->packets_lost, t->packets_lost,
	    memory_order_relaxed);
	atomic_store_explicit(&d->latency_sum_ns, t->latency_sum_ns,
	    memory_order_relaxed);
	atomic_store_explicit(&d->latency_count, t->latency_count,
	    memory_order_relaxed);
}

/* Counter SHM_C_* of the totals. */
uint64_t
shm_totals_get(const struct shm_totals *t, int c)
{
	uint64_t v;

	memcpy(&v, (const char *)t + shm_counters[c].off, sizeof(v));
	return v;
}

/* The sum of the drops, by every reason. */
uint64_t
shm_totals_dropped(const struct shm_totals *t)
{
	uint64_t	n = 0;
	int		c;

	for (c = 0; c < SHM_C_N; c++)
		if (shm_counters[c].kind == SHM_CK_DROP)
			n += shm_totals_get(t, c);
	return n;
}

/*
 * The latency histogram bucket of ns: k for at most 2^k microseconds
 * (k = 0 .. SHM_LAT_BUCKETS - 2), the last bucket for anything longer.
 */
int
shm_lat_bucket(uint64_t ns)
{
	uint64_t	us = (ns + 999) / 1000;
	int		k;

	if (us <= 1)
		return 0;
	k = 64 - __builtin_clzll(us - 1);
	return k < SHM_LAT_BUCKETS - 1 ? k : SHM_LAT_BUCKETS - 1;
}

int
shm_addr_from_sa(struct shm_addr *a, const struct sockaddr *sa)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		a->family = AF_INET;
		a->port = ntohs(sin->sin_port);
		memcpy(a->addr, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		a->family = AF_INET6;
		a->port = ntohs(sin6->sin6_port);
		a->scope_id = sin6->sin6_scope_id;
		memcpy(a->addr, &sin6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

socklen_t
shm_addr_to_sa(const struct shm_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (void *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		memcpy(&sin->sin_addr, a->addr, 4);
		return sizeof(*sin);
	}
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (void *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		sin6->sin6_scope_id = a->scope_id;
		memcpy(&sin6->sin6_addr, a->addr, 16);
		return sizeof(*sin6);
	}
	return 0;
}

int
shm_addr_eq_sa(const struct shm_addr *a, const struct sockaddr *sa)
{
	if (sa->sa_family != a->family)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		return ntohs(sin->sin_port) == a->port &&
		    memcmp(&sin->sin_addr, a->addr, 4) == 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		return ntohs(sin6->sin6_port) == a->port &&
		    memcmp(&sin6->sin6_addr, a->addr, 16) == 0;
	}
	return 0;
}

/* The address without its port, for display. */
const char *
shm_addr_ntop(const struct shm_addr *a, char *buf, size_t len)
{
	if (a->family != AF_INET && a->family != AF_INET6) {
		if (len > 0)
			buf[0] = '\0';
		return buf;
	}
	if (inet_ntop(a->family, a->addr, buf, (socklen_t)len) == NULL &&
	    len > 0)
		buf[0] = '\0';
	return buf;
}

/* Cumulative loss / expected, within [0, 1]. */
double
shm_loss_rate(const struct shm_dir *dir)
{
	uint64_t	expected;
	int64_t		lost;

	expected = atomic_load_explicit(&dir->packets_expected,
	    memory_order_relaxed);
	lost = atomic_load_explicit(&dir->packets_lost, memory_order_relaxed);
	if (expected == 0 || lost <= 0)
		return 0.0;
	if ((uint64_t)lost >= expected)
		return 1.0;
	return (double)lost / (double)expected;
}

/* The names of the table's enumerations, for logs, replies and metrics. */
#define SHM_NAME_(name, num, word)	[num] = word,
static const char *const shm_state_names[] = {
	SHM_STATES(SHM_NAME_)
};

const char *
shm_state_name(uint32_t st)
{
	return st < sizeof(shm_state_names) / sizeof(shm_state_names[0]) ?
	    shm_state_names[st] : "?";
}

#define SHM_CLOSE_NAME_(name, word)	[SHM_CLOSE_##name] = word,
static const char *const shm_close_names[SHM_CLOSE_N] = {
	SHM_CLOSE_REASONS(SHM_CLOSE_NAME_)
};

const char *
shm_close_name(enum shm_close why)
{
	return why < SHM_CLOSE_N ? shm_close_names[why] : "other";
}

static const char *const shm_latch_names[SHM_LATCH_N] = {
	SHM_LATCH_POLICIES(SHM_NAME_)
};

/* A latch policy's word, or "?". */
const char *
shm_latch_name(int p)
{
	return p > 0 && p < SHM_LATCH_N && shm_latch_names[p] != NULL ?
	    shm_latch_names[p] : "?";
}

/* SHM_LATCH_* of a word, or -1. */
int
shm_latch_from_name(const char *s)
{
	int p;

	for (p = 1; p < SHM_LATCH_N; p++)
		if (shm_latch_names[p] != NULL &&
		    strcmp(s, shm_latch_names[p]) == 0)
			return p;
	return -1;
}
