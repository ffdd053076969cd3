//! Reaps every child of the shim in one thread (the shim is a subreaper, so container
//! processes become its children once their create helper exits). An exit goes to the
//! task service if it belongs to a task; otherwise it is kept until claimed (create
//! helpers are waited for this way, never with `waitpid` on a pid, which would race).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use signal_hook::consts::SIGCHLD;
use signal_hook::iterator::Signals;

type Listener = Box<dyn Fn(i32, i32) -> bool + Send + Sync>;

pub struct Reaper {
    unclaimed: Mutex<HashMap<i32, i32>>,
    exited: Condvar,
    listener: OnceLock<Listener>,
}

impl Reaper {
    pub fn start() -> Arc<Self> {
        let reaper = Arc::new(Self {
            unclaimed: Mutex::new(HashMap::new()),
            exited: Condvar::new(),
            listener: OnceLock::new(),
        });
        let mut signals = Signals::new([SIGCHLD]).expect("SIGCHLD handler");
        let worker = reaper.clone();
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || {
                worker.reap_all();
                for _ in signals.forever() {
                    worker.reap_all();
                }
            })
            .expect("reaper thread");
        reaper
    }

    /// Who gets exits first; returns whether it took the exit.
    pub fn set_listener(&self, listener: Listener) {
        let _ = self.listener.set(listener);
    }

    /// Waits for `pid` to exit and returns its status (128+N when killed by signal N).
    pub fn wait(&self, pid: i32) -> i32 {
        let mut unclaimed = self.unclaimed.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(status) = unclaimed.remove(&pid) {
                return status;
            }
            unclaimed = self
                .exited
                .wait_timeout(unclaimed, Duration::from_secs(1))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Takes an exit that happened before anyone asked for it.
    pub fn take(&self, pid: i32) -> Option<i32> {
        self.unclaimed.lock().unwrap_or_else(|e| e.into_inner()).remove(&pid)
    }

    fn reap_all(&self) {
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
            let taken = self.listener.get().is_some_and(|listener| listener(pid, status));
            if !taken {
                self.unclaimed.lock().unwrap_or_else(|e| e.into_inner()).insert(pid, status);
                self.exited.notify_all();
            }
        }
    }
}
