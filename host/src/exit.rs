//! How the shim ends: one error line on stderr and an exit status that tells the kind of
//! failure. A program may exit with any of these statuses itself (as a native one may);
//! then there is no error line.
//!
//! | status | meaning |
//! | --- | --- |
//! | the program's own | the program ran and exited (`proc_exit`, return from `_start`) |
//! | 125 | the shim or the plugin failed (config, discovery, loading, engine error) |
//! | 126 | the module cannot be run (not wasm, unsupported kind, bad artifact or entry) |
//! | 134 | the program trapped (like a native process that aborts) |
//! | 128+N | the engine process was killed by signal N (a crash, or a forwarded signal) |

use std::io::Write;
use std::process::ExitCode;

use shim_wasm_abi::Status;

pub const SHIM_FAILURE: u8 = 125;
pub const CANNOT_RUN: u8 = 126;
pub const TRAPPED: u8 = 134;

/// A failure with the exit status it should end the process with.
#[derive(Debug)]
pub struct Failure {
    pub status: u8,
    pub message: String,
}

impl Failure {
    pub fn new(status: u8, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// The exit status for a failed plugin call.
    pub fn from_plugin(status: Status, message: impl Into<String>) -> Self {
        let code = match status {
            Status::Trap => TRAPPED,
            Status::InvalidModule
            | Status::Unsupported
            | Status::ArtifactMismatch
            | Status::InvalidArgument => CANNOT_RUN,
            Status::Io | Status::Panic | Status::Internal | Status::Unknown(_) => SHIM_FAILURE,
        };
        Self::new(code, message)
    }
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::new(SHIM_FAILURE, e.to_string())
    }
}

/// What a command returns: the exit status to end with.
pub type Outcome = Result<u8, Failure>;

/// Prints the failure, if any, as one line and turns the outcome into the exit status.
pub fn report(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(status) => ExitCode::from(status),
        Err(failure) => {
            // One line, whatever the plugin sent: callers (containerd, CRI) show one line.
            let message = failure.message.split_whitespace().collect::<Vec<_>>().join(" ");
            // Never `eprintln!`: it panics when stderr is gone.
            let _ = writeln!(std::io::stderr(), "containerd-shim-wasm: error: {message}");
            ExitCode::from(failure.status)
        }
    }
}
