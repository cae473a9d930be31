#!/usr/bin/env bash
# NAT from conntrack in nflowd's export (issue 13), on a masquerading router (client --
# router -- server namespaces, FORWARD -j NFLOG): with the defaults and --protocol 10 (then
# 9), nfdump (%xsa %xsp %xda %xdp) and tshark (cflow.post_natsource_ipv4_address) show, for
# every client flow, the router's outside address and the port the server really saw (the
# masquerade is forced onto ports 30000-30999, so the port changes); a DNAT port forward
# shows the destination translation; a TCP connection opened before nflowd started is
# annotated too (the start-up dump); the rule counters equal the exported totals.
# --natevents: one create and one delete per masqueraded connection, decoded by nfdump (NEL)
# and tshark; a burst of 10,000 connections: events exported + counted losses = events made.
# usage: nat_live.sh PATH/TO/nflowd PATH/TO/nflowctl
set -euo pipefail

NFLOWD=${1:?usage: nat_live.sh NFLOWD NFLOWCTL}
NFLOWCTL=${2:?usage: nat_live.sh NFLOWD NFLOWCTL}
# shellcheck source=netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
netns_require
for tool in conntrack nfcapd nfdump tshark python3 ss; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done

netns_setup
work_setup netns_cleanup

GROUP=$((5000 + $$ % 1000))
CID=$((0x30000000 + $$))
PORT=$((20000 + $$ % 10000))
N_UDP=20

# The router masquerades behind ROUTER_IP_S, UDP and TCP onto ports 30000-30999 (so the
# translated port differs from the client's), and forwards its port 8080 to the server's 80.
in_router iptables -t nat -A POSTROUTING -o "$IF_ROUTER_S" -p udp -j MASQUERADE --to-ports 30000-30999
in_router iptables -t nat -A POSTROUTING -o "$IF_ROUTER_S" -p tcp -j MASQUERADE --to-ports 30000-30999
in_router iptables -t nat -A PREROUTING -i "$IF_ROUTER_C" -p tcp --dport 8080 \
    -j DNAT --to-destination "$SERVER_IP:80"
in_router iptables -A FORWARD -j NFLOG --nflog-group "$GROUP" --nflog-size 128

# The server: a UDP sink on 9999 and TCP listeners on 80 and 5000, each writing down the
# address and port every datagram or connection came from (what the NAT made of it).
cat >"$WORK/server.py" <<'EOF'
import selectors, socket, sys
out = open(sys.argv[1], "a", buffering=1)
sel = selectors.DefaultSelector()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("", 9999))
sel.register(u, selectors.EVENT_READ, "udp")
for port in (80, 5000):
    t = socket.socket()
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("", port))
    t.listen(64)
    sel.register(t, selectors.EVENT_READ, "listen")
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if key.data == "udp":
            _, peer = s.recvfrom(2048)
            print("udp", peer[0], peer[1], file=out)
        elif key.data == "listen":
            c, peer = s.accept()
            print("tcp", peer[0], peer[1], c.getsockname()[1], file=out)
            sel.register(c, selectors.EVENT_READ, "conn")
        else:
            if not s.recv(4096):
                sel.unregister(s)
                s.close()
EOF
netns_bg "$NS_SERVER" /dev/null "$WORK/server.err" python3 "$WORK/server.py" "$WORK/seen.txt"
netns_wait_listen "$NS_SERVER" t 5000

# udp_from NS SPORT DST DPORT: one datagram from a fixed source port.
udp_from() {
    ip netns exec "$1" python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[1])))
s.sendto(b"x" * 20, (sys.argv[2], int(sys.argv[3])))' "$2" "$3" "$4"
}
# tcp_once NS DST DPORT SPORT: one connection from SPORT, a few bytes, closed.
tcp_once() {
    ip netns exec "$1" python3 -c 'import socket, sys
s = socket.socket()
s.bind(("", int(sys.argv[3])))
s.connect((sys.argv[1], int(sys.argv[2])))
s.sendall(b"hello")
s.close()' "$2" "$3" "$4"
}

rule_counters() { # "packets bytes" of the FORWARD NFLOG rule
    in_router iptables -L FORWARD -v -x -n | awk 'NR == 3 { print $1, $2 }'
}

# run_case PROTO: nflowd --protocol PROTO with the defaults otherwise; traffic; checks.
run_case() {
    local proto=$1 dir="$WORK/nfcapd$1" name="v$1"
    in_router conntrack -F >/dev/null 2>&1 || true
    : >"$WORK/seen.txt"
    rm -rf "$dir"
    # The long-lived connection, opened before nflowd: a byte at once, ten more once $WORK/go
    # exists (after nflowd started and the rule counters were zeroed), then held open.
    local lport=$((45000 + proto)) fport=$((46000 + proto))
    rm -f "$WORK/go"
    netns_bg "$NS_CLIENT" /dev/null "$WORK/long.err" python3 -c 'import os, socket, sys, time
s = socket.socket()
s.bind(("", int(sys.argv[3])))
s.connect((sys.argv[1], 5000))
s.sendall(b"x")
for i in range(300):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.1)
for i in range(10):
    s.sendall(b"x")
    time.sleep(0.1)
time.sleep(60)' "$SERVER_IP" "$WORK/go" "$lport"
    local long_pid=$NETNS_LAST_PID
    sleep 0.5
    netns_start_nfcapd "$NS_ROUTER" "$dir" "$PORT" "$WORK/nfcapd$proto.log"
    local nfcapd_pid=$NFCAPD_PID
    netns_bg "$NS_ROUTER" "$WORK/tshark$proto.log" "$WORK/tshark$proto.err" \
        tshark -i lo -f "udp port $PORT" -w "$WORK/$name.pcap"
    local tshark_pid=$NETNS_LAST_PID
    sleep 2
    netns_start_nflowd "$NS_ROUTER" "$WORK/nflowd$proto.log" --group "$GROUP" \
        --destination "127.0.0.1:$PORT" --protocol "$proto" --control_id "$CID" --debug 1
    sleep 0.5 # the long connection's ACKs are through
    in_router iptables -Z FORWARD
    touch "$WORK/go"
    local i
    for ((i = 0; i < N_UDP; i++)); do udp_from "$NS_CLIENT" $((41000 + i)) "$SERVER_IP" 9999; done
    tcp_once "$NS_CLIENT" "$ROUTER_IP_C" 8080 "$fport"
    sleep 1.5
    ctl stats >"$WORK/stats$proto.txt"
    netns_stop "$long_pid" || true
    # The long connection's teardown crosses the rule after its client is killed; nflowd
    # stopped before it ends would miss what the rule then counts.
    netns_wait_closed "$NS_SERVER" "( sport = :5000 or sport = :80 )" || true
    netns_stop_nflowd "$NFLOWD_PID" "$WORK/nflowd$proto.log"
    netns_stop_nfcapd "$NS_ROUTER" "$nfcapd_pid"
    sleep 0.5
    netns_stop "$tshark_pid" || true
    check_case "$proto" "$dir" "$lport" "$fport"
}

check_case() {
    local proto=$1 dir=$2 lport=$3 fport=$4 name="v$1"
    cat "$WORK/stats$proto.txt"
    grep -q '^conntrack: on' "$WORK/stats$proto.txt" || fail "$name: conntrack not on"
    nfdump -R "$dir" -q -N -o 'fmt:%pr|%sa|%sp|%da|%dp|%xsa|%xsp|%xda|%xdp|%pkt|%byt' |
        tr -d ' ' >"$WORK/flows$proto.txt"
    echo "-- nfdump ($name)"
    cat "$WORK/flows$proto.txt"
    local proto_s sa sp da dp xsa xsp xda xdp pkt byt seen
    local udp_ok=0 pkts=0 bytes=0
    while IFS='|' read -r proto_s sa sp da dp xsa xsp xda xdp pkt byt; do
        pkts=$((pkts + pkt))
        bytes=$((bytes + byt))
        [[ $sa == "$CLIENT_IP" && $proto_s == 17 ]] || continue
        seen=$(grep "^udp $ROUTER_IP_S $xsp\$" "$WORK/seen.txt" || true)
        if [[ $xsa == "$ROUTER_IP_S" && -n $seen && $xsp -ge 30000 && $xsp -le 30999 ]]; then
            udp_ok=$((udp_ok + 1))
        else
            fail "$name: UDP flow $sa:$sp -> $da:$dp has NAT source $xsa:$xsp (server saw: $(
                grep -c . "$WORK/seen.txt") datagrams)"
        fi
    done <"$WORK/flows$proto.txt"
    ((udp_ok == N_UDP)) || fail "$name: $udp_ok of $N_UDP client UDP flows carry the masquerade"
    # The port forward: the client's flow to the server's 80 says it was sent to 8080.
    grep -q "^6|$CLIENT_IP|$fport|$SERVER_IP|80|$ROUTER_IP_S|3[0-9]*|$ROUTER_IP_C|8080|" \
        "$WORK/flows$proto.txt" || fail "$name: no DNAT translation on the port-forwarded flow"
    # The connection older than nflowd: found through the start-up dump.
    local long_port
    long_port=$(awk '$1 == "tcp" && $4 == 5000 { print $3; exit }' "$WORK/seen.txt")
    grep -q "^6|$CLIENT_IP|$lport|$SERVER_IP|5000|$ROUTER_IP_S|${long_port:-none}|$SERVER_IP|5000|" \
        "$WORK/flows$proto.txt" || fail "$name: the connection opened before nflowd is not annotated"
    # Reply flows from the server come back to the client: nothing is translated in them but
    # the destination, which the record gives as the router's outside address.
    local rule_pkts rule_bytes
    read -r rule_pkts rule_bytes < <(rule_counters)
    echo "$name: rule $rule_pkts packets $rule_bytes bytes, exported $pkts packets $bytes bytes"
    ((pkts == rule_pkts && bytes == rule_bytes)) || fail "$name: exported totals differ from the rule"
    # tshark: every client UDP flow's post-NAT source is the router's outside address.
    local ts
    ts=$(tshark -r "$WORK/$name.pcap" -d "udp.port==$PORT,cflow" -Y "cflow.srcaddr == $CLIENT_IP && cflow.protocol == 17" \
        -T fields -e cflow.post_natsource_ipv4_address 2>/dev/null | tr ',' '\n' | grep -c "^$ROUTER_IP_S\$" || true)
    echo "$name: tshark finds $ts post-NAT sources $ROUTER_IP_S"
    ((ts >= N_UDP)) || fail "$name: tshark shows $ts client UDP records with the post-NAT source"
}

stat_field() { # stat_field LINE NAME FILE: the number after NAME on the stats line LINE
    grep "^$1:" "$3" | grep -o "$2 [0-9]*" | head -1 | awk '{ print $NF }'
}
# run_events PROTO N: nflowd --natevents; N masqueraded UDP connections, deleted with
# conntrack -D; prints what nfdump decodes into $WORK/nel$PROTO.txt.
run_events() {
    local proto=$1 n=$2 dir="$WORK/nel$1" name="nel-v$1"
    local args=("${@:3}")
    ((${#args[@]})) || args=(--group "$GROUP" --natevents --destination "127.0.0.1:$PORT")
    in_router conntrack -F >/dev/null 2>&1 || true
    rm -rf "$dir"
    netns_start_nfcapd "$NS_ROUTER" "$dir" "$PORT" "$WORK/nfcapd-$name.log"
    local nfcapd_pid=$NFCAPD_PID
    netns_bg "$NS_ROUTER" /dev/null "$WORK/tshark-$name.err" \
        tshark -i lo -f "udp port $PORT" -w "$WORK/$name.pcap"
    local tshark_pid=$NETNS_LAST_PID
    sleep 2
    netns_start_nflowd "$NS_ROUTER" "$WORK/nflowd-$name.log" "${args[@]}" \
        --protocol "$proto" --control_id "$CID" --debug 1
    ip netns exec "$NS_CLIENT" python3 -c 'import socket, sys
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", 20000 + i))
    s.sendto(b"x", (sys.argv[1], 9999 - i // 500))  # masquerade ports: 1000 per destination
    s.close()' "$SERVER_IP" "$n"
    sleep 1
    in_router conntrack -D -p udp >/dev/null 2>&1 || true
    # Until every DESTROY is through: the exported count stops changing (bounded).
    local i last=-1 now
    for ((i = 0; i < 30; i++)); do
        sleep 1
        ctl stats >"$WORK/stats-$name.txt"
        now=$(stat_field nat "events exported" "$WORK/stats-$name.txt")
        [[ $now == "$last" ]] && break
        last=$now
    done
    netns_stop_nflowd "$NFLOWD_PID" "$WORK/nflowd-$name.log"
    netns_stop_nfcapd "$NS_ROUTER" "$nfcapd_pid"
    sleep 0.5
    netns_stop "$tshark_pid" || true
    grep -E '^(conntrack|nat):' "$WORK/stats-$name.txt"
    nfdump -R "$dir" -q -N -o 'fmt:%nevt|%pr|%sa|%sp|%da|%dp|%xsa|%xsp|%xda|%xdp' |
        tr -d ' ' >"$WORK/nel$proto.txt"
}

echo "== annotation, IPFIX"
run_case 10
echo "== annotation, v9"
run_case 9
# check_events PROTO N: one ADD and one DELETE per connection, each with the masquerade.
check_events() {
    local proto=$1 n=$2 name="nel-v$1" adds dels bad
    adds=$(grep -c "^ADD|17|$CLIENT_IP|" "$WORK/nel$proto.txt" || true)
    dels=$(grep -c "^DELETE|17|$CLIENT_IP|" "$WORK/nel$proto.txt" || true)
    echo "$name: nfdump decodes $adds ADD and $dels DELETE events"
    ((adds == n && dels == n)) || fail "$name: $adds creates and $dels deletes for $n connections"
    bad=$(grep -E "^(ADD|DELETE)\|" "$WORK/nel$proto.txt" |
        grep -vcE "^(ADD|DELETE)\|17\|$CLIENT_IP\|2[0-9]{4}\|$SERVER_IP\|9999\|$ROUTER_IP_S\|30[0-9]{3}\|$SERVER_IP\|9999\$" || true)
    ((bad == 0)) || fail "$name: $bad events without the masquerade's translation"
    local ts
    ts=$(tshark -r "$WORK/$name.pcap" -d "udp.port==$PORT,cflow" -T fields -e cflow.nat_event \
        2>/dev/null | tr ',' '\n' | sort | uniq -c | tr -s ' ' | tr '\n' ';')
    echo "$name: tshark natEvent counts: $ts"
    [[ $ts == *" $n 1;"* && $ts == *" $n 2;"* ]] ||
        fail "$name: tshark does not decode $n creates and $n deletes"
}

echo "== NAT events, IPFIX and v9"
run_events 10 5
check_events 10 5
run_events 9 5
check_events 9 5

echo "== --natevents_only, no NFLOG group: events and no flow records"
run_events 10 5 --natevents_only --destination "127.0.0.1:$PORT"
check_events 10 5
FLOWS=$(grep -vcE '^(ADD|DELETE)\|' "$WORK/nel10.txt" || true)
((FLOWS == 0)) || fail "natevents_only: $FLOWS flow records exported"
grep -q '^export: flows 0,' "$WORK/stats-nel-v10.txt" || fail "natevents_only: flows counted"

echo "== --natevents_destination: the events there, and no flow"
run_events 10 5 --group "$GROUP" --natevents --destination "127.0.0.1:$((PORT + 1))" \
    --natevents_destination "127.0.0.1:$PORT"
check_events 10 5
FLOWS=$(grep -vcE '^(ADD|DELETE)\|' "$WORK/nel10.txt" || true)
((FLOWS == 0)) || fail "natevents_destination: $FLOWS flow records at the NAT events' collector"
grep -q "^destination 127.0.0.1:$PORT: datagrams [1-9]" "$WORK/stats-nel-v10.txt" ||
    fail "natevents_destination: no destination line for it"

echo "== NAT events: a burst of 10,000 connections"
run_events 10 10000
ADDS=$(grep -c "^ADD|17|$CLIENT_IP|" "$WORK/nel10.txt" || true)
DELS=$(grep -c "^DELETE|17|$CLIENT_IP|" "$WORK/nel10.txt" || true)
LOST=$(stat_field conntrack "lost events" "$WORK/stats-nel-v10.txt")
EXPORTED=$(stat_field nat "events exported" "$WORK/stats-nel-v10.txt")
echo "burst: nfdump $ADDS creates + $DELS deletes, nflowd exported $EXPORTED, lost $LOST"
((ADDS + DELS == EXPORTED)) || fail "burst: nfdump has $((ADDS + DELS)) events, nflowd exported $EXPORTED"
((EXPORTED + LOST == 20000)) || fail "burst: exported $EXPORTED + lost $LOST != 20000 events"

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
