// Benchmark (figures, not a test): what `nflowctl flows` costs the workers. Fills a pipeline
// with N flows, then times a dump of the top 10 and a dump of every flow, as each selects.
//   dump_cost [FLOWS (1000000)] [WORKERS (2)] [RUNS (5)]
#include "nflowd/clock.hpp"
#include "nflowd/number.hpp"
#include "nflowd/pipeline.hpp"

#include "../unit/support/test_support.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

using namespace nflowd;

double median_ms(Pipeline& p, std::size_t top, int runs, std::size_t& got) {
    std::vector<double> ms;
    for (int i = 0; i < runs; ++i) {
        const Nanos t0 = steady_time();
        got = p.select_flows(top, FlowRank::bytes).flows.size();
        ms.push_back(double(steady_time() - t0) / 1e6);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
    const auto arg = [&](int i, std::uint64_t def) {
        return argc > i ? parse_unsigned(argv[i], 1).value_or(def) : def;
    };
    const std::size_t flows = arg(1, 1'000'000), workers = arg(2, 2);
    const int runs = static_cast<int>(arg(3, 5));
    nflowd::test::UdpCollector collector;
    Clock clock(Clock::Mode::live);
    PipelineConfig pc;
    pc.workers = workers;
    pc.table.hashsize = flows;
    pc.table.maxflows = 0;
    pc.v5.boot_time = clock.now();
    Pipeline p(pc, clock, CollectorSet(parse_destinations(collector.address()), 0));
    auto& d = p.dispatcher(0);
    for (std::size_t f = 0; f < flows; ++f) {
        const auto pkt =
            nflowd::test::ipv4_packet(0x0a000000 + static_cast<std::uint32_t>(f), 0x0a640001, 17,
                                      5000, 53, static_cast<std::uint16_t>(40 + f % 1400));
        d.dispatch(pkt, PacketMeta{clock.now(), 1, 2});
        if (f % 256 == 255) d.publish();
    }
    d.publish();
    for (int i = 0; i < 3000 && p.stats().total().active < flows; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::size_t got_top = 0, got_all = 0;
    const double top = median_ms(p, 10, runs, got_top);
    const double all = median_ms(p, 0, runs, got_all);
    std::printf("%zu flows, %zu workers: --top 10 %.2f ms (%zu records from the shards); every "
                "flow %.2f ms (%zu records)\n",
                static_cast<std::size_t>(p.stats().total().active), workers, top, got_top, all,
                got_all);
    p.finish();
    return 0;
}
