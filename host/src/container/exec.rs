//! Exec: a process joining a running native container (`kubectl exec`, exec probes,
//! `ctr task exec`), in a launcher worker.
//!
//! libcontainer's tenant builder joins the container's namespaces and cgroup, applies the
//! process spec containerd sent (args, env, cwd, user, capabilities, no_new_privileges,
//! AppArmor) and `execve`s it; the process is the server's to reap, as an init process is.
//! The builder changes the working directory and clones, so it runs in a worker, never in
//! the server. A wasm container has no native program to join: the task service refuses
//! it before a worker is asked.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;

use super::create::ensure_single_threaded;
use super::executor::ShimExecutor;
use super::lifecycle::LifecycleError;

/// Starts `process` (a runtime-spec Process, JSON) in container `id`; returns its pid.
pub fn exec(state_root: &Path, id: &str, process: &str, stdio: [OwnedFd; 3]) -> Result<u32, LifecycleError> {
    let error = |reason: String| LifecycleError { id: id.to_string(), op: "exec a process", reason };
    let spec = process_file(process).map_err(|e| error(format!("cannot pass the process spec: {e}")))?;
    ensure_single_threaded()
        .map_err(|n| error(format!("the shim's worker has {n} threads where it must have one")))?;
    let [stdin, stdout, stderr] = stdio;
    let pid = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_executor(ShimExecutor::Native)
        .with_root_path(state_root)
        .map_err(|e| error(e.to_string()))?
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr)
        .as_tenant()
        .with_process(Some(format!("/proc/self/fd/{}", spec.as_raw_fd())))
        .with_detach(true)
        .build()
        .map_err(|e| error(e.to_string()))?;
    Ok(pid.as_raw() as u32)
}

/// The process spec in a memory file: nothing to clean up on disk, whatever happens.
fn process_file(process: &str) -> std::io::Result<OwnedFd> {
    // SAFETY: memfd_create with a static name; returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(c"exec-process".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    std::fs::File::from(fd.try_clone()?).write_all(process.as_bytes())?;
    Ok(fd)
}
