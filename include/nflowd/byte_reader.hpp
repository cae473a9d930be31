// Bounds-checked big-endian reads over captured packet bytes, so that parsers never index
// past the capture and never cast packet memory to structs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace nflowd {

// A cursor over a byte span. A read or skip that does not fit reads nothing, yields 0 and
// fails the reader for good (nothing remains after that). Because failure is sticky, a run of
// header reads needs one ok() check at the end, and a short read cannot be followed by a
// smaller one that silently succeeds from the wrong offset.
class ByteReader {
  public:
    constexpr ByteReader() noexcept = default;
    constexpr explicit ByteReader(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}

    constexpr bool ok() const noexcept { return ok_; }
    constexpr std::size_t remaining() const noexcept { return bytes_.size() - pos_; }
    constexpr std::size_t position() const noexcept { return pos_; }

    constexpr void skip(std::size_t n) noexcept {
        if (fits(n)) pos_ += n;
    }
    constexpr std::uint8_t u8() noexcept { return static_cast<std::uint8_t>(read(1)); }
    constexpr std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(read(2)); }
    constexpr std::uint32_t u32() noexcept { return read(4); }

  private:
    constexpr bool fits(std::size_t n) noexcept {
        if (n <= remaining()) return true;
        ok_ = false;
        pos_ = bytes_.size();
        return false;
    }

    // n is a constant at every call site, so after inlining this is a bounds check and a
    // byte-swapped load.
    constexpr std::uint32_t read(std::size_t n) noexcept {
        if (!fits(n)) return 0;
        std::uint32_t v = 0;
        for (std::size_t i = 0; i < n; ++i) {
            v = (v << 8) | std::to_integer<std::uint32_t>(bytes_[pos_ + i]);
        }
        pos_ += n;
        return v;
    }

    std::span<const std::byte> bytes_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

} // namespace nflowd
