// ConntrackSource and ConntrackFeed against the kernel, in a fresh network namespace (root):
// real NATed UDP connections through an OUTPUT DNAT rule on lo, their events, the start-up
// dump, the NatTable they feed, and a burst whose events plus counted losses add up.
#include "nflowd/conntrack_source.hpp"
#include "nflowd/nat_table.hpp"

#include "../export/fresh_netns.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace nflowd {
namespace {

constexpr std::uint32_t kLoopback = 0x7f000001;
constexpr std::uint16_t kPublic = 5000; // what the client sends to
constexpr std::uint16_t kInside = 6000; // where the DNAT rule sends it
constexpr std::uint16_t kNoNat = 7000;  // no rule: a connection without NAT

bool sh(const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

// The namespace's NAT rule; false when iptables or conntrack(8) cannot be used here.
bool setup_dnat() {
    test::set_loopback(true);
    return sh("command -v conntrack") &&
           sh("iptables -t nat -A OUTPUT -p udp -d 127.0.0.1 --dport " + std::to_string(kPublic) +
              " -j DNAT --to-destination 127.0.0.1:" + std::to_string(kInside));
}

// One UDP datagram from 127.0.0.1:sport: one new connection.
void udp_from(std::uint16_t sport, std::uint16_t dport) {
    const UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(kLoopback);
    sa.sin_port = htons(sport);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0) << sport;
    sa.sin_port = htons(dport);
    ASSERT_EQ(::sendto(fd.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 1);
}

FlowRecord udp_record(std::uint16_t sport, std::uint16_t dport) {
    FlowRecord r;
    r.key.src_addr = kLoopback;
    r.key.dst_addr = kLoopback;
    r.key.src_port = sport;
    r.key.dst_port = dport;
    r.key.protocol = IPPROTO_UDP;
    return r;
}

NatEndpoint lo(std::uint16_t port) {
    return NatEndpoint::ipv4(kLoopback, port);
}

// Polls `done` every 5 ms for at most `ms`.
bool wait_for(const std::function<bool()>& done, int ms = 3000) {
    for (int i = 0; i < ms / 5; ++i) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return done();
}

struct Collected {
    NatTable table;
    std::vector<NatEvent> events;
    void drain(ConntrackFeed& feed) {
        feed.drain([&](const NatEvent& ev) {
            table.apply(ev);
            events.push_back(ev);
        });
    }
};

#define SKIP_UNLESS_NETNS(ran)                                                                     \
    if (!(ran)) GTEST_SKIP() << "needs root (network namespaces, iptables, conntrack(8))"

TEST(ConntrackFeed, DnatConnectionsEventsDumpAndTable) {
    bool usable = false;
    const bool ran = test::in_fresh_netns([&] {
        if (!(usable = setup_dnat())) return;
        const bool stamped = sh("sysctl -qw net.netfilter.nf_conntrack_timestamp=1");
        udp_from(41000, kPublic); // before the source: known through the dump only
        ConntrackConfig cfg;
        cfg.resync_interval_ns = 300 * kNanosPerMilli;
        ConntrackFeed feed(std::make_unique<ConntrackSource>(cfg), cfg);
        Collected c;
        ASSERT_TRUE(wait_for([&] { return feed.stats().dumps == 1; }));
        c.drain(feed);
        // The host's OUTPUT/INPUT rules see the flow after DNAT: the other view is the
        // destination the client used.
        EXPECT_EQ(c.table.lookup(udp_record(41000, kInside)),
                  (NatTranslation{lo(41000), lo(kPublic), false}));
        ASSERT_FALSE(c.events.empty());
        EXPECT_TRUE(c.events[1].dumped);

        udp_from(41001, kPublic);
        udp_from(41002, kNoNat);
        ASSERT_TRUE(wait_for([&] { return feed.stats().events_new == 2; }));
        c.drain(feed);
        EXPECT_EQ(feed.stats().not_nated, 1u);
        EXPECT_EQ(c.table.lookup(udp_record(41001, kInside)),
                  (NatTranslation{lo(41001), lo(kPublic), false}));
        // The reply, as the server sends it: it reaches the client from the public port.
        EXPECT_EQ(c.table.lookup(udp_record(kInside, 41001)),
                  (NatTranslation{lo(kPublic), lo(41001), true}));
        EXPECT_FALSE(c.table.lookup(udp_record(41002, kNoNat)));
        const NatEvent& created = c.events.back();
        EXPECT_EQ(created.kind, NatEventKind::create);
        EXPECT_FALSE(created.dumped);
        EXPECT_EQ(created.orig, (NatTuple{lo(41001), lo(kPublic)}));
        EXPECT_EQ(created.post_nat_dst(), lo(kInside));
        EXPECT_EQ(created.nat_event_code(), kNatEventCreate);

        // With conntrack timestamps on (for connections made after), a DESTROY carries the
        // kernel's stop time (wall clock), which the source places on the flow clock: between
        // the clock readings around the deletion.
        const Nanos before = steady_time();
        ASSERT_TRUE(sh("conntrack -D -p udp"));
        const Nanos after = steady_time();
        // The two made while the source listened send DESTROY; the one from before does only
        // if nf_conntrack_events is 1, and is otherwise ended by the resync dump.
        ASSERT_TRUE(wait_for([&] {
            c.drain(feed);
            return feed.stats().events_destroy >= 2 && c.table.stats().live == 0;
        })) << feed.stats().events_destroy
            << " destroys, " << c.table.stats().live << " live";
        const ConntrackStats st = feed.stats();
        if (st.events_destroy == 2) {
            EXPECT_GE(st.dumps, 2u);
            EXPECT_EQ(c.table.stats().swept, 1u);
        } else {
            EXPECT_EQ(st.events_destroy, 3u);
        }
        const NatEvent* gone = nullptr;
        for (const NatEvent& ev : c.events)
            if (ev.kind == NatEventKind::destroy && ev.orig.src == lo(41001)) gone = &ev;
        ASSERT_NE(gone, nullptr);
        EXPECT_EQ(gone->nat_event_code(), kNatEventDelete);
        EXPECT_EQ(gone->reply, (NatTuple{lo(kInside), lo(41001)}));
        if (stamped) {
            EXPECT_GE(gone->time, before - kNanosPerMilli); // the clocks are read apart
            EXPECT_LE(gone->time, after);
        }
        // Destroyed, still found in the grace period, gone after it.
        c.table.expire(gone->time + c.table.config().grace - 1);
        EXPECT_TRUE(c.table.lookup(udp_record(41001, kInside)));
        c.table.expire(steady_time() + c.table.config().grace + kNanosPerSecond);
        EXPECT_FALSE(c.table.lookup(udp_record(41001, kInside)));
        EXPECT_FALSE(c.table.lookup(udp_record(41000, kInside)));
        EXPECT_EQ(feed.stats().lost_events, 0u);
        EXPECT_EQ(feed.stats().errors, 0u);
    });
    SKIP_UNLESS_NETNS(ran && usable);
}

void udp6_from(std::uint16_t sport, std::uint16_t dport) {
    const UniqueFd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    sa.sin6_port = htons(sport);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0) << sport;
    sa.sin6_port = htons(dport);
    ASSERT_EQ(::sendto(fd.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 1);
}

TEST(ConntrackFeed, Ipv6DnatFromDumpAndEvents) {
    bool usable = false;
    const bool ran = test::in_fresh_netns([&] {
        test::set_loopback(true);
        if (!(usable = sh("ip6tables -t nat -A OUTPUT -p udp -d ::1 --dport 5000 -j DNAT "
                          "--to-destination [::1]:6000")))
            return;
        udp6_from(42000, kPublic); // before: from the dump, which covers both families
        ConntrackConfig cfg;
        ConntrackFeed feed(std::make_unique<ConntrackSource>(cfg), cfg);
        Collected c;
        ASSERT_TRUE(wait_for([&] { return feed.stats().dumps == 1; }));
        udp6_from(42001, kPublic);
        ASSERT_TRUE(wait_for([&] { return feed.stats().events_new == 1; }));
        c.drain(feed);
        const NatEndpoint any6 =
            NatEndpoint{Ipv6Addr{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 0};
        for (const std::uint16_t port : {std::uint16_t{42000}, std::uint16_t{42001}}) {
            FlowRecord r;
            r.family = Family::ipv6;
            r.key.protocol = IPPROTO_UDP;
            r.src6 = r.dst6 = any6.addr;
            r.key.src_port = port;
            r.key.dst_port = kInside;
            NatEndpoint client = any6, pub = any6;
            client.port = port;
            pub.port = kPublic;
            EXPECT_EQ(c.table.lookup(r), (NatTranslation{client, pub, false})) << port;
        }
        EXPECT_EQ(c.events.back().family, Family::ipv6);
    });
    SKIP_UNLESS_NETNS(ran && usable);
}

// A consumer that falls behind: the thread waits for room instead of dropping, so every event
// arrives, in order, once the consumer drains again.
TEST(ConntrackFeed, FullQueueWaitsForTheConsumer) {
    bool usable = false;
    const bool ran = test::in_fresh_netns([&] {
        if (!(usable = setup_dnat())) return;
        ConntrackConfig cfg;
        cfg.queue = 8;
        ConntrackFeed feed(std::make_unique<ConntrackSource>(cfg), cfg);
        ASSERT_TRUE(wait_for([&] { return feed.stats().dumps == 1; }));
        constexpr int kConnections = 100;
        for (int i = 0; i < kConnections; ++i)
            udp_from(static_cast<std::uint16_t>(43000 + i), kPublic);
        ASSERT_TRUE(wait_for([&] { return feed.stats().queue_waits > 0; }));
        Collected c;
        ASSERT_TRUE(wait_for([&] {
            c.drain(feed);
            return c.table.stats().live == kConnections;
        })) << c.table.stats().live;
        std::uint16_t next = 43000;
        for (const NatEvent& ev : c.events) {
            if (ev.kind == NatEventKind::create) {
                EXPECT_EQ(ev.orig.src.port, next++);
            }
        }
        EXPECT_EQ(next, 43000 + kConnections);
        EXPECT_EQ(feed.stats().lost_events, 0u);
    });
    SKIP_UNLESS_NETNS(ran && usable);
}

// `n` connections at `per_second`, then all destroyed at once by conntrack -D; the consumer
// drains every 10 ms. Returns the feed's counters and the thread's CPU while it ran.
struct Burst {
    ConntrackStats stats;
    NatTableStats table;
    double cpu_seconds = 0;
    double wall_seconds = 0;
    double drain_seconds = 0; // the consumer's side: draining and applying to the table
    std::uint64_t drained = 0;
};

Burst burst(const ConntrackConfig& cfg, int n, int per_second) {
    Burst b;
    ConntrackFeed feed(std::make_unique<ConntrackSource>(cfg), cfg);
    Collected c;
    const auto drain = [&] {
        const auto d0 = std::chrono::steady_clock::now();
        c.drain(feed);
        b.drain_seconds +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - d0).count();
        b.drained += c.events.size();
        c.events.clear();
    };
    const std::int64_t cpu0 = feed.thread_cpu_ns();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        udp_from(static_cast<std::uint16_t>(20000 + i), kPublic);
        if (i % 50 == 49) {
            drain();
            std::this_thread::sleep_until(
                t0 + std::chrono::microseconds(std::int64_t{1'000'000} * (i + 1) / per_second));
        }
    }
    EXPECT_TRUE(sh("conntrack -D -p udp"));
    const auto settled = [&] {
        const auto s = feed.stats();
        drain();
        return s.events_new + s.events_destroy + s.lost_events >= 2u * n;
    };
    EXPECT_TRUE(wait_for(settled, 20000));
    // Whatever re-dump the losses asked for: wait until it is done too.
    std::this_thread::sleep_for(
        std::chrono::milliseconds(cfg.redump_interval_ns / 1'000'000 + 300));
    drain();
    b.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    b.cpu_seconds = static_cast<double>(feed.thread_cpu_ns() - cpu0) / 1e9;
    b.stats = feed.stats();
    b.table = c.table.stats();
    return b;
}

// The test: every connection's two events are received or counted as lost.
TEST(ConntrackFeed, BurstEventsPlusLossesEqualConnections) {
    bool usable = false;
    const bool ran = test::in_fresh_netns([&] {
        if (!(usable = setup_dnat())) return;
        constexpr int kConnections = 10'000;
        ConntrackConfig cfg;
        cfg.redump_interval_ns = 200 * kNanosPerMilli;
        const Burst b = burst(cfg, kConnections, 5000);
        EXPECT_EQ(b.stats.events_new + b.stats.events_destroy + b.stats.lost_events,
                  2u * kConnections);
        EXPECT_EQ(b.stats.not_nated, 0u);
        EXPECT_EQ(b.table.live, 0u);
        std::cout << "[ figures  ] " << kConnections << " connections at 5000/s: events "
                  << b.stats.events_new + b.stats.events_destroy << ", lost " << b.stats.lost_events
                  << ", conntrack thread CPU " << b.cpu_seconds << " s in " << b.wall_seconds
                  << " s (" << 100 * b.cpu_seconds / b.wall_seconds << "% of one core); consumer "
                  << 1e9 * b.drain_seconds / static_cast<double>(b.drained)
                  << " ns per event drained and applied\n";
    });
    SKIP_UNLESS_NETNS(ran && usable);
}

// A socket far too small for the burst of destroys: the kernel drops events, the drops are
// counted exactly, and the re-dump after them ends whatever the table still held live.
TEST(ConntrackFeed, LossesAreCountedExactlyAndRedumpResyncs) {
    bool usable = false;
    const bool ran = test::in_fresh_netns([&] {
        if (!(usable = setup_dnat())) return;
        constexpr int kConnections = 4000;
        ConntrackConfig cfg;
        cfg.rcvbuf = 4096; // the kernel doubles it: a few events
        cfg.redump_interval_ns = 100 * kNanosPerMilli;
        const Burst b = burst(cfg, kConnections, 20000);
        EXPECT_GT(b.stats.enobufs, 0u);
        EXPECT_GT(b.stats.lost_events, 0u);
        EXPECT_EQ(b.stats.events_new + b.stats.events_destroy + b.stats.lost_events,
                  2u * kConnections);
        EXPECT_GE(b.stats.dumps, 2u);
        EXPECT_EQ(b.table.live, 0u) << "a connection whose destroy was lost is still live";
        std::cout << "[ figures  ] tiny socket: events "
                  << b.stats.events_new + b.stats.events_destroy << ", lost " << b.stats.lost_events
                  << ", overruns " << b.stats.enobufs << ", dumps " << b.stats.dumps << ", swept "
                  << b.table.swept << "\n";
    });
    SKIP_UNLESS_NETNS(ran && usable);
}

} // namespace
} // namespace nflowd
