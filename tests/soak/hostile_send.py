#!/usr/bin/env python3
"""hostile_send: malformed IPv4/IPv6 packets for nflowd's live path, built with scapy.

Run in the client namespace. Two ways out:
  l2   a whole Ethernet frame through an AF_PACKET socket on --iface to --dmac (the
       router): the bytes arrive as written; the router's own IP checks decide what gets
       further (a netdev ingress hook sees them all, FORWARD only what ip_rcv accepts).
  l3   an IP packet through a raw socket (IPPROTO_RAW, so IP_HDRINCL): it crosses this
       namespace's OUTPUT hook; the kernel fills in / rewrites some fields (see --list).

  hostile_send.py --list                     every case: name, way, packets, what nflowd
                                             should classify each packet as
  hostile_send.py CASE [--count N] ...       sends CASE N times, prints "sent=K errors=E
                                             errno=..." (a raw send the kernel refuses is an
                                             error, not a crash of this tool)
  hostile_send.py control --count N ...      N ordinary UDP datagrams from port 41000 to
                                             port 41001 through the normal stack
  hostile_send.py fuzz --count N --seed S    N frames: valid IPv4 headers with random
                                             fields and random lengths (l2)
  hostile_send.py --serve ...                reads "CASE COUNT" lines (also "fuzz N SEED",
                                             "control N") on stdin and answers each with its
                                             "sent=" line, so scapy loads once

Classes: plain (accounted with full header), truncated, fragment, ipv6, invalid, empty
(no payload at all).
"""
import argparse
import errno
import json
import random
import socket
import sys

from scapy.all import (ICMP, IP, TCP, UDP, Ether, IPv6, IPv6ExtHdrDestOpt,  # noqa: E402
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw,
                       fragment)

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD


def cases(a):
    """name -> (way, [bytes of each packet/frame], [class of each])"""
    src, dst, src6, dst6 = a.src, a.dst, a.src6, a.dst6
    ip = lambda **kw: IP(src=src, dst=dst, **kw)  # noqa: E731
    udp = UDP(sport=42000, dport=42001) / Raw(b"u" * 10)
    c = {}

    def l2(name, pkts, classes, ethertype=ETH_P_IP):
        frames = []
        for p in pkts:
            raw = p if isinstance(p, bytes) else bytes(p)
            frames.append(bytes(Ether(dst=a.dmac, src=a.smac, type=ethertype)) + raw)
        c[name] = ("l2", frames, classes)

    def l3(name, pkts, classes):
        c[name] = ("l3", [p if isinstance(p, bytes) else bytes(p) for p in pkts], classes)

    l2("ihl_3", [ip(ihl=3) / udp], ["invalid"])
    l2("ihl_15_short", [ip(ihl=15) / udp], ["invalid"])  # says 60 bytes of header, has 38
    l2("ihl_6_nop_options", [ip(options=b"\x01\x01\x01\x00") / udp], ["plain"])
    l2("total_len_bigger", [ip(len=1000) / udp], ["plain"])  # 38 bytes said to be 1000
    # 60 bytes said to be 24 (with a checksum that matches the lie): 4 bytes of TCP count
    l2("total_len_smaller", [ip(len=24) / TCP(sport=42002, dport=42003, flags="S") / Raw(b"t" * 20)],
       ["truncated"])
    l2("total_len_below_header", [ip(len=12) / udp], ["invalid"])
    l2("version_5", [ip(version=5) / udp], ["invalid"])
    l2("version_6_in_ipv4_frame", [IPv6(src=src6, dst=dst6) / udp], ["ipv6"])
    l2("bad_checksum", [ip(chksum=0x1234) / udp], ["plain"])
    l2("cut_in_ip_header", [bytes(ip() / udp)[:9]], ["invalid"])
    l2("empty", [b""], ["empty"])
    l2("tcp_cut_at_6", [bytes(ip(proto=6) / Raw(b"\x04\x57\x08\xae\x00\x00"))], ["truncated"])
    l2("udp_cut_at_3", [bytes(ip(proto=17) / Raw(b"\x04\x57\x08"))], ["truncated"])
    l2("icmp_cut_at_1", [bytes(ip(proto=1) / Raw(b"\x08"))], ["truncated"])
    l2("tiny_fragments_udp",
       fragment(ip(id=7001) / UDP(sport=42004, dport=42005) / Raw(b"f" * 64), fragsize=8),
       ["plain"] + ["fragment"] * 8)
    l2("tiny_fragments_tcp",
       fragment(ip(id=7002) / TCP(sport=42006, dport=42007) / Raw(b"g" * 12), fragsize=8),
       ["truncated"] + ["fragment"] * 3)
    l2("fragment_offset_max", [ip(id=7003, frag=8191, proto=17) / Raw(b"h" * 7)], ["fragment"])
    l2("ipv6_extension_chain",
       [IPv6(src=src6, dst=dst6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() /
        IPv6ExtHdrRouting(segleft=0) / IPv6ExtHdrFragment(id=9) / UDP(sport=42008, dport=42009) /
        Raw(b"6" * 8)], ["ipv6"], ETH_P_IPV6)
    long_chain = IPv6(src=src6, dst=dst6)
    for _ in range(12):
        long_chain = long_chain / IPv6ExtHdrDestOpt()
    l2("ipv6_12_destopts", [long_chain / UDP(sport=42010, dport=42011)], ["ipv6"], ETH_P_IPV6)
    l2("ipv6_chain_cut", [bytes(IPv6(src=src6, dst=dst6, nh=60, plen=2) / Raw(b"\x11\x00"))],
       ["ipv6"], ETH_P_IPV6)  # says a destination options header follows: 2 bytes of it
    l2("ipv6_cut_in_header", [bytes(IPv6(src=src6, dst=dst6) / udp)[:20]], ["invalid"], ETH_P_IPV6)

    # Raw socket, IP_HDRINCL: what the kernel lets through OUTPUT.
    l3("raw_ihl_3", [ip(ihl=3) / udp], ["invalid"])
    l3("raw_total_len_bigger", [ip(len=1000) / udp], ["plain"])  # the kernel rewrites it
    l3("raw_bad_checksum", [ip(chksum=0x1234) / udp], ["plain"])  # the kernel rewrites it
    l3("raw_version_5", [ip(version=5) / udp], ["invalid"])
    l3("raw_tcp_cut_at_6", [ip(proto=6) / Raw(b"\x04\x57\x08\xae\x00\x00")], ["truncated"])
    l3("raw_tiny_fragment_tcp", [ip(id=7004, flags="MF", proto=6) / Raw(b"\x04\x57\x08\xae\x00\x00\x00\x01")],
       ["truncated"])
    l3("raw_ihl_15_short", [ip(ihl=15) / udp], ["invalid"])  # the kernel refuses: EINVAL
    return c


def checksum(b):
    s = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b) - 1, 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fuzz_frames(a, n, seed):
    """Valid-looking IPv4 headers with random fields and lengths: each a frame of 1..120 bytes."""
    rnd = random.Random(seed)
    frames = []
    for _ in range(n):
        proto = rnd.choice([1, 6, 17, 132, 47, rnd.randrange(256)])
        body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 60)))
        p = bytearray(bytes(IP(src=a.src, dst=a.dst, proto=proto, id=rnd.randrange(65536)) / Raw(body)))
        for _ in range(rnd.randrange(1, 4)):  # a few random bytes of the header
            p[rnd.randrange(20)] = rnd.randrange(256)
        if rnd.random() < 0.7:  # mostly a matching checksum, so that ip_rcv judges the rest
            p[10:12] = b"\0\0"
            p[10:12] = checksum(bytes(p[:20])).to_bytes(2, "big")
        if rnd.random() < 0.3:
            p = p[:rnd.randrange(len(p) + 1)]
        frames.append(bytes(Ether(dst=a.dmac, src=a.smac, type=ETH_P_IP)) + bytes(p))
    return frames


def send_l2(a, frames, count):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    sent = errs = 0
    last = ""
    for _ in range(count):
        for f in frames:
            try:
                s.send(f)
                sent += 1
            except OSError as e:
                errs += 1
                last = errno.errorcode.get(e.errno, str(e.errno))
    return sent, errs, last


def send_l3(a, pkts, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = errs = 0
    last = ""
    for _ in range(count):
        for p in pkts:
            try:
                s.sendto(p, (a.dst, 0))
                sent += 1
            except OSError as e:
                errs += 1
                last = errno.errorcode.get(e.errno, str(e.errno))
    return sent, errs, last


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", nargs="?")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--iface", default="")
    ap.add_argument("--dmac", default="00:00:00:00:00:00")
    ap.add_argument("--smac", default="02:00:00:00:00:01")
    ap.add_argument("--src", default="10.201.1.2")
    ap.add_argument("--dst", default="10.201.2.2")
    ap.add_argument("--src6", default="fd00:201:1::2")
    ap.add_argument("--dst6", default="fd00:201:2::2")
    a = ap.parse_args()
    a.count = max(0, min(a.count, 100000))  # bounded whatever the caller asks
    c = cases(a)
    if a.list:
        for name, (way, pkts, classes) in c.items():
            print(json.dumps({"case": name, "way": way, "packets": len(pkts), "classes": classes}))
        return 0
    if a.serve:
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] == "quit":
                break
            name = words[0]
            count = max(0, min(int(words[1]) if len(words) > 1 else 1, 100000))
            seed = int(words[2]) if len(words) > 2 else a.seed
            print(run_case(a, c, name, count, seed), flush=True)
        return 0
    print(run_case(a, c, a.case, a.count, a.seed))
    return 0


def run_case(a, c, name, count, seed):
    if name == "control":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 41000))
        for _ in range(count):
            s.sendto(b"c" * 12, (a.dst, 41001))
        s.close()
        return f"sent={count} errors=0 errno="
    if name == "fuzz":
        sent, errs, last = send_l2(a, fuzz_frames(a, count, seed), 1)
    elif name in c:
        way, pkts, _ = c[name]
        sent, errs, last = (send_l2 if way == "l2" else send_l3)(a, pkts, count)
    else:
        return f"sent=0 errors=1 errno=unknown-case-{name}"
    return f"sent={sent} errors={errs} errno={last}"


if __name__ == "__main__":
    sys.exit(main())
