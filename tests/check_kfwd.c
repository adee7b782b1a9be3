/*
 * The kernel fast path (src/kfwd): the BPF program that the daemon
 * carries is accepted by this kernel's verifier.
 */
#include <sys/types.h>

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "kfwd.h"

static char	vlog[1 << 16];

/* Loaded (the verifier walks every path) and unloaded again. */
START_TEST(test_verifier)
{
	int r = kfwd_verify(vlog, sizeof(vlog));

	if (r != 0)
		fprintf(stderr, "kfwd_verify: %s\n%s\n", strerror(errno), vlog);
	ck_assert_int_eq(r, 0);
}
END_TEST

static Suite *
kfwd_suite(void)
{
	Suite	*s = suite_create("kfwd");
	TCase	*tc = tcase_create("load");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_verifier);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(kfwd_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
