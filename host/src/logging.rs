//! Where the shim's logs go, and why writing a log line can never fail.
//!
//! Logs are `tracing` events written to stderr: containerd's log FIFO for the shim server,
//! the terminal for operator commands; a launcher inherits the server's.
//! Two hazards shape this module:
//! - containerd closes a shim's log FIFO when the container whose bundle holds it is
//!   deleted, while the shim goes on serving the pod's other containers: a failed write
//!   must not become a panic (`eprintln!`) in a request thread;
//! - a container's init process is cloned from a launcher's worker and its stderr becomes
//!   the container's: the launcher logs to a copy of its stderr, which the init process
//!   drops ([`release`]) before the workload runs.

use std::sync::atomic::{AtomicI32, Ordering};

/// The descriptor logs go to; -1 drops them.
static LOG_FD: AtomicI32 = AtomicI32::new(2);

/// Installs the subscriber: level from `RUST_LOG`, else `default`.
pub fn init(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Logs go to a copy of the current stderr (the launcher's, the server's log), not to
/// whatever descriptor 2 becomes later.
pub fn keep_off_stderr() {
    // SAFETY: F_DUPFD_CLOEXEC on stderr; on failure logs stay on descriptor 2.
    let copy = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 10) };
    if copy >= 0 {
        LOG_FD.store(copy, Ordering::Relaxed);
    }
}

/// Drops this process's logs and closes the copy (in a container's init process, before
/// the workload runs: the container's process writes nothing to the shim's log).
pub fn release() {
    let fd = LOG_FD.swap(-1, Ordering::Relaxed);
    if fd > 2 {
        // SAFETY: closes the copy made by keep_off_stderr, once.
        unsafe { libc::close(fd) };
    }
}

struct LossyWriter;

impl std::io::Write for LossyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let fd = LOG_FD.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: write(2) of a valid buffer; errors are ignored on purpose.
            let _ = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
