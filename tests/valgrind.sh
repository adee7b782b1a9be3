#!/bin/sh
# Run a test program, or the daemon, under valgrind.  The daemon and its
# workers are checked for leaks as well as memory errors; test programs for
# memory errors (their own bookkeeping is not the thing under test).
# --vgdb=no: no gdbserver files in /tmp, which are named by pid; a daemon
# that runs as nobody could not replace the stale ones of a killed root
# process that had its pid, and valgrind would exit at start.
supp="$(dirname "$0")/valgrind.supp"
case "$(basename "$1")" in
rtpproxyd|lt-rtpproxyd)
	exec valgrind --quiet --vgdb=no --error-exitcode=99 --trace-children=yes \
	    --leak-check=full --show-leak-kinds=definite,indirect \
	    --errors-for-leak-kinds=definite,indirect \
	    --suppressions="$supp" "$@"
	;;
*)
	CK_DEFAULT_TIMEOUT=600 exec valgrind --quiet --vgdb=no --error-exitcode=99 \
	    --trace-children=no --leak-check=no \
	    --suppressions="$supp" "$@"
	;;
esac
