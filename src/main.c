#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "master.h"
#include "worker.h"

static struct {
	int		 verbose;
	const char	*listen;
	struct listen_addr listen_addr;	/* -l, parsed */
	const char	*pidfile;
	const char	*user;
	int		 workers;
} ov = { .workers = -1 };

static char	**args;		/* argv, for the master that takes over */

static __dead void
usage(int rc)
{
	fprintf(rc ? stderr : stdout,
	    "usage: rtpproxyd [-fhnrVv] [-c file] [-l address] [-p pidfile] "
	    "[-u user] [-w workers]\n");
	exit(rc);
}

/* Command-line flags win over the file, at start and on every reload. */
static void
apply_overrides(struct config *c)
{
	if (ov.listen != NULL) {
		memset(c->listen, 0, sizeof(c->listen));
		c->listen[0] = ov.listen_addr;
		c->nlisten = 1;
	}
	if (ov.pidfile != NULL) {
		free(c->pidfile);
		c->pidfile = strcmp(ov.pidfile, "none") == 0 ? NULL :
		    xstrdup(ov.pidfile);
	}
	if (ov.user != NULL) {
		free(c->user);
		c->user = xstrdup(ov.user);
	}
	if (ov.workers >= 0)
		c->workers = ov.workers;
	if (ov.verbose > 0) {
		c->log_level += ov.verbose;
		if (c->log_level > LOG_DEBUG)
			c->log_level = LOG_DEBUG;
	}
}

int
main(int argc, char **argv)
{
	struct config	 conf;
	const char	*path = RTPPROXYD_CONF;
	char		 err[1024];
	uint32_t	 n;
	int		 ch, foreground = 0, check = 0, explicit = 0, restart = 0;

	if (argc > 1 && strcmp(argv[1], "--worker") == 0)
		return worker_main(argc, argv);

	/*
	 * As given, for a master that takes over (getopt permutes argv);
	 * kept for the life of the process.
	 */
	args = xcalloc((size_t)argc + 1, sizeof(*args));
	memcpy(args, argv, (size_t)argc * sizeof(*args));

	while ((ch = getopt(argc, argv, "c:fhl:np:ru:Vvw:")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			explicit = 1;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'h':
			usage(0);
		case 'l':
			ov.listen = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'p':
			ov.pidfile = optarg;
			break;
		case 'r':
			restart = 1;
			break;
		case 'u':
			ov.user = optarg;
			break;
		case 'V':
			printf("rtpproxyd %s\n", PACKAGE_VERSION);
			return 0;
		case 'v':
			ov.verbose++;
			break;
		case 'w':
			if (parse_u32(optarg, 0, 64, &n) == -1) {
				fprintf(stderr, "rtpproxyd: -w %s: expects a "
				    "number of workers from 0 to 64\n",
				    optarg);
				return 1;
			}
			ov.workers = (int)n;
			break;
		default:
			usage(1);
		}
	}
	if (optind != argc)
		usage(1);

	memset(&conf, 0, sizeof(conf));
	if (config_load(&conf, path, explicit, err, sizeof(err)) == -1) {
		fprintf(stderr, "rtpproxyd: %s\n", err);
		return 1;
	}
	if (ov.listen != NULL) {
		/* Parse the flag as if it were a listen line. */
		struct config	 t;
		char		*text;

		xasprintf(&text, "listen %s\n", ov.listen);
		memset(&t, 0, sizeof(t));
		if (config_parse_buf(&t, "-l", text, err, sizeof(err)) == -1) {
			fprintf(stderr, "rtpproxyd: %s\n", err);
			free(text);
			config_free(&conf);
			return 1;
		}
		free(text);
		ov.listen_addr = t.listen[0];
		config_free(&t);
	}
	apply_overrides(&conf);
	if (restart) {
		n = (uint32_t)master_restart_cmd(conf.pidfile);
		config_free(&conf);
		return (int)n;
	}
	if (check) {
		if (conf.path == NULL)
			printf("%s: not found; built-in defaults are valid\n",
			    path);
		else
			printf("%s: configuration OK\n", conf.path);
		if (ov.verbose > 0)
			config_dump(&conf, stdout);
		config_free(&conf);
		return 0;
	}
	if (conf.path == NULL)
		fprintf(stderr, "rtpproxyd: %s not found, using built-in "
		    "defaults\n", path);
	n = (uint32_t)master_main(&conf, foreground, apply_overrides, args);
	config_free(&conf);
	return (int)n;
}
