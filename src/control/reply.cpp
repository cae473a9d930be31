// The reply half of the control protocol: the daemon writes data, done and error messages;
// nflowctl decodes them without trusting a byte.
#include "protocol_wire.hpp"

#include <array>
#include <cerrno>

namespace nflowd::ctl {

using namespace wire;

ReplyWriter::ReplyWriter(Command command, std::uint32_t seq, std::uint32_t peer_port, Sink sink,
                         void* ctx)
    : command_(command), seq_(seq), port_(peer_port), sink_(sink), ctx_(ctx),
      buf_(kMaxReplyMessage) {
    start_message();
}

void ReplyWriter::start_message() {
    std::fill(buf_.begin(), buf_.end(), std::byte{0});
    auto* nlh = mnl_nlmsg_put_header(buf_.data());
    nlh->nlmsg_type = static_cast<std::uint16_t>(command_);
    nlh->nlmsg_flags = NLM_F_MULTI;
    nlh->nlmsg_seq = seq_;
    nlh->nlmsg_pid = port_;
    mnl_attr_put_u32(nlh, kAttrVersion, kProtocolVersion);
    has_data_ = false;
}

bool ReplyWriter::flush_message() {
    if (failed_) return false;
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf_.data());
    if (has_data_ && !sink_(ctx_, std::span(buf_).first(nlh->nlmsg_len))) failed_ = true;
    start_message();
    return !failed_;
}

bool ReplyWriter::room_for(std::size_t attr_bytes) {
    if (failed_) return false;
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf_.data());
    if (nlh->nlmsg_len + attr_bytes <= kMaxReplyMessage) return true;
    return flush_message();
}

bool ReplyWriter::add_knob(const KnobValue& k) {
    // A value that cannot fit one message (only a config file could make one) is cut.
    constexpr std::size_t kMaxSent = kMaxReplyMessage - 256 - kMaxNameLength;
    std::string value = k.value.size() > kMaxSent ? k.value.substr(0, kMaxSent) + "..." : k.value;
    std::string name = k.name.substr(0, kMaxNameLength);
    const std::size_t need =
        4 + (4 + netlink_align(name.size() + 1)) + (4 + netlink_align(value.size() + 1)) + 8;
    if (!room_for(need)) return false;
    auto* nlh = reinterpret_cast<nlmsghdr*>(buf_.data());
    auto* nest = mnl_attr_nest_start(nlh, kAttrKnob);
    mnl_attr_put_strz(nlh, kKnobName, name.c_str());
    mnl_attr_put_strz(nlh, kKnobValue, value.c_str());
    mnl_attr_put_u8(nlh, kKnobWritable, k.writable ? 1 : 0);
    mnl_attr_nest_end(nlh, nest);
    has_data_ = true;
    return true;
}

bool ReplyWriter::add_text(std::string_view text) {
    constexpr std::size_t kMinChunk = 1024;
    while (!text.empty()) {
        const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf_.data());
        std::size_t room = kMaxReplyMessage - nlh->nlmsg_len;
        room = room > 8 ? room - 8 : 0; // attribute header, NUL, padding
        if (room < std::min(kMinChunk, text.size())) {
            if (!flush_message()) return false;
            continue;
        }
        const auto chunk = text.substr(0, room);
        auto* w = reinterpret_cast<nlmsghdr*>(buf_.data());
        auto* attr = static_cast<nlattr*>(mnl_nlmsg_get_payload_tail(w));
        attr->nla_type = kAttrText;
        attr->nla_len = static_cast<std::uint16_t>(4 + chunk.size() + 1);
        auto* dst = static_cast<char*>(mnl_attr_get_payload(attr));
        std::memcpy(dst, chunk.data(), chunk.size());
        dst[chunk.size()] = '\0';
        w->nlmsg_len += static_cast<std::uint32_t>(netlink_align(attr->nla_len));
        has_data_ = true;
        text.remove_prefix(chunk.size());
    }
    return !failed_;
}

bool ReplyWriter::add_flow_header(std::uint64_t total, Nanos now) {
    if (!room_for(24)) return false;
    auto* nlh = reinterpret_cast<nlmsghdr*>(buf_.data());
    mnl_attr_put_u64(nlh, kAttrFlowTotal, total);
    mnl_attr_put_u64(nlh, kAttrNow, static_cast<std::uint64_t>(now));
    has_data_ = true;
    return true;
}

bool ReplyWriter::add_flow(const FlowRecord& f) {
    constexpr std::size_t kFlowBytes = 4 + 6 * 8 + 2 * 8 + 5 * 8 + 2 * 12;
    constexpr std::size_t kFlow6Bytes = kFlowBytes + 2 * 20 + 8;
    if (!room_for(f.family == Family::ipv6 ? kFlow6Bytes : kFlowBytes)) return false;
    auto* nlh = reinterpret_cast<nlmsghdr*>(buf_.data());
    auto* nest = mnl_attr_nest_start(nlh, kAttrFlow);
    mnl_attr_put_u32(nlh, kFlowSrcAddr, f.key.src_addr);
    mnl_attr_put_u32(nlh, kFlowDstAddr, f.key.dst_addr);
    mnl_attr_put_u16(nlh, kFlowSrcPort, f.key.src_port);
    mnl_attr_put_u16(nlh, kFlowDstPort, f.key.dst_port);
    mnl_attr_put_u8(nlh, kFlowProtocol, f.key.protocol);
    mnl_attr_put_u8(nlh, kFlowTos, f.key.tos);
    mnl_attr_put_u32(nlh, kFlowInIf, f.key.in_if);
    mnl_attr_put_u32(nlh, kFlowOutIf, f.out_if);
    mnl_attr_put_u32(nlh, kFlowPackets, f.packets);
    mnl_attr_put_u32(nlh, kFlowOctets, f.octets);
    mnl_attr_put_u64(nlh, kFlowFirst, static_cast<std::uint64_t>(f.first));
    mnl_attr_put_u64(nlh, kFlowLast, static_cast<std::uint64_t>(f.last));
    mnl_attr_put_u8(nlh, kFlowTcpFlags, f.tcp_flags);
    mnl_attr_put_u8(nlh, kFlowSrcMask, f.src_mask);
    mnl_attr_put_u8(nlh, kFlowDstMask, f.dst_mask);
    if (f.family == Family::ipv6) {
        mnl_attr_put(nlh, kFlowSrcAddr6, f.src6.size(), f.src6.data());
        mnl_attr_put(nlh, kFlowDstAddr6, f.dst6.size(), f.dst6.data());
        mnl_attr_put_u32(nlh, kFlowLabel, f.flow_label);
    }
    mnl_attr_nest_end(nlh, nest);
    has_data_ = true;
    return true;
}

bool ReplyWriter::finish() {
    if (has_data_ && !flush_message()) return false;
    if (failed_) return false;
    std::array<std::byte, kHeader + 4> done{};
    auto* nlh = mnl_nlmsg_put_header(done.data());
    nlh->nlmsg_type = NLMSG_DONE;
    nlh->nlmsg_flags = NLM_F_MULTI;
    nlh->nlmsg_seq = seq_;
    nlh->nlmsg_pid = port_;
    mnl_nlmsg_put_extra_header(nlh, 4); // int 0, as the kernel's dumps end
    if (!sink_(ctx_, std::span(done).first(nlh->nlmsg_len))) failed_ = true;
    return !failed_;
}

std::vector<std::byte> encode_error(std::uint32_t seq, std::uint32_t peer_port,
                                    const DecodedRequest& request, int error,
                                    std::string_view message) {
    const std::string msg(message.substr(0, kMaxErrorMessage));
    std::vector<std::byte> buf(kHeader + sizeof(nlmsgerr) + 4 + netlink_align(msg.size() + 1));
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = NLMSG_ERROR;
    // Only the request's header is echoed (capped): a 64 KiB request is not sent back.
    nlh->nlmsg_flags = NLM_F_CAPPED | (msg.empty() ? 0 : NLM_F_ACK_TLVS);
    nlh->nlmsg_seq = seq;
    nlh->nlmsg_pid = peer_port;
    auto* e = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nlmsgerr)));
    e->error = -error;
    if (request.has_header) {
        e->msg.nlmsg_type = request.type;
        e->msg.nlmsg_flags = request.flags;
        e->msg.nlmsg_seq = request.seq;
        e->msg.nlmsg_pid = peer_port;
        e->msg.nlmsg_len = static_cast<std::uint32_t>(kHeader);
    }
    if (!msg.empty()) mnl_attr_put_strz(nlh, NLMSGERR_ATTR_MSG, msg.c_str());
    buf.resize(nlh->nlmsg_len);
    return buf;
}

namespace {

// A malformed reply: nflowctl cannot trust the rest of the conversation.
DecodeError malformed(std::string why) {
    return DecodeError{EPROTO, std::move(why)};
}

// The start of the extended-ack attributes, after the echoed request when it is not capped.
std::size_t ack_tlv_offset(const nlmsghdr* nlh, const nlmsgerr& e) noexcept {
    std::size_t offset = kHeader + sizeof(nlmsgerr);
    if ((nlh->nlmsg_flags & NLM_F_CAPPED) == 0 && e.msg.nlmsg_len > kHeader)
        offset += netlink_align(std::size_t{e.msg.nlmsg_len} - kHeader);
    return offset;
}

std::optional<DecodeError> decode_error(const AlignedMessage& m, Reply& out) {
    const auto* nlh = m.header();
    const std::size_t len = nlh->nlmsg_len;
    if (len < kHeader + sizeof(nlmsgerr)) return malformed("truncated error message in reply");
    nlmsgerr e{};
    std::memcpy(&e, m.at(kHeader), sizeof e);
    if (e.error > 0 || e.error < -4095) return malformed("invalid errno in error reply");
    out.kind = Reply::Kind::error;
    out.error = -e.error;
    if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) == 0) return std::nullopt;
    const std::size_t offset = ack_tlv_offset(nlh, e);
    if (offset > len) return malformed("extended ack outside the error message");
    bool bad_msg = false;
    const bool ok = walk_attributes(m.at(offset), len - offset, [&](const nlattr* a) {
        if (mnl_attr_get_type(a) != NLMSGERR_ATTR_MSG) return true; // others are optional
        const auto text = nul_string(a);
        if (!text)
            bad_msg = true;
        else
            out.message = std::string(text->substr(0, kMaxErrorMessage));
        return !bad_msg;
    });
    if (!ok || bad_msg) return malformed("malformed extended ack in error reply");
    return std::nullopt;
}

bool decode_knob_reply(const nlattr* nest, Reply& out) {
    if (mnl_attr_validate(nest, MNL_TYPE_NESTED) < 0) return false;
    std::optional<std::string_view> name, value;
    std::optional<bool> writable;
    const bool ok = nested_walk(nest, [&](const nlattr* a) {
        switch (mnl_attr_get_type(a)) {
        case kKnobName:
            return !name && (name = nul_string(a)).has_value();
        case kKnobValue:
            return !value && (value = nul_string(a)).has_value();
        case kKnobWritable:
            if (writable || mnl_attr_validate(a, MNL_TYPE_U8) < 0) return false;
            writable = mnl_attr_get_u8(a) != 0;
            return true;
        default:
            return true;
        }
    });
    if (!ok || !name || !value || !writable) return false;
    out.knobs.push_back(KnobValue{std::string(*name), std::string(*value), *writable});
    return true;
}

// Stores attribute `a`, validated as the type of `field`, into it.
template <class T> bool read_field(const nlattr* a, T& field) {
    if constexpr (sizeof(T) == 1) {
        if (mnl_attr_validate(a, MNL_TYPE_U8) < 0) return false;
        field = mnl_attr_get_u8(a);
    } else if constexpr (sizeof(T) == 2) {
        if (mnl_attr_validate(a, MNL_TYPE_U16) < 0) return false;
        field = mnl_attr_get_u16(a);
    } else if constexpr (sizeof(T) == 4) {
        if (mnl_attr_validate(a, MNL_TYPE_U32) < 0) return false;
        field = mnl_attr_get_u32(a);
    } else {
        if (mnl_attr_validate(a, MNL_TYPE_U64) < 0) return false;
        field = static_cast<T>(mnl_attr_get_u64(a));
    }
    return true;
}

// A 16-byte IPv6 address attribute.
bool read_address6(const nlattr* a, Ipv6Addr& out) {
    if (mnl_attr_get_payload_len(a) != out.size()) return false;
    std::memcpy(out.data(), mnl_attr_get_payload(a), out.size());
    return true;
}

// One attribute of a flow nest into its field of `f`; unknown types are skipped.
bool decode_flow_field(const nlattr* a, std::uint16_t type, FlowRecord& f) {
    switch (type) {
    case kFlowSrcAddr:
        return read_field(a, f.key.src_addr);
    case kFlowDstAddr:
        return read_field(a, f.key.dst_addr);
    case kFlowSrcPort:
        return read_field(a, f.key.src_port);
    case kFlowDstPort:
        return read_field(a, f.key.dst_port);
    case kFlowProtocol:
        return read_field(a, f.key.protocol);
    case kFlowTos:
        return read_field(a, f.key.tos);
    case kFlowInIf:
        return read_field(a, f.key.in_if);
    case kFlowOutIf:
        return read_field(a, f.out_if);
    case kFlowPackets:
        return read_field(a, f.packets);
    case kFlowOctets:
        return read_field(a, f.octets);
    case kFlowFirst:
        return read_field(a, f.first);
    case kFlowLast:
        return read_field(a, f.last);
    case kFlowTcpFlags:
        return read_field(a, f.tcp_flags);
    case kFlowSrcMask:
        return read_field(a, f.src_mask);
    case kFlowDstMask:
        return read_field(a, f.dst_mask);
    case kFlowSrcAddr6:
        return read_address6(a, f.src6);
    case kFlowDstAddr6:
        return read_address6(a, f.dst6);
    case kFlowLabel:
        return read_field(a, f.flow_label);
    default:
        return true;
    }
}

// A flow nest: every field exactly once.
bool decode_flow(const nlattr* nest, Reply& out) {
    if (mnl_attr_validate(nest, MNL_TYPE_NESTED) < 0) return false;
    FlowRecord f;
    std::uint32_t seen = 0;
    const bool ok = nested_walk(nest, [&](const nlattr* a) {
        const auto type = mnl_attr_get_type(a);
        if (type == 0 || type > kFlowMax6) return true;
        if (seen & (1u << type)) return false;
        seen |= 1u << type;
        return decode_flow_field(a, type, f);
    });
    // Every IPv4 field, and the IPv6 ones all or none.
    constexpr std::uint32_t kAll = ((1u << (kFlowMax + 1)) - 1) & ~1u;
    constexpr std::uint32_t kAll6 = ((1u << (kFlowMax6 + 1)) - 1) & ~kAll & ~1u;
    if (!ok || (seen & kAll) != kAll || ((seen & kAll6) != 0 && (seen & kAll6) != kAll6))
        return false;
    if (seen & kAll6) f.family = Family::ipv6;
    out.flows.push_back(f);
    return true;
}

// One top-level attribute of a data reply; false when it is malformed.
bool decode_data_attribute(const nlattr* a, std::uint16_t type, Reply& out,
                           std::optional<std::uint32_t>& version) {
    switch (type) {
    case kAttrVersion:
        if (version || mnl_attr_validate(a, MNL_TYPE_U32) < 0) return false;
        version = mnl_attr_get_u32(a);
        return true;
    case kAttrKnob:
        return decode_knob_reply(a, out);
    case kAttrText: {
        const auto text = nul_string(a);
        if (text) out.text += *text;
        return text.has_value();
    }
    case kAttrNow:
        return read_field(a, out.now.emplace());
    case kAttrFlowTotal:
        return read_field(a, out.flow_total.emplace());
    case kAttrFlow:
        return decode_flow(a, out);
    default:
        return true; // unknown to this version: validated framing, not used
    }
}

std::optional<DecodeError> decode_data(const AlignedMessage& m, Reply& out) {
    std::optional<std::uint32_t> version;
    std::string bad;
    const bool ok = walk_attributes(m.payload(), m.payload_size(), [&](const nlattr* a) {
        const auto type = mnl_attr_get_type(a);
        if (decode_data_attribute(a, type, out, version)) return true;
        bad = attr_name(type);
        return false;
    });
    if (!ok)
        return malformed(bad.empty() ? "truncated attribute in reply"
                                     : "malformed " + bad + " in reply");
    if (!version) return malformed("reply without a protocol version");
    if (*version != kProtocolVersion)
        return malformed("nflowd speaks protocol version " + std::to_string(*version) +
                         ", nflowctl " + std::to_string(kProtocolVersion));
    return std::nullopt;
}

// One message occupying exactly `message` (its nlmsg_len bytes).
std::optional<DecodeError> decode_reply(std::span<const std::byte> message, Reply& out) {
    const AlignedMessage m(message);
    const auto* nlh = m.header();
    out.type = nlh->nlmsg_type;
    out.flags = nlh->nlmsg_flags;
    out.seq = nlh->nlmsg_seq;
    if (nlh->nlmsg_type == NLMSG_ERROR) return decode_error(m, out);
    if (nlh->nlmsg_type == NLMSG_DONE) {
        out.kind = Reply::Kind::done;
        return std::nullopt;
    }
    if (!known_command(nlh->nlmsg_type))
        return malformed("unexpected message type " + std::to_string(nlh->nlmsg_type) +
                         " in reply");
    out.kind = Reply::Kind::data;
    return decode_data(m, out);
}

} // namespace

std::optional<DecodeError> decode_replies(std::span<const std::byte> datagram,
                                          const std::function<void(Reply&&)>& fn) {
    while (!datagram.empty()) {
        if (datagram.size() < kHeader) return malformed("truncated netlink header in reply");
        const std::size_t length = message_length(datagram);
        if (length < kHeader || length > datagram.size())
            return malformed("bad netlink message length in reply");
        Reply r;
        if (auto fail = decode_reply(datagram.first(length), r)) return fail;
        fn(std::move(r));
        datagram = datagram.subspan(std::min(netlink_align(length), datagram.size()));
    }
    return std::nullopt;
}

} // namespace nflowd::ctl
