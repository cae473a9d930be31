#include "nflowd/pipeline.hpp"

#include "pipeline_test_access.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

namespace nflowd {
namespace {

using Key = std::tuple<std::uint32_t, std::uint32_t, std::uint16_t, std::uint16_t, std::uint8_t>;
struct Totals {
    std::uint64_t packets = 0, octets = 0, flows = 0;
    bool operator==(const Totals&) const = default;
};

struct Sent {
    std::map<Key, Totals> truth;
    std::uint64_t packets = 0;
};

// Replays `packets` packets over `flows` TCP/UDP flows through a pipeline with `workers`
// shards, time advancing 1 ms per packet, and returns what a real UDP collector received.
struct Run {
    std::map<Key, Totals> received;
    std::vector<std::tuple<Key, std::uint32_t, std::uint32_t, std::uint32_t>> records;
    PipelineStats stats;
    bool sequence_ok = true;
};

Run replay(std::size_t workers, std::size_t flows, std::size_t packets, Sent& sent,
           const std::function<void(Pipeline&, std::size_t)>& during = {}) {
    test::UdpCollector collector;
    Clock clock(Clock::Mode::packets);
    const Nanos start = 1'700'000'000 * kNanosPerSecond;
    clock.advance(start);
    PipelineConfig pc;
    pc.workers = workers;
    pc.table.hashsize = 1024;
    pc.v5.boot_time = start;
    pc.pacing.rate = 0;
    Run run;
    {
        Pipeline pipeline(pc, clock, CollectorSet(parse_destinations(collector.address()), 0));
        auto& d = pipeline.dispatcher(0);
        std::mt19937 rng(42);
        for (std::size_t i = 0; i < packets; ++i) {
            const auto f = static_cast<std::uint32_t>(rng() % flows);
            const std::uint8_t proto = f % 3 ? 6 : 17;
            const auto len = static_cast<std::uint16_t>(40 + rng() % 1460);
            const auto pkt = test::ipv4_packet(0x0a000000 + f, 0x0a640001, proto,
                                               static_cast<std::uint16_t>(1024 + f % 50000), 80,
                                               len, 0, proto == 6 ? 0x10 : 0);
            PacketMeta meta{start + Nanos(i) * kNanosPerMilli, 3, 4};
            d.dispatch(pkt, meta);
            auto& t = sent.truth[Key{0x0a000000 + f, 0x0a640001,
                                     static_cast<std::uint16_t>(1024 + f % 50000), 80, proto}];
            t.packets++;
            t.octets += len;
            sent.packets++;
            if (i % 200 == 199) d.publish();
            if (during) during(pipeline, i);
        }
        d.publish();
        pipeline.finish();
        run.stats = pipeline.stats();
    }
    std::uint32_t expect_seq = 0;
    for (const auto& dg : collector.receive_all()) {
        run.sequence_ok &= dg.header.sequence == expect_seq;
        expect_seq += dg.header.count;
        for (const auto& r : dg.records) {
            const Key k{r.src, r.dst, r.sport, r.dport, r.proto};
            auto& t = run.received[k];
            t.packets += r.packets;
            t.octets += r.octets;
            run.records.emplace_back(k, r.packets, r.octets, r.first);
        }
    }
    for (auto& [k, t] : sent.truth) t.flows = 0;
    for (auto& [k, t] : run.received) t.flows = 0;
    std::sort(run.records.begin(), run.records.end());
    return run;
}

TEST(Pipeline, ExportsEveryPacketExactlyWithOneWorker) {
    Sent sent;
    const auto run = replay(1, 500, 20000, sent);
    EXPECT_TRUE(run.sequence_ok);
    EXPECT_EQ(run.received, sent.truth);
    EXPECT_EQ(run.stats.total().packets, sent.packets);
    EXPECT_EQ(run.stats.parse.accounted, sent.packets);
}

TEST(Pipeline, TwoWorkersGiveTheSameFlowsAsOne) {
    Sent a, b;
    const auto one = replay(1, 2000, 30000, a);
    const auto two = replay(2, 2000, 30000, b);
    EXPECT_EQ(one.received, a.truth);
    EXPECT_EQ(two.received, b.truth);
    // Same flow splitting too (timeouts are driven by packet time, not by thread timing).
    EXPECT_EQ(one.records, two.records);
    EXPECT_TRUE(two.sequence_ok);
}

TEST(Pipeline, HashsizeChangesUnderLoadLoseAndDoubleNothing) {
    Sent sent;
    const auto run = replay(2, 5000, 40000, sent, [](Pipeline& p, std::size_t i) {
        if (i % 5000 == 2500) p.set_hashsize(i % 10000 ? 256 : 65536);
    });
    EXPECT_EQ(run.received, sent.truth);
    EXPECT_TRUE(run.sequence_ok);
}

TEST(Pipeline, FlushExportsActiveFlowsAtOnce) {
    test::UdpCollector collector;
    Clock clock(Clock::Mode::live);
    PipelineConfig pc;
    pc.workers = 2;
    pc.v5.boot_time = clock.now();
    Pipeline pipeline(pc, clock, CollectorSet(parse_destinations(collector.address()), 0));
    auto& d = pipeline.dispatcher(0);
    for (std::uint32_t f = 0; f < 45; ++f)
        d.dispatch(test::ipv4_packet(0x0a000001, 0x0a000002 + f, 17, 5000, 53, 100),
                   PacketMeta{clock.now(), 1, 2});
    d.publish();
    // The workers own the packets once published; flush is applied by each worker in turn.
    for (int i = 0; i < 50 && pipeline.stats().parse.accounted < 45; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    pipeline.flush();
    std::size_t records = 0;
    while (records < 45) {
        auto dg = collector.receive(2000); // the partial datagram leaves within 1 s
        ASSERT_TRUE(dg.has_value()) << "only " << records << " records arrived";
        records += test::decode_v5(*dg).header.count;
    }
    EXPECT_EQ(records, 45u);
    pipeline.finish();
    EXPECT_FALSE(collector.receive(100).has_value()); // nothing left to export twice
}

TEST(Pipeline, EachShardSelectsItsTopFlows) {
    test::UdpCollector collector;
    Clock clock(Clock::Mode::live);
    PipelineConfig pc;
    pc.workers = 2;
    pc.v5.boot_time = clock.now();
    Pipeline pipeline(pc, clock, CollectorSet(parse_destinations(collector.address()), 0));
    auto& d = pipeline.dispatcher(0);
    // Flow f carries f + 1 packets of 100 bytes: the biggest flows are the last ones.
    constexpr std::uint32_t kFlows = 300;
    std::uint64_t packets = 0;
    for (std::uint32_t f = 0; f < kFlows; ++f)
        for (std::uint32_t p = 0; p <= f; ++p, ++packets) {
            d.dispatch(test::ipv4_packet(0x0a000001, 0x0a100000 + f, 17, 5000, 53, 100),
                       PacketMeta{clock.now(), 1, 2});
            if (packets % 200 == 199) d.publish(); // batches, as a reader sends them
        }
    d.publish();
    // Until every worker has taken its packets into its table.
    for (int i = 0; i < 300 && pipeline.stats().total().packets < packets; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const auto top = pipeline.select_flows(5, FlowRank::packets);
    EXPECT_EQ(top.total, kFlows);
    ASSERT_GE(top.flows.size(), 5u);
    ASSERT_LE(top.flows.size(), 10u); // at most 5 from each of the 2 shards
    std::vector<std::uint32_t> best;
    for (const auto& r : top.flows) best.push_back(r.packets);
    std::sort(best.rbegin(), best.rend());
    EXPECT_EQ(std::vector<std::uint32_t>(best.begin(), best.begin() + 5),
              (std::vector<std::uint32_t>{300, 299, 298, 297, 296}));
    const auto all = pipeline.select_flows(0, FlowRank::packets);
    EXPECT_EQ(all.total, kFlows);
    EXPECT_EQ(all.flows.size(), kFlows);
    pipeline.finish();
}

TEST(Pipeline, AggregationChangeAppliesToLaterPackets) {
    test::UdpCollector collector;
    Clock clock(Clock::Mode::packets);
    const Nanos start = 1'700'000'000 * kNanosPerSecond;
    clock.advance(start);
    PipelineConfig pc;
    pc.workers = 2;
    pc.v5.boot_time = start;
    {
        Pipeline pipeline(pc, clock, CollectorSet(parse_destinations(collector.address()), 0));
        auto& d = pipeline.dispatcher(0);
        pipeline.set_aggregation(Aggregation::parse("10.0.0.0/8=8"));
        d.publish(); // the reader picks up the new rules between batches
        for (std::uint32_t f = 0; f < 100; ++f)
            d.dispatch(test::ipv4_packet(0x0a000000 + f, 0xc0000201, 17, 5000, 53, 100),
                       PacketMeta{start, 1, 2});
        d.publish();
        pipeline.finish();
    }
    const auto dgs = collector.receive_all();
    ASSERT_EQ(dgs.size(), 1u);
    ASSERT_EQ(dgs[0].records.size(), 1u);
    EXPECT_EQ(dgs[0].records[0].src, 0x0a000000u);
    EXPECT_EQ(dgs[0].records[0].src_mask, 8);
    EXPECT_EQ(dgs[0].records[0].packets, 100u);
}

// maxflows is one limit for the whole daemon, as ipt_NETFLOW's, whichever workers the flows
// fall on. The flows are picked so that worker 0 gets 300 of them and worker 1 the other 4700:
// a limit split in halves (500 each) admits 300 + 500 = 800. (An even spread would hide the
// split: both halves fill up.) Which flows win is up to the workers' timing; how many is not.
TEST(Pipeline, MaxflowsIsOneLimitForAllWorkers) {
    test::UdpCollector collector;
    Clock clock(Clock::Mode::packets);
    const Nanos start = 1'700'000'000 * kNanosPerSecond;
    clock.advance(start);
    PipelineConfig pc;
    pc.workers = 2;
    pc.table.hashsize = 1024;
    pc.table.maxflows = 1000;
    pc.v5.boot_time = start;
    pc.pacing.rate = 0;
    FlowTableStats during;
    std::vector<WorkerStats> workers;
    std::uint64_t peak = 0;
    {
        Pipeline pipeline(pc, clock, CollectorSet(parse_destinations(collector.address()), 0));
        HeaderParser parser;
        std::vector<std::vector<std::byte>> flows;
        std::size_t on_first = 0;
        for (std::uint32_t f = 0; flows.size() < 5000; ++f) {
            auto pkt = test::ipv4_packet(0x0a000000 + f, 0x0a640001, 17,
                                         static_cast<std::uint16_t>(1024 + f % 50000), 53, 100);
            ParsedPacket info;
            ASSERT_TRUE(is_accounted(parser.parse(pkt, PacketMeta{start, 3, 4}, info)));
            const bool first = pipeline.worker_of(info.v4.key) == 0;
            if (first ? on_first == 300 : flows.size() - on_first == 4700) continue;
            on_first += first ? 1 : 0;
            flows.push_back(std::move(pkt));
        }
        // Two rounds: a flow's second packet is accounted exactly when its first was.
        auto& d = pipeline.dispatcher(0);
        for (Nanos round = 0; round < 2; ++round)
            for (std::size_t i = 0; i < flows.size(); ++i) {
                d.dispatch(flows[i], PacketMeta{start + round * kNanosPerMilli, 3, 4});
                if (i % 200 == 199) d.publish();
            }
        d.publish();
        for (int i = 0; i < 500; ++i) {
            during = pipeline.stats().total();
            if (during.packets + during.dropped_packets == 10'000) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        pipeline.finish();
        workers = pipeline.stats().workers;
        peak = pipeline.stats().peak;
    }
    EXPECT_EQ(during.active, 1000u);
    EXPECT_EQ(during.created, 1000u);
    EXPECT_EQ(during.packets, 2000u);
    EXPECT_EQ(during.dropped_packets, 8000u);
    EXPECT_EQ(during.dropped_octets, 800'000u);
    ASSERT_EQ(workers.size(), 2u);
    EXPECT_LE(workers[0].table.created, 300u);
    EXPECT_EQ(workers[0].table.peak + workers[1].table.peak, 1000u);
    EXPECT_EQ(peak, 1000u);
    std::map<Key, Totals> received;
    for (const auto& dg : collector.receive_all())
        for (const auto& r : dg.records) {
            auto& t = received[Key{r.src, r.dst, r.sport, r.dport, r.proto}];
            t.packets += r.packets;
            t.octets += r.octets;
            ++t.flows;
        }
    EXPECT_EQ(received.size(), 1000u);
    for (const auto& [k, t] : received) EXPECT_EQ(t, (Totals{2, 200, 1}));
}

// A limit lowered below the flows held evicts none and refuses every new flow until the count
// is under it again (ipt_NETFLOW's behaviour); raised, it admits exactly the difference.
TEST(Pipeline, MaxflowsChangedAtRunTimeAppliesToAllWorkersTogether) {
    test::UdpCollector collector;
    Clock clock(Clock::Mode::packets);
    const Nanos start = 1'700'000'000 * kNanosPerSecond;
    clock.advance(start);
    PipelineConfig pc;
    pc.workers = 2;
    pc.table.maxflows = 0;
    pc.v5.boot_time = start;
    Pipeline pipeline(pc, clock, CollectorSet(parse_destinations(collector.address()), 0));
    auto& d = pipeline.dispatcher(0);
    std::uint64_t sent = 0;
    const auto send = [&](std::uint32_t from, std::uint32_t to) {
        for (std::uint32_t f = from; f < to; ++f, ++sent)
            d.dispatch(test::ipv4_packet(0x0a000000 + f, 0x0a640001, 17, 5000, 53, 100),
                       PacketMeta{start, 1, 2});
        d.publish();
        FlowTableStats t;
        for (int i = 0; i < 500; ++i) {
            t = pipeline.stats().total();
            if (t.packets + t.dropped_packets == sent) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return t;
    };
    EXPECT_EQ(send(0, 200).active, 200u);
    pipeline.set_maxflows(101);
    auto t = send(0, 400); // 200 known flows, 200 new ones
    EXPECT_EQ(t.active, 200u);
    EXPECT_EQ(t.created, 200u);
    EXPECT_EQ(t.packets, 400u);
    EXPECT_EQ(t.dropped_packets, 200u);
    // Odd limits: split per worker, 301 would be 151 each, 302 in all.
    pipeline.set_maxflows(301);
    t = send(400, 700);
    EXPECT_EQ(t.active, 301u);
    EXPECT_EQ(t.created, 301u);
    EXPECT_EQ(t.dropped_packets, 200u + 199u);
    EXPECT_EQ(pipeline.stats().peak, 301u);
    pipeline.finish();
}

// The wall clock a live pipeline reads for export timestamps, stepped by the test (a test
// stands in for NTP or a VM restore; the pipeline's own time is CLOCK_MONOTONIC).
std::atomic<Nanos> g_wall_step{0};
Nanos stepped_wall() noexcept {
    return wall_time() + g_wall_step.load();
}

// Sends `n` one-packet flows at flow time now; returns the flows' latest Last.
Nanos send_flows(Dispatcher& d, const Clock& clock, std::uint32_t base, std::uint32_t n) {
    Nanos last = 0;
    for (std::uint32_t f = 0; f < n; ++f) {
        last = clock.now();
        d.dispatch(test::ipv4_packet(0x0a000001, base + f, 17, 5000, 53, 100),
                   PacketMeta{last, 1, 2});
    }
    d.publish();
    return last;
}

// Receives datagrams until `n` records arrived (or 6 s of silence).
std::vector<test::V5Datagram> receive_records(test::UdpCollector& c, std::size_t n) {
    std::vector<test::V5Datagram> out;
    std::size_t records = 0;
    while (records < n) {
        auto dg = c.receive(6000);
        if (!dg) break;
        out.push_back(test::decode_v5(*dg));
        records += out.back().header.count;
    }
    return out;
}

// What each datagram must say: unix_secs on the (stepped) wall clock, and sysUptime at or
// after every record's Last (uint32 ms, as collectors subtract them).
void expect_datagrams(const std::vector<test::V5Datagram>& dgs, Nanos boot, Nanos sent_at) {
    const auto wall_secs = static_cast<double>(stepped_wall() / kNanosPerSecond);
    const auto sent_ms = static_cast<std::uint32_t>((sent_at - boot) / kNanosPerMilli);
    for (const auto& dg : dgs) {
        EXPECT_NEAR(double(dg.header.secs), wall_secs, 5.0);
        for (const auto& r : dg.records) {
            EXPECT_LT(dg.header.uptime - r.last, 5000u) << "sysUptime behind Last or far ahead";
            EXPECT_LE(sent_ms - r.last, 100u); // Last is the packet's flow time
        }
    }
}

// Issue 11 item 4: expiry runs on CLOCK_MONOTONIC. The wall clock steps back an hour (then
// forward an hour) while flows are in the cache: they still leave after the 1 s inactive
// timeout and their datagram after its 1 s wait, in real time; only the headers' unix_secs
// follow the step. On the wall clock, the step back would hold them for an hour.
TEST(Pipeline, WallClockStepsChangeExportTimestampsButNotExpiry) {
    test::UdpCollector collector;
    g_wall_step = 0;
    Clock clock(Clock::Mode::live, stepped_wall);
    PipelineConfig pc;
    pc.workers = 2;
    pc.table.inactive_timeout = kNanosPerSecond;
    pc.table.active_timeout = 60 * kNanosPerSecond;
    pc.v5.boot_time = clock.now();
    pc.pacing.rate = 0;
    Pipeline pipeline(pc, clock, CollectorSet(parse_destinations(collector.address()), 0));
    auto& d = pipeline.dispatcher(0);
    for (const Nanos step : {-3600 * kNanosPerSecond, 3600 * kNanosPerSecond}) {
        const auto base = static_cast<std::uint32_t>(0x0a100000 + (step > 0 ? 100 : 0));
        const Nanos sent_at = send_flows(d, clock, base, 10);
        for (int i = 0; i < 100 && pipeline.stats().total().active < 10; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ASSERT_EQ(pipeline.stats().total().active, 10u);
        g_wall_step = step; // the flows are in the cache
        const auto dgs = receive_records(collector, 10);
        const double waited = double(clock.now() - sent_at) / double(kNanosPerSecond);
        std::size_t records = 0;
        for (const auto& dg : dgs) records += dg.records.size();
        ASSERT_EQ(records, 10u) << "step " << step / kNanosPerSecond << " s";
        EXPECT_GE(waited, 1.0); // not before the inactive timeout
        EXPECT_LT(waited, 4.0); // 1 s inactive + 1 s partial datagram + scheduling
        expect_datagrams(dgs, pc.v5.boot_time, sent_at);
    }
    pipeline.finish();
    EXPECT_FALSE(collector.receive(100).has_value());
    g_wall_step = 0;
}

// Issue 11, item 3: the command refers to the caller's frame, so one worker's exception may
// reach the caller only once every other worker is done with the command. Worker 0 throws at
// once, worker 1 is still busy for 200 ms: a rethrow on the first failed future returns early.
TEST(Pipeline, WorkerCommandRethrowsOnlyAfterEveryWorkerFinished) {
    test::UdpCollector collector;
    Clock clock(Clock::Mode::live);
    PipelineConfig pc;
    pc.workers = 2;
    pc.v5.boot_time = clock.now();
    Pipeline pipeline(pc, clock, CollectorSet(parse_destinations(collector.address()), 0));
    std::atomic<int> ran{0};
    std::atomic<bool> slow_done{false};
    bool done_when_thrown = false;
    try {
        PipelineTestAccess::on_workers(pipeline, [&](std::size_t worker) {
            ++ran;
            if (worker == 0) throw std::runtime_error("worker 0 failed");
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            slow_done = true;
        });
        ADD_FAILURE() << "the exception did not reach the caller";
    } catch (const std::runtime_error& e) {
        done_when_thrown = slow_done.load();
        EXPECT_STREQ(e.what(), "worker 0 failed");
    }
    EXPECT_TRUE(done_when_thrown) << "rethrown while worker 1 still ran the command";
    EXPECT_EQ(ran.load(), 2);
    // Both workers go on: packets are accounted and a flush exports every flow.
    auto& d = pipeline.dispatcher(0);
    for (std::uint32_t f = 0; f < 20; ++f)
        d.dispatch(test::ipv4_packet(0x0a000001, 0x0a000100 + f, 17, 5000, 53, 100),
                   PacketMeta{clock.now(), 1, 2});
    d.publish();
    for (int i = 0; i < 200 && pipeline.stats().parse.accounted < 20; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    pipeline.flush();
    std::size_t records = 0;
    while (records < 20) {
        auto dg = collector.receive(2000);
        ASSERT_TRUE(dg.has_value()) << "only " << records << " records arrived";
        records += test::decode_v5(*dg).header.count;
    }
    EXPECT_EQ(records, 20u);
    pipeline.finish();
}

} // namespace
} // namespace nflowd
