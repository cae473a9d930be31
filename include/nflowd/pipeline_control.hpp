// What the control side may do to a running engine: the run-time setters, flush, flow dump
// and counters of the Pipeline, as an interface so the Controller is tested with fakes.
#pragma once

#include "nflowd/aggregation.hpp"
#include "nflowd/collector_set.hpp"
#include "nflowd/exporter.hpp"
#include "nflowd/flow_table.hpp"

#include <cstddef>
#include <vector>

namespace nflowd {

struct PipelineStats;

struct FlowSelection {
    std::uint64_t total = 0;       // active flows in every shard
    std::vector<FlowRecord> flows; // at most `top` per shard, unordered
};

// Each setter is applied by the owning thread between batches and returns once it is in
// effect. Setters throw only on allocation failure; the Controller then restores the rest.
class PipelineControl {
  public:
    virtual ~PipelineControl() = default;
    virtual void set_timeouts(Nanos inactive, Nanos active) = 0;
    virtual void set_hashsize(std::size_t total_buckets) = 0;
    virtual void set_maxflows(std::size_t total) = 0;
    virtual void set_aggregation(Aggregation aggregation) = 0;
    virtual void set_collectors(CollectorSet collectors) = 0;
    virtual void set_v5_params(const V5Params& params) = 0;
    virtual void set_sndbuf(int sndbuf) = 0;
    virtual void set_pacing(const PacingConfig& pacing) = 0;
    virtual void set_export_format(const ExportFormat& format) = 0;
    virtual void send_templates() = 0; // every v9/IPFIX destination, now
    // Whether IPv6 packets are accounted (v9/IPFIX can export them, v5 cannot).
    virtual void set_ipv6(bool accept) = 0;
    // NFLOG packets lost so far, for the IPFIX/v9 statistics record (ignoredPacketTotalCount).
    // Never blocks: the exporter picks the figure up between batches.
    virtual void report_ignored_packets(std::uint64_t packets) noexcept = 0;
    virtual void flush() = 0; // export every active flow now
    // The first `top` flows of each shard in `rank` order (every flow when top is 0), chosen
    // by each worker in its own shard (FlowTable::top): O(flows) reads, O(top) copies.
    virtual FlowSelection select_flows(std::size_t top, FlowRank rank) = 0;
    virtual void reset_stats() = 0; // the zero of `flush 2`
    virtual PipelineStats stats() const = 0;
};

} // namespace nflowd
