//! `compile`: precompile a module for an engine, in an engine process.

use std::path::Path;

use shimcfg::ShimConfig;

use super::choose_engine;
use super::run::existing_file;
use crate::cli::EngineArgs;
use crate::engine_process::{EngineRequest, Operation, spawn};
use crate::exit::Outcome;

pub fn compile(args: EngineArgs, module: &Path, output: &Path) -> Outcome {
    let config = ShimConfig::load()?;
    let engine = choose_engine(&args, &config)?;
    let request = EngineRequest {
        plugin: engine.plugin,
        settings: engine.settings,
        module: existing_file(module)?,
        op: Operation::Compile { output: std::path::absolute(output)? },
    };
    spawn::run(engine.name.as_str(), &request)
}
