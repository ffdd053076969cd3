//! Start, kill and wait: the running part of a task's life.

use std::os::fd::AsRawFd;
use std::time::Duration;

use containerd_shim::api::{Empty, StartResponse, WaitResponse};

use super::TaskService;
use super::error::TaskError;
use crate::container::lifecycle;
use crate::launcher::Request;

/// A start (with its poststart hooks) may take this long unless containerd says less.
const START_BOUND: Duration = Duration::from_secs(60);

pub fn start(
    service: &TaskService,
    id: &str,
    deadline: Option<Duration>,
) -> Result<StartResponse, TaskError> {
    let op = service.record(id)?.op;
    let _one_at_a_time = op.lock().unwrap_or_else(|e| e.into_inner());
    let task = service.record(id)?;
    if task.started {
        return Err(TaskError::FailedPrecondition(format!("task {id} is already started")));
    }
    if task.exit.is_some() {
        return Err(TaskError::FailedPrecondition(format!("task {id} has already exited")));
    }
    service.table().begin_start(id);
    let started = if task.hooks_on_start {
        // In a worker, which waits for the poststart hooks libcontainer runs.
        let bound = super::bound(deadline, START_BOUND);
        let request = Request::Start { state_root: service.state_root.clone(), id: id.to_string() };
        match service.launchers.call(None, request, &[], bound) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(line)) => Err(TaskError::FailedPrecondition(line)),
            Err(e) => Err(TaskError::Internal(format!("task {id}: cannot start: {e}"))),
        }
    } else {
        lifecycle::start_without_hooks(&service.state_root, id)
            .map_err(|e| TaskError::FailedPrecondition(e.to_string()))
    };
    {
        // TaskStart before TaskExit, however fast the program ends.
        let mut table = service.table();
        let exited = table.end_start(id, started.is_ok());
        if started.is_ok() {
            service.events.task_start(id, task.pid);
        }
        if let Some(exit) = exited {
            service.events.task_exit(id, "", task.pid, &exit);
        }
    }
    started?;
    let mut response = StartResponse::new();
    response.pid = task.pid;
    Ok(response)
}

pub fn kill(service: &TaskService, id: &str, signal: u32, all: bool) -> Result<Empty, TaskError> {
    let op = service.record(id)?.op;
    let _one_at_a_time = op.lock().unwrap_or_else(|e| e.into_inner());
    let task = service.record(id)?;
    if task.exit.is_some() {
        // containerd treats "not found" on kill as "already finished".
        return Err(TaskError::NotFound(format!("task {id}: process already finished")));
    }
    if all {
        lifecycle::kill(&service.state_root, id, signal, true)?;
    } else {
        let pidfd = task.pidfd.as_deref().map(AsRawFd::as_raw_fd);
        signal_process(&format!("task {id}"), task.pid, pidfd, signal)?;
    }
    if task.paused {
        if all {
            // libcontainer's kill of every process freezes, signals and thaws.
            super::update::set_paused(service, id, false);
        } else if signal == libc::SIGKILL as u32 {
            // A frozen process dies only once thawed (as runc does).
            super::update::thaw_after_kill(service, id);
        }
    }
    Ok(Empty::new())
}

/// Signals a task's init or exec process through its pidfd (immune to pid reuse), or its
/// pid; `what` names it in errors.
pub fn signal_process(what: &str, pid: u32, pidfd: Option<i32>, signal: u32) -> Result<(), TaskError> {
    if signal == 0 || signal > 64 {
        return Err(TaskError::InvalidArgument(format!("invalid signal {signal}: signals are 1 to 64")));
    }
    // SAFETY: plain system calls on a descriptor this task owns, or on its pid.
    let rc = unsafe {
        match pidfd {
            Some(fd) => {
                libc::syscall(libc::SYS_pidfd_send_signal, fd, signal as i32, std::ptr::null::<u8>(), 0)
            }
            None => libc::kill(pid as i32, signal as i32) as libc::c_long,
        }
    };
    let err = std::io::Error::last_os_error();
    if rc == 0 || err.raw_os_error() == Some(libc::ESRCH) {
        // ESRCH: it exited and its exit is on its way.
        return Ok(());
    }
    Err(TaskError::Internal(format!("{what}: cannot send signal {signal}: {err}")))
}

/// Waits for the exit of task `id`'s init process, or of its exec `exec_id`.
pub fn wait(
    service: &TaskService,
    id: &str,
    exec_id: &str,
    deadline: Option<Duration>,
) -> Result<WaitResponse, TaskError> {
    let exit = service.wait_exit(id, exec_id, deadline)?;
    let mut response = WaitResponse::new();
    response.exit_status = exit.status;
    response.exited_at = Some(exit.at).into();
    Ok(response)
}
