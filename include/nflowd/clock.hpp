// The time source the pipeline runs on: the wall clock when capturing live, or the
// timestamps of the packets being replayed, so that `--read` expires flows as live would.
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

class Clock {
  public:
    enum class Mode { wall, packets };
    explicit Clock(Mode mode) noexcept : mode_(mode) {}

    Mode mode() const noexcept { return mode_; }
    Nanos now() const noexcept {
        return mode_ == Mode::wall ? wall_time() : packet_time_.load(std::memory_order_acquire);
    }
    // Replay: the reader moves time forward as packets are read; time never goes back.
    void advance(Nanos t) noexcept {
        if (t > packet_time_.load(std::memory_order_relaxed))
            packet_time_.store(t, std::memory_order_release);
    }

  private:
    Mode mode_;
    std::atomic<Nanos> packet_time_{0};
};

} // namespace nflowd
