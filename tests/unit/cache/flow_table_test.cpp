#include "nflowd/flow_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace nflowd {

struct FlowTableTestPeer {
    static void set_packets(FlowTable& t, const FlowKey& key, std::uint32_t packets) {
        for (std::uint32_t i = t.age_head_; i != FlowTable::kNil; i = t.at(i).age_next)
            if (t.at(i).key == key) t.at(i).packets = packets;
    }
};

namespace {

constexpr Nanos kMs = kNanosPerMilli;
constexpr Nanos kT0 = 1'700'000'000 * kNanosPerSecond; // a realistic epoch time

FlowKey make_key(std::uint32_t n, std::uint8_t protocol = 6) {
    FlowKey k;
    k.src_addr = 0x0a000000U + n;
    k.dst_addr = 0xc0a80001U;
    k.src_port = static_cast<std::uint16_t>(1024 + (n % 50000));
    k.dst_port = 80;
    k.in_if = 2;
    k.protocol = protocol;
    k.tos = 0;
    return k;
}

PacketInfo make_packet(const FlowKey& key, Nanos time, std::uint32_t octets = 100,
                       std::uint8_t tcp_flags = 0) {
    PacketInfo p;
    p.key = key;
    p.time = time;
    p.out_if = 3;
    p.octets = octets;
    p.tcp_flags = tcp_flags;
    return p;
}

FlowTableConfig config(Nanos inactive = 15 * kNanosPerSecond, Nanos active = 1800 * kNanosPerSecond,
                       std::size_t maxflows = 0, std::size_t hashsize = 1024) {
    FlowTableConfig c;
    c.hashsize = hashsize;
    c.maxflows = maxflows;
    c.inactive_timeout = inactive;
    c.active_timeout = active;
    return c;
}

using KeyTuple = std::tuple<std::uint32_t, std::uint32_t, std::uint16_t, std::uint16_t,
                            std::uint32_t, std::uint8_t, std::uint8_t>;
KeyTuple tie_key(const FlowKey& k) {
    return {k.src_addr, k.dst_addr, k.src_port, k.dst_port, k.in_if, k.protocol, k.tos};
}

struct Totals {
    std::uint64_t packets = 0;
    std::uint64_t octets = 0;
    friend bool operator==(const Totals&, const Totals&) = default;
};

std::map<KeyTuple, Totals> dump(const FlowTable& table) {
    std::map<KeyTuple, Totals> m;
    table.for_each([&](const FlowRecord& r) {
        Totals& t = m[tie_key(r.key)];
        EXPECT_EQ(t.packets, 0U) << "flow visited twice";
        t.packets += r.packets;
        t.octets += r.octets;
    });
    return m;
}

TEST(FlowTable, AccountsPacketsOfOneFlowIntoOneRecord) {
    FlowTable t(config());
    std::vector<FlowRecord> out;
    const FlowKey k = make_key(1);
    EXPECT_TRUE(t.add(make_packet(k, kT0, 60, 0x02), out));
    PacketInfo second = make_packet(k, kT0 + 5 * kMs, 1500, 0x10);
    second.out_if = 9; // out_if of the first packet is kept
    EXPECT_TRUE(t.add(second, out));
    EXPECT_TRUE(t.add(make_packet(k, kT0 + 7 * kMs, 40, 0x01), out));
    EXPECT_TRUE(out.empty());
    ASSERT_EQ(t.size(), 1U);

    t.flush(out);
    ASSERT_EQ(out.size(), 1U);
    const FlowRecord& r = out[0];
    EXPECT_EQ(r.key, k);
    EXPECT_EQ(r.out_if, 3U);
    EXPECT_EQ(r.packets, 3U);
    EXPECT_EQ(r.octets, 1600U);
    EXPECT_EQ(r.first, kT0);
    EXPECT_EQ(r.last, kT0 + 7 * kMs);
    EXPECT_EQ(r.tcp_flags, 0x13);

    const FlowTableStats& s = t.stats();
    EXPECT_EQ(s.created, 1U);
    EXPECT_EQ(s.found, 2U);
    EXPECT_EQ(s.packets, 3U);
    EXPECT_EQ(s.octets, 1600U);
    EXPECT_EQ(s.flushed, 1U);
    EXPECT_EQ(s.active, 0U);
    EXPECT_EQ(s.peak, 1U);
}

TEST(FlowTable, TopRanksByBytesPacketsOrStartWithoutCopyingTheRest) {
    FlowTable t(config());
    std::vector<FlowRecord> exported;
    // Flow n: n packets of 100 bytes, started at kT0 + n ms; flow 7 has one big packet.
    for (std::uint32_t n = 1; n <= 20; ++n)
        for (std::uint32_t p = 0; p < n; ++p)
            ASSERT_TRUE(t.add(make_packet(make_key(n), kT0 + Nanos(n + p) * kMs), exported));
    ASSERT_TRUE(t.add(make_packet(make_key(100), kT0 + 50 * kMs, 5000), exported));
    const auto srcs = [](std::vector<FlowRecord> v) {
        std::vector<std::uint32_t> out;
        for (const auto& r : v) out.push_back(r.key.src_addr - 0x0a000000U);
        std::sort(out.begin(), out.end());
        return out;
    };
    EXPECT_EQ(srcs(t.top(3, FlowRank::packets)), (std::vector<std::uint32_t>{18, 19, 20}));
    EXPECT_EQ(srcs(t.top(3, FlowRank::bytes)), (std::vector<std::uint32_t>{19, 20, 100}));
    EXPECT_EQ(srcs(t.top(2, FlowRank::start)), (std::vector<std::uint32_t>{1, 2}));
    EXPECT_EQ(t.top(0, FlowRank::bytes).size(), 21u);
    EXPECT_EQ(t.top(50, FlowRank::bytes).size(), 21u);
    // Expired flows leave holes in the slab that the ranking skips.
    FlowTable holes(config(30 * kMs));
    for (std::uint32_t n : {1, 3, 2, 4}) // in time order: odd flows at kT0, even 40 ms later
        ASSERT_TRUE(holes.add(make_packet(make_key(n), kT0 + (n % 2 ? 0 : 40) * kMs, n), exported));
    holes.expire(kT0 + 35 * kMs, exported); // flows 1 and 3, idle since kT0
    EXPECT_EQ(srcs(holes.top(5, FlowRank::bytes)), (std::vector<std::uint32_t>{2, 4}));
    EXPECT_EQ(srcs(holes.top(0, FlowRank::bytes)), (std::vector<std::uint32_t>{2, 4}));
    t.flush(exported); // an empty table has nothing to rank
    EXPECT_TRUE(t.top(5, FlowRank::packets).empty());
}

TEST(FlowTable, KeyFieldsEachSeparateFlows) {
    FlowTable t(config());
    std::vector<FlowRecord> out;
    FlowKey base = make_key(1);
    std::vector<FlowKey> keys(7, base);
    keys[1].src_addr ^= 1;
    keys[2].dst_addr ^= 1;
    keys[3].src_port ^= 1;
    keys[4].dst_port ^= 1;
    keys[5].protocol = 17;
    keys[6].tos = 4;
    FlowKey in_if = base;
    in_if.in_if = 77;
    keys.push_back(in_if);
    for (const FlowKey& k : keys) t.add(make_packet(k, kT0), out);
    EXPECT_EQ(t.size(), keys.size());
}

TEST(FlowTable, InactiveTimeoutExpiresOnlyAfterExactlyTheTimeout) {
    FlowTable t(config(/*inactive=*/2000 * kMs, /*active=*/60'000 * kMs));
    std::vector<FlowRecord> out;
    t.add(make_packet(make_key(1), kT0), out);
    t.add(make_packet(make_key(1), kT0 + 500 * kMs), out); // last = T0 + 500 ms

    t.expire(kT0 + 2499 * kMs, out);
    t.expire(kT0 + 2500 * kMs, out); // idle exactly 2000 ms: still alive
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(t.size(), 1U);

    t.expire(kT0 + 2501 * kMs, out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].packets, 2U);
    EXPECT_EQ(t.size(), 0U);
    EXPECT_EQ(t.stats().expired_inactive, 1U);
    EXPECT_EQ(t.stats().expired_active, 0U);
}

TEST(FlowTable, ActiveTimeoutExpiresBusyFlowOnlyAfterExactlyTheTimeout) {
    FlowTable t(config(/*inactive=*/1000 * kMs, /*active=*/5000 * kMs));
    std::vector<FlowRecord> out;
    // A packet every 500 ms keeps the flow from going inactive.
    for (Nanos ms = 0; ms <= 5000; ms += 500) {
        t.add(make_packet(make_key(1), kT0 + ms * kMs), out);
        t.expire(kT0 + ms * kMs, out);
    }
    t.expire(kT0 + 4999 * kMs, out);
    t.expire(kT0 + 5000 * kMs, out); // age exactly 5000 ms: still alive
    EXPECT_TRUE(out.empty());

    t.expire(kT0 + 5001 * kMs, out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].packets, 11U);
    EXPECT_EQ(out[0].first, kT0);
    EXPECT_EQ(out[0].last, kT0 + 5000 * kMs);
    EXPECT_EQ(t.stats().expired_active, 1U);
    EXPECT_EQ(t.stats().expired_inactive, 0U);
}

TEST(FlowTable, PacketExactlyAtInactiveTimeoutJoinsTheFlow) {
    FlowTable t(config(1000 * kMs, 60'000 * kMs));
    std::vector<FlowRecord> out;
    t.add(make_packet(make_key(1), kT0), out);
    t.add(make_packet(make_key(1), kT0 + 1000 * kMs), out);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(t.stats().created, 1U);
}

TEST(FlowTable, PacketAfterInactiveTimeoutStartsNewFlowWithoutExpireCall) {
    FlowTable t(config(1000 * kMs, 60'000 * kMs));
    std::vector<FlowRecord> out;
    t.add(make_packet(make_key(1), kT0, 100, 0x02), out);
    t.add(make_packet(make_key(1), kT0 + 1001 * kMs, 200, 0x10), out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].packets, 1U);
    EXPECT_EQ(out[0].octets, 100U);
    EXPECT_EQ(out[0].tcp_flags, 0x02);
    EXPECT_EQ(t.stats().expired_inactive, 1U);
    EXPECT_EQ(t.stats().created, 2U);
    EXPECT_EQ(t.size(), 1U);

    out.clear();
    t.flush(out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].octets, 200U);
    EXPECT_EQ(out[0].tcp_flags, 0x10);
    EXPECT_EQ(out[0].first, kT0 + 1001 * kMs);
}

TEST(FlowTable, PacketAfterActiveTimeoutStartsNewFlowWithoutExpireCall) {
    FlowTable t(config(1000 * kMs, 3000 * kMs));
    std::vector<FlowRecord> out;
    for (Nanos ms = 0; ms <= 3000; ms += 500) t.add(make_packet(make_key(1), kT0 + ms * kMs), out);
    EXPECT_TRUE(out.empty()); // the packet at exactly 3000 ms still joined
    t.add(make_packet(make_key(1), kT0 + 3001 * kMs), out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].packets, 7U);
    EXPECT_EQ(t.stats().expired_active, 1U);

    // The new flow ages from its own start, and the old position in the lists is gone.
    out.clear();
    t.expire(kT0 + 3001 * kMs + 1000 * kMs, out);
    EXPECT_TRUE(out.empty());
    t.expire(kT0 + 3001 * kMs + 1001 * kMs, out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].packets, 1U);
    EXPECT_EQ(t.size(), 0U);
}

TEST(FlowTable, ExpireExportsInLastSeenOrder) {
    FlowTable t(config(1000 * kMs, 60'000 * kMs));
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 1; n <= 4; ++n) t.add(make_packet(make_key(n), kT0), out);
    // Touch flows 3 and 1 later: order of last-seen becomes 2, 4, 3, 1.
    t.add(make_packet(make_key(3), kT0 + 100 * kMs), out);
    t.add(make_packet(make_key(1), kT0 + 200 * kMs), out);

    t.expire(kT0 + 1001 * kMs, out); // only 2 and 4 idle > 1000 ms
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[0].key, make_key(2));
    EXPECT_EQ(out[1].key, make_key(4));

    t.expire(kT0 + 5000 * kMs, out);
    ASSERT_EQ(out.size(), 4U);
    EXPECT_EQ(out[2].key, make_key(3));
    EXPECT_EQ(out[3].key, make_key(1));
}

TEST(FlowTable, ActiveExpiryExportsInStartOrder) {
    FlowTable t(config(60'000 * kMs, 1000 * kMs));
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 1; n <= 3; ++n) t.add(make_packet(make_key(n), kT0 + n * 10 * kMs), out);
    // Keep all busy, newest first, so last-seen order differs from start order.
    for (std::uint32_t n = 3; n >= 1; --n) t.add(make_packet(make_key(n), kT0 + 900 * kMs), out);
    t.expire(kT0 + 1025 * kMs, out); // flows 1 (10 ms) and 2 (20 ms) are older than 1 s
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[0].key, make_key(1));
    EXPECT_EQ(out[1].key, make_key(2));
    EXPECT_EQ(t.size(), 1U);
}

TEST(FlowTable, OutOfOrderTimestampsNeverMoveLastBackwards) {
    FlowTable t(config(1000 * kMs, 60'000 * kMs));
    std::vector<FlowRecord> out;
    t.add(make_packet(make_key(1), kT0 + 100 * kMs), out);
    t.add(make_packet(make_key(1), kT0 + 500 * kMs), out);
    t.add(make_packet(make_key(1), kT0 + 300 * kMs), out); // late from another source
    t.add(make_packet(make_key(1), kT0 + 50 * kMs), out);  // earlier than first
    EXPECT_TRUE(out.empty());

    t.expire(kT0 + 1500 * kMs, out); // idle exactly 1000 ms since last = 500 ms
    EXPECT_TRUE(out.empty());
    t.expire(kT0 + 1501 * kMs, out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].packets, 4U);
    EXPECT_EQ(out[0].first, kT0 + 50 * kMs);
    EXPECT_EQ(out[0].last, kT0 + 500 * kMs);
}

TEST(FlowTable, MaxflowsRefusesNewFlowsCountsThemAndKeepsExistingCounting) {
    FlowTable t(config(60'000 * kMs, 60'000 * kMs, /*maxflows=*/3));
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 1; n <= 3; ++n) EXPECT_TRUE(t.add(make_packet(make_key(n), kT0), out));
    EXPECT_FALSE(t.add(make_packet(make_key(4), kT0, 700), out));
    EXPECT_FALSE(t.add(make_packet(make_key(5), kT0, 300), out));
    EXPECT_TRUE(t.add(make_packet(make_key(2), kT0 + kMs, 50), out));
    EXPECT_EQ(t.size(), 3U);
    EXPECT_EQ(t.stats().dropped_packets, 2U);
    EXPECT_EQ(t.stats().dropped_octets, 1000U);
    EXPECT_EQ(t.stats().packets, 4U);
    EXPECT_EQ(t.stats().created, 3U);

    // Room again once a flow leaves.
    t.expire(kT0 + 61'000 * kMs, out);
    EXPECT_EQ(t.size(), 0U);
    EXPECT_TRUE(t.add(make_packet(make_key(4), kT0 + 61'000 * kMs), out));
}

TEST(FlowTable, MaxflowsFullStillRestartsATimedOutFlow) {
    FlowTable t(config(1000 * kMs, 60'000 * kMs, /*maxflows=*/1));
    std::vector<FlowRecord> out;
    EXPECT_TRUE(t.add(make_packet(make_key(1), kT0), out));
    EXPECT_TRUE(t.add(make_packet(make_key(1), kT0 + 2000 * kMs), out));
    EXPECT_EQ(out.size(), 1U);
    EXPECT_EQ(t.stats().dropped_packets, 0U);
}

TEST(FlowTable, LoweringMaxflowsKeepsExistingFlows) {
    FlowTable t(config());
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 1; n <= 5; ++n) t.add(make_packet(make_key(n), kT0), out);
    t.set_maxflows(2);
    EXPECT_EQ(t.size(), 5U);
    EXPECT_TRUE(t.add(make_packet(make_key(5), kT0), out));
    EXPECT_FALSE(t.add(make_packet(make_key(6), kT0), out));
}

TEST(FlowTable, OctetsNearTwoToThe32ExportFlowBeforeWrapping) {
    FlowTable t(config());
    std::vector<FlowRecord> out;
    const FlowKey k = make_key(1);
    const std::uint32_t big = 0xFFFF0000U;
    t.add(make_packet(k, kT0, big), out);
    t.add(make_packet(k, kT0 + kMs, 0xFFFFU), out); // reaches exactly 2^32 - 1: fits
    EXPECT_TRUE(out.empty());
    t.add(make_packet(k, kT0 + 2 * kMs, 1), out); // one more octet would wrap
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].octets, 0xFFFFFFFFU);
    EXPECT_EQ(out[0].packets, 2U);
    EXPECT_EQ(t.stats().expired_overflow, 1U);
    EXPECT_EQ(t.stats().octets, std::uint64_t{0xFFFFFFFFU} + 1);

    out.clear();
    t.flush(out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].octets, 1U);
    EXPECT_EQ(out[0].first, kT0 + 2 * kMs);
}

TEST(FlowTable, PacketCounterNeverWraps) {
    FlowTable t(config());
    std::vector<FlowRecord> out;
    const FlowKey k = make_key(1);
    t.add(make_packet(k, kT0, 10), out);
    // 2^32 real packets would take a minute; start the counter just below the limit.
    FlowTableTestPeer::set_packets(t, k, 0xFFFFFFFEU);
    t.add(make_packet(k, kT0 + kMs, 10), out); // reaches 2^32 - 1: fits
    EXPECT_TRUE(out.empty());
    t.add(make_packet(k, kT0 + 2 * kMs, 10), out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].packets, 0xFFFFFFFFU);
    EXPECT_EQ(out[0].octets, 20U);
    EXPECT_EQ(t.stats().expired_overflow, 1U);
    out.clear();
    t.flush(out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].packets, 1U);
}

TEST(FlowTable, FlushExportsEverythingAndEmptiesTheTable) {
    FlowTable t(config());
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 0; n < 5000; ++n) t.add(make_packet(make_key(n), kT0), out);
    const std::size_t held = t.memory_bytes();
    t.flush(out);
    EXPECT_EQ(out.size(), 5000U);
    EXPECT_EQ(t.size(), 0U);
    EXPECT_EQ(t.stats().flushed, 5000U);
    EXPECT_EQ(t.stats().active, 0U);
    EXPECT_LT(t.memory_bytes(), held);

    out.clear();
    t.expire(kT0 + 3600 * kNanosPerSecond, out);
    EXPECT_TRUE(out.empty());
    int visited = 0;
    t.for_each([&](const FlowRecord&) { ++visited; });
    EXPECT_EQ(visited, 0);

    // Usable after a flush.
    EXPECT_TRUE(t.add(make_packet(make_key(1), kT0), out));
    EXPECT_EQ(t.size(), 1U);
}

TEST(FlowTable, HashsizeIsClampedToMinimum) {
    FlowTable t(config(1, 1, 0, /*hashsize=*/3));
    EXPECT_EQ(t.config().hashsize, kMinHashsize);
    t.set_hashsize(0);
    EXPECT_EQ(t.config().hashsize, kMinHashsize);
}

TEST(FlowTable, RehashGrowAndShrinkKeepsEveryFlowExactlyOnce) {
    FlowTable t(config(60'000 * kMs, 60'000 * kMs, 0, /*hashsize=*/256));
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 0; n < 20'000; ++n)
        t.add(make_packet(make_key(n), kT0, 100 + n % 7), out);
    auto before = dump(t);
    ASSERT_EQ(before.size(), 20'000U);

    for (std::size_t size : {std::size_t{100'003}, std::size_t{256}, std::size_t{20'000}}) {
        t.set_hashsize(size);
        EXPECT_EQ(t.config().hashsize, size);
        EXPECT_EQ(t.size(), 20'000U);
        EXPECT_EQ(dump(t).size(), 20'000U);
        EXPECT_TRUE(dump(t) == before);
        // Lookups land on the existing flows: no new flow is created.
        const std::uint64_t created = t.stats().created;
        for (std::uint32_t n = 0; n < 20'000; n += 97) {
            t.add(make_packet(make_key(n), kT0, 5), out);
            Totals& e = before[tie_key(make_key(n))];
            ++e.packets;
            e.octets += 5;
        }
        EXPECT_EQ(t.stats().created, created);
        EXPECT_TRUE(dump(t) == before);
    }
    EXPECT_TRUE(out.empty());

    // Expiry still finds and unlinks every flow through the new chains.
    t.expire(kT0 + 61'000 * kMs, out);
    EXPECT_EQ(out.size(), 20'000U);
    EXPECT_EQ(t.size(), 0U);
}

TEST(FlowTable, ManyRandomFlowsAreAccountedExactly) {
    FlowTable t(config(3600 * kNanosPerSecond, 3600 * kNanosPerSecond, 0, 65536));
    std::vector<FlowRecord> out;
    std::mt19937_64 rng(12345);
    std::vector<FlowKey> keys;
    keys.reserve(100'000);
    for (int i = 0; i < 100'000; ++i) {
        FlowKey k;
        const std::uint64_t r = rng();
        k.src_addr = static_cast<std::uint32_t>(r);
        k.dst_addr = static_cast<std::uint32_t>(r >> 32);
        const std::uint64_t r2 = rng();
        k.src_port = static_cast<std::uint16_t>(r2);
        k.dst_port = static_cast<std::uint16_t>(r2 >> 16);
        k.protocol = static_cast<std::uint8_t>(r2 >> 32);
        k.tos = static_cast<std::uint8_t>(r2 >> 40);
        k.in_if = static_cast<std::uint32_t>(r2 >> 48);
        keys.push_back(k);
    }
    std::map<KeyTuple, Totals> expected;
    std::uint64_t total_octets = 0;
    for (int i = 0; i < 400'000; ++i) {
        const FlowKey& k = keys[rng() % keys.size()];
        const auto octets = static_cast<std::uint32_t>(40 + rng() % 1460);
        ASSERT_TRUE(t.add(make_packet(k, kT0 + i, octets), out));
        Totals& e = expected[tie_key(k)];
        ++e.packets;
        e.octets += octets;
        total_octets += octets;
    }
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(t.size(), expected.size());
    EXPECT_EQ(t.stats().created, expected.size());
    EXPECT_EQ(t.stats().packets, 400'000U);
    EXPECT_EQ(t.stats().octets, total_octets);
    EXPECT_EQ(t.stats().found, 400'000U - expected.size());

    t.flush(out);
    std::map<KeyTuple, Totals> got;
    for (const FlowRecord& r : out) {
        Totals& g = got[tie_key(r.key)];
        EXPECT_EQ(g.packets, 0U) << "flow exported twice";
        g.packets = r.packets;
        g.octets = r.octets;
    }
    ASSERT_EQ(got.size(), expected.size());
    for (const auto& [k, e] : expected) {
        const Totals& g = got[k];
        ASSERT_EQ(g.packets, e.packets);
        ASSERT_EQ(g.octets, e.octets);
    }
}

TEST(FlowTable, FreedSlotsAreReusedWithoutGrowing) {
    FlowTable t(config(1000 * kMs, 60'000 * kMs));
    std::vector<FlowRecord> out;
    Nanos now = kT0;
    for (std::uint32_t n = 0; n < 10'000; ++n) t.add(make_packet(make_key(n), now), out);
    const std::size_t held = t.memory_bytes();
    for (int round = 1; round <= 5; ++round) {
        now += 2000 * kMs;
        t.expire(now, out);
        EXPECT_EQ(t.size(), 0U);
        for (std::uint32_t n = 0; n < 10'000; ++n)
            t.add(make_packet(make_key(n + 10'000 * static_cast<std::uint32_t>(round)), now), out);
    }
    EXPECT_EQ(t.memory_bytes(), held);
    EXPECT_EQ(out.size(), 50'000U);
}

TEST(FlowTable, ExpireWorkIsProportionalToFlowsExpiredNotTableSize) {
    FlowTable t(config(1000 * kMs, 60'000 * kMs, 0, 262'144));
    std::vector<FlowRecord> out;
    constexpr std::uint32_t kFlows = 200'000;
    for (std::uint32_t n = 0; n < kFlows; ++n) t.add(make_packet(make_key(n), kT0 + n), out);
    // Each call expires one flow (they started 1 ns apart). A scan of the table per call
    // would visit 4e9 entries here (seconds); popping list heads is microseconds.
    const auto start = std::chrono::steady_clock::now();
    for (std::uint32_t n = 0; n < 20'000; ++n) {
        t.expire(kT0 + 1000 * kMs + n + 1, out);
        ASSERT_EQ(out.size(), n + 1U);
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_LT(elapsed, std::chrono::seconds(1));
    EXPECT_EQ(t.size(), kFlows - 20'000U);
    for (std::uint32_t n = 0; n < 20'000; ++n) ASSERT_EQ(out[n].key, make_key(n));
}

TEST(FlowTable, ResetStatsKeepsActiveAndPeakConsistent) {
    FlowTable t(config());
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 0; n < 10; ++n) t.add(make_packet(make_key(n), kT0), out);
    t.reset_stats();
    EXPECT_EQ(t.stats().active, 10U);
    EXPECT_EQ(t.stats().peak, 10U);
    EXPECT_EQ(t.stats().packets, 0U);
    EXPECT_EQ(t.stats().created, 0U);
    t.add(make_packet(make_key(10), kT0), out);
    EXPECT_EQ(t.stats().active, 11U);
    EXPECT_EQ(t.stats().peak, 11U);
    t.flush(out);
    EXPECT_EQ(t.stats().active, 0U);
    EXPECT_EQ(t.stats().peak, 11U);
}

TEST(FlowTable, StatsCountChainEntriesWalked) {
    FlowTable t(config(60'000 * kMs, 60'000 * kMs, 0, 256));
    std::vector<FlowRecord> out;
    t.add(make_packet(make_key(1), kT0), out);
    EXPECT_EQ(t.stats().searched, 0U); // empty bucket
    t.add(make_packet(make_key(1), kT0), out);
    EXPECT_EQ(t.stats().searched, 1U);
    EXPECT_EQ(t.stats().found, 1U);
}

TEST(FlowTable, SetTimeoutsTakesEffectOnNextExpire) {
    FlowTable t(config(60'000 * kMs, 60'000 * kMs));
    std::vector<FlowRecord> out;
    t.add(make_packet(make_key(1), kT0), out);
    t.expire(kT0 + 10 * kMs, out);
    EXPECT_TRUE(out.empty());
    t.set_timeouts(5 * kMs, 60'000 * kMs);
    EXPECT_EQ(t.config().inactive_timeout, 5 * kMs);
    t.expire(kT0 + 10 * kMs, out);
    EXPECT_EQ(out.size(), 1U);
}

TEST(FlowTable, MemoryPerFlowAtOneMillionFlowsIsWithinBudget) {
    constexpr std::uint32_t kFlows = 1'000'000;
    FlowTable t(config(3600 * kNanosPerSecond, 3600 * kNanosPerSecond, 0, kFlows));
    std::vector<FlowRecord> out;
    for (std::uint32_t n = 0; n < kFlows; ++n) {
        FlowKey k = make_key(n);
        k.src_port = static_cast<std::uint16_t>(n);
        ASSERT_TRUE(t.add(make_packet(k, kT0), out));
    }
    ASSERT_EQ(t.size(), kFlows);
    const double per_flow = static_cast<double>(t.memory_bytes()) / kFlows;
    RecordProperty("bytes_per_flow", std::to_string(per_flow));
    std::printf("bytes per flow at 1M flows: %.2f\n", per_flow);
    EXPECT_LE(per_flow, 128.0);
}

} // namespace
} // namespace nflowd
