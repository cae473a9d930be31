#include "nflowd/privileges.hpp"

#include "nflowd/number.hpp"

#include "nflowd/config.hpp"

#include <cap-ng.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <system_error>

namespace nflowd {

namespace {

[[noreturn]] void fail_step(const std::string& prefix, const std::string& step, int err) {
    throw std::runtime_error(prefix + ": " + step + ": " + std::strerror(err));
}

[[noreturn]] void fail(const std::string& step, int err) {
    fail_step("--user", step, err);
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

// The capability numbers a 64-bit kernel mask can hold; libcap-ng reports those the running
// kernel does not know as not held.
constexpr unsigned kMaxCapabilities = 64;
constexpr auto kCapsAndAmbient =
    static_cast<capng_select_t>(CAPNG_SELECT_CAPS | CAPNG_SELECT_AMBIENT);

bool ids_are(uid_t u, gid_t g) {
    uid_t ruid = 0, euid = 0, suid = 0;
    gid_t rgid = 0, egid = 0, sgid = 0;
    return ::getresuid(&ruid, &euid, &suid) == 0 && ::getresgid(&rgid, &egid, &sgid) == 0 &&
           ruid == u && euid == u && suid == u && rgid == g && egid == g && sgid == g;
}

bool holds_only_allowed(const Identity& id) {
    const auto allowed = sorted(id.groups);
    for (const auto g : current_groups())
        if (g != id.gid && !std::binary_search(allowed.begin(), allowed.end(), g)) return false;
    return true;
}

// libcap-ng works on a per-thread copy of the sets: every change starts from the kernel's.
void load_capabilities(const std::string& step) {
    if (capng_get_caps_process() != 0)
        throw std::runtime_error(step + ": cannot read the capability sets");
}

// Only with CAP_SETPCAP (started as root). Returns whether the bounding set is now empty.
bool clear_bounding_set() {
    load_capabilities("--user");
    if (capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP) != 1) return false;
    capng_clear(CAPNG_SELECT_BOUNDS);
    if (capng_apply(CAPNG_SELECT_BOUNDS) != 0)
        throw std::runtime_error("--user: cannot clear the capability bounding set");
    return true;
}

// Groups first, then the gid, the uid last: after setuid nothing else may change.
void switch_ids(const Identity& id, const std::string& who) {
    if (::setgroups(id.groups.size(), id.groups.data()) != 0) fail("setgroups", errno);
    if (::setresgid(id.gid, id.gid, id.gid) != 0)
        fail("setgid(" + std::to_string(id.gid) + ")", errno);
    if (::setresuid(id.uid, id.uid, id.uid) != 0)
        fail("setuid(" + std::to_string(id.uid) + ")", errno);
    if (sorted(current_groups()) != sorted(id.groups))
        throw std::runtime_error("--user: supplementary groups did not change for " + who);
}

// Leaving root clears the permitted and effective sets, but not with SECBIT_KEEP_CAPS set
// by whoever started us, nor the inheritable set: empty them all explicitly.
void clear_capability_sets(const std::string& step) {
    load_capabilities(step);
    capng_clear(kCapsAndAmbient);
    if (capng_apply(kCapsAndAmbient) != 0)
        throw std::runtime_error(step + ": cannot clear the capability sets");
}

// No exec can give back what was dropped: set-user-ID bits and file capabilities no longer
// apply to this thread or the threads it creates.
void set_no_new_privs(const std::string& step) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        fail_step(step, "PR_SET_NO_NEW_PRIVS", errno);
    if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        throw std::runtime_error(step + ": no_new_privs did not stay set");
}

void verify_unprivileged(const Identity& id, const std::string& who, bool bounding) {
    if (!ids_are(id.uid, id.gid)) throw std::runtime_error("--user: ids did not change to " + who);
    if (::setuid(0) == 0 || ::seteuid(0) == 0)
        throw std::runtime_error("--user: could regain root after switching to " + who);
    if (id.gid != 0 && ::setgid(0) == 0)
        throw std::runtime_error("--user: could regain group root after switching to " + who);
    if (const auto held = held_capabilities(bounding); !held.empty())
        throw std::runtime_error("--user: capabilities left after switching to " + who + " (" +
                                 held + "); refusing to run with them");
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
    // uid 0 without capabilities still owns the system's files: not what --user promises.
    if (id.uid == 0) throw std::runtime_error("--user: " + who + " is root, not an ordinary user");
    // Before the switch: dropping from the bounding set needs CAP_SETPCAP, which goes with it.
    const bool bounding = clear_bounding_set();
    // Already that user (started so by systemd, say): fewer groups than the user's is no
    // privilege, so only a group the user does not have would need changing.
    const bool already = ids_are(id.uid, id.gid) && holds_only_allowed(id);
    if (!already) switch_ids(id, who);
    clear_capability_sets("--user");
    set_no_new_privs("--user");
    verify_unprivileged(id, who, bounding);
    return (already ? "already running as " : "running as ") + who;
}

std::string restrict_capabilities() {
    if (::geteuid() == 0)
        return "running as root with every capability (--user, or the systemd unit, runs "
               "without them)";
    load_capabilities("capabilities");
    const bool net_admin = capng_have_capability(CAPNG_PERMITTED, CAP_NET_ADMIN) == 1;
    // Dropping is always allowed; only the permitted copy of CAP_NET_ADMIN is kept, for
    // NetAdminScope to raise. Threads created from now on inherit exactly this.
    capng_clear(kCapsAndAmbient);
    if (net_admin) capng_update(CAPNG_ADD, CAPNG_PERMITTED, CAP_NET_ADMIN);
    if (capng_apply(kCapsAndAmbient) != 0)
        throw std::runtime_error("capabilities: cannot restrict the capability sets");
    set_no_new_privs("capabilities");
    const std::string held = held_capabilities(false);
    if (held != (net_admin ? "permitted: net_admin" : ""))
        throw std::runtime_error("capabilities: still held after restricting them: " + held);
    return net_admin ? "capabilities: CAP_NET_ADMIN permitted, effective only while binding "
                       "groups and forcing socket buffers"
                     : "capabilities: none";
}

std::string held_capabilities(bool bounding) {
    if (capng_get_caps_process() != 0) return "(cannot read the capability sets)";
    struct Set {
        capng_type_t type;
        const char* name;
    };
    static constexpr Set kSets[] = {{CAPNG_EFFECTIVE, "effective"},
                                    {CAPNG_PERMITTED, "permitted"},
                                    {CAPNG_INHERITABLE, "inheritable"},
                                    {CAPNG_AMBIENT, "ambient"},
                                    {CAPNG_BOUNDING_SET, "bounding"}};
    std::string out;
    for (const auto& set : kSets) {
        if (set.type == CAPNG_BOUNDING_SET && !bounding) continue;
        std::string caps;
        for (unsigned cap = 0; cap < kMaxCapabilities; ++cap) {
            if (capng_have_capability(set.type, cap) != 1) continue;
            const char* name = capng_capability_to_name(cap);
            caps += (caps.empty() ? "" : ",") + (name ? std::string(name) : std::to_string(cap));
        }
        if (!caps.empty()) out += (out.empty() ? "" : "; ") + std::string(set.name) + ": " + caps;
    }
    return out;
}

} // namespace nflowd
