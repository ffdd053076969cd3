//! One server per group of containers (a Kubernetes pod), and the hand-over between a
//! `start` that reuses a server and a server that is about to exit.
//!
//! containerd runs `start` for every container; the first of a group spawns the server,
//! the others reuse it. containerd also asks a server to shut down after every delete,
//! and the server exits once it serves nothing. Without care, these race:
//! - two `start`s of one group at once both spawn a server, and the second unlinks the
//!   first one's socket;
//! - a `start` finds the server alive and prints its address, the server then exits
//!   (its last container was just deleted), and containerd's Create finds no server.
//!
//! So `start` and the server's exit take one lock per group (a `flock` on a file beside
//! the group's state): `start`, under the lock, reuses a live server and records the
//! container as *pending* until its Create arrives, or spawns a server; the server, under
//! the lock, exits only with no task, no request in flight and no fresh pending start —
//! and unlinks its socket first, so a later `start` spawns a new server.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Where group locks and pending starts live.
const GROUPS_DIR: &str = "/run/containerd-shim-wasm/groups";
/// A pending start whose Create never came (containerd gave up) stops counting after this.
const PENDING_FOR: Duration = Duration::from_secs(30);
/// How long `start` or the server waits for the lock.
const LOCK_BOUND: Duration = Duration::from_secs(10);

/// The group's lock, held.
pub struct GroupLock {
    _file: File,
    socket: PathBuf,
}

/// The group of the server listening at `socket` (a path).
fn group_name(socket: &Path) -> String {
    socket.file_name().map_or_else(|| "default".into(), |n| n.to_string_lossy().into_owned())
}

/// The directory where pending starts of `socket`'s group are recorded; a Create removes
/// its container's entry.
pub fn pending_dir(socket: &Path) -> PathBuf {
    Path::new(GROUPS_DIR).join(format!("{}.pending", group_name(socket)))
}

impl GroupLock {
    /// Takes the lock of `socket`'s group, waiting at most [`LOCK_BOUND`].
    pub fn acquire(socket: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(GROUPS_DIR)?;
        let path = Path::new(GROUPS_DIR).join(format!("{}.lock", group_name(socket)));
        let deadline = Instant::now() + LOCK_BOUND;
        loop {
            let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
            // SAFETY: flock on a descriptor owned here.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                // The server that held it may have removed the file: lock the file that is
                // there now, not an unlinked one.
                let same =
                    fs::metadata(&path).is_ok_and(|m| m.ino() == file.metadata().map_or(0, |f| f.ino()));
                if same {
                    return Ok(Self { _file: file, socket: socket.to_path_buf() });
                }
                continue;
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the shim group lock {} is held for too long", path.display()),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Records container `id` as started on this group's server, until its Create.
    pub fn add_pending(&self, id: &str) -> std::io::Result<()> {
        let dir = pending_dir(&self.socket);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(id), b"")
    }

    /// Container `id` no longer keeps the server (containerd cleaned up after it).
    pub fn remove_pending(&self, id: &str) {
        let _ = fs::remove_file(pending_dir(&self.socket).join(id));
    }

    /// Whether a start is pending (recent enough to count); stale entries are removed.
    pub fn has_pending(&self) -> bool {
        let now = SystemTime::now();
        let mut pending = false;
        for entry in fs::read_dir(pending_dir(&self.socket)).into_iter().flatten().flatten() {
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default());
            match age {
                Ok(age) if age < PENDING_FOR => pending = true,
                _ => {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        pending
    }

    /// The server exits: its socket goes (a later `start` spawns a new server), and so do
    /// the group's files.
    pub fn retire(self) {
        let _ = fs::remove_file(&self.socket);
        let _ = fs::remove_dir_all(pending_dir(&self.socket));
        let _ = fs::remove_file(Path::new(GROUPS_DIR).join(format!("{}.lock", group_name(&self.socket))));
    }
}
