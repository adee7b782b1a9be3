/*
 * What every part of rtpproxyd uses: logging, allocation, small utilities,
 * the Unix daemon chores, and the status codes one layer gives another.
 */
#ifndef RTPPROXYD_COMMON_H
#define RTPPROXYD_COMMON_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/queue.h>

#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <syslog.h>

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR	"/run"
#endif
#define RTPPROXYD_CONF	SYSCONFDIR "/rtpproxyd.conf"

#define __dead		__attribute__((__noreturn__))
#define __printflike(a, b) __attribute__((__format__(__printf__, a, b)))

/*
 * gRPC status codes, X(NAME, number), used by the session layer to say
 * what went wrong; rp_code_name() gives the NAME.
 */
#define RP_CODES(X)							\
	X(OK, 0)							\
	X(CANCELLED, 1)							\
	X(UNKNOWN, 2)							\
	X(INVALID_ARGUMENT, 3)						\
	X(DEADLINE_EXCEEDED, 4)						\
	X(NOT_FOUND, 5)							\
	X(ALREADY_EXISTS, 6)						\
	X(PERMISSION_DENIED, 7)						\
	X(RESOURCE_EXHAUSTED, 8)					\
	X(FAILED_PRECONDITION, 9)					\
	X(ABORTED, 10)							\
	X(OUT_OF_RANGE, 11)						\
	X(UNIMPLEMENTED, 12)						\
	X(INTERNAL, 13)							\
	X(UNAVAILABLE, 14)						\
	X(DATA_LOSS, 15)						\
	X(UNAUTHENTICATED, 16)

#define RP_CODE_ENUM_(name, num)	RP_##name = num,
enum rp_code {
	RP_CODES(RP_CODE_ENUM_)
	RP_CODE_N
};

struct rp_error {
	enum rp_code	code;
	char		msg[256];
};

/* log.c */
void	log_init(int, int, int, const char *);
void	log_setlevel(int);
int	log_getlevel(void);
void	log_warn(const char *, ...) __printflike(1, 2);
void	log_warnx(const char *, ...) __printflike(1, 2);
void	log_notice(const char *, ...) __printflike(1, 2);
void	log_info(const char *, ...) __printflike(1, 2);
void	log_debug(const char *, ...) __printflike(1, 2);
__dead void fatal(const char *, ...) __printflike(1, 2);
__dead void fatalx(const char *, ...) __printflike(1, 2);
int	log_level_from_name(const char *);
const char *log_level_name(int);
int	log_facility_from_name(const char *);

/* xmalloc.c: control paths only; never returns NULL */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
int	 xasprintf(char **, const char *, ...) __printflike(2, 3);

/* util.c */
int64_t	 now_ms(void);			/* CLOCK_REALTIME, ms */
int64_t	 mono_ms(void);			/* CLOCK_MONOTONIC, ms */
int	 set_nonblock(int);
int	 set_cloexec(int, int);
int	 parse_ip(const char *, uint16_t, struct sockaddr_storage *,
	    socklen_t *);
int	 parse_u32(const char *, uint32_t, uint32_t, uint32_t *);
int	 utf8_valid(const char *, size_t);
const char *sa_ntop(const struct sockaddr *, char *, size_t);
int	 proc_alive(pid_t);
int	 proc_pidfd(pid_t);
int	 ports_ephemeral(uint16_t, uint16_t, const char *, const char *,
	    uint16_t *, uint16_t *);
void	 proc_wait_gone(pid_t, int, int);
int	 file_read(const char *, size_t, char **, size_t *);
const char *file_strerror(size_t);
int	 rp_err(struct rp_error *, enum rp_code, const char *, ...)
	    __printflike(3, 4);
const char *rp_code_name(int);

/* daemon.c: the Unix daemon chores */
int	daemon_pidfile_open(const char *, pid_t *, char *, size_t);
int	daemon_pidfile_write(int);
void	daemon_pidfile_close(int, const char *);
int	daemon_detach(int *);
void	daemon_detach_done(int, int);
void	daemon_close_inherited(const int *, int);
int	daemon_drop_privileges(const char *, const char *, uint32_t, char *,
	    size_t);
void	daemon_clear_ambient(void);
int	daemon_raise_nofile(uint64_t, char *, size_t);
void	daemon_notify(const char *);
void	daemon_notify_barrier(int);

#endif
