// The v9/IPFIX templates nflowd sends: information element numbers, field lengths and the
// values a flow record gives each field. The encoder writes templates and records from the
// same lists, so the two cannot disagree.
#pragma once

#include "nflowd/ipfix_encoder.hpp"

#include <array>
#include <cstdint>
#include <span>

namespace nflowd::ipfix {

struct FieldSpec {
    std::uint16_t ie;
    std::uint16_t length;
};

// RFC 7011 7.: a field length of 65535 in a template means "variable length".
constexpr std::uint16_t kVariableLength = 65535;

// Information elements (IANA IPFIX registry; 1-127 are RFC 3954's v9 field types too).
namespace ie {
constexpr std::uint16_t octets = 1, packets = 2, protocol = 4, tos = 5, tcp_flags = 6, src_port = 7,
                        src4 = 8, src_mask = 9, in_if = 10, dst_port = 11, dst4 = 12, dst_mask = 13,
                        out_if = 14, last_switched = 21, first_switched = 22, src6 = 27, dst6 = 28,
                        src_mask6 = 29, dst_mask6 = 30, flow_label = 31, icmp4 = 32,
                        sampling_interval = 34, sampling_algorithm = 35, octet_total = 40,
                        direction = 61, message_total = 41, flow_total = 42, if_name = 82,
                        if_descr = 83, end_reason = 136, icmp6 = 139, domain = 149, start_ms = 152,
                        end_ms = 153, ignored_packets = 164, not_sent_flows = 166;
// RFC 3954 6.1: v9 options scope field types.
constexpr std::uint16_t v9_scope_system = 1, v9_scope_interface = 2;
} // namespace ie

template <std::size_t A, std::size_t B>
constexpr std::array<FieldSpec, A + B> concat(const std::array<FieldSpec, A>& a,
                                              const std::array<FieldSpec, B>& b) noexcept {
    std::array<FieldSpec, A + B> out{};
    for (std::size_t i = 0; i < A; ++i) out[i] = a[i];
    for (std::size_t i = 0; i < B; ++i) out[A + i] = b[i];
    return out;
}

// The data templates: addresses, then ports, the 1-byte fields, interfaces and 64-bit
// counters in one order for both families and protocols, then masks, (flow label), ICMP
// type/code, and the times: sysUptime ms in v9, absolute ms in IPFIX.
inline constexpr std::array kMiddle{FieldSpec{ie::src_port, 2},  FieldSpec{ie::dst_port, 2},
                                    FieldSpec{ie::protocol, 1},  FieldSpec{ie::tos, 1},
                                    FieldSpec{ie::tcp_flags, 1}, FieldSpec{ie::end_reason, 1},
                                    FieldSpec{ie::in_if, 4},     FieldSpec{ie::out_if, 4},
                                    FieldSpec{ie::octets, 8},    FieldSpec{ie::packets, 8}};
inline constexpr std::array kV9Times{FieldSpec{ie::first_switched, 4},
                                     FieldSpec{ie::last_switched, 4}};
inline constexpr std::array kIpfixTimes{FieldSpec{ie::start_ms, 8}, FieldSpec{ie::end_ms, 8}};
inline constexpr auto kIpv4Head =
    concat(std::array{FieldSpec{ie::src4, 4}, FieldSpec{ie::dst4, 4}}, kMiddle);
// flowDirection (61) after the masks: 0 ingress, 1 egress, 255 unknown (FORWARD, --read), as
// ipt_NETFLOW sends it; one template for all, so a forwarded flow needs no template of its own.
inline constexpr auto kIpv4Tail = std::array{FieldSpec{ie::src_mask, 1}, FieldSpec{ie::dst_mask, 1},
                                             FieldSpec{ie::direction, 1}, FieldSpec{ie::icmp4, 2}};
inline constexpr auto kIpv6Head =
    concat(std::array{FieldSpec{ie::src6, 16}, FieldSpec{ie::dst6, 16}}, kMiddle);
// v9 has one ICMP_TYPE (32) for both families (RFC 3954; nfdump reads ICMPv6 there only);
// IPFIX splits it into icmpTypeCodeIPv4 (32) and icmpTypeCodeIPv6 (139).
inline constexpr auto kIpv6Masks =
    std::array{FieldSpec{ie::src_mask6, 1}, FieldSpec{ie::dst_mask6, 1},
               FieldSpec{ie::direction, 1}, FieldSpec{ie::flow_label, 4}};
inline constexpr auto kV9Ipv4 = concat(concat(kIpv4Head, kIpv4Tail), kV9Times);
inline constexpr auto kIpfixIpv4 = concat(concat(kIpv4Head, kIpv4Tail), kIpfixTimes);
inline constexpr auto kV9Ipv6 =
    concat(concat(concat(kIpv6Head, kIpv6Masks), std::array{FieldSpec{ie::icmp4, 2}}), kV9Times);
inline constexpr auto kIpfixIpv6 =
    concat(concat(concat(kIpv6Head, kIpv6Masks), std::array{FieldSpec{ie::icmp6, 2}}), kIpfixTimes);

// Options templates: scope fields, then the options. The scope is the observation domain
// in IPFIX and the "system" (the whole exporter: one source ID) in v9.
struct OptionsTemplate {
    std::uint16_t id;
    std::span<const FieldSpec> scope;
    std::span<const FieldSpec> fields;
};
inline constexpr std::array kIpfixDomainScope{FieldSpec{ie::domain, 4}};
inline constexpr std::array kV9SystemScope{FieldSpec{ie::v9_scope_system, 4}};
inline constexpr std::array kSamplingFields{FieldSpec{ie::sampling_interval, 4},
                                            FieldSpec{ie::sampling_algorithm, 1}};
inline constexpr std::array kStatsFields{
    FieldSpec{ie::message_total, 8}, FieldSpec{ie::flow_total, 8}, FieldSpec{ie::octet_total, 8},
    FieldSpec{ie::ignored_packets, 8}, FieldSpec{ie::not_sent_flows, 8}};
inline constexpr std::array kIpfixIfScope{FieldSpec{ie::in_if, 4}};
inline constexpr std::array kV9IfScope{FieldSpec{ie::v9_scope_interface, 4}};
inline constexpr std::array kIpfixIfFields{FieldSpec{ie::if_name, kVariableLength},
                                           FieldSpec{ie::if_descr, kVariableLength}};
inline constexpr std::array kV9IfFields{FieldSpec{ie::if_name, kV9IfNameSize},
                                        FieldSpec{ie::if_descr, kV9IfDescrSize}};

constexpr std::size_t record_size(std::span<const FieldSpec> fields) noexcept {
    std::size_t n = 0;
    for (const auto& f : fields) n += f.length;
    return n;
}
static_assert(record_size(kV9Ipv4) == kV9Ipv4RecordSize);
static_assert(record_size(kV9Ipv6) == kV9Ipv6RecordSize);
static_assert(record_size(kIpfixIpv4) == kIpfixIpv4RecordSize);
static_assert(record_size(kIpfixIpv6) == kIpfixIpv6RecordSize);

// ---- NAT (issue 13): the translated fields after a data record, and the NAT event records ----
namespace ie {
constexpr std::uint16_t post_nat_src4 = 225, post_nat_dst4 = 226, post_napt_src_port = 227,
                        post_napt_dst_port = 228, nat_event = 230, post_nat_src6 = 281,
                        post_nat_dst6 = 282, observation_ms = 323;
} // namespace ie
inline constexpr std::array kNat4Tail{
    FieldSpec{ie::post_nat_src4, 4}, FieldSpec{ie::post_nat_dst4, 4},
    FieldSpec{ie::post_napt_src_port, 2}, FieldSpec{ie::post_napt_dst_port, 2}};
inline constexpr std::array kNat6Tail{
    FieldSpec{ie::post_nat_src6, 16}, FieldSpec{ie::post_nat_dst6, 16},
    FieldSpec{ie::post_napt_src_port, 2}, FieldSpec{ie::post_napt_dst_port, 2}};
// A NAT-annotated record is the plain record with the tail appended: one writer serves both.
inline constexpr auto kV9Ipv4Nat = concat(kV9Ipv4, kNat4Tail);
inline constexpr auto kIpfixIpv4Nat = concat(kIpfixIpv4, kNat4Tail);
inline constexpr auto kV9Ipv6Nat = concat(kV9Ipv6, kNat6Tail);
inline constexpr auto kIpfixIpv6Nat = concat(kIpfixIpv6, kNat6Tail);
// NAT event records, the same in v9 and IPFIX: when (absolute ms, as ipt_NETFLOW sends it and
// nfdump's NEL shows it), natEvent, the original 5-tuple and the four translated fields.
inline constexpr auto kNatEvent4 =
    concat(std::array{FieldSpec{ie::observation_ms, 8}, FieldSpec{ie::nat_event, 1},
                      FieldSpec{ie::protocol, 1}, FieldSpec{ie::src4, 4}, FieldSpec{ie::dst4, 4},
                      FieldSpec{ie::src_port, 2}, FieldSpec{ie::dst_port, 2}},
           kNat4Tail);
inline constexpr auto kNatEvent6 =
    concat(std::array{FieldSpec{ie::observation_ms, 8}, FieldSpec{ie::nat_event, 1},
                      FieldSpec{ie::protocol, 1}, FieldSpec{ie::src6, 16}, FieldSpec{ie::dst6, 16},
                      FieldSpec{ie::src_port, 2}, FieldSpec{ie::dst_port, 2}},
           kNat6Tail);
static_assert(record_size(kNatEvent4) == kNatEvent4RecordSize);
static_assert(record_size(kNatEvent6) == kNatEvent6RecordSize);

// ---- Link layer (issue 13): MACs, VLAN and the prefix tag's observation point after the
// plain fields, before any NAT tail. observationPointId is unsigned64, sent reduced to 4 bytes
// (RFC 7011 6.2) ----
namespace ie {
constexpr std::uint16_t src_mac = 56, vlan_id = 58, dst_mac = 80, obs_point = 138;
} // namespace ie
inline constexpr std::array kLinkTail{FieldSpec{ie::src_mac, 6}, FieldSpec{ie::dst_mac, 6},
                                      FieldSpec{ie::vlan_id, 2}, FieldSpec{ie::obs_point, 4}};
static_assert(record_size(kLinkTail) == kLinkTailSize);
inline constexpr auto kV9Ipv4Link = concat(kV9Ipv4, kLinkTail);
inline constexpr auto kIpfixIpv4Link = concat(kIpfixIpv4, kLinkTail);
inline constexpr auto kV9Ipv6Link = concat(kV9Ipv6, kLinkTail);
inline constexpr auto kIpfixIpv6Link = concat(kIpfixIpv6, kLinkTail);
inline constexpr auto kV9Ipv4NatLink = concat(kV9Ipv4Link, kNat4Tail);
inline constexpr auto kIpfixIpv4NatLink = concat(kIpfixIpv4Link, kNat4Tail);
inline constexpr auto kV9Ipv6NatLink = concat(kV9Ipv6Link, kNat6Tail);
inline constexpr auto kIpfixIpv6NatLink = concat(kIpfixIpv6Link, kNat6Tail);

} // namespace nflowd::ipfix
