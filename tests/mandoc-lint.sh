#!/bin/sh
# The man pages as built (paths substituted): mandoc -Tlint -W warning must
# be silent, and each page must have the sections every page needs.
# mandoc is a declared build dependency, so its absence is a failure.

top_builddir=${top_builddir:-.}
MAKE=${MAKE:-make}
PAGES="man/rtpproxyd.8 man/rtpproxyd.conf.5 man/rtpproxyctl.1"

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

if ! command -v mandoc >/dev/null 2>&1; then
	nok "mandoc not found (apt-get install mandoc)"
	finish
fi

for page in $PAGES; do
	# shellcheck disable=SC2086
	if ! [ -f "$top_builddir/$page" ] &&
	    ! $MAKE -C "$top_builddir" "$page" >/dev/null 2>&1; then
		nok "$page: not built"
		continue
	fi
	f=$top_builddir/$page

	out=$(mandoc -Tlint -W warning "$f" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
		ok "$page: mandoc -Tlint -W warning"
	else
		nok "$page: mandoc -Tlint -W warning (exit $rc)"
		printf '%s\n' "$out" | sed 's/^/	/'
	fi

	for sec in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
		if grep -q "^\.Sh $sec\$" "$f"; then
			ok "$page: section $sec"
		else
			nok "$page: section $sec missing"
		fi
	done

	# Every @word@ must have been substituted at make time.
	if grep -n '@[a-zA-Z_]*@' "$f" >/dev/null; then
		nok "$page: unsubstituted variables:"
		grep -n '@[a-zA-Z_]*@' "$f" | sed 's/^/	/'
	else
		ok "$page: paths substituted"
	fi

	if grep -n -i -E 'FIXME|TODO|XXX' "$f" >/dev/null; then
		nok "$page: FIXME, TODO or XXX left in"
	else
		ok "$page: no FIXME"
	fi
done

finish
