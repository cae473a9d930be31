#include "nflowd/collector_set.hpp"

#include "fresh_netns.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace nflowd {
namespace {

using Receiver = test::UdpCollector;

std::vector<std::byte> payload(std::size_t n, std::uint8_t seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(seed + i);
    return v;
}

std::vector<std::string> texts(const std::vector<Destination>& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds) out.push_back(d.text);
    return out;
}

std::string parse_error(const std::string& spec) {
    try {
        parse_destinations(spec);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "<accepted>";
}

TEST(ParseDestinations, Ipv4WithAndWithoutPort) {
    const auto ds = parse_destinations("192.0.2.1:9995,198.51.100.7");
    ASSERT_EQ(ds.size(), 2U);
    EXPECT_EQ(texts(ds), (std::vector<std::string>{"192.0.2.1:9995", "198.51.100.7:2055"}));
    ASSERT_EQ(ds[0].addr.ss_family, AF_INET);
    EXPECT_EQ(ds[0].addr_len, sizeof(sockaddr_in));
    sockaddr_in sa{};
    std::memcpy(&sa, &ds[0].addr, sizeof sa);
    EXPECT_EQ(ntohs(sa.sin_port), 9995);
    EXPECT_EQ(ntohl(sa.sin_addr.s_addr), 0xc0000201U);
}

TEST(ParseDestinations, BracketedIpv6WithAndWithoutPort) {
    const auto ds = parse_destinations("[2001:db8::1]:9996,[::1]");
    ASSERT_EQ(ds.size(), 2U);
    EXPECT_EQ(texts(ds), (std::vector<std::string>{"[2001:db8::1]:9996", "[::1]:2055"}));
    ASSERT_EQ(ds[1].addr.ss_family, AF_INET6);
    EXPECT_EQ(ds[1].addr_len, sizeof(sockaddr_in6));
    sockaddr_in6 sa{};
    std::memcpy(&sa, &ds[1].addr, sizeof sa);
    EXPECT_EQ(ntohs(sa.sin6_port), 2055);
    EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&sa.sin6_addr));
}

TEST(ParseDestinations, NormalisesSpacingLeadingZerosAndIpv6Spelling) {
    const auto ds = parse_destinations(" 192.0.2.1:02055 , [2001:DB8:0:0::1]:9 ,10.0.0.1:65535");
    EXPECT_EQ(texts(ds),
              (std::vector<std::string>{"192.0.2.1:2055", "[2001:db8::1]:9", "10.0.0.1:65535"}));
}

TEST(ParseDestinations, BadEntryIsNamedInTheError) {
    EXPECT_EQ(parse_error("10.0.0.1,1.2.3:99").rfind("destination: bad entry \"1.2.3:99\": ", 0),
              0U)
        << parse_error("10.0.0.1,1.2.3:99");
}

TEST(ParseDestinations, RejectsMalformedEntries) {
    const std::vector<std::string> bad = {
        "1.2.3:99",    "1.2.3.4:0",   "1.2.3.4:65536", "1.2.3.4:99999999999999999999",
        "1.2.3.4:",    "1.2.3.4:x",   "1.2.3.4:20x",   "1.2.3.4:-1",
        "1.2.3.4:+5",  "256.1.1.1",   ":2055",         "collector.example:2055",
        "2001:db8::1", "[::1",        "[::1]x",        "[::1]:",
        "[]:2055",     "[1.2.3.4]:5", "[::1]:0",       "01.2.3.4",
    };
    for (const auto& entry : bad) {
        const auto msg = parse_error("192.0.2.1," + entry);
        EXPECT_NE(msg.find("bad entry \"" + entry + "\""), std::string::npos)
            << entry << " -> " << msg;
    }
}

TEST(ParseDestinations, PortErrorsSayWhatIsWrong) {
    EXPECT_NE(parse_error("1.2.3.4:0").find("port 0"), std::string::npos);
    EXPECT_NE(parse_error("1.2.3.4:65536").find("out of range"), std::string::npos);
}

TEST(ParseDestinations, RejectsEmptyListAndEmptyEntries) {
    EXPECT_THROW(parse_destinations(""), std::invalid_argument);
    EXPECT_THROW(parse_destinations("  "), std::invalid_argument);
    EXPECT_THROW(parse_destinations("1.2.3.4,"), std::invalid_argument);
    EXPECT_THROW(parse_destinations(",1.2.3.4"), std::invalid_argument);
    EXPECT_THROW(parse_destinations("1.2.3.4,,5.6.7.8"), std::invalid_argument);
}

TEST(ParseDestinations, RejectsTheSameCollectorTwice) {
    EXPECT_NE(parse_error("1.2.3.4,1.2.3.4:2055").find("duplicate"), std::string::npos);
    EXPECT_NO_THROW(parse_destinations("1.2.3.4,1.2.3.4:2056"));
}

TEST(ParseDestinations, PerDestinationProtocolAfterAnAt) {
    const auto ds =
        parse_destinations("10.0.0.1:2055@10, 10.0.0.2@5,[2001:db8::1]:4739@9,10.0.0.3");
    EXPECT_EQ(texts(ds), (std::vector<std::string>{"10.0.0.1:2055@10", "10.0.0.2:2055@5",
                                                   "[2001:db8::1]:4739@9", "10.0.0.3:2055"}));
    EXPECT_EQ(ds[0].protocol, ExportProtocol::ipfix);
    EXPECT_EQ(ds[1].protocol, ExportProtocol::v5);
    EXPECT_EQ(ds[2].protocol, ExportProtocol::v9);
    EXPECT_EQ(ds[3].protocol, std::nullopt);
    EXPECT_NE(parse_destinations("10.0.0.1@9")[0], parse_destinations("10.0.0.1@10")[0]);
    EXPECT_EQ(parse_error("10.0.0.1:2055@7"),
              "destination: bad entry \"10.0.0.1:2055@7\": protocol after '@' must be 5, 9 or 10");
    EXPECT_NE(parse_error("10.0.0.1:2055@"), "<accepted>");
    EXPECT_NE(parse_error("@10"), "<accepted>");
    EXPECT_NE(parse_error("10.0.0.1:2055@10@10"), "<accepted>");
    // One collector, two versions: it would count every flow twice.
    EXPECT_NE(parse_error("10.0.0.1:2055@10,10.0.0.1:2055@9"), "<accepted>");
}

TEST(CollectorSet, SendToOneCollectorAndTakeAPendingRefusal) {
    Receiver a, b;
    CollectorSet set(parse_destinations(a.address() + "," + b.address()), 0);
    const auto dg = payload(100, 1);
    EXPECT_TRUE(set.send_to(1, dg).sent);
    EXPECT_FALSE(a.receive(50));
    EXPECT_TRUE(b.receive());
    EXPECT_FALSE(set.take_error(0));
    a.close();
    EXPECT_TRUE(set.send_to(0, dg).sent); // the ICMP answer comes back afterwards
    bool taken = false;
    for (int i = 0; i < 100 && !taken; ++i) { // bounded: the ICMP is local, but asynchronous
        taken = set.take_error(0);
        if (!taken) ::poll(nullptr, 0, 5);
    }
    EXPECT_TRUE(taken);
    EXPECT_EQ(set.stats()[0].err_refused, 1U);
    EXPECT_FALSE(set.take_error(0)) << "taking clears it";
}

TEST(CollectorSet, EveryCollectorReceivesEveryDatagram) {
    Receiver r1, r2;
    CollectorSet set(parse_destinations(r1.address() + "," + r2.address()), 0);
    ASSERT_EQ(set.size(), 2U);
    for (std::uint8_t i = 0; i < 3; ++i) {
        const auto dg = payload(100 + i, i);
        EXPECT_EQ(set.send(dg), 2U);
        EXPECT_EQ(r1.receive(1000), dg);
        EXPECT_EQ(r2.receive(1000), dg);
    }
    const auto st = set.stats();
    ASSERT_EQ(st.size(), 2U);
    EXPECT_EQ(st[0].destination, r1.address());
    EXPECT_EQ(st[1].destination, r2.address());
    for (const auto& s : st) {
        EXPECT_EQ(s.datagrams, 3U);
        EXPECT_EQ(s.bytes, 100U + 101U + 102U);
        EXPECT_EQ(s.err_buffer_full + s.err_refused + s.err_other, 0U);
    }
}

TEST(CollectorSet, ClosedPortIsCountedRefusedAndDoesNotStopTheOthers) {
    Receiver live, dead;
    const auto dead_dest = dead.address();
    dead.close();
    CollectorSet set(parse_destinations(dead_dest + "," + live.address()), 0);
    const auto dg = payload(64, 7);
    for (int i = 0; i < 6; ++i) {
        EXPECT_GE(set.send(dg), 1U);
        EXPECT_EQ(live.receive(1000), dg);
    }
    const auto st = set.stats();
    // Each datagram to the closed port draws an ICMP port unreachable; the next send reports
    // it (counted as refused: that earlier datagram was lost) and is retried once.
    EXPECT_GE(st[0].err_refused, 1U);
    EXPECT_LE(st[0].err_refused, 5U);
    EXPECT_EQ(st[0].datagrams, 6U);
    EXPECT_EQ(st[1].datagrams, 6U);
    EXPECT_EQ(st[1].err_refused, 0U);
}

TEST(CollectorSet, ExportResumesWhenARefusingCollectorComesBack) {
    Receiver probe;
    const std::uint16_t port = probe.port();
    probe.close();
    CollectorSet set(parse_destinations("127.0.0.1:" + std::to_string(port)), 0);
    const auto dg = payload(80, 1);
    for (int i = 0; i < 50 && set.stats()[0].err_refused == 0; ++i) set.send(dg);
    ASSERT_GE(set.stats()[0].err_refused, 1U);

    Receiver back(port);
    ASSERT_EQ(back.port(), port);
    const auto fresh = payload(90, 2);
    // The ICMP error queued before the collector came back must not cost this datagram.
    EXPECT_EQ(set.send(fresh), 1U);
    EXPECT_EQ(back.receive(200), fresh);
    EXPECT_EQ(set.send(fresh), 1U);
    EXPECT_EQ(back.receive(1000), fresh);
}

TEST(CollectorSet, SendBufferIsSetAndTheEffectiveValueReported) {
    Receiver r;
    CollectorSet def(parse_destinations(r.address()), 0);
    EXPECT_GT(def.stats()[0].sndbuf, 0);

    CollectorSet set(parse_destinations(r.address()), 65536);
    // Linux doubles the request for bookkeeping overhead.
    EXPECT_GE(set.stats()[0].sndbuf, 65536);
    set.set_sndbuf(262144);
    EXPECT_GE(set.stats()[0].sndbuf, 262144);
}

TEST(CollectorSet, Ipv6LoopbackCollectorReceives) {
    std::optional<Receiver> rx;
    try {
        rx.emplace(0, Receiver::Family::ipv6);
    } catch (const std::runtime_error&) {
        GTEST_SKIP() << "no IPv6 loopback";
    }
    CollectorSet set(parse_destinations(rx->address()), 0);
    const auto dg = payload(48, 3);
    EXPECT_EQ(set.send(dg), 1U);
    EXPECT_EQ(rx->receive(1000), dg);
}

TEST(CollectorSet, SocketSetupFailureNamesTheDestination) {
    Destination d;
    d.addr.ss_family = AF_MAX + 1; // no such address family: socket() fails
    d.addr_len = sizeof(sockaddr_in);
    d.text = "192.0.2.99:2055";
    std::vector<Destination> ds;
    ds.push_back(d);
    try {
        CollectorSet set(std::move(ds), 0);
        FAIL() << "expected std::system_error";
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find("192.0.2.99:2055"), std::string::npos) << e.what();
    }
}

// connect() refuses the limited broadcast address without SO_BROADCAST (EACCES): a
// destination that cannot be connected, reproducible without privileges.
TEST(CollectorSet, ADestinationThatCannotBeConnectedIsKeptAndCounted) {
    Receiver live;
    std::optional<CollectorSet> set;
    ASSERT_NO_THROW(set.emplace(parse_destinations("255.255.255.255:9," + live.address()), 0));
    ASSERT_EQ(set->size(), 2U);
    const auto dg = payload(64, 5);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(set->send(dg), 1U);
        EXPECT_EQ(live.receive(1000), dg);
    }
    const auto st = set->stats();
    EXPECT_EQ(st[0].destination, "255.255.255.255:9");
    EXPECT_EQ(st[0].err_unreachable, 3U);
    EXPECT_EQ(st[0].datagrams, 0U);
    EXPECT_EQ(st[0].err_other + st[0].err_refused + st[0].err_buffer_full, 0U);
    EXPECT_EQ(st[1].datagrams, 3U);
    EXPECT_EQ(st[1].err_unreachable, 0U);
}

// In a fresh network namespace lo is down: 127.0.0.1 has no route, as a collector's subnet
// has none on a router whose routing daemon has not started yet.
TEST(CollectorSet, NoRouteAtStartIsRetriedAndExportResumesWhenTheRouteAppears) {
    const bool ran = test::in_fresh_netns([] {
        std::optional<CollectorSet> set;
        ASSERT_NO_THROW(set.emplace(parse_destinations("127.0.0.1:2055"), 0));
        const auto lost = payload(70, 1);
        for (int i = 0; i < 4; ++i) EXPECT_EQ(set->send(lost), 0U);
        EXPECT_EQ(set->stats()[0].err_unreachable, 4U);
        EXPECT_EQ(set->stats()[0].err_other, 0U);

        test::set_loopback(true);
        Receiver r(2055);
        const auto dg = payload(80, 2);
        EXPECT_EQ(set->send(dg), 1U);
        EXPECT_EQ(r.receive(1000), dg);
        EXPECT_FALSE(r.receive(50)) << "a datagram sent while unreachable was delivered later";
        const auto st = set->stats()[0];
        EXPECT_EQ(st.datagrams, 1U);
        EXPECT_EQ(st.bytes, 80U);
        EXPECT_EQ(st.err_unreachable, 4U);
    });
    if (!ran) GTEST_SKIP() << "no network namespaces (needs CAP_SYS_ADMIN)";
}

// A socket bound to the wildcard address: receives what is sent to an alias of lo.
UniqueFd bound_any(std::uint16_t port) {
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (!fd || ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
        throw std::runtime_error("bind");
    return fd;
}

std::size_t received_bytes(const UniqueFd& fd, int timeout_ms) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return 0;
    std::array<std::byte, 2048> buf{};
    const auto n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

TEST(CollectorSet, ARouteThatGoesAwayIsCountedAndExportResumesWhenItComesBack) {
    const bool ran = test::in_fresh_netns([] {
        test::set_loopback(true);
        test::add_lo_alias("lo:9", "10.9.9.9");
        const UniqueFd rx = bound_any(2055);
        CollectorSet set(parse_destinations("10.9.9.9:2055"), 0);
        EXPECT_EQ(set.send(payload(60, 3)), 1U);
        EXPECT_EQ(received_bytes(rx, 1000), 60U);

        test::remove_lo_alias("lo:9");
        EXPECT_EQ(set.send(payload(61, 3)), 0U);
        EXPECT_EQ(set.send(payload(62, 3)), 0U);
        EXPECT_EQ(set.stats()[0].err_unreachable, 2U);
        EXPECT_EQ(set.stats()[0].err_other, 0U);

        test::add_lo_alias("lo:9", "10.9.9.9");
        EXPECT_EQ(set.send(payload(63, 4)), 1U);
        EXPECT_EQ(received_bytes(rx, 1000), 63U);
        EXPECT_EQ(set.stats()[0].datagrams, 2U);
        EXPECT_EQ(set.stats()[0].err_unreachable, 2U);
    });
    if (!ran) GTEST_SKIP() << "no network namespaces (needs CAP_SYS_ADMIN)";
}

TEST(CollectorSet, OversizedDatagramIsCountedAsOtherError) {
    Receiver r;
    CollectorSet set(parse_destinations(r.address()), 0);
    const std::vector<std::byte> huge(70000);
    EXPECT_EQ(set.send(huge), 0U);
    EXPECT_EQ(set.stats()[0].err_other, 1U);
    EXPECT_EQ(set.stats()[0].datagrams, 0U);
}

} // namespace
} // namespace nflowd
