#include "nflowd/net_admin.hpp"

#include <cap-ng.h>
#include <linux/capability.h>

#include <cstdio>
#include <cstdlib>

namespace nflowd {

// libcap-ng keeps its working copy of the sets per thread, and capset changes only the
// calling thread, so a scope in one thread never touches another's sets.
NetAdminScope::NetAdminScope() noexcept {
    if (capng_get_caps_process() != 0) return;
    if (capng_have_capability(CAPNG_EFFECTIVE, CAP_NET_ADMIN)) return;
    if (!capng_have_capability(CAPNG_PERMITTED, CAP_NET_ADMIN)) return;
    if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE, CAP_NET_ADMIN) != 0) return;
    raised_ = capng_apply(CAPNG_SELECT_CAPS) == 0;
}

NetAdminScope::~NetAdminScope() {
    if (!raised_) return;
    // Lowering a capability is always allowed, so a failure here means something is badly
    // wrong; stopping is better than running on with CAP_NET_ADMIN effective.
    if (capng_get_caps_process() != 0 ||
        capng_update(CAPNG_DROP, CAPNG_EFFECTIVE, CAP_NET_ADMIN) != 0 ||
        capng_apply(CAPNG_SELECT_CAPS) != 0) {
        std::fputs("nflowd: cannot lower CAP_NET_ADMIN from the effective set\n", stderr);
        std::abort();
    }
}

} // namespace nflowd
