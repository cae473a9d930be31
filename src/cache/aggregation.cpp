#include "nflowd/aggregation.hpp"

#include "nflowd/number.hpp"

#include <arpa/inet.h>

#include <cstring>
#include <stdexcept>

namespace nflowd {

namespace {

constexpr std::uint32_t prefix_mask(unsigned prefix) noexcept {
    return prefix == 0 ? 0U : ~std::uint32_t{0} << (32U - prefix);
}

[[noreturn]] void reject(std::string_view rule, std::string_view why) {
    std::string msg = "aggregation: bad rule \"";
    msg += rule;
    msg += "\": ";
    msg += why;
    throw std::invalid_argument(msg);
}

// The strict number rule of number.hpp, spaces around allowed; false on junk or above `max`.
bool parse_number(std::string_view s, std::uint32_t max, std::uint32_t& out) noexcept {
    const auto v = parse_unsigned(trim(s), 0, max);
    if (v) out = static_cast<std::uint32_t>(*v);
    return v.has_value();
}

// Strict dotted quad through inet_pton: unlike inet_aton it refuses the shorthands ("10.1",
// octal "010") that would mean something other than what a reader of the config assumes.
bool parse_ipv4(std::string_view s, std::uint32_t& out) noexcept {
    s = trim(s);
    char text[INET_ADDRSTRLEN]{}; // inet_pton wants a NUL-terminated string
    if (s.size() >= sizeof text) return false;
    std::memcpy(text, s.data(), s.size());
    in_addr a{};
    if (::inet_pton(AF_INET, text, &a) != 1) return false;
    out = ntohl(a.s_addr);
    return true;
}

using Halves = std::array<std::uint64_t, 2>;

Halves halves_of(const Ipv6Addr& a) noexcept {
    Halves h{};
    for (std::size_t i = 0; i < 16; ++i) h[i / 8] = (h[i / 8] << 8) | a[i];
    return h;
}

Ipv6Addr address_of(const Halves& h) noexcept {
    Ipv6Addr a{};
    for (std::size_t i = 0; i < 16; ++i)
        a[i] = static_cast<std::uint8_t>(h[i / 8] >> (8 * (7 - i % 8)));
    return a;
}

Halves prefix_mask6(unsigned prefix) noexcept {
    const auto half = [](unsigned bits) {
        return bits == 0 ? 0U : bits >= 64 ? ~std::uint64_t{0} : ~std::uint64_t{0} << (64U - bits);
    };
    return {half(prefix), half(prefix > 64 ? prefix - 64 : 0)};
}

Halves masked(const Halves& a, const Halves& m) noexcept {
    return {a[0] & m[0], a[1] & m[1]};
}

// inet_pton(AF_INET6): every form RFC 4291 allows, nothing else.
bool parse_ipv6(std::string_view s, Ipv6Addr& out) noexcept {
    s = trim(s);
    char text[INET6_ADDRSTRLEN]{};
    if (s.size() >= sizeof text) return false;
    std::memcpy(text, s.data(), s.size());
    return ::inet_pton(AF_INET6, text, out.data()) == 1;
}

// RFC 5952's canonical text (inet_ntop), so that to_string() is stable whatever was typed.
std::string ipv6_to_string(const Ipv6Addr& a) {
    char text[INET6_ADDRSTRLEN]{};
    return ::inet_ntop(AF_INET6, a.data(), text, sizeof text) ? text : "::";
}

std::string ipv4_to_string(std::uint32_t a) {
    std::string s;
    for (int shift = 24; shift >= 0; shift -= 8) {
        if (!s.empty()) s += '.';
        s += std::to_string((a >> shift) & 0xffU);
    }
    return s;
}

} // namespace

Aggregation::NetRule Aggregation::net_rule(std::string_view rule, std::string_view address,
                                           std::string_view prefix_text, std::string_view rhs) {
    NetRule r{};
    std::uint32_t addr = 0, prefix = 0, aggr = 0;
    if (!parse_ipv4(address, addr)) reject(rule, "bad IPv4 address");
    if (!parse_number(prefix_text, 32, prefix)) reject(rule, "prefix must be 0-32");
    if (!parse_number(rhs, 32, aggr)) reject(rule, "aggregation prefix must be 0-32");
    r.mask = prefix_mask(prefix);
    r.aggr_mask = prefix_mask(aggr);
    r.network = addr & r.mask;
    r.prefix = static_cast<std::uint8_t>(prefix);
    r.aggr = static_cast<std::uint8_t>(aggr);
    return r;
}

Aggregation::NetRule6 Aggregation::net_rule6(std::string_view rule, std::string_view address,
                                             std::string_view prefix_text, std::string_view rhs) {
    NetRule6 r{};
    Ipv6Addr addr{};
    std::uint32_t prefix = 0, aggr = 0;
    if (!parse_ipv6(address, addr)) reject(rule, "bad IPv6 address");
    if (!parse_number(prefix_text, 128, prefix)) reject(rule, "prefix must be 0-128");
    if (!parse_number(rhs, 128, aggr)) reject(rule, "aggregation prefix must be 0-128");
    r.mask = prefix_mask6(prefix);
    r.aggr_mask = prefix_mask6(aggr);
    r.network = masked(halves_of(addr), r.mask);
    r.prefix = static_cast<std::uint8_t>(prefix);
    r.aggr = static_cast<std::uint8_t>(aggr);
    return r;
}

Aggregation Aggregation::parse(std::string_view spec) {
    Aggregation result;
    if (trim(spec).empty()) return result;

    for (;;) {
        const std::size_t comma = spec.find(',');
        const std::string_view rule = trim(spec.substr(0, comma));
        if (rule.empty()) reject(rule, "empty rule");

        const std::size_t eq = rule.find('=');
        if (eq == std::string_view::npos)
            reject(rule, "expected net/prefix=bits or port[-port]=port");
        const std::string_view lhs = rule.substr(0, eq);
        const std::string_view rhs = rule.substr(eq + 1);

        if (const std::size_t slash = lhs.find('/'); slash != std::string_view::npos) {
            if (lhs.find(':') != std::string_view::npos)
                result.nets6_.push_back(
                    net_rule6(rule, lhs.substr(0, slash), lhs.substr(slash + 1), rhs));
            else
                result.nets_.push_back(
                    net_rule(rule, lhs.substr(0, slash), lhs.substr(slash + 1), rhs));
        } else {
            std::uint32_t low = 0, high = 0, to = 0;
            const std::size_t dash = lhs.find('-');
            if (!parse_number(lhs.substr(0, dash), 65535, low))
                reject(rule, "port must be 0-65535");
            high = low;
            if (dash != std::string_view::npos && !parse_number(lhs.substr(dash + 1), 65535, high))
                reject(rule, "port must be 0-65535");
            if (!parse_number(rhs, 65535, to)) reject(rule, "port must be 0-65535");
            if (low > high) reject(rule, "port range low > high");
            result.ports_.push_back(PortRule{static_cast<std::uint16_t>(low),
                                             static_cast<std::uint16_t>(high),
                                             static_cast<std::uint16_t>(to)});
        }

        if (comma == std::string_view::npos) break;
        spec.remove_prefix(comma + 1);
    }
    return result;
}

void Aggregation::apply(PacketInfo& packet) const noexcept {
    FlowKey& k = packet.key;
    bool src_done = false, dst_done = false;
    for (const NetRule& r : nets_) {
        if (!src_done && (k.src_addr & r.mask) == r.network) {
            k.src_addr &= r.aggr_mask;
            packet.src_mask = r.aggr;
            src_done = true;
        }
        if (!dst_done && (k.dst_addr & r.mask) == r.network) {
            k.dst_addr &= r.aggr_mask;
            packet.dst_mask = r.aggr;
            dst_done = true;
        }
        if (src_done && dst_done) break;
    }

    apply_ports(k);
}

void Aggregation::apply(PacketInfo6& packet) const noexcept {
    FlowKey6& k = packet.key;
    Halves src = halves_of(k.src_addr), dst = halves_of(k.dst_addr);
    bool src_done = false, dst_done = false;
    for (const NetRule6& r : nets6_) {
        if (!src_done && masked(src, r.mask) == r.network) {
            k.src_addr = address_of(masked(src, r.aggr_mask));
            packet.src_mask = r.aggr;
            src_done = true;
        }
        if (!dst_done && masked(dst, r.mask) == r.network) {
            k.dst_addr = address_of(masked(dst, r.aggr_mask));
            packet.dst_mask = r.aggr;
            dst_done = true;
        }
        if (src_done && dst_done) break;
    }
    apply_ports(k);
}

template <class Key> void Aggregation::apply_ports(Key& k) const noexcept {
    if (!has_ports(k.protocol)) return;
    bool src_done = false, dst_done = false;
    for (const PortRule& r : ports_) {
        if (!src_done && k.src_port >= r.low && k.src_port <= r.high) {
            k.src_port = r.to;
            src_done = true;
        }
        if (!dst_done && k.dst_port >= r.low && k.dst_port <= r.high) {
            k.dst_port = r.to;
            dst_done = true;
        }
        if (src_done && dst_done) break;
    }
}

std::string Aggregation::to_string() const {
    std::string s;
    for (const NetRule& r : nets_) {
        if (!s.empty()) s += ',';
        s += ipv4_to_string(r.network);
        s += '/';
        s += std::to_string(r.prefix);
        s += '=';
        s += std::to_string(r.aggr);
    }
    for (const NetRule6& r : nets6_) {
        if (!s.empty()) s += ',';
        s += ipv6_to_string(address_of(r.network));
        s += '/';
        s += std::to_string(r.prefix);
        s += '=';
        s += std::to_string(r.aggr);
    }
    for (const PortRule& r : ports_) {
        if (!s.empty()) s += ',';
        s += std::to_string(r.low);
        if (r.high != r.low) {
            s += '-';
            s += std::to_string(r.high);
        }
        s += '=';
        s += std::to_string(r.to);
    }
    return s;
}

} // namespace nflowd
