#include <sys/types.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"
#include "conf.h"

#define NOUSER	"rtpproxyd-no-such-user"

static char tmpdir[512];

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void
tmp_setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/check_config.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
tmp_teardown(void)
{
	nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static const char *
tmp_path(const char *name)
{
	static char	buf[4][PATH_MAX];
	static int	n;

	n = (n + 1) % 4;
	snprintf(buf[n], sizeof(buf[n]), "%s/%s", tmpdir, name);
	return buf[n];
}

static void
write_file(const char *path, const char *data, size_t len)
{
	FILE *fp;

	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	ck_assert_uint_eq(fwrite(data, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
}

static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Every field but path, which only says where the text came from. */
static void
assert_conf_eq(const struct config *a, const struct config *b)
{
	int i;

	ck_assert_int_eq(a->nlisten, b->nlisten);
	for (i = 0; i < a->nlisten; i++)
		ck_assert_str_eq(a->listen[i].text, b->listen[i].text);
	ck_assert_int_eq(a->workers, b->workers);
	ck_assert_uint_eq(a->port_min, b->port_min);
	ck_assert_uint_eq(a->port_max, b->port_max);
	ck_assert_uint_eq(a->max_sessions, b->max_sessions);
	ck_assert_uint_eq(a->idle_timeout, b->idle_timeout);
	ck_assert_uint_eq(a->setup_timeout, b->setup_timeout);
	ck_assert_uint_eq(a->stats_interval, b->stats_interval);
	ck_assert_uint_eq(a->event_queue, b->event_queue);
	ck_assert_uint_eq(a->shutdown_grace, b->shutdown_grace);
	ck_assert_int_eq(a->log_level, b->log_level);
	ck_assert_int_eq(a->log_facility, b->log_facility);
	ck_assert(str_eq(a->user, b->user));
	ck_assert(str_eq(a->group, b->group));
	ck_assert(str_eq(a->pidfile, b->pidfile));
	ck_assert(str_eq(a->shm_name, b->shm_name));
}

static void
assert_zeroed(const struct config *c)
{
	struct config z;

	memset(&z, 0, sizeof(z));
	ck_assert_msg(memcmp(c, &z, sizeof(z)) == 0,
	    "config not left zeroed after an error");
}

static void
parse_ok(struct config *c, const char *text)
{
	char err[512] = "";

	ck_assert_msg(config_parse_buf(c, "t.conf", text, err,
	    sizeof(err)) == 0, "unexpected error: %s", err);
}

static void
expect_error(const char *text, int line, const char *part)
{
	struct config	c;
	char		err[512] = "", prefix[64];

	memset(&c, 0xa5, sizeof(c));
	ck_assert_msg(config_parse_buf(&c, "t.conf", text, err,
	    sizeof(err)) == -1, "accepted: %s", text);
	snprintf(prefix, sizeof(prefix), "t.conf:%d: ", line);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
	    "\"%s\" does not start with \"%s\"", err, prefix);
	ck_assert_msg(strstr(err, part) != NULL,
	    "\"%s\" does not contain \"%s\"", err, part);
	assert_zeroed(&c);
}

START_TEST(test_defaults)
{
	struct config c, p;

	config_defaults(&c);
	ck_assert_int_eq(c.nlisten, 1);
	ck_assert_str_eq(c.listen[0].text, "127.0.0.1:50051");
	ck_assert_int_eq(c.listen[1].kind, ADDR_NONE);
	ck_assert_int_eq(c.workers, 0);
	ck_assert_uint_eq(c.port_min, 16384);
	ck_assert_uint_eq(c.port_max, 32767);
	ck_assert_uint_eq(c.max_sessions, 4096);
	ck_assert_uint_eq(c.idle_timeout, 60);
	ck_assert_uint_eq(c.setup_timeout, 60);
	ck_assert_uint_eq(c.stats_interval, 0);
	ck_assert_uint_eq(c.event_queue, 1024);
	ck_assert_uint_eq(c.shutdown_grace, 5);
	ck_assert_int_eq(c.log_level, LOG_INFO);
	ck_assert_int_eq(c.log_facility, LOG_DAEMON);
	ck_assert_ptr_null(c.user);
	ck_assert_ptr_null(c.group);
	ck_assert_str_eq(c.pidfile, RUNSTATEDIR "/rtpproxyd.pid");
	ck_assert_str_eq(c.shm_name, "/rtpproxyd");
	ck_assert_ptr_null(c.path);

	/* Nothing but blanks and comments: the defaults. */
	parse_ok(&p, "\n   \n\t# a comment\n# another\n\n");
	assert_conf_eq(&c, &p);
	config_free(&p);
	parse_ok(&p, "");
	assert_conf_eq(&c, &p);
	config_free(&p);

	config_free(&c);
	assert_zeroed(&c);
}
END_TEST

static const char full_conf[] =
    "# every keyword\n"
    "listen 192.0.2.1:5000\n"
    "listen [::1]:5001\n"
    "listen localhost:5002\n"
    "listen *:5003\n"
    "listen unix:/run/rtpproxyd/grpc.sock\n"
    "workers 4\n"
    "port-range 30000 30099\n"
    "max-sessions 500\n"
    "idle-timeout 120\n"
    "setup-timeout 30\n"
    "stats-interval 1000\n"
    "event-queue 4096\n"
    "shutdown-grace 0\n"
    "log-level debug\n"
    "syslog-facility local3\n"
    "user rtpproxy\n"
    "group media\n"
    "pidfile /var/run/rtpproxyd/rtpproxyd.pid\n"
    "shm-name /rtp.proxy_1-a\n";

START_TEST(test_full)
{
	struct config c;

	parse_ok(&c, full_conf);
	ck_assert_int_eq(c.nlisten, 5);
	ck_assert_str_eq(c.listen[0].text, "192.0.2.1:5000");
	ck_assert_str_eq(c.listen[1].text, "[::1]:5001");
	ck_assert_str_eq(c.listen[2].text, "localhost:5002");
	ck_assert_str_eq(c.listen[3].text, "*:5003");
	ck_assert_str_eq(c.listen[4].text, "unix:/run/rtpproxyd/grpc.sock");
	ck_assert_int_eq(c.workers, 4);
	ck_assert_uint_eq(c.port_min, 30000);
	ck_assert_uint_eq(c.port_max, 30099);
	ck_assert_uint_eq(c.max_sessions, 500);
	ck_assert_uint_eq(c.idle_timeout, 120);
	ck_assert_uint_eq(c.setup_timeout, 30);
	ck_assert_uint_eq(c.stats_interval, 1000);
	ck_assert_uint_eq(c.event_queue, 4096);
	ck_assert_uint_eq(c.shutdown_grace, 0);
	ck_assert_int_eq(c.log_level, LOG_DEBUG);
	ck_assert_int_eq(c.log_facility, LOG_LOCAL3);
	ck_assert_str_eq(c.user, "rtpproxy");
	ck_assert_str_eq(c.group, "media");
	ck_assert_str_eq(c.pidfile, "/var/run/rtpproxyd/rtpproxyd.pid");
	ck_assert_str_eq(c.shm_name, "/rtp.proxy_1-a");
	ck_assert_ptr_null(c.path);
	config_free(&c);
}
END_TEST

/* The addresses are parsed with the file, each as its keyword means it. */
START_TEST(test_listen_parsed)
{
	struct config	c;
	char		text[sizeof(full_conf) + 64];

	config_defaults(&c);
	ck_assert_int_eq(c.listen[0].kind, ADDR_INET);
	ck_assert_uint_eq(c.listen[0].port, 50051);
	ck_assert(addr_loopback(&c.listen[0]));
	ck_assert_int_eq(c.metrics_listen.kind, ADDR_NONE);
	config_free(&c);

	snprintf(text, sizeof(text), "%smetrics-listen localhost:9100\n",
	    full_conf);
	parse_ok(&c, text);
	ck_assert_uint_eq(c.listen[0].port, 5000);
	ck_assert_int_eq(c.listen[2].localhost, 1);
	ck_assert_int_eq(c.listen[2].nsa, 2);		/* and ::1 */
	ck_assert_int_eq(c.listen[3].any, 1);
	ck_assert_int_eq(c.listen[4].kind, ADDR_UNIX);
	ck_assert_str_eq(addr_path(&c.listen[4]), "/run/rtpproxyd/grpc.sock");
	ck_assert_str_eq(c.metrics_listen.text, "localhost:9100");
	ck_assert_int_eq(c.metrics_listen.nsa, 1);	/* 127.0.0.1 alone */
	ck_assert_uint_eq(c.metrics_listen.port, 9100);
	config_free(&c);

	parse_ok(&c, "metrics-listen none\n");
	ck_assert_int_eq(c.metrics_listen.kind, ADDR_NONE);
	config_free(&c);
}
END_TEST

START_TEST(test_edges)
{
	struct config c;

	/* The limits themselves are allowed. */
	parse_ok(&c, "workers 64\nport-range 1024 1027\n"
	    "max-sessions 1000000\nidle-timeout 86400\nsetup-timeout 1\n"
	    "stats-interval 100\nevent-queue 16\nshutdown-grace 3600\n"
	    "listen 0.0.0.0:65535\nlisten 10.0.0.1:1\npidfile none\n");
	ck_assert_int_eq(c.workers, 64);
	ck_assert_uint_eq(c.port_min, 1024);
	ck_assert_uint_eq(c.port_max, 1027);
	ck_assert_uint_eq(c.max_sessions, 1000000);
	ck_assert_uint_eq(c.stats_interval, 100);
	ck_assert_uint_eq(c.event_queue, 16);
	ck_assert_uint_eq(c.shutdown_grace, 3600);
	ck_assert_int_eq(c.nlisten, 2);
	ck_assert_ptr_null(c.pidfile);
	config_free(&c);

	parse_ok(&c, "stats-interval 3600000\nport-range 65532 65535\n");
	ck_assert_uint_eq(c.stats_interval, 3600000);
	ck_assert_uint_eq(c.port_max, 65535);
	config_free(&c);
}
END_TEST

START_TEST(test_syntax)
{
	struct config	 c;
	char		*s;

	/* CRLF, tabs, comments right after a value, no final newline. */
	parse_ok(&c, "workers\t3 # three\r\n\tmax-sessions   7# tight\r\n"
	    "log-level warning");
	ck_assert_int_eq(c.workers, 3);
	ck_assert_uint_eq(c.max_sessions, 7);
	ck_assert_int_eq(c.log_level, LOG_WARNING);
	config_free(&c);

	/* Quotes keep blanks and '#'; backslash escapes '"' and '\'. */
	parse_ok(&c, "pidfile \"/var/run/my dir/#1.pid\" # comment\n"
	    "listen \"unix:/tmp/a b.sock\"\n"
	    "user \"we\\\"ird\\\\name\"\n"
	    "shm-name \"/q\"# no blank needed before a comment\n");
	ck_assert_str_eq(c.pidfile, "/var/run/my dir/#1.pid");
	ck_assert_str_eq(c.listen[0].text, "unix:/tmp/a b.sock");
	ck_assert_str_eq(c.user, "we\"ird\\name");
	ck_assert_str_eq(c.shm_name, "/q");
	config_free(&c);

	/* A byte order mark is not part of the first keyword. */
	parse_ok(&c, "\xef\xbb\xbfworkers 2\n");
	ck_assert_int_eq(c.workers, 2);
	config_free(&c);

	/* Valid UTF-8 in a value is fine. */
	parse_ok(&c, "pidfile /run/r\xc3\xa9seau.pid\n");
	ck_assert_str_eq(c.pidfile, "/run/r\xc3\xa9seau.pid");
	config_free(&c);

	/* 1024 bytes is the longest line; one more is an error. */
	s = malloc(1100);
	ck_assert_ptr_nonnull(s);
	memset(s, 'x', 1100);
	memcpy(s, "workers 1\n# ", 12);
	s[10 + 1024] = '\n';
	s[10 + 1025] = '\0';
	parse_ok(&c, s);
	config_free(&c);
	memcpy(s + 10 + 1024, "x\n", 3);
	expect_error(s, 2, "line too long (more than 1024 bytes)");
	free(s);
}
END_TEST

static const struct {
	const char	*text;
	int		 line;
	const char	*part;
} bad_conf[] = {
	{ "workers 4\nwrokers 2\n", 2, "unknown keyword \"wrokers\"" },
	{ "Workers 2\n", 1, "unknown keyword \"Workers\"" },
	{ "\n\nworkers\n", 3, "workers: expects 1 argument" },
	{ "workers 1 2\n", 1, "workers: expects 1 argument" },
	{ "port-range 20000\n", 1, "port-range: expects 2 arguments" },
	{ "listen\n", 1, "listen: expects 1 argument" },
	{ "workers 4\n# c\nworkers 3\n", 3,
	    "workers given twice (first on line 1)" },
	{ "pidfile none\npidfile none\n", 2,
	    "pidfile given twice (first on line 1)" },
	{ "workers 65\n", 1,
	    "workers: must be 0 (one per CPU) or 1..64 (got \"65\")" },
	{ "workers -1\n", 1, "workers: must be" },
	{ "workers 4x\n", 1, "(got \"4x\")" },
	{ "workers \"\"\n", 1, "(got \"\")" },
	{ "port-range 20001 39999\n", 1,
	    "port-range: MIN must be even (got 20001)" },
	{ "port-range 20000 40000\n", 1,
	    "port-range: MAX must be odd (got 40000)" },
	{ "port-range 1000 39999\n", 1,
	    "port-range: MIN must be 1024..65535 (got \"1000\")" },
	{ "port-range 20000 70001\n", 1,
	    "port-range: MAX must be 1024..65535 (got \"70001\")" },
	{ "port-range 30000 20001\n", 1,
	    "port-range: MIN must be less than MAX (got 30000 20001)" },
	{ "port-range 20000 20001\n", 1,
	    "port-range: at least 4 ports needed (got 2)" },
	{ "max-sessions 0\n", 1,
	    "max-sessions: must be 1..1000000 (got \"0\")" },
	{ "max-sessions 1000001\n", 1, "max-sessions: must be 1..1000000" },
	{ "idle-timeout 0\n", 1,
	    "idle-timeout: must be 1..86400 seconds (got \"0\")" },
	{ "setup-timeout 86401\n", 1, "setup-timeout: must be 1..86400" },
	{ "stats-interval 99\n", 1,
	    "stats-interval: must be 0 (off) or 100..3600000 ms (got \"99\")" },
	{ "stats-interval 3600001\n", 1, "stats-interval: must be 0 (off)" },
	{ "event-queue 15\n", 1, "event-queue: must be 16..1000000" },
	{ "shutdown-grace 3601\n", 1,
	    "shutdown-grace: must be 0..3600 seconds (got \"3601\")" },
	{ "log-level verbose\n", 1, "log-level: unknown level \"verbose\"" },
	{ "syslog-facility local8\n", 1,
	    "syslog-facility: unknown facility \"local8\"" },
	{ "listen [::1]\n", 1, "listen: \"[::1]\": missing port" },
	{ "listen 127.0.0.1:0\n", 1,
	    "listen: \"127.0.0.1:0\": port must be 1..65535 (got \"0\")" },
	{ "listen 127.0.0.1:70000\n", 1,
	    "port must be 1..65535 (got \"70000\")" },
	{ "listen [::1]:0\n", 1, "port must be 1..65535 (got \"0\")" },
	{ "listen *:\n", 1, "port must be 1..65535 (got \"\")" },
	{ "listen 127.0.0.1\n", 1, "listen: \"127.0.0.1\": missing port" },
	{ "listen ::1:50051\n", 1, "IPv6 address must be in brackets" },
	{ "listen [::1:50051\n", 1, "missing \"]\"" },
	{ "listen [::1]50051\n", 1, "expected \":\" after \"]\"" },
	{ "listen [127.0.0.1]:80\n", 1, "is not an IPv6 address" },
	{ "listen example.com:80\n", 1,
	    "host must be an IPv4 address, [IPv6], localhost or *" },
	{ "listen 256.1.1.1:80\n", 1, "host must be an IPv4 address" },
	{ "listen :80\n", 1, "missing host" },
	{ "listen unix:run/x.sock\n", 1, "unix socket path must be absolute" },
	{ "listen unix:/" "0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789\n", 1,
	    "unix socket path longer than" },
	{ "listen *:1\nlisten *:2\nlisten *:1\n", 3,
	    "listen: \"*:1\" given twice (first on line 1)" },
	{ "listen *:1\nlisten *:2\nlisten *:3\nlisten *:4\nlisten *:5\n"
	    "listen *:6\nlisten *:7\nlisten *:8\nlisten *:9\n", 9,
	    "listen: at most 8 addresses" },
	{ "metrics-listen unix:/run/m.sock\n", 1, "metrics-listen: "
	    "\"unix:/run/m.sock\": must be HOST:PORT or [IPv6]:PORT" },
	{ "metrics-listen 127.0.0.1\n", 1,
	    "metrics-listen: \"127.0.0.1\": missing port" },
	{ "workers 2\nmetrics-listen [::1]:0\n", 2,
	    "metrics-listen: \"[::1]:0\": port must be 1..65535" },
	{ "metrics-listen example.com:9100\n", 1,
	    "host must be an IPv4 address, [IPv6], localhost or *" },
	{ "pidfile run/rtpproxyd.pid\n", 1,
	    "pidfile: must be an absolute path or \"none\" "
	    "(got \"run/rtpproxyd.pid\")" },
	{ "pidfile \"\"\n", 1, "pidfile: must be an absolute path" },
	{ "shm-name rtpproxyd\n", 1, "shm-name: must be \"/\" followed by" },
	{ "shm-name /a/b\n", 1, "(got \"/a/b\")" },
	{ "shm-name /\n", 1, "shm-name: must be" },
	{ "shm-name \"/a b\"\n", 1, "shm-name: must be" },
	{ "shm-name /" "0123456789012345678901234567890123456789"
	    "0123456789012345678901234\n", 1, "shm-name: must be" },
	{ "user \"\"\n", 1, "user: empty name" },
	{ "group media\n", 1, "group: given without user" },
	{ "pidfile \"/tmp/x\n", 1, "unterminated quoted string" },
	{ "pidfile \"/tmp/x\"y\n", 1, "text after closing quote" },
	{ "pidfile /tmp/\"x\"\n", 1, "quote inside a word" },
	{ "workers 2\n\xff\n", 2, "invalid UTF-8" },
	{ "pidfile /tmp/\xc0\xaf\n", 1, "invalid UTF-8" },
	{ "pidfile /tmp/\xed\xa0\x80\n", 1, "invalid UTF-8" },
	{ "workers\x01 2\n", 1, "control character 0x01" },
	{ "workers 2\r\r\n", 1, "control character 0x0d" },
};

START_TEST(test_errors)
{
	expect_error(bad_conf[_i].text, bad_conf[_i].line, bad_conf[_i].part);
}
END_TEST

START_TEST(test_error_stops)
{
	struct config	c;
	char		err[256];

	/* The first error is the one reported. */
	ck_assert_int_eq(config_parse_buf(&c, "/etc/rtpproxyd.conf",
	    "workers 2\nworkers 3\nbogus\n", err, sizeof(err)), -1);
	ck_assert_str_eq(err,
	    "/etc/rtpproxyd.conf:2: workers given twice (first on line 1)");

	/* A short buffer truncates without overrunning. */
	memset(err, 'Z', sizeof(err));
	ck_assert_int_eq(config_parse_buf(&c, "t.conf", "workers 99\n",
	    err, 10), -1);
	ck_assert_str_eq(err, "t.conf:1:");
	ck_assert_int_eq(err[10], 'Z');
	ck_assert_int_eq(config_parse_buf(&c, "t.conf", "workers 99\n",
	    NULL, 0), -1);
}
END_TEST

START_TEST(test_load)
{
	struct config	 c;
	char		 err[512];
	const char	*p = tmp_path("rtpproxyd.conf");
	char		*big;
	size_t		 n;

	/* Missing, optional: defaults, no path. */
	memset(&c, 0xa5, sizeof(c));
	ck_assert_int_eq(config_load(&c, p, 0, err, sizeof(err)), 0);
	ck_assert_ptr_null(c.path);
	ck_assert_uint_eq(c.max_sessions, 4096);
	config_free(&c);

	/* Missing, required. */
	memset(&c, 0xa5, sizeof(c));
	ck_assert_int_eq(config_load(&c, p, 1, err, sizeof(err)), -1);
	ck_assert_str_eq(strchr(err, ':'), ": No such file or directory");
	ck_assert_int_eq(strncmp(err, p, strlen(p)), 0);
	assert_zeroed(&c);

	write_file(p, full_conf, strlen(full_conf));
	ck_assert_int_eq(config_load(&c, p, 1, err, sizeof(err)), 0);
	ck_assert_str_eq(c.path, p);
	ck_assert_int_eq(c.workers, 4);
	config_free(&c);

	/* Errors name the file. */
	write_file(p, "workers 2\nworkers x\n", 20);
	ck_assert_int_eq(config_load(&c, p, 1, err, sizeof(err)), -1);
	ck_assert_int_eq(strncmp(err, p, strlen(p)), 0);
	ck_assert_str_eq(err + strlen(p), ":2: workers given twice "
	    "(first on line 1)");
	assert_zeroed(&c);

	/* A NUL byte can only come from a file. */
	write_file(p, "workers 2\nuser a\0b\n", 19);
	ck_assert_int_eq(config_load(&c, p, 1, err, sizeof(err)), -1);
	ck_assert_str_eq(err + strlen(p), ":2: NUL byte");

	/* Over 1 MiB, even if it is all comments. */
	n = 1024 * 1024 + 1;
	big = malloc(n);
	ck_assert_ptr_nonnull(big);
	memset(big, '\n', n);
	big[0] = '#';
	write_file(p, big, n - 1);
	ck_assert_int_eq(config_load(&c, p, 1, err, sizeof(err)), 0);
	config_free(&c);
	write_file(p, big, n);
	ck_assert_int_eq(config_load(&c, p, 1, err, sizeof(err)), -1);
	ck_assert_str_eq(err + strlen(p), ": larger than 1 MiB");
	free(big);

	ck_assert_int_eq(config_load(&c, tmpdir, 0, err, sizeof(err)), -1);
	ck_assert_str_eq(err + strlen(tmpdir), ": not a regular file");
}
END_TEST

/*
 * config_load of text whose one line names path for keyword kw: -1, and
 * the error "conf:1: kw path: what".
 */
static void
expect_file_error(const char *kw, const char *path, const char *what)
{
	struct config	 c;
	char		 p[PATH_MAX], text[PATH_MAX + 64], err[PATH_MAX * 3];
	char		 want[PATH_MAX * 3];

	static const char *const tls[3] = { "tls-cert", "tls-key",
	    "tls-client-ca" };
	static const char *const pem[3] = { "CERTIFICATE", "PRIVATE KEY",
	    "CERTIFICATE" };
	FILE		*f;
	int		 i;

	/* A TLS file needs the others: good ones, on the lines after. */
	snprintf(p, sizeof(p), "%s", tmp_path("files.conf"));
	ck_assert_ptr_nonnull(f = fopen(p, "w"));
	fprintf(f, "%s %s\n", kw, path);
	for (i = 0; strncmp(kw, "tls-", 4) == 0 && i < 3; i++) {
		if (strcmp(kw, tls[i]) == 0)
			continue;
		snprintf(text, sizeof(text), "-----BEGIN %s-----\n", pem[i]);
		write_file(tmp_path(tls[i]), text, strlen(text));
		fprintf(f, "%s %s\n", tls[i], tmp_path(tls[i]));
	}
	ck_assert_int_eq(fclose(f), 0);
	memset(&c, 0xa5, sizeof(c));
	ck_assert_int_eq(config_load(&c, p, 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: %s %s: %s", p, kw, path, what);
	ck_assert_str_eq(err, want);
	assert_zeroed(&c);
}

/*
 * What is not a regular file is refused before it is read: a FIFO would
 * block the reader until a writer comes (for ever), a device may never
 * end.  And no file is read past its maximum.  alarm() turns a hang into
 * a failure.
 */
START_TEST(test_load_not_regular)
{
	const char	*kws[] = { "auth-token-file", "tls-cert", "tls-key",
	    "tls-client-ca" };
	struct config	 c;
	char		 fifo[PATH_MAX], p[PATH_MAX];
	char		 err[PATH_MAX * 2], want[PATH_MAX * 2];
	size_t		 i;
	int		 fd;

	alarm(10);
	snprintf(fifo, sizeof(fifo), "%s", tmp_path("fifo"));
	snprintf(p, sizeof(p), "%s", tmp_path("big"));
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	memset(&c, 0xa5, sizeof(c));
	ck_assert_int_eq(config_load(&c, fifo, 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: not a regular file", fifo);
	ck_assert_str_eq(err, want);
	assert_zeroed(&c);
	/* Not even when it need not exist. */
	ck_assert_int_eq(config_load(&c, fifo, 0, err, sizeof(err)), -1);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(config_load(&c, "/dev/zero", 1, err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err, "/dev/zero: not a regular file");

	for (i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
		expect_file_error(kws[i], fifo, "not a regular file");
		expect_file_error(kws[i], "/dev/zero", "not a regular file");
		expect_file_error(kws[i], tmpdir, "not a regular file");
	}

	/* 64 KiB at most for a secret; a sparse 4 GiB file is not read. */
	ck_assert_int_ge(fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
	ck_assert_int_eq(ftruncate(fd, 64 * 1024 + 1), 0);
	close(fd);
	expect_file_error("auth-token-file", p, "larger than 64 KiB");
	ck_assert_int_ge(fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)4 << 30), 0);
	close(fd);
	expect_file_error("tls-cert", p, "larger than 64 KiB");
	ck_assert_int_eq(config_load(&c, p, 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: larger than 1 MiB", p);
	ck_assert_str_eq(err, want);
	unlink(p);

	/* The pid file: the daemon writes it, and "rtpproxyd -r" reads it. */
	ck_assert_int_eq(daemon_pidfile_open(fifo, NULL, err, sizeof(err)),
	    -1);
	snprintf(want, sizeof(want), "pidfile %s: not a regular file", fifo);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(daemon_pidfile_open("/dev/null", NULL, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "pidfile /dev/null: not a regular file");
	alarm(0);
}
END_TEST

static void
round_trip(const struct config *a)
{
	struct config	 b;
	char		*text = NULL;
	size_t		 len = 0;
	FILE		*fp;

	ck_assert_ptr_nonnull(fp = open_memstream(&text, &len));
	config_dump(a, fp);
	ck_assert_int_eq(fclose(fp), 0);
	parse_ok(&b, text);
	assert_conf_eq(a, &b);
	config_free(&b);
	free(text);
}

/* kernel-forwarding and kernel-interfaces: values, errors, the dump. */
START_TEST(test_kernel_forwarding)
{
	struct config	 c, b;
	char		*text = NULL;
	size_t		 len = 0;
	FILE		*fp;

	config_defaults(&c);
	ck_assert_int_eq(c.kernel_fwd, CONF_KFWD_OFF);
	ck_assert_int_eq(c.nkernel_ifs, 0);
	config_free(&c);
	parse_ok(&c, "kernel-forwarding auto\nkernel-interfaces eth0 lo\n");
	ck_assert_int_eq(c.kernel_fwd, CONF_KFWD_AUTO);
	ck_assert_int_eq(c.nkernel_ifs, 2);
	ck_assert_str_eq(c.kernel_ifs[0], "eth0");
	ck_assert_str_eq(c.kernel_ifs[1], "lo");
	ck_assert_ptr_nonnull(fp = open_memstream(&text, &len));
	config_dump(&c, fp);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_ptr_nonnull(strstr(text, "kernel-forwarding auto\n"));
	ck_assert_ptr_nonnull(strstr(text, "kernel-interfaces eth0 lo\n"));
	parse_ok(&b, text);
	ck_assert_int_eq(b.kernel_fwd, CONF_KFWD_AUTO);
	ck_assert_int_eq(b.nkernel_ifs, 2);
	config_free(&b);
	free(text);
	config_free(&c);
	parse_ok(&c, "kernel-forwarding on\nkernel-interfaces a b c\n");
	ck_assert_int_eq(c.nkernel_ifs, 3);
	ck_assert_int_eq(c.kernel_fwd, CONF_KFWD_ON);
	config_free(&c);
	/* lines add up, to 16 */
	parse_ok(&c, "kernel-interfaces a\nkernel-interfaces b c\n");
	ck_assert_int_eq(c.nkernel_ifs, 3);
	ck_assert_str_eq(c.kernel_ifs[2], "c");
	config_free(&c);
	expect_error("kernel-interfaces a b c d e f g\n"
	    "kernel-interfaces h i j k l m n\nkernel-interfaces o p q\n", 3,
	    "more than 16");
	/* 16 of them: the dump splits them over lines that parse again */
	parse_ok(&c, "kernel-interfaces a b c d e f g\n"
	    "kernel-interfaces h i j k l m n\nkernel-interfaces o p\n");
	ck_assert_int_eq(c.nkernel_ifs, 16);
	ck_assert_ptr_nonnull(fp = open_memstream(&text, &len));
	config_dump(&c, fp);
	ck_assert_int_eq(fclose(fp), 0);
	parse_ok(&b, text);
	ck_assert_int_eq(b.nkernel_ifs, 16);
	ck_assert_str_eq(b.kernel_ifs[15], "p");
	config_free(&b);
	free(text);
	config_free(&c);

	expect_error("kernel-forwarding maybe\n", 1,
	    "expected off, auto or on");
	expect_error("\nkernel-interfaces eth0 a/b\n", 2,
	    "not an interface name");
	expect_error("kernel-interfaces 0123456789abcdef\n", 1,
	    "not an interface name");
	expect_error("kernel-interfaces\n", 1, "kernel-interfaces");
}
END_TEST

START_TEST(test_round_trip)
{
	struct config c;

	config_defaults(&c);
	round_trip(&c);
	config_free(&c);

	parse_ok(&c, full_conf);
	round_trip(&c);
	config_free(&c);

	parse_ok(&c, "pidfile none\nuser \"a b\"\n"
	    "listen \"unix:/tmp/x # \\\"y\\\\\"\nsyslog-facility user\n"
	    "log-level error\n");
	ck_assert_str_eq(c.listen[0].text, "unix:/tmp/x # \"y\\");
	round_trip(&c);
	config_free(&c);
}
END_TEST

/*
 * A dumped line is never longer than the line its value came from, so
 * the dump of a file with long lines still parses (found by
 * tests/fuzz/fuzz_config: backslashes used to be quoted and doubled).
 */
START_TEST(test_round_trip_long)
{
	struct config	c;
	char		line[1100];
	size_t		n, i;

	/* 1024 octets: "user " and 1019 backslashes, taken as they are. */
	memcpy(line, "user ", 5);
	memset(line + 5, '\\', 1019);
	memcpy(line + 1024, "\n", 2);
	parse_ok(&c, line);
	ck_assert_uint_eq(strlen(c.user), 1019);
	round_trip(&c);
	config_free(&c);

	/* Quoted (for the blank), each backslash alone before an "x". */
	n = 0;
	memcpy(line, "user \"", 6);
	n = 6;
	for (i = 0; i < 508; i++) {
		line[n++] = '\\';
		line[n++] = 'x';
	}
	memcpy(line + n, " \"\n", 4);
	ck_assert_uint_eq(n + 2, 1024);
	parse_ok(&c, line);
	ck_assert_uint_eq(strlen(c.user), 1017);
	round_trip(&c);
	config_free(&c);

	/* Backslashes the parser would read as escapes still are escaped. */
	parse_ok(&c, "user \"a\\\\ \\\"\\\\\"\n");
	ck_assert_str_eq(c.user, "a\\ \"\\");
	round_trip(&c);
	config_free(&c);
}
END_TEST

START_TEST(test_pidfile_lock)
{
	const char	*p = tmp_path("rtpproxyd.pid");
	char		 buf[1024], want[128];
	pid_t		 other, pid, me = getpid();
	int		 fd, st;
	ssize_t		 n;

	/* A stale pid from a crashed run does not survive the lock. */
	write_file(p, "99999\n", 6);
	fd = daemon_pidfile_open(p, &other, buf, sizeof(buf));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0);
	ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	ck_assert_int_eq(daemon_pidfile_write(fd), 0);
	snprintf(want, sizeof(want), "%ld\n", (long)me);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_eq(n, (ssize_t)strlen(want));
	buf[n] = '\0';
	ck_assert_str_eq(buf, want);

	if ((pid = fork()) == 0) {
		char	err[256];
		int	bad = 0;

		if (daemon_pidfile_open(p, &other, err, sizeof(err)) != -1)
			bad |= 1;
		if (other != me)
			bad |= 2;
		snprintf(want, sizeof(want), "is locked by pid %ld: is "
		    "another rtpproxyd running?", (long)me);
		if (strncmp(err, "pidfile ", 8) != 0 ||
		    strstr(err, want) == NULL || strstr(err, p) == NULL)
			bad |= 4;
		_exit(bad);
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);

	daemon_pidfile_close(fd, p);
	ck_assert_int_eq(access(p, F_OK), -1);
	daemon_pidfile_close(-1, p);

	fd = daemon_pidfile_open(p, &other, buf, sizeof(buf));
	ck_assert_int_ge(fd, 0);
	daemon_pidfile_close(fd, p);

	/* A run-state directory that does not exist yet is made. */
	fd = daemon_pidfile_open(tmp_path("no/such/dir.pid"), &other, buf,
	    sizeof(buf));
	ck_assert_int_ge(fd, 0);
	daemon_pidfile_close(fd, tmp_path("no/such/dir.pid"));
	ck_assert_int_eq(rmdir(tmp_path("no/such")), 0);
	ck_assert_int_eq(rmdir(tmp_path("no")), 0);
	/* One that cannot be made says why. */
	write_file(tmp_path("plainfile"), "x", 1);
	fd = daemon_pidfile_open(tmp_path("plainfile/x.pid"), &other, buf,
	    sizeof(buf));
	ck_assert_int_eq(fd, -1);
	ck_assert_ptr_nonnull(strstr(buf, "Not a directory"));
	unlink(tmp_path("plainfile"));
}
END_TEST

/* What daemon_detach() relies on: the lock lives on in a forked child. */
START_TEST(test_pidfile_fork)
{
	const char	*p = tmp_path("rtpproxyd.pid");
	char		 err[256], c;
	pid_t		 other, pid;
	int		 fd, go[2], st;

	fd = daemon_pidfile_open(p, &other, err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pipe(go), 0);
	if ((pid = fork()) == 0) {
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		if (daemon_pidfile_write(fd) == -1)
			_exit(2);
		_exit(0);
	}
	ck_assert_int_gt(pid, 0);
	close(go[0]);
	close(fd);

	/* Still locked: the child holds the same open file. */
	ck_assert_int_eq(daemon_pidfile_open(p, &other, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "is locked by"));

	ck_assert_int_eq(write(go[1], "x", 1), 1);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);

	fd = daemon_pidfile_open(p, &other, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	daemon_pidfile_close(fd, p);
}
END_TEST

/*
 * Runs daemon_detach() in a child, the way main() would, and returns
 * that child's exit status; the daemon tells over rep what it saw.
 */
static int
detach_run(int how, char *rep, size_t replen, char *out, size_t outlen)
{
	const char	*errf = tmp_path("detach.err");
	char		 cwd[PATH_MAX], msg[128];
	int		 pp[2], st, nfd, len, fd;
	pid_t		 pid;
	ssize_t		 n;

	ck_assert_int_eq(pipe(pp), 0);
	ck_assert_int_ge(fd = open(errf, O_RDWR | O_CREAT | O_TRUNC, 0600), 0);
	if ((pid = fork()) == 0) {
		close(pp[0]);
		/* What the starting parent says goes to its stderr. */
		if (dup2(fd, STDERR_FILENO) == -1)
			_exit(98);
		if (daemon_detach(&nfd) == -1)
			_exit(99);
		len = snprintf(msg, sizeof(msg), "sid=%d cwd=%s fd0=%d",
		    getsid(0) == getpid(),
		    getcwd(cwd, sizeof(cwd)) != NULL ? cwd : "?",
		    fcntl(STDIN_FILENO, F_GETFD) != -1);
		if (write(pp[1], msg, len) != len)
			_exit(1);
		close(pp[1]);
		if (how == 2)
			_exit(0);		/* dies without a word */
		daemon_detach_done(nfd, how);
		_exit(0);
	}
	ck_assert_int_gt(pid, 0);
	close(pp[1]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	n = read(pp[0], rep, replen - 1);
	rep[n > 0 ? n : 0] = '\0';
	close(pp[0]);
	n = pread(fd, out, outlen - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	return WEXITSTATUS(st);
}

START_TEST(test_detach)
{
	char rep[256], out[256];

	ck_assert_int_eq(detach_run(1, rep, sizeof(rep), out, sizeof(out)),
	    0);
	ck_assert_str_eq(rep, "sid=1 cwd=/ fd0=1");
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(detach_run(0, rep, sizeof(rep), out, sizeof(out)),
	    1);
	ck_assert_str_eq(out, "rtpproxyd: failed to start; see the system "
	    "log\n");
	ck_assert_int_eq(detach_run(2, rep, sizeof(rep), out, sizeof(out)),
	    1);
	ck_assert_str_eq(out, "rtpproxyd: exited before it was ready; see "
	    "the system log\n");
	daemon_detach_done(-1, 1);
}
END_TEST

START_TEST(test_nofile)
{
	char err[512] = "";

	ck_assert_msg(daemon_raise_nofile(64, err, sizeof(err)) == 0, "%s",
	    err);
	/* Beyond any kernel's limit, root or not. */
	ck_assert_int_eq(daemon_raise_nofile(1ULL << 40, err, sizeof(err)),
	    -1);
#define NEED "need 1099511627776 file descriptors but RLIMIT_NOFILE is "
	ck_assert_msg(strncmp(err, NEED, strlen(NEED)) == 0, "%s", err);
#undef NEED
	ck_assert_ptr_nonnull(strstr(err, "(ulimit -n, LimitNOFILE=) or "
	    "lower max-sessions"));
}
END_TEST

static void
notify_expect(int s, const char *want)
{
	char	buf[128];
	ssize_t	n;

	n = recv(s, buf, sizeof(buf) - 1, 0);
	ck_assert_int_eq(n, (ssize_t)strlen(want));
	buf[n] = '\0';
	ck_assert_str_eq(buf, want);
}

START_TEST(test_notify)
{
	struct sockaddr_un	sun;
	struct timeval		tv = { 2, 0 };
	const char		*p = tmp_path("notify");
	int			s;
	char			buf[8];

	/* Not under systemd: nothing happens. */
	unsetenv("NOTIFY_SOCKET");
	daemon_notify("READY=1");
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	daemon_notify("READY=1");

	ck_assert_int_ge(s = socket(AF_UNIX, SOCK_DGRAM, 0), 0);
	ck_assert_int_eq(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setenv("NOTIFY_SOCKET", p, 1);
	daemon_notify("READY=1");
	notify_expect(s, "READY=1");
	daemon_notify("STOPPING=1");
	notify_expect(s, "STOPPING=1");
	/* The relative path earlier sent nothing. */
	ck_assert_int_eq(recv(s, buf, sizeof(buf), MSG_DONTWAIT), -1);
	close(s);

#ifdef __linux__
	{
		char		name[64];
		socklen_t	len;

		snprintf(name, sizeof(name), "@rtpproxyd-check-%ld",
		    (long)getpid());
		ck_assert_int_ge(s = socket(AF_UNIX, SOCK_DGRAM, 0), 0);
		ck_assert_int_eq(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv,
		    sizeof(tv)), 0);
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, name, strlen(name));
		sun.sun_path[0] = '\0';
		len = offsetof(struct sockaddr_un, sun_path) + strlen(name);
		ck_assert_int_eq(bind(s, (struct sockaddr *)&sun, len), 0);
		setenv("NOTIFY_SOCKET", name, 1);
		daemon_notify("RELOADING=1");
		notify_expect(s, "RELOADING=1");
		close(s);
	}
#endif
	unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(test_privileges)
{
	char err[256] = "";

	ck_assert_int_eq(daemon_drop_privileges(NULL, NULL, 0, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(daemon_drop_privileges(NOUSER, NULL, 0, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "user \"" NOUSER "\" does not exist");

	if (getpwnam("nobody") != NULL) {
		ck_assert_int_eq(daemon_drop_privileges("nobody", NOUSER, 0,
		    err, sizeof(err)), -1);
		ck_assert_str_eq(err, "group \"" NOUSER "\" does not exist");
	}
}
END_TEST

/* This process's capability set "CapEff" or "CapAmb", or ~0. */
static unsigned long long
cap_set(const char *which)
{
	char			 line[256];
	unsigned long long	 v = ~0ULL;
	size_t			 n = strlen(which);
	FILE			*f;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return v;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, which, n) == 0 && line[n] == ':' &&
		    sscanf(line + n + 1, "%llx", &v) == 1)
			break;
	fclose(f);
	return v;
}

/*
 * A real drop, as root only, in a child of its own whatever CK_FORK says;
 * _i: whether CAP_NET_BIND_SERVICE is kept (and only that, and ambient so
 * that an exec keeps it too).
 */
START_TEST(test_privileges_root)
{
	unsigned long long	 want = _i ? 1ULL << 10 : 0;
	struct passwd	*pw;
	char		 err[256] = "";
	pid_t		 pid;
	int		 st;

	if ((pw = getpwnam("nobody")) == NULL)
		return;
	if ((pid = fork()) == 0) {
		gid_t	groups[4];
		int	bad = 0;

		if (daemon_drop_privileges("nobody", NULL, _i ? 1u << 10 : 0,
		    err, sizeof(err)) == -1) {
			if (geteuid() != 0 && strstr(err, "must be started as "
			    "root") != NULL)
				_exit(0);
			_exit(1);
		}
		if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid)
			bad |= 2;
		if (getgid() != pw->pw_gid || getegid() != pw->pw_gid)
			bad |= 4;
		if (getgroups(4, groups) != 1 || groups[0] != pw->pw_gid)
			bad |= 8;
		if (setuid(0) != -1)
			bad |= 16;
		if (geteuid() != 0 && (cap_set("CapEff") != want ||
		    cap_set("CapPrm") != want || cap_set("CapAmb") != want))
			bad |= 32;
		_exit(bad);
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

int
main(void)
{
	Suite	*s;
	TCase	*tc;
	SRunner	*sr;
	int	 failed;

	s = suite_create("config");

	tc = tcase_create("parse");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_kernel_forwarding);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_listen_parsed);
	tcase_add_test(tc, test_edges);
	tcase_add_test(tc, test_syntax);
	tcase_add_loop_test(tc, test_errors, 0,
	    sizeof(bad_conf) / sizeof(bad_conf[0]));
	tcase_add_test(tc, test_error_stops);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_round_trip_long);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, test_load);
	tcase_add_test(tc, test_load_not_regular);
	suite_add_tcase(s, tc);

	tc = tcase_create("daemon");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_pidfile_lock);
	tcase_add_test(tc, test_pidfile_fork);
	tcase_add_test(tc, test_detach);
	tcase_add_test(tc, test_nofile);
	tcase_add_test(tc, test_notify);
	tcase_add_test(tc, test_privileges);
	tcase_add_loop_test(tc, test_privileges_root, 0, 2);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
