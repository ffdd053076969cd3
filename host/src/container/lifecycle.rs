//! Operations on an existing container, done by the shim in its own process through
//! libcontainer's saved state: start, kill, delete, pids, stats. None of them clones a
//! process or loads an engine.

use std::path::Path;

use libcgroups::common::{AnyCgroupManager, CgroupConfig, CgroupManager, create_cgroup_manager};
use libcgroups::stats::Stats;
use libcontainer::container::Container;
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

/// Sends `signal` to the container's init process, or to every process with `all`.
pub fn kill(state_root: &Path, id: &str, signal: u32, all: bool) -> Result<(), LifecycleError> {
    let signal = Signal::try_from(signal as i32).map_err(|e| error(id, "kill", e))?;
    load(state_root, id, "kill")?.kill(signal, all).map_err(|e| error(id, "kill", e))
}

/// Kills what is left and removes the container's state and cgroup. A container that
/// libcontainer no longer knows is already gone.
pub fn delete(state_root: &Path, id: &str) -> Result<(), LifecycleError> {
    if !state_root.join(id).exists() {
        return Ok(());
    }
    load(state_root, id, "delete")?.delete(true).map_err(|e| error(id, "delete", e))
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
