// NFLOG message attributes: nflowd's own table of them, the link layer and the prefix tag.
#include "nflog_attrs.hpp"

#include <arpa/inet.h>
#include <net/if_arp.h>

#include <cstring>
#include <string_view>

namespace nflowd {

namespace {

using detail::NflogAttrs;

bool attr_valid(const nlattr* a, int type) noexcept {
    switch (type) {
    case NFULA_HWTYPE:
    case NFULA_HWLEN:
        return mnl_attr_validate(a, MNL_TYPE_U16) >= 0;
    case NFULA_MARK:
    case NFULA_IFINDEX_INDEV:
    case NFULA_IFINDEX_OUTDEV:
    case NFULA_IFINDEX_PHYSINDEV:
    case NFULA_IFINDEX_PHYSOUTDEV:
    case NFULA_UID:
    case NFULA_GID:
    case NFULA_SEQ:
    case NFULA_SEQ_GLOBAL:
        return mnl_attr_validate(a, MNL_TYPE_U32) >= 0;
    case NFULA_TIMESTAMP:
        return mnl_attr_validate2(a, MNL_TYPE_UNSPEC, sizeof(nfulnl_msg_packet_timestamp)) >= 0;
    case NFULA_PACKET_HDR:
        return mnl_attr_validate2(a, MNL_TYPE_UNSPEC, sizeof(nfulnl_msg_packet_hdr)) >= 0;
    case NFULA_PREFIX:
        return mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0;
    case NFULA_VLAN:
        return mnl_attr_validate(a, MNL_TYPE_NESTED) >= 0;
    default:
        return true;
    }
}

std::uint16_t attr_be16(const nlattr* a) noexcept {
    return ntohs(mnl_attr_get_u16(a));
}

// The Ethernet header the packet came in with (dev_parse_header: destination MAC, source MAC,
// ethertype), present only where the kernel had one: ingress hooks and FORWARD, not OUTPUT.
// Other link types (loopback has an all-zero Ethernet header too, tunnels none) give none.
// The VLAN id comes from NFULA_VLAN (bridge and netdev families only) when present.
LinkLayer link_of(const NflogAttrs& tb) noexcept {
    LinkLayer link;
    constexpr std::uint16_t kEtherHeader = 14;
    if (tb[NFULA_HWTYPE] && tb[NFULA_HWLEN] && tb[NFULA_HWHEADER] &&
        attr_be16(tb[NFULA_HWTYPE]) == ARPHRD_ETHER && attr_be16(tb[NFULA_HWLEN]) == kEtherHeader &&
        mnl_attr_get_payload_len(tb[NFULA_HWHEADER]) >= kEtherHeader) {
        const auto* hw = static_cast<const std::uint8_t*>(mnl_attr_get_payload(tb[NFULA_HWHEADER]));
        std::memcpy(link.dst_mac.data(), hw, 6);
        std::memcpy(link.src_mac.data(), hw + 6, 6);
    }
    if (tb[NFULA_VLAN]) {
        // mnl_attr_for_each_nested, written for C++ (void* does not convert implicitly).
        const nlattr* nest = tb[NFULA_VLAN];
        const auto* end =
            static_cast<const char*>(mnl_attr_get_payload(nest)) + mnl_attr_get_payload_len(nest);
        for (auto* a = static_cast<const nlattr*>(mnl_attr_get_payload(nest));
             mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const char*>(a)));
             a = mnl_attr_next(a)) {
            if (mnl_attr_get_type(a) == NFULA_VLAN_TCI && mnl_attr_validate(a, MNL_TYPE_U16) >= 0)
                link.vlan = attr_be16(a) & 0x0fffU;
        }
    }
    return link;
}

} // namespace

// The link layer, and what the rule's prefix tag says (observation point, a direction that
// overrides the hook's): through the reader's memo when there is one.
void detail::link_and_tag(const NflogAttrs& tb, PrefixTagMemo* prefixes,
                          PacketMeta& meta) noexcept {
    meta.link = link_of(tb);
    if (tb[NFULA_PREFIX] == nullptr) return;
    const auto* text = static_cast<const char*>(mnl_attr_get_payload(tb[NFULA_PREFIX]));
    // Validated as NUL-terminated (MNL_TYPE_NUL_STRING): the text ends at the first NUL.
    const std::string_view prefix(text, strnlen(text, mnl_attr_get_payload_len(tb[NFULA_PREFIX])));
    const PrefixTag tag = prefixes ? prefixes->lookup(prefix) : parse_prefix_tag(prefix);
    meta.obs_point = tag.obs_point;
    if (tag.direction != Direction::unknown) meta.direction = tag.direction;
}

int detail::store_nflog_attr(const nlattr* a, void* data) noexcept {
    const int type = mnl_attr_get_type(a);
    if (mnl_attr_type_valid(a, NFULA_MAX) < 0) return MNL_CB_OK; // newer than these headers
    if (!attr_valid(a, type)) return MNL_CB_ERROR;
    (*static_cast<NflogAttrs*>(data))[static_cast<std::size_t>(type)] = a;
    return MNL_CB_OK;
}

} // namespace nflowd
