// LinkNames against the kernel, in a fresh network namespace: the first dump, then veth and
// ifb links added, renamed, aliased, enslaved to a bridge and freed, deleted; an overrun.
#include "nflowd/link_names.hpp"

#include "../export/fresh_netns.hpp"

#include <gtest/gtest.h>
#include <net/if.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>

namespace nflowd {
namespace {

// Reads updates until `pred` holds for the published table: at most 5 s.
bool wait_for(LinkNames& names, const std::function<bool(const LinkTable&)>& pred) {
    for (int i = 0; i < 100; ++i) {
        if (pred(*names.table())) return true;
        pollfd pfd{names.fd(), POLLIN, 0};
        ::poll(&pfd, 1, 50);
        names.receive();
    }
    return pred(*names.table());
}

bool sh(const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

const LinkInfo* by_name(const LinkTable& t, const std::string& name) {
    for (const auto& [ifindex, link] : t.links)
        if (link.name == name) return &link;
    return nullptr;
}

// Runs `body` in a fresh namespace; false when namespaces are unavailable (not root).
bool in_netns(const std::function<void()>& body) {
    if (::geteuid() != 0) return false;
    return test::in_fresh_netns(body);
}

TEST(LinkNamesKernel, FollowsEveryChange) {
    const bool ran = in_netns([] {
        LinkNames names({SnmpRules::parse("va*=100")});
        auto t = names.table();
        ASSERT_EQ(t->links.size(), 1U) << "a fresh namespace has lo only";
        EXPECT_EQ(t->links.at(1).name, "lo");
        const std::uint64_t gen0 = t->generation;

        ASSERT_TRUE(sh("ip link add va0 type veth peer name vb0"));
        ASSERT_TRUE(wait_for(names, [](const LinkTable& tb) {
            return by_name(tb, "va0") != nullptr && by_name(tb, "vb0") != nullptr;
        }));
        t = names.table();
        EXPECT_GT(t->generation, gen0);
        const unsigned va = ::if_nametoindex("va0"), vb = ::if_nametoindex("vb0");
        ASSERT_NE(va, 0U);
        EXPECT_EQ(t->links.at(va).index, 100U); // va*=100
        EXPECT_EQ(t->links.at(vb).index, vb);   // no rule: the kernel's

        ASSERT_TRUE(sh("ip link set va0 name va7"));
        ASSERT_TRUE(wait_for(names, [&](const LinkTable& tb) {
            return tb.find(va) != nullptr && tb.find(va)->name == "va7";
        }));
        EXPECT_EQ(names.table()->exported_index(va), 107U);

        // The kernel announces an alias change only on a link that is up.
        ASSERT_TRUE(sh("ip link set dev va7 up && ip link set dev va7 alias 'uplink to ISP'"));
        ASSERT_TRUE(wait_for(names, [&](const LinkTable& tb) {
            return tb.find(va) != nullptr && tb.find(va)->alias == "uplink to ISP";
        }));
        ASSERT_TRUE(sh("ip link set dev va7 alias ''"));
        ASSERT_TRUE(wait_for(names, [&](const LinkTable& tb) {
            return tb.find(va) != nullptr && tb.find(va)->alias.empty();
        }));

        // A port leaving its bridge sends an AF_BRIDGE DELLINK: the link stays. The ifb
        // added after it marks the point where those updates have all been read.
        ASSERT_TRUE(sh("ip link add br0 type bridge && ip link set vb0 master br0 && "
                       "ip link set vb0 nomaster && ip link add if9 type ifb"));
        // Read one datagram at a time: the AF_UNSPEC NEWLINK that follows the port's removal
        // must not be what puts vb0 back.
        int vb_missing = 0;
        for (int i = 0; i < 500 && by_name(*names.table(), "if9") == nullptr; ++i) {
            pollfd pfd{names.fd(), POLLIN, 0};
            ::poll(&pfd, 1, 10);
            names.receive(1);
            if (names.table()->find(vb) == nullptr) ++vb_missing;
        }
        EXPECT_NE(by_name(*names.table(), "if9"), nullptr);
        EXPECT_EQ(vb_missing, 0);

        ASSERT_TRUE(sh("ip link del va7")); // takes its peer vb0 along
        ASSERT_TRUE(wait_for(names, [&](const LinkTable& tb) {
            return tb.find(va) == nullptr && tb.find(vb) == nullptr;
        }));
        t = names.table();
        EXPECT_NE(by_name(*t, "br0"), nullptr);
        EXPECT_NE(by_name(*t, "if9"), nullptr);
        EXPECT_EQ(t->links.size(), 3U);
        const LinkStats s = names.stats();
        EXPECT_EQ(s.dumps, 1U);
        EXPECT_GE(s.events, 6U);
        EXPECT_GE(s.changes, 6U);
        EXPECT_EQ(s.known, 3U);
        EXPECT_EQ(s.malformed, 0U);
        EXPECT_EQ(s.enobufs, 0U);
        EXPECT_EQ(s.errors, 0U);
    });
    if (!ran) GTEST_SKIP() << "needs root for a network namespace";
}

// An alias set on a down link makes no update: the periodic dump brings it.
TEST(LinkNamesKernel, RefreshFindsSilentAliasChanges) {
    const bool ran = in_netns([] {
        ASSERT_TRUE(sh("ip link add if4 type ifb"));
        LinkNamesConfig cfg;
        cfg.refresh = 300 * kNanosPerMilli;
        LinkNames names(cfg);
        const unsigned if4 = ::if_nametoindex("if4");
        ASSERT_NE(names.table()->find(if4), nullptr);
        ASSERT_TRUE(sh("ip link set dev if4 alias 'silent'"));
        ASSERT_TRUE(wait_for(names, [&](const LinkTable& tb) {
            return tb.find(if4) != nullptr && tb.find(if4)->alias == "silent";
        }));
        EXPECT_GE(names.stats().dumps, 2U);
        EXPECT_EQ(names.stats().events, 0U); // no update announced it
    });
    if (!ran) GTEST_SKIP() << "needs root for a network namespace";
}

TEST(LinkNamesKernel, FirstDumpSeesExistingLinksAndRulesReload) {
    const bool ran = in_netns([] {
        ASSERT_TRUE(sh("ip link add if3 type ifb && ip link set dev if3 alias 'mirror'"));
        LinkNames names;
        const auto t = names.table();
        const LinkInfo* l = by_name(*t, "if3");
        ASSERT_NE(l, nullptr);
        EXPECT_EQ(l->alias, "mirror");
        const unsigned if3 = ::if_nametoindex("if3");
        EXPECT_EQ(l->index, if3);
        names.set_rules(SnmpRules::parse("if*=500"));
        EXPECT_EQ(names.table()->exported_index(if3), 503U);
        EXPECT_EQ(names.table()->generation, t->generation + 1);
    });
    if (!ran) GTEST_SKIP() << "needs root for a network namespace";
}

// Exporter threads read table() and stats() while the owner publishes (a TSan build checks
// the hand-over): each snapshot is whole and generations never go back.
TEST(LinkNamesKernel, ReadersSeeWholeSnapshots) {
    const bool ran = in_netns([] {
        LinkNames names;
        std::atomic<bool> stop{false};
        std::atomic<int> bad{0};
        std::thread reader([&] {
            std::uint64_t last = 0;
            while (!stop.load()) {
                const auto t = names.table();
                if (t->generation < last) ++bad;
                last = t->generation;
                int renamed = 0; // rl0? and rl1?: never more, never a half-written name
                for (const auto& [ifindex, l] : t->links) {
                    if (l.name.empty() || l.index != ifindex) ++bad;
                    if (l.name.starts_with("rl")) ++renamed;
                }
                if (renamed > 2 || names.stats().known > 3) ++bad; // lo, rl0?, rl1?
            }
        });
        ASSERT_TRUE(sh("ip link add rl0a type ifb && ip link add rl1a type ifb"));
        for (int round = 0; round < 20; ++round) {
            const std::string from = round % 2 ? "b" : "a", to = round % 2 ? "a" : "b";
            ASSERT_TRUE(sh("ip link set rl0" + from + " name rl0" + to + " && ip link set rl1" +
                           from + " name rl1" + to));
            ASSERT_TRUE(wait_for(names, [&](const LinkTable& tb) {
                return by_name(tb, "rl0" + to) != nullptr && by_name(tb, "rl1" + to) != nullptr;
            }));
        }
        stop = true;
        reader.join();
        EXPECT_EQ(bad.load(), 0);
        EXPECT_GE(names.stats().changes, 20U);
    });
    if (!ran) GTEST_SKIP() << "needs root for a network namespace";
}

// Updates dropped by a full socket (ENOBUFS) are recovered by a new dump: links deleted
// while nobody listened disappear, links added appear.
TEST(LinkNamesKernel, OverrunIsCountedAndRedumped) {
    const bool ran = in_netns([] {
        LinkNamesConfig cfg;
        cfg.rcvbuf = 1; // the smallest buffer the kernel allows: a few updates
        LinkNames names(cfg);
        std::string add, del;
        for (int i = 0; i < 30; ++i) add += "link add ov" + std::to_string(i) + " type ifb\n";
        for (int i = 0; i < 20; ++i) del += "link del ov" + std::to_string(i) + "\n";
        ASSERT_TRUE(sh("printf '" + add + "' | ip -batch -"));
        ASSERT_TRUE(wait_for(names, [](const LinkTable& tb) { return tb.links.size() == 31; }));
        const LinkStats before = names.stats();
        EXPECT_GE(before.enobufs, 1U);
        EXPECT_GE(before.dumps, 2U);

        ASSERT_TRUE(sh("printf '" + del + "' | ip -batch -"));
        ASSERT_TRUE(wait_for(names, [](const LinkTable& tb) { return tb.links.size() == 11; }));
        const auto t = names.table();
        for (int i = 0; i < 30; ++i)
            EXPECT_EQ(by_name(*t, "ov" + std::to_string(i)) != nullptr, i >= 20) << i;
        const LinkStats after = names.stats();
        EXPECT_GT(after.enobufs, before.enobufs);
        EXPECT_GT(after.dumps, before.dumps);
        EXPECT_EQ(after.malformed, 0U);
    });
    if (!ran) GTEST_SKIP() << "needs root for a network namespace";
}

} // namespace
} // namespace nflowd
