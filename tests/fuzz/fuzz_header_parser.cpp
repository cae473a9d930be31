// libFuzzer: any bytes as a captured IP packet, through the parser, aggregation and a flow
// table, checking the accounting invariants on the way.
#include "nflowd/aggregation.hpp"
#include "nflowd/flow_table.hpp"
#include "nflowd/header_parser.hpp"

#include <netinet/in.h>

#include <cstdint>
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
    // Odd sizes come with a length from the capture layer (above 64 KiB, as BIG TCP's are),
    // so both sides of the total-length-0 rule are reached.
    const std::uint32_t wire_len = size % 2 == 1 ? 65536U + static_cast<std::uint32_t>(size) : 0;
    const auto r = nflowd::parse_ip_packet(bytes, nflowd::PacketMeta{now, 1, 2, wire_len}, p);
    if (r == nflowd::ParseResult::unknown_length && wire_len != 0) std::abort();
    if (nflowd::is_accounted(r)) {
        // Octets come from the total length field, never from the capture; a field of 0
        // (BIG TCP) takes the capture layer's length.
        if (size < 10) std::abort();
        const unsigned total = (unsigned(data[2]) << 8) | data[3];
        if (p.octets != (total != 0 ? total : wire_len)) std::abort();
        if (total == 0 && data[9] != IPPROTO_TCP) std::abort();
        aggregation.apply(p);
        const auto before = table.stats().packets + table.stats().dropped_packets;
        table.add(p, out);
        if (table.stats().packets + table.stats().dropped_packets != before + 1) std::abort();
        table.expire(now, out);
        out.clear();
    }
    return 0;
}
