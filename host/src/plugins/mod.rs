//! Finding, trusting and loading engine plugins.
//!
//! - [`trust`]: a plugin runs with the shim's privileges, so only root-owned files in
//!   root-owned directories that group and others cannot write are used.
//! - [`discovery`]: `<engine>.so` in the configured engine directories, first match wins;
//!   never dlopens anything.
//! - [`load`]: in an engine process, loads one trusted plugin and checks that the name it
//!   reports matches its file name.
//! - [`probe`]: in the long-lived process, describes a plugin by loading it in a child
//!   process, so listing plugins never loads an engine (or a crash) into the caller.

pub mod discovery;
pub mod load;
pub mod probe;
pub mod trust;

use serde::{Deserialize, Serialize};
use shim_wasm_abi::host::Descriptor;

/// What the shim reports about a loadable plugin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PluginInfo {
    pub engine: String,
    pub engine_version: String,
    pub plugin_version: String,
    pub abi: String,
    pub capabilities: Vec<String>,
}

impl From<&Descriptor> for PluginInfo {
    fn from(d: &Descriptor) -> Self {
        Self {
            engine: d.engine_name.clone(),
            engine_version: d.engine_version.clone(),
            plugin_version: d.plugin_version.clone(),
            abi: d.abi_version.to_string(),
            capabilities: d.capabilities.names().into_iter().map(String::from).collect(),
        }
    }
}
