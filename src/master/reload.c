/*
 * SIGHUP: the configuration file read again into a new structure; if it
 * is good, what may change live is taken over (rules, tokens, TLS, limits,
 * timeouts, the log level), and what needs a restart is logged as such and
 * left as it runs.  A bad file changes nothing.  Also the checks of a
 * configuration against the host that start and reload share.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "master.h"
#include "sessions.h"

/* The first line of a file under /proc into buf ("" if unreadable). */
static void
reload_proc_line(const char *path, char *buf, size_t len)
{
	FILE *f;

	buf[0] = '\0';
	if ((f = fopen(path, "re")) == NULL)
		return;
	if (fgets(buf, (int)len, f) == NULL)
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

/*
 * The descriptors the master may need: four a session (RTP and RTCP, each
 * side), three an API connection (the client's and a socketpair to gRPC),
 * the metrics connections, the workers', and some for gRPC, logs and the
 * like.  API connections are capped, so the sessions' share is theirs.
 */
uint64_t
reload_nofile(const struct config *conf, int nworkers)
{
	return (uint64_t)conf->max_sessions * 4 +
	    (uint64_t)conf->api_max_conns * 3 + (uint64_t)nworkers * 4 + 256;
}

/*
 * Warn when the kernel may give ports of the media range to other
 * programs' sockets (the ephemeral ports, less the reserved ones): then
 * sessions find them taken now and then.  Said again only when the range
 * or the kernel's settings changed since.
 */
void
reload_check_ephemeral(uint16_t min, uint16_t max, const char *when)
{
	static char	last[4200];
	char		range[64], reserved[4096], now[4200];
	uint16_t	lo, hi;
	int		n;

	reload_proc_line("/proc/sys/net/ipv4/ip_local_port_range", range,
	    sizeof(range));
	reload_proc_line("/proc/sys/net/ipv4/ip_local_reserved_ports",
	    reserved, sizeof(reserved));
	snprintf(now, sizeof(now), "%u %u|%s|%s", min, max, range, reserved);
	if (strcmp(now, last) == 0)
		return;
	snprintf(last, sizeof(last), "%s", now);
	if ((n = ports_ephemeral(min, max, range, reserved, &lo, &hi)) <= 0)
		return;
	range[strcspn(range, " \t")] = '-';
	log_warnx("%sport-range %u-%u overlaps the kernel's ephemeral ports "
	    "%s (net.ipv4.ip_local_port_range) in %u-%u, %d of them not "
	    "reserved: the kernel gives those to other programs' sockets, and "
	    "sessions then find them taken; reserve them (sysctl "
	    "net.ipv4.ip_local_reserved_ports=%u-%u) or move one range away "
	    "from the other", when, min, max, range, lo, hi, n, lo, hi);
}

/* The parsed addresses: a line spelled otherwise listens where it did. */
static int
reload_listen_equal(const struct config *a, const struct config *b)
{
	int i;

	if (a->nlisten != b->nlisten)
		return 0;
	for (i = 0; i < a->nlisten; i++)
		if (!addr_equal(&a->listen[i], &b->listen[i]))
			return 0;
	return 1;
}

static int
reload_str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * TLS to Redis: the bridge made its context at start, so a renewed
 * certificate (the same paths, new contents) takes a restart too.
 */
static int
reload_rtls_changed(const struct config *a, const struct config *b)
{
	int i;

	if (a->redis_tls != b->redis_tls ||
	    !reload_str_equal(a->redis_tls_name, b->redis_tls_name) ||
	    !reload_str_equal(a->redis_tls_ca, b->redis_tls_ca) ||
	    !reload_str_equal(a->redis_tls_cert, b->redis_tls_cert) ||
	    !reload_str_equal(a->redis_tls_key, b->redis_tls_key))
		return 1;
	for (i = 0; i < 3; i++)
		if (!reload_str_equal(a->redis_tls_pem[i], b->redis_tls_pem[i]))
			return 1;
	return 0;
}

static int
reload_kifs_equal(const struct config *a, const struct config *b)
{
	int i;

	if (a->nkernel_ifs != b->nkernel_ifs)
		return 0;
	for (i = 0; i < a->nkernel_ifs; i++)
		if (strcmp(a->kernel_ifs[i], b->kernel_ifs[i]) != 0)
			return 0;
	return 1;
}

/*
 * What changed that takes a restart: logged as such, and (for the limits
 * the running daemon cannot grow) put back in nc as it runs.
 */
static void
reload_restart_only(const struct master *m, struct config *nc)
{
	const struct config	*c = m->conf;
	char			 err[512];

	if (!reload_listen_equal(c, nc))
		log_warnx("reload: listen changed: needs a restart");
	if (nc->workers != c->workers)
		log_warnx("reload: workers changed: needs a restart");
	if (nc->port_min != c->port_min || nc->port_max != c->port_max) {
		log_warnx("reload: port-range changed: needs a restart");
		reload_check_ephemeral(nc->port_min, nc->port_max,
		    "reload: the new ");
	}
	if (!reload_str_equal(nc->shm_name, c->shm_name))
		log_warnx("reload: shm-name changed: needs a restart");
	if (nc->kernel_fwd != c->kernel_fwd || !reload_kifs_equal(nc, c))
		log_warnx("reload: kernel-forwarding or kernel-interfaces "
		    "changed: needs a restart");
	if (!reload_str_equal(nc->user, c->user) ||
	    !reload_str_equal(nc->group, c->group))
		log_warnx("reload: user/group changed: needs a restart");
	if (!reload_str_equal(nc->pidfile, c->pidfile))
		log_warnx("reload: pidfile changed: needs a restart");
	if (nc->log_facility != c->log_facility)
		log_warnx("reload: syslog-facility changed: needs a restart");
	if (nc->max_sessions > m->shm.nslots) {
		log_warnx("reload: max-sessions %u exceeds the table sized "
		    "at start (%u): using %u; restart to grow it",
		    nc->max_sessions, m->shm.nslots, m->shm.nslots);
		nc->max_sessions = m->shm.nslots;
	}
	if (!addr_equal(&nc->metrics_listen, &c->metrics_listen))
		log_warnx("reload: metrics-listen changed: needs a restart");
	if (nc->api_idle_timeout != c->api_idle_timeout)
		log_warnx("reload: api-idle-timeout changed: needs a restart");
	if (nc->api_max_streams != c->api_max_streams)
		log_warnx("reload: api-max-streams changed: needs a restart");
	if (!reload_str_equal(nc->redis, c->redis) ||
	    nc->redis_db != c->redis_db ||
	    !reload_str_equal(nc->redis_prefix, c->redis_prefix) ||
	    !reload_str_equal(nc->redis_password_file,
	    c->redis_password_file) ||
	    !reload_str_equal(nc->node_id, c->node_id) ||
	    reload_rtls_changed(nc, c) ||
	    nc->nstandby != c->nstandby || memcmp(nc->standby, c->standby,
	    sizeof(c->standby[0]) * (size_t)c->nstandby) != 0)
		log_warnx("reload: redis, redis-db, redis-prefix, "
		    "redis-password-file, redis-tls*, node-id or standby-for "
		    "changed: needs a restart");
	if (nc->api_max_conns > c->api_max_conns &&
	    daemon_raise_nofile(reload_nofile(nc, m->nworkers), err,
	    sizeof(err)) == -1) {
		log_warnx("reload: api-max-connections %u: %s; keeping %u",
		    nc->api_max_conns, err, c->api_max_conns);
		nc->api_max_conns = c->api_max_conns;
	}
}

/* What changes live, from nc into c; nc keeps c's old copies to free. */
static void
reload_take_live(struct config *c, struct config *nc)
{
	int i;

#define MOVE(f) do { typeof(c->f) t_ = c->f; c->f = nc->f; nc->f = t_; } while (0)
	MOVE(rules);
	MOVE(nrules);
	MOVE(auth_token_file);
	MOVE(auth_token_line);
	MOVE(tokens);
	MOVE(ntokens);
	MOVE(tls_cert);
	MOVE(tls_key);
	MOVE(tls_client_ca);
	MOVE(recording_dir);
	for (i = 0; i < 3; i++) {
		MOVE(tls_pem[i]);
		MOVE(tls_line[i]);
	}
#undef MOVE
	c->reverse_source = nc->reverse_source;
	c->rate_pps = nc->rate_pps;
	c->rate_bps = nc->rate_bps;
	c->rate_burst_ms = nc->rate_burst_ms;
	c->latch_policy = nc->latch_policy;
	c->latch_learn_ms = nc->latch_learn_ms;
	c->latch_quiet_ms = nc->latch_quiet_ms;
	c->latch_run = nc->latch_run;
	c->auth_health_open = nc->auth_health_open;
	c->orphan_timeout = nc->orphan_timeout;
	c->max_sessions = nc->max_sessions;
	c->idle_timeout = nc->idle_timeout;
	c->setup_timeout = nc->setup_timeout;
	c->stats_interval = nc->stats_interval;
	c->event_queue = nc->event_queue;
	c->shutdown_grace = nc->shutdown_grace;
	c->api_max_conns = nc->api_max_conns;
	c->api_max_per_client = nc->api_max_per_client;
	c->api_handshake_timeout = nc->api_handshake_timeout;
}

void
reload_config(evutil_socket_t sig, short ev, void *arg)
{
	struct master	*m = arg;
	struct config	 nc, *c = m->conf;
	char		 err[512];

	if (m->stopping)
		return;
	daemon_notify("RELOADING=1");
	if (c->path == NULL) {
		log_notice("SIGHUP: no configuration file to reload");
		daemon_notify("READY=1");
		return;
	}
	memset(&nc, 0, sizeof(nc));
	if (config_load(&nc, c->path, 1, err, sizeof(err)) == -1) {
		log_warnx("reload refused, running configuration kept: %s",
		    err);
		daemon_notify("READY=1");
		return;
	}
	if (m->overrides != NULL)
		m->overrides(&nc);
	reload_restart_only(m, &nc);
	reload_take_live(c, &nc);
	atomic_store(&m->shm.hdr->orphan_timeout, c->orphan_timeout);
	if (c->log_level != nc.log_level) {
		c->log_level = nc.log_level;
		log_setlevel(c->log_level);
		workers_setlog(c->log_level);
	}
	config_free(&nc);
	session_reconfigure(c);
	grpcsvc_reconfigure(c);
	log_notice("configuration reloaded from %s: max-sessions %u, "
	    "idle-timeout %u s, setup-timeout %u s, log-level %s",
	    c->path, c->max_sessions, c->idle_timeout, c->setup_timeout,
	    log_level_name(c->log_level));
	daemon_notify("READY=1");
}
