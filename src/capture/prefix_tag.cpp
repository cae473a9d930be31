#include "nflowd/prefix_tag.hpp"

namespace nflowd {

namespace {

bool is_blank(char c) noexcept {
    return c == ' ' || c == '\t';
}

// "N" with 1 <= N <= 255, digits only; 0 otherwise.
std::uint8_t obs_value(std::string_view v) noexcept {
    if (v.empty() || v.size() > 3) return 0;
    unsigned n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') return 0;
        n = n * 10 + static_cast<unsigned>(c - '0');
    }
    return n <= 255 ? static_cast<std::uint8_t>(n) : 0;
}

void apply_token(std::string_view token, PrefixTag& tag) noexcept {
    if (token.starts_with("obs=")) {
        if (const std::uint8_t obs = obs_value(token.substr(4)); obs != 0) tag.obs_point = obs;
    } else if (token == "dir=in") {
        tag.direction = Direction::ingress;
    } else if (token == "dir=out") {
        tag.direction = Direction::egress;
    }
}

} // namespace

PrefixTag parse_prefix_tag(std::string_view prefix) noexcept {
    PrefixTag tag;
    std::size_t i = 0;
    while (i < prefix.size()) {
        while (i < prefix.size() && is_blank(prefix[i])) ++i;
        const std::size_t start = i;
        while (i < prefix.size() && !is_blank(prefix[i])) ++i;
        if (i > start) apply_token(prefix.substr(start, i - start), tag);
    }
    return tag;
}

} // namespace nflowd
