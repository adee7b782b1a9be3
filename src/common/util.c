#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
set_nonblock(int fd)
{
	int flags;

	if ((flags = fcntl(fd, F_GETFL)) == -1)
		return -1;
	return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int
set_cloexec(int fd, int on)
{
	int flags;

	if ((flags = fcntl(fd, F_GETFD)) == -1)
		return -1;
	flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
	return fcntl(fd, F_SETFD, flags);
}

/*
 * An IPv4 or IPv6 literal (no host names: a media relay must not block on
 * DNS) with an optional %scope for link-local IPv6.  0 or -1.
 */
int
parse_ip(const char *s, uint16_t port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	char			*pct;

	memset(ss, 0, sizeof(*ss));
	if (s == NULL || *s == '\0' || strlen(s) >= sizeof(buf))
		return -1;
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		if (len != NULL)
			*len = sizeof(*sin);
		return 0;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	if ((pct = strchr(buf, '%')) != NULL)
		*pct++ = '\0';
	if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
		return -1;
	if (pct != NULL) {
		if (*pct == '\0' ||
		    (sin6->sin6_scope_id = if_nametoindex(pct)) == 0)
			return -1;
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	if (len != NULL)
		*len = sizeof(*sin6);
	return 0;
}

/* A decimal number in [min, max]; no sign, no junk.  0 or -1. */
int
parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	unsigned long long	 v;
	char			*end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
int
utf8_valid(const char *str, size_t len)
{
	const unsigned char	*s = (const unsigned char *)str;
	size_t			 i = 0, n, k;
	uint32_t		 cp;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
		} else
			return 0;
		if (len - i <= n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* "addr:port" or "[addr]:port" for logs. */
const char *
sa_ntop(const struct sockaddr *sa, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(sin6->sin6_port));
	} else
		snprintf(buf, len, "(family %d)", sa->sa_family);
	return buf;
}

/* Fill err (when not NULL) with a status and a message; returns -1. */
int
rp_err(struct rp_error *err, enum rp_code code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -1;
}

#define RP_CODE_NAME_(name, num)	[num] = #name,
static const char *const rp_code_names[RP_CODE_N] = {
	RP_CODES(RP_CODE_NAME_)
};

/* OK, CANCELLED, ...: a status code's name, or NULL when it has none. */
const char *
rp_code_name(int code)
{
	return code >= 0 && code < RP_CODE_N ? rp_code_names[code] : NULL;
}

/* Does pid run (not a zombie waiting for a parent that does not reap)? */
int
proc_alive(pid_t pid)
{
	char	 path[64], buf[512], *p;
	FILE	*f;
	int	 alive = 1;

	if (pid <= 0 || (kill(pid, 0) == -1 && errno != EPERM))
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 1;
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL && (p[2] == 'Z' || p[2] == 'X'))
		alive = 0;
	fclose(f);
	return alive;
}

/* Wait up to ms for pid to be gone, by its pidfd if there is one (-1). */
void
proc_wait_gone(pid_t pid, int pidfd, int ms)
{
	struct pollfd	pfd;
	int		i;

	if (pidfd != -1) {
		pfd.fd = pidfd;
		pfd.events = POLLIN;
		(void)poll(&pfd, 1, ms);
		return;
	}
	for (i = 0; i < ms / 20 && proc_alive(pid); i++)
		nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
}

/*
 * How many ports of min..max the kernel may hand out as ephemeral ports
 * (to any program's socket that binds port 0 or connects unbound): range
 * is the text of net.ipv4.ip_local_port_range ("32768 60999"), reserved
 * that of net.ipv4.ip_local_reserved_ports ("20000-39999,8080"), which it
 * does not hand out.  The part of min..max inside range goes to *lo..*hi
 * (0..0: none).  -1 if range does not parse.
 */
int
ports_ephemeral(uint16_t min, uint16_t max, const char *range,
    const char *reserved, uint16_t *lo, uint16_t *hi)
{
	uint8_t		 taken[65536 / 8];
	unsigned long	 a, b;
	const char	*p;
	char		*end;
	uint32_t	 port;
	int		 n = 0;

	*lo = *hi = 0;
	errno = 0;
	a = strtoul(range, &end, 10);
	if (end == range || errno != 0)
		return -1;
	p = end;
	b = strtoul(p, &end, 10);
	if (end == p || errno != 0 || a > 65535 || b > 65535 || a > b)
		return -1;
	if (b < min || a > max)
		return 0;
	*lo = (uint16_t)(a > min ? a : min);
	*hi = (uint16_t)(b < max ? b : max);
	memset(taken, 0, sizeof(taken));
	for (p = reserved; p != NULL && *p != '\0';) {
		a = strtoul(p, &end, 10);
		if (end == p)
			break;
		b = a;
		if (*end == '-') {
			p = end + 1;
			b = strtoul(p, &end, 10);
			if (end == p)
				break;
		}
		for (port = (uint32_t)a; port <= b && port <= 65535; port++)
			taken[port / 8] |= (uint8_t)(1u << (port % 8));
		p = *end == ',' ? end + 1 : NULL;
	}
	for (port = *lo; port <= *hi; port++)
		if (!(taken[port / 8] & (1u << (port % 8))))
			n++;
	return n;
}

/*
 * The whole of the regular file path, NUL-terminated, into *bufp (from
 * malloc; wiped before it is freed on an error, as it may be a secret),
 * at most max bytes.  Anything else is refused before a byte is read:
 * open(2) of a FIFO blocks until a writer comes (O_NONBLOCK), a device
 * may never end, a terminal could become ours (O_NOCTTY).  0, or -1 with
 * errno (ENOENT and the like, EFBIG past max), 0 when it is not a
 * regular file: file_strerror says which.
 */
int
file_read(const char *path, size_t max, char **bufp, size_t *lenp)
{
	struct stat	 sb;
	char		*buf = NULL;
	size_t		 len = 0;
	ssize_t		 r;
	int		 fd, saved;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &sb) == -1)
		goto fail;
	if (!S_ISREG(sb.st_mode)) {
		errno = 0;
		goto fail;
	}
	if (sb.st_size < 0 || (uintmax_t)sb.st_size > max) {
		errno = EFBIG;
		goto fail;
	}
	/* One byte more than allowed, to notice a file that grew. */
	buf = xmalloc(max + 2);
	while (len < max + 1) {
		r = read(fd, buf + len, max + 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto fail;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > max) {
		errno = EFBIG;
		goto fail;
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
fail:
	saved = errno;
	if (buf != NULL) {
		explicit_bzero(buf, max + 2);
		free(buf);
	}
	close(fd);
	errno = saved;
	return -1;
}

/* What went wrong in the last file_read of at most max bytes. */
const char *
file_strerror(size_t max)
{
	static char buf[64];

	if (errno == 0)
		return "not a regular file";
	if (errno == EFBIG) {
		if (max >= 1024 * 1024)
			snprintf(buf, sizeof(buf), "larger than %zu MiB",
			    max / (1024 * 1024));
		else if (max >= 1024)
			snprintf(buf, sizeof(buf), "larger than %zu KiB",
			    max / 1024);
		else
			snprintf(buf, sizeof(buf), "larger than %zu bytes",
			    max);
		return buf;
	}
	return strerror(errno);
}

/* A descriptor that becomes readable when pid is gone, or -1 (an old
 * kernel, valgrind). */
int
proc_pidfd(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}
