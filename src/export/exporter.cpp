#include "nflowd/exporter.hpp"

#include "nflowd/clock.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <random>
#include <utility>

namespace nflowd {
namespace {

// A partial datagram waits at most this long for more flows, v5's and v9/IPFIX's alike.
constexpr Nanos kMaxWait = kNanosPerSecond;

void sleep_ns(std::int64_t ns) noexcept {
    timespec req{static_cast<time_t>(ns / kNanosPerSecond),
                 static_cast<long>(ns % kNanosPerSecond)};
    timespec rem{};
    while (nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
}

double burst_of(const PacingConfig& p) noexcept {
    return std::max<std::uint32_t>(p.burst, 1);
}

} // namespace

Exporter::Exporter(const V5Params& params, CollectorSet collectors, const PacingConfig& pacing,
                   const ExportFormat& format, LinkSource links)
    : batcher_(params, kMaxWait), collectors_(std::move(collectors)), pacing_(pacing),
      format_(format), link_source_(std::move(links)),
      sampler_({}, std::random_device{}()), // random: a collector must not predict the choice
      tokens_(burst_of(pacing)), last_refill_(steady_time()) {
    rebuild_streams();
    apply_sampling();
}

// The sampler's countdown restarts only when the sampler itself changes. The v5 header's
// sampling field rides in the batcher's params; v9/IPFIX streams re-send their options.
void Exporter::apply_sampling() {
    if (!(sampler_.config() == format_.sampler)) sampler_.set_config(format_.sampler);
    const SamplingAnnouncement a = announce(format_.sampler, format_.sampling_rate);
    if (a == announced_) return;
    announced_ = a;
    V5Params p = batcher_.params();
    p.sampling = a.v5_field();
    batcher_.set_params(p);
    for (auto& s : streams_)
        if (s.builder) s.templates_now = true;
}

Exporter::Stream Exporter::make_stream(const Destination& dest) const {
    Stream s;
    s.protocol = dest.protocol.value_or(format_.protocol);
    if (s.protocol != ExportProtocol::v5) {
        const std::size_t mtu =
            format_.mtu != 0 ? format_.mtu : default_mtu(dest.addr.ss_family == AF_INET6);
        s.builder.emplace(s.protocol, mtu);
    }
    return s;
}

// Keeps the stream of every destination whose version and MTU stay; the others start
// afresh (templates first). Their datagrams in progress must have been sent.
void Exporter::rebuild_streams() {
    std::vector<Stream> streams;
    streams.reserve(collectors_.size());
    has_v5_ = has_v9_ = has_ipfix_ = false;
    for (std::size_t i = 0; i < collectors_.size(); ++i) {
        Stream fresh = make_stream(collectors_.destination(i));
        const bool keep = i < streams_.size() && streams_[i].protocol == fresh.protocol &&
                          (!fresh.builder || streams_[i].builder->mtu() == fresh.builder->mtu());
        streams.push_back(keep ? std::move(streams_[i]) : std::move(fresh));
        const ExportProtocol p = streams.back().protocol;
        collectors_.stats(i).protocol = static_cast<int>(p);
        has_v5_ |= p == ExportProtocol::v5;
        has_v9_ |= p == ExportProtocol::v9;
        has_ipfix_ |= p == ExportProtocol::ipfix;
    }
    streams_ = std::move(streams);
    // With no destination at all, v5 datagrams are still built and counted lost, as always.
    has_v5_ |= streams_.empty();
}

void Exporter::add(std::span<const FlowRecord> records, const ExportTime& time) {
    last_time_ = time;
    if (nat_cfg_.events_only) return; // --natevents_only: the flows are not wanted
    const bool annotate = nat_table_ && nat_cfg_.annotate && (has_v9_ || has_ipfix_);
    for (const auto& record : records) {
        if (!sampler_.keep()) {
            ++stats_.sampled_out;
            continue;
        }
        const FlowRecord& r = mapped(record);
        ++stats_.flows;
        if (has_v5_) add_v5(r, time);
        stats_.flows_v9 += has_v9_ ? 1 : 0;
        stats_.flows_ipfix += has_ipfix_ ? 1 : 0;
        const auto nat = annotate ? nat_table_->lookup(record) : std::nullopt;
        for (std::size_t i = 0; i < event_streams_begin(); ++i)
            if (streams_[i].builder) add_to_stream(i, r, time, nat ? &*nat : nullptr);
    }
}

void Exporter::add_v5(const FlowRecord& r, const ExportTime& time) {
    if (r.family != Family::ipv4) {
        for (std::size_t i = 0; i < streams_.size(); ++i)
            if (streams_[i].protocol == ExportProtocol::v5) ++collectors_.stats(i).skipped_ipv6;
        return;
    }
    ++stats_.flows_v5;
    if (batcher_.add(r, time, scratch_)) send_v5(scratch_);
}

void Exporter::tick(const ExportTime& time) {
    last_time_ = time;
    refresh_links();
    if (batcher_.poll(time, scratch_)) send_v5(scratch_);
    for (std::size_t i = 0; i < streams_.size(); ++i) {
        Stream& s = streams_[i];
        if (!s.builder) continue;
        if (s.templates_now) {
            // Whatever is in progress first, so the templates lead a datagram of their own.
            send_stream(i, time);
            s.templates_due = true;
            begin_message(i, time);
            send_stream(i, time);
        } else if (!s.builder->empty() && time.now - s.first_added >= kMaxWait) {
            send_stream(i, time);
        }
    }
}

void Exporter::finish(const ExportTime& time) {
    last_time_ = time;
    if (batcher_.finish(time, scratch_)) send_v5(scratch_);
    for (std::size_t i = 0; i < streams_.size(); ++i)
        if (streams_[i].builder) send_stream(i, time);
}

void Exporter::set_collectors(CollectorSet collectors) {
    collectors.carry_stats_from(collectors_);
    // A destination that stays keeps its stream (sequence, template timers); one that goes
    // gets what it has in progress first.
    std::vector<Stream> kept(collectors.size());
    std::vector<bool> has(collectors.size(), false);
    for (std::size_t j = 0; j < collectors_.size(); ++j) {
        std::size_t i = 0;
        while (i < collectors.size() && !(collectors.destination(i) == collectors_.destination(j)))
            ++i;
        if (i == collectors.size()) {
            if (streams_[j].builder) send_stream(j, last_time_);
            continue;
        }
        kept[i] = std::move(streams_[j]);
        has[i] = true;
    }
    collectors_ = std::move(collectors);
    for (std::size_t i = 0; i < kept.size(); ++i)
        if (!has[i]) kept[i] = make_stream(collectors_.destination(i));
    streams_ = std::move(kept);
    rebuild_streams();
}

// A new engine_id is a new v9 source ID / IPFIX observation domain: templates and sequence
// are per domain, so each stream sends what it has under the old one and starts afresh.
// The v5 datagram in progress takes the new engine_id, as it always has.
void Exporter::set_params(const V5Params& params) {
    if (params.engine_id != batcher_.params().engine_id) {
        for (std::size_t i = 0; i < streams_.size(); ++i)
            if (streams_[i].builder) send_stream(i, last_time_);
        streams_.clear();
    }
    V5Params p = params;
    p.sampling = announced_.v5_field();
    batcher_.set_params(p);
    rebuild_streams();
}

void Exporter::set_format(const ExportFormat& format) {
    if (format.protocol != format_.protocol || format.mtu != format_.mtu) finish(last_time_);
    format_ = format;
    rebuild_streams();
    apply_sampling();
}

void Exporter::send_templates() noexcept {
    for (auto& s : streams_) s.templates_now = s.builder.has_value();
}

Nanos Exporter::deadline() const noexcept {
    Nanos d = batcher_.deadline();
    for (const auto& s : streams_)
        if (s.builder && !s.builder->empty() && (d == 0 || s.first_added + kMaxWait < d))
            d = s.first_added + kMaxWait;
    return d;
}

void Exporter::reset_stats() noexcept {
    stats_ = {};
    collectors_.reset_stats();
}

void Exporter::add_to_stream(std::size_t index, const FlowRecord& r, const ExportTime& time,
                             const NatTranslation* nat) {
    Stream& s = streams_[index];
    MessageBuilder& b = *s.builder;
    const auto add = [&] {
        return nat ? b.add_nat_flow(r, *nat, time, batcher_.params())
                   : b.add_flow(r, time, batcher_.params());
    };
    if (b.empty()) begin_message(index, time);
    if (!add()) {
        send_stream(index, time);
        begin_message(index, time);
        add(); // an empty message takes any flow
    }
    if (b.flows() + b.events() == 1) s.first_added = time.now;
}

// A datagram starts with the templates when they are due: never sent, asked for, an error
// from the collector since the last datagram (refused: it may have restarted and forgotten
// them), or the refresh count or time reached. The options records come with them except at
// the count refresh, as ipt_NETFLOW sends its own on a timer: they count in the IPFIX
// sequence (RFC 7011 3.1, and tshark checks so) but nfdump 1.7 does not count them, so each
// one mid-stream costs a "sequence failure" there; once per template_timeout_rate is enough
// for state that never changes (sampling) or changes slowly (statistics).
void Exporter::begin_message(std::size_t index, const ExportTime& time) {
    Stream& s = streams_[index];
    MessageBuilder& b = *s.builder;
    if (collectors_.take_error(index)) s.templates_due = true;
    const bool by_count =
        format_.template_refresh_rate != 0 && s.since_templates >= format_.template_refresh_rate;
    const bool by_time =
        format_.template_timeout_rate != 0 &&
        time.now - s.templates_at >= Nanos{format_.template_timeout_rate} * kNanosPerSecond;
    if (!s.templates_due && !by_count && !by_time) return;
    // An empty message of at least kMinMessageSize holds all of these.
    b.add_templates(has_if_names());
    if (nat_table_) add_nat_templates(index, time);
    // The link-layer ones (issue 13) last, leading the next message if they do not fit.
    if (!b.add_link_templates(nat_table_ != nullptr)) {
        send_stream(index, time);
        b.add_link_templates(nat_table_ != nullptr);
    }
    const bool options = s.templates_due || by_time;
    if (options) {
        const V5Params& params = batcher_.params();
        s.totals.ignored_packets = ignored_packets_;
        b.add_sampling(params, announced_);
        b.add_stats(s.totals, params);
    }
    s.templates_due = s.templates_now = false;
    s.since_templates = 0;
    s.templates_at = time.now;
    if (options) add_if_names(index, time);
}

void Exporter::send_stream(std::size_t index, const ExportTime& time) {
    Stream& s = streams_[index];
    MessageBuilder& b = *s.builder;
    if (b.empty()) return;
    const std::size_t flows = b.flows();
    const std::size_t templates = b.templates();
    const std::size_t options = b.options();
    const auto message = b.finish(time, batcher_.params());
    ++stats_.datagrams;
    stats_.bytes += message.size();
    ++s.since_templates;
    pace(message.size());
    const auto result = collectors_.send_to(index, message);
    if (result.trouble) s.templates_due = true;
    if (result.sent) {
        auto& c = collectors_.stats(index);
        c.templates += templates;
        c.options_records += options;
        ++s.totals.messages;
        s.totals.flows += flows;
        s.totals.octets += message.size();
    } else {
        ++stats_.lost_datagrams;
        stats_.lost_flows += flows;
        s.totals.not_sent_flows += flows;
    }
}

void Exporter::send_v5(const V5Datagram& datagram) {
    ++stats_.datagrams;
    stats_.bytes += datagram.size;
    std::size_t accepted = 0;
    for (std::size_t i = 0; i < event_streams_begin(); ++i) { // NAT-only ones get no flows
        if (streams_[i].protocol != ExportProtocol::v5) continue;
        pace(datagram.size); // each copy crosses the link
        if (collectors_.send_to(i, datagram.view()).sent) ++accepted;
    }
    if (accepted == 0) {
        ++stats_.lost_datagrams;
        stats_.lost_flows += datagram.count;
    }
}

// Token bucket in bytes: `burst` bytes go out back to back, then `rate` bytes per second. A
// flush of the whole cache (SIGTERM, end of a pcap) is megabytes; unpaced, it would overrun
// a collector's default ~208 KiB receive buffer in well under a millisecond. A datagram
// larger than the burst waits until the bucket is full, then goes (the bucket goes below 0).
void Exporter::pace(std::size_t bytes) {
    if (pacing_.rate == 0) return;
    const double rate = pacing_.rate;
    const double burst = burst_of(pacing_);
    const double need = std::min(static_cast<double>(bytes), burst);
    // Real elapsed time, not the flow clock: during offline replay `now` can jump by hours
    // between two datagrams.
    auto refill = [&] {
        const std::int64_t t = steady_time();
        tokens_ = std::min(burst, tokens_ + static_cast<double>(t - last_refill_) * rate /
                                                static_cast<double>(kNanosPerSecond));
        last_refill_ = t;
    };
    refill();
    while (tokens_ < need) {
        const double wait = (need - tokens_) / rate * static_cast<double>(kNanosPerSecond);
        sleep_ns(std::max<std::int64_t>(static_cast<std::int64_t>(wait), 1000));
        refill();
    }
    tokens_ -= static_cast<double>(bytes);
}

} // namespace nflowd
