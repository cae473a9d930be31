// Per-flow link layer (issue 13): MACs and VLAN kept in a side array only while v9/IPFIX
// exports them, taken from a flow's first packet that has them.
#include "nflowd/flow_shard.hpp"
#include "nflowd/flow_table.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kT0 = 1'700'000'000 * kNanosPerSecond;
constexpr HashKey kBucketKey{1, 2};

FlowTableConfig config() {
    FlowTableConfig c;
    c.hashsize = 1024;
    c.maxflows = 0;
    return c;
}

LinkLayer link(std::uint8_t host, std::uint16_t vlan = 0) {
    LinkLayer l;
    l.src_mac = {0x02, 0, 0, 0, 0, host};
    l.dst_mac = {0x02, 0, 0, 0, 0, 0xfe};
    l.vlan = vlan;
    return l;
}

PacketInfo packet(std::uint32_t n, Nanos time, const LinkLayer& l = {}) {
    PacketInfo p;
    p.key.src_addr = 0x0a000000U + n;
    p.key.dst_addr = 0x0a000001U;
    p.key.src_port = 1000;
    p.key.dst_port = 80;
    p.key.protocol = 6;
    p.time = time;
    p.octets = 100;
    p.link = l;
    return p;
}

std::vector<FlowRecord> flushed(FlowTable& t) {
    std::vector<FlowRecord> out;
    t.flush(out);
    return out;
}

TEST(FlowTableLink, NotStoredByDefaultAndTheEntryStays72Bytes) {
    FlowTable t(config(), kBucketKey);
    std::vector<FlowRecord> out;
    const std::size_t empty = t.memory_bytes();
    ASSERT_TRUE(t.add(packet(1, kT0, link(1, 100)), out));
    EXPECT_FALSE(t.stores_link());
    // One 4096-entry chunk of 72-byte entries and its index: nothing for link records.
    EXPECT_EQ(t.memory_bytes() - empty, 4096U * 72U + 16U * sizeof(void*));
    const auto r = flushed(t);
    ASSERT_EQ(r.size(), 1U);
    EXPECT_TRUE(r[0].link.empty());
}

TEST(FlowTableLink, TheFirstPacketThatHasOneGivesTheFlowItsLinkLayer) {
    FlowTable t(config(), kBucketKey);
    t.set_link(true);
    std::vector<FlowRecord> out;
    ASSERT_TRUE(t.add(packet(1, kT0, link(1, 100)), out));
    ASSERT_TRUE(t.add(packet(1, kT0 + 1, link(9, 200)), out)); // later ones change nothing
    ASSERT_TRUE(t.add(packet(2, kT0), out));                   // no header (OUTPUT)...
    ASSERT_TRUE(t.add(packet(2, kT0 + 1, link(2)), out));      // ...then one (PREROUTING)
    ASSERT_TRUE(t.add(packet(3, kT0), out));                   // never any
    auto r = flushed(t);
    ASSERT_EQ(r.size(), 3U);
    EXPECT_EQ(r[0].link, link(1, 100));
    EXPECT_EQ(r[1].link, link(2));
    EXPECT_TRUE(r[2].link.empty());
}

TEST(FlowTableLink, ARestartedFlowTakesItsNewFirstPacketsLinkLayer) {
    FlowTable t(config(), kBucketKey);
    t.set_link(true);
    std::vector<FlowRecord> out;
    ASSERT_TRUE(t.add(packet(1, kT0, link(1)), out));
    ASSERT_TRUE(t.add(packet(1, kT0 + 20 * kNanosPerSecond, link(5)), out)); // idle: restarts
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].link, link(1));
    t.expire(kT0 + 60 * kNanosPerSecond, out);
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[1].link, link(5));
}

TEST(FlowTableLink, SwitchingOnAndOffWithFlowsCached) {
    FlowTable t(config(), kBucketKey);
    std::vector<FlowRecord> out;
    ASSERT_TRUE(t.add(packet(1, kT0, link(1)), out));
    const std::size_t without = t.memory_bytes();
    t.set_link(true); // v5 -> IPFIX: cached flows start with none
    EXPECT_EQ(t.memory_bytes() - without, 4096U * sizeof(LinkLayer) + 16U * sizeof(void*));
    ASSERT_TRUE(t.add(packet(1, kT0 + 1, link(3)), out));
    ASSERT_TRUE(t.add(packet(2, kT0 + 1, link(4)), out));
    std::vector<FlowRecord> dump;
    t.for_each([&](const FlowRecord& r) { dump.push_back(r); });
    ASSERT_EQ(dump.size(), 2U);
    EXPECT_EQ(dump[0].link, link(3));
    EXPECT_EQ(dump[1].link, link(4));
    const auto top = t.top(1, FlowRank::start);
    ASSERT_EQ(top.size(), 1U);
    EXPECT_EQ(top[0].link, link(3));
    t.set_link(false); // IPFIX -> v5: freed, records carry none
    EXPECT_EQ(t.memory_bytes(), without);
    const auto r = flushed(t);
    ASSERT_EQ(r.size(), 2U);
    for (const auto& f : r) EXPECT_TRUE(f.link.empty());
}

TEST(FlowTableLink, GrowsWithTheSlabAndIsGivenBackWithIt) {
    FlowTable t(config(), kBucketKey);
    t.set_link(true);
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 0; n < 5000; ++n) // two chunks
        ASSERT_TRUE(t.add(packet(n, kT0, link(static_cast<std::uint8_t>(n), n & 0xfff)), out));
    std::size_t seen = 0;
    t.for_each([&](const FlowRecord& r) {
        const std::uint32_t n = r.key.src_addr - 0x0a000000U;
        EXPECT_EQ(r.link, link(static_cast<std::uint8_t>(n), n & 0xfff));
        ++seen;
    });
    EXPECT_EQ(seen, 5000U);
    const auto r = flushed(t);
    EXPECT_EQ(r.size(), 5000U);
    EXPECT_EQ(t.memory_bytes(), 1024U * 4U); // slab and link records given back
}

TEST(FlowTableLink, ShardSwitchesBothFamilies) {
    FlowBudget budget(0);
    FlowShard shard(config(), budget);
    shard.set_link(true);
    EXPECT_TRUE(shard.ipv4().stores_link());
    EXPECT_TRUE(shard.ipv6().stores_link());
    std::vector<FlowRecord> out;
    PacketInfo6 p6;
    p6.key.src_addr[15] = 1;
    p6.time = kT0;
    p6.octets = 80;
    p6.link = link(6, 42);
    ASSERT_TRUE(shard.add(p6, out));
    shard.flush_some(out, 10);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].link, link(6, 42));
    shard.set_link(false);
    EXPECT_FALSE(shard.ipv6().stores_link());
}

} // namespace
} // namespace nflowd
