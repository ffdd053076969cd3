#!/usr/bin/env bash
# make demo: runs a WebAssembly container through containerd and the shim.
#
# Starts a private containerd (own root, state, sockets, config under a temp dir; never
# a system instance) with the freshly built shim on its PATH and the wasmtime plugin in
# the shim's engine directory, imports a demo image built from tests/demo/demo.wat, and
# runs it with `ctr run`. Installs Debian's containerd if it is missing. Needs root.
# Usage: run.sh SHIM_BINARY RELEASE_DIR OCI_IMAGE_BUILDER
set -euo pipefail
shim=$1 release=$2 builder=$3
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    echo "== installing containerd (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc >/dev/null
fi

work=$(mktemp -d /tmp/containerd-shim-wasm-demo.XXXXXX)
chmod 755 "$work"
mkdir -m 755 "$work/engines" "$work/bin"
install -m 0755 "$release/libengine_wasmtime.so" "$work/engines/wasmtime.so"
ln -s "$(realpath "$shim")" "$work/bin/containerd-shim-wasm-v1"
printf 'engine_dirs = ["%s/engines"]\ndefault_engine = "wasmtime"\n' "$work" > "$work/shim.toml"
cat > "$work/containerd.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
[ttrpc]
  address = "$work/containerd.sock.ttrpc"
TOML

ctr() { command ctr -a "$work/containerd.sock" -n demo "$@"; }
cleanup() {
    ctr task kill -s SIGKILL demo >/dev/null 2>&1 || true
    ctr task rm -f demo >/dev/null 2>&1 || true
    ctr containers rm demo >/dev/null 2>&1 || true
    [ -n "${containerd_pid:-}" ] && kill "$containerd_pid" 2>/dev/null && wait "$containerd_pid" 2>/dev/null || true
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

PATH="$work/bin:$PATH" CONTAINERD_SHIM_WASM_CONFIG="$work/shim.toml" \
    containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
ctr version >/dev/null || { cat "$work/containerd.log"; exit 1; }

echo "== building and importing the demo image"
"$builder" --name docker.io/library/wasm-demo:latest --file "$here/demo.wat:/demo.wat" \
    --entrypoint /demo.wat -o "$work/demo.tar"
ctr images import "$work/demo.tar" >/dev/null
echo "== ctr run --runtime io.containerd.wasm.v1 docker.io/library/wasm-demo:latest demo"
ctr run --rm --runtime io.containerd.wasm.v1 docker.io/library/wasm-demo:latest demo
