// nflowd's end of the control channel: a NETLINK_USERSOCK socket (the configured port id, or a
// kernel-assigned one when someone squats it), kernel-checked credentials, per-peer budgets.
#pragma once

#include "nflowd/control_protocol.hpp"
#include "nflowd/log.hpp"
#include "nflowd/stats_fields.hpp"

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
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

// The groups a uid belongs to (primary and supplementary, from the user database).
using GroupLookup = std::function<std::vector<gid_t>(uid_t)>;
std::vector<gid_t> groups_of_uid(uid_t uid);

struct ControlServerConfig {
    std::uint32_t port_id = ctl::kDefaultPortId;
    // When port_id is held by another socket (any user may bind any port id), take a
    // kernel-assigned one instead of refusing to start; the caller publishes it.
    bool fallback_port = false;
    // Besides uid 0, senders whose uid is a member of this group may set, flush and dump flows.
    std::optional<gid_t> write_group;
    GroupLookup groups_of = groups_of_uid;
    // Whole reply, all its messages: past this it is dropped, however fast the peer reads.
    int reply_deadline_ms = 5000;
    // A peer whose receive buffer stays full this long is dropped for that reply.
    int stall_ms = 100;
    // The same for uid 0, trusted not to attack its own daemon: a whole-cache dump to a root
    // nflowctl on a loaded router may take long and be descheduled, and must not be cut.
    int root_reply_deadline_ms = 60000;
    int root_stall_ms = 2000;
    // Time the serving thread may wait on full buffers per non-root uid: refilled per second,
    // capped at one second's worth; an empty allowance means replies that do not fit are dropped.
    int wait_allowance_ms = 200;
    // Requests per second from one port id, and from one non-root uid; beyond, dropped.
    std::uint32_t port_budget = 32;
    std::uint32_t uid_budget = 128;
    Logger* log = nullptr;
};

// Reading knobs and statistics is open to every local user; set, flush and flows need uid 0
// or membership of the write group, looked up for the kernel-checked uid.
bool may_change(const PeerCredentials& peer, std::optional<gid_t> write_group,
                const GroupLookup& groups_of);

struct ControlServerStats {
    std::uint64_t requests = 0;      // datagrams answered
    std::uint64_t errors = 0;        // answered with an error (malformed, refused, invalid)
    std::uint64_t denied = 0;        // of which: permission denied
    std::uint64_t ignored = 0;       // not requests: never answered
    std::uint64_t send_failures = 0; // replies abandoned (peer gone or not reading)
    std::uint64_t slow_peers = 0;    // of which: peer's buffer full past the allowance/deadline
    std::uint64_t throttled = 0;     // requests dropped over a port id's or uid's budget

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
            F{"slow_peers", &ControlServerStats::slow_peers, c, "replies",
              "Replies dropped: the peer's buffer stayed full or the reply's deadline passed"},
            F{"throttled", &ControlServerStats::throttled, c, "requests",
              "Requests dropped over a peer's per-second budget"},
        };
    }
};

class ControlServer {
  public:
    // Binds the port id. When it is taken: with fallback_port a kernel-assigned one (port_id()
    // says which), else std::runtime_error saying so; std::system_error on other failures.
    explicit ControlServer(const ControlServerConfig& config);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Answers requests with `handler` until `stop_fd` is readable, which is looked at between
    // datagrams and between reply messages. A bad request gets an error reply; nothing a
    // peer sends stops the loop or holds it longer than its budgets allow.
    void serve(int stop_fd, ControlHandler& handler);
    // Answers what is queued now, waiting up to timeout_ms for the first datagram; returns
    // the number of datagrams handled. For tests.
    std::size_t serve_pending(int timeout_ms, ControlHandler& handler);

    int fd() const noexcept;
    std::uint32_t port_id() const noexcept;
    bool took_fallback() const noexcept { return fallback_; }
    ControlServerStats stats() const noexcept;

  private:
    struct SocketCloser {
        void operator()(mnl_socket* s) const noexcept;
    };
    std::size_t drain(ControlHandler& handler);
    void handle(ControlHandler& handler, std::span<const std::byte> data, std::size_t size,
                std::uint32_t peer, const std::optional<PeerCredentials>& creds);
    using SteadyTime = std::chrono::steady_clock::time_point;
    // One reply on its way: whom to, for whom (whose allowance pays the waits), until when.
    struct Delivery {
        std::uint32_t peer = 0;
        uid_t uid = 0;
        SteadyTime deadline;
        bool wait = true; // false: a message that does not fit at once is dropped
    };
    bool within_budget(std::uint32_t peer, const std::optional<PeerCredentials>& creds);
    void refuse(const ctl::DecodedRequest& d, std::uint32_t peer, const PeerCredentials& creds);
    void answer(ControlHandler& handler, const ctl::Request& request, std::uint32_t seq,
                Delivery& to);
    void send_error(const ctl::DecodedRequest& d, std::uint32_t peer, int error,
                    const std::string& message);
    // Non-blocking; while the peer's buffer is full, waits in 1 ms steps as long as the
    // delivery's deadline, the stall limit, the uid's allowance and the stop request allow.
    bool send(Delivery& to, std::span<const std::byte> message);
    bool stopping() const noexcept;
    void new_second(SteadyTime now);

    ControlServerConfig config_;
    std::unique_ptr<mnl_socket, SocketCloser> sock_;
    bool fallback_ = false;
    int stop_fd_ = -1; // while serve() runs
    std::vector<std::byte> buf_;
    // Budgets of the current one-second window; only the serving thread touches them.
    SteadyTime window_start_{};
    std::map<std::uint32_t, std::uint32_t> per_port_;
    std::map<uid_t, std::uint32_t> per_uid_;
    std::set<std::uint32_t> stalled_; // port ids dropped for a full buffer this second
    std::map<uid_t, std::chrono::microseconds> allowance_; // what each uid may still wait
    struct Counters {
        std::atomic<std::uint64_t> requests{0}, errors{0}, denied{0}, ignored{0}, send_failures{0},
            slow_peers{0}, throttled{0};
    };
    Counters counters_;
};

} // namespace nflowd
