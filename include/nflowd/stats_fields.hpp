// The statistics model: each stage declares its counters once, as a table of fields next to
// its stats struct; summing, zero bases, atomic publishing and the Prometheus output come from it.
#pragma once

#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

namespace nflowd {

// A counter only grows (a zero is a recorded base); a gauge is a level that goes both ways.
enum class StatKind : std::uint8_t { counter, gauge };

template <class S> struct StatField {
    std::string_view name; // Prometheus name after the section's prefix (snake_case, no _total)
    std::uint64_t S::*member;
    StatKind kind;
    std::string_view unit; // what one unit counts: "packets", "bytes", "flows", ...
    std::string_view help; // one line, for HELP
};

// A stats struct that lists its fields: `static constexpr auto fields()` returning an array
// of StatField<S>. Only such structs get the generic operations below.
template <class S>
concept StatStruct = requires {
    { S::fields()[0] } -> std::convertible_to<StatField<S>>;
};

template <StatStruct S> inline constexpr auto kStatFields = S::fields();

// Calls fn(field, index) for each field, unrolled with every member pointer a constant: the
// generic operations compile to the same straight-line code as hand-written ones.
template <StatStruct S, class Fn> constexpr void for_each_field(Fn&& fn) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (fn(std::integral_constant<std::size_t, I>{}), ...);
    }
    (std::make_index_sequence<kStatFields<S>.size()>{});
}

// Sum over workers, groups or readers: every field is added, gauges included (the total of
// `active` is the daemon's active flows; of `peak`, the sum of the peaks).
template <StatStruct S> S& operator+=(S& into, const S& from) noexcept {
    for_each_field<S>([&](auto i) {
        constexpr auto m = kStatFields<S>[i].member;
        into.*m += from.*m;
    });
    return into;
}

// What happened since `base` was recorded (`nflowctl set flush 2`): the source's counters
// never go back, so the zero is a base subtracted on reading. Gauges keep their level; a
// counter read below its base (a source restarted) reads 0.
template <StatStruct S> S stats_since(const S& now, const S& base) noexcept {
    S out = now;
    for_each_field<S>([&](auto i) {
        constexpr auto f = kStatFields<S>[i];
        if constexpr (f.kind == StatKind::counter)
            out.*f.member = now.*f.member > base.*f.member ? now.*f.member - base.*f.member : 0;
    });
    return out;
}

// One relaxed atomic per field: the owning thread keeps plain counters on its per-packet path
// and stores them here once per batch, for other threads to load.
template <StatStruct S> class AtomicStats {
  public:
    void store(const S& s) noexcept {
        for_each_field<S>([&](auto i) {
            values_[i].store(s.*kStatFields<S>[i].member, std::memory_order_relaxed);
        });
    }
    S load() const noexcept {
        S s;
        for_each_field<S>([&](auto i) {
            s.*kStatFields<S>[i].member = values_[i].load(std::memory_order_relaxed);
        });
        return s;
    }

  private:
    std::array<std::atomic<std::uint64_t>, kStatFields<S>.size()> values_{};
};

} // namespace nflowd
