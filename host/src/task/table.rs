//! The task table: every task of this shim, which init process belongs to which task,
//! and exits that arrived before their task was recorded — under one lock, so an exit is
//! never lost between "the init process exited" and "the task is recorded".
//!
//! An init process can exit (killed, out of memory) before the create that made it has
//! recorded it. The reaper then parks the exit here; the create claims it when it records
//! the task, but only an exit reaped after that create began: pids are reused (pid_max is
//! often 32768), and an older exit of the same pid is another process's.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;

use super::error::TaskError;

/// Parked exits nobody claimed are dropped after this long (longer than any create).
const PARKED_FOR: Duration = Duration::from_secs(300);

/// One container this shim runs.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub bundle: PathBuf,
    pub pid: u32,
    /// Refers to the init process itself, immune to pid reuse (None on old kernels).
    pub pidfd: Option<Arc<OwnedFd>>,
    /// The spec's `linux.cgroupsPath`.
    pub cgroups_path: Option<String>,
    /// Whether the shim mounted the rootfs (and unmounts it on delete).
    pub rootfs_mounted: bool,
    /// Whether the spec has poststart / poststop hooks: Start / Delete then run in a
    /// launcher worker, which waits for them (see `container::lifecycle`).
    pub hooks_on_start: bool,
    pub hooks_on_delete: bool,
    pub started: bool,
    /// A Start is under way: an exit event waits for the TaskStart event.
    pub starting: bool,
    /// The exit came while starting; its event is the Start's to send.
    pub exit_event_held: bool,
    pub exit: Option<Exit>,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    /// Held by Start, Kill and Delete: one operation on a task at a time.
    pub op: Arc<Mutex<()>>,
}

#[derive(Debug, Clone)]
pub struct Exit {
    pub status: u32,
    pub at: Timestamp,
}

struct Parked {
    exit: Exit,
    reaped: Instant,
}

#[derive(Default)]
pub struct Table {
    tasks: HashMap<String, TaskRecord>,
    /// Creates in progress: their ids are taken.
    creating: HashSet<String>,
    by_pid: HashMap<u32, String>,
    parked: HashMap<u32, Parked>,
}

impl Table {
    /// Takes `id` for a create, or says it exists.
    pub fn reserve(&mut self, id: &str) -> Result<(), TaskError> {
        if self.tasks.contains_key(id) || !self.creating.insert(id.to_string()) {
            return Err(TaskError::AlreadyExists(id.to_string()));
        }
        Ok(())
    }

    /// Ends a create's reservation (recorded or failed).
    pub fn release(&mut self, id: &str) {
        self.creating.remove(id);
    }

    /// Records a created task; claims an exit of its pid reaped since `create_began`
    /// and returns it (its event is the create's to send, after TaskCreate).
    pub fn insert(&mut self, id: &str, mut record: TaskRecord, create_began: Instant) -> Option<Exit> {
        if let Some(parked) = self.parked.remove(&record.pid)
            && parked.reaped >= create_began
        {
            record.exit = Some(parked.exit);
        }
        if record.exit.is_none() {
            self.by_pid.insert(record.pid, id.to_string());
        }
        let claimed = record.exit.clone();
        self.tasks.insert(id.to_string(), record);
        claimed
    }

    /// A reaped child: the task whose init process it was, with its exit recorded, and
    /// whether its exit event goes now (not while a Start is under way: containerd
    /// expects TaskStart first); or `None`, and the exit is parked for a create that has
    /// not recorded its task yet.
    pub fn on_exit(&mut self, pid: u32, exit: Exit) -> Option<(String, bool)> {
        if let Some(id) = self.by_pid.remove(&pid)
            && let Some(task) = self.tasks.get_mut(&id)
        {
            task.exit = Some(exit);
            task.exit_event_held = task.starting;
            return Some((id, !task.starting));
        }
        let now = Instant::now();
        self.parked.retain(|_, p| now.duration_since(p.reaped) < PARKED_FOR);
        self.parked.insert(pid, Parked { exit, reaped: now });
        None
    }

    /// A Start begins: the task's exit event is held until [`end_start`](Self::end_start).
    pub fn begin_start(&mut self, id: &str) {
        if let Some(task) = self.tasks.get_mut(id) {
            task.starting = true;
        }
    }

    /// A Start ended; returns an exit recorded meanwhile, whose event is now due.
    pub fn end_start(&mut self, id: &str, started: bool) -> Option<Exit> {
        let task = self.tasks.get_mut(id)?;
        task.starting = false;
        task.started |= started;
        let held = std::mem::take(&mut task.exit_event_held);
        task.exit.clone().filter(|_| held)
    }

    pub fn get(&self, id: &str) -> Option<&TaskRecord> {
        self.tasks.get(id)
    }

    pub fn remove(&mut self, id: &str) -> Option<TaskRecord> {
        let task = self.tasks.remove(id)?;
        if self.by_pid.get(&task.pid).is_some_and(|owner| owner == id) {
            self.by_pid.remove(&task.pid);
        }
        Some(task)
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.creating.is_empty()
    }

    #[cfg(test)]
    fn parked(&self) -> usize {
        self.parked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32) -> TaskRecord {
        TaskRecord {
            bundle: PathBuf::new(),
            pid,
            pidfd: None,
            cgroups_path: None,
            rootfs_mounted: false,
            hooks_on_start: false,
            hooks_on_delete: false,
            started: false,
            starting: false,
            exit_event_held: false,
            exit: None,
            stdin: String::new(),
            stdout: String::new(),
            stderr: String::new(),
            op: Arc::default(),
        }
    }

    fn exit(status: u32) -> Exit {
        Exit { status, at: Timestamp::new() }
    }

    #[test]
    fn an_exit_before_the_record_is_claimed() {
        let mut table = Table::default();
        let began = Instant::now();
        assert_eq!(table.on_exit(42, exit(137)), None);
        assert_eq!(table.insert("a", record(42), began).unwrap().status, 137);
        assert_eq!(table.get("a").unwrap().exit.as_ref().unwrap().status, 137);
        assert_eq!(table.parked(), 0);
    }

    #[test]
    fn an_exit_older_than_the_create_is_another_process() {
        let mut table = Table::default();
        assert_eq!(table.on_exit(42, exit(1)), None);
        std::thread::sleep(Duration::from_millis(2));
        table.insert("a", record(42), Instant::now());
        assert!(table.get("a").unwrap().exit.is_none());
        assert_eq!(table.on_exit(42, exit(0)), Some(("a".to_string(), true)));
        assert_eq!(table.get("a").unwrap().exit.as_ref().unwrap().status, 0);
    }

    #[test]
    fn an_exit_during_start_waits_for_the_start() {
        let mut table = Table::default();
        table.insert("a", record(9), Instant::now());
        table.begin_start("a");
        assert_eq!(table.on_exit(9, exit(0)), Some(("a".to_string(), false)));
        assert_eq!(table.end_start("a", true).unwrap().status, 0);
        assert!(table.get("a").unwrap().started);
        // An exit before the start began was sent already.
        table.insert("b", record(10), Instant::now());
        assert_eq!(table.on_exit(10, exit(1)), Some(("b".to_string(), true)));
        table.begin_start("b");
        assert!(table.end_start("b", false).is_none());
    }

    #[test]
    fn ids_are_taken_while_created() {
        let mut table = Table::default();
        table.reserve("a").unwrap();
        assert!(matches!(table.reserve("a"), Err(TaskError::AlreadyExists(_))));
        table.insert("a", record(7), Instant::now());
        table.release("a");
        assert!(matches!(table.reserve("a"), Err(TaskError::AlreadyExists(_))));
        table.remove("a");
        table.reserve("a").unwrap();
    }
}
