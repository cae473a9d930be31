// Strict decimal parsing for every number a user or peer types (options, knobs, ports, uids):
// the whole text, digits only, no sign, no spaces, within a range; one rule everywhere.
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace nflowd {

// The value of `text` when it is a plain decimal number within [lo, hi], else nullopt.
// from_chars alone would accept a prefix ("20x"); "+5", " 5" and "" are refused too.
constexpr std::optional<std::uint64_t>
parse_unsigned(std::string_view text, std::uint64_t lo = 0,
               std::uint64_t hi = std::numeric_limits<std::uint64_t>::max()) noexcept {
    if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
    std::uint64_t v = 0;
    const char* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc{} || p != end || v < lo || v > hi) return std::nullopt;
    return v;
}

} // namespace nflowd
