//! The two kinds of channel between the shim server and a launcher.
//!
//! - The **control channel**: a `SOCK_SEQPACKET` pair made when the launcher is spawned
//!   (its end is descriptor 3 in the launcher). The launcher announces itself on it once
//!   ([`Hello`]); after that the server sends one datagram per request, carrying only
//!   descriptors (`SCM_RIGHTS`): the request's own stream first, then the container's
//!   stdio for a create. Datagrams are atomic, so any server thread may send at any time.
//! - A **request stream**: a `UnixStream` pair per request. The server writes the request
//!   (one line of JSON) and shuts its write side; the launcher's forked worker reads it,
//!   does the work and writes the reply (one line of JSON). Reading stops at a deadline.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, sendmsg,
    socketpair,
};
use serde::{Deserialize, Serialize};

/// At most this many descriptors travel with one request (its stream and three stdio).
const MAX_FDS: usize = 4;
/// The largest [`Hello`] datagram.
const MAX_HELLO: usize = 64 * 1024;

/// What a launcher says once, right after it starts.
#[derive(Debug, Serialize, Deserialize)]
pub enum Hello {
    /// The plugin (if any) is loaded; requests are welcome.
    Ready,
    /// The plugin was refused; the launcher exits. The reason is one line.
    Refused(String),
}

/// A new control channel: (server end, launcher end), both close-on-exec.
pub fn control_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(io::Error::from)
}

/// Sends one request's descriptors.
pub fn send_fds(control: BorrowedFd<'_>, fds: &[RawFd]) -> io::Result<()> {
    let rights = [ControlMessage::ScmRights(fds)];
    sendmsg::<()>(control.as_raw_fd(), &[IoSlice::new(b"r")], &rights, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Receives one request's descriptors; `None` when the server closed the channel.
pub fn recv_fds(control: BorrowedFd<'_>) -> io::Result<Option<Vec<OwnedFd>>> {
    let mut byte = [0u8; 1];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        let mut iov = [IoSliceMut::new(&mut byte)];
        let msg = match recvmsg::<()>(
            control.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => other?,
        };
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                // SAFETY: the kernel just installed these descriptors in this process.
                fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        if msg.bytes == 0 && fds.is_empty() {
            return Ok(None);
        }
        return Ok(Some(fds));
    }
}

/// Sends the launcher's [`Hello`].
pub fn send_hello(control: BorrowedFd<'_>, hello: &Hello) -> io::Result<()> {
    let bytes = serde_json::to_vec(hello)?;
    sendmsg::<()>(control.as_raw_fd(), &[IoSlice::new(&bytes)], &[], MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Waits for the launcher's [`Hello`] until `deadline`.
pub fn recv_hello(control: BorrowedFd<'_>, deadline: Instant) -> io::Result<Hello> {
    wait_readable(control, deadline, "the launcher's hello")?;
    let mut buf = vec![0u8; MAX_HELLO];
    let n = nix::sys::socket::recv(control.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    if n == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the launcher exited before it was ready"));
    }
    serde_json::from_slice(&buf[..n]).map_err(io::Error::from)
}

/// Writes one message: JSON on one line.
pub fn write_message(stream: &mut UnixStream, json: &[u8]) -> io::Result<()> {
    stream.write_all(json)?;
    stream.write_all(b"\n")
}

/// Reads one message: up to a newline or until the peer closes the stream (a container
/// init process cloned by the worker may hold the worker's end open long after it
/// answered). Fails at `deadline`.
pub fn read_message(stream: &mut UnixStream, deadline: Instant) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = out.iter().position(|&b| b == b'\n') {
            out.truncate(end);
            return Ok(out);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer before the deadline"));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer before the deadline"));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits until `fd` is readable, or fails with TimedOut at `deadline` saying `what` did
/// not come.
pub fn wait_readable(fd: BorrowedFd<'_>, deadline: Instant, what: &str) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pollfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: poll on one valid descriptor.
        let n = unsafe { libc::poll(&mut pollfd, 1, ms) };
        match n {
            1.. => return Ok(()),
            0 => return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what} did not come in time"))),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}
