// Sleep/wake between pipeline threads without polling: a consumer with nothing to do sleeps
// on a futex; producers pay a syscall only when it is really asleep.
#pragma once

#include "nflowd/packet.hpp"

#include <atomic>
#include <cstdint>

namespace nflowd {

class Notifier {
  public:
    // Consumer: call with a predicate re-checking for work after announcing sleep, so a
    // publish that raced with going to sleep is never missed.
    template <class HasWork> void wait(HasWork&& has_work, Nanos timeout) {
        const std::uint32_t seen = seq_.load(std::memory_order_seq_cst);
        sleeping_.store(true, std::memory_order_seq_cst);
        if (!has_work()) sleep(seen, timeout);
        sleeping_.store(false, std::memory_order_relaxed);
    }
    // Producer: after publishing.
    void notify() noexcept {
        if (sleeping_.load(std::memory_order_seq_cst)) wake();
    }
    void wake() noexcept; // unconditional

  private:
    void sleep(std::uint32_t seen, Nanos timeout) noexcept;
    std::atomic<std::uint32_t> seq_{0};
    std::atomic<bool> sleeping_{false};
};

} // namespace nflowd
