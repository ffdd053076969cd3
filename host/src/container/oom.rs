//! Watching containers' cgroups for out-of-memory kills, so the shim can publish
//! `TaskOOM` as runc's shim does. cgroup v1: an eventfd registered on
//! `memory.oom_control`; cgroup v2: `memory.events`' `oom_kill` count, read every 200 ms
//! while the container lives. Containers under the systemd driver are not watched yet.
//!
//! One thread watches every container of the server (an epoll set of the v1 eventfds):
//! a thread per container cost its stack and an allocator arena, a third of the server's
//! anonymous memory with 20 containers running.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// How often cgroup v2 counters are read, and the longest the watcher sleeps.
const V2_POLL_MS: u16 = 200;
const IDLE_MS: u16 = 5_000;

type OnOom = Arc<dyn Fn() + Send + Sync>;

/// Calls `on_oom` for every OOM kill in the container's cgroup (`cgroups_path` as in
/// the OCI spec), until the cgroup is removed.
pub fn watch(cgroups_path: &str, on_oom: impl Fn() + Send + Sync + 'static) {
    if cgroups_path.contains(':') {
        return; // systemd driver: the cgroup lives elsewhere
    }
    let relative = cgroups_path.trim_start_matches('/');
    let v2 = Path::new(CGROUP_ROOT).join(relative).join("memory.events");
    let v1 = Path::new(CGROUP_ROOT).join("memory").join(relative);
    let watched = if v2.is_file() {
        Watched::V2 { seen: oom_kills(&v2).unwrap_or(0), events: v2 }
    } else if v1.join("memory.oom_control").is_file() {
        match register_v1(&v1) {
            Ok(eventfd) => Watched::V1 { eventfd: fs::File::from(eventfd), cgroup: v1 },
            Err(e) => {
                tracing::warn!(cgroup = %v1.display(), "cannot watch for OOM kills: {e}");
                return;
            }
        }
    } else {
        return;
    };
    match watcher() {
        Ok(watcher) => watcher.add(watched, Arc::new(on_oom)),
        Err(e) => tracing::warn!("cannot start the OOM watcher: {e}"),
    }
}

enum Watched {
    V1 { eventfd: fs::File, cgroup: PathBuf },
    V2 { events: PathBuf, seen: u64 },
}

struct Watcher {
    epoll: Epoll,
    /// Written by [`Watcher::add`] so that a new cgroup v2 entry is read from the next
    /// 200 ms on, not after an idle wait.
    wake: fs::File,
    /// By token: the eventfd's number for v1 (unique while the entry holds it open).
    entries: Mutex<HashMap<u64, (Watched, OnOom)>>,
    next_v2_token: std::sync::atomic::AtomicU64,
}

/// The epoll token of [`Watcher::wake`].
const WAKE: u64 = u64::MAX;

/// The server's one watcher, its thread started with the first container (and again at
/// the next container if that failed).
fn watcher() -> Result<Arc<Watcher>, String> {
    static WATCHER: Mutex<Option<Arc<Watcher>>> = Mutex::new(None);
    let mut current = WATCHER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(watcher) = current.as_ref() {
        return Ok(watcher.clone());
    }
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| e.to_string())?;
    let wake = fs::File::from(new_eventfd().map_err(|e| e.to_string())?);
    epoll.add(&wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE)).map_err(|e| e.to_string())?;
    let watcher = Arc::new(Watcher {
        epoll,
        wake,
        entries: Mutex::new(HashMap::new()),
        // Above any descriptor number, so v2 tokens never meet v1 ones.
        next_v2_token: std::sync::atomic::AtomicU64::new(1 << 32),
    });
    let running = watcher.clone();
    std::thread::Builder::new().name("oom".into()).spawn(move || running.run()).map_err(|e| e.to_string())?;
    *current = Some(watcher.clone());
    Ok(watcher)
}

impl Watcher {
    fn add(&self, watched: Watched, on_oom: OnOom) {
        let mut entries = self.lock();
        let token = match &watched {
            Watched::V1 { eventfd, .. } => {
                let token = eventfd.as_raw_fd() as u64;
                if let Err(e) = self.epoll.add(eventfd, EpollEvent::new(EpollFlags::EPOLLIN, token)) {
                    tracing::warn!("cannot watch for OOM kills: {e}");
                    return;
                }
                token
            }
            Watched::V2 { .. } => {
                // Wakes the thread from an idle wait, so that it reads the counter soon.
                let _ = (&self.wake).write_all(&1u64.to_ne_bytes());
                self.next_v2_token.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            }
        };
        entries.insert(token, (watched, on_oom));
    }

    fn run(&self) {
        let mut ready = [EpollEvent::empty(); 32];
        loop {
            let has_v2 = self.lock().values().any(|(w, _)| matches!(w, Watched::V2 { .. }));
            let timeout = EpollTimeout::from(if has_v2 { V2_POLL_MS } else { IDLE_MS });
            let n = self.epoll.wait(&mut ready, timeout).unwrap_or(0);
            let mut fired: Vec<OnOom> = Vec::new();
            {
                let mut entries = self.lock();
                for event in &ready[..n] {
                    let token = event.data();
                    if token == WAKE {
                        let _ = (&self.wake).read(&mut [0u8; 8]);
                        continue;
                    }
                    let Some((Watched::V1 { eventfd, cgroup }, on_oom)) = entries.get_mut(&token) else {
                        continue;
                    };
                    let mut counter = [0u8; 8];
                    // The eventfd also fires when the cgroup is removed: that ends the watch.
                    if eventfd.read_exact(&mut counter).is_ok() && cgroup.exists() {
                        fired.push(on_oom.clone());
                    } else {
                        let _ = self.epoll.delete(&*eventfd);
                        entries.remove(&token);
                    }
                }
                if has_v2 {
                    entries.retain(|_, (watched, on_oom)| {
                        let Watched::V2 { events, seen } = watched else { return true };
                        let Some(kills) = oom_kills(events) else { return false };
                        if kills > *seen {
                            *seen = kills;
                            fired.push(on_oom.clone());
                        }
                        true
                    });
                }
            }
            for on_oom in fired {
                on_oom();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Watched, OnOom)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn new_eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: eventfd returns a new descriptor or -1.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned from here on.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn register_v1(cgroup: &Path) -> std::io::Result<OwnedFd> {
    let eventfd = new_eventfd()?;
    let oom_control = fs::File::open(cgroup.join("memory.oom_control"))?;
    fs::write(
        cgroup.join("cgroup.event_control"),
        format!("{} {}", eventfd.as_raw_fd(), oom_control.as_raw_fd()),
    )?;
    // The kernel holds its own reference to memory.oom_control from here on.
    Ok(eventfd)
}

fn oom_kills(events: &Path) -> Option<u64> {
    let text = fs::read_to_string(events).ok()?;
    text.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse().ok())
}
