#!/bin/sh
# The benchmark's own modes, briefly, against the real binaries: rtpbench -C
# (rtpproxyd against the reference relay), -F (a flood through both) and -P
# (create + destroy with calls in flight).  The figures are not judged, only
# that they are there and sane: rates above zero, the ratios printed, no
# error.  Everything rtpbench starts must be gone when it exits: rtpbench's
# scratch directories live in a TMPDIR of our own, so that what is left can
# be found (and is killed here, and counts as a failure).
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

# Processes rtpbench left: a daemon reading a configuration in $tmp, or one
# of our reference relays.  Their pids, one a line.
leftovers() {
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[ "$p" = "$$" ] && continue
		if tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q "$tmp/" ||
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

# The daemons' session tables in shared memory.
tables() {
	ls /dev/shm 2>/dev/null | grep '^rtpbench-' | sort
}

# bench NAME ARGS...: run rtpbench (at most 60 s) into $tmp/NAME.out and
# .err; 0 if it exited 0 and left nothing behind.
bench() {
	name=$1
	shift
	tables >"$tmp/shm.before"
	TMPDIR=$tmp timeout -s TERM 60 "$RTPBENCH" "$@" >"$tmp/$name.out" \
	    2>"$tmp/$name.err" &
	bpid=$!
	wait "$bpid"
	rc=$?
	bpid=
	tables | comm -13 "$tmp/shm.before" - >"$tmp/shm.left"
	if [ -s "$tmp/shm.left" ]; then
		nok "$name: rtpbench left shared memory: $(cat "$tmp/shm.left")"
		while read -r f; do
			rm -f "/dev/shm/$f"
		done <"$tmp/shm.left"
		rc=1
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
	if [ "$rc" -ne 0 ]; then
		nok "$name: rtpbench $* exited $rc"
		show "$tmp/$name.err"
		show "$tmp/$name.out"
	fi
	return "$rc"
}

# positive NAME VALUE: PASS if VALUE is a number above zero.
positive() {
	if awk -v v="$2" 'BEGIN { exit !(v + 0 > 0) }'; then
		ok "$1 ($2)"
	else
		nok "$1: \"$2\""
		return 1
	fi
}

# field FILE PATTERN N: the Nth field of the first line matching PATTERN.
field() {
	awk -v n="$3" "/$2/ { print \$n; exit }" "$1"
}

# --- rtpbench -C: a short search and a short fixed rate, 20 sessions -------
if bench compare -C -X "$RTPPROXYD" -Y "$REFRELAY" -N 20 -t 0.25 -d 0.5 \
    -T 1; then
	out=$tmp/compare.out
	positive "compare: reference max pkt/s" \
	    "$(field "$out" '^max pkt\/s' 7)"
	positive "compare: rtpproxyd max pkt/s" \
	    "$(field "$out" '^max pkt\/s' 8)"
	positive "compare: reference CPU per packet" \
	    "$(field "$out" '^  CPU per packet' 4)"
	positive "compare: rtpproxyd CPU per packet" \
	    "$(field "$out" '^  CPU per packet' 6)"
	ratio=$(sed -n 's/^ratios (rtpproxyd\/reference) at 20 sessions: .*CPU per packet \([0-9.]*\)x, p50 \([-+][0-9]*\) us.*/\1 \2/p' "$out")
	if [ -n "$ratio" ]; then
		positive "compare: CPU per packet ratio printed" "${ratio% *}"
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
# Without a search, so the rate is known: every packet must come through.
if bench uring -C -X "$RTPPROXYD" -Y "$URINGRELAY" -N 20 -R 20000 -d 1 \
    -T 1; then
	out=$tmp/uring.out
	positive "uringrelay: CPU per packet" \
	    "$(field "$out" '^  CPU per packet' 4)"
	loss=$(field "$out" '^  loss' 2)
	if [ "$loss" = 0.0000 ]; then
		ok "uringrelay: every packet relayed"
	else
		nok "uringrelay: loss \"$loss\" %"
		show "$out"
	fi
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
	none=$(awk '/^per stream / { for (i = 1; i < NF; i++)
	    if ($(i + 1) == "of") print $i }' "$out" | sort -n | tail -1)
	if [ "$none" = 0 ]; then
		ok "flood: every stream got packets through"
	else
		nok "flood: $none stream(s) got nothing"
		show "$out"
	fi
	positive "flood: ratio printed" \
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

finish
