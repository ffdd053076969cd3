//! `--version`: the shim's version, its git revision, and the engine ABI it speaks.

use shim_wasm_abi::ABI_VERSION;

use crate::exit::Outcome;

pub fn print() -> Outcome {
    println!("containerd-shim-wasm-v1 {} (git {})", env!("CARGO_PKG_VERSION"), env!("SHIM_WASM_GIT_REV"));
    println!("engine ABI {ABI_VERSION} (loads engine plugins built for ABI {}.x)", ABI_VERSION.major);
    Ok(0)
}
