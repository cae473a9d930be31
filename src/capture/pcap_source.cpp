#include "nflowd/pcap_source.hpp"

#include "nflowd/byte_reader.hpp"
#include "nflowd/netlink_align.hpp"
#include "nflowd/prefix_tag.hpp"

#include <pcap/dlt.h>
#include <pcap/pcap.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace nflowd {

namespace {

// libpcap hands most LINKTYPE_ values back unchanged as the DLT_ value (<pcap/dlt.h>), but raw
// IP may come back as 12 (DLT_RAW almost everywhere), 14 (DLT_RAW on OpenBSD and BSD/OS) or
// 101 (LINKTYPE_RAW, when a libpcap does not map it); dlt.h names only this platform's one.
constexpr int kLinkRawBsd = 14;
constexpr int kLinkRawUnmapped = 101;

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;
constexpr std::uint16_t kEtherVlan = 0x8100;
constexpr std::uint16_t kEtherQinq = 0x88a8;
constexpr std::uint16_t kEtherQinqOld = 0x9100; // pre-802.1ad QinQ, still seen on switches

constexpr std::size_t kEthernetHeader = 14;
constexpr std::size_t kMacLen = 6;
constexpr std::uint16_t kVlanIdMask = 0x0fff;
constexpr std::size_t kVlanTag = 4;
constexpr std::size_t kSllHeader = 16;
constexpr std::size_t kSll2Header = 20;
constexpr std::size_t kNflogHeader = 4;
constexpr std::size_t kNflogTlvHeader = 4;

constexpr std::uint16_t kNflogTlvIndev = 4;
constexpr std::uint16_t kNflogTlvOutdev = 5;
constexpr std::uint16_t kNflogTlvPhysindev = 6; // bridge ports, present only when bridged
constexpr std::uint16_t kNflogTlvPhysoutdev = 7;
constexpr std::uint16_t kNflogTlvPayload = 9;
constexpr std::uint16_t kNflogTlvPrefix = 10;
// The link layer (issue 13): values big-endian as the kernel sent them, like the interfaces.
constexpr std::uint16_t kNflogTlvHwtype = 15;
constexpr std::uint16_t kNflogTlvHwheader = 16;
constexpr std::uint16_t kNflogTlvHwlen = 17;
constexpr std::uint16_t kNflogTlvVlan = 20; // nested: NFULA_VLAN_PROTO 1, NFULA_VLAN_TCI 2
constexpr std::uint16_t kNflogVlanTci = 2;
constexpr std::uint16_t kArphrdEther = 1;

// NFLOG TLV headers are in the byte order of the host that captured them; libpcap swaps them
// to ours when it reads a file written on a host of the other endianness.
std::uint16_t load_host16(const std::byte* p) noexcept {
    std::uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

bool is_ip_version(std::span<const std::byte> ip) noexcept {
    if (ip.empty()) return false;
    const unsigned version = std::to_integer<unsigned>(ip[0]) >> 4;
    return version == 4 || version == 6;
}

// The big-endian ethertype at `at` of a frame at least at + 2 bytes long.
std::uint16_t ethertype_at(std::span<const std::byte> frame, std::size_t at) noexcept {
    ByteReader r(frame.subspan(at));
    return r.u16();
}

// Steps over any stack of VLAN tags, then keeps the payload if the ethertype is IP. `type` is
// the outermost ethertype and `off` where the first tag (802.1Q layout) or the payload starts.
// The outermost tag's VLAN id goes to `vlan` (the service VLAN of a QinQ stack, the one the
// capturing port saw), as an 802.1Q-aware exporter would report it.
LinkResult ethertype_to_ip(std::span<const std::byte> frame, std::uint16_t type, std::size_t off,
                           std::span<const std::byte>& ip, std::uint16_t& vlan) noexcept {
    bool outermost = true;
    while (type == kEtherVlan || type == kEtherQinq || type == kEtherQinqOld) {
        if (frame.size() < off + kVlanTag) return LinkResult::malformed;
        if (outermost) vlan = ethertype_at(frame, off) & kVlanIdMask;
        outermost = false;
        type = ethertype_at(frame, off + 2);
        off += kVlanTag;
    }
    if (type != kEtherIpv4 && type != kEtherIpv6) return LinkResult::not_ip;
    if (off >= frame.size()) return LinkResult::malformed;
    ip = frame.subspan(off);
    return LinkResult::ip;
}

// The interface TLVs carry a big-endian ifindex. The record holds both the bridge (logical)
// and, when bridged, its port (physical): they land in meta only as NflogSource would report
// them, so live and --read put the same packet in the same flow.
struct NflogInterfaces {
    std::uint32_t in = kUnknownIfindex;
    std::uint32_t out = kUnknownIfindex;
    std::uint32_t phys_in = kUnknownIfindex;
    std::uint32_t phys_out = kUnknownIfindex;
    bool has_phys_in = false;
    bool has_phys_out = false;

    void take(std::span<const std::byte> value, std::uint16_t type) noexcept {
        ByteReader r(value);
        const std::uint32_t ifindex = r.u32();
        if (!r.ok()) return;
        switch (type) {
        case kNflogTlvIndev:
            in = ifindex;
            break;
        case kNflogTlvOutdev:
            out = ifindex;
            break;
        case kNflogTlvPhysindev:
            phys_in = ifindex, has_phys_in = true;
            break;
        case kNflogTlvPhysoutdev:
            phys_out = ifindex, has_phys_out = true;
            break;
        default:
            break;
        }
    }
    void apply(PacketMeta& meta, bool physdev) const noexcept {
        meta.in_if = physdev && has_phys_in ? phys_in : in;
        meta.out_if = physdev && has_phys_out ? phys_out : out;
    }
};

// The hardware header, VLAN and prefix TLVs, read as NflogSource reads the live attributes:
// MACs only from a 14-byte Ethernet header, the VLAN id from the nested TCI, the prefix's tag.
struct NflogLink {
    std::uint16_t hwtype = 0;
    std::uint16_t hwlen = 0;
    std::span<const std::byte> header;
    std::uint16_t vlan = 0;
    PrefixTag tag;

    // `value` is the TLV's value as far as the capture holds it.
    void take(std::span<const std::byte> value, std::uint16_t type) noexcept {
        ByteReader r(value);
        if (type == kNflogTlvHwtype && value.size() >= 2) hwtype = r.u16();
        if (type == kNflogTlvHwlen && value.size() >= 2) hwlen = r.u16();
        if (type == kNflogTlvHwheader) header = value;
        if (type == kNflogTlvVlan) vlan = nested_tci(value);
        if (type == kNflogTlvPrefix) {
            const std::string_view text(reinterpret_cast<const char*>(value.data()), value.size());
            tag = parse_prefix_tag(text.substr(0, text.find('\0')));
        }
    }
    static std::uint16_t nested_tci(std::span<const std::byte> nest) noexcept {
        std::size_t off = 0;
        while (off + kNflogTlvHeader <= nest.size()) {
            const std::uint16_t len = load_host16(nest.data() + off);
            const std::uint16_t type = load_host16(nest.data() + off + 2);
            if (len < kNflogTlvHeader || len > nest.size() - off) break;
            if (type == kNflogVlanTci && len >= kNflogTlvHeader + 2)
                return ethertype_at(nest, off + kNflogTlvHeader) & kVlanIdMask;
            off += netlink_align(len);
        }
        return 0;
    }
    void apply(PacketMeta& meta) const noexcept {
        meta.obs_point = tag.obs_point;
        if (tag.direction != Direction::unknown) meta.direction = tag.direction;
        LinkLayer& link = meta.link;
        link.vlan = vlan;
        if (hwtype != kArphrdEther || hwlen != kEthernetHeader || header.size() < kEthernetHeader)
            return;
        std::memcpy(link.dst_mac.data(), header.data(), kMacLen);
        std::memcpy(link.src_mac.data(), header.data() + kMacLen, kMacLen);
    }
};

bool is_interface_tlv(std::uint16_t type) noexcept {
    return type == kNflogTlvIndev || type == kNflogTlvOutdev || type == kNflogTlvPhysindev ||
           type == kNflogTlvPhysoutdev;
}

LinkResult nflog_to_ip(std::span<const std::byte> frame, std::span<const std::byte>& ip,
                       PacketMeta& meta, bool physdev) noexcept {
    if (frame.size() < kNflogHeader || std::to_integer<unsigned>(frame[1]) != 0)
        return LinkResult::malformed;
    std::size_t off = kNflogHeader;
    bool have_payload = false;
    NflogInterfaces ifs;
    NflogLink link;
    while (off + kNflogTlvHeader <= frame.size()) {
        const std::uint16_t len = load_host16(frame.data() + off);
        const std::uint16_t type = load_host16(frame.data() + off + 2);
        if (len < kNflogTlvHeader) break; // would loop forever, or lies about its size
        const std::size_t value_at = off + kNflogTlvHeader;
        const std::size_t value_len = len - kNflogTlvHeader;
        const std::size_t avail = frame.size() - value_at;
        if (type == kNflogTlvPayload) {
            // A payload cut by the capture snaplen is still an IP packet's first bytes.
            if (avail == 0) break;
            ip = frame.subspan(value_at, value_len < avail ? value_len : avail);
            have_payload = true;
        } else if (is_interface_tlv(type) && value_len >= 4) {
            ifs.take(frame.subspan(value_at), type);
        } else {
            link.take(frame.subspan(value_at, value_len < avail ? value_len : avail), type);
        }
        off += netlink_align(len);
    }
    ifs.apply(meta, physdev);
    link.apply(meta);
    // tcpdump asks NFLOG for a packet copy, so a record without payload was cut or is garbage.
    if (!have_payload) return LinkResult::malformed;
    return is_ip_version(ip) ? LinkResult::ip : LinkResult::not_ip;
}

// Ethernet, SLL and SLL2: a fixed header holding the ethertype at `type_at`.
LinkResult cooked_to_ip(std::span<const std::byte> frame, std::size_t header, std::size_t type_at,
                        std::span<const std::byte>& ip, LinkLayer& link) noexcept {
    if (frame.size() < header) return LinkResult::malformed;
    return ethertype_to_ip(frame, ethertype_at(frame, type_at), header, ip, link.vlan);
}

// An Ethernet frame: destination MAC, source MAC, then the ethertype and any tags.
LinkResult ethernet_to_ip(std::span<const std::byte> frame, std::span<const std::byte>& ip,
                          LinkLayer& link) noexcept {
    if (frame.size() < kEthernetHeader) return LinkResult::malformed;
    std::memcpy(link.dst_mac.data(), frame.data(), kMacLen);
    std::memcpy(link.src_mac.data(), frame.data() + kMacLen, kMacLen);
    return cooked_to_ip(frame, kEthernetHeader, 2 * kMacLen, ip, link);
}

LinkResult raw_to_ip(std::span<const std::byte> frame, std::span<const std::byte>& ip) noexcept {
    if (frame.empty()) return LinkResult::malformed;
    if (!is_ip_version(frame)) return LinkResult::not_ip;
    ip = frame;
    return LinkResult::ip;
}

} // namespace

LinkResult link_to_ip(int linktype, std::span<const std::byte> frame,
                      std::span<const std::byte>& ip, PacketMeta& meta, bool physdev) noexcept {
    ip = {};
    meta.in_if = kUnknownIfindex;
    meta.out_if = kUnknownIfindex;
    meta.link = LinkLayer{};
    meta.direction = Direction::unknown; // a capture's, unless an NFLOG prefix tag says
    meta.obs_point = 0;
    switch (linktype) {
    case DLT_EN10MB:
        return ethernet_to_ip(frame, ip, meta.link);
    case DLT_LINUX_SLL:
        return cooked_to_ip(frame, kSllHeader, 14, ip, meta.link);
    case DLT_LINUX_SLL2:
        // SLL2 puts the protocol first; tags, if any, follow the whole header.
        return cooked_to_ip(frame, kSll2Header, 0, ip, meta.link);
    case DLT_RAW:
    case kLinkRawBsd:
    case kLinkRawUnmapped:
    case DLT_IPV4:
    case DLT_IPV6:
        return raw_to_ip(frame, ip);
    case DLT_NFLOG:
        return nflog_to_ip(frame, ip, meta, physdev);
    default:
        return LinkResult::not_ip;
    }
}

void PcapSource::Closer::operator()(pcap_t* p) const noexcept {
    pcap_close(p);
}

namespace {
bool supported_linktype(int lt) noexcept {
    switch (lt) {
    case DLT_EN10MB:
    case DLT_RAW:
    case kLinkRawBsd:
    case kLinkRawUnmapped:
    case DLT_LINUX_SLL:
    case DLT_IPV4:
    case DLT_IPV6:
    case DLT_NFLOG:
    case DLT_LINUX_SLL2:
        return true;
    default:
        return false;
    }
}

constexpr std::size_t kReadBuffer = 1 << 20;

std::string display_name(const std::string& path) {
    return path == "-" ? "<stdin>" : path;
}
} // namespace

PcapSource::PcapSource(const std::string& path, bool physdev) : physdev_(physdev) {
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    // Our own FILE with a large buffer: libpcap reads each record with two small freads, and
    // the default 4 KiB stdio buffer turns a big trace into hundreds of thousands of reads.
    FILE* file = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
    if (!file)
        throw std::runtime_error("cannot read pcap file " + display_name(path) + ": " +
                                 std::strerror(errno));
    std::setvbuf(file, nullptr, _IOFBF, kReadBuffer);
    // Nanosecond precision makes libpcap scale microsecond files up, so one code path serves both.
    pcap_.reset(pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_NANO, errbuf));
    if (!pcap_ && file != stdin) std::fclose(file); // on failure libpcap leaves the FILE to us
    if (!pcap_) {
        std::string reason = errbuf;
        // libpcap names the file itself for open() failures; say it once.
        if (reason.starts_with(path + ": ")) reason.erase(0, path.size() + 2);
        throw std::runtime_error("cannot read pcap file " + display_name(path) + ": " + reason);
    }
    linktype_ = pcap_datalink(pcap_.get());
    if (!supported_linktype(linktype_)) {
        const char* name = pcap_datalink_val_to_name(linktype_);
        throw std::runtime_error("pcap file " + display_name(path) + ": unsupported link type " +
                                 std::to_string(linktype_) +
                                 (name ? std::string(" (") + name + ")" : std::string()));
    }
}

bool PcapSource::next(std::span<const std::byte>& ip, PacketMeta& meta) {
    for (;;) {
        pcap_pkthdr* hdr = nullptr;
        const u_char* data = nullptr;
        const int rc = pcap_next_ex(pcap_.get(), &hdr, &data);
        if (rc == PCAP_ERROR_BREAK) return false;
        if (rc == PCAP_ERROR) {
            // A capture killed mid-write ends with half a record: keep what came before.
            const char* err = pcap_geterr(pcap_.get());
            if (std::strstr(err, "truncated") != nullptr) {
                ++stats_.malformed;
                return false;
            }
            throw std::runtime_error(std::string("reading pcap file: ") + err);
        }
        if (rc != 1) continue;
        ++stats_.frames;
        // caplen can exceed len only in a corrupt file; never trust more than was stored.
        const std::span<const std::byte> frame(reinterpret_cast<const std::byte*>(data),
                                               hdr->caplen);
        if (const auto got = link_to_ip(linktype_, frame, ip, meta, physdev_);
            got != LinkResult::ip) {
            ++(got == LinkResult::malformed ? stats_.malformed : stats_.non_ip);
            continue;
        }
        meta.time = static_cast<Nanos>(hdr->ts.tv_sec) * kNanosPerSecond +
                    static_cast<Nanos>(hdr->ts.tv_usec);
        // The record's original length less the link header: a BIG TCP packet's only length
        // (its IPv4 total length is 0). An NFLOG record's length is its TLVs', not the packet's.
        const auto link_header = static_cast<std::size_t>(ip.data() - frame.data());
        meta.wire_len = linktype_ != DLT_NFLOG && hdr->len > link_header
                            ? static_cast<std::uint32_t>(hdr->len - link_header)
                            : 0;
        return true;
    }
}

} // namespace nflowd
