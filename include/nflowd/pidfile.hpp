// --pidfile: the daemon's PID in a file it creates itself, never through a link nor into a
// file it did not create (others may write the directory); removed at exit if still its own.
#pragma once

#include "nflowd/unique_fd.hpp"

#include <sys/types.h>

#include <string>

namespace nflowd {

class Pidfile {
  public:
    // Creates PATH (O_CREAT|O_EXCL|O_NOFOLLOW, relative to its directory opened once) holding
    // this process's PID. An existing PATH is only ever inspected, never written: a symlink,
    // a non-regular file or a file that does not hold a PID is refused; a PID of a running
    // nflowd is refused; anything else (a dead nflowd's, an empty file) is unlinked and the
    // file created afresh. Throws std::runtime_error("--pidfile: ...") naming the reason.
    explicit Pidfile(const std::string& path);
    // Unlinks PATH only if it is still the file this object created (same device and
    // inode, the file being held open so the inode cannot be reused). Errors are ignored:
    // after --user the directory may no longer be writable.
    ~Pidfile();
    Pidfile(const Pidfile&) = delete;
    Pidfile& operator=(const Pidfile&) = delete;

    const std::string& path() const noexcept { return path_; }

  private:
    void write_pid();
    void replace_stale(); // refuses (throws) or unlinks what is at PATH
    void remove_if_ours() noexcept;

    std::string path_;
    std::string name_; // the last component, relative to dir_
    UniqueFd dir_;
    UniqueFd file_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

} // namespace nflowd
