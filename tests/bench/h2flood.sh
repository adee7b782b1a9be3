#!/bin/sh
# The API under an HTTP/2 attack from one client, measured as an operator
# sees it: the master's peak RSS and the slowest health check (a new
# rtpproxyctl every half second) while tests/h2attack runs, and how many
# connections the daemon closed with a log line.  Prints figures; judges
# nothing (check_api does, with bounds).
#
#   tests/bench/h2flood.sh reset|cont|idle|silent|streams|ping [SECONDS [flags]]
#
# e.g. tests/bench/h2flood.sh reset 10 -r -b 127.0.0.2  (reconnect at once)
# RTPPROXYD and RTPPROXYCTL name other binaries (an older build).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${RTPPROXYD:-$top/src/rtpproxyd}
ctl=${RTPPROXYCTL:-$top/src/rtpproxyctl}
attack=$top/tests/h2attack
mode=${1:?usage: h2flood.sh MODE [SECONDS [h2attack flags]]}
secs=${2:-10}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi

dir=$(mktemp -d /tmp/rtpproxyd-h2flood.XXXXXX) || exit 1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/conf" <<EOF
listen 127.0.0.1:$port
workers 1
pidfile $dir/pid
shm-name /rtpproxyd-h2flood-$$
port-range 47000 47199
EOF
"$bin" -f -c "$dir/conf" > "$dir/log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
i=0
until [ "$("$ctl" -s "127.0.0.1:$port" health 2>/dev/null)" = SERVING ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "h2flood: the daemon did not start" >&2; cat "$dir/log" >&2; exit 1; }
	sleep 0.1
done

"$attack" -t "$secs" "$@" "$mode" "127.0.0.1:$port" > "$dir/attack" 2>&1 &
a=$!
max=0
worst=0
failed=0
n=$((secs * 2))
while [ $n -gt 0 ]; do
	n=$((n - 1))
	sleep 0.5
	r=$(awk '/^VmRSS/ { print $2 }' "/proc/$daemon/status" 2>/dev/null)
	[ -n "$r" ] || { echo "h2flood: the master is gone" >&2; break; }
	s=$(date +%s%N)
	h=$(timeout 3 "$ctl" -s "127.0.0.1:$port" health 2>&1)
	e=$(date +%s%N)
	ms=$(((e - s) / 1000000))
	[ "$r" -gt "$max" ] && max=$r
	[ "$ms" -gt "$worst" ] && worst=$ms
	[ "$h" = SERVING ] || failed=$((failed + 1))
done
wait $a
echo "attacker: $(tail -n 1 "$dir/attack")"
echo "master RSS at most $max kB; slowest health $worst ms; health failed $failed of $((secs * 2))"
echo "log lines on closed connections: $(grep -c "closing the connection" "$dir/log") (more are summarised: the log is rate-limited)"
grep -o 'closing the connection from [^:]*:[^:]*:[0-9]*: .*' "$dir/log" |
    sed 's/from [^ ]*: /from PEER: /' | sort | uniq -c | sort -rn | head -3
