#!/usr/bin/env bash
# contrib/ stays usable: nflowd.service has the restart, reload and hardening settings the
# package promises, Type=notify with its watchdog, a system call filter that lets nflowd
# manage its capabilities and pidfile, and passes `systemd-analyze verify` with no output
# (pointed at this build's nflowd and man pages); nflowd.conf, with every "#name = value"
# line uncommented, is accepted by nflowd (values included), and names every option of
# `nflowd --help`. Skips (77) without systemd-analyze.
# usage: contrib_check.sh CONTRIB_DIR MAN_DIR PATH/TO/nflowd
set -euo pipefail

CONTRIB=${1:?usage: contrib_check.sh CONTRIB_DIR MAN_DIR nflowd}
MAN=${2:?usage}
NFLOWD=${3:?usage}
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
work_setup ""

echo "== nflowd.conf"
CONF=$CONTRIB/nflowd.conf
"$NFLOWD" --help | grep -oE '^ +--[a-z_]+' | sed 's/^ *--//' >"$WORK/options"
while read -r o; do
    grep -qE "^#? ?$o = " "$CONF" || fail "nflowd.conf does not show '$o = '"
done <"$WORK/options"
# Every shown value must be accepted: uncomment them all (the group line goes, --read
# replays an empty capture instead of binding NFLOG).
sed -E 's/^#([a-z_]+ = )/\1/; /^group = /d' "$CONF" >"$WORK/all.conf"
grep -c '^[a-z_]* = ' "$WORK/all.conf" | xargs echo "options set:"
printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00\0\0\0\0\0\0\0\0\xff\xff\0\0\x65\0\0\0' >"$WORK/empty.pcap"
"$NFLOWD" --config "$WORK/all.conf" --read "$WORK/empty.pcap" >"$WORK/out" 2>&1 ||
    fail "nflowd refused the uncommented nflowd.conf: $(cat "$WORK/out")"
"$NFLOWD" --config "$CONF" --help >/dev/null 2>"$WORK/err" ||
    fail "nflowd refused nflowd.conf as shipped: $(cat "$WORK/err")"

echo "== nflowd.service"
UNIT=$CONTRIB/nflowd.service
# shellcheck disable=SC2016 # $MAINPID is for systemd, not for this shell
want=(
    'Type=notify'
    'NotifyAccess=main'
    'WatchdogSec=30s'
    'ExecStart=/usr/sbin/nflowd --config /etc/nflowd/nflowd.conf'
    'ExecReload=/bin/kill -HUP $MAINPID'
    'Restart=on-failure'
    'NoNewPrivileges=yes'
    'CapabilityBoundingSet=CAP_NET_ADMIN'
    'AmbientCapabilities=CAP_NET_ADMIN'
    'ProtectSystem=strict'
    'ProtectHome=yes'
    'PrivateTmp=yes'
    'RestrictAddressFamilies=AF_NETLINK AF_INET AF_INET6 AF_UNIX'
    'MemoryDenyWriteExecute=yes'
    'SystemCallFilter=@system-service'
    'WantedBy=multi-user.target'
)
for line in "${want[@]}"; do
    grep -qxF -- "$line" "$UNIT" || fail "nflowd.service lacks '$line'"
done
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze missing" >&2; exit 77; }
# nflowd lowers its own capability sets (capget, capset) and sets no_new_privs (prctl): the
# unit's system call filter must keep allowing them, or the daemon dies at start.
filter=$(sed -n 's/^SystemCallFilter=//p' "$UNIT")
# Groups name other groups: expand them, a few levels deep (systemd nests two at most).
groups=$filter allowed="" seen=""
for _ in 1 2 3 4; do
    seen+=" $groups"
    # shellcheck disable=SC2086 # one argument per group
    listed=$(systemd-analyze syscall-filter --no-pager $groups 2>/dev/null |
        awk '$1 !~ /^#/ { print $1 }')
    allowed+=$'\n'$(grep -v '^@' <<<"$listed" || true)
    groups=$(grep '^@' <<<"$listed" | sort -u | grep -vxF -f <(xargs -n1 <<<"$seen") |
        xargs || true)
    [[ -n $groups ]] || break
done
for call in capget capset prctl openat unlinkat; do
    grep -qx "$call" <<<"$allowed" || fail "SystemCallFilter=$filter does not allow $call"
done
# The unit as installed, but with this build's binary, and the man pages of this tree for
# its Documentation= lines (systemd-analyze runs man to check them).
mkdir -p "$WORK/man/man8" "$WORK/man/man5" "$WORK/unit"
cp "$MAN"/*.8 "$WORK/man/man8/"
cp "$MAN"/*.5 "$WORK/man/man5/"
sed "s#^ExecStart=/usr/sbin/nflowd #ExecStart=$(realpath "$NFLOWD") #" "$UNIT" \
    >"$WORK/unit/nflowd.service"
out=$(MANPATH=$WORK/man SYSTEMD_LOG_LEVEL=notice \
    systemd-analyze verify "$WORK/unit/nflowd.service" 2>&1) || fail "verify failed: $out"
[[ -z $out ]] || fail "systemd-analyze verify:"$'\n'"$out"
echo "systemd-analyze verify: clean"

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
