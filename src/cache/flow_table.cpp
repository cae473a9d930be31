#include "nflowd/flow_table.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <limits>
#include <new>

namespace nflowd {

namespace {

constexpr std::uint32_t kU32Max = std::numeric_limits<std::uint32_t>::max();

// Buckets are indexed by a 32-bit bucket id, so more than 2^32 of them cannot be addressed.
std::size_t clamp_hashsize(std::size_t buckets) noexcept {
    return std::clamp<std::size_t>(buckets, kMinHashsize, std::size_t{kU32Max});
}

Nanos clamp_timeout(Nanos t) noexcept {
    return t < 0 ? 0 : t;
}

// `now - since > timeout` without signed overflow, whatever timestamps a capture delivers.
bool exceeded(Nanos now, Nanos since, Nanos timeout) noexcept {
    if (now <= since) return false;
    return static_cast<std::uint64_t>(now) - static_cast<std::uint64_t>(since) >
           static_cast<std::uint64_t>(timeout);
}

} // namespace

template <class P>
BasicFlowTable<P>::BasicFlowTable(const FlowTableConfig& config)
    : BasicFlowTable(config, random_hash_key()) {}

template <class P>
BasicFlowTable<P>::BasicFlowTable(const FlowTableConfig& config, const HashKey& bucket_key)
    : BasicFlowTable(config, bucket_key, nullptr) {}

template <class P>
BasicFlowTable<P>::BasicFlowTable(const FlowTableConfig& config, FlowBudget& budget)
    : BasicFlowTable(config, random_hash_key(), &budget) {}

template <class P>
BasicFlowTable<P>::BasicFlowTable(const FlowTableConfig& config, const HashKey& bucket_key,
                                  FlowBudget& budget)
    : BasicFlowTable(config, bucket_key, &budget) {}

template <class P>
BasicFlowTable<P>::BasicFlowTable(const FlowTableConfig& config, const HashKey& bucket_key,
                                  FlowBudget* shared)
    : config_(config), own_budget_(config.maxflows), budget_(shared ? shared : &own_budget_),
      bucket_key_(bucket_key) {
    // The memory budget is planned on these: an IPv4 flow no bigger than before IPv6 came,
    // an IPv6 flow at most 160 bytes with its bucket share and the slab's slack.
    static_assert(sizeof(Entry) <= (kIpv6 ? 104 : 72));
    config_.hashsize = clamp_hashsize(config_.hashsize);
    config_.inactive_timeout = clamp_timeout(config_.inactive_timeout);
    config_.active_timeout = clamp_timeout(config_.active_timeout);
    buckets_.assign(config_.hashsize, kNil);
}

template <class P> BasicFlowTable<P>::~BasicFlowTable() {
    budget_->release(count_);
}

template <class P> FlowTableConfig BasicFlowTable<P>::config() const noexcept {
    FlowTableConfig c = config_;
    c.maxflows = budget_->limit();
    return c;
}

template <class P> FlowRecord BasicFlowTable<P>::to_record(const Entry& e, EndReason why) noexcept {
    FlowRecord r;
    if constexpr (kIpv6) {
        r.family = Family::ipv6;
        r.src6 = e.key.src_addr;
        r.dst6 = e.key.dst_addr;
        r.key.src_port = e.key.src_port;
        r.key.dst_port = e.key.dst_port;
        r.key.in_if = e.key.in_if;
        r.key.protocol = e.key.protocol;
        r.key.tos = e.key.tos;
        r.key.direction = e.key.direction;
        r.key.obs_point = e.key.obs_point;
        r.flow_label = e.flow_label;
    } else {
        r.key = e.key;
    }
    r.end_reason = why;
    r.out_if = e.out_if;
    r.packets = e.packets;
    r.octets = e.octets;
    r.first = e.first;
    r.last = e.last;
    r.tcp_flags = e.tcp_flags;
    r.src_mask = e.src_mask;
    r.dst_mask = e.dst_mask;
    return r;
}

template <class P>
FlowRecord BasicFlowTable<P>::record(std::uint32_t i, EndReason why) const noexcept {
    FlowRecord r = to_record(at(i), why);
    if (store_link_) r.link = link_at(i);
    return r;
}

template <class P>
EndReason BasicFlowTable<P>::timeout_reason(const Entry& e, EndReason timeout) noexcept {
    constexpr std::uint8_t kFinRst = 0x01 | 0x04;
    return e.key.protocol == IPPROTO_TCP && (e.tcp_flags & kFinRst) != 0 ? EndReason::end_of_flow
                                                                         : timeout;
}

// Lemire's multiply-shift maps 32 bits of the keyed hash onto [0, hashsize) without a
// division, so hashsize need not be a power of two.
template <class P> std::uint32_t BasicFlowTable<P>::bucket_of(const Key& key) const noexcept {
    const auto h = static_cast<std::uint32_t>(hash_key(bucket_key_, key));
    return static_cast<std::uint32_t>((std::uint64_t{h} * buckets_.size()) >> 32);
}

template <class P>
template <std::uint32_t BasicFlowTable<P>::Entry::*Prev,
          std::uint32_t BasicFlowTable<P>::Entry::*Next>
void BasicFlowTable<P>::unlink(std::uint32_t i, std::uint32_t& head, std::uint32_t& tail) noexcept {
    Entry& e = at(i);
    if (e.*Prev != kNil)
        at(e.*Prev).*Next = e.*Next;
    else
        head = e.*Next;
    if (e.*Next != kNil)
        at(e.*Next).*Prev = e.*Prev;
    else
        tail = e.*Prev;
}

template <class P>
template <std::uint32_t BasicFlowTable<P>::Entry::*Prev,
          std::uint32_t BasicFlowTable<P>::Entry::*Next>
void BasicFlowTable<P>::append(std::uint32_t i, std::uint32_t& head, std::uint32_t& tail) noexcept {
    Entry& e = at(i);
    e.*Prev = tail;
    e.*Next = kNil;
    if (tail != kNil)
        at(tail).*Next = i;
    else
        head = i;
    tail = i;
}

template <class P> void BasicFlowTable<P>::lru_unlink(std::uint32_t i) noexcept {
    unlink<&Entry::lru_prev, &Entry::lru_next>(i, lru_head_, lru_tail_);
}
template <class P> void BasicFlowTable<P>::lru_append(std::uint32_t i) noexcept {
    append<&Entry::lru_prev, &Entry::lru_next>(i, lru_head_, lru_tail_);
}
template <class P> void BasicFlowTable<P>::age_unlink(std::uint32_t i) noexcept {
    unlink<&Entry::age_prev, &Entry::age_next>(i, age_head_, age_tail_);
}
template <class P> void BasicFlowTable<P>::age_append(std::uint32_t i) noexcept {
    append<&Entry::age_prev, &Entry::age_next>(i, age_head_, age_tail_);
}

// Returns kNil when the id space or the memory is exhausted: the caller drops the packet
// rather than throwing out of the packet path.
template <class P> std::uint32_t BasicFlowTable<P>::allocate() noexcept {
    if (free_head_ != kNil) {
        const std::uint32_t i = free_head_;
        free_head_ = at(i).chain_next;
        return i;
    }
    if (used_ == kMaxEntries) return kNil;
    if ((used_ >> kChunkShift) == chunks_.size()) {
        // Growing the chunk index is rare (doubling) and the only step that could throw.
        if (chunks_.size() == chunks_.capacity() ||
            (store_link_ && links_.size() == links_.capacity())) {
            try {
                chunks_.reserve(std::max<std::size_t>(16, chunks_.size() * 2));
                if (store_link_) links_.reserve(chunks_.capacity());
            } catch (const std::bad_alloc&) {
                return kNil;
            }
        }
        std::unique_ptr<Entry[]> chunk(new (std::nothrow) Entry[kChunkSize]);
        if (!chunk) return kNil;
        if (store_link_) {
            std::unique_ptr<LinkLayer[]> links(new (std::nothrow) LinkLayer[kChunkSize]);
            if (!links) return kNil;
            links_.push_back(std::move(links));
        }
        chunks_.push_back(std::move(chunk));
    }
    return used_++;
}

template <class P> void BasicFlowTable<P>::start(std::uint32_t i, const P& packet) noexcept {
    Entry& e = at(i);
    e.key = packet.key;
    e.first = packet.time;
    e.last = packet.time;
    e.out_if = packet.out_if;
    e.packets = 1;
    e.octets = packet.octets;
    e.tcp_flags = packet.tcp_flags;
    e.src_mask = packet.src_mask;
    e.dst_mask = packet.dst_mask;
    e.in_use = true;
    if constexpr (kIpv6) e.flow_label = packet.flow_label;
    e.linked = store_link_ && !packet.link.empty();
    if (store_link_) link_at(i) = packet.link;
    ++stats_.created;
    ++stats_.packets;
    stats_.octets += packet.octets;
}

// Exports the flow in slot i and starts the packet's flow in the same slot: the chain link
// stays valid because the key is unchanged, only the list positions move to the tails.
template <class P>
void BasicFlowTable<P>::restart(std::uint32_t i, const P& packet, EndReason why,
                                std::vector<FlowRecord>& exported) {
    exported.push_back(record(i, why));
    start(i, packet);
    lru_unlink(i);
    lru_append(i);
    age_unlink(i);
    age_append(i);
}

template <class P> void BasicFlowTable<P>::remove(std::uint32_t i) noexcept {
    Entry& e = at(i);
    std::uint32_t* link = &buckets_[bucket_of(e.key)];
    while (*link != i) link = &at(*link).chain_next;
    *link = e.chain_next;
    lru_unlink(i);
    age_unlink(i);
    e.in_use = false;
    e.chain_next = free_head_;
    free_head_ = i;
    --count_;
    stats_.active = count_;
}

template <class P>
inline std::uint32_t BasicFlowTable<P>::find(std::uint32_t bucket, const Key& key) noexcept {
    std::uint32_t i = buckets_[bucket];
    while (i != kNil) {
        ++stats_.searched;
        if (at(i).key == key) break;
        i = at(i).chain_next;
    }
    return i;
}

// A packet of a flow in the cache: counted into it, unless the flow has expired or would
// overflow its 32-bit counters, when it is exported and the packet starts it again.
template <class P>
inline void BasicFlowTable<P>::update(std::uint32_t i, const P& packet,
                                      std::vector<FlowRecord>& exported) {
    ++stats_.found;
    Entry& e = at(i);
    if (exceeded(packet.time, e.last, config_.inactive_timeout)) {
        ++stats_.expired_inactive;
        return restart(i, packet, timeout_reason(e, EndReason::idle), exported);
    }
    if (exceeded(packet.time, e.first, config_.active_timeout)) {
        ++stats_.expired_active;
        return restart(i, packet, timeout_reason(e, EndReason::active), exported);
    }
    // RFC 5102's "lack of resources": the Metering Process's 32-bit per-flow counters are
    // full, so the flow is split (an active timeout would say it ran too long).
    if (packet.octets > kU32Max - e.octets || e.packets == kU32Max) {
        ++stats_.expired_overflow;
        return restart(i, packet, EndReason::lack_of_resources, exported);
    }
    // The first packet with a link layer gives the flow's (OUTPUT packets of a flow have none).
    if (store_link_ && !e.linked && !packet.link.empty()) {
        link_at(i) = packet.link;
        e.linked = true;
    }
    ++e.packets;
    e.octets += packet.octets;
    e.tcp_flags |= packet.tcp_flags;
    e.last = std::max(e.last, packet.time);
    e.first = std::min(e.first, packet.time);
    ++stats_.packets;
    stats_.octets += packet.octets;
    if (i != lru_tail_) {
        lru_unlink(i);
        lru_append(i);
    }
}

// A new flow, unless the cache is full (the budget's maxflows, or no free entry): then the
// packet is dropped and counted. The budget's slot is taken first so that two tables sharing
// it cannot both admit the last flow; it is given back if no entry can be had.
template <class P> inline bool BasicFlowTable<P>::insert(std::uint32_t bucket, const P& packet) {
    std::uint32_t i = kNil;
    if (budget_->try_acquire()) {
        i = allocate();
        if (i == kNil) budget_->release(1);
    }
    if (i == kNil) {
        ++stats_.dropped_packets;
        stats_.dropped_octets += packet.octets;
        return false;
    }
    start(i, packet);
    // New flows go to the chain head: recent flows are the likeliest to be hit again.
    at(i).chain_next = buckets_[bucket];
    buckets_[bucket] = i;
    lru_append(i);
    age_append(i);
    ++count_;
    stats_.active = count_;
    stats_.peak = std::max(stats_.peak, stats_.active);
    return true;
}

template <class P> bool BasicFlowTable<P>::add(const P& packet, std::vector<FlowRecord>& exported) {
    const std::uint32_t b = bucket_of(packet.key);
    const std::uint32_t i = find(b, packet.key);
    if (i == kNil) return insert(b, packet);
    update(i, packet, exported);
    return true;
}

template <class P> void BasicFlowTable<P>::expire(Nanos now, std::vector<FlowRecord>& exported) {
    // The budget is given back once per call, not once per flow: one atomic operation.
    const std::uint32_t before = count_;
    while (lru_head_ != kNil && exceeded(now, at(lru_head_).last, config_.inactive_timeout)) {
        exported.push_back(record(lru_head_, timeout_reason(at(lru_head_), EndReason::idle)));
        ++stats_.expired_inactive;
        remove(lru_head_);
    }
    while (age_head_ != kNil && exceeded(now, at(age_head_).first, config_.active_timeout)) {
        exported.push_back(record(age_head_, timeout_reason(at(age_head_), EndReason::active)));
        ++stats_.expired_active;
        remove(age_head_);
    }
    budget_->release(before - count_);
}

template <class P> void BasicFlowTable<P>::flush(std::vector<FlowRecord>& exported) {
    exported.reserve(exported.size() + count_);
    for (std::uint32_t i = age_head_; i != kNil; i = at(i).age_next)
        exported.push_back(record(i, EndReason::forced));
    stats_.flushed += count_;
    budget_->release(count_);
    std::fill(buckets_.begin(), buckets_.end(), kNil);
    // An empty table gives its slab back: a past burst should not pin memory forever.
    chunks_.clear();
    chunks_.shrink_to_fit();
    links_.clear();
    links_.shrink_to_fit();
    used_ = 0;
    count_ = 0;
    stats_.active = 0;
    free_head_ = kNil;
    lru_head_ = lru_tail_ = kNil;
    age_head_ = age_tail_ = kNil;
}

template <class P>
std::size_t BasicFlowTable<P>::flush_some(std::vector<FlowRecord>& exported, std::size_t max) {
    if (max >= count_) {
        flush(exported);
        return 0;
    }
    for (std::size_t n = 0; n < max; ++n) {
        exported.push_back(record(age_head_, EndReason::forced));
        remove(age_head_);
    }
    stats_.flushed += max;
    budget_->release(max);
    return count_;
}

template <class P> void BasicFlowTable<P>::set_hashsize(std::size_t buckets) {
    set_hashsize(buckets, random_hash_key());
}

template <class P>
void BasicFlowTable<P>::set_hashsize(std::size_t buckets, const HashKey& bucket_key) {
    buckets = clamp_hashsize(buckets);
    // Built aside and swapped in, so a failed allocation leaves the table intact.
    std::vector<std::uint32_t> fresh(buckets, kNil);
    buckets_.swap(fresh);
    config_.hashsize = buckets;
    bucket_key_ = bucket_key;
    for (std::uint32_t i = age_head_; i != kNil; i = at(i).age_next) {
        const std::uint32_t b = bucket_of(at(i).key);
        at(i).chain_next = buckets_[b];
        buckets_[b] = i;
    }
}

template <class P> void BasicFlowTable<P>::set_maxflows(std::size_t maxflows) noexcept {
    budget_->set_limit(maxflows);
}

template <class P> void BasicFlowTable<P>::set_timeouts(Nanos inactive, Nanos active) noexcept {
    config_.inactive_timeout = clamp_timeout(inactive);
    config_.active_timeout = clamp_timeout(active);
}

template <class P> void BasicFlowTable<P>::set_link(bool store) {
    if (store == store_link_) return;
    std::vector<std::unique_ptr<LinkLayer[]>> links;
    if (store) {
        // Built aside: a failed allocation leaves the table without link records, as it was.
        links.reserve(chunks_.capacity());
        for (std::size_t c = 0; c < chunks_.size(); ++c)
            links.push_back(std::make_unique<LinkLayer[]>(kChunkSize));
    }
    // Cached flows start with none (the records are zero): the next packet with one fills it.
    for (std::uint32_t i = 0; i < used_; ++i) at(i).linked = false;
    links_.swap(links);
    store_link_ = store;
}

template <class P> void BasicFlowTable<P>::reset_stats() noexcept {
    stats_ = FlowTableStats{};
    stats_.active = count_;
    stats_.peak = count_;
}

template <class P> std::size_t BasicFlowTable<P>::size() const noexcept {
    return count_;
}

template <class P> std::size_t BasicFlowTable<P>::memory_bytes() const noexcept {
    return chunks_.size() * std::size_t{kChunkSize} * sizeof(Entry) +
           chunks_.capacity() * sizeof(chunks_[0]) + buckets_.capacity() * sizeof(buckets_[0]) +
           links_.size() * std::size_t{kChunkSize} * sizeof(LinkLayer) +
           links_.capacity() * sizeof(links_[0]);
}

template <class P>
template <class Score>
std::vector<FlowRecord> BasicFlowTable<P>::top_by(std::size_t n, Score score) const {
    using Ranked = std::pair<std::uint64_t, std::uint32_t>; // score, slab id
    // A min-heap on the score: its front is the weakest flow kept, the one to beat.
    const auto stronger = [](const Ranked& a, const Ranked& b) { return a.first > b.first; };
    std::vector<Ranked> heap;
    heap.reserve(std::min<std::size_t>(n, count_));
    for (std::uint32_t i = 0; i < used_; ++i) {
        const Entry& e = at(i);
        if (!e.in_use) continue;
        const Ranked r{score(e), i};
        if (heap.size() < n) {
            heap.push_back(r);
            std::push_heap(heap.begin(), heap.end(), stronger);
        } else if (r.first > heap.front().first) {
            std::pop_heap(heap.begin(), heap.end(), stronger);
            heap.back() = r;
            std::push_heap(heap.begin(), heap.end(), stronger);
        }
    }
    std::vector<FlowRecord> out;
    out.reserve(heap.size());
    for (const auto& r : heap) out.push_back(record(r.second, EndReason::forced));
    return out;
}

template <class P>
std::vector<FlowRecord> BasicFlowTable<P>::top(std::size_t n, FlowRank rank) const {
    if (n == 0) {
        std::vector<FlowRecord> all;
        all.reserve(count_);
        for (std::uint32_t i = 0; i < used_; ++i)
            if (at(i).in_use) all.push_back(record(i, EndReason::forced));
        return all;
    }
    // Ties fall to the second field, as nflowctl's sort orders them.
    switch (rank) {
    case FlowRank::bytes:
        return top_by(n, [](const Entry& e) { return std::uint64_t{e.octets} << 32 | e.packets; });
    case FlowRank::packets:
        return top_by(n, [](const Entry& e) { return std::uint64_t{e.packets} << 32 | e.octets; });
    case FlowRank::start:
        break;
    }
    return top_by(n, [](const Entry& e) { return ~static_cast<std::uint64_t>(e.first); });
}

template class BasicFlowTable<PacketInfo>;
template class BasicFlowTable<PacketInfo6>;

} // namespace nflowd
