//! The wasmtime plugin's settings, parsed strictly from the TOML table the shim passes.

use serde::Deserialize;
use shim_wasm_abi::plugin::{MemoryCap, PluginError};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub opt_level: OptLevel,
    /// Cap on each linear memory, in bytes.
    pub max_memory_bytes: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptLevel {
    None,
    #[default]
    Speed,
    SpeedAndSize,
}

impl From<OptLevel> for wasmtime::OptLevel {
    fn from(level: OptLevel) -> Self {
        match level {
            OptLevel::None => Self::None,
            OptLevel::Speed => Self::Speed,
            OptLevel::SpeedAndSize => Self::SpeedAndSize,
        }
    }
}

impl Settings {
    pub fn parse(text: &str) -> Result<Self, PluginError> {
        let settings: Self = toml::from_str(text).map_err(|e| {
            PluginError::invalid_argument(format!(
                "invalid wasmtime settings: {}; valid keys: opt_level = \"none\"|\"speed\"|\"speed_and_size\", max_memory_bytes = <bytes>",
                e.message()
            ))
        })?;
        MemoryCap::from_setting("wasmtime", settings.max_memory_bytes)?;
        Ok(settings)
    }

    /// The memory cap (checked by [`Settings::parse`]).
    pub fn memory_cap(&self) -> Option<MemoryCap> {
        MemoryCap::from_setting("wasmtime", self.max_memory_bytes).ok().flatten()
    }

    /// A stable text form, part of the artifact cache key.
    pub fn canonical(&self) -> String {
        let opt = match self.opt_level {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
            OptLevel::SpeedAndSize => "speed_and_size",
        };
        match self.max_memory_bytes {
            Some(max) => format!("opt_level={opt},max_memory_bytes={max}"),
            None => format!("opt_level={opt}"),
        }
    }
}
