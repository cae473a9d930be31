#!/usr/bin/env bash
# flowDirection from the NFLOG hook, live (issue 13): a host rule set (INPUT and OUTPUT -j
# NFLOG) in the server namespace, nflowd there exporting IPFIX to a capture; UDP to the host
# (INPUT: ingress, 0) and from it (OUTPUT: egress, 1). tshark must show cflow.direction 0 for
# every flow into the server and 1 for every flow out of it. The router's FORWARD rule, in a
# second daemon with v9, gives 255 (unknown: a forwarded packet is both).
#
#   client 10.201.1.2 --- router (FORWARD -j NFLOG) --- 10.201.2.2 server (INPUT/OUTPUT -j NFLOG)
#
# usage: direction_live.sh PATH/TO/nflowd
set -euo pipefail

NFLOWD=${1:?usage: direction_live.sh nflowd}
HERE=$(dirname "$0")
# shellcheck source=netns_lib.sh
source "$HERE/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$HERE/check_lib.sh"
netns_require
for tool in python3 tshark ss; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done

netns_setup
work_setup netns_cleanup
WORK_KEEP_FAILED=1
GROUP=$((4000 + $$ % 1000))
in_server iptables -A INPUT -p udp -j NFLOG --nflog-group "$GROUP"
in_server iptables -A OUTPUT -p udp -j NFLOG --nflog-group "$GROUP"
in_router iptables -A FORWARD -p udp -j NFLOG --nflog-group "$GROUP"

# capture NS NAME: a udp_capture.py in NS until 3 s pass without a datagram.
capture() {
    netns_bg "$1" "$WORK/$2.log" "$WORK/$2.log" python3 "$HERE/udp_capture.py" \
        "$WORK/$2.port" "$WORK/$2.pcap" 3
    eval "${2^^}_PID=$NETNS_LAST_PID"
    netns_wait_for "$WORK/$2.port" . 50 || die "capture $2 did not start"
}
capture "$NS_SERVER" host
capture "$NS_ROUTER" fwd
netns_start_nflowd "$NS_SERVER" "$WORK/host.nflowd" --group "$GROUP" --control_id $((0x30000000 + $$)) \
    --destination "127.0.0.1:$(cat "$WORK/host.port")@10" --debug 1
HOST_NFLOWD=$NFLOWD_PID
netns_start_nflowd "$NS_ROUTER" "$WORK/fwd.nflowd" --group "$GROUP" --control_id $((0x30001000 + $$)) \
    --destination "127.0.0.1:$(cat "$WORK/fwd.port")@9" --debug 1
FWD_NFLOWD=$NFLOWD_PID

# Into the server (INPUT), from it (OUTPUT, answered by nobody: the client drops nothing, the
# datagrams simply end there). Ports say which is which.
netns_udp "$NS_CLIENT" "$SERVER_IP" 7301 3 100
in_server bash -c 'for i in 1 2 3; do printf "%*s" 100 "" >/dev/udp/'"$CLIENT_IP"'/7302; done'
sleep 0.5
netns_stop_nflowd "$HOST_NFLOWD" "$WORK/host.nflowd"
netns_stop_nflowd "$FWD_NFLOWD" "$WORK/fwd.nflowd"
wait "$HOST_PID" || true
wait "$FWD_PID" || true

# directions NAME: "dstport direction" of every flow record, once each.
directions() {
    tshark -r "$WORK/$1.pcap" -d "udp.port==$(cat "$WORK/$1.port"),cflow" -T fields \
        -e cflow.dstport -e cflow.direction 2>/dev/null | python3 -c '
import sys
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    for port, d in zip(a.split(","), b.split(",")):
        if port:
            print(port, d)' | sort -u
}
directions host >"$WORK/host.dirs"
directions fwd >"$WORK/fwd.dirs"
echo "host (INPUT/OUTPUT):"
cat "$WORK/host.dirs"
echo "router (FORWARD):"
cat "$WORK/fwd.dirs"
[[ $(grep -c '^7301 ' "$WORK/host.dirs") == 1 ]] && grep -qx '7301 0' "$WORK/host.dirs" ||
    fail "flows into the host (INPUT) are not all direction 0 (ingress)"
[[ $(grep -c '^7302 ' "$WORK/host.dirs") == 1 ]] && grep -qx '7302 1' "$WORK/host.dirs" ||
    fail "flows out of the host (OUTPUT) are not all direction 1 (egress)"
grep -qx '7301 255' "$WORK/fwd.dirs" && grep -qx '7302 255' "$WORK/fwd.dirs" &&
    [[ $(wc -l <"$WORK/fwd.dirs") == 2 ]] || fail "forwarded flows are not all 255 (unknown)"

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
