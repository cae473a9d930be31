#!/usr/bin/env bash
# nflowd --user, live, in private namespaces: started as root, the daemon binds its NFLOG
# group and control channel, then runs as nobody with no capabilities (every uid and gid,
# the groups; in every thread every capability set empty and NoNewPrivs 1, from /proc) and
# still captures and exports. What the unprivileged daemon can still change: destination
# (nflowctl set, new collector gets the flows), timeouts through SIGHUP with a readable
# config; what it cannot: a root-only config on SIGHUP (logged, keeps running), sndbuf past
# net.core.wmem_max (capped). An unknown user is a bad option (exit 2). A pidfile symlink
# planted by nobody in a directory nobody owns is refused, its target untouched. Last,
# started as the systemd unit does (nobody + ambient CAP_NET_ADMIN, setpriv): CAP_NET_ADMIN
# is permitted but in no thread's effective set while it captures, binds its group, exports
# and may still force sndbuf; with --user nobody as well, it keeps no capability at all.
# usage: privdrop_live.sh PATH/TO/nflowd PATH/TO/nflowctl PATH/TO/v5_collector.py
set -euo pipefail

NFLOWD=${1:?usage: privdrop_live.sh nflowd nflowctl v5_collector.py}
NFLOWCTL=${2:-}
COLLECTOR=${3:?usage}
# shellcheck source=netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
netns_require
command -v python3 >/dev/null || { echo "SKIP: python3 missing" >&2; exit 77; }
getent passwd nobody >/dev/null || { echo "SKIP: no user nobody" >&2; exit 77; }
[[ -x $NFLOWCTL ]] || { echo "SKIP: no nflowctl" >&2; exit 77; }

netns_setup
work_setup netns_cleanup
chmod 755 "$WORK" # nobody must reach the config file in it

status_field() { awk -v k="$1:" '$1 == k { $1 = ""; print substr($0, 2) }' "/proc/$2/status"; }
# thread_sets PID FIELD=VALUE...: every thread of PID shows each FIELD with that VALUE.
thread_sets() {
    local pid=$1 task kv v
    shift
    for task in /proc/"$pid"/task/*; do
        for kv in "$@"; do
            v=$(awk -v k="${kv%%=*}:" '$1 == k { print $2 }' "$task/status")
            [[ $v == "${kv#*=}" ]] ||
                fail "thread $(basename "$task"): ${kv%%=*} is $v, not ${kv#*=}"
        done
    done
}
NONE=0000000000000000
NET_ADMIN=0000000000001000
records() { grep -c '"src"' "$1" 2>/dev/null || true; }

echo "== an unknown user is a bad option"
rc=0
"$NFLOWD" --group 1 --user no-such-user-nflowd >"$WORK/bad.out" 2>&1 || rc=$?
((rc == 2)) || fail "unknown user: exit $rc, expected 2"
grep -q -- '--user: no such user' "$WORK/bad.out" || fail "message: $(cat "$WORK/bad.out")"

GROUP=$((5000 + $$ % 1000))
CID=$((200000 + $$))
in_server iptables -A INPUT -p udp --dport 9999 -j DROP
in_router iptables -I FORWARD 1 -j NFLOG --nflog-group "$GROUP" --nflog-size 128

netns_bg "$NS_ROUTER" "$WORK/c1.out" "$WORK/c1.err" python3 "$COLLECTOR" --port 12055 \
    --out "$WORK/c1.json" --duration 120
netns_bg "$NS_ROUTER" "$WORK/c2.out" "$WORK/c2.err" python3 "$COLLECTOR" --port 12056 \
    --out "$WORK/c2.json" --duration 120
if ! netns_wait_for "$WORK/c1.out" ready 50 || ! netns_wait_for "$WORK/c2.out" ready 50; then
    cat "$WORK"/c*.err >&2
    exit 1
fi

CONF=$WORK/nflowd.conf
printf 'group = %s\ndestination = 127.0.0.1:12055\ninactive_timeout = 1\n' "$GROUP" >"$CONF"
chmod 644 "$CONF"
want_gid=$(getent passwd nobody | awk -F: '{ print $4 }')
echo "== a pidfile symlink planted by nobody: refused, the file it points to untouched"
mkdir "$WORK/run"
chown nobody "$WORK/run"
printf 'precious\n' >"$WORK/precious"
touch -d '2000-01-01 00:00:00' "$WORK/precious"
before=$(stat -c '%s %Y %i' "$WORK/precious")
setpriv --reuid=nobody --regid="$want_gid" --clear-groups \
    ln -s "$WORK/precious" "$WORK/run/nflowd.pid"
rc=0
# Bounded: a daemon that wrote through the link would run on.
timeout 10 ip netns exec "$NS_ROUTER" "$NFLOWD" --config "$CONF" --user nobody \
    --control_id "$CID" --pidfile "$WORK/run/nflowd.pid" >"$WORK/link.out" 2>&1 || rc=$?
((rc == 1)) || fail "pidfile symlink: exit $rc, expected 1"
grep -q 'is a symbolic link' "$WORK/link.out" || fail "message: $(cat "$WORK/link.out")"
[[ $(cat "$WORK/precious") == precious ]] ||
    fail "written through the link: $(cat "$WORK/precious")"
[[ $(stat -c '%s %Y %i' "$WORK/precious") == "$before" ]] || fail "the link's target changed"
[[ -L $WORK/run/nflowd.pid ]] || fail "the planted link is gone"

echo "== nflowd --user nobody"
netns_bg "$NS_ROUTER" "$WORK/d.log" "$WORK/d.log" "$NFLOWD" --config "$CONF" --user nobody \
    --control_id "$CID" --debug 1 --pidfile "$WORK/nflowd.pid"
PID=$NETNS_LAST_PID
netns_wait_for "$WORK/d.log" started 50 || { cat "$WORK/d.log" >&2; exit 1; }
grep -q 'running as user nobody' "$WORK/d.log" || fail "no 'running as user nobody' in the log"

want_uid=$(getent passwd nobody | awk -F: '{ print $3 }')
[[ $(cat "$WORK/nflowd.pid") == "$PID" ]] || fail "pidfile holds $(cat "$WORK/nflowd.pid")"
want_groups=$(id -G nobody | tr ' ' '\n' | sort -n | xargs)
uids=$(status_field Uid "$PID")
gids=$(status_field Gid "$PID")
groups=$(status_field Groups "$PID" | tr -s ' \t' '\n' | grep . | sort -n | xargs)
echo "Uid: $uids / Gid: $gids / Groups: $groups"
[[ $(xargs -n1 <<<"$uids" | sort -u) == "$want_uid" ]] || fail "uids are '$uids'"
[[ $(xargs -n1 <<<"$gids" | sort -u) == "$want_gid" ]] || fail "gids are '$gids'"
[[ $groups == "$want_groups" ]] || fail "groups are '$groups', expected '$want_groups'"
for cap in CapEff CapPrm CapInh CapAmb CapBnd; do
    v=$(status_field "$cap" "$PID")
    [[ $v =~ ^0+$ ]] || fail "$cap is $v"
done
[[ $(status_field NoNewPrivs "$PID") == 1 ]] ||
    fail "NoNewPrivs is $(status_field NoNewPrivs "$PID")"
thread_sets "$PID" CapEff=$NONE CapPrm=$NONE CapInh=$NONE CapAmb=$NONE CapBnd=$NONE NoNewPrivs=1
# Every thread, not just the main one.
for task in /proc/"$PID"/task/*; do
    [[ $(awk '$1 == "Uid:" { print $2 $3 $4 $5 }' "$task/status") == \
        "$want_uid$want_uid$want_uid$want_uid" ]] ||
        fail "thread $(basename "$task") kept another uid"
done

echo "== capture and export still work"
netns_udp "$NS_CLIENT" "$SERVER_IP" 9999 10 100
for ((i = 0; i < 50 && $(records "$WORK/c1.json") == 0; i++)); do sleep 0.2; done
(($(records "$WORK/c1.json") > 0)) || fail "collector 1 got no flow"

echo "== nflowctl set destination (new socket, no privilege needed)"
ctl set destination 127.0.0.1:12056 || fail "nflowctl set destination failed"
netns_udp "$NS_CLIENT" "$SERVER_IP" 9999 10 100
for ((i = 0; i < 50 && $(records "$WORK/c2.json") == 0; i++)); do sleep 0.2; done
(($(records "$WORK/c2.json") > 0)) || fail "collector 2 got no flow after the change"

echo "== sndbuf past wmem_max is capped without CAP_NET_ADMIN"
wmem_max=$(in_router cat /proc/sys/net/core/wmem_max)
want=$((wmem_max * 4))
ctl set sndbuf "$want" >/dev/null || fail "nflowctl set sndbuf failed"
granted=$(ctl stats | grep -o 'sndbuf [0-9]*' | tail -1 | awk '{ print $2 }')
echo "asked $want, wmem_max $wmem_max, granted ${granted:-?}"
((${granted:-0} > 0 && ${granted:-0} <= 2 * wmem_max)) ||
    fail "sndbuf ${granted:-?} granted past 2 * wmem_max ($wmem_max)"

echo "== SIGHUP re-reads a world-readable config file"
sed -i 's/^inactive_timeout = 1$/inactive_timeout = 7/' "$CONF"
kill -HUP "$PID"
netns_wait_for "$WORK/d.log" 'SIGHUP: configuration re-read' 50 || fail "SIGHUP not applied"
[[ $(ctl get inactive_timeout) == "inactive_timeout = 7" ]] ||
    fail "inactive_timeout after SIGHUP: $(ctl get inactive_timeout)"

echo "== SIGHUP cannot re-read a root-only config file"
chmod 600 "$CONF"
sed -i 's/^inactive_timeout = 7$/inactive_timeout = 9/' "$CONF"
kill -HUP "$PID"
netns_wait_for "$WORK/d.log" 'SIGHUP: configuration not changed' 50 ||
    fail "unreadable config on SIGHUP not logged"
grep 'SIGHUP: configuration not changed' "$WORK/d.log" | tail -1
kill -0 "$PID" 2>/dev/null || fail "daemon died on an unreadable config"
[[ $(ctl get inactive_timeout) == "inactive_timeout = 7" ]] ||
    fail "inactive_timeout changed although the file was unreadable"

netns_stop "$PID" || fail "nflowd exited with $?"

# What the systemd unit does instead: start as an ordinary user that holds CAP_NET_ADMIN
# (AmbientCapabilities, CapabilityBoundingSet, NoNewPrivileges). The daemon keeps it
# permitted only: no thread has it effective while capturing, yet the group is bound, flows
# are exported and sndbuf may be forced (raised for those calls only).
if command -v setpriv >/dev/null; then
    echo "== as the systemd unit runs it: nobody with only CAP_NET_ADMIN"
    ID2=$((CID + 1))
    # shellcheck disable=SC2054 # the commas are setpriv's own lists
    as_unit=(setpriv --reuid=nobody --regid="$want_gid" --clear-groups
        --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin
        --bounding-set=-all,+net_admin --no-new-privs)
    netns_bg "$NS_ROUTER" "$WORK/u.log" "$WORK/u.log" "${as_unit[@]}" \
        "$NFLOWD" --group "$GROUP" --destination 127.0.0.1:12055 --control_id "$ID2" \
        --inactive_timeout 1 --debug 1
    PID=$NETNS_LAST_PID
    netns_wait_for "$WORK/u.log" started 50 || fail "did not start: $(cat "$WORK/u.log")"
    grep -q 'CAP_NET_ADMIN permitted' "$WORK/u.log" || fail "no capabilities line in the log"
    before=$(records "$WORK/c1.json")
    netns_udp "$NS_CLIENT" "$SERVER_IP" 9999 10 100
    for ((i = 0; i < 50 && $(records "$WORK/c1.json") == before; i++)); do sleep 0.2; done
    (($(records "$WORK/c1.json") > before)) || fail "as the unit: no flow exported"
    echo "CapEff $(status_field CapEff "$PID"), CapPrm $(status_field CapPrm "$PID")"
    thread_sets "$PID" CapEff=$NONE CapInh=$NONE CapAmb=$NONE NoNewPrivs=1
    [[ $(status_field CapPrm "$PID") == "$NET_ADMIN" ]] ||
        fail "CapPrm is $(status_field CapPrm "$PID"), expected CAP_NET_ADMIN only"
    in_router "$NFLOWCTL" -i "$ID2" set sndbuf "$want" >/dev/null || fail "set sndbuf failed"
    granted=$(in_router "$NFLOWCTL" -i "$ID2" stats | grep -o 'sndbuf [0-9]*' | tail -1 |
        awk '{ print $2 }')
    echo "asked $want, granted ${granted:-?} (forced with CAP_NET_ADMIN)"
    ((${granted:-0} > 2 * wmem_max)) || fail "sndbuf not forced past wmem_max: ${granted:-?}"
    thread_sets "$PID" CapEff=$NONE
    netns_stop "$PID" || fail "nflowd (as the unit) exited with $?"

    echo "== as the unit, with --user nobody as well: nothing left"
    netns_bg "$NS_ROUTER" "$WORK/v.log" "$WORK/v.log" "${as_unit[@]}" \
        "$NFLOWD" --group "$GROUP" --destination 127.0.0.1:12055 --control_id "$ID2" \
        --user nobody --debug 1
    PID=$NETNS_LAST_PID
    netns_wait_for "$WORK/v.log" started 50 || fail "did not start: $(cat "$WORK/v.log")"
    grep -q 'already running as user nobody' "$WORK/v.log" || fail "--user not a no-op"
    # The bounding set stays (no CAP_SETPCAP to clear it); no_new_privs makes it inert.
    thread_sets "$PID" CapEff=$NONE CapPrm=$NONE CapInh=$NONE CapAmb=$NONE NoNewPrivs=1
    netns_stop "$PID" || fail "nflowd (as the unit, --user) exited with $?"
fi

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
