//! Exec processes: `kubectl exec`, exec probes and `ctr task exec` into a running native
//! container. Exec records the process (TaskExecAdded), Start runs it in a launcher
//! worker (TaskExecStarted), and Kill, Wait, State and Delete take its exec id; its exit
//! comes through the reaper as a TaskExit with the exec id.
//!
//! With a terminal, the process's pseudo-terminal is served by [`super::terminal`].
//!
//! A wasm container's process is the engine running the module: there is no native
//! program to join, so Exec into one is refused with the reason.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use containerd_shim::api::{DeleteResponse, Empty, ExecProcessRequest, StartResponse, StateResponse, Status};

use super::create::pidfd_open;
use super::error::TaskError;
use super::table::{ExecRecord, Owner, StartedExec};
use super::terminal::Terminal;
use super::{TaskService, run, stdio};
use crate::launcher::Request;

/// Starting an exec process may take this long unless containerd says less.
const EXEC_BOUND: Duration = Duration::from_secs(60);

pub fn not_found(id: &str, exec_id: &str) -> TaskError {
    TaskError::NotFound(format!("{id}: exec {exec_id}"))
}

/// Exec: records the process to start; checks what can be checked now.
pub fn add(service: &TaskService, req: &ExecProcessRequest) -> Result<Empty, TaskError> {
    let (id, exec_id) = (&req.id, &req.exec_id);
    if exec_id.is_empty() {
        return Err(TaskError::InvalidArgument(format!("exec into task {id}: the exec id is empty")));
    }
    let task = service.record(id)?;
    if task.wasm {
        return Err(TaskError::FailedPrecondition(format!(
            "exec {exec_id} into task {id}: the container runs a WebAssembly module in the engine, so there \
             is no native program to join; exec into a native container of the pod instead (a sidecar)"
        )));
    }
    let process = process_spec(id, exec_id, req)?;
    let record = ExecRecord {
        process,
        stdin: req.stdin.clone(),
        stdout: req.stdout.clone(),
        stderr: req.stderr.clone(),
        terminal: req.terminal,
        console: None,
        pid: 0,
        starting: false,
        pidfd: None,
        exit: None,
    };
    service.table().add_exec(id, exec_id, record)?;
    service.events.task_exec_added(id, exec_id);
    Ok(Empty::new())
}

/// The runtime-spec Process containerd sent, checked to be one.
fn process_spec(id: &str, exec_id: &str, req: &ExecProcessRequest) -> Result<String, TaskError> {
    let bad = |why: String| TaskError::InvalidArgument(format!("exec {exec_id} into task {id}: {why}"));
    let any = req.spec.as_ref().ok_or_else(|| bad("the request carries no process spec".into()))?;
    let process: serde_json::Value = serde_json::from_slice(&any.value)
        .map_err(|e| bad(format!("the process spec is not a runtime-spec Process in JSON: {e}")))?;
    let has_args = process["args"].as_array().is_some_and(|args| !args.is_empty());
    if !has_args {
        return Err(bad("the process spec has no args: name the program to run".into()));
    }
    if process["terminal"].as_bool().unwrap_or(false) != req.terminal {
        return Err(bad(format!(
            "the request asks for {} terminal and the process spec for {}: they must agree",
            if req.terminal { "a" } else { "no" },
            if req.terminal { "none" } else { "one" }
        )));
    }
    Ok(String::from_utf8_lossy(&any.value).into_owned())
}

/// Start of an exec: the process joins the running container.
pub fn start(
    service: &TaskService,
    id: &str,
    exec_id: &str,
    deadline: Option<Duration>,
) -> Result<StartResponse, TaskError> {
    let began = Instant::now();
    let op = service.record(id)?.op;
    let _one_at_a_time = op.lock().unwrap_or_else(|e| e.into_inner());
    let task = service.record(id)?;
    let exec = task.execs.get(exec_id).ok_or_else(|| not_found(id, exec_id))?;
    if !task.started || task.exit.is_some() {
        return Err(TaskError::FailedPrecondition(format!(
            "exec {exec_id} into task {id}: the container is not running"
        )));
    }
    if task.paused {
        return Err(TaskError::FailedPrecondition(format!(
            "exec {exec_id} into task {id}: the container is paused; resume it first"
        )));
    }
    let owner = Owner { id: id.to_string(), exec_id: exec_id.to_string() };
    if !service.table().begin_exec_start(&owner) {
        return Err(TaskError::FailedPrecondition(format!("exec {exec_id} of task {id} is already started")));
    }
    let made = run_in_worker(service, id, exec_id, exec, deadline);
    let (pid, console) = match made {
        Ok(made) => made,
        Err(e) => {
            service.table().exec_start_failed(&owner);
            return Err(e);
        }
    };
    {
        // Under the table lock: TaskExecStarted before the exec's TaskExit.
        let mut table = service.table();
        let started =
            StartedExec { pid, pidfd: pidfd_open(pid).map(Arc::new), console: console.map(Arc::new) };
        match table.exec_started(&owner, started, began) {
            Ok(exited) => {
                service.events.task_exec_started(id, exec_id, pid);
                if let Some(exit) = exited {
                    service.events.task_exit(id, exec_id, pid, &exit);
                }
            }
            Err(()) => {
                // Cannot happen while Start holds the task's op lock; never leave an
                // untracked process behind if it does.
                // SAFETY: kill(2) of the process this start just made.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                return Err(not_found(id, exec_id));
            }
        }
    }
    service.table_changed.notify_all();
    tracing::info!(%id, %exec_id, pid, "exec process started");
    let mut response = StartResponse::new();
    response.pid = pid;
    Ok(response)
}

/// The exec's process, started in a worker: its pid, and with a terminal the terminal,
/// served from now on.
fn run_in_worker(
    service: &TaskService,
    id: &str,
    exec_id: &str,
    exec: &ExecRecord,
    deadline: Option<Duration>,
) -> Result<(u32, Option<Terminal>), TaskError> {
    let began = Instant::now();
    let (console, stdio) = stdio::for_process(exec.terminal, &exec.stdin, &exec.stdout, &exec.stderr)?;
    let request = Request::Exec {
        state_root: service.state_root.clone(),
        id: id.to_string(),
        process: exec.process.clone(),
        console_socket: console.as_ref().map(|c| c.path.clone()),
    };
    // What is left of the deadline after waiting for containerd's FIFO readers.
    let bound = super::bound(deadline.map(|d| d.saturating_sub(began.elapsed())), EXEC_BOUND);
    let pid = match service.launchers.call(None, request, &stdio, bound) {
        Ok(Ok(made)) => made.pid,
        Ok(Err(line)) => return Err(TaskError::FailedPrecondition(line)),
        Err(e) => return Err(TaskError::Internal(format!("exec {exec_id} into task {id}: {e}"))),
    };
    let Some(console) = console else { return Ok((pid, None)) };
    let served = stdio::serve(&console, &exec.stdin, &exec.stdout, format!("exec {exec_id} of task {id}"));
    match served {
        Ok(terminal) => Ok((pid, Some(terminal))),
        Err(e) => {
            // SAFETY: kill(2) of the process this start just made; it has no terminal.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            Err(e)
        }
    }
}

/// ResizePty of an exec with a terminal.
pub fn resize(
    service: &TaskService,
    id: &str,
    exec_id: &str,
    width: u32,
    height: u32,
) -> Result<Empty, TaskError> {
    let task = service.record(id)?;
    let exec = task.execs.get(exec_id).ok_or_else(|| not_found(id, exec_id))?;
    let console = exec.console.as_ref().ok_or_else(|| {
        TaskError::FailedPrecondition(format!("exec {exec_id} of task {id} has no terminal to resize"))
    })?;
    console.resize(width, height)?;
    Ok(Empty::new())
}

pub fn kill(service: &TaskService, id: &str, exec_id: &str, signal: u32) -> Result<Empty, TaskError> {
    let task = service.record(id)?;
    let exec = task.execs.get(exec_id).ok_or_else(|| not_found(id, exec_id))?;
    if exec.starting {
        return Err(TaskError::FailedPrecondition(format!(
            "exec {exec_id} of task {id} is being started; signal it once started"
        )));
    }
    if exec.exit.is_some() || exec.pid == 0 {
        // containerd treats "not found" on kill as "already finished".
        return Err(TaskError::NotFound(format!("{id}: exec {exec_id}: process not running")));
    }
    let pidfd = exec.pidfd.as_deref().map(AsRawFd::as_raw_fd);
    run::signal_process(&format!("exec {exec_id} of task {id}"), exec.pid, pidfd, signal)?;
    Ok(Empty::new())
}

/// Forgets an exec that has exited or never started.
pub fn delete(service: &TaskService, id: &str, exec_id: &str) -> Result<DeleteResponse, TaskError> {
    let mut table = service.table();
    let exec = table.get(id).ok_or_else(|| TaskError::NotFound(id.to_string()))?.execs.get(exec_id);
    let exec = exec.ok_or_else(|| not_found(id, exec_id))?;
    if exec.starting || (exec.pid != 0 && exec.exit.is_none()) {
        return Err(TaskError::FailedPrecondition(format!(
            "exec {exec_id} of task {id} is still running: kill it first"
        )));
    }
    let exec = table.remove_exec(id, exec_id).ok_or_else(|| not_found(id, exec_id))?;
    drop(table);
    service.table_changed.notify_all();
    let mut response = DeleteResponse::new();
    response.pid = exec.pid;
    if let Some(exit) = exec.exit {
        response.exit_status = exit.status;
        response.exited_at = Some(exit.at).into();
    }
    Ok(response)
}

pub fn state(service: &TaskService, id: &str, exec_id: &str) -> Result<StateResponse, TaskError> {
    let task = service.record(id)?;
    let exec = task.execs.get(exec_id).ok_or_else(|| not_found(id, exec_id))?;
    let mut response = StateResponse::new();
    response.id = exec_id.to_string();
    response.exec_id = exec_id.to_string();
    response.bundle = task.bundle.display().to_string();
    response.pid = exec.pid;
    response.stdin = exec.stdin.clone();
    response.stdout = exec.stdout.clone();
    response.stderr = exec.stderr.clone();
    response.status = match (&exec.exit, exec.pid) {
        (Some(_), _) => Status::STOPPED,
        (None, 0) => Status::CREATED,
        (None, _) if task.paused => Status::PAUSED,
        (None, _) => Status::RUNNING,
    }
    .into();
    if let Some(exit) = &exec.exit {
        response.exit_status = exit.status;
        response.exited_at = Some(exit.at.clone()).into();
    }
    Ok(response)
}
