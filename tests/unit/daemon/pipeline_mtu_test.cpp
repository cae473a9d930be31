// The readers take interface MTUs from the MtuFeed once per batch (issue 11's `oversize`):
// counted against the table of the batch, a new table from the next batch on.
#include "nflowd/pipeline.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kStart = 1'700'000'000 * kNanosPerSecond;

std::shared_ptr<const LinkMtus> table(std::uint32_t eth3_mtu) {
    LinkMtus m;
    m.by_ifindex.assign(4, kDefaultMtu);
    m.by_ifindex[3] = eth3_mtu;
    return std::make_shared<const LinkMtus>(std::move(m));
}

struct Fixture {
    test::UdpCollector collector;
    Clock clock{Clock::Mode::packets};
    PipelineConfig pc;
    std::shared_ptr<MtuFeed> feed = std::make_shared<MtuFeed>();
    Fixture() {
        clock.advance(kStart);
        pc.table.hashsize = 1024;
        pc.v5.boot_time = kStart;
        pc.pacing.rate = 0;
    }
    // One batch of `n` 4000-byte UDP packets in on ifindex 3; the oversize count after it.
    static std::uint64_t batch(Pipeline& p, int n) {
        auto& d = p.dispatcher(0);
        for (int i = 0; i < n; ++i)
            d.dispatch(test::ipv4_packet(0x0a000001, 0x0a000002, 17, 1000, 53, 4000),
                       PacketMeta{.time = kStart, .in_if = 3, .out_if = 4});
        d.publish();
        return p.stats().parse.oversize;
    }
};

TEST(PipelineMtu, ReadersCountAgainstThePublishedTable) {
    Fixture f;
    f.feed->publish(table(9000)); // before the pipeline: its readers start with it
    f.pc.mtus = f.feed;
    Pipeline p(f.pc, f.clock, CollectorSet(parse_destinations(f.collector.address()), 0));
    EXPECT_EQ(Fixture::batch(p, 5), 0U); // jumbo frames as they are on the wire
    // ip link set eth3 mtu 1500: this batch still holds the old table, the next one not.
    f.feed->publish(table(1500));
    EXPECT_EQ(Fixture::batch(p, 5), 0U);
    EXPECT_EQ(Fixture::batch(p, 5), 5U);
    f.feed->publish(table(9000));
    EXPECT_EQ(Fixture::batch(p, 1), 6U);
    EXPECT_EQ(Fixture::batch(p, 5), 6U);
    EXPECT_EQ(p.stats().parse.accounted, 21U);
}

TEST(PipelineMtu, ABatchCountsAgainstOneWholeTable) {
    // The MTU flips between 1500 and 9000 from another thread (LinkNames' owner) while the
    // reader runs: each batch is counted against one table, all oversize or none.
    Fixture f;
    f.pc.mtus = f.feed;
    Pipeline p(f.pc, f.clock, CollectorSet(parse_destinations(f.collector.address()), 0));
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        for (std::uint32_t i = 0; !stop.load(); ++i) f.feed->publish(table(i % 2 ? 9000 : 1500));
    });
    int mixed = 0, whole_oversize = 0;
    std::uint64_t last = 0;
    for (int b = 0; b < 300; ++b) {
        const std::uint64_t now = Fixture::batch(p, 10);
        mixed += now - last != 0 && now - last != 10;
        whole_oversize += now - last == 10;
        last = now;
    }
    stop = true;
    flipper.join();
    EXPECT_EQ(mixed, 0);
    EXPECT_GT(whole_oversize, 0);
}

TEST(PipelineMtu, WithoutAFeedEveryInterfaceIs1500) {
    // --read: no rtnetlink.
    Fixture f;
    Pipeline p(f.pc, f.clock, CollectorSet(parse_destinations(f.collector.address()), 0));
    EXPECT_EQ(Fixture::batch(p, 3), 3U);
}

} // namespace
} // namespace nflowd
