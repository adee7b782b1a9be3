#!/bin/sh
# Install the Debian/Ubuntu packages that building, testing and documenting
# rtpproxyd need, and building and checking its Debian packages (make deb,
# make check-deb).  Run as root.  Safe to run again: when every package is
# already installed it changes nothing and needs no network.
#
#   contrib/install-deps.sh          install what is missing
#   contrib/install-deps.sh --check  only say what is missing (exit 1 if any)
set -eu

PACKAGES="build-essential autoconf automake pkg-config libevent-dev
libgrpc-dev protobuf-c-compiler libprotobuf-c-dev grpc-proto check
valgrind mandoc procps iproute2 shellcheck python3 openssl libssl-dev prometheus
clang libclang-rt-14-dev liburing-dev bpftool libbpf-dev libhiredis-dev redis-server
tshark
dpkg-dev debhelper dh-autoreconf lintian adduser"

prog=${0##*/}

check_only=no
case ${1-} in
'')		;;
-c|--check)	check_only=yes ;;
*)		echo "usage: $prog [--check]" >&2; exit 64 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1 ||
    ! command -v apt-get >/dev/null 2>&1; then
	echo "$prog: needs dpkg and apt-get (Debian or Ubuntu); install the" \
	    "equivalents of these packages by hand:" >&2
	# shellcheck disable=SC2086
	printf '  %s\n' $PACKAGES >&2
	exit 1
fi

missing=
for p in $PACKAGES; do
	# shellcheck disable=SC2016
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) ||
	    status=
	[ "$status" = installed ] || missing="$missing $p"
done
missing=${missing# }

if [ -z "$missing" ]; then
	echo "$prog: all build dependencies are installed"
	exit 0
fi
if [ "$check_only" = yes ]; then
	echo "$prog: missing packages: $missing"
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "$prog: must run as root to install: $missing" >&2
	echo "$prog: try: sudo $0" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "$prog: apt-get update"
apt-get update
echo "$prog: apt-get install $missing"
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing
echo "$prog: done"
