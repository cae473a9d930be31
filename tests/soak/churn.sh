#!/usr/bin/env bash
# Churn soak: a bounded UDP flood through the router's NFLOG rule that creates and expires
# well over a million flows across --threads 2 workers, with --maxflows below the peak
# demand and short timeouts, while nflowd's VmRSS is sampled. Checks:
#   - flows created (hash "new") >= SOAK_MIN_FLOWS, every one of them exported and received
#     (collector records = export flows, no v5 sequence gap), the maxflows limit was hit;
#   - accounting exact: collector packets + maxflows drops + NFLOG lost = the rule's counter,
#     and nflowd's own in = received;
#   - RSS flat after warm-up: the last samples within SOAK_RSS_MARGIN of the first sample
#     taken after SOAK_WARMUP seconds;
#   - `nflowctl flows` dumps the whole cache half-way through, under load;
#   - nflowd exits 0 on SIGTERM.
# CI form (ctest soak_churn): the defaults, about 60 s in all. Long form by hand:
#   SOAK_SECONDS=1800 bash tests/soak/churn.sh build/src/bin/nflowd build/src/bin/nflowctl
# Knobs (env): SOAK_SECONDS (flood, 25), SOAK_PPS (offered rate, 150000; 0 unpaced), SOAK_SAMPLE
# (RSS every N s, 2), SOAK_WARMUP (s, 8 or a quarter of the flood), SOAK_RSS_MARGIN
# (KiB, 4096), SOAK_MIN_FLOWS (1000000; scaled down if SOAK_PPS * SOAK_SECONDS is small),
# SOAK_MAXFLOWS (200000), SOAK_INACTIVE (2), SOAK_ACTIVE (6).
# usage: churn.sh PATH/TO/nflowd PATH/TO/nflowctl   (root; exits 77 when a tool is missing)
set -euo pipefail

NFLOWD=${1:?usage: churn.sh NFLOWD NFLOWCTL}
NFLOWCTL=${2:?usage: churn.sh NFLOWD NFLOWCTL}
# shellcheck source=soak_lib.sh
source "$(cd "$(dirname "$0")" && pwd)/soak_lib.sh"
soak_require

SECONDS_FLOOD=${SOAK_SECONDS:-25}
PPS=${SOAK_PPS:-150000}
SAMPLE=${SOAK_SAMPLE:-2}
WARMUP=${SOAK_WARMUP:-$((SECONDS_FLOOD / 4 > 8 ? SECONDS_FLOOD / 4 : 8))}
MARGIN=${SOAK_RSS_MARGIN:-4096}
MAXFLOWS=${SOAK_MAXFLOWS:-200000}
INACTIVE=${SOAK_INACTIVE:-2}
ACTIVE=${SOAK_ACTIVE:-6}
# SOAK_PPS=0: unpaced (as fast as one sender goes; NFLOG may then lose, counted).
COUNT=$((PPS > 0 ? PPS * SECONDS_FLOOD : 600000 * SECONDS_FLOOD))
MIN_FLOWS=${SOAK_MIN_FLOWS:-1000000}
# A flow needs a packet: never ask for more flows than half the datagrams offered.
((MIN_FLOWS <= COUNT / 2)) || MIN_FLOWS=$((COUNT / 2))
((WARMUP + 3 * SAMPLE <= SECONDS_FLOOD)) || { echo "SOAK_SECONDS too short for the warm-up" >&2; exit 2; }

soak_setup
router_rules
PORT=$((PORT_BASE + 1))
start_sink col "$PORT"
SINK=$SINK_PID
start_nflowd "$WORK/nflowd.log" --threads 2 --maxflows "$MAXFLOWS" --hashsize 262144 \
    --inactive_timeout "$INACTIVE" --active_timeout "$ACTIVE" \
    --destination "127.0.0.1:$PORT" --pidfile "$WORK/nflowd.pid"
NF=$NFLOWD_PID

echo "== churn: $SECONDS_FLOOD s at up to $PPS pps, maxflows $MAXFLOWS, timeouts $INACTIVE/$ACTIVE s, --threads 2"
# RSS sampler: bounded by a count; stops at the stop file or when nflowd is gone. Half-way
# through, the whole cache is dumped with `nflowctl flows` (the control channel under load).
rss_sampler() {
    local n=$(((SECONDS_FLOOD + 10) / SAMPLE)) i t0=$SECONDS dumped=0
    for ((i = 0; i < n; i++)); do
        alive "$NF" && [[ ! -e $WORK/stop_sampler ]] || break
        echo "$((SECONDS - t0)) $(rss_kb "$NF")"
        if ((!dumped && SECONDS - t0 >= SECONDS_FLOOD / 2)); then
            dumped=1
            ctl flows >"$WORK/flows.txt" 2>"$WORK/flows.err" || echo "rc=$?" >>"$WORK/flows.err"
        fi
        sleep "$SAMPLE"
    done
}
rss_sampler >"$WORK/rss" &
SAMPLER=$!
SOAK_LOCAL_PIDS+=("$SAMPLER")
start=$(date +%s.%N)
# 16 source ports x 64512 destination ports = 1 032 192 keys: walked in ~7 s at 150 kpps,
# longer than inactive_timeout, so nearly every datagram starts a new flow; every 16th goes
# to one of 64 hot keys, long flows that end by active_timeout.
in_client python3 "$SOAK_DIR/churn_sender.py" --dst "$SERVER_IP" --count "$COUNT" \
    --max-seconds "$SECONDS_FLOOD" --pps "$PPS" --socks 16 --hot 16 >"$WORK/sent"
end=$(date +%s.%N)
touch "$WORK/stop_sampler"
wait "$SAMPLER" 2>/dev/null || true
tail_packets
alive "$NF" || fail "nflowd died during the flood: $(tail -5 "$WORK/nflowd.log")"

settle "$WORK/stats.json" || fail "nflowd did not take in every packet: rule $(rule_packets), $(cat "$WORK/stats.json")"
rule=$(rule_packets)
S=$WORK/stats.json
received=$(js "$S" "$J_RECEIVED")
lost=$(js "$S" "$J_LOST")
drops=$(js "$S" "$J_DROPS")
created=$(js "$S" 'd["hash"]["new"]')
peak=$(js "$S" 'd["flows"]["peak"]') # daemon-wide: maxflows is one limit for all workers
expired=$(js "$S" 'd["expired"]["inactive"] + d["expired"]["active"]')
bad=$(js "$S" 'd["packets"]["invalid"] + d["packets"]["truncated"] + d["packets"]["fragments"] + d["packets"]["ipv6_skipped"]')
netns_stop_nflowd "$NF" "$WORK/nflowd.log"
sink_wait_idle col 1 || fail "collector still busy"
stop_sink "$SINK"
exported=$(grep -o "stopped: [0-9]*" "$WORK/nflowd.log" | awk '{ print $2 }')
acc=$(sink col packets)
records=$(sink col records)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

note "sender: $(cat "$WORK/sent"); rule counted $rule packets in $secs s ($(awk -v r="$rule" -v s="$secs" 'BEGIN { printf "%.0f", r / s }') pps)"
note "flows: created $created, expired before SIGTERM $expired, peak in cache $peak, exported $exported, collector records $records"
note "packets: collector $acc + maxflows drops $drops + NFLOG lost $lost = $((acc + drops + lost)); rule $rule; nflowd received $received"
note "rss (s KiB): $(tr '\n' ',' <"$WORK/rss" | sed 's/,$//; s/,/, /g')"

((created >= MIN_FLOWS)) && pass "$created flows created (>= $MIN_FLOWS)" ||
    fail "only $created flows created, want >= $MIN_FLOWS"
((peak == MAXFLOWS && drops > 0)) && pass "maxflows $MAXFLOWS reached; $drops packets dropped and counted" ||
    fail "maxflows not exercised: peak $peak, drops $drops"
((records == exported && records == created)) && pass "every flow created was exported and arrived: $records records" ||
    fail "collector got $records records, nflowd exported $exported, created $created"
(($(sink col seq_gaps) == 0 && $(sink col errors) == 0)) || fail "collector saw sequence gaps or bad datagrams"
((bad == 0)) || fail "$bad packets parsed as invalid/truncated/fragment/ipv6 in a clean UDP flood"
((received + lost == rule)) || fail "nflowd received $received + lost $lost != rule $rule"
if ((acc + drops + lost == rule)); then
    pass "accounting exact: $acc + $drops + $lost = $rule"
else
    fail "accounting: collector $acc + drops $drops + lost $lost = $((acc + drops + lost)) != rule $rule (off by $((rule - acc - drops - lost)))"
fi

# The dump taken under load: as many flow lines as its header says, no more than maxflows.
dump_n=$(head -1 "$WORK/flows.txt" 2>/dev/null | awk '{ print $2 + 0 }')
dump_lines=$(($(wc -l <"$WORK/flows.txt" 2>/dev/null || echo 2) - 2))
if [[ -s $WORK/flows.err ]] || ((dump_n == 0 || dump_lines != dump_n || dump_n > MAXFLOWS)); then
    fail "nflowctl flows under load: header '$(head -1 "$WORK/flows.txt" 2>/dev/null)', $dump_lines lines, $(cat "$WORK/flows.err" 2>/dev/null)"
else
    pass "nflowctl flows under load: $dump_lines flows dumped, as the header says"
fi

# RSS: the first sample at or after the warm-up is the reference; the last three samples
# (all taken under load) must be within MARGIN KiB of it.
read -r ref_t ref last_max last_min nsamples < <(awk -v w="$WARMUP" '
    { t[NR] = $1; r[NR] = $2 }
    END {
        for (i = 1; i <= NR; i++) if (t[i] >= w) { rt = t[i]; rv = r[i]; break }
        mx = 0; mn = -1
        for (i = NR - 2; i <= NR; i++) if (i >= 1) { if (r[i] > mx) mx = r[i]; if (mn < 0 || r[i] < mn) mn = r[i] }
        print rt + 0, rv + 0, mx, mn, NR
    }' "$WORK/rss")
if ((nsamples < 4 || ref == 0)); then
    fail "too few RSS samples ($nsamples)"
elif ((last_max - ref <= MARGIN && ref - last_min <= MARGIN)); then
    pass "RSS flat: $ref KiB at ${ref_t} s, last samples $last_min..$last_max KiB (margin $MARGIN KiB)"
else
    fail "RSS not flat: $ref KiB at ${ref_t} s, last samples $last_min..$last_max KiB (margin $MARGIN KiB)"
fi

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
