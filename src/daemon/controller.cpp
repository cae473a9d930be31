#include "nflowd/controller.hpp"

#include "nflowd/clock.hpp"
#include "nflowd/number.hpp"

#include <algorithm>
#include <cerrno>

namespace nflowd {

namespace {

// ipt_NETFLOW's sysctl knobs (net.netflow.NAME), in the order nflowctl list has always shown. A
// knob is writable exactly when its option is a run-time one; `flush`, `send_template` (the
// triggers) and `version` have none.
struct KnobDef {
    std::string_view name;
    std::optional<Opt> option;
};
constexpr KnobDef kKnobs[] = {
    {"active_timeout", Opt::active_timeout},
    {"aggregation", Opt::aggregation},
    {"debug", Opt::debug},
    {"destination", Opt::destination},
    {"engine_id", Opt::engine_id},
    {"export_rate", Opt::export_rate},
    {"flush", std::nullopt},
    {"groups", Opt::group},
    {"hashsize", Opt::hashsize},
    {"inactive_timeout", Opt::inactive_timeout},
    {"maxflows", Opt::maxflows},
    {"mtu", Opt::mtu},
    {"protocol", Opt::protocol},
    {"sampler", Opt::sampler},
    {"sampling_rate", Opt::sampling_rate},
    {"send_template", std::nullopt},
    {"sndbuf", Opt::sndbuf},
    {"snaplen", Opt::snaplen},
    {"snmp_rules", Opt::snmp_rules},
    {"template_refresh_rate", Opt::template_refresh_rate},
    {"template_timeout_rate", Opt::template_timeout_rate},
    {"threads", Opt::threads},
    {"version", std::nullopt},
};

const KnobDef* find_knob(std::string_view name) {
    const auto key = canonical_option_name(name);
    for (const auto& k : kKnobs)
        if (k.name == key) return &k;
    return nullptr;
}

bool writable(const KnobDef& k) {
    return k.option ? option_info(*k.option).runtime
                    : k.name == "flush" || k.name == "send_template";
}

ctl::KnobValue knob_value(const KnobDef& k, const Config& c) {
    std::string value;
    if (k.option)
        value = option_value(c, option_info(*k.option).name);
    else if (k.name == "version")
        value = NFLOWD_VERSION;
    else
        value = "0"; // flush and send_template are triggers, as in ipt_NETFLOW: they read 0
    return {std::string(k.name), std::move(value), writable(k)};
}

// "--hashsize: must be ..." reads as a command-line complaint; nflowctl says "hashsize: ...".
std::string without_dashes(const std::exception& e) {
    std::string_view w = e.what();
    if (w.substr(0, 2) == "--") w.remove_prefix(2);
    return std::string(w);
}

int parse_flush_level(const std::string& value) {
    const auto level = parse_unsigned(value, 0, 2);
    if (!level)
        throw ControlError(EINVAL, "flush: must be 0, 1 (export every flow) or 2 (also zero the "
                                   "statistics), got \"" +
                                       value + "\"");
    return static_cast<int>(*level);
}

// `set send_template 1`: every v9/IPFIX destination gets its templates now; 0 does nothing.
bool parse_send_template(const std::string& value) {
    const auto v = parse_unsigned(value, 0, 1);
    if (!v)
        throw ControlError(EINVAL,
                           "send_template: must be 1 (send now) or 0, got \"" + value + "\"");
    return *v == 1;
}

OptionSet options_of(std::initializer_list<Opt> opts) {
    OptionSet s;
    for (auto o : opts) s.set(o);
    return s;
}

OptionSet runtime_options() {
    OptionSet s;
    for (const auto& o : option_table())
        if (o.runtime) s.set(o.id);
    return s;
}

// One reconfiguration step: what it reads from the configuration and how it applies it. Undo
// is the same step with the old configuration. Steps that cannot fail come last.
struct Step {
    OptionSet reads;
    void (*apply)(PipelineControl&, Logger&, const Config&, Nanos started);
};

const std::vector<Step>& steps() {
    static const std::vector<Step> s = {
        {options_of({Opt::inactive_timeout, Opt::active_timeout}),
         [](PipelineControl& p, Logger&, const Config& c, Nanos) {
             p.set_timeouts(c.table.inactive_timeout, c.table.active_timeout);
         }},
        {options_of({Opt::hashsize}), [](PipelineControl& p, Logger&, const Config& c,
                                         Nanos) { p.set_hashsize(c.table.hashsize); }},
        {options_of({Opt::maxflows}), [](PipelineControl& p, Logger&, const Config& c,
                                         Nanos) { p.set_maxflows(c.table.maxflows); }},
        {options_of({Opt::aggregation}), [](PipelineControl& p, Logger&, const Config& c,
                                            Nanos) { p.set_aggregation(c.aggregation); }},
        {options_of({Opt::engine_id}),
         [](PipelineControl& p, Logger&, const Config& c, Nanos started) {
             p.set_v5_params(V5Params{.boot_time = started, .engine_id = c.engine_id});
         }},
        {options_of({Opt::export_rate}),
         [](PipelineControl& p, Logger&, const Config& c, Nanos) { p.set_pacing(c.pacing); }},
        {options_of({Opt::protocol, Opt::template_refresh_rate, Opt::template_timeout_rate,
                     Opt::mtu, Opt::sampler, Opt::sampling_rate}),
         [](PipelineControl& p, Logger&, const Config& c, Nanos) {
             p.set_export_format(c.format);
         }},
        {options_of({Opt::debug}),
         [](PipelineControl&, Logger& log, const Config& c, Nanos) { log.set_debug(c.debug); }},
    };
    return s;
}

bool by_bytes(const FlowRecord& a, const FlowRecord& b) {
    return a.octets != b.octets ? a.octets > b.octets : a.packets > b.packets;
}
bool by_packets(const FlowRecord& a, const FlowRecord& b) {
    return a.packets != b.packets ? a.packets > b.packets : a.octets > b.octets;
}
bool by_start(const FlowRecord& a, const FlowRecord& b) {
    return a.first < b.first; // start order across the shards
}

// The shards rank by the same fields (FlowRank) as the final order here.
std::pair<FlowRank, bool (*)(const FlowRecord&, const FlowRecord&)> flow_order(ctl::FlowSort s) {
    switch (s) {
    case ctl::FlowSort::bytes:
        return {FlowRank::bytes, by_bytes};
    case ctl::FlowSort::packets:
        return {FlowRank::packets, by_packets};
    case ctl::FlowSort::none:
        break;
    }
    return {FlowRank::start, by_start};
}

} // namespace

Controller::Controller(Config config, Nanos started, ControllerParts parts)
    : parts_(std::move(parts)), started_(started), config_(std::move(config)),
      last_activity_time_(steady_time()) {}

Config Controller::config() const {
    std::lock_guard lock(config_mutex_);
    return config_;
}

std::vector<ctl::KnobValue> Controller::knobs() {
    std::lock_guard lock(config_mutex_);
    std::vector<ctl::KnobValue> out;
    for (const auto& k : kKnobs) out.push_back(knob_value(k, config_));
    return out;
}

std::vector<ctl::KnobValue> Controller::get(const std::vector<std::string>& names) {
    std::lock_guard lock(config_mutex_);
    std::vector<ctl::KnobValue> out;
    for (const auto& name : names) {
        const KnobDef* k = find_knob(name);
        if (k == nullptr) throw ControlError(ENOENT, "unknown knob \"" + name + "\"");
        out.push_back(knob_value(*k, config_));
    }
    return out;
}

std::vector<ctl::KnobValue>
Controller::set(const std::vector<std::pair<std::string, std::string>>& changes) {
    // Every name and value is checked before anything is applied: all or nothing.
    std::vector<const KnobDef*> touched;
    int flush_level = 0;
    bool send_template = false;
    std::unique_lock lock(config_mutex_);
    Config next = config_;
    for (const auto& [name, value] : changes) {
        const KnobDef* k = find_knob(name);
        if (k == nullptr) throw ControlError(ENOENT, "unknown knob \"" + name + "\"");
        if (!writable(*k)) throw ControlError(EROFS, std::string(k->name) + ": read-only");
        if (std::find(touched.begin(), touched.end(), k) == touched.end()) touched.push_back(k);
        if (k->name == "send_template") {
            send_template = parse_send_template(value) || send_template;
            continue;
        }
        if (!k->option) {
            flush_level = std::max(flush_level, parse_flush_level(value));
            continue;
        }
        try {
            apply_option(next, option_info(*k->option).name, value);
        } catch (const ConfigError& e) {
            throw ControlError(EINVAL, without_dashes(e));
        }
    }
    try {
        apply(next);
    } catch (const std::exception& e) {
        throw ControlError(EIO, "not changed: " + without_dashes(e));
    }
    lock.unlock();
    if (flush_level > 0) flush(flush_level);
    // After a flush, so that the flushed flows' datagrams go before the templates.
    if (send_template) parts_.pipeline.send_templates();

    lock.lock();
    std::vector<ctl::KnobValue> out;
    for (const KnobDef* k : touched) {
        out.push_back(knob_value(*k, config_));
        if (!k->option) // echo what was done
            out.back().value = k->name == "flush" ? std::to_string(flush_level)
                               : send_template    ? "1"
                                                  : "0";
    }
    return out;
}

void Controller::apply(const Config& next) {
    OptionSet changed = diff(config_, next);
    changed &= runtime_options();
    if (changed.none()) return;
    // The new collectors are opened first: a destination that cannot be opened fails here,
    // before anything has changed.
    std::optional<CollectorSet> collectors;
    if (changed.test(Opt::destination))
        collectors.emplace(parts_.open_collectors(next.destinations, next.sndbuf));
    // IPv6 flows leave (forced) while a v9/IPFIX destination is still there to carry them,
    // and are accounted once one is.
    const bool ipv6_before = exports_ipv6(config_), ipv6_after = exports_ipv6(next);
    std::vector<const Step*> done;
    try {
        if (ipv6_before && !ipv6_after) parts_.pipeline.set_ipv6(false);
        for (const auto& step : steps()) {
            if ((changed & step.reads).none()) continue;
            step.apply(parts_.pipeline, parts_.log, next, started_);
            done.push_back(&step);
        }
        if (collectors)
            parts_.pipeline.set_collectors(std::move(*collectors));
        else if (changed.test(Opt::sndbuf))
            parts_.pipeline.set_sndbuf(next.sndbuf);
        if (!ipv6_before && ipv6_after) parts_.pipeline.set_ipv6(true);
        // Last: it cannot fail but by allocation, and needs no undo then.
        if (changed.test(Opt::snmp_rules) && parts_.set_snmp_rules)
            parts_.set_snmp_rules(next.snmp_rules);
    } catch (...) {
        if (ipv6_before) parts_.pipeline.set_ipv6(true); // cannot fail: no flush
        for (auto it = done.rbegin(); it != done.rend(); ++it) {
            try {
                (*it)->apply(parts_.pipeline, parts_.log, config_, started_);
            } catch (const std::exception& e) {
                parts_.log.log(LogLevel::error, std::string("could not restore: ") + e.what());
            }
        }
        throw;
    }
    for (const auto& o : option_table()) {
        if (!changed.test(o.id)) continue;
        copy_option(o.id, next, config_);
        parts_.log.log(LogLevel::notice,
                       std::string(o.name) + " = " + option_value(config_, o.name));
    }
}

void Controller::reload(const Config& next) {
    std::lock_guard lock(config_mutex_);
    const OptionSet changed = diff(config_, next);
    for (const auto& o : option_table())
        if (!o.runtime && changed.test(o.id))
            parts_.log.log(LogLevel::error, "SIGHUP: " + std::string(o.name) +
                                                " changed; it takes effect only after a restart");
    try {
        apply(next);
        parts_.log.log(LogLevel::notice, "SIGHUP: configuration re-read");
    } catch (const std::exception& e) {
        parts_.log.log(LogLevel::error,
                       std::string("SIGHUP: configuration not changed: ") + e.what());
    }
}

void Controller::flush(int level) {
    parts_.pipeline.flush();
    if (level >= 2) reset_stats();
}

void Controller::reset_stats() {
    parts_.pipeline.reset_stats();
    parts_.sources.reset_stats();
    {
        std::lock_guard lock(sample_mutex_);
        peak_ = 0;
        peak_time_ = 0;
        rates_.reset();
    }
    parts_.log.log(LogLevel::notice, "statistics zeroed");
}

FlowDump Controller::flows(std::uint32_t top, ctl::FlowSort sort) {
    const auto [rank, by] = flow_order(sort);
    auto selection = parts_.pipeline.select_flows(top, rank);
    FlowDump d;
    d.flows = std::move(selection.flows);
    // The dump shows wall time: the flows' flow times moved by one offset, taken now, so
    // ages (now - first) stay exact across a step of the wall clock.
    const ExportTime t = parts_.clock.export_time();
    d.now = t.wall_now();
    for (auto& f : d.flows) {
        f.first = t.wall(f.first);
        f.last = t.wall(f.last);
    }
    d.total = selection.total;
    // Each shard sent its own first `top`; the first `top` of all are among them.
    if (top != 0 && top < d.flows.size()) {
        std::partial_sort(d.flows.begin(), d.flows.begin() + top, d.flows.end(), by);
        d.flows.resize(top);
    } else {
        std::sort(d.flows.begin(), d.flows.end(), by);
    }
    return d;
}

} // namespace nflowd
