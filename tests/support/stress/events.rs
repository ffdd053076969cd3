//! A stand-in for containerd's event service: a ttrpc server at the address a shim is
//! given as `TTRPC_ADDRESS`, recording every envelope it is forwarded. It can be stopped
//! and started again at the same address, as containerd is when it restarts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use containerd_shim::protos::events::task::{TaskCreate, TaskDelete, TaskExit, TaskStart};
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::shim_sync::{Events, create_events};
use containerd_shim::protos::ttrpc::{self, TtrpcContext};
use containerd_shim::protos::types::empty::Empty;

/// What the sink received, by topic and container.
#[derive(Default)]
struct Received {
    /// (topic, container id) in arrival order.
    events: Vec<(String, String)>,
    /// Exit status per container, from `/tasks/exit`.
    exits: HashMap<String, Vec<u32>>,
}

struct Recorder {
    received: Arc<Mutex<Received>>,
    /// While set, `forward` does not answer (a containerd that hangs).
    hang: Arc<AtomicBool>,
}

impl Events for Recorder {
    fn forward(&self, _ctx: &TtrpcContext, req: ForwardRequest) -> ttrpc::Result<Empty> {
        while self.hang.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let envelope = req.envelope();
        let topic = envelope.topic().to_string();
        let any = envelope.event();
        let mut received = self.received.lock().unwrap();
        let id = match topic.as_str() {
            "/tasks/exit" => TaskExit::parse_from_bytes(&any.value).ok().map(|exit| {
                received.exits.entry(exit.container_id.clone()).or_default().push(exit.exit_status);
                exit.container_id
            }),
            "/tasks/create" => TaskCreate::parse_from_bytes(&any.value).ok().map(|e| e.container_id),
            "/tasks/start" => TaskStart::parse_from_bytes(&any.value).ok().map(|e| e.container_id),
            "/tasks/delete" => TaskDelete::parse_from_bytes(&any.value).ok().map(|e| e.container_id),
            _ => None,
        };
        received.events.push((topic, id.unwrap_or_default()));
        Ok(Empty::new())
    }
}

pub struct EventSink {
    path: PathBuf,
    received: Arc<Mutex<Received>>,
    hang: Arc<AtomicBool>,
    server: Option<ttrpc::Server>,
}

impl EventSink {
    /// Listens at `path` (a Unix socket).
    pub fn start(path: &Path) -> Self {
        let mut sink =
            Self { path: path.to_path_buf(), received: Arc::default(), hang: Arc::default(), server: None };
        sink.restart();
        sink
    }

    pub fn address(&self) -> &Path {
        &self.path
    }

    /// Stops listening: the address refuses connections until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        self.hang(false);
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
        let _ = std::fs::remove_file(&self.path);
    }

    /// Listens again at the same address, keeping what was received.
    pub fn restart(&mut self) {
        self.stop();
        let recorder = Recorder { received: self.received.clone(), hang: self.hang.clone() };
        let service = create_events(Arc::new(recorder));
        let mut server = ttrpc::Server::new()
            .bind(&format!("unix://{}", self.path.display()))
            .unwrap_or_else(|e| panic!("event sink cannot listen on {}: {e}", self.path.display()))
            .register_service(service);
        server.start().unwrap();
        self.server = Some(server);
    }

    /// While `hang` is set, events are accepted but never answered, as by a containerd
    /// that is stuck.
    pub fn hang(&self, hang: bool) {
        self.hang.store(hang, Ordering::SeqCst);
    }

    /// The exit statuses reported for `id` so far.
    pub fn exits(&self, id: &str) -> Vec<u32> {
        self.received.lock().unwrap().exits.get(id).cloned().unwrap_or_default()
    }

    /// The topics received for container `id`, in order.
    pub fn topics(&self, id: &str) -> Vec<String> {
        let received = self.received.lock().unwrap();
        received.events.iter().filter(|(_, i)| i == id).map(|(t, _)| t.clone()).collect()
    }

    /// How many events of `topic` arrived.
    pub fn count(&self, topic: &str) -> usize {
        self.received.lock().unwrap().events.iter().filter(|(t, _)| t == topic).count()
    }

    /// Waits up to `bound` until every id has exactly one exit event; returns the ids
    /// that have none or more than one.
    pub fn wait_for_exits(&self, ids: &[String], bound: Duration) -> Vec<String> {
        let deadline = Instant::now() + bound;
        loop {
            let wrong: Vec<String> = {
                let received = self.received.lock().unwrap();
                ids.iter().filter(|id| received.exits.get(*id).map_or(0, Vec::len) != 1).cloned().collect()
            };
            if wrong.is_empty() || Instant::now() >= deadline {
                return wrong;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EventSink {
    fn drop(&mut self) {
        self.stop();
    }
}
