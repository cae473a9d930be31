// nflog_probe: the minimal NFLOG consumer. Binds a group, counts what arrives for a bounded
// time or packet count, prints the totals. Used by the live integration test and as the
// baseline consumer in benchmarks, so its loop does nothing beyond recv, walk and count.
#include "nflowd/nflog_source.hpp"

#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) {
    g_stop = 1;
}

void usage() {
    std::fprintf(stderr, "usage: nflog_probe --group N [--duration SEC] [--count PACKETS]\n"
                         "                   [--snaplen B] [--qthreshold N] [--qtimeout CS]\n"
                         "                   [--nlbufsiz B] [--rcvbuf B] [--stall-ms MS]\n"
                         "Prints 'ready' once bound, then on exit one line of totals:\n"
                         "packets= bytes=(sum of IP total lengths) lost= enobufs= malformed= ...\n"
                         "--stall-ms sleeps once after binding, to provoke socket overruns.\n");
}

template <class T> bool parse_num(std::string_view s, T& out) {
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size();
}

std::int64_t monotonic_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// The IP total length from the captured header; the captured size when the header is cut.
std::uint64_t ip_length(std::span<const std::byte> ip) noexcept {
    if (ip.size() >= 4 && (std::to_integer<unsigned>(ip[0]) >> 4) == 4)
        return (std::to_integer<std::uint64_t>(ip[2]) << 8) | std::to_integer<std::uint64_t>(ip[3]);
    if (ip.size() >= 6 && (std::to_integer<unsigned>(ip[0]) >> 4) == 6)
        return 40 + ((std::to_integer<std::uint64_t>(ip[4]) << 8) |
                     std::to_integer<std::uint64_t>(ip[5]));
    return ip.size();
}

} // namespace

int main(int argc, char** argv) {
    nflowd::NflogConfig cfg;
    bool have_group = false;
    std::int64_t duration_s = 10;
    std::uint64_t max_packets = 0;
    std::int64_t stall_ms = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string_view opt = argv[i];
        if (i + 1 >= argc) return usage(), 2;
        const std::string_view val = argv[++i];
        bool ok = false;
        if (opt == "--group")
            ok = have_group = parse_num(val, cfg.group);
        else if (opt == "--duration")
            ok = parse_num(val, duration_s);
        else if (opt == "--count")
            ok = parse_num(val, max_packets);
        else if (opt == "--snaplen")
            ok = parse_num(val, cfg.snaplen);
        else if (opt == "--qthreshold")
            ok = parse_num(val, cfg.qthreshold);
        else if (opt == "--qtimeout")
            ok = parse_num(val, cfg.qtimeout);
        else if (opt == "--nlbufsiz")
            ok = parse_num(val, cfg.nlbufsiz);
        else if (opt == "--rcvbuf")
            ok = parse_num(val, cfg.rcvbuf);
        else if (opt == "--stall-ms")
            ok = parse_num(val, stall_ms);
        if (!ok) return usage(), 2;
    }
    if (!have_group) return usage(), 2;

    struct sigaction sa {};
    sa.sa_handler = on_signal; // no SA_RESTART: poll must return to see the flag
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);

    try {
        nflowd::NflogSource src(cfg);
        std::printf("ready group=%u\n", static_cast<unsigned>(cfg.group));
        std::fflush(stdout);
        if (stall_ms > 0) ::usleep(static_cast<useconds_t>(stall_ms * 1000));

        std::uint64_t ip_bytes = 0;
        const auto count = [&ip_bytes](std::span<const std::byte> ip, const nflowd::PacketMeta&) {
            ip_bytes += ip_length(ip);
        };
        const std::int64_t deadline = monotonic_ms() + duration_s * 1000;
        pollfd pfd{src.fd(), POLLIN, 0};
        while (g_stop == 0) {
            if (max_packets != 0 && src.stats().packets >= max_packets) break;
            const std::int64_t left = deadline - monotonic_ms();
            if (left <= 0) break;
            // Poll only when a recv found nothing (or an overrun, after which data is waiting
            // and poll returns at once): under load this is one syscall per batch.
            if (src.receive(count) == 0) ::poll(&pfd, 1, static_cast<int>(left < 100 ? left : 100));
        }
        const nflowd::NflogStats& s = src.stats();
        std::printf(
            "packets=%llu bytes=%llu lost=%llu enobufs=%llu malformed=%llu messages=%llu "
            "batches=%llu timestamps=%llu seq_resets=%llu\n",
            static_cast<unsigned long long>(s.packets), static_cast<unsigned long long>(ip_bytes),
            static_cast<unsigned long long>(s.lost), static_cast<unsigned long long>(s.enobufs),
            static_cast<unsigned long long>(s.malformed),
            static_cast<unsigned long long>(s.messages), static_cast<unsigned long long>(s.batches),
            static_cast<unsigned long long>(s.kernel_timestamps),
            static_cast<unsigned long long>(s.seq_resets));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nflog_probe: %s\n", e.what());
        return 1;
    }
}
