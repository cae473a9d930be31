#!/usr/bin/env bash
# Bridged traffic lands in the same flow live and with --read (issue 11, item 6). A Linux
# bridge in its own namespace joins two hosts on one subnet:
#
#   sender (NS_CLIENT) 10.203.0.1 --- pa [br0] pc (NS_ROUTER) --- 10.203.0.2 receiver (NS_SERVER)
#
# With br_netfilter (bridge-nf-call-iptables, per namespace) bridged IPv4 crosses iptables'
# FORWARD chain with br0 as the logical in/out device and the ports as the physical ones;
# nftables' bridge family (the last two rounds) logs them without br_netfilter, with the same
# devices.
# Two NFLOG rules log each packet twice: to nflowd (live) and to `tcpdump -i nflog:G2`,
# whose capture then goes through `nflowd --read`. The in/out ifindexes of the flows must be
# the same in both: br0's by default (ipt_NETFLOW's default), the ports' with --physdev yes
# (ipt_NETFLOW built with --enable-physdev-override).
# usage: bridge_ifindex.sh PATH/TO/nflowd PATH/TO/v5_collector.py
set -euo pipefail

NFLOWD=${1:?usage: bridge_ifindex.sh nflowd v5_collector.py}
COLLECTOR=${2:?usage}
# shellcheck source=netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
netns_require
for tool in python3 tcpdump; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done

# netns_lib's names and cleanup, the bridge topology instead of its routed one.
bridge_setup() {
    netns_create
    ip -n "$NS_ROUTER" link add br0 type bridge
    ip -n "$NS_ROUTER" link set "$IF_ROUTER_C" master br0 up
    ip -n "$NS_ROUTER" link set "$IF_ROUTER_S" master br0 up
    ip -n "$NS_ROUTER" link set br0 up
    ip -n "$NS_CLIENT" addr add 10.203.0.1/24 dev "$IF_CLIENT"
    ip -n "$NS_SERVER" addr add 10.203.0.2/24 dev "$IF_SERVER"
    ip -n "$NS_CLIENT" link set "$IF_CLIENT" up
    ip -n "$NS_SERVER" link set "$IF_SERVER" up
}

[[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] ||
    { echo "SKIP: no br_netfilter (modprobe br_netfilter)" >&2; exit 77; }
bridge_setup
work_setup netns_cleanup
WORK_KEEP_FAILED=1

in_router sysctl -qw net.bridge.bridge-nf-call-iptables=1
G1=$((7000 + $$ % 1000))
G2=$((G1 + 1000))
in_router iptables -A FORWARD -p udp --dport 9999 -j NFLOG --nflog-group "$G1"
in_router iptables -A FORWARD -p udp --dport 9999 -j NFLOG --nflog-group "$G2"
in_server iptables -A INPUT -p udp --dport 9999 -j DROP
# ARP through the bridge first, so the counted burst is all the rules see.
netns_udp "$NS_CLIENT" 10.203.0.2 9 1 1
sleep 0.3

ifindex() { in_router cat "/sys/class/net/$1/ifindex"; }
BR=$(ifindex br0)
PORT_IN=$(ifindex "$IF_ROUTER_C")
PORT_OUT=$(ifindex "$IF_ROUTER_S")
echo "br0 $BR, ports $PORT_IN (sender side) and $PORT_OUT (receiver side)"

# collect PORT OUT: a v5 collector in the bridge namespace; PID in COLLECTOR_PID.
collect() {
    netns_bg "$NS_ROUTER" "$2.out" "$2.err" python3 "$COLLECTOR" --port "$1" --out "$2" \
        --duration 60
    COLLECTOR_PID=$NETNS_LAST_PID
    netns_wait_for "$2.out" ready 50 || die "collector on $1: $(cat "$2.err")"
}

# interfaces FILE: the distinct "in_if out_if" pairs of the flows a collector wrote.
interfaces() {
    python3 -c 'import json, sys
pairs = {(r["in_if"], r["out_if"]) for r in map(json.loads, open(sys.argv[1])) if "src" in r}
print(" ".join(f"{i}:{o}" for i, o in sorted(pairs)))' "$1"
}

# captured PCAP: the packets in a capture so far (a record's first line starts with its
# time; tcpdump adds hex lines for the bridge family's records, which it does not decode).
captured() { tcpdump -r "$1" 2>/dev/null | grep -c '^[0-9]' || true; }

# packets FILE: the packets of the flows a collector wrote, summed.
packets() {
    python3 -c 'import json, sys
print(sum(r["packets"] for r in map(json.loads, open(sys.argv[1])) if "src" in r))' "$1"
}

# round NAME EXPECTED ARGS...: live and --read with ARGS; both must report only EXPECTED.
round() {
    local name=$1 expected=$2 dir=$WORK/$1 port=$((20000 + $$ % 20000)) live replay
    shift 2
    mkdir -p "$dir"
    collect "$port" "$dir/live.json"
    local live_collector=$COLLECTOR_PID
    netns_start_nflowd "$NS_ROUTER" "$dir/nflowd.log" --group "$G1" \
        --destination "127.0.0.1:$port" --inactive_timeout 1 --debug 1 "$@"
    netns_bg "$NS_ROUTER" /dev/null "$dir/tcpdump.err" tcpdump -i "nflog:$G2" -U -Z root \
        -w "$dir/nflog.pcap"
    local tcpdump=$NETNS_LAST_PID
    netns_wait_for "$dir/tcpdump.err" "listening on" 50 || die "tcpdump: $(cat "$dir/tcpdump.err")"
    netns_udp "$NS_CLIENT" 10.203.0.2 9999 20 100
    # The kernel holds a group's batch up to 1 s (tcpdump leaves NFLOG's defaults): wait,
    # bounded, until every packet is in the file (-U writes each as it comes).
    local i
    for ((i = 0; i < 50 && $(captured "$dir/nflog.pcap") < 20; i++)); do sleep 0.1; done
    netns_stop "$tcpdump" || true
    netns_stop_nflowd "$NFLOWD_PID" "$dir/nflowd.log"
    sleep 0.3
    netns_stop "$live_collector" || true

    collect "$((port + 1))" "$dir/read.json"
    in_router "$NFLOWD" --read "$dir/nflog.pcap" --destination "127.0.0.1:$((port + 1))" "$@" \
        >"$dir/read.log" 2>&1 || fail "$name: nflowd --read failed: $(tail -3 "$dir/read.log")"
    sleep 0.3
    netns_stop "$COLLECTOR_PID" || true

    live=$(interfaces "$dir/live.json")
    replay=$(interfaces "$dir/read.json")
    [[ -n $live ]] || fail "$name: no flow exported live: $(tail -3 "$dir/nflowd.log")"
    [[ -n $replay ]] || fail "$name: no flow exported by --read: $(tail -3 "$dir/read.log")"
    # The same packets on both sides, or the comparison says nothing.
    [[ $(packets "$dir/live.json") == 20 && $(packets "$dir/read.json") == 20 ]] ||
        fail "$name: packets live $(packets "$dir/live.json"), --read $(packets "$dir/read.json"), sent 20"
    [[ $live == "$replay" ]] && pass "$name: live and --read agree ($live)" ||
        fail "$name: live reports in:out $live, --read $replay"
    [[ $live == "$expected" ]] && pass "$name: live reports $expected" ||
        fail "$name: live reports in:out $live, expected $expected"
    [[ $replay == "$expected" ]] && pass "$name: --read reports $expected" ||
        fail "$name: --read reports in:out $replay, expected $expected"
}

echo "== default: the bridge, as ipt_NETFLOW"
round default "$BR:$BR"
echo "== --physdev yes: the ports, as ipt_NETFLOW --enable-physdev-override"
round physdev "$PORT_IN:$PORT_OUT" --physdev yes

# nftables' bridge family logs bridged packets without br_netfilter, with the same devices
# (the bridge as INDEV/OUTDEV, the ports as PHYSINDEV/PHYSOUTDEV) and the IP header first.
if command -v nft >/dev/null; then
    in_router iptables -F FORWARD
    in_router sysctl -qw net.bridge.bridge-nf-call-iptables=0
    in_router nft -f - <<RULES
table bridge nflowd_test {
    chain forward {
        type filter hook forward priority 0;
        udp dport 9999 log group $G1
        udp dport 9999 log group $G2
    }
}
RULES
    echo "== nftables bridge family, no br_netfilter: default"
    round nft_default "$BR:$BR"
    echo "== nftables bridge family, no br_netfilter: --physdev yes"
    round nft_physdev "$PORT_IN:$PORT_OUT" --physdev yes
fi

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
