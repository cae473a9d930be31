// Single-producer single-consumer ring that carries packets from a reader to a worker and
// flows from a worker to the exporter: no lock, one shared cache line per side per batch.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <memory>

namespace nflowd {

// x86-64 and most arm64 lines; std::hardware_destructive_interference_size is ABI-unstable.
constexpr std::size_t kCacheLine = 64;

template <class T> class SpscRing {
  public:
    explicit SpscRing(std::size_t capacity)
        : mask_(std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity) - 1),
          slots_(std::make_unique<T[]>(mask_ + 1)) {}

    // Producer side: writes stay private until publish(), so a batch costs one store.
    bool try_push(const T& value) noexcept {
        if (write_ - cached_read_ > mask_) {
            cached_read_ = read_.load(std::memory_order_acquire);
            if (write_ - cached_read_ > mask_) return false;
        }
        slots_[write_ & mask_] = value;
        ++write_;
        return true;
    }
    // seq_cst so that a consumer going to sleep either sees the data or is seen sleeping.
    void publish() noexcept {
        if (write_ != published_) {
            published_ = write_;
            write_pos_.store(write_, std::memory_order_seq_cst);
        }
    }
    std::size_t unpublished() const noexcept { return write_ - published_; }

    // Consumer side.
    std::size_t available() noexcept {
        cached_write_ = write_pos_.load(std::memory_order_seq_cst);
        return cached_write_ - consumed_;
    }
    const T& peek(std::size_t i) const noexcept { return slots_[(consumed_ + i) & mask_]; }
    void pop(std::size_t n) noexcept {
        consumed_ += n;
        read_.store(consumed_, std::memory_order_release);
    }
    bool empty() noexcept { return available() == 0; }
    std::size_t capacity() const noexcept { return mask_ + 1; }

  private:
    const std::size_t mask_;
    std::unique_ptr<T[]> slots_;
    // Producer-owned line.
    alignas(kCacheLine) std::size_t write_ = 0;
    std::size_t published_ = 0;
    std::size_t cached_read_ = 0;
    // Consumer-owned line.
    alignas(kCacheLine) std::size_t consumed_ = 0;
    std::size_t cached_write_ = 0;
    // Shared positions, each on its own line.
    alignas(kCacheLine) std::atomic<std::size_t> write_pos_{0};
    alignas(kCacheLine) std::atomic<std::size_t> read_{0};
};

} // namespace nflowd
