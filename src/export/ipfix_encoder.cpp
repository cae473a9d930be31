#include "nflowd/ipfix_encoder.hpp"

#include "ipfix_fields.hpp"
#include "ipfix_write.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace nflowd {
using ipfix::FieldSpec;
using ipfix::put;
using ipfix::wall_ms;
namespace ie = ipfix::ie;

namespace {

constexpr std::size_t align4(std::size_t n) noexcept {
    return (n + 3) & ~std::size_t{3};
}

constexpr Nanos floor_div(Nanos a, Nanos b) noexcept {
    const Nanos q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

// v9 times are 32-bit ms since boot; reduced mod 2^32 so differences stay right across the
// wrap every 49.7 days (the same rule as v5's).
std::uint32_t uptime_ms(Nanos t, Nanos boot) noexcept {
    return static_cast<std::uint32_t>(
        static_cast<std::uint64_t>(floor_div(t - boot, kNanosPerMilli)));
}

// A MAC address as the 48-bit integer whose big-endian bytes it is.
std::uint64_t mac_value(const std::array<std::uint8_t, 6>& mac) noexcept {
    std::uint64_t v = 0;
    for (const std::uint8_t b : mac) v = v << 8 | b;
    return v;
}

// The link-layer tail's fields (templates 265-268); 0 for any other.
std::uint64_t link_value(std::uint16_t id, const FlowRecord& r) noexcept {
    switch (id) {
    case ie::src_mac:
    case ie::dst_mac:
        return mac_value(id == ie::src_mac ? r.link.src_mac : r.link.dst_mac);
    case ie::vlan_id:
        return r.link.vlan;
    case ie::obs_point:
        return r.key.obs_point;
    default:
        return 0;
    }
}

bool is_icmp(const FlowRecord& r) noexcept {
    return r.key.protocol == IPPROTO_ICMP || r.key.protocol == IPPROTO_ICMPV6;
}

// The value of one numeric field of a flow record. ICMP and ICMPv6 flows carry type<<8|code
// in key.dst_port (the parser's convention, ipt_NETFLOW's and v5's too): it goes to
// icmpTypeCode and stays in the destination port, where nfdump 1.7 looks for ICMPv6 (it
// does not read icmpTypeCodeIPv6) and where v5 collectors always found it.
std::uint64_t flow_value(std::uint16_t id, const FlowRecord& r, const ExportTime& time,
                         Nanos boot) noexcept {
    switch (id) {
    case ie::src4:
        return r.key.src_addr;
    case ie::dst4:
        return r.key.dst_addr;
    case ie::src_port:
        return r.key.src_port;
    case ie::dst_port:
        return r.key.dst_port;
    case ie::icmp4:
    case ie::icmp6:
        return is_icmp(r) ? r.key.dst_port : 0;
    case ie::protocol:
        return r.key.protocol;
    case ie::tos:
        return r.key.tos;
    case ie::tcp_flags:
        return r.tcp_flags;
    case ie::end_reason:
        return static_cast<std::uint8_t>(r.end_reason);
    case ie::in_if:
        return r.key.in_if;
    case ie::out_if:
        return r.out_if;
    case ie::octets:
        return r.octets;
    case ie::packets:
        return r.packets;
    case ie::src_mask:
    case ie::src_mask6:
        return r.src_mask;
    case ie::dst_mask:
    case ie::dst_mask6:
        return r.dst_mask;
    case ie::flow_label:
        return r.flow_label & 0xfffff;
    case ie::direction:
        return r.key.direction == Direction::ingress  ? 0
               : r.key.direction == Direction::egress ? 1
                                                      : 255;
    case ie::first_switched:
        return uptime_ms(r.first, boot);
    case ie::last_switched:
        return uptime_ms(r.last, boot);
    case ie::start_ms:
        return wall_ms(r.first, time);
    case ie::end_ms:
        return wall_ms(r.last, time);
    default:
        return link_value(id, r);
    }
}

ipfix::OptionsTemplate options_template(bool v9, std::uint16_t id) noexcept {
    const auto scope = v9 ? std::span(ipfix::kV9SystemScope) : ipfix::kIpfixDomainScope;
    switch (id) {
    case kTemplateSampling:
        return {id, scope, ipfix::kSamplingFields};
    case kTemplateStats:
        return {id, scope, ipfix::kStatsFields};
    default:
        return {kTemplateIfNames, v9 ? std::span(ipfix::kV9IfScope) : ipfix::kIpfixIfScope,
                v9 ? std::span(ipfix::kV9IfFields) : ipfix::kIpfixIfFields};
    }
}

std::byte* put_fields(std::byte* p, std::span<const FieldSpec> fields) noexcept {
    for (const auto& f : fields) {
        put(p, f.ie, 2);
        put(p + 2, f.length, 2);
        p += 4;
    }
    return p;
}

// An options template record. IPFIX (RFC 7011 3.4.2.2): ID, field count, scope field count,
// scope fields then the others. v9 (RFC 3954 6.1): ID, scope and option lengths in bytes.
std::size_t put_options_template(std::byte* p, bool v9, const ipfix::OptionsTemplate& t) {
    put(p, t.id, 2);
    if (v9) {
        put(p + 2, t.scope.size() * 4, 2);
        put(p + 4, t.fields.size() * 4, 2);
    } else {
        put(p + 2, t.scope.size() + t.fields.size(), 2);
        put(p + 4, t.scope.size(), 2);
    }
    return static_cast<std::size_t>(put_fields(put_fields(p + 6, t.scope), t.fields) - p);
}

// RFC 7011 7.: variable-length field, 1-byte length below 255, else 255 and a 2-byte length.
std::size_t varlen_size(const std::string& s) noexcept {
    const std::size_t n = std::min<std::size_t>(s.size(), 65535);
    return n < 255 ? 1 + n : 3 + n;
}
std::byte* put_varlen(std::byte* p, const std::string& s) noexcept {
    const std::size_t n = std::min<std::size_t>(s.size(), 65535);
    if (n < 255) {
        put(p++, n, 1);
    } else {
        put(p, 255, 1);
        put(p + 1, n, 2);
        p += 3;
    }
    std::memcpy(p, s.data(), n);
    return p + n;
}
// v9: a fixed field, cut or NUL-padded.
std::byte* put_fixed(std::byte* p, const std::string& s, std::size_t len) noexcept {
    const std::size_t n = std::min(s.size(), len);
    std::memcpy(p, s.data(), n);
    std::memset(p + n, 0, len - n);
    return p + len;
}

} // namespace

std::uint64_t ipfix::wall_ms(Nanos flow_time, const ExportTime& time) noexcept {
    return static_cast<std::uint64_t>(floor_div(time.wall(flow_time), kNanosPerMilli));
}

void ipfix::write_flow(std::byte* p, std::span<const FieldSpec> fields, const FlowRecord& r,
                       const ExportTime& time, Nanos boot) noexcept {
    for (const auto& f : fields) {
        if (f.ie == ie::src6 || f.ie == ie::dst6) {
            std::memcpy(p, (f.ie == ie::src6 ? r.src6 : r.dst6).data(), 16);
        } else {
            put(p, flow_value(f.ie, r, time, boot), f.length);
        }
        p += f.length;
    }
}

std::span<const FieldSpec> ipfix::flow_fields(bool v9, Family family, bool ext) noexcept {
    if (family == Family::ipv6) {
        if (ext) return v9 ? std::span(kV9Ipv6Link) : kIpfixIpv6Link;
        return v9 ? std::span(kV9Ipv6) : kIpfixIpv6;
    }
    if (ext) return v9 ? std::span(kV9Ipv4Link) : kIpfixIpv4Link;
    return v9 ? std::span(kV9Ipv4) : kIpfixIpv4;
}

// A template record: ID, field count, fields (RFC 7011 3.4.1; RFC 3954 5.2 alike).
std::size_t ipfix::put_template(std::byte* p, std::uint16_t id,
                                std::span<const FieldSpec> fields) noexcept {
    put(p, id, 2);
    put(p + 2, fields.size(), 2);
    return static_cast<std::size_t>(put_fields(p + 4, fields) - p);
}

MessageBuilder::MessageBuilder(ExportProtocol protocol, std::size_t mtu)
    : protocol_(protocol), buf_(std::clamp(mtu, kMinMessageSize, kMaxMessageSize)) {}

bool MessageBuilder::set_mtu(std::size_t mtu) {
    if (!empty()) return false;
    buf_.assign(std::clamp(mtu, kMinMessageSize, kMaxMessageSize), std::byte{0});
    return true;
}

std::size_t MessageBuilder::reserve(std::uint16_t set_id, std::size_t size) noexcept {
    std::size_t p = pos_ != 0 ? pos_ : header_size();
    const bool same_set = set_start_ != 0 && set_id_ == set_id;
    if (!same_set) p = align4(p) + 4;
    // The set is padded to 4 bytes when it is closed: that padding must fit too.
    if (align4(p + size) > buf_.size()) return 0;
    if (!same_set) {
        if (pos_ == 0) pos_ = header_size();
        close_set();
        set_start_ = pos_;
        set_id_ = set_id;
        put(&buf_[pos_], set_id, 2);
        pos_ += 4;
    }
    const std::size_t at = pos_;
    pos_ += size;
    return at;
}

// RFC 7011 3.3.1 and RFC 3954 5.1-5.3: a set is padded with zeros to a 4-byte boundary;
// every record is at least 4 bytes, so the padding is never taken for a record.
void MessageBuilder::close_set() noexcept {
    if (set_start_ == 0) return;
    const std::size_t end = align4(pos_);
    std::fill(buf_.begin() + static_cast<std::ptrdiff_t>(pos_),
              buf_.begin() + static_cast<std::ptrdiff_t>(end), std::byte{0});
    pos_ = end;
    put(&buf_[set_start_ + 2], pos_ - set_start_, 2);
    set_start_ = 0;
}

bool MessageBuilder::add_templates(bool if_names) {
    const bool v = v9();
    std::size_t data = 4 * 2; // two template record headers
    for (auto family : {Family::ipv4, Family::ipv6})
        data += 4 * ipfix::flow_fields(v, family, false).size();
    const std::size_t n_options = if_names ? 3 : 2;
    const auto option_size = [&](std::size_t i) {
        const auto t = options_template(v, static_cast<std::uint16_t>(kTemplateSampling + i));
        return 6 + 4 * (t.scope.size() + t.fields.size());
    };
    // All of them fit, or none is written: a half-written refresh would complicate the
    // counters for nothing.
    std::size_t need = align4(data) + 4;
    for (std::size_t i = 0; i < n_options; ++i) need += align4(option_size(i)) + 4;
    if (align4(pos_ != 0 ? pos_ : header_size()) + need > buf_.size()) return false;
    std::size_t at = reserve(v ? 0 : 2, data);
    for (auto family : {Family::ipv4, Family::ipv6}) {
        const std::uint16_t id = family == Family::ipv4 ? kTemplateIpv4 : kTemplateIpv6;
        at += ipfix::put_template(&buf_[at], id, ipfix::flow_fields(v, family, false));
    }
    // One options template per set: pmacct's nfacctd (1.7) steps from one options template
    // to the next by a wrong length, losing the second and, in IPFIX, the rest of the message.
    for (std::size_t i = 0; i < n_options; ++i) {
        close_set();
        at = reserve(v ? 1 : 3, option_size(i));
        put_options_template(
            &buf_[at], v, options_template(v, static_cast<std::uint16_t>(kTemplateSampling + i)));
    }
    templates_ += 2 + n_options;
    return true;
}

bool MessageBuilder::add_sampling(const V5Params& params, const SamplingAnnouncement& a) {
    const std::size_t at =
        reserve(kTemplateSampling, ipfix::record_size(ipfix::kSamplingFields) + 4);
    if (at == 0) return false;
    put(&buf_[at], params.engine_id, 4); // scope: the observation domain / system
    put(&buf_[at + 4], a.interval, 4);   // samplingInterval
    put(&buf_[at + 8], a.algorithm == 0 ? 1 : a.algorithm, 1); // samplingAlgorithm
    ++options_;
    return true;
}

bool MessageBuilder::add_stats(const ExportTotals& t, const V5Params& params) {
    const std::size_t at = reserve(kTemplateStats, ipfix::record_size(ipfix::kStatsFields) + 4);
    if (at == 0) return false;
    put(&buf_[at], params.engine_id, 4);
    std::byte* p = &buf_[at + 4];
    for (std::uint64_t v : {t.messages, t.flows, t.octets, t.ignored_packets, t.not_sent_flows}) {
        put(p, v, 8);
        p += 8;
    }
    ++options_;
    return true;
}

bool MessageBuilder::add_if_name(const InterfaceName& row) {
    const std::size_t size = v9() ? 4 + kV9IfNameSize + kV9IfDescrSize
                                  : 4 + varlen_size(row.name) + varlen_size(row.descr);
    const std::size_t at = reserve(kTemplateIfNames, size);
    if (at == 0) return false;
    put(&buf_[at], row.ifindex, 4);
    std::byte* p = &buf_[at + 4];
    if (v9()) {
        put_fixed(put_fixed(p, row.name, kV9IfNameSize), row.descr, kV9IfDescrSize);
    } else {
        put_varlen(put_varlen(p, row.name), row.descr);
    }
    ++options_;
    return true;
}

bool MessageBuilder::add_flow(const FlowRecord& record, const ExportTime& time,
                              const V5Params& params) {
    const auto fields = ipfix::flow_fields(v9(), record.family, record.extended());
    const std::uint16_t id = record.family == Family::ipv6
                                 ? (record.extended() ? kTemplateIpv6Link : kTemplateIpv6)
                                 : (record.extended() ? kTemplateIpv4Link : kTemplateIpv4);
    const std::size_t at = reserve(id, ipfix::record_size(fields));
    if (at == 0) return false;
    ipfix::write_flow(&buf_[at], fields, record, time, params.boot_time - ipfix::kV9UptimeLead);
    ++flows_;
    latest_last_ = flows_ == 1 ? record.last : std::max(latest_last_, record.last);
    return true;
}

std::span<const std::byte> MessageBuilder::finish(const ExportTime& time,
                                                  const V5Params& params) noexcept {
    if (pos_ == 0) return {};
    close_set();
    const std::size_t size = pos_;
    // Dated no earlier than its latest record's end, as v5's header: collectors take
    // sysUptime - Last in uint32, and a header behind a record would put it 49.7 days back.
    Nanos now = flows_ != 0 ? std::max(time.now, latest_last_) : time.now;
    // v9 has whole unix seconds only, and collectors take boot = unix_secs - sysUptime: a
    // header dated between two seconds would shift every record by up to 1 s. Dated at the
    // next whole second instead, the records' absolute times come out to the millisecond.
    if (v9()) {
        const Nanos into =
            time.wall(now) - floor_div(time.wall(now), kNanosPerSecond) * kNanosPerSecond;
        if (into != 0) now += kNanosPerSecond - into;
    }
    const auto secs = static_cast<std::uint64_t>(floor_div(time.wall(now), kNanosPerSecond));
    std::byte* h = buf_.data();
    if (v9()) {
        put(h, 9, 2);
        put(h + 2, flows_ + options_ + templates_ + events_, 2);
        put(h + 4, uptime_ms(now, params.boot_time - ipfix::kV9UptimeLead), 4);
        put(h + 8, secs, 4);
        put(h + 12, sequence_, 4);
        put(h + 16, params.engine_id, 4);
        ++sequence_; // v9: export packets sent
    } else {
        put(h, 10, 2);
        put(h + 2, size, 2);
        put(h + 4, secs, 4);
        put(h + 8, sequence_, 4);
        put(h + 12, params.engine_id, 4);
        // IPFIX: data records sent, options data records included, templates not.
        sequence_ += static_cast<std::uint32_t>(flows_ + options_ + events_);
    }
    ++messages_;
    pos_ = 0;
    flows_ = templates_ = options_ = events_ = 0;
    return {buf_.data(), size};
}

} // namespace nflowd
