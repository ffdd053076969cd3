//! Terminals for exec processes (`kubectl exec -t`, `ctr task exec -t`).
//!
//! The server listens on a console socket of its own; the worker's libcontainer connects
//! to it, and the exec process's init sends the pseudo-terminal's master end over it
//! before it `execve`s (runc's `--console-socket` protocol). The server then copies
//! containerd's stdin FIFO to the master and the master to containerd's stdout FIFO, on a
//! thread of the terminal's own that ends when the terminal's last user has gone (the
//! master reads EOF or EIO); ResizePty sets the master's window size.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::error::TaskError;
use crate::launcher::channel;

/// Where console sockets live: short paths (a socket address holds 108 bytes).
const CONSOLE_DIR: &str = "/run/containerd-shim-wasm/tty";
/// How long the exec process's init may take to send the master after the worker is done.
const MASTER_BOUND: Duration = Duration::from_secs(5);

/// A listening console socket, removed when dropped.
pub struct ConsoleSocket {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleSocket {
    pub fn bind() -> Result<Self, TaskError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let error = |e: std::io::Error| TaskError::Internal(format!("cannot make a console socket: {e}"));
        std::fs::create_dir_all(CONSOLE_DIR).map_err(error)?;
        let name = format!("{}-{}.sock", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = PathBuf::from(CONSOLE_DIR).join(name);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(error)?;
        listener.set_nonblocking(true).map_err(error)?;
        Ok(Self { listener, path })
    }

    /// The master end the exec process's init sent (at most [`MASTER_BOUND`] from now).
    pub fn receive_master(&self) -> Result<OwnedFd, TaskError> {
        let error =
            |e: std::io::Error| TaskError::Internal(format!("no terminal from the exec process: {e}"));
        let deadline = Instant::now() + MASTER_BOUND;
        channel::wait_readable(self.listener.as_fd(), deadline, "the connection from the exec process")
            .map_err(error)?;
        let (stream, _) = self.listener.accept().map_err(error)?;
        channel::wait_readable(stream.as_fd(), deadline, "the terminal").map_err(error)?;
        let fds = channel::recv_fds(stream.as_fd()).map_err(error)?.unwrap_or_default();
        fds.into_iter().next().ok_or_else(|| TaskError::Internal("the exec process sent no terminal".into()))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Copies `stdin` to the terminal and the terminal to `stdout` until the terminal's
/// last user has gone, on a thread of its own.
pub fn copy(master: OwnedFd, stdin: Option<OwnedFd>, stdout: OwnedFd, what: String) -> Result<(), TaskError> {
    std::thread::Builder::new()
        .name("terminal".into())
        .spawn(move || {
            if let Err(e) = copy_loop(master, stdin, stdout) {
                tracing::warn!("{what}: terminal copy ended: {e}");
            }
        })
        .map(|_| ())
        .map_err(|e| TaskError::Internal(format!("cannot start the terminal copy: {e}")))
}

fn copy_loop(master: OwnedFd, stdin: Option<OwnedFd>, stdout: OwnedFd) -> std::io::Result<()> {
    let mut master = File::from(master);
    let mut stdin = stdin.map(File::from);
    let mut stdout = File::from(stdout);
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![libc::pollfd { fd: master.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        if let Some(stdin) = &stdin {
            fds.push(libc::pollfd { fd: stdin.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        // SAFETY: poll on descriptors this loop owns. The timeout only re-checks.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if fds[0].revents != 0 {
            match master.read(&mut buf) {
                // EIO: every slave descriptor is closed (the processes have exited).
                Ok(0) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EIO) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
                Ok(n) => {
                    if let Err(e) = stdout.write_all(&buf[..n]) {
                        // Nobody reads any more (containerd closed the FIFO): drain on.
                        tracing::debug!("terminal output dropped: {e}");
                    }
                }
            }
        }
        if fds.len() > 1 && fds[1].revents != 0 {
            let reader = stdin.as_mut().expect("polled stdin");
            match reader.read(&mut buf) {
                Ok(0) => stdin = None, // containerd closed stdin (CloseIO)
                Ok(n) => master.write_all(&buf[..n])?,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => stdin = None,
            }
        }
    }
}

/// ResizePty: the terminal's window size.
pub fn resize(master: &OwnedFd, width: u32, height: u32) -> Result<(), TaskError> {
    let size = libc::winsize { ws_row: height as u16, ws_col: width as u16, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ on a terminal this task owns, with a valid winsize.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(TaskError::Internal(format!("cannot resize the terminal: {e}")));
    }
    Ok(())
}
