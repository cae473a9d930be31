# Shared by the `nflowd --read` scripts (read_e2e.sh, tests/bench/read_vs_softflowd.sh):
# nfcapd as the collector on the host's loopback, background helpers tracked in PIDS, and
# a work directory. Source it, then collector_setup NAME.
#
# Failures die (check_lib.sh) at once: each step feeds the next, so nothing after a failure
# would mean anything.
#
# shellcheck shell=bash

# shellcheck source=check_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/check_lib.sh"

WORK=""
PIDS=()

# collector_setup NAME: WORK=$(mktemp -d ${TMPDIR:-/tmp}/NAME.XXXXXX); on exit every process
# still in PIDS is stopped and WORK removed (KEEP=1 keeps it for inspection).
collector_setup() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap collector_cleanup EXIT
}

collector_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}

# forget_pid PID: PID has been waited for; the cleanup leaves it alone.
forget_pid() {
    local keep=() pid
    for pid in "${PIDS[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

# "key: value" lookup in a summary written by nflowd, gen_trace or `nfdump -I`.
field() { awk -F': ' -v k="$2" '$1 == k { print $2; found = 1 } END { exit !found }' "$1"; }

free_udp_port() {
    python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_nfcapd DIR: sets NFCAPD_PID and NFCAPD_PORT; nfcapd stores into DIR, logs to DIR.log.
# Its receive buffer is NFCAPD_BUFFER bytes (16 MiB; empty: the system default, 208 KiB).
# NFCAPD_PREFIX: words run before nfcapd (e.g. a scheduling class); empty by default.
NFCAPD_BUFFER=16777216
NFCAPD_PREFIX=()
start_nfcapd() {
    local dir=$1 i
    mkdir -p "$dir"
    NFCAPD_PORT=$(free_udp_port)
    "${NFCAPD_PREFIX[@]+"${NFCAPD_PREFIX[@]}"}" nfcapd ${NFCAPD_BUFFER:+-B "$NFCAPD_BUFFER"} \
        -b 127.0.0.1 -p "$NFCAPD_PORT" -w "$dir" -t 3600 >"$dir.log" 2>&1 &
    NFCAPD_PID=$!
    PIDS+=("$NFCAPD_PID")
    for ((i = 0; i < 100; i++)); do
        [[ -n $(ss -Hlun "sport = :$NFCAPD_PORT") ]] && return 0
        kill -0 "$NFCAPD_PID" 2>/dev/null || die "nfcapd exited: $(cat "$dir.log")"
        sleep 0.1
    done
    die "nfcapd did not bind port $NFCAPD_PORT"
}

# stop_nfcapd: nfcapd writes its file on SIGTERM but does not drain the socket first: wait
# (up to NFCAPD_DRAIN_TENTHS tenths of a second) until the receive queue is empty so no
# datagram is lost to the shutdown.
NFCAPD_DRAIN_TENTHS=100
stop_nfcapd() {
    local i q
    for ((i = 0; i < NFCAPD_DRAIN_TENTHS; i++)); do
        q=$(ss -Hlun "sport = :$NFCAPD_PORT" | awk '{ print $2 }')
        [[ $q == 0 ]] && break
        sleep 0.1
    done
    sleep 0.3
    kill -TERM "$NFCAPD_PID"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$NFCAPD_PID" 2>/dev/null || break
        sleep 0.1
    done
    wait "$NFCAPD_PID" || true
    forget_pid "$NFCAPD_PID"
}
