// Tests of the NFLOG batch parser on synthetic netlink buffers, and of group binding in a
// private network namespace (root only).
#include "nflowd/nflog_source.hpp"

#include <arpa/inet.h>
#include <endian.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace nflowd {
namespace {

constexpr std::uint16_t kPacketType = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
// A batch received at wall 1700000002.5 s, 5000.000000456 s after boot (CLOCK_MONOTONIC).
constexpr TimePair kRecvTime{1'700'000'002LL * kNanosPerSecond + 500'000'000LL,
                             5'000LL * kNanosPerSecond + 456};
// Where a kernel (wall) timestamp belongs in flow time.
constexpr Nanos flow_time(Nanos wall) {
    return kRecvTime.mono + (wall - kRecvTime.wall);
}

// Fluent description of one packet message (designated initialisers with omitted members
// trip GCC 12's -Wmissing-field-initializers).
struct Msg {
    std::optional<std::uint32_t> seq_;
    std::optional<std::uint32_t> indev_, outdev_, physindev_, physoutdev_;
    std::optional<std::pair<std::uint64_t, std::uint64_t>> ts_; // sec, usec
    std::optional<std::size_t> payload_len_ = 60;
    std::uint16_t type_ = kPacketType;
    std::uint8_t hook_ = 2; // NF_INET_FORWARD

    Msg& seq(std::uint32_t v) { return seq_ = v, *this; }
    Msg& in(std::uint32_t v) { return indev_ = v, *this; }
    Msg& out(std::uint32_t v) { return outdev_ = v, *this; }
    Msg& physin(std::uint32_t v) { return physindev_ = v, *this; }
    Msg& physout(std::uint32_t v) { return physoutdev_ = v, *this; }
    Msg& ts(std::uint64_t sec, std::uint64_t usec) { return ts_ = {{sec, usec}}, *this; }
    Msg& len(std::size_t v) { return payload_len_ = v, *this; }
    Msg& no_payload() { return payload_len_.reset(), *this; }
    Msg& type(std::uint16_t v) { return type_ = v, *this; }
    Msg& hook(std::uint8_t v) { return hook_ = v, *this; }
    // The link layer (issue 13): NFULA_HWTYPE/HWLEN/HWHEADER and NFULA_VLAN as the kernel
    // puts them (big-endian u16s, the VLAN TCI nested).
    std::uint16_t hwtype_ = 0, hwlen_ = 0;
    std::vector<std::uint8_t> hwheader_;
    std::optional<std::uint16_t> vlan_tci_;
    Msg& hw(std::uint16_t type, std::uint16_t len, std::vector<std::uint8_t> header) {
        hwtype_ = type, hwlen_ = len, hwheader_ = std::move(header);
        return *this;
    }
    Msg& vlan_tci(std::uint16_t v) { return vlan_tci_ = v, *this; }
    std::optional<std::string> prefix_; // NFULA_PREFIX, sent NUL-terminated as the kernel does
    Msg& prefix(std::string v) { return prefix_ = std::move(v), *this; }
};

// Netlink buffer built the way the kernel lays out a batch; 8-byte aligned storage.
class Batch {
  public:
    Batch() : words_(kCapacity / sizeof(std::uint64_t)) {}

    Batch& add(const Msg& m) {
        nlmsghdr* nlh = mnl_nlmsg_put_header(tail());
        nlh->nlmsg_type = m.type_;
        nlh->nlmsg_flags = NLM_F_MULTI;
        auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
        nfg->nfgen_family = AF_INET;
        nfg->version = NFNETLINK_V0;
        nfg->res_id = htons(42);
        nfulnl_msg_packet_hdr ph{};
        ph.hw_protocol = htons(0x0800);
        ph.hook = m.hook_;
        mnl_attr_put(nlh, NFULA_PACKET_HDR, sizeof ph, &ph);
        if (m.ts_) {
            nfulnl_msg_packet_timestamp ts{};
            ts.sec = htobe64(m.ts_->first);
            ts.usec = htobe64(m.ts_->second);
            mnl_attr_put(nlh, NFULA_TIMESTAMP, sizeof ts, &ts);
        }
        if (m.indev_) mnl_attr_put_u32(nlh, NFULA_IFINDEX_INDEV, htonl(*m.indev_));
        if (m.outdev_) mnl_attr_put_u32(nlh, NFULA_IFINDEX_OUTDEV, htonl(*m.outdev_));
        if (m.physindev_) mnl_attr_put_u32(nlh, NFULA_IFINDEX_PHYSINDEV, htonl(*m.physindev_));
        if (m.physoutdev_) mnl_attr_put_u32(nlh, NFULA_IFINDEX_PHYSOUTDEV, htonl(*m.physoutdev_));
        if (!m.hwheader_.empty()) {
            mnl_attr_put_u16(nlh, NFULA_HWTYPE, htons(m.hwtype_));
            mnl_attr_put(nlh, NFULA_HWHEADER, m.hwheader_.size(), m.hwheader_.data());
            mnl_attr_put_u16(nlh, NFULA_HWLEN, htons(m.hwlen_));
        }
        if (m.prefix_) mnl_attr_put_strz(nlh, NFULA_PREFIX, m.prefix_->c_str());
        if (m.vlan_tci_) {
            nlattr* nest = mnl_attr_nest_start(nlh, NFULA_VLAN);
            mnl_attr_put_u16(nlh, NFULA_VLAN_PROTO, htons(0x8100));
            mnl_attr_put_u16(nlh, NFULA_VLAN_TCI, htons(*m.vlan_tci_));
            mnl_attr_nest_end(nlh, nest);
        }
        if (m.payload_len_) {
            std::vector<std::uint8_t> p(*m.payload_len_);
            for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i + size_);
            if (!p.empty()) p[0] = 0x45;
            mnl_attr_put(nlh, NFULA_PAYLOAD, p.size(), p.data());
        }
        if (m.seq_) mnl_attr_put_u32(nlh, NFULA_SEQ, htonl(*m.seq_));
        size_ += MNL_ALIGN(nlh->nlmsg_len);
        boundaries_.push_back(size_);
        return *this;
    }

    Batch& done() {
        nlmsghdr* nlh = mnl_nlmsg_put_header(tail());
        nlh->nlmsg_type = NLMSG_DONE;
        nlh->nlmsg_flags = NLM_F_MULTI;
        mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg));
        size_ += MNL_ALIGN(nlh->nlmsg_len);
        boundaries_.push_back(size_);
        return *this;
    }

    std::span<const std::byte> bytes() const {
        return {reinterpret_cast<const std::byte*>(words_.data()), size_};
    }
    std::byte* data() { return reinterpret_cast<std::byte*>(words_.data()); }
    const std::vector<std::size_t>& boundaries() const { return boundaries_; }

  private:
    static constexpr std::size_t kCapacity = 1 << 20;
    char* tail() { return reinterpret_cast<char*>(words_.data()) + size_; }
    std::vector<std::uint64_t> words_;
    std::size_t size_ = 0;
    std::vector<std::size_t> boundaries_;
};

struct Seen {
    std::vector<std::size_t> lengths;
    std::vector<PacketMeta> metas;
    std::vector<std::uint8_t> first_bytes;
};

struct Result {
    Seen seen;
    NflogStats stats;
    std::size_t delivered = 0;
};

Result parse(std::span<const std::byte> bytes, NflogSeqTracker seq = NflogSeqTracker{},
             bool physdev = false) {
    Result r;
    r.delivered = parse_nflog_batch(
        bytes, kRecvTime, seq, r.stats,
        [&](std::span<const std::byte> ip, const PacketMeta& meta) {
            r.seen.lengths.push_back(ip.size());
            r.seen.metas.push_back(meta);
            r.seen.first_bytes.push_back(std::to_integer<std::uint8_t>(ip[0]));
        },
        physdev);
    return r;
}

// An Ethernet header as dev_parse_header copies it: destination MAC, source MAC, ethertype.
const std::vector<std::uint8_t> kEtherHeader{0x02, 0xdd, 0, 0, 0,    0x02, 0x02,
                                             0x5a, 0,    0, 0, 0x01, 0x08, 0x00};

TEST(NflogParse, HardwareHeaderAndVlanGiveTheLinkLayer) {
    Batch b;
    // Priority 5 and DEI set around VLAN 100: only the 12-bit id is the VLAN.
    b.add(Msg{}.seq(1).hw(ARPHRD_ETHER, 14, kEtherHeader).vlan_tci(0xb064));
    b.add(Msg{}.seq(2).vlan_tci(100));                              // tag without a header
    b.add(Msg{}.seq(3).hw(ARPHRD_ETHER, 14, kEtherHeader).hook(3)); // no tag
    const auto r = parse(b.bytes());
    ASSERT_EQ(r.delivered, 3u);
    EXPECT_EQ(r.stats.malformed, 0u);
    const LinkLayer& l = r.seen.metas[0].link;
    EXPECT_EQ(l.src_mac, (std::array<std::uint8_t, 6>{0x02, 0x5a, 0, 0, 0, 0x01}));
    EXPECT_EQ(l.dst_mac, (std::array<std::uint8_t, 6>{0x02, 0xdd, 0, 0, 0, 0x02}));
    EXPECT_EQ(l.vlan, 100);
    EXPECT_EQ(r.seen.metas[1].link.vlan, 100);
    EXPECT_EQ(r.seen.metas[1].link.src_mac, (std::array<std::uint8_t, 6>{}));
    EXPECT_EQ(r.seen.metas[2].link.vlan, 0);
    EXPECT_EQ(r.seen.metas[2].link.src_mac, l.src_mac);
}

TEST(NflogParse, NonEthernetHardwareHeadersGiveNoMac) {
    Batch b;
    b.add(Msg{}.seq(1).hw(ARPHRD_LOOPBACK, 14, kEtherHeader)); // lo: not Ethernet
    b.add(Msg{}.seq(2).hw(ARPHRD_ETHER, 12, {kEtherHeader.begin(), kEtherHeader.begin() + 12}));
    b.add(Msg{}.seq(3)); // OUTPUT: none
    const auto r = parse(b.bytes());
    ASSERT_EQ(r.delivered, 3u);
    for (const auto& m : r.seen.metas) EXPECT_TRUE(m.link.empty());
}

// The rule's prefix tag: obs=N and dir= reach PacketMeta, through a reader's memo or not.
TEST(NflogParse, PrefixTagGivesObservationPointAndDirection) {
    Batch b;
    b.add(Msg{}.seq(1).prefix("FWD obs=7 dir=in").hook(2)); // FORWARD: unknown, overridden
    b.add(Msg{}.seq(2).prefix("FWD obs=7 dir=in").hook(4)); // POSTROUTING: still "in"
    b.add(Msg{}.seq(3).prefix("OUT obs=9").hook(3));        // the hook's egress stays
    b.add(Msg{}.seq(4).prefix("plain log text").hook(0));   // no tag: PREROUTING's ingress
    b.add(Msg{}.seq(5).hook(2));                            // no prefix at all
    for (bool memo : {false, true}) {
        PrefixTagMemo prefixes;
        Result r;
        NflogSeqTracker seq;
        r.delivered = parse_nflog_batch(
            b.bytes(), kRecvTime, seq, r.stats,
            [&](std::span<const std::byte>, const PacketMeta& meta) {
                r.seen.metas.push_back(meta);
            },
            false, memo ? &prefixes : nullptr);
        ASSERT_EQ(r.delivered, 5u);
        const auto& m = r.seen.metas;
        EXPECT_EQ(m[0].obs_point, 7);
        EXPECT_EQ(m[0].direction, Direction::ingress);
        EXPECT_EQ(m[1].direction, Direction::ingress);
        EXPECT_EQ(m[2].obs_point, 9);
        EXPECT_EQ(m[2].direction, Direction::egress);
        EXPECT_EQ(m[3].obs_point, 0);
        EXPECT_EQ(m[3].direction, Direction::ingress);
        EXPECT_EQ(m[4].obs_point, 0);
        EXPECT_EQ(m[4].direction, Direction::unknown);
    }
}

TEST(NflogParse, BadLinkAttributesMakeTheMessageMalformed) {
    Batch b;
    b.add(Msg{}.seq(1));
    nlmsghdr* nlh = reinterpret_cast<nlmsghdr*>(b.data());
    mnl_attr_put_u32(nlh, NFULA_HWTYPE, 1); // a u16 attribute four bytes long
    const auto r = parse({b.data(), MNL_ALIGN(nlh->nlmsg_len)});
    EXPECT_EQ(r.delivered, 0u);
    EXPECT_EQ(r.stats.malformed, 1u);
}

TEST(NflogParse, SinglePacketWithAllMetadata) {
    Batch b;
    b.add(Msg().seq(0).in(3).out(4).ts(1'700'000'001, 250'000));
    const Result r = parse(b.bytes());
    ASSERT_EQ(r.delivered, 1U);
    EXPECT_EQ(r.seen.lengths[0], 60U);
    EXPECT_EQ(r.seen.first_bytes[0], 0x45);
    EXPECT_EQ(r.seen.metas[0].time, flow_time(1'700'000'001LL * kNanosPerSecond + 250'000'000LL));
    EXPECT_EQ(r.seen.metas[0].in_if, 3U);
    EXPECT_EQ(r.seen.metas[0].out_if, 4U);
    EXPECT_EQ(r.stats.packets, 1U);
    EXPECT_EQ(r.stats.messages, 1U);
    EXPECT_EQ(r.stats.bytes, 60U);
    EXPECT_EQ(r.stats.kernel_timestamps, 1U);
    EXPECT_EQ(r.stats.malformed, 0U);
    EXPECT_EQ(r.stats.lost, 0U);
}

// flowDirection from the hook (nfulnl_msg_packet_hdr.hook): PREROUTING 0 and INPUT 1 are
// ingress, OUTPUT 3 and POSTROUTING 4 egress, FORWARD 2 (and nonsense) unknown.
TEST(NflogParse, HookGivesTheDirection) {
    Batch b;
    for (int hook : {0, 1, 2, 3, 4, 9}) b.add(Msg().hook(static_cast<std::uint8_t>(hook)));
    const Result r = parse(b.bytes());
    ASSERT_EQ(r.seen.metas.size(), 6U);
    const Direction want[] = {Direction::ingress, Direction::ingress, Direction::unknown,
                              Direction::egress,  Direction::egress,  Direction::unknown};
    for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(r.seen.metas[i].direction, want[i]) << i;
}

TEST(NflogParse, TimestampsFarFromTheReceiveTimeAreReplacedAndCounted) {
    Batch b;
    const std::uint64_t recv_sec = kRecvTime.wall / kNanosPerSecond;
    b.add(Msg().seq(0).ts(recv_sec - 4, 0));    // within 5 s: kept
    b.add(Msg().seq(1).ts(recv_sec - 3600, 0)); // an hour behind: replaced
    b.add(Msg().seq(2).ts(recv_sec + 6, 0));    // 6 s ahead: replaced
    b.add(Msg().seq(3).ts(recv_sec + 4, 0));    // ahead of its receipt: the receive time
    const Result r = parse(b.bytes());
    ASSERT_EQ(r.delivered, 4U);
    EXPECT_EQ(r.seen.metas[0].time, flow_time(Nanos(recv_sec - 4) * kNanosPerSecond));
    EXPECT_EQ(r.seen.metas[1].time, kRecvTime.mono);
    EXPECT_EQ(r.seen.metas[2].time, kRecvTime.mono);
    EXPECT_EQ(r.seen.metas[3].time, kRecvTime.mono);
    EXPECT_EQ(r.stats.kernel_timestamps, 4U);
    EXPECT_EQ(r.stats.bad_timestamps, 2U);
}

// Issue 11 item 4: packet times are flow time (CLOCK_MONOTONIC), not the kernel's wall
// time, so a wall-clock step never reaches expiry.
TEST(NflogParse, KernelTimestampsArePlacedOnTheMonotonicClock) {
    Batch b;
    // 300 ms before the receipt on the wall clock: 1700000002.2 s.
    b.add(Msg().seq(0).ts(1'700'000'002, 200'000));
    const Result r = parse(b.bytes());
    ASSERT_EQ(r.delivered, 1U);
    EXPECT_EQ(r.seen.metas[0].time, kRecvTime.mono - 300 * kNanosPerMilli);
    EXPECT_EQ(r.stats.bad_timestamps, 0U);
}

TEST(NflogPacketTime, ConvertsWallStampsThroughTheReceiveTimePair) {
    bool bad = true;
    const Nanos ms = kNanosPerMilli;
    EXPECT_EQ(detail::nflog_packet_time(kRecvTime.wall - 300 * ms, kRecvTime, bad),
              kRecvTime.mono - 300 * ms);
    EXPECT_FALSE(bad);
    EXPECT_EQ(detail::nflog_packet_time(kRecvTime.wall - 5000 * ms, kRecvTime, bad),
              kRecvTime.mono - 5000 * ms); // the edge of the tolerance is still believed
    EXPECT_FALSE(bad);
    EXPECT_EQ(detail::nflog_packet_time(kRecvTime.wall - 10'000 * ms, kRecvTime, bad),
              kRecvTime.mono);
    EXPECT_TRUE(bad);
    EXPECT_EQ(detail::nflog_packet_time(kRecvTime.wall + 10'000 * ms, kRecvTime, bad),
              kRecvTime.mono);
    EXPECT_TRUE(bad);
    // Logged after it was read cannot be: within the tolerance, the receive time, uncounted.
    EXPECT_EQ(detail::nflog_packet_time(kRecvTime.wall + 2000 * ms, kRecvTime, bad),
              kRecvTime.mono);
    EXPECT_FALSE(bad);
    EXPECT_EQ(detail::nflog_packet_time(kRecvTime.wall, kRecvTime, bad), kRecvTime.mono);
    EXPECT_FALSE(bad);
}

TEST(NflogParse, ReceiveTimeWithoutTimestampAndUnknownInterfaces) {
    Batch b;
    b.add(Msg().seq(7));
    const Result r = parse(b.bytes());
    ASSERT_EQ(r.delivered, 1U);
    EXPECT_EQ(r.seen.metas[0].time, kRecvTime.mono);
    EXPECT_EQ(r.seen.metas[0].in_if, kUnknownIfindex);
    EXPECT_EQ(r.seen.metas[0].out_if, kUnknownIfindex);
    EXPECT_EQ(r.stats.kernel_timestamps, 0U);
}

TEST(NflogParse, InvalidTimestampFallsBackToReceiveTime) {
    Batch b;
    b.add(Msg().ts(5, 1'000'000)).add(Msg().ts(~std::uint64_t{0}, 0));
    const Result r = parse(b.bytes());
    ASSERT_EQ(r.delivered, 2U);
    EXPECT_EQ(r.seen.metas[0].time, kRecvTime.mono);
    EXPECT_EQ(r.seen.metas[1].time, kRecvTime.mono);
}

// ipt_NETFLOW's default: a bridged packet is the bridge's, whatever port it crossed.
TEST(NflogParse, BridgedPacketsReportTheBridgeByDefault) {
    Batch b;
    b.add(Msg().in(10).out(10).physin(11).physout(12));
    b.add(Msg().in(10).physin(11));
    b.add(Msg().in(3).out(4));
    const Result r = parse(b.bytes());
    ASSERT_EQ(r.delivered, 3U);
    EXPECT_EQ(r.seen.metas[0].in_if, 10U);
    EXPECT_EQ(r.seen.metas[0].out_if, 10U);
    EXPECT_EQ(r.seen.metas[1].in_if, 10U);
    EXPECT_EQ(r.seen.metas[1].out_if, kUnknownIfindex);
    EXPECT_EQ(r.seen.metas[2].in_if, 3U);
    EXPECT_EQ(r.seen.metas[2].out_if, 4U);
}

// --physdev (ipt_NETFLOW's --enable-physdev-override): the ports where there are ports.
TEST(NflogParse, PhysdevReportsBridgePorts) {
    Batch b;
    b.add(Msg().in(10).out(10).physin(11).physout(12));
    b.add(Msg().in(10).out(10).physin(11));
    b.add(Msg().in(3).out(4));
    const Result r = parse(b.bytes(), NflogSeqTracker{}, true);
    ASSERT_EQ(r.delivered, 3U);
    EXPECT_EQ(r.seen.metas[2].in_if, 3U);
    EXPECT_EQ(r.seen.metas[2].out_if, 4U);
    EXPECT_EQ(r.seen.metas[0].in_if, 11U);
    EXPECT_EQ(r.seen.metas[0].out_if, 12U);
    EXPECT_EQ(r.seen.metas[1].in_if, 11U);
    EXPECT_EQ(r.seen.metas[1].out_if, 10U);
}

TEST(NflogParse, LargeBatchEndedByDone) {
    Batch b;
    std::size_t expect_bytes = 0;
    constexpr std::uint32_t kCount = 1000;
    for (std::uint32_t i = 0; i < kCount; ++i) {
        const std::size_t len = 20 + i % 109; // odd lengths exercise attribute padding
        expect_bytes += len;
        b.add(Msg().seq(i).in(1).out(2).len(len));
    }
    b.done();
    const Result r = parse(b.bytes(), NflogSeqTracker{0});
    EXPECT_EQ(r.delivered, kCount);
    EXPECT_EQ(r.stats.packets, kCount);
    EXPECT_EQ(r.stats.messages, kCount);
    EXPECT_EQ(r.stats.bytes, expect_bytes);
    EXPECT_EQ(r.stats.lost, 0U);
    EXPECT_EQ(r.stats.malformed, 0U);
    EXPECT_EQ(r.stats.batches, 1U);
    for (std::uint32_t i = 0; i < kCount; ++i) ASSERT_EQ(r.seen.lengths[i], 20 + i % 109);
}

TEST(NflogSeq, GapsCountedExactly) {
    Batch b;
    for (const std::uint32_t s : {0U, 1U, 2U, 5U, 6U, 10U, 11U}) b.add(Msg().seq(s));
    const Result r = parse(b.bytes(), NflogSeqTracker{0});
    EXPECT_EQ(r.delivered, 7U);
    EXPECT_EQ(r.stats.lost, 2U + 3U);
    EXPECT_EQ(r.stats.seq_resets, 0U);
}

TEST(NflogSeq, FirstMessage) {
    Batch b;
    b.add(Msg().seq(3)).add(Msg().seq(4));
    // Unsynchronised tracker: the first number is the start.
    EXPECT_EQ(parse(b.bytes()).stats.lost, 0U);
    // A freshly bound group starts at 0: a lost first batch shows.
    EXPECT_EQ(parse(b.bytes(), NflogSeqTracker{0}).stats.lost, 3U);
}

TEST(NflogSeq, WrapAround) {
    Batch b;
    for (const std::uint32_t s : {0xFFFF'FFFDU, 0xFFFF'FFFEU, 0xFFFF'FFFFU, 0U, 1U})
        b.add(Msg().seq(s));
    EXPECT_EQ(parse(b.bytes()).stats.lost, 0U);

    Batch gap;
    gap.add(Msg().seq(0xFFFF'FFFEU)).add(Msg().seq(2U)); // lost ...FF, 0, 1
    EXPECT_EQ(parse(gap.bytes()).stats.lost, 3U);
}

TEST(NflogSeq, TrackerAcrossBatches) {
    NflogSeqTracker t{0};
    NflogStats stats;
    auto sink = [](std::span<const std::byte>, const PacketMeta&) {};
    Batch b1;
    b1.add(Msg().seq(0)).add(Msg().seq(1));
    Batch b2;
    b2.add(Msg().seq(4)).add(Msg().seq(5));
    parse_nflog_batch(b1.bytes(), kRecvTime, t, stats, sink);
    parse_nflog_batch(b2.bytes(), kRecvTime, t, stats, sink);
    EXPECT_EQ(stats.lost, 2U);
    EXPECT_EQ(stats.batches, 2U);
}

TEST(NflogSeq, BackwardsJumpIsAResetNotALoss) {
    Batch b;
    b.add(Msg().seq(100)).add(Msg().seq(50)).add(Msg().seq(51)).add(Msg().seq(53));
    const Result r = parse(b.bytes());
    EXPECT_EQ(r.stats.seq_resets, 1U);
    EXPECT_EQ(r.stats.lost, 1U);
}

TEST(NflogSeq, MessagesWithoutSeqDoNotDisturbTracking) {
    Batch b;
    b.add(Msg().seq(0)).add(Msg()).add(Msg().seq(1));
    const Result r = parse(b.bytes(), NflogSeqTracker{0});
    EXPECT_EQ(r.delivered, 3U);
    EXPECT_EQ(r.stats.lost, 0U);
}

TEST(NflogMalformed, MissingPayloadCountedAndSeqConsumed) {
    Batch b;
    b.add(Msg().seq(0)).add(Msg().seq(1).no_payload()).add(Msg().seq(2));
    b.add(Msg().seq(3).len(0));
    const Result r = parse(b.bytes(), NflogSeqTracker{0});
    EXPECT_EQ(r.delivered, 2U);
    EXPECT_EQ(r.stats.malformed, 2U);
    EXPECT_EQ(r.stats.messages, 4U);
    EXPECT_EQ(r.stats.lost, 0U);
    // Logged by the kernel, numbered, never accounted: lost packets with no gap to show them.
    EXPECT_EQ(r.stats.lost_packets, 2U);
}

TEST(NflogLostPackets, GapsAndUnusableMessagesEachCountedOnce) {
    Batch b;
    b.add(Msg().seq(0)).add(Msg().seq(3));              // 1 and 2 never arrived
    b.add(Msg().seq(4).type(0x1234));                   // foreign type: its number unread...
    b.add(Msg().seq(5)).add(Msg().seq(6).no_payload()); // ...so the gap before 5 counts it
    const Result r = parse(b.bytes(), NflogSeqTracker{0});
    EXPECT_EQ(r.delivered, 3U);
    EXPECT_EQ(r.stats.lost, 3U);
    EXPECT_EQ(r.stats.lost_packets, 4U);
    // Every numbered message is either delivered or in lost_packets.
    EXPECT_EQ(r.stats.packets + r.stats.lost_packets, 7U);
}

// A stop collects a socket's worth of batches ahead of the UNBIND's ACK; none may be cut at
// the receive buffer's size (it used to keep only the first 256 KiB).
TEST(NflogBacklog, HandsOutEveryDatagramWhole) {
    NflogBacklog backlog;
    std::vector<Batch> batches(8);
    std::uint32_t seq = 0;
    std::size_t total = 0;
    for (std::size_t i = 0; i < batches.size(); ++i) {
        // About 115 KiB each, 900 KiB in all; odd sizes check the alignment padding.
        for (int k = 0; k < 800; ++k) batches[i].add(Msg().seq(seq++).len(101 + i));
        if (i % 2 == 0) batches[i].done();
        backlog.push(batches[i].bytes());
        total += batches[i].bytes().size();
    }
    ASSERT_GT(total, 256U * 1024U * 2U);
    NflogSeqTracker tracker{0};
    NflogStats stats;
    std::size_t delivered = 0;
    for (std::size_t i = 0; i < batches.size(); ++i) {
        ASSERT_FALSE(backlog.empty());
        const auto d = backlog.pop();
        ASSERT_EQ(d.size(), batches[i].bytes().size());
        ASSERT_EQ(std::memcmp(d.data(), batches[i].bytes().data(), d.size()), 0);
        delivered += parse_nflog_batch(d, kRecvTime, tracker, stats, [](auto, const auto&) {});
    }
    EXPECT_TRUE(backlog.empty());
    EXPECT_TRUE(backlog.pop().empty());
    EXPECT_EQ(delivered, seq);
    EXPECT_EQ(stats.lost_packets, 0U);
    EXPECT_EQ(stats.malformed, 0U);
}

TEST(NflogBacklog, StartsOverOnceEmptied) {
    NflogBacklog backlog;
    Batch a;
    a.add(Msg().seq(0).len(33));
    backlog.push(a.bytes());
    EXPECT_EQ(backlog.pop().size(), a.bytes().size());
    EXPECT_TRUE(backlog.empty());
    Batch b;
    b.add(Msg().seq(1).len(77)).add(Msg().seq(2));
    backlog.push(b.bytes());
    const auto d = backlog.pop();
    ASSERT_EQ(d.size(), b.bytes().size());
    EXPECT_EQ(std::memcmp(d.data(), b.bytes().data(), d.size()), 0);
    EXPECT_TRUE(backlog.empty());
}

TEST(NflogMalformed, BadAttributeLength) {
    Batch b;
    b.add(Msg().seq(0));
    // NFULA_SEQ must be 4 bytes; append a 2-byte one to a fresh message by hand.
    Batch bad;
    bad.add(Msg());
    auto* nlh = reinterpret_cast<nlmsghdr*>(bad.data());
    mnl_attr_put_u16(nlh, NFULA_SEQ, 1);
    const std::span<const std::byte> bytes{bad.data(), MNL_ALIGN(nlh->nlmsg_len)};
    const Result r = parse(bytes);
    EXPECT_EQ(r.delivered, 0U);
    EXPECT_EQ(r.stats.malformed, 1U);
}

TEST(NflogMalformed, ForeignMessageTypeAndControlMessages) {
    Batch b;
    b.add(Msg().type((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG)).add(Msg().type(NLMSG_NOOP));
    b.add(Msg()).done();
    const Result r = parse(b.bytes());
    EXPECT_EQ(r.delivered, 1U);
    EXPECT_EQ(r.stats.malformed, 1U);
}

TEST(NflogMalformed, LyingNetlinkLengthStopsTheWalk) {
    Batch b;
    b.add(Msg()).add(Msg()).add(Msg());
    auto* second = reinterpret_cast<nlmsghdr*>(b.data() + b.boundaries()[0]);
    second->nlmsg_len = 0xFFFF'0000U;
    const Result r = parse(b.bytes());
    EXPECT_EQ(r.delivered, 1U);
    EXPECT_EQ(r.stats.malformed, 1U);

    // Lengths that defeat signed or 32-bit-masked arithmetic must not move the walk.
    for (const std::uint32_t lie : {0x7FFF'FFFFU, 0x8000'0000U, 0xFFFF'FFFDU, 0xFFFF'FFFFU}) {
        second->nlmsg_len = lie;
        const Result l = parse(b.bytes());
        EXPECT_EQ(l.delivered, 1U) << lie;
        EXPECT_EQ(l.stats.malformed, 1U) << lie;
    }

    second->nlmsg_len = 3; // shorter than a netlink header
    EXPECT_EQ(parse(b.bytes()).stats.malformed, 1U);
}

TEST(NflogMalformed, UnalignedLastMessageNotReadPastTheEnd) {
    Batch b;
    b.add(Msg()).add(Msg().len(61));
    auto* last = reinterpret_cast<nlmsghdr*>(b.data() + b.boundaries()[0]);
    last->nlmsg_len -= 1; // claims to end mid-padding; attribute walk would run to the padding
    const std::size_t size = b.boundaries()[0] + last->nlmsg_len;
    auto copy = std::make_unique<std::byte[]>(size);
    std::memcpy(copy.get(), b.bytes().data(), size);
    const Result r = parse({copy.get(), size});
    EXPECT_EQ(r.delivered, 1U);
    EXPECT_EQ(r.stats.malformed, 1U);
}

TEST(NflogMalformed, NfgenmsgMissing) {
    Batch b;
    nlmsghdr* nlh = mnl_nlmsg_put_header(reinterpret_cast<char*>(b.data()));
    nlh->nlmsg_type = kPacketType;
    const Result r = parse({b.data(), nlh->nlmsg_len});
    EXPECT_EQ(r.delivered, 0U);
    EXPECT_EQ(r.stats.malformed, 1U);
}

TEST(NflogMalformed, MisalignedBufferRejected) {
    Batch b;
    b.add(Msg());
    std::vector<std::uint64_t> words(b.bytes().size() / 8 + 2);
    auto* shifted = reinterpret_cast<std::byte*>(words.data()) + 1;
    std::memcpy(shifted, b.bytes().data(), b.bytes().size());
    const Result r = parse({shifted, b.bytes().size()});
    EXPECT_EQ(r.delivered, 0U);
    EXPECT_EQ(r.stats.malformed, 1U);
}

TEST(NflogMalformed, TruncatedAtEveryLength) {
    Batch b;
    b.add(Msg().seq(0).in(1).ts(1, 2)).add(Msg().seq(1).len(77));
    b.add(Msg().seq(2).out(9).len(128)).done();
    const auto full = b.bytes();
    const auto& ends = b.boundaries();
    for (std::size_t len = 0; len <= full.size(); ++len) {
        // A heap copy of exactly `len` bytes: ASan flags any read past the cut.
        const auto copy = std::make_unique<std::byte[]>(std::max<std::size_t>(len, 1));
        std::memcpy(copy.get(), full.data(), len);
        const Result r = parse({copy.get(), len}, NflogSeqTracker{0});
        std::size_t complete = 0;
        bool on_boundary = len == 0;
        for (std::size_t i = 0; i < ends.size(); ++i) {
            if (ends[i] <= len) complete = i + 1;
            if (ends[i] == len) on_boundary = true;
        }
        const std::size_t packets = std::min<std::size_t>(complete, 3);
        ASSERT_EQ(r.delivered, packets) << "len " << len;
        ASSERT_EQ(r.stats.malformed, on_boundary ? 0U : 1U) << "len " << len;
        ASSERT_EQ(r.stats.lost, 0U) << "len " << len;
    }
}

TEST(NflogMalformed, RandomGarbageAndMutationsNeverCrash) {
    std::mt19937 rng(12345);
    Batch b;
    for (std::uint32_t i = 0; i < 20; ++i) b.add(Msg().seq(i).in(i).ts(i, i).len(10 + i * 7));
    const auto full = b.bytes();
    std::vector<std::byte> work(full.size());
    for (int iter = 0; iter < 20000; ++iter) {
        std::size_t len = 0;
        if (iter % 2 == 0) {
            std::memcpy(work.data(), full.data(), full.size());
            for (int k = 0; k < 1 + iter % 8; ++k)
                work[rng() % full.size()] = static_cast<std::byte>(rng());
            len = rng() % (full.size() + 1);
        } else {
            len = rng() % 512;
            for (std::size_t i = 0; i < len; ++i) work[i] = static_cast<std::byte>(rng());
        }
        // Exactly `len` bytes on the heap, so ASan sees any read past the end.
        const auto copy = std::make_unique<std::byte[]>(std::max<std::size_t>(len, 1));
        std::memcpy(copy.get(), work.data(), len);
        const std::span<const std::byte> in{copy.get(), len};
        NflogSeqTracker seq;
        NflogStats stats;
        parse_nflog_batch(in, kRecvTime, seq, stats,
                          [&](std::span<const std::byte> ip, const PacketMeta&) {
                              ASSERT_FALSE(ip.empty());
                              ASSERT_GE(ip.data(), in.data());
                              ASSERT_LE(ip.data() + ip.size(), in.data() + in.size());
                          });
        ASSERT_LE(stats.packets, stats.messages);
    }
}

// --- Real kernel, inside a private network namespace so the host is never touched. ---

// Runs `body` in a forked child that has its own network namespace; returns its exit code
// (or -1 when namespaces are unavailable).
NflogConfig config(std::uint16_t group) {
    NflogConfig c;
    c.group = group;
    return c;
}

template <class Fn> int in_private_netns(Fn body) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (::unshare(CLONE_NEWNET) != 0) ::_exit(99);
        ::_exit(body());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status)) return -1;
    return WEXITSTATUS(status) == 99 ? -1 : WEXITSTATUS(status);
}

TEST(NflogSourceKernel, BindsAndRejectsASecondBinder) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
    const int rc = in_private_netns([] {
        try {
            NflogSource first(config(4711));
            if (first.fd() < 0 || first.group() != 4711) return 1;
            int calls = 0;
            if (first.receive([&](auto, const auto&) { ++calls; }) != 0 || calls != 0) return 2;
            try {
                NflogSource second(config(4711));
                return 3;
            } catch (const std::system_error& e) {
                if (std::string(e.what()).find("NFLOG group 4711: already bound by another "
                                               "process") == std::string::npos)
                    return 4;
            }
            NflogSource other(config(4712)); // a different group is free
            {
                NflogSource moved = std::move(other);
                if (moved.fd() < 0) return 5;
            }
            // Closing the socket releases the group.
            NflogSource again(config(4712));
        } catch (...) {
            return 6;
        }
        return 0;
    });
    if (rc == -1) GTEST_SKIP() << "network namespaces unavailable";
    EXPECT_EQ(rc, 0);
}

// Sends `count` UDP datagrams to 127.0.0.1:9 in the current namespace; false on failure.
bool send_local_udp(int count) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char payload[32] = {};
    bool ok = true;
    for (int i = 0; i < count && ok; ++i)
        ok = ::sendto(fd, payload, sizeof payload, 0, reinterpret_cast<const sockaddr*>(&to),
                      sizeof to) == static_cast<ssize_t>(sizeof payload);
    ::close(fd);
    return ok;
}

// A stop with a backlog: thousands of messages (far more than 256 KiB) wait unread, plus the
// batch the kernel holds for qtimeout. unbind() and the reads after it deliver every one.
TEST(NflogSourceKernel, UnbindDeliversTheWholeBacklog) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
    constexpr int kPackets = 5000; // not a multiple of qthreshold: a batch stays held
    const int rc = in_private_netns([] {
        if (std::system("ip link set lo up && iptables -A OUTPUT -o lo -p udp --dport 9 "
                        "-j NFLOG --nflog-group 4713 --nflog-size 128 2>/dev/null") != 0)
            return 77;
        try {
            NflogConfig c = config(4713);
            c.qtimeout = 6000; // 60 s: the last batch is only sent when the group is unbound
            NflogSource source(c);
            if (!send_local_udp(kPackets)) return 2;
            std::size_t delivered = 0;
            auto count = [&](auto, const auto&) { ++delivered; };
            source.unbind(count);
            for (int i = 0; i < 100000 && !source.receive_batch(count).idle; ++i) {
            }
            if (delivered != kPackets) return 3;
            if (source.stats().lost_packets != 0 || source.stats().malformed != 0) return 4;
            if (source.unnumbered_overrun()) return 5;
        } catch (...) {
            return 6;
        }
        return 0;
    });
    if (rc == -1) GTEST_SKIP() << "network namespaces unavailable";
    if (rc == 77) GTEST_SKIP() << "iptables NFLOG unavailable";
    EXPECT_EQ(rc, 0);
}

TEST(NflogSourceKernel, InvalidSettingsRejected) {
    NflogConfig c = config(1);
    c.snaplen = 0;
    EXPECT_THROW(NflogSource{c}, std::invalid_argument);
    c.snaplen = 70000;
    EXPECT_THROW(NflogSource{c}, std::invalid_argument);
    c = config(1);
    c.nlbufsiz = 1 << 20;
    EXPECT_THROW(NflogSource{c}, std::invalid_argument);
}

TEST(NflogSourceKernel, PermissionErrorNamesTheGroup) {
    if (::geteuid() != 0) {
        try {
            NflogSource s(config(9));
            FAIL() << "bound without CAP_NET_ADMIN";
        } catch (const std::system_error& e) {
            EXPECT_NE(std::string(e.what()).find("NFLOG group 9: permission denied"),
                      std::string::npos)
                << e.what();
        }
        return;
    }
    // As root: drop to nobody in a child that owns a fresh netns, so the host is not used.
    const int rc = in_private_netns([] {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) return 10;
        try {
            NflogSource s(config(9));
            return 1;
        } catch (const std::system_error& e) {
            return std::string(e.what()).find("NFLOG group 9: permission denied") ==
                           std::string::npos
                       ? 2
                       : 0;
        }
    });
    if (rc == -1) GTEST_SKIP() << "network namespaces unavailable";
    EXPECT_EQ(rc, 0);
}

} // namespace
} // namespace nflowd
