// stats_render: a StatsReport with every declared field set to its own value, rendered in one
// format; `expect` lists what the Prometheus exposition must carry, for check_prometheus.py.
//
//   stats_render prometheus|text|json|expect
#include "nflowd/stats_report.hpp"

#include <iostream>
#include <string>
#include <string_view>

namespace nflowd {
namespace {

// Distinct values, so a figure shown under another's name cannot go unnoticed.
template <StatStruct S> void fill(S& s, std::uint64_t& next) {
    for (const auto& f : S::fields()) s.*f.member = next++;
}

StatsReport populated() {
    StatsReport r;
    r.version = "0.1.0";
    r.started = 1'700'000'000 * kNanosPerSecond;
    r.now = r.started + 3600 * kNanosPerSecond;
    r.active_timeout = 1800 * kNanosPerSecond;
    r.inactive_timeout = 15 * kNanosPerSecond;
    r.maxflows = 2000000;
    r.peak = 7;
    r.rates.pps = {1.5, 2.25, 3.125};
    r.rates.bps = {12.0, 18.0, 25.0};
    std::uint64_t next = 100;
    fill(r.pipeline.parse, next);
    for (int i = 0; i < 2; ++i) {
        WorkerStats w;
        fill(w.table, next);
        fill(w, next);
        r.pipeline.workers.push_back(w);
    }
    fill(r.pipeline.exporter, next);
    // The second destination needs every escape the label format has.
    for (const char* d : {"127.0.0.1:2055", "we\"ird\\dest\nx"}) {
        CollectorStats c;
        c.destination = d;
        c.sndbuf = 212992;
        fill(c, next);
        r.pipeline.collectors.push_back(c);
    }
    for (const int g : {5, 7}) {
        GroupStats gs;
        gs.group = static_cast<std::uint16_t>(g);
        fill(gs.nflog, next);
        r.groups.push_back(gs);
    }
    r.control.emplace();
    fill(*r.control, next);
    return r;
}

// One line per sample: name, type, label name (or -), label value (escaped as C: \n \\ \"), value.
template <StatStruct S>
void expect(std::string_view stage, std::string_view label, const std::string& value, const S& s) {
    std::string escaped;
    for (const char c : value) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
    for (const auto& f : S::fields()) {
        const bool counter = f.kind == StatKind::counter;
        std::cout << "nflowd_" << stage << "_" << f.name << (counter ? "_total" : "") << "\t"
                  << (counter ? "counter" : "gauge") << "\t" << (label.empty() ? "-" : label)
                  << "\t" << escaped << "\t" << s.*f.member << "\n";
    }
}

void expectations(const StatsReport& r) {
    const auto& p = r.pipeline;
    expect("parse", {}, {}, p.parse);
    for (std::size_t i = 0; i < p.workers.size(); ++i) {
        expect("cache", "worker", std::to_string(i), p.workers[i].table);
        expect("cache", "worker", std::to_string(i), p.workers[i]);
    }
    for (const auto& g : r.groups) expect("nflog", "group", std::to_string(g.group), g.nflog);
    expect("export", {}, {}, p.exporter);
    for (const auto& c : p.collectors) expect("destination", "destination", c.destination, c);
    expect("control", {}, {}, *r.control);
}

} // namespace
} // namespace nflowd

int main(int argc, char** argv) {
    using namespace nflowd;
    const std::string_view mode = argc > 1 ? argv[1] : "prometheus";
    const auto report = populated();
    if (mode == "expect")
        expectations(report);
    else if (mode == "text")
        std::cout << format_stats(report, ctl::StatsFormat::text);
    else if (mode == "json")
        std::cout << format_stats(report, ctl::StatsFormat::json);
    else if (mode == "prometheus")
        std::cout << format_stats(report, ctl::StatsFormat::prometheus);
    else {
        std::cerr << "usage: stats_render prometheus|text|json|expect\n";
        return 2;
    }
    return 0;
}
