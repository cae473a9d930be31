// The translations of NATed connections, fed by conntrack events, that the exporter looks up
// per flow record. Owned by one thread (the exporter's); does no I/O and reads no clock.
#pragma once

#include "nflowd/nat_event.hpp"
#include "nflowd/packet.hpp"
#include "nflowd/stats_fields.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace nflowd {

struct NatTableConfig {
    // Connections held at most (live ones and those in their grace period); at the bound the
    // one destroyed earliest is evicted, or, if none is, the oldest live one.
    std::size_t max_entries = 1'000'000;
    // How long a destroyed connection is still found: a flow is exported up to the inactive
    // (or active) timeout after its last packet, so the daemon sets inactive_timeout + margin.
    Nanos grace = 30 * kNanosPerSecond;
};

struct NatTableStats {
    std::uint64_t entries = 0;   // connections held now, live or in their grace period
    std::uint64_t live = 0;      // of those, not destroyed
    std::uint64_t evicted = 0;   // dropped at max_entries
    std::uint64_t expired = 0;   // dropped at the end of their grace period
    std::uint64_t swept = 0;     // live ones a dump no longer held (their destroy was lost)
    std::uint64_t found = 0;     // lookups that found a translation
    std::uint64_t not_found = 0; // lookups that found none (not NATed, or unknown)

    static constexpr auto fields() {
        using F = StatField<NatTableStats>;
        constexpr auto c = StatKind::counter;
        constexpr auto g = StatKind::gauge;
        return std::array{
            F{"entries", &NatTableStats::entries, g, "connections",
              "NATed connections held, live or in their grace period"},
            F{"live", &NatTableStats::live, g, "connections", "NATed connections not destroyed"},
            F{"evicted", &NatTableStats::evicted, c, "connections",
              "Connections dropped at the table's bound"},
            F{"expired", &NatTableStats::expired, c, "connections",
              "Connections dropped at the end of their grace period"},
            F{"swept", &NatTableStats::swept, c, "connections",
              "Connections ended because a dump no longer held them"},
            F{"found", &NatTableStats::found, c, "flows", "Flow lookups that found a translation"},
            F{"not_found", &NatTableStats::not_found, c, "flows",
              "Flow lookups that found no NATed connection"},
        };
    }
};

// The connection's view of a flow on the other side of the NAT. A NAT router rewrites a
// packet's source and destination at different hooks, and an NFLOG rule may sit at any of
// them; so each field is the one the packet does not have where the flow was observed:
// the source after source NAT if the record holds it before, the source before it if the
// record holds it after, and likewise the destination. For the usual FORWARD, INPUT and
// OUTPUT rules (after DNAT, before SNAT: "inside" addresses) that is the outside view on
// both sides: a masqueraded client's flow gets the router's address and port as source,
// a port-forwarded flow the public address and port it was sent to as destination; and a
// record seen before any NAT (raw PREROUTING) gets conntrack's post-NAT tuple, reply.dst
// and reply.src. Ports are 0 for protocols without ports.
struct NatTranslation {
    NatEndpoint src;
    NatEndpoint dst;
    bool reply = false; // the record is of the connection's reply direction
    friend bool operator==(const NatTranslation&, const NatTranslation&) = default;
};

class NatTable {
  public:
    explicit NatTable(const NatTableConfig& cfg = {});

    // Applies one event in the order received. Connections that are not NATed are ignored; a
    // create for an original tuple already held replaces it (the port was reused); a destroy
    // starts the grace period, and one for a connection never seen (its create was lost)
    // still enters it, in its grace period; dump_end ends every live connection the dump
    // since dump_begin did not hold.
    void apply(const NatEvent& ev);
    // The translation for a flow of either direction, counted as found or not found.
    std::optional<NatTranslation> lookup(const FlowRecord& rec) noexcept;
    // Drops the connections destroyed `grace` or longer before `now` (flow time).
    void expire(Nanos now) noexcept;

    // Runtime changes: a lower bound evicts at once; a new grace applies at the next expire().
    void set_max_entries(std::size_t max_entries);
    void set_grace(Nanos grace) noexcept { cfg_.grace = grace < 0 ? 0 : grace; }
    const NatTableConfig& config() const noexcept { return cfg_; }

    std::size_t size() const noexcept { return used_; }
    const NatTableStats& stats() const noexcept { return stats_; }

  private:
    // Where one connection's keys point. A connection is indexed under each distinct view of
    // its original direction: O (before NAT), M (after DNAT, before SNAT) and R' (the reply
    // tuple inverted: after both); a reply-direction flow is found by its inverted key.
    enum class State : std::uint8_t { free, live, dead };
    struct Entry {
        NatTuple orig;
        NatTuple reply;
        Nanos destroyed = 0;
        std::uint32_t prev = kNone;
        std::uint32_t next = kNone;
        std::uint32_t dump_gen = 0;
        Family family = Family::ipv4;
        std::uint8_t protocol = 0;
        State state = State::free;
    };
    struct List {
        std::uint32_t head = kNone;
        std::uint32_t tail = kNone;
    };
    // Open addressing with linear probing: `ref` is entry << 2 | view, kNone when empty.
    struct Slot {
        std::uint32_t ref = kNone;
        std::uint32_t hash = 0;
    };
    struct Key {
        NatTuple t;
        Family family;
        std::uint8_t protocol;
    };
    static constexpr std::uint32_t kNone = 0xFFFF'FFFF;
    static constexpr int kViews = 3;

    Key view_key(const Entry& e, int view) const noexcept;
    template <class Fn> void for_each_view(std::uint32_t entry, Fn&& fn) const;
    std::uint32_t hash(const Key& k) const noexcept;
    // The slot holding `k`, or kNone.
    std::uint32_t find(const Key& k, std::uint32_t h) const noexcept;
    void index(std::uint32_t entry);
    void unindex(std::uint32_t entry) noexcept;
    void erase_slot(std::uint32_t slot) noexcept;
    void grow_index();

    void insert(const NatEvent& ev, State state);
    void destroy(std::uint32_t entry, Nanos when) noexcept;
    void release(std::uint32_t entry) noexcept;
    void evict_one() noexcept;
    void sweep(Nanos when) noexcept;
    void link(List& list, std::uint32_t entry) noexcept;
    void unlink(List& list, std::uint32_t entry) noexcept;
    std::uint32_t find_orig(const NatEvent& ev) const noexcept;

    NatTableConfig cfg_;
    HashKey hash_key_;
    std::vector<Entry> entries_;
    std::vector<std::uint32_t> free_;
    std::vector<Slot> slots_;
    std::size_t slots_used_ = 0;
    std::size_t used_ = 0;
    List live_;
    List dead_; // in the order destroyed: the head expires first
    std::uint32_t dump_gen_ = 0;
    NatTableStats stats_;
};

} // namespace nflowd
