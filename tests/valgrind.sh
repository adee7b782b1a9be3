#!/bin/sh
# Run a test program, or the daemon, under valgrind.  The daemon and its
# workers are checked for leaks as well as memory errors; test programs for
# memory errors (their own bookkeeping is not the thing under test).
supp="$(dirname "$0")/valgrind.supp"
case "$(basename "$1")" in
rtpproxyd|lt-rtpproxyd)
	exec valgrind --quiet --error-exitcode=99 --trace-children=yes \
	    --leak-check=full --show-leak-kinds=definite,indirect \
	    --errors-for-leak-kinds=definite,indirect \
	    --suppressions="$supp" "$@"
	;;
*)
	CK_DEFAULT_TIMEOUT=600 exec valgrind --quiet --error-exitcode=99 \
	    --trace-children=no --leak-check=no \
	    --suppressions="$supp" "$@"
	;;
esac
