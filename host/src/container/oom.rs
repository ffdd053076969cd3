//! Watching a container's cgroup for out-of-memory kills, so the shim can publish
//! `TaskOOM` as runc's shim does. cgroup v1: an eventfd registered on
//! `memory.oom_control`; cgroup v2: `memory.events`' `oom_kill` count, polled while the
//! container lives. Containers under the systemd driver are not watched yet.

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Starts a thread that calls `on_oom` for every OOM kill in the container's cgroup
/// (`cgroups_path` as in the OCI spec), until the cgroup is removed.
pub fn watch(cgroups_path: &str, on_oom: impl Fn() + Send + 'static) {
    if cgroups_path.contains(':') {
        return; // systemd driver: the cgroup lives elsewhere
    }
    let relative = cgroups_path.trim_start_matches('/');
    let v2 = Path::new(CGROUP_ROOT).join(relative).join("memory.events");
    let v1 = Path::new(CGROUP_ROOT).join("memory").join(relative);
    let spawned = if v2.is_file() {
        std::thread::Builder::new().name("oom-v2".into()).spawn(move || watch_v2(&v2, on_oom))
    } else if v1.join("memory.oom_control").is_file() {
        match register_v1(&v1) {
            Ok(eventfd) => std::thread::Builder::new()
                .name("oom-v1".into())
                .spawn(move || watch_v1(eventfd, &v1, on_oom)),
            Err(e) => {
                tracing::warn!(cgroup = %v1.display(), "cannot watch for OOM kills: {e}");
                return;
            }
        }
    } else {
        return;
    };
    if let Err(e) = spawned {
        tracing::warn!("cannot start the OOM watcher: {e}");
    }
}

fn register_v1(cgroup: &Path) -> std::io::Result<OwnedFd> {
    // SAFETY: eventfd returns a new descriptor or -1.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned from here on.
    let eventfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let oom_control = fs::File::open(cgroup.join("memory.oom_control"))?;
    fs::write(
        cgroup.join("cgroup.event_control"),
        format!("{} {}", eventfd.as_raw_fd(), oom_control.as_raw_fd()),
    )?;
    // The kernel holds its own reference to memory.oom_control from here on.
    Ok(eventfd)
}

fn watch_v1(eventfd: OwnedFd, cgroup: &Path, on_oom: impl Fn()) {
    let mut file = fs::File::from(eventfd);
    let mut counter = [0u8; 8];
    // The eventfd also fires when the cgroup is removed: that ends the watch.
    while file.read_exact(&mut counter).is_ok() && cgroup.exists() {
        on_oom();
    }
}

fn watch_v2(events: &Path, on_oom: impl Fn()) {
    let mut seen = oom_kills(events).unwrap_or(0);
    while let Some(kills) = oom_kills(events) {
        if kills > seen {
            seen = kills;
            on_oom();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn oom_kills(events: &Path) -> Option<u64> {
    let text = fs::read_to_string(events).ok()?;
    text.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse().ok())
}
