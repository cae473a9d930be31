#!/usr/bin/env bash
# Benchmark, not a ctest: `nflowd --read` against `softflowd -r` on the same generated trace
# (Ethernet, snaplen 128), whole processes, runs interleaved, each exporting NetFlow v5 to
# its own nfcapd. Prints packets/s of each, the ratio, checks that both collectors hold the
# same flows/packets/bytes as the ground truth, then measures nflowd's (and softflowd's)
# peak memory per active flow with 1M+ concurrent flows.
#
# usage: read_vs_softflowd.sh NFLOWD GEN_TRACE
# env:   RUNS (3), FLOWS (160000), PACKETS (2000000), MEM_FLOWS (1100000),
#        MEM_PACKETS (2500000), NFLOWD_ARGS (extra nflowd options, default "--export_rate 0":
#        softflowd does not pace its export and both collectors here have 16 MiB buffers, so
#        the comparison is engine against engine; NFLOWD_ARGS= measures nflowd's default
#        pace of 50 MB/s too), KEEP=1 keeps the files
set -euo pipefail

NFLOWD=$(realpath "${1:?usage: read_vs_softflowd.sh NFLOWD GEN_TRACE}")
GEN=$(realpath "${2:?usage: read_vs_softflowd.sh NFLOWD GEN_TRACE}")
RUNS=${RUNS:-3}
FLOWS=${FLOWS:-160000}
PACKETS=${PACKETS:-2000000}
MEM_FLOWS=${MEM_FLOWS:-1100000}
MEM_PACKETS=${MEM_PACKETS:-2500000}
read -r -a EXTRA <<<"${NFLOWD_ARGS---export_rate 0}"

for tool in softflowd nfcapd nfdump python3 ss timeout /usr/bin/time; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool" >&2
        exit 1
    }
done

# shellcheck source=../integration/collector_lib.sh
source "$(dirname "$0")/../integration/collector_lib.sh"
collector_setup nflowd_bench
NFCAPD_DRAIN_TENTHS=200 # a whole benchmark trace's export may still be queued

# run_exporter PROG TRACE DEST OUTPREFIX: one whole process; leaves wall ns, CPU s and max
# RSS KB in OUTPREFIX.{wall,time}.
run_exporter() {
    local prog=$1 trace=$2 dest=$3 out=$4 t0 t1
    shift 4
    local cmd
    if [[ $prog == nflowd ]]; then
        cmd=("$NFLOWD" --read "$trace" --destination "$dest" "${EXTRA[@]+"${EXTRA[@]}"}" "$@")
    else
        # -c none: no control socket; -p: keep the pidfile out of /var/run.
        cmd=(softflowd -r "$trace" -n "$dest" -m 2000000 -c none -v 5 -p "$out.pid" "$@")
    fi
    t0=$(date +%s%N)
    timeout 600 /usr/bin/time -f '%U %S %M' -o "$out.time" "${cmd[@]}" >"$out.log" 2>&1 ||
        die "$prog failed: $(tail -5 "$out.log")"
    t1=$(date +%s%N)
    echo $((t1 - t0)) >"$out.wall"
}

echo "== generating the trace: $FLOWS flows, $PACKETS packets, en10mb, snaplen 128"
# No Ethernet padding: softflowd counts it into octets (+6 bytes per minimum-size frame), which
# would make the totals differ for a reason that is not the point of this comparison.
"$GEN" --flows "$FLOWS" --packets "$PACKETS" --seed 42 --linktype en10mb --snaplen 128 \
    --eth-pad 0 --out "$WORK/bench.pcap" --truth "$WORK/bench.csv" >"$WORK/bench.gen"
FRAMES=$(field "$WORK/bench.gen" frames)
WANT="$(field "$WORK/bench.gen" flows) $(field "$WORK/bench.gen" ipv4_packets) $(field "$WORK/bench.gen" bytes)"
echo "   $FRAMES frames, IPv4 truth (flows packets bytes): $WANT," \
    "IPv6 packets: $(field "$WORK/bench.gen" ipv6_packets)"
cat "$WORK/bench.pcap" >/dev/null # both read it from the page cache

declare -A WALLS=([nflowd]="" [softflowd]="") CPUS=([nflowd]="" [softflowd]="")
identical=yes
for ((run = 1; run <= RUNS; run++)); do
    # Alternate who goes first so neither always gets the warmer machine.
    order=(nflowd softflowd)
    ((run % 2 == 0)) && order=(softflowd nflowd)
    for prog in "${order[@]}"; do
        dir=$WORK/run$run.$prog
        start_nfcapd "$dir"
        run_exporter "$prog" "$WORK/bench.pcap" "127.0.0.1:$NFCAPD_PORT" "$dir"
        stop_nfcapd
        nfdump -R "$dir" -I >"$dir.info"
        got="$(field "$dir.info" Flows) $(field "$dir.info" Packets) $(field "$dir.info" Bytes)"
        seqf=$(field "$dir.info" "Sequence failures")
        wall=$(cat "$dir.wall")
        read -r user sys _ <"$dir.time"
        cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
        WALLS[$prog]+="$wall "
        CPUS[$prog]+="$cpu "
        printf '   run %d %-9s %6.3f s wall %5.2f s cpu %9.0f pkt/s  collector: %s, seq failures %s\n' \
            "$run" "$prog" "$(awk -v w="$wall" 'BEGIN { print w / 1e9 }')" "$cpu" \
            "$(awk -v w="$wall" -v n="$FRAMES" 'BEGIN { print n / (w / 1e9) }')" "$got" "$seqf"
        [[ $got == "$WANT" && $seqf == 0 ]] || identical=no
    done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
nf_wall=$(median <<<"${WALLS[nflowd]}")
sf_wall=$(median <<<"${WALLS[softflowd]}")
nf_cpu=$(median <<<"${CPUS[nflowd]}")
sf_cpu=$(median <<<"${CPUS[softflowd]}")
awk -v n="$FRAMES" -v a="$nf_wall" -v b="$sf_wall" -v ca="$nf_cpu" -v cb="$sf_cpu" 'BEGIN {
    printf "nflowd    median: %10.0f packets/s wall, %10.0f packets per cpu-second\n", n / (a / 1e9), n / ca
    printf "softflowd median: %10.0f packets/s wall, %10.0f packets per cpu-second\n", n / (b / 1e9), n / cb
    printf "ratio nflowd/softflowd: %.2f wall, %.2f per cpu-second\n", b / a, cb / ca
}'
echo "totals identical to the truth at both collectors (flows packets bytes = $WANT): $identical"

echo "== memory: $MEM_FLOWS concurrent flows, timeouts longer than the trace"
"$GEN" --flows "$MEM_FLOWS" --packets "$MEM_PACKETS" --seed 5 --ipv6-share 0 --eth-pad 0 \
    --out "$WORK/mem.pcap" --truth "$WORK/mem.csv" >"$WORK/mem.gen"
"$GEN" --flows 1000 --packets 3000 --seed 5 --ipv6-share 0 --eth-pad 0 \
    --out "$WORK/base.pcap" --truth "$WORK/base.csv" >"$WORK/base.gen"
# A bound socket nobody reads: datagrams are dropped quietly, no ICMP errors back.
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True); time.sleep(3600)' >"$WORK/sink.port" &
SINK=$!
PIDS+=("$SINK")
for ((i = 0; i < 100; i++)); do
    [[ -s $WORK/sink.port ]] && break
    sleep 0.05
done
SINK_PORT=$(cat "$WORK/sink.port")

run_exporter nflowd "$WORK/base.pcap" "127.0.0.1:$SINK_PORT" "$WORK/mem_base.nflowd" \
    --inactive_timeout 3600 --active_timeout 3600
run_exporter nflowd "$WORK/mem.pcap" "127.0.0.1:$SINK_PORT" "$WORK/mem.nflowd" \
    --inactive_timeout 3600 --active_timeout 3600
run_exporter softflowd "$WORK/base.pcap" "127.0.0.1:$SINK_PORT" "$WORK/mem_base.softflowd"
run_exporter softflowd "$WORK/mem.pcap" "127.0.0.1:$SINK_PORT" "$WORK/mem.softflowd"
peak=$(field "$WORK/mem.nflowd.log" peak_flows)
sf_flows=$(sed -n 's/^Flows exported: \([0-9]*\).*/\1/p' "$WORK/mem.softflowd.log")
read -r _ _ nf_base <"$WORK/mem_base.nflowd.time"
read -r _ _ nf_rss <"$WORK/mem.nflowd.time"
read -r _ _ sf_base <"$WORK/mem_base.softflowd.time"
read -r _ _ sf_rss <"$WORK/mem.softflowd.time"
awk -v f="$peak" -v r="$nf_rss" -v b="$nf_base" 'BEGIN {
    printf "nflowd:    peak RSS %d KB at %d active flows, baseline %d KB: %.0f bytes per flow\n",
        r, f, b, (r - b) * 1024 / f }'
awk -v f="$sf_flows" -v r="$sf_rss" -v b="$sf_base" 'BEGIN {
    printf "softflowd: peak RSS %d KB at %d flows, baseline %d KB: %.0f bytes per flow\n",
        r, f, b, (r - b) * 1024 / f }'
kill -TERM "$SINK"
wait "$SINK" || true
forget_pid "$SINK"
