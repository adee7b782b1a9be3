/*
 * The gate's clients: an address (any port), or a local user on a unix
 * socket, with what its connections may spend (h2scan's rates) and how
 * many it has.  A client is remembered for a minute after its last
 * connection closed, so that one that reconnects does not start afresh.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <string.h>

#include "common.h"
#include "gate_int.h"

/* A client's key: its address without the port, or its user. */
static void
gate_key(uint8_t key[17], const struct sockaddr_storage *a, int unix_sock,
    uid_t uid)
{
	memset(key, 0, 17);
	if (unix_sock)
		memcpy(key + 1, &uid, sizeof(uid));
	else if (a->ss_family == AF_INET) {
		key[0] = AF_INET;
		memcpy(key + 1, &((const struct sockaddr_in *)a)->sin_addr, 4);
	} else {
		key[0] = AF_INET6;
		memcpy(key + 1, &((const struct sockaddr_in6 *)a)->sin6_addr,
		    16);
	}
}

static struct gate_bucket *
gate_bucket_of(struct gate_clients *cs, const uint8_t key[17])
{
	uint32_t	h = 2166136261u;
	int		i;

	for (i = 0; i < 17; i++)
		h = (h ^ key[i]) * 16777619u;
	return &cs->hash[h % GATE_HASH];
}

static void
gate_client_forget(struct gate_clients *cs, struct gate_client *cl)
{
	TAILQ_REMOVE(&cs->idle, cl, idle);
	cs->nidle--;
	LIST_REMOVE(cl, hash);
	free(cl);
}

/* The client of a new connection, found or made; one more connection. */
struct gate_client *
gate_client_get(struct gate_clients *cs, const struct sockaddr_storage *a,
    int unix_sock, uid_t uid)
{
	struct gate_bucket	*b;
	struct gate_client	*cl;
	uint8_t			 key[17];
	int64_t			 now = mono_ms();

	/* Those gone quiet long enough are forgotten. */
	while ((cl = TAILQ_FIRST(&cs->idle)) != NULL &&
	    (now - cl->idle_since > GATE_CLIENT_KEEP_MS ||
	    cs->nidle > GATE_CLIENTS_IDLE))
		gate_client_forget(cs, cl);
	gate_key(key, a, unix_sock, uid);
	b = gate_bucket_of(cs, key);
	LIST_FOREACH(cl, b, hash)
		if (memcmp(cl->key, key, sizeof(key)) == 0)
			break;
	if (cl == NULL) {
		cl = xcalloc(1, sizeof(*cl));
		memcpy(cl->key, key, sizeof(key));
		LIST_INSERT_HEAD(b, cl, hash);
	} else if (cl->nconns == 0) {
		TAILQ_REMOVE(&cs->idle, cl, idle);
		cs->nidle--;
	}
	cl->nconns++;
	return cl;
}

void
gate_client_put(struct gate_clients *cs, struct gate_client *cl)
{
	if (--cl->nconns > 0)
		return;
	cl->idle_since = mono_ms();
	TAILQ_INSERT_TAIL(&cs->idle, cl, idle);
	cs->nidle++;
}

void
gate_clients_init(struct gate_clients *cs)
{
	memset(cs, 0, sizeof(*cs));
	TAILQ_INIT(&cs->idle);
}

/* Forget them all: only those with no connection are left by then. */
void
gate_clients_free(struct gate_clients *cs)
{
	while (!TAILQ_EMPTY(&cs->idle))
		gate_client_forget(cs, TAILQ_FIRST(&cs->idle));
}
