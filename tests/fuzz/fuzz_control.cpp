// libFuzzer: any bytes as a control request received by the daemon, and as a reply
// datagram received by nflowctl. A decoded request must encode again to one that decodes
// to the same thing.
#include "nflowd/control_protocol.hpp"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Netlink buffers are 4-byte aligned; an exact-size heap copy lets ASan see overreads.
    std::vector<std::uint32_t> aligned((size + 3) / 4);
    if (size) std::memcpy(aligned.data(), data, size);
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(aligned.data()),
                                           size);
    const auto decoded = nflowd::ctl::decode_request(bytes, size);
    if (decoded.request) {
        try {
            const auto again = nflowd::ctl::encode_request(*decoded.request, 1, 2);
            const auto round = nflowd::ctl::decode_request(again, again.size());
            if (!round.request || !(*round.request == *decoded.request)) std::abort();
        } catch (const std::length_error&) {
        } catch (const std::invalid_argument&) {
            // The decoder may accept what nflowctl itself would refuse to send.
        }
    }
    std::size_t replies = 0;
    (void)nflowd::ctl::decode_replies(bytes, [&](nflowd::ctl::Reply&&) { ++replies; });
    return 0;
}
