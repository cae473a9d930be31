// `nflowd --read`: replays a pcap through the same pipeline as live capture, with time taken
// from the packets, exports every flow at end of file and reports what it saw.
#pragma once

#include "nflowd/config.hpp"
#include "nflowd/pcap_source.hpp"
#include "nflowd/pipeline.hpp"

#include <string>

namespace nflowd {

struct OfflineSummary {
    PcapStats pcap;
    PipelineStats stats;
    double seconds = 0; // wall time of the whole run
};

// Throws std::runtime_error when the file cannot be read or a collector socket not opened.
OfflineSummary run_offline(const Config& config);

// "key: value" lines, one per figure, for the operator and for scripts.
std::string format_summary(const OfflineSummary& summary);

} // namespace nflowd
