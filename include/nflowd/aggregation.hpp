// ipt_NETFLOW's aggregation rules ("192.0.0.0/8=16,80-89=80"): network prefixes and port
// ranges folded together before the flow lookup, so aggregated traffic shares one flow.
#pragma once

#include "nflowd/packet.hpp"

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
    void apply(PacketInfo& packet) const noexcept;

    bool empty() const noexcept { return nets_.empty() && ports_.empty(); }
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
    struct PortRule {
        std::uint16_t low, high, to;
        friend bool operator==(const PortRule&, const PortRule&) = default;
    };
    std::vector<NetRule> nets_;
    std::vector<PortRule> ports_;
};

} // namespace nflowd
