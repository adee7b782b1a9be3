#!/bin/sh
# The kernel fast path's highest rate and whole-machine CPU per packet,
# with an in-kernel generator (tests/bench/xgen: BPF_PROG_RUN of an XDP
# program in live-frames mode) so that the relay, not the generator, is
# the limit (tests/bench/README, "Kernel fast path").  Run as root from
# the top of the build tree:
#
#   tests/bench/kfwd-max.sh [-t step_s] [-d secs] [-R pps] [-x] [-k]
#                           [-N] [-S] [-p nice] [sessions ...]
#
# For each session count (default 1000 4000) and each path: userspace
# (rtpproxyd, kernel-forwarding off), direct (no relay: the relay's
# namespace routes), kernel (kernel-forwarding on) and the reference
# relay (tests/bench/refrelay; -N: not), xgen finds the highest paced
# rate with < 0.1 % loss counted at the destinations (steps of -t
# seconds, default 2, doubling from 100,000 pkt/s, then bisection to
# within 3 %), then offers a common rate for -d seconds (default 5) and
# prints the CPU per packet delivered: the whole machine's, and ours.
# The common rate is -R pkt/s, or half the userspace path's highest.
# -x: the frames leave by XDP_REDIRECT rather than XDP_TX; -k: xgen's
# TC mode (bpf_clone_redirect) even where live frames are allowed.
# -S: no RPS (see below).  -p nice: xgen and the relay run at that nice
# value (e.g. -10) to hold their CPUs against other jobs on the machine
# (ksoftirqd, which runs the relay's softirq when there is too much of
# it, is not ours and keeps its own).
#
# Three namespaces of its own (names with our pid), removed at the end
# even on failure: the callers' (10.201.1.2), the destinations'
# (10.201.2.2) and the relay's (10.201.1.1, 10.201.2.1, IPv4
# forwarding on).  xgen runs on CPU 0, the relay on CPU 1 (taskset), and
# RPS on the relay's caller-side veth hands what arrives there to CPU 1,
# so the relay's softirq (the kernel path, the routing of the direct
# path, the userspace path's socket delivery) is not on the generator's
# CPU; -S leaves it where it arrives, on CPU 0.
set -eu

tstep=2 secs=5 fixed= xopt= ref=yes rps=yes prio=0
while [ $# -gt 0 ]; do
	case $1 in
	-t)	tstep=$2; shift 2 ;;
	-d)	secs=$2; shift 2 ;;
	-R)	fixed=$2; shift 2 ;;
	-x)	xopt="$xopt -x"; shift ;;
	-k)	xopt="$xopt -k"; shift ;;
	-N)	ref=no; shift ;;
	-S)	rps=no; shift ;;
	-p)	prio=$2; shift 2 ;;
	*)	break ;;
	esac
done
[ $# -gt 0 ] || set -- 1000 4000
top=$(pwd)
daemon=${RTPPROXYD:-$top/src/rtpproxyd}
xgen=$top/tests/bench/xgen
refrelay=$top/tests/bench/refrelay
if ! [ -x "$daemon" ] || ! [ -x "$xgen" ]; then
	echo "$0: build first (src/rtpproxyd, tests/bench/xgen)" >&2
	exit 1
fi
[ -x "$refrelay" ] || ref=no

R=kxr-$$ C=kxc-$$ E=kxe-$$
dir=$(mktemp -d /tmp/kfwd-max.XXXXXX)
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
trap cleanup EXIT
trap 'exit 1' INT TERM

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
# No ARP at the destinations (their TC program drops what it counts):
# the relay knows their MAC; xgen's frames need the relay's.
ip -n "$R" neigh replace 10.201.2.2 dev re nud permanent \
    lladdr "$(ip netns exec "$E" cat /sys/class/net/p/address)"
mac=$(ip netns exec "$R" cat /sys/class/net/rc/address)
[ $rps = no ] ||
    ip netns exec "$R" sh -c 'echo 2 > /sys/class/net/rc/queues/rx-0/rps_cpus'

# shellcheck disable=SC3045
ulimit -n 65536 2>/dev/null || :

inr() { nsenter --net=/run/netns/"$R" nice -n "$prio" "$@"; }

# xgen in the relay's namespace; the common rate from the first path's
# highest if there is no -R
xg() {
	# shellcheck disable=SC2086
	inr "$xgen" -c "$C" -e "$E" -M "$mac" -S 10.201.1.2 -D 10.201.2.2 \
	    -P rc -C 0 -m -t "$tstep" $([ -n "$rate" ] && echo "-R $rate" ||
	    echo -H) -d "$secs" $xopt "$@" | tee "$dir/xg"
	[ -n "$rate" ] || rate=$(awk '/^fixed/ { print $2 }' "$dir/xg")
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
}

start() {	# kernel-forwarding off|on
	cat > "$dir/conf" <<EOC
listen 127.0.0.1:50992
workers 1
port-range 20000 36999
max-sessions 4100
idle-timeout 3600
setup-timeout 3600
shm-name /kfwd-max-$$
pidfile $dir/pid
log-level warning
kernel-forwarding $1
kernel-interfaces rc re
EOC
	: > "$dir/log"
	rm -f "$dir/pid"
	# nsenter and taskset exec: $! is the daemon's pid
	nsenter --net=/run/netns/"$R" nice -n "$prio" taskset -c 1 "$daemon" -f \
	    -c "$dir/conf" >> "$dir/log" 2>&1 &
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
}

relaypids() {	# the daemon and its workers, comma separated
	echo "$dpid $(cat /proc/"$dpid"/task/*/children 2>/dev/null)" |
	    tr -s ' \n' ',,' | sed 's/,$//'
}

refstart() {	# sessions: refrelay with n sessions, listen ports in $dir/ports
	rm -f "$dir/in" "$dir/out"
	mkfifo "$dir/in" "$dir/out"
	nsenter --net=/run/netns/"$R" nice -n "$prio" taskset -c 1 "$refrelay" \
	    < "$dir/in" > "$dir/out" 2>> "$dir/log" &
	dpid=$!
	exec 3> "$dir/in" 4< "$dir/out"
	k=0
	while [ $k -lt "$1" ]; do
		echo "10.201.1.1 0 0 10.201.2.2 $((30000 + k))" >&3
		k=$((k + 1))
	done
	echo >&3
	: > "$dir/ports"
	while read -r w a b <&4; do
		case $w in
		ports)	echo "$a" >> "$dir/ports" ;;
		ready)	break ;;
		*)	echo "$0: refrelay: $w $a $b" >&2; exit 1 ;;
		esac
	done
}

refstop() {
	exec 3>&- 4<&-
	stop
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "$@"; do
	rate=$fixed
	start off
	echo "== $n sessions: userspace (kernel-forwarding off)"
	# without -R, the common rate is half the userspace path's highest
	xg -n "$n" -s 127.0.0.1:50992 -L 10.201.1.1 -F 10.201.2.1 \
	    -p "$(relaypids)"
	stop
	echo "== $n sessions: direct path (the relay's namespace routes)"
	xg -n "$n"
	start on
	echo "== $n sessions: kernel (kernel-forwarding on)"
	xg -n "$n" -s 127.0.0.1:50992 -L 10.201.1.1 -F 10.201.2.1 \
	    -p "$(relaypids)"
	stop
	if [ $ref = yes ]; then
		refstart "$n"
		echo "== $n sessions: reference relay (tests/bench/refrelay)"
		xg -n "$n" -f "$dir/ports" -L 10.201.1.1 -p "$dpid"
		refstop
	fi
done
grep -v "overlaps the kernel's ephemeral" "$dir/log" || :
