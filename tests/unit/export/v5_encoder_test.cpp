#include "nflowd/v5_encoder.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kBoot = 1'700'000'000'000'000'000; // 2023-11-14T22:13:20Z
constexpr Nanos kMs = kNanosPerMilli;
constexpr Nanos kSec = kNanosPerSecond;

constexpr std::uint32_t ip(std::uint32_t a, std::uint32_t b, std::uint32_t c, std::uint32_t d) {
    return a << 24 | b << 16 | c << 8 | d;
}

std::uint16_t be16(const V5Datagram& dg, std::size_t off) {
    return static_cast<std::uint16_t>(std::to_integer<unsigned>(dg.bytes[off]) << 8 |
                                      std::to_integer<unsigned>(dg.bytes[off + 1]));
}
std::uint32_t be32(const V5Datagram& dg, std::size_t off) {
    return std::uint32_t{be16(dg, off)} << 16 | be16(dg, off + 2);
}
std::size_t rec(std::size_t i, std::size_t field_off) {
    return kV5HeaderSize + i * kV5RecordSize + field_off;
}

FlowRecord make_record(std::uint32_t n, Nanos first, Nanos last) {
    FlowRecord r;
    r.key.src_addr = ip(10, 0, 0, 1) + n;
    r.key.dst_addr = ip(10, 1, 0, 1);
    r.key.src_port = static_cast<std::uint16_t>(1024 + n);
    r.key.dst_port = 443;
    r.key.protocol = 6;
    r.packets = 1;
    r.octets = 100;
    r.first = first;
    r.last = last;
    return r;
}

TEST(EncodeV5, TwoRecordDatagramMatchesHandBuiltBytes) {
    std::vector<FlowRecord> records(2);
    FlowRecord& a = records[0];
    a.key = {.src_addr = ip(10, 0, 0, 1),
             .dst_addr = ip(192, 168, 1, 2),
             .src_port = 12345,
             .dst_port = 80,
             .in_if = 3,
             .protocol = 6,
             .tos = 0x10};
    a.out_if = 4;
    a.packets = 10;
    a.octets = 1500;
    a.first = kBoot + 1000 * kMs;
    a.last = kBoot + 2500 * kMs;
    a.tcp_flags = 0x1b;
    a.src_mask = 24;
    a.dst_mask = 16;
    FlowRecord& b = records[1];
    b.key = {.src_addr = ip(172, 16, 0, 5),
             .dst_addr = ip(8, 8, 8, 8),
             .src_port = 53,
             .dst_port = 33000,
             .in_if = 70000,
             .protocol = 17,
             .tos = 0};
    b.out_if = kUnknownIfindex;
    b.packets = 1;
    b.octets = 76;
    b.first = kBoot + 2999 * kMs + 999'999; // sub-millisecond part is truncated
    b.last = b.first;

    const V5Params params{.boot_time = kBoot, .engine_type = 1, .engine_id = 2};
    const Nanos now = kBoot + 3000 * kMs + 500'000; // unix 1700000003.000500000
    V5Datagram dg;
    encode_v5(records, params, ExportTime{now}, 0x01020304, dg);

    const std::vector<std::uint8_t> expected = {
        // header
        0x00, 0x05,             // version
        0x00, 0x02,             // count
        0x00, 0x00, 0x0b, 0xb8, // sysUptime 3000 ms
        0x65, 0x53, 0xf1, 0x03, // unix_secs 1700000003
        0x00, 0x07, 0xa1, 0x20, // unix_nsecs 500000
        0x01, 0x02, 0x03, 0x04, // flow_sequence
        0x01,                   // engine_type
        0x02,                   // engine_id
        0x00, 0x00,             // sampling_interval
        // record 0
        0x0a, 0x00, 0x00, 0x01, // srcaddr 10.0.0.1
        0xc0, 0xa8, 0x01, 0x02, // dstaddr 192.168.1.2
        0x00, 0x00, 0x00, 0x00, // nexthop
        0x00, 0x03,             // input
        0x00, 0x04,             // output
        0x00, 0x00, 0x00, 0x0a, // dPkts 10
        0x00, 0x00, 0x05, 0xdc, // dOctets 1500
        0x00, 0x00, 0x03, 0xe8, // First 1000
        0x00, 0x00, 0x09, 0xc4, // Last 2500
        0x30, 0x39,             // srcport 12345
        0x00, 0x50,             // dstport 80
        0x00,                   // pad1
        0x1b,                   // tcp_flags
        0x06,                   // prot
        0x10,                   // tos
        0x00, 0x00,             // src_as
        0x00, 0x00,             // dst_as
        0x18,                   // src_mask 24
        0x10,                   // dst_mask 16
        0x00, 0x00,             // pad2
        // record 1
        0xac, 0x10, 0x00, 0x05, // srcaddr 172.16.0.5
        0x08, 0x08, 0x08, 0x08, // dstaddr 8.8.8.8
        0x00, 0x00, 0x00, 0x00, // nexthop
        0xff, 0xff,             // input 70000 saturates to 65535
        0xff, 0xff,             // output unknown
        0x00, 0x00, 0x00, 0x01, // dPkts
        0x00, 0x00, 0x00, 0x4c, // dOctets 76
        0x00, 0x00, 0x0b, 0xb7, // First 2999
        0x00, 0x00, 0x0b, 0xb7, // Last 2999
        0x00, 0x35,             // srcport 53
        0x80, 0xe8,             // dstport 33000
        0x00,                   // pad1
        0x00,                   // tcp_flags
        0x11,                   // prot 17
        0x00,                   // tos
        0x00, 0x00,             // src_as
        0x00, 0x00,             // dst_as
        0x00,                   // src_mask
        0x00,                   // dst_mask
        0x00, 0x00,             // pad2
    };
    ASSERT_EQ(expected.size(), 24U + 2 * 48U);
    ASSERT_EQ(dg.size, expected.size());
    EXPECT_EQ(dg.count, 2);
    for (std::size_t i = 0; i < expected.size(); ++i)
        EXPECT_EQ(std::to_integer<unsigned>(dg.bytes[i]), expected[i]) << "byte " << i;
    EXPECT_EQ(dg.view().size(), expected.size());
}

TEST(EncodeV5, HeaderCarriesCountUptimeClockSequenceAndEngine) {
    std::vector<FlowRecord> records;
    for (std::uint32_t i = 0; i < 7; ++i) records.push_back(make_record(i, kBoot, kBoot));
    const V5Params params{.boot_time = kBoot, .engine_type = 200, .engine_id = 77};
    const Nanos now = kBoot + 86'400 * kSec + 123 * kMs + 456'789;
    V5Datagram dg;
    encode_v5(records, params, ExportTime{now}, 0xfffffff0U, dg);

    EXPECT_EQ(dg.size, kV5HeaderSize + 7 * kV5RecordSize);
    EXPECT_EQ(be16(dg, 0), 5);
    EXPECT_EQ(be16(dg, 2), 7);
    EXPECT_EQ(be32(dg, 4), 86'400'123U);
    EXPECT_EQ(be32(dg, 8), 1'700'086'400U);
    EXPECT_EQ(be32(dg, 12), 123'456'789U);
    EXPECT_EQ(be32(dg, 16), 0xfffffff0U);
    EXPECT_EQ(std::to_integer<unsigned>(dg.bytes[20]), 200U);
    EXPECT_EQ(std::to_integer<unsigned>(dg.bytes[21]), 77U);
    EXPECT_EQ(be16(dg, 22), 0);
}

TEST(EncodeV5, NoRecordsGivesBareHeader) {
    V5Datagram dg;
    encode_v5({}, V5Params{.boot_time = kBoot}, ExportTime{kBoot}, 0, dg);
    EXPECT_EQ(dg.size, kV5HeaderSize);
    EXPECT_EQ(dg.count, 0);
    EXPECT_EQ(be16(dg, 2), 0);
}

TEST(EncodeV5, MoreThanThirtyRecordsAreClampedToThirty) {
    std::vector<FlowRecord> records(45, make_record(0, kBoot, kBoot));
    V5Datagram dg;
    encode_v5(records, V5Params{.boot_time = kBoot}, ExportTime{kBoot}, 0, dg);
    EXPECT_EQ(dg.size, kV5MaxDatagram);
    EXPECT_EQ(dg.count, 30);
    EXPECT_EQ(be16(dg, 2), 30);
}

TEST(EncodeV5, IfindexAbove16BitsSaturatesInsteadOfTruncating) {
    FlowRecord r = make_record(0, kBoot, kBoot);
    r.key.in_if = 65536; // truncation would say ifindex 0
    r.out_if = 65534;
    V5Datagram dg;
    encode_v5({&r, 1}, V5Params{.boot_time = kBoot}, ExportTime{kBoot}, 0, dg);
    EXPECT_EQ(be16(dg, rec(0, 12)), 65535);
    EXPECT_EQ(be16(dg, rec(0, 14)), 65534);
}

TEST(EncodeV5, BootFiftyDaysAgoWrapsUptimeAndFlowTimesConsistently) {
    const Nanos now = kBoot;
    const Nanos boot = now - 50LL * 86'400 * kSec; // 4.32e9 ms: past the 2^32 ms wrap
    const FlowRecord r = make_record(0, now - 90 * kSec, now - 30 * kSec);
    V5Datagram dg;
    encode_v5({&r, 1}, V5Params{.boot_time = boot}, ExportTime{now}, 0, dg);

    const std::uint64_t up_ms = 50ULL * 86'400'000;
    EXPECT_EQ(be32(dg, 4), static_cast<std::uint32_t>(up_ms));
    EXPECT_EQ(be32(dg, rec(0, 24)), static_cast<std::uint32_t>(up_ms - 90'000));
    EXPECT_EQ(be32(dg, rec(0, 28)), static_cast<std::uint32_t>(up_ms - 30'000));
    // What collectors compute: duration and age in uint32 arithmetic.
    EXPECT_EQ(static_cast<std::uint32_t>(be32(dg, rec(0, 28)) - be32(dg, rec(0, 24))), 60'000U);
    EXPECT_EQ(static_cast<std::uint32_t>(be32(dg, 4) - be32(dg, rec(0, 28))), 30'000U);
}

TEST(EncodeV5, FlowSpanningTheUptimeWrapKeepsItsDuration) {
    const Nanos wrap = kBoot + (Nanos{1} << 32) * kMs;
    const FlowRecord r = make_record(0, wrap - 5000 * kMs, wrap + 3000 * kMs);
    V5Datagram dg;
    encode_v5({&r, 1}, V5Params{.boot_time = kBoot}, ExportTime{wrap + 10'000 * kMs}, 0, dg);

    EXPECT_EQ(be32(dg, 4), 10'000U);
    EXPECT_EQ(be32(dg, rec(0, 24)), 0xffffffffU - 4999U);
    EXPECT_EQ(be32(dg, rec(0, 28)), 3000U);
    EXPECT_EQ(static_cast<std::uint32_t>(be32(dg, rec(0, 28)) - be32(dg, rec(0, 24))), 8000U);
}

// Issue 11 item 5: --read's exporter reads the replay clock, then pops records the readers
// published ahead of it. A header behind a record's Last makes collectors compute
// sysUptime - Last as ~2^32 ms: the flow lands 49.7 days in the past.
TEST(EncodeV5, HeaderIsNeverBehindTheLatestLast) {
    const Nanos now = kBoot + 10 * kSec;
    std::vector<FlowRecord> records{make_record(0, kBoot, now - kSec),
                                    make_record(1, kBoot + kSec, now + 2500 * kMs),
                                    make_record(2, kBoot, now + 700 * kMs)};
    V5Datagram dg;
    encode_v5(records, V5Params{.boot_time = kBoot}, ExportTime{now}, 0, dg);
    ASSERT_EQ(dg.count, 3);
    EXPECT_EQ(be32(dg, 4), 12'500U); // the latest Last, not `now`
    for (std::size_t i = 0; i < 3; ++i)
        EXPECT_LT(static_cast<std::uint32_t>(be32(dg, 4) - be32(dg, rec(i, 28))), 1U << 31)
            << "record " << i;
    // unix_secs/nsecs are the same instant as sysUptime: boot + 12.5 s.
    EXPECT_EQ(be32(dg, 8), 1'700'000'012U);
    EXPECT_EQ(be32(dg, 12), 500'000'000U);
}

TEST(EncodeV5, WallOffsetMovesUnixTimeButNeitherUptimeNorFlowTimes) {
    // Live: flow time is CLOCK_MONOTONIC (boot here ~1 h of uptime), wall = flow + offset.
    const Nanos boot = 3600 * kSec;
    const Nanos now = boot + 20 * kSec;
    const FlowRecord r = make_record(0, now - 8 * kSec, now - 3 * kSec);
    const Nanos offset = kBoot - boot; // wall at `boot` was kBoot
    V5Datagram before;
    V5Datagram after;
    encode_v5({&r, 1}, V5Params{.boot_time = boot}, ExportTime{now, offset}, 0, before);
    // The wall clock is stepped back an hour: only the header's wall time follows it.
    encode_v5({&r, 1}, V5Params{.boot_time = boot}, ExportTime{now, offset - 3600 * kSec}, 0,
              after);
    EXPECT_EQ(be32(before, 8), 1'700'000'020U);
    EXPECT_EQ(be32(after, 8), 1'700'000'020U - 3600U);
    EXPECT_EQ(be32(before, 4), 20'000U);
    EXPECT_EQ(be32(after, 4), 20'000U);
    EXPECT_EQ(be32(after, rec(0, 24)), 12'000U);
    EXPECT_EQ(be32(after, rec(0, 28)), 17'000U);
}

TEST(V5Batcher, PartialDatagramIsDatedNoEarlierThanItsRecords) {
    V5Batcher b(V5Params{.boot_time = kBoot});
    V5Datagram dg;
    const Nanos now = kBoot + 5 * kSec;
    b.add(make_record(0, kBoot, now + 400 * kMs), ExportTime{now}, dg);
    ASSERT_TRUE(b.finish(ExportTime{now}, dg));
    EXPECT_EQ(be32(dg, 4), 5'400U);
    EXPECT_EQ(be32(dg, rec(0, 28)), 5'400U);
}

// Feeds n records at one instant and returns every datagram the batcher produced,
// including the partial one from finish().
std::vector<V5Datagram> batch(V5Batcher& b, std::size_t n, Nanos now) {
    std::vector<V5Datagram> out;
    V5Datagram dg;
    for (std::size_t i = 0; i < n; ++i)
        if (b.add(make_record(static_cast<std::uint32_t>(i), kBoot, kBoot), ExportTime{now}, dg))
            out.push_back(dg);
    if (b.finish(ExportTime{now}, dg)) out.push_back(dg);
    return out;
}

TEST(V5Batcher, OneRecordIsHeldUntilFinish) {
    V5Batcher b(V5Params{.boot_time = kBoot});
    V5Datagram dg;
    EXPECT_FALSE(b.add(make_record(0, kBoot, kBoot), ExportTime{kBoot}, dg));
    EXPECT_EQ(b.pending(), 1U);
    ASSERT_TRUE(b.finish(ExportTime{kBoot}, dg));
    EXPECT_EQ(dg.count, 1);
    EXPECT_EQ(dg.size, 72U);
    EXPECT_EQ(b.pending(), 0U);
    EXPECT_FALSE(b.finish(ExportTime{kBoot}, dg));
}

TEST(V5Batcher, TwentyNineRecordsStayPendingAsOnePartialDatagram) {
    V5Batcher b(V5Params{.boot_time = kBoot});
    const auto out = batch(b, 29, kBoot);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].count, 29);
    EXPECT_EQ(out[0].size, 24U + 29 * 48U);
}

TEST(V5Batcher, ThirtiethRecordCompletesAFullDatagram) {
    V5Batcher b(V5Params{.boot_time = kBoot});
    V5Datagram dg;
    for (std::uint32_t i = 0; i < 29; ++i)
        EXPECT_FALSE(b.add(make_record(i, kBoot, kBoot), ExportTime{kBoot}, dg));
    ASSERT_TRUE(b.add(make_record(29, kBoot, kBoot), ExportTime{kBoot}, dg));
    EXPECT_EQ(dg.count, 30);
    EXPECT_EQ(dg.size, 1464U);
    EXPECT_EQ(b.pending(), 0U);
    EXPECT_FALSE(b.finish(ExportTime{kBoot}, dg));
}

TEST(V5Batcher, ThirtyFirstRecordStartsTheNextDatagram) {
    V5Batcher b(V5Params{.boot_time = kBoot});
    const auto out = batch(b, 31, kBoot);
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[0].count, 30);
    EXPECT_EQ(out[0].size, 1464U);
    EXPECT_EQ(out[1].count, 1);
    EXPECT_EQ(out[1].size, 72U);
    // The records keep their order across the datagram boundary.
    EXPECT_EQ(be32(out[0], rec(29, 0)), ip(10, 0, 0, 1) + 29);
    EXPECT_EQ(be32(out[1], rec(0, 0)), ip(10, 0, 0, 1) + 30);
}

TEST(V5Batcher, SequenceCountsFlowsEmittedBeforeEachDatagram) {
    V5Batcher b(V5Params{.boot_time = kBoot});
    const auto out = batch(b, 65, kBoot);
    ASSERT_EQ(out.size(), 3U);
    EXPECT_EQ(be32(out[0], 16), 0U);
    EXPECT_EQ(be32(out[1], 16), 30U);
    EXPECT_EQ(be32(out[2], 16), 60U);
    EXPECT_EQ(out[2].count, 5);
    EXPECT_EQ(b.sequence(), 65U);

    const auto more = batch(b, 2, kBoot);
    ASSERT_EQ(more.size(), 1U);
    EXPECT_EQ(be32(more[0], 16), 65U);
    EXPECT_EQ(b.sequence(), 67U);
}

TEST(V5Batcher, PartialDatagramIsEmittedOnceFirstRecordWaitedOneSecond) {
    V5Batcher b(V5Params{.boot_time = kBoot});
    V5Datagram dg;
    const Nanos t0 = kBoot + 10 * kSec;
    EXPECT_EQ(b.deadline(), 0);
    EXPECT_FALSE(b.poll(ExportTime{t0}, dg));
    b.add(make_record(0, t0, t0), ExportTime{t0}, dg);
    // A later record does not push the deadline back.
    b.add(make_record(1, t0, t0), ExportTime{t0 + 600 * kMs}, dg);
    EXPECT_EQ(b.deadline(), t0 + kSec);
    EXPECT_FALSE(b.poll(ExportTime{t0 + kSec - 1}, dg));
    ASSERT_TRUE(b.poll(ExportTime{t0 + kSec}, dg));
    EXPECT_EQ(dg.count, 2);
    EXPECT_EQ(be32(dg, 4), 11'000U); // stamped with the emit time
    EXPECT_EQ(b.deadline(), 0);
    EXPECT_FALSE(b.poll(ExportTime{t0 + 5 * kSec}, dg));
}

TEST(V5Batcher, CustomMaxWaitIsHonoured) {
    V5Batcher b(V5Params{.boot_time = kBoot}, 250 * kMs);
    V5Datagram dg;
    b.add(make_record(0, kBoot, kBoot), ExportTime{kBoot}, dg);
    EXPECT_FALSE(b.poll(ExportTime{kBoot + 249 * kMs}, dg));
    EXPECT_TRUE(b.poll(ExportTime{kBoot + 250 * kMs}, dg));
}

TEST(V5Batcher, NewParamsApplyFromTheNextDatagram) {
    V5Batcher b(V5Params{.boot_time = kBoot, .engine_id = 1});
    V5Datagram dg;
    b.add(make_record(0, kBoot, kBoot), ExportTime{kBoot}, dg);
    b.set_params(V5Params{.boot_time = kBoot, .engine_id = 9});
    ASSERT_TRUE(b.finish(ExportTime{kBoot}, dg));
    EXPECT_EQ(std::to_integer<unsigned>(dg.bytes[21]), 9U);
    EXPECT_EQ(b.params().engine_id, 9);
}

TEST(V5Batcher, Ipv6RecordsAreNeverQueued) {
    V5Batcher b(V5Params{.boot_time = kBoot});
    V5Datagram dg;
    FlowRecord v6;
    v6.family = Family::ipv6;
    v6.packets = 1;
    for (int i = 0; i < 40; ++i) EXPECT_FALSE(b.add(v6, ExportTime{kBoot}, dg));
    EXPECT_EQ(b.pending(), 0U);
    EXPECT_EQ(b.sequence(), 0U);
    FlowRecord v4;
    v4.packets = 1;
    for (std::size_t i = 1; i < kV5MaxRecords; ++i) EXPECT_FALSE(b.add(v4, ExportTime{kBoot}, dg));
    ASSERT_TRUE(b.add(v4, ExportTime{kBoot}, dg));
    EXPECT_EQ(dg.count, kV5MaxRecords);
}

} // namespace
} // namespace nflowd
