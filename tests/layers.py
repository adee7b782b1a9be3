#!/usr/bin/env python3
"""The shape of the code, checked on the objects as built (doc/ARCHITECTURE,
section 2): a file never calls a function of a higher layer by name, the
worker and the sessions layer do not call each other, and no two files call
each other, directly or round a circle.  It reads what each object file
defines and what it needs with nm(1); a call through a function pointer is
not a call by name, which is the point."""

import collections
import glob
import os
import subprocess
import sys

# Lower numbers are lower layers.  Equal numbers in different areas are
# strangers: neither may call the other.
# kfwd (the kernel fast path's loader and map) is over common, under the
# worker and the master that use it.  repl (sessions in Redis) is beside
# the API: the master calls both, and they reach each other only through
# the pointers the master gives.
RANK = {"shm": 0, "common": 1, "kfwd": 1.5, "worker": 2, "sessions": 2,
        "api": 3, "repl": 3, "master": 4, "ctl": 5, "main": 6}

top = os.environ.get("top_builddir", ".")


def area(path):
    rel = os.path.relpath(path, top)
    parts = rel.split(os.sep)
    if parts[0] == "shm":
        return "shm"
    if parts[0] == "src" and len(parts) == 3:
        return parts[1]
    return "main"


def symbols(obj):
    out = subprocess.run(["nm", obj], check=True, capture_output=True,
                         text=True).stdout
    defined, needed = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] == "T":
            defined.add(f[2])
        elif len(f) == 2 and f[0] == "U":
            needed.add(f[1])
    return defined, needed


def main():
    objs = sorted(glob.glob(os.path.join(top, "src", "*", "*.o")) +
                  glob.glob(os.path.join(top, "shm", "*.o")) +
                  glob.glob(os.path.join(top, "src", "main.o")))
    passed = failed = 0
    # The fuzz and test builds compile the same sources into objects of
    # their own; only the daemon's and rtpproxyctl's count here.
    objs = [o for o in objs if "-" not in os.path.basename(o)]
    if len(objs) < 20:
        print("FAIL: only %d object files under %s/src: build first" %
              (len(objs), top))
        print("0 passed, 1 failed")
        return 1

    owner, needs = {}, {}
    for o in objs:
        defined, needed = symbols(o)
        needs[o] = needed
        for s in defined:
            owner[s] = o
    calls = collections.defaultdict(set)
    for o, needed in needs.items():
        for s in needed:
            t = owner.get(s)
            if t is not None and t != o:
                calls[o].add(t)

    def names(a, b):
        return " ".join(sorted(s for s in needs[a] if owner.get(s) == b)[:5])

    bad = []
    for o in sorted(calls):
        for t in sorted(calls[o]):
            a, b = area(o), area(t)
            if a != b and RANK[b] >= RANK[a]:
                bad.append("%s (%s) calls %s (%s): %s" %
                           (os.path.relpath(o, top), a,
                            os.path.relpath(t, top), b, names(o, t)))
    if bad:
        failed += 1
        print("FAIL: calls up or across layers:")
        for line in bad:
            print("  " + line)
    else:
        passed += 1
        print("PASS: no call up or across layers (%d files)" % len(objs))

    def reaches(start):
        seen, todo = set(), [start]
        while todo:
            for y in calls.get(todo.pop(), ()):
                if y not in seen:
                    seen.add(y)
                    todo.append(y)
        return seen

    circles = set()
    for o in calls:
        for t in calls[o]:
            if o in reaches(t):
                circles.add(tuple(sorted((os.path.relpath(o, top),
                                          os.path.relpath(t, top)))))
    if circles:
        failed += 1
        print("FAIL: files that call each other, directly or round a circle:")
        for a, b in sorted(circles):
            print("  %s <-> %s" % (a, b))
    else:
        passed += 1
        print("PASS: no circle between files")
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
