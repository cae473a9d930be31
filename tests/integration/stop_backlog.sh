#!/usr/bin/env bash
# SIGTERM with a backlog: nflowd is stopped (SIGSTOP) while 60,000 UDP packets cross the NFLOG
# rule, so they wait in its netlink socket; then SIGCONT + SIGTERM. Every packet the rule
# counted must be either exported or reported lost: the sum of the collector's records plus
# the P of the stop line `stopped: F flows exported, L flows lost, P packets lost` equals the
# rule's packet counter exactly, and nflowd exits 0.
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

netns_bg "$NS_ROUTER" "$WORK/collector.out" "$WORK/collector.err" \
    python3 "$TOOLS/v5_collector.py" --port "$PORT" --out "$WORK/records.json" --duration 120
COLLECTOR=$NETNS_LAST_PID
netns_wait_listen "$NS_ROUTER" u "$PORT"

netns_start_nflowd "$NS_ROUTER" "$WORK/nflowd.log" --group "$GROUP" --debug 1 --threads 2 \
    --destination "127.0.0.1:$PORT"
# The rule's counter from here on: only the test's own packets.
in_router iptables -Z FORWARD

kill -STOP "$NFLOWD_PID"
# Bounded by count and time; 4 flows of 32-byte datagrams.
in_client python3 "$TOOLS/flow_sender.py" flood --dst "$SERVER_IP" --count "$PACKETS" \
    --flows 4 --sizes 32 --sport 43000 --max-seconds 30 >"$WORK/sent"
sleep 0.5 # the kernel's batch timer (qtimeout) fires meanwhile: the batches wait queued
read -r RULE _ < <(in_router iptables -L FORWARD -v -x -n | awk '/NFLOG/ { print $1, $2 }')
kill -CONT "$NFLOWD_PID"
netns_stop_nflowd "$NFLOWD_PID" "$WORK/nflowd.log"
netns_stop "$COLLECTOR" || true

LINE=$(grep -o "stopped: .*" "$WORK/nflowd.log" || true)
echo "   $(cat "$WORK/sent"); rule $RULE; $LINE"
FORMAT='^stopped: [0-9]+ flows exported, [0-9]+ flows lost, [0-9]+ packets lost$'
[[ $LINE =~ $FORMAT ]] || fail "stop line is not '$FORMAT': '$LINE'"
LOST_FLOWS=$(sed -n 's/.*, \([0-9]*\) flows lost,.*/\1/p' <<<"$LINE")
LOST=$(sed -n 's/.* \([0-9]*\) packets lost$/\1/p' <<<"$LINE")
EXPORTED=$(python3 -c 'import json, sys
print(sum(json.loads(l).get("packets", 0) for l in open(sys.argv[1])))' "$WORK/records.json")

((RULE >= PACKETS)) || fail "only $RULE packets crossed the rule (sent $PACKETS)"
[[ ${LOST_FLOWS:-1} == 0 ]] || fail "flows lost at export: ${LOST_FLOWS:-?}"
if ((EXPORTED + ${LOST:-0} == RULE)); then
    pass "exported $EXPORTED + lost ${LOST:-0} = $RULE crossed the rule"
else
    fail "exported $EXPORTED + lost ${LOST:-?} = $((EXPORTED + ${LOST:-0})) != rule $RULE"
fi

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
