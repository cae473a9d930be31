// --user and the capability sets: checked in forked children against the kernel's own
// account (/proc/thread-self/status), so the test process keeps root.
#include "nflowd/config.hpp"
#include "nflowd/net_admin.hpp"
#include "nflowd/privileges.hpp"

#include <gtest/gtest.h>

#include <cap-ng.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

namespace nflowd {
namespace {

// What systemd does for AmbientCapabilities=CAP_NET_ADMIN with an ordinary User=: the uid
// of nobody, CAP_NET_ADMIN in every set but the bounding one, which keeps everything here.
void become_nobody_keeping_net_admin() {
    const auto* pw = ::getpwnam("nobody");
    if (!pw) throw std::runtime_error("no user nobody");
    if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || ::setgroups(0, nullptr) != 0 ||
        ::setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
        ::setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0)
        throw std::runtime_error("setup: cannot become nobody");
    capng_get_caps_process();
    capng_clear(CAPNG_SELECT_CAPS);
    capng_updatev(CAPNG_ADD,
                  static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_INHERITABLE),
                  CAP_NET_ADMIN, -1);
    if (capng_apply(CAPNG_SELECT_CAPS) != 0 ||
        ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) != 0)
        throw std::runtime_error("setup: cannot keep CAP_NET_ADMIN");
}

TEST(Privileges, LooksUpByNameAndByNumber) {
    const auto root = lookup_user("root");
    EXPECT_EQ(root.uid, 0u);
    EXPECT_EQ(root.gid, 0u);
    EXPECT_EQ(lookup_user("0").name, "root");
}

TEST(Privileges, UnknownUserIsAConfigErrorNamingTheOption) {
    try {
        lookup_user("no-such-user-nflowd");
        FAIL() << "no exception";
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.option(), "user");
        EXPECT_NE(std::string(e.what()).find("no such user"), std::string::npos) << e.what();
    }
    EXPECT_THROW(lookup_user(""), ConfigError);
}

TEST(Privileges, UserOptionIsValidatedWhenParsed) {
    Config c;
    EXPECT_THROW(apply_option(c, "user", "no-such-user-nflowd"), ConfigError);
    apply_option(c, "user", "root");
    EXPECT_EQ(option_value(c, "user"), "root");
}

// Runs `body` in a forked child (the test process keeps root and its capabilities) and
// returns what it reported: empty means it passed.
std::string in_child(const std::function<std::string()>& body) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return "pipe failed";
    const pid_t pid = ::fork();
    if (pid < 0) return "fork failed";
    if (pid == 0) {
        ::close(fds[0]);
        std::string why;
        try {
            why = body();
        } catch (const std::exception& e) {
            why = std::string("threw: ") + e.what();
        }
        [[maybe_unused]] auto n = ::write(fds[1], why.data(), why.size());
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string out;
    char buf[512];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, std::size_t(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status)) return "child died: " + out;
    return out;
}

// The kernel's own account of the calling thread, independent of libcap-ng.
std::string status_of_thread(const std::string& field) {
    std::ifstream f("/proc/thread-self/status");
    for (std::string line; std::getline(f, line);)
        if (line.rfind(field + ":", 0) == 0) {
            const auto v = line.find_first_not_of(" \t", field.size() + 1);
            return v == std::string::npos ? "" : line.substr(v);
        }
    return "(no " + field + ")";
}

// Every capability set empty and no_new_privs set, else what is not.
std::string unprivileged_thread() {
    std::string bad;
    for (const char* set : {"CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"})
        if (const auto v = status_of_thread(set); v != "0000000000000000")
            bad += std::string(set) + " " + v + "; ";
    if (const auto v = status_of_thread("NoNewPrivs"); v != "1") bad += "NoNewPrivs " + v;
    return bad;
}

const passwd* nobody() {
    return ::getpwnam("nobody");
}

TEST(Privileges, RootIsNotAnOrdinaryUser) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    const auto why = in_child([] {
        try {
            drop_privileges("root");
        } catch (const std::runtime_error& e) {
            return std::string(e.what()).find("is root") != std::string::npos
                       ? std::string()
                       : std::string("message: ") + e.what();
        }
        return std::string("--user root accepted");
    });
    EXPECT_EQ(why, "");
}

// The real drop, in a child so the test process keeps root.
TEST(Privileges, DropsToNobodyForGood) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!nobody()) GTEST_SKIP() << "no user nobody";
    const auto why = in_child([] {
        const auto line = drop_privileges("nobody");
        uid_t r, e, s;
        ::getresuid(&r, &e, &s);
        if (r != nobody()->pw_uid || e != nobody()->pw_uid || s != nobody()->pw_uid) return "ids";
        if (::setuid(0) == 0) return "regained root";
        gid_t g[64];
        const int n = ::getgroups(64, g);
        for (int i = 0; i < n; ++i)
            if (g[i] == 0) return "group 0";
        if (line.find("running as user nobody") == std::string::npos) return "log line";
        return "";
    });
    EXPECT_EQ(why, "");
}

TEST(Privileges, DropLeavesNoCapabilitySetAndNoNewPrivs) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!nobody()) GTEST_SKIP() << "no user nobody";
    const auto why = in_child([] {
        drop_privileges("nobody");
        std::string bad = unprivileged_thread();
        // A thread created afterwards inherits exactly that.
        std::thread([&bad] { bad += unprivileged_thread(); }).join();
        return bad;
    });
    EXPECT_EQ(why, "");
}

// Whoever started nflowd may have asked for capabilities to survive the uid change
// (SECBIT_KEEP_CAPS) and passed some on as ambient ones: they must go all the same.
TEST(Privileges, DropClearsCapabilitiesKeptAcrossTheSwitchAndAmbientOnes) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!nobody()) GTEST_SKIP() << "no user nobody";
    const auto why = in_child([] {
        capng_get_caps_process();
        capng_update(CAPNG_ADD, CAPNG_INHERITABLE, CAP_NET_ADMIN);
        if (capng_apply(CAPNG_SELECT_CAPS) != 0) return std::string("setup: inheritable");
        if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) != 0)
            return std::string("setup: ambient");
        if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return std::string("setup: keepcaps");
        drop_privileges("nobody");
        return unprivileged_thread();
    });
    EXPECT_EQ(why, "");
}

TEST(Privileges, SameUserIsNotAnErrorButTheCapabilitiesStillGo) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!nobody()) GTEST_SKIP() << "no user nobody";
    const auto why = in_child([] {
        become_nobody_keeping_net_admin();
        const auto line = drop_privileges("nobody");
        if (line.find("already running as user nobody") == std::string::npos)
            return "log line: " + line;
        // Not root any more: the bounding set cannot be cleared, no_new_privs covers it.
        std::string bad;
        for (const char* set : {"CapEff", "CapPrm", "CapInh", "CapAmb"})
            if (const auto v = status_of_thread(set); v != "0000000000000000")
                bad += std::string(set) + " " + v + "; ";
        if (status_of_thread("NoNewPrivs") != "1") bad += "NoNewPrivs 0";
        return bad;
    });
    EXPECT_EQ(why, "");
}

// As the systemd unit starts it: nobody with CAP_NET_ADMIN ambient (so permitted, effective
// and inheritable too). Only the permitted copy stays, and a NetAdminScope raises it in the
// thread that needs it, for as long as the scope lasts.
TEST(Privileges, WithoutUserOnlyAPermittedNetAdminIsKeptAndRaisedByAScope) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!nobody()) GTEST_SKIP() << "no user nobody";
    const auto why = in_child([] {
        become_nobody_keeping_net_admin();
        const auto line = restrict_capabilities();
        if (line.find("CAP_NET_ADMIN permitted") == std::string::npos) return "log: " + line;
        std::string bad;
        const auto expect = [&bad](const char* field, const std::string& want) {
            if (const auto v = status_of_thread(field); v != want)
                bad += std::string(field) + " " + v + " (want " + want + "); ";
        };
        const std::string none = "0000000000000000", net_admin = "0000000000001000";
        expect("CapEff", none);
        expect("CapPrm", net_admin);
        expect("CapInh", none);
        expect("CapAmb", none);
        expect("NoNewPrivs", "1");
        std::thread([&] {
            {
                const NetAdminScope scope;
                if (!scope.raised()) bad += "scope did not raise; ";
                expect("CapEff", net_admin);
            }
            expect("CapEff", none);
            expect("CapPrm", net_admin);
        }).join();
        expect("CapEff", none); // the scope was another thread's
        return bad;
    });
    EXPECT_EQ(why, "");
}

TEST(Privileges, ScopeDoesNothingWithoutThePermittedCapability) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!nobody()) GTEST_SKIP() << "no user nobody";
    const auto why = in_child([] {
        drop_privileges("nobody");
        const NetAdminScope scope;
        if (scope.raised()) return std::string("raised after --user");
        return unprivileged_thread();
    });
    EXPECT_EQ(why, "");
}

} // namespace
} // namespace nflowd
