//! The Wasmer engine plugin: WASI preview 1 modules on Wasmer with the singlepass
//! compiler, precompilation into Wasmer artifacts, and a memory cap. WASI preview 1 comes
//! from the implementation the plugins share (`preview1.rs`); programs that import WASIX
//! or spawn threads (`wasm32-wasip1-threads`) get `wasmer-wasix` (`wasi.rs`).
//!
//! Settings (TOML):
//!
//! ```toml
//! max_memory_bytes = 268435456   # cap on each linear memory; unset means no cap
//! ```
//!
//! Not supported (and not declared): components.

mod limits;
mod preview1;
mod stdio;
mod wasi;
mod wasix_compat;

use serde::Deserialize;
use shim_wasm_abi::plugin::{Engine, ModuleSource, PluginError, Proposal, RunRequest, host_key};
use shim_wasm_abi::{Capabilities, ModuleKind};
use wasmer::sys::{EngineBuilder, NativeEngineExt, Singlepass};

/// The wasmer crate version this plugin is built with (from Cargo.lock, see build.rs).
const WASMER_VERSION: &str = env!("WASMER_VERSION");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Cap on each linear memory, in bytes.
    max_memory_bytes: Option<u64>,
}

pub struct Wasmer {
    engine: wasmer::Engine,
    settings: Settings,
}

impl Engine for Wasmer {
    const NAME: &'static str = "wasmer";
    const ENGINE_VERSION: &'static str = WASMER_VERSION;
    const PLUGIN_VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const CAPABILITIES: Capabilities = Capabilities::WASI_P1
        .union(Capabilities::PRECOMPILE)
        .union(Capabilities::TEXT_FORMAT)
        .union(Capabilities::MEMORY_LIMIT);
    /// What Wasmer's singlepass compiler runs (no SIMD of any kind).
    const PROPOSALS: &'static [Proposal] = &[
        Proposal::BulkMemory,
        Proposal::ReferenceTypes,
        Proposal::MultiValue,
        Proposal::ExtendedConst,
        Proposal::MultiMemory,
        Proposal::Threads,
    ];

    fn new(settings: &str) -> Result<Self, PluginError> {
        let settings: Settings = toml::from_str(settings).map_err(|e| {
            PluginError::invalid_argument(format!(
                "invalid wasmer settings: {}; valid keys: max_memory_bytes = <bytes>",
                e.message()
            ))
        })?;
        let mut engine: wasmer::Engine = EngineBuilder::new(Singlepass::default()).into();
        if let Some(cap) =
            shim_wasm_abi::plugin::MemoryCap::from_setting(Self::NAME, settings.max_memory_bytes)?
        {
            engine.set_tunables(limits::MemoryCap::new(cap.pages()));
        }
        // A store installs Wasmer's trap handlers (once per process): now, with the engine,
        // as the other engines do, so that the host can put its filter of sent fault
        // signals in front of them before the program runs.
        drop(wasmer::Store::new(engine.clone()));
        Ok(Self { engine, settings })
    }

    fn cache_key(&self) -> Result<String, PluginError> {
        let cap = match self.settings.max_memory_bytes {
            Some(max) => format!("max_memory_bytes={max}"),
            None => "no-cap".into(),
        };
        Ok(format!("{}/singlepass/{cap}/{}", host_key(), self.engine.deterministic_id()))
    }

    fn precompile(&self, bytes: &[u8]) -> Result<Vec<u8>, PluginError> {
        let module = self.compile(bytes)?;
        let artifact = module
            .serialize()
            .map_err(|e| PluginError::internal(format!("cannot serialize the compiled module: {e}")))?;
        Ok(artifact.to_vec())
    }

    fn run(&self, request: RunRequest<'_>) -> Result<i32, PluginError> {
        let module = match request.module {
            ModuleSource::Bytes(bytes) => {
                let module = self.compile(bytes)?;
                shim_wasm_abi::plugin::release_free_memory();
                module
            }
            // SAFETY: the export layer only passes an artifact whose envelope carries this
            // engine's exact cache key (wasmer version, compiler, settings, CPU).
            ModuleSource::Precompiled(bytes) => unsafe { wasmer::Module::deserialize(&self.engine, bytes) }
                .map_err(|e| {
                PluginError::invalid_module(format!(
                    "cannot load the precompiled artifact: {e}; precompile the module again"
                ))
            })?,
        };
        wasi::run(&self.engine, &module, &request)
    }
}

impl Wasmer {
    fn compile(&self, bytes: &[u8]) -> Result<wasmer::Module, PluginError> {
        wasmer::Module::new(&self.engine, bytes).map_err(|e| {
            let text = e.to_string();
            match ModuleKind::sniff(bytes) {
                ModuleKind::Text => {
                    PluginError::invalid_module(shim_wasm_abi::plugin::one_line_text_error(&text))
                }
                _ => PluginError::invalid_module(text),
            }
        })
    }
}

shim_wasm_abi::export_plugin!(Wasmer);
