//! Pause, resume and update: changing a running task's cgroup (the freezer, resource
//! limits), for wasm and native containers alike. Done in the server: libcgroups only
//! reads and writes cgroup files.

use containerd_shim::api::{Empty, UpdateTaskRequest};
use libcontainer::oci_spec::runtime::LinuxResources;

use super::TaskService;
use super::error::TaskError;
use crate::container::lifecycle;

/// Freezes every process of the task.
pub fn pause(service: &TaskService, id: &str) -> Result<Empty, TaskError> {
    let op = service.record(id)?.op;
    let _one_at_a_time = op.lock().unwrap_or_else(|e| e.into_inner());
    let task = service.record(id)?;
    if !task.started || task.exit.is_some() {
        return Err(TaskError::FailedPrecondition(format!(
            "task {id} is not running: only a started task that has not exited can be paused"
        )));
    }
    if task.paused {
        return Err(TaskError::FailedPrecondition(format!("task {id} is already paused")));
    }
    lifecycle::pause(&service.state_root, id)?;
    set_paused(service, id, true);
    service.events.task_paused(id);
    Ok(Empty::new())
}

/// Thaws a paused task.
pub fn resume(service: &TaskService, id: &str) -> Result<Empty, TaskError> {
    let op = service.record(id)?.op;
    let _one_at_a_time = op.lock().unwrap_or_else(|e| e.into_inner());
    let task = service.record(id)?;
    if !task.paused {
        return Err(TaskError::FailedPrecondition(format!("task {id} is not paused")));
    }
    lifecycle::resume(&service.state_root, id)?;
    set_paused(service, id, false);
    service.events.task_resumed(id);
    Ok(Empty::new())
}

/// A paused task was sent SIGKILL: its processes die only once thawed. Through the
/// cgroup itself: libcontainer's resume refuses a container whose init is already dead.
pub fn thaw_after_kill(service: &TaskService, id: &str) {
    match lifecycle::thaw(&service.state_root, id) {
        Ok(()) => set_paused(service, id, false),
        Err(e) => tracing::warn!(%id, "cannot thaw the killed container: {e}"),
    }
}

pub fn set_paused(service: &TaskService, id: &str, paused: bool) {
    if let Some(task) = service.table().get_mut(id) {
        task.paused = paused;
    }
}

/// Applies new resource limits (a runtime-spec LinuxResources, JSON) to the task's cgroup.
/// Only what the request sets changes; annotations are not used.
pub fn update(service: &TaskService, req: &UpdateTaskRequest) -> Result<Empty, TaskError> {
    let id = &req.id;
    let op = service.record(id)?.op;
    let _one_at_a_time = op.lock().unwrap_or_else(|e| e.into_inner());
    let task = service.record(id)?;
    if task.exit.is_some() {
        return Err(TaskError::FailedPrecondition(format!("task {id} has exited: nothing to update")));
    }
    let resources = resources(id, req)?;
    lifecycle::update(&service.state_root, id, &resources)?;
    tracing::info!(%id, "resources updated");
    Ok(Empty::new())
}

fn resources(id: &str, req: &UpdateTaskRequest) -> Result<LinuxResources, TaskError> {
    let any = req.resources.as_ref().ok_or_else(|| {
        TaskError::InvalidArgument(format!("update of task {id}: the request carries no resources"))
    })?;
    serde_json::from_slice(&any.value).map_err(|e| {
        TaskError::InvalidArgument(format!(
            "update of task {id}: the resources are not a runtime-spec LinuxResources in JSON ({}): {e}",
            any.type_url
        ))
    })
}
