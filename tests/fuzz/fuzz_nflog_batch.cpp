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
    nflowd::NflogSeqTracker seq;
    nflowd::NflogStats stats;
    std::size_t seen = 0;
    const auto n = nflowd::parse_nflog_batch(
        buf, nflowd::TimePair{1, 1}, seq, stats,
        [&](std::span<const std::byte> ip, const nflowd::PacketMeta&) {
            // The payload must lie inside the buffer.
            if (ip.data() < buf.data() || ip.data() + ip.size() > buf.data() + buf.size())
                std::abort();
            ++seen;
        });
    if (n != seen) std::abort();
    return 0;
}
