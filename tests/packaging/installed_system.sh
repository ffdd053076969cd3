#!/usr/bin/env bash
# The installed-system test (make test-packages): the Debian packages installed the way
# an operator installs them, on this machine, with a private containerd.
#
#   1. lintian: no errors on any package.
#   2. dpkg -i containerd-shim-wasm alone: a wasm container fails with the clear
#      "engine is not installed" error; the shim binary's checksum is recorded.
#   3. dpkg -i each engine package in turn: the same containerd (same process, never
#      restarted) runs the container with that engine; the shim binary is unchanged.
#   4. an engine package built for another ABI major: apt refuses it, nothing installed.
#   5. dpkg -r the engine packages: new containers get the clear error again.
#   6. dpkg --purge everything: nothing of the packages is left on the system.
#
# Needs root, dpkg, lintian, containerd and ctr. Refuses to run where the packages are
# already installed (it would remove them).
# Usage: installed_system.sh PACKAGE_DIR OCI_IMAGE_BUILDER
set -euo pipefail
packages=$(realpath "$1") builder=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
PCTR_NS=installed
source "$here/../support/private_containerd.sh"

fail() { echo "installed-system test FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }

core=$(ls "$packages"/containerd-shim-wasm_*.deb)
engines=$(ls "$packages"/containerd-shim-wasm-engine-*.deb)
[ -n "$engines" ] || fail "no engine package in $packages (make packages)"
if dpkg-query -W -f '${Status}' containerd-shim-wasm 2>/dev/null | grep -q installed; then
    fail "containerd-shim-wasm is already installed on this machine; remove it first (dpkg --purge)"
fi

step "lintian"
lintian_out=$(lintian --tag-display-limit 0 $core $engines 2>&1 || true)
echo "$lintian_out" | sed 's/^/   /'
if echo "$lintian_out" | grep -q '^E:'; then fail "lintian reports errors"; fi

work=$(mktemp -d /tmp/shim-wasm-installed.XXXXXX)
purge() {
    private_containerd_stop
    rm -rf "$work"
    dpkg --purge $(dpkg-query -W -f '${Package}\n' 'containerd-shim-wasm*' 2>/dev/null) >/dev/null 2>&1 || true
}
trap purge EXIT

step "dpkg -i $(basename "$core")"
dpkg -i "$core" >/dev/null
shim=/usr/bin/containerd-shim-wasm-v1
sum_before=$(sha256sum "$shim" | cut -d' ' -f1)
[ -L /usr/bin/containerd-shim-wasmtime-v1 ] || fail "no containerd-shim-wasmtime-v1 link"
[ -f /etc/containerd-shim-wasm/config.toml ] || fail "no /etc/containerd-shim-wasm/config.toml"
dpkg-query -W -f '${Conffiles}\n' containerd-shim-wasm | grep -q /etc/containerd-shim-wasm/config.toml \
    || fail "config.toml is not a conffile"
"$shim" engines | sed 's/^/   /'

# The system's PATH only: containerd must find the packaged shim in /usr/bin.
private_containerd_start "$work/containerd" PATH=/usr/sbin:/usr/bin:/sbin:/bin
containerd_pid=$(private_containerd_pid)
containerd_start=$(cut -d' ' -f22 "/proc/$containerd_pid/stat")

"$builder" --name docker.io/library/installed:latest --file "$here/hello.wat:/hello.wasm" \
    --entrypoint /hello.wasm -o "$work/hello.tar"
pctr images import "$work/hello.tar" >/dev/null

# run ENGINE ID: runs the image with the engine's runtime options file from the package.
run() {
    pctr run --rm --runtime io.containerd.wasm.v1 \
        --runtime-config-path "/usr/share/containerd-shim-wasm/runtimes/$1.toml" \
        docker.io/library/installed:latest "$2" 2>&1
}

expect_not_installed() {
    local out
    if out=$(run "$1" "$2"); then fail "the $1 container ran without the engine: $out"; fi
    echo "$out" | sed 's/^/   /'
    echo "$out" | grep -q "engine \"$1\" is not installed" || fail "no clear 'not installed' error for $1"
}

step "a wasm container without any engine package"
expect_not_installed wasmtime no-engine

n=0
for deb in $engines; do
    engine=$(dpkg-deb -f "$deb" Package | sed 's/^containerd-shim-wasm-engine-//')
    n=$((n + 1))
    step "dpkg -i $(basename "$deb"), then run with $engine"
    dpkg -i "$deb" >/dev/null
    out=$(run "$engine" "with-$engine") || fail "the $engine container failed: $out"
    echo "$out" | sed 's/^/   /'
    [ "$out" = "hello from an installed engine" ] || fail "unexpected output from $engine: $out"
done

step "the shim binary is unchanged and containerd was not restarted"
sum_after=$(sha256sum "$shim" | cut -d' ' -f1)
[ "$sum_before" = "$sum_after" ] || fail "the shim binary changed: $sum_before -> $sum_after"
echo "   sha256 $sum_after"
[ "$(cut -d' ' -f22 "/proc/$containerd_pid/stat" 2>/dev/null)" = "$containerd_start" ] \
    || fail "containerd (pid $containerd_pid) is not the process that was started"
echo "   containerd pid $containerd_pid, same process throughout"

step "an engine package for ABI major 2 is refused"
first=$(echo "$engines" | head -n1)
dpkg-deb -R "$first" "$work/abi2"
sed -i 's/containerd-shim-wasm-abi-1/containerd-shim-wasm-abi-2/' "$work/abi2/DEBIAN/control"
sed -i 's/^Package: .*/Package: containerd-shim-wasm-engine-abi2test/' "$work/abi2/DEBIAN/control"
rm -rf "$work/abi2/usr/share/lintian"
mv "$work/abi2/usr/lib/containerd-shim-wasm/engines/"*.so "$work/abi2/usr/lib/containerd-shim-wasm/engines/abi2test.so"
dpkg-deb -b "$work/abi2" "$work/abi2test.deb" >/dev/null
if out=$(apt-get install -y -q "$work/abi2test.deb" 2>&1); then fail "apt installed an ABI 2 engine package: $out"; fi
echo "$out" | grep 'containerd-shim-wasm-abi-2' | sed 's/^/   /'
echo "$out" | grep -q 'Depends: containerd-shim-wasm-abi-2' || fail "apt did not name the ABI dependency: $out"
[ ! -e /usr/lib/containerd-shim-wasm/engines/abi2test.so ] || fail "the ABI 2 plugin was installed"

for deb in $engines; do
    package=$(dpkg-deb -f "$deb" Package)
    engine=${package#containerd-shim-wasm-engine-}
    step "dpkg -r $package, then run with $engine"
    dpkg -r "$package" >/dev/null
    [ ! -e "/usr/lib/containerd-shim-wasm/engines/$engine.so" ] || fail "$engine.so left behind"
    expect_not_installed "$engine" "removed-$engine"
done

step "dpkg --purge containerd-shim-wasm"
private_containerd_stop
dpkg --purge containerd-shim-wasm >/dev/null
for path in /usr/bin/containerd-shim-wasm-v1 /usr/bin/containerd-shim-wasmtime-v1 \
            /etc/containerd-shim-wasm /usr/lib/containerd-shim-wasm /usr/share/containerd-shim-wasm; do
    [ ! -e "$path" ] || fail "$path is left after purge"
done
echo "installed-system test passed: $n engine package(s)"
