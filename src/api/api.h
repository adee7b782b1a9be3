/*
 * The API as the master sees it: the gRPC service (grpcsvc.c, with the
 * gate of apigate.c in front) on the master's loop.
 */
#ifndef RTPPROXYD_API_H
#define RTPPROXYD_API_H

struct config;
struct event_base;
struct rp_error;
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

/* High availability: what HaTakeover calls (src/repl), NULLs for none. */
struct api_ha {
	int		(*takeover)(const char *, struct rp_error *);
	const char	*(*node)(void);
};
void	grpcsvc_set_ha(const struct api_ha *);

#endif
