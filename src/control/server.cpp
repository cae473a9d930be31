#include "nflowd/control_server.hpp"

#include "nflowd/clock.hpp"

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

namespace nflowd {

namespace {

// Datagrams answered per wake-up before the stop flag is looked at again.
constexpr int kBurst = 64;

std::string describe_peer(std::uint32_t port, const std::optional<PeerCredentials>& c) {
    if (!c) return "port " + std::to_string(port) + " (no credentials)";
    return "uid " + std::to_string(c->uid) + " pid " + std::to_string(c->pid);
}

} // namespace

bool may_change(const PeerCredentials& peer, std::optional<gid_t> write_group) noexcept {
    return peer.uid == 0 || (write_group && peer.gid == *write_group);
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
        if (e == EADDRINUSE)
            throw std::runtime_error(
                "control channel: netlink port id " + std::to_string(config_.port_id) +
                " is already in use (is another nflowd running? choose another with "
                "--control_id)");
        throw std::system_error(e, std::generic_category(),
                                "control channel: cannot bind netlink port id " +
                                    std::to_string(config_.port_id));
    }
    // The kernel then attaches the sender's real pid/uid/gid to every request: the only
    // basis for deciding who may change settings, since anyone can send to this port.
    const int one = 1;
    if (setsockopt(fd(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
        throw std::system_error(errno, std::generic_category(), "control channel: SO_PASSCRED");
    timeval tv{config_.send_timeout_ms / 1000, (config_.send_timeout_ms % 1000) * 1000};
    if (setsockopt(fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
        throw std::system_error(errno, std::generic_category(), "control channel: SO_SNDTIMEO");
}

ControlServer::~ControlServer() = default;

int ControlServer::fd() const noexcept {
    return mnl_socket_get_fd(sock_.get());
}

ControlServerStats ControlServer::stats() const noexcept {
    constexpr auto r = std::memory_order_relaxed;
    return {counters_.requests.load(r), counters_.errors.load(r), counters_.denied.load(r),
            counters_.ignored.load(r), counters_.send_failures.load(r)};
}

void ControlServer::serve(int stop_fd, ControlHandler& handler) {
    for (;;) {
        pollfd fds[2] = {{fd(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
        const int n = ::poll(fds, 2, -1);
        if (n < 0 && errno != EINTR)
            throw std::system_error(errno, std::generic_category(), "control channel: poll");
        if (n > 0 && fds[1].revents) return;
        if (n > 0 && fds[0].revents) drain(handler);
    }
}

std::size_t ControlServer::serve_pending(int timeout_ms, ControlHandler& handler) {
    pollfd p{fd(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return 0;
    return drain(handler);
}

std::size_t ControlServer::drain(ControlHandler& handler) {
    std::size_t handled = 0;
    for (int i = 0; i < kBurst; ++i) {
        sockaddr_nl addr{};
        iovec iov{buf_.data(), buf_.size()};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
        msghdr msg{};
        msg.msg_name = &addr;
        msg.msg_namelen = sizeof addr;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        // MSG_TRUNC: the real length of an oversized datagram, so it can be refused as such.
        const ssize_t n = ::recvmsg(fd(), &msg, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR || errno == ENOBUFS) continue; // overrun: requests were lost
            break;                                            // EAGAIN: nothing more queued
        }
        ++handled;
        if (msg.msg_namelen != sizeof addr || addr.nl_pid == 0) {
            // Not from a user socket (the kernel has port 0): nobody to answer.
            counters_.ignored.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        std::optional<PeerCredentials> creds;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
                ucred u{};
                std::memcpy(&u, CMSG_DATA(c), sizeof u);
                creds = PeerCredentials{u.pid, u.uid, u.gid};
            }
        }
        const auto size = static_cast<std::size_t>(n);
        handle(handler, std::span<const std::byte>(buf_).first(std::min(size, buf_.size())), size,
               addr.nl_pid, creds);
    }
    return handled;
}

void ControlServer::handle(ControlHandler& handler, std::span<const std::byte> data,
                           std::size_t size, std::uint32_t peer,
                           const std::optional<PeerCredentials>& creds) {
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
    if (ctl::changes_state(r.command) && !may_change(*creds, config_.write_group)) {
        counters_.denied.fetch_add(1, std::memory_order_relaxed);
        std::string who = "uid 0";
        if (config_.write_group) who += " or group " + std::to_string(*config_.write_group);
        if (config_.log)
            config_.log->log_limited(LogLevel::notice, "control denied",
                                     "control: " + std::string(ctl::command_name(r.command)) +
                                         " refused for " + describe_peer(peer, creds));
        send_error(d, peer, EPERM,
                   "permission denied: " + std::string(ctl::command_name(r.command)) + " needs " +
                       who + ", you are uid " + std::to_string(creds->uid) + " gid " +
                       std::to_string(creds->gid));
        return;
    }
    try {
        answer(handler, r, d.seq, peer);
    } catch (const ControlError& e) {
        send_error(d, peer, e.error(), e.what());
    } catch (const std::exception& e) {
        send_error(d, peer, EIO, std::string("internal error: ") + e.what());
    }
}

void ControlServer::answer(ControlHandler& handler, const ctl::Request& r, std::uint32_t seq,
                           std::uint32_t peer) {
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

    std::pair<ControlServer*, std::uint32_t> ctx{this, peer};
    ctl::ReplyWriter w(
        r.command, seq, peer,
        [](void* self, std::span<const std::byte> m) {
            auto& [server, to] = *static_cast<std::pair<ControlServer*, std::uint32_t>*>(self);
            return server->send(to, m, true);
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
    // able to hold the serving thread for a send timeout per datagram.
    if (!send(peer, m, false)) counters_.send_failures.fetch_add(1, std::memory_order_relaxed);
}

bool ControlServer::send(std::uint32_t peer, std::span<const std::byte> message, bool wait) {
    sockaddr_nl to{};
    to.nl_family = AF_NETLINK;
    to.nl_pid = peer;
    for (int attempt = 0; attempt < 8; ++attempt) {
        // Blocking with SO_SNDTIMEO: a big dump waits for the client to read (netlink flow
        // control) instead of being dropped, and a client that stops reading is given up.
        const ssize_t n = ::sendto(fd(), message.data(), message.size(), wait ? 0 : MSG_DONTWAIT,
                                   reinterpret_cast<const sockaddr*>(&to), sizeof to);
        if (n == static_cast<ssize_t>(message.size())) return true;
        if (n < 0 && errno == EINTR) continue;
        return false;
    }
    return false;
}

} // namespace nflowd
