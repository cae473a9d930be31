#include "protocol_wire.hpp"

namespace nflowd::ctl {

namespace wire {

// A NUL-terminated string attribute with no NUL inside, or nullopt.
std::optional<std::string_view> nul_string(const nlattr* a) {
    if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0) return std::nullopt;
    const auto len = mnl_attr_get_payload_len(a);
    const char* s = mnl_attr_get_str(a);
    if (std::memchr(s, '\0', len - 1u) != nullptr) return std::nullopt;
    return std::string_view(s, len - 1u);
}

bool valid_name(std::string_view n) noexcept {
    if (n.empty() || n.size() > kMaxNameLength) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

bool valid_value(std::string_view v) noexcept {
    if (v.size() > kMaxValueLength) return false;
    return std::none_of(v.begin(), v.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

std::string attr_name(std::uint16_t type) {
    switch (type) {
    case kAttrVersion:
        return "version";
    case kAttrKnob:
        return "knob";
    case kAttrFormat:
        return "format";
    case kAttrTop:
        return "top";
    case kAttrSort:
        return "sort";
    case kAttrFlushLevel:
        return "flush level";
    case kAttrText:
        return "text";
    case kAttrNow:
        return "now";
    case kAttrFlowTotal:
        return "flow total";
    case kAttrFlow:
        return "flow";
    default:
        return "attribute " + std::to_string(type);
    }
}

bool known_command(std::uint16_t type) noexcept {
    return type >= static_cast<std::uint16_t>(Command::list) &&
           type <= static_cast<std::uint16_t>(Command::flush);
}

} // namespace wire

std::string_view command_name(Command c) noexcept {
    switch (c) {
    case Command::list:
        return "list";
    case Command::get:
        return "get";
    case Command::set:
        return "set";
    case Command::stats:
        return "stats";
    case Command::flows:
        return "flows";
    case Command::flush:
        return "flush";
    }
    return "unknown";
}

} // namespace nflowd::ctl
