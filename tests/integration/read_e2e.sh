#!/usr/bin/env bash
# End-to-end proof of `nflowd --read`: generated traces (every link type, TCP/UDP/ICMP,
# fragments, IPv6, VLANs, ARP) go through nflowd to a real nfcapd, and what nfdump reads back
# must equal gen_trace's ground truth key by key. One datagram is then decoded by tshark,
# an independent v5 decoder, and checked field by field.
#
# usage: read_e2e.sh NFLOWD GEN_TRACE     (exit 77 = a required tool is missing: skipped)
# KEEP=1 keeps the work directory for inspection.
set -euo pipefail

NFLOWD=$(realpath "${1:?usage: read_e2e.sh NFLOWD GEN_TRACE}")
GEN=$(realpath "${2:?usage: read_e2e.sh NFLOWD GEN_TRACE}")

for tool in nfcapd nfdump tshark python3 ss timeout; do
    command -v "$tool" >/dev/null || {
        echo "SKIP: $tool is not installed"
        exit 77
    }
done

# shellcheck source=collector_lib.sh
source "$(dirname "$0")/collector_lib.sh"
collector_setup nflowd_e2e


# Runs one trace through nflowd and nfcapd and checks everything nfdump reports.
#   check_trace NAME MODE GEN_ARGS -- NFLOWD_ARGS
check_trace() {
    local name=$1 mode=$2
    shift 2
    local gen_args=() nflowd_args=()
    while [[ $1 != -- ]]; do
        gen_args+=("$1")
        shift
    done
    shift
    nflowd_args=("$@")
    local dir=$WORK/$name
    mkdir -p "$dir"
    echo "== $name: gen_trace ${gen_args[*]} | nflowd ${nflowd_args[*]}"

    timeout 120 "$GEN" "${gen_args[@]}" --out "$dir/trace.pcap" --truth "$dir/truth.csv" \
        >"$dir/gen.txt"
    start_nfcapd "$dir/col"
    local input=$dir/trace.pcap
    if [[ " ${nflowd_args[*]} " == *" --read - "* ]]; then
        timeout 120 "$NFLOWD" "${nflowd_args[@]}" --destination "127.0.0.1:$NFCAPD_PORT" \
            <"$input" >"$dir/nflowd.txt" || die "$name: nflowd exited $?"
    else
        timeout 120 "$NFLOWD" --read "$input" "${nflowd_args[@]}" \
            --destination "127.0.0.1:$NFCAPD_PORT" >"$dir/nflowd.txt" ||
            die "$name: nflowd exited $?"
    fi
    stop_nfcapd

    local s=$dir/nflowd.txt g=$dir/gen.txt
    local -A want=(
        [frames]=$(field "$g" frames) [packets]=$(field "$g" packets)
        [non_ip]=$(field "$g" non_ip) [accounted]=$(field "$g" ipv4_packets)
        [ipv6]=$(field "$g" ipv6_packets) [fragments]=$(field "$g" fragments)
        [octets]=$(field "$g" bytes) [malformed_frames]=0 [invalid]=0 [truncated]=0
        [lost_flows]=0 [maxflows_dropped]=0)
    [[ $mode == exact ]] && want[flows]=$(field "$g" flows)
    local k v
    for k in "${!want[@]}"; do
        v=$(field "$s" "$k") || die "$name: nflowd summary lacks '$k'"
        [[ $v == "${want[$k]}" ]] || die "$name: nflowd $k = $v, want ${want[$k]}"
    done

    local flows
    flows=$(field "$s" flows)
    nfdump -R "$dir/col" -I >"$dir/info.txt"
    [[ $(field "$dir/info.txt" "Sequence failures") == 0 ]] ||
        die "$name: nfcapd saw sequence failures: $(cat "$dir/info.txt")"
    [[ $(field "$dir/info.txt" Flows) == "$flows" ]] ||
        die "$name: nfcapd stored $(field "$dir/info.txt" Flows) flows, nflowd sent $flows"
    [[ $(field "$dir/info.txt" Packets) == "$(field "$g" ipv4_packets)" ]] ||
        die "$name: nfcapd packets $(field "$dir/info.txt" Packets)"
    [[ $(field "$dir/info.txt" Bytes) == "$(field "$g" bytes)" ]] ||
        die "$name: nfcapd bytes $(field "$dir/info.txt" Bytes)"

    # Not %tsr/%ter: nfdump 1.7.1 prints %ter's milliseconds wrong.
    TZ=UTC nfdump -R "$dir/col" -q -N \
        -o 'fmt:%ts,%te,%sa,%da,%sp,%dp,%pr,%tos,%pkt,%byt,%flg,%in,%out' >"$dir/dump.txt"
    python3 "$(dirname "$0")/nfdump_truth.py" "$dir/truth.csv" "$dir/dump.txt" "$mode" ||
        die "$name: collector content differs from the truth"
    echo "   $flows flows, $(field "$s" packets) packets, sequence failures 0"
}

common=(--inactive_timeout 600 --active_timeout 3600)

check_trace en10mb exact --linktype en10mb --flows 20000 --packets 300000 --seed 11 \
    --ipv6-share 0.05 --frag-share 0.03 --vlan-share 0.1 --nonip-share 0.005 \
    -- "${common[@]}" --threads 2
# Short timeouts cut keys into several flows; totals per key must not change.
check_trace en10mb_split split --linktype en10mb --flows 20000 --packets 300000 --seed 11 \
    --ipv6-share 0.05 --frag-share 0.03 --vlan-share 0.1 --nonip-share 0.005 \
    -- --inactive_timeout 1 --active_timeout 4 --threads 2
check_trace nflog exact --linktype nflog --flows 4000 --packets 40000 --seed 12 \
    --ipv6-share 0.1 --frag-share 0.05 -- "${common[@]}" --threads 1
check_trace sll exact --linktype sll --flows 4000 --packets 40000 --seed 13 \
    --nonip-share 0.01 --snaplen 96 -- "${common[@]}"
check_trace raw_stdin exact --linktype raw --flows 4000 --packets 40000 --seed 14 \
    --ipv6-share 0.1 -- --read - "${common[@]}"

# start_capture DIR NAME: udp_capture.py into DIR/dgrams.pcap, its port in DIR/port, its PID
# in RX (stops by itself once the datagrams stop for 2 s).
start_capture() {
    local dir=$1 i
    mkdir -p "$dir"
    python3 "$(dirname "$0")/udp_capture.py" "$dir/port" "$dir/dgrams.pcap" 2 &
    RX=$!
    PIDS+=("$RX")
    for ((i = 0; i < 100; i++)); do
        [[ -s $dir/port ]] && return 0
        sleep 0.05
    done
    die "$2: receiver did not start"
}

# ---- every datagram of a replay dated at or after its records (issue 11 item 5) ----
# The readers publish records ahead of the replay clock the exporter reads: every header's
# sysUptime must still be at or after each of its records' First and Last.
check_uptime() {
    local name=$1 dir=$WORK/uptime_$1
    shift
    start_capture "$dir" "uptime_$name"
    local rx=$RX
    timeout 120 "$NFLOWD" --read "$WORK/$name/trace.pcap" \
        --destination "127.0.0.1:$(cat "$dir/port")" "$@" >"$dir/nflowd.txt" ||
        die "uptime_$name: nflowd failed"
    wait "$rx" || die "uptime_$name: receiver failed"
    forget_pid "$rx"
    echo "== uptime_$name: nflowd --read $* (every datagram decoded)"
    python3 "$(dirname "$0")/v5_uptime_check.py" "$dir/dgrams.pcap" \
        "$(field "$dir/nflowd.txt" flows)" ||
        die "uptime_$name: a datagram's sysUptime is behind a record's time"
}
check_uptime en10mb_split --inactive_timeout 1 --active_timeout 4 --threads 2

# ---- one datagram, every v5 field, decoded by tshark ----
cat >"$WORK/tiny.py" <<'PY'
# Three packets of one TCP flow as `tcpdump -i nflog:5` stores them, payload cut at 128.
import struct, sys
out, t0 = sys.argv[1], int(sys.argv[2])
def csum(h):
    s = sum(struct.unpack("!10H", h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
def ip_tcp(total, flags):
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0x28, total, 1, 0x4000, 64, 6, 0,
                               bytes([10, 1, 2, 3]), bytes([192, 0, 2, 10])))
    ip[10:12] = struct.pack("!H", csum(bytes(ip)))
    tcp = struct.pack("!HHIIBBHHH", 40000, 443, 1, 0, 0x50, flags, 64240, 0, 0)
    return (bytes(ip) + tcp + bytes(total - 40))[:128]
def tlv(t, v):  # NFLOG TLV headers are in host order
    b = struct.pack("=HH", 4 + len(v), t) + v
    return b + bytes(-len(b) % 4)
def nflog(ip):
    return (struct.pack("!BBH", 2, 0, 5) + tlv(1, struct.pack("!HBB", 0x0800, 2, 0)) +
            tlv(4, struct.pack("!I", 3)) + tlv(5, struct.pack("!I", 7)) + tlv(9, ip))
pkts = [(0, ip_tcp(60, 0x02)), (250000, ip_tcp(1500, 0x18)), (1500000, ip_tcp(40, 0x11))]
with open(out, "wb") as f:
    f.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 239))
    for us, ip in pkts:
        fr = nflog(ip)
        f.write(struct.pack("=IIII", t0 + us // 1000000, us % 1000000, len(fr), len(fr)) + fr)
PY

T0=1700000000
python3 "$WORK/tiny.py" "$WORK/tiny.pcap" "$T0"
V5_FIELDS=(version count sysuptime unix_secs unix_nsecs sequence engine_type engine_id
    samplerate srcaddr dstaddr nexthop inputint outputint packets octets timestart timeend
    srcport dstport tcpflags protocol tos srcas dstas srcmask dstmask)

# check_datagram NAME "EXPECTED v5 fields, ;-separated" NFLOWD_ARGS...
check_datagram() {
    local name=$1 expected=$2
    shift 2
    local dir=$WORK/$name
    start_capture "$dir" "$name"
    local rx=$RX
    local port
    port=$(cat "$dir/port")
    timeout 30 "$NFLOWD" --read "$WORK/tiny.pcap" --destination "127.0.0.1:$port" "$@" \
        >"$dir/nflowd.txt" || die "$name: nflowd failed"
    wait "$rx" || die "$name: receiver failed"
    forget_pid "$rx"
    local args=() f
    for f in "${V5_FIELDS[@]}"; do args+=(-e "cflow.$f"); done
    tshark -r "$dir/dgrams.pcap" -d "udp.port==$port,cflow" -T fields -E separator=';' \
        "${args[@]}" 2>/dev/null >"$dir/fields.txt"
    [[ $(wc -l <"$dir/fields.txt") == 1 ]] || die "$name: want 1 datagram, got: $(cat "$dir/fields.txt")"
    local got
    got=$(cat "$dir/fields.txt")
    if [[ $got != "$expected" ]]; then
        IFS=';' read -r -a g <<<"$got"
        IFS=';' read -r -a w <<<"$expected"
        for i in "${!V5_FIELDS[@]}"; do
            [[ ${g[i]-} == "${w[i]-}" ]] || echo "  ${V5_FIELDS[i]}: got '${g[i]-}' want '${w[i]-}'"
        done
        die "$name: tshark decodes other values"
    fi
    echo "== $name: tshark decodes every v5 field as expected"
}

# Uptime starts at the first packet, the datagram leaves at the last one (1.5 s later), so
# First/Last are 0 / 1500 ms and unix time is T0 + 1.5 s. Octets are IP total lengths
# (60 + 1500 + 40), not the 128-byte captures; flags SYN|PSH|ACK|FIN; ifindexes from NFLOG.
check_datagram v5_fields "5;1;1.500000000;$((T0 + 1));500000000;0;0;9;0;10.1.2.3;192.0.2.10;0.0.0.0;3;7;3;1600;0.000000000;1.500000000;40000;443;0x1b;6;0x28;0;0;0;0" \
    --engine_id 9
# Aggregation folds addresses to their prefix, records the masks and maps the port range.
check_datagram v5_aggregated "5;1;1.500000000;$((T0 + 1));500000000;0;0;0;0;10.1.0.0;192.0.2.0;0.0.0.0;3;7;3;1600;0.000000000;1.500000000;39990;443;0x1b;6;0x28;0;0;16;24" \
    --aggregation 10.0.0.0/8=16,192.0.2.0/24=24,39990-40010=39990

echo "PASS"
