//! Terminals for containers and exec processes (`ctr run -t`, `ctr task exec -t`,
//! `kubectl exec -it`).
//!
//! The server listens on a console socket of its own (root only); the worker's
//! libcontainer connects to it, and the process's init sends the pseudo-terminal's master
//! end over it before it `execve`s (runc's `--console-socket` protocol). The server then
//! copies containerd's stdin FIFO to the master and the master to containerd's stdout
//! FIFO on a thread of the terminal's own. Nothing in the copy blocks: the descriptors
//! are non-blocking, output nobody reads is dropped past [`BACKLOG`], and the thread ends
//! when the terminal's last user has gone (EIO on the master) or its [`Terminal`] is
//! dropped with the task or exec record. ResizePty sets the master's window size.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::error::TaskError;
use crate::launcher::channel;

/// Where console sockets live: short paths (a socket address holds 108 bytes).
const CONSOLE_DIR: &str = "/run/containerd-shim-wasm/tty";
/// How long the process's init may take to send the master after the worker is done.
const MASTER_BOUND: Duration = Duration::from_secs(5);
/// Output kept for a reader that is behind; more is dropped.
const BACKLOG: usize = 1 << 20;

/// A listening console socket, removed when dropped.
pub struct ConsoleSocket {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleSocket {
    pub fn bind() -> Result<Self, TaskError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let error = |e: std::io::Error| TaskError::Internal(format!("cannot make a console socket: {e}"));
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(CONSOLE_DIR).map_err(error)?;
        std::fs::set_permissions(CONSOLE_DIR, std::fs::Permissions::from_mode(0o700)).map_err(error)?;
        let name = format!("{}-{}.sock", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = PathBuf::from(CONSOLE_DIR).join(name);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(error)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(error)?;
        listener.set_nonblocking(true).map_err(error)?;
        Ok(Self { listener, path })
    }

    /// The master end the process's init sent (at most [`MASTER_BOUND`] from now). A
    /// connection that brings no pseudo-terminal master is ignored.
    pub fn receive_master(&self) -> Result<OwnedFd, TaskError> {
        let deadline = Instant::now() + MASTER_BOUND;
        loop {
            let waited = channel::wait_readable(self.listener.as_fd(), deadline, "the process's terminal");
            waited
                .map_err(|e| TaskError::Internal(format!("no terminal from the container's process: {e}")))?;
            let Ok((stream, _)) = self.listener.accept() else { continue };
            if channel::wait_readable(stream.as_fd(), deadline, "the terminal").is_err() {
                continue;
            }
            let fds = channel::recv_fds(stream.as_fd()).ok().flatten().unwrap_or_default();
            if let Some(master) = fds.into_iter().find(is_pty_master) {
                return Ok(master);
            }
            tracing::warn!("a connection to the console socket brought no terminal; ignored");
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A character device opened from a `ptmx` (major 5, minor 2).
fn is_pty_master(fd: &OwnedFd) -> bool {
    // SAFETY: fstat into a zeroed stat of a descriptor this function borrows.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) } == 0;
    ok && stat.st_mode & libc::S_IFMT == libc::S_IFCHR
        && libc::major(stat.st_rdev) == 5
        && libc::minor(stat.st_rdev) == 2
}

/// A served terminal: its master end (for ResizePty) and the stop line of its copy
/// thread, which ends when this is dropped.
#[derive(Debug)]
pub struct Terminal {
    master: OwnedFd,
    _stop: OwnedFd,
}

impl Terminal {
    /// Starts copying `stdin` to the master and the master to `stdout`.
    pub fn serve(
        master: OwnedFd,
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        what: String,
    ) -> Result<Self, TaskError> {
        let error = |e: std::io::Error| TaskError::Internal(format!("cannot serve the terminal: {e}"));
        let (stop_read, stop_write) = pipe().map_err(error)?;
        for fd in [Some(&master), stdin.as_ref(), Some(&stdout)].into_iter().flatten() {
            set_nonblocking(fd).map_err(error)?;
        }
        let copy = Copy {
            master: File::from(master.try_clone().map_err(error)?),
            stdin: stdin.map(File::from),
            stdout: File::from(stdout),
            stop: stop_read,
            to_master: Vec::new(),
            to_stdout: Vec::new(),
        };
        std::thread::Builder::new()
            .name("terminal".into())
            .spawn(move || {
                if let Err(e) = copy.run() {
                    tracing::warn!("{what}: terminal copy ended: {e}");
                }
            })
            .map_err(error)?;
        Ok(Self { master, _stop: stop_write })
    }

    /// ResizePty: the terminal's window size (at most 65535 × 65535).
    pub fn resize(&self, width: u32, height: u32) -> Result<(), TaskError> {
        let clamp = |n: u32| n.min(u32::from(u16::MAX)) as u16;
        let size = libc::winsize { ws_row: clamp(height), ws_col: clamp(width), ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ on a terminal this task owns, with a valid winsize.
        if unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(TaskError::Internal(format!("cannot resize the terminal: {e}")));
        }
        Ok(())
    }
}

/// The copy thread's state.
struct Copy {
    master: File,
    stdin: Option<File>,
    stdout: File,
    /// Hangs up when the [`Terminal`] is dropped.
    stop: OwnedFd,
    to_master: Vec<u8>,
    to_stdout: Vec<u8>,
}

impl Copy {
    fn run(mut self) -> std::io::Result<()> {
        let mut buf = [0u8; 8192];
        loop {
            let master_events = libc::POLLIN | if self.to_master.is_empty() { 0 } else { libc::POLLOUT };
            let mut fds = vec![
                libc::pollfd { fd: self.stop.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: self.master.as_raw_fd(), events: master_events, revents: 0 },
                libc::pollfd {
                    fd: self.stdout.as_raw_fd(),
                    events: if self.to_stdout.is_empty() { 0 } else { libc::POLLOUT },
                    revents: 0,
                },
            ];
            // Input waits while the terminal has not taken the last of it.
            if let Some(stdin) = self.stdin.as_ref().filter(|_| self.to_master.is_empty()) {
                fds.push(libc::pollfd { fd: stdin.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            }
            // SAFETY: poll on descriptors this thread owns.
            if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) } < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[0].revents != 0 {
                return Ok(()); // the task or exec is gone
            }
            if fds[1].revents & libc::POLLOUT != 0 {
                write_some(&mut self.master, &mut self.to_master)?;
            }
            if fds[1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                match self.master.read(&mut buf) {
                    // EOF or EIO: every slave descriptor is closed (the processes are gone).
                    Ok(0) => return self.flush(),
                    Err(e) if e.raw_os_error() == Some(libc::EIO) => return self.flush(),
                    Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
                    Err(e) => return Err(e),
                    Ok(n) => {
                        if self.to_stdout.len() + n <= BACKLOG {
                            self.to_stdout.extend_from_slice(&buf[..n]);
                        } else {
                            tracing::debug!("terminal output dropped: nobody reads it");
                        }
                    }
                }
            }
            if fds[2].revents & (libc::POLLOUT | libc::POLLERR) != 0 {
                write_some(&mut self.stdout, &mut self.to_stdout)?;
            }
            if fds.len() > 3 && fds[3].revents != 0 {
                let stdin = self.stdin.as_mut().expect("polled stdin");
                match stdin.read(&mut buf) {
                    Ok(0) => self.stdin = None, // containerd closed stdin
                    Ok(n) => self.to_master.extend_from_slice(&buf[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
                    Err(_) => self.stdin = None,
                }
            }
        }
    }

    /// Writes what output is left, as far as the reader takes it now.
    fn flush(mut self) -> std::io::Result<()> {
        write_some(&mut self.stdout, &mut self.to_stdout)
    }
}

/// Writes as much of `pending` as `to` takes without blocking; drops it when nobody reads.
fn write_some(to: &mut File, pending: &mut Vec<u8>) -> std::io::Result<()> {
    while !pending.is_empty() {
        match to.write(pending) {
            Ok(n) => {
                pending.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::EIO)) => {
                pending.clear();
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor this function borrows.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors this function then owns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors from pipe2.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
