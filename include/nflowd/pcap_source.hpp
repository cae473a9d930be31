// Offline input for `nflowd --read`: walks a pcap file (or stdin) and yields the IP layer
// of each frame with its timestamp, whatever the link type the capture was made on.
#pragma once

#include "nflowd/header_parser.hpp"
#include "nflowd/stats_fields.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>

using pcap_t = struct pcap;

// Error idiom (capture, offline): per frame a LinkResult and PcapStats counters; opening or
// reading the file throws std::runtime_error naming it.
namespace nflowd {

struct PcapStats {
    std::uint64_t frames = 0;    // records read from the file
    std::uint64_t non_ip = 0;    // frames that carry no IPv4/IPv6 (ARP, LLDP, ...)
    std::uint64_t malformed = 0; // link-layer header cut short or inconsistent

    static constexpr auto fields() {
        using F = StatField<PcapStats>;
        constexpr auto c = StatKind::counter;
        return std::array{
            F{"frames", &PcapStats::frames, c, "frames", "Records read from the file"},
            F{"non_ip", &PcapStats::non_ip, c, "frames", "Frames that carry no IP"},
            F{"malformed_frames", &PcapStats::malformed, c, "frames",
              "Frames whose link-layer header is cut short or inconsistent"},
        };
    }
};

class PcapSource {
  public:
    // Opens `path` ("-" = stdin). Supported link types: Ethernet (with 802.1Q/802.1ad tags),
    // Linux cooked SLL and SLL2, raw IP (DLT_RAW, IPV4, IPV6) and NFLOG. Throws
    // std::runtime_error naming the file and the reason (missing, not pcap, other link type).
    // `physdev`: NFLOG captures of bridged packets report the bridge ports, not the bridge
    // (as NflogConfig::physdev does live).
    explicit PcapSource(const std::string& path, bool physdev = false);

    // Reads the next frame carrying IP. `ip` points at the IP header (valid until the next
    // call); meta.time is the frame's timestamp, ifindexes are taken from NFLOG captures and
    // are kUnknownIfindex otherwise. Returns false at end of file.
    bool next(std::span<const std::byte>& ip, PacketMeta& meta);

    const PcapStats& stats() const noexcept { return stats_; }
    int linktype() const noexcept { return linktype_; }

  private:
    struct Closer {
        void operator()(pcap_t* p) const noexcept;
    };
    std::unique_ptr<pcap_t, Closer> pcap_;
    int linktype_ = 0;
    bool physdev_ = false;
    PcapStats stats_;
};

enum class LinkResult { ip, not_ip, malformed };

// Extracts the IP payload of one link-layer frame (exposed for tests and the fuzzer) into
// `ip`: LinkResult::ip, or not_ip for frames carrying no IP, or malformed when the frame is
// cut short or inconsistent. NFLOG's ifindexes: see PcapSource's `physdev`.
LinkResult link_to_ip(int linktype, std::span<const std::byte> frame,
                      std::span<const std::byte>& ip, PacketMeta& meta,
                      bool physdev = false) noexcept;

} // namespace nflowd
