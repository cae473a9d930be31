#include "nflowd/prefix_tag.hpp"

#include "nflowd/number.hpp"

namespace nflowd {

namespace {

bool is_blank(char c) noexcept {
    return c == ' ' || c == '\t';
}

void apply_token(std::string_view token, PrefixTag& tag) noexcept {
    if (token.starts_with("obs=")) {
        if (const auto obs = parse_unsigned(token.substr(4), 1, 255))
            tag.obs_point = static_cast<std::uint8_t>(*obs);
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
