// The Controller's statistics half: gathering the report, sampling peaks and rates, and the
// loss and activity lines the tick writes to the log.
#include "nflowd/clock.hpp"
#include "nflowd/controller.hpp"

namespace nflowd {

StatsReport Controller::report() const {
    StatsReport r;
    r.version = NFLOWD_VERSION;
    // Both through one wall offset: the uptime is flow time elapsed, whatever the wall
    // clock did since the start.
    const ExportTime t = parts_.clock.export_time();
    r.now = t.wall_now();
    r.started = t.wall(started_);
    {
        std::lock_guard lock(config_mutex_);
        r.protocol = static_cast<unsigned>(config_.format.protocol);
        r.engine_id = config_.engine_id;
        r.active_timeout = config_.table.active_timeout;
        r.inactive_timeout = config_.table.inactive_timeout;
        r.maxflows = config_.table.maxflows;
    }
    r.pipeline = parts_.pipeline.stats();
    r.groups = parts_.sources.group_stats();
    {
        std::lock_guard lock(sample_mutex_);
        r.rates = rates_.rates();
        r.peak = peak_;
        r.peak_time = peak_time_;
    }
    // The pipeline's peak is exact (its shared maxflows budget), the workers' snapshots summed
    // are not (taken at different moments, they can add up past maxflows). Between two ticks
    // the peak may have grown: then it is dated now.
    if (r.pipeline.peak > r.peak) {
        r.peak = r.pipeline.peak;
        r.peak_time = r.now;
    }
    if (parts_.control_stats) r.control = parts_.control_stats();
    if (parts_.link_stats) r.links = parts_.link_stats();
    return r;
}

std::string Controller::stats(ctl::StatsFormat format) {
    return format_stats(report(), format);
}

void Controller::tick() {
    try {
        const auto r = report();
        const auto t = r.pipeline.total();
        const Nanos now = steady_time();
        {
            std::lock_guard lock(sample_mutex_);
            if (r.pipeline.peak > peak_) {
                peak_ = r.pipeline.peak;
                peak_time_ = r.now;
            }
            if (rates_.due(now))
                rates_.sample(now, t.packets + t.dropped_packets, t.octets + t.dropped_octets);
        }
        report_losses(r);
        std::uint64_t ignored = 0;
        for (const auto& g : r.groups) ignored += g.nflog.lost_packets;
        parts_.pipeline.report_ignored_packets(ignored);
        if (++ticks_ % 10 == 0) report_activity(r);
    } catch (const std::exception& e) {
        parts_.log.log_limited(LogLevel::error, "tick",
                               std::string("statistics sampling failed: ") + e.what());
    }
}

// Losses are logged as they grow, folded per source so that a dead collector or a flooded
// group writes one line per interval, not one per datagram.
void Controller::report_losses(const StatsReport& r) {
    for (const auto& c : r.pipeline.collectors) {
        const auto errors = c.err_buffer_full + c.err_refused + c.err_unreachable + c.err_other;
        auto& seen = seen_errors_[c.destination];
        if (errors > seen)
            parts_.log.log_limited(LogLevel::error, "dest " + c.destination,
                                   "destination " + c.destination + ": " +
                                       std::to_string(errors - seen) + " send errors (refused " +
                                       std::to_string(c.err_refused) + ", unreachable " +
                                       std::to_string(c.err_unreachable) + ", buffer full " +
                                       std::to_string(c.err_buffer_full) + ", other " +
                                       std::to_string(c.err_other) + " in total)");
        seen = errors;
    }
    for (const auto& g : r.groups) {
        const auto lost = g.nflog.lost;
        auto& seen = seen_errors_["group " + std::to_string(g.group)];
        if (lost > seen)
            parts_.log.log_limited(LogLevel::error, "group " + std::to_string(g.group),
                                   "NFLOG group " + std::to_string(g.group) + ": " +
                                       std::to_string(lost - seen) +
                                       " messages lost by the kernel (raise --rcvbuf, "
                                       "--qthreshold or --threads)");
        seen = lost;
    }
}

// debug 3: what the last ten seconds carried, for watching a daemon without nflowctl.
void Controller::report_activity(const StatsReport& r) {
    const auto now = steady_time();
    const double secs = last_activity_time_ ? double(now - last_activity_time_) / 1e9 : 0;
    const auto& p = r.pipeline;
    if (secs > 0 && parts_.log.debug() >= static_cast<int>(LogLevel::debug))
        parts_.log.log(LogLevel::debug,
                       "activity: " +
                           std::to_string(static_cast<std::uint64_t>(
                               double(p.parse.packets - last_activity_packets_) / secs)) +
                           " packets/s, " + std::to_string(p.total().active) + " flows active, " +
                           std::to_string(p.exporter.flows) + " flows exported in " +
                           std::to_string(p.exporter.datagrams) + " datagrams");
    last_activity_time_ = now;
    last_activity_packets_ = p.parse.packets;
}

} // namespace nflowd
