#!/usr/bin/env bash
# End-to-end proof of NetFlow v9 and IPFIX export: a generated IPv4+IPv6 trace goes through
# `nflowd --read --protocol 9|10` to three independent collectors, each compared with
# gen_trace's ground truth:
#   nfcapd/nfdump: totals and every flow (5-tuple, TOS, interfaces, flags, first/last to the
#     millisecond) exact, no sequence failure;
#   tshark: decodes every datagram nflowd sent, nothing malformed, no warning (an unexpected
#     IPFIX sequence is one), and its packet and byte totals are the trace's;
#   pmacct's nfacctd: accepts the stream (nothing malformed) and its totals per key agree.
# Then one daemon feeds a v5 and an IPFIX collector at once (--destination A@5,B@10): the v5
# one gets every IPv4 flow (the IPv6 ones counted skipped), the IPFIX one every flow.
#
# usage: ipfix_e2e.sh NFLOWD GEN_TRACE   (exit 77 = a required tool is missing: skipped)
# KEEP=1 keeps the work directory for inspection.
set -euo pipefail

NFLOWD=$(realpath "${1:?usage: ipfix_e2e.sh NFLOWD GEN_TRACE}")
GEN=$(realpath "${2:?usage: ipfix_e2e.sh NFLOWD GEN_TRACE}")
HERE=$(dirname "$(realpath "$0")")

for tool in nfcapd nfdump tshark nfacctd python3 ss timeout; do
    command -v "$tool" >/dev/null || {
        echo "SKIP: $tool is not installed"
        exit 77
    }
done

# shellcheck source=collector_lib.sh
source "$HERE/collector_lib.sh"
collector_setup nflowd_ipfix

timeout 120 "$GEN" --linktype en10mb --flows 20000 --packets 300000 --seed 21 --ipv6-share 0.2 \
    --frag-share 0.03 --vlan-share 0.1 --out "$WORK/trace.pcap" --truth "$WORK/truth4.csv" \
    --truth6 "$WORK/truth6.csv" >"$WORK/gen.txt"
G=$WORK/gen.txt
{ cat "$WORK/truth4.csv"; tail -n +2 "$WORK/truth6.csv"; } >"$WORK/truth.csv"
# What a v9/IPFIX collector must hold (every flow), and a v5 one (the IPv4 flows).
ALL="$(($(field "$G" flows) + $(field "$G" ipv6_flows))) \
$(($(field "$G" ipv4_packets) + $(field "$G" ipv6_packets))) \
$(($(field "$G" bytes) + $(field "$G" ipv6_bytes))) $WORK/truth.csv"
V4="$(field "$G" flows) $(field "$G" ipv4_packets) $(field "$G" bytes) $WORK/truth4.csv"
common=(--read "$WORK/trace.pcap" --inactive_timeout 600 --active_timeout 3600 --threads 2)

# wait_file FILE: a helper writes FILE once it listens (at most 5 s).
wait_file() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s $1 ]] && return 0
        sleep 0.05
    done
    die "$1 never appeared"
}

# check_nfdump NAME DIR FLOWS PACKETS BYTES TRUTH: nfcapd's file in DIR against the truth.
check_nfdump() {
    local name=$1 dir=$2 flows=$3 packets=$4 bytes=$5 truth=$6
    nfdump -R "$dir" -I >"$dir.info"
    [[ $(field "$dir.info" "Sequence failures") == 0 ]] ||
        die "$name: nfcapd saw sequence failures: $(cat "$dir.info")"
    [[ $(field "$dir.info" Flows) == "$flows" ]] ||
        die "$name: nfcapd stored $(field "$dir.info" Flows) flows, want $flows"
    [[ $(field "$dir.info" Packets) == "$packets" ]] ||
        die "$name: nfcapd packets $(field "$dir.info" Packets), want $packets"
    [[ $(field "$dir.info" Bytes) == "$bytes" ]] ||
        die "$name: nfcapd bytes $(field "$dir.info" Bytes), want $bytes"
    # Not %tsr/%ter: nfdump 1.7.1 prints %ter's milliseconds wrong.
    TZ=UTC nfdump -R "$dir" -q -N -6 \
        -o 'fmt:%ts,%te,%sa,%da,%sp,%dp,%pr,%tos,%pkt,%byt,%flg,%in,%out' >"$dir.dump"
    python3 "$HERE/nfdump_truth.py" "$truth" "$dir.dump" exact ||
        die "$name: nfdump's flows differ from the truth"
}

# check_nflowd NAME SUMMARY: nflowd's own --read summary: every flow, IPv6 ones included.
check_nflowd() {
    local name=$1 s=$2 flows
    read -r flows _ <<<"$ALL"
    [[ $(field "$s" flows) == "$flows" ]] ||
        die "$name: nflowd exported $(field "$s" flows) flows, want $flows"
    [[ $(field "$s" lost_flows) == 0 ]] || die "$name: nflowd lost flows"
}

# nfcapd/nfdump: every flow, no sequence failure.
check_nfcapd() {
    local p=$1 name=nfcapd_v$1
    echo "== $name"
    start_nfcapd "$WORK/$name"
    timeout 120 "$NFLOWD" "${common[@]}" --protocol "$p" \
        --destination "127.0.0.1:$NFCAPD_PORT" >"$WORK/$name.txt" || die "$name: nflowd failed"
    stop_nfcapd
    check_nflowd "$name" "$WORK/$name.txt"
    # shellcheck disable=SC2086 # flows packets bytes truth
    check_nfdump "$name" "$WORK/$name" $ALL
    echo "   $(field "$WORK/$name.txt" flows) flows, sequence failures 0, every flow exact"
}

# tshark: every datagram decoded, nothing malformed, no warning, the trace's totals.
check_tshark() {
    local p=$1 name=tshark_v$1 rx port
    echo "== $name"
    python3 "$HERE/udp_capture.py" "$WORK/$name.port" "$WORK/$name.pcap" 3 &
    rx=$!
    PIDS+=("$rx")
    wait_file "$WORK/$name.port"
    port=$(cat "$WORK/$name.port")
    timeout 120 "$NFLOWD" "${common[@]}" --protocol "$p" --destination "127.0.0.1:$port" \
        >"$WORK/$name.txt" || die "$name: nflowd failed"
    wait "$rx" || die "$name: receiver failed"
    forget_pid "$rx"
    local t=(tshark -r "$WORK/$name.pcap" -d "udp.port==$port,cflow")
    local sent frames bad
    sent=$(field "$WORK/$name.txt" datagrams)
    frames=$("${t[@]}" -Y "cflow.version == $p" -T fields -e frame.number 2>/dev/null | wc -l)
    [[ $frames == "$sent" ]] || die "$name: tshark decoded $frames datagrams, nflowd sent $sent"
    bad=$("${t[@]}" -Y '_ws.malformed || _ws.expert.severity >= 4194304' 2>/dev/null)
    [[ -z $bad ]] || die "$name: tshark reports malformed or warnings: $bad"
    "${t[@]}" -T fields -e cflow.packets -e cflow.octets 2>/dev/null | python3 -c '
import sys
n = p = o = 0
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    if a:
        n += len(a.split(","))
        p += sum(map(int, a.split(",")))
        o += sum(map(int, b.split(",")))
print(n, p, o)' >"$WORK/$name.totals"
    local want=${ALL% *}
    [[ $(cat "$WORK/$name.totals") == "$want" ]] ||
        die "$name: tshark flows/packets/bytes $(cat "$WORK/$name.totals"), want $want"
    echo "   $frames datagrams decoded, none malformed, no warning; flows/packets/bytes $want"
}

# nfacctd: the stream accepted, nothing malformed, totals per key agree.
check_nfacctd() {
    local p=$1 name=nfacctd_v$1 port pid
    echo "== $name"
    port=$(free_udp_port)
    cat >"$WORK/$name.conf" <<EOF
daemonize: false
nfacctd_ip: 127.0.0.1
nfacctd_port: $port
plugins: print[all]
aggregate[all]: src_host,dst_host,src_port,dst_port,proto,tos
print_output[all]: csv
print_output_file[all]: $WORK/$name.csv
print_refresh_time[all]: 3600
nfacctd_pipe_size: 16777216
plugin_pipe_size: 16777216
plugin_buffer_size: 65536
EOF
    nfacctd -f "$WORK/$name.conf" >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -n $(ss -Hlun "sport = :$port") ]] && break
        sleep 0.1
    done
    # nfacctd reads with one process and hands records to its plugin through a pipe: on a
    # loaded machine it falls behind a 20,000 datagrams/s burst and the kernel drops what its
    # socket cannot hold (rmem_max caps nfacctd_pipe_size), so the export is paced at 3 MB/s
    # (about 2,000 datagrams/s).
    timeout 120 "$NFLOWD" "${common[@]}" --protocol "$p" --destination "127.0.0.1:$port" \
        --export_rate 3M >"$WORK/$name.txt" || die "$name: nflowd failed"
    for ((i = 0; i < 100; i++)); do # drained
        [[ $(ss -Hlun "sport = :$port" | awk '{ print $2 }') == 0 ]] && break
        sleep 0.1
    done
    sleep 0.5
    kill -INT "$pid" # nfacctd writes its cache at SIGINT (it ignores SIGTERM while running)
    wait "$pid" || true
    forget_pid "$pid"
    local complaints='malformed|^(ERROR|WARN) \('
    ! grep -Eq "$complaints" "$WORK/$name.log" ||
        die "$name: nfacctd complained: $(grep -E "$complaints" "$WORK/$name.log" | head -3)"
    python3 "$HERE/pmacct_totals.py" "$WORK/truth.csv" "$WORK/$name.csv" ||
        die "$name: nfacctd's totals differ"
}

for p in 9 10; do
    check_nfcapd "$p"
    check_tshark "$p"
    check_nfacctd "$p"
done

# One daemon, a v5 and an IPFIX collector: each gets every IPv4 flow in its own version.
echo "== per-destination protocol: @5 and @10"
start_nfcapd "$WORK/mixed5"
v5_pid=$NFCAPD_PID v5_port=$NFCAPD_PORT
start_nfcapd "$WORK/mixed10"
timeout 120 "$NFLOWD" "${common[@]}" \
    --destination "127.0.0.1:$v5_port@5,127.0.0.1:$NFCAPD_PORT@10" >"$WORK/mixed.txt" ||
    die "mixed: nflowd failed"
stop_nfcapd
NFCAPD_PID=$v5_pid NFCAPD_PORT=$v5_port stop_nfcapd
check_nflowd mixed "$WORK/mixed.txt"
# shellcheck disable=SC2086 # flows packets bytes truth
check_nfdump mixed_v5 "$WORK/mixed5" $V4
# shellcheck disable=SC2086
check_nfdump mixed_ipfix "$WORK/mixed10" $ALL
echo "   v5: every IPv4 flow; IPFIX: every flow; no sequence failure"

echo "PASS"
