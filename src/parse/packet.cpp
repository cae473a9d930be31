#include "nflowd/packet.hpp"

namespace nflowd {

namespace {
// splitmix64 finaliser: cheap, and every input bit affects every output bit.
constexpr std::uint64_t mix(std::uint64_t x) noexcept {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}
} // namespace

std::uint64_t hash_key(const FlowKey& key) noexcept {
    const std::uint64_t a = (std::uint64_t{key.src_addr} << 32) | key.dst_addr;
    const std::uint64_t b = (std::uint64_t{key.src_port} << 48) |
                            (std::uint64_t{key.dst_port} << 32) |
                            (std::uint64_t{key.protocol} << 24) | (std::uint64_t{key.tos} << 16) |
                            (key.in_if & 0xffffU);
    const std::uint64_t c = key.in_if >> 16;
    return mix(mix(a ^ 0x9e3779b97f4a7c15ULL) ^ b ^ (c << 7));
}

} // namespace nflowd
