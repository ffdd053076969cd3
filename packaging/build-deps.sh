#!/usr/bin/env bash
# The system packages that building and testing need, installed when missing: one list
# for `make demo`, `make test` and `.ci/run` (Debian 12 / Ubuntu package names).
#
# Usage: build-deps.sh demo|test|packages
#   demo      the shim, the wasmtime plugin, a private containerd
#   test      every plugin, the C and wasm fixtures, the end-to-end tests
#   packages  test, plus what `make test-packages` uses (lintian, dpkg-dev, rpm)
#
# Prints what it installs. Without apt (or not as root) it prints the missing packages
# and the command that installs them, and stops.
set -euo pipefail

demo=(gcc make pkg-config libseccomp-dev protobuf-compiler containerd runc)
# g++ for the C fixture plugins and header checks; cmake and libclang for the WAMR plugin;
# clang, lld, wasi-libc and the wasm32 builtins for the wasm corpus written in C;
# busybox for the native containers of the end-to-end tests; iproute2 (`ip netns`) for
# the network namespaces of the wasi:http tests; on x86-64, QEMU, Debian's kernel and
# apparmor_parser for the AppArmor test in a virtual machine where the host's kernel has
# no AppArmor (tests/vm/apparmor.sh).
test=("${demo[@]}" g++ cmake libclang-dev clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 busybox-static iproute2)
if [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ]; then
    test+=(qemu-system-x86 linux-image-amd64 apparmor)
fi
packages=("${test[@]}" lintian dpkg-dev rpm)

case "${1:-}" in
    demo) wanted=("${demo[@]}") ;;
    test) wanted=("${test[@]}") ;;
    packages) wanted=("${packages[@]}") ;;
    *) echo "usage: $0 demo|test|packages" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    echo "build-deps: no apt here; install the equivalents of these Debian packages, then run again:" >&2
    echo "  ${wanted[*]}" >&2
    exit 1
fi

missing=()
for package in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "build-deps: missing packages; as root run:" >&2
    echo "  apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "build-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
