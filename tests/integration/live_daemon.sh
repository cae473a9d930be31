#!/usr/bin/env bash
# nflowd live, end to end: client -- router -- server namespaces, an NFLOG rule in the router,
# nflowd in the router exporting to real collectors on the router's loopback (nfcapd for what
# arrived, tests/tools/v5_collector.py for when it arrived). Known traffic crosses the router
# and every exported figure is compared with the kernel's own counters:
#   A  accounting: packets/bytes per flow = iptables counting rules; ifindexes, TCP flags,
#      TOS; flows arrive within inactive_timeout + 2 s; active_timeout cuts a long ping into
#      several records whose sums are exact
#   B  SIGTERM exports every flow still in the cache; --threads 1 and 2 give identical flows
#   C  the nftables form of the rule gives the same flows as iptables
#   D  collector stopped and restarted: nflowd keeps running, counts the refusals, and every
#      flow sent after the restart arrives
#   E  overload (small rcvbuf, a bounded flood): nflowd survives, and accounted + lost (from
#      NFLOG sequence numbers) = packets that crossed the rule, exactly
# usage: live_daemon.sh PATH/TO/nflowd        (root; exits 77 when a tool is missing)
set -euo pipefail

NFLOWD=${1:?usage: live_daemon.sh PATH/TO/nflowd}
HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS=$HERE/../tools
# shellcheck source=netns_lib.sh
source "$HERE/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$HERE/check_lib.sh"
netns_require
for tool in nfcapd nfdump python3 nc ping ss nft timeout; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done
[[ -x $NFLOWD ]] || { echo "not executable: $NFLOWD" >&2; exit 1; }

netns_setup
WORK_KEEP_FAILED=1
work_setup netns_cleanup # the namespaces take their rules and nft tables with them

GROUP=$((5000 + $$ % 1000))
PORT_BASE=$((21000 + ($$ % 1000) * 4)) # collectors' ports, on the router's own loopback

# ---------------------------------------------------------------------------- helpers

ifindex() { ip -n "$1" -o link show dev "$2" | cut -d: -f1; }
IDX_RC=$(ifindex "$NS_ROUTER" "$IF_ROUTER_C") # router side towards the client
IDX_RS=$(ifindex "$NS_ROUTER" "$IF_ROUTER_S") # router side towards the server

start_collector() { # start_collector OUT PORT -> COLLECTOR_PID
    netns_bg "$NS_ROUTER" "$1.stdout" "$1.stderr" \
        python3 "$TOOLS/v5_collector.py" --port "$2" --out "$1" --duration 300
    COLLECTOR_PID=$NETNS_LAST_PID
    netns_wait_listen "$NS_ROUTER" u "$2"
}

start_nflowd() { # start_nflowd LOG ARGS... -> NFLOWD_PID
    netns_start_nflowd "$NS_ROUTER" "$1" --group "$GROUP" --debug 1 "${@:2}"
}

# nflowd_stats PID LOG: SIGUSR1, then wait (bounded) for the whole block in the log.
nflowd_stats() {
    local before i
    before=$(grep -c "export: flows" "$2" || true)
    kill -USR1 "$1"
    for ((i = 0; i < 50; i++)); do
        (($(grep -c "export: flows" "$2" || true) > before)) && break
        sleep 0.1
    done
    sleep 0.2 # the destination lines follow the export line
}
# stat_group FIELD LOG: FIELD (received, lost, enobufs) of the last "group" stats line.
# Both print -1 when the line is missing, so that a comparison fails instead of the script.
stat_group() {
    grep "group $GROUP: received" "$2" | tail -1 | grep -o "$1 [0-9]*" | awk '{ v = $2 } END { print v == "" ? -1 : v }'
}
stat_refused() {
    grep "destination .*: datagrams" "$1" | tail -1 | grep -o "refused [0-9]*" | awk '{ v = $2 } END { print v == "" ? -1 : v }'
}

# Counting rules: one per flow class and direction, no target, in a chain the packets visit
# before the NFLOG rule. Their counters are the kernel's ground truth for each flow.
# cnt_add NAME MATCH...: a counting rule named by its comment.
cnt_add() { in_router iptables -A CNT "${@:2}" -m comment --comment "$1"; }
install_counting_rules() {
    local c=$CLIENT_IP s=$SERVER_IP
    in_router iptables -N CNT
    cnt_add icmp_cs_10 -s "$c" -d "$s" -p icmp -m tos --tos 0x10/0xff
    cnt_add icmp_sc_10 -s "$s" -d "$c" -p icmp -m tos --tos 0x10/0xff
    cnt_add icmp_cs_20 -s "$c" -d "$s" -p icmp -m tos --tos 0x20/0xff
    cnt_add icmp_sc_20 -s "$s" -d "$c" -p icmp -m tos --tos 0x20/0xff
    cnt_add tcp_cs -s "$c" -d "$s" -p tcp --dport 5001
    cnt_add tcp_sc -s "$s" -d "$c" -p tcp --sport 5001
    cnt_add rst_cs -s "$c" -d "$s" -p tcp --dport 9998
    cnt_add rst_sc -s "$s" -d "$c" -p tcp --sport 9998
    local i
    for i in 0 1 2 3; do cnt_add "udp_$((40000 + i))" -s "$c" -d "$s" -p udp --sport $((40000 + i)); done
    cnt_add udp_41000 -s "$c" -d "$s" -p udp --sport 41000
}
# use_iptables_rule: FORWARD = CNT, then NFLOG; all counters zeroed.
use_iptables_rule() {
    in_router iptables -F FORWARD
    in_router iptables -Z CNT
    in_router iptables -A FORWARD -j CNT
    in_router iptables -A FORWARD -j NFLOG --nflog-group "$GROUP" --nflog-size 128
}
counter() { # counter NAME -> "packets bytes" of counting rule NAME
    in_router iptables -L CNT -v -x -n | awk -v n="/* $1 */" 'index($0, n) { print $1, $2 }'
}
nflog_rule_counter() {
    in_router iptables -L FORWARD -v -x -n | awk '/NFLOG/ { print $1, $2 }'
}

# nf_records DIR: every record nfcapd stored, one line each, columns found by name:
#   proto src sport dst dport tos packets bytes flags in out duration
nf_records() {
    nfdump -R "$1" -N -o csv 2>/dev/null | awk -F, '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $0 == "" || $1 == "Summary" { exit }
        {
            pr = $col["pr"]; p = (pr == "TCP") ? 6 : (pr == "UDP") ? 17 : (pr == "ICMP") ? 1 : pr
            print p, $col["sa"], $col["sp"], $col["da"], $col["dp"], $col["stos"], $col["ipkt"],
                  $col["ibyt"], $col["flg"], $col["in"], $col["out"], $col["td"]
        }'
}

# check_flow LABEL DIR COUNTER PROTO SRC SPORT DST DPORT TOS: sums the records of one flow
# key (SPORT/DPORT may be "*") and compares them with counting rule COUNTER; checks the
# ifindexes of every record. Sets FLOW_RECORDS, FLOW_FLAGS (union) and FLOW_MAXDUR.
check_flow() {
    local label=$1 dir=$2 name=$3 pr=$4 sa=$5 sp=$6 da=$7 dp=$8 tos=$9
    local want_in=$IDX_RC want_out=$IDX_RS cnt_p cnt_b line
    [[ $sa == "$SERVER_IP" ]] && { want_in=$IDX_RS; want_out=$IDX_RC; }
    read -r cnt_p cnt_b < <(counter "$name")
    line=$(nf_records "$dir" | awk -v pr="$pr" -v sa="$sa" -v sp="$sp" -v da="$da" -v dp="$dp" \
        -v tos="$tos" -v wi="$want_in" -v wo="$want_out" '
        $1 == pr && $2 == sa && $4 == da && $6 == tos && (sp == "*" || $3 == sp) &&
        (dp == "*" || $5 == dp) {
            n++; p += $7; b += $8
            if ($10 != wi || $11 != wo) bad++
            for (i = 1; i <= length($9); i++) if (substr($9, i, 1) != ".") f[substr($9, i, 1)] = 1
            if ($12 > dur) dur = $12
        }
        END { fl = ""; for (k in f) fl = fl k; printf "%d %d %d %d %s %s\n", n, p, b, bad, dur + 0, fl "-" }')
    local n p b bad
    read -r n p b bad FLOW_MAXDUR FLOW_FLAGS <<<"$line"
    FLOW_RECORDS=$n
    if ((n == 0)); then
        fail "$label: no record for $pr $sa:$sp > $da:$dp tos $tos (rule counted $cnt_p packets)"
    elif ((p != cnt_p || b != cnt_b)); then
        fail "$label: $n records sum to $p packets / $b bytes, the rule counted $cnt_p / $cnt_b"
    elif ((bad != 0)); then
        fail "$label: $bad records with in/out other than $want_in/$want_out"
    else
        pass "$label: $n record(s), $p packets, $b bytes = rule; if $want_in -> $want_out"
    fi
    ((cnt_p > 0)) || fail "$label: the traffic did not cross the router (counter 0)"
}
has_flags() { # has_flags LABEL WANTED: every letter of WANTED in FLOW_FLAGS
    local i
    for ((i = 0; i < ${#2}; i++)); do
        [[ $FLOW_FLAGS == *"${2:i:1}"* ]] || { fail "$1: flags '$FLOW_FLAGS' lack ${2:i:1}"; return; }
    done
    pass "$1: TCP flags include $2"
}

sender() { in_client python3 "$TOOLS/flow_sender.py" "$@" --dst "$SERVER_IP"; }

# The same traffic every time: identical flow keys, packets and bytes (used by B and C).
deterministic_traffic() {
    in_client ping -q -c 5 -i 0.1 -s 200 -Q 0x10 -W 2 "$SERVER_IP" >/dev/null
    sender flows --flows 4 --packets 25 --sizes 1,100,333,1000 --tcp-refused 3 >/dev/null
}

# Sinks on the server drop silently, so no ICMP error adds packets to the counts.
in_server iptables -A INPUT -p udp --dport 9999:10010 -j DROP
install_counting_rules
echo "router ifindexes: $IF_ROUTER_C=$IDX_RC $IF_ROUTER_S=$IDX_RS; NFLOG group $GROUP"

# ---------------------------------------------------------------------------- A
echo "== A: accounting, timeouts (inactive 2 s, active 2 s)"
INACTIVE=2
ACTIVE=2
use_iptables_rule
netns_start_nfcapd "$NS_ROUTER" "$WORK/A" $((PORT_BASE)) "$WORK/A.nfcapd.log"
NFCAPD_A=$NFCAPD_PID
start_collector "$WORK/A.json" $((PORT_BASE + 1))
COLLECTOR_A=$COLLECTOR_PID
start_nflowd "$WORK/A.log" --threads 2 --inactive_timeout $INACTIVE --active_timeout $ACTIVE \
    --destination "127.0.0.1:$PORT_BASE,127.0.0.1:$((PORT_BASE + 1))"
NFLOWD_A=$NFLOWD_PID

# A 6 s ping (TOS 0x20) runs under everything else: active_timeout must cut it.
in_client ping -q -c 30 -i 0.2 -s 100 -Q 0x20 -w 20 "$SERVER_IP" >/dev/null &
LONG_PING=$!
# A TCP transfer of known size: SYN, PSH (data), FIN and ACK from the client.
netns_bg "$NS_SERVER" /dev/null "$WORK/nc_server.err" timeout 30 nc -l -p 5001
NC_SERVER=$NETNS_LAST_PID
netns_wait_listen "$NS_SERVER" t 5001
head -c 2000000 /dev/zero | in_client timeout 20 nc -N "$SERVER_IP" 5001 ||
    fail "TCP transfer failed"
netns_stop "$NC_SERVER" || true # it has exited: the client saw its FIN
in_client ping -q -c 3 -i 0.2 -s 56 -Q 0x10 -W 2 "$SERVER_IP" >/dev/null || fail "short ping failed"
sender flows --flows 4 --packets 10 >/dev/null
wait "$LONG_PING" || fail "long ping failed"
# The last flow: its arrival is timed from the moment the sender returned.
sender flows --flows 1 --packets 5 --sport 41000 --dport 10005 >/dev/null
T_END=$(date +%s.%N)
sleep $((INACTIVE + 3)) # inactive timeout + 1 s partial-datagram wait + margin
T_CHECK=$(date +%s.%N)
netns_stop_nflowd "$NFLOWD_A" "$WORK/A.log"
netns_stop_nfcapd "$NS_ROUTER" "$NFCAPD_A"
netns_stop "$COLLECTOR_A" || true

check_flow "icmp echo tos 0x10" "$WORK/A" icmp_cs_10 1 "$CLIENT_IP" 0 "$SERVER_IP" 2048 16
check_flow "icmp reply tos 0x10" "$WORK/A" icmp_sc_10 1 "$SERVER_IP" 0 "$CLIENT_IP" 0 16
for dir in cs sc; do
    if [[ $dir == cs ]]; then
        check_flow "long ping echo" "$WORK/A" icmp_cs_20 1 "$CLIENT_IP" 0 "$SERVER_IP" 2048 32
    else
        check_flow "long ping reply" "$WORK/A" icmp_sc_20 1 "$SERVER_IP" 0 "$CLIENT_IP" 0 32
    fi
    ((FLOW_RECORDS >= 2)) || fail "6 s ping ($dir) not cut by active_timeout=$ACTIVE: $FLOW_RECORDS record(s)"
    # A record lasts at most active_timeout plus the expiry scan's granularity.
    awk -v d="$FLOW_MAXDUR" -v a=$ACTIVE 'BEGIN { exit !(d <= a + 0.5) }' ||
        fail "long ping ($dir): a record lasts $FLOW_MAXDUR s > active_timeout $ACTIVE"
done
check_flow "tcp client>server" "$WORK/A" tcp_cs 6 "$CLIENT_IP" "*" "$SERVER_IP" 5001 0
has_flags "tcp client>server" SAPF
[[ $FLOW_FLAGS != *R* ]] || fail "tcp client>server: RST flag in a clean transfer"
read -r _ tcp_bytes < <(counter tcp_cs)
((tcp_bytes > 2000000)) || fail "tcp client>server carried $tcp_bytes bytes < 2000000 sent"
check_flow "tcp server>client" "$WORK/A" tcp_sc 6 "$SERVER_IP" 5001 "$CLIENT_IP" "*" 0
has_flags "tcp server>client" SAF
for i in 0 1 2 3; do
    check_flow "udp $((40000 + i))" "$WORK/A" "udp_$((40000 + i))" 17 "$CLIENT_IP" $((40000 + i)) \
        "$SERVER_IP" $((9999 + i)) 0
done
check_flow "udp timed" "$WORK/A" udp_41000 17 "$CLIENT_IP" 41000 "$SERVER_IP" 10005 0
read -r rule_p _ < <(nflog_rule_counter)
total_p=$(nf_records "$WORK/A" | awk '{ p += $7 } END { print p + 0 }')
((total_p == rule_p)) || fail "nfdump total $total_p packets, NFLOG rule $rule_p"

# Arrival times: every record by T_CHECK (before SIGTERM), each within inactive + 2 s of
# its flow's last packet, and the timed flow within inactive + 2 s of the sender's end.
NF_COUNT=$(nf_records "$WORK/A" | wc -l)
python3 - "$WORK/A.json" "$T_END" "$T_CHECK" "$INACTIVE" "$NF_COUNT" <<'EOF' || fail "arrival times"
import json, sys
path, t_end, t_check, inactive, nf_count = sys.argv[1], *map(float, sys.argv[2:5]), int(sys.argv[5])
recs = [json.loads(l) for l in open(path)]
ok = True
errors = [r for r in recs if "error" in r]
if errors:
    print(f"collector: {len(errors)} undecodable datagrams: {errors[0]}"); ok = False
recs = [r for r in recs if "error" not in r]
early = [r for r in recs if r["arrival"] <= t_check]
if len(early) != nf_count:
    print(f"{len(early)} records arrived before SIGTERM, nfcapd has {nf_count} in all"); ok = False
late = max(r["arrival"] - r["last"] for r in early)
print(f"slowest record arrived {late:.2f} s after its flow's last packet")
if late > inactive + 2:
    print(f"a record arrived {late:.2f} s after its last packet > inactive {inactive} + 2"); ok = False
timed = [r for r in recs if r["sport"] == 41000]
if len(timed) != 1:
    print(f"timed flow: {len(timed)} records"); ok = False
else:
    d = timed[0]["arrival"] - t_end
    print(f"timed flow arrived {d:.2f} s after the sender stopped")
    if d > inactive + 2:
        print(f"timed flow arrived {d:.2f} s after its end > inactive {inactive} + 2"); ok = False
    # The v5 Last field must be the real time of the last packet, within clock granularity.
    if abs(timed[0]["last"] - t_end) > 0.5:
        print(f"timed flow Last = {timed[0]['last']:.3f}, sender ended {t_end:.3f}"); ok = False
sys.exit(0 if ok else 1)
EOF

# ---------------------------------------------------------------------------- B
echo "== B: SIGTERM exports the cache; --threads 1 and 2 give the same flows"
for threads in 1 2; do
    use_iptables_rule
    netns_start_nfcapd "$NS_ROUTER" "$WORK/B$threads" $((PORT_BASE + 2)) "$WORK/B$threads.nfcapd.log"
    nfc=$NFCAPD_PID
    # Timeouts far beyond the test: only SIGTERM can make these flows leave the cache.
    start_nflowd "$WORK/B$threads.log" --threads "$threads" --inactive_timeout 600 \
        --active_timeout 1800 --destination "127.0.0.1:$((PORT_BASE + 2))"
    deterministic_traffic
    # The kernel holds a partial batch up to qtimeout (0.1 s) before handing it over.
    sleep 0.5
    nflowd_stats "$NFLOWD_PID" "$WORK/B$threads.log"
    grep -q "export: flows 0," "$WORK/B$threads.log" ||
        fail "threads $threads: flows exported before SIGTERM with 600 s timeouts"
    netns_stop_nflowd "$NFLOWD_PID" "$WORK/B$threads.log"
    netns_stop_nfcapd "$NS_ROUTER" "$nfc"
    check_flow "B$threads icmp echo" "$WORK/B$threads" icmp_cs_10 1 "$CLIENT_IP" 0 "$SERVER_IP" 2048 16
    check_flow "B$threads icmp reply" "$WORK/B$threads" icmp_sc_10 1 "$SERVER_IP" 0 "$CLIENT_IP" 0 16
    check_flow "B$threads syn" "$WORK/B$threads" rst_cs 6 "$CLIENT_IP" "*" "$SERVER_IP" 9998 0
    has_flags "B$threads syn" S
    check_flow "B$threads rst" "$WORK/B$threads" rst_sc 6 "$SERVER_IP" 9998 "$CLIENT_IP" "*" 0
    has_flags "B$threads rst" RA
    for i in 0 1 2 3; do
        check_flow "B$threads udp $((40000 + i))" "$WORK/B$threads" "udp_$((40000 + i))" 17 \
            "$CLIENT_IP" $((40000 + i)) "$SERVER_IP" $((9999 + i)) 0
    done
    # Everything, not only the flows checked above: 2 icmp + 3 + 3 tcp + 4 udp keys.
    nf_records "$WORK/B$threads" | awk '{ $12 = ""; print }' | sort >"$WORK/B$threads.flows"
    n=$(wc -l <"$WORK/B$threads.flows")
    ((n == 12)) || fail "threads $threads: $n records, want 12 (one per flow key)"
done
if diff "$WORK/B1.flows" "$WORK/B2.flows" >"$WORK/B.diff"; then
    pass "--threads 1 and --threads 2: identical flows ($(wc -l <"$WORK/B1.flows") records)"
else
    fail "--threads 1 and --threads 2 differ:"
    cat "$WORK/B.diff" >&2
fi

# SIGTERM at once after the traffic: 40 packets are fewer than --qthreshold (64), so the
# kernel still holds them in its batch for up to qtimeout (0.1 s). They crossed the rule
# before the signal, so they must be exported (or at least counted as lost), not vanish.
echo "== B3: SIGTERM right after the last packet"
use_iptables_rule
netns_start_nfcapd "$NS_ROUTER" "$WORK/B3" $((PORT_BASE + 2)) "$WORK/B3.nfcapd.log"
nfc=$NFCAPD_PID
start_nflowd "$WORK/B3.log" --threads 2 --inactive_timeout 600 \
    --destination "127.0.0.1:$((PORT_BASE + 2))"
sender flows --flows 4 --packets 10 >/dev/null
nflowd_b3=$NFLOWD_PID
netns_stop_nflowd "$nflowd_b3" "$WORK/B3.log"
netns_stop_nfcapd "$NS_ROUTER" "$nfc"
read -r rule_p _ < <(nflog_rule_counter)
acc=$(nf_records "$WORK/B3" | awk '{ p += $7 } END { print p + 0 }')
if ((acc == rule_p)); then
    pass "SIGTERM right after the traffic: all $rule_p packets exported"
else
    fail "SIGTERM right after the traffic: $((rule_p - acc)) of $rule_p packets that crossed" \
        "the rule before SIGTERM were neither exported nor counted ($(grep -o "stopped:.*" "$WORK/B3.log"))"
fi

# ---------------------------------------------------------------------------- C
echo "== C: nftables 'log group $GROUP snaplen 128' gives the same flows"
in_router iptables -F FORWARD
in_router iptables -Z CNT
in_router iptables -A FORWARD -j CNT # counting stays in iptables-nft; logging moves to nft
in_router nft add table inet nflowd_test
in_router nft add chain inet nflowd_test forward '{ type filter hook forward priority 0; }'
in_router nft add rule inet nflowd_test forward counter log group "$GROUP" snaplen 128
netns_start_nfcapd "$NS_ROUTER" "$WORK/C" $((PORT_BASE + 2)) "$WORK/C.nfcapd.log"
nfc=$NFCAPD_PID
start_nflowd "$WORK/C.log" --threads 2 --inactive_timeout 600 --destination "127.0.0.1:$((PORT_BASE + 2))"
deterministic_traffic
sleep 0.5
netns_stop_nflowd "$NFLOWD_PID" "$WORK/C.log"
netns_stop_nfcapd "$NS_ROUTER" "$nfc"
check_flow "nft udp 40000" "$WORK/C" udp_40000 17 "$CLIENT_IP" 40000 "$SERVER_IP" 9999 0
nf_records "$WORK/C" | awk '{ $12 = ""; print }' | sort >"$WORK/C.flows"
if diff "$WORK/B2.flows" "$WORK/C.flows" >"$WORK/C.diff"; then
    pass "nftables rule: the same $(wc -l <"$WORK/C.flows") flows as the iptables rule"
else
    fail "nftables rule gives other flows than iptables:"
    cat "$WORK/C.diff" >&2
fi
read -r nft_p nft_b < <(in_router nft list chain inet nflowd_test forward |
    awk '/log group/ { for (i = 1; i < NF; i++) { if ($i == "packets") p = $(i + 1); if ($i == "bytes") b = $(i + 1) } } END { print p, b }')
read -r nf_p nf_b < <(nf_records "$WORK/C" | awk '{ p += $7; b += $8 } END { print p + 0, b + 0 }')
((nft_p == nf_p && nft_b == nf_b)) || fail "nft counter $nft_p/$nft_b != nfdump $nf_p/$nf_b"
in_router nft delete table inet nflowd_test

# ---------------------------------------------------------------------------- D
echo "== D: collector stopped and restarted"
use_iptables_rule
PORT_D=$((PORT_BASE + 3))
netns_start_nfcapd "$NS_ROUTER" "$WORK/D1" "$PORT_D" "$WORK/D1.nfcapd.log"
nfc=$NFCAPD_PID
start_nflowd "$WORK/D.log" --threads 2 --inactive_timeout 1 --destination "127.0.0.1:$PORT_D"
NFLOWD_D=$NFLOWD_PID
# One flow, exported on its own: inactive 1 s + the 1 s partial-datagram wait, with margin.
one_flow() {
    sender flows --flows 1 --packets 3 --sport "$1" --dport 10006 >/dev/null
    sleep 3
}
one_flow 42000
netns_stop_nfcapd "$NS_ROUTER" "$nfc"
# Three datagrams to a closed port: each one sent draws an ICMP port unreachable, which the
# next send reports as ECONNREFUSED.
one_flow 42001
one_flow 42002
one_flow 42003
kill -0 "$NFLOWD_D" 2>/dev/null || fail "nflowd died while the collector was down"
netns_start_nfcapd "$NS_ROUTER" "$WORK/D2" "$PORT_D" "$WORK/D2.nfcapd.log"
nfc=$NFCAPD_PID
one_flow 42004
one_flow 42005
nflowd_stats "$NFLOWD_D" "$WORK/D.log"
refused=$(stat_refused "$WORK/D.log")
((${refused:-0} > 0)) && pass "refused sends counted: $refused" ||
    fail "no refused send counted: $(grep 'destination' "$WORK/D.log" | tail -1)"
kill -0 "$NFLOWD_D" 2>/dev/null && pass "nflowd still running" || fail "nflowd died"
netns_stop_nflowd "$NFLOWD_D" "$WORK/D.log"
netns_stop_nfcapd "$NS_ROUTER" "$nfc"
nf_records "$WORK/D1" | awk '$3 == 42000' | grep -q . || fail "flow before the stop missing"
for sp in 42004 42005; do
    if nf_records "$WORK/D2" | awk -v sp=$sp '$3 == sp' | grep -q .; then
        pass "flow $sp, sent after the restart, arrived"
    else
        fail "flow $sp, sent after the collector restarted, never arrived" \
            "($(grep -o "stopped:.*" "$WORK/D.log"))"
    fi
done

# ---------------------------------------------------------------------------- E
# One NFLOG message carries one packet and its own sequence number, whatever qthreshold
# batches into a datagram; a dropped datagram leaves a gap of as many numbers as packets.
# So accounted + lost = crossed the rule must hold for qthreshold 1 and for 64.
for qthr in 1 64; do
    echo "== E: overload, --rcvbuf 65536 --qthreshold $qthr"
    use_iptables_rule
    netns_start_nfcapd "$NS_ROUTER" "$WORK/E$qthr" $((PORT_BASE + 2)) "$WORK/E$qthr.nfcapd.log"
    nfc=$NFCAPD_PID
    start_nflowd "$WORK/E$qthr.log" --threads 2 --inactive_timeout 2 --rcvbuf 65536 \
        --qthreshold "$qthr" --destination "127.0.0.1:$((PORT_BASE + 2))"
    NFLOWD_E=$NFLOWD_PID
    # Two senders on two cores outrun one reader with a 64 KiB buffer; count and time bounded.
    sender flood --count 200000 --procs 2 --flows 4 --sizes 32 --sport 43000 --max-seconds 20 \
        >"$WORK/E$qthr.sent"
    sleep 1
    # A gap only shows once a later sequence number arrives: a few packets after the flood.
    sender flows --flows 1 --packets 5 --sport 41000 --dport 10005 >/dev/null
    sleep 0.5
    kill -0 "$NFLOWD_E" 2>/dev/null || fail "nflowd died under the flood"
    nflowd_stats "$NFLOWD_E" "$WORK/E$qthr.log"
    netns_stop_nflowd "$NFLOWD_E" "$WORK/E$qthr.log"
    netns_stop_nfcapd "$NS_ROUTER" "$nfc"
    read -r rule_p _ < <(nflog_rule_counter)
    acc=$(nf_records "$WORK/E$qthr" | awk '{ p += $7 } END { print p + 0 }')
    got=$(stat_group received "$WORK/E$qthr.log")
    lost=$(stat_group lost "$WORK/E$qthr.log")
    enobufs=$(stat_group enobufs "$WORK/E$qthr.log")
    echo "   $(cat "$WORK/E$qthr.sent"); rule $rule_p; nfdump $acc; nflowd received $got, lost $lost, enobufs $enobufs"
    ((lost > 0 && enobufs > 0)) || fail "qthreshold $qthr: the flood caused no loss; nothing proven"
    ((got == acc)) || fail "qthreshold $qthr: nflowd received $got packets, exported $acc"
    if ((acc + lost == rule_p)); then
        pass "qthreshold $qthr: accounted $acc + lost $lost = $rule_p crossed the rule"
    else
        fail "qthreshold $qthr: accounted $acc + lost $lost = $((acc + lost)) != rule $rule_p"
    fi
done

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
