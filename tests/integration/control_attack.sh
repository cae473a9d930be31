#!/usr/bin/env bash
# The control channel as a local attacker would try it (issue 10), in private namespaces:
#   S  an unprivileged process holds nflowd's port id before it starts and answers like it
#      (a fake success full of escape sequences): nflowd starts all the same, root's
#      `nflowctl set inactive_timeout 27` changes the real daemon, nothing of the
#      impostor's is printed or believed
#   F  nobody floods (tiny receive buffers, 64 `list` requests per socket, never reads) and
#      reads big answers one message every 2 s, as does a --control_group member (user
#      daemon, by its uid's group) with `flows`: root's `nflowctl list` answers within 3 s
#      each time, and SIGTERM ends nflowd within 5 s, exit 0, every flow at the collector
#   P  `nflowctl flows` as nobody: exit 1, "permission denied"; no control character printed
#   N  two daemons with the default control id in two namespaces, each reached by the
#      nflowctl run in its own
# usage: control_attack.sh PATH/TO/nflowd PATH/TO/nflowctl PATH/TO/v5_collector.py
set -euo pipefail

NFLOWD=${1:?usage: control_attack.sh NFLOWD NFLOWCTL COLLECTOR}
NFLOWCTL=${2:?usage: control_attack.sh NFLOWD NFLOWCTL COLLECTOR}
COLLECTOR=${3:?usage: control_attack.sh NFLOWD NFLOWCTL COLLECTOR}
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
chmod 755 "$WORK" # nobody runs the attackers from here and logs into NOBODY
NOBODY=$WORK/nobody
mkdir "$NOBODY"
chown nobody "$NOBODY"
GROUP=$((6000 + $$ % 1000))
CID=$((0x20000000 + $$))
FLOWS=200
DPORT=7777

# nobody cannot use a python3 under /root (pyenv): the system one.
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)
AS_NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
ms_now() { date +%s%3N; }

# The attackers: raw NETLINK_USERSOCK sockets, as any local user may open.
cat >"$WORK/attack.py" <<'EOF'
import os, socket, struct, sys, time
mode, cid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
NLM_F_REQUEST, NLM_F_MULTI = 1, 2
def attr(t, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, t) + payload + b"\0" * ((4 - n % 4) % 4)
V1 = attr(1, struct.pack("=I", 1))
def msg(typ, seq, payload, flags=NLM_F_REQUEST, pid=0):
    return struct.pack("=IHHII", 16 + len(payload), typ, flags, seq, pid) + payload
def sock(rcvbuf=None, port=0):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2)  # NETLINK_USERSOCK
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((port, 0))
    return s
def daemon_port():
    # What nflowctl reads: the daemon publishes it, readable by all.
    ino = os.stat("/proc/self/ns/net").st_ino
    try:
        for line in open(f"/run/nflowd/control-{ino}-{cid}"):
            k, v = line.split()
            if k == "port_id":
                return int(v)
    except FileNotFoundError:
        return cid  # a daemon that publishes nothing listens on its control id
def log(text):
    with open(out, "a") as f:
        f.write(text + "\n")
deadline = time.monotonic() + 90
if mode == "impostor":
    # Holds the daemon's port id first and answers every request with a fake success.
    s = sock(port=cid)
    log("ready")
    s.settimeout(0.5)
    fake = b"\x1b]0;pwned\x07\x1b[2J\x1b[31mimpostor 27\x1b[0m\0"
    knob = attr(2, attr(1, b"inactive_timeout\0") + attr(2, fake) + attr(3, b"\1"))
    while time.monotonic() < deadline:
        try:
            data, (pid, _) = s.recvfrom(1 << 16)
        except socket.timeout:
            continue
        typ, _, seq = struct.unpack_from("=HHI", data, 4)
        log(f"request from port {pid}")
        s.sendto(msg(typ, seq, V1 + knob, NLM_F_MULTI) + msg(3, seq, struct.pack("=i", 0), NLM_F_MULTI), (pid, 0))
elif mode == "flooder":
    # Socket after socket with the smallest receive buffer, 64 requests each, never read.
    port, held = daemon_port(), []
    log("ready")
    while time.monotonic() < deadline and len(held) < 60:
        s = sock(rcvbuf=1)
        for i in range(64):
            try:
                s.sendto(msg(0x100, i, V1), (port, 0))
            except OSError:
                pass
        held.append(s)
        time.sleep(0.5)
    time.sleep(max(0, deadline - time.monotonic()))
elif mode in ("slow", "slowflows"):
    # Asks for the biggest answers it may have (statistics; the flow dump if it is in
    # --control_group) and reads one message every 2 s.
    port = daemon_port()
    s = sock(rcvbuf=4096)
    log("ready")
    seq = 0
    while time.monotonic() < deadline:
        reqs = [(0x104, V1)] if mode == "slowflows" else [(0x103, V1 + attr(3, b"\1")), (0x103, V1 + attr(3, b"\2")), (0x100, V1)]
        for typ, req in reqs:
            seq += 1
            s.sendto(msg(typ, seq, req), (port, 0))
        s.settimeout(2)
        try:
            s.recv(1 << 16)
        except socket.timeout:
            pass
EOF
chmod 644 "$WORK/attack.py"

in_server iptables -A INPUT -p udp -j DROP
in_router iptables -A FORWARD -j NFLOG --nflog-group "$GROUP" --nflog-size 128
netns_bg "$NS_ROUTER" "$WORK/c.out" "$WORK/c.err" python3 "$COLLECTOR" --port 12055 \
    --out "$WORK/c.json" --duration 150
netns_wait_for "$WORK/c.out" ready 50 || { cat "$WORK/c.err" >&2; exit 1; }

echo "== S: an impostor holds port id $CID before nflowd starts"
netns_bg "$NS_ROUTER" "$WORK/imp.out" "$WORK/imp.err" "${AS_NOBODY[@]}" "$PY" "$WORK/attack.py" \
    impostor "$CID" "$NOBODY/impostor.log"
netns_wait_for "$NOBODY/impostor.log" ready 50 || { cat "$WORK/imp.err" >&2; exit 1; }
netns_start_nflowd "$NS_ROUTER" "$WORK/nflowd.log" --group "$GROUP" --control-id "$CID" \
    --destination 127.0.0.1:12055 --inactive_timeout 60 --control-group daemon --debug 1
pass "nflowd started while port id $CID is squatted: $(grep -o 'control channel: .*' "$WORK/nflowd.log" || true)"
CTL_RC=0
ctl set inactive_timeout 27 >"$WORK/set.out" 2>"$WORK/set.err" || CTL_RC=$?
((CTL_RC == 0)) || fail "set inactive_timeout 27: exit $CTL_RC: $(cat "$WORK/set.out" "$WORK/set.err")"
[[ $(cat "$WORK/set.out") == "inactive_timeout = 27" ]] || fail "set printed: $(cat -v "$WORK/set.out")"
if grep -q -e impostor -e pwned -e $'\e' "$WORK/set.out" "$WORK/set.err"; then
    fail "nflowctl printed the impostor's answer: $(cat -v "$WORK/set.out" "$WORK/set.err")"
fi
[[ $(ctl get inactive_timeout) == "inactive_timeout = 27" ]] || fail "the daemon's inactive_timeout: $(ctl get inactive_timeout)"
grep -q "inactive_timeout.*27" "$WORK/nflowd.log" || fail "the daemon did not log the change"
grep -q "request from" "$NOBODY/impostor.log" && fail "root's nflowctl talked to the impostor"
pass "set reached the real daemon; the impostor got $(grep -c 'request from' "$NOBODY/impostor.log" || true) requests"

echo "== P: flows as nobody"
rc=0
in_router "${AS_NOBODY[@]}" "$NFLOWCTL" -i "$CID" flows >"$WORK/p.out" 2>"$WORK/p.err" || rc=$?
((rc == 1)) && grep -q "permission denied: flows needs uid 0" "$WORK/p.err" ||
    fail "nobody flows: exit $rc: $(cat "$WORK/p.out" "$WORK/p.err")"
pass "nobody flows: exit $rc, $(cat "$WORK/p.err")"
# What nflowctl prints has no control characters, even where it echoes a name back.
ctl get $'\e]0;x\a\e[2J' >"$WORK/esc.out" 2>&1 || true
grep -q $'[\x01-\x09\x0b-\x1f\x7f]' "$WORK/esc.out" && fail "control characters printed: $(cat -v "$WORK/esc.out")"

echo "== F: $FLOWS flows in the cache, then nobody floods and reads slowly"
netns_udp "$NS_CLIENT" "$SERVER_IP" "$DPORT" "$FLOWS" 10
chmod 777 "$NOBODY" # the daemon user logs there too
for role in flooder slow slowflows; do
    who=("${AS_NOBODY[@]}")
    # A member by its uid's group (daemon), whatever gid it runs with.
    [[ $role == slowflows ]] && who=(setpriv --reuid=daemon --regid=nogroup --clear-groups)
    netns_bg "$NS_ROUTER" "$WORK/$role.out" "$WORK/$role.err" "${who[@]}" "$PY" "$WORK/attack.py" \
        "$role" "$CID" "$NOBODY/$role.log"
    netns_wait_for "$NOBODY/$role.log" ready 50 || { cat "$WORK/$role.err" >&2; exit 1; }
done
sleep 1
worst=0
for ((i = 0; i < 6; i++)); do
    t0=$(ms_now)
    rc=0
    ctl list >/dev/null 2>"$WORK/list.err" || rc=$?
    dt=$(($(ms_now) - t0))
    ((dt > worst)) && worst=$dt
    ((rc == 0)) || fail "root's list during the attack: exit $rc: $(cat "$WORK/list.err")"
    ((dt < 3000)) || fail "root's list took $dt ms during the attack"
    sleep 0.5
done
pass "root's list during the attack: worst $worst ms"
ctl stats | grep '^control' || true
# Counted; and the group member's dumps were served (denied is P's alone).
ctl stats --json | python3 -c 'import json, sys; c = json.load(sys.stdin)["control"]
sys.exit(0 if c["slow_peers"] > 0 and c["throttled"] > 0 and c["denied"] == 1 else 1)' ||
    fail "the attack is not counted as it should: $(ctl stats | grep '^control')"
t0=$(ms_now)
kill -TERM "$NFLOWD_PID"
rc=0
for ((i = 0; i < 100; i++)); do
    kill -0 "$NFLOWD_PID" 2>/dev/null || break
    sleep 0.1
done
dt=$(($(ms_now) - t0))
netns_stop "$NFLOWD_PID" || rc=$?
((rc == 0)) || fail "nflowd exited $rc on SIGTERM"
((dt < 5000)) || fail "SIGTERM took $dt ms"
grep -q "stopped:" "$WORK/nflowd.log" || fail "no 'stopped:' line"
# Packets, not records: two of the datagrams may share an ephemeral source port (one flow).
exported() {
    python3 -c 'import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    n += r.get("packets", 0) if r.get("dport") == int(sys.argv[2]) else 0
print(n)' "$WORK/c.json" "$DPORT" 2>/dev/null || echo 0
}
got=0
for ((i = 0; i < 50; i++)); do
    got=$(exported)
    ((got >= FLOWS)) && break
    sleep 0.1
done
((got == FLOWS)) || fail "the collector has $got of $FLOWS packets"
pass "SIGTERM under attack: exit $rc in $dt ms, all $got packets of $FLOWS flows exported"

echo "== N: two daemons, default control id, two namespaces"
netns_start_nflowd "$NS_CLIENT" "$WORK/n1.log" --group "$GROUP" --destination 127.0.0.1:9 \
    --debug 1
N1=$NFLOWD_PID
netns_start_nflowd "$NS_SERVER" "$WORK/n2.log" --group "$GROUP" --destination 127.0.0.1:9 \
    --debug 1
N2=$NFLOWD_PID
in_client "$NFLOWCTL" set inactive_timeout 11 >/dev/null || fail "set in the client namespace"
in_server "$NFLOWCTL" set inactive_timeout 22 >/dev/null || fail "set in the server namespace"
a=$(in_client "$NFLOWCTL" get inactive_timeout || true)
b=$(in_server "$NFLOWCTL" get inactive_timeout || true)
[[ $a == "inactive_timeout = 11" && $b == "inactive_timeout = 22" ]] ||
    fail "each namespace its daemon: client '$a', server '$b'"
pass "client namespace: $a; server namespace: $b"
netns_stop_nflowd "$N1" "$WORK/n1.log"
netns_stop_nflowd "$N2" "$WORK/n2.log"
rc=0
in_client "$NFLOWCTL" list >/dev/null 2>"$WORK/gone.err" || rc=$?
((rc == 3)) || fail "no daemon left: exit $rc: $(cat "$WORK/gone.err")"

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
