#include "nflowd/exporter.hpp"

#include "nflowd/clock.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <utility>

namespace nflowd {
namespace {

void sleep_ns(std::int64_t ns) noexcept {
    timespec req{static_cast<time_t>(ns / kNanosPerSecond),
                 static_cast<long>(ns % kNanosPerSecond)};
    timespec rem{};
    while (nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
}

double burst_of(const PacingConfig& p) noexcept {
    return std::max<std::uint32_t>(p.burst, 1);
}

} // namespace

Exporter::Exporter(const V5Params& params, CollectorSet collectors, const PacingConfig& pacing)
    : batcher_(params), collectors_(std::move(collectors)), pacing_(pacing),
      tokens_(burst_of(pacing)), last_refill_(steady_time()) {}

void Exporter::add(std::span<const FlowRecord> records, const ExportTime& time) {
    for (const auto& r : records) {
        ++stats_.flows;
        if (batcher_.add(r, time, scratch_)) send(scratch_);
    }
}

void Exporter::tick(const ExportTime& time) {
    if (batcher_.poll(time, scratch_)) send(scratch_);
}

void Exporter::finish(const ExportTime& time) {
    if (batcher_.finish(time, scratch_)) send(scratch_);
}

void Exporter::set_collectors(CollectorSet collectors) {
    collectors.carry_stats_from(collectors_);
    collectors_ = std::move(collectors);
}

void Exporter::reset_stats() noexcept {
    stats_ = {};
    collectors_.reset_stats();
}

void Exporter::send(const V5Datagram& datagram) {
    ++stats_.datagrams;
    pace();
    if (collectors_.send(datagram.view()) == 0) {
        ++stats_.lost_datagrams;
        stats_.lost_flows += datagram.count;
    }
}

// Token bucket: `burst` datagrams go out back to back, then one per 1/rate s. A flush of
// the whole cache (SIGTERM, end of a pcap) is thousands of datagrams; unpaced, it would
// overrun a collector's default ~208 KiB receive buffer in well under a millisecond.
void Exporter::pace() {
    if (pacing_.rate == 0) return;
    const double rate = pacing_.rate;
    const double burst = burst_of(pacing_);
    // Real elapsed time, not the flow clock: during offline replay `now` can jump by hours
    // between two datagrams.
    auto refill = [&] {
        const std::int64_t t = steady_time();
        tokens_ = std::min(burst, tokens_ + static_cast<double>(t - last_refill_) * rate /
                                                static_cast<double>(kNanosPerSecond));
        last_refill_ = t;
    };
    refill();
    while (tokens_ < 1.0) {
        const double wait = (1.0 - tokens_) / rate * static_cast<double>(kNanosPerSecond);
        sleep_ns(std::max<std::int64_t>(static_cast<std::int64_t>(wait), 1000));
        refill();
    }
    tokens_ -= 1.0;
}

} // namespace nflowd
