// Privileges: --user gives up root for an ordinary user's ids and every capability, checked;
// without it, an unprivileged daemon keeps CAP_NET_ADMIN permitted only (see net_admin.hpp).
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

// Clears the bounding set when it may (CAP_SETPCAP, i.e. started as root), then setgroups,
// setgid, setuid, then empties every capability set (effective, permitted, inheritable,
// ambient) and sets no_new_privs. Verifies that real, effective and saved ids all changed,
// that setuid(0) now fails, that no set holds anything (the bounding set too when it was
// cleared; otherwise no_new_privs keeps exec from granting what it holds) and that
// no_new_privs is 1. Already being that user (holding no group it lacks) is not an error: the
// capabilities still go. Call it before any thread starts: capability sets and no_new_privs
// belong to the calling thread and are inherited by the threads it creates afterwards.
// Throws std::runtime_error naming the step that failed; the caller must not go on running
// then. Returns a line for the log ("running as user nflowd (uid 101, gid 101)").
std::string drop_privileges(const std::string& user);

// Without --user, before any thread starts. As root (euid 0) nothing changes: uid 0 owns the
// system whatever its capabilities, so a root daemon is documented as root (use --user or the
// systemd unit). Otherwise (the systemd unit: an ordinary uid given CAP_NET_ADMIN as an
// ambient capability) keeps CAP_NET_ADMIN in the permitted set only, where NetAdminScope
// raises it around the calls that need it; drops every other capability, the inheritable and
// ambient sets, and sets no_new_privs. Throws std::runtime_error if that fails. Returns a
// line for the log.
std::string restrict_capabilities();

// What the calling thread's capability sets still hold, as "permitted: cap_net_admin; ..."
// (libcap-ng's names); empty when every set checked is empty. The bounding set is checked
// only if `bounding`.
std::string held_capabilities(bool bounding);

} // namespace nflowd
