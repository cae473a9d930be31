#include "nflowd/watchdog.hpp"

#include "pipeline_test_access.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace nflowd {
namespace {

using Names = std::vector<std::string>;
constexpr Nanos kSecond = kNanosPerSecond;

TEST(WatchdogPolicy, DueOnlyOncePerPeriodAndOnlyWhenEveryThreadBeat) {
    Heartbeat worker, exporter;
    WatchdogPolicy policy(kSecond, {{"worker 0", &worker}, {"exporter", &exporter}}, 0);
    worker.beat();
    exporter.beat();
    EXPECT_FALSE(policy.check(kSecond / 2)); // not due yet
    EXPECT_TRUE(policy.stalled().empty());
    EXPECT_TRUE(policy.check(kSecond));
    exporter.beat(); // the worker is stuck
    EXPECT_FALSE(policy.check(2 * kSecond));
    EXPECT_EQ(policy.stalled(), Names{"worker 0"});
    EXPECT_FALSE(policy.check(3 * kSecond)); // nobody beat
    EXPECT_EQ(policy.stalled(), (Names{"worker 0", "exporter"}));
    worker.beat();
    exporter.beat();
    EXPECT_TRUE(policy.check(4 * kSecond));
    EXPECT_TRUE(policy.stalled().empty());
    // Beats before the last check do not count for the next one.
    EXPECT_FALSE(policy.check(5 * kSecond));
}

// A fake systemd: the unix datagram socket NOTIFY_SOCKET names, in a directory of its own.
class NotifyListener {
  public:
    NotifyListener() {
        std::string tmpl = ::testing::TempDir() + "/nflowd-notify-XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp");
        dir_ = tmpl;
        path_ = dir_ + "/notify";
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
        if (::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error("bind");
    }
    ~NotifyListener() {
        ::close(fd_);
        ::unlink(path_.c_str());
        ::rmdir(dir_.c_str());
    }
    NotifyListener(const NotifyListener&) = delete;
    NotifyListener& operator=(const NotifyListener&) = delete;
    const std::string& path() const { return path_; }

    std::optional<std::string> receive(int timeout_ms) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) != 1) return std::nullopt;
        char buf[4096];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        return n < 0 ? std::nullopt : std::optional(std::string(buf, static_cast<size_t>(n)));
    }
    // Every message for `ms` milliseconds.
    Names collect(int ms) {
        Names got;
        const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        for (auto now = std::chrono::steady_clock::now(); now < end;
             now = std::chrono::steady_clock::now()) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - now);
            if (auto m = receive(static_cast<int>(left.count()) + 1)) got.push_back(*m);
        }
        return got;
    }
    // Waits (bounded) for a message that contains `what`.
    bool wait_for(const std::string& what, int timeout_ms) {
        const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (std::chrono::steady_clock::now() < end)
            if (auto m = receive(50); m && m->find(what) != std::string::npos) return true;
        return false;
    }

  private:
    std::string dir_, path_;
    int fd_ = -1;
};

std::size_t count(const Names& messages, const std::string& what) {
    std::size_t n = 0;
    for (const auto& m : messages) n += m.find(what) != std::string::npos ? 1 : 0;
    return n;
}

// systemd's environment for the daemon, removed again at the end of the test.
struct SystemdEnv {
    SystemdEnv(const std::string& socket, const char* watchdog_usec) {
        ::setenv("NOTIFY_SOCKET", socket.c_str(), 1);
        if (watchdog_usec) ::setenv("WATCHDOG_USEC", watchdog_usec, 1);
    }
    ~SystemdEnv() {
        ::unsetenv("NOTIFY_SOCKET");
        ::unsetenv("WATCHDOG_USEC");
    }
};

TEST(ServiceNotifier, WithoutNotifySocketDoesNothing) {
    ::unsetenv("NOTIFY_SOCKET");
    Logger log("nflowd-test", false, 0);
    ServiceNotifier notifier(log);
    EXPECT_FALSE(notifier.active());
    EXPECT_EQ(notifier.watchdog_interval(), 0);
}

TEST(ServiceNotifier, ReadyAndStoppingWithoutWatchdog) {
    NotifyListener systemd;
    SystemdEnv env(systemd.path(), nullptr);
    Logger log("nflowd-test", false, 0);
    ServiceNotifier notifier(log);
    ASSERT_TRUE(notifier.active());
    EXPECT_EQ(notifier.watchdog_interval(), 0);
    Heartbeat never;
    notifier.ready({{"worker 0", &never}}, "NFLOG group 5", steady_time());
    EXPECT_EQ(systemd.receive(1000), std::optional<std::string>("READY=1\nSTATUS=NFLOG group 5"));
    notifier.tick(steady_time() + 100 * kSecond); // no WatchdogSec: nothing to feed
    notifier.stopping("exporting");
    EXPECT_EQ(systemd.receive(1000), std::optional<std::string>("STOPPING=1\nSTATUS=exporting"));
}

// systemd may name an abstract socket ("@name"); WATCHDOG_PID naming another process (one
// this one inherited the environment from) leaves the watchdog off.
TEST(ServiceNotifier, AbstractSocketAndAnotherProcessesWatchdog) {
    const std::string name = "nflowd-notify-test-" + std::to_string(::getpid());
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len), 0);
    SystemdEnv env("@" + name, "1000000");
    ::setenv("WATCHDOG_PID", std::to_string(::getppid()).c_str(), 1);
    Logger log("nflowd-test", false, 0);
    ServiceNotifier notifier(log);
    ::unsetenv("WATCHDOG_PID");
    ASSERT_TRUE(notifier.active());
    EXPECT_EQ(notifier.watchdog_interval(), 0);
    notifier.ready({}, "abstract", steady_time());
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 1000), 1);
    char buf[256];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(std::max<ssize_t>(n, 0))),
              "READY=1\nSTATUS=abstract");
    ::close(fd);
}

// Issue 11: a real pipeline, one worker stalled in a command (as a deadlock or a blocked call
// would hold it): WATCHDOG=1 stops within the interval, so systemd would restart nflowd, and
// comes back once the worker runs again. The daemon's tick is played by a thread here.
TEST(ServiceNotifier, WatchdogStopsWhileAWorkerIsStalled) {
    NotifyListener systemd;
    SystemdEnv env(systemd.path(), "1000000"); // WatchdogSec=1s: a ping due every 500 ms
    Logger log("nflowd-test", false, 0);
    ServiceNotifier notifier(log);
    ASSERT_EQ(notifier.watchdog_interval(), kSecond);
    test::UdpCollector collector;
    Clock clock(Clock::Mode::live);
    PipelineConfig pc;
    pc.workers = 2;
    pc.v5.boot_time = clock.now();
    Pipeline pipeline(pc, clock, CollectorSet(parse_destinations(collector.address()), 0));
    notifier.ready(pipeline.heartbeats(), "running", steady_time());
    ASSERT_TRUE(systemd.wait_for("READY=1", 1000));
    std::atomic<bool> ticking{true};
    std::thread tick([&] {
        for (; ticking; std::this_thread::sleep_for(std::chrono::milliseconds(50)))
            notifier.tick(steady_time());
    });
    EXPECT_TRUE(systemd.wait_for("WATCHDOG=1", 1500)) << "no ping while every thread runs";

    std::promise<void> release;
    std::atomic<bool> stalled{false};
    std::thread command([&, held = release.get_future()] {
        PipelineTestAccess::on_workers(pipeline, [&](std::size_t worker) {
            if (worker != 1) return;
            stalled = true;
            held.wait();
        });
    });
    for (int i = 0; i < 200 && !stalled; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(stalled);
    // One more ping may still come (its period began before the stall), then none.
    const Names settling = systemd.collect(600);
    const Names during = systemd.collect(1500);
    EXPECT_EQ(count(during, "WATCHDOG=1"), 0u)
        << "fed for " << count(during, "WATCHDOG=1") << " periods of a stalled worker";
    EXPECT_EQ(count(settling, "STATUS=stalled: worker 1") +
                  count(during, "STATUS=stalled: worker 1"),
              1u);

    release.set_value();
    command.join();
    const Names after = systemd.collect(1200);
    EXPECT_GE(count(after, "WATCHDOG=1"), 1u) << "the watchdog was not fed again";
    EXPECT_EQ(count(after, "STATUS=running"), 1u);
    ticking = false;
    tick.join();
    notifier.stopping("exporting all flows before exit");
    EXPECT_TRUE(systemd.wait_for("STOPPING=1", 1000));
    pipeline.finish();
}

} // namespace
} // namespace nflowd
