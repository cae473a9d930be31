// The published endpoint of the control channel: one small file per network namespace and
// control id, written atomically by the daemon and trusted by nflowctl only if root's.
#include "nflowd/control_endpoint.hpp"

#include "nflowd/control_client.hpp"
#include "nflowd/number.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

namespace nflowd {

namespace {

using Kind = ControlClientError::Kind;

bool private_to_owner(const struct stat& st) noexcept {
    return (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

// The runtime directory: root's, the caller's, or given away by root (systemd's
// RuntimeDirectory= under DynamicUser=: only root can create entries in a parent that is
// root's and writable by no one else). Never writable by group or others.
bool trusted_dir(const std::string& dir, const struct stat& st) {
    if (!S_ISDIR(st.st_mode) || !private_to_owner(st)) return false;
    if (st.st_uid == 0 || st.st_uid == ::geteuid()) return true;
    const auto slash = dir.find_last_of('/');
    const std::string parent = slash == 0 ? "/" : dir.substr(0, slash);
    struct stat p {};
    return slash != std::string::npos && ::lstat(parent.c_str(), &p) == 0 && S_ISDIR(p.st_mode) &&
           p.st_uid == 0 && private_to_owner(p);
}

// The file: written by the directory's owner (or root, or the caller), writable by no one
// else; anything else could have been planted by another local user.
bool trusted_file(const struct stat& st, const struct stat& dir) noexcept {
    return S_ISREG(st.st_mode) && private_to_owner(st) &&
           (st.st_uid == 0 || st.st_uid == ::geteuid() || st.st_uid == dir.st_uid);
}

std::string errno_text(int e) {
    return std::strerror(e);
}

void make_dir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        throw EndpointUnavailable("control channel: cannot create " + dir + ": " +
                                  errno_text(errno));
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw EndpointUnavailable("control channel: " + dir + " is not a directory");
    if (st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        throw EndpointUnavailable("control channel: " + dir +
                                  " must belong to this user and be writable by no one else");
}

} // namespace

std::string endpoint_path(const std::string& dir, std::uint32_t control_id) {
    struct stat ns {};
    if (::stat("/proc/self/ns/net", &ns) != 0)
        throw std::system_error(errno, std::generic_category(), "/proc/self/ns/net");
    return dir + "/control-" + std::to_string(ns.st_ino) + "-" + std::to_string(control_id);
}

std::string format_endpoint(const ControlEndpoint& e) {
    return "port_id " + std::to_string(e.port_id) + "\npid " + std::to_string(e.pid) + "\nuid " +
           std::to_string(e.uid) + "\n";
}

bool parse_endpoint(const std::string& text, ControlEndpoint& out) {
    std::istringstream in(text);
    std::string key, value;
    int seen = 0;
    while (in >> key >> value) {
        const auto n = parse_unsigned(value, 1, 0x7fffffff);
        const auto uid = parse_unsigned(value, 0, 0xfffffffe);
        if (key == "port_id" && n)
            out.port_id = static_cast<std::uint32_t>(*n), seen |= 1;
        else if (key == "pid" && n)
            out.pid = static_cast<pid_t>(*n), seen |= 2;
        else if (key == "uid" && uid)
            out.uid = static_cast<uid_t>(*uid), seen |= 4;
        else
            return false;
    }
    return seen == 7;
}

EndpointPublisher::EndpointPublisher(const std::string& dir, std::uint32_t control_id) {
    make_dir(dir);
    path_ = endpoint_path(dir, control_id);
    const std::string lock = path_ + ".lock";
    lock_.reset(::open(lock.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
    // Readable by all (whatever the umask, UMask=0077 in the unit): nflowctl tests the lock.
    if (!lock_ || ::fchmod(lock_.get(), 0644) != 0)
        throw EndpointUnavailable("control channel: cannot open " + lock + ": " +
                                  errno_text(errno));
    // nflowctl takes the lock shared for an instant to see whether it is held: retry briefly.
    for (int attempt = 0; attempt < 40; ++attempt) {
        if (::flock(lock_.get(), LOCK_EX | LOCK_NB) == 0) return;
        if (errno != EWOULDBLOCK && errno != EINTR) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    throw std::runtime_error("control channel: another nflowd with --control_id " +
                             std::to_string(control_id) + " runs in this network namespace (" +
                             lock + " is locked)");
}

EndpointPublisher::~EndpointPublisher() {
    if (published_) ::unlink(path_.c_str());
}

void EndpointPublisher::publish(const ControlEndpoint& endpoint) {
    const std::string tmp = path_ + ".new";
    ::unlink(tmp.c_str());
    UniqueFd f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!f) throw std::system_error(errno, std::generic_category(), "control channel: " + tmp);
    const std::string text = format_endpoint(endpoint);
    if (::write(f.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::fchmod(f.get(), 0644) != 0 || ::rename(tmp.c_str(), path_.c_str()) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        throw std::system_error(e, std::generic_category(), "control channel: " + path_);
    }
    published_ = true;
}

namespace {

[[noreturn]] void unreachable(const std::string& message) {
    throw ControlClientError(Kind::unreachable, 0, message);
}

// Whether a daemon holds PATH.lock now: a shared lock we can take means nobody does.
bool daemon_holds_lock(const std::string& path) {
    UniqueFd f(::open((path + ".lock").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!f) return false;
    return ::flock(f.get(), LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
}

} // namespace

ControlEndpoint read_endpoint(const std::string& dir, std::uint32_t control_id) {
    const std::string path = endpoint_path(dir, control_id);
    const std::string not_running = "nflowd is not running (no daemon with control id " +
                                    std::to_string(control_id) + " in this network namespace: ";
    // No file at all: a daemon that could not publish (or none); the client then checks the
    // answers' sender instead (privileged_process).
    const ControlEndpoint unpublished{control_id, 0, 0, false};
    struct stat d {};
    if (::lstat(dir.c_str(), &d) != 0) return unpublished;
    if (!trusted_dir(dir, d))
        unreachable("not trusting " + dir + ": it must be root's and writable by no one else");
    UniqueFd f(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!f && errno == ENOENT) return unpublished;
    if (!f) unreachable("cannot open " + path + ": " + errno_text(errno));
    struct stat st {};
    if (::fstat(f.get(), &st) != 0 || !trusted_file(st, d) || st.st_size > 4096)
        unreachable("not trusting " + path + ": it must be root's and writable by no one else");
    std::string text(static_cast<std::size_t>(st.st_size), '\0');
    if (::read(f.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        unreachable("cannot read " + path + ": " + errno_text(errno));
    ControlEndpoint e;
    if (!parse_endpoint(text, e)) unreachable("malformed " + path);
    if (!daemon_holds_lock(path))
        unreachable(not_running + path + " was left by a daemon that stopped)");
    return e;
}

bool privileged_process(pid_t pid) {
    if (pid <= 0) return false;
    const std::string proc = "/proc/" + std::to_string(pid);
    // Capabilities count only in our user namespace: anyone may make one of their own.
    char mine[64] = {}, theirs[64] = {};
    if (::readlink("/proc/self/ns/user", mine, sizeof mine - 1) <= 0 ||
        ::readlink((proc + "/ns/user").c_str(), theirs, sizeof theirs - 1) <= 0 ||
        std::string_view(mine) != std::string_view(theirs))
        return false;
    std::ifstream status(proc + "/status");
    constexpr std::uint64_t kNetAdmin = std::uint64_t{1} << 12; // CAP_NET_ADMIN
    bool root = false;
    std::uint64_t permitted = 0;
    for (std::string line; std::getline(status, line);) {
        std::istringstream fields(line);
        std::string key;
        fields >> key;
        if (key == "Uid:") {
            uid_t real = 1;
            fields >> real;
            root = real == 0;
        } else if (key == "CapPrm:") {
            fields >> std::hex >> permitted;
        }
    }
    return root || (permitted & kNetAdmin) != 0;
}

} // namespace nflowd
