// The daemon's control channel at start-up: the lock of its control id, the netlink socket
// (its own port id, or the kernel's when squatted) and the published endpoint for nflowctl.
#pragma once

#include "nflowd/config.hpp"
#include "nflowd/control_endpoint.hpp"
#include "nflowd/control_server.hpp"
#include "nflowd/log.hpp"

#include <memory>

namespace nflowd {

struct DaemonControl {
    // Declared first, destroyed last: the file goes only once nobody answers for it.
    std::unique_ptr<EndpointPublisher> endpoint;
    std::unique_ptr<ControlServer> server;
};

// Before --user drops root (the runtime directory is root's). Throws std::runtime_error when
// another nflowd holds this control id in this network namespace, or the directory is unsafe.
DaemonControl open_daemon_control(const Config& config, Logger& log);

} // namespace nflowd
