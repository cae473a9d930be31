#include "option_codecs.hpp"

#include "nflowd/config.hpp"
#include "nflowd/number.hpp"
#include "nflowd/privileges.hpp"

#include <grp.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace nflowd::options {

namespace {

std::string quoted(std::string_view v) {
    return "got \"" + std::string(v) + "\"";
}

template <class List, class Item> std::string join(const List& list, Item item) {
    std::string out;
    for (const auto& v : list) out += (out.empty() ? "" : ",") + item(v);
    return out;
}

// A group name, or a number when it is all digits: what nflowctl's peers are compared to.
std::uint32_t lookup_group(std::string_view name, std::string_view v) {
    if (std::all_of(v.begin(), v.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
        return static_cast<std::uint32_t>(
            number(name, v, 0, 0xfffffffe, "must be a group name or gid"));
    const std::string group_name(v);
    std::vector<char> buf(16384);
    group g{};
    group* found = nullptr;
    if (::getgrnam_r(group_name.c_str(), &g, buf.data(), buf.size(), &found) != 0 ||
        found == nullptr)
        throw ConfigError(name, "no such group, " + quoted(v));
    return found->gr_gid;
}

} // namespace

std::uint64_t number(std::string_view name, std::string_view text, std::uint64_t lo,
                     std::uint64_t hi, std::string_view what) {
    if (const auto v = parse_unsigned(text, lo, hi)) return *v;
    throw ConfigError(name, std::string(what) + ", " + quoted(text));
}

std::size_t threads_or_cpus(std::size_t threads) noexcept {
    if (threads) return threads;
    const auto n = std::thread::hardware_concurrency();
    return n ? n : 1;
}

Nanos SecondsCodec::parse(std::string_view name, std::string_view text) const {
    const auto s = number(name, text, 1, hi, what);
    return static_cast<Nanos>(s) * kNanosPerSecond;
}

std::string SecondsCodec::format(const Nanos& v) const {
    return std::to_string(v / kNanosPerSecond);
}

std::size_t ThreadsCodec::parse(std::string_view name, std::string_view text) const {
    return number(name, text, 1, 256, "must be 1-256 threads");
}

std::string ThreadsCodec::format(const std::size_t& v) const {
    return std::to_string(threads_or_cpus(v));
}

std::string TextCodec::parse(std::string_view name, std::string_view text) const {
    if (required && text.empty()) throw ConfigError(name, "needs a file name");
    return std::string(text);
}

bool YesNoCodec::parse(std::string_view name, std::string_view text) const {
    if (text == "yes") return true;
    if (text == "no") return false;
    throw ConfigError(name, "must be yes or no, " + quoted(text));
}

bool SwitchCodec::parse(std::string_view name, std::string_view text) const {
    if (text.empty() || text == "1" || text == "yes") return true;
    if (text == "0" || text == "no") return false;
    throw ConfigError(name, "is a switch: give it alone, or 1 or 0, not " + quoted(text));
}

std::string ChoiceCodec::parse(std::string_view name, std::string_view text) const {
    if (std::find(choices.begin(), choices.end(), text) != choices.end()) return std::string(text);
    std::string all;
    for (const auto c : choices) all += (all.empty() ? "" : " or ") + std::string(c);
    throw ConfigError(name, "must be " + all + ", " + quoted(text));
}

std::string UserCodec::parse(std::string_view, std::string_view text) const {
    lookup_user(std::string(text)); // throws ConfigError naming --user
    return std::string(text);
}

GroupCodec::type GroupCodec::parse(std::string_view name, std::string_view text) const {
    if (text.empty()) return std::nullopt;
    return lookup_group(name, text);
}

std::string GroupCodec::format(const type& v) const {
    return v ? std::to_string(*v) : std::string();
}

Aggregation AggregationCodec::parse(std::string_view name, std::string_view text) const {
    try {
        return Aggregation::parse(text);
    } catch (const std::invalid_argument& e) {
        throw ConfigError(name, e.what());
    }
}

// The parsers' messages start with the option's name already ("snmp_rules: bad rule ..."):
// ConfigError puts it in front again, so it goes.
std::string without_name(std::string_view name, std::string_view what) {
    const auto n = name.size();
    if (what.substr(0, n) == name && what.substr(n, 2) == ": ") what.remove_prefix(n + 2);
    return std::string(what);
}

SnmpRules SnmpRulesCodec::parse(std::string_view name, std::string_view text) const {
    if (text == "none") return {};
    try {
        return SnmpRules::parse(text);
    } catch (const std::invalid_argument& e) {
        throw ConfigError(name, without_name(name, e.what()));
    }
}

SamplerConfig SamplerCodec::parse(std::string_view name, std::string_view text) const {
    try {
        return SamplerConfig::parse(text);
    } catch (const std::invalid_argument& e) {
        throw ConfigError(name, without_name(name, e.what()));
    }
}

GroupsCodec::type GroupsCodec::parse(std::string_view name, std::string_view text) const {
    type out;
    append(name, out, text);
    return out;
}

void GroupsCodec::append(std::string_view name, type& into, std::string_view text) const {
    const auto bad = "must be an NFLOG group 0-65535 or a range like 5-8";
    std::string_view rest = text;
    while (true) {
        const auto comma = rest.find(',');
        const auto item = rest.substr(0, comma);
        const auto dash = item.find('-');
        const auto lo = number(name, item.substr(0, dash), 0, 65535, bad);
        const auto hi = dash == std::string_view::npos
                            ? lo
                            : number(name, item.substr(dash + 1), 0, 65535, bad);
        if (hi < lo || hi - lo > 255)
            throw ConfigError(name, std::string(bad) + ", " + quoted(text));
        for (auto g = lo; g <= hi; ++g)
            if (std::find(into.begin(), into.end(), g) == into.end())
                into.push_back(static_cast<std::uint16_t>(g));
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
    }
}

std::string GroupsCodec::format(const type& v) const {
    return join(v, [](std::uint16_t g) { return std::to_string(g); });
}

ExportProtocol ProtocolCodec::parse(std::string_view name, std::string_view text) const {
    switch (number(name, text, 5, 10, "must be 5, 9 or 10 (IPFIX)")) {
    case 5:
        return ExportProtocol::v5;
    case 9:
        return ExportProtocol::v9;
    case 10:
        return ExportProtocol::ipfix;
    default:
        throw ConfigError(name, "must be 5, 9 or 10 (IPFIX), " + quoted(text));
    }
}

std::uint32_t MtuCodec::parse(std::string_view name, std::string_view text) const {
    constexpr std::string_view what = "must be 0 (1500 less IP+UDP headers) or 512-65507 bytes";
    const auto v = number(name, text, 0, kMaxMessageSize, what);
    if (v != 0 && v < kMinMessageSize)
        throw ConfigError(name, std::string(what) + ", " + quoted(text));
    return static_cast<std::uint32_t>(v);
}

std::uint32_t RateCodec::parse(std::string_view name, std::string_view text) const {
    constexpr std::string_view what =
        "must be 0 (unpaced) or 65536-4000000000 bytes per second (k, M, G: x1000)";
    constexpr std::uint64_t lo = 65536, hi = 4'000'000'000;
    std::uint64_t scale = 1;
    std::string_view digits = text;
    if (!digits.empty()) {
        switch (digits.back()) {
        case 'k':
        case 'K':
            scale = 1'000;
            break;
        case 'M':
            scale = 1'000'000;
            break;
        case 'G':
            scale = 1'000'000'000;
            break;
        default:
            break;
        }
        if (scale != 1) digits.remove_suffix(1);
    }
    const auto v = parse_unsigned(digits, 0, hi / scale);
    if (!v || (*v != 0 && *v * scale < lo))
        throw ConfigError(name, std::string(what) + ", " + quoted(text));
    return static_cast<std::uint32_t>(*v * scale);
}

DestinationsCodec::type DestinationsCodec::parse(std::string_view name,
                                                 std::string_view text) const {
    try {
        return parse_destinations(text);
    } catch (const std::invalid_argument& e) {
        throw ConfigError(name, e.what());
    }
}

void DestinationsCodec::append(std::string_view name, type& into, std::string_view text) const {
    // Parsed as one list, so a collector named twice is refused like within one value.
    into = parse(name, format(into) + "," + std::string(text));
}

std::string DestinationsCodec::format(const type& v) const {
    return join(v, [](const Destination& d) { return d.text; });
}

} // namespace nflowd::options
