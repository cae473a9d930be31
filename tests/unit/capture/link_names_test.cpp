// LinkState with crafted rtnetlink datagrams: dumps, updates, redumps, bridge-port noise,
// and every way a message can be malformed (truncated, bad attributes, oversized strings).
#include "nflowd/link_names.hpp"

#include "link_message_builder.hpp"

#include <gtest/gtest.h>

#include <string>

namespace nflowd {
namespace {

using test::Datagram;
using test::LinkMsg;

constexpr std::uint32_t kSeq = 7;
constexpr std::uint32_t kPort = 4242;

LinkMsg entry(int ifindex, std::string name, std::string alias = "") {
    LinkMsg m;
    m.ifindex = ifindex;
    m.name = std::move(name);
    m.alias = std::move(alias);
    m.seq = kSeq;
    m.pid = kPort;
    m.flags = NLM_F_MULTI;
    return m;
}
LinkMsg update(int ifindex, std::string name, std::string alias = "") {
    LinkMsg m = entry(ifindex, std::move(name), std::move(alias));
    m.seq = m.pid = 0;
    m.flags = 0;
    return m;
}
LinkMsg removal(int ifindex) {
    LinkMsg m;
    m.type = RTM_DELLINK;
    m.ifindex = ifindex;
    m.name = "gone";
    return m;
}

// A state that has taken a first dump of lo (1), eth0 (2, aliased) and ppp5 (3).
struct Dumped {
    LinkState state{SnmpRules::parse("eth*=100,ppp:200")};
    LinkStats stats;
    Dumped() {
        state.begin_dump(kSeq, kPort);
        Datagram d;
        d.link(entry(1, "lo"));
        d.link(entry(2, "eth0", "uplink to ISP"));
        d.link(entry(3, "ppp5"));
        d.done(kSeq, kPort);
        state.consume(d.bytes(), stats);
    }
    void feed(const Datagram& d) { state.consume(d.bytes(), stats); }
    std::shared_ptr<const LinkTable> table() { return state.snapshot(stats); }
};

TEST(LinkState, DumpBuildsTheFirstTable) {
    Dumped s;
    EXPECT_FALSE(s.state.dumping());
    EXPECT_FALSE(s.state.needs_dump());
    const auto t = s.table();
    EXPECT_EQ(t->generation, 1U);
    ASSERT_EQ(t->links.size(), 3U);
    EXPECT_EQ(t->links.at(1), (LinkInfo{"lo", "", 1}));
    EXPECT_EQ(t->links.at(2), (LinkInfo{"eth0", "uplink to ISP", 100}));
    EXPECT_EQ(t->links.at(3), (LinkInfo{"ppp5", "", 205}));
    EXPECT_EQ(t->exported_index(3), 205U);
    EXPECT_EQ(t->exported_index(99), 99U);
    EXPECT_EQ(s.stats.dumps, 1U);
    EXPECT_EQ(s.stats.events, 0U);
    EXPECT_EQ(s.stats.changes, 1U);
    EXPECT_EQ(s.stats.known, 3U);
    EXPECT_EQ(s.stats.malformed, 0U);
    EXPECT_EQ(s.table(), t); // nothing new: the same snapshot
}

TEST(LinkState, UpdatesRenameAliasAddAndRemove) {
    Dumped s;
    const auto first = s.table();
    Datagram d;
    d.link(update(3, "eth7"));          // renamed: now matches eth*=100
    d.link(update(2, "eth0"));          // alias removed (the kernel then sends none)
    d.link(update(9, "wg0", "tunnel")); // new
    d.link(removal(1));
    s.feed(d);
    const auto t = s.table();
    EXPECT_EQ(t->generation, 2U);
    ASSERT_EQ(t->links.size(), 3U);
    EXPECT_EQ(t->links.at(3), (LinkInfo{"eth7", "", 107}));
    EXPECT_EQ(t->links.at(2), (LinkInfo{"eth0", "", 100}));
    EXPECT_EQ(t->links.at(9), (LinkInfo{"wg0", "tunnel", 9}));
    EXPECT_EQ(t->find(1), nullptr);
    EXPECT_EQ(s.stats.events, 4U);
    EXPECT_EQ(s.stats.changes, 2U);
    // The old snapshot is immutable: a reader holding it sees the old names.
    EXPECT_EQ(first->links.at(3).name, "ppp5");
    EXPECT_EQ(first->links.size(), 3U);
}

TEST(LinkState, UnchangedNamesMakeNoGeneration) {
    Dumped s;
    const auto t = s.table();
    Datagram d;
    d.link(update(2, "eth0", "uplink to ISP")); // carrier or MTU change: same name and alias
    d.link(removal(55));                        // a link never known
    s.feed(d);
    EXPECT_EQ(s.table(), t);
    // Renamed and renamed back before the snapshot: no generation either.
    Datagram back;
    back.link(update(3, "x"));
    back.link(update(3, "ppp5"));
    s.feed(back);
    EXPECT_EQ(s.table()->generation, 1U);
    EXPECT_EQ(s.stats.events, 4U);
    EXPECT_EQ(s.stats.changes, 1U);
}

TEST(LinkState, BridgePortNotificationsAreNotLinks) {
    Dumped s;
    Datagram d;
    LinkMsg leave = removal(2); // a port leaving its bridge: AF_BRIDGE DELLINK, link stays
    leave.family = AF_BRIDGE;
    d.link(leave);
    LinkMsg port = update(3, "bridged");
    port.family = AF_BRIDGE;
    d.link(port);
    s.feed(d);
    const auto t = s.table();
    EXPECT_EQ(t->generation, 1U);
    EXPECT_EQ(t->links.at(2).name, "eth0");
    EXPECT_EQ(t->links.at(3).name, "ppp5");
    EXPECT_EQ(s.stats.malformed, 0U);
}

TEST(LinkState, RedumpDropsLinksRemovedWhileUpdatesWereLost) {
    Dumped s;
    s.state.request_dump(); // as after ENOBUFS
    EXPECT_TRUE(s.state.needs_dump());
    s.state.begin_dump(kSeq + 1, kPort);
    EXPECT_FALSE(s.state.needs_dump());
    Datagram d;
    LinkMsg e1 = entry(1, "lo");
    e1.seq = kSeq + 1;
    d.link(e1);
    d.link(update(12, "new0")); // an update during the dump, after lo was dumped
    LinkMsg e2 = entry(2, "eth0", "renamed alias");
    e2.seq = kSeq + 1;
    d.link(e2);
    s.feed(d);
    EXPECT_TRUE(s.state.dumping());
    // Entries apply at once (fresher than what is known); ppp5 stays until the dump ends.
    auto t = s.table();
    EXPECT_EQ(t->links.at(2).alias, "renamed alias");
    EXPECT_NE(t->find(3), nullptr);
    Datagram end;
    end.done(kSeq + 1, kPort);
    s.feed(end);
    t = s.table();
    EXPECT_FALSE(s.state.dumping());
    ASSERT_EQ(t->links.size(), 3U);
    EXPECT_EQ(t->find(3), nullptr); // removed while nobody listened
    EXPECT_EQ(t->links.at(12).name, "new0");
    EXPECT_EQ(s.stats.dumps, 2U);
}

TEST(LinkState, InterruptedOrRefusedDumpIsRedone) {
    Dumped s;
    s.state.begin_dump(kSeq + 1, kPort);
    Datagram d;
    LinkMsg e = entry(1, "lo");
    e.seq = kSeq + 1;
    e.flags |= NLM_F_DUMP_INTR;
    d.link(e);
    d.done(kSeq + 1, kPort);
    s.feed(d);
    EXPECT_FALSE(s.state.dumping());
    EXPECT_TRUE(s.state.needs_dump());
    EXPECT_EQ(s.table()->links.size(), 3U); // nothing dropped on the word of a partial dump
    EXPECT_EQ(s.stats.errors, 1U);
    EXPECT_EQ(s.stats.dumps, 1U);

    s.state.begin_dump(kSeq + 2, kPort);
    Datagram refused;
    refused.error(kSeq + 2, kPort, 0);      // an ACK: ends nothing
    refused.error(kSeq + 1, kPort, -EBUSY); // another request's: not ours
    s.feed(refused);
    EXPECT_TRUE(s.state.dumping());
    Datagram busy;
    busy.error(kSeq + 2, kPort, -EBUSY);
    s.feed(busy);
    EXPECT_FALSE(s.state.dumping());
    EXPECT_TRUE(s.state.needs_dump());
    EXPECT_EQ(s.stats.errors, 2U);

    s.state.begin_dump(kSeq + 3, kPort);
    Datagram failed; // NLMSG_DONE with a negative status
    failed.done(kSeq + 3, kPort, -EINTR);
    s.feed(failed);
    EXPECT_TRUE(s.state.needs_dump());
    EXPECT_EQ(s.stats.errors, 3U);
    EXPECT_EQ(s.table()->links.size(), 3U);

    s.state.begin_dump(kSeq + 4, kPort);
    Datagram intr_done; // the inconsistency flagged on NLMSG_DONE only
    intr_done.done(kSeq + 4, kPort)->nlmsg_flags |= NLM_F_DUMP_INTR;
    s.feed(intr_done);
    EXPECT_TRUE(s.state.needs_dump());
    EXPECT_EQ(s.stats.errors, 4U);
    EXPECT_EQ(s.stats.dumps, 1U);
    EXPECT_EQ(s.table()->links.size(), 3U); // an empty dump did not empty the table
}

TEST(LinkState, RulesChangeRemapsIndexes) {
    Dumped s;
    s.state.set_rules(SnmpRules::parse("eth*=100,ppp:200")); // the same: nothing new
    EXPECT_EQ(s.table()->generation, 1U);
    s.state.set_rules(SnmpRules::parse("lo=5"));
    const auto t = s.table();
    EXPECT_EQ(t->generation, 2U);
    EXPECT_EQ(t->links.at(1).index, 5U);
    EXPECT_EQ(t->links.at(2).index, 2U);
    EXPECT_EQ(t->links.at(3).index, 3U);
}

} // namespace
} // namespace nflowd
