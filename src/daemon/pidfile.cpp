#include "nflowd/pidfile.hpp"

#include "nflowd/number.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace nflowd {

namespace {

// Create, find a stale file, replace it: a second collision means someone keeps re-creating
// the name, and start-up stops rather than loop.
constexpr int kCreateAttempts = 3;
// A pidfile is a PID and a newline; anything longer is some other file.
constexpr std::size_t kMaxPidfileBytes = 32;

[[noreturn]] void fail(const std::string& path, const std::string& why) {
    throw std::runtime_error("--pidfile: " + path + ": " + why);
}

std::string errno_text(const char* what, int err) {
    return std::string(what) + ": " + std::strerror(err);
}

bool process_is_nflowd(long pid) {
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    return comm && std::getline(comm, name) && name == "nflowd";
}

// The PID in a pidfile's text: 0 for an empty file (a start cut short between creating and
// writing it), nullopt for text that is not a PID at all.
std::optional<long> pid_in(std::string_view text) {
    if (text.empty()) return 0;
    if (text.back() == '\n') text.remove_suffix(1);
    const auto pid = parse_unsigned(text, 1, std::numeric_limits<pid_t>::max());
    if (!pid) return std::nullopt;
    return static_cast<long>(*pid);
}

} // namespace

Pidfile::Pidfile(const std::string& path) : path_(path) {
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash ? slash : 1);
    name_ = slash == std::string::npos ? path : path.substr(slash + 1);
    if (name_.empty() || name_ == "." || name_ == "..") fail(path_, "not a file name");
    // Links in the directory part are the administrator's choice; the file itself is only
    // ever reached relative to this descriptor, and never through a link.
    dir_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_) fail(path_, errno_text("cannot open its directory", errno));
    for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
        // O_EXCL: a name that exists (a link included, wherever it points) is never opened
        // for writing, so nothing nflowd did not create is truncated or written through.
        file_.reset(::openat(dir_.get(), name_.c_str(),
                             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (file_) {
            write_pid();
            return;
        }
        if (errno != EEXIST) fail(path_, errno_text("cannot create", errno));
        replace_stale();
    }
    fail(path_, "re-created by another process while being replaced");
}

Pidfile::~Pidfile() {
    remove_if_ours();
}

void Pidfile::write_pid() {
    struct stat st {};
    const std::string text = std::to_string(::getpid()) + "\n";
    int err = 0;
    if (::fstat(file_.get(), &st) != 0) {
        err = errno;
    } else {
        dev_ = st.st_dev;
        ino_ = st.st_ino;
        const auto n = ::write(file_.get(), text.data(), text.size());
        if (n != static_cast<ssize_t>(text.size())) err = n < 0 ? errno : EIO;
    }
    if (err == 0) return;
    remove_if_ours();
    fail(path_, errno_text("cannot write", err));
}

// Only looks: the existing file is opened read-only, without following a link, and never
// written; what is replaced is only ever unlinked, which removes the name and not the file
// a link points to.
void Pidfile::replace_stale() {
    struct stat st {};
    if (::fstatat(dir_.get(), name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return; // gone meanwhile: create it again
        fail(path_, errno_text("cannot inspect the existing file", errno));
    }
    if (S_ISLNK(st.st_mode))
        fail(path_, "is a symbolic link; refusing to follow or replace it (a pidfile belongs "
                    "in a directory only root may write, such as /run)");
    if (!S_ISREG(st.st_mode)) fail(path_, "exists and is not a regular file");
    UniqueFd old(::openat(dir_.get(), name_.c_str(),
                          O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    struct stat now {};
    if (!old || ::fstat(old.get(), &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev)
        fail(path_, "changed while being checked");
    std::array<char, kMaxPidfileBytes + 1> buf{};
    const auto n = ::read(old.get(), buf.data(), buf.size());
    if (n < 0) fail(path_, errno_text("cannot read the existing file", errno));
    const auto pid = pid_in(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    if (!pid) fail(path_, "exists and does not hold a PID; not replacing it");
    if (*pid > 0 && *pid != ::getpid() && process_is_nflowd(*pid))
        throw std::runtime_error("--pidfile: " + path_ + " names a running nflowd (PID " +
                                 std::to_string(*pid) + ")");
    if (::unlinkat(dir_.get(), name_.c_str(), 0) != 0 && errno != ENOENT)
        fail(path_, errno_text("cannot remove the stale file", errno));
}

void Pidfile::remove_if_ours() noexcept {
    if (!file_) return;
    // Whoever may write the directory may have replaced the file: theirs is left alone.
    // The descriptor held open until now keeps the inode number from being reused.
    struct stat st {};
    if (::fstatat(dir_.get(), name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode) && st.st_dev == dev_ && st.st_ino == ino_)
        ::unlinkat(dir_.get(), name_.c_str(), 0);
    file_.reset();
}

} // namespace nflowd
