#!/bin/sh
# make check-deb: the Debian packages, on this machine, as root.
#
# Builds them (make deb), runs lintian, installs them with dpkg (which
# starts the daemon through the init script, or systemd where it runs),
# calls health and creates a session with rtpproxyctl, upgrades to a
# rebuilt package of a higher version while RTP flows both ways through
# sessions (none may be lost, nor more than a few packets), removes
# (stopped, configuration kept) and purges (nothing left on disk).
#
# It refuses to run, and fails, when a tool it needs is missing, when
# rtpproxyd is installed already or anything of an installation is there,
# or when the default API port is taken: it installs the packages as they
# come, on their defaults.  Whatever happens, it leaves nothing behind:
# the packages purged, the daemon's processes ended, the user gone,
# policy-rc.d as it was.  Output also goes to tests/check-deb.log.

# Functions called through check() and trap look unreachable to shellcheck.
# shellcheck disable=SC2317

top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
MAKE=${MAKE:-make}
# Not the jobserver or the variables of the make that runs us.
unset MAKEFLAGS MFLAGS

NSESS=4				# sessions relaying across the upgrade
LOSS_PERMILLE=5			# at most this much of a direction lost
API=127.0.0.1:50051		# the packaged configuration's
PIDFILE=/run/rtpproxyd/rtpproxyd.pid
CONF=/etc/rtpproxyd/rtpproxyd.conf
POLICY=/usr/sbin/policy-rc.d
POLICY_SAVED=/usr/sbin/policy-rc.d.rtpproxyd-check-deb
LOCK=/run/lock/rtpproxyd-check-deb.lock
# There while a run goes on, with its temporary directory and its media
# process: a run that was killed (SIGKILL) leaves it, and the next run
# removes what that one left (see "A run that was killed").
MARKER=/run/lock/rtpproxyd-check-deb.run

LOG=$top_builddir/tests/check-deb.log
: > "$LOG" 2>/dev/null || LOG=/dev/null

pass=0
fail=0
t0=$(date +%s)

say() {
	echo "$*"
	echo "$*" >> "$LOG"
}

ok() {
	say "PASS: $*"
	pass=$((pass + 1))
}

nok() {
	say "FAIL: $*"
	fail=$((fail + 1))
}

# check DESCRIPTION COMMAND...: PASS if the command succeeds.
check() {
	what=$1
	shift
	if "$@"; then ok "$what"; else nok "$what"; fi
}

# A file's last lines, for a failure's why.
show() {
	say "--- $1"
	tail -n "${2:-30}" "$1" 2>/dev/null | tee -a "$LOG"
	say "---"
}

# A phase's start, with the seconds since ours.
phase() {
	say "== [+$(($(date +%s) - t0))s] $*"
}

finish() {
	say "$pass passed, $fail failed ($(($(date +%s) - t0)) s)"
	[ "$fail" -eq 0 ]
	exit
}

refuse() {
	nok "cannot run: $*"
	finish
}

# --- what it needs ------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || refuse "must run as root (it installs packages)"
for c in dpkg dpkg-deb dpkg-query dpkg-buildpackage dpkg-parsechangelog dh \
    lintian python3 invoke-rc.d update-rc.d adduser deluser getent flock \
    timeout protoc-c; do
	command -v "$c" >/dev/null 2>&1 ||
	    refuse "no $c: run contrib/install-deps.sh"
done

mkdir -p "$(dirname "$LOCK")" 2>/dev/null
# Every process that may outlive us (the daemon that dpkg starts, the
# media) is started without fd 9: one that held it would lock out every
# later run.
exec 9> "$LOCK" || refuse "cannot open $LOCK"
flock -n 9 || refuse "another make check-deb is running"

# The daemon's processes: those that run the packaged binary (or the one
# an upgrade replaced).  None exist before we install it (checked below).
daemon_pids() {
	for d in /proc/[0-9]*; do
		exe=$(readlink "$d/exe" 2>/dev/null) || continue
		case $exe in
		/usr/sbin/rtpproxyd|"/usr/sbin/rtpproxyd (deleted)")
			echo "${d#/proc/}" ;;
		esac
	done
}

# Whatever our installation left, gone: purge the packages (the init
# script stops the daemon), then by force what a failed purge kept.
# Appends to $1.
uninstall() {
	timeout 300 dpkg -P --force-remove-reinstreq rtpproxyd rtpproxyctl < /dev/null 9>&- \
	    >> "$1" 2>&1
	pids=$(daemon_pids)
	if [ -n "$pids" ]; then
		echo "killing what still runs: $pids" >> "$1"
		# shellcheck disable=SC2086
		kill -s KILL $pids 2>/dev/null
	fi
	rm -rf /etc/rtpproxyd /run/rtpproxyd
	rm -f /dev/shm/rtpproxyd
	if getent passwd rtpproxyd >/dev/null; then
		deluser --system --quiet rtpproxyd >> "$1" 2>&1
	fi
	if getent group rtpproxyd >/dev/null; then
		delgroup --system --quiet rtpproxyd >> "$1" 2>&1
	fi
}

# What uninstall could not remove, one line each.
leftovers() {
	for p in rtpproxyd rtpproxyctl; do
		# shellcheck disable=SC2016
		st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)
		case $st in
		''|not-installed)	;;
		*)	echo "package $p: $st" ;;
		esac
	done
	pids=$(daemon_pids)
	[ -z "$pids" ] || echo "processes: $(echo "$pids" | tr "\n" " ")"
	getent passwd rtpproxyd >/dev/null && echo "user rtpproxyd"
	getent group rtpproxyd >/dev/null && echo "group rtpproxyd"
	for f in /etc/rtpproxyd /run/rtpproxyd /dev/shm/rtpproxyd \
	    /etc/init.d/rtpproxyd /usr/sbin/rtpproxyd /usr/bin/rtpproxyctl; do
		[ -e "$f" ] && echo "$f"
	done
	return 0
}

# A run that was killed may have left policy-rc.d replaced, and the
# packages installed: put the one back, purge the other.
if [ -e "$POLICY_SAVED" ]; then
	mv -f "$POLICY_SAVED" "$POLICY"
	say "note: restored $POLICY left by a run that was killed"
fi
if [ -e "$MARKER" ]; then
	say "note: removing what a run that was killed left"
	while read -r k v; do
		case $k in
		tmp)	case $v in
			*/rtpproxyd-check-deb.*)	rm -rf "$v" ;;
			esac ;;
		media)	case $v in
			''|*[!0-9]*)	;;
			*)	grep -qs check-deb.py "/proc/$v/cmdline" &&
				    kill "$v" ;;
			esac ;;
		installed)
			uninstall /dev/null ;;
		esac
	done < "$MARKER"
	rm -f "$MARKER"
fi

for p in rtpproxyd rtpproxyctl; do
	# shellcheck disable=SC2016
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)
	case $st in
	''|not-installed)	;;
	*)	refuse "package $p is $st here: this test installs and purges it" ;;
	esac
done
getent passwd rtpproxyd >/dev/null &&
    refuse "a user rtpproxyd exists: purge would remove it"
getent group rtpproxyd >/dev/null &&
    refuse "a group rtpproxyd exists: purge would remove it"
for f in /etc/rtpproxyd /run/rtpproxyd /dev/shm/rtpproxyd \
    /etc/init.d/rtpproxyd /usr/sbin/rtpproxyd /usr/bin/rtpproxyctl; do
	[ -e "$f" ] && refuse "$f exists: this test installs there"
done
[ -z "$(daemon_pids)" ] || refuse "processes run /usr/sbin/rtpproxyd"
python3 -c 'import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 50051))' 2>/dev/null ||
    refuse "$API is taken: the packaged configuration listens there"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rtpproxyd-check-deb.XXXXXX") ||
    refuse "mktemp"
echo "tmp $tmp" > "$MARKER"
installed=no
policy_set=no
media=

# policy-rc.d as it was before we replaced it.
policy_restore() {
	[ "$policy_set" = yes ] || return 0
	if [ -e "$POLICY_SAVED" ]; then
		mv -f "$POLICY_SAVED" "$POLICY"
	else
		rm -f "$POLICY"
	fi
	policy_set=no
}

# On every way out: a failed check, a refusal after we installed, a
# signal.  It says what it did, and fails the run if anything is left.
cleanup() {
	rc=$?
	trap - EXIT HUP INT TERM
	if [ -n "$media" ]; then
		kill "$media" 2>/dev/null
		wait "$media" 2>/dev/null
	fi
	if [ "$installed" = yes ]; then
		say "cleanup: purging the packages (run ended early)"
		uninstall "$tmp/cleanup.log"
		sed 's/^/cleanup: /' "$tmp/cleanup.log" | tee -a "$LOG"
		left=$(leftovers)
		if [ -n "$left" ]; then
			say "FAIL: cleanup left:"
			echo "$left" | sed 's/^/	/' | tee -a "$LOG"
			rc=1
		fi
	fi
	policy_restore
	rm -rf "$tmp"
	rm -f "$MARKER" "$LOCK"
	exit "$rc"
}
trap cleanup EXIT
trap 'say "FAIL: interrupted"; exit 1' HUP INT TERM

# What carries rtpproxyd's name outside the places this test makes its own,
# before and after, so that purge is seen to leave nothing new.
footprint() {
	{
		find /etc /lib /usr /var -xdev -path /var/tmp -prune -o \
		    -name '*rtpproxy*' -print 2>/dev/null
		ls -d /run/rtpproxyd /dev/shm/rtpproxyd 2>/dev/null
		grep -s '^rtpproxyd:' /etc/passwd /etc/group /etc/shadow \
		    /etc/gshadow | cut -d: -f1,2
	} | sort
}
footprint > "$tmp/before"

# --- build and lintian --------------------------------------------------------

DEB_BUILD_OPTIONS="parallel=$(nproc 2>/dev/null || echo 1)"
export DEB_BUILD_OPTIONS
phase "building the packages (make deb)"
# shellcheck disable=SC2086 # MAKE may carry options
if ! timeout 1800 $MAKE -C "$top_builddir" deb DEB_DIR="$tmp/deb" \
    > "$tmp/build.log" 2>&1; then
	nok "make deb"
	show "$tmp/build.log" 40
	finish
fi
ok "make deb"
src=$(find "$tmp/deb" -mindepth 1 -maxdepth 1 -type d -name 'rtpproxyd-*' |
    head -n 1)
v1=$(cd "$src" && dpkg-parsechangelog -SVersion)
arch=$(dpkg --print-architecture)
deb1="$tmp/deb/rtpproxyd_${v1}_$arch.deb $tmp/deb/rtpproxyctl_${v1}_$arch.deb"
for f in $deb1; do
	check "built ${f##*/}" test -f "$f"
done
[ "$fail" -eq 0 ] || finish
# shellcheck disable=SC2016
upstream=$(sed -n -e '/^AC_INIT/{s/^[^,]*, *\[//;s/\].*//;p;}' \
    "$top_srcdir/configure.ac")
check "debian/changelog's version $v1 is configure.ac's $upstream" \
    test "${v1%-*}" = "$upstream"

for p in rtpproxyd rtpproxyctl; do
	dpkg-deb -f "$tmp/deb/${p}_${v1}_$arch.deb" Depends > "$tmp/dep.$p"
	say "$p Depends: $(cat "$tmp/dep.$p")"
done
check "rtpproxyd depends on libgrpc and libevent (dh_shlibdeps)" \
    grep -q 'libgrpc.*libevent\|libevent.*libgrpc' "$tmp/dep.rtpproxyd"

timeout 600 lintian --fail-on error,warning --tag-display-limit 0 \
    "$tmp/deb/rtpproxyd_${v1}_$arch.changes" > "$tmp/lintian.log" 2>&1
rc=$?
grep -v '^running with root privileges' "$tmp/lintian.log" > "$tmp/tags"
say "lintian $(lintian --print-version) on the .changes (both packages):" \
    "$(grep -c . "$tmp/tags") tag(s)"
sed 's/^/lintian: /' "$tmp/tags" | tee -a "$LOG"
check "lintian: no error, no warning (exit $rc)" test "$rc" -eq 0

# --- install ------------------------------------------------------------------

# Starting services: for rtpproxyd, what policy_write says (0 allowed, as
# on a machine whose init starts services; 101 forbidden, as in a
# container); anything else asks the machine's policy.
if [ -e "$POLICY" ]; then
	cp -p "$POLICY" "$POLICY_SAVED" || refuse "cannot save $POLICY"
fi
policy_set=yes
policy_write() {
	cat > "$POLICY.new" <<EOF
#!/bin/sh
# Put here by rtpproxyd's tests/check-deb.sh while it runs; the
# machine's own is $POLICY_SAVED until then.
for a in "\$@"; do
	case \$a in
	-*)		;;
	rtpproxyd|rtpproxyd.service)	exit $1 ;;
	*)		break ;;
	esac
done
[ -x "$POLICY_SAVED" ] && exec "$POLICY_SAVED" "\$@"
exit 0
EOF
	chmod 755 "$POLICY.new" && mv -f "$POLICY.new" "$POLICY"
}
policy_write 0

phase "installing $v1"
installed=yes
echo "installed yes" >> "$MARKER"
# shellcheck disable=SC2086
if timeout 300 dpkg -i $deb1 9>&- > "$tmp/install.log" 2>&1; then
	ok "dpkg -i rtpproxyd rtpproxyctl $v1"
else
	nok "dpkg -i rtpproxyd rtpproxyctl $v1"
	show "$tmp/install.log"
	finish
fi
sed 's/^/dpkg -i: /' "$tmp/install.log" >> "$LOG"

if [ -d /run/systemd/system ]; then
	say "systemd runs this machine: the unit starts the daemon"
else
	say "no systemd here: the init script starts the daemon"
fi

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

# Wait up to $2 seconds for process $1 to go.
gone() {
	i=0
	while alive "$1" && [ "$i" -lt $(($2 * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	! alive "$1"
}

uid_of() {
	sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status" \
	    2>/dev/null
}

# Everything of the daemon runs as rtpproxyd.
all_as_user() {
	u=$(id -u rtpproxyd 2>/dev/null) || return 1
	for p in $(daemon_pids); do
		[ "$(uid_of "$p")" = "$u" ] || return 1
	done
}

pid1=$(pidfile_pid)
check "install started the daemon (pid file $PIDFILE names a live process)" \
    alive "$pid1"
check "/etc/init.d/rtpproxyd status: running" /etc/init.d/rtpproxyd status
say "daemon: master $pid1, processes $(daemon_pids | tr '\n' ' ')"
check "/etc/init.d/rtpproxyd stop" /etc/init.d/rtpproxyd stop
check "stopped: the master is gone" gone "$pid1" 60
check "/etc/init.d/rtpproxyd start" /etc/init.d/rtpproxyd start 9>&-
pid1=$(pidfile_pid)
check "started: a new master ($pid1)" alive "$pid1"
# shellcheck disable=SC2016
check "a system user rtpproxyd, no login, no home" \
    sh -c 'getent passwd rtpproxyd |
    grep -q "^rtpproxyd:x:[0-9]*:[0-9]*:.*:/nonexistent:/usr/sbin/nologin$" &&
    [ "$(id -u rtpproxyd)" -lt 1000 ]'
check "the master and its workers run as rtpproxyd" all_as_user
check "/run/rtpproxyd belongs to rtpproxyd" \
    test "$(stat -c %U:%G /run/rtpproxyd 2>/dev/null)" = rtpproxyd:rtpproxyd
check "enabled at boot (/etc/rc2.d/S*rtpproxyd)" \
    sh -c 'ls /etc/rc2.d/S[0-9][0-9]rtpproxyd >/dev/null 2>&1'
check "$CONF is a conffile" sh -c \
    "dpkg-query -W -f='\${Conffiles}' rtpproxyd | grep -q ' $CONF '"
check "$CONF runs the daemon as rtpproxyd" grep -q '^user rtpproxyd$' "$CONF"
check "rtpproxyd -n checks $CONF" \
    sh -c "rtpproxyd -n | grep -q '^$CONF: configuration OK$'"
for f in /usr/sbin/rtpproxyd /usr/bin/rtpproxyctl \
    /usr/share/man/man8/rtpproxyd.8.gz /usr/share/man/man5/rtpproxyd.conf.5.gz \
    /usr/share/man/man1/rtpproxyctl.1.gz /lib/systemd/system/rtpproxyd.service \
    /usr/share/rtpproxyd/proto/rtpproxy.proto /usr/share/rtpproxyd/CLIENTS; do
	check "installed $f" test -f "$f"
done
mkdir -p "$tmp/stubs"
check "the installed proto makes stubs (protoc-c)" \
    protoc-c -I/usr/share/rtpproxyd/proto --c_out="$tmp/stubs" rtpproxy.proto

check "rtpproxyctl health: SERVING" \
    sh -c "rtpproxyctl health 2>&1 | grep -q '^SERVING$'"

# Loopback is no destination by default: open it, reload, and see it take.
echo "allow-destination 127.0.0.0/8   # check-deb" >> "$CONF"
check "/etc/init.d/rtpproxyd reload" /etc/init.d/rtpproxyd reload
created=no
i=0
while [ "$i" -lt 50 ]; do
	if rtpproxyctl create -i check-deb-probe -l 127.0.0.1:0 \
	    -d 127.0.0.1:9 > "$tmp/create.log" 2>&1; then
		created=yes
		break
	fi
	sleep 0.2
	i=$((i + 1))
done
check "rtpproxyctl create: a session" test "$created" = yes
[ "$created" = yes ] || show "$tmp/create.log"
check "rtpproxyctl status of it" \
    sh -c 'rtpproxyctl status check-deb-probe > /dev/null'
check "rtpproxyctl destroy" \
    sh -c 'rtpproxyctl destroy check-deb-probe > /dev/null'

# --- upgrade while media flows ------------------------------------------------

# The tree built, as a package of version $1 (-nc: nothing is compiled).
rebuild() {
	{
		printf 'rtpproxyd (%s) unstable; urgency=medium\n\n' "$1"
		printf '  * A rebuild of a higher version, for make check-deb.\n\n'
		printf ' -- rtpproxyd developers <rtpproxyd@example.org>  %s\n\n' \
		    "$(date -R)"
		cat "$src/debian/changelog"
	} > "$tmp/changelog" && cp "$tmp/changelog" "$src/debian/changelog" &&
	    (cd "$src" && timeout 1800 dpkg-buildpackage -us -uc -b -nc) \
	    > "$tmp/build-$1.log" 2>&1
}

v2="$v1+checkdeb1"
phase "building $v2 (dpkg-buildpackage -b -nc)"
if rebuild "$v2"; then
	ok "rebuilt as $v2"
else
	nok "rebuilt as $v2"
	show "$tmp/build-$v2.log"
	finish
fi
deb2="$tmp/deb/rtpproxyd_${v2}_$arch.deb $tmp/deb/rtpproxyctl_${v2}_$arch.deb"

python3 "$top_srcdir/tests/check-deb.py" rtpproxyctl "$NSESS" \
    "$tmp/media.json" "$tmp/media.state" "$tmp/media.stop" \
    "$tmp/media.upgraded" > "$tmp/media.log" 2>&1 9>&- &
media=$!
echo "media $media" >> "$MARKER"
i=0
while [ ! -e "$tmp/media.state" ] && alive "$media" && [ "$i" -lt 900 ]; do
	sleep 0.1
	i=$((i + 1))
done
if ! check "RTP flows both ways through $NSESS sessions" \
    test -e "$tmp/media.state"; then
	show "$tmp/media.log"
	finish
fi

old=$(pidfile_pid)
old_procs=$(daemon_pids | tr '\n' ' ')
phase "upgrading to $v2 while media flows"
say "before the upgrade: master $old, processes $old_procs"
# shellcheck disable=SC2086
if timeout 300 dpkg -i $deb2 9>&- > "$tmp/upgrade.log" 2>&1; then
	ok "dpkg -i $v2 (upgrade) while media flows"
else
	nok "dpkg -i $v2 (upgrade) while media flows"
	show "$tmp/upgrade.log"
fi
sed 's/^/upgrade: /' "$tmp/upgrade.log" | tee -a "$LOG"
new=$(pidfile_pid)
say "after the upgrade: master $new, processes $(daemon_pids | tr '\n' ' ')"
check "the upgrade used the lossless restart (init script upgrade)" \
    grep -q '^Upgrading rtpproxyd: done' "$tmp/upgrade.log"
check "a new master ($old -> $new)" test -n "$new" -a "$new" != "$old"
check "the new master is alive" alive "$new"
check "the old master is gone" gone "$old" 60
check "the new master runs the new /usr/sbin/rtpproxyd" \
    test "$(readlink "/proc/$new/exe" 2>/dev/null)" = /usr/sbin/rtpproxyd
check "the new master runs as rtpproxyd" all_as_user
# shellcheck disable=SC2016
check "rtpproxyd $v2 installed" test "$(dpkg-query -W -f='${Version}' \
    rtpproxyd 2>/dev/null)" = "$v2"
stale=0
for p in $(daemon_pids); do
	case $(readlink "/proc/$p/exe" 2>/dev/null) in
	*"(deleted)")	stale=$((stale + 1)) ;;
	esac
done
say "note: $stale adopted worker(s) still run the replaced binary"

# Media goes on on the new master until every session got some packets
# back that were sent after the upgrade (counted, however long it takes
# on a busy machine), then stops.
touch "$tmp/media.upgraded"
i=0
while [ ! -e "$tmp/media.upgraded.seen" ] && alive "$media" &&
    [ "$i" -lt 1200 ]; do
	sleep 0.1
	i=$((i + 1))
done
check "every session relays packets sent after the upgrade" \
    test -e "$tmp/media.upgraded.seen"
touch "$tmp/media.stop"
i=0
while alive "$media" && [ "$i" -lt 900 ]; do
	sleep 0.1
	i=$((i + 1))
done
wait "$media" 2>/dev/null
media=
if ! check "the media run ended and reported" test -s "$tmp/media.json"; then
	show "$tmp/media.log"
	finish
fi

python3 - "$tmp/media.json" "$LOSS_PERMILLE" > "$tmp/media.txt" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
bound = int(sys.argv[2])
bad = 0
tot = [0, 0, 0, 0]
for s in r["sessions"]:
    fl = s["sent"] - s["received"]
    rl = s["rev_sent"] - s["rev_received"]
    tot = [tot[0] + s["sent"], tot[1] + fl, tot[2] + s["rev_sent"],
           tot[3] + rl]
    print("%s: forward %d sent, %d lost; reverse %d sent, %d lost; "
          "longest gap %.1f ms; %d back of those sent after the upgrade; "
          "last packet back %.1f ms before the end"
          % (s["id"], s["sent"], fl, s["rev_sent"], rl, s["max_gap_ms"],
             s["after_mark"], s["quiet_at_end_ms"]
             if s["quiet_at_end_ms"] is not None else -1))
    for sent, lost in ((s["sent"], fl), (s["rev_sent"], rl)):
        if sent == 0 or lost * 1000 > sent * bound:
            bad += 1
    # Still relaying at the end, on the new master.
    if s["after_mark"] < r["after_n"]:
        bad += 1
print("total: %d sessions, %.1f s at %d packets/s each way; forward %d "
      "sent, %d lost; reverse %d sent, %d lost"
      % (len(r["sessions"]), r["seconds"], r["pps"], tot[0], tot[1],
         tot[2], tot[3]))
sys.exit(1 if bad else 0)
EOF
rc=$?
sed 's/^/media: /' "$tmp/media.txt" | tee -a "$LOG"
check "no more than $LOSS_PERMILLE per mille lost either way, every session relaying after the upgrade" \
    test "$rc" -eq 0

active=0
for n in $(seq 0 $((NSESS - 1))); do
	rtpproxyctl -j status "check-deb-$n" 2>/dev/null |
	    grep -q '"state":"ACTIVE"' && active=$((active + 1))
done
check "no session lost: $active of $NSESS ACTIVE after the upgrade" \
    test "$active" -eq "$NSESS"

# --- an upgrade that cannot be lossless -------------------------------------

# The configuration unreadable for the daemon's user: the new master that
# takes over runs as that user and cannot start, so the old one carries
# on; postinst then stops and starts the daemon (its sessions are lost),
# so that no master goes on running the replaced binary.
v3="$v1+checkdeb2"
phase "upgrading to $v3, which cannot be lossless"
before=$(pidfile_pid)
chmod 600 "$CONF"
if rebuild "$v3"; then
	ok "rebuilt as $v3"
	timeout 300 dpkg -i "$tmp/deb/rtpproxyd_${v3}_$arch.deb" \
	    "$tmp/deb/rtpproxyctl_${v3}_$arch.deb" 9>&- > "$tmp/upgrade3.log" 2>&1
	rc=$?
	sed 's/^/upgrade, no takeover: /' "$tmp/upgrade3.log" | tee -a "$LOG"
	after=$(pidfile_pid)
	check "dpkg -i $v3 with $CONF unreadable for rtpproxyd (exit $rc)" \
	    test "$rc" -eq 0
	check "postinst said the lossless restart failed" \
	    grep -q 'no restart without loss' "$tmp/upgrade3.log"
	check "and restarted: a new master ($before -> $after)" \
	    test -n "$after" -a "$after" != "$before"
	check "which runs the new binary" test "$(readlink \
	    "/proc/$after/exe" 2>/dev/null)" = /usr/sbin/rtpproxyd
	check "and nothing runs the replaced one" \
	    sh -c '! readlink /proc/[0-9]*/exe 2>/dev/null |
	    grep -qx "/usr/sbin/rtpproxyd (deleted)"'
else
	nok "rebuilt as $v3"
	show "$tmp/build-$v3.log"
fi
chmod 644 "$CONF"

# --- remove, purge ------------------------------------------------------------

phase "remove, purge"
procs=$(daemon_pids)
if timeout 300 dpkg -r rtpproxyd rtpproxyctl 9>&- > "$tmp/remove.log" 2>&1; then
	ok "dpkg -r rtpproxyd rtpproxyctl"
else
	nok "dpkg -r rtpproxyd rtpproxyctl"
	show "$tmp/remove.log"
fi
sed 's/^/dpkg -r: /' "$tmp/remove.log" >> "$LOG"
left=
for p in $procs; do
	gone "$p" 60 || left="$left $p"
done
check "remove stopped the daemon, workers too (left:${left:- none})" \
    test -z "$left"
check "remove kept $CONF, with our change" \
    grep -q '^allow-destination 127.0.0.0/8   # check-deb$' "$CONF"
check "remove kept the user rtpproxyd" \
    sh -c 'getent passwd rtpproxyd > /dev/null'
check "remove took /usr/sbin/rtpproxyd" test ! -e /usr/sbin/rtpproxyd
check "the stopped daemon removed its session table" \
    test ! -e /dev/shm/rtpproxyd
check "the stopped daemon removed its pid file" test ! -e "$PIDFILE"
# shellcheck disable=SC2016
check "rtpproxyd is config-files" test "$(dpkg-query -W \
    -f='${db:Status-Status}' rtpproxyd 2>/dev/null)" = config-files

phase "installing again where policy-rc.d forbids starting services"
policy_write 101
deb3="$tmp/deb/rtpproxyd_${v3}_$arch.deb $tmp/deb/rtpproxyctl_${v3}_$arch.deb"
# shellcheck disable=SC2086
if timeout 300 dpkg -i $deb3 9>&- > "$tmp/install3.log" 2>&1; then
	ok "dpkg -i $v3 over the kept configuration"
else
	nok "dpkg -i $v3 over the kept configuration"
	show "$tmp/install3.log"
fi
sed 's/^/dpkg -i, policy-rc.d 101: /' "$tmp/install3.log" >> "$LOG"
check "install started nothing (policy-rc.d said no)" \
    test -z "$(daemon_pids)" -a ! -e "$PIDFILE"
check "the kept $CONF is still ours" \
    grep -q '^allow-destination 127.0.0.0/8   # check-deb$' "$CONF"
policy_write 0

if timeout 300 dpkg -P rtpproxyd rtpproxyctl 9>&- > "$tmp/purge.log" 2>&1; then
	ok "dpkg -P rtpproxyd rtpproxyctl"
else
	nok "dpkg -P rtpproxyd rtpproxyctl"
	show "$tmp/purge.log"
fi
sed 's/^/dpkg -P: /' "$tmp/purge.log" >> "$LOG"
check "purge removed /etc/rtpproxyd" test ! -e /etc/rtpproxyd
check "purge removed the user rtpproxyd" sh -c '! getent passwd rtpproxyd'
check "purge removed the group rtpproxyd" sh -c '! getent group rtpproxyd'
check "purge removed /run/rtpproxyd" test ! -e /run/rtpproxyd
check "purge removed the boot links" \
    sh -c '! ls /etc/rc[0-6S].d/*rtpproxyd >/dev/null 2>&1'
# Nothing of ours left: the cleanup need not purge by force.
if [ -z "$(leftovers)" ]; then
	installed=no
fi
policy_restore
footprint > "$tmp/after"
if cmp -s "$tmp/before" "$tmp/after"; then
	ok "left on disk after purge: nothing (no path named *rtpproxy* in /etc /lib /usr /var, no user)"
else
	nok "left on disk after purge:"
	diff "$tmp/before" "$tmp/after" | sed -n 's/^> /	/p' | tee -a "$LOG"
fi

finish
