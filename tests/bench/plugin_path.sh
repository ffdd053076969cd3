#!/usr/bin/env bash
# make bench: figures for the plugin path of `containerd-shim-wasm-v1 run`, without
# containerd. Reports mean wall time over N runs and the peak RSS of the process tree.
# Usage: plugin_path.sh SHIM_BINARY RELEASE_DIR [N]
set -euo pipefail
shim=$1 release=$2 runs=${3:-20}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/containerd-shim-wasm-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -m 755 "$work/engines"
engines=()
for e in wasmtime wasmer wamr wasmedge; do
    if [ -f "$release/libengine_$e.so" ]; then
        install -m 0755 "$release/libengine_$e.so" "$work/engines/$e.so"
        engines+=("$e")
    else
        echo "SKIPPED: engine $e: plugin not built (make plugin-$e)"
    fi
done
cc -shared -fPIC -O2 -I "$root/abi/include" -o "$work/engines/echo.so" "$root/tests/fixtures/plugins/echo.c"
printf 'engine_dirs = ["%s/engines"]\n' "$work" > "$work/config.toml"
export CONTAINERD_SHIM_WASM_CONFIG=$work/config.toml

for tool in /usr/bin/time bc; do command -v $tool >/dev/null || { echo "bench needs $tool: apt-get install time bc" >&2; exit 1; }; done
clang-14 --target=wasm32-wasi -O2 -Wl,--strip-all -o "$work/hello.wasm" "$root/tests/corpus/hello.c"
clang-14 --target=wasm32-wasi -O2 -Wl,--strip-all -o "$work/compute.wasm" "$root/tests/bench/compute.c"
printf '\0asm\1\0\0\0' > "$work/empty.wasm"

# mean_ms LABEL ARGS...: mean wall-clock milliseconds over $runs runs, and peak RSS.
measure() {
    local label=$1; shift
    "$@" >/dev/null 2>&1   # warm the page cache
    local start end
    start=$(date +%s%N)
    for _ in $(seq "$runs"); do "$@" >/dev/null 2>&1; done
    end=$(date +%s%N)
    local rss
    rss=$(/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1)
    printf '%-52s %8.1f ms %8d KiB\n' "$label" "$(echo "($end - $start) / $runs / 1000000" | bc -l)" "$rss"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "shim: $($shim --version | head -1); runs per figure: $runs"
printf '%-52s %11s %12s\n' "case" "mean wall" "peak RSS"
measure "shim --version (no plugin)" "$shim" --version
measure "run, C echo plugin (process model only)" "$shim" run -e echo "$work/empty.wasm"
for e in "${engines[@]}"; do
    measure "run hello.wasm, $e" "$shim" run -e "$e" "$work/hello.wasm"
    if "$shim" compile -e "$e" -o "$work/hello-$e.cwasm" "$work/hello.wasm" 2>/dev/null; then
        measure "run hello.cwasm, $e (precompiled)" "$shim" run -e "$e" "$work/hello-$e.cwasm"
    fi
    measure "run compute.wasm (sieve, 5M), $e" "$shim" run -e "$e" "$work/compute.wasm"
done
measure "engines (probes ${#engines[@]} plugins + echo)" "$shim" engines
echo
echo "sizes: shim $(stat -c %s "$shim") bytes"
for e in "${engines[@]}"; do echo "       $e.so $(stat -c %s "$release/libengine_$e.so") bytes"; done
