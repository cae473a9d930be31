#include "nflowd/offline.hpp"
#include "nflowd/stats_report.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <set>
#include <sstream>
#include <thread>

namespace nflowd {
namespace {

template <StatStruct S> S filled(std::uint64_t first) {
    S s;
    for (const auto& f : S::fields()) s.*f.member = first++;
    return s;
}

// Every field listed once, named for Prometheus, with a help line; and, for the structs made
// only of counters, no member left out of the table.
template <StatStruct S> void expect_well_declared(std::size_t other_bytes = 0) {
    std::set<std::string_view> names;
    const auto fields = S::fields();
    for (std::size_t i = 0; i < fields.size(); ++i) {
        const auto& f = fields[i];
        EXPECT_TRUE(names.insert(f.name).second) << f.name;
        for (const char c : f.name)
            EXPECT_TRUE(std::islower(c) || std::isdigit(c) || c == '_') << f.name;
        EXPECT_FALSE(f.help.empty()) << f.name;
        EXPECT_FALSE(f.unit.empty()) << f.name;
        for (std::size_t j = 0; j < i; ++j) EXPECT_NE(fields[j].member, f.member) << f.name;
    }
    if (other_bytes != SIZE_MAX) {
        EXPECT_EQ(sizeof(S), fields.size() * sizeof(std::uint64_t) + other_bytes);
    }
}

TEST(StatsModel, EveryStructDeclaresEachMemberOnce) {
    expect_well_declared<ParseStats>();
    expect_well_declared<FlowTableStats>();
    expect_well_declared<NflogStats>();
    expect_well_declared<ExporterStats>();
    expect_well_declared<ControlServerStats>();
    expect_well_declared<PcapStats>();
    expect_well_declared<WorkerStats>(sizeof(FlowTableStats));
    expect_well_declared<CollectorStats>(SIZE_MAX); // a name and a setting beside the counters
}

TEST(StatsModel, SumAddsEveryField) {
    auto a = filled<FlowTableStats>(1);
    const auto b = filled<FlowTableStats>(100);
    a += b;
    std::uint64_t i = 0;
    for (const auto& f : FlowTableStats::fields()) {
        EXPECT_EQ(a.*f.member, (1 + i) + (100 + i)) << f.name; // gauges too: peak = sum of peaks
        ++i;
    }
}

TEST(StatsModel, SinceSubtractsCountersAndKeepsGauges) {
    const auto base = filled<FlowTableStats>(10);
    auto now = filled<FlowTableStats>(50);
    now.searched = 3; // below its base: a restarted source reads 0, never wraps
    const auto d = stats_since(now, base);
    EXPECT_EQ(d.searched, 0u);
    EXPECT_EQ(d.found, 40u);
    EXPECT_EQ(d.flushed, 40u);
    EXPECT_EQ(d.active, now.active);
    EXPECT_EQ(d.peak, now.peak);

    auto c = filled<CollectorStats>(20);
    c.destination = "127.0.0.1:2055";
    c.sndbuf = 4096;
    const auto z = stats_since(c, c);
    EXPECT_EQ(z.destination, c.destination);
    EXPECT_EQ(z.sndbuf, 4096);
    for (const auto& f : CollectorStats::fields()) EXPECT_EQ(z.*f.member, 0u) << f.name;
}

TEST(StatsModel, AtomicStoreLoadRoundTrips) {
    AtomicStats<NflogStats> published;
    EXPECT_EQ(published.load().packets, 0u);
    const auto s = filled<NflogStats>(7);
    published.store(s);
    const auto back = published.load();
    for (const auto& f : NflogStats::fields()) EXPECT_EQ(back.*f.member, s.*f.member) << f.name;
    // One writer publishing while another thread reads: each load sees a stored value.
    std::thread writer([&] {
        for (std::uint64_t i = 0; i < 10000; ++i) published.store(filled<NflogStats>(i));
    });
    for (int i = 0; i < 1000; ++i) EXPECT_LE(published.load().packets, 10000u + 9);
    writer.join();
}

StatsReport small_report() {
    StatsReport r;
    r.version = "0.1.0";
    WorkerStats w;
    w.table.active = 3;
    w.table.searched = 30;
    r.pipeline.workers = {w, w};
    r.pipeline.exporter.flows = 31;
    r.pipeline.exporter.bytes = 1488;
    r.pipeline.exporter.flows_ipfix = 31;
    CollectorStats c;
    c.destination = "127.0.0.1:2055";
    c.err_refused = 1;
    r.pipeline.collectors = {c};
    c.destination = "we\"ird\\dest\n";
    r.pipeline.collectors.push_back(c);
    GroupStats g;
    g.group = 5;
    g.nflog.lost = 2;
    r.groups = {g};
    return r;
}

TEST(StatsPrometheus, NamesLabelsAndTypes) {
    const auto text = format_stats_prometheus(small_report());
    for (const char* want : {
             "# TYPE nflowd_export_flows_total counter\nnflowd_export_flows_total 31\n",
             "\nnflowd_cache_searched_total{worker=\"1\"} 30\n",
             "# TYPE nflowd_cache_active_flows gauge\n",
             "\nnflowd_cache_active_flows{worker=\"0\"} 3\n",
             "\nnflowd_nflog_lost_total{group=\"5\"} 2\n",
             "\nnflowd_destination_errors_refused_total{destination=\"127.0.0.1:2055\"} 1\n",
             "{destination=\"we\\\"ird\\\\dest\\n\"}",
             "\nnflowd_info{version=\"0.1.0\"} 1\n",
             "\nnflowd_packet_rate{minutes=\"15\"} 0.000\n",
         })
        EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
    EXPECT_EQ(text.find("nflowd_control_"), std::string::npos); // no control server, no family
}

TEST(StatsPrometheus, EachFamilyHasHelpAndTypeOnceBeforeItsSamples) {
    std::istringstream in(format_stats_prometheus(small_report()));
    std::set<std::string> typed;
    std::string line, current;
    while (std::getline(in, line)) {
        if (line.rfind("# HELP ", 0) == 0) {
            current = line.substr(7, line.find(' ', 7) - 7);
            continue;
        }
        if (line.rfind("# TYPE ", 0) == 0) {
            const auto name = line.substr(7, line.find(' ', 7) - 7);
            EXPECT_EQ(name, current) << "TYPE without HELP just before: " << line;
            EXPECT_TRUE(typed.insert(name).second) << line;
            const bool counter = line.ends_with(" counter");
            EXPECT_TRUE(counter || line.ends_with(" gauge")) << line;
            EXPECT_EQ(counter, name.ends_with("_total")) << line;
            continue;
        }
        EXPECT_EQ(line.substr(0, line.find_first_of("{ ")), current) << line;
    }
    EXPECT_GT(typed.size(), 40u);
}

TEST(StatsFormat, DispatchesOnTheRequestedFormat) {
    const auto r = small_report();
    EXPECT_EQ(format_stats(r, ctl::StatsFormat::text), format_stats_text(r));
    EXPECT_EQ(format_stats(r, ctl::StatsFormat::json), format_stats_json(r));
    EXPECT_EQ(format_stats(r, ctl::StatsFormat::prometheus), format_stats_prometheus(r));
}

TEST(StatsFormat, JsonKeepsTheTextOrderAndKeys) {
    const auto j = nlohmann::ordered_json::parse(format_stats_json(small_report()));
    std::vector<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.push_back(k);
    const std::vector<std::string> want = {
        "version", "now",    "started",      "uptime",    "protocol", "engine_id", "timeouts",
        "flows",   "hash",   "in",           "rates",     "workers",  "packets",   "expired",
        "groups",  "export", "destinations", "conntrack", "nat"};
    EXPECT_EQ(keys, want);
    EXPECT_EQ(j["conntrack"]["status"], "off");
    EXPECT_EQ(j["nat"]["events_exported"], 0);
    EXPECT_EQ(j["export"]["flows"], 31);
    EXPECT_EQ(j["destinations"][1]["errors"]["refused"], 1);
    EXPECT_EQ(j["workers"][1]["searched"], 30);
}

TEST(StatsFormat, TextLinesComeFromTheLayout) {
    const auto text = format_stats_text(small_report());
    for (const char* want : {
             "\nworker 1: active 3, peak 0, hashsize 0, metric 0.00, searched 30, found 0, new 0, "
             "memory 0 KiB\n",
             "\nexport: flows 31, datagrams 0, bytes 1488, lost flows 0, lost datagrams 0, "
             "by version: v5 0 v9 0 ipfix 31, sampled out 0\n",
             "\ngroup 5: received 0, lost 2, enobufs 0, malformed 0, bad timestamps 0, "
             "unaccounted 0\n",
         })
        EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
}

// Live only: the interface names' line and object come last, after control.
TEST(StatsFormat, LinksLineWhenTheDaemonHasInterfaceNames) {
    auto r = small_report();
    EXPECT_EQ(format_stats_text(r).find("\nlinks:"), std::string::npos);
    r.links = LinkStats{.known = 3, .dumps = 2, .changes = 4, .events = 5};
    EXPECT_NE(format_stats_text(r).find("\nlinks: known 3, dumps 2, changes 4, events 5, "
                                        "enobufs 0, malformed 0, errors 0\n"),
              std::string::npos);
    const auto j = nlohmann::ordered_json::parse(format_stats_json(r));
    EXPECT_EQ(j["links"]["changes"], 4);
    EXPECT_NE(format_stats_prometheus(r).find("nflowd_links_changes_total 4"), std::string::npos);
}

TEST(OfflineSummary, KeyValueLinesInOrder) {
    OfflineSummary s;
    s.pcap = filled<PcapStats>(1);
    s.stats.parse.packets = 10;
    WorkerStats w;
    w.table.packets = 8;
    w.table.peak = 3;
    s.stats.workers = {w, w};
    s.stats.peak = 6; // the pipeline's own, not the workers' peaks summed
    s.stats.exporter.flows = 4;
    CollectorStats c;
    c.destination = "127.0.0.1:2055";
    c.datagrams = 2;
    s.stats.collectors = {c};
    s.seconds = 2;
    EXPECT_EQ(format_summary(s),
              "frames: 1\nnon_ip: 2\nmalformed_frames: 3\npackets: 10\n"
              "accounted: 16\noctets: 0\ninvalid: 0\ntruncated: 0\n"
              "fragments: 0\nipv6: 0\nipv6_accounted: 0\nunknown_length: 0\noversize: 0\n"
              "maxflows_dropped: 0\nflows: 4\n"
              "peak_flows: 6\ndatagrams: 0\nlost_flows: 0\nsampled_out: 0\nhash_sampled_out: 0\n"
              "seconds: 2\n"
              "packets_per_second: 5\n"
              "collector 127.0.0.1:2055: datagrams 2, bytes 0, buffer_full 0, "
              "refused 0, unreachable 0, other 0\n");
}

// NAT (issue 13): the conntrack and nat lines, from the pipeline's NatStats and the
// exporter's NAT event count.
TEST(StatsFormat, ConntrackAndNatLines) {
    auto r = small_report();
    r.pipeline.nat.status = NatStatus::unavailable;
    r.pipeline.nat.conntrack.events_new = 12;
    r.pipeline.nat.conntrack.lost_events = 3;
    r.pipeline.nat.table.found = 7;
    r.pipeline.nat.table.not_found = 2;
    r.pipeline.exporter.nat_events = 20;
    const auto text = format_stats_text(r);
    EXPECT_NE(text.find("\nconntrack: unavailable, new 12, destroy 0,"), std::string::npos) << text;
    EXPECT_NE(text.find("lost events 3,"), std::string::npos) << text;
    EXPECT_NE(text.find("\nnat: entries 0, found 7, not found 2, evicted 0, events exported 20\n"),
              std::string::npos)
        << text;
    const auto j = nlohmann::ordered_json::parse(format_stats_json(r));
    EXPECT_EQ(j["conntrack"]["status"], "unavailable");
    EXPECT_EQ(j["nat"]["found"], 7);
    const auto prom = format_stats_prometheus(r);
    EXPECT_NE(prom.find("nflowd_conntrack_lost_events_total 3"), std::string::npos);
    EXPECT_NE(prom.find("nflowd_nat_found_total 7"), std::string::npos);
}

} // namespace
} // namespace nflowd
