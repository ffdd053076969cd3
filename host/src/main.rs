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
mod logging;
mod plugins;
mod shim_protocol;
mod task;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == container::create::COMMAND) {
        logging::keep_off_stderr();
    }
    // containerd passes -debug to shims when its own log level is debug.
    logging::init(if args.iter().any(|a| a == "-debug") { "debug" } else { "warn" });
    if shim_protocol::is_containerd_invocation(&args) {
        return exit::report(shim_protocol::run(&args));
    }
    exit::report(cli::run())
}
