#include "nflowd/pcap_source.hpp"

#include <pcap/pcap.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace nflowd {

namespace {

// LINKTYPE_ values as they appear in files; libpcap hands most of them back unchanged as the
// DLT_ value, but raw IP may come back as 12 (DLT_RAW almost everywhere), 14 (DLT_RAW on
// OpenBSD/BSD/OS) or 101 (LINKTYPE_RAW, when a libpcap does not map it).
constexpr int kLinkEthernet = 1;
constexpr int kLinkRaw12 = 12;
constexpr int kLinkRaw14 = 14;
constexpr int kLinkRaw101 = 101;
constexpr int kLinkSll = 113;
constexpr int kLinkIpv4 = 228;
constexpr int kLinkIpv6 = 229;
constexpr int kLinkNflog = 239;
constexpr int kLinkSll2 = 276;

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;
constexpr std::uint16_t kEtherVlan = 0x8100;
constexpr std::uint16_t kEtherQinq = 0x88a8;
constexpr std::uint16_t kEtherQinqOld = 0x9100; // pre-802.1ad QinQ, still seen on switches

constexpr std::size_t kEthernetHeader = 14;
constexpr std::size_t kVlanTag = 4;
constexpr std::size_t kSllHeader = 16;
constexpr std::size_t kSll2Header = 20;
constexpr std::size_t kNflogHeader = 4;
constexpr std::size_t kNflogTlvHeader = 4;

constexpr std::uint16_t kNflogTlvIndev = 4;
constexpr std::uint16_t kNflogTlvOutdev = 5;
constexpr std::uint16_t kNflogTlvPayload = 9;

std::uint16_t load_be16(const std::byte* p) noexcept {
    return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) |
                                      std::to_integer<unsigned>(p[1]));
}

std::uint32_t load_be32(const std::byte* p) noexcept {
    return (std::uint32_t{std::to_integer<std::uint8_t>(p[0])} << 24) |
           (std::uint32_t{std::to_integer<std::uint8_t>(p[1])} << 16) |
           (std::uint32_t{std::to_integer<std::uint8_t>(p[2])} << 8) |
           std::uint32_t{std::to_integer<std::uint8_t>(p[3])};
}

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

// Steps over any stack of VLAN tags, then keeps the payload if the ethertype is IP. `type` is
// the outermost ethertype and `off` where the first tag (802.1Q layout) or the payload starts.
bool ethertype_to_ip(std::span<const std::byte> frame, std::uint16_t type, std::size_t off,
                     std::span<const std::byte>& ip, bool& malformed) noexcept {
    while (type == kEtherVlan || type == kEtherQinq || type == kEtherQinqOld) {
        if (frame.size() < off + kVlanTag) {
            malformed = true;
            return false;
        }
        type = load_be16(frame.data() + off + 2);
        off += kVlanTag;
    }
    if (type != kEtherIpv4 && type != kEtherIpv6) return false;
    if (off >= frame.size()) {
        malformed = true;
        return false;
    }
    ip = frame.subspan(off);
    return true;
}

bool nflog_to_ip(std::span<const std::byte> frame, std::span<const std::byte>& ip, PacketMeta& meta,
                 bool& malformed) noexcept {
    if (frame.size() < kNflogHeader || std::to_integer<unsigned>(frame[1]) != 0) {
        malformed = true;
        return false;
    }
    std::size_t off = kNflogHeader;
    bool have_payload = false;
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
        } else if ((type == kNflogTlvIndev || type == kNflogTlvOutdev) && value_len >= 4 &&
                   avail >= 4) {
            (type == kNflogTlvIndev ? meta.in_if : meta.out_if) =
                load_be32(frame.data() + value_at);
        }
        off += (std::size_t{len} + 3U) & ~std::size_t{3};
    }
    // tcpdump asks NFLOG for a packet copy, so a record without payload was cut or is garbage.
    if (!have_payload) {
        malformed = true;
        return false;
    }
    return is_ip_version(ip);
}

} // namespace

bool link_to_ip(int linktype, std::span<const std::byte> frame, std::span<const std::byte>& ip,
                PacketMeta& meta, bool& malformed) noexcept {
    malformed = false;
    ip = {};
    meta.in_if = kUnknownIfindex;
    meta.out_if = kUnknownIfindex;
    switch (linktype) {
    case kLinkEthernet:
        if (frame.size() < kEthernetHeader) {
            malformed = true;
            return false;
        }
        return ethertype_to_ip(frame, load_be16(frame.data() + 12), kEthernetHeader, ip, malformed);
    case kLinkSll:
        if (frame.size() < kSllHeader) {
            malformed = true;
            return false;
        }
        return ethertype_to_ip(frame, load_be16(frame.data() + 14), kSllHeader, ip, malformed);
    case kLinkSll2:
        // SLL2 puts the protocol first; tags, if any, follow the whole header.
        if (frame.size() < kSll2Header) {
            malformed = true;
            return false;
        }
        return ethertype_to_ip(frame, load_be16(frame.data()), kSll2Header, ip, malformed);
    case kLinkRaw12:
    case kLinkRaw14:
    case kLinkRaw101:
    case kLinkIpv4:
    case kLinkIpv6:
        if (frame.empty()) {
            malformed = true;
            return false;
        }
        if (!is_ip_version(frame)) return false;
        ip = frame;
        return true;
    case kLinkNflog:
        return nflog_to_ip(frame, ip, meta, malformed);
    default:
        return false;
    }
}

void PcapSource::Closer::operator()(pcap_t* p) const noexcept {
    pcap_close(p);
}

namespace {
bool supported_linktype(int lt) noexcept {
    switch (lt) {
    case kLinkEthernet:
    case kLinkRaw12:
    case kLinkRaw14:
    case kLinkRaw101:
    case kLinkSll:
    case kLinkIpv4:
    case kLinkIpv6:
    case kLinkNflog:
    case kLinkSll2:
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

PcapSource::PcapSource(const std::string& path) {
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
        bool malformed = false;
        if (!link_to_ip(linktype_, frame, ip, meta, malformed)) {
            ++(malformed ? stats_.malformed : stats_.non_ip);
            continue;
        }
        meta.time = static_cast<Nanos>(hdr->ts.tv_sec) * kNanosPerSecond +
                    static_cast<Nanos>(hdr->ts.tv_usec);
        return true;
    }
}

} // namespace nflowd
