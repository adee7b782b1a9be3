/*
 * The configuration as a file that would give it (rtpproxyd -n -v): every
 * keyword with its value, defaults included, quoted where it must be.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"
#include "conf.h"
#include "config_int.h"

/* log.c maps facility names to numbers, not back. */
static const char *const conf_facilities[] = {
	"daemon", "user", "local0", "local1", "local2", "local3", "local4",
	"local5", "local6", "local7",
};

/*
 * Quoted only when the parser would otherwise split or cut the word, and
 * a backslash escaped only where the parser would take it for an escape:
 * then no dumped line is longer than the line the value came from, so
 * none is over CONF_LINE_MAX.
 */
static void
conf_put(FILE *fp, const char *s)
{
	const char *p;

	if (*s != '\0' && strpbrk(s, " \t#\"") == NULL) {
		fputs(s, fp);
		return;
	}
	fputc('"', fp);
	for (p = s; *p != '\0'; p++) {
		if (*p == '"' || (*p == '\\' && (p[1] == '"' ||
		    p[1] == '\\' || p[1] == '\0')))
			fputc('\\', fp);
		fputc(*p, fp);
	}
	fputc('"', fp);
}

static void
conf_put_kw(FILE *fp, const char *kw, const char *s)
{
	fprintf(fp, "%s ", kw);
	conf_put(fp, s);
	fputc('\n', fp);
}

void
config_dump(const struct config *c, FILE *fp)
{
	const char	*fac = NULL;
	size_t		 i;
	int		 l;

	for (i = 0; i < sizeof(conf_facilities) / sizeof(conf_facilities[0]);
	    i++)
		if (log_facility_from_name(conf_facilities[i]) ==
		    c->log_facility) {
			fac = conf_facilities[i];
			break;
		}

	fprintf(fp, "# rtpproxyd configuration, from %s\n",
	    c->path != NULL ? c->path : "built-in defaults");
	for (l = 0; l < c->nlisten && l < CONF_MAX_LISTEN; l++)
		conf_put_kw(fp, "listen", c->listen[l].text);
	fprintf(fp, "workers %d\n", c->workers);
	fprintf(fp, "port-range %u %u\n", c->port_min, c->port_max);
	fprintf(fp, "max-sessions %u\n", c->max_sessions);
	fprintf(fp, "idle-timeout %u\n", c->idle_timeout);
	fprintf(fp, "setup-timeout %u\n", c->setup_timeout);
	fprintf(fp, "stats-interval %u\n", c->stats_interval);
	fprintf(fp, "event-queue %u\n", c->event_queue);
	fprintf(fp, "shutdown-grace %u\n", c->shutdown_grace);
	fprintf(fp, "log-level %s\n", log_level_name(c->log_level));
	fprintf(fp, "syslog-facility %s\n", fac != NULL ? fac : "daemon");
	if (c->user != NULL)
		conf_put_kw(fp, "user", c->user);
	else
		fprintf(fp, "#user (none: stay as started)\n");
	if (c->group != NULL)
		conf_put_kw(fp, "group", c->group);
	conf_put_kw(fp, "pidfile", c->pidfile != NULL ? c->pidfile : "none");
	conf_put_kw(fp, "shm-name", c->shm_name != NULL ? c->shm_name :
	    CONF_DEF_SHM);
	for (i = 0; i < c->nrules; i++) {
		char r[64];

		fprintf(fp, "%s %s\n", c->rules[i].action == SHM_ACL_ALLOW ?
		    "allow-destination" : "deny-destination",
		    acl_rule_str(&c->rules[i], r, sizeof(r)));
	}
	fprintf(fp, "reverse-source %s\n", config_rs_name(c->reverse_source));
	fprintf(fp, "rate-limit-pps %u\n", c->rate_pps);
	fprintf(fp, "rate-limit-bps %llu\n", (unsigned long long)c->rate_bps);
	fprintf(fp, "rate-limit-burst %u\n", c->rate_burst_ms);
	fprintf(fp, "latch-policy %s\n", shm_latch_name(c->latch_policy));
	fprintf(fp, "latch-learn-time %u\n", c->latch_learn_ms);
	fprintf(fp, "latch-quiet-time %u\n", c->latch_quiet_ms);
	fprintf(fp, "latch-run %u\n", c->latch_run);
	fprintf(fp, "kernel-forwarding %s\n", config_kfwd_name(c->kernel_fwd));
	/* a line holds 7 names (CONF_MAX_ARGS), and lines add up */
	for (i = 0; i < (size_t)c->nkernel_ifs; i++) {
		if (i % 7 == 0)
			fprintf(fp, "kernel-interfaces");
		fprintf(fp, " %s", c->kernel_ifs[i]);
		if (i % 7 == 6 || i + 1 == (size_t)c->nkernel_ifs)
			fprintf(fp, "\n");
	}
	if (c->auth_token_file != NULL)
		conf_put_kw(fp, "auth-token-file", c->auth_token_file);
	fprintf(fp, "auth-health %s\n", c->auth_health_open ? "open" :
	    "token");
	if (c->tls_cert != NULL)
		conf_put_kw(fp, "tls-cert", c->tls_cert);
	if (c->tls_key != NULL)
		conf_put_kw(fp, "tls-key", c->tls_key);
	if (c->tls_client_ca != NULL)
		conf_put_kw(fp, "tls-client-ca", c->tls_client_ca);
	conf_put_kw(fp, "metrics-listen", c->metrics_listen.kind != ADDR_NONE ?
	    c->metrics_listen.text : "none");
	fprintf(fp, "orphan-timeout %u\n", c->orphan_timeout);
	fprintf(fp, "api-max-connections %u\n", c->api_max_conns);
	fprintf(fp, "api-max-connections-per-client %u\n",
	    c->api_max_per_client);
	fprintf(fp, "api-handshake-timeout %u\n", c->api_handshake_timeout);
	fprintf(fp, "api-idle-timeout %u\n", c->api_idle_timeout);
	fprintf(fp, "api-max-streams %u\n", c->api_max_streams);
	conf_put_kw(fp, "redis", c->redis != NULL ? c->redis : "none");
	fprintf(fp, "redis-db %u\n", c->redis_db);
	conf_put_kw(fp, "redis-prefix", c->redis_prefix);
	if (c->redis_password_file != NULL)
		conf_put_kw(fp, "redis-password-file", c->redis_password_file);
	fprintf(fp, "redis-tls %s\n", c->redis_tls ? "yes" : "no");
	if (c->redis_tls_ca != NULL)
		conf_put_kw(fp, "redis-tls-ca", c->redis_tls_ca);
	if (c->redis_tls_cert != NULL)
		conf_put_kw(fp, "redis-tls-cert", c->redis_tls_cert);
	if (c->redis_tls_key != NULL)
		conf_put_kw(fp, "redis-tls-key", c->redis_tls_key);
	if (c->redis_tls_name != NULL)
		conf_put_kw(fp, "redis-tls-server-name", c->redis_tls_name);
	if (c->node_id != NULL)
		conf_put_kw(fp, "node-id", c->node_id);
	for (i = 0; i < (size_t)c->nstandby; i++)
		fprintf(fp, "standby-for %s %s\n", c->standby[i].node,
		    c->standby[i].text);
	conf_put_kw(fp, "recording-dir", c->recording_dir != NULL ?
	    c->recording_dir : "none");
}
