#include "nflowd/config.hpp"
#include "nflowd/privileges.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <pwd.h>

namespace nflowd {
namespace {

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

TEST(Privileges, SameUserIsNotAnError) {
    const auto* pw = ::getpwuid(::geteuid());
    ASSERT_NE(pw, nullptr);
    if (::getuid() != ::geteuid()) GTEST_SKIP() << "set-uid test binary";
    const auto before = ::getuid();
    // As root this really calls setgroups etc. with the same ids; as a user it is a no-op
    // when the groups already match, and may fail (EPERM on setgroups) otherwise.
    if (before == 0) {
        EXPECT_NO_THROW(drop_privileges(pw->pw_name));
    }
    EXPECT_EQ(::getuid(), before);
}

// The real drop, in a child so the test process keeps root.
TEST(Privileges, DropsToNobodyForGood) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!::getpwnam("nobody")) GTEST_SKIP() << "no user nobody";
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int code = 0;
        try {
            const auto line = drop_privileges("nobody");
            const auto* pw = ::getpwnam("nobody");
            uid_t r, e, s;
            ::getresuid(&r, &e, &s);
            if (r != pw->pw_uid || e != pw->pw_uid || s != pw->pw_uid) code = 2;
            if (::setuid(0) == 0) code = 3;
            if (::getgroups(0, nullptr) > 0) {
                gid_t g[64];
                const int n = ::getgroups(64, g);
                for (int i = 0; i < n; ++i)
                    if (g[i] == 0) code = 4;
            }
            if (line.find("running as user nobody") == std::string::npos) code = 5;
        } catch (...) {
            code = 1;
        }
        ::_exit(code);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "1 threw, 2 ids, 3 regained root, 4 group 0, 5 log";
}

} // namespace
} // namespace nflowd
