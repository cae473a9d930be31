// The value types of nflowd's options: how each turns text into its Config field and back,
// with the range or check that refuses a bad value (internal to the option table).
#pragma once

#include "nflowd/aggregation.hpp"
#include "nflowd/clock.hpp"
#include "nflowd/collector_set.hpp"
#include "nflowd/ipfix_encoder.hpp"
#include "nflowd/sampler.hpp"
#include "nflowd/snmp_rules.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nflowd::options {

// Strict decimal within [lo, hi]; else ConfigError "--name: what, got \"text\"".
std::uint64_t number(std::string_view name, std::string_view text, std::uint64_t lo,
                     std::uint64_t hi, std::string_view what);
// --threads 0 (the default) means one worker per CPU.
std::size_t threads_or_cpus(std::size_t threads) noexcept;

template <class T> struct UnsignedCodec {
    using type = T;
    std::uint64_t lo;
    std::uint64_t hi;
    std::string_view what; // the error: "must be 40-65535 bytes"

    T parse(std::string_view name, std::string_view text) const {
        return static_cast<T>(number(name, text, lo, hi, what));
    }
    std::string format(const T& v) const { return std::to_string(v); }
};

// Whole seconds, stored as Nanos; within [1, hi].
struct SecondsCodec {
    using type = Nanos;
    std::uint64_t hi;
    std::string_view what; // the error: "must be 1-4294967 seconds"
    Nanos parse(std::string_view name, std::string_view text) const;
    std::string format(const Nanos& v) const;
};

struct ThreadsCodec {
    using type = std::size_t;
    std::size_t parse(std::string_view name, std::string_view text) const;
    std::string format(const std::size_t& v) const;
};

struct TextCodec {
    using type = std::string;
    bool required = false; // refuse an empty value
    std::string parse(std::string_view name, std::string_view text) const;
    std::string format(const std::string& v) const { return v; }
};

// A switch in the config file's words: "yes" or "no", nothing else.
struct YesNoCodec {
    using type = bool;
    bool parse(std::string_view name, std::string_view text) const;
    std::string format(const bool& v) const { return v ? "yes" : "no"; }
};

// A switch (--natevents): given alone on the command line it means 1; the file and nflowctl
// say 1 or 0 (yes/no too). CodecValue takes no token for it.
struct SwitchCodec {
    using type = bool;
    static constexpr bool kSwitch = true;
    bool parse(std::string_view name, std::string_view text) const;
    std::string format(const bool& v) const { return v ? "1" : "0"; }
};

struct ChoiceCodec {
    using type = std::string;
    std::vector<std::string_view> choices;
    std::string parse(std::string_view name, std::string_view text) const;
    std::string format(const std::string& v) const { return v; }
};

// A user name that must exist now, not only once the daemon has bound and drops root.
struct UserCodec {
    using type = std::string;
    std::string parse(std::string_view name, std::string_view text) const;
    std::string format(const std::string& v) const { return v; }
};

// A group name or gid; "" for none. Shown as given, compared as the gid.
struct GroupCodec {
    using type = std::optional<std::uint32_t>;
    type parse(std::string_view name, std::string_view text) const;
    std::string format(const type& v) const;
    std::string display(const type&, std::string_view text) const { return std::string(text); }
};

struct AggregationCodec {
    using type = Aggregation;
    Aggregation parse(std::string_view name, std::string_view text) const;
    std::string format(const Aggregation& v) const { return v.to_string(); }
};

// "none" (or empty) for no rules, as --sampler says it.
struct SnmpRulesCodec {
    using type = SnmpRules;
    SnmpRules parse(std::string_view name, std::string_view text) const;
    std::string format(const SnmpRules& v) const { return v.empty() ? "none" : v.to_string(); }
};

struct SamplerCodec {
    using type = SamplerConfig;
    SamplerConfig parse(std::string_view name, std::string_view text) const;
    std::string format(const SamplerConfig& v) const { return v.to_string(); }
};

// Repeatable: every --group adds groups, each once.
struct GroupsCodec {
    using type = std::vector<std::uint16_t>;
    type parse(std::string_view name, std::string_view text) const;
    void append(std::string_view name, type& into, std::string_view text) const;
    std::string format(const type& v) const;
};

// The NetFlow version: 5, 9 or 10 (IPFIX), ipt_NETFLOW's values.
struct ProtocolCodec {
    using type = ExportProtocol;
    ExportProtocol parse(std::string_view name, std::string_view text) const;
    std::string format(const ExportProtocol& v) const {
        return std::to_string(static_cast<int>(v));
    }
};

// --export_rate: bytes per second, 0 (unpaced) or at least one burst a second; a k, M or G
// suffix multiplies by 10^3, 10^6, 10^9 (link speeds are decimal). A value below 65536 is
// refused rather than taken: it was a datagram count before the rate was in bytes.
struct RateCodec {
    using type = std::uint32_t;
    std::uint32_t parse(std::string_view name, std::string_view text) const;
    std::string format(const std::uint32_t& v) const { return std::to_string(v); }
};

// 0 (the collector family's default) or a size that holds every template: 512-65507.
struct MtuCodec {
    using type = std::uint32_t;
    std::uint32_t parse(std::string_view name, std::string_view text) const;
    std::string format(const std::uint32_t& v) const { return std::to_string(v); }
};

// Repeatable: every --destination adds collectors; a repeated collector is refused.
struct DestinationsCodec {
    using type = std::vector<Destination>;
    type parse(std::string_view name, std::string_view text) const;
    void append(std::string_view name, type& into, std::string_view text) const;
    std::string format(const type& v) const;
};

} // namespace nflowd::options
