// The writing primitives the v9/IPFIX encoder's two sources share (ipfix_encoder.cpp: the
// plain records, templates and options; ipfix_encoder_ext.cpp: NAT and link-layer records).
#pragma once

#include "ipfix_fields.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace nflowd::ipfix {

// Big-endian, the low `len` bytes of v (len <= 8).
inline void put(std::byte* p, std::uint64_t v, std::size_t len) noexcept {
    for (std::size_t i = 0; i < len; ++i) p[len - 1 - i] = static_cast<std::byte>(v >> (8 * i));
}

// v9's sysUptime 0 is one second before boot_time: in a replay boot_time is the first
// packet, and nfdump reads a First or Last of 0 as "no time" (1970). Header and records
// move together, so the absolute times collectors rebuild do not change.
constexpr Nanos kV9UptimeLead = kNanosPerSecond;

// Absolute milliseconds of a flow time (IPFIX's dateTimeMilliseconds).
std::uint64_t wall_ms(Nanos flow_time, const ExportTime& time) noexcept;
// A flow record's values for `fields`, each in its template length; v9 times from `boot`.
void write_flow(std::byte* p, std::span<const FieldSpec> fields, const FlowRecord& r,
                const ExportTime& time, Nanos boot) noexcept;
// The data template's fields before any NAT tail: the plain ones, or with the link-layer
// tail when `ext` (FlowRecord::extended()).
std::span<const FieldSpec> flow_fields(bool v9, Family family, bool ext) noexcept;
// A template record; returns its size.
std::size_t put_template(std::byte* p, std::uint16_t id,
                         std::span<const FieldSpec> fields) noexcept;

} // namespace nflowd::ipfix
