// The conntrack thread: reads events as they come (so the socket rarely fills), re-dumps after
// losses, and hands everything in order to the exporter through an SPSC ring.
#include "nflowd/conntrack_source.hpp"

#include "nflowd/clock.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <system_error>

namespace nflowd {

namespace {
// Publishing is one shared store; every so many events, so a long dump is seen as it goes.
constexpr std::size_t kPublishEvery = 256;
constexpr auto kFullRingPause = std::chrono::milliseconds(1);
// After a read that found events, the thread naps this long before it polls again, so that
// a busy NAT (thousands of new connections a second) costs one wake-up, one recv batch and
// one statistics publish per interval instead of per event. The events wait at most this
// long in the socket (32 MiB holds far more); the exporter reads them per batch anyway.
constexpr auto kCoalesce = std::chrono::milliseconds(5);
} // namespace

ConntrackFeed::ConntrackFeed(std::unique_ptr<ConntrackSource> source, const ConntrackConfig& cfg)
    : source_(std::move(source)), cfg_(cfg), ring_(cfg.queue),
      stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!stop_fd_) throw std::system_error(errno, std::generic_category(), "conntrack: eventfd");
    thread_ = std::thread([this] { run(); });
    if (::pthread_getcpuclockid(thread_.native_handle(), &cpu_clock_) != 0) cpu_clock_ = -1;
}

ConntrackFeed::~ConntrackFeed() {
    stop_.store(true, std::memory_order_relaxed);
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(stop_fd_.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
}

std::int64_t ConntrackFeed::thread_cpu_ns() const noexcept {
    timespec ts{};
    if (cpu_clock_ == -1 || ::clock_gettime(cpu_clock_, &ts) != 0) return 0;
    return std::int64_t{ts.tv_sec} * kNanosPerSecond + ts.tv_nsec;
}

void ConntrackFeed::publish_stats() noexcept {
    ConntrackStats s = source_->stats();
    s.queue_waits = queue_waits_;
    published_.store(s);
}

void ConntrackFeed::push(const NatEvent& ev) {
    // A full ring waits for the consumer rather than drop: the socket buffer keeps filling
    // meanwhile, and what it cannot hold the kernel counts exactly (lost_events).
    bool waited = false;
    while (!ring_.try_push(ev)) {
        ring_.publish();
        if (!waited) {
            ++queue_waits_;
            publish_stats(); // a consumer that looks meanwhile sees why nothing comes
        }
        waited = true;
        if (stop_.load(std::memory_order_relaxed)) return;
        std::this_thread::sleep_for(kFullRingPause);
    }
    if (ring_.unpublished() >= kPublishEvery) ring_.publish();
}

int ConntrackFeed::dump_if_due(Nanos& last_dump, bool& redump) {
    constexpr Nanos kNever = INT64_MAX;
    Nanos interval = redump ? cfg_.redump_interval_ns : kNever;
    if (cfg_.resync_interval_ns > 0 && source_->unended() != 0)
        interval = std::min(interval, cfg_.resync_interval_ns);
    if (interval == kNever) return -1;
    const Nanos now = steady_time();
    if (now - last_dump < interval)
        return static_cast<int>(
            std::min<Nanos>((interval - (now - last_dump)) / kNanosPerMilli + 1, INT32_MAX));
    // A refused dump is not retried at once: without CAP_NET_ADMIN it never succeeds.
    source_->dump([this](const NatEvent& ev) { push(ev); });
    last_dump = now;
    redump = false;
    return dump_if_due(last_dump, redump);
}

void ConntrackFeed::run() {
    const auto push = [this](const NatEvent& ev) { this->push(ev); };
    Nanos last_dump = steady_time();
    bool redump = false; // events were lost: the dump says which connections exist
    while (!stop_.load(std::memory_order_relaxed)) {
        const ConntrackReceived got = source_->receive(push);
        if (got.overrun && cfg_.redump_interval_ns > 0) redump = true;
        const int timeout_ms = dump_if_due(last_dump, redump);
        ring_.publish();
        publish_stats();
        if (got.events != 0) std::this_thread::sleep_for(kCoalesce);
        pollfd fds[2] = {{source_->fd(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
        if (::poll(fds, 2, timeout_ms) < 0 && errno != EINTR) break;
    }
}

} // namespace nflowd
