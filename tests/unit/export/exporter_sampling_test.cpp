// The exporter's part of issue 13: the flow sampler's late choice (deterministic, random) and
// its announcement (v5 header, samplingInterval options record), and the interface names
// (options records of template 260, flow ifindexes through the table, re-sent on a change).
#include "nflowd/exporter.hpp"

#include "flow_decoder.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kBoot = 1'700'000'000'000'000'000;
constexpr PacingConfig kNoPacing{.rate = 0, .burst = 0};
constexpr V5Params kParams{.boot_time = kBoot, .engine_type = 0, .engine_id = 4};
constexpr std::uint16_t kIeInIf = 10, kIeOutIf = 14, kIeSamplingInterval = 34,
                        kIeSamplingAlgorithm = 35, kIeIfName = 82, kIeIfDescr = 83,
                        kV9ScopeInterface = 2;

std::vector<FlowRecord> flows(std::size_t n) {
    std::vector<FlowRecord> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        v[i].key.src_addr = 0x0a000000U + static_cast<std::uint32_t>(i);
        v[i].key.protocol = 17;
        v[i].key.in_if = 2;
        v[i].out_if = 3;
        v[i].packets = 1;
        v[i].octets = 100;
        v[i].first = v[i].last = kBoot;
    }
    return v;
}

CollectorSet collectors_for(const std::string& spec) {
    return CollectorSet(parse_destinations(spec), 0);
}

ExportFormat sampled(std::string_view sampler, std::uint32_t rate = 1) {
    ExportFormat f;
    f.sampler = SamplerConfig::parse(sampler);
    f.sampling_rate = rate;
    return f;
}

// v5 datagrams: the header's sampling field and the source addresses of the records.
struct V5Seen {
    std::vector<std::uint16_t> sampling;
    std::vector<std::uint32_t> sources;
};
std::uint32_t be(const std::vector<std::byte>& d, std::size_t at, std::size_t n) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = v << 8 | std::to_integer<std::uint32_t>(d.at(at + i));
    return v;
}
V5Seen drain_v5(test::UdpCollector& r) {
    V5Seen out;
    while (auto m = r.receive(200)) {
        const std::vector<std::byte> d(m->begin(), m->end());
        out.sampling.push_back(static_cast<std::uint16_t>(be(d, 22, 2)));
        for (std::size_t i = 0; i < be(d, 2, 2); ++i) out.sources.push_back(be(d, 24 + 48 * i, 4));
    }
    return out;
}

std::vector<test::DecodedRecord> drain_ipfix(test::UdpCollector& r, test::FlowDecoder& d) {
    std::vector<test::DecodedRecord> out;
    while (auto m = r.receive(200)) {
        auto msg = d.decode(*m);
        EXPECT_TRUE(msg) << d.error();
        if (!msg) break;
        out.insert(out.end(), msg->records.begin(), msg->records.end());
    }
    return out;
}

TEST(ExporterSampling, DeterministicKeepsExactlyTheFirstOfEveryTen) {
    test::UdpCollector r;
    Exporter ex(kParams, collectors_for(r.address()), kNoPacing, sampled("deterministic:10"));
    ex.add(flows(95), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    const auto seen = drain_v5(r);
    ASSERT_EQ(seen.sources.size(), 10U) << "ceil(95 / 10)";
    for (std::size_t i = 0; i < seen.sources.size(); ++i)
        EXPECT_EQ(seen.sources[i], 0x0a000000U + 10 * i);
    EXPECT_EQ(ex.stats().flows, 10U);
    EXPECT_EQ(ex.stats().sampled_out, 85U);
    for (auto s : seen.sampling) EXPECT_EQ(s, 0x4000 | 10) << "deterministic, 10";
}

TEST(ExporterSampling, UnsampledV5HeaderSaysZeroAndEveryFlowGoes) {
    test::UdpCollector r;
    Exporter ex(kParams, collectors_for(r.address()), kNoPacing);
    ex.add(flows(40), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    const auto seen = drain_v5(r);
    EXPECT_EQ(seen.sources.size(), 40U);
    EXPECT_EQ(ex.stats().sampled_out, 0U);
    for (auto s : seen.sampling) EXPECT_EQ(s, 0);
}

TEST(ExporterSampling, RandomKeepsAboutOneInN) {
    test::UdpCollector r;
    Exporter ex(kParams, collectors_for(r.address()), kNoPacing, sampled("random:4"));
    ex.add(flows(4000), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    EXPECT_EQ(ex.stats().flows + ex.stats().sampled_out, 4000U);
    EXPECT_NEAR(static_cast<double>(ex.stats().flows), 1000.0, 150.0); // > 5 sigma
    const auto seen = drain_v5(r);
    for (auto s : seen.sampling) EXPECT_EQ(s, 0x8000 | 4) << "random, 4";
}

// The options record says the announcement; a change goes out at the next tick.
TEST(ExporterSampling, IpfixAnnouncesTheIntervalAndReannouncesAChange) {
    test::UdpCollector r;
    Exporter ex(kParams, collectors_for(r.address() + "@10"), kNoPacing, sampled("hash:50"));
    ex.add(flows(3), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    test::FlowDecoder d;
    auto records = drain_ipfix(r, d);
    const auto sampling = [](const std::vector<test::DecodedRecord>& rs) {
        std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
        for (const auto& rec : rs)
            if (rec.has(kIeSamplingInterval))
                out.emplace_back(rec.value(kIeSamplingInterval), rec.value(kIeSamplingAlgorithm));
        return out;
    };
    using Pairs = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
    EXPECT_EQ(sampling(records), (Pairs{{50, 2}})) << "hash is random to collectors";
    EXPECT_EQ(ex.stats().flows, 3U) << "hash chose at packet time";

    ex.set_format(sampled("deterministic:10", 3));
    ex.tick(ExportTime{kBoot + kNanosPerMilli});
    records = drain_ipfix(r, d);
    EXPECT_EQ(sampling(records), (Pairs{{30, 2}})) << "10 x 3, random packets";

    ex.set_format(ExportFormat{.protocol = ExportProtocol::ipfix});
    ex.tick(ExportTime{kBoot + 2 * kNanosPerMilli});
    EXPECT_EQ(sampling(drain_ipfix(r, d)), (Pairs{{1, 1}})) << "unsampled: 1 in 1";
}

// A table the test controls, as LinkNames publishes them.
struct Links {
    std::shared_ptr<const LinkTable> table = std::make_shared<const LinkTable>();
    LinkSource source() {
        return [this] { return table; };
    }
    void publish(std::uint64_t generation, std::map<std::uint32_t, LinkInfo> links) {
        auto t = std::make_shared<LinkTable>();
        t->generation = generation;
        t->links = std::move(links);
        table = std::move(t);
    }
};

std::vector<std::tuple<std::uint64_t, std::string, std::string>>
names(const std::vector<test::DecodedRecord>& rs) {
    std::vector<std::tuple<std::uint64_t, std::string, std::string>> out;
    for (const auto& rec : rs)
        if (rec.has(kIeIfName))
            out.emplace_back(rec.value(rec.has(kIeInIf) ? kIeInIf : kV9ScopeInterface),
                             rec.text(kIeIfName), rec.text(kIeIfDescr));
    return out;
}

TEST(ExporterLinks, NamesWithTheOptionsFlowsMappedAndAChangeResentAtOnce) {
    for (const char* version : {"@9", "@10"}) {
        SCOPED_TRACE(version);
        test::UdpCollector r, v5;
        Links links;
        links.publish(1, {{2, {"eth0", "uplink", 100}}, {3, {"eth1", "", 3}}});
        Exporter ex(kParams, collectors_for(r.address() + version + "," + v5.address()), kNoPacing,
                    {}, links.source());
        ex.tick(ExportTime{kBoot});
        ex.add(flows(2), ExportTime{kBoot});
        ex.finish(ExportTime{kBoot});
        test::FlowDecoder d;
        auto records = drain_ipfix(r, d);
        using Names = std::vector<std::tuple<std::uint64_t, std::string, std::string>>;
        EXPECT_EQ(names(records), (Names{{100, "eth0", "uplink"}, {3, "eth1", ""}}));
        std::size_t mapped = 0;
        for (const auto& rec : records)
            if (!rec.options && rec.value(kIeInIf) == 100 && rec.value(kIeOutIf) == 3) ++mapped;
        EXPECT_EQ(mapped, 2U) << "in_if 2 -> 100 by the table";
        std::size_t v5_mapped = 0;
        while (auto m = v5.receive(200)) {
            const std::vector<std::byte> dg(m->begin(), m->end());
            for (std::size_t i = 0; i < be(dg, 2, 2); ++i)
                v5_mapped += be(dg, 24 + 48 * i + 12, 2) == 100 ? 1 : 0;
        }
        EXPECT_EQ(v5_mapped, 2U) << "v5's input field too";

        // Same generation: nothing; a new one: the names at the next tick, data or not.
        ex.tick(ExportTime{kBoot + kNanosPerMilli});
        EXPECT_TRUE(names(drain_ipfix(r, d)).empty());
        links.publish(2, {{2, {"eth0", "uplink", 100}}, {3, {"wan", "", 1}}});
        ex.tick(ExportTime{kBoot + 2 * kNanosPerMilli});
        EXPECT_EQ(names(drain_ipfix(r, d)), (Names{{100, "eth0", "uplink"}, {1, "wan", ""}}));
    }
}

} // namespace
} // namespace nflowd
