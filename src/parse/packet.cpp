#include "nflowd/packet.hpp"

#include <sys/random.h>

#include <cerrno>
#include <system_error>

namespace nflowd {

namespace {

std::uint64_t load_le64(std::span<const std::byte> b) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < b.size(); ++i)
        v |= std::uint64_t{std::to_integer<unsigned>(b[i])} << (8 * i);
    return v;
}

// The reference construction with C compression and D finalisation rounds.
template <int C, int D>
std::uint64_t siphash(const HashKey& key, std::span<const std::byte> bytes) noexcept {
    std::uint64_t v0 = key.k0 ^ 0x736f6d6570736575ULL;
    std::uint64_t v1 = key.k1 ^ 0x646f72616e646f6dULL;
    std::uint64_t v2 = key.k0 ^ 0x6c7967656e657261ULL;
    std::uint64_t v3 = key.k1 ^ 0x7465646279746573ULL;
    const auto absorb = [&](std::uint64_t m) {
        v3 ^= m;
        for (int i = 0; i < C; ++i) detail::sip_round(v0, v1, v2, v3);
        v0 ^= m;
    };
    const std::size_t full = bytes.size() / 8 * 8;
    for (std::size_t i = 0; i < full; i += 8) absorb(load_le64(bytes.subspan(i, 8)));
    absorb((std::uint64_t{bytes.size() & 0xff} << 56) | load_le64(bytes.subspan(full)));
    v2 ^= 0xff;
    for (int i = 0; i < D; ++i) detail::sip_round(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

void put_le(std::byte* out, std::uint64_t v, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>(v >> (8 * i));
}

} // namespace

HashKey random_hash_key() {
    std::array<std::byte, 16> raw{};
    std::size_t got = 0;
    while (got < raw.size()) {
        const ssize_t n = getrandom(raw.data() + got, raw.size() - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::system_error(errno, std::generic_category(), "getrandom");
        got += static_cast<std::size_t>(n);
    }
    const std::span<const std::byte> bytes(raw);
    return HashKey{load_le64(bytes.first(8)), load_le64(bytes.subspan(8))};
}

ShardKey random_shard_key() {
    ShardKey k;
    const auto fill = [](auto& words) {
        for (std::size_t i = 0; i < words.size(); i += 2) {
            const HashKey half = random_hash_key();
            words[i] = half.k0;
            words[i + 1] = half.k1;
        }
    };
    fill(k.a);
    fill(k.a6);
    return k;
}

std::uint64_t siphash13(const HashKey& key, std::span<const std::byte> bytes) noexcept {
    return siphash<1, 3>(key, bytes);
}

std::uint64_t siphash24(const HashKey& key, std::span<const std::byte> bytes) noexcept {
    return siphash<2, 4>(key, bytes);
}

std::array<std::byte, kFlowKeyBytes> flow_key_bytes(const FlowKey& key) noexcept {
    std::array<std::byte, kFlowKeyBytes> out{};
    put_le(&out[0], key.src_addr, 4);
    put_le(&out[4], key.dst_addr, 4);
    put_le(&out[8], key.src_port, 2);
    put_le(&out[10], key.dst_port, 2);
    put_le(&out[12], key.in_if, 4);
    put_le(&out[16], key.protocol, 1);
    put_le(&out[17], key.tos, 1);
    return out;
}

std::array<std::byte, kFlowKey6Bytes> flow_key_bytes(const FlowKey6& key) noexcept {
    std::array<std::byte, kFlowKey6Bytes> out{};
    for (std::size_t i = 0; i < 16; ++i) {
        out[i] = static_cast<std::byte>(key.src_addr[i]);
        out[16 + i] = static_cast<std::byte>(key.dst_addr[i]);
    }
    put_le(&out[32], key.src_port, 2);
    put_le(&out[34], key.dst_port, 2);
    put_le(&out[36], key.in_if, 4);
    put_le(&out[40], key.protocol, 1);
    put_le(&out[41], key.tos, 1);
    return out;
}

} // namespace nflowd
