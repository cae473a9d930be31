#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for a bounded time,
# starting from the committed seeds. Fails on any crash, leak or sanitizer report.
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]   (default 60)
#   tests/fuzz/run.sh build                  (the build alone)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
build=${NFLOWD_FUZZ_BUILD_DIR:-build-fuzz}
# NFLOWD_FUZZ_PREBUILT=1: tests/run.sh made the build already (at idle priority).
# NFLOWD_FUZZ_TIMEOUT: seconds one input may take (10; more when run at idle priority).
if [[ ${NFLOWD_FUZZ_PREBUILT:-0} != 1 ]]; then
    # -O1 -g1 as the sanitizer builds: a third less compile time, line numbers in reports.
    CC=clang CXX=clang++ cmake -S . -B "$build" -DNFLOWD_FUZZ=ON -DNFLOWD_TESTS=OFF \
        -DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=-O1 -g1" "-DCMAKE_C_FLAGS=-O1 -g1" >/dev/null
    cmake --build "$build" -j"$(nproc)" --target fuzz_targets >/dev/null
fi
[[ ${1:-} == build ]] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One fuzzer per core at a time: each gets its full time, the stage takes a fraction of it.
run_one() { # run_one BIN: exit status and a one-line verdict in $work/NAME.verdict
    local bin=$1 name target log
    name=$(basename "$bin")
    target=${name#fuzz_}
    mkdir -p "$work/$target"
    log="$work/$target.log"
    if "$bin" -max_total_time="$seconds" -max_len=4096 -timeout="${NFLOWD_FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/$target-" \
        "$work/$target" "tests/fuzz/corpus/$target" >"$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        echo "fuzz $target: ok, $execs executions in ${seconds}s, $cov" >"$work/$target.verdict"
    else
        { echo "fuzz $target: FAILED"; tail -40 "$log"; } >"$work/$target.verdict"
        return 1
    fi
}
status=0
running=0
for bin in "$build"/tests/fuzz/fuzz_*; do
    if ((running >= $(nproc))); then
        wait -n || status=1
        running=$((running - 1))
    fi
    run_one "$bin" &
    running=$((running + 1))
done
while ((running > 0)); do
    wait -n || status=1
    running=$((running - 1))
done
cat "$work"/*.verdict
exit "$status"
