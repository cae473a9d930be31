#!/usr/bin/env bash
# Hash flooding (issue 10, item 1), as an attacker would try it: flows chosen offline to
# share one bucket of one shard under the old, unkeyed flow hash (collide_trace searches
# them against a frozen copy of it) must cost `nflowd --read` at most 2x an ordinary trace
# of the same packets, flows and options. Against the old hash the colliding trace walks
# one chain of thousands of flows per packet (about 50x); with the keyed hash its flows
# spread like any others. The totals of both runs must be exact.
#
# usage: hash_flood.sh NFLOWD COLLIDE_TRACE    (exit 77 = python3 missing: skipped)
# THREADS, HASHSIZE, FLOWS, PACKETS_PER_FLOW, RUNS and MAX_RATIO change the shape; a failed
# run keeps its work directory. The criterion is CPU time (user + sys of the whole process),
# which other load on the machine barely moves; wall time (the summary's seconds) is shown.
set -euo pipefail

NFLOWD=$(realpath "${1:?usage: hash_flood.sh NFLOWD COLLIDE_TRACE}")
COLLIDE=$(realpath "${2:?usage: hash_flood.sh NFLOWD COLLIDE_TRACE}")
THREADS=${THREADS:-2}
HASHSIZE=${HASHSIZE:-4096}
FLOWS=${FLOWS:-16384}
PACKETS_PER_FLOW=${PACKETS_PER_FLOW:-4}
RUNS=${RUNS:-5}
MAX_RATIO=${MAX_RATIO:-2}

command -v python3 >/dev/null || {
    echo "SKIP: python3 is not installed"
    exit 77
}

# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
SINK=""
# shellcheck disable=SC2317 # called by work_cleanup
stop_sink() { if [[ -n $SINK ]]; then kill "$SINK" 2>/dev/null || true; fi; }
WORK_KEEP_FAILED=1
work_setup stop_sink -t nflowd_flood.XXXXXX

shape=(--threads "$THREADS" --hashsize "$HASHSIZE")
for mode in collide plain; do
    "$COLLIDE" --mode "$mode" --out "$WORK/$mode.pcap" --flows "$FLOWS" \
        --packets-per-flow "$PACKETS_PER_FLOW" "${shape[@]}" >"$WORK/$mode.gen" ||
        die "collide_trace --mode $mode failed"
done
echo "collide_trace: $(grep hash_evaluations "$WORK/collide.gen") to find $FLOWS flows"

# A bound socket nobody reads: the export goes somewhere real, no ICMP errors come back.
python3 -c 'import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True); time.sleep(3600)' >"$WORK/sink.port" &
SINK=$!
for ((i = 0; i < 100; i++)); do
    [[ -s $WORK/sink.port ]] && break
    sleep 0.05
done
[[ -s $WORK/sink.port ]] || die "the UDP sink did not start"
DEST="127.0.0.1:$(cat "$WORK/sink.port")"

field() { sed -n "s/^$2: *\([0-9.]*\).*/\1/p" "$1" | head -n 1; }

# run MODE N: one --read; its summary in WORK/MODE.N.out, user+sys CPU seconds in .cpu.
run() {
    local mode=$1 n=$2
    local TIMEFORMAT='%U %S'
    { time "$NFLOWD" --read "$WORK/$mode.pcap" --destination "$DEST" "${shape[@]}" \
        --export_rate 0 >"$WORK/$mode.$n.out" 2>"$WORK/$mode.$n.err"; } 2>"$WORK/$mode.$n.time" ||
        die "nflowd --read $mode.pcap failed: $(cat "$WORK/$mode.$n.err")"
    awk '{ print $1 + $2 }' "$WORK/$mode.$n.time" >"$WORK/$mode.$n.cpu"
    # Every packet accounted (100 bytes of IP each, collide_trace's), every flow exported.
    local want=$((FLOWS * PACKETS_PER_FLOW)) got
    got="$(field "$WORK/$mode.$n.out" packets) $(field "$WORK/$mode.$n.out" accounted)"
    got+=" $(field "$WORK/$mode.$n.out" octets) $(field "$WORK/$mode.$n.out" flows)"
    got+=" $(field "$WORK/$mode.$n.out" lost_flows)"
    [[ $got == "$want $want $((want * 100)) $FLOWS 0" ]] ||
        fail "$mode run $n: packets accounted octets flows lost_flows = $got," \
            "want $want $want $((want * 100)) $FLOWS 0"
}

# Interleaved, each first in turn, so that the machine's load and a warm cache favour
# neither.
for ((n = 1; n <= RUNS; n++)); do
    if ((n % 2)); then
        run plain "$n"
        run collide "$n"
    else
        run collide "$n"
        run plain "$n"
    fi
done

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for mode in plain collide; do
    for ((n = 1; n <= RUNS; n++)); do field "$WORK/$mode.$n.out" seconds; done | median >"$WORK/$mode.s"
    for ((n = 1; n <= RUNS; n++)); do cat "$WORK/$mode.$n.cpu"; done | median >"$WORK/$mode.c"
done
read -r plain_s <"$WORK/plain.s"
read -r collide_s <"$WORK/collide.s"
read -r plain_c <"$WORK/plain.c"
read -r collide_c <"$WORK/collide.c"
ratio=$(awk -v a="$collide_s" -v b="$plain_s" 'BEGIN { printf "%.2f", a / b }')
cpu_ratio=$(awk -v a="$collide_c" -v b="$plain_c" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 99) }')
echo "median of $RUNS, ${THREADS} threads, hashsize $HASHSIZE, $FLOWS flows x $PACKETS_PER_FLOW packets:"
echo "  plain   ${plain_s} s (cpu ${plain_c} s)"
echo "  collide ${collide_s} s (cpu ${collide_c} s)"
echo "  ratio   cpu ${cpu_ratio} (wall ${ratio}), at most ${MAX_RATIO}"
awk -v r="$cpu_ratio" -v m="$MAX_RATIO" 'BEGIN { exit !(r <= m) }' ||
    fail "colliding flows cost ${cpu_ratio}x the CPU of an ordinary trace (at most ${MAX_RATIO}x)"

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
