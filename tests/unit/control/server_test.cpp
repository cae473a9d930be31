// ControlServer and ControlClient over real NETLINK_USERSOCK sockets, with a fake handler.
#include "nflowd/control_client.hpp"
#include "nflowd/control_server.hpp"
#include "nflowd/unique_fd.hpp"

#include <gtest/gtest.h>

#include <grp.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
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

    ControlServerConfig config;
    std::unique_ptr<ControlServer> server;
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
    ControlClient c(r.port());
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
    ControlClient c(r.port());
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
    ControlClient c(r.port(), 300);
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
    ControlClient c(unique_port(), 500);
    const auto e = refusal([&] { c.list(); });
    EXPECT_EQ(e.kind(), ControlClientError::Kind::unreachable);
    EXPECT_NE(std::string(e.what()).find("not running"), std::string::npos) << e.what();
}

TEST(ControlClient, AcceptsAnswersOnlyFromTheDaemonsPort) {
    FakeHandler h;
    Running r(h);
    ControlClient c(r.port());
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
    cfg.send_timeout_ms = 200;
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
    ControlClient c(r.port(), 5000);
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
    ControlClient c(r.port(), 5000);
    EXPECT_EQ(c.list().size(), 3u);
    // Error replies to the mute peer are dropped, never waited for.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(ControlServer, WritePolicy) {
    EXPECT_TRUE(may_change({1, 0, 0}, std::nullopt));
    EXPECT_FALSE(may_change({1, 1000, 0}, std::nullopt));
    EXPECT_FALSE(may_change({1, 1000, 1000}, std::nullopt));
    EXPECT_TRUE(may_change({1, 1000, 1000}, gid_t{1000}));
    EXPECT_FALSE(may_change({1, 1000, 1001}, gid_t{1000}));
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
        ControlClient c(r.port(), 2000);
        if (c.list().size() != 3 || c.get({"debug"}).size() != 1) return 1;
        if (c.stats(ctl::StatsFormat::text).empty()) return 2;
        for (int attempt = 0; attempt < 2; ++attempt) {
            try {
                if (attempt == 0)
                    c.set({{"debug", "3"}});
                else
                    c.flush(1);
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
    EXPECT_EQ(r.server->stats().denied, 2u);
}

TEST(ControlServer, ControlGroupMayChange) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
    FakeHandler h;
    ControlServerConfig cfg;
    cfg.write_group = 65534;
    Running r(h, cfg);
    const int rc = as_nobody([&] {
        ControlClient c(r.port(), 2000);
        return c.set({{"debug", "3"}}).at(0).value == "3" ? 0 : 1;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(h.sets, 1);
}

} // namespace
} // namespace nflowd
