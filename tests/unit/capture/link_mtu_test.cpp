// Interface MTUs from rtnetlink (issue 11's `oversize`): IFLA_MTU parsed and validated, the
// flat table LinkState builds from dumps and updates, apart from the names' generations; then
// LinkNames against the kernel in a fresh namespace, through the readers' MtuFeed.
#include "nflowd/link_names.hpp"

#include "../export/fresh_netns.hpp"
#include "link_message_builder.hpp"

#include <gtest/gtest.h>
#include <net/if.h>
#include <poll.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace nflowd {
namespace {

using test::Datagram;
using test::LinkMsg;

constexpr std::uint32_t kSeq = 9;
constexpr std::uint32_t kPort = 77;

LinkMsg link(int ifindex, std::string name, std::uint32_t mtu, bool dump = false) {
    LinkMsg m;
    m.ifindex = ifindex;
    m.name = std::move(name);
    m.mtu = mtu;
    if (dump) {
        m.seq = kSeq;
        m.pid = kPort;
        m.flags = NLM_F_MULTI;
    }
    return m;
}

using Mtus = std::vector<std::uint32_t>;

// A state after a first dump of lo (65536), eth0 (9000) and a WireGuard tunnel at 5 (1420).
struct Dumped {
    LinkState state;
    LinkStats stats;
    Dumped() {
        state.begin_dump(kSeq, kPort);
        Datagram d;
        d.link(link(1, "lo", 65536, true));
        d.link(link(2, "eth0", 9000, true));
        d.link(link(5, "wg0", 1420, true));
        d.done(kSeq, kPort);
        feed(d);
    }
    void feed(const Datagram& d) { state.consume(d.bytes(), stats); }
    Mtus mtus() { return state.mtu_snapshot()->by_ifindex; }
};

TEST(LinkMtu, ParsedFromNewlink) {
    Datagram d;
    const nlmsghdr* nlh = d.link(link(3, "eth1", 9000));
    detail::LinkMessage m;
    ASSERT_TRUE(detail::parse_link_message(nlh, m));
    EXPECT_EQ(m.name, "eth1");
    EXPECT_EQ(m.mtu, 9000U);
    Datagram none;
    ASSERT_TRUE(detail::parse_link_message(none.link(link(3, "eth1", 0)), m));
    EXPECT_EQ(m.mtu, 0U); // absent
}

TEST(LinkMtu, NotAU32IsMalformed) {
    LinkState state;
    LinkStats stats;
    for (const std::string_view payload :
         {std::string_view("\x28\x23", 2), std::string_view("\x28\x23\0\0\0\0\0\0", 8)}) {
        Datagram d;
        nlmsghdr* nlh = d.link(link(3, "eth1", 0));
        d.put_attr(nlh, IFLA_MTU, payload);
        detail::LinkMessage m;
        EXPECT_FALSE(detail::parse_link_message(nlh, m));
        state.consume(d.bytes(), stats);
    }
    EXPECT_EQ(stats.malformed, 2U);
    EXPECT_TRUE(state.mtu_snapshot()->by_ifindex.empty());
}

TEST(LinkMtu, DumpBuildsAFlatTable) {
    Dumped s;
    EXPECT_EQ(s.mtus(), (Mtus{1500, 65536, 9000, 1500, 1500, 1420}));
    EXPECT_EQ(s.state.mtu_snapshot(), s.state.mtu_snapshot()); // nothing new: the same
}

TEST(LinkMtu, AnMtuChangeIsNoNewGeneration) {
    Dumped s;
    const auto names = s.state.snapshot(s.stats);
    const auto before = s.state.mtu_snapshot();
    Datagram d;
    d.link(link(2, "eth0", 1500)); // ip link set eth0 mtu 1500: name and alias unchanged
    s.feed(d);
    EXPECT_EQ(s.state.snapshot(s.stats), names); // the exporter re-sends nothing
    EXPECT_EQ(s.stats.changes, 1U);
    EXPECT_EQ(s.mtus(), (Mtus{1500, 65536, 1500, 1500, 1500, 1420}));
    EXPECT_EQ(before->by_ifindex[2], 9000U); // a reader's snapshot stays as it was
    // The same MTU again (a carrier change): the same table.
    const auto now = s.state.mtu_snapshot();
    s.feed(d);
    EXPECT_EQ(s.state.mtu_snapshot(), now);
}

TEST(LinkMtu, RenameKeepsTheMtuTable) {
    Dumped s;
    const auto before = s.state.mtu_snapshot();
    const auto gen = s.state.snapshot(s.stats)->generation;
    Datagram d;
    d.link(link(5, "wg1", 1420));
    s.feed(d);
    EXPECT_EQ(s.state.snapshot(s.stats)->generation, gen + 1);
    EXPECT_EQ(s.state.mtu_snapshot(), before);
}

TEST(LinkMtu, RemovedAndUnknownLinksTake1500) {
    Dumped s;
    Datagram d;
    LinkMsg gone;
    gone.type = RTM_DELLINK;
    gone.ifindex = 5;
    d.link(gone);
    d.link(link(4, "eth2", 0)); // no IFLA_MTU: nothing known
    d.link(link(2, "eth0", 0)); // none in an update: the known one stays
    d.link(link(static_cast<int>(kMtuIndexes), "far", 9000)); // beyond the table
    s.feed(d);
    EXPECT_EQ(s.mtus(), (Mtus{1500, 65536, 9000}));
    EXPECT_EQ(s.state.snapshot(s.stats)->links.size(), 4U); // lo eth0 eth2 far, wg0 gone
}

TEST(LinkMtu, ADumpForgetsWhatUpdatesMissed) {
    // After an overrun, the redump replaces the table: the tunnel removed meanwhile is gone,
    // the MTU changed meanwhile is the new one.
    Dumped s;
    s.state.begin_dump(kSeq + 1, kPort);
    Datagram d;
    LinkMsg lo = link(1, "lo", 65536, true), eth = link(2, "eth0", 1500, true);
    lo.seq = eth.seq = kSeq + 1;
    d.link(lo);
    d.link(eth);
    d.done(kSeq + 1, kPort);
    s.feed(d);
    EXPECT_EQ(s.stats.dumps, 2U);
    EXPECT_EQ(s.mtus(), (Mtus{1500, 65536, 1500}));
}

// ---- the kernel ----

bool sh(const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

TEST(LinkMtuKernel, FeedFollowsMtuChangesWithoutNewGenerations) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
    const bool ran = test::in_fresh_netns([] {
        LinkNames names;
        const auto feed = names.mtus();
        std::uint64_t seen = 0;
        auto first = feed->since(seen);
        ASSERT_NE(first, nullptr) << "the first table is published with the first dump";
        EXPECT_EQ(mtu_of(first->by_ifindex, 1), 65536U); // lo
        EXPECT_EQ(feed->since(seen), nullptr);           // nothing new
        ASSERT_TRUE(sh("ip link add va0 mtu 9000 type veth peer name vb0 mtu 1420"));
        const unsigned va = ::if_nametoindex("va0"), vb = ::if_nametoindex("vb0");
        ASSERT_NE(va, 0U);
        // Waits (at most 5 s) until the feed's table says `want` for `ifindex`.
        const auto wait = [&](unsigned ifindex, std::uint32_t want) {
            for (int i = 0; i < 100; ++i) {
                if (auto t = feed->since(seen)) first = t;
                if (mtu_of(first->by_ifindex, ifindex) == want) return true;
                pollfd pfd{names.fd(), POLLIN, 0};
                ::poll(&pfd, 1, 50);
                names.receive();
            }
            return false;
        };
        ASSERT_TRUE(wait(va, 9000));
        ASSERT_TRUE(wait(vb, 1420));
        const auto gen = names.table()->generation;
        ASSERT_TRUE(sh("ip link set va0 mtu 4000"));
        ASSERT_TRUE(wait(va, 4000));
        EXPECT_EQ(names.table()->generation, gen); // names unchanged: no options records
        ASSERT_TRUE(sh("ip link del va0"));
        ASSERT_TRUE(wait(va, kDefaultMtu));
        EXPECT_TRUE(wait(vb, kDefaultMtu)); // its peer went with it
    });
    if (!ran) GTEST_SKIP() << "no network namespace";
}

} // namespace
} // namespace nflowd
