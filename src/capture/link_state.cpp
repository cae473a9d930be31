// rtnetlink link messages: validation and the table they build (dump, updates, snapshots).
#include "nflowd/link_names.hpp"

#include "nflowd/netlink_align.hpp"

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <climits>
#include <cstring>
#include <iterator>
#include <utility>

namespace nflowd {

namespace {

struct AttrWalk {
    const nlattr* name = nullptr;
    const nlattr* alias = nullptr;
    const nlattr* mtu = nullptr;
};

int on_attr(const nlattr* a, void* data) {
    auto& walk = *static_cast<AttrWalk*>(data);
    // Attributes of newer kernels than these headers are not ours to judge.
    if (mnl_attr_type_valid(a, IFLA_MAX) < 0) return MNL_CB_OK;
    const auto type = mnl_attr_get_type(a);
    if (type == IFLA_MTU) {
        // A u32 (nla_put_u32): any other length is malformed.
        if (mnl_attr_validate(a, MNL_TYPE_U32) < 0) return MNL_CB_ERROR;
        walk.mtu = a;
        return MNL_CB_OK;
    }
    if (type != IFLA_IFNAME && type != IFLA_IFALIAS) return MNL_CB_OK;
    // Both are NUL-terminated strings (nla_put_string): a missing NUL is malformed.
    if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0) return MNL_CB_ERROR;
    (type == IFLA_IFNAME ? walk.name : walk.alias) = a;
    return MNL_CB_OK;
}

// The string of a validated NUL_STRING attribute, or false when its payload (NUL included)
// is longer than `max_payload`: the kernel never sends one, so it is not trusted.
bool bounded_string(const nlattr* a, std::size_t max_payload, std::string_view& out) noexcept {
    const std::size_t len = mnl_attr_get_payload_len(a);
    if (len > max_payload) return false;
    const auto* s = static_cast<const char*>(mnl_attr_get_payload(a));
    out = std::string_view(s, ::strnlen(s, len));
    return true;
}

// The message at `off`, or nullptr when none fits (see nflog_source.cpp: libmnl's own
// check takes lengths as signed ints, and attribute walks run to the aligned end).
const nlmsghdr* next_message(std::span<const std::byte> buffer, std::size_t off) noexcept {
    const std::size_t left = buffer.size() - off;
    if (left < sizeof(nlmsghdr)) return nullptr;
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(buffer.data() + off);
    const std::size_t len = nlh->nlmsg_len;
    if (len < sizeof(nlmsghdr) || netlink_align(len) > left) return nullptr;
    return nlh;
}

} // namespace

bool detail::parse_link_message(const nlmsghdr* nlh, LinkMessage& out) noexcept {
    out = LinkMessage{};
    out.is_new = nlh->nlmsg_type == RTM_NEWLINK;
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(ifinfomsg)) return false;
    ifinfomsg ifi{};
    std::memcpy(&ifi, mnl_nlmsg_get_payload(nlh), sizeof ifi);
    // A bridge announces its ports' state as AF_BRIDGE NEWLINK/DELLINK on the same group; a
    // port leaving its bridge sends DELLINK for a link that stays. Only AF_UNSPEC is a link.
    out.relevant = ifi.ifi_family == AF_UNSPEC;
    if (ifi.ifi_index <= 0) return false;
    out.ifindex = static_cast<std::uint32_t>(ifi.ifi_index);
    // libmnl's walker stops quietly at an attribute that does not fit (mnl_attr_parse then
    // reports success): it must end exactly at the message's end, or the message is broken.
    if (nlh->nlmsg_len > INT_MAX) return false; // libmnl measures the rest in an int
    AttrWalk walk;
    const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
    auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(ifinfomsg)));
    for (; mnl_attr_ok(a, static_cast<int>(tail - reinterpret_cast<const char*>(a)));
         a = mnl_attr_next(a))
        if (on_attr(a, &walk) != MNL_CB_OK) return false;
    if (reinterpret_cast<const char*>(a) != tail) return false;
    if (walk.mtu != nullptr) out.mtu = mnl_attr_get_u32(walk.mtu);
    if (walk.alias != nullptr && !bounded_string(walk.alias, kMaxLinkAlias + 1, out.alias))
        return false;
    if (walk.name == nullptr) return !out.is_new; // a removal needs only the index
    if (!bounded_string(walk.name, kMaxLinkName + 1, out.name)) return false;
    return !out.name.empty();
}

void LinkState::begin_dump(std::uint32_t seq, std::uint32_t portid) {
    dump_ = Dump{seq, portid, false, {}, {}};
    needs_dump_ = false;
}

void LinkState::set_rules(SnmpRules rules) {
    if (rules == rules_) return;
    rules_ = std::move(rules);
    dirty_ = true;
}

void LinkState::consume(std::span<const std::byte> datagram, LinkStats& stats) {
    if (datagram.empty()) return;
    // libmnl reads headers in place: a misaligned buffer would be undefined behaviour.
    if (reinterpret_cast<std::uintptr_t>(datagram.data()) % alignof(nlmsghdr) != 0) {
        ++stats.malformed;
        return;
    }
    std::size_t off = 0;
    for (const nlmsghdr* nlh; (nlh = next_message(datagram, off)) != nullptr;
         off += netlink_align(nlh->nlmsg_len))
        on_message(nlh, stats);
    // Bytes that do not form a message: cut short or a lying length; nothing after them
    // can be found, and an update may be among them.
    if (off < datagram.size()) {
        ++stats.malformed;
        needs_dump_ = true;
    }
}

bool LinkState::from_dump(const nlmsghdr* nlh) const noexcept {
    return dump_ && nlh->nlmsg_seq == dump_->seq && nlh->nlmsg_pid == dump_->portid;
}

void LinkState::on_message(const nlmsghdr* nlh, LinkStats& stats) {
    const bool dump_part = from_dump(nlh);
    if (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_ERROR) {
        if (dump_part) on_dump_end(nlh, stats);
        return; // an ACK or a stale reply: nothing to apply
    }
    if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK) return;
    detail::LinkMessage m;
    if (!detail::parse_link_message(nlh, m)) {
        // Not redumped: the dump would hold the same message. Only lost framing is (above).
        ++stats.malformed;
        return;
    }
    if (!m.relevant) return;
    if (!dump_part) ++stats.events;
    if (dump_part && (nlh->nlmsg_flags & NLM_F_DUMP_INTR) != 0) dump_->interrupted = true;
    apply(m, links_, mtus_, true);
    if (dump_) apply(m, dump_->links, dump_->mtus, false);
}

void LinkState::apply(const detail::LinkMessage& m, std::map<std::uint32_t, LinkInfo>& links,
                      std::map<std::uint32_t, std::uint32_t>& mtus, bool mark_dirty) {
    if (!m.is_new) {
        if (mtus.erase(m.ifindex) != 0 && mark_dirty) mtus_dirty_ = true;
        if (links.erase(m.ifindex) != 0 && mark_dirty) dirty_ = true;
        return;
    }
    // An update without IFLA_MTU (the kernel always sends it) leaves the one known.
    if (m.mtu != 0) {
        auto [it, added] = mtus.try_emplace(m.ifindex, m.mtu);
        if ((added || std::exchange(it->second, m.mtu) != m.mtu) && mark_dirty) mtus_dirty_ = true;
    }
    LinkInfo& l = links[m.ifindex];
    if (l.name == m.name && l.alias == m.alias) return; // carrier, flags: not ours
    l.name.assign(m.name);
    l.alias.assign(m.alias);
    if (mark_dirty) dirty_ = true;
}

void LinkState::on_dump_end(const nlmsghdr* nlh, LinkStats& stats) {
    // NLMSG_DONE carries the dump's status (an int) on current kernels, NLMSG_ERROR an
    // nlmsgerr whose error 0 is an ACK (not asked for; it ends nothing).
    int status = 0;
    const std::size_t len = mnl_nlmsg_get_payload_len(nlh);
    if ((nlh->nlmsg_flags & NLM_F_DUMP_INTR) != 0) dump_->interrupted = true; // DONE has it too
    if (nlh->nlmsg_type == NLMSG_ERROR) {
        if (len < sizeof(nlmsgerr)) {
            ++stats.malformed; // still the end of the dump: a failed one
            status = -1;
        } else {
            std::memcpy(&status, mnl_nlmsg_get_payload(nlh), sizeof status);
            if (status == 0) return;
        }
    } else if (len >= sizeof status) {
        std::memcpy(&status, mnl_nlmsg_get_payload(nlh), sizeof status);
    }
    const bool ok = status == 0 && !dump_->interrupted;
    if (ok) {
        // Updates applied meanwhile are in both tables; what only the old one holds is gone.
        if (dump_->links != links_) {
            links_ = std::move(dump_->links);
            dirty_ = true;
        }
        if (dump_->mtus != mtus_) {
            mtus_ = std::move(dump_->mtus);
            mtus_dirty_ = true;
        }
        ++stats.dumps;
    } else {
        // An interrupted dump may lack a link that moved under it: keep what is known
        // (every entry was applied to it) and ask again.
        ++stats.errors;
        needs_dump_ = true;
    }
    dump_.reset();
}

std::shared_ptr<const LinkTable> LinkState::snapshot(LinkStats& stats) {
    if (dirty_) {
        auto t = std::make_shared<LinkTable>();
        t->generation = ++generation_;
        t->links = links_;
        for (auto& [ifindex, link] : t->links) link.index = rules_.map(link.name, ifindex);
        if (t->links != published_->links || published_->generation == 0) {
            published_ = std::move(t);
            ++stats.changes;
        } else {
            --generation_; // renamed back before anyone saw it: nothing new
        }
        dirty_ = false;
    }
    stats.known = published_->links.size();
    return published_;
}

std::shared_ptr<const LinkMtus> LinkState::mtu_snapshot() {
    if (!mtus_dirty_) return published_mtus_;
    mtus_dirty_ = false;
    LinkMtus t;
    // Only as long as the highest ifindex needs: most hosts' fit in a few cache lines.
    const auto end = mtus_.lower_bound(kMtuIndexes);
    if (end != mtus_.begin()) t.by_ifindex.assign(std::prev(end)->first + 1, kDefaultMtu);
    for (auto it = mtus_.begin(); it != end; ++it) t.by_ifindex[it->first] = it->second;
    if (t != *published_mtus_) published_mtus_ = std::make_shared<const LinkMtus>(std::move(t));
    return published_mtus_;
}

} // namespace nflowd
