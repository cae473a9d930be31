// collide_trace: writes a pcap of UDP flows chosen to share one bucket of one shard under
// the *old*, unkeyed flow hash (the hash-flooding attack of issue 10), or the same shape of
// trace with ordinary flows, so a test can compare what `nflowd --read` pays for each.
//
// The attacker model: flow keys are public inputs, so with a fixed hash anyone can search
// offline for keys that collide, then send one packet per key. Here: UDP between two fixed
// addresses, ports enumerated, keeping each key whose old hash lands in worker 0, bucket 0
// of a daemon run with the given --threads and --hashsize. A keyed hash defeats it: the
// same keys spread over every bucket because the search could not know the key.
#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// ---- frozen copy of the old hash (src/parse/packet.cpp before the keyed hash) ----------
// Kept verbatim so the attack stays reproducible against old builds: the search targets
// exactly what nflowd used to compute, shard = high 32 bits, bucket = low 32 bits.
constexpr std::uint64_t old_mix(std::uint64_t x) noexcept {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

struct Key {
    std::uint32_t src_addr, dst_addr;
    std::uint16_t src_port, dst_port;
    std::uint32_t in_if; // --read: 65535, no interface in a pcap
    std::uint8_t protocol, tos;
};

constexpr std::uint64_t old_hash_key(const Key& key) noexcept {
    const std::uint64_t a = (std::uint64_t{key.src_addr} << 32) | key.dst_addr;
    const std::uint64_t b = (std::uint64_t{key.src_port} << 48) |
                            (std::uint64_t{key.dst_port} << 32) |
                            (std::uint64_t{key.protocol} << 24) | (std::uint64_t{key.tos} << 16) |
                            (key.in_if & 0xffffU);
    const std::uint64_t c = key.in_if >> 16;
    return old_mix(old_mix(a ^ 0x9e3779b97f4a7c15ULL) ^ b ^ (c << 7));
}

// The old pipeline's pick (high half) and shard table's bucket_of (low half).
std::uint64_t old_shard(std::uint64_t h, std::uint64_t workers) noexcept {
    return ((h >> 32) * workers) >> 32;
}
std::uint64_t old_bucket(std::uint64_t h, std::uint64_t buckets) noexcept {
    return (std::uint64_t{static_cast<std::uint32_t>(h)} * buckets) >> 32;
}
// ------------------------------------------------------------------------------------------

struct Options {
    std::string out;
    std::string mode = "collide";
    std::uint32_t flows = 16384;
    std::uint32_t packets_per_flow = 4;
    std::uint64_t threads = 1;
    std::uint64_t hashsize = 4096; // the daemon's total, split over threads as nflowd does
};

[[noreturn]] void usage(int rc) {
    std::fputs("usage: collide_trace --out FILE.pcap [--mode collide|plain] [--flows N]\n"
               "         [--packets-per-flow P] [--threads T] [--hashsize H]\n"
               "  collide: UDP flows 198.51.100.1 -> 203.0.113.1 whose old unkeyed hash puts\n"
               "  them all in worker 0, bucket 0 of `nflowd --threads T --hashsize H`;\n"
               "  plain: as many flows with ports counting up. Packets go round-robin over\n"
               "  the flows, 1 us apart. A summary (key: value) goes to stdout.\n",
               rc == 0 ? stdout : stderr);
    std::exit(rc);
}

std::uint64_t number(const std::string& s) {
    std::size_t used = 0;
    const auto v = std::stoull(s, &used);
    if (used != s.size() || v == 0) throw std::invalid_argument("not a positive number: " + s);
    return v;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") usage(0);
        if (i + 1 >= argc) usage(2);
        const std::string value = argv[++i];
        if (arg == "--out")
            o.out = value;
        else if (arg == "--mode")
            o.mode = value;
        else if (arg == "--flows")
            o.flows = static_cast<std::uint32_t>(number(value));
        else if (arg == "--packets-per-flow")
            o.packets_per_flow = static_cast<std::uint32_t>(number(value));
        else if (arg == "--threads")
            o.threads = number(value);
        else if (arg == "--hashsize")
            o.hashsize = number(value);
        else
            usage(2);
    }
    if (o.out.empty() || (o.mode != "collide" && o.mode != "plain")) usage(2);
    return o;
}

constexpr std::uint32_t kSrc = 0xc6336401U; // 198.51.100.1
constexpr std::uint32_t kDst = 0xcb007101U; // 203.0.113.1

Key udp_key(std::uint32_t ports) {
    return Key{kSrc,
               kDst,
               static_cast<std::uint16_t>(ports >> 16),
               static_cast<std::uint16_t>(ports),
               65535,
               17,
               0};
}

// Enumerates port pairs; returns the keys and how many hash evaluations it took.
std::vector<Key> choose(const Options& o, std::uint64_t& evaluations) {
    std::vector<Key> keys;
    keys.reserve(o.flows);
    // As nflowd's shard_config: each worker gets hashsize / threads, at least 256 buckets.
    const std::uint64_t per_shard = std::max<std::uint64_t>(256, o.hashsize / o.threads);
    std::uint32_t ports = 0x04000400U; // from 1024 -> 1024 on, past the well-known ports
    evaluations = 0;
    while (keys.size() < o.flows) {
        const Key k = udp_key(ports++);
        if (ports == 0) throw std::runtime_error("port space exhausted");
        if (o.mode == "collide") {
            ++evaluations;
            const std::uint64_t h = old_hash_key(k);
            if ((o.threads > 1 && old_shard(h, o.threads) != 0) || old_bucket(h, per_shard) != 0)
                continue;
        }
        keys.push_back(k);
    }
    return keys;
}

void put16(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) {
    put16(p, v >> 16);
    put16(p + 2, v);
}

// Ethernet + IPv4 + UDP headers of one packet of `key`; the frame is captured up to the UDP
// header (as NFLOG --nflog-size would cut it) while its lengths say 100 bytes of IP.
constexpr std::uint32_t kIpTotal = 100;
constexpr std::uint32_t kCaptured = 14 + 20 + 8;

std::array<std::uint8_t, kCaptured> frame(const Key& key, std::uint16_t id) {
    std::array<std::uint8_t, kCaptured> f{};
    static constexpr std::uint8_t macs[12] = {2, 0, 0x5e, 0x10, 0, 0xfe, 2, 0, 0x5e, 0x10, 0, 1};
    std::memcpy(f.data(), macs, sizeof macs);
    put16(&f[12], 0x0800);
    std::uint8_t* ip = &f[14];
    ip[0] = 0x45;
    put16(ip + 2, kIpTotal);
    put16(ip + 4, id);
    ip[8] = 64;
    ip[9] = key.protocol;
    put32(ip + 12, key.src_addr);
    put32(ip + 16, key.dst_addr);
    std::uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2) sum += (std::uint32_t{ip[i]} << 8) | ip[i + 1];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    put16(ip + 10, ~sum & 0xffff);
    std::uint8_t* udp = ip + 20;
    put16(udp, key.src_port);
    put16(udp + 2, key.dst_port);
    put16(udp + 4, kIpTotal - 20);
    return f;
}

struct PcapClose {
    void operator()(pcap_t* p) const { pcap_close(p); }
};
struct DumperClose {
    void operator()(pcap_dumper_t* d) const { pcap_dump_close(d); }
};

void write(const Options& o, const std::vector<Key>& keys) {
    const std::unique_ptr<pcap_t, PcapClose> dead(pcap_open_dead(DLT_EN10MB, 65535));
    if (!dead) throw std::runtime_error("pcap_open_dead failed");
    const std::unique_ptr<pcap_dumper_t, DumperClose> dumper(
        pcap_dump_open(dead.get(), o.out.c_str()));
    if (!dumper) throw std::runtime_error(o.out + ": " + pcap_geterr(dead.get()));
    constexpr std::int64_t kStart = 1700000000;
    std::uint64_t n = 0;
    for (std::uint32_t round = 0; round < o.packets_per_flow; ++round) {
        for (const Key& k : keys) {
            const auto f = frame(k, static_cast<std::uint16_t>(n));
            pcap_pkthdr h{};
            h.ts.tv_sec = static_cast<time_t>(kStart + static_cast<std::int64_t>(n / 1000000));
            h.ts.tv_usec = static_cast<suseconds_t>(n % 1000000);
            h.caplen = kCaptured;
            h.len = 14 + kIpTotal;
            pcap_dump(reinterpret_cast<u_char*>(dumper.get()), &h, f.data());
            ++n;
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    try {
        const Options o = parse(argc, argv);
        std::uint64_t evaluations = 0;
        const auto keys = choose(o, evaluations);
        write(o, keys);
        std::printf(
            "mode: %s\nflows: %u\npackets: %llu\nbytes: %llu\nhash_evaluations: %llu\n",
            o.mode.c_str(), o.flows,
            static_cast<unsigned long long>(std::uint64_t{o.flows} * o.packets_per_flow),
            static_cast<unsigned long long>(std::uint64_t{o.flows} * o.packets_per_flow * kIpTotal),
            static_cast<unsigned long long>(evaluations));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "collide_trace: %s\n", e.what());
        return 1;
    }
}
