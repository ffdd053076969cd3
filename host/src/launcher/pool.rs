//! The server's side of the launchers: one per plugin file (and one with no plugin),
//! spawned on first use, replaced when the plugin file changes or the launcher dies, and
//! asked to do one request at a time per call, with a bound.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::linux::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::channel::{self, Hello};
use super::process::{COMMAND, CONTROL_FD};
use super::{Envelope, Reply, Request};

/// How long a new launcher may take to load its plugin and say hello (a 27 MiB plugin
/// loads in tens of milliseconds).
const HELLO_BOUND: Duration = Duration::from_secs(10);
/// A launcher that takes no request for this long (stopped, stuck) counts as dead.
const SEND_BOUND: Duration = Duration::from_secs(10);

/// How long before the server stops waiting for its answer a worker ends itself: the
/// time its process group takes to die and the stream to close.
const ALARM_MARGIN: Duration = Duration::from_millis(500);

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The plugin could not be loaded (the launcher's one line).
    #[error("{0}")]
    Refused(String),
    #[error("the shim cannot start its launcher process: {0}")]
    Spawn(String),
    #[error("the shim's worker process ended without answering (killed, or out of memory?)")]
    NoAnswer,
    #[error("stopped after {0} s: {1} did not finish in time")]
    Deadline(u64, &'static str),
    #[error("the shim's worker answered something unreadable: {0}")]
    Garbled(String),
}

/// Identifies a plugin file's content on disk: a changed file gets a new launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
}

impl Identity {
    fn of(path: &Path) -> Option<Self> {
        // A link is its own file: never the identity of the file a launcher loaded.
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some(Self {
            device: meta.st_dev(),
            inode: meta.st_ino(),
            size: meta.st_size(),
            modified: (meta.st_mtime(), meta.st_mtime_nsec()),
        })
    }
}

struct Launcher {
    pid: u32,
    control: OwnedFd,
    identity: Option<Identity>,
}

/// Every launcher of one shim server: a slot per plugin file (and one for none), each
/// with its own lock, so that a launcher that is slow to start holds up only the
/// requests for its own plugin.
#[derive(Default)]
pub struct Launchers {
    slots: Mutex<HashMap<Option<PathBuf>, Arc<Slot>>>,
}

type Slot = Mutex<Option<Arc<Launcher>>>;

impl Launchers {
    /// Asks the launcher of `plugin` (`None`: the one with no plugin) to do `request`,
    /// with the container's `stdio` for a create, and waits at most `bound` (+ grace).
    pub fn call(
        &self,
        plugin: Option<&Path>,
        request: Request,
        stdio: &[OwnedFd],
        bound: Duration,
    ) -> Result<Reply, LaunchError> {
        let what = match &request {
            Request::Create(_) => "the create",
            Request::Start { .. } => "the start",
            Request::Delete { .. } => "the delete",
            Request::Exec { .. } => "the exec",
        };
        // The answer is waited for until the bound, not past it. The worker ends itself
        // (and its process group) a margin before, at an instant on the monotonic clock,
        // however late it reads the request; its end usually reaches the server as the
        // stream closing, but not while a container's init process it cloned (a session of
        // its own) still holds the stream, stuck before it closes what it inherited. Either
        // way the worker is gone when the server cleans up after it.
        let until = Instant::now() + bound;
        let end_ns = super::monotonic_ns() + bound.saturating_sub(ALARM_MARGIN).as_nanos() as u64;
        let envelope = serde_json::to_vec(&Envelope { end_ns, request })
            .map_err(|e| LaunchError::Garbled(e.to_string()))?;
        let (mut stream, worker_end) = UnixStream::pair().map_err(|e| LaunchError::Spawn(e.to_string()))?;
        let mut fds: Vec<RawFd> = vec![worker_end.as_raw_fd()];
        fds.extend(stdio.iter().map(|fd| fd.as_raw_fd()));
        self.send(plugin, &fds)?;
        drop(worker_end);
        let seconds = bound.as_secs();
        // The worker reads the request after the fork; a failed write shows as no answer.
        let _ = channel::write_message(&mut stream, &envelope);
        let bytes =
            channel::read_message(&mut stream, until).map_err(|_| LaunchError::Deadline(seconds, what))?;
        if bytes.is_empty() {
            return Err(if Instant::now() + ALARM_MARGIN >= until {
                LaunchError::Deadline(seconds, what)
            } else {
                LaunchError::NoAnswer
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| LaunchError::Garbled(e.to_string()))
    }

    /// Hands the descriptors to the launcher; a dead launcher is replaced once.
    fn send(&self, plugin: Option<&Path>, fds: &[RawFd]) -> Result<(), LaunchError> {
        for attempt in 0..2 {
            let launcher = self.get(plugin)?;
            match channel::send_fds(launcher.control.as_fd(), fds) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(pid = launcher.pid, attempt, "launcher gone ({e}); starting another");
                    self.forget(launcher.pid, true);
                }
            }
        }
        Err(LaunchError::Spawn("the launcher exited at once, twice".into()))
    }

    /// The live launcher for `plugin`, spawned if there is none or its file changed.
    fn get(&self, plugin: Option<&Path>) -> Result<Arc<Launcher>, LaunchError> {
        let slot = self.slots().entry(plugin.map(Path::to_path_buf)).or_default().clone();
        let identity = plugin.and_then(Identity::of);
        let mut slot = lock(&slot);
        if let Some(launcher) = slot.as_ref()
            && launcher.identity == identity
        {
            return Ok(launcher.clone());
        }
        // Spawned under the slot's lock: concurrent first creates wait for one launcher.
        // A replaced launcher exits once its last caller drops it.
        let launcher = Arc::new(spawn(plugin, identity)?);
        tracing::info!(pid = launcher.pid, plugin = ?plugin, "launcher started");
        *slot = Some(launcher.clone());
        Ok(launcher)
    }

    /// Whether `pid` was one of the launchers; one that exited is forgotten.
    pub fn on_exit(&self, pid: i32, status: i32) -> bool {
        // The reaper must not wait for a slot that is busy spawning (that holds no
        // launcher with this pid yet).
        let was_launcher = self.forget(pid as u32, false);
        if was_launcher {
            tracing::warn!(pid, status, "a launcher exited; the next request starts another");
        }
        was_launcher
    }

    fn forget(&self, pid: u32, wait_for_slots: bool) -> bool {
        let slots: Vec<Arc<Slot>> = self.slots().values().cloned().collect();
        let mut found = false;
        for slot in slots {
            let guard = if wait_for_slots { Some(lock(&slot)) } else { slot.try_lock().ok() };
            if let Some(mut guard) = guard
                && guard.as_ref().is_some_and(|l| l.pid == pid)
            {
                *guard = None;
                found = true;
            }
        }
        found
    }

    /// Closes every control channel: the launchers exit.
    pub fn stop_all(&self) {
        for slot in self.slots().values() {
            *lock(slot) = None;
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<Option<PathBuf>, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn lock(slot: &Slot) -> MutexGuard<'_, Option<Arc<Launcher>>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

fn spawn(plugin: Option<&Path>, identity: Option<Identity>) -> Result<Launcher, LaunchError> {
    let (control, launcher_end) = channel::control_pair().map_err(|e| LaunchError::Spawn(e.to_string()))?;
    let timeout = libc::timeval { tv_sec: SEND_BOUND.as_secs() as libc::time_t, tv_usec: 0 };
    // SAFETY: setsockopt with a timeval of the size given, on a descriptor owned here.
    unsafe {
        libc::setsockopt(
            control.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&raw const timeout).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    // /proc/self/exe is this very binary, even after a package upgrade replaced the file.
    let mut command = Command::new("/proc/self/exe");
    command.arg0("containerd-shim-wasm-v1").arg(COMMAND);
    if let Some(plugin) = plugin {
        command.arg(plugin);
    }
    // The launcher logs where the server does (containerd's log FIFO).
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
    let raw = launcher_end.as_raw_fd();
    // SAFETY: only dup2/fcntl between fork and exec.
    unsafe {
        command.pre_exec(move || crate::exec_fd::inherit_as(raw, CONTROL_FD));
    }
    // The reaper owns every child's exit status: the handle is dropped, never waited on.
    let child = command.spawn().map_err(|e| LaunchError::Spawn(e.to_string()))?;
    let pid = child.id();
    drop(child);
    drop(launcher_end);
    match channel::recv_hello(control.as_fd(), Instant::now() + HELLO_BOUND) {
        Ok(Hello::Ready) => Ok(Launcher { pid, control, identity }),
        Ok(Hello::Refused(reason)) => Err(LaunchError::Refused(reason)),
        Err(e) => {
            // A plugin whose load hangs must not keep its launcher alive.
            // SAFETY: kill(2) on the child just spawned, not yet reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            let reason = if e.kind() == std::io::ErrorKind::TimedOut {
                format!(
                    "plugin {} did not finish loading in {} s (a constructor or entry function that blocks?); \
                     remove or fix it",
                    describe(plugin),
                    HELLO_BOUND.as_secs()
                )
            } else {
                format!("the launcher for {} failed: {e}", describe(plugin))
            };
            Err(LaunchError::Refused(reason))
        }
    }
}

fn describe(plugin: Option<&Path>) -> String {
    plugin.map_or_else(|| "native containers".into(), |p| p.display().to_string())
}
