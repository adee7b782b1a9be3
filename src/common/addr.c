#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"

static int
addr_err(char *err, size_t errlen, const char *fmt, ...)
    __printflike(3, 4);

static int
addr_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
addr_unix(struct listen_addr *la, const char *kw, const char *s,
    char *err, size_t errlen)
{
	struct sockaddr_un	*sun = (struct sockaddr_un *)&la->sa[0];
	const char		*p = s + 5;

	if (*p != '/')
		return addr_err(err, errlen, "%s: \"%s\": unix socket path "
		    "must be absolute", kw, s);
	if (strlen(p) >= sizeof(sun->sun_path))
		return addr_err(err, errlen, "%s: \"%s\": unix socket path "
		    "longer than %zu bytes", kw, s, sizeof(sun->sun_path) - 1);
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, p, strlen(p) + 1);
	la->salen[0] = sizeof(*sun);
	la->nsa = 1;
	la->kind = ADDR_UNIX;
	return 0;
}

/* host (no brackets) and the port's text, as in HOST:PORT or [IPv6]:PORT. */
static int
addr_split(const char *kw, const char *s, char *host, size_t hostlen,
    const char **port, char *err, size_t errlen)
{
	const char	*p;
	size_t		 n;

	if (*s == '[') {
		if ((p = strchr(s, ']')) == NULL)
			return addr_err(err, errlen, "%s: \"%s\": missing "
			    "\"]\"", kw, s);
		if (p[1] == '\0')
			return addr_err(err, errlen, "%s: \"%s\": missing "
			    "port (expected [IPv6]:PORT)", kw, s);
		if (p[1] != ':')
			return addr_err(err, errlen, "%s: \"%s\": expected "
			    "\":\" after \"]\"", kw, s);
		*port = p + 2;
		n = (size_t)(p - (s + 1));
		s++;
	} else {
		if ((p = strrchr(s, ':')) == NULL)
			return addr_err(err, errlen, "%s: \"%s\": missing "
			    "port (expected HOST:PORT, [IPv6]:PORT or "
			    "unix:/PATH)", kw, s);
		*port = p + 1;
		n = (size_t)(p - s);
	}
	if (n >= hostlen)
		n = hostlen - 1;
	memcpy(host, s, n);
	host[n] = '\0';
	return 0;
}

/*
 * Parse s, the value of keyword kw, into la.  Only literals, localhost
 * and "*": the listener must come up without DNS, and it would otherwise
 * bind whatever a resolver says today.  0, or -1 and "kw: "s": why" in
 * err, with la zeroed.
 */
int
addr_parse(struct listen_addr *la, const char *kw, const char *s, int flags,
    char *err, size_t errlen)
{
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&la->sa[0];
	char			 host[128];
	const char		*port = NULL;
	uint32_t		 pn;
	int			 v6 = *s == '[';

	memset(la, 0, sizeof(*la));
	if (strlen(s) >= sizeof(la->text))
		return addr_err(err, errlen, "%s: longer than %zu bytes", kw,
		    sizeof(la->text) - 1);
	if (strncmp(s, "unix:", 5) == 0) {
		if (!(flags & ADDR_UNIX_OK))
			return addr_err(err, errlen, "%s: \"%s\": must be "
			    "HOST:PORT or [IPv6]:PORT", kw, s);
		if (addr_unix(la, kw, s, err, errlen) == -1)
			goto fail;
		goto done;
	}
	if (addr_split(kw, s, host, sizeof(host), &port, err, errlen) == -1)
		return -1;
	if (v6) {
		if (parse_ip(host, 0, &la->sa[0], NULL) == -1 ||
		    la->sa[0].ss_family != AF_INET6) {
			addr_err(err, errlen, "%s: \"%s\": \"%s\" is not an "
			    "IPv6 address", kw, s, host);
			goto fail;
		}
	} else if (strchr(host, ':') != NULL)
		return addr_err(err, errlen, "%s: \"%s\": an IPv6 address "
		    "must be in brackets, as in [::1]:50051", kw, s);
	else if (*host == '\0')
		return addr_err(err, errlen, "%s: \"%s\": missing host (use * "
		    "for every address)", kw, s);
	else if (strcmp(host, "*") == 0)
		la->any = 1;
	else if (strcmp(host, "localhost") == 0)
		la->localhost = 1;
	else if (parse_ip(host, 0, &la->sa[0], NULL) == -1 ||
	    la->sa[0].ss_family != AF_INET) {
		addr_err(err, errlen, "%s: \"%s\": host must be an IPv4 "
		    "address, [IPv6], localhost or *", kw, s);
		goto fail;
	}
	if (parse_u32(port, 1, 65535, &pn) == -1) {
		addr_err(err, errlen, "%s: \"%s\": port must be 1..65535 (got "
		    "\"%s\")", kw, s, port);
		goto fail;
	}
	la->kind = ADDR_INET;
	la->port = (uint16_t)pn;
	la->nsa = 1;
	if (la->any) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons(la->port);
		la->salen[0] = sizeof(*sin6);
	} else if (la->localhost) {
		(void)parse_ip("127.0.0.1", la->port, &la->sa[0],
		    &la->salen[0]);
		if (!(flags & ADDR_LO_V4)) {
			(void)parse_ip("::1", la->port, &la->sa[1],
			    &la->salen[1]);
			la->nsa = 2;
		}
	} else if (la->sa[0].ss_family == AF_INET) {
		((struct sockaddr_in *)&la->sa[0])->sin_port = htons(la->port);
		la->salen[0] = sizeof(struct sockaddr_in);
	} else {
		sin6->sin6_port = htons(la->port);
		la->salen[0] = sizeof(*sin6);
	}
done:
	memcpy(la->text, s, strlen(s) + 1);
	return 0;
fail:
	memset(la, 0, sizeof(*la));
	return -1;
}

/*
 * The address as the daemon understood it, in the syntax addr_parse
 * reads: IPv6 as inet_ntop writes it, the port without leading zeros.
 */
const char *
addr_fmt(const struct listen_addr *la, char *buf, size_t len)
{
	const struct sockaddr_in6	*sin6 = (const void *)&la->sa[0];
	char				 a[INET6_ADDRSTRLEN];
	char				 scope[IF_NAMESIZE + 1] = "";

	if (len == 0)
		return buf;
	if (la->kind == ADDR_UNIX)
		snprintf(buf, len, "unix:%s", addr_path(la));
	else if (la->kind != ADDR_INET)
		snprintf(buf, len, "none");
	else if (la->any)
		snprintf(buf, len, "*:%u", la->port);
	else if (la->localhost)
		snprintf(buf, len, "localhost:%u", la->port);
	else if (la->sa[0].ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)
		    &la->sa[0])->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, la->port);
	} else {
		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		if (sin6->sin6_scope_id != 0 &&
		    if_indextoname(sin6->sin6_scope_id, scope + 1) != NULL)
			scope[0] = '%';
		snprintf(buf, len, "[%s%s]:%u", a, scope, la->port);
	}
	return buf;
}

/* The same place to listen on, however it was written. */
int
addr_equal(const struct listen_addr *a, const struct listen_addr *b)
{
	int i;

	if (a->kind != b->kind || a->any != b->any ||
	    a->localhost != b->localhost || a->port != b->port ||
	    a->nsa != b->nsa)
		return 0;
	for (i = 0; i < a->nsa; i++)
		if (a->salen[i] != b->salen[i] ||
		    memcmp(&a->sa[i], &b->sa[i], a->salen[i]) != 0)
			return 0;
	return 1;
}

/* Whether only this host can connect: a Unix socket, or loopback only. */
int
addr_loopback(const struct listen_addr *la)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	int				 i;

	if (la->kind == ADDR_UNIX)
		return 1;
	if (la->kind != ADDR_INET || la->any)
		return 0;
	for (i = 0; i < la->nsa; i++) {
		sin = (const struct sockaddr_in *)&la->sa[i];
		sin6 = (const struct sockaddr_in6 *)&la->sa[i];
		if (la->sa[i].ss_family == AF_INET ?
		    (ntohl(sin->sin_addr.s_addr) >> 24) != 127 :
		    !IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return 0;
	}
	return 1;
}

/* The path of a Unix-domain address; "" for any other. */
const char *
addr_path(const struct listen_addr *la)
{
	if (la->kind != ADDR_UNIX)
		return "";
	return ((const struct sockaddr_un *)&la->sa[0])->sun_path;
}

static int
addr_socket(const struct sockaddr *sa, socklen_t len, int any)
{
	int fd, on = 1, v6only = !any, saved;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -1;
	if (sa->sa_family != AF_UNIX) {
		/*
		 * SO_REUSEPORT: a new master binds beside the one it takes
		 * over from; a second daemon is refused before that
		 * (takeover_probe_listen).
		 */
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on)) == -1 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on,
		    sizeof(on)) == -1)
			goto fail;
		if (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
		    IPV6_V6ONLY, &v6only, sizeof(v6only)) == -1)
			goto fail;
	}
	if (bind(fd, sa, len) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/*
 * A non-blocking TCP (or Unix stream) socket bound to la's i-th address,
 * not yet listening; -1 with errno.  "*" takes both families on one
 * socket, or IPv4 alone on a host without IPv6.
 */
int
addr_bind(const struct listen_addr *la, int i)
{
	struct sockaddr_in	sin;
	int			fd;

	if (la->kind == ADDR_NONE || i < 0 || i >= la->nsa) {
		errno = EINVAL;
		return -1;
	}
	fd = addr_socket((const struct sockaddr *)&la->sa[i], la->salen[i],
	    la->any);
	if (fd == -1 && la->any && errno == EAFNOSUPPORT) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_ANY);
		sin.sin_port = htons(la->port);
		fd = addr_socket((const struct sockaddr *)&sin, sizeof(sin),
		    0);
	}
	return fd;
}
