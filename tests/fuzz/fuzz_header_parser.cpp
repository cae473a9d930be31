// libFuzzer: any bytes as a captured IP packet, through the parser, aggregation and a flow
// table, checking the accounting invariants on the way.
#include "nflowd/aggregation.hpp"
#include "nflowd/flow_table.hpp"
#include "nflowd/header_parser.hpp"

#include <cstdlib>
#include <span>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto aggregation =
        nflowd::Aggregation::parse("10.0.0.0/8=16,0.0.0.0/0=24,80-89=80");
    static nflowd::FlowTable table(nflowd::FlowTableConfig{256, 1000, 1, 2});
    static std::vector<nflowd::FlowRecord> out;
    static nflowd::Nanos now = 0;

    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    nflowd::PacketInfo p;
    now += nflowd::kNanosPerMilli * 100;
    const auto r = nflowd::parse_ip_packet(bytes, nflowd::PacketMeta{now, 1, 2}, p);
    if (nflowd::is_accounted(r)) {
        // Octets always come from the total length field, never from the capture.
        if (size < 4 || p.octets != ((unsigned(data[2]) << 8) | data[3])) std::abort();
        aggregation.apply(p);
        const auto before = table.stats().packets + table.stats().dropped_packets;
        table.add(p, out);
        if (table.stats().packets + table.stats().dropped_packets != before + 1) std::abort();
        table.expire(now, out);
        out.clear();
    }
    return 0;
}
