/*
 * TLS to Redis.  Debian's hiredis (0.14) has no TLS and cannot be handed
 * a socket, so the master bridges: hiredis connects to a Unix socket in
 * a private directory (0700, made after privileges went, removed at
 * exit), one socket per connection of the master (redis_conn.c's, and a
 * standby's subscription in redis_mirror.c), and this file takes that
 * connection (from this process only: SO_PEERCRED), connects to Redis
 * over TCP, does the TLS handshake
 * (1.2 or later, Redis's certificate checked against redis-tls-ca and
 * its name against redis-tls-server-name or the address, a client
 * certificate if configured) and copies bytes both ways on the master's
 * loop.  Each way has a bounded buffer: a full one stops reading its
 * source, so neither side can make the master hold more, and nothing
 * blocks.  Any failure closes both sides; redis_conn.c sees hiredis's
 * connection go, asks rtls_why why, and connects again with its backoff
 * (redis_mirror.c with its own).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "repl_int.h"

#define RT_BUF		(64 * 1024)	/* bytes each way */
#define RT_HANDSHAKE_MS	3000		/* TCP connect and TLS handshake */

enum { RT_IDLE, RT_CONNECTING, RT_HANDSHAKE, RT_UP };

static struct {
	struct event_base	*base;
	const struct config	*conf;
	SSL_CTX			*ctx;
	char			 dir[96];	/* fits sun_path with a name */
} rt;

/* One hiredis connection's bridge: RTLS_MAIN's or RTLS_MIRROR's. */
struct rt_br {
	const char		*name;
	int			 lfd;
	struct event		*lev;
	char			 path[sizeof(((struct sockaddr_un *)0)->sun_path)];

	/* the bridge: hiredis's end (ufd) and Redis's (tfd) */
	int			 state;
	int			 ufd, tfd;
	SSL			*ssl;
	struct event		*ur, *uw, *tr, *tw, *timer;
	size_t			 uplen, downlen;
	int			 wpend;		/* SSL_write to repeat */
	uint64_t		 answered;	/* bytes from Redis */

	/* why the last bridge went, for the log line of its user */
	char			 why[256];
	int			 why_early;	/* before Redis said a thing */
	int			 have_why;

	unsigned char		 up[RT_BUF];	/* hiredis to Redis */
	unsigned char		 down[RT_BUF];	/* Redis to hiredis */
};

static struct rt_br	rt_br[RTLS_NCONN] = {
	{ .name = "redis", .lfd = -1, .ufd = -1, .tfd = -1 },
	{ .name = "mirror", .lfd = -1, .ufd = -1, .tfd = -1 },
};

static void
rt_close(struct rt_br *b)
{
	struct event	**ev[5] = { &b->ur, &b->uw, &b->tr, &b->tw,
			    &b->timer };
	int		  i;

	for (i = 0; i < 5; i++)
		if (*ev[i] != NULL) {
			event_free(*ev[i]);
			*ev[i] = NULL;
		}
	if (b->ssl != NULL)
		SSL_free(b->ssl);
	b->ssl = NULL;
	if (b->ufd != -1)
		close(b->ufd);
	if (b->tfd != -1)
		close(b->tfd);
	b->ufd = b->tfd = -1;
	b->uplen = b->downlen = 0;
	b->wpend = 0;
	b->state = RT_IDLE;
	ERR_clear_error();
}

/* Close both sides, and keep why for redis_conn.c. */
static void
rt_fail(struct rt_br *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->why, sizeof(b->why), fmt, ap);
	va_end(ap);
	b->why_early = b->answered == 0;
	b->have_why = 1;
	rt_close(b);
}

/* The TLS error of an SSL call that failed: its text in why. */
static void
rt_ssl_fail(struct rt_br *b, const char *what, int r)
{
	unsigned long	 e = ERR_peek_last_error();
	long		 v;
	const char	*reason;
	int		 err = SSL_get_error(b->ssl, r), saved = errno;

	if (b->state == RT_HANDSHAKE &&
	    (v = SSL_get_verify_result(b->ssl)) != X509_V_OK) {
		rt_fail(b, "TLS: certificate verify failed: %s",
		    X509_verify_cert_error_string(v));
		return;
	}
	if (err == SSL_ERROR_ZERO_RETURN)
		rt_fail(b, "TLS: Redis closed the connection");
	else if (err == SSL_ERROR_SSL && e != 0 &&
	    (reason = ERR_reason_error_string(e)) != NULL)
		rt_fail(b, "TLS %s: %s", what, reason);
	else if (err == SSL_ERROR_SYSCALL && saved != 0)
		rt_fail(b, "TLS %s: %s", what, strerror(saved));
	else
		rt_fail(b, "TLS %s: connection closed by Redis", what);
}

static void
rt_set(struct event *ev, int on)
{
	if (on) {
		if (!event_pending(ev, EV_READ | EV_WRITE, NULL))
			event_add(ev, NULL);
	} else
		event_del(ev);
}

/* hiredis's side, in every state: 0, or -1 when the bridge is gone. */
static int
rt_unix(struct rt_br *b, int *progress)
{
	ssize_t n;

	if (b->uplen < RT_BUF) {
		n = read(b->ufd, b->up + b->uplen, RT_BUF - b->uplen);
		if (n > 0) {
			b->uplen += (size_t)n;
			*progress = 1;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			/* hiredis let go (or gave up on us): nothing to say */
			rt_close(b);
			return -1;
		}
	}
	if (b->downlen > 0) {
		n = send(b->ufd, b->down, b->downlen, MSG_NOSIGNAL);
		if (n > 0) {
			memmove(b->down, b->down + n, b->downlen - (size_t)n);
			b->downlen -= (size_t)n;
			*progress = 1;
		} else if (n == -1 && errno != EAGAIN && errno != EINTR) {
			rt_close(b);
			return -1;
		}
	}
	return 0;
}

/* The TLS side once up: 0, or -1 when the bridge is gone. */
static int
rt_tls(struct rt_br *b, int *progress, int *want_r, int *want_w)
{
	int r, len, e;

	if (b->uplen > 0) {
		len = b->wpend > 0 ? b->wpend : (int)b->uplen;
		if ((r = SSL_write(b->ssl, b->up, len)) > 0) {
			memmove(b->up, b->up + r, b->uplen - (size_t)r);
			b->uplen -= (size_t)r;
			b->wpend = 0;
			*progress = 1;
		} else if ((e = SSL_get_error(b->ssl, r)) ==
		    SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			/* OpenSSL wants the same call again */
			b->wpend = len;
			*(e == SSL_ERROR_WANT_READ ? want_r : want_w) = 1;
		} else {
			rt_ssl_fail(b, "write", r);
			return -1;
		}
	}
	if (b->downlen < RT_BUF) {
		r = SSL_read(b->ssl, b->down + b->downlen, RT_BUF -
		    (int)b->downlen);
		if (r > 0) {
			b->downlen += (size_t)r;
			b->answered += (uint64_t)r;
			*progress = 1;
		} else if ((e = SSL_get_error(b->ssl, r)) ==
		    SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			*(e == SSL_ERROR_WANT_READ ? want_r : want_w) = 1;
		else {
			rt_ssl_fail(b, "read", r);
			return -1;
		}
	}
	return 0;
}

/* The TCP connect's end, then the handshake: 0, or -1 (gone). */
static int
rt_handshake(struct rt_br *b, int *want_r, int *want_w)
{
	socklen_t	len = sizeof(int);
	int		err = 0, r, e;

	if (b->state == RT_CONNECTING) {
		if (getsockopt(b->tfd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err == EINPROGRESS || err == EALREADY) {
			*want_w = 1;
			return 0;
		}
		if (err != 0) {
			rt_fail(b, "connect: %s", strerror(err));
			return -1;
		}
		b->state = RT_HANDSHAKE;
	}
	if ((r = SSL_do_handshake(b->ssl)) == 1) {
		b->state = RT_UP;
		event_del(b->timer);
		log_debug("redis %s: TLS up (%s, %s)", rt.conf->redis,
		    SSL_get_version(b->ssl), SSL_get_cipher_name(b->ssl));
		return 0;
	}
	e = SSL_get_error(b->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		*want_r = 1;
	else if (e == SSL_ERROR_WANT_WRITE)
		*want_w = 1;
	else {
		rt_ssl_fail(b, "handshake", r);
		return -1;
	}
	return 0;
}

/*
 * Everything that can move without waiting, then wait for what is
 * needed: hiredis readable while its buffer has room, writable while
 * Redis's has bytes; Redis readable while its buffer has room (or
 * OpenSSL wants to read), writable when OpenSSL wants to write.
 */
static void
rt_pump(struct rt_br *b)
{
	int progress, want_r, want_w;

	do {
		progress = want_r = want_w = 0;
		if (rt_unix(b, &progress) == -1)
			return;
		if (b->state != RT_UP) {
			if (rt_handshake(b, &want_r, &want_w) == -1)
				return;
			if (b->state == RT_UP)
				progress = 1;
		} else if (rt_tls(b, &progress, &want_r, &want_w) == -1)
			return;
	} while (progress);
	rt_set(b->ur, b->uplen < RT_BUF);
	rt_set(b->uw, b->downlen > 0);
	rt_set(b->tr, want_r);
	rt_set(b->tw, want_w);
}

static void
rt_io(evutil_socket_t fd, short ev, void *arg)
{
	struct rt_br *b = arg;

	if (b->state != RT_IDLE)
		rt_pump(b);
}

static void
rt_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct rt_br *b = arg;

	if (b->state == RT_CONNECTING)
		rt_fail(b, "connect timed out after %d s",
		    RT_HANDSHAKE_MS / 1000);
	else if (b->state == RT_HANDSHAKE)
		rt_fail(b, "TLS handshake timed out after %d s",
		    RT_HANDSHAKE_MS / 1000);
}

/* Redis's side of a new bridge: 0, or -1 with why kept. */
static int
rt_open(struct rt_br *b)
{
	const struct config	*c = rt.conf;
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 sslen;
	struct timeval		 tv = { RT_HANDSHAKE_MS / 1000,
				    (RT_HANDSHAKE_MS % 1000) * 1000 };
	int			 one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, c->redis_host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(c->redis_port);
		sslen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, c->redis_host, &sin6->sin6_addr) ==
	    1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(c->redis_port);
		sslen = sizeof(*sin6);
	} else {
		rt_fail(b, "not a numeric address");
		return -1;
	}
	if ((b->tfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		rt_fail(b, "socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(b->tfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(b->tfd, (struct sockaddr *)&ss, sslen) == -1 &&
	    errno != EINPROGRESS) {
		rt_fail(b, "connect: %s", strerror(errno));
		return -1;
	}
	if ((b->ssl = SSL_new(rt.ctx)) == NULL ||
	    SSL_set_fd(b->ssl, b->tfd) != 1) {
		rt_fail(b, "TLS: SSL_new failed");
		return -1;
	}
	SSL_set_mode(b->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	    SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (c->redis_tls_name != NULL) {
		if (SSL_set_tlsext_host_name(b->ssl, c->redis_tls_name) != 1 ||
		    SSL_set1_host(b->ssl, c->redis_tls_name) != 1) {
			rt_fail(b, "TLS: cannot set the server name");
			return -1;
		}
	} else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(b->ssl),
	    c->redis_host) != 1) {
		rt_fail(b, "TLS: cannot check the address");
		return -1;
	}
	SSL_set_connect_state(b->ssl);
	b->ur = event_new(rt.base, b->ufd, EV_READ | EV_PERSIST, rt_io, b);
	b->uw = event_new(rt.base, b->ufd, EV_WRITE | EV_PERSIST, rt_io, b);
	b->tr = event_new(rt.base, b->tfd, EV_READ | EV_PERSIST, rt_io, b);
	b->tw = event_new(rt.base, b->tfd, EV_WRITE | EV_PERSIST, rt_io, b);
	b->timer = evtimer_new(rt.base, rt_timeout, b);
	if (b->ur == NULL || b->uw == NULL || b->tr == NULL || b->tw == NULL ||
	    b->timer == NULL)
		fatalx("redis TLS: event_new");
	evtimer_add(b->timer, &tv);
	b->state = RT_CONNECTING;
	return 0;
}

/* hiredis connected: only this process's, one bridge per socket. */
static void
rt_accept(evutil_socket_t lfd, short ev, void *arg)
{
	struct rt_br	*b = arg;
	struct ucred	 cred = { .pid = -1 };
	socklen_t	 len = sizeof(cred);
	int		 fd;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) ==
	    -1)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    cred.pid != getpid() || cred.uid != geteuid()) {
		log_warnx("redis %s: TLS bridge: a connection from pid %ld, "
		    "not this master, refused", rt.conf->redis,
		    (long)cred.pid);
		close(fd);
		return;
	}
	rt_close(b);		/* its user has one connection: this one */
	b->have_why = 0;
	b->answered = 0;
	b->ufd = fd;
	if (rt_open(b) == -1)
		return;
	rt_pump(b);
}

/* One PEM text's certificates: into the store (ca) or as ours. */
static int
rt_certs(const char *pem, int ca)
{
	BIO	*bio;
	X509	*x;
	int	 n = 0, r = 0;

	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return -1;
	while (r == 0 && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) !=
	    NULL) {
		if (ca)
			r = X509_STORE_add_cert(SSL_CTX_get_cert_store(rt.ctx),
			    x) == 1 ? 0 : -1;
		else if (n == 0)
			r = SSL_CTX_use_certificate(rt.ctx, x) == 1 ? 0 : -1;
		else
			r = SSL_CTX_add1_chain_cert(rt.ctx, x) == 1 ? 0 : -1;
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	BIO_free(bio);
	return r == 0 && n > 0 ? 0 : -1;
}

static int
rt_context(const struct config *c)
{
	BIO		*bio;
	EVP_PKEY	*key;

	if ((rt.ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		log_warnx("redis: TLS: SSL_CTX_new failed");
		return -1;
	}
	SSL_CTX_set_min_proto_version(rt.ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(rt.ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(rt.ctx, SSL_VERIFY_PEER, NULL);
	if (rt_certs(c->redis_tls_pem[0], 1) == -1) {
		log_warnx("redis-tls-ca %s: no usable certificate",
		    c->redis_tls_ca);
		return -1;
	}
	if (c->redis_tls_pem[1] == NULL)
		return 0;
	if (rt_certs(c->redis_tls_pem[1], 0) == -1) {
		log_warnx("redis-tls-cert %s: no usable certificate",
		    c->redis_tls_cert);
		return -1;
	}
	if ((bio = BIO_new_mem_buf(c->redis_tls_pem[2], -1)) == NULL)
		return -1;
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key == NULL || SSL_CTX_use_PrivateKey(rt.ctx, key) != 1 ||
	    SSL_CTX_check_private_key(rt.ctx) != 1) {
		EVP_PKEY_free(key);
		ERR_clear_error();
		log_warnx("redis-tls-key %s: not a private key, or not the "
		    "key of redis-tls-cert", c->redis_tls_key);
		return -1;
	}
	EVP_PKEY_free(key);
	ERR_clear_error();
	return 0;
}

/* The private directory, made as the daemon's user. */
static int
rt_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > 64)
		tmp = "/tmp";
	snprintf(rt.dir, sizeof(rt.dir), "%s/rtpproxyd-redis.XXXXXX", tmp);
	if (mkdtemp(rt.dir) == NULL) {
		log_warn("redis: TLS bridge: mkdtemp %s", rt.dir);
		rt.dir[0] = '\0';
		return -1;
	}
	(void)chmod(rt.dir, 0700);
	return 0;
}

/* A bridge's socket in it. */
static int
rt_listen(struct rt_br *b)
{
	struct sockaddr_un sun;

	snprintf(b->path, sizeof(b->path), "%s/%s.sock", rt.dir, b->name);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, b->path, sizeof(sun.sun_path));
	if ((b->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 ||
	    bind(b->lfd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(b->lfd, 4) == -1) {
		log_warn("redis: TLS bridge: %s", b->path);
		return -1;
	}
	if ((b->lev = event_new(rt.base, b->lfd, EV_READ | EV_PERSIST,
	    rt_accept, b)) == NULL)
		fatalx("redis TLS: event_new");
	event_add(b->lev, NULL);
	return 0;
}

/* 0, or -1 (logged). */
int
rtls_start(struct event_base *base, const struct config *c)
{
	rt.base = base;
	rt.conf = c;
	if (rt_context(c) == -1 || rt_dir() == -1 ||
	    rt_listen(&rt_br[RTLS_MAIN]) == -1 ||
	    (c->nstandby > 0 && rt_listen(&rt_br[RTLS_MIRROR]) == -1)) {
		rtls_stop();
		return -1;
	}
	log_info("redis %s: TLS%s, server name %s", c->redis,
	    c->redis_tls_cert != NULL ? " with a client certificate" : "",
	    c->redis_tls_name != NULL ? c->redis_tls_name : c->redis_host);
	return 0;
}

/* Where hiredis connects: RTLS_MAIN, or RTLS_MIRROR (a standby's). */
const char *
rtls_path(int which)
{
	return rt_br[which].path;
}

/*
 * Why which's last bridge went, once: 1 when Redis never answered through
 * it (a failed connection), 0 when it went later, -1: nothing known.
 */
int
rtls_why(int which, char *buf, size_t len)
{
	struct rt_br *b = &rt_br[which];

	if (!b->have_why)
		return -1;
	b->have_why = 0;
	snprintf(buf, len, "%s", b->why);
	return b->why_early;
}

void
rtls_stop(void)
{
	struct rt_br	*b;
	int		 i;

	for (i = 0; i < RTLS_NCONN; i++) {
		b = &rt_br[i];
		rt_close(b);
		if (b->lev != NULL)
			event_free(b->lev);
		b->lev = NULL;
		if (b->lfd != -1)
			close(b->lfd);
		b->lfd = -1;
		if (b->path[0] != '\0')
			(void)unlink(b->path);
		b->path[0] = '\0';
	}
	if (rt.dir[0] != '\0')
		(void)rmdir(rt.dir);
	rt.dir[0] = '\0';
	if (rt.ctx != NULL)
		SSL_CTX_free(rt.ctx);
	rt.ctx = NULL;
}
