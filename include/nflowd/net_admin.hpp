// CAP_NET_ADMIN only around the calls that need it: a daemon holding it without being root
// keeps it permitted but not effective, and a NetAdminScope raises it for one call.
#pragma once

namespace nflowd {

// Raises CAP_NET_ADMIN into the calling thread's effective set for the scope's lifetime when
// it is permitted but not effective (capabilities are per thread), and lowers it again at the
// end. Does nothing when it is already effective (root) or not permitted at all (after
// --user): the call then runs as it would have and fails with EPERM where it needs the
// capability, which every caller already handles. If it cannot be lowered again the process
// aborts: a thread must never go on with it effective.
class NetAdminScope {
  public:
    NetAdminScope() noexcept;
    ~NetAdminScope();
    NetAdminScope(const NetAdminScope&) = delete;
    NetAdminScope& operator=(const NetAdminScope&) = delete;

    bool raised() const noexcept { return raised_; }

  private:
    bool raised_ = false;
};

} // namespace nflowd
