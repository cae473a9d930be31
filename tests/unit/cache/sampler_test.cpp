#include "nflowd/sampler.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace nflowd {
namespace {

TEST(SamplerConfig, ParsesIptNetflowForms) {
    EXPECT_EQ(SamplerConfig::parse(""), SamplerConfig{});
    EXPECT_EQ(SamplerConfig::parse("0"), SamplerConfig{});
    EXPECT_EQ(SamplerConfig::parse("none"), SamplerConfig{});
    const auto d = SamplerConfig::parse("deterministic:10");
    EXPECT_EQ(d.mode, SamplerConfig::Mode::deterministic);
    EXPECT_EQ(d.interval, 10U);
    EXPECT_EQ(SamplerConfig::parse("random:2").mode, SamplerConfig::Mode::random);
    EXPECT_EQ(SamplerConfig::parse("hash:16383").interval, 16383U);
    for (const char* s : {"deterministic:10", "random:2", "hash:16383"})
        EXPECT_EQ(SamplerConfig::parse(s).to_string(), s);
    EXPECT_EQ(SamplerConfig{}.to_string(), "none");
}

TEST(SamplerConfig, RejectsWhatIptNetflowRejects) {
    for (const char* s : {"deterministic", "deterministic:1", "random:16384", "hash:0", "hash:",
                          "systematic:10", "random:10x", "random:-5", ":10", "random: 10"}) {
        EXPECT_THROW(SamplerConfig::parse(s), std::invalid_argument) << s;
    }
}

TEST(FlowSampler, DeterministicKeepsExactlyEveryNthFlowStartingWithTheFirst) {
    FlowSampler s(SamplerConfig::parse("deterministic:10"));
    int kept = 0;
    for (int i = 0; i < 1000; ++i) {
        const bool k = s.keep();
        EXPECT_EQ(k, i % 10 == 0) << i;
        kept += k ? 1 : 0;
    }
    EXPECT_EQ(kept, 100);
    // A new configuration starts a new interval with a kept flow.
    s.keep();
    s.set_config(SamplerConfig::parse("deterministic:3"));
    EXPECT_TRUE(s.keep());
    EXPECT_FALSE(s.keep());
    EXPECT_FALSE(s.keep());
    EXPECT_TRUE(s.keep());
}

TEST(FlowSampler, RandomKeepsAboutOneInN) {
    FlowSampler s(SamplerConfig::parse("random:10"), 12345);
    int kept = 0;
    constexpr int kFlows = 200'000;
    for (int i = 0; i < kFlows; ++i) kept += s.keep() ? 1 : 0;
    // Binomial(200000, 0.1): sd ~134; 5 sd either side.
    EXPECT_NEAR(kept, kFlows / 10, 700);
}

TEST(FlowSampler, NoneAndHashKeepEveryFlowAtExport) {
    FlowSampler none;
    FlowSampler hash(SamplerConfig::parse("hash:7"));
    for (int i = 0; i < 100; ++i) {
        EXPECT_TRUE(none.keep());
        EXPECT_TRUE(hash.keep()); // the hash sampler chose when the packets came
    }
}

TEST(HashSelected, OneInNOfTheFlowsAndAlwaysTheSameOnes) {
    const HashKey secret{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    int kept = 0;
    constexpr int kFlows = 100'000;
    for (int i = 0; i < kFlows; ++i) {
        FlowKey k;
        k.src_addr = 0x0a000000U + static_cast<std::uint32_t>(i);
        k.dst_addr = 0xc0000201U;
        k.src_port = static_cast<std::uint16_t>(i * 7);
        k.dst_port = 80;
        k.protocol = 6;
        const bool sel = hash_selected(secret, k, 10);
        EXPECT_EQ(sel, hash_selected(secret, k, 10)); // every packet of a flow: same choice
        kept += sel ? 1 : 0;
    }
    EXPECT_NEAR(kept, kFlows / 10, 500);
    // Another secret, another sample: a sender cannot know which flows are seen.
    const HashKey other{1, 2};
    int same = 0;
    for (int i = 0; i < 1000; ++i) {
        FlowKey k;
        k.src_addr = static_cast<std::uint32_t>(i);
        same += hash_selected(secret, k, 2) == hash_selected(other, k, 2) ? 1 : 0;
    }
    EXPECT_GT(same, 400);
    EXPECT_LT(same, 600);
}

TEST(Announce, SamplerRuleRateOrUnsampled) {
    const auto none = announce({}, 0);
    EXPECT_EQ(none.interval, 1U);
    EXPECT_EQ(none.algorithm, 0);
    EXPECT_EQ(none.v5_field(), 0);

    const auto det = announce(SamplerConfig::parse("deterministic:100"), 1);
    EXPECT_EQ(det.interval, 100U);
    EXPECT_EQ(det.algorithm, 1);
    EXPECT_EQ(det.v5_field(), 0x4000 | 100);

    // hash is announced as random, as ipt_NETFLOW does.
    const auto hash = announce(SamplerConfig::parse("hash:16383"), 1);
    EXPECT_EQ(hash.algorithm, 2);
    EXPECT_EQ(hash.v5_field(), 0x8000 | 16383);

    // A rule that samples 1 in 50 packets: announced as random 1-in-50.
    const auto rule = announce({}, 50);
    EXPECT_EQ(rule.interval, 50U);
    EXPECT_EQ(rule.algorithm, 2);
    EXPECT_EQ(rule.packet_rate, 50U);
    // Too big for v5's 14 bits: v5 cannot say it, the v9/IPFIX options record can.
    EXPECT_EQ(announce({}, 100000).v5_field(), 0);

    // Both: the flows stand for interval * rate of the traffic; random to a collector.
    const auto both = announce(SamplerConfig::parse("deterministic:10"), 4);
    EXPECT_EQ(both.interval, 40U);
    EXPECT_EQ(both.algorithm, 2);
    EXPECT_EQ(both.v5_field(), 0x8000 | 40);
    EXPECT_EQ(announce(SamplerConfig::parse("random:16383"), 1'000'000'000).interval, UINT32_MAX);
}

} // namespace
} // namespace nflowd
