// systemd's service notifications (READY, STOPPING, STATUS, WATCHDOG) and the watchdog policy:
// WATCHDOG=1 only while every reader, worker and the exporter thread makes progress.
#pragma once

#include "nflowd/log.hpp"
#include "nflowd/packet.hpp"
#include "nflowd/unique_fd.hpp"

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nflowd {

// One thread's sign of life: bumped on every iteration of its loop, idle wake-ups and
// back-pressure waits included, so that only a thread stuck in one place stops it.
class Heartbeat {
  public:
    // One writer (the owning thread): a plain store, no locked read-modify-write.
    void beat() noexcept {
        count_.store(count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::uint64_t> count_{0};
};

struct Watched {
    std::string name; // for the log: "worker 1", "exporter", "reader of NFLOG group 5"
    const Heartbeat* heartbeat;
};

// The policy alone, on times it is given: testable without systemd and without threads.
class WatchdogPolicy {
  public:
    // period: how often a ping is due (half of systemd's WatchdogSec).
    WatchdogPolicy(Nanos period, std::vector<Watched> watched, Nanos now);

    // Called at every tick: true when WATCHDOG=1 is to be sent at `now`, i.e. a period has
    // passed since the last check and every watched thread beat since then.
    bool check(Nanos now);
    // Those that did not beat during the last checked period (empty: all alive).
    const std::vector<std::string>& stalled() const noexcept { return stalled_; }

  private:
    Nanos period_;
    std::vector<Watched> watched_;
    std::vector<std::uint64_t> seen_; // each heartbeat at the last check
    Nanos last_check_;
    std::vector<std::string> stalled_;
};

// The daemon's side of sd_notify: NOTIFY_SOCKET connected once, at construction, so that
// notifications still reach it after --user dropped the rights to open its path again.
class ServiceNotifier {
  public:
    // Reads NOTIFY_SOCKET and WATCHDOG_USEC (with WATCHDOG_PID, libsystemd's
    // sd_watchdog_enabled); without NOTIFY_SOCKET every call does nothing. Never throws for
    // a socket it cannot reach: it logs that and does without.
    explicit ServiceNotifier(Logger& log);

    bool active() const noexcept { return static_cast<bool>(fd_); }
    Nanos watchdog_interval() const noexcept { return interval_; }

    // READY=1 with `status`; from now on tick() feeds the watchdog while `watched` beat.
    void ready(std::vector<Watched> watched, std::string status, Nanos now);
    // WATCHDOG=1 when the policy says so; a stall and its end are logged and put in STATUS.
    void tick(Nanos now);
    // STOPPING=1: the stop began; the watchdog is fed no more.
    void stopping(std::string_view status);

  private:
    bool send(std::string_view message);

    Logger& log_;
    UniqueFd fd_;
    Nanos interval_ = 0;
    std::optional<WatchdogPolicy> policy_;
    std::string status_; // READY's, shown again once a stall ends
    bool stalled_ = false;
};

} // namespace nflowd
