#!/usr/bin/env bash
# MACs and VLAN from captures (issue 13): crafted pcaps read by `nflowd --read --protocol N`
# (10 and 9) to a UDP capture; tshark must decode each flow's vlanId (58), sourceMacAddress
# (56) and destinationMacAddress (80) as the frames carried them:
#   Ethernet, 802.1Q VLAN 100 (priority 5)    -> port 5001, VLAN 100
#   Ethernet, QinQ: 802.1ad 300 outside 10    -> port 5002, VLAN 300 (the outermost tag)
#   Ethernet, untagged                        -> port 5003, VLAN 0, MACs all the same
#   NFLOG (tcpdump -i nflog): HWHEADER + VLAN -> port 5004, VLAN 42
#
# usage: l2_read.sh NFLOWD     (exit 77 = a required tool is missing: skipped)
set -euo pipefail

NFLOWD=$(realpath "${1:?usage: l2_read.sh NFLOWD}")
HERE=$(dirname "$0")
for tool in tshark python3; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done
# shellcheck source=check_lib.sh
source "$HERE/check_lib.sh"
work_setup ""

python3 - "$WORK" <<'PY'
import struct, sys

work = sys.argv[1]
SRC = bytes.fromhex("02005e00000a")
DST = bytes.fromhex("02005e00000b")

def ipv4_udp(dport):
    udp = struct.pack("!HHHH", 40000, dport, 8 + 20, 0) + b"x" * 20
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                       bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + udp

def tag(tpid, tci):
    return struct.pack("!HH", tpid, tci)

def pcap(path, linktype, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, fr in enumerate(frames):
            f.write(struct.pack("=IIII", 1700000000 + i, 0, len(fr), len(fr)) + fr)

eth = [DST + SRC + tag(0x8100, 0xa000 | 100) + b"\x08\x00" + ipv4_udp(5001),
       DST + SRC + tag(0x88a8, 300) + tag(0x8100, 10) + b"\x08\x00" + ipv4_udp(5002),
       DST + SRC + b"\x08\x00" + ipv4_udp(5003)]
pcap(work + "/eth.pcap", 1, eth)

def tlv(t, v):  # NFLOG TLV: host-order header, value padded to 4
    b = struct.pack("=HH", 4 + len(v), t) + v
    return b + b"\0" * (-len(b) % 4)

vlan = tlv(1, struct.pack("!H", 0x8100)) + tlv(2, struct.pack("!H", 0x2000 | 42))
nflog = (bytes([2, 0]) + struct.pack("!H", 5) + tlv(1, struct.pack("!HBB", 0x0800, 0, 0)) +
         tlv(4, struct.pack("!I", 3)) + tlv(15, struct.pack("!H", 1)) +
         tlv(16, DST + SRC + b"\x08\x00") + tlv(17, struct.pack("!H", 14)) + tlv(20, vlan) +
         tlv(9, ipv4_udp(5004)))
pcap(work + "/nflog.pcap", 239, [nflog])
PY

# run PROTOCOL TRACE: nflowd --read TRACE to a capture; "dstport vlan srcmac dstmac" per flow.
run() {
    local out=$WORK/$2.$1
    python3 "$HERE/udp_capture.py" "$out.port" "$out.pcap" 2 &
    local cap=$!
    for ((i = 0; i < 50; i++)); do [[ -s $out.port ]] && break; sleep 0.1; done
    "$NFLOWD" --read "$WORK/$2.pcap" --protocol "$1" \
        --destination "127.0.0.1:$(cat "$out.port")" >"$out.nflowd" || fail "nflowd exited $?"
    wait "$cap" || true
    tshark -r "$out.pcap" -d "udp.port==$(cat "$out.port"),cflow" -T fields -e cflow.dstport \
        -e cflow.vlanid -e cflow.srcmac -e cflow.dstmac 2>/dev/null | python3 -c '
import sys
for line in sys.stdin:
    cols = [c.split(",") for c in line.rstrip("\n").split("\t")]
    for rec in zip(*cols):
        if rec[0]:
            print(*rec)' | sort
}

for proto in 10 9; do
    run "$proto" eth >"$WORK/eth.$proto.records"
    run "$proto" nflog >"$WORK/nflog.$proto.records"
    echo "protocol $proto: dstport vlan srcmac dstmac"
    cat "$WORK/eth.$proto.records" "$WORK/nflog.$proto.records"
    printf '%s\n' "5001 100 02:00:5e:00:00:0a 02:00:5e:00:00:0b" \
        "5002 300 02:00:5e:00:00:0a 02:00:5e:00:00:0b" \
        "5003 0 02:00:5e:00:00:0a 02:00:5e:00:00:0b" >"$WORK/eth.want"
    diff "$WORK/eth.want" "$WORK/eth.$proto.records" ||
        fail "protocol $proto: the Ethernet capture's VLANs and MACs are not in the records"
    [[ $(cat "$WORK/nflog.$proto.records") == "5004 42 02:00:5e:00:00:0a 02:00:5e:00:00:0b" ]] ||
        fail "protocol $proto: the NFLOG capture's VLAN and MACs are not in the record"
done

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
