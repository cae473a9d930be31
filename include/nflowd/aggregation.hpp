// ipt_NETFLOW's aggregation rules ("192.0.0.0/8=16,2001:db8::/32=48,80-89=80"): network
// prefixes (IPv4 or IPv6) and port ranges folded together before the flow lookup.
#pragma once

#include "nflowd/packet.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nflowd {

class Aggregation {
  public:
    Aggregation() = default;

    // Parses a comma-separated rule list. Throws std::invalid_argument naming the first
    // malformed rule; on error nothing is returned, so a caller never applies half a list.
    static Aggregation parse(std::string_view spec);

    // Rewrites source and destination independently: first matching netmask rule masks the
    // address and sets src_mask/dst_mask; first matching port rule (TCP, UDP, SCTP,
    // UDP-Lite only) replaces the port.
    // IPv4 rules apply to IPv4 packets, IPv6 rules to IPv6 packets; port rules to both.
    void apply(PacketInfo& packet) const noexcept;
    void apply(PacketInfo6& packet) const noexcept;

    bool empty() const noexcept { return nets_.empty() && nets6_.empty() && ports_.empty(); }
    std::string to_string() const; // canonical form, parseable by parse()
    friend bool operator==(const Aggregation&, const Aggregation&) = default;

  private:
    struct NetRule {
        std::uint32_t network;   // host order, already masked by its own prefix
        std::uint32_t mask;      // netmask of `prefix`, kept to spare the shift per packet
        std::uint32_t aggr_mask; // netmask of `aggr`
        std::uint8_t prefix;     // prefix that selects the rule
        std::uint8_t aggr;       // prefix the address is reduced to
        friend bool operator==(const NetRule&, const NetRule&) = default;
    };
    // The same for IPv6, the 128 bits as two host-order halves (high, low).
    struct NetRule6 {
        std::array<std::uint64_t, 2> network;
        std::array<std::uint64_t, 2> mask;
        std::array<std::uint64_t, 2> aggr_mask;
        std::uint8_t prefix;
        std::uint8_t aggr;
        friend bool operator==(const NetRule6&, const NetRule6&) = default;
    };
    struct PortRule {
        std::uint16_t low, high, to;
        friend bool operator==(const PortRule&, const PortRule&) = default;
    };
    template <class Key> void apply_ports(Key& k) const noexcept;
    // One "net/prefix=bits" rule; throws std::invalid_argument naming `rule`.
    static NetRule net_rule(std::string_view rule, std::string_view address,
                            std::string_view prefix, std::string_view rhs);
    static NetRule6 net_rule6(std::string_view rule, std::string_view address,
                              std::string_view prefix, std::string_view rhs);

    std::vector<NetRule> nets_;
    std::vector<NetRule6> nets6_;
    std::vector<PortRule> ports_;
};

} // namespace nflowd
