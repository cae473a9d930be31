#include "nflowd/daemon.hpp"

#include "nflowd/daemon_control.hpp"
#include "nflowd/privileges.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>

#include <csignal>
#include <cstring>
#include <sstream>
#include <system_error>
#include <thread>

namespace nflowd {

namespace {

// Batches a reader drains before looking at the stop flag again; bounds shutdown latency.
constexpr int kBatchesPerWake = 64;
// A reader waiting for packets still wakes this often to beat its heartbeat (the watchdog).
constexpr int kReaderIdleMs = 100;
// On stop, reads that bring no datagram (overruns, EINTR) before the drain gives up.
constexpr int kDrainMisses = 1024;

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
    pc.v5 = V5Params{.boot_time = boot, .engine_id = c.engine_id};
    pc.pacing = c.pacing;
    pc.format = c.format;
    pc.ipv6 = exports_ipv6(c);
    return pc;
}

// Conntrack is opened when something will use it: annotation (on unless --conntrack no) for a
// v9/IPFIX destination, or NAT events. ctnetlink needs CAP_NET_ADMIN: called before the
// privilege drop. A kernel without conntrack (or a refusal) is logged once, and the daemon
// runs without: the statistics say "unavailable".
std::unique_ptr<ConntrackSource> open_conntrack(const Config& c, Logger& log, NatStatus& status) {
    status = NatStatus::off;
    const bool wanted = (c.conntrack && exports_ipv6(c)) || c.natevents || c.natevents_only;
    if (!wanted) return nullptr;
    try {
        auto source = std::make_unique<ConntrackSource>(ConntrackConfig{});
        status = NatStatus::on;
        return source;
    } catch (const std::exception& e) {
        status = NatStatus::unavailable;
        log.log(LogLevel::error,
                std::string("conntrack: ") + e.what() + "; running without NAT annotation");
        return nullptr;
    }
}

// The collectors: the flow destinations, then those of --natevents_destination, which the
// exporter gives the NAT events only (NatExportConfig::event_destinations); at start and at
// every change of destination alike.
CollectorSet open_collectors(const Config& c, const std::vector<Destination>& flows, int sndbuf) {
    std::vector<Destination> all = flows;
    all.insert(all.end(), c.natevents_destinations.begin(), c.natevents_destinations.end());
    return CollectorSet(all, sndbuf);
}

NatExportConfig nat_export_config(const Config& c) {
    NatExportConfig n;
    n.event_destinations = c.natevents_destinations.size();
    n.annotate = c.conntrack;
    n.events = c.natevents || c.natevents_only;
    n.events_only = c.natevents_only;
    n.table.grace = nat_grace(c.table.inactive_timeout);
    return n;
}

std::string join_groups(const std::vector<std::uint16_t>& groups) {
    std::string s;
    for (auto g : groups) s += (s.empty() ? "" : ",") + std::to_string(g);
    return s;
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
            dispatcher.heartbeat().beat();
            const int ready = ::poll(fds, 2, kReaderIdleMs);
            if (ready < 0 && errno != EINTR) break;
            if (ready <= 0) continue;
            if (fds[1].revents) break;
            // The parser's settings and interface MTUs as they are now, not as at the last
            // batch: after an idle spell that may be long ago.
            dispatcher.publish();
            for (int i = 0; i < kBatchesPerWake; ++i) {
                if (source.receive(deliver) == 0) break;
                dispatcher.publish();
            }
            dispatcher.publish();
            snapshot();
        }
        stop(deliver);
    }
    // SIGTERM: every packet queued in the socket when the stop began is accounted, and so is
    // the batch the kernel still holds for qtimeout, which unbinding makes it send now.
    template <class Fn> void stop(Fn& deliver) {
        // First the socket is read empty: a full buffer would drop the held batch and the
        // UNBIND's ACK, and no later sequence number would ever count what was dropped.
        drain(deliver);
        try {
            source.unbind(deliver); // everything up to the ACK; the group sends no more
        } catch (const std::system_error&) {
            // Without CAP_NET_ADMIN (--user) the kernel refuses; the batch then comes on its
            // own within qtimeout, so wait that long (bounded) before the last reads.
            std::this_thread::sleep_for(std::chrono::nanoseconds(held_batch_wait));
        }
        drain(deliver);
        snapshot();
    }
    // Reads until the socket is empty, or until as many bytes as it can hold were read (more
    // can only have been logged after the stop began). Overruns do not end it: the datagrams
    // behind one are still queued.
    template <class Fn> void drain(Fn& deliver) {
        const std::size_t capacity = source.queue_capacity();
        std::size_t read = 0;
        for (int misses = 0; read < capacity && misses < kDrainMisses;) {
            const NflogReceived r = source.receive_batch(deliver);
            if (r.idle) break;
            if (r.bytes == 0) ++misses;
            read += r.bytes;
            dispatcher.publish();
        }
        dispatcher.publish();
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
    : start_(std::move(config)), argv_(std::move(argv)),
      log_("nflowd", start_.log == "syslog", start_.debug), started_(clock_.now()) {
    // First, before any thread: threads inherit the capability sets of the one creating them.
    if (start_.user.empty()) log_.log(LogLevel::notice, restrict_capabilities());
    const sigset_t sigs = daemon_signals();
    ::pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    signal_fd_.reset(::signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK));
    stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!signal_fd_ || !stop_fd_)
        throw std::system_error(errno, std::generic_category(), "signalfd/eventfd");
    auto control = open_daemon_control(start_, log_);
    endpoint_ = std::move(control.endpoint);
    control_ = std::move(control.server);
    open_links();
    bind_sources();
    ControllerParts parts{*pipeline_,
                          *this,
                          log_,
                          clock_,
                          [this](const std::vector<Destination>& d, int sndbuf) {
                              return open_collectors(start_, d, sndbuf);
                          },
                          [this] { return std::optional(control_->stats()); },
                          [this](const SnmpRules& rules) {
                              std::lock_guard lock(links_mutex_);
                              if (links_) links_->set_rules(rules);
                          },
                          [this] {
                              std::lock_guard lock(links_mutex_);
                              return links_ ? std::optional(links_->stats()) : std::nullopt;
                          }};
    controller_ = std::make_unique<Controller>(start_, started_, std::move(parts));
}

// Every group is bound before any thread starts: a refused group stops start-up cleanly.
void Daemon::bind_sources() {
    std::vector<NflogSource> sources;
    for (auto g : start_.groups)
        sources.emplace_back(NflogConfig{g, start_.snaplen, start_.qthreshold, start_.qtimeout,
                                         start_.nlbufsiz, start_.rcvbuf, start_.physdev});
    if (!start_.pidfile.empty()) pidfile_.emplace(start_.pidfile);
    CollectorSet collectors = open_collectors(start_, start_.destinations, start_.sndbuf);
    PipelineConfig pc = pipeline_config(start_, started_);
    auto conntrack = open_conntrack(start_, log_, pc.nat_status);
    // Before the pipeline's threads exist: the capability sets and no_new_privs that
    // drop_privileges changes are the calling thread's, inherited by threads created later.
    if (!start_.user.empty()) log_.log(LogLevel::notice, drop_privileges(start_.user));
    // The feed's thread after the drop: it must not keep any capability.
    if (conntrack)
        pc.conntrack = std::make_shared<ConntrackFeed>(std::move(conntrack), ConntrackConfig{});
    pc.nat = nat_export_config(start_);
    if (links_) pc.links = [names = links_] { return names->table(); };
    if (links_) pc.mtus = links_->mtus();
    pipeline_ = std::make_unique<Pipeline>(std::move(pc), clock_, std::move(collectors));
    for (std::size_t i = 0; i < sources.size(); ++i)
        readers_.push_back(std::make_unique<Reader>(std::move(sources[i]), pipeline_->dispatcher(i),
                                                    held_batch_wait(start_.qtimeout)));
}

// Interface names are a comfort, not a condition: without rtnetlink nflowd still exports,
// with kernel ifindexes and no names (logged).
void Daemon::open_links() {
    try {
        links_ = std::make_shared<LinkNames>(LinkNamesConfig{start_.snmp_rules});
    } catch (const std::exception& e) {
        log_.log(LogLevel::error, std::string("interface names unavailable: ") + e.what());
    }
}

void Daemon::poll_links() {
    std::lock_guard lock(links_mutex_);
    if (!links_) return;
    try {
        // Readable or not: the periodic dump and a dump after an overrun wait for a call.
        links_->receive();
    } catch (const std::system_error& e) {
        log_.log(LogLevel::error, std::string("interface names stopped: ") + e.what());
        links_.reset(); // the exporter keeps the last table it read
    }
}

Daemon::~Daemon() {
    stop_control();
}

void Daemon::log_started() {
    const Config& c = start_;
    log_.log(LogLevel::notice, "started: NFLOG group " + join_groups(c.groups) + ", " +
                                   std::to_string(pipeline_->workers()) +
                                   " workers, exporting to " + option_value(c, "destination"));
    log_.log(LogLevel::info,
             "NFLOG: snaplen " + std::to_string(c.snaplen) + ", qthreshold " +
                 std::to_string(c.qthreshold) + ", qtimeout " + std::to_string(c.qtimeout) +
                 ", nlbufsiz " + std::to_string(c.nlbufsiz) + ", rcvbuf " +
                 std::to_string(c.rcvbuf) + ", physdev " + option_value(c, "physdev"));
    log_.log(LogLevel::info, "cache: hashsize " + option_value(c, "hashsize") + ", maxflows " +
                                 option_value(c, "maxflows") + ", inactive_timeout " +
                                 option_value(c, "inactive_timeout") + " s, active_timeout " +
                                 option_value(c, "active_timeout") + " s");
    const auto nat = pipeline_->stats().nat.status;
    log_.log(LogLevel::info, std::string("NAT: conntrack ") +
                                 (nat == NatStatus::on    ? "on"
                                  : nat == NatStatus::off ? "off"
                                                          : "unavailable") +
                                 ", natevents " + option_value(c, "natevents") +
                                 ", natevents_only " + option_value(c, "natevents_only"));
    for (const auto& col : pipeline_->stats().collectors)
        log_.log(LogLevel::info,
                 "destination " + col.destination + ": sndbuf " + std::to_string(col.sndbuf));
}

int Daemon::run() {
    for (auto& r : readers_) r->thread = std::thread([&r = *r, fd = stop_fd_.get()] { r.run(fd); });
    control_thread_ = std::thread([this] {
        try {
            control_->serve(stop_fd_.get(), *controller_);
        } catch (const std::exception& e) {
            // Capture and export go on; only nflowctl is lost, and the log says so.
            log_.log(LogLevel::error, std::string("control channel stopped: ") + e.what());
        }
    });
    log_started();
    systemd_.ready(watched(),
                   "NFLOG group " + join_groups(start_.groups) + ", exporting to " +
                       option_value(start_, "destination"),
                   steady_time());
    // The one tick of the daemon: a signal, or a second without one.
    for (;;) {
        systemd_.tick(steady_time());
        pollfd p[2] = {{signal_fd_.get(), POLLIN, 0}, {links_ ? links_->fd() : -1, POLLIN, 0}};
        const int ready = ::poll(p, 2, 1000);
        poll_links();
        if (ready <= 0) {
            controller_->tick();
            continue;
        }
        if (p[0].revents != 0 && !handle_signal()) break;
    }
    systemd_.stopping("exporting all flows before exit");
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_fd_.get(), &one, sizeof one);
    // The control thread sees the stop between datagrams, between reply messages and while
    // it waits on a slow reader, so this join lasts at most the handler call in progress
    // (which may be waiting on the pipeline's threads: hence before finish()).
    stop_control();
    for (auto& r : readers_) r->thread.join();
    pipeline_->finish();
    const auto s = pipeline_->stats();
    // Over the whole run, not since `set flush 2`: the line sums up the process.
    std::uint64_t lost_packets = 0;
    for (const auto& r : readers_) {
        lost_packets += r->source.stats().lost_packets;
        if (r->source.unnumbered_overrun())
            log_.log(LogLevel::error, "NFLOG group " + std::to_string(r->source.group()) +
                                          ": an overrun after the last message received; "
                                          "the packets it dropped are not in the count");
    }
    log_.log(LogLevel::notice, "stopped: " + std::to_string(s.exporter.flows) +
                                   " flows exported, " + std::to_string(s.exporter.lost_flows) +
                                   " flows lost, " + std::to_string(lost_packets) +
                                   " packets lost");
    return 0;
}

// Every thread whose progress feeds systemd's watchdog.
std::vector<Watched> Daemon::watched() {
    std::vector<Watched> out;
    for (std::size_t i = 0; i < readers_.size(); ++i)
        out.push_back({"reader of NFLOG group " + std::to_string(start_.groups[i]),
                       &pipeline_->dispatcher(i).heartbeat()});
    for (auto& w : pipeline_->heartbeats()) out.push_back(std::move(w));
    return out;
}

bool Daemon::handle_signal() {
    signalfd_siginfo si{};
    if (::read(signal_fd_.get(), &si, sizeof si) != sizeof si) return true;
    if (si.ssi_signo == SIGHUP) {
        reload();
    } else if (si.ssi_signo == SIGUSR1) {
        std::istringstream text(controller_->stats(ctl::StatsFormat::text));
        for (std::string line; std::getline(text, line);) log_.always(line);
    } else {
        log_.log(LogLevel::notice, std::string("exporting all flows on ") +
                                       ::strsignal(static_cast<int>(si.ssi_signo)));
        return false;
    }
    return true;
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
    controller_->reload(next);
}

void Daemon::stop_control() {
    if (!control_thread_.joinable()) return;
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_fd_.get(), &one, sizeof one);
    control_thread_.join();
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
    for (auto& r : readers_) {
        std::lock_guard lock(r->mutex);
        r->base = r->stats;
    }
}

} // namespace nflowd
