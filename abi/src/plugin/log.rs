//! Sends the plugin's `tracing` events, and its panic messages, to the shim's log
//! through the host's `log` callback, so plugin logs land where operators look.

use std::ffi::c_void;
use std::io;
use std::sync::OnceLock;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

use crate::ffi::*;

#[derive(Clone, Copy)]
struct HostLog {
    ctx: *mut c_void,
    log: unsafe extern "C" fn(*mut c_void, ShimWasmLogLevel, ShimWasmStr),
}

// SAFETY: the host promises the callback is thread-safe and the context lives forever.
unsafe impl Send for HostLog {}
unsafe impl Sync for HostLog {}

static HOST_LOG: OnceLock<HostLog> = OnceLock::new();

/// Connects this plugin's `tracing` events and panic messages to the host's log.
pub(super) fn connect(engine: &'static str, host: &ShimWasmHostApi) {
    let Some(log) = host.log else { return };
    if HOST_LOG.set(HostLog { ctx: host.host_ctx, log }).is_err() {
        return;
    }
    let subscriber = tracing_subscriber::fmt()
        .with_writer(MakeHostWriter)
        .with_ansi(false)
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_max_level(Level::INFO)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
    // The plugin's copy of std has its own panic hook: report there, not on stderr
    // (which is the workload's stderr). The export layer still catches the panic.
    std::panic::set_hook(Box::new(move |info| {
        send(SHIM_WASM_LOG_ERROR, &format!("engine {engine}: {info}"));
    }));
}

fn send(level: ShimWasmLogLevel, message: &str) {
    if let Some(host) = HOST_LOG.get() {
        // SAFETY: the host's callback accepts a borrowed view for the call.
        unsafe { (host.log)(host.ctx, level, ShimWasmStr::from_str(message)) };
    }
}

struct MakeHostWriter;

/// Collects one formatted event and sends it when dropped.
struct HostWriter {
    level: ShimWasmLogLevel,
    line: Vec<u8>,
}

impl io::Write for HostWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for HostWriter {
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.line);
        let line = line.trim_end();
        if !line.is_empty() {
            send(self.level, line);
        }
    }
}

impl<'a> MakeWriter<'a> for MakeHostWriter {
    type Writer = HostWriter;

    fn make_writer(&'a self) -> HostWriter {
        HostWriter { level: SHIM_WASM_LOG_INFO, line: Vec::new() }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> HostWriter {
        let level = match *meta.level() {
            Level::ERROR => SHIM_WASM_LOG_ERROR,
            Level::WARN => SHIM_WASM_LOG_WARN,
            Level::INFO => SHIM_WASM_LOG_INFO,
            Level::DEBUG => SHIM_WASM_LOG_DEBUG,
            Level::TRACE => SHIM_WASM_LOG_TRACE,
        };
        HostWriter { level, line: Vec::new() }
    }
}
