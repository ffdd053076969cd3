//! Describing a plugin without loading it here: an engine process loads it and reports
//! back; a crash while loading becomes a refusal reason.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use super::PluginInfo;
use crate::engine_process::child::ProbeReport;
use crate::engine_process::spawn;

/// The plugin's self-description, or why it cannot be used.
pub fn describe(plugin: &Path) -> Result<PluginInfo, String> {
    let output = spawn::probe(plugin).map_err(|e| match e.kind() {
        std::io::ErrorKind::TimedOut => format!(
            "the plugin did not finish loading in {} s (a constructor or entry function that blocks?); \
             remove or fix it",
            spawn::PROBE_BOUND.as_secs()
        ),
        _ => format!("cannot start an engine process: {e}"),
    })?;
    if let Some(signal) = output.status.signal() {
        return Err(format!(
            "the plugin crashed while loading (signal {} ({signal})); remove or rebuild it",
            spawn::signal_name(signal)
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    match serde_json::from_str::<ProbeReport>(stdout.trim()) {
        Ok(ProbeReport::Loaded(info)) => Ok(info),
        Ok(ProbeReport::Refused(reason)) => Err(reason),
        Err(_) => Err(format!(
            "the engine process gave no report (exit status {:?}): {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}
