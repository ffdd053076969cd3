//! Create: from containerd's request to a created container whose process waits for
//! Start.
//!
//! 1. take the id (a second create of it answers "already exists");
//! 2. choose the engine ([`super::engine`]) and open the stdio FIFOs;
//! 3. ask the engine's launcher (or, with no engine, the plain one) to create the
//!    container in a worker, within the request's deadline (see [`crate::launcher`]);
//! 4. record the task — with its exit, if the init process already ended.
//!
//! Any failure undoes what was done (processes, cgroup, state, rootfs mount) and
//! answers one line.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use containerd_shim::api::{CreateTaskRequest, CreateTaskResponse};

use super::error::TaskError;
use super::table::TaskRecord;
use super::{TaskService, engine, stdio};
use crate::container::create::{CreateRequest, EngineChoice};
use crate::container::oom;
use crate::container::rootfs::{self, RootfsMount};
use crate::launcher::Request;
use crate::launcher::pool::LaunchError;

/// A create may take this long unless containerd gives a shorter deadline.
const CREATE_BOUND: Duration = Duration::from_secs(60);
/// Cleaning up after a failed create may take this long.
const CLEANUP_BOUND: Duration = Duration::from_secs(30);

pub fn create(
    service: &TaskService,
    req: &CreateTaskRequest,
    deadline: Option<Duration>,
) -> Result<CreateTaskResponse, TaskError> {
    service.table().reserve(&req.id)?;
    // The start that reused this server for the container is no longer pending.
    let _ = std::fs::remove_file(service.pending_starts.join(&req.id));
    let created = create_reserved(service, req, deadline);
    service.table().release(&req.id);
    let pid = created?;
    tracing::info!(id = %req.id, pid, "container created");
    let mut response = CreateTaskResponse::new();
    response.pid = pid;
    Ok(response)
}

fn create_reserved(
    service: &TaskService,
    req: &CreateTaskRequest,
    deadline: Option<Duration>,
) -> Result<u32, TaskError> {
    let began = Instant::now();
    let bundle = PathBuf::from(&req.bundle);
    let spec: serde_json::Value = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            TaskError::InvalidArgument(format!("cannot read the OCI spec {}/config.json", bundle.display()))
        })?;
    let cgroups_path = spec["linux"]["cgroupsPath"].as_str().map(String::from);
    let (console, stdio) = stdio::for_process(req.terminal, &req.stdin, &req.stdout, &req.stderr)?;
    // What is left of the deadline after waiting for containerd's FIFO readers.
    let bound = super::bound(deadline.map(|d| d.saturating_sub(began.elapsed())), CREATE_BOUND);
    let chosen = engine::choose(req, &bundle, &service.argv0);
    // Without the option: a systemd cgroupsPath is slice:prefix:name, a cgroupfs one a path.
    let systemd_cgroup =
        chosen.systemd_cgroup.unwrap_or_else(|| cgroups_path.as_deref().is_some_and(|p| p.contains(':')));
    let request = |engine: Result<EngineChoice, String>| {
        Request::Create(CreateRequest {
            id: req.id.clone(),
            bundle: bundle.clone(),
            state_root: service.state_root.clone(),
            systemd_cgroup,
            rootfs: req
                .rootfs
                .iter()
                .map(|m| RootfsMount {
                    fs_type: m.type_.clone(),
                    source: m.source.clone(),
                    options: m.options.clone(),
                })
                .collect(),
            engine,
            containerd: Some(service.containerd.clone()),
            console_socket: console.as_ref().map(|c| c.path.clone()),
        })
    };
    let reply = match chosen.engine {
        Ok((choice, plugin)) => {
            match service.launchers.call(Some(&plugin), request(Ok(choice)), &stdio, bound) {
                // The plugin cannot be loaded: a native entrypoint still runs.
                Err(LaunchError::Refused(reason)) => {
                    service.launchers.call(None, request(Err(reason)), &stdio, bound)
                }
                other => other,
            }
        }
        Err(reason) => service.launchers.call(None, request(Err(reason)), &stdio, bound),
    };
    drop(stdio);
    let made = match reply {
        Ok(Ok(made)) => made,
        failed => {
            let reason = match failed {
                Ok(Err(line)) => line,
                Err(e) => e.to_string(),
                Ok(Ok(_)) => unreachable!(),
            };
            tracing::warn!(id = %req.id, "create failed: {reason}");
            clean_up(service, &req.id, &bundle, !req.rootfs.is_empty(), cgroups_path.as_deref());
            return Err(TaskError::FailedPrecondition(reason));
        }
    };
    let pid = made.pid;
    let served =
        console.map(|console| stdio::serve(&console, &req.stdin, &req.stdout, format!("task {}", req.id)));
    let console = match served.transpose() {
        Ok(console) => console,
        Err(e) => {
            tracing::warn!(id = %req.id, "create failed: {e}");
            clean_up(service, &req.id, &bundle, !req.rootfs.is_empty(), cgroups_path.as_deref());
            return Err(e);
        }
    };
    let record = TaskRecord {
        bundle: bundle.clone(),
        pid,
        wasm: made.wasm,
        pidfd: pidfd_open(pid).map(Arc::new),
        cgroups_path: cgroups_path.clone(),
        rootfs_mounted: !req.rootfs.is_empty(),
        hooks_on_start: has_hooks(&spec, "poststart"),
        hooks_on_delete: has_hooks(&spec, "poststop"),
        started: false,
        starting: false,
        exit_event_held: false,
        exit_waits_for_execs: false,
        kill_all_on_exit: !has_own_pid_namespace(&spec),
        exit: None,
        paused: false,
        stdin: req.stdin.clone(),
        stdout: req.stdout.clone(),
        stderr: req.stderr.clone(),
        execs: Default::default(),
        console: console.map(Arc::new),
        op: Arc::default(),
    };
    {
        // Events under the table lock, so that the reaper's TaskExit comes after TaskCreate.
        let mut table = service.table();
        let claimed = table.insert(&req.id, record, began);
        service.events.task_create(&req.id, &req.bundle, pid);
        if let Some(exit) = claimed {
            service.events.task_exit(&req.id, "", pid, &exit);
        }
    }
    if let Some(cgroups_path) = cgroups_path {
        let (events, id) = (service.events.clone(), req.id.clone());
        oom::watch(&cgroups_path, move || {
            tracing::warn!(%id, "container hit its memory limit (OOM kill)");
            events.task_oom(&id);
        });
    }
    Ok(pid)
}

/// Removes what a failed create may have left: the init process, cgroup and state (in
/// a worker, which runs libcontainer's delete), and the rootfs mount.
fn clean_up(
    service: &TaskService,
    id: &str,
    bundle: &Path,
    rootfs_mounted: bool,
    cgroups_path: Option<&str>,
) {
    let request = Request::Delete {
        state_root: service.state_root.clone(),
        id: id.to_string(),
        cgroups_path: cgroups_path.map(String::from),
    };
    match service.launchers.call(None, request, &[], CLEANUP_BOUND) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(%id, "cleanup after a failed create: {e}"),
        Err(e) => tracing::warn!(%id, "cleanup after a failed create: {e}"),
    }
    if rootfs_mounted {
        rootfs::unmount(bundle);
    }
}

/// A new PID namespace of the container's own (no `path` to join).
fn has_own_pid_namespace(spec: &serde_json::Value) -> bool {
    let namespaces = spec["linux"]["namespaces"].as_array();
    namespaces.is_some_and(|all| {
        all.iter().any(|ns| ns["type"] == "pid" && ns["path"].as_str().is_none_or(str::is_empty))
    })
}

fn has_hooks(spec: &serde_json::Value, kind: &str) -> bool {
    spec["hooks"][kind].as_array().is_some_and(|hooks| !hooks.is_empty())
}

/// A descriptor for the process itself, so signals never reach a process that reused
/// its pid. `None` where the kernel has no pidfd (before 5.3): plain pids are used then.
pub fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a fresh descriptor owned from here on.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
