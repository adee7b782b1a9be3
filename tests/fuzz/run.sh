#!/bin/sh
# make check-fuzz: run each libFuzzer target for a bounded time, print what
# it did, fail if any crashed, leaked, hung or ran out of memory.
#
#   run.sh SECONDS SEEDS DIR TARGET...
#
# SEEDS/TARGET holds the committed seeds, which are only read.  The inputs
# a run finds go to DIR/found/TARGET (the first corpus directory, the only
# one libFuzzer writes), crashes to DIR/artifacts/TARGET, the output to
# DIR/logs/TARGET.log.  FUZZ_TIMEOUT (s, default 10) is the longest one
# input may take; FUZZ_FLAGS are passed on to every target.
set -u

if [ $# -lt 4 ]; then
	echo "usage: run.sh SECONDS SEEDS DIR TARGET..." >&2
	exit 64
fi
secs=$1
seeds=$2
dir=$3
shift 3

failed=
rows=
for t in "$@"; do
	found=$dir/found/$t
	art=$dir/artifacts/$t
	log=$dir/logs/$t.log
	mkdir -p "$found" "$art" "$dir/logs" || exit 1
	echo "check-fuzz: fuzz_$t for $secs s over $seeds/$t" \
	    "(new inputs: $found)"
	# shellcheck disable=SC2086 # FUZZ_FLAGS are words on purpose
	"$dir/fuzz_$t" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" \
	    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" \
	    ${FUZZ_FLAGS-} "$found" "$seeds/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	last=$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$log" | tail -n 1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
	if [ "$rc" -eq 0 ]; then
		result=ok
	else
		result="FAILED (exit $rc)"
		failed="$failed $t"
		echo "check-fuzz: fuzz_$t FAILED; from $log:"
		grep -E 'ERROR:|SUMMARY:|invariant failed|runtime error|ALARM|out-of-memory|Test unit written|artifact_prefix|^Base64' \
		    "$log" | head -n 20
		echo "check-fuzz: reproduce with: $dir/fuzz_$t $art/<file>"
	fi
	echo "check-fuzz: fuzz_$t: ${execs:-?} execs, ${rate:-?} exec/s," \
	    "cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}: $result"
	rows="$rows$(printf '%-12s %10s %8s %6s %6s %6s  %s' "$t" \
	    "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
	    "$result")
"
done

echo
printf '%-12s %10s %8s %6s %6s %6s  %s\n' target execs exec/s cov ft corpus \
    result
printf '%s' "$rows"
if [ -n "$failed" ]; then
	echo "check-fuzz: FAILED:$failed"
	exit 1
fi
echo "check-fuzz: every target ran $secs s without a crash, leak or hang"
