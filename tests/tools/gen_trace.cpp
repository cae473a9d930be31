// gen_trace: writes a deterministic, realistic-looking pcap plus the NetFlow v5 ground truth
// for it, so end-to-end tests and benchmarks can check exported totals exactly.
//
// Traffic is a mix of sessions (TCP with handshake and FIN or RST, mid-stream TCP, SYN scans,
// DNS, UDP streams, fragmented UDP, ICMP echo and unreachables, some of it over IPv6), placed
// at random in a short time span. Every IPv4 flow key belongs to exactly one session, and
// TCP FIN/RST only ever ends a direction, so with timeouts longer than the span each key is
// exported as exactly one flow. Frames are cut at --snaplen like NFLOG --nflog-size would,
// while the IP total length keeps the real size.
#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <vector>

namespace {

struct Options {
    std::uint64_t flows = 10000;
    std::uint64_t packets = 100000;
    std::uint64_t seed = 1;
    std::uint32_t snaplen = 128;
    std::string linktype = "en10mb";
    std::string out;
    std::string truth;
    std::string truth6; // optional: the IPv6 flows' truth, same columns
    double ipv6_share = 0.05;
    double frag_share = 0.02;
    double vlan_share = 0.0;  // en10mb only: frames with 802.1Q (a quarter of them QinQ)
    double nonip_share = 0.0; // en10mb/sll only: ARP frames added on top of --packets
    bool eth_pad = true;      // en10mb: pad short frames to 60 bytes, as received frames are
    double duration = 30.0;   // seconds spanned by the trace
    std::int64_t start = 1700000000;
};

[[noreturn]] void usage(int rc) {
    std::fputs(
        "usage: gen_trace --out FILE.pcap --truth FILE.csv [options]\n"
        "  --flows N          flow keys to generate (IPv4 and IPv6)        [10000]\n"
        "  --packets N        IP packets to write                          [100000]\n"
        "  --seed S           random seed; same seed, same bytes           [1]\n"
        "  --snaplen N        bytes of each IP packet captured             [128]\n"
        "  --linktype T       en10mb | raw | sll | nflog                   [en10mb]\n"
        "  --ipv6-share F     share of sessions over IPv6                  [0.05]\n"
        "  --frag-share F     share of sessions sending fragmented UDP     [0.02]\n"
        "  --vlan-share F     share of sessions 802.1Q tagged (en10mb)     [0]\n"
        "  --nonip-share F    ARP frames per IP packet (en10mb, sll)       [0]\n"
        "  --eth-pad 0|1      pad Ethernet frames to 60 bytes (en10mb)     [1]\n"
        "  --duration S       time span of the trace in seconds            [30]\n"
        "  --truth6 FILE.csv  also write the IPv6 flows' truth (same columns) [none]\n"
        "  --start EPOCH      time of the first packet                     [1700000000]\n"
        "Truth CSV: src,dst,sport,dport,proto,tos,packets,bytes,tcp_flags,in_if,out_if,first_ms,\n"
        "last_ms, one line per IPv4 NetFlow key (ICMP: sport 0, dport type<<8|code; non-first\n"
        "fragments: ports 0); times are Unix milliseconds, truncated. --truth6: the same per\n"
        "IPv6 key (addresses in RFC 5952 text, ICMPv6 protocol 58).\n"
        "A summary (key: value) goes to stdout.\n",
        rc == 0 ? stdout : stderr);
    std::exit(rc);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        std::string value;
        if (arg == "-h" || arg == "--help") usage(0);
        if (const auto eq = arg.find('='); eq != std::string::npos) {
            value = arg.substr(eq + 1);
            arg.resize(eq);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            std::cerr << "gen_trace: " << arg << " needs a value\n";
            usage(2);
        }
        try {
            if (arg == "--flows")
                o.flows = std::stoull(value);
            else if (arg == "--packets")
                o.packets = std::stoull(value);
            else if (arg == "--seed")
                o.seed = std::stoull(value);
            else if (arg == "--snaplen")
                o.snaplen = static_cast<std::uint32_t>(std::stoul(value));
            else if (arg == "--linktype")
                o.linktype = value;
            else if (arg == "--out")
                o.out = value;
            else if (arg == "--truth")
                o.truth = value;
            else if (arg == "--truth6")
                o.truth6 = value;
            else if (arg == "--ipv6-share")
                o.ipv6_share = std::stod(value);
            else if (arg == "--frag-share")
                o.frag_share = std::stod(value);
            else if (arg == "--vlan-share")
                o.vlan_share = std::stod(value);
            else if (arg == "--nonip-share")
                o.nonip_share = std::stod(value);
            else if (arg == "--duration")
                o.duration = std::stod(value);
            else if (arg == "--eth-pad")
                o.eth_pad = std::stoi(value) != 0;
            else if (arg == "--start")
                o.start = std::stoll(value);
            else {
                std::cerr << "gen_trace: unknown option " << arg << "\n";
                usage(2);
            }
        } catch (const std::logic_error&) {
            std::cerr << "gen_trace: bad value for " << arg << ": " << value << "\n";
            usage(2);
        }
    }
    if (o.out.empty() || o.truth.empty()) usage(2);
    if (o.linktype != "en10mb" && o.linktype != "raw" && o.linktype != "sll" &&
        o.linktype != "nflog") {
        std::cerr << "gen_trace: unknown link type " << o.linktype << "\n";
        usage(2);
    }
    if (o.snaplen < 68 || o.snaplen > 65535) {
        std::cerr << "gen_trace: --snaplen must be 68..65535 (headers must fit)\n";
        usage(2);
    }
    if (o.duration <= 0) usage(2);
    return o;
}

// splitmix64: tiny, and the same numbers on every platform and standard library, which the
// std:: distributions do not promise.
constexpr std::uint64_t mix(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

class Rng {
  public:
    explicit Rng(std::uint64_t seed) : s_(seed) {}
    std::uint64_t next() noexcept { return mix(s_++ * 0x2545f4914f6cdd1dULL); }
    double unit() noexcept { return double(next() >> 11) * 0x1.0p-53; } // [0, 1)
    std::uint32_t below(std::uint32_t n) noexcept {
        return static_cast<std::uint32_t>((next() >> 32) * n >> 32);
    }
    bool chance(double p) noexcept { return unit() < p; }

  private:
    std::uint64_t s_;
};

// A stateless draw for packet `idx` of session `sess`: packets are built in time order across
// sessions, so their random choices must not depend on generation order.
struct Draw {
    std::uint64_t h;
    Draw(std::uint64_t seed, std::uint32_t sess, std::uint32_t idx, std::uint32_t salt)
        : h(mix(seed ^ mix((std::uint64_t{sess} << 32 | idx) ^ (std::uint64_t{salt} << 56)))) {}
    std::uint32_t below(std::uint32_t n) const noexcept {
        return static_cast<std::uint32_t>((h >> 32) * n >> 32);
    }
    double unit() const noexcept { return double(h >> 11) * 0x1.0p-53; }
};

enum class Kind : std::uint8_t {
    tcp_full, // SYN ... FIN both ways
    tcp_rst,  // SYN ... RST from one side
    tcp_mid,  // already running when the capture started: no SYN, no FIN
    tcp_scan, // lone SYN, maybe answered by RST
    dns,      // one query, maybe one response
    udp_stream,
    udp_frag, // server sends datagrams larger than the MTU
    icmp_echo,
    icmp_unreach,
};

enum class Mode : std::uint8_t { download, upload, interactive };

struct Session {
    Kind kind;
    Mode mode;
    bool v6;
    bool answered; // scan/dns: the other side replies; udp_stream: bidirectional
    bool tcp_ts;   // TCP timestamps option on every segment
    std::uint8_t tos[2];
    std::uint8_t ttl[2];
    std::uint8_t vlan; // 0 none, 1 802.1Q, 2 QinQ
    std::uint8_t frags_per_dgram;
    std::uint16_t port[2]; // client, server
    std::uint32_t addr4[2];
    std::uint32_t ifindex[2]; // in_if of client->server packets, of server->client packets
    std::uint32_t packets;
    std::uint64_t start_us;
    std::uint32_t gap_us;
    float weight;
};

// NetFlow key slots of one session: 0 client->server, 1 server->client, 2 non-first fragments.
struct Acc {
    std::uint32_t packets = 0;
    std::uint64_t bytes = 0;
    std::uint64_t first_us = 0, last_us = 0; // since --start
    std::uint8_t flags = 0;
};

struct Tuple {
    std::uint32_t src, dst;
    std::uint16_t sport, dport;
    std::uint8_t proto;
    bool operator==(const Tuple&) const = default;
};
struct TupleHash {
    std::size_t operator()(const Tuple& t) const noexcept {
        return mix((std::uint64_t{t.src} << 32 | t.dst) ^
                   mix(std::uint64_t{t.sport} << 24 | std::uint64_t{t.dport} << 8 | t.proto));
    }
};

constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
constexpr std::uint32_t kUnknownIf = 65535;

// What one packet of a session is.
struct Pkt {
    int dir;             // 0 client->server, 1 server->client
    int slot;            // truth slot
    std::uint32_t total; // IP total length (IPv4) / header + payload length (IPv6)
    std::uint8_t proto;
    std::uint8_t flags = 0; // TCP
    std::uint8_t icmp_type = 0, icmp_code = 0;
    std::uint16_t frag_off = 0; // in 8-byte units
    bool more_frags = false;
    std::uint16_t ip_id_add = 0;
    std::uint32_t udp_len = 0;
};

constexpr std::uint32_t kMtu = 1500;

std::uint32_t tcp_header_len(const Session& s, std::uint8_t flags) {
    if (flags & kSyn) return 40;
    return s.tcp_ts ? 32 : 20;
}

std::uint32_t ip_header_len(const Session& s) {
    return s.v6 ? 40 : 20;
}

Pkt describe(const Session& s, std::uint32_t idx, std::uint64_t seed, std::uint32_t sess) {
    const Draw d(seed, sess, idx, 1);
    const Draw d2(seed, sess, idx, 2);
    const std::uint32_t n = s.packets;
    const std::uint32_t iph = ip_header_len(s);
    Pkt p{};
    switch (s.kind) {
    case Kind::tcp_full:
    case Kind::tcp_rst:
    case Kind::tcp_mid:
    case Kind::tcp_scan: {
        p.proto = 6;
        const bool handshake = s.kind != Kind::tcp_mid;
        if (s.kind == Kind::tcp_scan) {
            p.dir = static_cast<int>(idx);
            p.flags = idx == 0 ? kSyn : (kRst | kAck);
        } else if (handshake && idx == 0) {
            p.dir = 0;
            p.flags = kSyn;
        } else if (handshake && idx == 1) {
            p.dir = 1;
            p.flags = kSyn | kAck;
        } else if (handshake && idx == 2) {
            p.dir = 0;
            p.flags = kAck;
        } else if (s.kind == Kind::tcp_full && idx == n - 2) {
            p.dir = 0;
            p.flags = kFin | kAck;
        } else if (s.kind == Kind::tcp_full && idx == n - 1) {
            p.dir = 1;
            p.flags = kFin | kAck;
        } else if (s.kind == Kind::tcp_rst && idx == n - 1) {
            p.dir = s.mode == Mode::upload ? 0 : 1;
            p.flags = kRst | kAck;
        } else if (s.kind == Kind::tcp_mid && idx < 2) {
            p.dir = static_cast<int>(idx);
            p.flags = kAck;
        } else {
            const double to_server = s.mode == Mode::download ? 0.35
                                     : s.mode == Mode::upload ? 0.65
                                                              : 0.5;
            p.dir = d.unit() < to_server ? 0 : 1;
            p.flags = kAck;
        }
        const std::uint32_t th = tcp_header_len(s, p.flags);
        std::uint32_t payload = 0;
        if (!(p.flags & (kSyn | kFin | kRst))) {
            const bool bulk =
                (s.mode == Mode::download && p.dir == 1) || (s.mode == Mode::upload && p.dir == 0);
            const std::uint32_t mss = kMtu - iph - th;
            if (bulk) {
                payload = d2.unit() < 0.8 ? mss : 1 + d2.below(mss);
            } else if (s.mode == Mode::interactive) {
                payload = 20 + d2.below(180);
            } else {
                payload = d2.unit() < 0.8 ? 0 : 100 + d2.below(600); // ACKs, some requests
            }
            if (payload) p.flags |= kPsh;
        }
        p.total = iph + th + payload;
        break;
    }
    case Kind::dns:
        p.proto = 17;
        p.dir = static_cast<int>(idx);
        p.udp_len = 8 + (idx == 0 ? 28 + d.below(40) : 60 + d.below(440));
        p.total = iph + p.udp_len;
        break;
    case Kind::udp_stream:
        p.proto = 17;
        p.dir = s.answered ? (idx < 2 ? static_cast<int>(idx) : (d.unit() < 0.5 ? 0 : 1)) : 0;
        p.udp_len = 8 + (s.mode == Mode::download ? 1200 + d2.below(52) : 160 + d2.below(40));
        p.total = iph + p.udp_len;
        break;
    case Kind::udp_frag: {
        // Datagrams of frags_per_dgram fragments each (the last one may have fewer); every
        // fragment but a datagram's last carries 1480 bytes.
        p.proto = 17;
        p.dir = 1;
        const std::uint32_t fpd = s.frags_per_dgram;
        const std::uint32_t dgram = idx / fpd;
        const std::uint32_t frag = idx % fpd;
        const std::uint32_t in_dgram = std::min(fpd, n - dgram * fpd);
        const Draw dd(seed, sess, dgram, 3);
        const std::uint32_t last_bytes = 8 + dd.below(kMtu - iph - 8 - 8);
        const std::uint32_t per_frag = kMtu - iph;
        p.ip_id_add = static_cast<std::uint16_t>(dgram);
        p.frag_off = static_cast<std::uint16_t>(frag * per_frag / 8);
        p.more_frags = frag + 1 < in_dgram;
        p.udp_len = (in_dgram - 1) * per_frag + last_bytes;
        p.total = iph + (p.more_frags ? per_frag : last_bytes);
        p.slot = frag == 0 ? 1 : 2;
        return p;
    }
    case Kind::icmp_echo:
        p.proto = s.v6 ? 58 : 1;
        p.dir = static_cast<int>(idx & 1U);
        p.icmp_type = s.v6 ? (p.dir ? 129 : 128) : (p.dir ? 0 : 8);
        p.total = iph + 8 + (s.mode == Mode::download ? 56U : 32U);
        break;
    case Kind::icmp_unreach:
        p.proto = s.v6 ? 58 : 1;
        p.dir = 1;
        p.icmp_type = s.v6 ? 1 : 3;
        p.icmp_code = s.mode == Mode::download ? 3 : 1;
        p.total = iph + 8 + iph + 8; // quotes the offending header and 8 bytes of it
        break;
    }
    p.slot = p.dir;
    return p;
}

std::uint32_t min_packets(const Session& s) {
    switch (s.kind) {
    case Kind::tcp_full:
        return 5;
    case Kind::tcp_rst:
        return 4;
    case Kind::tcp_mid:
        return 2;
    case Kind::tcp_scan:
        return s.answered ? 2 : 1;
    case Kind::dns:
        return s.answered ? 2 : 1;
    case Kind::udp_stream:
        return s.answered ? 2 : 1;
    case Kind::udp_frag:
        return 2;
    case Kind::icmp_echo:
        return 2;
    case Kind::icmp_unreach:
        return 1;
    }
    return 1;
}

bool elastic(Kind k) {
    return k == Kind::tcp_full || k == Kind::tcp_rst || k == Kind::tcp_mid ||
           k == Kind::udp_stream || k == Kind::udp_frag || k == Kind::icmp_echo;
}

// Keys (IPv4 truth slots) a session can produce, as tuples, for the uniqueness check.
int session_tuples(const Session& s, std::array<Tuple, 3>& t) {
    const std::uint32_t c = s.addr4[0], v = s.addr4[1];
    switch (s.kind) {
    case Kind::icmp_echo:
        t[0] = {c, v, 0, 0x0800, 1};
        t[1] = {v, c, 0, 0x0000, 1};
        return 2;
    case Kind::icmp_unreach:
        t[0] = {v, c, 0, static_cast<std::uint16_t>(3U << 8 | (s.mode == Mode::download ? 3U : 1U)),
                1};
        return 1;
    case Kind::udp_frag:
        t[0] = {v, c, s.port[1], s.port[0], 17};
        t[1] = {v, c, 0, 0, 17};
        return 2;
    default: {
        const std::uint8_t proto = (s.kind == Kind::dns || s.kind == Kind::udp_stream)
                                       ? std::uint8_t{17}
                                       : std::uint8_t{6};
        t[0] = {c, v, s.port[0], s.port[1], proto};
        t[1] = {v, c, s.port[1], s.port[0], proto};
        const bool two = s.kind == Kind::tcp_full || s.kind == Kind::tcp_rst ||
                         s.kind == Kind::tcp_mid || s.answered;
        return two ? 2 : 1;
    }
    }
}

std::uint8_t pick_tos(Rng& r) {
    const double u = r.unit();
    if (u < 0.75) return 0x00;
    if (u < 0.80) return 0x10;
    if (u < 0.85) return 0x28; // AF11
    if (u < 0.88) return 0x48; // AF21
    if (u < 0.95) return 0xb8; // EF
    return 0x20;               // CS1
}

std::uint16_t pick_server_port(Rng& r, Kind k) {
    static constexpr std::uint16_t tcp_ports[] = {443, 443, 443,  443,  80,   80,  22,
                                                  25,  993, 8080, 3389, 5222, 853, 8443};
    static constexpr std::uint16_t udp_ports[] = {443, 443, 123, 5060, 4500, 3478, 1194, 2049};
    if (k == Kind::dns) return 53;
    if (k == Kind::udp_stream || k == Kind::udp_frag)
        return udp_ports[r.below(sizeof udp_ports / sizeof udp_ports[0])];
    if (k == Kind::tcp_scan) return static_cast<std::uint16_t>(1 + r.below(10000));
    return tcp_ports[r.below(sizeof tcp_ports / sizeof tcp_ports[0])];
}

std::vector<Session> make_sessions(const Options& o, std::uint64_t& keys4, std::uint64_t& keys6) {
    Rng r(mix(o.seed) ^ 0x5e55105ULL);
    const bool nflog = o.linktype == "nflog";
    std::vector<Session> out;
    out.reserve(o.flows / 2 + 16);
    std::unordered_set<Tuple, TupleHash> used;
    used.reserve(o.flows * 2);
    keys4 = keys6 = 0;
    static constexpr std::uint32_t dns_servers[] = {0x08080808, 0x01010101, 0x09090909, 0x0a000035};
    while (keys4 + keys6 < o.flows) {
        Session s{};
        const double u = r.unit();
        const double frag = o.frag_share;
        const double rest = 1.0 - frag;
        s.kind = u < frag                 ? Kind::udp_frag
                 : u < frag + rest * 0.38 ? Kind::tcp_full
                 : u < frag + rest * 0.46 ? Kind::tcp_rst
                 : u < frag + rest * 0.56 ? Kind::tcp_mid
                 : u < frag + rest * 0.62 ? Kind::tcp_scan
                 : u < frag + rest * 0.86 ? Kind::dns
                 : u < frag + rest * 0.92 ? Kind::udp_stream
                 : u < frag + rest * 0.97 ? Kind::icmp_echo
                                          : Kind::icmp_unreach;
        s.v6 = s.kind != Kind::udp_frag && r.chance(o.ipv6_share);
        const double m = r.unit();
        s.mode = m < 0.6 ? Mode::download : m < 0.8 ? Mode::upload : Mode::interactive;
        s.answered = s.kind == Kind::tcp_scan ? r.chance(0.5) : r.chance(0.9);
        s.tcp_ts = r.chance(0.6);
        s.tos[0] = pick_tos(r);
        s.tos[1] = r.chance(0.7) ? s.tos[0] : std::uint8_t{0};
        s.ttl[0] = 64;
        s.ttl[1] = static_cast<std::uint8_t>(r.chance(0.5) ? 64 - r.below(20) : 128 - r.below(20));
        s.vlan = r.chance(o.vlan_share) ? (r.chance(0.25) ? 2 : 1) : 0;
        s.frags_per_dgram = static_cast<std::uint8_t>(2 + r.below(3));
        if (nflog) {
            const std::uint32_t lan = 2 + r.below(3);
            s.ifindex[0] = lan;
            s.ifindex[1] = 5 + r.below(2);
        } else {
            s.ifindex[0] = s.ifindex[1] = kUnknownIf;
        }
        // Pareto(1.1) sizes: mostly mice, a few elephants; the cap keeps one flow from
        // eating the whole packet budget of a small trace.
        s.weight = static_cast<float>(std::min(std::pow(1.0 - r.unit(), -1.0 / 1.1), 3000.0));
        if (s.kind == Kind::icmp_echo) s.weight *= 0.01F;
        if (s.kind == Kind::udp_frag) s.weight *= 0.3F;
        for (int attempt = 0;; ++attempt) {
            s.port[0] = static_cast<std::uint16_t>(32768 + r.below(28232));
            s.port[1] = pick_server_port(r, s.kind);
            s.addr4[0] = 0x0a000000U | (1 + r.below(0xfffffe)); // 10/8 clients
            s.addr4[1] = s.kind == Kind::dns ? dns_servers[r.below(4)]
                                             : 0xc6120000U | r.below(0x20000); // 198.18/15
            if (s.v6) break;
            std::array<Tuple, 3> t{};
            const int k = session_tuples(s, t);
            bool clash = false;
            for (int i = 0; i < k; ++i) clash = clash || used.contains(t[i]);
            if (!clash) {
                for (int i = 0; i < k; ++i) used.insert(t[i]);
                break;
            }
            if (attempt > 100) throw std::runtime_error("cannot find a free flow key");
        }
        std::array<Tuple, 3> t{};
        (s.v6 ? keys6 : keys4) += static_cast<std::uint64_t>(session_tuples(s, t));
        s.packets = min_packets(s);
        out.push_back(s);
    }
    return out;
}

// Hands out the packet budget beyond every session's minimum, in proportion to weights.
void size_sessions(std::vector<Session>& ss, std::uint64_t target) {
    std::uint64_t base = 0;
    double wsum = 0;
    for (const auto& s : ss) {
        base += s.packets;
        if (elastic(s.kind)) wsum += s.weight;
    }
    if (target <= base || wsum == 0) {
        if (target < base)
            std::cerr << "gen_trace: --packets too small for the flows, writing " << base << "\n";
        return;
    }
    const std::uint64_t extra = target - base;
    std::uint64_t given = 0;
    std::size_t biggest = 0;
    for (std::size_t i = 0; i < ss.size(); ++i) {
        if (!elastic(ss[i].kind)) continue;
        const auto add = static_cast<std::uint64_t>(double(extra) * ss[i].weight / wsum);
        ss[i].packets += static_cast<std::uint32_t>(add);
        given += add;
        if (ss[i].weight > ss[biggest].weight || !elastic(ss[biggest].kind)) biggest = i;
    }
    // Rounding leftovers go to the largest session; that keeps --packets exact.
    ss[biggest].packets += static_cast<std::uint32_t>(extra - given);
}

void place_in_time(std::vector<Session>& ss, const Options& o) {
    Rng r(mix(o.seed) ^ 0x7133ULL);
    const auto span = static_cast<std::uint64_t>(o.duration * 1e6);
    for (auto& s : ss) {
        // Gaps log-uniform in 50 us .. 200 ms, squeezed so the session ends inside the span.
        const double gap = 50.0 * std::pow(4000.0, r.unit());
        s.start_us = static_cast<std::uint64_t>(r.unit() * double(span) * 0.95);
        const double room = double(span - s.start_us) / double(s.packets);
        s.gap_us = static_cast<std::uint32_t>(std::max(1.0, std::min(gap, room)));
    }
}

struct Event {
    std::uint64_t t_us;
    std::uint32_t sess; // ss.size() = an ARP frame
    std::uint32_t idx;
};

void put16(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) {
    put16(p, v >> 16);
    put16(p + 2, v & 0xffffU);
}

void ipv4_checksum(std::uint8_t* h) {
    std::uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2) sum += std::uint32_t{h[i]} << 8 | h[i + 1];
    while (sum >> 16) sum = (sum & 0xffffU) + (sum >> 16);
    put16(h + 10, ~sum & 0xffffU);
}

void put_v6_addr(std::uint8_t* p, std::uint32_t v4, bool server) {
    // 2001:db8:<c|5>::<v4>: the IPv4 draw keeps IPv6 sessions as varied as IPv4 ones.
    std::memset(p, 0, 16);
    put32(p, 0x20010db8);
    put16(p + 4, server ? 0x5 : 0xc);
    put32(p + 12, v4);
}

// Writes the first `cap` bytes of the packet's IP header and payload to `b`.
void build_ip(std::uint8_t* b, std::uint32_t cap, const Session& s, const Pkt& p,
              std::uint32_t idx) {
    std::memset(b, 0, cap);
    const int d = p.dir;
    const std::uint32_t src = s.addr4[d], dst = s.addr4[1 - d];
    std::uint8_t* l4;
    if (!s.v6) {
        b[0] = 0x45;
        b[1] = s.tos[d];
        put16(b + 2, p.total);
        put16(b + 4, (s.addr4[d] * 7 + idx + p.ip_id_add) & 0xffffU);
        const std::uint32_t df = p.proto == 6 ? 0x4000U : 0U;
        put16(b + 6, df | (p.more_frags ? 0x2000U : 0U) | p.frag_off);
        b[8] = s.ttl[d];
        b[9] = p.proto;
        put32(b + 12, src);
        put32(b + 16, dst);
        ipv4_checksum(b);
        l4 = b + 20;
        if (p.frag_off != 0) return; // non-first fragment: no L4 header
    } else {
        put32(b, 0x60000000U | std::uint32_t{s.tos[d]} << 20);
        put16(b + 4, p.total - 40);
        b[6] = p.proto;
        b[7] = s.ttl[d];
        put_v6_addr(b + 8, src, d == 1);
        put_v6_addr(b + 24, dst, d == 0);
        l4 = b + 40;
    }
    const std::uint16_t sport = s.port[d], dport = s.port[1 - d];
    if (p.proto == 6) {
        const std::uint32_t th = tcp_header_len(s, p.flags);
        put16(l4, sport);
        put16(l4 + 2, dport);
        put32(l4 + 4, 0x10000000U * static_cast<std::uint32_t>(d) + idx * 1000U);
        if (p.flags & kAck) put32(l4 + 8, 0x20000000U + idx * 999U);
        l4[12] = static_cast<std::uint8_t>(th / 4 << 4);
        l4[13] = p.flags;
        put16(l4 + 14, 64240);
        std::uint8_t* opt = l4 + 20;
        if (p.flags & kSyn) {
            // MSS, SACK permitted, timestamps, NOP, window scale: Linux's SYN options.
            const std::uint8_t syn_opts[20] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0,
                                               0, 1, 0,    0,    0, 0, 1, 3,  3, 7};
            std::memcpy(opt, syn_opts, 20);
        } else if (th == 32) {
            opt[0] = 1;
            opt[1] = 1;
            opt[2] = 8;
            opt[3] = 10;
            put32(opt + 4, 1000 + idx);
        }
    } else if (p.proto == 17) {
        put16(l4, sport);
        put16(l4 + 2, dport);
        put16(l4 + 4, p.udp_len);
    } else {
        l4[0] = p.icmp_type;
        l4[1] = p.icmp_code;
        if (p.icmp_type == 3 || p.icmp_type == 1) {
            // Quote the UDP probe that caused the error, as a router would.
            std::uint8_t* q = l4 + 8;
            if (!s.v6) {
                q[0] = 0x45;
                put16(q + 2, 60);
                q[8] = 1;
                q[9] = 17;
                put32(q + 12, dst);
                put32(q + 16, src);
                put16(q + 20, 33434);
                put16(q + 22, 33434);
            }
        } else {
            put16(l4 + 4, s.port[0]);
            put16(l4 + 6, idx / 2);
        }
    }
}

class Writer {
  public:
    explicit Writer(const Options& o) : o_(o) {
        if (o.linktype == "en10mb")
            dlt_ = DLT_EN10MB;
        else if (o.linktype == "raw")
            dlt_ = DLT_RAW;
        else if (o.linktype == "sll")
            dlt_ = DLT_LINUX_SLL;
        else
            dlt_ = DLT_NFLOG;
        // NFLOG frames always hold the whole netlink message, --nflog-size cut the payload.
        const int snap = dlt_ == DLT_NFLOG ? 65535 : static_cast<int>(o.snaplen);
        dead_ = pcap_open_dead(dlt_, snap);
        dumper_ = pcap_dump_open(dead_, o.out.c_str());
        if (!dumper_) throw std::runtime_error(o.out + ": " + pcap_geterr(dead_));
    }
    ~Writer() {
        if (dumper_) pcap_dump_close(dumper_);
        if (dead_) pcap_close(dead_);
    }
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    void packet(std::uint64_t t_us, const Session& s, const Pkt& p, std::uint32_t idx) {
        const std::uint32_t ipcap = std::min(p.total, o_.snaplen);
        std::uint32_t hdr = 0;
        std::uint32_t wire = 0;
        switch (dlt_) {
        case DLT_EN10MB: {
            hdr = ethernet(s.v6 ? 0x86dd : 0x0800, s.vlan, p.dir);
            wire = hdr + p.total;
            if (o_.eth_pad) wire = std::max(wire, 60U); // short frames arrive padded
            break;
        }
        case DLT_LINUX_SLL:
            hdr = sll(s.v6 ? 0x86dd : 0x0800, p.dir);
            wire = hdr + p.total;
            break;
        case DLT_NFLOG:
            hdr = nflog_head(t_us, s, p);
            break;
        default:
            wire = p.total;
            break;
        }
        std::uint32_t cap;
        if (dlt_ == DLT_NFLOG) {
            build_ip(buf_.data() + hdr, ipcap, s, p, idx);
            const std::uint32_t padded = (ipcap + 3U) & ~3U;
            std::memset(buf_.data() + hdr + ipcap, 0, padded - ipcap);
            cap = wire = hdr + padded;
        } else {
            cap = std::min(wire, o_.snaplen);
            // Headers must be built whole even where the frame cut ends before them.
            build_ip(buf_.data() + hdr, std::max(cap - std::min(cap, hdr), ipcap), s, p, idx);
            if (cap > hdr + p.total)
                std::memset(buf_.data() + hdr + p.total, 0, cap - hdr - p.total);
        }
        emit(t_us, cap, wire);
    }

    void arp(std::uint64_t t_us, std::uint32_t n) {
        const std::uint32_t hdr = dlt_ == DLT_EN10MB ? ethernet(0x0806, 0, 0) : sll(0x0806, 0);
        std::uint8_t* a = buf_.data() + hdr;
        std::memset(a, 0, 28);
        put16(a, 1);
        put16(a + 2, 0x0800);
        a[4] = 6;
        a[5] = 4;
        put16(a + 6, 1);
        put32(a + 14, 0x0a000001);
        put32(a + 24, 0x0a000000U | (n & 0xffffffU));
        const std::uint32_t wire = std::max(hdr + 28, dlt_ == DLT_EN10MB ? 60U : 0U);
        if (wire > hdr + 28) std::memset(a + 28, 0, wire - hdr - 28);
        emit(t_us, std::min(wire, o_.snaplen), wire);
    }

  private:
    void emit(std::uint64_t t_us, std::uint32_t cap, std::uint32_t wire) {
        pcap_pkthdr h{};
        h.ts.tv_sec = static_cast<time_t>(o_.start + static_cast<std::int64_t>(t_us / 1000000));
        h.ts.tv_usec = static_cast<suseconds_t>(t_us % 1000000);
        h.caplen = cap;
        h.len = wire;
        pcap_dump(reinterpret_cast<u_char*>(dumper_), &h, buf_.data());
    }

    std::uint32_t ethernet(std::uint32_t type, int vlan, int dir) {
        std::uint8_t* e = buf_.data();
        static constexpr std::uint8_t host[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};
        static constexpr std::uint8_t gw[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0xfe};
        std::memcpy(e, dir == 0 ? gw : host, 6);
        std::memcpy(e + 6, dir == 0 ? host : gw, 6);
        std::uint32_t off = 12;
        if (vlan == 2) {
            put16(e + off, 0x88a8);
            put16(e + off + 2, 200);
            off += 4;
        }
        if (vlan != 0) {
            put16(e + off, 0x8100);
            put16(e + off + 2, 100);
            off += 4;
        }
        put16(e + off, type);
        return off + 2;
    }

    std::uint32_t sll(std::uint32_t type, int dir) {
        std::uint8_t* e = buf_.data();
        put16(e, dir == 0 ? 4 : 0); // outgoing / to us
        put16(e + 2, 1);
        put16(e + 4, 6);
        static constexpr std::uint8_t host[8] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, 0, 0};
        std::memcpy(e + 6, host, 8);
        put16(e + 14, type);
        return 16;
    }

    void tlv(std::uint32_t& off, std::uint16_t type, const std::uint8_t* v, std::uint16_t len) {
        // TLV headers in host order, as the kernel writes them and tcpdump stores them.
        const std::uint16_t l = static_cast<std::uint16_t>(4 + len);
        std::memcpy(buf_.data() + off, &l, 2);
        std::memcpy(buf_.data() + off + 2, &type, 2);
        if (v) std::memcpy(buf_.data() + off + 4, v, len);
        const std::uint32_t padded = (l + 3U) & ~3U;
        std::memset(buf_.data() + off + l, 0, padded - l);
        off += padded;
    }

    std::uint32_t nflog_head(std::uint64_t t_us, const Session& s, const Pkt& p) {
        std::uint8_t* e = buf_.data();
        e[0] = s.v6 ? 10 : 2; // AF_INET6 / AF_INET
        e[1] = 0;
        put16(e + 2, 5); // --nflog-group 5
        std::uint32_t off = 4;
        std::uint8_t v[16] = {};
        put16(v, s.v6 ? 0x86dd : 0x0800);
        v[2] = 2; // NF_INET_FORWARD
        tlv(off, 1, v, 4);
        static constexpr std::uint8_t prefix[] = "nflowd";
        tlv(off, 10, prefix, sizeof prefix);
        put32(v, s.ifindex[p.dir]);
        tlv(off, 4, v, 4);
        put32(v, s.ifindex[1 - p.dir]);
        tlv(off, 5, v, 4);
        const std::uint64_t sec = static_cast<std::uint64_t>(o_.start) + t_us / 1000000;
        const std::uint64_t usec = t_us % 1000000;
        put32(v, static_cast<std::uint32_t>(sec >> 32));
        put32(v + 4, static_cast<std::uint32_t>(sec));
        put32(v + 8, static_cast<std::uint32_t>(usec >> 32));
        put32(v + 12, static_cast<std::uint32_t>(usec));
        tlv(off, 3, v, 16);
        // Payload TLV header only; build_ip fills the value in place.
        const std::uint16_t l = static_cast<std::uint16_t>(4 + std::min(p.total, o_.snaplen));
        const std::uint16_t type = 9;
        std::memcpy(buf_.data() + off, &l, 2);
        std::memcpy(buf_.data() + off + 2, &type, 2);
        return off + 4;
    }

    const Options& o_;
    int dlt_;
    pcap_t* dead_ = nullptr;
    pcap_dumper_t* dumper_ = nullptr;
    std::array<std::uint8_t, 70000> buf_{};
};

// The text of the address put_v6_addr() writes (RFC 5952, as inet_ntop and nfdump print it).
std::string ipv6_text(std::uint32_t v4, bool server) {
    std::uint8_t a[16];
    put_v6_addr(a, v4, server);
    char text[INET6_ADDRSTRLEN];
    return inet_ntop(AF_INET6, a, text, sizeof text) ? text : "?";
}

std::string ipv4_text(std::uint32_t a) {
    return std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 0xff) + "." +
           std::to_string(a >> 8 & 0xff) + "." + std::to_string(a & 0xff);
}

int run(const Options& o) {
    std::uint64_t keys4 = 0, keys6 = 0;
    auto sessions = make_sessions(o, keys4, keys6);
    size_sessions(sessions, o.packets);
    place_in_time(sessions, o);

    std::uint64_t total = 0;
    for (const auto& s : sessions) total += s.packets;
    const bool arp_ok = o.linktype == "en10mb" || o.linktype == "sll";
    const auto arps = arp_ok ? static_cast<std::uint64_t>(double(total) * o.nonip_share) : 0;

    std::vector<Event> events;
    events.reserve(total + arps);
    for (std::uint32_t i = 0; i < sessions.size(); ++i) {
        const auto& s = sessions[i];
        for (std::uint32_t k = 0; k < s.packets; ++k) {
            // Jitter below one gap keeps a session's packets in order.
            const Draw d(o.seed, i, k, 4);
            events.push_back({s.start_us + std::uint64_t{k} * s.gap_us + d.below(s.gap_us), i, k});
        }
    }
    Rng ar(mix(o.seed) ^ 0xa29ULL);
    const auto span = static_cast<std::uint64_t>(o.duration * 1e6);
    for (std::uint64_t k = 0; k < arps; ++k)
        events.push_back({static_cast<std::uint64_t>(ar.unit() * double(span)),
                          static_cast<std::uint32_t>(sessions.size()),
                          static_cast<std::uint32_t>(k)});
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
        if (a.t_us != b.t_us) return a.t_us < b.t_us;
        if (a.sess != b.sess) return a.sess < b.sess;
        return a.idx < b.idx;
    });

    std::vector<std::array<Acc, 3>> acc(sessions.size());
    std::uint64_t v4_packets = 0, v6_packets = 0, fragments = 0, v4_bytes = 0, v6_bytes = 0;
    {
        Writer w(o);
        for (const auto& e : events) {
            if (e.sess == sessions.size()) {
                w.arp(e.t_us, e.idx);
                continue;
            }
            const auto& s = sessions[e.sess];
            const Pkt p = describe(s, e.idx, o.seed, e.sess);
            w.packet(e.t_us, s, p, e.idx);
            if (s.v6) {
                ++v6_packets;
                v6_bytes += p.total;
            } else {
                ++v4_packets;
                v4_bytes += p.total;
                if (p.frag_off != 0) ++fragments;
            }
            auto& a = acc[e.sess][static_cast<std::size_t>(p.slot)];
            if (a.packets++ == 0) a.first_us = e.t_us;
            a.last_us = e.t_us;
            a.bytes += p.total;
            a.flags |= p.flags;
        }
    }

    struct Line {
        Tuple t;
        std::uint8_t tos;
        Acc a;
        std::uint32_t in_if, out_if;
        bool server_src; // IPv6: which half of 2001:db8:<c|5>:: each address is in
    };
    // One family's truth lines, sorted by key.
    const auto lines_of = [&](bool v6) {
        std::vector<Line> lines;
        lines.reserve(v6 ? keys6 : keys4);
        for (std::uint32_t i = 0; i < sessions.size(); ++i) {
            const auto& s = sessions[i];
            if (s.v6 != v6) continue;
            for (int slot = 0; slot < 3; ++slot) {
                const Acc& a = acc[i][static_cast<std::size_t>(slot)];
                if (a.packets == 0) continue;
                const int d = slot == 0 ? 0 : 1;
                Tuple t{s.addr4[d], s.addr4[1 - d], s.port[d], s.port[1 - d], 6};
                switch (s.kind) {
                case Kind::dns:
                case Kind::udp_stream:
                case Kind::udp_frag:
                    t.proto = 17;
                    break;
                case Kind::icmp_echo:
                case Kind::icmp_unreach: {
                    t.proto = v6 ? 58 : 1;
                    t.sport = 0;
                    const Pkt p = describe(s, static_cast<std::uint32_t>(d), o.seed, i);
                    t.dport = static_cast<std::uint16_t>(p.icmp_type << 8 | p.icmp_code);
                    break;
                }
                default:
                    break;
                }
                if (slot == 2) t.sport = t.dport = 0;
                lines.push_back({t, s.tos[d], a, s.ifindex[d], s.ifindex[1 - d], d == 1});
            }
        }
        std::sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
            return std::tie(a.t.src, a.t.dst, a.t.sport, a.t.dport, a.t.proto, a.tos) <
                   std::tie(b.t.src, b.t.dst, b.t.sport, b.t.dport, b.t.proto, b.tos);
        });
        return lines;
    };
    const auto epoch_ms = [&o](std::uint64_t us) {
        return o.start * 1000 + std::int64_t(us / 1000);
    };
    const auto write_truth = [&](const std::string& path, const std::vector<Line>& lines, bool v6) {
        std::ofstream csv(path);
        if (!csv) throw std::runtime_error("cannot write " + path);
        csv << "src,dst,sport,dport,proto,tos,packets,bytes,tcp_flags,in_if,out_if,first_ms,"
               "last_ms\n";
        for (const auto& l : lines)
            csv << (v6 ? ipv6_text(l.t.src, l.server_src) : ipv4_text(l.t.src)) << ','
                << (v6 ? ipv6_text(l.t.dst, !l.server_src) : ipv4_text(l.t.dst)) << ',' << l.t.sport
                << ',' << l.t.dport << ',' << unsigned{l.t.proto} << ',' << unsigned{l.tos} << ','
                << l.a.packets << ',' << l.a.bytes << ',' << unsigned{l.a.flags} << ',' << l.in_if
                << ',' << l.out_if << ',' << epoch_ms(l.a.first_us) << ',' << epoch_ms(l.a.last_us)
                << '\n';
        csv.close();
        if (!csv) throw std::runtime_error("cannot write " + path);
    };
    const std::vector<Line> lines = lines_of(false);
    write_truth(o.truth, lines, false);
    if (!o.truth6.empty()) write_truth(o.truth6, lines_of(true), true);

    std::cout << "frames: " << events.size() << "\n"
              << "packets: " << v4_packets + v6_packets << "\n"
              << "ipv4_packets: " << v4_packets << "\n"
              << "ipv6_packets: " << v6_packets << "\n"
              << "fragments: " << fragments << "\n"
              << "non_ip: " << arps << "\n"
              << "sessions: " << sessions.size() << "\n"
              << "flows: " << lines.size() << "\n"
              << "ipv6_flows: " << keys6 << "\n"
              << "bytes: " << v4_bytes << "\n"
              << "ipv6_bytes: " << v6_bytes << "\n"
              << "duration: " << o.duration << "\n";
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(parse(argc, argv));
    } catch (const std::exception& e) {
        std::cerr << "gen_trace: " << e.what() << "\n";
        return 1;
    }
}
