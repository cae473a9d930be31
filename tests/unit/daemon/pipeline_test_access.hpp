// Tests' access to Pipeline::on_workers and on_exporter: commands that stall or throw in chosen
// workers or in the exporter thread, for the on_workers and the watchdog tests.
#pragma once

#include "nflowd/pipeline.hpp"

#include <cstddef>
#include <functional>

namespace nflowd {

struct PipelineTestAccess {
    // fn(worker index) on every worker's thread; returns, or rethrows, as on_workers does.
    static void on_workers(Pipeline& p, const std::function<void(std::size_t)>& fn) {
        p.on_workers([&](Pipeline::Worker& w) {
            for (std::size_t i = 0; i < p.workers_.size(); ++i)
                if (p.workers_[i].get() == &w) fn(i);
        });
    }
    // fn() on the exporter thread, between two of its batches; returns once it has run.
    static void on_exporter(Pipeline& p, const std::function<void()>& fn) {
        p.on_exporter([&](Exporter&) { fn(); });
    }
};

} // namespace nflowd
