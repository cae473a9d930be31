// Turns the first captured bytes of an IP packet (as NFLOG or a pcap delivers them) into
// a PacketInfo; decides what is accounted and keeps the per-cause counters.
#pragma once

#include "nflowd/packet.hpp"
#include "nflowd/stats_fields.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

// Error idiom (parse): per packet a ParseResult plus a per-cause counter; never throws.
namespace nflowd {

// Metadata that comes with a captured packet from its source, not from its bytes.
struct PacketMeta {
    Nanos time = 0;
    std::uint32_t in_if = kUnknownIfindex;
    std::uint32_t out_if = kUnknownIfindex;
};

enum class ParseResult : std::uint8_t {
    accounted, // full L3+L4 header seen
    fragment,  // non-first fragment: accounted with ports 0
    truncated, // capture cut inside the L4 header: accounted with ports 0
    ipv6,      // recognised, not accounted (NetFlow v5 carries IPv4 only)
    invalid,   // not accounted: bad version, IHL < 5, total length < header, cut in IP header
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
    std::uint64_t ipv6 = 0;
    std::uint64_t invalid = 0;

    static constexpr auto fields() {
        using F = StatField<ParseStats>;
        constexpr auto c = StatKind::counter;
        return std::array{
            F{"packets", &ParseStats::packets, c, "packets", "Packets offered to the parser"},
            F{"accounted", &ParseStats::accounted, c, "packets",
              "Packets accounted, fragments and truncated ones included"},
            F{"fragments", &ParseStats::fragments, c, "packets", "IP fragments"},
            F{"truncated", &ParseStats::truncated, c, "packets",
              "Packets captured too short for their transport header"},
            F{"ipv6_skipped", &ParseStats::ipv6, c, "packets", "IPv6 packets, not exported by v5"},
            F{"invalid", &ParseStats::invalid, c, "packets", "Packets that are not valid IP"},
        };
    }
};

// Parses an IP packet starting at bytes[0] (no link-layer header). Never reads past
// bytes.size(). On an accounted result `out` is filled; otherwise it is left unspecified.
ParseResult parse_ip_packet(std::span<const std::byte> bytes, const PacketMeta& meta,
                            PacketInfo& out) noexcept;

// parse_ip_packet plus counting, for the per-packet path.
class HeaderParser {
  public:
    ParseResult parse(std::span<const std::byte> bytes, const PacketMeta& meta,
                      PacketInfo& out) noexcept;
    const ParseStats& stats() const noexcept { return stats_; }
    void reset_stats() noexcept { stats_ = {}; }

  private:
    ParseStats stats_;
};

} // namespace nflowd
