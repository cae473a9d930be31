// The Controller with a fake pipeline and fake sources: knobs, all-or-nothing set and reload,
// flush levels, statistics gathering and the tick, all without root or threads.
#include "nflowd/controller.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <new>
#include <system_error>

namespace nflowd {
namespace {

// Records every call, in order, as "name(value)"; a call named in `fail_on` throws.
class FakePipeline final : public PipelineControl {
  public:
    void set_timeouts(Nanos inactive, Nanos active) override {
        call("timeouts(" + std::to_string(inactive / kNanosPerSecond) + "," +
             std::to_string(active / kNanosPerSecond) + ")");
    }
    void set_hashsize(std::size_t n) override { call("hashsize(" + std::to_string(n) + ")"); }
    void set_maxflows(std::size_t n) override { call("maxflows(" + std::to_string(n) + ")"); }
    void set_aggregation(Aggregation a) override { call("aggregation(" + a.to_string() + ")"); }
    void set_collectors(CollectorSet c) override {
        call("collectors(" + std::to_string(c.size()) + ")");
    }
    void set_v5_params(const V5Params& p) override {
        call("engine_id(" + std::to_string(p.engine_id) + ")");
    }
    void set_sndbuf(int n) override { call("sndbuf(" + std::to_string(n) + ")"); }
    void set_pacing(const PacingConfig& p) override {
        call("pacing(" + std::to_string(p.rate) + ")");
    }
    void set_export_format(const ExportFormat& f) override {
        call("format(" + std::to_string(static_cast<int>(f.protocol)) + "," +
             std::to_string(f.template_refresh_rate) + "," +
             std::to_string(f.template_timeout_rate) + "," + std::to_string(f.mtu) + ")");
    }
    void send_templates() override { call("send_templates()"); }
    void set_ipv6(bool accept) override { call("ipv6(" + std::to_string(accept) + ")"); }
    void report_ignored_packets(std::uint64_t n) noexcept override { ignored = n; }
    void flush() override { call("flush()"); }
    // Every flow, as a pipeline of one shard with more than `top` flows would not: the
    // Controller must cut to `top` itself.
    FlowSelection select_flows(std::size_t, FlowRank) override { return {flows.size(), flows}; }
    void reset_stats() override { call("reset_stats()"); }
    PipelineStats stats() const override { return stats_; }

    std::vector<std::string> calls;
    std::uint64_t ignored = 0; // the last report_ignored_packets
    std::string fail_on;
    std::vector<FlowRecord> flows;
    PipelineStats stats_;

  private:
    void call(const std::string& what) {
        if (!fail_on.empty() && what.rfind(fail_on, 0) == 0) throw std::bad_alloc();
        calls.push_back(what);
    }
};

class FakeSources final : public SourceStats {
  public:
    std::vector<GroupStats> group_stats() const override { return groups; }
    void reset_stats() override { ++resets; }
    std::vector<GroupStats> groups;
    int resets = 0;
};

// The live clock's wall source: flow time (CLOCK_MONOTONIC) plus a fixed, known offset.
constexpr Nanos kWallOffset = 1'700'000'000 * kNanosPerSecond;
Nanos offset_wall() noexcept {
    return steady_time() + kWallOffset;
}

struct Fixture {
    Fixture() {
        Config c = default_config();
        apply_option(c, "group", "5");
        apply_option(c, "hashsize", "1024");
        controller = std::make_unique<Controller>(c, started, parts());
    }
    ControllerParts parts() {
        return {pipeline,
                sources,
                log,
                clock,
                [this](const std::vector<Destination>& d, int sndbuf) {
                    ++opened;
                    if (refuse_destinations)
                        throw std::system_error(EMFILE, std::generic_category(),
                                                "destination " + d.at(0).text);
                    return CollectorSet(d, sndbuf);
                },
                {},
                {},
                {}};
    }
    std::string value(const std::string& knob) { return controller->get({knob}).at(0).value; }

    Clock clock{Clock::Mode::live, offset_wall};
    const Nanos started = steady_time() - 90 * kNanosPerSecond; // flow time
    FakePipeline pipeline;
    FakeSources sources;
    Logger log{"controller_test", false, 0};
    int opened = 0;
    bool refuse_destinations = false;
    std::unique_ptr<Controller> controller;
};

int error_of(const std::function<void()>& fn, std::string* message = nullptr) {
    try {
        fn();
    } catch (const ControlError& e) {
        if (message) *message = e.what();
        return e.error();
    }
    return 0;
}

TEST(Controller, ListsIptNetflowKnobsWithWritableFromTheOptionTable) {
    Fixture f;
    const auto knobs = f.controller->knobs();
    std::vector<std::string> names;
    for (const auto& k : knobs) names.push_back(k.name);
    EXPECT_EQ(names, (std::vector<std::string>{"active_timeout",
                                               "aggregation",
                                               "debug",
                                               "destination",
                                               "engine_id",
                                               "export_rate",
                                               "flush",
                                               "groups",
                                               "hashsize",
                                               "inactive_timeout",
                                               "maxflows",
                                               "mtu",
                                               "protocol",
                                               "sampler",
                                               "sampling_rate",
                                               "send_template",
                                               "sndbuf",
                                               "snaplen",
                                               "snmp_rules",
                                               "template_refresh_rate",
                                               "template_timeout_rate",
                                               "threads",
                                               "version"}));
    for (const auto& k : knobs) {
        if (k.name == "flush" || k.name == "send_template") {
            EXPECT_TRUE(k.writable);
            EXPECT_EQ(k.value, "0");
        } else if (k.name == "version" || k.name == "groups") {
            EXPECT_FALSE(k.writable) << k.name;
        } else {
            const auto* o = find_option(k.name);
            ASSERT_NE(o, nullptr) << k.name;
            EXPECT_EQ(k.writable, o->runtime) << k.name;
        }
    }
    EXPECT_EQ(f.value("groups"), "5");
    EXPECT_EQ(f.value("hashsize"), "1024");
}

TEST(Controller, GetResolvesAnySpellingAndRefusesUnknownNames) {
    Fixture f;
    const auto got = f.controller->get({"active-timeout", "inactive_timeout"});
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].name, "active_timeout");
    EXPECT_EQ(got[0].value, "1800");
    EXPECT_EQ(error_of([&] { f.controller->get({"nope"}); }), ENOENT);
}

TEST(Controller, SetAppliesOnlyWhatChangedAndEchoesTheKnobs) {
    Fixture f;
    const auto out = f.controller->set({{"hashsize", "4096"}, {"active-timeout", "60"}});
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].name, "hashsize");
    EXPECT_EQ(out[0].value, "4096");
    EXPECT_EQ(out[1].name, "active_timeout");
    EXPECT_EQ(out[1].value, "60");
    EXPECT_EQ(f.pipeline.calls, (std::vector<std::string>{"timeouts(15,60)", "hashsize(4096)"}));
    f.pipeline.calls.clear();
    f.controller->set({{"hashsize", "4096"}}); // unchanged: nothing to do
    EXPECT_TRUE(f.pipeline.calls.empty());
}

TEST(Controller, RefusalsChangeNothing) {
    Fixture f;
    std::string why;
    EXPECT_EQ(error_of([&] { f.controller->set({{"hashsize", "4096"}, {"nope", "1"}}); }), ENOENT);
    EXPECT_EQ(error_of([&] {
                  f.controller->set({{"hashsize", "4096"}, {"snaplen", "64"}});
              }),
              EROFS);
    EXPECT_EQ(error_of(
                  [&] {
                      f.controller->set({{"hashsize", "4096"}, {"maxflows", "x"}});
                  },
                  &why),
              EINVAL);
    EXPECT_NE(why.find("maxflows: must be"), std::string::npos) << why;
    EXPECT_EQ(error_of([&] { f.controller->set({{"flush", "3"}}); }, &why), EINVAL);
    EXPECT_NE(why.find("flush: must be 0, 1"), std::string::npos) << why;
    EXPECT_TRUE(f.pipeline.calls.empty());
    EXPECT_EQ(f.value("hashsize"), "1024");
}

TEST(Controller, ValueErrorsNameTheKnobWithoutDashes) {
    Fixture f;
    std::string why;
    EXPECT_EQ(error_of([&] { f.controller->set({{"hashsize", "12"}}); }, &why), EINVAL);
    EXPECT_EQ(why.rfind("hashsize: must be 256-", 0), 0u) << why;
}

TEST(Controller, ADestinationThatCannotBeOpenedChangesNothing) {
    Fixture f;
    f.refuse_destinations = true;
    std::string why;
    EXPECT_EQ(error_of(
                  [&] {
                      f.controller->set({{"hashsize", "4096"}, {"destination", "127.0.0.1:9"}});
                  },
                  &why),
              EIO);
    EXPECT_NE(why.find("127.0.0.1:9"), std::string::npos) << why;
    EXPECT_EQ(f.opened, 1);
    EXPECT_TRUE(f.pipeline.calls.empty()); // opened before any other step
    EXPECT_EQ(f.value("hashsize"), "1024");
    EXPECT_EQ(f.value("destination"), "127.0.0.1:2055");
}

TEST(Controller, AStepThatFailsRestoresTheStepsBeforeIt) {
    Fixture f;
    f.pipeline.fail_on = "maxflows";
    EXPECT_EQ(error_of([&] {
                  f.controller->set(
                      {{"inactive_timeout", "5"}, {"hashsize", "4096"}, {"maxflows", "10"}});
              }),
              EIO);
    EXPECT_EQ(f.pipeline.calls, (std::vector<std::string>{"timeouts(5,1800)", "hashsize(4096)",
                                                          "hashsize(1024)", "timeouts(15,1800)"}));
    EXPECT_EQ(f.value("hashsize"), "1024");
    EXPECT_EQ(f.value("inactive_timeout"), "15");
}

TEST(Controller, NewDestinationsAreSwappedInWithTheirSndbuf) {
    Fixture f;
    f.controller->set({{"destination", "127.0.0.1:9995,127.0.0.1:9996"}, {"sndbuf", "65536"}});
    EXPECT_EQ(f.pipeline.calls, (std::vector<std::string>{"collectors(2)"}));
    f.pipeline.calls.clear();
    f.controller->set({{"sndbuf", "131072"}});
    EXPECT_EQ(f.pipeline.calls, (std::vector<std::string>{"sndbuf(131072)"}));
}

TEST(Controller, FlushLevels) {
    Fixture f;
    f.controller->flush(1);
    EXPECT_EQ(f.pipeline.calls, (std::vector<std::string>{"flush()"}));
    EXPECT_EQ(f.sources.resets, 0);
    const auto out = f.controller->set({{"flush", "2"}});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].value, "2");
    EXPECT_EQ(f.pipeline.calls, (std::vector<std::string>{"flush()", "flush()", "reset_stats()"}));
    EXPECT_EQ(f.sources.resets, 1);
}

TEST(Controller, ProtocolAndTemplateKnobsReachTheExporterInOneStep) {
    Fixture f;
    const auto out = f.controller->set({{"protocol", "10"}, {"template_refresh_rate", "7"}});
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].value, "10");
    EXPECT_EQ(f.pipeline.calls, (std::vector<std::string>{"format(10,7,60,0)", "ipv6(1)"}));
    f.pipeline.calls.clear();
    f.controller->set({{"mtu", "1400"}, {"template-timeout-rate", "5"}, {"protocol", "9"}});
    EXPECT_EQ(f.pipeline.calls, (std::vector<std::string>{"format(9,7,5,1400)"}));
    f.pipeline.calls.clear();
    // Back to v5: the IPv6 flows leave while v9 still carries them, then the switch.
    f.controller->set({{"protocol", "5"}});
    EXPECT_EQ(f.pipeline.calls, (std::vector<std::string>{"ipv6(0)", "format(5,7,5,1400)"}));
    f.controller->set({{"protocol", "9"}});
    std::string why;
    EXPECT_EQ(error_of([&] { f.controller->set({{"protocol", "7"}}); }, &why), EINVAL);
    EXPECT_NE(why.find("protocol: must be 5, 9 or 10"), std::string::npos) << why;
    EXPECT_EQ(error_of([&] { f.controller->set({{"mtu", "100"}}); }, &why), EINVAL);
    EXPECT_EQ(f.controller->get({"protocol"})[0].value, "9");
}

TEST(Controller, SendTemplateIsATriggerAfterAFlush) {
    Fixture f;
    const auto out = f.controller->set({{"send_template", "1"}, {"flush", "1"}});
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].value, "1");
    EXPECT_EQ(out[1].value, "1");
    EXPECT_EQ(f.pipeline.calls, (std::vector<std::string>{"flush()", "send_templates()"}));
    f.pipeline.calls.clear();
    f.controller->set({{"send-template", "0"}});
    EXPECT_TRUE(f.pipeline.calls.empty());
    EXPECT_EQ(error_of([&] { f.controller->set({{"send_template", "2"}}); }), EINVAL);
    EXPECT_EQ(f.controller->get({"send_template"})[0].value, "0");
}

TEST(Controller, ReloadAppliesRunTimeOptionsAndOnlyLogsTheOthers) {
    Fixture f;
    Config next = f.controller->config();
    apply_option(next, "snaplen", "256");
    apply_option(next, "maxflows", "500");
    testing::internal::CaptureStderr();
    f.controller->reload(next);
    const auto log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("snaplen changed; it takes effect only after a restart"), std::string::npos)
        << log;
    EXPECT_EQ(f.pipeline.calls, (std::vector<std::string>{"maxflows(500)"}));
    EXPECT_EQ(f.value("maxflows"), "500");
    EXPECT_EQ(f.value("snaplen"), "128");
}

TEST(Controller, AReloadThatFailsIsLoggedAndChangesNothing) {
    Fixture f;
    f.refuse_destinations = true;
    const Config before = f.controller->config();
    Config next = before;
    apply_option(next, "destination", "127.0.0.1:9");
    apply_option(next, "maxflows", "500");
    testing::internal::CaptureStderr();
    f.controller->reload(next); // never throws: SIGHUP must not end the daemon
    const auto log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("SIGHUP: configuration not changed"), std::string::npos) << log;
    EXPECT_TRUE(f.pipeline.calls.empty());
    EXPECT_TRUE(f.controller->config() == before);
    EXPECT_EQ(f.value("maxflows"), "2000000");
}

TEST(Controller, TickSamplesThePeakAndReportGathersEveryStage) {
    Fixture f;
    WorkerStats w;
    w.table.active = 7;
    w.hashsize = 1024;
    f.pipeline.stats_.workers = {w, w};
    f.pipeline.stats_.peak = 14; // the pipeline's exact high-water mark
    f.sources.groups = {GroupStats{5, {}}};
    f.sources.groups[0].nflog.lost = 3;
    f.sources.groups[0].nflog.lost_packets = 40;
    f.sources.groups.push_back(GroupStats{6, {}});
    f.sources.groups[1].nflog.lost_packets = 2;
    testing::internal::CaptureStderr();
    f.controller->tick();
    const auto log = testing::internal::GetCapturedStderr();
    EXPECT_EQ(f.pipeline.ignored, 42u) << "NFLOG losses reach the IPFIX statistics record";
    EXPECT_NE(log.find("NFLOG group 5: 3 messages lost"), std::string::npos) << log;
    f.pipeline.stats_ = {}; // as after flush 2 in the pipeline: the Controller keeps its sample
    const auto r = f.controller->report();
    EXPECT_EQ(r.peak, 14u);
    EXPECT_NE(r.peak_time, 0);
    ASSERT_EQ(r.groups.size(), 2u);
    EXPECT_EQ(r.groups[0].nflog.lost, 3u);
    const auto text = f.controller->stats(ctl::StatsFormat::text);
    EXPECT_NE(text.find("group 5: received 0, lost 3"), std::string::npos) << text;
}

TEST(Controller, FlowsAreSortedAndCutToTop) {
    Fixture f;
    for (std::uint32_t i = 1; i <= 5; ++i) {
        FlowRecord r;
        r.octets = i * 100;
        r.packets = 6 - i;
        r.first = i;
        f.pipeline.flows.push_back(r);
    }
    const auto top = f.controller->flows(2, ctl::FlowSort::bytes);
    EXPECT_EQ(top.total, 5u);
    ASSERT_EQ(top.flows.size(), 2u);
    EXPECT_EQ(top.flows[0].octets, 500u);
    EXPECT_EQ(top.flows[1].octets, 400u);
    const auto all = f.controller->flows(0, ctl::FlowSort::packets);
    ASSERT_EQ(all.flows.size(), 5u);
    EXPECT_EQ(all.flows[0].packets, 5u);
}

// Flows carry flow time (CLOCK_MONOTONIC); nflowctl shows wall times and ages: the dump is
// converted with one wall offset, so the ages are exact whatever the wall clock did.
TEST(Controller, FlowDumpAndReportAreInWallTime) {
    Fixture f;
    const Nanos now = steady_time();
    FlowRecord r;
    r.first = now - 10 * kNanosPerSecond;
    r.last = now - 2 * kNanosPerSecond;
    f.pipeline.flows.push_back(r);
    const auto d = f.controller->flows(0, ctl::FlowSort::none);
    ASSERT_EQ(d.flows.size(), 1u);
    const Nanos tolerance = 500 * kNanosPerMilli;
    EXPECT_NEAR(double(d.now), double(now + kWallOffset), double(tolerance));
    EXPECT_NEAR(double(d.flows[0].first), double(r.first + kWallOffset), double(tolerance));
    EXPECT_NEAR(double(d.flows[0].first - d.now), -10e9, double(tolerance));
    EXPECT_EQ(d.flows[0].last - d.flows[0].first, 8 * kNanosPerSecond);

    const auto report = f.controller->report();
    EXPECT_NEAR(double(report.now), double(now + kWallOffset), double(tolerance));
    EXPECT_NEAR(double(report.now - report.started), 90e9, double(tolerance));
}

} // namespace
} // namespace nflowd
