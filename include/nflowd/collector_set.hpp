// The UDP side of export: one connected socket per collector, every datagram to each of
// them, per-collector counters. A dead or unreachable collector never blocks or slows the
// others, and one with no route yet is kept and retried, never refused.
#pragma once

#include "nflowd/ipfix_encoder.hpp"
#include "nflowd/stats_fields.hpp"
#include "nflowd/unique_fd.hpp"

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nflowd {

struct Destination {
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    // As the operator wrote it, normalised: "192.0.2.1:2055", "[::1]:2055", "10.0.0.1:2055@10".
    std::string text;
    std::optional<ExportProtocol> protocol; // "@5|@9|@10"; none = the global --protocol
    // The normalised text determines the address; sockaddr_storage has no operator==.
    friend bool operator==(const Destination& a, const Destination& b) { return a.text == b.text; }
};

constexpr std::uint16_t kDefaultCollectorPort = 2055;

// "a.b.c.d[:port][@version],[v6addr]:port[@version],..." -> destinations. Throws
// std::invalid_argument naming the bad entry. An empty list is an error.
std::vector<Destination> parse_destinations(std::string_view spec);

struct CollectorStats {
    std::string destination;
    std::uint64_t datagrams = 0;
    std::uint64_t bytes = 0;
    std::uint64_t err_buffer_full = 0; // EAGAIN/ENOBUFS: our send buffer is full
    std::uint64_t err_refused = 0;     // ECONNREFUSED: port unreachable came back
    std::uint64_t err_unreachable = 0; // no route (connect or send failed), network down
    std::uint64_t err_other = 0;
    std::uint64_t templates = 0;       // v9/IPFIX template records sent
    std::uint64_t options_records = 0; // v9/IPFIX options data records sent
    std::uint64_t skipped_ipv6 = 0;    // IPv6 flows a v5 destination cannot carry
    int sndbuf = 0;   // SO_SNDBUF as the kernel reports it (a setting, not a counter)
    int protocol = 5; // the NetFlow version it gets (a setting)

    static constexpr auto fields() {
        using F = StatField<CollectorStats>;
        constexpr auto c = StatKind::counter;
        return std::array{
            F{"datagrams", &CollectorStats::datagrams, c, "datagrams", "Datagrams sent"},
            F{"bytes", &CollectorStats::bytes, c, "bytes", "Bytes sent"},
            F{"errors_buffer_full", &CollectorStats::err_buffer_full, c, "errors",
              "Sends refused because the socket buffer was full"},
            F{"errors_refused", &CollectorStats::err_refused, c, "errors",
              "Sends refused by the destination (port unreachable)"},
            F{"errors_unreachable", &CollectorStats::err_unreachable, c, "errors",
              "Datagrams not sent because no route led to the destination"},
            F{"errors_other", &CollectorStats::err_other, c, "errors", "Other send errors"},
            F{"templates", &CollectorStats::templates, c, "records",
              "Template records sent (v9, IPFIX)"},
            F{"options_records", &CollectorStats::options_records, c, "records",
              "Options data records sent (v9, IPFIX)"},
            F{"skipped_ipv6", &CollectorStats::skipped_ipv6, c, "flows",
              "IPv6 flows not sent because the destination gets NetFlow v5"},
        };
    }
};

class CollectorSet {
  public:
    // Opens one non-blocking UDP socket per destination; sndbuf > 0 sets SO_SNDBUF (forced
    // when privileged). Throws std::system_error naming the destination when a socket cannot
    // be made or set up. A destination that cannot be connected (no route yet) is kept: it is
    // not a bad configuration, and send() connects it once a route appears.
    CollectorSet(std::vector<Destination> destinations, int sndbuf);

    // Sends to every collector. Returns how many accepted it (0 = the datagram is lost).
    // An unconnected collector is connected first; if that fails the datagram is counted
    // unreachable for it. After an unreachable error it is connected afresh at the next send.
    std::size_t send(std::span<const std::byte> datagram) noexcept;

    // What one collector did with a datagram: `sent`, and whether an error for an earlier
    // datagram (refused, unreachable) was reported on the way: the collector may have lost
    // state, so a v9/IPFIX stream sends its templates again.
    struct SendResult {
        bool sent = false;
        bool trouble = false;
    };
    SendResult send_to(std::size_t index, std::span<const std::byte> datagram) noexcept;
    // Takes (and counts) an error the kernel holds for the collector's socket (an ICMP answer
    // to an earlier datagram) without sending: true if there was one. One getsockopt.
    bool take_error(std::size_t index) noexcept;
    const Destination& destination(std::size_t index) const noexcept {
        return collectors_[index].dest;
    }
    CollectorStats& stats(std::size_t index) noexcept { return collectors_[index].stats; }

    void set_sndbuf(int sndbuf);
    std::vector<CollectorStats> stats() const;
    void reset_stats() noexcept; // zeroes the counters, keeps destination and sndbuf
    // A collector present in `previous` too keeps counting from its figures there, so that
    // swapping the destination list does not restart the counters of the ones that stay.
    void carry_stats_from(const CollectorSet& previous) noexcept;
    std::size_t size() const noexcept { return collectors_.size(); }

  private:
    struct Collector {
        Destination dest;
        UniqueFd fd;
        CollectorStats stats;
        bool connected = false;
    };
    static bool connect_collector(Collector& c) noexcept;
    static bool send_one(Collector& c, std::span<const std::byte> datagram) noexcept;
    std::vector<Collector> collectors_;
};

} // namespace nflowd
