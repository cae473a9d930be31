#!/usr/bin/env python3
"""flow_sender: deterministic or flooding IPv4/IPv6 traffic with known flow keys, for live tests.

bash's /dev/udp picks a random source port per datagram, so its flows cannot be compared
run to run. Here every flow has a fixed source port, so the same command gives the same
flow keys, packet counts and byte counts every time:

  flows   --flows N --packets M: UDP flow i goes from sport BASE+i to dport DPORT+(i % 4),
          with M datagrams whose payload size cycles through --sizes; --tcp-refused K adds K
          connection attempts (SYN + the server's RST) from fixed ports to a closed port.
  flood   --count C: C datagrams spread over --flows source ports, as fast as one process
          can send, split over --procs processes; stops after --max-seconds in any case.

An IPv6 --dst (it has a colon) sends over IPv6, --tos then sets the traffic class.
Every loop is bounded by a count and by --max-seconds. Prints "sent=N" on exit.
"""
import argparse
import os
import socket
import sys
import time


def family_of(dst):
    return socket.AF_INET6 if ":" in dst else socket.AF_INET


def any_addr(dst):
    return "::" if ":" in dst else "0.0.0.0"


def send_flows(args, deadline):
    sizes = [int(s) for s in args.sizes.split(",")]
    socks = []
    for i in range(args.flows):
        s = socket.socket(family_of(args.dst), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family_of(args.dst) == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, args.tos)
        else:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, args.tos)
        s.bind((any_addr(args.dst), args.sport + i))
        s.connect((args.dst, args.dport + i % 4))
        socks.append(s)
    sent = 0
    # Round robin over the flows, one datagram each, so that all of them are live together.
    for k in range(args.packets):
        for i, s in enumerate(socks):
            if time.monotonic() > deadline:
                return sent
            s.send(b"x" * sizes[(k + i) % len(sizes)])
            sent += 1
        if args.gap > 0:
            time.sleep(args.gap)
    for s in socks:
        s.close()
    for j in range(args.tcp_refused):
        if time.monotonic() > deadline:
            break
        s = socket.socket(family_of(args.dst), socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # RST on close, no TIME_WAIT: the same source port can be used again next run.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.bind((any_addr(args.dst), args.tcp_sport + j))
        s.settimeout(2)
        try:
            s.connect((args.dst, args.tcp_dport))
        except (ConnectionRefusedError, socket.timeout):
            pass
        s.close()
        sent += 2
    return sent


def flood_one(args, share, index, deadline):
    payload = b"f" * args.sizes_first
    socks = []
    for i in range(args.flows):
        s = socket.socket(family_of(args.dst), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((any_addr(args.dst), args.sport + index * args.flows + i))
        s.connect((args.dst, args.dport))
        socks.append(s)
    n = len(socks)
    sent = 0
    while sent < share:
        # Check the clock once per 1024 datagrams: cheap, and still a hard time bound.
        if sent % 1024 == 0 and time.monotonic() > deadline:
            break
        try:
            socks[sent % n].send(payload)
        except OSError:  # ENOBUFS and the like: the packet never reached the router
            continue
        sent += 1
    return sent


def fork_split(count, procs, send):
    """Splits count datagrams over procs forked processes; process p sends its share with
    send(p, share), which returns how many it sent. Returns the sum. Also used by
    tests/soak/churn_sender.py."""
    pids = []
    rfds = []
    for p in range(procs):
        share = count // procs + (1 if p < count % procs else 0)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            n = send(p, share)
            os.write(w, str(n).encode())
            os._exit(0)
        os.close(w)
        pids.append(pid)
        rfds.append(r)
    total = 0
    for pid, r in zip(pids, rfds):
        os.waitpid(pid, 0)
        total += int(os.read(r, 64) or b"0")
        os.close(r)
    return total


def flood(args, deadline):
    return fork_split(args.count, max(1, args.procs),
                      lambda p, share: flood_one(args, share, p, deadline))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["flows", "flood"])
    ap.add_argument("--dst", required=True)
    ap.add_argument("--dport", type=int, default=9999)
    ap.add_argument("--sport", type=int, default=40000)
    ap.add_argument("--flows", type=int, default=8)
    ap.add_argument("--packets", type=int, default=10, help="flows mode: datagrams per flow")
    ap.add_argument("--sizes", default="1,100,333,1000", help="payload sizes, cycled")
    ap.add_argument("--tos", type=int, default=0)
    ap.add_argument("--gap", type=float, default=0.0, help="flows mode: sleep per round")
    ap.add_argument("--tcp-refused", type=int, default=0)
    ap.add_argument("--tcp-sport", type=int, default=45000)
    ap.add_argument("--tcp-dport", type=int, default=9998)
    ap.add_argument("--count", type=int, default=10000, help="flood mode: datagrams in all")
    ap.add_argument("--procs", type=int, default=1, help="flood mode: sending processes")
    ap.add_argument("--max-seconds", type=float, default=60.0)
    args = ap.parse_args()
    args.sizes_first = int(args.sizes.split(",")[0])
    deadline = time.monotonic() + args.max_seconds
    sent = send_flows(args, deadline) if args.mode == "flows" else flood(args, deadline)
    print(f"sent={sent}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
