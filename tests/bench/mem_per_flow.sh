#!/usr/bin/env bash
# Benchmark, not a ctest: memory per flow of `nflowd --read`, the issue 12 method. Peak RSS
# of a --read of a trace with many concurrent flows minus that of a 16 k-flow trace, divided
# by the difference in peak flows (the summary's peak_flows), least of RUNS runs; timeouts
# longer than the traces so every flow stays in the cache. Once for IPv4, once for IPv6.
#
# usage: mem_per_flow.sh NFLOWD GEN_TRACE
# env:   RUNS (3), FLOWS4 (720000), PACKETS4 (1600000), FLOWS6 (320000), PACKETS6 (800000),
#        IPV6_ARGS (options that make nflowd account IPv6; default "--protocol 10"),
#        IPV4_ARGS (options for the IPv4 run; default none: v5, e.g. "--protocol 10" for the
#        IPv4 flow with its link record),
#        KEEP=1 keeps the traces
set -euo pipefail

NFLOWD=$(realpath "${1:?usage: mem_per_flow.sh NFLOWD GEN_TRACE}")
GEN=$(realpath "${2:?usage: mem_per_flow.sh NFLOWD GEN_TRACE}")
RUNS=${RUNS:-3}
read -r -a IPV6_ARGS <<<"${IPV6_ARGS---protocol 10}"
read -r -a IPV4_ARGS <<<"${IPV4_ARGS-}"
WORK=$(mktemp -d)
trap '[[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK"' EXIT

# peak RSS KB and peak flows of one --read (to a port nobody reads: nothing listens on 9).
measure() {
    local trace=$1
    shift
    /usr/bin/time -f %M -o "$WORK/time" "$NFLOWD" --read "$trace" --destination 127.0.0.1:9 \
        --inactive_timeout 3600 --active_timeout 3600 --export_rate 0 "$@" >"$WORK/out"
    echo "$(cat "$WORK/time") $(sed -n 's/^peak_flows: //p' "$WORK/out")"
}

# per_flow NAME SHARE FLOWS PACKETS [nflowd options]: prints the least bytes per flow.
per_flow() {
    local name=$1 share=$2 flows=$3 packets=$4 best="" i rb fb rs fs v
    shift 4
    "$GEN" --flows "$flows" --packets "$packets" --seed 5 --ipv6-share "$share" --eth-pad 0 \
        --out "$WORK/$name.big.pcap" --truth "$WORK/$name.big.csv" >/dev/null
    "$GEN" --flows 16000 --packets 40000 --seed 5 --ipv6-share "$share" --eth-pad 0 \
        --out "$WORK/$name.small.pcap" --truth "$WORK/$name.small.csv" >/dev/null
    for ((i = 1; i <= RUNS; i++)); do
        read -r rb fb < <(measure "$WORK/$name.big.pcap" "$@")
        read -r rs fs < <(measure "$WORK/$name.small.pcap" "$@")
        v=$(awk -v rb="$rb" -v rs="$rs" -v fb="$fb" -v fs="$fs" \
            'BEGIN { printf "%.1f", (rb - rs) * 1024 / (fb - fs) }')
        echo "   $name run $i: $rb KB at $fb flows, $rs KB at $fs flows: $v bytes per flow"
        if [[ -z $best ]] || awk -v a="$v" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$v; fi
    done
    echo "$name: $best bytes per flow (least of $RUNS)"
}

per_flow ipv4 0 "${FLOWS4:-720000}" "${PACKETS4:-1600000}" "${IPV4_ARGS[@]}"
per_flow ipv6 1 "${FLOWS6:-320000}" "${PACKETS6:-800000}" "${IPV6_ARGS[@]}"
