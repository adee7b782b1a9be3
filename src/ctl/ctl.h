/*
 * rtpproxyctl's output: a small JSON emitter (json.c) and what it shows of
 * sessions, lists and events, as text or as JSON (show.c).
 */
#ifndef RTPPROXYD_CTL_H
#define RTPPROXYD_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rtpproxy.pb-c.h"

/* json.c */
struct json {
	FILE	*f;
	int	 depth;
	int	 first[32];
};

void	json_open(struct json *, const char *, int);
void	json_close(struct json *, int);
void	json_str(struct json *, const char *, const char *);
void	json_u64(struct json *, const char *, uint64_t);
void	json_i64(struct json *, const char *, int64_t);
void	json_dbl(struct json *, const char *, double);
void	json_bool(struct json *, const char *, int);

/* show.c */
const char *show_name(const char *, int);
const char *show_state(int);
void	show_session(const Rtpproxy__SessionInfo *, int, int);
void	show_list(Rtpproxy__ListSessionsResponse **, size_t, int);
void	show_event(const Rtpproxy__SessionEvent *, int);

#endif
