// The daemon's control logic, apart from the process: the typed configuration and
// ipt_NETFLOW's knobs over it, all-or-nothing reconfiguration, statistics and the tick.
#pragma once

#include "nflowd/clock.hpp"
#include "nflowd/config.hpp"
#include "nflowd/control_server.hpp"
#include "nflowd/link_names.hpp"
#include "nflowd/log.hpp"
#include "nflowd/pipeline_control.hpp"
#include "nflowd/stats_report.hpp"

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nflowd {

// The NFLOG readers as the Controller sees them: counters per group since the last reset.
class SourceStats {
  public:
    virtual ~SourceStats() = default;
    virtual std::vector<GroupStats> group_stats() const = 0;
    virtual void reset_stats() = 0; // the zero of `flush 2`
};

// What a Controller works on. References must outlive it.
struct ControllerParts {
    PipelineControl& pipeline;
    SourceStats& sources;
    Logger& log;
    // The pipeline's clock: flows carry flow time, reports and dumps show wall time.
    const Clock& clock;
    // Opens a destination list's sockets; throws when one cannot be opened. The only step of
    // a reconfiguration that does I/O, so it runs before anything is changed.
    std::function<CollectorSet(const std::vector<Destination>&, int sndbuf)> open_collectors;
    // The control channel's counters, when there is one.
    std::function<std::optional<ControlServerStats>()> control_stats;
    // The interface names (live only): new snmp_rules for them, and their counters.
    std::function<void(const SnmpRules&)> set_snmp_rules;
    std::function<std::optional<LinkStats>()> link_stats;
};

// Thread safety: every method may be called from any thread; the configuration is guarded
// by one mutex, the sampled peaks/rates by another. Errors: ControlHandler methods throw
// ControlError (nothing changed then); reload() and tick() never throw, they log.
class Controller final : public ControlHandler {
  public:
    // `started`: the daemon's start in flow time (parts.clock), v5's sysUptime 0.
    Controller(Config config, Nanos started, ControllerParts parts);

    // ControlHandler: nflowctl list/get/set/flush/stats/flows.
    std::vector<ctl::KnobValue> knobs() override;
    std::vector<ctl::KnobValue> get(const std::vector<std::string>& names) override;
    std::vector<ctl::KnobValue>
    set(const std::vector<std::pair<std::string, std::string>>& changes) override;
    void flush(int level) override; // 1 export every flow; 2 also zero the statistics
    std::string stats(ctl::StatsFormat format) override;
    FlowDump flows(std::uint32_t top, ctl::FlowSort sort) override;

    // SIGHUP with the re-read configuration: restart-only differences are logged, the
    // run-time ones applied all or nothing.
    void reload(const Config& next);
    // Once a second: peak flows, rates, and loss/activity lines in the log.
    void tick();

    StatsReport report() const;
    Config config() const;

  private:
    void apply(const Config& next); // caller holds config_mutex_; all or nothing
    void reset_stats();
    void report_losses(const StatsReport& r);
    void report_activity(const StatsReport& r);

    ControllerParts parts_;
    const Nanos started_; // flow time
    mutable std::mutex config_mutex_;
    Config config_;

    mutable std::mutex sample_mutex_;
    RateMeter rates_;
    std::uint64_t peak_ = 0;
    Nanos peak_time_ = 0;

    // tick() only.
    unsigned ticks_ = 0;
    std::map<std::string, std::uint64_t> seen_errors_;
    Nanos last_activity_time_ = 0;
    std::uint64_t last_activity_packets_ = 0;
};

} // namespace nflowd
