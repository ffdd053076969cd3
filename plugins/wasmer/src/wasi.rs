//! Running a WASI module: plain preview 1 ones with the shared implementation
//! (`preview1.rs`), WASIX and threaded ones with `wasmer-wasix`, given the request's args,
//! env, preopened host directories and standard streams; `proc_exit` as the exit status.

use std::sync::Arc;

use shim_wasm_abi::plugin::{PluginError, RunRequest, one_line};
use virtual_fs::host_fs;
use wasmer::ExternType;
use wasmer::{Module, RuntimeError, Store, Type};
use wasmer_wasix::runtime::PluggableRuntime;
use wasmer_wasix::runtime::task_manager::tokio::TokioTaskManager;
use wasmer_wasix::{WasiEnv, WasiError, WasiRuntimeError, WasiThreadError};

use crate::preview1;
use crate::stdio::HostStream;
use crate::wasix_compat::{PreviewOneFixes, name_preopens};

/// A reactor's initialisation function (the WASI application ABI).
const INITIALIZE: &str = "_initialize";

/// The import modules whose functions wasmer-wasix provides.
const WASI_NAMESPACES: [&str; 4] = ["wasi_snapshot_preview1", "wasi_unstable", "wasix_32v1", "wasix_64v1"];

pub fn run(engine: &wasmer::Engine, module: &Module, request: &RunRequest<'_>) -> Result<i32, PluginError> {
    // wasmer-wasix reports an import it lacks as "Memory access error: Failed to create the
    // instance", and refuses a module without a memory even when it uses no WASI function;
    // wasmtime names the import, and runs the module.
    // Threaded programs (wasm32-wasip1-threads) also import `wasi::thread-spawn` and a
    // memory, `env::memory`, which wasmer-wasix makes itself.
    let unknown = |i: &wasmer::ImportType| match i.ty() {
        ExternType::Memory(_) => (i.module(), i.name()) != ("env", "memory"),
        _ => !WASI_NAMESPACES.contains(&i.module()) && (i.module(), i.name()) != ("wasi", "thread-spawn"),
    };
    if let Some(import) = module.imports().find(unknown) {
        return Err(PluginError::unknown_import(import.module(), import.name()));
    }
    if module.imports().next().is_none() {
        let mut store = Store::new(engine.clone());
        let instance = wasmer::Instance::new(&mut store, module, &wasmer::imports! {})
            .map_err(|e| PluginError::invalid_module(format!("cannot instantiate the module: {e}")))?;
        return call_entry(&mut store, &instance, request, Initialize::Here)?.or_else(exit_or_trap);
    }
    // Plain WASI programs get wasi-common's preview 1; WASIX and threaded ones, wasmer-wasix.
    if preview1::serves(module) {
        let mut store = Store::new(engine.clone());
        let instance = preview1::instantiate(&mut store, module, request)?;
        return call_entry(&mut store, &instance, request, Initialize::Here)?.or_else(exit_or_trap);
    }
    // wasmer-wasix does its I/O through tokio; the program itself runs on this thread.
    let tokio =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().map_err(|e| {
            PluginError::internal(format!("cannot start the tokio runtime wasmer-wasix needs: {e}"))
        })?;
    let _entered = tokio.enter();

    // Files come from the host file system (the container's root once the shim has
    // confined the process); the program sees only the preopened directories.
    let host = host_fs::FileSystem::new(tokio.handle().clone(), "/")
        .map_err(|e| PluginError::io(format!("cannot open the host file system: {e}")))?;
    let (program, args) = request.args.split_first().map_or(("", &[][..]), |(p, a)| (*p, a));
    // The runtime wasmer-wasix would make itself, plus the plugin's corrections.
    let mut runtime = PluggableRuntime::new(Arc::new(TokioTaskManager::default()));
    runtime.set_engine(engine.clone()).with_instantiation_hook(PreviewOneFixes);
    let mut builder = WasiEnv::builder(program)
        .args(args)
        .envs(request.env.iter().copied())
        .runtime(Arc::new(runtime))
        .fs(Arc::new(host) as Arc<dyn virtual_fs::FileSystem + Send + Sync>)
        .stdin(HostStream::new(request.stdin, 0, "stdin")?)
        .stdout(HostStream::new(request.stdout, 1, "stdout")?)
        .stderr(HostStream::new(request.stderr, 2, "stderr")?);
    for dir in &request.preopens {
        builder = builder
            .preopen_build(|p| {
                p.directory(dir.host_path).alias(dir.guest_path).read(true).write(true).create(true)
            })
            .map_err(|e| {
                PluginError::io(format!("cannot preopen {} as {}: {e}", dir.host_path, dir.guest_path))
            })?;
    }
    let guest_paths: Vec<String> = request.preopens.iter().map(|dir| dir.guest_path.to_owned()).collect();
    builder = builder.setup_fs(Box::new(move |_, fs| name_preopens(fs, &guest_paths)));

    let mut store = Store::new(engine.clone());
    let (instance, wasi_env) = match builder.instantiate(module.clone(), &mut store) {
        Ok(instantiated) => instantiated,
        // wasmer-wasix runs a reactor's `_initialize` as it instantiates: its exit or trap
        // is the program's.
        Err(WasiRuntimeError::Thread(WasiThreadError::InitFailed(error))) => {
            return match error.downcast_ref::<RuntimeError>() {
                Some(error) => exit_or_trap(error.clone()),
                None => Err(PluginError::trap(one_line(&format!("{error:#}")))),
            };
        }
        Err(e) => return Err(PluginError::invalid_module(format!("cannot instantiate the module: {e}"))),
    };

    // wasmer-wasix ran a reactor's `_initialize` when it instantiated the module.
    let status = call_entry(&mut store, &instance, request, Initialize::Done)?.or_else(exit_or_trap);
    // Closes the program's files and flushes its streams.
    let exit_code = status.as_ref().ok().map(|code| (*code).into());
    wasi_env.on_exit(&mut store, exit_code);
    status
}

/// Whether a reactor's `_initialize` is still to run before the entry function, or has
/// run (then `--entry _initialize` does not run it again).
#[derive(PartialEq)]
enum Initialize {
    Here,
    Done,
}

/// Calls the entry function: its i32 result (or 0) is the exit status. A reactor's
/// `_initialize` (its constructors) runs first, as Wasmer's CLI runs it.
fn call_entry(
    store: &mut Store,
    instance: &wasmer::Instance,
    request: &RunRequest<'_>,
    initialize: Initialize,
) -> Result<Result<i32, RuntimeError>, PluginError> {
    let name = request.entry.unwrap_or("_start");
    let func = instance
        .exports
        .get_function(name)
        .map_err(|_| PluginError::invalid_argument(format!("the module exports no function `{name}`")))?;
    let ty = func.ty(store);
    if !ty.params().is_empty() || !matches!(ty.results(), [] | [Type::I32]) {
        return Err(PluginError::invalid_argument(format!(
            "entry function `{name}` must take no parameters and return nothing or an i32"
        )));
    }
    if initialize == Initialize::Done && name == INITIALIZE {
        return Ok(Ok(0));
    }
    if initialize == Initialize::Here
        && name != INITIALIZE
        && let Ok(initialize) = instance.exports.get_typed_function::<(), ()>(store, INITIALIZE)
        && let Err(error) = initialize.call(store)
    {
        return Ok(Err(error));
    }
    Ok(func.call(store, &[]).map(|values| values.first().and_then(wasmer::Value::i32).unwrap_or(0)))
}

/// `proc_exit` unwinds as a `WasiError::Exit` (wasmer-wasix) or the shared
/// implementation's exit (`preview1::exit_status`); anything else is a trap.
fn exit_or_trap(error: RuntimeError) -> Result<i32, PluginError> {
    if let Some(status) = preview1::exit_status(&error) {
        return Ok(status);
    }
    match error.downcast_ref::<WasiError>() {
        Some(WasiError::Exit(code)) => Ok(code.raw()),
        _ => Err(PluginError::trap(one_line(&error.to_string()))),
    }
}
