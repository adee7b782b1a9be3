/*
 * The kernel fast path (kfwd.c over the BPF program kfwd.bpf.c): the
 * program loaded, attached to the media interfaces' TC ingress and
 * pinned by the master; the map of offloaded session directions opened
 * from its pin by the workers, which write it.  Below everything but
 * common/: it knows neither the configuration nor the session table.
 */
#ifndef RTPPROXYD_KFWD_H
#define RTPPROXYD_KFWD_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#define KFWD_PIN_ROOT	"/sys/fs/bpf/rtpproxyd"

struct kfwd_key;
struct kfwd_val;

int	kfwd_pindir(const char *, char *, size_t);
int	kfwd_verify(char *, size_t);
int	kfwd_start(const char *, const char *, char *const *, int, int, int,
	    char *, size_t);
void	kfwd_stop(const char *, const char *, int);
void	kfwd_cleanup(const char *, const char *);

/* What a master holds of what it pinned: -1 each when nothing. */
struct kfwd_fds {
	int	map;
	int	prog;
	int	dir;
};
int	kfwd_hold(const char *, uid_t, gid_t, struct kfwd_fds *);
void	kfwd_release(struct kfwd_fds *);
int	kfwd_adopt_fds(struct kfwd_fds *);
int	kfwd_map_check(int);
int	kfwd_map_open(const char *);
int	kfwd_default_ttl(int);
int	kfwd_map_put(int, const struct kfwd_key *, const struct kfwd_val *);
int	kfwd_map_del(int, const struct kfwd_key *);
int	kfwd_map_get(int, const struct kfwd_key *, struct kfwd_val *);
int	kfwd_map_take(int, const struct kfwd_key *, struct kfwd_val *);

#endif
