// Internal to the control channel: one datagram read from a NETLINK_USERSOCK socket with
// SO_PASSCRED, with its sender and the credentials the kernel attached. Not public API.
#pragma once

#include <linux/netlink.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstring>
#include <optional>
#include <span>

namespace nflowd::ctl::wire {

struct Datagram {
    ssize_t length = -1;         // the real length (MSG_TRUNC), -1 with errno on failure
    sockaddr_nl from{};          // valid when has_sender
    bool has_sender = false;     // the address was a whole sockaddr_nl
    std::optional<ucred> sender; // SCM_CREDENTIALS: filled by the kernel, not the peer
};

// Reads one datagram into `buf` without blocking; a longer one is cut, its length kept.
inline Datagram receive_datagram(int fd, std::span<std::byte> buf) noexcept {
    Datagram d;
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    msghdr msg{};
    msg.msg_name = &d.from;
    msg.msg_namelen = sizeof d.from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    d.length = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
    if (d.length < 0) return d;
    d.has_sender = msg.msg_namelen == sizeof d.from;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
            c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
            ucred u{};
            std::memcpy(&u, CMSG_DATA(c), sizeof u);
            d.sender = u;
        }
    }
    return d;
}

} // namespace nflowd::ctl::wire
