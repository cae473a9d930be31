#!/usr/bin/env bash
# The flow sampler end to end (issue 13), with `nflowd --read` over a trace of many similar
# flows: 50000 UDP flows of 4-5 packets of 150-180 bytes (flow i: 5 packets when i % 3 is 0,
# else 4, of 150 + 5 * (i % 7) bytes), so that any tenth of them stands for the whole within
# well under 1%: a flow's bytes spread ~13% around their mean, 0.13 / sqrt(5000) = 0.2% per
# standard deviation of the sample's mean, 1% is 5 of them. The periods (3, 7) are prime to
# 10: a flush in creation order makes deterministic:10 take every 10th flow, and a period
# dividing 10 would alias (every kept flow the same size).
# For v5 and IPFIX, --sampler deterministic:10, one daemon to nfcapd and to a capture:
#   - nflowd exports exactly ceil(50000 / 10) = 5000 flows and counts 45000 sampled out;
#   - nfdump stores those 5000, no sequence failure;
#   - tshark reads the announced rate: v5 header (cflow.samplerate, mode 1 = deterministic),
#     IPFIX options record (cflow.sampling_interval, cflow.sampling_algorithm 1);
#   - nfdump's totals scaled by that rate are within 1% of the trace's. nfcapd 1.7.1 scales v5
#     flows by the header's rate itself (its totals are the exported ones, tshark's sum, times
#     the rate); it ignores IPFIX's samplingInterval (it reads only PSAMP's 302/304-306), so
#     there the test scales nfdump's (unscaled) totals by what tshark read.
# Then --sampler hash:10: about a tenth of the flows, every packet of the others counted
# (hash_sampled_out), the rest exact per flow; and --sampling_rate 4 alone: every flow,
# announced 4 (random).
# usage: sampler_e2e.sh NFLOWD   (exit 77 = a required tool is missing: skipped)
set -euo pipefail

NFLOWD=$(realpath "${1:?usage: sampler_e2e.sh NFLOWD}")
HERE=$(dirname "$(realpath "$0")")
for tool in nfcapd nfdump tshark python3 ss timeout; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
# shellcheck source=collector_lib.sh
source "$HERE/collector_lib.sh"
collector_setup nflowd_sampler

FLOWS=50000
python3 - "$WORK/trace.pcap" "$FLOWS" >"$WORK/truth" <<'EOF'
import struct, sys
out, flows = sys.argv[1], int(sys.argv[2])
packets = octets = 0
with open(out, "wb") as f:
    f.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))  # LINKTYPE_RAW
    t = 1_700_000_000
    for i in range(flows):
        size = 150 + 5 * (i % 7)
        src = bytes([10, (i >> 16) & 255, (i >> 8) & 255, i & 255])
        udp = struct.pack("!HHHH", 1024 + i % 50000, 53, size - 20, 0) + bytes(size - 28)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, 0, 0, 64, 17, 0, src,
                         bytes([192, 0, 2, 1])) + udp
        for k in range(5 if i % 3 == 0 else 4):
            usec = (i * 7 + k) % 1_000_000
            f.write(struct.pack("=IIII", t + i // 5000, usec, 128, size) + ip[:128])
            packets += 1
            octets += size
print(flows, packets, octets)
EOF
read -r _ PACKETS OCTETS <"$WORK/truth"
echo "trace: $FLOWS flows, $PACKETS packets, $OCTETS bytes"
common=(--read "$WORK/trace.pcap" --inactive_timeout 600 --active_timeout 3600 --threads 2)

wait_file() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s $1 ]] && return 0
        sleep 0.05
    done
    die "$1 never appeared"
}

# run NAME PROTOCOL ARGS...: nflowd --read to nfcapd and a capture; the summary in NAME.txt,
# nfcapd's files in NAME/, the capture in NAME.pcap (port in NAME.port).
run() {
    local name=$1 p=$2 rx
    shift 2
    start_nfcapd "$WORK/$name"
    python3 "$HERE/udp_capture.py" "$WORK/$name.port" "$WORK/$name.pcap" 3 &
    rx=$!
    PIDS+=("$rx")
    wait_file "$WORK/$name.port"
    timeout 120 "$NFLOWD" "${common[@]}" --protocol "$p" "$@" \
        --destination "127.0.0.1:$NFCAPD_PORT,127.0.0.1:$(cat "$WORK/$name.port")" \
        >"$WORK/$name.txt" || die "$name: nflowd failed"
    stop_nfcapd
    wait "$rx" || die "$name: capture failed"
    forget_pid "$rx"
    nfdump -R "$WORK/$name" -I >"$WORK/$name.info"
    [[ $(field "$WORK/$name.info" "Sequence failures") == 0 ]] ||
        die "$name: nfdump counts sequence failures"
}

# announced NAME PROTOCOL: "interval algorithm" as tshark reads them (every value seen, once).
announced() {
    local t=(tshark -r "$WORK/$1.pcap" -d "udp.port==$(cat "$WORK/$1.port"),cflow" -T fields)
    if [[ $2 == 5 ]]; then
        "${t[@]}" -e cflow.samplerate -e cflow.samplingmode 2>/dev/null | sort -u
    else
        "${t[@]}" -Y cflow.sampling_interval -e cflow.sampling_interval \
            -e cflow.sampling_algorithm 2>/dev/null | sort -u
    fi
}

# exported NAME: "packets bytes" of the flow records in the capture, unscaled.
exported() {
    tshark -r "$WORK/$1.pcap" -d "udp.port==$(cat "$WORK/$1.port"),cflow" -T fields \
        -e cflow.packets -e cflow.octets 2>/dev/null | python3 -c '
import sys
p = o = 0
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    if a:
        p += sum(map(int, a.split(",")))
        o += sum(map(int, b.split(",")))
print(p, o)'
}

# within NAME MEASURED TRUTH: |MEASURED - TRUTH| <= 1% of TRUTH.
within() {
    python3 -c 'import sys; m, t = int(sys.argv[1]), int(sys.argv[2]); sys.exit(abs(m - t) > t / 100)' \
        "$2" "$3" || die "$1: $2 is not within 1% of $3"
    echo "   $1: $2 vs $3 ($(python3 -c "print(f'{($2 - $3) / $3 * 100:+.2f}%')"))"
}

for p in 5 10; do
    name=det_v$p
    echo "== $name: --sampler deterministic:10"
    run "$name" "$p" --sampler deterministic:10
    s=$WORK/$name.txt
    want=$(((FLOWS + 9) / 10))
    [[ $(field "$s" flows) == "$want" ]] || die "$name: exported $(field "$s" flows), want $want"
    [[ $(field "$s" sampled_out) == $((FLOWS - want)) ]] ||
        die "$name: sampled_out $(field "$s" sampled_out), want $((FLOWS - want))"
    [[ $(field "$s" accounted) == "$PACKETS" ]] || die "$name: the cache did not see every packet"
    [[ $(field "$WORK/$name.info" Flows) == "$want" ]] ||
        die "$name: nfdump stored $(field "$WORK/$name.info" Flows) flows, want $want"
    read -r rate algo <<<"$(announced "$name" "$p")"
    echo "   announced: interval $rate, algorithm/mode $algo"
    [[ $rate == 10 && $algo == 1 ]] || die "$name: tshark reads \"$(announced "$name" "$p")\", want 10 1"
    read -r xp xo <<<"$(exported "$name")"
    np=$(field "$WORK/$name.info" Packets)
    nb=$(field "$WORK/$name.info" Bytes)
    if [[ $p == 5 ]]; then
        [[ $((xp * rate)) == "$np" && $((xo * rate)) == "$nb" ]] ||
            die "$name: nfcapd did not scale v5 by the header's rate: $np $nb, exported $xp $xo"
    else
        [[ $xp == "$np" && $xo == "$nb" ]] || die "$name: nfdump $np $nb, exported $xp $xo"
        np=$((np * rate))
        nb=$((nb * rate))
    fi
    within "$name packets" "$np" "$PACKETS"
    within "$name bytes" "$nb" "$OCTETS"
done

echo "== hash_v10: --sampler hash:10"
run hash_v10 10 --sampler hash:10
s=$WORK/hash_v10.txt
kept=$(field "$s" flows)
# Random to the test: binomial(50000, 1/10), standard deviation 67; 500 is over 7 of them.
((kept > FLOWS / 10 - 500 && kept < FLOWS / 10 + 500)) || die "hash_v10: $kept flows kept"
echo "   hash_v10: $kept flows kept of $FLOWS, $(field "$s" hash_sampled_out) packets left out"
[[ $(($(field "$s" accounted) + $(field "$s" hash_sampled_out))) == "$PACKETS" ]] ||
    die "hash_v10: accounted + hash_sampled_out != $PACKETS"
[[ $(field "$s" sampled_out) == 0 ]] || die "hash_v10: the exporter sampled too"
[[ $(announced hash_v10 10) == "10"$'\t'"2" ]] || die "hash_v10: announced $(announced hash_v10 10)"

echo "== rate_v5: --sampling_rate 4"
run rate_v5 5 --sampling_rate 4
[[ $(field "$WORK/rate_v5.txt" flows) == "$FLOWS" ]] || die "rate_v5: every flow must go"
[[ $(announced rate_v5 5) == "4"$'\t'"2" ]] || die "rate_v5: announced $(announced rate_v5 5)"
echo PASS
