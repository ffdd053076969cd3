//! Where plugins are: `<engine>.so` files in the configured engine directories, in
//! order. Discovery reads directory listings and file metadata only; it never loads a
//! plugin.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use shimcfg::{EngineName, ShimConfig};

use super::trust;

/// A `.so` file found in an engine directory, and whether it may be used.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub file: PathBuf,
    /// The engine name from the file name, if the file name is a valid one.
    pub name: Option<EngineName>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Trusted; the plugin itself has not been loaded yet.
    Trusted,
    /// Never loaded, for this reason.
    Refused(String),
    /// The same engine name is provided by an earlier directory.
    Shadowed(PathBuf),
}

/// The state of one engine directory.
#[derive(Debug, Clone)]
pub struct DirState {
    pub dir: PathBuf,
    /// `None` when the directory is usable; otherwise why it is skipped.
    pub problem: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(
        "engine {engine:?} is not installed: no {file} in {dirs} (plugins present: {installed}); \
         install the engine's plugin there, or choose another engine"
    )]
    NotInstalled { engine: String, file: String, dirs: String, installed: String },

    #[error("engine {engine:?}: refusing plugin {file}: {reason}")]
    Refused { engine: String, file: String, reason: String },
}

/// Every engine directory and `.so` file, with verdicts.
pub fn scan(config: &ShimConfig) -> (Vec<DirState>, Vec<Candidate>) {
    let mut dirs = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for dir in &config.engine_dirs {
        let problem = dir_problem(dir);
        let usable = problem.is_none();
        dirs.push(DirState { dir: dir.clone(), problem });
        if !usable {
            continue;
        }
        for file in so_files(dir) {
            let name = file.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<EngineName>().ok());
            let earlier = candidates
                .iter()
                .find(|c| c.name.is_some() && c.name == name && c.verdict == Verdict::Trusted)
                .map(|c| c.file.clone());
            let verdict = match (&name, earlier) {
                (None, _) => Verdict::Refused("the file name is not <engine>.so with a plain engine name ([a-z0-9][a-z0-9_-]*); rename it".to_string()),
                (Some(_), Some(earlier)) => Verdict::Shadowed(earlier),
                (Some(_), None) => match trust::check_file(&file) {
                    Ok(()) => Verdict::Trusted,
                    Err(e) => Verdict::Refused(e.to_string()),
                },
            };
            candidates.push(Candidate { file, name, verdict });
        }
    }
    (dirs, candidates)
}

/// The trusted plugin file for `engine`: the first directory holding `<engine>.so`.
pub fn find(config: &ShimConfig, engine: &EngineName) -> Result<PathBuf, DiscoveryError> {
    let file_name = engine.plugin_file_name();
    for dir in &config.engine_dirs {
        let file = dir.join(&file_name);
        // Not following a link: a link there is refused below, not passed over.
        if fs::symlink_metadata(&file).is_err() {
            continue;
        }
        let refused = |reason: String| DiscoveryError::Refused {
            engine: engine.to_string(),
            file: file.display().to_string(),
            reason,
        };
        trust::check_dir(dir).map_err(|e| refused(format!("its directory is not trusted: {e}")))?;
        trust::check_file(&file).map_err(|e| refused(e.to_string()))?;
        return Ok(file);
    }
    Err(DiscoveryError::NotInstalled {
        engine: engine.to_string(),
        file: file_name,
        dirs: config.engine_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
        installed: installed_names(config),
    })
}

/// Names of the trusted plugin files (not yet loaded), for error messages ("none" when there are none).
pub fn installed_names(config: &ShimConfig) -> String {
    let names: BTreeSet<String> = scan(config)
        .1
        .into_iter()
        .filter(|c| c.verdict == Verdict::Trusted)
        .filter_map(|c| c.name.map(|n| n.to_string()))
        .collect();
    if names.is_empty() { "none".into() } else { names.into_iter().collect::<Vec<_>>().join(", ") }
}

fn dir_problem(dir: &Path) -> Option<String> {
    if !dir.exists() {
        return Some("does not exist".into());
    }
    trust::check_dir(dir).err().map(|e| format!("not trusted: {e}"))
}

fn so_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "so"))
        .collect();
    files.sort();
    files
}
