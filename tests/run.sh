#!/usr/bin/env bash
# The one command that proves nflowd on a fresh Debian 12 machine (as root): installs what
# the build and the tests need, then, each from scratch with warnings as errors:
#   1. the release build and every test (unit, pcap end to end, live namespaces);
#   2. the unit suite, the threaded tests and the threaded end-to-end/live scripts under
#      AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. the threaded tests and scripts under ThreadSanitizer;
#   4. every libFuzzer target for a bounded time (FUZZ_SECONDS each, default 60).
# The sanitizer builds are -O1 -g1: half the compile time of -O2 -g, the sanitizers' own
# advice, and line numbers in every report. The TSan build makes only what its stage runs
# (target threaded_checks). The builds of stages 2-4 and the fuzzers run in the background
# at idle priority from the end of the release build on.
# NFLOWD_STAGES="release asan tsan fuzz" selects stages.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$0")/.."

deps=(build-essential cmake pkg-config libnetfilter-log-dev libmnl-dev libnfnetlink-dev
      libboost-program-options-dev libgtest-dev libgmock-dev libpcap-dev clang libclang-rt-14-dev
      nfdump tshark iproute2 iptables nftables tcpdump procps iputils-ping python3 python3-scapy
      mandoc man-db dpkg-dev file systemd nlohmann-json3-dev python3-prometheus-client prometheus
      netcat-openbsd libcap-ng-dev libsystemd-dev libnetfilter-conntrack-dev conntrack
      pmacct)
missing=()
for p in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stages=${NFLOWD_STAGES:-release asan tsan fuzz}
jobs=$(nproc)
build() { # build DIR TARGET CMAKE_ARGS...
    local dir=$1 target=$2
    shift 2
    rm -rf "$dir"
    cmake -S . -B "$dir" -DNFLOWD_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j"$jobs" --target "$target"
}
# Build type None: no -O2 -g from a build type after these flags (CMakeLists.txt would make an
# empty one RelWithDebInfo).
sanitizer_flags=(-DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=-O1 -g1" "-DCMAKE_C_FLAGS=-O1 -g1")

has() { [[ " $stages " == *" $1 "* ]]; }
# Everything after the release build is one background job at idle CPU priority (SCHED_IDLE):
# the ASan, TSan and fuzz builds, then the fuzzers. The tests meanwhile mostly wait on
# timeouts in their namespaces, and a waking test always preempts the compilers. Each build
# leaves DIR/.built, and a stage waits for its own build only. The fuzzers' time is wall
# time, so they end on time; an input may take 60 s before it counts as a hang, as a starved
# fuzzer's clock runs on.
later() {
    if has asan; then
        build build-asan all "${sanitizer_flags[@]}" -DNFLOWD_ASAN=ON
        touch build-asan/.built
    fi
    if has tsan; then
        build build-tsan threaded_checks "${sanitizer_flags[@]}" -DNFLOWD_TSAN=ON
        touch build-tsan/.built
    fi
    if has fuzz; then
        bash tests/fuzz/run.sh build
        NFLOWD_FUZZ_PREBUILT=1 NFLOWD_FUZZ_TIMEOUT=60 bash tests/fuzz/run.sh "${FUZZ_SECONDS:-60}"
    fi
}
if [[ ${NFLOWD_LATER:-0} == 1 ]]; then
    later
    exit 0
fi

if has release; then
    echo "== release build"
    # Prefix /usr: package_check packages this very build instead of compiling another.
    # -O2 as released, -g1 (line tables) for shorter compiles and links.
    build build-test all -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
        "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" \
        "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
fi
idle=(nice -n 19)
chrt --idle 0 true 2>/dev/null && idle=(chrt --idle 0)
rm -f build-asan/.built build-tsan/.built # a marker left by an earlier run is not this build
later_log=$(mktemp)
# Its own session, so that a failure ends the whole job (compilers and fuzzers included).
NFLOWD_LATER=1 "${idle[@]}" setsid bash "$self" >"$later_log" 2>&1 &
later_pid=$!
trap 'kill -- -"$later_pid" 2>/dev/null || true; rm -f "$later_log"' EXIT
later_done() { # the job has ended (an ended child stays a zombie until waited for)
    local st
    st=$(ps -o stat= -p "$later_pid" 2>/dev/null || true)
    [[ -z $st || $st == Z* ]]
}
built() { # built DIR: waits for DIR's build; the job's log and failure if it did not come
    until [[ -e $1/.built ]]; do
        if later_done; then
            [[ -e $1/.built ]] && return 0
            echo "== $1: the build failed"
            tail -80 "$later_log"
            exit 1
        fi
        sleep 1
    done
}

if has release; then
    echo "== every test of the release build (the later builds meanwhile)"
    (cd build-test && ctest --output-on-failure --timeout 900)
fi
if has asan; then
    built build-asan
    echo "== unit and threaded tests under ASan + UBSan"
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --output-on-failure --timeout 900 -L 'unit|threaded')
fi
if has tsan; then
    built build-tsan
    echo "== threaded tests under TSan"
    (cd build-tsan && TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
        ctest --output-on-failure --timeout 900 -L threaded)
fi
echo "== the background job (fuzzing, ${FUZZ_SECONDS:-60} s per target)"
later_status=0
wait "$later_pid" || later_status=$?
if ((later_status == 0)); then
    grep '^fuzz ' "$later_log" || true
else
    tail -120 "$later_log"
fi
exit "$later_status"
