// libFuzzer: any bytes as a captured IP packet (IPv4 or IPv6), through the parser, aggregation
// and the flow tables of both families, checking the accounting invariants on the way.
#include "nflowd/aggregation.hpp"
#include "nflowd/flow_table.hpp"
#include "nflowd/header_parser.hpp"

#include <netinet/in.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

namespace {

// What the fixed header says an accounted packet's octets are; 0 when the capture decides
// (IPv4 total length 0, IPv6 payload length 0).
std::uint32_t header_length(const std::uint8_t* data, bool v6) {
    return v6 ? (data[4] << 8 | data[5]) == 0 ? 0 : 40U + (unsigned(data[4]) << 8 | data[5])
              : (unsigned(data[2]) << 8) | data[3];
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto aggregation =
        nflowd::Aggregation::parse("10.0.0.0/8=16,0.0.0.0/0=24,2001:db8::/32=48,::/0=60,80-89=80");
    static nflowd::FlowBudget budget(1000);
    static nflowd::FlowTable table(nflowd::FlowTableConfig{256, 0, 1, 2}, budget);
    static nflowd::FlowTable6 table6(nflowd::FlowTableConfig{256, 0, 1, 2}, budget);
    static nflowd::HeaderParser parser;
    static std::vector<nflowd::FlowRecord> out;
    static nflowd::Nanos now = 0;

    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    nflowd::ParsedPacket p;
    now += nflowd::kNanosPerMilli * 100;
    // Odd sizes come with a length from the capture layer (above 64 KiB, as BIG TCP's are),
    // so both sides of the length-0 rules are reached; one size in three has IPv6 refused.
    const std::uint32_t wire_len = size % 2 == 1 ? 65576U + static_cast<std::uint32_t>(size) : 0;
    parser.set_ipv6(size % 3 != 0);
    // One size in five has a jumbo MTU on the input interface (1): oversize compares with it.
    static const auto jumbo =
        std::make_shared<const nflowd::LinkMtus>(nflowd::LinkMtus{{1500, 9000}});
    parser.set_mtus(size % 5 == 0 ? jumbo : nullptr);
    const auto before_stats = parser.stats();
    const auto r = parser.parse(bytes, nflowd::PacketMeta{now, 1, 2, wire_len}, p);
    const auto& s = parser.stats();
    if (s.packets != s.accounted + s.ipv6 + s.invalid + s.unknown_length) std::abort();
    if (r == nflowd::ParseResult::unknown_length && wire_len != 0) std::abort();
    if (r == nflowd::ParseResult::ipv6 && parser.ipv6()) std::abort();
    if (!nflowd::is_accounted(r)) return 0;
    const bool v6 = p.family == nflowd::Family::ipv6;
    if (v6 != (s.ipv6_accounted != before_stats.ipv6_accounted)) std::abort();
    if (size < (v6 ? 40U : 10U)) std::abort();
    // Octets come from the length field, never from the capture; a field of 0 takes the
    // capture layer's length (or, for IPv6, a jumbo option above 64 KiB).
    const std::uint32_t octets = v6 ? p.v6.octets : p.v4.octets;
    const std::uint32_t want = header_length(data, v6);
    if (want != 0 ? octets != want : wire_len != 0 ? octets != wire_len : !v6 || octets <= 65575U)
        std::abort();
    if (!v6 && want == 0 && data[9] != IPPROTO_TCP) std::abort();
    if ((s.oversize != before_stats.oversize) != (octets > (size % 5 == 0 ? 9000U : 1500U)))
        std::abort();
    const auto accounted = [](const auto& t) {
        return t.stats().packets + t.stats().dropped_packets;
    };
    const auto before = accounted(table) + accounted(table6);
    if (v6) {
        aggregation.apply(p.v6);
        table6.add(p.v6, out);
    } else {
        aggregation.apply(p.v4);
        table.add(p.v4, out);
    }
    if (accounted(table) + accounted(table6) != before + 1) std::abort();
    table.expire(now, out);
    table6.expire(now, out);
    for (const auto& rec : out)
        if (rec.family == nflowd::Family::ipv6 && (rec.key.src_addr != 0 || rec.key.dst_addr != 0))
            std::abort();
    out.clear();
    if (budget.count() != table.size() + table6.size()) std::abort();
    return 0;
}
