// Shared by the unit tests: builds IPv4 packets byte by byte, receives datagrams on a real
// loopback UDP socket and decodes NetFlow v5 independently of the encoder under test.
#pragma once

#include "nflowd/packet.hpp"
#include "nflowd/unique_fd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace nflowd::test {

inline void put16(std::vector<std::byte>& b, std::size_t at, std::uint32_t v) {
    b[at] = std::byte(v >> 8);
    b[at + 1] = std::byte(v);
}
inline void put32(std::vector<std::byte>& b, std::size_t at, std::uint32_t v) {
    put16(b, at, v >> 16);
    put16(b, at + 2, v & 0xffff);
}
inline std::uint32_t get16(std::span<const std::byte> b, std::size_t at) {
    return (std::uint32_t(b[at]) << 8) | std::uint32_t(b[at + 1]);
}
inline std::uint32_t get32(std::span<const std::byte> b, std::size_t at) {
    return (get16(b, at) << 16) | get16(b, at + 2);
}

// A plain IPv4 packet of `total_length` bytes (only the headers are materialised up to
// `captured`, like an NFLOG copy range). TCP/UDP get ports, TCP gets flags.
inline std::vector<std::byte> ipv4_packet(std::uint32_t src, std::uint32_t dst, std::uint8_t proto,
                                          std::uint16_t sport, std::uint16_t dport,
                                          std::uint16_t total_length, std::uint8_t tos = 0,
                                          std::uint8_t tcp_flags = 0, std::size_t captured = 128) {
    std::vector<std::byte> b(
        std::max<std::size_t>(40, std::min<std::size_t>(total_length, captured)));
    b[0] = std::byte{0x45};
    b[1] = std::byte{tos};
    put16(b, 2, total_length);
    b[8] = std::byte{64};
    b[9] = std::byte{proto};
    put32(b, 12, src);
    put32(b, 16, dst);
    put16(b, 20, sport);
    put16(b, 22, dport);
    if (proto == 6) {
        b[32] = std::byte{0x50};
        b[33] = std::byte{tcp_flags};
    }
    return b;
}

struct V5Header {
    std::uint16_t version, count;
    std::uint32_t uptime, secs, nsecs, sequence;
    std::uint8_t engine_type, engine_id;
    std::uint16_t sampling;
};
struct V5Record {
    std::uint32_t src, dst, nexthop;
    std::uint16_t input, output;
    std::uint32_t packets, octets, first, last;
    std::uint16_t sport, dport;
    std::uint8_t flags, proto, tos;
    std::uint16_t src_as, dst_as;
    std::uint8_t src_mask, dst_mask;
};
struct V5Datagram {
    V5Header header;
    std::vector<V5Record> records;
};

// Throws when the datagram is not exactly 24 + 48 * count bytes of version 5.
inline V5Datagram decode_v5(std::span<const std::byte> b) {
    if (b.size() < 24) throw std::runtime_error("short v5 datagram");
    V5Datagram d{};
    auto& h = d.header;
    h.version = std::uint16_t(get16(b, 0));
    h.count = std::uint16_t(get16(b, 2));
    h.uptime = get32(b, 4);
    h.secs = get32(b, 8);
    h.nsecs = get32(b, 12);
    h.sequence = get32(b, 16);
    h.engine_type = std::uint8_t(b[20]);
    h.engine_id = std::uint8_t(b[21]);
    h.sampling = std::uint16_t(get16(b, 22));
    if (h.version != 5 || b.size() != 24 + 48u * h.count)
        throw std::runtime_error("bad v5 datagram size/version");
    for (std::size_t i = 0; i < h.count; ++i) {
        const auto r = b.subspan(24 + 48 * i, 48);
        d.records.push_back(V5Record{
            get32(r, 0), get32(r, 4), get32(r, 8), std::uint16_t(get16(r, 12)),
            std::uint16_t(get16(r, 14)), get32(r, 16), get32(r, 20), get32(r, 24), get32(r, 28),
            std::uint16_t(get16(r, 32)), std::uint16_t(get16(r, 34)), std::uint8_t(r[37]),
            std::uint8_t(r[38]), std::uint8_t(r[39]), std::uint16_t(get16(r, 40)),
            std::uint16_t(get16(r, 42)), std::uint8_t(r[44]), std::uint8_t(r[45])});
    }
    return d;
}

// The unit tests' one loopback collector: a UDP socket on 127.0.0.1 (or ::1), on `port` or
// (0) one the kernel picks, with a receive buffer big enough for any test's output. close()
// makes it a refusing destination; a new one on the same port (SO_REUSEADDR) brings it back.
class UdpCollector {
  public:
    enum class Family { ipv4, ipv6 };
    explicit UdpCollector(std::uint16_t port = 0, Family family = Family::ipv4)
        : fd_(::socket(family == Family::ipv6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)),
          v6_(family == Family::ipv6) {
        if (!fd_) throw std::runtime_error("socket");
        const int one = 1;
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        int buf = 64 << 20;
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
        sockaddr_in6 a6{};
        a6.sin6_family = AF_INET6;
        a6.sin6_addr = in6addr_loopback;
        a6.sin6_port = htons(port);
        sockaddr_in a4{};
        a4.sin_family = AF_INET;
        a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a4.sin_port = htons(port);
        auto* sa = v6_ ? reinterpret_cast<sockaddr*>(&a6) : reinterpret_cast<sockaddr*>(&a4);
        socklen_t len = v6_ ? sizeof a6 : sizeof a4;
        if (::bind(fd_.get(), sa, len) != 0) throw std::runtime_error("bind");
        ::getsockname(fd_.get(), sa, &len);
        port_ = ntohs(v6_ ? a6.sin6_port : a4.sin_port);
    }
    std::uint16_t port() const { return port_; }
    std::string address() const { return (v6_ ? "[::1]:" : "127.0.0.1:") + std::to_string(port_); }
    void close() { fd_.reset(); }

    // Next datagram, or nothing after `timeout_ms` of silence.
    std::optional<std::vector<std::byte>> receive(int timeout_ms = 200) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) != 1) return std::nullopt;
        std::vector<std::byte> buf(65536);
        const auto n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
        if (n < 0) return std::nullopt;
        buf.resize(static_cast<std::size_t>(n));
        return buf;
    }
    std::vector<V5Datagram> receive_all(int timeout_ms = 200) {
        std::vector<V5Datagram> out;
        while (auto d = receive(timeout_ms)) out.push_back(decode_v5(*d));
        return out;
    }

  private:
    UniqueFd fd_;
    bool v6_ = false;
    std::uint16_t port_ = 0;
};

} // namespace nflowd::test
