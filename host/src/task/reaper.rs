//! Reaps every child of the shim server, in one thread. The server is a child subreaper:
//! container init processes are reparented to it when the launcher worker that cloned
//! them exits, and so are their orphans. This is the only `waitpid` in the server, and
//! nothing else in it waits for a child: the OCI hooks libcontainer runs are children of
//! launcher workers, never of the server.

use signal_hook::consts::SIGCHLD;
use signal_hook::iterator::Signals;

/// Starts the reaper; `on_exit(pid, status)` gets every exit (status 128+N when killed
/// by signal N).
pub fn start(on_exit: impl Fn(u32, i32) + Send + 'static) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGCHLD])?;
    std::thread::Builder::new().name("reaper".into()).spawn(move || {
        reap_all(&on_exit);
        for _ in signals.forever() {
            reap_all(&on_exit);
        }
    })?;
    Ok(())
}

fn reap_all(on_exit: &impl Fn(u32, i32)) {
    loop {
        let mut raw = 0;
        // SAFETY: waitpid on any child, non-blocking.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        let status = if libc::WIFEXITED(raw) {
            libc::WEXITSTATUS(raw)
        } else if libc::WIFSIGNALED(raw) {
            128 + libc::WTERMSIG(raw)
        } else {
            continue;
        };
        on_exit(pid as u32, status);
    }
}
