// ipt_NETFLOW's snmp-rules ("eth:100,ppp:200", here also "eth*=100"): interface name patterns
// mapped to exported interface indexes that stay the same across reboots (eth3 -> 103).
#pragma once

#include "nflowd/link_table.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nflowd {

// Syntax: rules separated by commas, spaces around them ignored, tried in order, first match
// wins; an interface no rule matches keeps its kernel ifindex.
//   PREFIX:BASE    ipt_NETFLOW's and fprobe-ulog's form: a name starting with PREFIX maps to
//                  BASE plus the decimal number right after the prefix (0 when none follows,
//                  and digits end at the first non-digit: with eth:100, eth3 -> 103,
//                  eth0.5 -> 100, ethx -> 100, as ipt_NETFLOW computes it).
//   PREFIX*=BASE   the same rule written as in issue 13 ("eth*=100").
//   NAME=INDEX     exactly the interface NAME maps to INDEX ("wan=1").
// PREFIX and NAME are 1-15 bytes (IFNAMSIZ) without whitespace, '/' or ':' (which the kernel
// refuses in names) nor ',', '=', '*'; BASE and INDEX are 0-65535, as ipt_NETFLOW stores
// them (NetFlow v5 carries 16-bit interfaces). A result beyond 32 bits (a huge number in
// the name) makes that rule not match.
class SnmpRules {
  public:
    SnmpRules() = default;

    // Throws std::invalid_argument naming the first malformed rule ("snmp_rules: bad rule
    // ..."); on error nothing is returned, so a caller never applies half a list.
    static SnmpRules parse(std::string_view spec);

    // The exported index of the link `name` whose kernel index is `ifindex`.
    std::uint32_t map(std::string_view name, std::uint32_t ifindex) const noexcept;
    // The same with the current names: an ifindex `links` does not know passes unchanged.
    std::uint32_t map(std::uint32_t ifindex, const LinkTable& links) const noexcept;

    bool empty() const noexcept { return rules_.empty(); }
    // Canonical form, parseable by parse(): "eth*=100,wan=1" (the PREFIX:BASE form is
    // written as PREFIX*=BASE).
    std::string to_string() const;
    friend bool operator==(const SnmpRules&, const SnmpRules&) = default;

  private:
    struct Rule {
        std::string name;   // the prefix, or the whole name when `exact`
        std::uint32_t base; // 0-65535
        bool exact;
        friend bool operator==(const Rule&, const Rule&) = default;
    };
    std::vector<Rule> rules_;
};

} // namespace nflowd
