#!/usr/bin/env python3
"""churn_sender: UDP traffic that creates many distinct flows fast, for soak tests.

Each process owns --socks sockets bound to its own source ports and sends to --dst,
cycling the destination port over --dports (LO-HI): --procs x --socks x ports distinct
keys. A key comes back only once the whole space has been walked, so with a space larger
than rate x inactive_timeout every packet starts a new flow in the exporter. Every --hot-th
datagram goes instead to one of --hot-keys fixed ports from a separate socket: flows with
many packets, which end by active_timeout.

Bounded by --count (datagrams in all) and --max-seconds. --pps paces the total rate
(0: as fast as each process can). Prints "sent=N seconds=S pps=R" on exit.
"""
import argparse
import os
import socket
import sys
import time

# The fork-and-split helper is tests/tools/flow_sender.py's; no __pycache__ left in the tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from flow_sender import fork_split  # noqa: E402 (found through the path set just above)


def run_one(args, index, share, deadline, pps):
    lo, hi = (int(x) for x in args.dports.split("-"))
    ports = [(args.dst, p) for p in range(lo, hi + 1)]
    socks = []
    for k in range(args.socks):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", args.sport + index * args.socks + k))
        socks.append(s)
    hot = None
    hot_ports = []
    if args.hot > 0 and args.hot_keys > 0:
        hot = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        hot.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hot.bind(("0.0.0.0", args.hot_sport + index))
        hot_ports = [(args.dst, args.hot_dport + i) for i in range(args.hot_keys)]
    payload = b"c" * args.size
    sent = 0
    start = time.monotonic()
    nports = len(ports)
    # One step is one destination port on every socket, so consecutive datagrams differ.
    i = 0
    while sent < share:
        if sent & 255 == 0:
            now = time.monotonic()
            if now > deadline:
                break
            if pps > 0:
                ahead = sent / pps - (now - start)
                if ahead > 0:
                    time.sleep(min(ahead, 0.05))
        if hot is not None and sent % args.hot == args.hot - 1:
            try:
                hot.sendto(payload, hot_ports[(sent // args.hot) % len(hot_ports)])
            except OSError:  # ENOBUFS and the like: the datagram never left
                pass
            else:
                sent += 1
            continue
        addr = ports[(i // len(socks)) % nports]
        s = socks[i % len(socks)]
        i += 1
        try:
            s.sendto(payload, addr)
        except OSError:
            continue
        sent += 1
    return sent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dst", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--max-seconds", type=float, required=True)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--socks", type=int, default=8, help="source ports per process")
    ap.add_argument("--sport", type=int, default=30000)
    ap.add_argument("--dports", default="1024-65535")
    ap.add_argument("--pps", type=float, default=0.0, help="total rate; 0 = unpaced")
    ap.add_argument("--size", type=int, default=18, help="UDP payload bytes")
    ap.add_argument("--hot", type=int, default=0, help="every N-th datagram to a hot key")
    ap.add_argument("--hot-keys", type=int, default=64)
    ap.add_argument("--hot-sport", type=int, default=29000)
    ap.add_argument("--hot-dport", type=int, default=20000)
    args = ap.parse_args()
    deadline = time.monotonic() + args.max_seconds
    procs = max(1, args.procs)
    start = time.monotonic()
    total = fork_split(args.count, procs,
                       lambda p, share: run_one(args, p, share, deadline, args.pps / procs))
    secs = time.monotonic() - start
    print(f"sent={total} seconds={secs:.1f} pps={total / secs:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
