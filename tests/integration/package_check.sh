#!/usr/bin/env bash
# The Debian package, end to end (root; it installs on this machine and removes it again):
# configures a fresh build with -DCMAKE_INSTALL_PREFIX=/usr, checks that `cmake --install`
# puts every file in its GNUInstallDirs place, builds the .deb with CPack (dependencies from
# dpkg-shlibdeps), checks its control data and contents, installs it with dpkg -i, runs
# `nflowd --version`, `nflowctl --version`, `man -w` for the three pages and
# `systemd-analyze verify` on the installed unit, then dpkg -r (binaries, pages, unit and
# rules gone, the edited conffile kept) and dpkg -P (nothing left). Skips (77) without root,
# the tools, or when an nflowd package or a /usr/sbin/nflowd is already there.
# usage: package_check.sh SOURCE_DIR [BUILD_DIR]
# A BUILD_DIR configured with prefix /usr (tests/run.sh's) is packaged as it is; otherwise a
# release build with that prefix is made first.
set -euo pipefail

SRC=${1:?usage: package_check.sh SOURCE_DIR [BUILD_DIR]}
GIVEN_BUILD=${2:-}
skip() {
    echo "SKIP: $*" >&2
    exit 77
}
[[ $EUID -eq 0 ]] || skip "needs root (installs a package)"
for tool in cmake cpack dpkg dpkg-deb dpkg-shlibdeps systemd-analyze man; do
    command -v "$tool" >/dev/null || skip "$tool missing"
done
if dpkg-query -W -f='${Status}' nflowd 2>/dev/null | grep -qv 'not-installed'; then
    skip "an nflowd package is already installed; not touching it"
fi
[[ ! -e /usr/sbin/nflowd && ! -e /etc/nflowd ]] || skip "/usr/sbin/nflowd or /etc/nflowd exists"

# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
INSTALLED=0
cleanup() {
    if ((INSTALLED)); then
        dpkg -P nflowd >/dev/null 2>&1 || true
    fi
}
work_setup cleanup

FILES=(
    /usr/sbin/nflowd
    /usr/sbin/nflowctl
    /usr/share/man/man8/nflowd.8
    /usr/share/man/man8/nflowctl.8
    /usr/share/man/man5/nflowd.conf.5
    /usr/lib/systemd/system/nflowd.service
    /etc/nflowd/nflowd.conf
    /usr/share/doc/nflowd/examples/nflowd.conf
    /usr/share/doc/nflowd/README.md
    /usr/share/nflowd/rules/router.iptables
    /usr/share/nflowd/rules/router.ip6tables
    /usr/share/nflowd/rules/host.iptables
    /usr/share/nflowd/rules/host.ip6tables
    /usr/share/nflowd/rules/router-spread.iptables
    /usr/share/nflowd/rules/router.nft
    /usr/share/nflowd/rules/host.nft
    /usr/share/nflowd/rules/router-spread.nft
)

BUILD=$WORK/build
if [[ -n $GIVEN_BUILD ]] &&
    grep -qx 'CMAKE_INSTALL_PREFIX:PATH=/usr' "$GIVEN_BUILD/CMakeCache.txt" 2>/dev/null; then
    echo "== packaging the build in $GIVEN_BUILD (prefix /usr)"
    BUILD=$GIVEN_BUILD
else
    echo "== build with prefix /usr"
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release \
        -DNFLOWD_TESTS=OFF >"$WORK/configure.log" || { cat "$WORK/configure.log" >&2; exit 1; }
    cmake --build "$BUILD" -j"$(nproc)" >"$WORK/build.log" 2>&1 ||
        { tail -50 "$WORK/build.log" >&2; exit 1; }
fi

echo "== cmake --install into a staging directory"
DESTDIR=$WORK/stage cmake --install "$BUILD" >/dev/null
for f in "${FILES[@]}"; do
    [[ -f $WORK/stage$f ]] || fail "cmake --install did not install $f"
done
grep -qxF 'ExecStart=/usr/sbin/nflowd --config /etc/nflowd/nflowd.conf' \
    "$WORK/stage/usr/lib/systemd/system/nflowd.service" || fail "unit names the wrong paths"

echo "== cpack"
rm -f "$BUILD"/nflowd_*.deb # one package to check, this one
(cd "$BUILD" && cpack -G DEB >"$WORK/cpack.log" 2>&1) || { cat "$WORK/cpack.log" >&2; exit 1; }
DEB=$(ls "$BUILD"/nflowd_*.deb)
echo "$(basename "$DEB")"
dpkg-deb -f "$DEB" Package Version Architecture Depends
depends=$(dpkg-deb -f "$DEB" Depends)
for lib in libc6 libstdc++6 libmnl0 libnetfilter-log1 libpcap0.8 libboost-program-options libcap-ng0 \
    libsystemd0; do
    [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's#^\./#/#' >"$WORK/contents"
for f in "${FILES[@]}"; do
    grep -qxF "$f" "$WORK/contents" || fail "the package lacks $f"
done
# nflowd is programs, not a library: no header (spsc_ring, notifier...) is public API.
if grep -q '/include/' "$WORK/contents"; then fail "the package ships headers"; fi
dpkg-deb -e "$DEB" "$WORK/control"
grep -qxF /etc/nflowd/nflowd.conf "$WORK/control/conffiles" || fail "nflowd.conf is no conffile"

echo "== dpkg -i"
INSTALLED=1
dpkg -i "$DEB" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log" >&2; fail "dpkg -i failed"; }
version=$(/usr/sbin/nflowd --version) || fail "nflowd --version failed"
echo "$version"
[[ $version == "nflowd $(dpkg-deb -f "$DEB" Version)" ]] || fail "version '$version'"
/usr/sbin/nflowctl --version || fail "nflowctl --version failed"
for page in "8 nflowd" "8 nflowctl" "5 nflowd.conf"; do
    # shellcheck disable=SC2086
    where=$(man -w $page 2>&1) || fail "man -w $page: $where"
    [[ $where == /usr/share/man/* ]] || fail "man -w $page found '$where'"
done
out=$(systemd-analyze verify /usr/lib/systemd/system/nflowd.service 2>&1) ||
    fail "systemd-analyze verify failed: $out"
[[ -z $out ]] || fail "systemd-analyze verify:"$'\n'"$out"
echo "systemd-analyze verify: clean"
/usr/sbin/nflowd --config /etc/nflowd/nflowd.conf --help >/dev/null ||
    fail "the installed nflowd.conf does not parse"

echo "== dpkg -r keeps the edited conffile, removes the rest"
echo "# edited" >>/etc/nflowd/nflowd.conf
dpkg -r nflowd >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log" >&2; fail "dpkg -r failed"; }
for f in "${FILES[@]}"; do
    [[ $f == /etc/nflowd/nflowd.conf ]] && continue
    [[ ! -e $f ]] || fail "dpkg -r left $f"
done
grep -q '^# edited' /etc/nflowd/nflowd.conf 2>/dev/null || fail "dpkg -r removed the conffile"

echo "== dpkg -P removes everything"
dpkg -P nflowd >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log" >&2; fail "dpkg -P failed"; }
INSTALLED=0
[[ ! -e /etc/nflowd ]] || fail "dpkg -P left /etc/nflowd: $(ls -la /etc/nflowd)"
for d in /usr/share/nflowd /usr/share/doc/nflowd; do
    [[ ! -e $d ]] || fail "dpkg -P left $d"
done
dpkg-query -W -f='${Status}' nflowd 2>/dev/null | grep -qv 'not-installed' &&
    fail "dpkg still knows nflowd: $(dpkg-query -W -f='${Status}' nflowd)"

((FAILED == 0)) && echo "PASS"
exit "$FAILED"
