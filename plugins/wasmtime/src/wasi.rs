//! Running programs with wasmtime-wasi: preview 1 core modules through the p1 linker, and
//! components through `wasi:cli/run`. Both get the request's args, env, preopened
//! directories and standard streams, and report `proc_exit`/`exit` as the exit status.

use std::fs::File;
use std::os::fd::BorrowedFd;
use std::sync::OnceLock;

use shim_wasm_abi::plugin::{PluginError, RunRequest, one_line};
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Linker, Module, Store, StoreLimits, StoreLimitsBuilder, ValType};
use wasmtime_wasi::cli::{InputFile, OutputFile};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::settings::Settings;

struct ModuleState {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

struct ComponentState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The tokio runtime wasmtime-wasi's synchronous calls (preview 1, and components'
/// `wasi:cli/run` without async) do their I/O on, entered for the program's run.
/// Without one entered, wasmtime-wasi makes a global runtime with a worker thread per CPU:
/// in every container, 64 threads on a 64-core node. One worker serves one program's I/O
/// (as the Wasmer plugin's). Kept for the process's life, as wasmtime-wasi keeps its own:
/// dropping it would wait for a blocking read the program left behind.
fn io_runtime() -> Result<&'static tokio::runtime::Runtime, PluginError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("cannot start the runtime for WASI's I/O: {e}"))
    });
    runtime.as_ref().map_err(|e| PluginError::internal(e.clone()))
}

pub fn run_module(
    engine: &wasmtime::Engine,
    settings: &Settings,
    module: &Module,
    request: &RunRequest<'_>,
) -> Result<i32, PluginError> {
    let _io = io_runtime()?.enter();
    let state = ModuleState { wasi: wasi_builder(request)?.build_p1(), limits: limits(settings) };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut ModuleState| &mut s.wasi)
        .map_err(|e| PluginError::internal(format!("{e:#}")))?;
    // wasmtime-wasi refuses a status of 126 or more ("exit with invalid exit status outside
    // of [0..126)"), a trap; a container exits with the status its program gives, as on the
    // other engines and natively.
    linker.allow_shadowing(true);
    linker
        .func_wrap("wasi_snapshot_preview1", "proc_exit", |status: i32| -> wasmtime::Result<()> {
            Err(I32Exit(status).into())
        })
        .map_err(|e| PluginError::internal(format!("{e:#}")))?;
    let instance = linker
        .instantiate(&mut store, module)
        .map_err(|e| PluginError::invalid_module(format!("cannot instantiate the module: {e:#}")))?;
    let name = request.entry.unwrap_or("_start");
    let func = instance
        .get_func(&mut store, name)
        .ok_or_else(|| PluginError::invalid_argument(format!("the module exports no function `{name}`")))?;
    let ty = func.ty(&store);
    let returns_code = match (ty.params().len(), ty.results().collect::<Vec<_>>().as_slice()) {
        (0, []) => false,
        (0, [ValType::I32]) => true,
        _ => {
            return Err(PluginError::invalid_argument(format!(
                "entry function `{name}` must take no parameters and return nothing or an i32"
            )));
        }
    };
    // A reactor's constructors run first, as wasmtime's CLI runs them.
    if name != "_initialize"
        && let Ok(initialize) = instance.get_typed_func::<(), ()>(&mut store, "_initialize")
        && let Err(e) = initialize.call(&mut store, ())
    {
        return exit_or_trap(e);
    }
    let mut results = vec![wasmtime::Val::I32(0); usize::from(returns_code)];
    match func.call(&mut store, &[], &mut results) {
        Ok(()) => Ok(results.first().and_then(wasmtime::Val::i32).unwrap_or(0)),
        Err(e) => exit_or_trap(e),
    }
}

pub fn run_component(
    engine: &wasmtime::Engine,
    settings: &Settings,
    component: &Component,
    request: &RunRequest<'_>,
) -> Result<i32, PluginError> {
    if let Some(entry) = request.entry {
        return Err(PluginError::invalid_argument(format!(
            "components run `wasi:cli/run`; an entry function (`{entry}`) applies to core modules only"
        )));
    }
    let mut builder = wasi_builder(request)?;
    // Components have a working directory (`wasi:cli/environment.initial-cwd`); preview 1
    // has none.
    if let Some(cwd) = request.cwd {
        builder.initial_cwd(cwd);
    }
    let state =
        ComponentState { wasi: builder.build(), table: ResourceTable::new(), limits: limits(settings) };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    if exports_p3_run(engine, component) {
        return run_p3_command(store, component);
    }
    let _io = io_runtime()?.enter();
    let mut linker = wasmtime::component::Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| PluginError::internal(format!("{e:#}")))?;
    let command = Command::instantiate(&mut store, component, &linker).map_err(|e| {
        PluginError::invalid_module(format!("cannot instantiate the component as a wasi:cli command: {e:#}"))
    })?;
    match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(e) => exit_or_trap(e),
    }
}

/// Whether the component is a WASI 0.3 command (exports `wasi:cli/run@0.3…`).
fn exports_p3_run(engine: &wasmtime::Engine, component: &Component) -> bool {
    component.component_type().exports(engine).any(|(name, _)| name.starts_with("wasi:cli/run@0.3"))
}

/// A WASI 0.3 command (component-model async; wasmtime's p3 support is experimental), as
/// wasmtime's CLI runs one: instantiated with WASI 0.2 and 0.3 linked, `run` called
/// concurrently, on a current-thread runtime of this call.
fn run_p3_command(mut store: Store<ComponentState>, component: &Component) -> Result<i32, PluginError> {
    let internal = |e: wasmtime::Error| PluginError::internal(format!("{e:#}"));
    let mut linker = wasmtime::component::Linker::new(store.engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(internal)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(internal)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PluginError::internal(format!("cannot start a runtime for WASI 0.3: {e}")))?;
    runtime.block_on(async {
        let instance = linker.instantiate_async(&mut store, component).await.map_err(|e| {
            PluginError::invalid_module(format!(
                "cannot instantiate the component as a WASI 0.3 command: {e:#}"
            ))
        })?;
        let command = wasmtime_wasi::p3::bindings::Command::new(&mut store, &instance).map_err(|e| {
            PluginError::invalid_module(format!(
                "cannot instantiate the component as a WASI 0.3 command: {e:#}"
            ))
        })?;
        let ran = store.run_concurrent(async |store| command.wasi_cli_run().call_run(store).await).await;
        match ran.and_then(|result| result) {
            Ok(Ok(())) => Ok(0),
            Ok(Err(())) => Ok(1),
            Err(e) => exit_or_trap(e),
        }
    })
}

/// `proc_exit` and `wasi:cli/exit` unwind as an `I32Exit` error; anything else is a trap.
fn exit_or_trap(error: wasmtime::Error) -> Result<i32, PluginError> {
    match error.downcast_ref::<I32Exit>() {
        Some(exit) => Ok(exit.0),
        None => Err(PluginError::trap(one_line(&format!("{error:#}")))),
    }
}

fn wasi_builder(request: &RunRequest<'_>) -> Result<WasiCtxBuilder, PluginError> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .args(&request.args)
        .envs(&request.env)
        .allow_blocking_current_thread(true)
        .stdin(InputFile::new(owned(request.stdin, "stdin")?))
        .stdout(OutputFile::new(owned(request.stdout, "stdout")?))
        .stderr(OutputFile::new(owned(request.stderr, "stderr")?));
    for dir in &request.preopens {
        builder.preopened_dir(dir.host_path, dir.guest_path, FsPerms::ReadWrite).map_err(|e| {
            PluginError::io(format!("cannot preopen {} as {}: {e:#}", dir.host_path, dir.guest_path))
        })?;
    }
    Ok(builder)
}

pub(crate) fn limits(settings: &Settings) -> StoreLimits {
    let mut limits = StoreLimitsBuilder::new();
    if let Some(cap) = settings.memory_cap() {
        limits = limits.memory_size(usize::try_from(cap.bytes()).unwrap_or(usize::MAX));
    }
    limits.build()
}

/// The host keeps its descriptors; the engine gets its own copies.
pub(crate) fn owned(fd: BorrowedFd<'_>, what: &str) -> Result<File, PluginError> {
    fd.try_clone_to_owned()
        .map(File::from)
        .map_err(|e| PluginError::io(format!("cannot duplicate the {what} descriptor: {e}")))
}
