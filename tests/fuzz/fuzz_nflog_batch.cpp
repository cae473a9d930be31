// libFuzzer: any bytes as one recv() of netfilter netlink messages from the kernel.
#include "nflowd/nflog_source.hpp"

#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // The kernel hands netlink buffers 4-byte aligned; the parser relies on that, as real
    // recv buffers guarantee it. An exact-size heap copy lets ASan catch any overread.
    std::vector<std::uint32_t> aligned((size + 3) / 4);
    if (size) std::memcpy(aligned.data(), data, size);
    const std::span<const std::byte> buf(reinterpret_cast<const std::byte*>(aligned.data()), size);
    // Parsed twice: each prefix on its own, and through a reader's memo (issue 13's prefix
    // tag); both must see the same packets with the same metadata.
    std::vector<nflowd::PacketMeta> metas[2];
    for (int memo = 0; memo < 2; ++memo) {
        nflowd::NflogSeqTracker seq;
        nflowd::NflogStats stats;
        nflowd::PrefixTagMemo prefixes;
        const auto n = nflowd::parse_nflog_batch(
            buf, nflowd::TimePair{1, 1}, seq, stats,
            [&](std::span<const std::byte> ip, const nflowd::PacketMeta& meta) {
                // The payload must lie inside the buffer.
                if (ip.data() < buf.data() || ip.data() + ip.size() > buf.data() + buf.size())
                    std::abort();
                metas[memo].push_back(meta);
            },
            false, memo ? &prefixes : nullptr);
        if (n != metas[memo].size()) std::abort();
    }
    for (std::size_t i = 0; i < metas[0].size(); ++i) {
        const auto &a = metas[0][i], &b = metas[1][i];
        if (a.obs_point != b.obs_point || a.direction != b.direction || !(a.link == b.link))
            std::abort();
    }
    return 0;
}
