#include "nflowd/offline.hpp"

#include <array>
#include <sstream>

namespace nflowd {

namespace {
// Packets between publishes: large enough to amortise the shared stores, small enough that
// a worker starts before the reader has filled its ring.
constexpr unsigned kBatch = 256;
} // namespace

OfflineSummary run_offline(const Config& config) {
    const Nanos started = steady_time();
    PcapSource source(config.read_file, config.physdev);
    std::span<const std::byte> ip;
    PacketMeta meta;
    const bool any = source.next(ip, meta);

    Clock clock(Clock::Mode::packets);
    // Uptime counts from the first packet, so First/Last in the records and unix_secs in the
    // header place flows at the time they were captured.
    const Nanos boot = any ? meta.time : wall_time();
    clock.advance(boot);

    PipelineConfig pc;
    pc.workers = config.worker_threads();
    pc.readers = 1;
    pc.table = config.table;
    pc.aggregation = config.aggregation;
    pc.v5 = V5Params{.boot_time = boot, .engine_id = config.engine_id};
    pc.pacing = config.pacing;
    pc.format = config.format;
    pc.ipv6 = exports_ipv6(config);
    Pipeline pipeline(pc, clock, CollectorSet(config.destinations, config.sndbuf));
    auto& dispatcher = pipeline.dispatcher(0);
    if (any) {
        unsigned n = 0;
        do {
            dispatcher.dispatch(ip, meta);
            if (++n == kBatch) {
                dispatcher.publish();
                n = 0;
            }
        } while (source.next(ip, meta));
    }
    dispatcher.publish();
    pipeline.finish();

    OfflineSummary s;
    s.pcap = source.stats();
    s.stats = pipeline.stats();
    s.seconds = double(steady_time() - started) / double(kNanosPerSecond);
    return s;
}

namespace {

// The summary's figures in order, as scripts read them ("key: value"); the pcap reader's come
// first, straight from its declared fields.
struct SummaryLine {
    std::string_view key;
    std::uint64_t (*get)(const PipelineStats& s, const FlowTableStats& total);
};

using P = const PipelineStats&;
using T = const FlowTableStats&;
const auto kSummary = std::to_array<SummaryLine>({
    {"packets", [](P s, T) { return s.parse.packets; }},
    {"accounted", [](P, T t) { return t.packets; }},
    {"octets", [](P, T t) { return t.octets; }},
    {"invalid", [](P s, T) { return s.parse.invalid; }},
    {"truncated", [](P s, T) { return s.parse.truncated; }},
    {"fragments", [](P s, T) { return s.parse.fragments; }},
    {"ipv6", [](P s, T) { return s.parse.ipv6; }},
    {"ipv6_accounted", [](P s, T) { return s.parse.ipv6_accounted; }},
    {"unknown_length", [](P s, T) { return s.parse.unknown_length; }},
    {"oversize", [](P s, T) { return s.parse.oversize; }},
    {"maxflows_dropped", [](P, T t) { return t.dropped_packets; }},
    {"flows", [](P s, T) { return s.exporter.flows; }},
    {"peak_flows", [](P s, T) { return s.peak; }},
    {"datagrams", [](P s, T) { return s.exporter.datagrams; }},
    {"lost_flows", [](P s, T) { return s.exporter.lost_flows; }},
    {"sampled_out", [](P s, T) { return s.exporter.sampled_out; }},
    {"hash_sampled_out", [](P s, T) { return s.parse.sampled_out; }},
});

// Per destination, after the figures: "collector X: datagrams N, bytes N, ...".
struct CollectorFigure {
    std::string_view label;
    std::uint64_t CollectorStats::*member;
};
constexpr auto kCollector = std::to_array<CollectorFigure>({
    {"datagrams", &CollectorStats::datagrams},
    {"bytes", &CollectorStats::bytes},
    {"buffer_full", &CollectorStats::err_buffer_full},
    {"refused", &CollectorStats::err_refused},
    {"unreachable", &CollectorStats::err_unreachable},
    {"other", &CollectorStats::err_other},
});

} // namespace

std::string format_summary(const OfflineSummary& s) {
    const auto total = s.stats.total();
    std::ostringstream out;
    for (const auto& f : PcapStats::fields()) out << f.name << ": " << s.pcap.*f.member << "\n";
    for (const auto& line : kSummary) out << line.key << ": " << line.get(s.stats, total) << "\n";
    const auto packets = s.stats.parse.packets;
    out << "seconds: " << s.seconds << "\n"
        << "packets_per_second: "
        << static_cast<std::uint64_t>(s.seconds > 0 ? double(packets) / s.seconds : 0) << "\n";
    for (const auto& c : s.stats.collectors) {
        out << "collector " << c.destination << ":";
        for (std::size_t i = 0; i < kCollector.size(); ++i)
            out << (i ? ", " : " ") << kCollector[i].label << " " << c.*kCollector[i].member;
        out << "\n";
    }
    return out.str();
}

} // namespace nflowd
