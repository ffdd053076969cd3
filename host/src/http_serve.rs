//! Serving `wasi:http` components: which programs are served rather than run, on which
//! address, and how a termination signal asks the server to stop. A binary component
//! that exports `wasi:http/incoming-handler` and not `wasi:cli/run` is served through the
//! plugin's `serve` (ABI 1.2, capability `http-serve`), on the address the program's
//! environment names in [`LISTEN_ENV`] (runwasi's name, so its images work unchanged),
//! [`DEFAULT_LISTEN`] otherwise. Used by the container's init process and by `run`.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use shim_wasm_abi::component::{self, World};
use shim_wasm_abi::host::LoadedPlugin;
use shim_wasm_abi::{Capabilities, ModuleKind};

/// The environment variable that names the address to listen on.
pub const LISTEN_ENV: &str = "WASMTIME_HTTP_PROXY_SOCKET_ADDR";
/// Where a served component listens when its environment does not say.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// Where to serve `bytes`, if it is a component to serve: `Ok(None)` for anything to run;
/// an error (one line) when it is one but `plugin` cannot serve or the address is wrong.
/// `env` holds `KEY=VALUE` entries.
pub fn listen_address(bytes: &[u8], env: &[String], plugin: &LoadedPlugin) -> Result<Option<String>, String> {
    if ModuleKind::sniff(bytes) != ModuleKind::Component || component::world(bytes) != World::HttpHandler {
        return Ok(None);
    }
    let engine = &plugin.descriptor().engine_name;
    if !plugin.descriptor().capabilities.contains(Capabilities::HTTP_SERVE) {
        return Err(format!(
            "the {engine} engine cannot serve wasi:http components (this component exports {} and no {}); \
             choose an engine with the http-serve capability, such as wasmtime (see `containerd-shim-wasm-v1 engines`)",
            component::HTTP_HANDLER,
            component::CLI_RUN
        ));
    }
    let prefix = format!("{LISTEN_ENV}=");
    let listen = env.iter().rev().find_map(|e| e.strip_prefix(&prefix)).unwrap_or(DEFAULT_LISTEN);
    listen.parse::<SocketAddr>().map_err(|_| {
        format!("{LISTEN_ENV}={listen} is not an IP:PORT address to listen on; set it like {DEFAULT_LISTEN}")
    })?;
    Ok(Some(listen.to_string()))
}

/// The write end of the stop pipe while serving; -1 once a signal has used it.
static STOP_WRITE: AtomicI32 = AtomicI32::new(-1);

/// From now on, the first SIGTERM, SIGINT, SIGHUP or SIGQUIT makes the returned
/// descriptor readable (the server stops accepting, finishes what is in flight, and the
/// program ends with 0); a second one ends the process at once with 128+N, as a signal
/// ends a program that does not serve.
pub fn stop_on_termination_signals() -> std::io::Result<OwnedFd> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    STOP_WRITE.store(fds[1], Ordering::SeqCst);
    extern "C" fn on_signal(signal: libc::c_int) {
        let fd = STOP_WRITE.swap(-1, Ordering::SeqCst);
        if fd < 0 {
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(128 + signal) };
        }
        // SAFETY: write on a pipe is async-signal-safe; the byte only wakes the reader.
        unsafe { libc::write(fd, b"s".as_ptr().cast(), 1) };
    }
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: installs an async-signal-safe handler.
        unsafe { libc::signal(signal, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    }
    // SAFETY: the read end pipe2 just made, owned from here on.
    Ok(unsafe { OwnedFd::from_raw_fd(fds[0]) })
}
