//! The libwasmedge C API calls: configure, load, validate, register WASI (with the
//! request's descriptors), instantiate, invoke, exit code. Every context is owned by a
//! guard that deletes it, so an early error frees what was created.

use std::ffi::{CStr, CString, c_char};
use std::os::fd::{BorrowedFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::ptr;

use shim_wasm_abi::plugin::{PluginError, RunRequest};
use wasmedge_sys::ffi;

/// Deletes a libwasmedge context when dropped.
struct Owned<T> {
    ptr: *mut T,
    delete: unsafe extern "C" fn(*mut T),
}

impl<T> Owned<T> {
    fn new(ptr: *mut T, delete: unsafe extern "C" fn(*mut T), what: &str) -> Result<Self, PluginError> {
        if ptr.is_null() {
            return Err(PluginError::internal(format!("libwasmedge could not create the {what}")));
        }
        Ok(Self { ptr, delete })
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: created by the matching libwasmedge constructor, deleted once.
        unsafe { (self.delete)(self.ptr) }
    }
}

/// Refuses a libwasmedge whose major.minor differs from the one this plugin targets.
pub fn check_library_version(expected: &str) -> Result<(), PluginError> {
    // SAFETY: returns a static NUL-terminated string.
    let found = unsafe { CStr::from_ptr(ffi::WasmEdge_VersionGet()) }.to_string_lossy().into_owned();
    let major_minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    if major_minor(&found) != major_minor(expected) {
        return Err(PluginError::internal(format!(
            "the wasmedge plugin was built for WasmEdge {expected} but libwasmedge {found} is installed; \
             install WasmEdge {expected} or rebuild the plugin against {found}"
        )));
    }
    Ok(())
}

/// The message of a failed libwasmedge call.
fn message(result: ffi::WasmEdge_Result) -> String {
    // SAFETY: returns a static NUL-terminated string for any result.
    unsafe { CStr::from_ptr(ffi::WasmEdge_ResultGetMessage(result)) }.to_string_lossy().into_owned()
}

fn ok(result: ffi::WasmEdge_Result) -> bool {
    // SAFETY: pure function on a value.
    unsafe { ffi::WasmEdge_ResultOK(result) }
}

fn cstrings(items: impl IntoIterator<Item = String>, what: &str) -> Result<Vec<CString>, PluginError> {
    items
        .into_iter()
        .map(|s| {
            CString::new(s).map_err(|_| PluginError::invalid_argument(format!("{what} contains a NUL byte")))
        })
        .collect()
}

fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings.iter().map(|s| s.as_ptr()).collect()
}

/// A copy of a host descriptor whose ownership passes to libwasmedge.
fn give(fd: BorrowedFd<'_>, what: &str) -> Result<i32, PluginError> {
    fd.try_clone_to_owned()
        .map(IntoRawFd::into_raw_fd)
        .map_err(|e| PluginError::io(format!("cannot duplicate the {what} descriptor: {e}")))
}

/// [`give`] for stdin. WasmEdge polls with epoll, which refuses /dev/null: `poll_oneoff`
/// on such a stdin was EPERM (the WASI test suite's `poll_oneoff_stdio`), where the other
/// engines report it readable. An empty pipe whose writer is closed reads the same: EOF.
fn give_stdin(fd: BorrowedFd<'_>) -> Result<i32, PluginError> {
    if !is_dev_null(fd) {
        return give(fd, "stdin");
    }
    let (reader, _writer) =
        std::io::pipe().map_err(|e| PluginError::io(format!("cannot make a pipe for stdin: {e}")))?;
    Ok(OwnedFd::from(reader).into_raw_fd())
}

/// Whether `fd` is /dev/null (character device 1:3 on Linux: `makedev(1, 3)`).
fn is_dev_null(fd: BorrowedFd<'_>) -> bool {
    const DEV_NULL: u64 = (1 << 8) | 3;
    let Ok(copy) = fd.try_clone_to_owned() else { return false };
    std::fs::File::from(copy).metadata().is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == DEV_NULL)
}

/// Runs the request's program and returns its exit status.
pub fn run(bytes: &[u8], request: &RunRequest<'_>, max_pages: Option<u32>) -> Result<i32, PluginError> {
    // SAFETY (whole function): every pointer passed to libwasmedge is a live context owned
    // by a guard above the call, or a buffer that outlives the call.
    unsafe {
        // libwasmedge logs errors to stderr itself; the plugin reports them as one line.
        ffi::WasmEdge_LogOff();
        let config =
            Owned::new(ffi::WasmEdge_ConfigureCreate(), ffi::WasmEdge_ConfigureDelete, "configuration")?;
        if let Some(pages) = max_pages {
            ffi::WasmEdge_ConfigureSetMaxMemoryPage(config.ptr, u64::from(pages));
        }

        let loader =
            Owned::new(ffi::WasmEdge_LoaderCreate(config.ptr), ffi::WasmEdge_LoaderDelete, "loader")?;
        let mut ast = ptr::null_mut();
        let result =
            ffi::WasmEdge_LoaderParseFromBuffer(loader.ptr, &mut ast, bytes.as_ptr(), bytes.len() as u32);
        if !ok(result) {
            return Err(PluginError::invalid_module(format!("cannot load the module: {}", message(result))));
        }
        let ast = Owned::new(ast, ffi::WasmEdge_ASTModuleDelete, "module")?;
        let validator = Owned::new(
            ffi::WasmEdge_ValidatorCreate(config.ptr),
            ffi::WasmEdge_ValidatorDelete,
            "validator",
        )?;
        let result = ffi::WasmEdge_ValidatorValidate(validator.ptr, ast.ptr);
        if !ok(result) {
            return Err(PluginError::invalid_module(format!("invalid module: {}", message(result))));
        }

        let args = cstrings(request.args.iter().map(|a| a.to_string()), "an argument")?;
        let env = cstrings(request.env.iter().map(|(k, v)| format!("{k}={v}")), "the environment")?;
        let preopens = cstrings(
            request.preopens.iter().map(|p| format!("{}:{}", p.guest_path, p.host_path)),
            "a directory",
        )?;
        let (arg_ptrs, env_ptrs, preopen_ptrs) = (pointers(&args), pointers(&env), pointers(&preopens));
        let wasi = Owned::new(
            ffi::WasmEdge_ModuleInstanceCreateWASIWithFds(
                arg_ptrs.as_ptr(),
                arg_ptrs.len() as u32,
                env_ptrs.as_ptr(),
                env_ptrs.len() as u32,
                preopen_ptrs.as_ptr(),
                preopen_ptrs.len() as u32,
                give_stdin(request.stdin)?,
                give(request.stdout, "stdout")?,
                give(request.stderr, "stderr")?,
            ),
            ffi::WasmEdge_ModuleInstanceDelete,
            "WASI module",
        )?;

        let store = Owned::new(ffi::WasmEdge_StoreCreate(), ffi::WasmEdge_StoreDelete, "store")?;
        let executor = Owned::new(
            ffi::WasmEdge_ExecutorCreate(config.ptr, ptr::null_mut()),
            ffi::WasmEdge_ExecutorDelete,
            "executor",
        )?;
        let result = ffi::WasmEdge_ExecutorRegisterImport(executor.ptr, store.ptr, wasi.ptr);
        if !ok(result) {
            return Err(PluginError::internal(format!("cannot register WASI: {}", message(result))));
        }
        let mut instance = ptr::null_mut();
        let result = ffi::WasmEdge_ExecutorInstantiate(executor.ptr, &mut instance, store.ptr, ast.ptr);
        if !ok(result) {
            return Err(PluginError::invalid_module(format!(
                "cannot instantiate the module: {}",
                message(result)
            )));
        }
        let instance = Owned::new(instance, ffi::WasmEdge_ModuleInstanceDelete, "module instance")?;

        let name = request.entry.unwrap_or("_start");
        let wrapped = ffi::WasmEdge_StringWrap(name.as_ptr().cast(), name.len() as u32);
        let function = ffi::WasmEdge_ModuleInstanceFindFunction(instance.ptr, wrapped);
        if function.is_null() {
            return Err(PluginError::invalid_argument(format!("the module exports no function `{name}`")));
        }
        let ty = ffi::WasmEdge_FunctionInstanceGetFunctionType(function);
        let returns = ffi::WasmEdge_FunctionTypeGetReturnsLength(ty);
        let mut return_type = [std::mem::zeroed::<ffi::WasmEdge_ValType>(); 1];
        ffi::WasmEdge_FunctionTypeGetReturns(ty, return_type.as_mut_ptr(), 1);
        let returns_i32 = returns == 1 && ffi::WasmEdge_ValTypeIsI32(return_type[0]);
        if ffi::WasmEdge_FunctionTypeGetParametersLength(ty) != 0 || (returns != 0 && !returns_i32) {
            return Err(PluginError::invalid_argument(format!(
                "entry function `{name}` must take no parameters and return nothing or an i32"
            )));
        }

        // A reactor's constructors run first, as WasmEdge's CLI runs them.
        const INITIALIZE: &str = "_initialize";
        let initialize = ffi::WasmEdge_ModuleInstanceFindFunction(
            instance.ptr,
            ffi::WasmEdge_StringWrap(INITIALIZE.as_ptr().cast(), INITIALIZE.len() as u32),
        );
        if name != INITIALIZE && !initialize.is_null() {
            let ty = ffi::WasmEdge_FunctionInstanceGetFunctionType(initialize);
            if ffi::WasmEdge_FunctionTypeGetParametersLength(ty) == 0
                && ffi::WasmEdge_FunctionTypeGetReturnsLength(ty) == 0
            {
                let result = ffi::WasmEdge_ExecutorInvoke(
                    executor.ptr,
                    initialize,
                    ptr::null(),
                    0,
                    ptr::null_mut(),
                    0,
                );
                if !ok(result) {
                    return Err(PluginError::trap(message(result)));
                }
                if ffi::WasmEdge_ResultGetCode(result) != 0 {
                    return Ok(ffi::WasmEdge_ModuleInstanceWASIGetExitCode(wasi.ptr) as i32);
                }
            }
        }

        let mut results = [std::mem::zeroed::<ffi::WasmEdge_Value>(); 1];
        let result = ffi::WasmEdge_ExecutorInvoke(
            executor.ptr,
            function,
            ptr::null(),
            0,
            results.as_mut_ptr(),
            returns,
        );
        if !ok(result) {
            return Err(PluginError::trap(message(result)));
        }
        // `proc_exit` ends the run as "terminated", which counts as success; its code is
        // the WASI module's exit code (0 when `_start` simply returns).
        let terminated = ffi::WasmEdge_ResultGetCode(result) != 0;
        if returns_i32 && !terminated {
            return Ok(ffi::WasmEdge_ValueGetI32(results[0]));
        }
        Ok(ffi::WasmEdge_ModuleInstanceWASIGetExitCode(wasi.ptr) as i32)
    }
}
