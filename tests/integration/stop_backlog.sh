#!/usr/bin/env bash
# SIGTERM with a backlog: nflowd is stopped (SIGSTOP) while 60,000 UDP packets cross the NFLOG
# rule, so they wait in its netlink socket; then SIGCONT + SIGTERM. Every packet the rule
# counted must be either exported or reported lost: the sum of the collector's records plus
# the P of the stop line `stopped: F flows exported, L flows lost, P packets lost` equals the
# rule's packet counter exactly, and nflowd exits 0.
#   A  the default receive buffer holds the whole backlog: nothing may be lost
#   B  a small one (--rcvbuf) overflows while nflowd is stopped: what the kernel dropped is
#      counted from the NFLOG sequence numbers (a few packets after the backlog show the last
#      gap), and the statistics' `unaccounted` carries the stop line's figure
#   client -- router (iptables FORWARD -j NFLOG, nflowd, v5_collector.py on lo) -- server
# usage: stop_backlog.sh PATH/TO/nflowd        (root; exits 77 when a tool is missing)
set -euo pipefail

NFLOWD=${1:?usage: stop_backlog.sh PATH/TO/nflowd}
PACKETS=${STOP_BACKLOG_PACKETS:-60000}
HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS=$HERE/../tools
# shellcheck source=netns_lib.sh
source "$HERE/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$HERE/check_lib.sh"
netns_require
for tool in python3 ss; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done
[[ -x $NFLOWD ]] || { echo "not executable: $NFLOWD" >&2; exit 1; }

netns_setup
WORK_KEEP_FAILED=1
work_setup netns_cleanup

GROUP=$((6000 + $$ % 1000))
PORT=$((25000 + $$ % 1000))

# The server drops the datagrams silently: no ICMP error crosses the rule.
in_server iptables -A INPUT -p udp --dport 9999:10010 -j DROP
in_router iptables -A FORWARD -j NFLOG --nflog-group "$GROUP" --nflog-size 128

# run_case NAME AFTER NFLOWD_ARGS...: one stop with a backlog; AFTER=1 sends a few packets
# once nflowd has read the backlog, then shows the statistics (SIGUSR1), before SIGTERM.
run_case() {
    local name=$1 after=$2 w=$WORK/$1
    shift 2
    echo "== $name"
    netns_bg "$NS_ROUTER" "$w.collector.out" "$w.collector.err" \
        python3 "$TOOLS/v5_collector.py" --port "$PORT" --out "$w.records.json" --duration 120
    local collector=$NETNS_LAST_PID
    netns_wait_listen "$NS_ROUTER" u "$PORT"
    netns_start_nflowd "$NS_ROUTER" "$w.log" --group "$GROUP" --debug 1 --threads 2 \
        --destination "127.0.0.1:$PORT" "$@"
    # The rule's counter from here on: only the test's own packets.
    in_router iptables -Z FORWARD

    kill -STOP "$NFLOWD_PID"
    # Bounded by count and time; 4 flows of 32-byte datagrams.
    in_client python3 "$TOOLS/flow_sender.py" flood --dst "$SERVER_IP" --count "$PACKETS" \
        --flows 4 --sizes 32 --sport 43000 --max-seconds 30 >"$w.sent"
    sleep 0.5 # the kernel's batch timer (qtimeout) fires meanwhile: the batches wait queued
    kill -CONT "$NFLOWD_PID"
    local shown=-1
    if ((after)); then
        sleep 1 # the backlog is read
        in_client python3 "$TOOLS/flow_sender.py" flows --dst "$SERVER_IP" --flows 1 \
            --packets 5 --sport 41000 --max-seconds 10 >/dev/null
        sleep 0.5 # past qtimeout: the kernel sent them
        kill -USR1 "$NFLOWD_PID"
        netns_wait_for "$w.log" "group $GROUP: received" 50 || fail "$name: no statistics"
        shown=$(grep "group $GROUP: received" "$w.log" | tail -1 |
            sed -n 's/.*unaccounted \([0-9]*\).*/\1/p')
    fi
    local rule
    read -r rule _ < <(in_router iptables -L FORWARD -v -x -n | awk '/NFLOG/ { print $1, $2 }')
    netns_stop_nflowd "$NFLOWD_PID" "$w.log"
    netns_stop "$collector" || true
    check_case "$name" "$w" "$rule" "$shown"
}

# check_case NAME W RULE SHOWN: the stop line's format; exported + packets lost = RULE;
# SHOWN (-1: not taken) = the statistics' unaccounted figure before the stop.
check_case() {
    local name=$1 w=$2 rule=$3 shown=$4 line lost_flows lost exported
    line=$(grep -o "stopped: .*" "$w.log" || true)
    echo "   $(cat "$w.sent"); rule $rule; $line"
    local format='^stopped: [0-9]+ flows exported, [0-9]+ flows lost, [0-9]+ packets lost$'
    [[ $line =~ $format ]] || fail "$name: stop line is not '$format': '$line'"
    lost_flows=$(sed -n 's/.*, \([0-9]*\) flows lost,.*/\1/p' <<<"$line")
    lost=$(sed -n 's/.* \([0-9]*\) packets lost$/\1/p' <<<"$line")
    exported=$(python3 -c 'import json, sys
print(sum(json.loads(l).get("packets", 0) for l in open(sys.argv[1])))' "$w.records.json")
    ((rule >= PACKETS)) || fail "$name: only $rule packets crossed the rule (sent $PACKETS)"
    [[ ${lost_flows:-1} == 0 ]] || fail "$name: flows lost at export: ${lost_flows:-?}"
    if ((exported + ${lost:-0} == rule)); then
        pass "$name: exported $exported + lost ${lost:-0} = $rule crossed the rule"
    else
        fail "$name: exported $exported + lost ${lost:-?} = $((exported + ${lost:-0})) != rule $rule"
    fi
    ((shown < 0)) && return 0
    ((${lost:-0} > 0)) || fail "$name: the small buffer lost nothing; nothing proven"
    [[ $shown == "${lost:-x}" ]] || fail "$name: statistics say unaccounted '$shown', stop line $lost"
}

run_case A 0
run_case B 1 --rcvbuf 262144

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
