/*
 * The configuration from its file, and the files it names read at the
 * same time: the bearer tokens and the TLS certificate, key and CA, so
 * that a reload that cannot read them changes nothing.  Every file goes
 * through file_read: a FIFO, a device or a directory is refused, and the
 * size is bounded.
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

#define CONF_SECRET_MAX	(64 * 1024)
#define CONF_TOKEN_MIN	16
#define CONF_TOKEN_MAX	4096

int
config_load(struct config *c, const char *path, int must_exist, char *err,
    size_t errlen)
{
	struct config	 n;
	char		*buf;
	size_t		 len;

	memset(c, 0, sizeof(*c));
	if (file_read(path, CONF_FILE_MAX, &buf, &len) == -1) {
		if (errno == ENOENT && !must_exist) {
			config_defaults(c);
			return 0;
		}
		conf_seterr(err, errlen, path, file_strerror(CONF_FILE_MAX));
		return -1;
	}
	config_defaults(&n);
	if (conf_parse(&n, path, buf, len, err, errlen) == -1) {
		config_free(&n);
		free(buf);
		return -1;
	}
	free(buf);
	n.path = xstrdup(path);
	if (config_load_files(&n, err, errlen) == -1) {
		config_free(&n);
		return -1;
	}
	*c = n;
	return 0;
}

/*
 * The bearer tokens: one per line, blank lines and # comments skipped.
 * Several let an operator roll a new token out before retiring the old.
 */
static int
conf_tokens(struct config *c, char *text, char *why, size_t whylen)
{
	char	*line, *next, *end;
	size_t	 n, i;
	int	 lineno = 0;

	for (line = text; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		end = line + strlen(line);
		while (end > line && (end[-1] == '\r' || end[-1] == ' ' ||
		    end[-1] == '\t'))
			*--end = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '\0' || *line == '#')
			continue;
		n = strlen(line);
		for (i = 0; i < n; i++)
			if ((unsigned char)line[i] < 0x21 ||
			    (unsigned char)line[i] > 0x7e)
				break;
		if (i < n) {
			snprintf(why, whylen, "line %d: a token is visible "
			    "ASCII without blanks", lineno);
			return -1;
		}
		if (n > CONF_TOKEN_MAX) {
			snprintf(why, whylen, "line %d: token longer than %d "
			    "characters", lineno, CONF_TOKEN_MAX);
			return -1;
		}
		if (n < CONF_TOKEN_MIN) {
			snprintf(why, whylen, "line %d: token shorter than %d "
			    "characters", lineno, CONF_TOKEN_MIN);
			return -1;
		}
		if (c->ntokens == CONF_MAX_TOKENS) {
			snprintf(why, whylen, "more than %d tokens",
			    CONF_MAX_TOKENS);
			return -1;
		}
		c->tokens = xreallocarray(c->tokens, c->ntokens + 1,
		    sizeof(*c->tokens));
		c->tokens[c->ntokens++] = xstrdup(line);
	}
	if (c->ntokens == 0) {
		snprintf(why, whylen, "no token in it");
		return -1;
	}
	return 0;
}

static int
conf_pem(const char *text, const char *what)
{
	return strstr(text, "-----BEGIN ") != NULL && strstr(text, what) !=
	    NULL;
}

/*
 * The password for Redis's AUTH: the file's first line, without its
 * newline; the file must not be readable by others.
 */
static int
conf_redis_password(struct config *c, const char *name, char *err,
    size_t errlen)
{
	struct stat	 sb;
	const char	*why = NULL;
	char		*buf;
	size_t		 len, n;

	if (file_read(c->redis_password_file, CONF_SECRET_MAX, &buf,
	    &len) == -1) {
		snprintf(err, errlen, "%s:%u: redis-password-file %s: %s",
		    name, c->redis_password_line, c->redis_password_file,
		    file_strerror(CONF_SECRET_MAX));
		return -1;
	}
	n = strcspn(buf, "\r\n");
	if (n == 0)
		why = "empty";
	else if (memchr(buf, '\0', len) != NULL)
		why = "a NUL byte in it";
	if (why == NULL) {
		c->redis_password = xmalloc(n + 1);
		memcpy(c->redis_password, buf, n);
		c->redis_password[n] = '\0';
		if (stat(c->redis_password_file, &sb) == 0 &&
		    (sb.st_mode & 0077) != 0)
			log_warnx("redis-password-file %s can be read by others "
			    "than its owner: chmod 600 it",
			    c->redis_password_file);
	}
	explicit_bzero(buf, len);
	free(buf);
	if (why != NULL) {
		snprintf(err, errlen, "%s:%u: redis-password-file %s: %s",
		    name, c->redis_password_line, c->redis_password_file, why);
		return -1;
	}
	return 0;
}

/*
 * redis-tls-ca, -cert and -key: read here, as root at start, so that the
 * bridge (src/repl/redis_tls.c) needs no file once privileges are gone.
 */
static int
conf_redis_tls(struct config *c, const char *name, char *err, size_t errlen)
{
	static const char *const kw[3] = { "redis-tls-ca", "redis-tls-cert",
	    "redis-tls-key" };
	static const char *const pem[3] = { "CERTIFICATE", "CERTIFICATE",
	    "PRIVATE KEY" };
	const char	*path[3] = { c->redis_tls_ca, c->redis_tls_cert,
	    c->redis_tls_key };
	struct stat	 sb;
	char		*buf;
	size_t		 len;
	int		 i;

	for (i = 0; i < 3; i++) {
		if (path[i] == NULL)
			continue;
		if (file_read(path[i], CONF_SECRET_MAX, &buf, &len) == -1) {
			snprintf(err, errlen, "%s:%u: %s %s: %s", name,
			    c->redis_tls_line[i], kw[i], path[i],
			    file_strerror(CONF_SECRET_MAX));
			return -1;
		}
		c->redis_tls_pem[i] = buf;
		if (!conf_pem(buf, pem[i])) {
			snprintf(err, errlen, "%s:%u: %s %s: no PEM %s in it",
			    name, c->redis_tls_line[i], kw[i], path[i],
			    pem[i]);
			return -1;
		}
		if (i == 2 && stat(path[i], &sb) == 0 &&
		    (sb.st_mode & 0077) != 0)
			log_warnx("redis-tls-key %s can be read by others than "
			    "its owner: chmod 600 it", path[i]);
	}
	return 0;
}

/*
 * Read the files the configuration names (the token file, the TLS
 * certificate, key and client CA), so that a missing or unreadable one
 * is an error of the configuration, with its line.  Called by
 * config_load and on every reload.
 */
int
config_load_files(struct config *c, char *err, size_t errlen)
{
	static const char *const kw[3] = { "tls-cert", "tls-key",
	    "tls-client-ca" };
	static const char *const pem[3] = { "CERTIFICATE", "PRIVATE KEY",
	    "CERTIFICATE" };
	const char	*path[3] = { c->tls_cert, c->tls_key, c->tls_client_ca };
	const char	*name = c->path != NULL ? c->path : "configuration";
	struct stat	 sb;
	char		*buf, why[128];
	size_t		 len;
	int		 i;

	config_free_secrets(c);
	if (c->auth_token_file != NULL) {
		if (file_read(c->auth_token_file, CONF_SECRET_MAX, &buf,
		    &len) == -1) {
			snprintf(err, errlen, "%s:%u: auth-token-file %s: %s",
			    name, c->auth_token_line, c->auth_token_file,
			    file_strerror(CONF_SECRET_MAX));
			return -1;
		}
		i = conf_tokens(c, buf, why, sizeof(why));
		explicit_bzero(buf, len);
		free(buf);
		if (i == 0 && stat(c->auth_token_file, &sb) == 0 &&
		    (sb.st_mode & 0077) != 0)
			log_warnx("auth-token-file %s can be read by others "
			    "than its owner: chmod 600 it", c->auth_token_file);
		if (i == -1) {
			snprintf(err, errlen, "%s:%u: auth-token-file %s: %s",
			    name, c->auth_token_line, c->auth_token_file, why);
			config_free_secrets(c);
			return -1;
		}
	}
	if (c->redis_password_file != NULL &&
	    conf_redis_password(c, name, err, errlen) == -1) {
		config_free_secrets(c);
		return -1;
	}
	if (conf_redis_tls(c, name, err, errlen) == -1) {
		config_free_secrets(c);
		return -1;
	}
	for (i = 0; i < 3; i++) {
		if (path[i] == NULL)
			continue;
		if (file_read(path[i], CONF_SECRET_MAX, &buf, &len) == -1) {
			snprintf(err, errlen, "%s:%u: %s %s: %s", name,
			    c->tls_line[i], kw[i], path[i],
			    file_strerror(CONF_SECRET_MAX));
			config_free_secrets(c);
			return -1;
		}
		c->tls_pem[i] = buf;
		if (!conf_pem(buf, pem[i])) {
			snprintf(err, errlen, "%s:%u: %s %s: no PEM %s in it",
			    name, c->tls_line[i], kw[i], path[i], pem[i]);
			config_free_secrets(c);
			return -1;
		}
	}
	return 0;
}
