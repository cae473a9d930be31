// ControlServer and ControlClient over real NETLINK_USERSOCK sockets, with a fake handler.
#include "nflowd/control_client.hpp"
#include "nflowd/control_endpoint.hpp"
#include "nflowd/control_server.hpp"
#include "nflowd/unique_fd.hpp"

#include <gtest/gtest.h>

#include <grp.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

namespace nflowd {
namespace {

using ctl::Command;
using ctl::KnobValue;

// Port ids no other test process uses at the same time.
std::uint32_t unique_port() {
    static std::atomic<std::uint32_t> n{0};
    return 0x70000000u + ((static_cast<std::uint32_t>(::getpid()) & 0xfffffu) << 4) + n++;
}

class FakeHandler : public ControlHandler {
  public:
    std::vector<KnobValue> knobs() override {
        std::lock_guard lock(mutex);
        return knobs_;
    }
    std::vector<KnobValue>
    set(const std::vector<std::pair<std::string, std::string>>& changes) override {
        std::lock_guard lock(mutex);
        auto next = knobs_;
        std::vector<KnobValue> out;
        for (const auto& [name, value] : changes) {
            auto it = std::find_if(next.begin(), next.end(),
                                   [&](const KnobValue& k) { return k.name == name; });
            if (it == next.end()) throw ControlError(ENOENT, "unknown knob \"" + name + "\"");
            if (value == "bad") throw ControlError(EINVAL, name + ": bad value");
            it->value = value;
            out.push_back(*it);
        }
        knobs_ = next;
        ++sets;
        return out;
    }
    void flush(int level) override {
        flushes += 1;
        last_flush = level;
    }
    std::string stats(ctl::StatsFormat format) override {
        std::lock_guard lock(mutex);
        return format == ctl::StatsFormat::json ? "{\"json\":1}\n" : stats_text;
    }
    FlowDump flows(std::uint32_t top, ctl::FlowSort) override {
        FlowDump d;
        d.total = flow_count;
        d.now = 42;
        const auto n = top ? std::min<std::uint64_t>(top, flow_count) : flow_count.load();
        for (std::uint64_t i = 0; i < n; ++i) {
            FlowRecord f;
            f.key.src_addr = static_cast<std::uint32_t>(i);
            f.octets = static_cast<std::uint32_t>(i * 10);
            d.flows.push_back(f);
        }
        return d;
    }
    // Name resolution is the handler's: the server passes names through as typed.
    std::vector<KnobValue> get(const std::vector<std::string>& names) override {
        std::lock_guard lock(mutex);
        std::vector<KnobValue> out;
        for (const auto& name : names) {
            auto it = std::find_if(knobs_.begin(), knobs_.end(),
                                   [&](const KnobValue& k) { return k.name == name; });
            if (it == knobs_.end()) throw ControlError(ENOENT, "unknown knob \"" + name + "\"");
            out.push_back(*it);
        }
        return out;
    }

    std::mutex mutex;
    std::vector<KnobValue> knobs_ = {
        {"debug", "0", true}, {"hashsize", "1024", true}, {"version", "0.1.0", false}};
    std::string stats_text = "flows: active 0\n";
    std::atomic<std::uint64_t> flow_count{10};
    std::atomic<int> sets{0}, flushes{0}, last_flush{0};
};

// A server on its own thread for the duration of a test.
struct Running {
    explicit Running(FakeHandler& h, ControlServerConfig c = {}) : config(with_port(c)) {
        server = std::make_unique<ControlServer>(config);
        endpoint_ = {server->port_id(), ::getpid(), ::geteuid()};
        stop.reset(::eventfd(0, EFD_CLOEXEC));
        thread = std::thread([this, &h] { server->serve(stop.get(), h); });
    }
    ~Running() {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(stop.get(), &one, sizeof one);
        thread.join();
    }
    static ControlServerConfig with_port(ControlServerConfig c) {
        c.port_id = unique_port();
        return c;
    }
    std::uint32_t port() const { return config.port_id; }
    // Computed here, in the test's process: as_nobody's child must expect the parent's pid.
    ControlEndpoint endpoint() const { return endpoint_; }

    ControlServerConfig config;
    std::unique_ptr<ControlServer> server;
    ControlEndpoint endpoint_;
    UniqueFd stop;
    std::thread thread;
};

ControlClientError refusal(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const ControlClientError& e) {
        return e;
    }
    ADD_FAILURE() << "no error";
    return ControlClientError(ControlClientError::Kind::protocol, 0, "none");
}

TEST(ControlServer, EveryCommandRoundTrips) {
    FakeHandler h;
    Running r(h);
    ControlClient c(r.endpoint());
    EXPECT_EQ(c.list(), h.knobs());
    const auto got = c.get({"version", "debug"});
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].name, "version");
    EXPECT_FALSE(got[0].writable);
    EXPECT_EQ(got[1].name, "debug");

    const auto unknown = refusal([&] { c.get({"nope"}); });
    EXPECT_EQ(unknown.kind(), ControlClientError::Kind::refused);
    EXPECT_EQ(unknown.error(), ENOENT);
    EXPECT_STREQ(unknown.what(), "unknown knob \"nope\"");

    const auto set = c.set({{"debug", "2"}, {"hashsize", "4096"}});
    ASSERT_EQ(set.size(), 2u);
    EXPECT_EQ(set[1].value, "4096");
    EXPECT_EQ(c.get({"hashsize"}).at(0).value, "4096");
    const auto bad = refusal([&] { c.set({{"debug", "3"}, {"hashsize", "bad"}}); });
    EXPECT_EQ(bad.error(), EINVAL);
    EXPECT_STREQ(bad.what(), "hashsize: bad value");
    EXPECT_EQ(c.get({"debug"}).at(0).value, "2"); // all or nothing

    EXPECT_EQ(c.stats(ctl::StatsFormat::text), "flows: active 0\n");
    EXPECT_EQ(c.stats(ctl::StatsFormat::json), "{\"json\":1}\n");

    std::uint64_t total = 0, seen = 0;
    c.flows(
        3, ctl::FlowSort::bytes,
        [&](std::uint64_t t, Nanos now) {
            total = t;
            EXPECT_EQ(now, 42);
        },
        [&](const FlowRecord&) { ++seen; });
    EXPECT_EQ(total, 10u);
    EXPECT_EQ(seen, 3u);

    c.flush(2);
    EXPECT_EQ(h.flushes, 1);
    EXPECT_EQ(h.last_flush, 2);
    const auto s = r.server->stats();
    EXPECT_EQ(s.errors, 2u);
    EXPECT_EQ(s.denied, 0u);
}

TEST(ControlServer, BigAnswersArriveWhole) {
    FakeHandler h;
    h.flow_count = 200000;
    h.stats_text.clear();
    for (int i = 0; i < 30000; ++i) h.stats_text += "worker " + std::to_string(i) + ": active 0\n";
    Running r(h);
    ControlClient c(r.endpoint());
    std::uint64_t seen = 0;
    bool in_order = true;
    c.flows(
        0, ctl::FlowSort::none, [](std::uint64_t, Nanos) {},
        [&](const FlowRecord& f) { in_order = in_order && f.key.src_addr == seen++; });
    EXPECT_EQ(seen, 200000u);
    EXPECT_TRUE(in_order);
    EXPECT_EQ(c.stats(ctl::StatsFormat::text), h.stats_text);
}

std::vector<std::byte> raw(std::uint16_t type, std::uint32_t seq, std::uint32_t version,
                           std::size_t pad = 0) {
    std::vector<std::byte> buf(256 + pad);
    const std::vector<std::byte> filler(pad);
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST;
    nlh->nlmsg_seq = seq;
    mnl_attr_put_u32(nlh, ctl::kAttrVersion, version);
    if (pad) mnl_attr_put(nlh, 99, pad, filler.data()); // a huge unknown attribute
    buf.resize(nlh->nlmsg_len);
    return buf;
}

TEST(ControlServer, MalformedRequestsGetErrorsAndServingGoesOn) {
    FakeHandler h;
    Running r(h);
    ControlClient c(r.endpoint(), 300);
    const auto one_error = [&](std::vector<std::byte> d, std::uint32_t seq, int error) {
        const auto replies = c.exchange_raw(d, seq);
        ASSERT_EQ(replies.size(), 1u) << "seq " << seq;
        EXPECT_EQ(replies[0].kind, ctl::Reply::Kind::error);
        EXPECT_EQ(replies[0].error, error) << replies[0].message;
        EXPECT_FALSE(replies[0].message.empty());
    };
    one_error(std::vector<std::byte>(7, std::byte{0x41}), 0, EINVAL); // no header at all
    one_error(raw(0x1ff, 11, ctl::kProtocolVersion), 11, EOPNOTSUPP);
    one_error(raw(static_cast<std::uint16_t>(Command::list), 12, 99), 12, EPROTONOSUPPORT);
    one_error(raw(static_cast<std::uint16_t>(Command::list), 13, ctl::kProtocolVersion, 60000), 13,
              EINVAL); // unknown attribute
    {
        // Oversized: the daemon reads 64 KiB, sees the real size and says so.
        std::vector<std::byte> big(100000);
        auto* nlh = mnl_nlmsg_put_header(big.data());
        nlh->nlmsg_type = static_cast<std::uint16_t>(Command::list);
        nlh->nlmsg_flags = NLM_F_REQUEST;
        nlh->nlmsg_seq = 14;
        nlh->nlmsg_len = static_cast<std::uint32_t>(big.size());
        one_error(big, 14, EMSGSIZE);
    }
    {
        ctl::Request get;
        get.command = Command::get;
        get.names = {"debug"};
        auto cut = ctl::encode_request(get, 15, c.port_id());
        cut.resize(cut.size() - 4);
        one_error(cut, 15, EINVAL);
    }
    // Not a request: no answer at all, so two peers can never bounce errors.
    auto done = raw(NLMSG_DONE, 16, ctl::kProtocolVersion);
    EXPECT_TRUE(c.exchange_raw(done, 16).empty());

    EXPECT_EQ(c.list().size(), 3u);
    const auto s = r.server->stats();
    EXPECT_EQ(s.errors, 6u);
    EXPECT_EQ(s.ignored, 1u);
    EXPECT_EQ(h.sets, 0);
}

TEST(ControlServer, TakenPortIdIsRefusedWithAMessage) {
    FakeHandler h;
    Running r(h);
    ControlServerConfig again;
    again.port_id = r.port();
    try {
        ControlServer second(again);
        FAIL() << "second server bound the same port id";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("is already in use"), std::string::npos) << e.what();
    }
}

TEST(ControlServer, NoDaemonMeansUnreachable) {
    ControlClient c(ControlEndpoint{unique_port(), ::getpid(), ::geteuid()}, 500);
    const auto e = refusal([&] { c.list(); });
    EXPECT_EQ(e.kind(), ControlClientError::Kind::unreachable);
    EXPECT_NE(std::string(e.what()).find("not running"), std::string::npos) << e.what();
}

TEST(ControlClient, AcceptsAnswersOnlyFromTheDaemonsPort) {
    FakeHandler h;
    Running r(h);
    ControlClient c(r.endpoint());
    // A forged "permission denied" for the client's next request, queued before it is sent.
    const std::uint32_t next = c.next_seq() + 1;
    const auto forged =
        ctl::encode_error(next, c.port_id(), ctl::DecodedRequest{}, EPERM, "forged");
    std::unique_ptr<mnl_socket, int (*)(mnl_socket*)> rogue(mnl_socket_open(NETLINK_USERSOCK),
                                                            mnl_socket_close);
    ASSERT_TRUE(rogue);
    ASSERT_EQ(mnl_socket_bind(rogue.get(), 0, MNL_SOCKET_AUTOPID), 0);
    sockaddr_nl to{};
    to.nl_family = AF_NETLINK;
    to.nl_pid = c.port_id();
    ASSERT_EQ(::sendto(mnl_socket_get_fd(rogue.get()), forged.data(), forged.size(), 0,
                       reinterpret_cast<sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(forged.size()));
    EXPECT_EQ(c.list().size(), 3u);
}

TEST(ControlServer, AClientThatStopsReadingIsGivenUp) {
    FakeHandler h;
    h.flow_count = 500000;
    ControlServerConfig cfg;
    cfg.stall_ms = 200;
    Running r(h, cfg);
    std::unique_ptr<mnl_socket, int (*)(mnl_socket*)> mute(mnl_socket_open(NETLINK_USERSOCK),
                                                           mnl_socket_close);
    ASSERT_EQ(mnl_socket_bind(mute.get(), 0, MNL_SOCKET_AUTOPID), 0);
    ctl::Request flows;
    flows.command = Command::flows;
    const auto req = ctl::encode_request(flows, 1, mnl_socket_get_portid(mute.get()));
    sockaddr_nl to{};
    to.nl_family = AF_NETLINK;
    to.nl_pid = r.port();
    ASSERT_GT(::sendto(mnl_socket_get_fd(mute.get()), req.data(), req.size(), 0,
                       reinterpret_cast<sockaddr*>(&to), sizeof to),
              0);
    const auto start = std::chrono::steady_clock::now();
    ControlClient c(r.endpoint(), 5000);
    EXPECT_EQ(c.list().size(), 3u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
    EXPECT_GE(r.server->stats().send_failures, 1u);
}

TEST(ControlServer, GarbageFromAPeerThatDoesNotReadCostsNothing) {
    FakeHandler h;
    Running r(h);
    std::unique_ptr<mnl_socket, int (*)(mnl_socket*)> mute(mnl_socket_open(NETLINK_USERSOCK),
                                                           mnl_socket_close);
    ASSERT_EQ(mnl_socket_bind(mute.get(), 0, MNL_SOCKET_AUTOPID), 0);
    const int small = 4096;
    setsockopt(mnl_socket_get_fd(mute.get()), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_nl to{};
    to.nl_family = AF_NETLINK;
    to.nl_pid = r.port();
    const std::vector<std::byte> junk(8, std::byte{0x5a});
    int sent = 0;
    for (int i = 0; i < 3000; ++i)
        if (::sendto(mnl_socket_get_fd(mute.get()), junk.data(), junk.size(), MSG_DONTWAIT,
                     reinterpret_cast<sockaddr*>(&to), sizeof to) > 0)
            ++sent;
    ASSERT_GT(sent, 100);
    const auto start = std::chrono::steady_clock::now();
    ControlClient c(r.endpoint(), 5000);
    EXPECT_EQ(c.list().size(), 3u);
    // Error replies to the mute peer are dropped, never waited for.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(ControlServer, WritePolicy) {
    // The user database of the test: uid 1000 is in groups 1000 (primary) and 27.
    const GroupLookup db = [](uid_t uid) {
        return uid == 1000 ? std::vector<gid_t>{1000, 27} : std::vector<gid_t>{uid};
    };
    EXPECT_TRUE(may_change({1, 0, 0}, std::nullopt, db));
    EXPECT_FALSE(may_change({1, 1000, 0}, std::nullopt, db));
    EXPECT_FALSE(may_change({1, 1000, 1000}, std::nullopt, db));
    EXPECT_TRUE(may_change({1, 1000, 1000}, gid_t{1000}, db));
    // A supplementary group of the uid counts, whatever gid the sender runs with...
    EXPECT_TRUE(may_change({1, 1000, 1000}, gid_t{27}, db));
    // ...and a gid the sender holds (setgid) without the uid being a member does not.
    EXPECT_FALSE(may_change({1, 2000, 27}, gid_t{27}, db));
    EXPECT_FALSE(may_change({1, 1000, 1001}, gid_t{1001}, db));
    // The real database: root is in group 0, nobody is in nogroup, not in root.
    const auto root = groups_of_uid(0);
    EXPECT_NE(std::find(root.begin(), root.end(), gid_t{0}), root.end());
    EXPECT_FALSE(may_change({1, 65534, 0}, gid_t{0}, groups_of_uid));
    EXPECT_TRUE(groups_of_uid(4000000000u).empty()); // no such user: member of nothing
}

// Runs fn as uid/gid 65534 in a child process; returns its exit status (0 = fn passed).
int as_nobody(const std::function<int()>& fn) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
            ::setresuid(65534, 65534, 65534) != 0)
            ::_exit(100);
        int rc = 101;
        try {
            rc = fn();
        } catch (...) {
        }
        ::_exit(rc);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 102;
}

TEST(ControlServer, UnprivilegedMayReadButNotChange) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
    FakeHandler h;
    Running r(h);
    const int rc = as_nobody([&] {
        ControlClient c(r.endpoint(), 2000);
        if (c.list().size() != 3 || c.get({"debug"}).size() != 1) return 1;
        if (c.stats(ctl::StatsFormat::text).empty()) return 2;
        for (int attempt = 0; attempt < 3; ++attempt) {
            try {
                if (attempt == 0)
                    c.set({{"debug", "3"}});
                else if (attempt == 1)
                    c.flush(1);
                else
                    c.flows(
                        0, ctl::FlowSort::none, [](std::uint64_t, Nanos) {},
                        [](const FlowRecord&) {});
                return 3;
            } catch (const ControlClientError& e) {
                if (e.error() != EPERM) return 4;
                if (std::string(e.what()).find("permission denied") != 0) return 5;
            }
        }
        return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(h.sets, 0);
    EXPECT_EQ(h.flushes, 0);
    EXPECT_EQ(h.knobs().at(0).value, "0");
    EXPECT_EQ(r.server->stats().denied, 3u);
}

TEST(ControlServer, ControlGroupMayChange) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
    FakeHandler h;
    ControlServerConfig cfg;
    cfg.write_group = 65534;
    Running r(h, cfg);
    const int rc = as_nobody([&] {
        ControlClient c(r.endpoint(), 2000);
        return c.set({{"debug", "3"}}).at(0).value == "3" ? 0 : 1;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(h.sets, 1);
}

// --- The control channel under attack (issue 10) ---

using Clock = std::chrono::steady_clock;

// A raw netlink socket standing for a hostile or slow peer.
struct RawPeer {
    explicit RawPeer(int rcvbuf = 0) {
        EXPECT_TRUE(sock);
        EXPECT_EQ(mnl_socket_bind(sock.get(), 0, MNL_SOCKET_AUTOPID), 0);
        if (rcvbuf > 0) setsockopt(fd(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    int fd() const { return mnl_socket_get_fd(sock.get()); }
    std::uint32_t port() const { return mnl_socket_get_portid(sock.get()); }
    bool send(std::uint32_t to_port, const ctl::Request& r, std::uint32_t seq) {
        const auto req = ctl::encode_request(r, seq, port());
        sockaddr_nl to{};
        to.nl_family = AF_NETLINK;
        to.nl_pid = to_port;
        return ::sendto(fd(), req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&to),
                        sizeof to) == static_cast<ssize_t>(req.size());
    }
    // One datagram, waiting up to ms; false on timeout.
    bool read_one(int ms) {
        pollfd p{fd(), POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0) return false;
        std::vector<std::byte> buf(ctl::kReplyBufferSize);
        return ::recv(fd(), buf.data(), buf.size(), MSG_DONTWAIT) > 0;
    }
    std::unique_ptr<mnl_socket, int (*)(mnl_socket*)> sock{mnl_socket_open(NETLINK_USERSOCK),
                                                           mnl_socket_close};
};

ctl::Request request(Command c) {
    ctl::Request r;
    r.command = c;
    return r;
}

// A `list` answer of two 32 KiB messages: one fills a tiny receive buffer, the next cannot go.
void make_list_big(FakeHandler& h) {
    h.knobs_.clear();
    for (int i = 0; i < 400; ++i)
        h.knobs_.push_back({"knob" + std::to_string(i), std::string(100, 'v'), true});
}

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// A child process that becomes nobody and runs fn(ready_fd) (fn writes a byte there when
// the attack is under way); killed when the test is done with it.
struct NobodyChild {
    explicit NobodyChild(const std::function<void(int)>& fn) {
        int ready[2];
        EXPECT_EQ(::pipe(ready), 0);
        pid = ::fork();
        if (pid == 0) {
            if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
                ::setresuid(65534, 65534, 65534) != 0)
                ::_exit(1);
            fn(ready[1]);
            ::sleep(30); // keeps its sockets, unread, until killed
            ::_exit(0);
        }
        char c = 0;
        EXPECT_EQ(::read(ready[0], &c, 1), 1) << "the attacker did not start";
        ::close(ready[0]);
        ::close(ready[1]);
    }
    ~NobodyChild() {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    pid_t pid = -1;
};

void say_ready(int fd) {
    [[maybe_unused]] auto w = ::write(fd, "x", 1);
}

TEST(ControlAttack, UnreadRequestsDoNotStallTheServer) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
    FakeHandler h;
    make_list_big(h);
    Running r(h);
    const auto port = r.port();
    NobodyChild flooder([port](int ready) {
        RawPeer p(256); // the kernel's minimum receive buffer
        for (std::uint32_t i = 0; i < 64; ++i) p.send(port, request(Command::list), i);
        say_ready(ready);
        ::sleep(30);
    });
    const auto start = Clock::now();
    ControlClient c(r.endpoint(), 5000);
    EXPECT_EQ(c.list().size(), 400u);
    // Before: 2 s per reply message the flooder did not read (over two minutes in all).
    EXPECT_LT(seconds_since(start), 1.0);
    const auto s = r.server->stats();
    EXPECT_GE(s.slow_peers, 1u);
    EXPECT_EQ(s.throttled, 64u - 32u); // the port id's budget: 32 requests a second
}

TEST(ControlAttack, ManySocketsOfOneUidShareItsWaitAllowance) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
    FakeHandler h;
    make_list_big(h);
    Running r(h);
    const auto port = r.port();
    // 20 port ids, one unread request each: each a new peer, 100 ms of stall apiece without
    // the allowance its uid shares (200 ms a second, a second banked at most).
    NobodyChild flooder([port](int ready) {
        std::vector<std::unique_ptr<RawPeer>> peers;
        for (std::uint32_t i = 0; i < 20; ++i) {
            peers.push_back(std::make_unique<RawPeer>(256));
            peers.back()->send(port, request(Command::list), i);
        }
        say_ready(ready);
        ::sleep(30);
    });
    const auto start = Clock::now();
    ControlClient c(r.endpoint(), 5000);
    EXPECT_EQ(c.list().size(), 400u);
    // Without the allowance: 20 x 100 ms before root is answered.
    EXPECT_LT(seconds_since(start), 0.5);
    EXPECT_EQ(r.server->stats().slow_peers, 20u);
}

TEST(ControlAttack, ReplyDeadlineBoundsAReaderThatIsJustFastEnough) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
    FakeHandler h;
    h.stats_text.clear(); // about 4 MB: over 100 messages
    for (int i = 0; i < 200000; ++i) h.stats_text += "worker " + std::to_string(i) + ": idle\n";
    ControlServerConfig cfg;
    cfg.reply_deadline_ms = 600;
    Running r(h, cfg);
    const auto port = r.port();
    // Reads a message every 50 ms: never stalls long enough to be dropped for that alone.
    NobodyChild slow([port](int ready) {
        RawPeer p(65536);
        p.send(port, request(Command::stats), 1);
        say_ready(ready);
        for (int i = 0; i < 80; ++i) {
            p.read_one(50);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto start = Clock::now();
    ControlClient c(r.endpoint(), 5000);
    EXPECT_EQ(c.list().size(), 3u);
    // Before: the answer went on at the reader's pace, over 100 x 50 ms.
    EXPECT_LT(seconds_since(start), 1.5);
    EXPECT_GE(r.server->stats().slow_peers, 1u);
}

TEST(ControlAttack, StopIsSeenBetweenMessages) {
    FakeHandler h;
    h.flow_count = 200000;
    ControlServerConfig cfg;
    cfg.port_id = unique_port();
    cfg.reply_deadline_ms = 60000;
    cfg.stall_ms = 2000;
    ControlServer server(cfg);
    UniqueFd stop(::eventfd(0, EFD_CLOEXEC));
    std::thread serving([&] { server.serve(stop.get(), h); });
    RawPeer slow(65536);
    ASSERT_TRUE(slow.send(server.port_id(), request(Command::flows), 1));
    std::atomic<bool> done{false};
    std::thread reader([&] {
        for (int i = 0; i < 200 && !done; ++i) slow.read_one(300);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto start = Clock::now();
    const std::uint64_t one = 1;
    ASSERT_EQ(::write(stop.get(), &one, sizeof one), 8);
    serving.join();
    EXPECT_LT(seconds_since(start), 0.2);
    done = true;
    reader.join();
}

TEST(ControlAttack, StopEndsABigReplyToAFastReader) {
    FakeHandler h;
    // A dump that takes seconds, read as fast as it comes (fewer flows under TSan, where the
    // fake handler alone needs seconds per million).
#ifdef __SANITIZE_THREAD__
    constexpr std::uint64_t kFlows = 1000000;
#else
    constexpr std::uint64_t kFlows = 3000000;
#endif
    h.flow_count = kFlows;
    ControlServerConfig cfg;
    cfg.port_id = unique_port();
    ControlServer server(cfg);
    UniqueFd stop(::eventfd(0, EFD_CLOEXEC));
    std::atomic<std::uint64_t> seen{0};
    std::thread serving([&] { server.serve(stop.get(), h); });
    std::thread reader([&] {
        // Long enough for the first message, which comes only once the whole dump is built.
        ControlClient c({server.port_id(), ::getpid(), ::geteuid()}, 10000);
        try {
            c.flows(
                0, ctl::FlowSort::none, [](std::uint64_t, Nanos) {},
                [&](const FlowRecord&) { ++seen; });
        } catch (const ControlClientError&) {
        }
    });
    // Building 3 M records before the first message takes seconds under the sanitizers.
    for (int i = 0; i < 6000 && seen < 1000; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const bool started = seen >= 1000;
    const auto start = Clock::now();
    const std::uint64_t one = 1;
    const auto written = ::write(stop.get(), &one, sizeof one);
    serving.join();
    const double took = seconds_since(start);
    reader.join(); // before any assertion returns: no thread left joinable
    ASSERT_EQ(written, 8);
    ASSERT_TRUE(started) << "the dump did not start";
    EXPECT_LT(took, 0.2);
    EXPECT_LT(seen, kFlows);
}

TEST(ControlAttack, BudgetPerPortIdAndPerUid) {
    FakeHandler h;
    ControlServerConfig cfg;
    cfg.port_budget = 5;
    cfg.uid_budget = 3;
    Running r(h, cfg);
    ControlClient c(r.endpoint(), 300);
    int answered = 0;
    for (int i = 0; i < 8; ++i) {
        try {
            c.list();
            ++answered;
        } catch (const ControlClientError& e) {
            EXPECT_EQ(e.kind(), ControlClientError::Kind::unreachable);
        }
    }
    EXPECT_EQ(answered, 5);
    EXPECT_EQ(r.server->stats().throttled, 3u);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    EXPECT_EQ(c.list().size(), 3u); // a new second, a new budget
    // Root has no uid budget; another uid shares one across all its sockets.
    if (::geteuid() == 0) {
        const int rc = as_nobody([&] {
            int ok = 0;
            for (int i = 0; i < 5; ++i) {
                try {
                    ControlClient own(r.endpoint(), 300);
                    own.list();
                    ++ok;
                } catch (const ControlClientError&) {
                }
            }
            return ok == 3 ? 0 : 10 + ok;
        });
        EXPECT_EQ(rc, 0);
    }
}

// A process of its own (its own pid) holding `port` and answering every request with a
// forged success, as a squatter would; killed at the end.
struct Impostor {
    explicit Impostor(std::uint32_t port) {
        int ready[2];
        EXPECT_EQ(::pipe(ready), 0);
        pid = ::fork();
        if (pid == 0) {
            ::close(ready[0]);
            std::unique_ptr<mnl_socket, int (*)(mnl_socket*)> s(mnl_socket_open(NETLINK_USERSOCK),
                                                                mnl_socket_close);
            if (mnl_socket_bind(s.get(), 0, static_cast<pid_t>(port)) != 0) ::_exit(1);
            [[maybe_unused]] auto w = ::write(ready[1], "x", 1);
            std::vector<std::byte> buf(ctl::kMaxRequestSize);
            for (int i = 0; i < 1000; ++i) {
                sockaddr_nl from{};
                socklen_t len = sizeof from;
                const ssize_t n = ::recvfrom(mnl_socket_get_fd(s.get()), buf.data(), buf.size(), 0,
                                             reinterpret_cast<sockaddr*>(&from), &len);
                if (n <= 0) continue;
                const auto d =
                    ctl::decode_request(std::span(buf).first(std::size_t(n)), std::size_t(n));
                const auto m = ctl::encode_error(d.seq, from.nl_pid, d, EPERM,
                                                 "\x1b]0;pwned\x07\x1b[2Jok, done");
                ::sendto(mnl_socket_get_fd(s.get()), m.data(), m.size(), 0,
                         reinterpret_cast<sockaddr*>(&from), sizeof from);
            }
            ::_exit(0);
        }
        ::close(ready[1]);
        char c = 0;
        EXPECT_EQ(::read(ready[0], &c, 1), 1) << "the impostor could not bind";
        ::close(ready[0]);
    }
    ~Impostor() {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    pid_t pid = -1;
};

TEST(ControlAttack, SquattedPortIdFallsBackAndTheImpostorIsNeverBelieved) {
    const std::uint32_t wanted = unique_port();
    Impostor squatter(wanted);
    FakeHandler h;
    ControlServerConfig cfg;
    cfg.port_id = wanted;
    cfg.fallback_port = true;
    ControlServer server(cfg);
    EXPECT_TRUE(server.took_fallback());
    EXPECT_NE(server.port_id(), wanted);
    UniqueFd stop(::eventfd(0, EFD_CLOEXEC));
    std::thread serving([&] { server.serve(stop.get(), h); });
    ControlClient real({server.port_id(), ::getpid(), ::geteuid()}, 2000);
    EXPECT_EQ(real.set({{"debug", "2"}}).at(0).value, "2");
    EXPECT_EQ(h.sets, 1);
    // Had nflowctl been sent to the squatter: its answer carries its own pid and is dropped.
    ControlClient fooled({wanted, ::getpid(), ::geteuid()}, 500);
    const auto e = refusal([&] { fooled.set({{"debug", "3"}}); });
    EXPECT_EQ(e.kind(), ControlClientError::Kind::unreachable);
    EXPECT_EQ(std::string(e.what()).find("pwned"), std::string::npos);
    EXPECT_GE(fooled.foreign(), 1u);
    const std::uint64_t one = 1;
    ASSERT_EQ(::write(stop.get(), &one, sizeof one), 8);
    serving.join();
}

TEST(ControlEndpointFile, PublishedLockedAndCheckedBeforeUse) {
    char tmpl[] = "/tmp/nflowd-endpoint.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = std::string(tmpl) + "/run";
    const ControlEndpoint e{1234, ::getpid(), ::geteuid()};
    {
        EndpointPublisher pub(dir, 77);
        pub.publish(e);
        EXPECT_EQ(read_endpoint(dir, 77), e);
        // A second daemon with this control id in this namespace stops at the lock.
        EXPECT_THROW(EndpointPublisher(dir, 77), std::runtime_error);
        // No file: the control id itself, and the sender must prove its privilege instead.
        const auto none = read_endpoint(dir, 78);
        EXPECT_FALSE(none.published);
        EXPECT_EQ(none.port_id, 78u);
        // Writable by others: planted, not believed.
        ::chmod(pub.path().c_str(), 0666);
        EXPECT_NE(std::string(refusal([&] { read_endpoint(dir, 77); }).what()).find("not trusting"),
                  std::string::npos);
        ::chmod(pub.path().c_str(), 0644);
    }
    std::string path;
    {
        EndpointPublisher pub(dir, 79);
        pub.publish(e);
        path = pub.path();
        std::filesystem::copy_file(path, path + ".kept");
    }
    // Left behind (as after --user, which cannot remove it): the released lock says that
    // nobody answers for it any more.
    std::filesystem::rename(path + ".kept", path);
    EXPECT_NE(std::string(refusal([&] { read_endpoint(dir, 79); }).what()).find("stopped"),
              std::string::npos);
    ControlEndpoint parsed;
    EXPECT_FALSE(parse_endpoint("port_id 1\npid 2\n", parsed));
    EXPECT_TRUE(parse_endpoint(format_endpoint(e), parsed));
    EXPECT_EQ(parsed, e);
    std::filesystem::remove_all(tmpl);
}

TEST(ControlEndpointFile, ADirectoryRootGaveAwayIsTrustedOneInTmpIsNot) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
    // As systemd's RuntimeDirectory= under DynamicUser=: root's parent, the user's directory.
    char tmpl[] = "/tmp/nflowd-endpoint.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    ASSERT_EQ(::chmod(tmpl, 0755), 0);
    for (const std::string& dir :
         {std::string(tmpl) + "/run", std::string("/tmp/nflowd-") + std::to_string(::getpid())}) {
        ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
        ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
        const ControlEndpoint e{4321, 99, 65534};
        // The daemon, as nobody, publishes and holds the lock while the parent reads.
        int go[2], done[2];
        ASSERT_EQ(::pipe(go), 0);
        ASSERT_EQ(::pipe(done), 0);
        const pid_t child = ::fork();
        if (child == 0) {
            if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
                ::_exit(1);
            try {
                EndpointPublisher pub(dir, 5);
                pub.publish(e);
                [[maybe_unused]] auto w = ::write(go[1], "x", 1);
                char c;
                [[maybe_unused]] auto r = ::read(done[0], &c, 1);
            } catch (...) {
                ::_exit(2);
            }
            ::_exit(0);
        }
        char c = 0;
        ASSERT_EQ(::read(go[0], &c, 1), 1);
        if (dir.starts_with(tmpl)) {
            EXPECT_EQ(read_endpoint(dir, 5), e);
        } else {
            // In /tmp anyone could have made it: not believed.
            EXPECT_NE(
                std::string(refusal([&] { read_endpoint(dir, 5); }).what()).find("not trusting"),
                std::string::npos);
        }
        [[maybe_unused]] auto w = ::write(done[1], "x", 1);
        int status = 0;
        ::waitpid(child, &status, 0);
        EXPECT_EQ(status, 0);
        for (int fd : {go[0], go[1], done[0], done[1]}) ::close(fd);
        std::filesystem::remove_all(dir);
    }
    std::filesystem::remove_all(tmpl);
}

TEST(ControlEndpointFile, UnpublishedDaemonMustHoldCapNetAdmin) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
    EXPECT_TRUE(privileged_process(::getpid())); // root
    EXPECT_FALSE(privileged_process(0));
    // nobody without capabilities, answering on the port id nflowctl falls back to: ignored.
    const std::uint32_t port = unique_port();
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
            ::setresuid(65534, 65534, 65534) != 0)
            ::_exit(1);
        FakeHandler h;
        ControlServerConfig cfg;
        cfg.port_id = port;
        ControlServer server(cfg);
        [[maybe_unused]] auto w = ::write(ready[1], "x", 1);
        server.serve_pending(3000, h);
        ::_exit(0);
    }
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    EXPECT_FALSE(privileged_process(child));
    ControlClient client(ControlEndpoint{port, 0, 0, false}, 500);
    EXPECT_EQ(refusal([&] { client.list(); }).kind(), ControlClientError::Kind::unreachable);
    EXPECT_GE(client.foreign(), 1u);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    ::close(ready[0]);
    ::close(ready[1]);
    // The same from a privileged server (this process, root) is believed.
    FakeHandler h;
    Running r(h);
    ControlClient trusted(ControlEndpoint{r.port(), 0, 0, false}, 2000);
    EXPECT_EQ(trusted.list().size(), 3u);
}

} // namespace
} // namespace nflowd
