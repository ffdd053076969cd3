//! Safe calls on an engine a loaded plugin created: detect, cache key, precompile, run.
//! Each call hands the plugin a host-owned error buffer and turns a failure status into
//! a [`CallError`]; bytes the plugin returns are copied and freed by the plugin.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::{CallError, LoadedPlugin};
use crate::ffi::*;
use crate::{Capabilities, ModuleKind, Status};

/// Room for a plugin's error message; longer messages are cut.
const ERROR_CAPACITY: usize = 8 * 1024;

/// An engine created from settings; released when dropped.
#[derive(Debug)]
pub struct EngineInstance<'p> {
    plugin: &'p LoadedPlugin,
    raw: *mut ShimWasmEngine,
}

/// One program to run, as the host sees it.
#[derive(Debug)]
pub struct RunSpec<'a> {
    /// Module, component, text format or precompiled artifact.
    pub module: &'a [u8],
    /// The function to call; `None` for the default.
    pub entry: Option<&'a str>,
    /// `args[0]` is the program name.
    pub args: &'a [String],
    /// `KEY=VALUE` entries.
    pub env: &'a [String],
    /// `(host path, guest path)` pairs.
    pub preopens: &'a [(String, String)],
    /// The working directory, as the program sees paths; empty for none. A plugin of ABI
    /// 1.0 does not read it (its programs start in `/`).
    pub cwd: &'a str,
    pub stdin: BorrowedFd<'a>,
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
}

impl LoadedPlugin {
    /// Creates an engine from its settings (TOML text; empty for defaults).
    pub fn new_engine(&self, settings: &str) -> Result<EngineInstance<'_>, CallError> {
        let mut raw = std::ptr::null_mut();
        let engine_new = self.table.engine_new.expect("checked at load");
        // SAFETY: the view and the out-slot are valid for the call.
        self.call("engine_new", |err| unsafe { engine_new(ShimWasmStr::from_str(settings), &mut raw, err) })?;
        Ok(EngineInstance { plugin: self, raw })
    }

    fn call(
        &self,
        op: &'static str,
        f: impl FnOnce(*mut ShimWasmErrorBuf) -> ShimWasmStatus,
    ) -> Result<(), CallError> {
        let mut message = vec![0u8; ERROR_CAPACITY];
        let mut err = ShimWasmErrorBuf { ptr: message.as_mut_ptr().cast(), capacity: message.len(), len: 0 };
        let Some(status) = Status::from_raw(f(&mut err)) else { return Ok(()) };
        message.truncate(err.len.min(ERROR_CAPACITY));
        Err(CallError {
            engine: self.descriptor().engine_name.clone(),
            op,
            status,
            message: String::from_utf8_lossy(&message).into_owned(),
        })
    }

    fn unsupported(&self, op: &'static str, feature: &str) -> CallError {
        let engine = self.descriptor().engine_name.clone();
        let message = format!("engine {engine} does not support {feature}");
        CallError { engine, op, status: Status::Unsupported, message }
    }

    /// Copies bytes the plugin returned, then lets the plugin free them.
    fn take_bytes(&self, bytes: ShimWasmOwnedBytes) -> Vec<u8> {
        // SAFETY: the plugin returned a valid buffer of `len` bytes (or NULL).
        let copy = unsafe { ShimWasmBytes { ptr: bytes.ptr, len: bytes.len }.as_slice() }.to_vec();
        let bytes_free = self.table.bytes_free.expect("checked at load");
        // SAFETY: returned by this plugin, freed exactly once.
        unsafe { bytes_free(bytes) };
        copy
    }
}

impl EngineInstance<'_> {
    /// What `bytes` are, according to the engine.
    pub fn detect(&self, bytes: &[u8]) -> Result<ModuleKind, CallError> {
        let mut kind = SHIM_WASM_KIND_UNKNOWN;
        let detect = self.plugin.table.detect.expect("checked at load");
        // SAFETY: engine from this plugin; views valid for the call.
        self.plugin.call("detect", |err| unsafe {
            detect(self.raw, ShimWasmBytes::from_slice(bytes), &mut kind, err)
        })?;
        Ok(ModuleKind::from_raw(kind))
    }

    /// The key that decides whether an artifact may be reused by this engine.
    pub fn cache_key(&self) -> Result<String, CallError> {
        let Some(cache_key) = self.plugin.table.cache_key else {
            return Err(self.plugin.unsupported("cache_key", "precompilation"));
        };
        let mut out = ShimWasmOwnedBytes { ptr: std::ptr::null_mut(), len: 0 };
        // SAFETY: engine from this plugin; out-slot valid for the call.
        self.plugin.call("cache_key", |err| unsafe { cache_key(self.raw, &mut out, err) })?;
        Ok(String::from_utf8_lossy(&self.plugin.take_bytes(out)).into_owned())
    }

    /// Compiles `bytes` into an artifact that carries its cache key.
    pub fn precompile(&self, bytes: &[u8]) -> Result<Vec<u8>, CallError> {
        let Some(precompile) = self.plugin.table.precompile else {
            return Err(self.plugin.unsupported("precompile", "precompilation"));
        };
        let mut out = ShimWasmOwnedBytes { ptr: std::ptr::null_mut(), len: 0 };
        // SAFETY: engine from this plugin; views valid for the call.
        self.plugin.call("precompile", |err| unsafe {
            precompile(self.raw, ShimWasmBytes::from_slice(bytes), &mut out, err)
        })?;
        Ok(self.plugin.take_bytes(out))
    }

    /// Runs a program to completion on this thread and returns its exit status.
    pub fn run(&self, spec: &RunSpec<'_>) -> Result<i32, CallError> {
        let run = self.plugin.table.run.expect("checked at load");
        with_request(spec, |request| {
            let mut exit_code = 0;
            // SAFETY: engine from this plugin; the request and its views outlive the call.
            self.plugin.call("run", |err| unsafe { run(self.raw, request, &mut exit_code, err) })?;
            Ok(exit_code)
        })
    }

    /// Serves the `wasi:http/proxy` component of `spec` on `listen` (`IP:PORT`) on this
    /// thread until `stop` is readable; the server's exit status (0 after a stop).
    /// Refused, naming the engine, when the plugin does not declare `http-serve`.
    pub fn serve(&self, spec: &RunSpec<'_>, listen: &str, stop: BorrowedFd<'_>) -> Result<i32, CallError> {
        let serve = match self.plugin.table.serve {
            Some(serve) if self.plugin.descriptor().capabilities.contains(Capabilities::HTTP_SERVE) => serve,
            _ => return Err(self.plugin.unsupported("serve", "serving wasi:http components (http-serve)")),
        };
        with_request(spec, |run| {
            let request = ShimWasmServeRequest {
                struct_size: size_of::<ShimWasmServeRequest>(),
                run,
                listen: ShimWasmStr::from_str(listen),
                stop_fd: stop.as_raw_fd(),
            };
            let mut exit_code = 0;
            // SAFETY: engine from this plugin; the request and its views outlive the call.
            self.plugin.call("serve", |err| unsafe { serve(self.raw, &request, &mut exit_code, err) })?;
            Ok(exit_code)
        })
    }
}

/// Calls `f` with `spec` as a C run request, valid for the call.
fn with_request<T>(spec: &RunSpec<'_>, f: impl FnOnce(&ShimWasmRunRequest) -> T) -> T {
    let views = |items: &[String]| items.iter().map(|s| ShimWasmStr::from_str(s)).collect::<Vec<_>>();
    let (args, env) = (views(spec.args), views(spec.env));
    let preopens = spec
        .preopens
        .iter()
        .map(|(host, guest)| ShimWasmPreopen {
            host_path: ShimWasmStr::from_str(host),
            guest_path: ShimWasmStr::from_str(guest),
        })
        .collect::<Vec<_>>();
    let request = ShimWasmRunRequest {
        struct_size: size_of::<ShimWasmRunRequest>(),
        module: ShimWasmBytes::from_slice(spec.module),
        entry: ShimWasmStr::from_str(spec.entry.unwrap_or("")),
        args: args.as_ptr(),
        args_len: args.len(),
        env: env.as_ptr(),
        env_len: env.len(),
        preopens: preopens.as_ptr(),
        preopens_len: preopens.len(),
        stdin_fd: spec.stdin.as_raw_fd(),
        stdout_fd: spec.stdout.as_raw_fd(),
        stderr_fd: spec.stderr.as_raw_fd(),
        cwd: ShimWasmStr::from_str(spec.cwd),
    };
    f(&request)
}

impl Drop for EngineInstance<'_> {
    fn drop(&mut self) {
        let engine_free = self.plugin.table.engine_free.expect("checked at load");
        // SAFETY: created by this plugin's engine_new, freed once.
        unsafe { engine_free(self.raw) };
    }
}
