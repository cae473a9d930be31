// The tag a rule's --nflog-prefix may carry into flow records (issue 13): an observation point
// and a direction, parsed from the prefix text NFLOG sends with each packet.
#pragma once

#include "nflowd/packet.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace nflowd {

// Grammar: the prefix is split at blanks (space, tab); a token "obs=N" (N decimal, 1..255)
// is the observationPointId, "dir=in" or "dir=out" overrides the direction the hook gives.
// Any other token, and a malformed or out-of-range value, is ignored: prefixes also serve
// logs ("FWD: obs=3 "). When a token repeats, the last one counts.
struct PrefixTag {
    std::uint8_t obs_point = 0;               // 0 = none
    Direction direction = Direction::unknown; // unknown = keep the hook's
    friend bool operator==(const PrefixTag&, const PrefixTag&) = default;
};

PrefixTag parse_prefix_tag(std::string_view prefix) noexcept;

// Rules have constant prefixes, so a reader meets the same few again and again: the last
// prefix and its tag are kept, and a packet with that prefix costs one comparison. Prefixes
// longer than kMaxPrefix (the kernel's NFLOG limit is 64 bytes with iptables, 128 with nft)
// are parsed each time. One per reader thread; no allocation.
class PrefixTagMemo {
  public:
    static constexpr std::size_t kMaxPrefix = 128;
    const PrefixTag& lookup(std::string_view prefix) noexcept {
        if (prefix.size() == size_ && prefix == std::string_view(last_.data(), size_)) return tag_;
        tag_ = parse_prefix_tag(prefix);
        if (prefix.size() <= kMaxPrefix) {
            prefix.copy(last_.data(), prefix.size());
            size_ = prefix.size();
        } else {
            size_ = kNone;
        }
        return tag_;
    }

  private:
    static constexpr std::size_t kNone = ~std::size_t{0};
    std::array<char, kMaxPrefix> last_{};
    std::size_t size_ = kNone;
    PrefixTag tag_;
};

} // namespace nflowd
