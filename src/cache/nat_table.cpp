// The NAT table: connections in a slab with two intrusive lists (live in creation order, dead
// in destroy order) and an open-addressing index from each view of a flow key to its entry.
#include "nflowd/nat_table.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace nflowd {

namespace {

// An entry's number shares its index word with two bits of view.
constexpr std::size_t kMaxEntries = std::size_t{1} << 29;
constexpr std::size_t kInitialSlots = 1024;

NatEndpoint endpoint(const FlowRecord& rec, bool source) noexcept {
    const std::uint16_t port =
        has_ports(rec.key.protocol) ? (source ? rec.key.src_port : rec.key.dst_port) : 0;
    if (rec.family == Family::ipv4)
        return NatEndpoint::ipv4(source ? rec.key.src_addr : rec.key.dst_addr, port);
    return NatEndpoint{source ? rec.src6 : rec.dst6, port};
}

} // namespace

NatTable::NatTable(const NatTableConfig& cfg)
    : cfg_(cfg), hash_key_(random_hash_key()), slots_(kInitialSlots) {
    set_grace(cfg.grace);
    cfg_.max_entries = std::clamp<std::size_t>(cfg.max_entries, 1, kMaxEntries);
}

NatTable::Key NatTable::view_key(const Entry& e, int view) const noexcept {
    switch (view) {
    case 0:
        return Key{e.orig, e.family, e.protocol};
    case 1:
        return Key{NatTuple{e.orig.src, e.reply.src}, e.family, e.protocol};
    default:
        return Key{e.reply.inverted(), e.family, e.protocol};
    }
}

namespace {
bool same_key(const NatTuple& a, Family fa, std::uint8_t pa, const NatTuple& b, Family fb,
              std::uint8_t pb) noexcept {
    return fa == fb && pa == pb && a == b;
}
} // namespace

// SipHash-1-3 (the flow hash's PRF: connections come from the network) of the key as five
// 64-bit words, in registers as hash_key() does for flows: both addresses (16 bytes each),
// then the ports, protocol and family.
std::uint32_t NatTable::hash(const Key& k) const noexcept {
    std::uint64_t w[5];
    std::memcpy(&w[0], k.t.src.addr.data(), 16);
    std::memcpy(&w[2], k.t.dst.addr.data(), 16);
    w[4] = std::uint64_t{k.t.src.port} | (std::uint64_t{k.t.dst.port} << 16) |
           (std::uint64_t{k.protocol} << 32) |
           (std::uint64_t{static_cast<std::uint8_t>(k.family)} << 40);
    std::uint64_t v0 = hash_key_.k0 ^ 0x736f6d6570736575ULL;
    std::uint64_t v1 = hash_key_.k1 ^ 0x646f72616e646f6dULL;
    std::uint64_t v2 = hash_key_.k0 ^ 0x6c7967656e657261ULL;
    std::uint64_t v3 = hash_key_.k1 ^ 0x7465646279746573ULL;
    const auto absorb = [&](std::uint64_t m) {
        v3 ^= m;
        detail::sip_round(v0, v1, v2, v3);
        v0 ^= m;
    };
    for (const std::uint64_t m : w) absorb(m);
    absorb(std::uint64_t{sizeof w} << 56);
    v2 ^= 0xff;
    for (int i = 0; i < 3; ++i) detail::sip_round(v0, v1, v2, v3);
    return static_cast<std::uint32_t>(v0 ^ v1 ^ v2 ^ v3);
}

std::uint32_t NatTable::find(const Key& k, std::uint32_t h) const noexcept {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
        const Slot& s = slots_[i];
        if (s.ref == kNone) return kNone;
        if (s.hash != h) continue;
        const Key other = view_key(entries_[s.ref >> 2], static_cast<int>(s.ref & 3));
        if (same_key(k.t, k.family, k.protocol, other.t, other.family, other.protocol))
            return static_cast<std::uint32_t>(i);
    }
}

void NatTable::grow_index() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    const std::size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
        if (s.ref == kNone) continue;
        std::size_t i = s.hash & mask;
        while (slots_[i].ref != kNone) i = (i + 1) & mask;
        slots_[i] = s;
    }
}

// Calls fn(view, key) for each view of the entry that differs from the views before it: a
// connection with only source NAT has M = O, one with only destination NAT has M = R'.
template <class Fn> void NatTable::for_each_view(std::uint32_t entry, Fn&& fn) const {
    const Entry& e = entries_[entry];
    const Key keys[kViews] = {view_key(e, 0), view_key(e, 1), view_key(e, 2)};
    for (int v = 0; v < kViews; ++v) {
        bool repeat = false;
        for (int u = 0; u < v; ++u) repeat = repeat || keys[u].t == keys[v].t;
        if (!repeat) fn(v, keys[v]);
    }
}

void NatTable::index(std::uint32_t entry) {
    // Load at most one half: probes stay short, and the index never fills.
    if ((slots_used_ + kViews) * 2 > slots_.size()) grow_index();
    for_each_view(entry, [&](int view, const Key& k) {
        const std::uint32_t h = hash(k);
        const std::uint32_t ref = (entry << 2) | static_cast<std::uint32_t>(view);
        const std::uint32_t at = find(k, h);
        if (at != kNone) { // another connection's view: the newest one wins
            slots_[at].ref = ref;
            return;
        }
        const std::size_t mask = slots_.size() - 1;
        std::size_t i = h & mask;
        while (slots_[i].ref != kNone) i = (i + 1) & mask;
        slots_[i] = Slot{ref, h};
        ++slots_used_;
    });
}

void NatTable::unindex(std::uint32_t entry) noexcept {
    for_each_view(entry, [&](int view, const Key& k) {
        const std::uint32_t at = find(k, hash(k));
        if (at != kNone && slots_[at].ref == ((entry << 2) | static_cast<std::uint32_t>(view)))
            erase_slot(at);
    });
}

// Backward-shift deletion: the slots after a hole move up unless already at or past their
// home, so that no probe sequence is cut and no tombstone accumulates.
void NatTable::erase_slot(std::uint32_t slot) noexcept {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = slot;
    for (std::size_t j = (i + 1) & mask; slots_[j].ref != kNone; j = (j + 1) & mask) {
        const std::size_t home = slots_[j].hash & mask;
        const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            slots_[i] = slots_[j];
            i = j;
        }
    }
    slots_[i] = Slot{};
    --slots_used_;
}

void NatTable::link(List& list, std::uint32_t entry) noexcept {
    Entry& e = entries_[entry];
    e.prev = list.tail;
    e.next = kNone;
    if (list.tail != kNone)
        entries_[list.tail].next = entry;
    else
        list.head = entry;
    list.tail = entry;
}

void NatTable::unlink(List& list, std::uint32_t entry) noexcept {
    Entry& e = entries_[entry];
    (e.prev != kNone ? entries_[e.prev].next : list.head) = e.next;
    (e.next != kNone ? entries_[e.next].prev : list.tail) = e.prev;
    e.prev = e.next = kNone;
}

void NatTable::insert(const NatEvent& ev, State state) {
    if (used_ >= cfg_.max_entries) evict_one();
    std::uint32_t idx = 0;
    if (!free_.empty()) {
        idx = free_.back();
        free_.pop_back();
    } else {
        idx = static_cast<std::uint32_t>(entries_.size());
        entries_.emplace_back();
    }
    Entry& e = entries_[idx];
    e.orig = ev.orig;
    e.reply = ev.reply;
    e.family = ev.family;
    e.protocol = ev.protocol;
    e.dump_gen = dump_gen_;
    e.state = state;
    e.destroyed = ev.time;
    link(state == State::live ? live_ : dead_, idx);
    index(idx);
    ++used_;
    if (state == State::live) ++stats_.live;
}

void NatTable::destroy(std::uint32_t entry, Nanos when) noexcept {
    Entry& e = entries_[entry];
    unlink(live_, entry);
    e.state = State::dead;
    e.destroyed = when;
    link(dead_, entry);
    --stats_.live;
}

void NatTable::release(std::uint32_t entry) noexcept {
    Entry& e = entries_[entry];
    unindex(entry);
    if (e.state == State::live) --stats_.live;
    unlink(e.state == State::live ? live_ : dead_, entry);
    e.state = State::free;
    free_.push_back(entry);
    --used_;
}

void NatTable::evict_one() noexcept {
    // A destroyed connection goes first: it leaves soon anyway, and a live one evicted would
    // be missed for the rest of its life.
    const std::uint32_t victim = dead_.head != kNone ? dead_.head : live_.head;
    if (victim == kNone) return;
    release(victim);
    ++stats_.evicted;
}

void NatTable::sweep(Nanos when) noexcept {
    for (std::uint32_t i = live_.head; i != kNone;) {
        const std::uint32_t next = entries_[i].next;
        if (entries_[i].dump_gen != dump_gen_) {
            destroy(i, when);
            ++stats_.swept;
        }
        i = next;
    }
}

std::uint32_t NatTable::find_orig(const NatEvent& ev) const noexcept {
    const Key k{ev.orig, ev.family, ev.protocol};
    const std::uint32_t at = find(k, hash(k));
    // Only the connection's own original tuple identifies it; another's view that happens to
    // look the same does not.
    if (at == kNone || (slots_[at].ref & 3) != 0) return kNone;
    return slots_[at].ref >> 2;
}

void NatTable::apply(const NatEvent& ev) {
    switch (ev.kind) {
    case NatEventKind::dump_begin:
        ++dump_gen_;
        break;
    case NatEventKind::dump_end:
        sweep(ev.time);
        break;
    case NatEventKind::create:
    case NatEventKind::destroy: {
        if (!ev.nated()) break;
        const std::uint32_t at = find_orig(ev);
        const bool create = ev.kind == NatEventKind::create;
        if (at != kNone) {
            Entry& e = entries_[at];
            if (e.reply == ev.reply && e.state == State::live) {
                if (create)
                    e.dump_gen = dump_gen_; // known already (a dump after the event)
                else
                    destroy(at, ev.time);
                break;
            }
            if (!create && e.reply == ev.reply) break; // destroyed already (swept)
            release(at);                               // the tuple was reused by a new connection
        }
        insert(ev, create ? State::live : State::dead);
        break;
    }
    }
    stats_.entries = used_;
}

std::optional<NatTranslation> NatTable::lookup(const FlowRecord& rec) noexcept {
    const NatTuple t{endpoint(rec, true), endpoint(rec, false)};
    Key k{t, rec.family, rec.key.protocol};
    std::uint32_t at = find(k, hash(k));
    const bool reply = at == kNone;
    if (reply) {
        k.t = t.inverted();
        at = find(k, hash(k));
    }
    if (at == kNone) {
        ++stats_.not_found;
        return std::nullopt;
    }
    ++stats_.found;
    const Entry& e = entries_[slots_[at].ref >> 2];
    const NatTuple& o = e.orig;
    const NatTuple& r = e.reply;
    if (!reply)
        return NatTranslation{t.src == o.src ? r.dst : o.src, t.dst == o.dst ? r.src : o.dst,
                              false};
    return NatTranslation{t.src == r.src ? o.dst : r.src, t.dst == r.dst ? o.src : r.dst, true};
}

void NatTable::expire(Nanos now) noexcept {
    while (dead_.head != kNone && now - entries_[dead_.head].destroyed >= cfg_.grace) {
        release(dead_.head);
        ++stats_.expired;
    }
    stats_.entries = used_;
}

void NatTable::set_max_entries(std::size_t max_entries) {
    cfg_.max_entries = std::clamp<std::size_t>(max_entries, 1, kMaxEntries);
    while (used_ > cfg_.max_entries) evict_one();
    stats_.entries = used_;
}

} // namespace nflowd
