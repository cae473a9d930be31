#!/usr/bin/env bash
# A destination that cannot be reached yet is not a bad configuration (issue 11, item 2),
# live in namespaces. The collectors sit in the server namespace on addresses of subnets the
# router has no route to until the test adds one:
#   1 nflowd starts with such a destination: it runs, counts the datagrams as unreachable
#     (statistics and log), and once `ip route add` gives a route the flows reach the
#     collector, whose first v5 sequence says how many flows it missed;
#   2 SIGHUP to a config file naming another unroutable destination: applied, counted,
#     exported there once routed; 3 the same through `nflowctl set destination`;
#   4 SIGHUP with an invalid file (bad value, bad line, malformed address): nothing changes
#     (nflowctl get), "configuration not changed" logged, the daemon runs on and exits 0.
# usage: dest_unreachable.sh PATH/TO/nflowd PATH/TO/nflowctl PATH/TO/v5_collector.py
set -euo pipefail

NFLOWD=${1:?usage: dest_unreachable.sh nflowd nflowctl v5_collector.py}
NFLOWCTL=${2:-}
COLLECTOR=${3:?usage}
# shellcheck source=netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
netns_require
command -v python3 >/dev/null || { echo "SKIP: python3 missing" >&2; exit 77; }
[[ -x $NFLOWCTL ]] || { echo "SKIP: no nflowctl" >&2; exit 77; }

netns_setup
work_setup netns_cleanup
WORK_KEEP_FAILED=1

GROUP=$((6000 + $$ % 1000))
CID=$((300000 + $$))
CONF=$WORK/nflowd.conf
LOG=$WORK/nflowd.log
write_conf() { printf '%s\n' "group = $GROUP" "$@" >"$CONF"; }

records() { grep -c '"src"' "$1" 2>/dev/null || true; }
# json EXPR: EXPR evaluated on `nflowctl stats --json` as `d`.
json() {
    ctl stats --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}
# unreachable DEST: that destination's unreachable count, or -1 if it is not in the stats.
unreachable() {
    json "next((x['errors']['unreachable'] for x in d['destinations'] if x['destination'] == '$1'), -1)"
}
alive() { kill -0 "$NFLOWD_PID" 2>/dev/null; }
traffic() { netns_udp "$NS_CLIENT" "$SERVER_IP" 9999 "$1" 100; }

# wait_unreachable DEST: traffic, then (bounded) until DEST counts unreachable datagrams.
wait_unreachable() {
    local i n=0
    traffic 3
    for ((i = 0; i < 50; i++)); do
        n=$(unreachable "$1")
        ((n > 0)) && break
        sleep 0.2
    done
    ((n > 0)) && pass "$1: $n datagrams counted unreachable" ||
        fail "$1: no unreachable datagram counted ($n): $(ctl stats | grep '^destination')"
}

# wait_records FILE DEST: traffic, then (bounded) until the collector writing FILE has flows.
wait_records() {
    local i
    traffic 3
    for ((i = 0; i < 50 && $(records "$1") == 0; i++)); do sleep 0.2; done
    (($(records "$1") > 0)) && pass "$2: flows arrive once routed" ||
        fail "$2: no flow reached the collector after the route was added"
}

# Collectors on addresses of three subnets the router has no route to yet.
for n in 3 4 5; do
    ip -n "$NS_SERVER" addr add "10.201.$n.2/32" dev lo
    netns_bg "$NS_SERVER" "$WORK/c$n.out" "$WORK/c$n.err" python3 "$COLLECTOR" \
        --bind "10.201.$n.2" --port "1205$n" --out "$WORK/c$n.json" --duration 120
done
for n in 3 4 5; do
    netns_wait_for "$WORK/c$n.out" ready 50 || { cat "$WORK/c$n.err" >&2; exit 1; }
done
in_server iptables -A INPUT -p udp --dport 9999 -j DROP
in_router iptables -I FORWARD 1 -j NFLOG --nflog-group "$GROUP" --nflog-size 128
in_router ip route get 10.201.3.2 >/dev/null 2>&1 && die "the router already routes 10.201.3.2"

echo "== 1: start with a destination that has no route yet"
write_conf "destination = 10.201.3.2:12053" "inactive_timeout = 1"
netns_start_nflowd "$NS_ROUTER" "$LOG" --config "$CONF" --control_id "$CID" --debug 1
sleep 0.5
alive && pass "nflowd runs" || die "nflowd exited: $(tail -3 "$LOG")"
wait_unreachable 10.201.3.2:12053
netns_wait_for "$LOG" 'destination 10.201.3.2:12053: .*unreachable [1-9]' 30 ||
    fail "the unreachable datagrams were not logged"
in_router ip route add 10.201.3.0/24 via "$SERVER_IP"
lost=$(json "d['export']['lost_flows']")
wait_records "$WORK/c3.json" 10.201.3.2:12053
# v5 counts the flows exported, not those a collector got: the gap shows the flows it missed.
seq=$(head -1 "$WORK/c3.json" | python3 -c 'import json, sys; print(json.load(sys.stdin)["seq"])')
((seq == lost && lost > 0)) && pass "first sequence $seq = the $lost flows lost before" ||
    fail "first sequence at the collector $seq, flows lost before it $lost"

echo "== 2: SIGHUP to a destination that has no route yet"
write_conf "destination = 10.201.4.2:12054" "inactive_timeout = 1"
kill -HUP "$NFLOWD_PID"
netns_wait_for "$LOG" 'SIGHUP: configuration re-read' 50 || fail "SIGHUP not applied: $(tail -3 "$LOG")"
alive || die "nflowd exited on SIGHUP: $(tail -3 "$LOG")"
[[ $(ctl get destination) == "destination = 10.201.4.2:12054" ]] ||
    fail "after SIGHUP: $(ctl get destination)"
wait_unreachable 10.201.4.2:12054
in_router ip route add 10.201.4.0/24 via "$SERVER_IP"
wait_records "$WORK/c4.json" 10.201.4.2:12054

echo "== 3: nflowctl set destination with no route yet"
ctl set destination 10.201.5.2:12055 >/dev/null || fail "nflowctl set destination refused"
[[ $(ctl get destination) == "destination = 10.201.5.2:12055" ]] ||
    fail "after set: $(ctl get destination)"
wait_unreachable 10.201.5.2:12055
in_router ip route add 10.201.5.0/24 via "$SERVER_IP"
wait_records "$WORK/c5.json" 10.201.5.2:12055

echo "== 4: SIGHUP with an invalid file changes nothing"
before=$(ctl get destination inactive_timeout active_timeout)
# Each file changes valid options too: none of them may be applied.
bad_files=(
    "destination = 10.201.4.2:99999|inactive_timeout = 7|active_timeout = 60"
    "destination = 10.201.4.2:12054|inactive_timeout = 7|this line is no option"
    "destination = 10.201.4.256:12054|inactive_timeout = 7"
    "destination = 10.201.4.2:12054|inactive_timeout = banana"
)
for spec in "${bad_files[@]}"; do
    IFS='|' read -r -a lines <<<"$spec"
    write_conf "${lines[@]}"
    seen=$(grep -c 'SIGHUP: configuration not changed' "$LOG" || true)
    kill -HUP "$NFLOWD_PID"
    for ((i = 0; i < 50; i++)); do
        (($(grep -c 'SIGHUP: configuration not changed' "$LOG" || true) > seen)) && break
        sleep 0.1
    done
    (($(grep -c 'SIGHUP: configuration not changed' "$LOG" || true) > seen)) ||
        fail "[$spec]: no 'configuration not changed' line"
    alive || die "nflowd exited on SIGHUP [$spec]: $(tail -3 "$LOG")"
    after=$(ctl get destination inactive_timeout active_timeout)
    [[ $after == "$before" ]] && pass "[$spec]: nothing changed" ||
        fail "[$spec]: changed from [$before] to [$after]"
done
grep 'SIGHUP: configuration not changed' "$LOG" | tail -2

echo "== stop"
netns_stop_nflowd "$NFLOWD_PID" "$LOG"

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
