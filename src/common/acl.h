/*
 * acl.c: where media may go and whom it may come from, checked by the
 * master (destinations) and by the workers (senders) against the rules
 * the master publishes in the session table.
 */
#ifndef RTPPROXYD_ACL_H
#define RTPPROXYD_ACL_H

#include "common.h"
#include "shm.h"

struct config;

/* acl.c: where media may go */
#define ACL_ALLOW	0
#define ACL_DENY	1
#define ACL_SELF	2
#define ACL_OWN		3	/* for acl_explain: one of our sockets */
/* What acl_check is asked about: */
#define ACL_UDP		0	/* a UDP destination or sender */
#define ACL_TCP		1	/* a TCP destination: the API ports too */
#define ACL_TCP_PEER	2	/* a TCP caller that connected to us */
#define ACL_UDP_SRC	3	/* a UDP sender, to latch on to */

int	acl_parse(const char *, struct shm_acl_rule *, char *, size_t);
const char *acl_rule_str(const struct shm_acl_rule *, char *, size_t);
int	acl_check(const struct shm_acl *, const struct sockaddr *, int, int *);
int	acl_own_socket(const struct shm_acl *, const struct shm_table *,
	    const struct sockaddr *);
int	acl_local(const struct shm_acl *, const struct sockaddr *,
	    struct sockaddr_storage *);
void	acl_explain(const struct shm_acl *, const struct config *,
	    const struct sockaddr *, int, int, const char *, char *, size_t);
int	acl_snapshot(const struct shm_acl *, struct shm_acl *);
void	acl_build(struct shm_acl *, const struct config *);
void	acl_publish(struct shm_acl *, const struct shm_acl *);

#endif
