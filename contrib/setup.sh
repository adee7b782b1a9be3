#!/bin/sh
# Build rtpproxyd from a fresh checkout in one step:
#
#   ./contrib/setup.sh [configure options]
#
# installs the Debian packages it needs (contrib/install-deps.sh, through
# sudo when not root), generates the build system when configure is missing
# or older than configure.ac or Makefile.am, runs ./configure when it has
# not run yet (or with the options given), and runs make.  Each step that
# is already done is skipped, so it is safe to run again.
set -eu

cd "$(dirname "$0")/.."
top=$(pwd)
prog=setup.sh

# Is file $1 newer than file $2?  (test -nt is not POSIX.)
newer() {
	[ -n "$(find "$1" -prune -newer "$2" 2>/dev/null)" ]
}

run() {
	echo "$prog: $*"
	"$@"
}

# 1. Packages.
if "$top/contrib/install-deps.sh" --check >/dev/null 2>&1; then
	echo "$prog: build dependencies already installed"
elif [ "$(id -u)" -eq 0 ]; then
	run "$top/contrib/install-deps.sh"
elif command -v sudo >/dev/null 2>&1; then
	run sudo "$top/contrib/install-deps.sh"
else
	"$top/contrib/install-deps.sh" --check || true
	echo "$prog: run contrib/install-deps.sh as root first" >&2
	exit 1
fi

# 2. The build system.
if [ ! -x configure ] || newer configure.ac configure ||
    newer Makefile.am configure; then
	run autoreconf -fi
else
	echo "$prog: configure is up to date"
fi

# 3. Configure: when it never ran, when it is newer than its last run, or
# when options are given.
if [ $# -gt 0 ] || [ ! -f config.status ] || [ ! -f Makefile ] ||
    newer configure config.status; then
	run ./configure "$@"
else
	echo "$prog: already configured (pass options to configure again)"
fi

# 4. Build.
jobs=$(nproc 2>/dev/null || echo 1)
run make -j"$jobs"
echo "$prog: built src/rtpproxyd and src/rtpproxyctl"
