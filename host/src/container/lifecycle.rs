//! Operations on an existing container through libcontainer's saved state, and where
//! each may run. Kill, pause, resume, update, pids and stats signal, read or write the
//! cgroup (over D-Bus with the systemd driver) and libcontainer's state file, and never
//! spawn or change the working directory: the shim server does them. libcontainer's own start changes the working directory (to reach the
//! notify socket) and runs the poststart hooks; its delete runs the poststop hooks and
//! waits for them: those run in a launcher worker ([`start`], [`remove`]). A container
//! without such hooks is started and removed by the server itself
//! ([`start_without_hooks`], [`remove`] again: with no hook it spawns nothing).

use std::path::Path;

use libcgroups::common::{
    AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt, FreezerState, create_cgroup_manager,
};
use libcgroups::stats::Stats;
use std::os::unix::net::UnixStream;

use libcontainer::container::{Container, ContainerStatus};
use libcontainer::notify_socket::NOTIFY_FILE;
use libcontainer::oci_spec::runtime::LinuxResources;
use libcontainer::signal::Signal;

/// A failed container operation, as one line.
#[derive(Debug, thiserror::Error)]
#[error("container {id}: cannot {op}: {reason}")]
pub struct LifecycleError {
    pub id: String,
    pub op: &'static str,
    pub reason: String,
}

fn error(id: &str, op: &'static str, reason: impl std::fmt::Display) -> LifecycleError {
    LifecycleError { id: id.to_string(), op, reason: reason.to_string() }
}

fn load(state_root: &Path, id: &str, op: &'static str) -> Result<Container, LifecycleError> {
    Container::load(state_root.join(id)).map_err(|e| error(id, op, e))
}

/// Lets the created container's process run.
pub fn start(state_root: &Path, id: &str) -> Result<(), LifecycleError> {
    load(state_root, id, "start")?.start().map_err(|e| error(id, "start", e))
}

/// Starts a container that has no poststart hooks, without changing the working
/// directory: the notify socket is reached through `/proc/self/fd` (its path may be
/// longer than a socket address allows).
pub fn start_without_hooks(state_root: &Path, id: &str) -> Result<(), LifecycleError> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let mut container = load(state_root, id, "start")?;
    container.refresh_status().map_err(|e| error(id, "start", e))?;
    if !container.can_start() {
        return Err(error(id, "start", format!("it is {:?}", container.status())));
    }
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(state_root.join(id))
        .map_err(|e| error(id, "start", e))?;
    let socket = format!("/proc/self/fd/{}/{NOTIFY_FILE}", dir.as_raw_fd());
    let mut stream =
        UnixStream::connect(&socket).map_err(|e| error(id, "start", format!("notify socket: {e}")))?;
    stream.write_all(b"start container").map_err(|e| error(id, "start", format!("notify socket: {e}")))?;
    container.set_status(ContainerStatus::Running).save().map_err(|e| error(id, "start", e))
}

/// Freezes every process of the container (the cgroup freezer).
pub fn pause(state_root: &Path, id: &str) -> Result<(), LifecycleError> {
    load(state_root, id, "pause")?.pause().map_err(|e| error(id, "pause", e))
}

/// Thaws a paused container.
pub fn resume(state_root: &Path, id: &str) -> Result<(), LifecycleError> {
    load(state_root, id, "resume")?.resume().map_err(|e| error(id, "resume", e))
}

/// Thaws the container's cgroup whatever libcontainer's saved status says (a killed
/// container's processes die only once thawed).
pub fn thaw(state_root: &Path, id: &str) -> Result<(), LifecycleError> {
    cgroup(state_root, id, "thaw")?.freeze(FreezerState::Thawed).map_err(|e| error(id, "thaw", e))
}

/// Writes new resource limits to the container's cgroup: only what `resources` sets.
pub fn update(state_root: &Path, id: &str, resources: &LinuxResources) -> Result<(), LifecycleError> {
    let options =
        ControllerOpt { resources, disable_oom_killer: false, oom_score_adj: None, freezer_state: None };
    cgroup(state_root, id, "update resources")?.apply(&options).map_err(|e| error(id, "update resources", e))
}

/// Sends `signal` to the container's init process, or to every process with `all`.
pub fn kill(state_root: &Path, id: &str, signal: u32, all: bool) -> Result<(), LifecycleError> {
    match Signal::try_from(signal as i32) {
        Ok(signal) => load(state_root, id, "kill")?.kill(signal, all).map_err(|e| error(id, "kill", e)),
        // libcontainer knows only the standard signals; real-time ones go to every
        // process of the cgroup as runc sends them.
        Err(_) if all && (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&(signal as i32)) => {
            for pid in pids(state_root, id)? {
                // SAFETY: kill(2) on a process of this container's cgroup.
                unsafe { libc::kill(pid as i32, signal as i32) };
            }
            Ok(())
        }
        Err(e) => Err(error(id, "kill", e)),
    }
}

/// Kills what is left and removes the container's state and cgroup. A container that
/// libcontainer no longer knows is already gone.
pub fn delete(state_root: &Path, id: &str) -> Result<(), LifecycleError> {
    if !state_root.join(id).exists() {
        return Ok(());
    }
    load(state_root, id, "delete")?.delete(true).map_err(|e| error(id, "delete", e))
}

/// [`delete`]; and when libcontainer has no state for the container, the cgroup at
/// `cgroups_path` if it is there: a create that failed half-way may have made the cgroup
/// before libcontainer saved any state.
pub fn remove(state_root: &Path, id: &str, cgroups_path: Option<&str>) -> Result<(), LifecycleError> {
    if state_root.join(id).exists() {
        return delete(state_root, id);
    }
    if let Some(path) = cgroups_path.filter(|p| !p.contains(':')) {
        let config =
            CgroupConfig { cgroup_path: path.into(), systemd_cgroup: false, container_name: id.to_string() };
        if let Ok(manager) = create_cgroup_manager(config) {
            for pid in manager.get_all_pids().unwrap_or_default() {
                // SAFETY: kill(2); a process of this container's cgroup.
                unsafe { libc::kill(pid.as_raw(), libc::SIGKILL) };
            }
            if let Err(e) = manager.remove() {
                tracing::debug!(%id, "cgroup {path}: {e}");
            }
        }
    }
    Ok(())
}

fn cgroup(state_root: &Path, id: &str, op: &'static str) -> Result<AnyCgroupManager, LifecycleError> {
    let container = load(state_root, id, op)?;
    let config = container.spec().map_err(|e| error(id, op, e))?;
    create_cgroup_manager(CgroupConfig {
        cgroup_path: config.cgroup_path,
        systemd_cgroup: container.systemd(),
        container_name: id.to_string(),
    })
    .map_err(|e| error(id, op, e))
}

/// Every process in the container's cgroup.
pub fn pids(state_root: &Path, id: &str) -> Result<Vec<u32>, LifecycleError> {
    let pids = cgroup(state_root, id, "list processes")?
        .get_all_pids()
        .map_err(|e| error(id, "list processes", e))?;
    Ok(pids.into_iter().map(|p| p.as_raw() as u32).collect())
}

/// The container's cgroup statistics.
pub fn stats(state_root: &Path, id: &str) -> Result<Stats, LifecycleError> {
    cgroup(state_root, id, "read statistics")?.stats().map_err(|e| error(id, "read statistics", e))
}
