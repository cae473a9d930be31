#include "nflowd/stats_report.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>

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

std::string fixed(double v, int decimals = 2) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, std::isfinite(v) ? v : 0.0);
    return buf;
}

// Average chain entries walked per lookup; every packet offered to the cache is one lookup.
double metric(const FlowTableStats& s) {
    const auto lookups = s.packets + s.dropped_packets;
    return lookups == 0 ? 0.0 : static_cast<double>(s.searched) / static_cast<double>(lookups);
}

std::string utc(Nanos t) {
    if (t <= 0) return "never";
    const std::time_t secs = static_cast<std::time_t>(t / kNanosPerSecond);
    std::tm tm{};
    gmtime_r(&secs, &tm);
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

std::uint64_t kib(std::size_t bytes) {
    return (bytes + 1023) / 1024;
}

struct Totals {
    FlowTableStats table;
    std::uint64_t hashsize = 0;
    std::uint64_t memory = 0;
    std::uint64_t export_bytes = 0;
};

Totals totals(const StatsReport& r) {
    Totals t;
    t.table = r.pipeline.total();
    for (const auto& w : r.pipeline.workers) {
        t.hashsize += w.hashsize;
        t.memory += w.memory_bytes;
    }
    // v5: a 24-byte header and 48 bytes per record, so the bytes built follow exactly.
    t.export_bytes = 24 * r.pipeline.exporter.datagrams + 48 * r.pipeline.exporter.flows;
    return t;
}

// Minimal JSON writer: the report has only objects, arrays, numbers and plain strings.
class Json {
  public:
    Json& open(char bracket, std::string_view key = {}) {
        prefix(key);
        out_ += bracket;
        first_ = true;
        return *this;
    }
    Json& close(char bracket) {
        out_ += bracket;
        first_ = false;
        return *this;
    }
    Json& num(std::string_view key, std::uint64_t v) {
        prefix(key);
        out_ += std::to_string(v);
        return *this;
    }
    Json& real(std::string_view key, double v) {
        prefix(key);
        out_ += fixed(v, 3);
        return *this;
    }
    Json& str(std::string_view key, std::string_view v) {
        prefix(key);
        quote(v);
        return *this;
    }
    std::string take() { return std::move(out_) + "\n"; }

  private:
    void prefix(std::string_view key) {
        if (!first_) out_ += ',';
        first_ = false;
        if (!key.empty()) {
            quote(key);
            out_ += ':';
        }
    }
    void quote(std::string_view s) {
        out_ += '"';
        for (const char c : s) {
            const auto u = static_cast<unsigned char>(c);
            if (c == '"' || c == '\\') {
                out_ += '\\';
                out_ += c;
            } else if (u < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", u);
                out_ += buf;
            } else {
                out_ += c;
            }
        }
        out_ += '"';
    }
    std::string out_;
    bool first_ = true;
};

} // namespace

std::string format_stats_text(const StatsReport& r) {
    const auto t = totals(r);
    const auto& p = r.pipeline;
    std::ostringstream o;
    o << "nflowd " << r.version << ", up " << (r.now - r.started) / kNanosPerSecond << " s ("
      << duration(r.now - r.started) << ")\n";
    o << "protocol: NetFlow v" << r.protocol << ", engine_id " << r.engine_id
      << ", timeouts: active " << r.active_timeout / kNanosPerSecond << " s, inactive "
      << r.inactive_timeout / kNanosPerSecond << " s\n";
    o << "flows: active " << t.table.active << ", peak " << r.peak << " at " << utc(r.peak_time)
      << ", memory " << kib(t.memory) << " KiB, maxflows " << r.maxflows << "\n";
    o << "hash: size " << t.hashsize << ", metric " << fixed(metric(t.table)) << ", searched "
      << t.table.searched << ", found " << t.table.found << ", new " << t.table.created << "\n";
    o << "in: packets " << t.table.packets + t.table.dropped_packets << ", bytes "
      << t.table.octets + t.table.dropped_octets << "\n";
    o << "rate (1/5/15 min): pps";
    for (double v : r.rates.pps) o << " " << fixed(v, 1);
    o << ", bps";
    for (double v : r.rates.bps) o << " " << fixed(v, 0);
    o << "\n";
    for (std::size_t i = 0; i < p.workers.size(); ++i) {
        const auto& w = p.workers[i];
        o << "worker " << i << ": active " << w.table.active << ", peak " << w.table.peak
          << ", hashsize " << w.hashsize << ", metric " << fixed(metric(w.table)) << ", searched "
          << w.table.searched << ", found " << w.table.found << ", new " << w.table.created
          << ", memory " << kib(w.memory_bytes) << " KiB\n";
    }
    o << "packets: parsed " << p.parse.packets << ", invalid " << p.parse.invalid << ", truncated "
      << p.parse.truncated << ", fragments " << p.parse.fragments << ", ipv6 skipped "
      << p.parse.ipv6 << ", maxflows drops " << t.table.dropped_packets << " ("
      << t.table.dropped_octets << " bytes)\n";
    o << "expired: inactive " << t.table.expired_inactive << ", active " << t.table.expired_active
      << ", overflow " << t.table.expired_overflow << ", flushed " << t.table.flushed << "\n";
    // The export and destination lines start as the first SIGUSR1 text did: scripts grep
    // "export: flows" and "destination X: datagrams".
    for (const auto& g : r.groups)
        o << "group " << g.group << ": received " << g.nflog.packets << ", lost " << g.nflog.lost
          << ", enobufs " << g.nflog.enobufs << ", malformed " << g.nflog.malformed << "\n";
    o << "export: flows " << p.exporter.flows << ", datagrams " << p.exporter.datagrams
      << ", bytes " << t.export_bytes << ", lost flows " << p.exporter.lost_flows
      << ", lost datagrams " << p.exporter.lost_datagrams << "\n";
    for (const auto& c : p.collectors)
        o << "destination " << c.destination << ": datagrams " << c.datagrams << ", bytes "
          << c.bytes << ", errors: buffer full " << c.err_buffer_full << ", refused "
          << c.err_refused << ", other " << c.err_other << ", sndbuf " << c.sndbuf << "\n";
    if (r.control)
        o << "control: requests " << r.control->requests << ", errors " << r.control->errors
          << ", denied " << r.control->denied << ", ignored " << r.control->ignored << "\n";
    return o.str();
}

std::string format_stats_json(const StatsReport& r) {
    const auto t = totals(r);
    const auto& p = r.pipeline;
    const auto secs = [](Nanos n) {
        return static_cast<std::uint64_t>(std::max<Nanos>(0, n)) / kNanosPerSecond;
    };
    Json j;
    j.open('{');
    j.str("version", r.version).num("now", secs(r.now)).num("started", secs(r.started));
    j.num("uptime", secs(r.now - r.started));
    j.num("protocol", r.protocol).num("engine_id", r.engine_id);
    j.open('{', "timeouts")
        .num("active", secs(r.active_timeout))
        .num("inactive", secs(r.inactive_timeout))
        .close('}');
    j.open('{', "flows")
        .num("active", t.table.active)
        .num("peak", r.peak)
        .num("peak_time", secs(r.peak_time))
        .num("memory", t.memory)
        .num("maxflows", r.maxflows)
        .close('}');
    j.open('{', "hash")
        .num("size", t.hashsize)
        .real("metric", metric(t.table))
        .num("searched", t.table.searched)
        .num("found", t.table.found)
        .num("new", t.table.created)
        .close('}');
    j.open('{', "in")
        .num("packets", t.table.packets + t.table.dropped_packets)
        .num("bytes", t.table.octets + t.table.dropped_octets)
        .close('}');
    j.open('[', "rates");
    for (std::size_t i = 0; i < kRateMinutes.size(); ++i)
        j.open('{')
            .num("minutes", static_cast<std::uint64_t>(kRateMinutes[i]))
            .real("pps", r.rates.pps[i])
            .real("bps", r.rates.bps[i])
            .close('}');
    j.close(']');
    j.open('[', "workers");
    for (const auto& w : p.workers)
        j.open('{')
            .num("active", w.table.active)
            .num("peak", w.table.peak)
            .num("hashsize", w.hashsize)
            .real("metric", metric(w.table))
            .num("searched", w.table.searched)
            .num("found", w.table.found)
            .num("new", w.table.created)
            .num("packets", w.table.packets)
            .num("bytes", w.table.octets)
            .num("memory", w.memory_bytes)
            .close('}');
    j.close(']');
    j.open('{', "packets")
        .num("parsed", p.parse.packets)
        .num("accounted", p.parse.accounted)
        .num("invalid", p.parse.invalid)
        .num("truncated", p.parse.truncated)
        .num("fragments", p.parse.fragments)
        .num("ipv6_skipped", p.parse.ipv6)
        .num("maxflows_dropped_packets", t.table.dropped_packets)
        .num("maxflows_dropped_bytes", t.table.dropped_octets)
        .close('}');
    j.open('{', "expired")
        .num("inactive", t.table.expired_inactive)
        .num("active", t.table.expired_active)
        .num("overflow", t.table.expired_overflow)
        .num("flushed", t.table.flushed)
        .close('}');
    j.open('[', "groups");
    for (const auto& g : r.groups)
        j.open('{')
            .num("group", g.group)
            .num("received", g.nflog.packets)
            .num("lost", g.nflog.lost)
            .num("enobufs", g.nflog.enobufs)
            .num("malformed", g.nflog.malformed)
            .close('}');
    j.close(']');
    j.open('{', "export")
        .num("datagrams", p.exporter.datagrams)
        .num("flows", p.exporter.flows)
        .num("bytes", t.export_bytes)
        .num("lost_flows", p.exporter.lost_flows)
        .num("lost_datagrams", p.exporter.lost_datagrams)
        .close('}');
    j.open('[', "destinations");
    for (const auto& c : p.collectors)
        j.open('{')
            .str("destination", c.destination)
            .num("datagrams", c.datagrams)
            .num("bytes", c.bytes)
            .open('{', "errors")
            .num("buffer_full", c.err_buffer_full)
            .num("refused", c.err_refused)
            .num("other", c.err_other)
            .close('}')
            .num("sndbuf", static_cast<std::uint64_t>(std::max(c.sndbuf, 0)))
            .close('}');
    j.close(']');
    if (r.control)
        j.open('{', "control")
            .num("requests", r.control->requests)
            .num("errors", r.control->errors)
            .num("denied", r.control->denied)
            .num("ignored", r.control->ignored)
            .close('}');
    j.close('}');
    return j.take();
}

} // namespace nflowd
