// The flow cache's IPv6 table and the end reason of every exported flow: IPv6 keys, timeouts,
// flush, maxflows shared with IPv4, rehash, dumps; idle/active/end-of-flow/forced per cause.
#include "nflowd/flow_table.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>

#include <set>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kMs = kNanosPerMilli;
constexpr Nanos kT0 = 1'700'000'000 * kNanosPerSecond;
constexpr std::uint8_t kFin = 0x01;
constexpr std::uint8_t kRst = 0x04;
constexpr std::uint8_t kAck = 0x10;

FlowTableConfig config(Nanos inactive = 15 * kNanosPerSecond, Nanos active = 60 * kNanosPerSecond,
                       std::size_t maxflows = 0) {
    FlowTableConfig c;
    c.hashsize = 256;
    c.maxflows = maxflows;
    c.inactive_timeout = inactive;
    c.active_timeout = active;
    return c;
}

// 2001:db8::<n> -> 2001:db8:ffff::1, TCP (or `protocol`) 1024+n -> 443.
PacketInfo6 packet6(std::uint32_t n, Nanos time, std::uint32_t octets = 100,
                    std::uint8_t tcp_flags = 0, std::uint8_t protocol = IPPROTO_TCP) {
    PacketInfo6 p;
    p.key.src_addr = {0x20, 0x01, 0x0d, 0xb8};
    p.key.src_addr[12] = static_cast<std::uint8_t>(n >> 24);
    p.key.src_addr[13] = static_cast<std::uint8_t>(n >> 16);
    p.key.src_addr[14] = static_cast<std::uint8_t>(n >> 8);
    p.key.src_addr[15] = static_cast<std::uint8_t>(n);
    p.key.dst_addr = {0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff};
    p.key.dst_addr[15] = 1;
    p.key.src_port = static_cast<std::uint16_t>(1024 + n % 50000);
    p.key.dst_port = 443;
    p.key.in_if = 2;
    p.key.protocol = protocol;
    p.key.tos = 0x20;
    p.flow_label = 0x12345;
    p.time = time;
    p.out_if = 3;
    p.octets = octets;
    p.tcp_flags = tcp_flags;
    return p;
}

PacketInfo packet4(std::uint32_t n, Nanos time, std::uint32_t octets = 100,
                   std::uint8_t tcp_flags = 0, std::uint8_t protocol = IPPROTO_TCP) {
    PacketInfo p;
    p.key.src_addr = 0x0a000000U + n;
    p.key.dst_addr = 0xc0a80001U;
    p.key.src_port = static_cast<std::uint16_t>(1024 + n % 50000);
    p.key.dst_port = 80;
    p.key.protocol = protocol;
    p.time = time;
    p.octets = octets;
    p.tcp_flags = tcp_flags;
    return p;
}

// ---- IPv6 flows ----

TEST(FlowTable6, PacketsOfOneKeyMakeOneIpv6Record) {
    FlowTable6 t(config());
    std::vector<FlowRecord> out;
    ASSERT_TRUE(t.add(packet6(1, kT0, 100, kAck), out));
    PacketInfo6 second = packet6(1, kT0 + 5 * kMs, 60, kFin);
    second.flow_label = 0x54321; // the first packet's label stays
    ASSERT_TRUE(t.add(second, out));
    ASSERT_TRUE(t.add(packet6(2, kT0, 40), out));
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(t.size(), 2U);
    t.flush(out);
    ASSERT_EQ(out.size(), 2U);
    const FlowRecord& r = out[0];
    EXPECT_EQ(r.family, Family::ipv6);
    EXPECT_EQ(r.src6, packet6(1, 0).key.src_addr);
    EXPECT_EQ(r.dst6, packet6(1, 0).key.dst_addr);
    EXPECT_EQ(r.key.src_addr, 0U);
    EXPECT_EQ(r.key.dst_addr, 0U);
    EXPECT_EQ(r.key.src_port, 1025);
    EXPECT_EQ(r.key.dst_port, 443);
    EXPECT_EQ(r.key.protocol, IPPROTO_TCP);
    EXPECT_EQ(r.key.tos, 0x20);
    EXPECT_EQ(r.key.in_if, 2U);
    EXPECT_EQ(r.out_if, 3U);
    EXPECT_EQ(r.flow_label, 0x12345U);
    EXPECT_EQ(r.packets, 2U);
    EXPECT_EQ(r.octets, 160U);
    EXPECT_EQ(r.tcp_flags, kAck | kFin);
    EXPECT_EQ(r.first, kT0);
    EXPECT_EQ(r.last, kT0 + 5 * kMs);
    EXPECT_EQ(r.end_reason, EndReason::forced);
}

TEST(FlowTable6, AddressesDifferingInOneBitAreTwoFlows) {
    FlowTable6 t(config());
    std::vector<FlowRecord> out;
    PacketInfo6 a = packet6(1, kT0);
    PacketInfo6 b = a;
    b.key.dst_addr[0] ^= 0x80; // the first byte: not what an IPv4-sized key would see
    t.add(a, out);
    t.add(b, out);
    EXPECT_EQ(t.size(), 2U);
    EXPECT_EQ(t.stats().created, 2U);
}

TEST(FlowTable6, InactiveAndActiveTimeouts) {
    FlowTable6 t(config(10 * kMs, 100 * kMs));
    std::vector<FlowRecord> out;
    t.add(packet6(1, kT0, 100, 0, IPPROTO_UDP), out); // idle from kT0
    for (Nanos ms = 0; ms <= 100; ms += 5) t.add(packet6(2, kT0 + ms * kMs), out);
    t.expire(kT0 + 10 * kMs, out);
    EXPECT_TRUE(out.empty()); // exactly at the timeout: still alive
    t.expire(kT0 + 10 * kMs + 1, out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].src6[15], 1);
    EXPECT_EQ(out[0].end_reason, EndReason::idle);
    out.clear();
    t.expire(kT0 + 100 * kMs + 1, out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].src6[15], 2);
    EXPECT_EQ(out[0].end_reason, EndReason::active);
    EXPECT_EQ(t.stats().expired_inactive, 1U);
    EXPECT_EQ(t.stats().expired_active, 1U);
    EXPECT_EQ(t.size(), 0U);
}

TEST(FlowTable6, MaxflowsIsOneBudgetWithIpv4) {
    FlowBudget budget(3);
    FlowTable t4(config(), budget);
    FlowTable6 t6(config(), budget);
    std::vector<FlowRecord> out;
    EXPECT_TRUE(t4.add(packet4(1, kT0), out));
    EXPECT_TRUE(t6.add(packet6(1, kT0), out));
    EXPECT_TRUE(t6.add(packet6(2, kT0), out));
    EXPECT_FALSE(t4.add(packet4(2, kT0), out)); // the IPv6 flows hold the rest
    EXPECT_FALSE(t6.add(packet6(3, kT0), out));
    EXPECT_TRUE(t6.add(packet6(1, kT0 + kMs), out)); // a known flow is never refused
    EXPECT_EQ(budget.count(), 3U);
    EXPECT_EQ(t4.stats().dropped_packets, 1U);
    EXPECT_EQ(t6.stats().dropped_packets, 1U);
    t6.flush(out);
    EXPECT_EQ(budget.count(), 1U);
    EXPECT_TRUE(t4.add(packet4(2, kT0), out));
}

TEST(FlowTable6, RehashOfBothTablesKeepsEveryFlow) {
    FlowBudget budget;
    FlowTable t4(config(), budget);
    FlowTable6 t6(config(), budget);
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 0; n < 2000; ++n) {
        t4.add(packet4(n, kT0), out);
        t6.add(packet6(n, kT0), out);
    }
    const HashKey before = t6.bucket_key();
    t4.set_hashsize(4096);
    t6.set_hashsize(4096);
    EXPECT_NE(t6.bucket_key(), before);
    EXPECT_EQ(t6.config().hashsize, 4096U);
    for (std::uint32_t n = 0; n < 2000; ++n) {
        t4.add(packet4(n, kT0 + kMs), out);
        t6.add(packet6(n, kT0 + kMs), out);
    }
    EXPECT_EQ(t4.stats().found, 2000U);
    EXPECT_EQ(t6.stats().found, 2000U); // every second packet met its flow
    EXPECT_EQ(t6.size(), 2000U);
    EXPECT_EQ(budget.count(), 4000U);
    t6.flush(out);
    ASSERT_EQ(out.size(), 2000U);
    for (const auto& r : out) EXPECT_EQ(r.packets, 2U);
}

TEST(FlowTable6, DumpsCoverIpv6Flows) {
    FlowTable6 t(config());
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 0; n < 10; ++n)
        for (std::uint32_t p = 0; p <= n; ++p) t.add(packet6(n, kT0 + p * kMs), out);
    std::size_t seen = 0;
    t.for_each([&](const FlowRecord& r) {
        EXPECT_EQ(r.family, Family::ipv6);
        ++seen;
    });
    EXPECT_EQ(seen, 10U);
    const auto top = t.top(3, FlowRank::packets);
    std::set<std::uint32_t> packets;
    for (const auto& r : top) packets.insert(r.packets);
    EXPECT_EQ(packets, (std::set<std::uint32_t>{8, 9, 10}));
}

TEST(FlowTable6, FlushSomeLeavesTheRestAndGivesSlotsBack) {
    FlowBudget budget;
    FlowTable6 t(config(), budget);
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 0; n < 100; ++n) t.add(packet6(n, kT0 + n * kMs), out);
    EXPECT_EQ(t.flush_some(out, 30), 70U);
    ASSERT_EQ(out.size(), 30U);
    EXPECT_EQ(out.front().src6[15], 0); // oldest first
    EXPECT_EQ(budget.count(), 70U);
    EXPECT_EQ(t.stats().flushed, 30U);
    EXPECT_EQ(t.flush_some(out, 1000), 0U);
    EXPECT_EQ(out.size(), 100U);
    EXPECT_EQ(budget.count(), 0U);
    EXPECT_EQ(t.memory_bytes(), 256U * 4U); // the slab is given back once empty
}

// ---- end reasons, per cause (IPv4; the IPv6 table shares the code) ----

TEST(FlowEndReason, InactiveTimeoutIsIdleAtExpireAndOnTheNextPacket) {
    FlowTable t(config(10 * kMs, 1000 * kMs));
    std::vector<FlowRecord> out;
    t.add(packet4(1, kT0, 100, kAck), out);
    t.add(packet4(2, kT0), out);
    t.add(packet4(2, kT0 + 20 * kMs), out); // restarts flow 2
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].end_reason, EndReason::idle);
    t.expire(kT0 + 20 * kMs, out);
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[1].end_reason, EndReason::idle);
}

TEST(FlowEndReason, ActiveTimeoutIsActiveAtExpireAndOnTheNextPacket) {
    FlowTable t(config(1000 * kMs, 10 * kMs));
    std::vector<FlowRecord> out;
    for (Nanos ms = 0; ms <= 10; ms += 5) t.add(packet4(1, kT0 + ms * kMs), out);
    t.add(packet4(1, kT0 + 11 * kMs), out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].end_reason, EndReason::active);
    t.expire(kT0 + 22 * kMs, out);
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[1].end_reason, EndReason::active);
}

// The per-flow counters are 32 bits (memory): a flow about to wrap them is split, and says
// so with RFC 5102's "lack of resources" rather than a timeout it did not reach.
TEST(FlowEndReason, CounterAboutToWrapIsLackOfResources) {
    FlowTable t(config());
    std::vector<FlowRecord> out;
    t.add(packet4(1, kT0, 0xfffff000U, kFin), out);
    t.add(packet4(1, kT0 + kMs, 0x2000U), out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].end_reason, EndReason::lack_of_resources);
    EXPECT_EQ(t.stats().expired_overflow, 1U);
}

TEST(FlowEndReason, TcpWithFinOrRstThatTimesOutIsEndOfFlow) {
    FlowTable t(config(10 * kMs, 100 * kMs));
    std::vector<FlowRecord> out;
    t.add(packet4(1, kT0, 100, kAck), out);
    t.add(packet4(1, kT0 + kMs, 40, kFin | kAck), out);
    t.add(packet4(2, kT0, 40, kRst), out);
    t.add(packet4(3, kT0, 40, kFin, IPPROTO_UDP), out); // flag bits of no TCP flow mean nothing
    t.expire(kT0 + 12 * kMs, out);
    ASSERT_EQ(out.size(), 3U);
    for (const auto& r : out)
        EXPECT_EQ(r.end_reason,
                  r.key.protocol == IPPROTO_TCP ? EndReason::end_of_flow : EndReason::idle);
    // Active timeout of a flow that saw RST, found on its next packet.
    out.clear();
    for (Nanos ms = 0; ms <= 100; ms += 5) t.add(packet4(4, kT0 + ms * kMs, 40, kRst), out);
    t.add(packet4(4, kT0 + 101 * kMs), out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].end_reason, EndReason::end_of_flow);
}

TEST(FlowEndReason, FlushIsForcedEvenAfterFin) {
    FlowTable t(config());
    std::vector<FlowRecord> out;
    t.add(packet4(1, kT0, 40, kFin), out);
    t.add(packet4(2, kT0), out);
    t.flush(out);
    ASSERT_EQ(out.size(), 2U);
    for (const auto& r : out) EXPECT_EQ(r.end_reason, EndReason::forced);
}

TEST(FlowEndReason, Ipv6TcpFinIsEndOfFlowToo) {
    FlowTable6 t(config(10 * kMs));
    std::vector<FlowRecord> out;
    t.add(packet6(1, kT0, 40, kFin), out);
    t.expire(kT0 + 11 * kMs, out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].end_reason, EndReason::end_of_flow);
}

} // namespace
} // namespace nflowd
