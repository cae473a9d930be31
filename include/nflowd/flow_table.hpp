// One shard of the flow cache: ipt_NETFLOW's hash of active flows with inactive/active
// timeouts, maxflows and online rehash. Owned by one thread; does no I/O and reads no clock.
#pragma once

#include "nflowd/packet.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nflowd {

struct FlowTableConfig {
    std::size_t hashsize = 65536;         // buckets; at least kMinHashsize
    std::size_t maxflows = 2'000'000;     // 0 = unlimited
    Nanos inactive_timeout = 15 * kNanosPerSecond;
    Nanos active_timeout = 1800 * kNanosPerSecond;
};

constexpr std::size_t kMinHashsize = 256;

struct FlowTableStats {
    std::uint64_t searched = 0;       // chain entries walked by lookups
    std::uint64_t found = 0;          // lookups that hit an active flow
    std::uint64_t created = 0;        // flows started
    std::uint64_t packets = 0;        // packets accounted into flows
    std::uint64_t octets = 0;
    std::uint64_t dropped_packets = 0; // packets of new flows refused by maxflows
    std::uint64_t dropped_octets = 0;
    std::uint64_t expired_inactive = 0;
    std::uint64_t expired_active = 0;
    std::uint64_t expired_overflow = 0; // exported early so octets never wrap 32 bits
    std::uint64_t flushed = 0;
    std::uint64_t active = 0;           // flows in the table now
    std::uint64_t peak = 0;             // highest `active` seen
};

class FlowTable {
  public:
    explicit FlowTable(const FlowTableConfig& config);

    // Accounts one packet (time = packet.time). A flow that has timed out by that time, or
    // whose octets would overflow, is appended to `exported` first and a new flow starts.
    // Returns false when maxflows refused a new flow (the packet is counted as dropped).
    bool add(const PacketInfo& packet, std::vector<FlowRecord>& exported);

    // Appends every flow idle longer than inactive_timeout or older than active_timeout at
    // `now`. Work is proportional to the number of flows expired.
    void expire(Nanos now, std::vector<FlowRecord>& exported);

    // Appends every flow and empties the table.
    void flush(std::vector<FlowRecord>& exported);

    // Rebuilds the hash with `buckets` buckets (clamped to kMinHashsize) keeping every flow.
    void set_hashsize(std::size_t buckets);
    void set_maxflows(std::size_t maxflows) noexcept;
    void set_timeouts(Nanos inactive, Nanos active) noexcept;

    const FlowTableConfig& config() const noexcept { return config_; }
    const FlowTableStats& stats() const noexcept { return stats_; }
    void reset_stats() noexcept; // keeps active/peak consistent with the content
    std::size_t size() const noexcept;
    std::size_t memory_bytes() const noexcept; // heap held by the table

    // Visits every active flow as a FlowRecord (for flow dumps); does not change anything.
    template <class Fn> void for_each(Fn&& fn) const {
        for (std::uint32_t i = 0; i < entries_.size(); ++i)
            if (entries_[i].in_use) fn(to_record(entries_[i]));
    }

  private:
    static constexpr std::uint32_t kNil = 0xffffffffU;

    // Flows live in a slab indexed by 32-bit ids: three lists thread through it (hash chain,
    // last-seen order for inactive expiry, start order for active expiry).
    struct Entry {
        FlowKey key;
        std::uint32_t out_if;
        std::uint32_t packets;
        std::uint32_t octets;
        Nanos first;
        Nanos last;
        std::uint32_t chain_next;
        std::uint32_t lru_prev, lru_next; // ordered by last packet time
        std::uint32_t age_prev, age_next; // ordered by first packet time
        std::uint8_t tcp_flags;
        std::uint8_t src_mask;
        std::uint8_t dst_mask;
        bool in_use;
    };

    static FlowRecord to_record(const Entry& e) noexcept;

    FlowTableConfig config_;
    FlowTableStats stats_;
    std::vector<Entry> entries_;
    std::vector<std::uint32_t> buckets_;
    std::uint32_t free_head_ = kNil;
    std::uint32_t lru_head_ = kNil, lru_tail_ = kNil;
    std::uint32_t age_head_ = kNil, age_tail_ = kNil;
};

} // namespace nflowd
