// libFuzzer: any bytes as a protocol, an MTU and a run of IPv4 and IPv6 flow records, encoded
// as v9 or IPFIX and decoded by the tests' independent decoder; every field must come back.
#include "nflowd/ipfix_encoder.hpp"

#include "../unit/export/flow_decoder.hpp"

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

namespace {

using namespace nflowd;

// Takes bytes off the input; zeros once it runs out.
struct Input {
    const std::uint8_t* p;
    std::size_t n;
    std::uint64_t take(std::size_t bytes) {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < bytes; ++i) {
            v = v << 8 | (n != 0 ? *p : 0);
            if (n != 0) ++p, --n;
        }
        return v;
    }
};

FlowRecord random_record(Input& in) {
    FlowRecord r;
    const auto kind = in.take(1);
    r.family = kind & 1 ? Family::ipv6 : Family::ipv4;
    r.key.protocol = static_cast<std::uint8_t>(in.take(1));
    if (kind & 2)
        r.key.protocol = static_cast<std::uint8_t>(r.family == Family::ipv6 ? int{IPPROTO_ICMPV6}
                                                                            : int{IPPROTO_ICMP});
    if (r.family == Family::ipv4) {
        r.key.src_addr = static_cast<std::uint32_t>(in.take(4));
        r.key.dst_addr = static_cast<std::uint32_t>(in.take(4));
    } else {
        for (auto& b : r.src6) b = static_cast<std::uint8_t>(in.take(1));
        for (auto& b : r.dst6) b = static_cast<std::uint8_t>(in.take(1));
        r.flow_label = static_cast<std::uint32_t>(in.take(3)) & 0xfffff;
    }
    r.key.src_port = static_cast<std::uint16_t>(in.take(2));
    r.key.dst_port = static_cast<std::uint16_t>(in.take(2));
    r.key.in_if = static_cast<std::uint32_t>(in.take(4));
    r.key.tos = static_cast<std::uint8_t>(in.take(1));
    r.end_reason = static_cast<EndReason>(1 + in.take(1) % 5);
    r.out_if = static_cast<std::uint32_t>(in.take(4));
    r.packets = static_cast<std::uint32_t>(in.take(4));
    r.octets = static_cast<std::uint32_t>(in.take(4));
    r.first = static_cast<Nanos>(in.take(5)) * 1000; // up to ~12 days after boot, in us
    r.last = r.first + static_cast<Nanos>(in.take(4)) * 1000;
    r.tcp_flags = static_cast<std::uint8_t>(in.take(1));
    r.src_mask = static_cast<std::uint8_t>(in.take(1));
    r.dst_mask = static_cast<std::uint8_t>(in.take(1));
    if (kind & 4) { // a link layer (issue 13): the link templates
        for (auto& b : r.link.src_mac) b = static_cast<std::uint8_t>(in.take(1));
        for (auto& b : r.link.dst_mac) b = static_cast<std::uint8_t>(in.take(1));
        r.link.vlan = static_cast<std::uint16_t>(in.take(2) & 0x0fff);
    }
    if (kind & 8) r.key.obs_point = static_cast<std::uint8_t>(in.take(1)); // a prefix tag
    return r;
}

std::uint64_t mac_value(const std::array<std::uint8_t, 6>& mac) {
    std::uint64_t v = 0;
    for (auto b : mac) v = v << 8 | b;
    return v;
}

// A flow with a link layer or an observation point comes in template 265/266 with their four
// fields, any other without.
void check_link(const FlowRecord& r, const test::DecodedRecord& d) {
    const bool v6 = r.family == Family::ipv6;
    if (!r.extended()) {
        if (d.template_id != (v6 ? kTemplateIpv6 : kTemplateIpv4) || d.has(56) || d.has(138))
            std::abort();
        return;
    }
    if (d.template_id != (v6 ? kTemplateIpv6Link : kTemplateIpv4Link) ||
        d.value(56) != mac_value(r.link.src_mac) || d.value(80) != mac_value(r.link.dst_mac) ||
        d.value(58) != r.link.vlan || d.value(138) != r.key.obs_point)
        std::abort();
}

void check_ipv4_or_6(const FlowRecord& r, const test::DecodedRecord& d) {
    const auto same = [&](std::uint16_t ie, const std::uint8_t* bytes) {
        const auto& f = d.fields.at(ie);
        if (f.size() != 16 || std::memcmp(f.data(), bytes, 16) != 0) std::abort();
    };
    if (r.family == Family::ipv4) {
        if (d.value(8) != r.key.src_addr || d.value(12) != r.key.dst_addr ||
            d.value(9) != r.src_mask || d.value(13) != r.dst_mask)
            std::abort();
    } else {
        same(27, r.src6.data());
        same(28, r.dst6.data());
        if (d.value(31) != r.flow_label || d.value(29) != r.src_mask || d.value(30) != r.dst_mask)
            std::abort();
    }
}

void check(const FlowRecord& r, const test::DecodedRecord& d, bool v9, const ExportTime& t,
           Nanos boot) {
    check_ipv4_or_6(r, d);
    check_link(r, d);
    const bool icmp = r.key.protocol == IPPROTO_ICMP || r.key.protocol == IPPROTO_ICMPV6;
    // v9 has one ICMP_TYPE (32); IPFIX has icmpTypeCodeIPv6 (139) for IPv6.
    const std::uint16_t icmp_ie = r.family == Family::ipv4 || v9 ? 32 : 139;
    if (d.value(7) != r.key.src_port || d.value(11) != r.key.dst_port ||
        d.value(icmp_ie) != (icmp ? r.key.dst_port : 0) || d.value(4) != r.key.protocol ||
        d.value(5) != r.key.tos || d.value(6) != r.tcp_flags ||
        d.value(136) != static_cast<std::uint8_t>(r.end_reason) || d.value(10) != r.key.in_if ||
        d.value(14) != r.out_if || d.value(1) != r.octets || d.value(2) != r.packets)
        std::abort();
    if (v9) {
        // sysUptime 0 is 1 s before boot_time (First/Last never 0 for nfdump).
        const auto up = [&](Nanos x) {
            return static_cast<std::uint32_t>((x - boot + 1'000'000'000) / 1'000'000);
        };
        if (d.value(22) != up(r.first) || d.value(21) != up(r.last)) std::abort();
    } else {
        const auto ms = [&](Nanos x) { return static_cast<std::uint64_t>(t.wall(x) / 1'000'000); };
        if (d.value(152) != ms(r.first) || d.value(153) != ms(r.last)) std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Input in{data, size};
    const bool v9 = in.take(1) & 1;
    const std::size_t mtu = static_cast<std::size_t>(in.take(2));
    const ExportTime t{static_cast<Nanos>(in.take(5)) * 1000,
                       static_cast<Nanos>(in.take(5)) * 1'000'000};
    const V5Params params{
        .boot_time = 0, .engine_type = 0, .engine_id = static_cast<std::uint8_t>(in.take(1))};
    MessageBuilder b(v9 ? ExportProtocol::v9 : ExportProtocol::ipfix, mtu);
    test::FlowDecoder decoder;
    std::vector<FlowRecord> sent;
    std::size_t checked = 0;
    auto drain = [&] {
        const auto msg = b.finish(t, params);
        if (msg.size() > b.mtu()) std::abort();
        const auto m = decoder.decode(msg);
        if (!m || m->domain != params.engine_id) std::abort();
        for (const auto& d : m->records) {
            if (d.options) continue;
            if (checked >= sent.size()) std::abort();
            check(sent[checked++], d, v9, t, params.boot_time);
        }
    };
    if (!b.add_templates(true) || !b.add_sampling(params) || !b.add_stats({1, 2, 3, 4, 5}, params))
        std::abort(); // an empty message at the smallest MTU holds all of them
    if (!b.add_link_templates(false)) {
        drain();
        if (!b.add_link_templates(false)) std::abort(); // and these
    }
    while (in.n != 0) {
        sent.push_back(random_record(in));
        if (b.add_flow(sent.back(), t, params)) continue;
        drain();
        if (!b.add_flow(sent.back(), t, params)) std::abort();
    }
    drain();
    if (checked != sent.size()) std::abort();
    return 0;
}
