#include "nflowd/config.hpp"

#include "nflowd/privileges.hpp"

#include <boost/program_options.hpp>

#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <thread>

namespace po = boost::program_options;

namespace nflowd {

ConfigError::ConfigError(std::string_view option, std::string_view reason)
    : std::runtime_error("--" + std::string(option) + ": " + std::string(reason)), option_(option) {
}

namespace {

std::string quoted(std::string_view v) {
    return "got \"" + std::string(v) + "\"";
}

// Strict unsigned parse: the whole string, decimal, within [lo, hi].
std::uint64_t number(std::string_view name, std::string_view v, std::uint64_t lo, std::uint64_t hi,
                     std::string_view what) {
    std::uint64_t out = 0;
    const auto* end = v.data() + v.size();
    auto [p, ec] = std::from_chars(v.data(), end, out);
    if (v.empty() || ec != std::errc{} || p != end || out < lo || out > hi)
        throw ConfigError(name, std::string(what) + ", " + quoted(v));
    return out;
}

Nanos seconds(std::string_view name, std::string_view v) {
    const auto s = number(name, v, 1, 100'000'000, "must be a positive number of seconds");
    return static_cast<Nanos>(s) * kNanosPerSecond;
}

std::vector<std::uint16_t> parse_groups(std::string_view name, std::string_view v) {
    std::vector<std::uint16_t> out;
    std::string_view rest = v;
    while (true) {
        const auto comma = rest.find(',');
        const auto item = rest.substr(0, comma);
        const auto dash = item.find('-');
        const auto bad = "must be an NFLOG group 0-65535 or a range like 5-8";
        const auto lo = number(name, item.substr(0, dash), 0, 65535, bad);
        const auto hi = dash == std::string_view::npos
                            ? lo
                            : number(name, item.substr(dash + 1), 0, 65535, bad);
        if (hi < lo || hi - lo > 255) throw ConfigError(name, std::string(bad) + ", " + quoted(v));
        for (auto g = lo; g <= hi; ++g) out.push_back(static_cast<std::uint16_t>(g));
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
    }
    return out;
}

// A group name, or a number when it is all digits: what nflowctl's peers are compared to.
std::uint32_t lookup_group(std::string_view v) {
    if (std::all_of(v.begin(), v.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
        return static_cast<std::uint32_t>(
            number("control_group", v, 0, 0xfffffffe, "must be a group name or gid"));
    const std::string name(v);
    std::vector<char> buf(16384);
    group g{};
    group* found = nullptr;
    if (::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found) != 0 || found == nullptr)
        throw ConfigError("control_group", "no such group, " + quoted(v));
    return found->gr_gid;
}

struct Knob {
    OptionInfo info;
    std::function<void(Config&, std::string_view)> set;
    std::function<std::string(const Config&)> get;
};

std::string secs(Nanos n) {
    return std::to_string(n / kNanosPerSecond);
}

const std::vector<Knob>& knobs() {
    static const std::vector<Knob> table = {
        // input
        {{"read", "FILE", "read packets from a pcap file (- = stdin) instead of NFLOG", false},
         [](Config& c, std::string_view v) {
             if (v.empty()) throw ConfigError("read", "needs a file name");
             c.read_file = v;
         },
         [](const Config& c) { return c.read_file; }},
        {{"group", "N[-M]", "NFLOG group(s) to read; repeatable, ranges like 5-8", false},
         [](Config& c, std::string_view v) {
             for (auto g : parse_groups("group", v))
                 if (std::find(c.groups.begin(), c.groups.end(), g) == c.groups.end())
                     c.groups.push_back(g);
         },
         [](const Config& c) {
             std::string s;
             for (auto g : c.groups) s += (s.empty() ? "" : ",") + std::to_string(g);
             return s;
         }},
        {{"snaplen", "BYTES", "bytes of each packet copied by NFLOG (default 128)", false},
         [](Config& c, std::string_view v) {
             c.snaplen = static_cast<std::uint32_t>(
                 number("snaplen", v, 40, 65535, "must be 40-65535 bytes"));
         },
         [](const Config& c) { return std::to_string(c.snaplen); }},
        {{"qthreshold", "N", "packets the kernel queues per netlink message (default 64)", false},
         [](Config& c, std::string_view v) {
             c.qthreshold = static_cast<std::uint32_t>(
                 number("qthreshold", v, 1, 65535, "must be 1-65535 packets"));
         },
         [](const Config& c) { return std::to_string(c.qthreshold); }},
        {{"qtimeout", "CENTISECONDS", "longest the kernel holds a batch (default 10)", false},
         [](Config& c, std::string_view v) {
             c.qtimeout = static_cast<std::uint32_t>(
                 number("qtimeout", v, 0, 6000, "must be 0-6000 hundredths of a second"));
         },
         [](const Config& c) { return std::to_string(c.qtimeout); }},
        {{"nlbufsiz", "BYTES", "kernel netlink buffer per group (default and max 131072)", false},
         [](Config& c, std::string_view v) {
             c.nlbufsiz = static_cast<std::uint32_t>(
                 number("nlbufsiz", v, 4096, 131072, "must be 4096-131072 bytes"));
         },
         [](const Config& c) { return std::to_string(c.nlbufsiz); }},
        {{"rcvbuf", "BYTES", "socket receive buffer per group (default 67108864)", false},
         [](Config& c, std::string_view v) {
             c.rcvbuf = static_cast<int>(
                 number("rcvbuf", v, 65536, 1u << 30, "must be 65536-1073741824 bytes"));
         },
         [](const Config& c) { return std::to_string(c.rcvbuf); }},
        {{"threads", "N", "flow cache worker threads (default: number of CPUs)", false},
         [](Config& c, std::string_view v) {
             c.threads = number("threads", v, 1, 256, "must be 1-256 threads");
         },
         [](const Config& c) { return std::to_string(c.worker_threads()); }},
        // flow cache (ipt_NETFLOW names)
        {{"hashsize", "BUCKETS", "flow hash buckets, >= 256 (default from memory)", true},
         [](Config& c, std::string_view v) {
             c.table.hashsize =
                 number("hashsize", v, kMinHashsize, 1u << 28, "must be 256-268435456 buckets");
         },
         [](const Config& c) { return std::to_string(c.table.hashsize); }},
        {{"maxflows", "N", "most flows in the cache, 0 = unlimited (default 2000000)", true},
         [](Config& c, std::string_view v) {
             c.table.maxflows = number("maxflows", v, 0, std::numeric_limits<std::uint32_t>::max(),
                                       "must be a number of flows (0 = unlimited)");
         },
         [](const Config& c) { return std::to_string(c.table.maxflows); }},
        {{"inactive_timeout", "SECONDS", "export a flow idle this long (default 15)", true},
         [](Config& c, std::string_view v) {
             c.table.inactive_timeout = seconds("inactive_timeout", v);
         },
         [](const Config& c) { return secs(c.table.inactive_timeout); }},
        {{"active_timeout", "SECONDS", "export a flow this old (default 1800)", true},
         [](Config& c, std::string_view v) {
             c.table.active_timeout = seconds("active_timeout", v);
         },
         [](const Config& c) { return secs(c.table.active_timeout); }},
        {{"aggregation", "RULES", "e.g. 10.0.0.0/8=16,80-89=80 (default none)", true},
         [](Config& c, std::string_view v) {
             try {
                 c.aggregation = Aggregation::parse(v);
             } catch (const std::invalid_argument& e) {
                 throw ConfigError("aggregation", e.what());
             }
             c.aggregation_text = c.aggregation.to_string();
         },
         [](const Config& c) { return c.aggregation_text; }},
        // export (ipt_NETFLOW names)
        {{"destination", "A:P[,B:P]", "collectors, every datagram to each (default port 2055)",
          true},
         [](Config& c, std::string_view v) {
             try {
                 c.destinations = parse_destinations(v);
             } catch (const std::invalid_argument& e) {
                 throw ConfigError("destination", e.what());
             }
             std::string text;
             for (const auto& d : c.destinations) text += (text.empty() ? "" : ",") + d.text;
             c.destination_text = text;
         },
         [](const Config& c) { return c.destination_text; }},
        {{"sndbuf", "BYTES", "export socket send buffer, 0 = system default", true},
         [](Config& c, std::string_view v) {
             c.sndbuf =
                 static_cast<int>(number("sndbuf", v, 0, 1u << 30, "must be 0-1073741824 bytes"));
         },
         [](const Config& c) { return std::to_string(c.sndbuf); }},
        {{"engine_id", "N", "NetFlow v5 engine_id (default 0)", true},
         [](Config& c, std::string_view v) {
             c.engine_id =
                 static_cast<std::uint8_t>(number("engine_id", v, 0, 255, "must be 0-255"));
         },
         [](const Config& c) { return std::to_string(c.engine_id); }},
        {{"protocol", "5", "NetFlow version; only 5 is supported", true},
         [](Config& c, std::string_view v) {
             c.protocol = static_cast<std::uint8_t>(
                 number("protocol", v, 5, 5, "only NetFlow v5 is supported"));
         },
         [](const Config& c) { return std::to_string(c.protocol); }},
        {{"export_rate", "DATAGRAMS", "most datagrams/s in a burst, 0 = no pacing (default 20000)",
          true},
         [](Config& c, std::string_view v) {
             c.pacing.rate = static_cast<std::uint32_t>(number(
                 "export_rate", v, 0, 10'000'000, "must be 0-10000000 datagrams per second"));
         },
         [](const Config& c) { return std::to_string(c.pacing.rate); }},
        // daemon
        {{"debug", "LEVEL", "0 errors, 1 + notices, 2 + info, 3 + debug (default 0)", true},
         [](Config& c, std::string_view v) {
             c.debug = static_cast<int>(number("debug", v, 0, 3, "must be 0-3"));
         },
         [](const Config& c) { return std::to_string(c.debug); }},
        {{"log", "stderr|syslog", "where to log (default stderr)", false},
         [](Config& c, std::string_view v) {
             if (v != "stderr" && v != "syslog")
                 throw ConfigError("log", "must be stderr or syslog, " + quoted(v));
             c.log = v;
         },
         [](const Config& c) { return c.log; }},
        {{"pidfile", "FILE", "write the daemon's PID here", false},
         [](Config& c, std::string_view v) { c.pidfile = v; },
         [](const Config& c) { return c.pidfile; }},
        {{"user", "USER", "after binding, drop root for USER's uid, gid and groups", false},
         [](Config& c, std::string_view v) {
             lookup_user(std::string(v)); // an unknown user fails now, not after binding
             c.user = v;
         },
         [](const Config& c) { return c.user; }},
        {{"control_id", "PORTID", "netlink port id of the control channel", false},
         [](Config& c, std::string_view v) {
             c.control_id = static_cast<std::uint32_t>(
                 number("control_id", v, 1, 0x7fffffff, "must be a port id 1-2147483647"));
         },
         [](const Config& c) { return std::to_string(c.control_id); }},
        {{"control_group", "GROUP", "may nflowctl set/flush besides root (name or gid)", false},
         [](Config& c, std::string_view v) {
             if (v.empty()) {
                 c.control_group.reset();
                 c.control_group_text.clear();
                 return;
             }
             c.control_group = lookup_group(v);
             c.control_group_text = v;
         },
         [](const Config& c) { return c.control_group_text; }},
        {{"config", "FILE", "read options from FILE (key = value, same names)", false},
         [](Config& c, std::string_view v) { c.config_file = v; },
         [](const Config& c) { return c.config_file; }},
    };
    return table;
}

const Knob& find_knob(std::string_view name) {
    const auto key = canonical_option_name(name);
    for (const auto& k : knobs())
        if (k.info.name == key) return k;
    throw ConfigError(key, "unknown option");
}

std::string help_text() {
    std::ostringstream out;
    out << "Usage: nflowd [OPTION]...\n"
           "Export NetFlow v5 for the packets an iptables/nftables NFLOG rule delivers.\n\n"
           "  -h, --help               this text\n"
           "  -V, --version            print the version\n";
    for (const auto& k : knobs()) {
        std::string left = "      --" + std::string(k.info.name);
        if (!k.info.argument.empty()) left += " " + std::string(k.info.argument);
        out << left;
        if (left.size() < 27)
            out << std::string(27 - left.size(), ' ');
        else
            out << "\n" << std::string(27, ' ');
        out << k.info.help << (k.info.runtime ? " [runtime]" : "") << "\n";
    }
    out << "\nDashes and underscores in option names are interchangeable. Options marked\n"
           "[runtime] can be changed in a running daemon (nflowctl set, or SIGHUP).\n";
    return out.str();
}

// Boost.Program_options keeps the last spelling; "--active-timeout" becomes "--active_timeout".
std::vector<std::string> normalise_args(int argc, const char* const argv[]) {
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("--", 0) == 0) {
            const auto eq = a.find('=');
            std::replace(a.begin(), eq == std::string::npos ? a.end() : a.begin() + eq, '-', '_');
            a[0] = a[1] = '-';
        }
        args.push_back(std::move(a));
    }
    return args;
}

po::options_description describe() {
    po::options_description d;
    d.add_options()("help,h", "")("version,V", "");
    for (const auto& k : knobs()) {
        const std::string n(k.info.name);
        if (n == "group" || n == "destination")
            d.add_options()(n.c_str(), po::value<std::vector<std::string>>()->composing(), "");
        else
            d.add_options()(n.c_str(), po::value<std::string>(), "");
    }
    return d;
}

void apply_map(Config& config, const po::variables_map& vm) {
    for (const auto& k : knobs()) {
        const std::string n(k.info.name);
        if (!vm.count(n) || n == "config") continue;
        if (n == "group") {
            for (const auto& v : vm[n].as<std::vector<std::string>>()) k.set(config, v);
        } else if (n == "destination") {
            std::string all;
            for (const auto& v : vm[n].as<std::vector<std::string>>())
                all += (all.empty() ? "" : ",") + v;
            k.set(config, all);
        } else {
            k.set(config, vm[n].as<std::string>());
        }
    }
}

} // namespace

std::size_t Config::worker_threads() const noexcept {
    if (threads) return threads;
    const auto n = std::thread::hardware_concurrency();
    return n ? n : 1;
}

std::size_t default_hashsize() noexcept {
    // ipt_NETFLOW sized its hash from physical memory; one bucket per 128 KiB of RAM,
    // rounded down to a power of two, within [256, 4M].
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page = ::sysconf(_SC_PAGESIZE);
    const std::uint64_t mem =
        pages > 0 && page > 0 ? std::uint64_t(pages) * std::uint64_t(page) : std::uint64_t{1} << 30;
    std::size_t want = static_cast<std::size_t>(mem / (128 * 1024));
    want = std::clamp<std::size_t>(want, kMinHashsize, std::size_t{1} << 22);
    return std::bit_floor(want);
}

Config default_config() {
    Config c;
    c.table.hashsize = default_hashsize();
    apply_option(c, "destination", "127.0.0.1:2055"); // ipt_NETFLOW's default
    return c;
}

const std::vector<OptionInfo>& option_table() {
    static const std::vector<OptionInfo> infos = [] {
        std::vector<OptionInfo> v;
        for (const auto& k : knobs()) v.push_back(k.info);
        return v;
    }();
    return infos;
}

std::string canonical_option_name(std::string_view name) {
    std::string s(name);
    std::replace(s.begin(), s.end(), '-', '_');
    return s;
}

const OptionInfo* find_option(std::string_view name) {
    const auto key = canonical_option_name(name);
    for (const auto& o : option_table())
        if (o.name == key) return &o;
    return nullptr;
}

void apply_option(Config& config, std::string_view name, std::string_view value) {
    find_knob(name).set(config, value);
}

std::string option_value(const Config& config, std::string_view name) {
    return find_knob(name).get(config);
}

CommandLine parse_command_line(int argc, const char* const argv[]) {
    CommandLine cl;
    cl.config = default_config();
    const auto desc = describe();
    const auto args = normalise_args(argc, argv);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(desc).run(), vm);
        if (vm.count("config")) {
            const auto path = vm["config"].as<std::string>();
            std::ifstream file(path);
            if (!file) throw std::runtime_error("--config: cannot read \"" + path + "\"");
            po::store(po::parse_config_file(file, desc), vm);
            cl.config.config_file = path;
        }
    } catch (const po::error& e) {
        throw std::runtime_error(e.what());
    }
    if (vm.count("help")) {
        cl.action = Action::help;
        cl.text = help_text();
        return cl;
    }
    if (vm.count("version")) {
        cl.action = Action::version;
        cl.text = std::string("nflowd ") + NFLOWD_VERSION + "\n";
        return cl;
    }
    apply_map(cl.config, vm);
    if (cl.config.read_file.empty() && cl.config.groups.empty())
        throw ConfigError("group", "give at least one NFLOG group (or --read FILE)");
    if (!cl.config.read_file.empty() && !cl.config.groups.empty())
        throw ConfigError("read", "cannot be combined with --group");
    return cl;
}

} // namespace nflowd
