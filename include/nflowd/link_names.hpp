// Interface names from rtnetlink: an RTM_GETLINK dump, then RTMGRP_LINK updates (new, renamed,
// re-aliased and removed links), published as immutable LinkTable snapshots for the exporter
// and, apart, interface MTUs (LinkMtus) for the readers' `oversize` count.
#pragma once

#include "nflowd/clock.hpp"
#include "nflowd/link_mtu.hpp"
#include "nflowd/link_table.hpp"
#include "nflowd/snmp_rules.hpp"
#include "nflowd/stats_fields.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

struct mnl_socket;
struct nlmsghdr;

// Error idiom (capture): what the kernel sends is validated and counted (malformed, errors,
// enobufs), never thrown; setup and socket failures throw std::system_error.
namespace nflowd {

struct LinkStats {
    std::uint64_t known = 0;     // links in the published table
    std::uint64_t dumps = 0;     // complete RTM_GETLINK dumps applied
    std::uint64_t changes = 0;   // tables published with a new generation
    std::uint64_t events = 0;    // RTM_NEWLINK / RTM_DELLINK updates received
    std::uint64_t enobufs = 0;   // socket overruns: updates lost, a new dump requested
    std::uint64_t malformed = 0; // messages failing validation (framing, attributes, lengths)
    std::uint64_t errors = 0;    // dumps the kernel refused or interrupted, each redone

    static constexpr auto fields() {
        using F = StatField<LinkStats>;
        constexpr auto c = StatKind::counter;
        return std::array{
            F{"known", &LinkStats::known, StatKind::gauge, "links", "Interfaces known by name"},
            F{"dumps", &LinkStats::dumps, c, "dumps", "Complete interface dumps applied"},
            F{"changes", &LinkStats::changes, c, "changes",
              "Interface name tables published with a change"},
            F{"events", &LinkStats::events, c, "messages", "Interface updates received"},
            F{"enobufs", &LinkStats::enobufs, c, "overruns",
              "Interface update socket overruns (ENOBUFS), each followed by a new dump"},
            F{"malformed", &LinkStats::malformed, c, "messages",
              "Malformed rtnetlink link messages"},
            F{"errors", &LinkStats::errors, c, "dumps",
              "Interface dumps refused or interrupted by the kernel, each redone"},
        };
    }
};

namespace detail {
// One RTM_NEWLINK or RTM_DELLINK, validated. The views point into the message.
struct LinkMessage {
    bool is_new = false;   // RTM_NEWLINK (else RTM_DELLINK)
    bool relevant = false; // false: another family's notification (a bridge port's state)
    std::uint32_t ifindex = 0;
    std::string_view name;  // NEWLINK: 1 to kMaxLinkName bytes
    std::string_view alias; // empty when the link has none
    std::uint32_t mtu = 0;  // IFLA_MTU, 0 when absent
};
// Parses one message of type RTM_NEWLINK or RTM_DELLINK whose nlmsg_len lies within the
// buffer. False when malformed: short header, attributes that do not fit (libmnl's walker
// and mnl_attr_validate), a name or alias without its NUL or too long, an MTU that is not a
// u32, no name, ifindex 0.
bool parse_link_message(const nlmsghdr* nlh, LinkMessage& out) noexcept;
} // namespace detail

// The table as the kernel's messages make it, without the socket: what LinkNames runs, and
// what the tests and the fuzzer feed with crafted datagrams.
class LinkState {
  public:
    explicit LinkState(SnmpRules rules = {}) : rules_(std::move(rules)) {}

    // A dump was requested with sequence `seq` from port `portid`: its entries build a fresh
    // table that replaces the current one at its NLMSG_DONE, so links removed while updates
    // were lost disappear then. Updates arriving meanwhile apply to both.
    void begin_dump(std::uint32_t seq, std::uint32_t portid);
    bool dumping() const noexcept { return dump_.has_value(); }
    // A dump is needed: an overrun, a refused or interrupted dump. Cleared by begin_dump().
    bool needs_dump() const noexcept { return needs_dump_; }
    void request_dump() noexcept { needs_dump_ = true; }

    // Walks one datagram as recv() returned it (4-byte aligned, else all malformed). Every
    // length is checked against the buffer; a broken header ends the walk.
    void consume(std::span<const std::byte> datagram, LinkStats& stats);

    // New rules re-map every link at the next snapshot.
    void set_rules(SnmpRules rules);

    // The current table; a new generation when names, aliases, indexes or links changed since
    // the last call (and `stats.changes` counted), else the previous snapshot.
    std::shared_ptr<const LinkTable> snapshot(LinkStats& stats);
    // The MTUs of the same links, apart: an MTU change alone is no new generation (the
    // exporter's options records carry no MTU). A new table only when an MTU changed.
    std::shared_ptr<const LinkMtus> mtu_snapshot();

  private:
    struct Dump { // no member initializers: clang cannot use them before LinkState is complete
        std::uint32_t seq;
        std::uint32_t portid;
        bool interrupted; // NLM_F_DUMP_INTR: the kernel's list changed under it
        std::map<std::uint32_t, LinkInfo> links;
        std::map<std::uint32_t, std::uint32_t> mtus;
    };
    void on_message(const nlmsghdr* nlh, LinkStats& stats);
    void on_dump_end(const nlmsghdr* nlh, LinkStats& stats);
    void apply(const detail::LinkMessage& m, std::map<std::uint32_t, LinkInfo>& links,
               std::map<std::uint32_t, std::uint32_t>& mtus, bool mark_dirty);
    bool from_dump(const nlmsghdr* nlh) const noexcept;

    SnmpRules rules_;
    std::map<std::uint32_t, LinkInfo> links_;     // names and aliases; index set by snapshot()
    std::map<std::uint32_t, std::uint32_t> mtus_; // by ifindex, links that sent IFLA_MTU
    std::optional<Dump> dump_;
    bool needs_dump_ = false;
    bool dirty_ = true; // the first snapshot is a generation, even if empty
    std::uint64_t generation_ = 0;
    std::shared_ptr<const LinkTable> published_ = std::make_shared<const LinkTable>();
    bool mtus_dirty_ = true;
    std::shared_ptr<const LinkMtus> published_mtus_ = std::make_shared<const LinkMtus>();
};

struct LinkNamesConfig {
    SnmpRules rules;
    // Socket receive buffer (bytes, capped by rmem_max; <= 0: the system default): absorbs
    // bursts of updates. An overrun costs a dump, not correctness.
    int rcvbuf = 1 << 20;
    // A full dump this often (<= 0: never): the kernel announces an alias change only on a
    // link that is up (netdev_state_change), so one set on a down link shows up at the next.
    Nanos refresh = 60 * kNanosPerSecond;
};

// Owns the NETLINK_ROUTE socket. One thread, the owner, calls the constructor, receive() and
// set_rules() (the daemon's control thread: it polls fd() with its other sockets and calls
// receive() when readable and on every tick); any thread calls table() and stats().
class LinkNames {
  public:
    // Opens a non-blocking NETLINK_ROUTE socket subscribed to RTMGRP_LINK, then dumps the
    // links and waits (at most 2 s) for the dump to end, so the first table is complete.
    // Needs no privilege. Throws std::system_error when the socket or the dump fails.
    explicit LinkNames(LinkNamesConfig cfg = {});
    ~LinkNames();
    LinkNames(const LinkNames&) = delete;
    LinkNames& operator=(const LinkNames&) = delete;

    int fd() const noexcept;

    // Reads what is queued (at most `budget` datagrams), applies it, asks for a new dump after
    // an overrun (ENOBUFS, counted), a refused dump or when cfg.refresh has passed, and
    // publishes the table if it changed. Call it when fd() is readable and at least once a
    // second (the refresh and a dump whose request failed wait for it).
    // True when a new generation was published. Throws std::system_error on a socket error
    // other than EAGAIN, EINTR and ENOBUFS: the socket is unusable then.
    bool receive(std::size_t budget = 64);
    // Re-maps every link with new rules (a reload); publishes when an index changed.
    void set_rules(SnmpRules rules);

    // The published table: one mutex-guarded pointer copy, for the exporter once per batch.
    // libstdc++ 12's std::atomic<std::shared_ptr> is a lock too, and one TSan cannot see.
    std::shared_ptr<const LinkTable> table() const;
    // Where the readers find the interface MTUs; shared, so it outlives a failed socket
    // (the readers keep the last table).
    std::shared_ptr<const MtuFeed> mtus() const noexcept { return mtus_; }
    LinkStats stats() const noexcept { return published_stats_.load(); }

  private:
    struct SocketCloser {
        void operator()(mnl_socket* s) const noexcept;
    };
    // One recv(): the datagram, or empty (`idle` set when nothing was queued).
    std::span<const std::byte> recv_one(bool& idle);
    // Reads and applies up to `budget` datagrams, then starts a dump if one is needed.
    void drain(std::size_t budget);
    void send_dump();
    bool publish();

    std::unique_ptr<mnl_socket, SocketCloser> sock_;
    std::uint32_t portid_ = 0;
    std::uint32_t seq_ = 0;
    Nanos refresh_ = 0;
    Nanos next_refresh_ = 0; // steady_time() of the next periodic dump
    std::vector<std::byte> buf_;
    LinkState state_;
    LinkStats stats_;
    AtomicStats<LinkStats> published_stats_;
    mutable std::mutex table_mutex_;
    std::shared_ptr<const LinkTable> table_;
    std::shared_ptr<MtuFeed> mtus_ = std::make_shared<MtuFeed>();
};

} // namespace nflowd
