//! Create: from containerd's request to a created container whose process waits for
//! Start.
//!
//! 1. decode the runtime options (from the request, or saved by `start`);
//! 2. open the stdio FIFOs;
//! 3. run the create helper (`__container-create`), which mounts the rootfs, classifies
//!    the entrypoint, chooses the engine, loads its plugin and lets libcontainer build
//!    the container (see `container::create`);
//! 4. record the task.
//!
//! Any failure undoes what was done and answers one line.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use containerd_shim::api::{CreateTaskRequest, CreateTaskResponse};

use super::error::TaskError;
use super::{TaskRecord, TaskService, events, stdio};
use crate::container::create::{COMMAND, CreateRequest, STDIO_FDS};
use crate::container::rootfs::{self, RootfsMount};
use crate::container::{lifecycle, oom};
use crate::shim_protocol::options::RawRuntimeOptions;
use crate::shim_protocol::start::SAVED_OPTIONS_FILE;

/// Where the create helper writes the container's init pid, inside the bundle.
pub const PID_FILE: &str = "init.pid";

pub fn create(service: &TaskService, req: &CreateTaskRequest) -> Result<CreateTaskResponse, TaskError> {
    if service.tasks().contains_key(&req.id) {
        return Err(TaskError::AlreadyExists(req.id.clone()));
    }
    if req.terminal {
        return Err(TaskError::InvalidArgument(
            "terminals (ctr -t, tty: true) are not supported by the wasm shim; run the container without one"
                .into(),
        ));
    }
    let bundle = PathBuf::from(&req.bundle);
    let created = create_in_bundle(service, req, &bundle);
    if created.is_err() && !req.rootfs.is_empty() {
        rootfs::unmount(&bundle);
    }
    let pid = created?;
    tracing::info!(id = %req.id, pid, "container created");
    if let Some(cgroups_path) = cgroups_path(&bundle) {
        let (service_weak, id) = (service.weak(), req.id.clone());
        oom::watch(&cgroups_path, move || {
            if let Some(service) = service_weak.upgrade() {
                tracing::warn!(%id, "container hit its memory limit (OOM kill)");
                events::task_oom(&service, &id);
            }
        });
    }
    events::task_create(service, &req.id, &req.bundle, pid);
    let mut response = CreateTaskResponse::new();
    response.pid = pid;
    Ok(response)
}

fn cgroups_path(bundle: &Path) -> Option<String> {
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).ok()?).ok()?;
    spec["linux"]["cgroupsPath"].as_str().map(String::from)
}

fn create_in_bundle(service: &TaskService, req: &CreateTaskRequest, bundle: &Path) -> Result<u32, TaskError> {
    let spec: serde_json::Value = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            TaskError::InvalidArgument(format!("cannot read the OCI spec {}/config.json", bundle.display()))
        })?;
    let pid_file = bundle.join(PID_FILE);
    let request = CreateRequest {
        id: req.id.clone(),
        bundle: bundle.to_path_buf(),
        state_root: service.state_root.clone(),
        pid_file: pid_file.clone(),
        systemd_cgroup: spec["linux"]["cgroupsPath"].as_str().is_some_and(|p| p.contains(':')),
        rootfs: req
            .rootfs
            .iter()
            .map(|m| RootfsMount {
                fs_type: m.type_.clone(),
                source: m.source.clone(),
                options: m.options.clone(),
            })
            .collect(),
        options: runtime_options(req, bundle)?,
        argv0: service.argv0.clone(),
    };
    if let Err(e) = run_helper(service, req, &request) {
        let _ = lifecycle::delete(&service.state_root, &req.id);
        return Err(e);
    }
    let pid: u32 =
        std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse().ok()).ok_or_else(|| {
            TaskError::Internal(format!("the container's pid file {} is missing", pid_file.display()))
        })?;
    let mut record = TaskRecord {
        bundle: bundle.to_path_buf(),
        pid,
        started: false,
        exit: None,
        stdin: req.stdin.clone(),
        stdout: req.stdout.clone(),
        stderr: req.stderr.clone(),
    };
    if let Some(status) = service.reaper.take(pid as i32) {
        record.exit = Some(super::Exit { status: status as u32, at: super::now() });
    }
    service.tasks().insert(req.id.clone(), record);
    Ok(pid)
}

/// The request's options, or else those `start` saved from its stdin.
fn runtime_options(req: &CreateTaskRequest, bundle: &Path) -> Result<RawRuntimeOptions, TaskError> {
    let invalid = |e: crate::shim_protocol::options::OptionsError| TaskError::InvalidArgument(e.to_string());
    let mut raw = match req.options.as_ref() {
        Some(any) => RawRuntimeOptions::from_any(any).map_err(invalid)?,
        None => RawRuntimeOptions::default(),
    };
    if raw.is_empty()
        && let Ok(saved) = std::fs::read(bundle.join(SAVED_OPTIONS_FILE))
    {
        raw = RawRuntimeOptions::decode(&saved).map_err(invalid)?;
    }
    Ok(raw)
}

/// Runs the create helper with the container's stdio on descriptors 3-5 and returns
/// its error line if it fails.
fn run_helper(
    service: &TaskService,
    req: &CreateTaskRequest,
    request: &CreateRequest,
) -> Result<(), TaskError> {
    let fds = stdio::open(&req.stdin, &req.stdout, &req.stderr)?;
    let raw = fds.each_ref().map(|fd| fd.as_raw_fd());
    let json = serde_json::to_string(request).map_err(|e| TaskError::Internal(e.to_string()))?;
    let mut command = Command::new(std::env::current_exe().map_err(|e| TaskError::Internal(e.to_string()))?);
    command.arg(COMMAND).arg(json).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: only dup2 between fork and exec. dup2 clears close-on-exec on the copies.
    unsafe {
        command.pre_exec(move || {
            for (from, to) in raw.iter().zip(STDIO_FDS) {
                if libc::dup2(*from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child =
        command.spawn().map_err(|e| TaskError::Internal(format!("cannot start the create helper: {e}")))?;
    drop(fds);
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    // The reaper owns waitpid: wait through it, never through `child`.
    let status = service.reaper.wait(child.id() as i32);
    if status == 0 {
        return Ok(());
    }
    let line = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("containerd-shim-wasm: error: "))
        .next_back()
        .map(str::to_string)
        .unwrap_or_else(|| format!("the create helper failed with status {status}: {}", stderr.trim()));
    Err(TaskError::FailedPrecondition(line))
}
