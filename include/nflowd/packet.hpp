// The data that flows between pipeline stages: what the parser extracts from one
// packet (a flow key plus per-packet metadata) and what the cache exports (a flow record).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <functional>

namespace nflowd {

// Wall-clock time as nanoseconds since the Unix epoch. Packets carry their capture time,
// the cache and the encoder are driven by it, so offline replay behaves like live capture.
using Nanos = std::int64_t;

constexpr Nanos kNanosPerMilli = 1'000'000;
constexpr Nanos kNanosPerSecond = 1'000'000'000;

// ipt_NETFLOW exports 65535 when an interface is unknown (e.g. locally generated traffic).
constexpr std::uint32_t kUnknownIfindex = 65535;

// Whether a protocol's header starts with source and destination ports (ipt_NETFLOW's list):
// the parser reads them, aggregation may rewrite them.
constexpr bool has_ports(std::uint8_t protocol) noexcept {
    return protocol == IPPROTO_TCP || protocol == IPPROTO_UDP || protocol == IPPROTO_SCTP ||
           protocol == IPPROTO_UDPLITE;
}

// IPv4 flow key, ipt_NETFLOW's: addresses and ports in host byte order.
struct FlowKey {
    std::uint32_t src_addr = 0;
    std::uint32_t dst_addr = 0;
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    std::uint32_t in_if = kUnknownIfindex;
    std::uint8_t protocol = 0;
    std::uint8_t tos = 0;

    friend bool operator==(const FlowKey&, const FlowKey&) = default;
};

// A strong 64-bit mix of the key. Shard selection uses the high half and the hash table the
// low half, so that all flows of one shard still spread over every bucket.
std::uint64_t hash_key(const FlowKey& key) noexcept;

// One accounted packet, after parsing and (later) aggregation.
struct PacketInfo {
    FlowKey key;
    Nanos time = 0;
    std::uint32_t out_if = kUnknownIfindex;
    std::uint32_t octets = 0; // IP total length, never the captured length
    std::uint8_t tcp_flags = 0;
    std::uint8_t src_mask = 0; // prefix lengths set by aggregation, 0 otherwise
    std::uint8_t dst_mask = 0;
};

// A finished flow as exported in one NetFlow v5 record.
struct FlowRecord {
    FlowKey key;
    std::uint32_t out_if = kUnknownIfindex;
    std::uint32_t packets = 0;
    std::uint32_t octets = 0;
    Nanos first = 0;
    Nanos last = 0;
    std::uint8_t tcp_flags = 0;
    std::uint8_t src_mask = 0;
    std::uint8_t dst_mask = 0;
};

} // namespace nflowd
