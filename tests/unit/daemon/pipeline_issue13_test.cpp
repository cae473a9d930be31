// The pipeline's part of issue 13: the direction in the flow key only while v9/IPFIX is
// exported (a v5 flow neither splits by hook nor keeps it), and --sampler hash:N choosing on
// each packet in the readers, counting what it leaves out.
#include "nflowd/pipeline.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kStart = 1'700'000'000 * kNanosPerSecond;

struct Fixture {
    test::UdpCollector collector;
    Clock clock{Clock::Mode::packets};
    PipelineConfig pc;
    explicit Fixture(bool v9_or_ipfix) {
        clock.advance(kStart);
        pc.workers = 2;
        pc.table.hashsize = 1024;
        pc.v5.boot_time = kStart;
        pc.pacing.rate = 0;
        pc.ipv6 = v9_or_ipfix; // what exports_ipv6() says: some destination gets v9/IPFIX
    }
};

void wait_accounted(Pipeline& p, std::uint64_t packets) {
    for (int i = 0; i < 500 && p.stats().total().packets < packets; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// One UDP packet of flow `f`, logged at a hook of direction `d`.
void send(Pipeline& p, std::uint32_t f, Direction d) {
    PacketMeta meta{kStart, 3, 4};
    meta.direction = d;
    p.dispatcher(0).dispatch(test::ipv4_packet(0x0a000000U + f, 0x0a640001, 17, 1000, 53, 100),
                             meta);
}

TEST(PipelineDirection, V9IpfixKeepsItAndSplitsByHook) {
    Fixture fx(true);
    Pipeline p(fx.pc, fx.clock, CollectorSet(parse_destinations(fx.collector.address()), 0));
    for (auto d : {Direction::ingress, Direction::egress, Direction::ingress, Direction::unknown})
        send(p, 1, d);
    p.dispatcher(0).publish();
    wait_accounted(p, 4);
    const auto all = p.select_flows(0, FlowRank::packets);
    ASSERT_EQ(all.flows.size(), 3U) << "one flow per direction";
    EXPECT_EQ(all.flows[0].key.direction, Direction::ingress);
    EXPECT_EQ(all.flows[0].packets, 2U);
    p.finish();
}

TEST(PipelineDirection, V5NeitherSplitsNorKeepsIt) {
    Fixture fx(false);
    Pipeline p(fx.pc, fx.clock, CollectorSet(parse_destinations(fx.collector.address()), 0));
    for (auto d : {Direction::ingress, Direction::egress, Direction::unknown}) send(p, 1, d);
    p.dispatcher(0).publish();
    wait_accounted(p, 3);
    const auto all = p.select_flows(0, FlowRank::packets);
    ASSERT_EQ(all.flows.size(), 1U);
    EXPECT_EQ(all.flows[0].key.direction, Direction::unknown);
    EXPECT_EQ(all.flows[0].packets, 3U);
    p.finish();
}

// MACs and VLAN reach the flows only while v9/IPFIX is exported, and follow set_ipv6 (the
// protocol switched at run time) in both directions.
TEST(PipelineLink, KeptForV9IpfixOnlyAndSwitchedAtRunTime) {
    Fixture fx(false);
    Pipeline p(fx.pc, fx.clock, CollectorSet(parse_destinations(fx.collector.address()), 0));
    PacketMeta meta{kStart, 3, 4};
    meta.link.src_mac = {0x02, 0, 0, 0, 0, 0x01};
    meta.link.vlan = 100;
    const auto send_linked = [&](std::uint32_t f) {
        p.dispatcher(0).dispatch(test::ipv4_packet(0x0a000000U + f, 0x0a640001, 17, 1000, 53, 100),
                                 meta);
        p.dispatcher(0).publish();
    };
    send_linked(1);
    wait_accounted(p, 1);
    auto all = p.select_flows(0, FlowRank::packets);
    ASSERT_EQ(all.flows.size(), 1U);
    EXPECT_TRUE(all.flows[0].link.empty()) << "v5 keeps no link layer";

    p.set_ipv6(true); // v5 -> IPFIX
    p.dispatcher(0).publish();
    send_linked(1); // the cached flow takes its first packet with one
    send_linked(2);
    wait_accounted(p, 3);
    all = p.select_flows(0, FlowRank::packets);
    ASSERT_EQ(all.flows.size(), 2U);
    for (const auto& f : all.flows) EXPECT_EQ(f.link, meta.link);

    p.set_ipv6(false); // IPFIX -> v5: the link records go
    all = p.select_flows(0, FlowRank::packets);
    ASSERT_EQ(all.flows.size(), 2U);
    for (const auto& f : all.flows) EXPECT_TRUE(f.link.empty());
    p.finish();
}

// The prefix tag's observation point splits flows like the direction, for v9/IPFIX only.
TEST(PipelineObservationPoint, SplitsV9IpfixFlowsOnly) {
    for (bool v9_or_ipfix : {true, false}) {
        Fixture fx(v9_or_ipfix);
        Pipeline p(fx.pc, fx.clock, CollectorSet(parse_destinations(fx.collector.address()), 0));
        for (int obs : {1, 2, 1, 0}) {
            PacketMeta meta{kStart, 3, 4};
            meta.obs_point = static_cast<std::uint8_t>(obs);
            p.dispatcher(0).dispatch(test::ipv4_packet(0x0a000001, 0x0a640001, 17, 1000, 53, 100),
                                     meta);
        }
        p.dispatcher(0).publish();
        wait_accounted(p, 4);
        const auto all = p.select_flows(0, FlowRank::packets);
        if (v9_or_ipfix) {
            ASSERT_EQ(all.flows.size(), 3U) << "one flow per observation point";
            EXPECT_EQ(all.flows[0].key.obs_point, 1);
            EXPECT_EQ(all.flows[0].packets, 2U);
        } else {
            ASSERT_EQ(all.flows.size(), 1U);
            EXPECT_EQ(all.flows[0].key.obs_point, 0);
        }
        p.finish();
    }
}

// hash:4 over 2000 flows of 3 packets: every packet of a flow kept or left out together, about
// a quarter of the flows kept, the others' packets counted; switched off at run time.
TEST(PipelineHashSampler, KeepsWholeFlowsAndCountsThePacketsLeftOut) {
    Fixture fx(false);
    fx.pc.format.sampler = SamplerConfig::parse("hash:4");
    Pipeline p(fx.pc, fx.clock, CollectorSet(parse_destinations(fx.collector.address()), 0));
    for (int round = 0; round < 3; ++round) {
        for (std::uint32_t f = 0; f < 2000; ++f) send(p, f, Direction::unknown);
        p.dispatcher(0).publish();
    }
    const auto out = p.stats().parse.sampled_out;
    wait_accounted(p, 6000 - out);
    const auto all = p.select_flows(0, FlowRank::packets);
    for (const auto& f : all.flows) EXPECT_EQ(f.packets, 3U);
    EXPECT_EQ(all.flows.size() * 3 + out, 6000U);
    EXPECT_NEAR(static_cast<double>(all.flows.size()), 500.0, 100.0); // > 5 sigma

    p.set_export_format(ExportFormat{});
    p.dispatcher(0).publish(); // readers take the change between batches
    send(p, 5000, Direction::unknown);
    p.dispatcher(0).publish();
    EXPECT_EQ(p.stats().parse.sampled_out, out);
    p.finish();
}

// `nflowctl set flush 2` zeroes the NAT table's and the conntrack feed's counters with the
// others (the table's gauges keep their level). Needs ctnetlink (root): a real feed.
TEST(PipelineNat, FlushTwoZeroesTheConntrackAndNatCounters) {
    std::unique_ptr<ConntrackSource> source;
    try {
        source = std::make_unique<ConntrackSource>(ConntrackConfig{});
    } catch (const std::exception& e) {
        GTEST_SKIP() << "conntrack unavailable: " << e.what();
    }
    Fixture fx(true);
    fx.pc.conntrack = std::make_shared<ConntrackFeed>(std::move(source), ConntrackConfig{});
    fx.pc.nat.annotate = true;
    fx.pc.nat_status = NatStatus::on;
    Pipeline p(fx.pc, fx.clock,
               CollectorSet(parse_destinations(fx.collector.address() + "@10"), 0));
    for (std::uint32_t f = 0; f < 5; ++f) send(p, f, Direction::ingress);
    p.dispatcher(0).publish();
    wait_accounted(p, 5);
    p.flush(); // exported: five lookups that find no NATed connection
    PipelineStats s = p.stats();
    for (int i = 0; i < 500 && (s.nat.table.not_found < 5 || s.nat.conntrack.dumps == 0); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        s = p.stats();
    }
    ASSERT_EQ(s.nat.table.not_found, 5U);
    ASSERT_GE(s.nat.conntrack.dumps, 1U) << "the feed dumps the table at start";
    p.reset_stats();
    const PipelineStats z = p.stats();
    EXPECT_EQ(z.nat.table.not_found, 0U);
    EXPECT_EQ(z.nat.conntrack.dumps, 0U);
    EXPECT_EQ(z.nat.status, NatStatus::on);
    p.finish();
}

} // namespace
} // namespace nflowd
