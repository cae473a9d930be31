// nflowctl: reads and changes a running nflowd over its netlink control channel, as sysctl
// and /proc/net/stat/ipt_netflow did for ipt_NETFLOW. Thin: arguments in, text out.
#include "nflowd/control_client.hpp"
#include "nflowd/control_protocol.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

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
    "  stats [--json]              statistics, as /proc/net/stat/ipt_netflow showed them\n"
    "  flows [--top N] [--sort bytes|packets]\n"
    "                              the flows in the cache, as ipt_netflow_flows\n"
    "  flush [1|2]                 export every flow now; 2 also zeroes the statistics, as\n"
    "                              `set flush 2` (root or --control_group)\n"
    "\n"
    "Options:\n"
    "  -i, --control-id PORTID     the daemon's --control_id (default 1852206199)\n"
    "  -t, --timeout SECONDS       how long to wait for each answer (default 5)\n"
    "  -h, --help                  this text\n"
    "  -V, --version               print the version\n"
    "\n"
    "Exit status: 0 ok, 1 refused or invalid value, 2 usage, 3 nflowd not reachable.\n";

struct UsageError {
    std::string message;
};

std::uint64_t parse_number(std::string_view what, std::string_view v, std::uint64_t lo,
                           std::uint64_t hi) {
    std::uint64_t n = 0;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc{} || p != v.data() + v.size() || n < lo || n > hi)
        throw UsageError{std::string(what) + " must be " + std::to_string(lo) + "-" +
                         std::to_string(hi) + ", got \"" + std::string(v) + "\""};
    return n;
}

void print_knobs(const std::vector<ctl::KnobValue>& knobs) {
    for (const auto& k : knobs) std::cout << k.name << " = " << k.value << "\n";
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

int run_flows(ControlClient& client, const std::vector<std::string>& args) {
    std::uint32_t top = 0;
    ctl::FlowSort sort = ctl::FlowSort::none;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if ((a == "--top" || a == "--sort") && i + 1 >= args.size())
            throw UsageError{"flows: " + a + " needs a value"};
        if (a == "--top") {
            top = static_cast<std::uint32_t>(parse_number("--top", args[++i], 1, 0xffffffff));
        } else if (a == "--sort") {
            const auto& v = args[++i];
            if (v == "bytes")
                sort = ctl::FlowSort::bytes;
            else if (v == "packets")
                sort = ctl::FlowSort::packets;
            else
                throw UsageError{"--sort must be bytes or packets, got \"" + v + "\""};
        } else {
            throw UsageError{"flows: unexpected argument \"" + a + "\""};
        }
    }
    nflowd::Nanos now = 0;
    client.flows(
        top, sort,
        [&](std::uint64_t total, nflowd::Nanos t) {
            now = t;
            std::cout << "# " << total << " active flows";
            if (top != 0 && top < total) std::cout << ", top " << top;
            if (sort != ctl::FlowSort::none)
                std::cout << " by " << (sort == ctl::FlowSort::bytes ? "bytes" : "packets");
            std::cout << "\n";
            std::printf("%-5s %-21s %-21s %3s %5s %5s %10s %12s %6s %7s %7s\n", "proto", "src",
                        "dst", "tos", "in", "out", "packets", "bytes", "flags", "age", "idle");
            std::fflush(stdout);
        },
        [&](const nflowd::FlowRecord& f) {
            const auto src = address(f.key.src_addr) + ":" + std::to_string(f.key.src_port);
            const auto dst = address(f.key.dst_addr) + ":" + std::to_string(f.key.dst_port);
            const double age = static_cast<double>(now - f.first) / 1e9;
            const double idle = static_cast<double>(now - f.last) / 1e9;
            std::printf("%-5s %-21s %-21s %3u %5u %5u %10u %12u %6s %7.1f %7.1f\n",
                        protocol_name(f.key.protocol).c_str(), src.c_str(), dst.c_str(), f.key.tos,
                        f.key.in_if, f.out_if, f.packets, f.octets, tcp_flags(f.tcp_flags).c_str(),
                        age < 0 ? 0.0 : age, idle < 0 ? 0.0 : idle);
        });
    std::fflush(stdout);
    return kExitOk;
}

int run(int argc, char** argv) {
    std::uint32_t port = ctl::kDefaultPortId;
    int timeout_ms = 5000;
    std::vector<std::string> args(argv + 1, argv + argc);
    std::size_t i = 0;
    // Options come before the command; the command's own (--json, --top) after it.
    for (; i < args.size() && args[i].size() > 1 && args[i][0] == '-'; ++i) {
        const auto& a = args[i];
        if (a == "-h" || a == "--help") {
            std::cout << kUsage;
            return kExitOk;
        }
        if (a == "-V" || a == "--version") {
            std::cout << "nflowctl " << NFLOWD_VERSION << "\n";
            return kExitOk;
        }
        std::string name = a, value;
        if (const auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
            name = a.substr(0, eq);
            value = a.substr(eq + 1);
        } else if (a == "-i" || a == "-t" || a == "--control-id" || a == "--control_id" ||
                   a == "--timeout") {
            if (i + 1 >= args.size()) throw UsageError{a + " needs a value"};
            value = args[++i];
        } else {
            throw UsageError{"unknown option \"" + a + "\""};
        }
        if (name == "-i" || name == "--control-id" || name == "--control_id")
            port = static_cast<std::uint32_t>(parse_number("the control id", value, 1, 0x7fffffff));
        else if (name == "-t" || name == "--timeout")
            timeout_ms = static_cast<int>(parse_number("the timeout", value, 1, 3600)) * 1000;
        else
            throw UsageError{"unknown option \"" + name + "\""};
    }
    const std::string command = i < args.size() ? args[i++] : "list";
    const std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());

    // Everything the daemon need not see is checked before a socket is opened.
    std::vector<std::pair<std::string, std::string>> changes;
    if (command == "set") {
        for (std::size_t k = 0; k < rest.size(); ++k) {
            const auto eq = rest[k].find('=');
            if (eq != std::string::npos) {
                changes.emplace_back(rest[k].substr(0, eq), rest[k].substr(eq + 1));
            } else if (k + 1 < rest.size()) {
                changes.emplace_back(rest[k], rest[k + 1]);
                ++k;
            } else {
                throw UsageError{"set: " + rest[k] + " needs a value (NAME VALUE or NAME=VALUE)"};
            }
        }
        if (changes.empty()) throw UsageError{"set: give NAME VALUE or NAME=VALUE"};
    } else if (command == "get") {
        if (rest.empty()) throw UsageError{"get: name at least one knob"};
    } else if (command == "list") {
        if (!rest.empty()) throw UsageError{"list: unexpected argument \"" + rest[0] + "\""};
    } else if (command == "flush") {
        if (rest.size() > 1 || (rest.size() == 1 && rest[0] != "1" && rest[0] != "2"))
            throw UsageError{"flush: the level is 1 (export every flow) or 2 (also zero the "
                             "statistics)"};
    } else if (command == "stats") {
        if (!rest.empty() && !(rest.size() == 1 && rest[0] == "--json"))
            throw UsageError{"stats: the only option is --json"};
    } else if (command != "flows") {
        throw UsageError{"unknown command \"" + command + "\""};
    }

    ControlClient client(port, timeout_ms);
    if (command == "list") {
        print_knobs(client.list());
    } else if (command == "get") {
        print_knobs(client.get(rest));
    } else if (command == "set") {
        print_knobs(client.set(changes));
    } else if (command == "stats") {
        std::cout << client.stats(rest.empty() ? ctl::StatsFormat::text : ctl::StatsFormat::json);
    } else if (command == "flows") {
        return run_flows(client, rest);
    } else if (command == "flush") {
        const std::uint8_t level = !rest.empty() && rest[0] == "2" ? 2 : 1;
        client.flush(level);
        std::cout << "flush = " << int{level} << "\n";
    }
    return kExitOk;
}

} // namespace

int main(int argc, char* argv[]) {
    try {
        return run(argc, argv);
    } catch (const UsageError& e) {
        std::cerr << "nflowctl: " << e.message << "\n(nflowctl --help lists the commands)\n";
        return kExitUsage;
    } catch (const ControlClientError& e) {
        std::cout.flush();
        std::cerr << "nflowctl: " << e.what() << "\n";
        return e.kind() == ControlClientError::Kind::unreachable ? kExitUnreachable : kExitRefused;
    } catch (const std::exception& e) {
        std::cerr << "nflowctl: " << e.what() << "\n";
        return kExitRefused;
    }
}
