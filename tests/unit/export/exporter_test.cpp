#include "nflowd/exporter.hpp"

#include "fresh_netns.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace nflowd {
namespace {

constexpr Nanos kBoot = 1'700'000'000'000'000'000;
constexpr Nanos kMs = kNanosPerMilli;

using Receiver = test::UdpCollector;

// Size, record count and sequence of a v5 datagram.
struct Header {
    std::size_t size;
    std::uint16_t count;
    std::uint32_t sequence;
};

// The header of the next datagram `c` receives, or nothing after `timeout_ms` of silence.
std::optional<Header> recv_header(Receiver& c, int timeout_ms = 1000) {
    const auto d = c.receive(timeout_ms);
    if (!d || d->size() < 24) return std::nullopt;
    const auto b = [&](std::size_t i) { return std::to_integer<std::uint32_t>((*d)[i]); };
    return Header{d->size(), static_cast<std::uint16_t>(b(2) << 8 | b(3)),
                  b(16) << 24 | b(17) << 16 | b(18) << 8 | b(19)};
}

std::vector<FlowRecord> records(std::size_t n) {
    std::vector<FlowRecord> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        v[i].key.src_addr = 0x0a000000U + static_cast<std::uint32_t>(i);
        v[i].packets = 1;
        v[i].first = v[i].last = kBoot;
    }
    return v;
}

CollectorSet collectors_for(const std::string& spec) {
    return CollectorSet(parse_destinations(spec), 0);
}

constexpr PacingConfig kNoPacing{.rate = 0, .burst = 0};

TEST(Exporter, FullDatagramsGoOutAsTheyFillAndFinishSendsTheRest) {
    Receiver r;
    Exporter ex(V5Params{.boot_time = kBoot}, collectors_for(r.address()), kNoPacing);
    ex.add(records(65), ExportTime{kBoot});
    EXPECT_EQ(ex.stats().datagrams, 2U);
    ex.finish(ExportTime{kBoot});
    EXPECT_EQ(ex.stats().flows, 65U);
    EXPECT_EQ(ex.stats().datagrams, 3U);
    EXPECT_EQ(ex.stats().lost_flows, 0U);

    const std::uint16_t counts[] = {30, 30, 5};
    const std::uint32_t seqs[] = {0, 30, 60};
    for (int i = 0; i < 3; ++i) {
        const auto h = recv_header(r);
        ASSERT_TRUE(h);
        EXPECT_EQ(h->count, counts[i]);
        EXPECT_EQ(h->sequence, seqs[i]);
        EXPECT_EQ(h->size, 24U + 48U * counts[i]);
    }
    EXPECT_FALSE(recv_header(r, 50));
}

TEST(Exporter, TickSendsAPartialDatagramAfterOneSecond) {
    Receiver r;
    Exporter ex(V5Params{.boot_time = kBoot}, collectors_for(r.address()), kNoPacing);
    ex.add(records(3), ExportTime{kBoot});
    EXPECT_EQ(ex.deadline(), kBoot + kNanosPerSecond);
    ex.tick(ExportTime{kBoot + 999 * kMs});
    EXPECT_FALSE(recv_header(r, 50));
    ex.tick(ExportTime{kBoot + 1000 * kMs});
    const auto h = recv_header(r);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->count, 3);
    EXPECT_EQ(ex.deadline(), 0);
}

TEST(Exporter, FlowsAreLostWhenNoCollectorAcceptsTheDatagram) {
    Exporter ex(V5Params{.boot_time = kBoot}, CollectorSet({}, 0), kNoPacing);
    ex.add(records(40), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});
    EXPECT_EQ(ex.stats().lost_datagrams, 2U);
    EXPECT_EQ(ex.stats().lost_flows, 40U);
}

TEST(Exporter, RefusalsAreCountedWithoutLosingTheDatagramBeingSent) {
    Receiver a, b;
    const auto spec = a.address() + "," + b.address();
    a.close();
    b.close();
    Exporter ex(V5Params{.boot_time = kBoot}, collectors_for(spec), kNoPacing);
    ex.add(records(30 * 10), ExportTime{kBoot});
    // UDP learns of a closed port only from the ICMP answer, on the following send: each
    // refusal stands for an earlier datagram the collector never took. The current one is
    // retried, so nothing is counted lost locally.
    std::uint64_t refused = 0;
    for (const auto& s : ex.collectors().stats()) refused += s.err_refused;
    EXPECT_GE(refused, 2U);
    EXPECT_EQ(ex.stats().datagrams, 10U);
    EXPECT_EQ(ex.stats().lost_datagrams, 0U);
}

TEST(Exporter, OneLiveCollectorIsEnoughToNotLoseFlows) {
    Receiver live, dead;
    const auto spec = dead.address() + "," + live.address();
    dead.close();
    Exporter ex(V5Params{.boot_time = kBoot}, collectors_for(spec), kNoPacing);
    ex.add(records(30 * 6), ExportTime{kBoot});
    EXPECT_EQ(ex.stats().lost_flows, 0U);
    for (int i = 0; i < 6; ++i) EXPECT_TRUE(recv_header(live));
}

TEST(Exporter, SwappingCollectorsKeepsTheSequenceAndPendingRecords) {
    Receiver a, b;
    Exporter ex(V5Params{.boot_time = kBoot}, collectors_for(a.address()), kNoPacing);
    ex.add(records(40), ExportTime{kBoot}); // 30 sent to a, 10 pending
    ex.set_collectors(collectors_for(b.address()));
    ex.add(records(20), ExportTime{kBoot});
    ex.finish(ExportTime{kBoot});

    const auto ha = recv_header(a);
    ASSERT_TRUE(ha);
    EXPECT_EQ(ha->sequence, 0U);
    EXPECT_FALSE(recv_header(a, 50));
    const auto hb = recv_header(b);
    ASSERT_TRUE(hb);
    EXPECT_EQ(hb->count, 30);
    EXPECT_EQ(hb->sequence, 30U);
    EXPECT_FALSE(recv_header(b, 50));
}

TEST(Exporter, ACollectorKeptAcrossASwapKeepsItsCounters) {
    Receiver a, b, c;
    Exporter ex(V5Params{.boot_time = kBoot}, collectors_for(a.address() + "," + b.address()),
                kNoPacing);
    ex.add(records(60), ExportTime{kBoot}); // two datagrams to each
    ex.set_collectors(collectors_for(a.address() + "," + c.address()));
    ex.add(records(30), ExportTime{kBoot}); // one more to a and the first to c
    const auto st = ex.collectors().stats();
    ASSERT_EQ(st.size(), 2U);
    EXPECT_EQ(st[0].destination, a.address());
    EXPECT_EQ(st[0].datagrams, 3U);
    EXPECT_EQ(st[1].destination, c.address());
    EXPECT_EQ(st[1].datagrams, 1U);
}

double seconds_to_send(std::size_t datagrams, const PacingConfig& pacing, Receiver& r) {
    Exporter ex(V5Params{.boot_time = kBoot}, collectors_for(r.address()), pacing);
    const auto recs = records(30 * datagrams);
    const auto t0 = std::chrono::steady_clock::now();
    ex.add(recs, ExportTime{kBoot});
    const auto t1 = std::chrono::steady_clock::now();
    EXPECT_EQ(ex.stats().datagrams, datagrams);
    return std::chrono::duration<double>(t1 - t0).count();
}

// A full v5 datagram: header and 30 records. Pacing counts bytes, not datagrams.
constexpr std::uint32_t kFull = 24 + 30 * 48;

TEST(Exporter, PacingHoldsBigFlushesToTheConfiguredByteRate) {
    Receiver r;
    // 5 datagrams' bytes go out at once, the other 40 at 200 datagrams' worth of bytes a
    // second: at least 0.2 s however fast the machine.
    const double paced =
        seconds_to_send(45, PacingConfig{.rate = 200 * kFull, .burst = 5 * kFull}, r);
    EXPECT_GE(paced, 0.19);
    // Nothing is dropped or reordered by waiting.
    for (std::uint32_t i = 0; i < 45; ++i) {
        const auto h = recv_header(r);
        ASSERT_TRUE(h) << i;
        EXPECT_EQ(h->sequence, 30 * i);
    }
    EXPECT_FALSE(recv_header(r, 20));

    Receiver u;
    const double unpaced = seconds_to_send(45, kNoPacing, u);
    EXPECT_LT(unpaced, paced);
}

// Small datagrams cost less than full ones: the rate is in bytes, so 40 datagrams of one
// record each (72 bytes) pass a rate that holds 40 full ones (1464 bytes) for 0.4 s. When
// the rate counted datagrams, both took the same time.
TEST(Exporter, SmallDatagramsPassFasterThanFullOnesAtTheSameByteRate) {
    const PacingConfig pacing{.rate = 100 * kFull, .burst = kFull};
    Receiver full;
    const double t_full = seconds_to_send(41, pacing, full);
    EXPECT_GE(t_full, 0.39);

    Receiver small;
    Exporter ex(V5Params{.boot_time = kBoot}, collectors_for(small.address()), pacing);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 41; ++i) { // one record each, pushed out by finish()
        ex.add(records(1), ExportTime{kBoot});
        ex.finish(ExportTime{kBoot});
    }
    const double t_small =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(ex.stats().datagrams, 41U);
    EXPECT_EQ(ex.stats().bytes, 41U * 72U);
    EXPECT_LT(t_small, 0.1); // 41 x 72 bytes = 2 full datagrams' worth: the burst and 15 ms
    for (int i = 0; i < 41; ++i) ASSERT_TRUE(recv_header(small)) << i;
}

TEST(Exporter, BurstGoesOutWithoutWaiting) {
    Receiver r;
    // At one datagram's bytes a second, any wait inside the burst would take a whole second.
    const double t = seconds_to_send(4, PacingConfig{.rate = kFull, .burst = 4 * kFull}, r);
    EXPECT_LT(t, 0.5);
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(recv_header(r));
}

// Two v5 destinations receive a copy each: the bytes that leave are twice the datagram's.
TEST(Exporter, EveryDestinationsCopyCountsAgainstTheRate) {
    Receiver a, b;
    Exporter ex(V5Params{.boot_time = kBoot}, collectors_for(a.address() + "," + b.address()),
                PacingConfig{.rate = 100 * kFull, .burst = kFull});
    const auto t0 = std::chrono::steady_clock::now();
    ex.add(records(30 * 21), ExportTime{kBoot}); // 42 copies: 41 after the burst, 0.41 s
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_GE(t, 0.39);
    for (int i = 0; i < 21; ++i) {
        ASSERT_TRUE(recv_header(a)) << i;
        ASSERT_TRUE(recv_header(b)) << i;
    }
}

TEST(Exporter, RateIsSustainedAfterTheBurst) {
    Receiver r;
    // 2 in the burst, then 8 more at 100 datagrams' bytes a second: at least 80 ms; with the
    // burst refilled between calls a second run is no faster than the first.
    Exporter ex(V5Params{.boot_time = kBoot}, collectors_for(r.address()),
                PacingConfig{.rate = 100 * kFull, .burst = 2 * kFull});
    const auto recs = records(30 * 10);
    const auto t0 = std::chrono::steady_clock::now();
    ex.add(recs, ExportTime{kBoot});
    const auto t1 = std::chrono::steady_clock::now();
    ex.add(recs, ExportTime{kBoot});
    const auto t2 = std::chrono::steady_clock::now();
    EXPECT_GE(std::chrono::duration<double>(t1 - t0).count(), 0.075);
    // The second batch starts with an empty bucket: all 10 wait their turn.
    EXPECT_GE(std::chrono::duration<double>(t2 - t1).count(), 0.09);
    EXPECT_EQ(ex.stats().datagrams, 20U);
}

TEST(Exporter, NewPacingAppliesToTheNextDatagram) {
    Receiver r;
    Exporter ex(V5Params{.boot_time = kBoot}, collectors_for(r.address()),
                PacingConfig{.rate = kFull, .burst = kFull});
    ex.add(records(30), ExportTime{kBoot}); // uses the whole bucket; the next would wait 1 s
    ex.set_pacing(kNoPacing);
    const auto t0 = std::chrono::steady_clock::now();
    ex.add(records(30 * 5), ExportTime{kBoot});
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.5);
    EXPECT_EQ(ex.stats().datagrams, 6U);
}

// The v5 sequence counts the flows the exporter sent, whoever received them: a collector
// that was unreachable sees, in its first datagram, a sequence that says how many flows it
// missed, as after any lost datagram.
TEST(Exporter, FlowsLostToAnUnreachableCollectorShowAsASequenceGapThere) {
    const bool ran = test::in_fresh_netns([] {
        Exporter ex(V5Params{.boot_time = kBoot}, collectors_for("127.0.0.1:2055"), kNoPacing);
        ex.add(records(30), ExportTime{kBoot}); // a full datagram, sent at once: no route, lost
        ex.add(records(7), ExportTime{kBoot});
        ex.finish(ExportTime{kBoot});
        EXPECT_EQ(ex.stats().datagrams, 2U);
        EXPECT_EQ(ex.stats().lost_datagrams, 2U);
        EXPECT_EQ(ex.stats().lost_flows, 37U);
        EXPECT_EQ(ex.collectors().stats()[0].err_unreachable, 2U);

        test::set_loopback(true);
        Receiver r(2055);
        ex.add(records(4), ExportTime{kBoot});
        ex.finish(ExportTime{kBoot});
        const auto h = recv_header(r);
        ASSERT_TRUE(h);
        EXPECT_EQ(h->count, 4U);
        EXPECT_EQ(h->sequence, 37U);
        EXPECT_EQ(ex.stats().lost_flows, 37U);
    });
    if (!ran) GTEST_SKIP() << "no network namespaces (needs CAP_SYS_ADMIN)";
}

} // namespace
} // namespace nflowd
