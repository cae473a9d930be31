// The flow table's keyed buckets: the key decides the bucket, every rehash draws a new key
// and still finds every flow, and structured keys spread evenly.
#include "nflowd/flow_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kT0 = 1'700'000'000 * kNanosPerSecond;
constexpr HashKey kKeyA{0x0123456789abcdefULL, 0x1111111111111111ULL};
constexpr HashKey kKeyB{0x0123456789abcdefULL, 0x1111111111111112ULL};

// What an attacker controls cheaply: UDP between two addresses, ports counting up.
FlowKey udp_key(std::uint32_t n) {
    FlowKey k;
    k.src_addr = 0xc6336401U;
    k.dst_addr = 0xcb007101U;
    k.src_port = static_cast<std::uint16_t>(n);
    k.dst_port = static_cast<std::uint16_t>(n >> 16);
    k.protocol = 17;
    return k;
}

FlowTableConfig config(std::size_t hashsize) {
    FlowTableConfig c;
    c.hashsize = hashsize;
    c.maxflows = 0;
    c.inactive_timeout = 3600 * kNanosPerSecond;
    c.active_timeout = 3600 * kNanosPerSecond;
    return c;
}

PacketInfo packet(const FlowKey& key) {
    PacketInfo p;
    p.key = key;
    p.time = kT0;
    p.octets = 100;
    return p;
}

// Keys of n flows that share a bucket under `key`: how many of them still share one under
// the other table's key.
std::size_t same_bucket(const FlowTable& a, const FlowTable& b, std::uint32_t n) {
    std::size_t same = 0;
    for (std::uint32_t i = 0; i < n; ++i)
        same += a.bucket_of(udp_key(i)) == b.bucket_of(udp_key(i));
    return same;
}

TEST(FlowTableHash, AFixedKeyGivesTheSameBuckets) {
    const FlowTable a(config(4096), kKeyA), b(config(4096), kKeyA);
    EXPECT_EQ(same_bucket(a, b, 10000), 10000U);
    EXPECT_EQ(a.bucket_key(), kKeyA);
}

TEST(FlowTableHash, DifferentKeysGiveDifferentBuckets) {
    const FlowTable a(config(4096), kKeyA), b(config(4096), kKeyB);
    // Independent keys agree 1 time in 4096: about 2.4 of 10000.
    EXPECT_LT(same_bucket(a, b, 10000), 20U);
    const FlowTable r1(config(4096)), r2(config(4096));
    EXPECT_NE(r1.bucket_key(), r2.bucket_key());
    EXPECT_LT(same_bucket(r1, r2, 10000), 20U);
}

TEST(FlowTableHash, RehashDrawsANewKeyAndKeepsEveryFlowFindable) {
    FlowTable t(config(4096), kKeyA);
    std::vector<FlowRecord> out;
    constexpr std::uint32_t kFlows = 30'000;
    for (std::uint32_t i = 0; i < kFlows; ++i) t.add(packet(udp_key(i)), out);
    std::vector<std::uint32_t> before(kFlows);
    for (std::uint32_t i = 0; i < kFlows; ++i) before[i] = t.bucket_of(udp_key(i));

    // Same size, so only the key can move flows: most must move.
    t.set_hashsize(4096);
    EXPECT_NE(t.bucket_key(), kKeyA);
    std::uint32_t stayed = 0;
    for (std::uint32_t i = 0; i < kFlows; ++i) stayed += t.bucket_of(udp_key(i)) == before[i];
    EXPECT_LT(stayed, 50U);

    const HashKey previous = t.bucket_key();
    t.set_hashsize(1000, kKeyB);
    EXPECT_EQ(t.bucket_key(), kKeyB);
    t.set_hashsize(70'001);
    EXPECT_NE(t.bucket_key(), kKeyB);
    EXPECT_NE(t.bucket_key(), previous);

    // Every flow is found under the current key: packets join flows, none is created.
    for (std::uint32_t i = 0; i < kFlows; ++i) t.add(packet(udp_key(i)), out);
    EXPECT_EQ(t.stats().created, kFlows);
    EXPECT_EQ(t.stats().found, kFlows);
    EXPECT_EQ(t.size(), kFlows);
    // And removed through the new chains.
    t.expire(kT0 + 3601 * kNanosPerSecond, out);
    EXPECT_EQ(out.size(), kFlows);
    EXPECT_EQ(t.size(), 0U);
}

TEST(FlowTableHash, CountingPortsSpreadEvenlyOverTheBuckets) {
    constexpr std::size_t kBuckets = 4096;
    constexpr std::uint32_t kFlows = 16 * kBuckets;
    for (const HashKey& key : {kKeyA, kKeyB, random_hash_key()}) {
        const FlowTable t(config(kBuckets), key);
        std::vector<std::uint32_t> load(kBuckets, 0);
        for (std::uint32_t i = 0; i < kFlows; ++i) ++load[t.bucket_of(udp_key(i))];
        // Poisson(16) per bucket: the fullest of 4096 holds about 33; chi-square with 4095
        // degrees of freedom is 4095 +- 91 (sd), so +-6 sd is a wide, still telling band.
        EXPECT_LT(*std::max_element(load.begin(), load.end()), 48U);
        double chi2 = 0;
        for (const auto l : load) chi2 += (l - 16.0) * (l - 16.0) / 16.0;
        EXPECT_NEAR(chi2, 4095.0, 6 * std::sqrt(2 * 4095.0));
    }
}

TEST(FlowTableHash, ChainWalksStayShortForStructuredKeys) {
    FlowTable t(config(4096));
    std::vector<FlowRecord> out;
    constexpr std::uint32_t kFlows = 16'384;
    for (int round = 0; round < 4; ++round)
        for (std::uint32_t i = 0; i < kFlows; ++i) t.add(packet(udp_key(i)), out);
    // At load 4 a lookup walks a few entries; colliding keys would walk thousands.
    EXPECT_LT(t.stats().searched, std::uint64_t{4} * kFlows * 8);
}

} // namespace
} // namespace nflowd
