// What nflowd would learn from conntrack here: runs a ConntrackFeed into a NatTable and prints
// every event, the translation each new connection's flows get, and the counters at the end.
// usage: conntrack_probe [--duration SECONDS]   (stops at SIGTERM/SIGINT; needs CAP_NET_ADMIN)
#include "nflowd/clock.hpp"
#include "nflowd/conntrack_source.hpp"
#include "nflowd/nat_table.hpp"

#include <arpa/inet.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

using namespace nflowd;

namespace {

std::string text(Family f, const NatEndpoint& e) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (f == Family::ipv4)
        ::inet_ntop(AF_INET, e.addr.data() + 12, buf, sizeof buf);
    else
        ::inet_ntop(AF_INET6, e.addr.data(), buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(e.port);
}

std::string text(Family f, const NatTuple& t) {
    return text(f, t.src) + ">" + text(f, t.dst);
}

const char* kind_name(NatEventKind k) {
    switch (k) {
    case NatEventKind::create:
        return "create";
    case NatEventKind::destroy:
        return "destroy";
    case NatEventKind::dump_begin:
        return "dump_begin";
    case NatEventKind::dump_end:
        return "dump_end";
    }
    return "?";
}

// The flow a FORWARD (or host INPUT/OUTPUT) rule sees for the connection's original direction,
// after DNAT and before SNAT, and for its reply direction.
FlowRecord forward_view(const NatEvent& ev, bool reply) {
    FlowRecord r;
    r.family = ev.family;
    r.key.protocol = ev.protocol;
    NatEndpoint src = ev.orig.src;
    NatEndpoint dst = ev.reply.src;
    if (reply) std::swap(src, dst);
    r.key.src_port = src.port;
    r.key.dst_port = dst.port;
    r.key.src_addr = src.ipv4_addr();
    r.key.dst_addr = dst.ipv4_addr();
    r.src6 = src.addr;
    r.dst6 = dst.addr;
    return r;
}

void print_event(NatTable& table, const NatEvent& ev) {
    std::printf("event %s dumped=%d proto=%u orig=%s reply=%s\n", kind_name(ev.kind),
                ev.dumped ? 1 : 0, unsigned{ev.protocol}, text(ev.family, ev.orig).c_str(),
                text(ev.family, ev.reply).c_str());
    if (ev.kind != NatEventKind::create) return;
    for (const bool reply : {false, true}) {
        const FlowRecord r = forward_view(ev, reply);
        const auto t = table.lookup(r);
        const NatTuple flow{reply ? ev.reply.src : ev.orig.src, reply ? ev.orig.src : ev.reply.src};
        if (t)
            std::printf("lookup flow=%s xsrc=%s xdst=%s reply=%d\n", text(ev.family, flow).c_str(),
                        text(ev.family, t->src).c_str(), text(ev.family, t->dst).c_str(),
                        t->reply ? 1 : 0);
        else
            std::printf("lookup flow=%s none\n", text(ev.family, flow).c_str());
    }
}

} // namespace

int main(int argc, char** argv) {
    long duration = 60;
    if (argc == 3 && std::strcmp(argv[1], "--duration") == 0) duration = std::atol(argv[2]);
    // Signals are taken by sigtimedwait below; the feed's thread inherits the mask.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    try {
        ConntrackConfig cfg;
        ConntrackFeed feed(std::make_unique<ConntrackSource>(cfg), cfg);
        NatTable table;
        std::printf("ready\n");
        std::fflush(stdout);
        const Nanos end = steady_time() + duration * kNanosPerSecond;
        const timespec tick{0, 10 * kNanosPerMilli};
        while (steady_time() < end && sigtimedwait(&stop, nullptr, &tick) < 0) {
            feed.drain([&](const NatEvent& ev) {
                table.apply(ev);
                print_event(table, ev);
            });
            table.expire(steady_time());
            std::fflush(stdout);
        }
        feed.drain([&](const NatEvent& ev) { table.apply(ev); });
        const ConntrackStats s = feed.stats();
        std::printf("totals events_new=%llu events_destroy=%llu not_nated=%llu lost_events=%llu "
                    "enobufs=%llu dumps=%llu dumped=%llu entries=%llu live=%llu cpu_ms=%lld\n",
                    static_cast<unsigned long long>(s.events_new),
                    static_cast<unsigned long long>(s.events_destroy),
                    static_cast<unsigned long long>(s.not_nated),
                    static_cast<unsigned long long>(s.lost_events),
                    static_cast<unsigned long long>(s.enobufs),
                    static_cast<unsigned long long>(s.dumps),
                    static_cast<unsigned long long>(s.dumped),
                    static_cast<unsigned long long>(table.stats().entries),
                    static_cast<unsigned long long>(table.stats().live),
                    static_cast<long long>(feed.thread_cpu_ns() / kNanosPerMilli));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "conntrack_probe: %s\n", e.what());
        return 1;
    }
    return 0;
}
