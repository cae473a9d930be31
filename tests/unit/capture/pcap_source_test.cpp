#include "nflowd/pcap_source.hpp"

#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <bit>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace nflowd {
namespace {

using Bytes = std::vector<std::byte>;

void put8(Bytes& b, unsigned v) {
    b.push_back(static_cast<std::byte>(v & 0xffU));
}
void put16be(Bytes& b, unsigned v) {
    put8(b, v >> 8);
    put8(b, v);
}
void put32be(Bytes& b, std::uint32_t v) {
    put16be(b, v >> 16);
    put16be(b, v & 0xffffU);
}
// NFLOG TLV headers are written in the capturing host's order; tests run on the same host.
void put16host(Bytes& b, std::uint16_t v) {
    std::byte raw[2];
    std::memcpy(raw, &v, 2);
    b.insert(b.end(), raw, raw + 2);
}
void append(Bytes& b, const Bytes& more) {
    b.insert(b.end(), more.begin(), more.end());
}

// A UDP datagram 10.0.0.1:1000 -> 10.0.0.2:53 with `payload` bytes of payload.
Bytes ipv4_udp(unsigned payload = 8) {
    Bytes b;
    const unsigned total = 20 + 8 + payload;
    put8(b, 0x45);
    put8(b, 0);
    put16be(b, total);
    put32be(b, 0x12340000);
    put8(b, 64);
    put8(b, 17);
    put16be(b, 0);
    put32be(b, 0x0a000001);
    put32be(b, 0x0a000002);
    put16be(b, 1000);
    put16be(b, 53);
    put16be(b, 8 + payload);
    put16be(b, 0);
    for (unsigned i = 0; i < payload; ++i) put8(b, i);
    return b;
}

Bytes ipv6_udp() {
    Bytes b;
    put32be(b, 0x60000000);
    put16be(b, 8);
    put8(b, 17);
    put8(b, 64);
    for (int i = 0; i < 32; ++i) put8(b, static_cast<unsigned>(i));
    put16be(b, 1000);
    put16be(b, 53);
    put16be(b, 8);
    put16be(b, 0);
    return b;
}

Bytes ethernet(const Bytes& ip, std::vector<unsigned> tags = {}, unsigned type = 0x0800) {
    Bytes b;
    for (int i = 0; i < 12; ++i) put8(b, 0x10U + static_cast<unsigned>(i));
    unsigned vlan = 100; // the outermost tag's; priority 5 around each id
    for (unsigned tpid : tags) {
        put16be(b, tpid);
        put16be(b, 0xa000U | vlan++);
    }
    put16be(b, type);
    append(b, ip);
    return b;
}

Bytes sll(const Bytes& ip, unsigned type = 0x0800) {
    Bytes b;
    put16be(b, 0); // to us
    put16be(b, 1); // ARPHRD_ETHER
    put16be(b, 6);
    for (int i = 0; i < 8; ++i) put8(b, static_cast<unsigned>(i));
    put16be(b, type);
    append(b, ip);
    return b;
}

Bytes sll2(const Bytes& ip, unsigned type = 0x0800) {
    Bytes b;
    put16be(b, type);
    put16be(b, 0);
    put32be(b, 7); // ifindex: deliberately not used as in_if
    put16be(b, 1);
    put8(b, 0);
    put8(b, 6);
    for (int i = 0; i < 8; ++i) put8(b, static_cast<unsigned>(i));
    append(b, ip);
    return b;
}

void nflog_tlv(Bytes& b, std::uint16_t type, const Bytes& value) {
    put16host(b, static_cast<std::uint16_t>(4 + value.size()));
    put16host(b, type);
    append(b, value);
    while (b.size() % 4 != 0) put8(b, 0);
}

Bytes be32(std::uint32_t v) {
    Bytes b;
    put32be(b, v);
    return b;
}

// Laid out like the kernel's __build_packet_message: header, prefix, ifindexes, payload last.
Bytes nflog(const Bytes& ip, std::uint32_t in_if = 3, std::uint32_t out_if = 5) {
    Bytes b;
    put8(b, 2); // AF_INET
    put8(b, 0); // version
    put16be(b, 5);
    nflog_tlv(b, 1, Bytes{std::byte{0x08}, std::byte{0x00}, std::byte{3}, std::byte{0}});
    nflog_tlv(b, 10, Bytes{std::byte{'n'}, std::byte{'f'}, std::byte{'\0'}});
    nflog_tlv(b, 4, be32(in_if));
    nflog_tlv(b, 5, be32(out_if));
    nflog_tlv(b, 9, ip);
    return b;
}

struct LinkResult {
    bool ok = false;
    bool malformed = false;
    Bytes ip;
    PacketMeta meta;
};

LinkResult run(int linktype, const Bytes& frame, bool physdev = false) {
    LinkResult r;
    // A heap copy of exactly the frame makes ASan catch any read past its end.
    const Bytes copy(frame);
    std::span<const std::byte> ip;
    const nflowd::LinkResult got = link_to_ip(linktype, copy, ip, r.meta, physdev);
    r.ok = got == nflowd::LinkResult::ip;
    r.malformed = got == nflowd::LinkResult::malformed;
    if (r.ok) {
        EXPECT_FALSE(ip.empty());
        EXPECT_GE(ip.data(), copy.data());
        EXPECT_LE(ip.data() + ip.size(), copy.data() + copy.size());
        r.ip.assign(ip.begin(), ip.end());
    }
    return r;
}

TEST(LinkToIp, EthernetPlainAndTagged) {
    const Bytes ip = ipv4_udp();
    for (const auto& tags : std::vector<std::vector<unsigned>>{
             {}, {0x8100}, {0x88a8, 0x8100}, {0x9100, 0x8100}, {0x88a8, 0x8100, 0x8100}}) {
        const auto r = run(DLT_EN10MB, ethernet(ip, tags));
        EXPECT_TRUE(r.ok);
        EXPECT_FALSE(r.malformed);
        EXPECT_EQ(r.ip, ip);
        EXPECT_EQ(r.meta.in_if, kUnknownIfindex);
        EXPECT_EQ(r.meta.out_if, kUnknownIfindex);
    }
    const Bytes ip6 = ipv6_udp();
    const auto r6 = run(DLT_EN10MB, ethernet(ip6, {0x8100}, 0x86dd));
    EXPECT_TRUE(r6.ok);
    EXPECT_EQ(r6.ip, ip6);
}

TEST(LinkToIp, EthernetGivesMacsAndTheOutermostVlan) {
    const auto plain = run(DLT_EN10MB, ethernet(ipv4_udp()));
    ASSERT_TRUE(plain.ok);
    EXPECT_EQ(plain.meta.link.dst_mac,
              (std::array<std::uint8_t, 6>{0x10, 0x11, 0x12, 0x13, 0x14, 0x15}));
    EXPECT_EQ(plain.meta.link.src_mac,
              (std::array<std::uint8_t, 6>{0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b}));
    EXPECT_EQ(plain.meta.link.vlan, 0);
    for (const auto& tags :
         std::vector<std::vector<unsigned>>{{0x8100}, {0x88a8, 0x8100}, {0x9100, 0x8100, 0x8100}}) {
        const auto r = run(DLT_EN10MB, ethernet(ipv4_udp(), tags));
        ASSERT_TRUE(r.ok);
        EXPECT_EQ(r.meta.link.vlan, 100) << tags.size() << " tags";
        EXPECT_EQ(r.meta.link.src_mac, plain.meta.link.src_mac);
    }
    // Nothing of an earlier frame stays: a raw IP packet has no link layer.
    PacketMeta meta;
    meta.link.vlan = 7;
    std::span<const std::byte> ip;
    const Bytes raw = ipv4_udp();
    ASSERT_EQ(link_to_ip(DLT_RAW, raw, ip, meta, false), nflowd::LinkResult::ip);
    EXPECT_TRUE(meta.link.empty());
}

TEST(LinkToIp, NflogHardwareHeaderAndVlanTlvs) {
    // Attributes in the order the kernel puts them: HWTYPE, HWHEADER, HWLEN, then the VLAN nest
    // (NFULA_VLAN_PROTO, NFULA_VLAN_TCI), all before the payload.
    Bytes hw = nflog(Bytes{}, 3, 5);
    hw.resize(hw.size() - 4); // drop the empty payload TLV to append ours
    Bytes header;
    for (unsigned v : {0x02U, 0xbbU, 0U, 0U, 0U, 0x02U, 0x02U, 0xaaU, 0U, 0U, 0U, 0x01U, 0x08U, 0U})
        put8(header, v);
    Bytes type16, len16;
    put16be(type16, 1); // ARPHRD_ETHER
    put16be(len16, 14);
    Bytes nest;
    Bytes proto, tci;
    put16be(proto, 0x8100);
    put16be(tci, 0x6000U | 100U); // priority 3, VLAN 100
    nflog_tlv(nest, 1, proto);
    nflog_tlv(nest, 2, tci);
    Bytes with_vlan = hw;
    nflog_tlv(with_vlan, 15, type16);
    nflog_tlv(with_vlan, 16, header);
    nflog_tlv(with_vlan, 17, len16);
    nflog_tlv(with_vlan, 20, nest);
    nflog_tlv(with_vlan, 9, ipv4_udp());
    const auto r = run(DLT_NFLOG, with_vlan);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.meta.in_if, 3u);
    EXPECT_EQ(r.meta.link.src_mac, (std::array<std::uint8_t, 6>{0x02, 0xaa, 0, 0, 0, 0x01}));
    EXPECT_EQ(r.meta.link.dst_mac, (std::array<std::uint8_t, 6>{0x02, 0xbb, 0, 0, 0, 0x02}));
    EXPECT_EQ(r.meta.link.vlan, 100);
    // Loopback's header type is no Ethernet: no MACs; no VLAN nest: no VLAN.
    Bytes lo = hw;
    Bytes type_lo;
    put16be(type_lo, 772); // ARPHRD_LOOPBACK
    nflog_tlv(lo, 15, type_lo);
    nflog_tlv(lo, 16, header);
    nflog_tlv(lo, 17, len16);
    nflog_tlv(lo, 9, ipv4_udp());
    const auto l = run(DLT_NFLOG, lo);
    ASSERT_TRUE(l.ok);
    EXPECT_TRUE(l.meta.link.empty());
    EXPECT_EQ(l.meta.obs_point, 0); // the helper's prefix "nf" has no tag
    EXPECT_EQ(l.meta.direction, Direction::unknown);
}

// A capture's NFLOG prefix tag, as live: observation point and direction.
TEST(LinkToIp, NflogPrefixTag) {
    Bytes b;
    put8(b, 2);
    put8(b, 0);
    put16be(b, 5);
    const std::string prefix = "LAN obs=4 dir=out";
    Bytes text;
    for (char c : prefix) put8(text, static_cast<unsigned char>(c));
    put8(text, 0);
    nflog_tlv(b, 10, text);
    nflog_tlv(b, 9, ipv4_udp());
    const auto r = run(DLT_NFLOG, b);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.meta.obs_point, 4);
    EXPECT_EQ(r.meta.direction, Direction::egress);
}

TEST(LinkToIp, EthernetTrailerPaddingIsKept) {
    // Frames padded to 60 bytes reach the parser whole; it goes by the IP total length.
    Bytes frame = ethernet(ipv4_udp(0));
    frame.resize(60);
    const auto r = run(DLT_EN10MB, frame);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.ip.size(), 46U);
}

TEST(LinkToIp, NonIpIsNotMalformed) {
    Bytes arp(28, std::byte{0});
    for (const auto& r :
         {run(DLT_EN10MB, ethernet(arp, {}, 0x0806)),
          run(DLT_EN10MB, ethernet(arp, {0x8100}, 0x0806)),
          run(DLT_EN10MB, ethernet(arp, {}, 0x0026)), // 802.3 length field
          run(DLT_LINUX_SLL, sll(arp, 0x0806)), run(DLT_LINUX_SLL2, sll2(arp, 0x0806)),
          run(DLT_RAW, Bytes{std::byte{0x50}, std::byte{0}}), run(DLT_PPP, ethernet(ipv4_udp()))}) {
        EXPECT_FALSE(r.ok);
        EXPECT_FALSE(r.malformed);
    }
}

TEST(LinkToIp, CookedCaptures) {
    const Bytes ip = ipv4_udp();
    auto r = run(DLT_LINUX_SLL, sll(ip));
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.ip, ip);
    r = run(DLT_LINUX_SLL2, sll2(ip));
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.ip, ip);
    EXPECT_EQ(r.meta.in_if, kUnknownIfindex);

    // libpcap re-inserts an offloaded VLAN tag after the cooked header.
    Bytes tagged_ip;
    put16be(tagged_ip, 0x0064);
    put16be(tagged_ip, 0x86dd);
    append(tagged_ip, ipv6_udp());
    r = run(DLT_LINUX_SLL, sll(tagged_ip, 0x8100));
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.ip, ipv6_udp());
    r = run(DLT_LINUX_SLL2, sll2(tagged_ip, 0x8100));
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.ip, ipv6_udp());
}

TEST(LinkToIp, RawIpUnderEveryNumbering) {
    for (int lt : {DLT_RAW, 12, 14, 101, 228, 229}) {
        auto r = run(lt, ipv4_udp());
        EXPECT_TRUE(r.ok) << lt;
        EXPECT_EQ(r.ip, ipv4_udp());
        r = run(lt, ipv6_udp());
        EXPECT_TRUE(r.ok) << lt;
        EXPECT_EQ(r.ip, ipv6_udp());
    }
}

TEST(LinkToIp, NflogTakesIfindexesAndPayload) {
    const Bytes ip = ipv4_udp(40);
    const auto r = run(DLT_NFLOG, nflog(ip, 0x01020304, 9));
    ASSERT_TRUE(r.ok);
    EXPECT_FALSE(r.malformed);
    EXPECT_EQ(r.ip, ip);
    EXPECT_EQ(r.meta.in_if, 0x01020304U);
    EXPECT_EQ(r.meta.out_if, 9U);
}

// A bridged packet as `tcpdump -i nflog:N` stores it: the kernel's attributes as they are,
// bridge (4, 5) and ports (6, 7), in the kernel's order.
Bytes bridged_nflog(const Bytes& ip, bool with_physout = true) {
    Bytes b;
    put8(b, 2);
    put8(b, 0);
    put16be(b, 5);
    nflog_tlv(b, 1, Bytes{std::byte{0x08}, std::byte{0x00}, std::byte{3}, std::byte{0}});
    nflog_tlv(b, 4, be32(10));
    nflog_tlv(b, 6, be32(11));
    nflog_tlv(b, 5, be32(10));
    if (with_physout) nflog_tlv(b, 7, be32(12));
    nflog_tlv(b, 9, ip);
    return b;
}

TEST(LinkToIp, NflogBridgedReportsTheBridgeByDefault) {
    const auto r = run(DLT_NFLOG, bridged_nflog(ipv4_udp()));
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.meta.in_if, 10U);
    EXPECT_EQ(r.meta.out_if, 10U);
}

TEST(LinkToIp, NflogBridgedReportsPortsWithPhysdev) {
    const auto r = run(DLT_NFLOG, bridged_nflog(ipv4_udp()), true);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.meta.in_if, 11U);
    EXPECT_EQ(r.meta.out_if, 12U);
    // A port only on one side: the other keeps its logical device, as live.
    const auto half = run(DLT_NFLOG, bridged_nflog(ipv4_udp(), false), true);
    ASSERT_TRUE(half.ok);
    EXPECT_EQ(half.meta.in_if, 11U);
    EXPECT_EQ(half.meta.out_if, 10U);
    // Unbridged: nothing to choose.
    const auto plain = run(DLT_NFLOG, nflog(ipv4_udp(), 3, 4), true);
    EXPECT_EQ(plain.meta.in_if, 3U);
    EXPECT_EQ(plain.meta.out_if, 4U);
}

TEST(LinkToIp, NflogWithoutOutdevKeepsUnknown) {
    Bytes b;
    put8(b, 2);
    put8(b, 0);
    put16be(b, 0);
    nflog_tlv(b, 4, be32(2));
    nflog_tlv(b, 9, ipv4_udp(1)); // 29 bytes: the last TLV's padding is present
    const auto r = run(DLT_NFLOG, b);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.ip.size(), 29U);
    EXPECT_EQ(r.meta.in_if, 2U);
    EXPECT_EQ(r.meta.out_if, kUnknownIfindex);
}

TEST(LinkToIp, NflogMalformed) {
    Bytes zero_len;
    put8(zero_len, 2);
    put8(zero_len, 0);
    put16be(zero_len, 0);
    put16host(zero_len, 0); // a zero length TLV must not loop forever
    put16host(zero_len, 9);
    append(zero_len, ipv4_udp());
    auto r = run(DLT_NFLOG, zero_len);
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.malformed);

    Bytes no_payload;
    put8(no_payload, 2);
    put8(no_payload, 0);
    put16be(no_payload, 0);
    nflog_tlv(no_payload, 4, be32(2));
    r = run(DLT_NFLOG, no_payload);
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.malformed);

    Bytes bad_version = nflog(ipv4_udp());
    bad_version[1] = std::byte{1};
    r = run(DLT_NFLOG, bad_version);
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.malformed);
}

// Every prefix of every kind of frame: never reads past the end (ASan), never yields an empty
// or out-of-frame IP span, and a cut inside the link header is reported as malformed.
TEST(LinkToIp, EveryTruncationIsSafe) {
    struct Case {
        int linktype;
        Bytes frame;
        std::size_t link_header; // bytes before the IP header
    };
    const Bytes ip = ipv4_udp(60);
    const std::vector<Case> cases = {
        {DLT_EN10MB, ethernet(ip), 14},
        {DLT_EN10MB, ethernet(ip, {0x88a8, 0x8100}), 22},
        {DLT_LINUX_SLL, sll(ip), 16},
        {DLT_LINUX_SLL2, sll2(ip), 20},
        {DLT_RAW, ip, 0},
        {228, ip, 0},
        {DLT_NFLOG, nflog(ip), nflog(ip).size() - ip.size()},
    };
    for (const auto& c : cases) {
        for (std::size_t n = 0; n <= c.frame.size(); ++n) {
            const Bytes cut(c.frame.begin(), c.frame.begin() + static_cast<std::ptrdiff_t>(n));
            const auto r = run(c.linktype, cut);
            if (n <= c.link_header) {
                EXPECT_FALSE(r.ok) << c.linktype << " len " << n;
                EXPECT_TRUE(r.malformed) << c.linktype << " len " << n;
            } else {
                EXPECT_TRUE(r.ok) << c.linktype << " len " << n;
                EXPECT_FALSE(r.malformed);
                EXPECT_EQ(r.ip.size(), n - c.link_header);
            }
        }
    }
}

TEST(LinkToIp, GarbageNeverCrashes) {
    // Cheap deterministic fuzz; the libFuzzer target does this properly.
    std::uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (int iter = 0; iter < 20000; ++iter) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        Bytes frame(static_cast<std::size_t>(s >> 58));
        for (auto& b : frame) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            b = static_cast<std::byte>(s >> 56);
        }
        for (int lt : {DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW, DLT_NFLOG}) {
            const auto r = run(lt, frame);
            EXPECT_FALSE(r.ok && r.malformed);
        }
    }
}

// ---- files ----

class TempDir {
  public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "pcap_source_XXXXXX");
        if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

struct Frame {
    Bytes bytes;
    std::int64_t sec;
    std::int64_t frac; // us or ns, as the file's precision says
    std::uint32_t wire_len = 0;
};

void write_pcap(const std::string& path, int linktype, const std::vector<Frame>& frames,
                bool nano) {
    pcap_t* dead = pcap_open_dead_with_tstamp_precision(
        linktype, 65535, nano ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO);
    ASSERT_NE(dead, nullptr);
    pcap_dumper_t* dumper = pcap_dump_open(dead, path.c_str());
    ASSERT_NE(dumper, nullptr) << pcap_geterr(dead);
    for (const auto& f : frames) {
        pcap_pkthdr h{};
        h.ts.tv_sec = f.sec;
        h.ts.tv_usec = f.frac;
        h.caplen = static_cast<bpf_u_int32>(f.bytes.size());
        h.len = f.wire_len ? f.wire_len : h.caplen;
        pcap_dump(reinterpret_cast<u_char*>(dumper), &h,
                  reinterpret_cast<const u_char*>(f.bytes.data()));
    }
    pcap_dump_close(dumper);
    pcap_close(dead);
}

struct Read {
    Bytes ip;
    PacketMeta meta;
};

std::vector<Read> read_all(PcapSource& src) {
    std::vector<Read> out;
    std::span<const std::byte> ip;
    PacketMeta meta;
    while (src.next(ip, meta)) out.push_back({Bytes(ip.begin(), ip.end()), meta});
    return out;
}

TEST(PcapSource, EthernetMicrosecondFile) {
    TempDir dir;
    const std::string path = dir.file("eth.pcap");
    Bytes arp(28, std::byte{0});
    Bytes big = ethernet(ipv4_udp(1400));
    big.resize(128); // snaplen cut: the IP header still says 1436
    write_pcap(path, DLT_EN10MB,
               {{ethernet(ipv4_udp()), 1700000000, 123456},
                {ethernet(arp, {}, 0x0806), 1700000001, 0},
                {Bytes(10, std::byte{0}), 1700000001, 1},
                {big, 1700000002, 999999, 1450},
                {ethernet(ipv6_udp(), {0x8100}, 0x86dd), 1700000003, 5}},
               false);
    PcapSource src(path);
    EXPECT_EQ(src.linktype(), DLT_EN10MB);
    const auto got = read_all(src);
    ASSERT_EQ(got.size(), 3U);
    EXPECT_EQ(got[0].ip, ipv4_udp());
    EXPECT_EQ(got[0].meta.time, 1700000000LL * kNanosPerSecond + 123456000);
    EXPECT_EQ(got[0].meta.in_if, kUnknownIfindex);
    EXPECT_EQ(got[0].meta.wire_len, ipv4_udp().size());
    EXPECT_EQ(got[1].ip.size(), 114U);
    EXPECT_EQ(got[1].meta.wire_len, 1436U); // the original length less the Ethernet header
    EXPECT_EQ(got[1].meta.time, 1700000002LL * kNanosPerSecond + 999999000);
    EXPECT_EQ(got[2].ip, ipv6_udp());
    EXPECT_EQ(src.stats().frames, 5U);
    EXPECT_EQ(src.stats().non_ip, 1U);
    EXPECT_EQ(src.stats().malformed, 1U);
}

// A BIG TCP packet captured on an interface (tcpdump -i eth0 after GRO): its IPv4 total
// length is 0, the record's original length is the only length there is.
TEST(PcapSource, OriginalLengthLessTheLinkHeaderIsTheWireLength) {
    TempDir dir;
    const std::string eth = dir.file("big.pcap");
    Bytes frame = ethernet(ipv4_udp(200));
    frame.resize(128);
    write_pcap(eth, DLT_EN10MB, {{frame, 1700000000, 0, 190014}}, false);
    PcapSource eth_src(eth);
    const auto got = read_all(eth_src);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0].meta.wire_len, 190000U);

    // NFLOG records: their length is the TLVs', so the packet's stays unknown.
    const std::string nfl = dir.file("nflog.pcap");
    write_pcap(nfl, DLT_NFLOG, {{nflog(ipv4_udp()), 1700000000, 0, 100000}}, false);
    PcapSource nfl_src(nfl);
    const auto nf = read_all(nfl_src);
    ASSERT_EQ(nf.size(), 1U);
    EXPECT_EQ(nf[0].meta.wire_len, 0U);
}

TEST(PcapSource, NflogNanosecondFile) {
    TempDir dir;
    const std::string path = dir.file("nflog.pcap");
    write_pcap(path, DLT_NFLOG,
               {{nflog(ipv4_udp(), 11, 12), 1700000000, 123456789},
                {nflog(ipv6_udp(), 13, 14), 1700000000, 123456790}},
               true);
    PcapSource src(path);
    EXPECT_EQ(src.linktype(), DLT_NFLOG);
    const auto got = read_all(src);
    ASSERT_EQ(got.size(), 2U);
    EXPECT_EQ(got[0].meta.time, 1700000000LL * kNanosPerSecond + 123456789);
    EXPECT_EQ(got[0].meta.in_if, 11U);
    EXPECT_EQ(got[0].meta.out_if, 12U);
    EXPECT_EQ(got[1].meta.time, 1700000000LL * kNanosPerSecond + 123456790);
    EXPECT_EQ(got[1].meta.in_if, 13U);
    EXPECT_EQ(got[1].ip, ipv6_udp());
}

TEST(PcapSource, NflogBridgedFollowsPhysdev) {
    TempDir dir;
    const std::string path = dir.file("bridge.pcap");
    write_pcap(path, DLT_NFLOG, {{bridged_nflog(ipv4_udp()), 1700000000, 0}}, false);
    PcapSource logical(path);
    const auto l = read_all(logical);
    ASSERT_EQ(l.size(), 1U);
    EXPECT_EQ(l[0].meta.in_if, 10U);
    PcapSource ports(path, true);
    const auto p = read_all(ports);
    ASSERT_EQ(p.size(), 1U);
    EXPECT_EQ(p[0].meta.in_if, 11U);
    EXPECT_EQ(p[0].meta.out_if, 12U);
}

TEST(PcapSource, EveryLinkTypeRoundTrips) {
    TempDir dir;
    const Bytes ip = ipv4_udp(3);
    const std::vector<std::pair<int, Bytes>> kinds = {{DLT_EN10MB, ethernet(ip, {0x8100})},
                                                      {DLT_LINUX_SLL, sll(ip)},
                                                      {DLT_LINUX_SLL2, sll2(ip)},
                                                      {DLT_RAW, ip},
                                                      {228, ip},
                                                      {229, ipv6_udp()},
                                                      {DLT_NFLOG, nflog(ip)}};
    for (const auto& [lt, frame] : kinds) {
        const std::string path = dir.file("lt" + std::to_string(lt) + ".pcap");
        write_pcap(path, lt, {{frame, 1, 2}}, false);
        PcapSource src(path);
        const auto got = read_all(src);
        ASSERT_EQ(got.size(), 1U) << lt;
        EXPECT_EQ(got[0].ip, lt == 229 ? ipv6_udp() : ip) << lt;
        EXPECT_EQ(got[0].meta.time, kNanosPerSecond + 2000);
    }
}

// A pcap written on a big-endian host: libpcap swaps the record headers and, for NFLOG, the
// host-order TLV headers, so ifindexes and payload must still come out right.
TEST(PcapSource, NflogFromOtherEndianHost) {
    if (std::endian::native != std::endian::little) GTEST_SKIP() << "written for little endian";
    TempDir dir;
    const std::string path = dir.file("be.pcap");
    Bytes frame;
    put8(frame, 2);
    put8(frame, 0);
    put16be(frame, 0);
    const Bytes ip = ipv4_udp(2);
    auto tlv_be = [&frame](unsigned type, const Bytes& value) {
        put16be(frame, static_cast<unsigned>(4 + value.size()));
        put16be(frame, type);
        append(frame, value);
        while (frame.size() % 4 != 0) put8(frame, 0);
    };
    tlv_be(4, be32(21));
    tlv_be(5, be32(22));
    tlv_be(9, ip);
    Bytes file;
    put32be(file, 0xa1b2c3d4);
    put16be(file, 2);
    put16be(file, 4);
    put32be(file, 0);
    put32be(file, 0);
    put32be(file, 65535);
    put32be(file, DLT_NFLOG);
    put32be(file, 100);
    put32be(file, 7);
    put32be(file, static_cast<std::uint32_t>(frame.size()));
    put32be(file, static_cast<std::uint32_t>(frame.size()));
    append(file, frame);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(file.data()),
               static_cast<std::streamsize>(file.size()));

    PcapSource src(path);
    const auto got = read_all(src);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0].ip, ip);
    EXPECT_EQ(got[0].meta.in_if, 21U);
    EXPECT_EQ(got[0].meta.out_if, 22U);
    EXPECT_EQ(got[0].meta.time, 100 * kNanosPerSecond + 7000);
}

TEST(PcapSource, TruncatedFileKeepsWhatCameBefore) {
    TempDir dir;
    const std::string path = dir.file("cut.pcap");
    write_pcap(path, DLT_RAW, {{ipv4_udp(), 1, 0}, {ipv4_udp(100), 2, 0}}, false);
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 50);
    PcapSource src(path);
    const auto got = read_all(src);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(src.stats().malformed, 1U);
}

TEST(PcapSource, ReadsStdin) {
    TempDir dir;
    const std::string path = dir.file("stdin.pcap");
    write_pcap(path, DLT_RAW, {{ipv4_udp(), 5, 6}}, false);
    const int saved = dup(STDIN_FILENO);
    ASSERT_GE(saved, 0);
    ASSERT_NE(std::freopen(path.c_str(), "rb", stdin), nullptr);
    std::size_t n = 0;
    {
        PcapSource src("-");
        n = read_all(src).size();
    }
    dup2(saved, STDIN_FILENO);
    close(saved);
    clearerr(stdin);
    EXPECT_EQ(n, 1U);
}

void expect_error_naming(const std::string& path, const std::string& what) {
    try {
        PcapSource src(path);
        FAIL() << "no exception for " << path;
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
}

TEST(PcapSource, Errors) {
    TempDir dir;
    expect_error_naming(dir.file("missing.pcap"), "");

    const std::string text = dir.file("notes.txt");
    std::ofstream(text) << "this is not a capture file, just some text long enough\n";
    expect_error_naming(text, "");

    const std::string empty = dir.file("empty.pcap");
    std::ofstream{empty};
    expect_error_naming(empty, "");

    const std::string ppp = dir.file("ppp.pcap");
    write_pcap(ppp, DLT_PPP, {{ipv4_udp(), 1, 0}}, false);
    expect_error_naming(ppp, "unsupported link type");
}

} // namespace
} // namespace nflowd
