#include <sys/mman.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "shm.h"

static char name[64];

static void
setup(void)
{
	snprintf(name, sizeof(name), "/rtpproxyd-check-shm-%ld",
	    (long)getpid());
}

static void
teardown(void)
{
	shm_unlink(name);
}

START_TEST(test_create_layout)
{
	struct shm_table t;

	ck_assert_int_eq(shm_create(&t, name, 100), 0);
	ck_assert_uint_eq(t.hdr->magic, SHM_MAGIC);
	ck_assert_uint_eq(t.hdr->version, SHM_VERSION);
	ck_assert_uint_eq(t.hdr->nslots, 100);
	ck_assert_uint_eq(t.hdr->slot_size, sizeof(struct shm_slot));
	ck_assert_uint_eq(t.hdr->total_size, shm_table_size(100));
	ck_assert_int_eq(t.hdr->master_pid, getpid());
	ck_assert_uint_eq((uintptr_t)t.slots % 64, 0);
	ck_assert_uint_eq(atomic_load(&t.slots[99].state), SHM_FREE);
	ck_assert_ptr_null(shm_slot(&t, 100));
	ck_assert_ptr_nonnull(shm_slot(&t, 99));
	shm_detach(&t);
	ck_assert_int_eq(shm_create(&t, name, 0), -1);
}
END_TEST

/* Counters written in one process are seen in another. */
START_TEST(test_cross_process)
{
	struct shm_table	t;
	struct shm_slot		*s;
	pid_t			pid;
	int			status, i;

	ck_assert_int_eq(shm_create(&t, name, 8), 0);
	s = shm_slot(&t, 3);
	snprintf(s->id, sizeof(s->id), "call-1");
	atomic_store(&s->state, SHM_CONNECTING);

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		struct shm_table c;

		if (shm_attach(&c, name) == -1)
			_exit(2);
		s = shm_slot(&c, 3);
		if (strcmp(s->id, "call-1") != 0 ||
		    atomic_load(&s->state) != SHM_CONNECTING)
			_exit(3);
		for (i = 0; i < 100000; i++)
			atomic_fetch_add_explicit(
			    &s->dir[SHM_DIR_FWD].packets_received, 1,
			    memory_order_relaxed);
		atomic_store(&s->dir[SHM_DIR_REV].packets_lost, -2);
		shm_detach(&c);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(atomic_load(&s->dir[SHM_DIR_FWD].packets_received),
	    100000);
	ck_assert_int_eq(atomic_load(&s->dir[SHM_DIR_REV].packets_lost), -2);
	shm_detach(&t);
}
END_TEST

static void
corrupt(size_t off, uint32_t val)
{
	int fd = shm_open(name, O_RDWR, 0);

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(pwrite(fd, &val, sizeof(val), (off_t)off),
	    sizeof(val));
	close(fd);
}

START_TEST(test_refuse_bad_header)
{
	struct shm_table t;

	ck_assert_int_eq(shm_create(&t, name, 4), 0);
	shm_detach(&t);
	ck_assert_int_eq(shm_attach(&t, name), 0);
	shm_detach(&t);

	corrupt(offsetof(struct shm_header, magic), 0xdeadbeef);
	errno = 0;
	ck_assert_int_eq(shm_attach(&t, name), -1);
	ck_assert_int_eq(errno, EPROTO);

	corrupt(offsetof(struct shm_header, magic), SHM_MAGIC);
	corrupt(offsetof(struct shm_header, version), SHM_VERSION + 1);
	ck_assert_int_eq(shm_attach(&t, name), -1);
	ck_assert_int_eq(errno, EPROTO);

	corrupt(offsetof(struct shm_header, version), SHM_VERSION);
	corrupt(offsetof(struct shm_header, slot_size), 7);
	ck_assert_int_eq(shm_attach(&t, name), -1);

	corrupt(offsetof(struct shm_header, slot_size),
	    sizeof(struct shm_slot));
	/* More slots than the object holds: never map past the end. */
	corrupt(offsetof(struct shm_header, nslots), 1000);
	ck_assert_int_eq(shm_attach(&t, name), -1);

	corrupt(offsetof(struct shm_header, nslots), 4);
	ck_assert_int_eq(shm_attach(&t, name), 0);
	shm_detach(&t);
}
END_TEST

START_TEST(test_truncated_object)
{
	struct shm_table	t;
	int			fd;

	fd = shm_open(name, O_RDWR | O_CREAT, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(ftruncate(fd, 16), 0);
	close(fd);
	ck_assert_int_eq(shm_attach(&t, name), -1);
	ck_assert_int_eq(errno, EPROTO);
	shm_unlink(name);
	ck_assert_int_eq(shm_attach(&t, name), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_slot_reset_bumps_gen)
{
	struct shm_table	 t;
	struct shm_slot		*s;
	uint32_t		 g;

	ck_assert_int_eq(shm_create(&t, name, 2), 0);
	s = shm_slot(&t, 1);
	g = atomic_load(&s->gen);
	snprintf(s->id, sizeof(s->id), "x");
	atomic_store(&s->dir[0].bytes_sent, 5);
	atomic_store(&s->state, SHM_ACTIVE);
	shm_slot_reset(s);
	ck_assert_uint_eq(atomic_load(&s->gen), g + 1);
	ck_assert_uint_eq(atomic_load(&s->state), SHM_FREE);
	ck_assert_str_eq(s->id, "");
	ck_assert_uint_eq(atomic_load(&s->dir[0].bytes_sent), 0);
	shm_detach(&t);
}
END_TEST

START_TEST(test_addr_roundtrip)
{
	struct sockaddr_in6	 sin6;
	struct sockaddr_storage	 ss;
	struct shm_addr		 a;
	char			 buf[64];

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(5004);
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	ck_assert_int_eq(shm_addr_from_sa(&a, (struct sockaddr *)&sin6), 0);
	ck_assert_uint_eq(a.port, 5004);
	ck_assert_str_eq(shm_addr_ntop(&a, buf, sizeof(buf)), "2001:db8::1");
	ck_assert_uint_eq(shm_addr_to_sa(&a, &ss), sizeof(sin6));
	ck_assert(shm_addr_eq_sa(&a, (struct sockaddr *)&ss));
	ck_assert_int_eq(memcmp(&ss, &sin6, sizeof(sin6)), 0);
	memset(&a, 0, sizeof(a));
	ck_assert_uint_eq(shm_addr_to_sa(&a, &ss), 0);
}
END_TEST

/*
 * The counters of SHM_DIR_COUNTERS: the totals sum each of them, the drops
 * are the sum of the reasons, and the table of counters has them all.
 */
START_TEST(test_totals_every_counter)
{
	struct shm_dir		d;
	struct shm_totals	t;
	uint64_t		drops = 0;
	int			c;

	memset(&d, 0, sizeof(d));
	memset(&t, 0, sizeof(t));
#define SET_(f, kind, proto, metric, label, help)			\
	atomic_store(&d.f, 1000 + SHM_C_##f);
	SHM_DIR_COUNTERS(SET_)
#undef SET_
	atomic_store(&d.packets_lost, -3);
	atomic_store(&d.latency_sum_ns, 5000);
	atomic_store(&d.latency_count, 7);
	shm_totals_add(&t, &d);
	shm_totals_add(&t, &d);
	for (c = 0; c < SHM_C_N; c++) {
		ck_assert_msg(shm_totals_get(&t, c) == 2 * (1000 + (uint64_t)c),
		    "%s: %llu", shm_counters[c].field,
		    (unsigned long long)shm_totals_get(&t, c));
		ck_assert_ptr_nonnull(shm_counters[c].metric);
		ck_assert_ptr_nonnull(shm_counters[c].label);
		ck_assert_ptr_nonnull(shm_counters[c].help);
		if (shm_counters[c].kind == SHM_CK_DROP)
			drops += 2 * (1000 + (uint64_t)c);
	}
	ck_assert_uint_eq(shm_totals_dropped(&t), drops);
	ck_assert_int_eq(t.packets_lost, -6);
	ck_assert_uint_eq(t.latency_sum_ns, 10000);
	ck_assert_uint_eq(t.latency_count, 14);
}
END_TEST

/*
 * The totals live in the table, which a master that takes over reads as
 * its predecessor wrote it: the counters keep their places (a new one is
 * added at the end of the list).
 */
START_TEST(test_totals_layout)
{
	static const char *const v3[] = { "packets_received",
	    "bytes_received", "packets_sent", "bytes_sent", "dropped_invalid",
	    "dropped_not_latched", "dropped_send_error",
	    "dropped_rate_limited", "dropped_overflow", "dropped_source",
	    "non_rtp", "rtcp_received", "rtcp_sent", "packets_expected" };
	size_t i;

	ck_assert_uint_ge(SHM_C_N, sizeof(v3) / sizeof(v3[0]));
	for (i = 0; i < sizeof(v3) / sizeof(v3[0]); i++) {
		ck_assert_str_eq(shm_counters[i].field, v3[i]);
		ck_assert_uint_eq(shm_counters[i].off, i * sizeof(uint64_t));
	}
	ck_assert_uint_eq(offsetof(struct shm_totals, packets_lost),
	    SHM_C_N * sizeof(uint64_t));
}
END_TEST

/* Every value of the table's enumerations has its own word. */
START_TEST(test_names)
{
	const char	*a, *b;
	int		 i, k;

	for (i = SHM_FREE; i <= SHM_CLOSED; i++) {
		a = shm_state_name((uint32_t)i);
		ck_assert_str_ne(a, "?");
		for (k = SHM_FREE; k < i; k++)
			ck_assert_str_ne(a, shm_state_name((uint32_t)k));
	}
	ck_assert_str_eq(shm_state_name(SHM_ACTIVE), "active");
	ck_assert_str_eq(shm_state_name(SHM_CLOSED + 1), "?");
	for (i = 0; i < SHM_CLOSE_N; i++) {
		a = shm_close_name((enum shm_close)i);
		ck_assert_ptr_nonnull(a);
		for (k = 0; k < i; k++) {
			b = shm_close_name((enum shm_close)k);
			ck_assert_str_ne(a, b);
		}
	}
	ck_assert_str_eq(shm_close_name(SHM_CLOSE_IDLE), "idle timeout");
	ck_assert_str_eq(shm_close_name(SHM_CLOSE_N), "other");
	for (i = SHM_LATCH_LEARN; i < SHM_LATCH_N; i++)
		ck_assert_int_eq(shm_latch_from_name(shm_latch_name(i)), i);
	ck_assert_str_eq(shm_latch_name(SHM_LATCH_NEVER), "never");
	ck_assert_str_eq(shm_latch_name(0), "?");
	ck_assert_str_eq(shm_latch_name(SHM_LATCH_N), "?");
	ck_assert_int_eq(shm_latch_from_name("?"), -1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("shm");
	TCase	*tc = tcase_create("table");
	SRunner	*sr;
	int	 failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_create_layout);
	tcase_add_test(tc, test_cross_process);
	tcase_add_test(tc, test_refuse_bad_header);
	tcase_add_test(tc, test_truncated_object);
	tcase_add_test(tc, test_slot_reset_bumps_gen);
	tcase_add_test(tc, test_addr_roundtrip);
	tcase_add_test(tc, test_totals_every_counter);
	tcase_add_test(tc, test_totals_layout);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
