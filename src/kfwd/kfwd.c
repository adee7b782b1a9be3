/*
 * The kernel fast path's loader and map (see kfwd.bpf.c for the program
 * and kfwd_map.h for the entries).  The master loads the program from
 * the skeleton built into the binary, attaches it to TC ingress (clsact)
 * of the media interfaces with a filter of its own (a handle and a
 * priority that no one else uses, so it sits beside other filters), and
 * pins the program and the map under KFWD_PIN_ROOT/<table name>, where
 * a new worker (or a new master taking over) finds them.  The filter
 * holds the program, the program the map: a worker or a master that dies
 * leaves both relaying.  A clean stop takes the filters off and unpins.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "common.h"
#include "kfwd.h"

#ifdef HAVE_KFWD
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kfwd_map.h"
#include "kfwd.skel.h"

#define KFWD_HANDLE	0x52545058u	/* "RTPX" */

static char	*kfwd_log;		/* the verifier's words, when asked */
static size_t	 kfwd_loglen;

static int
kfwd_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char	buf[512];
	size_t	n;

	if (level == LIBBPF_DEBUG && kfwd_log == NULL)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (kfwd_log != NULL && (n = strlen(kfwd_log)) + 1 < kfwd_loglen)
		snprintf(kfwd_log + n, kfwd_loglen - n, "%s", buf);
	if (level != LIBBPF_DEBUG) {
		buf[strcspn(buf, "\n")] = '\0';
		log_debug("libbpf: %s", buf);
	}
	return 0;
}

/* Our filter's priority on a hook: one per table, so two daemons coexist. */
static uint32_t
kfwd_prio(const char *shm_name)
{
	uint32_t h = 2166136261u;

	for (; *shm_name != '\0'; shm_name++)
		h = (h ^ (uint8_t)*shm_name) * 16777619u;
	return 0x100 + h % 0x7000;
}

static int
kfwd_bpffs(char *why, size_t len)
{
	struct statfs sf;

	if (statfs("/sys/fs/bpf", &sf) == -1 || sf.f_type != BPF_FS_MAGIC) {
		snprintf(why, len, "no BPF file system at /sys/fs/bpf "
		    "(mount -t bpf bpf /sys/fs/bpf)");
		return -1;
	}
	if (mkdir(KFWD_PIN_ROOT, 0700) == -1 && errno != EEXIST) {
		snprintf(why, len, "%s: %s", KFWD_PIN_ROOT, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The kernel's FIB lookup for BPF answers only for an interface with
 * IPv4 forwarding on: without it, media that comes in on ifname and
 * leaves by another interface stays in userspace.  Said once, at start.
 */
static void
kfwd_check_forwarding(const char *ifname)
{
	const char	*ip[2] = { "ipv4", "ipv6" };
	char		 path[128], v;
	FILE		*fp;
	int		 i;

	if (strcmp(ifname, "lo") == 0)
		return;
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/"
		    "forwarding", ip[i], ifname);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		if (fread(&v, 1, 1, fp) != 1)
			v = '1';
		fclose(fp);
		if (v == '0')
			log_warnx("kernel forwarding: net.%s.conf.%s."
			    "forwarding is 0: %s media that comes in on %s and "
			    "is routed out of another interface stays in "
			    "userspace", ip[i], ifname, i ? "IPv6" : "IPv4",
			    ifname);
	}
}

/* Load the program into the kernel and unload it: the verifier's word. */
int
kfwd_verify(char *log, size_t len)
{
	struct kfwd_bpf	*skel;

	if (log != NULL && len > 0)
		log[0] = '\0';
	kfwd_log = log;
	kfwd_loglen = len;
	libbpf_set_print(kfwd_print);
	skel = kfwd_bpf__open_and_load();
	kfwd_log = NULL;
	if (skel == NULL)
		return -1;
	kfwd_bpf__destroy(skel);
	return 0;
}

static void
kfwd_detach_all(uint32_t prio)
{
	struct if_nameindex	*ifs, *i;

	if ((ifs = if_nameindex()) == NULL)
		return;
	for (i = ifs; i->if_index != 0; i++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook,
		    .ifindex = (int)i->if_index,
		    .attach_point = BPF_TC_INGRESS);
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = KFWD_HANDLE,
		    .priority = prio);

		if (bpf_tc_detach(&hook, &opts) == 0)
			log_debug("kernel forwarding: filter off %s",
			    i->if_name);
	}
	if_freenameindex(ifs);
}

/*
 * What a daemon of this table left behind (it was killed, or the
 * machine's daemon crashed): our filters on every interface, the pins.
 */
void
kfwd_cleanup(const char *pindir, const char *shm_name)
{
	kfwd_stop(pindir, shm_name, -1);
}

/*
 * Load, attach to ifnames[0 .. nif - 1] and pin under pindir.  adopt:
 * a master taking over: the pinned program (prog, when a master before
 * handed it over, else the pin's) stays, only the filters are checked.
 * -1 and why when the kernel or our privileges say no.
 */
int
kfwd_start(const char *pindir, const char *shm_name, char *const *ifnames,
    int nif, int adopt, int prog, char *why, size_t len)
{
	struct kfwd_bpf	*skel = NULL;
	char		 path[256];
	unsigned int	 idx;
	int		 i, pfd = -1, err;

	libbpf_set_print(kfwd_print);
	if (adopt && prog != -1 && (pfd = dup(prog)) == -1)
		adopt = 0;
	else if (adopt && prog == -1) {
		snprintf(path, sizeof(path), "%s/prog", pindir);
		if ((pfd = bpf_obj_get(path)) < 0) {
			pfd = -1;
			adopt = 0;
		}
	}
	/* bpffs is looked at only for what is done by its paths */
	if (!adopt && kfwd_bpffs(why, len) == -1)
		return -1;
	if (!adopt) {
		kfwd_cleanup(pindir, shm_name);
		if ((skel = kfwd_bpf__open_and_load()) == NULL) {
			err = errno;
			snprintf(why, len, "the kernel refused the BPF program "
			    "(%s)%s", strerror(err), err == EPERM ?
			    ": needs CAP_BPF and CAP_NET_ADMIN" : "");
			return -1;
		}
		pfd = bpf_program__fd(skel->progs.kfwd_ingress);
		if (mkdir(pindir, 0700) == -1 && errno != EEXIST) {
			snprintf(why, len, "%s: %s", pindir, strerror(errno));
			goto fail;
		}
		snprintf(path, sizeof(path), "%s/sessions", pindir);
		if (bpf_map__pin(skel->maps.kfwd_sessions, path) != 0) {
			snprintf(why, len, "pin %s: %s", path, strerror(errno));
			goto fail;
		}
		snprintf(path, sizeof(path), "%s/prog", pindir);
		if (bpf_program__pin(skel->progs.kfwd_ingress, path) != 0) {
			snprintf(why, len, "pin %s: %s", path, strerror(errno));
			goto fail;
		}
	}
	for (i = 0; i < nif; i++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook,
		    .attach_point = BPF_TC_INGRESS);
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = KFWD_HANDLE,
		    .priority = kfwd_prio(shm_name), .prog_fd = pfd,
		    .flags = BPF_TC_F_REPLACE);

		if ((idx = if_nametoindex(ifnames[i])) == 0) {
			snprintf(why, len, "interface %s: %s", ifnames[i],
			    strerror(errno));
			goto fail;
		}
		hook.ifindex = (int)idx;
		if ((err = bpf_tc_hook_create(&hook)) != 0 && err != -EEXIST) {
			snprintf(why, len, "TC hook on %s: %s%s", ifnames[i],
			    strerror(-err), err == -EPERM ?
			    ": needs CAP_NET_ADMIN" : "");
			goto fail;
		}
		if ((err = bpf_tc_attach(&hook, &opts)) != 0) {
			snprintf(why, len, "TC filter on %s: %s", ifnames[i],
			    strerror(-err));
			goto fail;
		}
		kfwd_check_forwarding(ifnames[i]);
	}
	if (skel != NULL)
		kfwd_bpf__destroy(skel);	/* the pins and filters hold it */
	else
		close(pfd);
	return 0;
fail:
	if (skel != NULL)
		kfwd_bpf__destroy(skel);
	else if (pfd != -1)
		close(pfd);
	kfwd_cleanup(pindir, shm_name);
	return -1;
}

/*
 * A clean stop: filters off, pins gone; the program and map go with
 * them.  dirfd, when not -1, is pindir opened by kfwd_hold: a master
 * that runs as another user cannot reach /sys/fs/bpf's directories by
 * their paths (root's, mode 0700), but may unpin in the one it owns.
 * The directory itself stays then (its parent is root's): the next start
 * removes it.
 */
void
kfwd_stop(const char *pindir, const char *shm_name, int dirfd)
{
	char path[256];

	libbpf_set_print(kfwd_print);
	kfwd_detach_all(kfwd_prio(shm_name));
	if (dirfd != -1) {
		(void)unlinkat(dirfd, "sessions", 0);
		(void)unlinkat(dirfd, "prog", 0);
	} else {
		snprintf(path, sizeof(path), "%s/sessions", pindir);
		(void)unlink(path);
		snprintf(path, sizeof(path), "%s/prog", pindir);
		(void)unlink(path);
	}
	(void)rmdir(pindir);
}

/*
 * What a master holds of the pinned program, opened while it may: the
 * map (for the workers it starts: they get it at exec, and need no
 * privilege to write it), the program (for a master that takes over and
 * checks the filters) and the pin directory (to unpin at the stop).
 * uid and gid (-1: as they are): who the directory is for.
 */
int
kfwd_hold(const char *pindir, uid_t uid, gid_t gid, struct kfwd_fds *f)
{
	char path[256];

	f->map = f->prog = f->dir = -1;
	snprintf(path, sizeof(path), "%s/sessions", pindir);
	if ((f->map = bpf_obj_get(path)) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/prog", pindir);
	if ((f->prog = bpf_obj_get(path)) < 0)
		goto fail;
	if ((f->dir = open(pindir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		goto fail;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    fchown(f->dir, uid, gid) == -1)
		goto fail;
	if (fcntl(f->map, F_SETFD, FD_CLOEXEC) == -1 ||
	    fcntl(f->prog, F_SETFD, FD_CLOEXEC) == -1)
		goto fail;
	return 0;
fail:
	kfwd_release(f);
	return -1;
}

void
kfwd_release(struct kfwd_fds *f)
{
	if (f->map >= 0)
		close(f->map);
	if (f->prog >= 0)
		close(f->prog);
	if (f->dir >= 0)
		close(f->dir);
	f->map = f->prog = f->dir = -1;
}

/*
 * Descriptors a master before us handed over (kfwd_hold's, across the
 * exec): 0 if they are what they say they are, else -1 and none.
 */
int
kfwd_adopt_fds(struct kfwd_fds *f)
{
	struct bpf_prog_info	pi;
	__u32			len = sizeof(pi);
	struct stat		st;

	memset(&pi, 0, sizeof(pi));
	if (kfwd_map_check(f->map) == -1 ||
	    bpf_obj_get_info_by_fd(f->prog, &pi, &len) != 0 ||
	    pi.type != BPF_PROG_TYPE_SCHED_CLS ||
	    fstat(f->dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		f->map = f->prog = f->dir = -1;
		return -1;
	}
	(void)fcntl(f->map, F_SETFD, FD_CLOEXEC);
	(void)fcntl(f->prog, F_SETFD, FD_CLOEXEC);
	(void)fcntl(f->dir, F_SETFD, FD_CLOEXEC);
	return 0;
}

/* 0 if fd is a map of ours (a worker's KFWD_FD), else -1. */
int
kfwd_map_check(int fd)
{
	struct bpf_map_info	mi;
	__u32			len = sizeof(mi);

	memset(&mi, 0, sizeof(mi));
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &mi, &len) != 0)
		return -1;
	if (mi.type != BPF_MAP_TYPE_HASH ||
	    mi.key_size != sizeof(struct kfwd_key) ||
	    mi.value_size != sizeof(struct kfwd_val) ||
	    strcmp(mi.name, "kfwd_sessions") != 0)
		return -1;
	return 0;
}

int
kfwd_map_open(const char *pindir)
{
	char	path[256];
	int	fd;

	snprintf(path, sizeof(path), "%s/sessions", pindir);
	/* libbpf says -errno */
	return (fd = bpf_obj_get(path)) < 0 ? -1 : fd;
}

int
kfwd_map_put(int fd, const struct kfwd_key *k, const struct kfwd_val *v)
{
	return bpf_map_update_elem(fd, k, v, BPF_ANY) == 0 ? 0 : -1;
}

int
kfwd_map_del(int fd, const struct kfwd_key *k)
{
	return bpf_map_delete_elem(fd, k) == 0 || errno == ENOENT ? 0 : -1;
}

/* The entry's figures, read under its lock so that they agree. */
int
kfwd_map_get(int fd, const struct kfwd_key *k, struct kfwd_val *v)
{
	return bpf_map_lookup_elem_flags(fd, k, v, BPF_F_LOCK) == 0 ? 0 : -1;
}

/* The entry's last figures as it goes: nothing counted twice or lost. */
int
kfwd_map_take(int fd, const struct kfwd_key *k, struct kfwd_val *v)
{
	return bpf_map_lookup_and_delete_elem_flags(fd, k, v, BPF_F_LOCK) ==
	    0 ? 0 : -1;
}

#else	/* !HAVE_KFWD */

#define KFWD_NOT_BUILT	"built without kernel forwarding (configure " \
	"found no clang, bpftool or libbpf)"

int
kfwd_verify(char *log, size_t len)
{
	snprintf(log, len, "%s", KFWD_NOT_BUILT);
	errno = ENOSYS;
	return -1;
}
void
kfwd_cleanup(const char *pindir, const char *shm_name)
{
}
int
kfwd_start(const char *pindir, const char *shm_name, char *const *ifnames,
    int nif, int adopt, int prog, char *why, size_t len)
{
	snprintf(why, len, "%s", KFWD_NOT_BUILT);
	errno = ENOSYS;
	return -1;
}
void
kfwd_stop(const char *pindir, const char *shm_name, int dirfd)
{
}
int
kfwd_hold(const char *pindir, uid_t uid, gid_t gid, struct kfwd_fds *f)
{
	f->map = f->prog = f->dir = -1;
	errno = ENOSYS;
	return -1;
}
void
kfwd_release(struct kfwd_fds *f)
{
}
int
kfwd_adopt_fds(struct kfwd_fds *f)
{
	f->map = f->prog = f->dir = -1;
	return -1;
}
int
kfwd_map_check(int fd)
{
	return -1;
}
int
kfwd_map_open(const char *pindir)
{
	errno = ENOSYS;
	return -1;
}
int
kfwd_map_put(int fd, const struct kfwd_key *k, const struct kfwd_val *v)
{
	errno = ENOSYS;
	return -1;
}
int
kfwd_map_del(int fd, const struct kfwd_key *k)
{
	return 0;
}
int
kfwd_map_get(int fd, const struct kfwd_key *k, struct kfwd_val *v)
{
	errno = ENOSYS;
	return -1;
}
int
kfwd_map_take(int fd, const struct kfwd_key *k, struct kfwd_val *v)
{
	errno = ENOSYS;
	return -1;
}
#endif	/* HAVE_KFWD */

/* KFWD_PIN_ROOT/<table name without its slashes>. */
int
kfwd_pindir(const char *shm_name, char *buf, size_t len)
{
	size_t	n;
	int	r;

	while (*shm_name == '/')
		shm_name++;
	r = snprintf(buf, len, "%s/%s", KFWD_PIN_ROOT, shm_name);
	if (r < 0 || (size_t)r >= len)
		return -1;
	for (n = sizeof(KFWD_PIN_ROOT); buf[n] != '\0'; n++)
		if (buf[n] == '/')
			buf[n] = '_';
	return 0;
}

/*
 * The TTL (IPv4) or hop limit (IPv6) a socket of ours sends with, that
 * sets none: net.ipv4.ip_default_ttl, net.ipv6.conf.all.hop_limit.  The
 * kernel path sets it on what it relays, as the worker's packets have it.
 * 0 when it cannot be read (the kernel path then leaves it as it came).
 */
int
kfwd_default_ttl(int v6)
{
	FILE	*fp;
	int	 v = 0;

	if ((fp = fopen(v6 ? "/proc/sys/net/ipv6/conf/all/hop_limit" :
	    "/proc/sys/net/ipv4/ip_default_ttl", "r")) == NULL)
		return 0;
	if (fscanf(fp, "%d", &v) != 1 || v < 1 || v > 255)
		v = 0;
	fclose(fp);
	return v;
}
