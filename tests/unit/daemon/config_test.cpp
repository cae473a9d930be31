#include "nflowd/config.hpp"

#include "command_line.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace nflowd {
namespace {

using test::error_of;
using test::parse;

TEST(Config, DefaultsAreIptNetflows) {
    const auto c = parse({"--group", "5"}).config;
    EXPECT_EQ(c.table.inactive_timeout, 15 * kNanosPerSecond);
    EXPECT_EQ(c.table.active_timeout, 1800 * kNanosPerSecond);
    EXPECT_EQ(c.table.maxflows, 2'000'000u);
    EXPECT_GE(c.table.hashsize, kMinHashsize);
    EXPECT_EQ(c.destination_text, "127.0.0.1:2055");
    EXPECT_EQ(c.snaplen, 128u);
}

TEST(Config, BadValueNamesTheOptionAndTheValue) {
    EXPECT_EQ(error_of({"--group", "5", "--active_timeout", "abc"}),
              "--active_timeout: must be 1-4294967 seconds, got \"abc\"");
    EXPECT_EQ(error_of({"--group", "5", "--inactive_timeout=0"}),
              "--inactive_timeout: must be 1-4294967 seconds, got \"0\"");
    EXPECT_EQ(error_of({"--group", "5", "--hashsize", "100"}),
              "--hashsize: must be 256-268435456 buckets, got \"100\"");
    EXPECT_EQ(error_of({"--group", "70000"}).rfind("--group: ", 0), 0u);
    EXPECT_EQ(error_of({"--group", "5", "--destination", "1.2.3:x"}).rfind("--destination: ", 0),
              0u);
    EXPECT_EQ(
        error_of({"--group", "5", "--aggregation", "10.0.0.0/33=8"}).rfind("--aggregation: ", 0),
        0u);
    EXPECT_NE(error_of({"--group", "5", "--no-such-option"}), "");
    EXPECT_NE(error_of({}), ""); // neither a group nor a file
}

TEST(Config, DashesAndUnderscoresAreInterchangeable) {
    const auto c = parse({"--group=5-7", "--active-timeout", "60", "--engine_id=3"}).config;
    EXPECT_EQ(c.table.active_timeout, 60 * kNanosPerSecond);
    EXPECT_EQ(c.engine_id, 3);
    EXPECT_EQ(c.groups, (std::vector<std::uint16_t>{5, 6, 7}));
}

TEST(Config, RepeatedDestinationsAndGroupsAccumulate) {
    const auto c = parse({"--group", "5", "--group", "9", "--destination", "127.0.0.1:9995",
                          "--destination", "[::1]:2056"})
                       .config;
    EXPECT_EQ(c.groups, (std::vector<std::uint16_t>{5, 9}));
    EXPECT_EQ(c.destinations.size(), 2u);
}

TEST(Config, FileFillsWhatTheCommandLineLeaves) {
    const std::string path = ::testing::TempDir() + "/nflowd-test.conf";
    {
        std::ofstream f(path);
        f << "# comment\ngroup = 5\ninactive_timeout = 30\nactive_timeout = 600\n";
    }
    const auto c = parse({"--config", path, "--active_timeout", "120"}).config;
    EXPECT_EQ(c.table.inactive_timeout, 30 * kNanosPerSecond);
    EXPECT_EQ(c.table.active_timeout, 120 * kNanosPerSecond); // command line wins
    EXPECT_EQ(c.groups, (std::vector<std::uint16_t>{5}));
    std::remove(path.c_str());
}

TEST(Config, EveryOptionRoundTripsThroughItsOwnValue) {
    auto c = parse({"--group", "5"}).config;
    for (const auto& o : option_table()) {
        const auto v = option_value(c, o.name);
        if (v.empty()) continue; // unset strings (read, pidfile, config, aggregation)
        EXPECT_NO_THROW(apply_option(c, o.name, v)) << o.name << " = " << v;
        EXPECT_EQ(option_value(c, o.name), v) << o.name;
    }
}

TEST(Config, HelpAndVersion) {
    EXPECT_EQ(parse({"--help"}).action, Action::help);
    EXPECT_NE(parse({"--help"}).text.find("--inactive_timeout"), std::string::npos);
    EXPECT_EQ(parse({"-V"}).action, Action::version);
}

} // namespace
} // namespace nflowd
