// `oversize` against each interface's own MTU (issue 11): jumbo links count nothing they
// carry as they are, a tunnel's GSO merges are seen, unknown interfaces and --read use 1500.
#include "nflowd/header_parser.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace nflowd {
namespace {

constexpr std::uint32_t kJumbo = 2;  // MTU 9000
constexpr std::uint32_t kTunnel = 5; // MTU 1420
constexpr std::uint32_t kSmall = 7;  // MTU 1280, the output of OUTPUT packets below

std::shared_ptr<const LinkMtus> mtus() {
    LinkMtus m;
    m.by_ifindex.assign(8, kDefaultMtu);
    m.by_ifindex[kJumbo] = 9000;
    m.by_ifindex[kTunnel] = 1420;
    m.by_ifindex[kSmall] = 1280;
    return std::make_shared<const LinkMtus>(std::move(m));
}

// Parses one UDP packet of `length` bytes (128 captured, as NFLOG copies) seen on in_if/out_if;
// true when it was counted oversize.
bool oversize(HeaderParser& parser, std::uint32_t length, std::uint32_t in_if,
              std::uint32_t out_if = kUnknownIfindex) {
    const auto before = parser.stats().oversize;
    const auto b =
        test::ipv4_packet(0x0a000001, 0x0a000002, 17, 1000, 53, static_cast<std::uint16_t>(length));
    ParsedPacket parsed;
    const PacketMeta meta{.in_if = in_if, .out_if = out_if};
    EXPECT_TRUE(is_accounted(parser.parse(b, meta, parsed)));
    EXPECT_EQ(parsed.v4.octets, length);
    return parser.stats().oversize != before;
}

TEST(Oversize, ComparedWithTheInputInterfacesMtu) {
    HeaderParser parser;
    parser.set_mtus(mtus());
    EXPECT_FALSE(oversize(parser, 4000, kJumbo)); // an ordinary jumbo frame
    EXPECT_FALSE(oversize(parser, 9000, kJumbo));
    EXPECT_TRUE(oversize(parser, 9001, kJumbo));
    EXPECT_TRUE(oversize(parser, 9500, kJumbo)); // GRO merged on the jumbo link
    EXPECT_FALSE(oversize(parser, 1420, kTunnel));
    EXPECT_TRUE(oversize(parser, 1450, kTunnel)); // a GSO merge that 1500 would miss
    // Forwarded from the jumbo link to the small one: merged or not is the input's question.
    EXPECT_FALSE(oversize(parser, 4000, kJumbo, kSmall));
    EXPECT_EQ(parser.stats().oversize, 3U);
}

TEST(Oversize, UnknownInterfacesTake1500) {
    HeaderParser parser;
    parser.set_mtus(mtus());
    EXPECT_FALSE(oversize(parser, 1500, 1)); // in the table as unknown
    EXPECT_TRUE(oversize(parser, 1501, 1));
    EXPECT_TRUE(oversize(parser, 1501, 100)); // beyond the table's end
    EXPECT_FALSE(oversize(parser, 1500, 100));
    EXPECT_TRUE(oversize(parser, 1501, kMtuIndexes + kJumbo));             // beyond any table
    EXPECT_TRUE(oversize(parser, 1501, kUnknownIfindex, kUnknownIfindex)); // no interface
    EXPECT_EQ(parser.stats().oversize, 4U);
}

TEST(Oversize, LocallySentPacketsUseTheOutputInterface) {
    // OUTPUT: no input interface; GSO/TSO built the packet for the output.
    HeaderParser parser;
    parser.set_mtus(mtus());
    EXPECT_FALSE(oversize(parser, 4000, kUnknownIfindex, kJumbo));
    EXPECT_TRUE(oversize(parser, 9500, kUnknownIfindex, kJumbo));
    EXPECT_TRUE(oversize(parser, 1300, kUnknownIfindex, kSmall));
    EXPECT_FALSE(oversize(parser, 1280, kUnknownIfindex, kSmall));
    EXPECT_EQ(parser.stats().oversize, 2U);
}

TEST(Oversize, WithoutMtusEveryInterfaceIs1500) {
    // --read: no rtnetlink, no table; and a table taken back.
    HeaderParser parser;
    EXPECT_TRUE(oversize(parser, 4000, kJumbo));
    EXPECT_FALSE(oversize(parser, 1500, kJumbo));
    parser.set_mtus(mtus());
    EXPECT_FALSE(oversize(parser, 4000, kJumbo));
    parser.set_mtus(nullptr);
    EXPECT_TRUE(oversize(parser, 4000, kJumbo));
    EXPECT_EQ(parser.stats().oversize, 2U);
}

TEST(Oversize, Ipv6ComparedTheSameWay) {
    HeaderParser parser(true);
    parser.set_mtus(mtus());
    // 40 + payload: a 4000-byte and a 9500-byte UDP packet on the jumbo link.
    for (const std::uint16_t payload : std::vector<std::uint16_t>{3960, 9460}) {
        std::vector<std::byte> b(48, std::byte{0});
        b[0] = std::byte{0x60};
        b[4] = static_cast<std::byte>(payload >> 8);
        b[5] = static_cast<std::byte>(payload & 0xff);
        b[6] = std::byte{17};
        ParsedPacket parsed;
        ASSERT_TRUE(is_accounted(parser.parse(b, PacketMeta{.in_if = kJumbo}, parsed)));
        EXPECT_EQ(parsed.v6.octets, payload + 40U);
    }
    EXPECT_EQ(parser.stats().oversize, 1U);
}

TEST(Oversize, TheTableCoversOnlyWhatItHolds) {
    EXPECT_EQ(mtu_of({}, 0), kDefaultMtu);
    const std::vector<std::uint32_t> t{1500, 65536, 9000};
    EXPECT_EQ(mtu_of(t, 1), 65536U);
    EXPECT_EQ(mtu_of(t, 2), 9000U);
    EXPECT_EQ(mtu_of(t, 3), kDefaultMtu);
    EXPECT_EQ(mtu_of(t, kUnknownIfindex), kDefaultMtu);
}

} // namespace
} // namespace nflowd
