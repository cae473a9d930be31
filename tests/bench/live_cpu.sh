#!/usr/bin/env bash
# Benchmark (figures, not a test): CPU per packet of NFLOG consumers at the same load.
#
# A client -- router -- server namespace network (tests/integration/netns_lib.sh); the router
# logs every forwarded packet with
#     iptables -A FORWARD -j NFLOG --nflog-group G --nflog-size 128 --nflog-threshold 64
# A gen_trace pcap (full-size IPv4 packets, thousands of flows) is replayed at top speed by
# tcpreplay on the client's veth, so every consumer sees the same packets. Consumers, run in
# turn and interleaved so that machine noise spreads over all of them:
#   probe   tests/tools/nflog_probe: receives and counts, nothing else (the floor)
#   nflowd  the daemon, exporting v5 to nfcapd
#   uacctd  pmacct's uacctd with the nfprobe plugin exporting v5 to nfcapd
# CPU = utime + stime (/proc/PID/stat, plus child processes for uacctd's plugins) from just
# before the replay until the flows have left the caches by inactive timeout (2 s), so the
# export work is counted and start-up and shutdown are not. Per run it prints: packets that
# crossed the rule, packets the consumer received / accounted / reported lost, CPU seconds,
# CPU per received packet and its ratio to the probe's in the same round.
# Then `nflowd --read` packets/s on a large pcap for --threads 1, 2 and 4.
#
# usage: live_cpu.sh PATH/TO/nflowd PATH/TO/nflog_probe PATH/TO/gen_trace
# env:   RUNS (3) rounds; PACKETS (100000) packets in the trace; LOOPS (10) replays per run;
#        READ_PACKETS (2000000) packets in the --read pcap; CONSUMERS ("probe nflowd uacctd")
# Needs root, tcpreplay (apt-get install tcpreplay), nfcapd/nfdump; uacctd is skipped if absent.
set -euo pipefail

NFLOWD=${1:?usage: live_cpu.sh NFLOWD NFLOG_PROBE GEN_TRACE}
PROBE=${2:?usage: live_cpu.sh NFLOWD NFLOG_PROBE GEN_TRACE}
GEN_TRACE=${3:?usage: live_cpu.sh NFLOWD NFLOG_PROBE GEN_TRACE}
RUNS=${RUNS:-3}
PACKETS=${PACKETS:-100000}
LOOPS=${LOOPS:-10}
READ_PACKETS=${READ_PACKETS:-2000000}
CONSUMERS=${CONSUMERS:-probe nflowd uacctd}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/netns_lib.sh
source "$HERE/../integration/netns_lib.sh"
# shellcheck source=../integration/check_lib.sh
source "$HERE/../integration/check_lib.sh"
# shellcheck source=bench_lib.sh
source "$HERE/bench_lib.sh"
netns_require
for tool in tcpreplay tcprewrite nfcapd nfdump python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install tcpreplay nfdump)" >&2; exit 1; }
done
command -v uacctd >/dev/null || { echo "(uacctd not installed: skipped)"; CONSUMERS=${CONSUMERS//uacctd/}; }

bench_network
bench_trace "$GEN_TRACE" "$PACKETS"

# run_one CONSUMER RUN: one replay with CONSUMER in the router; sets R_* result variables.
run_one() {
    local who=$1 run=$2 dir="$WORK/$1.$2" pid stop_sig=TERM
    in_router iptables -Z FORWARD
    R_RECV=- R_ACC=- R_LOST=-
    case $who in
    probe)
        netns_bg "$NS_ROUTER" "$dir.out" "$dir.err" "$PROBE" --group "$GROUP" --duration 600 \
            --rcvbuf 67108864 --qthreshold 64
        pid=$NETNS_LAST_PID
        wait_for "$dir.out" '^ready'
        ;;
    nflowd)
        netns_start_nfcapd "$NS_ROUTER" "$dir" "$PORT" "$dir.log" ||
            { echo "nfcapd did not start" >&2; exit 1; }
        netns_bg "$NS_ROUTER" "$dir.out" "$dir.out" "$NFLOWD" --group "$GROUP" --debug 1 \
            --inactive_timeout 2 --qthreshold 64 --destination "127.0.0.1:$PORT"
        pid=$NETNS_LAST_PID
        wait_for "$dir.out" 'started'
        ;;
    uacctd)
        netns_start_nfcapd "$NS_ROUTER" "$dir" "$PORT" "$dir.log" ||
            { echo "nfcapd did not start" >&2; exit 1; }
        # Buffers as large as nflowd's (64 MiB socket buffer), flows timed out after 2 s,
        # and room for every flow of the trace, so that nothing is evicted early.
        cat >"$dir.conf" <<EOF
daemonize: false
uacctd_group: $GROUP
uacctd_nl_size: 67108864
uacctd_threshold: 64
snaplen: 128
plugins: nfprobe
nfprobe_receiver: 127.0.0.1:$PORT
nfprobe_version: 5
nfprobe_maxflows: 1000000
nfprobe_timeouts: tcp=2:tcp.rst=2:tcp.fin=2:udp=2:icmp=2:general=2:expint=1
plugin_pipe_size: 67108864
plugin_buffer_size: 65536
EOF
        netns_bg "$NS_ROUTER" "$dir.out" "$dir.out" uacctd -f "$dir.conf"
        pid=$NETNS_LAST_PID
        stop_sig=INT # uacctd exits cleanly on SIGINT
        sleep 2      # no readiness line to wait for
        kill -0 "$pid" 2>/dev/null || { cat "$dir.out" >&2; exit 1; }
        ;;
    esac
    local c0 c1 t0 t1
    c0=$(cpu_ticks "$pid")
    t0=$(date +%s.%N)
    in_client timeout 120 tcpreplay -i "$IF_CLIENT" --topspeed --preload-pcap --loop "$LOOPS" \
        "$WORK/replay.pcap" >"$dir.replay" 2>&1
    t1=$(date +%s.%N)
    R_PPS=$(grep -o '[0-9.]* pps' "$dir.replay" | head -1 | cut -d' ' -f1)
    # Inactive timeout 2 s + expiry scans + partial datagrams: every flow exported by now.
    sleep 5
    [[ $who == nflowd ]] && { kill -USR1 "$pid"; sleep 0.5; }
    c1=$(cpu_ticks "$pid")
    kill -0 "$pid" 2>/dev/null || echo "!! $who died during run $run" >&2
    kill "-$stop_sig" "$pid" 2>/dev/null || true
    wait "$pid" || true
    [[ $who != probe ]] && netns_stop "$NFCAPD_PID" || true
    R_RULE=$(rule_packets)
    R_CPU=$(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
    case $who in
    probe)
        R_RECV=$(grep -o 'packets=[0-9]*' "$dir.out" | cut -d= -f2)
        R_ACC=$R_RECV
        R_LOST=$(grep -o 'lost=[0-9]*' "$dir.out" | cut -d= -f2)
        ;;
    nflowd)
        R_RECV=$(grep "group $GROUP: received" "$dir.out" | tail -1 | grep -o 'received [0-9]*' | cut -d' ' -f2)
        R_LOST=$(grep "group $GROUP: received" "$dir.out" | tail -1 | grep -o 'lost [0-9]*' | cut -d' ' -f2)
        R_ACC=$(nfdump_packets "$dir")
        ;;
    uacctd)
        # uacctd counts no NFLOG sequence gaps: what it did not account is shown as lost.
        R_ACC=$(nfdump_packets "$dir")
        R_RECV=$R_ACC
        R_LOST="($((R_RULE - R_ACC)))"
        ;;
    esac
    R_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
}

# ---------------------------------------------------------------- live runs
echo "trace: $PACKETS packets, $((PACKETS / 10)) flows, replayed $LOOPS times per run at top speed"
echo "rule: NFLOG --nflog-size 128 --nflog-threshold 64; CPU from replay start to flows exported"
printf '%-4s %-7s %9s %9s %9s %9s %8s %7s %9s %10s %6s\n' run consumer crossed received \
    accounted lost replay_s kpps cpu_s "us/packet" ratio
declare -A PER_PACKET
for ((run = 1; run <= RUNS; run++)); do
    probe_pp=""
    for who in $CONSUMERS; do
        run_one "$who" "$run"
        pp=$(awk -v c="$R_CPU" -v n="$R_RECV" 'BEGIN { printf "%.3f", (n > 0 ? c / n * 1e6 : 0) }')
        [[ $who == probe ]] && probe_pp=$pp
        ratio=$(awk -v a="$pp" -v b="$probe_pp" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        PER_PACKET[$who]+="$pp "
        printf '%-4s %-7s %9s %9s %9s %9s %8s %7s %9s %10s %6s\n' "$run" "$who" "$R_RULE" "$R_RECV" \
            "$R_ACC" "$R_LOST" "$R_SECS" "$(awk -v p="${R_PPS:-0}" 'BEGIN { printf "%.0f", p / 1000 }')" \
            "$R_CPU" "$pp" "$ratio"
    done
done
echo "median CPU per received packet:"
probe_med=""
for who in $CONSUMERS; do
    med=$(tr ' ' '\n' <<<"${PER_PACKET[$who]}" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    [[ $who == probe ]] && probe_med=$med
    echo "  $who: $med us/packet$(awk -v a="$med" -v b="$probe_med" 'BEGIN { if (b > 0) printf " (%.2fx the probe)", a / b }')"
done

# ---------------------------------------------------------------- offline --read
echo "nflowd --read: $READ_PACKETS packets, $((READ_PACKETS / 10)) flows, snaplen 128, export unpaced"
"$GEN_TRACE" --out "$WORK/read.pcap" --truth "$WORK/read.csv" --packets "$READ_PACKETS" \
    --flows $((READ_PACKETS / 10)) >/dev/null
# A discarding collector, so that exports are neither refused nor decoded at our expense.
netns_bg "$NS_ROUTER" /dev/null "$WORK/sink.err" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.settimeout(1)
end = time.monotonic() + 600
while time.monotonic() < end:
    try: s.recv(65535)
    except socket.timeout: pass' "$PORT"
SINK=$NETNS_LAST_PID
for threads in 1 2 4; do
    rates=()
    for ((run = 1; run <= RUNS; run++)); do
        rates+=("$(in_router "$NFLOWD" --read "$WORK/read.pcap" --threads "$threads" --export_rate 0 \
            --destination "127.0.0.1:$PORT" | awk '/^packets_per_second:/ { print $2 }')")
    done
    med=$(printf '%s\n' "${rates[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    echo "  --threads $threads: ${rates[*]} packets/s (median $med)"
done
netns_stop "$SINK" || true
