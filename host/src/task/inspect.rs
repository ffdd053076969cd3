//! State, pids, stats and connect: what containerd and the kubelet read about a task.

use containerd_shim::api::{ConnectResponse, PidsResponse, StateResponse, StatsResponse, Status};
use containerd_shim::protos::types::task::ProcessInfo;

use super::TaskService;
use super::error::TaskError;
use crate::container::{lifecycle, metrics};

pub fn state(service: &TaskService, id: &str) -> Result<StateResponse, TaskError> {
    let task = service.record(id)?;
    let mut response = StateResponse::new();
    response.id = id.to_string();
    response.bundle = task.bundle.display().to_string();
    response.pid = task.pid;
    response.stdin = task.stdin;
    response.stdout = task.stdout;
    response.stderr = task.stderr;
    response.status = match (&task.exit, task.started) {
        (Some(_), _) => Status::STOPPED,
        (None, true) if task.paused => Status::PAUSED,
        (None, true) => Status::RUNNING,
        (None, false) => Status::CREATED,
    }
    .into();
    if let Some(exit) = task.exit {
        response.exit_status = exit.status;
        response.exited_at = Some(exit.at).into();
    }
    Ok(response)
}

pub fn pids(service: &TaskService, id: &str) -> Result<PidsResponse, TaskError> {
    service.record(id)?;
    let mut response = PidsResponse::new();
    response.processes = lifecycle::pids(&service.state_root, id)?
        .into_iter()
        .map(|pid| {
            let mut info = ProcessInfo::new();
            info.pid = pid;
            info
        })
        .collect();
    Ok(response)
}

pub fn stats(service: &TaskService, id: &str) -> Result<StatsResponse, TaskError> {
    service.record(id)?;
    let stats = lifecycle::stats(&service.state_root, id)?;
    let any = containerd_shim::util::convert_to_any(metrics::for_host(&stats))
        .map_err(|e| TaskError::Internal(format!("cannot encode metrics: {e}")))?;
    let mut response = StatsResponse::new();
    response.stats = Some(any).into();
    Ok(response)
}

pub fn connect(service: &TaskService, id: &str) -> Result<ConnectResponse, TaskError> {
    let task = service.record(id)?;
    let mut response = ConnectResponse::new();
    response.shim_pid = std::process::id();
    response.task_pid = task.pid;
    Ok(response)
}
