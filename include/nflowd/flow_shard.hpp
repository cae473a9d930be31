// One worker's share of the flow cache: an IPv4 and an IPv6 flow table side by side, driven
// as one (timeouts, rehash, flush, dumps, counters), both counting in the same FlowBudget.
#pragma once

#include "nflowd/flow_table.hpp"

#include <cstddef>
#include <vector>

namespace nflowd {

// Each family keeps its own table so that an IPv4 entry stays 72 bytes whatever IPv6 needs;
// maxflows still holds for both together through the shared budget. Same error idiom and
// threading as FlowTable: owned by one thread, add() never throws.
class FlowShard {
  public:
    FlowShard(const FlowTableConfig& config, FlowBudget& budget)
        : v4_(config, budget), v6_(config, budget) {}

    bool add(const PacketInfo& packet, std::vector<FlowRecord>& exported) {
        return v4_.add(packet, exported);
    }
    bool add(const PacketInfo6& packet, std::vector<FlowRecord>& exported) {
        return v6_.add(packet, exported);
    }
    void expire(Nanos now, std::vector<FlowRecord>& exported);
    // At most `max` flows, IPv4 first (see FlowTable::flush_some); returns the flows left.
    std::size_t flush_some(std::vector<FlowRecord>& exported, std::size_t max);
    // Both tables get `buckets` buckets (and new bucket keys).
    void set_hashsize(std::size_t buckets);
    void set_timeouts(Nanos inactive, Nanos active) noexcept;
    // Both tables keep (or stop keeping) each flow's link layer: v9/IPFIX only (may throw
    // std::bad_alloc turning it on; see FlowTable::set_link).
    void set_link(bool store);
    void reset_stats() noexcept;

    FlowTableConfig config() const noexcept { return v4_.config(); } // both alike
    FlowTableStats stats() const noexcept;                           // both summed
    std::size_t size() const noexcept { return v4_.size() + v6_.size(); }
    std::size_t memory_bytes() const noexcept { return v4_.memory_bytes() + v6_.memory_bytes(); }
    // Each table's first `n` flows in `rank` order (every flow when n is 0), both families.
    std::vector<FlowRecord> top(std::size_t n, FlowRank rank) const;

    FlowTable& ipv4() noexcept { return v4_; }
    FlowTable6& ipv6() noexcept { return v6_; }

  private:
    FlowTable v4_;
    FlowTable6 v6_;
};

} // namespace nflowd
