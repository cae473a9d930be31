# Network namespaces for live tests: client -- router -- server, joined by veth pairs.
# Source it, call netns_setup; everything (namespaces, their veths and rules, processes
# started with netns_bg) is removed by netns_cleanup, which netns_setup installs as the EXIT
# trap. Names carry the shell's PID, so runs in parallel do not collide; the addresses exist
# only inside the namespaces.
#
#   client (NS_CLIENT) 10.201.1.2 --- 10.201.1.1 router (NS_ROUTER) 10.201.2.1 --- 10.201.2.2 server
#
# shellcheck shell=bash

NETNS_TAG="nfl$$"
NS_CLIENT="${NETNS_TAG}c"
NS_ROUTER="${NETNS_TAG}r"
NS_SERVER="${NETNS_TAG}s"
# Interface names stay under IFNAMSIZ (15): "v" + PID (<= 7 digits) + 2.
IF_CLIENT="v$$cr"  # in NS_CLIENT, towards the router
IF_ROUTER_C="v$$rc" # in NS_ROUTER, towards the client
IF_ROUTER_S="v$$rs" # in NS_ROUTER, towards the server
IF_SERVER="v$$sr"  # in NS_SERVER, towards the router
CLIENT_IP=10.201.1.2
ROUTER_IP_C=10.201.1.1
ROUTER_IP_S=10.201.2.1
SERVER_IP=10.201.2.2

NETNS_CREATED=()
NETNS_PIDS=()

# Exits 77 (ctest's skip code here) unless we can make namespaces and use iptables in them.
netns_require() {
    if [[ $EUID -ne 0 ]]; then
        echo "SKIP: needs root" >&2
        exit 77
    fi
    local tool
    for tool in ip iptables; do
        command -v "$tool" >/dev/null || { echo "SKIP: $tool missing" >&2; exit 77; }
    done
}

in_client() { ip netns exec "$NS_CLIENT" "$@"; }
in_router() { ip netns exec "$NS_ROUTER" "$@"; }
in_server() { ip netns exec "$NS_SERVER" "$@"; }

# netns_create: the three namespaces and the two veth pairs (client -- router -- server), not
# yet addressed; removed at exit. netns_setup makes a routed topology of them.
netns_create() {
    trap netns_cleanup EXIT
    trap 'exit 130' INT TERM
    local ns
    for ns in "$NS_CLIENT" "$NS_ROUTER" "$NS_SERVER"; do
        ip netns add "$ns"
        NETNS_CREATED+=("$ns")
        ip -n "$ns" link set lo up
        # No IPv6: router solicitations and the like would only add noise.
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    done
    # Both ends are created inside the namespaces: nothing appears in the host's.
    ip link add "$IF_CLIENT" netns "$NS_CLIENT" type veth peer name "$IF_ROUTER_C" netns "$NS_ROUTER"
    ip link add "$IF_SERVER" netns "$NS_SERVER" type veth peer name "$IF_ROUTER_S" netns "$NS_ROUTER"
}

netns_setup() {
    netns_create
    ip -n "$NS_CLIENT" addr add "$CLIENT_IP/24" dev "$IF_CLIENT"
    ip -n "$NS_ROUTER" addr add "$ROUTER_IP_C/24" dev "$IF_ROUTER_C"
    ip -n "$NS_ROUTER" addr add "$ROUTER_IP_S/24" dev "$IF_ROUTER_S"
    ip -n "$NS_SERVER" addr add "$SERVER_IP/24" dev "$IF_SERVER"
    ip -n "$NS_CLIENT" link set "$IF_CLIENT" up
    ip -n "$NS_ROUTER" link set "$IF_ROUTER_C" up
    ip -n "$NS_ROUTER" link set "$IF_ROUTER_S" up
    ip -n "$NS_SERVER" link set "$IF_SERVER" up
    ip -n "$NS_CLIENT" route add default via "$ROUTER_IP_C"
    ip -n "$NS_SERVER" route add default via "$ROUTER_IP_S"
    in_router sysctl -qw net.ipv4.ip_forward=1

    # Fill the ARP caches now (the server's port-unreachable answer resolves the way back),
    # so that later only the test's own packets cross the router. Bash alone: no ping needed.
    netns_udp "$NS_CLIENT" "$SERVER_IP" 9 1 1
    sleep 0.2
}

# netns_udp NS DST PORT COUNT SIZE: sends COUNT UDP datagrams of SIZE payload bytes from NS,
# one per redirection of bash's /dev/udp (one socket, one datagram).
netns_udp() {
    ip netns exec "$1" bash -c 'for ((i = 0; i < $3; i++)); do
        printf "%*s" "$4" "" >"/dev/udp/$1/$2"; done' _ "$2" "$3" "$4" "$5"
}

# netns_tcp_refused NS DST PORT COUNT: COUNT connection attempts to a closed port, each
# exactly a SYN and the RST answering it.
netns_tcp_refused() {
    ip netns exec "$1" bash -c 'for ((i = 0; i < $3; i++)); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null || true; done' _ "$2" "$3" "$4"
}

# netns_bg NS OUTFILE ERRFILE CMD...: runs CMD in namespace NS in the background; the PID
# (ip netns exec execs the command, so it is CMD's) is in NETNS_LAST_PID and is killed by
# netns_cleanup if still running.
netns_bg() {
    local ns=$1 out=$2 err=$3
    shift 3
    ip netns exec "$ns" "$@" >"$out" 2>"$err" &
    NETNS_LAST_PID=$!
    NETNS_PIDS+=("$NETNS_LAST_PID")
}

# netns_stop PID: SIGTERM to a process started by netns_bg; returns its exit status.
netns_stop() {
    local pid=$1 rc=0 p
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || rc=$?
    local keep=()
    for p in "${NETNS_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    NETNS_PIDS=("${keep[@]}")
    return "$rc"
}

# netns_wait_for FILE PATTERN [TENTHS]: waits (bounded) for PATTERN to appear in FILE.
netns_wait_for() {
    local file=$1 pattern=$2 tenths=${3:-100} i
    for ((i = 0; i < tenths; i++)); do
        grep -q -- "$pattern" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# netns_wait_listen NS PROTO PORT: bounded wait for a socket in NS bound to PORT (PROTO u =
# UDP, t = TCP listener), so that no datagram or connection is sent before anyone listens.
netns_wait_listen() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -n $(ip netns exec "$1" ss -Hln"$2" "sport = :$3") ]] && return 0
        sleep 0.1
    done
    echo "nothing listening on $2 port $3 in $1" >&2
    return 1
}

# netns_wait_closed NS FILTER: bounded wait until NS has no connected TCP socket matching the
# ss FILTER; a server's socket leaves LAST-ACK on a connection's last ACK, so by then the
# whole teardown has crossed the router's rules.
netns_wait_closed() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -z $(ip netns exec "$1" ss -Htn "$2") ]] && return 0
        sleep 0.1
    done
    echo "TCP sockets ($2) still open in $1" >&2
    return 1
}

# netns_start_nflowd NS LOG ARGS...: $NFLOWD ARGS in namespace NS, stdout and stderr in LOG;
# waits (bounded) for its "started" line, else prints LOG and exits. PID in NFLOWD_PID.
netns_start_nflowd() {
    local ns=$1 log=$2
    shift 2
    # Emptied here, not only by netns_bg's redirection, which happens in the background: a
    # restart with the same LOG must not find the last run's "started".
    : >"$log"
    netns_bg "$ns" "$log" "$log" "$NFLOWD" "$@"
    # shellcheck disable=SC2034 # for the caller
    NFLOWD_PID=$NETNS_LAST_PID
    if ! netns_wait_for "$log" "started" 100; then
        cat "$log" >&2
        echo "nflowd did not start" >&2
        exit 1
    fi
}

# netns_stop_nflowd PID LOG: SIGTERM must make it export everything and exit 0 with its
# "stopped:" line. Reports through fail (check_lib.sh).
netns_stop_nflowd() {
    local rc=0
    netns_stop "$1" || rc=$?
    ((rc == 0)) || fail "nflowd exited $rc on SIGTERM: $(tail -3 "$2")"
    grep -q "stopped:" "$2" || fail "nflowd logged no 'stopped:' line"
}

# ctl ARGS...: nflowctl ($NFLOWCTL) against the daemon of control id $CID in the router.
ctl() { in_router "$NFLOWCTL" -i "$CID" "$@"; }

# netns_start_nfcapd NS DIR PORT LOG: nfcapd storing into DIR, on 127.0.0.1:PORT of NS,
# logging to LOG, with a deep socket buffer (-B) so a flush burst is not lost by the collector
# itself. Waits (bounded) until it listens: non-zero if it never does. PID in NFCAPD_PID.
netns_start_nfcapd() {
    mkdir -p "$2"
    netns_bg "$1" "$4" "$4" nfcapd -b 127.0.0.1 -p "$3" -w "$2" -t 3600 -B 16777216
    # shellcheck disable=SC2034 # read by the scripts that source this
    NFCAPD_PID=$NETNS_LAST_PID
    netns_wait_listen "$1" u "$3"
}

# netns_stop_nfcapd NS PID: nfcapd writes its file on SIGTERM but drops what is still queued
# on its socket, so first wait (bounded) until its receive queue is empty: a datagram nflowd
# sent just before exiting must not be lost to the collector's own shutdown.
netns_stop_nfcapd() {
    local i q
    for ((i = 0; i < 50; i++)); do
        q=$(ip netns exec "$1" ss -Hlunp | awk -v pid="pid=$2," 'index($0, pid) { print $2; exit }')
        [[ -z $q || $q == 0 ]] && break
        sleep 0.1
    done
    sleep 0.3
    netns_stop "$2" || true
}

netns_cleanup() {
    local rc=$? pid ns i
    for pid in "${NETNS_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${NETNS_PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    NETNS_PIDS=()
    for ns in "${NETNS_CREATED[@]}"; do
        # Anything still inside is ours: only this script starts processes there.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
    NETNS_CREATED=()
    return "$rc"
}
