// The data that flows between pipeline stages: what the parser extracts from one
// packet (a flow key plus per-packet metadata) and what the cache exports (a flow record).
#pragma once

#include <netinet/in.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

namespace nflowd {

// Time in nanoseconds: flow time (see ExportTime below) in the pipeline, wall time since the
// Unix epoch where a name says so. Packets carry their capture time on the flow clock, the
// cache and the encoder are driven by it, so offline replay behaves like live capture.
using Nanos = std::int64_t;

constexpr Nanos kNanosPerMilli = 1'000'000;
constexpr Nanos kNanosPerSecond = 1'000'000'000;

// The pipeline runs on flow time: CLOCK_MONOTONIC when capturing live, so that a step of
// the wall clock never changes when flows expire, and the packets' own timestamps when
// replaying a capture. Records need wall time (v5/v9 header, IPFIX absolute timestamps):
// wall = flow time + wall_offset, the offset sampled when the datagram is built (0 in replay).
struct ExportTime {
    Nanos now = 0; // flow time
    Nanos wall_offset = 0;
    Nanos wall(Nanos flow_time) const noexcept { return flow_time + wall_offset; }
    Nanos wall_now() const noexcept { return now + wall_offset; }
};

// ipt_NETFLOW exports 65535 when an interface is unknown (e.g. locally generated traffic).
constexpr std::uint32_t kUnknownIfindex = 65535;

// Whether a protocol's header starts with source and destination ports (ipt_NETFLOW's list):
// the parser reads them, aggregation may rewrite them.
constexpr bool has_ports(std::uint8_t protocol) noexcept {
    return protocol == IPPROTO_TCP || protocol == IPPROTO_UDP || protocol == IPPROTO_SCTP ||
           protocol == IPPROTO_UDPLITE;
}

// The address family of a flow. IPv4 flows keep their addresses in FlowKey (host order);
// IPv6 flows carry theirs as 16 bytes in network order.
enum class Family : std::uint8_t { ipv4 = 4, ipv6 = 6 };
using Ipv6Addr = std::array<std::uint8_t, 16>;

// Which way a packet crossed the host, from the netfilter hook of the NFLOG rule that logged
// it: PREROUTING and INPUT ingress, OUTPUT and POSTROUTING egress; FORWARD (either way
// through a router), a --read capture, and every flow while no destination gets v9/IPFIX
// (v5 has no field for it) are unknown. Part of the flow key: a packet logged at two hooks
// (PREROUTING and POSTROUTING) makes an ingress and an egress flow, as two observation
// points would. It lives in the keys' tail padding, so no flow grows for it.
enum class Direction : std::uint8_t { unknown = 0, ingress = 1, egress = 2 };

// The link layer a packet arrived with, as its capture reports it: the Ethernet source and
// destination MAC (NFLOG's hardware header, a capture's frame) and the 802.1Q VLAN id of the
// outermost tag. All zero when unknown: no hardware header (locally sent packets, OUTPUT and
// POSTROUTING hooks; raw IP captures), no tag. Exported by v9/IPFIX only, and stored per flow
// only then (FlowTable's link records); a flow's link layer is its first packet's that had one,
// not a key field: the ifindex in the key already tells VLAN sub-interfaces apart.
struct LinkLayer {
    std::array<std::uint8_t, 6> src_mac{};
    std::array<std::uint8_t, 6> dst_mac{};
    std::uint16_t vlan = 0; // 12 bits; 0 = untagged or unknown

    bool empty() const noexcept {
        constexpr std::array<std::uint8_t, 6> kNone{};
        return vlan == 0 && src_mac == kNone && dst_mac == kNone;
    }
    friend bool operator==(const LinkLayer&, const LinkLayer&) = default;
};
static_assert(sizeof(LinkLayer) == 14, "a flow's link record is 14 bytes");

// IPv4 flow key, ipt_NETFLOW's: addresses and ports in host byte order.
struct FlowKey {
    std::uint32_t src_addr = 0;
    std::uint32_t dst_addr = 0;
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    std::uint32_t in_if = kUnknownIfindex;
    std::uint8_t protocol = 0;
    std::uint8_t tos = 0;
    Direction direction = Direction::unknown;
    // observationPointId from the rule's --nflog-prefix tag "obs=N" (PrefixTag), 0 = none:
    // like the direction, kept only for v9/IPFIX, and it splits flows at no memory cost.
    std::uint8_t obs_point = 0;

    friend bool operator==(const FlowKey&, const FlowKey&) = default;
};
static_assert(sizeof(FlowKey) == 20, "the direction and obs_point must stay in the padding");

// IPv6 flow key: the addresses as on the wire (network order), the other fields as FlowKey's
// (ports or ICMPv6 type/code in dst_port, tos = traffic class). 44 bytes.
struct FlowKey6 {
    Ipv6Addr src_addr{};
    Ipv6Addr dst_addr{};
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    std::uint32_t in_if = kUnknownIfindex;
    std::uint8_t protocol = 0;
    std::uint8_t tos = 0;
    Direction direction = Direction::unknown;
    std::uint8_t obs_point = 0;

    friend bool operator==(const FlowKey6&, const FlowKey6&) = default;
};
static_assert(sizeof(FlowKey6) == 44, "the direction and obs_point must stay in the padding");

// A 128-bit SipHash key. Flow keys come from the network, so an unkeyed hash lets a sender
// pick flows that share one bucket (hash flooding); with a secret random key nobody outside
// the process can tell which flows collide. Each flow table holds its own, re-drawn at each
// rehash (see FlowTable).
struct HashKey {
    std::uint64_t k0 = 0; // key bytes 0-7, little-endian, as SipHash reads them
    std::uint64_t k1 = 0; // key bytes 8-15
    friend bool operator==(const HashKey&, const HashKey&) = default;
};

// 16 bytes from getrandom(2) (the kernel CSPRNG; blocks only before it is first seeded at
// boot). Setup and rehash only, never per packet. Throws std::system_error if it fails.
HashKey random_hash_key();

// SipHash (Aumasson, Bernstein 2012) of any bytes, as the reference implementation: 1-3 is
// the flow hash, 2-4 is here so the paper's own test vectors check the shared construction.
std::uint64_t siphash13(const HashKey& key, std::span<const std::byte> bytes) noexcept;
std::uint64_t siphash24(const HashKey& key, std::span<const std::byte> bytes) noexcept;

// The 18 bytes the flow hash covers: every FlowKey field, little-endian, in declaration
// order (src_addr, dst_addr, src_port, dst_port, in_if, protocol, tos), no padding.
constexpr std::size_t kFlowKeyBytes = 18;
std::array<std::byte, kFlowKeyBytes> flow_key_bytes(const FlowKey& key) noexcept;
// The 42 bytes of an IPv6 key the same way: the addresses as they are (network order), then
// src_port, dst_port, in_if little-endian, protocol, tos.
constexpr std::size_t kFlowKey6Bytes = 42;
std::array<std::byte, kFlowKey6Bytes> flow_key_bytes(const FlowKey6& key) noexcept;

namespace detail {
constexpr std::uint64_t rotl(std::uint64_t x, int b) noexcept {
    return (x << b) | (x >> (64 - b));
}
// One SipRound over the state v[0..3].
constexpr void sip_round(std::uint64_t& v0, std::uint64_t& v1, std::uint64_t& v2,
                         std::uint64_t& v3) noexcept {
    v0 += v1;
    v1 = rotl(v1, 13) ^ v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16) ^ v2;
    v0 += v3;
    v3 = rotl(v3, 21) ^ v0;
    v2 += v1;
    v1 = rotl(v1, 17) ^ v2;
    v2 = rotl(v2, 32);
}
// Eight bytes as SipHash reads them (little-endian); compilers make this one load.
constexpr std::uint64_t load_le64(const std::uint8_t* p) noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{p[i]} << (8 * i);
    return v;
}
// SipHash-1-3 over the given message words (each 8 bytes of the message) and the final block.
template <std::size_t N>
constexpr std::uint64_t siphash13_words(const HashKey& key, const std::array<std::uint64_t, N>& m,
                                        std::uint64_t last) noexcept {
    std::uint64_t v0 = key.k0 ^ 0x736f6d6570736575ULL;
    std::uint64_t v1 = key.k1 ^ 0x646f72616e646f6dULL;
    std::uint64_t v2 = key.k0 ^ 0x6c7967656e657261ULL;
    std::uint64_t v3 = key.k1 ^ 0x7465646279746573ULL;
    const auto absorb = [&](std::uint64_t w) {
        v3 ^= w;
        sip_round(v0, v1, v2, v3);
        v0 ^= w;
    };
    for (const std::uint64_t w : m) absorb(w);
    absorb(last);
    v2 ^= 0xff;
    for (int i = 0; i < 3; ++i) sip_round(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}
} // namespace detail

// SipHash-1-3 of flow_key_bytes(flow) under `key`, equal to siphash13 over those bytes (a
// unit test checks it) but built from the fields in registers: two message words and the
// final block, 6 SipRounds, no memory traffic. Inline because each worker runs it once per
// packet to find the flow's bucket. SipHash is a PRF designed for hash tables fed by an
// adversary: without the key, colliding flows cannot be found offline; 1-3 rounds are what
// Rust's HashMap and Linux's hsiphash use for that purpose.
constexpr std::uint64_t hash_key(const HashKey& key, const FlowKey& flow) noexcept {
    const std::uint64_t m0 = std::uint64_t{flow.src_addr} | (std::uint64_t{flow.dst_addr} << 32);
    const std::uint64_t m1 = std::uint64_t{flow.src_port} | (std::uint64_t{flow.dst_port} << 16) |
                             (std::uint64_t{flow.in_if} << 32);
    const std::uint64_t last =
        (std::uint64_t{kFlowKeyBytes} << 56) | flow.protocol | (std::uint64_t{flow.tos} << 8);
    std::uint64_t v0 = key.k0 ^ 0x736f6d6570736575ULL;
    std::uint64_t v1 = key.k1 ^ 0x646f72616e646f6dULL;
    std::uint64_t v2 = key.k0 ^ 0x6c7967656e657261ULL;
    std::uint64_t v3 = key.k1 ^ 0x7465646279746573ULL;
    const auto absorb = [&](std::uint64_t m) {
        v3 ^= m;
        detail::sip_round(v0, v1, v2, v3);
        v0 ^= m;
    };
    absorb(m0);
    absorb(m1);
    absorb(last);
    v2 ^= 0xff;
    for (int i = 0; i < 3; ++i) detail::sip_round(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

// The same for an IPv6 key: SipHash-1-3 of flow_key_bytes(flow), five message words.
constexpr std::uint64_t hash_key(const HashKey& key, const FlowKey6& flow) noexcept {
    const std::uint64_t m4 = std::uint64_t{flow.src_port} | (std::uint64_t{flow.dst_port} << 16) |
                             (std::uint64_t{flow.in_if} << 32);
    const std::uint64_t last =
        (std::uint64_t{kFlowKey6Bytes} << 56) | flow.protocol | (std::uint64_t{flow.tos} << 8);
    return detail::siphash13_words(
        key,
        std::array{detail::load_le64(&flow.src_addr[0]), detail::load_le64(&flow.src_addr[8]),
                   detail::load_le64(&flow.dst_addr[0]), detail::load_le64(&flow.dst_addr[8]), m4},
        last);
}

// The key of the shard pick: random 64-bit words, drawn once per pipeline; six for an IPv4
// key, twelve for an IPv6 key (one per 32-bit word of it, and the constant).
struct ShardKey {
    std::array<std::uint64_t, 6> a{};
    std::array<std::uint64_t, 12> a6{};
    friend bool operator==(const ShardKey&, const ShardKey&) = default;
};
ShardKey random_shard_key(); // getrandom(2); throws std::system_error

// Picks a flow's worker in the reader, the busiest thread, where SipHash would cost about 10%
// of --read's packets/s; the workers then run SipHash for their buckets. This is vector
// multiply-add-shift (Dietzfelbinger 1996; Thorup 2015), strongly universal: over the
// random key, the high 32 bits of the sum are uniform and pairwise independent for any two
// different flows, so flows chosen without the key spread over the workers like random
// ones, for five independent multiplications. It is no PRF, but its worst case is bounded:
// even flows all sent to one worker still meet SipHash-keyed buckets there, so they cost
// what `--threads 1` costs, never a chain walk per packet. The high half is the hash.
constexpr std::uint64_t shard_hash(const ShardKey& k, const FlowKey& f) noexcept {
    const std::uint64_t ports = (std::uint64_t{f.src_port} << 16) | f.dst_port;
    const std::uint64_t proto_tos = (std::uint64_t{f.protocol} << 8) | f.tos;
    return k.a[0] * f.src_addr + k.a[1] * f.dst_addr + k.a[2] * ports + k.a[3] * f.in_if +
           k.a[4] * proto_tos + k.a[5];
}

// The same construction over an IPv6 key's eleven 32-bit words.
constexpr std::uint64_t shard_hash(const ShardKey& k, const FlowKey6& f) noexcept {
    std::uint64_t h = k.a6[11];
    for (std::size_t i = 0; i < 4; ++i) {
        const auto word = [i](const Ipv6Addr& a) {
            return (std::uint64_t{a[4 * i]} << 24) | (std::uint64_t{a[4 * i + 1]} << 16) |
                   (std::uint64_t{a[4 * i + 2]} << 8) | a[4 * i + 3];
        };
        h += k.a6[i] * word(f.src_addr) + k.a6[4 + i] * word(f.dst_addr);
    }
    const std::uint64_t ports = (std::uint64_t{f.src_port} << 16) | f.dst_port;
    const std::uint64_t proto_tos = (std::uint64_t{f.protocol} << 8) | f.tos;
    return h + k.a6[8] * ports + k.a6[9] * f.in_if + k.a6[10] * proto_tos;
}

// One accounted packet, after parsing and (later) aggregation.
// Ordered so that the 2-byte-aligned link layer fills the holes before the time: 56 bytes.
struct PacketInfo {
    FlowKey key;
    std::uint32_t out_if = kUnknownIfindex;
    std::uint32_t octets = 0; // IP total length, never the captured length
    std::uint8_t tcp_flags = 0;
    std::uint8_t src_mask = 0; // prefix lengths set by aggregation, 0 otherwise
    std::uint8_t dst_mask = 0;
    LinkLayer link{}; // empty unless v9/IPFIX is configured (HeaderParser::set_ipv6)
    Nanos time = 0;
};
static_assert(sizeof(PacketInfo) == 56, "an IPv4 packet's way to its worker");

// One accounted IPv6 packet: PacketInfo's fields with the IPv6 key and the flow label. A
// type of its own so that IPv4 packets stay 56 bytes on their way to the workers.
struct PacketInfo6 {
    FlowKey6 key;
    std::uint32_t flow_label = 0; // 20 bits
    Nanos time = 0;
    std::uint32_t out_if = kUnknownIfindex;
    std::uint32_t octets = 0; // 40 + payload length, never the captured length
    std::uint8_t tcp_flags = 0;
    std::uint8_t src_mask = 0;
    std::uint8_t dst_mask = 0;
    LinkLayer link{};
};

// Why a flow left the cache, with IPFIX's flowEndReason values (RFC 7011 IE 136) so that
// the encoders write it as is.
enum class EndReason : std::uint8_t {
    idle = 1,              // inactive timeout
    active = 2,            // active timeout, or exported early before a counter wraps
    end_of_flow = 3,       // TCP FIN or RST seen
    forced = 4,            // flush, stop, end of a capture
    lack_of_resources = 5, // evicted to make room
};

// A finished flow as the cache hands it to the encoders (v5, v9, IPFIX). For an IPv6 flow
// key.src_addr/dst_addr are 0 and src6/dst6 hold the addresses; the rest of the key (ports,
// ICMP type/code in dst_port, in_if, protocol, tos = traffic class) is shared.
struct FlowRecord {
    FlowKey key;
    Family family = Family::ipv4;
    EndReason end_reason = EndReason::idle;
    Ipv6Addr src6{};
    Ipv6Addr dst6{};
    std::uint32_t flow_label = 0; // IPv6 flow label of the flow's first packet (20 bits)
    std::uint32_t out_if = kUnknownIfindex;
    std::uint32_t packets = 0;
    std::uint32_t octets = 0;
    Nanos first = 0;
    Nanos last = 0;
    std::uint8_t tcp_flags = 0;
    std::uint8_t src_mask = 0;
    std::uint8_t dst_mask = 0;
    LinkLayer link{}; // the first packet's that had one; empty when not stored (v5)

    // Whether v9/IPFIX send it with the extended templates (265-268): a link layer or an
    // observation point to carry.
    bool extended() const noexcept { return !link.empty() || key.obs_point != 0; }
};

} // namespace nflowd
