#!/usr/bin/env bash
# Benchmark (figures, not a test): CPU per packet with NAT annotation on and off (issue 13),
# on a masquerading router, against the null NFLOG consumer.
#
# As live_cpu.sh (whose network, trace and measurement this follows): client -- router --
# server namespaces, every forwarded packet logged by
#     iptables -A FORWARD -j NFLOG --nflog-group G --nflog-size 128 --nflog-threshold 64
# and here also masqueraded (-t nat POSTROUTING -o <server side> -j MASQUERADE), so every
# flow of the gen_trace pcap is a NATed connection. The conntrack table is flushed before
# each run, so each run makes every connection anew (conntrack NEW events). Consumers:
#   probe    tests/tools/nflog_probe: receives and counts (the floor)
#   nat_off  nflowd --protocol 10 --conntrack no
#   nat_on   nflowd --protocol 10 (NAT annotation from conntrack: the default)
# CPU = utime + stime of the whole process (the conntrack thread included) from just before
# the replay until the flows left the cache by inactive timeout. Also per nat_on run: the
# conntrack NEW events it read, the flows it annotated, and its CPU less nat_off's per event.
#
# usage: nat_cpu.sh PATH/TO/nflowd PATH/TO/nflog_probe PATH/TO/gen_trace
# env:   RUNS (3) rounds; PACKETS (100000) packets in the trace; LOOPS (10) replays per run
set -euo pipefail

NFLOWD=${1:?usage: nat_cpu.sh NFLOWD NFLOG_PROBE GEN_TRACE}
PROBE=${2:?usage: nat_cpu.sh NFLOWD NFLOG_PROBE GEN_TRACE}
GEN_TRACE=${3:?usage: nat_cpu.sh NFLOWD NFLOG_PROBE GEN_TRACE}
RUNS=${RUNS:-3}
PACKETS=${PACKETS:-100000}
LOOPS=${LOOPS:-10}
CONSUMERS="probe nat_off nat_on"
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/netns_lib.sh
source "$HERE/../integration/netns_lib.sh"
# shellcheck source=../integration/check_lib.sh
source "$HERE/../integration/check_lib.sh"
# shellcheck source=bench_lib.sh
source "$HERE/bench_lib.sh"
netns_require
for tool in tcpreplay tcprewrite nfcapd nfdump conntrack python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

bench_network
in_router iptables -t nat -A POSTROUTING -o "$IF_ROUTER_S" -j MASQUERADE
bench_trace "$GEN_TRACE" "$PACKETS"

stat_of() { # stat_of LINE NAME FILE: the last value of NAME on stats line LINE in FILE
    grep "^nflowd: .*$1: \|^$1: " "$3" | tail -1 | grep -o "$2 [0-9]*" | head -1 | awk '{ print $NF }'
}

# run_one CONSUMER RUN: one replay with CONSUMER in the router; sets R_* result variables.
run_one() {
    local who=$1 run=$2 dir="$WORK/$1.$2" pid
    in_router iptables -Z FORWARD
    in_router conntrack -F >/dev/null 2>&1 || true
    R_RECV=- R_ACC=- R_LOST=- R_EVENTS=- R_FOUND=-
    case $who in
    probe)
        netns_bg "$NS_ROUTER" "$dir.out" "$dir.err" "$PROBE" --group "$GROUP" --duration 600 \
            --rcvbuf 67108864 --qthreshold 64
        pid=$NETNS_LAST_PID
        wait_for "$dir.out" '^ready'
        ;;
    nat_off | nat_on)
        netns_start_nfcapd "$NS_ROUTER" "$dir" "$PORT" "$dir.log" ||
            { echo "nfcapd did not start" >&2; exit 1; }
        local ct=yes
        [[ $who == nat_off ]] && ct=no
        netns_bg "$NS_ROUTER" "$dir.out" "$dir.out" "$NFLOWD" --group "$GROUP" --debug 1 \
            --inactive_timeout 2 --qthreshold 64 --destination "127.0.0.1:$PORT" --protocol 10 \
            --conntrack "$ct"
        pid=$NETNS_LAST_PID
        wait_for "$dir.out" 'started'
        ;;
    esac
    local c0 c1 t0 t1
    c0=$(cpu_ticks "$pid")
    t0=$(date +%s.%N)
    in_client timeout 120 tcpreplay -i "$IF_CLIENT" --topspeed --preload-pcap --loop "$LOOPS" \
        "$WORK/replay.pcap" >"$dir.replay" 2>&1
    t1=$(date +%s.%N)
    R_PPS=$(grep -o '[0-9.]* pps' "$dir.replay" | head -1 | cut -d' ' -f1)
    sleep 5
    [[ $who != probe ]] && { kill -USR1 "$pid"; sleep 0.5; }
    c1=$(cpu_ticks "$pid")
    kill -0 "$pid" 2>/dev/null || echo "!! $who died during run $run" >&2
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
    [[ $who != probe ]] && netns_stop "$NFCAPD_PID" || true
    R_RULE=$(rule_packets)
    R_CPU=$(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
    if [[ $who == probe ]]; then
        R_RECV=$(grep -o 'packets=[0-9]*' "$dir.out" | cut -d= -f2)
        R_ACC=$R_RECV
        R_LOST=$(grep -o 'lost=[0-9]*' "$dir.out" | cut -d= -f2)
    else
        R_RECV=$(grep "group $GROUP: received" "$dir.out" | tail -1 | grep -o 'received [0-9]*' | cut -d' ' -f2)
        R_LOST=$(grep "group $GROUP: received" "$dir.out" | tail -1 | grep -o 'lost [0-9]*' | cut -d' ' -f2)
        R_ACC=$(nfdump_packets "$dir")
        R_EVENTS=$(stat_of conntrack new "$dir.out")
        R_FOUND=$(stat_of nat found "$dir.out")
    fi
    R_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
}

# ---------------------------------------------------------------- live runs
echo "trace: $PACKETS packets, $((PACKETS / 10)) flows (NATed connections), replayed $LOOPS times per run"
printf '%-4s %-8s %9s %9s %9s %7s %7s %7s %7s %10s %6s %8s %8s\n' run consumer crossed received \
    accounted lost replay_s kpps cpu_s "us/packet" ratio ct_new annotated
declare -A PER_PACKET
for ((run = 1; run <= RUNS; run++)); do
    probe_pp=""
    for who in $CONSUMERS; do
        run_one "$who" "$run"
        pp=$(awk -v c="$R_CPU" -v n="$R_RECV" 'BEGIN { printf "%.3f", (n > 0 ? c / n * 1e6 : 0) }')
        [[ $who == probe ]] && probe_pp=$pp
        ratio=$(awk -v a="$pp" -v b="$probe_pp" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        PER_PACKET[$who]+="$pp "
        printf '%-4s %-8s %9s %9s %9s %7s %7s %7s %7s %10s %6s %8s %8s\n' "$run" "$who" "$R_RULE" \
            "$R_RECV" "$R_ACC" "$R_LOST" "$R_SECS" \
            "$(awk -v p="${R_PPS:-0}" 'BEGIN { printf "%.0f", p / 1000 }')" "$R_CPU" "$pp" "$ratio" \
            "$R_EVENTS" "$R_FOUND"
    done
done
echo "median CPU per received packet:"
probe_med=""
for who in $CONSUMERS; do
    med=$(tr ' ' '\n' <<<"${PER_PACKET[$who]}" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    [[ $who == probe ]] && probe_med=$med
    echo "  $who: $med us/packet$(awk -v a="$med" -v b="$probe_med" 'BEGIN { if (b > 0) printf " (%.2fx the probe)", a / b }')"
done
