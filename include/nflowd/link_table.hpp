// The interface names the exporter reads: an immutable snapshot of kernel ifindex -> name,
// alias and the index flows carry for it, published whole by LinkNames (link_names.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace nflowd {

// The longest name and alias the kernel hands out: IFNAMSIZ and IFALIASZ less their NUL.
inline constexpr std::size_t kMaxLinkName = 15;
inline constexpr std::size_t kMaxLinkAlias = 255;

struct LinkInfo {
    std::string name;  // IFLA_IFNAME, 1 to kMaxLinkName bytes
    std::string alias; // IFLA_IFALIAS ("ip link set dev X alias ..."), empty when none
    // What flow records and the interface options records carry for this link: the
    // snmp-rules mapping of its name (snmp_rules.hpp), or the kernel ifindex when no rule
    // matches. Computed when the snapshot is built, so the exporter does no string work.
    std::uint32_t index = 0;
    friend bool operator==(const LinkInfo&, const LinkInfo&) = default;
};

struct LinkTable {
    // Grows by one with every published change of a name, alias, exported index or of the
    // set of links (never for a link event that changed none of these): the exporter re-sends
    // the interface options records when it differs from the one it last sent. 0: none yet.
    std::uint64_t generation = 0;
    std::map<std::uint32_t, LinkInfo> links; // by kernel ifindex: options records in order

    const LinkInfo* find(std::uint32_t ifindex) const noexcept {
        const auto it = links.find(ifindex);
        return it == links.end() ? nullptr : &it->second;
    }
    // The index a flow record carries for kernel interface `ifindex`; one this table does not
    // know (gone, or kUnknownIfindex for "no interface") is passed through unchanged.
    std::uint32_t exported_index(std::uint32_t ifindex) const noexcept {
        const LinkInfo* l = find(ifindex);
        return l != nullptr ? l->index : ifindex;
    }
};

} // namespace nflowd
