// The exporter's NAT part (issue 13): the NAT table it owns, the translated fields of flow
// records and the NAT event records, kept apart from the flow path in exporter.cpp.
#include "nflowd/exporter.hpp"

#include <algorithm>

namespace nflowd {

void Exporter::set_nat(const NatExportConfig& cfg) {
    const bool templates_change = !nat_table_ || cfg.events != nat_cfg_.events;
    nat_cfg_ = cfg;
    if (!nat_table_) {
        nat_table_ = std::make_unique<NatTable>(cfg.table);
    } else {
        nat_table_->set_max_entries(cfg.table.max_entries);
        nat_table_->set_grace(cfg.table.grace);
    }
    // Collectors must know the NAT templates before the first record that uses them.
    if (templates_change) send_templates();
}

void Exporter::apply_nat(const NatEvent& ev, const ExportTime& time) {
    if (!nat_table_) return;
    nat_table_->apply(ev);
    // A dumped connection (start-up, resync) was made before we listened: not an event.
    const bool event = ev.kind == NatEventKind::create || ev.kind == NatEventKind::destroy;
    if (!nat_cfg_.events || !event || ev.dumped) return;
    last_time_ = time;
    const std::size_t own = event_streams_begin();
    bool exported = false; // v5 destinations cannot carry it
    for (std::size_t i = own < streams_.size() ? own : 0; i < streams_.size(); ++i) {
        if (!streams_[i].builder) continue;
        add_event_to_stream(i, ev, time);
        exported = true;
    }
    stats_.nat_events += exported ? 1 : 0;
}

std::size_t Exporter::event_streams_begin() const noexcept {
    const std::size_t n = streams_.size();
    return n - std::min(n, nat_cfg_.event_destinations);
}

void Exporter::set_nat_grace(Nanos grace) noexcept {
    nat_cfg_.table.grace = grace;
    if (nat_table_) nat_table_->set_grace(grace);
}

void Exporter::expire_nat(Nanos now) noexcept {
    if (nat_table_) nat_table_->expire(now);
}

void Exporter::add_event_to_stream(std::size_t index, const NatEvent& ev, const ExportTime& time) {
    Stream& s = streams_[index];
    MessageBuilder& b = *s.builder;
    if (b.empty()) begin_message(index, time);
    if (!b.add_nat_event(ev, time)) {
        send_stream(index, time);
        begin_message(index, time);
        b.add_nat_event(ev, time); // an empty message takes any event
    }
    if (b.flows() + b.events() == 1) s.first_added = time.now;
}

// After the other templates: at the smallest MTU (512) they do not all fit one message, and
// then the NAT ones lead the next message, still before any record that uses them.
void Exporter::add_nat_templates(std::size_t index, const ExportTime& time) {
    MessageBuilder& b = *streams_[index].builder;
    if (b.add_nat_templates(nat_cfg_.events)) return;
    send_stream(index, time);
    b.add_nat_templates(nat_cfg_.events);
}

} // namespace nflowd
