// The exporter's NAT part (issue 13): conntrack events into its NAT table, the translated
// fields on the flows that have one (and only on those), NAT event records, natevents_only,
// the smallest MTU; what a collector receives, through the independent test decoder.
#include "nflowd/exporter.hpp"

#include "flow_decoder.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kBoot = 1'700'000'000'000'000'000;
constexpr PacingConfig kNoPacing{.rate = 0, .burst = 0};
constexpr V5Params kParams{.boot_time = kBoot, .engine_type = 0, .engine_id = 4};
constexpr std::uint32_t kClient = 0x0a000002, kServer = 0xc6336407, kRouter = 0xcb007105;

// The client's UDP flow kClient:sport -> kServer:53.
FlowRecord flow(std::uint16_t sport) {
    FlowRecord r;
    r.key.src_addr = kClient;
    r.key.dst_addr = kServer;
    r.key.src_port = sport;
    r.key.dst_port = 53;
    r.key.protocol = 17;
    r.packets = 1;
    r.octets = 100;
    r.first = r.last = kBoot;
    return r;
}

// Its connection, masqueraded behind kRouter:sport+1000.
NatEvent masq(std::uint16_t sport, NatEventKind kind, bool dumped = false) {
    NatEvent ev;
    ev.kind = kind;
    ev.protocol = 17;
    ev.dumped = dumped;
    ev.time = kBoot;
    ev.orig = {NatEndpoint::ipv4(kClient, sport), NatEndpoint::ipv4(kServer, 53)};
    ev.reply = {NatEndpoint::ipv4(kServer, 53),
                NatEndpoint::ipv4(kRouter, static_cast<std::uint16_t>(sport + 1000))};
    return ev;
}

std::vector<test::DecodedRecord> receive_all(test::UdpCollector& r) {
    test::FlowDecoder d;
    std::vector<test::DecodedRecord> out;
    while (auto m = r.receive(200)) {
        auto msg = d.decode(*m);
        EXPECT_TRUE(msg) << d.error();
        if (!msg) break;
        for (auto& rec : msg->records)
            if (!rec.options) out.push_back(std::move(rec));
    }
    return out;
}

TEST(ExporterNat, FlowsWithATranslationCarryItOthersKeepThePlainTemplate) {
    for (const char* version : {"@9", "@10"}) {
        test::UdpCollector r;
        Exporter ex(kParams, CollectorSet(parse_destinations(r.address() + version), 0), kNoPacing);
        ex.set_nat({.annotate = true, .events = false, .events_only = false, .table = {}});
        ex.apply_nat(masq(1000, NatEventKind::create, true), ExportTime{kBoot}); // from a dump
        ex.apply_nat(masq(1001, NatEventKind::create), ExportTime{kBoot});
        const std::vector flows{flow(1000), flow(1001), flow(1002)};
        ex.add(flows, ExportTime{kBoot});
        ex.finish(ExportTime{kBoot});
        const auto got = receive_all(r);
        ASSERT_EQ(got.size(), 3U) << version << ": no NAT event records without --natevents";
        for (std::size_t i = 0; i < 2; ++i) {
            EXPECT_EQ(got[i].template_id, kTemplateIpv4Nat) << version;
            EXPECT_EQ(got[i].address(225), "203.0.113.5");
            EXPECT_EQ(got[i].value(227), 2000U + i);
            EXPECT_EQ(got[i].address(226), "198.51.100.7");
            EXPECT_EQ(got[i].value(228), 53U);
        }
        EXPECT_EQ(got[2].template_id, kTemplateIpv4) << "not NATed: no zero NAT fields";
        EXPECT_FALSE(got[2].has(225));
        EXPECT_EQ(ex.nat_table()->stats().found, 2U);
        EXPECT_EQ(ex.nat_table()->stats().not_found, 1U);
    }
}

TEST(ExporterNat, EventsOnlyExportsCreatesAndDeletesButNoFlowsNorDumpedConnections) {
    test::UdpCollector r;
    // The smallest message: the NAT templates then lead a message of their own.
    Exporter ex(kParams, CollectorSet(parse_destinations(r.address() + "@10"), 0), kNoPacing,
                ExportFormat{.protocol = ExportProtocol::ipfix, .mtu = 512});
    ex.set_nat({.annotate = true, .events = true, .events_only = true, .table = {}});
    ex.apply_nat(masq(999, NatEventKind::create, true), ExportTime{kBoot});
    for (std::uint16_t p = 1000; p < 1030; ++p)
        ex.apply_nat(masq(p, NatEventKind::create), {kBoot});
    ex.add(std::vector{flow(1000)}, ExportTime{kBoot});
    for (std::uint16_t p = 1000; p < 1030; ++p)
        ex.apply_nat(masq(p, NatEventKind::destroy), {kBoot});
    ex.finish(ExportTime{kBoot});
    const auto got = receive_all(r);
    ASSERT_EQ(got.size(), 60U) << "30 creates, 30 deletes; no flow, no dumped connection";
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].template_id, kTemplateNatEvent4);
        EXPECT_EQ(got[i].value(230), i < 30 ? 1U : 2U);
        EXPECT_EQ(got[i].value(7), 1000U + i % 30);
        EXPECT_EQ(got[i].value(227), 2000U + i % 30);
        EXPECT_EQ(got[i].address(225), "203.0.113.5");
    }
    EXPECT_EQ(ex.stats().nat_events, 60U);
    EXPECT_EQ(ex.stats().flows, 0U);
}

// --natevents_destination: the last collector gets the NAT events and nothing else, the
// flow destination no NAT event.
TEST(ExporterNat, OwnEventDestinationsGetTheEventsAndOnlyThem) {
    test::UdpCollector flows_to, events_to;
    Exporter ex(
        kParams,
        CollectorSet(parse_destinations(flows_to.address() + "@10," + events_to.address() + "@9"),
                     0),
        kNoPacing);
    ex.set_nat({.annotate = true,
                .events = true,
                .events_only = false,
                .event_destinations = 1,
                .table = {}});
    ex.apply_nat(masq(1000, NatEventKind::create), ExportTime{kBoot});
    ex.add(std::vector{flow(1000), flow(1001)}, ExportTime{kBoot});
    ex.apply_nat(masq(1000, NatEventKind::destroy), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    const auto flows = receive_all(flows_to);
    ASSERT_EQ(flows.size(), 2U);
    EXPECT_EQ(flows[0].template_id, kTemplateIpv4Nat);
    EXPECT_EQ(flows[1].template_id, kTemplateIpv4);
    const auto events = receive_all(events_to);
    ASSERT_EQ(events.size(), 2U);
    for (const auto& e : events) EXPECT_EQ(e.template_id, kTemplateNatEvent4);
    EXPECT_EQ(events[0].value(230), 1U);
    EXPECT_EQ(events[1].value(230), 2U);
}

// `nflowctl set inactive_timeout 300`: flows now leave the cache up to 300 s after their last
// packet, so a connection destroyed before must stay findable that long (the grace follows
// the timeout, nat_grace()); and a lower grace applies at the next expiry.
TEST(ExporterNat, GraceFollowsTheInactiveTimeoutSetAtRunTime) {
    test::UdpCollector r;
    Exporter ex(kParams, CollectorSet(parse_destinations(r.address() + "@10"), 0), kNoPacing);
    NatExportConfig cfg{.annotate = true, .events = false, .events_only = false, .table = {}};
    cfg.table.grace = nat_grace(30 * kNanosPerSecond);
    ex.set_nat(cfg);
    ex.set_nat_grace(nat_grace(300 * kNanosPerSecond));
    ex.apply_nat(masq(1000, NatEventKind::create), ExportTime{kBoot});
    ex.apply_nat(masq(1000, NatEventKind::destroy), ExportTime{kBoot});
    // 200 s after the destroy: past the old grace (60 s), inside the new one (330 s).
    const Nanos later = kBoot + 200 * kNanosPerSecond;
    ex.expire_nat(later);
    ASSERT_NE(ex.nat_table(), nullptr);
    EXPECT_EQ(ex.nat_table()->stats().entries, 1U);
    ex.add(std::vector{flow(1000)}, ExportTime{later});
    ex.finish(ExportTime{later});
    const auto got = receive_all(r);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0].template_id, kTemplateIpv4Nat);
    EXPECT_EQ(got[0].value(227), 2000U);
    // Back to 30 s: the connection, destroyed 200 s ago, goes at the next expiry.
    ex.set_nat_grace(nat_grace(30 * kNanosPerSecond));
    ex.expire_nat(later + 1);
    EXPECT_EQ(ex.nat_table()->stats().entries, 0U);
}

} // namespace
} // namespace nflowd
