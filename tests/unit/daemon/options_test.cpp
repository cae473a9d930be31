// The typed option table: diff finds exactly the option that changed, copy_option moves one
// option, Program_options parses typed and repeatable values, --help shows every default.
#include "nflowd/config.hpp"

#include "command_line.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace nflowd {
namespace {

using test::error_of;
using test::parse;

// A configuration where every option differs from the defaults.
Config changed_config() {
    Config c = default_config();
    const std::vector<std::pair<Opt, std::string>> values = {
        {Opt::read, "x.pcap"},
        {Opt::group, "9"},
        {Opt::snaplen, "200"},
        {Opt::qthreshold, "10"},
        {Opt::qtimeout, "20"},
        {Opt::nlbufsiz, "8192"},
        {Opt::rcvbuf, "131072"},
        {Opt::physdev, "yes"},
        {Opt::threads, "3"},
        {Opt::hashsize, "512"},
        {Opt::maxflows, "100"},
        {Opt::inactive_timeout, "30"},
        {Opt::active_timeout, "60"},
        {Opt::aggregation, "10.0.0.0/8=16"},
        {Opt::destination, "127.0.0.1:9995"},
        {Opt::sndbuf, "65536"},
        {Opt::engine_id, "7"},
        {Opt::protocol, "10"},
        {Opt::template_refresh_rate, "5"},
        {Opt::template_timeout_rate, "30"},
        {Opt::mtu, "9000"},
        {Opt::export_rate, "100M"},
        {Opt::conntrack, "no"},
        {Opt::natevents, "1"},
        {Opt::natevents_only, "1"},
        {Opt::natevents_destination, "127.0.0.1:9996@10"},
        {Opt::snmp_rules, "eth:100"},
        {Opt::sampler, "deterministic:10"},
        {Opt::sampling_rate, "4"},
        {Opt::debug, "2"},
        {Opt::log, "syslog"},
        {Opt::pidfile, "/run/x.pid"},
        {Opt::user, "root"},
        {Opt::control_id, "77"},
        {Opt::control_group, "0"},
        {Opt::config, "/etc/x.conf"},
    };
    for (const auto& [opt, value] : values) apply_option(c, option_info(opt).name, value);
    return c;
}

TEST(Options, TableIsInOptOrder) {
    ASSERT_EQ(option_table().size(), kOptionCount);
    for (std::size_t i = 0; i < kOptionCount; ++i) {
        EXPECT_EQ(static_cast<std::size_t>(option_table()[i].id), i) << option_table()[i].name;
        EXPECT_EQ(&option_info(static_cast<Opt>(i)), &option_table()[i]);
    }
    EXPECT_EQ(option_info(Opt::hashsize).name, "hashsize");
    EXPECT_EQ(option_info(Opt::config).name, "config");
}

TEST(Options, DiffFindsExactlyTheChangedOption) {
    const Config base = default_config();
    EXPECT_TRUE(diff(base, base).none());
    EXPECT_TRUE(base == default_config());
    const Config other = changed_config();
    EXPECT_TRUE(diff(base, other).all());
    for (const auto& o : option_table()) {
        Config next = base;
        copy_option(o.id, other, next);
        OptionSet want;
        want.set(o.id);
        EXPECT_EQ(diff(base, next), want) << o.name;
        EXPECT_TRUE(diff(base, next)[o.id]) << o.name;
        EXPECT_FALSE(base == next) << o.name;
    }
}

TEST(Options, CopyOptionCarriesTheValueAndItsText) {
    const Config from = changed_config();
    Config to = default_config();
    for (const auto& o : option_table()) {
        copy_option(o.id, from, to);
        EXPECT_EQ(option_value(to, o.name), option_value(from, o.name)) << o.name;
    }
    EXPECT_TRUE(to == from);
    EXPECT_TRUE(diff(to, from).none());
}

TEST(Options, SameValueSpelledDifferentlyIsNoChange) {
    Config a = default_config();
    Config b = a;
    apply_option(b, "destination", "127.0.0.1"); // port 2055 implied
    apply_option(b, "active-timeout", "1800");
    EXPECT_TRUE(diff(a, b).none());
}

TEST(Options, RepeatableOptionsFromArgvAndFileAddUp) {
    const std::string path = ::testing::TempDir() + "/nflowd-options-test.conf";
    {
        std::ofstream f(path);
        f << "group = 9\ngroup = 5,12\ndestination = 127.0.0.1:1\nsnaplen = 300\n"
          << "  inactive-timeout = 30 # dashes as on the command line\n";
    }
    const auto c = parse({"--group", "5", "--group=7-8", "--destination", "[::1]:2", "--config",
                          path, "--snaplen", "200"})
                       .config;
    EXPECT_EQ(c.groups, (std::vector<std::uint16_t>{5, 7, 8, 9, 12}));
    ASSERT_EQ(c.destinations.size(), 2u);
    EXPECT_EQ(c.destinations[0].text, "[::1]:2");
    EXPECT_EQ(c.destinations[1].text, "127.0.0.1:1");
    EXPECT_EQ(c.destination_text, "[::1]:2,127.0.0.1:1");
    EXPECT_EQ(c.snaplen, 200u); // the command line wins
    EXPECT_EQ(c.table.inactive_timeout, 30 * kNanosPerSecond);
    EXPECT_EQ(c.config_file, path);
    std::remove(path.c_str());
}

TEST(Options, FileValuesFailLikeCommandLineValues) {
    const std::string path = ::testing::TempDir() + "/nflowd-options-bad.conf";
    {
        std::ofstream f(path);
        f << "group = 5\nhashsize = 100\n";
    }
    EXPECT_EQ(error_of({"--config", path}),
              "--hashsize: must be 256-268435456 buckets, got \"100\"");
    {
        std::ofstream f(path);
        f << "group = 5\ndestination = 127.0.0.1:2055\n";
    }
    // The same collector on the command line and in the file would get every datagram twice.
    EXPECT_EQ(
        error_of({"--config", path, "--destination", "127.0.0.1"}).rfind("--destination: ", 0), 0u);
    std::remove(path.c_str());
    EXPECT_NE(error_of({"--group", "5", "--snaplen", "100", "--snaplen", "200"}), "");
    EXPECT_EQ(error_of({"--group", "5", "--log", "file"}),
              "--log: must be stderr or syslog, got \"file\"");
    EXPECT_EQ(error_of({"--group", "5", "--read", ""}), "--read: needs a file name");
}

// NetFlow v5's First and Last are 32-bit milliseconds: a flow kept past 2^32 ms (49.7 days)
// would wrap them, so a longer timeout is refused like any out-of-range value.
TEST(Options, TimeoutsStopAtWhatV5CanCarry) {
    for (const std::string name : {"active_timeout", "inactive_timeout"}) {
        SCOPED_TRACE(name);
        EXPECT_EQ(error_of({"--group", "5", "--" + name, "4294967"}), "");
        EXPECT_EQ(error_of({"--group", "5", "--" + name, "4294968"}),
                  "--" + name + ": must be 1-4294967 seconds, got \"4294968\"");
        EXPECT_EQ(error_of({"--group", "5", "--" + name, "100000000"}),
                  "--" + name + ": must be 1-4294967 seconds, got \"100000000\"");
        Config c = default_config();
        apply_option(c, name, "4294967");
        EXPECT_THROW(apply_option(c, name, "4294968"), ConfigError); // nflowctl set, SIGHUP
    }
    EXPECT_EQ(parse({"--group", "5", "--active_timeout", "4294967"}).config.table.active_timeout,
              Nanos{4'294'967} * kNanosPerSecond);
}

// --export_rate is bytes per second with decimal k/M/G; below one 64 KiB burst a second it
// is refused: such a value was a datagram count before, and as bytes it would crawl.
TEST(Options, ExportRateIsBytesPerSecondWithDecimalSuffixes) {
    auto rate = [](const std::string& v) {
        return parse({"--group", "5", "--export_rate", v}).config.pacing.rate;
    };
    EXPECT_EQ(rate("0"), 0U);
    EXPECT_EQ(rate("65536"), 65536U);
    EXPECT_EQ(rate("125M"), 125'000'000U);
    EXPECT_EQ(rate("800k"), 800'000U);
    EXPECT_EQ(rate("4G"), 4'000'000'000U);
    EXPECT_EQ(default_config().pacing.rate, 25'000'000U);
    const std::string what =
        "--export_rate: must be 0 (unpaced) or 65536-4000000000 bytes per second (k, M, G: "
        "x1000), got ";
    for (const std::string bad :
         {"20000", "65535", "64k", "5G", "4000000001", "1.5M", "M", "10m", "-1", ""})
        EXPECT_EQ(error_of({"--group", "5", "--export_rate", bad}), what + "\"" + bad + "\"")
            << bad;
    Config c = default_config();
    apply_option(c, "export_rate", "1G"); // nflowctl set, SIGHUP: the same codec
    EXPECT_EQ(c.pacing.rate, 1'000'000'000U);
    EXPECT_THROW(apply_option(c, "export_rate", "20000"), ConfigError);
}

TEST(Options, ControlGroupKeepsTheNameAndComparesTheGid) {
    Config a = default_config();
    apply_option(a, "control_group", "0");
    Config b = default_config();
    apply_option(b, "control_group", "root");
    EXPECT_EQ(option_value(b, "control_group"), "root");
    EXPECT_FALSE(diff(a, b)[Opt::control_group]);
}

// The line of --help for an option, with its wrapped continuation.
std::string help_entry(const std::string& help, std::string_view name) {
    std::istringstream in(help);
    std::string line;
    std::string entry;
    const std::string head = "      --" + std::string(name);
    while (std::getline(in, line)) {
        if (!entry.empty() && line.rfind("      --", 0) == 0) break;
        if (!entry.empty() && line.empty()) break;
        if (entry.empty() && line.rfind(head, 0) == 0 &&
            (line.size() == head.size() || line[head.size()] == ' '))
            entry = line;
        else if (!entry.empty())
            entry += line;
    }
    return entry;
}

TEST(Options, HelpShowsEachDefault) {
    const auto help = parse({"--help"}).text;
    const Config defaults = default_config();
    for (const auto& o : option_table()) {
        const auto entry = help_entry(help, o.name);
        ASSERT_FALSE(entry.empty()) << o.name;
        if (o.default_text.empty()) {
            EXPECT_EQ(entry.find("(default"), std::string::npos) << entry;
        } else {
            EXPECT_NE(entry.find("(default " + o.default_text + ")"), std::string::npos) << entry;
        }
        EXPECT_EQ(entry.find("[runtime]") != std::string::npos, o.runtime) << entry;
        // Where the default does not depend on the machine it is the value itself.
        if (o.id != Opt::hashsize && o.id != Opt::threads && o.id != Opt::aggregation) {
            EXPECT_EQ(o.default_text, option_value(defaults, o.name)) << o.name;
        }
    }
    EXPECT_EQ(option_info(Opt::qthreshold).default_text, "64");
    EXPECT_EQ(option_info(Opt::destination).default_text, "127.0.0.1:2055");
    EXPECT_EQ(option_info(Opt::aggregation).default_text, "none");
}

TEST(Options, NflogDefaultsAreTheReadersOwn) {
    const Config c;
    const NflogConfig n;
    EXPECT_EQ(c.qthreshold, n.qthreshold);
    EXPECT_EQ(c.snaplen, n.snaplen);
    EXPECT_EQ(c.qtimeout, n.qtimeout);
    EXPECT_EQ(c.nlbufsiz, n.nlbufsiz);
    EXPECT_EQ(c.rcvbuf, n.rcvbuf);
    EXPECT_EQ(c.physdev, n.physdev);
}

TEST(Options, PhysdevIsYesOrNo) {
    Config c = default_config();
    EXPECT_FALSE(c.physdev);
    EXPECT_EQ(option_info(Opt::physdev).default_text, "no");
    apply_option(c, "physdev", "yes");
    EXPECT_TRUE(c.physdev);
    apply_option(c, "physdev", "no");
    EXPECT_FALSE(c.physdev);
    EXPECT_THROW(apply_option(c, "physdev", "1"), ConfigError);
}

} // namespace
} // namespace nflowd
