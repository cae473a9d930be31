// The NAT and link-layer templates and records (issue 13) against bytes built by hand from
// the IANA registry (225-228, 230, 281, 282, 323; 56, 58, 80), and through the independent
// test decoder.
#include "nflowd/ipfix_encoder.hpp"

#include "flow_decoder.hpp"
#include "ipfix_golden.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <string>

namespace nflowd {
namespace {

using golden::bytes;
using golden::hex;
using golden::kBoot;
using golden::kMs;
using golden::kParams;
using golden::kTime;

// The golden TCP flow from FORWARD (flowDirection 255).
FlowRecord tcp_record() {
    return golden::tcp_record(Direction::unknown);
}

Ipv6Addr v6(std::uint8_t last) {
    return {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
}

// Masqueraded behind 203.0.113.5:40000; the destination unchanged.
const NatTranslation kMasq{.src = NatEndpoint::ipv4(0xcb007105, 40000),
                           .dst = NatEndpoint::ipv4(0xc0a80102, 80)};

const std::string kMiddle = "0007 0002  000b 0002  0004 0001  0005 0001  0006 0001"
                            "0088 0001  000a 0004  000e 0004  0001 0008  0002 0008";
const std::string kTcpFields = "0a000001 c0a80102 3039 0050 06 10 1b 02 00000003 00000004"
                               "00000000000005dc 000000000000000a 18 10 ff 0000";
const std::string kNat4Tail = "00e1 0004  00e2 0004  00e3 0002  00e4 0002";
const std::string kNat6Tail = "0119 0010  011a 0010  00e3 0002  00e4 0002";

TEST(NatMessage, IpfixNatTemplatesMatchHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::ipfix, 1472);
    ASSERT_TRUE(b.add_nat_templates(true));
    const auto expected = hex(
        // header: length 304, export time 1700000003, sequence 0, domain 7
        "000a 0130 6553f103 00000000 00000007"
        "0002 0120"
        // 261: the IPv4 data template (18 fields, flowDirection 61 among them) and the four
        // translated fields
        "0105 0016  0008 0004  000c 0004" +
        kMiddle + "0009 0001  000d 0001  003d 0001  0020 0002  0098 0008  0099 0008" + kNat4Tail +
        // 262: IPv6 (19 fields) + 281, 282, 227, 228
        "0106 0017  001b 0010  001c 0010" + kMiddle +
        "001d 0001  001e 0001  003d 0001  001f 0004  008b 0002  0098 0008  0099 0008" + kNat6Tail +
        // 263, 264: observationTimeMilliseconds, natEvent, protocol, the original 5-tuple, NAT
        "0107 000b  0143 0008  00e6 0001  0004 0001  0008 0004  000c 0004  0007 0002  000b 0002" +
        kNat4Tail + "0108 000b  0143 0008  00e6 0001  0004 0001  001b 0010  001c 0010" +
        "0007 0002  000b 0002" + kNat6Tail);
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
}

TEST(NatMessage, V9NatTemplatesWithoutEventsMatchHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::v9, 1472);
    ASSERT_TRUE(b.add_nat_templates(false));
    const auto expected = hex(
        // count 2: the two data templates only
        "0009 0002 00001388 6553f104 00000000 00000007"
        "0000 00c0"
        "0105 0016  0008 0004  000c 0004" +
        kMiddle + "0009 0001  000d 0001  003d 0001  0020 0002  0016 0004  0015 0004" + kNat4Tail +
        "0106 0017  001b 0010  001c 0010" + kMiddle +
        "001d 0001  001e 0001  003d 0001  001f 0004  0020 0002  0016 0004  0015 0004" + kNat6Tail);
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
}

TEST(NatMessage, IpfixNatIpv4RecordMatchesHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::ipfix, 1472);
    ASSERT_TRUE(b.add_nat_flow(tcp_record(), kMasq, kTime, kParams));
    const auto expected =
        hex("000a 0060 6553f103 00000000 00000007"
            "0105 0050" + // 61 + 12 bytes and 3 of padding
            kTcpFields +
            "0000018bcfe56be8 0000018bcfe571c4" + "cb007105 c0a80102 9c40 0050 000000");
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
    EXPECT_EQ(b.sequence(), 1U);
}

TEST(NatMessage, V9NatIpv6RecordMatchesHandBuiltBytes) {
    FlowRecord r;
    r.family = Family::ipv6;
    r.key.protocol = 17;
    r.key.src_port = 1000;
    r.key.dst_port = 53;
    r.key.in_if = 2;
    r.out_if = 5;
    r.end_reason = EndReason::idle;
    r.src6 = v6(1);
    r.dst6 = v6(2);
    r.packets = 1;
    r.octets = 80;
    r.first = r.last = kBoot + 2000 * kMs;
    const NatTranslation nat{.src = {v6(0xff), 2000}, .dst = {v6(2), 53}};
    MessageBuilder b(ExportProtocol::v9, 1472);
    ASSERT_TRUE(b.add_nat_flow(r, nat, kTime, kParams));
    const auto expected =
        hex("0009 0001 00001388 6553f104 00000000 00000007"
            "0106 007c" // 81 + 36 bytes and 3 of padding
            "20010db8000000000000000000000001 20010db8000000000000000000000002"
            "03e8 0035 11 00 00 01 00000002 00000005 0000000000000050 0000000000000001"
            "00 00 ff 00000000 0000 00000bb8 00000bb8" // flowDirection 255: unknown
            "20010db80000000000000000000000ff 20010db8000000000000000000000002 07d0 0035 000000");
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
}

NatEvent masq_event(NatEventKind kind) {
    NatEvent ev;
    ev.kind = kind;
    ev.protocol = 17;
    ev.time = kBoot + 2000 * kMs;
    ev.orig = {NatEndpoint::ipv4(0x0a000001, 5000), NatEndpoint::ipv4(0xc6336407, 53)};
    ev.reply = {NatEndpoint::ipv4(0xc6336407, 53), NatEndpoint::ipv4(0xcb007105, 40000)};
    return ev;
}

TEST(NatMessage, IpfixNatEventRecordMatchesHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::ipfix, 1472);
    ASSERT_TRUE(b.add_nat_event(masq_event(NatEventKind::create), kTime));
    ASSERT_TRUE(b.add_nat_event(masq_event(NatEventKind::destroy), kTime));
    const auto expected = hex("000a 0058 6553f103 00000000 00000007"
                              "0107 0048" // two records of 34 bytes, no padding
                              "0000018bcfe56fd0 01 11 0a000001 c6336407 1388 0035"
                              "cb007105 c6336407 9c40 0035"
                              "0000018bcfe56fd0 02 11 0a000001 c6336407 1388 0035"
                              "cb007105 c6336407 9c40 0035");
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
    EXPECT_EQ(b.sequence(), 2U) << "NAT events are data records";
}

TEST(NatMessage, V9Ipv6NatEventIsPadded) {
    NatEvent ev;
    ev.kind = NatEventKind::destroy;
    ev.family = Family::ipv6;
    ev.protocol = 6;
    ev.time = kBoot + 2000 * kMs;
    ev.orig = {{v6(1), 1000}, {v6(2), 80}};
    ev.reply = {{v6(2), 80}, {v6(0xff), 2000}};
    MessageBuilder b(ExportProtocol::v9, 1472);
    ASSERT_TRUE(b.add_nat_event(ev, kTime));
    const auto expected =
        hex("0009 0001 00001388 6553f104 00000000 00000007"
            "0108 0058" // 82 bytes + 2 of padding
            "0000018bcfe56fd0 02 06"
            "20010db8000000000000000000000001 20010db8000000000000000000000002 03e8 0050"
            "20010db80000000000000000000000ff 20010db8000000000000000000000002 07d0 0050"
            "0000");
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
}

// The decoder learns the NAT templates and reads every NAT field back, in both versions.
TEST(NatMessage, DecoderReadsNatRecordsAndEvents) {
    for (auto p : {ExportProtocol::v9, ExportProtocol::ipfix}) {
        FlowRecord plain = tcp_record();
        plain.key.src_port = 1;
        test::FlowDecoder d;
        MessageBuilder t(p, 1472);
        ASSERT_TRUE(t.add_templates());
        ASSERT_TRUE(t.add_nat_templates(true));
        ASSERT_TRUE(t.add_flow(plain, kTime, kParams));
        ASSERT_TRUE(t.add_nat_flow(tcp_record(), kMasq, kTime, kParams));
        ASSERT_TRUE(t.add_nat_event(masq_event(NatEventKind::destroy), kTime));
        const auto m = d.decode(t.finish(kTime, kParams));
        ASSERT_TRUE(m) << d.error();
        ASSERT_EQ(m->flow_records(), 3U);
        const auto& recs = m->records;
        const auto& plain_rec = recs[recs.size() - 3];
        const auto& nat_rec = recs[recs.size() - 2];
        const auto& event = recs.back();
        EXPECT_EQ(plain_rec.template_id, kTemplateIpv4);
        EXPECT_FALSE(plain_rec.has(225)) << "a flow without translation carries no NAT fields";
        EXPECT_EQ(nat_rec.template_id, kTemplateIpv4Nat);
        EXPECT_EQ(nat_rec.address(8), "10.0.0.1");
        EXPECT_EQ(nat_rec.address(225), "203.0.113.5");
        EXPECT_EQ(nat_rec.address(226), "192.168.1.2");
        EXPECT_EQ(nat_rec.value(227), 40000U);
        EXPECT_EQ(nat_rec.value(228), 80U);
        EXPECT_EQ(event.template_id, kTemplateNatEvent4);
        EXPECT_EQ(event.value(230), 2U);
        EXPECT_EQ(event.value(323), 1'700'000'002'000U);
        EXPECT_EQ(event.address(12), "198.51.100.7");
        EXPECT_EQ(event.address(225), "203.0.113.5");
        EXPECT_EQ(event.value(227), 40000U);
    }
}

// ---- link layer: MACs, VLAN and the observation point (56, 80, 58, 138) ----

const std::string kLinkTail = "0038 0006  0050 0006  003a 0002  008a 0004";
const std::string kIpfix4Rest = "0009 0001  000d 0001  003d 0001  0020 0002  0098 0008  0099 0008";
const std::string kIpfix6Rest =
    "001d 0001  001e 0001  003d 0001  001f 0004  008b 0002  0098 0008  0099 0008";

FlowRecord linked(FlowRecord r) {
    r.link.src_mac = {0x02, 0x5a, 0, 0, 0, 0x01};
    r.link.dst_mac = {0x02, 0xdd, 0, 0, 0, 0x02};
    r.link.vlan = 100;
    return r;
}

TEST(LinkMessage, IpfixLinkTemplatesMatchHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::ipfix, 1472);
    ASSERT_TRUE(b.add_link_templates(true));
    EXPECT_EQ(b.templates(), 4U);
    const auto expected = hex(
        // header: length 428, export time, sequence 0, domain 7; one template set of 412
        "000a 01ac 6553f103 00000000 00000007"
        "0002 019c"
        // 265: the IPv4 data template's 18 fields and the link layer's four
        "0109 0016  0008 0004  000c 0004" +
        kMiddle + kIpfix4Rest + kLinkTail +
        // 266: IPv6, 19 + 4
        "010a 0017  001b 0010  001c 0010" + kMiddle + kIpfix6Rest + kLinkTail +
        // 267, 268: the link layer before the NAT fields
        "010b 001a  0008 0004  000c 0004" + kMiddle + kIpfix4Rest + kLinkTail + kNat4Tail +
        "010c 001b  001b 0010  001c 0010" + kMiddle + kIpfix6Rest + kLinkTail + kNat6Tail);
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
}

TEST(LinkMessage, V9LinkTemplatesWithoutNatMatchHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::v9, 1472);
    ASSERT_TRUE(b.add_link_templates(false));
    const auto expected = hex(
        "0009 0002 00001388 6553f104 00000000 00000007"
        "0000 00c0"
        "0109 0016  0008 0004  000c 0004" +
        kMiddle + "0009 0001  000d 0001  003d 0001  0020 0002  0016 0004  0015 0004" + kLinkTail +
        "010a 0017  001b 0010  001c 0010" + kMiddle +
        "001d 0001  001e 0001  003d 0001  001f 0004  0020 0002  0016 0004  0015 0004" + kLinkTail);
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
}

TEST(LinkMessage, IpfixLinkRecordsMatchHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::ipfix, 1472);
    ASSERT_TRUE(b.add_flow(linked(tcp_record()), kTime, kParams));
    const std::string times = "0000018bcfe56be8 0000018bcfe571c4";
    EXPECT_EQ(bytes(b.finish(kTime, kParams)),
              hex("000a 0064 6553f103 00000000 00000007"
                  "0109 0054" + // 61 + 18 bytes and 1 of padding
                  kTcpFields +
                  times + "025a00000001 02dd00000002 0064 00000000 00"));
    ASSERT_TRUE(b.add_nat_flow(linked(tcp_record()), kMasq, kTime, kParams));
    EXPECT_EQ(bytes(b.finish(kTime, kParams)),
              hex("000a 0070 6553f103 00000001 00000007"
                  "010b 0060" + // 61 + 18 + 12 bytes and 1 of padding
                  kTcpFields +
                  times + "025a00000001 02dd00000002 0064 00000000" +
                  "cb007105 c0a80102 9c40 0050 00"));
}

// The decoder reads the link layer back; a flow without one keeps the plain templates.
TEST(LinkMessage, DecoderReadsMacsAndVlan) {
    for (auto p : {ExportProtocol::v9, ExportProtocol::ipfix}) {
        test::FlowDecoder d;
        MessageBuilder t(p, 1472);
        ASSERT_TRUE(t.add_templates());
        ASSERT_TRUE(t.add_nat_templates(false));
        ASSERT_TRUE(t.add_link_templates(true));
        FlowRecord r6 = linked(tcp_record());
        r6.family = Family::ipv6;
        r6.src6 = v6(1);
        r6.dst6 = v6(2);
        r6.link.vlan = 4095;
        ASSERT_TRUE(t.add_flow(tcp_record(), kTime, kParams));
        ASSERT_TRUE(t.add_flow(linked(tcp_record()), kTime, kParams));
        ASSERT_TRUE(t.add_flow(r6, kTime, kParams));
        ASSERT_TRUE(
            t.add_nat_flow(r6, {.src = {v6(0xff), 2000}, .dst = {v6(2), 80}}, kTime, kParams));
        FlowRecord tagged = tcp_record(); // a prefix tag without a link layer (OUTPUT, obs=7)
        tagged.key.obs_point = 7;
        ASSERT_TRUE(t.add_flow(tagged, kTime, kParams));
        const auto m = d.decode(t.finish(kTime, kParams));
        ASSERT_TRUE(m) << d.error();
        ASSERT_EQ(m->flow_records(), 5U);
        const auto& recs = m->records;
        const auto& plain = recs[recs.size() - 5];
        const auto& l4 = recs[recs.size() - 4];
        const auto& l6 = recs[recs.size() - 3];
        const auto& nat6 = recs[recs.size() - 2];
        const auto& obs = recs.back();
        EXPECT_EQ(obs.template_id, kTemplateIpv4Link);
        EXPECT_EQ(obs.value(138), 7U);
        EXPECT_EQ(obs.mac(56), "00:00:00:00:00:00");
        EXPECT_EQ(l4.value(138), 0U);
        EXPECT_EQ(plain.template_id, kTemplateIpv4);
        EXPECT_FALSE(plain.has(56));
        EXPECT_FALSE(plain.has(138));
        EXPECT_EQ(l4.template_id, kTemplateIpv4Link);
        EXPECT_EQ(l4.mac(56), "02:5a:00:00:00:01");
        EXPECT_EQ(l4.mac(80), "02:dd:00:00:00:02");
        EXPECT_EQ(l4.value(58), 100U);
        EXPECT_EQ(l4.address(8), "10.0.0.1");
        EXPECT_EQ(l6.template_id, kTemplateIpv6Link);
        EXPECT_EQ(l6.address(27), "2001:db8::1");
        EXPECT_EQ(l6.value(58), 4095U);
        EXPECT_EQ(nat6.template_id, kTemplateIpv6NatLink);
        EXPECT_EQ(nat6.mac(56), "02:5a:00:00:00:01");
        EXPECT_EQ(nat6.address(281), "2001:db8::ff");
        EXPECT_EQ(nat6.value(227), 2000U);
    }
}

} // namespace
} // namespace nflowd
