// What `nflowctl stats` and SIGUSR1 show: the daemon's counters gathered in one struct and
// rendered from the statistics model (stats_fields.hpp) as text, JSON or Prometheus, plus the
// load-average style meter behind the 1/5/15-minute packet and bit rates.
#pragma once

#include "nflowd/control_protocol.hpp"
#include "nflowd/control_server.hpp"
#include "nflowd/link_names.hpp"
#include "nflowd/nflog_source.hpp"
#include "nflowd/pipeline.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nflowd {

struct GroupStats {
    std::uint16_t group = 0;
    NflogStats nflog;
};

constexpr std::array<int, 3> kRateMinutes = {1, 5, 15};

struct Rates {
    std::array<double, 3> pps{}; // per kRateMinutes
    std::array<double, 3> bps{};
};

// Exponential moving averages of cumulative counters, as the kernel's load average: each
// sample folds the rate since the previous one in with weight 1 - exp(-dt / period).
class RateMeter {
  public:
    static constexpr Nanos kInterval = 5 * kNanosPerSecond;

    // Cumulative counters at `now` (a monotonic clock). The first call only sets the base;
    // counters that went back (statistics zeroed) restart the base without a sample.
    void sample(Nanos now, std::uint64_t packets, std::uint64_t bytes) noexcept;
    // Sampled from a 1 s tick: a tenth of slack keeps a slightly early tick from skipping
    // a whole interval.
    bool due(Nanos now) const noexcept {
        return !primed_ || now - last_ >= kInterval - kInterval / 10;
    }
    const Rates& rates() const noexcept { return rates_; }
    void reset() noexcept { *this = RateMeter{}; }

  private:
    bool primed_ = false;
    Nanos last_ = 0;
    std::uint64_t packets_ = 0;
    std::uint64_t bytes_ = 0;
    Rates rates_;
};

struct StatsReport {
    std::string version;
    Nanos now = 0;     // wall clock
    Nanos started = 0; // wall clock
    unsigned protocol = 5;
    unsigned engine_id = 0;
    Nanos active_timeout = 0;
    Nanos inactive_timeout = 0;
    std::uint64_t maxflows = 0; // configured total, 0 = unlimited
    std::uint64_t peak = 0;     // most active flows daemon-wide (the maxflows budget's mark)
    Nanos peak_time = 0;        // wall clock, 0 = never
    Rates rates;
    PipelineStats pipeline;
    std::vector<GroupStats> groups;
    std::optional<ControlServerStats> control;
    std::optional<LinkStats> links; // live only: interface names from rtnetlink
};

// Lines of `key: value, value` text (ipt_NETFLOW's layout; scripts grep it).
std::string format_stats_text(const StatsReport& report);
// One JSON object (ends with a newline); the same figures as the text, in the same order.
std::string format_stats_json(const StatsReport& report);
// The Prometheus text exposition format (0.0.4): every declared field of every stage, counters
// as `nflowd_<stage>_<name>_total`, per worker / group / destination figures as labels.
std::string format_stats_prometheus(const StatsReport& report);
std::string format_stats(const StatsReport& report, ctl::StatsFormat format);

} // namespace nflowd
