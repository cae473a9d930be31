#!/usr/bin/env bash
# MAC addresses in flow records, live (issue 13): the router's FORWARD rule sees each packet's
# Ethernet header, so IPFIX records (templates 265/266) of forwarded flows carry the sending
# veth's MAC as sourceMacAddress (56) and the router's receiving veth's MAC as
# destinationMacAddress (80). Locally sent packets (the server's OUTPUT rule) have no hardware
# header: their records use the plain template (256) without MAC fields. The router's two
# rules carry --nflog-prefix tags: "obs=7 dir=in" from the client side (observationPointId 7,
# flowDirection 0 instead of FORWARD's 255), "obs=9" from the server side (9, still 255).
# tshark decodes all of it.
#
#   client 10.201.1.2 --- router (FORWARD -j NFLOG, IPFIX) --- 10.201.2.2 server (OUTPUT, IPFIX)
#
# usage: l2_live.sh PATH/TO/nflowd
set -euo pipefail

NFLOWD=${1:?usage: l2_live.sh nflowd}
HERE=$(dirname "$0")
# shellcheck source=netns_lib.sh
source "$HERE/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$HERE/check_lib.sh"
netns_require
for tool in python3 tshark; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done

netns_setup
work_setup netns_cleanup
WORK_KEEP_FAILED=1
GROUP=$((5000 + $$ % 1000))
in_router iptables -A FORWARD -i "$IF_ROUTER_C" -p udp -j NFLOG --nflog-group "$GROUP" \
    --nflog-prefix "lan obs=7 dir=in"
in_router iptables -A FORWARD -i "$IF_ROUTER_S" -p udp -j NFLOG --nflog-group "$GROUP" \
    --nflog-prefix "obs=9"
in_server iptables -A OUTPUT -p udp -j NFLOG --nflog-group "$GROUP"

mac() { ip -n "$1" -br link show dev "$2" | awk '{ print $3 }'; }
CLIENT_MAC=$(mac "$NS_CLIENT" "$IF_CLIENT")
SERVER_MAC=$(mac "$NS_SERVER" "$IF_SERVER")
ROUTER_C_MAC=$(mac "$NS_ROUTER" "$IF_ROUTER_C")
ROUTER_S_MAC=$(mac "$NS_ROUTER" "$IF_ROUTER_S")
echo "client $CLIENT_MAC -> router $ROUTER_C_MAC | router $ROUTER_S_MAC <- server $SERVER_MAC"

# capture NS NAME: a udp_capture.py in NS until 3 s pass without a datagram.
capture() {
    netns_bg "$1" "$WORK/$2.log" "$WORK/$2.log" python3 "$HERE/udp_capture.py" \
        "$WORK/$2.port" "$WORK/$2.pcap" 3
    eval "${2^^}_PID=$NETNS_LAST_PID"
    netns_wait_for "$WORK/$2.port" . 50 || die "capture $2 did not start"
}
capture "$NS_ROUTER" fwd
capture "$NS_SERVER" host
netns_start_nflowd "$NS_ROUTER" "$WORK/fwd.nflowd" --group "$GROUP" \
    --control_id $((0x31000000 + $$)) --destination "127.0.0.1:$(cat "$WORK/fwd.port")@10" --debug 1
FWD_NFLOWD=$NFLOWD_PID
netns_start_nflowd "$NS_SERVER" "$WORK/host.nflowd" --group "$GROUP" \
    --control_id $((0x31001000 + $$)) --destination "127.0.0.1:$(cat "$WORK/host.port")@10" --debug 1
HOST_NFLOWD=$NFLOWD_PID

netns_udp "$NS_CLIENT" "$SERVER_IP" 7401 3 100 # client -> server: forwarded
in_server bash -c 'for i in 1 2 3; do printf "%*s" 100 "" >/dev/udp/'"$CLIENT_IP"'/7402; done'
sleep 0.5
netns_stop_nflowd "$FWD_NFLOWD" "$WORK/fwd.nflowd"
netns_stop_nflowd "$HOST_NFLOWD" "$WORK/host.nflowd"
wait "$FWD_PID" || true
wait "$HOST_PID" || true

# records NAME: "flowset dstport srcmac dstmac obs direction" of every flow record (options
# records, which have no port, left out), "-" for a field it lacks.
# Each flowset holds records of one template: the MAC lists line up with the ports of the
# link-layer flowsets only, so the records are walked flowset by flowset in tshark's JSON.
records() {
    tshark -r "$WORK/$1.pcap" -d "udp.port==$(cat "$WORK/$1.port"),cflow" -T json \
        -J cflow 2>/dev/null | python3 -c '
import json, sys

def walk(node, out):
    if isinstance(node, dict):
        if "cflow.flowset_id" in node and "cflow.od_id" not in node:
            out.append(node)
        for v in node.values():
            walk(v, out)
    elif isinstance(node, list):
        for v in node:
            walk(v, out)

def as_list(v):
    return v if isinstance(v, list) else [v]

for pkt in json.load(sys.stdin):
    sets = []
    walk(pkt["_source"]["layers"].get("cflow", {}), sets)
    for s in sets:
        fid = as_list(s["cflow.flowset_id"])[0]
        flows = [v for k, v in s.items() if k.startswith("Flow ")]
        for f in flows:
            if "cflow.dstport" in f:
                print(fid, f["cflow.dstport"], f.get("cflow.srcmac", "-"),
                      f.get("cflow.dstmac", "-"), f.get("cflow.observation_point_id", "-"),
                      f.get("cflow.direction", "-"))' | sort -u
}
records fwd >"$WORK/fwd.records"
records host >"$WORK/host.records"
echo "router (FORWARD) records: flowset dstport srcmac dstmac obs direction"
cat "$WORK/fwd.records"
echo "server (OUTPUT) records:"
cat "$WORK/host.records"
grep -qx "265 7401 $CLIENT_MAC $ROUTER_C_MAC 7 0" "$WORK/fwd.records" ||
    fail "the forwarded client flow lacks the client's MAC as source, the router's as destination, or its tag (obs 7, direction 0)"
grep -qx "265 7402 $SERVER_MAC $ROUTER_S_MAC 9 255" "$WORK/fwd.records" ||
    fail "the forwarded server flow lacks the server's MAC as source, the router's as destination, or its tag (obs 9)"
[[ $(wc -l <"$WORK/fwd.records") == 2 ]] || fail "unexpected forwarded records"
# The server's OUTPUT rule also logs nflowd's own export datagrams: plain records too.
grep -qx "256 7402 - - - 1" "$WORK/host.records" && ! grep -v '^256 [0-9]* - - - 1$' "$WORK/host.records" ||
    fail "OUTPUT flows are not all plain-template records without MACs"

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
