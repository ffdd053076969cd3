//! The launcher process (`containerd-shim-wasm-v1 __launcher [PLUGIN]`, spawned by the
//! shim server with its control channel on descriptor 3) and the workers it forks.
//!
//! The launcher loads the plugin, says [`Hello`], then forks one worker per request until
//! the server closes the channel. It stays single-threaded: nothing here or in a plugin's
//! load may start a thread (a worker checks before libcontainer clones from it).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::unistd::{ForkResult, fork};
use shimcfg::ShimConfig;

use super::channel::{self, Hello};
use super::{Envelope, Made, Reply, Request};
use crate::container::executor::PLUGIN;
use crate::container::{create, exec, inherited, lifecycle};
use crate::exit::{Failure, Outcome, SHIM_FAILURE};
use crate::plugins::load::load_trusted;

/// The hidden subcommand.
pub const COMMAND: &str = "__launcher";
/// Where the launcher finds its control channel.
pub const CONTROL_FD: i32 = 3;
/// How long a worker waits for its request once forked (the server writes it at once).
const REQUEST_READ_BOUND: Duration = Duration::from_secs(10);

/// Body of `__launcher`.
pub fn run(plugin: Option<&Path>) -> Outcome {
    // SAFETY: the server passes the control channel on exactly this descriptor; the
    // name (what ps and top show; exec'ing /proc/self/exe would say "exe") is static.
    let control = unsafe {
        libc::prctl(libc::PR_SET_NAME, c"shim-launcher".as_ptr());
        OwnedFd::from_raw_fd(CONTROL_FD)
    };
    // Workers are reaped by the kernel; a worker restores the default for libcontainer.
    set_sigchld(libc::SIG_IGN);
    if let Some(plugin) = plugin {
        let loaded =
            ShimConfig::load().map_err(|e| e.to_string()).and_then(|config| load_trusted(&config, plugin));
        let loaded = loaded.and_then(|loaded| match create::ensure_single_threaded() {
            Ok(()) => Ok(loaded),
            Err(threads) => Err(format!(
                "plugin {} started {} thread(s) when it was loaded; the shim forks every container from the \
                 process that loads the plugin, which must stay single-threaded: start threads in engine_new \
                 or run, not at load",
                plugin.display(),
                threads - 1
            )),
        });
        match loaded {
            Ok(loaded) => {
                let _ = PLUGIN.set(loaded);
            }
            Err(reason) => {
                channel::send_hello(control.as_fd(), &Hello::Refused(reason))?;
                return Ok(0);
            }
        }
    }
    channel::send_hello(control.as_fd(), &Hello::Ready)?;
    loop {
        match channel::recv_fds(control.as_fd()) {
            Ok(Some(fds)) => fork_worker(control.as_fd(), fds),
            // The server closed the channel: it exited, or replaced this launcher.
            Ok(None) => return Ok(0),
            Err(e) => return Err(Failure::new(SHIM_FAILURE, format!("launcher: control channel: {e}"))),
        }
    }
}

fn fork_worker(control: std::os::fd::BorrowedFd<'_>, fds: Vec<OwnedFd>) {
    // SAFETY: this process is single-threaded, so the child may run any code.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // SAFETY: the child's copy of the control channel, closed once.
            unsafe { libc::close(control.as_raw_fd()) };
            worker(fds)
        }
        Ok(ForkResult::Parent { .. }) => drop(fds),
        Err(e) => {
            tracing::error!("launcher: cannot fork a worker: {e}");
            if let Some(stream) = fds.into_iter().next() {
                let reply: Reply = Err(format!("the shim cannot fork a worker: {e}"));
                let _ = channel::write_message(
                    &mut UnixStream::from(stream),
                    &serde_json::to_vec(&reply).unwrap_or_default(),
                );
            }
        }
    }
}

/// A worker: reads its request, does it, answers, exits.
fn worker(fds: Vec<OwnedFd>) -> ! {
    set_sigchld(libc::SIG_DFL);
    // Its own process group: at the deadline it ends itself and what it spawned.
    // SAFETY: setpgid on this process.
    unsafe { libc::setpgid(0, 0) };
    let mut fds = fds.into_iter();
    let Some(stream) = fds.next() else {
        // SAFETY: _exit ends this forked process without running the launcher's destructors.
        unsafe { libc::_exit(1) }
    };
    let mut stream = UnixStream::from(stream);
    // A container's init process is cloned from this worker: it must not keep the stream.
    inherited::drop_in_init(stream.as_raw_fd());
    let reply = serve(&mut stream, fds.collect());
    let _ = channel::write_message(&mut stream, &serde_json::to_vec(&reply).unwrap_or_default());
    drop(stream);
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

fn serve(stream: &mut UnixStream, stdio: Vec<OwnedFd>) -> Reply {
    let bytes = channel::read_message(stream, Instant::now() + REQUEST_READ_BOUND)
        .map_err(|e| format!("the shim's worker did not get its request: {e}"))?;
    let envelope: Envelope =
        serde_json::from_slice(&bytes).map_err(|e| format!("malformed request to the shim's worker: {e}"))?;
    let left = Duration::from_nanos(envelope.end_ns.saturating_sub(super::monotonic_ns()));
    if left.is_zero() {
        return Err("the shim's worker got its request after the request's deadline".into());
    }
    end_at_deadline(left);
    match envelope.request {
        Request::Create(request) => {
            let stdio: [OwnedFd; 3] =
                stdio.try_into().map_err(|_| "a create request needs three stdio descriptors".to_string())?;
            let deadline = Instant::now() + left;
            create::create(&request, stdio, deadline).map_err(|failure| failure.message)
        }
        Request::Start { state_root, id } => {
            lifecycle::start(&state_root, &id).map(|_| Made::default()).map_err(|e| e.to_string())
        }
        Request::Delete { state_root, id, cgroups_path } => {
            lifecycle::remove(&state_root, &id, cgroups_path.as_deref())
                .map(|_| Made::default())
                .map_err(|e| e.to_string())
        }
        Request::Exec { state_root, id, process, console_socket } => {
            let stdio: [OwnedFd; 3] =
                stdio.try_into().map_err(|_| "an exec request needs three stdio descriptors".to_string())?;
            exec::exec(&state_root, &id, &process, stdio, console_socket.as_deref())
                .map(|pid| Made { pid, wasm: false })
                .map_err(|e| e.to_string())
        }
    }
}

/// At the deadline, `SIGALRM` kills the worker's whole process group (itself, the hooks
/// it runs, a container init it cloned): the server sees the request stream close.
fn end_at_deadline(left: Duration) {
    extern "C" fn end(_: libc::c_int) {
        // SAFETY: kill(2) is async-signal-safe; 0 is this process's own group.
        unsafe { libc::kill(0, libc::SIGKILL) };
    }
    // Never zero, which would disarm the timer.
    let left = left.max(Duration::from_micros(1));
    let timer = libc::itimerval {
        it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 },
        it_value: libc::timeval {
            tv_sec: left.as_secs() as libc::time_t,
            tv_usec: left.subsec_micros().into(),
        },
    };
    // SAFETY: installs a handler that only calls kill(2), then arms the one-shot timer.
    unsafe {
        libc::signal(libc::SIGALRM, end as extern "C" fn(libc::c_int) as libc::sighandler_t);
        libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
    }
}

fn set_sigchld(disposition: libc::sighandler_t) {
    // SAFETY: sets the disposition of SIGCHLD for this process.
    unsafe { libc::signal(libc::SIGCHLD, disposition) };
}
