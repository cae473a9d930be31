#include "nflowd/daemon_control.hpp"

#include "nflowd/privileges.hpp"

#include <unistd.h>

namespace nflowd {

DaemonControl open_daemon_control(const Config& config, Logger& log) {
    DaemonControl c;
    // The lock first: a second nflowd with the same control id stops here, before it binds
    // anything or touches the first one's file.
    try {
        c.endpoint = std::make_unique<EndpointPublisher>(ctl::kRuntimeDir, config.control_id);
    } catch (const EndpointUnavailable& e) {
        // Root can always publish: a directory it cannot use is an attack or a mistake.
        if (::geteuid() == 0) throw;
        log.log(LogLevel::notice, std::string(e.what()) +
                                      "; not published: nflowctl finds this daemon at port id " +
                                      std::to_string(config.control_id) +
                                      " and believes it because it holds CAP_NET_ADMIN (systemd's "
                                      "RuntimeDirectory=nflowd lets it publish)");
    }
    ControlServerConfig cc;
    cc.port_id = config.control_id;
    // A kernel-assigned port id is of use only if nflowctl can find it.
    cc.fallback_port = c.endpoint != nullptr;
    if (config.control_group) cc.write_group = static_cast<gid_t>(*config.control_group);
    cc.log = &log;
    c.server = std::make_unique<ControlServer>(cc);
    if (c.server->took_fallback() && c.endpoint)
        log.log(LogLevel::notice,
                "control channel: netlink port id " + std::to_string(config.control_id) +
                    " is held by another process; using " + std::to_string(c.server->port_id()) +
                    " (published in " + c.endpoint->path() + ")");
    // The uid the kernel will attach to replies: --user's, once privileges are dropped.
    const uid_t uid = config.user.empty() ? ::getuid() : lookup_user(config.user).uid;
    if (c.endpoint) c.endpoint->publish({c.server->port_id(), ::getpid(), uid});
    return c;
}

} // namespace nflowd
