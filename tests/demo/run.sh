#!/usr/bin/env bash
# make demo: installs the freshly built wasmtime plugin into a private engine directory
# and runs a wasm program through the shim's plugin path.
# Usage: run.sh SHIM_BINARY RELEASE_DIR
set -euo pipefail
shim=$1 release=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/containerd-shim-wasm-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -m 755 "$work/engines"
install -m 0755 "$release/libengine_wasmtime.so" "$work/engines/wasmtime.so"
printf 'engine_dirs = ["%s/engines"]\ndefault_engine = "wasmtime"\n' "$work" > "$work/config.toml"
export CONTAINERD_SHIM_WASM_CONFIG=$work/config.toml

echo "== containerd-shim-wasm-v1 engines"
"$shim" engines
echo
echo "== containerd-shim-wasm-v1 run demo.wat demo arguments"
"$shim" run --env GREETING=hello "$here/demo.wat" demo arguments
