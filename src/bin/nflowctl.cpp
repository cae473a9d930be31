// nflowctl: reads and changes a running nflowd over its netlink control channel, as sysctl
// and /proc/net/stat/ipt_netflow did for ipt_NETFLOW. Thin: arguments in, text out.
// Error idiom: everything throws, main() alone catches: UsageError exits 2,
// ControlClientError 1 or 3, any other std::exception 1.
#include "nflowd/control_client.hpp"
#include "nflowd/control_endpoint.hpp"
#include "nflowd/control_protocol.hpp"
#include "nflowd/number.hpp"

#include <boost/program_options.hpp>

#include <arpa/inet.h>
#include <net/if.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace po = boost::program_options;
using nflowd::ControlClient;
using nflowd::ControlClientError;
namespace ctl = nflowd::ctl;

constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

constexpr const char* kUsage =
    "Usage: nflowctl [-i PORTID] [-t SECONDS] [COMMAND [ARGUMENT]...]\n"
    "Read and change a running nflowd over its netlink control channel.\n"
    "\n"
    "Commands:\n"
    "  list                        every knob, \"name = value\" one a line (the default)\n"
    "  get NAME...                 the named knobs\n"
    "  set NAME VALUE | NAME=VALUE...\n"
    "                              change knobs, all or nothing (root or --control_group)\n"
    "  stats [--json | --prometheus]\n"
    "                              statistics, as /proc/net/stat/ipt_netflow showed them;\n"
    "                              --prometheus: the Prometheus text format\n"
    "  flows [--top N] [--sort bytes|packets]\n"
    "                              the flows in the cache, as ipt_netflow_flows (root or\n"
    "                              --control_group)\n"
    "  flush [1|2]                 export every flow now; 2 also zeroes the statistics, as\n"
    "                              `set flush 2` (root or --control_group)\n"
    "  send-template               send the v9/IPFIX templates to every destination now, as\n"
    "                              `set send_template 1` (root or --control_group)\n"
    "\n"
    "Options:\n"
    "  -i, --control-id PORTID     the daemon's --control_id (default 1852206199); its real\n"
    "                              port id and pid are read from /run/nflowd\n"
    "  -t, --timeout SECONDS       how long to wait for each answer (default 5)\n"
    "  -h, --help                  this text\n"
    "  -V, --version               print the version\n"
    "\n"
    "Exit status: 0 ok, 1 refused or invalid value, 2 usage, 3 nflowd not reachable.\n";

// Bad command line: exit 2 with the message and a pointer to --help. An exception like the
// others so one catch order in main() maps every failure to its exit status.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::uint64_t parse_number(std::string_view what, std::string_view v, std::uint64_t lo,
                           std::uint64_t hi) {
    const auto n = nflowd::parse_unsigned(v, lo, hi);
    if (!n)
        throw UsageError(std::string(what) + " must be " + std::to_string(lo) + "-" +
                         std::to_string(hi) + ", got \"" + std::string(v) + "\"");
    return *n;
}

// Whatever the daemon (or anything else) sent goes to a terminal: control characters (C0,
// DEL, and C1 as UTF-8) are dropped so that no escape sequence reaches it. keep_lines keeps
// newlines and tabs (statistics text).
std::string printable(std::string_view in, bool keep_lines = false) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const auto c = static_cast<unsigned char>(in[i]);
        if (keep_lines && (c == '\n' || c == '\t')) {
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            continue;
        } else if (c == 0xc2 && i + 1 < in.size() &&
                   static_cast<unsigned char>(in[i + 1]) >= 0x80 &&
                   static_cast<unsigned char>(in[i + 1]) <= 0x9f) {
            ++i; // U+0080..U+009F
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

void print_knobs(const std::vector<ctl::KnobValue>& knobs) {
    for (const auto& k : knobs)
        std::cout << printable(k.name) << " = " << printable(k.value) << "\n";
}

std::string address(std::uint32_t host_order) {
    const in_addr a{htonl(host_order)};
    char buf[INET_ADDRSTRLEN];
    return inet_ntop(AF_INET, &a, buf, sizeof buf) ? buf : "?";
}

std::string protocol_name(std::uint8_t p) {
    switch (p) {
    case 1:
        return "icmp";
    case 6:
        return "tcp";
    case 17:
        return "udp";
    case 47:
        return "gre";
    case 50:
        return "esp";
    case 58:
        return "icmp6";
    case 132:
        return "sctp";
    default:
        return std::to_string(p);
    }
}

std::string tcp_flags(std::uint8_t f) {
    static constexpr char kLetters[] = "UAPRSF"; // 0x20 .. 0x01
    std::string s;
    for (int bit = 5; bit >= 0; --bit) s += (f & (1u << bit)) ? kLetters[5 - bit] : '.';
    return s;
}

// Program_options errors in nflowctl's own words, which the tests and users know.
[[noreturn]] void usage_error(const po::error& e, std::string_view context = {}) {
    const std::string prefix = context.empty() ? "" : std::string(context) + ": ";
    if (const auto* u = dynamic_cast<const po::unknown_option*>(&e))
        throw UsageError(prefix + "unknown option \"" + u->get_option_name() + "\"");
    if (const auto* m = dynamic_cast<const po::invalid_command_line_syntax*>(&e);
        m && m->kind() == po::invalid_command_line_syntax::missing_parameter)
        throw UsageError(prefix + m->get_option_name() + " needs a value");
    throw UsageError(prefix + e.what());
}

// getopt's "+": the first word that is not an option is the command, and it and everything
// after it are positional, so the command's own options (--json, --top) are not taken for
// nflowctl's.
std::vector<po::option> command_and_rest(std::vector<std::string>& tokens) {
    std::vector<po::option> out;
    if (tokens.empty() || (tokens.front().size() > 1 && tokens.front().front() == '-')) return out;
    for (auto& t : tokens) {
        po::option o;
        o.value.push_back(t);
        o.original_tokens.push_back(t);
        out.push_back(std::move(o));
    }
    tokens.clear();
    return out;
}

constexpr auto kStyle = po::command_line_style::default_style &
                        ~po::command_line_style::allow_guessing &
                        ~po::command_line_style::allow_sticky;

// Parses the arguments of a command that takes options only (stats, flows).
po::variables_map command_options(std::string_view command, const po::options_description& d,
                                  const std::vector<std::string>& rest) {
    po::variables_map vm;
    try {
        const auto parsed = po::command_line_parser(rest).options(d).style(kStyle).run();
        for (const auto& o : parsed.options)
            if (o.string_key.empty())
                throw UsageError(std::string(command) + ": unexpected argument \"" +
                                 o.original_tokens.front() + "\"");
        po::store(parsed, vm);
        po::notify(vm);
    } catch (const po::error& e) {
        usage_error(e, command);
    }
    return vm;
}

struct FlowsQuery {
    std::uint32_t top = 0;
    ctl::FlowSort sort = ctl::FlowSort::none;
};

FlowsQuery flows_query(const std::vector<std::string>& rest) {
    po::options_description d;
    d.add_options()("top", po::value<std::string>())("sort", po::value<std::string>());
    const auto vm = command_options("flows", d, rest);
    FlowsQuery q;
    if (vm.count("top"))
        q.top = static_cast<std::uint32_t>(
            parse_number("--top", vm["top"].as<std::string>(), 1, 0xffffffff));
    if (vm.count("sort")) {
        const auto& v = vm["sort"].as<std::string>();
        if (v == "bytes")
            q.sort = ctl::FlowSort::bytes;
        else if (v == "packets")
            q.sort = ctl::FlowSort::packets;
        else
            throw UsageError("--sort must be bytes or packets, got \"" + v + "\"");
    }
    return q;
}

ctl::StatsFormat stats_format(const std::vector<std::string>& rest) {
    po::options_description d;
    d.add_options()("json", po::bool_switch())("prometheus", po::bool_switch());
    po::variables_map vm;
    try {
        vm = command_options("stats", d, rest);
    } catch (const UsageError&) {
        throw UsageError("stats: the only options are --json and --prometheus");
    }
    const bool json = vm["json"].as<bool>();
    const bool prometheus = vm["prometheus"].as<bool>();
    if (json && prometheus) throw UsageError("stats: --json or --prometheus, not both");
    return json         ? ctl::StatsFormat::json
           : prometheus ? ctl::StatsFormat::prometheus
                        : ctl::StatsFormat::text;
}

void print_flows_header(const FlowsQuery& q, std::uint64_t total) {
    std::cout << "# " << total << " active flows";
    if (q.top != 0 && q.top < total) std::cout << ", top " << q.top;
    if (q.sort != ctl::FlowSort::none)
        std::cout << " by " << (q.sort == ctl::FlowSort::bytes ? "bytes" : "packets");
    std::cout << "\n";
    std::printf("%-5s %-21s %-21s %3s %8s %8s %10s %12s %6s %7s %7s\n", "proto", "src", "dst",
                "tos", "in", "out", "packets", "bytes", "flags", "age", "idle");
    std::fflush(stdout);
}

// An IPv6 address in brackets before its port, as in URLs (RFC 3986).
std::string endpoint(const nflowd::FlowRecord& f, bool source) {
    const auto port = std::to_string(source ? f.key.src_port : f.key.dst_port);
    if (f.family != nflowd::Family::ipv6)
        return address(source ? f.key.src_addr : f.key.dst_addr) + ":" + port;
    char buf[INET6_ADDRSTRLEN];
    const auto& a = source ? f.src6 : f.dst6;
    return std::string("[") + (inet_ntop(AF_INET6, a.data(), buf, sizeof buf) ? buf : "?") +
           "]:" + port;
}

// The interface's name in nflowctl's namespace, which is the daemon's (the control channel
// is a netlink socket: it reaches a daemon of the same network namespace only); the number
// when it has none (gone, or 0 for no interface). Linux takes any byte but '/', ':' and
// whitespace in a name, so bytes outside printable ASCII (and '\\') are shown as \xNN: a
// name must not drive the terminal.
std::string interface_name(std::uint32_t ifindex) {
    char buf[IF_NAMESIZE] = {};
    if (ifindex == 0 || if_indextoname(ifindex, buf) == nullptr) return std::to_string(ifindex);
    std::string out;
    for (const char* p = buf; *p != '\0'; ++p) {
        const auto c = static_cast<unsigned char>(*p);
        if (c >= 0x21 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    return out;
}

void print_flow(const nflowd::FlowRecord& f, nflowd::Nanos now) {
    const auto src = endpoint(f, true);
    const auto dst = endpoint(f, false);
    const auto in = interface_name(f.key.in_if);
    const auto out = interface_name(f.out_if);
    const double age = static_cast<double>(now - f.first) / 1e9;
    const double idle = static_cast<double>(now - f.last) / 1e9;
    std::printf("%-5s %-21s %-21s %3u %8s %8s %10u %12u %6s %7.1f %7.1f\n",
                protocol_name(f.key.protocol).c_str(), src.c_str(), dst.c_str(), f.key.tos,
                in.c_str(), out.c_str(), f.packets, f.octets, tcp_flags(f.tcp_flags).c_str(),
                age < 0 ? 0.0 : age, idle < 0 ? 0.0 : idle);
}

void run_flows(ControlClient& client, const FlowsQuery& q) {
    nflowd::Nanos now = 0;
    client.flows(
        q.top, q.sort,
        [&](std::uint64_t total, nflowd::Nanos t) {
            now = t;
            print_flows_header(q, total);
        },
        [&](const nflowd::FlowRecord& f) { print_flow(f, now); });
    std::fflush(stdout);
}

// NAME VALUE pairs or NAME=VALUE words, in the order given.
std::vector<std::pair<std::string, std::string>> set_changes(const std::vector<std::string>& rest) {
    std::vector<std::pair<std::string, std::string>> changes;
    for (std::size_t k = 0; k < rest.size(); ++k) {
        const auto eq = rest[k].find('=');
        if (eq != std::string::npos) {
            changes.emplace_back(rest[k].substr(0, eq), rest[k].substr(eq + 1));
        } else if (k + 1 < rest.size()) {
            changes.emplace_back(rest[k], rest[k + 1]);
            ++k;
        } else {
            throw UsageError("set: " + rest[k] + " needs a value (NAME VALUE or NAME=VALUE)");
        }
    }
    if (changes.empty()) throw UsageError("set: give NAME VALUE or NAME=VALUE");
    return changes;
}

std::uint8_t flush_level(const std::vector<std::string>& rest) {
    if (rest.size() > 1 || (rest.size() == 1 && rest[0] != "1" && rest[0] != "2"))
        throw UsageError("flush: the level is 1 (export every flow) or 2 (also zero the "
                         "statistics)");
    return !rest.empty() && rest[0] == "2" ? 2 : 1;
}

// One parsed command line. Everything the daemon need not see is checked here, before a
// socket is opened.
struct Invocation {
    enum class Action { run, help, version } action = Action::run;
    std::uint32_t port = ctl::kDefaultPortId;
    int timeout_ms = 5000;
    std::string command = "list";
    std::vector<std::string> rest;
};

Invocation parse_command_line(int argc, char** argv) {
    po::options_description d;
    d.add_options()("help,h", "")("version,V", "")("control-id,i", po::value<std::string>())(
        "control_id", po::value<std::string>())("timeout,t", po::value<std::string>())(
        "command", po::value<std::string>())("rest", po::value<std::vector<std::string>>());
    po::positional_options_description pos;
    pos.add("command", 1).add("rest", -1);
    po::parsed_options parsed(&d);
    try {
        parsed = po::command_line_parser(argc, argv)
                     .options(d)
                     .positional(pos)
                     .style(kStyle)
                     .extra_style_parser(command_and_rest)
                     .run();
    } catch (const po::error& e) {
        usage_error(e);
    }
    // In the order given, so that a repeated option (ctl wrappers adding their own -i) keeps
    // its last value, as always.
    Invocation inv;
    for (const auto& o : parsed.options) {
        const std::string value = o.value.empty() ? "" : o.value.front();
        // -h and -V answer at once, whatever follows, as they always did.
        if (o.string_key == "help" || o.string_key == "version") {
            inv.action =
                o.string_key == "help" ? Invocation::Action::help : Invocation::Action::version;
            break;
        }
        if (o.string_key == "control-id" || o.string_key == "control_id")
            inv.port =
                static_cast<std::uint32_t>(parse_number("the control id", value, 1, 0x7fffffff));
        else if (o.string_key == "timeout")
            inv.timeout_ms = static_cast<int>(parse_number("the timeout", value, 1, 3600)) * 1000;
        else if (o.string_key == "command")
            inv.command = value;
        else if (o.string_key == "rest")
            inv.rest.push_back(value);
    }
    return inv;
}

// The daemon of this network namespace and control id, as it published itself.
ControlClient connect(const Invocation& inv) {
    return ControlClient(nflowd::read_endpoint(nflowd::ctl::kRuntimeDir, inv.port), inv.timeout_ms);
}

// Validates the command's arguments, then asks the daemon.
int execute(const Invocation& inv) {
    const auto& rest = inv.rest;
    const auto& command = inv.command;
    if (command == "set") {
        const auto changes = set_changes(rest);
        auto client = connect(inv);
        print_knobs(client.set(changes));
    } else if (command == "get") {
        if (rest.empty()) throw UsageError("get: name at least one knob");
        auto client = connect(inv);
        print_knobs(client.get(rest));
    } else if (command == "list") {
        if (!rest.empty()) throw UsageError("list: unexpected argument \"" + rest[0] + "\"");
        auto client = connect(inv);
        print_knobs(client.list());
    } else if (command == "flush") {
        const std::uint8_t level = flush_level(rest);
        auto client = connect(inv);
        client.flush(level);
        std::cout << "flush = " << int{level} << "\n";
    } else if (command == "send-template") {
        if (!rest.empty())
            throw UsageError("send-template: unexpected argument \"" + rest[0] + "\"");
        auto client = connect(inv);
        // A trigger knob, like flush: the control protocol needs no command of its own.
        print_knobs(client.set({{"send_template", "1"}}));
    } else if (command == "stats") {
        const auto format = stats_format(rest);
        auto client = connect(inv);
        std::cout << printable(client.stats(format), true);
    } else if (command == "flows") {
        const auto query = flows_query(rest);
        auto client = connect(inv);
        run_flows(client, query);
    } else {
        throw UsageError("unknown command \"" + command + "\"");
    }
    return kExitOk;
}

int run(int argc, char** argv) {
    const Invocation inv = parse_command_line(argc, argv);
    switch (inv.action) {
    case Invocation::Action::help:
        std::cout << kUsage;
        return kExitOk;
    case Invocation::Action::version:
        std::cout << "nflowctl " << NFLOWD_VERSION << "\n";
        return kExitOk;
    case Invocation::Action::run:
        break;
    }
    return execute(inv);
}

} // namespace

int main(int argc, char* argv[]) {
    try {
        return run(argc, argv);
    } catch (const UsageError& e) {
        std::cerr << "nflowctl: " << e.what() << "\n(nflowctl --help lists the commands)\n";
        return kExitUsage;
    } catch (const ControlClientError& e) {
        std::cout.flush();
        std::cerr << "nflowctl: " << printable(e.what()) << "\n";
        return e.kind() == ControlClientError::Kind::unreachable ? kExitUnreachable : kExitRefused;
    } catch (const std::exception& e) {
        std::cerr << "nflowctl: " << printable(e.what()) << "\n";
        return kExitRefused;
    }
}
