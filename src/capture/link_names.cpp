// The NETLINK_ROUTE socket behind LinkNames: subscription, dumps, receive and publishing.
#include "nflowd/link_names.hpp"

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <string>
#include <system_error>

namespace nflowd {

namespace {

// A link message is a few KiB (no VF details are asked for); the kernel fills dump datagrams
// up to the largest buffer the reader has offered, at most 32 KiB. MSG_TRUNC tells if not.
constexpr std::size_t kRecvBufferSize = 64 * 1024;
constexpr Nanos kFirstDumpTimeout = 2 * kNanosPerSecond;

[[noreturn]] void throw_errno(int err, const char* what) {
    throw std::system_error(err, std::generic_category(), std::string("rtnetlink: ") + what);
}

} // namespace

void LinkNames::SocketCloser::operator()(mnl_socket* s) const noexcept {
    mnl_socket_close(s);
}

LinkNames::LinkNames(LinkNamesConfig cfg)
    : refresh_(cfg.refresh), buf_(kRecvBufferSize), state_(std::move(cfg.rules)) {
    sock_.reset(mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!sock_) throw_errno(errno, "cannot open socket");
    if (cfg.rcvbuf > 0) // capped by rmem_max; too small only costs dumps
        ::setsockopt(fd(), SOL_SOCKET, SO_RCVBUF, &cfg.rcvbuf, sizeof cfg.rcvbuf);
    // Subscribed before the dump: a change during it arrives as an update, none falls between.
    if (mnl_socket_bind(sock_.get(), RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0)
        throw_errno(errno, "cannot bind to RTMGRP_LINK");
    portid_ = mnl_socket_get_portid(sock_.get());
    send_dump();
    const Nanos deadline = steady_time() + kFirstDumpTimeout;
    while (state_.dumping() || state_.needs_dump()) {
        const Nanos left = deadline - steady_time();
        if (left <= 0) throw_errno(ETIMEDOUT, "link dump");
        pollfd pfd{fd(), POLLIN, 0};
        ::poll(&pfd, 1, static_cast<int>(left / kNanosPerMilli) + 1);
        drain(64); // not published until complete: no reader sees half a dump
    }
    publish();
}

LinkNames::~LinkNames() = default;

int LinkNames::fd() const noexcept {
    return mnl_socket_get_fd(sock_.get());
}

void LinkNames::send_dump() {
    alignas(nlmsghdr) std::array<char, 64> msg{};
    nlmsghdr* nlh = mnl_nlmsg_put_header(msg.data());
    nlh->nlmsg_type = RTM_GETLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = ++seq_;
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    // Names and MTUs are all we read: leave the per-link counters out of the dump's messages.
    mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0) {
        // Nothing was started: the next receive() tries again.
        ++stats_.errors;
        state_.request_dump();
        return;
    }
    state_.begin_dump(seq_, portid_);
    if (refresh_ > 0) next_refresh_ = steady_time() + refresh_;
}

std::span<const std::byte> LinkNames::recv_one(bool& idle) {
    idle = false;
    const ssize_t n = ::recv(fd(), buf_.data(), buf_.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            idle = true;
            return {};
        }
        if (errno == EINTR) return {};
        if (errno == ENOBUFS) {
            // Updates were dropped: only a new dump can tell what they said.
            ++stats_.enobufs;
            state_.request_dump();
            return {};
        }
        throw_errno(errno, "recv");
    }
    auto size = static_cast<std::size_t>(n);
    if (size > buf_.size()) { // cut: what was lost may have been an update
        ++stats_.malformed;
        state_.request_dump();
        size = buf_.size();
    }
    return {buf_.data(), size};
}

void LinkNames::drain(std::size_t budget) {
    for (std::size_t i = 0; i < budget; ++i) {
        bool idle = false;
        const std::span<const std::byte> d = recv_one(idle);
        if (idle) break;
        state_.consume(d, stats_);
    }
    // One dump at a time (the kernel refuses a second with EBUSY): the next starts at the
    // end of the current one, which then reads everything that happened meanwhile.
    if (refresh_ > 0 && !state_.dumping() && steady_time() >= next_refresh_) state_.request_dump();
    if (state_.needs_dump() && !state_.dumping()) send_dump();
}

bool LinkNames::receive(std::size_t budget) {
    drain(budget);
    return publish();
}

void LinkNames::set_rules(SnmpRules rules) {
    state_.set_rules(std::move(rules));
    publish();
}

bool LinkNames::publish() {
    std::shared_ptr<const LinkTable> t = state_.snapshot(stats_);
    published_stats_.store(stats_);
    mtus_->publish(state_.mtu_snapshot()); // the same pointer while no MTU changed: nothing
    const std::lock_guard lock(table_mutex_);
    if (t == table_) return false;
    table_ = std::move(t);
    return true;
}

std::shared_ptr<const LinkTable> LinkNames::table() const {
    const std::lock_guard lock(table_mutex_);
    return table_;
}

} // namespace nflowd
