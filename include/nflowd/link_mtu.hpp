// Interface MTUs for the readers' `oversize` count: an immutable flat table indexed by kernel
// ifindex, published whole by LinkNames (link_names.hpp) and read once per batch (MtuFeed).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

namespace nflowd {

// The MTU of an interface nflowd knows nothing about: an ifindex not (yet) in the table, one
// at or above kMtuIndexes, no interface at all, and every interface under --read (a capture
// file carries ifindexes of another host, and no rtnetlink is asked). Ethernet's standard.
inline constexpr std::uint32_t kDefaultMtu = 1500;
// Ifindexes below this have a slot: the lookup is one bounded load in a table of at most
// 16 KiB. Hosts with more interfaces (or namespaces whose counter ran that far) get
// kDefaultMtu above it.
inline constexpr std::uint32_t kMtuIndexes = 4096;

struct LinkMtus {
    // by_ifindex[i]: interface i's MTU (IFLA_MTU), kDefaultMtu where none is known; only as
    // long as the highest known ifindex below kMtuIndexes needs.
    std::vector<std::uint32_t> by_ifindex;
    friend bool operator==(const LinkMtus&, const LinkMtus&) = default;
};

// The per-packet lookup: one compare and one load, no lock.
inline std::uint32_t mtu_of(std::span<const std::uint32_t> by_ifindex,
                            std::uint32_t ifindex) noexcept {
    return ifindex < by_ifindex.size() ? by_ifindex[ifindex] : kDefaultMtu;
}

// Hands LinkMtus snapshots from the one thread that builds them (LinkNames' owner) to every
// reader. A reader asks once per batch: an atomic load while nothing changed, the mutex only
// to take a new table. (libstdc++ 12's std::atomic<std::shared_ptr> is a lock too, and one
// TSan cannot see.)
class MtuFeed {
  public:
    // `mtus` never null; the one published last is a no-op.
    void publish(std::shared_ptr<const LinkMtus> mtus) {
        const std::lock_guard lock(mutex_);
        if (mtus == current_) return;
        current_ = std::move(mtus);
        version_.fetch_add(1, std::memory_order_release);
    }
    // The table published since `seen` (which is then brought up to date), else null.
    std::shared_ptr<const LinkMtus> since(std::uint64_t& seen) const {
        if (version_.load(std::memory_order_acquire) == seen) return nullptr;
        const std::lock_guard lock(mutex_);
        seen = version_.load(std::memory_order_relaxed);
        return current_;
    }

  private:
    mutable std::mutex mutex_;
    std::shared_ptr<const LinkMtus> current_;
    std::atomic<std::uint64_t> version_{0};
};

} // namespace nflowd
