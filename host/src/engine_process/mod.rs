//! Engine processes: every plugin is loaded in a process of its own, spawned from this
//! binary, so that one process never holds two engines and an engine that crashes ends
//! only its own process.
//!
//! ```text
//! operator / containerd-facing process          engine process (same binary)
//! ─────────────────────────────────             ─────────────────────────────────
//! config → discovery → trust checks   ──spawn──▶ trust checks → dlopen (RTLD_LOCAL)
//! waits ≤ 10 s for "loaded"            ◀─pipe───  → entry → engine_new
//! forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT         → detect → run
//! maps the exit or the crash signal   ◀─exit───  exit status = the program's
//! ```
//!
//! - [`spawn`]: the parent side (spawn, forward signals, report a crash).
//! - [`child`]: the child side (`__engine-probe`, `__engine`).

pub mod child;
pub mod spawn;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What an engine process is asked to do, passed as JSON in a memory file ([`REQUEST_FD`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct EngineRequest {
    /// The plugin file (already found and trust-checked by the parent).
    pub plugin: PathBuf,
    /// Engine settings as TOML text.
    pub settings: String,
    /// The module, component, text file or artifact.
    pub module: PathBuf,
    pub op: Operation,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Operation {
    /// Run the program with these arguments (`args[0]` is the program name).
    Run { entry: Option<String>, args: Vec<String>, env: Vec<String>, preopens: Vec<(String, String)> },
    /// Precompile the module into `output`.
    Compile { output: PathBuf },
}

/// Hidden subcommands of the binary that enter an engine process.
pub const PROBE_COMMAND: &str = "__engine-probe";
pub const ENGINE_COMMAND: &str = "__engine";
/// `__engine` reads its request (JSON) from this descriptor, a memory file: in argv, one
/// argument may not pass 128 KiB, and a program's args and env can (E2BIG).
pub const REQUEST_FD: i32 = 3;
/// `__engine` writes one byte to this descriptor (a pipe) once its plugin is loaded and
/// the engine made; the parent waits for it at most [`spawn::LOAD_BOUND`]: a plugin whose
/// initialisers block must not hang `run` or `compile`.
pub const LOADED_FD: i32 = 4;
