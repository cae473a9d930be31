// NatTable: translations for both directions and every hook's view, IPv4 and IPv6, grace
// after destroy, the bound, dumps that end lost connections, and the index under churn.
#include "nflowd/nat_table.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <map>
#include <random>
#include <string>

namespace nflowd {
namespace {

constexpr Nanos kSec = kNanosPerSecond;

std::uint32_t ip(const char* s) {
    in_addr a{};
    EXPECT_EQ(::inet_pton(AF_INET, s, &a), 1) << s;
    return ntohl(a.s_addr);
}
Ipv6Addr ip6(const char* s) {
    Ipv6Addr a{};
    EXPECT_EQ(::inet_pton(AF_INET6, s, a.data()), 1) << s;
    return a;
}
NatEndpoint ep(const char* s, std::uint16_t port) {
    return NatEndpoint::ipv4(ip(s), port);
}
NatEndpoint ep6(const char* s, std::uint16_t port) {
    return NatEndpoint{ip6(s), port};
}

NatEvent event(NatEventKind kind, NatTuple orig, NatTuple reply, Nanos t = 0,
               std::uint8_t proto = IPPROTO_TCP, Family f = Family::ipv4) {
    NatEvent ev;
    ev.kind = kind;
    ev.family = f;
    ev.protocol = proto;
    ev.time = t;
    ev.orig = orig;
    ev.reply = reply;
    return ev;
}
NatEvent create(NatTuple orig, NatTuple reply, Nanos t = 0, std::uint8_t proto = IPPROTO_TCP) {
    return event(NatEventKind::create, orig, reply, t, proto);
}
NatEvent destroy(NatTuple orig, NatTuple reply, Nanos t, std::uint8_t proto = IPPROTO_TCP) {
    return event(NatEventKind::destroy, orig, reply, t, proto);
}

FlowRecord rec(const char* src, std::uint16_t sport, const char* dst, std::uint16_t dport,
               std::uint8_t proto = IPPROTO_TCP) {
    FlowRecord r;
    r.key.src_addr = ip(src);
    r.key.dst_addr = ip(dst);
    r.key.src_port = sport;
    r.key.dst_port = dport;
    r.key.protocol = proto;
    return r;
}

// Masquerade: client 10.0.0.2:40000 -> server 198.51.100.7:80 leaves as 203.0.113.1:61000.
const NatTuple kSnatOrig{ep("10.0.0.2", 40000), ep("198.51.100.7", 80)};
const NatTuple kSnatReply{ep("198.51.100.7", 80), ep("203.0.113.1", 61000)};
// Port forward: 198.51.100.9:5555 -> 203.0.113.1:8080 goes to the inside server 10.0.0.5:80.
const NatTuple kDnatOrig{ep("198.51.100.9", 5555), ep("203.0.113.1", 8080)};
const NatTuple kDnatReply{ep("10.0.0.5", 80), ep("198.51.100.9", 5555)};

TEST(NatTable, MasqueradeBothDirections) {
    NatTable t;
    t.apply(create(kSnatOrig, kSnatReply));
    // FORWARD sees the client's flow before SNAT: the outside source is the router's.
    EXPECT_EQ(t.lookup(rec("10.0.0.2", 40000, "198.51.100.7", 80)),
              (NatTranslation{ep("203.0.113.1", 61000), ep("198.51.100.7", 80), false}));
    // The reply after de-NAT: its outside destination is the router's address and port.
    EXPECT_EQ(t.lookup(rec("198.51.100.7", 80, "10.0.0.2", 40000)),
              (NatTranslation{ep("198.51.100.7", 80), ep("203.0.113.1", 61000), true}));
    // After SNAT (a late POSTROUTING rule) the other view is the inside one.
    EXPECT_EQ(t.lookup(rec("203.0.113.1", 61000, "198.51.100.7", 80)),
              (NatTranslation{ep("10.0.0.2", 40000), ep("198.51.100.7", 80), false}));
    // Not this connection: another port, another protocol.
    EXPECT_FALSE(t.lookup(rec("10.0.0.2", 40001, "198.51.100.7", 80)));
    EXPECT_FALSE(t.lookup(rec("10.0.0.2", 40000, "198.51.100.7", 80, IPPROTO_UDP)));
    EXPECT_EQ(t.stats().found, 3u);
    EXPECT_EQ(t.stats().not_found, 2u);
    EXPECT_EQ(t.stats().entries, 1u);
    EXPECT_EQ(t.stats().live, 1u);
}

TEST(NatTable, PortForwardEveryView) {
    NatTable t;
    t.apply(create(kDnatOrig, kDnatReply));
    // FORWARD: after DNAT. The destination the client used is the translation.
    EXPECT_EQ(t.lookup(rec("198.51.100.9", 5555, "10.0.0.5", 80)),
              (NatTranslation{ep("198.51.100.9", 5555), ep("203.0.113.1", 8080), false}));
    // raw PREROUTING: before any NAT: conntrack's post-NAT tuple (reply.dst, reply.src).
    EXPECT_EQ(t.lookup(rec("198.51.100.9", 5555, "203.0.113.1", 8080)),
              (NatTranslation{ep("198.51.100.9", 5555), ep("10.0.0.5", 80), false}));
    // The server's reply in FORWARD: it leaves from the public address and port.
    EXPECT_EQ(t.lookup(rec("10.0.0.5", 80, "198.51.100.9", 5555)),
              (NatTranslation{ep("203.0.113.1", 8080), ep("198.51.100.9", 5555), true}));
    // ... and seen after de-NAT, its inside source.
    EXPECT_EQ(t.lookup(rec("203.0.113.1", 8080, "198.51.100.9", 5555)),
              (NatTranslation{ep("10.0.0.5", 80), ep("198.51.100.9", 5555), true}));
}

TEST(NatTable, SourceAndDestinationNatTogether) {
    // A hairpin: 10.0.0.2 -> public 203.0.113.1:8080, to 10.0.0.5:80, source masqueraded.
    const NatTuple orig{ep("10.0.0.2", 40000), ep("203.0.113.1", 8080)};
    const NatTuple reply{ep("10.0.0.5", 80), ep("10.0.0.1", 62000)};
    NatTable t;
    t.apply(create(orig, reply));
    EXPECT_EQ(t.lookup(rec("10.0.0.2", 40000, "10.0.0.5", 80)),
              (NatTranslation{ep("10.0.0.1", 62000), ep("203.0.113.1", 8080), false}));
    EXPECT_EQ(t.lookup(rec("10.0.0.5", 80, "10.0.0.2", 40000)),
              (NatTranslation{ep("203.0.113.1", 8080), ep("10.0.0.1", 62000), true}));
}

TEST(NatTable, Ipv6) {
    const NatTuple orig{ep6("fd00::2", 40000), ep6("2001:db8::7", 443)};
    const NatTuple reply{ep6("2001:db8::7", 443), ep6("2001:db8:1::1", 61000)};
    NatTable t;
    auto ev = event(NatEventKind::create, orig, reply, 0, IPPROTO_TCP, Family::ipv6);
    t.apply(ev);
    FlowRecord r;
    r.family = Family::ipv6;
    r.key.protocol = IPPROTO_TCP;
    r.src6 = ip6("fd00::2");
    r.dst6 = ip6("2001:db8::7");
    r.key.src_port = 40000;
    r.key.dst_port = 443;
    EXPECT_EQ(t.lookup(r),
              (NatTranslation{ep6("2001:db8:1::1", 61000), ep6("2001:db8::7", 443), false}));
    FlowRecord back = r;
    std::swap(back.src6, back.dst6);
    std::swap(back.key.src_port, back.key.dst_port);
    EXPECT_EQ(t.lookup(back),
              (NatTranslation{ep6("2001:db8::7", 443), ep6("2001:db8:1::1", 61000), true}));
    // The same addresses as an IPv4 flow are another family.
    FlowRecord v4 = r;
    v4.family = Family::ipv4;
    EXPECT_FALSE(t.lookup(v4));
}

TEST(NatTable, NotNatedIgnored) {
    NatTable t;
    t.apply(create(kSnatOrig, kSnatOrig.inverted()));
    t.apply(destroy(kSnatOrig, kSnatOrig.inverted(), 5 * kSec));
    EXPECT_EQ(t.size(), 0u);
    EXPECT_FALSE(t.lookup(rec("10.0.0.2", 40000, "198.51.100.7", 80)));
}

TEST(NatTable, PortlessProtocolsMatchOnAddresses) {
    // ICMP echo: conntrack's ids are not in the flow key; the record's type/code is ignored.
    const NatTuple orig{ep("10.0.0.2", 0), ep("198.51.100.7", 0)};
    const NatTuple reply{ep("198.51.100.7", 0), ep("203.0.113.1", 0)};
    NatTable t;
    t.apply(create(orig, reply, 0, IPPROTO_ICMP));
    const auto got = t.lookup(rec("10.0.0.2", 0, "198.51.100.7", 8 << 8, IPPROTO_ICMP));
    ASSERT_TRUE(got);
    EXPECT_EQ(got->src, ep("203.0.113.1", 0));
}

TEST(NatTable, GraceAfterDestroy) {
    NatTable t(NatTableConfig{100, 30 * kSec});
    t.apply(create(kSnatOrig, kSnatReply, 1 * kSec));
    t.apply(destroy(kSnatOrig, kSnatReply, 100 * kSec));
    EXPECT_EQ(t.stats().live, 0u);
    t.expire(129 * kSec);
    EXPECT_TRUE(t.lookup(rec("10.0.0.2", 40000, "198.51.100.7", 80)));
    t.expire(130 * kSec);
    EXPECT_FALSE(t.lookup(rec("10.0.0.2", 40000, "198.51.100.7", 80)));
    EXPECT_EQ(t.stats().expired, 1u);
    EXPECT_EQ(t.stats().entries, 0u);
    // A second destroy of a connection already gone changes nothing but enters it again,
    // as one whose create was lost: late flows still find it.
    t.apply(destroy(kSnatOrig, kSnatReply, 200 * kSec));
    EXPECT_TRUE(t.lookup(rec("198.51.100.7", 80, "10.0.0.2", 40000)));
    t.expire(230 * kSec);
    EXPECT_EQ(t.size(), 0u);
}

TEST(NatTable, LiveConnectionsNeverExpire) {
    NatTable t(NatTableConfig{100, 1 * kSec});
    t.apply(create(kSnatOrig, kSnatReply, 0));
    t.expire(1'000'000 * kSec);
    EXPECT_TRUE(t.lookup(rec("10.0.0.2", 40000, "198.51.100.7", 80)));
}

NatTuple client(std::uint16_t port) {
    return NatTuple{ep("10.0.0.2", port), ep("198.51.100.7", 80)};
}
NatTuple outside(std::uint16_t port) {
    return NatTuple{ep("198.51.100.7", 80),
                    ep("203.0.113.1", static_cast<std::uint16_t>(port + 1))};
}
bool known(NatTable& t, std::uint16_t port) {
    return t.lookup(rec("10.0.0.2", port, "198.51.100.7", 80)).has_value();
}

TEST(NatTable, BoundEvictsOldestLive) {
    NatTable t(NatTableConfig{3, 30 * kSec});
    for (std::uint16_t p = 1000; p < 1004; ++p) t.apply(create(client(p), outside(p)));
    EXPECT_EQ(t.size(), 3u);
    EXPECT_EQ(t.stats().evicted, 1u);
    EXPECT_FALSE(known(t, 1000));
    EXPECT_TRUE(known(t, 1001));
    EXPECT_TRUE(known(t, 1003));
}

TEST(NatTable, BoundEvictsDestroyedFirst) {
    NatTable t(NatTableConfig{3, 30 * kSec});
    for (std::uint16_t p = 1000; p < 1003; ++p) t.apply(create(client(p), outside(p)));
    t.apply(destroy(client(1001), outside(1001), 1 * kSec));
    t.apply(create(client(1003), outside(1003)));
    EXPECT_TRUE(known(t, 1000));
    EXPECT_FALSE(known(t, 1001));
    EXPECT_TRUE(known(t, 1003));
    t.set_max_entries(1);
    EXPECT_EQ(t.stats().evicted, 3u);
    EXPECT_TRUE(known(t, 1003));
}

TEST(NatTable, DumpEndsConnectionsItNoLongerHolds) {
    NatTable t(NatTableConfig{100, 30 * kSec});
    t.apply(create(client(1), outside(1), 1 * kSec));
    t.apply(create(client(2), outside(2), 1 * kSec));
    t.apply(event(NatEventKind::dump_begin, {}, {}, 50 * kSec));
    auto dumped = create(client(2), outside(2), 50 * kSec);
    dumped.dumped = true;
    t.apply(dumped);
    t.apply(event(NatEventKind::dump_end, {}, {}, 50 * kSec));
    EXPECT_EQ(t.stats().swept, 1u);
    EXPECT_EQ(t.stats().live, 1u);
    EXPECT_TRUE(known(t, 1)); // in its grace period from the dump on
    t.expire(80 * kSec);
    EXPECT_FALSE(known(t, 1));
    EXPECT_TRUE(known(t, 2));
}

TEST(NatTable, ReusedTupleReplacesTheConnection) {
    NatTable t;
    t.apply(create(client(1), outside(1)));
    t.apply(destroy(client(1), outside(1), 1 * kSec));
    t.apply(create(client(1), outside(7)));
    EXPECT_EQ(t.size(), 1u);
    EXPECT_EQ(t.stats().live, 1u);
    EXPECT_EQ(t.lookup(rec("10.0.0.2", 1, "198.51.100.7", 80))->src, ep("203.0.113.1", 8));
    // A destroy for the old reply is about a connection no longer held: kept in grace.
    t.apply(destroy(client(1), outside(7), 2 * kSec));
    EXPECT_EQ(t.stats().live, 0u);
}

// Random creates, destroys and expiries against a plain map: the open-addressing index
// (growth, backward-shift deletion) never loses or invents a connection.
TEST(NatTable, ChurnMatchesModel) {
    NatTable t(NatTableConfig{1'000'000, 10 * kSec});
    std::map<std::uint16_t, Nanos> model; // port -> destroyed at (-1 live)
    std::mt19937 rng(7);
    Nanos now = 0;
    for (int i = 0; i < 60000; ++i) {
        now += kSec / 100;
        const auto p = static_cast<std::uint16_t>(1 + rng() % 5000);
        const auto it = model.find(p);
        if (it == model.end() || it->second >= 0) {
            t.apply(create(client(p), outside(p), now));
            model[p] = -1;
        } else {
            t.apply(destroy(client(p), outside(p), now));
            it->second = now;
        }
        if (i % 97 == 0) {
            t.expire(now);
            std::erase_if(model,
                          [&](auto& kv) { return kv.second >= 0 && now - kv.second >= 10 * kSec; });
        }
    }
    t.expire(now);
    std::erase_if(model, [&](auto& kv) { return kv.second >= 0 && now - kv.second >= 10 * kSec; });
    EXPECT_EQ(t.size(), model.size());
    for (std::uint16_t p = 1; p <= 5000; ++p) ASSERT_EQ(known(t, p), model.count(p) == 1) << p;
}

} // namespace
} // namespace nflowd
