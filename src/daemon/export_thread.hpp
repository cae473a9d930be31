// The pipeline's exporter thread state (internal to pipeline.cpp): the Exporter, its wake-up
// and mailbox, its published statistics, and the conntrack feed it drains (issue 13).
#pragma once

#include "mailbox.hpp"
#include "nflowd/conntrack_source.hpp"
#include "nflowd/pipeline.hpp"

#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace nflowd {

struct Pipeline::ExportThread {
    static constexpr Nanos kSnapshotEvery = 100 * kNanosPerMilli;

    ExportThread(const PipelineConfig& c, CollectorSet set)
        : exporter(c.v5, std::move(set), c.pacing, c.format, c.links), feed(c.conntrack),
          nat_status(c.nat_status) {
        if (feed) exporter.set_nat(c.nat);
    }

    // Every conntrack event queued so far into the NAT table (and out as NAT event records),
    // then the grace periods that ended, on the flow clock the flows expire on.
    void drain_nat(const ExportTime& now) {
        if (!feed) return;
        feed->drain([&](const NatEvent& ev) { exporter.apply_nat(ev, now); });
        exporter.expire_nat(now.now);
    }

    void snapshot(bool force) {
        const Nanos now = steady_time();
        if (!force && now - last_snapshot < kSnapshotEvery) return;
        last_snapshot = now;
        std::lock_guard lock(stats_mutex);
        stats = exporter.stats();
        collectors = exporter.collectors().stats();
        if (const NatTable* t = exporter.nat_table()) nat.table = stats_since(t->stats(), nat_base);
        if (feed) nat.conntrack = stats_since(feed->stats(), conntrack_base);
    }
    // `set flush 2`: the NAT table's and the conntrack feed's counters read 0 from now on
    // (the table's gauges keep their level); called on the exporter thread.
    void zero_nat_stats() {
        if (const NatTable* t = exporter.nat_table()) nat_base = t->stats();
        if (feed) conntrack_base = feed->stats();
    }
    void copy_stats(PipelineStats& s) const {
        std::lock_guard lock(stats_mutex);
        s.exporter = stats;
        s.collectors = collectors;
        s.nat = nat;
        s.nat.status = nat_status;
    }

    Exporter exporter;
    // Shared with the daemon only to be handed over: this thread alone drains it.
    std::shared_ptr<ConntrackFeed> feed;
    NatStatus nat_status;
    Notifier wake;
    Mailbox mailbox;
    Nanos last_snapshot = 0;
    mutable std::mutex stats_mutex;
    ExporterStats stats;
    std::vector<CollectorStats> collectors;
    NatStats nat;
    NatTableStats nat_base;        // the zero of `set flush 2`
    ConntrackStats conntrack_base; // the feed's counters never go back
    Heartbeat heartbeat;
    std::thread thread;
};

} // namespace nflowd
