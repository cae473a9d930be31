#include "nflowd/aggregation.hpp"
#include "nflowd/flow_table.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace nflowd {
namespace {

constexpr std::uint32_t ip(std::uint32_t a, std::uint32_t b, std::uint32_t c, std::uint32_t d) {
    return (a << 24) | (b << 16) | (c << 8) | d;
}

PacketInfo packet(std::uint32_t src, std::uint32_t dst, std::uint16_t sport, std::uint16_t dport,
                  std::uint8_t protocol = 6) {
    PacketInfo p;
    p.key.src_addr = src;
    p.key.dst_addr = dst;
    p.key.src_port = sport;
    p.key.dst_port = dport;
    p.key.protocol = protocol;
    p.key.in_if = 1;
    p.time = 1'700'000'000 * kNanosPerSecond;
    p.octets = 100;
    return p;
}

const char* const kExample = "192.0.0.0/8=16,10.0.0.0/8=16,80-89=80,3128=80";

TEST(Aggregation, EmptySpecAggregatesNothing) {
    for (const char* spec : {"", "   ", "\t"}) {
        const Aggregation a = Aggregation::parse(spec);
        EXPECT_TRUE(a.empty());
        EXPECT_EQ(a.to_string(), "");
        PacketInfo p = packet(ip(10, 1, 2, 3), ip(192, 168, 1, 1), 1234, 80);
        const PacketInfo before = p;
        a.apply(p);
        EXPECT_EQ(p.key, before.key);
        EXPECT_EQ(p.src_mask, 0);
        EXPECT_EQ(p.dst_mask, 0);
    }
}

TEST(Aggregation, NetmaskRuleMasksAddressAndSetsMask) {
    const Aggregation a = Aggregation::parse(kExample);
    PacketInfo p = packet(ip(10, 1, 2, 3), ip(192, 168, 7, 9), 5000, 6000);
    a.apply(p);
    EXPECT_EQ(p.key.src_addr, ip(10, 1, 0, 0));
    EXPECT_EQ(p.key.dst_addr, ip(192, 168, 0, 0));
    EXPECT_EQ(p.src_mask, 16);
    EXPECT_EQ(p.dst_mask, 16);
}

TEST(Aggregation, SourceAndDestinationAreAggregatedIndependently) {
    const Aggregation a = Aggregation::parse(kExample);
    PacketInfo p = packet(ip(172, 16, 1, 1), ip(10, 200, 3, 4), 3128, 443);
    a.apply(p);
    EXPECT_EQ(p.key.src_addr, ip(172, 16, 1, 1)); // no rule matches
    EXPECT_EQ(p.src_mask, 0);
    EXPECT_EQ(p.key.dst_addr, ip(10, 200, 0, 0));
    EXPECT_EQ(p.dst_mask, 16);
    EXPECT_EQ(p.key.src_port, 80); // 3128=80
    EXPECT_EQ(p.key.dst_port, 443);
}

TEST(Aggregation, FirstMatchingNetRuleWins) {
    const Aggregation a = Aggregation::parse("10.1.0.0/16=24,10.0.0.0/8=8");
    PacketInfo p = packet(ip(10, 1, 2, 3), ip(10, 2, 3, 4), 1, 2);
    a.apply(p);
    EXPECT_EQ(p.key.src_addr, ip(10, 1, 2, 0));
    EXPECT_EQ(p.src_mask, 24);
    EXPECT_EQ(p.key.dst_addr, ip(10, 0, 0, 0));
    EXPECT_EQ(p.dst_mask, 8);

    // Reversed order: the broad rule shadows the narrow one.
    const Aggregation b = Aggregation::parse("10.0.0.0/8=8,10.1.0.0/16=24");
    PacketInfo q = packet(ip(10, 1, 2, 3), 0, 1, 2);
    b.apply(q);
    EXPECT_EQ(q.key.src_addr, ip(10, 0, 0, 0));
    EXPECT_EQ(q.src_mask, 8);
}

TEST(Aggregation, FirstMatchingPortRuleWins) {
    const Aggregation a = Aggregation::parse("80-89=80,85=85");
    PacketInfo p = packet(1, 2, 85, 90);
    a.apply(p);
    EXPECT_EQ(p.key.src_port, 80);
    EXPECT_EQ(p.key.dst_port, 90);
}

TEST(Aggregation, PortRangeBoundsAreInclusive) {
    const Aggregation a = Aggregation::parse("80-89=1");
    for (std::uint16_t port :
         {std::uint16_t{79}, std::uint16_t{80}, std::uint16_t{89}, std::uint16_t{90}}) {
        PacketInfo p = packet(1, 2, port, 0);
        a.apply(p);
        EXPECT_EQ(p.key.src_port, (port >= 80 && port <= 89) ? 1 : port) << port;
    }
}

TEST(Aggregation, PortRulesApplyToTcpUdpSctpAndUdpLite) {
    const Aggregation a = Aggregation::parse("80-89=80");
    for (int proto : {6, 17, 132, 136}) {
        PacketInfo p = packet(1, 2, 81, 88, static_cast<std::uint8_t>(proto));
        a.apply(p);
        EXPECT_EQ(p.key.src_port, 80) << proto;
        EXPECT_EQ(p.key.dst_port, 80) << proto;
    }
}

TEST(Aggregation, PortRulesAreNotAppliedToIcmp) {
    const Aggregation a = Aggregation::parse(kExample);
    // ICMP carries type/code in the port fields; rewriting them would corrupt the record.
    PacketInfo p = packet(ip(10, 1, 2, 3), ip(8, 8, 8, 8), 80, 85, /*ICMP*/ 1);
    a.apply(p);
    EXPECT_EQ(p.key.src_port, 80);
    EXPECT_EQ(p.key.dst_port, 85);
    EXPECT_EQ(p.key.src_addr, ip(10, 1, 0, 0)); // netmask rules still apply
}

TEST(Aggregation, MergesTwoFlowsIntoOne) {
    const Aggregation a = Aggregation::parse(kExample);
    FlowTableConfig c;
    c.hashsize = 256;
    FlowTable t(c);
    std::vector<FlowRecord> out;

    PacketInfo p1 = packet(ip(10, 1, 2, 3), ip(192, 168, 1, 1), 40000, 81);
    PacketInfo p2 = packet(ip(10, 1, 200, 7), ip(192, 168, 99, 2), 40000, 88);
    a.apply(p1);
    a.apply(p2);
    EXPECT_TRUE(t.add(p1, out));
    EXPECT_TRUE(t.add(p2, out));
    EXPECT_EQ(t.size(), 1U);

    t.flush(out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].packets, 2U);
    EXPECT_EQ(out[0].octets, 200U);
    EXPECT_EQ(out[0].key.src_addr, ip(10, 1, 0, 0));
    EXPECT_EQ(out[0].key.dst_addr, ip(192, 168, 0, 0));
    EXPECT_EQ(out[0].key.dst_port, 80);
    EXPECT_EQ(out[0].src_mask, 16);
    EXPECT_EQ(out[0].dst_mask, 16);
}

TEST(Aggregation, ToStringIsCanonicalAndReparses) {
    const Aggregation a = Aggregation::parse(kExample);
    EXPECT_EQ(a.to_string(), kExample);

    // Whitespace dropped, host bits of the network cleared, single-port range collapsed.
    const Aggregation b = Aggregation::parse("  10.1.2.3/8 = 16 ,\t80-80=8080 , 1000-2000=1 ");
    EXPECT_EQ(b.to_string(), "10.0.0.0/8=16,80=8080,1000-2000=1");
    EXPECT_EQ(Aggregation::parse(b.to_string()).to_string(), b.to_string());
}

TEST(Aggregation, AcceptsExtremeValues) {
    const Aggregation a = Aggregation::parse("0.0.0.0/0=0,255.255.255.255/32=32,0-65535=65535");
    EXPECT_EQ(a.to_string(), "0.0.0.0/0=0,255.255.255.255/32=32,0-65535=65535");
    PacketInfo p = packet(ip(1, 2, 3, 4), ip(5, 6, 7, 8), 1, 2);
    a.apply(p);
    EXPECT_EQ(p.key.src_addr, 0U); // /0 matches everything and aggregates to nothing
    EXPECT_EQ(p.src_mask, 0);
    EXPECT_EQ(p.key.src_port, 65535);
}

void expect_rejected(const std::string& spec, const std::string& rule, const std::string& why) {
    try {
        Aggregation::parse(spec);
        ADD_FAILURE() << "accepted: " << spec;
    } catch (const std::invalid_argument& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg, "aggregation: bad rule \"" + rule + "\": " + why) << spec;
    }
}

TEST(Aggregation, RejectsPrefixAbove32NamingTheRule) {
    expect_rejected("10.0.0.0/33=16", "10.0.0.0/33=16", "prefix must be 0-32");
    expect_rejected("10.0.0.0/8=33", "10.0.0.0/8=33", "aggregation prefix must be 0-32");
}

TEST(Aggregation, RejectsBadAddressNamingTheRule) {
    for (const char* bad :
         {"10.0.0/8=16", "10.0.0.256/8=16", "10.0.0.0.0/8=16", "a.b.c.d/8=16", "/8=16",
          "10..0.0/8=16", "10.0.0.-1/8=16", "1000.0.0.0/8=16", "10.0.0.0 1/8=16"})
        expect_rejected(std::string("192.0.0.0/8=16, ") + bad, bad, "bad IPv4 address");
}

TEST(Aggregation, RejectsBadPortsNamingTheRule) {
    expect_rejected("65536=80", "65536=80", "port must be 0-65535");
    expect_rejected("80=65536", "80=65536", "port must be 0-65535");
    expect_rejected("80-99999=80", "80-99999=80", "port must be 0-65535");
    expect_rejected("-5=80", "-5=80", "port must be 0-65535");
    expect_rejected("80-=80", "80-=80", "port must be 0-65535");
    expect_rejected("99999999999999999999=1", "99999999999999999999=1", "port must be 0-65535");
    expect_rejected("90-80=80", "90-80=80", "port range low > high");
}

TEST(Aggregation, RejectsJunkNamingTheRule) {
    expect_rejected("80=80,http=80", "http=80", "port must be 0-65535");
    expect_rejected("80", "80", "expected net/prefix=bits or port[-port]=port");
    expect_rejected("80=80,,81=81", "", "empty rule");
    expect_rejected("80=80,", "", "empty rule");
    expect_rejected("80=80x", "80=80x", "port must be 0-65535");
    expect_rejected("10.0.0.0/8=16/4", "10.0.0.0/8=16/4", "aggregation prefix must be 0-32");
    expect_rejected("+80=80", "+80=80", "port must be 0-65535");
}

// ---- IPv6 prefixes ----

Ipv6Addr v6(std::initializer_list<unsigned> words) { // eight 16-bit groups
    Ipv6Addr a{};
    std::size_t i = 0;
    for (const unsigned w : words) {
        a[i++] = static_cast<std::uint8_t>(w >> 8);
        a[i++] = static_cast<std::uint8_t>(w);
    }
    return a;
}

PacketInfo6 packet6(const Ipv6Addr& src, const Ipv6Addr& dst, std::uint16_t sport,
                    std::uint16_t dport, std::uint8_t protocol = 6) {
    PacketInfo6 p;
    p.key.src_addr = src;
    p.key.dst_addr = dst;
    p.key.src_port = sport;
    p.key.dst_port = dport;
    p.key.protocol = protocol;
    return p;
}

TEST(Aggregation6, PrefixRuleMasksIpv6AddressesAndSetsMasks) {
    const Aggregation a = Aggregation::parse("2001:db8::/32=48,2001:db8:0:1::/64=100,80-89=80");
    PacketInfo6 p = packet6(v6({0x2001, 0xdb8, 0xabcd, 0x1234, 0, 0, 0, 1}),
                            v6({0x2001, 0xdb8, 0, 1, 0xffff, 0xffff, 0xffff, 0xffff}), 81, 443);
    a.apply(p);
    EXPECT_EQ(p.key.src_addr, v6({0x2001, 0xdb8, 0xabcd, 0, 0, 0, 0, 0}));
    EXPECT_EQ(p.src_mask, 48);
    // The first matching rule wins: /32 matches the destination before the /64 rule.
    EXPECT_EQ(p.key.dst_addr, v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(p.dst_mask, 48);
    EXPECT_EQ(p.key.src_port, 80); // port rules hold for both families
    EXPECT_EQ(p.key.dst_port, 443);
}

TEST(Aggregation6, MasksAcrossTheMiddleOfTheAddress) {
    const Aggregation a = Aggregation::parse("::/0=100");
    PacketInfo6 p = packet6(v6({0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff}),
                            v6({0x2001, 0, 0, 0, 0x1234, 0x5678, 0x9abc, 0xdef0}), 1, 2);
    a.apply(p);
    EXPECT_EQ(p.key.src_addr, v6({0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xf000, 0}));
    EXPECT_EQ(p.key.dst_addr, v6({0x2001, 0, 0, 0, 0x1234, 0x5678, 0x9000, 0}));
    EXPECT_EQ(p.src_mask, 100);
}

TEST(Aggregation6, FamiliesDoNotMix) {
    const Aggregation a = Aggregation::parse("0.0.0.0/0=8,::/0=16");
    PacketInfo p4 = packet(ip(10, 1, 2, 3), ip(192, 168, 1, 1), 1, 2);
    a.apply(p4);
    EXPECT_EQ(p4.key.src_addr, ip(10, 0, 0, 0));
    EXPECT_EQ(p4.src_mask, 8);
    PacketInfo6 p6 =
        packet6(v6({0x2001, 0xdb8, 1, 2, 3, 4, 5, 6}), v6({0xfe80, 0, 0, 0, 0, 0, 0, 1}), 1, 2);
    a.apply(p6);
    EXPECT_EQ(p6.key.src_addr, v6({0x2001, 0, 0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(p6.key.dst_addr, v6({0xfe80, 0, 0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(p6.src_mask, 16);
}

TEST(Aggregation6, NoMatchingRuleLeavesTheAddress) {
    const Aggregation a = Aggregation::parse("2001:db8::/32=48");
    const Ipv6Addr other = v6({0x2a00, 1, 2, 3, 4, 5, 6, 7});
    PacketInfo6 p = packet6(other, other, 1, 2);
    a.apply(p);
    EXPECT_EQ(p.key.src_addr, other);
    EXPECT_EQ(p.src_mask, 0);
    EXPECT_EQ(p.dst_mask, 0);
}

TEST(Aggregation6, ToStringIsCanonicalAndReparses) {
    const Aggregation a =
        Aggregation::parse(" 2001:0DB8:0000::1/32 = 48 , 10.0.0.0/8=16,::/0=0,80=8080");
    EXPECT_EQ(a.to_string(), "10.0.0.0/8=16,2001:db8::/32=48,::/0=0,80=8080");
    EXPECT_EQ(Aggregation::parse(a.to_string()), a);
    EXPECT_EQ(Aggregation::parse("::ffff:10.0.0.0/104=112").to_string(), "::ffff:10.0.0.0/104=112");
}

TEST(Aggregation6, MalformedIpv6RulesRejectTheWholeList) {
    for (const char* spec : {"2001:db8::/129=48", "2001:db8::/32=129", "2001:db8:::/32=48",
                             "2001:db8::g/32=48", "10.0.0.0/8=16,2001:db8::/33x=48",
                             "2001:db8::/=48", "2001:db8::/32=", "[2001:db8::]/32=48"}) {
        EXPECT_THROW(Aggregation::parse(spec), std::invalid_argument) << spec;
    }
    try {
        Aggregation::parse("10.0.0.0/8=16,fe80::/200=64");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("fe80::/200=64"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("0-128"), std::string::npos);
    }
}

} // namespace
} // namespace nflowd
