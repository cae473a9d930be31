#!/usr/bin/env bash
# nflowctl against a live nflowd over real netlink, in private namespaces (the control
# socket is NETLINK_USERSOCK, per network namespace, so nflowctl runs in the router too):
#   A  list/get/set, all-or-nothing, read-only knobs, usage errors; SIGUSR1 = stats text
#   B  a shorter inactive_timeout set live exports sooner; flows --top/--sort
#   C  set flush 2 zeroes the statistics; set hashsize over and over during a bounded
#      flood: exact conservation (collector = iptables rule counters, nothing lost),
#      with a multi-message flow dump taken mid-flood; stats --json agrees
#   D  set destination during a flood: both collectors together got every flow
#   H  set protocol 5 -> 10 -> 9 during a flood, send-template: nfcapd got every packet
#      once (skipped without nfcapd/nfdump)
#   E  an unprivileged user reads but cannot change nor dump flows ("permission denied")
#   F  malformed, truncated, unknown and oversized requests get error replies, daemon alive
#   G  no daemon: exit 3 and a message; a second nflowd on the same control id refuses to
#      start; --control_group lets that group change settings
# usage: nflowctl.sh PATH/TO/nflowd PATH/TO/nflowctl
set -euo pipefail

NFLOWD=${1:?usage: nflowctl.sh NFLOWD NFLOWCTL}
NFLOWCTL=${2:?usage: nflowctl.sh NFLOWD NFLOWCTL}
# shellcheck source=netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
netns_require
for tool in python3 setpriv; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done

netns_setup
work_setup netns_cleanup
# nobody must be able to run nflowctl, wherever the build tree is.
chmod 755 "$WORK"
mkdir "$WORK/bin"
cp "$NFLOWCTL" "$WORK/bin/nflowctl"
chmod 755 "$WORK/bin" "$WORK/bin/nflowctl"

GROUP=$((5000 + $$ % 1000))
CID=$((0x10000000 + $$))
P1=2055
P2=2056

ctl_nobody() {
    in_router setpriv --reuid=nobody --regid=nogroup --clear-groups "$WORK/bin/nflowctl" -i "$CID" "$@"
}
# expect RC DESCRIPTION CMD...: CMD's exit status must be RC; output in $WORK/out, $WORK/err.
expect() {
    local want=$1 what=$2 rc=0
    shift 2
    "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    if ((rc != want)); then
        fail "$what: exit $rc, expected $want: $(cat "$WORK/out" "$WORK/err")"
        return 1
    fi
    return 0
}
value() { ctl get "$1" | sed -n "s/^$1 = //p"; }
# json EXPR: EXPR evaluated on `nflowctl stats --json` as `d`.
json() {
    ctl stats --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}
rule_counters() { in_router iptables -L FORWARD -v -x -n | awk 'NR == 3 { print $1, $2 }'; }

# A v5 collector that keeps running totals in a JSON file (rewritten when idle).
cat >"$WORK/sink.py" <<'EOF'
import json, os, signal, socket, struct, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
s.bind(("127.0.0.1", port))
s.settimeout(0.1)
stop = False
def on_signal(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_signal)
t = {"datagrams": 0, "records": 0, "packets": 0, "bytes": 0, "errors": 0, "seq_gaps": 0, "dports": {}}
next_seq, dirty = None, True
def dump():
    with open(out + ".tmp", "w") as f:
        json.dump(t, f)
    os.replace(out + ".tmp", out)
print("ready", flush=True)
deadline = time.monotonic() + 600
while not stop and time.monotonic() < deadline:
    try:
        data = s.recv(65535)
    except (socket.timeout, InterruptedError):
        if dirty:
            dump()
            dirty = False
        continue
    dirty = True
    t["datagrams"] += 1
    if len(data) < 24:
        t["errors"] += 1
        continue
    version, count = struct.unpack_from("!HH", data)
    seq = struct.unpack_from("!I", data, 16)[0]
    if version != 5 or len(data) != 24 + 48 * count:
        t["errors"] += 1
        continue
    if next_seq is not None and seq != next_seq:
        t["seq_gaps"] += 1
    next_seq = (seq + count) & 0xFFFFFFFF
    for i in range(count):
        o = 24 + 48 * i
        pkts, octets = struct.unpack_from("!II", data, o + 16)
        dport = str(struct.unpack_from("!H", data, o + 34)[0])
        t["records"] += 1
        t["packets"] += pkts
        t["bytes"] += octets
        t["dports"][dport] = t["dports"].get(dport, 0) + 1
dump()
EOF
# Bounded UDP flood: COUNT datagrams over FLOWS destination ports, in paced bursts.
cat >"$WORK/flood.py" <<'EOF'
import socket, sys, time
dst, count, flows, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sizes = [b"x" * n for n in (18, 100, 400, 1200, 60)]
deadline = time.monotonic() + 60
sent = 0
for i in range(count):
    s.sendto(sizes[i % len(sizes)], (dst, base + i % flows))
    sent += 1
    if i % 400 == 399:
        time.sleep(0.015)
    if time.monotonic() > deadline:
        break
print(sent)
EOF
sink_total() { # sink_total FILE FIELD
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2" 2>/dev/null || echo 0
}
sink_dport() { # sink_dport FILE PORT: records seen for that destination port
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["dports"].get(sys.argv[2], 0))' "$1" "$2" 2>/dev/null || echo 0
}
# wait_sink_packets WANT FILE...: until the files' packets add up to WANT (bounded, 30 s).
wait_sink_packets() {
    local want=$1 i got f
    shift
    for ((i = 0; i < 300; i++)); do
        got=0
        for f in "$@"; do got=$((got + $(sink_total "$f" packets))); done
        ((got >= want)) && break
        sleep 0.1
    done
    echo "$got"
}

in_server iptables -A INPUT -p udp -j DROP # silent sink: the forwarded count is exact
in_router iptables -A FORWARD -j NFLOG --nflog-group "$GROUP" --nflog-size 128
netns_bg "$NS_ROUTER" "$WORK/sink1.out" "$WORK/sink1.err" python3 "$WORK/sink.py" "$P1" "$WORK/sink1.json"
netns_wait_for "$WORK/sink1.out" '^ready' || { cat "$WORK/sink1.err" >&2; exit 1; }
netns_bg "$NS_ROUTER" "$WORK/sink2.out" "$WORK/sink2.err" python3 "$WORK/sink.py" "$P2" "$WORK/sink2.json"
netns_wait_for "$WORK/sink2.out" '^ready' || { cat "$WORK/sink2.err" >&2; exit 1; }

netns_bg "$NS_ROUTER" "$WORK/nflowd.log" "$WORK/nflowd.log" "$NFLOWD" --group "$GROUP" \
    --destination "127.0.0.1:$P1" --control-id "$CID" --threads 2 --hashsize 1024 \
    --inactive_timeout 60 --debug 1
NFLOWD_PID=$NETNS_LAST_PID
netns_wait_for "$WORK/nflowd.log" "started" 50 || { cat "$WORK/nflowd.log" >&2; exit 1; }

echo "== A: list, get, set"
expect 0 "list" ctl list
LIST=$(cat "$WORK/out")
echo "$LIST"
(($(wc -l <<<"$LIST") == 23)) || fail "list: $(wc -l <<<"$LIST") knobs, expected 23"
for want in "hashsize = 1024" "groups = $GROUP" "threads = 2" "inactive_timeout = 60" \
    "protocol = 5" "flush = 0" "destination = 127.0.0.1:$P1"; do
    grep -qxF "$want" <<<"$LIST" || fail "list lacks \"$want\""
done
[[ $(ctl) == "$LIST" ]] || fail "nflowctl without a command differs from list"
expect 0 "get" ctl get hashsize inactive-timeout
[[ $(cat "$WORK/out") == $'hashsize = 1024\ninactive_timeout = 60' ]] || fail "get: $(cat "$WORK/out")"
expect 1 "get unknown" ctl get nosuchknob && grep -q 'unknown knob "nosuchknob"' "$WORK/err" ||
    fail "get unknown: $(cat "$WORK/err")"
expect 0 "set hashsize" ctl set hashsize 4096
grep -qx "hashsize = 4096" "$WORK/out" || fail "set echo: $(cat "$WORK/out")"
[[ $(value hashsize) == 4096 ]] || fail "get after set: $(value hashsize)"
ctl stats | grep -q "^hash: size 4096," || fail "stats do not show the new hash size"
ctl stats | grep -q "^worker 1: .*hashsize 2048," || fail "workers do not share the new hash"
expect 0 "set NAME=VALUE" ctl set maxflows=100000 debug=2
[[ $(value maxflows) == 100000 && $(value debug) == 2 ]] || fail "NAME=VALUE set did not apply"
expect 1 "bad value" ctl set maxflows=5000 hashsize=12 &&
    grep -q 'hashsize: must be 256-268435456 buckets, got "12"' "$WORK/err" ||
    fail "bad hashsize message: $(cat "$WORK/err")"
[[ $(value maxflows) == 100000 && $(value hashsize) == 4096 ]] ||
    fail "a refused set changed something: maxflows $(value maxflows) hashsize $(value hashsize)"
expect 1 "read-only" ctl set groups 7 && grep -q "groups: read-only" "$WORK/err" ||
    fail "read-only message: $(cat "$WORK/err")"
expect 1 "protocol 7" ctl set protocol 7 && grep -q "protocol: must be 5, 9 or 10" "$WORK/err" ||
    fail "protocol message: $(cat "$WORK/err")"
expect 1 "flush 3" ctl set flush 3
# The export pace is bytes per second: decimal suffixes, and an old datagram count refused.
expect 0 "export_rate 100M" ctl set export_rate 100M
[[ $(value export_rate) == 100000000 ]] || fail "export_rate: $(value export_rate)"
expect 1 "export_rate 20000" ctl set export_rate 20000 &&
    grep -q 'export_rate: must be 0 (unpaced) or 65536-4000000000 bytes per second' "$WORK/err" ||
    fail "export_rate message: $(cat "$WORK/err")"
[[ $(value export_rate) == 100000000 ]] || fail "a refused export_rate applied: $(value export_rate)"
expect 0 "aggregation" ctl set aggregation 10.0.0.0/8=16
[[ $(value aggregation) == "10.0.0.0/8=16" ]] || fail "aggregation: $(value aggregation)"
expect 0 "aggregation off" ctl set aggregation=
expect 2 "set without value" ctl set hashsize
expect 2 "unknown command" ctl frobnicate
expect 2 "bad sort" ctl flows --sort colour
expect 2 "bad option" ctl stats --yaml
# The Prometheus exposition of the live daemon through a real parser, agreeing with the text.
if /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null; then
    expect 0 "stats --prometheus" ctl stats --prometheus
    /usr/bin/python3 - "$WORK/out" <<'PY' || fail "stats --prometheus: $(head -c 400 "$WORK/out")"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
buckets = {s.labels["worker"]: s.value for s in fams["nflowd_cache_hashsize"].samples}
assert buckets == {"0": 2048.0, "1": 2048.0}, buckets
assert fams["nflowd_parse_packets"].type == "counter", fams["nflowd_parse_packets"].type
assert fams["nflowd_control_requests"].samples[0].value > 0
PY
    if command -v promtool >/dev/null; then
        promtool check metrics <"$WORK/out" || fail "promtool rejects stats --prometheus"
    fi
fi
expect 2 "bad flush level" ctl flush 3
kill -USR1 "$NFLOWD_PID"
netns_wait_for "$WORK/nflowd.log" "hash: size 4096" 30 || fail "SIGUSR1 text lacks the stats lines"

echo "== B: a shorter inactive_timeout exports sooner"
netns_udp "$NS_CLIENT" "$SERVER_IP" 7001 10 100
sleep 2.5
(($(sink_dport "$WORK/sink1.json" 7001) == 0)) || fail "flows left before inactive_timeout 60"
expect 0 "flows" ctl flows
(($(grep -c ":7001 " "$WORK/out") == 10)) || fail "flows shows $(grep -c ":7001 " "$WORK/out") of 10: $(cat "$WORK/out")"
ctl set inactive_timeout 1 >/dev/null
for ((i = 0; i < 50; i++)); do
    (($(sink_dport "$WORK/sink1.json" 7001) == 10)) && break
    sleep 0.1
done
(($(sink_dport "$WORK/sink1.json" 7001) == 10)) ||
    fail "inactive_timeout 1: $(sink_dport "$WORK/sink1.json" 7001) of 10 flows exported within 5 s"
echo "exported after ${i}00 ms"
ctl set inactive_timeout 60 >/dev/null
for size in 100 500 300 200 400; do netns_udp "$NS_CLIENT" "$SERVER_IP" 7002 1 "$size"; done
sleep 0.5
expect 0 "flows --top" ctl flows --top 3 --sort bytes
cat "$WORK/out"
mapfile -t BYTES < <(grep ":7002 " "$WORK/out" | awk '{ print $8 }')
[[ ${BYTES[*]} == "528 428 328" ]] || fail "flows --top 3 --sort bytes: ${BYTES[*]}"
grep -q "^# 5 active flows, top 3 by bytes" "$WORK/out" || fail "flows header: $(head -1 "$WORK/out")"

echo "== C: flush 2 zeroes statistics; set hashsize during a flood conserves every packet"
expect 0 "flush" ctl flush
[[ $(json 'd["flows"]["active"]') == 0 ]] || fail "flush left flows"
sleep 1
BASE1=$(sink_total "$WORK/sink1.json" packets)
BASE1_BYTES=$(sink_total "$WORK/sink1.json" bytes)
expect 0 "set flush 2" ctl set flush 2
grep -qx "flush = 2" "$WORK/out" || fail "set flush 2 echo: $(cat "$WORK/out")"
[[ $(json '(d["groups"][0]["received"], d["export"]["flows"], d["in"]["packets"], d["hash"]["searched"])') == "(0, 0, 0, 0)" ]] ||
    fail "set flush 2 did not zero: $(ctl stats)"
ctl set hashsize 256 >/dev/null
in_router iptables -Z FORWARD
FLOOD_N=60000
FLOOD_FLOWS=3000
netns_bg "$NS_CLIENT" "$WORK/flood.out" "$WORK/flood.err" python3 "$WORK/flood.py" "$SERVER_IP" "$FLOOD_N" "$FLOOD_FLOWS" 10000
FLOOD_PID=$NETNS_LAST_PID
REHASHES=0
for ((i = 0; i < 40; i++)); do
    kill -0 "$FLOOD_PID" 2>/dev/null || break
    ctl set hashsize $((256 << (i % 9))) >/dev/null || fail "set hashsize during the flood"
    REHASHES=$((REHASHES + 1))
    if ((i == 10)); then
        # A dump of thousands of flows: many NLM_F_MULTI messages, none lost.
        ctl flows >"$WORK/dump" || fail "flows during the flood"
        N=$(sed -n 's/^# \([0-9]*\) active flows.*/\1/p' "$WORK/dump")
        (($(wc -l <"$WORK/dump") == N + 2)) || fail "flow dump: header says $N, $(($(wc -l <"$WORK/dump") - 2)) lines"
        echo "mid-flood dump: $N flows"
    fi
    sleep 0.1
done
wait "$FLOOD_PID" || fail "flood sender failed: $(cat "$WORK/flood.err")"
echo "flood: $(cat "$WORK/flood.out") datagrams, $REHASHES rehashes"
sleep 0.5 # the kernel's last batch
ctl flush >/dev/null
read -r RULE_PKTS RULE_BYTES < <(rule_counters)
GOT=$(wait_sink_packets $((BASE1 + RULE_PKTS)) "$WORK/sink1.json")
GOT_BYTES=$(sink_total "$WORK/sink1.json" bytes)
echo "rule: $RULE_PKTS packets $RULE_BYTES bytes; collector: $((GOT - BASE1)) packets"
((RULE_PKTS == FLOOD_N)) || fail "the rule saw $RULE_PKTS of $FLOOD_N packets"
LOST=$(json 'd["groups"][0]["lost"]')
((LOST == 0)) || fail "NFLOG lost $LOST messages: conservation cannot be exact"
((GOT - BASE1 == RULE_PKTS)) || fail "collector got $((GOT - BASE1)) packets, the rule counted $RULE_PKTS"
((GOT_BYTES - BASE1_BYTES == RULE_BYTES)) ||
    fail "collector got $((GOT_BYTES - BASE1_BYTES)) bytes, the rule counted $RULE_BYTES"
ctl stats --json >"$WORK/stats.json"
python3 - "$WORK/stats.json" "$RULE_PKTS" "$RULE_BYTES" "$FLOOD_FLOWS" <<'EOF' || fail "stats --json disagrees"
import json, sys
d = json.load(open(sys.argv[1]))
pkts, octets, flows = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
checks = {
    "group received": d["groups"][0]["received"] == pkts,
    "in packets": d["in"]["packets"] == pkts,
    "in bytes": d["in"]["bytes"] == octets,
    "flows created": d["hash"]["new"] == flows,
    "flows exported": d["export"]["flows"] == flows,
    "nothing lost": d["export"]["lost_flows"] == 0 and d["groups"][0]["enobufs"] == 0,
    "two workers": len(d["workers"]) == 2,
    "active 0": d["flows"]["active"] == 0,
    "metric": 0 < d["hash"]["metric"] < 20,
}
bad = [k for k, ok in checks.items() if not ok]
if bad:
    print("stats --json:", bad, json.dumps(d, indent=1), file=sys.stderr)
    sys.exit(1)
EOF
(($(sink_total "$WORK/sink1.json" seq_gaps) == 0)) || fail "v5 sequence gaps at the collector"
# Rates are sampled every 5 s from a base taken at `set flush 2`: the flood shows up within
# one interval after it.
for ((i = 0; i < 80; i++)); do
    [[ $(json 'd["rates"][0]["pps"] > 0') == True ]] && break
    sleep 0.1
done
[[ $(json 'd["rates"][0]["pps"] > 0') == True ]] || fail "no packet rate after the flood"
ctl stats | grep "^rate"

echo "== D: set destination during a flood loses no datagram"
ctl flush >/dev/null
sleep 0.5
BASE1=$(sink_total "$WORK/sink1.json" packets)
BASE2=$(sink_total "$WORK/sink2.json" packets)
in_router iptables -Z FORWARD
netns_bg "$NS_CLIENT" "$WORK/flood2.out" "$WORK/flood2.err" python3 "$WORK/flood.py" "$SERVER_IP" 40000 2000 30000
FLOOD_PID=$NETNS_LAST_PID
SWAPS=0
for ((i = 0; i < 30; i++)); do
    kill -0 "$FLOOD_PID" 2>/dev/null || break
    ((i % 2)) && dest=127.0.0.1:$P1 || dest=127.0.0.1:$P2
    ctl set inactive_timeout=1 "destination=$dest" >/dev/null || fail "set destination"
    SWAPS=$((SWAPS + 1))
    sleep 0.15
done
wait "$FLOOD_PID" || fail "flood sender failed"
ctl set destination "127.0.0.1:$P2" >/dev/null
[[ $(value destination) == "127.0.0.1:$P2" ]] || fail "get destination: $(value destination)"
sleep 0.5
ctl flush >/dev/null
read -r RULE_PKTS _ < <(rule_counters)
GOT=$(wait_sink_packets $((BASE1 + BASE2 + RULE_PKTS)) "$WORK/sink1.json" "$WORK/sink2.json")
echo "$SWAPS swaps; rule: $RULE_PKTS packets; collectors: $((GOT - BASE1 - BASE2))"
((GOT - BASE1 - BASE2 == RULE_PKTS)) || fail "collectors got $((GOT - BASE1 - BASE2)) packets, the rule counted $RULE_PKTS"
(($(sink_total "$WORK/sink2.json" packets) > BASE2)) || fail "the second collector got nothing"
ctl stats | grep -q "^destination 127.0.0.1:$P2: datagrams [1-9]" || fail "stats lack the new destination"
ctl set inactive_timeout 60 >/dev/null

echo "== H: set protocol 5 -> 10 -> 9 during a flood; send-template"
if command -v nfcapd >/dev/null && command -v nfdump >/dev/null; then
    P3=2057
    netns_start_nfcapd "$NS_ROUTER" "$WORK/nfcapd" "$P3" "$WORK/nfcapd.log" ||
        fail "nfcapd did not start"
    NFCAPD_H=$NFCAPD_PID
    ctl flush >/dev/null
    sleep 0.5
    ctl set protocol=5 "destination=127.0.0.1:$P3" inactive_timeout=1 >/dev/null ||
        fail "set destination for H"
    in_router iptables -Z FORWARD
    netns_bg "$NS_CLIENT" "$WORK/flood3.out" "$WORK/flood3.err" python3 "$WORK/flood.py" "$SERVER_IP" 40000 2000 40000
    FLOOD_PID=$NETNS_LAST_PID
    SWITCHES=0
    for p in 10 9 10 5 9; do
        sleep 0.4
        kill -0 "$FLOOD_PID" 2>/dev/null || break
        ctl set protocol "$p" >/dev/null || fail "set protocol $p"
        SWITCHES=$((SWITCHES + 1))
    done
    expect 0 "send-template" ctl send-template && grep -qx "send_template = 1" "$WORK/out" ||
        fail "send-template: $(cat "$WORK/out" "$WORK/err")"
    wait "$FLOOD_PID" || fail "flood sender failed"
    sleep 0.5
    ctl flush >/dev/null
    sleep 1.5 # the last partial datagram waits up to 1 s
    read -r RULE_PKTS RULE_BYTES < <(rule_counters)
    ctl stats | grep "^destination 127.0.0.1:$P3"
    ctl stats | grep -q "^destination 127.0.0.1:$P3: .*templates [1-9]" ||
        fail "stats: no templates counted for the destination"
    netns_stop_nfcapd "$NS_ROUTER" "$NFCAPD_H"
    nfdump -R "$WORK/nfcapd" -I >"$WORK/nfcapd.info" || fail "nfdump -I"
    GOT=$(awk -F': ' '$1 == "Packets" { print $2 }' "$WORK/nfcapd.info")
    GOT_BYTES=$(awk -F': ' '$1 == "Bytes" { print $2 }' "$WORK/nfcapd.info")
    echo "$SWITCHES switches; rule: $RULE_PKTS packets; nfcapd: $GOT packets"
    ((GOT == RULE_PKTS && GOT_BYTES == RULE_BYTES)) ||
        fail "nfcapd got $GOT packets $GOT_BYTES bytes, the rule counted $RULE_PKTS $RULE_BYTES"
    ctl set inactive_timeout 60 "destination=127.0.0.1:$P2" protocol=5 >/dev/null
else
    echo "skipped: nfcapd/nfdump not installed"
fi

echo "== E: an unprivileged user reads, cannot change"
HS=$(value hashsize)
expect 0 "nobody: get" ctl_nobody get hashsize && [[ $(cat "$WORK/out") == "hashsize = $HS" ]] ||
    fail "nobody get: $(cat "$WORK/out")"
expect 0 "nobody: list" ctl_nobody list
expect 0 "nobody: stats" ctl_nobody stats
expect 0 "nobody: stats --json" ctl_nobody stats --json
# flows: every forwarded connection of the router, as root-only as conntrack (issue 10).
for cmd in "set hashsize 65536" "set debug=0" "flush" "set flush 2" "flows --top 5"; do
    # shellcheck disable=SC2086
    expect 1 "nobody: $cmd" ctl_nobody $cmd && grep -q "permission denied" "$WORK/err" ||
        fail "nobody $cmd: $(cat "$WORK/err")"
done
cat "$WORK/err"
[[ $(value hashsize) == "$HS" && $(value debug) == 2 ]] || fail "a refused set changed something"
grep -q "permission denied: flows needs uid 0" "$WORK/err" || fail "nobody flows: $(cat "$WORK/err")"
(($(json 'd["control"]["denied"]') == 5)) || fail "denied count: $(json 'd["control"]')"

echo "== F: malformed requests get error replies, the daemon goes on"
in_router python3 - "$CID" <<'EOF' || fail "malformed requests"
import errno, socket, struct, sys
cid = int(sys.argv[1])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2)  # NETLINK_USERSOCK
s.bind((0, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.settimeout(2)
def attr(t, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, t) + payload + b"\0" * (-n % 4)
def msg(typ, seq, attrs=b"", flags=1, length=None):
    return struct.pack("=IHHII", 16 + len(attrs) if length is None else length, typ, flags, seq, 0) + attrs
V1 = attr(1, struct.pack("=I", 1))
def answer(data, seq):
    s.sendto(data, (cid, 0))
    while True:
        reply, (pid, groups) = s.recvfrom(1 << 17)
        if pid != cid or groups:
            continue
        if struct.unpack_from("=I", reply, 8)[0] == seq:
            return reply
ok = True
cases = [
    ("7 bytes of garbage", b"\x41" * 7, 0),
    ("header longer than the datagram", msg(0x100, 2, V1, length=200), 2),
    ("unknown command", msg(0x1FF, 3, V1), 3),
    ("protocol version 99", msg(0x100, 4, attr(1, struct.pack("=I", 99))), 4),
    ("version as a u16", msg(0x100, 5, attr(1, struct.pack("=H", 1))), 5),
    ("get without a knob", msg(0x101, 6, V1), 6),
    ("knob name without NUL", msg(0x101, 7, V1 + attr(2, attr(1, b"hashsize"))), 7),
    ("attribute cut short", msg(0x104, 8, V1 + struct.pack("=HH", 12, 4) + b"\0\0\0\0"), 8),
    ("oversized", msg(0x100, 9, V1 + attr(99, b"\0" * 50000) + attr(99, b"\0" * 50000)), 9),
]
for name, data, seq in cases:
    reply = answer(data, seq)
    typ, flags = struct.unpack_from("=HH", reply, 4)
    err = struct.unpack_from("=i", reply, 16)[0]
    text = ""
    off = 36 if flags & 0x100 else None  # NLM_F_CAPPED: TLVs right after nlmsgerr
    while flags & 0x200 and off is not None and off + 4 <= len(reply):
        n, t = struct.unpack_from("=HH", reply, off)
        if n < 4:
            break
        if t == 1:
            text = reply[off + 4:off + n].rstrip(b"\0").decode()
        off += (n + 3) & ~3
    good = typ == 2 and err < 0 and text
    ok = ok and bool(good)
    print(f"{'ok' if good else 'BAD'} {name}: {errno.errorcode.get(-err, err)} \"{text}\"")
# Not a request: never answered (so two daemons can never bounce errors).
s.sendto(msg(3, 10, b"", flags=0), (cid, 0))
s.settimeout(1)
try:
    while True:
        reply, (pid, _) = s.recvfrom(1 << 17)
        if pid == cid and struct.unpack_from("=I", reply, 8)[0] == 10:
            print("BAD: a non-request was answered")
            ok = False
            break
except socket.timeout:
    print("ok non-request ignored")
sys.exit(0 if ok else 1)
EOF
kill -0 "$NFLOWD_PID" || fail "nflowd died"
expect 0 "alive after garbage" ctl get version

echo "== G: no daemon, a second daemon, --control_group"
expect 3 "no daemon" ctl -i $((CID + 1)) list && grep -q "nflowd is not running" "$WORK/err" ||
    fail "no daemon message: $(cat "$WORK/err")"
cat "$WORK/err"
expect 1 "second nflowd" in_router "$NFLOWD" --group $((GROUP + 1)) --control-id "$CID" \
    --destination "127.0.0.1:$P1"
grep -q "another nflowd with --control_id $CID runs in this network namespace" "$WORK/err" ||
    fail "second nflowd: $(cat "$WORK/err")"
cat "$WORK/err"
expect 0 "first still serves" ctl get version
netns_bg "$NS_ROUTER" "$WORK/n3.log" "$WORK/n3.log" "$NFLOWD" --group $((GROUP + 2)) \
    --control-id $((CID + 2)) --control-group nogroup --destination "127.0.0.1:$P1" --debug 1
N3=$NETNS_LAST_PID
netns_wait_for "$WORK/n3.log" "started" 50 || fail "third nflowd: $(cat "$WORK/n3.log")"
expect 0 "control group may set" in_router setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$WORK/bin/nflowctl" -i $((CID + 2)) set debug 3
netns_stop "$N3" || fail "third nflowd exited $?"

netns_stop "$NFLOWD_PID" || fail "nflowd exited $? on SIGTERM"
grep -q "stopped:" "$WORK/nflowd.log" || fail "no 'stopped:' line"
((FAILED == 0)) && echo "PASS"
exit "$FAILED"
