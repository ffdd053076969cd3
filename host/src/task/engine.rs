//! Which engine a create asks for: the runtime options (from the request, or saved by
//! `start`), then the name the shim was invoked as, then the config file's default
//! (`shimcfg::select_engine`), and where its plugin is. Decided in the server, before the
//! entrypoint is known: a native container ignores the answer, errors included.

use std::path::{Path, PathBuf};

use containerd_shim::api::CreateTaskRequest;
use shimcfg::{ShimConfig, select_engine};

use super::options::{RawRuntimeOptions, SAVED_OPTIONS_FILE};
use crate::container::create::EngineChoice;
use crate::plugins::discovery;

/// The engine and its plugin file, or why there is none (one line).
pub fn choose(
    req: &CreateTaskRequest,
    bundle: &Path,
    argv0: &str,
) -> Result<(EngineChoice, PathBuf), String> {
    let raw = runtime_options(req, bundle).map_err(|e| e.to_string())?;
    let config = ShimConfig::load().map_err(|e| e.to_string())?;
    let options = raw.parse().map_err(|e| e.to_string())?;
    let selection = select_engine(&options, argv0, &config).map_err(|e| e.to_string())?;
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
