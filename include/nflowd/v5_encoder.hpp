// NetFlow v5 wire format: packs flow records into datagrams of 24 + 48*n bytes and owns the
// exporter's single flow_sequence. Pure computation; sending is collector_set's job.
#pragma once

#include "nflowd/packet.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace nflowd {

constexpr std::size_t kV5HeaderSize = 24;
constexpr std::size_t kV5RecordSize = 48;
constexpr std::size_t kV5MaxRecords = 30;
constexpr std::size_t kV5MaxDatagram = kV5HeaderSize + kV5RecordSize * kV5MaxRecords;
static_assert(kV5MaxDatagram == 1464);

struct V5Datagram {
    std::array<std::byte, kV5MaxDatagram> bytes{};
    std::size_t size = 0;
    std::uint16_t count = 0;
    std::span<const std::byte> view() const noexcept { return {bytes.data(), size}; }
};

struct V5Params {
    // Flow time of sysUptime 0 (live: the daemon's start on CLOCK_MONOTONIC; replay: the
    // first packet); First/Last/sysUptime are ms since it, mod 2^32.
    Nanos boot_time = 0;
    std::uint8_t engine_type = 0;
    std::uint8_t engine_id = 0;
    // The header's sampling_interval: SamplingAnnouncement::v5_field(), 0 = unsampled.
    std::uint16_t sampling = 0;
};

// Encodes up to kV5MaxRecords records (more is a programming error and is clamped).
// Interface indexes above 65535 do not fit v5's 16 bits and are sent as kUnknownIfindex.
// The header is dated max(time.now, the latest record's Last): collectors compute a record's
// age as sysUptime - Last in uint32, so a header behind a record would put it 49.7 days back.
// unix_secs/unix_nsecs are that instant on the wall clock (time.wall()).
void encode_v5(std::span<const FlowRecord> records, const V5Params& params, const ExportTime& time,
               std::uint32_t sequence, V5Datagram& out) noexcept;

// Collects records into datagrams: a datagram is complete at 30 records, or when its
// first record has waited `max_wait` (default 1 s). Sequence = flows emitted before.
class V5Batcher {
  public:
    explicit V5Batcher(const V5Params& params, Nanos max_wait = kNanosPerSecond);

    // Queues a record; if that completes a datagram, fills `out` and returns true. The
    // max_wait timer runs on flow time (time.now). An IPv6 record is never queued (v5 has no
    // room for its addresses): false, nothing changes, the caller counts it.
    bool add(const FlowRecord& record, const ExportTime& time, V5Datagram& out) noexcept;
    // Completes a partial datagram whose first record is older than max_wait.
    bool poll(const ExportTime& time, V5Datagram& out) noexcept;
    // Completes whatever is pending (shutdown, flush).
    bool finish(const ExportTime& time, V5Datagram& out) noexcept;

    void set_params(const V5Params& params) noexcept { params_ = params; }
    const V5Params& params() const noexcept { return params_; }
    std::uint32_t sequence() const noexcept { return sequence_; }
    std::size_t pending() const noexcept { return count_; }
    // Flow time at which poll() will next emit, or 0 when nothing is pending.
    Nanos deadline() const noexcept { return count_ ? first_added_ + max_wait_ : 0; }

  private:
    void emit(const ExportTime& time, V5Datagram& out) noexcept;

    V5Params params_;
    Nanos max_wait_;
    std::array<FlowRecord, kV5MaxRecords> pending_{};
    std::size_t count_ = 0;
    Nanos first_added_ = 0;
    std::uint32_t sequence_ = 0;
};

} // namespace nflowd
