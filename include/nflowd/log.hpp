// The daemon's log: stderr or syslog, filtered by the debug level, with floods (a dead
// collector, an overrun group) folded into one line per interval per kind of message.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace nflowd {

enum class LogLevel { error = 0, notice = 1, info = 2, debug = 3 };

class Logger {
  public:
    // ident is the syslog identity; to_syslog false = stderr.
    Logger(std::string ident, bool to_syslog, int debug);
    ~Logger();
    Logger(const Logger&) = delete;
    Logger& operator=(const Logger&) = delete;

    void set_debug(int debug) noexcept;
    int debug() const noexcept;

    // Errors always print; other levels when debug >= level.
    void log(LogLevel level, std::string_view message);
    // Printed whatever the debug level, at notice priority: what the operator asked for (SIGUSR1).
    void always(std::string_view message);
    // At most one line per `interval` for the same `key`; the next printed line says how many
    // were held back, so nothing is silently lost.
    void log_limited(LogLevel level, std::string_view key, std::string_view message,
                     std::chrono::seconds interval = std::chrono::seconds(10));

  private:
    void write(LogLevel level, std::string_view message);

    struct Limit {
        std::chrono::steady_clock::time_point last{};
        std::uint64_t suppressed = 0;
    };
    std::string ident_;
    bool syslog_;
    mutable std::mutex mutex_;
    int debug_;
    std::map<std::string, Limit, std::less<>> limits_;
};

} // namespace nflowd
