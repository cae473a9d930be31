// The daemon's side of nflowctl: ipt_NETFLOW's sysctl knobs mapped onto the option table,
// the control thread, statistics gathering and sampling.
#include "nflowd/daemon.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

namespace nflowd {

namespace {

struct KnobDef {
    std::string_view name;   // as ipt_NETFLOW's net.netflow.NAME
    std::string_view option; // the option it reads and writes; empty = special
    bool writable;
};

// Sorted by name, as `sysctl -a` lists them. Every writable one is a run-time option, so
// Daemon::set validates it with exactly the command line's rules.
constexpr KnobDef kKnobs[] = {
    {"active_timeout", "active_timeout", true},
    {"aggregation", "aggregation", true},
    {"debug", "debug", true},
    {"destination", "destination", true},
    {"engine_id", "engine_id", true},
    {"export_rate", "export_rate", true},
    {"flush", "", true},
    {"groups", "group", false},
    {"hashsize", "hashsize", true},
    {"inactive_timeout", "inactive_timeout", true},
    {"maxflows", "maxflows", true},
    {"protocol", "protocol", true},
    {"sndbuf", "sndbuf", true},
    {"snaplen", "snaplen", false},
    {"threads", "threads", false},
    {"version", "", false},
};

const KnobDef* find_knob_def(std::string_view name) {
    for (const auto& k : kKnobs)
        if (k.name == name) return &k;
    return nullptr;
}

// "--hashsize: must be ..." reads as a command-line complaint; nflowctl says "hashsize: ...".
std::string without_dashes(const ConfigError& e) {
    std::string_view w = e.what();
    if (w.substr(0, 2) == "--") w.remove_prefix(2);
    return std::string(w);
}

class Control final : public ControlHandler {
  public:
    explicit Control(Daemon& d) : d_(d) {}
    std::vector<ctl::KnobValue> knobs() override { return d_.knobs(); }
    std::vector<ctl::KnobValue>
    set(const std::vector<std::pair<std::string, std::string>>& changes) override {
        return d_.set_knobs(changes);
    }
    void flush(int level) override { d_.flush(level); }
    std::string stats(ctl::StatsFormat format) override {
        return format_stats(d_.stats_report(), format);
    }
    FlowDump flows(std::uint32_t top, ctl::FlowSort sort) override {
        return d_.flow_dump(top, sort);
    }
    void tick() override { d_.sample(); }

  private:
    Daemon& d_;
};

} // namespace

void Daemon::open_control() {
    control_handler_ = std::make_unique<Control>(*this);
    ControlServerConfig cc;
    cc.port_id = config_.control_id;
    if (config_.control_group) cc.write_group = static_cast<gid_t>(*config_.control_group);
    cc.log = &log_;
    control_ = std::make_unique<ControlServer>(cc, *control_handler_);
}

void Daemon::serve_control() {
    try {
        control_->serve(stop_fd_.get());
    } catch (const std::exception& e) {
        // Capture and export go on; only nflowctl is lost, and the log says so.
        log_.log(LogLevel::error, std::string("control channel stopped: ") + e.what());
    }
}

void Daemon::stop_control() {
    if (!control_thread_.joinable()) return;
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_fd_.get(), &one, sizeof one);
    control_thread_.join();
}

std::vector<ctl::KnobValue> Daemon::knobs() const {
    std::lock_guard lock(config_mutex_);
    std::vector<ctl::KnobValue> out;
    for (const auto& k : kKnobs) {
        std::string value;
        if (k.name == "version")
            value = NFLOWD_VERSION;
        else if (k.name == "flush")
            value = "0"; // a trigger, as in ipt_NETFLOW: reads 0
        else
            value = option_value(config_, k.option);
        out.push_back({std::string(k.name), std::move(value), k.writable});
    }
    return out;
}

std::vector<ctl::KnobValue>
Daemon::set_knobs(const std::vector<std::pair<std::string, std::string>>& changes) {
    std::vector<std::pair<std::string, std::string>> options;
    std::vector<std::string> names;
    int flush_level = 0;
    // Every name and the flush value are checked before anything is applied; set() then
    // validates all option values before applying any: all or nothing.
    for (const auto& [name, value] : changes) {
        const auto key = canonical_option_name(name);
        const KnobDef* def = find_knob_def(key);
        if (def == nullptr) throw ControlError(ENOENT, "unknown knob \"" + name + "\"");
        if (!def->writable) throw ControlError(EROFS, key + ": read-only");
        names.push_back(key);
        if (key == "flush") {
            int level = -1;
            const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), level);
            if (value.empty() || ec != std::errc{} || p != value.data() + value.size() ||
                level < 0 || level > 2)
                throw ControlError(EINVAL, "flush: must be 0, 1 (export every flow) or 2 (also "
                                           "zero the statistics), got \"" +
                                               value + "\"");
            flush_level = std::max(flush_level, level);
        } else {
            options.emplace_back(std::string(def->option), value);
        }
    }
    if (!options.empty()) {
        try {
            set(options);
        } catch (const ConfigError& e) {
            throw ControlError(EINVAL, without_dashes(e));
        }
    }
    if (flush_level > 0) flush(flush_level);

    const auto now = knobs();
    std::vector<ctl::KnobValue> out;
    for (const auto& n : names) {
        if (std::any_of(out.begin(), out.end(), [&](const auto& k) { return k.name == n; }))
            continue;
        auto it = std::find_if(now.begin(), now.end(), [&](const auto& k) { return k.name == n; });
        ctl::KnobValue k = *it;
        if (n == "flush") k.value = std::to_string(flush_level); // echo what was done
        out.push_back(std::move(k));
    }
    return out;
}

FlowDump Daemon::flow_dump(std::uint32_t top, ctl::FlowSort sort) {
    FlowDump d;
    d.flows = pipeline_->active_flows();
    d.now = wall_time();
    d.total = d.flows.size();
    const auto by = [sort](const FlowRecord& a, const FlowRecord& b) {
        switch (sort) {
        case ctl::FlowSort::bytes:
            return a.octets != b.octets ? a.octets > b.octets : a.packets > b.packets;
        case ctl::FlowSort::packets:
            return a.packets != b.packets ? a.packets > b.packets : a.octets > b.octets;
        case ctl::FlowSort::none:
            break;
        }
        return a.first < b.first; // start order across the shards
    };
    if (top != 0 && top < d.flows.size()) {
        std::partial_sort(d.flows.begin(), d.flows.begin() + top, d.flows.end(), by);
        d.flows.resize(top);
    } else {
        std::sort(d.flows.begin(), d.flows.end(), by);
    }
    return d;
}

void Daemon::sample() {
    const auto t = pipeline_->stats().total();
    const Nanos now = steady_time();
    std::lock_guard lock(sample_mutex_);
    if (t.active > peak_) {
        peak_ = t.active;
        peak_time_ = wall_time();
    }
    if (rates_.due(now))
        rates_.sample(now, t.packets + t.dropped_packets, t.octets + t.dropped_octets);
}

StatsReport Daemon::stats_report() const {
    StatsReport r;
    r.version = NFLOWD_VERSION;
    r.now = wall_time();
    r.started = started_;
    {
        std::lock_guard lock(config_mutex_);
        r.protocol = config_.protocol;
        r.engine_id = config_.engine_id;
        r.active_timeout = config_.table.active_timeout;
        r.inactive_timeout = config_.table.inactive_timeout;
        r.maxflows = config_.table.maxflows;
    }
    r.pipeline = pipeline_->stats();
    r.groups = group_stats();
    {
        std::lock_guard lock(sample_mutex_);
        r.rates = rates_.rates();
        r.peak = peak_;
        r.peak_time = peak_time_;
    }
    // Between two samples the cache may have grown past the sampled peak.
    const auto active = r.pipeline.total().active;
    if (active > r.peak) {
        r.peak = active;
        r.peak_time = r.now;
    }
    if (control_) r.control = control_->stats();
    return r;
}

std::string Daemon::stats_json() const {
    return format_stats_json(stats_report());
}

} // namespace nflowd
