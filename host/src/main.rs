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
    init_logging();
    let args: Vec<String> = std::env::args().collect();
    if shim_protocol::is_containerd_invocation(&args) {
        return exit::report(shim_protocol::run(&args));
    }
    exit::report(cli::run())
}

/// Logs go to stderr (containerd captures a shim's stderr into its own log); the level
/// comes from `RUST_LOG`, `warn` by default so operator commands stay quiet.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
