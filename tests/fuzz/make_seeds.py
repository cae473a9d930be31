#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/ (committed; rerun only to change them).

corpus/control/ is not written here: it holds one request per nflowctl command as
ctl::encode_request() builds it (list, get, set, stats --json, flows --top, flush 2).
"""
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def ipv4(proto, l4, tos=0, total=None, frag=0, ihl=5):
    opts = b"\x01" * ((ihl - 5) * 4)
    hdr_len = 20 + len(opts)
    total = total if total is not None else hdr_len + len(l4)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, total, 1, frag, 64, proto, 0,
                    bytes([10, 0, 0, 1]), bytes([192, 0, 2, 7]))
    return h + opts + l4


TCP = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 0x50, 0x02, 65535, 0, 0)
UDP = struct.pack("!HHHH", 5353, 53, 28, 0) + b"x" * 20
ICMP = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"p" * 56
SCTP = struct.pack("!HHI", 3868, 3868, 0) + b"\0" * 4
IPV6 = struct.pack("!IHBB16s16s", 0x60000000, 8, 17, 64, b"\x20\x01" + b"\0" * 14,
                   b"\x20\x01" + b"\0" * 13 + b"\x01") + struct.pack("!HHHH", 1, 2, 8, 0)

def ipv6(next_header, payload, payload_len=None, tclass=0, label=0):
    plen = len(payload) if payload_len is None else payload_len
    return struct.pack("!IHBB16s16s", 0x60000000 | tclass << 20 | label, plen, next_header, 64,
                       b"\x20\x01\x0d\xb8" + b"\0" * 11 + b"\x01",
                       b"\x20\x01\x0d\xb8" + b"\0" * 11 + b"\x02") + payload


def ext(next_header, units=1):  # hop-by-hop, routing, destination options: PadN inside
    return struct.pack("!BBBB", next_header, units - 1, 1, units * 8 - 4) + b"\0" * (units * 8 - 4)


def frag6(next_header, offset, more):
    return struct.pack("!BBHI", next_header, 0, offset << 3 | more, 0x12345678)


ICMP6 = struct.pack("!BBHHH", 128, 0, 0, 1, 1) + b"p" * 56
JUMBO = struct.pack("!BBBBI", 6, 0, 0xc2, 4, 100000)

PACKETS = {
    "tcp_syn": ipv4(6, TCP),
    "tcp_opts": ipv4(6, TCP, ihl=7),
    "udp": ipv4(17, UDP, tos=0x20),
    "icmp": ipv4(1, ICMP),
    "sctp": ipv4(132, SCTP),
    "frag_first": ipv4(17, UDP, frag=0x2000, total=1500),
    "frag_later": ipv4(17, b"y" * 40, frag=185),
    "big_total": ipv4(6, TCP, total=9000),
    "ipv6_udp": IPV6,
}


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def nla(t, payload):
    n = struct.pack("=HH", 4 + len(payload), t) + payload
    return n + b"\0" * (-len(n) % 4)


def nflog_msg(seq, payload, indev=2, outdev=3, ts=True, link=b""):
    # nfgenmsg: family, version, res_id (group, big endian)
    body = struct.pack("=BBH", 2, 0, struct.unpack("=H", struct.pack("!H", 5))[0])
    body += nla(1, struct.pack("!HBB", 0x0800, 3, 0))  # NFULA_PACKET_HDR
    body += link  # hardware header, VLAN, prefix (issue 13)
    if ts:
        body += nla(3, struct.pack("!QQ", 1700000000, 123456))  # NFULA_TIMESTAMP
    body += nla(4, struct.pack("!I", indev)) + nla(5, struct.pack("!I", outdev))
    body += nla(9, payload)  # NFULA_PAYLOAD
    body += nla(12, struct.pack("!I", seq))  # NFULA_SEQ
    # nlmsghdr: len, type (NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET), flags, seq, pid
    return struct.pack("=IHHII", 16 + len(body), (4 << 8) | 0, 0, 0, 0) + body


def rtnl_link(ifindex, name=None, alias=None, msg_type=16, seq=0, flags=0, family=0):
    """RTM_NEWLINK (16) / RTM_DELLINK (17): ifinfomsg, IFLA_MTU, IFLA_IFNAME, IFLA_IFALIAS."""
    body = struct.pack("=BxHiII", family, 1, ifindex, 0, 0) + nla(4, struct.pack("=I", 1500))
    if name is not None:
        body += nla(3, name + b"\0")
    if alias is not None:
        body += nla(20, alias + b"\0")
    return struct.pack("=IHHII", 16 + len(body), msg_type, flags, seq, 0) + body


def rtnl_done(seq):  # NLMSG_DONE, NLM_F_MULTI, status 0
    return struct.pack("=IHHIIi", 20, 3, 2, seq, 0, 0)


def link_seeds():
    # link_names: sequence 1 from port 0 is the fuzz target's dump (fuzz_link_names.cpp).
    write("link_names", "dump", rtnl_link(1, b"lo", seq=1, flags=2) +
          rtnl_link(2, b"eth3", b"uplink to ISP", seq=1, flags=2) +
          rtnl_link(3, b"ppp11", seq=1, flags=2) + rtnl_done(1))
    write("link_names", "updates", rtnl_link(2, b"eth7") + rtnl_link(4, b"wg0", b"tunnel") +
          rtnl_link(3, msg_type=17) + rtnl_link(2, b"x", family=7, msg_type=17))
    write("link_names", "interrupted", rtnl_link(5, b"eth5", seq=1, flags=2 | 0x10) +
          rtnl_done(1))


def ipfix_encoder_seeds():
    # fuzz_ipfix_encoder.cpp reads: protocol byte (odd = v9), MTU (2 bytes), flow time (5),
    # wall offset (5), engine_id (1), then records of about 45 bytes each.
    rng = random.Random(12)
    for i, (proto, mtu, n) in enumerate([(0, 1472, 40), (1, 1472, 40), (0, 512, 10),
                                         (1, 9000, 100), (1, 0, 3)]):
        head = bytes([proto]) + mtu.to_bytes(2, "big") + bytes(rng.randrange(256)
                                                               for _ in range(12))
        write("ipfix_encoder", "seed%d" % i,
              head + bytes(rng.randrange(256) for _ in range(n * 45)))


def main():
    for name, p in PACKETS.items():
        write("header_parser", name, p)
        write("header_parser", name + "_cut64", p[:64])
    # Parser-only seeds: BIG TCP (total length 0; an odd size makes the target pass a capture
    # length), IGMP (type in the destination port) and a capture cut inside the IP options.
    big_tcp = ipv4(6, TCP + b"z", total=0)
    write("header_parser", "big_tcp", big_tcp if len(big_tcp) % 2 else big_tcp + b"z")
    write("header_parser", "igmp_query", ipv4(2, struct.pack("!BBH4s", 0x11, 100, 0, b"\0" * 4),
                                              ihl=6))
    write("header_parser", "opts_cut", ipv4(17, UDP, ihl=15)[:30])
    # IPv6: every extension header, a chain, ESP/AH/no-next-header stops, fragments, ICMPv6,
    # payload length 0 with a jumbo option and without (odd size: with a capture length).
    ipv6_seeds = {
        "ipv6_hbh_frag_tcp": ipv6(0, ext(44) + frag6(6, 0, 1) + TCP, tclass=0xb8, label=0xbeef),
        "ipv6_chain_udp": ipv6(0, ext(60) + ext(43, 2) + ext(44) + frag6(60, 0, 1) + ext(17) + UDP),
        "ipv6_frag_later": ipv6(44, frag6(17, 185, 1) + b"y" * 40),
        "ipv6_icmp6": ipv6(58, ICMP6),
        "ipv6_esp": ipv6(50, struct.pack("!II", 0x100, 1) + b"e" * 32),
        "ipv6_ah_after_dstopts": ipv6(60, ext(51) + b"a" * 24),
        "ipv6_no_next": ipv6(59, b""),
        "ipv6_sctp_routing": ipv6(43, ext(132) + SCTP),
        "ipv6_jumbo": ipv6(0, JUMBO + TCP, payload_len=0),
        "ipv6_big_tcp": ipv6(6, TCP + b"z", payload_len=0),
    }
    for name, p in ipv6_seeds.items():
        write("header_parser", name, p)
    write("nflog_batch", "one", nflog_msg(0, PACKETS["tcp_syn"]))
    write("nflog_batch", "batch", b"".join(
        nflog_msg(i, p) for i, p in enumerate(PACKETS.values())))
    write("nflog_batch", "gap_no_ts", nflog_msg(0, PACKETS["udp"]) +
          nflog_msg(7, PACKETS["icmp"], ts=False))
    eth = b"\x02" * 6 + b"\x04" * 6
    # NFULA_HWTYPE, NFULA_HWHEADER, NFULA_HWLEN, NFULA_VLAN (nested PROTO, TCI), NFULA_PREFIX
    vlan = nla(1, struct.pack("!H", 0x8100)) + nla(2, struct.pack("!H", 0xa064))
    hw = nla(15, struct.pack("!H", 1)) + nla(16, eth + b"\x08\x00") + nla(17, struct.pack("!H", 14))
    write("nflog_batch", "link", nflog_msg(1, PACKETS["udp"], link=hw + nla(20, vlan) +
                                           nla(10, b"obs=7 dir=in\0")))
    # link_layer: first byte picks the link type (see fuzz_link_layer.cpp's table order).
    write("link_layer", "en10mb", b"\x00" + eth + b"\x08\x00" + PACKETS["tcp_syn"])
    write("link_layer", "en10mb_vlan", b"\x00" + eth + b"\x81\x00\x00\x05\x08\x00" +
          PACKETS["udp"])
    write("link_layer", "en10mb_qinq", b"\x00" + eth + b"\x88\xa8\x00\x05\x81\x00\x00\x06"
          b"\x86\xdd" + PACKETS["ipv6_udp"])
    write("link_layer", "sll", b"\x01" + struct.pack("!HHH8sH", 0, 1, 6, eth[:8], 0x0800) +
          PACKETS["icmp"])
    write("link_layer", "sll2", b"\x02" + struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6,
                                                       eth[:8]) + PACKETS["udp"])
    write("link_layer", "raw", b"\x03" + PACKETS["frag_later"])
    nflog_tlvs = (struct.pack("=HH", 8, 4) + struct.pack("!I", 2) +
                  struct.pack("=HH", 8, 5) + struct.pack("!I", 3) +
                  struct.pack("=HH", 4 + len(PACKETS["tcp_syn"]), 9) + PACKETS["tcp_syn"])
    write("link_layer", "nflog", b"\x06" + struct.pack("!BBH", 2, 0, 5) + nflog_tlvs)
    write("link_layer", "nflog_link", b"\x06" + struct.pack("!BBH", 2, 0, 5) + hw +
          nla(20, vlan) + nflog_tlvs)
    # options: first byte picks the option (index into option_table()).
    for i, v in enumerate([b"10.0.0.0/8=16,192.168.0.0/16=24,80-89=80,3128=80",
                           b"127.0.0.1:2055,[::1]:9995", b"5-8", b"1800", b"65536",
                           b"0", b"syslog", b"2"]):
        for opt in range(0, 24, 3):
            write("options", "v%d_o%d" % (i, opt), bytes([opt + i % 3]) + v)
    link_seeds()
    ipfix_encoder_seeds()


if __name__ == "__main__":
    main()
