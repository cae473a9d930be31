#!/usr/bin/env python3
"""v5_sink: a NetFlow v5 collector that only keeps totals, for soak and fault tests.

tests/tools/v5_collector.py writes one JSON line per record, which is too slow for the
millions of flows a soak test exports. This one sums what arrived and rewrites a JSON file
of totals (atomically, at most every 0.2 s, and at exit):

  datagrams, records, packets, bytes   what arrived
  errors                               datagrams that are not well-formed v5
  seq_gaps, gap_flows                  forward jumps of the v5 sequence (= flows exported
                                       before the datagram), and the flows they skipped:
                                       flows lost on the way, counted exactly
  seq_resets                           backward jumps (a restarted exporter)
  state, idle                          "up"/"down"/"slow"; seconds since the last datagram

Faults on demand, so that one collector process keeps its sequence tracking across them:
  SIGUSR1  close the socket ("down": datagrams meet a closed port) / bind it again
  SIGUSR2  "slow" on/off: SO_RCVBUF cut to --slow-rcvbuf and --slow-sleep s per datagram,
           so the socket's queue overflows in the kernel

Stops on SIGTERM/SIGINT or after --duration seconds (a hard bound).
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct("!HHIIIIBBH")  # 24 bytes
COUNTS = struct.Struct("!II")          # packets, octets at offset 16 of a 48-byte record
RECORD_SIZE = 48


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True, help="JSON file of totals")
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--rcvbuf", type=int, default=32 << 20,
                    help="receive buffer (SO_RCVBUFFORCE when root)")
    ap.add_argument("--slow-rcvbuf", type=int, default=4096)
    ap.add_argument("--slow-sleep", type=float, default=0.02)
    args = ap.parse_args()

    flags = {"stop": False, "toggle_down": False, "toggle_slow": False}

    def on_stop(_s, _f):
        flags["stop"] = True

    def on_usr1(_s, _f):
        flags["toggle_down"] = True

    def on_usr2(_s, _f):
        flags["toggle_slow"] = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGUSR2, on_usr2)

    def open_socket(rcvbuf):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((args.bind, args.port))
        s.settimeout(0.05)
        return s

    t = {"datagrams": 0, "records": 0, "packets": 0, "bytes": 0, "errors": 0,
         "seq_gaps": 0, "gap_flows": 0, "seq_resets": 0, "downs": 0, "slows": 0,
         "state": "up", "idle": 0.0, "rcvbuf": 0}
    sock = open_socket(args.rcvbuf)
    t["rcvbuf"] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    slow = False
    next_seq = None
    last_arrival = time.monotonic()
    last_write = 0.0
    dirty = True

    def write():
        t["idle"] = round(time.monotonic() - last_arrival, 3)
        tmp = args.out + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            json.dump(t, f)
        os.replace(tmp, args.out)

    print("ready", flush=True)
    deadline = time.monotonic() + args.duration
    while not flags["stop"] and time.monotonic() < deadline:
        if flags["toggle_down"]:
            flags["toggle_down"] = False
            if sock is not None:
                sock.close()
                sock = None
                t["state"] = "down"
                t["downs"] += 1
            else:
                sock = open_socket(args.slow_rcvbuf if slow else args.rcvbuf)
                t["state"] = "slow" if slow else "up"
            dirty = True
        if flags["toggle_slow"]:
            flags["toggle_slow"] = False
            slow = not slow
            if slow:
                t["slows"] += 1
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                args.slow_rcvbuf if slow else args.rcvbuf)
                if not slow:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, 33, args.rcvbuf)
                    except OSError:
                        pass
                t["rcvbuf"] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
                t["state"] = "slow" if slow else "up"
            dirty = True
        now = time.monotonic()
        if dirty and now - last_write >= 0.2:
            write()
            last_write = now
            dirty = False
        if sock is None:
            time.sleep(0.02)
            continue
        try:
            data = sock.recv(65535)
        except (socket.timeout, InterruptedError):
            if now - last_write >= 0.2:  # keep "idle" fresh
                write()
                last_write = now
            continue
        last_arrival = time.monotonic()
        dirty = True
        t["datagrams"] += 1
        if len(data) < HEADER.size:
            t["errors"] += 1
            continue
        version, count, _up, _s, _ns, seq, _et, _eid, _samp = HEADER.unpack_from(data)
        if version != 5 or count == 0 or count > 30 or len(data) != HEADER.size + count * RECORD_SIZE:
            t["errors"] += 1
            continue
        if next_seq is not None and seq != next_seq:
            jump = (seq - next_seq) & 0xFFFFFFFF
            if jump < 0x80000000:
                t["seq_gaps"] += 1
                t["gap_flows"] += jump
            else:
                t["seq_resets"] += 1
        next_seq = (seq + count) & 0xFFFFFFFF
        t["records"] += count
        off = HEADER.size + 16
        for _ in range(count):
            p, b = COUNTS.unpack_from(data, off)
            t["packets"] += p
            t["bytes"] += b
            off += RECORD_SIZE
        if slow:
            time.sleep(args.slow_sleep)
    write()
    print(json.dumps(t), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
