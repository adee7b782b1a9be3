/*
 * rtpbench -P: the control-plane rate.  One client, one completion queue,
 * a fixed number of calls in flight: each slot creates a session, destroys
 * it once the create has succeeded, and starts the next create, for the
 * duration; then what is in flight finishes, every session it created is
 * destroyed.  Against a running daemon (-s) or one started here (-X).
 */
#include <sys/types.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "worker.h"
#include "rtpproxy.pb-c.h"
#include "bench.h"

#define CALL_TIMEOUT_MS	10000
#define HANG_NS		(30 * 1000000000LL)	/* past the end: give up */
#define DEST_PORT	9	/* discard: nothing is ever sent there */
#define MAX_INFLIGHT	1024
#define NCODES		17

enum { M_CREATE, M_DESTROY };

static const char *method_path[] = {
	"/rtpproxy.RtpProxy/CreateSession",
	"/rtpproxy.RtpProxy/DestroySession",
};
static const char *method_name[] = { "CreateSession", "DestroySession" };
static const char *code_name[NCODES] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
	"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
	"DATA_LOSS", "UNAUTHENTICATED",
};

struct cslot {
	grpc_call		*call;
	int			 method;
	int64_t			 t0;
	grpc_byte_buffer	*req, *resp;
	grpc_metadata_array	 md, trailing;
	grpc_status_code	 status;
	grpc_slice		 details;
	char			 id[SHM_ID_MAX];
};

struct ctl {
	grpc_channel		*ch;
	grpc_completion_queue	*cq;
	void			*reg[2];
	uint8_t			*create;	/* the packed request */
	size_t			 createlen;
	int			 busy;
	int64_t			 tend;
	struct hist		*lat[2];
	uint64_t		 ok[2], failed[2], codes[NCODES + 1];
	uint64_t		 calls_in, pairs_in;	/* before the end */
	char			 last_err[256];
};

static int
ctl_start(struct ctl *c, struct cslot *s, int method)
{
	Rtpproxy__DestroySessionRequest	 dreq =
	    RTPPROXY__DESTROY_SESSION_REQUEST__INIT;
	uint8_t				 dbuf[256];
	const uint8_t			*buf = c->create;
	size_t				 len = c->createlen;
	grpc_slice			 sl;
	grpc_op				 ops[6];
	gpr_timespec			 deadline;

	if (method == M_DESTROY) {
		dreq.session_id = s->id;
		if ((len = protobuf_c_message_get_packed_size(&dreq.base)) >
		    sizeof(dbuf))
			return -1;
		protobuf_c_message_pack(&dreq.base, dbuf);
		buf = dbuf;
	}
	deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	    gpr_time_from_millis(CALL_TIMEOUT_MS, GPR_TIMESPAN));
	s->method = method;
	s->call = grpc_channel_create_registered_call(c->ch, NULL,
	    GRPC_PROPAGATE_DEFAULTS, c->cq, c->reg[method], deadline, NULL);
	if (s->call == NULL)
		return -1;
	sl = grpc_slice_from_copied_buffer((const char *)buf, len);
	s->req = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	s->resp = NULL;
	s->status = GRPC_STATUS_UNKNOWN;
	s->details = grpc_empty_slice();
	grpc_metadata_array_init(&s->md);
	grpc_metadata_array_init(&s->trailing);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = s->req;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &s->resp;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &s->trailing;
	ops[5].data.recv_status_on_client.status = &s->status;
	ops[5].data.recv_status_on_client.status_details = &s->details;
	s->t0 = mono_ns();
	if (grpc_call_start_batch(s->call, ops, 6, s, NULL) != GRPC_CALL_OK) {
		grpc_byte_buffer_destroy(s->req);
		grpc_metadata_array_destroy(&s->md);
		grpc_metadata_array_destroy(&s->trailing);
		grpc_call_unref(s->call);
		return -1;
	}
	c->busy++;
	return 0;
}

/* The session id of a CreateSession response; 0 or -1. */
static int
ctl_created(struct cslot *s)
{
	Rtpproxy__CreateSessionResponse	*r;
	grpc_byte_buffer_reader		 rd;
	grpc_slice			 sl;
	int				 rc = -1;

	if (s->resp == NULL || !grpc_byte_buffer_reader_init(&rd, s->resp))
		return -1;
	sl = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	r = rtpproxy__create_session_response__unpack(NULL,
	    GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
	grpc_slice_unref(sl);
	if (r != NULL && r->session != NULL &&
	    r->session->session_id[0] != '\0') {
		snprintf(s->id, sizeof(s->id), "%s", r->session->session_id);
		rc = 0;
	}
	if (r != NULL)
		rtpproxy__create_session_response__free_unpacked(r, NULL);
	return rc;
}

static void
ctl_done(struct ctl *c, struct cslot *s, int success)
{
	int64_t	now = mono_ns();
	int	code = success ? (int)s->status : GRPC_STATUS_UNKNOWN, next;
	size_t	n;

	c->busy--;
	hist_add(c->lat[s->method], now - s->t0);
	if (code == GRPC_STATUS_OK && s->method == M_CREATE &&
	    ctl_created(s) == -1)
		code = GRPC_STATUS_INTERNAL;	/* no session in the reply */
	c->codes[code >= 0 && code < NCODES ? code : NCODES]++;
	if (code == GRPC_STATUS_OK)
		c->ok[s->method]++;
	else {
		c->failed[s->method]++;
		n = GRPC_SLICE_LENGTH(s->details);
		if (n >= sizeof(c->last_err))
			n = sizeof(c->last_err) - 1;
		memcpy(c->last_err, GRPC_SLICE_START_PTR(s->details), n);
		c->last_err[n] = '\0';
	}
	if (now <= c->tend) {
		c->calls_in++;
		if (s->method == M_DESTROY && code == GRPC_STATUS_OK)
			c->pairs_in++;
	}
	if (s->resp != NULL)
		grpc_byte_buffer_destroy(s->resp);
	grpc_byte_buffer_destroy(s->req);
	grpc_slice_unref(s->details);
	grpc_metadata_array_destroy(&s->md);
	grpc_metadata_array_destroy(&s->trailing);
	grpc_call_unref(s->call);
	s->call = NULL;

	/* A session that was created is destroyed, whatever the time. */
	if (s->method == M_CREATE && code == GRPC_STATUS_OK)
		next = M_DESTROY;
	else if (now < c->tend && !bench_stop)
		next = M_CREATE;
	else
		return;
	if (ctl_start(c, s, next) == -1) {
		c->failed[next]++;
		c->codes[NCODES]++;
		snprintf(c->last_err, sizeof(c->last_err), "cannot start a "
		    "call");
	}
}

/* inflight slots until the end, then until each is done. */
static int
ctl_loop(struct ctl *c, struct cslot *slots, int inflight, double secs)
{
	grpc_event	ev;
	int		i;

	c->tend = mono_ns() + (int64_t)(secs * 1e9);
	for (i = 0; i < inflight; i++)
		if (ctl_start(c, &slots[i], M_CREATE) == -1) {
			fprintf(stderr, "rtpbench: cannot start a call\n");
			break;
		}
	while (c->busy > 0) {
		ev = grpc_completion_queue_next(c->cq,
		    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
		    gpr_time_from_millis(1000, GPR_TIMESPAN)), NULL);
		if (ev.type == GRPC_OP_COMPLETE)
			ctl_done(c, ev.tag, ev.success);
		else if (ev.type == GRPC_QUEUE_SHUTDOWN ||
		    mono_ns() > c->tend + HANG_NS) {
			fprintf(stderr, "rtpbench: %d call(s) did not "
			    "complete\n", c->busy);
			return -1;
		}
	}
	return 0;
}

static void
ctl_reset(struct ctl *c)
{
	hist_reset(c->lat[0]);
	hist_reset(c->lat[1]);
	memset(c->ok, 0, sizeof(c->ok));
	memset(c->failed, 0, sizeof(c->failed));
	memset(c->codes, 0, sizeof(c->codes));
	c->calls_in = c->pairs_in = 0;
	c->last_err[0] = '\0';
}

static int
ctl_open(struct ctl *c, const char *server, const struct bopts *o)
{
	Rtpproxy__CreateSessionRequest	 req =
	    RTPPROXY__CREATE_SESSION_REQUEST__INIT;
	Rtpproxy__Endpoint		 l = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 d = RTPPROXY__ENDPOINT__INIT;
	grpc_channel_credentials	*creds;
	grpc_arg			 arg;
	grpc_channel_args		 args;
	int				 i;

	grpc_init();
	memset(&arg, 0, sizeof(arg));
	arg.type = GRPC_ARG_INTEGER;
	arg.key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
	arg.value.integer = 1;
	args.num_args = 1;
	args.args = &arg;
	creds = grpc_insecure_credentials_create();
	c->ch = grpc_channel_create(server, creds, &args);
	grpc_channel_credentials_release(creds);
	c->cq = grpc_completion_queue_create_for_next(NULL);
	if (c->ch == NULL || c->cq == NULL)
		return -1;
	for (i = 0; i < 2; i++)
		c->reg[i] = grpc_channel_register_call(c->ch, method_path[i],
		    NULL, NULL);
	l.address = d.address = (char *)o->addr;
	d.port = DEST_PORT;
	req.listen = &l;
	req.destination = &d;
	req.disable_rtcp = 1;
	c->createlen = protobuf_c_message_get_packed_size(&req.base);
	c->create = xmalloc(c->createlen + 1);
	protobuf_c_message_pack(&req.base, c->create);
	c->lat[0] = xcalloc(1, sizeof(struct hist));
	c->lat[1] = xcalloc(1, sizeof(struct hist));
	return 0;
}

static void
ctl_close(struct ctl *c)
{
	grpc_event ev;

	if (c->ch != NULL)
		grpc_channel_destroy(c->ch);
	if (c->cq != NULL) {
		grpc_completion_queue_shutdown(c->cq);
		do {
			ev = grpc_completion_queue_next(c->cq,
			    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		} while (ev.type != GRPC_QUEUE_SHUTDOWN);
		grpc_completion_queue_destroy(c->cq);
	}
	free(c->create);
	free(c->lat[0]);
	free(c->lat[1]);
	grpc_shutdown();
}

static void
ctl_report(const struct ctl *c, const struct bopts *o, const char *server,
    double secs, double dcpu, double bench_busy, int self)
{
	int	i, any = 0;

	printf("\n== control plane: %d calls in flight for %.1f s against "
	    "%s%s\n", o->inflight, secs, server, self ?
	    " (rtpproxyd started here)" : "");
	printf("pairs      %10.0f /s create + destroy (%" PRIu64 " in the "
	    "%.1f s)\n", (double)c->pairs_in / secs, c->pairs_in, secs);
	printf("calls      %10.0f /s\n", (double)c->calls_in / secs);
	for (i = 0; i < 2; i++)
		printf("%-15s p50 %.2f ms  p99 %.2f ms  max %.2f ms  "
		    "(%" PRIu64 " ok, %" PRIu64 " failed)\n", method_name[i],
		    hist_pct(c->lat[i], 50) / 1000,
		    hist_pct(c->lat[i], 99) / 1000,
		    (double)c->lat[i]->max_ns / 1e6, c->ok[i], c->failed[i]);
	printf("errors    ");
	for (i = 1; i <= NCODES; i++)
		if (c->codes[i] > 0) {
			printf(" %s %" PRIu64, i < NCODES ? code_name[i] :
			    "LOCAL", c->codes[i]);
			any = 1;
		}
	printf("%s\n", any ? "" : " none");
	if (any && c->last_err[0] != '\0')
		printf("last error \"%s\"\n", c->last_err);
	if (dcpu >= 0)
		printf("daemon CPU %.2f s (%.0f %% of one CPU), %.0f us per "
		    "pair\n", dcpu, 100 * dcpu / secs, c->pairs_in > 0 ?
		    dcpu * 1e6 / (double)c->pairs_in : 0);
	if (bench_busy >= 0)
		printf("bench core %.0f %% busy\n", 100 * bench_busy);
	fflush(stdout);
}

int
ctlrate_run(const struct bopts *o)
{
	struct target	 t;
	struct ctl	 c;
	struct cslot	*slots;
	struct cpu	 c0, c1;
	struct corestat	 b0, b1;
	const char	*server = o->server;
	double		 dcpu = -1, busy = -1, steal;
	pid_t		 pid = o->dpid;
	int		 self = o->rtpproxyd != NULL, rc = 1, gone;

	memset(&t, 0, sizeof(t));
	memset(&c, 0, sizeof(c));
	if (o->inflight < 1 || o->inflight > MAX_INFLIGHT)
		return 2;
	slots = xcalloc((size_t)o->inflight, sizeof(*slots));
	if (self) {
		/*
		 * Room for the sessions in flight and for those destroyed
		 * but still closing (until their worker lets go of them),
		 * which at thousands of pairs a second are more than those:
		 * on a busy machine, where the worker waits for a CPU while
		 * the master goes on, over a hundred for each in flight.
		 */
		if (target_start(&t, T_RTPP, o->rtpproxyd, o,
		    o->inflight * 128) == -1)
			goto out;
		server = t.server;
		pid = t.pid;
	}
	if (ctl_open(&c, server, o) == -1) {
		fprintf(stderr, "rtpbench: no gRPC channel to %s\n", server);
		goto out;
	}
	/* The connection up first, out of the figures: one pair. */
	if (ctl_loop(&c, slots, 1, 0) == -1 || c.ok[M_DESTROY] != 1) {
		fprintf(stderr, "rtpbench: a first create + destroy against "
		    "%s failed: %s\n", server, c.last_err);
		goto out;
	}
	ctl_reset(&c);
	cpu_sample(pid, &c0);
	if (self)
		core_sample(o->bench_cpu, &b0);
	if (ctl_loop(&c, slots, o->inflight, o->secs) == -1)
		goto out;
	cpu_sample(pid, &c1);
	if (pid > 0)
		dcpu = cpu_delta(&c0, &c1, &gone);
	if (self) {
		core_sample(o->bench_cpu, &b1);
		core_delta(&b0, &b1, &busy, &steal);
	}
	ctl_report(&c, o, server, o->secs, dcpu, busy, self);
	rc = c.pairs_in > 0 ? 0 : 1;
out:
	if (c.cq != NULL || c.ch != NULL)
		ctl_close(&c);
	target_stop(&t);
	free(slots);
	return rc;
}
