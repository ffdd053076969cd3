//! The wasmtime engine plugin: WASI preview 1 modules and `wasi:cli/run` components on
//! wasmtime with cranelift, `wasi:http/proxy` components served over HTTP ([`http`]),
//! precompilation into wasmtime artifacts, and a memory cap.
//!
//! Settings (the per-engine table from the shim's runtime options, as TOML):
//!
//! ```toml
//! opt_level = "speed"          # "none", "speed" (default) or "speed_and_size"
//! max_memory_bytes = 268435456 # cap on each linear memory; unset means no cap
//! ```

mod http;
mod settings;
mod wasi;

use std::hash::{DefaultHasher, Hash, Hasher};

use shim_wasm_abi::plugin::{
    Engine, ModuleSource, PluginError, Proposal, RunRequest, ServeRequest, host_key, one_line_text_error,
};
use shim_wasm_abi::{Capabilities, ModuleKind};
use wasmtime::{Precompiled, component::Component};

use settings::Settings;

/// The wasmtime crate version this plugin is built with (from Cargo.lock, see build.rs).
const WASMTIME_VERSION: &str = env!("WASMTIME_VERSION");

pub struct Wasmtime {
    engine: wasmtime::Engine,
    settings: Settings,
}

/// A program ready to instantiate.
enum Program {
    Module(wasmtime::Module),
    Component(Component),
}

impl Engine for Wasmtime {
    const NAME: &'static str = "wasmtime";
    const ENGINE_VERSION: &'static str = WASMTIME_VERSION;
    const PLUGIN_VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const CAPABILITIES: Capabilities = Capabilities::WASI_P1
        .union(Capabilities::COMPONENTS)
        .union(Capabilities::PRECOMPILE)
        .union(Capabilities::TEXT_FORMAT)
        .union(Capabilities::MEMORY_LIMIT)
        .union(Capabilities::HTTP_SERVE);
    /// wasmtime's defaults, as its CLI has them (the crate's `gc` and `threads` features
    /// bring garbage collection, exception handling and shared memories).
    const PROPOSALS: &'static [Proposal] = &Proposal::ALL;

    fn new(settings: &str) -> Result<Self, PluginError> {
        let settings = Settings::parse(settings)?;
        let mut config = wasmtime::Config::new();
        config.cranelift_opt_level(settings.opt_level.into());
        config.wasm_component_model(true);
        // Shared memories (the threads proposal), as wasmtime's CLI allows them.
        config.shared_memory(true);
        let engine = wasmtime::Engine::new(&config)
            .map_err(|e| PluginError::internal(format!("cannot configure wasmtime: {e:#}")))?;
        Ok(Self { engine, settings })
    }

    fn cache_key(&self) -> Result<String, PluginError> {
        let mut compat = DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut compat);
        Ok(format!("{}/{}/{:016x}", host_key(), self.settings.canonical(), compat.finish()))
    }

    fn precompile(&self, bytes: &[u8]) -> Result<Vec<u8>, PluginError> {
        let binary = binary(bytes)?;
        let compiled = match ModuleKind::sniff(&binary) {
            ModuleKind::Component => self.engine.precompile_component(&binary),
            _ => self.engine.precompile_module(&binary),
        };
        compiled.map_err(|e| PluginError::invalid_module(format!("{e:#}")))
    }

    fn run(&self, request: RunRequest<'_>) -> Result<i32, PluginError> {
        let program = self.load(request.module)?;
        if let ModuleSource::Bytes(_) = request.module {
            shim_wasm_abi::plugin::release_free_memory();
        }
        match program {
            Program::Module(module) => wasi::run_module(&self.engine, &self.settings, &module, &request),
            Program::Component(component) => {
                wasi::run_component(&self.engine, &self.settings, &component, &request)
            }
        }
    }

    fn serve(&self, request: ServeRequest<'_>) -> Result<i32, PluginError> {
        match self.load(request.run.module)? {
            Program::Component(component) => http::serve(&self.engine, &self.settings, &component, &request),
            Program::Module(_) => Err(PluginError::invalid_module(
                "a core module cannot be served over HTTP; only a component that exports wasi:http/incoming-handler can",
            )),
        }
    }
}

/// Runs a compile on a thread pool of its own, whose threads have ended when it returns
/// (so that the memory they cached is given back with the rest before the program runs).
/// wasmtime compiles functions in parallel on rayon's global pool otherwise, and its
/// threads (one per CPU) would stay idle in the container for the program's whole life:
/// 64 on a 64-core node.
fn compile_on_own_pool<T: Send>(compile: impl FnOnce() -> T + Send) -> Result<T, PluginError> {
    let mut threads = Vec::new();
    let pool = rayon::ThreadPoolBuilder::new()
        .spawn_handler(|thread| {
            threads.push(std::thread::Builder::new().spawn(move || thread.run())?);
            Ok(())
        })
        .build()
        .map_err(|e| PluginError::internal(format!("cannot start threads to compile on: {e}")))?;
    let compiled = pool.install(compile);
    // Dropping the pool tells its threads to end; nothing is left for them to do.
    drop(pool);
    for thread in threads {
        let _ = thread.join();
    }
    Ok(compiled)
}

impl Wasmtime {
    fn load(&self, source: ModuleSource<'_>) -> Result<Program, PluginError> {
        let invalid = |e: wasmtime::Error| PluginError::invalid_module(format!("{e:#}"));
        match source {
            ModuleSource::Bytes(bytes) => {
                let binary = binary(bytes)?;
                compile_on_own_pool(|| match ModuleKind::sniff(&binary) {
                    ModuleKind::Component => Component::new(&self.engine, &binary).map(Program::Component),
                    _ => wasmtime::Module::new(&self.engine, &binary).map(Program::Module),
                })?
                .map_err(invalid)
            }
            ModuleSource::Precompiled(bytes) => {
                // SAFETY: the export layer only passes an artifact whose envelope carries
                // this engine's exact cache key (wasmtime version, settings, CPU), and
                // wasmtime checks its own compatibility header again.
                unsafe {
                    match wasmtime::Engine::detect_precompiled(bytes) {
                        Some(Precompiled::Component) => {
                            Component::deserialize(&self.engine, bytes).map(Program::Component)
                        }
                        Some(Precompiled::Module) => {
                            wasmtime::Module::deserialize(&self.engine, bytes).map(Program::Module)
                        }
                        None => {
                            return Err(PluginError::invalid_module(
                                "the precompiled artifact holds no wasmtime code; precompile the module again",
                            ));
                        }
                    }
                }
                .map_err(invalid)
            }
        }
    }
}

/// Text format becomes binary; binary passes through.
fn binary(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, PluginError> {
    wat::parse_bytes(bytes).map_err(|e| PluginError::invalid_module(one_line_text_error(&e.to_string())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_text_format_error_is_one_line() {
        let Err(err) = super::binary(b"(module\n  (func (result i32)\n    i32.const))") else {
            panic!("invalid text accepted");
        };
        let text = err.to_string();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("text format: ") && text.contains("at line 3, column"), "{text}");
    }
}

shim_wasm_abi::export_plugin!(Wasmtime);
