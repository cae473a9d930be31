// nflowctl's end of the control channel: one request, the daemon's (possibly multi-part)
// answer, accepted only from the daemon's port id, pid and uid; failures sorted for the user.
#pragma once

#include "nflowd/control_endpoint.hpp"
#include "nflowd/control_protocol.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

struct mnl_socket;
struct msghdr;
struct sockaddr_nl;

// Error idiom (control client): every failure throws ControlClientError (a std::runtime_error
// with a Kind and an errno), which nflowctl maps to its exit status.
namespace nflowd::ctl::wire {
struct Datagram; // src/control/datagram.hpp
}

namespace nflowd {

class ControlClientError : public std::runtime_error {
  public:
    enum class Kind {
        unreachable, // no daemon at the port id, or no answer in time
        refused,     // the daemon answered with an error (bad value, permission, ...)
        protocol,    // the answer was malformed or of another protocol version
    };
    ControlClientError(Kind kind, int error, const std::string& message)
        : std::runtime_error(message), kind_(kind), error_(error) {}
    Kind kind() const noexcept { return kind_; }
    int error() const noexcept { return error_; } // positive errno, 0 if none

  private:
    Kind kind_;
    int error_;
};

class ControlClient {
  public:
    // A NETLINK_USERSOCK socket with a kernel-chosen port id and SO_PASSCRED: a datagram
    // counts only if it comes from daemon.port_id with the kernel-checked pid and uid of
    // daemon (anyone may send to our port, and anyone may hold a port id). `timeout_ms`
    // bounds the wait for each reply message.
    explicit ControlClient(const ControlEndpoint& daemon, int timeout_ms = 5000);
    ~ControlClient();
    ControlClient(const ControlClient&) = delete;
    ControlClient& operator=(const ControlClient&) = delete;

    std::vector<ctl::KnobValue> list();
    std::vector<ctl::KnobValue> get(const std::vector<std::string>& names);
    std::vector<ctl::KnobValue>
    set(const std::vector<std::pair<std::string, std::string>>& changes);
    std::string stats(ctl::StatsFormat format);
    // header(total, now) once, then each(flow) per flow as messages arrive.
    void flows(std::uint32_t top, ctl::FlowSort sort,
               const std::function<void(std::uint64_t total, Nanos now)>& header,
               const std::function<void(const FlowRecord&)>& each);
    void flush(std::uint8_t level);

    // Sends `request` and hands every data message of the answer to on_data; returns at
    // NLMSG_DONE or an ack. Throws ControlClientError.
    void transact(const ctl::Request& request, const std::function<void(ctl::Reply&&)>& on_data);
    // Sends an arbitrary datagram and returns the answer's messages up to DONE or an error
    // (or what came before the timeout). Tests feed the daemon malformed requests with it.
    std::vector<ctl::Reply> exchange_raw(std::span<const std::byte> datagram, std::uint32_t seq);

    std::uint32_t port_id() const noexcept;
    std::uint32_t next_seq() noexcept { return ++seq_; }

  private:
    struct SocketCloser {
        void operator()(mnl_socket* s) const noexcept;
    };
    void send(std::span<const std::byte> datagram);
    // The next datagram from the daemon (others are dropped, counted); empty on timeout.
    std::span<const std::byte> receive();
    bool from_daemon(const ctl::wire::Datagram& d);

  public:
    // Datagrams dropped because they did not come from the daemon.
    std::uint64_t foreign() const noexcept { return foreign_; }

  private:
    ControlEndpoint daemon_;
    std::uint64_t foreign_ = 0;
    pid_t privileged_pid_ = 0; // unpublished daemon: the sender already found privileged
    int timeout_ms_;
    std::unique_ptr<mnl_socket, SocketCloser> sock_;
    std::vector<std::byte> buf_;
    std::uint32_t seq_;
};

} // namespace nflowd
