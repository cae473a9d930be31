// One shard of the flow cache: ipt_NETFLOW's hash of active flows with inactive/active
// timeouts, maxflows and online rehash. Owned by one thread; does no I/O and reads no clock.
#pragma once

#include "nflowd/packet.hpp"
#include "nflowd/stats_fields.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

// Error idiom (cache): per packet add() returns false for a packet dropped (cache full) and
// counts it, never throws; configuration (Aggregation::parse) throws std::invalid_argument.
namespace nflowd {

struct FlowTableConfig {
    std::size_t hashsize = 65536;     // buckets; at least kMinHashsize
    std::size_t maxflows = 2'000'000; // 0 = unlimited
    Nanos inactive_timeout = 15 * kNanosPerSecond;
    Nanos active_timeout = 1800 * kNanosPerSecond;
    friend bool operator==(const FlowTableConfig&, const FlowTableConfig&) = default;
};

constexpr std::size_t kMinHashsize = 256;

// The maxflows limit and the count of live flows of every table that shares it, so that the
// limit holds for the whole daemon (as ipt_NETFLOW's global one) however the flows fall on the
// worker shards. Tables touch it only when a flow is created or leaves, never per packet, and
// without a lock: admission is a compare-exchange that never moves the count past the limit.
//
// Relaxed ordering is enough: the count guards no other memory (each table's entries belong to
// its own thread), and read-modify-writes of one atomic are totally ordered whatever the memory
// order, so two workers can never both take the last slot. A new limit is seen by a worker at
// the latest when it next synchronises with the thread that set it (the pipeline's mailbox).
class alignas(64) FlowBudget {
  public:
    explicit FlowBudget(std::size_t limit = 0) noexcept : limit_(limit) {}
    FlowBudget(const FlowBudget&) = delete;
    FlowBudget& operator=(const FlowBudget&) = delete;

    // Takes one slot for a new flow; false when `limit` flows are live (0 = unlimited). A limit
    // lowered below the count refuses every new flow until enough flows have left.
    bool try_acquire() noexcept {
        const std::size_t limit = limit_.load(std::memory_order_relaxed);
        std::size_t n = count_.load(std::memory_order_relaxed);
        do {
            if (limit != 0 && n >= limit) return false;
        } while (!count_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
        // The high-water mark: a load from the line just written, a write only at a new peak.
        if (n + 1 > peak_.load(std::memory_order_relaxed)) raise_peak(n + 1);
        return true;
    }
    // Gives back the slots of `flows` flows that left a table.
    void release(std::size_t flows) noexcept {
        if (flows != 0) count_.fetch_sub(flows, std::memory_order_relaxed);
    }
    void set_limit(std::size_t limit) noexcept { limit_.store(limit, std::memory_order_relaxed); }
    std::size_t limit() const noexcept { return limit_.load(std::memory_order_relaxed); }
    std::size_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
    // Most flows live at once in all the tables together (the sum of the tables' own peaks
    // overstates it: they need not peak at the same time).
    std::size_t peak() const noexcept { return peak_.load(std::memory_order_relaxed); }
    // Statistics zeroed: the high-water mark restarts from the flows live now.
    void reset_peak() noexcept { peak_.store(count(), std::memory_order_relaxed); }

  private:
    void raise_peak(std::size_t n) noexcept {
        std::size_t p = peak_.load(std::memory_order_relaxed);
        while (n > p && !peak_.compare_exchange_weak(p, n, std::memory_order_relaxed)) {
        }
    }

    // Side by side on one cache line: admission reads the limit and then writes the count.
    std::atomic<std::size_t> limit_;
    std::atomic<std::size_t> count_{0};
    std::atomic<std::size_t> peak_{0};
};

// How a flow dump ranks flows: most bytes, most packets, or earliest start first.
enum class FlowRank : std::uint8_t { start, bytes, packets };

struct FlowTableStats {
    std::uint64_t searched = 0; // chain entries walked by lookups
    std::uint64_t found = 0;    // lookups that hit an active flow
    std::uint64_t created = 0;  // flows started
    std::uint64_t packets = 0;  // packets accounted into flows
    std::uint64_t octets = 0;
    std::uint64_t dropped_packets = 0; // packets of new flows refused by maxflows
    std::uint64_t dropped_octets = 0;
    std::uint64_t expired_inactive = 0;
    std::uint64_t expired_active = 0;
    std::uint64_t expired_overflow = 0; // exported early so octets never wrap 32 bits
    std::uint64_t flushed = 0;
    std::uint64_t active = 0; // flows in the table now
    std::uint64_t peak = 0;   // highest `active` seen

    static constexpr auto fields() {
        using F = StatField<FlowTableStats>;
        constexpr auto c = StatKind::counter;
        return std::array{
            F{"searched", &FlowTableStats::searched, c, "entries",
              "Hash chain entries walked by lookups"},
            F{"found", &FlowTableStats::found, c, "lookups", "Lookups that hit an active flow"},
            F{"created", &FlowTableStats::created, c, "flows", "Flows started"},
            F{"packets", &FlowTableStats::packets, c, "packets", "Packets accounted into flows"},
            F{"bytes", &FlowTableStats::octets, c, "bytes", "Bytes accounted into flows"},
            F{"maxflows_dropped_packets", &FlowTableStats::dropped_packets, c, "packets",
              "Packets of new flows refused by maxflows"},
            F{"maxflows_dropped_bytes", &FlowTableStats::dropped_octets, c, "bytes",
              "Bytes of new flows refused by maxflows"},
            F{"expired_inactive", &FlowTableStats::expired_inactive, c, "flows",
              "Flows exported after the inactive timeout"},
            F{"expired_active", &FlowTableStats::expired_active, c, "flows",
              "Flows exported after the active timeout"},
            F{"expired_overflow", &FlowTableStats::expired_overflow, c, "flows",
              "Flows exported early so that their 32-bit counters never wrap"},
            F{"flushed", &FlowTableStats::flushed, c, "flows", "Flows exported by a flush"},
            F{"active_flows", &FlowTableStats::active, StatKind::gauge, "flows",
              "Flows in the cache now"},
            F{"peak_flows", &FlowTableStats::peak, StatKind::gauge, "flows",
              "Most flows in the cache since start or the last zeroing"},
        };
    }
};

// The flows of one address family: Packet is PacketInfo (IPv4, FlowTable) or PacketInfo6
// (IPv6, FlowTable6). Separate tables keep each family's entry as small as its key allows; a
// worker holds one of each, both counting in the same FlowBudget.
template <class Packet> class BasicFlowTable {
  public:
    using Key = decltype(Packet::key);
    static constexpr bool kIpv6 = std::is_same_v<Packet, PacketInfo6>;

    // The bucket key is drawn with random_hash_key() (may throw std::system_error); tests
    // pass a fixed one for reproducible bucket assignments.
    //
    // Alone, a table has a budget of its own with config.maxflows as its limit. Given a
    // budget, the table counts its flows in it and config.maxflows is ignored: the limit is the
    // budget's, shared with every table that uses it; the budget must outlive the table.
    explicit BasicFlowTable(const FlowTableConfig& config);
    BasicFlowTable(const FlowTableConfig& config, const HashKey& bucket_key);
    BasicFlowTable(const FlowTableConfig& config, FlowBudget& budget);
    BasicFlowTable(const FlowTableConfig& config, const HashKey& bucket_key, FlowBudget& budget);
    // Gives its flows' slots back to the budget. Neither copied nor moved, so that each
    // table's flows are counted once in the budget and given back once.
    ~BasicFlowTable();
    BasicFlowTable(const BasicFlowTable&) = delete;
    BasicFlowTable& operator=(const BasicFlowTable&) = delete;

    // Accounts one packet (time = packet.time). A flow that has timed out by that time, or
    // whose octets or packets would overflow, is appended to `exported` first and a new flow
    // starts in its slot (never refused by maxflows, the table does not grow). Returns false
    // when maxflows refused a new flow (the packet is counted as dropped). A packet older than
    // its flow's `last` never moves `last` back; one older than `first` moves `first` back.
    // Each exported record says why it left (end_reason): idle or active timeout, active for
    // a counter about to wrap, end_of_flow for a timed-out TCP flow that saw FIN or RST.
    bool add(const Packet& packet, std::vector<FlowRecord>& exported);

    // Appends every flow idle longer than inactive_timeout (now - last > inactive) or older
    // than active_timeout (now - first > active) at `now`: both strict, as ipt_NETFLOW, so a
    // flow is still alive exactly at the timeout and gone 1 ns later. Inactive is checked
    // first and wins when both hold. Work is proportional to the number of flows expired.
    // With out-of-order packet times (several sources) a flow may leave up to that skew late.
    void expire(Nanos now, std::vector<FlowRecord>& exported);

    // Appends every flow (end_reason forced) and empties the table.
    void flush(std::vector<FlowRecord>& exported);
    // The same for at most `max` flows, oldest first; returns the flows left. Flushing a big
    // table piece by piece never holds all its records at once beside its entries.
    std::size_t flush_some(std::vector<FlowRecord>& exported, std::size_t max);

    // Rebuilds the hash with `buckets` buckets (clamped to kMinHashsize) keeping every flow,
    // under a new bucket key (drawn here, or given): as ipt_NETFLOW re-seeds its jhash at
    // rehash, whatever a sender may have learnt about which of its flows collide (by timing)
    // is void after it. A failure (allocation, getrandom) leaves the table as it was.
    void set_hashsize(std::size_t buckets);
    void set_hashsize(std::size_t buckets, const HashKey& bucket_key);
    // Sets the budget's limit (every table sharing it sees it); flows already in the cache
    // stay, new ones are refused while the budget holds `maxflows` or more.
    void set_maxflows(std::size_t maxflows) noexcept;
    void set_timeouts(Nanos inactive, Nanos active) noexcept;
    // Whether each flow keeps its link layer (MACs, VLAN: only v9/IPFIX export them). On, a
    // side array parallel to the slab holds one 14-byte LinkLayer per entry, so a v5 flow
    // never pays for it; flows already cached start with none and take the next packet's
    // that has one. Off frees it. Turning it on allocates for the slab and may throw
    // std::bad_alloc, leaving the table as it was.
    void set_link(bool store);
    bool stores_link() const noexcept { return store_link_; }

    // maxflows is the budget's limit now.
    FlowTableConfig config() const noexcept;
    const FlowTableStats& stats() const noexcept { return stats_; }
    void reset_stats() noexcept; // keeps active/peak consistent with the content
    std::size_t size() const noexcept;
    // The bucket a key maps to now (hash_key under bucket_key(), then onto [0, hashsize)).
    std::uint32_t bucket_of(const Key& key) const noexcept;
    const HashKey& bucket_key() const noexcept { return bucket_key_; }
    // Heap held by the table. Slab capacity stays at its high-water mark (in 4096-entry
    // chunks) until flush() releases it.
    std::size_t memory_bytes() const noexcept;

    // Visits every active flow as a FlowRecord in start order (for flow dumps; end_reason is
    // not meaningful there); does not change anything.
    template <class Fn> void for_each(Fn&& fn) const {
        for (std::uint32_t i = age_head_; i != kNil; i = at(i).age_next)
            fn(record(i, EndReason::forced));
    }
    // The first `n` flows in `rank` order, unordered among themselves (every flow when n is
    // 0): one pass over the slab front to back reading the ranked fields, a bounded heap of
    // (score, id), and `n` records copied at the end. For flow dumps, which must cost the
    // worker little however many flows it holds.
    std::vector<FlowRecord> top(std::size_t n, FlowRank rank) const;

  private:
    friend struct FlowTableTestPeer; // reaches counter limits without 2^32 packets

    static constexpr std::uint32_t kNil = 0xffffffffU;

    // Flows live in a slab indexed by 32-bit ids: three lists thread through it (hash chain,
    // last-seen order for inactive expiry, start order for active expiry). Key and chain link
    // come first so a chain walk touches one cache line per entry. 72 bytes for IPv4, 104 for
    // IPv6 (a 44-byte key and the flow label, which only IPv6 flows store).
    struct NoLabel {};
    struct Entry {
        Key key;
        std::uint32_t chain_next; // also links the free list
        Nanos first;
        Nanos last;
        std::uint32_t out_if;
        std::uint32_t packets;
        std::uint32_t octets;
        std::uint32_t lru_prev, lru_next; // ordered by last packet time
        std::uint32_t age_prev, age_next; // ordered by first packet time
        std::uint8_t tcp_flags;
        std::uint8_t src_mask;
        std::uint8_t dst_mask;
        bool in_use : 1;
        // Its link record is filled (while store_link_): packets after that never read the
        // side array, whose line would be one more cache miss per packet.
        bool linked : 1;
        [[no_unique_address]] std::conditional_t<kIpv6, std::uint32_t, NoLabel> flow_label;
    };

    // The slab is a list of fixed-size chunks rather than one vector: growing never copies
    // or transiently doubles the memory, and the unused capacity is below one chunk.
    static constexpr unsigned kChunkShift = 12;
    static constexpr std::uint32_t kChunkSize = std::uint32_t{1} << kChunkShift;
    static constexpr std::uint32_t kChunkMask = kChunkSize - 1;
    static constexpr std::uint32_t kMaxEntries = kNil; // kNil itself is never an id

    Entry& at(std::uint32_t i) noexcept { return chunks_[i >> kChunkShift][i & kChunkMask]; }
    const Entry& at(std::uint32_t i) const noexcept {
        return chunks_[i >> kChunkShift][i & kChunkMask];
    }

    static FlowRecord to_record(const Entry& e, EndReason why) noexcept;
    // Entry i's record with its link layer when stored.
    FlowRecord record(std::uint32_t i, EndReason why) const noexcept;
    LinkLayer& link_at(std::uint32_t i) noexcept {
        return links_[i >> kChunkShift][i & kChunkMask];
    }
    const LinkLayer& link_at(std::uint32_t i) const noexcept {
        return links_[i >> kChunkShift][i & kChunkMask];
    }
    // A timeout's reason, unless the flow is a TCP connection that already ended.
    static EndReason timeout_reason(const Entry& e, EndReason timeout) noexcept;
    template <class Score> std::vector<FlowRecord> top_by(std::size_t n, Score score) const;

    std::uint32_t allocate() noexcept;
    void start(std::uint32_t i, const Packet& packet) noexcept;
    void restart(std::uint32_t i, const Packet& packet, EndReason why,
                 std::vector<FlowRecord>& exported);
    // The three steps of add(), the per-packet hot path: forced inline so that splitting it
    // for reading costs no call.
    [[gnu::always_inline]] std::uint32_t find(std::uint32_t bucket, const Key& key) noexcept;
    [[gnu::always_inline]] void update(std::uint32_t i, const Packet& packet,
                                       std::vector<FlowRecord>& exported);
    [[gnu::always_inline]] bool insert(std::uint32_t bucket, const Packet& packet);
    void remove(std::uint32_t i) noexcept;
    // The two expiry lists share one implementation, parameterised by their link fields.
    template <std::uint32_t Entry::*Prev, std::uint32_t Entry::*Next>
    void unlink(std::uint32_t i, std::uint32_t& head, std::uint32_t& tail) noexcept;
    template <std::uint32_t Entry::*Prev, std::uint32_t Entry::*Next>
    void append(std::uint32_t i, std::uint32_t& head, std::uint32_t& tail) noexcept;
    void lru_unlink(std::uint32_t i) noexcept;
    void lru_append(std::uint32_t i) noexcept;
    void age_unlink(std::uint32_t i) noexcept;
    void age_append(std::uint32_t i) noexcept;

    BasicFlowTable(const FlowTableConfig& config, const HashKey& bucket_key, FlowBudget* shared);

    FlowTableConfig config_; // its maxflows is unused: the budget holds the limit
    FlowBudget own_budget_;  // used when no budget is shared
    FlowBudget* budget_;
    HashKey bucket_key_; // this shard's own, never the pipeline's shard key
    FlowTableStats stats_;
    std::vector<std::unique_ptr<Entry[]>> chunks_;
    // One LinkLayer per slab entry, chunk for chunk, while store_link_ (else empty).
    std::vector<std::unique_ptr<LinkLayer[]>> links_;
    bool store_link_ = false;
    std::vector<std::uint32_t> buckets_;
    std::uint32_t used_ = 0; // slots ever handed out since the last flush
    std::uint32_t count_ = 0;
    std::uint32_t free_head_ = kNil;
    std::uint32_t lru_head_ = kNil, lru_tail_ = kNil;
    std::uint32_t age_head_ = kNil, age_tail_ = kNil;
};

using FlowTable = BasicFlowTable<PacketInfo>;
using FlowTable6 = BasicFlowTable<PacketInfo6>;
extern template class BasicFlowTable<PacketInfo>;
extern template class BasicFlowTable<PacketInfo6>;

} // namespace nflowd
