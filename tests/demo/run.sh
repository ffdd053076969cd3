#!/usr/bin/env bash
# make demo: runs a WebAssembly container through containerd and the shim.
#
# Starts a private containerd (tests/support/private_containerd.sh: own root, state,
# sockets and config under a temp dir; never a system instance) with the freshly built
# shim on its PATH and the wasmtime plugin in the shim's engine directory, imports a demo
# image built from tests/demo/demo.wat, and runs it with `ctr run`. containerd comes from
# `make deps-demo` (packaging/build-deps.sh). Needs root.
# Usage: run.sh SHIM_BINARY RELEASE_DIR OCI_IMAGE_BUILDER
set -euo pipefail
shim=$1 release=$2 builder=$3
here=$(cd "$(dirname "$0")" && pwd)
PCTR_NS=demo
source "$here/../support/private_containerd.sh"

work=$(mktemp -d /tmp/containerd-shim-wasm-demo.XXXXXX)
trap 'private_containerd_stop; rm -rf "$work"' EXIT
mkdir -m 755 -p "$work/engines" "$work/bin"
install -m 0755 "$release/libengine_wasmtime.so" "$work/engines/wasmtime.so"
ln -s "$(realpath "$shim")" "$work/bin/containerd-shim-wasm-v1"
printf 'engine_dirs = ["%s/engines"]\ndefault_engine = "wasmtime"\n' "$work" > "$work/shim.toml"
private_containerd_start "$work" PATH="$work/bin:$PATH" CONTAINERD_SHIM_WASM_CONFIG="$work/shim.toml"

echo "== building and importing the demo image"
"$builder" --name docker.io/library/wasm-demo:latest --file "$here/demo.wat:/demo.wat" \
    --entrypoint /demo.wat -o "$work/demo.tar"
pctr images import "$work/demo.tar" >/dev/null
echo "== ctr run --runtime io.containerd.wasm.v1 docker.io/library/wasm-demo:latest demo"
pctr run --rm --runtime io.containerd.wasm.v1 docker.io/library/wasm-demo:latest demo
