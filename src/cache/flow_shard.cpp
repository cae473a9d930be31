#include "nflowd/flow_shard.hpp"

namespace nflowd {

void FlowShard::expire(Nanos now, std::vector<FlowRecord>& exported) {
    v4_.expire(now, exported);
    v6_.expire(now, exported);
}

std::size_t FlowShard::flush_some(std::vector<FlowRecord>& exported, std::size_t max) {
    const std::size_t before = exported.size();
    const std::size_t left4 = v4_.flush_some(exported, max);
    const std::size_t done = exported.size() - before;
    const std::size_t left6 = done < max ? v6_.flush_some(exported, max - done) : v6_.size();
    return left4 + left6;
}

void FlowShard::set_hashsize(std::size_t buckets) {
    v4_.set_hashsize(buckets);
    v6_.set_hashsize(buckets);
}

void FlowShard::set_timeouts(Nanos inactive, Nanos active) noexcept {
    v4_.set_timeouts(inactive, active);
    v6_.set_timeouts(inactive, active);
}

void FlowShard::set_link(bool store) {
    v4_.set_link(store);
    try {
        v6_.set_link(store);
    } catch (...) {
        v4_.set_link(false); // both or neither; turning off cannot throw
        throw;
    }
}

void FlowShard::reset_stats() noexcept {
    v4_.reset_stats();
    v6_.reset_stats();
}

FlowTableStats FlowShard::stats() const noexcept {
    FlowTableStats s = v4_.stats();
    s += v6_.stats();
    return s;
}

std::vector<FlowRecord> FlowShard::top(std::size_t n, FlowRank rank) const {
    std::vector<FlowRecord> out = v4_.top(n, rank);
    const std::vector<FlowRecord> six = v6_.top(n, rank);
    out.insert(out.end(), six.begin(), six.end());
    return out;
}

} // namespace nflowd
