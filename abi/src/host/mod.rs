//! The shim's side of the ABI (feature `host`): load one plugin into this process,
//! check its version and table, and call it through safe wrappers.
//!
//! Rules enforced here (design invariant 6): at most one plugin per process, loaded with
//! local symbol scope (`RTLD_NOW | RTLD_LOCAL`, never `RTLD_GLOBAL` or `RTLD_DEEPBIND`),
//! never unloaded. Which files may be loaded at all (trusted directories, ownership,
//! names) is the shim's decision, made before [`LoadedPlugin::load`].

mod engine;
mod error;
mod loaded;

pub use engine::{EngineInstance, RunSpec};
pub use error::{CallError, LoadError};
pub use loaded::{Descriptor, LoadedPlugin};
