// Internal to the pipeline: a thread's mailbox of commands, run by that thread between
// batches, and post(), which hands one over and returns a future for its completion.
#pragma once

#include "nflowd/notifier.hpp"

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

namespace nflowd {

using Command = std::function<void()>;

struct Mailbox {
    std::mutex mutex;
    std::vector<Command> commands;
    std::atomic<bool> pending{false};

    void post(Command c) {
        std::lock_guard lock(mutex);
        commands.push_back(std::move(c));
        pending.store(true, std::memory_order_seq_cst);
    }
    void run() {
        if (!pending.load(std::memory_order_acquire)) return;
        std::vector<Command> todo;
        {
            std::lock_guard lock(mutex);
            todo.swap(commands);
            pending.store(false, std::memory_order_relaxed);
        }
        for (auto& c : todo) c();
    }
};

// Posts fn to a thread's mailbox and waits until that thread ran it.
template <class Target>
std::future<void> post(Mailbox& box, Notifier& wake, Target& target,
                       const std::function<void(Target&)>& fn) {
    auto task = std::make_shared<std::packaged_task<void()>>([&fn, &target] { fn(target); });
    auto done = task->get_future();
    box.post([task] { (*task)(); });
    wake.wake();
    return done;
}

} // namespace nflowd
