#include "nflowd/header_parser.hpp"

#include "nflowd/byte_reader.hpp"

#include <algorithm>

namespace nflowd {

namespace {

constexpr std::size_t kIpv4MinHeaderLen = 20;
constexpr std::size_t kIpv6HeaderLen = 40;
// The top three bits of the field are flags; only a non-zero offset means "not the first
// fragment". MF alone still carries the L4 header, so ipt_NETFLOW parses it normally.
constexpr std::uint16_t kFragmentOffsetMask = 0x1fff;
constexpr std::uint32_t kIpv4MaxLen = 65535;

// Like ipt_NETFLOW's skb_header_pointer() calls, a header that is not all there yields no
// ports at all (TCP needs its 14 bytes up to the flags), never half a key.
ParseResult parse_l4(std::span<const std::byte> l4, PacketInfo& out) noexcept {
    ByteReader r{l4};
    switch (out.key.protocol) {
    case IPPROTO_TCP: {
        const std::uint16_t src_port = r.u16();
        const std::uint16_t dst_port = r.u16();
        r.skip(9); // sequence, acknowledgement, data offset
        const std::uint8_t flags = r.u8();
        if (!r.ok()) return ParseResult::truncated;
        out.key.src_port = src_port;
        out.key.dst_port = dst_port;
        out.tcp_flags = flags;
        return ParseResult::accounted;
    }
    case IPPROTO_UDP:
    case IPPROTO_SCTP:
    case IPPROTO_UDPLITE: {
        const std::uint16_t src_port = r.u16();
        const std::uint16_t dst_port = r.u16();
        if (!r.ok()) return ParseResult::truncated;
        out.key.src_port = src_port;
        out.key.dst_port = dst_port;
        return ParseResult::accounted;
    }
    case IPPROTO_ICMP: {
        const std::uint16_t type_code = r.u16(); // type << 8 | code, as NetFlow v5 wants it
        if (!r.ok()) return ParseResult::truncated;
        out.key.dst_port = type_code;
        return ParseResult::accounted;
    }
    case IPPROTO_IGMP: {
        // ipt_NETFLOW stores the type byte in its big-endian port field unconverted, so on
        // x86 collectors read type << 8 (0x1100 for a query): ICMP's layout without a code.
        const std::uint8_t type = r.u8();
        if (!r.ok()) return ParseResult::truncated;
        out.key.dst_port = static_cast<std::uint16_t>(type << 8U);
        return ParseResult::accounted;
    }
    default:
        return ParseResult::accounted;
    }
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

ParseResult HeaderParser::parse(std::span<const std::byte> bytes, const PacketMeta& meta,
                                PacketInfo& out) noexcept {
    const ParseResult r = parse_ip_packet(bytes, meta, out);
    // Adding comparisons instead of switching keeps the hot path free of a data-dependent
    // branch.
    ++stats_.packets;
    stats_.accounted += is_accounted(r) ? 1U : 0U;
    stats_.fragments += r == ParseResult::fragment ? 1U : 0U;
    stats_.truncated += r == ParseResult::truncated ? 1U : 0U;
    stats_.ipv6 += r == ParseResult::ipv6 ? 1U : 0U;
    stats_.invalid += r == ParseResult::invalid ? 1U : 0U;
    stats_.unknown_length += r == ParseResult::unknown_length ? 1U : 0U;
    // `out` is unspecified unless accounted, hence the && (a well-predicted branch).
    stats_.oversize += is_accounted(r) && out.octets > kEthernetMtu ? 1U : 0U;
    return r;
}

} // namespace nflowd
