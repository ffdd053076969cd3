//! Start, kill and wait: the running part of a task's life.

use containerd_shim::api::{Empty, StartResponse, WaitResponse};

use super::error::TaskError;
use super::{TaskService, events};
use crate::container::lifecycle;

pub fn start(service: &TaskService, id: &str) -> Result<StartResponse, TaskError> {
    let task = service.record(id)?;
    if task.started {
        return Err(TaskError::FailedPrecondition(format!("task {id} is already started")));
    }
    if task.exit.is_some() {
        return Err(TaskError::FailedPrecondition(format!("task {id} has already exited")));
    }
    lifecycle::start(&service.state_root, id)?;
    if let Some(task) = service.tasks().get_mut(id) {
        task.started = true;
    }
    events::task_start(service, id, task.pid);
    let mut response = StartResponse::new();
    response.pid = task.pid;
    Ok(response)
}

pub fn kill(service: &TaskService, id: &str, signal: u32, all: bool) -> Result<Empty, TaskError> {
    let task = service.record(id)?;
    if task.exit.is_some() {
        // containerd treats "not found" on kill as "already finished".
        return Err(TaskError::NotFound(format!("task {id}: process already finished")));
    }
    lifecycle::kill(&service.state_root, id, signal, all)?;
    Ok(Empty::new())
}

pub fn wait(service: &TaskService, id: &str) -> Result<WaitResponse, TaskError> {
    let mut tasks = service.tasks();
    loop {
        let task = tasks.get(id).ok_or_else(|| TaskError::NotFound(id.to_string()))?;
        if let Some(exit) = &task.exit {
            let mut response = WaitResponse::new();
            response.exit_status = exit.status;
            response.exited_at = Some(exit.at.clone()).into();
            return Ok(response);
        }
        tasks = service.changed.wait(tasks).unwrap_or_else(|e| e.into_inner());
    }
}
