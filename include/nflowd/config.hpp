// nflowd's typed configuration and its one option table (src/daemon/option_table.cpp): argv,
// the --config file, nflowctl set/get/list, --help and the typed diff all come from it.
#pragma once

#include "nflowd/aggregation.hpp"
#include "nflowd/collector_set.hpp"
#include "nflowd/exporter.hpp"
#include "nflowd/flow_table.hpp"
#include "nflowd/nflog_source.hpp"
#include "nflowd/snmp_rules.hpp"

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nflowd {

// A rejected option: what() is "--name: reason", ready to print after "nflowd: ".
class ConfigError : public std::runtime_error {
  public:
    ConfigError(std::string_view option, std::string_view reason);
    const std::string& option() const noexcept { return option_; }

  private:
    std::string option_;
};

struct Config {
    // input
    std::string read_file;             // --read: offline pcap instead of NFLOG
    std::vector<std::uint16_t> groups; // --group, repeatable, ranges "5-8"
    // The NFLOG defaults are the reader's own, so a default changes in one place.
    std::uint32_t snaplen = NflogConfig{}.snaplen;
    std::uint32_t qthreshold = NflogConfig{}.qthreshold;
    std::uint32_t qtimeout = NflogConfig{}.qtimeout;
    std::uint32_t nlbufsiz = NflogConfig{}.nlbufsiz;
    int rcvbuf = NflogConfig{}.rcvbuf;
    bool physdev = NflogConfig{}.physdev; // --physdev: bridge ports instead of the bridge
    std::size_t threads = 0;              // 0 = number of CPUs

    // flow cache
    FlowTableConfig table;
    Aggregation aggregation;
    std::string aggregation_text;

    // export
    std::vector<Destination> destinations;
    std::string destination_text;
    int sndbuf = 0; // 0 = system default
    std::uint8_t engine_id = 0;
    // --protocol, template_refresh_rate, template_timeout_rate, mtu, sampler, sampling_rate
    ExportFormat format;
    PacingConfig pacing;
    // NAT (issue 13): annotation from conntrack (with v9/IPFIX, live only), NAT event records.
    bool conntrack = true;
    bool natevents = false;
    bool natevents_only = false; // NAT events, no flow records
    // --natevents_destination: NAT events go there instead of to the flow destinations.
    std::vector<Destination> natevents_destinations;
    std::string natevents_destination_text;
    SnmpRules snmp_rules; // --snmp_rules: exported ifindexes by interface name (live only)

    // daemon
    int debug = 0;
    std::string pidfile;
    std::string log = "stderr"; // or "syslog"
    std::string config_file;
    std::uint32_t control_id = 0x6e666c77; // "nflw"
    // --control_group: besides root, members (the uid's groups) may change settings, dump flows.
    std::optional<std::uint32_t> control_group;
    std::string control_group_text; // as given: a group name or a number
    std::string user;               // --user: drop root for this user once bound

    std::size_t worker_threads() const noexcept;

    // Typed: the daemon compares configurations field by field, never as printed text.
    friend bool operator==(const Config&, const Config&) = default;
};

// Whether some destination gets v9 or IPFIX, which carry IPv6 flows (v5 cannot): the pipeline
// accounts IPv6 packets only then (PipelineConfig::ipv6).
bool exports_ipv6(const Config& config) noexcept;

// Default bucket count: ipt_NETFLOW's rule of thumb, scaled to physical memory.
std::size_t default_hashsize() noexcept;
Config default_config();

// One enumerator per option, in the order of option_table() (and of --help).
enum class Opt : std::uint8_t {
    read,
    group,
    snaplen,
    qthreshold,
    qtimeout,
    nlbufsiz,
    rcvbuf,
    physdev,
    threads,
    hashsize,
    maxflows,
    inactive_timeout,
    active_timeout,
    aggregation,
    destination,
    sndbuf,
    engine_id,
    protocol,
    template_refresh_rate,
    template_timeout_rate,
    mtu,
    export_rate,
    conntrack,
    natevents,
    natevents_only,
    natevents_destination,
    snmp_rules,
    sampler,
    sampling_rate,
    debug,
    log,
    pidfile,
    user,
    control_id,
    control_group,
    config,
};
constexpr std::size_t kOptionCount = static_cast<std::size_t>(Opt::config) + 1;

// A set of options, indexed by Opt: what differs between two configurations. A bitset that
// also takes Opt, so callers write d[Opt::hashsize] without casts.
class OptionSet : public std::bitset<kOptionCount> {
  public:
    using std::bitset<kOptionCount>::bitset;
    using std::bitset<kOptionCount>::operator[];
    using std::bitset<kOptionCount>::test;
    using std::bitset<kOptionCount>::set;
    bool operator[](Opt o) const { return test(static_cast<std::size_t>(o)); }
    reference operator[](Opt o) { return (*this)[static_cast<std::size_t>(o)]; }
    bool test(Opt o) const { return test(static_cast<std::size_t>(o)); }
    OptionSet& set(Opt o, bool value = true) {
        set(static_cast<std::size_t>(o), value);
        return *this;
    }
};

struct OptionInfo {
    std::string_view name;
    std::string_view argument; // "SECONDS", "" for flags
    std::string_view help;     // without the default, which --help appends
    bool runtime;              // nflowctl set / SIGHUP can change it in a running daemon
    Opt id = Opt::read;
    // The default as --help and the manuals show it ("15", "127.0.0.1:2055", or a phrase
    // where it depends on the machine); "" when the option has none.
    std::string default_text;
};
const std::vector<OptionInfo>& option_table();
const OptionInfo& option_info(Opt option);

// The options whose typed values differ between a and b.
OptionSet diff(const Config& a, const Config& b);
// Copies one option's value (and its printed form) from `from` into `to`.
void copy_option(Opt option, const Config& from, Config& to);

// Option and knob names compare with dashes and underscores interchangeable; this is the
// spelling they are stored and printed in ("active-timeout" -> "active_timeout").
std::string canonical_option_name(std::string_view name);
// The table entry for `name` (any spelling), or nullptr.
const OptionInfo* find_option(std::string_view name);

// Validates `value` for option `name` and stores it. Throws ConfigError naming the option.
// Underscores and dashes in `name` are interchangeable.
void apply_option(Config& config, std::string_view name, std::string_view value);
// The current value of an option, formatted as apply_option accepts it.
std::string option_value(const Config& config, std::string_view name);

enum class Action { run, help, version };
struct CommandLine {
    Action action = Action::run;
    Config config;
    std::string text; // --help / --version output
};

// The --help text: every option of the table with its default and [runtime] mark.
std::string help_text();

// Command line, then the --config file for what the command line did not set. Throws
// ConfigError (bad value) or std::runtime_error (unknown option, unreadable file). SIGHUP
// calls it again with the original argv to re-read the file.
CommandLine parse_command_line(int argc, const char* const argv[]);

} // namespace nflowd
