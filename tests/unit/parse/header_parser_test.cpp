// Tests for the IPv4 header parser and the byte reader under it: what is accounted, with which
// key, and that no capture cut or lying header makes it read past the captured bytes.
#include "nflowd/byte_reader.hpp"
#include "nflowd/header_parser.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace nflowd {
namespace {

using Bytes = std::vector<std::byte>;

constexpr std::uint8_t kIcmp = 1;
constexpr std::uint8_t kIgmp = 2;
constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;
constexpr std::uint8_t kGre = 47;
constexpr std::uint8_t kSctp = 132;
constexpr std::uint8_t kUdpLite = 136;

constexpr std::uint16_t kFlagDf = 0x4000;
constexpr std::uint16_t kFlagMf = 0x2000;

constexpr std::uint8_t kTcpSyn = 0x02;
constexpr std::uint8_t kTcpAck = 0x10;
constexpr std::uint8_t kTcpPsh = 0x08;

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

Bytes raw(std::initializer_list<unsigned> values) {
    Bytes b;
    for (unsigned v : values) b.push_back(static_cast<std::byte>(v));
    return b;
}

// An IPv4 packet described by its fields; anything may be set to a lie.
struct Ipv4 {
    unsigned version = 4;
    unsigned ihl = 5;
    std::uint8_t tos = 0;
    std::optional<std::uint16_t> total_length = std::nullopt; // default: the bytes actually built
    std::uint16_t flags_fragment = 0;
    std::uint8_t protocol = 0;
    std::uint32_t src = 0x0a000001;
    std::uint32_t dst = 0xc0a80102;
    Bytes payload = {}; // L4 header and data

    Bytes build() const {
        const std::size_t header_len = std::max(ihl, 5U) * 4;
        Bytes b(header_len, std::byte{0x01}); // options area: IP NOPs
        put8(b, 0, (version << 4) | (ihl & 0x0fU));
        put8(b, 1, tos);
        put16(b, 2, total_length.value_or(static_cast<std::uint16_t>(header_len + payload.size())));
        put16(b, 4, 0x1c46);
        put16(b, 6, flags_fragment);
        put8(b, 8, 64);
        put8(b, 9, protocol);
        put16(b, 10, 0);
        put32(b, 12, src);
        put32(b, 16, dst);
        b.insert(b.end(), payload.begin(), payload.end());
        return b;
    }
};

Bytes tcp(unsigned src_port, unsigned dst_port, unsigned flags) {
    Bytes b(20, std::byte{0});
    put16(b, 0, src_port);
    put16(b, 2, dst_port);
    put32(b, 4, 0x11223344);
    put32(b, 8, 0x55667788);
    put8(b, 12, 0x50); // data offset 5; a set NS bit would live here too
    put8(b, 13, flags);
    put16(b, 14, 0xfaf0);
    return b;
}

Bytes udp(unsigned src_port, unsigned dst_port) {
    Bytes b(8, std::byte{0});
    put16(b, 0, src_port);
    put16(b, 2, dst_port);
    put16(b, 4, 8);
    return b;
}

Bytes sctp(unsigned src_port, unsigned dst_port) {
    Bytes b(12, std::byte{0});
    put16(b, 0, src_port);
    put16(b, 2, dst_port);
    put32(b, 4, 0xdeadbeef); // verification tag
    return b;
}

Bytes icmp(unsigned type, unsigned code) {
    Bytes b(8, std::byte{0});
    put8(b, 0, type);
    put8(b, 1, code);
    return b;
}

Bytes with_data(Bytes l4, std::size_t data_len) {
    for (std::size_t i = 0; i < data_len; ++i) l4.push_back(static_cast<std::byte>(i));
    return l4;
}

constexpr PacketMeta kMeta{.time = 1'700'000'000 * kNanosPerSecond + 123, .in_if = 3, .out_if = 7};

struct Parsed {
    ParseResult result;
    PacketInfo info;
};

// Copies into a heap block of exactly the captured size, so that a read past the capture is an
// out-of-bounds read that the sanitizer build reports.
Parsed parse(std::span<const std::byte> bytes, const PacketMeta& meta = kMeta) {
    auto copy = std::make_unique<std::byte[]>(bytes.size());
    std::copy(bytes.begin(), bytes.end(), copy.get());
    Parsed p{ParseResult::invalid, {}};
    p.result = parse_ip_packet(std::span<const std::byte>(copy.get(), bytes.size()), meta, p.info);
    return p;
}

std::uint16_t total_length_field(const Bytes& b) {
    return static_cast<std::uint16_t>(std::to_integer<unsigned>(b[2]) << 8 |
                                      std::to_integer<unsigned>(b[3]));
}

// ---------------------------------------------------------------------------------------------
// ByteReader

TEST(ByteReader, ReadsBigEndianAndAdvances) {
    const Bytes b = raw({0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde});
    ByteReader r{b};
    EXPECT_EQ(r.u8(), 0x12);
    EXPECT_EQ(r.u16(), 0x3456);
    EXPECT_EQ(r.u32(), 0x789abcdeU);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0U);
    EXPECT_EQ(r.position(), 7U);
}

TEST(ByteReader, ReadPastEndYieldsZeroAndFailsWithoutTouchingBytes) {
    const Bytes b = raw({0xff, 0xff, 0xff});
    ByteReader r{std::span(b).first(3)};
    EXPECT_EQ(r.u32(), 0U);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.remaining(), 0U);
}

TEST(ByteReader, FailureIsStickySoALaterSmallerReadCannotSucceed) {
    const Bytes b = raw({0xaa, 0xbb, 0xcc});
    ByteReader r{b};
    r.skip(1);
    EXPECT_EQ(r.u32(), 0U);
    EXPECT_EQ(r.u8(), 0U);
    EXPECT_FALSE(r.ok());
}

TEST(ByteReader, SkipPastEndFails) {
    const Bytes b = raw({1, 2});
    ByteReader r{b};
    r.skip(2);
    EXPECT_TRUE(r.ok());
    r.skip(1);
    EXPECT_FALSE(r.ok());
}

TEST(ByteReader, EmptySpanAllowsNothingButZeroSkip) {
    ByteReader r{std::span<const std::byte>{}};
    r.skip(0);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.u8(), 0);
    EXPECT_FALSE(r.ok());
}

TEST(ByteReader, WorksInConstantExpressions) {
    constexpr std::array<std::byte, 3> b{std::byte{0xca}, std::byte{0xfe}, std::byte{0x01}};
    constexpr auto value = [](std::span<const std::byte> s) {
        ByteReader r{s};
        const auto v = r.u16();
        return r.ok() ? v : 0;
    }(b);
    static_assert(value == 0xcafe);
    constexpr bool short_fails = [](std::span<const std::byte> s) {
        ByteReader r{s};
        r.u32();
        return !r.ok();
    }(b);
    static_assert(short_fails);
    SUCCEED();
}

// ---------------------------------------------------------------------------------------------
// Well-formed packets

TEST(HeaderParser, RealTcpSynWithOptionsGivesKeyFlagsAndTotalLength) {
    // 192.168.1.10:51234 -> 93.184.216.34:443, SYN, DF, 20 bytes of TCP options.
    const Bytes syn = raw({0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0xb1, 0xe6,
                           0xc0, 0xa8, 0x01, 0x0a, 0x5d, 0xb8, 0xd8, 0x22, 0xc8, 0x22, 0x01, 0xbb,
                           0x7a, 0x69, 0x3c, 0x01, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0,
                           0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
                           0x00, 0x9c, 0x4e, 0x2b, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07});
    const auto p = parse(syn);
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.src_addr, 0xc0a8010aU);
    EXPECT_EQ(p.info.key.dst_addr, 0x5db8d822U);
    EXPECT_EQ(p.info.key.src_port, 51234);
    EXPECT_EQ(p.info.key.dst_port, 443);
    EXPECT_EQ(p.info.key.protocol, kTcp);
    EXPECT_EQ(p.info.key.tos, 0);
    EXPECT_EQ(p.info.tcp_flags, kTcpSyn);
    EXPECT_EQ(p.info.octets, 60U);
}

TEST(HeaderParser, CopiesMetaIntoTimeAndInterfaces) {
    const auto p = parse(Ipv4{.protocol = kUdp, .payload = udp(1, 2)}.build(),
                         PacketMeta{.time = 42, .in_if = 11, .out_if = 22});
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.time, 42);
    EXPECT_EQ(p.info.key.in_if, 11U);
    EXPECT_EQ(p.info.out_if, 22U);
}

// MACs and VLAN (issue 13) reach the flow only when v9/IPFIX can export them, as the direction.
TEST(HeaderParser, LinkLayerOnlyWhereV9OrIpfixExportIt) {
    PacketMeta meta = kMeta;
    meta.link.src_mac = {0x02, 0, 0, 0, 0, 0x01};
    meta.link.dst_mac = {0x02, 0, 0, 0, 0, 0x02};
    meta.link.vlan = 100;
    meta.obs_point = 7; // the prefix tag's observation point, a key field as the direction
    const Bytes pkt = Ipv4{.protocol = kUdp, .payload = udp(1, 2)}.build();
    ParsedPacket out;
    HeaderParser v5;
    ASSERT_TRUE(is_accounted(v5.parse(pkt, meta, out)));
    EXPECT_TRUE(out.v4.link.empty());
    EXPECT_EQ(out.v4.key.obs_point, 0);
    HeaderParser ipfix(true);
    ASSERT_TRUE(is_accounted(ipfix.parse(pkt, meta, out)));
    EXPECT_EQ(out.v4.link, meta.link);
    EXPECT_EQ(out.v4.key.obs_point, 7);
}

TEST(HeaderParser, KeepsUnknownInterfacesAsGiven) {
    const auto p = parse(Ipv4{.protocol = kUdp, .payload = udp(1, 2)}.build(), PacketMeta{});
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.in_if, kUnknownIfindex);
    EXPECT_EQ(p.info.out_if, kUnknownIfindex);
}

TEST(HeaderParser, TosIsTheWholeByteIncludingEcn) {
    const auto p = parse(Ipv4{.tos = 0xb9, .protocol = kUdp, .payload = udp(1, 2)}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.tos, 0xb9);
}

TEST(HeaderParser, AddressesAreHostOrder) {
    const auto p = parse(
        Ipv4{.protocol = kGre, .src = 0x01020304, .dst = 0xfffefdfc, .payload = Bytes(8)}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.src_addr, 0x01020304U);
    EXPECT_EQ(p.info.key.dst_addr, 0xfffefdfcU);
}

TEST(HeaderParser, TcpPortsAndFlagsAfterIpOptions) {
    const auto p = parse(
        Ipv4{.ihl = 8, .protocol = kTcp, .payload = tcp(80, 40000, kTcpAck | kTcpPsh)}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.src_port, 80);
    EXPECT_EQ(p.info.key.dst_port, 40000);
    EXPECT_EQ(p.info.tcp_flags, kTcpAck | kTcpPsh);
}

TEST(HeaderParser, TcpFlagsAreTheLowEightBitsOnly) {
    Bytes l4 = tcp(1, 2, 0xff);
    put8(l4, 12, 0x51); // NS bit and data offset share byte 12; v5 has no room for them
    const auto p = parse(Ipv4{.protocol = kTcp, .payload = l4}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.tcp_flags, 0xff);
}

TEST(HeaderParser, UdpPorts) {
    const auto p = parse(Ipv4{.protocol = kUdp, .payload = with_data(udp(53, 61000), 40)}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.src_port, 53);
    EXPECT_EQ(p.info.key.dst_port, 61000);
    EXPECT_EQ(p.info.tcp_flags, 0);
}

TEST(HeaderParser, SctpPorts) {
    const auto p = parse(Ipv4{.protocol = kSctp, .payload = sctp(2905, 2906)}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.src_port, 2905);
    EXPECT_EQ(p.info.key.dst_port, 2906);
}

TEST(HeaderParser, UdpLitePorts) {
    const auto p = parse(Ipv4{.protocol = kUdpLite, .payload = udp(5004, 5005)}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.src_port, 5004);
    EXPECT_EQ(p.info.key.dst_port, 5005);
}

TEST(HeaderParser, IcmpTypeAndCodeGoToDestinationPort) {
    const auto p = parse(Ipv4{.protocol = kIcmp, .payload = icmp(3, 1)}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.src_port, 0);
    EXPECT_EQ(p.info.key.dst_port, 0x0301);
}

TEST(HeaderParser, IcmpEchoRequestIsPort2048) {
    const auto p = parse(Ipv4{.protocol = kIcmp, .payload = with_data(icmp(8, 0), 56)}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.dst_port, 2048);
}

TEST(HeaderParser, OtherProtocolsAreAccountedWithPortsZero) {
    for (const unsigned proto : {0U, 2U, 4U, 41U, 47U, 50U, 51U, 89U, 255U}) {
        SCOPED_TRACE(proto);
        const auto p =
            parse(Ipv4{.protocol = static_cast<std::uint8_t>(proto), .payload = with_data({}, 48)}
                      .build());
        ASSERT_EQ(p.result, ParseResult::accounted);
        EXPECT_EQ(p.info.key.protocol, proto);
        EXPECT_EQ(p.info.key.src_port, 0);
        EXPECT_EQ(p.info.key.dst_port, 0);
        EXPECT_EQ(p.info.tcp_flags, 0);
    }
}

TEST(HeaderParser, OtherProtocolNeedsNoBytesAfterIpHeader) {
    const auto p = parse(Ipv4{.total_length = 1400, .protocol = kGre}.build());
    EXPECT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.octets, 1400U);
}

TEST(HeaderParser, MasksAreZero) {
    PacketInfo info;
    info.src_mask = 24;
    info.dst_mask = 16;
    ASSERT_EQ(parse_ip_packet(Ipv4{.protocol = kUdp, .payload = udp(1, 2)}.build(), kMeta, info),
              ParseResult::accounted);
    EXPECT_EQ(info.src_mask, 0);
    EXPECT_EQ(info.dst_mask, 0);
}

// ---------------------------------------------------------------------------------------------
// Fragments

TEST(HeaderParser, NonFirstFragmentIsAccountedWithPortsZero) {
    // Bytes at the L4 offset are payload of the middle of a datagram, not a header.
    const auto p =
        parse(Ipv4{.flags_fragment = kFlagMf | 185, .protocol = kTcp, .payload = tcp(80, 443, 0xff)}
                  .build());
    ASSERT_EQ(p.result, ParseResult::fragment);
    EXPECT_EQ(p.info.key.protocol, kTcp);
    EXPECT_EQ(p.info.key.src_port, 0);
    EXPECT_EQ(p.info.key.dst_port, 0);
    EXPECT_EQ(p.info.tcp_flags, 0);
    EXPECT_EQ(p.info.octets, 40U);
}

TEST(HeaderParser, LastFragmentWithoutMfIsStillAFragment) {
    const auto p =
        parse(Ipv4{.flags_fragment = 370, .protocol = kUdp, .payload = udp(53, 53)}.build());
    ASSERT_EQ(p.result, ParseResult::fragment);
    EXPECT_EQ(p.info.key.src_port, 0);
}

TEST(HeaderParser, LargestFragmentOffsetIsAFragment) {
    const auto p =
        parse(Ipv4{.flags_fragment = 0x1fff, .protocol = kUdp, .payload = udp(1, 2)}.build());
    EXPECT_EQ(p.result, ParseResult::fragment);
}

TEST(HeaderParser, NonFirstFragmentNeedsNoBytesAfterIpHeader) {
    const auto p =
        parse(Ipv4{.total_length = 1500, .flags_fragment = 100, .protocol = kUdp}.build());
    ASSERT_EQ(p.result, ParseResult::fragment);
    EXPECT_EQ(p.info.octets, 1500U);
}

TEST(HeaderParser, FirstFragmentWithMfIsParsedNormally) {
    const auto p = parse(
        Ipv4{.flags_fragment = kFlagMf, .protocol = kUdp, .payload = with_data(udp(500, 4500), 60)}
            .build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.src_port, 500);
    EXPECT_EQ(p.info.key.dst_port, 4500);
}

TEST(HeaderParser, DfAndReservedFlagsDoNotMakeAFragment) {
    const auto p = parse(
        Ipv4{.flags_fragment = kFlagDf | 0x8000, .protocol = kTcp, .payload = tcp(1, 2, kTcpSyn)}
            .build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.dst_port, 2);
}

TEST(HeaderParser, ReusedOutputCarriesNoStalePortsOrFlags) {
    PacketInfo info;
    ASSERT_EQ(
        parse_ip_packet(Ipv4{.protocol = kTcp, .payload = tcp(1, 2, 0xff)}.build(), kMeta, info),
        ParseResult::accounted);
    ASSERT_EQ(parse_ip_packet(Ipv4{.flags_fragment = 8, .protocol = kTcp}.build(), kMeta, info),
              ParseResult::fragment);
    EXPECT_EQ(info.key.src_port, 0);
    EXPECT_EQ(info.key.dst_port, 0);
    EXPECT_EQ(info.tcp_flags, 0);
    ASSERT_EQ(
        parse_ip_packet(Ipv4{.protocol = kTcp, .payload = tcp(1, 2, 0xff)}.build(), kMeta, info),
        ParseResult::accounted);
    const Bytes cut = Ipv4{.protocol = kTcp, .payload = tcp(1, 2, 0xff)}.build();
    ASSERT_EQ(parse_ip_packet(std::span(cut).first(30), kMeta, info), ParseResult::truncated);
    EXPECT_EQ(info.key.src_port, 0);
    EXPECT_EQ(info.key.dst_port, 0);
    EXPECT_EQ(info.tcp_flags, 0);
}

// ---------------------------------------------------------------------------------------------
// Capture cut inside the L4 header

TEST(HeaderParser, TcpCutBeforeFlagsByteIsTruncatedWithPortsZero) {
    const Bytes b = Ipv4{.protocol = kTcp, .payload = tcp(80, 443, kTcpSyn)}.build();
    const auto p = parse(std::span(b).first(20 + 13)); // ports present, flags byte not
    ASSERT_EQ(p.result, ParseResult::truncated);
    EXPECT_EQ(p.info.key.src_port, 0);
    EXPECT_EQ(p.info.key.dst_port, 0);
    EXPECT_EQ(p.info.tcp_flags, 0);
    EXPECT_EQ(p.info.octets, 40U);
    EXPECT_EQ(p.info.key.protocol, kTcp);
}

TEST(HeaderParser, TcpCutJustAfterFlagsByteIsAccounted) {
    const Bytes b = Ipv4{.protocol = kTcp, .payload = tcp(80, 443, kTcpSyn)}.build();
    const auto p = parse(std::span(b).first(20 + 14));
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.tcp_flags, kTcpSyn);
}

TEST(HeaderParser, UdpCutInsidePortsIsTruncated) {
    const Bytes b = Ipv4{.protocol = kUdp, .payload = udp(53, 53)}.build();
    EXPECT_EQ(parse(std::span(b).first(23)).result, ParseResult::truncated);
    EXPECT_EQ(parse(std::span(b).first(24)).result, ParseResult::accounted);
}

TEST(HeaderParser, IcmpWithOnlyTypeByteIsTruncated) {
    const Bytes b = Ipv4{.protocol = kIcmp, .payload = icmp(8, 0)}.build();
    const auto p = parse(std::span(b).first(21));
    ASSERT_EQ(p.result, ParseResult::truncated);
    EXPECT_EQ(p.info.key.dst_port, 0);
}

TEST(HeaderParser, CaptureEndingAtIpHeaderIsTruncatedForPortProtocols) {
    for (const std::uint8_t proto : {kIcmp, kTcp, kUdp, kSctp, kUdpLite}) {
        SCOPED_TRACE(proto);
        const Bytes b = Ipv4{.protocol = proto, .payload = Bytes(40)}.build();
        const auto p = parse(std::span(b).first(20));
        EXPECT_EQ(p.result, ParseResult::truncated);
        EXPECT_EQ(p.info.octets, 60U);
    }
}

// Every prefix of a valid packet: below the fixed IP header it is invalid, inside the IP
// options, the ports (or the TCP flags byte) truncated, after that accounted; octets is always
// the total length field.
struct SweepCase {
    std::string name;
    Bytes packet;
    std::size_t header_len;
    std::size_t l4_needed; // bytes of L4 header that make it `accounted`
    std::uint16_t src_port;
    std::uint16_t dst_port;
    std::uint8_t tcp_flags;
};

std::vector<SweepCase> sweep_cases() {
    return {
        {"tcp_with_ip_options",
         Ipv4{.ihl = 7,
              .tos = 0x10,
              .protocol = kTcp,
              .payload = with_data(tcp(22, 50022, kTcpAck | kTcpPsh), 40)}
             .build(),
         28, 14, 22, 50022, kTcpAck | kTcpPsh},
        {"tcp_max_ihl",
         Ipv4{.ihl = 15, .protocol = kTcp, .payload = tcp(8080, 1234, kTcpSyn)}.build(), 60, 14,
         8080, 1234, kTcpSyn},
        {"udp", Ipv4{.protocol = kUdp, .payload = with_data(udp(123, 123), 48)}.build(), 20, 4, 123,
         123, 0},
        {"icmp", Ipv4{.protocol = kIcmp, .payload = with_data(icmp(11, 0), 28)}.build(), 20, 2, 0,
         0x0b00, 0},
        {"sctp", Ipv4{.protocol = kSctp, .payload = with_data(sctp(36412, 36412), 32)}.build(), 20,
         4, 36412, 36412, 0},
        {"udplite", Ipv4{.protocol = kUdpLite, .payload = udp(9, 10)}.build(), 20, 4, 9, 10, 0},
        {"gre", Ipv4{.protocol = kGre, .payload = with_data({}, 24)}.build(), 20, 0, 0, 0, 0},
    };
}

TEST(HeaderParser, EveryCaptureCutOfValidPacketsFollowsTheRules) {
    for (const SweepCase& c : sweep_cases()) {
        const std::uint16_t total = total_length_field(c.packet);
        for (std::size_t len = 0; len <= c.packet.size(); ++len) {
            SCOPED_TRACE(c.name + " cut at " + std::to_string(len));
            const auto p = parse(std::span(c.packet).first(len));
            if (len < 20) {
                EXPECT_EQ(p.result, ParseResult::invalid);
                continue;
            }
            const bool whole = len >= c.header_len && len - c.header_len >= c.l4_needed;
            EXPECT_EQ(p.result, whole ? ParseResult::accounted : ParseResult::truncated);
            EXPECT_EQ(p.info.octets, total);
            EXPECT_EQ(p.info.key.src_port, whole ? c.src_port : 0);
            EXPECT_EQ(p.info.key.dst_port, whole ? c.dst_port : 0);
            EXPECT_EQ(p.info.tcp_flags, whole ? c.tcp_flags : 0);
        }
    }
}

TEST(HeaderParser, EveryCaptureCutOfANonFirstFragmentIsFragmentOnceFixedHeaderIsIn) {
    const Bytes b =
        Ipv4{.ihl = 6, .flags_fragment = 64, .protocol = kUdp, .payload = with_data({}, 60)}
            .build();
    for (std::size_t len = 0; len <= b.size(); ++len) {
        SCOPED_TRACE(len);
        const auto p = parse(std::span(b).first(len));
        EXPECT_EQ(p.result, len < 20 ? ParseResult::invalid : ParseResult::fragment);
        if (len >= 20) {
            EXPECT_EQ(p.info.octets, 84U);
        }
    }
}

TEST(HeaderParser, EveryCaptureCutOfAnIpv6PacketIsInvalidUntilFixedHeaderIsIn) {
    Bytes b(80, std::byte{0});
    put8(b, 0, 0x60);
    put16(b, 4, 40); // payload length
    put8(b, 6, kUdp);
    for (std::size_t len = 0; len <= b.size(); ++len) {
        SCOPED_TRACE(len);
        EXPECT_EQ(parse(std::span(b).first(len)).result,
                  len < 40 ? ParseResult::invalid : ParseResult::ipv6);
    }
}

// ---------------------------------------------------------------------------------------------
// Not accounted

TEST(HeaderParser, EmptyCaptureIsInvalid) {
    EXPECT_EQ(parse(std::span<const std::byte>{}).result, ParseResult::invalid);
}

TEST(HeaderParser, Ipv6IsRecognisedNotAccounted) {
    Bytes b(60, std::byte{0});
    put32(b, 0, 0x6000'0000);
    EXPECT_EQ(parse(b).result, ParseResult::ipv6);
    EXPECT_FALSE(is_accounted(ParseResult::ipv6));
}

TEST(HeaderParser, UnknownVersionsAreInvalid) {
    for (unsigned v = 0; v < 16; ++v) {
        if (v == 4 || v == 6) continue;
        SCOPED_TRACE(v);
        EXPECT_EQ(parse(Ipv4{.version = v, .protocol = kUdp, .payload = udp(1, 2)}.build()).result,
                  ParseResult::invalid);
    }
}

TEST(HeaderParser, IhlBelowFiveIsInvalid) {
    for (unsigned ihl = 0; ihl < 5; ++ihl) {
        SCOPED_TRACE(ihl);
        EXPECT_EQ(parse(Ipv4{.ihl = ihl, .protocol = kUdp, .payload = udp(1, 2)}.build()).result,
                  ParseResult::invalid);
    }
}

TEST(HeaderParser, TotalLengthShorterThanIpHeaderIsInvalid) {
    EXPECT_EQ(
        parse(Ipv4{.total_length = 19, .protocol = kUdp, .payload = udp(1, 2)}.build()).result,
        ParseResult::invalid);
    EXPECT_EQ(parse(Ipv4{.total_length = 0, .protocol = kUdp, .payload = udp(1, 2)}.build()).result,
              ParseResult::invalid);
    // Long enough for a bare header, not for this one's options.
    EXPECT_EQ(
        parse(Ipv4{.ihl = 6, .total_length = 20, .protocol = kUdp, .payload = udp(1, 2)}.build())
            .result,
        ParseResult::invalid);
}

TEST(HeaderParser, TotalLengthEqualToIpHeaderIsAccounted) {
    const auto p = parse(Ipv4{.ihl = 6, .total_length = 24, .protocol = kGre}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.octets, 24U);
}

TEST(HeaderParser, CaptureShorterThanFixedIpHeaderIsInvalid) {
    const Bytes b = Ipv4{.protocol = kGre, .payload = Bytes(20)}.build();
    for (std::size_t len = 0; len < 20; ++len) {
        EXPECT_EQ(parse(std::span(b).first(len)).result, ParseResult::invalid) << len;
    }
}

// ---------------------------------------------------------------------------------------------
// Offloads (GRO/GSO/TSO, BIG TCP), IP options cut, IGMP: ipt_NETFLOW's accounting

// A capture as NFLOG delivers it: the first `snaplen` bytes, plus the length the capture layer
// knows (0: unknown, as with NFLOG).
ParseResult parse_counted(HeaderParser& parser, const Bytes& b, std::size_t snaplen,
                          std::uint32_t wire_len, PacketInfo& info) {
    PacketMeta meta = kMeta;
    meta.wire_len = wire_len;
    ParsedPacket parsed;
    const ParseResult r =
        parser.parse(std::span(b).first(std::min(snaplen, b.size())), meta, parsed);
    info = parsed.v4;
    return r;
}

TEST(HeaderParserOffload, GsoSizedPacketCutAtSnaplenIsAccountedWholeAndCountedOversize) {
    // A GRO-merged super-packet: one NFLOG packet for ~44 wire packets, 128 bytes captured.
    HeaderParser parser;
    PacketInfo info;
    const Bytes b = Ipv4{.total_length = 64000,
                         .protocol = kTcp,
                         .payload = with_data(tcp(443, 50000, kTcpAck), 200)}
                        .build();
    ASSERT_EQ(parse_counted(parser, b, 128, 0, info), ParseResult::accounted);
    EXPECT_EQ(info.octets, 64000U);
    EXPECT_EQ(info.key.src_port, 443);
    EXPECT_EQ(info.key.dst_port, 50000);
    EXPECT_EQ(info.tcp_flags, kTcpAck);
    EXPECT_EQ(parser.stats().accounted, 1U);
    EXPECT_EQ(parser.stats().oversize, 1U);
}

TEST(HeaderParserOffload, OversizeStartsAboveTheEthernetMtu) {
    HeaderParser parser;
    PacketInfo info;
    for (const unsigned len : {40U, 1500U, 1501U, 9000U}) {
        const Bytes b = Ipv4{.total_length = static_cast<std::uint16_t>(len),
                             .protocol = kUdp,
                             .payload = udp(1, 2)}
                            .build();
        ASSERT_EQ(parse_counted(parser, b, 128, 0, info), ParseResult::accounted);
    }
    const Bytes frag = Ipv4{.total_length = 4000, .flags_fragment = 8, .protocol = kUdp}.build();
    ASSERT_EQ(parse_counted(parser, frag, 128, 0, info), ParseResult::fragment);
    EXPECT_EQ(parser.stats().oversize, 3U); // 1501, 9000 and the fragment
}

TEST(HeaderParserOffload, BigTcpPacketIsAccountedWithTheCaptureLayersLength) {
    // BIG TCP (Linux 6.3+): a 185,000-byte GRO packet, IPv4 total length 0.
    HeaderParser parser;
    PacketInfo info;
    const Bytes b = Ipv4{.total_length = 0,
                         .protocol = kTcp,
                         .payload = with_data(tcp(5201, 40000, kTcpAck | kTcpPsh), 300)}
                        .build();
    ASSERT_EQ(parse_counted(parser, b, 128, 185000, info), ParseResult::accounted);
    EXPECT_EQ(info.octets, 185000U);
    EXPECT_EQ(info.key.src_port, 5201);
    EXPECT_EQ(info.key.dst_port, 40000);
    EXPECT_EQ(info.tcp_flags, kTcpAck | kTcpPsh);
    EXPECT_EQ(parser.stats().accounted, 1U);
    EXPECT_EQ(parser.stats().oversize, 1U);
    EXPECT_EQ(parser.stats().unknown_length, 0U);
    EXPECT_EQ(parser.stats().invalid, 0U);
}

TEST(HeaderParserOffload, BigTcpPacketOfUnknownLengthIsCountedNotDropped) {
    // NFLOG gives no original length and copies at most ~64 KiB: the length is unknown.
    HeaderParser parser;
    PacketInfo info;
    const Bytes b = Ipv4{.total_length = 0,
                         .protocol = kTcp,
                         .payload = with_data(tcp(5201, 40000, kTcpAck), 300)}
                        .build();
    EXPECT_EQ(parse_counted(parser, b, 128, 0, info), ParseResult::unknown_length);
    EXPECT_FALSE(is_accounted(ParseResult::unknown_length));
    const ParseStats& s = parser.stats();
    EXPECT_EQ(s.packets, 1U);
    EXPECT_EQ(s.unknown_length, 1U);
    EXPECT_EQ(s.invalid, 0U);
    EXPECT_EQ(s.accounted, 0U);
    EXPECT_EQ(s.oversize, 0U);
    EXPECT_EQ(s.packets, s.accounted + s.ipv6 + s.invalid + s.unknown_length);
}

TEST(HeaderParserOffload, ZeroTotalLengthIsBigTcpOnlyForTcpAboveSixtyFourKiB) {
    // The kernel zeroes the field only for GSO TCP that does not fit 16 bits (iph_totlen()).
    const Bytes udp0 = Ipv4{.total_length = 0, .protocol = kUdp, .payload = udp(1, 2)}.build();
    const Bytes tcp0 = Ipv4{.total_length = 0, .protocol = kTcp, .payload = tcp(1, 2, 0)}.build();
    PacketMeta meta = kMeta;
    meta.wire_len = 100000;
    EXPECT_EQ(parse(udp0, meta).result, ParseResult::invalid);
    EXPECT_EQ(parse(udp0).result, ParseResult::invalid);
    meta.wire_len = 65535;
    EXPECT_EQ(parse(tcp0, meta).result, ParseResult::invalid);
    meta.wire_len = 65536;
    const auto p = parse(std::span(tcp0).first(20), meta);
    ASSERT_EQ(p.result, ParseResult::truncated);
    EXPECT_EQ(p.info.octets, 65536U);
}

TEST(HeaderParserOffload, WireLenNeverOverridesANonZeroTotalLength) {
    PacketMeta meta = kMeta;
    meta.wire_len = 1514; // e.g. a pcap's original length, link header included by mistake
    const auto p = parse(Ipv4{.protocol = kUdp, .payload = udp(1, 2)}.build(), meta);
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.octets, 28U);
}

TEST(HeaderParser, PacketCutInsideItsIpOptionsIsAccountedAsTruncated) {
    // 12 bytes of options (IHL 8), 24 bytes captured: everything but the ports is known.
    HeaderParser parser;
    PacketInfo info;
    const Bytes b =
        Ipv4{.ihl = 8, .tos = 0xb8, .protocol = kUdp, .payload = with_data(udp(53, 53), 100)}
            .build();
    ASSERT_EQ(parse_counted(parser, b, 24, 0, info), ParseResult::truncated);
    EXPECT_EQ(info.key.src_addr, 0x0a000001U);
    EXPECT_EQ(info.key.dst_addr, 0xc0a80102U);
    EXPECT_EQ(info.key.protocol, kUdp);
    EXPECT_EQ(info.key.tos, 0xb8);
    EXPECT_EQ(info.key.src_port, 0);
    EXPECT_EQ(info.key.dst_port, 0);
    EXPECT_EQ(info.key.in_if, kMeta.in_if);
    EXPECT_EQ(info.out_if, kMeta.out_if);
    EXPECT_EQ(info.octets, 140U);
    EXPECT_EQ(parser.stats().truncated, 1U);
    EXPECT_EQ(parser.stats().accounted, 1U);
    EXPECT_EQ(parser.stats().invalid, 0U);
}

TEST(HeaderParser, IgmpTypeIsTheDestinationPortHighByte) {
    // ipt_NETFLOW on x86: the type byte in the port field's first (most significant) byte.
    const std::array<std::pair<unsigned, std::uint16_t>, 4> cases{{
        {0x11, 0x1100}, // membership query
        {0x16, 0x1600}, // v2 membership report
        {0x17, 0x1700}, // v2 leave group
        {0x22, 0x2200}, // v3 membership report
    }};
    HeaderParser parser;
    for (const auto& [type, port] : cases) {
        SCOPED_TRACE(type);
        PacketInfo info;
        // IGMP travels with a Router Alert option (IHL 6); byte 1 is the max response time.
        const Bytes b = Ipv4{.ihl = 6, .protocol = kIgmp, .payload = icmp(type, 100)}.build();
        ASSERT_EQ(parse_counted(parser, b, 128, 0, info), ParseResult::accounted);
        EXPECT_EQ(info.key.dst_port, port);
        EXPECT_EQ(info.key.src_port, 0);
        EXPECT_EQ(info.octets, 32U);
    }
    EXPECT_EQ(parser.stats().accounted, 4U);
}

TEST(HeaderParser, IgmpCutBeforeItsTypeIsTruncated) {
    const Bytes b = Ipv4{.protocol = kIgmp, .payload = icmp(0x11, 0)}.build();
    const auto p = parse(std::span(b).first(20));
    ASSERT_EQ(p.result, ParseResult::truncated);
    EXPECT_EQ(p.info.key.dst_port, 0);
    EXPECT_EQ(parse(std::span(b).first(21)).info.key.dst_port, 0x1100);
}

// ---------------------------------------------------------------------------------------------
// Hostile headers

TEST(HeaderParser, TotalLengthBiggerThanCaptureIsAccountedWithTheField) {
    const auto p = parse(
        Ipv4{.total_length = 65535, .protocol = kTcp, .payload = tcp(443, 60000, kTcpAck)}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.octets, 65535U);
    EXPECT_EQ(p.info.key.src_port, 443);
    EXPECT_EQ(p.info.tcp_flags, kTcpAck);
}

TEST(HeaderParser, MaxIhlWithOnlyTwentyBytesCapturedIsTruncated) {
    const Bytes b = Ipv4{.ihl = 15, .protocol = kUdp, .payload = udp(1, 2)}.build();
    EXPECT_EQ(parse(std::span(b).first(19)).result, ParseResult::invalid);
    EXPECT_EQ(parse(std::span(b).first(20)).result, ParseResult::truncated);
    EXPECT_EQ(parse(std::span(b).first(59)).result, ParseResult::truncated);
    EXPECT_EQ(parse(std::span(b).first(64)).result, ParseResult::accounted);
}

TEST(HeaderParser, IhlPointingPastTotalLengthIsInvalidEvenIfCaptured) {
    const auto p =
        parse(Ipv4{.ihl = 15, .total_length = 40, .protocol = kUdp, .payload = udp(1, 2)}.build());
    EXPECT_EQ(p.result, ParseResult::invalid);
}

TEST(HeaderParser, BytesAfterTotalLengthAreNotTakenForAnL4Header) {
    // A 20-byte TCP "packet" padded to Ethernet's minimum: the padding is not a TCP header.
    const auto p = parse(
        Ipv4{.total_length = 20, .protocol = kTcp, .payload = tcp(1234, 80, kTcpSyn)}.build());
    ASSERT_EQ(p.result, ParseResult::truncated);
    EXPECT_EQ(p.info.key.src_port, 0);
    EXPECT_EQ(p.info.key.dst_port, 0);
    EXPECT_EQ(p.info.tcp_flags, 0);
    EXPECT_EQ(p.info.octets, 20U);
}

TEST(HeaderParser, UdpHeaderEndingExactlyAtTotalLengthIsAccounted) {
    const auto p = parse(
        Ipv4{.total_length = 24, .protocol = kUdp, .payload = with_data(udp(7, 9), 30)}.build());
    ASSERT_EQ(p.result, ParseResult::accounted);
    EXPECT_EQ(p.info.key.dst_port, 9);
}

TEST(HeaderParser, Ipv6NibbleOnShortCaptureIsInvalid) {
    Bytes b(39, std::byte{0});
    put8(b, 0, 0x60);
    EXPECT_EQ(parse(b).result, ParseResult::invalid);
}

TEST(HeaderParser, Version6NibbleWinsOverIpv4LookingFields) {
    // Bytes that would pass as IPv4 apart from the version are still counted as IPv6.
    Bytes b = Ipv4{.protocol = kTcp, .payload = tcp(1, 2, 0)}.build();
    put8(b, 0, 0x65);
    EXPECT_EQ(parse(b).result, ParseResult::ipv6);
}

TEST(HeaderParser, RandomBytesNeverBreakTheRules) {
    std::mt19937 rng(20240601); // fixed: failures must reproduce
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<std::size_t> length(0, 128);
    for (int i = 0; i < 20000; ++i) {
        Bytes b(length(rng));
        for (auto& x : b) x = static_cast<std::byte>(byte(rng));
        // Bias towards plausible IPv4 so the deeper paths are reached.
        if (!b.empty() && i % 2 == 0) b[0] = static_cast<std::byte>(0x40 | (byte(rng) & 0x0f));
        const auto p = parse(b);
        if (b.size() < 20) {
            ASSERT_EQ(p.result, ParseResult::invalid);
        } else if (is_accounted(p.result)) {
            ASSERT_EQ(p.info.octets, total_length_field(b));
            ASSERT_EQ(std::to_integer<unsigned>(b[0]) >> 4, 4U);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Counting

TEST(HeaderParserStats, CountsEveryOutcome) {
    HeaderParser parser;
    ParsedPacket info;
    const Bytes ok = Ipv4{.protocol = kUdp, .payload = udp(1, 2)}.build();
    const Bytes frag = Ipv4{.flags_fragment = 1, .protocol = kUdp}.build();
    const Bytes cut = Ipv4{.protocol = kTcp}.build();
    Bytes v6(40, std::byte{0});
    put8(v6, 0, 0x60);
    const Bytes bad = Ipv4{.ihl = 4}.build();

    EXPECT_EQ(parser.parse(ok, kMeta, info), ParseResult::accounted);
    EXPECT_EQ(parser.parse(ok, kMeta, info), ParseResult::accounted);
    EXPECT_EQ(parser.parse(frag, kMeta, info), ParseResult::fragment);
    EXPECT_EQ(parser.parse(cut, kMeta, info), ParseResult::truncated);
    EXPECT_EQ(parser.parse(v6, kMeta, info), ParseResult::ipv6);
    EXPECT_EQ(parser.parse(bad, kMeta, info), ParseResult::invalid);
    EXPECT_EQ(parser.parse({}, kMeta, info), ParseResult::invalid);

    const ParseStats& s = parser.stats();
    EXPECT_EQ(s.packets, 7U);
    EXPECT_EQ(s.accounted, 4U); // fragments and truncated are accounted too
    EXPECT_EQ(s.fragments, 1U);
    EXPECT_EQ(s.truncated, 1U);
    EXPECT_EQ(s.ipv6, 1U);
    EXPECT_EQ(s.invalid, 2U);
    EXPECT_EQ(s.unknown_length, 0U);
    EXPECT_EQ(s.oversize, 0U);
    EXPECT_EQ(s.packets, s.accounted + s.ipv6 + s.invalid + s.unknown_length);
}

TEST(HeaderParserStats, ParseGivesTheSameAnswerAsTheFreeFunction) {
    HeaderParser parser;
    const Bytes b = Ipv4{.ihl = 6, .protocol = kTcp, .payload = tcp(5, 6, kTcpSyn)}.build();
    ParsedPacket parsed;
    PacketInfo c;
    EXPECT_EQ(parser.parse(b, kMeta, parsed), parse_ip_packet(b, kMeta, c));
    const PacketInfo& a = parsed.v4;
    EXPECT_EQ(parsed.family, Family::ipv4);
    EXPECT_EQ(a.key, c.key);
    EXPECT_EQ(a.octets, c.octets);
    EXPECT_EQ(a.tcp_flags, c.tcp_flags);
}

TEST(HeaderParserStats, ResetClearsCounters) {
    HeaderParser parser;
    ParsedPacket info;
    parser.parse({}, kMeta, info);
    parser.reset_stats();
    EXPECT_EQ(parser.stats().packets, 0U);
    EXPECT_EQ(parser.stats().invalid, 0U);
}

TEST(HeaderParserStats, PlusEqualsSumsEveryCounter) {
    ParseStats a{.packets = 10,
                 .accounted = 6,
                 .fragments = 1,
                 .truncated = 2,
                 .ipv6 = 3,
                 .invalid = 1,
                 .unknown_length = 1,
                 .oversize = 4};
    const ParseStats b{.packets = 5,
                       .accounted = 4,
                       .fragments = 2,
                       .truncated = 1,
                       .ipv6 = 0,
                       .invalid = 1,
                       .unknown_length = 2,
                       .oversize = 3};
    ParseStats& r = (a += b);
    EXPECT_EQ(&r, &a);
    EXPECT_EQ(a.packets, 15U);
    EXPECT_EQ(a.accounted, 10U);
    EXPECT_EQ(a.fragments, 3U);
    EXPECT_EQ(a.truncated, 3U);
    EXPECT_EQ(a.ipv6, 3U);
    EXPECT_EQ(a.invalid, 2U);
    EXPECT_EQ(a.unknown_length, 3U);
    EXPECT_EQ(a.oversize, 7U);
}

} // namespace
} // namespace nflowd
