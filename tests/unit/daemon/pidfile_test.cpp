// --pidfile against what a local user could plant at its path: links, other files, stale and
// live PIDs, a file swapped after start. Every case checks what must stay untouched.
#include "nflowd/pidfile.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace nflowd {
namespace {

namespace fs = std::filesystem;

class PidfileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "nflowd-pidfile-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    static std::string read(const std::string& p) {
        std::ifstream f(p);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }
    static void write(const std::string& p, const std::string& text) { std::ofstream(p) << text; }
    // A file with an old mtime, so that any write to it shows.
    static struct stat precious(const std::string& p) {
        write(p, "precious\n");
        const timespec old[2] = {{946684800, 0}, {946684800, 0}};
        ::utimensat(AT_FDCWD, p.c_str(), old, 0);
        struct stat st {};
        ::stat(p.c_str(), &st);
        return st;
    }
    static void expect_untouched(const std::string& p, const struct stat& before) {
        struct stat st {};
        ASSERT_EQ(::stat(p.c_str(), &st), 0) << p;
        EXPECT_EQ(read(p), "precious\n") << p;
        EXPECT_EQ(st.st_mtim.tv_sec, before.st_mtim.tv_sec) << p;
        EXPECT_EQ(st.st_size, before.st_size) << p;
    }
    static std::string refusal(const std::string& p) {
        try {
            Pidfile f(p);
        } catch (const std::runtime_error& e) {
            return e.what();
        }
        return "(not refused)";
    }

    fs::path dir_;
};

const std::string kOwnPid = std::to_string(::getpid()) + "\n";

TEST_F(PidfileTest, WritesThePidAndRemovesItAtExit) {
    const auto p = path("nflowd.pid");
    {
        Pidfile f(p);
        EXPECT_EQ(read(p), kOwnPid);
        EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(p)));
    }
    EXPECT_FALSE(fs::exists(fs::symlink_status(p)));
}

TEST_F(PidfileTest, SymlinkToAFileIsRefusedAndTheTargetUntouched) {
    const auto target = path("target");
    const auto before = precious(target);
    const auto p = path("nflowd.pid");
    fs::create_symlink(target, p);
    EXPECT_NE(refusal(p).find("is a symbolic link"), std::string::npos) << refusal(p);
    expect_untouched(target, before);
    EXPECT_TRUE(fs::is_symlink(p));
}

TEST_F(PidfileTest, DanglingSymlinkIsRefusedAndNothingCreatedThroughIt) {
    const auto p = path("nflowd.pid");
    fs::create_symlink(path("created-through-the-link"), p);
    EXPECT_NE(refusal(p).find("is a symbolic link"), std::string::npos) << refusal(p);
    EXPECT_FALSE(fs::exists(path("created-through-the-link")));
}

TEST_F(PidfileTest, RegularFileThatIsNoPidfileIsRefusedUntouched) {
    const auto p = path("nflowd.conf");
    const auto before = precious(p);
    EXPECT_NE(refusal(p).find("does not hold a PID"), std::string::npos) << refusal(p);
    expect_untouched(p, before);
}

TEST_F(PidfileTest, NonRegularFilesAreRefused) {
    const auto fifo = path("fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
    EXPECT_NE(refusal(fifo).find("not a regular file"), std::string::npos) << refusal(fifo);
    fs::create_directory(path("dir"));
    EXPECT_NE(refusal(path("dir")).find("not a regular file"), std::string::npos);
    EXPECT_NE(refusal(path("missing/nflowd.pid")).find("cannot open its directory"),
              std::string::npos);
}

TEST_F(PidfileTest, StalePidfileIsReplacedByANewFile) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) ::_exit(0);
    ASSERT_EQ(::waitpid(child, nullptr, 0), child); // reaped: that PID now names nothing
    const auto p = path("nflowd.pid");
    write(p, std::to_string(child) + "\n");
    struct stat old {};
    ::stat(p.c_str(), &old);
    // Held open so that the old inode number cannot come back for the new file.
    const int hold = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    {
        Pidfile f(p);
        EXPECT_EQ(read(p), kOwnPid);
        struct stat now {};
        ::stat(p.c_str(), &now);
        EXPECT_NE(now.st_ino, old.st_ino) << "replaced, not rewritten in place";
    }
    ::close(hold);
    EXPECT_FALSE(fs::exists(p));
    write(p, ""); // a start cut short between creating and writing it
    Pidfile again(p);
    EXPECT_EQ(read(p), kOwnPid);
}

TEST_F(PidfileTest, PidOfARunningNflowdIsRefused) {
    int pipefd[2];
    ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // Named like the daemon, alive until the test closes its end of the pipe.
        ::prctl(PR_SET_NAME, "nflowd", 0, 0, 0);
        ::close(pipefd[1]);
        char c;
        [[maybe_unused]] auto n = ::read(pipefd[0], &c, 1);
        ::_exit(0);
    }
    ::close(pipefd[0]);
    const std::string comm = "/proc/" + std::to_string(child) + "/comm";
    for (int i = 0; i < 200 && read(comm) != "nflowd\n"; ++i) ::usleep(5000);
    ASSERT_EQ(read(comm), "nflowd\n");
    const auto p = path("nflowd.pid");
    const std::string text = std::to_string(child) + "\n";
    write(p, text);
    EXPECT_EQ(refusal(p),
              "--pidfile: " + p + " names a running nflowd (PID " + std::to_string(child) + ")");
    EXPECT_EQ(read(p), text);
    ::close(pipefd[1]);
    ::waitpid(child, nullptr, 0);
}

TEST_F(PidfileTest, AFileThatIsNoLongerOursIsLeftAtExit) {
    const auto p = path("nflowd.pid");
    {
        Pidfile f(p);
        fs::remove(p);
        write(p, "4242\n"); // someone else's now
    }
    EXPECT_EQ(read(p), "4242\n");
    fs::remove(p);
    const auto target = path("target");
    const auto before = precious(target);
    {
        Pidfile f(p);
        fs::remove(p);
        fs::create_symlink(target, p);
    }
    EXPECT_TRUE(fs::is_symlink(p));
    expect_untouched(target, before);
}

} // namespace
} // namespace nflowd
