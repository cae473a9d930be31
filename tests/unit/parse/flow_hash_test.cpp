// The keyed flow hash: SipHash against published vectors, the inline flow form against the
// generic one, and that the key (not the flow alone) decides the value.
#include "nflowd/packet.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <set>
#include <vector>

namespace nflowd {
namespace {

// The vectors' key: bytes 00 01 .. 0f; message i: bytes 00 01 .. i-1.
constexpr HashKey kVectorKey{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

std::vector<std::byte> counting_bytes(std::size_t n) {
    std::vector<std::byte> m(n);
    for (std::size_t i = 0; i < n; ++i) m[i] = static_cast<std::byte>(i);
    return m;
}

// SipHash-2-4, the paper's Appendix A vectors (the reference implementation's vectors.h).
// They check the construction (padding, length byte, finalisation) that 1-3 shares.
constexpr std::array<std::uint64_t, 16> kSip24 = {
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL,
    0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL,
    0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
    0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL, 0xa129ca6149be45e5ULL,
};

// SipHash-1-3: the reference implementation built with cROUNDS=1, dROUNDS=3, same key and
// messages (published with Linux's hsiphash self-test, whose 64-bit form is SipHash-1-3
// truncated to the low 32 bits of these).
constexpr std::array<std::uint64_t, 24> kSip13 = {
    0xabac0158050fc4dcULL, 0xc9f49bf37d57ca93ULL, 0x82cb9b024dc7d44dULL, 0x8bf80ab8e7ddf7fbULL,
    0xcf75576088d38328ULL, 0xdef9d52f49533b67ULL, 0xc50d2b50c59f22a7ULL, 0xd3927d989bb11140ULL,
    0x369095118d299a8eULL, 0x25a48eb36c063de4ULL, 0x79de85ee92ff097fULL, 0x70c118c1f94dc352ULL,
    0x78a384b157b4d9a2ULL, 0x306f760c1229ffa7ULL, 0x605aa111c0f95d34ULL, 0xd320d86d2a519956ULL,
    0xcc4fdd1a7d908b66ULL, 0x9cf2689063dbd80cULL, 0x8ffc389cb473e63eULL, 0xf21f9de58d297d1cULL,
    0xc0dc2f46a6cce040ULL, 0xb992abfe2b45f844ULL, 0x7ffe7b9ba320872eULL, 0x525a0e7fdae6c123ULL,
};

FlowKey sample_key(std::uint32_t n) {
    FlowKey k;
    k.src_addr = 0x0a000000U + n;
    k.dst_addr = 0xc0a80001U ^ (n * 0x9e3779b9U);
    k.src_port = static_cast<std::uint16_t>(n * 7);
    k.dst_port = static_cast<std::uint16_t>(n >> 3);
    k.in_if = n * 0x01000193U;
    k.protocol = static_cast<std::uint8_t>(n);
    k.tos = static_cast<std::uint8_t>(n >> 8);
    return k;
}

TEST(FlowHash, SipHash24MatchesThePaperVectors) {
    for (std::size_t n = 0; n < kSip24.size(); ++n)
        EXPECT_EQ(siphash24(kVectorKey, counting_bytes(n)), kSip24[n]) << "length " << n;
}

TEST(FlowHash, SipHash13MatchesTheReferenceVectors) {
    for (std::size_t n = 0; n < kSip13.size(); ++n)
        EXPECT_EQ(siphash13(kVectorKey, counting_bytes(n)), kSip13[n]) << "length " << n;
}

TEST(FlowHash, FlowKeyBytesAreTheFieldsLittleEndian) {
    FlowKey k;
    k.src_addr = 0x03020100U;
    k.dst_addr = 0x07060504U;
    k.src_port = 0x0908;
    k.dst_port = 0x0b0a;
    k.in_if = 0x0f0e0d0cU;
    k.protocol = 0x10;
    k.tos = 0x11;
    const auto bytes = flow_key_bytes(k);
    for (std::size_t i = 0; i < bytes.size(); ++i)
        EXPECT_EQ(std::to_integer<unsigned>(bytes[i]), i);
    // So the flow hash of this key is vector 18 of the reference implementation.
    EXPECT_EQ(hash_key(kVectorKey, k), kSip13[18]);
}

TEST(FlowHash, InlineFlowHashEqualsSipHash13OfTheKeyBytes) {
    const HashKey key{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    for (std::uint32_t n = 0; n < 10000; ++n) {
        const FlowKey k = sample_key(n);
        ASSERT_EQ(hash_key(key, k), siphash13(key, flow_key_bytes(k))) << n;
    }
}

TEST(FlowHash, EveryFieldChangesTheHash) {
    const HashKey key{1, 2};
    const FlowKey base = sample_key(12345);
    std::vector<FlowKey> variants(7, base);
    variants[0].src_addr ^= 1;
    variants[1].dst_addr ^= 1;
    variants[2].src_port ^= 1;
    variants[3].dst_port ^= 1;
    variants[4].in_if ^= 0x10000; // the high half of in_if too
    variants[5].protocol ^= 1;
    variants[6].tos ^= 1;
    for (const auto& v : variants) EXPECT_NE(hash_key(key, v), hash_key(key, base));
}

TEST(FlowHash, DifferentKeysGiveUnrelatedHashes) {
    const HashKey a{1, 2}, b{1, 3};
    int same_low_byte = 0;
    for (std::uint32_t n = 0; n < 4096; ++n) {
        const FlowKey k = sample_key(n);
        ASSERT_NE(hash_key(a, k), hash_key(b, k));
        same_low_byte += (hash_key(a, k) & 0xff) == (hash_key(b, k) & 0xff);
    }
    // Unrelated outputs agree on 8 bits 1 time in 256: 16 expected; 50 is far outside.
    EXPECT_LT(same_low_byte, 50);
}

TEST(FlowHash, RandomKeysDiffer) {
    std::set<std::pair<std::uint64_t, std::uint64_t>> seen;
    for (int i = 0; i < 8; ++i) {
        const HashKey k = random_hash_key();
        seen.emplace(k.k0, k.k1);
    }
    EXPECT_EQ(seen.size(), 8U);
}

// Deterministic shard keys for the statistics below (splitmix64 of a counter).
ShardKey test_shard_key(std::uint64_t seed) {
    ShardKey k;
    const auto fill = [&seed](auto& words) {
        for (auto& w : words) {
            std::uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            w = z ^ (z >> 31);
        }
    };
    fill(k.a);
    fill(k.a6);
    return k;
}

// The pipeline's pick: the high 32 bits onto [0, n).
std::uint64_t shard_of(const ShardKey& k, const FlowKey& f, std::uint64_t n) {
    return ((shard_hash(k, f) >> 32) * n) >> 32;
}

TEST(ShardHash, TwoGivenFlowsShareAShardOnlyAsOftenAsChance) {
    // Flows an attacker would pick as near neighbours: one port apart, one tos apart.
    FlowKey a = sample_key(1), b = a, c = a;
    b.dst_port ^= 1;
    c.tos ^= 1;
    int same_b = 0, same_c = 0;
    constexpr int kKeys = 20000;
    for (int i = 0; i < kKeys; ++i) {
        const ShardKey k = test_shard_key(static_cast<std::uint64_t>(i) * 7919);
        same_b += shard_of(k, a, 16) == shard_of(k, b, 16);
        same_c += shard_of(k, a, 16) == shard_of(k, c, 16);
    }
    // Strongly universal: 1/16 of the keys, 1250 +- 34 (sd); a band of 6 sd.
    EXPECT_NEAR(same_b, kKeys / 16, 200);
    EXPECT_NEAR(same_c, kKeys / 16, 200);
}

TEST(ShardHash, CountingPortsSpreadEvenlyOverTheWorkers) {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
        const ShardKey k = test_shard_key(seed);
        std::array<std::uint32_t, 4> load{};
        FlowKey f = sample_key(0);
        for (std::uint32_t i = 0; i < 65536; ++i) {
            f.src_port = static_cast<std::uint16_t>(i);
            ++load[shard_of(k, f, 4)];
        }
        for (const auto l : load) EXPECT_NEAR(l, 16384, 800); // +-7 sd
    }
}

TEST(ShardHash, DifferentKeysPickDifferentWorkers) {
    const ShardKey k1 = random_shard_key(), k2 = random_shard_key();
    EXPECT_NE(k1, k2);
    int same = 0;
    for (std::uint32_t n = 0; n < 8000; ++n)
        same += shard_of(k1, sample_key(n), 8) == shard_of(k2, sample_key(n), 8);
    EXPECT_NEAR(same, 1000, 200); // 1/8 by chance, +-7 sd
}

// ---- IPv6 keys ----

FlowKey6 sample_key6(std::uint32_t n) {
    FlowKey6 k;
    for (std::size_t i = 0; i < 16; ++i) {
        k.src_addr[i] = static_cast<std::uint8_t>(n * 31 + i);
        k.dst_addr[i] = static_cast<std::uint8_t>((n >> (i % 4)) ^ (i * 17));
    }
    k.src_port = static_cast<std::uint16_t>(n * 7);
    k.dst_port = static_cast<std::uint16_t>(n >> 3);
    k.in_if = n * 0x01000193U;
    k.protocol = static_cast<std::uint8_t>(n);
    k.tos = static_cast<std::uint8_t>(n >> 8);
    return k;
}

TEST(FlowHash6, KeyBytesAreAddressesThenFieldsLittleEndian) {
    FlowKey6 k;
    for (std::size_t i = 0; i < 16; ++i) {
        k.src_addr[i] = static_cast<std::uint8_t>(i);
        k.dst_addr[i] = static_cast<std::uint8_t>(16 + i);
    }
    k.src_port = 0x2120;
    k.dst_port = 0x2322;
    k.in_if = 0x27262524U;
    k.protocol = 0x28;
    k.tos = 0x29;
    const auto bytes = flow_key_bytes(k);
    ASSERT_EQ(bytes.size(), 42U);
    for (std::size_t i = 0; i < bytes.size(); ++i)
        EXPECT_EQ(std::to_integer<unsigned>(bytes[i]), i);
}

TEST(FlowHash6, InlineHashEqualsSipHash13OfTheKeyBytes) {
    const HashKey key{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    for (std::uint32_t n = 0; n < 10000; ++n) {
        const FlowKey6 k = sample_key6(n);
        ASSERT_EQ(hash_key(key, k), siphash13(key, flow_key_bytes(k))) << n;
    }
}

TEST(FlowHash6, EveryAddressByteChangesTheHashAndTheShard) {
    const HashKey key{1, 2};
    const FlowKey6 base = sample_key6(4242);
    int same_shard = 0, tries = 0;
    for (std::size_t i = 0; i < 16; ++i)
        for (const bool src : {true, false}) {
            FlowKey6 v = base;
            (src ? v.src_addr : v.dst_addr)[i] ^= 1;
            EXPECT_NE(hash_key(key, v), hash_key(key, base)) << i;
            EXPECT_NE(shard_hash(test_shard_key(9), v), shard_hash(test_shard_key(9), base)) << i;
            for (int s = 0; s < 100; ++s, ++tries) {
                const ShardKey k = test_shard_key(static_cast<std::uint64_t>(s) * 7919);
                same_shard +=
                    ((shard_hash(k, v) >> 32) * 4 >> 32) == ((shard_hash(k, base) >> 32) * 4 >> 32);
            }
        }
    EXPECT_NEAR(same_shard, tries / 4, 200); // 800 by chance, +-7 sd
}

} // namespace
} // namespace nflowd
