//! What a container's init process inherits from the worker that creates it, besides
//! the plugin: descriptors it must drop before the workload runs, and a pipe to say why
//! it refuses to go on.
//!
//! libcontainer clones the init process from the worker, so the init process starts with
//! every descriptor the worker has open. A native workload loses them at `execve`
//! (libcontainer marks them close-on-exec); a wasm workload runs in the init process
//! itself, so [`close_in_init`] closes them: the request stream to the shim server, the
//! original stdio descriptors, the report pipe.
//!
//! libcontainer reports a failure of the init process before Start only as a broken
//! channel. So the worker opens a [`Report`] pipe before the clone; the init process
//! writes why it stops ([`say`]: a missing module, settings the engine rejects), and the
//! worker reads it when the build fails.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::exit::Failure;

/// Descriptors of the worker that the init process closes.
static TO_CLOSE: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());
/// The report pipe's write end; -1 when none.
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

/// In the worker: `fd` must not outlive the clone in the init process.
pub fn drop_in_init(fd: RawFd) {
    TO_CLOSE.lock().unwrap_or_else(|e| e.into_inner()).push(fd);
}

/// In the init process, before a wasm workload runs.
pub fn close_in_init() {
    let fds = std::mem::take(&mut *TO_CLOSE.lock().unwrap_or_else(|e| e.into_inner()));
    let report = REPORT_FD.swap(-1, Ordering::Relaxed);
    for fd in fds.into_iter().chain((report >= 0).then_some(report)) {
        // SAFETY: each is a descriptor inherited from the worker, closed once.
        unsafe { libc::close(fd) };
    }
}

/// The worker's side of the report pipe.
pub struct Report {
    read: OwnedFd,
    write: Option<OwnedFd>,
}

impl Report {
    /// Opens the pipe; the init process cloned after this inherits both ends.
    pub fn open() -> Result<Self, Failure> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors this function then owns.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(Failure::from(std::io::Error::last_os_error()));
        }
        // SAFETY: fresh descriptors from pipe2.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        REPORT_FD.store(write.as_raw_fd(), Ordering::Relaxed);
        drop_in_init(read.as_raw_fd());
        Ok(Self { read, write: Some(write) })
    }

    /// What the init process said, if anything (called once it has stopped).
    pub fn read(mut self) -> Option<String> {
        REPORT_FD.store(-1, Ordering::Relaxed);
        drop(self.write.take());
        let mut text = String::new();
        let _ = std::fs::File::from(self.read).read_to_string(&mut text);
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    }
}

/// In the init process: says why it stops, as one line.
pub fn say(message: &str) {
    let fd = REPORT_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) of a valid buffer to the inherited pipe; errors are ignored.
        let _ = unsafe { libc::write(fd, message.as_ptr().cast(), message.len()) };
    }
}
