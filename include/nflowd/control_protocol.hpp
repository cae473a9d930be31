// The nflowctl <-> nflowd wire format over NETLINK_USERSOCK: message types, attributes and
// the encoders/decoders both sides share. Pure (no sockets), so it can be fed garbage.
#pragma once

#include "nflowd/packet.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nflowd::ctl {

// Error idiom of the control protocol: encoders throw (std::length_error,
// std::invalid_argument: the caller's input is at fault); decoders never throw and return a
// failure as a value, a DecodeError (positive errno and why) or DecodedRequest::error.
struct DecodeError {
    int error = 0;
    std::string message;
};

// Bumped on any incompatible change; every request and every data reply carries it.
constexpr std::uint32_t kProtocolVersion = 1;

// "nflw": the default --control_id, nflowd's well-known netlink port id.
constexpr std::uint32_t kDefaultPortId = 0x6e666c77;

// A request larger than this is refused (EMSGSIZE) rather than read in part.
constexpr std::size_t kMaxRequestSize = 64 * 1024;
// Reply messages stay below this, so one recv() buffer of kReplyBufferSize always holds one;
// a bigger reply (a flow dump, a long stats text) is split over NLM_F_MULTI messages.
constexpr std::size_t kMaxReplyMessage = 32 * 1024;
constexpr std::size_t kReplyBufferSize = 64 * 1024;
// Limits a request must respect; they keep a hostile request from costing the daemon much.
constexpr std::size_t kMaxNameLength = 64;
constexpr std::size_t kMaxValueLength = 16 * 1024;
constexpr std::size_t kMaxKnobsPerRequest = 256;

// Message types (>= NLMSG_MIN_TYPE). A data reply carries the request's type.
enum class Command : std::uint16_t {
    list = 0x100, // every knob
    get = 0x101,  // named knobs
    set = 0x102,  // change knobs, all or nothing
    stats = 0x103,
    flows = 0x104,
    flush = 0x105,
};
constexpr bool changes_state(Command c) noexcept {
    return c == Command::set || c == Command::flush;
}
// What only uid 0 or the control group may ask: changes, and the flow dump (every forwarded
// connection of the router, which conntrack too keeps to root).
constexpr bool needs_privilege(Command c) noexcept {
    return changes_state(c) || c == Command::flows;
}
std::string_view command_name(Command c) noexcept;

// Top-level attributes.
enum Attr : std::uint16_t {
    kAttrUnspec = 0,
    kAttrVersion = 1,    // u32, required in every request
    kAttrKnob = 2,       // nested KnobAttr; request get: name; set: name + value; reply: all
    kAttrFormat = 3,     // u8 StatsFormat (stats request)
    kAttrTop = 4,        // u32, 0 = every flow (flows request)
    kAttrSort = 5,       // u8 FlowSort (flows request)
    kAttrFlushLevel = 6, // u8 1 or 2 (flush request)
    kAttrText = 7,       // NUL-terminated chunk of text (stats reply)
    kAttrNow = 8,        // u64 daemon wall time, ns (flows reply, first message)
    kAttrFlowTotal = 9,  // u64 active flows in the daemon (flows reply, first message)
    kAttrFlow = 10,      // nested FlowAttr (flows reply)
    kAttrMax = kAttrFlow,
};
enum KnobAttr : std::uint16_t {
    kKnobName = 1,     // NUL-terminated string
    kKnobValue = 2,    // NUL-terminated string
    kKnobWritable = 3, // u8 0/1 (reply)
    kKnobMax = kKnobWritable,
};
enum FlowAttr : std::uint16_t {
    kFlowSrcAddr = 1, // u32, host order, as every integer here
    kFlowDstAddr,     // u32
    kFlowSrcPort,     // u16
    kFlowDstPort,     // u16
    kFlowProtocol,    // u8
    kFlowTos,         // u8
    kFlowInIf,        // u32
    kFlowOutIf,       // u32
    kFlowPackets,     // u32
    kFlowOctets,      // u32
    kFlowFirst,       // u64 ns
    kFlowLast,        // u64 ns
    kFlowTcpFlags,    // u8
    kFlowSrcMask,     // u8
    kFlowDstMask,     // u8
    kFlowMax = kFlowDstMask,
    // An IPv6 flow adds these (the u32 addresses are then 0); an IPv4 flow has neither.
    kFlowSrcAddr6 = kFlowMax + 1, // 16 bytes, network order
    kFlowDstAddr6,                // 16 bytes
    kFlowLabel,                   // u32
    kFlowMax6 = kFlowLabel,
};

enum class StatsFormat : std::uint8_t { text = 0, json = 1, prometheus = 2 };
enum class FlowSort : std::uint8_t { none = 0, bytes = 1, packets = 2 };

struct Request {
    Command command = Command::list;
    std::vector<std::string> names;                           // get
    std::vector<std::pair<std::string, std::string>> changes; // set, in the order given
    StatsFormat format = StatsFormat::text;                   // stats
    std::uint32_t top = 0;                                    // flows
    FlowSort sort = FlowSort::none;                           // flows
    std::uint8_t flush_level = 1;                             // flush

    friend bool operator==(const Request&, const Request&) = default;
};

// One request as a datagram (a single netlink message with NLM_F_REQUEST). Throws
// std::length_error when it would exceed kMaxRequestSize and std::invalid_argument when a
// name or value breaks the limits the daemon enforces (so nflowctl fails before sending).
std::vector<std::byte> encode_request(const Request& request, std::uint32_t seq,
                                      std::uint32_t sender_port);

struct DecodedRequest {
    // Whether the datagram had a netlink header at all; seq/type/flags are from it.
    bool has_header = false;
    std::uint32_t seq = 0;
    std::uint16_t type = 0;
    std::uint16_t flags = 0;
    // Not a request (an error, ack, done or reply message, or no NLM_F_REQUEST): never
    // answered, so that two peers can never bounce errors at each other.
    bool ignore = false;
    std::optional<Request> request;
    int error = 0;       // positive errno when !request && !ignore
    std::string message; // why, for the extended ack
};

// Decodes one datagram as received (`size` may exceed data.size() when the kernel said
// the datagram was truncated: then it is refused as oversized). Every length, type and
// string is checked; nothing here trusts the peer. Never reads outside `data`.
DecodedRequest decode_request(std::span<const std::byte> data, std::size_t size);

struct KnobValue {
    std::string name;
    std::string value;
    bool writable = false;
    friend bool operator==(const KnobValue&, const KnobValue&) = default;
};

// Builds the daemon's answers. Messages are handed to `send` one by one, each at most
// kMaxReplyMessage bytes; `send` returns false to abandon the reply (peer gone).
class ReplyWriter {
  public:
    using Sink = bool (*)(void* ctx, std::span<const std::byte> message);
    ReplyWriter(Command command, std::uint32_t seq, std::uint32_t peer_port, Sink sink, void* ctx);

    bool add_knob(const KnobValue& knob);
    bool add_text(std::string_view text); // split into chunks as needed
    bool add_flow_header(std::uint64_t total, Nanos now);
    bool add_flow(const FlowRecord& flow);
    // Sends what is pending, then NLMSG_DONE. Returns false if a send failed.
    bool finish();
    bool failed() const noexcept { return failed_; }

  private:
    bool room_for(std::size_t attr_bytes);
    bool flush_message();
    void start_message();

    Command command_;
    std::uint32_t seq_;
    std::uint32_t port_;
    Sink sink_;
    void* ctx_;
    std::vector<std::byte> buf_;
    bool has_data_ = false; // the current message has attributes beyond the version
    bool failed_ = false;
};

// An NLMSG_ERROR message: -error in nlmsgerr, the request's header echoed (capped), and
// `message` as NLMSGERR_ATTR_MSG with NLM_F_ACK_TLVS. `error` is a positive errno.
std::vector<std::byte> encode_error(std::uint32_t seq, std::uint32_t peer_port,
                                    const DecodedRequest& request, int error,
                                    std::string_view message);

// One message of the daemon's answer, as the client sees it.
struct Reply {
    enum class Kind { data, done, error };
    Kind kind = Kind::data;
    std::uint16_t type = 0;
    std::uint16_t flags = 0;
    std::uint32_t seq = 0;
    int error = 0;       // positive errno (Kind::error; 0 = plain ack)
    std::string message; // NLMSGERR_ATTR_MSG, if any
    std::vector<KnobValue> knobs;
    std::string text;
    std::optional<std::uint64_t> flow_total;
    std::optional<Nanos> now;
    std::vector<FlowRecord> flows;
};

// Walks the messages of one received datagram: `fn(Reply&&)` gets each well-formed one in
// order; the first malformed one stops the walk and is returned (EPROTO and why).
std::optional<DecodeError> decode_replies(std::span<const std::byte> datagram,
                                          const std::function<void(Reply&&)>& fn);

} // namespace nflowd::ctl
