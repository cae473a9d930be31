#!/usr/bin/env bash
# systemd's notify protocol and watchdog (issue 11), live in private namespaces, against a fake
# systemd: a unix datagram socket this test binds, named by NOTIFY_SOCKET, with
# WATCHDOG_USEC=2000000 (WatchdogSec=2s):
#   1 READY=1 (with a STATUS line) once nflowd runs; WATCHDOG=1 every second or so (half
#     the interval), never 2 s apart, while its threads run; SIGTERM: STOPPING=1, the
#     "stopped:" line, exit 0;
#   2 --user nobody with the socket in a directory only root may enter (as nobody, connecting
#     to it fails): READY=1, WATCHDOG=1 and STOPPING=1 still arrive, as nflowd connects the
#     socket before it drops its privileges;
#   3 the readers' part of the watchdog: with an NFLOG rule in place, a reader waiting for
#     packets (idle) and one receiving them keep WATCHDOG=1 coming; the reader thread alone
#     stopped (ptrace stops one thread, its siblings run on) stops it within a period, with
#     "STATUS=stalled: reader of NFLOG group G", and the pings return once it runs again.
# A stalled worker or exporter, and a long paced flush, are tested on a real pipeline in
# tests/unit/daemon/watchdog_test.cpp.
# usage: systemd_notify.sh PATH/TO/nflowd
set -euo pipefail

NFLOWD=${1:?usage: systemd_notify.sh nflowd}
# shellcheck source=netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
netns_require
command -v python3 >/dev/null || { echo "SKIP: python3 missing" >&2; exit 77; }

netns_setup
work_setup netns_cleanup
WORK_KEEP_FAILED=1
GROUP=$((7000 + $$ % 1000))

# listen SOCKET OUT: the fake systemd, one "MONOTONIC_SECONDS LINE" per line received, for
# at most 60 s; killed by netns_cleanup.
listen() {
    netns_bg "$NS_ROUTER" "$2" "$2.err" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("0 listening", flush=True)
end = time.monotonic() + 60
s.settimeout(0.2)
while time.monotonic() < end:
    try:
        m = s.recv(4096).decode()
    except socket.timeout:
        continue
    for line in m.split("\n"):
        print(f"{time.monotonic():.3f} {line}", flush=True)
' "$1"
    netns_wait_for "$2" listening 50 || die "the fake systemd did not start: $(cat "$2.err")"
}

# check_pings NAME OUT SECONDS: after READY=1, WATCHDOG=1 at least SECONDS - 1 times in
# SECONDS, none later than 1.9 s after the one before (systemd's limit is 2 s).
check_pings() {
    local name=$1 out=$2 n gap
    sleep "$3"
    n=$(grep -c ' WATCHDOG=1$' "$out" || true)
    gap=$(awk '$2 == "READY=1" || $2 == "WATCHDOG=1" {
            if (last != "" && $1 - last > max) max = $1 - last; last = $1 }
            END { printf "%.3f", max }' "$out")
    ((n >= $3 - 1)) && pass "$name: $n pings in $3 s" || fail "$name: $n pings in $3 s"
    awk -v g="$gap" 'BEGIN { exit !(g < 1.9) }' && pass "$name: longest gap $gap s" ||
        fail "$name: $gap s between two pings"
}

# run_case NAME SOCKET NFLOWD_ARGS...
run_case() {
    local name=$1 sock=$2 out=$WORK/$1.notify log=$WORK/$1.log
    shift 2
    echo "== $name"
    listen "$sock" "$out"
    export NOTIFY_SOCKET=$sock WATCHDOG_USEC=2000000
    netns_start_nflowd "$NS_ROUTER" "$log" --group "$GROUP" --destination 127.0.0.1:9 \
        --debug 2 "$@"
    unset NOTIFY_SOCKET WATCHDOG_USEC
    netns_wait_for "$out" ' READY=1$' 50 && pass "$name: READY=1" || fail "$name: no READY=1"
    grep -q " STATUS=NFLOG group $GROUP, exporting to 127.0.0.1:9$" "$out" ||
        fail "$name: no STATUS line: $(cat "$out")"
    grep -q 'systemd watchdog: WATCHDOG=1 every 1000 ms' "$log" || fail "$name: no watchdog line"
    check_pings "$name" "$out" 5
    ! grep -q ' STOPPING=1$' "$out" || fail "$name: STOPPING=1 before the stop"
    netns_stop_nflowd "$NFLOWD_PID" "$log"
    netns_wait_for "$out" ' STOPPING=1$' 20 && pass "$name: STOPPING=1" ||
        fail "$name: no STOPPING=1 at SIGTERM"
    if grep -q 'NOTIFY_SOCKET' "$log"; then fail "$name: $(grep NOTIFY_SOCKET "$log")"; fi
}

run_case root "$WORK/notify"

if getent passwd nobody >/dev/null && command -v setpriv >/dev/null; then
    mkdir -m 0700 "$WORK/rootonly"
    # The point of the case: nobody cannot open a socket there by its path.
    listen "$WORK/rootonly/probe" "$WORK/probe.notify"
    if setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups python3 -c '
import socket, sys
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).connect(sys.argv[1])' \
        "$WORK/rootonly/probe" 2>/dev/null; then
        fail "nobody can reach $WORK/rootonly: the case proves nothing"
    fi
    run_case nobody "$WORK/rootonly/notify" --user nobody
    grep -q 'running as user nobody' "$WORK/nobody.log" || fail "nobody: not running as nobody"
else
    echo "(no user nobody or no setpriv: the --user case is skipped)"
fi

# now_mono: CLOCK_MONOTONIC in seconds, the clock of the fake systemd's lines.
now_mono() { python3 -c 'import time; print(f"{time.monotonic():.3f}")'; }

# pings_between OUT FROM TO: how many WATCHDOG=1 arrived with FROM < time <= TO.
pings_between() {
    awk -v a="$2" -v b="$3" '$2 == "WATCHDOG=1" && $1 > a && $1 <= b { n++ } END { print n + 0 }' "$1"
}

# reader_tid PID: the thread of nflowd waiting in poll(fds, 2, 100 ms), the NFLOG reader's
# idle wait (kReaderIdleMs in daemon.cpp; the main thread polls for 1000 ms, the control
# thread with no timeout). x86_64's poll is system call 7. Fails unless exactly one matches.
reader_tid() {
    local t nr nfds timeout i found
    for ((i = 0; i < 50; i++)); do
        found=()
        for t in /proc/"$1"/task/*; do
            read -r nr _ nfds timeout _ <"$t/syscall" 2>/dev/null || continue
            [[ $nr == 7 && $nfds == 0x2 && $timeout == 0x64 ]] && found+=("${t##*/}")
        done
        ((${#found[@]} == 1)) && { echo "${found[0]}"; return 0; }
        sleep 0.1
    done
    return 1
}

# hold_thread TID SECONDS OUT: stops that one thread for SECONDS (PTRACE_SEIZE, then
# PTRACE_INTERRUPT: a ptrace stop is per thread) and lets it go (PTRACE_DETACH); writes
# "MONOTONIC held" and "MONOTONIC released" to OUT. A tracer that dies detaches too.
hold_thread() {
    python3 -c '
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid = int(sys.argv[1])
def ptrace(request, what):
    if libc.ptrace(request, tid, None, None) != 0:
        sys.exit(f"ptrace {what}: {os.strerror(ctypes.get_errno())}")
ptrace(0x4206, "PTRACE_SEIZE")
ptrace(0x4207, "PTRACE_INTERRUPT")
os.waitpid(tid, 0x40000000)  # __WALL: until it is stopped
print(f"{time.monotonic():.3f} held", flush=True)
time.sleep(float(sys.argv[2]))
print(f"{time.monotonic():.3f} released", flush=True)
ptrace(17, "PTRACE_DETACH")
' "$1" "$2" >"$3" 2>"$3.err"
}

# check_reader_progress OUT: idle 4 s, then 3 s of packets through the rule: pings go on.
check_reader_progress() {
    local out=$1 t0 t1 n rule end
    t0=$(now_mono)
    sleep 4
    t1=$(now_mono)
    n=$(pings_between "$out" "$t0" "$t1")
    ((n >= 3)) && pass "reader: idle, $n pings in 4 s" || fail "reader: idle, $n pings in 4 s"
    t0=$(now_mono)
    end=$((SECONDS + 4)) # 3 to 4 s of packets
    while ((SECONDS < end)); do netns_udp "$NS_CLIENT" "$SERVER_IP" 9999 200 64; done
    t1=$(now_mono)
    rule=$(in_router iptables -L FORWARD -v -x -n | awk 'NR == 3 { print $1 }')
    n=$(pings_between "$out" "$t0" "$t1")
    ((n >= 2)) && pass "reader: busy, $rule packets logged, $n pings meanwhile" ||
        fail "reader: busy, $rule packets logged, $n pings in 3 s or more"
    ((rule >= 1000)) || fail "reader: only $rule packets crossed the NFLOG rule"
    if grep -q ' STATUS=stalled' "$out"; then fail "reader: $(grep ' STATUS=stalled' "$out")"; fi
}

# check_reader_stall OUT STATUS: the reader stopped 5 s: at most the ping of the period in
# progress, none later; the stall named; pings and STATUS back once it runs.
check_reader_stall() {
    local out=$1 status=$2 tid holder held released state
    tid=$(reader_tid "$NFLOWD_PID") || { fail "reader: no thread waits in poll(fds, 2, 100)"; return; }
    hold_thread "$tid" 5 "$WORK/hold" &
    holder=$!
    netns_wait_for "$WORK/hold" ' held$' 30 || true
    state=$(awk '$1 == "State:" { print $2 }' "/proc/$NFLOWD_PID/task/$tid/status")
    wait "$holder" || { fail "reader: could not hold it: $(cat "$WORK/hold.err")"; return; }
    held=$(awk '$2 == "held" { print $1 }' "$WORK/hold")
    released=$(awk '$2 == "released" { print $1 }' "$WORK/hold")
    [[ $state == t ]] || fail "reader: thread $tid in state '$state' while held, not t (traced)"
    sleep 3
    local first later after
    first=$(pings_between "$out" "$held" "$released")
    later=$(pings_between "$out" "$(awk -v h="$held" 'BEGIN { print h + 1.5 }')" "$released")
    after=$(pings_between "$out" "$released" "$(awk -v r="$released" 'BEGIN { print r + 2.5 }')")
    ((first <= 1 && later == 0)) && pass "reader: held 5 s, $first ping(s), none after 1.5 s" ||
        fail "reader: held 5 s yet $first pings ($later later than 1.5 s)"
    ((after >= 1)) && pass "reader: $after ping(s) within 2.5 s of its release" ||
        fail "reader: no ping within 2.5 s of its release"
    [[ $(grep -c ' STATUS=stalled' "$out") == 1 ]] &&
        grep -q " STATUS=stalled: reader of NFLOG group $GROUP$" "$out" &&
        pass "reader: STATUS=stalled: reader of NFLOG group $GROUP" ||
        fail "reader: stall status: $(grep ' STATUS=stalled' "$out" | tr '\n' ';')"
    [[ $(awk -v r="$released" -v s="$status" '$1 > r && substr($0, index($0, " ") + 1) == s' "$out") ]] ||
        fail "reader: '$status' not shown again after the release"
}

run_reader_case() {
    local out=$WORK/reader.notify log=$WORK/reader.log status
    echo "== reader"
    if [[ $(uname -m) != x86_64 ]]; then
        echo "(not x86_64: the reader case finds the reader by its poll system call; skipped)"
        return
    fi
    # A container without ptrace (seccomp, no CAP_SYS_PTRACE) cannot run it: tried on a
    # process of our own first.
    sleep 30 &
    local probe=$!
    if ! hold_thread "$probe" 0 "$WORK/probe.hold"; then
        kill "$probe" 2>/dev/null || true
        wait "$probe" 2>/dev/null || true
        echo "(ptrace not permitted here: $(cat "$WORK/probe.hold.err"); the reader case is skipped)"
        return
    fi
    kill "$probe" 2>/dev/null || true
    wait "$probe" 2>/dev/null || true
    in_server iptables -A INPUT -p udp --dport 9999 -j DROP
    in_router iptables -A FORWARD -j NFLOG --nflog-group "$GROUP"
    listen "$WORK/reader-notify" "$out"
    export NOTIFY_SOCKET=$WORK/reader-notify WATCHDOG_USEC=2000000
    netns_start_nflowd "$NS_ROUTER" "$log" --group "$GROUP" --destination 127.0.0.1:9 --debug 2
    unset NOTIFY_SOCKET WATCHDOG_USEC
    netns_wait_for "$out" ' READY=1$' 50 || { fail "reader: no READY=1"; return; }
    status=$(grep -m1 ' STATUS=' "$out" | cut -d' ' -f2-)
    check_reader_progress "$out"
    check_reader_stall "$out" "$status"
    grep -q "watchdog: no progress from reader of NFLOG group $GROUP;" "$log" ||
        fail "reader: the stall was not logged"
    netns_stop_nflowd "$NFLOWD_PID" "$log"
}

run_reader_case

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
