//! The WasmEdge engine plugin: WASI preview 1 core modules on WasmEdge's interpreter,
//! through the C API of `libwasmedge` (WasmEdge 0.17.1, bound by `wasmedge-sys` 0.21),
//! with a memory cap.
//!
//! Settings (TOML):
//!
//! ```toml
//! max_memory_bytes = 268435456   # cap on each linear memory; unset: WasmEdge's default
//! ```
//!
//! Not supported (and not declared): components, text format, precompilation (WasmEdge's
//! AOT compiler needs a libwasmedge built with LLVM; not wired up yet).

mod runtime;

use serde::Deserialize;
use shim_wasm_abi::Capabilities;
use shim_wasm_abi::plugin::{Engine, MemoryCap, ModuleSource, PluginError, Proposal, RunRequest};

/// The WasmEdge release wasmedge-sys 0.21 is written for; checked against the loaded
/// libwasmedge at start.
const WASMEDGE_VERSION: &str = "0.17.1";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    max_memory_bytes: Option<u64>,
}

pub struct WasmEdge {
    memory_cap: Option<MemoryCap>,
}

impl Engine for WasmEdge {
    const NAME: &'static str = "wasmedge";
    const ENGINE_VERSION: &'static str = WASMEDGE_VERSION;
    const PLUGIN_VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const CAPABILITIES: Capabilities = Capabilities::WASI_P1.union(Capabilities::MEMORY_LIMIT);
    /// WasmEdge 0.17's defaults, as its CLI runs them (checked by the corpus with
    /// WasmEdge 0.17.1, interpreter): every proposal but threads, which needs
    /// `--enable-threads` and which WasmEdge refuses without naming ("malformed limits
    /// flags"), so the shared layer names it.
    const PROPOSALS: &'static [Proposal] = &[
        Proposal::BulkMemory,
        Proposal::ReferenceTypes,
        Proposal::MultiValue,
        Proposal::RelaxedSimd,
        Proposal::Simd,
        Proposal::TailCalls,
        Proposal::ExtendedConst,
        Proposal::MultiMemory,
        Proposal::Gc,
        Proposal::FunctionReferences,
        Proposal::Exceptions,
        Proposal::Memory64,
    ];

    fn new(settings: &str) -> Result<Self, PluginError> {
        let settings: Settings = toml::from_str(settings).map_err(|e| {
            PluginError::invalid_argument(format!(
                "invalid wasmedge settings: {}; valid keys: max_memory_bytes = <bytes>",
                e.message()
            ))
        })?;
        let memory_cap = MemoryCap::from_setting(Self::NAME, settings.max_memory_bytes)?;
        runtime::check_library_version(WASMEDGE_VERSION)?;
        Ok(Self { memory_cap })
    }

    fn run(&self, request: RunRequest<'_>) -> Result<i32, PluginError> {
        let ModuleSource::Bytes(bytes) = request.module else {
            return Err(PluginError::unsupported(Self::NAME, "precompiled artifacts"));
        };
        let max_pages = self.memory_cap.map(|cap| cap.pages() as u32);
        runtime::run(bytes, &request, max_pages)
    }
}

shim_wasm_abi::export_plugin!(WasmEdge);
