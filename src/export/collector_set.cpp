#include "nflowd/collector_set.hpp"

#include "nflowd/net_admin.hpp"
#include "nflowd/number.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>

namespace nflowd {
namespace {

[[noreturn]] void bad_entry(std::string_view entry, std::string_view why) {
    std::string msg = "destination: bad entry \"";
    msg.append(entry);
    msg.append("\": ");
    msg.append(why);
    throw std::invalid_argument(msg);
}

std::string_view trim_blanks(std::string_view s) {
    constexpr std::string_view ws = " \t\r\n";
    const auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::uint16_t parse_port(std::string_view entry, std::string_view text) {
    if (text.empty()) bad_entry(entry, "missing port after ':'");
    const auto v = parse_unsigned(text);
    // Digits that overflow are a port out of range too, not "not a number".
    const bool digits = text.find_first_not_of("0123456789") == std::string_view::npos;
    if (!v && !digits) bad_entry(entry, "port is not a number");
    if (!v || *v > 65535) bad_entry(entry, "port out of range (1-65535)");
    if (*v == 0) bad_entry(entry, "port 0 is not allowed");
    return static_cast<std::uint16_t>(*v);
}

// An entry cut into its address and optional port: "[v6]:port", "[v6]", "v4:port", "v4".
struct HostPort {
    std::string_view host;
    std::optional<std::string_view> port;
    bool v6 = false;
};

HostPort split_entry(std::string_view entry) {
    HostPort hp;
    hp.v6 = entry.front() == '[';
    if (hp.v6) {
        const auto close = entry.find(']');
        if (close == std::string_view::npos) bad_entry(entry, "missing ']'");
        hp.host = entry.substr(1, close - 1);
        const auto rest = entry.substr(close + 1);
        if (rest.empty()) return hp;
        if (rest.front() != ':') bad_entry(entry, "expected ':port' after ']'");
        hp.port = rest.substr(1);
        return hp;
    }
    const auto colon = entry.find(':');
    if (colon != std::string_view::npos && entry.find(':', colon + 1) != std::string_view::npos)
        // Without brackets "2001:db8::1:2055" could be an address or address:port.
        bad_entry(entry, "IPv6 addresses must be bracketed: [addr]:port");
    hp.host = entry.substr(0, colon);
    if (colon != std::string_view::npos) hp.port = entry.substr(colon + 1);
    return hp;
}

// The socket address of a numeric host through inet_pton (never a name lookup), and its
// canonical text ("[2001:db8::1]:2055", "10.0.0.1:2055").
template <class SockAddr>
Destination make_destination(std::string_view entry, const char* host, std::uint16_t port) {
    constexpr bool v6 = std::is_same_v<SockAddr, sockaddr_in6>;
    SockAddr sa{};
    void* addr = nullptr;
    if constexpr (v6) {
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(port);
        addr = &sa.sin6_addr;
    } else {
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        addr = &sa.sin_addr;
    }
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1)
        bad_entry(entry,
                  v6 ? "not an IPv6 address" : "not an IPv4 address (host names are not resolved)");
    char norm[INET6_ADDRSTRLEN]{};
    inet_ntop(v6 ? AF_INET6 : AF_INET, addr, norm, sizeof norm);
    Destination d;
    std::memcpy(&d.addr, &sa, sizeof sa);
    d.addr_len = sizeof sa;
    d.text = v6 ? std::string("[") + norm + "]:" + std::to_string(port)
                : std::string(norm) + ":" + std::to_string(port);
    return d;
}

Destination parse_address(std::string_view entry, std::string_view address) {
    const HostPort hp = split_entry(address);
    const std::uint16_t port = hp.port ? parse_port(entry, *hp.port) : kDefaultCollectorPort;
    // inet_pton needs a NUL-terminated string; addresses are short.
    char host_z[INET6_ADDRSTRLEN + 1]{};
    if (hp.host.empty()) bad_entry(entry, "missing address");
    if (hp.host.size() >= sizeof host_z)
        bad_entry(entry, hp.v6 ? "not an IPv6 address" : "not an IPv4 address");
    std::memcpy(host_z, hp.host.data(), hp.host.size());
    return hp.v6 ? make_destination<sockaddr_in6>(entry, host_z, port)
                 : make_destination<sockaddr_in>(entry, host_z, port);
}

// "@5", "@9", "@10" after the address: the NetFlow version this collector gets.
std::optional<ExportProtocol> split_protocol(std::string_view entry, std::string_view& rest) {
    const auto at = rest.rfind('@');
    if (at == std::string_view::npos) return std::nullopt;
    const auto version = rest.substr(at + 1);
    rest = rest.substr(0, at);
    if (version == "5") return ExportProtocol::v5;
    if (version == "9") return ExportProtocol::v9;
    if (version == "10") return ExportProtocol::ipfix;
    bad_entry(entry, "protocol after '@' must be 5, 9 or 10");
}

Destination parse_entry(std::string_view entry) {
    if (entry.empty()) bad_entry(entry, "empty entry");
    std::string_view address = entry;
    const auto protocol = split_protocol(entry, address);
    if (address.empty()) bad_entry(entry, "missing address");
    Destination d = parse_address(entry, address);
    d.protocol = protocol;
    if (protocol) {
        d.text.push_back('@');
        d.text.append(std::to_string(static_cast<int>(*protocol)));
    }
    return d;
}

[[noreturn]] void throw_errno(int err, const std::string& dest, const char* what) {
    throw std::system_error(err, std::generic_category(), "collector " + dest + ": " + what);
}

// No route now, or an ICMP error saying so for an earlier datagram.
bool unreachable(int err) noexcept {
    return err == ENETUNREACH || err == EHOSTUNREACH || err == ENETDOWN || err == EHOSTDOWN;
}

int read_sndbuf(int fd, const std::string& dest) {
    int v = 0;
    socklen_t len = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &len) != 0)
        throw_errno(errno, dest, "getsockopt(SO_SNDBUF)");
    return v;
}

// SO_SNDBUFFORCE ignores net.core.wmem_max but needs CAP_NET_ADMIN; without it the plain
// option still works, capped by wmem_max. The kernel doubles the value and reports that.
int apply_sndbuf(int fd, int sndbuf, const std::string& dest) {
    const auto force = [&] {
        const NetAdminScope net_admin;
        return setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) == 0;
    };
    if (sndbuf > 0 && !force() &&
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0)
        throw_errno(errno, dest, "setsockopt(SO_SNDBUF)");
    return read_sndbuf(fd, dest);
}

} // namespace

std::vector<Destination> parse_destinations(std::string_view spec) {
    if (trim_blanks(spec).empty()) throw std::invalid_argument("destination: empty list");
    std::vector<Destination> out;
    for (;;) {
        const auto comma = spec.find(',');
        const auto entry = trim_blanks(spec.substr(0, comma));
        Destination d = parse_entry(entry);
        const auto address = [](const Destination& x) {
            return std::string_view(x.text).substr(0, x.text.rfind('@'));
        };
        for (const auto& prev : out)
            // Each collector would get every flow twice and count them as duplicates.
            if (address(prev) == address(d)) bad_entry(entry, "duplicate of an earlier entry");
        out.push_back(std::move(d));
        if (comma == std::string_view::npos) break;
        spec.remove_prefix(comma + 1);
    }
    return out;
}

CollectorSet::CollectorSet(std::vector<Destination> destinations, int sndbuf) {
    collectors_.reserve(destinations.size());
    for (auto& dest : destinations) {
        const int family = dest.addr.ss_family;
        UniqueFd fd(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP));
        if (!fd) throw_errno(errno, dest.text, "socket");
        const int effective = apply_sndbuf(fd.get(), sndbuf, dest.text);
        CollectorStats stats;
        stats.destination = dest.text;
        stats.sndbuf = effective;
        collectors_.push_back({std::move(dest), std::move(fd), std::move(stats)});
        // A failure here is a route that is not there yet (a router at boot): the collector
        // stays, unconnected, and send() tries again.
        connect_collector(collectors_.back());
    }
}

// Connected, so the kernel hands back ICMP port unreachable as ECONNREFUSED and the route
// lookup is done once rather than per datagram. Disconnecting first (AF_UNSPEC) forgets the
// source address the last route chose: a route that comes back through another interface
// gets that interface's address. An attempt costs one route lookup, what a send to an
// unrouted address costs anyway, so it is made at every datagram until it succeeds: export
// resumes with the first datagram after the route appears.
bool CollectorSet::connect_collector(Collector& c) noexcept {
    if (c.connected) {
        sockaddr unspec{};
        unspec.sa_family = AF_UNSPEC;
        ::connect(c.fd.get(), &unspec, sizeof unspec);
        c.connected = false;
    }
    c.connected = ::connect(c.fd.get(), reinterpret_cast<const sockaddr*>(&c.dest.addr),
                            c.dest.addr_len) == 0;
    return c.connected;
}

std::size_t CollectorSet::send(std::span<const std::byte> datagram) noexcept {
    std::size_t accepted = 0;
    for (std::size_t i = 0; i < collectors_.size(); ++i)
        if (send_to(i, datagram).sent) ++accepted;
    return accepted;
}

CollectorSet::SendResult CollectorSet::send_to(std::size_t index,
                                               std::span<const std::byte> datagram) noexcept {
    Collector& c = collectors_[index];
    const auto errors = c.stats.err_refused + c.stats.err_unreachable;
    SendResult r;
    if (!c.connected && !connect_collector(c)) {
        ++c.stats.err_unreachable; // lost for this collector; the sequence still moves on
        r.trouble = true;
        return r;
    }
    r.sent = send_one(c, datagram);
    r.trouble = c.stats.err_refused + c.stats.err_unreachable != errors;
    return r;
}

bool CollectorSet::take_error(std::size_t index) noexcept {
    Collector& c = collectors_[index];
    if (!c.connected) return false; // send_to() reports it unreachable
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0) return false;
    if (err == ECONNREFUSED)
        ++c.stats.err_refused;
    else if (unreachable(err))
        ++c.stats.err_unreachable;
    else
        ++c.stats.err_other;
    return true;
}

bool CollectorSet::send_one(Collector& c, std::span<const std::byte> datagram) noexcept {
    // ECONNREFUSED, and EHOSTUNREACH or ENETUNREACH from an ICMP error, report the answer
    // to an earlier datagram (lost at or on the way to the collector) and send nothing;
    // reporting clears them, so one retry sends this datagram to a collector that is back.
    // An unreachable error from the route lookup itself has the socket connected afresh
    // (the route may have moved); if that fails, no route leads there now.
    ssize_t n = -1;
    int err = 0;
    for (int attempts = 0; attempts < 2; ++attempts) {
        n = ::send(c.fd.get(), datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) break;
        err = errno;
        if (err == EINTR) {
            --attempts;
            continue;
        }
        if (err == ECONNREFUSED) {
            ++c.stats.err_refused;
        } else if (unreachable(err)) {
            ++c.stats.err_unreachable;
            if (!connect_collector(c)) break;
        } else {
            break;
        }
    }
    if (n >= 0 && static_cast<std::size_t>(n) == datagram.size()) {
        ++c.stats.datagrams;
        c.stats.bytes += datagram.size();
        return true;
    }
    if (n >= 0) err = EMSGSIZE;
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)
        ++c.stats.err_buffer_full;
    else if (err != ECONNREFUSED && !unreachable(err)) // those are counted above
        ++c.stats.err_other;
    return false;
}

void CollectorSet::set_sndbuf(int sndbuf) {
    for (auto& c : collectors_) c.stats.sndbuf = apply_sndbuf(c.fd.get(), sndbuf, c.dest.text);
}

void CollectorSet::reset_stats() noexcept {
    for (auto& c : collectors_) {
        CollectorStats fresh;
        fresh.destination = std::move(c.stats.destination);
        fresh.sndbuf = c.stats.sndbuf;
        fresh.protocol = c.stats.protocol;
        c.stats = std::move(fresh);
    }
}

void CollectorSet::carry_stats_from(const CollectorSet& previous) noexcept {
    for (auto& c : collectors_)
        for (const auto& old : previous.collectors_)
            if (old.dest.text == c.dest.text) {
                const int sndbuf = c.stats.sndbuf; // the new socket's own
                const int protocol = c.stats.protocol;
                c.stats = old.stats;
                c.stats.sndbuf = sndbuf;
                c.stats.protocol = protocol;
            }
}

std::vector<CollectorStats> CollectorSet::stats() const {
    std::vector<CollectorStats> out;
    out.reserve(collectors_.size());
    for (const auto& c : collectors_) out.push_back(c.stats);
    return out;
}

} // namespace nflowd
