#!/usr/bin/env bash
# Benchmark (figures, not a test): what a change to the per-packet path costs `nflowd --read`,
# two builds side by side (written for the keyed flow hash, issue 10).
#
#   1. packets/s and CPU seconds (user + sys) on a gen_trace pcap of READ_PACKETS packets
#      (160 k flows, 128-byte snaplen, no Ethernet padding), RUNS interleaved runs of each
#      build, which goes first alternating; medians and every run printed.
#   2. instructions per thread under valgrind --tool=callgrind on a CG_PACKETS pcap (perf
#      counters are not always available in VMs): the reader (thread 1), each worker, the
#      exporter; per packet and in total.
# Both export to a bound UDP socket nobody reads, --export_rate 0 (no pacing).
#
# usage: hash_cost.sh NFLOWD_BEFORE NFLOWD_AFTER GEN_TRACE
# env:   RUNS (11), THREADS (2), READ_PACKETS (2000000), CG_PACKETS (300000), CALLGRIND (1)
set -euo pipefail

BEFORE=$(realpath "${1:?usage: hash_cost.sh NFLOWD_BEFORE NFLOWD_AFTER GEN_TRACE}")
AFTER=$(realpath "${2:?usage: hash_cost.sh NFLOWD_BEFORE NFLOWD_AFTER GEN_TRACE}")
GEN=$(realpath "${3:?usage: hash_cost.sh NFLOWD_BEFORE NFLOWD_AFTER GEN_TRACE}")
RUNS=${RUNS:-11}
THREADS=${THREADS:-2}
READ_PACKETS=${READ_PACKETS:-2000000}
CG_PACKETS=${CG_PACKETS:-300000}

WORK=$(mktemp -d -t nflowd_hash_cost.XXXXXX)
SINK=""
cleanup() {
    if [[ -n $SINK ]]; then kill "$SINK" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

gen() { "$GEN" --flows "$2" --packets "$3" --seed 42 --linktype en10mb --snaplen 128 \
    --eth-pad 0 --out "$WORK/$1.pcap" --truth "$WORK/$1.csv" >/dev/null; }
gen big 160000 "$READ_PACKETS"
gen small $((CG_PACKETS * 160000 / READ_PACKETS)) "$CG_PACKETS"

python3 -c 'import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True); time.sleep(3600)' >"$WORK/sink.port" &
SINK=$!
for ((i = 0; i < 100; i++)); do
    [[ -s $WORK/sink.port ]] && break
    sleep 0.05
done
read_opts=(--destination "127.0.0.1:$(cat "$WORK/sink.port")" --export_rate 0 --threads "$THREADS")

one() { # one NAME BIN: a --read of big.pcap; appends "NAME pps cpu flows" to runs
    local TIMEFORMAT='%U %S'
    { time "$2" --read "$WORK/big.pcap" "${read_opts[@]}" >"$WORK/out" 2>&1; } 2>"$WORK/time"
    echo "$1 $(sed -n 's/^packets_per_second: //p' "$WORK/out") \
$(awk '{ print $1 + $2 }' "$WORK/time") $(sed -n 's/^flows: //p' "$WORK/out")" >>"$WORK/runs"
}
for ((n = 1; n <= RUNS; n++)); do
    if ((n % 2)); then one before "$BEFORE"; one after "$AFTER"; else one after "$AFTER"; one before "$BEFORE"; fi
done
echo "== --read of $READ_PACKETS packets, --threads $THREADS, $RUNS runs each (median)"
for name in before after; do
    awk -v n="$name" '$1 == n { p[++k] = $2; c[k] = $3; f = $4; all = all " " $2 }
        END { asort_p(p, k); asort_p(c, k); m = int((k + 1) / 2)
              printf "%-6s %9d packets/s  cpu %.3f s  flows %s  (all:%s)\n", n, p[m], c[m], f, all }
        function asort_p(a, k,   i, j, t) { for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t } }' "$WORK/runs"
done

[[ ${CALLGRIND:-1} == 1 ]] && command -v valgrind >/dev/null || exit 0
echo "== callgrind, --read of $CG_PACKETS packets, --threads $THREADS: instructions per thread"
for name in before after; do
    bin=$BEFORE
    [[ $name == after ]] && bin=$AFTER
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$WORK/cg.$name" \
        "$bin" --read "$WORK/small.pcap" "${read_opts[@]}" >/dev/null 2>&1
    for f in "$WORK/cg.$name"-*; do sed -n 's/^summary: //p' "$f"; done |
        awk -v n="$name" -v p="$CG_PACKETS" '{ t += $1; s = s sprintf(" %.0f", $1 / p) }
            END { printf "%-6s per packet by thread:%s  total %d (%.0f per packet)\n", n, s, t, t / p }'
done
