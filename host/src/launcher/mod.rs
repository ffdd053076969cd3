//! Launchers: long-lived, single-threaded processes that fork a worker per container
//! operation, so that the shim server never clones, never changes its working directory
//! and never waits for a child it did not reap itself.
//!
//! ```text
//! shim server (multi-threaded)                 launcher (single-threaded, one per engine
//!   Create / Start / Delete / Exec                plugin, plus one with no plugin)
//!   ── control channel: one datagram ──────────▶  recvmsg → fork ──▶ worker (single-threaded)
//!      (request stream + stdio descriptors)                             reads the request
//!   ── request stream: JSON request ───────────────────────────────────▶ libcontainer create,
//!   ◀─ request stream: JSON reply (pid or error) ─────────────────────── start, delete, exec;
//!                                                                         exits
//! ```
//!
//! - A launcher for an engine has the engine's plugin loaded (`dlopen`, entry called,
//!   checked) once; every container's init process inherits it through fork and clone, so a
//!   container costs no exec of the shim binary and no plugin load. The launcher never
//!   creates an engine (engines may start threads): the container's init process does,
//!   inside the container, before it waits for Start.
//! - The launcher with no plugin creates native containers (and reports engine errors for
//!   wasm ones when no plugin could be loaded), and runs every Start and Delete: its
//!   workers wait for the OCI hooks libcontainer spawns, which the server's reaper must
//!   never see. It also starts exec processes in native containers (libcontainer's
//!   tenant builder clones them and changes the working directory on the way).
//! - Workers are their own process group and end themselves (and their hooks) at the
//!   request's deadline; the launcher lets the kernel reap them (`SIGCHLD` ignored).
//! - A plugin file that changes on disk (a package upgrade) gets a new launcher; the old
//!   one exits when its control channel closes.
//!
//! [`pool`] is the server's side, [`process`] the launcher and its workers, [`channel`]
//! the transport between them.

pub mod channel;
pub mod pool;
pub mod process;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::container::create::CreateRequest;

/// One operation for a worker.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Create a container; its stdin, stdout and stderr come with the request.
    Create(CreateRequest),
    /// Let a created container's process run (and run the poststart hooks).
    Start { state_root: PathBuf, id: String },
    /// Remove what is left of a container: its processes, cgroup (also one a failed
    /// create left without state), state, and run the poststop hooks.
    Delete { state_root: PathBuf, id: String, cgroups_path: Option<String> },
    /// Start a process in a running native container: `process` is the runtime-spec
    /// Process (JSON) containerd sent; its stdin, stdout and stderr come with the request;
    /// with a terminal, the master end goes to `console_socket`.
    Exec { state_root: PathBuf, id: String, process: String, console_socket: Option<PathBuf> },
}

/// A request and when the worker must be done with it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// On `CLOCK_MONOTONIC` (one clock for the server and its workers), in nanoseconds:
    /// the worker ends itself at that instant, however late it read the request.
    pub end_ns: u64,
    pub request: Request,
}

/// `CLOCK_MONOTONIC` now, in nanoseconds (the clock of [`Envelope::end_ns`]).
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// A worker's answer: the process it made, or one error line.
pub type Reply = Result<Made, String>;

/// The process a worker made: a create's init process, an exec's process (pid 0 for
/// start and delete).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Made {
    pub pid: u32,
    /// The container's process runs a wasm module in an engine (no exec into it).
    pub wasm: bool,
}
