//! Delete: stop what is left of the container, remove its state, cgroup and rootfs
//! mount, and report how it ended.

use std::time::{Duration, Instant};

use containerd_shim::api::DeleteResponse;

use super::error::TaskError;
use super::{Exit, TaskService, events, now};
use crate::container::{lifecycle, rootfs};

/// How long a killed container may take to be reaped before delete gives up waiting.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);

pub fn delete(service: &TaskService, id: &str) -> Result<DeleteResponse, TaskError> {
    let task = service.record(id)?;
    if task.exit.is_none() {
        // Created but never started, or still running: containerd wants it gone.
        let _ = lifecycle::kill(&service.state_root, id, libc::SIGKILL as u32, true);
        wait_reaped(service, id);
    }
    lifecycle::delete(&service.state_root, id)?;
    // The namespace's state directory goes with its last container.
    let _ = std::fs::remove_dir(&service.state_root);
    rootfs::unmount(&task.bundle);
    let _ = std::fs::remove_file(task.bundle.join(super::create::PID_FILE));
    let exit = service
        .tasks()
        .remove(id)
        .and_then(|t| t.exit)
        .unwrap_or(Exit { status: 128 + libc::SIGKILL as u32, at: now() });
    events::task_delete(service, id, task.pid, &exit);
    let mut response = DeleteResponse::new();
    response.pid = task.pid;
    response.exit_status = exit.status;
    response.exited_at = Some(exit.at).into();
    Ok(response)
}

fn wait_reaped(service: &TaskService, id: &str) {
    let deadline = Instant::now() + REAP_TIMEOUT;
    let mut tasks = service.tasks();
    while tasks.get(id).is_some_and(|t| t.exit.is_none()) && Instant::now() < deadline {
        tasks = service
            .changed
            .wait_timeout(tasks, Duration::from_millis(100))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
