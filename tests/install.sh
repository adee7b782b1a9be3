#!/bin/sh
# make install into a scratch DESTDIR, check that every file is where the
# configured directories say, drive the installed init script against the
# installed daemon (start, start again, status, reload, restart, upgrade,
# stop), then make uninstall.  Everything it starts and creates goes at exit.

# Functions called through check() and trap look unreachable to shellcheck.
# shellcheck disable=SC2317

top_builddir=${top_builddir:-.}
MAKE=${MAKE:-make}
# Not the jobserver or the variables of the make that runs the tests.
unset MAKEFLAGS MFLAGS

pass=0
fail=0

ok() {
	echo "PASS: $*"
	pass=$((pass + 1))
}

nok() {
	echo "FAIL: $*"
	fail=$((fail + 1))
}

# check DESCRIPTION COMMAND...: PASS if the command succeeds.
check() {
	what=$1
	shift
	if "$@"; then ok "$what"; else nok "$what"; fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rtpproxyd-install.XXXXXX") || {
	echo "FAIL: mktemp"
	echo "0 passed, 1 failed"
	exit 1
}
dest=$tmp/dest
shm=/rtpproxyd-install-$$
daemon_real=

# Processes that run the installed daemon (the master and its workers).
# Matched by the executable's full path, which lies in our scratch
# directory, so nothing else is ever touched.
our_pids() {
	[ -n "$daemon_real" ] || return 0
	for d in /proc/[0-9]*; do
		exe=$(readlink -f "$d/exe" 2>/dev/null) || continue
		[ "$exe" = "$daemon_real" ] && echo "${d#/proc/}"
	done
}

# How many of them are masters, that is, not children of another one.
count_masters() {
	all=$(our_pids)
	n=0
	for p in $all; do
		pp=$(sed -e 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f2)
		case " $(echo "$all" | tr '\n' ' ') " in
		*" $pp "*)	;;
		*)		n=$((n + 1)) ;;
		esac
	done
	echo "$n"
}

cleanup() {
	pids=$(our_pids)
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		kill -s TERM $pids 2>/dev/null
		sleep 1
		pids=$(our_pids)
		# shellcheck disable=SC2086
		[ -z "$pids" ] || kill -s KILL $pids 2>/dev/null
	fi
	rm -f "/dev/shm$shm"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}

# The installation directories as this build was configured (GNU make).
cat > "$tmp/print.mk" <<'EOF'
print-%:
	@echo '$($*)'
EOF
var() {
	# The last line: make may first regenerate the Makefile, and say so.
	$MAKE -s -C "$top_builddir" -f Makefile -f "$tmp/print.mk" "print-$1" \
	    2>/dev/null | tail -n 1
}
prefix=$(var prefix)
sbindir=$(var sbindir)
bindir=$(var bindir)
mandir=$(var mandir)
sysconfdir=$(var sysconfdir)
pkgdatadir=$(var pkgdatadir)
initddir=$(var initddir)
unitdir=$(var systemdsystemunitdir)
if [ -z "$prefix" ] || [ -z "$sbindir" ] || [ -z "$mandir" ] ||
    [ -z "$pkgdatadir" ]; then
	nok "read the installation directories from $top_builddir/Makefile"
	finish
fi
echo "prefix $prefix, initddir ${initddir:-none}, unit dir ${unitdir:-none}"

# --- make install ------------------------------------------------------------

if $MAKE -C "$top_builddir" install DESTDIR="$dest" > "$tmp/install.log" 2>&1
then
	ok "make install DESTDIR=..."
else
	nok "make install DESTDIR=..."
	tail -n 20 "$tmp/install.log"
	finish
fi

expect_files="$sbindir/rtpproxyd $bindir/rtpproxyctl
$mandir/man8/rtpproxyd.8 $mandir/man5/rtpproxyd.conf.5
$mandir/man1/rtpproxyctl.1
$sysconfdir/rtpproxyd.conf.sample $sysconfdir/rtpproxyd.conf
$pkgdatadir/proto/rtpproxy.proto $pkgdatadir/CLIENTS"
[ -z "$initddir" ] || expect_files="$expect_files $initddir/rtpproxyd"
[ -z "$unitdir" ] || expect_files="$expect_files $unitdir/rtpproxyd.service"

for f in $expect_files; do
	check "installed $f" test -f "$dest$f"
done
for f in "$sbindir/rtpproxyd" "$bindir/rtpproxyctl"; do
	check "$f is executable" test -x "$dest$f"
done
if [ -n "$initddir" ]; then
	check "$initddir/rtpproxyd is executable" test -x "$dest$initddir/rtpproxyd"
	check "$initddir/rtpproxyd names $sbindir/rtpproxyd" \
	    grep -q "$sbindir/rtpproxyd" "$dest$initddir/rtpproxyd" 2>/dev/null
	for f in "$dest$initddir"/*; do
		case $f in
		*/rtpproxyd)	;;
		*)		nok "stray file in $initddir: ${f##*/}" ;;
		esac
	done
fi
if [ -n "$unitdir" ]; then
	check "rtpproxyd.service runs $sbindir/rtpproxyd -f" \
	    grep -q "^ExecStart=$sbindir/rtpproxyd -f" \
	    "$dest$unitdir/rtpproxyd.service"
fi
check "rtpproxyd.conf is the sample" \
    cmp -s "$dest$sysconfdir/rtpproxyd.conf" \
    "$dest$sysconfdir/rtpproxyd.conf.sample"

# --- the init script against the installed daemon ----------------------------

DAEMON=$dest$sbindir/rtpproxyd
daemon_real=$(readlink -f "$DAEMON" 2>/dev/null)
INIT=
if [ -n "$initddir" ] && [ -x "$dest$initddir/rtpproxyd" ]; then
	INIT=$dest$initddir/rtpproxyd
elif [ -x "$dest$initddir/rtpproxyd.init" ]; then
	INIT=$dest$initddir/rtpproxyd.init
	echo "note: using $initddir/rtpproxyd.init"
elif [ -x "$top_builddir/contrib/rtpproxyd.init" ]; then
	INIT=$top_builddir/contrib/rtpproxyd.init
	echo "note: no init script installed; using the built one"
fi

free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' && return
	fi
	p=$((20000 + $$ % 10000))
	while [ "$p" -lt 32000 ]; do
		if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"
			return
		fi
		p=$((p + 1))
	done
	return 1
}

CONF=$tmp/rtpproxyd.conf
PIDFILE=$tmp/rtpproxyd.pid
port=$(free_port) || port=
if [ -z "$INIT" ] || [ ! -x "$DAEMON" ] || [ -z "$port" ]; then
	nok "init script, daemon and a free port for the run"
	INIT=
fi

cat > "$CONF" <<EOF
# written by tests/install.sh
listen 127.0.0.1:$port
workers 1
port-range 61000 61099
max-sessions 16
shm-name $shm
pidfile $PIDFILE
log-level debug
EOF

TIMEOUT=
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout 60"

# The init script, pointed at the scratch installation only.
init() {
	# shellcheck disable=SC2086
	$TIMEOUT env RTPPROXYD_DEFAULTS= DAEMON="$DAEMON" CONF="${conf:-$CONF}" \
	    PIDFILE="$PIDFILE" STOP_TIMEOUT=10 "$INIT" "$@" \
	    >> "$tmp/init.log" 2>&1
}

pidfile_pid() {
	pid=
	[ -r "$PIDFILE" ] && read -r pid < "$PIDFILE"
	case $pid in
	''|*[!0-9]*)	pid= ;;
	esac
	echo "$pid"
}

alive() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null
}

# Is $1 a live pid other than $2?
new_pid() {
	[ "$1" != "$2" ] && alive "$1"
}

# Wait up to 10 s for process $1 to go.
gone() {
	i=0
	while alive "$1" && [ "$i" -lt 100 ]; do
		sleep 0.1 2>/dev/null || sleep 1
		i=$((i + 1))
	done
	! alive "$1"
}

expect_rc() {
	want=$1
	shift
	init "$@"
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "init $* exits $want"
	else
		nok "init $* exits $rc, not $want"
	fi
}

if [ -n "$INIT" ]; then
	expect_rc 3 status
	expect_rc 0 start
	pid1=$(pidfile_pid)
	check "start: pid file names a live process" alive "$pid1"
	check "start: one master" test "$(count_masters)" -eq 1

	expect_rc 0 start
	check "start while running: same pid" test "$(pidfile_pid)" = "$pid1"
	check "start while running: still one master" \
	    test "$(count_masters)" -eq 1

	expect_rc 0 status

	expect_rc 0 reload
	sleep 1
	check "reload: same pid" test "$(pidfile_pid)" = "$pid1"
	check "reload: daemon alive" alive "$pid1"

	# A broken file is refused before the daemon is signalled.
	{ cat "$CONF"; echo "no-such-keyword 1"; } > "$tmp/broken.conf"
	conf=$tmp/broken.conf
	init reload
	rc=$?
	conf=
	check "reload with a broken file fails (exit $rc)" test "$rc" -ne 0
	check "reload with a broken file: daemon alive" alive "$pid1"

	expect_rc 0 restart
	pid2=$(pidfile_pid)
	check "restart: new live pid" new_pid "$pid2" "$pid1"
	check "restart: old pid gone" gone "$pid1"
	check "restart: one master" test "$(count_masters)" -eq 1

	# A new master takes over; the workers it adopts are no longer its
	# children, so what shows it holds them is that stop ends them all.
	expect_rc 0 upgrade
	pid3=$(pidfile_pid)
	check "upgrade: new live pid" new_pid "$pid3" "$pid2"
	check "upgrade: old pid gone" gone "$pid2"

	expect_rc 0 stop
	check "stop: daemon gone" gone "$pid3"
	check "stop: no process left" test -z "$(our_pids)"
	check "stop: pid file removed" test ! -e "$PIDFILE"
	check "stop: shared memory removed" test ! -e "/dev/shm$shm"
	expect_rc 3 status
	expect_rc 0 stop

	# A pid file whose process is gone.
	# shellcheck disable=SC2016
	sh -c 'echo $$' > "$PIDFILE"
	expect_rc 1 status
	rm -f "$PIDFILE"
fi
if [ -s "$tmp/init.log" ] && [ "$fail" -gt 0 ]; then
	echo "--- init script output"
	cat "$tmp/init.log"
	echo "---"
fi

# --- make uninstall ----------------------------------------------------------

if $MAKE -C "$top_builddir" uninstall DESTDIR="$dest" \
    > "$tmp/uninstall.log" 2>&1; then
	ok "make uninstall"
else
	nok "make uninstall"
	tail -n 20 "$tmp/uninstall.log"
fi
left=$(find "$dest" ! -type d 2>/dev/null)
if [ -z "$left" ]; then
	ok "uninstall removed every file, the untouched rtpproxyd.conf too"
else
	nok "uninstall left files behind:"
	echo "$left" | sed 's/^/	/'
fi

# An operator's edited rtpproxyd.conf survives uninstall.
if $MAKE -C "$top_builddir" install DESTDIR="$dest" > "$tmp/install.log" 2>&1
then
	echo "listen 127.0.0.1:50099" >> "$dest$sysconfdir/rtpproxyd.conf"
	cp "$dest$sysconfdir/rtpproxyd.conf" "$tmp/edited.conf"
	$MAKE -C "$top_builddir" install DESTDIR="$dest" \
	    > "$tmp/install.log" 2>&1
	check "install again keeps the edited rtpproxyd.conf" \
	    cmp -s "$dest$sysconfdir/rtpproxyd.conf" "$tmp/edited.conf"
	$MAKE -C "$top_builddir" uninstall DESTDIR="$dest" \
	    > "$tmp/uninstall.log" 2>&1
	left=$(find "$dest" ! -type d 2>/dev/null)
	check "uninstall keeps only the edited rtpproxyd.conf" \
	    test "$left" = "$dest$sysconfdir/rtpproxyd.conf"
else
	nok "make install (second time)"
fi

finish
