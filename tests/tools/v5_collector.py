#!/usr/bin/env python3
"""v5_collector: a minimal NetFlow v5 collector for tests where arrival *time* matters.

nfcapd says what arrived, not when. This binds a UDP port, stamps every datagram with the
wall-clock time it arrived, decodes the v5 header and records, and writes one JSON line per
record (flushed at once, so a test can poll the file while the collector runs):

  {"arrival": 1700000000.123, "seq": 0, "src": "10.201.1.2", "dst": "10.201.2.2",
   "sport": 40000, "dport": 9999, "proto": 17, "tos": 0, "flags": 0, "packets": 10,
   "bytes": 2280, "in_if": 5, "out_if": 6, "first": 1699999998.1, "last": 1699999999.0}

"first"/"last" are the flow's First/Last fields turned into wall-clock seconds with the
header's unix_secs/unix_nsecs and sysuptime, as a collector would. A datagram that is not
well-formed v5 is reported as {"error": ...} and counted, never silently dropped.

Stops on SIGTERM/SIGINT (after reading what is queued) or after --duration seconds;
prints "ready" on stdout once bound and a summary line (datagrams, records, errors,
sequence gaps) on exit.
"""
import argparse
import json
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct("!HHIIIIBBH")             # 24 bytes
RECORD = struct.Struct("!4s4s4sHHIIIIHHBBBBHHBBH")  # 48 bytes


def decode(data, arrival):
    """Returns (header dict, [record dicts]) or raises ValueError."""
    if len(data) < HEADER.size:
        raise ValueError(f"short datagram ({len(data)} bytes)")
    version, count, uptime, secs, nsecs, seq, etype, eid, sampling = HEADER.unpack_from(data)
    if version != 5:
        raise ValueError(f"version {version}")
    if count == 0 or count > 30 or len(data) != HEADER.size + count * RECORD.size:
        raise ValueError(f"count {count} does not match length {len(data)}")
    export_time = secs + nsecs / 1e9
    header = {"seq": seq, "count": count, "uptime": uptime, "export_time": export_time,
              "engine_type": etype, "engine_id": eid}

    def wall(ms):  # sysuptime-relative ms -> wall-clock seconds (modulo-2^32 difference)
        delta = (uptime - ms) & 0xFFFFFFFF
        if delta >= 0x80000000:  # First/Last after the header time: negative difference
            delta -= 0x100000000
        return export_time - delta / 1000.0

    records = []
    for i in range(count):
        (src, dst, nexthop, in_if, out_if, pkts, octets, first, last, sport, dport, _pad1,
         flags, proto, tos, src_as, dst_as, src_mask, dst_mask, _pad2) = RECORD.unpack_from(
            data, HEADER.size + i * RECORD.size)
        records.append({
            "arrival": arrival, "seq": seq, "src": socket.inet_ntoa(src),
            "dst": socket.inet_ntoa(dst), "sport": sport, "dport": dport, "proto": proto,
            "tos": tos, "flags": flags, "packets": pkts, "bytes": octets, "in_if": in_if,
            "out_if": out_if, "first": wall(first), "last": wall(last),
            "nexthop": socket.inet_ntoa(nexthop), "src_as": src_as, "dst_as": dst_as,
            "src_mask": src_mask, "dst_mask": dst_mask, "engine_id": eid})
    return header, records


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True, help="JSON lines, one per flow record")
    ap.add_argument("--duration", type=float, default=600.0, help="stop after this long")
    args = ap.parse_args()

    stop = False

    def on_signal(_sig, _frm):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # A deep buffer: a collector that drops datagrams would make nflowd look lossy.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((args.bind, args.port))
    sock.settimeout(0.1)  # wake up to look at the stop flag and the deadline
    print("ready", flush=True)

    datagrams = records = errors = gaps = 0
    next_seq = None
    deadline = time.monotonic() + args.duration
    with open(args.out, "w", encoding="ascii") as out:
        # After SIGTERM, keep reading until the socket has been quiet for one timeout:
        # what nflowd sent just before it exited must not be lost to our own shutdown.
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65535)
            except socket.timeout:
                if stop:
                    break
                continue
            except InterruptedError:
                continue
            arrival = time.time()
            datagrams += 1
            try:
                header, recs = decode(data, arrival)
            except ValueError as e:
                errors += 1
                out.write(json.dumps({"arrival": arrival, "error": str(e)}) + "\n")
                out.flush()
                continue
            # v5 sequence = flows exported before this datagram: a jump is a lost datagram.
            if next_seq is not None and header["seq"] != next_seq:
                gaps += 1
            next_seq = (header["seq"] + header["count"]) & 0xFFFFFFFF
            for r in recs:
                out.write(json.dumps(r) + "\n")
            out.flush()
            records += len(recs)
    print(f"datagrams={datagrams} records={records} errors={errors} seq_gaps={gaps}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
