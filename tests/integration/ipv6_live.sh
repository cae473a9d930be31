#!/usr/bin/env bash
# IPv6 and IPv4 through a live router, exported as IPFIX and v9 (issue 12):
#   A  ICMPv6, TCP and UDP over IPv6 plus UDP over IPv4, --protocol 10: nfcapd/nfdump's
#      packets and bytes per family and protocol equal the ip6tables/iptables rule counters
#      exactly, 0 sequence failures; the same with --protocol 9
#   B  the collector restarts mid-run (it forgets the templates): flows decode again once
#      nflowd refreshes its templates (--template_timeout_rate 5), well within 60 s
# (`nflowctl set protocol` under traffic is nflowctl.sh's case H.)
#   client -- router (ip6tables/iptables FORWARD -j NFLOG, nflowd, nfcapd on lo) -- server
# usage: ipv6_live.sh PATH/TO/nflowd    (root; exits 77 when a tool is missing)
set -euo pipefail

NFLOWD=${1:?usage: ipv6_live.sh PATH/TO/nflowd}
HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS=$HERE/../tools
# shellcheck source=netns_lib.sh
source "$HERE/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$HERE/check_lib.sh"
netns_require
for tool in python3 ss ip6tables nfcapd nfdump ping; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done

netns_setup
WORK_KEEP_FAILED=1
work_setup netns_cleanup

GROUP=$((7000 + $$ % 1000))
PORT=$((26000 + $$ % 1000))
CLIENT6=fd00:201:1::2
ROUTER6_C=fd00:201:1::1
ROUTER6_S=fd00:201:2::1
SERVER6=fd00:201:2::2

# IPv6 on the two links (netns_create turned it off to keep the IPv4 tests quiet). Router
# solicitations, MLD and neighbour discovery stay on their link: they never cross FORWARD.
enable_ipv6() {
    local ns=$1 dev=$2 addr=$3
    # No duplicate address detection, for the link-local addresses either: neighbour
    # discovery would otherwise wait for it (seconds) before the first packet crosses.
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.accept_dad=0"
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=0"
    ip -n "$ns" addr add "$addr/64" dev "$dev" nodad
}
enable_ipv6 "$NS_CLIENT" "$IF_CLIENT" "$CLIENT6"
enable_ipv6 "$NS_ROUTER" "$IF_ROUTER_C" "$ROUTER6_C"
enable_ipv6 "$NS_ROUTER" "$IF_ROUTER_S" "$ROUTER6_S"
enable_ipv6 "$NS_SERVER" "$IF_SERVER" "$SERVER6"
in_router sysctl -qw net.ipv6.conf.all.forwarding=1
ip -n "$NS_CLIENT" -6 route add default via "$ROUTER6_C"
ip -n "$NS_SERVER" -6 route add default via "$ROUTER6_S"
# Neighbour caches filled now, so that later only the test's packets cross the router.
in_client ping -6 -c 1 -W 5 "$SERVER6" >/dev/null || die "no IPv6 path client -> server"

# The server drops UDP silently (no ICMP error crosses the rules) and accepts TCP on 8080.
in_server ip6tables -A INPUT -p udp -j DROP
in_server iptables -A INPUT -p udp -j DROP
# One rule per IPv6 protocol (by number: `-L -n` prints numbers), each with its own counters.
PROTOS6=(58 6 17)
for proto in "${PROTOS6[@]}"; do
    in_router ip6tables -A FORWARD -p "$proto" -j NFLOG --nflog-group "$GROUP" --nflog-size 128
done
in_router iptables -A FORWARD -j NFLOG --nflog-group "$GROUP" --nflog-size 128
netns_bg "$NS_SERVER" "$WORK/sink.out" "$WORK/sink.err" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 8080)); s.listen(16); s.settimeout(1)
end = time.monotonic() + 170
while time.monotonic() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.settimeout(5)
    try:
        while c.recv(65536):
            pass
    except socket.timeout:
        pass
    c.close()'
netns_wait_listen "$NS_SERVER" t 8080

# rule_counts FAMILY PROTO: "packets bytes" of the router's FORWARD rule for protocol number
# PROTO (6: the ip6tables rule of that protocol, 4: the iptables rule, PROTO ignored).
rule_counts() {
    if [[ $1 == 6 ]]; then
        in_router ip6tables -L FORWARD -v -x -n | awk -v p="$2" '/NFLOG/ && $4 == p { print $1, $2 }'
    else
        in_router iptables -L FORWARD -v -x -n | awk '/NFLOG/ { print $1, $2 }'
    fi
}

zero_rules() {
    in_router ip6tables -Z FORWARD
    in_router iptables -Z FORWARD
}

# exported DIR FAMILY PROTO: "packets bytes" nfdump finds in DIR for that family (4/6) and
# IP protocol number.
exported() {
    nfdump -R "$1" -q -N -o 'fmt:%sa|%pr|%pkt|%byt' 2>/dev/null | tr -d ' ' | awk -F'|' \
        -v fam="$2" -v proto="$3" '
        { f = index($1, ":") ? 6 : 4; p = $2 }
        p == "ICMP6" { p = 58 } p == "TCP" { p = 6 } p == "UDP" { p = 17 } p == "ICMP" { p = 1 }
        f == fam && (proto == "" || p == proto) { pk += $3; by += $4 }
        END { print pk + 0, by + 0 }'
}

seq_failures() {
    nfdump -R "$1" -I 2>/dev/null | awk -F': ' '/^Sequence failures/ { s += $2 } END { print s + 0 }'
}

start_collector() { # DIR
    netns_start_nfcapd "$NS_ROUTER" "$1" "$PORT" "$1.log" || die "nfcapd did not start"
}

mixed_traffic() {
    in_client ping -6 -c 10 -i 0.2 -W 2 "$SERVER6" >/dev/null || fail "ping -6 lost replies"
    in_client python3 "$TOOLS/flow_sender.py" flows --dst "$SERVER6" --flows 8 --packets 10 \
        --sport 42000 --max-seconds 20 >/dev/null
    in_client python3 "$TOOLS/flow_sender.py" flows --dst "$SERVER_IP" --flows 4 --packets 10 \
        --sport 43000 --max-seconds 20 >/dev/null
    in_client python3 -c '
import socket, sys
for i in range(5):
    s = socket.create_connection((sys.argv[1], 8080), timeout=5)
    s.sendall(b"t" * 20000)
    s.close()' "$SERVER6"
    # Each connection's teardown ends when the sink gets to close(): the rule counts it then.
    netns_wait_closed "$NS_SERVER" "sport = :8080" || true
    sleep 0.5 # past the kernel batch timer: every logged packet has reached nflowd
}

# Case A: exact accounting per family and protocol with PROTOCOL (10 or 9).
case_a() {
    local protocol=$1 dir=$WORK/a$1 log=$WORK/a$1.nflowd.log
    echo "== A: --protocol $protocol"
    start_collector "$dir"
    netns_start_nflowd "$NS_ROUTER" "$log" --group "$GROUP" --destination "127.0.0.1:$PORT" \
        --protocol "$protocol" --threads 2 --debug 1
    zero_rules
    mixed_traffic
    local -A want=()
    for proto in "${PROTOS6[@]}"; do want[6$proto]=$(rule_counts 6 "$proto"); done
    want[4]=$(rule_counts 4 "")
    netns_stop_nflowd "$NFLOWD_PID" "$log"
    netns_stop_nfcapd "$NS_ROUTER" "$NFCAPD_PID"
    for proto in "${PROTOS6[@]}"; do
        local got
        got=$(exported "$dir" 6 "$proto")
        [[ ${want[6$proto]%% *} -gt 0 ]] || fail "A$protocol: no IPv6 protocol $proto packet crossed the rule"
        if [[ $got == "${want[6$proto]}" ]]; then
            pass "A$protocol: IPv6 protocol $proto packets/bytes $got = rule"
        else
            fail "A$protocol: IPv6 protocol $proto exported '$got', rule '${want[6$proto]}'"
        fi
    done
    local got4
    got4=$(exported "$dir" 4 "")
    [[ $got4 == "${want[4]}" ]] && pass "A$protocol: IPv4 $got4 = rule" ||
        fail "A$protocol: IPv4 exported '$got4', rule '${want[4]}'"
    local sf
    sf=$(seq_failures "$dir")
    [[ $sf == 0 ]] && pass "A$protocol: 0 sequence failures" ||
        fail "A$protocol: $sf sequence failures"
}

# Case B: the collector restarts; batches sent after nflowd's next template refresh decode.
case_b() {
    local log=$WORK/b.log
    echo "== B: collector restart, --protocol 10 --template_timeout_rate 5"
    start_collector "$WORK/b1"
    netns_start_nflowd "$NS_ROUTER" "$log" --group "$GROUP" --destination "127.0.0.1:$PORT" \
        --protocol 10 --template_timeout_rate 5 --inactive_timeout 1 --debug 1
    in_client python3 "$TOOLS/flow_sender.py" flows --dst "$SERVER6" --flows 4 --packets 3 \
        --sport 44000 --max-seconds 20 >/dev/null
    sleep 3 # expired and exported to the first collector
    netns_stop_nfcapd "$NS_ROUTER" "$NFCAPD_PID"
    start_collector "$WORK/b2"
    local k
    for ((k = 1; k <= 4; k++)); do
        in_client python3 "$TOOLS/flow_sender.py" flows --dst "$SERVER6" --flows 4 \
            --packets 3 --sport $((44000 + k * 100)) --max-seconds 20 >/dev/null
        sleep 4
    done
    netns_stop_nflowd "$NFLOWD_PID" "$log"
    netns_stop_nfcapd "$NS_ROUTER" "$NFCAPD_PID"
    local before after
    before=$(exported "$WORK/b1" 6 17)
    [[ $before == "12 "* ]] && pass "B: 12 packets at the first collector" ||
        fail "B: first collector got '$before', want 12 packets"
    # Batches 3 and 4 leave the cache 9 s and more after the restart: after a refresh.
    after=$(nfdump -R "$WORK/b2" -q -N -o 'fmt:%sp|%pkt' 2>/dev/null | tr -d ' ' |
        awk -F'|' '$1 >= 44300 && $1 < 44500 { n += $2 } END { print n + 0 }')
    [[ $after == 24 ]] && pass "B: the restarted collector decodes batches 3-4 (24 packets)" ||
        fail "B: the restarted collector decoded $after packets of batches 3-4, want 24"
}

case_a 10
case_a 9
case_b

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
