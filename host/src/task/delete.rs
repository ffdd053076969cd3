//! Delete: stop what is left of the container, remove its state, cgroup and rootfs
//! mount, and report how it ended.

use std::os::fd::AsRawFd;
use std::time::Duration;

use containerd_shim::api::DeleteResponse;

use super::error::TaskError;
use super::table::Exit;
use super::{TaskService, now, run};
use crate::container::{lifecycle, rootfs};
use crate::launcher::Request;

/// How long a killed container may take to be reaped before delete goes on without it.
const REAP_BOUND: Duration = Duration::from_secs(10);
/// libcontainer's delete (with the poststop hooks) may take this long.
const DELETE_BOUND: Duration = Duration::from_secs(60);

pub fn delete(
    service: &TaskService,
    id: &str,
    deadline: Option<Duration>,
) -> Result<DeleteResponse, TaskError> {
    let op = service.record(id)?.op;
    let _one_at_a_time = op.lock().unwrap_or_else(|e| e.into_inner());
    let task = service.record(id)?;
    if task.exit.is_none() {
        // Created but never started, or still running: containerd wants it gone.
        let pidfd = task.pidfd.as_deref().map(AsRawFd::as_raw_fd);
        let _ = run::signal_process(&format!("task {id}"), task.pid, pidfd, libc::SIGKILL as u32);
        if task.paused {
            super::update::thaw_after_kill(service, id);
        }
        if let Err(e) = service.wait_exit(id, "", Some(REAP_BOUND)) {
            tracing::warn!(%id, "delete: {e}; removing the container anyway");
        }
    }
    // libcontainer kills what is left and removes the cgroup and state; with poststop
    // hooks, in a worker, which waits for them.
    if task.hooks_on_delete {
        let bound = super::bound(deadline, DELETE_BOUND);
        let request = Request::Delete {
            state_root: service.state_root.clone(),
            id: id.to_string(),
            cgroups_path: task.cgroups_path.clone(),
        };
        match service.launchers.call(None, request, &[], bound) {
            Ok(Ok(_)) => {}
            Ok(Err(line)) => return Err(TaskError::Internal(line)),
            Err(e) => return Err(TaskError::Internal(format!("task {id}: cannot delete: {e}"))),
        }
    } else {
        lifecycle::remove(&service.state_root, id, task.cgroups_path.as_deref())?;
    }
    if task.rootfs_mounted {
        rootfs::unmount(&task.bundle);
    }
    // The exec processes died with the container: their TaskExits go before TaskDelete.
    if !service.wait_for_execs(id, REAP_BOUND) {
        tracing::warn!(%id, "delete: an exec process was not reaped in time; removing the task anyway");
    }
    let removed = service.table().remove(id);
    service.table_changed.notify_all();
    let exit = removed.and_then(|t| t.exit).unwrap_or(Exit { status: 128 + libc::SIGKILL as u32, at: now() });
    service.events.task_delete(id, task.pid, &exit);
    let mut response = DeleteResponse::new();
    response.pid = task.pid;
    response.exit_status = exit.status;
    response.exited_at = Some(exit.at).into();
    Ok(response)
}
