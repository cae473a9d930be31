#include "nflowd/config.hpp"
#include "nflowd/stats_report.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

namespace nflowd {
namespace {

constexpr Nanos kStep = RateMeter::kInterval;

TEST(RateMeter, ConvergesLikeALoadAverage) {
    RateMeter m;
    std::uint64_t packets = 0, bytes = 0;
    Nanos t = 1000 * kNanosPerSecond;
    m.sample(t, packets, bytes); // base only
    EXPECT_EQ(m.rates().pps[0], 0.0);
    // 15 minutes at 1000 packets/s of 100 bytes.
    for (int i = 0; i < 180; ++i) {
        t += kStep;
        packets += 5000;
        bytes += 500000;
        m.sample(t, packets, bytes);
    }
    EXPECT_NEAR(m.rates().pps[0], 1000.0, 1.0);
    EXPECT_NEAR(m.rates().bps[0], 800000.0, 800.0);
    EXPECT_NEAR(m.rates().pps[1], 1000.0 * (1 - std::exp(-3.0)), 1.0);
    EXPECT_NEAR(m.rates().pps[2], 1000.0 * (1 - std::exp(-1.0)), 1.0);
    // Traffic stops: the 1-minute average falls first.
    for (int i = 0; i < 12; ++i) {
        t += kStep;
        m.sample(t, packets, bytes);
    }
    EXPECT_NEAR(m.rates().pps[0], 1000.0 * std::exp(-1.0), 1.0);
    EXPECT_GT(m.rates().pps[2], m.rates().pps[0]);
}

TEST(RateMeter, ZeroedCountersRestartTheBase) {
    RateMeter m;
    m.sample(kStep, 1000, 1000);
    m.sample(2 * kStep, 2000, 2000);
    const auto before = m.rates().pps[0];
    m.sample(3 * kStep, 10, 10); // `set flush 2`: no negative rate, no jump
    EXPECT_EQ(m.rates().pps[0], before);
    EXPECT_FALSE(m.due(3 * kStep + kStep / 2));
    EXPECT_TRUE(m.due(4 * kStep));
}

StatsReport sample_report() {
    StatsReport r;
    r.version = "0.1.0";
    r.started = 1'700'000'000 * kNanosPerSecond;
    r.now = r.started + 90061 * kNanosPerSecond;
    r.active_timeout = 1800 * kNanosPerSecond;
    r.inactive_timeout = 15 * kNanosPerSecond;
    r.maxflows = 2000000;
    r.peak = 7;
    r.peak_time = r.started + kNanosPerSecond;
    WorkerStats w;
    w.table.searched = 30;
    w.table.packets = 18;
    w.table.dropped_packets = 2;
    w.table.octets = 1800;
    w.table.active = 3;
    w.table.peak = 4;
    w.hashsize = 1024;
    r.pipeline.workers = {w, w};
    r.pipeline.exporter.flows = 31;
    r.pipeline.exporter.datagrams = 2;
    r.pipeline.exporter.bytes = 1536;
    CollectorStats c;
    c.destination = "127.0.0.1:2055";
    c.datagrams = 2;
    c.err_refused = 1;
    c.sndbuf = 212992;
    r.pipeline.collectors = {c};
    GroupStats g;
    g.group = 5;
    g.nflog.packets = 40;
    g.nflog.lost = 2;
    r.groups = {g};
    return r;
}

TEST(StatsReport, TextHasEveryLineScriptsLookFor) {
    const auto text = format_stats_text(sample_report());
    for (const char* want : {
             "nflowd 0.1.0, up 90061 s (1d 01:01:01)\n",
             "timeouts: active 1800 s, inactive 15 s\n",
             "flows: active 6, peak 7 at 2023-11-14T22:13:21Z",
             "hash: size 2048, metric 1.50, searched 60, found 0, new 0\n",
             "in: packets 40, bytes 3600\n",
             "worker 1: active 3, peak 4, hashsize 1024, metric 1.50",
             "group 5: received 40, lost 2, enobufs 0",
             "export: flows 31, datagrams 2, bytes 1536,",
             "destination 127.0.0.1:2055: datagrams 2, bytes 0, errors: buffer full 0, refused 1",
             "sndbuf 212992\n",
         })
        EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
}

TEST(StatsReport, JsonIsOneWellFormedObject) {
    auto r = sample_report();
    r.pipeline.collectors[0].destination = "we\"ird\\dest\n";
    const auto json = format_stats_json(r);
    // Balanced outside strings, no raw control characters inside them.
    int depth = 0;
    bool in_string = false, escaped = false;
    for (const char c : json.substr(0, json.size() - 1)) {
        if (in_string) {
            EXPECT_GE(static_cast<unsigned char>(c), 0x20);
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '{' || c == '[')
            ++depth;
        else if (c == '}' || c == ']')
            --depth;
        EXPECT_GE(depth, 0);
    }
    EXPECT_EQ(depth, 0);
    EXPECT_FALSE(in_string);
    EXPECT_EQ(json.back(), '\n');
    for (const char* want : {"\"uptime\":90061", "\"hash\":{\"size\":2048,\"metric\":",
                             "\"received\":40", "\"lost\":2", "\"minutes\":15"})
        EXPECT_NE(json.find(want), std::string::npos) << want << "\n" << json;
    // nlohmann writes 1.500 as 1.5 and a line feed as \n: the same values as the hand-written
    // writer's "1.500" and \u000a, which these checked as text before.
    const auto parsed = nlohmann::json::parse(json);
    EXPECT_EQ(parsed["hash"]["metric"], 1.5);
    EXPECT_EQ(parsed["destinations"][0]["destination"], "we\"ird\\dest\n");
}

TEST(ControlGroupOption, TakesANameOrANumber) {
    Config c;
    apply_option(c, "control-group", "0");
    EXPECT_EQ(c.control_group, std::optional<std::uint32_t>(0));
    apply_option(c, "control_group", "root");
    EXPECT_EQ(c.control_group, std::optional<std::uint32_t>(0));
    EXPECT_EQ(option_value(c, "control_group"), "root");
    try {
        apply_option(c, "control_group", "no-such-group-nflowd");
        FAIL() << "no exception";
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.option(), "control_group");
        EXPECT_NE(std::string(e.what()).find("no such group"), std::string::npos);
    }
    apply_option(c, "control_group", "");
    EXPECT_FALSE(c.control_group.has_value());
    const auto it = std::find_if(option_table().begin(), option_table().end(),
                                 [](const OptionInfo& o) { return o.name == "control_group"; });
    ASSERT_NE(it, option_table().end());
    EXPECT_FALSE(it->runtime);
}

} // namespace
} // namespace nflowd
