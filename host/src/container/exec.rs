//! Exec: a process joining a running native container (`kubectl exec`, exec probes,
//! `ctr task exec`), in a launcher worker.
//!
//! libcontainer's tenant builder joins the container's namespaces and cgroup, applies the
//! process spec containerd sent (args, env, cwd, user, capabilities, no_new_privileges,
//! AppArmor) and `execve`s it; the process is the server's to reap, as an init process is.
//! Two gaps of libcontainer 0.7's tenant setup are closed here: security fields the sent
//! spec leaves out come from the container's own process (a spec without capabilities
//! would otherwise keep all of root's), and the container's seccomp profile, which the
//! tenant setup drops, is loaded by the executor right before `execve`
//! ([`ShimExecutor::Exec`]). The builder changes the working directory and clones, so it
//! runs in a worker, never in the server. A wasm container has no native program to join:
//! the task service refuses it before a worker is asked.

use std::collections::HashSet;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;

use super::create::ensure_single_threaded;
use super::executor::ShimExecutor;
use super::lifecycle::LifecycleError;

/// Starts `process` (a runtime-spec Process, JSON) in container `id`; returns its pid.
/// With a terminal, the process's init sends its master end to `console_socket`.
pub fn exec(
    state_root: &Path,
    id: &str,
    process: &str,
    stdio: [OwnedFd; 3],
    console_socket: Option<&Path>,
) -> Result<u32, LifecycleError> {
    let error = |reason: String| LifecycleError { id: id.to_string(), op: "exec a process", reason };
    let container = Container::load(state_root.join(id)).map_err(|e| error(e.to_string()))?;
    let spec = Spec::load(container.bundle().join("config.json"))
        .map_err(|e| error(format!("cannot read the container's spec: {e}")))?;
    let process = with_container_defaults(process, &spec).map_err(error)?;
    let seccomp = spec.linux().as_ref().and_then(|linux| linux.seccomp().clone());
    let process_file =
        process_file(&process).map_err(|e| error(format!("cannot pass the process spec: {e}")))?;
    ensure_single_threaded()
        .map_err(|n| error(format!("the shim's worker has {n} threads where it must have one")))?;
    let [stdin, stdout, stderr] = stdio;
    let sockets_before = tenant_sockets(&state_root.join(id));
    let built = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_executor(ShimExecutor::Exec { seccomp })
        .with_root_path(state_root)
        .map_err(|e| error(e.to_string()))?
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr)
        .with_console_socket(console_socket)
        .as_tenant()
        .with_process(Some(format!("/proc/self/fd/{}", process_file.as_raw_fd())))
        .with_detach(true)
        .build();
    // The builder leaves its notify socket (and a link to the console socket) in the
    // container's state directory: files per exec probe for the container's whole life
    // otherwise.
    for socket in tenant_sockets(&state_root.join(id)).difference(&sockets_before) {
        let _ = std::fs::remove_file(socket);
    }
    let pid = built.map_err(|e| error(e.to_string()))?;
    Ok(pid.as_raw() as u32)
}

/// The sent process spec, with the security fields it leaves out taken from the
/// container's own process, as runc does.
fn with_container_defaults(process: &str, spec: &Spec) -> Result<String, String> {
    let mut process: serde_json::Value =
        serde_json::from_str(process).map_err(|e| format!("the process spec is not JSON: {e}"))?;
    let own = serde_json::to_value(spec.process()).map_err(|e| e.to_string())?;
    for field in ["capabilities", "noNewPrivileges", "apparmorProfile", "selinuxLabel", "rlimits"] {
        if process.get(field).is_none_or(serde_json::Value::is_null)
            && let Some(value) = own.get(field)
        {
            process[field] = value.clone();
        }
    }
    Ok(process.to_string())
}

/// libcontainer's tenant notify sockets and console socket links in a container's state
/// directory.
fn tenant_sockets(dir: &Path) -> HashSet<PathBuf> {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    entries
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with("tenant-notify-") || name.starts_with("tenant-tty-")
        })
        .map(|entry| entry.path())
        .collect()
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
