//! Which engine a create asks for: the runtime options (from the request, or saved by
//! `start`), then the name the shim was invoked as, then the config file's default
//! (`shimcfg::select_engine`), and where its plugin is. Decided in the server, before the
//! entrypoint is known: a native container ignores the answer, errors included.

use std::path::{Path, PathBuf};

use containerd_shim::api::CreateTaskRequest;
use shimcfg::{RuntimeOptions, ShimConfig, select_engine};

use super::options::{RawRuntimeOptions, SAVED_OPTIONS_FILE};
use crate::container::create::EngineChoice;
use crate::plugins::discovery;

/// What the runtime options and the config file decide for a create.
pub struct Chosen {
    /// The engine and its plugin file, or why there is none (one line).
    pub engine: Result<(EngineChoice, PathBuf), String>,
    /// runc's `SystemdCgroup` from the options, when given.
    pub systemd_cgroup: Option<bool>,
}

pub fn choose(req: &CreateTaskRequest, bundle: &Path, argv0: &str) -> Chosen {
    let options = runtime_options(req, bundle).and_then(|raw| raw.parse()).map_err(|e| e.to_string());
    let systemd_cgroup = options.as_ref().ok().and_then(|o| o.systemd_cgroup);
    if let Ok(options) = &options {
        for (key, why) in &options.ignored {
            tracing::info!(id = %req.id, "runtime option {key} ignored: {why}");
        }
    }
    Chosen { engine: options.and_then(|options| engine(req, argv0, &options)), systemd_cgroup }
}

fn engine(
    req: &CreateTaskRequest,
    argv0: &str,
    options: &RuntimeOptions,
) -> Result<(EngineChoice, PathBuf), String> {
    let config = ShimConfig::load().map_err(|e| e.to_string())?;
    let selection = select_engine(options, argv0, &config).map_err(|e| e.to_string())?;
    let plugin = discovery::find(&config, &selection.engine).map_err(|e| e.to_string())?;
    let settings = toml::to_string(&selection.settings).map_err(|e| e.to_string())?;
    tracing::debug!(id = %req.id, engine = %selection.engine, source = ?selection.source, "engine chosen");
    let choice = EngineChoice {
        name: selection.engine.to_string(),
        settings,
        precompile_cache: config.precompile_cache,
    };
    Ok((choice, plugin))
}

/// The request's options, or else those `start` saved from its stdin.
fn runtime_options(
    req: &CreateTaskRequest,
    bundle: &Path,
) -> Result<RawRuntimeOptions, super::options::OptionsError> {
    let mut raw = match req.options.as_ref() {
        Some(any) => RawRuntimeOptions::from_any(any)?,
        None => RawRuntimeOptions::default(),
    };
    if raw.is_empty()
        && let Ok(saved) = std::fs::read(bundle.join(SAVED_OPTIONS_FILE))
    {
        raw = RawRuntimeOptions::decode(&saved)?;
    }
    Ok(raw)
}
