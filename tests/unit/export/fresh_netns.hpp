// Test helper: runs code in a new, empty network namespace, where "no route yet" and "the
// route appears" are one ioctl each (lo down at first: no route at all; lo up: 127.0.0.0/8).
#pragma once

#include "nflowd/unique_fd.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

namespace nflowd::test {

// A namespace belongs to a thread, and a socket to the namespace of the thread that made
// it; so `body` runs on a thread of its own, and the test process's namespace never
// changes. False, and `body` not run, when namespaces are not allowed (not root): skip.
inline bool in_fresh_netns(const std::function<void()>& body) {
    bool entered = false;
    std::thread t([&] {
        if (::unshare(CLONE_NEWNET) != 0) return;
        entered = true;
        body();
    });
    t.join();
    return entered;
}

// lo up or down in the calling thread's namespace; its local routes come and go with it.
inline void set_loopback(bool up) {
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (!fd || ::ioctl(fd.get(), SIOCGIFFLAGS, &ifr) != 0)
        throw std::runtime_error("SIOCGIFFLAGS lo");
    ifr.ifr_flags = static_cast<short>(up ? (ifr.ifr_flags | IFF_UP) : (ifr.ifr_flags & ~IFF_UP));
    if (::ioctl(fd.get(), SIOCSIFFLAGS, &ifr) != 0) throw std::runtime_error("SIOCSIFFLAGS lo");
}

// IPv4 address `addr` as alias `label` of lo ("lo:9"), lo up: the address and its route
// appear. lo down keeps delivering to addresses that stay; removing one takes its route.
inline void add_lo_alias(const char* label, const char* addr) {
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, label, IFNAMSIZ - 1);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    if (::inet_pton(AF_INET, addr, &sa.sin_addr) != 1) throw std::runtime_error(addr);
    std::memcpy(&ifr.ifr_addr, &sa, sizeof sa);
    if (!fd || ::ioctl(fd.get(), SIOCSIFADDR, &ifr) != 0)
        throw std::runtime_error(std::string("SIOCSIFADDR ") + label);
}

// Removes the alias `label`: an IPv4 alias taken down is deleted with its routes.
inline void remove_lo_alias(const char* label) {
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, label, IFNAMSIZ - 1);
    if (!fd || ::ioctl(fd.get(), SIOCGIFFLAGS, &ifr) != 0)
        throw std::runtime_error(std::string("SIOCGIFFLAGS ") + label);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags & ~IFF_UP);
    if (::ioctl(fd.get(), SIOCSIFFLAGS, &ifr) != 0)
        throw std::runtime_error(std::string("SIOCSIFFLAGS ") + label);
}

} // namespace nflowd::test
