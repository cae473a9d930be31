// --user: once the NFLOG groups and the control channel are bound, the daemon gives up root
// for an ordinary user's uid, gid and groups, and checks that it cannot get root back.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace nflowd {

struct Identity {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups; // supplementary groups, as /etc/group lists them
};

// USER is a name or a numeric uid. Throws ConfigError("user", ...) if there is no such user.
Identity lookup_user(const std::string& user);

// setgroups, setgid, setuid for every thread of the process (glibc applies them to all
// threads), then verifies that real, effective and saved ids all changed and that setuid(0)
// now fails. Already being that user (holding no group it lacks) is not an error. Throws
// std::runtime_error naming the step that failed; the caller must not go on running as root then.
// Returns a line for the log ("running as user nflowd (uid 101, gid 101)").
std::string drop_privileges(const std::string& user);

} // namespace nflowd
