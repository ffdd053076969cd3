//! WASI preview 1 for modules that import nothing else: the shared implementation
//! (`abi::plugin::wasi_preview1`, wasi-common), each import a Wasmer host function.
//!
//! Why not wasmer-wasix, which the plugin keeps for WASIX and threaded programs
//! (`crate::wasi`): its file system differs from WASI's in ways no wrapper can correct
//! from outside. An in-memory root of its own always holds fd 3; preopens can never be
//! closed or renumbered over; it caches directory entries, so following symlinks, `..` and
//! trailing slashes resolve against its cache, not the host's directory. It passed 51 of
//! the 72 tests of the official WASI test suite through the plugin (docs/engines.md).

use std::fmt;

use shim_wasm_abi::plugin::wasi_preview1::{self, Preview1, Snapshot, Stop, WasmType};
use shim_wasm_abi::plugin::{PluginError, RunRequest};
use wasmer::{
    ExternType, Function, FunctionEnv, FunctionEnvMut, FunctionType, Imports, Instance, Memory, Module,
    RuntimeError, Store, Type, Value,
};

/// Whether every import of `module` is a function WASI preview 1 defines (then
/// [`instantiate`] serves it; wasmer-wasix serves its own additions, `thread-spawn` say).
pub fn serves(module: &Module) -> bool {
    module.imports().all(|import| {
        Snapshot::of_module(import.module())
            .and_then(|snapshot| wasi_preview1::signature(snapshot, import.name()))
            .is_some()
    })
}

/// What the host functions share: the program's WASI state and its memory.
struct State {
    wasi: Preview1,
    /// The instance's exported `memory`, once instantiated.
    memory: Option<Memory>,
}

/// `proc_exit`'s status, as the error that unwinds the program.
#[derive(Debug)]
struct Exit(i32);

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// Instantiates `module`, which [`serves`], with WASI from the request.
pub fn instantiate(
    store: &mut Store,
    module: &Module,
    request: &RunRequest<'_>,
) -> Result<Instance, PluginError> {
    let env = FunctionEnv::new(store, State { wasi: Preview1::new(request)?, memory: None });
    let mut imports = Imports::new();
    for import in module.imports() {
        let unknown = || PluginError::unknown_import(import.module(), import.name());
        let snapshot = Snapshot::of_module(import.module()).ok_or_else(unknown)?;
        let (ExternType::Function(ty), Some(signature)) =
            (import.ty(), wasi_preview1::signature(snapshot, import.name()))
        else {
            return Err(unknown());
        };
        let wasi_type = FunctionType::new(wasm_types(signature.params), wasm_types(signature.results));
        if *ty != wasi_type {
            return Err(PluginError::invalid_module(format!(
                "the module imports {}::{} as {ty}, WASI defines it as {wasi_type}",
                import.module(),
                import.name()
            )));
        }
        let name = import.name().to_owned();
        let function =
            Function::new_with_env(store, &env, wasi_type, move |env, args| call(snapshot, &name, env, args));
        imports.define(import.module(), import.name(), function);
    }
    let instance = Instance::new(store, module, &imports)
        .map_err(|e| PluginError::invalid_module(format!("cannot instantiate the module: {e}")))?;
    env.as_mut(store).memory = instance.exports.get_memory("memory").ok().cloned();
    Ok(instance)
}

/// The exit status `proc_exit` unwound with, if it did.
pub fn exit_status(error: &RuntimeError) -> Option<i32> {
    error.downcast_ref::<Exit>().map(|exit| exit.0)
}

fn wasm_types(types: &[WasmType]) -> Vec<Type> {
    types.iter().map(|t| if *t == WasmType::I64 { Type::I64 } else { Type::I32 }).collect()
}

fn call(
    snapshot: Snapshot,
    name: &str,
    mut env: FunctionEnvMut<State>,
    args: &[Value],
) -> Result<Vec<Value>, RuntimeError> {
    let args: Vec<i64> =
        args.iter().map(|arg| arg.i64().or(arg.i32().map(i64::from)).unwrap_or_default()).collect();
    let (state, store) = env.data_and_store_mut();
    let view = state.memory.as_ref().map(|memory| memory.view(&store));
    // SAFETY: the slice lives for this call only, during which no WebAssembly code runs
    // and the memory does not grow (the program is single-threaded and waits on the call).
    let bytes: &mut [u8] = match &view {
        Some(view) => unsafe { view.data_unchecked_mut() },
        None => &mut [],
    };
    match state.wasi.call(snapshot, name, bytes, &args) {
        Ok(errno) => Ok(errno.map(Value::I32).into_iter().collect()),
        Err(Stop::Exit(status)) => Err(RuntimeError::user(Box::new(Exit(status)))),
        Err(Stop::Trap(message)) => Err(RuntimeError::new(message)),
    }
}
