// Turns the first captured bytes of an IP packet (as NFLOG or a pcap delivers them) into
// a PacketInfo; decides what is accounted and keeps the per-cause counters.
#pragma once

#include "nflowd/link_mtu.hpp"
#include "nflowd/packet.hpp"
#include "nflowd/stats_fields.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

// Error idiom (parse): per packet a ParseResult plus a per-cause counter; never throws.
namespace nflowd {

// Metadata that comes with a captured packet from its source, not from its bytes.
struct PacketMeta {
    Nanos time = 0;
    std::uint32_t in_if = kUnknownIfindex;
    std::uint32_t out_if = kUnknownIfindex;
    // The whole IP packet's length as the capture layer knows it (a pcap record's original
    // length less its link header), 0 when unknown. Only a BIG TCP packet needs it: its IPv4
    // total length is 0. NFLOG reports no original length (no NFULA_* attribute for it) and
    // copies at most ~64 KiB, so live capture never knows a BIG TCP packet's length.
    std::uint32_t wire_len = 0;
    Direction direction = Direction::unknown; // NFLOG's hook; kept only with set_ipv6(true)
    std::uint8_t obs_point = 0;               // the prefix tag's; kept only with set_ipv6(true)
    LinkLayer link{};                         // MACs, VLAN; kept only with set_ipv6(true)
};

enum class ParseResult : std::uint8_t {
    accounted, // full L3+L4 header seen
    fragment,  // non-first fragment: accounted with ports 0
    truncated, // capture cut inside the IP options or the L4 header: accounted with ports 0
    ipv6,      // IPv6 while IPv6 is not accepted (NetFlow v5 carries IPv4 only): not accounted
    invalid,   // not accounted: bad version, IHL < 5, total length < header, cut in fixed header
    unknown_length, // BIG TCP (IPv4 total length 0) with no wire_len: not accounted, counted
};

constexpr bool is_accounted(ParseResult r) noexcept {
    return r == ParseResult::accounted || r == ParseResult::fragment || r == ParseResult::truncated;
}

// Counters are plain integers: each parser belongs to one thread.
struct ParseStats {
    std::uint64_t packets = 0;   // every packet offered
    std::uint64_t accounted = 0; // including fragments and truncated
    std::uint64_t fragments = 0;
    std::uint64_t truncated = 0;
    std::uint64_t ipv6 = 0;           // skipped: IPv6 not accepted
    std::uint64_t ipv6_accounted = 0; // IPv6 packets among `accounted`
    std::uint64_t invalid = 0;
    std::uint64_t unknown_length = 0; // packets = accounted + ipv6 + invalid + unknown_length
    // Accounted packets longer than the MTU of their interface (in_if, else out_if; see
    // HeaderParser::set_mtus): GRO/GSO/TSO merged them, no link carried them as they are.
    std::uint64_t oversize = 0;
    // Accounted packets the hash sampler kept out of the cache (the dispatcher's, not the
    // parser's: it fills this in what it publishes).
    std::uint64_t sampled_out = 0;

    static constexpr auto fields() {
        using F = StatField<ParseStats>;
        constexpr auto c = StatKind::counter;
        return std::array{
            F{"packets", &ParseStats::packets, c, "packets", "Packets offered to the parser"},
            F{"accounted", &ParseStats::accounted, c, "packets",
              "Packets accounted, fragments and truncated ones included"},
            F{"fragments", &ParseStats::fragments, c, "packets", "IP fragments"},
            F{"truncated", &ParseStats::truncated, c, "packets",
              "Packets captured too short for their IP options or transport header"},
            F{"ipv6_skipped", &ParseStats::ipv6, c, "packets",
              "IPv6 packets not accounted: the configured protocol (v5) cannot carry them"},
            F{"ipv6_accounted", &ParseStats::ipv6_accounted, c, "packets",
              "IPv6 packets accounted (v9, IPFIX), counted in accounted too"},
            F{"invalid", &ParseStats::invalid, c, "packets", "Packets that are not valid IP"},
            F{"unknown_length", &ParseStats::unknown_length, c, "packets",
              "BIG TCP packets (IPv4 total length 0) whose length the capture does not give"},
            F{"oversize", &ParseStats::oversize, c, "packets",
              "Accounted packets longer than their interface's MTU (input, else output; "
              "1500 when unknown): merged by GRO/GSO/TSO"},
            F{"sampled_out", &ParseStats::sampled_out, c, "packets",
              "Accounted packets the hash flow sampler kept out of the flow cache"},
        };
    }
};

// Parses an IPv4 packet starting at bytes[0] (no link-layer header). Never reads past
// bytes.size(). On an accounted result `out` is filled; otherwise it is left unspecified.
// out.octets is the IP total length field, or meta.wire_len for a BIG TCP packet. An IPv6
// packet (whole fixed header captured) yields ParseResult::ipv6.
ParseResult parse_ip_packet(std::span<const std::byte> bytes, const PacketMeta& meta,
                            PacketInfo& out) noexcept;

// Parses an IPv6 packet the same way: extension headers walked (hop-by-hop, routing,
// destination options, fragment) to the transport header; ESP, AH and no-next-header end the
// walk, the flow's protocol is then that header's number with ports 0, as ipt_NETFLOW's. A
// non-first fragment is a `fragment` (ports 0); a capture cut inside an extension header is
// `truncated` (ports 0, protocol the header that was cut). out.octets is 40 + payload
// length; a payload length of 0 takes the hop-by-hop jumbo option's length (RFC 2675) if the
// capture holds one, else meta.wire_len by IPv4's BIG TCP rule (unknown_length without it).
ParseResult parse_ipv6_packet(std::span<const std::byte> bytes, const PacketMeta& meta,
                              PacketInfo6& out) noexcept;

// One parsed packet of either family: `family` says whether v4 or v6 holds it.
struct ParsedPacket {
    Family family = Family::ipv4;
    PacketInfo v4;
    PacketInfo6 v6;
};

// parse_ip_packet/parse_ipv6_packet plus counting, for the per-packet path. IPv6 packets are
// accounted only when accepted (set_ipv6(true): the configured protocol can export them);
// otherwise they are counted as `ipv6` (skipped), as NetFlow v5 needs.
class HeaderParser {
  public:
    explicit HeaderParser(bool ipv6 = false) noexcept : ipv6_(ipv6) {}
    ParseResult parse(std::span<const std::byte> bytes, const PacketMeta& meta,
                      ParsedPacket& out) noexcept;
    void set_ipv6(bool accept) noexcept { ipv6_ = accept; }
    // The interface MTUs `oversize` compares with (kept alive here); null or none set:
    // kDefaultMtu for every interface, as under --read.
    void set_mtus(std::shared_ptr<const LinkMtus> mtus) noexcept {
        mtus_ = std::move(mtus);
        mtu_view_ = mtus_ ? std::span<const std::uint32_t>(mtus_->by_ifindex)
                          : std::span<const std::uint32_t>{};
    }
    bool ipv6() const noexcept { return ipv6_; }
    const ParseStats& stats() const noexcept { return stats_; }
    void reset_stats() noexcept { stats_ = {}; }

  private:
    // Counts one result; `octets` is read only when it is accounted (else unspecified).
    ParseResult count(ParseResult r, const PacketMeta& meta, const std::uint32_t& octets) noexcept {
        // Adding comparisons instead of switching keeps the hot path free of a
        // data-dependent branch.
        ++stats_.packets;
        stats_.accounted += is_accounted(r) ? 1U : 0U;
        stats_.fragments += r == ParseResult::fragment ? 1U : 0U;
        stats_.truncated += r == ParseResult::truncated ? 1U : 0U;
        stats_.ipv6 += r == ParseResult::ipv6 ? 1U : 0U;
        stats_.invalid += r == ParseResult::invalid ? 1U : 0U;
        stats_.unknown_length += r == ParseResult::unknown_length ? 1U : 0U;
        // The interface the packet came in on (GRO merged it there), or for a locally sent
        // one (OUTPUT: no input) the one it leaves by (GSO/TSO).
        const std::uint32_t ifindex = meta.in_if != kUnknownIfindex ? meta.in_if : meta.out_if;
        stats_.oversize += is_accounted(r) && octets > mtu_of(mtu_view_, ifindex) ? 1U : 0U;
        return r;
    }

    ParseStats stats_;
    std::shared_ptr<const LinkMtus> mtus_;
    std::span<const std::uint32_t> mtu_view_; // mtus_->by_ifindex, one indirection less
    bool ipv6_;
};

} // namespace nflowd
