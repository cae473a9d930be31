// Malformed rtnetlink link messages: each is counted and changes nothing, and the walk never
// reads past the datagram (truncated headers, lying lengths, bad attributes, long strings).
#include "nflowd/link_names.hpp"

#include "link_message_builder.hpp"

#include <gtest/gtest.h>

#include <string>

namespace nflowd {
namespace {

using test::Datagram;
using test::LinkMsg;

LinkMsg update(int ifindex, std::string name, std::string alias = "") {
    LinkMsg m;
    m.ifindex = ifindex;
    m.name = std::move(name);
    m.alias = std::move(alias);
    return m;
}

// Feeds `d` to a state that knows lo (1); returns the malformed count and checks that lo is
// still the only link.
std::uint64_t malformed_after(const Datagram& d, bool* needs_dump = nullptr) {
    LinkState state;
    LinkStats stats;
    Datagram first;
    first.link(update(1, "lo"));
    state.consume(first.bytes(), stats);
    state.consume(d.bytes(), stats);
    const auto t = state.snapshot(stats);
    EXPECT_EQ(t->links.size(), 1U);
    EXPECT_EQ(t->links.at(1).name, "lo");
    if (needs_dump != nullptr) *needs_dump = state.needs_dump();
    return stats.malformed;
}

TEST(LinkMessages, ParsesNameAndAlias) {
    Datagram d;
    const nlmsghdr* nlh = d.link(update(4, "eth4", "uplink to ISP"));
    detail::LinkMessage m;
    ASSERT_TRUE(detail::parse_link_message(nlh, m));
    EXPECT_TRUE(m.is_new);
    EXPECT_TRUE(m.relevant);
    EXPECT_EQ(m.ifindex, 4U);
    EXPECT_EQ(m.name, "eth4");
    EXPECT_EQ(m.alias, "uplink to ISP");
}

TEST(LinkMessages, LongestNameAndAliasAccepted) {
    Datagram d;
    const std::string name(kMaxLinkName, 'n'), alias(kMaxLinkAlias, 'a');
    const nlmsghdr* nlh = d.link(update(4, name, alias));
    detail::LinkMessage m;
    ASSERT_TRUE(detail::parse_link_message(nlh, m));
    EXPECT_EQ(m.name, name);
    EXPECT_EQ(m.alias, alias);
}

TEST(LinkMessages, OversizedNameOrAliasRejected) {
    Datagram d;
    d.link(update(4, std::string(kMaxLinkName + 1, 'n')));
    d.link(update(5, "ok5", std::string(kMaxLinkAlias + 1, 'a')));
    EXPECT_EQ(malformed_after(d), 2U);
}

TEST(LinkMessages, StringsWithoutTheirNulRejected) {
    Datagram d;
    d.put_attr(d.link(update(4, "")), IFLA_IFNAME, "eth4");       // no NUL
    d.put_attr(d.link(update(5, "eth5")), IFLA_IFALIAS, "alias"); // alias without NUL
    d.put_attr(d.link(update(6, "")), IFLA_IFNAME, "");           // empty payload
    EXPECT_EQ(malformed_after(d), 3U);
}

TEST(LinkMessages, EmptyNameMissingNameAndBadIndexRejected) {
    Datagram d;
    d.put_attr(d.link(update(4, "")), IFLA_IFNAME, std::string_view("\0", 1)); // ""
    d.link(update(5, ""));     // NEWLINK without a name
    d.link(update(0, "zero")); // ifindex 0 is no link
    d.link(update(-3, "neg"));
    EXPECT_EQ(malformed_after(d), 4U);
}

TEST(LinkMessages, InteriorNulEndsTheName) {
    Datagram d;
    nlmsghdr* nlh = d.link(update(4, ""));
    d.put_attr(nlh, IFLA_IFNAME, std::string_view("ab\0cd\0", 6));
    detail::LinkMessage m;
    ASSERT_TRUE(detail::parse_link_message(nlh, m));
    EXPECT_EQ(m.name, "ab");
}

TEST(LinkMessages, ShortHeaderAndBrokenAttributesRejected) {
    Datagram d;
    // Payload shorter than ifinfomsg.
    nlmsghdr* shortmsg = d.link(update(4, ""));
    shortmsg->nlmsg_len = NLMSG_HDRLEN + 8;
    d.resize(NLMSG_HDRLEN + 8);
    // An attribute whose length runs past its message (but not past the datagram).
    nlmsghdr* lying = d.link(update(5, "eth5"));
    auto* attr = reinterpret_cast<nlattr*>(reinterpret_cast<char*>(lying) + NLMSG_HDRLEN +
                                           NLMSG_ALIGN(sizeof(ifinfomsg)));
    attr->nla_len = 200;
    // The same after the name: libmnl's walk would stop there and report success.
    nlmsghdr* late = d.link(update(7, "eth7"));
    d.put_attr(late, IFLA_ADDRESS, "abcdef");
    reinterpret_cast<nlattr*>(reinterpret_cast<char*>(late) + late->nlmsg_len - 12)->nla_len = 64;
    d.link(update(6, "eth6")); // after them: still read
    LinkState state;
    LinkStats stats;
    state.consume(d.bytes(), stats);
    const auto t = state.snapshot(stats);
    EXPECT_EQ(stats.malformed, 3U);
    ASSERT_EQ(t->links.size(), 1U);
    EXPECT_EQ(t->links.at(6).name, "eth6");
}

TEST(LinkMessages, UnknownAttributesIgnored) {
    Datagram d;
    nlmsghdr* nlh = d.link(update(4, "eth4"));
    d.put_attr(nlh, IFLA_MAX + 20, "future");
    d.put_attr(nlh, IFLA_ADDRESS, std::string_view("\x02\0\0\0\0\x01", 6));
    detail::LinkMessage m;
    ASSERT_TRUE(detail::parse_link_message(nlh, m));
    EXPECT_EQ(m.name, "eth4");
}

TEST(LinkMessages, TruncatedDatagramCountedAndRedumped) {
    Datagram d;
    d.link(update(4, "eth4"));
    d.link(update(5, "eth5"));
    d.resize(d.size() - 12); // the second message cut short
    bool needs_dump = false;
    LinkState state;
    LinkStats stats;
    state.consume(d.bytes(), stats);
    needs_dump = state.needs_dump();
    EXPECT_EQ(stats.malformed, 1U);
    EXPECT_TRUE(needs_dump); // an update may be lost in the cut: only a dump can tell
    EXPECT_EQ(state.snapshot(stats)->links.size(), 1U);
}

TEST(LinkMessages, LyingMessageLengthEndsTheWalk) {
    for (const std::uint32_t len : {0U, 15U, 0xFFFFFFF0U, 0x80000000U}) {
        Datagram d;
        d.link(update(4, "eth4"))->nlmsg_len = len;
        d.link(update(5, "eth5"));
        bool needs_dump = false;
        EXPECT_EQ(malformed_after(d, &needs_dump), 1U) << len;
        EXPECT_TRUE(needs_dump);
    }
}

TEST(LinkMessages, MisalignedBufferRejected) {
    Datagram d;
    d.raw(std::as_bytes(std::span("xxxx", 4)));
    d.link(update(4, "eth4"));
    LinkState state;
    LinkStats stats;
    state.consume(d.bytes().subspan(1, d.size() - 1), stats);
    EXPECT_EQ(stats.malformed, 1U);
    EXPECT_TRUE(state.snapshot(stats)->links.empty());
}

TEST(LinkMessages, OtherMessageTypesIgnored) {
    Datagram d;
    LinkMsg addr = update(4, "eth4");
    addr.type = RTM_NEWADDR;
    d.link(addr);
    d.done(0, 0); // not a dump of ours
    EXPECT_EQ(malformed_after(d), 0U);
}

} // namespace
} // namespace nflowd
