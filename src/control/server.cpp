#include "nflowd/control_server.hpp"

#include "datagram.hpp"

#include "nflowd/clock.hpp"

#include <grp.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

namespace nflowd {

namespace {

// Datagrams answered per wake-up before poll() looks at the stop request again (it is also
// looked at between datagrams).
constexpr int kBurst = 64;
// Entries the per-second budget maps may hold: a peer opening socket after socket cannot
// grow them further; beyond, new port ids and uids are refused until the next second (root's
// port ids excepted).
constexpr std::size_t kMaxTracked = 4096;
using std::chrono::microseconds;
using std::chrono::milliseconds;

std::string describe_peer(std::uint32_t port, const std::optional<PeerCredentials>& c) {
    if (!c) return "port " + std::to_string(port) + " (no credentials)";
    return "uid " + std::to_string(c->uid) + " pid " + std::to_string(c->pid);
}

} // namespace

std::vector<gid_t> groups_of_uid(uid_t uid) {
    long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(static_cast<std::size_t>(size > 0 ? size : 16384));
    passwd pw{};
    passwd* found = nullptr;
    for (int attempt = 0; attempt < 6; ++attempt) {
        const int e = ::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found);
        if (e != ERANGE) break;
        buf.resize(buf.size() * 2);
    }
    if (found == nullptr) return {}; // no such user: member of nothing
    int n = 64;
    std::vector<gid_t> groups;
    for (int attempt = 0; attempt < 6; ++attempt) {
        groups.resize(static_cast<std::size_t>(n));
        const int want = n;
        if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) >= 0) {
            groups.resize(static_cast<std::size_t>(n));
            return groups;
        }
        n = std::max(n, want * 2);
    }
    return {pw.pw_gid};
}

bool may_change(const PeerCredentials& peer, std::optional<gid_t> write_group,
                const GroupLookup& groups_of) {
    if (peer.uid == 0) return true;
    if (!write_group || !groups_of) return false;
    // The uid is the kernel's; the gid in the credentials is only one the sender holds now
    // (a setgid program's, say), so membership is the user database's word for that uid.
    const auto groups = groups_of(peer.uid);
    return std::find(groups.begin(), groups.end(), *write_group) != groups.end();
}

void ControlServer::SocketCloser::operator()(mnl_socket* s) const noexcept {
    mnl_socket_close(s);
}

ControlServer::ControlServer(const ControlServerConfig& config)
    : config_(config), buf_(ctl::kMaxRequestSize) {
    sock_.reset(mnl_socket_open2(NETLINK_USERSOCK, SOCK_CLOEXEC));
    if (!sock_)
        throw std::system_error(errno, std::generic_category(), "control channel: netlink socket");
    if (mnl_socket_bind(sock_.get(), 0, static_cast<pid_t>(config_.port_id)) < 0) {
        const int e = errno;
        if (e == EADDRINUSE && config_.fallback_port) {
            // Squatted (anyone may bind any port id): the kernel picks a free one, which the
            // daemon publishes with its pid for nflowctl.
            if (mnl_socket_bind(sock_.get(), 0, MNL_SOCKET_AUTOPID) < 0)
                throw std::system_error(errno, std::generic_category(),
                                        "control channel: cannot bind a netlink port id");
            fallback_ = true;
        } else if (e == EADDRINUSE)
            throw std::runtime_error(
                "control channel: netlink port id " + std::to_string(config_.port_id) +
                " is already in use (is another nflowd running? choose another with "
                "--control_id)");
        else
            throw std::system_error(e, std::generic_category(),
                                    "control channel: cannot bind netlink port id " +
                                        std::to_string(config_.port_id));
    }
    // The kernel then attaches the sender's real pid/uid/gid to every request: the only
    // basis for deciding who may change settings, since anyone can send to this port.
    const int one = 1;
    if (setsockopt(fd(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
        throw std::system_error(errno, std::generic_category(), "control channel: SO_PASSCRED");
}

ControlServer::~ControlServer() = default;

int ControlServer::fd() const noexcept {
    return mnl_socket_get_fd(sock_.get());
}

std::uint32_t ControlServer::port_id() const noexcept {
    return mnl_socket_get_portid(sock_.get());
}

ControlServerStats ControlServer::stats() const noexcept {
    constexpr auto r = std::memory_order_relaxed;
    return {counters_.requests.load(r),      counters_.errors.load(r),
            counters_.denied.load(r),        counters_.ignored.load(r),
            counters_.send_failures.load(r), counters_.slow_peers.load(r),
            counters_.throttled.load(r)};
}

void ControlServer::serve(int stop_fd, ControlHandler& handler) {
    stop_fd_ = stop_fd;
    for (;;) {
        pollfd fds[2] = {{fd(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
        const int n = ::poll(fds, 2, -1);
        if (n < 0 && errno != EINTR) {
            stop_fd_ = -1;
            throw std::system_error(errno, std::generic_category(), "control channel: poll");
        }
        if ((n > 0 && fds[1].revents) || stopping()) break;
        if (n > 0 && fds[0].revents) drain(handler);
    }
    stop_fd_ = -1;
}

bool ControlServer::stopping() const noexcept {
    if (stop_fd_ < 0) return false;
    pollfd p{stop_fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}

void ControlServer::new_second(SteadyTime now) {
    if (now - window_start_ < std::chrono::seconds(1)) return;
    window_start_ = now;
    per_port_.clear();
    per_uid_.clear();
    stalled_.clear();
    // Refilled by one second's allowance, capped at a second's worth; full ones are forgotten.
    const microseconds refill = milliseconds(config_.wait_allowance_ms);
    for (auto it = allowance_.begin(); it != allowance_.end();) {
        it->second = std::min<microseconds>(it->second + refill, milliseconds(1000));
        it = it->second >= milliseconds(1000) ? allowance_.erase(it) : std::next(it);
    }
}

bool ControlServer::within_budget(std::uint32_t peer, const std::optional<PeerCredentials>& creds) {
    new_second(std::chrono::steady_clock::now());
    // Root is trusted not to starve its own daemon: only other uids share a budget, and a
    // flooder filling the tables cannot keep root's new port ids out.
    const bool root = creds && creds->uid == 0;
    if (creds && !root) {
        auto u = per_uid_.find(creds->uid);
        if (u == per_uid_.end()) {
            if (per_uid_.size() >= kMaxTracked) return false;
            u = per_uid_.emplace(creds->uid, 0).first;
        }
        if (++u->second > config_.uid_budget) return false;
    }
    auto p = per_port_.find(peer);
    if (p == per_port_.end()) {
        if (per_port_.size() >= kMaxTracked) return root;
        p = per_port_.emplace(peer, 0).first;
    }
    return ++p->second <= config_.port_budget;
}

std::size_t ControlServer::serve_pending(int timeout_ms, ControlHandler& handler) {
    pollfd p{fd(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return 0;
    return drain(handler);
}

std::size_t ControlServer::drain(ControlHandler& handler) {
    std::size_t handled = 0;
    for (int i = 0; i < kBurst && !stopping(); ++i) {
        // The real length of an oversized datagram is kept, so it can be refused as such.
        const auto d = ctl::wire::receive_datagram(fd(), buf_);
        const ssize_t n = d.length;
        if (n < 0) {
            if (errno == EINTR || errno == ENOBUFS) continue; // overrun: requests were lost
            break;                                            // EAGAIN: nothing more queued
        }
        ++handled;
        if (!d.has_sender || d.from.nl_pid == 0) {
            // Not from a user socket (the kernel has port 0): nobody to answer.
            counters_.ignored.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        std::optional<PeerCredentials> creds;
        if (d.sender) creds = PeerCredentials{d.sender->pid, d.sender->uid, d.sender->gid};
        const auto size = static_cast<std::size_t>(n);
        handle(handler, std::span<const std::byte>(buf_).first(std::min(size, buf_.size())), size,
               d.from.nl_pid, creds);
    }
    return handled;
}

void ControlServer::handle(ControlHandler& handler, std::span<const std::byte> data,
                           std::size_t size, std::uint32_t peer,
                           const std::optional<PeerCredentials>& creds) {
    // Before decoding: a flooder's excess costs a map lookup, not a reply.
    if (!within_budget(peer, creds)) {
        counters_.throttled.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const auto d = ctl::decode_request(data, size);
    if (d.ignore) {
        counters_.ignored.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    counters_.requests.fetch_add(1, std::memory_order_relaxed);
    if (!d.request) {
        if (config_.log)
            config_.log->log_limited(LogLevel::info, "control malformed",
                                     "control: malformed request from " +
                                         describe_peer(peer, creds) + ": " + d.message);
        send_error(d, peer, d.error, d.message);
        return;
    }
    const auto& r = *d.request;
    if (!creds) {
        send_error(d, peer, EPERM, "permission denied: request without sender credentials");
        return;
    }
    if (ctl::needs_privilege(r.command) &&
        !may_change(*creds, config_.write_group, config_.groups_of)) {
        refuse(d, peer, *creds);
        return;
    }
    const int deadline =
        creds->uid == 0 ? config_.root_reply_deadline_ms : config_.reply_deadline_ms;
    Delivery to{peer, creds->uid, std::chrono::steady_clock::now() + milliseconds(deadline)};
    try {
        answer(handler, r, d.seq, to);
    } catch (const ControlError& e) {
        send_error(d, peer, e.error(), e.what());
    } catch (const std::exception& e) {
        send_error(d, peer, EIO, std::string("internal error: ") + e.what());
    }
}

void ControlServer::refuse(const ctl::DecodedRequest& d, std::uint32_t peer,
                           const PeerCredentials& creds) {
    const auto command = std::string(ctl::command_name(d.request->command));
    counters_.denied.fetch_add(1, std::memory_order_relaxed);
    std::string who = "uid 0";
    if (config_.write_group) who += " or a member of group " + std::to_string(*config_.write_group);
    if (config_.log)
        config_.log->log_limited(LogLevel::notice, "control denied",
                                 "control: " + command + " refused for " +
                                     describe_peer(peer, creds));
    send_error(d, peer, EPERM,
               "permission denied: " + command + " needs " + who + ", you are uid " +
                   std::to_string(creds.uid));
}

void ControlServer::answer(ControlHandler& handler, const ctl::Request& r, std::uint32_t seq,
                           Delivery& to) {
    // Everything is computed before the first message goes out: a refusal is then a single
    // error reply, never data followed by an error.
    std::vector<ctl::KnobValue> knobs;
    std::string text;
    FlowDump dump;
    switch (r.command) {
    case ctl::Command::list:
        knobs = handler.knobs();
        break;
    case ctl::Command::get:
        knobs = handler.get(r.names);
        break;
    case ctl::Command::set:
        knobs = handler.set(r.changes);
        break;
    case ctl::Command::flush:
        handler.flush(r.flush_level);
        break;
    case ctl::Command::stats:
        text = handler.stats(r.format);
        break;
    case ctl::Command::flows:
        dump = handler.flows(r.top, r.sort);
        break;
    }

    std::pair<ControlServer*, Delivery*> ctx{this, &to};
    ctl::ReplyWriter w(
        r.command, seq, to.peer,
        [](void* self, std::span<const std::byte> m) {
            auto& [server, delivery] = *static_cast<std::pair<ControlServer*, Delivery*>*>(self);
            return server->send(*delivery, m);
        },
        &ctx);
    for (const auto& k : knobs)
        if (!w.add_knob(k)) break;
    if (!text.empty()) w.add_text(text);
    if (r.command == ctl::Command::flows) {
        w.add_flow_header(dump.total, dump.now);
        for (const auto& f : dump.flows)
            if (!w.add_flow(f)) break;
    }
    if (!w.finish()) counters_.send_failures.fetch_add(1, std::memory_order_relaxed);
}

void ControlServer::send_error(const ctl::DecodedRequest& d, std::uint32_t peer, int error,
                               const std::string& message) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    const auto m = ctl::encode_error(d.seq, peer, d, error, message);
    // Never waited for: a peer that sends garbage and does not read its errors must not be
    // able to hold the serving thread at all.
    Delivery to{peer, 0, std::chrono::steady_clock::now(), false};
    if (!send(to, m)) counters_.send_failures.fetch_add(1, std::memory_order_relaxed);
}

bool ControlServer::send(Delivery& to, std::span<const std::byte> message) {
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_pid = to.peer;
    // The stall clock starts at each message: a peer that reads is given time, one that does
    // not is dropped after stall_ms, whatever the deadline.
    const int stall = to.uid == 0 ? config_.root_stall_ms : config_.stall_ms;
    const auto stall_end = std::chrono::steady_clock::now() + milliseconds(stall);
    // Between messages too: a reader fast enough never to fill its buffer must not keep a
    // stopping daemon answering it (an error reply, wait == false, goes out regardless).
    if (to.wait && stopping()) return false;
    for (int attempt = 0; attempt < 100000; ++attempt) {
        const ssize_t n = ::sendto(fd(), message.data(), message.size(), MSG_DONTWAIT,
                                   reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        if (n == static_cast<ssize_t>(message.size())) return true;
        if (n < 0 && errno == EINTR) continue;
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false; // peer gone
        const auto now = std::chrono::steady_clock::now();
        // Root's allowance is unlimited: only the deadline and the stall limit hold it.
        auto allowance = to.uid == 0
                             ? milliseconds(1000)
                             : allowance_.try_emplace(to.uid, milliseconds(1000)).first->second;
        if (!to.wait || stalled_.contains(to.peer) || now >= to.deadline || now >= stall_end ||
            allowance <= microseconds(0) || stopping()) {
            counters_.slow_peers.fetch_add(1, std::memory_order_relaxed);
            // The rest of this peer's (and uid's) replies this second are not waited for.
            if (stalled_.size() < kMaxTracked) stalled_.insert(to.peer);
            if (to.uid != 0) allowance_[to.uid] = microseconds(0);
            return false;
        }
        pollfd p{stop_fd_, POLLIN, 0};
        ::poll(&p, stop_fd_ < 0 ? 0 : 1, 1); // 1 ms, or less when a stop is requested
        if (to.uid != 0)
            allowance_[to.uid] -=
                std::chrono::duration_cast<microseconds>(std::chrono::steady_clock::now() - now);
    }
    return false;
}

} // namespace nflowd
