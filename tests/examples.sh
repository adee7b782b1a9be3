#!/bin/sh
# The usage examples of the documentation, run for real.
#
# Every command line that starts with "rtpproxyctl" in README.md (indented
# code) and in the EXAMPLES sections of the man pages (.Bd -literal blocks)
# runs, in document order, against a daemon started here on a private
# configuration, and must exit 0.  What a reader is meant to replace is
# replaced: the server (-s is inserted), the session identifier placeholder
# ID (the last session created), addresses of the documentation prefixes
# (RFC 5737, RFC 3849: loopback), @runstatedir@ (the scratch directory, where
# the daemon also listens on a Unix-domain socket).  watch gets -c 1 when
# no count is given, runs 3 s and may be stopped then.
#
# grpcurl is not packaged in Debian, so its examples are not run: the JSON
# of each -d must parse, name only fields of the method's request message in
# proto/rtpproxy.proto, with values of the right kind, and the method must
# be in the service.
#
# Exit 0 if every example passed, 1 otherwise.  Everything it starts and
# creates goes at exit.

# Functions called through trap look unreachable to shellcheck.
# shellcheck disable=SC2317

top_srcdir=${top_srcdir:-$(dirname "$0")/..}
top_builddir=${top_builddir:-.}
RTPPROXYD=${RTPPROXYD:-$top_builddir/src/rtpproxyd}
RTPPROXYCTL=${RTPPROXYCTL:-$top_builddir/src/rtpproxyctl}
PROTO=$top_srcdir/proto/rtpproxy.proto
DOCS="README.md man/rtpproxyctl.1.in man/rtpproxyd.8.in man/rtpproxyd.conf.5.in"

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

finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}

# Indent a file's lines under a FAIL line.
show() {
	[ -s "$1" ] && sed 's/^/	/' "$1"
	return 0
}

for t in python3 timeout awk; do
	if ! command -v "$t" >/dev/null 2>&1; then
		nok "$t not found"
		finish
	fi
done
for b in "$RTPPROXYD" "$RTPPROXYCTL"; do
	if ! [ -x "$b" ]; then
		nok "$b: not built"
		finish
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rtpproxyd-examples.XXXXXX") || {
	nok "mktemp"
	finish
}
shm=/rtpproxyd-examples-$$
dpid=

stop_daemon() {
	[ -n "$dpid" ] || return 0
	if kill -TERM "$dpid" 2>/dev/null; then
		i=0
		while kill -0 "$dpid" 2>/dev/null && [ "$i" -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$dpid" 2>/dev/null
	fi
	wait "$dpid" 2>/dev/null
	dpid=
	# After a SIGKILL the table is left behind.
	rm -f "/dev/shm${shm}"
}

cleanup() {
	stop_daemon
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# --- the daemon --------------------------------------------------------------

# A media port range of its own: 47200-49999 in blocks of 200.
pmin=$((47200 + ($$ % 14) * 200))
pmax=$((pmin + 199))
sock=$tmp/rtpproxyd/api.sock
mkdir -p "$tmp/rtpproxyd"
log=$tmp/rtpproxyd.log

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# start_daemon: 0 once "all 1 workers ready" is logged (within 10 s), 1 if
# the daemon died or took too long.
start_daemon() {
	port=$(free_port) || return 1
	server=127.0.0.1:$port
	cat >"$tmp/rtpproxyd.conf" <<EOF
listen $server
listen unix:$sock
workers 1
port-range $pmin $pmax
shm-name $shm
pidfile none
max-sessions 100
allow-destination 127.0.0.0/8 ::1
recording-dir $tmp/recordings
EOF
	mkdir -p "$tmp/recordings"
	"$RTPPROXYD" -f -c "$tmp/rtpproxyd.conf" </dev/null >/dev/null \
	    2>"$log" &
	dpid=$!
	i=0
	while [ "$i" -lt 100 ]; do
		grep -q 'all 1 workers ready' "$log" && return 0
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	stop_daemon
	return 1
}

# The API port may be taken between choosing and binding it: try again.
started=no
for attempt in 1 2 3; do
	if start_daemon; then
		started=yes
		break
	fi
	echo "# daemon start, attempt $attempt, failed:"
	show "$log"
done
if [ "$started" = yes ]; then
	ok "rtpproxyd started on $server (media ports $pmin-$pmax)"
else
	nok "rtpproxyd did not start"
	finish
fi

# Can the documentation's IPv6 examples run here (on ::1)?
if python3 -c 'import socket
socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))' \
    2>/dev/null; then
	have_ipv6=yes
else
	have_ipv6=no
fi

# --- the examples ------------------------------------------------------------

# extract FILE: one line per example command, "LINE<TAB>COMMAND", with
# continuation lines (a trailing backslash, or an open single quote)
# joined.  README.md: indented or fenced code; a man page: .Bd -literal
# blocks in EXAMPLES, mdoc escapes undone.  A "$ " or "# " prompt goes.
cat >"$tmp/extract.awk" <<'EOF'
function unescape(s,    out, c, n) {
	out = ""
	while ((n = index(s, "\\")) > 0) {
		out = out substr(s, 1, n - 1)
		c = substr(s, n + 1, 1)
		if (c == "e" || c == "\\") {
			out = out "\\"; s = substr(s, n + 2)
		} else if (c == "-") {
			out = out "-"; s = substr(s, n + 2)
		} else if (c == "&") {
			s = substr(s, n + 2)
		} else if (c == "(") {
			c = substr(s, n + 2, 2)
			if (c == "aq") out = out "'"
			else if (c == "dq") out = out "\""
			else if (c == "ga") out = out "`"
			else if (c == "ti") out = out "~"
			else if (c == "ha") out = out "^"
			else out = out "\\(" c
			s = substr(s, n + 4)
		} else {
			out = out "\\" c; s = substr(s, n + 2)
		}
	}
	return out s
}
function squotes(s) {
	return gsub(/'/, "'", s)
}
# A command is complete when its single quotes are closed and it does not
# end in a backslash.
function complete(s) {
	return squotes(s) % 2 == 0 && s !~ /\\$/
}
# One line of code: start or continue a command.
function code(s, lineno) {
	if (cmd != "") {
		# As sh reads it: a backslash-newline goes; a newline inside
		# single quotes stays (here a blank).
		if (squotes(cmd) % 2 == 0)
			sub(/\\$/, "", cmd)
		else
			cmd = cmd " "
		cmd = cmd s
		if (complete(cmd))
			flush()
		return
	}
	sub(/^[ \t]+/, "", s)
	sub(/^[$#] +/, "", s)
	if (s ~ /^(rtpproxyctl|grpcurl)([ \t]|$)/) {
		cmd = s
		cmdline = lineno
		if (complete(cmd))
			flush()
	}
}
function flush() {
	if (cmd != "") {
		gsub(/\t/, " ", cmd)
		print cmdline "\t" cmd
	}
	cmd = ""
}
FNR == 1 { man = FILENAME !~ /\.md$/; cmd = "" }
man && /^\.Sh / {
	flush(); inex = ($0 ~ /^\.Sh +"?EXAMPLES"?[ \t]*$/); inbd = 0; next
}
man && inex && /^\.Bd .*-literal/ { flush(); inbd = 1; next }
man && /^\.Ed/ { flush(); inbd = 0; next }
man && inex && inbd {
	if ($0 ~ /^\.\\"/) next
	if ($0 ~ /^[.']/) { flush(); next }
	code(unescape($0), FNR)
	next
}
man { next }
# Markdown.
/^[ \t]*(```|~~~)/ { flush(); fenced = !fenced; next }
fenced { code($0, FNR); next }
/^[ \t]*$/ { blank = 1; next }
/^(    |\t)/ && (blank || incode) { incode = 1; blank = 0; code($0, FNR); next }
{ flush(); incode = 0; blank = 0 }
END { flush() }
EOF

# The grpcurl check: argv[1] the .proto, argv[2] the command.  Prints one
# line; exit 0 passed, 1 failed, 2 nothing to check (no -d, not our API).
cat >"$tmp/grpcurl_check.py" <<'EOF'
import json, re, shlex, sys

proto_path, cmd = sys.argv[1], sys.argv[2]
try:
    src = open(proto_path, encoding="utf-8").read()
except OSError as e:
    print("cannot read %s: %s" % (proto_path, e))
    sys.exit(1)
src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
src = re.sub(r"//[^\n]*", " ", src)
m = re.search(r"\bpackage\s+([\w.]+)\s*;", src)
package = m.group(1) if m else ""

SCALARS = {"double", "float", "int32", "int64", "uint32", "uint64",
           "sint32", "sint64", "fixed32", "fixed64", "sfixed32",
           "sfixed64", "bool", "string", "bytes"}
messages = {}   # name -> {field: (label, type)}
enums = {}      # name -> set of value names
services = {}   # qualified name -> {method: (request, client_streaming)}


def block_end(text, start):
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return len(text)


def parse(text):
    """Message, enum and service blocks; nested ones by their own name."""
    pos = 0
    head = re.compile(r"\b(message|enum|service|oneof)\s+(\w+)\s*\{")
    while True:
        m = head.search(text, pos)
        if not m:
            return
        end = block_end(text, m.end() - 1)
        body = text[m.end():end]
        kind, name = m.group(1), m.group(2)
        if kind == "message":
            own = body
            for n in head.finditer(body):
                if n.group(1) in ("message", "enum"):
                    e = block_end(body, n.end() - 1)
                    own = own.replace(body[n.start():e + 1], " ")
            fields = {}
            for f in re.finditer(r"(?:\b(repeated|optional)\s+)?"
                                 r"(map\s*<\s*[\w.]+\s*,\s*[\w.]+\s*>|[\w.]+)"
                                 r"\s+(\w+)\s*=\s*\d+", own):
                if f.group(2) in ("option", "reserved", "extensions"):
                    continue
                fields[f.group(3)] = (f.group(1) or "", f.group(2))
            messages[name] = fields
            parse(body)
        elif kind == "enum":
            enums[name] = set(re.findall(r"\b(\w+)\s*=\s*-?\d+", body))
        elif kind == "service":
            methods = {}
            for r in re.finditer(r"\brpc\s+(\w+)\s*\(\s*(stream\s+)?"
                                 r"([\w.]+)\s*\)", body):
                methods[r.group(1)] = (r.group(3), bool(r.group(2)))
            services[(package + "." if package else "") + name] = methods
        pos = end + 1


parse(src)


def camel(name):
    parts = name.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def is_int(v):
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    if isinstance(v, float):
        return v.is_integer()
    return isinstance(v, str) and re.fullmatch(r"-?\d+", v) is not None


def check_value(path, typ, label, v, errors):
    if v is None:
        return
    if label == "repeated":
        if not isinstance(v, list):
            errors.append("%s: repeated field needs a JSON array" % path)
            return
        for i, e in enumerate(v):
            check_value("%s[%d]" % (path, i), typ, "", e, errors)
        return
    if typ.startswith("map"):
        if not isinstance(v, dict):
            errors.append("%s: map field needs a JSON object" % path)
        return
    t = typ.split(".")[-1]
    if typ in SCALARS:
        if typ == "string" or typ == "bytes":
            good = isinstance(v, str)
        elif typ == "bool":
            good = isinstance(v, bool)
        elif typ in ("double", "float"):
            good = (not isinstance(v, bool) and
                    isinstance(v, (int, float, str)))
        else:
            good = is_int(v) and not (typ.startswith(("uint", "fixed")) and
                                      int(v) < 0)
        if not good:
            errors.append("%s: %s is not a valid %s" % (path, json.dumps(v),
                                                        typ))
    elif t in enums:
        if not (is_int(v) or (isinstance(v, str) and v in enums[t])):
            errors.append("%s: %s is not a value of enum %s (%s)" % (
                path, json.dumps(v), t, ", ".join(sorted(enums[t]))))
    elif t in messages:
        check_message(path, t, v, errors)
    else:
        errors.append("%s: type %s not found in %s" % (path, typ,
                                                       proto_path))


def check_message(path, name, obj, errors):
    if not isinstance(obj, dict):
        errors.append("%s: %s needs a JSON object" % (path or "-d", name))
        return
    fields = messages[name]
    for key, v in obj.items():
        fname = next((f for f in fields if key in (f, camel(f))), None)
        where = (path + "." if path else "") + key
        if fname is None:
            errors.append("%s: no field %r in message %s (fields: %s)" % (
                where, key, name, ", ".join(fields)))
            continue
        label, typ = fields[fname]
        check_value(where, typ, label, v, errors)


try:
    words = shlex.split(cmd)
except ValueError as e:
    print("cannot split the command as a shell would: %s" % e)
    sys.exit(1)
data = None
method = None
i = 1
while i < len(words):
    w = words[i]
    if w in ("-d", "--d"):
        if i + 1 < len(words):
            data = words[i + 1]
        i += 2
        continue
    if w.startswith(("-d=", "--d=")):
        data = w.split("=", 1)[1]
    elif re.fullmatch(r"[\w.]+/\w+", w):
        method = w
    i += 1

if method is None:
    print("names no method")
    sys.exit(2)
service, rpc = method.split("/")
if service not in services:
    if data is None:
        print("%s is not a service of %s" % (service, proto_path))
        sys.exit(2)
    try:
        json.loads(data)
    except ValueError as e:
        print("-d is not JSON: %s" % e)
        sys.exit(1)
    print("-d is JSON (%s is not in %s)" % (service, proto_path))
    sys.exit(0)
if rpc not in services[service]:
    print("%s: no method %s in service %s (methods: %s)" % (
        method, rpc, service, ", ".join(services[service])))
    sys.exit(1)
request = services[service][rpc][0].split(".")[-1]
if data is None:
    print("%s exists; no -d to check" % rpc)
    sys.exit(0)
if data.startswith("@"):
    print("-d %s reads stdin: cannot check" % data)
    sys.exit(1)
try:
    obj = json.loads(data)
except ValueError as e:
    print("-d is not JSON: %s" % e)
    sys.exit(1)
if request not in messages:
    print("request message %s not found" % request)
    sys.exit(1)
errors = []
check_message("", request, obj, errors)
if errors:
    print("-d does not match %s: %s" % (request, "; ".join(errors)))
    sys.exit(1)
print("-d matches %s" % request)
sys.exit(0)
EOF

# Exit status that the documentation says an example has; 0 unless the
# text around it presents it as failing on purpose (none does today).
# Arguments: the document and the command as written.
expected_rc() {
	echo 0
}

# Map an argument of the documentation to this test's daemon.
map_arg() {
	printf '%s\n' "$1" | sed -E \
	    -e 's|@runstatedir@|'"$tmp"'|g' \
	    -e 's/\[2001:[dD][bB]8:[0-9a-fA-F:.]*\]/[::1]/g' \
	    -e 's/(^|[^0-9a-fA-F:])2001:[dD][bB]8:[0-9a-fA-F:.]*/\1::1/g' \
	    -e 's/(^|[^0-9.])(192\.0\.2|198\.51\.100|203\.0\.113)\.[0-9]{1,3}/\1127.0.0.1/g'
}

last_id=
subscribed() {
	grep -c 'subscribed to the events of' "$log"
}

# run_ctl WHERE COMMAND: run one rtpproxyctl example.
run_ctl() {
	where=$1
	doc=$2
	# Shown with runs of blanks squeezed; run as written.
	shown=$(printf '%s\n' "$doc" | tr -s ' ')
	if ! (eval "set -- $doc") 2>"$tmp/err"; then
		nok "$where: $shown: not a shell command line"
		show "$tmp/err"
		return
	fi
	eval "set -- $doc"
	shift			# rtpproxyctl
	v6=no
	placeholder=no
	is_watch=no
	has_count=no
	cmdseen=no
	optarg=no
	for a do
		shift
		case $a in
		*2001:[dD][bB]8:*) v6=yes ;;
		esac
		if [ "$optarg" = yes ]; then
			optarg=no
		elif [ "$cmdseen" = no ]; then
			case $a in
			-s|-t|-[!-]*[st]) optarg=yes ;;
			-*) ;;
			watch) is_watch=yes; cmdseen=yes ;;
			*) cmdseen=yes ;;
			esac
		elif [ "$is_watch" = yes ]; then
			case $a in
			-c*|--count|--count=*) has_count=yes ;;
			esac
		fi
		if [ "$a" = ID ]; then
			placeholder=yes
			a=$last_id
		else
			a=$(map_arg "$a")
		fi
		set -- "$@" "$a"
	done
	if [ "$placeholder" = yes ] && [ -z "$last_id" ]; then
		nok "$where: $shown: ID, but no session was created before"
		return
	fi
	if [ "$v6" = yes ] && [ "$have_ipv6" = no ]; then
		echo "SKIP: $where: $shown: no IPv6 loopback here"
		return
	fi
	if [ "$is_watch" = yes ]; then
		[ "$has_count" = yes ] || set -- "$@" -c 1
		limit=3
		before=$(subscribed)
	else
		limit=10
	fi
	set -- -s "$server" "$@"
	timeout "$limit" "$RTPPROXYCTL" "$@" </dev/null >"$tmp/out" \
	    2>"$tmp/err"
	rc=$?
	want=$(expected_rc "$where" "$doc")
	ran="rtpproxyctl $*"
	if [ "$is_watch" = yes ]; then
		after=$(subscribed)
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then
			nok "$where: $shown: exit $rc, expected 0 (ran: $ran)"
			show "$tmp/err"
		elif [ "$after" -le "$before" ]; then
			nok "$where: $shown: the daemon logged no subscriber" \
			    "(ran: $ran)"
			show "$tmp/err"
		elif [ "$rc" -eq 124 ]; then
			ok "$where: $shown (streamed for ${limit} s)"
		else
			ok "$where: $shown"
		fi
		return
	fi
	if [ "$rc" -ne "$want" ]; then
		nok "$where: $shown: exit $rc, expected $want (ran: $ran)"
		show "$tmp/out"
		show "$tmp/err"
		return
	fi
	ok "$where: $shown"
	# A session made: the one ID stands for from now on.
	case " $* " in
	*" create "*)
		id=$(sed -n 's/^session  *\([^ ]*\)$/\1/p' "$tmp/out" | head -n 1)
		[ -n "$id" ] || id=$(sed -n \
		    's/^{"session_id":"\([^"]*\)".*/\1/p' "$tmp/out" | head -n 1)
		[ -n "$id" ] && last_id=$id
		;;
	esac
}

# check_grpcurl WHERE COMMAND
check_grpcurl() {
	shown=$(printf '%s\n' "$2" | tr -s ' ')
	msg=$(python3 "$tmp/grpcurl_check.py" "$PROTO" "$2" 2>&1)
	case $? in
	0) ok "$1: $shown: $msg"; grpc_checked=$((grpc_checked + 1)) ;;
	2) echo "SKIP: $1: $shown: $msg" ;;
	*) nok "$1: $shown: $msg"; grpc_checked=$((grpc_checked + 1)) ;;
	esac
}

total_ctl=0
total_grpc=0
grpc_checked=0
for d in $DOCS; do
	f=$top_srcdir/$d
	if ! [ -f "$f" ]; then
		nok "$d: missing"
		continue
	fi
	if ! awk -f "$tmp/extract.awk" "$f" >"$tmp/examples" 2>"$tmp/err"; then
		nok "$d: cannot extract the examples"
		show "$tmp/err"
		continue
	fi
	n=0
	tab=$(printf '\t')
	while IFS=$tab read -r line cmd; do
		case $cmd in
		rtpproxyctl*)
			n=$((n + 1))
			run_ctl "$d:$line" "$cmd"
			;;
		grpcurl*)
			total_grpc=$((total_grpc + 1))
			check_grpcurl "$d:$line" "$cmd"
			;;
		esac
	done <"$tmp/examples"
	total_ctl=$((total_ctl + n))
	# The pages that show rtpproxyctl must still be found to.
	case $d in
	README.md|man/rtpproxyctl.1.in|man/rtpproxyd.8.in)
		if [ "$n" -gt 0 ]; then
			ok "$d: $n rtpproxyctl examples found"
		else
			nok "$d: no rtpproxyctl example found (extraction broken?)"
		fi
		;;
	esac
done
if [ "$grpc_checked" -gt 0 ]; then
	ok "$total_grpc grpcurl examples found, $grpc_checked checked"
else
	nok "no grpcurl example to check found (extraction broken?)"
fi

# The daemon must have lived through it all.
if kill -0 "$dpid" 2>/dev/null; then
	ok "rtpproxyd still running after $total_ctl examples"
else
	nok "rtpproxyd died during the examples"
	show "$log"
fi

finish
