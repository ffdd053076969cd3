//! The shim's task service: containerd's Task API over the containers this shim runs.
//!
//! Verbs live one concern per file: [`create`], [`run`] (start, kill, wait, close_io),
//! [`delete`], [`inspect`] (state, pids, stats, connect). [`reaper`] turns child exits
//! into task exits; [`events`] publishes to containerd; [`error`] maps failures to ttrpc
//! status codes in one place. What cannot apply to these containers (exec, pause,
//! checkpoint, resize without a terminal, update) answers UNIMPLEMENTED with a reason.

mod create;
mod delete;
mod error;
mod events;
mod inspect;
mod reaper;
mod run;
mod stdio;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};

use containerd_shim::api::*;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Task, TtrpcContext, TtrpcResult};

use crate::container::state_root;
use error::{TaskError, unimplemented};

/// One container this shim runs.
#[derive(Debug, Clone)]
struct TaskRecord {
    bundle: PathBuf,
    pid: u32,
    started: bool,
    exit: Option<Exit>,
    stdin: String,
    stdout: String,
    stderr: String,
}

#[derive(Debug, Clone)]
struct Exit {
    status: u32,
    at: Timestamp,
}

pub struct TaskService {
    namespace: String,
    /// How containerd invoked the shim (`containerd-shim-<engine>-v1` selects an engine).
    argv0: String,
    state_root: PathBuf,
    publisher: RemotePublisher,
    tasks: Mutex<HashMap<String, TaskRecord>>,
    /// Signalled on every exit and on shutdown.
    changed: Condvar,
    shutdown: Mutex<bool>,
    reaper: Arc<reaper::Reaper>,
    me: OnceLock<Weak<TaskService>>,
}

impl TaskService {
    /// Creates the service and starts reaping children.
    pub fn start(
        namespace: &str,
        containerd_address: &str,
        argv0: String,
        publisher: RemotePublisher,
    ) -> Arc<Self> {
        let reaper = reaper::Reaper::start();
        let service = Arc::new(Self {
            namespace: namespace.to_string(),
            argv0,
            state_root: state_root(containerd_address, namespace),
            publisher,
            tasks: Mutex::new(HashMap::new()),
            changed: Condvar::new(),
            shutdown: Mutex::new(false),
            reaper: reaper.clone(),
            me: OnceLock::new(),
        });
        let _ = service.me.set(Arc::downgrade(&service));
        let weak = Arc::downgrade(&service);
        reaper.set_listener(Box::new(move |pid, status| {
            weak.upgrade().is_some_and(|s| s.on_exit(pid, status))
        }));
        service
    }

    /// The service itself, for threads that outlive a request (OOM watchers).
    fn weak(&self) -> Weak<Self> {
        self.me.get().cloned().unwrap_or_default()
    }

    /// Blocks until containerd asks the shim to shut down.
    pub fn wait_for_shutdown(&self) {
        let mut shutdown = self.shutdown.lock().unwrap_or_else(|e| e.into_inner());
        while !*shutdown {
            shutdown = self.changed.wait(shutdown).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn tasks(&self) -> MutexGuard<'_, HashMap<String, TaskRecord>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, id: &str) -> Result<TaskRecord, TaskError> {
        self.tasks().get(id).cloned().ok_or_else(|| TaskError::NotFound(id.to_string()))
    }

    /// A child exited: if it is a task's init process, record the exit. Returns whether
    /// the exit belonged to a task.
    fn on_exit(&self, pid: i32, status: i32) -> bool {
        let mut tasks = self.tasks();
        let Some((id, task)) = tasks.iter_mut().find(|(_, t)| t.pid as i32 == pid && t.exit.is_none()) else {
            return false;
        };
        let exit = Exit { status: status as u32, at: now() };
        task.exit = Some(exit.clone());
        let id = id.clone();
        drop(tasks);
        tracing::info!(%id, pid, status, "container exited");
        events::task_exit(self, &id, pid as u32, &exit);
        self.changed.notify_all();
        true
    }
}

fn now() -> Timestamp {
    containerd_shim::util::timestamp().unwrap_or_default()
}

fn no_exec(exec_id: &str) -> Result<(), TaskError> {
    if exec_id.is_empty() {
        Ok(())
    } else {
        Err(TaskError::Unimplemented("exec processes are not supported by the wasm shim".into()))
    }
}

impl Task for TaskService {
    fn create(&self, _ctx: &TtrpcContext, req: CreateTaskRequest) -> TtrpcResult<CreateTaskResponse> {
        tracing::debug!(id = %req.id, "create");
        Ok(create::create(self, &req)?)
    }

    fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        tracing::debug!(id = %req.id, "start");
        no_exec(&req.exec_id)?;
        Ok(run::start(self, &req.id)?)
    }

    fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        tracing::debug!(id = %req.id, "kill");
        no_exec(&req.exec_id)?;
        Ok(run::kill(self, &req.id, req.signal, req.all)?)
    }

    fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        tracing::debug!(id = %req.id, "wait");
        no_exec(&req.exec_id)?;
        Ok(run::wait(self, &req.id)?)
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        tracing::debug!(id = %req.id, "close_io");
        no_exec(&req.exec_id)?;
        // The container holds its stdin FIFO itself; the shim keeps no copy to close.
        self.record(&req.id)?;
        Ok(Empty::new())
    }

    fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        tracing::debug!(id = %req.id, "delete");
        no_exec(&req.exec_id)?;
        Ok(delete::delete(self, &req.id)?)
    }

    fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        tracing::debug!(id = %req.id, "state");
        no_exec(&req.exec_id)?;
        Ok(inspect::state(self, &req.id)?)
    }

    fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        tracing::debug!(id = %req.id, "pids");
        Ok(inspect::pids(self, &req.id)?)
    }

    fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        tracing::debug!(id = %req.id, "stats");
        Ok(inspect::stats(self, &req.id)?)
    }

    fn connect(&self, _ctx: &TtrpcContext, req: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        tracing::debug!(id = %req.id, "connect");
        Ok(inspect::connect(self, &req.id)?)
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: ShutdownRequest) -> TtrpcResult<Empty> {
        if !self.tasks().is_empty() {
            // containerd asks after each delete; the pod's other containers still run.
            return Ok(Empty::new());
        }
        *self.shutdown.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
        Ok(Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, _req: ExecProcessRequest) -> TtrpcResult<Empty> {
        Err(unimplemented("exec into a container is not supported by the wasm shim"))
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, _req: ResizePtyRequest) -> TtrpcResult<Empty> {
        Err(unimplemented("the wasm shim does not allocate terminals, so there is no pty to resize"))
    }

    fn pause(&self, _ctx: &TtrpcContext, _req: PauseRequest) -> TtrpcResult<Empty> {
        Err(unimplemented("pause is not supported by the wasm shim"))
    }

    fn resume(&self, _ctx: &TtrpcContext, _req: ResumeRequest) -> TtrpcResult<Empty> {
        Err(unimplemented("resume is not supported by the wasm shim"))
    }

    fn checkpoint(&self, _ctx: &TtrpcContext, _req: CheckpointTaskRequest) -> TtrpcResult<Empty> {
        Err(unimplemented("checkpoint is not supported by the wasm shim"))
    }

    fn update(&self, _ctx: &TtrpcContext, _req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        Err(unimplemented("updating resources of a running container is not supported by the wasm shim"))
    }
}
