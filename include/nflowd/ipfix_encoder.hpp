// NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) wire format: templates, options records and flow
// records packed into messages no longer than an MTU. Pure computation, like v5_encoder.
#pragma once

#include "nflowd/nat_table.hpp"
#include "nflowd/packet.hpp"
#include "nflowd/sampler.hpp"
#include "nflowd/v5_encoder.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace nflowd {

// ipt_NETFLOW's `protocol` values: the version number in the header.
enum class ExportProtocol : std::uint8_t { v5 = 5, v9 = 9, ipfix = 10 };

// Template IDs (data sets use them as set IDs; RFC 7011 requires > 255).
constexpr std::uint16_t kTemplateIpv4 = 256;
constexpr std::uint16_t kTemplateIpv6 = 257;
constexpr std::uint16_t kTemplateSampling = 258; // options: samplingInterval 1
constexpr std::uint16_t kTemplateStats = 259;    // options: RFC 7011 section 4 statistics
constexpr std::uint16_t kTemplateIfNames = 260;  // options: ifIndex -> ifName, ifDescr
// NAT (issue 13): data records with the translated fields, and NAT event records.
constexpr std::uint16_t kTemplateIpv4Nat = 261;
constexpr std::uint16_t kTemplateIpv6Nat = 262;
constexpr std::uint16_t kTemplateNatEvent4 = 263;
constexpr std::uint16_t kTemplateNatEvent6 = 264;
// Link layer (issue 13): the data records of flows that have MACs, a VLAN or an observation
// point (FlowRecord::extended()), the plain (or NAT) record with sourceMacAddress (56),
// destinationMacAddress (80), vlanId (58) and observationPointId (138) after it (before the
// NAT fields); what a flow lacks is 0. Flows with none of them (OUTPUT, --read of raw IP)
// keep the plain templates.
constexpr std::uint16_t kTemplateIpv4Link = 265;
constexpr std::uint16_t kTemplateIpv6Link = 266;
constexpr std::uint16_t kTemplateIpv4NatLink = 267;
constexpr std::uint16_t kTemplateIpv6NatLink = 268;

constexpr std::size_t kV9HeaderSize = 20;
constexpr std::size_t kIpfixHeaderSize = 16;
// Data record sizes (the templates' field lengths summed; static_asserts in the encoder).
constexpr std::size_t kV9Ipv4RecordSize = 53;
constexpr std::size_t kV9Ipv6RecordSize = 81;
constexpr std::size_t kIpfixIpv4RecordSize = 61;
constexpr std::size_t kIpfixIpv6RecordSize = 89;
constexpr std::size_t kNat4TailSize = 12; // 225, 226, 227, 228
constexpr std::size_t kNat6TailSize = 36; // 281, 282, 227, 228
constexpr std::size_t kNatEvent4RecordSize = 34;
constexpr std::size_t kNatEvent6RecordSize = 82;
constexpr std::size_t kLinkTailSize = 18; // 56, 80, 58, 138
// Room for the header and every template in one message, with margin: the --mtu floor.
constexpr std::size_t kMinMessageSize = 512;
constexpr std::size_t kMaxMessageSize = 65507; // the most one UDP/IPv4 datagram carries
// v9 has no variable-length fields: names are sent NUL-padded in fields of these sizes.
constexpr std::size_t kV9IfNameSize = 16; // IFNAMSIZ
constexpr std::size_t kV9IfDescrSize = 64;

// The default message size for a collector: a 1500-byte Ethernet MTU less IP and UDP headers.
constexpr std::size_t default_mtu(bool ipv6_collector) noexcept {
    return ipv6_collector ? 1500 - 48 : 1500 - 28;
}

// What the exporter statistics options record reports (RFC 7011 section 4), each since start.
struct ExportTotals {
    std::uint64_t messages = 0;        // exportedMessageTotalCount (41)
    std::uint64_t flows = 0;           // exportedFlowRecordTotalCount (42)
    std::uint64_t octets = 0;          // exportedOctetTotalCount (40): message bytes sent
    std::uint64_t ignored_packets = 0; // ignoredPacketTotalCount (164): NFLOG losses
    std::uint64_t not_sent_flows = 0;  // notSentFlowTotalCount (166)
};

// One row of the interface-names options record (filled by the next issue).
struct InterfaceName {
    std::uint32_t ifindex = 0;
    std::string name;  // ifName (82)
    std::string descr; // ifDescr (83)
};

// Builds one export stream's messages (one builder per destination: sequence numbers are
// per stream). Records are added one at a time; an add that does not fit returns false and
// changes nothing, and the caller finishes the message and adds again. finish() writes the
// header and returns the message, valid until the next add. V5Params serves all versions:
// boot_time is v9's sysUptime 0, engine_id the v9 source ID and IPFIX observation domain.
class MessageBuilder {
  public:
    // mtu is clamped to [kMinMessageSize, kMaxMessageSize].
    MessageBuilder(ExportProtocol protocol, std::size_t mtu);

    // The data templates, the sampling and statistics options templates, and the
    // interface-names one if `if_names`: every template the data and options records use.
    bool add_templates(bool if_names = false);
    // Options records; their scope is the observation domain (IPFIX) or system (v9), whose
    // value is the engine_id.
    // samplingInterval and samplingAlgorithm as announced; unsampled: 1 and 1 (deterministic
    // 1 in 1), what nflowd always sent before it could sample.
    bool add_sampling(const V5Params& params, const SamplingAnnouncement& announced = {});
    bool add_stats(const ExportTotals& totals, const V5Params& params);
    bool add_if_name(const InterfaceName& row); // names longer than 65535 bytes are cut
    bool add_flow(const FlowRecord& record, const ExportTime& time, const V5Params& params);

    // NAT (issue 13). The NAT data templates, and the NAT event ones if `events`, in a
    // template set of their own (after add_templates: they do not fit a 512-byte message
    // together).
    bool add_nat_templates(bool events);
    // A flow record with the translated addresses and ports (template 261/262).
    bool add_nat_flow(const FlowRecord& record, const NatTranslation& nat, const ExportTime& time,
                      const V5Params& params);
    // A NAT event record (template 263/264); counted as a data record (events()).
    bool add_nat_event(const NatEvent& event, const ExportTime& time);

    // Link layer (issue 13): templates 265/266, and 267/268 (NAT with link layer) if `nat`, in
    // a template set of their own (as the NAT ones: after add_templates). add_flow and
    // add_nat_flow use them for a record that is extended().
    bool add_link_templates(bool nat);

    // Closes the open set, writes the header; v9 count = records + templates, IPFIX sequence =
    // data records sent before this message. Dated max(time.now, the latest record's Last).
    // Empty span when nothing was added.
    std::span<const std::byte> finish(const ExportTime& time, const V5Params& params) noexcept;

    // Changes the MTU; the message in progress must be finished first (else false).
    bool set_mtu(std::size_t mtu);

    ExportProtocol protocol() const noexcept { return protocol_; }
    std::size_t mtu() const noexcept { return buf_.size(); }
    bool empty() const noexcept { return pos_ == 0; }
    std::size_t flows() const noexcept { return flows_; }         // flow records in progress
    std::size_t templates() const noexcept { return templates_; } // template records in progress
    std::size_t options() const noexcept { return options_; }     // options data records
    std::size_t events() const noexcept { return events_; }       // NAT event records
    std::uint32_t sequence() const noexcept { return sequence_; } // the next header's
    std::uint64_t messages() const noexcept { return messages_; } // finished so far

  private:
    bool v9() const noexcept { return protocol_ == ExportProtocol::v9; }
    std::size_t header_size() const noexcept { return v9() ? kV9HeaderSize : kIpfixHeaderSize; }
    // Makes room for a record of `size` bytes in set `set_id`, opening (and closing the
    // previous) set as needed. Returns the record's offset, or 0 when it does not fit.
    std::size_t reserve(std::uint16_t set_id, std::size_t size) noexcept;
    void close_set() noexcept;
    std::size_t write_template_sets(bool if_names) noexcept;

    ExportProtocol protocol_;
    std::vector<std::byte> buf_;
    std::size_t pos_ = 0;       // 0 = no message in progress
    std::size_t set_start_ = 0; // 0 = no open set
    std::uint16_t set_id_ = 0;
    std::size_t flows_ = 0;
    std::size_t templates_ = 0;
    std::size_t options_ = 0;
    std::size_t events_ = 0;
    std::uint32_t sequence_ = 0;
    std::uint64_t messages_ = 0;
    Nanos latest_last_ = 0; // the latest Last of the flows in progress
};

} // namespace nflowd
