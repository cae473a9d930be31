#include "nflowd/offline.hpp"

#include <sstream>

namespace nflowd {

namespace {
// Packets between publishes: large enough to amortise the shared stores, small enough that
// a worker starts before the reader has filled its ring.
constexpr unsigned kBatch = 256;
} // namespace

OfflineSummary run_offline(const Config& config) {
    const Nanos started = steady_time();
    PcapSource source(config.read_file);
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
    pc.v5 = V5Params{boot, 0, config.engine_id};
    pc.pacing = config.pacing;
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

std::string format_summary(const OfflineSummary& s) {
    const auto t = s.stats.total();
    const auto& p = s.stats.parse;
    const auto& x = s.stats.exporter;
    std::ostringstream out;
    out << "frames: " << s.pcap.frames << "\n"
        << "non_ip: " << s.pcap.non_ip << "\n"
        << "malformed_frames: " << s.pcap.malformed << "\n"
        << "packets: " << p.packets << "\n"
        << "accounted: " << t.packets << "\n"
        << "octets: " << t.octets << "\n"
        << "invalid: " << p.invalid << "\n"
        << "truncated: " << p.truncated << "\n"
        << "fragments: " << p.fragments << "\n"
        << "ipv6: " << p.ipv6 << "\n"
        << "maxflows_dropped: " << t.dropped_packets << "\n"
        << "flows: " << x.flows << "\n"
        << "peak_flows: " << t.peak << "\n"
        << "datagrams: " << x.datagrams << "\n"
        << "lost_flows: " << x.lost_flows << "\n"
        << "seconds: " << s.seconds << "\n"
        << "packets_per_second: "
        << static_cast<std::uint64_t>(s.seconds > 0 ? double(p.packets) / s.seconds : 0) << "\n";
    for (const auto& c : s.stats.collectors)
        out << "collector " << c.destination << ": datagrams " << c.datagrams << ", bytes "
            << c.bytes << ", buffer_full " << c.err_buffer_full << ", refused " << c.err_refused
            << ", other " << c.err_other << "\n";
    return out.str();
}

} // namespace nflowd
