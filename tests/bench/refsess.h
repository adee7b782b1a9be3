/*
 * What the reference relays (refrelay, uringrelay) share: their input,
 * the sessions they relay, and how they bind them.  See refrelay.c.
 */
#ifndef REFSESS_H
#define REFSESS_H

#include <sys/socket.h>

#include <signal.h>

struct rsess;

struct rsock {
	struct rsess	*sess;
	int		 fd;
	int		 fwd;		/* 0: listen socket, 1: forward */
	long		 left;		/* refrelay's REFRELAY_BLACKHOLE */
};

struct rsess {
	struct rsock		 sk[2];
	struct sockaddr_storage	 dest;
	struct sockaddr_storage	 latch;
	socklen_t		 destlen;
	socklen_t		 latchlen;	/* 0: nothing latched yet */
};

/*
 * Read the sessions from stdin and bind their sockets, printing "ports
 * LISTEN_PORT FORWARD_PORT" for each; add() is told of each socket.  0, or
 * -1 with "error: ..." printed.
 */
int	ref_read_sessions(int (*)(struct rsock *, void *), void *);
/* The most descriptors this process may have, and SIGTERM/INT to *stop. */
void	ref_setup(volatile sig_atomic_t *);

#endif
