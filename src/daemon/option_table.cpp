// The option table: each option of nflowd declared once, in --help order.
#include "option_codecs.hpp"
#include "option_def.hpp"

#include <limits>
#include <stdexcept>

namespace nflowd::options {

namespace {

using Defs = std::vector<std::unique_ptr<const OptionDef>>;
using U8 = UnsignedCodec<std::uint8_t>;
using U32 = UnsignedCodec<std::uint32_t>;
using Size = UnsignedCodec<std::size_t>;
using Int = UnsignedCodec<int>;

// A v5 record's First and Last are 32-bit milliseconds of uptime: a flow kept longer than
// 2^32 ms (49.7 days) would wrap them, so no timeout may be longer than 4294967 s.
constexpr SecondsCodec kV5Seconds{std::numeric_limits<std::uint32_t>::max() / 1000,
                                  "must be 1-4294967 seconds"};

// Member accessors: one generic lambda serves a const and a non-const Config.
#define NFLOWD_FIELD(member)                                                                       \
    [](auto& c) -> auto& {                                                                         \
        return c.member;                                                                           \
    }

void add_input(Defs& t) {
    t.push_back(
        make_option({"read", "FILE", "read packets from a pcap file (- = stdin) instead of NFLOG",
                     false, Opt::read},
                    TextCodec{true}, NFLOWD_FIELD(read_file)));
    t.push_back(
        make_option({"group", "N[-M]", "NFLOG group(s) to read; repeatable, ranges like 5-8", false,
                     Opt::group},
                    GroupsCodec{}, NFLOWD_FIELD(groups)));
    t.push_back(make_option(
        {"snaplen", "BYTES", "bytes of each packet copied by NFLOG", false, Opt::snaplen},
        U32{40, 65535, "must be 40-65535 bytes"}, NFLOWD_FIELD(snaplen)));
    t.push_back(make_option({"qthreshold", "N", "packets the kernel queues per netlink message",
                             false, Opt::qthreshold},
                            U32{1, 65535, "must be 1-65535 packets"}, NFLOWD_FIELD(qthreshold)));
    t.push_back(make_option(
        {"qtimeout", "CENTISECONDS", "longest the kernel holds a batch", false, Opt::qtimeout},
        U32{0, 6000, "must be 0-6000 hundredths of a second"}, NFLOWD_FIELD(qtimeout)));
    t.push_back(make_option({"nlbufsiz", "BYTES", "kernel netlink buffer per group, at most 131072",
                             false, Opt::nlbufsiz},
                            U32{4096, 131072, "must be 4096-131072 bytes"},
                            NFLOWD_FIELD(nlbufsiz)));
    t.push_back(
        make_option({"rcvbuf", "BYTES", "socket receive buffer per group", false, Opt::rcvbuf},
                    Int{65536, 1u << 30, "must be 65536-1073741824 bytes"}, NFLOWD_FIELD(rcvbuf)));
    // ipt_NETFLOW's --enable-physdev-override build option (v5 has no field for the separate
    // physical interfaces of its --enable-physdev), as a switch: bridged packets are otherwise
    // reported on the bridge, live and in --read alike.
    t.push_back(make_option({"physdev", "yes|no",
                             "report bridged packets on the bridge ports, not the bridge", false,
                             Opt::physdev},
                            YesNoCodec{}, NFLOWD_FIELD(physdev)));
    t.push_back(make_option({"threads", "N", "flow cache worker threads", false, Opt::threads},
                            ThreadsCodec{}, NFLOWD_FIELD(threads), NoMirror{}, "number of CPUs"));
}

void add_cache(Defs& t) {
    t.push_back(
        make_option({"hashsize", "BUCKETS", "flow hash buckets, >= 256", true, Opt::hashsize},
                    Size{kMinHashsize, 1u << 28, "must be 256-268435456 buckets"},
                    NFLOWD_FIELD(table.hashsize), NoMirror{}, "one bucket per 128 KiB of RAM"));
    t.push_back(make_option(
        {"maxflows", "N", "most flows in the cache, 0 = unlimited", true, Opt::maxflows},
        Size{0, std::numeric_limits<std::uint32_t>::max(),
             "must be a number of flows (0 = unlimited)"},
        NFLOWD_FIELD(table.maxflows)));
    t.push_back(make_option({"inactive_timeout", "SECONDS", "export a flow idle this long", true,
                             Opt::inactive_timeout},
                            kV5Seconds, NFLOWD_FIELD(table.inactive_timeout)));
    t.push_back(make_option(
        {"active_timeout", "SECONDS", "export a flow this old", true, Opt::active_timeout},
        kV5Seconds, NFLOWD_FIELD(table.active_timeout)));
    t.push_back(make_option(
        {"aggregation", "RULES", "e.g. 10.0.0.0/8=16,80-89=80", true, Opt::aggregation},
        AggregationCodec{}, NFLOWD_FIELD(aggregation), NFLOWD_FIELD(aggregation_text), "none"));
}

// NAT (issue 13): conntrack feeds v9/IPFIX flows' translated fields and NAT event records.
void add_nat(Defs& t) {
    t.push_back(make_option({"conntrack", "yes|no",
                             "NAT translations from conntrack in v9/IPFIX flow records", false,
                             Opt::conntrack},
                            YesNoCodec{}, NFLOWD_FIELD(conntrack)));
    t.push_back(
        make_option({"natevents", "", "export NAT create/delete events (v9/IPFIX), a switch", false,
                     Opt::natevents},
                    SwitchCodec{}, NFLOWD_FIELD(natevents)));
    t.push_back(make_option({"natevents_only", "",
                             "export NAT events and no flow records; no --group needed", false,
                             Opt::natevents_only},
                            SwitchCodec{}, NFLOWD_FIELD(natevents_only)));
    t.push_back(make_option({"natevents_destination", "A:P[@V][,B:P[@V]]",
                             "collectors of the NAT events instead of the flow destinations", false,
                             Opt::natevents_destination},
                            DestinationsCodec{}, NFLOWD_FIELD(natevents_destinations),
                            NFLOWD_FIELD(natevents_destination_text)));
}

// Issue 13: interface indexes by name, and sampling (done and announced).
void add_links_sampling(Defs& t) {
    t.push_back(make_option({"snmp_rules", "RULES",
                             "exported ifindexes by interface name: eth:100 or eth*=100 (eth3 -> "
                             "103), wan=1; live only",
                             true, Opt::snmp_rules},
                            SnmpRulesCodec{}, NFLOWD_FIELD(snmp_rules)));
    t.push_back(make_option({"sampler", "MODE:N",
                             "export 1 in N flows: deterministic:N, random:N or hash:N", true,
                             Opt::sampler},
                            SamplerCodec{}, NFLOWD_FIELD(format.sampler)));
    t.push_back(make_option(
        {"sampling_rate", "N", "announce that the rules pass 1 in N packets (-m statistic, numgen)",
         true, Opt::sampling_rate},
        U32{1, 1'000'000'000, "must be 1-1000000000 packets"}, NFLOWD_FIELD(format.sampling_rate)));
}

void add_export(Defs& t) {
    t.push_back(make_option(
        {"destination", "A:P[@V][,B:P[@V]]",
         "collectors, each gets every flow; port 2055 if left out, @5|@9|@10 its own protocol",
         true, Opt::destination},
        DestinationsCodec{}, NFLOWD_FIELD(destinations), NFLOWD_FIELD(destination_text)));
    t.push_back(make_option(
        {"sndbuf", "BYTES", "export socket send buffer, 0 = system default", true, Opt::sndbuf},
        Int{0, 1u << 30, "must be 0-1073741824 bytes"}, NFLOWD_FIELD(sndbuf)));
    t.push_back(make_option({"engine_id", "N", "NetFlow v5 engine_id", true, Opt::engine_id},
                            U8{0, 255, "must be 0-255"}, NFLOWD_FIELD(engine_id)));
    t.push_back(make_option({"protocol", "5|9|10",
                             "NetFlow version: 5, 9 or 10 (IPFIX), for destinations without @V",
                             true, Opt::protocol},
                            ProtocolCodec{}, NFLOWD_FIELD(format.protocol)));
    t.push_back(make_option({"template_refresh_rate", "DATAGRAMS",
                             "v9/IPFIX templates again after this many datagrams, 0 = never", true,
                             Opt::template_refresh_rate},
                            U32{0, 1'000'000'000, "must be 0-1000000000 datagrams"},
                            NFLOWD_FIELD(format.template_refresh_rate)));
    t.push_back(make_option({"template_timeout_rate", "SECONDS",
                             "v9/IPFIX templates again after this many seconds, 0 = never", true,
                             Opt::template_timeout_rate},
                            U32{0, 86400, "must be 0-86400 seconds"},
                            NFLOWD_FIELD(format.template_timeout_rate)));
    t.push_back(make_option({"mtu", "BYTES",
                             "largest v9/IPFIX datagram payload, 0 = 1500 less IP+UDP headers",
                             true, Opt::mtu},
                            MtuCodec{}, NFLOWD_FIELD(format.mtu)));
    t.push_back(make_option({"export_rate", "BYTES",
                             "export bytes/s, all destinations, after a 64 KiB burst; 0 = unpaced",
                             true, Opt::export_rate},
                            RateCodec{}, NFLOWD_FIELD(pacing.rate)));
    add_nat(t);
    add_links_sampling(t);
}

void add_daemon(Defs& t) {
    t.push_back(make_option(
        {"debug", "LEVEL", "0 errors, 1 + notices, 2 + info, 3 + debug", true, Opt::debug},
        Int{0, 3, "must be 0-3"}, NFLOWD_FIELD(debug)));
    t.push_back(make_option({"log", "stderr|syslog", "where to log", false, Opt::log},
                            ChoiceCodec{{"stderr", "syslog"}}, NFLOWD_FIELD(log)));
    t.push_back(make_option({"pidfile", "FILE", "write the daemon's PID here", false, Opt::pidfile},
                            TextCodec{}, NFLOWD_FIELD(pidfile)));
    t.push_back(
        make_option({"user", "USER", "after binding, drop root for USER's uid, gid and groups",
                     false, Opt::user},
                    UserCodec{}, NFLOWD_FIELD(user)));
    t.push_back(make_option(
        {"control_id", "PORTID", "netlink port id of the control channel", false, Opt::control_id},
        U32{1, 0x7fffffff, "must be a port id 1-2147483647"}, NFLOWD_FIELD(control_id)));
    t.push_back(make_option(
        {"control_group", "GROUP", "may nflowctl set/flush/flows besides root (name or gid)", false,
         Opt::control_group},
        GroupCodec{}, NFLOWD_FIELD(control_group), NFLOWD_FIELD(control_group_text)));
    t.push_back(make_option(
        {"config", "FILE", "read options from FILE (key = value, same names)", false, Opt::config},
        TextCodec{}, NFLOWD_FIELD(config_file)));
}

#undef NFLOWD_FIELD

} // namespace

const std::vector<std::unique_ptr<const OptionDef>>& option_defs() {
    static const Defs table = [] {
        Defs t;
        add_input(t);
        add_cache(t);
        add_export(t);
        add_daemon(t);
        // diff() and option_info() index the table by Opt.
        for (std::size_t i = 0; i < t.size(); ++i)
            if (static_cast<std::size_t>(t[i]->info().id) != i)
                throw std::logic_error("option table out of Opt order");
        if (t.size() != kOptionCount) throw std::logic_error("option table lacks an option");
        return t;
    }();
    return table;
}

} // namespace nflowd::options
