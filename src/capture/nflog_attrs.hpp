// The attributes of one NFLOG packet message as nflowd parses them (libnetfilter_log's parser
// skips NFULA_VLAN), and what the link-layer and prefix attributes put into PacketMeta.
#pragma once

#include "nflowd/header_parser.hpp"
#include "nflowd/prefix_tag.hpp"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink_log.h>

#include <array>

namespace nflowd::detail {

// Attribute table of one message. libnetfilter_log's nflog_nlmsg_parse() knows attributes up
// to NFULA_CT_INFO only and skips NFULA_VLAN and NFULA_L2HDR, so nflowd parses them itself.
using NflogAttrs = std::array<const nlattr*, NFULA_MAX + 1>;

// mnl_attr_parse's callback filling a NflogAttrs (`data`): validates the attributes nflowd
// reads as nflog_nlmsg_parse does (a bad one fails the message: malformed) and skips types
// newer than these headers.
int store_nflog_attr(const nlattr* a, void* data) noexcept;

// meta.link from NFULA_HWTYPE/HWLEN/HWHEADER and NFULA_VLAN; meta.obs_point and a direction
// override from the NFULA_PREFIX tag, through the reader's memo `prefixes` when not null.
void link_and_tag(const NflogAttrs& tb, PrefixTagMemo* prefixes, PacketMeta& meta) noexcept;

} // namespace nflowd::detail
