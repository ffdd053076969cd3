//! The shim's task service: containerd's Task API over the containers this shim runs.
//!
//! Verbs live one concern per file: [`create`], [`run`] (start, kill, wait), [`exec`]
//! (processes added to a running native container), [`update`] (pause, resume,
//! resources), [`delete`], [`inspect`] (state, pids, stats, connect). [`table`] holds
//! every task, exec and exit under one lock; [`reaper`] turns child exits into task and
//! exec exits; [`events`] sends events to containerd from a thread of its own; [`engine`]
//! chooses the engine for a create; [`error`] maps failures to ttrpc status codes in one
//! place; [`terminal`] serves the terminals of containers and exec processes that ask
//! for one. What cannot apply to these containers (checkpoint) answers UNIMPLEMENTED with
//! a reason.
//!
//! The service runs in the multi-threaded shim server: it never changes process-wide
//! state, never clones, and every wait in it has a bound. Container creation, exec, and
//! start and delete with hooks run in launcher workers ([`crate::launcher`]); kill,
//! pause, resume, update, pids and stats use libcontainer's state and the cgroup here.

mod create;
mod delete;
mod engine;
mod error;
mod events;
mod exec;
mod inspect;
pub mod options;
mod reaper;
mod run;
mod stdio;
mod table;
mod terminal;
mod update;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use containerd_shim::api::*;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::{Task, TtrpcContext, TtrpcResult};

use crate::container::state_root;
use crate::images::Containerd;
use crate::launcher::pool::Launchers;
use error::{TaskError, unimplemented};
use table::{Exit, Exited, Table, TaskRecord};

pub struct TaskService {
    /// How containerd invoked the shim (`containerd-shim-<engine>-v1` selects an engine).
    argv0: String,
    state_root: PathBuf,
    events: events::Publisher,
    table: Mutex<Table>,
    /// Signalled with `table` held whenever a task exits or is removed.
    table_changed: Condvar,
    shutdown: Mutex<bool>,
    shutdown_requested: Condvar,
    /// Requests being answered (the server exits only with none).
    in_flight: AtomicUsize,
    launchers: Launchers,
    /// Containers `start` reused this server for, until their Create (one file each).
    pending_starts: PathBuf,
    /// The containerd this server serves, for the content store.
    containerd: Containerd,
}

impl TaskService {
    /// Creates the service, its event sender (to containerd at `ttrpc_address`) and its
    /// reaper.
    pub fn start(
        namespace: &str,
        containerd_address: &str,
        ttrpc_address: &str,
        argv0: String,
        pending_starts: PathBuf,
    ) -> std::io::Result<Arc<Self>> {
        let service = Arc::new(Self {
            argv0,
            state_root: state_root(containerd_address, namespace),
            events: events::Publisher::start(ttrpc_address.to_string(), namespace)?,
            table: Mutex::new(Table::default()),
            table_changed: Condvar::new(),
            shutdown: Mutex::new(false),
            shutdown_requested: Condvar::new(),
            in_flight: AtomicUsize::new(0),
            launchers: Launchers::default(),
            pending_starts,
            containerd: Containerd {
                address: containerd_address.to_string(),
                namespace: namespace.to_string(),
            },
        });
        let weak = Arc::downgrade(&service);
        reaper::start(move |pid, status| {
            if let Some(service) = weak.upgrade() {
                service.on_exit(pid, status);
            }
        })?;
        Ok(service)
    }

    /// Blocks until containerd has asked the shim to shut down.
    pub fn wait_for_shutdown_request(&self) {
        let mut shutdown = self.shutdown.lock().unwrap_or_else(|e| e.into_inner());
        while !*shutdown {
            shutdown = self.shutdown_requested.wait(shutdown).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Forgets a shutdown request (the server has a task again).
    pub fn clear_shutdown_request(&self) {
        *self.shutdown.lock().unwrap_or_else(|e| e.into_inner()) = false;
    }

    pub fn has_tasks(&self) -> bool {
        !self.table().is_empty()
    }

    /// No task, no create under way, no request being answered.
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0 && self.table().is_empty()
    }

    /// The server is exiting: the launchers exit. The namespace's state directory stays:
    /// another pod's server may be creating a container in it at this very moment.
    pub fn stop(&self) {
        self.launchers.stop_all();
    }

    /// Counts a request as in flight until the guard is dropped.
    fn serving(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(&self.in_flight)
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, id: &str) -> Result<TaskRecord, TaskError> {
        self.table().get(id).cloned().ok_or_else(|| TaskError::NotFound(id.to_string()))
    }

    /// Waits (at most `bound`) until task `id`'s init process (`exec_id` empty) or its
    /// exec `exec_id` has exited or is gone; returns its exit.
    fn wait_exit(&self, id: &str, exec_id: &str, bound: Option<Duration>) -> Result<Exit, TaskError> {
        let deadline = bound.map(|b| Instant::now() + b);
        let mut table = self.table();
        loop {
            let task = table.get(id).ok_or_else(|| TaskError::NotFound(id.to_string()))?;
            let exit = if exec_id.is_empty() {
                &task.exit
            } else {
                &task.execs.get(exec_id).ok_or_else(|| exec::not_found(id, exec_id))?.exit
            };
            if let Some(exit) = exit {
                return Ok(exit.clone());
            }
            // Woken by every exit and removal; the periodic wake-up only re-checks.
            let mut pause = Duration::from_secs(1);
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let what = if exec_id.is_empty() {
                        format!("task {id}")
                    } else {
                        format!("exec {exec_id} of task {id}")
                    };
                    return Err(TaskError::DeadlineExceeded(format!("{what} is still running")));
                }
                pause = pause.min(left);
            }
            table = self.table_changed.wait_timeout(table, pause).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// The init process of task `id`, which shares a PID namespace, has exited: its other
    /// processes (exec processes, their children) are killed, as runc's shim does. On a
    /// thread of its own (the reaper reaps on), under the task's operation lock, and only
    /// while the task is still there: after a Delete, libcontainer's kill would make the
    /// removed cgroup again.
    fn kill_the_rest(self: &Arc<Self>, id: &str) {
        let Ok(op) = self.record(id).map(|task| task.op) else { return };
        let (service, task) = (Arc::downgrade(self), id.to_string());
        let spawned = std::thread::Builder::new().name("kill-rest".into()).spawn(move || {
            let id = task;
            let _one_at_a_time = op.lock().unwrap_or_else(|e| e.into_inner());
            let Some(service) = service.upgrade() else { return };
            if service.table().get(&id).is_none() {
                return;
            }
            tracing::info!(%id, "the init process of a container sharing a PID namespace exited: killing the rest");
            if let Err(e) = crate::container::lifecycle::kill(&service.state_root, &id, libc::SIGKILL as u32, true) {
                tracing::debug!(%id, "after the init process's exit: {e}");
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(%id, "cannot kill what is left of the container: {e}");
        }
    }

    /// Waits (at most `bound`) until every started exec of task `id` has exited; false
    /// if one has not.
    fn wait_for_execs(&self, id: &str, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        let mut table = self.table();
        while !table.execs_exited(id) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            table = self.table_changed.wait_timeout(table, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    /// A child of the server exited: a task's init or exec process, a launcher, or an
    /// orphan.
    fn on_exit(self: &Arc<Self>, pid: u32, status: i32) {
        let exit = Exit { status: status as u32, at: now() };
        let mut table = self.table();
        if let Some(Exited { owner, publish, then_init }) = table.on_exit(pid, exit.clone()) {
            if publish {
                // Under the lock: after the task's TaskCreate or the exec's
                // TaskExecStarted (sent under it too).
                self.events.task_exit(&owner.id, &owner.exec_id, pid, &exit);
            }
            if let Some((init_pid, init_exit)) = then_init {
                self.events.task_exit(&owner.id, "", init_pid, &init_exit);
            }
            let kill_the_rest =
                owner.exec_id.is_empty() && table.get(&owner.id).is_some_and(|task| task.kill_all_on_exit);
            drop(table);
            if kill_the_rest {
                self.kill_the_rest(&owner.id);
            }
            self.table_changed.notify_all();
            let (id, exec_id) = (owner.id, owner.exec_id);
            if exec_id.is_empty() {
                tracing::info!(%id, pid, status, "container exited");
            } else {
                tracing::info!(%id, %exec_id, pid, status, "exec process exited");
            }
            return;
        }
        // Parked in the table for a create that has not recorded its task yet; a
        // launcher's exit is the launcher pool's to know about.
        drop(table);
        if !self.launchers.on_exit(pid as i32, status) {
            tracing::debug!(pid, status, "reaped a process that is not a task's (yet)");
        }
    }
}

/// A request being answered.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn now() -> Timestamp {
    containerd_shim::util::timestamp().unwrap_or_default()
}

/// The deadline containerd gave a request, if any.
fn deadline(ctx: &TtrpcContext) -> Option<Duration> {
    (ctx.timeout_nano > 0).then(|| Duration::from_nanos(ctx.timeout_nano as u64))
}

/// How long a worker may take for a request: `default`, or less when the caller's
/// deadline is nearer, leaving a second for the answer to reach the caller.
fn bound(deadline: Option<Duration>, default: Duration) -> Duration {
    deadline.map_or(default, |d| d.saturating_sub(Duration::from_secs(1)).min(default))
}

impl Task for TaskService {
    fn create(&self, ctx: &TtrpcContext, req: CreateTaskRequest) -> TtrpcResult<CreateTaskResponse> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, "create");
        Ok(create::create(self, &req, deadline(ctx))?)
    }

    fn start(&self, ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, exec_id = %req.exec_id, "start");
        if !req.exec_id.is_empty() {
            return Ok(exec::start(self, &req.id, &req.exec_id, deadline(ctx))?);
        }
        Ok(run::start(self, &req.id, deadline(ctx))?)
    }

    fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, exec_id = %req.exec_id, "kill");
        if !req.exec_id.is_empty() {
            return Ok(exec::kill(self, &req.id, &req.exec_id, req.signal)?);
        }
        Ok(run::kill(self, &req.id, req.signal, req.all)?)
    }

    fn wait(&self, ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, exec_id = %req.exec_id, "wait");
        Ok(run::wait(self, &req.id, &req.exec_id, deadline(ctx))?)
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, exec_id = %req.exec_id, "close_io");
        // The process holds its stdin FIFO itself (with a terminal, the terminal's copy
        // ends its input at the FIFO's end of file): nothing to close here.
        let task = self.record(&req.id)?;
        if !req.exec_id.is_empty() && !task.execs.contains_key(&req.exec_id) {
            return Err(exec::not_found(&req.id, &req.exec_id).into());
        }
        Ok(Empty::new())
    }

    fn delete(&self, ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, exec_id = %req.exec_id, "delete");
        if !req.exec_id.is_empty() {
            return Ok(exec::delete(self, &req.id, &req.exec_id)?);
        }
        Ok(delete::delete(self, &req.id, deadline(ctx))?)
    }

    fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, exec_id = %req.exec_id, "state");
        if !req.exec_id.is_empty() {
            return Ok(exec::state(self, &req.id, &req.exec_id)?);
        }
        Ok(inspect::state(self, &req.id)?)
    }

    fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, "pids");
        Ok(inspect::pids(self, &req.id)?)
    }

    fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, "stats");
        Ok(inspect::stats(self, &req.id)?)
    }

    fn connect(&self, _ctx: &TtrpcContext, req: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, "connect");
        Ok(inspect::connect(self, &req.id)?)
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: ShutdownRequest) -> TtrpcResult<Empty> {
        let _serving = self.serving();
        if !self.table().is_empty() {
            // containerd asks after each delete; the pod's other containers still run.
            return Ok(Empty::new());
        }
        *self.shutdown.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shutdown_requested.notify_all();
        Ok(Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, exec_id = %req.exec_id, "exec");
        Ok(exec::add(self, &req)?)
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        let _serving = self.serving();
        if req.exec_id.is_empty() {
            let task = self.record(&req.id)?;
            let console = task.console.as_ref().ok_or_else(|| {
                TaskError::FailedPrecondition(format!("task {} has no terminal to resize", req.id))
            })?;
            console.resize(req.width, req.height)?;
            return Ok(Empty::new());
        }
        Ok(exec::resize(self, &req.id, &req.exec_id, req.width, req.height)?)
    }

    fn pause(&self, _ctx: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, "pause");
        Ok(update::pause(self, &req.id)?)
    }

    fn resume(&self, _ctx: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, "resume");
        Ok(update::resume(self, &req.id)?)
    }

    fn checkpoint(&self, _ctx: &TtrpcContext, _req: CheckpointTaskRequest) -> TtrpcResult<Empty> {
        Err(unimplemented("checkpoint is not supported by the wasm shim"))
    }

    fn update(&self, _ctx: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        let _serving = self.serving();
        tracing::debug!(id = %req.id, "update");
        Ok(update::update(self, &req)?)
    }
}
