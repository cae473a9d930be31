#include "nflowd/control_client.hpp"

#include "datagram.hpp"

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

namespace nflowd {

namespace {

using Kind = ControlClientError::Kind;

constexpr int kRcvbuf = 1 << 20; // a flow dump streams; a deep buffer means fewer stalls

std::string not_running(std::uint32_t port) {
    return "nflowd is not running (nothing listens on netlink port id " + std::to_string(port) +
           ")";
}

} // namespace

void ControlClient::SocketCloser::operator()(mnl_socket* s) const noexcept {
    mnl_socket_close(s);
}

ControlClient::ControlClient(const ControlEndpoint& daemon, int timeout_ms)
    : daemon_(daemon), timeout_ms_(timeout_ms), buf_(ctl::kReplyBufferSize),
      seq_(
          static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count())) {
    sock_.reset(mnl_socket_open2(NETLINK_USERSOCK, SOCK_CLOEXEC));
    if (!sock_)
        throw ControlClientError(Kind::unreachable, errno,
                                 std::string("cannot open a netlink socket: ") +
                                     std::strerror(errno));
    if (mnl_socket_bind(sock_.get(), 0, MNL_SOCKET_AUTOPID) < 0)
        throw ControlClientError(Kind::unreachable, errno,
                                 std::string("cannot bind a netlink socket: ") +
                                     std::strerror(errno));
    const int one = 1;
    if (setsockopt(mnl_socket_get_fd(sock_.get()), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
        throw ControlClientError(Kind::unreachable, errno,
                                 std::string("cannot ask for sender credentials: ") +
                                     std::strerror(errno));
    const int size = kRcvbuf;
    // Best effort: the default buffer works too, only with more round trips.
    setsockopt(mnl_socket_get_fd(sock_.get()), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

ControlClient::~ControlClient() = default;

std::uint32_t ControlClient::port_id() const noexcept {
    return mnl_socket_get_portid(sock_.get());
}

void ControlClient::send(std::span<const std::byte> datagram) {
    sockaddr_nl to{};
    to.nl_family = AF_NETLINK;
    to.nl_pid = daemon_.port_id;
    for (;;) {
        const ssize_t n = ::sendto(mnl_socket_get_fd(sock_.get()), datagram.data(), datagram.size(),
                                   0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
        if (n >= 0) return;
        if (errno == EINTR) continue;
        if (errno == ECONNREFUSED)
            throw ControlClientError(Kind::unreachable, errno, not_running(daemon_.port_id));
        throw ControlClientError(Kind::unreachable, errno,
                                 "cannot send to nflowd: " + std::string(std::strerror(errno)));
    }
}

std::span<const std::byte> ControlClient::receive() {
    const int fd = mnl_socket_get_fd(sock_.get());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return {};
        pollfd p{fd, POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return {};
        const auto d = ctl::wire::receive_datagram(fd, buf_);
        const ssize_t n = d.length;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            if (errno == ENOBUFS)
                throw ControlClientError(Kind::protocol, errno,
                                         "part of nflowd's answer was lost (receive buffer "
                                         "overrun); try again");
            throw ControlClientError(Kind::unreachable, errno,
                                     "cannot receive from nflowd: " +
                                         std::string(std::strerror(errno)));
        }
        // Anyone may send to our port: only the daemon is listened to.
        if (!from_daemon(d)) {
            ++foreign_;
            continue;
        }
        if (static_cast<std::size_t>(n) > buf_.size())
            throw ControlClientError(Kind::protocol, EMSGSIZE,
                                     "reply from nflowd larger than " +
                                         std::to_string(buf_.size()) + " bytes");
        return std::span<const std::byte>(buf_).first(static_cast<std::size_t>(n));
    }
}

bool ControlClient::from_daemon(const ctl::wire::Datagram& d) {
    if (!d.has_sender || d.from.nl_pid != daemon_.port_id || d.from.nl_groups != 0 || !d.sender)
        return false;
    const ucred& u = *d.sender;
    // The kernel fills these from the sending process; only root could forge them.
    if (daemon_.published) return u.pid == daemon_.pid && u.uid == daemon_.uid;
    if (u.pid != privileged_pid_) {
        if (!privileged_process(u.pid)) return false;
        privileged_pid_ = u.pid; // one look at /proc per answer, not per message
    }
    return true;
}

void ControlClient::transact(const ctl::Request& request,
                             const std::function<void(ctl::Reply&&)>& on_data) {
    const std::uint32_t seq = next_seq();
    std::vector<std::byte> datagram;
    try {
        datagram = ctl::encode_request(request, seq, port_id());
    } catch (const std::exception& e) {
        throw ControlClientError(Kind::refused, EINVAL, e.what());
    }
    send(datagram);
    bool done = false;
    while (!done) {
        const auto data = receive();
        if (data.empty())
            throw ControlClientError(Kind::unreachable, ETIMEDOUT,
                                     "no answer from nflowd (netlink port id " +
                                         std::to_string(daemon_.port_id) + ") within " +
                                         std::to_string(timeout_ms_) + " ms");
        std::optional<ControlClientError> error;
        const auto malformed = ctl::decode_replies(data, [&](ctl::Reply&& r) {
            if (done || error || r.seq != seq) return; // late answer to an earlier request
            switch (r.kind) {
            case ctl::Reply::Kind::done:
                done = true;
                break;
            case ctl::Reply::Kind::error:
                if (r.error == 0)
                    done = true; // plain ack
                else
                    error.emplace(Kind::refused, r.error,
                                  r.message.empty() ? std::strerror(r.error) : r.message);
                break;
            case ctl::Reply::Kind::data:
                if (r.type != static_cast<std::uint16_t>(request.command))
                    error.emplace(Kind::protocol, EPROTO,
                                  "nflowd answered " +
                                      std::string(ctl::command_name(request.command)) +
                                      " with message type " + std::to_string(r.type));
                else
                    on_data(std::move(r));
                break;
            }
        });
        if (error) throw *error;
        if (malformed)
            throw ControlClientError(Kind::protocol, EPROTO,
                                     "malformed answer from nflowd: " + malformed->message);
    }
}

std::vector<ctl::Reply> ControlClient::exchange_raw(std::span<const std::byte> datagram,
                                                    std::uint32_t seq) {
    send(datagram);
    std::vector<ctl::Reply> out;
    for (;;) {
        const auto data = receive();
        if (data.empty()) return out;
        bool end = false;
        const auto malformed = ctl::decode_replies(data, [&](ctl::Reply&& r) {
            if (r.seq != seq) return;
            end = end || r.kind != ctl::Reply::Kind::data;
            out.push_back(std::move(r));
        });
        if (malformed)
            throw ControlClientError(Kind::protocol, EPROTO,
                                     "malformed answer: " + malformed->message);
        if (end) return out;
    }
}

std::vector<ctl::KnobValue> ControlClient::list() {
    std::vector<ctl::KnobValue> out;
    transact({}, [&](ctl::Reply&& r) {
        for (auto& k : r.knobs) out.push_back(std::move(k));
    });
    return out;
}

std::vector<ctl::KnobValue> ControlClient::get(const std::vector<std::string>& names) {
    ctl::Request req;
    req.command = ctl::Command::get;
    req.names = names;
    std::vector<ctl::KnobValue> out;
    transact(req, [&](ctl::Reply&& r) {
        for (auto& k : r.knobs) out.push_back(std::move(k));
    });
    return out;
}

std::vector<ctl::KnobValue>
ControlClient::set(const std::vector<std::pair<std::string, std::string>>& changes) {
    ctl::Request req;
    req.command = ctl::Command::set;
    req.changes = changes;
    std::vector<ctl::KnobValue> out;
    transact(req, [&](ctl::Reply&& r) {
        for (auto& k : r.knobs) out.push_back(std::move(k));
    });
    return out;
}

std::string ControlClient::stats(ctl::StatsFormat format) {
    ctl::Request req;
    req.command = ctl::Command::stats;
    req.format = format;
    std::string out;
    transact(req, [&](ctl::Reply&& r) { out += r.text; });
    return out;
}

void ControlClient::flows(std::uint32_t top, ctl::FlowSort sort,
                          const std::function<void(std::uint64_t, Nanos)>& header,
                          const std::function<void(const FlowRecord&)>& each) {
    ctl::Request req;
    req.command = ctl::Command::flows;
    req.top = top;
    req.sort = sort;
    bool seen_header = false;
    transact(req, [&](ctl::Reply&& r) {
        if (r.flow_total && r.now && !seen_header) {
            seen_header = true;
            header(*r.flow_total, *r.now);
        }
        if (!seen_header && !r.flows.empty())
            throw ControlClientError(Kind::protocol, EPROTO, "flows before the dump's header");
        for (const auto& f : r.flows) each(f);
    });
    if (!seen_header)
        throw ControlClientError(Kind::protocol, EPROTO, "flow dump without a header");
}

void ControlClient::flush(std::uint8_t level) {
    ctl::Request req;
    req.command = ctl::Command::flush;
    req.flush_level = level;
    transact(req, [](ctl::Reply&&) {});
}

} // namespace nflowd
