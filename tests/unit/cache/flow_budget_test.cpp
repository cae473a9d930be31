// maxflows shared by several tables (one FlowBudget), as the pipeline's workers share it.
#include "nflowd/flow_table.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kMs = kNanosPerMilli;
constexpr Nanos kT0 = 1'700'000'000 * kNanosPerSecond;

PacketInfo packet(std::uint32_t n, Nanos time, std::uint32_t octets = 100) {
    PacketInfo p;
    p.key.src_addr = 0x0a000000U + n;
    p.key.dst_addr = 0xc0a80001U;
    p.key.src_port = static_cast<std::uint16_t>(1024 + n % 50000);
    p.key.dst_port = 80;
    p.key.protocol = 6;
    p.time = time;
    p.octets = octets;
    return p;
}

FlowTableConfig config(std::size_t maxflows = 0) {
    FlowTableConfig c;
    c.hashsize = 1024;
    c.maxflows = maxflows;
    c.inactive_timeout = 1000 * kMs;
    c.active_timeout = 60'000 * kMs;
    return c;
}

TEST(FlowBudget, NeverAdmitsPastItsLimitAndZeroIsUnlimited) {
    FlowBudget b(2);
    EXPECT_TRUE(b.try_acquire());
    EXPECT_TRUE(b.try_acquire());
    EXPECT_FALSE(b.try_acquire());
    EXPECT_EQ(b.count(), 2U);
    b.release(1);
    EXPECT_TRUE(b.try_acquire());
    b.set_limit(0);
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(b.try_acquire());
    EXPECT_EQ(b.count(), 102U);
}

TEST(FlowBudget, TwoTablesSharingOneBudgetAdmitExactlyItsLimit) {
    FlowBudget budget(1000);
    // The tables' own maxflows are ignored: the budget's limit is the one that holds.
    FlowTable a(config(600), budget);
    FlowTable b(config(600), budget);
    std::vector<FlowRecord> out;
    std::uint64_t admitted = 0;
    // 300 flows to a, 4700 to b: a limit split in halves would admit 300 + 500.
    for (std::uint32_t n = 0; n < 5000; ++n) {
        FlowTable& t = n < 300 ? a : b;
        admitted += t.add(packet(n, kT0, 10), out) ? 1 : 0;
    }
    EXPECT_EQ(admitted, 1000U);
    EXPECT_EQ(a.size(), 300U);
    EXPECT_EQ(b.size(), 700U);
    EXPECT_EQ(budget.count(), 1000U);
    EXPECT_EQ(a.stats().created + b.stats().created, 1000U);
    EXPECT_EQ(a.stats().dropped_packets + b.stats().dropped_packets, 4000U);
    EXPECT_EQ(a.stats().dropped_octets + b.stats().dropped_octets, 40'000U);
    EXPECT_EQ(a.config().maxflows, 1000U);
    // Flows in the cache keep counting when the budget is full.
    EXPECT_TRUE(a.add(packet(0, kT0 + kMs), out));
    EXPECT_TRUE(b.add(packet(999, kT0 + kMs), out));
    EXPECT_FALSE(a.add(packet(1000, kT0 + kMs), out));
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(a.stats().packets + b.stats().packets, 1002U);
}

TEST(FlowBudget, ExpiredAndFlushedFlowsFreeTheirSlotsForTheOtherTable) {
    FlowBudget budget(4);
    FlowTable a(config(), budget);
    FlowTable b(config(), budget);
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 0; n < 3; ++n) ASSERT_TRUE(a.add(packet(n, kT0), out));
    ASSERT_TRUE(b.add(packet(10, kT0 + 500 * kMs), out));
    EXPECT_FALSE(b.add(packet(11, kT0 + 500 * kMs), out));

    // a's three flows expire (inactive 1 s); b's stays: three slots free, for b.
    a.expire(kT0 + 1001 * kMs, out);
    EXPECT_EQ(out.size(), 3U);
    EXPECT_EQ(budget.count(), 1U);
    for (std::uint32_t n = 11; n < 14; ++n) EXPECT_TRUE(b.add(packet(n, kT0 + 1001 * kMs), out));
    EXPECT_FALSE(a.add(packet(20, kT0 + 1001 * kMs), out));
    // Never more than 4 at once, though the tables' own peaks (3 and 4) add up to 7.
    EXPECT_EQ(budget.peak(), 4U);
    EXPECT_EQ(a.stats().peak + b.stats().peak, 7U);

    // A flow restarted in its slot (timed out on its next packet) neither takes nor frees one.
    EXPECT_TRUE(b.add(packet(10, kT0 + 1600 * kMs), out));
    EXPECT_EQ(budget.count(), 4U);

    b.flush(out);
    EXPECT_EQ(budget.count(), 0U);
    EXPECT_EQ(budget.peak(), 4U);
    budget.reset_peak();
    EXPECT_EQ(budget.peak(), 0U);
    EXPECT_TRUE(a.add(packet(20, kT0 + 2000 * kMs), out));
}

TEST(FlowBudget, RehashKeepsTheCountAndADestroyedTableGivesItsSlotsBack) {
    FlowBudget budget(10);
    FlowTable a(config(), budget);
    std::vector<FlowRecord> out;
    {
        FlowTable b(config(), budget);
        for (std::uint32_t n = 0; n < 6; ++n) ASSERT_TRUE(b.add(packet(n, kT0), out));
        b.set_hashsize(4096);
        EXPECT_EQ(budget.count(), 6U);
        EXPECT_EQ(b.size(), 6U);
    }
    EXPECT_EQ(budget.count(), 0U);
    for (std::uint32_t n = 0; n < 10; ++n) EXPECT_TRUE(a.add(packet(n, kT0), out));
    EXPECT_FALSE(a.add(packet(10, kT0), out));
}

TEST(FlowBudget, LoweringTheLimitBelowTheCountRefusesUntilFlowsLeave) {
    FlowBudget budget(0);
    FlowTable a(config(), budget);
    FlowTable b(config(), budget);
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 0; n < 5; ++n) ASSERT_TRUE(a.add(packet(n, kT0), out));
    for (std::uint32_t n = 5; n < 10; ++n) ASSERT_TRUE(b.add(packet(n, kT0 + 600 * kMs), out));
    a.set_maxflows(6); // through one table, for both: the limit is the budget's
    EXPECT_EQ(b.config().maxflows, 6U);
    EXPECT_EQ(a.size() + b.size(), 10U); // nothing is evicted
    EXPECT_TRUE(a.add(packet(0, kT0 + kMs), out));
    EXPECT_FALSE(b.add(packet(100, kT0 + kMs), out));
    EXPECT_FALSE(a.add(packet(101, kT0 + kMs), out));

    // a's five leave: 5 live, below 6, so exactly one new flow fits.
    a.expire(kT0 + 1002 * kMs, out);
    EXPECT_EQ(budget.count(), 5U);
    EXPECT_TRUE(a.add(packet(102, kT0 + 1002 * kMs), out));
    EXPECT_FALSE(b.add(packet(103, kT0 + 1002 * kMs), out));
}

TEST(FlowBudget, ATableAloneKeepsItsOwnMaxflows) {
    FlowTable a(config(2));
    FlowTable b(config(2));
    std::vector<FlowRecord> out;
    EXPECT_TRUE(a.add(packet(1, kT0), out));
    EXPECT_TRUE(a.add(packet(2, kT0), out));
    EXPECT_FALSE(a.add(packet(3, kT0), out));
    EXPECT_TRUE(b.add(packet(3, kT0), out));
    a.set_maxflows(0);
    EXPECT_TRUE(a.add(packet(4, kT0), out));
    EXPECT_EQ(b.config().maxflows, 2U);
}

} // namespace
} // namespace nflowd
