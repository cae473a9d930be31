#!/usr/bin/env bash
# Interface names live (issue 13): nflowd learns the router's links from rtnetlink, sends them
# as IPFIX interface-names options records (ifIndex, ifName, ifDescr = alias), maps flow
# ifindexes through --snmp_rules in IPFIX and v5 alike, re-sends the records at once when a
# link is renamed or the rules change (nflowctl set), and nflowctl flows shows the names.
#
#   client --- v<pid>rc [router: nflowd, FORWARD -j NFLOG, bridge eth7] v<pid>rs --- server
#
# One daemon run with an IPFIX and a v5 destination (each a udp_capture.py in the router):
#   1. --snmp_rules "v<pid>rc=1001,eth:100": a UDP flow to port 7100; nflowctl flows shows both
#      veths by name; the flow carries in 1001, out = the kernel ifindex of v<pid>rs.
#   2. nflowctl set snmp_rules adding "v<pid>rs=1002", eth7 renamed eth8: a flow to port 7200
#      carries 1001 -> 1002; the options records name 1001, 1002 and eth8 -> 108.
# tshark decodes everything (-d udp.port==PORT,cflow): every (ifIndex, ifName) pair the
# options records give, and every flow's cflow.inputint / cflow.outputint.
# usage: ifnames_live.sh PATH/TO/nflowd PATH/TO/nflowctl
set -euo pipefail

NFLOWD=${1:?usage: ifnames_live.sh nflowd nflowctl}
NFLOWCTL=${2:?usage: ifnames_live.sh nflowd nflowctl}
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
GROUP=$((3000 + $$ % 1000))
CID=$((0x20000000 + $$))
in_router iptables -A FORWARD -p udp -j NFLOG --nflog-group "$GROUP"
in_server iptables -A INPUT -p udp -j DROP
ip -n "$NS_ROUTER" link add eth7 type bridge # no dummy module on every kernel
ip -n "$NS_ROUTER" link set "$IF_ROUTER_S" alias "towards the server"
ifindex() { in_router cat "/sys/class/net/$1/ifindex"; }
RC=$(ifindex "$IF_ROUTER_C")
RS=$(ifindex "$IF_ROUTER_S")
echo "router: $IF_ROUTER_C = $RC, $IF_ROUTER_S = $RS, eth7 = $(ifindex eth7)"

# capture NAME: a udp_capture.py in the router until 10 s pass without a datagram (v5 is
# silent between the two steps).
capture() {
    netns_bg "$NS_ROUTER" "$WORK/$1.log" "$WORK/$1.log" python3 "$HERE/udp_capture.py" \
        "$WORK/$1.port" "$WORK/$1.pcap" 10
    eval "${1^^}_PID=$NETNS_LAST_PID"
    netns_wait_for "$WORK/$1.port" . 50 || die "capture $1 did not start"
}
capture ipfix
capture v5
IPFIX_PORT=$(cat "$WORK/ipfix.port")
V5_PORT=$(cat "$WORK/v5.port")

netns_start_nflowd "$NS_ROUTER" "$WORK/nflowd.log" --group "$GROUP" --control_id "$CID" \
    --destination "127.0.0.1:$IPFIX_PORT@10,127.0.0.1:$V5_PORT@5" --inactive_timeout 2 \
    --active_timeout 60 --snmp_rules "$IF_ROUTER_C=1001,eth:100" --debug 1

echo "== 1: flows show names; rules $IF_ROUTER_C=1001,eth:100"
netns_udp "$NS_CLIENT" "$SERVER_IP" 7100 3 100
sleep 0.3
ctl flows >"$WORK/flows" || fail "nflowctl flows failed"
cat "$WORK/flows"
grep ":7100 " "$WORK/flows" | awk -v i="$IF_ROUTER_C" -v o="$IF_ROUTER_S" \
    '$5 == i && $6 == o { ok = 1 } END { exit !ok }' ||
    fail "nflowctl flows does not show $IF_ROUTER_C -> $IF_ROUTER_S for the 7100 flow"
sleep 3.5

echo "== 2: set snmp_rules (runtime), eth7 renamed eth8"
ctl set snmp_rules "$IF_ROUTER_C=1001,$IF_ROUTER_S=1002,eth:100" >/dev/null ||
    fail "nflowctl set snmp_rules failed"
ip -n "$NS_ROUTER" link set eth7 name eth8
sleep 1.5
netns_udp "$NS_CLIENT" "$SERVER_IP" 7200 3 100
sleep 3.5
ctl stats >"$WORK/stats" || fail "nflowctl stats failed"
grep "^links: " "$WORK/stats" || fail "stats has no links line"
netns_stop_nflowd "$NFLOWD_PID" "$WORK/nflowd.log"
wait "$IPFIX_PID" || true
wait "$V5_PID" || true

# tshark_fields PCAP PORT FILTER FIELDS...: one line per record, fields separated by tabs
# (tshark joins the records of one datagram with commas: split them).
tshark_fields() {
    local pcap=$1 port=$2 filter=$3
    shift 3
    local args=()
    for f in "$@"; do args+=(-e "$f"); done
    tshark -r "$pcap" -d "udp.port==$port,cflow" -Y "$filter" -T fields "${args[@]}" \
        2>/dev/null | python3 -c '
import sys
for line in sys.stdin:
    cols = [c.split(",") for c in line.rstrip("\n").split("\t")]
    n = max(len(c) for c in cols)
    for i in range(n):
        print(" ".join(c[i] if i < len(c) else "" for c in cols))'
}

echo "== IPFIX: interface-names options records"
tshark_fields "$WORK/ipfix.pcap" "$IPFIX_PORT" cflow.if_name cflow.inputint cflow.if_name |
    sort -u >"$WORK/names"
cat "$WORK/names"
for want in "1001 $IF_ROUTER_C" "$RS $IF_ROUTER_S" "107 eth7" "1002 $IF_ROUTER_S" "108 eth8"; do
    grep -qx "$want" "$WORK/names" || fail "options records lack ifIndex/ifName \"$want\""
done
# tshark leaves empty ifDescr out of its list: the alias is looked for on its own.
tshark -r "$WORK/ipfix.pcap" -d "udp.port==$IPFIX_PORT,cflow" -T fields -e cflow.if_descr \
    2>/dev/null | grep -q "towards the server" || fail "the alias is not in ifDescr"

echo "== IPFIX and v5: flow ifindexes"
check_flows() {
    local name=$1 pcap=$2 port=$3
    tshark_fields "$pcap" "$port" "cflow.dstport" cflow.dstport cflow.inputint cflow.outputint \
        | sort -u >"$WORK/$name.flows"
    cat "$WORK/$name.flows"
    grep -qx "7100 1001 $RS" "$WORK/$name.flows" || fail "$name: 7100 flow not 1001 -> $RS"
    grep -qx "7200 1001 1002" "$WORK/$name.flows" || fail "$name: 7200 flow not 1001 -> 1002"
}
check_flows ipfix "$WORK/ipfix.pcap" "$IPFIX_PORT"
check_flows v5 "$WORK/v5.pcap" "$V5_PORT"

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
