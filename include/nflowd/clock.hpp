// The time source the pipeline runs on (flow time): CLOCK_MONOTONIC when capturing live, the
// timestamps of the packets being replayed for `--read`; and the wall time that exports need.
#pragma once

#include "nflowd/packet.hpp"

#include <atomic>
#include <ctime>

namespace nflowd {

inline Nanos wall_time() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return Nanos{ts.tv_sec} * kNanosPerSecond + ts.tv_nsec;
}

inline Nanos steady_time() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return Nanos{ts.tv_sec} * kNanosPerSecond + ts.tv_nsec;
}

// One instant read on both clocks, e.g. when a batch of packets is received: a wall time
// taken near it (a kernel timestamp) is placed in flow time as mono + (stamp - wall).
struct TimePair {
    Nanos wall = 0;
    Nanos mono = 0;
};

inline TimePair time_pair_now() noexcept {
    const Nanos mono = steady_time();
    return TimePair{wall_time(), mono};
}

// Live mode runs on CLOCK_MONOTONIC so that a step of the wall clock (NTP, a VM restore)
// changes what exported records say about time but never when flows expire or datagrams
// leave. Replay runs on the packets' own (wall) timestamps: its wall offset is 0.
class Clock {
  public:
    enum class Mode { live, packets };
    // The wall clock live mode reads for export timestamps; tests inject a stepping one.
    using WallSource = Nanos (*)() noexcept;

    explicit Clock(Mode mode, WallSource wall = wall_time) noexcept : mode_(mode), wall_(wall) {}

    Mode mode() const noexcept { return mode_; }
    // Flow time: what packet times, flows' first/last, expiry and V5Params::boot_time are in.
    Nanos now() const noexcept {
        return mode_ == Mode::live ? steady_time() : packet_time_.load(std::memory_order_acquire);
    }
    // wall = flow time + wall_offset(), sampled now: it moves when the wall clock is stepped.
    Nanos wall_offset() const noexcept { return export_time().wall_offset; }
    // Flow time now and the offset from one pair of readings, for a datagram's header.
    ExportTime export_time() const noexcept {
        if (mode_ == Mode::packets) return ExportTime{now(), 0};
        const Nanos mono = steady_time();
        return ExportTime{mono, wall_() - mono};
    }
    // Replay: the reader moves time forward as packets are read; time never goes back.
    void advance(Nanos t) noexcept {
        if (t > packet_time_.load(std::memory_order_relaxed))
            packet_time_.store(t, std::memory_order_release);
    }

  private:
    Mode mode_;
    WallSource wall_;
    std::atomic<Nanos> packet_time_{0};
};

} // namespace nflowd
