// The --nflog-prefix tag (issue 13): its grammar, and the memo that parses a rule's constant
// prefix once.
#include "nflowd/prefix_tag.hpp"

#include <gtest/gtest.h>

#include <string>

namespace nflowd {
namespace {

TEST(PrefixTag, TokensAnywhereAmongOtherText) {
    EXPECT_EQ(parse_prefix_tag("obs=7"), (PrefixTag{7, Direction::unknown}));
    EXPECT_EQ(parse_prefix_tag("FWD: obs=12 dir=in "), (PrefixTag{12, Direction::ingress}));
    EXPECT_EQ(parse_prefix_tag("dir=out\tobs=255"), (PrefixTag{255, Direction::egress}));
    EXPECT_EQ(parse_prefix_tag("obs=3 obs=4"), (PrefixTag{4, Direction::unknown})); // last wins
    EXPECT_EQ(parse_prefix_tag(""), PrefixTag{});
    EXPECT_EQ(parse_prefix_tag("DROP "), PrefixTag{});
}

TEST(PrefixTag, MalformedOrOutOfRangeValuesAreIgnored) {
    for (const char* p : {"obs=0", "obs=256", "obs=1000", "obs=-1", "obs=", "obs=7x", "obs=0x7",
                          "xobs=7", "OBS=7", "dir=both", "dir=", "dir=inbound", "obs 7"})
        EXPECT_EQ(parse_prefix_tag(p), PrefixTag{}) << p;
    EXPECT_EQ(parse_prefix_tag("obs=9 obs=300"), (PrefixTag{9, Direction::unknown}));
}

TEST(PrefixTagMemo, SamePrefixSameTagAndAChangeIsSeen) {
    PrefixTagMemo memo;
    EXPECT_EQ(memo.lookup("in obs=1 dir=in"), (PrefixTag{1, Direction::ingress}));
    EXPECT_EQ(memo.lookup("in obs=1 dir=in"), (PrefixTag{1, Direction::ingress}));
    EXPECT_EQ(memo.lookup("out obs=2 dir=out"), (PrefixTag{2, Direction::egress}));
    EXPECT_EQ(memo.lookup("in obs=1 dir=in"), (PrefixTag{1, Direction::ingress}));
    EXPECT_EQ(memo.lookup("in obs=1"), (PrefixTag{1, Direction::unknown})); // a prefix of it
    EXPECT_EQ(memo.lookup(""), PrefixTag{});
    // Longer than the memo holds: parsed every time, never confused with the last one.
    const std::string longer = std::string(PrefixTagMemo::kMaxPrefix, 'x') + " obs=5";
    EXPECT_EQ(memo.lookup(longer), (PrefixTag{5, Direction::unknown}));
    EXPECT_EQ(memo.lookup(longer.substr(0, PrefixTagMemo::kMaxPrefix)), PrefixTag{});
    EXPECT_EQ(memo.lookup(longer), (PrefixTag{5, Direction::unknown}));
}

} // namespace
} // namespace nflowd
