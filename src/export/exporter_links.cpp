// The exporter's interface names: the snmp_rules mapping of every flow's ifindexes and the
// interface-names options records of the v9/IPFIX streams (issue 13).
#include "nflowd/exporter.hpp"

namespace nflowd {

// Once per batch: a new generation (a link added, renamed, re-aliased, removed or re-mapped)
// sends the templates and every options record at the next tick, so collectors learn the
// change within a second instead of at the next template_timeout_rate.
void Exporter::refresh_links() {
    if (!link_source_) return;
    auto table = link_source_();
    if (!table || (links_ && table->generation == links_->generation)) return;
    links_ = std::move(table);
    for (auto& s : streams_)
        if (s.builder) s.templates_now = true;
}

// Each row of the table as an options record (ifIndex = the index flows carry, ifName,
// ifDescr = the alias). A table bigger than one message goes on in the next ones.
void Exporter::add_if_names(std::size_t index, const ExportTime& time) {
    if (!has_if_names()) return;
    MessageBuilder& b = *streams_[index].builder;
    for (const auto& [ifindex, link] : links_->links) {
        const InterfaceName row{link.index, link.name, link.alias};
        if (b.add_if_name(row)) continue;
        send_stream(index, time);
        b.add_if_name(row); // an empty message takes any row: names are at most 15+255 bytes
    }
}

// The record as exported: ifindexes through the table (the kernel's when no rule matches).
const FlowRecord& Exporter::mapped(const FlowRecord& record) noexcept {
    if (!links_) return record;
    mapped_ = record;
    mapped_.key.in_if = links_->exported_index(record.key.in_if);
    mapped_.out_if = links_->exported_index(record.out_if);
    return mapped_;
}

} // namespace nflowd
