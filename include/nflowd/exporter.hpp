// The export stage: batches expired flows into v5 datagrams (one sequence for the whole
// exporter) and hands them to every collector, pacing big bursts so collectors keep up.
#pragma once

#include "nflowd/collector_set.hpp"
#include "nflowd/stats_fields.hpp"
#include "nflowd/v5_encoder.hpp"

#include <cstdint>
#include <span>

// Error idiom (export): sending never throws, failures are counted per collector (refused,
// buffer full, other); bad destinations throw std::invalid_argument, sockets std::system_error.
namespace nflowd {

struct ExporterStats {
    std::uint64_t flows = 0;      // flow records handed to the encoder
    std::uint64_t datagrams = 0;  // datagrams built
    std::uint64_t lost_flows = 0; // records whose datagram reached no collector
    std::uint64_t lost_datagrams = 0;

    static constexpr auto fields() {
        using F = StatField<ExporterStats>;
        constexpr auto c = StatKind::counter;
        return std::array{
            F{"flows", &ExporterStats::flows, c, "flows", "Flow records exported"},
            F{"datagrams", &ExporterStats::datagrams, c, "datagrams", "Datagrams built"},
            F{"lost_flows", &ExporterStats::lost_flows, c, "flows",
              "Flow records whose datagram reached no destination"},
            F{"lost_datagrams", &ExporterStats::lost_datagrams, c, "datagrams",
              "Datagrams that reached no destination"},
        };
    }
};

struct PacingConfig {
    // Datagrams per second once a burst is exhausted; 0 disables pacing.
    std::uint32_t rate = 20000;
    std::uint32_t burst = 64;
    friend bool operator==(const PacingConfig&, const PacingConfig&) = default;
};

class Exporter {
  public:
    Exporter(const V5Params& params, CollectorSet collectors, const PacingConfig& pacing = {});

    // `time`: flow time (expiry's clock, for the 1 s wait and sysUptime) and the wall offset
    // sampled with it (for unix_secs), see ExportTime.
    void add(std::span<const FlowRecord> records, const ExportTime& time);
    void tick(const ExportTime& time);   // sends a partial datagram that has waited 1 s
    void finish(const ExportTime& time); // sends whatever is pending

    void set_collectors(CollectorSet collectors);
    void set_params(const V5Params& params) noexcept { batcher_.set_params(params); }
    void set_pacing(const PacingConfig& pacing) noexcept { pacing_ = pacing; }
    CollectorSet& collectors() noexcept { return collectors_; }
    const ExporterStats& stats() const noexcept { return stats_; }
    // Zeroes the counters, the collectors' too (`nflowctl set flush 2`); the v5 sequence and
    // the pending datagram are kept.
    void reset_stats() noexcept;
    Nanos deadline() const noexcept { return batcher_.deadline(); }

  private:
    void send(const V5Datagram& datagram);
    void pace();

    V5Batcher batcher_;
    CollectorSet collectors_;
    PacingConfig pacing_;
    ExporterStats stats_;
    V5Datagram scratch_;
    double tokens_ = 0;
    std::int64_t last_refill_ = 0; // steady-clock ns
};

} // namespace nflowd
