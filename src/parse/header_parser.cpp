#include "nflowd/header_parser.hpp"

#include "nflowd/byte_reader.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace nflowd {

namespace {

constexpr std::size_t kIpv4MinHeaderLen = 20;
constexpr std::uint32_t kIpv6HeaderLen = 40;
// The top three bits of the field are flags; only a non-zero offset means "not the first
// fragment". MF alone still carries the L4 header, so ipt_NETFLOW parses it normally.
constexpr std::uint16_t kFragmentOffsetMask = 0x1fff;
constexpr std::uint32_t kIpv4MaxLen = 65535;

// IPv6 next-header values the extension-header walk knows.
constexpr std::uint8_t kHopByHop = 0;
constexpr std::uint8_t kRouting = 43;
constexpr std::uint8_t kFragment = 44;
constexpr std::uint8_t kDestinationOptions = 60;
constexpr std::uint8_t kIcmpv6 = 58;
constexpr std::uint8_t kJumboOption = 0xc2; // RFC 2675
constexpr std::uint16_t kIpv6FragmentOffsetMask = 0xfff8;
constexpr std::uint32_t kIpv6MaxLen = kIpv6HeaderLen + 65535;

// Like ipt_NETFLOW's skb_header_pointer() calls, a header that is not all there yields no
// ports at all (TCP needs its 14 bytes up to the flags), never half a key. ICMP type/code and
// IGMP's type belong to IPv4, ICMPv6's to IPv6 (the same protocol number means nothing in the
// other family).
template <class Packet> ParseResult parse_l4(std::span<const std::byte> l4, Packet& out) noexcept {
    constexpr bool v6 = std::is_same_v<Packet, PacketInfo6>;
    ByteReader r{l4};
    const std::uint8_t protocol = out.key.protocol;
    if (protocol == IPPROTO_TCP) {
        const std::uint16_t src_port = r.u16();
        const std::uint16_t dst_port = r.u16();
        r.skip(9); // sequence, acknowledgement, data offset
        const std::uint8_t flags = r.u8();
        if (!r.ok()) return ParseResult::truncated;
        out.key.src_port = src_port;
        out.key.dst_port = dst_port;
        out.tcp_flags = flags;
    } else if (has_ports(protocol)) { // UDP, SCTP, UDP-Lite
        const std::uint16_t src_port = r.u16();
        const std::uint16_t dst_port = r.u16();
        if (!r.ok()) return ParseResult::truncated;
        out.key.src_port = src_port;
        out.key.dst_port = dst_port;
    } else if (protocol == (v6 ? kIcmpv6 : std::uint8_t{IPPROTO_ICMP})) {
        const std::uint16_t type_code = r.u16(); // type << 8 | code, as NetFlow v5 wants it
        if (!r.ok()) return ParseResult::truncated;
        out.key.dst_port = type_code;
    } else if (!v6 && protocol == IPPROTO_IGMP) {
        // ipt_NETFLOW stores the type byte in its big-endian port field unconverted, so on
        // x86 collectors read type << 8 (0x1100 for a query): ICMP's layout without a code.
        const std::uint8_t type = r.u8();
        if (!r.ok()) return ParseResult::truncated;
        out.key.dst_port = static_cast<std::uint16_t>(type << 8U);
    }
    return ParseResult::accounted;
}

// The RFC 2675 jumbo payload length among a hop-by-hop header's options, 0 if none.
std::uint32_t jumbo_length(std::span<const std::byte> options) noexcept {
    ByteReader r{options};
    while (r.remaining() > 0) {
        const std::uint8_t type = r.u8();
        if (type == 0) continue; // Pad1 has no length byte
        const std::uint8_t len = r.u8();
        if (type == kJumboOption && len == 4) return r.u32(); // 0 if cut
        r.skip(len);
    }
    return 0;
}

// Where the IPv6 extension headers end: the transport protocol and its offset, or why the walk
// stopped (fragment: a non-first fragment; truncated: a header cut, `protocol` is its number).
struct Ipv6Walk {
    std::uint8_t protocol;
    std::size_t l4 = kIpv6HeaderLen;
    ParseResult result = ParseResult::accounted;
    std::uint32_t jumbo = 0;
};

// Every header moves at least 8 bytes on and a cut one ends the walk, so it ends within the
// capture whatever the headers claim.
Ipv6Walk walk_extensions(std::span<const std::byte> bytes, std::uint8_t next) noexcept {
    Ipv6Walk w{next};
    const auto stop = [&w](ParseResult why) {
        w.result = why;
        return w;
    };
    for (;;) {
        ByteReader r{bytes.subspan(std::min(w.l4, bytes.size()))};
        const std::uint8_t header = w.protocol;
        const std::uint8_t following = r.u8();
        if (header == kFragment) {
            r.skip(1);
            const std::uint16_t offset = r.u16();
            r.skip(4); // identification
            if (!r.ok()) return stop(ParseResult::truncated);
            w.protocol = following;
            w.l4 += 8;
            // Offset 0 with M set is the first fragment: its transport header is here.
            if ((offset & kIpv6FragmentOffsetMask) != 0) return stop(ParseResult::fragment);
            continue;
        }
        if (header != kHopByHop && header != kRouting && header != kDestinationOptions) return w;
        const std::size_t len = (std::size_t{r.u8()} + 1) * 8;
        if (!r.ok() || r.remaining() + 2 < len) return stop(ParseResult::truncated);
        // Only the first header may be hop-by-hop (RFC 8200 4.3).
        if (header == kHopByHop && w.l4 == kIpv6HeaderLen)
            w.jumbo = jumbo_length(bytes.subspan(w.l4 + 2, len - 2));
        w.protocol = following;
        w.l4 += len;
    }
}

// A payload length of 0: a jumbogram (its hop-by-hop option says the length) or BIG TCP over
// IPv6, whose GRO packets no longer carry that option (Linux 6.x); then only the capture
// layer knows the length, as for IPv4's BIG TCP.
ParseResult ipv6_zero_payload(std::uint32_t jumbo, const PacketMeta& meta,
                              std::uint32_t& length) noexcept {
    if (meta.wire_len > kIpv6MaxLen) {
        length = meta.wire_len;
        return ParseResult::accounted;
    }
    if (meta.wire_len != 0) return ParseResult::invalid; // it would have fitted the field
    if (jumbo <= 65535 || jumbo > ~std::uint32_t{0} - kIpv6HeaderLen)
        return ParseResult::unknown_length;
    length = static_cast<std::uint32_t>(kIpv6HeaderLen + jumbo);
    return ParseResult::accounted;
}

// An IPv4 total length of 0 is BIG TCP (Linux 6.3+): a GRO/GSO TCP packet above 64 KiB whose
// real length only the skb knows (the kernel's iph_totlen()). Its length can then only come
// from the capture layer; without it the packet is counted, not accounted with a made-up size.
ParseResult big_tcp_length(std::uint8_t protocol, const PacketMeta& meta,
                           std::uint32_t& length) noexcept {
    if (protocol != IPPROTO_TCP) return ParseResult::invalid;
    if (meta.wire_len == 0) return ParseResult::unknown_length;
    // The kernel only zeroes the field when the length does not fit it.
    if (meta.wire_len <= kIpv4MaxLen) return ParseResult::invalid;
    length = meta.wire_len;
    return ParseResult::accounted;
}

} // namespace

ParseResult parse_ip_packet(std::span<const std::byte> bytes, const PacketMeta& meta,
                            PacketInfo& out) noexcept {
    // Read the whole fixed header first and judge it once: the reader yields zeros past the
    // end, and a short capture is rejected below through ok().
    ByteReader ip{bytes};
    const std::uint8_t version_ihl = ip.u8();
    const std::uint8_t tos = ip.u8();
    const std::uint16_t total_len = ip.u16();
    ip.skip(2); // identification
    const std::uint16_t fragment = ip.u16();
    ip.skip(1); // TTL
    const std::uint8_t protocol = ip.u8();
    ip.skip(2); // checksum: unset on locally sent packets with offload, so not checked
    const std::uint32_t src_addr = ip.u32();
    const std::uint32_t dst_addr = ip.u32();

    const unsigned version = version_ihl >> 4U;
    if (version == 6) {
        return bytes.size() >= kIpv6HeaderLen ? ParseResult::ipv6 : ParseResult::invalid;
    }
    const std::size_t header_len = std::size_t{version_ihl & 0x0fU} * 4;
    if (!ip.ok() || version != 4 || header_len < kIpv4MinHeaderLen) return ParseResult::invalid;
    std::uint32_t length = total_len;
    if (length == 0) {
        const ParseResult r = big_tcp_length(protocol, meta, length);
        if (r != ParseResult::accounted) return r;
    }
    if (length < header_len) return ParseResult::invalid;

    out.key = FlowKey{};
    out.key.src_addr = src_addr;
    out.key.dst_addr = dst_addr;
    out.key.in_if = meta.in_if;
    out.key.protocol = protocol;
    out.key.tos = tos;
    out.key.direction = meta.direction;
    out.key.obs_point = meta.obs_point;
    out.link = meta.link;
    out.time = meta.time;
    out.out_if = meta.out_if;
    out.octets = length;
    out.tcp_flags = 0;
    out.src_mask = 0;
    out.dst_mask = 0;

    if ((fragment & kFragmentOffsetMask) != 0) return ParseResult::fragment;
    // Cut inside the IP options: addresses, protocol, TOS and length are known, so it is
    // accounted like ipt_NETFLOW would (it always has the whole header), with ports 0.
    if (bytes.size() < header_len) return ParseResult::truncated;

    // The packet ends at its total length: bytes after it (Ethernet padding in a pcap) are
    // not an L4 header, just as the kernel trims them before NFLOG sees the packet.
    const std::size_t end = std::min<std::size_t>(bytes.size(), length);
    return parse_l4(bytes.subspan(header_len, end - header_len), out);
}

ParseResult parse_ipv6_packet(std::span<const std::byte> bytes, const PacketMeta& meta,
                              PacketInfo6& out) noexcept {
    ByteReader ip{bytes};
    const std::uint32_t version_class_label = ip.u32();
    const std::uint16_t payload_len = ip.u16();
    const std::uint8_t next = ip.u8();
    ip.skip(1 + 32); // hop limit, addresses
    if (!ip.ok() || (version_class_label >> 28) != 6) return ParseResult::invalid;

    // Bytes after the packet's end (Ethernet padding) are no extension header.
    const std::size_t end = payload_len != 0
                                ? std::min<std::size_t>(bytes.size(), kIpv6HeaderLen + payload_len)
                                : bytes.size();
    const Ipv6Walk w = walk_extensions(bytes.first(end), next);
    std::uint32_t length = kIpv6HeaderLen + payload_len;
    if (payload_len == 0) {
        const ParseResult r = ipv6_zero_payload(w.jumbo, meta, length);
        if (r != ParseResult::accounted) return r;
    }

    out.key = FlowKey6{};
    std::memcpy(out.key.src_addr.data(), bytes.data() + 8, 16);
    std::memcpy(out.key.dst_addr.data(), bytes.data() + 24, 16);
    out.key.in_if = meta.in_if;
    out.key.direction = meta.direction; // IPv6 is only accounted for v9/IPFIX
    out.key.obs_point = meta.obs_point;
    out.key.protocol = w.protocol;
    out.key.tos = static_cast<std::uint8_t>(version_class_label >> 20);
    out.flow_label = version_class_label & 0xfffffU;
    out.link = meta.link;
    out.time = meta.time;
    out.out_if = meta.out_if;
    out.octets = length;
    out.tcp_flags = 0;
    out.src_mask = 0;
    out.dst_mask = 0;
    if (w.result != ParseResult::accounted) return w.result;
    const std::size_t l4_end = std::min<std::size_t>(bytes.size(), length);
    if (w.l4 > l4_end) return ParseResult::truncated; // headers claim more than the packet
    return parse_l4(bytes.subspan(w.l4, l4_end - w.l4), out);
}

ParseResult HeaderParser::parse(std::span<const std::byte> bytes, const PacketMeta& meta,
                                ParsedPacket& out) noexcept {
    // IPv4 stays the straight path: one well-predicted test of the switch first.
    if (ipv6_ && !bytes.empty() && (std::to_integer<unsigned>(bytes[0]) >> 4U) == 6) {
        out.family = Family::ipv6;
        const ParseResult r = parse_ipv6_packet(bytes, meta, out.v6);
        stats_.ipv6_accounted += is_accounted(r) ? 1U : 0U;
        return count(r, meta, out.v6.octets);
    }
    out.family = Family::ipv4;
    const ParseResult r = parse_ip_packet(bytes, meta, out.v4);
    // Only v9/IPFIX export the direction (what set_ipv6 says too): v5 flows must not split
    // by hook, nor hold what they cannot export.
    if (!ipv6_) {
        out.v4.key.direction = Direction::unknown;
        out.v4.key.obs_point = 0;
        out.v4.link = LinkLayer{}; // nor MACs and VLAN (FlowTable stores none then)
    }
    return count(r, meta, out.v4.octets);
}

} // namespace nflowd
