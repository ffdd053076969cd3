//! Configuration of containerd-shim-wasm, parsed and validated into typed values.
//!
//! Where it sits: containerd request → **config** → plugin → engine. This crate owns:
//! - [`EngineName`]: the plain engine names that select a plugin (`[a-z0-9][a-z0-9_-]*`,
//!   never a path);
//! - [`ShimConfig`]: the shim's own config file (default
//!   `/etc/containerd-shim-wasm/config.toml`, or the file named by
//!   `CONTAINERD_SHIM_WASM_CONFIG`): engine directories, the default engine, and
//!   per-engine default settings;
//! - [`RuntimeOptions`] and [`select_engine`]: containerd's runtime options
//!   (`ConfigBody`, `ConfigPath`), the invoked name, and the config default, reduced to
//!   one engine and its settings.
//!
//! Nothing here loads a plugin or touches the system beyond reading the config file.

mod config_file;
mod engine_name;
mod error;
mod runtime_options;
mod small_file;

pub use config_file::{CONFIG_ENV, DEFAULT_CONFIG_PATH, DEFAULT_ENGINE_DIRS, ShimConfig};
pub use engine_name::EngineName;
pub use error::ConfigError;
pub use runtime_options::{
    EngineSelection, EngineSource, RuntimeOptions, engine_from_invoked_name, select_engine,
};
