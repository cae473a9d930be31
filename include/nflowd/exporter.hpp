// The export stage: batches expired flows into v5 datagrams (one sequence for the whole
// exporter) and v9/IPFIX messages (a stream per destination), pacing bursts so collectors keep up.
#pragma once

#include "nflowd/collector_set.hpp"
#include "nflowd/ipfix_encoder.hpp"
#include "nflowd/link_table.hpp"
#include "nflowd/nat_table.hpp"
#include "nflowd/sampler.hpp"
#include "nflowd/stats_fields.hpp"
#include "nflowd/v5_encoder.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

// Error idiom (export): sending never throws, failures are counted per collector (refused,
// buffer full, other); bad destinations throw std::invalid_argument, sockets std::system_error.
namespace nflowd {

struct ExporterStats {
    std::uint64_t flows = 0;      // flow records handed to the encoder
    std::uint64_t datagrams = 0;  // datagrams built
    std::uint64_t bytes = 0;      // their size
    std::uint64_t lost_flows = 0; // records whose datagram reached no collector
    std::uint64_t lost_datagrams = 0;
    // Flows exported in each version, each once however many destinations get that version.
    std::uint64_t flows_v5 = 0;
    std::uint64_t flows_v9 = 0;
    std::uint64_t flows_ipfix = 0;
    std::uint64_t sampled_out = 0; // flows --sampler deterministic/random did not export
    std::uint64_t nat_events = 0;  // NAT event records built (--natevents), each once

    static constexpr auto fields() {
        using F = StatField<ExporterStats>;
        constexpr auto c = StatKind::counter;
        return std::array{
            F{"flows", &ExporterStats::flows, c, "flows", "Flow records exported"},
            F{"datagrams", &ExporterStats::datagrams, c, "datagrams", "Datagrams built"},
            F{"bytes", &ExporterStats::bytes, c, "bytes", "Bytes of the datagrams built"},
            F{"lost_flows", &ExporterStats::lost_flows, c, "flows",
              "Flow records whose datagram reached no destination"},
            F{"lost_datagrams", &ExporterStats::lost_datagrams, c, "datagrams",
              "Datagrams that reached no destination"},
            F{"flows_v5", &ExporterStats::flows_v5, c, "flows", "Flow records exported as v5"},
            F{"flows_v9", &ExporterStats::flows_v9, c, "flows", "Flow records exported as v9"},
            F{"flows_ipfix", &ExporterStats::flows_ipfix, c, "flows",
              "Flow records exported as IPFIX"},
            F{"sampled_out", &ExporterStats::sampled_out, c, "flows",
              "Flows the flow sampler (deterministic, random) did not export"},
            F{"nat_events", &ExporterStats::nat_events, c, "events", "NAT event records exported"},
        };
    }
};

struct PacingConfig {
    // Bytes of datagram payload per second, all destinations together, once the burst is
    // spent; 0 disables pacing. What limits a flush is a collector's drain rate and its
    // receive buffer, both in bytes: nfcapd with a default buffer kept every record of a
    // loopback flush at 50 MB/s on an idle 2-core machine, not always on a busy one (README).
    std::uint32_t rate = 25'000'000;
    // Sent back to back after an idle spell: half of what a default 208 KiB receive buffer
    // holds of full-size datagrams (92 x 1.5 KB), leaving the rest for what is still unread.
    std::uint32_t burst = 65536;
    friend bool operator==(const PacingConfig&, const PacingConfig&) = default;
};

// What the v9/IPFIX streams send and how often they repeat their templates.
struct ExportFormat {
    ExportProtocol protocol = ExportProtocol::v5; // for destinations without "@version"
    std::uint32_t template_refresh_rate = 20;     // datagrams between templates, 0 = not by count
    std::uint32_t template_timeout_rate = 60;     // seconds between templates, 0 = not by time
    std::uint32_t mtu = 0; // largest message; 0 = 1500 less the collector family's IP+UDP headers
    // --sampler: deterministic and random choose here, among the flows leaving the cache;
    // hash chose on each packet already. Announced with --sampling_rate (sampler.hpp).
    SamplerConfig sampler{};
    std::uint32_t sampling_rate = 1; // --sampling_rate: 1 in N packets reach nflowd at all
    friend bool operator==(const ExportFormat&, const ExportFormat&) = default;
};

// Where the exporter finds the interface names (LinkNames::table() live; none with --read):
// asked once per batch, so it must be cheap and callable from the exporter thread.
using LinkSource = std::function<std::shared_ptr<const LinkTable>()>;
// What the exporter does with conntrack's NAT events (issue 13); only v9/IPFIX carry them.
struct NatExportConfig {
    bool annotate = false;    // flow records get the translated fields (261/262) when found
    bool events = false;      // --natevents: a NAT event record per create and delete
    bool events_only = false; // --natevents_only: NAT events and no flow records
    // --natevents_destination: the last this many collectors get the NAT events, and only
    // them; 0: the events go to the flow destinations.
    std::size_t event_destinations = 0;
    NatTableConfig table;
};

// How long a destroyed connection stays findable. A flow is exported at most
// inactive_timeout after its last packet, which comes before its connection's DESTROY: that
// long plus a margin (a busy exporter, the 1 s partial-datagram wait). A flow the active
// timeout exports is still live then. Follows `nflowctl set inactive_timeout`.
constexpr Nanos kNatGraceMargin = 30 * kNanosPerSecond;
constexpr Nanos nat_grace(Nanos inactive_timeout) noexcept {
    return inactive_timeout + kNatGraceMargin;
}

// v5 destinations share one datagram and one flow_sequence (nfcapd checks it), and never see
// an IPv6 flow (counted per destination). Each v9/IPFIX destination has a stream of its own:
// its sequence, its templates (before the first data, every template_refresh_rate datagrams
// or template_timeout_rate seconds, and at once after it is added, asked for, or after an
// error that may mean the collector restarted), its partial datagram sent after 1 s.
class Exporter {
  public:
    // With `links`, every flow's in/out ifindex is exported as the table's exported_index()
    // (snmp_rules), in v5 too, and v9/IPFIX streams carry the interface-names options records
    // (template 260) with their options, and at once whenever the table's generation changes.
    Exporter(const V5Params& params, CollectorSet collectors, const PacingConfig& pacing = {},
             const ExportFormat& format = {}, LinkSource links = {});

    // `time`: flow time (expiry's clock, for the 1 s wait and sysUptime) and the wall offset
    // sampled with it (for unix_secs), see ExportTime.
    void add(std::span<const FlowRecord> records, const ExportTime& time);
    void tick(const ExportTime& time);   // sends a partial datagram that has waited 1 s
    void finish(const ExportTime& time); // sends whatever is pending

    void set_collectors(CollectorSet collectors);
    void set_params(const V5Params& params);
    void set_pacing(const PacingConfig& pacing) noexcept { pacing_ = pacing; }
    // A new version or MTU: the datagrams in progress are sent first, then each stream that
    // changes starts afresh with its templates. A new sampling announcement goes out in the
    // options records at the next tick (and in every v5 header from now on).
    void set_format(const ExportFormat& format);
    // Every v9/IPFIX destination gets the templates at the next tick (nflowctl send-template).
    void send_templates() noexcept;
    // NFLOG losses, reported as ignoredPacketTotalCount in the statistics options record.
    void set_ignored_packets(std::uint64_t packets) noexcept { ignored_packets_ = packets; }
    CollectorSet& collectors() noexcept { return collectors_; }
    const ExporterStats& stats() const noexcept { return stats_; }
    // Zeroes the counters, the collectors' too (`nflowctl set flush 2`); the sequences and
    // the pending datagrams are kept.
    void reset_stats() noexcept;
    // Flow time at which tick() next sends a partial datagram, or 0 when none is pending.
    Nanos deadline() const noexcept;

    // NAT (issue 13, exporter_nat.cpp). set_nat makes the NAT table (kept across calls);
    // apply_nat feeds it one conntrack event and, with events on, exports it (a dumped
    // connection is no event); expire_nat ends the grace periods at `now` (flow time).
    void set_nat(const NatExportConfig& cfg);
    void apply_nat(const NatEvent& event, const ExportTime& time);
    void expire_nat(Nanos now) noexcept;
    void set_nat_grace(Nanos grace) noexcept; // `set inactive_timeout`; no-op before set_nat
    // Null until set_nat.
    const NatTable* nat_table() const noexcept { return nat_table_.get(); }

  private:
    struct Stream {
        ExportProtocol protocol = ExportProtocol::v5;
        std::optional<MessageBuilder> builder; // v9/IPFIX only
        Nanos first_added = 0;                 // flow time of the first flow in progress
        Nanos templates_at = 0;                // flow time of the last templates
        std::uint32_t since_templates = 0;     // datagrams since
        bool templates_due = true;             // before the next data
        bool templates_now = true;             // at the next tick, data or not
        ExportTotals totals;
    };
    Stream make_stream(const Destination& dest) const;
    void rebuild_streams();
    void add_v5(const FlowRecord& record, const ExportTime& time);
    void send_v5(const V5Datagram& datagram);
    void add_to_stream(std::size_t index, const FlowRecord& record, const ExportTime& time,
                       const NatTranslation* nat = nullptr);
    void add_event_to_stream(std::size_t index, const NatEvent& event, const ExportTime& time);
    void add_nat_templates(std::size_t index, const ExportTime& time);
    // The first collector that gets NAT events only (collectors_.size() when none does).
    std::size_t event_streams_begin() const noexcept;
    void begin_message(std::size_t index, const ExportTime& time);
    void send_stream(std::size_t index, const ExportTime& time);
    void pace(std::size_t bytes);
    // Interface names (exporter_links.cpp).
    void refresh_links();
    bool has_if_names() const noexcept { return links_ && !links_->links.empty(); }
    void add_if_names(std::size_t index, const ExportTime& time);
    const FlowRecord& mapped(const FlowRecord& record) noexcept;
    void apply_sampling(); // format_'s sampler and rate: the choice and the announcement

    V5Batcher batcher_;
    CollectorSet collectors_;
    PacingConfig pacing_;
    ExportFormat format_;
    std::vector<Stream> streams_; // one per collector, same index
    bool has_v5_ = false, has_v9_ = false, has_ipfix_ = false;
    ExporterStats stats_;
    V5Datagram scratch_;
    ExportTime last_time_;
    std::uint64_t ignored_packets_ = 0;
    LinkSource link_source_;
    std::shared_ptr<const LinkTable> links_; // the table last sent, null before the first
    FlowRecord mapped_;                      // mapped()'s copy
    FlowSampler sampler_;                    // deterministic and random: the late choice
    SamplingAnnouncement announced_;
    double tokens_ = 0;
    std::int64_t last_refill_ = 0; // steady-clock ns
    NatExportConfig nat_cfg_;
    std::unique_ptr<NatTable> nat_table_; // the exporter thread's alone: no lock per record
};

} // namespace nflowd
