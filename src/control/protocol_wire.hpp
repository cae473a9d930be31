// Internal to the control protocol: the netlink framing helpers its request and reply halves
// share (aligned copies, strict attribute walks, name and value rules). Not public API.
#pragma once

#include "nflowd/control_protocol.hpp"
#include "nflowd/netlink_align.hpp"

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nflowd::ctl::wire {

constexpr std::size_t kHeader = sizeof(nlmsghdr);
constexpr std::size_t kMaxErrorMessage = 1024;

// A netlink message copied into 4-byte aligned storage with its padding zeroed: libmnl's
// accessors may then cast and read up to the aligned end without leaving the buffer, however
// the datagram was aligned or cut.
class AlignedMessage {
  public:
    explicit AlignedMessage(std::span<const std::byte> bytes)
        : words_((netlink_align(bytes.size()) / 4) + 1, 0), size_(bytes.size()) {
        std::memcpy(words_.data(), bytes.data(), bytes.size());
    }
    const nlmsghdr* header() const noexcept {
        return reinterpret_cast<const nlmsghdr*>(words_.data());
    }
    const std::byte* at(std::size_t offset) const noexcept {
        return reinterpret_cast<const std::byte*>(words_.data()) + offset;
    }
    std::size_t size() const noexcept { return size_; }
    // The attributes after the netlink header.
    const std::byte* payload() const noexcept { return at(kHeader); }
    std::size_t payload_size() const noexcept { return header()->nlmsg_len - kHeader; }

  private:
    std::vector<std::uint32_t> words_;
    std::size_t size_;
};

// Calls fn(attr) for each attribute of [p, p + len). False when the attributes do not tile
// the range exactly: libmnl's own walk stops silently at a cut attribute, which would make a
// truncated request look like a shorter valid one.
template <class Fn> bool walk_attributes(const std::byte* p, std::size_t len, Fn&& fn) {
    std::size_t left = len;
    while (left > 0) {
        const auto* a = reinterpret_cast<const nlattr*>(p);
        if (left > INT_MAX || !mnl_attr_ok(a, static_cast<int>(left))) return false;
        if (!fn(a)) return false;
        const std::size_t step = std::min<std::size_t>(netlink_align(a->nla_len), left);
        p += step;
        left -= step;
    }
    return true;
}

template <class Fn> bool nested_walk(const nlattr* nest, Fn&& fn) {
    return walk_attributes(static_cast<const std::byte*>(mnl_attr_get_payload(nest)),
                           mnl_attr_get_payload_len(nest), fn);
}

// nlmsg_len of the header at the start of `data` (at least kHeader bytes), read unaligned.
inline std::size_t message_length(std::span<const std::byte> data) noexcept {
    nlmsghdr h{};
    std::memcpy(&h, data.data(), kHeader);
    return h.nlmsg_len;
}

// A NUL-terminated string attribute with no NUL inside, or nullopt.
std::optional<std::string_view> nul_string(const nlattr* a);
bool valid_name(std::string_view n) noexcept;
// Values end up in the log ("hashsize = 4096"): no control characters, so no forged lines.
bool valid_value(std::string_view v) noexcept;
std::string attr_name(std::uint16_t type);
bool known_command(std::uint16_t type) noexcept;

} // namespace nflowd::ctl::wire
