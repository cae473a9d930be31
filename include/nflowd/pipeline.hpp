// The threaded engine shared by live capture and `--read`: readers parse and hand packets to
// flow-cache workers by flow hash, workers expire flows to one exporter thread.
#pragma once

#include "nflowd/aggregation.hpp"
#include "nflowd/clock.hpp"
#include "nflowd/collector_set.hpp"
#include "nflowd/conntrack_source.hpp"
#include "nflowd/exporter.hpp"
#include "nflowd/flow_shard.hpp"
#include "nflowd/flow_table.hpp"
#include "nflowd/header_parser.hpp"
#include "nflowd/link_mtu.hpp"
#include "nflowd/notifier.hpp"
#include "nflowd/pipeline_control.hpp"
#include "nflowd/sampler.hpp"
#include "nflowd/spsc_ring.hpp"
#include "nflowd/watchdog.hpp"

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace nflowd {

// Whether flow records get NAT annotation: off (--conntrack no, v5, --read), on, or wanted
// but conntrack could not be opened (no module, no permission).
enum class NatStatus : std::uint8_t { off, on, unavailable };

struct PipelineConfig {
    std::size_t workers = 1;
    std::size_t readers = 1;
    // Totals for the whole daemon: hashsize is split over the workers, maxflows is one limit
    // for all of them (a FlowBudget they share), as ipt_NETFLOW's.
    FlowTableConfig table;
    Aggregation aggregation;
    V5Params v5;
    PacingConfig pacing;
    ExportFormat format;
    LinkSource links; // interface names for the exporter (live only), see Exporter
    // Interface MTUs the readers take per batch for `oversize` (live only; null: 1500 each).
    std::shared_ptr<const MtuFeed> mtus;
    std::size_t ring_capacity = 1 << 15; // packets per reader->worker ring, per family
    // Account IPv6 packets (the protocol can export them: v9, IPFIX). Off, as NetFlow v5
    // needs, they are only counted (ipv6_skipped).
    bool ipv6 = false;
    // NAT (issue 13): the live conntrack input the exporter thread drains (null: none), what
    // it does with it, and why it is there or not (for the statistics).
    std::shared_ptr<ConntrackFeed> conntrack;
    NatExportConfig nat;
    NatStatus nat_status = NatStatus::off;
};

// A worker's own levels beside its flow table's counters; its fields are only those levels
// (summing WorkerStats adds them, the tables are summed by PipelineStats::total()).
struct WorkerStats {
    FlowTableStats table;
    std::uint64_t memory_bytes = 0;
    std::uint64_t hashsize = 0;

    static constexpr auto fields() {
        using F = StatField<WorkerStats>;
        return std::array{
            F{"hashsize", &WorkerStats::hashsize, StatKind::gauge, "buckets", "Hash buckets"},
            F{"memory_bytes", &WorkerStats::memory_bytes, StatKind::gauge, "bytes",
              "Memory held by the flow cache"},
        };
    }
};

struct NatStats {
    NatStatus status = NatStatus::off;
    ConntrackStats conntrack;
    NatTableStats table;
};

struct PipelineStats {
    ParseStats parse;                 // all readers
    std::vector<WorkerStats> workers; // one per worker
    ExporterStats exporter;
    std::vector<CollectorStats> collectors;
    NatStats nat;
    FlowTableStats total() const { // workers summed (peak = sum of peaks)
        FlowTableStats t;
        for (const auto& w : workers) t += w.table;
        return t;
    }
    // Most flows held at once by all workers together, since start or the last zeroing (the
    // shared maxflows budget's high-water mark; never above maxflows, unlike total().peak).
    std::uint64_t peak = 0;
};

class Pipeline;

// The reader-side stage: one per reader thread, used only by that thread.
class Dispatcher {
  public:
    // Only a Pipeline makes dispatchers; the key keeps the constructor usable by make_unique.
    class Key {
        friend class Pipeline;
        Key() = default;
    };
    Dispatcher(Key, Pipeline& pipeline, std::size_t index);

    // Parses, aggregates and queues one packet for its worker. Never throws.
    void dispatch(std::span<const std::byte> bytes, const PacketMeta& meta) noexcept;
    // Ends a batch: makes queued packets visible and wakes sleeping workers.
    void publish() noexcept;
    // The reader thread's, for the watchdog: its loop beats, and so does a wait on a full ring.
    Heartbeat& heartbeat() noexcept { return heartbeat_; }

  private:
    friend class Pipeline;
    // Aggregates one packet of either family and queues it for its worker.
    template <class Packet> void route(Packet& packet) noexcept;
    template <class Packet> void push(std::size_t worker, const Packet& packet) noexcept;
    void publish_stats() noexcept;
    void take_mtus() noexcept; // a new MTU table for parser_, if one was published

    Pipeline& pipeline_;
    std::size_t index_;
    const ShardKey shard_key_; // the pipeline's, copied next to what the packet path reads
    HeaderParser parser_;
    ParsedPacket parsed_;   // reused: the parser fills every field it reports
    PacketSampler sampler_; // --sampler hash:N, with the pipeline's secret
    std::shared_ptr<const Aggregation> aggregation_;
    std::uint64_t aggregation_version_ = 0;
    std::uint64_t mtus_seen_ = 0; // the MtuFeed version parser_ holds
    Nanos batch_max_time_ = 0;
    // Per worker: packets published since it was last woken, and when the first of them was.
    std::vector<std::size_t> unwoken_;
    std::vector<Nanos> unwoken_since_;
    // The parser's counters as other threads may read them; written once per batch.
    AtomicStats<ParseStats> published_;
    Heartbeat heartbeat_;
};

class Pipeline final : public PipelineControl {
  public:
    Pipeline(PipelineConfig config, Clock& clock, CollectorSet collectors);
    ~Pipeline() override;
    Pipeline(const Pipeline&) = delete;
    Pipeline& operator=(const Pipeline&) = delete;

    Dispatcher& dispatcher(std::size_t reader) { return *dispatchers_.at(reader); }

    // Call once every reader has stopped: drains the queues, exports every flow and the
    // last partial datagram, and joins all threads. Idempotent.
    void finish();

    // Run-time changes. Each is applied by the owning thread between batches; the call
    // returns once every worker has applied it.
    void set_timeouts(Nanos inactive, Nanos active) override;
    void set_hashsize(std::size_t total_buckets) override;
    void set_maxflows(std::size_t total) override;
    void set_aggregation(Aggregation aggregation) override;
    void set_collectors(CollectorSet collectors) override;
    void set_v5_params(const V5Params& params) override;
    void set_sndbuf(int sndbuf) override;
    void set_pacing(const PacingConfig& pacing) override;
    // Flows expired before the change leave in the format they were expired for: set_ipv6
    // (false) hands the IPv6 ones over just before a switch to v5.
    void set_export_format(const ExportFormat& format) override {
        hash_interval_.store(PacketSampler::interval_of(format.sampler));
        on_exporter([&](Exporter& e) {
            drain_outputs(clock_.export_time());
            e.set_format(format);
        });
    }
    void send_templates() override {
        on_exporter([](Exporter& e) { e.send_templates(); });
    }
    void report_ignored_packets(std::uint64_t packets) noexcept override {
        ignored_packets_.store(packets, std::memory_order_relaxed);
    }
    // Whether readers account IPv6 packets from their next batch on (PipelineConfig::ipv6),
    // and flows keep their link layer (MACs, VLAN: v9/IPFIX too). Turning it off also exports
    // every IPv6 flow (forced) through each worker's mailbox, so call it before the exporter
    // stops carrying IPv6 (switching to v5), after it starts.
    void set_ipv6(bool accept) override;
    void flush() override; // export every active flow now
    FlowSelection select_flows(std::size_t top, FlowRank rank) override;
    // Zeroes every counter stats() reports (`set flush 2`); active flows and their peak
    // restart from the table's content.
    void reset_stats() override;

    PipelineStats stats() const override;
    std::size_t workers() const noexcept { return workers_.size(); }
    // The worker a flow (after aggregation) is accounted by, for tests that need to know.
    std::size_t worker_of(const FlowKey& key) const noexcept;
    std::size_t worker_of(const FlowKey6& key) const noexcept;
    // The workers' and the exporter's, for the watchdog (the readers' are their dispatchers').
    std::vector<Watched> heartbeats() const;

  private:
    friend class Dispatcher;
    friend struct PipelineTestAccess; // tests: on_workers with commands that stall or throw
    struct Worker;
    struct ExportThread;

    void run_worker(Worker& w);
    void push_expired(Worker& w);
    // Every flow of both tables (or the IPv6 one), in bounded pieces.
    void flush_worker(Worker& w, bool ipv6_only);
    void run_exporter();
    // Hands the exporter every record waiting in the workers' rings (exporter thread only).
    std::size_t drain_outputs(const ExportTime& now);
    void on_workers(const std::function<void(Worker&)>& fn);
    void on_exporter(const std::function<void(Exporter&)>& fn);
    std::shared_ptr<const Aggregation> aggregation(std::uint64_t& version) const;
    ParseStats parse_totals() const; // every dispatcher's published counters, no base

    PipelineConfig config_;
    Clock& clock_;
    // Picks a flow's worker (shard_hash): drawn once, shared by every reader so that a flow
    // seen by two NFLOG groups meets one shard; each worker's table has a bucket key of its own.
    const ShardKey shard_key_ = random_shard_key();
    // The hash sampler's secret, one for every reader (PacketSampler), and its N (0: none),
    // which the readers copy per batch.
    const HashKey sample_key_ = random_hash_key();
    std::atomic<std::uint32_t> hash_interval_{PacketSampler::interval_of(config_.format.sampler)};
    // The maxflows limit and live-flow count of all workers; declared before them, it
    // outlives their tables.
    FlowBudget budget_{config_.table.maxflows};
    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<std::unique_ptr<Dispatcher>> dispatchers_;
    std::unique_ptr<ExportThread> export_;

    mutable std::mutex aggregation_mutex_;
    std::shared_ptr<const Aggregation> aggregation_current_;
    std::atomic<std::uint64_t> aggregation_version_{0};
    std::atomic<bool> accept_ipv6_{false}; // readers copy it into their parsers per batch

    // Parse counters belong to the reader threads; zeroing them records a base instead.
    mutable std::mutex parse_base_mutex_;
    ParseStats parse_base_;

    std::atomic<bool> readers_done_{false};
    std::atomic<bool> threads_running_{false};
    std::atomic<std::size_t> workers_running_{0};
    std::atomic<std::uint64_t> ignored_packets_{0}; // report_ignored_packets, for the exporter
    bool finished_ = false;
};

} // namespace nflowd
