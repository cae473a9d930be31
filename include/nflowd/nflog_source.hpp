// Live input: binds an NFLOG group over netfilter netlink and hands each logged packet's IP
// layer with its metadata to the pipeline, counting loss (sequence gaps, socket overruns).
#pragma once

#include "nflowd/clock.hpp"
#include "nflowd/header_parser.hpp"
#include "nflowd/packet.hpp"
#include "nflowd/prefix_tag.hpp"
#include "nflowd/stats_fields.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

struct mnl_socket;
struct nlmsghdr;

// Error idiom (capture): per batch and packet, counters (malformed, lost, enobufs), never
// throws; setup and socket failures throw std::system_error (errno and what failed).
namespace nflowd {

struct NflogConfig {
    std::uint16_t group = 0;
    // Bytes of each packet copied to userspace; 128 covers IPv4 with options plus the L4
    // header. An iptables --nflog-size smaller than this wins (the kernel takes the minimum).
    std::uint32_t snaplen = 128;
    // Batching: the kernel flushes a batch when it holds `qthreshold` packets, when
    // `qtimeout` (1/100 s) expires, or when `nlbufsiz` bytes are filled. Large batches mean
    // few syscalls; the latency they add is irrelevant next to flow timeouts.
    std::uint32_t qthreshold = 64;
    std::uint32_t qtimeout = 10;
    std::uint32_t nlbufsiz = 131072; // the kernel's maximum; 0 keeps the kernel default
    // Socket receive buffer; a deep buffer absorbs bursts while the consumer is busy.
    // <= 0 keeps the system default.
    int rcvbuf = 64 * 1024 * 1024;
    // Bridged packets: report the bridge ports (NFULA_IFINDEX_PHYS*) instead of the bridge,
    // as ipt_NETFLOW built with --enable-physdev-override does. Unbridged packets are unaffected.
    bool physdev = false;
};

struct NflogStats {
    std::uint64_t batches = 0;    // datagrams parsed (one recv each)
    std::uint64_t messages = 0;   // NFLOG packet messages seen, delivered or malformed
    std::uint64_t packets = 0;    // packets delivered to the callback
    std::uint64_t bytes = 0;      // captured bytes delivered (at most snaplen per packet)
    std::uint64_t lost = 0;       // messages missing from the sequence (kernel could not deliver)
    std::uint64_t enobufs = 0;    // socket overruns reported by recv()
    std::uint64_t malformed = 0;  // bad netlink framing, invalid attributes, missing payload
    std::uint64_t seq_resets = 0; // sequence jumped backwards / implausibly far
    std::uint64_t kernel_timestamps = 0; // packets that carried NFULA_TIMESTAMP
    std::uint64_t bad_timestamps = 0;    // kernel timestamps > 5 s from receipt, replaced by it
    // Packets the kernel logged and nflowd never accounted: every sequence gap (overruns,
    // messages cut or unreadable) and numbered messages without a payload. One message is one
    // packet, so this is exact up to the last message received.
    std::uint64_t lost_packets = 0;

    static constexpr auto fields() {
        using F = StatField<NflogStats>;
        constexpr auto c = StatKind::counter;
        return std::array{
            F{"batches", &NflogStats::batches, c, "datagrams", "Netlink datagrams parsed"},
            F{"messages", &NflogStats::messages, c, "messages", "NFLOG packet messages seen"},
            F{"packets", &NflogStats::packets, c, "packets", "Packets received from the group"},
            F{"bytes", &NflogStats::bytes, c, "bytes", "Captured bytes received"},
            F{"lost", &NflogStats::lost, c, "messages",
              "Messages the kernel could not deliver (sequence gaps)"},
            F{"enobufs", &NflogStats::enobufs, c, "overruns", "Socket overruns (ENOBUFS)"},
            F{"malformed", &NflogStats::malformed, c, "messages", "Malformed netlink messages"},
            F{"seq_resets", &NflogStats::seq_resets, c, "resets",
              "Sequence numbers that jumped back or implausibly far"},
            F{"kernel_timestamps", &NflogStats::kernel_timestamps, c, "packets",
              "Packets that carried a kernel timestamp"},
            F{"bad_timestamps", &NflogStats::bad_timestamps, c, "packets",
              "Kernel timestamps more than 5 s from the receive time, replaced by it"},
            F{"lost_packets", &NflogStats::lost_packets, c, "packets",
              "Packets the kernel logged that were never accounted"},
        };
    }
};

// Loss accounting from the per-group NFULA_SEQ numbers. Netlink keeps order, so every
// skipped number is a message the kernel built and then dropped (socket buffer full).
class NflogSeqTracker {
  public:
    // The first number seen is taken as the start: nothing before it is known.
    NflogSeqTracker() noexcept = default;
    // A freshly bound group numbers its messages from 0, so a lost first batch still counts.
    explicit NflogSeqTracker(std::uint32_t expected_first) noexcept
        : next_(expected_first), synced_(true) {}

    // Messages lost right before `seq`. A distance of 2^31 or more cannot be a gap (that
    // many messages never fit in a socket buffer), so it is a restart: resync, report 0,
    // and set `reset`.
    std::uint32_t observe(std::uint32_t seq, bool& reset) noexcept {
        reset = false;
        std::uint32_t lost = 0;
        if (synced_) {
            const std::uint32_t gap = seq - next_; // modulo 2^32: wrap is an ordinary step
            if (gap < kMaxGap)
                lost = gap;
            else
                reset = true;
        }
        next_ = seq + 1;
        synced_ = true;
        overrun_ = false;
        return lost;
    }

    // The socket reported an overrun: what it dropped is counted by the next number's gap.
    void overrun() noexcept { overrun_ = true; }
    // An overrun with no number after it yet: what it dropped shows in no gap.
    bool unnumbered_overrun() const noexcept { return overrun_; }

  private:
    static constexpr std::uint32_t kMaxGap = 0x8000'0000U;
    std::uint32_t next_ = 0;
    bool synced_ = false;
    bool overrun_ = false;
};

namespace detail {
using NflogPacketFn = void (*)(void* ctx, std::span<const std::byte> ip, const PacketMeta& meta);
std::size_t parse_nflog_batch(std::span<const std::byte> buffer, const TimePair& recv_time,
                              NflogSeqTracker& seq, NflogStats& stats, bool physdev,
                              NflogPacketFn fn, void* ctx, PrefixTagMemo* prefixes = nullptr);
// A packet's flow time from the kernel's NFULA_TIMESTAMP (wall time) and the batch's receive
// time on both clocks: recv.mono + (stamp - recv.wall), so a wall-clock step never reaches
// the flows. A stamp more than 5 s from recv.wall sets `bad` and gives recv.mono; a stamp
// after recv.wall (within the 5 s) gives recv.mono too: a packet is logged before it is read.
Nanos nflog_packet_time(Nanos stamp, const TimePair& recv, bool& bad) noexcept;
} // namespace detail

// Walks one datagram of netlink messages as the kernel sends it (a batch of NFULNL_MSG_PACKET
// messages, possibly ended by NLMSG_DONE) and calls fn(ip_payload, meta) per packet. Every
// length is checked against the buffer; anything inconsistent is counted as malformed and
// skipped (a broken netlink header ends the walk, since the next one cannot be found).
// `buffer` must be 4-byte aligned (netlink alignment); otherwise it is all malformed.
// meta.time is flow time (CLOCK_MONOTONIC): the kernel's NFULA_TIMESTAMP placed by
// detail::nflog_packet_time when present, `recv_time.mono` otherwise. The
// ifindexes are the logical devices (a bridge, not its port) unless `physdev` (NflogConfig).
// meta.link is the Ethernet header's MACs (NFULA_HWHEADER) and NFULA_VLAN's id; a prefix
// (NFULA_PREFIX) tag sets meta.obs_point and may override meta.direction (PrefixTag), through
// `prefixes` when given (a reader's memo), else parsed per packet.
// Returns the number of packets delivered. No allocation.
template <class Fn>
std::size_t parse_nflog_batch(std::span<const std::byte> buffer, const TimePair& recv_time,
                              NflogSeqTracker& seq, NflogStats& stats, Fn&& fn,
                              bool physdev = false, PrefixTagMemo* prefixes = nullptr) {
    using F = std::remove_reference_t<Fn>;
    return detail::parse_nflog_batch(
        buffer, recv_time, seq, stats, physdev,
        [](void* ctx, std::span<const std::byte> ip, const PacketMeta& meta) {
            (*static_cast<F*>(ctx))(ip, meta);
        },
        const_cast<void*>(static_cast<const void*>(std::addressof(fn))), prefixes);
}

// Datagrams that arrived while a config request waited for its ACK, handed out one per
// receive in arrival order. Each keeps its own size: none is cut at the receive buffer's.
class NflogBacklog {
  public:
    void push(std::span<const std::byte> datagram);
    // The oldest datagram not yet handed out (netlink-aligned), empty when there is none. It
    // stays valid until the next push() or pop().
    std::span<const std::byte> pop() noexcept;
    bool empty() const noexcept { return next_ == sizes_.size(); }

  private:
    std::vector<std::byte> bytes_; // the datagrams back to back, each at an aligned offset
    std::vector<std::size_t> sizes_;
    std::size_t next_ = 0; // index of the next datagram to hand out
    std::size_t at_ = 0;   // its offset in bytes_
};

// What one receive did. `idle`: nothing was waiting (EAGAIN); an overrun or EINTR is not idle,
// since more may be queued behind it.
struct NflogReceived {
    std::size_t packets = 0; // delivered to the callback
    std::size_t bytes = 0;   // size of the datagram read
    bool idle = true;
};

class NflogSource {
  public:
    // Opens a netfilter netlink socket and binds `cfg.group` with the settings above. Throws
    // std::invalid_argument for out-of-range settings and std::system_error naming the group
    // when the kernel refuses, e.g. "NFLOG group 5: already bound by another process".
    explicit NflogSource(const NflogConfig& cfg);
    ~NflogSource();
    NflogSource(NflogSource&&) noexcept;
    NflogSource& operator=(NflogSource&&) noexcept;
    NflogSource(const NflogSource&) = delete;
    NflogSource& operator=(const NflogSource&) = delete;

    // Non-blocking socket to poll for readability.
    int fd() const noexcept;
    std::uint16_t group() const noexcept { return group_; }

    // One recv() of a whole batch, then fn(std::span<const std::byte> ip, const PacketMeta&)
    // for each packet in it. Returns the packets delivered; 0 when nothing was waiting
    // (EAGAIN), on EINTR and on an overrun (ENOBUFS, counted: the loss itself shows up as
    // a sequence gap once the next message arrives). Other socket errors throw
    // std::system_error: the socket is unusable then.
    template <class Fn> std::size_t receive(Fn&& fn) {
        return receive_batch(std::forward<Fn>(fn)).packets;
    }
    // The same, telling an empty socket from a batch that held no packet (see NflogReceived).
    template <class Fn> NflogReceived receive_batch(Fn&& fn) {
        TimePair now;
        NflogReceived r;
        const std::span<const std::byte> batch = recv_batch(now, r.idle);
        if (batch.empty()) return r;
        r.bytes = batch.size();
        r.packets =
            parse_nflog_batch(batch, now, seq_, stats_, std::forward<Fn>(fn), physdev_, &prefixes_);
        return r;
    }
    // Bytes of datagrams the socket can hold at most (its receive buffer plus the one batch
    // the kernel may queue past it): reading that much reads everything queued before.
    std::size_t queue_capacity() const noexcept;

    const NflogStats& stats() const noexcept { return stats_; }
    // At stop: an overrun came after the last message received, so the packets it dropped
    // are in no count (only a later sequence number could say how many there were).
    bool unnumbered_overrun() const noexcept { return seq_.unnumbered_overrun(); }

    // Releases the group at shutdown and delivers through fn every packet queued ahead of
    // the kernel's ACK, including the batch it was still holding for qthreshold/qtimeout: after
    // the ACK the group sends nothing more, so nothing logged for it stays unread. Read the
    // socket empty first (receive_batch), so that the held batch and the ACK find room.
    // Throws std::system_error if the kernel refuses (no CAP_NET_ADMIN) or never answers.
    template <class Fn> void unbind(Fn&& fn) {
        using F = std::remove_reference_t<Fn>;
        unbind([](void* ctx, std::span<const std::byte> ip,
                  const PacketMeta& meta) { (*static_cast<F*>(ctx))(ip, meta); },
               const_cast<void*>(static_cast<const void*>(std::addressof(fn))));
    }

  private:
    struct SocketCloser {
        void operator()(mnl_socket* s) const noexcept;
    };

    // Where send_config puts datagrams that are not its ACK: parsed and delivered through
    // `fn` at once, or kept in backlog_ for receive() when `fn` is null.
    struct NotAck { // no member initializers: `= {}` below needs the aggregate complete
        detail::NflogPacketFn fn;
        void* ctx;
    };

    // Returns the next datagram (empty if none) and the time it was received; `idle` is set
    // when the socket had nothing (EAGAIN).
    std::span<const std::byte> recv_batch(TimePair& recv_time, bool& idle);
    void unbind(detail::NflogPacketFn fn, void* ctx);
    void configure(const NflogConfig& cfg);
    // Sends one config message and waits for its ACK; throws std::system_error(kernel errno).
    void send_config(nlmsghdr* nlh, const char* what, NotAck not_ack = {});
    void on_not_ack(std::span<const std::byte> datagram, NotAck not_ack);

    std::unique_ptr<mnl_socket, SocketCloser> sock_;
    std::uint16_t group_ = 0;
    bool physdev_ = false;
    std::uint32_t config_seq_ = 0;
    // Holds a whole batch: the kernel caps a batch at max(nlbufsiz <= 128 KiB, one message
    // of <= 64 KiB payload), so 256 KiB never truncates.
    std::vector<std::byte> buf_;
    // Packets that arrived while the constructor waited for ACKs; delivered first.
    NflogBacklog backlog_;
    NflogSeqTracker seq_{0};
    NflogStats stats_;
    PrefixTagMemo prefixes_; // the rules' prefixes, parsed once each in a row
};

} // namespace nflowd
