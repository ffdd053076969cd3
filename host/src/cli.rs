//! The operator command line: `--version`, `engines`, `run`, `compile`, and the hidden
//! engine-process entry points the shim spawns itself.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::engine_process;
use crate::exit::Outcome;

#[derive(Debug, Parser)]
#[command(
    name = "containerd-shim-wasm-v1",
    about = "containerd shim for WebAssembly: one binary, engines loaded as plugins",
    long_about = "containerd shim for WebAssembly (runtime type io.containerd.wasm.v1).\n\n\
        containerd starts this binary to run containers; operators use the subcommands \
        below to inspect the installed engine plugins and to run a module through one \
        without containerd.\n\n\
        Config file: /etc/containerd-shim-wasm/config.toml, or the file named by \
        CONTAINERD_SHIM_WASM_CONFIG. Logs: RUST_LOG (default warn).",
    disable_version_flag = true
)]
pub struct Cli {
    /// Print the shim version, git revision and the engine ABI versions it speaks
    #[arg(short = 'V', long)]
    version: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List every engine plugin found, with its versions and capabilities, or the reason
    /// it was refused
    Engines {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Run a WebAssembly module through an engine plugin, without containerd
    ///
    /// The module runs in a child process; stdio is passed through and its exit status
    /// becomes this command's. Other statuses: 125 shim or plugin failure, 126 the module
    /// cannot be run, 134 trap, 128+N engine process killed by signal N. A component that
    /// exports wasi:http/incoming-handler (and not wasi:cli/run) is served over HTTP on
    /// the address in its WASMTIME_HTTP_PROXY_SOCKET_ADDR (--env; default 0.0.0.0:8080)
    /// until SIGTERM or Ctrl-C, which lets the requests in flight finish (status 0).
    #[command(override_usage = "containerd-shim-wasm-v1 run [OPTIONS] <MODULE> [ARGS]...")]
    Run(RunArgs),
    /// Precompile a module for an engine; `run` accepts the artifact in its place
    Compile {
        #[command(flatten)]
        engine: EngineArgs,
        /// Where to write the artifact
        #[arg(short, long)]
        output: PathBuf,
        /// The module or component (binary or text format)
        module: PathBuf,
    },
    /// (internal) describe one plugin, in a process of its own
    #[command(name = "__engine-probe", hide = true)]
    EngineProbe { plugin: PathBuf },
    /// (internal) run or precompile one module, in a process of its own (request on fd 3)
    #[command(name = "__engine", hide = true)]
    Engine,
    /// (internal) a launcher: forks container workers for the shim server
    #[command(name = "__launcher", hide = true)]
    Launcher { plugin: Option<PathBuf> },
}

/// Which engine, and its settings.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Engine name (a plugin `NAME.so` in the engine directories); defaults to the
    /// config file's default_engine
    #[arg(short, long, value_name = "NAME")]
    pub engine: Option<String>,
    /// Engine setting KEY=VALUE (VALUE is a TOML value, or else a string); overrides
    /// the config file's [engines.NAME] table
    #[arg(short, long = "setting", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Make host directory HOST visible to the program as GUEST (default: the same path)
    #[arg(long = "dir", value_name = "HOST[:GUEST]")]
    pub dirs: Vec<String>,
    /// Set an environment variable for the program (the host's environment is not passed)
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Call this exported function instead of `_start`
    #[arg(long, value_name = "FUNCTION")]
    pub entry: Option<String>,
    /// The module, component, text format file or precompiled artifact, then the
    /// program's arguments: everything after MODULE goes to the program unchanged,
    /// options and `--` included (as `wasmtime run` does)
    #[arg(
        value_name = "MODULE",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    program: Vec<String>,
}

impl RunArgs {
    /// The module file.
    pub fn module(&self) -> PathBuf {
        PathBuf::from(&self.program[0])
    }

    /// The program's arguments after its name.
    pub fn args(&self) -> &[String] {
        &self.program[1..]
    }
}

/// Parses the command line and runs the command.
pub fn run() -> Outcome {
    let cli = Cli::parse();
    if cli.version {
        quiet_on_closed_stdout();
        return commands::version::print();
    }
    match cli.command {
        None => {
            use clap::CommandFactory;
            quiet_on_closed_stdout();
            Cli::command().print_help()?;
            Ok(2)
        }
        Some(Command::Engines { json }) => {
            quiet_on_closed_stdout();
            commands::engines::list(json)
        }
        Some(Command::Run(args)) => commands::run::run(args),
        Some(Command::Compile { engine, output, module }) => {
            commands::compile::compile(engine, &module, &output)
        }
        Some(Command::EngineProbe { plugin }) => engine_process::child::probe(&plugin),
        Some(Command::Engine) => engine_process::child::run(),
        Some(Command::Launcher { plugin }) => crate::launcher::process::run(plugin.as_deref()),
    }
}

/// `--version | head -1` and the like: a reader that goes away ends a command that only
/// prints as it ends coreutils (SIGPIPE), not with Rust's "failed printing to stdout"
/// panic and backtrace. Only for those commands, set before they start any thread, and
/// which exit after printing; the server, launchers and engine processes keep SIGPIPE
/// ignored.
fn quiet_on_closed_stdout() {
    // SAFETY: restores SIGPIPE's default disposition; no other thread exists yet.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}
