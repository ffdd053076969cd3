//! The WAMR embedding calls: load, instantiate, call with the WASI state, exit status,
//! teardown. WAMR keeps a pointer to the module buffer until the module is unloaded, so
//! it lives in [`Loaded`] until then.

use std::ffi::{CStr, CString, c_char};
use std::sync::OnceLock;

use shim_wasm_abi::plugin::{PluginError, RunRequest};
use wamrx_sys as sys;

use crate::wasi;

static INIT: OnceLock<bool> = OnceLock::new();

/// Initialises the WAMR runtime once per process (it is process-global).
pub fn init() -> Result<(), PluginError> {
    // SAFETY: wasm_runtime_init has no preconditions; called once.
    if *INIT.get_or_init(|| unsafe { sys::wasm_runtime_init() }) {
        // WAMR prints its warnings (an unlinked import, say) on the process's own stdout,
        // which is the program's; the plugin reports what matters as its error instead.
        // SAFETY: sets a process-global level, no other preconditions.
        unsafe { sys::wasm_runtime_set_log_level(sys::WASM_LOG_LEVEL_ERROR) };
        wasi::register()
    } else {
        Err(PluginError::internal("cannot initialise the WAMR runtime"))
    }
}

/// A loaded module with the buffer WAMR points into.
struct Loaded {
    module: sys::wasm_module_t,
    _buffer: Vec<u8>,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // SAFETY: loaded by wasm_runtime_load, unloaded once, after every instance.
        unsafe { sys::wasm_runtime_unload(self.module) };
    }
}

struct Instance(sys::wasm_module_inst_t);

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: created by wasm_runtime_instantiate_ex, freed once.
        unsafe { sys::wasm_runtime_deinstantiate(self.0) };
    }
}

fn cstring(text: &str, what: &str) -> Result<CString, PluginError> {
    CString::new(text).map_err(|_| PluginError::invalid_argument(format!("{what} contains a NUL byte")))
}

/// Runs the request's program and returns its exit status.
pub fn run(
    bytes: &[u8],
    request: &RunRequest<'_>,
    stack_size: u32,
    max_pages: Option<u32>,
) -> Result<i32, PluginError> {
    let loaded = load(bytes)?;
    refuse_unknown_imports(loaded.module)?;
    let mut state = wasi::State::new(request)?;
    // WASI functions may run from instantiation on (a start function).
    let ended =
        wasi::with_state(&mut state, || instantiate_and_call(&loaded, request, stack_size, max_pages));
    // `proc_exit` unwinds as an exception, wherever it was called.
    if let Some(status) = state.exit {
        return Ok(status);
    }
    match ended? {
        Ended::Returned(status) => Ok(status),
        Ended::Trapped(message) => Err(PluginError::trap(message)),
    }
}

/// How the program's call ended, short of `proc_exit`.
enum Ended {
    Returned(i32),
    Trapped(String),
}

fn instantiate_and_call(
    loaded: &Loaded,
    request: &RunRequest<'_>,
    stack_size: u32,
    max_pages: Option<u32>,
) -> Result<Ended, PluginError> {
    let mut error = [0 as c_char; 256];
    let mut args: sys::InstantiationArgs = unsafe { std::mem::zeroed() };
    args.default_stack_size = stack_size;
    args.host_managed_heap_size = 0;
    args.max_memory_pages = max_pages.unwrap_or(0);
    // SAFETY: module loaded above; the error buffer is writable for its length.
    let instance = unsafe {
        sys::wasm_runtime_instantiate_ex(loaded.module, &args, error.as_mut_ptr(), error.len() as u32)
    };
    if instance.is_null() {
        return Err(PluginError::invalid_module(format!(
            "cannot instantiate the module: {}",
            c_text(&error)
        )));
    }
    let instance = Instance(instance);
    let name = request.entry.unwrap_or("_start");
    let function = lookup(&instance, name)?;
    if function.is_null() {
        return Err(PluginError::invalid_argument(format!("the module exports no function `{name}`")));
    }
    // SAFETY: the singleton exec env belongs to the instance.
    let exec_env = unsafe { sys::wasm_runtime_get_exec_env_singleton(instance.0) };
    if exec_env.is_null() {
        return Err(PluginError::internal("cannot create a WAMR execution environment"));
    }
    // The export layer checked the entry's type from the module; this guards the call
    // itself should that check not have run: no parameters, at most one result.
    if signature(function, &instance) != (0, 0) && signature(function, &instance) != (0, 1) {
        return Err(PluginError::invalid_argument(format!(
            "entry function `{name}` must take no parameters and return nothing or an i32"
        )));
    }
    // A reactor's constructors run first, as WAMR's iwasm runs them.
    let initialize = lookup(&instance, INITIALIZE)?;
    if name != INITIALIZE && !initialize.is_null() && signature(initialize, &instance) == (0, 0) {
        let mut no_results = [0u32; 2];
        // SAFETY: a function of this instance taking and returning nothing.
        let ok = unsafe { sys::wasm_runtime_call_wasm(exec_env, initialize, 0, no_results.as_mut_ptr()) };
        if !ok {
            return Ok(Ended::Trapped(exception(&instance)));
        }
    }
    // Room for one i32 result (an entry function may return its exit status).
    let mut results = [0u32; 2];
    // SAFETY: function and exec env from this instance; no arguments, results fit.
    let ok = unsafe { sys::wasm_runtime_call_wasm(exec_env, function, 0, results.as_mut_ptr()) };
    if !ok {
        return Ok(Ended::Trapped(exception(&instance)));
    }
    let returned = request.entry.is_some() && signature(function, &instance) == (0, 1);
    Ok(Ended::Returned(if returned { results[0] as i32 } else { 0 }))
}

/// A reactor's initialisation function (the WASI application ABI).
const INITIALIZE: &str = "_initialize";

/// The exported function `name`, or null.
fn lookup(instance: &Instance, name: &str) -> Result<sys::wasm_function_inst_t, PluginError> {
    // SAFETY: a lookup on a live instance; the name is NUL-terminated.
    Ok(unsafe { sys::wasm_runtime_lookup_function(instance.0, cstring(name, "entry")?.as_ptr()) })
}

/// A function's (parameter count, result count).
fn signature(function: sys::wasm_function_inst_t, instance: &Instance) -> (u32, u32) {
    // SAFETY: queries on a function of the live instance.
    unsafe {
        (
            sys::wasm_func_get_param_count(function, instance.0),
            sys::wasm_func_get_result_count(function, instance.0),
        )
    }
}

/// The instance's exception, without WAMR's "Exception: " prefix.
fn exception(instance: &Instance) -> String {
    // SAFETY: the instance's exception string, if any, is NUL-terminated and owned by it.
    let message = unsafe {
        let message = sys::wasm_runtime_get_exception(instance.0);
        if message.is_null() {
            return "the program failed without an exception".into();
        }
        CStr::from_ptr(message).to_string_lossy().into_owned()
    };
    message.trim_start_matches("Exception: ").to_string()
}

/// WAMR instantiates a module whose function imports it lacks and traps only when one is
/// called; the other engines refuse such a module before it runs, naming the import.
fn refuse_unknown_imports(module: sys::wasm_module_t) -> Result<(), PluginError> {
    // SAFETY: queries on a loaded module; the names point into it and live as long.
    unsafe {
        for index in 0..sys::wasm_runtime_get_import_count(module) {
            let mut import: sys::wasm_import_t = std::mem::zeroed();
            sys::wasm_runtime_get_import_type(module, index, &mut import);
            if import.kind == sys::WASM_IMPORT_EXPORT_KIND_FUNC && !import.linked {
                return Err(PluginError::unknown_import(
                    &CStr::from_ptr(import.module_name).to_string_lossy(),
                    &CStr::from_ptr(import.name).to_string_lossy(),
                ));
            }
        }
    }
    Ok(())
}

fn load(bytes: &[u8]) -> Result<Loaded, PluginError> {
    // WAMR wants a writable buffer that lives until unload.
    let mut buffer = bytes.to_vec();
    let mut error = [0 as c_char; 256];
    // SAFETY: the buffer is writable and kept in `Loaded` until unload.
    let module = unsafe {
        sys::wasm_runtime_load(
            buffer.as_mut_ptr(),
            buffer.len() as u32,
            error.as_mut_ptr(),
            error.len() as u32,
        )
    };
    if module.is_null() {
        return Err(PluginError::invalid_module(format!("WAMR cannot load the module: {}", c_text(&error))));
    }
    Ok(Loaded { module, _buffer: buffer })
}

fn c_text(buffer: &[c_char]) -> String {
    // SAFETY: WAMR writes a NUL-terminated message into the buffer (zeroed otherwise).
    unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy().into_owned()
}
