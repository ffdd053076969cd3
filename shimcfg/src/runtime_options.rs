//! containerd's runtime options for the shim, and engine selection.
//!
//! containerd hands the shim a `runtimeoptions.v1.Options`: `ConfigBody` (the CRI
//! `options` table as TOML, containerd 1.7 and later) and `ConfigPath` (a TOML file; the
//! only field containerd 1.6 keeps, and what `ctr run --runtime-config-path` sends).
//! Both hold the same table:
//!
//! ```toml
//! engine = "wasmtime"          # which plugin runs wasm containers
//! [settings]                   # handed to the plugin, over the config file's [engines.NAME]
//! opt_level = "speed"
//! ```
//!
//! The engine is chosen, most specific first, from: these options, the name the shim was
//! invoked as (`containerd-shim-<engine>-v1`), the config file's `default_engine`.
//!
//! Operators copy runc's options into a runtime's table (`SystemdCgroup = true`, from
//! containerd's docs for runc). They are accepted, never refused: `SystemdCgroup` picks the
//! cgroup driver; every other runc key is ignored, with the reason ([`RUNC_KEYS`]).

use std::path::Path;

use serde::Deserialize;

use crate::{ConfigError, EngineName, ShimConfig};

/// The runtime options table, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeOptions {
    pub engine: Option<EngineName>,
    pub settings: toml::Table,
    /// runc's `SystemdCgroup`: the cgroup driver (systemd or cgroupfs), when given.
    pub systemd_cgroup: Option<bool>,
    /// runc keys given that this shim ignores, each with why.
    pub ignored: Vec<(&'static str, &'static str)>,
}

/// runc's runtime options (`containerd.runc.v1.Options`) other than `SystemdCgroup`, and
/// why each means nothing here.
pub const RUNC_KEYS: &[(&str, &str)] = &[
    ("BinaryName", "the shim runs containers with youki's libcontainer in-process, not a runtime binary"),
    ("Root", "container state lives under /run/containerd-shim-wasm, per containerd and namespace"),
    ("NoPivotRoot", "containers always get pivot_root"),
    ("NoNewKeyring", "libcontainer always gives a container its own session keyring"),
    ("ShimCgroup", "the shim stays in the cgroup containerd started it in"),
    ("IoUid", "the shim opens containerd's FIFOs as root"),
    ("IoGid", "the shim opens containerd's FIFOs as root"),
    ("CriuPath", "checkpoint and restore are not supported"),
    ("CriuImagePath", "checkpoint and restore are not supported"),
    ("CriuWorkPath", "checkpoint and restore are not supported"),
    ("TaskApiAddress", "containerd 2.x's sandbox task API address is for runc's own shim"),
    ("TaskApiVersion", "containerd 2.x's sandbox task API address is for runc's own shim"),
];

/// Unknown keys are refused by hand (`runc`): serde's `deny_unknown_fields` cannot be
/// combined with the map that collects runc's keys.
#[derive(Debug, Deserialize)]
struct RawOptions {
    engine: Option<EngineName>,
    #[serde(default)]
    settings: toml::Table,
    // CRI copies its own keys into ConfigBody; they carry nothing for the shim.
    #[serde(rename = "ConfigPath")]
    _config_path: Option<toml::Value>,
    #[serde(rename = "TypeUrl")]
    _type_url: Option<toml::Value>,
    #[serde(rename = "SystemdCgroup")]
    systemd_cgroup: Option<bool>,
    /// Every other key: runc's, or a mistake.
    #[serde(flatten)]
    runc: std::collections::BTreeMap<String, toml::Value>,
}

/// Where the chosen engine came from (for logs and errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineSource {
    RuntimeOptions,
    InvokedName,
    ConfigDefault,
}

/// The engine for a container and the settings its plugin gets.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSelection {
    pub engine: EngineName,
    pub source: EngineSource,
    pub settings: toml::Table,
}

impl RuntimeOptions {
    /// Parses one options table; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let error = |message: String| ConfigError::Options { origin: origin.to_string(), message };
        let raw: RawOptions = toml::from_str(text).map_err(|e| error(e.message().to_string()))?;
        let mut ignored = Vec::new();
        for key in raw.runc.keys() {
            match RUNC_KEYS.iter().find(|(name, _)| name == key) {
                Some(known) => ignored.push(*known),
                None => {
                    return Err(error(format!(
                        "unknown field `{key}`, expected `engine`, `settings`, or one of runc's options \
                         (`SystemdCgroup`, `BinaryName`, ...)"
                    )));
                }
            }
        }
        Ok(Self { engine: raw.engine, settings: raw.settings, systemd_cgroup: raw.systemd_cgroup, ignored })
    }

    /// The `ConfigPath` file as a base, overridden key by key by `ConfigBody`.
    pub fn from_sources(config_body: Option<&str>, config_path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut options = match config_path {
            Some(path) => {
                let text = crate::small_file::read(path).map_err(|e| ConfigError::Options {
                    origin: format!("ConfigPath {}", path.display()),
                    message: format!("cannot read it: {e}"),
                })?;
                Self::parse(&text, &format!("ConfigPath {}", path.display()))?
            }
            None => Self::default(),
        };
        if let Some(body) = config_body.filter(|b| !b.trim().is_empty()) {
            let body = Self::parse(body, "ConfigBody")?;
            options.engine = body.engine.or(options.engine);
            options.settings.extend(body.settings);
            options.systemd_cgroup = body.systemd_cgroup.or(options.systemd_cgroup);
            options.ignored.extend(body.ignored);
            options.ignored.sort();
            options.ignored.dedup();
        }
        Ok(options)
    }
}

/// `containerd-shim-<engine>-v1` names `<engine>`; the generic name names none.
pub fn engine_from_invoked_name(argv0: &str) -> Option<EngineName> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    let engine = name.strip_prefix("containerd-shim-")?.strip_suffix("-v1")?;
    if engine == "wasm" {
        return None;
    }
    engine.parse().ok()
}

/// Chooses the engine: runtime options, then the invoked name, then the config default.
/// Settings: the config file's `[engines.NAME]`, overridden by the options' `settings`.
pub fn select_engine(
    options: &RuntimeOptions,
    argv0: &str,
    config: &ShimConfig,
) -> Result<EngineSelection, ConfigError> {
    let (engine, source) = if let Some(engine) = &options.engine {
        (engine.clone(), EngineSource::RuntimeOptions)
    } else if let Some(engine) = engine_from_invoked_name(argv0) {
        (engine, EngineSource::InvokedName)
    } else if let Some(engine) = &config.default_engine {
        (engine.clone(), EngineSource::ConfigDefault)
    } else {
        return Err(ConfigError::NoEngine);
    };
    let mut settings = config.engine_settings(&engine);
    settings.extend(options.settings.clone());
    Ok(EngineSelection { engine, source, settings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_body_and_path() {
        let dir = std::env::temp_dir().join(format!("shimcfg-opts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("opts.toml");
        std::fs::write(&path, "engine = 'wamr'\n[settings]\na = 1\nb = 2\n").unwrap();

        let file_only = RuntimeOptions::from_sources(None, Some(&path)).unwrap();
        assert_eq!(file_only.engine.unwrap().as_str(), "wamr");

        // containerd 2.x writes single-quoted strings; CRI adds its own keys.
        let body = "ConfigPath = '/x'\nengine = 'wasmtime'\n[settings]\nb = 3\n";
        let both = RuntimeOptions::from_sources(Some(body), Some(&path)).unwrap();
        assert_eq!(both.engine.unwrap().as_str(), "wasmtime");
        assert_eq!(both.settings["a"].as_integer(), Some(1));
        assert_eq!(both.settings["b"].as_integer(), Some(3));
        assert_eq!(RuntimeOptions::from_sources(Some(""), None).unwrap(), RuntimeOptions::default());
    }

    #[test]
    fn bad_options_name_the_problem() {
        let cases = [
            ("engine = 'x'\nengin = 'y'", "unknown field `engin`"),
            ("engine = '../x'", "invalid engine name"),
            ("engine = ", "ConfigBody"),
        ];
        for (text, expected) in cases {
            let err = RuntimeOptions::parse(text, "ConfigBody").unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.starts_with("invalid runtime options (ConfigBody)"), "{err}");
        }
        let err = RuntimeOptions::from_sources(None, Some(Path::new("/nonexistent.toml"))).unwrap_err();
        assert!(err.to_string().contains("ConfigPath /nonexistent.toml"), "{err}");
    }

    #[test]
    fn runc_keys_are_used_or_ignored_never_refused() {
        let text =
            "SystemdCgroup = true\nBinaryName = '/usr/bin/runc'\nNoPivotRoot = false\nengine = 'wamr'\n";
        let options = RuntimeOptions::parse(text, "ConfigBody").unwrap();
        assert_eq!(options.systemd_cgroup, Some(true));
        assert_eq!(options.engine.unwrap().as_str(), "wamr");
        let ignored: Vec<&str> = options.ignored.iter().map(|(key, _)| *key).collect();
        assert_eq!(ignored, ["BinaryName", "NoPivotRoot"]);
        assert_eq!(RuntimeOptions::parse("", "x").unwrap().systemd_cgroup, None);
        let err = RuntimeOptions::parse("SystemdCgroup = 'yes'", "ConfigBody").unwrap_err().to_string();
        assert!(err.contains("SystemdCgroup") || err.contains("bool"), "{err}");
    }

    #[test]
    fn invoked_names() {
        let name = |s: &str| engine_from_invoked_name(s).map(|e| e.to_string());
        assert_eq!(name("/usr/bin/containerd-shim-wasmedge-v1").as_deref(), Some("wasmedge"));
        assert_eq!(name("containerd-shim-wasmtime-v1").as_deref(), Some("wasmtime"));
        assert_eq!(name("/usr/bin/containerd-shim-wasm-v1"), None);
        assert_eq!(name("containerd-shim-runc-v2"), None);
        assert_eq!(name("containerd-shim-Bad-v1"), None);
    }

    #[test]
    fn selection_order() {
        let mut config =
            ShimConfig::parse("default_engine = 'wamr'\n[engines.wasmtime]\nx = 1\ny = 1\n", Path::new("/c"))
                .unwrap();
        let none = RuntimeOptions::default();
        let pick = |o: &RuntimeOptions, argv0: &str, c: &ShimConfig| select_engine(o, argv0, c).unwrap();

        let s = pick(&none, "containerd-shim-wasm-v1", &config);
        assert_eq!((s.engine.as_str(), s.source), ("wamr", EngineSource::ConfigDefault));
        let s = pick(&none, "containerd-shim-wasmtime-v1", &config);
        assert_eq!((s.engine.as_str(), s.source), ("wasmtime", EngineSource::InvokedName));
        assert_eq!(s.settings["x"].as_integer(), Some(1));

        let options =
            RuntimeOptions::parse("engine = 'wasmtime'\n[settings]\ny = 2\n", "ConfigBody").unwrap();
        let s = pick(&options, "containerd-shim-wamr-v1", &config);
        assert_eq!((s.engine.as_str(), s.source), ("wasmtime", EngineSource::RuntimeOptions));
        assert_eq!((s.settings["x"].as_integer(), s.settings["y"].as_integer()), (Some(1), Some(2)));

        config.default_engine = None;
        let err = select_engine(&none, "containerd-shim-wasm-v1", &config).unwrap_err().to_string();
        assert!(err.contains("no engine chosen"), "{err}");
    }
}
