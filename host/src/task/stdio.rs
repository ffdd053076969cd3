//! The container's stdio: containerd's FIFOs, `file://` URIs, or nothing; FIFOs are
//! opened so that opening never blocks on a missing peer (an output FIFO waits, 2 s at
//! most, for containerd's reader: [`open_output`]). With a terminal, the process's
//! stdio is the terminal and the FIFOs are the server's ([`for_process`], [`serve`]).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::time::{Duration, Instant};

use super::error::TaskError;
use super::terminal::{ConsoleSocket, Terminal};

/// What a worker hands the process as stdin, stdout, stderr; with `terminal`, also the
/// console socket its terminal will come through (the process's stdio is then
/// `/dev/null` until the terminal replaces it).
pub fn for_process(
    terminal: bool,
    stdin: &str,
    stdout: &str,
    stderr: &str,
) -> Result<(Option<ConsoleSocket>, [OwnedFd; 3]), TaskError> {
    let console = terminal.then(ConsoleSocket::bind).transpose()?;
    let fds = match console {
        Some(_) => open("", "", "")?,
        None => open(stdin, stdout, stderr)?,
    };
    Ok((console, fds))
}

/// The terminal that came through `console`, served between it and containerd's FIFOs.
pub fn serve(
    console: &ConsoleSocket,
    stdin: &str,
    stdout: &str,
    what: String,
) -> Result<Terminal, TaskError> {
    let master = console.receive_master()?;
    let stdin = if stdin.is_empty() { None } else { Some(open_input(stdin)?) };
    Terminal::serve(master, stdin, open_output(stdout, Instant::now() + READER_BOUND)?, what)
}

/// How long opening the container's stdio waits for containerd to open its end of the
/// output FIFOs ([`open_output`]).
const READER_BOUND: Duration = Duration::from_secs(2);

/// stdin, stdout, stderr for the container.
pub fn open(stdin: &str, stdout: &str, stderr: &str) -> Result<[OwnedFd; 3], TaskError> {
    let readers_by = Instant::now() + READER_BOUND;
    Ok([open_input(stdin)?, open_output(stdout, readers_by)?, open_output(stderr, readers_by)?])
}

fn open_input(path: &str) -> Result<OwnedFd, TaskError> {
    if path.is_empty() {
        return Ok(File::open("/dev/null").map_err(|e| io_error("/dev/null", e))?.into());
    }
    // Non-blocking open returns at once even before containerd opens the write end;
    // reads must block again afterwards.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    // SAFETY: fcntl on a descriptor this function owns.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    Ok(file.into())
}

fn open_output(path: &str, readers_by: Instant) -> Result<OwnedFd, TaskError> {
    // `ctr run --log-uri file:///x` and CRI-less clients: append to a file.
    if let Some(file) = path.strip_prefix("file://") {
        let file = OpenOptions::new().create(true).append(true).open(file).map_err(|e| io_error(path, e))?;
        return Ok(file.into());
    }
    if path.starts_with("binary://") {
        return Err(TaskError::InvalidArgument(format!(
            "stdio {path}: binary:// log URIs are not supported by the wasm shim; use a FIFO or file:// URI"
        )));
    }
    let path = if path.is_empty() { "/dev/null" } else { path };
    let is_fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    // Held until the descriptor below is open: the reader never sees no writer.
    let _reader_seen = if is_fifo { wait_for_reader(path, readers_by) } else { None };
    // Read-write never blocks on a FIFO, whether or not the reader is there yet.
    let file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| io_error(path, e))?;
    Ok(file.into())
}

/// Waits until containerd has the output FIFO `path` open for reading, or until
/// `until`; returns a write descriptor proving it, to be closed only once the container's
/// descriptor is open (closing the only writer would end the reader's copy at once).
///
/// The container writes into the FIFO itself. What it writes lives in the pipe only while
/// some descriptor is open, and containerd's client opens its end from a goroutine that
/// runs late under load: a program that wrote and exited before then lost its output
/// (`ctr run` printed nothing, 1 task in 300 at 8 in parallel). A writer's non-blocking
/// open fails (ENXIO) until a reader, even one still waiting in open(2), is there. With no
/// reader by `until`, the container starts anyway, as before.
fn wait_for_reader(path: &str, until: Instant) -> Option<File> {
    loop {
        let probe = OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path);
        match probe {
            Ok(file) => return Some(file),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                tracing::warn!(
                    path,
                    "no reader opened the output FIFO in {READER_BOUND:?}: output may be lost"
                );
                return None;
            }
            Err(e) => {
                tracing::debug!(path, "cannot probe the output FIFO for a reader: {e}");
                return None;
            }
        }
    }
}

fn io_error(path: &str, e: std::io::Error) -> TaskError {
    TaskError::Internal(format!("cannot open the container's stdio {path}: {e}"))
}
