#!/usr/bin/env bash
# NAT translations from conntrack on a real router (client -- router -- server namespaces):
# a masquerade and a port forward, what conntrack_probe learns from the events and from the
# start-up dump, and the translation the NAT table gives the flows a FORWARD rule sees. It
# also shows that NEW events already carry the masquerade (the probe takes NEW and DESTROY
# only: no UPDATE is needed) and that no event is lost.
# usage: conntrack_nat.sh PATH/TO/conntrack_probe
set -euo pipefail

PROBE=${1:?usage: conntrack_nat.sh PATH/TO/conntrack_probe}
# shellcheck source=netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
netns_require
for tool in conntrack python3; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done

netns_setup
work_setup netns_cleanup

# udp_from NS SPORT DST DPORT: one datagram from a fixed source port.
udp_from() {
    ip netns exec "$1" python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[1])))
s.sendto(b"x", (sys.argv[2], int(sys.argv[3])))' "$2" "$3" "$4"
}
expect_line() { # expect_line PATTERN WHAT
    grep -qE -- "$1" "$WORK/probe.out" || fail "$2: no line matching '$1'"
}

# The server side is "outside": the router masquerades behind 10.201.2.1 and forwards its
# port 8080 to the client's port 80.
in_router iptables -t nat -A POSTROUTING -o "$IF_ROUTER_S" -j MASQUERADE
in_router iptables -t nat -A PREROUTING -i "$IF_ROUTER_S" -p udp --dport 8080 \
    -j DNAT --to-destination "$CLIENT_IP:80"
in_router conntrack -F 2>/dev/null || true

echo "== a connection opened before the probe"
udp_from "$NS_CLIENT" 40000 "$SERVER_IP" 9
sleep 0.2

netns_bg "$NS_ROUTER" "$WORK/probe.out" "$WORK/probe.err" "$PROBE" --duration 60
PROBE_PID=$NETNS_LAST_PID
netns_wait_for "$WORK/probe.out" '^ready' || die "probe did not start: $(cat "$WORK/probe.err")"

echo "== new connections: masqueraded UDP and TCP, a port forward"
udp_from "$NS_CLIENT" 40001 "$SERVER_IP" 9
netns_tcp_refused "$NS_CLIENT" "$SERVER_IP" 81 1
udp_from "$NS_SERVER" 7777 "$ROUTER_IP_S" 8080
sleep 0.5
in_router conntrack -D >/dev/null 2>&1 || true
sleep 0.5
netns_stop "$PROBE_PID" || fail "probe exited with $?"
cat "$WORK/probe.out"

C=${CLIENT_IP//./\\.} S=${SERVER_IP//./\\.} R=${ROUTER_IP_S//./\\.}
expect_line "^event create dumped=1 proto=17 orig=$C/40000>$S/9 reply=$S/9>$R/[0-9]+" \
    "the dump holds the older connection, masqueraded"
expect_line "^lookup flow=$C/40000>$S/9 xsrc=$R/[0-9]+ xdst=$S/9 reply=0" \
    "the older connection's client flow gets the router's address"
expect_line "^event create dumped=0 proto=17 orig=$C/40001>$S/9 reply=$S/9>$R/[0-9]+" \
    "the NEW event of a masqueraded connection carries its translation"
expect_line "^lookup flow=$C/40001>$S/9 xsrc=$R/[0-9]+ xdst=$S/9 reply=0" "masqueraded flow"
expect_line "^lookup flow=$S/9>$C/40001 xsrc=$S/9 xdst=$R/[0-9]+ reply=1" "its reply flow"
expect_line "^event create dumped=0 proto=6 orig=$C/[0-9]+>$S/81 reply=$S/81>$R/[0-9]+" \
    "a masqueraded TCP connection"
expect_line "^lookup flow=$S/7777>$C/80 xsrc=$S/7777 xdst=$R/8080 reply=0" \
    "the port-forwarded flow gets the public address and port"
expect_line "^lookup flow=$C/80>$S/7777 xsrc=$R/8080 xdst=$S/7777 reply=1" \
    "the forwarded server's reply leaves from the public port"
expect_line "^event destroy dumped=0 proto=17 orig=$C/40001>$S/9" "DESTROY after conntrack -D"
expect_line "^totals .*lost_events=0 " "no event lost"
expect_line "^totals .*dumps=1 " "one dump"

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
