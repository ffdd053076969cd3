//! `run`: one module through one engine plugin, in an engine process, without containerd.

use std::path::{Path, PathBuf};

use shimcfg::ShimConfig;

use super::choose_engine;
use crate::cli::RunArgs;
use crate::engine_process::{EngineRequest, Operation, spawn};
use crate::exit::{CANNOT_RUN, Failure, Outcome, SHIM_FAILURE};

pub fn run(args: RunArgs) -> Outcome {
    let module_path = args.module();
    // Every argument from MODULE on is the program's, so a misspelt option lands here.
    if module_path.to_string_lossy().starts_with('-') && !module_path.exists() {
        return Err(Failure::new(
            SHIM_FAILURE,
            format!(
                "unknown option {}: run's options come before MODULE (see `run --help`)",
                module_path.display()
            ),
        ));
    }
    let config = ShimConfig::load()?;
    let engine = choose_engine(&args.engine, &config)?;
    let module = existing_file(&module_path)?;
    let preopens = args.dirs.iter().map(|d| preopen(d)).collect::<Result<Vec<_>, _>>()?;
    if let Some(bad) = args.env.iter().find(|e| !e.contains('=') || e.starts_with('=')) {
        return Err(Failure::new(SHIM_FAILURE, format!("--env {bad:?} is not KEY=VALUE")));
    }
    let program =
        module_path.file_name().map_or_else(|| "module".into(), |n| n.to_string_lossy().into_owned());
    let request = EngineRequest {
        plugin: engine.plugin,
        settings: engine.settings,
        module,
        op: Operation::Run {
            args: std::iter::once(program).chain(args.args().iter().cloned()).collect(),
            entry: args.entry,
            env: args.env,
            preopens,
        },
    };
    spawn::run(engine.name.as_str(), &request)
}

/// The module as an absolute path, or a clear error if it is not a readable file.
pub fn existing_file(path: &Path) -> Result<PathBuf, Failure> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(std::path::absolute(path)?),
        Ok(_) => Err(Failure::new(CANNOT_RUN, format!("{} is not a file", path.display()))),
        Err(e) => Err(Failure::new(CANNOT_RUN, format!("cannot open module {}: {e}", path.display()))),
    }
}

/// `HOST[:GUEST]` → (absolute host dir, guest path).
fn preopen(spec: &str) -> Result<(String, String), Failure> {
    let (host, guest) = spec.split_once(':').unwrap_or((spec, spec));
    let host_dir = Path::new(host);
    if !host_dir.is_dir() {
        return Err(Failure::new(SHIM_FAILURE, format!("--dir {spec:?}: {host} is not a directory")));
    }
    let host_dir = std::path::absolute(host_dir)?;
    let host_dir = host_dir
        .to_str()
        .ok_or_else(|| Failure::new(SHIM_FAILURE, format!("--dir {spec:?}: the path is not valid UTF-8")))?;
    Ok((host_dir.to_string(), guest.to_string()))
}
