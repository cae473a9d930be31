// Tests of the NFLOG batch parser on synthetic netlink buffers, and of group binding in a
// private network namespace (root only).
#include "nflowd/nflog_source.hpp"

#include <arpa/inet.h>
#include <endian.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace nflowd {
namespace {

constexpr std::uint16_t kPacketType = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
constexpr Nanos kRecvTime = 1'700'000'000LL * kNanosPerSecond + 123;

struct Msg {
    std::optional<std::uint32_t> seq;
    std::optional<std::uint32_t> indev, outdev, physindev, physoutdev;
    std::optional<std::pair<std::uint64_t, std::uint64_t>> ts; // sec, usec
    std::optional<std::size_t> payload_len = 60;
    std::uint16_t type = kPacketType;
};

// Netlink buffer built the way the kernel lays out a batch; 8-byte aligned storage.
class Batch {
  public:
    Batch() : words_(kCapacity / sizeof(std::uint64_t)) {}

    Batch& add(const Msg& m) {
        nlmsghdr* nlh = mnl_nlmsg_put_header(tail());
        nlh->nlmsg_type = m.type;
        nlh->nlmsg_flags = NLM_F_MULTI;
        auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
        nfg->nfgen_family = AF_INET;
        nfg->version = NFNETLINK_V0;
        nfg->res_id = htons(42);
        nfulnl_msg_packet_hdr ph{};
        ph.hw_protocol = htons(0x0800);
        ph.hook = 2;
        mnl_attr_put(nlh, NFULA_PACKET_HDR, sizeof ph, &ph);
        if (m.ts) {
            nfulnl_msg_packet_timestamp ts{};
            ts.sec = htobe64(m.ts->first);
            ts.usec = htobe64(m.ts->second);
            mnl_attr_put(nlh, NFULA_TIMESTAMP, sizeof ts, &ts);
        }
        if (m.indev) mnl_attr_put_u32(nlh, NFULA_IFINDEX_INDEV, htonl(*m.indev));
        if (m.outdev) mnl_attr_put_u32(nlh, NFULA_IFINDEX_OUTDEV, htonl(*m.outdev));
        if (m.physindev) mnl_attr_put_u32(nlh, NFULA_IFINDEX_PHYSINDEV, htonl(*m.physindev));
        if (m.physoutdev) mnl_attr_put_u32(nlh, NFULA_IFINDEX_PHYSOUTDEV, htonl(*m.physoutdev));
        if (m.payload_len) {
            std::vector<std::uint8_t> p(*m.payload_len);
            for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i + size_);
            if (!p.empty()) p[0] = 0x45;
            mnl_attr_put(nlh, NFULA_PAYLOAD, p.size(), p.data());
        }
        if (m.seq) mnl_attr_put_u32(nlh, NFULA_SEQ, htonl(*m.seq));
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

Result parse(std::span<const std::byte> bytes, NflogSeqTracker seq = NflogSeqTracker{}) {
    Result r;
    r.delivered = parse_nflog_batch(bytes, kRecvTime, seq, r.stats,
                                    [&](std::span<const std::byte> ip, const PacketMeta& meta) {
                                        r.seen.lengths.push_back(ip.size());
                                        r.seen.metas.push_back(meta);
                                        r.seen.first_bytes.push_back(
                                            std::to_integer<std::uint8_t>(ip[0]));
                                    });
    return r;
}

TEST(NflogParse, SinglePacketWithAllMetadata) {
    Batch b;
    b.add({.seq = 0, .indev = 3, .outdev = 4, .ts = {{1'700'000'001, 250'000}}});
    const Result r = parse(b.bytes());
    ASSERT_EQ(r.delivered, 1U);
    EXPECT_EQ(r.seen.lengths[0], 60U);
    EXPECT_EQ(r.seen.first_bytes[0], 0x45);
    EXPECT_EQ(r.seen.metas[0].time, 1'700'000'001LL * kNanosPerSecond + 250'000'000LL);
    EXPECT_EQ(r.seen.metas[0].in_if, 3U);
    EXPECT_EQ(r.seen.metas[0].out_if, 4U);
    EXPECT_EQ(r.stats.packets, 1U);
    EXPECT_EQ(r.stats.messages, 1U);
    EXPECT_EQ(r.stats.bytes, 60U);
    EXPECT_EQ(r.stats.kernel_timestamps, 1U);
    EXPECT_EQ(r.stats.malformed, 0U);
    EXPECT_EQ(r.stats.lost, 0U);
}

TEST(NflogParse, ReceiveTimeWithoutTimestampAndUnknownInterfaces) {
    Batch b;
    b.add({.seq = 7});
    const Result r = parse(b.bytes());
    ASSERT_EQ(r.delivered, 1U);
    EXPECT_EQ(r.seen.metas[0].time, kRecvTime);
    EXPECT_EQ(r.seen.metas[0].in_if, kUnknownIfindex);
    EXPECT_EQ(r.seen.metas[0].out_if, kUnknownIfindex);
    EXPECT_EQ(r.stats.kernel_timestamps, 0U);
}

TEST(NflogParse, InvalidTimestampFallsBackToReceiveTime) {
    Batch b;
    b.add({.ts = {{5, 1'000'000}}}).add({.ts = {{~std::uint64_t{0}, 0}}});
    const Result r = parse(b.bytes());
    ASSERT_EQ(r.delivered, 2U);
    EXPECT_EQ(r.seen.metas[0].time, kRecvTime);
    EXPECT_EQ(r.seen.metas[1].time, kRecvTime);
}

TEST(NflogParse, BridgePortsPreferredOverLogicalDevices) {
    Batch b;
    b.add({.indev = 10, .outdev = 10, .physindev = 11, .physoutdev = 12});
    b.add({.indev = 10, .outdev = 10, .physindev = 11});
    const Result r = parse(b.bytes());
    ASSERT_EQ(r.delivered, 2U);
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
        b.add({.seq = i, .indev = 1, .outdev = 2, .payload_len = len});
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
    for (const std::uint32_t s : {0U, 1U, 2U, 5U, 6U, 10U, 11U}) b.add({.seq = s});
    const Result r = parse(b.bytes(), NflogSeqTracker{0});
    EXPECT_EQ(r.delivered, 7U);
    EXPECT_EQ(r.stats.lost, 2U + 3U);
    EXPECT_EQ(r.stats.seq_resets, 0U);
}

TEST(NflogSeq, FirstMessage) {
    Batch b;
    b.add({.seq = 3}).add({.seq = 4});
    // Unsynchronised tracker: the first number is the start.
    EXPECT_EQ(parse(b.bytes()).stats.lost, 0U);
    // A freshly bound group starts at 0: a lost first batch shows.
    EXPECT_EQ(parse(b.bytes(), NflogSeqTracker{0}).stats.lost, 3U);
}

TEST(NflogSeq, WrapAround) {
    Batch b;
    for (const std::uint32_t s : {0xFFFF'FFFDU, 0xFFFF'FFFEU, 0xFFFF'FFFFU, 0U, 1U}) b.add({.seq = s});
    EXPECT_EQ(parse(b.bytes()).stats.lost, 0U);

    Batch gap;
    gap.add({.seq = 0xFFFF'FFFEU}).add({.seq = 2U}); // lost ...FF, 0, 1
    EXPECT_EQ(parse(gap.bytes()).stats.lost, 3U);
}

TEST(NflogSeq, TrackerAcrossBatches) {
    NflogSeqTracker t{0};
    NflogStats stats;
    auto sink = [](std::span<const std::byte>, const PacketMeta&) {};
    Batch b1;
    b1.add({.seq = 0}).add({.seq = 1});
    Batch b2;
    b2.add({.seq = 4}).add({.seq = 5});
    parse_nflog_batch(b1.bytes(), kRecvTime, t, stats, sink);
    parse_nflog_batch(b2.bytes(), kRecvTime, t, stats, sink);
    EXPECT_EQ(stats.lost, 2U);
    EXPECT_EQ(stats.batches, 2U);
}

TEST(NflogSeq, BackwardsJumpIsAResetNotALoss) {
    Batch b;
    b.add({.seq = 100}).add({.seq = 50}).add({.seq = 51}).add({.seq = 53});
    const Result r = parse(b.bytes());
    EXPECT_EQ(r.stats.seq_resets, 1U);
    EXPECT_EQ(r.stats.lost, 1U);
}

TEST(NflogSeq, MessagesWithoutSeqDoNotDisturbTracking) {
    Batch b;
    b.add({.seq = 0}).add({}).add({.seq = 1});
    const Result r = parse(b.bytes(), NflogSeqTracker{0});
    EXPECT_EQ(r.delivered, 3U);
    EXPECT_EQ(r.stats.lost, 0U);
}

TEST(NflogMalformed, MissingPayloadCountedAndSeqConsumed) {
    Batch b;
    b.add({.seq = 0}).add({.seq = 1, .payload_len = std::nullopt}).add({.seq = 2});
    b.add({.seq = 3, .payload_len = 0});
    const Result r = parse(b.bytes(), NflogSeqTracker{0});
    EXPECT_EQ(r.delivered, 2U);
    EXPECT_EQ(r.stats.malformed, 2U);
    EXPECT_EQ(r.stats.messages, 4U);
    EXPECT_EQ(r.stats.lost, 0U);
}

TEST(NflogMalformed, BadAttributeLength) {
    Batch b;
    b.add({.seq = 0});
    // NFULA_SEQ must be 4 bytes; append a 2-byte one to a fresh message by hand.
    Batch bad;
    bad.add({});
    auto* nlh = reinterpret_cast<nlmsghdr*>(bad.data());
    mnl_attr_put_u16(nlh, NFULA_SEQ, 1);
    const std::span<const std::byte> bytes{bad.data(), MNL_ALIGN(nlh->nlmsg_len)};
    const Result r = parse(bytes);
    EXPECT_EQ(r.delivered, 0U);
    EXPECT_EQ(r.stats.malformed, 1U);
}

TEST(NflogMalformed, ForeignMessageTypeAndControlMessages) {
    Batch b;
    b.add({.type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG}).add({.type = NLMSG_NOOP});
    b.add({}).done();
    const Result r = parse(b.bytes());
    EXPECT_EQ(r.delivered, 1U);
    EXPECT_EQ(r.stats.malformed, 1U);
}

TEST(NflogMalformed, LyingNetlinkLengthStopsTheWalk) {
    Batch b;
    b.add({}).add({}).add({});
    auto* second = reinterpret_cast<nlmsghdr*>(b.data() + b.boundaries()[0]);
    second->nlmsg_len = 0xFFFF'0000U;
    const Result r = parse(b.bytes());
    EXPECT_EQ(r.delivered, 1U);
    EXPECT_EQ(r.stats.malformed, 1U);

    second->nlmsg_len = 3; // shorter than a netlink header
    EXPECT_EQ(parse(b.bytes()).stats.malformed, 1U);
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
    b.add({});
    std::vector<std::uint64_t> words(b.bytes().size() / 8 + 2);
    auto* shifted = reinterpret_cast<std::byte*>(words.data()) + 1;
    std::memcpy(shifted, b.bytes().data(), b.bytes().size());
    const Result r = parse({shifted, b.bytes().size()});
    EXPECT_EQ(r.delivered, 0U);
    EXPECT_EQ(r.stats.malformed, 1U);
}

TEST(NflogMalformed, TruncatedAtEveryLength) {
    Batch b;
    b.add({.seq = 0, .indev = 1, .ts = {{1, 2}}}).add({.seq = 1, .payload_len = 77});
    b.add({.seq = 2, .outdev = 9, .payload_len = 128}).done();
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
    for (std::uint32_t i = 0; i < 20; ++i)
        b.add({.seq = i, .indev = i, .ts = {{i, i}}, .payload_len = 10 + i * 7});
    const auto full = b.bytes();
    std::vector<std::uint64_t> words(full.size() / 8 + 1);
    auto* copy = reinterpret_cast<std::byte*>(words.data());
    for (int iter = 0; iter < 20000; ++iter) {
        std::size_t len = full.size();
        if (iter % 2 == 0) {
            std::memcpy(copy, full.data(), full.size());
            for (int k = 0; k < 1 + iter % 8; ++k)
                copy[rng() % full.size()] = static_cast<std::byte>(rng());
            len = rng() % (full.size() + 1);
        } else {
            len = rng() % 512;
            for (std::size_t i = 0; i < len; ++i) copy[i] = static_cast<std::byte>(rng());
        }
        const std::span<const std::byte> in{copy, len};
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
            NflogSource first({.group = 4711});
            if (first.fd() < 0 || first.group() != 4711) return 1;
            int calls = 0;
            if (first.receive([&](auto, const auto&) { ++calls; }) != 0 || calls != 0) return 2;
            try {
                NflogSource second({.group = 4711});
                return 3;
            } catch (const std::system_error& e) {
                if (std::string(e.what()).find("NFLOG group 4711: already bound by another "
                                               "process") == std::string::npos)
                    return 4;
            }
            NflogSource other({.group = 4712}); // a different group is free
            {
                NflogSource moved = std::move(other);
                if (moved.fd() < 0) return 5;
            }
            // Closing the socket releases the group.
            NflogSource again({.group = 4712});
        } catch (...) {
            return 6;
        }
        return 0;
    });
    if (rc == -1) GTEST_SKIP() << "network namespaces unavailable";
    EXPECT_EQ(rc, 0);
}

TEST(NflogSourceKernel, InvalidSettingsRejected) {
    EXPECT_THROW(NflogSource({.group = 1, .snaplen = 0}), std::invalid_argument);
    EXPECT_THROW(NflogSource({.group = 1, .snaplen = 70000}), std::invalid_argument);
    EXPECT_THROW(NflogSource({.group = 1, .nlbufsiz = 1 << 20}), std::invalid_argument);
}

TEST(NflogSourceKernel, PermissionErrorNamesTheGroup) {
    if (::geteuid() != 0) {
        try {
            NflogSource s({.group = 9});
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
            NflogSource s({.group = 9});
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
