#include "nflowd/daemon.hpp"
#include "nflowd/privileges.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

namespace nflowd {

namespace {

// Batches a reader drains before looking at the stop flag again; bounds shutdown latency.
constexpr int kBatchesPerWake = 64;
// On stop, what is already queued in the socket is still accounted, up to this many batches.
constexpr int kFinalDrainBatches = 4096;

// How long the kernel may still hold a batch: qtimeout (1/100 s) plus a margin, capped so a
// stop never hangs on a huge setting.
Nanos held_batch_wait(std::uint32_t qtimeout_cs) {
    return std::min<Nanos>(Nanos{qtimeout_cs} * 10 * kNanosPerMilli + 20 * kNanosPerMilli,
                           2 * kNanosPerSecond);
}

sigset_t daemon_signals() {
    sigset_t s;
    sigemptyset(&s);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&s, sig);
    return s;
}

PipelineConfig pipeline_config(const Config& c, Nanos boot) {
    PipelineConfig pc;
    pc.workers = c.worker_threads();
    pc.readers = c.groups.size();
    pc.table = c.table;
    pc.aggregation = c.aggregation;
    pc.v5 = V5Params{boot, 0, c.engine_id};
    pc.pacing = c.pacing;
    return pc;
}

bool process_is_nflowd(long pid) {
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    return comm && std::getline(comm, name) && name == "nflowd";
}

} // namespace

struct Daemon::Reader {
    Reader(NflogSource s, Dispatcher& d, Nanos wait_for_held_batch)
        : source(std::move(s)), dispatcher(d), held_batch_wait(wait_for_held_batch) {}

    void run(int stop_fd) {
        auto deliver = [this](std::span<const std::byte> ip, const PacketMeta& meta) {
            dispatcher.dispatch(ip, meta);
        };
        pollfd fds[2] = {{source.fd(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
        for (;;) {
            if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
            if (fds[1].revents) break;
            for (int i = 0; i < kBatchesPerWake; ++i) {
                if (source.receive(deliver) == 0) break;
                dispatcher.publish();
            }
            dispatcher.publish();
            snapshot();
        }
        // SIGTERM: what the kernel already logged is still accounted, including the batch
        // it holds back for qtimeout, which unbinding makes it send now.
        try {
            source.unbind();
        } catch (const std::system_error&) {
            // Without CAP_NET_ADMIN (--user) the kernel refuses; the batch then comes on its
            // own within qtimeout, so wait that long (bounded) before the last reads.
            std::this_thread::sleep_for(std::chrono::nanoseconds(held_batch_wait));
        }
        for (int i = 0; i < kFinalDrainBatches && source.receive(deliver) != 0; ++i)
            dispatcher.publish();
        dispatcher.publish();
        snapshot();
    }
    void snapshot() {
        std::lock_guard lock(mutex);
        stats = source.stats();
    }

    NflogSource source;
    Dispatcher& dispatcher;
    Nanos held_batch_wait;
    std::thread thread;
    mutable std::mutex mutex;
    NflogStats stats;
    NflogStats base; // the zero of `set flush 2`: the source's own counters never go back
};

Daemon::Daemon(Config config, std::vector<std::string> argv)
    : argv_(std::move(argv)), config_(std::move(config)),
      log_("nflowd", config_.log == "syslog", config_.debug), started_(wall_time()) {
    const sigset_t sigs = daemon_signals();
    ::pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    signal_fd_.reset(::signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK));
    stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!signal_fd_ || !stop_fd_)
        throw std::system_error(errno, std::generic_category(), "signalfd/eventfd");
    // The control channel first: a second nflowd with the same --control_id stops here,
    // before it touches the NFLOG groups or the pidfile of the one running.
    open_control();

    // Bind every group before starting threads: a refused group stops start-up cleanly.
    std::vector<NflogSource> sources;
    for (auto g : config_.groups)
        sources.emplace_back(NflogConfig{g, config_.snaplen, config_.qthreshold, config_.qtimeout,
                                         config_.nlbufsiz, config_.rcvbuf});
    write_pidfile();
    pipeline_ = std::make_unique<Pipeline>(pipeline_config(config_, started_), clock_,
                                           CollectorSet(config_.destinations, config_.sndbuf));
    for (std::size_t i = 0; i < sources.size(); ++i)
        readers_.push_back(std::make_unique<Reader>(std::move(sources[i]), pipeline_->dispatcher(i),
                                                    held_batch_wait(config_.qtimeout)));
    if (!config_.user.empty()) log_.log(LogLevel::notice, drop_privileges(config_.user));
}

Daemon::~Daemon() {
    stop_control();
    if (pidfile_written_) ::unlink(config_.pidfile.c_str());
}

void Daemon::write_pidfile() {
    if (config_.pidfile.empty()) return;
    {
        std::ifstream old(config_.pidfile);
        long pid = 0;
        if (old >> pid && pid > 0 && pid != ::getpid() && process_is_nflowd(pid))
            throw std::runtime_error("--pidfile: " + config_.pidfile +
                                     " names a running nflowd (PID " + std::to_string(pid) + ")");
    }
    std::ofstream f(config_.pidfile, std::ios::trunc);
    if (!(f << ::getpid() << "\n"))
        throw std::runtime_error("--pidfile: cannot write " + config_.pidfile);
    pidfile_written_ = true;
}

int Daemon::run() {
    for (auto& r : readers_) r->thread = std::thread([&r = *r, fd = stop_fd_.get()] { r.run(fd); });
    control_thread_ = std::thread([this] { serve_control(); });
    {
        std::ostringstream groups;
        for (auto g : config_.groups) groups << (groups.tellp() ? "," : "") << g;
        log_.log(LogLevel::notice, "started: NFLOG group " + groups.str() + ", " +
                                       std::to_string(pipeline_->workers()) +
                                       " workers, exporting to " + config_.destination_text);
        log_.log(LogLevel::info, "NFLOG: snaplen " + std::to_string(config_.snaplen) +
                                     ", qthreshold " + std::to_string(config_.qthreshold) +
                                     ", qtimeout " + std::to_string(config_.qtimeout) +
                                     ", nlbufsiz " + std::to_string(config_.nlbufsiz) +
                                     ", rcvbuf " + std::to_string(config_.rcvbuf));
        log_.log(LogLevel::info,
                 "cache: hashsize " + option_value(config_, "hashsize") + ", maxflows " +
                     option_value(config_, "maxflows") + ", inactive_timeout " +
                     option_value(config_, "inactive_timeout") + " s, active_timeout " +
                     option_value(config_, "active_timeout") + " s");
        for (const auto& c : pipeline_->stats().collectors)
            log_.log(LogLevel::info,
                     "destination " + c.destination + ": sndbuf " + std::to_string(c.sndbuf));
    }
    last_activity_time_ = steady_time();
    for (int tick = 1;; ++tick) {
        pollfd p{signal_fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 1000) == 0) {
            report_losses();
            if (tick % 10 == 0) report_activity();
            continue;
        }
        signalfd_siginfo si{};
        if (::read(signal_fd_.get(), &si, sizeof si) != sizeof si) continue;
        if (si.ssi_signo == SIGHUP) {
            reload();
        } else if (si.ssi_signo == SIGUSR1) {
            std::istringstream text(stats_text());
            for (std::string line; std::getline(text, line);) log_.always(line);
        } else {
            log_.log(LogLevel::notice, std::string("exporting all flows on ") +
                                           ::strsignal(static_cast<int>(si.ssi_signo)));
            break;
        }
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_fd_.get(), &one, sizeof one);
    for (auto& r : readers_) r->thread.join();
    // Before finish(): a request in progress may still be waiting on the pipeline's threads.
    stop_control();
    pipeline_->finish();
    const auto s = pipeline_->stats();
    log_.log(LogLevel::notice, "stopped: " + std::to_string(s.exporter.flows) +
                                   " flows exported, " + std::to_string(s.exporter.lost_flows) +
                                   " lost");
    return 0;
}

// debug 3: what the last ten seconds carried, for watching a daemon without nflowctl.
void Daemon::report_activity() {
    if (log_.debug() < static_cast<int>(LogLevel::debug)) return;
    const auto s = pipeline_->stats();
    const auto t = s.total();
    const auto now = steady_time();
    const double secs = last_activity_time_ ? double(now - last_activity_time_) / 1e9 : 0;
    if (secs > 0)
        log_.log(LogLevel::debug,
                 "activity: " +
                     std::to_string(static_cast<std::uint64_t>(
                         double(s.parse.packets - last_activity_packets_) / secs)) +
                     " packets/s, " + std::to_string(t.active) + " flows active, " +
                     std::to_string(s.exporter.flows) + " flows exported in " +
                     std::to_string(s.exporter.datagrams) + " datagrams");
    last_activity_time_ = now;
    last_activity_packets_ = s.parse.packets;
}

// Losses are logged as they grow, folded per source so that a dead collector or a flooded
// group writes one line per interval, not one per datagram.
void Daemon::report_losses() {
    const auto s = pipeline_->stats();
    for (const auto& c : s.collectors) {
        const auto errors = c.err_buffer_full + c.err_refused + c.err_other;
        auto& seen = seen_errors_[c.destination];
        if (errors > seen)
            log_.log_limited(LogLevel::error, "dest " + c.destination,
                             "destination " + c.destination + ": " + std::to_string(errors - seen) +
                                 " send errors (refused " + std::to_string(c.err_refused) +
                                 ", buffer full " + std::to_string(c.err_buffer_full) + ", other " +
                                 std::to_string(c.err_other) + " in total)");
        seen = errors;
    }
    for (const auto& g : group_stats()) {
        const auto lost = g.nflog.lost;
        auto& seen = seen_errors_["group " + std::to_string(g.group)];
        if (lost > seen)
            log_.log_limited(LogLevel::error, "group " + std::to_string(g.group),
                             "NFLOG group " + std::to_string(g.group) + ": " +
                                 std::to_string(lost - seen) +
                                 " messages lost by the kernel (raise --rcvbuf, --qthreshold "
                                 "or --threads)");
        seen = lost;
    }
}

void Daemon::reload() {
    Config next;
    try {
        std::vector<const char*> argv;
        for (const auto& a : argv_) argv.push_back(a.c_str());
        next = parse_command_line(static_cast<int>(argv.size()), argv.data()).config;
    } catch (const std::exception& e) {
        log_.log(LogLevel::error, std::string("SIGHUP: configuration not changed: ") + e.what());
        return;
    }
    std::lock_guard lock(config_mutex_);
    for (const auto& o : option_table())
        if (!o.runtime && option_value(next, o.name) != option_value(config_, o.name))
            log_.log(LogLevel::error, "SIGHUP: " + std::string(o.name) +
                                          " changed; it takes effect only after a restart");
    apply(next);
    log_.log(LogLevel::notice, "SIGHUP: configuration re-read");
}

void Daemon::set(const std::vector<std::pair<std::string, std::string>>& changes) {
    std::lock_guard lock(config_mutex_);
    Config next = config_;
    for (const auto& [name, value] : changes) {
        const OptionInfo* option = find_option(name);
        if (option == nullptr) throw ConfigError(canonical_option_name(name), "unknown option");
        if (!option->runtime) throw ConfigError(option->name, "cannot be changed at run time");
        apply_option(next, option->name, value);
    }
    apply(next);
}

// Caller holds config_mutex_. Applies what differs between config_ and next.
void Daemon::apply(const Config& next) {
    const auto changed = [&](std::string_view n) {
        return option_value(next, n) != option_value(config_, n);
    };
    if (changed("destination") || changed("sndbuf")) {
        if (changed("destination"))
            pipeline_->set_collectors(CollectorSet(next.destinations, next.sndbuf));
        else
            pipeline_->set_sndbuf(next.sndbuf);
    }
    if (changed("inactive_timeout") || changed("active_timeout"))
        pipeline_->set_timeouts(next.table.inactive_timeout, next.table.active_timeout);
    if (changed("hashsize")) pipeline_->set_hashsize(next.table.hashsize);
    if (changed("maxflows")) pipeline_->set_maxflows(next.table.maxflows);
    if (changed("aggregation")) pipeline_->set_aggregation(next.aggregation);
    if (changed("engine_id")) pipeline_->set_v5_params(V5Params{started_, 0, next.engine_id});
    if (changed("export_rate")) pipeline_->set_pacing(next.pacing);
    if (changed("debug")) log_.set_debug(next.debug);
    for (const auto& o : option_table())
        if (o.runtime && option_value(next, o.name) != option_value(config_, o.name))
            log_.log(LogLevel::notice, std::string(o.name) + " = " + option_value(next, o.name));
    // Only run-time options move to the live config; the rest wait for a restart.
    Config merged = config_;
    for (const auto& o : option_table())
        if (o.runtime) apply_option(merged, o.name, option_value(next, o.name));
    config_ = std::move(merged);
}

std::string Daemon::get(std::string_view name) const {
    std::lock_guard lock(config_mutex_);
    return option_value(config_, name);
}

void Daemon::flush(int level) {
    pipeline_->flush();
    if (level >= 2) reset_stats();
}

std::vector<GroupStats> Daemon::group_stats() const {
    std::vector<GroupStats> out;
    for (const auto& r : readers_) {
        std::lock_guard lock(r->mutex);
        out.push_back(GroupStats{r->source.group(), stats_since(r->stats, r->base)});
    }
    return out;
}

void Daemon::reset_stats() {
    pipeline_->reset_stats();
    for (auto& r : readers_) {
        std::lock_guard lock(r->mutex);
        r->base = r->stats;
    }
    {
        std::lock_guard lock(sample_mutex_);
        peak_ = 0;
        peak_time_ = 0;
        rates_.reset();
    }
    log_.log(LogLevel::notice, "statistics zeroed");
}

std::string Daemon::stats_text() const {
    return format_stats_text(stats_report());
}

} // namespace nflowd
