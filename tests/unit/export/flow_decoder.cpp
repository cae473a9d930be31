#include "flow_decoder.hpp"

#include <arpa/inet.h>

#include <stdexcept>

namespace nflowd::test {
namespace {

// Reads big-endian fields of one span; any read past the end fails the whole decode.
struct Cursor {
    std::span<const std::byte> b;
    std::size_t at = 0;
    bool bad = false;

    std::size_t left() const { return bad ? 0 : b.size() - at; }
    std::uint64_t read(std::size_t n) {
        if (bad || n > left()) {
            bad = true;
            return 0;
        }
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) v = v << 8 | std::to_integer<std::uint64_t>(b[at + i]);
        at += n;
        return v;
    }
    std::vector<std::uint8_t> bytes(std::size_t n) {
        std::vector<std::uint8_t> out;
        if (bad || n > left()) {
            bad = true;
            return out;
        }
        for (std::size_t i = 0; i < n; ++i) out.push_back(std::to_integer<std::uint8_t>(b[at + i]));
        at += n;
        return out;
    }
};

constexpr std::uint16_t kVarLen = 65535;

// The least bytes a record of template t takes (a variable-length field at least 1).
std::size_t min_record(const DecodedTemplate& t) {
    std::size_t n = 0;
    for (const auto& f : t.fields) n += f.length == kVarLen ? 1 : f.length;
    return n;
}

// RFC 7012 / the IANA registry: the length an element of a fixed-size type must have in a
// template (RFC 7011 6.2: only unsigned integers may be sent reduced), 0 when any is allowed.
// The NAT elements (issue 13): addresses exact, ports unsigned16, natEvent unsigned8,
// observationTimeMilliseconds dateTimeMilliseconds.
std::uint16_t required_length(std::uint16_t ie) {
    switch (ie) {
    case 8:
    case 12:
    case 225:
    case 226:
        return 4; // ipv4Address
    case 27:
    case 28:
    case 281:
    case 282:
        return 16; // ipv6Address
    case 152:
    case 153:
    case 323:
        return 8; // dateTimeMilliseconds
    case 56:
    case 80:
        return 6; // macAddress (link layer, issue 13)
    default:
        return 0;
    }
}
std::uint16_t max_length(std::uint16_t ie) {
    switch (ie) {
    case 7:
    case 11:
    case 58:
    case 227:
    case 228:
        return 2; // unsigned16 (vlanId 58 among them)
    case 4:
    case 230:
        return 1; // unsigned8
    default:
        return 0;
    }
}

bool read_field_spec(Cursor& c, bool ipfix, TemplateField& f) {
    const auto type = static_cast<std::uint16_t>(c.read(2));
    f.length = static_cast<std::uint16_t>(c.read(2));
    f.ie = type & 0x7fff;
    if (ipfix && (type & 0x8000) != 0) f.enterprise = static_cast<std::uint32_t>(c.read(4));
    if (!ipfix && (type & 0x8000) != 0) return false; // v9 has no enterprise bit
    if (!ipfix && f.length == kVarLen) return false;  // nor variable-length fields
    if (f.enterprise == 0 && required_length(f.ie) != 0 && f.length != required_length(f.ie))
        return false;
    if (f.enterprise == 0 && max_length(f.ie) != 0 && f.length > max_length(f.ie)) return false;
    return f.length != 0 && !c.bad;
}

} // namespace

std::uint64_t DecodedRecord::value(std::uint16_t ie) const {
    const auto& b = fields.at(ie);
    if (b.size() > 8) throw std::out_of_range("field wider than 8 bytes");
    std::uint64_t v = 0;
    for (auto x : b) v = v << 8 | x;
    return v;
}

std::string DecodedRecord::text(std::uint16_t ie) const {
    const auto& b = fields.at(ie);
    std::string s(b.begin(), b.end());
    while (!s.empty() && s.back() == '\0') s.pop_back();
    return s;
}

std::string DecodedRecord::address(std::uint16_t ie) const {
    const auto& b = fields.at(ie);
    char buf[INET6_ADDRSTRLEN] = {};
    if (b.size() == 4 && inet_ntop(AF_INET, b.data(), buf, sizeof buf)) return buf;
    if (b.size() == 16 && inet_ntop(AF_INET6, b.data(), buf, sizeof buf)) return buf;
    throw std::out_of_range("not an address field");
}

std::string DecodedRecord::mac(std::uint16_t ie) const {
    const auto& b = fields.at(ie);
    if (b.size() != 6) throw std::out_of_range("not a MAC address field");
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s;
    for (auto x : b) {
        if (!s.empty()) s += ':';
        s += kDigits[x >> 4];
        s += kDigits[x & 15];
    }
    return s;
}

std::size_t DecodedMessage::flow_records() const {
    std::size_t n = 0;
    for (const auto& r : records) n += r.options ? 0 : 1;
    return n;
}

const DecodedTemplate* FlowDecoder::find(std::uint32_t domain, std::uint16_t id) const {
    const auto it = templates_.find({domain, id});
    return it == templates_.end() ? nullptr : &it->second;
}

namespace {

struct SetContext {
    bool ipfix;
    std::uint32_t domain;
    DecodedMessage& msg;
    std::string& error;
    std::map<std::pair<std::uint32_t, std::uint16_t>, DecodedTemplate>& templates;

    bool fail(std::string why) {
        error = std::move(why);
        return false;
    }

    // The rest of a set shorter than any record is padding, and padding is zeros.
    bool padding_ok(Cursor& c, std::size_t min_size) {
        if (c.left() >= min_size) return false;
        for (std::size_t i = c.at; i < c.b.size(); ++i)
            if (c.b[i] != std::byte{0}) return false;
        return true;
    }

    bool learn(DecodedTemplate t) {
        if (t.id < 256) return fail("template id below 256");
        if (t.fields.empty()) return fail("template without fields");
        msg.templates.push_back(t);
        templates[{domain, t.id}] = std::move(t);
        return true;
    }

    bool templates_set(Cursor c) {
        while (!padding_ok(c, 8)) {
            DecodedTemplate t;
            t.id = static_cast<std::uint16_t>(c.read(2));
            const auto n = c.read(2);
            for (std::uint64_t i = 0; i < n; ++i) {
                TemplateField f;
                if (!read_field_spec(c, ipfix, f)) return fail("bad template field");
                t.fields.push_back(f);
            }
            if (c.bad || !learn(std::move(t))) return fail(error.empty() ? "template cut" : error);
        }
        return true;
    }

    bool options_templates_set(Cursor c) {
        while (!padding_ok(c, 10)) {
            DecodedTemplate t;
            t.options = true;
            t.id = static_cast<std::uint16_t>(c.read(2));
            std::uint64_t total = 0, scope = 0;
            if (ipfix) {
                total = c.read(2);
                scope = c.read(2);
            } else {
                scope = c.read(2);
                const auto options = c.read(2);
                if (scope % 4 != 0 || options % 4 != 0) return fail("v9 option lengths");
                scope /= 4;
                total = scope + options / 4;
            }
            if (scope == 0 || scope > total) return fail("bad scope field count");
            t.scope_count = scope;
            for (std::uint64_t i = 0; i < total; ++i) {
                TemplateField f;
                if (!read_field_spec(c, ipfix, f)) return fail("bad options template field");
                t.fields.push_back(f);
            }
            if (c.bad || !learn(std::move(t))) return fail("options template cut");
        }
        return true;
    }

    bool data_set(Cursor c, std::uint16_t id) {
        const auto it = templates.find({domain, id});
        if (it == templates.end()) return fail("data set " + std::to_string(id) + " unknown");
        const DecodedTemplate& t = it->second;
        while (!padding_ok(c, min_record(t))) {
            DecodedRecord r{id, t.options, {}};
            for (const auto& f : t.fields) {
                std::size_t len = f.length;
                if (len == kVarLen) {
                    len = c.read(1);
                    if (len == 255) len = c.read(2);
                }
                auto bytes = c.bytes(len);
                if (c.bad) return fail("record cut");
                if (!r.fields.emplace(f.ie, std::move(bytes)).second) return fail("field repeated");
            }
            msg.records.push_back(std::move(r));
        }
        return true;
    }
};

} // namespace

std::optional<DecodedMessage> FlowDecoder::decode(std::span<const std::byte> bytes) {
    error_.clear();
    Cursor h{bytes};
    DecodedMessage m;
    m.version = static_cast<std::uint16_t>(h.read(2));
    const bool ipfix = m.version == 10;
    if (m.version != 9 && !ipfix) return error_ = "version", std::nullopt;
    if (ipfix) {
        const auto length = h.read(2);
        if (length != bytes.size()) return error_ = "message length", std::nullopt;
    } else {
        m.count = static_cast<std::uint16_t>(h.read(2));
        m.uptime_ms = static_cast<std::uint32_t>(h.read(4));
    }
    m.export_secs = static_cast<std::uint32_t>(h.read(4));
    m.sequence = static_cast<std::uint32_t>(h.read(4));
    m.domain = static_cast<std::uint32_t>(h.read(4));
    if (h.bad) return error_ = "header cut", std::nullopt;
    SetContext ctx{ipfix, m.domain, m, error_, templates_};
    while (h.left() > 0) {
        const auto id = static_cast<std::uint16_t>(h.read(2));
        const auto len = h.read(2);
        if (h.bad || len < 4 || len - 4 > h.left()) return error_ = "set length", std::nullopt;
        Cursor body{bytes.subspan(h.at, len - 4)};
        h.at += len - 4;
        m.set_ids.push_back(id);
        bool ok = false;
        if (id == (ipfix ? 2 : 0))
            ok = ctx.templates_set(body);
        else if (id == (ipfix ? 3 : 1))
            ok = ctx.options_templates_set(body);
        else if (id >= 256)
            ok = ctx.data_set(body, id);
        else
            error_ = "reserved set id";
        if (!ok) return std::nullopt;
    }
    if (!ipfix && m.count != m.templates.size() + m.records.size())
        return error_ = "v9 count", std::nullopt;
    return m;
}

} // namespace nflowd::test
