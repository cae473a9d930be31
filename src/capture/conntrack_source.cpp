// The ctnetlink sockets: events and dumps through libnetfilter_conntrack (which parses every
// message), turned into NatEvents; losses from the socket's own drop counter.
#include "nflowd/conntrack_source.hpp"

#include "nflowd/net_admin.hpp"
#include "nflowd/nflog_source.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace nflowd {

namespace {

[[noreturn]] void throw_errno(int err, const char* what) {
    throw std::system_error(err, std::generic_category(), std::string("conntrack: ") + what);
}

NatEndpoint endpoint(const nf_conntrack* ct, bool v4, bool ports, nf_conntrack_attr addr,
                     nf_conntrack_attr port) {
    NatEndpoint e;
    if (v4) {
        e = NatEndpoint::ipv4(ntohl(nfct_get_attr_u32(ct, addr)), 0);
    } else if (const void* a = nfct_get_attr(ct, addr); a != nullptr) {
        std::memcpy(e.addr.data(), a, e.addr.size());
    }
    if (ports) e.port = ntohs(nfct_get_attr_u16(ct, port));
    return e;
}

// The connection's family, protocol and tuples; false for families other than IPv4/IPv6.
bool read_tuples(const nf_conntrack* ct, NatEvent& ev) {
    const std::uint8_t l3 = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO);
    if (l3 != AF_INET && l3 != AF_INET6) return false;
    const bool v4 = l3 == AF_INET;
    ev.family = v4 ? Family::ipv4 : Family::ipv6;
    ev.protocol = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);
    const bool p = has_ports(ev.protocol);
    ev.orig.src =
        endpoint(ct, v4, p, v4 ? ATTR_ORIG_IPV4_SRC : ATTR_ORIG_IPV6_SRC, ATTR_ORIG_PORT_SRC);
    ev.orig.dst =
        endpoint(ct, v4, p, v4 ? ATTR_ORIG_IPV4_DST : ATTR_ORIG_IPV6_DST, ATTR_ORIG_PORT_DST);
    ev.reply.src =
        endpoint(ct, v4, p, v4 ? ATTR_REPL_IPV4_SRC : ATTR_REPL_IPV6_SRC, ATTR_REPL_PORT_SRC);
    ev.reply.dst =
        endpoint(ct, v4, p, v4 ? ATTR_REPL_IPV4_DST : ATTR_REPL_IPV6_DST, ATTR_REPL_PORT_DST);
    return true;
}

// The kernel stamps connections (start, stop; wall clock, ns) when nf_conntrack_timestamp is
// on; placed on the flow clock like NFLOG's stamps, the receive time otherwise.
Nanos event_time(const nf_conntrack* ct, nf_conntrack_attr stamp, const TimePair& recv) {
    if (nfct_attr_is_set(ct, stamp) <= 0) return recv.mono;
    bool bad = false;
    return detail::nflog_packet_time(static_cast<Nanos>(nfct_get_attr_u64(ct, stamp)), recv, bad);
}

// A connection's identity for the start-up dump's set: family, protocol, original tuple.
std::string tuple_key(const NatEvent& ev) {
    std::string k(2 + 2 * sizeof(NatEndpoint), '\0');
    k[0] = static_cast<char>(ev.family);
    k[1] = static_cast<char>(ev.protocol);
    std::memcpy(k.data() + 2, &ev.orig.src, sizeof(NatEndpoint));
    std::memcpy(k.data() + 2 + sizeof(NatEndpoint), &ev.orig.dst, sizeof(NatEndpoint));
    return k;
}

// Whether the kernel sends events for connections made before a listener subscribed:
// nf_conntrack_events 1 does, 2 (auto) does not, and an unreadable value is taken as 2.
bool events_for_old_connections() {
    std::FILE* f = std::fopen("/proc/sys/net/netfilter/nf_conntrack_events", "re");
    if (f == nullptr) return false;
    int v = 0;
    const bool one = std::fscanf(f, "%d", &v) == 1 && v == 1;
    std::fclose(f);
    return one;
}

void set_socket_options(int fd, int rcvbuf) {
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        throw_errno(errno, "cannot make the event socket non-blocking");
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (rcvbuf > 0) {
        // FORCE ignores rmem_max but needs CAP_NET_ADMIN; without it take what rmem_max allows.
        if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
            ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
}

} // namespace

// The callbacks libnetfilter_conntrack calls per parsed message, with the source as data.
struct ConntrackCallbacks {
    static int event(nf_conntrack_msg_type type, nf_conntrack* ct, void* data) {
        auto& self = *static_cast<ConntrackSource*>(data);
        NatEvent ev;
        if (type == NFCT_T_NEW) {
            ++self.stats_.events_new;
            ev.kind = NatEventKind::create;
        } else if (type == NFCT_T_DESTROY) {
            ++self.stats_.events_destroy;
            ev.kind = NatEventKind::destroy;
        } else {
            return NFCT_CB_CONTINUE; // not subscribed
        }
        if (!read_tuples(ct, ev) || !ev.nated()) {
            ++self.stats_.not_nated;
            return NFCT_CB_CONTINUE;
        }
        ev.time = event_time(
            ct, ev.kind == NatEventKind::create ? ATTR_TIMESTAMP_START : ATTR_TIMESTAMP_STOP,
            self.recv_);
        self.fn_(self.ctx_, ev);
        return NFCT_CB_CONTINUE;
    }
    static int dumped(nf_conntrack_msg_type, nf_conntrack* ct, void* data) {
        auto& self = *static_cast<ConntrackSource*>(data);
        NatEvent ev;
        ev.kind = NatEventKind::create;
        ev.dumped = true;
        ev.time = self.recv_.mono; // when asked for: its start may be long ago
        if (read_tuples(ct, ev) && ev.nated()) {
            ++self.stats_.dumped;
            if (self.first_dump_)
                self.unended_.insert(tuple_key(ev));
            else if (!self.unended_.empty() && self.unended_.count(tuple_key(ev)) != 0)
                self.still_.insert(tuple_key(ev));
            self.fn_(self.ctx_, ev);
        }
        return NFCT_CB_CONTINUE;
    }
};

void ConntrackSource::HandleCloser::operator()(nfct_handle* h) const noexcept {
    nfct_close(h);
}

ConntrackSource::ConntrackSource(const ConntrackConfig& cfg) {
    {
        // Subscribing and dumping need CAP_NET_ADMIN (checked against the opener as well).
        const NetAdminScope net_admin;
        events_.reset(
            nfct_open(CONNTRACK, NF_NETLINK_CONNTRACK_NEW | NF_NETLINK_CONNTRACK_DESTROY));
        if (!events_) throw_errno(errno, "cannot subscribe to conntrack events");
        query_.reset(nfct_open(CONNTRACK, 0));
        if (!query_) throw_errno(errno, "cannot open a conntrack query socket");
        set_socket_options(nfct_fd(events_.get()), cfg.rcvbuf);
    }
    if (nfct_callback_register(events_.get(), NFCT_T_ALL, ConntrackCallbacks::event, this) != 0 ||
        nfct_callback_register(query_.get(), NFCT_T_ALL, ConntrackCallbacks::dumped, this) != 0)
        throw_errno(errno, "cannot register callbacks");
    read_drops();
    stats_.lost_events = 0; // drops before we listened are none of ours (there are none)
    // After subscribing: a connection made meanwhile is in the dump, in an event, or both.
    if (!dump([this](const NatEvent& ev) { backlog_.push_back(ev); }))
        throw_errno(errno != 0 ? errno : EIO, "cannot dump the connection table");
    first_dump_ = false;
    if (events_for_old_connections()) unended_.clear();
}

ConntrackSource::~ConntrackSource() = default;

int ConntrackSource::fd() const noexcept {
    return nfct_fd(events_.get());
}

void ConntrackSource::read_drops() noexcept {
    // The socket counts every event the kernel could not queue (netlink_overrun); ENOBUFS
    // only says that some were. SO_MEMINFO reads the count without a message.
    std::array<std::uint32_t, SK_MEMINFO_VARS> mem{};
    socklen_t len = sizeof mem;
    if (::getsockopt(fd(), SOL_SOCKET, SO_MEMINFO, mem.data(), &len) != 0 ||
        len < sizeof(std::uint32_t) * (SK_MEMINFO_DROPS + 1))
        return;
    const std::uint32_t drops = mem[SK_MEMINFO_DROPS];
    stats_.lost_events += drops - drops_seen_; // modulo 2^32
    drops_seen_ = drops;
}

ConntrackReceived ConntrackSource::receive(detail::NatEventFn fn, void* ctx) {
    for (const NatEvent& ev : backlog_) fn(ctx, ev);
    backlog_.clear();
    backlog_.shrink_to_fit();
    fn_ = fn;
    ctx_ = ctx;
    ConntrackReceived r;
    const std::uint64_t before = stats_.events_new + stats_.events_destroy;
    for (;;) {
        recv_ = time_pair_now();
        errno = 0;
        if (nfct_catch(events_.get()) >= 0) continue; // a callback stopped: none does
        if (errno == ENOBUFS) {
            ++stats_.enobufs;
            r.overrun = true;
            continue; // what was queued before the overrun is still there
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) ++stats_.errors;
        break;
    }
    read_drops();
    r.events = stats_.events_new + stats_.events_destroy - before;
    return r;
}

bool ConntrackSource::dump(detail::NatEventFn fn, void* ctx) {
    fn_ = fn;
    ctx_ = ctx;
    recv_ = time_pair_now();
    NatEvent mark;
    mark.kind = NatEventKind::dump_begin;
    mark.time = recv_.mono;
    fn(ctx, mark);
    std::uint32_t family = AF_UNSPEC; // both IPv4 and IPv6
    int rc = 0;
    {
        const NetAdminScope net_admin;
        rc = nfct_query(query_.get(), NFCT_Q_DUMP, &family);
    }
    if (rc != 0) {
        ++stats_.dump_failures;
        still_.clear();
        return false;
    }
    ++stats_.dumps;
    if (!first_dump_) { // those of the start-up dump's that this one lacks have ended
        unended_.swap(still_);
        still_.clear();
    }
    mark.kind = NatEventKind::dump_end;
    fn(ctx, mark);
    return true;
}

} // namespace nflowd
