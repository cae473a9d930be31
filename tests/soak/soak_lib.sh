# Shared by the soak and fault scripts: the client -- router -- server namespaces of
# tests/integration/netns_lib.sh, nflowd in the router reading an NFLOG rule in FORWARD,
# v5_sink.py collectors on the router's loopback, and the figures every check needs:
# the NFLOG rule's counter (packets that crossed), nflowd's `nflowctl stats --json`, and the
# collectors' totals. Source it after setting NFLOWD and NFLOWCTL; call soak_setup.
#
# The conservation law checked everywhere:
#   collector packets + maxflows drops + NFLOG lost = packets across the rule
# (every packet the rule saw is either in an exported flow or in one of nflowd's loss
# counters, and nothing is in two of them).
#
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are used by the scripts that source this
# shellcheck disable=SC2016 # awk programs in single quotes

SOAK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../integration/netns_lib.sh
source "$SOAK_DIR/../integration/netns_lib.sh"
# shellcheck source=../integration/check_lib.sh
source "$SOAK_DIR/../integration/check_lib.sh"

GROUP=$((6000 + $$ % 1000))
CID=$((0x20000000 + $$))     # control id: our own, so parallel runs do not meet
PORT_BASE=$((23000 + ($$ % 1000) * 4))

note() { echo "   $*"; }

soak_require() {
    netns_require
    local tool
    for tool in python3 ss timeout; do
        command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
    done
    [[ -x $NFLOWD ]] || { echo "not executable: $NFLOWD" >&2; exit 1; }
    [[ -x $NFLOWCTL ]] || { echo "not executable: $NFLOWCTL" >&2; exit 1; }
}

# Extra cleanup steps (PIDs of helpers that are not in a namespace) run before netns_cleanup.
SOAK_LOCAL_PIDS=()
soak_cleanup() {
    local pid
    for pid in "${SOAK_LOCAL_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    netns_cleanup || true
}

soak_setup() {
    netns_setup
    WORK_KEEP_FAILED=1
    work_setup soak_cleanup /tmp/nflowd-soak.XXXXXX
}

# The router's rule: the NFLOG rule first, then DROP for the test's UDP, so that the server
# never answers (no ICMP port unreachable flows) and only the client's packets cross.
router_rules() {
    in_router iptables -F FORWARD
    in_router iptables -A FORWARD -j NFLOG --nflog-group "$GROUP" --nflog-size 128
    in_router iptables -A FORWARD -s "$CLIENT_IP" -p udp -j DROP
}
rule_packets() {
    in_router iptables -L FORWARD -v -x -n | awk '/NFLOG/ { print $1; exit }'
}

# start_sink NAME PORT [v5_sink args...] -> SINK_PID; totals in $WORK/NAME.json
start_sink() {
    local name=$1 port=$2
    shift 2
    rm -f "$WORK/$name.json"
    netns_bg "$NS_ROUTER" "$WORK/$name.out" "$WORK/$name.err" \
        python3 "$SOAK_DIR/v5_sink.py" --port "$port" --out "$WORK/$name.json" \
        --duration "${SINK_DURATION:-900}" "$@"
    SINK_PID=$NETNS_LAST_PID
    netns_wait_listen "$NS_ROUTER" u "$port"
}
# sink NAME FIELD: one total of collector NAME (-1 if unknown, so comparisons fail loudly)
sink() {
    python3 -c 'import json, sys
try:
    print(json.load(open(sys.argv[1]))[sys.argv[2]])
except Exception:
    print(-1)' "$WORK/$1.json" "$2"
}
# sink_wait_idle NAME SECONDS: bounded wait until NAME has received nothing for SECONDS.
sink_wait_idle() {
    local i idle
    for ((i = 0; i < 300; i++)); do
        idle=$(sink "$1" idle)
        awk -v a="$idle" -v b="$2" 'BEGIN { exit !(a >= b) }' && return 0
        sleep 0.1
    done
    return 1
}
stop_sink() { netns_stop "$1" || true; }

# start_nflowd LOG ARGS... -> NFLOWD_PID (nflowd in the router, our group and control id)
start_nflowd() {
    netns_start_nflowd "$NS_ROUTER" "$1" --group "$GROUP" --control_id "$CID" --debug 1 "${@:2}"
}
alive() { kill -0 "$1" 2>/dev/null; }

# stats_json FILE: `nflowctl stats --json` into FILE
stats_json() { ctl stats --json >"$1"; }
# js FILE EXPR: EXPR evaluated in python with d = the JSON in FILE
js() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2"
}
# Figures of a stats file, as the conservation law wants them.
J_RECEIVED='sum(g["received"] for g in d["groups"])'
J_LOST='sum(g["lost"] for g in d["groups"])'
J_DROPS='d["packets"]["maxflows_dropped_packets"]'
J_IN='d["in"]["packets"]'

# settle FILE: bounded wait (up to ~10 s) until nflowd has taken in every packet that crossed
# the rule: received + lost (sequence gaps) = rule counter, and the workers' tables have seen
# every accounted packet. The last stats are left in FILE. Returns 1 on timeout.
# A daemon started while the rule had already counted packets compares increments from
# SETTLE_RULE_BASE (rule) and SETTLE_RECV_BASE (received + lost) on.
SETTLE_RULE_BASE=0
SETTLE_RECV_BASE=0
# Twice in a row: one report reads the parse and table figures before the groups' received
# counts, so a batch that arrives in between can show as received but not yet accounted while
# the (older) accounted and table figures agree; the next report sees it in both.
settle() {
    local file=$1 i rule held=0
    for ((i = 0; i < 100; i++)); do
        rule=$(rule_packets)
        if stats_json "$file" 2>/dev/null &&
            [[ $(js "$file" "$J_RECEIVED + $J_LOST - $SETTLE_RECV_BASE == $rule - $SETTLE_RULE_BASE and $J_IN == d['packets']['accounted']") == True ]]; then
            ((++held >= 2)) && return 0
        else
            held=0
        fi
        sleep 0.1
    done
    return 1
}
# settle_stable FILE: for when no exact base is known (a daemon restarted under load): bounded
# wait until received + lost is unchanged for 1 s and the tables have seen every packet.
settle_stable() {
    local file=$1 i prev=-1 now same=0
    for ((i = 0; i < 100; i++)); do
        if stats_json "$file" 2>/dev/null &&
            [[ $(js "$file" "$J_IN == d['packets']['accounted']") == True ]]; then
            now=$(js "$file" "$J_RECEIVED + $J_LOST")
            if ((now == prev)); then
                ((++same >= 10)) && return 0
            else
                same=0
            fi
            prev=$now
        fi
        sleep 0.1
    done
    return 1
}

# A few datagrams after a load: an NFLOG gap (lost messages) only shows once a later
# sequence number arrives.
tail_packets() {
    in_client python3 "$SOAK_DIR/churn_sender.py" --dst "$SERVER_IP" --count 20 \
        --max-seconds 5 --socks 1 --sport 28500 --dports 7-8 >/dev/null
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# udp_snmp NS FIELD: a counter of the namespace's Udp line in /proc/net/snmp (per netns).
udp_snmp() {
    ip netns exec "$1" awk -v f="$2" '$1 == "Udp:" && !h { for (i = 2; i <= NF; i++) n[i] = $i; h = 1; next }
        $1 == "Udp:" && h { for (i = 2; i <= NF; i++) if (n[i] == f) print $i }' /proc/net/snmp
}
