// Strict parsing of what a user or peer types (options, knobs, ports, uids, rule lists): the
// whole text, digits only, no sign, no spaces, within a range; one rule everywhere.
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

// C's isspace in the "C" locale, without the locale lookup.
constexpr bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// `s` without leading and trailing is_space characters (rule lists allow spaces around items).
constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

} // namespace nflowd
