#!/usr/bin/env bash
# systemd's notify protocol and watchdog (issue 11), live in private namespaces, against a fake
# systemd: a unix datagram socket this test binds, named by NOTIFY_SOCKET, with
# WATCHDOG_USEC=2000000 (WatchdogSec=2s):
#   1 READY=1 (with a STATUS line) once nflowd runs; WATCHDOG=1 every second or so (half
#     the interval), never 2 s apart, while its threads run; SIGTERM: STOPPING=1, the
#     "stopped:" line, exit 0;
#   2 --user nobody with the socket in a directory only root may enter (as nobody, connecting
#     to it fails): READY=1, WATCHDOG=1 and STOPPING=1 still arrive, as nflowd connects the
#     socket before it drops its privileges.
# A stalled thread stopping the watchdog is tested in tests/unit/daemon/watchdog_test.cpp.
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

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
