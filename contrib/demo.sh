#!/usr/bin/env bash
# nflowd for real, in one command on a fresh Debian 12 machine (as root): installs the build
# dependencies if missing, builds, makes a throwaway client -- router -- server network of
# namespaces with an iptables NFLOG rule in the router, runs nflowd and a local nfcapd there,
# sends traffic, prints the flows nfdump received, and removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $EUID -eq 0 ]] || { echo "demo.sh: run as root (namespaces, iptables)" >&2; exit 1; }

deps=(build-essential cmake pkg-config libnetfilter-log-dev libmnl-dev libnfnetlink-dev
      libboost-program-options-dev libgtest-dev libgmock-dev libpcap-dev nfdump iproute2
      iptables iputils-ping libcap-ng-dev libsystemd-dev libnetfilter-conntrack-dev)
missing=()
for p in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "== building"
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=Release -DNFLOWD_TESTS=OFF >/dev/null
cmake --build build-demo -j"$(nproc)" --target nflowd >/dev/null
nflowd=$PWD/build-demo/src/bin/nflowd

# shellcheck source=../tests/integration/netns_lib.sh
source tests/integration/netns_lib.sh
netns_setup
work=$(mktemp -d)
cleanup_demo() { netns_cleanup; rm -rf "$work"; }
trap cleanup_demo EXIT

echo "== router: iptables -A FORWARD -j NFLOG --nflog-group 5 --nflog-size 128"
in_router iptables -A FORWARD -j NFLOG --nflog-group 5 --nflog-size 128
netns_bg "$NS_ROUTER" "$work/nfcapd.log" "$work/nfcapd.log" \
    nfcapd -b 127.0.0.1 -p 2055 -w "$work" -t 3600
nfcapd_pid=$NETNS_LAST_PID
echo "== router: nflowd --group 5 --destination 127.0.0.1:2055 --inactive_timeout 2"
netns_bg "$NS_ROUTER" "$work/nflowd.log" "$work/nflowd.log" \
    "$nflowd" --group 5 --destination 127.0.0.1:2055 --inactive_timeout 2 --debug 1
nflowd_pid=$NETNS_LAST_PID
netns_wait_for "$work/nflowd.log" "started" 50

echo "== client -> server: 5 pings, 20 UDP datagrams, 3 refused TCP connections"
in_client ping -c 5 -i 0.2 -q "$SERVER_IP" >/dev/null || true
netns_udp "$NS_CLIENT" "$SERVER_IP" 5353 20 200
netns_tcp_refused "$NS_CLIENT" "$SERVER_IP" 8080 3
sleep 3 # inactive_timeout 2 s: the flows leave the cache on their own
netns_stop "$nflowd_pid"
netns_stop "$nfcapd_pid" || true

echo "== nflowd's log"
cat "$work/nflowd.log"
echo "== iptables counters on the rule"
in_router iptables -L FORWARD -v -x -n | sed -n 3p
echo "== flows received by nfcapd (nfdump)"
nfdump -R "$work" -o 'fmt:%ts %pr %sap -> %dap %pkt %byt %flg %in %out' -O tstart | head -40
