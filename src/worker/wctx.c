/*
 * What the packet path's two halves (relay.c for UDP, tcp.c for TCP) share
 * about the worker they run in: where reports go, the worker's counters in
 * the table (and the slot it is busy with, which names the session a crash
 * is blamed on), and a private copy of the published destination rules.
 * Both hold one; neither calls the other or the worker for these.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "worker.h"

void
wctx_init(struct wctx *x, struct shm_table *shm, const struct relay_sink *sink)
{
	memset(x, 0, sizeof(*x));
	x->shm = shm;
	x->sink = *sink;
}

/* Where the worker's latency histogram and busy slot go (id < 0: none). */
void
wctx_set_worker(struct wctx *x, int id)
{
	x->wstats = id >= 0 && id < SHM_MAX_WORKERS ?
	    &x->shm->hdr->workers[id] : NULL;
}

/* A report about slot to whoever runs the relay (IPC_ERROR: and why). */
void
wctx_report(struct wctx *x, uint16_t type, uint32_t slot, uint32_t gen,
    int err, const char *reason)
{
	struct ipc_error m;

	ipc_init(&m.hdr, type, 0, slot, gen);
	if (type == IPC_ERROR || type == IPC_RECORDING) {
		m.err = err;
		snprintf(m.reason, sizeof(m.reason), "%s",
		    reason != NULL ? reason : "");
	}
	x->sink.tell(x->sink.arg, &m.hdr, NULL, 0);
}

void
wctx_tell(struct wctx *x, struct ipc_hdr *h, const int *fds, int nfds)
{
	x->sink.tell(x->sink.arg, h, fds, nfds);
}

/* The published destination rules, copied again when they changed. */
const struct shm_acl *
wctx_acl(struct wctx *x)
{
	const struct shm_acl *shared = &x->shm->hdr->acl;

	if (atomic_load_explicit(&shared->seq, memory_order_acquire) !=
	    atomic_load_explicit(&x->acl.seq, memory_order_relaxed))
		(void)acl_snapshot(shared, &x->acl);	/* else keep the old */
	return &x->acl;
}

/*
 * The table says which slot the worker works on, so that a crash names
 * the session that may have caused it (workers.c): a store per ready
 * socket, not per packet.
 */
void
wctx_busy(struct wctx *x, uint32_t slot, uint32_t gen)
{
	if (x->wstats != NULL)
		atomic_store_explicit(&x->wstats->busy, SHM_BUSY(slot, gen),
		    memory_order_relaxed);
}

void
wctx_idle(struct wctx *x)
{
	if (x->wstats != NULL)
		atomic_store_explicit(&x->wstats->busy, 0,
		    memory_order_relaxed);
}
