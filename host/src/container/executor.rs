//! What libcontainer runs as the container's process, after namespaces, cgroups, mounts
//! and `pivot_root` are in place: the native entrypoint through libcontainer's default
//! executor (`execve`), or the wasm program through the engine plugin the launcher loaded
//! before the container's init process was cloned from its worker.

use std::cell::{OnceCell, RefCell};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use libcontainer::oci_spec::runtime::{LinuxSeccomp, Spec};
use libcontainer::workload::default::get_executor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use shim_wasm_abi::host::{EngineInstance, LoadedPlugin, RunSpec};
use shim_wasm_abi::{ModuleKind, Status};

use super::module::{ARTIFACTS_COME_FROM_THE_CACHE, WasmSource};
use super::{apparmor, capabilities, fault_signals, inherited};
use crate::exit::{CANNOT_RUN, Failure};
use crate::http_serve;

/// The plugin loaded by the launcher; inherited by its workers and their init processes.
pub static PLUGIN: OnceLock<LoadedPlugin> = OnceLock::new();

/// The container's workload.
#[derive(Debug, Clone)]
pub enum ShimExecutor {
    Native,
    /// A native process joining a running container (exec). libcontainer 0.7's tenant
    /// setup leaves the container's seccomp profile out, so it is loaded here, right
    /// before `execve`.
    Exec {
        seccomp: Option<LinuxSeccomp>,
    },
    Wasm {
        /// Engine settings as TOML text.
        settings: String,
        module: WasmSource,
        /// A non-default entry function.
        entry: Option<String>,
        /// The engine's compiled artifact of the module, when the cache had or made one.
        artifact: Option<Arc<File>>,
    },
}

impl Executor for ShimExecutor {
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        // From here on this is the container's process: the shim's logs stay out of it.
        crate::logging::release();
        let checked = match self {
            Self::Native | Self::Exec { .. } => get_executor().validate(&with_default_path(spec)),
            Self::Wasm { settings, module, artifact, .. } => {
                prepare_wasm(settings, module, artifact.as_deref(), spec)
            }
        };
        if let Err(e) = &checked {
            inherited::say(&e.to_string());
        }
        checked
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        match self {
            Self::Exec { seccomp } => {
                if let Some(seccomp) = seccomp {
                    load_seccomp(seccomp)?;
                }
                // SAFETY: as below.
                unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
                get_executor().exec(&with_default_path(spec))
            }
            Self::Native => {
                // The shim ignores SIGPIPE (Rust's runtime does); a native program gets the
                // default, as under runc.
                // SAFETY: resets one signal's disposition before execve.
                unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
                get_executor().exec(&with_default_path(spec))
            }
            Self::Wasm { module, entry, .. } => {
                let status = match run_wasm(spec, module, entry.as_deref()) {
                    Ok(code) => (code & 0xff) as u8,
                    Err(failure) => {
                        // The container's stderr is where the operator looks (ctr, kubectl logs).
                        let _ =
                            writeln!(std::io::stderr(), "containerd-shim-wasm: error: {}", failure.message);
                        failure.status
                    }
                };
                std::process::exit(i32::from(status));
            }
        }
    }
}

/// Loads the container's seccomp profile into an exec process whose capabilities are
/// already those of its spec. Without CAP_SYS_ADMIN the kernel takes a filter only under
/// `no_new_privileges`, so it is set then: the process is never left unfiltered.
fn load_seccomp(seccomp: &LinuxSeccomp) -> Result<(), ExecutorError> {
    let admin =
        caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_ADMIN).unwrap_or(false);
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) on this process only.
    if !admin && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(ExecutorError::Other(format!(
            "cannot set no_new_privileges for the seccomp profile: {e}"
        )));
    }
    match libcontainer::seccomp::initialize_seccomp(seccomp) {
        Ok(Some(notify_fd)) => {
            // No seccomp agent listens for an exec process: notified calls fail (ENOSYS).
            // SAFETY: the listener descriptor libseccomp just returned, closed once.
            unsafe { libc::close(notify_fd) };
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(ExecutorError::Other(format!("cannot load the container's seccomp profile: {e}"))),
    }
}

thread_local! {
    /// The engine the init process created before it waited for Start.
    static ENGINE: OnceCell<EngineInstance<'static>> = const { OnceCell::new() };
    /// The wasm layer and the artifact, mapped before the init process waited for Start.
    static MAPPED: RefCell<Option<Mapped>> = const { RefCell::new(None) };
    /// Where to serve the program, when it is a wasi:http component ([`http_serve`]),
    /// and the descriptor a termination signal makes readable to stop it.
    static SERVE: RefCell<Option<(String, OwnedFd)>> = const { RefCell::new(None) };
}

/// Copy-on-write mappings of the layer and the artifact. Their files may be blobs of
/// containerd's content store, shared by every namespace: the init process maps them and
/// closes the descriptors before the container's program runs, so nothing in the
/// container can reopen them for writing through `/proc/<pid>/fd`.
#[derive(Default)]
struct Mapped {
    layer: Option<memmap2::Mmap>,
    artifact: Option<memmap2::Mmap>,
}

fn map_private(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: a private, read-only mapping; containerd writes a blob once and renames it
    // into place, and a memory file is this container's own. A file truncated while
    // mapped would end this container (SIGBUS), nothing else.
    unsafe { memmap2::MmapOptions::new().map_copy_read_only(file) }
}

/// In the init process, before it reports ready and waits for Start: the module must be
/// there, and the engine is created now, so bad settings fail the create, not the start.
fn prepare_wasm(
    settings: &str,
    module: &WasmSource,
    artifact: Option<&File>,
    spec: &Spec,
) -> Result<(), ExecutorValidationError> {
    let invalid = ExecutorValidationError::ArgValidationError;
    // Before anything else, and before the engine can start a thread: from here on the
    // process holds what a native program would hold after execve.
    capabilities::as_after_execve().map_err(invalid)?;
    if let WasmSource::File(path) = module
        && !path.is_file()
    {
        return Err(invalid(format!("wasm module {} is missing from the container's root", path.display())));
    }
    let plugin = PLUGIN
        .get()
        .ok_or_else(|| invalid("no engine plugin was loaded before the container was created".into()))?;
    let mut mapped = Mapped::default();
    if let WasmSource::Layer { digest, file } = module {
        let layer = map_private(file).map_err(|e| invalid(format!("cannot map wasm layer {digest}: {e}")))?;
        mapped.layer = Some(layer);
        inherited::drop_in_init(file.as_raw_fd());
    }
    if let Some(artifact) = artifact {
        match map_private(artifact) {
            Ok(map) => mapped.artifact = Some(map),
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "containerd-shim-wasm: warning: cannot map the cached precompiled artifact ({e}); compiling the module"
                );
            }
        }
        inherited::drop_in_init(artifact.as_raw_fd());
    }
    // The host's files are mapped; before the engine can start a thread (a thread's
    // profile is its own), the AppArmor profile a native program would get at execve.
    let profile = spec.process().as_ref().and_then(|p| p.apparmor_profile().clone());
    apparmor::confine_now(profile.as_deref()).map_err(invalid)?;
    // Before the engine can start a thread (see the function).
    ignore_signals_pid1_drops();
    let engine = plugin.new_engine(settings).map_err(|e| invalid(e.to_string()))?;
    ENGINE.with(|cell| {
        let _ = cell.set(engine);
    });
    // After the engine installed its trap handlers (see the module).
    fault_signals::filter_sent_faults();
    let listen = serve_address(module, mapped.layer.as_deref(), spec, plugin).map_err(invalid)?;
    MAPPED.with(|cell| *cell.borrow_mut() = Some(mapped));
    // Before the init process waits for Start: a signal sent once containerd reports the
    // task running must find the handler in place. A served program stops gracefully.
    match listen {
        Some(listen) => {
            let stop = http_serve::stop_on_termination_signals()
                .map_err(|e| invalid(format!("cannot prepare the HTTP server's stop signal: {e}")))?;
            SERVE.with(|cell| *cell.borrow_mut() = Some((listen, stop)));
        }
        None => end_on_termination_signals(),
    }
    inherited::close_in_init();
    Ok(())
}

/// Where to serve the module, if it is a wasi:http component: decided at create, so an
/// engine that cannot serve it or a wrong address fails the create with one line.
fn serve_address(
    module: &WasmSource,
    layer: Option<&[u8]>,
    spec: &Spec,
    plugin: &LoadedPlugin,
) -> Result<Option<String>, String> {
    let file_map;
    let bytes: &[u8] = match (module, layer) {
        (_, Some(layer)) => layer,
        (WasmSource::File(path), None) => {
            // Mapped, not read: only the preamble and the section headers are touched.
            file_map = File::open(path).and_then(|file| map_private(&file)).ok();
            file_map.as_deref().unwrap_or_default()
        }
        (WasmSource::Layer { .. }, None) => &[],
    };
    let env = spec.process().as_ref().and_then(|p| p.env().clone()).unwrap_or_default();
    http_serve::listen_address(bytes, &env, plugin)
}

/// libcontainer looks the program up on `PATH` and refuses a spec without one, which
/// runc does not (`ctr run --rootfs` sets none): give it runc's default.
fn with_default_path(spec: &Spec) -> Spec {
    let mut spec = spec.clone();
    if let Some(process) = spec.process_mut().as_mut() {
        let mut env = process.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
            process.set_env(Some(env));
        }
    }
    spec
}

/// The wasm program runs as the container's PID 1, which the kernel shields from
/// signals it has no handler for; a module cannot install one. So the shim does: a
/// termination signal ends the container with status 128+N, as it would end a native
/// process that does not catch it.
fn end_on_termination_signals() {
    extern "C" fn end(signal: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: installs a handler that only calls _exit.
        unsafe { libc::signal(signal, end as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    }
}

/// Signals whose default action ends a process, that the kernel drops for a PID 1 with
/// no handler for them. Not among them: the job-control and fault signals, which the
/// kernel treats otherwise, and the termination signals, which have
/// [`end_on_termination_signals`]. (SIGXCPU and SIGXFSZ dump core, so the race below
/// spares them; listed anyway, as a PID 1 never gets them either.)
const DROPPED_FOR_PID1: [libc::c_int; 11] = [
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGSTKFLT,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGPIPE,
];

/// The kernel drops a signal sent to a PID 1 with no handler for it, but only when the
/// thread it looks at first (the main one) does not block the signal: glibc blocks every
/// signal in a thread while it creates another one, and such a signal then reaches a
/// thread that does not block it and ends the whole process. The engine starts its
/// threads (compiler, runtime) just after Start, exactly when containerd and kubelet send
/// signals; a wasm container died of a SIGUSR1 that way. Ignoring these signals gives the
/// program what a PID 1 gets anyway, whatever its threads are doing. An engine that uses
/// one of them (WAMR's SIGUSR1) installs its handler later, over this. A program that is
/// not PID 1 (a pod sharing one PID namespace) keeps the default, as a native one does.
fn ignore_signals_pid1_drops() {
    if std::process::id() != 1 {
        return;
    }
    let real_time = libc::SIGRTMIN()..=libc::SIGRTMAX();
    for signal in DROPPED_FOR_PID1.into_iter().chain(real_time) {
        // SAFETY: sets a signal's disposition to SIG_IGN; no handler code runs.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
}

/// Runs the program in the container's init process, on the container's stdio.
fn run_wasm(spec: &Spec, module: &WasmSource, entry: Option<&str>) -> Result<i32, Failure> {
    let process = spec.process().as_ref();
    let mut args: Vec<String> = process.and_then(|p| p.args().clone()).unwrap_or_default();
    if let Some(first) = args.first_mut()
        && let Some((name, _)) = first.rsplit_once('#')
        && entry.is_some()
    {
        *first = name.to_string();
    }
    // `NAME` alone is NAME with an empty value, as libcontainer takes it for a native
    // program; the engine ABI takes `KEY=VALUE` only.
    let env: Vec<String> = process
        .and_then(|p| p.env().clone())
        .unwrap_or_default()
        .into_iter()
        .map(|e| if e.contains('=') { e } else { format!("{e}=") })
        .collect();
    // The container's root is the program's root.
    let preopens = vec![("/".to_string(), "/".to_string())];
    let cwd = process.map(|p| p.cwd().to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let serve = SERVE.with(|cell| cell.take());
    let run = |bytes: &[u8]| {
        let run = RunSpec {
            module: bytes,
            entry,
            args: &args,
            env: &env,
            preopens: &preopens,
            cwd: &cwd,
            stdin: stdin.as_fd(),
            stdout: stdout.as_fd(),
            stderr: stderr.as_fd(),
        };
        ENGINE.with(|engine| match (engine.get(), &serve) {
            (Some(engine), Some((listen, stop))) => Ok(engine.serve(&run, listen, stop.as_fd())),
            (Some(engine), None) => Ok(engine.run(&run)),
            (None, _) => Err(Failure::from("the engine was not created before Start")),
        })
    };
    let mapped = MAPPED.with(|cell| cell.take()).unwrap_or_default();
    if let Some(bytes) = &mapped.artifact {
        match run(bytes)? {
            // The engine refused the artifact before running anything: compile the module.
            Err(e) if matches!(e.status, Status::ArtifactMismatch | Status::InvalidModule) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "containerd-shim-wasm: warning: the cached precompiled artifact was not usable ({e}); compiling the module"
                );
            }
            other => return other.map_err(|e| Failure::from_plugin(e.status, e.to_string())),
        }
    }
    let read;
    let bytes: &[u8] = match module {
        WasmSource::File(path) => {
            read = std::fs::read(path).map_err(|e| {
                Failure::new(CANNOT_RUN, format!("cannot read wasm module {}: {e}", path.display()))
            })?;
            &read
        }
        WasmSource::Layer { digest, .. } => match &mapped.layer {
            Some(layer) => layer,
            None => return Err(Failure::new(CANNOT_RUN, format!("wasm layer {digest} was not mapped"))),
        },
    };
    // The create refused an artifact; the file may have changed since (a volume another
    // container writes to). Engines load artifacts as native code: only the cache's run.
    if ModuleKind::sniff(bytes) == ModuleKind::Artifact {
        return Err(Failure::new(
            CANNOT_RUN,
            format!(
                "{} became a precompiled artifact after the container was created; {ARTIFACTS_COME_FROM_THE_CACHE}",
                module.describe()
            ),
        ));
    }
    run(bytes)?.map_err(|e| Failure::from_plugin(e.status, e.to_string()))
}
