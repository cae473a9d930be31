#include "nflowd/ipfix_encoder.hpp"

#include "flow_decoder.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kBoot = 1'700'000'000'000'000'000;
constexpr Nanos kMs = kNanosPerMilli;
constexpr V5Params kParams{.boot_time = kBoot, .engine_type = 0, .engine_id = 3};

FlowRecord flow(std::uint32_t n, Family family = Family::ipv4) {
    FlowRecord r;
    r.family = family;
    r.key.src_addr = family == Family::ipv4 ? 0x0a000000 + n : 0;
    r.key.dst_addr = family == Family::ipv4 ? 0x0a010001 : 0;
    r.src6[15] = static_cast<std::uint8_t>(n);
    r.src6[14] = static_cast<std::uint8_t>(n >> 8);
    r.key.src_port = static_cast<std::uint16_t>(1024 + n);
    r.key.dst_port = 53;
    r.key.protocol = 17;
    r.packets = n + 1;
    r.octets = 100 * (n + 1);
    r.first = kBoot + n * kMs;
    r.last = kBoot + (n + 10) * kMs;
    return r;
}

ExportTime at(Nanos ms) {
    return {kBoot + ms * kMs, 0};
}

TEST(MessageBuilder, IpfixSequenceCountsDataAndOptionsRecordsNotTemplates) {
    MessageBuilder b(ExportProtocol::ipfix, 1472);
    test::FlowDecoder d;
    std::vector<std::uint32_t> sequences;
    auto send = [&] {
        const auto m = d.decode(b.finish(at(5), kParams));
        ASSERT_TRUE(m) << d.error();
        sequences.push_back(m->sequence);
    };
    ASSERT_TRUE(b.add_templates());
    ASSERT_TRUE(b.add_sampling(kParams));
    ASSERT_TRUE(b.add_stats({}, kParams));
    for (std::uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(b.add_flow(flow(i), at(5), kParams));
    send();                         // 5 data records
    ASSERT_TRUE(b.add_templates()); // a refresh alone: no data record
    send();
    ASSERT_TRUE(b.add_flow(flow(9, Family::ipv6), at(5), kParams));
    send();
    ASSERT_TRUE(b.add_templates());
    ASSERT_TRUE(b.add_sampling(kParams));
    send();
    EXPECT_EQ(sequences, (std::vector<std::uint32_t>{0, 5, 5, 6}));
    EXPECT_EQ(b.sequence(), 7U);
    EXPECT_EQ(b.messages(), 4U);
}

TEST(MessageBuilder, V9SequenceCountsPacketsAndCountCoversTemplates) {
    MessageBuilder b(ExportProtocol::v9, 1472);
    test::FlowDecoder d;
    ASSERT_TRUE(b.add_templates());
    ASSERT_TRUE(b.add_sampling(kParams));
    ASSERT_TRUE(b.add_flow(flow(1), at(100), kParams));
    auto m = d.decode(b.finish(at(100), kParams));
    ASSERT_TRUE(m) << d.error(); // the decoder checks count = templates + records
    EXPECT_EQ(m->count, 6U);
    EXPECT_EQ(m->sequence, 0U);
    EXPECT_EQ(m->uptime_ms, 2000U) << "uptime 0 is 1 s before boot; the next whole second";
    EXPECT_EQ(m->export_secs, kBoot / kNanosPerSecond + 1);
    for (std::uint32_t i = 0; i < 40; ++i)
        ASSERT_TRUE(b.add_flow(flow(i), at(200), kParams) || d.decode(b.finish(at(200), kParams)));
    m = d.decode(b.finish(at(200), kParams));
    ASSERT_TRUE(m) << d.error();
    EXPECT_EQ(m->sequence, 2U) << "third packet";
    EXPECT_EQ(b.sequence(), 3U);
}

TEST(MessageBuilder, SetsArePaddedToFourBytesWithZeros) {
    for (auto protocol : {ExportProtocol::v9, ExportProtocol::ipfix}) {
        MessageBuilder b(protocol, 1472);
        ASSERT_TRUE(b.add_templates(true));
        ASSERT_TRUE(b.add_sampling(kParams)); // 9 bytes: 3 of padding
        ASSERT_TRUE(b.add_if_name({1, "lo", ""}));
        ASSERT_TRUE(b.add_flow(flow(1), at(1), kParams));
        const auto msg = b.finish(at(1), kParams);
        ASSERT_EQ(msg.size() % 4, 0U);
        std::size_t at = protocol == ExportProtocol::v9 ? kV9HeaderSize : kIpfixHeaderSize;
        std::vector<std::uint16_t> lengths;
        while (at < msg.size()) {
            const auto len = std::to_integer<std::uint16_t>(msg[at + 2]) << 8 |
                             std::to_integer<std::uint16_t>(msg[at + 3]);
            lengths.push_back(static_cast<std::uint16_t>(len));
            ASSERT_EQ(len % 4, 0);
            at += static_cast<std::size_t>(len);
        }
        EXPECT_EQ(at, msg.size());
        ASSERT_EQ(lengths.size(), 7U) << "templates, 3 options templates, 3 data sets";
        EXPECT_EQ(lengths[4], 4 + 12) << "sampling record 9 bytes + 3 padding";
        test::FlowDecoder d;
        const auto m = d.decode(msg);
        ASSERT_TRUE(m) << d.error(); // the decoder checks the padding is zeros
        EXPECT_EQ(m->records.size(), 3U);
    }
}

// Fills messages of `mtu` bytes with IPv4 and IPv6 flows; each is within the MTU, as full as
// the next record allows, and the decoded records are the flows added, in order.
void check_split(ExportProtocol protocol, std::size_t mtu) {
    MessageBuilder b(protocol, mtu);
    test::FlowDecoder d;
    std::vector<std::uint64_t> seen;
    std::size_t messages = 0;
    auto drain = [&](std::size_t next_size) {
        const auto msg = b.finish(at(9), kParams);
        ASSERT_LE(msg.size(), mtu);
        if (next_size != 0) {
            EXPECT_GT(msg.size() + next_size + 4, mtu) << "room was left";
        }
        const auto m = d.decode(msg);
        ASSERT_TRUE(m) << d.error();
        for (const auto& r : m->records) seen.push_back(r.value(7));
        ++messages;
    };
    ASSERT_TRUE(b.add_templates());
    const bool v9 = protocol == ExportProtocol::v9;
    for (std::uint32_t i = 0; i < 500; ++i) {
        const auto r = flow(i, i % 3 == 0 ? Family::ipv6 : Family::ipv4);
        if (b.add_flow(r, at(9), kParams)) continue;
        const std::size_t size = r.family == Family::ipv6
                                     ? (v9 ? kV9Ipv6RecordSize : kIpfixIpv6RecordSize)
                                     : (v9 ? kV9Ipv4RecordSize : kIpfixIpv4RecordSize);
        drain(size);
        ASSERT_TRUE(b.add_flow(r, at(9), kParams)) << "an empty message takes any record";
    }
    drain(0);
    ASSERT_EQ(seen.size(), 500U);
    for (std::uint32_t i = 0; i < 500; ++i) EXPECT_EQ(seen[i], 1024 + i);
    EXPECT_GT(messages, 500 * 52 / mtu);
}

TEST(MessageBuilder, MessagesSplitAtTheMtu) {
    for (auto protocol : {ExportProtocol::v9, ExportProtocol::ipfix}) {
        check_split(protocol, default_mtu(false));
        check_split(protocol, default_mtu(true));
        check_split(protocol, kMinMessageSize);
        check_split(protocol, 9000 - 28);
    }
}

TEST(MessageBuilder, FullIpfixMessageHoldsTheMostRecordsThatFit) {
    MessageBuilder b(ExportProtocol::ipfix, 1472);
    std::size_t n = 0;
    while (b.add_flow(flow(static_cast<std::uint32_t>(n)), at(1), kParams)) ++n;
    const std::size_t full = (1472 - 16 - 4) / kIpfixIpv4RecordSize; // 23
    EXPECT_EQ(n, full);
    // The set padded to 4 bytes: 61-byte records leave one byte over at 23 of them.
    EXPECT_EQ(b.finish(at(1), kParams).size(), 16 + ((4 + full * kIpfixIpv4RecordSize + 3) & ~3U));
    MessageBuilder v9(ExportProtocol::v9, 1472);
    n = 0;
    while (v9.add_flow(flow(static_cast<std::uint32_t>(n)), at(1), kParams)) ++n;
    EXPECT_EQ(n, 27U);
    EXPECT_EQ(MessageBuilder(ExportProtocol::v9, 100).mtu(), kMinMessageSize);
    EXPECT_EQ(MessageBuilder(ExportProtocol::v9, 70000).mtu(), kMaxMessageSize);
}

TEST(MessageBuilder, FlowEndReasonPerCause) {
    for (auto protocol : {ExportProtocol::v9, ExportProtocol::ipfix}) {
        MessageBuilder b(protocol, 1472);
        ASSERT_TRUE(b.add_templates());
        const EndReason causes[] = {EndReason::idle, EndReason::active, EndReason::end_of_flow,
                                    EndReason::forced, EndReason::lack_of_resources};
        for (auto cause : causes) {
            auto r = flow(1);
            r.end_reason = cause;
            ASSERT_TRUE(b.add_flow(r, at(1), kParams));
        }
        test::FlowDecoder d;
        const auto m = d.decode(b.finish(at(1), kParams));
        ASSERT_TRUE(m) << d.error();
        ASSERT_EQ(m->records.size(), 5U);
        for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(m->records[i].value(136), i + 1);
    }
}

TEST(MessageBuilder, AbsoluteTimesAreWallTimeOfMonotonicFlowTimes) {
    // Live: flow time is CLOCK_MONOTONIC; the wall offset turns it into Unix time.
    const Nanos mono_boot = 50 * kNanosPerSecond;
    const ExportTime t{.now = 1000 * kNanosPerSecond, .wall_offset = kBoot};
    auto r = flow(1);
    r.first = 900 * kNanosPerSecond + 7 * kMs;
    r.last = 990 * kNanosPerSecond;
    const V5Params params{.boot_time = mono_boot, .engine_type = 0, .engine_id = 1};
    MessageBuilder ipfix(ExportProtocol::ipfix, 1472);
    MessageBuilder v9(ExportProtocol::v9, 1472);
    for (auto* b : {&ipfix, &v9}) ASSERT_TRUE(b->add_templates() && b->add_flow(r, t, params));
    test::FlowDecoder d;
    const auto m = d.decode(ipfix.finish(t, params));
    ASSERT_TRUE(m) << d.error();
    EXPECT_EQ(m->export_secs, static_cast<std::uint32_t>(kBoot / kNanosPerSecond + 1000));
    EXPECT_EQ(m->records[0].value(152), static_cast<std::uint64_t>(kBoot / kMs + 900'007));
    EXPECT_EQ(m->records[0].value(153), static_cast<std::uint64_t>(kBoot / kMs + 990'000));
    const auto m9 = d.decode(v9.finish(t, params));
    ASSERT_TRUE(m9) << d.error();
    EXPECT_EQ(m9->uptime_ms, 951'000U); // ms since 1 s before boot
    EXPECT_EQ(m9->records[0].value(22), 851'007U);
    EXPECT_EQ(m9->records[0].value(21), 941'000U);
}

TEST(MessageBuilder, V9AbsoluteTimesRebuiltFromTheHeaderAreExact) {
    // Collectors compute unix_secs * 1000 - sysUptime + First: with whole seconds in the
    // header that is only right when the header is dated at a whole second.
    const Nanos mono_boot = 50 * kNanosPerSecond + 250'000; // not on a millisecond either
    const ExportTime t{.now = 1000 * kNanosPerSecond + 777 * kMs,
                       .wall_offset = kBoot + 123'456'789};
    const V5Params params{.boot_time = mono_boot, .engine_type = 0, .engine_id = 1};
    MessageBuilder v9(ExportProtocol::v9, 1472);
    auto r = flow(1);
    r.first = 900 * kNanosPerSecond + 7 * kMs + 1;
    r.last = 990 * kNanosPerSecond + 999'999;
    ASSERT_TRUE(v9.add_templates() && v9.add_flow(r, t, params));
    test::FlowDecoder d;
    const auto m = d.decode(v9.finish(t, params));
    ASSERT_TRUE(m) << d.error();
    const auto rebuilt = [&](std::uint64_t switched) {
        return static_cast<std::int64_t>(m->export_secs) * 1000 - m->uptime_ms +
               static_cast<std::int64_t>(switched);
    };
    const auto truth = [&](Nanos x) { return t.wall(x) / kMs; };
    EXPECT_LE(std::abs(rebuilt(m->records[0].value(22)) - truth(r.first)), 1);
    EXPECT_LE(std::abs(rebuilt(m->records[0].value(21)) - truth(r.last)), 1);
    EXPECT_GE(Nanos{m->export_secs} * kNanosPerSecond, t.wall_now()) << "never behind";
}

TEST(MessageBuilder, HeaderNeverBehindARecordsEnd) {
    // A record that ended after the time the exporter sampled (another thread's clock).
    auto r = flow(1);
    r.last = kBoot + 5000 * kMs;
    for (auto protocol : {ExportProtocol::v9, ExportProtocol::ipfix}) {
        MessageBuilder b(protocol, 1472);
        ASSERT_TRUE(b.add_templates() && b.add_flow(r, at(4000), kParams));
        test::FlowDecoder d;
        const auto m = d.decode(b.finish(at(4000), kParams));
        ASSERT_TRUE(m) << d.error();
        EXPECT_EQ(m->export_secs, kBoot / kNanosPerSecond + 5);
        EXPECT_EQ(m->uptime_ms, protocol == ExportProtocol::v9 ? 6000U : 0U);
    }
}

TEST(FlowDecoder, RejectsMalformedMessages) {
    MessageBuilder b(ExportProtocol::ipfix, 1472);
    ASSERT_TRUE(b.add_templates());
    ASSERT_TRUE(b.add_sampling(kParams));
    ASSERT_TRUE(b.add_flow(flow(1), at(1), kParams));
    const auto good_span = b.finish(at(1), kParams);
    const std::vector<std::byte> good(good_span.begin(), good_span.end());
    ASSERT_TRUE(test::FlowDecoder().decode(good));
    auto bad = [](std::vector<std::byte> msg) { return !test::FlowDecoder().decode(msg); };
    auto v = good;
    v.resize(v.size() - 4);
    EXPECT_TRUE(bad(v)) << "length field says more";
    v = good;
    v[1] = std::byte{11};
    EXPECT_TRUE(bad(v)) << "version";
    v = good;
    v[16 + 3] = std::byte{3};
    EXPECT_TRUE(bad(v)) << "set length below 4";
    // Two bytes cut from the end, message and set lengths made to agree: the record is cut.
    v = good;
    v.resize(v.size() - 2);
    const std::size_t set_at = v.size() - (4 + kIpfixIpv4RecordSize - 2);
    v[3] = static_cast<std::byte>(v.size() & 0xff);
    v[2] = static_cast<std::byte>(v.size() >> 8);
    v[set_at + 3] = static_cast<std::byte>(4 + kIpfixIpv4RecordSize - 2);
    EXPECT_TRUE(bad(v)) << "a set that cuts its record";
    // A data set whose template was never sent.
    MessageBuilder data_only(ExportProtocol::ipfix, 1472);
    ASSERT_TRUE(data_only.add_flow(flow(1), at(1), kParams));
    const auto d = data_only.finish(at(1), kParams);
    EXPECT_TRUE(bad({d.begin(), d.end()})) << "unknown template";
    // Non-zero padding after the 9-byte sampling record.
    MessageBuilder pad(ExportProtocol::v9, 1472);
    ASSERT_TRUE(pad.add_templates() && pad.add_sampling(kParams));
    const auto p = pad.finish(at(1), kParams);
    v.assign(p.begin(), p.end());
    ASSERT_TRUE(test::FlowDecoder().decode(v));
    v.back() = std::byte{1};
    EXPECT_TRUE(bad(v)) << "padding not zeros";
    v.back() = std::byte{0};
    v[3] = std::byte{9};
    EXPECT_TRUE(bad(v)) << "v9 count";
}

} // namespace
} // namespace nflowd
