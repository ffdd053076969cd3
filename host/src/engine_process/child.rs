//! The child side of an engine process: load exactly one plugin and do one thing with
//! it: describe it (`__engine-probe`), or run, serve ([`http_serve`]) or precompile one
//! module (`__engine`).

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, FromRawFd};
use std::path::Path;

use shim_wasm_abi::host::{CallError, EngineInstance, LoadedPlugin, RunSpec};
use shim_wasm_abi::{Capabilities, ModuleKind};
use shimcfg::ShimConfig;

use super::{EngineRequest, LOADED_FD, Operation, REQUEST_FD};
use crate::exit::{CANNOT_RUN, Failure, Outcome, SHIM_FAILURE};
use crate::http_serve;
use crate::plugins::{PluginInfo, load::load_trusted};

/// What `__engine-probe` prints on stdout: one JSON object.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeReport {
    Loaded(PluginInfo),
    Refused(String),
}

/// Loads one plugin and prints what it reports, or why it was refused.
pub fn probe(plugin: &Path) -> Outcome {
    let report = match ShimConfig::load() {
        Err(e) => ProbeReport::Refused(e.to_string()),
        Ok(config) => match load_trusted(&config, plugin) {
            Ok(loaded) => ProbeReport::Loaded(PluginInfo::from(loaded.descriptor())),
            Err(reason) => ProbeReport::Refused(reason),
        },
    };
    let ok = matches!(report, ProbeReport::Loaded(_));
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &report)?;
    writeln!(stdout)?;
    Ok(if ok { 0 } else { 1 })
}

/// Runs or precompiles one module; the request comes on [`REQUEST_FD`].
pub fn run() -> Outcome {
    // SAFETY: F_GETFD only asks whether the descriptor is open.
    if unsafe { libc::fcntl(REQUEST_FD, libc::F_GETFD) } < 0 {
        return Err(Failure::new(SHIM_FAILURE, "__engine is internal: its request comes on descriptor 3"));
    }
    // SAFETY: the descriptor the parent put the request on; owned (and closed) here.
    let request_file = unsafe { fs::File::from_raw_fd(REQUEST_FD) };
    let loaded = claim_loaded_fd();
    let request: EngineRequest = serde_json::from_reader(std::io::BufReader::new(request_file))
        .map_err(|e| Failure::new(SHIM_FAILURE, format!("malformed engine request: {e}")))?;
    let config = ShimConfig::load()?;
    let plugin = load_trusted(&config, &request.plugin).map_err(|e| Failure::new(SHIM_FAILURE, e))?;
    let engine = plugin.new_engine(&request.settings).map_err(|e| {
        // Bad settings are the operator's to fix, not the module's.
        Failure::new(SHIM_FAILURE, e.to_string())
    })?;
    announce_loaded(loaded);
    let module = fs::read(&request.module).map_err(|e| {
        Failure::new(CANNOT_RUN, format!("cannot read module {}: {e}", request.module.display()))
    })?;
    let kind = engine.detect(&module).map_err(call_failure)?;
    check_capability(&plugin, kind, &request.module)?;
    match &request.op {
        Operation::Run { entry, args, env, preopens } => {
            let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
            let spec = RunSpec {
                module: &module,
                entry: entry.as_deref(),
                args,
                env,
                preopens,
                // `run` gives no working directory, as `wasmtime run` gives none: the
                // program's paths start at `/`.
                cwd: "",
                stdin: stdin.as_fd(),
                stdout: stdout.as_fd(),
                stderr: stderr.as_fd(),
            };
            let code = match http_serve::listen_address(&module, env, &plugin)
                .map_err(|e| Failure::new(CANNOT_RUN, e))?
            {
                Some(listen) => {
                    let stop = http_serve::stop_on_termination_signals().map_err(|e| {
                        Failure::new(
                            SHIM_FAILURE,
                            format!("cannot prepare the HTTP server's stop signal: {e}"),
                        )
                    })?;
                    engine.serve(&spec, &listen, stop.as_fd())
                }
                None => engine.run(&spec),
            }
            .map_err(call_failure)?;
            Ok((code & 0xff) as u8)
        }
        Operation::Compile { output } => compile(&engine, &module, output),
    }
}

/// The pipe the parent waits on (see [`LOADED_FD`]), taken before the plugin is loaded:
/// close-on-exec, so that nothing the plugin starts keeps it open, and never a descriptor
/// the plugin opened itself.
fn claim_loaded_fd() -> Option<fs::File> {
    // SAFETY: fcntl on a descriptor number: asks whether it is open, then sets
    // close-on-exec on it.
    if unsafe { libc::fcntl(LOADED_FD, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return None;
    }
    // SAFETY: the pipe the parent put at LOADED_FD; owned (and closed) here.
    Some(unsafe { fs::File::from_raw_fd(LOADED_FD) })
}

/// Tells the parent the plugin loaded and closes the pipe, so the program never holds it.
fn announce_loaded(loaded: Option<fs::File>) {
    if let Some(mut pipe) = loaded {
        let _ = pipe.write_all(b"1");
    }
}

fn compile(engine: &EngineInstance<'_>, module: &[u8], output: &Path) -> Outcome {
    let artifact = engine.precompile(module).map_err(call_failure)?;
    fs::write(output, artifact)
        .map_err(|e| Failure::new(SHIM_FAILURE, format!("cannot write {}: {e}", output.display())))?;
    Ok(0)
}

/// Refuses what the engine cannot run, naming the engine and the missing capability.
pub fn check_capability(plugin: &LoadedPlugin, kind: ModuleKind, module: &Path) -> Result<(), Failure> {
    let engine = &plugin.descriptor().engine_name;
    let caps = plugin.descriptor().capabilities;
    let needed = match kind {
        ModuleKind::Unknown => {
            return Err(Failure::new(
                CANNOT_RUN,
                format!(
                    "{} is not a WebAssembly module, component or text file that the {engine} engine can run",
                    module.display()
                ),
            ));
        }
        ModuleKind::CoreModule => (Capabilities::WASI_P1, "WASI preview 1 modules"),
        ModuleKind::Component => (Capabilities::COMPONENTS, "components (WASI 0.2)"),
        ModuleKind::Text => (Capabilities::TEXT_FORMAT, "the WebAssembly text format"),
        ModuleKind::Artifact => (Capabilities::PRECOMPILE, "precompiled artifacts"),
    };
    if caps.contains(needed.0) {
        Ok(())
    } else {
        Err(Failure::new(
            CANNOT_RUN,
            format!(
                "the {engine} engine does not support {}, and {} is one; choose an engine that does \
                 (see `containerd-shim-wasm-v1 engines`)",
                needed.1,
                module.display()
            ),
        ))
    }
}

fn call_failure(e: CallError) -> Failure {
    Failure::from_plugin(e.status, e.to_string())
}
