#include "nflowd/control_protocol.hpp"

#include <gtest/gtest.h>

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>

namespace nflowd::ctl {
namespace {

std::vector<Request> sample_requests() {
    std::vector<Request> out;
    out.push_back(Request{});
    Request get;
    get.command = Command::get;
    get.names = {"hashsize", "inactive-timeout", "version"};
    out.push_back(get);
    Request set;
    set.command = Command::set;
    set.changes = {{"hashsize", "32768"}, {"aggregation", ""}, {"destination", "[::1]:2055"}};
    out.push_back(set);
    Request stats;
    stats.command = Command::stats;
    stats.format = StatsFormat::json;
    out.push_back(stats);
    Request flows;
    flows.command = Command::flows;
    flows.top = 10;
    flows.sort = FlowSort::packets;
    out.push_back(flows);
    Request flush;
    flush.command = Command::flush;
    flush.flush_level = 2;
    out.push_back(flush);
    return out;
}

void set_len(std::vector<std::byte>& m, std::uint32_t len) {
    std::memcpy(m.data(), &len, sizeof len); // nlmsg_len is the first field
}

// A request built attribute by attribute, for shapes encode_request never makes.
struct RawRequest {
    explicit RawRequest(std::uint16_t type, bool version = true,
                        std::uint16_t flags = NLM_F_REQUEST)
        : buf(kMaxRequestSize + 1024) {
        nlh = mnl_nlmsg_put_header(buf.data());
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = flags;
        nlh->nlmsg_seq = 7;
        if (version) mnl_attr_put_u32(nlh, kAttrVersion, kProtocolVersion);
    }
    std::vector<std::byte> bytes() const {
        return {buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(nlh->nlmsg_len)};
    }
    std::vector<std::byte> buf;
    nlmsghdr* nlh;
};

DecodedRequest decode(const std::vector<std::byte>& m) {
    return decode_request(m, m.size());
}

void expect_error(const std::vector<std::byte>& m, int error, std::string_view text) {
    const auto d = decode(m);
    EXPECT_FALSE(d.ignore);
    EXPECT_FALSE(d.request.has_value());
    EXPECT_EQ(d.error, error) << d.message;
    EXPECT_NE(d.message.find(text), std::string::npos) << d.message;
}

std::uint16_t cmd(Command c) {
    return static_cast<std::uint16_t>(c);
}

TEST(ControlProtocol, EveryRequestSurvivesARoundTrip) {
    for (const auto& r : sample_requests()) {
        const auto m = encode_request(r, 99, 1234);
        const auto d = decode(m);
        ASSERT_TRUE(d.request.has_value()) << command_name(r.command) << ": " << d.message;
        EXPECT_EQ(*d.request, r) << command_name(r.command);
        EXPECT_EQ(d.seq, 99u);
        EXPECT_EQ(d.type, cmd(r.command));
        EXPECT_EQ(m.size() % 4, 0u);
    }
}

// Every prefix of every request, with the header's length as sent (so it claims more than
// arrived) and patched to the prefix (consistent header, attributes cut anywhere): never a
// crash or an out-of-bounds read (run under ASan), and a prefix is accepted only when it is
// itself a whole request.
TEST(ControlProtocol, DecoderRefusesEveryTruncation) {
    for (const auto& r : sample_requests()) {
        const auto full = encode_request(r, 1, 1);
        std::set<std::size_t> boundaries; // where each top-level attribute ends
        for (std::size_t off = sizeof(nlmsghdr); off < full.size();) {
            std::uint16_t alen = 0;
            std::memcpy(&alen, full.data() + off, 2);
            off += (alen + 3u) & ~3u;
            boundaries.insert(off);
        }
        for (std::size_t len = 0; len < full.size(); ++len) {
            std::vector<std::byte> cut(full.begin(),
                                       full.begin() + static_cast<std::ptrdiff_t>(len));
            const auto d = decode(cut);
            EXPECT_FALSE(d.request.has_value()) << command_name(r.command) << " at " << len;
            EXPECT_FALSE(d.ignore);
            EXPECT_NE(d.error, 0);
            EXPECT_FALSE(d.message.empty());
            if (len < sizeof(nlmsghdr)) continue;
            set_len(cut, static_cast<std::uint32_t>(len));
            const auto p = decode(cut);
            if (p.request) {
                // Only a cut between two attributes (or in the last one's padding, which
                // netlink allows to be missing) is a whole request: the attributes before
                // it, the rest taking their defaults.
                EXPECT_TRUE(boundaries.count((len + 3) & ~std::size_t{3}))
                    << command_name(r.command) << " at " << len;
                EXPECT_EQ(p.request->command, r.command);
                EXPECT_LE(p.request->names.size(), r.names.size());
                EXPECT_TRUE(
                    std::equal(p.request->names.begin(), p.request->names.end(), r.names.begin()));
                EXPECT_LE(p.request->changes.size(), r.changes.size());
                EXPECT_TRUE(std::equal(p.request->changes.begin(), p.request->changes.end(),
                                       r.changes.begin()));
            } else {
                EXPECT_NE(p.error, 0);
                EXPECT_FALSE(p.message.empty());
            }
        }
    }
}

TEST(ControlProtocol, DecoderSurvivesGarbageAndBitFlips) {
    std::mt19937 rng(1234);
    std::size_t accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        std::vector<std::byte> g(rng() % 300);
        for (auto& b : g) b = std::byte(rng());
        if (g.size() >= 16 && (i & 1)) {
            // Half the garbage gets a plausible header so the attribute code is reached.
            set_len(g, static_cast<std::uint32_t>(g.size() - rng() % 4));
            const std::uint16_t type = cmd(Command::list) + static_cast<std::uint16_t>(rng() % 7);
            std::memcpy(g.data() + 4, &type, 2);
            const std::uint16_t flags = NLM_F_REQUEST;
            std::memcpy(g.data() + 6, &flags, 2);
        }
        const auto d = decode_request(g, g.size() + (i % 5 == 0 ? 100000 : 0));
        if (d.request) {
            ++accepted;
        } else if (!d.ignore) {
            EXPECT_NE(d.error, 0);
        }
    }
    // Flip every bit of every request: accepted or refused, never more.
    for (const auto& r : sample_requests()) {
        const auto m = encode_request(r, 1, 1);
        for (std::size_t byte = 0; byte < m.size(); ++byte)
            for (int bit = 0; bit < 8; ++bit) {
                auto f = m;
                f[byte] ^= std::byte(1u << bit);
                const auto d = decode(f);
                if (!d.request && !d.ignore) {
                    EXPECT_NE(d.error, 0);
                }
            }
    }
    SUCCEED() << accepted << " random datagrams happened to be requests";
}

TEST(ControlProtocol, MalformedRequestsAreRefusedWithAReason) {
    {
        std::vector<std::byte> tiny(8);
        expect_error(tiny, EINVAL, "shorter than a netlink header");
    }
    {
        RawRequest r(0x1ff);
        expect_error(r.bytes(), EOPNOTSUPP, "unknown request type");
    }
    {
        RawRequest r(cmd(Command::list), false);
        expect_error(r.bytes(), EPROTO, "without a protocol version");
    }
    {
        RawRequest r(cmd(Command::list), false);
        mnl_attr_put_u32(r.nlh, kAttrVersion, kProtocolVersion + 1);
        expect_error(r.bytes(), EPROTONOSUPPORT, "protocol version 2");
    }
    {
        RawRequest r(cmd(Command::list));
        mnl_attr_put_u32(r.nlh, kAttrVersion, kProtocolVersion);
        expect_error(r.bytes(), EINVAL, "malformed protocol version");
    }
    {
        RawRequest r(cmd(Command::list), false);
        mnl_attr_put_u16(r.nlh, kAttrVersion, 1); // wrong type: u16 for a u32
        expect_error(r.bytes(), EINVAL, "malformed protocol version");
    }
    {
        RawRequest r(cmd(Command::set));
        mnl_attr_put_u32(r.nlh, kAttrTop, 5);
        expect_error(r.bytes(), EINVAL, "top is not valid in a set request");
    }
    {
        RawRequest r(cmd(Command::flows));
        mnl_attr_put_u16(r.nlh, kAttrTop, 5);
        expect_error(r.bytes(), EINVAL, "top is not a u32");
    }
    {
        RawRequest r(cmd(Command::flows));
        mnl_attr_put_u8(r.nlh, kAttrSort, 9);
        expect_error(r.bytes(), EINVAL, "sort out of range");
    }
    {
        RawRequest r(cmd(Command::flows));
        mnl_attr_put_u8(r.nlh, kAttrSort, 1);
        mnl_attr_put_u8(r.nlh, kAttrSort, 1);
        expect_error(r.bytes(), EINVAL, "sort given twice");
    }
    {
        RawRequest r(cmd(Command::stats));
        mnl_attr_put_u32(r.nlh, 77, 1);
        expect_error(r.bytes(), EINVAL, "unknown attribute 77");
    }
    {
        RawRequest r(cmd(Command::get));
        expect_error(r.bytes(), EINVAL, "names no knob");
    }
    {
        RawRequest r(cmd(Command::get));
        auto* n = mnl_attr_nest_start(r.nlh, kAttrKnob);
        mnl_attr_put_str(r.nlh, kKnobName, "hashsize"); // no NUL
        mnl_attr_nest_end(r.nlh, n);
        expect_error(r.bytes(), EINVAL, "not a NUL-terminated string");
    }
    {
        RawRequest r(cmd(Command::get));
        auto* n = mnl_attr_nest_start(r.nlh, kAttrKnob);
        mnl_attr_put(r.nlh, kKnobName, 6, "ab\0cd"); // a NUL inside
        mnl_attr_nest_end(r.nlh, n);
        expect_error(r.bytes(), EINVAL, "not a NUL-terminated string");
    }
    {
        RawRequest r(cmd(Command::get));
        auto* n = mnl_attr_nest_start(r.nlh, kAttrKnob);
        mnl_attr_put_strz(r.nlh, kKnobName, "../etc");
        mnl_attr_nest_end(r.nlh, n);
        expect_error(r.bytes(), EINVAL, "invalid knob name");
    }
    {
        RawRequest r(cmd(Command::get));
        auto* n = mnl_attr_nest_start(r.nlh, kAttrKnob);
        mnl_attr_put_strz(r.nlh, kKnobName, "debug");
        mnl_attr_put_strz(r.nlh, kKnobValue, "3");
        mnl_attr_nest_end(r.nlh, n);
        expect_error(r.bytes(), EINVAL, "not valid in a get request");
    }
    {
        RawRequest r(cmd(Command::set));
        auto* n = mnl_attr_nest_start(r.nlh, kAttrKnob);
        mnl_attr_put_strz(r.nlh, kKnobName, "debug");
        mnl_attr_nest_end(r.nlh, n);
        expect_error(r.bytes(), EINVAL, "without a value");
    }
    {
        RawRequest r(cmd(Command::set));
        auto* n = mnl_attr_nest_start(r.nlh, kAttrKnob);
        mnl_attr_put_strz(r.nlh, kKnobName, "destination");
        mnl_attr_put_strz(r.nlh, kKnobValue, "1.2.3.4\nnflowd: forged log line");
        mnl_attr_nest_end(r.nlh, n);
        expect_error(r.bytes(), EINVAL, "control characters");
    }
    {
        RawRequest r(cmd(Command::get));
        for (std::size_t i = 0; i <= kMaxKnobsPerRequest; ++i) {
            auto* n = mnl_attr_nest_start(r.nlh, kAttrKnob);
            mnl_attr_put_strz(r.nlh, kKnobName, "debug");
            mnl_attr_nest_end(r.nlh, n);
        }
        expect_error(r.bytes(), E2BIG, "knobs in one request");
    }
    {
        auto m = encode_request(Request{}, 1, 1);
        m.resize(m.size() + 8); // a second message, or garbage, after the first
        expect_error(m, EINVAL, "trailing bytes");
    }
    {
        auto m = encode_request(Request{}, 1, 1);
        set_len(m, 4);
        expect_error(m, EINVAL, "invalid netlink message length");
    }
    {
        RawRequest r(cmd(Command::list));
        auto m = r.bytes();
        const auto d = decode_request(m, kMaxRequestSize + 1);
        EXPECT_EQ(d.error, EMSGSIZE);
        EXPECT_TRUE(d.has_header); // so the error can still name the request's seq
        EXPECT_EQ(d.seq, 7u);
    }
    {
        // An attribute whose length runs past the message: libmnl's own walk would stop
        // quietly and take the rest as a shorter, valid request.
        RawRequest r(cmd(Command::flows));
        mnl_attr_put_u32(r.nlh, kAttrTop, 5);
        auto m = r.bytes();
        std::uint16_t bad = 12;
        std::memcpy(m.data() + m.size() - 8, &bad, 2);
        expect_error(m, EINVAL, "truncated or malformed attribute");
    }
}

TEST(ControlProtocol, NonRequestsAreNeverAnswered) {
    for (std::uint16_t type :
         {std::uint16_t{NLMSG_ERROR}, std::uint16_t{NLMSG_DONE}, std::uint16_t{NLMSG_NOOP}})
        EXPECT_TRUE(decode(RawRequest(type).bytes()).ignore);
    // A reply (NLM_F_MULTI, no NLM_F_REQUEST) sent back at the daemon.
    EXPECT_TRUE(decode(RawRequest(cmd(Command::list), true, NLM_F_MULTI).bytes()).ignore);
}

TEST(ControlProtocol, EncoderRefusesWhatTheDaemonWould) {
    Request r;
    r.command = Command::get;
    r.names = {"bad name"};
    EXPECT_THROW(encode_request(r, 1, 1), std::invalid_argument);
    r.command = Command::set;
    r.changes = {{"debug", std::string(kMaxValueLength + 1, 'x')}};
    EXPECT_THROW(encode_request(r, 1, 1), std::invalid_argument);
    r.changes.clear();
    for (int i = 0; i < 8; ++i) r.changes.emplace_back("aggregation", std::string(10000, '1'));
    EXPECT_THROW(encode_request(r, 1, 1), std::length_error);
}

// ---- replies ----

struct Collected {
    std::vector<std::vector<std::byte>> messages;
};

bool collect(void* ctx, std::span<const std::byte> m) {
    static_cast<Collected*>(ctx)->messages.emplace_back(m.begin(), m.end());
    return true;
}

std::vector<Reply> decode_all(const Collected& c) {
    std::vector<Reply> out;
    for (const auto& m : c.messages) {
        const auto fail = decode_replies(m, [&](Reply&& r) { out.push_back(std::move(r)); });
        EXPECT_FALSE(fail) << fail->message;
    }
    return out;
}

FlowRecord flow(std::uint32_t i) {
    FlowRecord f;
    f.key = FlowKey{0x0a000000 + i,
                    0x0a640001,
                    static_cast<std::uint16_t>(i),
                    80,
                    6 + i % 12,
                    static_cast<std::uint8_t>(i),
                    static_cast<std::uint8_t>(i % 7)};
    f.out_if = 4;
    f.packets = i * 3;
    f.octets = i * 1000;
    f.first = 1'700'000'000'000'000'000 + i;
    f.last = f.first + 5;
    f.tcp_flags = static_cast<std::uint8_t>(i);
    f.src_mask = 8;
    f.dst_mask = 24;
    return f;
}

TEST(ControlProtocol, LargeFlowDumpIsSplitAndComesBackWhole) {
    Collected c;
    ReplyWriter w(Command::flows, 5, 4242, collect, &c);
    constexpr std::uint32_t kFlows = 20000;
    ASSERT_TRUE(w.add_flow_header(kFlows, 123));
    for (std::uint32_t i = 0; i < kFlows; ++i) ASSERT_TRUE(w.add_flow(flow(i)));
    ASSERT_TRUE(w.finish());
    ASSERT_GT(c.messages.size(), 10u);
    std::vector<FlowRecord> got;
    const auto replies = decode_all(c);
    for (std::size_t i = 0; i < replies.size(); ++i) {
        const auto& r = replies[i];
        EXPECT_EQ(r.seq, 5u);
        EXPECT_LE(c.messages[i].size(), kMaxReplyMessage);
        if (i + 1 == replies.size()) {
            EXPECT_EQ(r.kind, Reply::Kind::done);
        } else {
            EXPECT_EQ(r.kind, Reply::Kind::data);
            EXPECT_TRUE(r.flags & NLM_F_MULTI);
            got.insert(got.end(), r.flows.begin(), r.flows.end());
        }
    }
    ASSERT_EQ(replies.front().flow_total, std::optional<std::uint64_t>(kFlows));
    ASSERT_EQ(replies.front().now, std::optional<Nanos>(123));
    ASSERT_EQ(got.size(), kFlows);
    for (std::uint32_t i = 0; i < kFlows; ++i) {
        const auto want = flow(i);
        EXPECT_EQ(got[i].key, want.key);
        EXPECT_EQ(got[i].octets, want.octets);
        EXPECT_EQ(got[i].first, want.first);
        EXPECT_EQ(got[i].last, want.last);
        EXPECT_EQ(got[i].dst_mask, want.dst_mask);
    }
}

// An IPv6 flow row carries its addresses and flow label besides the shared fields; its
// attributes come all or none.
TEST(ControlProtocol, Ipv6FlowRowsComeBackWhole) {
    FlowRecord v6 = flow(7);
    v6.family = Family::ipv6;
    v6.key.src_addr = v6.key.dst_addr = 0;
    v6.src6 = {0x20, 0x01, 0x0d, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    v6.dst6 = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99};
    v6.flow_label = 0xfffff;
    Collected c;
    ReplyWriter w(Command::flows, 5, 1, collect, &c);
    ASSERT_TRUE(w.add_flow_header(2, 1));
    ASSERT_TRUE(w.add_flow(flow(1)));
    ASSERT_TRUE(w.add_flow(v6));
    ASSERT_TRUE(w.finish());
    std::vector<FlowRecord> got;
    for (const auto& r : decode_all(c)) got.insert(got.end(), r.flows.begin(), r.flows.end());
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].family, Family::ipv4);
    EXPECT_EQ(got[0].key, flow(1).key);
    EXPECT_EQ(got[1].family, Family::ipv6);
    EXPECT_EQ(got[1].key, v6.key);
    EXPECT_EQ(got[1].src6, v6.src6);
    EXPECT_EQ(got[1].dst6, v6.dst6);
    EXPECT_EQ(got[1].flow_label, v6.flow_label);
    EXPECT_EQ(got[1].octets, v6.octets);

    // The source address attribute retyped to one the decoder skips: half an IPv6 row.
    auto m = c.messages.front();
    const std::array<std::byte, 6> attr{std::byte{20}, std::byte{0},    std::byte{kFlowSrcAddr6},
                                        std::byte{0},  std::byte{0x20}, std::byte{0x01}};
    const auto at = std::search(m.begin(), m.end(), attr.begin(), attr.end());
    ASSERT_NE(at, m.end());
    at[2] = std::byte{kFlowMax6 + 5};
    EXPECT_TRUE(decode_replies(m, [](Reply&&) {}));
}

TEST(ControlProtocol, LongTextAndKnobsComeBackExactly) {
    std::string text;
    for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + "\n";
    Collected c;
    ReplyWriter w(Command::stats, 1, 1, collect, &c);
    ASSERT_TRUE(w.add_text(text));
    ASSERT_TRUE(w.finish());
    std::string got;
    for (const auto& r : decode_all(c)) got += r.text;
    EXPECT_EQ(got, text);

    Collected k;
    ReplyWriter kw(Command::list, 1, 1, collect, &k);
    const KnobValue a{"aggregation", std::string(kMaxReplyMessage, '1'), true};
    const KnobValue b{"version", "0.1.0", false};
    ASSERT_TRUE(kw.add_knob(b));
    ASSERT_TRUE(kw.add_knob(a)); // too long for one message: cut, marked
    ASSERT_TRUE(kw.add_knob(b));
    ASSERT_TRUE(kw.finish());
    std::vector<KnobValue> knobs;
    for (const auto& r : decode_all(k)) knobs.insert(knobs.end(), r.knobs.begin(), r.knobs.end());
    ASSERT_EQ(knobs.size(), 3u);
    EXPECT_EQ(knobs[0], b);
    EXPECT_EQ(knobs[2], b);
    EXPECT_TRUE(knobs[1].writable);
    EXPECT_EQ(knobs[1].value.substr(knobs[1].value.size() - 3), "...");
}

TEST(ControlProtocol, ErrorsCarryTheirMessage) {
    const auto d = decode(encode_request(Request{}, 77, 1));
    const auto m = encode_error(77, 1, d, EPERM, "permission denied: set needs uid 0");
    std::vector<Reply> got;
    auto fail = decode_replies(m, [&](Reply&& r) { got.push_back(std::move(r)); });
    ASSERT_FALSE(fail) << fail->message;
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, Reply::Kind::error);
    EXPECT_EQ(got[0].error, EPERM);
    EXPECT_EQ(got[0].seq, 77u);
    EXPECT_EQ(got[0].message, "permission denied: set needs uid 0");
    EXPECT_TRUE(got[0].flags & NLM_F_ACK_TLVS);

    // Uncapped, as the kernel sends them: the whole request sits before the TLVs.
    std::vector<std::byte> buf(1024);
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = NLMSG_ERROR;
    nlh->nlmsg_flags = NLM_F_ACK_TLVS;
    auto* e = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nlmsgerr) + 12));
    e->error = -EINVAL;
    e->msg.nlmsg_len = sizeof(nlmsghdr) + 12;
    mnl_attr_put_strz(nlh, NLMSGERR_ATTR_MSG, "uncapped");
    buf.resize(nlh->nlmsg_len);
    got.clear();
    fail = decode_replies(buf, [&](Reply&& r) { got.push_back(std::move(r)); });
    ASSERT_FALSE(fail) << fail->message;
    EXPECT_EQ(got.at(0).message, "uncapped");
    EXPECT_EQ(got.at(0).error, EINVAL);
}

// The client's decoder gets the same treatment: whatever arrives, no crash, and a cut
// message is never taken for a whole one.
TEST(ControlProtocol, ReplyDecoderRefusesTruncationsAndGarbage) {
    Collected c;
    ReplyWriter w(Command::flows, 5, 1, collect, &c);
    w.add_flow_header(3, 1);
    for (std::uint32_t i = 0; i < 3; ++i) w.add_flow(flow(i));
    w.finish();
    const auto& m = c.messages.front();
    for (std::size_t len = 0; len < m.size(); ++len) {
        std::vector<std::byte> cut(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(len));
        std::size_t flows = 0;
        const bool ok = !decode_replies(cut, [&](Reply&& r) { flows += r.flows.size(); });
        EXPECT_FALSE(ok && flows == 3) << len;
        if (len >= sizeof(nlmsghdr)) {
            set_len(cut, static_cast<std::uint32_t>(len));
            flows = 0;
            (void)decode_replies(cut, [&](Reply&& r) { flows += r.flows.size(); });
            EXPECT_LT(flows, 3u) << len;
        }
    }
    std::mt19937 rng(99);
    for (int i = 0; i < 20000; ++i) {
        auto g = m;
        for (int k = 0; k < 4; ++k) g[rng() % g.size()] = std::byte(rng());
        (void)decode_replies(g, [](Reply&&) {});
    }
}

} // namespace
} // namespace nflowd::ctl
