//! Engine names: what an operator writes in `engine = "..."` and what a plugin file is
//! called (`<name>.so`). Plain names only, so nothing can point the shim at a path.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::ConfigError;

/// Longest accepted name; plugin file names stay well inside `NAME_MAX`.
const MAX_LEN: usize = 64;

/// A validated engine name matching `[a-z0-9][a-z0-9_-]*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EngineName(String);

impl EngineName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The plugin file that provides this engine.
    pub fn plugin_file_name(&self) -> String {
        format!("{}.so", self.0)
    }
}

impl FromStr for EngineName {
    type Err = ConfigError;

    fn from_str(name: &str) -> Result<Self, ConfigError> {
        let mut chars = name.chars();
        let valid_first = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let valid_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if valid_first && valid_rest && name.len() <= MAX_LEN {
            Ok(Self(name.to_string()))
        } else {
            Err(ConfigError::InvalidEngineName { name: name.to_string() })
        }
    }
}

impl fmt::Display for EngineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EngineName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for name in ["wasmtime", "wasmedge", "wamr", "my-engine_2", "0x"] {
            assert_eq!(name.parse::<EngineName>().unwrap().as_str(), name);
        }
        assert_eq!("wamr".parse::<EngineName>().unwrap().plugin_file_name(), "wamr.so");
    }

    #[test]
    fn refuses_paths_and_odd_names() {
        for name in [
            "",
            "../wasmtime",
            "/usr/lib/x",
            "a/b",
            "Wasmtime",
            "-x",
            "_x",
            "x.so",
            "x y",
            "é",
            &"a".repeat(65),
        ] {
            let err = name.parse::<EngineName>().unwrap_err().to_string();
            assert!(err.contains("invalid engine name"), "{name}: {err}");
        }
    }
}
