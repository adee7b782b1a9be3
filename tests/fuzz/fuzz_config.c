/*
 * The configuration parser.
 *
 * Input: the text of a configuration file.  config_parse_buf either
 * refuses it with a "name:line: why" message and a zeroed config, or
 * gives a config whose values are in their documented ranges; then
 * config_dump of that config must parse again to the same values, and
 * dump to the same text (the dump is a fixed point).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "conf.h"
#include "fuzz.h"

static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* A parsed address: what it says it is, and its format parses back. */
static void
check_addr(const struct listen_addr *la, int flags)
{
	struct listen_addr	again;
	char			buf[ADDR_TEXT_MAX];

	FUZZ_CHECK(la->kind == ADDR_INET ||
	    (la->kind == ADDR_UNIX && (flags & ADDR_UNIX_OK)));
	FUZZ_CHECK(la->text[0] != '\0');
	FUZZ_CHECK(la->kind == ADDR_UNIX || la->port != 0);
	FUZZ_CHECK(la->nsa == 1 || (la->nsa == 2 && la->localhost &&
	    !(flags & ADDR_LO_V4)));
	FUZZ_CHECK(addr_parse(&again, "x", addr_fmt(la, buf, sizeof(buf)),
	    flags, NULL, 0) == 0 && addr_equal(la, &again));
}

static void
check_ranges(const struct config *c)
{
	int i;

	FUZZ_CHECK(c->nlisten >= 1 && c->nlisten <= CONF_MAX_LISTEN);
	for (i = 0; i < c->nlisten; i++)
		check_addr(&c->listen[i], ADDR_UNIX_OK);
	if (c->metrics_listen.kind != ADDR_NONE)
		check_addr(&c->metrics_listen, ADDR_LO_V4);
	FUZZ_CHECK(c->workers >= 0 && c->workers <= 64);
	FUZZ_CHECK(c->port_min >= 1024 && c->port_min % 2 == 0);
	FUZZ_CHECK(c->port_max % 2 == 1 && c->port_max - c->port_min >= 3);
	FUZZ_CHECK(c->max_sessions >= 1 && c->max_sessions <= 1000000);
	FUZZ_CHECK(c->idle_timeout >= 1 && c->idle_timeout <= 86400);
	FUZZ_CHECK(c->setup_timeout >= 1 && c->setup_timeout <= 86400);
	FUZZ_CHECK(c->stats_interval == 0 || (c->stats_interval >= 100 &&
	    c->stats_interval <= 3600000));
	FUZZ_CHECK(c->event_queue >= 16 && c->event_queue <= 1000000);
	FUZZ_CHECK(c->shutdown_grace <= 3600);
	FUZZ_CHECK(c->log_level >= LOG_ERR && c->log_level <= LOG_DEBUG);
	FUZZ_CHECK(c->user != NULL || c->group == NULL);
	FUZZ_CHECK(c->pidfile == NULL || c->pidfile[0] == '/');
	FUZZ_CHECK(c->shm_name != NULL && c->shm_name[0] == '/' &&
	    strlen(c->shm_name) <= 63);
	FUZZ_CHECK(c->nrules <= CONF_MAX_RULES);
	FUZZ_CHECK(c->reverse_source >= CONF_RS_ANY &&
	    c->reverse_source <= CONF_RS_ADDRESS_PORT);
	FUZZ_CHECK(c->rate_pps <= 10000000);
	FUZZ_CHECK(c->rate_bps <= 100000000000ULL);
	FUZZ_CHECK(c->rate_burst_ms >= 10 && c->rate_burst_ms <= 60000);
	FUZZ_CHECK((c->tls_cert == NULL) == (c->tls_key == NULL));
	FUZZ_CHECK(c->tls_client_ca == NULL || c->tls_cert != NULL);
	FUZZ_CHECK(c->orphan_timeout <= 86400);
	FUZZ_CHECK(c->path == NULL && c->tokens == NULL);
}

static void
check_same(const struct config *a, const struct config *b)
{
	size_t	i;
	int	l;

	FUZZ_CHECK(a->nlisten == b->nlisten);
	for (l = 0; l < a->nlisten; l++)
		FUZZ_CHECK(addr_equal(&a->listen[l], &b->listen[l]) &&
		    str_eq(a->listen[l].text, b->listen[l].text));
	FUZZ_CHECK(a->workers == b->workers);
	FUZZ_CHECK(a->port_min == b->port_min && a->port_max == b->port_max);
	FUZZ_CHECK(a->max_sessions == b->max_sessions);
	FUZZ_CHECK(a->idle_timeout == b->idle_timeout);
	FUZZ_CHECK(a->setup_timeout == b->setup_timeout);
	FUZZ_CHECK(a->stats_interval == b->stats_interval);
	FUZZ_CHECK(a->event_queue == b->event_queue);
	FUZZ_CHECK(a->shutdown_grace == b->shutdown_grace);
	FUZZ_CHECK(a->log_level == b->log_level);
	FUZZ_CHECK(a->log_facility == b->log_facility);
	FUZZ_CHECK(str_eq(a->user, b->user) && str_eq(a->group, b->group));
	FUZZ_CHECK(str_eq(a->pidfile, b->pidfile));
	FUZZ_CHECK(str_eq(a->shm_name, b->shm_name));
	FUZZ_CHECK(a->nrules == b->nrules);
	for (i = 0; i < a->nrules; i++) {
		const struct shm_acl_rule *x = &a->rules[i], *y = &b->rules[i];

		/* Not the line: the dump has its own. */
		FUZZ_CHECK(x->family == y->family && x->plen == y->plen &&
		    x->action == y->action && x->origin == y->origin &&
		    memcmp(x->addr, y->addr, sizeof(x->addr)) == 0);
	}
	FUZZ_CHECK(a->reverse_source == b->reverse_source);
	FUZZ_CHECK(a->rate_pps == b->rate_pps && a->rate_bps == b->rate_bps);
	FUZZ_CHECK(a->rate_burst_ms == b->rate_burst_ms);
	FUZZ_CHECK(str_eq(a->auth_token_file, b->auth_token_file));
	FUZZ_CHECK(a->auth_health_open == b->auth_health_open);
	FUZZ_CHECK(str_eq(a->tls_cert, b->tls_cert));
	FUZZ_CHECK(str_eq(a->tls_key, b->tls_key));
	FUZZ_CHECK(str_eq(a->tls_client_ca, b->tls_client_ca));
	FUZZ_CHECK(addr_equal(&a->metrics_listen, &b->metrics_listen) &&
	    str_eq(a->metrics_listen.text, b->metrics_listen.text));
	FUZZ_CHECK(a->orphan_timeout == b->orphan_timeout);
}

static char *
dump(const struct config *c)
{
	char	*text = NULL;
	size_t	 len = 0;
	FILE	*fp;

	if ((fp = open_memstream(&text, &len)) == NULL)
		abort();
	config_dump(c, fp);
	if (fclose(fp) != 0)
		abort();
	return text;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	 c, again;
	char		*text, *d1, *d2, err[512];
	size_t		 i;

	if ((text = malloc(size + 1)) == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';

	err[0] = '\0';
	if (config_parse_buf(&c, "fuzz.conf", text, err, sizeof(err)) == -1) {
		FUZZ_CHECKF(strncmp(err, "fuzz.conf:", 10) == 0 &&
		    err[10] >= '1' && err[10] <= '9', "%s", err);
		for (i = 0; i < sizeof(c); i++)
			FUZZ_CHECK(((const unsigned char *)&c)[i] == 0);
		free(text);
		return 0;
	}
	check_ranges(&c);

	d1 = dump(&c);
	err[0] = '\0';
	FUZZ_CHECKF(config_parse_buf(&again, "dump", d1, err,
	    sizeof(err)) == 0, "the dump does not parse: %s\n%s", err, d1);
	check_same(&c, &again);
	d2 = dump(&again);
	FUZZ_CHECKF(strcmp(d1, d2) == 0, "dumps differ:\n%s\n--\n%s", d1, d2);

	free(d1);
	free(d2);
	config_free(&again);
	config_free(&c);
	free(text);
	return 0;
}
