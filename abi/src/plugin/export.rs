//! The C entry points generated for an [`Engine`]: each converts the C arguments, calls
//! the engine, catches any panic, and turns failures into a status code plus a message
//! written into the host's error buffer. Used through [`export_plugin!`].

use std::any::Any;
use std::mem::offset_of;
use std::os::fd::BorrowedFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use super::{Engine, ModuleSource, PluginError, Preopen, RunRequest, ServeRequest, artifact, log, proposals};
use crate::ffi::*;
use crate::{Capabilities, ModuleKind, Status};

/// Exports `$engine` (a type implementing [`Engine`](crate::plugin::Engine)) as an
/// engine plugin: defines the `shim_wasm_plugin_entry` symbol and its function table.
/// Use it once, in a `cdylib` crate.
#[macro_export]
macro_rules! export_plugin {
    ($engine:ty) => {
        /// The engine plugin entry point (see `shim_wasm_abi.h`).
        ///
        /// # Safety
        /// Called by the shim with a valid host table or NULL.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn shim_wasm_plugin_entry(
            host: *const $crate::ffi::ShimWasmHostApi,
        ) -> *const $crate::ffi::ShimWasmPlugin {
            static TABLE: $crate::ffi::ShimWasmPlugin = $crate::plugin::export::plugin_table::<$engine>();
            // SAFETY: the host passes a valid pointer or NULL.
            unsafe { $crate::plugin::export::entry::<$engine>(host, &TABLE) }
        }
    };
}

/// The function table of `E`, for a `static`.
pub const fn plugin_table<E: Engine>() -> ShimWasmPlugin {
    ShimWasmPlugin {
        struct_size: size_of::<ShimWasmPlugin>(),
        abi_version: ShimWasmAbiVersion { major: SHIM_WASM_ABI_MAJOR, minor: SHIM_WASM_ABI_MINOR },
        engine_name: ShimWasmStr::from_str(E::NAME),
        engine_version: ShimWasmStr::from_str(E::ENGINE_VERSION),
        plugin_version: ShimWasmStr::from_str(E::PLUGIN_VERSION),
        capabilities: E::CAPABILITIES.0,
        engine_new: Some(engine_new::<E>),
        engine_free: Some(engine_free::<E>),
        detect: Some(detect::<E>),
        cache_key: Some(cache_key::<E>),
        precompile: Some(precompile::<E>),
        run: Some(run::<E>),
        bytes_free: Some(bytes_free),
        serve: if E::CAPABILITIES.contains(Capabilities::HTTP_SERVE) { Some(serve::<E>) } else { None },
    }
}

/// Body of `shim_wasm_plugin_entry`: connects logging when the host speaks our major and
/// returns the table (also to a host of another major, which reports the mismatch).
///
/// # Safety
/// `host` is NULL or points to a host table valid for the rest of the process.
pub unsafe fn entry<E: Engine>(
    host: *const ShimWasmHostApi,
    table: &'static ShimWasmPlugin,
) -> *const ShimWasmPlugin {
    let connected = catch_unwind(|| {
        // SAFETY: guaranteed by the caller.
        if let Some(host) = unsafe { host.as_ref() }
            && host.abi_version.major == SHIM_WASM_ABI_MAJOR
            // Any minor's table holds `log` (a 1.0 one ends with it).
            && host.struct_size >= offset_of!(ShimWasmHostApi, log) + size_of_val(&host.log)
        {
            log::connect(E::NAME, host);
        }
    });
    if connected.is_err() { ptr::null() } else { table }
}

unsafe extern "C" fn engine_new<E: Engine>(
    settings: ShimWasmStr,
    out_engine: *mut *mut ShimWasmEngine,
    err: *mut ShimWasmErrorBuf,
) -> ShimWasmStatus {
    guard::<E>("engine_new", err, || {
        // SAFETY: the host passes a valid string view.
        let settings = utf8(unsafe { settings.as_bytes() }, "settings")?;
        let out = non_null(out_engine, "out_engine")?;
        let engine = Box::new(E::new(settings)?);
        // SAFETY: checked non-null; the host provides the slot.
        unsafe { *out = Box::into_raw(engine).cast() };
        Ok(())
    })
}

unsafe extern "C" fn engine_free<E: Engine>(engine: *mut ShimWasmEngine) {
    if !engine.is_null() {
        // A panic in an engine's destructor must not unwind into the host.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: created by `engine_new::<E>` with Box::into_raw, freed once.
            drop(unsafe { Box::from_raw(engine.cast::<E>()) })
        }));
    }
}

unsafe extern "C" fn detect<E: Engine>(
    engine: *const ShimWasmEngine,
    bytes: ShimWasmBytes,
    out_kind: *mut ShimWasmModuleKind,
    err: *mut ShimWasmErrorBuf,
) -> ShimWasmStatus {
    guard::<E>("detect", err, || {
        // SAFETY: the host passes an engine from `engine_new` and a valid view.
        let (engine, bytes) = (unsafe { engine_ref::<E>(engine) }?, unsafe { bytes.as_slice() });
        let kind = if artifact::is_artifact(bytes) {
            if E::CAPABILITIES.contains(Capabilities::PRECOMPILE) {
                ModuleKind::Artifact
            } else {
                ModuleKind::Unknown
            }
        } else {
            engine.detect(bytes)
        };
        // SAFETY: checked non-null.
        unsafe { *non_null(out_kind, "out_kind")? = kind.to_raw() };
        Ok(())
    })
}

unsafe extern "C" fn cache_key<E: Engine>(
    engine: *const ShimWasmEngine,
    out_key: *mut ShimWasmOwnedBytes,
    err: *mut ShimWasmErrorBuf,
) -> ShimWasmStatus {
    guard::<E>("cache_key", err, || {
        // SAFETY: the host passes an engine from `engine_new`.
        let key = full_cache_key(unsafe { engine_ref::<E>(engine) }?)?;
        // SAFETY: checked non-null.
        unsafe { *non_null(out_key, "out_key")? = owned(key.into_bytes()) };
        Ok(())
    })
}

unsafe extern "C" fn precompile<E: Engine>(
    engine: *const ShimWasmEngine,
    bytes: ShimWasmBytes,
    out_artifact: *mut ShimWasmOwnedBytes,
    err: *mut ShimWasmErrorBuf,
) -> ShimWasmStatus {
    guard::<E>("precompile", err, || {
        // SAFETY: the host passes an engine from `engine_new` and a valid view.
        let (engine, bytes) = (unsafe { engine_ref::<E>(engine) }?, unsafe { bytes.as_slice() });
        if !E::CAPABILITIES.contains(Capabilities::PRECOMPILE) {
            return Err(PluginError::unsupported(E::NAME, "precompilation"));
        }
        if artifact::is_artifact(bytes) {
            return Err(PluginError::invalid_module("the input is already a precompiled artifact"));
        }
        let key = full_cache_key(engine)?;
        let compiled = engine.precompile(bytes).map_err(|e| name_missing_proposal::<E>(e, bytes))?;
        let wrapped = artifact::wrap(&key, &compiled);
        // SAFETY: checked non-null.
        unsafe { *non_null(out_artifact, "out_artifact")? = owned(wrapped) };
        Ok(())
    })
}

unsafe extern "C" fn run<E: Engine>(
    engine: *const ShimWasmEngine,
    request: *const ShimWasmRunRequest,
    out_exit_code: *mut i32,
    err: *mut ShimWasmErrorBuf,
) -> ShimWasmStatus {
    guard::<E>("run", err, || {
        // SAFETY: the host passes an engine from `engine_new` and a request whose views
        // are valid for the call.
        let engine = unsafe { engine_ref::<E>(engine) }?;
        let raw = unsafe { sized_copy(non_null(request.cast_mut(), "request")?) };
        let request = unsafe { run_request::<E>(engine, &raw) }?;
        let source = request.module;
        if let ModuleSource::Bytes(bytes) = source {
            super::entry::check(bytes, request.entry)?;
        }
        let code = engine.run(request).map_err(|e| match source {
            ModuleSource::Bytes(bytes) => name_missing_proposal::<E>(e, bytes),
            ModuleSource::Precompiled(_) => e,
        })?;
        // SAFETY: checked non-null.
        unsafe { *non_null(out_exit_code, "out_exit_code")? = code };
        Ok(())
    })
}

unsafe extern "C" fn serve<E: Engine>(
    engine: *const ShimWasmEngine,
    request: *const ShimWasmServeRequest,
    out_exit_code: *mut i32,
    err: *mut ShimWasmErrorBuf,
) -> ShimWasmStatus {
    guard::<E>("serve", err, || {
        // SAFETY: the host passes an engine from `engine_new` and a request whose views
        // (and run request) are valid for the call.
        let engine = unsafe { engine_ref::<E>(engine) }?;
        let raw = unsafe { sized_copy(non_null(request.cast_mut(), "serve request")?) };
        // 1.2 made the serve request whole; there is no shorter one.
        if raw.struct_size < SHIM_WASM_SERVE_REQUEST_V1_2_SIZE {
            return Err(PluginError::invalid_argument(format!(
                "serve request is {} bytes, ABI {SHIM_WASM_ABI_MAJOR}.2 needs at least {SHIM_WASM_SERVE_REQUEST_V1_2_SIZE}",
                raw.struct_size,
            )));
        }
        let run = unsafe { sized_copy(non_null(raw.run.cast_mut(), "serve request's run request")?) };
        let run = unsafe { run_request::<E>(engine, &run) }?;
        let listen = utf8(unsafe { raw.listen.as_bytes() }, "listen address")?;
        let listen = listen.parse().map_err(|_| {
            PluginError::invalid_argument(format!(
                "listen address `{listen}` is not IP:PORT (for example 0.0.0.0:8080)"
            ))
        })?;
        let stop = unsafe { fd(raw.stop_fd, "stop") }?;
        let code = engine.serve(ServeRequest { run, listen, stop })?;
        // SAFETY: checked non-null.
        unsafe { *non_null(out_exit_code, "out_exit_code")? = code };
        Ok(())
    })
}

/// An engine's refusal of a module that needs a proposal the engine lacks, said as such.
fn name_missing_proposal<E: Engine>(error: PluginError, module: &[u8]) -> PluginError {
    if error.status != Status::InvalidModule {
        return error;
    }
    match proposals::missing(module, E::PROPOSALS) {
        Some(proposal) => PluginError::new(
            Status::Unsupported,
            format!(
                "engine {} does not support the {} proposal, which the module uses ({})",
                E::NAME,
                proposal.name(),
                error.message.lines().next().unwrap_or_default()
            ),
        ),
        None => error,
    }
}

unsafe extern "C" fn bytes_free(bytes: ShimWasmOwnedBytes) {
    if !bytes.ptr.is_null() {
        // SAFETY: produced by `owned` from a boxed slice of exactly this length.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(bytes.ptr, bytes.len)) });
    }
}

/// A request (run or serve) as this minor's struct: the bytes the host declared (never
/// more: an older host's request is shorter than ours), then zeroes (an empty `cwd`).
///
/// # Safety
/// `request` points to a `#[repr(C)]` request whose first field is its size (`usize`),
/// valid for that many bytes; all zeroes must be a valid `T`.
unsafe fn sized_copy<T>(request: *const T) -> T {
    // SAFETY: every request starts with its size; zeroes are a valid request (NULL views
    // of length 0, descriptor 0), and the copy stays within what the host declared.
    unsafe {
        let declared = request.cast::<usize>().read();
        let mut copy: T = std::mem::zeroed();
        let len = declared.min(size_of::<T>());
        ptr::copy_nonoverlapping(request.cast::<u8>(), ptr::addr_of_mut!(copy).cast::<u8>(), len);
        ptr::addr_of_mut!(copy).cast::<usize>().write(declared);
        copy
    }
}

/// Converts the C request into the engine's view, checking every field.
unsafe fn run_request<'a, E: Engine>(
    engine: &E,
    raw: &'a ShimWasmRunRequest,
) -> Result<RunRequest<'a>, PluginError> {
    // A host of an older minor sends a shorter request: the fields it lacks are read as
    // their 1.0 meaning. Shorter than 1.0's is no request of this major.
    if raw.struct_size < SHIM_WASM_RUN_REQUEST_V1_0_SIZE {
        return Err(PluginError::invalid_argument(format!(
            "run request is {} bytes, ABI {SHIM_WASM_ABI_MAJOR}.0 needs at least {SHIM_WASM_RUN_REQUEST_V1_0_SIZE}",
            raw.struct_size,
        )));
    }
    let has = |end: usize| raw.struct_size >= end;
    // SAFETY (whole function): the host guarantees every view is valid for the call.
    let bytes = unsafe { raw.module.as_slice() };
    let module = if artifact::is_artifact(bytes) {
        if !E::CAPABILITIES.contains(Capabilities::PRECOMPILE) {
            return Err(PluginError::unsupported(E::NAME, "precompiled artifacts"));
        }
        ModuleSource::Precompiled(artifact::unwrap(bytes, &full_cache_key(engine)?)?)
    } else {
        ModuleSource::Bytes(bytes)
    };
    let entry = utf8(unsafe { raw.entry.as_bytes() }, "entry")?;
    let args = unsafe { views(raw.args, raw.args_len) }
        .iter()
        .map(|s| utf8(unsafe { s.as_bytes() }, "argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let env = unsafe { views(raw.env, raw.env_len) }
        .iter()
        .map(|s| {
            let var = utf8(unsafe { s.as_bytes() }, "environment variable")?;
            var.split_once('=').ok_or_else(|| {
                PluginError::invalid_argument(format!("environment entry `{var}` is not KEY=VALUE"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let preopens = unsafe { views(raw.preopens, raw.preopens_len) }
        .iter()
        .map(|p| {
            Ok(Preopen {
                host_path: utf8(unsafe { p.host_path.as_bytes() }, "preopen host path")?,
                guest_path: utf8(unsafe { p.guest_path.as_bytes() }, "preopen guest path")?,
            })
        })
        .collect::<Result<Vec<_>, PluginError>>()?;
    let cwd = if has(offset_of!(ShimWasmRunRequest, cwd) + size_of::<ShimWasmStr>()) {
        utf8(unsafe { raw.cwd.as_bytes() }, "working directory")?
    } else {
        ""
    };
    Ok(RunRequest {
        module,
        entry: (!entry.is_empty()).then_some(entry),
        cwd: (!cwd.is_empty()).then_some(cwd),
        args,
        env,
        preopens,
        stdin: unsafe { fd(raw.stdin_fd, "stdin") }?,
        stdout: unsafe { fd(raw.stdout_fd, "stdout") }?,
        stderr: unsafe { fd(raw.stderr_fd, "stderr") }?,
    })
}

/// `engine/engine-version/plugin-version/<engine's own key>`.
fn full_cache_key<E: Engine>(engine: &E) -> Result<String, PluginError> {
    if !E::CAPABILITIES.contains(Capabilities::PRECOMPILE) {
        return Err(PluginError::unsupported(E::NAME, "precompilation"));
    }
    Ok(format!("{}/{}/{}/{}", E::NAME, E::ENGINE_VERSION, E::PLUGIN_VERSION, engine.cache_key()?))
}

/// Runs `body`, mapping its error or panic to a status and a message in `err`.
fn guard<E: Engine>(
    op: &str,
    err: *mut ShimWasmErrorBuf,
    body: impl FnOnce() -> Result<(), PluginError>,
) -> ShimWasmStatus {
    let (status, message) = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return SHIM_WASM_OK,
        Ok(Err(e)) => (e.status.to_raw(), e.message),
        Err(panic) => (
            SHIM_WASM_ERR_PANIC,
            format!("the {} plugin panicked in {op}: {}", E::NAME, panic_message(&*panic)),
        ),
    };
    // SAFETY: `err` is NULL or the host's buffer, valid for `capacity` bytes.
    unsafe { write_error(err, &message) };
    status
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Copies as much of `message` as fits, cut at a character boundary.
unsafe fn write_error(err: *mut ShimWasmErrorBuf, message: &str) {
    // SAFETY: guaranteed by the caller.
    let Some(buf) = (unsafe { err.as_mut() }) else { return };
    if buf.ptr.is_null() {
        buf.len = 0;
        return;
    }
    let mut len = message.len().min(buf.capacity);
    while !message.is_char_boundary(len) {
        len -= 1;
    }
    // SAFETY: the buffer holds `capacity` bytes and `len <= capacity`.
    unsafe { ptr::copy_nonoverlapping(message.as_ptr(), buf.ptr.cast(), len) };
    buf.len = len;
}

fn owned(bytes: Vec<u8>) -> ShimWasmOwnedBytes {
    let len = bytes.len();
    let ptr = Box::into_raw(bytes.into_boxed_slice()).cast::<u8>();
    ShimWasmOwnedBytes { ptr, len }
}

unsafe fn engine_ref<'a, E: Engine>(engine: *const ShimWasmEngine) -> Result<&'a E, PluginError> {
    // SAFETY: a non-null engine was created by `engine_new::<E>`.
    unsafe { engine.cast::<E>().as_ref() }.ok_or_else(|| PluginError::invalid_argument("engine is NULL"))
}

fn non_null<T>(ptr: *mut T, what: &str) -> Result<*mut T, PluginError> {
    if ptr.is_null() { Err(PluginError::invalid_argument(format!("{what} is NULL"))) } else { Ok(ptr) }
}

unsafe fn views<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    // SAFETY: guaranteed by the caller; NULL is only accepted with len 0.
    if ptr.is_null() || len == 0 { &[] } else { unsafe { std::slice::from_raw_parts(ptr, len) } }
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, PluginError> {
    std::str::from_utf8(bytes)
        .map_err(|_| PluginError::invalid_argument(format!("{what} is not valid UTF-8")))
}

unsafe fn fd<'a>(fd: i32, what: &str) -> Result<BorrowedFd<'a>, PluginError> {
    if fd < 0 {
        return Err(PluginError::invalid_argument(format!("{what} file descriptor {fd} is invalid")));
    }
    // SAFETY: the host keeps the descriptor open for the call.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}
