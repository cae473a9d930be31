#!/usr/bin/env bash
# Live NFLOG capture against the real kernel, inside private namespaces: what nflog_probe
# counts (packets, sum of IP lengths) must equal the router's iptables NFLOG rule counters;
# under forced socket overruns, delivered + lost (sequence gaps) must still equal them; and
# a second binder of a group must be refused with a message naming the group.
# usage: nflog_live.sh PATH/TO/nflog_probe
set -euo pipefail

PROBE=${1:?usage: nflog_live.sh PATH/TO/nflog_probe}
# shellcheck source=netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
netns_require

netns_setup
work_setup netns_cleanup

GROUP=$((4000 + $$ % 1000))
field() { # field NAME FILE: value of NAME=... in the probe's totals line
    grep -o "\b$1=[0-9]*" "$2" | tail -1 | cut -d= -f2
}
rule_counters() { # "packets bytes" of the first FORWARD rule in the router
    in_router iptables -L FORWARD -v -x -n | awk 'NR == 3 { print $1, $2 }'
}
stop_probe() { # stop_probe PID OUTFILE: SIGTERM, wait, require the totals line
    netns_stop "$1" || fail "probe exited with $?"
    grep -q '^packets=' "$2" || fail "probe printed no totals: $(cat "$2")"
}

# The UDP sink drops silently: no ICMP errors, so the forwarded count is known exactly.
in_server iptables -A INPUT -p udp --dport 9999 -j DROP
in_router iptables -A FORWARD -j NFLOG --nflog-group "$GROUP" --nflog-size 128

echo "== counts match the rule counters (group $GROUP)"
netns_bg "$NS_ROUTER" "$WORK/a.out" "$WORK/a.err" "$PROBE" --group "$GROUP" --duration 60
PROBE_A=$NETNS_LAST_PID
netns_wait_for "$WORK/a.out" '^ready' || { cat "$WORK/a.err" >&2; exit 1; }

echo "== a second binder is refused"
if in_router "$PROBE" --group "$GROUP" --duration 1 >"$WORK/b.out" 2>"$WORK/b.err"; then
    fail "second probe on group $GROUP was allowed"
fi
grep -q "NFLOG group $GROUP: already bound by another process" "$WORK/b.err" ||
    fail "unexpected error text: $(cat "$WORK/b.err")"
cat "$WORK/b.err"

# Traffic whose forwarded packet count is known: UDP to a silent sink (small, and large
# enough to be cut at snaplen), refused TCP connections (SYN + RST each), ICMP echo if ping
# is installed (request + reply each).
netns_udp "$NS_CLIENT" "$SERVER_IP" 9999 100 1
netns_udp "$NS_CLIENT" "$SERVER_IP" 9999 50 333
netns_udp "$NS_CLIENT" "$SERVER_IP" 9999 20 1400
netns_tcp_refused "$NS_CLIENT" "$SERVER_IP" 9998 25
EXPECT=$((100 + 50 + 20 + 2 * 25))
if command -v ping >/dev/null; then
    in_client ping -q -c 20 -i 0.01 -s 1200 -W 2 "$SERVER_IP" >/dev/null
    EXPECT=$((EXPECT + 2 * 20))
fi
sleep 0.5 # let the kernel flush its last batch (qtimeout)
stop_probe "$PROBE_A" "$WORK/a.out"
read -r RULE_PKTS RULE_BYTES < <(rule_counters)
cat "$WORK/a.out"
echo "iptables: packets=$RULE_PKTS bytes=$RULE_BYTES"
((RULE_PKTS == EXPECT)) || fail "rule saw $RULE_PKTS packets, sent $EXPECT"
(($(field packets "$WORK/a.out") == RULE_PKTS)) || fail "packet count differs from the rule"
(($(field bytes "$WORK/a.out") == RULE_BYTES)) || fail "byte sum differs from the rule"
(($(field lost "$WORK/a.out") == 0)) || fail "loss reported without overload"
(($(field malformed "$WORK/a.out") == 0)) || fail "malformed messages from the kernel"
echo "kernel timestamps on $(field timestamps "$WORK/a.out") of $(field packets "$WORK/a.out") packets"

echo "== overruns: delivered + lost = rule counter"
GROUP2=$((GROUP + 1))
in_router iptables -F FORWARD
in_router iptables -Z FORWARD
in_router iptables -A FORWARD -j NFLOG --nflog-group "$GROUP2" --nflog-size 128
# A small socket buffer, one packet per datagram and a consumer that sleeps while the
# flood runs: the kernel must drop whole messages, and the sequence numbers must show it.
netns_bg "$NS_ROUTER" "$WORK/c.out" "$WORK/c.err" "$PROBE" --group "$GROUP2" --duration 60 \
    --rcvbuf 16384 --qthreshold 1 --stall-ms 2000
PROBE_C=$NETNS_LAST_PID
netns_wait_for "$WORK/c.out" '^ready' || { cat "$WORK/c.err" >&2; exit 1; }
netns_udp "$NS_CLIENT" "$SERVER_IP" 9999 3000 64
sleep 2.5 # the stall ends and the probe drains what fitted
# Losses at the very end only show once a later number arrives.
netns_udp "$NS_CLIENT" "$SERVER_IP" 9999 5 64
sleep 0.5
stop_probe "$PROBE_C" "$WORK/c.out"
read -r RULE_PKTS RULE_BYTES < <(rule_counters)
cat "$WORK/c.out"
echo "iptables: packets=$RULE_PKTS bytes=$RULE_BYTES"
PKTS=$(field packets "$WORK/c.out")
LOST=$(field lost "$WORK/c.out")
(($(field enobufs "$WORK/c.out") > 0)) || fail "no overrun provoked"
((LOST > 0)) || fail "no loss counted"
((PKTS + LOST == RULE_PKTS)) || fail "delivered $PKTS + lost $LOST != rule $RULE_PKTS"
(($(field malformed "$WORK/c.out") == 0)) || fail "malformed messages from the kernel"

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
