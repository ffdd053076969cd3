//! A ttrpc client of a shim's task service, as containerd 1.6 and 1.7 speak it
//! (`containerd.task.v2.Task`): the wasm shim serves v2 and v3, containerd 1.6's
//! `containerd-shim-runc-v2` only v2, so one client drives both. Every call has a bound.

use std::time::Duration;

use containerd_shim::api::*;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::ttrpc::{self, Request};

const SERVICE: &str = "containerd.task.v2.Task";

pub struct TaskApi {
    client: ttrpc::Client,
}

impl TaskApi {
    pub fn connect(address: &str) -> Result<Self, String> {
        let client = ttrpc::Client::connect(address).map_err(|e| format!("connect {address}: {e}"))?;
        Ok(Self { client })
    }

    /// One call; the error is the shim's one line (or the transport's).
    fn call<Q: Message, A: Message>(&self, method: &str, req: &Q, bound: Duration) -> Result<A, String> {
        let request = Request {
            service: SERVICE.into(),
            method: method.into(),
            timeout_nano: bound.as_nanos() as i64,
            payload: req.write_to_bytes().map_err(|e| e.to_string())?,
            ..Default::default()
        };
        let response = self.client.request(request).map_err(|e| match e {
            ttrpc::Error::RpcStatus(status) => format!("{method}: {}", status.message),
            other => format!("{method}: {other}"),
        })?;
        A::parse_from_bytes(&response.payload).map_err(|e| format!("{method}: bad response: {e}"))
    }

    pub fn create(&self, req: &CreateTaskRequest, bound: Duration) -> Result<CreateTaskResponse, String> {
        self.call("Create", req, bound)
    }

    pub fn start(&self, id: &str, bound: Duration) -> Result<StartResponse, String> {
        let mut req = StartRequest::new();
        req.id = id.into();
        self.call("Start", &req, bound)
    }

    pub fn kill(&self, id: &str, signal: u32, bound: Duration) -> Result<Empty, String> {
        let mut req = KillRequest::new();
        req.id = id.into();
        req.signal = signal;
        self.call("Kill", &req, bound)
    }

    /// Kill with `all`: every process of the container.
    pub fn kill_all(&self, id: &str, signal: u32, bound: Duration) -> Result<Empty, String> {
        let mut req = KillRequest::new();
        req.id = id.into();
        req.signal = signal;
        req.all = true;
        self.call("Kill", &req, bound)
    }

    pub fn wait(&self, id: &str, bound: Duration) -> Result<WaitResponse, String> {
        let mut req = WaitRequest::new();
        req.id = id.into();
        self.call("Wait", &req, bound)
    }

    pub fn state(&self, id: &str, bound: Duration) -> Result<StateResponse, String> {
        self.exec_state(id, "", bound)
    }

    /// State of the exec `exec_id` of task `id` ("" for the container's process).
    pub fn exec_state(&self, id: &str, exec_id: &str, bound: Duration) -> Result<StateResponse, String> {
        let mut req = StateRequest::new();
        req.id = id.into();
        req.exec_id = exec_id.into();
        self.call("State", &req, bound)
    }

    pub fn exec(&self, req: &ExecProcessRequest, bound: Duration) -> Result<Empty, String> {
        self.call("Exec", req, bound)
    }

    pub fn delete(&self, id: &str, bound: Duration) -> Result<DeleteResponse, String> {
        let mut req = DeleteRequest::new();
        req.id = id.into();
        self.call("Delete", &req, bound)
    }

    pub fn shutdown(&self, bound: Duration) -> Result<Empty, String> {
        self.call("Shutdown", &ShutdownRequest::new(), bound)
    }
}
