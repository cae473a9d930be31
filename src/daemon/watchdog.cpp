#include "nflowd/watchdog.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace nflowd {

namespace {

// A unix datagram socket connected to NOTIFY_SOCKET ("/path" or "@abstract"). Connecting is
// where the path's permissions are checked; sends on the connected socket need none, so it
// outlives the switch to --user USER, who may not be able to reach a root-only directory.
UniqueFd connect_notify_socket(std::string_view path, std::string& error) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if ((path.front() != '/' && path.front() != '@') || path.size() >= sizeof addr.sun_path) {
        error = "unsupported address";
        return {};
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (path.front() == '@') addr.sun_path[0] = '\0'; // the abstract namespace
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                            (path.front() == '/' ? 1 : 0));
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
        error = std::strerror(errno);
        return {};
    }
    return fd;
}

std::string names(const std::vector<std::string>& list) {
    std::string s;
    for (const auto& n : list) s += (s.empty() ? "" : ", ") + n;
    return s;
}

} // namespace

WatchdogPolicy::WatchdogPolicy(Nanos period, std::vector<Watched> watched, Nanos now)
    : period_(period), watched_(std::move(watched)), last_check_(now) {
    for (const auto& w : watched_) seen_.push_back(w.heartbeat->count());
}

bool WatchdogPolicy::check(Nanos now) {
    if (now - last_check_ < period_) return false;
    last_check_ = now;
    stalled_.clear();
    for (std::size_t i = 0; i < watched_.size(); ++i) {
        const std::uint64_t count = watched_[i].heartbeat->count();
        if (count == seen_[i]) stalled_.push_back(watched_[i].name);
        seen_[i] = count;
    }
    return stalled_.empty();
}

ServiceNotifier::ServiceNotifier(Logger& log) : log_(log) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (path == nullptr || *path == '\0') return;
    std::string error;
    fd_ = connect_notify_socket(path, error);
    if (!fd_) {
        log_.log(LogLevel::error, std::string("NOTIFY_SOCKET ") + path + ": " + error +
                                      "; systemd will not hear from nflowd");
        return;
    }
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0) interval_ = static_cast<Nanos>(usec) * 1000;
}

void ServiceNotifier::ready(std::vector<Watched> watched, std::string status, Nanos now) {
    if (!active()) return;
    status_ = std::move(status);
    send("READY=1\nSTATUS=" + status_);
    if (interval_ == 0) return;
    // Half the interval, as sd_watchdog_enabled(3) advises: one late tick is no restart.
    policy_.emplace(interval_ / 2, std::move(watched), now);
    log_.log(LogLevel::info, "systemd watchdog: WATCHDOG=1 every " +
                                 std::to_string(interval_ / 2 / kNanosPerMilli) +
                                 " ms while every reader, worker and the exporter progress");
    // The tick that checks is once a second: below 2 s a ping can come too late.
    if (interval_ < 2 * kNanosPerSecond)
        log_.log(LogLevel::error, "systemd watchdog: WatchdogSec below 2 s is too short for "
                                  "nflowd's 1 s tick; systemd may restart it for no fault");
}

void ServiceNotifier::tick(Nanos now) {
    if (!policy_) return;
    if (policy_->check(now)) send("WATCHDOG=1");
    const bool stalled = !policy_->stalled().empty();
    if (stalled == stalled_) return;
    stalled_ = stalled;
    if (stalled) {
        const std::string who = names(policy_->stalled());
        log_.log(LogLevel::error, "watchdog: no progress from " + who +
                                      "; not feeding systemd's watchdog (it restarts nflowd "
                                      "if this lasts)");
        send("STATUS=stalled: " + who);
    } else {
        log_.log(LogLevel::notice, "watchdog: every thread progresses again");
        send("STATUS=" + status_);
    }
}

void ServiceNotifier::stopping(std::string_view status) {
    if (!active()) return;
    policy_.reset();
    send("STOPPING=1\nSTATUS=" + std::string(status));
}

bool ServiceNotifier::send(std::string_view message) {
    if (::send(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL) >= 0) return true;
    log_.log_limited(LogLevel::error, "sd_notify",
                     std::string("NOTIFY_SOCKET: ") + std::strerror(errno));
    return false;
}

} // namespace nflowd
