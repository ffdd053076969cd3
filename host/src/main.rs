//! `containerd-shim-wasm-v1`: the containerd shim for WebAssembly.
//!
//! Two kinds of callers: containerd, which will drive the shim v2 protocol (Go-style
//! flags such as `-namespace ... start`), and operators, who use the subcommands in
//! [`cli`]. Engines are never linked: each is a plugin loaded in its own child process
//! (see [`plugins`] and [`engine_process`]).

mod cli;
mod commands;
mod container;
mod engine_process;
mod exit;
mod plugins;
mod shim_protocol;
mod task;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // containerd passes -debug to shims when its own log level is debug.
    init_logging(if args.iter().any(|a| a == "-debug") { "debug" } else { "warn" });
    if shim_protocol::is_containerd_invocation(&args) {
        return exit::report(shim_protocol::run(&args));
    }
    exit::report(cli::run())
}

/// Logs go to stderr (the shim server points it at containerd's log FIFO); the level
/// comes from `RUST_LOG`, else `default` (`warn`, so operator commands stay quiet).
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// stderr that never fails: containerd closes a shim's log FIFO when the container whose
/// bundle holds it is deleted, while the shim goes on serving the pod's other containers.
/// A failed log write must not become a panic (`eprintln!`) in a request thread.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
