/*
 * Recording from outside, on the real daemon running as nobody: a pcap
 * file per session that tshark reads with the same packet counts and
 * sequence numbers as the relay forwarded, the real addresses, mode 0640
 * and the daemon's user; started at creation or with UpdateSession and
 * stopped with it; a file that cannot be created, a directory removed
 * while recording and a full disk reported on the session while media
 * flows on; a worker killed with SIGKILL and the next part of the file.
 */
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "common.h"

#define M_UPDATE	"/rtpproxy.RtpProxy/UpdateSession"
#define M_EVENTS	"/rtpproxy.RtpProxy/StreamSessionEvents"

static struct daemon	d;
static uint16_t		mport;		/* metrics */
static char		recdir[256];
static const char	*media = "127.0.0.1";	/* the sessions' address */

static void
up_with(const char *dir_extra, int user)
{
	char		 extra[600];
	struct passwd	*pw = getpwnam("nobody");

	signal(SIGPIPE, SIG_IGN);
	mport = harness_tcp_port();
	snprintf(recdir, sizeof(recdir), "/tmp/rtpproxyd-rec.%ld",
	    (long)getpid());
	(void)mkdir(recdir, 0755);
	if (pw != NULL)
		(void)chown(recdir, pw->pw_uid, pw->pw_gid);
	snprintf(extra, sizeof(extra), "recording-dir %s%s\n"
	    "metrics-listen 127.0.0.1:%u\n%s", recdir,
	    dir_extra != NULL ? dir_extra : "", mport,
	    user ? "user nobody" : "");
	if (harness_prepare(&d, 1, extra) == -1)
		return;
	chmod(d.dir, 0755);
	chmod(d.conf, 0644);
	if (harness_launch(&d, 1) == -1)
		fprintf(stderr, "check_record: the daemon did not start; log "
		    "in %s\n", d.log);
}

static void up(void) { up_with(NULL, 1); }

/*
 * A writer slower than the media: a small ring, a second a turn (ten
 * under valgrind, where sending the media takes seconds too).
 */
static void
up_stall(void)
{
	char	fp[32];

	snprintf(fp, sizeof(fp), "rec-stall:%d", harness_slow());
	setenv("RTPPROXYD_FAILPOINT", fp, 1);
	up_with(NULL, 1);
	unsetenv("RTPPROXYD_FAILPOINT");
}
static void up_missing(void) { up_with("/missing", 1); }

static void
up_norec(void)
{
	signal(SIGPIPE, SIG_IGN);
	recdir[0] = '\0';
	if (harness_start(&d, 1, NULL) == -1)
		fprintf(stderr, "check_record: the daemon did not start\n");
}

static void
down(void)
{
	char cmd[400];

	harness_cleanup(&d);
	/* The test, in a child of its own, may have mounted it. */
	if (recdir[0] != '\0')
		(void)umount2(recdir, MNT_DETACH);
	if (recdir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", recdir);
		(void)system(cmd);
	}
}

static struct rpc_client *
client(void)
{
	struct rpc_client *c;

	ck_assert_ptr_nonnull(c = rpc_client_new(d.grpc));
	return c;
}

/* CreateSession with record; the status; *si the session if asked. */
static int
create_rec(struct rpc_client *c, const char *id, uint16_t dport, int record,
    int tcp, Rtpproxy__SessionInfo **si, char *det, size_t detlen)
{
	Rtpproxy__CreateSessionRequest	 req =
	    RTPPROXY__CREATE_SESSION_REQUEST__INIT;
	Rtpproxy__CreateSessionResponse	*resp = NULL;
	Rtpproxy__Endpoint		 l = RTPPROXY__ENDPOINT__INIT;
	Rtpproxy__Endpoint		 ds = RTPPROXY__ENDPOINT__INIT;
	char				 buf[512];
	int				 rc;

	req.session_id = (char *)id;
	l.address = (char *)media;
	ds.address = (char *)media;
	ds.port = dport;
	req.listen = &l;
	req.destination = &ds;
	req.record = record;
	if (tcp)
		req.transport = RTPPROXY__TRANSPORT__TRANSPORT_TCP;
	rc = rpc_unary(c, M_CREATE, &req.base,
	    &rtpproxy__create_session_response__descriptor,
	    (ProtobufCMessage **)&resp, det != NULL ? det : buf,
	    det != NULL ? detlen : sizeof(buf), harness_ms(10000));
	if (si != NULL)
		*si = NULL;
	if (resp != NULL) {
		if (si != NULL) {
			*si = resp->session;
			resp->session = NULL;
		}
		rtpproxy__create_session_response__free_unpacked(resp, NULL);
	}
	return rc;
}

static int
set_recording(struct rpc_client *c, const char *id, int start, char *det,
    size_t detlen)
{
	Rtpproxy__UpdateSessionRequest	 req =
	    RTPPROXY__UPDATE_SESSION_REQUEST__INIT;
	Rtpproxy__UpdateSessionResponse	*resp = NULL;
	char				 buf[512];
	int				 rc;

	req.session_id = (char *)id;
	req.recording = start ?
	    RTPPROXY__UPDATE_RECORDING__UPDATE_RECORDING_START :
	    RTPPROXY__UPDATE_RECORDING__UPDATE_RECORDING_STOP;
	rc = rpc_unary(c, M_UPDATE, &req.base,
	    &rtpproxy__update_session_response__descriptor,
	    (ProtobufCMessage **)&resp, det != NULL ? det : buf,
	    det != NULL ? detlen : sizeof(buf), harness_ms(10000));
	if (resp != NULL)
		rtpproxy__update_session_response__free_unpacked(resp, NULL);
	return rc;
}

/*
 * Wait up to 10 s until the session's recording is in that state
 * (active, or not with an error containing err, or stopped and
 * packets written); 0 or -1.
 */
static int
wait_rec(struct rpc_client *c, const char *id, int active, const char *err,
    uint64_t packets)
{
	Rtpproxy__SessionInfo	*si;
	int			 i, ok = 0;

	for (i = 0; i < 200 && !ok; i++) {
		if (harness_status(c, id, &si) != 0)
			return -1;
		if (si->recording != NULL &&
		    si->recording->active == (active != 0) &&
		    (err == NULL || strstr(si->recording->error, err) != NULL) &&
		    si->recording->packets >= packets)
			ok = 1;
		harness_info_free(si);
		if (!ok)
			usleep(50000 * (unsigned)harness_slow());
	}
	return ok ? 0 : -1;
}

/* Send count RTP packets from fd to port, seq from seq0, spaced 1 ms. */
static void
send_rtp(int fd, uint16_t port, uint16_t seq0, int count, uint32_t ssrc)
{
	uint8_t	b[256];
	size_t	n;
	int	i;

	for (i = 0; i < count; i++) {
		n = harness_rtp(b, (uint16_t)(seq0 + i), 160u * (uint32_t)i,
		    ssrc, 160);
		ck_assert_int_eq(harness_send(fd, media, port, b, n), 0);
		usleep(1000);
	}
}

/* Everything waiting on fd: how many. */
static int
drain(int fd, int ms)
{
	uint8_t	b[512];
	int	k = 0;

	while (harness_recv(fd, b, sizeof(b), ms, NULL) > 0) {
		k++;
		ms = 100;
	}
	return k;
}

/* The path of the recording file of that name. */
static void
rec_path(char *buf, size_t len, const char *file)
{
	snprintf(buf, len, "%s/%s", recdir, file);
}

/*
 * tshark's view of a file: how many RTP packets of ssrc, and whether
 * their sequence numbers are seq0, seq0 + 1, ... from src to dst
 * ("address port" each; NULL: any).  0 with *count set (negative when
 * one was out of sequence or of other addresses), -1 when tshark failed.
 */
static int
tshark_seq(const char *path, uint32_t ssrc, uint16_t seq0, const char *src,
    const char *dst, int *count)
{
	char	 cmd[1024], line[256], want[160];
	FILE	*p;
	int	 k = 0, bad = 0;
	unsigned long s;
	unsigned int seq;

	snprintf(cmd, sizeof(cmd), "tshark -n -r '%s' -o rtp.heuristic_rtp:TRUE "
	    "-o udp.check_checksum:TRUE -o ip.check_checksum:TRUE "
	    "-Y '!_ws.expert.severity >= warning' "
	    "-T fields -E separator=' ' -e rtp.ssrc -e rtp.seq -e %s "
	    "-e udp.srcport -e %s -e udp.dstport 2>/dev/null", path,
	    strchr(media, ':') != NULL ? "ipv6.src" : "ip.src",
	    strchr(media, ':') != NULL ? "ipv6.dst" : "ip.dst");
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), p) != NULL) {
		if (sscanf(line, "%lx %u %159[^\n]", &s, &seq, want) != 3 ||
		    s != ssrc)
			continue;
		if (seq != (uint16_t)(seq0 + k))
			bad++;
		snprintf(cmd, sizeof(cmd), "%s %s", src, dst);
		if (src != NULL && strcmp(want, cmd) != 0)
			bad++;
		k++;
	}
	if (pclose(p) != 0)
		return -1;
	*count = bad ? -k : k;
	return 0;
}

/* tshark -z rtp,streams: the line of ssrc, with its packet count. */
static int
tshark_streams(const char *path, uint32_t ssrc, int *packets, int *lost)
{
	char	 cmd[1024], line[512], hex[16];
	FILE	*p;
	int	 found = -1;
	char	*at;

	snprintf(cmd, sizeof(cmd), "tshark -n -r '%s' -o rtp.heuristic_rtp:TRUE "
	    "-q -z rtp,streams 2>/dev/null", path);
	snprintf(hex, sizeof(hex), "0x%08X", ssrc);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), p) != NULL) {
		if ((at = strstr(line, hex)) == NULL)
			continue;
		/* SSRC, payload, then Pkts, Lost (n (x%)) */
		if (sscanf(at + strlen(hex), "%*s %*s %*s %d %d", packets,
		    lost) == 2)
			found = 0;
		else if (sscanf(at + strlen(hex), "%*s %d %d", packets,
		    lost) == 2)
			found = 0;
	}
	pclose(p);
	return found;
}

/*
 * Both directions recorded as forwarded: counts and sequence numbers
 * match what went out, the addresses are those the relay sent from and
 * to, the file is 0640 and the daemon's user's; started and stopped
 * events.
 */
START_TEST(tshark_agrees)
{
	struct rpc_client		*c = client();
	Rtpproxy__SessionInfo		*si;
	Rtpproxy__StreamSessionEventsRequest ereq =
	    RTPPROXY__STREAM_SESSION_EVENTS_REQUEST__INIT;
	Rtpproxy__SessionEvent		*ev;
	struct rpc_stream		*st;
	struct passwd			*pw = getpwnam("nobody");
	struct stat			 sb;
	char				 path[512], file[256], a[64], b[64];
	uint16_t			 pd, pc, lport, fport;
	int				 fd, fc, n, packets, lost, started = 0;
	int				 stopped = 0;

	ck_assert_ptr_nonnull(pw);
	fd = harness_udp(0, &pd);
	fc = harness_udp(0, &pc);
	ereq.session_id = (char *)"rec1";
	ck_assert_ptr_nonnull(st = rpc_stream_open(c, M_EVENTS, &ereq.base,
	    0));
	ck_assert_int_eq(create_rec(c, "rec1", pd, 1, 0, &si, NULL, 0), 0);
	lport = (uint16_t)si->listen->port;
	fport = (uint16_t)si->forward->port;
	harness_info_free(si);
	ck_assert_int_eq(wait_rec(c, "rec1", 1, NULL, 0), 0);

	send_rtp(fc, lport, 1000, 200, 0x1111);
	ck_assert_int_eq(drain(fd, harness_ms(2000)), 200);
	send_rtp(fd, fport, 65500, 100, 0x2222);	/* wraps */
	ck_assert_int_eq(drain(fc, harness_ms(2000)), 100);
	ck_assert_int_eq(wait_rec(c, "rec1", 1, NULL, 300), 0);
	ck_assert_int_eq(set_recording(c, "rec1", 0, NULL, 0), 0);
	ck_assert_int_eq(wait_rec(c, "rec1", 0, NULL, 300), 0);

	ck_assert_int_eq(harness_status(c, "rec1", &si), 0);
	ck_assert_ptr_nonnull(si->recording);
	ck_assert_uint_eq(si->recording->packets, 300);
	ck_assert_uint_eq(si->recording->dropped, 0);
	ck_assert_uint_eq(si->recording->parts, 1);
	ck_assert_str_eq(si->recording->error, "");
	ck_assert_uint_eq(si->forward_stats->packets_sent, 200);
	ck_assert_uint_eq(si->reverse_stats->packets_sent, 100);
	snprintf(file, sizeof(file), "%s", si->recording->file);
	harness_info_free(si);
	ck_assert_msg(strncmp(file, "rec1-", 5) == 0 &&
	    strstr(file, "-1.pcap") != NULL, "%s", file);
	rec_path(path, sizeof(path), file);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 07777, 0640);
	ck_assert_int_eq(sb.st_uid, pw->pw_uid);

	ck_assert_int_eq(tshark_seq(path, 0x1111, 1000, NULL,
	    NULL, &n), 0);
	ck_assert_int_eq(n, 200);
	ck_assert_int_eq(tshark_seq(path, 0x2222, 65500, NULL,
	    NULL, &n), 0);
	ck_assert_int_eq(n, 100);
	/* the ports too: from our forward socket to the destination */
	snprintf(a, sizeof(a), "127.0.0.1 %u", fport);
	snprintf(b, sizeof(b), "127.0.0.1 %u", pd);
	ck_assert_int_eq(tshark_seq(path, 0x1111, 1000, a, b, &n), 0);
	ck_assert_int_eq(n, 200);
	snprintf(a, sizeof(a), "127.0.0.1 %u", lport);
	snprintf(b, sizeof(b), "127.0.0.1 %u", pc);
	ck_assert_int_eq(tshark_seq(path, 0x2222, 65500, a, b, &n), 0);
	ck_assert_int_eq(n, 100);
	ck_assert_int_eq(tshark_streams(path, 0x1111, &packets, &lost), 0);
	ck_assert_int_eq(packets, 200);
	ck_assert_int_eq(lost, 0);
	ck_assert_int_eq(tshark_streams(path, 0x2222, &packets, &lost), 0);
	ck_assert_int_eq(packets, 100);
	ck_assert_int_eq(lost, 0);

	while ((!started || !stopped) && rpc_stream_next(st,
	    &rtpproxy__session_event__descriptor, (ProtobufCMessage **)&ev,
	    harness_ms(5000)) == 0) {
		if (ev->type == RTPPROXY__EVENT_TYPE__EVENT_TYPE_RECORDING) {
			if (strstr(ev->reason, "recording to rec1-") != NULL)
				started = 1;
			if (strstr(ev->reason, "recording stopped") != NULL &&
			    strstr(ev->reason, "300 packets written, 0 "
			    "dropped") != NULL)
				stopped = 1;
		}
		rtpproxy__session_event__free_unpacked(ev, NULL);
	}
	ck_assert(started);
	ck_assert(stopped);
	rpc_stream_cancel(st);
	rpc_stream_free(st);

	/* Started again: a second part. */
	ck_assert_int_eq(set_recording(c, "rec1", 1, NULL, 0), 0);
	ck_assert_int_eq(wait_rec(c, "rec1", 1, NULL, 0), 0);
	send_rtp(fc, lport, 1200, 10, 0x1111);
	ck_assert_int_eq(drain(fd, harness_ms(2000)), 10);
	ck_assert_int_eq(wait_rec(c, "rec1", 1, NULL, 310), 0);
	ck_assert_int_eq(harness_destroy(c, "rec1"), 0);
	snprintf(path + strlen(path) - strlen("1.pcap"), 8, "2.pcap");
	ck_assert_int_eq(harness_wait_log(&d, "2.pcap closed: 10 packets "
	    "written, 0 dropped", 1, harness_ms(5000)), 0);
	ck_assert_int_eq(tshark_seq(path, 0x1111, 1200, NULL,
	    NULL, &n), 0);
	ck_assert_int_eq(n, 10);
	close(fd);
	close(fc);
	rpc_client_free(c);
}
END_TEST

/*
 * IPv6: the headers made up are IPv6 with a UDP checksum (mandatory
 * there), which tshark checks; packets that fail a check would not be
 * counted.
 */
START_TEST(ipv6)
{
	struct rpc_client	*c = client();
	Rtpproxy__SessionInfo	*si;
	char			 path[512], a[96], b[96];
	uint16_t		 pd, pc, lport, fport;
	int			 fd, fc, n;

	media = "::1";
	fd = harness_udp(1, &pd);
	fc = harness_udp(1, &pc);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(create_rec(c, "v6", pd, 1, 0, &si, NULL, 0), 0);
	lport = (uint16_t)si->listen->port;
	fport = (uint16_t)si->forward->port;
	harness_info_free(si);
	ck_assert_int_eq(wait_rec(c, "v6", 1, NULL, 0), 0);
	send_rtp(fc, lport, 7, 40, 0x6666);
	ck_assert_int_eq(drain(fd, harness_ms(2000)), 40);
	send_rtp(fd, fport, 9, 30, 0x6667);
	ck_assert_int_eq(drain(fc, harness_ms(2000)), 30);
	ck_assert_int_eq(wait_rec(c, "v6", 1, NULL, 70), 0);
	ck_assert_int_eq(harness_status(c, "v6", &si), 0);
	rec_path(path, sizeof(path), si->recording->file);
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "v6"), 0);
	ck_assert_int_eq(harness_wait_log(&d, "v6-", 1, harness_ms(5000)), 0);
	ck_assert_int_eq(harness_wait_log(&d, "closed: 70 packets written",
	    1, harness_ms(5000)), 0);
	snprintf(a, sizeof(a), "::1 %u", fport);
	snprintf(b, sizeof(b), "::1 %u", pd);
	ck_assert_int_eq(tshark_seq(path, 0x6666, 7, a, b, &n), 0);
	ck_assert_int_eq(n, 40);
	snprintf(a, sizeof(a), "::1 %u", lport);
	snprintf(b, sizeof(b), "::1 %u", pc);
	ck_assert_int_eq(tshark_seq(path, 0x6667, 9, a, b, &n), 0);
	ck_assert_int_eq(n, 30);
	close(fd);
	close(fc);
	rpc_client_free(c);
}
END_TEST

/*
 * The file cannot be made (no such directory): the session says why,
 * and media flows on.  Without recording-dir, or for TCP, recording is
 * refused.
 */
START_TEST(cannot_create)
{
	struct rpc_client	*c = client();
	Rtpproxy__SessionInfo	*si;
	uint16_t		 pd, pc, lport;
	int			 fd, fc;

	fd = harness_udp(0, &pd);
	fc = harness_udp(0, &pc);
	ck_assert_int_eq(create_rec(c, "bad", pd, 1, 0, &si, NULL, 0), 0);
	lport = (uint16_t)si->listen->port;
	harness_info_free(si);
	ck_assert_int_eq(wait_rec(c, "bad", 0, "cannot create", 0), 0);
	send_rtp(fc, lport, 1, 50, 0x33);
	ck_assert_int_eq(drain(fd, harness_ms(2000)), 50);
	ck_assert_int_eq(harness_status(c, "bad", &si), 0);
	ck_assert_msg(strstr(si->recording->error, "No such file") != NULL,
	    "%s", si->recording->error);
	ck_assert_uint_eq(si->forward_stats->packets_sent, 50);
	harness_info_free(si);
	ck_assert_int_ge(harness_log_count(&d, "recording failed: cannot "
	    "create"), 1);
	ck_assert_int_eq(harness_destroy(c, "bad"), 0);
	close(fd);
	close(fc);
	rpc_client_free(c);
}
END_TEST

START_TEST(refused_without_dir)
{
	struct rpc_client	*c = client();
	char			 det[512], dir[300], line[320];
	uint16_t		 pd;
	int			 fd;

	fd = harness_udp(0, &pd);
	ck_assert_int_eq(create_rec(c, "nodir", pd, 1, 0, NULL, det,
	    sizeof(det)), RP_FAILED_PRECONDITION);
	ck_assert_msg(strstr(det, "recording-dir") != NULL, "%s", det);
	ck_assert_int_eq(create_rec(c, "nodir", pd, 0, 0, NULL, NULL, 0), 0);
	ck_assert_int_eq(set_recording(c, "nodir", 1, det, sizeof(det)),
	    RP_FAILED_PRECONDITION);
	ck_assert_int_eq(create_rec(c, "tcp", pd, 1, 1, NULL, det,
	    sizeof(det)), RP_INVALID_ARGUMENT);
	ck_assert_int_eq(harness_destroy(c, "nodir"), 0);

	/* Given on SIGHUP: recordings begun from then on go there. */
	snprintf(dir, sizeof(dir), "%s/rec", d.dir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(line, sizeof(line), "recording-dir %s", dir);
	ck_assert_int_eq(harness_conf_set(&d, line), 0);
	ck_assert_int_eq(harness_reload(&d), 0);
	ck_assert_int_eq(create_rec(c, "hup", pd, 1, 0, NULL, NULL, 0), 0);
	ck_assert_int_eq(wait_rec(c, "hup", 1, NULL, 0), 0);
	ck_assert_int_eq(harness_destroy(c, "hup"), 0);
	close(fd);
	rpc_client_free(c);
}
END_TEST

/*
 * The directory goes away while recording; then a full disk (a tmpfs
 * of 64 KB): each a clear error on the session, media flows on.
 */
START_TEST(dir_gone_disk_full)
{
	struct rpc_client	*c = client();
	Rtpproxy__SessionInfo	*si;
	struct passwd		*pw = getpwnam("nobody");
	char			 cmd[512];
	uint16_t		 pd, pc, lport;
	int			 fd, fc, n;

	fd = harness_udp(0, &pd);
	fc = harness_udp(0, &pc);
	ck_assert_int_eq(create_rec(c, "gone", pd, 1, 0, &si, NULL, 0), 0);
	lport = (uint16_t)si->listen->port;
	harness_info_free(si);
	ck_assert_int_eq(wait_rec(c, "gone", 1, NULL, 0), 0);
	send_rtp(fc, lport, 1, 20, 0x44);
	ck_assert_int_eq(drain(fd, harness_ms(2000)), 20);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", recdir);
	ck_assert_int_eq(system(cmd), 0);
	send_rtp(fc, lport, 21, 20, 0x44);
	ck_assert_int_eq(drain(fd, harness_ms(2000)), 20);
	ck_assert_int_eq(wait_rec(c, "gone", 0, "removed while recording",
	    0), 0);
	send_rtp(fc, lport, 41, 20, 0x44);
	ck_assert_int_eq(drain(fd, harness_ms(2000)), 20);
	ck_assert_int_eq(harness_destroy(c, "gone"), 0);

	/* A disk that fills up. */
	ck_assert_int_eq(mkdir(recdir, 0755), 0);
	if (mount("tmpfs", recdir, "tmpfs", 0, "size=64k") == -1) {
		fprintf(stderr, "check_record: no tmpfs (%s): the full disk "
		    "is not tested\n", strerror(errno));
		goto out;
	}
	ck_assert_int_eq(chown(recdir, pw->pw_uid, pw->pw_gid), 0);
	ck_assert_int_eq(create_rec(c, "full", pd, 1, 0, &si, NULL, 0), 0);
	lport = (uint16_t)si->listen->port;
	harness_info_free(si);
	ck_assert_int_eq(wait_rec(c, "full", 1, NULL, 0), 0);
	/* 600 packets of 172 octets and their headers: over 64 KB */
	for (n = 0; n < 6; n++) {
		send_rtp(fc, lport, (uint16_t)(1 + 100 * n), 100, 0x55);
		ck_assert_int_eq(drain(fd, harness_ms(2000)), 100);
	}
	ck_assert_int_eq(wait_rec(c, "full", 0, "No space left", 0), 0);
	send_rtp(fc, lport, 601, 20, 0x55);
	ck_assert_int_eq(drain(fd, harness_ms(2000)), 20);
	ck_assert_int_eq(harness_status(c, "full", &si), 0);
	ck_assert_uint_eq(si->forward_stats->packets_sent, 620);
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "full"), 0);
out:
	close(fd);
	close(fc);
	rpc_client_free(c);
}
END_TEST

/*
 * A worker killed with SIGKILL: the new one begins the next part; what
 * the dead one wrote stays a readable file; the relay never stopped
 * recording what it forwarded after the restart.
 */
START_TEST(worker_restart)
{
	struct rpc_client	*c = client();
	Rtpproxy__SessionInfo	*si;
	char			 path[512], file[256];
	struct stat		 sb;
	uint16_t		 pd, pc, lport;
	int			 fd, fc, n;
	pid_t			 wpid;

	fd = harness_udp(0, &pd);
	fc = harness_udp(0, &pc);
	ck_assert_int_eq(create_rec(c, "rs", pd, 1, 0, &si, NULL, 0), 0);
	lport = (uint16_t)si->listen->port;
	harness_info_free(si);
	ck_assert_int_eq(wait_rec(c, "rs", 1, NULL, 0), 0);
	send_rtp(fc, lport, 1, 50, 0x66);
	ck_assert_int_eq(drain(fd, harness_ms(2000)), 50);
	/* on disk: the writer writes what it holds every half a second */
	ck_assert_int_eq(wait_rec(c, "rs", 1, NULL, 50), 0);
	ck_assert_int_eq(harness_status(c, "rs", &si), 0);
	snprintf(file, sizeof(file), "%s", si->recording->file);
	harness_info_free(si);
	rec_path(path, sizeof(path), file);
	for (n = 0; n < 200; n++) {
		if (stat(path, &sb) == 0 && sb.st_size >= 24 + 50 *
		    (16 + 20 + 8 + 172))
			break;
		usleep(50000);
	}
	ck_assert_int_lt(n, 200);

	wpid = harness_worker_pid(&d, 0);
	ck_assert_int_gt(wpid, 0);
	ck_assert_int_eq(kill(wpid, SIGKILL), 0);
	ck_assert_int_eq(harness_wait_log(&d, "worker 0 ready", 2,
	    harness_ms(10000)), 0);
	ck_assert_int_eq(wait_rec(c, "rs", 1, NULL, 0), 0);
	send_rtp(fc, lport, 51, 50, 0x66);
	ck_assert_int_eq(drain(fd, harness_ms(2000)), 50);
	ck_assert_int_eq(harness_status(c, "rs", &si), 0);
	ck_assert_uint_eq(si->recording->parts, 2);
	ck_assert_msg(strstr(si->recording->file, "-2.pcap") != NULL, "%s",
	    si->recording->file);
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "rs"), 0);
	ck_assert_int_eq(harness_wait_log(&d, "-2.pcap closed: 50 packets "
	    "written", 1, harness_ms(5000)), 0);

	rec_path(path, sizeof(path), file);
	ck_assert_int_eq(tshark_seq(path, 0x66, 1, NULL, NULL, &n), 0);
	ck_assert_int_eq(n, 50);
	snprintf(path + strlen(path) - strlen("1.pcap"), 8, "2.pcap");
	ck_assert_int_eq(tshark_seq(path, 0x66, 51, NULL, NULL, &n), 0);
	ck_assert_int_eq(n, 50);
	close(fd);
	close(fc);
	rpc_client_free(c);
}
END_TEST

/*
 * A master replaced by SIGUSR2 changes nothing: the worker is adopted and
 * goes on writing the same file.
 */
START_TEST(master_takeover)
{
	struct rpc_client	*c = client();
	Rtpproxy__SessionInfo	*si;
	char			 path[512];
	uint16_t		 pd, pc, lport;
	int			 fd, fc, n, i;
	pid_t			 old, now = -1;

	fd = harness_udp(0, &pd);
	fc = harness_udp(0, &pc);
	ck_assert_int_eq(create_rec(c, "tk", pd, 1, 0, &si, NULL, 0), 0);
	lport = (uint16_t)si->listen->port;
	harness_info_free(si);
	ck_assert_int_eq(wait_rec(c, "tk", 1, NULL, 0), 0);
	send_rtp(fc, lport, 1, 30, 0x88);
	ck_assert_int_eq(drain(fd, harness_ms(2000)), 30);

	old = harness_pidfile_pid(&d);
	ck_assert_int_gt(old, 0);
	ck_assert_int_eq(kill(old, SIGUSR2), 0);
	for (i = 0; i < 500; i++) {
		now = harness_pidfile_pid(&d);
		if (now > 0 && now != old && harness_log_count(&d,
		    "all 1 workers ready") >= 2)
			break;
		usleep(20000);
	}
	ck_assert_int_ne(now, old);
	rpc_client_free(c);
	c = client();
	send_rtp(fc, lport, 31, 30, 0x88);
	ck_assert_int_eq(drain(fd, harness_ms(2000)), 30);
	ck_assert_int_eq(wait_rec(c, "tk", 1, NULL, 60), 0);
	ck_assert_int_eq(harness_status(c, "tk", &si), 0);
	ck_assert_uint_eq(si->recording->parts, 1);
	ck_assert_uint_eq(si->recording->packets, 60);
	rec_path(path, sizeof(path), si->recording->file);
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "tk"), 0);
	ck_assert_int_eq(harness_wait_log(&d, "-1.pcap closed: 60 packets "
	    "written, 0 dropped", 1, harness_ms(5000)), 0);
	ck_assert_int_eq(tshark_seq(path, 0x88, 1, NULL, NULL, &n), 0);
	ck_assert_int_eq(n, 60);
	close(fd);
	close(fc);
	rpc_client_free(c);
}
END_TEST

/*
 * The writer falls behind: copies that find no room are dropped and
 * counted, never waited for; the media is all relayed; what was written
 * is in the file, and the counts agree with tshark and the log.
 */
START_TEST(writer_behind)
{
	struct rpc_client	*c = client();
	Rtpproxy__SessionInfo	*si;
	char			 path[512], want[128];
	uint16_t		 pd, pc, lport;
	uint64_t		 written = 0, dropped = 0;
	int			 fd, fc, n, i;

	fd = harness_udp(0, &pd);
	fc = harness_udp(0, &pc);
	ck_assert_int_eq(create_rec(c, "slow", pd, 1, 0, &si, NULL, 0), 0);
	lport = (uint16_t)si->listen->port;
	harness_info_free(si);
	ck_assert_int_eq(wait_rec(c, "slow", 1, NULL, 0), 0);
	for (n = 0; n < 6; n++) {
		send_rtp(fc, lport, (uint16_t)(1 + 100 * n), 100, 0x77);
		ck_assert_int_eq(drain(fd, harness_ms(2000)), 100);
	}
	for (i = 0; i < 100; i++) {
		ck_assert_int_eq(harness_status(c, "slow", &si), 0);
		written = si->recording->packets;
		dropped = si->recording->dropped;
		ck_assert_uint_eq(si->forward_stats->packets_sent, 600);
		harness_info_free(si);
		if (written + dropped == 600)
			break;
		usleep(100000 * (unsigned)harness_slow());
	}
	ck_assert_uint_eq(written + dropped, 600);
	ck_assert_uint_gt(dropped, 0);
	ck_assert_uint_gt(written, 0);
	/* The metrics say what the session says, */
	ck_assert_int_eq(harness_metric(mport,
	    "rtpproxyd_recordings{state=\"active\"}"), 1);
	ck_assert_int_eq(harness_metric(mport,
	    "rtpproxyd_recorded_packets_total"), (long long)written);
	ck_assert_int_eq(harness_metric(mport,
	    "rtpproxyd_recording_dropped_packets_total"), (long long)dropped);
	ck_assert_int_eq(harness_status(c, "slow", &si), 0);
	rec_path(path, sizeof(path), si->recording->file);
	harness_info_free(si);
	ck_assert_int_eq(harness_destroy(c, "slow"), 0);
	snprintf(want, sizeof(want), "closed: %llu packets written, %llu "
	    "dropped", (unsigned long long)written,
	    (unsigned long long)dropped);
	ck_assert_int_eq(harness_wait_log(&d, want, 1, harness_ms(10000)), 0);
	/* and keep it once the session is gone. */
	for (i = 0; i < 100 && harness_metric(mport,
	    "rtpproxyd_recordings{state=\"active\"}") != 0; i++)
		harness_sleep_ms(harness_ms(50));
	ck_assert_int_eq(harness_metric(mport,
	    "rtpproxyd_recordings{state=\"active\"}"), 0);
	ck_assert_int_eq(harness_metric(mport,
	    "rtpproxyd_recorded_packets_total"), (long long)written);
	ck_assert_int_eq(harness_metric(mport,
	    "rtpproxyd_recording_dropped_packets_total"), (long long)dropped);
	ck_assert_int_eq(tshark_seq(path, 0x77, 1, NULL, NULL, &n), 0);
	/* what was written is a run with gaps: count only */
	ck_assert_int_eq(n < 0 ? -n : n, (int)written);
	close(fd);
	close(fc);
	rpc_client_free(c);
}
END_TEST

int
main(void)
{
	const TTest *const t_tshark[] = { tshark_agrees, NULL };
	const TTest *const t_create[] = { cannot_create, NULL };
	const TTest *const t_nodir[] = { refused_without_dir, NULL };
	const TTest *const t_gone[] = { dir_gone_disk_full, NULL };
	const TTest *const t_restart[] = { worker_restart, NULL };
	const TTest *const t_behind[] = { writer_behind, NULL };
	const TTest *const t_usr2[] = { master_takeover, NULL };
	const TTest *const t_v6[] = { ipv6, NULL };
	Suite	*s = suite_create("record");

	if (system("tshark -v >/dev/null 2>&1") != 0) {
		fprintf(stderr, "check_record: tshark is needed (apt-get "
		    "install tshark)\n");
		return 1;
	}
	harness_tcase(s, "tshark", up, down, 90, t_tshark);
	harness_tcase(s, "cannot-create", up_missing, down, 60, t_create);
	harness_tcase(s, "no-dir", up_norec, down, 60, t_nodir);
	harness_tcase(s, "gone-full", up, down, 90, t_gone);
	harness_tcase(s, "restart", up, down, 90, t_restart);
	harness_tcase(s, "behind", up_stall, down, 90, t_behind);
	harness_tcase(s, "usr2", up, down, 90, t_usr2);
	harness_tcase(s, "ipv6", up, down, 60, t_v6);
	return harness_run_suite(s);
}
