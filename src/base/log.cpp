#include "nflowd/log.hpp"

#include <syslog.h>

#include <cstdio>
#include <ctime>

namespace nflowd {

namespace {
int syslog_priority(LogLevel l) {
    switch (l) {
    case LogLevel::error:
        return LOG_ERR;
    case LogLevel::notice:
        return LOG_NOTICE;
    case LogLevel::info:
        return LOG_INFO;
    case LogLevel::debug:
        return LOG_DEBUG;
    }
    return LOG_INFO;
}
const char* name(LogLevel l) {
    switch (l) {
    case LogLevel::error:
        return "error";
    case LogLevel::notice:
        return "notice";
    case LogLevel::info:
        return "info";
    case LogLevel::debug:
        return "debug";
    }
    return "";
}
} // namespace

Logger::Logger(std::string ident, bool to_syslog, int debug)
    : ident_(std::move(ident)), syslog_(to_syslog), debug_(debug) {
    if (syslog_) ::openlog(ident_.c_str(), LOG_PID, LOG_DAEMON);
}

Logger::~Logger() {
    if (syslog_) ::closelog();
}

void Logger::set_debug(int debug) noexcept {
    std::lock_guard lock(mutex_);
    debug_ = debug;
}

int Logger::debug() const noexcept {
    std::lock_guard lock(mutex_);
    return debug_;
}

void Logger::log(LogLevel level, std::string_view message) {
    std::lock_guard lock(mutex_);
    if (static_cast<int>(level) > debug_ && level != LogLevel::error) return;
    write(level, message);
}

void Logger::always(std::string_view message) {
    std::lock_guard lock(mutex_);
    write(LogLevel::notice, message);
}

void Logger::log_limited(LogLevel level, std::string_view key, std::string_view message,
                         std::chrono::seconds interval) {
    std::lock_guard lock(mutex_);
    if (static_cast<int>(level) > debug_ && level != LogLevel::error) return;
    auto it = limits_.find(key);
    if (it == limits_.end()) it = limits_.emplace(std::string(key), Limit{}).first;
    auto& l = it->second;
    const auto now = std::chrono::steady_clock::now();
    if (l.last.time_since_epoch().count() != 0 && now - l.last < interval) {
        ++l.suppressed;
        return;
    }
    std::string line(message);
    if (l.suppressed) line += " (" + std::to_string(l.suppressed) + " similar messages suppressed)";
    l.last = now;
    l.suppressed = 0;
    write(level, line);
}

void Logger::write(LogLevel level, std::string_view message) {
    if (syslog_) {
        ::syslog(syslog_priority(level), "%.*s", static_cast<int>(message.size()), message.data());
        return;
    }
    std::fprintf(stderr, "%s: %s: %.*s\n", ident_.c_str(), name(level),
                 static_cast<int>(message.size()), message.data());
}

} // namespace nflowd
