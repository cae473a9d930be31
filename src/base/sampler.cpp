#include "nflowd/sampler.hpp"

#include "nflowd/number.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <utility>

namespace nflowd {

namespace {

constexpr std::array<std::pair<std::string_view, SamplerConfig::Mode>, 3> kModes{{
    {"deterministic", SamplerConfig::Mode::deterministic},
    {"random", SamplerConfig::Mode::random},
    {"hash", SamplerConfig::Mode::hash},
}};

[[noreturn]] void reject(std::string_view text, std::string_view why) {
    std::string msg = "sampler: \"";
    msg += text;
    msg += "\": ";
    msg += why;
    throw std::invalid_argument(msg);
}

} // namespace

SamplerConfig SamplerConfig::parse(std::string_view text) {
    if (text.empty() || text == "0" || text == "none") return {};
    const auto colon = text.find(':');
    if (colon == std::string_view::npos)
        reject(text, "expected MODE:N (deterministic, random, hash)");
    const std::string_view name = text.substr(0, colon);
    SamplerConfig c;
    bool known = false;
    for (const auto& [n, m] : kModes) {
        if (n == name) {
            c.mode = m;
            known = true;
        }
    }
    if (!known) reject(text, "unknown mode (deterministic, random, hash)");
    const auto n = parse_unsigned(text.substr(colon + 1), 2, kMaxSamplerInterval);
    if (!n) reject(text, "N must be 2-16383");
    c.interval = static_cast<std::uint32_t>(*n);
    return c;
}

std::string SamplerConfig::to_string() const {
    for (const auto& [n, m] : kModes) {
        if (m == mode) return std::string(n) + ":" + std::to_string(interval);
    }
    return "none";
}

std::uint16_t SamplingAnnouncement::v5_field() const noexcept {
    // Cisco's layout: 01 = deterministic, 10 = random in the top two bits. An interval above
    // 14 bits cannot be said in v5; 0 means unsampled there.
    if (algorithm == 0 || interval > kMaxSamplerInterval) return 0;
    return static_cast<std::uint16_t>((std::uint32_t{algorithm} << 14) | interval);
}

SamplingAnnouncement announce(const SamplerConfig& sampler, std::uint32_t sampling_rate) noexcept {
    SamplingAnnouncement a;
    a.packet_rate = sampling_rate == 0 ? 1 : sampling_rate;
    // Packets sampled by the rule: to a collector that is random 1-in-N packet sampling.
    if (a.packet_rate > 1) a.algorithm = 2;
    if (sampler.sampled()) {
        a.algorithm = sampler.mode == SamplerConfig::Mode::deterministic ? 1 : 2;
        // Deterministic flows of randomly sampled packets are random to a collector.
        if (a.packet_rate > 1) a.algorithm = 2;
    }
    const std::uint64_t n = std::uint64_t{sampler.sampled() ? sampler.interval : 1} * a.packet_rate;
    a.interval = static_cast<std::uint32_t>(std::min<std::uint64_t>(n, UINT32_MAX));
    return a;
}

FlowSampler::FlowSampler(const SamplerConfig& config, std::uint64_t seed) : rng_(seed) {
    set_config(config);
}

void FlowSampler::set_config(const SamplerConfig& config) noexcept {
    config_ = config;
    countdown_ = 0; // the next flow is kept: a new interval starts with a sample
}

bool FlowSampler::keep() noexcept {
    switch (config_.mode) {
    case SamplerConfig::Mode::deterministic:
        if (countdown_ == 0) {
            countdown_ = config_.interval - 1;
            return true;
        }
        --countdown_;
        return false;
    case SamplerConfig::Mode::random:
        // Lemire's multiply-shift on 32 random bits: probability 1/N up to 2^-32.
        return ((std::uint64_t{static_cast<std::uint32_t>(rng_() >> 32)} * config_.interval) >>
                32) == 0;
    case SamplerConfig::Mode::none:
    case SamplerConfig::Mode::hash:
        break;
    }
    return true;
}

} // namespace nflowd
