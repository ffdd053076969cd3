//! Loading a plugin inside an engine process or a launcher: the file must sit in a
//! configured engine directory, the trust checks run once more on the open file and every
//! directory above it (the file may have changed since discovery), that very file is
//! loaded, and the engine name the plugin reports must match its file name.

use std::os::fd::AsFd;
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
    let opened = trust::open_trusted(file).map_err(refuse)?;
    // SAFETY: the open file, its directory and every one above passed the trust checks;
    // the descriptor is what gets mapped, not whatever the path names by now.
    let plugin = unsafe { LoadedPlugin::load_fd(file, opened.as_fd()) }.map_err(|e| e.to_string())?;
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
