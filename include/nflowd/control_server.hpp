// nflowd's end of the control channel: a NETLINK_USERSOCK socket bound to the well-known
// port id, kernel-checked sender credentials on every request, dispatch to a handler.
#pragma once

#include "nflowd/control_protocol.hpp"
#include "nflowd/log.hpp"
#include "nflowd/stats_fields.hpp"

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

struct mnl_socket;
struct sockaddr_nl;

namespace nflowd {

// Who sent a request, as the kernel attached it (SCM_CREDENTIALS): not what the peer claims.
struct PeerCredentials {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

// A refused request: a positive errno and the message nflowctl prints.
class ControlError : public std::runtime_error {
  public:
    ControlError(int error, const std::string& message)
        : std::runtime_error(message), error_(error) {}
    int error() const noexcept { return error_; }

  private:
    int error_;
};

struct FlowDump {
    std::uint64_t total = 0; // active flows in the daemon, whatever `flows` holds
    Nanos now = 0;           // when the dump was taken (wall clock)
    std::vector<FlowRecord> flows;
};

// What the daemon does for each request. Called only from the serving thread. Methods
// throw ControlError to refuse; any other exception is reported as an internal error.
class ControlHandler {
  public:
    virtual ~ControlHandler() = default;
    virtual std::vector<ctl::KnobValue> knobs() = 0; // every knob, in listing order
    // The named knobs in the order asked (any spelling); ControlError ENOENT for an unknown one.
    virtual std::vector<ctl::KnobValue> get(const std::vector<std::string>& names) = 0;
    // All or nothing; returns the knobs as they are afterwards, one per change.
    virtual std::vector<ctl::KnobValue>
    set(const std::vector<std::pair<std::string, std::string>>& changes) = 0;
    virtual void flush(int level) = 0; // 1 export every flow, 2 also zero the statistics
    virtual std::string stats(ctl::StatsFormat format) = 0;
    virtual FlowDump flows(std::uint32_t top, ctl::FlowSort sort) = 0;
};

struct ControlServerConfig {
    std::uint32_t port_id = ctl::kDefaultPortId;
    // Besides uid 0, requests whose sender's primary gid is this one may change settings.
    std::optional<gid_t> write_group;
    // A client that stops reading holds the serving thread at most this long per message.
    int send_timeout_ms = 2000;
    Logger* log = nullptr;
};

// Reading is open to every local user; set and flush need uid 0 or the write group.
bool may_change(const PeerCredentials& peer, std::optional<gid_t> write_group) noexcept;

struct ControlServerStats {
    std::uint64_t requests = 0;      // datagrams answered
    std::uint64_t errors = 0;        // answered with an error (malformed, refused, invalid)
    std::uint64_t denied = 0;        // of which: permission denied
    std::uint64_t ignored = 0;       // not requests: never answered
    std::uint64_t send_failures = 0; // replies abandoned (peer gone or not reading)

    static constexpr auto fields() {
        using F = StatField<ControlServerStats>;
        constexpr auto c = StatKind::counter;
        return std::array{
            F{"requests", &ControlServerStats::requests, c, "requests", "Requests answered"},
            F{"errors", &ControlServerStats::errors, c, "requests",
              "Requests answered with an error"},
            F{"denied", &ControlServerStats::denied, c, "requests",
              "Requests refused for lack of permission"},
            F{"ignored", &ControlServerStats::ignored, c, "datagrams",
              "Datagrams that were not requests"},
            F{"send_failures", &ControlServerStats::send_failures, c, "replies",
              "Replies abandoned (peer gone or not reading)"},
        };
    }
};

class ControlServer {
  public:
    // Binds the port id. Throws std::runtime_error saying so when it is already taken
    // (another nflowd, or anyone squatting it), std::system_error on other failures. Binding
    // comes first at start-up, before the handler's engine exists.
    explicit ControlServer(const ControlServerConfig& config);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Answers requests with `handler` until `stop_fd` is readable. A bad request gets an
    // error reply; nothing a peer sends stops the loop.
    void serve(int stop_fd, ControlHandler& handler);
    // Answers what is queued now, waiting up to timeout_ms for the first datagram; returns
    // the number of datagrams handled. For tests.
    std::size_t serve_pending(int timeout_ms, ControlHandler& handler);

    int fd() const noexcept;
    std::uint32_t port_id() const noexcept { return config_.port_id; }
    ControlServerStats stats() const noexcept;

  private:
    struct SocketCloser {
        void operator()(mnl_socket* s) const noexcept;
    };
    std::size_t drain(ControlHandler& handler);
    void handle(ControlHandler& handler, std::span<const std::byte> data, std::size_t size,
                std::uint32_t peer, const std::optional<PeerCredentials>& creds);
    void answer(ControlHandler& handler, const ctl::Request& request, std::uint32_t seq,
                std::uint32_t peer);
    void send_error(const ctl::DecodedRequest& d, std::uint32_t peer, int error,
                    const std::string& message);
    // wait: block (up to send_timeout_ms) while the peer's buffer is full.
    bool send(std::uint32_t peer, std::span<const std::byte> message, bool wait);

    ControlServerConfig config_;
    std::unique_ptr<mnl_socket, SocketCloser> sock_;
    std::vector<std::byte> buf_;
    struct Counters {
        std::atomic<std::uint64_t> requests{0}, errors{0}, denied{0}, ignored{0}, send_failures{0};
    };
    Counters counters_;
};

} // namespace nflowd
