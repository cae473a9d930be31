// libFuzzer: any bytes as a pcap frame of one of the supported link types, then parsed.
#include "nflowd/header_parser.hpp"
#include "nflowd/pcap_source.hpp"

#include <pcap/dlt.h>

#include <cstdlib>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static constexpr int kTypes[] = {DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW,
                                     DLT_IPV4,   DLT_IPV6,      DLT_NFLOG};
    if (size < 1) return 0;
    const int linktype = kTypes[data[0] % std::size(kTypes)];
    const std::vector<std::byte> frame(reinterpret_cast<const std::byte*>(data + 1),
                                       reinterpret_cast<const std::byte*>(data + size));
    std::span<const std::byte> ip;
    nflowd::PacketMeta meta;
    if (nflowd::link_to_ip(linktype, frame, ip, meta) == nflowd::LinkResult::ip) {
        if (ip.data() < frame.data() || ip.data() + ip.size() > frame.data() + frame.size())
            std::abort();
        nflowd::PacketInfo p;
        (void)nflowd::parse_ip_packet(ip, meta, p);
    }
    return 0;
}
