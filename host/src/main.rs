//! `containerd-shim-wasm-v1`: the containerd shim for WebAssembly.
//!
//! Two kinds of callers: containerd, which drives the shim v2 protocol (Go-style flags
//! such as `-namespace ... start`, see [`shim_protocol`] and [`task`]), and operators, who
//! use the subcommands in [`cli`]. Engines are never linked: each is a plugin loaded in a
//! process of its own (a [`launcher`] for containers, an [`engine_process`] for `run`).

mod cli;
mod commands;
mod container;
mod engine_process;
mod exec_fd;
mod exit;
mod http_serve;
mod images;
mod launcher;
mod logging;
mod plugins;
mod shim_protocol;
mod task;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == launcher::process::COMMAND) {
        // Container init processes are cloned from its workers: logs stay off their stderr.
        logging::keep_off_stderr();
    }
    let from_containerd = shim_protocol::is_containerd_invocation(&args);
    // containerd passes -debug to shims when its own log level is debug.
    logging::init(if from_containerd && args.iter().any(|a| a == "-debug") { "debug" } else { "warn" });
    if from_containerd {
        return exit::report(shim_protocol::run(&args));
    }
    exit::report(cli::run())
}
