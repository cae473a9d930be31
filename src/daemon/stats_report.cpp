#include "nflowd/stats_report.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <span>
#include <variant>

namespace nflowd {
void RateMeter::sample(Nanos now, std::uint64_t packets, std::uint64_t bytes) noexcept {
    if (!primed_ || packets < packets_ || bytes < bytes_ || now <= last_) {
        primed_ = true;
        last_ = now;
        packets_ = packets;
        bytes_ = bytes;
        return;
    }
    const double dt = static_cast<double>(now - last_) / static_cast<double>(kNanosPerSecond);
    const double pps = static_cast<double>(packets - packets_) / dt;
    const double bps = static_cast<double>(bytes - bytes_) * 8.0 / dt;
    for (std::size_t i = 0; i < kRateMinutes.size(); ++i) {
        // The weight follows the real interval, so a late sample is not over- or under-counted.
        const double keep = std::exp(-dt / (60.0 * kRateMinutes[i]));
        rates_.pps[i] = rates_.pps[i] * keep + pps * (1.0 - keep);
        rates_.bps[i] = rates_.bps[i] * keep + bps * (1.0 - keep);
    }
    last_ = now;
    packets_ = packets;
    bytes_ = bytes;
}

namespace {

using Json = nlohmann::ordered_json;

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, std::isfinite(v) ? v : 0.0);
    return buf;
}

// JSON showed three decimals; rounding keeps the values where they were.
double round3(double v) {
    return std::isfinite(v) ? std::round(v * 1000.0) / 1000.0 : 0.0;
}

std::uint64_t secs(Nanos n) {
    return static_cast<std::uint64_t>(std::max<Nanos>(0, n)) / kNanosPerSecond;
}

// Average chain entries walked per lookup; every packet offered to the cache is one lookup.
double metric(const FlowTableStats& s) {
    const auto lookups = s.packets + s.dropped_packets;
    return lookups == 0 ? 0.0 : static_cast<double>(s.searched) / static_cast<double>(lookups);
}

std::string utc(std::uint64_t t) {
    if (t == 0) return "never";
    const std::time_t s = static_cast<std::time_t>(t / kNanosPerSecond);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string duration(Nanos d) {
    const auto s = std::max<Nanos>(0, d) / kNanosPerSecond;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%lldd %02lld:%02lld:%02lld", static_cast<long long>(s / 86400),
                  static_cast<long long>(s / 3600 % 24), static_cast<long long>(s / 60 % 60),
                  static_cast<long long>(s % 60));
    return buf;
}

// ---- the layout: one row per figure, shared by the text and the JSON ----

using Value = std::variant<std::uint64_t, double, std::string_view>;

// How one figure reads in each output.
enum class Show : std::uint8_t {
    count, // an integer (or a string) in both
    kib,   // text: KiB rounded up; JSON: bytes
    ratio, // text: 2 decimals; JSON: 3
    utc,   // wall-clock nanoseconds; text: ISO 8601 or "never"; JSON: seconds since the epoch
};

template <class T> struct Item {
    std::string_view text; // `{}` stands for the value; empty: JSON only
    std::string_view json; // the key; empty: text only
    Value (*get)(const T&);
    Show show = Show::count;
    bool attached = false;      // text: after the previous figure with a space, not ", "
    std::string_view nest = {}; // JSON: a nested object of the line's object
};

// The figures of the top-level lines come from the whole report.
struct View {
    const StatsReport& r;
    FlowTableStats t; // workers summed
    WorkerStats levels;
    std::uint64_t export_bytes = 0;
};

View view(const StatsReport& r) {
    View v{r, r.pipeline.total(), {}, 0};
    for (const auto& w : r.pipeline.workers) v.levels += w;
    v.export_bytes = r.pipeline.exporter.bytes;
    return v;
}

template <class T> using Items = std::span<const Item<T>>;
using V = const View&;

const auto kFlows = std::to_array<Item<View>>({
    {"active {}", "active", [](V v) -> Value { return v.t.active; }},
    {"peak {}", "peak", [](V v) -> Value { return v.r.peak; }},
    {"at {}", "peak_time",
     [](V v) -> Value { return static_cast<std::uint64_t>(std::max<Nanos>(0, v.r.peak_time)); },
     Show::utc, true},
    {"memory {} KiB", "memory", [](V v) -> Value { return v.levels.memory_bytes; }, Show::kib},
    {"maxflows {}", "maxflows", [](V v) -> Value { return v.r.maxflows; }},
});

const auto kHash = std::to_array<Item<View>>({
    {"size {}", "size", [](V v) -> Value { return v.levels.hashsize; }},
    {"metric {}", "metric", [](V v) -> Value { return metric(v.t); }, Show::ratio},
    {"searched {}", "searched", [](V v) -> Value { return v.t.searched; }},
    {"found {}", "found", [](V v) -> Value { return v.t.found; }},
    {"new {}", "new", [](V v) -> Value { return v.t.created; }},
});

const auto kIn = std::to_array<Item<View>>({
    {"packets {}", "packets", [](V v) -> Value { return v.t.packets + v.t.dropped_packets; }},
    {"bytes {}", "bytes", [](V v) -> Value { return v.t.octets + v.t.dropped_octets; }},
});

const auto kPackets = std::to_array<Item<View>>({
    {"parsed {}", "parsed", [](V v) -> Value { return v.r.pipeline.parse.packets; }},
    {"", "accounted", [](V v) -> Value { return v.r.pipeline.parse.accounted; }},
    {"invalid {}", "invalid", [](V v) -> Value { return v.r.pipeline.parse.invalid; }},
    {"truncated {}", "truncated", [](V v) -> Value { return v.r.pipeline.parse.truncated; }},
    {"fragments {}", "fragments", [](V v) -> Value { return v.r.pipeline.parse.fragments; }},
    {"ipv6 skipped {}", "ipv6_skipped", [](V v) -> Value { return v.r.pipeline.parse.ipv6; }},
    {"ipv6 accounted {}", "ipv6_accounted",
     [](V v) -> Value { return v.r.pipeline.parse.ipv6_accounted; }},
    {"unknown length {}", "unknown_length",
     [](V v) -> Value { return v.r.pipeline.parse.unknown_length; }},
    {"oversize {}", "oversize", [](V v) -> Value { return v.r.pipeline.parse.oversize; }},
    {"hash sampled out {}", "sampled_out",
     [](V v) -> Value { return v.r.pipeline.parse.sampled_out; }},
    {"maxflows drops {}", "maxflows_dropped_packets",
     [](V v) -> Value { return v.t.dropped_packets; }},
    {"({} bytes)", "maxflows_dropped_bytes", [](V v) -> Value { return v.t.dropped_octets; },
     Show::count, true},
});

const auto kExpired = std::to_array<Item<View>>({
    {"inactive {}", "inactive", [](V v) -> Value { return v.t.expired_inactive; }},
    {"active {}", "active", [](V v) -> Value { return v.t.expired_active; }},
    {"overflow {}", "overflow", [](V v) -> Value { return v.t.expired_overflow; }},
    {"flushed {}", "flushed", [](V v) -> Value { return v.t.flushed; }},
});

// Text and JSON have always listed flows and datagrams in opposite orders.
const auto kExport = std::to_array<Item<View>>({
    {"flows {}", "", [](V v) -> Value { return v.r.pipeline.exporter.flows; }},
    {"datagrams {}", "datagrams", [](V v) -> Value { return v.r.pipeline.exporter.datagrams; }},
    {"", "flows", [](V v) -> Value { return v.r.pipeline.exporter.flows; }},
    {"bytes {}", "bytes", [](V v) -> Value { return v.export_bytes; }},
    {"lost flows {}", "lost_flows", [](V v) -> Value { return v.r.pipeline.exporter.lost_flows; }},
    {"lost datagrams {}", "lost_datagrams",
     [](V v) -> Value { return v.r.pipeline.exporter.lost_datagrams; }},
    {"by version: v5 {}", "v5", [](V v) -> Value { return v.r.pipeline.exporter.flows_v5; },
     Show::count, false, "flows_by_version"},
    {"v9 {}", "v9", [](V v) -> Value { return v.r.pipeline.exporter.flows_v9; }, Show::count, true,
     "flows_by_version"},
    {"ipfix {}", "ipfix", [](V v) -> Value { return v.r.pipeline.exporter.flows_ipfix; },
     Show::count, true, "flows_by_version"},
    {"sampled out {}", "sampled_out",
     [](V v) -> Value { return v.r.pipeline.exporter.sampled_out; }},
});

// NAT (issue 13): the conntrack input and the exporter's NAT table.
std::string_view nat_status(NatStatus s) {
    return s == NatStatus::on ? "on" : s == NatStatus::unavailable ? "unavailable" : "off";
}
const auto kConntrack = std::to_array<Item<View>>({
    {"{}", "status", [](V v) -> Value { return nat_status(v.r.pipeline.nat.status); }},
    {"new {}", "new", [](V v) -> Value { return v.r.pipeline.nat.conntrack.events_new; }},
    {"destroy {}", "destroy",
     [](V v) -> Value { return v.r.pipeline.nat.conntrack.events_destroy; }},
    {"not nated {}", "not_nated",
     [](V v) -> Value { return v.r.pipeline.nat.conntrack.not_nated; }},
    {"dumped {}", "dumped", [](V v) -> Value { return v.r.pipeline.nat.conntrack.dumped; }},
    {"dumps {}", "dumps", [](V v) -> Value { return v.r.pipeline.nat.conntrack.dumps; }},
    {"lost events {}", "lost_events",
     [](V v) -> Value { return v.r.pipeline.nat.conntrack.lost_events; }},
    {"enobufs {}", "enobufs", [](V v) -> Value { return v.r.pipeline.nat.conntrack.enobufs; }},
    {"errors {}", "errors", [](V v) -> Value { return v.r.pipeline.nat.conntrack.errors; }},
});
const auto kNat = std::to_array<Item<View>>({
    {"entries {}", "entries", [](V v) -> Value { return v.r.pipeline.nat.table.entries; }},
    {"found {}", "found", [](V v) -> Value { return v.r.pipeline.nat.table.found; }},
    {"not found {}", "not_found", [](V v) -> Value { return v.r.pipeline.nat.table.not_found; }},
    {"evicted {}", "evicted", [](V v) -> Value { return v.r.pipeline.nat.table.evicted; }},
    {"events exported {}", "events_exported",
     [](V v) -> Value { return v.r.pipeline.exporter.nat_events; }},
});

using W = const WorkerStats&;
const auto kWorker = std::to_array<Item<WorkerStats>>({
    {"active {}", "active", [](W w) -> Value { return w.table.active; }},
    {"peak {}", "peak", [](W w) -> Value { return w.table.peak; }},
    {"hashsize {}", "hashsize", [](W w) -> Value { return w.hashsize; }},
    {"metric {}", "metric", [](W w) -> Value { return metric(w.table); }, Show::ratio},
    {"searched {}", "searched", [](W w) -> Value { return w.table.searched; }},
    {"found {}", "found", [](W w) -> Value { return w.table.found; }},
    {"new {}", "new", [](W w) -> Value { return w.table.created; }},
    {"", "packets", [](W w) -> Value { return w.table.packets; }},
    {"", "bytes", [](W w) -> Value { return w.table.octets; }},
    {"memory {} KiB", "memory", [](W w) -> Value { return w.memory_bytes; }, Show::kib},
});

using G = const GroupStats&;
const auto kGroup = std::to_array<Item<GroupStats>>({
    {"", "group", [](G g) -> Value { return std::uint64_t{g.group}; }},
    {"received {}", "received", [](G g) -> Value { return g.nflog.packets; }},
    {"lost {}", "lost", [](G g) -> Value { return g.nflog.lost; }},
    {"enobufs {}", "enobufs", [](G g) -> Value { return g.nflog.enobufs; }},
    {"malformed {}", "malformed", [](G g) -> Value { return g.nflog.malformed; }},
    {"bad timestamps {}", "bad_timestamps", [](G g) -> Value { return g.nflog.bad_timestamps; }},
    // Not "lost packets" in the text: scripts match "lost N" on this line.
    {"unaccounted {}", "lost_packets", [](G g) -> Value { return g.nflog.lost_packets; }},
});

using C = const CollectorStats&;
const auto kDestination = std::to_array<Item<CollectorStats>>({
    {"", "destination", [](C c) -> Value { return std::string_view(c.destination); }},
    {"datagrams {}", "datagrams", [](C c) -> Value { return c.datagrams; }},
    {"bytes {}", "bytes", [](C c) -> Value { return c.bytes; }},
    {"errors: buffer full {}", "buffer_full", [](C c) -> Value { return c.err_buffer_full; },
     Show::count, false, "errors"},
    {"refused {}", "refused", [](C c) -> Value { return c.err_refused; }, Show::count, false,
     "errors"},
    {"unreachable {}", "unreachable", [](C c) -> Value { return c.err_unreachable; }, Show::count,
     false, "errors"},
    {"other {}", "other", [](C c) -> Value { return c.err_other; }, Show::count, false, "errors"},
    {"protocol {}", "protocol",
     [](C c) -> Value { return static_cast<std::uint64_t>(std::max(c.protocol, 0)); }},
    {"templates {}", "templates", [](C c) -> Value { return c.templates; }},
    {"options records {}", "options_records", [](C c) -> Value { return c.options_records; }},
    {"ipv6 skipped {}", "ipv6_skipped", [](C c) -> Value { return c.skipped_ipv6; }},
    {"sndbuf {}", "sndbuf",
     [](C c) -> Value { return static_cast<std::uint64_t>(std::max(c.sndbuf, 0)); }},
});

using K = const ControlServerStats&;
const auto kControl = std::to_array<Item<ControlServerStats>>({
    {"requests {}", "requests", [](K k) -> Value { return k.requests; }},
    {"errors {}", "errors", [](K k) -> Value { return k.errors; }},
    {"denied {}", "denied", [](K k) -> Value { return k.denied; }},
    {"ignored {}", "ignored", [](K k) -> Value { return k.ignored; }},
    {"send failures {}", "send_failures", [](K k) -> Value { return k.send_failures; }},
    {"slow peers {}", "slow_peers", [](K k) -> Value { return k.slow_peers; }},
    {"throttled {}", "throttled", [](K k) -> Value { return k.throttled; }},
});

using L = const LinkStats&;
const auto kLinks = std::to_array<Item<LinkStats>>({
    {"known {}", "known", [](L l) -> Value { return l.known; }},
    {"dumps {}", "dumps", [](L l) -> Value { return l.dumps; }},
    {"changes {}", "changes", [](L l) -> Value { return l.changes; }},
    {"events {}", "events", [](L l) -> Value { return l.events; }},
    {"enobufs {}", "enobufs", [](L l) -> Value { return l.enobufs; }},
    {"malformed {}", "malformed", [](L l) -> Value { return l.malformed; }},
    {"errors {}", "errors", [](L l) -> Value { return l.errors; }},
});

std::string text_value(Show show, const Value& v) {
    if (const auto* s = std::get_if<std::string_view>(&v)) return std::string(*s);
    if (const auto* x = std::get_if<double>(&v)) return fixed(*x, 2);
    const auto n = std::get<std::uint64_t>(v);
    if (show == Show::kib) return std::to_string((n + 1023) / 1024);
    if (show == Show::utc) return utc(n);
    return std::to_string(n);
}

Json json_value(Show show, const Value& v) {
    if (const auto* s = std::get_if<std::string_view>(&v)) return std::string(*s);
    if (const auto* x = std::get_if<double>(&v)) return round3(*x);
    const auto n = std::get<std::uint64_t>(v);
    return show == Show::utc ? n / kNanosPerSecond : n;
}

// ---- the two renderers, driven in the same order by walk() ----

class TextOut {
  public:
    void header(const StatsReport& r) {
        const auto up = r.now - r.started;
        out_ += "nflowd " + r.version + ", up " + std::to_string(up / kNanosPerSecond) + " s (" +
                duration(up) + ")\n";
        out_ += "protocol: NetFlow v" + std::to_string(r.protocol) + ", engine_id " +
                std::to_string(r.engine_id) + ", timeouts: active " +
                std::to_string(r.active_timeout / kNanosPerSecond) + " s, inactive " +
                std::to_string(r.inactive_timeout / kNanosPerSecond) + " s\n";
    }
    void rates(const Rates& rates) {
        out_ += "rate (1/5/15 min): pps";
        for (double v : rates.pps) out_ += " " + fixed(v, 1);
        out_ += ", bps";
        for (double v : rates.bps) out_ += " " + fixed(v, 0);
        out_ += "\n";
    }
    template <class T> void line(std::string_view head, Items<T> items, const T& v) {
        out_ += head;
        out_ += ": ";
        bool first = true;
        for (const auto& it : items) {
            if (it.text.empty()) continue;
            if (!first) out_ += it.attached ? " " : ", ";
            first = false;
            const auto at = it.text.find("{}");
            out_ += it.text.substr(0, at);
            out_ += text_value(it.show, it.get(v));
            out_ += it.text.substr(at + 2);
        }
        out_ += "\n";
    }
    template <class T>
    void list(std::string_view name, std::string_view, Items<T> items, const std::vector<T>& all,
              std::string (*label)(std::size_t, const T&)) {
        for (std::size_t i = 0; i < all.size(); ++i)
            line(std::string(name) + " " + label(i, all[i]), items, all[i]);
    }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
};

template <class T> Json json_object(Items<T> items, const T& v) {
    Json o = Json::object();
    for (const auto& it : items) {
        if (it.json.empty()) continue;
        auto& into = it.nest.empty() ? o : o[std::string(it.nest)];
        into[std::string(it.json)] = json_value(it.show, it.get(v));
    }
    return o;
}

class JsonOut {
  public:
    void header(const StatsReport& r) {
        j_["version"] = r.version;
        j_["now"] = secs(r.now);
        j_["started"] = secs(r.started);
        j_["uptime"] = secs(r.now - r.started);
        j_["protocol"] = r.protocol;
        j_["engine_id"] = r.engine_id;
        j_["timeouts"]["active"] = secs(r.active_timeout);
        j_["timeouts"]["inactive"] = secs(r.inactive_timeout);
    }
    void rates(const Rates& rates) {
        Json& a = j_["rates"] = Json::array();
        for (std::size_t i = 0; i < kRateMinutes.size(); ++i) {
            Json o = Json::object();
            o["minutes"] = kRateMinutes[i];
            o["pps"] = round3(rates.pps[i]);
            o["bps"] = round3(rates.bps[i]);
            a.push_back(std::move(o));
        }
    }
    template <class T> void line(std::string_view key, Items<T> items, const T& v) {
        j_[std::string(key)] = json_object(items, v);
    }
    template <class T>
    void list(std::string_view, std::string_view key, Items<T> items, const std::vector<T>& all,
              std::string (*)(std::size_t, const T&)) {
        Json& a = j_[std::string(key)] = Json::array();
        for (const auto& v : all) a.push_back(json_object(items, v));
    }
    // Invalid UTF-8 (none is expected: the strings are a version and addresses) is replaced
    // rather than thrown.
    std::string take() { return j_.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"; }

  private:
    Json j_ = Json::object();
};

template <class Out> void walk(const StatsReport& r, Out& out) {
    const View v = view(r);
    out.header(r);
    out.line("flows", Items<View>(kFlows), v);
    out.line("hash", Items<View>(kHash), v);
    out.line("in", Items<View>(kIn), v);
    out.rates(r.rates);
    out.list(
        "worker", "workers", Items<WorkerStats>(kWorker), r.pipeline.workers,
        +[](std::size_t i, const WorkerStats&) { return std::to_string(i); });
    out.line("packets", Items<View>(kPackets), v);
    out.line("expired", Items<View>(kExpired), v);
    // The export and destination lines start as the first SIGUSR1 text did: scripts grep
    // "export: flows" and "destination X: datagrams".
    out.list(
        "group", "groups", Items<GroupStats>(kGroup), r.groups,
        +[](std::size_t, const GroupStats& g) { return std::to_string(g.group); });
    out.line("export", Items<View>(kExport), v);
    out.list(
        "destination", "destinations", Items<CollectorStats>(kDestination), r.pipeline.collectors,
        +[](std::size_t, const CollectorStats& c) { return c.destination; });
    out.line("conntrack", Items<View>(kConntrack), v);
    out.line("nat", Items<View>(kNat), v);
    if (r.control) out.line("control", Items<ControlServerStats>(kControl), *r.control);
    if (r.links) out.line("links", Items<LinkStats>(kLinks), *r.links);
}

} // namespace

std::string format_stats_text(const StatsReport& report) {
    TextOut out;
    walk(report, out);
    return out.take();
}

std::string format_stats_json(const StatsReport& report) {
    JsonOut out;
    walk(report, out);
    return out.take();
}

std::string format_stats(const StatsReport& report, ctl::StatsFormat format) {
    switch (format) {
    case ctl::StatsFormat::json:
        return format_stats_json(report);
    case ctl::StatsFormat::prometheus:
        return format_stats_prometheus(report);
    case ctl::StatsFormat::text:
        break;
    }
    return format_stats_text(report);
}

} // namespace nflowd
