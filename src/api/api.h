/*
 * The API as the master sees it: the gRPC service (grpcsvc.c, with the
 * gate of apigate.c in front) on the master's loop.
 */
#ifndef RTPPROXYD_API_H
#define RTPPROXYD_API_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct event_base;
struct rp_error;
struct session_snapshot;
struct session_event;
struct shm_table;

/* grpcsvc.c: the gRPC service on the master's loop */
int	grpcsvc_start(struct event_base *, const struct config *);
void	grpcsvc_publish(const struct session_event *);
int	grpcsvc_subscribers(void);
const char *grpcsvc_method_path(int);
void	grpcsvc_drain(void (*)(void));
void	grpcsvc_stop(void);
void	grpcsvc_reconfigure(const struct config *);
void	grpcsvc_set_table(struct shm_table *);

/* A page of another node's sessions, as read from Redis. */
struct api_ha_list {
	const struct rp_error		*err;	/* NULL: the page */
	size_t				 n;
	const struct session_snapshot	*snap;
	const char *const		*node;	/* each one's owner */
	const char			*next;	/* "": the last page */
};

/* A takeover's outcome, or why it could not run (err). */
struct api_ha_take {
	const struct rp_error	*err;	/* NULL: it ran */
	const char		*node;	/* taken over */
	uint32_t		 found;	/* ids in its set */
	uint32_t		 resumed, skipped, failed;
	uint32_t		 owned, running, invalid;	/* skipped: why */
};

/*
 * High availability (src/repl), NULLs for none: HaTakeover, answered
 * later through done(arg, outcome) unless it fails at once; this node's
 * node-id; ListSessions of another node (or "*": all) with a state filter
 * (0: any), a page size and its page token ("": the first page; checked
 * there), answered later through done(arg, page) unless it fails at once
 * (-1, err).
 */
struct api_ha {
	int		(*takeover)(const char *,
			    void (*)(void *, const struct api_ha_take *),
			    void *, struct rp_error *);
	const char	*(*node)(void);
	int		(*list)(const char *, uint32_t, uint32_t,
			    const char *,
			    void (*)(void *, const struct api_ha_list *),
			    void *, struct rp_error *);
};
void	grpcsvc_set_ha(const struct api_ha *);

#endif
