/* What config.c's files share: the parser, and its error message. */
#ifndef RTPPROXYD_CONFIG_INT_H
#define RTPPROXYD_CONFIG_INT_H

#include <stddef.h>

struct config;

#define CONF_FILE_MAX	(1024 * 1024)	/* the configuration file */
#define CONF_DEF_SHM	"/rtpproxyd"

int	conf_parse(struct config *, const char *, const char *, size_t,
	    char *, size_t);
void	conf_seterr(char *, size_t, const char *, const char *);

#endif
