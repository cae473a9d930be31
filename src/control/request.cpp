// The request half of the control protocol: nflowctl encodes, the daemon decodes and refuses
// with an errno and a message anything it does not fully understand.
#include "protocol_wire.hpp"

#include <cerrno>
#include <stdexcept>

namespace nflowd::ctl {

namespace {

using namespace wire;

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

std::string knob_part(std::uint16_t type) {
    return type == kKnobName ? "name" : "value";
}

// Reads the name and (set) value of a knob nest.
std::optional<DecodeError> knob_strings(const nlattr* nest, Command c,
                                        std::optional<std::string_view>& name,
                                        std::optional<std::string_view>& value) {
    std::optional<DecodeError> fail;
    const bool ok = nested_walk(nest, [&](const nlattr* a) {
        const auto type = mnl_attr_get_type(a);
        auto& slot = type == kKnobName ? name : value;
        if (type != kKnobName && !(type == kKnobValue && c == Command::set))
            fail = DecodeError{EINVAL, "knob attribute " + std::to_string(type) +
                                           " is not valid in a " + std::string(command_name(c)) +
                                           " request"};
        else if (slot)
            fail = DecodeError{EINVAL, "knob " + knob_part(type) + " given twice"};
        else if (!(slot = nul_string(a)))
            fail =
                DecodeError{EINVAL, "knob " + knob_part(type) + " is not a NUL-terminated string"};
        return !fail;
    });
    if (fail) return fail;
    if (!ok) return DecodeError{EINVAL, "truncated attribute inside a knob"};
    return std::nullopt;
}

// Decodes a knob nest of a get (name only) or set (name and value) request.
std::optional<DecodeError> decode_knob(const nlattr* nest, Command c, Request& r) {
    if (mnl_attr_validate(nest, MNL_TYPE_NESTED) < 0)
        return DecodeError{EINVAL, "malformed knob attribute"};
    std::optional<std::string_view> name, value;
    if (auto fail = knob_strings(nest, c, name, value)) return fail;
    if (!name) return DecodeError{EINVAL, "knob without a name"};
    if (!valid_name(*name))
        return DecodeError{EINVAL, "invalid knob name (1-64 letters, digits, _ or -)"};
    if (c == Command::get) {
        r.names.emplace_back(*name);
        return std::nullopt;
    }
    if (!value) return DecodeError{EINVAL, "knob " + std::string(*name) + " without a value"};
    if (!valid_value(*value))
        return DecodeError{EINVAL, "value of " + std::string(*name) +
                                       " is too long or contains control characters"};
    r.changes.emplace_back(*name, *value);
    return std::nullopt;
}

// First pass over the attributes: framing, and the version, which decides how the rest may
// be read.
std::optional<DecodeError> check_version(const AlignedMessage& m) {
    std::optional<std::uint32_t> version;
    bool version_bad = false;
    if (!walk_attributes(m.payload(), m.payload_size(), [&](const nlattr* a) {
            if (mnl_attr_get_type(a) != kAttrVersion) return true;
            if (version || mnl_attr_validate(a, MNL_TYPE_U32) < 0)
                version_bad = true;
            else
                version = mnl_attr_get_u32(a);
            return true;
        }))
        return DecodeError{EINVAL, "truncated or malformed attribute"};
    if (version_bad) return DecodeError{EINVAL, "malformed protocol version attribute"};
    if (!version) return DecodeError{EPROTO, "request without a protocol version"};
    if (*version != kProtocolVersion)
        return DecodeError{EPROTONOSUPPORT, "protocol version " + std::to_string(*version) +
                                                " is not supported, nflowd speaks version " +
                                                std::to_string(kProtocolVersion)};
    return std::nullopt;
}

// A scalar option of stats, flows or flush (format, top, sort, flush level).
std::optional<DecodeError> decode_scalar(const nlattr* a, std::uint16_t type, Request& r) {
    const bool is_u32 = type == kAttrTop;
    if (mnl_attr_validate(a, is_u32 ? MNL_TYPE_U32 : MNL_TYPE_U8) < 0)
        return DecodeError{EINVAL, attr_name(type) + (is_u32 ? " is not a u32" : " is not a u8")};
    if (is_u32) {
        r.top = mnl_attr_get_u32(a);
        return std::nullopt;
    }
    const auto v = mnl_attr_get_u8(a);
    if (type == kAttrFormat && v <= static_cast<std::uint8_t>(StatsFormat::prometheus))
        r.format = static_cast<StatsFormat>(v);
    else if (type == kAttrSort && v <= 2)
        r.sort = static_cast<FlowSort>(v);
    else if (type == kAttrFlushLevel && (v == 1 || v == 2))
        r.flush_level = v;
    else
        return DecodeError{EINVAL, attr_name(type) + " out of range: " + std::to_string(v)};
    return std::nullopt;
}

// The second pass: every attribute known, allowed in this command, and given once.
class AttributeDecoder {
  public:
    AttributeDecoder(Command c, Request& r) : command_(c), request_(r) {}

    std::optional<DecodeError> operator()(const nlattr* a) {
        const auto type = mnl_attr_get_type(a);
        if (type == kAttrUnspec || type > kAttrMax)
            return DecodeError{EINVAL, "unknown " + attr_name(type)};
        if (!allowed_in(command_, type))
            return DecodeError{EINVAL, attr_name(type) + " is not valid in a " +
                                           std::string(command_name(command_)) + " request"};
        if (type == kAttrVersion) return std::nullopt;
        if (type == kAttrKnob) {
            if (++knobs_ > kMaxKnobsPerRequest)
                return DecodeError{E2BIG, "more than " + std::to_string(kMaxKnobsPerRequest) +
                                              " knobs in one request"};
            return decode_knob(a, command_, request_);
        }
        if (seen_ & (1u << type)) return DecodeError{EINVAL, attr_name(type) + " given twice"};
        seen_ |= 1u << type;
        return decode_scalar(a, type, request_);
    }
    std::size_t knobs() const noexcept { return knobs_; }

  private:
    Command command_;
    Request& request_;
    std::uint32_t seen_ = 0; // bit per scalar attribute type
    std::size_t knobs_ = 0;
};

std::optional<DecodeError> decode_attributes(const AlignedMessage& m, Command c, Request& r) {
    if (auto fail = check_version(m)) return fail;
    AttributeDecoder decode(c, r);
    std::optional<DecodeError> fail;
    walk_attributes(m.payload(), m.payload_size(), [&](const nlattr* a) {
        fail = decode(a);
        return !fail;
    });
    if (fail) return fail;
    if ((c == Command::get || c == Command::set) && decode.knobs() == 0)
        return DecodeError{EINVAL, std::string(command_name(c)) + " request names no knob"};
    return std::nullopt;
}

// The framing of one datagram: one whole request, nothing after it, of a known type.
std::optional<DecodeError> check_framing(std::span<const std::byte> data, std::uint16_t type) {
    const std::size_t len = message_length(data);
    if (len < kHeader)
        return DecodeError{EINVAL, "invalid netlink message length " + std::to_string(len)};
    if (len > data.size())
        return DecodeError{EINVAL, "truncated request: the header says " + std::to_string(len) +
                                       " bytes, " + std::to_string(data.size()) + " arrived"};
    if (data.size() > netlink_align(len))
        return DecodeError{EINVAL, "trailing bytes after the request (one request per datagram)"};
    if (!known_command(type))
        return DecodeError{EOPNOTSUPP, "unknown request type " + std::to_string(type)};
    return std::nullopt;
}

void put_checked(bool ok) {
    if (!ok)
        throw std::length_error("request larger than " + std::to_string(kMaxRequestSize) +
                                " bytes");
}

void put_knob(nlmsghdr* nlh, std::size_t size, const std::string& name, const std::string* value) {
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
}

void put_arguments(nlmsghdr* nlh, std::size_t size, const Request& r) {
    switch (r.command) {
    case Command::list:
        break;
    case Command::get:
        for (const auto& n : r.names) put_knob(nlh, size, n, nullptr);
        break;
    case Command::set:
        for (const auto& [n, v] : r.changes) put_knob(nlh, size, n, &v);
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
}

} // namespace

std::vector<std::byte> encode_request(const Request& r, std::uint32_t seq,
                                      std::uint32_t sender_port) {
    std::vector<std::byte> buf(kMaxRequestSize);
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = static_cast<std::uint16_t>(r.command);
    nlh->nlmsg_flags = NLM_F_REQUEST;
    nlh->nlmsg_seq = seq;
    nlh->nlmsg_pid = sender_port;
    put_checked(mnl_attr_put_u32_check(nlh, buf.size(), kAttrVersion, kProtocolVersion));
    put_arguments(nlh, buf.size(), r);
    buf.resize(nlh->nlmsg_len);
    return buf;
}

DecodedRequest decode_request(std::span<const std::byte> data, std::size_t size) {
    DecodedRequest d;
    const auto refuse = [&](DecodeError e) {
        d.error = e.error;
        d.message = std::move(e.message);
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
        return refuse({EMSGSIZE, "request of " + std::to_string(size) + " bytes exceeds the " +
                                     std::to_string(kMaxRequestSize) + "-byte limit"});
    if (!d.has_header)
        return refuse({EINVAL, "truncated request: " + std::to_string(size) +
                                   " bytes, shorter than a netlink header"});
    data = data.first(size);
    if (auto fail = check_framing(data, d.type)) return refuse(std::move(*fail));
    const AlignedMessage m(data.first(message_length(data)));
    Request r;
    r.command = static_cast<Command>(d.type);
    if (auto fail = decode_attributes(m, r.command, r)) return refuse(std::move(*fail));
    d.request = std::move(r);
    return d;
}

} // namespace nflowd::ctl
