#include "nflowd/exporter.hpp"

#include "flow_decoder.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kBoot = 1'700'000'000'000'000'000;
constexpr Nanos kSec = kNanosPerSecond;
constexpr PacingConfig kNoPacing{.rate = 0, .burst = 0};
constexpr V5Params kParams{.boot_time = kBoot, .engine_type = 0, .engine_id = 4};

using Receiver = test::UdpCollector;

std::vector<FlowRecord> records(std::size_t n, std::size_t from = 0, bool ipv6_every_3rd = false) {
    std::vector<FlowRecord> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto k = static_cast<std::uint32_t>(from + i);
        if (ipv6_every_3rd && k % 3 == 0) {
            v[i].family = Family::ipv6;
            v[i].src6 = {0x20, 0x01, 0x0d, 0xb8};
            v[i].src6[12] = static_cast<std::uint8_t>(k >> 24);
            v[i].src6[13] = static_cast<std::uint8_t>(k >> 16);
            v[i].src6[14] = static_cast<std::uint8_t>(k >> 8);
            v[i].src6[15] = static_cast<std::uint8_t>(k);
        } else {
            v[i].key.src_addr = 0x0a000000U + k;
        }
        v[i].key.protocol = 17;
        v[i].packets = 1;
        v[i].octets = 100;
        v[i].first = v[i].last = kBoot;
    }
    return v;
}

CollectorSet collectors_for(const std::string& spec) {
    return CollectorSet(parse_destinations(spec), 0);
}

// Everything a collector got, decoded; fails the test on a malformed message.
struct Received {
    std::vector<test::DecodedMessage> messages;
    std::size_t flows = 0, templates = 0, options = 0;
};
Received drain(Receiver& r, test::FlowDecoder& d, int timeout_ms = 200) {
    Received out;
    while (auto m = r.receive(timeout_ms)) {
        auto msg = d.decode(*m);
        EXPECT_TRUE(msg) << d.error();
        if (!msg) break;
        out.flows += msg->flow_records();
        out.templates += msg->templates.size();
        out.options += msg->records.size() - msg->flow_records();
        out.messages.push_back(std::move(*msg));
    }
    return out;
}

TEST(ExporterStreams, IpfixTemplatesAndOptionsLeadTheFirstDataThenSequenceCountsRecords) {
    Receiver r;
    Exporter ex(kParams, collectors_for(r.address() + "@10"), kNoPacing);
    ex.add(records(100), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    test::FlowDecoder d;
    const auto got = drain(r, d);
    ASSERT_GE(got.messages.size(), 5U);
    EXPECT_EQ(got.messages[0].templates.size(), 6U)
        << "two data, two options, two link-layer templates";
    EXPECT_EQ(got.messages[0].records.size() - got.messages[0].flow_records(), 2U);
    EXPECT_EQ(got.flows, 100U);
    std::uint32_t expected = 0;
    for (const auto& m : got.messages) {
        EXPECT_EQ(m.version, 10);
        EXPECT_EQ(m.domain, 4U);
        EXPECT_EQ(m.sequence, expected);
        expected += static_cast<std::uint32_t>(m.records.size());
    }
    const auto st = ex.collectors().stats();
    EXPECT_EQ(st[0].templates, 6U);
    EXPECT_EQ(st[0].options_records, 2U);
    EXPECT_EQ(st[0].protocol, 10);
    EXPECT_EQ(ex.stats().flows_ipfix, 100U);
    EXPECT_EQ(ex.stats().flows_v5, 0U);
}

TEST(ExporterStreams, TemplatesRepeatEveryRefreshRateDatagramsAndAfterTheTimeout) {
    Receiver r;
    ExportFormat f;
    f.protocol = ExportProtocol::v9;
    f.template_refresh_rate = 3;
    f.template_timeout_rate = 0;
    Exporter ex(kParams, collectors_for(r.address()), kNoPacing, f);
    ex.add(records(27 * 7), ExportTime{kBoot}); // 27 IPv4 records fill a 1472-byte v9 datagram
    ex.finish(ExportTime{kBoot});
    test::FlowDecoder d;
    auto got = drain(r, d);
    std::vector<std::size_t> with_templates;
    for (std::size_t i = 0; i < got.messages.size(); ++i)
        if (!got.messages[i].templates.empty()) with_templates.push_back(i);
    EXPECT_EQ(with_templates, (std::vector<std::size_t>{0, 3, 6}));
    // The options records lead the stream and come with the time refresh only.
    EXPECT_EQ(got.messages[0].records.size() - got.messages[0].flow_records(), 2U);
    EXPECT_EQ(got.messages[3].records.size(), got.messages[3].flow_records());
    for (std::size_t i = 0; i < got.messages.size(); ++i) EXPECT_EQ(got.messages[i].sequence, i);

    f.template_refresh_rate = 0;
    f.template_timeout_rate = 60;
    ex.set_format(f);
    ex.add(records(1), ExportTime{kBoot + 59 * kSec});
    ex.finish(ExportTime{kBoot + 59 * kSec});
    ex.add(records(1), ExportTime{kBoot + 61 * kSec});
    ex.finish(ExportTime{kBoot + 61 * kSec});
    got = drain(r, d);
    ASSERT_EQ(got.messages.size(), 2U);
    EXPECT_TRUE(got.messages[0].templates.empty()) << "59 s after the last templates";
    EXPECT_EQ(got.messages[1].templates.size(), 6U) << "61 s after";
    EXPECT_EQ(got.messages[1].records.size(), 3U) << "sampling, statistics, the flow";
}

TEST(ExporterStreams, StatisticsRecordReportsWhatWasSentAndTheNflogLosses) {
    Receiver r;
    ExportFormat f;
    f.protocol = ExportProtocol::ipfix;
    Exporter ex(kParams, collectors_for(r.address()), kNoPacing, f);
    ex.add(records(30), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    const auto bytes_before = ex.collectors().stats()[0].bytes;
    ex.set_ignored_packets(17);
    ex.send_templates();
    ex.tick(ExportTime{kBoot + kSec});
    test::FlowDecoder d;
    const auto got = drain(r, d);
    ASSERT_EQ(got.messages.size(), 3U); // templates, data, templates again
    const auto& last = got.messages.back();
    const test::DecodedRecord* stats = nullptr;
    for (const auto& rec : last.records)
        if (rec.template_id == kTemplateStats) stats = &rec;
    ASSERT_NE(stats, nullptr);
    EXPECT_EQ(stats->value(149), 4U) << "scope: the observation domain";
    EXPECT_EQ(stats->value(41), 2U) << "messages sent before";
    EXPECT_EQ(stats->value(42), 30U) << "flow records sent";
    EXPECT_EQ(stats->value(40), bytes_before) << "exportedOctetTotalCount";
    EXPECT_EQ(stats->value(164), 17U) << "ignoredPacketTotalCount = NFLOG losses";
    EXPECT_EQ(stats->value(166), 0U);
}

TEST(ExporterStreams, SendTemplatesSendsThemAtTheNextTickOnTheirOwn) {
    Receiver r;
    Exporter ex(kParams, collectors_for(r.address() + "@10"), kNoPacing);
    ex.tick(ExportTime{kBoot}); // a new destination gets its templates at once, data or not
    test::FlowDecoder d;
    auto got = drain(r, d);
    ASSERT_EQ(got.messages.size(), 1U);
    EXPECT_EQ(got.templates, 6U);
    ex.add(records(5), ExportTime{kBoot});
    ex.tick(ExportTime{kBoot + kSec / 2});
    EXPECT_FALSE(r.receive(50)) << "5 records wait up to 1 s";
    ex.send_templates();
    ex.tick(ExportTime{kBoot + kSec / 2});
    got = drain(r, d);
    ASSERT_EQ(got.messages.size(), 2U) << "the data in progress, then the templates";
    EXPECT_EQ(got.messages[0].flow_records(), 5U);
    EXPECT_TRUE(got.messages[0].templates.empty());
    EXPECT_EQ(got.messages[1].templates.size(), 6U);
    EXPECT_EQ(got.messages[1].flow_records(), 0U);
    EXPECT_EQ(got.messages[1].sequence, 2U + 5U) << "options records of the first count";
}

TEST(ExporterStreams, V5AndIpfixDestinationsTogether) {
    Receiver v5, ipfix;
    Exporter ex(kParams, collectors_for(v5.address() + "," + ipfix.address() + "@10"), kNoPacing);
    ex.add(records(90, 0, true), ExportTime{kBoot}); // 30 IPv6, 60 IPv4
    ex.finish(ExportTime{kBoot});
    const auto v5_datagrams = v5.receive_all();
    std::size_t v5_flows = 0;
    for (const auto& dg : v5_datagrams) v5_flows += dg.records.size();
    EXPECT_EQ(v5_flows, 60U);
    test::FlowDecoder d;
    const auto got = drain(ipfix, d);
    EXPECT_EQ(got.flows, 90U);
    std::size_t v6 = 0;
    for (const auto& m : got.messages)
        for (const auto& rec : m.records) v6 += rec.template_id == kTemplateIpv6;
    EXPECT_EQ(v6, 30U);
    const auto st = ex.collectors().stats();
    EXPECT_EQ(st[0].skipped_ipv6, 30U);
    EXPECT_EQ(st[0].protocol, 5);
    EXPECT_EQ(st[0].templates, 0U);
    EXPECT_EQ(st[1].skipped_ipv6, 0U);
    EXPECT_EQ(ex.stats().flows_v5, 60U);
    EXPECT_EQ(ex.stats().flows_ipfix, 90U);
    EXPECT_EQ(ex.stats().flows, 90U);
}

TEST(ExporterStreams, ACollectorBackAfterRefusalsGetsTemplatesFirst) {
    Receiver probe;
    const std::uint16_t port = probe.port();
    probe.close();
    ExportFormat f;
    f.protocol = ExportProtocol::ipfix;
    f.template_refresh_rate = 1000;
    Exporter ex(kParams, collectors_for("127.0.0.1:" + std::to_string(port)), kNoPacing, f);
    for (int i = 0; i < 6; ++i) { // datagrams into a closed port: ICMP answers come back
        ex.add(records(1), ExportTime{kBoot});
        ex.finish(ExportTime{kBoot});
    }
    ASSERT_GT(ex.collectors().stats()[0].err_refused, 0U);
    Receiver back(port);
    // The last datagram's refusal is still pending: the next one must carry the templates.
    for (int i = 0; i < 3; ++i) {
        ex.add(records(1), ExportTime{kBoot});
        ex.finish(ExportTime{kBoot});
    }
    test::FlowDecoder d;
    const auto got = drain(back, d); // a decoder that never saw templates: fails otherwise
    ASSERT_FALSE(got.messages.empty());
    EXPECT_EQ(got.messages.front().templates.size(), 6U);
    EXPECT_EQ(got.flows, got.messages.size());
}

// `nflowctl set destination` adding a collector: the new one gets its templates before its
// first data; the one that stays keeps its stream (no templates again, sequence goes on).
TEST(ExporterStreams, ADestinationAddedAtRunTimeGetsTemplatesFirstTheKeptOneDoesNot) {
    Receiver a, b;
    ExportFormat f;
    f.protocol = ExportProtocol::ipfix;
    f.template_refresh_rate = 1000;
    Exporter ex(kParams, collectors_for(a.address()), kNoPacing, f);
    ex.add(records(4), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    test::FlowDecoder da;
    const auto before = drain(a, da);
    ASSERT_EQ(before.messages.size(), 1U);
    ASSERT_EQ(before.messages[0].templates.size(), 6U);

    ex.set_collectors(collectors_for(a.address() + "," + b.address()));
    ex.add(records(5, 4), ExportTime{kBoot + kSec});
    ex.finish(ExportTime{kBoot + kSec});
    const auto kept = drain(a, da);
    ASSERT_EQ(kept.messages.size(), 1U);
    EXPECT_EQ(kept.templates, 0U);
    EXPECT_EQ(kept.flows, 5U);
    EXPECT_EQ(kept.messages[0].sequence, before.messages[0].sequence + 4 + before.options);
    test::FlowDecoder db; // a decoder that never saw templates: fails without them
    const auto added = drain(b, db);
    ASSERT_EQ(added.messages.size(), 1U);
    EXPECT_EQ(added.messages[0].templates.size(), 6U);
    EXPECT_EQ(added.flows, 5U);
}

TEST(ExporterStreams, SwitchingVersionFinishesTheDatagramThenSendsTemplates) {
    Receiver r;
    Exporter ex(kParams, collectors_for(r.address()), kNoPacing);
    ex.add(records(10), ExportTime{kBoot}); // pending in a v5 datagram
    ExportFormat f;
    f.protocol = ExportProtocol::ipfix;
    ex.set_format(f);
    const auto first = r.receive();
    ASSERT_TRUE(first);
    EXPECT_EQ(std::to_integer<int>((*first)[1]), 5);
    EXPECT_EQ(first->size(), kV5HeaderSize + 10 * kV5RecordSize);
    ex.add(records(10, 10), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    test::FlowDecoder d;
    auto got = drain(r, d);
    ASSERT_EQ(got.messages.size(), 1U);
    EXPECT_EQ(got.messages[0].templates.size(), 6U);
    EXPECT_EQ(got.flows, 10U);
    EXPECT_EQ(ex.collectors().stats()[0].protocol, 10);
    f.protocol = ExportProtocol::v9;
    ex.add(records(3, 20), ExportTime{kBoot});
    ex.set_format(f);
    ex.add(records(3, 23), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    got = drain(r, d);
    ASSERT_EQ(got.messages.size(), 2U);
    EXPECT_EQ(got.messages[0].version, 10);
    EXPECT_EQ(got.messages[0].flow_records(), 3U);
    EXPECT_EQ(got.messages[1].version, 9);
    EXPECT_EQ(got.messages[1].templates.size(), 6U);
    EXPECT_EQ(got.messages[1].sequence, 0U);
    EXPECT_EQ(ex.stats().flows_v5 + ex.stats().flows_ipfix + ex.stats().flows_v9, 26U);
}

TEST(ExporterStreams, ANewEngineIdIsANewDomainWithItsOwnTemplatesAndSequence) {
    Receiver r;
    Exporter ex(kParams, collectors_for(r.address() + "@10"), kNoPacing);
    ex.add(records(5), ExportTime{kBoot});
    V5Params other = kParams;
    other.engine_id = 9;
    ex.set_params(other);
    ex.add(records(3, 5), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    test::FlowDecoder d;
    const auto got = drain(r, d); // the decoder keys templates by domain: fails without them
    ASSERT_EQ(got.messages.size(), 2U);
    EXPECT_EQ(got.messages[0].domain, 4U);
    EXPECT_EQ(got.messages[0].flow_records(), 5U);
    EXPECT_EQ(got.messages[1].domain, 9U);
    EXPECT_EQ(got.messages[1].templates.size(), 6U);
    EXPECT_EQ(got.messages[1].sequence, 0U);
    EXPECT_EQ(got.messages[1].flow_records(), 3U);
}

TEST(ExporterStreams, MessagesFitTheCollectorFamilysMtuOrTheOption) {
    Receiver v4, v6(0, Receiver::Family::ipv6);
    Exporter ex(kParams, collectors_for(v4.address() + "@10," + v6.address() + "@10"), kNoPacing);
    ex.add(records(200), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    std::size_t largest4 = 0, largest6 = 0;
    while (auto m = v4.receive()) largest4 = std::max(largest4, m->size());
    while (auto m = v6.receive()) largest6 = std::max(largest6, m->size());
    // As full as the defaults allow: 1500 less 28 (IPv4+UDP) or 48 (IPv6+UDP) bytes.
    EXPECT_LE(largest4, 1472U);
    EXPECT_GT(largest4 + kIpfixIpv4RecordSize, 1472U);
    EXPECT_LE(largest6, 1452U);
    EXPECT_GT(largest6 + kIpfixIpv4RecordSize, 1452U);
    ExportFormat f;
    f.mtu = 600;
    ex.set_format(f);
    ex.add(records(50), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    test::FlowDecoder d;
    const auto got = drain(v4, d);
    ASSERT_FALSE(got.messages.empty());
    EXPECT_EQ(got.messages[0].templates.size(), 6U) << "a new MTU starts the stream afresh";
    while (auto m = v6.receive()) EXPECT_LE(m->size(), 600U);
}

} // namespace
} // namespace nflowd
