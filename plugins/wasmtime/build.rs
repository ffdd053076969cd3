//! Names the wasmtime version cargo resolved (`WASMTIME_VERSION`).

fn main() {
    shim_wasm_abi::build::export_locked_version("wasmtime", "WASMTIME_VERSION");
}
