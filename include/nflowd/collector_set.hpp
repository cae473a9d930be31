// The UDP side of export: one connected socket per collector, every datagram to each of
// them, per-collector counters. A dead or unreachable collector never blocks or slows the
// others, and one with no route yet is kept and retried, never refused.
#pragma once

#include "nflowd/stats_fields.hpp"
#include "nflowd/unique_fd.hpp"

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nflowd {

struct Destination {
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    std::string text; // as the operator wrote it, normalised: "192.0.2.1:2055", "[::1]:2055"
    // The normalised text determines the address; sockaddr_storage has no operator==.
    friend bool operator==(const Destination& a, const Destination& b) { return a.text == b.text; }
};

constexpr std::uint16_t kDefaultCollectorPort = 2055;

// "a.b.c.d[:port],[v6addr]:port,..." -> destinations. Throws std::invalid_argument naming
// the bad entry. An empty list is an error.
std::vector<Destination> parse_destinations(std::string_view spec);

struct CollectorStats {
    std::string destination;
    std::uint64_t datagrams = 0;
    std::uint64_t bytes = 0;
    std::uint64_t err_buffer_full = 0; // EAGAIN/ENOBUFS: our send buffer is full
    std::uint64_t err_refused = 0;     // ECONNREFUSED: port unreachable came back
    std::uint64_t err_unreachable = 0; // no route (connect or send failed), network down
    std::uint64_t err_other = 0;
    int sndbuf = 0; // SO_SNDBUF as the kernel reports it (a setting, not a counter)

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
