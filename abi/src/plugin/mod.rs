//! The plugin author's side of the ABI: implement [`Engine`], then export it with
//! [`export_plugin!`](crate::export_plugin). Plugin authors write no `unsafe`.
//!
//! The export layer (in `export.rs`) turns the C calls into calls on your engine,
//! catches every panic at the boundary (it becomes `SHIM_WASM_ERR_PANIC`), sends
//! `tracing` events to the shim's log, and wraps precompiled artifacts with their cache
//! key so a stale or foreign artifact is refused before your engine sees it.
//!
//! ```
//! use shim_wasm_abi::plugin::{Engine, PluginError, RunRequest};
//! use shim_wasm_abi::Capabilities;
//!
//! struct Echo;
//!
//! impl Engine for Echo {
//!     const NAME: &'static str = "echo";
//!     const ENGINE_VERSION: &'static str = "1.0.0";
//!     const PLUGIN_VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     const CAPABILITIES: Capabilities = Capabilities::WASI_P1;
//!
//!     fn new(_settings: &str) -> Result<Self, PluginError> {
//!         Ok(Echo)
//!     }
//!
//!     fn run(&self, request: RunRequest<'_>) -> Result<i32, PluginError> {
//!         Ok(request.args.len() as i32)
//!     }
//! }
//!
//! shim_wasm_abi::export_plugin!(Echo);
//! ```

mod artifact;
mod cpu;
pub mod entry;
mod error;
#[doc(hidden)]
pub mod export;
mod log;
mod memory;
pub mod proposals;
#[cfg(feature = "wasi-preview1")]
pub mod wasi_preview1;

use std::os::fd::BorrowedFd;

pub use cpu::{cpu_fingerprint, host_key};
pub use error::PluginError;
pub use memory::MemoryCap;
pub use proposals::Proposal;

use crate::{Capabilities, ModuleKind};

/// An engine's message as one line: engines put backtraces and causes on lines of their
/// own, and the shim reports one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A text-format (`.wat`) error as one line. The wat crate draws the offending line under
/// the message (five lines, `--> <anon>:3:5` among them), or for a column past 500 ends
/// the message with `at <anon>:1:812`; the shim reports
/// "text format: expected `(` at line 3, column 5".
pub fn one_line_text_error(rendered: &str) -> String {
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or_default().trim();
    let line_and_column = |place: &str| {
        let mut parts = place.rsplitn(3, ':');
        let (column, line) = (parts.next()?, parts.next()?);
        (column.parse::<u64>().is_ok() && line.parse::<u64>().is_ok())
            .then(|| format!(" at line {line}, column {column}"))
    };
    let drawn = lines.find_map(|l| l.trim().strip_prefix("--> ")).and_then(line_and_column);
    let (message, at) = match drawn {
        Some(at) => (first, at),
        None => match first.rsplit_once(" at ").and_then(|(m, p)| Some((m, line_and_column(p)?))) {
            Some((message, at)) => (message, at),
            None => (first, String::new()),
        },
    };
    format!("text format: {message}{at}")
}

/// Gives the memory the allocator holds free back to the kernel. Call it after compiling
/// a module, before running it: the compiler's garbage would otherwise mostly stay in the
/// container's memory for its whole life (in the arenas of the compiler's threads, which
/// glibc gives back only from their top); 0.33 MiB per container with wasmtime.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's malloc_trim takes no pointer and may be called at any time.
        unsafe { malloc_trim(0) };
    }
}

/// A WebAssembly engine behind the plugin ABI.
///
/// One value is created per `engine_new` call from the engine's settings; the shim calls
/// its methods from one thread at a time.
pub trait Engine: Sized + Send + Sync + 'static {
    /// The engine's plain name (`[a-z0-9][a-z0-9_-]*`); the plugin file is `NAME.so`.
    const NAME: &'static str;
    /// The engine's own version, for example the wasmtime crate version.
    const ENGINE_VERSION: &'static str;
    /// The plugin's version (usually `env!("CARGO_PKG_VERSION")`).
    const PLUGIN_VERSION: &'static str;
    /// What the engine really supports; the shim refuses requests outside it.
    const CAPABILITIES: Capabilities;
    /// The WebAssembly proposals beyond 1.0 the engine runs, as the plugin configures it.
    /// When the engine refuses a module that needs another one, the export layer says
    /// which ("engine wamr does not support the tail calls proposal"). Declare all of
    /// [`Proposal::ALL`] to keep the engine's own messages. Keep it true: the
    /// conformance tests run a module per proposal on every engine.
    const PROPOSALS: &'static [Proposal] = &[];

    /// Creates an engine from its settings: a TOML table as text, empty for defaults.
    /// Unknown or invalid settings are an [`PluginError::invalid_argument`].
    fn new(settings: &str) -> Result<Self, PluginError>;

    /// Tells what `bytes` are. The default recognises binary modules, components and
    /// text format by their first bytes.
    fn detect(&self, bytes: &[u8]) -> ModuleKind {
        ModuleKind::sniff(bytes)
    }

    /// The part of the cache key that depends on this engine's configuration and the
    /// host CPU. The export layer prefixes engine name and versions.
    fn cache_key(&self) -> Result<String, PluginError> {
        Err(PluginError::unsupported(Self::NAME, "precompilation"))
    }

    /// Compiles a module or component into the engine's native artifact.
    fn precompile(&self, _bytes: &[u8]) -> Result<Vec<u8>, PluginError> {
        Err(PluginError::unsupported(Self::NAME, "precompilation"))
    }

    /// Runs a program to completion and returns its exit status. A trap is
    /// [`PluginError::trap`].
    fn run(&self, request: RunRequest<'_>) -> Result<i32, PluginError>;

    /// Since ABI 1.2, for engines that declare [`Capabilities::HTTP_SERVE`]: serves a
    /// `wasi:http/proxy` component on `request.listen` until `request.stop` is readable,
    /// then lets the requests in flight finish and returns 0.
    fn serve(&self, _request: ServeRequest<'_>) -> Result<i32, PluginError> {
        Err(PluginError::unsupported(Self::NAME, "serving wasi:http components"))
    }
}

/// One request to serve a component over HTTP, borrowed from the host for the call.
#[derive(Debug)]
pub struct ServeRequest<'a> {
    /// The component and what every instance gets (`entry` is `None`).
    pub run: RunRequest<'a>,
    /// Where to listen, checked to be `IP:PORT`.
    pub listen: std::net::SocketAddr,
    /// Readable once the host wants the server to stop; owned by the host.
    pub stop: BorrowedFd<'a>,
}

/// What to run: source bytes, or an artifact from [`Engine::precompile`] whose cache key
/// the export layer has already checked.
#[derive(Debug, Clone, Copy)]
pub enum ModuleSource<'a> {
    /// A core module, component, or text format, as given.
    Bytes(&'a [u8]),
    /// The engine's own precompiled bytes (the key envelope removed).
    Precompiled(&'a [u8]),
}

/// A directory the program sees.
#[derive(Debug, Clone, Copy)]
pub struct Preopen<'a> {
    pub host_path: &'a str,
    pub guest_path: &'a str,
}

/// One request to run a WASI program, borrowed from the host for the call.
#[derive(Debug)]
pub struct RunRequest<'a> {
    pub module: ModuleSource<'a>,
    /// The function to call; `None` for the default (`_start`, `wasi:cli/run`).
    pub entry: Option<&'a str>,
    /// The program's working directory, as the program sees paths; `None` when the host
    /// gives none (a 1.0 host; `run`, as `wasmtime run` gives none). WASI preview 1 has
    /// no working directory; components get it as `wasi:cli/environment.initial-cwd`.
    pub cwd: Option<&'a str>,
    /// Arguments, `args[0]` being the program name.
    pub args: Vec<&'a str>,
    /// Environment as `(key, value)` pairs.
    pub env: Vec<(&'a str, &'a str)>,
    pub preopens: Vec<Preopen<'a>>,
    /// Standard streams; owned by the host: `try_clone_to_owned` them to keep them.
    pub stdin: BorrowedFd<'a>,
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
}

#[cfg(test)]
mod text_error_tests {
    use super::one_line_text_error;

    #[test]
    fn drawn_and_long_line_forms() {
        let drawn = "expected `(`\n     --> <anon>:3:5\n      |\n    3 |     i32.const))\n      |     ^";
        assert_eq!(one_line_text_error(drawn), "text format: expected `(` at line 3, column 5");
        let long = "unknown operator at <anon>:1:812";
        assert_eq!(one_line_text_error(long), "text format: unknown operator at line 1, column 812");
        assert_eq!(one_line_text_error("bad utf-8"), "text format: bad utf-8");
    }
}
