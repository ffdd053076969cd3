//! Task events for containerd, sent from a thread of their own so that nothing that
//! records an exit or answers a request ever waits for containerd.
//!
//! Events go into a bounded queue (a full queue drops the event and says so: containerd
//! also learns exits from Wait). The sender connects to containerd's ttrpc address
//! (`TTRPC_ADDRESS`), forwards each event with a timeout, and on failure connects again
//! and retries the same event for a while, in order: a containerd that restarts gets the
//! exits of the outage once it listens again; one that hangs delays only events.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused, TaskResumed,
    TaskStart,
};
use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::shim::event::Envelope;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::shim_sync::EventsClient;
use containerd_shim::protos::topics::*;
use containerd_shim::protos::ttrpc::{self, context};

use super::table::Exit;

/// Events waiting to be sent, at most. The queue holds boxes: its slots are allocated
/// and written when it is made, and 4096 whole events took 490 KiB of the server's memory.
const QUEUE: usize = 4096;
/// One forward may take this long.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// An event is retried for this long, then dropped.
const RETRY_FOR: Duration = Duration::from_secs(60);
/// Pause between attempts, growing to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

struct Queued {
    topic: &'static str,
    envelope: Envelope,
    queued: Instant,
}

/// The sending end, shared by every request thread (and cloned into OOM watchers).
#[derive(Clone)]
pub struct Publisher {
    namespace: String,
    queue: SyncSender<Box<Queued>>,
}

impl Publisher {
    /// Starts the sender thread for containerd at `address`.
    pub fn start(address: String, namespace: &str) -> std::io::Result<Self> {
        let (queue, pending) = sync_channel(QUEUE);
        std::thread::Builder::new().name("events".into()).spawn(move || send_all(&address, pending))?;
        Ok(Self { namespace: namespace.to_string(), queue })
    }

    fn publish(&self, topic: &'static str, event: Box<dyn MessageDyn>) {
        let mut envelope = Envelope::new();
        envelope.topic = topic.to_string();
        envelope.namespace = self.namespace.clone();
        envelope.timestamp = Some(containerd_shim::util::timestamp().unwrap_or_default()).into();
        match containerd_shim::util::convert_to_any(event) {
            Ok(any) => envelope.event = Some(any).into(),
            Err(e) => {
                tracing::warn!(topic, "cannot encode event: {e}");
                return;
            }
        }
        match self.queue.try_send(Box::new(Queued { topic, envelope, queued: Instant::now() })) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => tracing::warn!(topic, "event queue full ({QUEUE}): event dropped"),
            Err(TrySendError::Disconnected(_)) => tracing::warn!(topic, "event sender gone: event dropped"),
        }
    }

    pub fn task_create(&self, id: &str, bundle: &str, pid: u32) {
        let mut event = TaskCreate::new();
        event.container_id = id.to_string();
        event.bundle = bundle.to_string();
        event.pid = pid;
        self.publish(TASK_CREATE_EVENT_TOPIC, Box::new(event));
    }

    pub fn task_start(&self, id: &str, pid: u32) {
        let mut event = TaskStart::new();
        event.container_id = id.to_string();
        event.pid = pid;
        self.publish(TASK_START_EVENT_TOPIC, Box::new(event));
    }

    /// The exit of task `id`'s init process, or of its exec process `exec_id`.
    pub fn task_exit(&self, id: &str, exec_id: &str, pid: u32, exit: &Exit) {
        let mut event = TaskExit::new();
        event.container_id = id.to_string();
        event.id = if exec_id.is_empty() { id } else { exec_id }.to_string();
        event.pid = pid;
        event.exit_status = exit.status;
        event.exited_at = Some(exit.at.clone()).into();
        self.publish(TASK_EXIT_EVENT_TOPIC, Box::new(event));
    }

    pub fn task_delete(&self, id: &str, pid: u32, exit: &Exit) {
        let mut event = TaskDelete::new();
        event.container_id = id.to_string();
        event.id = id.to_string();
        event.pid = pid;
        event.exit_status = exit.status;
        event.exited_at = Some(exit.at.clone()).into();
        self.publish(TASK_DELETE_EVENT_TOPIC, Box::new(event));
    }

    pub fn task_exec_added(&self, id: &str, exec_id: &str) {
        let mut event = TaskExecAdded::new();
        event.container_id = id.to_string();
        event.exec_id = exec_id.to_string();
        self.publish(TASK_EXEC_ADDED_EVENT_TOPIC, Box::new(event));
    }

    pub fn task_exec_started(&self, id: &str, exec_id: &str, pid: u32) {
        let mut event = TaskExecStarted::new();
        event.container_id = id.to_string();
        event.exec_id = exec_id.to_string();
        event.pid = pid;
        self.publish(TASK_EXEC_STARTED_EVENT_TOPIC, Box::new(event));
    }

    pub fn task_paused(&self, id: &str) {
        let mut event = TaskPaused::new();
        event.container_id = id.to_string();
        self.publish(TASK_PAUSED_EVENT_TOPIC, Box::new(event));
    }

    pub fn task_resumed(&self, id: &str) {
        let mut event = TaskResumed::new();
        event.container_id = id.to_string();
        self.publish(TASK_RESUMED_EVENT_TOPIC, Box::new(event));
    }

    pub fn task_oom(&self, id: &str) {
        let mut event = TaskOOM::new();
        event.container_id = id.to_string();
        self.publish(TASK_OOM_EVENT_TOPIC, Box::new(event));
    }
}

/// The sender thread: forwards every queued event, in order, until the shim exits.
fn send_all(address: &str, pending: Receiver<Box<Queued>>) {
    let mut client: Option<EventsClient> = None;
    for event in pending {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match forward(address, &mut client, &event.envelope) {
                Ok(()) => break,
                Err(e) => {
                    client = None;
                    if event.queued.elapsed() > RETRY_FOR {
                        tracing::warn!(
                            topic = event.topic,
                            "cannot publish event to containerd: {e}; dropped"
                        );
                        break;
                    }
                    tracing::debug!(topic = event.topic, "cannot publish event to containerd: {e}; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

fn forward(address: &str, client: &mut Option<EventsClient>, envelope: &Envelope) -> Result<(), String> {
    if client.is_none() {
        let address = if address.contains("://") { address.to_string() } else { format!("unix://{address}") };
        let connection = ttrpc::Client::connect(&address).map_err(|e| format!("connect {address}: {e}"))?;
        *client = Some(EventsClient::new(connection));
    }
    let mut request = ForwardRequest::new();
    request.envelope = Some(envelope.clone()).into();
    let ctx = context::with_timeout(FORWARD_TIMEOUT.as_nanos() as i64);
    client.as_ref().map(|c| c.forward(ctx, &request)).transpose().map_err(|e| e.to_string())?;
    Ok(())
}
