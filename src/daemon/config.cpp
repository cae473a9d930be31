// The public face of the option table: defaults, lookup by name, typed diff, --help, and the
// command line and --config file through Boost.Program_options.
#include "nflowd/config.hpp"

#include "option_codecs.hpp"
#include "option_def.hpp"

#include <boost/program_options.hpp>

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <fstream>
#include <sstream>

namespace po = boost::program_options;

namespace nflowd {

using options::option_defs;
using options::OptionDef;

ConfigError::ConfigError(std::string_view option, std::string_view reason)
    : std::runtime_error("--" + std::string(option) + ": " + std::string(reason)), option_(option) {
}

namespace {

const OptionDef& def(Opt option) {
    return *option_defs()[static_cast<std::size_t>(option)];
}

const OptionDef& find_def(std::string_view name) {
    const auto key = canonical_option_name(name);
    for (const auto& d : option_defs())
        if (d->info().name == key) return *d;
    throw ConfigError(key, "unknown option");
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

// The file's names are spelled like the command line's: "active-timeout = 60" is
// "active_timeout = 60", as nflowd.conf(5) promises; values are left alone.
std::istringstream normalise_file(std::istream& file) {
    std::string out;
    std::string line;
    while (std::getline(file, line)) {
        const auto start = line.find_first_not_of(" \t");
        const auto eq = line.find('=');
        if (start != std::string::npos && line[start] != '#' && eq != std::string::npos)
            std::replace(line.begin() + static_cast<std::ptrdiff_t>(start),
                         line.begin() + static_cast<std::ptrdiff_t>(eq), '-', '_');
        out += line + "\n";
    }
    return std::istringstream(out);
}

po::options_description describe() {
    po::options_description d;
    d.add_options()("help,h", "")("version,V", "");
    for (const auto& o : option_defs()) {
        const std::string name(o->info().name);
        // option_description owns the semantic from here on.
        d.add_options()(name.c_str(), o->semantic().release(), "");
    }
    return d;
}

void store_map(Config& config, const po::variables_map& vm) {
    for (const auto& o : option_defs()) {
        const std::string name(o->info().name);
        if (vm.count(name)) o->store(config, vm[name]);
    }
}

po::variables_map parse_sources(int argc, const char* const argv[],
                                const po::options_description& desc) {
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(normalise_args(argc, argv)).options(desc).run(), vm);
        if (vm.count("config")) {
            const auto path = vm["config"].as<options::Parsed<std::string>>().value;
            std::ifstream file(path);
            if (!file) throw std::runtime_error("--config: cannot read \"" + path + "\"");
            // Stored second: what the command line set stays, group and destination add up.
            auto text = normalise_file(file);
            po::store(po::parse_config_file(text, desc), vm);
        }
    } catch (const po::error& e) {
        throw std::runtime_error(e.what());
    }
    return vm;
}

} // namespace

std::size_t Config::worker_threads() const noexcept {
    return options::threads_or_cpus(threads);
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

bool exports_ipv6(const Config& config) noexcept {
    return std::any_of(config.destinations.begin(), config.destinations.end(), [&](const auto& d) {
        return d.protocol.value_or(config.format.protocol) != ExportProtocol::v5;
    });
}

const std::vector<OptionInfo>& option_table() {
    static const std::vector<OptionInfo> infos = [] {
        const Config defaults = default_config();
        std::vector<OptionInfo> v;
        for (const auto& o : option_defs()) {
            v.push_back(o->info());
            const auto note = o->default_note();
            v.back().default_text = note.empty() ? o->get(defaults) : std::string(note);
        }
        return v;
    }();
    return infos;
}

const OptionInfo& option_info(Opt option) {
    return option_table()[static_cast<std::size_t>(option)];
}

OptionSet diff(const Config& a, const Config& b) {
    OptionSet changed;
    for (const auto& o : option_defs())
        if (!o->equal(a, b)) changed.set(o->info().id);
    return changed;
}

void copy_option(Opt option, const Config& from, Config& to) {
    def(option).copy(from, to);
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
    find_def(name).set(config, value);
}

std::string option_value(const Config& config, std::string_view name) {
    return find_def(name).get(config);
}

std::string help_text() {
    std::ostringstream out;
    out << "Usage: nflowd [OPTION]...\n"
           "Export NetFlow v5 for the packets an iptables/nftables NFLOG rule delivers.\n\n"
           "  -h, --help               this text\n"
           "  -V, --version            print the version\n";
    for (const auto& o : option_table()) {
        std::string left = "      --" + std::string(o.name);
        if (!o.argument.empty()) left += " " + std::string(o.argument);
        out << left;
        if (left.size() < 27)
            out << std::string(27 - left.size(), ' ');
        else
            out << "\n" << std::string(27, ' ');
        out << o.help;
        if (!o.default_text.empty()) out << " (default " << o.default_text << ")";
        out << (o.runtime ? " [runtime]" : "") << "\n";
    }
    out << "\nDashes and underscores in option names are interchangeable. Options marked\n"
           "[runtime] can be changed in a running daemon (nflowctl set, or SIGHUP).\n";
    return out.str();
}

CommandLine parse_command_line(int argc, const char* const argv[]) {
    CommandLine cl;
    cl.config = default_config();
    const auto vm = parse_sources(argc, argv, describe());
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
    store_map(cl.config, vm);
    // --natevents_only logs NAT from conntrack alone: no NFLOG rule is needed (ipt_NETFLOW #215).
    if (cl.config.read_file.empty() && cl.config.groups.empty() && !cl.config.natevents_only)
        throw ConfigError("group", "give at least one NFLOG group (or --read FILE)");
    if (!cl.config.read_file.empty() && !cl.config.groups.empty())
        throw ConfigError("read", "cannot be combined with --group");
    return cl;
}

} // namespace nflowd
