#!/usr/bin/env bash
# The one command that proves nflowd on a fresh Debian 12 machine: installs what the build
# and the tests need, builds from scratch with warnings as errors, runs every test (as root:
# the integration tests make network namespaces and iptables rules).
set -euo pipefail
cd "$(dirname "$0")/.."

deps=(build-essential cmake pkg-config libnetfilter-log-dev libmnl-dev libnfnetlink-dev
      libboost-program-options-dev libgtest-dev libgmock-dev libpcap-dev
      nfdump tshark iproute2 iptables nftables tcpdump procps iputils-ping python3)
missing=()
for p in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build=${NFLOWD_BUILD_DIR:-build-test}
rm -rf "$build"
cmake -S . -B "$build" -DNFLOWD_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure --timeout 900
