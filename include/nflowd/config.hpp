// Every option of nflowd in one table: names (ipt_NETFLOW's where it had one), defaults,
// validation and whether a running daemon can change it; shared by argv, file and nflowctl.
#pragma once

#include "nflowd/aggregation.hpp"
#include "nflowd/collector_set.hpp"
#include "nflowd/exporter.hpp"
#include "nflowd/flow_table.hpp"

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
    std::uint32_t snaplen = 128;
    std::uint32_t qthreshold = 64;       // packets the kernel batches per netlink message
    std::uint32_t qtimeout = 10;         // 1/100 s the kernel waits to fill a batch
    std::uint32_t nlbufsiz = 128 * 1024; // kernel's maximum
    int rcvbuf = 64 * 1024 * 1024;
    std::size_t threads = 0; // 0 = number of CPUs

    // flow cache
    FlowTableConfig table;
    Aggregation aggregation;
    std::string aggregation_text;

    // export
    std::vector<Destination> destinations;
    std::string destination_text;
    int sndbuf = 0; // 0 = system default
    std::uint8_t engine_id = 0;
    std::uint8_t protocol = 5;
    PacingConfig pacing;

    // daemon
    int debug = 0;
    std::string pidfile;
    std::string log = "stderr"; // or "syslog"
    std::string config_file;
    std::uint32_t control_id = 0x6e666c77; // "nflw"
    // --control_group: besides root, members (by primary gid) may change settings.
    std::optional<std::uint32_t> control_group;
    std::string control_group_text; // as given: a group name or a number
    std::string user;               // --user: drop root for this user once bound

    std::size_t worker_threads() const noexcept;
};

// Default bucket count: ipt_NETFLOW's rule of thumb, scaled to physical memory.
std::size_t default_hashsize() noexcept;
Config default_config();

struct OptionInfo {
    std::string_view name;
    std::string_view argument; // "SECONDS", "" for flags
    std::string_view help;
    bool runtime; // nflowctl set / SIGHUP can change it in a running daemon
};
const std::vector<OptionInfo>& option_table();

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

// Command line, then the --config file for what the command line did not set. Throws
// ConfigError (bad value) or std::runtime_error (unknown option, unreadable file). SIGHUP
// calls it again with the original argv to re-read the file.
CommandLine parse_command_line(int argc, const char* const argv[]);

} // namespace nflowd
