// The v9/IPFIX records beyond the plain flow (issue 13): NAT-annotated flows and NAT events,
// and the link-layer templates (MACs, VLAN, observation point) with their NAT variant.
#include "nflowd/ipfix_encoder.hpp"

#include "ipfix_fields.hpp"
#include "ipfix_write.hpp"

#include <cstring>

namespace nflowd {

namespace {

using ipfix::FieldSpec;
using ipfix::put;

std::span<const FieldSpec> nat_template(bool v9, Family family) noexcept {
    if (family == Family::ipv6) return v9 ? std::span(ipfix::kV9Ipv6Nat) : ipfix::kIpfixIpv6Nat;
    return v9 ? std::span(ipfix::kV9Ipv4Nat) : ipfix::kIpfixIpv4Nat;
}

std::span<const FieldSpec> nat_link_template(bool v9, Family family) noexcept {
    if (family == Family::ipv6)
        return v9 ? std::span(ipfix::kV9Ipv6NatLink) : ipfix::kIpfixIpv6NatLink;
    return v9 ? std::span(ipfix::kV9Ipv4NatLink) : ipfix::kIpfixIpv4NatLink;
}

// The translated pair, in the order of kNat4Tail / kNat6Tail.
std::byte* put_nat_pair(std::byte* p, Family family, const NatEndpoint& src,
                        const NatEndpoint& dst) noexcept {
    if (family == Family::ipv6) {
        std::memcpy(p, src.addr.data(), 16);
        std::memcpy(p + 16, dst.addr.data(), 16);
        p += 32;
    } else {
        put(p, src.ipv4_addr(), 4);
        put(p + 4, dst.ipv4_addr(), 4);
        p += 8;
    }
    put(p, src.port, 2);
    put(p + 2, dst.port, 2);
    return p + 4;
}

} // namespace

bool MessageBuilder::add_nat_templates(bool events) {
    const bool v = v9();
    std::size_t size = 0;
    for (auto family : {Family::ipv4, Family::ipv6}) size += 4 + 4 * nat_template(v, family).size();
    if (events) size += 8 + 4 * (ipfix::kNatEvent4.size() + ipfix::kNatEvent6.size());
    std::size_t at = reserve(v ? 0 : 2, size);
    if (at == 0) return false;
    at += ipfix::put_template(&buf_[at], kTemplateIpv4Nat, nat_template(v, Family::ipv4));
    at += ipfix::put_template(&buf_[at], kTemplateIpv6Nat, nat_template(v, Family::ipv6));
    if (events) {
        at += ipfix::put_template(&buf_[at], kTemplateNatEvent4, ipfix::kNatEvent4);
        ipfix::put_template(&buf_[at], kTemplateNatEvent6, ipfix::kNatEvent6);
    }
    templates_ += events ? 4 : 2;
    return true;
}

bool MessageBuilder::add_nat_flow(const FlowRecord& record, const NatTranslation& nat,
                                  const ExportTime& time, const V5Params& params) {
    const bool v6 = record.family == Family::ipv6, link = record.extended();
    const auto plain = ipfix::flow_fields(v9(), record.family, link);
    const std::uint16_t id = link ? (v6 ? kTemplateIpv6NatLink : kTemplateIpv4NatLink)
                                  : (v6 ? kTemplateIpv6Nat : kTemplateIpv4Nat);
    const std::size_t at =
        reserve(id, ipfix::record_size(plain) + (v6 ? kNat6TailSize : kNat4TailSize));
    if (at == 0) return false;
    ipfix::write_flow(&buf_[at], plain, record, time, params.boot_time - ipfix::kV9UptimeLead);
    put_nat_pair(&buf_[at + ipfix::record_size(plain)], record.family, nat.src, nat.dst);
    ++flows_;
    latest_last_ = flows_ == 1 ? record.last : std::max(latest_last_, record.last);
    return true;
}

bool MessageBuilder::add_link_templates(bool nat) {
    const bool v = v9();
    std::size_t size = 0;
    for (auto family : {Family::ipv4, Family::ipv6}) {
        size += 4 + 4 * ipfix::flow_fields(v, family, true).size();
        if (nat) size += 4 + 4 * nat_link_template(v, family).size();
    }
    std::size_t at = reserve(v ? 0 : 2, size);
    if (at == 0) return false;
    at += ipfix::put_template(&buf_[at], kTemplateIpv4Link,
                              ipfix::flow_fields(v, Family::ipv4, true));
    at += ipfix::put_template(&buf_[at], kTemplateIpv6Link,
                              ipfix::flow_fields(v, Family::ipv6, true));
    if (nat) {
        at += ipfix::put_template(&buf_[at], kTemplateIpv4NatLink,
                                  nat_link_template(v, Family::ipv4));
        ipfix::put_template(&buf_[at], kTemplateIpv6NatLink, nat_link_template(v, Family::ipv6));
    }
    templates_ += nat ? 4 : 2;
    return true;
}

bool MessageBuilder::add_nat_event(const NatEvent& ev, const ExportTime& time) {
    const bool v6 = ev.family == Family::ipv6;
    const std::size_t at = reserve(v6 ? kTemplateNatEvent6 : kTemplateNatEvent4,
                                   v6 ? kNatEvent6RecordSize : kNatEvent4RecordSize);
    if (at == 0) return false;
    std::byte* p = &buf_[at];
    put(p, ipfix::wall_ms(ev.time, time), 8);
    put(p + 8, ev.nat_event_code(), 1);
    put(p + 9, ev.protocol, 1);
    p += 10;
    if (v6) {
        std::memcpy(p, ev.orig.src.addr.data(), 16);
        std::memcpy(p + 16, ev.orig.dst.addr.data(), 16);
        p += 32;
    } else {
        put(p, ev.orig.src.ipv4_addr(), 4);
        put(p + 4, ev.orig.dst.ipv4_addr(), 4);
        p += 8;
    }
    put(p, ev.orig.src.port, 2);
    put(p + 2, ev.orig.dst.port, 2);
    put_nat_pair(p + 4, ev.family, ev.post_nat_src(), ev.post_nat_dst());
    ++events_;
    return true;
}

} // namespace nflowd
