// Live NAT input: conntrack's NEW/DESTROY events over ctnetlink (libnetfilter_conntrack) and a
// dump of the connections that existed before, as NatEvents for the NAT table and NAT logging.
#pragma once

#include "nflowd/clock.hpp"
#include "nflowd/nat_event.hpp"
#include "nflowd/spsc_ring.hpp"
#include "nflowd/stats_fields.hpp"
#include "nflowd/unique_fd.hpp"

#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

struct nfct_handle;
struct nf_conntrack;

// Error idiom (capture): per event, counters (lost, not NATed, socket errors), never throws;
// opening the sockets throws std::system_error (errno and what failed).
namespace nflowd {

struct ConntrackConfig {
    // Socket receive buffer for the events: each takes about 1 KiB of it, so 32 MiB absorbs a
    // burst of some 30,000 while the reader is busy. <= 0 keeps the system default.
    int rcvbuf = 32 * 1024 * 1024;
    // Events between the feed's thread and its consumer; when full the thread waits, so that
    // what cannot wait is the socket's, lost and counted by the kernel.
    std::size_t queue = 65536;
    // After events were lost, the connections are dumped again (NatTable ends those the dump
    // no longer holds), at most once per this interval; 0 never dumps again.
    std::int64_t redump_interval_ns = 10'000'000'000;
    // With net.netfilter.nf_conntrack_events = 2 (the default of recent kernels) the kernel
    // sends events only for connections made while someone listened: those of the start-up
    // dump end without a DESTROY. Until a dump no longer holds any of them, dump again at
    // this interval (NatTable ends what the dump lacks); 0 never does.
    std::int64_t resync_interval_ns = 60'000'000'000;
};

struct ConntrackStats {
    std::uint64_t events_new = 0;     // NEW events read
    std::uint64_t events_destroy = 0; // DESTROY events read
    std::uint64_t not_nated = 0;      // of those, connections without NAT: skipped
    std::uint64_t dumps = 0;          // dumps of the connection table done
    std::uint64_t dumped = 0;         // NATed connections read from dumps
    std::uint64_t dump_failures = 0;  // dumps the kernel refused (EPERM after --user)
    std::uint64_t enobufs = 0;        // socket overruns reported by recv()
    std::uint64_t lost_events = 0;    // events the kernel could not queue (the socket's drops)
    std::uint64_t queue_waits = 0;    // times the feed waited for its consumer
    std::uint64_t errors = 0;         // other socket or parse errors

    static constexpr auto fields() {
        using F = StatField<ConntrackStats>;
        constexpr auto c = StatKind::counter;
        return std::array{
            F{"events_new", &ConntrackStats::events_new, c, "events", "Conntrack NEW events read"},
            F{"events_destroy", &ConntrackStats::events_destroy, c, "events",
              "Conntrack DESTROY events read"},
            F{"not_nated", &ConntrackStats::not_nated, c, "events",
              "Events of connections without NAT, skipped"},
            F{"dumps", &ConntrackStats::dumps, c, "dumps", "Dumps of the conntrack table"},
            F{"dumped", &ConntrackStats::dumped, c, "connections",
              "NATed connections read from dumps"},
            F{"dump_failures", &ConntrackStats::dump_failures, c, "dumps",
              "Dumps the kernel refused"},
            F{"enobufs", &ConntrackStats::enobufs, c, "overruns",
              "Conntrack event socket overruns (ENOBUFS)"},
            F{"lost_events", &ConntrackStats::lost_events, c, "events",
              "Conntrack events the kernel dropped (socket full)"},
            F{"queue_waits", &ConntrackStats::queue_waits, c, "waits",
              "Times the conntrack thread waited for the exporter"},
            F{"errors", &ConntrackStats::errors, c, "errors", "Conntrack socket or parse errors"},
        };
    }
};

// What one receive did: events read (NATed or not), and whether the socket overran.
struct ConntrackReceived {
    std::size_t events = 0;
    bool overrun = false;
};

namespace detail {
using NatEventFn = void (*)(void* ctx, const NatEvent& ev);
template <class Fn> std::pair<NatEventFn, void*> nat_event_fn(Fn& fn) {
    using F = std::remove_reference_t<Fn>;
    return {[](void* ctx, const NatEvent& ev) { (*static_cast<F*>(ctx))(ev); },
            const_cast<void*>(static_cast<const void*>(std::addressof(fn)))};
}
} // namespace detail

// The sockets, for a thread or poll loop of the caller's. Subscribes first, then dumps (under
// NetAdminScope: ctnetlink needs CAP_NET_ADMIN, so open it before privileges are dropped), so
// that a connection is either in the dump or in an event after it; the dump is delivered by
// the first receive(). Not movable: libnetfilter_conntrack holds its address.
class ConntrackSource {
  public:
    explicit ConntrackSource(const ConntrackConfig& cfg);
    ~ConntrackSource();
    ConntrackSource(const ConntrackSource&) = delete;
    ConntrackSource& operator=(const ConntrackSource&) = delete;

    // Non-blocking event socket to poll for readability.
    int fd() const noexcept;

    // Delivers what the start-up dump left, then reads every event queued now and calls
    // fn(const NatEvent&) for each of a NATed connection. Never throws on socket errors.
    template <class Fn> ConntrackReceived receive(Fn&& fn) {
        const auto [f, ctx] = detail::nat_event_fn(fn);
        return receive(f, ctx);
    }
    // Dumps the table again: fn(dump_begin), fn(create, dumped) per NATed connection,
    // fn(dump_end). False, and no dump_end, when the kernel refused or the dump broke off.
    template <class Fn> bool dump(Fn&& fn) {
        const auto [f, ctx] = detail::nat_event_fn(fn);
        return dump(f, ctx);
    }
    const ConntrackStats& stats() const noexcept { return stats_; }
    // NATed connections of the start-up dump that may still be open and whose end no event
    // will tell (none when nf_conntrack_events is 1): the last dump's count of them.
    std::size_t unended() const noexcept { return unended_.size(); }

  private:
    struct HandleCloser {
        void operator()(nfct_handle* h) const noexcept;
    };
    ConntrackReceived receive(detail::NatEventFn fn, void* ctx);
    bool dump(detail::NatEventFn fn, void* ctx);
    friend struct ConntrackCallbacks; // libnetfilter_conntrack's, in the .cpp
    void read_drops() noexcept;

    std::unique_ptr<nfct_handle, HandleCloser> events_;
    std::unique_ptr<nfct_handle, HandleCloser> query_;
    std::vector<NatEvent> backlog_; // the start-up dump, until the first receive()
    // Keys (tuple_key) of the start-up dump's connections without events, and those of them
    // the dump under way holds.
    std::unordered_set<std::string> unended_;
    std::unordered_set<std::string> still_;
    bool first_dump_ = true;
    // The callback of the receive() or dump() under way, and its receive time.
    detail::NatEventFn fn_ = nullptr;
    void* ctx_ = nullptr;
    TimePair recv_{};
    std::uint32_t drops_seen_ = 0; // the socket's drop counter when last read (it wraps)
    ConntrackStats stats_;
};

// A ConntrackSource read by a thread of its own, which hands the events to one consumer (the
// exporter) through a lock-free ring: the consumer drains it before each batch and applies
// the events to its NatTable with no lock on its per-record path. After lost events the
// thread dumps again (ConntrackConfig::redump_interval_ns). Start it after privileges are
// dropped: capabilities are per thread, and this one must not keep any.
class ConntrackFeed {
  public:
    ConntrackFeed(std::unique_ptr<ConntrackSource> source, const ConntrackConfig& cfg);
    ~ConntrackFeed(); // stops and joins the thread
    ConntrackFeed(const ConntrackFeed&) = delete;
    ConntrackFeed& operator=(const ConntrackFeed&) = delete;

    // Consumer side (one thread): fn(const NatEvent&) for every event queued, in order.
    template <class Fn> std::size_t drain(Fn&& fn) {
        const std::size_t n = ring_.available();
        for (std::size_t i = 0; i < n; ++i) fn(ring_.peek(i));
        ring_.pop(n);
        return n;
    }
    // Any thread: the source's counters as last published (after each wake-up).
    ConntrackStats stats() const noexcept { return published_.load(); }
    // CPU time the thread has used, in nanoseconds (for benchmarks and statistics).
    std::int64_t thread_cpu_ns() const noexcept;

  private:
    void run();
    void push(const NatEvent& ev);
    void publish_stats() noexcept;
    // Dumps when one is due (after losses, or to resync); else the poll timeout until then.
    int dump_if_due(Nanos& last_dump, bool& redump);

    std::unique_ptr<ConntrackSource> source_;
    ConntrackConfig cfg_;
    SpscRing<NatEvent> ring_;
    UniqueFd stop_fd_;
    std::atomic<bool> stop_{false};
    AtomicStats<ConntrackStats> published_;
    std::uint64_t queue_waits_ = 0; // the thread's own, added to the source's when published
    std::thread thread_;
    clockid_t cpu_clock_ = -1; // the thread's CPU-time clock
};

} // namespace nflowd
