#!/bin/sh
# The kernel fast path against the userspace path and the direct path,
# in network namespaces over veth (tests/bench/README, "Kernel fast
# path").  Run as root from the top of the build tree:
#
#   tests/bench/kfwd-netns.sh [-d seconds] [-m] [sessions:pps ...]
#
# -m: also the highest paced rate each path passes with < 0.1 % loss:
# from 25,000 pkt/s in all, doubling until a step fails (or rtpbench
# cannot offer 98 % of it), then three halvings of the interval.
#
# Three namespaces of its own (names with our pid), removed at the end:
# the callers' (10.201.1.2), the destinations' (10.201.2.2) and the
# relay's, where rtpproxyd runs on both veth pairs (10.201.1.1,
# 10.201.2.1) with IPv4 forwarding on.  For each sessions:pps (default
# 1000:20 4000:10) rtpbench runs, from the relay's namespace, with its
# callers and destinations in the other two: the direct path (callers
# send to the destinations, the relay's namespace only routes), the
# reference relay (tests/bench/refrelay, the bare epoll relay rtpbench -C
# compares with; rtpbench -Y starts it in the relay's namespace), then
# rtpproxyd with kernel-forwarding off and on; each paced (pps per
# session) and as fast as possible (-r 0, 8 packets a session in flight).
set -eu

secs=5
search=no
while [ $# -gt 0 ]; do
	case $1 in
	-d)	secs=$2; shift 2 ;;
	-m)	search=yes; shift ;;
	*)	break ;;
	esac
done
[ $# -gt 0 ] || set -- 1000:20 4000:10
top=$(pwd)
daemon=${RTPPROXYD:-$top/src/rtpproxyd}
bench=$top/tests/bench/rtpbench
ref=$top/tests/bench/refrelay
if ! [ -x "$daemon" ] || ! [ -x "$bench" ] || ! [ -x "$ref" ]; then
	echo "$0: build first (src/rtpproxyd, tests/bench/rtpbench," \
	    "tests/bench/refrelay)" >&2
	exit 1
fi

R=kbr-$$ C=kbc-$$ E=kbe-$$
dir=$(mktemp -d /tmp/kfwd-bench.XXXXXX)
dpid=

cleanup() {
	if [ -n "$dpid" ]; then
		kill "$dpid" 2>/dev/null || :
		wait "$dpid" 2>/dev/null || :
	fi
	ip netns del "$R" 2>/dev/null || :
	ip netns del "$C" 2>/dev/null || :
	ip netns del "$E" 2>/dev/null || :
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

ip netns add "$R"
ip netns add "$C"
ip netns add "$E"
ip -n "$R" link add rc type veth peer name p netns "$C"
ip -n "$R" link add re type veth peer name p netns "$E"
ip -n "$R" link set lo up
ip -n "$R" addr add 10.201.1.1/24 dev rc
ip -n "$R" addr add 10.201.2.1/24 dev re
ip -n "$R" link set rc up
ip -n "$R" link set re up
ip netns exec "$R" sysctl -qw net.ipv4.conf.all.forwarding=1
for ns in "$C" "$E"; do
	ip -n "$ns" link set lo up
	ip -n "$ns" link set p up
done
ip -n "$C" addr add 10.201.1.2/24 dev p
ip -n "$E" addr add 10.201.2.2/24 dev p
ip -n "$C" route add default via 10.201.1.1
ip -n "$E" route add default via 10.201.2.1

# 4 sockets a session in the daemon, 2 in rtpbench (dash and bash know -n)
# shellcheck disable=SC3045
ulimit -n 65536 2>/dev/null || :

inr() { nsenter --net=/run/netns/"$R" "$@"; }

start() {	# kernel-forwarding off|on
	cat > "$dir/conf" <<EOC
listen 127.0.0.1:50991
workers 1
port-range 20000 36999
max-sessions 4100
idle-timeout 3600
setup-timeout 3600
shm-name /kfwd-bench-$$
pidfile $dir/pid
log-level warning
kernel-forwarding $1
kernel-interfaces rc re
EOC
	: > "$dir/log"
	# nsenter execs the daemon: $! is its pid
	nsenter --net=/run/netns/"$R" "$daemon" -f -c "$dir/conf" \
	    >> "$dir/log" 2>&1 &
	dpid=$!
	i=0
	while ! [ -s "$dir/pid" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 1
	if ! kill -0 "$dpid" 2>/dev/null; then
		echo "$0: rtpproxyd did not start:" >&2
		cat "$dir/log" >&2
		dpid=
		exit 1
	fi
}

stop() {
	kill "$dpid"
	wait "$dpid" || :
	dpid=
	rm -f "$dir/pid"
}

run() {		# label sessions pps [extra]
	label=$1 rn=$2 rr=$3
	shift 3
	echo "== $label, $rn sessions, $([ "$rr" = 0 ] && echo "as fast as possible" || echo "$rr pkt/s each")"
	inr "$bench" -s 127.0.0.1:50991 -n "$rn" -r "$rr" -d "$secs" -a 10.201.1.2 \
	    -x "$C" -y "$E" -L 10.201.1.1 -f 10.201.2.1 -A 10.201.2.2 "$@" |
	    grep -E '^(offered|delivered|loss|latency|machine|daemon CPU|bench CPU)'
}

# One paced step of total pkt/s: 0 if it passed (< 0.1 % loss, >= 98 %
# offered); its rtpbench lines in $dir/step.
step() {	# sessions total [extra]
	sn=$1 st=$2
	shift 2
	pps=$((st / sn))
	[ "$pps" -ge 1 ] || pps=1
	inr "$bench" -s 127.0.0.1:50991 -n "$sn" -r "$pps" -d "$secs" \
	    -a 10.201.1.2 -x "$C" -y "$E" -L 10.201.1.1 -f 10.201.2.1 \
	    -A 10.201.2.2 "$@" > "$dir/step" 2>&1 || return 1
	awk -v want=$((pps * sn)) '
	    /^offered/ { off = $2 }
	    /^loss/ { loss = $2 }
	    END { exit !(off >= 0.98 * want && loss < 0.1) }' "$dir/step"
}

maxrate() {	# label sessions [extra]
	ml=$1 mn=$2
	shift 2
	lo=0 hi=0 t=25000
	while [ "$t" -le 1600000 ]; do
		if step "$mn" "$t" "$@"; then lo=$t; t=$((t * 2)); else hi=$t; break; fi
	done
	i=0
	while [ "$hi" -gt 0 ] && [ $i -lt 3 ]; do
		t=$(((lo + hi) / 2))
		if step "$mn" "$t" "$@"; then lo=$t; else hi=$t; fi
		i=$((i + 1))
	done
	echo "== $ml, $mn sessions: max paced pkt/s with < 0.1 % loss:" \
	    "$lo (lowest failed: ${hi:-none})"
}

for spec in "$@"; do
	n=${spec%%:*} r=${spec#*:}
	start off
	run "direct path (routed by the relay's namespace)" "$n" "$r" -0
	run "direct path (routed by the relay's namespace)" "$n" 0 -0
	[ $search = no ] || maxrate "direct path" "$n" -0
	run "reference relay (refrelay)" "$n" "$r" -Y "$ref"
	run "reference relay (refrelay)" "$n" 0 -Y "$ref"
	[ $search = no ] || maxrate "reference relay" "$n" -Y "$ref"
	run "userspace (kernel-forwarding off)" "$n" "$r" -p "$dpid"
	run "userspace (kernel-forwarding off)" "$n" 0 -p "$dpid"
	[ $search = no ] || maxrate "userspace" "$n" -p "$dpid"
	stop
	start on
	run "kernel (kernel-forwarding on)" "$n" "$r" -p "$dpid"
	run "kernel (kernel-forwarding on)" "$n" 0 -p "$dpid"
	[ $search = no ] || maxrate "kernel" "$n" -p "$dpid"
	stop
done
grep -v "overlaps the kernel's ephemeral" "$dir/log" || :
