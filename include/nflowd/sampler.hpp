// ipt_NETFLOW's flow sampler (`--sampler deterministic:N|random:N|hash:N`, RFC 7014 flow
// selection) and the sampling rate announced to collectors, with or without it.
#pragma once

#include "nflowd/packet.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

// Error idiom (cache): parse() throws std::invalid_argument naming the bad text; selection
// never fails and never throws.
namespace nflowd {

// ipt_NETFLOW's bound: N must fit the 14 bits of the v5 header's sampling interval.
constexpr std::uint32_t kMaxSamplerInterval = 16383;

struct SamplerConfig {
    // deterministic: every N-th flow that leaves the cache (systematic count-based);
    // random: each flow that leaves the cache with probability 1/N; both choose late, so the
    // cache still holds every flow. hash: 1 in N flows chosen by a keyed hash of the flow key
    // on each packet, so the other flows never enter the cache (saves memory and CPU);
    // collectors are told "random", as ipt_NETFLOW does, since it is random to them.
    enum class Mode : std::uint8_t { none, deterministic, random, hash };
    Mode mode = Mode::none;
    std::uint32_t interval = 0; // N, 2..kMaxSamplerInterval; 0 when mode is none

    // "", "0" or "none" -> none; "deterministic:N", "random:N", "hash:N" with N in 2..16383.
    static SamplerConfig parse(std::string_view text);
    std::string to_string() const; // "none" or "mode:N", parseable by parse()
    bool sampled() const noexcept { return mode != Mode::none; }
    friend bool operator==(const SamplerConfig&, const SamplerConfig&) = default;
};

// What collectors are told: the sampler's N times `--sampling_rate` (packets sampled by the
// rule itself: `-m statistic`, nft `numgen`), 1 when neither samples: the flows a collector
// sees stand for interval times the original traffic, so collectors that scale by
// samplingInterval alone (nfdump, Akvorado) get the totals back.
struct SamplingAnnouncement {
    std::uint32_t interval = 1;    // samplingInterval (IE 34): 1 = unsampled; saturates
    std::uint8_t algorithm = 0;    // samplingAlgorithm (IE 35): 0 none, 1 deterministic, 2 random
    std::uint32_t packet_rate = 1; // --sampling_rate (samplingPacketInterval, IE 305)
    // The v5 header's 16-bit sampling field: mode in the top 2 bits, interval in the low 14.
    std::uint16_t v5_field() const noexcept;
    friend bool operator==(const SamplingAnnouncement&, const SamplingAnnouncement&) = default;
};
SamplingAnnouncement announce(const SamplerConfig& sampler, std::uint32_t sampling_rate) noexcept;

// The late choice (deterministic and random) of one thread, the exporter's: keep() decides
// for each flow that leaves the cache. With mode none or hash every flow is kept.
class FlowSampler {
  public:
    explicit FlowSampler(const SamplerConfig& config = {}, std::uint64_t seed = 0);
    bool keep() noexcept;
    void set_config(const SamplerConfig& config) noexcept;
    const SamplerConfig& config() const noexcept { return config_; }

  private:
    SamplerConfig config_;
    std::uint32_t countdown_ = 0; // deterministic: flows to skip before the next kept one
    std::mt19937_64 rng_;
};

// The early choice (hash): true when the flow of `key` (FlowKey or FlowKey6) is one of the 1
// in `interval` kept. hash_key under a secret key, so a sender cannot pick flows that escape
// (or all fall into) the sample; Lemire's multiply-shift maps the hash onto [0, interval)
// without a division.
template <class Key>
constexpr bool hash_selected(const HashKey& secret, const Key& key,
                             std::uint32_t interval) noexcept {
    const auto h = static_cast<std::uint32_t>(hash_key(secret, key) >> 32);
    return interval <= 1 || ((std::uint64_t{h} * interval) >> 32) == 0;
}

// The hash sampler of one reader thread: every reader holds the same secret, so a flow seen
// by two NFLOG groups is kept or left out by both. Counts the packets it leaves out.
class PacketSampler {
  public:
    explicit PacketSampler(const HashKey& secret) noexcept : secret_(secret) {}
    // What this stage does with a configuration: hash mode's N, else 0 (keep every packet).
    static std::uint32_t interval_of(const SamplerConfig& c) noexcept {
        return c.mode == SamplerConfig::Mode::hash ? c.interval : 0;
    }
    void set_interval(std::uint32_t interval) noexcept { interval_ = interval; }
    template <class Key> bool keep(const Key& key) noexcept {
        if (interval_ <= 1 || hash_selected(secret_, key, interval_)) return true;
        ++sampled_out_;
        return false;
    }
    std::uint64_t sampled_out() const noexcept { return sampled_out_; }

  private:
    HashKey secret_;
    std::uint32_t interval_ = 0;
    std::uint64_t sampled_out_ = 0;
};

} // namespace nflowd
