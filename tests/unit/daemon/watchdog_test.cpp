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

// A fake systemd with WatchdogSec=1s (a ping due every 500 ms) and the daemon's notifier.
struct WatchdogRig {
    NotifyListener systemd;
    SystemdEnv env{systemd.path(), "1000000"};
    Logger log{"nflowd-test", false, 0};
    ServiceNotifier notifier{log};
};

// The daemon's tick, played by a thread: notifier.tick() every 50 ms while it exists.
class Ticker {
  public:
    explicit Ticker(ServiceNotifier& notifier)
        : thread_([this, &notifier] {
              for (; running_; std::this_thread::sleep_for(std::chrono::milliseconds(50)))
                  notifier.tick(steady_time());
          }) {}
    ~Ticker() {
        running_ = false;
        thread_.join();
    }
    Ticker(const Ticker&) = delete;
    Ticker& operator=(const Ticker&) = delete;

  private:
    std::atomic<bool> running_{true};
    std::thread thread_;
};

// A live pipeline of one worker whose flows stay in the cache until a flush.
PipelineConfig cache_until_flush(const Clock& clock, std::uint32_t export_rate) {
    PipelineConfig pc;
    pc.v5.boot_time = clock.now();
    pc.table.inactive_timeout = 60 * kSecond;
    pc.table.active_timeout = 120 * kSecond;
    pc.pacing.rate = export_rate;
    return pc;
}

// `n` one-packet UDP flows, in the cache once this returns.
void fill_cache(Pipeline& pipeline, const Clock& clock, std::uint32_t n) {
    auto& d = pipeline.dispatcher(0);
    for (std::uint32_t f = 0; f < n; ++f) {
        d.dispatch(test::ipv4_packet(0x0a000001, 0x0b000000 + f, 17, 5000, 53, 100),
                   PacketMeta{clock.now(), 1, 2});
        if (f % 1000 == 999) d.publish();
    }
    d.publish();
    for (int i = 0; i < 500 && pipeline.stats().total().active < n; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// Flow records received until `n` arrived or 3 s of silence.
std::size_t receive_records(test::UdpCollector& collector, std::size_t n) {
    std::size_t records = 0;
    while (records < n)
        if (auto dg = collector.receive(3000))
            records += test::decode_v5(*dg).header.count;
        else
            break;
    return records;
}

// The exporter thread held (as a deadlock or a blocked call would hold it: its sends never
// block, pacing beats per record, so nothing in it stalls by design) while a flush fills the
// worker's output ring: WATCHDOG=1 stops and the stall names the exporter alone; the worker,
// waiting on it, still beats. Once released, every flow is exported and the pings return.
TEST(ServiceNotifier, WatchdogStopsWhileTheExporterIsStalled) {
    WatchdogRig rig;
    test::UdpCollector collector;
    Clock clock(Clock::Mode::live);
    Pipeline pipeline(cache_until_flush(clock, 0), clock,
                      CollectorSet(parse_destinations(collector.address()), 0));
    constexpr std::uint32_t kFlows = 70'000; // more than a worker's output ring (65,536)
    fill_cache(pipeline, clock, kFlows);
    ASSERT_EQ(pipeline.stats().total().active, kFlows);
    rig.notifier.ready(pipeline.heartbeats(), "running", steady_time());
    ASSERT_TRUE(rig.systemd.wait_for("READY=1", 1000));
    Ticker ticker(rig.notifier);
    EXPECT_TRUE(rig.systemd.wait_for("WATCHDOG=1", 1500)) << "no ping while every thread runs";

    std::promise<void> release;
    std::atomic<bool> held{false}, flushed{false};
    std::thread command([&, until = release.get_future()] {
        PipelineTestAccess::on_exporter(pipeline, [&] {
            held = true;
            until.wait();
        });
    });
    for (int i = 0; i < 200 && !held; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(held);
    std::thread flush([&] {
        pipeline.flush();
        flushed = true;
    });
    const Names settling = rig.systemd.collect(600);
    const Names during = rig.systemd.collect(1500);
    EXPECT_FALSE(flushed) << "the worker never had to wait on the exporter";
    EXPECT_EQ(count(during, "WATCHDOG=1"), 0u)
        << "fed for " << count(during, "WATCHDOG=1") << " periods of a stalled exporter";
    EXPECT_EQ(count(settling, "STATUS=stalled: exporter") +
                  count(during, "STATUS=stalled: exporter"),
              1u);
    EXPECT_EQ(count(settling, "worker") + count(during, "worker"), 0u)
        << "a worker waiting on the exporter was taken for stalled";

    release.set_value();
    command.join();
    const Names after = rig.systemd.collect(1200);
    flush.join();
    EXPECT_GE(count(after, "WATCHDOG=1"), 1u) << "the watchdog was not fed again";
    EXPECT_EQ(count(after, "STATUS=running"), 1u);
    EXPECT_EQ(receive_records(collector, kFlows), kFlows);
    pipeline.finish();
}

// A long paced flush is no stall: at the lowest export_rate (65,536 bytes/s) 6000 flows are
// 200 v5 datagrams of 1464 bytes, 3.5 s after the 64 KiB burst, all in one pass of the
// exporter's loop; it beats per record, so WATCHDOG=1 goes on every 500 ms meanwhile.
TEST(ServiceNotifier, WatchdogFedThroughALongPacedFlush) {
    WatchdogRig rig;
    test::UdpCollector collector;
    Clock clock(Clock::Mode::live);
    Pipeline pipeline(cache_until_flush(clock, 65536), clock,
                      CollectorSet(parse_destinations(collector.address()), 0));
    constexpr std::uint32_t kFlows = 6000;
    fill_cache(pipeline, clock, kFlows);
    ASSERT_EQ(pipeline.stats().total().active, kFlows);
    rig.notifier.ready(pipeline.heartbeats(), "running", steady_time());
    ASSERT_TRUE(rig.systemd.wait_for("READY=1", 1000));
    Ticker ticker(rig.notifier);
    pipeline.flush(); // returns once the records are in the exporter's rings
    const Names during = rig.systemd.collect(3000);
    // Still pacing at the end of the window (about 180 of 200 sent by then).
    EXPECT_LT(pipeline.stats().exporter.datagrams, kFlows / 30) << "the flush was not paced";
    EXPECT_GE(count(during, "WATCHDOG=1"), 5u) << "pings stopped during a paced flush";
    EXPECT_EQ(count(during, "STATUS=stalled"), 0u) << "a pacing wait was taken for a stall";
    EXPECT_EQ(receive_records(collector, kFlows), kFlows);
    pipeline.finish();
}

} // namespace
} // namespace nflowd
