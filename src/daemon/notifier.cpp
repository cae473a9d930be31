#include "nflowd/notifier.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>

namespace nflowd {

void Notifier::wake() noexcept {
    seq_.fetch_add(1, std::memory_order_seq_cst);
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&seq_), FUTEX_WAKE_PRIVATE, 1, nullptr,
              nullptr, 0);
}

void Notifier::sleep(std::uint32_t seen, Nanos timeout) noexcept {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(timeout / kNanosPerSecond);
    ts.tv_nsec = static_cast<long>(timeout % kNanosPerSecond);
    // std::atomic<uint32_t> has the layout of uint32_t; the kernel compares and sleeps.
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&seq_), FUTEX_WAIT_PRIVATE, seen, &ts,
              nullptr, 0);
}

} // namespace nflowd
