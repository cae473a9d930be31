// What conntrack tells about one NATed connection (its two tuples, created or destroyed):
// the vocabulary shared by the conntrack event source (capture) and the NAT table (cache).
#pragma once

#include "nflowd/packet.hpp"

#include <cstdint>

namespace nflowd {

// One end of a connection. Addresses are held as 16 bytes in network order, an IPv4 address
// IPv4-mapped (::ffff:a.b.c.d) so that one type and one comparison serve both families; the
// port is in host order, 0 for protocols without ports (has_ports), whose ids (ICMP echo id,
// GRE key) no flow key carries.
struct NatEndpoint {
    Ipv6Addr addr{};
    std::uint16_t port = 0;

    static constexpr NatEndpoint ipv4(std::uint32_t host_order, std::uint16_t port) noexcept {
        NatEndpoint e;
        e.addr[10] = 0xff;
        e.addr[11] = 0xff;
        e.addr[12] = static_cast<std::uint8_t>(host_order >> 24);
        e.addr[13] = static_cast<std::uint8_t>(host_order >> 16);
        e.addr[14] = static_cast<std::uint8_t>(host_order >> 8);
        e.addr[15] = static_cast<std::uint8_t>(host_order);
        e.port = port;
        return e;
    }
    // The IPv4 address in host order, as FlowKey holds it (meaningful for Family::ipv4 only).
    constexpr std::uint32_t ipv4_addr() const noexcept {
        return (std::uint32_t{addr[12]} << 24) | (std::uint32_t{addr[13]} << 16) |
               (std::uint32_t{addr[14]} << 8) | std::uint32_t{addr[15]};
    }
    friend bool operator==(const NatEndpoint&, const NatEndpoint&) = default;
};

// One direction of a connection as conntrack records it: source and destination.
struct NatTuple {
    NatEndpoint src;
    NatEndpoint dst;
    constexpr NatTuple inverted() const noexcept { return NatTuple{dst, src}; }
    friend bool operator==(const NatTuple&, const NatTuple&) = default;
};

// What one event says. create/destroy carry a connection; a dump (at start, and again after
// events were lost) is framed by dump_begin and dump_end, its connections sent as `create`
// with `dumped` set, so that the table can end the connections the dump no longer holds.
enum class NatEventKind : std::uint8_t { create, destroy, dump_begin, dump_end };

// natEvent (IPFIX IE 230) as ipt_NETFLOW and nfdump's NEL use it.
constexpr std::uint8_t kNatEventCreate = 1;
constexpr std::uint8_t kNatEventDelete = 2;

struct NatEvent {
    NatEventKind kind = NatEventKind::create;
    Family family = Family::ipv4;
    std::uint8_t protocol = 0;
    bool dumped = false; // a create read from a dump, not an event: the connection may be old
    // Flow time (CLOCK_MONOTONIC): the kernel's conntrack timestamp (start for create, stop for
    // destroy) when net.netfilter.nf_conntrack_timestamp is on, placed like NFLOG's; otherwise
    // the receive time. dump_begin: when the dump was asked for.
    Nanos time = 0;
    NatTuple orig;  // as the first packet arrived, before any NAT
    NatTuple reply; // the reply as it arrives; orig.inverted() unless NATed

    bool nated() const noexcept { return !(orig.inverted() == reply); }
    // The four translated fields of a NAT event record (IPFIX 225-228, IPv6 281/282): where
    // the original direction's packets leave with, source and destination.
    NatEndpoint post_nat_src() const noexcept { return reply.dst; }
    NatEndpoint post_nat_dst() const noexcept { return reply.src; }
    std::uint8_t nat_event_code() const noexcept {
        return kind == NatEventKind::destroy ? kNatEventDelete : kNatEventCreate;
    }
};

} // namespace nflowd
