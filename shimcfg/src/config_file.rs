//! The shim's config file: where engine plugins live, which engine runs by default, and
//! per-engine default settings.
//!
//! ```toml
//! # /etc/containerd-shim-wasm/config.toml
//! engine_dirs = ["/usr/local/lib/containerd-shim-wasm/engines", "/usr/lib/containerd-shim-wasm/engines"]
//! default_engine = "wasmtime"
//!
//! [engines.wasmtime]       # settings handed to the wasmtime plugin
//! opt_level = "speed"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{ConfigError, EngineName};

/// Environment variable naming another config file (tests, private setups).
pub const CONFIG_ENV: &str = "CONTAINERD_SHIM_WASM_CONFIG";
/// The config file read when `CONTAINERD_SHIM_WASM_CONFIG` is not set.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/containerd-shim-wasm/config.toml";
/// Engine directories searched, in order, when the config file names none.
pub const DEFAULT_ENGINE_DIRS: [&str; 2] =
    ["/usr/local/lib/containerd-shim-wasm/engines", "/usr/lib/containerd-shim-wasm/engines"];

/// The validated shim configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ShimConfig {
    /// The file it came from; `None` for built-in defaults (no file present).
    pub source: Option<PathBuf>,
    /// Directories searched for `<engine>.so`, first match wins.
    pub engine_dirs: Vec<PathBuf>,
    /// The engine used when nothing more specific chooses one.
    pub default_engine: Option<EngineName>,
    /// Default settings per engine, handed to the plugin.
    pub engines: BTreeMap<EngineName, toml::Table>,
    /// Whether compiled modules are kept in containerd's content store for the next start.
    pub precompile_cache: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    engine_dirs: Option<Vec<PathBuf>>,
    default_engine: Option<EngineName>,
    #[serde(default)]
    engines: BTreeMap<EngineName, toml::Table>,
    precompile_cache: Option<bool>,
}

impl Default for ShimConfig {
    fn default() -> Self {
        Self {
            source: None,
            engine_dirs: DEFAULT_ENGINE_DIRS.iter().map(PathBuf::from).collect(),
            default_engine: None,
            engines: BTreeMap::new(),
            precompile_cache: true,
        }
    }
}

impl ShimConfig {
    /// Loads the file named by `CONTAINERD_SHIM_WASM_CONFIG` (which must exist), or else
    /// the default file (built-in defaults when it does not exist).
    pub fn load() -> Result<Self, ConfigError> {
        match std::env::var_os(CONFIG_ENV) {
            Some(path) if !path.is_empty() => Self::from_file(Path::new(&path)),
            _ => match Self::from_file(Path::new(DEFAULT_CONFIG_PATH)) {
                Err(ConfigError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    Ok(Self::default())
                }
                other => other,
            },
        }
    }

    /// Reads and validates one config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = crate::small_file::read(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            env: CONFIG_ENV,
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Parse { path: path.into(), message };
        let raw: RawConfig = toml::from_str(text).map_err(|e| invalid(one_line(&e)))?;
        let engine_dirs = match raw.engine_dirs {
            None => Self::default().engine_dirs,
            Some(dirs) if dirs.is_empty() => {
                return Err(invalid("engine_dirs is empty: list at least one directory".into()));
            }
            Some(dirs) => dirs,
        };
        if let Some(dir) = engine_dirs.iter().find(|d| !d.is_absolute()) {
            return Err(invalid(format!(
                "engine_dirs entry {:?} is not an absolute path; plugins load only from absolute directories",
                dir
            )));
        }
        Ok(Self {
            source: Some(path.into()),
            engine_dirs,
            default_engine: raw.default_engine,
            engines: raw.engines,
            precompile_cache: raw.precompile_cache.unwrap_or(true),
        })
    }

    /// The default settings for `engine` from `[engines.<engine>]`.
    pub fn engine_settings(&self, engine: &EngineName) -> toml::Table {
        self.engines.get(engine).cloned().unwrap_or_default()
    }
}

/// toml's messages span several lines with a source excerpt; keep the gist on one line.
fn one_line(e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => format!("{} (at byte {})", e.message(), span.start),
        None => e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ShimConfig, String> {
        ShimConfig::parse(text, Path::new("/etc/x.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.engine_dirs, ShimConfig::default().engine_dirs);
        assert_eq!(config.default_engine, None);
        assert!(config.precompile_cache);
    }

    #[test]
    fn full_file() {
        let config = parse(
            "engine_dirs = ['/opt/engines']\ndefault_engine = 'wamr'\nprecompile_cache = false\n\
             [engines.wasmtime]\nopt_level = 'none'\n",
        )
        .unwrap();
        assert_eq!(config.engine_dirs, [PathBuf::from("/opt/engines")]);
        assert_eq!(config.default_engine.as_ref().unwrap().as_str(), "wamr");
        let wasmtime = "wasmtime".parse().unwrap();
        assert_eq!(config.engine_settings(&wasmtime)["opt_level"].as_str(), Some("none"));
        assert!(config.engine_settings(&"wamr".parse().unwrap()).is_empty());
        assert!(!config.precompile_cache);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let cases = [
            ("engine_dir = ['/x']", "unknown field `engine_dir`"),
            ("engine_dirs = []", "engine_dirs is empty"),
            ("engine_dirs = ['engines']", "not an absolute path"),
            ("default_engine = '../evil'", "invalid engine name"),
            ("[engines.'Bad/Name']", "invalid engine name"),
            ("engine_dirs = [", "/etc/x.toml"),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.starts_with("invalid shim config file /etc/x.toml"), "{err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = ShimConfig::from_file(Path::new("/nonexistent/config.toml")).unwrap_err().to_string();
        assert!(err.contains("cannot read the shim config file /nonexistent/config.toml"), "{err}");
        assert!(err.contains(CONFIG_ENV), "{err}");
    }
}
