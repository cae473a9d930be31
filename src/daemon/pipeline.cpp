#include "nflowd/pipeline.hpp"

#include "export_thread.hpp"
#include "mailbox.hpp"

#include <algorithm>
#include <exception>
#include <future>
#include <utility>

namespace nflowd {
namespace {

constexpr Nanos kIdleWait = 100 * kNanosPerMilli;
constexpr Nanos kSnapshotEvery = 100 * kNanosPerMilli;
constexpr std::size_t kOutputRing = 1 << 16;
// Bounded chunks let a reader refill a ring while its worker is still busy with it.
constexpr std::size_t kChunk = 1024;
constexpr std::size_t kWakeBatch = 1024;
constexpr Nanos kWakeDelay = 2 * kNanosPerMilli;
// Flows flushed per step: a big cache's records never sit all at once beside its entries.
constexpr std::size_t kFlushChunk = 4096;
// The exporter reads the clock again after this many records (about half a v5 datagram).
constexpr std::size_t kRecordsPerTimeRead = 16;

// Buckets are split over the shards; maxflows is not, the workers share one FlowBudget.
FlowTableConfig shard_config(const FlowTableConfig& total, std::size_t shards) {
    FlowTableConfig c = total;
    c.hashsize = std::max(kMinHashsize, total.hashsize / shards);
    return c;
}

// Lemire's multiply-shift: an unbiased pick in [0, n) without a division per packet.
std::size_t pick(std::uint64_t hash, std::size_t n) noexcept {
    return static_cast<std::size_t>(((hash >> 32) * n) >> 32);
}

template <class Key>
std::size_t shard_of(const ShardKey& shard_key, const Key& key, std::size_t n) noexcept {
    return n == 1 ? 0 : pick(shard_hash(shard_key, key), n);
}

} // namespace

struct Pipeline::Worker {
    Worker(const FlowTableConfig& config, FlowBudget& budget, std::size_t readers, std::size_t ring)
        : table(config, budget), output(kOutputRing) {
        for (std::size_t i = 0; i < readers; ++i) {
            inputs.push_back(std::make_unique<SpscRing<PacketInfo>>(ring));
            inputs6.push_back(std::make_unique<SpscRing<PacketInfo6>>(ring));
        }
        expired.reserve(kFlushChunk);
    }

    SpscRing<PacketInfo>& input(std::size_t reader, const PacketInfo&) { return *inputs[reader]; }
    SpscRing<PacketInfo6>& input(std::size_t reader, const PacketInfo6&) {
        return *inputs6[reader];
    }
    bool has_input() {
        const auto busy = [](auto& r) { return !r->empty(); };
        return std::any_of(inputs.begin(), inputs.end(), busy) ||
               std::any_of(inputs6.begin(), inputs6.end(), busy);
    }
    // Accounts up to kChunk packets of each of the rings; returns how many.
    template <class Packet>
    std::size_t drain(std::vector<std::unique_ptr<SpscRing<Packet>>>& rings) {
        std::size_t n = 0;
        for (auto& in : rings) {
            const std::size_t avail = std::min(in->available(), kChunk);
            for (std::size_t i = 0; i < avail; ++i) {
                const Packet& p = in->peek(i);
                table.add(p, expired);
                last_packet_time = std::max(last_packet_time, p.time);
            }
            if (avail) in->pop(avail);
            n += avail;
        }
        return n;
    }
    void snapshot(bool force) {
        const Nanos now = steady_time();
        if (!force && now - last_snapshot < kSnapshotEvery) return;
        last_snapshot = now;
        std::lock_guard lock(stats_mutex);
        stats.table = table.stats();
        stats.memory_bytes = table.memory_bytes();
        stats.hashsize = table.config().hashsize;
    }

    FlowShard table;                                             // IPv4 and IPv6 flows
    std::vector<std::unique_ptr<SpscRing<PacketInfo>>> inputs;   // one per reader
    std::vector<std::unique_ptr<SpscRing<PacketInfo6>>> inputs6; // one per reader
    SpscRing<FlowRecord> output;
    Notifier wake;
    Mailbox mailbox;
    std::vector<FlowRecord> expired;
    Nanos last_packet_time = 0;
    Nanos last_snapshot = 0;
    mutable std::mutex stats_mutex;
    WorkerStats stats;
    Heartbeat heartbeat;
    std::thread thread;
};

// ---- reader side ----

Dispatcher::Dispatcher(Key, Pipeline& pipeline, std::size_t index)
    : pipeline_(pipeline), index_(index), shard_key_(pipeline.shard_key_),
      sampler_(pipeline.sample_key_), unwoken_(pipeline.workers_.size(), 0),
      unwoken_since_(pipeline.workers_.size(), 0) {
    aggregation_ = pipeline.aggregation(aggregation_version_);
    parser_.set_ipv6(pipeline.accept_ipv6_.load(std::memory_order_relaxed));
    sampler_.set_interval(pipeline.hash_interval_.load(std::memory_order_relaxed));
    take_mtus();
}

void Dispatcher::dispatch(std::span<const std::byte> bytes, const PacketMeta& meta) noexcept {
    if (!is_accounted(parser_.parse(bytes, meta, parsed_))) return;
    if (parsed_.family == Family::ipv4)
        route(parsed_.v4);
    else
        route(parsed_.v6);
}

template <class Packet> void Dispatcher::route(Packet& packet) noexcept {
    if (!aggregation_->empty()) aggregation_->apply(packet);
    if (!sampler_.keep(packet.key)) return; // the flow of the aggregated key, as cached
    push(shard_of(shard_key_, packet.key, pipeline_.workers_.size()), packet);
    batch_max_time_ = std::max(batch_max_time_, packet.time);
}

template <class Packet> void Dispatcher::push(std::size_t worker, const Packet& packet) noexcept {
    auto& w = *pipeline_.workers_[worker];
    auto& ring = w.input(index_, packet);
    while (!ring.try_push(packet)) {
        // Back-pressure: live, the kernel then drops and the sequence numbers count it.
        ring.publish();
        w.wake.notify();
        heartbeat_.beat(); // waiting on a worker that has a heartbeat of its own
        std::this_thread::yield();
    }
}

void Dispatcher::publish() noexcept {
    const Nanos now = steady_time();
    for (std::size_t i = 0; i < pipeline_.workers_.size(); ++i) {
        auto& w = *pipeline_.workers_[i];
        auto& ring = *w.inputs[index_];
        auto& ring6 = *w.inputs6[index_];
        if (const auto n = ring.unpublished() + ring6.unpublished()) {
            ring.publish();
            ring6.publish();
            if (unwoken_[i] == 0) unwoken_since_[i] = now;
            unwoken_[i] += n;
        }
        // A sleeping worker is woken for a real batch, not for every recv: each wake-up
        // costs two context switches. A few packets wait at most kWakeDelay (or until the
        // worker's own idle timer), which no flow timeout can notice.
        if (unwoken_[i] >= kWakeBatch || (unwoken_[i] && now - unwoken_since_[i] >= kWakeDelay)) {
            w.wake.notify();
            unwoken_[i] = 0;
        }
    }
    // Only after the packets are visible may replay time move on (see run_worker).
    if (pipeline_.clock_.mode() == Clock::Mode::packets) pipeline_.clock_.advance(batch_max_time_);
    publish_stats();
    if (pipeline_.aggregation_version_.load(std::memory_order_acquire) != aggregation_version_)
        aggregation_ = pipeline_.aggregation(aggregation_version_);
    parser_.set_ipv6(pipeline_.accept_ipv6_.load(std::memory_order_relaxed));
    sampler_.set_interval(pipeline_.hash_interval_.load(std::memory_order_relaxed));
    take_mtus();
}

void Dispatcher::take_mtus() noexcept {
    if (!pipeline_.config_.mtus) return;
    if (auto m = pipeline_.config_.mtus->since(mtus_seen_)) parser_.set_mtus(std::move(m));
}

void Dispatcher::publish_stats() noexcept {
    ParseStats s = parser_.stats();
    s.sampled_out = sampler_.sampled_out();
    published_.store(s);
}

// ---- pipeline ----

Pipeline::Pipeline(PipelineConfig config, Clock& clock, CollectorSet collectors)
    : config_(std::move(config)), clock_(clock), accept_ipv6_(config_.ipv6) {
    config_.workers = std::max<std::size_t>(1, config_.workers);
    config_.readers = std::max<std::size_t>(1, config_.readers);
    aggregation_current_ = std::make_shared<const Aggregation>(config_.aggregation);
    const auto shard = shard_config(config_.table, config_.workers);
    for (std::size_t i = 0; i < config_.workers; ++i)
        workers_.push_back(
            std::make_unique<Worker>(shard, budget_, config_.readers, config_.ring_capacity));
    for (auto& w : workers_) w->table.set_link(config_.ipv6);
    for (std::size_t i = 0; i < config_.readers; ++i)
        dispatchers_.push_back(std::make_unique<Dispatcher>(Dispatcher::Key{}, *this, i));
    export_ = std::make_unique<ExportThread>(config_, std::move(collectors));

    threads_running_ = true;
    workers_running_ = workers_.size();
    for (auto& w : workers_) w->thread = std::thread([this, &w = *w] { run_worker(w); });
    export_->thread = std::thread([this] { run_exporter(); });
}

Pipeline::~Pipeline() {
    finish();
}

void Pipeline::finish() {
    if (finished_) return;
    finished_ = true;
    for (auto& d : dispatchers_) d->publish();
    readers_done_.store(true, std::memory_order_seq_cst);
    for (auto& w : workers_) w->wake.wake();
    for (auto& w : workers_) w->thread.join();
    export_->thread.join();
    threads_running_ = false;
}

void Pipeline::push_expired(Worker& w) {
    for (const auto& rec : w.expired) {
        while (!w.output.try_push(rec)) {
            w.output.publish();
            export_->wake.notify();
            w.heartbeat.beat(); // waiting on the exporter, which has a heartbeat of its own
            std::this_thread::yield();
        }
    }
    w.expired.clear();
    w.output.publish();
    export_->wake.notify();
}

void Pipeline::run_worker(Worker& w) {
    const bool replay = clock_.mode() == Clock::Mode::packets;
    for (;;) {
        w.heartbeat.beat();
        // Read replay time before looking at the rings: if they are then empty, every packet
        // up to that time has been accounted and expiring at it cannot split a flow.
        const Nanos clock_before = clock_.now();
        const std::size_t n = w.drain(w.inputs) + w.drain(w.inputs6);
        // Commands after the drain, so that "flush" covers what was published before it.
        w.mailbox.run();
        const Nanos now = !replay ? clock_.now() : n == 0 ? clock_before : w.last_packet_time;
        w.table.expire(now, w.expired);
        if (!w.expired.empty()) push_expired(w);
        w.snapshot(false);
        if (n != 0) continue;
        if (readers_done_.load(std::memory_order_seq_cst) && !w.has_input()) break;
        w.wake.wait(
            [&] {
                return w.has_input() || w.mailbox.pending.load() ||
                       readers_done_.load(std::memory_order_seq_cst);
            },
            kIdleWait);
    }
    w.mailbox.run();
    flush_worker(w, false);
    workers_running_.fetch_sub(1, std::memory_order_seq_cst);
    export_->wake.wake();
}

void Pipeline::flush_worker(Worker& w, bool ipv6_only) {
    const auto some = [&w, ipv6_only] {
        return ipv6_only ? w.table.ipv6().flush_some(w.expired, kFlushChunk)
                         : w.table.flush_some(w.expired, kFlushChunk);
    };
    while (some() != 0) push_expired(w);
    push_expired(w);
    w.snapshot(true); // stats read right after show the emptied cache
}

void Pipeline::run_exporter() {
    auto& x = *export_;
    const auto has_output = [this] {
        return std::any_of(workers_.begin(), workers_.end(),
                           [](auto& w) { return !w->output.empty(); });
    };
    for (;;) {
        x.heartbeat.beat();
        x.mailbox.run();
        const bool last_round = workers_running_.load(std::memory_order_seq_cst) == 0;
        // Flow time drives the 1 s partial-datagram wait; the wall offset only dates headers.
        const ExportTime now = clock_.export_time();
        x.drain_nat(now); // before the batch: its flows find the connections made meanwhile
        const std::size_t n = drain_outputs(now);
        x.exporter.set_ignored_packets(ignored_packets_.load(std::memory_order_relaxed));
        x.exporter.tick(now);
        x.snapshot(false);
        if (n != 0) continue;
        if (last_round && !has_output()) break;
        x.wake.wait(
            [&] {
                return has_output() || x.mailbox.pending.load() ||
                       workers_running_.load(std::memory_order_seq_cst) == 0;
            },
            kIdleWait);
    }
    x.mailbox.run();
    x.exporter.finish(clock_.export_time());
    x.snapshot(true);
}

std::size_t Pipeline::drain_outputs(const ExportTime& now) {
    auto& x = *export_;
    std::size_t n = 0;
    ExportTime time = now;
    for (auto& w : workers_) {
        const std::size_t avail = w->output.available();
        // A beat per record: pacing may hold one pass of this loop for many seconds (49 s for a
        // full ring at the lowest export_rate), so the time is read again every few records: a
        // header gives the wall offset and sysUptime (>= every Last) of when it was built.
        for (std::size_t i = 0; i < avail; ++i, x.heartbeat.beat()) {
            if (++n % kRecordsPerTimeRead == 0) time = clock_.export_time();
            x.exporter.add({&w->output.peek(i), 1}, time);
        }
        if (avail) w->output.pop(avail);
    }
    return n;
}

void Pipeline::on_workers(const std::function<void(Worker&)>& fn) {
    if (!threads_running_) {
        for (auto& w : workers_) fn(*w);
        return;
    }
    // Every posted task refers to `fn` and to the caller's frame: all of them must have run
    // before this returns, even when one throws (bad_alloc in a rehash or a dump).
    std::vector<std::future<void>> done;
    std::exception_ptr first;
    try {
        for (auto& w : workers_) done.push_back(post(w->mailbox, w->wake, *w, fn));
    } catch (...) {
        first = std::current_exception();
    }
    for (auto& d : done) {
        try {
            d.get();
        } catch (...) {
            if (!first) first = std::current_exception();
        }
    }
    if (first) std::rethrow_exception(first);
}

void Pipeline::on_exporter(const std::function<void(Exporter&)>& fn) {
    if (!threads_running_) {
        fn(export_->exporter);
        export_->snapshot(true);
        return;
    }
    post(export_->mailbox, export_->wake, export_->exporter, fn).get();
}

std::shared_ptr<const Aggregation> Pipeline::aggregation(std::uint64_t& version) const {
    std::lock_guard lock(aggregation_mutex_);
    version = aggregation_version_.load(std::memory_order_relaxed);
    return aggregation_current_;
}

void Pipeline::set_timeouts(Nanos inactive, Nanos active) {
    config_.table.inactive_timeout = inactive;
    config_.table.active_timeout = active;
    on_workers([&](Worker& w) { w.table.set_timeouts(inactive, active); });
    // The NAT grace follows: flows the longer timeout exports later still find their NAT.
    config_.nat.table.grace = nat_grace(inactive);
    if (export_->feed) on_exporter([&](Exporter& e) { e.set_nat_grace(config_.nat.table.grace); });
}

void Pipeline::set_hashsize(std::size_t total_buckets) {
    config_.table.hashsize = total_buckets;
    const auto shard = shard_config(config_.table, workers_.size());
    on_workers([&](Worker& w) {
        w.table.set_hashsize(shard.hashsize);
        w.snapshot(true);
    });
}

// The limit lives in the shared budget: one store would do, but going through every worker
// keeps the contract that the call returns once each of them admits by the new limit.
void Pipeline::set_maxflows(std::size_t total) {
    config_.table.maxflows = total;
    budget_.set_limit(total);
    on_workers([](Worker&) {});
}

void Pipeline::set_aggregation(Aggregation aggregation) {
    auto next = std::make_shared<const Aggregation>(std::move(aggregation));
    std::lock_guard lock(aggregation_mutex_);
    aggregation_current_ = std::move(next);
    aggregation_version_.fetch_add(1, std::memory_order_release);
}

// The exporter snapshots its counters only every 100 ms; these force one so that stats
// read right after a change show it.
void Pipeline::set_collectors(CollectorSet collectors) {
    on_exporter([&](Exporter& e) {
        drain_outputs(clock_.export_time()); // expired flows go where they were bound
        e.set_collectors(std::move(collectors));
        export_->snapshot(true);
    });
}

void Pipeline::set_v5_params(const V5Params& params) {
    on_exporter([&](Exporter& e) { e.set_params(params); });
}

void Pipeline::set_sndbuf(int sndbuf) {
    on_exporter([&](Exporter& e) {
        e.collectors().set_sndbuf(sndbuf);
        export_->snapshot(true);
    });
}

void Pipeline::set_pacing(const PacingConfig& pacing) {
    on_exporter([&](Exporter& e) { e.set_pacing(pacing); });
}

void Pipeline::set_ipv6(bool accept) {
    config_.ipv6 = accept;
    accept_ipv6_.store(accept, std::memory_order_relaxed);
    on_workers([this, accept](Worker& w) {
        if (!accept) flush_worker(w, true);
        w.table.set_link(accept);
    });
}

void Pipeline::flush() {
    on_workers([this](Worker& w) { flush_worker(w, false); });
}

FlowSelection Pipeline::select_flows(std::size_t top, FlowRank rank) {
    std::mutex m;
    FlowSelection out;
    on_workers([&](Worker& w) {
        auto mine = w.table.top(top, rank);
        std::lock_guard lock(m);
        out.total += w.table.size();
        out.flows.insert(out.flows.end(), mine.begin(), mine.end());
    });
    return out;
}

void Pipeline::reset_stats() {
    {
        std::lock_guard lock(parse_base_mutex_);
        parse_base_ = parse_totals();
    }
    budget_.reset_peak();
    on_workers([](Worker& w) {
        w.table.reset_stats();
        w.snapshot(true);
    });
    on_exporter([this](Exporter& e) {
        e.reset_stats();
        export_->zero_nat_stats();
        export_->snapshot(true);
    });
}

std::size_t Pipeline::worker_of(const FlowKey& key) const noexcept {
    return shard_of(shard_key_, key, workers_.size());
}

std::size_t Pipeline::worker_of(const FlowKey6& key) const noexcept {
    return shard_of(shard_key_, key, workers_.size());
}

std::vector<Watched> Pipeline::heartbeats() const {
    std::vector<Watched> out;
    for (std::size_t i = 0; i < workers_.size(); ++i)
        out.push_back({"worker " + std::to_string(i), &workers_[i]->heartbeat});
    out.push_back({"exporter", &export_->heartbeat});
    return out;
}

ParseStats Pipeline::parse_totals() const {
    ParseStats p;
    for (const auto& d : dispatchers_) p += d->published_.load();
    return p;
}

PipelineStats Pipeline::stats() const {
    PipelineStats s;
    {
        std::lock_guard lock(parse_base_mutex_);
        s.parse = stats_since(parse_totals(), parse_base_);
    }
    for (const auto& w : workers_) {
        std::lock_guard lock(w->stats_mutex);
        s.workers.push_back(w->stats);
    }
    s.peak = budget_.peak();
    export_->copy_stats(s);
    return s;
}

} // namespace nflowd
