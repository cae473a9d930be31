#include "nflowd/control_protocol.hpp"

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>

namespace nflowd::ctl {

namespace {

constexpr std::size_t kHeader = sizeof(nlmsghdr);
constexpr std::size_t kMaxErrorMessage = 1024;

// NLMSG_ALIGN masks with a 32-bit constant; this one is safe on any size_t.
constexpr std::size_t align4(std::size_t n) noexcept {
    return (n + 3) & ~std::size_t{3};
}

// A netlink message copied into 4-byte aligned storage with its padding zeroed: libmnl's
// accessors may then cast and read up to the aligned end without leaving the buffer, however
// the datagram was aligned or cut.
class AlignedMessage {
  public:
    explicit AlignedMessage(std::span<const std::byte> bytes)
        : words_((align4(bytes.size()) / 4) + 1, 0), size_(bytes.size()) {
        std::memcpy(words_.data(), bytes.data(), bytes.size());
    }
    const nlmsghdr* header() const noexcept {
        return reinterpret_cast<const nlmsghdr*>(words_.data());
    }
    const std::byte* at(std::size_t offset) const noexcept {
        return reinterpret_cast<const std::byte*>(words_.data()) + offset;
    }
    std::size_t size() const noexcept { return size_; }

  private:
    std::vector<std::uint32_t> words_;
    std::size_t size_;
};

// Calls fn(attr) for each attribute of [p, p + len). False when the attributes do not tile
// the range exactly: libmnl's own walk stops silently at a cut attribute, which would make a
// truncated request look like a shorter valid one.
template <class Fn> bool walk_attributes(const std::byte* p, std::size_t len, Fn&& fn) {
    std::size_t left = len;
    while (left > 0) {
        const auto* a = reinterpret_cast<const nlattr*>(p);
        if (left > INT_MAX || !mnl_attr_ok(a, static_cast<int>(left))) return false;
        if (!fn(a)) return false;
        const std::size_t step = std::min<std::size_t>(align4(a->nla_len), left);
        p += step;
        left -= step;
    }
    return true;
}

bool nested_walk(const nlattr* nest, auto&& fn) {
    return walk_attributes(static_cast<const std::byte*>(mnl_attr_get_payload(nest)),
                           mnl_attr_get_payload_len(nest), fn);
}

// A NUL-terminated string attribute with no NUL inside, or nullopt.
std::optional<std::string_view> nul_string(const nlattr* a) {
    if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0) return std::nullopt;
    const auto len = mnl_attr_get_payload_len(a);
    const char* s = mnl_attr_get_str(a);
    if (std::memchr(s, '\0', len - 1u) != nullptr) return std::nullopt;
    return std::string_view(s, len - 1u);
}

bool valid_name(std::string_view n) noexcept {
    if (n.empty() || n.size() > kMaxNameLength) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

// Values end up in the log ("hashsize = 4096"): no control characters, so no forged lines.
bool valid_value(std::string_view v) noexcept {
    if (v.size() > kMaxValueLength) return false;
    return std::none_of(v.begin(), v.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

std::string attr_name(std::uint16_t type) {
    switch (type) {
    case kAttrVersion:
        return "version";
    case kAttrKnob:
        return "knob";
    case kAttrFormat:
        return "format";
    case kAttrTop:
        return "top";
    case kAttrSort:
        return "sort";
    case kAttrFlushLevel:
        return "flush level";
    case kAttrText:
        return "text";
    case kAttrNow:
        return "now";
    case kAttrFlowTotal:
        return "flow total";
    case kAttrFlow:
        return "flow";
    default:
        return "attribute " + std::to_string(type);
    }
}

bool allowed_in(Command c, std::uint16_t type) noexcept {
    switch (type) {
    case kAttrVersion:
        return true;
    case kAttrKnob:
        return c == Command::get || c == Command::set;
    case kAttrFormat:
        return c == Command::stats;
    case kAttrTop:
    case kAttrSort:
        return c == Command::flows;
    case kAttrFlushLevel:
        return c == Command::flush;
    default:
        return false;
    }
}

bool known_command(std::uint16_t type) noexcept {
    return type >= static_cast<std::uint16_t>(Command::list) &&
           type <= static_cast<std::uint16_t>(Command::flush);
}

struct Fail {
    int error;
    std::string message;
};

// Decodes a knob nest of a get (name only) or set (name and value) request.
std::optional<Fail> decode_knob(const nlattr* nest, Command c, Request& r) {
    if (mnl_attr_validate(nest, MNL_TYPE_NESTED) < 0)
        return Fail{EINVAL, "malformed knob attribute"};
    std::optional<std::string_view> name, value;
    std::optional<Fail> fail;
    const bool ok = nested_walk(nest, [&](const nlattr* a) {
        const auto type = mnl_attr_get_type(a);
        auto& slot = type == kKnobName ? name : value;
        if (type != kKnobName && !(type == kKnobValue && c == Command::set)) {
            fail = Fail{EINVAL, "knob attribute " + std::to_string(type) + " is not valid in a " +
                                    std::string(command_name(c)) + " request"};
            return false;
        }
        if (slot) {
            fail = Fail{EINVAL, std::string("knob ") + (type == kKnobName ? "name" : "value") +
                                    " given twice"};
            return false;
        }
        slot = nul_string(a);
        if (!slot) {
            fail = Fail{EINVAL, std::string("knob ") + (type == kKnobName ? "name" : "value") +
                                    " is not a NUL-terminated string"};
            return false;
        }
        return true;
    });
    if (fail) return fail;
    if (!ok) return Fail{EINVAL, "truncated attribute inside a knob"};
    if (!name) return Fail{EINVAL, "knob without a name"};
    if (!valid_name(*name)) return Fail{EINVAL, "invalid knob name (1-64 letters, digits, _ or -)"};
    if (c == Command::get) {
        r.names.emplace_back(*name);
        return std::nullopt;
    }
    if (!value) return Fail{EINVAL, "knob " + std::string(*name) + " without a value"};
    if (!valid_value(*value))
        return Fail{EINVAL, "value of " + std::string(*name) +
                                " is too long or contains control characters"};
    r.changes.emplace_back(*name, *value);
    return std::nullopt;
}

std::optional<Fail> decode_attributes(const AlignedMessage& m, Command c, Request& r) {
    const std::size_t len = m.header()->nlmsg_len;
    const std::byte* payload = m.at(kHeader);
    // First pass: framing, and the version, which decides how the rest may be read.
    std::optional<std::uint32_t> version;
    bool version_bad = false;
    if (!walk_attributes(payload, len - kHeader, [&](const nlattr* a) {
            if (mnl_attr_get_type(a) == kAttrVersion) {
                if (version || mnl_attr_validate(a, MNL_TYPE_U32) < 0)
                    version_bad = true;
                else
                    version = mnl_attr_get_u32(a);
            }
            return true;
        }))
        return Fail{EINVAL, "truncated or malformed attribute"};
    if (version_bad) return Fail{EINVAL, "malformed protocol version attribute"};
    if (!version) return Fail{EPROTO, "request without a protocol version"};
    if (*version != kProtocolVersion)
        return Fail{EPROTONOSUPPORT, "protocol version " + std::to_string(*version) +
                                         " is not supported, nflowd speaks version " +
                                         std::to_string(kProtocolVersion)};

    std::optional<Fail> fail;
    std::uint32_t seen = 0; // bit per scalar attribute type
    std::size_t knobs = 0;
    walk_attributes(payload, len - kHeader, [&](const nlattr* a) {
        const auto type = mnl_attr_get_type(a);
        if (type == kAttrUnspec || type > kAttrMax) {
            fail = Fail{EINVAL, "unknown " + attr_name(type)};
            return false;
        }
        if (!allowed_in(c, type)) {
            fail = Fail{EINVAL, attr_name(type) + " is not valid in a " +
                                    std::string(command_name(c)) + " request"};
            return false;
        }
        if (type == kAttrVersion) return true;
        if (type == kAttrKnob) {
            if (++knobs > kMaxKnobsPerRequest) {
                fail = Fail{E2BIG, "more than " + std::to_string(kMaxKnobsPerRequest) +
                                       " knobs in one request"};
                return false;
            }
            fail = decode_knob(a, c, r);
            return !fail;
        }
        if (seen & (1u << type)) {
            fail = Fail{EINVAL, attr_name(type) + " given twice"};
            return false;
        }
        seen |= 1u << type;
        const bool is_u32 = type == kAttrTop;
        if (mnl_attr_validate(a, is_u32 ? MNL_TYPE_U32 : MNL_TYPE_U8) < 0) {
            fail = Fail{EINVAL, attr_name(type) + (is_u32 ? " is not a u32" : " is not a u8")};
            return false;
        }
        if (is_u32) {
            r.top = mnl_attr_get_u32(a);
            return true;
        }
        const auto v = mnl_attr_get_u8(a);
        if (type == kAttrFormat && v <= static_cast<std::uint8_t>(StatsFormat::prometheus))
            r.format = static_cast<StatsFormat>(v);
        else if (type == kAttrSort && v <= 2)
            r.sort = static_cast<FlowSort>(v);
        else if (type == kAttrFlushLevel && (v == 1 || v == 2))
            r.flush_level = v;
        else
            fail = Fail{EINVAL, attr_name(type) + " out of range: " + std::to_string(v)};
        return !fail;
    });
    if (fail) return fail;
    if ((c == Command::get || c == Command::set) && knobs == 0)
        return Fail{EINVAL, std::string(command_name(c)) + " request names no knob"};
    return std::nullopt;
}

void put_checked(bool ok) {
    if (!ok)
        throw std::length_error("request larger than " + std::to_string(kMaxRequestSize) +
                                " bytes");
}

} // namespace

std::string_view command_name(Command c) noexcept {
    switch (c) {
    case Command::list:
        return "list";
    case Command::get:
        return "get";
    case Command::set:
        return "set";
    case Command::stats:
        return "stats";
    case Command::flows:
        return "flows";
    case Command::flush:
        return "flush";
    }
    return "unknown";
}

std::vector<std::byte> encode_request(const Request& r, std::uint32_t seq,
                                      std::uint32_t sender_port) {
    std::vector<std::byte> buf(kMaxRequestSize);
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = static_cast<std::uint16_t>(r.command);
    nlh->nlmsg_flags = NLM_F_REQUEST;
    nlh->nlmsg_seq = seq;
    nlh->nlmsg_pid = sender_port;
    const auto size = buf.size();
    put_checked(mnl_attr_put_u32_check(nlh, size, kAttrVersion, kProtocolVersion));
    const auto put_knob = [&](const std::string& name, const std::string* value) {
        if (!valid_name(name))
            throw std::invalid_argument("\"" + name +
                                        "\" is not a knob name (letters, digits, _ or -)");
        if (value && !valid_value(*value))
            throw std::invalid_argument("value of " + name +
                                        " is too long or contains control characters");
        auto* nest = mnl_attr_nest_start_check(nlh, size, kAttrKnob);
        put_checked(nest != nullptr);
        put_checked(mnl_attr_put_strz_check(nlh, size, kKnobName, name.c_str()));
        if (value) put_checked(mnl_attr_put_strz_check(nlh, size, kKnobValue, value->c_str()));
        mnl_attr_nest_end(nlh, nest);
    };
    switch (r.command) {
    case Command::list:
        break;
    case Command::get:
        for (const auto& n : r.names) put_knob(n, nullptr);
        break;
    case Command::set:
        for (const auto& [n, v] : r.changes) put_knob(n, &v);
        break;
    case Command::stats:
        put_checked(
            mnl_attr_put_u8_check(nlh, size, kAttrFormat, static_cast<std::uint8_t>(r.format)));
        break;
    case Command::flows:
        put_checked(mnl_attr_put_u32_check(nlh, size, kAttrTop, r.top));
        put_checked(mnl_attr_put_u8_check(nlh, size, kAttrSort, static_cast<std::uint8_t>(r.sort)));
        break;
    case Command::flush:
        put_checked(mnl_attr_put_u8_check(nlh, size, kAttrFlushLevel, r.flush_level));
        break;
    }
    buf.resize(nlh->nlmsg_len);
    return buf;
}

DecodedRequest decode_request(std::span<const std::byte> data, std::size_t size) {
    DecodedRequest d;
    const auto refuse = [&](int error, std::string message) {
        d.error = error;
        d.message = std::move(message);
        return d;
    };
    if (data.size() >= kHeader) {
        nlmsghdr h{};
        std::memcpy(&h, data.data(), kHeader);
        d.has_header = true;
        d.seq = h.nlmsg_seq;
        d.type = h.nlmsg_type;
        d.flags = h.nlmsg_flags;
        if (h.nlmsg_type < NLMSG_MIN_TYPE || (h.nlmsg_flags & NLM_F_REQUEST) == 0) {
            d.ignore = true;
            return d;
        }
    }
    if (size > data.size() || size > kMaxRequestSize)
        return refuse(EMSGSIZE, "request of " + std::to_string(size) + " bytes exceeds the " +
                                    std::to_string(kMaxRequestSize) + "-byte limit");
    if (!d.has_header)
        return refuse(EINVAL, "truncated request: " + std::to_string(size) +
                                  " bytes, shorter than a netlink header");
    data = data.first(size);
    const std::size_t len = [&] {
        nlmsghdr h{};
        std::memcpy(&h, data.data(), kHeader);
        return std::size_t{h.nlmsg_len};
    }();
    if (len < kHeader)
        return refuse(EINVAL, "invalid netlink message length " + std::to_string(len));
    if (len > data.size())
        return refuse(EINVAL, "truncated request: the header says " + std::to_string(len) +
                                  " bytes, " + std::to_string(data.size()) + " arrived");
    if (data.size() > align4(len))
        return refuse(EINVAL, "trailing bytes after the request (one request per datagram)");
    if (!known_command(d.type))
        return refuse(EOPNOTSUPP, "unknown request type " + std::to_string(d.type));

    const AlignedMessage m(data.first(len));
    Request r;
    r.command = static_cast<Command>(d.type);
    if (auto fail = decode_attributes(m, r.command, r)) return refuse(fail->error, fail->message);
    d.request = std::move(r);
    return d;
}

// ---- replies ----

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
    const std::size_t need = 4 + (4 + align4(name.size() + 1)) + (4 + align4(value.size() + 1)) + 8;
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
        w->nlmsg_len += static_cast<std::uint32_t>(align4(attr->nla_len));
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
    if (!room_for(kFlowBytes)) return false;
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
    std::vector<std::byte> buf(kHeader + sizeof(nlmsgerr) + 4 + align4(msg.size() + 1));
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

namespace detail {

std::size_t message_span(std::span<const std::byte> rest, std::size_t& length, std::string& why) {
    if (rest.size() < kHeader) {
        why = "truncated netlink header in reply";
        return 0;
    }
    nlmsghdr h{};
    std::memcpy(&h, rest.data(), kHeader);
    if (h.nlmsg_len < kHeader || h.nlmsg_len > rest.size()) {
        why = "bad netlink message length in reply";
        return 0;
    }
    length = h.nlmsg_len;
    return std::min(align4(length), rest.size());
}

namespace {

bool decode_error(const AlignedMessage& m, Reply& out, std::string& why) {
    const auto* nlh = m.header();
    const std::size_t len = nlh->nlmsg_len;
    if (len < kHeader + sizeof(nlmsgerr)) {
        why = "truncated error message in reply";
        return false;
    }
    nlmsgerr e{};
    std::memcpy(&e, m.at(kHeader), sizeof e);
    if (e.error > 0 || e.error < -4095) {
        why = "invalid errno in error reply";
        return false;
    }
    out.kind = Reply::Kind::error;
    out.error = -e.error;
    if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) == 0) return true;
    std::size_t offset = kHeader + sizeof(nlmsgerr);
    // Uncapped, the whole request follows the error code before the TLVs.
    if ((nlh->nlmsg_flags & NLM_F_CAPPED) == 0 && e.msg.nlmsg_len > kHeader)
        offset += align4(std::size_t{e.msg.nlmsg_len} - kHeader);
    if (offset > len) {
        why = "extended ack outside the error message";
        return false;
    }
    bool bad_msg = false;
    const bool ok = walk_attributes(m.at(offset), len - offset, [&](const nlattr* a) {
        if (mnl_attr_get_type(a) != NLMSGERR_ATTR_MSG) return true; // others are optional
        const auto s = nul_string(a);
        if (!s)
            bad_msg = true;
        else
            out.message = std::string(s->substr(0, kMaxErrorMessage));
        return !bad_msg;
    });
    if (!ok || bad_msg) {
        why = "malformed extended ack in error reply";
        return false;
    }
    return true;
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

bool decode_flow(const nlattr* nest, Reply& out) {
    if (mnl_attr_validate(nest, MNL_TYPE_NESTED) < 0) return false;
    FlowRecord f;
    std::uint32_t seen = 0;
    const bool ok = nested_walk(nest, [&](const nlattr* a) {
        const auto type = mnl_attr_get_type(a);
        if (type == 0 || type > kFlowMax) return true;
        if (seen & (1u << type)) return false;
        seen |= 1u << type;
        const auto u8 = [&](std::uint8_t& v) {
            if (mnl_attr_validate(a, MNL_TYPE_U8) < 0) return false;
            v = mnl_attr_get_u8(a);
            return true;
        };
        const auto u16 = [&](std::uint16_t& v) {
            if (mnl_attr_validate(a, MNL_TYPE_U16) < 0) return false;
            v = mnl_attr_get_u16(a);
            return true;
        };
        const auto u32 = [&](std::uint32_t& v) {
            if (mnl_attr_validate(a, MNL_TYPE_U32) < 0) return false;
            v = mnl_attr_get_u32(a);
            return true;
        };
        const auto time = [&](Nanos& v) {
            if (mnl_attr_validate(a, MNL_TYPE_U64) < 0) return false;
            v = static_cast<Nanos>(mnl_attr_get_u64(a));
            return true;
        };
        switch (type) {
        case kFlowSrcAddr:
            return u32(f.key.src_addr);
        case kFlowDstAddr:
            return u32(f.key.dst_addr);
        case kFlowSrcPort:
            return u16(f.key.src_port);
        case kFlowDstPort:
            return u16(f.key.dst_port);
        case kFlowProtocol:
            return u8(f.key.protocol);
        case kFlowTos:
            return u8(f.key.tos);
        case kFlowInIf:
            return u32(f.key.in_if);
        case kFlowOutIf:
            return u32(f.out_if);
        case kFlowPackets:
            return u32(f.packets);
        case kFlowOctets:
            return u32(f.octets);
        case kFlowFirst:
            return time(f.first);
        case kFlowLast:
            return time(f.last);
        case kFlowTcpFlags:
            return u8(f.tcp_flags);
        case kFlowSrcMask:
            return u8(f.src_mask);
        case kFlowDstMask:
            return u8(f.dst_mask);
        default:
            return true;
        }
    });
    constexpr std::uint32_t kAll = ((1u << (kFlowMax + 1)) - 1) & ~1u;
    if (!ok || seen != kAll) return false;
    out.flows.push_back(f);
    return true;
}

bool decode_data(const AlignedMessage& m, Reply& out, std::string& why) {
    const std::size_t len = m.header()->nlmsg_len;
    std::optional<std::uint32_t> version;
    std::string bad;
    const bool ok = walk_attributes(m.at(kHeader), len - kHeader, [&](const nlattr* a) {
        const auto type = mnl_attr_get_type(a);
        switch (type) {
        case kAttrVersion:
            if (version || mnl_attr_validate(a, MNL_TYPE_U32) < 0) break;
            version = mnl_attr_get_u32(a);
            return true;
        case kAttrKnob:
            if (!decode_knob_reply(a, out)) break;
            return true;
        case kAttrText: {
            const auto s = nul_string(a);
            if (!s) break;
            out.text += *s;
            return true;
        }
        case kAttrNow:
        case kAttrFlowTotal:
            if (mnl_attr_validate(a, MNL_TYPE_U64) < 0) break;
            if (type == kAttrNow)
                out.now = static_cast<Nanos>(mnl_attr_get_u64(a));
            else
                out.flow_total = mnl_attr_get_u64(a);
            return true;
        case kAttrFlow:
            if (!decode_flow(a, out)) break;
            return true;
        default:
            return true; // unknown to this version: validated framing, not used
        }
        bad = attr_name(type);
        return false;
    });
    if (!ok) {
        why = bad.empty() ? "truncated attribute in reply" : "malformed " + bad + " in reply";
        return false;
    }
    if (!version) {
        why = "reply without a protocol version";
        return false;
    }
    if (*version != kProtocolVersion) {
        why = "nflowd speaks protocol version " + std::to_string(*version) + ", nflowctl " +
              std::to_string(kProtocolVersion);
        return false;
    }
    return true;
}

} // namespace

bool decode_reply(std::span<const std::byte> message, Reply& out, std::string& why) {
    const AlignedMessage m(message);
    const auto* nlh = m.header();
    out.type = nlh->nlmsg_type;
    out.flags = nlh->nlmsg_flags;
    out.seq = nlh->nlmsg_seq;
    if (nlh->nlmsg_type == NLMSG_ERROR) return decode_error(m, out, why);
    if (nlh->nlmsg_type == NLMSG_DONE) {
        out.kind = Reply::Kind::done;
        return true;
    }
    if (!known_command(nlh->nlmsg_type)) {
        why = "unexpected message type " + std::to_string(nlh->nlmsg_type) + " in reply";
        return false;
    }
    out.kind = Reply::Kind::data;
    return decode_data(m, out, why);
}

} // namespace detail

} // namespace nflowd::ctl
