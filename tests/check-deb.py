#!/usr/bin/env python3
"""Media through rtpproxyd sessions while tests/check-deb.sh upgrades the
package: make NSESS sessions with rtpproxyctl, each from a caller socket
to a destination socket on loopback, send RTP both ways (the destination
echoes what it gets) until STOPFILE appears, and write what was sent and
received to OUTFILE as JSON.  STATEFILE gets "flowing" once media went
both ways on every session.  Once MARKFILE appears (the upgrade is done),
the packets sent from then on are counted as they come back; MARKFILE.seen
appears once every session got AFTER_N of them back: by count, not time,
so that a slow machine only makes it later.

  check-deb.py RTPPROXYCTL NSESS OUTFILE STATEFILE STOPFILE MARKFILE
"""
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

PPS = 100               # per session and direction
PAYLOAD = b"\x55" * 160 # 20 ms of G.711
LIMIT_S = 600           # never run longer, whatever happens
DRAIN_S = 1.0           # after STOPFILE: what is in flight arrives
AFTER_N = 100           # packets back after MARKFILE, every session


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def create(ctl, sid, dport):
    # The daemon may still be reading a reload: retry for a while.
    deadline = time.monotonic() + 20
    while True:
        r = subprocess.run([ctl, "-j", "create", "-i", sid, "-l",
                            "127.0.0.1:0", "-d", "127.0.0.1:%d" % dport],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return json.loads(r.stdout)["listen"]["port"]
        if time.monotonic() > deadline:
            sys.exit("rtpproxyctl create %s: exit %d: %s" %
                     (sid, r.returncode, r.stderr.strip()))
        time.sleep(0.2)


def main():
    ctl, n, out, state, stop, mark = sys.argv[1:7]
    sess = []
    for i in range(int(n)):
        caller, dest = udp(), udp()
        sid = "check-deb-%d" % i
        lport = create(ctl, sid, dest.getsockname()[1])
        sess.append({"id": sid, "caller": caller, "dest": dest,
                     "to": ("127.0.0.1", lport), "ssrc": 0x10000 + i,
                     "seq": 0, "sent": 0, "fwd_seen": set(), "rev_sent": 0,
                     "rev_seen": set(), "last_fwd": None, "gap": 0.0,
                     "last_rev": None, "mark": None, "after": 0})
    by_fd = {}
    for s in sess:
        by_fd[s["caller"].fileno()] = (s, "caller")
        by_fd[s["dest"].fileno()] = (s, "dest")

    start = time.monotonic()
    tick = 1.0 / PPS
    next_send = start
    stopping = None
    flowing = False
    marked = False
    seen_after = False
    while True:
        now = time.monotonic()
        if now - start > LIMIT_S:
            break
        if stopping is None and os.path.exists(stop):
            stopping = now
        if not marked and os.path.exists(mark):
            marked = True
            for s in sess:
                s["mark"] = s["seq"]
        if stopping is not None and now - stopping > DRAIN_S:
            break
        if stopping is None and now >= next_send:
            for s in sess:
                s["seq"] = (s["seq"] + 1) & 0xffff
                hdr = struct.pack("!BBHII", 0x80, 0, s["seq"],
                                  s["sent"] * 160, s["ssrc"])
                try:
                    s["caller"].sendto(hdr + PAYLOAD, s["to"])
                    s["sent"] += 1
                except BlockingIOError:
                    pass
            # A late tick is not made up for: the rate only drops.
            next_send = max(next_send + tick, now)
        wait = max(0.0, min(next_send - time.monotonic(), 0.05))
        r, _, _ = select.select(list(by_fd), [], [], wait)
        for fd in r:
            s, side = by_fd[fd]
            sock = s[side]
            while True:
                try:
                    data, src = sock.recvfrom(2048)
                except BlockingIOError:
                    break
                if len(data) < 12:
                    continue
                seq = struct.unpack("!H", data[2:4])[0]
                t = time.monotonic()
                if side == "dest":
                    # Sequence numbers wrap after 655 s: longer than a run.
                    s["fwd_seen"].add(seq)
                    if s["last_fwd"] is not None:
                        s["gap"] = max(s["gap"], t - s["last_fwd"])
                    s["last_fwd"] = t
                    try:
                        sock.sendto(data, src)
                        s["rev_sent"] += 1
                    except BlockingIOError:
                        pass
                else:
                    s["rev_seen"].add(seq)
                    s["last_rev"] = t
                    if s["mark"] is not None and seq > s["mark"]:
                        s["after"] += 1
        if not flowing and all(len(s["rev_seen"]) >= 20 for s in sess):
            flowing = True
            with open(state + ".tmp", "w") as f:
                f.write("flowing\n")
            os.rename(state + ".tmp", state)
        if marked and not seen_after and \
                all(s["after"] >= AFTER_N for s in sess):
            seen_after = True
            with open(mark + ".seen", "w") as f:
                f.write("%d\n" % AFTER_N)

    end = stopping if stopping is not None else time.monotonic()
    res = []
    for s in sess:
        res.append({
            "id": s["id"], "sent": s["sent"],
            "received": len(s["fwd_seen"]), "rev_sent": s["rev_sent"],
            "rev_received": len(s["rev_seen"]),
            "max_gap_ms": round(s["gap"] * 1000, 1),
            "after_mark": s["after"],
            # How long before the stop the last packet came back.
            "quiet_at_end_ms": None if s["last_rev"] is None else
            round(max(0.0, end - s["last_rev"]) * 1000, 1),
        })
    with open(out + ".tmp", "w") as f:
        json.dump({"pps": PPS, "seconds": round(end - start, 1),
                   "after_n": AFTER_N,
                   "sessions": res}, f)
    os.rename(out + ".tmp", out)


if __name__ == "__main__":
    main()
