//! WASI preview 1 on WAMR: the shared implementation (`abi::plugin::wasi_preview1`,
//! wasi-common), each WASI function registered with WAMR as a native of the import
//! modules `wasi_snapshot_preview1` and `wasi_unstable`.
//!
//! WAMR's own libc-wasi is not built: it refused `symlink_create` of the official WASI
//! test suite (a symlink whose target is an absolute path) and answered a directory's
//! seek with ESPIPE, and its loader asked every command to export a memory whether or not
//! it uses WASI (docs/engines.md).

use std::cell::Cell;
use std::ffi::{CString, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::OnceLock;

use shim_wasm_abi::plugin::wasi_preview1::{self, Preview1, Snapshot, Stop, WasmType};
use shim_wasm_abi::plugin::{PluginError, RunRequest};
use wamrx_sys as sys;

/// The exception the plugin raises for `proc_exit`, which unwinds the program.
pub const EXIT_EXCEPTION: &str = "wasi proc exit";

/// The program's WASI state and how it ended, reached from the execution environment.
pub struct State {
    wasi: Preview1,
    /// The status `proc_exit` was called with.
    pub exit: Option<i32>,
}

impl State {
    pub fn new(request: &RunRequest<'_>) -> Result<Self, PluginError> {
        Ok(State { wasi: Preview1::new(request)?, exit: None })
    }
}

thread_local! {
    /// The state of the program this thread runs, while [`with_state`] runs it.
    static STATE: Cell<*mut State> = const { Cell::new(ptr::null_mut()) };
}

/// Runs `body` (instantiation and calls into the program) with `state` reachable from
/// the WASI functions WAMR calls on this thread.
pub fn with_state<R>(state: &mut State, body: impl FnOnce() -> R) -> R {
    /// Puts the previous state back, on return and on unwinding alike.
    struct Restore(*mut State);
    impl Drop for Restore {
        fn drop(&mut self) {
            STATE.set(self.0);
        }
    }
    let _restore = Restore(STATE.replace(state));
    body()
}

/// What a registered native is: WASI's function `name` of `snapshot`.
struct Native {
    snapshot: Snapshot,
    name: &'static str,
}

static REGISTERED: OnceLock<bool> = OnceLock::new();

/// Registers the WASI functions with WAMR, once per process (WAMR's natives are global).
/// WAMR keeps pointers to the symbols, names and signatures: they live as long as the
/// process.
pub fn register() -> Result<(), PluginError> {
    let registered = REGISTERED.get_or_init(|| {
        [("wasi_snapshot_preview1", Snapshot::One), ("wasi_unstable", Snapshot::Zero)].into_iter().all(
            |(module, snapshot)| {
                let symbols: Vec<sys::NativeSymbol> = wasi_preview1::functions(snapshot)
                    .iter()
                    .filter_map(|&name| {
                        let signature = wasi_preview1::signature(snapshot, name)?;
                        let native = Box::leak(Box::new(Native { snapshot, name }));
                        Some(sys::NativeSymbol {
                            symbol: leak_c_string(name),
                            func_ptr: call as *mut c_void,
                            signature: leak_c_string(&wamr_signature(signature.params, signature.results)),
                            attachment: ptr::from_mut(native).cast(),
                        })
                    })
                    .collect();
                let symbols = symbols.leak();
                // SAFETY: the module name and every symbol live for the rest of the process.
                unsafe {
                    sys::wasm_runtime_register_natives_raw(
                        leak_c_string(module),
                        symbols.as_mut_ptr(),
                        symbols.len() as u32,
                    )
                }
            },
        )
    });
    if *registered {
        Ok(())
    } else {
        Err(PluginError::internal("cannot register the WASI functions with WAMR"))
    }
}

fn leak_c_string(text: &str) -> *const std::ffi::c_char {
    CString::new(text).expect("WASI names have no NUL").into_raw()
}

/// WAMR's signature string: "(iI)i" is (i32, i64) -> i32.
fn wamr_signature(params: &[WasmType], results: &[WasmType]) -> String {
    let letter = |t: &WasmType| if *t == WasmType::I64 { 'I' } else { 'i' };
    format!(
        "({}){}",
        params.iter().map(letter).collect::<String>(),
        results.iter().map(letter).collect::<String>()
    )
}

/// The native WAMR calls for every WASI function ("raw" convention: each argument in a
/// 64-bit slot of `args`, the result written to the first). The function is the
/// registered [`Native`]; the state, the one [`with_state`] gives this thread.
unsafe extern "C" fn call(exec_env: sys::wasm_exec_env_t, args: *mut u64) {
    // SAFETY: WAMR passes the attachment registered with this native.
    let (native, instance) = unsafe {
        (
            &*sys::wasm_runtime_get_function_attachment(exec_env).cast::<Native>(),
            sys::wasm_runtime_get_module_inst(exec_env),
        )
    };
    // SAFETY: `with_state` keeps the state alive, and nothing else uses it, while WAMR
    // runs the program on this thread.
    let Some(state) = (unsafe { STATE.get().as_mut() }) else {
        return raise(instance, "WASI called without a WASI state");
    };
    let Some(signature) = wasi_preview1::signature(native.snapshot, native.name) else { return };
    // SAFETY: WAMR gives one slot per parameter (the signature it checked the import against).
    let values: Vec<i64> = (0..signature.params.len()).map(|i| unsafe { *args.add(i) } as i64).collect();
    let memory = memory_of(instance);
    let outcome =
        catch_unwind(AssertUnwindSafe(|| state.wasi.call(native.snapshot, native.name, memory, &values)));
    match outcome {
        // SAFETY: the first slot holds the i32 result.
        Ok(Ok(Some(errno))) => unsafe { *args = u64::from(errno as u32) },
        Ok(Ok(None)) => {}
        Ok(Err(Stop::Exit(status))) => {
            state.exit = Some(status);
            raise(instance, EXIT_EXCEPTION);
        }
        Ok(Err(Stop::Trap(message))) => raise(instance, &message),
        Err(_) => raise(instance, &format!("WASI function {} panicked", native.name)),
    }
}

/// The instance's default memory as bytes; empty when it has none.
fn memory_of<'a>(instance: sys::wasm_module_inst_t) -> &'a mut [u8] {
    // SAFETY: queries on the live instance. During a native call no WebAssembly code runs
    // and the memory does not move or grow, so the slice is valid for the call.
    unsafe {
        let memory = sys::wasm_runtime_get_default_memory(instance);
        if memory.is_null() {
            return &mut [];
        }
        let base = sys::wasm_memory_get_base_address(memory).cast::<u8>();
        let size = sys::wasm_memory_get_cur_page_count(memory) * sys::wasm_memory_get_bytes_per_page(memory);
        if base.is_null() { &mut [] } else { std::slice::from_raw_parts_mut(base, size as usize) }
    }
}

/// Ends the call with an exception: WAMR unwinds the program when the native returns.
fn raise(instance: sys::wasm_module_inst_t, message: &str) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: WAMR copies the NUL-terminated message into the live instance.
    unsafe { sys::wasm_runtime_set_exception(instance, message.as_ptr()) };
}
