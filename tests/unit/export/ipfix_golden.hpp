// What the IPFIX/v9 golden-byte tests share: one export time and exporter identity, hex
// helpers that show where bytes differ, and the TCP flow their records are built from.
#pragma once

#include "nflowd/ipfix_encoder.hpp"

#include <cctype>
#include <cstddef>
#include <span>
#include <string>

namespace nflowd::golden {

inline constexpr Nanos kBoot = 1'700'000'000'000'000'000; // 2023-11-14T22:13:20Z
inline constexpr Nanos kMs = kNanosPerMilli;
// unix 1700000003.0005, sysUptime 3000 ms
inline constexpr ExportTime kTime{.now = kBoot + 3000 * kMs + 500'000, .wall_offset = 0};
inline constexpr V5Params kParams{.boot_time = kBoot, .engine_type = 0, .engine_id = 7};

// Bytes written by hand, spaced as the reader likes, as lower-case hex digits only.
inline std::string hex(const std::string& s) {
    std::string digits;
    for (char c : s)
        if (std::isxdigit(static_cast<unsigned char>(c)))
            digits += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return digits;
}
// Encoded bytes as lower-case hex, so that a mismatch shows where it is.
inline std::string bytes(std::span<const std::byte> s) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (auto b : s) {
        out += kDigits[std::to_integer<unsigned>(b) >> 4];
        out += kDigits[std::to_integer<unsigned>(b) & 15];
    }
    return out;
}

// 10.0.0.1:12345 -> 192.168.1.2:80, TCP, TOS 0x10, 10 packets, 1500 bytes, 1.0-2.5 s after
// boot, ended by the active timeout; `direction` as the hook gave it.
inline FlowRecord tcp_record(Direction direction) {
    FlowRecord a;
    a.key = {.src_addr = 0x0a000001,
             .dst_addr = 0xc0a80102,
             .src_port = 12345,
             .dst_port = 80,
             .in_if = 3,
             .protocol = 6,
             .tos = 0x10,
             .direction = direction};
    a.end_reason = EndReason::active;
    a.out_if = 4;
    a.packets = 10;
    a.octets = 1500;
    a.first = kBoot + 1000 * kMs;
    a.last = kBoot + 2500 * kMs;
    a.tcp_flags = 0x1b;
    a.src_mask = 24;
    a.dst_mask = 16;
    return a;
}

} // namespace nflowd::golden
