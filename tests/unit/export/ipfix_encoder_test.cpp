#include "nflowd/ipfix_encoder.hpp"

#include "flow_decoder.hpp"
#include "ipfix_golden.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

namespace nflowd {
namespace {

using golden::bytes;
using golden::hex;
using golden::kBoot;
using golden::kMs;
using golden::kParams;
using golden::kTime;

FlowRecord tcp_record() {
    return golden::tcp_record(Direction::egress); // flowDirection 1
}

FlowRecord icmp6_record() {
    FlowRecord r;
    r.family = Family::ipv6;
    r.key.protocol = 58;
    r.key.dst_port = 0x8000; // echo request, code 0
    r.key.in_if = 2;
    r.key.tos = 0xb8;
    r.key.direction = Direction::ingress; // flowDirection 0
    r.src6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    r.dst6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    r.flow_label = 0xabcde;
    r.end_reason = EndReason::idle;
    r.out_if = 5;
    r.packets = 0xffffffff;
    r.octets = 0xfffffffe;
    r.first = kBoot + 1000 * kMs;
    r.last = kBoot + 2500 * kMs;
    r.src_mask = 64;
    r.dst_mask = 48;
    return r;
}

// Template bodies written from the IANA registry, field by field: (IE, length) pairs.
const std::string kMiddleFields = "0007 0002  000b 0002  0004 0001  0005 0001  0006 0001"
                                  "0088 0001  000a 0004  000e 0004  0001 0008  0002 0008";
const std::string kIpv4Template = "0100 0012  0008 0004  000c 0004" + kMiddleFields +
                                  "0009 0001  000d 0001  003d 0001"
                                  "0020 0002"; // flowDirection (61)
const std::string kIpv6Template = "0101 0013  001b 0010  001c 0010" + kMiddleFields +
                                  "001d 0001  001e 0001  003d 0001  001f 0004"; // then ICMP
const std::string kStatsFields = "0029 0008  002a 0008  0028 0008  00a4 0008  00a6 0008";

TEST(MessageBuilder, V9TemplatesMatchHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::v9, 1472);
    ASSERT_TRUE(b.add_templates());
    const auto expected = hex(
        // header: version 9, count 4, sysUptime 5000 (uptime 0 is 1 s before boot) and unix
        // secs 1700000004 (the next whole second after 3000.5 ms), sequence 0, source ID 7
        "0009 0004 00001388 6553f104 00000000 00000007"
        // template flowset 0, 160 bytes: first/last switched (22, 21) close each template
        "0000 00a0" +
        kIpv4Template + "0016 0004 0015 0004" + kIpv6Template +
        "0020 0002  0016 0004 0015 0004" + // v9's one ICMP_TYPE (32), for IPv6 too
        // options template flowsets 1, one template each: ID, scope length, option length;
        // system scope (1); 18 bytes + 2 of padding, then 30 + 2
        "0001 0018"
        "0102 0004 0008  0001 0004  0022 0004  0023 0001  0000"
        "0001 0024"
        "0103 0004 0014  0001 0004" +
        kStatsFields + "0000");
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
    EXPECT_EQ(b.sequence(), 1U);
}

TEST(MessageBuilder, IpfixTemplatesMatchHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::ipfix, 1472);
    ASSERT_TRUE(b.add_templates());
    const auto expected = hex(
        // header: version 10, length 236, export time, sequence 0, observation domain 7
        "000a 00ec 6553f103 00000000 00000007"
        // template set 2: flowStart/EndMilliseconds (152, 153) close each template
        "0002 00a0" +
        kIpv4Template + "0098 0008 0099 0008" + kIpv6Template +
        "008b 0002  0098 0008 0099 0008" + // icmpTypeCodeIPv6 (139)
        // options template sets 3, one template each: ID, field count, scope count;
        // observationDomainId scope
        "0003 0018"
        "0102 0003 0001  0095 0004  0022 0004  0023 0001  0000"
        "0003 0024"
        "0103 0006 0001  0095 0004" +
        kStatsFields + "0000");
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
    EXPECT_EQ(b.sequence(), 0U) << "templates are not data records";
}

const std::string kTcpFields = "0a000001 c0a80102 3039 0050 06 10 1b 02 00000003 00000004"
                               "00000000000005dc 000000000000000a 18 10 01 0000";

TEST(MessageBuilder, V9Ipv4RecordMatchesHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::v9, 1472);
    ASSERT_TRUE(b.add_flow(tcp_record(), kTime, kParams));
    const auto expected = hex("0009 0001 00001388 6553f104 00000000 00000007"
                              "0100 003c" +
                              kTcpFields + "000007d0 00000dac 000000"); // sysUptime ms, padding
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
}

TEST(MessageBuilder, IpfixIpv4RecordMatchesHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::ipfix, 1472);
    ASSERT_TRUE(b.add_flow(tcp_record(), kTime, kParams));
    const auto expected = hex("000a 0054 6553f103 00000000 00000007"
                              "0100 0044" +
                              kTcpFields + "0000018bcfe56be8 0000018bcfe571c4 000000");
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
    EXPECT_EQ(b.sequence(), 1U);
}

// ICMPv6: type/code in icmpTypeCodeIPv6 (139) and the destination port; counters near 2^32
// in 8-byte fields; the flow label's 20 bits.
const std::string kIcmp6Fields = "20010db8000000000000000000000001 20010db8000000000000000000000002"
                                 "0000 8000 3a b8 00 01 00000002 00000005"
                                 "00000000fffffffe 00000000ffffffff 40 30 00 000abcde 8000";

TEST(MessageBuilder, V9Ipv6RecordMatchesHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::v9, 1472);
    ASSERT_TRUE(b.add_flow(icmp6_record(), kTime, kParams));
    const auto expected = hex("0009 0001 00001388 6553f104 00000000 00000007"
                              "0101 0058" +
                              kIcmp6Fields + "000007d0 00000dac 000000");
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
}

TEST(MessageBuilder, IpfixIpv6RecordMatchesHandBuiltBytes) {
    MessageBuilder b(ExportProtocol::ipfix, 1472);
    ASSERT_TRUE(b.add_flow(icmp6_record(), kTime, kParams));
    const auto expected = hex("000a 0070 6553f103 00000000 00000007"
                              "0101 0060" +
                              kIcmp6Fields + "0000018bcfe56be8 0000018bcfe571c4 000000");
    EXPECT_EQ(bytes(b.finish(kTime, kParams)), expected);
}

TEST(MessageBuilder, OptionsRecordsMatchHandBuiltBytes) {
    const ExportTotals totals{.messages = 0x0102030405060708,
                              .flows = 2,
                              .octets = 3,
                              .ignored_packets = 4,
                              .not_sent_flows = 5};
    const std::string records = // sampling: scope 7, interval 1, algorithm 1, 3 bytes padding
        "0102 0010  00000007 00000001 01 000000"
        // statistics: scope 7, messages, flows, octets, ignored packets, not-sent flows
        "0103 0030  00000007 0102030405060708 0000000000000002 0000000000000003"
        "0000000000000004 0000000000000005";
    for (auto protocol : {ExportProtocol::v9, ExportProtocol::ipfix}) {
        MessageBuilder b(protocol, 1472);
        ASSERT_TRUE(b.add_sampling(kParams));
        ASSERT_TRUE(b.add_stats(totals, kParams));
        const std::string header = protocol == ExportProtocol::v9
                                       ? "0009 0002 00001388 6553f104 00000000 00000007"
                                       : "000a 0050 6553f103 00000000 00000007";
        EXPECT_EQ(bytes(b.finish(kTime, kParams)), hex(header + records));
        EXPECT_EQ(b.sequence(), protocol == ExportProtocol::v9 ? 1U : 2U)
            << "IPFIX counts options data records in the sequence";
    }
}

TEST(MessageBuilder, InterfaceNamesVariableLengthInIpfixFixedInV9) {
    MessageBuilder b(ExportProtocol::ipfix, 1472);
    ASSERT_TRUE(b.add_templates(true));
    ASSERT_TRUE(b.add_if_name({3, "eth0", ""}));
    const std::string long_descr(300, 'x'); // 255 and a 2-byte length
    ASSERT_TRUE(b.add_if_name({4, "eth1", long_descr}));
    const auto msg = b.finish(kTime, kParams);
    // The records alone, set 260 at the end: 4+1+4+1 and 4+1+4+3+300 bytes, 3 bytes padding.
    const auto tail = hex("0104 0148  00000003 04 65746830 00"
                          "00000004 04 65746831 ff012c");
    const std::size_t set_at = msg.size() - 0x148;
    EXPECT_EQ(bytes(msg.subspan(set_at, 26)), tail);
    test::FlowDecoder d;
    const auto m = d.decode(msg);
    ASSERT_TRUE(m) << d.error();
    const auto* t = d.find(7, kTemplateIfNames);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->scope_count, 1U);
    ASSERT_EQ(m->records.size(), 2U);
    EXPECT_EQ(m->records[1].value(10), 4U);
    EXPECT_EQ(m->records[1].text(82), "eth1");
    EXPECT_EQ(m->records[1].text(83), long_descr);

    MessageBuilder v9(ExportProtocol::v9, 1472);
    ASSERT_TRUE(v9.add_templates(true));
    ASSERT_TRUE(v9.add_if_name({3, "eth0", "uplink"}));
    test::FlowDecoder d9;
    const auto m9 = d9.decode(v9.finish(kTime, kParams));
    ASSERT_TRUE(m9) << d9.error();
    ASSERT_EQ(m9->records.size(), 1U);
    EXPECT_EQ(m9->records[0].fields.at(82).size(), kV9IfNameSize);
    EXPECT_EQ(m9->records[0].text(82), "eth0");
    EXPECT_EQ(m9->records[0].text(83), "uplink");
    EXPECT_EQ(m9->records[0].value(2), 3U) << "v9 interface scope (type 2) holds the ifIndex";
}

} // namespace
} // namespace nflowd
