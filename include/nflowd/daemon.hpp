// The live daemon as a process: signals, the pidfile, one NFLOG reader thread per group
// feeding the pipeline, the control thread, one tick; the Controller does the rest.
#pragma once

#include "nflowd/config.hpp"
#include "nflowd/control_endpoint.hpp"
#include "nflowd/control_server.hpp"
#include "nflowd/controller.hpp"
#include "nflowd/link_names.hpp"
#include "nflowd/log.hpp"
#include "nflowd/pidfile.hpp"
#include "nflowd/pipeline.hpp"
#include "nflowd/unique_fd.hpp"
#include "nflowd/watchdog.hpp"

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace nflowd {

class Daemon final : private SourceStats {
  public:
    // Blocks the daemon's signals (so every thread inherits the mask), binds the control
    // channel and every group, opens the collectors, drops privileges (--user). Throws with a
    // message naming what failed.
    Daemon(Config config, std::vector<std::string> argv);
    ~Daemon() override;
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Serves until SIGTERM/SIGINT, then exports every flow and returns the exit status.
    int run();

  private:
    struct Reader;
    // SourceStats, for the Controller.
    std::vector<GroupStats> group_stats() const override;
    void reset_stats() override;

    void bind_sources();
    void open_links();
    void poll_links(); // the main thread: when its fd is readable and every second
    void log_started();
    void reload();
    bool handle_signal(); // false: stop
    std::vector<Watched> watched();
    void stop_control();

    // Restart-only settings as started; run-time ones live in the Controller.
    const Config start_;
    const std::vector<std::string> argv_;
    Logger log_;
    // Connected here, before --user drops privileges; READY=1 once every thread runs.
    ServiceNotifier systemd_{log_};
    Clock clock_{Clock::Mode::live};
    const Nanos started_; // flow time (clock_): v5's sysUptime 0
    UniqueFd signal_fd_;
    UniqueFd stop_fd_; // eventfd: readers and the control thread stop when it is readable
    // Bound first: a second nflowd with the same --control_id stops before it touches the
    // groups or the pidfile of the one running. The endpoint file outlives the socket.
    std::unique_ptr<EndpointPublisher> endpoint_;
    // Interface names, null when rtnetlink failed (logged; flows keep kernel ifindexes).
    // Shared with the exporter, which keeps reading the last table if the socket fails. The
    // mutex serializes the owner's calls (receive() here, set_rules() from nflowctl set) and
    // guards the pointer against the main thread's reset.
    std::shared_ptr<LinkNames> links_;
    std::mutex links_mutex_;
    std::unique_ptr<ControlServer> control_;
    std::unique_ptr<Pipeline> pipeline_;
    std::vector<std::unique_ptr<Reader>> readers_;
    std::unique_ptr<Controller> controller_;
    std::thread control_thread_;
    std::optional<Pidfile> pidfile_; // last: removed first, once the control thread stopped
};

} // namespace nflowd
