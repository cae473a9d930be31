#!/usr/bin/env bash
# The manual pages stay clean and complete: nflowd(8), nflowctl(8) and nflowd.conf(5) pass
# `mandoc -Tlint` and `man --warnings` (whichever is installed; skip, 77, if neither); every
# option of `nflowd --help` is in nflowd(8), nflowd.conf(5) and the example nflowd.conf;
# every command and option of `nflowctl --help` is in nflowctl(8). Then, as root, a daemon in
# a scratch network namespace (spare NFLOG group, own control id) is asked `nflowctl list`
# and `nflowctl stats`: every knob must be in nflowctl(8) and every statistics field in the
# STATISTICS section of nflowd(8). Without root or nflowctl that half is skipped, saying so.
# usage: man_check.sh MAN_DIR CONTRIB_DIR PATH/TO/nflowd [PATH/TO/nflowctl]
set -euo pipefail

MAN=${1:?usage: man_check.sh MAN_DIR CONTRIB_DIR nflowd [nflowctl]}
CONTRIB=${2:?usage}
NFLOWD=${3:?usage}
NFLOWCTL=${4:-}
PAGES=("$MAN/nflowd.8" "$MAN/nflowctl.8" "$MAN/nflowd.conf.5")

# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
NS=""
DAEMON_PID=""
cleanup() {
    if [[ -n $DAEMON_PID ]]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    [[ -n $NS ]] && ip netns del "$NS" 2>/dev/null
}
work_setup cleanup

for p in "${PAGES[@]}"; do [[ -f $p ]] || { echo "FAIL: $p missing" >&2; exit 1; }; done

echo "== lint"
linted=0
if command -v mandoc >/dev/null; then
    linted=1
    for p in "${PAGES[@]}"; do
        # Cross references to pages not installed on this machine (our own, before
        # installation; nfdump's without nfdump) depend on the machine, not the page.
        out=$(mandoc -Tlint "$p" 2>&1 |
            grep -v -e 'referenced manual not found' -e 'outdated mandoc.db' || true)
        [[ -z $out ]] || fail "mandoc -Tlint $(basename "$p"):"$'\n'"$out"
    done
    echo "mandoc -Tlint: done"
fi
if command -v man >/dev/null && command -v groff >/dev/null; then
    linted=1
    for p in "${PAGES[@]}"; do
        out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$p" 2>&1 >/dev/null || true)
        [[ -z $out ]] || fail "man --warnings $(basename "$p"):"$'\n'"$out"
    done
    echo "man --warnings: done"
fi
((linted)) || { echo "SKIP: neither mandoc nor man with groff installed" >&2; exit 77; }

# Plain text of a page, for word checks: no overstrike, no hyphenation at line ends.
render() {
    if command -v mandoc >/dev/null; then
        mandoc -Tascii -Owidth=200 "$1"
    else
        LC_ALL=C MANWIDTH=200 man -E ascii -l "$1" 2>/dev/null
    fi | sed 's/.\x08//g'
}
for p in "${PAGES[@]}"; do render "$p" >"$WORK/$(basename "$p").txt"; done
NFLOWD8=$WORK/nflowd.8.txt
NFLOWCTL8=$WORK/nflowctl.8.txt
CONF5=$WORK/nflowd.conf.5.txt

echo "== every nflowd option"
"$NFLOWD" --help >"$WORK/help.txt"
mapfile -t options < <(grep -oE '^ +(-[a-zA-Z], )?--[a-z_]+' "$WORK/help.txt" |
    grep -oE -- '--[a-z_]+' | sed 's/^--//')
((${#options[@]} >= 20)) || fail "only ${#options[@]} options found in nflowd --help"
# Options whose help text (on their line or the wrapped next one) ends in [runtime].
python3 - "$WORK/help.txt" >"$WORK/runtime.txt" <<'PY'
import re, sys
current = None
for line in open(sys.argv[1]):
    m = re.match(r"\s+(?:-\w, )?--([a-z_]+)", line)
    if m:
        current = m.group(1)
    elif not line.startswith("      "):
        current = None
    if current and "[runtime]" in line:
        print(current)
PY
for o in "${options[@]}"; do
    grep -qF -- "--$o" "$NFLOWD8" || fail "nflowd(8) lacks --$o"
    [[ $o == help || $o == version ]] && continue
    grep -qE "(^|[^a-z_])$o = " "$CONF5" || fail "nflowd.conf(5) lacks '$o = '"
    grep -qE "^#? ?$o = " "$CONTRIB/nflowd.conf" || fail "contrib/nflowd.conf lacks '$o = '"
    if grep -qxF "$o" "$WORK/runtime.txt"; then
        # The pages must agree with the table on what a running daemon can change.
        awk -v o="--$o" '$1 == o { on = 1; next } on && /^     --/ { exit } on' "$NFLOWD8" |
            grep -q '\[runtime\]' || fail "nflowd(8) does not mark --$o [runtime]"
    fi
done
echo "${#options[@]} options checked"

for ref in 'iptables-extensions(8)' 'nft(8)' 'nfcapd(1)' 'nfdump(1)' 'nflowctl(8)' \
    'nflowd.conf(5)'; do
    grep -qF "$ref" "$NFLOWD8" || fail "nflowd(8) SEE ALSO lacks $ref"
done
for section in SIGNALS FILES 'EXIT STATUS' EXAMPLES 'SEE ALSO' STATISTICS TUNING; do
    grep -q "^$section" "$NFLOWD8" || fail "nflowd(8) has no $section section"
done

if [[ -z $NFLOWCTL || ! -x $NFLOWCTL ]]; then
    echo "SKIP (half): no nflowctl binary, its page and the knobs are not checked"
    ((FAILED == 0)) && echo "PASS"
    exit "$FAILED"
fi

echo "== every nflowctl command and option"
"$NFLOWCTL" --help >"$WORK/ctl-help.txt"
words=$(grep -oE -- '(^|[ [(])--?[a-zA-Z][a-z_-]*' "$WORK/ctl-help.txt" | tr -d ' [(' | sort -u)
words+=$'\n'$(awk '/^Commands:/ { on = 1; next } /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }' \
    "$WORK/ctl-help.txt")
for w in $words; do
    grep -qF -- "$w" "$NFLOWCTL8" || fail "nflowctl(8) lacks $w"
done
echo "$(wc -w <<<"$words") nflowctl commands and options checked"
for section in 'EXIT STATUS' EXAMPLES 'SEE ALSO' KNOBS; do
    grep -q "^$section" "$NFLOWCTL8" || fail "nflowctl(8) has no $section section"
done

if [[ $EUID -ne 0 ]] || ! command -v ip >/dev/null; then
    echo "SKIP (half): needs root and ip to run a daemon; knobs and statistics not checked"
    ((FAILED == 0)) && echo "PASS"
    exit "$FAILED"
fi

echo "== every knob and statistics field of a running daemon"
NS="nflman$$"
ip netns add "$NS"
ip -n "$NS" link set lo up
GROUP=$((3000 + $$ % 1000))
ID=$((100000 + $$))
ip netns exec "$NS" "$NFLOWD" --group "$GROUP" --control_id "$ID" --debug 1 \
    >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for ((i = 0; i < 50; i++)); do
    grep -q started "$WORK/daemon.log" && break
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
done
grep -q started "$WORK/daemon.log" || { cat "$WORK/daemon.log" >&2; exit 1; }
ip netns exec "$NS" "$NFLOWCTL" -i "$ID" list >"$WORK/knobs.txt"
ip netns exec "$NS" "$NFLOWCTL" -i "$ID" stats >"$WORK/stats.txt"
mapfile -t knobs < <(awk -F' = ' 'NF >= 1 && $1 != "" { print $1 }' "$WORK/knobs.txt")
((${#knobs[@]} >= 10)) || fail "only ${#knobs[@]} knobs listed: $(cat "$WORK/knobs.txt")"
# The KNOBS section of nflowctl(8) names each one.
awk '/^KNOBS/ { on = 1; next } /^[A-Z]/ { on = 0 } on' "$NFLOWCTL8" >"$WORK/knobs-section.txt"
for k in "${knobs[@]}"; do
    grep -qE "^ +$k( |$)" "$WORK/knobs-section.txt" || fail "nflowctl(8) KNOBS lacks $k"
done
echo "${#knobs[@]} knobs checked"
# The defaults contrib/nflowd.conf shows are the daemon's (except what depends on the
# machine or on how this daemon was started; where the default is empty it shows an example).
while IFS= read -r line; do
    name=${line%% = *}
    value=${line#* = }
    [[ $line == *" = " ]] && value=""
    case $name in hashsize | threads | debug | groups | flush | version) continue ;; esac
    shown=$(sed -nE "s/^#$name = (.*)$/\1/p" "$CONTRIB/nflowd.conf")
    [[ -z $value || -z $shown || $shown == "$value" ]] ||
        fail "contrib/nflowd.conf shows '#$name = $shown', the daemon's default is '$value'"
done <"$WORK/knobs.txt"

# Each line of the statistics has an entry in STATISTICS whose tag names the line's label
# and every counter on it ("group N: received, lost, ...").
awk '/^STATISTICS/ { on = 1; next } /^[A-Z]/ { on = 0 } on' "$NFLOWD8" >"$WORK/stats-section.txt"
tail -n +2 "$WORK/stats.txt" | python3 -c '
import re, sys
for line in sys.stdin:
    head, _, rest = line.partition(":")
    label = head.split()[0]
    print(label + "\t" + label)
    for piece in re.split(r"[:,]", rest):
        m = re.match(r"\s*([A-Za-z][A-Za-z_ ]*?)\s+[0-9(]", piece)
        if m:
            print(label + "\t" + m.group(1))
' | sort -u >"$WORK/fields.txt"
fields=$(wc -l <"$WORK/fields.txt")
((fields >= 20)) || fail "only $fields statistics fields parsed: $(cat "$WORK/stats.txt")"
while IFS=$'\t' read -r label field; do
    tag=$(grep -E "^     $label( |:|\$)" "$WORK/stats-section.txt" || true)
    if [[ -z $tag ]]; then
        [[ $label == "$field" ]] && fail "nflowd(8) STATISTICS has no entry for \"$label\""
        continue
    fi
    grep -qE "(^| )$field([ ,:]|\$)" <<<"$tag" ||
        fail "nflowd(8) STATISTICS entry \"$label\" lacks \"$field\""
done <"$WORK/fields.txt"
echo "$fields statistics fields checked"

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
