#!/bin/sh
# The benchmark's own modes, briefly, against the real binaries: rtpbench -C
# (rtpproxyd against the reference relay), -F (a flood through both) and -P
# (create + destroy with calls in flight).  The figures are not judged, only
# that they are there and sane, so that a busy machine cannot fail it:
# numbers where numbers belong, delivered rates above zero, loss a
# percentage (shown, not judged) but not 100 % (a relay that relays nothing
# fails), the ratios printed, no error.  Last, the reference relay made into a black hole
# (REFRELAY_BLACKHOLE) must fail these checks.  Everything rtpbench starts
# must be gone when it exits: rtpbench's scratch directories live in a
# TMPDIR of our own, so that what is left can be found (and is killed here,
# and counts as a failure).
#
# Exit 0 if every check passed, 1 otherwise.

# Functions called through trap look unreachable to shellcheck.
# shellcheck disable=SC2317

top_builddir=${top_builddir:-.}
RTPPROXYD=${RTPPROXYD:-$top_builddir/src/rtpproxyd}
RTPBENCH=${RTPBENCH:-$top_builddir/tests/bench/rtpbench}
REFRELAY=${REFRELAY:-$top_builddir/tests/bench/refrelay}
URINGRELAY=${URINGRELAY:-$top_builddir/tests/bench/uringrelay}

pass=0
fail=0
bpid=

ok() {
	echo "PASS: $*"
	pass=$((pass + 1))
}

nok() {
	echo "FAIL: $*"
	fail=$((fail + 1))
}

finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}

show() {
	[ -s "$1" ] && sed 's/^/	/' "$1"
	return 0
}

for b in "$RTPPROXYD" "$RTPBENCH" "$REFRELAY" "$URINGRELAY"; do
	if ! [ -x "$b" ]; then
		nok "$b: not built (for uringrelay: apt-get install" \
		    "liburing-dev, then configure again)"
		finish
	fi
done
for t in timeout awk; do
	if ! command -v "$t" >/dev/null 2>&1; then
		nok "$t not found"
		finish
	fi
done
ref_exe=$(cd "$(dirname "$REFRELAY")" && pwd)/$(basename "$REFRELAY")
uring_exe=$(cd "$(dirname "$URINGRELAY")" && pwd)/$(basename "$URINGRELAY")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rtpproxyd-bench-smoke.XXXXXX") || {
	nok "mktemp"
	finish
}

# The pids of the rtpbench runs of this script, as "|rtpbench-PID-": the
# daemons it starts name their session tables /rtpbench-PID-N.  Other
# people's runs on the same machine have their own.
ours=

# Processes rtpbench left: a daemon reading a configuration in $tmp, a
# worker of one of our tables, or one of our reference relays.  Their
# pids, one a line.  A process may exit between the glob and the read:
# the shell's own complaint about the redirection goes where the command's
# stderr goes only if it is inside.
leftovers() {
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[ "$p" = "$$" ] && continue
		if { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null |
		    grep -Eq "$tmp/$ours" ||
		    [ "$(readlink "$d/exe" 2>/dev/null)" = "$ref_exe" ] ||
		    [ "$(readlink "$d/exe" 2>/dev/null)" = "$uring_exe" ]; then
			echo "$p"
		fi
	done
}

cleanup() {
	if [ -n "$bpid" ]; then
		kill -TERM "$bpid" 2>/dev/null
		wait "$bpid" 2>/dev/null
	fi
	for p in $(leftovers); do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# The session tables in shared memory of the rtpbench of pid $1.
tables() {
	for f in /dev/shm/rtpbench-"$1"-*; do
		[ -e "$f" ] && echo "${f#/dev/shm/}"
	done
}

# run_bench NAME ARGS...: run rtpbench (at most 60 s) into $tmp/NAME.out
# and .err, its exit code in brc; returns it, or 1 if it left anything
# behind (a failure).  timeout(1) runs it as a child: sh tells its pid.
run_bench() {
	name=$1
	shift
	# shellcheck disable=SC2016 # $0 and $@ are sh -c's
	TMPDIR=$tmp timeout -s TERM 60 sh -c 'echo $$ >"$0"; exec "$@"' \
	    "$tmp/$name.pid" "$RTPBENCH" "$@" >"$tmp/$name.out" \
	    2>"$tmp/$name.err" &
	bpid=$!
	wait "$bpid"
	brc=$?
	rc=$brc
	bpid=
	rpid=$(cat "$tmp/$name.pid" 2>/dev/null)
	if [ -n "$rpid" ]; then
		ours="$ours|rtpbench-$rpid-"
		tables "$rpid" >"$tmp/shm.left"
		if [ -s "$tmp/shm.left" ]; then
			nok "$name: rtpbench left shared memory:" \
			    "$(cat "$tmp/shm.left")"
			while read -r f; do
				rm -f "/dev/shm/$f"
			done <"$tmp/shm.left"
			rc=1
		fi
	fi
	left=$(leftovers)
	if [ -n "$left" ]; then
		nok "$name: rtpbench left processes running: $left"
		for p in $left; do
			kill -KILL "$p" 2>/dev/null
		done
		rc=1
	fi
	if ls -d "$tmp"/rtpbench.* >/dev/null 2>&1; then
		nok "$name: rtpbench left its scratch directory"
		rc=1
	fi
	return "$rc"
}

# bench NAME ARGS...: run_bench; 0 if rtpbench exited 0 and left nothing.
bench() {
	run_bench "$@"
	rc=$?
	if [ "$brc" -ne 0 ]; then
		nok "$name: rtpbench $* exited $brc"
		show "$tmp/$name.err"
		show "$tmp/$name.out"
	fi
	return "$rc"
}

# isnum VALUE LO HI: is VALUE a plain decimal number with LO <= it <= HI?
isnum() {
	awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN {
		exit !(v ~ /^[0-9]+(\.[0-9]+)?$/ && v + 0 >= lo && v + 0 <= hi) }'
}

# positive NAME VALUE: PASS if VALUE is a number above zero (and not
# absurdly large: 1e9 of anything is a broken figure).
positive() {
	if isnum "$2" 0 1e9 && ! isnum "$2" 0 0; then
		ok "$1 ($2)"
	else
		nok "$1: \"$2\""
		return 1
	fi
}

# figure NAME VALUE: PASS if VALUE is a number, 0 or more (and not absurdly
# large), shown but not judged: the CPU time of a relay that got little of
# a busy machine may be under the clock's tick, 0.
figure() {
	if isnum "$2" 0 1e9; then
		ok "$1 ($2, not judged)"
	else
		nok "$1: \"$2\""
		return 1
	fi
}

# relays NAME LOSS: the loss is shown, not judged (it depends on the
# machine's load), but it must be a percentage, and below 100: a relay
# that relays nothing fails.
relays() {
	if ! isnum "$2" 0 100; then
		nok "$1: loss \"$2\" is not a percentage"
		return 1
	elif isnum "$2" 100 100; then
		nok "$1: relayed nothing (loss $2 %)"
		return 1
	fi
	ok "$1: relays (loss $2 %, not judged)"
}

# fixed FILE COLUMN NAME: the fixed-rate figures of -C in the reference
# relay's column (1) or rtpproxyd's (2): CPU per packet, a loss below 100 %.
fixed() {
	f_rc=0
	figure "$3: CPU per packet" \
	    "$(field "$1" '^  CPU per packet' $((2 + 2 * $2)))" || f_rc=1
	relays "$3: fixed rate" "$(field "$1" '^  loss' $((2 * $2)))" ||
	    f_rc=1
	return "$f_rc"
}

# field FILE PATTERN N: the Nth field of the first line matching PATTERN.
field() {
	awk -v n="$3" "/$2/ { print \$n; exit }" "$1"
}

# bench_fixed NAME ARGS...: bench, for -C; a relay that lost everything at
# the fixed rate may have had no CPU for that long on a busy machine, so
# such a run is made once more, and the second one judged ($out).  One
# that relays nothing loses everything again.
bench_fixed() {
	bf_name=$1
	shift
	bench "$bf_name" "$@" || return 1
	out=$tmp/$bf_name.out
	if isnum "$(field "$out" '^  loss' 2)" 100 100 ||
	    isnum "$(field "$out" '^  loss' 4)" 100 100; then
		echo "NOTE: $bf_name: a relay lost every packet at the fixed" \
		    "rate (it may have had no CPU): once more"
		show "$out"
		bench "$bf_name-again" "$@" || return 1
		out=$tmp/$bf_name-again.out
	fi
	return 0
}

# --- rtpbench -C: a short search and a short fixed rate, 20 sessions -------
if bench_fixed compare -C -X "$RTPPROXYD" -Y "$REFRELAY" -N 20 -t 0.25 \
    -d 0.5 -T 1; then
	# 0: no step passed (on a busy machine, say); the fixed rate tells.
	for c in 7 8; do
		[ $c = 7 ] && who=reference || who=rtpproxyd
		v=$(field "$out" '^max pkt\/s' $c)
		if isnum "$v" 0 1e9; then
			ok "compare: $who max pkt/s printed ($v, not judged)"
		else
			nok "compare: $who max pkt/s: \"$v\""
		fi
	done
	fixed "$out" 1 "compare: reference"
	fixed "$out" 2 "compare: rtpproxyd"
	ratio=$(sed -n 's/^ratios (rtpproxyd\/reference) at 20 sessions: .*CPU per packet \([0-9.]*\)x, p50 \([-+][0-9]*\) us.*/\1 \2/p' "$out")
	if [ -n "$ratio" ]; then
		figure "compare: CPU per packet ratio printed" "${ratio% *}"
	else
		nok "compare: no ratios line"
		show "$out"
	fi
	if grep -q '^targets: ' "$out"; then
		ok "compare: targets line"
	else
		nok "compare: no targets line"
	fi
fi

# --- the io_uring reference relays too: a fixed rate, 20 sessions ---------
# Without a search, so the rate is known; what is lost depends on the load.
if bench_fixed uring -C -X "$RTPPROXYD" -Y "$URINGRELAY" -N 20 -R 20000 \
    -d 1 -T 1; then
	fixed "$out" 1 "uring: uringrelay" || show "$out"
	fixed "$out" 2 "uring: rtpproxyd" || show "$out"
fi

# --- rtpbench -F: a second of flood through each, 200 streams -------------
if bench flood -F -X "$RTPPROXYD" -Y "$REFRELAY" -n 200 -d 1; then
	out=$tmp/flood.out
	n=$(grep -c '^delivered ' "$out")
	if [ "$n" -eq 2 ]; then
		ok "flood: a result for each relay"
	else
		nok "flood: $n results, not 2"
		show "$out"
	fi
	for r in $(awk '/^delivered / { print $2 }' "$out"); do
		positive "flood: delivered pkt/s" "$r"
	done
	for r in $(sed -n 's/^delivered .*(\([0-9.]*\) % of offered).*/\1/p' \
	    "$out"); do
		if isnum "$r" 0 101; then
			ok "flood: $r % of offered delivered (not judged)"
		else
			nok "flood: delivered \"$r\" % of offered"
		fi
	done
	none=$(awk '/^per stream / { for (i = 1; i < NF; i++)
	    if ($(i + 1) == "of") print $i }' "$out" | sort -n | tail -1)
	if [ "$none" = 0 ]; then
		ok "flood: every stream got packets through"
	else
		nok "flood: $none stream(s) got nothing"
		show "$out"
	fi
	figure "flood: ratio printed" \
	    "$(sed -n 's/^flood ratio.*delivered \([0-9.]*\)x$/\1/p' "$out")"
fi

# --- rtpbench -P: a second of create + destroy, 8 in flight ---------------
if bench ctl -P -X "$RTPPROXYD" -d 1; then
	out=$tmp/ctl.out
	positive "control plane: pairs per second" "$(field "$out" '^pairs ' 2)"
	positive "control plane: CreateSession p50 ms" \
	    "$(field "$out" '^CreateSession ' 3)"
	if grep -q '^errors  *none$' "$out"; then
		ok "control plane: no errors"
	else
		nok "control plane: errors"
		show "$out"
	fi
fi

# --- a relay that relays nothing must fail the checks above -----------------
# Not at all: rtpbench finds it before it measures.
export REFRELAY_BLACKHOLE=0
if run_bench blackhole -C -X "$RTPPROXYD" -Y "$REFRELAY" -N 4 -R 1000 -d 1 \
    -T 1; then
	nok "a black hole relay: rtpbench did not fail"
	show "$tmp/blackhole.out"
elif grep -q 'relay nothing' "$tmp/blackhole.err"; then
	ok "a black hole relay: rtpbench fails"
else
	nok "a black hole relay: rtpbench failed for another reason"
	show "$tmp/blackhole.err"
fi
# Only each socket's first datagram (rtpbench's check that every stream
# relays): the fixed-rate figures must fail, the second time too.
REFRELAY_BLACKHOLE=1
if bench_fixed blackhole-late -C -X "$RTPPROXYD" -Y "$REFRELAY" -N 4 \
    -R 1000 -d 1 -T 1 >"$tmp/judged"; then
	if [ "$out" = "$tmp/blackhole-late.out" ]; then
		nok "a relay that stops relaying: not measured again"
	elif (fixed "$out" 1 "black hole") >"$tmp/judged" 2>&1; then
		nok "a relay that stops relaying passes the checks"
		show "$tmp/judged"
	else
		ok "a relay that stops relaying fails the checks:" \
		    "$(sed -n 's/^FAIL: //p' "$tmp/judged" | tr '\n' ';')"
	fi
else
	show "$tmp/judged"
fi
unset REFRELAY_BLACKHOLE

finish
