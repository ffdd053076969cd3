//! Handing a descriptor to a program this binary starts, at the number the program reads
//! it from: the launcher's control socket, the server's listener, an engine process's
//! request.

use std::os::fd::RawFd;

/// Between fork and exec (async-signal-safe): makes `fd` the child's descriptor
/// `target`, left open across exec.
pub fn inherit_as(fd: RawFd, target: RawFd) -> std::io::Result<()> {
    // SAFETY: dup2 and fcntl on this process's own descriptors, both async-signal-safe.
    // dup2 onto itself keeps close-on-exec, so that case clears it explicitly.
    let moved =
        unsafe { if fd == target { libc::fcntl(target, libc::F_SETFD, 0) } else { libc::dup2(fd, target) } };
    if moved < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}
