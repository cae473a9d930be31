// Switches (issue 13's --natevents, --natevents_only): no value on the command line, 1 or 0
// in the configuration file and through apply_option (nflowctl's path); --conntrack yes|no.
#include "nflowd/config.hpp"

#include "command_line.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace nflowd {
namespace {

using test::error_of;
using test::parse;

TEST(OptionSwitch, AloneOnTheCommandLineItIsOn) {
    const auto c = parse({"--group", "5", "--natevents", "--destination", "127.0.0.1:9"}).config;
    EXPECT_TRUE(c.natevents);
    EXPECT_FALSE(c.natevents_only);
    EXPECT_EQ(c.destination_text, "127.0.0.1:9") << "the next option is not taken as its value";
    EXPECT_TRUE(parse({"--natevents", "--group", "5"}).config.natevents);
    EXPECT_TRUE(parse({"--group", "5", "--natevents"}).config.natevents) << "last on the line";
    EXPECT_TRUE(parse({"--group", "5", "--natevents=1"}).config.natevents);
    EXPECT_FALSE(parse({"--group", "5", "--natevents=0"}).config.natevents);
    EXPECT_FALSE(parse({"--group", "5"}).config.natevents);
    EXPECT_NE(error_of({"--group", "5", "--natevents=maybe"}).find("--natevents"),
              std::string::npos);
}

TEST(OptionSwitch, TheFileSaysOneOrZeroAndTheCommandLineWins) {
    const std::string path = ::testing::TempDir() + "/nflowd-switch-test.conf";
    {
        std::ofstream f(path);
        f << "group = 5\nnatevents = 1\nnatevents_only = 0\nconntrack = no\n";
    }
    const auto c = parse({"--config", path}).config;
    EXPECT_TRUE(c.natevents);
    EXPECT_FALSE(c.natevents_only);
    EXPECT_FALSE(c.conntrack);
    EXPECT_TRUE(parse({"--config", path, "--natevents_only"}).config.natevents_only);
    EXPECT_FALSE(parse({"--config", path, "--natevents=0"}).config.natevents);
    std::remove(path.c_str());
}

TEST(OptionSwitch, ApplyOptionAndOptionValueSpeakOneAndZero) {
    Config c = default_config();
    EXPECT_EQ(option_value(c, "natevents"), "0");
    EXPECT_EQ(option_value(c, "conntrack"), "yes");
    apply_option(c, "natevents", "1");
    EXPECT_TRUE(c.natevents);
    EXPECT_EQ(option_value(c, "natevents"), "1");
    apply_option(c, "natevents", "0");
    EXPECT_FALSE(c.natevents);
    EXPECT_THROW(apply_option(c, "natevents", "2"), ConfigError);
}

TEST(OptionSwitch, NateventsOnlyNeedsNoGroup) {
    EXPECT_NE(error_of({"--natevents"}).find("--group"), std::string::npos);
    const auto c = parse({"--natevents_only"}).config;
    EXPECT_TRUE(c.natevents_only);
    EXPECT_TRUE(c.groups.empty());
}

} // namespace
} // namespace nflowd
