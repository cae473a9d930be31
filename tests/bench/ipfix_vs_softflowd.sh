#!/usr/bin/env bash
# Benchmark, not a ctest (issue 12): whole-process wall time of `nflowd --read --protocol 10`
# against `softflowd -r TRACE -v 10 -m 2000000 -c none` and against `nflowd --read --protocol
# 5`, all with their default options (nflowd paces its export at its default byte rate,
# softflowd does not pace), on one generated IPv4+IPv6 trace (Ethernet, snaplen 128). Runs
# interleaved, each exporter to its own nfcapd (16 MiB buffer, so the collector is never the
# limit); prints each run, the medians, the two ratios, and what each collector holds against
# the trace's truth (nfdump flows/packets/bytes and sequence failures).
#
# usage: ipfix_vs_softflowd.sh NFLOWD GEN_TRACE
# env:   RUNS (5), FLOWS (160000), PACKETS (2000000), IPV6_SHARE (0.2),
#        NFLOWD_ARGS (extra options for both nflowd runs, e.g. "--export_rate 0"), KEEP=1
set -euo pipefail

NFLOWD=$(realpath "${1:?usage: ipfix_vs_softflowd.sh NFLOWD GEN_TRACE}")
GEN=$(realpath "${2:?usage: ipfix_vs_softflowd.sh NFLOWD GEN_TRACE}")
RUNS=${RUNS:-5}
read -r -a EXTRA <<<"${NFLOWD_ARGS:-}"

for tool in softflowd nfcapd nfdump ss timeout; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool" >&2
        exit 1
    }
done

# shellcheck source=../integration/collector_lib.sh
source "$(dirname "$0")/../integration/collector_lib.sh"
collector_setup nflowd_bench12
NFCAPD_DRAIN_TENTHS=200

echo "== trace: ${FLOWS:-160000} flows, ${PACKETS:-2000000} packets, IPv6 share ${IPV6_SHARE:-0.2}"
"$GEN" --flows "${FLOWS:-160000}" --packets "${PACKETS:-2000000}" --seed 42 --snaplen 128 \
    --ipv6-share "${IPV6_SHARE:-0.2}" --eth-pad 0 --out "$WORK/t.pcap" --truth "$WORK/t.csv" \
    >"$WORK/t.gen"
FRAMES=$(field "$WORK/t.gen" frames)
v4="$(field "$WORK/t.gen" flows) $(field "$WORK/t.gen" ipv4_packets) $(field "$WORK/t.gen" bytes)"
read -r f4 p4 b4 <<<"$v4"
ALL="$((f4 + $(field "$WORK/t.gen" ipv6_flows))) $((p4 + $(field "$WORK/t.gen" ipv6_packets)))"
ALL+=" $((b4 + $(field "$WORK/t.gen" ipv6_bytes)))"
echo "   truth (flows packets bytes): IPv4 $v4; IPv4+IPv6 $ALL"
cat "$WORK/t.pcap" >/dev/null # everyone reads it from the page cache

declare -A WALLS=() WANT=([p10]="$ALL" [p5]="$v4" [softflowd]="$ALL")
run() { # run NAME: one whole process into a fresh nfcapd; prints the run's line
    local name=$1 dir=$WORK/$1.$2 t0 t1 cmd
    case $name in
    p10 | p5) cmd=("$NFLOWD" --read "$WORK/t.pcap" --protocol "${name#p}" "${EXTRA[@]+"${EXTRA[@]}"}") ;;
    softflowd) cmd=(softflowd -r "$WORK/t.pcap" -v 10 -m 2000000 -c none -p "$dir.pid") ;;
    esac
    start_nfcapd "$dir"
    if [[ $name == softflowd ]]; then cmd+=(-n "127.0.0.1:$NFCAPD_PORT"); else
        cmd+=(--destination "127.0.0.1:$NFCAPD_PORT"); fi
    t0=$(date +%s%N)
    timeout 300 "${cmd[@]}" >"$dir.log" 2>&1 || die "$name failed: $(tail -3 "$dir.log")"
    t1=$(date +%s%N)
    stop_nfcapd
    nfdump -R "$dir" -I >"$dir.info"
    WALLS[$name]+="$(((t1 - t0) / 1000)) "
    printf '   run %d %-9s %6.3f s  collector: %s %s %s (want %s), sequence failures %s\n' "$2" \
        "$name" "$(awk -v u=$(((t1 - t0) / 1000)) 'BEGIN { print u / 1e6 }')" \
        "$(field "$dir.info" Flows)" "$(field "$dir.info" Packets)" "$(field "$dir.info" Bytes)" \
        "${WANT[$name]}" "$(field "$dir.info" "Sequence failures")"
}

for ((r = 1; r <= RUNS; r++)); do
    order=(p10 p5 softflowd)
    ((r % 3 == 2)) && order=(softflowd p10 p5)
    ((r % 3 == 0)) && order=(p5 softflowd p10)
    for name in "${order[@]}"; do run "$name" "$r"; done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
p10=$(median <<<"${WALLS[p10]}")
p5=$(median <<<"${WALLS[p5]}")
sf=$(median <<<"${WALLS[softflowd]}")
awk -v a="$p10" -v b="$p5" -v s="$sf" -v n="$FRAMES" 'BEGIN {
    printf "median wall: nflowd --protocol 10 %.3f s (%.2f M packets/s), --protocol 5 %.3f s, softflowd -v 10 %.3f s\n",
        a / 1e6, n / a, b / 1e6, s / 1e6
    printf "nflowd -p10 / softflowd -v10 = %.2f (bound 0.33); nflowd -p10 / -p5 = %.2f (bound 1.10)\n", a / s, a / b
}'
