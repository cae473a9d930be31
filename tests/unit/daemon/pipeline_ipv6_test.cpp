// The pipeline with IPv4 and IPv6 packets mixed: IPv6 flows kept per worker beside IPv4 ones
// when accepted, counted and skipped when not, one maxflows for both, v5 carrying IPv4 only.
#include "nflowd/pipeline.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kStart = 1'700'000'000 * kNanosPerSecond;

// A UDP packet 2001:db8::<src> -> 2001:db8:1::<dst>, payload length `payload`.
std::vector<std::byte> ipv6_udp(std::uint16_t src, std::uint16_t dst, std::uint16_t sport,
                                std::uint16_t payload) {
    std::vector<std::byte> b(48, std::byte{0});
    b[0] = std::byte{0x60};
    b[4] = static_cast<std::byte>(payload >> 8);
    b[5] = static_cast<std::byte>(payload);
    b[6] = std::byte{17};
    b[7] = std::byte{64};
    for (const std::size_t at : {8U, 24U}) {
        b[at] = std::byte{0x20};
        b[at + 1] = std::byte{0x01};
        b[at + 2] = std::byte{0x0d};
        b[at + 3] = std::byte{0xb8};
    }
    b[29] = std::byte{1};
    b[22] = static_cast<std::byte>(src >> 8);
    b[23] = static_cast<std::byte>(src);
    b[38] = static_cast<std::byte>(dst >> 8);
    b[39] = static_cast<std::byte>(dst);
    b[40] = static_cast<std::byte>(sport >> 8);
    b[41] = static_cast<std::byte>(sport);
    b[43] = std::byte{53};
    return b;
}

struct Mixed {
    test::UdpCollector collector;
    Clock clock{Clock::Mode::packets};
    PipelineConfig pc;
    Mixed(bool ipv6, std::size_t maxflows = 0) {
        clock.advance(kStart);
        pc.workers = 2;
        pc.table.hashsize = 1024;
        pc.table.maxflows = maxflows;
        pc.v5.boot_time = kStart;
        pc.pacing.rate = 0;
        pc.ipv6 = ipv6;
    }
};

// Sends `flows` IPv4 and `flows` IPv6 UDP flows, `rounds` packets each, interleaved.
void send_mixed(Pipeline& p, std::uint16_t flows, int rounds) {
    auto& d = p.dispatcher(0);
    for (int r = 0; r < rounds; ++r) {
        for (std::uint16_t f = 0; f < flows; ++f) {
            const PacketMeta meta{kStart + r * kNanosPerMilli, 3, 4};
            d.dispatch(test::ipv4_packet(0x0a000000U + f, 0x0a640001, 17, 1000, 53, 100), meta);
            d.dispatch(ipv6_udp(f, 7, 2000, 60), meta);
        }
        d.publish();
    }
}

void wait_accounted(Pipeline& p, std::uint64_t packets) {
    for (int i = 0;
         i < 500 && p.stats().total().packets + p.stats().total().dropped_packets < packets; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

TEST(PipelineIpv6, Ipv6FlowsAreKeptBesideIpv4AndDumped) {
    Mixed m(true);
    Pipeline p(m.pc, m.clock, CollectorSet(parse_destinations(m.collector.address()), 0));
    send_mixed(p, 100, 3);
    wait_accounted(p, 600);
    const auto all = p.select_flows(0, FlowRank::packets);
    EXPECT_EQ(all.total, 200U);
    std::set<std::uint16_t> v6_sources;
    std::size_t v4 = 0;
    for (const auto& f : all.flows) {
        EXPECT_EQ(f.packets, 3U);
        if (f.family == Family::ipv6) {
            EXPECT_EQ(f.octets, 3U * 100U);
            EXPECT_EQ(f.key.src_addr, 0U);
            EXPECT_EQ(f.src6[0], 0x20);
            EXPECT_EQ(f.dst6[5], 1);
            EXPECT_EQ(f.key.src_port, 2000);
            EXPECT_EQ(f.key.protocol, 17);
            v6_sources.insert(static_cast<std::uint16_t>((f.src6[14] << 8) | f.src6[15]));
        } else {
            ++v4;
        }
    }
    EXPECT_EQ(v4, 100U);
    EXPECT_EQ(v6_sources.size(), 100U);
    const auto s = p.stats();
    EXPECT_EQ(s.parse.ipv6_accounted, 300U);
    EXPECT_EQ(s.parse.ipv6, 0U);
    EXPECT_EQ(s.total().packets, 600U);
    EXPECT_EQ(s.total().active, 200U);
    EXPECT_EQ(s.peak, 200U);
    // IPv6 flows spread over both workers by the keyed shard pick. The pick is linear in
    // each key word, so keys that differ in one byte only may all land on one side for an
    // unlucky shard key (CI saw it once in ~1 % of draws): whole random keys do not.
    std::set<std::size_t> workers;
    std::mt19937 gen(7);
    for (int i = 0; i < 256; ++i) {
        FlowKey6 k;
        for (auto& b : k.src_addr) b = static_cast<std::uint8_t>(gen());
        for (auto& b : k.dst_addr) b = static_cast<std::uint8_t>(gen());
        k.src_port = static_cast<std::uint16_t>(gen());
        k.dst_port = static_cast<std::uint16_t>(gen());
        workers.insert(p.worker_of(k));
    }
    EXPECT_EQ(workers.size(), 2U);
    p.finish();
    // v5 carried the IPv4 flows exactly, and nothing of IPv6.
    std::uint64_t packets = 0, records = 0;
    for (const auto& dg : m.collector.receive_all())
        for (const auto& r : dg.records) {
            packets += r.packets;
            ++records;
            EXPECT_EQ(r.dst, 0x0a640001U);
        }
    EXPECT_EQ(records, 100U);
    EXPECT_EQ(packets, 300U);
}

TEST(PipelineIpv6, OffCountsIpv6AsSkipped) {
    Mixed m(false);
    Pipeline p(m.pc, m.clock, CollectorSet(parse_destinations(m.collector.address()), 0));
    send_mixed(p, 50, 2);
    wait_accounted(p, 100);
    p.finish();
    const auto s = p.stats();
    EXPECT_EQ(s.parse.ipv6, 100U);
    EXPECT_EQ(s.parse.ipv6_accounted, 0U);
    EXPECT_EQ(s.total().packets, 100U);
    EXPECT_EQ(s.total().created, 50U);
}

TEST(PipelineIpv6, SwitchedOnAndOffAtRunTime) {
    Mixed m(false);
    Pipeline p(m.pc, m.clock, CollectorSet(parse_destinations(m.collector.address()), 0));
    send_mixed(p, 20, 1);
    p.set_ipv6(true);
    p.dispatcher(0).publish(); // readers take the switch between batches
    send_mixed(p, 20, 1);
    wait_accounted(p, 60);
    EXPECT_EQ(p.select_flows(0, FlowRank::start).total, 40U);
    // Off: the IPv6 flows leave at once (forced), the IPv4 ones stay.
    p.set_ipv6(false);
    p.dispatcher(0).publish();
    EXPECT_EQ(p.select_flows(0, FlowRank::start).total, 20U);
    send_mixed(p, 20, 1);
    p.finish();
    const auto s = p.stats();
    EXPECT_EQ(s.parse.ipv6, 40U);
    EXPECT_EQ(s.parse.ipv6_accounted, 20U);
    EXPECT_EQ(s.total().flushed, 40U); // 20 IPv6 at the switch, 20 IPv4 at the end
}

TEST(PipelineIpv6, MaxflowsIsOneLimitForBothFamilies) {
    Mixed m(true, 150);
    Pipeline p(m.pc, m.clock, CollectorSet(parse_destinations(m.collector.address()), 0));
    send_mixed(p, 100, 1);
    wait_accounted(p, 200);
    const auto s = p.stats();
    EXPECT_EQ(s.total().created, 150U);
    EXPECT_EQ(s.total().dropped_packets, 50U);
    EXPECT_EQ(s.peak, 150U);
    p.finish();
}

} // namespace
} // namespace nflowd
