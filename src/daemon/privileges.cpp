#include "nflowd/privileges.hpp"

#include "nflowd/number.hpp"

#include "nflowd/config.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <system_error>

namespace nflowd {

namespace {

[[noreturn]] void fail(const std::string& step, int err) {
    throw std::runtime_error("--user: " + step + ": " + std::strerror(err));
}

std::vector<gid_t> sorted(std::vector<gid_t> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

std::vector<gid_t> current_groups() {
    const int n = ::getgroups(0, nullptr);
    if (n < 0) fail("getgroups", errno);
    std::vector<gid_t> v(static_cast<std::size_t>(n));
    if (n > 0 && ::getgroups(n, v.data()) < 0) fail("getgroups", errno);
    return v;
}

} // namespace

Identity lookup_user(const std::string& user) {
    if (user.empty()) throw ConfigError("user", "needs a user name");
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    int err = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
    if (!found) {
        // A numeric uid, by the strict rule every number follows.
        if (const auto uid = parse_unsigned(user, 0, std::numeric_limits<uid_t>::max()))
            err = ::getpwuid_r(static_cast<uid_t>(*uid), &pw, buf.data(), buf.size(), &found);
    }
    if (!found)
        throw ConfigError("user", err ? std::string("cannot look up \"") + user +
                                            "\": " + std::strerror(err)
                                      : "no such user \"" + user + "\"");
    Identity id;
    id.name = pw.pw_name;
    id.uid = pw.pw_uid;
    id.gid = pw.pw_gid;
    int n = 64;
    for (;;) {
        id.groups.resize(static_cast<std::size_t>(n));
        const int want = n;
        if (::getgrouplist(id.name.c_str(), id.gid, id.groups.data(), &n) >= 0) {
            id.groups.resize(static_cast<std::size_t>(n));
            break;
        }
        if (n <= want) n = want * 2; // some NSS modules do not report the size needed
    }
    return id;
}

std::string drop_privileges(const std::string& user) {
    const Identity id = lookup_user(user);
    const std::string who = "user " + id.name + " (uid " + std::to_string(id.uid) + ", gid " +
                            std::to_string(id.gid) + ")";
    uid_t ruid = 0, euid = 0, suid = 0;
    gid_t rgid = 0, egid = 0, sgid = 0;
    const auto ids_are = [&](uid_t u, gid_t g) {
        return ::getresuid(&ruid, &euid, &suid) == 0 && ::getresgid(&rgid, &egid, &sgid) == 0 &&
               ruid == u && euid == u && suid == u && rgid == g && egid == g && sgid == g;
    };
    // Already that user (started so by systemd, say): fewer groups than the user's is no
    // privilege, so only a group the user does not have would need changing.
    const auto allowed = sorted(id.groups);
    const auto holds_only_allowed = [&] {
        for (const auto g : current_groups())
            if (g != id.gid && !std::binary_search(allowed.begin(), allowed.end(), g)) return false;
        return true;
    };
    if (ids_are(id.uid, id.gid) && holds_only_allowed()) return "already running as " + who;

    // Groups first, then the gid, the uid last: after setuid nothing else may change.
    if (::setgroups(id.groups.size(), id.groups.data()) != 0) fail("setgroups", errno);
    if (::setresgid(id.gid, id.gid, id.gid) != 0)
        fail("setgid(" + std::to_string(id.gid) + ")", errno);
    if (::setresuid(id.uid, id.uid, id.uid) != 0)
        fail("setuid(" + std::to_string(id.uid) + ")", errno);

    // Verify it stuck: every id, the groups, and no way back to root.
    if (!ids_are(id.uid, id.gid)) throw std::runtime_error("--user: ids did not change to " + who);
    if (sorted(current_groups()) != sorted(id.groups))
        throw std::runtime_error("--user: supplementary groups did not change for " + who);
    if (id.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0))
        throw std::runtime_error("--user: could regain root after switching to " + who);
    if (id.gid != 0 && ::setgid(0) == 0)
        throw std::runtime_error("--user: could regain group root after switching to " + who);
    return "running as " + who;
}

} // namespace nflowd
