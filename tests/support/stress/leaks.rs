//! What a run left behind, read from the kernel: processes, mounts, cgroups, runtime state
//! directories, and the shim server's open descriptors and resident memory.

use std::fs;
use std::path::{Path, PathBuf};

/// What was left after every task was deleted.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Processes still in the run's cgroups, or children of the shim server that are not
    /// its own long-lived helpers ("pid cmdline").
    pub processes: Vec<String>,
    /// Mount points under the run's work directory.
    pub mounts: Vec<String>,
    /// Cgroup directories under the run's cgroup parent.
    pub cgroups: Vec<String>,
    /// Entries in the runtime's state directories.
    pub state: Vec<String>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
            && self.mounts.is_empty()
            && self.cgroups.is_empty()
            && self.state.is_empty()
    }

    pub fn summary(&self) -> String {
        if self.is_empty() {
            return "nothing".into();
        }
        let mut parts = Vec::new();
        for (what, items) in [
            ("processes", &self.processes),
            ("mounts", &self.mounts),
            ("cgroups", &self.cgroups),
            ("state entries", &self.state),
        ] {
            if !items.is_empty() {
                let shown: Vec<&str> = items.iter().take(5).map(String::as_str).collect();
                parts.push(format!("{} {what} ({})", items.len(), shown.join("; ")));
            }
        }
        parts.join(", ")
    }
}

/// Cgroup directories of `parent` in every hierarchy (v1 controllers, v2 unified).
pub fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let root = Path::new("/sys/fs/cgroup");
    if root.join(parent).join("cgroup.procs").exists() {
        dirs.push(root.join(parent));
    }
    for entry in fs::read_dir(root).into_iter().flatten().flatten() {
        let dir = entry.path().join(parent);
        if dir.is_dir() {
            dirs.push(dir);
        }
    }
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Reads what is left: `cgroup_parent` holds every task's cgroup, `work` every bundle,
/// `state_dirs` the runtime's per-container state, `server` is the shim server's pid.
pub fn leftovers(cgroup_parent: &str, work: &Path, state_dirs: &[PathBuf], server: Option<i32>) -> Leftovers {
    let mut left = Leftovers::default();
    for dir in cgroup_dirs(cgroup_parent) {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                left.cgroups.push(entry.path().display().to_string());
                let procs = fs::read_to_string(entry.path().join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines() {
                    left.processes.push(format!("{pid} {}", cmdline(pid.parse().unwrap_or(0))));
                }
            }
        }
    }
    if let Some(server) = server {
        for pid in children(server) {
            let cmd = cmdline(pid);
            if !cmd.contains("__launcher") {
                left.processes.push(format!("{pid} {cmd}"));
            }
        }
    }
    left.processes.sort();
    left.processes.dedup();
    let work = work.display().to_string();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    left.mounts = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&work))
        .map(String::from)
        .collect();
    for dir in state_dirs {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            left.state.push(entry.path().display().to_string());
        }
    }
    left
}

/// Removes the (empty) cgroup parent directories after a run.
pub fn remove_cgroup_parent(parent: &str) {
    for dir in cgroup_dirs(parent) {
        let _ = fs::remove_dir(dir);
    }
}

pub fn cmdline(pid: i32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
    let text = text.trim();
    if text.len() > 120 { format!("{}…", &text[..120]) } else { text.to_string() }
}

/// The shim server serving `namespace`: the process whose command line names the
/// namespace, other than a `start` (both this shim's server and runc's have one).
pub fn shim_server(namespace: &str) -> Option<i32> {
    let needle = format!("-namespace {namespace} ");
    crate::support::containerd::processes_matching(&needle).into_iter().find(|&pid| {
        let cmd = cmdline(pid);
        !cmd.ends_with(" start") && !cmd.contains(" start ")
    })
}

/// Direct children of `pid`.
pub fn children(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        if parent_of(child) == Some(pid) {
            found.push(child);
        }
    }
    found
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The shim server's open descriptors and resident memory at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerSample {
    pub tasks_done: usize,
    pub fds: usize,
    pub rss_kib: u64,
}

pub fn sample(pid: i32, tasks_done: usize) -> ServerSample {
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    ServerSample { tasks_done, fds, rss_kib: status_kib(pid, "VmRSS:").unwrap_or(0) }
}

/// `file` of each thread of `pid` (`/proc/<pid>/task/*/<file>`); none once it is gone.
pub fn per_thread(pid: i32, file: &str) -> Vec<String> {
    let tasks =
        fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.flatten().collect()).unwrap_or(Vec::new());
    tasks.iter().filter_map(|task| fs::read_to_string(task.path().join(file)).ok()).collect()
}

/// A `kB` field of `/proc/<pid>/status`.
pub fn status_kib(pid: i32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Proportional set size of a process (its share of every page it maps), in KiB.
pub fn pss_kib(pid: i32) -> u64 {
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
