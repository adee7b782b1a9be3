/* Internal to the gRPC service files (grpcsvc.c, reflection.c). */
#ifndef RTPPROXYD_GRPCSVC_H
#define RTPPROXYD_GRPCSVC_H
#endif
