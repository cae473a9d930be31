// Tests for the IPv6 half of the header parser: the extension-header walk, what is accounted
// with which key, every capture cut, payload length 0, and the switch that keeps v5's skip.
#include "nflowd/header_parser.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace nflowd {
namespace {

using Bytes = std::vector<std::byte>;

constexpr std::uint8_t kHopByHop = 0;
constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;
constexpr std::uint8_t kRouting = 43;
constexpr std::uint8_t kFragment = 44;
constexpr std::uint8_t kEsp = 50;
constexpr std::uint8_t kAh = 51;
constexpr std::uint8_t kIcmpv6 = 58;
constexpr std::uint8_t kNoNext = 59;
constexpr std::uint8_t kDestOpts = 60;
constexpr std::uint8_t kSctp = 132;
constexpr std::uint8_t kUdpLite = 136;
constexpr std::uint8_t kTcpSyn = 0x02;
constexpr std::uint8_t kTcpAck = 0x10;

void put8(Bytes& b, std::size_t at, unsigned v) {
    b[at] = static_cast<std::byte>(v & 0xffU);
}
void put16(Bytes& b, std::size_t at, unsigned v) {
    put8(b, at, v >> 8);
    put8(b, at + 1, v);
}
void put32(Bytes& b, std::size_t at, std::uint32_t v) {
    put16(b, at, v >> 16);
    put16(b, at + 2, v);
}
Bytes concat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

constexpr Ipv6Addr kSrc{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
constexpr Ipv6Addr kDst{0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xca, 0xfe, 0, 0x02};

// An IPv6 packet described by its fields; `payload` is extension headers and L4.
struct Ipv6 {
    std::uint8_t traffic_class = 0;
    std::uint32_t flow_label = 0;
    std::optional<std::uint16_t> payload_length = std::nullopt; // default: the bytes built
    std::uint8_t next = kNoNext;
    Bytes payload = {};

    Bytes build() const {
        // Sized once: GCC 12 sees a false out-of-bounds memcpy in insert() after a 40-byte
        // vector (-Warray-bounds), depending on what else is inlined here.
        Bytes b(40 + payload.size(), std::byte{0});
        std::copy(payload.begin(), payload.end(), b.begin() + 40);
        put32(b, 0, (6U << 28) | (std::uint32_t{traffic_class} << 20) | (flow_label & 0xfffffU));
        put16(b, 4, payload_length.value_or(static_cast<std::uint16_t>(payload.size())));
        put8(b, 6, next);
        put8(b, 7, 64);
        for (std::size_t i = 0; i < 16; ++i) {
            put8(b, 8 + i, kSrc[i]);
            put8(b, 24 + i, kDst[i]);
        }
        return b;
    }
};

// Hop-by-hop, routing or destination options: `units` 8-byte units, PadN-filled options.
Bytes options_header(std::uint8_t next, std::size_t units = 1) {
    Bytes b(units * 8, std::byte{0});
    put8(b, 0, next);
    put8(b, 1, static_cast<unsigned>(units - 1));
    put8(b, 2, 1); // PadN over the rest
    put8(b, 3, static_cast<unsigned>(units * 8 - 4));
    return b;
}
Bytes jumbo_header(std::uint8_t next, std::uint32_t length) {
    Bytes b(8, std::byte{0});
    put8(b, 0, next);
    put8(b, 2, 0xc2); // Jumbo Payload, 4 bytes
    put8(b, 3, 4);
    put32(b, 4, length);
    return b;
}
Bytes fragment_header(std::uint8_t next, unsigned offset_units, bool more) {
    Bytes b(8, std::byte{0});
    put8(b, 0, next);
    put16(b, 2, (offset_units << 3) | (more ? 1U : 0U));
    put32(b, 4, 0xabcdef01);
    return b;
}
Bytes tcp(unsigned src_port, unsigned dst_port, unsigned flags) {
    Bytes b(20, std::byte{0});
    put16(b, 0, src_port);
    put16(b, 2, dst_port);
    put8(b, 12, 0x50);
    put8(b, 13, flags);
    return b;
}
Bytes udp(unsigned src_port, unsigned dst_port) {
    Bytes b(8, std::byte{0});
    put16(b, 0, src_port);
    put16(b, 2, dst_port);
    return b;
}
Bytes icmp(unsigned type, unsigned code) {
    Bytes b(8, std::byte{0});
    put8(b, 0, type);
    put8(b, 1, code);
    return b;
}

constexpr PacketMeta kMeta{.time = 1'700'000'000 * kNanosPerSecond + 7, .in_if = 3, .out_if = 9};

struct Parsed {
    ParseResult result;
    PacketInfo6 info;
};

// Copies into a heap block of exactly the captured size, so a read past the capture is an
// out-of-bounds read for the sanitizer build.
Parsed parse(std::span<const std::byte> bytes, const PacketMeta& meta = kMeta) {
    auto copy = std::make_unique<std::byte[]>(bytes.size() + 1);
    std::copy(bytes.begin(), bytes.end(), copy.get());
    Parsed p{};
    p.result =
        parse_ipv6_packet(std::span<const std::byte>(copy.get(), bytes.size()), meta, p.info);
    return p;
}

// ---- keys ----

TEST(Ipv6Parser, TcpGivesAddressesPortsFlagsClassLabelAndLength) {
    const auto p = parse(Ipv6{.traffic_class = 0xb8,
                              .flow_label = 0xabcde,
                              .next = kTcp,
                              .payload = concat({tcp(443, 50000, kTcpSyn | kTcpAck), Bytes(100)})}
                             .build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.src_addr, kSrc);
    EXPECT_EQ(p.info.key.dst_addr, kDst);
    EXPECT_EQ(p.info.key.src_port, 443);
    EXPECT_EQ(p.info.key.dst_port, 50000);
    EXPECT_EQ(p.info.key.protocol, kTcp);
    EXPECT_EQ(p.info.key.tos, 0xb8);
    EXPECT_EQ(p.info.flow_label, 0xabcdeU);
    EXPECT_EQ(p.info.tcp_flags, kTcpSyn | kTcpAck);
    EXPECT_EQ(p.info.octets, 40U + 120U);
    EXPECT_EQ(p.info.key.in_if, 3U);
    EXPECT_EQ(p.info.out_if, 9U);
    EXPECT_EQ(p.info.time, kMeta.time);
    EXPECT_EQ(p.info.src_mask, 0);
    EXPECT_EQ(p.info.dst_mask, 0);
}

TEST(Ipv6Parser, UdpSctpUdpLitePorts) {
    for (const std::uint8_t proto : {kUdp, kSctp, kUdpLite}) {
        const auto p = parse(Ipv6{.next = proto, .payload = udp(53, 61000)}.build());
        ASSERT_EQ(p.result, ParseResult::accounted) << int(proto);
        EXPECT_EQ(p.info.key.protocol, proto);
        EXPECT_EQ(p.info.key.src_port, 53);
        EXPECT_EQ(p.info.key.dst_port, 61000);
    }
}

TEST(Ipv6Parser, Icmpv6TypeAndCodeGoToDestinationPort) {
    const auto echo = parse(Ipv6{.next = kIcmpv6, .payload = icmp(128, 0)}.build());
    ASSERT_EQ(echo.result, ParseResult::accounted);
    EXPECT_EQ(echo.info.key.dst_port, 128 << 8);
    EXPECT_EQ(echo.info.key.src_port, 0);
    const auto unreach = parse(Ipv6{.next = kIcmpv6, .payload = icmp(1, 4)}.build());
    EXPECT_EQ(unreach.info.key.dst_port, (1 << 8) | 4);
}

TEST(Ipv6Parser, Ipv4IcmpNumberMeansNothingInIpv6) {
    const auto p = parse(Ipv6{.next = 1, .payload = icmp(8, 0)}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.protocol, 1);
    EXPECT_EQ(p.info.key.dst_port, 0);
}

// ---- extension headers ----

TEST(Ipv6Parser, EachOptionsHeaderIsWalkedToTheTransport) {
    for (const std::uint8_t header : {kHopByHop, kRouting, kDestOpts}) {
        for (const std::size_t units : {1U, 3U}) {
            const auto p = parse(
                Ipv6{.next = header, .payload = concat({options_header(kTcp, units), tcp(1, 2, 4)})}
                    .build());
            ASSERT_EQ(p.result, ParseResult::accounted) << int(header) << " " << units;
            EXPECT_EQ(p.info.key.protocol, kTcp);
            EXPECT_EQ(p.info.key.src_port, 1);
            EXPECT_EQ(p.info.key.dst_port, 2);
            EXPECT_EQ(p.info.tcp_flags, 4);
        }
    }
}

TEST(Ipv6Parser, AChainOfEveryHeaderReachesUdp) {
    const auto p = parse(
        Ipv6{.next = kHopByHop,
             .payload = concat({options_header(kDestOpts), options_header(kRouting, 2),
                                options_header(kFragment), fragment_header(kDestOpts, 0, true),
                                options_header(kUdp), udp(5353, 5354)})}
            .build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.protocol, kUdp);
    EXPECT_EQ(p.info.key.src_port, 5353);
    EXPECT_EQ(p.info.key.dst_port, 5354);
}

TEST(Ipv6Parser, FirstFragmentCarriesThePorts) {
    const auto p = parse(
        Ipv6{.next = kFragment, .payload = concat({fragment_header(kUdp, 0, true), udp(7, 8)})}
            .build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.src_port, 7);
}

TEST(Ipv6Parser, NonFirstFragmentIsAFragmentWithPortsZero) {
    for (const bool more : {true, false}) {
        const auto p =
            parse(Ipv6{.next = kFragment,
                       .payload = concat({fragment_header(kUdp, 185, more), udp(7, 8), Bytes(50)})}
                      .build());
        ASSERT_EQ(p.result, ParseResult::fragment);
        EXPECT_EQ(p.info.key.protocol, kUdp);
        EXPECT_EQ(p.info.key.src_port, 0);
        EXPECT_EQ(p.info.key.dst_port, 0);
        EXPECT_EQ(p.info.octets, 40U + 8U + 8U + 50U);
    }
}

TEST(Ipv6Parser, EspAhAndNoNextHeaderEndTheWalkWithPortsZero) {
    for (const std::uint8_t stop : {kEsp, kAh, kNoNext}) {
        // What follows would parse as UDP ports if the walk went on.
        const auto direct = parse(Ipv6{.next = stop, .payload = udp(1000, 2000)}.build());
        ASSERT_EQ(direct.result, ParseResult::accounted) << int(stop);
        EXPECT_EQ(direct.info.key.protocol, stop);
        EXPECT_EQ(direct.info.key.src_port, 0);
        EXPECT_EQ(direct.info.key.dst_port, 0);
        const auto behind = parse(
            Ipv6{.next = kHopByHop, .payload = concat({options_header(stop), udp(1000, 2000)})}
                .build());
        ASSERT_EQ(behind.result, ParseResult::accounted) << int(stop);
        EXPECT_EQ(behind.info.key.protocol, stop);
        EXPECT_EQ(behind.info.key.dst_port, 0);
    }
}

TEST(Ipv6Parser, HeadersPastThePayloadLengthAreNotRead) {
    // Ethernet padding after an 8-byte payload is no TCP header.
    auto b = Ipv6{.payload_length = 8, .next = kTcp, .payload = tcp(1, 2, 3)}.build();
    const auto p = parse(b);
    EXPECT_EQ(p.result, ParseResult::truncated);
    EXPECT_EQ(p.info.key.src_port, 0);
    EXPECT_EQ(p.info.octets, 48U);
}

TEST(Ipv6Parser, AnOptionsHeaderLongerThanThePacketIsTruncated) {
    Bytes hdr = options_header(kTcp);
    put8(hdr, 1, 200); // claims 1608 bytes
    const auto p = parse(Ipv6{.next = kDestOpts, .payload = concat({hdr, tcp(1, 2, 3)})}.build());
    EXPECT_EQ(p.result, ParseResult::truncated);
    EXPECT_EQ(p.info.key.protocol, kDestOpts);
}

TEST(Ipv6Parser, NotVersionSixOrShortIsInvalid) {
    Bytes b = Ipv6{.next = kUdp, .payload = udp(1, 2)}.build();
    put8(b, 0, 0x45);
    EXPECT_EQ(parse(b).result, ParseResult::invalid);
    const Bytes ok = Ipv6{.next = kUdp, .payload = udp(1, 2)}.build();
    EXPECT_EQ(parse(std::span(ok).first(39)).result, ParseResult::invalid);
    EXPECT_EQ(parse({}).result, ParseResult::invalid);
}

// Every cut of a TCP packet behind hop-by-hop and fragment headers: invalid without the fixed
// header, then truncated in each header (protocol: the header cut) until TCP's 14 bytes are in.
TEST(Ipv6Parser, EveryCaptureCutBehindHopByHopAndFragment) {
    const Bytes b =
        Ipv6{.traffic_class = 4,
             .next = kHopByHop,
             .payload = concat({options_header(kFragment), fragment_header(kTcp, 0, true),
                                tcp(8080, 22, kTcpAck), Bytes(40)})}
            .build();
    for (std::size_t len = 0; len <= b.size(); ++len) {
        const auto p = parse(std::span(b).first(len));
        if (len < 40) {
            EXPECT_EQ(p.result, ParseResult::invalid) << len;
            continue;
        }
        EXPECT_EQ(p.info.octets, b.size()) << len; // the header's length, never the capture's
        EXPECT_EQ(p.info.key.tos, 4) << len;
        const std::uint8_t want_protocol = len < 48 ? kHopByHop : len < 56 ? kFragment : kTcp;
        EXPECT_EQ(p.info.key.protocol, want_protocol) << len;
        if (len < 56 + 14) {
            EXPECT_EQ(p.result, ParseResult::truncated) << len;
            EXPECT_EQ(p.info.key.src_port, 0) << len;
            EXPECT_EQ(p.info.key.dst_port, 0) << len;
        } else {
            EXPECT_EQ(p.result, ParseResult::accounted) << len;
            EXPECT_EQ(p.info.key.src_port, 8080) << len;
            EXPECT_EQ(p.info.key.dst_port, 22) << len;
            EXPECT_EQ(p.info.tcp_flags, kTcpAck) << len;
        }
    }
}

TEST(Ipv6Parser, ManyHeadersEndWithinTheCapture) {
    Bytes payload;
    for (int i = 0; i < 200; ++i) {
        const Bytes h = options_header(kDestOpts);
        payload.insert(payload.end(), h.begin(), h.end());
    }
    const auto p = parse(Ipv6{.next = kDestOpts, .payload = payload}.build());
    EXPECT_EQ(p.result, ParseResult::truncated);
    EXPECT_EQ(p.info.key.protocol, kDestOpts);
}

// ---- payload length 0 ----

TEST(Ipv6Parser, ZeroPayloadLengthTakesTheJumboOption) {
    const auto p = parse(Ipv6{.payload_length = 0,
                              .next = kHopByHop,
                              .payload = concat({jumbo_header(kTcp, 100000), tcp(1, 2, kTcpAck)})}
                             .build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.octets, 40U + 100000U);
    EXPECT_EQ(p.info.key.src_port, 1);
}

TEST(Ipv6Parser, ZeroPayloadLengthFollowsTheBigTcpRuleWithoutJumbo) {
    const Bytes b = Ipv6{.payload_length = 0, .next = kTcp, .payload = tcp(1, 2, 0)}.build();
    EXPECT_EQ(parse(b).result, ParseResult::unknown_length);
    PacketMeta big = kMeta;
    big.wire_len = 150000;
    const auto p = parse(b, big);
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.octets, 150000U);
    big.wire_len = 1000; // would have fitted the field: the packet lies
    EXPECT_EQ(parse(b, big).result, ParseResult::invalid);
}

TEST(Ipv6Parser, JumboOptionBelow64KiBIsNoLength) {
    const auto p = parse(Ipv6{.payload_length = 0,
                              .next = kHopByHop,
                              .payload = concat({jumbo_header(kTcp, 1000), tcp(1, 2, 0)})}
                             .build());
    EXPECT_EQ(p.result, ParseResult::unknown_length);
}

// ---- the switch and the counters ----

TEST(Ipv6ParserSwitch, OffCountsIpv6AsSkippedAsV5Needs) {
    HeaderParser parser;
    ParsedPacket out;
    const Bytes b = Ipv6{.next = kUdp, .payload = udp(1, 2)}.build();
    EXPECT_EQ(parser.parse(b, kMeta, out), ParseResult::ipv6);
    EXPECT_EQ(parser.stats().ipv6, 1U);
    EXPECT_EQ(parser.stats().ipv6_accounted, 0U);
    EXPECT_EQ(parser.stats().accounted, 0U);
}

TEST(Ipv6ParserSwitch, OnAccountsIpv6AndKeepsIpv4) {
    HeaderParser parser(true);
    ParsedPacket out;
    const Bytes v6 =
        Ipv6{.next = kTcp, .payload = concat({tcp(1, 2, 0), Bytes(2000)})}.build(); // oversize
    ASSERT_EQ(parser.parse(v6, kMeta, out), ParseResult::accounted);
    EXPECT_EQ(out.family, Family::ipv6);
    EXPECT_EQ(out.v6.key.src_port, 1);
    Bytes v4(28, std::byte{0});
    put8(v4, 0, 0x45);
    put16(v4, 2, 28);
    put8(v4, 9, kUdp);
    ASSERT_EQ(parser.parse(v4, kMeta, out), ParseResult::accounted);
    EXPECT_EQ(out.family, Family::ipv4);
    const Bytes frag = Ipv6{.next = kFragment, .payload = fragment_header(kUdp, 1, false)}.build();
    EXPECT_EQ(parser.parse(frag, kMeta, out), ParseResult::fragment);
    const ParseStats& s = parser.stats();
    EXPECT_EQ(s.packets, 3U);
    EXPECT_EQ(s.accounted, 3U);
    EXPECT_EQ(s.ipv6_accounted, 2U);
    EXPECT_EQ(s.fragments, 1U);
    EXPECT_EQ(s.oversize, 1U);
    EXPECT_EQ(s.ipv6, 0U);
    parser.set_ipv6(false);
    EXPECT_EQ(parser.parse(v6, kMeta, out), ParseResult::ipv6);
}

} // namespace
} // namespace nflowd
