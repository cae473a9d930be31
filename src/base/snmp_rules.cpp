// snmp-rules: parsing, the canonical form and the name -> exported index mapping.
#include "nflowd/snmp_rules.hpp"

#include "nflowd/number.hpp"

#include <limits>
#include <stdexcept>

namespace nflowd {

namespace {

constexpr std::uint32_t kMaxBase = 65535;

[[noreturn]] void reject(std::string_view rule, std::string_view why) {
    std::string msg = "snmp_rules: bad rule \"";
    msg += rule;
    msg += "\": ";
    msg += why;
    throw std::invalid_argument(msg);
}

// What an interface name may hold (the kernel's dev_valid_name refuses '/', ':' and
// whitespace), less the rule syntax's own ',', '=' and '*'.
bool valid_name(std::string_view s) noexcept {
    if (s.empty() || s.size() > kMaxLinkName) return false;
    for (const char c : s)
        if (is_space(c) || c == '/' || c == ':' || c == ',' || c == '=' || c == '*' || c == '\0')
            return false;
    return true;
}

// The decimal number at the start of `s` (ipt_NETFLOW's simple_atoi: digits up to the
// first other character, 0 when there are none). Names are at most 15 bytes, so it fits.
std::uint64_t leading_number(std::string_view s) noexcept {
    std::uint64_t n = 0;
    for (const char c : s) {
        if (c < '0' || c > '9') break;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

} // namespace

SnmpRules SnmpRules::parse(std::string_view spec) {
    SnmpRules result;
    if (trim(spec).empty()) return result;
    for (;;) {
        const std::size_t comma = spec.find(',');
        const std::string_view rule = trim(spec.substr(0, comma));
        if (rule.empty()) reject(rule, "empty rule");

        // ':' cannot be in an interface name, so the first one separates ipt_NETFLOW's form.
        const std::size_t colon = rule.find(':');
        const std::size_t eq = rule.find('=');
        Rule r{};
        std::string_view name, number;
        if (colon != std::string_view::npos) {
            name = rule.substr(0, colon);
            number = rule.substr(colon + 1);
        } else if (eq != std::string_view::npos) {
            name = rule.substr(0, eq);
            number = rule.substr(eq + 1);
            r.exact = !name.ends_with('*');
            if (!r.exact) name.remove_suffix(1);
        } else {
            reject(rule, "expected prefix:base, prefix*=base or name=index");
        }
        if (!valid_name(name))
            reject(rule, "interface name or prefix must be 1-15 bytes, no space / : , = *");
        const auto base = parse_unsigned(number, 0, kMaxBase);
        if (!base) reject(rule, "index must be 0-65535");
        r.name = std::string(name);
        r.base = static_cast<std::uint32_t>(*base);
        result.rules_.push_back(std::move(r));

        if (comma == std::string_view::npos) break;
        spec.remove_prefix(comma + 1);
    }
    return result;
}

std::uint32_t SnmpRules::map(std::string_view name, std::uint32_t ifindex) const noexcept {
    for (const Rule& r : rules_) {
        if (r.exact) {
            if (name == r.name) return r.base;
            continue;
        }
        if (!name.starts_with(r.name)) continue;
        const std::uint64_t index = r.base + leading_number(name.substr(r.name.size()));
        if (index <= std::numeric_limits<std::uint32_t>::max())
            return static_cast<std::uint32_t>(index);
    }
    return ifindex;
}

std::uint32_t SnmpRules::map(std::uint32_t ifindex, const LinkTable& links) const noexcept {
    const LinkInfo* l = links.find(ifindex);
    return l != nullptr ? map(l->name, ifindex) : ifindex;
}

std::string SnmpRules::to_string() const {
    std::string s;
    for (const Rule& r : rules_) {
        if (!s.empty()) s += ',';
        s += r.name;
        s += r.exact ? "=" : "*=";
        s += std::to_string(r.base);
    }
    return s;
}

} // namespace nflowd
