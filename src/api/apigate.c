/*
 * The API's front door: the master accepts every API connection itself,
 * and only then hands it to gRPC.
 *
 * gRPC C core 1.51 (Debian 12's) cannot defend itself against the HTTP/2
 * attacks found after it: rapid reset took the master to gigabytes, and a
 * CONTINUATION flood too; and it has no limit on connections, so idle ones
 * could take the descriptors that sessions need.  So each connection is
 * accepted here and joined to gRPC through a socketpair
 * (grpc_server_add_channel_from_fd), and the master copies the bytes
 * between the two on its loop.  On the way in they pass through h2scan,
 * which closes a connection that crosses a line no real client crosses,
 * and logs its peer.  Here are also the limits on connections (in all and
 * per client address) and the deadline for a new connection to say it
 * speaks HTTP/2.  With TLS, it is terminated here (OpenSSL), because the
 * frames are what must be seen; gRPC gets the plain HTTP/2.
 *
 * A copy in each direction waits when the other side does not take it:
 * at most GATE_HIGH octets are held per direction, and a client that does
 * not read its answers is not read either.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf.h"
#include "apigate.h"
#include "gate_int.h"
#include "h2scan.h"

#define GATE_HIGH		(256 * 1024)	/* octets held per direction */
#define GATE_BACKLOG		1024
#define GATE_ACCEPT_BATCH	64
#define GATE_MAX_LISTEN		(2 * CONF_MAX_LISTEN)
#define GATE_EMFILE_PAUSE_MS	100
#define GATE_LOG_PER_SEC	10

struct gate_listener {
	int		 fd;
	struct event	*ev;
	char		 name[128];	/* as configured */
	int		 unix_sock;
};

/* What a gRPC descriptor was last joined to: for naming a late call. */
struct gate_fdname {
	struct gate_conn	*c;
	char			 peer[160];
	char			 cn[64];
};

struct gate_conn {
	TAILQ_ENTRY(gate_conn)	 entry;
	struct gate_client	*client;
	struct bufferevent	*cli;		/* the client's side */
	struct bufferevent	*srv;		/* ours of gRPC's socketpair */
	int			 grpc_fd;	/* gRPC's end, for gate_peer */
	struct event		*timer;		/* until the preface is in */
	struct sockaddr_storage	 addr;		/* the client's */
	uid_t			 uid;		/* unix: the client's user */
	int			 unix_sock;
	int			 tls;
	int			 closing;	/* flushing to the client */
	int			 goaway;	/* 1 wanted, 2 sent */
	struct h2frames		 out;		/* gRPC's frames to the client */
	char			 peer[160];	/* as gRPC would name it */
	struct h2scan		 scan;
};
TAILQ_HEAD(gate_conns, gate_conn);

static struct {
	struct event_base	*base;
	grpc_server		*server;
	grpc_server_credentials	*creds;
	struct gate_listener	 l[GATE_MAX_LISTEN];
	int			 nl;
	struct event		*resume_ev;	/* after EMFILE */
	struct gate_conns	 conns;
	int			 nconns;
	struct gate_fdname	*byfd;		/* by grpc_fd */
	int			 nbyfd;
	struct gate_clients	 clients;
	struct h2rates		 all;		/* every client's */
	struct gate_limits	 lim;
	struct gate_tls		 tls;		/* tls.ctx NULL: plain text */
	struct gate_stats	 st;
	int64_t			 log_sec;
	int			 log_n;
	uint64_t		 log_quiet;
} gate;

static void	gate_free(struct gate_conn *);
static void	gate_cn(struct gate_conn *, char *, size_t);

/* Refusals and closes are logged, but a flood of them is summarised. */
static void __printflike(1, 2)
gate_log(const char *fmt, ...)
{
	va_list	ap;
	char	buf[512];
	int64_t	sec = mono_ms() / 1000;

	if (sec != gate.log_sec) {
		if (gate.log_quiet > 0)
			log_notice("grpc: %llu more connections refused or "
			    "closed, not logged",
			    (unsigned long long)gate.log_quiet);
		gate.log_sec = sec;
		gate.log_n = 0;
		gate.log_quiet = 0;
	}
	if (gate.log_n++ >= GATE_LOG_PER_SEC) {
		gate.log_quiet++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_notice("%s", buf);
}

/* "ipv4:127.0.0.1:5000", as gRPC names its peers. */
static void
gate_name(struct gate_conn *c)
{
	char	a[INET6_ADDRSTRLEN];
	const struct sockaddr_in  *sin = (const void *)&c->addr;
	const struct sockaddr_in6 *sin6 = (const void *)&c->addr;

	if (c->unix_sock)
		snprintf(c->peer, sizeof(c->peer), "unix:(uid %ld)",
		    (long)c->uid);
	else if (c->addr.ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(c->peer, sizeof(c->peer), "ipv4:%s:%u", a,
		    ntohs(sin->sin_port));
	} else {
		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(c->peer, sizeof(c->peer), "ipv6:[%s]:%u", a,
		    ntohs(sin6->sin6_port));
	}
}

/* --- copying ---------------------------------------------------------- */

/* Read from the client only while both directions have room. */
static void
gate_flow(struct gate_conn *c)
{
	if (c->closing)
		return;
	if (evbuffer_get_length(bufferevent_get_output(c->srv)) < GATE_HIGH &&
	    evbuffer_get_length(bufferevent_get_output(c->cli)) < GATE_HIGH)
		bufferevent_enable(c->cli, EV_READ);
	else
		bufferevent_disable(c->cli, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->cli)) < GATE_HIGH)
		bufferevent_enable(c->srv, EV_READ);
	else
		bufferevent_disable(c->srv, EV_READ);
}

static void
gate_close(struct gate_conn *c, enum gate_reason why)
{
	gate.st.closed[why]++;
	if (why != GATE_CLOSED_NORMAL)
		gate_log("grpc: closing the connection from %s: %s", c->peer,
		    gate_reason_name(why));
	gate_free(c);
}

static enum gate_reason
gate_reason_of(enum h2verdict v)
{
	switch (v) {
	case H2_NOT_HTTP2:
		return GATE_CLOSED_NOT_HTTP2;
	case H2_HEADER_FLOOD:
		return GATE_CLOSED_HEADER_FLOOD;
	case H2_RESET_FLOOD:
		return GATE_CLOSED_RESET_FLOOD;
	case H2_CONTROL_FLOOD:
		return GATE_CLOSED_CONTROL_FLOOD;
	case H2_OK:
		break;
	}
	return GATE_CLOSED_NORMAL;
}

/* What the client sent: scanned, then on to gRPC. */
static void
gate_cli_read(struct bufferevent *bev, void *arg)
{
	struct gate_conn	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_iovec	 v[16];
	enum h2verdict		 verdict = H2_OK;
	int			 i, n;
	int64_t			 now = mono_ms();

	if (c->closing) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	n = evbuffer_peek(in, -1, NULL, v, 16);
	if (n > 16) {
		/* More chains than the array: scan in two goes. */
		struct evbuffer_ptr p;
		size_t done = 0;

		for (i = 0; i < 16 && verdict == H2_OK; i++) {
			verdict = h2scan_feed(&c->scan, &c->client->rates,
			    &gate.all, v[i].iov_base, v[i].iov_len, now);
			done += v[i].iov_len;
		}
		while (verdict == H2_OK && done < evbuffer_get_length(in)) {
			evbuffer_ptr_set(in, &p, done, EVBUFFER_PTR_SET);
			n = evbuffer_peek(in, -1, &p, v, 1);
			if (n < 1)
				break;
			verdict = h2scan_feed(&c->scan, &c->client->rates,
			    &gate.all, v[0].iov_base, v[0].iov_len, now);
			done += v[0].iov_len;
		}
	} else
		for (i = 0; i < n && verdict == H2_OK; i++)
			verdict = h2scan_feed(&c->scan, &c->client->rates,
			    &gate.all, v[i].iov_base, v[i].iov_len, now);
	if (verdict != H2_OK) {
		gate_close(c, gate_reason_of(verdict));
		return;
	}
	if (c->timer != NULL && h2scan_started(&c->scan)) {
		event_free(c->timer);
		c->timer = NULL;
	}
	bufferevent_write_buffer(c->srv, in);
	gate_flow(c);
}

/* GOAWAY to the client, between two of gRPC's frames. */
static void
gate_send_goaway(struct gate_conn *c)
{
	uint8_t f[H2_GOAWAY_LEN];

	h2_goaway(f, c->scan.max_sid);
	bufferevent_write(c->cli, f, sizeof(f));
	c->goaway = 2;
}

/*
 * What gRPC answered: on to the client.  Its frames are followed, so that
 * a GOAWAY of the gate's own can go between two of them.
 */
static void
gate_srv_read(struct bufferevent *bev, void *arg)
{
	struct gate_conn	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_iovec	 v;
	size_t			 k;

	while (evbuffer_get_length(in) > 0) {
		if (c->goaway == 1 && h2frames_at_boundary(&c->out))
			gate_send_goaway(c);
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		k = h2frames_follow(&c->out, v.iov_base, v.iov_len,
		    c->goaway == 1);
		evbuffer_remove_buffer(in, bufferevent_get_output(c->cli), k);
	}
	if (c->goaway == 1 && h2frames_at_boundary(&c->out))
		gate_send_goaway(c);
	gate_flow(c);
}

static void
gate_drained(struct bufferevent *bev, void *arg)
{
	struct gate_conn *c = arg;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(c->cli)) == 0)
			gate_close(c, GATE_CLOSED_NORMAL);
		return;
	}
	gate_flow(c);
}

static void
gate_cli_event(struct bufferevent *bev, short what, void *arg)
{
	struct gate_conn	*c = arg;
	unsigned long		 e;
	char			 buf[160];

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (c->tls && !h2scan_started(&c->scan) &&
	    (e = bufferevent_get_openssl_error(bev)) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		gate.st.tls_failed++;
		gate_log("grpc: TLS with %s failed: %s", c->peer, buf);
		gate_close(c, GATE_CLOSED_NORMAL);
		return;
	}
	/* The client is gone: what it sent is already with gRPC. */
	gate_close(c, GATE_CLOSED_NORMAL);
}

static void
gate_srv_event(struct bufferevent *bev, short what, void *arg)
{
	struct gate_conn *c = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/* gRPC closed the connection: let its last words reach the client. */
	c->closing = 1;
	bufferevent_disable(c->cli, EV_READ);
	bufferevent_disable(c->srv, EV_READ | EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_output(c->cli)) == 0)
		gate_close(c, GATE_CLOSED_NORMAL);
}

static void
gate_too_slow(evutil_socket_t fd, short what, void *arg)
{
	struct gate_conn *c = arg;

	gate_close(c, GATE_CLOSED_HANDSHAKE);
}

/* --- connections ------------------------------------------------------- */

static void
gate_free(struct gate_conn *c)
{
	TAILQ_REMOVE(&gate.conns, c, entry);
	gate.nconns--;
	if (c->client != NULL)
		gate_client_put(&gate.clients, c->client);
	if (c->grpc_fd >= 0 && c->grpc_fd < gate.nbyfd &&
	    gate.byfd[c->grpc_fd].c == c) {
		gate_cn(c, gate.byfd[c->grpc_fd].cn,
		    sizeof(gate.byfd[c->grpc_fd].cn));
		gate.byfd[c->grpc_fd].c = NULL;
	}
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->cli != NULL) {
		SSL *ssl = c->tls ? bufferevent_openssl_get_ssl(c->cli) : NULL;

		if (ssl != NULL)
			SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
		bufferevent_free(c->cli);
	}
	if (c->srv != NULL)
		bufferevent_free(c->srv);
	free(c);
}

/* The common name of a client's certificate, or "". */
static void
gate_cn(struct gate_conn *c, char *cn, size_t cnlen)
{
	X509	*x;
	SSL	*ssl;

	cn[0] = '\0';
	if (!c->tls || !gate.tls.mtls || c->cli == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(c->cli)) == NULL ||
	    (x = SSL_get1_peer_certificate(ssl)) == NULL)
		return;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, cn, (int)cnlen) < 0)
		cn[0] = '\0';
	X509_free(x);
}

static void
gate_remember(struct gate_conn *c)
{
	struct gate_fdname	*f;
	int			 n;

	if (c->grpc_fd >= gate.nbyfd) {
		n = gate.nbyfd ? gate.nbyfd : 64;
		while (n <= c->grpc_fd)
			n *= 2;
		gate.byfd = xreallocarray(gate.byfd, (size_t)n,
		    sizeof(*gate.byfd));
		memset(gate.byfd + gate.nbyfd, 0,
		    (size_t)(n - gate.nbyfd) * sizeof(*gate.byfd));
		gate.nbyfd = n;
	}
	f = &gate.byfd[c->grpc_fd];
	f->c = c;
	snprintf(f->peer, sizeof(f->peer), "%s", c->peer);
	f->cn[0] = '\0';
}

/* A new client connection fd from listener l: limits, then gRPC. */
static void
gate_new(int fd, const struct sockaddr_storage *addr,
    const struct gate_listener *l)
{
	struct gate_conn	*c;
	struct ucred		 cred;
	socklen_t		 clen = sizeof(cred);
	struct timeval		 tv;
	int			 sv[2], on = 1, n;
	SSL			*ssl = NULL;

	c = xcalloc(1, sizeof(*c));
	c->grpc_fd = -1;
	c->addr = *addr;
	c->unix_sock = l->unix_sock;
	c->uid = (uid_t)-1;
	if (c->unix_sock && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
	    &clen) == 0)
		c->uid = cred.uid;
	gate_name(c);

	if (gate.nconns >= (int)gate.lim.max_conns) {
		gate.st.refused_total++;
		gate_log("grpc: refusing a connection from %s: %d connections "
		    "are open (api-max-connections)", c->peer, gate.nconns);
		goto refuse;
	}
	c->client = gate_client_get(&gate.clients, addr, c->unix_sock, c->uid);
	if (gate.lim.max_per_client > 0 &&
	    (n = c->client->nconns - 1) >= (int)gate.lim.max_per_client) {
		gate.st.refused_client++;
		gate_log("grpc: refusing a connection from %s: it has %d open "
		    "(api-max-connections-per-client)", c->peer, n);
		goto refuse;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1) {
		gate.st.refused_fd++;
		gate_log("grpc: refusing a connection from %s: socketpair: %s",
		    c->peer, strerror(errno));
		goto refuse;
	}
	if (!c->unix_sock)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (gate.tls.ctx != NULL) {
		if ((ssl = SSL_new(gate.tls.ctx)) == NULL) {
			close(sv[0]);
			close(sv[1]);
			gate_log("grpc: refusing a connection from %s: "
			    "SSL_new failed", c->peer);
			goto refuse;
		}
		c->tls = 1;
		c->cli = bufferevent_openssl_socket_new(gate.base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (c->cli != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(c->cli, 1);
	} else
		c->cli = bufferevent_socket_new(gate.base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	if (c->cli == NULL) {
		if (ssl != NULL)
			SSL_free(ssl);
		close(sv[0]);
		close(sv[1]);
		goto refuse;
	}
	fd = -1;		/* the bufferevent's now */
	c->srv = bufferevent_socket_new(gate.base, sv[0],
	    BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(gate.base, gate_too_slow, c);
	if (c->srv == NULL || c->timer == NULL) {
		if (c->srv == NULL)
			close(sv[0]);
		close(sv[1]);
		TAILQ_INSERT_TAIL(&gate.conns, c, entry);
		gate.nconns++;
		gate_free(c);
		return;
	}
	h2scan_init(&c->scan, &gate.lim.h2);
	bufferevent_setcb(c->cli, gate_cli_read, gate_drained, gate_cli_event,
	    c);
	bufferevent_setcb(c->srv, gate_srv_read, gate_drained, gate_srv_event,
	    c);
	bufferevent_enable(c->cli, EV_READ | EV_WRITE);
	bufferevent_enable(c->srv, EV_READ | EV_WRITE);
	tv.tv_sec = gate.lim.handshake_s;
	tv.tv_usec = 0;
	evtimer_add(c->timer, &tv);
	TAILQ_INSERT_TAIL(&gate.conns, c, entry);
	gate.nconns++;
	gate.st.accepted++;
	c->grpc_fd = sv[1];
	gate_remember(c);
	/* gRPC owns sv[1] from here, even when it fails. */
	grpc_server_add_channel_from_fd(gate.server, sv[1], gate.creds);
	return;

refuse:
	if (fd != -1)
		close(fd);
	if (c->client != NULL)
		gate_client_put(&gate.clients, c->client);
	free(c);
}

static void
gate_resume(evutil_socket_t fd, short what, void *arg)
{
	int i;

	for (i = 0; i < gate.nl; i++)
		if (gate.l[i].ev != NULL)
			event_add(gate.l[i].ev, NULL);
}

static void
gate_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct gate_listener	*l = arg;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	struct timeval		 tv;
	int			 fd, i, k;

	for (k = 0; k < GATE_ACCEPT_BATCH; k++) {
		len = sizeof(ss);
		memset(&ss, 0, sizeof(ss));
		fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EAGAIN || errno == EINTR ||
			    errno == ECONNABORTED)
				return;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* Wait for a descriptor; don't spin. */
				gate.st.refused_fd++;
				gate_log("grpc: cannot accept on %s: %s",
				    l->name, strerror(errno));
				for (i = 0; i < gate.nl; i++)
					if (gate.l[i].ev != NULL)
						event_del(gate.l[i].ev);
				tv.tv_sec = 0;
				tv.tv_usec = GATE_EMFILE_PAUSE_MS * 1000;
				evtimer_add(gate.resume_ev, &tv);
				return;
			}
			log_warn("grpc: accept on %s", l->name);
			return;
		}
		gate_new(fd, &ss, l);
	}
}

/* --- listening --------------------------------------------------------- */

/* A stale socket file is replaced; anything else at the path is not. */
static int
gate_unlink_stale(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			errno = EEXIST;
			return -1;
		}
		(void)unlink(path);
	}
	return 0;
}

/*
 * Listen on one configured address: localhost gives two sockets, and
 * either will do, as for gRPC.
 */
static int
gate_listen_addr(const struct listen_addr *la)
{
	struct gate_listener	*l;
	int			 i, fd, ok = 0, e = 0;

	if (gate.nl + la->nsa > GATE_MAX_LISTEN) {
		errno = ENOSPC;
		return -1;
	}
	if (la->kind == ADDR_UNIX && gate_unlink_stale(addr_path(la)) == -1)
		return -1;
	for (i = 0; i < la->nsa; i++) {
		if ((fd = addr_bind(la, i)) == -1 ||
		    listen(fd, GATE_BACKLOG) == -1) {
			if (e == 0)
				e = errno;
			if (fd != -1)
				close(fd);
			continue;
		}
		l = &gate.l[gate.nl++];
		snprintf(l->name, sizeof(l->name), "%s", la->text);
		l->fd = fd;
		l->unix_sock = la->kind == ADDR_UNIX;
		ok = 1;
	}
	if (!ok)
		errno = e;
	return ok ? 0 : -1;
}

/* --- TLS --------------------------------------------------------------- */

/* --- the interface ----------------------------------------------------- */

void
gate_defaults(struct gate_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->max_conns = 256;
	lim->max_per_client = 32;
	lim->handshake_s = 10;
	lim->h2.header_block_max = H2_HEADER_BLOCK_MAX;
	lim->h2.header_frames_max = H2_HEADER_FRAMES_MAX;
	lim->h2.reset_rate = H2_RESET_RATE;
	lim->h2.reset_burst = H2_RESET_BURST;
	lim->h2.control_rate = H2_CONTROL_RATE;
	lim->h2.control_burst = H2_CONTROL_BURST;
}

int
gate_start(struct event_base *base, grpc_server *server,
    const struct config *conf)
{
	char	err[256];
	int	i;

	memset(&gate, 0, sizeof(gate));
	TAILQ_INIT(&gate.conns);
	gate_clients_init(&gate.clients);
	gate.base = base;
	gate.server = server;
	gate.creds = grpc_insecure_server_credentials_create();
	gate_reconfigure(conf);
	if (conf->tls_pem[0] != NULL && gate_tls_load(&gate.tls, conf, err,
	    sizeof(err)) == -1) {
		log_warnx("grpc: TLS: %s", err);
		goto fail;
	}
	if ((gate.resume_ev = evtimer_new(base, gate_resume, NULL)) == NULL)
		goto fail;
	for (i = 0; i < conf->nlisten; i++) {
		int first = gate.nl, k;

		if (gate_listen_addr(&conf->listen[i]) == -1) {
			log_warnx("grpc: cannot listen on %s: %s",
			    conf->listen[i].text, errno == EINVAL ? "not an "
			    "address and port" : errno == EEXIST ? "the path "
			    "exists and is not a socket" : strerror(errno));
			goto fail;
		}
		for (k = first; k < gate.nl; k++) {
			gate.l[k].ev = event_new(base, gate.l[k].fd,
			    EV_READ | EV_PERSIST, gate_accept, &gate.l[k]);
			if (gate.l[k].ev == NULL ||
			    event_add(gate.l[k].ev, NULL) == -1)
				goto fail;
		}
		log_info("grpc: listening on %s%s", conf->listen[i].text,
		    gate.tls.ctx == NULL ? "" : gate.tls.mtls ?
		    " (TLS, client certificates required)" : " (TLS)");
	}
	return 0;
fail:
	gate_stop();
	return -1;
}

void
gate_reconfigure(const struct config *conf)
{
	gate_defaults(&gate.lim);
	gate.lim.max_conns = conf->api_max_conns;
	gate.lim.max_per_client = conf->api_max_per_client;
	gate.lim.handshake_s = conf->api_handshake_timeout;
	gate_tls_reload(&gate.tls, conf);
}

/*
 * Tell every client to open no new stream on its connection (GOAWAY):
 * gRPC clients take their next calls elsewhere (to a new master's
 * listener beside this one), or fail them UNAVAILABLE if there is none.
 */
void
gate_goaway_all(void)
{
	struct gate_conn *c;

	TAILQ_FOREACH(c, &gate.conns, entry) {
		if (c->closing || c->goaway || !h2scan_started(&c->scan))
			continue;
		c->goaway = 1;
		if (h2frames_at_boundary(&c->out))
			gate_send_goaway(c);
	}
}

void
gate_stop_listening(void)
{
	int i;

	for (i = 0; i < gate.nl; i++) {
		if (gate.l[i].ev != NULL)
			event_free(gate.l[i].ev);
		gate.l[i].ev = NULL;
		if (gate.l[i].fd != -1)
			close(gate.l[i].fd);
		gate.l[i].fd = -1;
	}
	gate.nl = 0;
	if (gate.resume_ev != NULL)
		evtimer_del(gate.resume_ev);
}

/*
 * Every connection closed: at once, or (graceful) once what gRPC has
 * written so far has reached the client.  gRPC sees its side closed at
 * once either way.
 */
void
gate_close_all(int graceful)
{
	struct gate_conn	*c, *next;
	struct evbuffer		*out;
	int			 fd;

	for (c = TAILQ_FIRST(&gate.conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (!graceful || c->closing) {
			if (!graceful)
				gate_free(c);
			continue;
		}
		out = bufferevent_get_output(c->cli);
		bufferevent_write_buffer(c->cli, bufferevent_get_input(c->srv));
		fd = bufferevent_getfd(c->srv);
		while (evbuffer_read(out, fd, -1) > 0)
			;
		bufferevent_free(c->srv);
		c->srv = NULL;
		c->closing = 1;
		bufferevent_disable(c->cli, EV_READ);
		if (evbuffer_get_length(out) == 0)
			gate_close(c, GATE_CLOSED_NORMAL);
	}
}

void
gate_stop(void)
{
	gate_stop_listening();
	gate_close_all(0);
	if (gate.resume_ev != NULL)
		event_free(gate.resume_ev);
	gate.resume_ev = NULL;
	free(gate.byfd);
	gate.byfd = NULL;
	gate.nbyfd = 0;
	gate_clients_free(&gate.clients);
	gate_tls_free(&gate.tls);
	if (gate.creds != NULL)
		grpc_server_credentials_release(gate.creds);
	gate.creds = NULL;
	gate.server = NULL;
}

/*
 * The client behind a gRPC peer name: gRPC knows its connections by the
 * socketpair's descriptor ("fd:N").  0 with the name in buf (and, with
 * client certificates, the certificate's common name in cn), or -1.
 */
int
gate_peer(const char *grpc_peer, char *buf, size_t len, char *cn,
    size_t cnlen)
{
	struct gate_fdname	*f;
	uint32_t		 fd;
	const char		*p;

	if (cn != NULL && cnlen > 0)
		cn[0] = '\0';
	if (grpc_peer == NULL || (p = strstr(grpc_peer, "fd:")) == NULL ||
	    parse_u32(p + 3, 0, INT32_MAX, &fd) == -1 ||
	    (int)fd >= gate.nbyfd || (f = &gate.byfd[fd])->peer[0] == '\0')
		return -1;
	snprintf(buf, len, "%s", f->peer);
	if (cn != NULL && cnlen > 0) {
		if (f->c != NULL)
			gate_cn(f->c, cn, cnlen);
		else
			snprintf(cn, cnlen, "%s", f->cn);
	}
	return 0;
}

int
gate_connections(void)
{
	return gate.nconns;
}

void
gate_get_stats(struct gate_stats *st)
{
	*st = gate.st;
	st->open = gate.nconns;
}

const char *
gate_reason_name(enum gate_reason r)
{
	switch (r) {
	case GATE_CLOSED_NORMAL:
		return "closed";
	case GATE_CLOSED_NOT_HTTP2:
		return h2scan_verdict_name(H2_NOT_HTTP2);
	case GATE_CLOSED_HEADER_FLOOD:
		return h2scan_verdict_name(H2_HEADER_FLOOD);
	case GATE_CLOSED_RESET_FLOOD:
		return h2scan_verdict_name(H2_RESET_FLOOD);
	case GATE_CLOSED_CONTROL_FLOOD:
		return h2scan_verdict_name(H2_CONTROL_FLOOD);
	case GATE_CLOSED_HANDSHAKE:
		return "no HTTP/2 preface in time (api-handshake-timeout)";
	case GATE_CLOSED_N:
		break;
	}
	return "?";
}
