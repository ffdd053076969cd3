//! The task table: every task of this shim and its exec processes, which process
//! belongs to which task, and exits that arrived before their process was recorded —
//! under one lock, so an exit is never lost between "the process exited" and "the
//! process is recorded".
//!
//! An init process can exit (killed, out of memory) before the create that made it has
//! recorded it; an exec process before the start that made it has. The reaper then parks the exit here; the create claims it when it records
//! the task, but only an exit reaped after that create began: pids are reused (pid_max is
//! often 32768), and an older exit of the same pid is another process's.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;

use super::error::TaskError;
use super::terminal::Terminal;

/// Parked exits nobody claimed are dropped after this long (longer than any create).
const PARKED_FOR: Duration = Duration::from_secs(300);

/// One container this shim runs.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub bundle: PathBuf,
    pub pid: u32,
    /// The init process runs a wasm module (there is no native program to exec into).
    pub wasm: bool,
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
    /// The exit came while exec processes ran; its event goes after theirs (containerd
    /// may remove the task on the init process's TaskExit).
    pub exit_waits_for_execs: bool,
    /// The container has no PID namespace of its own: when the init process exits, the
    /// rest of its processes are killed (the kernel does it for a namespace's init).
    pub kill_all_on_exit: bool,
    pub exit: Option<Exit>,
    /// Frozen by Pause until Resume.
    pub paused: bool,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    /// Exec processes by exec id, added by Exec, started by Start.
    pub execs: HashMap<String, ExecRecord>,
    /// The terminal, when the container's process has one.
    pub console: Option<Arc<Terminal>>,
    /// Held by Start, Kill, Pause, Resume, Update and Delete: one operation on a task
    /// at a time.
    pub op: Arc<Mutex<()>>,
}

/// A process added to a running container by Exec.
#[derive(Debug, Clone)]
pub struct ExecRecord {
    /// The runtime-spec Process (JSON) containerd sent.
    pub process: String,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    /// The process gets a terminal (served as `console` once started).
    pub terminal: bool,
    pub console: Option<Arc<Terminal>>,
    /// 0 until started.
    pub pid: u32,
    /// A Start is under way: Kill and Delete of the exec wait for it to end.
    pub starting: bool,
    pub pidfd: Option<Arc<OwnedFd>>,
    pub exit: Option<Exit>,
}

/// Whether an exec process of `task` has started and not exited.
fn running_execs(task: &TaskRecord) -> bool {
    task.execs.values().any(|exec| exec.pid != 0 && exec.exit.is_none())
}

/// What an exec's Start made.
pub struct StartedExec {
    pub pid: u32,
    pub pidfd: Option<Arc<OwnedFd>>,
    /// The terminal, when the process has one.
    pub console: Option<Arc<Terminal>>,
}

/// Whose process a pid is: task `id`'s init process, or its exec `exec_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub id: String,
    /// Empty for the init process.
    pub exec_id: String,
}

/// A recorded process exited: whose it was, and whether its exit event goes now.
#[derive(Debug, PartialEq)]
pub struct Exited {
    pub owner: Owner,
    pub publish: bool,
    /// The last running exec of a task whose init process has exited: the init's held
    /// exit (its pid and exit), whose event goes now, after the exec's.
    pub then_init: Option<(u32, Exit)>,
}

#[derive(Debug, Clone, PartialEq)]
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
    by_pid: HashMap<u32, Owner>,
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
        record.exit = self.claim(record.pid, create_began);
        if record.exit.is_none() {
            self.by_pid.insert(record.pid, Owner { id: id.to_string(), exec_id: String::new() });
        }
        let claimed = record.exit.clone();
        self.tasks.insert(id.to_string(), record);
        claimed
    }

    /// The parked exit of `pid`, if it was reaped since `began` (an older one is another
    /// process's that had the same pid).
    fn claim(&mut self, pid: u32, began: Instant) -> Option<Exit> {
        self.parked.remove(&pid).filter(|parked| parked.reaped >= began).map(|parked| parked.exit)
    }

    /// Adds exec `exec_id` (not started) to task `id`.
    pub fn add_exec(&mut self, id: &str, exec_id: &str, record: ExecRecord) -> Result<(), TaskError> {
        let task = self.tasks.get_mut(id).ok_or_else(|| TaskError::NotFound(id.to_string()))?;
        if task.execs.contains_key(exec_id) {
            return Err(TaskError::AlreadyExists(format!("{exec_id} (an exec of task {id})")));
        }
        task.execs.insert(exec_id.to_string(), record);
        Ok(())
    }

    /// Marks an exec's Start as under way (false: it is gone or started already).
    pub fn begin_exec_start(&mut self, owner: &Owner) -> bool {
        let exec = self.tasks.get_mut(&owner.id).and_then(|task| task.execs.get_mut(&owner.exec_id));
        match exec {
            Some(exec) if exec.pid == 0 && !exec.starting && exec.exit.is_none() => {
                exec.starting = true;
                true
            }
            _ => false,
        }
    }

    /// Ends an exec's Start that made no process.
    pub fn exec_start_failed(&mut self, owner: &Owner) {
        if let Some(exec) = self.tasks.get_mut(&owner.id).and_then(|task| task.execs.get_mut(&owner.exec_id))
        {
            exec.starting = false;
        }
    }

    /// Records the started process of an exec; claims an exit of its pid reaped since
    /// `start_began` and returns it (its event is the start's to send, after
    /// TaskExecStarted). `Err` if the exec is no longer recorded.
    pub fn exec_started(
        &mut self,
        owner: &Owner,
        started: StartedExec,
        start_began: Instant,
    ) -> Result<Option<Exit>, ()> {
        let pid = started.pid;
        let claimed = self.claim(pid, start_began);
        let task = self.tasks.get_mut(&owner.id).ok_or(())?;
        let exec = task.execs.get_mut(&owner.exec_id).ok_or(())?;
        exec.pid = pid;
        exec.pidfd = started.pidfd;
        exec.console = started.console;
        exec.starting = false;
        exec.exit = claimed.clone();
        if claimed.is_none() {
            self.by_pid.insert(pid, owner.clone());
        }
        Ok(claimed)
    }

    /// Whether every started exec of task `id` has exited.
    pub fn execs_exited(&self, id: &str) -> bool {
        self.tasks.get(id).is_none_or(|task| task.execs.values().all(|e| e.pid == 0 || e.exit.is_some()))
    }

    /// A reaped child: the task or exec whose process it was, with its exit recorded,
    /// and whether its exit event goes now (an init process's waits while a Start is
    /// under way: containerd expects TaskStart first); or `None`, and the exit is parked
    /// for a create or exec start that has not recorded its process yet.
    pub fn on_exit(&mut self, pid: u32, exit: Exit) -> Option<Exited> {
        if let Some(owner) = self.by_pid.remove(&pid)
            && let Some(task) = self.tasks.get_mut(&owner.id)
        {
            if owner.exec_id.is_empty() {
                task.exit = Some(exit);
                task.exit_event_held = task.starting;
                task.exit_waits_for_execs = !task.starting && running_execs(task);
                let publish = !task.exit_event_held && !task.exit_waits_for_execs;
                return Some(Exited { owner, publish, then_init: None });
            }
            if let Some(exec) = task.execs.get_mut(&owner.exec_id) {
                exec.exit = Some(exit);
                let mut then_init = None;
                if task.exit_waits_for_execs && !running_execs(task) {
                    task.exit_waits_for_execs = false;
                    then_init = task.exit.clone().map(|exit| (task.pid, exit));
                }
                return Some(Exited { owner, publish: true, then_init });
            }
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

    pub fn get_mut(&mut self, id: &str) -> Option<&mut TaskRecord> {
        self.tasks.get_mut(id)
    }

    /// Removes task `id` and its execs.
    pub fn remove(&mut self, id: &str) -> Option<TaskRecord> {
        let task = self.tasks.remove(id)?;
        self.by_pid.retain(|_, owner| owner.id != id);
        Some(task)
    }

    /// Removes exec `exec_id` of task `id`.
    pub fn remove_exec(&mut self, id: &str, exec_id: &str) -> Option<ExecRecord> {
        let exec = self.tasks.get_mut(id)?.execs.remove(exec_id)?;
        self.by_pid.retain(|_, owner| owner.id != id || owner.exec_id != exec_id);
        Some(exec)
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
            wasm: false,
            pidfd: None,
            cgroups_path: None,
            rootfs_mounted: false,
            hooks_on_start: false,
            hooks_on_delete: false,
            started: false,
            starting: false,
            exit_event_held: false,
            exit_waits_for_execs: false,
            kill_all_on_exit: false,
            exit: None,
            paused: false,
            stdin: String::new(),
            stdout: String::new(),
            stderr: String::new(),
            execs: HashMap::new(),
            console: None,
            op: Arc::default(),
        }
    }

    fn exec_record() -> ExecRecord {
        ExecRecord {
            process: String::new(),
            stdin: String::new(),
            stdout: String::new(),
            stderr: String::new(),
            terminal: false,
            console: None,
            pid: 0,
            starting: false,
            pidfd: None,
            exit: None,
        }
    }

    fn started(pid: u32) -> StartedExec {
        StartedExec { pid, pidfd: None, console: None }
    }

    fn init_of(id: &str, publish: bool) -> Option<Exited> {
        Some(Exited { owner: Owner { id: id.to_string(), exec_id: String::new() }, publish, then_init: None })
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
        assert_eq!(table.on_exit(42, exit(0)), init_of("a", true));
        assert_eq!(table.get("a").unwrap().exit.as_ref().unwrap().status, 0);
    }

    #[test]
    fn an_exit_during_start_waits_for_the_start() {
        let mut table = Table::default();
        table.insert("a", record(9), Instant::now());
        table.begin_start("a");
        assert_eq!(table.on_exit(9, exit(0)), init_of("a", false));
        assert_eq!(table.end_start("a", true).unwrap().status, 0);
        assert!(table.get("a").unwrap().started);
        // An exit before the start began was sent already.
        table.insert("b", record(10), Instant::now());
        assert_eq!(table.on_exit(10, exit(1)), init_of("b", true));
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

    #[test]
    fn exec_exits_are_their_execs_and_claimed_when_early() {
        let mut table = Table::default();
        table.insert("a", record(9), Instant::now());
        table.add_exec("a", "e1", exec_record()).unwrap();
        assert!(matches!(table.add_exec("a", "e1", exec_record()), Err(TaskError::AlreadyExists(_))));
        assert!(matches!(table.add_exec("b", "e1", exec_record()), Err(TaskError::NotFound(_))));
        let e1 = Owner { id: "a".into(), exec_id: "e1".into() };
        assert!(table.begin_exec_start(&e1));
        assert!(!table.begin_exec_start(&e1), "one start at a time");
        assert!(table.exec_started(&e1, started(20), Instant::now()).unwrap().is_none());
        assert!(!table.execs_exited("a"));
        assert_eq!(
            table.on_exit(20, exit(7)),
            Some(Exited { owner: e1.clone(), publish: true, then_init: None })
        );
        assert_eq!(table.get("a").unwrap().execs["e1"].exit.as_ref().unwrap().status, 7);
        assert!(table.execs_exited("a"));
        assert!(table.get("a").unwrap().exit.is_none(), "the init process still runs");
        // An exec process that exits before its start records it.
        table.add_exec("a", "e2", exec_record()).unwrap();
        let e2 = Owner { id: "a".into(), exec_id: "e2".into() };
        let began = Instant::now();
        assert_eq!(table.on_exit(21, exit(3)), None);
        assert_eq!(table.exec_started(&e2, started(21), began).unwrap().unwrap().status, 3);
        assert_eq!(table.parked(), 0);
        // Removing an exec or the task forgets its pids.
        table.add_exec("a", "e3", exec_record()).unwrap();
        let e3 = Owner { id: "a".into(), exec_id: "e3".into() };
        table.exec_started(&e3, started(22), Instant::now()).unwrap();
        assert!(table.remove_exec("a", "e3").is_some());
        assert_eq!(table.on_exit(22, exit(0)), None);
        assert!(table.exec_started(&e3, started(23), Instant::now()).is_err(), "a removed exec");
        table.remove("a");
        assert_eq!(table.on_exit(9, exit(0)), None);
    }

    #[test]
    fn the_init_exit_event_waits_for_running_execs() {
        let mut table = Table::default();
        table.insert("a", record(9), Instant::now());
        table.add_exec("a", "e", exec_record()).unwrap();
        let e = Owner { id: "a".into(), exec_id: "e".into() };
        table.exec_started(&e, started(30), Instant::now()).unwrap();
        // The init process exits first: its event is held (its exit is recorded).
        assert_eq!(table.on_exit(9, exit(137)), init_of("a", false));
        assert_eq!(table.get("a").unwrap().exit.as_ref().unwrap().status, 137);
        // The last exec's exit releases it, after the exec's own.
        let exited = table.on_exit(30, exit(137)).unwrap();
        assert_eq!((exited.owner, exited.publish), (e, true));
        assert_eq!(exited.then_init.map(|(pid, exit)| (pid, exit.status)), Some((9, 137)));
    }
}
