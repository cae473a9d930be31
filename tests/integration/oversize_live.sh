#!/usr/bin/env bash
# `oversize` against each interface's own MTU, live (issue 11). A router with jumbo veths
# (MTU 9000 everywhere) logs FORWARD to nflowd:
#   1. 4000-byte UDP datagrams cross as they are: none is oversize (a fixed 1500 counted all);
#   2. a TCP bulk transfer: the client's TSO/GSO super-packets reach FORWARD whole, and
#      oversize equals what an iptables `-m length --length 9001:65535` rule counted, exactly;
#   3. the client side's MTU lowered to 1400 while nflowd runs (rtnetlink update): UDP GSO
#      datagrams of 1450 bytes (two 739-byte segments) are oversize, though under 1500.
# Every packet the NFLOG rule logged must be accounted before each comparison.
#
#   client 10.201.1.2 --- router (FORWARD -j NFLOG, nflowd) --- 10.201.2.2 server
#
# usage: oversize_live.sh PATH/TO/nflowd PATH/TO/nflowctl
set -euo pipefail

NFLOWD=${1:?usage: oversize_live.sh nflowd nflowctl}
NFLOWCTL=${2:?usage: oversize_live.sh nflowd nflowctl}
HERE=$(dirname "$0")
# shellcheck source=netns_lib.sh
source "$HERE/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$HERE/check_lib.sh"
netns_require
for tool in python3 ss; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done

netns_setup
work_setup netns_cleanup
WORK_KEEP_FAILED=1
GROUP=$((5000 + $$ % 1000))
CID=$((0x31000000 + $$))
in_router iptables -m length --help >/dev/null 2>&1 || { echo "SKIP: no xt_length" >&2; exit 77; }

# mtu N IF@NS...: sets the MTU of each interface, inside its namespace.
mtu() {
    local n=$1 x
    shift
    for x in "$@"; do ip -n "${x#*@}" link set dev "${x%@*}" mtu "$n"; done
}
mtu 9000 "$IF_CLIENT@$NS_CLIENT" "$IF_ROUTER_C@$NS_ROUTER" "$IF_ROUTER_S@$NS_ROUTER" \
    "$IF_SERVER@$NS_SERVER"

# Client to server only (the server's ACKs stay out): the NFLOG rule's counter is what nflowd
# must account; the length rules before it (no target: counters only) say how many were
# longer than each MTU, as the kernel's IP total length says, which is what nflowd reads.
FWD=(-s "$CLIENT_IP" -d "$SERVER_IP")
in_router iptables -A FORWARD "${FWD[@]}" -m length --length 9001:65535
in_router iptables -A FORWARD "${FWD[@]}" -m length --length 1401:65535
in_router iptables -A FORWARD "${FWD[@]}" -j NFLOG --nflog-group "$GROUP"
# rule N [COLUMN]: packets (or column 2: bytes) counted by FORWARD rule N (1: > 9000,
# 2: > 1400, 3: NFLOG).
rule() { in_router iptables -L FORWARD -nvx | awk -v n="$1" -v c="${2:-1}" 'NR == n + 2 { print $c }'; }

netns_start_nflowd "$NS_ROUTER" "$WORK/nflowd.log" --group "$GROUP" --control_id "$CID" \
    --destination 127.0.0.1:9 --qtimeout 10 --debug 1
# stat NAME: a counter of the statistics' packets section (JSON).
stat() {
    ctl stats --json | python3 -c 'import json, sys
def find(d, k):
    if isinstance(d, dict):
        if k in d and not isinstance(d[k], (dict, list)): return d[k]
        for v in d.values():
            r = find(v, k)
            if r is not None: return r
    return None
print(find(json.load(sys.stdin)["packets"], sys.argv[1]))' "$1"
}
# settled: waits (bounded) until nflowd accounted every packet the NFLOG rule logged.
settled() {
    local i want got=-1
    for ((i = 0; i < 100; i++)); do
        want=$(rule 3)
        got=$(stat accounted)
        [[ $got == "$want" ]] && return 0
        sleep 0.1
    done
    fail "nflowd accounted $got packets, the NFLOG rule logged $want"
    return 1
}

# 1. Jumbo frames as they are on the wire.
netns_udp "$NS_CLIENT" "$SERVER_IP" 7400 50 3972 # IP length 4000
settled || true
n=$(rule 3)
over=$(stat oversize)
echo "udp 4000 on MTU 9000: logged $n ($(rule 3 2) bytes), oversize $over"
bytes=$(rule 3 2)
((n == 50 && bytes == 50 * 4000)) ||
    fail "not 50 whole 4000-byte datagrams crossed the router: $n, $bytes bytes"
[[ $over == 0 ]] || fail "4000-byte packets on MTU-9000 links counted oversize: $over"

# 2. TCP bulk: 16 MiB client -> server.
netns_bg "$NS_SERVER" "$WORK/sink.log" "$WORK/sink.log" python3 -c '
import socket
s = socket.create_server(("0.0.0.0", 7401))
c, _ = s.accept()
while c.recv(1 << 20):
    pass'
SINK=$NETNS_LAST_PID
netns_wait_listen "$NS_SERVER" t 7401
in_client timeout 30 python3 -c '
import socket, sys
c = socket.create_connection((sys.argv[1], 7401))
block = b"x" * (1 << 20)
for _ in range(16):
    c.sendall(block)
c.close()' "$SERVER_IP" || fail "the TCP transfer failed"
wait "$SINK" || true
settled || true
logged=$(rule 3)
big=$(rule 1)
over=$(stat oversize)
echo "tcp bulk on MTU 9000: logged $((logged - n)), longer than 9000: $big, oversize $over"
((big > 0)) || fail "no super-packet reached FORWARD (TSO/GSO off on the veths?)"
[[ $over == "$big" ]] || fail "oversize $over, the kernel saw $big packets above 9000"

# 3. The client side at MTU 1400 while nflowd runs; UDP GSO (UDP_SEGMENT, 739-byte segments):
# one 1450-byte packet each through FORWARD, above 1400 and below 1500.
mtu 1400 "$IF_CLIENT@$NS_CLIENT" "$IF_ROUTER_C@$NS_ROUTER"
sleep 1 # rtnetlink's update read by the daemon; its readers take the table per batch
before_big=$(rule 2)
before_over=$over
in_client python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_UDP, 103, 711)  # UDP_SEGMENT: payload per segment
for _ in range(20):
    s.sendto(b"y" * (1450 - 28), (sys.argv[1], 7402))' "$SERVER_IP" ||
    fail "UDP GSO send failed"
settled || true
gso=$(($(rule 2) - before_big))
over=$(($(stat oversize) - before_over))
echo "udp gso 1450 on MTU 1400: longer than 1400: $gso, oversize $over"
[[ $gso == 20 ]] || fail "the kernel saw $gso of 20 UDP GSO packets above 1400"
[[ $over == 20 ]] || fail "oversize counted $over of 20 1450-byte packets on the MTU-1400 link"

ctl stats | grep -E '^(packets|parsed|oversize)' || true
netns_stop_nflowd "$NFLOWD_PID" "$WORK/nflowd.log"
((FAILED == 0)) && echo "PASS"
exit "$FAILED"
