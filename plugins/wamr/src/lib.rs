//! The WAMR engine plugin: WASI preview 1 core modules on WAMR's fast interpreter
//! (WAMR 2.4.3, statically linked through `wamrx-sys`), with a memory cap.
//!
//! Settings (TOML):
//!
//! ```toml
//! max_memory_bytes = 268435456   # cap on the linear memory; unset: the module's own limit
//! stack_size = 131072            # interpreter operand stack, bytes (default 128 KiB)
//! ```
//!
//! Not supported (and not declared): components, text format, precompilation.

mod runtime;
mod wasi;

use serde::Deserialize;
use shim_wasm_abi::Capabilities;
use shim_wasm_abi::plugin::{Engine, MemoryCap, ModuleSource, PluginError, Proposal, RunRequest};

/// The WAMR release vendored by wamrx-sys 0.3.
const WAMR_VERSION: &str = "2.4.3";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    max_memory_bytes: Option<u64>,
    #[serde(default = "default_stack_size")]
    stack_size: u32,
}

fn default_stack_size() -> u32 {
    128 * 1024
}

pub struct Wamr {
    settings: Settings,
    memory_cap: Option<MemoryCap>,
}

impl Engine for Wamr {
    const NAME: &'static str = "wamr";
    const ENGINE_VERSION: &'static str = WAMR_VERSION;
    const PLUGIN_VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const CAPABILITIES: Capabilities = Capabilities::WASI_P1.union(Capabilities::MEMORY_LIMIT);
    /// What WAMR's fast interpreter runs as the plugin builds it.
    const PROPOSALS: &'static [Proposal] =
        &[Proposal::BulkMemory, Proposal::ReferenceTypes, Proposal::MultiValue];

    fn new(settings: &str) -> Result<Self, PluginError> {
        let settings: Settings = toml::from_str(settings).map_err(|e| {
            PluginError::invalid_argument(format!(
                "invalid wamr settings: {}; valid keys: max_memory_bytes = <bytes>, stack_size = <bytes>",
                e.message()
            ))
        })?;
        let memory_cap = MemoryCap::from_setting(Self::NAME, settings.max_memory_bytes)?;
        runtime::init()?;
        Ok(Self { settings, memory_cap })
    }

    fn run(&self, request: RunRequest<'_>) -> Result<i32, PluginError> {
        let ModuleSource::Bytes(bytes) = request.module else {
            return Err(PluginError::unsupported(Self::NAME, "precompiled artifacts"));
        };
        let max_pages = self.memory_cap.map(|cap| cap.pages() as u32);
        runtime::run(bytes, &request, self.settings.stack_size, max_pages)
    }
}

shim_wasm_abi::export_plugin!(Wamr);
