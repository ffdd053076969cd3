//! Loading a plugin inside an engine process: the trust checks once more (the file may
//! have changed since discovery), the file must sit in a configured engine directory,
//! and the engine name the plugin reports must match its file name.

use std::path::Path;

use shim_wasm_abi::host::LoadedPlugin;
use shimcfg::ShimConfig;

use super::trust;

/// Loads the plugin at `file` into this process (once per process).
pub fn load_trusted(config: &ShimConfig, file: &Path) -> Result<LoadedPlugin, String> {
    let dir = file.parent().unwrap_or(Path::new("/"));
    if !config.engine_dirs.iter().any(|d| d == dir) {
        return Err(format!(
            "refusing engine plugin {}: it is not in a configured engine directory ({})",
            file.display(),
            config.engine_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    let refuse = |e: trust::TrustError| format!("refusing engine plugin {}: {e}", file.display());
    trust::check_dir(dir).map_err(refuse)?;
    trust::check_file(file).map_err(refuse)?;
    // SAFETY: the file and its directory passed the trust checks just above.
    let plugin = unsafe { LoadedPlugin::load(file) }.map_err(|e| e.to_string())?;
    let expected = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let reported = &plugin.descriptor().engine_name;
    if reported != expected {
        return Err(format!(
            "engine plugin {} reports engine name {reported:?}, not {expected:?} as its file name says; \
             rename the file to {reported}.so or fix the plugin",
            file.display()
        ));
    }
    Ok(plugin)
}
