//! Creating one container, in a launcher's worker: a forked, single-threaded process
//! whose launcher has the chosen engine's plugin loaded (see [`crate::launcher`]).
//!
//! The worker mounts the rootfs, classifies the entrypoint and, for wasm, checks that the
//! engine can run it; then libcontainer builds the container and clones its init process
//! from the worker, so the init process inherits the mapped plugin (and its own shared
//! libraries, resolved on the host) before it is confined to the container's root. The
//! init process creates the engine and checks the settings before it waits for Start
//! ([`super::executor`]); an error it finds comes back through a pipe, as one line.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;
use serde::{Deserialize, Serialize};
use shim_wasm_abi::ModuleKind;

use super::entrypoint::{Entrypoint, EntrypointError, classify, split_entry};
use super::executor::{PLUGIN, ShimExecutor};
use super::inherited::Report;
use super::module::{ARTIFACTS_COME_FROM_THE_CACHE, ImageLookup, WasmSource};
use super::rootfs::{self, RootfsMount};
use super::view::ContainerView;
use super::{apparmor, cwd, env};
use crate::engine_process::child::check_capability;
use crate::exit::{CANNOT_RUN, Failure, SHIM_FAILURE};
use crate::images::Containerd;
use crate::launcher::Made;

#[derive(Debug, Serialize, Deserialize)]
pub struct CreateRequest {
    pub id: String,
    pub bundle: PathBuf,
    pub state_root: PathBuf,
    pub systemd_cgroup: bool,
    /// Snapshot mounts to put at `<bundle>/rootfs` first (none for `ctr run --rootfs`).
    pub rootfs: Vec<RootfsMount>,
    /// The engine chosen from the runtime options, the invoked name and the config file,
    /// or why none could be: an error only if the entrypoint turns out to be wasm.
    pub engine: Result<EngineChoice, String>,
    /// The containerd that asked, for the image's wasm layers and the precompile cache.
    pub containerd: Option<Containerd>,
    /// With a terminal: where the init process sends the pseudo-terminal's master end.
    pub console_socket: Option<PathBuf>,
}

/// The engine for a wasm entrypoint (its plugin is the launcher's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineChoice {
    pub name: String,
    /// Settings as TOML text.
    pub settings: String,
    /// Whether to use the precompile cache (the config file's `precompile_cache`).
    pub precompile_cache: bool,
}

/// Creates the container; returns its init process.
pub fn create(request: &CreateRequest, stdio: [OwnedFd; 3], deadline: Instant) -> Result<Made, Failure> {
    rootfs::mount_all(&request.bundle.join("rootfs"), &request.rootfs)
        .map_err(|e| Failure::new(SHIM_FAILURE, e))?;
    let executor = executor_for(request, deadline)?;
    let wasm = matches!(executor, ShimExecutor::Wasm { .. });
    ensure_single_threaded().map_err(|n| {
        Failure::from(format!(
            "the shim's worker has {n} threads where it must have one before it clones the container"
        ))
    })?;
    let [stdin, stdout, stderr] = stdio;
    std::fs::create_dir_all(&request.state_root)?;
    let report = Report::open()?;
    let built = ContainerBuilder::new(request.id.clone(), SyscallType::default())
        .with_executor(executor)
        .with_root_path(&request.state_root)?
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr)
        .with_console_socket(request.console_socket.as_deref())
        .validate_id()?
        .as_init(&request.bundle)
        .with_systemd(request.systemd_cgroup)
        .with_detach(true)
        .build();
    let container = built.map_err(|e| {
        // The init process's own words, when it said why it stopped.
        let reason = report.read().unwrap_or_else(|| e.to_string());
        Failure::new(SHIM_FAILURE, format!("cannot create container {}: {reason}", request.id))
    })?;
    let pid =
        container.pid().ok_or_else(|| Failure::from("libcontainer created the container without a pid"))?;
    Ok(Made { pid: pid.as_raw() as u32, wasm })
}

/// Native, or wasm in the launcher's engine.
fn executor_for(request: &CreateRequest, deadline: Instant) -> Result<ShimExecutor, Failure> {
    let spec = Spec::load(request.bundle.join("config.json"))
        .map_err(|e| Failure::new(SHIM_FAILURE, format!("cannot read the OCI spec: {e}")))?;
    let process = spec.process().as_ref();
    let args = process.and_then(|p| p.args().clone()).unwrap_or_default();
    let env = process.and_then(|p| p.env().clone()).unwrap_or_default();
    env::check(&env).map_err(|e| Failure::new(CANNOT_RUN, e))?;
    let profile = process.and_then(|p| p.apparmor_profile().as_deref());
    apparmor::check_host(profile).map_err(|e| Failure::new(CANNOT_RUN, e))?;
    let root = spec.root().as_ref().map_or_else(|| "rootfs".into(), |r| r.path().clone());
    let view = ContainerView::new(&request.bundle.join(root), &spec);
    cwd::ensure(&view, &spec).map_err(|e| Failure::new(SHIM_FAILURE, e))?;
    let mut image = ImageLookup::new(request.containerd.as_ref(), &request.id);
    let (module, entry, kind) = match classify(&view, &args, &env) {
        Ok(Entrypoint::Native) => return Ok(ShimExecutor::Native),
        Ok(Entrypoint::Wasm { module, entry, kind }) => (WasmSource::File(module), entry, kind),
        // Not in the rootfs: runwasi's images carry the module as a layer of its own.
        Err(not_there @ (EntrypointError::NotFound { .. } | EntrypointError::Missing)) => {
            let argv0 = args.first().map_or("", String::as_str);
            let (name, entry) = split_entry(argv0);
            match image.wasm_layer(name) {
                Ok(Some((module, ModuleKind::Artifact))) => {
                    return Err(Failure::new(
                        CANNOT_RUN,
                        format!(
                            "{} is a precompiled artifact; {ARTIFACTS_COME_FROM_THE_CACHE}",
                            module.describe()
                        ),
                    ));
                }
                Ok(Some((module, kind))) => (module, entry, kind),
                Ok(None) => return Err(Failure::new(CANNOT_RUN, not_there.to_string())),
                Err(e) => {
                    return Err(Failure::new(CANNOT_RUN, format!("{not_there}; and no wasm layer: {e}")));
                }
            }
        }
        Err(e) => return Err(Failure::new(CANNOT_RUN, e.to_string())),
    };
    let engine = request.engine.clone().map_err(|reason| Failure::new(SHIM_FAILURE, reason))?;
    let plugin = PLUGIN.get().ok_or_else(|| {
        Failure::from(format!("the {} engine's plugin is not loaded in this launcher", engine.name))
    })?;
    tracing::info!(id = %request.id, engine = %engine.name, %kind, "wasm container");
    check_capability(plugin, kind, Path::new(&module.describe()))?;
    let artifact = image.artifact(&module, &view, &engine, plugin, deadline);
    Ok(ShimExecutor::Wasm { settings: engine.settings, module, entry, artifact })
}

/// libcontainer clones the init process from this process, and a launcher forks its
/// workers: with a second thread, that thread's locks (the allocator's, say) could be
/// held forever in the copy. Returns the thread count when it is not one.
pub fn ensure_single_threaded() -> Result<(), usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let threads = status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok());
    match threads {
        Some(1) | None => Ok(()),
        Some(n) => Err(n),
    }
}
