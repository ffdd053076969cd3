//! The parent side of an engine process: spawn this binary with a hidden subcommand,
//! forward termination signals to it, and turn its end into an exit status. A crash
//! (a signal the parent did not forward) is reported as one error line.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;

use super::{ENGINE_COMMAND, EngineRequest, LOADED_FD, PROBE_COMMAND, REQUEST_FD};
use crate::exit::{Failure, Outcome, SHIM_FAILURE};

/// Runs `request` in an engine process with this process's stdio, and waits for it.
pub fn run(engine: &str, request: &EngineRequest) -> Outcome {
    let mut request_file = crate::images::memory_file("engine-request")?;
    request_file.write_all(&serde_json::to_vec(request)?)?;
    request_file.seek(SeekFrom::Start(0))?;
    let request_fd = request_file.as_raw_fd();
    // Made after the request file, so its descriptors are above REQUEST_FD's source.
    let (loaded, loaded_in_child) = std::io::pipe()
        .map_err(|e| Failure::new(SHIM_FAILURE, format!("cannot make a pipe for the engine process: {e}")))?;
    let loaded_fd = loaded_in_child.as_raw_fd();
    let mut command = Command::new(self_exe()?);
    command.arg(ENGINE_COMMAND);
    // SAFETY: prctl, dup2 and fcntl are async-signal-safe. If this process dies without
    // forwarding a signal (SIGKILL), the engine process must not outlive it.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            crate::exec_fd::inherit_as(request_fd, REQUEST_FD)?;
            crate::exec_fd::inherit_as(loaded_fd, LOADED_FD)
        })
    };
    // Handlers go in before the engine starts: a signal that arrives once the program is
    // running must be forwarded, never end this process by default.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGQUIT])?;
    let mut child = command
        .spawn()
        .map_err(|e| Failure::new(SHIM_FAILURE, format!("cannot start the engine process: {e}")))?;
    let pid = child.id() as libc::pid_t;
    drop(loaded_in_child);

    let forwarded = Arc::new(AtomicI32::new(0));
    let signals_handle = signals.handle();
    let forwarder = {
        let forwarded = forwarded.clone();
        std::thread::spawn(move || {
            for signal in signals.forever() {
                forwarded.store(signal, Ordering::SeqCst);
                // SAFETY: plain kill(2) on our own child.
                unsafe { libc::kill(pid, signal) };
            }
        })
    };
    let status = match wait_until_loaded(loaded) {
        Ok(()) => child.wait(),
        Err(waited) => {
            let _ = child.kill();
            let _ = child.wait();
            signals_handle.close();
            let _ = forwarder.join();
            return Err(Failure::new(
                SHIM_FAILURE,
                format!(
                    "the {engine} engine plugin {} did not finish loading in {} s (its initialisers block); \
                     install a working build of it, or choose another engine",
                    request.plugin.display(),
                    waited.as_secs()
                ),
            ));
        }
    };
    signals_handle.close();
    let _ = forwarder.join();
    let status = status.map_err(|e| Failure::new(SHIM_FAILURE, format!("lost the engine process: {e}")))?;

    if let Some(code) = status.code() {
        return Ok(code as u8);
    }
    let signal = status.signal().unwrap_or(0);
    let exit_status = 128u8.wrapping_add(signal as u8);
    if signal == forwarded.load(Ordering::SeqCst) {
        // Stopped on request: end like a process killed by that signal would.
        return Ok(exit_status);
    }
    Err(Failure::new(
        exit_status,
        format!(
            "the {engine} engine process crashed: killed by signal {} ({signal}) while running {}; \
             plugin {}; this process is unaffected",
            signal_name(signal),
            request.module.display(),
            request.plugin.display()
        ),
    ))
}

/// How long loading and describing one plugin may take.
pub const PROBE_BOUND: Duration = Duration::from_secs(10);
/// How long an engine process may take to load its plugin and make the engine.
pub const LOAD_BOUND: Duration = PROBE_BOUND;

/// Waits for the engine process's byte on [`LOADED_FD`], or for the pipe to close (the
/// process ended first: its own error says why). `Err` with the time waited when
/// neither came within [`LOAD_BOUND`].
fn wait_until_loaded(pipe: std::io::PipeReader) -> Result<(), Duration> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let deadline = Instant::now() + LOAD_BOUND;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LOAD_BOUND);
        }
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            // A byte, or end of file (POLLHUP): either way the wait is over.
            Ok(n) if n > 0 => return Ok(()),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Ok(()),
        }
    }
}

/// Runs `__engine-probe <plugin>` and collects its output; a probe that does not end
/// within [`PROBE_BOUND`] (a plugin whose constructor blocks) is killed: `TimedOut`.
pub fn probe(plugin: &Path) -> std::io::Result<Output> {
    let mut child = Command::new(self_exe()?)
        .arg(PROBE_COMMAND)
        .arg(plugin)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Each reader says when its pipe is at its end: the probe has exited (or closed it).
    let (ended, pipes_ended) = std::sync::mpsc::channel();
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        let ended = ended.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let _ = ended.send(());
            bytes
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + PROBE_BOUND;
    let timed_out = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
        std::io::Error::new(std::io::ErrorKind::TimedOut, "the plugin did not finish loading")
    };
    // Woken by the pipes' end rather than polling: a probe takes a few milliseconds.
    for _ in 0..2 {
        if pipes_ended.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_err() {
            return Err(timed_out(&mut child));
        }
    }
    // Both pipes are at their end; the exit is at most a moment behind (bounded all the same).
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            return Err(timed_out(&mut child));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn self_exe() -> std::io::Result<std::path::PathBuf> {
    std::env::current_exe()
}

pub fn signal_name(signal: i32) -> &'static str {
    signal_hook::low_level::signal_name(signal).unwrap_or("unknown signal")
}
