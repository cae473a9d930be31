#!/usr/bin/env bash
# Hostile packets through nflowd's live path. tests/soak/hostile_send.py (scapy) in the
# client namespace sends malformed IPv4 and IPv6 (bad IHL, total length bigger / smaller
# than the packet / below the header, bad version or checksum, packets cut inside the IP or
# the L4 header, tiny and far fragments, IPv6 extension-header chains, empty frames), case
# by case, each followed by ordinary "control" datagrams; three nflowd capture points watch:
#   R1  the router's FORWARD hook (iptables + ip6tables NFLOG; IPv6 enabled in the router):
#       the production rule; the kernel's ip_rcv/ipv6_rcv checks run first
#   R2  the router's netdev ingress hook on the client side (nft "log group", IPv4 and IPv6
#       ethertypes): the bytes exactly as they arrived, before any IP check
#   R3  the client's OUTPUT hook (iptables NFLOG) with nflowd in the client namespace: what a
#       raw IP_HDRINCL socket gets past the kernel
# Per case and point: what crossed the rule (the rule's counter) and how nflowd classified
# it (stats deltas), compared with the class the case's bytes deserve (hostile_send.py
# --list); a point may see nothing only where the kernel dropped the packet before the hook
# (R1 for what ip_rcv rejects; R3 for frames that never cross OUTPUT), and that is reported.
# Then a seeded fuzz burst of random IPv4 headers. At the end: every nflowd alive and exits 0
# on SIGTERM; at every point received + empty = rule counter (nothing lost), the collector's
# packets = nflowd's accounted packets, the control flow exact (packets and bytes) at all
# three; at R1 the collector's bytes = the IPv4 rule's bytes.
# usage: hostile.sh PATH/TO/nflowd PATH/TO/nflowctl   (root; 77 without scapy/nft/ip6tables)
# HOSTILE_REPEAT (3): each case sent this many times; HOSTILE_FUZZ (2000) fuzz frames.
set -euo pipefail

NFLOWD=${1:?usage: hostile.sh NFLOWD NFLOWCTL}
NFLOWCTL=${2:?usage: hostile.sh NFLOWD NFLOWCTL}
# shellcheck source=soak_lib.sh
source "$(cd "$(dirname "$0")" && pwd)/soak_lib.sh"
soak_require
for tool in nft ip6tables; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
done
SCAPY_PY=""
for p in python3 /usr/bin/python3; do
    if "$p" -c "import scapy.all" 2>/dev/null; then SCAPY_PY=$p; break; fi
done
[[ -n $SCAPY_PY ]] || { echo "SKIP: scapy missing (apt-get install python3-scapy)" >&2; exit 77; }
REPEAT=${HOSTILE_REPEAT:-3}
FUZZ=${HOSTILE_FUZZ:-2000}
CONTROL=5 # control datagrams after every case
TOOLS=$SOAK_DIR/../tools

soak_setup
G1=$GROUP
G2=$((GROUP + 1000))
G3=$((GROUP + 2000))
CID1=$CID
CID2=$((CID + 1))
CID3=$((CID + 2))
P1=$((PORT_BASE + 1))
P2=$((PORT_BASE + 2))
P3=$((PORT_BASE + 3))
CLIENT_IP6=fd00:201:1::2
ROUTER_IP6_C=fd00:201:1::1
ROUTER_IP6_S=fd00:201:2::1
SERVER_IP6=fd00:201:2::2

mac() { ip -n "$1" -o link show dev "$2" | grep -o 'link/ether [0-9a-f:]*' | awk '{ print $2 }'; }
RMAC=$(mac "$NS_ROUTER" "$IF_ROUTER_C")
CMAC=$(mac "$NS_CLIENT" "$IF_CLIENT")
# No ARP from here on: the client's raw and control packets find the router statically.
ip -n "$NS_CLIENT" neigh replace "$ROUTER_IP_C" lladdr "$RMAC" dev "$IF_CLIENT" nud permanent

# IPv6 in the router only (netns_lib disables it everywhere): addresses on both sides, so
# that packets to the server's prefix are routed and reach FORWARD.
for k in all default "$IF_ROUTER_C" "$IF_ROUTER_S"; do
    in_router sysctl -qw "net.ipv6.conf.$k.disable_ipv6=0"
done
in_router sysctl -qw net.ipv6.conf.all.forwarding=1
ip -n "$NS_ROUTER" addr add "$ROUTER_IP6_C/64" dev "$IF_ROUTER_C" nodad
ip -n "$NS_ROUTER" addr add "$ROUTER_IP6_S/64" dev "$IF_ROUTER_S" nodad

# R1: FORWARD, both families; nothing is forwarded further (no answers, no neighbours).
in_router iptables -A FORWARD -j NFLOG --nflog-group "$G1" --nflog-size 128
in_router iptables -A FORWARD -j DROP
in_router ip6tables -A FORWARD -j NFLOG --nflog-group "$G1" --nflog-size 128
in_router ip6tables -A FORWARD -j DROP
# R2: netdev ingress, before any IP check. IPv6 only from the test's prefix (the router's
# neighbours and multicast listeners stay out); no ARP thanks to the static entry.
in_router nft add table netdev nflowd_hostile
in_router nft add chain netdev nflowd_hostile in "{ type filter hook ingress device \"$IF_ROUTER_C\" priority 0; }"
in_router nft add rule netdev nflowd_hostile in meta protocol ip counter log group "$G2" snaplen 128
in_router nft add rule netdev nflowd_hostile in meta protocol ip6 ip6 saddr fd00::/16 counter log group "$G2" snaplen 128
# R3: the client's OUTPUT towards the router (the export to R3's collector stays on lo).
in_client iptables -A OUTPUT -o "$IF_CLIENT" -j NFLOG --nflog-group "$G3" --nflog-size 128

# Collectors: v5_collector.py (one JSON line per record), few records here.
collector() { # collector NS PORT OUT -> COLL_PID
    netns_bg "$1" "$3.stdout" "$3.stderr" python3 "$TOOLS/v5_collector.py" --port "$2" \
        --out "$3" --duration 600
    COLL_PID=$NETNS_LAST_PID
    netns_wait_listen "$1" u "$2"
}
collector "$NS_ROUTER" "$P1" "$WORK/c1.jsonl"
C1=$COLL_PID
collector "$NS_ROUTER" "$P2" "$WORK/c2.jsonl"
C2=$COLL_PID
collector "$NS_CLIENT" "$P3" "$WORK/c3.jsonl"
C3=$COLL_PID

# Batches of one, handed over at once: each case is seen on its own.
COMMON=(--debug 1 --threads 2 --qthreshold 1 --qtimeout 1 --inactive_timeout 600)
nflowd_in() { # nflowd_in NS GROUP CID PORT LOG -> PID in NPID
    netns_start_nflowd "$1" "$5" --group "$2" --control_id "$3" \
        --destination "127.0.0.1:$4" "${COMMON[@]}"
    NPID=$NFLOWD_PID
}
nflowd_in "$NS_ROUTER" "$G1" "$CID1" "$P1" "$WORK/r1.log"
N1=$NPID
nflowd_in "$NS_ROUTER" "$G2" "$CID2" "$P2" "$WORK/r2.log"
N2=$NPID
nflowd_in "$NS_CLIENT" "$G3" "$CID3" "$P3" "$WORK/r3.log"
N3=$NPID

# The sender, once (scapy loads slowly): cases in, "sent=" lines out.
coproc SENDER { exec ip netns exec "$NS_CLIENT" "$SCAPY_PY" "$SOAK_DIR/hostile_send.py" --serve --iface "$IF_CLIENT" \
    --dmac "$RMAC" --smac "$CMAC" --src "$CLIENT_IP" --dst "$SERVER_IP" --src6 "$CLIENT_IP6" \
    --dst6 "$SERVER_IP6" 2>"$WORK/sender.err"; }
NETNS_PIDS+=("$SENDER_PID")
send_case() { # send_case CASE COUNT [SEED] -> SENT_LINE
    echo "$*" >&"${SENDER[1]}"
    if ! read -r -t 60 SENT_LINE <&"${SENDER[0]}"; then
        cat "$WORK/sender.err" >&2
        echo "hostile_send.py did not answer" >&2
        exit 1
    fi
}

# point_rule N: packets its rule(s) counted; point_stats N FILE: its nflowctl stats.
point_rule() {
    case $1 in
    1) echo $(($(in_router iptables -L FORWARD -v -x -n | awk '/NFLOG/ { print $1; exit }') +
        $(in_router ip6tables -L FORWARD -v -x -n | awk '/NFLOG/ { print $1; exit }'))) ;;
    2) in_router nft list chain netdev nflowd_hostile in | grep -o 'packets [0-9]*' | awk '{ s += $2 } END { print s + 0 }' ;;
    3) in_client iptables -L OUTPUT -v -x -n | awk '/NFLOG/ { print $1; exit }' ;;
    esac
}
point_stats() {
    case $1 in
    1) in_router "$NFLOWCTL" -i "$CID1" stats --json >"$2" ;;
    2) in_router "$NFLOWCTL" -i "$CID2" stats --json >"$2" ;;
    3) in_client "$NFLOWCTL" -i "$CID3" stats --json >"$2" ;;
    esac
}
# observe N: one line of figures for point N once it has taken in everything its rule
# counted (bounded wait): rule received empty lost plain truncated fragment ipv6 invalid
observe() {
    local f=$WORK/obs.$1.json i rule line
    for ((i = 0; i < 50; i++)); do
        rule=$(point_rule "$1")
        point_stats "$1" "$f"
        line=$(python3 - "$f" "$rule" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
g = d["groups"][0]
p = d["packets"]
plain = p["accounted"] - p["truncated"] - p["fragments"]
print(sys.argv[2], g["received"], g["malformed"], g["lost"], plain, p["truncated"],
      p["fragments"], p["ipv6_skipped"], p["invalid"], d["in"]["packets"])
PY
        )
        read -r r rcv mal lost _ <<<"$line"
        ((rcv + mal + lost == r)) && break
        sleep 0.1
    done
    echo "$line"
}

# ---------------------------------------------------------------------------- cases
echo "== cases: each sent $REPEAT times, then $CONTROL ordinary datagrams (the control flow)"
"$SCAPY_PY" "$SOAK_DIR/hostile_send.py" --list >"$WORK/cases.jsonl"
mapfile -t CASES < <(python3 -c 'import json, sys
for l in open(sys.argv[1]): print(json.loads(l)["case"])' "$WORK/cases.jsonl")
: >"$WORK/observed"
declare -A PREV
for n in 1 2 3; do PREV[$n]=$(observe "$n"); done
for c in "${CASES[@]}"; do
    send_case "$c" "$REPEAT"
    case_sent=$SENT_LINE
    send_case control "$CONTROL"
    for n in 1 2 3; do
        now=$(observe "$n")
        echo "$c $n $case_sent ${PREV[$n]} $now" >>"$WORK/observed"
        PREV[$n]=$now
    done
done
alive "$N1" && alive "$N2" && alive "$N3" || fail "an nflowd died during the cases"

# ---------------------------------------------------------------------------- judge
judge_rc=0
python3 - "$WORK/cases.jsonl" "$WORK/observed" "$REPEAT" "$CONTROL" >"$WORK/judged" <<'PY' || judge_rc=$?
import json, sys
cases = {}
for line in open(sys.argv[1]):
    c = json.loads(line)
    cases[c["case"]] = c
repeat, control = int(sys.argv[3]), int(sys.argv[4])
names = ["rule", "received", "empty", "lost", "plain", "truncated", "fragment", "ipv6", "invalid", "in"]
classes = ["plain", "truncated", "fragment", "ipv6", "invalid", "empty"]
bad = 0
rows = {}
for line in open(sys.argv[2]):
    w = line.split()
    case, point, sent = w[0], int(w[1]), w[2:5]
    before = dict(zip(names, map(int, w[5:15])))
    after = dict(zip(names, map(int, w[15:25])))
    delta = {k: after[k] - before[k] for k in names}
    nsent = int(sent[0].split("=")[1])
    info = cases[case]
    way = info["way"]
    times = nsent // max(1, info["packets"])
    want = {}
    if not (way == "l2" and point == 3):  # an AF_PACKET frame never crosses OUTPUT
        for k in info["classes"]:
            want[k] = want.get(k, 0) + times
    want = {k: v for k, v in want.items() if v}
    # The control datagrams sent after every case: ordinary UDP, through every hook.
    want["plain"] = want.get("plain", 0) + control
    got = {k: delta[k] for k in classes if delta[k]}
    seen = delta["rule"]
    if delta["lost"] or delta["received"] + delta["empty"] != seen:
        verdict = "LOST"
    elif got == want:
        verdict = "ok"
    elif point == 1 and seen == control and got == {"plain": control}:
        verdict = "kernel dropped"  # ip_rcv/ipv6_rcv said no before FORWARD
    else:
        verdict = "WRONG"
    if verdict in ("LOST", "WRONG"):
        bad += 1
    rows.setdefault(case, {"way": way, "sent": " ".join(sent)})[point] = (seen, got, want, verdict)
print(f"per point: packets of the case the rule counted -> nflowd's classes ({control} control datagrams after each case not shown)")
print(f"{'case':<26} {'way':<3} {'sent':<28} R1 FORWARD | R2 netdev ingress | R3 client OUTPUT")
for case, r in rows.items():
    cells = []
    for p in (1, 2, 3):
        seen, got, want, verdict = r[p]
        own = dict(got)  # the case's own packets: the control datagrams taken out
        own["plain"] = own.get("plain", 0) - control
        g = ",".join(f"{k}:{v}" for k, v in own.items() if v) or "-"
        cell = f"{seen - control}->{g}"
        if verdict != "ok":
            cell += f" [{verdict}" + (f", want {want}" if verdict == "WRONG" else "") + "]"
        cells.append(cell)
    print(f"{case:<26} {r['way']:<3} {r['sent']:<28} " + " | ".join(cells))
    for p in (1, 2, 3):
        if r[p][3] in ("LOST", "WRONG"):
            print(f"FAIL: {case} at R{p}: rule {r[p][0]}, nflowd {r[p][1]}, want {r[p][2]} ({r[p][3]})")
sys.exit(1 if bad else 0)
PY
cat "$WORK/judged"
if ((judge_rc == 0)) && ! grep -q "^FAIL" "$WORK/judged"; then
    pass "every case classified as its bytes deserve at every point that saw it"
else
    fail "cases: see the table (judge exit $judge_rc)"
fi

# ---------------------------------------------------------------------------- fuzz
echo "== fuzz: $FUZZ frames of random IPv4 headers (seed 1)"
for n in 1 2 3; do PREV[$n]=$(observe "$n"); done
send_case fuzz "$FUZZ" 1
note "fuzz: $SENT_LINE"
send_case control "$CONTROL"
for n in 1 2; do
    now=$(observe "$n")
    read -r r0 rc0 e0 l0 p0 t0 f0 v0 i0 _ <<<"${PREV[$n]}"
    read -r r1 rc1 e1 l1 p1 t1 f1 v1 i1 _ <<<"$now"
    note "R$n: rule +$((r1 - r0)), nflowd plain +$((p1 - p0)) truncated +$((t1 - t0)) fragment +$((f1 - f0)) ipv6 +$((v1 - v0)) invalid +$((i1 - i0)) empty +$((e1 - e0)) lost +$((l1 - l0))"
    (((rc1 - rc0) + (e1 - e0) == r1 - r0 && l1 == l0)) ||
        fail "fuzz at R$n: received $((rc1 - rc0)) + empty $((e1 - e0)) != rule $((r1 - r0)) (lost $((l1 - l0)))"
done
alive "$N1" && alive "$N2" && alive "$N3" && pass "all three nflowd alive after the fuzz" || fail "an nflowd died in the fuzz"

# ---------------------------------------------------------------------------- totals
# Stats before SIGTERM (their in.packets = what they must export), then stop everything.
FINAL=()
for n in 1 2 3; do FINAL[n]=$(observe "$n"); done
rule1_bytes=$(in_router iptables -L FORWARD -v -x -n | awk '/NFLOG/ { print $2; exit }')
echo quit >&"${SENDER[1]}"
for n in 1 2 3; do
    pid_var=N$n
    netns_stop_nflowd "${!pid_var}" "$WORK/r$n.log"
done
sleep 1.5
for c in "$C1" "$C2" "$C3"; do stop_sink "$c"; done
for n in 1 2 3; do
    read -r _ _ _ _ _ _ _ _ _ inp <<<"${FINAL[$n]}"
    read -r cp cb ctl_p ctl_b < <(python3 - "$WORK/c$n.jsonl" "$CLIENT_IP" "$SERVER_IP" <<'PY'
import json, sys
p = b = cp = cb = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "error" in r:
        continue
    p += r["packets"]; b += r["bytes"]
    if (r["proto"], r["src"], r["sport"], r["dst"], r["dport"]) == (17, sys.argv[2], 41000, sys.argv[3], 41001):
        cp += r["packets"]; cb += r["bytes"]
print(p, b, cp, cb)
PY
    )
    want_ctl=$(((${#CASES[@]} + 1) * CONTROL)) # after every case, and after the fuzz
    ((cp == inp)) && pass "R$n: collector $cp packets = nflowd accounted $inp" ||
        fail "R$n: collector $cp packets, nflowd accounted $inp"
    ((ctl_p == want_ctl && ctl_b == want_ctl * 40)) &&
        pass "R$n: control flow exact among the hostile packets: $ctl_p packets, $ctl_b bytes" ||
        fail "R$n: control flow $ctl_p packets / $ctl_b bytes, want $want_ctl / $((want_ctl * 40))"
    if ((n == 2)); then
        # The UDP key 42000 -> 42001 of several cases: at netdev ingress nflowd counts the
        # IP total length as written, so total_len_bigger's 38-byte packets count 1000 each.
        read -r kp kb < <(python3 - "$WORK/c2.jsonl" <<'PY'
import json, sys
p = b = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("sport") == 42000 and r.get("dport") == 42001:
        p += r["packets"]; b += r["bytes"]
print(p, b)
PY
        )
        note "R2: UDP 42000 -> 42001 exported as $kp packets, $kb bytes (the IP total length as written, lies included)"
    fi
    if ((n == 1)); then
        # R1 sees only what the kernel let through; IPv6 is counted, not exported, so the
        # IPv4 rule's bytes must equal the collector's bytes exactly (total length = skb).
        ((cb == rule1_bytes)) && pass "R1: collector bytes $cb = IPv4 FORWARD rule bytes" ||
            fail "R1: collector bytes $cb != IPv4 FORWARD rule bytes $rule1_bytes"
    fi
done

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
