//! The long-lived shim server: serves the task service over ttrpc until containerd
//! shuts it down. It is a child subreaper (container processes are reparented to it when
//! the launcher worker that cloned them exits) and reaps every child in one place.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use containerd_shim::Flags;
use containerd_shim::protos::shim_sync::create_task;
use containerd_shim::protos::ttrpc::{self, MethodHandler};

use super::group::{self, GroupLock};
use crate::exit::{Failure, Outcome, SHIM_FAILURE};
use crate::task::TaskService;

/// The listening socket `start` hands over.
pub const LISTENER_FD: i32 = 3;
/// Time for answers already written to leave before the connections close.
const LINGER: Duration = Duration::from_millis(100);

const TASK_V3: &str = "/containerd.task.v3.Task/";
const TASK_V2: &str = "/containerd.task.v2.Task/";

pub fn serve(flags: &Flags, argv0: String) -> Outcome {
    // First, before anything else opens descriptors that could be mistaken for it.
    let listener = listener_fd(&flags.socket)?;
    redirect_logs_to_containerd();
    // containerd starts the server in the first container's bundle, which goes away with
    // that container; the server serves many and must never depend on its working
    // directory. Changed once, here, while the process has one thread.
    std::env::set_current_dir("/")
        .map_err(|e| Failure::new(SHIM_FAILURE, format!("cannot change directory to /: {e}")))?;
    // glibc gives each thread that allocates an arena of its own, up to 8 per CPU, and
    // keeps them: the request threads' memory would grow with the node's CPUs. Two are
    // enough for threads that mostly wait. Set once, here, while the process has one thread.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt with constant arguments.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2)
    };
    // SAFETY: prctl with constant arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) } != 0 {
        return Err(Failure::new(
            SHIM_FAILURE,
            format!("cannot become a subreaper: {}", std::io::Error::last_os_error()),
        ));
    }
    let ttrpc_address = std::env::var("TTRPC_ADDRESS")
        .map_err(|_| Failure::new(SHIM_FAILURE, "TTRPC_ADDRESS is not set (containerd sets it)"))?;
    let socket = PathBuf::from(flags.socket.strip_prefix("unix://").unwrap_or(&flags.socket));
    let service = TaskService::start(
        &flags.namespace,
        &flags.address,
        &ttrpc_address,
        argv0,
        group::pending_dir(&socket),
    )?;

    let mut server = ttrpc::Server::new().add_listener(listener)?;
    server = server.register_service(task_methods(&service));
    server.start()?;
    tracing::info!(socket = %flags.socket, "shim server started");
    wait_until_unused(&service, &socket);
    service.stop();
    // Answers already written reach containerd before the connections close.
    let server = server.stop_listen();
    std::thread::sleep(LINGER);
    server.disconnect();
    Ok(0)
}

/// Returns once containerd asked to shut down and nothing uses the server: no task, no
/// request in flight, no container started here whose Create has not come (see `group`).
/// The socket is unlinked then, under the group's lock.
fn wait_until_unused(service: &TaskService, socket: &Path) {
    loop {
        service.wait_for_shutdown_request();
        match GroupLock::acquire(socket) {
            Ok(group) if service.is_idle() && !group.has_pending() => {
                group.retire();
                return;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("shutdown: {e}"),
        }
        if service.has_tasks() {
            // A container came: stay until the next Shutdown (one follows every delete).
            service.clear_shutdown_request();
        } else {
            // A pending start: its Create comes soon, or it expires.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The task service under both names: `containerd.task.v2.Task` (containerd 1.6, 1.7,
/// and 2.x for a plain-address reply) and `containerd.task.v3.Task` (2.x).
fn task_methods(service: &Arc<TaskService>) -> HashMap<String, Box<dyn MethodHandler + Send + Sync>> {
    let mut methods = create_task(service.clone());
    let v2: Vec<_> = create_task(service.clone())
        .into_iter()
        .map(|(path, handler)| (path.replacen(TASK_V3, TASK_V2, 1), handler))
        .collect();
    methods.extend(v2);
    methods
}

/// The socket from `start` (descriptor 3), or a new one when started by hand.
fn listener_fd(socket: &str) -> Result<i32, Failure> {
    let mut listening: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into a local int; fails unless fd 3 is a socket.
    let is_listener = unsafe {
        libc::getsockopt(
            LISTENER_FD,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&raw mut listening).cast(),
            &mut len,
        )
    } == 0
        && listening != 0;
    if is_listener {
        return Ok(LISTENER_FD);
    }
    let path = socket.strip_prefix("unix://").unwrap_or(socket);
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .map_err(|e| Failure::new(SHIM_FAILURE, format!("cannot listen on {path}: {e}")))?;
    let fd = listener.as_raw_fd();
    let _ = listener.into_raw_fd();
    Ok(fd)
}

/// containerd reads a shim's log from the `log` FIFO in the bundle directory.
fn redirect_logs_to_containerd() {
    use std::os::unix::fs::OpenOptionsExt;
    let log = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open("log");
    if let Ok(log) = log {
        // SAFETY: dup2 onto stderr; the tracing writer writes to fd 2.
        unsafe { libc::dup2(log.as_raw_fd(), 2) };
    }
}
