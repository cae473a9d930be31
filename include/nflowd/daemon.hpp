// The live daemon: one NFLOG reader thread per group feeding the pipeline, signals, pidfile,
// and run-time reconfiguration shared by SIGHUP and the control channel.
#pragma once

#include "nflowd/config.hpp"
#include "nflowd/log.hpp"
#include "nflowd/nflog_source.hpp"
#include "nflowd/pipeline.hpp"
#include "nflowd/unique_fd.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace nflowd {

struct GroupStats {
    std::uint16_t group = 0;
    NflogStats nflog;
};

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
    void flush();
    std::string stats_text() const;
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
};

} // namespace nflowd
