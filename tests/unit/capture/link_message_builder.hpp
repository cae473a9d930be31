// Test helper: rtnetlink datagrams built byte by byte through libmnl (RTM_NEWLINK/DELLINK,
// NLMSG_DONE, NLMSG_ERROR), for LinkState's tests with crafted and broken messages.
#pragma once

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nflowd::test {

struct LinkMsg {
    std::uint16_t type = RTM_NEWLINK;
    int ifindex = 0;
    std::string name;      // IFLA_IFNAME with its NUL; empty: no attribute
    std::string alias;     // IFLA_IFALIAS with its NUL; empty: no attribute
    std::uint32_t seq = 0; // 0 and pid 0: an update; a dump's are its request's
    std::uint32_t pid = 0;
    std::uint16_t flags = 0; // NLM_F_MULTI, NLM_F_DUMP_INTR
    std::uint8_t family = AF_UNSPEC;
    std::uint32_t mtu = 1500; // IFLA_MTU; 0: no attribute
};

class Datagram {
  public:
    // Appends a link message; returns it for tests that break it afterwards.
    nlmsghdr* link(const LinkMsg& m) {
        nlmsghdr* nlh = start(m.type, m.seq, m.pid, m.flags);
        auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
        ifi->ifi_family = m.family;
        ifi->ifi_index = m.ifindex;
        // Every kernel NEWLINK carries IFLA_MTU, among much else besides the names.
        if (m.mtu != 0) mnl_attr_put_u32(nlh, IFLA_MTU, m.mtu);
        if (!m.name.empty()) mnl_attr_put_strz(nlh, IFLA_IFNAME, m.name.c_str());
        if (!m.alias.empty()) mnl_attr_put_strz(nlh, IFLA_IFALIAS, m.alias.c_str());
        return finish(nlh);
    }
    // NLMSG_DONE with its status int, as current kernels send it.
    nlmsghdr* done(std::uint32_t seq, std::uint32_t pid, int status = 0) {
        nlmsghdr* nlh = start(NLMSG_DONE, seq, pid, NLM_F_MULTI);
        std::memcpy(mnl_nlmsg_put_extra_header(nlh, sizeof status), &status, sizeof status);
        return finish(nlh);
    }
    nlmsghdr* error(std::uint32_t seq, std::uint32_t pid, int err) {
        nlmsghdr* nlh = start(NLMSG_ERROR, seq, pid, 0);
        auto* e = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nlmsgerr)));
        e->error = err;
        return finish(nlh);
    }
    // Appends an attribute with exactly `payload` (no NUL added) to the last message.
    void put_attr(nlmsghdr* last, std::uint16_t type, std::string_view payload) {
        size_ -= NLMSG_ALIGN(last->nlmsg_len);
        mnl_attr_put(last, type, payload.size(), payload.data());
        size_ += NLMSG_ALIGN(last->nlmsg_len);
    }
    // Raw bytes appended as they are (a broken tail).
    void raw(std::span<const std::byte> bytes) {
        std::memcpy(bytes_() + size_, bytes.data(), bytes.size());
        size_ += bytes.size();
    }
    std::span<const std::byte> bytes() const {
        return {reinterpret_cast<const std::byte*>(words_.data()), size_};
    }
    std::size_t size() const { return size_; }
    void resize(std::size_t n) { size_ = n; }

  private:
    std::byte* bytes_() { return reinterpret_cast<std::byte*>(words_.data()); }
    nlmsghdr* start(std::uint16_t type, std::uint32_t seq, std::uint32_t pid, std::uint16_t flags) {
        nlmsghdr* nlh = mnl_nlmsg_put_header(bytes_() + size_);
        nlh->nlmsg_type = type;
        nlh->nlmsg_seq = seq;
        nlh->nlmsg_pid = pid;
        nlh->nlmsg_flags = flags;
        return nlh;
    }
    nlmsghdr* finish(nlmsghdr* nlh) {
        size_ += NLMSG_ALIGN(nlh->nlmsg_len);
        return nlh;
    }
    std::vector<std::uint32_t> words_ = std::vector<std::uint32_t>(16384); // 64 KiB, aligned
    std::size_t size_ = 0;
};

} // namespace nflowd::test
