// Pacing across wall-clock steps (issue 11 item 4): a paced flush of the whole cache keeps its
// pace in real time while the wall clock steps back an hour and then forward; only the
// datagrams' unix_secs follow the steps, sysUptime runs on the monotonic flow clock.
#include "nflowd/pipeline.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kHour = 3600 * kNanosPerSecond;

// The wall clock the live pipeline reads for export timestamps, stepped by the test (in place
// of NTP or a VM restore). A plain function: Clock::WallSource is a function pointer.
std::atomic<Nanos> g_wall_step{0};
Nanos stepped_wall() noexcept {
    return wall_time() + g_wall_step.load();
}

// One datagram as the collector saw it: when (CLOCK_MONOTONIC), the real wall clock then, and
// the step in force then.
struct Arrival {
    test::V5Datagram dg;
    Nanos at = 0;
    Nanos real_wall = 0;
    Nanos step = 0;
};

// Receives `n` datagrams (or until 5 s of silence); once a third of them arrived the wall clock
// steps back an hour, once two thirds arrived it stands an hour ahead. Returns the arrivals and,
// in step_at, when each step was made.
std::vector<Arrival> receive_stepping(test::UdpCollector& c, std::size_t n, Nanos (&step_at)[2]) {
    std::vector<Arrival> out;
    while (out.size() < n) {
        auto bytes = c.receive(5000);
        if (!bytes) break;
        out.push_back({test::decode_v5(*bytes), steady_time(), wall_time(), g_wall_step.load()});
        if (out.size() == n / 3) {
            g_wall_step = -kHour;
            step_at[0] = steady_time();
        } else if (out.size() == 2 * n / 3) {
            g_wall_step = kHour;
            step_at[1] = steady_time();
        }
    }
    return out;
}

// Which step a datagram's unix_secs shows (-1, 0, 1 hours), or 99 when it shows none of them.
int step_shown(const Arrival& a) {
    const double diff = double(a.dg.header.secs) - double(a.real_wall / kNanosPerSecond);
    for (int h : {-1, 0, 1})
        if (std::abs(diff - h * 3600.0) <= 3.0) return h;
    return 99;
}

// unix_secs follows the wall clock: each datagram shows the step in force when it was built,
// so the steps appear in order (none, back, forward), and any datagram arriving 200 ms after
// a step (several datagrams at this pace) shows it.
void expect_headers_follow_the_steps(const std::vector<Arrival>& got, const Nanos (&step_at)[2]) {
    int previous = 0;
    std::size_t shown[2] = {0, 0};
    for (std::size_t i = 0; i < got.size(); ++i) {
        const int h = step_shown(got[i]);
        ASSERT_NE(h, 99) << "datagram " << i << ": unix_secs " << got[i].dg.header.secs;
        const int order = h == 0 ? 0 : h == -1 ? 1 : 2; // the order the steps were made in
        const int previous_order = previous == 0 ? 0 : previous == -1 ? 1 : 2;
        EXPECT_GE(order, previous_order) << "datagram " << i << " went back to an older step";
        previous = h;
        for (int s = 0; s < 2; ++s) {
            if (step_at[s] == 0 || got[i].at - step_at[s] < 200 * kNanosPerMilli) continue;
            if (s == 0 && step_at[1] != 0 && got[i].at > step_at[1]) continue;
            EXPECT_EQ(h, s == 0 ? -1 : 1) << "datagram " << i << " built after the step";
            ++shown[s];
        }
    }
    EXPECT_GT(shown[0], 30u) << "too few datagrams after the step back";
    EXPECT_GT(shown[1], 30u) << "too few datagrams after the step forward";
}

// sysUptime runs on flow time: at or after every record's Last, never moving back, and across
// the flush it advances as much as real time did (the steps leave no trace in it).
void expect_uptime_on_flow_time(const std::vector<Arrival>& got) {
    std::uint32_t previous = 0;
    for (const auto& a : got) {
        EXPECT_GE(a.dg.header.uptime, previous) << "sysUptime went back";
        previous = a.dg.header.uptime;
        for (const auto& r : a.dg.records)
            EXPECT_LT(a.dg.header.uptime - r.last, 10'000u) << "sysUptime behind Last or far ahead";
    }
    const double uptime_span = double(got.back().dg.header.uptime - got.front().dg.header.uptime);
    const double real_span = double(got.back().at - got.front().at) / double(kNanosPerMilli);
    EXPECT_NEAR(uptime_span, real_span, 300.0) << "sysUptime did not advance with real time";
}

// `n` one-packet UDP flows at flow time now, in the cache once this returns.
void fill_cache(Pipeline& pipeline, const Clock& clock, std::uint32_t n) {
    auto& d = pipeline.dispatcher(0);
    for (std::uint32_t f = 0; f < n; ++f) {
        d.dispatch(test::ipv4_packet(0x0a000001, 0x0b000000 + f, 17, 5000, 53, 100),
                   PacketMeta{clock.now(), 1, 2});
        if (f % 500 == 499) d.publish();
    }
    d.publish();
    for (int i = 0; i < 300 && pipeline.stats().total().active < n; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// The exporter paces by CLOCK_MONOTONIC (Exporter::pace): 6000 flows are 200 full v5
// datagrams of 1464 bytes, of which the 64 KiB burst goes at once and the rest at 100,000
// bytes/s, so the flush lasts (292,800 - 65,536) / 100,000 = 2.27 s whatever the wall clock
// does meanwhile. Paced on the wall clock, the step back would hold the rest for an hour
// (then the test fails at the 5 s silence and hangs in finish) and the step forward would
// refill the bucket (0.66 s early).
TEST(PipelinePacing, WallClockStepsDuringAPacedFlushMoveTimestampsButNotThePace) {
    constexpr std::uint32_t kFlows = 6000;
    constexpr std::size_t kDatagrams = kFlows / 30;
    constexpr std::uint32_t kRate = 100'000;
    const double expected =
        double(kDatagrams * (24 + 30 * 48) - PacingConfig{}.burst) / double(kRate);
    test::UdpCollector collector;
    g_wall_step = 0;
    Clock clock(Clock::Mode::live, stepped_wall);
    PipelineConfig pc;
    pc.workers = 2;
    pc.table.hashsize = 8192;
    pc.table.inactive_timeout = 60 * kNanosPerSecond; // nothing leaves before the flush
    pc.table.active_timeout = 120 * kNanosPerSecond;
    pc.v5.boot_time = clock.now();
    pc.pacing.rate = kRate; // the default burst: the bucket is full after the idle start
    Pipeline pipeline(pc, clock, CollectorSet(parse_destinations(collector.address()), 0));
    fill_cache(pipeline, clock, kFlows);
    ASSERT_EQ(pipeline.stats().total().active, kFlows);

    const Nanos start = steady_time();
    pipeline.flush();
    Nanos step_at[2] = {0, 0};
    const auto got = receive_stepping(collector, kDatagrams, step_at);
    ASSERT_EQ(got.size(), kDatagrams) << "datagrams missing after the wall-clock steps";
    const double took = double(got.back().at - start) / double(kNanosPerSecond);
    EXPECT_GE(took, expected - 0.02) << "faster than the pace";
    EXPECT_LE(took, expected + 1.0) << "slower than the pace";
    std::uint32_t sequence = 0;
    for (const auto& a : got) {
        EXPECT_EQ(a.dg.header.sequence, sequence);
        sequence += a.dg.header.count;
    }
    EXPECT_EQ(sequence, kFlows);
    expect_headers_follow_the_steps(got, step_at);
    expect_uptime_on_flow_time(got);
    pipeline.finish();
    EXPECT_FALSE(collector.receive(100).has_value());
    g_wall_step = 0;
}

} // namespace
} // namespace nflowd
