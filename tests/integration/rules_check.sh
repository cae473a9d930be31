#!/usr/bin/env bash
# Keeps rules/ from rotting. Every iptables/ip6tables file passes iptables-restore --test and
# then really loads (--noflush) into a scratch namespace on top of an existing firewall:
# the NFLOG rule (or the jump to it) must be first in each chain it touches, chain policies
# and existing rules must survive, and every NFLOG rule must carry --nflog-size 128 and a
# --nflog-threshold. Every nftables file passes nft -c -f, loads twice (idempotent: one
# table) and logs with snaplen 128 and a queue-threshold. Every file has its comment header.
# Then the router and host files are loaded into the client -- router -- server namespaces
# with nflowd reading groups 5-8: each forwarded (or received/sent) packet must be counted
# exactly once, and the nftables spread file must use more than one group.
# usage: rules_check.sh RULES_DIR PATH/TO/nflowd
set -euo pipefail

RULES=${1:?usage: rules_check.sh RULES_DIR PATH/TO/nflowd}
NFLOWD=${2:?usage: rules_check.sh RULES_DIR PATH/TO/nflowd}
# shellcheck source=netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
netns_require
for tool in iptables-restore ip6tables-restore nft; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done

SCRATCH="${NETNS_TAG}x"
cleanup_rules() {
    ip netns del "$SCRATCH" 2>/dev/null || true
    netns_cleanup || true
}
work_setup cleanup_rules

in_scratch() { ip netns exec "$SCRATCH" "$@"; }
fresh_scratch() {
    ip netns del "$SCRATCH" 2>/dev/null || true
    ip netns add "$SCRATCH"
}

shopt -s nullglob
files=("$RULES"/*.iptables "$RULES"/*.ip6tables "$RULES"/*.nft)
((${#files[@]} >= 8)) || fail "expected at least 8 rule files in $RULES, found ${#files[@]}"

for f in "${files[@]}"; do
    name=$(basename "$f")
    head -12 "$f" | grep -q '^# nflowd: ' || fail "$name: no '# nflowd: ...' header"
    grep -q '^# Load: ' "$f" || fail "$name: header does not say how to load it"
    grep -q -- '--group' "$f" || fail "$name: header does not name the nflowd --group"
done

echo "== iptables-restore / ip6tables-restore files"
for f in "$RULES"/*.iptables "$RULES"/*.ip6tables; do
    name=$(basename "$f")
    tool=iptables
    [[ $f == *.ip6tables ]] && tool=ip6tables
    fresh_scratch
    # An existing firewall the file must leave alone.
    for chain in INPUT FORWARD OUTPUT; do
        in_scratch "$tool" -P "$chain" DROP
        in_scratch "$tool" -A "$chain" -p tcp --dport 22 -j ACCEPT
    done
    in_scratch "$tool-restore" --test --noflush <"$f" || { fail "$name: --test refused it"; continue; }
    in_scratch "$tool-restore" --noflush <"$f" || { fail "$name: loading failed"; continue; }
    chains=$(grep -oE '^-[IA] (INPUT|FORWARD|OUTPUT)' "$f" | awk '{print $2}' | sort -u)
    [[ -n $chains ]] || fail "$name: touches no built-in chain"
    for chain in $chains; do
        first=$(in_scratch "$tool" -S "$chain" | sed -n 2p)
        [[ $first == *"-j NFLOG"* || $first == *"-j NFLOWD"* ]] ||
            fail "$name: first rule of $chain is '$first'"
        in_scratch "$tool" -S "$chain" | grep -q -- "-P $chain DROP" ||
            fail "$name: changed the policy of $chain"
        in_scratch "$tool" -S "$chain" | grep -q -- '--dport 22 -j ACCEPT' ||
            fail "$name: removed an existing rule of $chain"
    done
    nflog_rules=$(in_scratch "$tool" -S | grep -c -- '-j NFLOG' || true)
    ((nflog_rules > 0)) || fail "$name: no NFLOG rule loaded"
    bad=$(in_scratch "$tool" -S | grep -- '-j NFLOG' | grep -v -- '--nflog-size 128' |
        grep -c . || true)
    ((bad == 0)) || fail "$name: NFLOG rule without --nflog-size 128"
    bad=$(in_scratch "$tool" -S | grep -- '-j NFLOG' | grep -v -- '--nflog-threshold' |
        grep -c . || true)
    ((bad == 0)) || fail "$name: NFLOG rule without --nflog-threshold"
    echo "ok $name: $nflog_rules NFLOG rule(s), first in $(echo "$chains" | tr '\n' ' ')"
done

echo "== nftables files"
for f in "$RULES"/*.nft; do
    name=$(basename "$f")
    fresh_scratch
    in_scratch nft -c -f "$f" || { fail "$name: nft -c refused it"; continue; }
    in_scratch nft -f "$f" || { fail "$name: loading failed"; continue; }
    in_scratch nft -f "$f" || fail "$name: loading it a second time failed"
    tables=$(in_scratch nft list tables | grep -c . || true)
    ((tables == 1)) || fail "$name: $tables tables after loading twice"
    listing=$(in_scratch nft list ruleset)
    logs=$(grep -c 'log group' <<<"$listing" || true)
    ((logs > 0)) || fail "$name: no log group rule"
    bad=$(grep 'log group' <<<"$listing" | grep -vc 'snaplen 128 queue-threshold' || true)
    ((bad == 0)) || fail "$name: log rule without snaplen 128 / queue-threshold"
    grep 'type filter hook' <<<"$listing" | grep -v 'priority filter - 10' | grep -q . &&
        fail "$name: a base chain not at priority filter - 10"
    echo "ok $name: $logs log rule(s)"
done
ip netns del "$SCRATCH"

echo "== live: every packet counted once"
netns_setup
trap work_cleanup EXIT # back from netns_setup's own trap
# Silent sinks: no ICMP errors, so the packet counts are known exactly.
in_server iptables -A INPUT -p udp --dport 9999 -j DROP

SENT=0
# Forwarded traffic to 32 addresses behind the router (only SERVER_IP exists; the others
# are forwarded and then fail ARP, which is after FORWARD).
send_forwarded() {
    local i
    for ((i = 0; i < 32; i++)); do
        netns_udp "$NS_CLIENT" "10.201.2.$((100 + i))" 9999 2 64
    done
    netns_udp "$NS_CLIENT" "$SERVER_IP" 9999 10 100
    SENT=$((32 * 2 + 10))
}
# To and from the server: UDP into a DROP (input only), refused TCP (SYN in, RST out).
send_host() {
    netns_udp "$NS_CLIENT" "$SERVER_IP" 9999 20 100
    netns_tcp_refused "$NS_CLIENT" "$SERVER_IP" 9998 5
    SENT=$((20 + 2 * 5))
}
clear_rules() { # clear_rules NS: removes what the rule files add, keeps the sink
    ip netns exec "$1" nft delete table inet nflowd 2>/dev/null || true
    ip netns exec "$1" iptables -D FORWARD -j NFLOWD 2>/dev/null || true
    ip netns exec "$1" iptables -F NFLOWD 2>/dev/null || true
    ip netns exec "$1" iptables -X NFLOWD 2>/dev/null || true
    local chain rule
    for chain in INPUT FORWARD OUTPUT; do
        while rule=$(ip netns exec "$1" iptables -S "$chain" | grep -m1 -- '-j NFLOG'); do
            # shellcheck disable=SC2086
            ip netns exec "$1" iptables ${rule/-A /-D }
        done
    done
}
# live_check FILE NS SENDER MIN_GROUPS
live_check() {
    local file=$1 ns=$2 sender=$3 min_groups=$4 name log total=0 used=0 g n
    name=$(basename "$file")
    log="$WORK/$name.log"
    case $file in
    *.nft) ip netns exec "$ns" nft -f "$file" ;;
    *) ip netns exec "$ns" iptables-restore --noflush <"$file" ;;
    esac
    netns_bg "$ns" "$log" "$log" "$NFLOWD" --group 5-8 --destination 127.0.0.1:2055 --debug 1
    local pid=$NETNS_LAST_PID
    netns_wait_for "$log" "started" 50 || { fail "$name: nflowd did not start: $(cat "$log")"; return; }
    "$sender"
    sleep 0.5 # the kernel's last batch (qtimeout)
    kill -USR1 "$pid"
    netns_wait_for "$log" "group 8: " 50 || fail "$name: no statistics"
    netns_stop "$pid" || fail "$name: nflowd exited with $?"
    for g in 5 6 7 8; do
        # "group 5: received N, lost ..." (older daemons: "packets N")
        n=$(grep -oE "group $g: [a-z]+ [0-9]+" "$log" | tail -1 | awk '{print $4}')
        total=$((total + ${n:-0}))
        ((${n:-0} > 0)) && used=$((used + 1))
    done
    ((total == SENT)) || fail "$name: nflowd got $total packets, $SENT were sent"
    ((used >= min_groups)) || fail "$name: $used group(s) used, expected at least $min_groups"
    echo "ok $name: $total of $SENT packets, over $used group(s)"
    clear_rules "$ns"
}
live_check "$RULES/router.iptables" "$NS_ROUTER" send_forwarded 1
live_check "$RULES/router.nft" "$NS_ROUTER" send_forwarded 1
live_check "$RULES/router-spread.iptables" "$NS_ROUTER" send_forwarded 1
live_check "$RULES/router-spread.nft" "$NS_ROUTER" send_forwarded 2
live_check "$RULES/host.iptables" "$NS_SERVER" send_host 1
live_check "$RULES/host.nft" "$NS_SERVER" send_host 1

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
