// Netlink message and attribute alignment shared by the capture (NFLOG) and control
// (NETLINK_USERSOCK) areas: one definition, safe on any size_t.
#pragma once

#include <cstddef>

namespace nflowd {

// NLMSG_ALIGN masks with a 32-bit constant: on a size_t near 2^32 it wraps to 0, so a
// hostile length could make a walk stand still or go backwards.
constexpr std::size_t netlink_align(std::size_t n) noexcept {
    return (n + 3) & ~std::size_t{3};
}

} // namespace nflowd
