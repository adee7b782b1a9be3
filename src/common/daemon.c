#include <sys/types.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <poll.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include "common.h"

static void	daemon_err(char *, size_t, const char *, ...)
		    __printflike(3, 4);

static void
daemon_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The pid in a pidfile, or 0; the holder may not have written it yet. */
static pid_t
daemon_pidfile_read(int fd)
{
	char	 buf[32];
	ssize_t	 n;
	long	 pid;
	char	*end;
	int	 tries;

	for (tries = 0; tries < 10; tries++) {
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		if (n > 0) {
			buf[n] = '\0';
			errno = 0;
			pid = strtol(buf, &end, 10);
			if (errno == 0 && end != buf && pid > 0 &&
			    (*end == '\n' || *end == '\0'))
				return (pid_t)pid;
		}
		nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
	}
	return 0;
}

/*
 * flock(2), not fcntl locks: a flock belongs to the open file, so it
 * stays held in the child after daemon_detach() forks and the parent
 * exits.  O_CLOEXEC keeps exec'd workers from holding it.
 */
/* Create the directories above path that are missing (mode 0755). */
static int
daemon_mkdirs(const char *path)
{
	char	buf[PATH_MAX], *p, *slash, c;

	if (strlen(path) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, path);
	if ((slash = strrchr(buf, '/')) == NULL || slash == buf)
		return 0;
	*slash = '\0';
	for (p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		c = *p;
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST)
			return -1;
		if (c == '\0')
			return 0;
		*p = c;
	}
}

int
daemon_pidfile_open(const char *path, pid_t *other, char *err, size_t errlen)
{
	struct stat	sf, sp;
	int		fd, tries;

	if (other != NULL)
		*other = 0;
	/*
	 * The run-state directory of a fresh --prefix (/usr/local/var/run)
	 * does not exist until something makes it.
	 */
	if (daemon_mkdirs(path) == -1) {
		daemon_err(err, errlen, "pidfile %s: cannot create its "
		    "directory: %s", path, strerror(errno));
		return -1;
	}
	for (tries = 0; tries < 5; tries++) {
		/* O_NONBLOCK: a FIFO in its place must not block us. */
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
		    O_NOCTTY | O_NONBLOCK, 0644);
		if (fd == -1) {
			daemon_err(err, errlen, "pidfile %s: %s", path,
			    errno == ELOOP ? "is a symbolic link" :
			    strerror(errno));
			return -1;
		}
		if (fstat(fd, &sf) == -1) {
			daemon_err(err, errlen, "pidfile %s: %s", path,
			    strerror(errno));
			close(fd);
			return -1;
		}
		if (!S_ISREG(sf.st_mode)) {
			daemon_err(err, errlen, "pidfile %s: not a regular "
			    "file", path);
			close(fd);
			return -1;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
			pid_t pid;

			if (errno != EWOULDBLOCK) {
				daemon_err(err, errlen, "pidfile %s: lock: %s",
				    path, strerror(errno));
				close(fd);
				return -1;
			}
			pid = daemon_pidfile_read(fd);
			close(fd);
			if (other != NULL)
				*other = pid;
			if (pid > 0)
				daemon_err(err, errlen, "pidfile %s is locked "
				    "by pid %ld: is another rtpproxyd running?",
				    path, (long)pid);
			else
				daemon_err(err, errlen, "pidfile %s is locked "
				    "by another process: is another rtpproxyd "
				    "running?", path);
			return -1;
		}
		/*
		 * A previous holder unlinks the file before it lets go of
		 * the lock; if that happened under us, the lock is on a
		 * file nobody else will look at: take the new one.
		 */
		if (fstat(fd, &sf) == 0 && stat(path, &sp) == 0 &&
		    sf.st_dev == sp.st_dev && sf.st_ino == sp.st_ino) {
			/* A stale pid would name an unrelated process. */
			if (ftruncate(fd, 0) == -1) {
				daemon_err(err, errlen, "pidfile %s: %s", path,
				    strerror(errno));
				close(fd);
				return -1;
			}
			return fd;
		}
		close(fd);
	}
	daemon_err(err, errlen, "pidfile %s: keeps being replaced", path);
	return -1;
}

int
daemon_pidfile_write(int fd)
{
	char	buf[32];
	int	n;

	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1)
		return -1;
	if (pwrite(fd, buf, n, 0) != n)
		return -1;
	return 0;
}

void
daemon_pidfile_close(int fd, const char *path)
{
	if (fd == -1)
		return;
	/*
	 * Unlink while still holding the lock.  After a privilege drop the
	 * directory is usually not ours: then at least leave no pid.
	 */
	if (path != NULL && unlink(path) == -1 && errno != ENOENT) {
		log_debug("pidfile %s: unlink: %s", path, strerror(errno));
		if (ftruncate(fd, 0) == -1)
			log_debug("pidfile %s: truncate: %s", path,
			    strerror(errno));
	}
	close(fd);
}


/*
 * Close every descriptor above stderr that we inherited, but keep[0 ..
 * nkeep - 1] (-1s ignored): the channel from a master we take over from,
 * and what it holds of the kernel fast path.  A parent's lock file or
 * socket held for the daemon's whole life keeps the parent's lock taken
 * and its peer from seeing EOF; nothing we are handed at exec is ours but
 * the three standard ones and keep.
 */
void
daemon_close_inherited(const int *keep, int nkeep)
{
	unsigned int	from = 3, next;
	long		max, fd;
	int		i, k;

	/* the lowest kept descriptor at or above from, each time */
	for (;;) {
		next = ~0U;
		for (i = 0; i < nkeep; i++)
			if (keep[i] >= (int)from && (unsigned int)keep[i] < next)
				next = (unsigned int)keep[i];
		if (next == ~0U)
			break;
		if (next > from && syscall(SYS_close_range, from, next - 1,
		    0U) == -1)
			goto slow;
		from = next + 1;
	}
	if (syscall(SYS_close_range, from, ~0U, 0U) == 0)
		return;
slow:
	/* Before Linux 5.9: one by one, up to the limit. */
	if ((max = sysconf(_SC_OPEN_MAX)) < 0 || max > 1 << 20)
		max = 1 << 20;
	for (fd = 3; fd < max; fd++) {
		for (k = 0, i = 0; i < nkeep; i++)
			k |= keep[i] == fd;
		if (!k)
			(void)close((int)fd);
	}
}

/*
 * The parent stays until the child says whether it came up, so whoever
 * started us gets the real outcome as our exit status.  A socketpair
 * rather than a pipe: the child can send with MSG_NOSIGNAL should the
 * parent be gone.
 */
int
daemon_detach(int *notify_fd)
{
	int		 sv[2], fd;
	pid_t		 pid;
	unsigned char	 b;
	ssize_t		 n;

	*notify_fd = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("daemon: socketpair");
		return -1;
	}
	/* Buffered output would otherwise be written by both processes. */
	fflush(NULL);
	switch (pid = fork()) {
	case -1:
		log_warn("daemon: fork");
		close(sv[0]);
		close(sv[1]);
		return -1;
	case 0:
		break;
	default:
		close(sv[1]);
		do {
			n = read(sv[0], &b, 1);
		} while (n == -1 && errno == EINTR);
		if (n == 1 && b == 1)
			_exit(0);
		if (n == 1)
			fprintf(stderr, "rtpproxyd: failed to start; see the "
			    "system log\n");
		else
			fprintf(stderr, "rtpproxyd: exited before it was "
			    "ready; see the system log\n");
		_exit(1);
	}

	close(sv[0]);
	if (setsid() == -1 || chdir("/") == -1 ||
	    (fd = open("/dev/null", O_RDWR)) == -1) {
		log_warn("daemon: detaching");
		daemon_detach_done(sv[1], 0);
		_exit(1);
	}
	if (dup2(fd, STDIN_FILENO) == -1 || dup2(fd, STDOUT_FILENO) == -1 ||
	    dup2(fd, STDERR_FILENO) == -1) {
		log_warn("daemon: dup2");
		daemon_detach_done(sv[1], 0);
		_exit(1);
	}
	if (fd > STDERR_FILENO)
		close(fd);
	*notify_fd = sv[1];
	return 0;
}

void
daemon_detach_done(int notify_fd, int ok)
{
	unsigned char	b = ok ? 1 : 0;
	ssize_t		n;

	if (notify_fd == -1)
		return;
	do {
		n = send(notify_fd, &b, 1, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	close(notify_fd);
}

/*
 * This process's capabilities: those of keep (CAP_TO_MASK bits of
 * capabilities below 32) alone, in every set and as ambient capabilities,
 * so that they survive the execve of a new master (SIGUSR2); a worker
 * clears the ambient set before its exec (daemon_clear_ambient).  0 or -1
 * (errno set).
 */
static int
daemon_set_caps(uint32_t keep)
{
	struct __user_cap_header_struct	h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct	d[_LINUX_CAPABILITY_U32S_3];
	int				cap;

	memset(d, 0, sizeof(d));
	d[0].effective = d[0].permitted = d[0].inheritable = keep;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 &&
	    errno != EINVAL)
		return -1;
	if (syscall(SYS_capset, &h, d) == -1)
		return -1;
	for (cap = 0; cap < 32; cap++)
		if ((keep & CAP_TO_MASK(cap)) && prctl(PR_CAP_AMBIENT,
		    PR_CAP_AMBIENT_RAISE, cap, 0, 0) == -1)
			return -1;
	return 0;
}

/* The permitted capabilities below 32 (CAP_TO_MASK bits), or 0. */
static uint32_t
daemon_permitted(void)
{
	struct __user_cap_header_struct	h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct	d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) == -1)
		return 0;
	return d[0].permitted;
}

/* For a child that is not a master: no ambient capability across exec. */
void
daemon_clear_ambient(void)
{
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

/*
 * Switch to user and group for good.  keep: the capabilities to keep (and
 * only those; CAP_TO_MASK bits): CAP_NET_BIND_SERVICE for a listen
 * address on a privileged port that a new master, which starts as user,
 * must bind again; CAP_NET_ADMIN for the kernel fast path's filters.
 */
int
daemon_drop_privileges(const char *user, const char *group, uint32_t keep,
    char *err, size_t errlen)
{
	struct passwd	*pw;
	struct group	*gr;
	uid_t		 uid;
	gid_t		 gid;

	if (user == NULL)
		return 0;
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		if (errno != 0 && errno != ENOENT && errno != ESRCH)
			daemon_err(err, errlen, "user \"%s\": lookup failed: "
			    "%s", user, strerror(errno));
		else
			daemon_err(err, errlen, "user \"%s\" does not exist",
			    user);
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (group != NULL) {
		errno = 0;
		if ((gr = getgrnam(group)) == NULL) {
			if (errno != 0 && errno != ENOENT && errno != ESRCH)
				daemon_err(err, errlen, "group \"%s\": lookup "
				    "failed: %s", group, strerror(errno));
			else
				daemon_err(err, errlen, "group \"%s\" does not "
				    "exist", group);
			return -1;
		}
		gid = gr->gr_gid;
	}

	if (geteuid() != 0) {
		if (getuid() != uid || geteuid() != uid) {
			daemon_err(err, errlen, "cannot switch to user \"%s\": "
			    "running as uid %ld, must be started as root",
			    user, (long)geteuid());
			return -1;
		}
		if (getgid() != gid || getegid() != gid) {
			daemon_err(err, errlen, "cannot switch to group %ld: "
			    "running as gid %ld, must be started as root",
			    (long)gid, (long)getegid());
			return -1;
		}
		/* A new master: what its predecessor kept, if still needed. */
		if (daemon_set_caps(keep & daemon_permitted()) == -1) {
			daemon_err(err, errlen, "dropping capabilities: %s",
			    strerror(errno));
			return -1;
		}
		return 0;
	}

	if (setgroups(1, &gid) == -1) {
		daemon_err(err, errlen, "setgroups(%ld): %s", (long)gid,
		    strerror(errno));
		return -1;
	}
	if (setgid(gid) == -1) {
		daemon_err(err, errlen, "setgid(%ld): %s", (long)gid,
		    strerror(errno));
		return -1;
	}
	if (keep != 0 && uid != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1) {
		daemon_err(err, errlen, "PR_SET_KEEPCAPS: %s", strerror(errno));
		return -1;
	}
	if (setuid(uid) == -1) {
		daemon_err(err, errlen, "setuid(%ld) for user \"%s\": %s",
		    (long)uid, user, strerror(errno));
		return -1;
	}
	if (keep != 0 && uid != 0) {
		(void)prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
		if (daemon_set_caps(keep) == -1) {
			daemon_err(err, errlen, "keeping capabilities %#x "
			    "as user \"%s\": %s", keep, user, strerror(errno));
			return -1;
		}
	}
	/* Paranoia: make sure there is no way back. */
	if (getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid || (uid != 0 && setuid(0) != -1)) {
		daemon_err(err, errlen, "dropping privileges to user \"%s\" "
		    "did not stick", user);
		return -1;
	}
	return 0;
}

static const char *
daemon_rlim(rlim_t v, char *buf, size_t len)
{
	if (v == RLIM_INFINITY)
		snprintf(buf, len, "unlimited");
	else
		snprintf(buf, len, "%" PRIu64, (uint64_t)v);
	return buf;
}

int
daemon_raise_nofile(uint64_t need, char *err, size_t errlen)
{
	struct rlimit	rl, nrl;
	char		cur[32], max[32];

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		daemon_err(err, errlen, "getrlimit(RLIMIT_NOFILE): %s",
		    strerror(errno));
		return -1;
	}
	if (rl.rlim_cur == RLIM_INFINITY || (uint64_t)rl.rlim_cur >= need)
		return 0;
	nrl.rlim_cur = (rlim_t)need;
	nrl.rlim_max = rl.rlim_max;
	if (rl.rlim_max != RLIM_INFINITY && (uint64_t)rl.rlim_max < need)
		nrl.rlim_max = (rlim_t)need;	/* only root may */
	if ((uint64_t)nrl.rlim_cur != need || setrlimit(RLIMIT_NOFILE,
	    &nrl) == -1) {
		daemon_err(err, errlen, "need %" PRIu64 " file descriptors "
		    "but RLIMIT_NOFILE is %s (hard %s): raise the limit "
		    "(ulimit -n, LimitNOFILE=) or lower max-sessions or "
		    "api-max-connections", need,
		    daemon_rlim(rl.rlim_cur, cur, sizeof(cur)),
		    daemon_rlim(rl.rlim_max, max, sizeof(max)));
		return -1;
	}
	return 0;
}

/*
 * The sd_notify(3) protocol without libsystemd: one datagram to the
 * socket systemd names in $NOTIFY_SOCKET; '@' means the abstract
 * namespace.  Nothing to tell when not run by systemd.
 */
/* The service manager's notification socket, if any; 0 or -1. */
static int
daemon_notify_addr(struct sockaddr_un *sun, socklen_t *len)
{
	const char	*path;
	size_t		 plen;

	if ((path = getenv("NOTIFY_SOCKET")) == NULL ||
	    (path[0] != '/' && path[0] != '@'))
		return -1;
	plen = strlen(path);
	if (plen < 2 || plen >= sizeof(sun->sun_path))
		return -1;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, plen);
	if (path[0] == '@') {
		sun->sun_path[0] = '\0';
		*len = offsetof(struct sockaddr_un, sun_path) + plen;
	} else
		*len = offsetof(struct sockaddr_un, sun_path) + plen + 1;
	return 0;
}

/* sd_notify(3), with a descriptor attached when fd >= 0. */
static void
daemon_notify_fd(const char *state, int fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct sockaddr_un	 sun;
	struct msghdr		 msg;
	struct cmsghdr		*c;
	struct iovec		 iov;
	socklen_t		 len;
	int			 s;

	if (daemon_notify_addr(&sun, &len) == -1)
		return;
	if ((s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)state;
	iov.iov_len = strlen(state);
	msg.msg_name = &sun;
	msg.msg_namelen = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	if (sendmsg(s, &msg, MSG_NOSIGNAL) == -1)
		log_debug("sd_notify %s: %s", state, strerror(errno));
	close(s);
}

void
daemon_notify(const char *state)
{
	daemon_notify_fd(state, -1);
}

/*
 * Wait (up to ms) until the service manager has handled what was sent
 * before (sd_notify_barrier(3)): it closes the pipe end it was given.
 */
void
daemon_notify_barrier(int ms)
{
	struct sockaddr_un	sun;
	struct pollfd		pfd;
	socklen_t		len;
	int			p[2];

	if (daemon_notify_addr(&sun, &len) == -1 ||
	    pipe2(p, O_CLOEXEC) == -1)
		return;
	daemon_notify_fd("BARRIER=1", p[1]);
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = 0;
	if (poll(&pfd, 1, ms) != 1)
		log_debug("sd_notify: no barrier answer in %d ms", ms);
	close(p[0]);
}
