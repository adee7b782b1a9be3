#!/bin/sh
# Build the libFuzzer targets (make fuzz) and run each over its committed
# seeds only, once each: a fuzz build that broke, or a seed that crashes,
# fails here.  No clang is a failure, not a skip: contrib/install-deps.sh
# installs it.

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
MAKE=${MAKE:-make}
FUZZ_NAMES=${FUZZ_NAMES:-rtp ipc config acl request reflection tcp h2 redisrec rtcp}
# Not the jobserver or the variables of the make that runs the tests.
unset MAKEFLAGS MFLAGS

pass=0
fail=0

if [ -z "${FUZZ_CC-}" ]; then
	echo "FAIL: configure found no clang with libFuzzer: apt-get install" \
	    "clang libclang-rt-14-dev (contrib/install-deps.sh does), then" \
	    "run ./configure again"
	echo "0 passed, 1 failed"
	exit 1
fi

jobs=$(nproc 2>/dev/null || echo 1)
if "$MAKE" -C "$top_builddir" -j"$jobs" fuzz; then
	echo "PASS: make fuzz"
	pass=$((pass + 1))
else
	echo "FAIL: make fuzz"
	echo "$pass passed, 1 failed"
	exit 1
fi

for t in $FUZZ_NAMES; do
	bin=$top_builddir/tests/fuzz/fuzz_$t
	seeds=$top_srcdir/tests/fuzz/corpus/$t
	n=$(find "$seeds" -type f 2>/dev/null | wc -l)
	if [ "$n" -lt 3 ]; then
		echo "FAIL: fuzz_$t: only $n seeds in $seeds"
		fail=$((fail + 1))
		continue
	fi
	# Each file once, no mutation; seeds are never written to.
	out=$top_builddir/tests/fuzz-seeds-$t.out
	if find "$seeds" -type f -exec "$bin" {} + >"$out" 2>&1; then
		echo "PASS: fuzz_$t: $n seeds"
		pass=$((pass + 1))
		rm -f "$out"
	else
		echo "FAIL: fuzz_$t: a seed failed (all of it in $out):"
		grep -E 'Running:|ERROR:|SUMMARY:|invariant failed|runtime error' \
		    "$out" | tail -n 20
		fail=$((fail + 1))
	fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
