// The live daemon: one NFLOG reader thread per group feeding the pipeline, signals, pidfile,
// and run-time reconfiguration shared by SIGHUP and the control channel.
#pragma once

#include "nflowd/config.hpp"
#include "nflowd/control_server.hpp"
#include "nflowd/log.hpp"
#include "nflowd/nflog_source.hpp"
#include "nflowd/pipeline.hpp"
#include "nflowd/stats_report.hpp"
#include "nflowd/unique_fd.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace nflowd {

class Daemon {
  public:
    // Blocks the daemon's signals (so every thread inherits the mask), binds every group and
    // opens the collectors. Throws with a message naming what failed.
    Daemon(Config config, std::vector<std::string> argv);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Serves until SIGTERM/SIGINT, then exports every flow and returns the exit status.
    int run();

    // Applies `name = value` changes all or nothing: every value is validated with the
    // command line's rules first; a read-only name or bad value throws ConfigError.
    void set(const std::vector<std::pair<std::string, std::string>>& changes);
    std::string get(std::string_view name) const;
    // 1: export every flow now; 2: also zero the statistics (ipt_NETFLOW's flush=2).
    void flush(int level = 1);
    std::string stats_text() const;
    std::string stats_json() const;
    StatsReport stats_report() const;

    // The control channel's view (daemon_control.cpp): ipt_NETFLOW's sysctl knobs.
    std::vector<ctl::KnobValue> knobs() const;
    // set() for knob names, plus `flush`; throws ControlError (nothing changed then).
    std::vector<ctl::KnobValue>
    set_knobs(const std::vector<std::pair<std::string, std::string>>& changes);
    FlowDump flow_dump(std::uint32_t top, ctl::FlowSort sort);
    // Peak flows and rates; the control thread calls it every second.
    void sample();
    std::vector<GroupStats> group_stats() const;
    PipelineStats pipeline_stats() const { return pipeline_->stats(); }
    Nanos started() const noexcept { return started_; }
    Logger& logger() noexcept { return log_; }

  private:
    struct Reader;
    void reload();
    void apply(const Config& next);
    void write_pidfile();
    void report_losses();
    void report_activity();
    void open_control(); // daemon_control.cpp
    void serve_control();
    void reset_stats();
    void stop_control();

    std::vector<std::string> argv_;
    mutable std::mutex config_mutex_; // serialises SIGHUP and control requests
    Config config_;
    Logger log_;
    Nanos started_;
    Clock clock_{Clock::Mode::wall};
    UniqueFd signal_fd_;
    UniqueFd stop_fd_; // eventfd: readers stop when it is readable
    std::unique_ptr<Pipeline> pipeline_;
    std::vector<std::unique_ptr<Reader>> readers_;
    bool pidfile_written_ = false;
    std::map<std::string, std::uint64_t> seen_errors_; // main thread only
    Nanos last_activity_time_ = 0;                     // main thread only
    std::uint64_t last_activity_packets_ = 0;

    // Sampled by the control thread (sample()), read by stats.
    mutable std::mutex sample_mutex_;
    RateMeter rates_;
    std::uint64_t peak_ = 0;
    Nanos peak_time_ = 0;

    // Declared last: the server calls the handler, which calls everything above.
    std::unique_ptr<ControlHandler> control_handler_;
    std::unique_ptr<ControlServer> control_;
    std::thread control_thread_;
};

} // namespace nflowd
