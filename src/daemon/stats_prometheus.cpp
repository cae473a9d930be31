#include "nflowd/stats_report.hpp"

#include <cmath>
#include <cstdio>
#include <utility>

namespace nflowd {

namespace {

// Label values escape backslash, double quote and line feed; HELP text only the first and
// the last (text exposition format 0.0.4).
std::string escape(std::string_view v, bool quote) {
    std::string out;
    out.reserve(v.size());
    for (const char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '"' && quote)
            out += "\\\"";
        else
            out += c;
    }
    return out;
}

std::string number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", std::isfinite(v) ? v : 0.0);
    return buf;
}

// Writes families one at a time: HELP and TYPE once, then all of the family's samples, as
// the format requires (a family's samples may not be interleaved with another's).
class Exposition {
  public:
    void family(const std::string& name, StatKind kind, std::string_view help) {
        name_ = name;
        out_ += "# HELP " + name + " " + escape(help, false) + "\n";
        out_ += "# TYPE " + name + (kind == StatKind::counter ? " counter\n" : " gauge\n");
    }
    void sample(std::string_view label, const std::string& value, const std::string& v) {
        out_ += name_;
        if (!label.empty()) out_ += "{" + std::string(label) + "=\"" + escape(value, true) + "\"}";
        out_ += " " + v + "\n";
    }
    std::string take() { return std::move(out_); }

  private:
    std::string name_;
    std::string out_;
};

// One stats struct per label value (worker, group, destination), or one without a label.
template <StatStruct S> using Rows = std::vector<std::pair<std::string, const S*>>;

template <StatStruct S>
void families(Exposition& out, std::string_view stage, std::string_view label,
              const Rows<S>& rows) {
    if (rows.empty()) return;
    for (const auto& f : S::fields()) {
        auto name = "nflowd_" + std::string(stage) + "_" + std::string(f.name);
        if (f.kind == StatKind::counter) name += "_total";
        out.family(name, f.kind, std::string(f.help) + " (" + std::string(f.unit) + ").");
        for (const auto& [value, s] : rows) out.sample(label, value, std::to_string(s->*f.member));
    }
}

template <StatStruct S, class E, class Get>
Rows<S> rows(const std::vector<E>& all, std::string (*label)(std::size_t, const E&), Get get) {
    Rows<S> out;
    for (std::size_t i = 0; i < all.size(); ++i) out.emplace_back(label(i, all[i]), &get(all[i]));
    return out;
}

// Figures of the daemon as a whole, not of one stage.
void daemon_levels(Exposition& out, const StatsReport& r) {
    out.family("nflowd_info", StatKind::gauge, "Always 1; the label says which nflowd runs.");
    out.sample("version", r.version, "1");
    const auto level = [&](const char* name, std::string_view help, std::uint64_t v) {
        out.family(name, StatKind::gauge, help);
        out.sample({}, {}, std::to_string(v));
    };
    const auto secs = [](Nanos n) {
        return static_cast<std::uint64_t>(std::max<Nanos>(0, n) / kNanosPerSecond);
    };
    level("nflowd_start_time_seconds", "When nflowd started, seconds since the epoch.",
          secs(r.started));
    level("nflowd_peak_flows", "Most active flows daemon-wide since start or the last zeroing.",
          r.peak);
    level("nflowd_maxflows", "Configured flow limit for the whole daemon (0: unlimited).",
          r.maxflows);
    level("nflowd_active_timeout_seconds", "Configured active timeout.", secs(r.active_timeout));
    level("nflowd_inactive_timeout_seconds", "Configured inactive timeout.",
          secs(r.inactive_timeout));
    const auto rates = [&](const char* name, std::string_view help, const auto& values) {
        out.family(name, StatKind::gauge, help);
        for (std::size_t i = 0; i < kRateMinutes.size(); ++i)
            out.sample("minutes", std::to_string(kRateMinutes[i]), number(values[i]));
    };
    rates("nflowd_packet_rate", "Packets per second, moving average over `minutes`.", r.rates.pps);
    rates("nflowd_bit_rate", "Bits per second, moving average over `minutes`.", r.rates.bps);
}

void destination_sndbuf(Exposition& out, const std::vector<CollectorStats>& all) {
    if (all.empty()) return;
    out.family("nflowd_destination_sndbuf_bytes", StatKind::gauge,
               "Send buffer of the destination's socket, as the kernel reports it.");
    for (const auto& c : all) out.sample("destination", c.destination, std::to_string(c.sndbuf));
}

} // namespace

std::string format_stats_prometheus(const StatsReport& r) {
    Exposition out;
    daemon_levels(out, r);
    const auto& p = r.pipeline;
    families<ParseStats>(out, "parse", {}, {{std::string(), &p.parse}});
    const auto worker = +[](std::size_t i, const WorkerStats&) { return std::to_string(i); };
    families(out, "cache", "worker",
             rows<FlowTableStats>(
                 p.workers, worker, [](const WorkerStats& w) -> const auto& { return w.table; }));
    families(out, "cache", "worker",
             rows<WorkerStats>(
                 p.workers, worker, [](const WorkerStats& w) -> const auto& { return w; }));
    families(out, "nflog", "group",
             rows<NflogStats>(
                 r.groups,
                 +[](std::size_t, const GroupStats& g) { return std::to_string(g.group); },
                 [](const GroupStats& g) -> const auto& { return g.nflog; }));
    families<ExporterStats>(out, "export", {}, {{std::string(), &p.exporter}});
    families(out, "destination", "destination",
             rows<CollectorStats>(
                 p.collectors, +[](std::size_t, const CollectorStats& c) { return c.destination; },
                 [](const CollectorStats& c) -> const auto& { return c; }));
    destination_sndbuf(out, p.collectors);
    // NAT (issue 13): the conntrack input and the NAT table.
    families<ConntrackStats>(out, "conntrack", {}, {{std::string(), &p.nat.conntrack}});
    families<NatTableStats>(out, "nat", {}, {{std::string(), &p.nat.table}});
    if (r.control) families<ControlServerStats>(out, "control", {}, {{std::string(), &*r.control}});
    if (r.links) families<LinkStats>(out, "links", {}, {{std::string(), &*r.links}});
    return out.take();
}

} // namespace nflowd
