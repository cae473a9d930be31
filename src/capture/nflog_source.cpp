// NFLOG group binding over libmnl and the parser of the kernel's packet batches.
#include "nflowd/nflog_source.hpp"

#include "nflog_attrs.hpp"

#include "nflowd/clock.hpp"
#include "nflowd/net_admin.hpp"
#include "nflowd/netlink_align.hpp"

#include <arpa/inet.h>
#include <endian.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <libnetfilter_log/libnetfilter_log.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

namespace nflowd {

namespace {

constexpr std::size_t kRecvBufferSize = 256 * 1024;
constexpr std::uint32_t kMaxSnaplen = 0xFFFF;  // NFULNL_COPY_RANGE_MAX
constexpr std::uint32_t kMaxNlbufsiz = 131072; // the kernel ignores anything larger
constexpr int kAckTimeoutMs = 2000;
constexpr std::uint16_t kPacketMsgType = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;

std::uint32_t attr_be32(const nlattr* a) noexcept {
    return ntohl(mnl_attr_get_u32(a));
}

std::uint32_t ifindex_of(const nlattr* const* tb, int phys, int logical, bool physdev) noexcept {
    // Bridged packets carry the bridge as the logical device and the port as the physical
    // one. ipt_NETFLOW reports the logical device unless built with
    // --enable-physdev-override, and a `tcpdump -i nflog:N` capture holds both: the choice
    // is the user's (--physdev), the same in --read.
    if (physdev && tb[phys] != nullptr) return attr_be32(tb[phys]);
    if (tb[logical] != nullptr) return attr_be32(tb[logical]);
    return kUnknownIfindex;
}

// flowDirection from the hook of the rule that logged the packet (nfulnl_msg_packet_hdr):
// before routing or delivered locally is ingress, sent locally or after routing is egress.
// FORWARD says nothing of a side, and a kernel that sent no header nothing at all.
Direction direction_of(const nlattr* hdr) noexcept {
    nfulnl_msg_packet_hdr ph{};
    if (hdr == nullptr || mnl_attr_get_payload_len(hdr) < sizeof ph) return Direction::unknown;
    std::memcpy(&ph, mnl_attr_get_payload(hdr), sizeof ph);
    switch (ph.hook) {
    case NF_INET_PRE_ROUTING:
    case NF_INET_LOCAL_IN:
        return Direction::ingress;
    case NF_INET_LOCAL_OUT:
    case NF_INET_POST_ROUTING:
        return Direction::egress;
    default:
        return Direction::unknown;
    }
}

// The kernel's timestamp, or false when absent or not a valid time (then the receive time
// stands in).
// How far a kernel timestamp may be from the batch's receive time before it is not believed.
constexpr Nanos kMaxTimestampSkew = 5 * kNanosPerSecond;

bool kernel_time(const nlattr* a, Nanos& out) noexcept {
    if (a == nullptr) return false;
    nfulnl_msg_packet_timestamp ts{}; // length checked by attr_valid
    std::memcpy(&ts, mnl_attr_get_payload(a), sizeof ts);
    const std::uint64_t sec = be64toh(ts.sec);
    const std::uint64_t usec = be64toh(ts.usec);
    constexpr auto kMaxSec = static_cast<std::uint64_t>(INT64_MAX / kNanosPerSecond) - 1;
    if (usec >= 1'000'000 || sec > kMaxSec) return false;
    out = static_cast<Nanos>(sec) * kNanosPerSecond + static_cast<Nanos>(usec) * 1000;
    return true;
}

// The message at `off`, or nullptr when none fits. libmnl's mnl_nlmsg_ok() compares the
// length as a signed int (a length >= 2^31 passes and the walk goes backwards), and
// attribute parsing runs to the aligned end of a message, so both are checked here.
const nlmsghdr* next_message(std::span<const std::byte> buffer, std::size_t off) noexcept {
    const std::size_t left = buffer.size() - off;
    if (left < sizeof(nlmsghdr)) return nullptr;
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(buffer.data() + off);
    const std::size_t len = nlh->nlmsg_len;
    if (len < sizeof(nlmsghdr) || netlink_align(len) > left) return nullptr;
    return nlh;
}

struct AckResult {
    bool acked = false; // the datagram held the ACK of our request
    int error = 0;      // its positive errno, 0 for success
};

int on_ack(const nlmsghdr* nlh, void* data) {
    // A short error message is not our ACK: keep waiting, as for anyone else's.
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(nlmsgerr)) return MNL_CB_OK;
    nlmsgerr err{};
    std::memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof err);
    *static_cast<AckResult*>(data) = AckResult{true, -err.error};
    return MNL_CB_STOP;
}

// Looks for the ACK of request `seq` in one received datagram. libmnl checks sequence and
// port (packets carry 0 in both, so they pass) and dispatches; only NLMSG_ERROR has a
// callback: NLMSG_DONE ends packet batches and must not pass for an ACK. A message from
// another request (ESRCH, EPROTO) is not ours either. recv() sizes the datagram, so libmnl's
// int lengths cannot overflow here.
AckResult read_ack(const std::byte* datagram, std::size_t size, std::uint32_t seq,
                   std::uint32_t portid) {
    std::array<mnl_cb_t, NLMSG_MIN_TYPE> control{};
    control[NLMSG_ERROR] = on_ack;
    AckResult ack;
    mnl_cb_run2(datagram, size, seq, portid, nullptr, &ack, control.data(),
                static_cast<unsigned>(control.size()));
    return ack;
}

[[noreturn]] void throw_group_error(std::uint16_t group, int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(),
                            "NFLOG group " + std::to_string(group) + ": " + what);
}

} // namespace

namespace {

// One NFLOG packet message: counted, sequence-checked and handed to `fn` when it carries a
// payload. Returns whether a packet was delivered.
[[gnu::always_inline]] inline bool deliver_message(const nlmsghdr* nlh, const TimePair& recv_time,
                                                   NflogSeqTracker& seq, NflogStats& stats,
                                                   bool physdev, detail::NflogPacketFn fn,
                                                   void* ctx, PrefixTagMemo* prefixes) {
    ++stats.messages;
    if (nlh->nlmsg_type != kPacketMsgType || mnl_nlmsg_get_payload_len(nlh) < sizeof(nfgenmsg)) {
        ++stats.malformed;
        return false;
    }
    detail::NflogAttrs tb{};
    if (mnl_attr_parse(nlh, sizeof(nfgenmsg), detail::store_nflog_attr, &tb) < 0) {
        ++stats.malformed;
        return false;
    }
    // The number is consumed even if the rest of the message is unusable: counting it as
    // lost too would count the message twice. A message that did not get this far consumed
    // no number, so the next one's gap counts it: each is in lost_packets exactly once.
    if (tb[NFULA_SEQ] != nullptr) {
        bool reset = false;
        const std::uint32_t gap = seq.observe(attr_be32(tb[NFULA_SEQ]), reset);
        stats.lost += gap;
        stats.lost_packets += gap;
        stats.seq_resets += reset ? 1U : 0U;
    }
    const nlattr* payload = tb[NFULA_PAYLOAD];
    const std::size_t payload_len = payload ? mnl_attr_get_payload_len(payload) : 0;
    if (payload_len == 0) {
        // A packet the kernel logged that cannot be accounted: no gap will ever show it.
        ++stats.malformed;
        ++stats.lost_packets;
        return false;
    }
    PacketMeta meta;
    meta.time = recv_time.mono;
    if (Nanos stamp = 0; kernel_time(tb[NFULA_TIMESTAMP], stamp)) {
        ++stats.kernel_timestamps;
        bool bad = false;
        meta.time = detail::nflog_packet_time(stamp, recv_time, bad);
        stats.bad_timestamps += bad ? 1U : 0U;
    }
    meta.direction = direction_of(tb[NFULA_PACKET_HDR]);
    meta.in_if = ifindex_of(tb.data(), NFULA_IFINDEX_PHYSINDEV, NFULA_IFINDEX_INDEV, physdev);
    meta.out_if = ifindex_of(tb.data(), NFULA_IFINDEX_PHYSOUTDEV, NFULA_IFINDEX_OUTDEV, physdev);
    detail::link_and_tag(tb, prefixes, meta);
    ++stats.packets;
    stats.bytes += payload_len;
    fn(ctx,
       std::span<const std::byte>(static_cast<const std::byte*>(mnl_attr_get_payload(payload)),
                                  payload_len),
       meta);
    return true;
}

} // namespace

Nanos detail::nflog_packet_time(Nanos stamp, const TimePair& recv, bool& bad) noexcept {
    // Far from the receive time it comes from a bogus clock source: trusted, it would
    // place the flow in the wrong hour and expire it at once or never.
    bad = stamp < recv.wall - kMaxTimestampSkew || stamp > recv.wall + kMaxTimestampSkew;
    if (bad || stamp >= recv.wall) return recv.mono;
    return recv.mono - (recv.wall - stamp);
}

std::size_t detail::parse_nflog_batch(std::span<const std::byte> buffer, const TimePair& recv_time,
                                      NflogSeqTracker& seq, NflogStats& stats, bool physdev,
                                      NflogPacketFn fn, void* ctx, PrefixTagMemo* prefixes) {
    ++stats.batches;
    if (buffer.empty()) return 0;
    // libmnl reads headers in place: a misaligned buffer would be undefined behaviour.
    if (reinterpret_cast<std::uintptr_t>(buffer.data()) % alignof(nlmsghdr) != 0) {
        ++stats.malformed;
        return 0;
    }
    std::size_t delivered = 0;
    std::size_t off = 0;
    for (const nlmsghdr* nlh; (nlh = next_message(buffer, off)) != nullptr;
         off += netlink_align(nlh->nlmsg_len)) {
        // NLMSG_DONE ends a multi-message batch; ACKs and NOOPs carry no packet.
        if (nlh->nlmsg_type < NLMSG_MIN_TYPE) continue;
        if (deliver_message(nlh, recv_time, seq, stats, physdev, fn, ctx, prefixes)) ++delivered;
    }
    // Bytes left that do not form a message: cut short or a lying length. The walk cannot
    // resynchronise past them.
    if (off < buffer.size()) ++stats.malformed;
    return delivered;
}

void NflogBacklog::push(std::span<const std::byte> datagram) {
    if (empty()) { // everything handed out: start over instead of growing
        bytes_.clear();
        sizes_.clear();
        next_ = 0;
        at_ = 0;
    }
    // Padded so that the next datagram starts netlink-aligned, as the parser requires.
    const std::size_t at = bytes_.size();
    bytes_.resize(at + netlink_align(datagram.size()));
    std::memcpy(bytes_.data() + at, datagram.data(), datagram.size());
    sizes_.push_back(datagram.size());
}

std::span<const std::byte> NflogBacklog::pop() noexcept {
    if (empty()) return {};
    const std::span<const std::byte> d(bytes_.data() + at_, sizes_[next_]);
    at_ += netlink_align(sizes_[next_]);
    ++next_;
    return d;
}

void NflogSource::SocketCloser::operator()(mnl_socket* s) const noexcept {
    mnl_socket_close(s);
}

NflogSource::NflogSource(const NflogConfig& cfg) : group_(cfg.group), physdev_(cfg.physdev) {
    if (cfg.snaplen == 0 || cfg.snaplen > kMaxSnaplen)
        throw std::invalid_argument("NFLOG group " + std::to_string(group_) +
                                    ": snaplen must be 1..65535");
    if (cfg.nlbufsiz > kMaxNlbufsiz)
        throw std::invalid_argument("NFLOG group " + std::to_string(group_) +
                                    ": nlbufsiz must be at most 131072");

    // From the socket's creation on: the kernel checks CAP_NET_ADMIN against the opener's
    // credentials as well as the sender's for every config message.
    const NetAdminScope net_admin;
    sock_.reset(mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!sock_) throw_group_error(group_, errno, "cannot open netfilter netlink socket");
    if (cfg.rcvbuf > 0) {
        // FORCE ignores rmem_max but needs CAP_NET_ADMIN; without it take what rmem_max allows.
        const int fd = mnl_socket_get_fd(sock_.get());
        if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &cfg.rcvbuf, sizeof cfg.rcvbuf) != 0)
            ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg.rcvbuf, sizeof cfg.rcvbuf);
    }
    if (mnl_socket_bind(sock_.get(), 0, MNL_SOCKET_AUTOPID) < 0)
        throw_group_error(group_, errno, "cannot bind netlink socket");

    buf_.resize(kRecvBufferSize);
    configure(cfg);
}

NflogSource::~NflogSource() = default;
NflogSource::NflogSource(NflogSource&&) noexcept = default;
NflogSource& NflogSource::operator=(NflogSource&&) noexcept = default;

int NflogSource::fd() const noexcept {
    return mnl_socket_get_fd(sock_.get());
}

void NflogSource::configure(const NflogConfig& cfg) {
    alignas(nlmsghdr) std::array<char, 512> msg{};

    // Kernels before 3.17 route NFLOG to the logger bound to the family, so bind ours. Newer
    // kernels ignore this apart from a module reference. PF_UNBIND is deliberately not sent:
    // on modular kernels it drops a reference it never took.
    for (const std::uint8_t family : {std::uint8_t{AF_INET}, std::uint8_t{AF_INET6}}) {
        nlmsghdr* nlh = nflog_nlmsg_put_header(msg.data(), NFULNL_MSG_CONFIG, family, 0);
        nflog_attr_put_cfg_cmd(nlh, NFULNL_CFG_CMD_PF_BIND);
        try {
            send_config(nlh, "PF_BIND");
        } catch (const std::system_error& e) {
            // Every nfnetlink message needs CAP_NET_ADMIN: EPERM here means no permission,
            // which tells it apart from the EPERM of a group owned by someone else below.
            if (e.code().value() == EPERM)
                throw_group_error(group_, EPERM, "permission denied (CAP_NET_ADMIN required)");
            // Anything else (e.g. no logger for IPv6 on an old kernel) does not stop IPv4.
        }
    }

    // One message: the kernel applies the command and then every setting in the same call,
    // so no packet is logged with default settings (full copy, no sequence numbers).
    nlmsghdr* nlh = nflog_nlmsg_put_header(msg.data(), NFULNL_MSG_CONFIG, AF_UNSPEC, group_);
    nflog_attr_put_cfg_cmd(nlh, NFULNL_CFG_CMD_BIND);
    nflog_attr_put_cfg_mode(nlh, NFULNL_COPY_PACKET, cfg.snaplen);
    mnl_attr_put_u32(nlh, NFULA_CFG_QTHRESH, htonl(cfg.qthreshold));
    mnl_attr_put_u32(nlh, NFULA_CFG_TIMEOUT, htonl(cfg.qtimeout));
    if (cfg.nlbufsiz != 0) mnl_attr_put_u32(nlh, NFULA_CFG_NLBUFSIZ, htonl(cfg.nlbufsiz));
    mnl_attr_put_u16(nlh, NFULA_CFG_FLAGS, htons(NFULNL_CFG_F_SEQ));
    try {
        send_config(nlh, "BIND");
    } catch (const std::system_error& e) {
        // The kernel answers EPERM when another socket owns the group, EBUSY when this one
        // already does; permission itself was established above.
        const int err = e.code().value();
        if (err == EPERM || err == EBUSY)
            throw_group_error(group_, err, "already bound by another process");
        throw_group_error(group_, err, "bind failed");
    }
    // No explicit UNBIND on destruction: closing the socket releases the group.
}

std::size_t NflogSource::queue_capacity() const noexcept {
    int rcvbuf = 0;
    socklen_t len = sizeof rcvbuf;
    if (::getsockopt(fd(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len) != 0 || rcvbuf <= 0)
        rcvbuf = INT_MAX; // unknown: read until the socket is empty
    // The kernel queues one more datagram as long as the buffer is not yet over its limit.
    return static_cast<std::size_t>(rcvbuf) + kRecvBufferSize;
}

void NflogSource::unbind(detail::NflogPacketFn fn, void* ctx) {
    // Destroying the instance makes the kernel send the batch it is still holding for
    // qthreshold/qtimeout; it arrives before the ACK, with anything still queued, and is
    // delivered at once: a stop must not hold a socket's worth of packets in memory.
    alignas(nlmsghdr) std::array<char, 128> msg{};
    nlmsghdr* nlh = nflog_nlmsg_put_header(msg.data(), NFULNL_MSG_CONFIG, AF_UNSPEC, group_);
    nflog_attr_put_cfg_cmd(nlh, NFULNL_CFG_CMD_UNBIND);
    const NetAdminScope net_admin;
    send_config(nlh, "UNBIND", NotAck{fn, ctx});
}

void NflogSource::on_not_ack(std::span<const std::byte> datagram, NotAck not_ack) {
    if (not_ack.fn != nullptr)
        detail::parse_nflog_batch(datagram, time_pair_now(), seq_, stats_, physdev_, not_ack.fn,
                                  not_ack.ctx, &prefixes_);
    else
        backlog_.push(datagram);
}

void NflogSource::send_config(nlmsghdr* nlh, const char* what, NotAck not_ack) {
    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = ++config_seq_;
    if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0)
        throw std::system_error(errno, std::generic_category(), what);

    const int fd = mnl_socket_get_fd(sock_.get());
    // The ACK queues behind whatever was waiting, which may be a whole socket buffer: the
    // timeout counts from the last datagram, and what may be read before it is bounded by
    // twice what the socket holds (more means the ACK itself was lost to an overrun).
    const Nanos timeout = kAckTimeoutMs * kNanosPerMilli;
    Nanos deadline = steady_time() + timeout;
    std::size_t budget = 2 * queue_capacity();
    for (;;) {
        const ssize_t n = ::recv(fd, buf_.data(), buf_.size(), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOBUFS) {
                ++stats_.enobufs;
                seq_.overrun();
                continue;
            }
            if (errno != EAGAIN) throw std::system_error(errno, std::generic_category(), what);
            const Nanos left = deadline - steady_time();
            if (left <= 0) throw std::system_error(ETIMEDOUT, std::generic_category(), what);
            pollfd pfd{fd, POLLIN, 0};
            ::poll(&pfd, 1, static_cast<int>(left / kNanosPerMilli) + 1);
            continue;
        }
        const AckResult ack = read_ack(buf_.data(), static_cast<std::size_t>(n), config_seq_,
                                       mnl_socket_get_portid(sock_.get()));
        if (!ack.acked) {
            // Packets logged ahead of the ACK (after BIND, before UNBIND).
            const auto size = static_cast<std::size_t>(n);
            on_not_ack({buf_.data(), size}, not_ack);
            if (size >= budget) throw std::system_error(ETIMEDOUT, std::generic_category(), what);
            budget -= size;
            deadline = steady_time() + timeout;
            continue;
        }
        if (ack.error != 0) throw std::system_error(ack.error, std::generic_category(), what);
        return;
    }
}

std::span<const std::byte> NflogSource::recv_batch(TimePair& recv_time, bool& idle) {
    idle = false;
    if (!backlog_.empty()) {
        recv_time = time_pair_now();
        return backlog_.pop();
    }
    // MSG_TRUNC makes recv report the datagram's real size, so a cut batch is noticed.
    const ssize_t n = ::recv(fd(), buf_.data(), buf_.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
        if (errno == EINTR) return {};
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            idle = true;
            return {};
        }
        if (errno == ENOBUFS) {
            ++stats_.enobufs;
            seq_.overrun();
            return {};
        }
        throw std::system_error(errno, std::generic_category(),
                                "NFLOG group " + std::to_string(group_) + ": recv");
    }
    recv_time = time_pair_now();
    auto size = static_cast<std::size_t>(n);
    if (size > buf_.size()) {
        ++stats_.malformed;
        size = buf_.size();
    }
    return {buf_.data(), size};
}

} // namespace nflowd
