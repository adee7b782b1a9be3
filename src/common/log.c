#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static int		 log_tostderr = 1;
static int		 log_level = LOG_INFO;
static const char	*log_ident = "rtpproxyd";

/*
 * Foreground: to stderr with a timestamp.  Otherwise to syslog with the
 * given facility.  Levels are syslog's, LOG_ERR (quiet) to LOG_DEBUG.
 */
void
log_init(int tostderr, int level, int facility, const char *ident)
{
	log_tostderr = tostderr;
	log_level = level;
	log_ident = ident;
	if (!tostderr)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
	tzset();
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

static void
vlog(int pri, int with_errno, const char *fmt, va_list ap)
{
	char		 buf[1024];
	struct timespec	 ts;
	struct tm	 tm;
	int		 saved = errno;
	size_t		 n;

	if (pri > log_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (with_errno) {
		n = strlen(buf);
		snprintf(buf + n, sizeof(buf) - n, ": %s", strerror(saved));
	}
	if (log_tostderr) {
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		fprintf(stderr,
		    "%04d-%02d-%02d %02d:%02d:%02d.%03ld %s[%ld]: %s\n",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_ident,
		    (long)getpid(), buf);
		fflush(stderr);
	} else
		syslog(pri, "%s", buf);
	errno = saved;
}

#define LOGFN(name, pri, err)				\
void							\
name(const char *fmt, ...)				\
{							\
	va_list ap;					\
							\
	va_start(ap, fmt);				\
	vlog(pri, err, fmt, ap);			\
	va_end(ap);					\
}

LOGFN(log_warn, LOG_WARNING, 1)
LOGFN(log_warnx, LOG_WARNING, 0)
LOGFN(log_notice, LOG_NOTICE, 0)
LOGFN(log_info, LOG_INFO, 0)
LOGFN(log_debug, LOG_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

static const struct {
	const char	*name;
	int		 level;
} log_levels[] = {
	{ "error",	LOG_ERR },
	{ "warning",	LOG_WARNING },
	{ "notice",	LOG_NOTICE },
	{ "info",	LOG_INFO },
	{ "debug",	LOG_DEBUG },
};

int
log_level_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcasecmp(name, log_levels[i].name) == 0)
			return log_levels[i].level;
	return -1;
}

const char *
log_level_name(int level)
{
	size_t i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (log_levels[i].level == level)
			return log_levels[i].name;
	return level > LOG_DEBUG ? "debug" : "error";
}

static const struct {
	const char	*name;
	int		 facility;
} log_facilities[] = {
	{ "daemon", LOG_DAEMON }, { "user", LOG_USER }, { "local0", LOG_LOCAL0 },
	{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 },
	{ "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },
	{ "local7", LOG_LOCAL7 },
};

int
log_facility_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++)
		if (strcasecmp(name, log_facilities[i].name) == 0)
			return log_facilities[i].facility;
	return -1;
}
