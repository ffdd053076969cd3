//! Names the wasmer version cargo resolved (`WASMER_VERSION`).

fn main() {
    shim_wasm_abi::build::export_locked_version("wasmer", "WASMER_VERSION");
}
