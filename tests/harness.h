/*
 * Running the real rtpproxyd for tests: a private directory with a config
 * file, a gRPC port and a shared-memory name of its own, stderr captured in
 * a log file, and clean-up of every process it started.
 */
#ifndef RTPPROXYD_HARNESS_H
#define RTPPROXYD_HARNESS_H

#include <sys/types.h>
#include <sys/socket.h>
#include <stdint.h>

struct daemon {
	pid_t		pid;
	char		dir[128];	/* private temporary directory */
	char		conf[192];
	char		log[192];
	char		pidfile[192];
	char		grpc[64];	/* "127.0.0.1:PORT" */
	char		shm[64];	/* shm object name, "/rtpproxyd-test-..." */
	uint16_t	grpc_port;
	uint16_t	port_min;	/* media port range */
	uint16_t	port_max;
	int		workers;
};

/*
 * Start `$RTPPROXYD -f -c conf` (prefixed by $RTPPROXYD_WRAPPER if set).
 * extra: further config lines (may be NULL).  Waits until the log says that
 * every worker is ready.  0 or -1.
 */
int	harness_start(struct daemon *, int workers, const char *extra);
/* Only prepare dir/conf (for tests that start the binary themselves). */
int	harness_prepare(struct daemon *, int workers, const char *extra);
/* Count of lines in the log containing s; wait until >= n.  0 or -1. */
int	harness_wait_log(struct daemon *, const char *s, int n, int ms);
int	harness_log_count(struct daemon *, const char *s);
/* SIGTERM, wait; SIGKILL after ms.  Returns the wait status or -1. */
int	harness_stop(struct daemon *, int ms);
/* The pid of worker id from its latest "worker ID ready" log line. */
pid_t	harness_worker_pid(struct daemon *, int id);
/* Remove the directory; kill anything still running. */
void	harness_cleanup(struct daemon *);
/* Scale for timeouts when running under valgrind (RTPPROXYD_SLOW). */
int	harness_slow(void);
/* A UDP socket bound to 127.0.0.1 (or ::1 if v6) on an ephemeral port. */
int	harness_udp(int v6, uint16_t *port);
/* Wait up to ms for a datagram; returns its length or -1. */
ssize_t	harness_recv(int fd, void *buf, size_t len, int ms,
	    struct sockaddr_storage *from);
int	harness_send(int fd, const char *addr, uint16_t port, const void *,
	    size_t);
/* Does this pid still exist (and is not a zombie)? */
int	harness_alive(pid_t);

#endif
