#!/usr/bin/env bash
# Shared by the live CPU benchmarks (live_cpu.sh, nat_cpu.sh): the client -- router -- server
# namespaces with the router forwarding an arbitrary-address trace to the server, the trace
# and its replay copy, and the measurement helpers. Source it after netns_lib.sh/check_lib.sh.

# bench_network: namespaces, work directory, GROUP/PORT/HZ, the router's default route towards
# the server (which drops the trace silently: it does not forward and sends no ICMP for
# that), reverse path filtering off (it would drop the arbitrary sources before FORWARD), and
# every forwarded packet logged by the NFLOG rule.
bench_network() {
    netns_setup
    work_setup netns_cleanup
    GROUP=$((6000 + $$ % 1000))
    PORT=$((23000 + $$ % 1000))
    HZ=$(getconf CLK_TCK)
    in_router ip route add default via "$SERVER_IP"
    local conf
    for conf in all default "$IF_ROUTER_C"; do
        in_router sysctl -qw "net.ipv4.conf.$conf.rp_filter=0"
    done
    in_router iptables -A FORWARD -j NFLOG --nflog-group "$GROUP" --nflog-size 128 \
        --nflog-threshold 64
}

mac() { ip -n "$1" -o link show dev "$2" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2; }
# bench_trace GEN_TRACE PACKETS: $WORK/trace.pcap (PACKETS/10 IPv4 flows, truth in
# $WORK/trace.csv) and $WORK/replay.pcap, its frames addressed to the router's veth (or the
# router would not take them).
bench_trace() {
    "$1" --out "$WORK/trace.pcap" --truth "$WORK/trace.csv" --packets "$2" \
        --flows $(($2 / 10)) --snaplen 65535 --ipv6-share 0 --frag-share 0 >/dev/null
    tcprewrite --enet-dmac="$(mac "$NS_ROUTER" "$IF_ROUTER_C")" \
        --enet-smac="$(mac "$NS_CLIENT" "$IF_CLIENT")" \
        --infile="$WORK/trace.pcap" --outfile="$WORK/replay.pcap"
}

cpu_ticks() { # utime + stime of PID and its direct children, in clock ticks
    local total=0 p
    for p in "$1" $(pgrep -P "$1" || true); do
        [[ -r /proc/$p/stat ]] || continue
        # Fields after "(comm) ": utime and stime are the 12th and 13th.
        total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
    done
    echo "$total"
}
rule_packets() { in_router iptables -L FORWARD -v -x -n | awk '/NFLOG/ { print $1 }'; }
nfdump_packets() { # total packets in the flows nfcapd stored under DIR
    nfdump -R "$1" -N -o csv 2>/dev/null | awk -F, '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $0 == "" || $1 == "Summary" { exit }
        { p += $col["ipkt"] } END { print p + 0 }'
}
wait_for() { netns_wait_for "$@" || { echo "timeout waiting for $2 in $1" >&2; cat "$1" >&2; exit 1; }; }
