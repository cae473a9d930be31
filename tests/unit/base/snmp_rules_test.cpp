// snmp-rules: both spellings, first match, ipt_NETFLOW's number rule, errors, canonical form.
#include "nflowd/snmp_rules.hpp"

#include "nflowd/packet.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace nflowd {
namespace {

std::string error_of(std::string_view spec) {
    try {
        SnmpRules::parse(spec);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

TEST(SnmpRules, EmptyMapsNothing) {
    const SnmpRules r = SnmpRules::parse("  ");
    EXPECT_TRUE(r.empty());
    EXPECT_EQ(r.map("eth3", 7), 7U);
    EXPECT_EQ(r.to_string(), "");
}

TEST(SnmpRules, IptNetflowFormAddsTheInterfaceNumber) {
    // ipt_NETFLOW's README: with ppp:200, ppp11 is 211.
    const SnmpRules r = SnmpRules::parse("eth:100,ppp:200,vlan:300");
    EXPECT_EQ(r.map("ppp11", 5), 211U);
    EXPECT_EQ(r.map("eth3", 5), 103U);
    EXPECT_EQ(r.map("eth0", 5), 100U);
    EXPECT_EQ(r.map("vlan42", 5), 342U);
    EXPECT_EQ(r.map("lo", 1), 1U);      // unmatched: the kernel ifindex
    EXPECT_EQ(r.map("veth9", 12), 12U); // "eth" must be a prefix, not a substring
}

TEST(SnmpRules, IssueFormIsTheSameRule) {
    EXPECT_EQ(SnmpRules::parse("eth*=100"), SnmpRules::parse("eth:100"));
    const SnmpRules r = SnmpRules::parse(" eth*=100 , ppp:200 ");
    EXPECT_EQ(r.map("eth3", 9), 103U);
    EXPECT_EQ(r.map("ppp7", 9), 207U);
    EXPECT_EQ(r.to_string(), "eth*=100,ppp*=200");
}

TEST(SnmpRules, DigitsRightAfterThePrefixOnly) {
    const SnmpRules r = SnmpRules::parse("eth:100");
    EXPECT_EQ(r.map("eth0.5", 9), 100U); // digits end at '.'
    EXPECT_EQ(r.map("ethx7", 9), 100U);  // none right after the prefix: 0
    EXPECT_EQ(r.map("eth", 9), 100U);
    EXPECT_EQ(r.map("eth12", 9), 112U);
}

TEST(SnmpRules, ExactNameAndFirstMatchWins) {
    const SnmpRules r = SnmpRules::parse("wan=1,eth1=50,eth:100,e:7");
    EXPECT_EQ(r.map("wan", 30), 1U);
    EXPECT_EQ(r.map("wan0", 30), 30U); // exact: not a prefix
    EXPECT_EQ(r.map("eth1", 30), 50U); // the exact rule comes first
    EXPECT_EQ(r.map("eth2", 30), 102U);
    EXPECT_EQ(r.map("e5", 30), 12U);
    EXPECT_EQ(r.map("em5", 30), 7U); // "m5": no digits right after "e"
    EXPECT_EQ(r.to_string(), "wan=1,eth1=50,eth*=100,e*=7");
}

TEST(SnmpRules, OverflowingNumberFallsToTheNextRule) {
    // A 15-byte name with 14 digits sums beyond 32 bits: "x:5" does not match it, so the
    // next rule decides; one past 2^32 - 1 matches neither and keeps the kernel index.
    const SnmpRules r = SnmpRules::parse("x:5,x99999999999999=3");
    EXPECT_EQ(r.map("x99999999999999", 4), 3U);
    EXPECT_EQ(r.map("x4294967290", 4), 4294967295U); // exactly 2^32 - 1 still fits
    EXPECT_EQ(r.map("x4294967291", 4), 4U);
}

TEST(SnmpRules, MapsByCurrentNames) {
    const SnmpRules r = SnmpRules::parse("eth*=100");
    LinkTable t;
    t.links[2] = LinkInfo{"eth3", "", 2};
    t.links[3] = LinkInfo{"wg0", "", 3};
    EXPECT_EQ(r.map(2, t), 103U);
    EXPECT_EQ(r.map(3, t), 3U);
    EXPECT_EQ(r.map(17, t), 17U); // unknown link
    EXPECT_EQ(r.map(kUnknownIfindex, t), kUnknownIfindex);
}

TEST(SnmpRules, CanonicalFormRoundTrips) {
    for (const char* spec : {"eth*=100", "a=0,b*=65535", "ppp:200,eth:100,lo=1"}) {
        const SnmpRules r = SnmpRules::parse(spec);
        EXPECT_EQ(SnmpRules::parse(r.to_string()), r) << spec;
    }
}

TEST(SnmpRules, BadRulesAreNamed) {
    EXPECT_EQ(error_of("eth:100,,ppp:2"), "snmp_rules: bad rule \"\": empty rule");
    EXPECT_EQ(error_of("eth:100, eth "),
              "snmp_rules: bad rule \"eth\": expected prefix:base, prefix*=base or name=index");
    const std::string name_err =
        ": interface name or prefix must be 1-15 bytes, no space / : , = *";
    EXPECT_EQ(error_of(":100"), "snmp_rules: bad rule \":100\"" + name_err);
    EXPECT_EQ(error_of("*=100"), "snmp_rules: bad rule \"*=100\"" + name_err);
    EXPECT_EQ(error_of("a b:1"), "snmp_rules: bad rule \"a b:1\"" + name_err);
    EXPECT_EQ(error_of("a/b=1"), "snmp_rules: bad rule \"a/b=1\"" + name_err);
    EXPECT_EQ(error_of("e*th=1"), "snmp_rules: bad rule \"e*th=1\"" + name_err);
    EXPECT_EQ(error_of("eth**=1"), "snmp_rules: bad rule \"eth**=1\"" + name_err);
    EXPECT_EQ(error_of("abcdefghijklmnop:1"),
              "snmp_rules: bad rule \"abcdefghijklmnop:1\"" + name_err);
    EXPECT_EQ(error_of("abcdefghijklmno:1"), ""); // 15 bytes: the longest name
    const std::string index_err = ": index must be 0-65535";
    EXPECT_EQ(error_of("eth:65536"), "snmp_rules: bad rule \"eth:65536\"" + index_err);
    EXPECT_EQ(error_of("eth*=-1"), "snmp_rules: bad rule \"eth*=-1\"" + index_err);
    EXPECT_EQ(error_of("eth:1x"), "snmp_rules: bad rule \"eth:1x\"" + index_err);
    EXPECT_EQ(error_of("eth:"), "snmp_rules: bad rule \"eth:\"" + index_err);
    EXPECT_EQ(error_of("eth=1=2"), "snmp_rules: bad rule \"eth=1=2\"" + index_err);
    EXPECT_EQ(error_of("eth:+1"), "snmp_rules: bad rule \"eth:+1\"" + index_err);
}

} // namespace
} // namespace nflowd
