// Where nflowctl finds the real nflowd: the daemon publishes its netlink port id, pid and uid
// in a root-owned file per network namespace and --control_id, locked while it runs.
#pragma once

#include "nflowd/unique_fd.hpp"

#include <sys/types.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace nflowd {

// Who answers for the daemon: replies count only from this port id with these kernel-checked
// credentials (SCM_CREDENTIALS), so a squatter of the well-known port id is never believed.
struct ControlEndpoint {
    std::uint32_t port_id = 0;
    pid_t pid = 0;
    uid_t uid = 0;
    // false: nothing published (a daemon without root nor a runtime directory of its own):
    // answers on port_id then count only from root or a holder of CAP_NET_ADMIN.
    bool published = true;
    friend bool operator==(const ControlEndpoint&, const ControlEndpoint&) = default;
};

namespace ctl {
// systemd's RuntimeDirectory=nflowd; created (root, 0755) by a daemon started by hand.
inline constexpr const char* kRuntimeDir = "/run/nflowd";
} // namespace ctl

// "DIR/control-NETNS-ID": NETNS is the inode of this process's network namespace, since the
// netlink channel is per namespace and /run is not. Throws std::system_error without /proc.
std::string endpoint_path(const std::string& dir, std::uint32_t control_id);

// The runtime directory cannot be used (not root's nor ours, not creatable): a daemon
// running unprivileged without systemd's RuntimeDirectory= goes on unpublished.
class EndpointUnavailable : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// The daemon's side: a lock held for its life (a second nflowd with the same control id in
// the same namespace sees it and stops) and the published file.
class EndpointPublisher {
  public:
    // Creates DIR (0755) if missing; takes PATH.lock. Throws EndpointUnavailable for a DIR it
    // cannot create or that is another user's or writable by group or others, and
    // std::runtime_error when the lock is held.
    EndpointPublisher(const std::string& dir, std::uint32_t control_id);
    // Removes the file (best effort: after --user it stays, and its released lock marks it
    // stale for nflowctl).
    ~EndpointPublisher();
    EndpointPublisher(const EndpointPublisher&) = delete;
    EndpointPublisher& operator=(const EndpointPublisher&) = delete;

    // Written to a temporary file and renamed over PATH: a reader sees all or nothing.
    void publish(const ControlEndpoint& endpoint);
    const std::string& path() const noexcept { return path_; }

  private:
    std::string path_;
    UniqueFd lock_;
    bool published_ = false;
};

// nflowctl's side: the endpoint the daemon of this namespace and control id published, after
// checking the file and its directory belong to root (or to the caller) and are writable by
// nobody else, and that the daemon still holds the lock; {control_id, unpublished} when
// there is no file. Throws ControlClientError (unreachable) saying what is wrong.
ControlEndpoint read_endpoint(const std::string& dir, std::uint32_t control_id);

// Whether process `pid` is root or holds CAP_NET_ADMIN (permitted), in our user namespace:
// what a daemon that published nothing must prove. False when it cannot be told.
bool privileged_process(pid_t pid);

// The file's text, "port_id N\npid N\nuid N\n", and back (false: malformed).
std::string format_endpoint(const ControlEndpoint& e);
bool parse_endpoint(const std::string& text, ControlEndpoint& out);

} // namespace nflowd
