// Issue 11 item 4 on the flow table: flows timed and expired on the live Clock (flow time,
// CLOCK_MONOTONIC) leave the cache on time while the wall clock steps back an hour, then forward.
#include "nflowd/clock.hpp"
#include "nflowd/flow_table.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kMs = kNanosPerMilli;
constexpr Nanos kHour = 3600 * kNanosPerSecond;
constexpr Nanos kInactive = 200 * kMs;

// The wall clock the live Clock reads for export timestamps, stepped by the test as NTP or a
// VM restore would step it. Each table below also runs a control twin timed on this stepped
// wall clock (the scheme issue 11 replaced), to show the step really is one for expiry.
std::atomic<Nanos> g_step{0};
Nanos stepped_wall() noexcept {
    return wall_time() + g_step.load();
}

FlowTableConfig timeouts(Nanos inactive, Nanos active) {
    FlowTableConfig c;
    c.hashsize = 1024;
    c.inactive_timeout = inactive;
    c.active_timeout = active;
    return c;
}

PacketInfo packet(std::uint32_t dst, Nanos time) {
    PacketInfo p;
    p.key.src_addr = 0x0a000001;
    p.key.dst_addr = dst;
    p.key.src_port = 5000;
    p.key.dst_port = 53;
    p.key.protocol = 17;
    p.time = time;
    p.octets = 100;
    return p;
}

using Steady = std::chrono::steady_clock;
double ms_since(Steady::time_point t) {
    return std::chrono::duration<double, std::milli>(Steady::now() - t).count();
}

// One flow added to `flow` at flow time and to `wall` at (stepped) wall time, then the wall
// clock stepped by `step`; expire() is called on each table's own clock every 5 ms for 1.5 s.
// Gives the real milliseconds after the packet at which each table let the flow go (-1: kept).
struct Left {
    double flow_ms = -1, wall_ms = -1;
    FlowRecord record;
};
Left expire_across_step(const Clock& clock, Nanos step, std::uint32_t dst) {
    FlowTable flow(timeouts(kInactive, 60 * kNanosPerSecond));
    FlowTable wall(timeouts(kInactive, 60 * kNanosPerSecond));
    std::vector<FlowRecord> out, wall_out;
    const auto before = Steady::now(); // no later than the packet's time
    EXPECT_TRUE(flow.add(packet(dst, clock.now()), out));
    EXPECT_TRUE(wall.add(packet(dst, stepped_wall()), wall_out));
    g_step += step; // the flow is in the cache
    Left left;
    while (ms_since(before) < 1500 && (left.flow_ms < 0 || left.wall_ms < 0)) {
        flow.expire(clock.now(), out);
        wall.expire(stepped_wall(), wall_out);
        if (left.flow_ms < 0 && !out.empty()) left.flow_ms = ms_since(before);
        if (left.wall_ms < 0 && !wall_out.empty()) left.wall_ms = ms_since(before);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!out.empty()) left.record = out.front();
    EXPECT_LE(out.size(), 1u);
    return left;
}

TEST(FlowTableClock, WallClockStepBackThenForwardDoesNotMoveExpiry) {
    g_step = 0;
    const Clock clock(Clock::Mode::live, stepped_wall);

    // Back an hour: the flow still leaves after its 200 ms inactive timeout; on the wall
    // clock it would sit in the cache for an hour.
    const Nanos wall_at_packet = clock.export_time().wall_now();
    const Left back = expire_across_step(clock, -kHour, 0x0a640001);
    EXPECT_GE(back.flow_ms, 200.0) << "left before its inactive timeout";
    EXPECT_LT(back.flow_ms, 1000.0) << "held back by the step (-1: still in the cache)";
    EXPECT_EQ(back.wall_ms, -1.0) << "control: the wall-clock table let the flow go";
    EXPECT_EQ(back.record.packets, 1u);
    // Only what the record says about time follows the step: its Last in wall time.
    EXPECT_NEAR(double(clock.export_time().wall(back.record.last) - (wall_at_packet - kHour)), 0.0,
                double(100 * kMs));

    // Then forward (an hour past the unstepped wall clock): not expired at once either; on the
    // wall clock the flow would leave at the first expire() after the step.
    const Nanos wall_at_second = clock.export_time().wall_now();
    const Left forward = expire_across_step(clock, 2 * kHour, 0x0a640002);
    EXPECT_GE(forward.flow_ms, 200.0) << "the step forward expired the flow early";
    EXPECT_LT(forward.flow_ms, 1000.0);
    EXPECT_GE(forward.wall_ms, 0.0) << "control: the wall-clock table kept the flow";
    EXPECT_LT(forward.wall_ms, 200.0) << "control: the wall-clock table waited the timeout";
    EXPECT_NEAR(
        double(clock.export_time().wall(forward.record.last) - (wall_at_second + 2 * kHour)), 0.0,
        double(100 * kMs));
    g_step = 0;
}

// A packet right after a step forward joins its flow (one flow, first and last 10 ms apart);
// timed on the wall clock it would find its flow an hour idle and start a second one.
TEST(FlowTableClock, PacketAfterAStepForwardJoinsItsFlow) {
    g_step = 0;
    const Clock clock(Clock::Mode::live, stepped_wall);
    FlowTable flow(timeouts(kInactive, 60 * kNanosPerSecond));
    FlowTable wall(timeouts(kInactive, 60 * kNanosPerSecond));
    std::vector<FlowRecord> out, wall_out;
    const Nanos first = clock.now();
    flow.add(packet(0x0a640003, first), out);
    wall.add(packet(0x0a640003, stepped_wall()), wall_out);
    g_step = kHour;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const Nanos second = clock.now();
    flow.add(packet(0x0a640003, second), out);
    wall.add(packet(0x0a640003, stepped_wall()), wall_out);
    g_step = 0;

    EXPECT_TRUE(out.empty());
    EXPECT_EQ(flow.stats().created, 1u);
    EXPECT_EQ(flow.stats().found, 1u);
    EXPECT_EQ(flow.stats().expired_inactive, 0u);
    flow.flush(out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].packets, 2u);
    EXPECT_EQ(out[0].first, first);
    EXPECT_EQ(out[0].last, second);
    EXPECT_LT(out[0].last - out[0].first, kInactive);

    EXPECT_EQ(wall.stats().created, 2u) << "control: the wall-clock table did not split the flow";
    EXPECT_EQ(wall.stats().expired_inactive, 1u);
}

} // namespace
} // namespace nflowd
