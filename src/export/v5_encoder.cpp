#include "nflowd/v5_encoder.hpp"

#include <algorithm>

namespace nflowd {
namespace {

// Writes big-endian fields into a fixed buffer. An overrun sets a sticky flag and writes
// nothing, so a layout mistake shows up as a wrong size (caught by the static_asserts below
// and by the tests) rather than as memory corruption.
class BeWriter {
  public:
    constexpr explicit BeWriter(std::span<std::byte> buf) noexcept : buf_(buf) {}

    constexpr void u8(std::uint8_t v) noexcept {
        if (pos_ + 1 > buf_.size()) {
            overrun_ = true;
            return;
        }
        buf_[pos_++] = static_cast<std::byte>(v);
    }
    constexpr void u16(std::uint16_t v) noexcept {
        if (pos_ + 2 > buf_.size()) {
            overrun_ = true;
            return;
        }
        buf_[pos_++] = static_cast<std::byte>(v >> 8);
        buf_[pos_++] = static_cast<std::byte>(v);
    }
    constexpr void u32(std::uint32_t v) noexcept {
        if (pos_ + 4 > buf_.size()) {
            overrun_ = true;
            return;
        }
        buf_[pos_++] = static_cast<std::byte>(v >> 24);
        buf_[pos_++] = static_cast<std::byte>(v >> 16);
        buf_[pos_++] = static_cast<std::byte>(v >> 8);
        buf_[pos_++] = static_cast<std::byte>(v);
    }

    constexpr std::size_t pos() const noexcept { return pos_; }
    constexpr bool overrun() const noexcept { return overrun_; }

  private:
    std::span<std::byte> buf_;
    std::size_t pos_ = 0;
    bool overrun_ = false;
};

constexpr Nanos floor_div(Nanos a, Nanos b) noexcept {
    const Nanos q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

// v5 timestamps are 32-bit milliseconds since boot. Reducing mod 2^32 (via the unsigned
// conversion) keeps Last - First and sysUptime - Last right in uint32 arithmetic across the
// wrap every 49.7 days, which is what collectors compute.
constexpr std::uint32_t uptime_ms(Nanos t, Nanos boot) noexcept {
    return static_cast<std::uint32_t>(
        static_cast<std::uint64_t>(floor_div(t - boot, kNanosPerMilli)));
}

// The v5 interface fields are 16 bits. Truncating (what ipt_NETFLOW's htons does) would
// report ifindex 65537 as 1, a different real interface; saturating to 65535 reports it as
// "unknown" instead, which is at least not wrong.
constexpr std::uint16_t ifindex16(std::uint32_t ifindex) noexcept {
    return static_cast<std::uint16_t>(std::min<std::uint32_t>(ifindex, kUnknownIfindex));
}

struct Header {
    std::uint16_t count = 0;
    std::uint32_t sys_uptime = 0;
    std::uint32_t unix_secs = 0;
    std::uint32_t unix_nsecs = 0;
    std::uint32_t sequence = 0;
    std::uint8_t engine_type = 0;
    std::uint8_t engine_id = 0;
    std::uint16_t sampling = 0;
};

constexpr void write_header(BeWriter& w, const Header& h) noexcept {
    w.u16(5); // version
    w.u16(h.count);
    w.u32(h.sys_uptime);
    w.u32(h.unix_secs);
    w.u32(h.unix_nsecs);
    w.u32(h.sequence);
    w.u8(h.engine_type);
    w.u8(h.engine_id);
    w.u16(h.sampling); // sampling_interval: mode in the top 2 bits, N in the low 14
}

constexpr void write_record(BeWriter& w, const FlowRecord& r, Nanos boot) noexcept {
    w.u32(r.key.src_addr);
    w.u32(r.key.dst_addr);
    w.u32(0); // nexthop: NFLOG does not tell us the route taken
    w.u16(ifindex16(r.key.in_if));
    w.u16(ifindex16(r.out_if));
    w.u32(r.packets);
    w.u32(r.octets);
    w.u32(uptime_ms(r.first, boot));
    w.u32(uptime_ms(r.last, boot));
    w.u16(r.key.src_port);
    w.u16(r.key.dst_port);
    w.u8(0); // pad1
    w.u8(r.tcp_flags);
    w.u8(r.key.protocol);
    w.u8(r.key.tos);
    w.u16(0); // src_as: no BGP view
    w.u16(0); // dst_as
    w.u8(r.src_mask);
    w.u8(r.dst_mask);
    w.u16(0); // pad2
}

// Runs the real writers at compile time so that the field lists, not a hand count, are
// checked against the wire sizes.
constexpr std::size_t header_size() {
    std::array<std::byte, 64> buf{};
    BeWriter w(buf);
    write_header(w, Header{});
    return w.pos();
}
constexpr std::size_t record_size() {
    std::array<std::byte, 64> buf{};
    BeWriter w(buf);
    write_record(w, FlowRecord{}, 0);
    return w.pos();
}
static_assert(header_size() == kV5HeaderSize);
static_assert(record_size() == kV5RecordSize);

} // namespace

void encode_v5(std::span<const FlowRecord> records, const V5Params& params, const ExportTime& time,
               std::uint32_t sequence, V5Datagram& out) noexcept {
    const std::size_t n = std::min(records.size(), kV5MaxRecords);
    // A record can end after `time.now` was read: --read's exporter reads the replay clock
    // before it pops what the readers published ahead of it.
    Nanos now = time.now;
    for (std::size_t i = 0; i < n; ++i) now = std::max(now, records[i].last);
    const Nanos wall = time.wall(now);
    const Header h{
        .count = static_cast<std::uint16_t>(n),
        .sys_uptime = uptime_ms(now, params.boot_time),
        .unix_secs = static_cast<std::uint32_t>(floor_div(wall, kNanosPerSecond)),
        .unix_nsecs =
            static_cast<std::uint32_t>(wall - floor_div(wall, kNanosPerSecond) * kNanosPerSecond),
        .sequence = sequence,
        .engine_type = params.engine_type,
        .engine_id = params.engine_id,
        .sampling = params.sampling,
    };
    BeWriter w(out.bytes);
    write_header(w, h);
    for (std::size_t i = 0; i < n; ++i) write_record(w, records[i], params.boot_time);
    // Sizes are fixed by the static_asserts and the clamp above; this cannot trip, but if it
    // ever did an empty datagram is safer than a truncated one.
    out.size = w.overrun() ? 0 : w.pos();
    out.count = w.overrun() ? 0 : h.count;
}

V5Batcher::V5Batcher(const V5Params& params, Nanos max_wait)
    : params_(params), max_wait_(max_wait) {}

bool V5Batcher::add(const FlowRecord& record, const ExportTime& time, V5Datagram& out) noexcept {
    if (record.family != Family::ipv4) return false;
    if (count_ == 0) first_added_ = time.now;
    pending_[count_++] = record;
    if (count_ < kV5MaxRecords) return false;
    emit(time, out);
    return true;
}

bool V5Batcher::poll(const ExportTime& time, V5Datagram& out) noexcept {
    if (count_ == 0 || time.now - first_added_ < max_wait_) return false;
    emit(time, out);
    return true;
}

bool V5Batcher::finish(const ExportTime& time, V5Datagram& out) noexcept {
    if (count_ == 0) return false;
    emit(time, out);
    return true;
}

void V5Batcher::emit(const ExportTime& time, V5Datagram& out) noexcept {
    encode_v5({pending_.data(), count_}, params_, time, sequence_, out);
    // Advances whether or not the datagram is delivered: that is how a collector sees loss.
    sequence_ += static_cast<std::uint32_t>(count_);
    count_ = 0;
}

} // namespace nflowd
