//! The create helper: `containerd-shim-wasm-v1 __container-create <request>`, started by
//! the shim for each container with the container's stdio on descriptors 3, 4 and 5.
//!
//! It runs in a fresh, single-threaded process: it mounts the rootfs, classifies the
//! entrypoint, and for a wasm container chooses the engine (runtime options → invoked
//! name → config default), loads its plugin and checks the settings by creating an
//! engine once; then libcontainer clones the container's init process from it. It exits
//! once the container is created; the init process is then reparented to the shim, which
//! is a child subreaper.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;
use serde::{Deserialize, Serialize};
use shimcfg::{ShimConfig, select_engine};

use super::entrypoint::{Entrypoint, classify};
use super::executor::{PLUGIN, ShimExecutor};
use super::rootfs::{self, RootfsMount};
use crate::engine_process::child::check_capability;
use crate::exit::{CANNOT_RUN, Failure, Outcome, SHIM_FAILURE};
use crate::plugins::discovery;
use crate::plugins::load::load_trusted;
use crate::shim_protocol::options::RawRuntimeOptions;

/// The hidden subcommand.
pub const COMMAND: &str = "__container-create";
/// Descriptors on which the helper receives the container's stdin, stdout, stderr.
pub const STDIO_FDS: [i32; 3] = [3, 4, 5];

#[derive(Debug, Serialize, Deserialize)]
pub struct CreateRequest {
    pub id: String,
    pub bundle: PathBuf,
    pub state_root: PathBuf,
    pub pid_file: PathBuf,
    pub systemd_cgroup: bool,
    /// Snapshot mounts to put at `<bundle>/rootfs` first (none for `ctr run --rootfs`).
    pub rootfs: Vec<RootfsMount>,
    /// containerd's runtime options (from the create request, or saved by `start`).
    pub options: RawRuntimeOptions,
    /// The name containerd invoked the shim as.
    pub argv0: String,
}

/// Body of `__container-create`.
pub fn run(request_json: &str) -> Outcome {
    let request: CreateRequest = serde_json::from_str(request_json)
        .map_err(|e| Failure::new(SHIM_FAILURE, format!("malformed create request: {e}")))?;
    rootfs::mount_all(&request.bundle.join("rootfs"), &request.rootfs)
        .map_err(|e| Failure::new(SHIM_FAILURE, e))?;
    let executor = executor_for(&request)?;
    // SAFETY: the shim passes the container's stdio on exactly these descriptors.
    let [stdin, stdout, stderr] = STDIO_FDS.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    std::fs::create_dir_all(&request.state_root)?;
    ContainerBuilder::new(request.id.clone(), SyscallType::default())
        .with_executor(executor)
        .with_root_path(&request.state_root)?
        .with_pid_file(Some(&request.pid_file))?
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr)
        .validate_id()?
        .as_init(&request.bundle)
        .with_systemd(request.systemd_cgroup)
        .with_detach(true)
        .build()
        .map_err(|e| Failure::new(SHIM_FAILURE, format!("cannot create container {}: {e}", request.id)))?;
    Ok(0)
}

/// Native, or wasm in the chosen engine, whose plugin is loaded here, before the clone.
fn executor_for(request: &CreateRequest) -> Result<ShimExecutor, Failure> {
    let spec = Spec::load(request.bundle.join("config.json"))
        .map_err(|e| Failure::new(SHIM_FAILURE, format!("cannot read the OCI spec: {e}")))?;
    let process = spec.process().as_ref();
    let args = process.and_then(|p| p.args().clone()).unwrap_or_default();
    let env = process.and_then(|p| p.env().clone()).unwrap_or_default();
    let root = spec.root().as_ref().map_or_else(|| "rootfs".into(), |r| r.path().clone());
    let root = request.bundle.join(root);
    let (module, entry, kind) =
        match classify(&root, &args, &env).map_err(|e| Failure::new(CANNOT_RUN, e.to_string()))? {
            Entrypoint::Native => return Ok(ShimExecutor::Native),
            Entrypoint::Wasm { module, entry, kind } => (module, entry, kind),
        };
    let config = ShimConfig::load()?;
    let options = request.options.parse()?;
    let selection = select_engine(&options, &request.argv0, &config)?;
    let plugin = discovery::find(&config, &selection.engine)?;
    tracing::info!(id = %request.id, engine = %selection.engine, source = ?selection.source, %kind, "wasm container");
    let loaded = load_trusted(&config, &plugin).map_err(|e| Failure::new(SHIM_FAILURE, e))?;
    let settings = toml::to_string(&selection.settings)?;
    // Bad settings fail the create, not the first start.
    drop(loaded.new_engine(&settings)?);
    check_capability(&loaded, kind, &module)?;
    let _ = PLUGIN.set(loaded);
    Ok(ShimExecutor::Wasm { settings, module, entry })
}
